/* Small public pieces: error strings, the store's memo of use_cache
 * outputs, and cancelling attempts that wait for a pool slot. */
#include "helpers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void test_strerror(void **state) {
  (void)state;
  assert_string_equal(ice_strerror(0), "success");
#define XX(name, val, msg) assert_string_equal(ice_strerror(ICE_##name), msg);
  ICE_ERRNO_MAP(XX)
#undef XX
  assert_string_equal(ice_strerror(-99999), "unknown error");
}

static void test_store_cache(void **state) {
  char dir[] = "/tmp/ice-misc-XXXXXX", path[300], msg[256];
  ice_store_t *s = NULL;
  json_t *v, *out;

  (void)state;
  assert_non_null(mkdtemp(dir));
  snprintf(path, sizeof(path), "%s/s.db", dir);
  assert_int_equal(ice_store_open(&s, path, msg, sizeof(msg)), 0);
  assert_null(ice_store_cache_get(s, "k", 0));
  v = th_json("{\"a\": [1, 2.5, \"x\"]}");
  assert_int_equal(ice_store_cache_put(s, "k", v), 0);
  out = ice_store_cache_get(s, "k", 0);
  assert_true(json_equal(out, v));
  json_decref(out);
  /* An age bound that the entry has outlived is a miss. */
  usleep(20000);
  assert_null(ice_store_cache_get(s, "k", 5));
  out = ice_store_cache_get(s, "k", 60000);
  assert_non_null(out);
  json_decref(out);
  /* Replaced under the same key. */
  json_decref(v);
  v = th_json("7");
  assert_int_equal(ice_store_cache_put(s, "k", v), 0);
  out = ice_store_cache_get(s, "k", 0);
  th_assert_json(out, "7");
  json_decref(out);
  json_decref(v);
  assert_int_equal(ice_store_cache_put(s, NULL, NULL), ICE_EINVAL);
  assert_null(ice_store_cache_get(NULL, "k", 0));
  assert_int_equal(ice_store_close(s, msg, sizeof(msg)), 0);
  unlink(path);
  snprintf(path, sizeof(path), "%s/s.db-wal", dir);
  unlink(path);
  snprintf(path, sizeof(path), "%s/s.db-shm", dir);
  unlink(path);
  rmdir(dir);
}

static void test_store_arguments_and_default_paths(void **state) {
  char dir[] = "/tmp/ice-misc-XXXXXX", want[400], msg[256];
  ice_store_t *s = NULL;
  json_t *out = NULL;
  char *old_home = getenv("ICE_HOME") ? strdup(getenv("ICE_HOME")) : NULL;

  (void)state;
  assert_non_null(mkdtemp(dir));
  /* ICE_HOME unset: $XDG_STATE_HOME/ice/runs.db, created with its parent. */
  unsetenv("ICE_HOME");
  setenv("XDG_STATE_HOME", dir, 1);
  assert_int_equal(ice_store_open(&s, NULL, msg, sizeof(msg)), 0);
  snprintf(want, sizeof(want), "%s/ice/runs.db", dir);
  assert_string_equal(ice_store_path(s), want);
  /* Calls without what they need are refused, not crashes. */
  assert_int_equal(ice_store_attach(s, NULL), ICE_EINVAL);
  assert_int_equal(
      ice_store_begin(s, NULL, "w", "p", "h", NULL, msg, sizeof(msg)),
      ICE_EINVAL);
  assert_int_equal(ice_store_finish(s, "r", NULL, msg, sizeof(msg)),
                   ICE_EINVAL);
  assert_int_equal(ice_store_load(s, NULL, &out, msg, sizeof(msg)), ICE_EINVAL);
  assert_int_equal(ice_store_runs(NULL, 0, &out, msg, sizeof(msg)), ICE_EINVAL);
  assert_int_equal(ice_store_events(s, "r", NULL, NULL, msg, sizeof(msg)),
                   ICE_EINVAL);
  /* Begun without inputs: stored as {}; listed; loaded. */
  assert_int_equal(
      ice_store_begin(s, "r1", "w", "/p.yaml", "h", NULL, msg, sizeof(msg)), 0);
  assert_int_equal(ice_store_runs(s, 0, &out, msg, sizeof(msg)), 0);
  assert_int_equal(json_array_size(out), 1);
  json_decref(out);
  assert_int_equal(ice_store_load(s, "r1", &out, msg, sizeof(msg)), 0);
  th_assert_json(json_object_get(out, "inputs"), "{}");
  json_decref(out);
  assert_int_equal(ice_store_close(s, msg, sizeof(msg)), 0);
  /* ICE_HOME wins. */
  setenv("ICE_HOME", dir, 1);
  assert_int_equal(ice_store_open(&s, NULL, msg, sizeof(msg)), 0);
  snprintf(want, sizeof(want), "%s/runs.db", dir);
  assert_string_equal(ice_store_path(s), want);
  assert_int_equal(ice_store_close(s, msg, sizeof(msg)), 0);
  if (old_home != NULL)
    setenv("ICE_HOME", old_home, 1);
  else
    unsetenv("ICE_HOME");
  free(old_home);
  unsetenv("XDG_STATE_HOME");
  snprintf(want, sizeof(want), "rm -rf '%s'", dir);
  assert_int_equal(system(want), 0);
}

/* Cancelled while queued for a pool slot: the attempts leave the queue,
 * nothing hangs, and the pool's holder finishes. */
