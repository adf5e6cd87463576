/* The `human` node (SPEC §8.1), through the public API: the three approval
 * types answered ahead, answers checked before a run, a run that stops as
 * waiting and is restored with its answer, two waiting nodes answered in
 * either order, a branch that goes on while another waits, and the
 * auto-approve and escalation timers, across a restart too. */
#include "helpers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- fixtures ------------------------------------------------------------ */

static ice_engine_t *mk(int virtual_clock) {
  ice_engine_t *e = NULL;
  ice_engine_opts_t o = ICE_ENGINE_OPTS_INIT;

  o.virtual_clock = virtual_clock;
  assert_int_equal(ice_engine_new(&e, NULL, &o), 0);
  return e;
}

/* A run's commit records (for restoring it) and its events. */
typedef struct {
  json_t *records;
  json_t *events;
} log_t;

static int commit_cb(const ice_commit_t *c, void *data, char *msg,
                     size_t msglen) {
  (void)msg;
  (void)msglen;
  json_array_append_new(((log_t *)data)->records, ice_commit_to_json(c));
  return 0;
}

/* Runs wf (our reference dropped) with answers (a JSON text, or NULL),
 * logging records and events; restores from log->records when `restore`.
 * Returns a copy of the result. */
static json_t *run(ice_engine_t *e, ice_workflow_t *wf, log_t *log,
                   const char *answers, int restore, double suspend_after) {
  ice_run_opts_t o = ICE_RUN_OPTS_INIT;
  ice_run_t *r = NULL;
  ice_sub_t *sub = NULL;
  json_t *ans = answers != NULL ? th_json(answers) : NULL, *res, *from = NULL;
  unsigned long long seq = 0;

  if (restore) {
    json_t *rec;
    size_t i;
    from = json_deep_copy(log->records);
    json_array_foreach(from, i, rec) {
      seq = (unsigned long long)json_integer_value(json_object_get(rec, "seq"));
    }
  }
  o.commit = commit_cb;
  o.commit_data = log;
  o.restore = from;
  o.seq = restore ? seq + 1 : 0;
  o.suspend_after = suspend_after;
  o.answers = ans;
  assert_int_equal(ice_subscribe(e, NULL, th_record_cb, log->events, &sub), 0);
  assert_int_equal(ice_run_new(e, wf, &o, &r, NULL), 0);
  ice_workflow_free(wf);
  assert_int_equal(ice_run_execute(r), 0);
  ice_unsubscribe(e, sub);
  res = json_deep_copy(ice_run_result(r));
  ice_run_free(r);
  json_decref(ans);
  json_decref(from);
  return res;
}

static log_t log_new(void) {
  log_t l = {json_array(), json_array()};
  return l;
}

static void log_free(log_t *l) {
  json_decref(l->records);
  json_decref(l->events);
}

static const char *status_of(json_t *res) {
  return json_string_value(json_object_get(res, "status"));
}

static json_t *out_of(json_t *res, const char *id) {
  return json_object_get(json_object_get(res, "output"), id);
}

static size_t count_events(json_t *evs, const char *type, const char *node) {
  json_t *a = th_events_of(evs, type, node);
  size_t n = json_array_size(a);

  json_decref(a);
  return n;
}

/* ---- tests --------------------------------------------------------------- */

static const char *const kinds_wf =
    "nodes:\n"
    "  - {id: yes, type: human, prompt_message: 'Ship it?'}\n"
    "  - {id: yes_c, type: human, prompt_message: 'Ship it?',"
    " approval_type: approve_reject}\n"
    "  - {id: no, type: human, prompt_message: 'Ship it?'}\n"
    "  - {id: no_c, type: human, prompt_message: 'Ship it?'}\n"
    "  - {id: json, type: human, prompt_message: 'Limits?',"
    " approval_type: input_required}\n"
    "  - {id: text, type: human, prompt_message: 'Why?',"
    " approval_type: input_required}\n"
    "  - {id: pick, type: human, prompt_message: 'Colour?',"
    " approval_type: choice, choices: [red, green, blue]}\n"
    "  - {id: after, type: tool, tool_name: echo, dependencies: [no],"
    " tool_args: {approved: '{{ no.approved }}'}}\n";

