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
#include <jansson.h>

/* Parses inline JSON (any value); fails the test on a syntax error. */
json_t *th_json(const char *text);

/* Asserts that `v` serialises (compact, keys in insertion order) to
 * `expected`. */
void th_assert_json(const json_t *v, const char *expected);

#endif
