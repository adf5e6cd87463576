/* Shared by the unit tests: cmocka includes in the order it needs, and a
 * few helpers for reading fixtures and parsing inline JSON. */
#ifndef ICE_TEST_HELPERS_H
#define ICE_TEST_HELPERS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h must come after the headers above. */
#include <cmocka.h>
#include <ice.h>
#include <jansson.h>

/* Parses inline JSON (any value); fails the test on a syntax error. */
json_t *th_json(const char *text);

/* Asserts that `v` serialises (compact, keys in insertion order) to
 * `expected`. */
void th_assert_json(const json_t *v, const char *expected);

/* Parses a YAML workflow named t.yaml; fails the test, printing the
 * diagnostics, when it does not validate. */
ice_workflow_t *th_wf(ice_engine_t *e, const char *yaml);

/* Runs wf to the end (our reference to wf is dropped) with inputs
 * (borrowed, may be NULL) and max_parallel (0 = the workflow's), recording
 * every event into the array evs when given. Returns a copy of the result
 * (caller decrefs). */
json_t *th_run_wf(ice_engine_t *e, ice_workflow_t *wf, json_t *inputs,
                  int max_parallel, json_t *evs);

/* An event subscriber that appends each event to the array `data`. */
void th_record_cb(json_t *ev, void *data);

/* The recorded events of `type` (and of node id `node` when given), as a
 * new array. */
json_t *th_events_of(json_t *evs, const char *type, const char *node);

/* Asserts node id's status in a result and, when given, its skip reason
 * (skipped) or error kind (failed). */
void th_want_node(json_t *res, const char *id, const char *status,
                  const char *extra);

/* wait_port_file(path): a test server's port (tests/support). */
#include "../support/portfile.h"

/* A fresh directory /tmp/ice-NAME-XXXXXX in dir (len bytes): 0 or -1. */
int th_tmpdir(char *dir, size_t len, const char *name);
/* Removes dir and everything under it: 0 or -1. */
int th_rmtree(const char *dir);

#endif