static void test_every_type_answered_ahead(void **state) {
  ice_engine_t *e = mk(1);
  log_t log = log_new();
  json_t *res;

  (void)state;
  res = run(e, th_wf(e, kinds_wf), &log,
            "{\"yes\": \"approve\", \"yes_c\": \"approve:looks good\","
            " \"no\": \"reject\", \"no_c\": \"reject:too risky\","
            " \"json\": \"{\\\"max\\\": 3}\", \"text\": \"because\","
            " \"pick\": \"green\"}",
            0, 0);
  assert_string_equal(status_of(res), "completed");
  th_assert_json(out_of(res, "yes"), "{\"approved\":true,\"response\":"
                                     "\"approve\"}");
  th_assert_json(out_of(res, "yes_c"), "{\"approved\":true,\"response\":"
                                       "\"looks good\"}");
  /* A rejection is data: the node completes, dependents run. */
  th_assert_json(out_of(res, "no"), "{\"approved\":false,\"response\":"
                                    "\"reject\"}");
  th_assert_json(out_of(res, "no_c"), "{\"approved\":false,\"response\":"
                                      "\"too risky\"}");
  th_assert_json(out_of(res, "after"), "{\"approved\":false}");
  th_assert_json(out_of(res, "json"), "{\"approved\":true,\"response\":"
                                      "{\"max\":3}}");
  th_assert_json(out_of(res, "text"), "{\"approved\":true,\"response\":"
                                      "\"because\"}");
  th_assert_json(out_of(res, "pick"),
                 "{\"approved\":true,\"choice\":\"green\",\"response\":"
                 "\"green\"}");
  /* Answered ahead: nothing was asked, each was resolved once. */
  assert_int_equal(count_events(log.events, "human.requested", NULL), 0);
  assert_int_equal(count_events(log.events, "human.resolved", NULL), 7);
  {
    json_t *r = th_events_of(log.events, "human.resolved", "pick");
    json_t *ev = json_array_get(r, 0);
    assert_string_equal(json_string_value(json_object_get(ev, "resolution")),
                        "answered");
    assert_true(json_is_true(json_object_get(ev, "approved")));
    json_decref(r);
  }
  json_decref(res);
  log_free(&log);
  assert_int_equal(ice_engine_free(e), 0);
}

static void test_check_answer(void **state) {
  ice_engine_t *e = mk(1);
  ice_workflow_t *wf = th_wf(e, kinds_wf);
  char msg[512];

  (void)state;
  assert_int_equal(
      ice_workflow_check_answer(wf, "pick", "blue", msg, sizeof(msg)), 0);
  assert_int_equal(
      ice_workflow_check_answer(wf, "pick", "purple", msg, sizeof(msg)),
      ICE_EINVAL);
  assert_string_equal(msg, "node 'pick': 'purple' is not one of its choices: "
                           "red, green, blue");
  assert_int_equal(
      ice_workflow_check_answer(wf, "yes", "approve:fine", msg, sizeof(msg)),
      0);
  assert_int_equal(
      ice_workflow_check_answer(wf, "yes", "reject", msg, sizeof(msg)), 0);
  assert_int_equal(
      ice_workflow_check_answer(wf, "yes", "maybe", msg, sizeof(msg)),
      ICE_EINVAL);
  assert_non_null(strstr(msg, "'maybe' is not an answer for approval_type "
                              "approve_reject"));
  /* Exact words only. */
  assert_int_equal(
      ice_workflow_check_answer(wf, "yes", "approved", msg, sizeof(msg)),
      ICE_EINVAL);
  /* input_required takes anything, JSON or not. */
  assert_int_equal(
      ice_workflow_check_answer(wf, "text", "{not json", msg, sizeof(msg)), 0);
  assert_int_equal(ice_workflow_check_answer(wf, "text", "", msg, sizeof(msg)),
                   0);
  assert_int_equal(
      ice_workflow_check_answer(wf, "nope", "approve", msg, sizeof(msg)),
      ICE_EINVAL);
  assert_string_equal(msg, "no node 'nope' in workflow 't'");
  assert_int_equal(
      ice_workflow_check_answer(wf, "after", "approve", msg, sizeof(msg)),
      ICE_EINVAL);
  assert_string_equal(msg, "node 'after' is a tool node, not a human node: it "
                           "takes no answer");
  ice_workflow_free(wf);
  assert_int_equal(ice_engine_free(e), 0);
}

/* An answer that was not checked before the run fails the node. */
static void test_bad_answer_fails_the_node(void **state) {
  ice_engine_t *e = mk(1);
  log_t log = log_new();
  json_t *res;

  (void)state;
  res = run(e,
            th_wf(e, "nodes:\n  - {id: pick, type: human, prompt_message: "
                     "'?', approval_type: choice, choices: [a, b]}\n"),
            &log, "{\"pick\": \"c\"}", 0, 0);
  assert_string_equal(status_of(res), "failed");
  th_want_node(res, "pick", "failed", "input_validation");
  json_decref(res);
  log_free(&log);
  assert_int_equal(ice_engine_free(e), 0);
}

