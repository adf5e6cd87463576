#include "helpers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

json_t *th_json(const char *text) {
  json_error_t e;
  json_t *v = json_loads(text, JSON_DECODE_ANY, &e);

  if (v == NULL) {
    fail_msg("bad test JSON at %d:%d: %s: %s", e.line, e.column, e.text, text);
  }
  return v;
}

void th_assert_json(const json_t *v, const char *expected) {
  char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

  assert_non_null(s);
  if (strcmp(s, expected) != 0) {
    fprintf(stderr, "expected: %s\n     got: %s\n", expected, s);
    free(s);
    fail();
  }
  free(s);
}

ice_workflow_t *th_wf(ice_engine_t *e, const char *yaml) {
  ice_workflow_t *wf = NULL;
  ice_diags_t d = {0};

  if (ice_workflow_parse(e, "t.yaml", yaml, strlen(yaml), 1, &wf, &d) != 0) {
    for (size_t i = 0; i < d.count; i++) {
      char *s = ice_diag_format(&d.items[i]);
      fprintf(stderr, "%s\n", s);
      free(s);
    }
    ice_diags_free(&d);
    fail_msg("workflow did not validate:\n%s", yaml);
  }
  return wf;
}

void th_record_cb(json_t *ev, void *data) {
  json_array_append(data, ev);
}

json_t *th_run_wf(ice_engine_t *e, ice_workflow_t *wf, json_t *inputs,
                  int max_parallel, json_t *evs) {
  ice_run_opts_t o = ICE_RUN_OPTS_INIT;
  ice_run_t *r = NULL;
  ice_sub_t *sub = NULL;
  json_t *res;

  if (evs != NULL)
    assert_int_equal(ice_subscribe(e, NULL, th_record_cb, evs, &sub), 0);
  o.inputs = inputs;
  o.max_parallel = max_parallel;
  assert_int_equal(ice_run_new(e, wf, &o, &r, NULL), 0);
  ice_workflow_free(wf); /* the run holds its own reference */
  assert_null(ice_run_result(r));
  assert_int_equal(ice_run_execute(r), 0);
  assert_int_equal(ice_run_finished(r), 1);
  res = json_deep_copy(ice_run_result(r));
  assert_non_null(res);
  ice_run_free(r);
  if (sub != NULL)
    ice_unsubscribe(e, sub);
  return res;
}

json_t *th_events_of(json_t *evs, const char *type, const char *node) {
  json_t *out = json_array(), *ev;
  size_t i;

  json_array_foreach(evs, i, ev) {
    const char *t = json_string_value(json_object_get(ev, "type"));
    const char *n = json_string_value(json_object_get(ev, "node_id"));
    if (t == NULL || strcmp(t, type) != 0)
      continue;
    if (node != NULL && (n == NULL || strcmp(n, node) != 0))
      continue;
    json_array_append(out, ev);
  }
  return out;
}

void th_want_node(json_t *res, const char *id, const char *status,
                  const char *extra) {
  json_t *n = json_object_get(json_object_get(res, "nodes"), id);
  const char *st = json_string_value(json_object_get(n, "status"));
  const char *got;

  if (n == NULL)
    fail_msg("node %s missing from the result", id);
  if (st == NULL || strcmp(st, status) != 0)
    fail_msg("node %s: status %s, expected %s", id, st ? st : "?", status);
  if (extra == NULL)
    return;
  if (strcmp(status, "skipped") == 0)
    got = json_string_value(json_object_get(n, "reason"));
  else
    got =
        json_string_value(json_object_get(json_object_get(n, "error"), "kind"));
  if (got == NULL || strcmp(got, extra) != 0)
    fail_msg("node %s: %s %s, expected %s", id,
             strcmp(status, "skipped") == 0 ? "reason" : "kind",
             got ? got : "?", extra);
}

int th_tmpdir(char *dir, size_t len, const char *name) {
  int n = snprintf(dir, len, "/tmp/ice-%s-XXXXXX", name);

  return n > 0 && (size_t)n < len && mkdtemp(dir) != NULL ? 0 : -1;
}

int th_rmtree(const char *dir) {
  char cmd[256];
  int n = snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);

  return n > 0 && (size_t)n < sizeof(cmd) && system(cmd) == 0 ? 0 : -1;
}
