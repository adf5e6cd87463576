/* Calls (src/call.h) as agents and LLM requests use them: a C tool that
 * cannot be interrupted is abandoned, not waited for; a C tool with a
 * cancel hook is stopped; a request queued for an `llm` pool slot is
 * dropped when its node is cancelled; every callback fires once and
 * nothing leaks (ASan). */
#include "helpers.h"

#include <string.h>
#include <uv.h>

/* A tool that never completes by itself: the test completes it late. */
static ice_task_t *g_hung;
static int g_hang_cancels;

static void hang_start(ice_task_t *t, json_t *args, void *data) {
  (void)args;
  (void)data;
  g_hung = t;
}

static void hang_cancel(ice_task_t *t, void *data) {
  (void)data;
  g_hang_cancels++;
  ice_task_fail(t, "cancelled", "hang stopped");
}

/* An agent (echo provider: its prompt is its first step) calling `tool`
 * under a short timeout. */
static const char *agent_yaml(const char *tool) {
  static char buf[512];

  snprintf(buf, sizeof(buf),
           "nodes:\n"
           "  - id: a\n"
           "    type: agent\n"
           "    provider: echo\n"
           "    tools: [%s]\n"
           "    timeout_seconds: 0.2\n"
           "    prompt: '{\"tool\": \"%s\", \"inputs\": {}}'\n"
           "  - {id: other, type: tool, tool_name: echo, tool_args: {x: 1}}\n",
           tool, tool);
  return buf;
}

static void test_uninterruptible_tool_is_abandoned(void **state) {
  ice_engine_t *e = NULL;
  ice_tool_t hang = {"hang", hang_start, NULL, NULL};
  json_t *res;

  (void)state;
  g_hung = NULL;
  assert_int_equal(ice_engine_new(&e, NULL, NULL), 0);
  assert_int_equal(ice_register_tool(e, &hang), 0);
  res = th_run_wf(e, th_wf(e, agent_yaml("hang")), NULL, 0, NULL);
  /* The agent timed out; its tool call was given up on, not waited for. */
  th_want_node(res, "a", "failed", "timeout");
  th_want_node(res, "other", "completed", NULL);
  json_decref(res);
  assert_non_null(g_hung);
  /* The tool ends late: its outcome is dropped and its task freed. */
  ice_task_done(g_hung, json_object());
  uv_run(ice_engine_loop(e), UV_RUN_NOWAIT);
  assert_int_equal(ice_engine_free(e), 0);
}

static void test_cancellable_tool_is_stopped(void **state) {
  ice_engine_t *e = NULL;
  ice_tool_t hang = {"hang", hang_start, hang_cancel, NULL};
  json_t *res;

  (void)state;
  g_hang_cancels = 0;
  assert_int_equal(ice_engine_new(&e, NULL, NULL), 0);
  assert_int_equal(ice_register_tool(e, &hang), 0);
  res = th_run_wf(e, th_wf(e, agent_yaml("hang")), NULL, 0, NULL);
  th_want_node(res, "a", "failed", "timeout");
  assert_int_equal(g_hang_cancels, 1);
  json_decref(res);
  assert_int_equal(ice_engine_free(e), 0);
}

/* A request waiting for the only `llm` slot (held by a tool node that
 * takes the pool) is dropped when its node times out; the slot holder is
 * unaffected, and a later request gets the slot. */
static void test_queued_request_is_dropped(void **state) {
  ice_engine_t *e = NULL;
  json_t *res, *evs = json_array();

  (void)state;
  assert_int_equal(ice_engine_new(&e, NULL, NULL), 0);
  res = th_run_wf(
      e,
      th_wf(e, "pools: {llm: 1}\n"
               "max_parallel: 3\n"
               "nodes:\n"
               "  - {id: hold, type: tool, tool_name: sleep, pool: llm,\n"
               "     tool_args: {seconds: 0.4}}\n"
               "  - {id: waiter, type: llm, provider: echo, prompt: hi,\n"
               "     timeout_seconds: 0.1}\n"
               "  - {id: later, type: llm, provider: echo, prompt: after,\n"
               "     dependencies: [hold]}\n"),
      NULL, 0, evs);
  th_want_node(res, "hold", "completed", NULL);
  th_want_node(res, "waiter", "failed", "timeout");
  th_want_node(res, "later", "completed", NULL);
  assert_string_equal(
      json_string_value(json_object_get(
          json_object_get(json_object_get(res, "output"), "later"),
          "response")),
      "after");
  json_decref(res);
  json_decref(evs);
  assert_int_equal(ice_engine_free(e), 0);
}

/* A node whose own pool is `llm` makes its request in its own slot: with
 * a pool of one, it does not wait for itself. */
static void test_node_in_llm_pool_uses_its_slot(void **state) {
  ice_engine_t *e = NULL;
  json_t *res;

  (void)state;
  assert_int_equal(ice_engine_new(&e, NULL, NULL), 0);
  res = th_run_wf(e,
                  th_wf(e, "pools: {llm: 1}\n"
                           "nodes:\n"
                           "  - {id: a, type: llm, provider: echo, pool: llm,\n"
                           "     prompt: one, timeout_seconds: 2}\n"
                           "  - id: b\n"
                           "    type: agent\n"
                           "    provider: echo\n"
                           "    pool: llm\n"
                           "    timeout_seconds: 2\n"
                           "    prompt: '{\"tool\": \"echo\", \"inputs\": "
                           "{\"k\": 1}}'\n"
                           "    tools: [echo]\n"),
                  NULL, 0, NULL);
  th_want_node(res, "a", "completed", NULL);
  th_want_node(res, "b", "completed", NULL);
  json_decref(res);
  assert_int_equal(ice_engine_free(e), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_uninterruptible_tool_is_abandoned),
      cmocka_unit_test(test_cancellable_tool_is_stopped),
      cmocka_unit_test(test_queued_request_is_dropped),
      cmocka_unit_test(test_node_in_llm_pool_uses_its_slot),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