static void want_error(ice_engine_t *e, const char *yaml, const char *text) {
  ice_workflow_t *wf = NULL;
  ice_diags_t d = {0};
  int found = 0;

  assert_int_equal(
      ice_workflow_parse(e, "t.yaml", yaml, strlen(yaml), 1, &wf, &d),
      ICE_EWORKFLOW);
  for (size_t i = 0; i < d.count; i++) {
    if (strstr(d.items[i].message, text) != NULL)
      found = 1;
  }
  if (!found)
    fail_msg("no diagnostic with \"%s\" (first: %s)", text,
             d.count > 0 ? d.items[0].message : "none");
  ice_diags_free(&d);
}

static void test_validation(void **state) {
  ice_engine_t *e = mk(1);

  (void)state;
  want_error(e, "nodes:\n  - {id: h, type: human}\n",
             "missing required field 'prompt_message'");
  want_error(e,
             "nodes:\n  - {id: h, type: human, prompt_message: x,"
             " approval_type: vote}\n",
             "approval_type must be approve_reject, input_required or "
             "choice, not 'vote'");
  want_error(e,
             "nodes:\n  - {id: h, type: human, prompt_message: x,"
             " approval_type: choice, choices: [only]}\n",
             "approval_type choice needs at least two choices");
  want_error(e,
             "nodes:\n  - {id: h, type: human, prompt_message: x,"
             " approval_type: choice}\n",
             "approval_type choice needs 'choices'");
  want_error(e,
             "nodes:\n  - {id: h, type: human, prompt_message: x,"
             " approval_type: choice, choices: [a, 2]}\n",
             "choices must be strings");
  want_error(e,
             "nodes:\n  - {id: h, type: human, prompt_message: x,"
             " auto_approve_after: 5}\n",
             "auto_approve_after needs timeout_seconds");
  want_error(e,
             "nodes:\n  - {id: h, type: human, prompt_message: x,"
             " auto_approve_after: 5, timeout_seconds: 5}\n",
             "auto_approve_after (5) must be smaller than timeout_seconds "
             "(5)");
  want_error(e,
             "nodes:\n  - {id: h, type: human, prompt_message: '{{ x',"
             " timeout_seconds: 5}\n",
             "unterminated");
  want_error(e,
             "nodes:\n  - {id: h, type: human, prompt_message: x,"
             " escalation_path: 3}\n",
             "escalation_path");
  assert_int_equal(ice_engine_free(e), 0);
}

static const char *const gate_wf =
    "nodes:\n"
    "  - {id: draft, type: tool, tool_name: echo, tool_args: {title: Q3}}\n"
    "  - {id: ok, type: human, dependencies: [draft],"
    " prompt_message: 'Publish {{ draft.title }}?'}\n"
    "  - {id: publish, type: tool, tool_name: echo, dependencies: [ok],"
    " run_if: ok.approved, tool_args: {said: '{{ ok.response }}'}}\n";

static void test_wait_then_restore_with_answer(void **state) {
  ice_engine_t *e = mk(1);
  log_t log = log_new();
  json_t *res, *req, *ev;

  (void)state;
  res = run(e, th_wf(e, gate_wf), &log, NULL, 0, 0);
  assert_string_equal(status_of(res), "waiting");
  th_want_node(res, "draft", "completed", NULL);
  th_want_node(res, "ok", "waiting", NULL);
  th_want_node(res, "publish", "pending", NULL);
  req = th_events_of(log.events, "human.requested", "ok");
  assert_int_equal(json_array_size(req), 1);
  ev = json_array_get(req, 0);
  th_assert_json(json_object_get(ev, "prompt_message"), "\"Publish Q3?\"");
  th_assert_json(json_object_get(ev, "approval_type"), "\"approve_reject\"");
  th_assert_json(json_object_get(ev, "choices"), "null");
  th_assert_json(json_object_get(ev, "escalation_path"), "null");
  json_decref(req);
  json_decref(res);
  /* Restored without an answer: still waiting, asked only once. */
  res = run(e, th_wf(e, gate_wf), &log, NULL, 1, 0);
  assert_string_equal(status_of(res), "waiting");
  json_decref(res);
  res = run(e, th_wf(e, gate_wf), &log, "{\"ok\": \"approve:go\"}", 1, 0);
  assert_string_equal(status_of(res), "completed");
  th_assert_json(out_of(res, "publish"), "{\"said\":\"go\"}");
  assert_int_equal(count_events(log.events, "human.requested", NULL), 1);
  assert_int_equal(count_events(log.events, "human.resolved", "ok"), 1);
  /* draft ran once, in the first run. */
  assert_int_equal(count_events(log.events, "node.started", "draft"), 1);
  json_decref(res);
  log_free(&log);
  assert_int_equal(ice_engine_free(e), 0);
}