static void cancel_on_start(json_t *ev, void *data) {
  const char *id = json_string_value(json_object_get(ev, "node_id"));

  if (id != NULL && strcmp(id, "a") == 0)
    ice_run_cancel(*(ice_run_t **)data);
}

static void test_cancel_while_queued_for_a_pool(void **state) {
  ice_engine_t *e = NULL;
  ice_workflow_t *wf;
  ice_run_t *r = NULL;
  ice_sub_t *sub;
  json_t *res;

  (void)state;
  assert_int_equal(ice_engine_new(&e, NULL, NULL), 0);
  wf = th_wf(e, "pools: {one: 1}\nnodes:\n"
                "  - {id: a, type: tool, tool_name: sleep, pool: one, "
                "tool_args: {seconds: 0.05}}\n"
                "  - {id: b, type: tool, tool_name: sleep, pool: one, "
                "tool_args: {seconds: 0.05}}\n"
                "  - {id: c, type: tool, tool_name: sleep, pool: one, "
                "tool_args: {seconds: 0.05}}\n");
  assert_int_equal(ice_run_new(e, wf, NULL, &r, NULL), 0);
  ice_workflow_free(wf);
  assert_int_equal(ice_subscribe(e, "node.started", cancel_on_start, &r, &sub),
                   0);
  assert_int_equal(ice_run_execute(r), 0);
  ice_unsubscribe(e, sub);
  res = ice_run_result(r);
  assert_string_equal(json_string_value(json_object_get(res, "status")),
                      "cancelled");
  th_want_node(res, "b", "cancelled", NULL);
  th_want_node(res, "c", "cancelled", NULL);
  ice_run_free(r);
  assert_int_equal(ice_engine_free(e), 0);
}

/* A recursive node: a convergence condition that fails to evaluate, a
 * workflow_ref child that fails, and a cancel while its child runs. */
static void cancel_later(uv_timer_t *h) {
  ice_run_cancel(h->data);
}

static void test_recursive_failures(void **state) {
  char dir[] = "/tmp/ice-misc-XXXXXX", top[300], child[300];
  ice_engine_t *e = NULL;
  ice_workflow_t *wf = NULL;
  ice_diags_t d = {0};
  ice_run_t *r = NULL;
  uv_timer_t timer;
  json_t *res;
  FILE *f;

  (void)state;
  assert_int_equal(ice_engine_new(&e, NULL, NULL), 0);
  res = th_run_wf(e,
                  th_wf(e, "nodes:\n"
                           "  - {id: s, type: tool, tool_name: echo, "
                           "dependencies: [r]}\n"
                           "  - {id: r, type: recursive, dependencies: [s], "
                           "recursive_sources: [s], convergence_condition: "
                           "'nosuch > 1'}\n"),
                  NULL, 0, NULL);
  th_want_node(res, "r", "failed", "expression");
  json_decref(res);

  assert_non_null(mkdtemp(dir));
  snprintf(child, sizeof(child), "%s/child.yaml", dir);
  snprintf(top, sizeof(top), "%s/top.yaml", dir);
  f = fopen(child, "w");
  fputs("nodes:\n  - {id: c, type: tool, tool_name: fail}\n"
        "  - {id: z, type: tool, tool_name: sleep, tool_args: {seconds: "
        "'{{ inputs.nap }}'}}\n",
        f);
  fclose(f);
  f = fopen(top, "w");
  fputs("nodes:\n  - {id: s, type: tool, tool_name: echo, dependencies: "
        "[r]}\n  - {id: r, type: recursive, dependencies: [s], "
        "recursive_sources: [s], workflow_ref: child.yaml, "
        "convergence_condition: 'true'}\n",
        f);
  fclose(f);
  assert_int_equal(ice_workflow_load(e, top, &wf, &d), 0);
  {
    json_t *in = th_json("{\"nap\": 0}");
    res = th_run_wf(e, wf, in, 0, NULL); /* in is borrowed */
    json_decref(in);
  }
  th_want_node(res, "r", "failed", "subworkflow");
  assert_non_null(strstr(
      json_string_value(json_object_get(
          json_object_get(json_object_get(json_object_get(res, "nodes"), "r"),
                          "error"),
          "message")),
      "workflow_ref: "));
  json_decref(res);
  /* Cancelled while its child sleeps. */
  assert_int_equal(ice_workflow_load(e, top, &wf, &d), 0);
  {
    json_t *in = th_json("{\"nap\": 5}");
    ice_run_opts_t o = ICE_RUN_OPTS_INIT;
    o.inputs = in;
    assert_int_equal(ice_run_new(e, wf, &o, &r, NULL), 0);
    json_decref(in);
  }
  ice_workflow_free(wf);
  uv_timer_init(ice_engine_loop(e), &timer);
  timer.data = r;
  uv_timer_start(&timer, cancel_later, 50, 0);
  assert_int_equal(ice_run_execute(r), 0);
  th_want_node(ice_run_result(r), "r", "cancelled", NULL);
  uv_close((uv_handle_t *)&timer, NULL);
  ice_run_free(r);
  unlink(child);
  unlink(top);
  rmdir(dir);
  assert_int_equal(ice_engine_free(e), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_strerror),
      cmocka_unit_test(test_store_cache),
      cmocka_unit_test(test_store_arguments_and_default_paths),
      cmocka_unit_test(test_cancel_while_queued_for_a_pool),
      cmocka_unit_test(test_recursive_failures),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