static const char *const two_wf =
    "nodes:\n"
    "  - {id: legal, type: human, prompt_message: 'Legal?'}\n"
    "  - {id: tier, type: human, prompt_message: 'Tier?',"
    " approval_type: choice, choices: [gold, silver]}\n"
    "  - {id: join, type: tool, tool_name: echo, dependencies: [legal, tier],"
    " tool_args: {l: '{{ legal.approved }}', t: '{{ tier.choice }}'}}\n";

static void answer_in_order(const char *first, const char *second) {
  ice_engine_t *e = mk(1);
  log_t log = log_new();
  json_t *res;

  res = run(e, th_wf(e, two_wf), &log, NULL, 0, 0);
  assert_string_equal(status_of(res), "waiting");
  th_want_node(res, "legal", "waiting", NULL);
  th_want_node(res, "tier", "waiting", NULL);
  json_decref(res);
  res = run(e, th_wf(e, two_wf), &log, first, 1, 0);
  assert_string_equal(status_of(res), "waiting");
  th_want_node(res, "join", "pending", NULL);
  json_decref(res);
  res = run(e, th_wf(e, two_wf), &log, second, 1, 0);
  assert_string_equal(status_of(res), "completed");
  th_assert_json(out_of(res, "join"), "{\"l\":true,\"t\":\"gold\"}");
  assert_int_equal(count_events(log.events, "human.requested", NULL), 2);
  assert_int_equal(count_events(log.events, "human.resolved", NULL), 2);
  json_decref(res);
  log_free(&log);
  assert_int_equal(ice_engine_free(e), 0);
}

static void test_two_waiting_either_order(void **state) {
  (void)state;
  answer_in_order("{\"legal\": \"approve\"}", "{\"tier\": \"gold\"}");
  answer_in_order("{\"tier\": \"gold\"}", "{\"legal\": \"approve\"}");
}

/* The order in which nodes completed, from the recorded events. */
static json_t *completion_order(json_t *evs) {
  json_t *done = th_events_of(evs, "node.completed", NULL), *ids = json_array();
  json_t *ev;
  size_t i;

  json_array_foreach(done, i, ev) {
    json_array_append(ids, json_object_get(ev, "node_id"));
  }
  json_decref(done);
  return ids;
}

static void test_branch_runs_while_waiting(void **state) {
  ice_engine_t *e = mk(0); /* real time */
  log_t log = log_new();
  json_t *res, *order;

  (void)state;
  res = run(e,
            th_wf(e, "max_parallel: 1\nnodes:\n"
                     "  - {id: h, type: human, prompt_message: 'OK?',"
                     " timeout_seconds: 30, auto_approve_after: 0.3}\n"
                     "  - {id: s, type: tool, tool_name: sleep,"
                     " tool_args: {seconds: 0.05}}\n"
                     "  - {id: t, type: tool, tool_name: echo,"
                     " dependencies: [s], tool_args: {x: 1}}\n"),
            &log, NULL, 0, -1);
  assert_string_equal(status_of(res), "completed");
  /* h waited without holding the one max_parallel place. */
  order = completion_order(log.events);
  th_assert_json(order, "[\"s\",\"t\",\"h\"]");
  th_assert_json(out_of(res, "h"), "{\"approved\":true,\"auto\":true,"
                                   "\"response\":\"auto-approved\"}");
  json_decref(order);
  json_decref(res);
  log_free(&log);
  assert_int_equal(ice_engine_free(e), 0);
}

/* A timer that falls due while the run is stopped acts when it is
 * restored, counting from the first request. */
static void restart_past(const char *yaml, const char *want_status,
                         const char *want_out, const char *want_kind) {
  ice_engine_t *e = mk(0);
  log_t log = log_new();
  json_t *res, *rec;

  res = run(e, th_wf(e, yaml), &log, NULL, 0, 0);
  assert_string_equal(status_of(res), "waiting");
  json_decref(res);
  /* The waiting record carries the wake-up and the request time. */
  rec = json_array_get(log.records, json_array_size(log.records) - 1);
  assert_string_equal(json_string_value(json_object_get(rec, "change")),
                      "waiting");
  assert_true(json_number_value(json_object_get(rec, "wake_at_ms")) > 0);
  assert_true(json_is_number(
      json_object_get(json_object_get(rec, "state"), "requested_at")));
  usleep(400 * 1000);
  res = run(e, th_wf(e, yaml), &log, NULL, 1, 0);
  assert_string_equal(status_of(res), want_status);
  if (want_out != NULL)
    th_assert_json(out_of(res, "h"), want_out);
  else
    th_want_node(res, "h", "failed", want_kind);
  assert_int_equal(count_events(log.events, "human.requested", NULL), 1);
  assert_int_equal(count_events(log.events, "human.resolved", NULL), 1);
  json_decref(res);
  log_free(&log);
  assert_int_equal(ice_engine_free(e), 0);
}

static void test_timers_across_restart(void **state) {
  (void)state;
  restart_past("nodes:\n  - {id: h, type: human, prompt_message: 'OK?',"
               " timeout_seconds: 60, auto_approve_after: 0.3}\n",
               "completed",
               "{\"approved\":true,\"auto\":true,\"response\":"
               "\"auto-approved\"}",
               NULL);
  restart_past("nodes:\n  - {id: h, type: human, prompt_message: 'OK?',"
               " timeout_seconds: 0.3, escalation_path: ops-oncall}\n",
               "completed",
               "{\"approved\":false,\"timed_out\":true,\"escalated\":true,"
               "\"escalation_path\":\"ops-oncall\"}",
               NULL);
  restart_past("nodes:\n  - {id: h, type: human, prompt_message: 'OK?',"
               " timeout_seconds: 0.3}\n",
               "failed", NULL, "timeout");
}

/* Under a virtual clock the timer does not wait: the clock jumps. */
static void test_timer_on_virtual_clock(void **state) {
  ice_engine_t *e = mk(1);
  log_t log = log_new();
  json_t *res, *ev;

  (void)state;
  res = run(e,
            th_wf(e, "nodes:\n  - {id: h, type: human, prompt_message: x,"
                     " timeout_seconds: 3600, escalation_path: boss}\n"),
            &log, NULL, 0, 0);
  assert_string_equal(status_of(res), "completed");
  th_assert_json(json_object_get(out_of(res, "h"), "escalation_path"),
                 "\"boss\"");
  ev = th_events_of(log.events, "human.resolved", "h");
  th_assert_json(json_object_get(json_array_get(ev, 0), "resolution"),
                 "\"timed_out\"");
  json_decref(ev);
  json_decref(res);
  log_free(&log);
  assert_int_equal(ice_engine_free(e), 0);
}

static void cancel_on_request(json_t *ev, void *data) {
  (void)ev;
  ice_run_cancel(*(ice_run_t **)data);
}

/* A waiting node with a timer is cancelled with its run. */
static void test_cancel_while_waiting(void **state) {
  ice_engine_t *e = mk(0);
  ice_run_opts_t o = ICE_RUN_OPTS_INIT;
  ice_run_t *r = NULL;
  ice_sub_t *sub;
  ice_workflow_t *wf =
      th_wf(e, "nodes:\n  - {id: h, type: human, prompt_message: x,"
               " timeout_seconds: 3600, auto_approve_after: 1800}\n");

  (void)state;
  assert_int_equal(ice_run_new(e, wf, &o, &r, NULL), 0);
  ice_workflow_free(wf);
  assert_int_equal(
      ice_subscribe(e, "human.requested", cancel_on_request, &r, &sub), 0);
  assert_int_equal(ice_run_execute(r), 0);
  ice_unsubscribe(e, sub);
  assert_string_equal(status_of(ice_run_result(r)), "cancelled");
  th_want_node(ice_run_result(r), "h", "cancelled", NULL);
  ice_run_free(r);
  assert_int_equal(ice_engine_free(e), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_every_type_answered_ahead),
      cmocka_unit_test(test_check_answer),
      cmocka_unit_test(test_bad_answer_fails_the_node),
      cmocka_unit_test(test_validation),
      cmocka_unit_test(test_wait_then_restore_with_answer),
      cmocka_unit_test(test_two_waiting_either_order),
      cmocka_unit_test(test_branch_runs_while_waiting),
      cmocka_unit_test(test_timers_across_restart),
      cmocka_unit_test(test_timer_on_virtual_clock),
      cmocka_unit_test(test_cancel_while_waiting),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
