/* The `swarm` node (SPEC §6.3) through the public API, with a scripted C
 * tool as members: the call object each member gets, consensus (reached,
 * at the threshold, not reached, ties, deep equality), hierarchical (the
 * plan -> work -> aggregate order, subtask order, `done`, max_rounds),
 * marketplace (lowest bid, ties), calls of a phase in flight together, a
 * failing member, answers that break the protocol, timeouts and cancels
 * stopping every call, swarm.round events, agent members on the echo
 * provider, templates, and validation. */
#include "helpers.h"

#include <ice.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- `member`: a scripted member -------------------------------------------
 *
 * Its args are the call object ({"task", "role", "round", "phase",
 * "proposals", ...config_overrides}); the script is in config_overrides:
 *   answers: consensus proposals by round (the last one once they run out)
 *   follow: from round 2, propose last round's most common value
 *   plan: a leader's subtasks; done_round: the round whose aggregate is done
 *   bid: a marketplace bid
 *   ms: answer from a timer after ms milliseconds (default: at once)
 *   fail: fail with kind `kind` (default tool_error) and this message
 *     (in the first fail_attempts attempts of the node only, when given)
 *   bad: answer {}
 * g.calls records every call object, g.log lines "start PHASE ROLE ROUND",
 * "end ROLE" and "cancel ROLE" in the order they happen. */

static struct {
  json_t *calls;
  json_t *log;
  int inflight;
} g;

static int setup(void **state) {
  (void)state;
  g.calls = json_array();
  g.log = json_array();
  g.inflight = 0;
  return 0;
}

static int teardown(void **state) {
  (void)state;
  json_decref(g.calls);
  json_decref(g.log);
  assert_int_equal(g.inflight, 0); /* no timer left behind */
  return 0;
}

static void logf_(const char *fmt, const char *a, const char *b, long n) {
  char line[256];

  snprintf(line, sizeof(line), fmt, a, b, n);
  json_array_append_new(g.log, json_string(line));
}

static json_t *most_common(json_t *props) {
  json_t *best = NULL, *p, *q;
  size_t i, j, best_n = 0;

  json_array_foreach(props, i, p) {
    size_t n = 0;
    json_array_foreach(props, j, q) {
      n += json_equal(json_object_get(p, "proposal"),
                      json_object_get(q, "proposal"));
    }
    if (n > best_n) {
      best = json_object_get(p, "proposal");
      best_n = n;
    }
  }
  return best;
}

static json_t *script(json_t *c) {
  const char *phase = json_string_value(json_object_get(c, "phase"));
  json_int_t round = json_integer_value(json_object_get(c, "round"));
  json_t *props = json_object_get(c, "proposals");

  if (json_is_true(json_object_get(c, "bad")))
    return json_object();
  if (strcmp(phase, "propose") == 0) {
    json_t *answers = json_object_get(c, "answers");
    size_t k;
    if (json_is_true(json_object_get(c, "follow")) &&
        json_array_size(props) > 0)
      return json_pack("{s:O}", "proposal", most_common(props));
    if (answers == NULL)
      return json_pack("{s:O}", "proposal", json_object_get(c, "role"));
    k = (size_t)round < json_array_size(answers) ? (size_t)round
                                                 : json_array_size(answers);
    return json_pack("{s:O}", "proposal", json_array_get(answers, k - 1));
  }
  if (strcmp(phase, "plan") == 0)
    return json_pack("{s:O}", "subtasks", json_object_get(c, "plan"));
  if (strcmp(phase, "work") == 0) {
    char s[128];
    snprintf(s, sizeof(s), "%s did %s",
             json_string_value(json_object_get(c, "role")),
             json_string_value(json_object_get(c, "task")));
    return json_pack("{s:s}", "proposal", s);
  }
  if (strcmp(phase, "aggregate") == 0) {
    json_t *done_round = json_object_get(c, "done_round");
    char s[512] = "";
    json_t *r;
    size_t i;
    json_array_foreach(json_object_get(c, "results"), i, r) {
      size_t len = strlen(s);
      snprintf(s + len, sizeof(s) - len, "%s%s", i > 0 ? "; " : "",
               json_string_value(json_object_get(r, "proposal")));
    }
    return json_pack(
        "{s:s,s:b}", "proposal", s, "done",
        round >= (done_round != NULL ? json_integer_value(done_round) : 1));
  }
  if (strcmp(phase, "bid") == 0)
    return json_pack("{s:O}", "bid", json_object_get(c, "bid"));
  /* execute */
  return json_pack("{s:{s:O,s:O}}", "proposal", "by",
                   json_object_get(c, "role"), "bids",
                   json_object_get(c, "bids"));
}

typedef struct {
  uv_timer_t timer;
  ice_task_t *task;
  json_t *answer;
  char role[64];
} pending_t;

static void pending_closed(uv_handle_t *h) {
  pending_t *p = h->data;

  json_decref(p->answer);
  free(p);
  g.inflight--;
}

static void member_fire(uv_timer_t *h) {
  pending_t *p = h->data;
  ice_task_t *t = p->task;
  json_t *answer = json_incref(p->answer);

  logf_("end %s%s", p->role, "", 0);
  ice_task_set_data(t, NULL);
  uv_close((uv_handle_t *)&p->timer, pending_closed);
  ice_task_done(t, answer);
}

static void member_start(ice_task_t *t, json_t *args, void *data) {
  const char *role = json_string_value(json_object_get(args, "role"));
  const char *fail = json_string_value(json_object_get(args, "fail"));
  json_t *ms = json_object_get(args, "ms");
  pending_t *p;

  (void)data;
  json_array_append(g.calls, args);
  logf_("start %s %s %ld", json_string_value(json_object_get(args, "phase")),
        role, (long)json_integer_value(json_object_get(args, "round")));
  if (fail != NULL &&
      ice_task_attempt(t) <=
          (json_object_get(args, "fail_attempts") != NULL
               ? json_integer_value(json_object_get(args, "fail_attempts"))
               : 1000)) {
    const char *kind = json_string_value(json_object_get(args, "kind"));
    ice_task_fail(t, kind != NULL ? kind : "tool_error", "%s", fail);
    return;
  }
  if (ms == NULL) {
    logf_("end %s%s", role, "", 0);
    ice_task_done(t, script(args));
    return;
  }
  p = calloc(1, sizeof(*p));
  assert_non_null(p);
  g.inflight++;
  p->task = t;
  p->answer = script(args);
  snprintf(p->role, sizeof(p->role), "%s", role);
  p->timer.data = p;
  uv_timer_init(ice_task_loop(t), &p->timer);
  uv_timer_start(&p->timer, member_fire, (uint64_t)json_integer_value(ms), 0);
  ice_task_set_data(t, p);
}

static void member_cancel(ice_task_t *t, void *data) {
  pending_t *p = ice_task_data(t);

  (void)data;
  if (p == NULL)
    return;
  logf_("cancel %s%s", p->role, "", 0);
  ice_task_set_data(t, NULL);
  uv_timer_stop(&p->timer);
  uv_close((uv_handle_t *)&p->timer, pending_closed);
  ice_task_fail(t, "cancelled", "member cancelled");
}

static const ice_tool_t member_tool = {"member", member_start, member_cancel,
                                       NULL};

static ice_engine_t *mk(void) {
  ice_engine_t *e = NULL;

  assert_int_equal(ice_engine_new(&e, NULL, NULL), 0);
  assert_int_equal(ice_register_tool(e, &member_tool), 0);
  return e;
}

/* Runs yaml; returns the result, events into evs when given. */
static json_t *run(ice_engine_t *e, const char *yaml, json_t *inputs,
                   json_t *evs) {
  return th_run_wf(e, th_wf(e, yaml), inputs, 0, evs);
}

static json_t *out_of(json_t *res, const char *id) {
  return json_object_get(json_object_get(res, "output"), id);
}

static json_t *error_of(json_t *res, const char *id) {
  return json_object_get(json_object_get(json_object_get(res, "nodes"), id),
                         "error");
}

static double ms_of(json_t *res, const char *id) {
  return json_number_value(json_object_get(
      json_object_get(json_object_get(res, "nodes"), id), "duration_ms"));
}

/* The index of line in g.log, or -1. */
static int log_at(const char *line) {
  json_t *x;
  size_t i;

  json_array_foreach(g.log, i, x) {
    if (strcmp(json_string_value(x), line) == 0)
      return (int)i;
  }
  return -1;
}

/* ---- the call object ---------------------------------------------------- */

static void call_object(void **state) {
  ice_engine_t *e = mk();
  json_t *res, *inputs = th_json("{\"topic\": \"tea\", \"n\": 2}");

  (void)state;
  res = run(e,
            "nodes:\n"
            "  - id: s\n"
            "    type: swarm\n"
            "    coordination_strategy: consensus\n"
            "    task: {about: '{{ inputs.topic }}', n: '{{ inputs.n }}'}\n"
            "    max_rounds: 2\n"
            "    agents:\n"
            "      - {role: a, tool: member, config_overrides: {answers: [x], "
            "style: '{{ upper(inputs.topic) }}'}}\n"
            "      - {role: b, tool: member, config_overrides: {answers: [y, "
            "x], task: own}}\n",
            inputs, NULL);
  th_want_node(res, "s", "completed", NULL);
  assert_int_equal(json_array_size(g.calls), 4);
  /* Round 1: no proposals yet; the overrides are rendered and merged, and
   * win over the swarm's own keys. */
  th_assert_json(json_array_get(g.calls, 0),
                 "{\"task\":{\"about\":\"tea\",\"n\":2},\"role\":\"a\","
                 "\"round\":1,\"phase\":\"propose\",\"proposals\":[],"
                 "\"answers\":[\"x\"],\"style\":\"TEA\"}");
  th_assert_json(json_array_get(g.calls, 1),
                 "{\"task\":\"own\",\"role\":\"b\",\"round\":1,"
                 "\"phase\":\"propose\",\"proposals\":[],\"answers\":[\"y\","
                 "\"x\"]}");
  /* Round 2 sees round 1's answers, in member order. */
  th_assert_json(json_array_get(g.calls, 2),
                 "{\"task\":{\"about\":\"tea\",\"n\":2},\"role\":\"a\","
                 "\"round\":2,\"phase\":\"propose\",\"proposals\":[{\"role\":"
                 "\"a\",\"proposal\":\"x\"},{\"role\":\"b\",\"proposal\":"
                 "\"y\"}],\"answers\":[\"x\"],\"style\":\"TEA\"}");
  th_assert_json(out_of(res, "s"),
                 "{\"strategy\":\"consensus\",\"rounds\":2,\"consensus\":true,"
                 "\"result\":\"x\",\"support\":1.0,\"proposals\":[{\"role\":"
                 "\"a\",\"proposal\":\"x\"},{\"role\":\"b\",\"proposal\":"
                 "\"x\"}]}");
  json_decref(res);
  json_decref(inputs);
  ice_engine_free(e);
}

static void task_defaults_to_context(void **state) {
  ice_engine_t *e = mk();
  json_t *res;

  (void)state;
  res = run(e,
            "nodes:\n"
            "  - id: up\n"
            "    type: tool\n"
            "    tool_name: echo\n"
            "    tool_args: {q: 7}\n"
            "  - id: s\n"
            "    type: swarm\n"
            "    dependencies: [up]\n"
            "    agents:\n"
            "      - {role: a, tool: member}\n"
            "      - {role: b, tool: member}\n",
            NULL, NULL);
  th_want_node(res, "s", "completed", NULL);
  assert_int_equal(
      json_integer_value(json_object_get(
          json_object_get(json_object_get(json_array_get(g.calls, 0), "task"),
                          "up"),
          "q")),
      7);
  /* Default strategy consensus, max_rounds 10: a and b never agree. */
  assert_int_equal(
      json_integer_value(json_object_get(out_of(res, "s"), "rounds")), 10);
  assert_int_equal(json_array_size(g.calls), 20);
  json_decref(res);
  ice_engine_free(e);
}

/* ---- consensus ------------------------------------------------------------
 */

static void consensus_converges(void **state) {
  ice_engine_t *e = mk();
  json_t *res, *evs = json_array(), *rounds;

  (void)state;
  res = run(e,
            "nodes:\n"
            "  - id: s\n"
            "    type: swarm\n"
            "    coordination_strategy: consensus\n"
            "    task: pick a colour\n"
            "    agents:\n"
            "      - {role: a, tool: member, config_overrides: {answers: "
            "[red]}}\n"
            "      - {role: b, tool: member, config_overrides: {answers: "
            "[blue, red]}}\n"
            "      - {role: c, tool: member, config_overrides: {answers: "
            "[green], follow: true}}\n",
            NULL, evs);
  th_assert_json(out_of(res, "s"),
                 "{\"strategy\":\"consensus\",\"rounds\":2,\"consensus\":true,"
                 "\"result\":\"red\",\"support\":1.0,\"proposals\":[{\"role\":"
                 "\"a\",\"proposal\":\"red\"},{\"role\":\"b\",\"proposal\":"
                 "\"red\"},{\"role\":\"c\",\"proposal\":\"red\"}]}");
  rounds = th_events_of(evs, "swarm.round", "s");
  assert_int_equal(json_array_size(rounds), 2);
  for (size_t i = 0; i < 2; i++) {
    json_t *ev = json_array_get(rounds, i);
    assert_int_equal(json_integer_value(json_object_get(ev, "round")), i + 1);
    assert_string_equal(json_string_value(json_object_get(ev, "phase")),
                        "propose");
    assert_int_equal(json_is_true(json_object_get(ev, "consensus")), i == 1);
  }
  th_assert_json(json_object_get(json_array_get(rounds, 0), "proposals"),
                 "[{\"role\":\"a\",\"proposal\":\"red\"},{\"role\":\"b\","
                 "\"proposal\":\"blue\"},{\"role\":\"c\",\"proposal\":"
                 "\"green\"}]");
  json_decref(rounds);
  json_decref(evs);
  json_decref(res);
  ice_engine_free(e);
}

/* 3 of 4 is exactly the default threshold 0.75: reached in round 1; with
 * 0.8 it never is, and max_rounds ends the swarm. */
static void consensus_threshold(void **state) {
  static const char *wf =
      "nodes:\n"
      "  - id: s\n"
      "    type: swarm\n"
      "    max_rounds: 3\n"
      "%s"
      "    agents:\n"
      "      - {role: a, tool: member, config_overrides: {answers: [{k: [1, "
      "2]}]}}\n"
      "      - {role: b, tool: member, config_overrides: {answers: [{k: [1, "
      "2.0]}]}}\n"
      "      - {role: c, tool: member, config_overrides: {answers: [no]}}\n"
      "      - {role: d, tool: member, config_overrides: {answers: [{k: [1.0, "
      "2]}]}}\n";
  ice_engine_t *e = mk();
  char buf[1024];
  json_t *res;

  (void)state;
  snprintf(buf, sizeof(buf), wf, "");
  res = run(e, buf, NULL, NULL);
  th_assert_json(json_object_get(out_of(res, "s"), "result"), "{\"k\":[1,2]}");
  assert_true(json_is_true(json_object_get(out_of(res, "s"), "consensus")));
  assert_int_equal(
      json_integer_value(json_object_get(out_of(res, "s"), "rounds")), 1);
  assert_true(json_real_value(json_object_get(out_of(res, "s"), "support")) ==
              0.75);
  json_decref(res);

  json_array_clear(g.calls);
  snprintf(buf, sizeof(buf), wf, "    consensus_threshold: 0.8\n");
  res = run(e, buf, NULL, NULL);
  assert_false(json_is_true(json_object_get(out_of(res, "s"), "consensus")));
  assert_int_equal(
      json_integer_value(json_object_get(out_of(res, "s"), "rounds")), 3);
  assert_int_equal(json_array_size(g.calls), 12);
  th_assert_json(json_object_get(out_of(res, "s"), "result"), "{\"k\":[1,2]}");
  json_decref(res);
  ice_engine_free(e);
}

/* No consensus: the best-supported value wins, a tie goes to the earlier
 * member. */
static void consensus_tie(void **state) {
  ice_engine_t *e = mk();
  json_t *res;

  (void)state;
  res =
      run(e,
          "nodes:\n"
          "  - id: s\n"
          "    type: swarm\n"
          "    max_rounds: 2\n"
          "    consensus_threshold: 0.9\n"
          "    agents:\n"
          "      - {role: a, tool: member, config_overrides: {answers: [1]}}\n"
          "      - {role: b, tool: member, config_overrides: {answers: [2]}}\n"
          "      - {role: c, tool: member, config_overrides: {answers: [2]}}\n"
          "      - {role: d, tool: member, config_overrides: {answers: "
          "[1]}}\n",
          NULL, NULL);
  th_assert_json(out_of(res, "s"),
                 "{\"strategy\":\"consensus\",\"rounds\":2,\"consensus\":"
                 "false,\"result\":1,\"support\":0.5,\"proposals\":[{\"role\":"
                 "\"a\",\"proposal\":1},{\"role\":\"b\",\"proposal\":2},{"
                 "\"role\":\"c\",\"proposal\":2},{\"role\":\"d\",\"proposal\":"
                 "1}]}");
  json_decref(res);
  ice_engine_free(e);
}

/* ---- hierarchical ----------------------------------------------------------
 */

static void hierarchical_order(void **state) {
  ice_engine_t *e = mk();
  json_t *res, *evs = json_array(), *rounds, *c;

  (void)state;
  res = run(e,
            "nodes:\n"
            "  - id: s\n"
            "    type: swarm\n"
            "    coordination_strategy: hierarchical\n"
            "    task: write a report\n"
            "    agents:\n"
            "      - role: lead\n"
            "        tool: member\n"
            "        config_overrides:\n"
            "          done_round: 2\n"
            "          plan: [{role: w2, task: facts}, {role: w1, task: "
            "prose}]\n"
            "      - {role: w1, tool: member, config_overrides: {ms: 30}}\n"
            "      - {role: w2, tool: member, config_overrides: {ms: 60}}\n"
            "      - {role: idle, tool: member}\n",
            NULL, evs);
  th_assert_json(
      out_of(res, "s"),
      "{\"strategy\":\"hierarchical\",\"rounds\":2,\"result\":\"w2 did facts; "
      "w1 did prose\",\"assignments\":[{\"role\":\"w2\",\"task\":\"facts\","
      "\"proposal\":\"w2 did facts\"},{\"role\":\"w1\",\"task\":\"prose\","
      "\"proposal\":\"w1 did prose\"}]}");
  /* plan -> work (both in flight together) -> aggregate, twice; the idle
   * member is never asked. */
  th_assert_json(g.log,
                 "[\"start plan lead 1\",\"end lead\",\"start work w2 1\","
                 "\"start work w1 1\",\"end w1\",\"end w2\",\"start aggregate "
                 "lead 1\",\"end lead\",\"start plan lead 2\",\"end lead\","
                 "\"start work w2 2\",\"start work w1 2\",\"end w1\",\"end "
                 "w2\",\"start aggregate lead 2\",\"end lead\"]");
  /* The work calls get their subtask as task; the aggregate gets the
   * results in subtask order; round 2's plan sees round 1's work and
   * aggregate as proposals. */
  c = json_array_get(g.calls, 1);
  assert_string_equal(json_string_value(json_object_get(c, "task")), "facts");
  assert_string_equal(json_string_value(json_object_get(c, "phase")), "work");
  c = json_array_get(g.calls, 3);
  assert_string_equal(json_string_value(json_object_get(c, "task")),
                      "write a report");
  th_assert_json(json_object_get(c, "results"),
                 "[{\"role\":\"w2\",\"proposal\":\"w2 did facts\"},{\"role\":"
                 "\"w1\",\"proposal\":\"w1 did prose\"}]");
  th_assert_json(json_object_get(c, "proposals"), "[]");
  c = json_array_get(g.calls, 4);
  assert_string_equal(json_string_value(json_object_get(c, "phase")), "plan");
  th_assert_json(json_object_get(c, "proposals"),
                 "[{\"role\":\"w2\",\"proposal\":\"w2 did facts\"},{\"role\":"
                 "\"w1\",\"proposal\":\"w1 did prose\"},{\"role\":\"lead\","
                 "\"proposal\":\"w2 did facts; w1 did prose\"}]");
  rounds = th_events_of(evs, "swarm.round", "s");
  assert_int_equal(json_array_size(rounds), 2);
  assert_string_equal(
      json_string_value(json_object_get(json_array_get(rounds, 0), "phase")),
      "aggregate");
  assert_false(
      json_is_true(json_object_get(json_array_get(rounds, 0), "done")));
  assert_true(json_is_true(json_object_get(json_array_get(rounds, 1), "done")));
  json_decref(rounds);
  json_decref(evs);
  json_decref(res);
  ice_engine_free(e);
}

static void hierarchical_bounds(void **state) {
  ice_engine_t *e = mk();
  json_t *res;

  (void)state;
  /* Never done: max_rounds ends it with the last aggregate. An empty plan
   * goes straight to the aggregate. */
  res = run(e,
            "nodes:\n"
            "  - id: s\n"
            "    type: swarm\n"
            "    coordination_strategy: hierarchical\n"
            "    max_rounds: 3\n"
            "    agents:\n"
            "      - {role: lead, tool: member, config_overrides: {plan: [], "
            "done_round: 99}}\n"
            "      - {role: w, tool: member}\n",
            NULL, NULL);
  th_assert_json(out_of(res, "s"),
                 "{\"strategy\":\"hierarchical\",\"rounds\":3,\"result\":\"\","
                 "\"assignments\":[]}");
  assert_int_equal(json_array_size(g.calls), 6);
  json_decref(res);

  /* A plan naming no member fails the node, naming the leader. */
  res = run(e,
            "nodes:\n"
            "  - id: s\n"
            "    type: swarm\n"
            "    coordination_strategy: hierarchical\n"
            "    agents:\n"
            "      - {role: lead, tool: member, config_overrides: {plan: "
            "[{role: ghost, task: x}]}}\n"
            "      - {role: w, tool: member}\n",
            NULL, NULL);
  th_want_node(res, "s", "failed", "tool_error");
  assert_non_null(
      strstr(json_string_value(json_object_get(error_of(res, "s"), "message")),
             "member 'lead' answered subtasks[0] for 'ghost', which is not a "
             "member in round 1 (phase plan)"));
  json_decref(res);
  ice_engine_free(e);
}

/* ---- marketplace ----------------------------------------------------------
 */

static void marketplace(void **state) {
  ice_engine_t *e = mk();
  json_t *res, *evs = json_array(), *rounds;

  (void)state;
  res = run(e,
            "nodes:\n"
            "  - id: s\n"
            "    type: swarm\n"
            "    coordination_strategy: marketplace\n"
            "    task: deliver\n"
            "    agents:\n"
            "      - {role: a, tool: member, config_overrides: {bid: 5}}\n"
            "      - {role: b, tool: member, config_overrides: {bid: 2.5}}\n"
            "      - {role: c, tool: member, config_overrides: {bid: 2.5}}\n"
            "      - {role: d, tool: member, config_overrides: {bid: 7}}\n",
            NULL, evs);
  th_assert_json(out_of(res, "s"),
                 "{\"strategy\":\"marketplace\",\"winner\":\"b\",\"bids\":{"
                 "\"a\":5,\"b\":2.5,\"c\":2.5,\"d\":7},\"result\":{\"by\":"
                 "\"b\",\"bids\":{\"a\":5,\"b\":2.5,\"c\":2.5,\"d\":7}}}");
  /* Four bids, then only the winner executes. */
  assert_int_equal(json_array_size(g.calls), 5);
  assert_string_equal(
      json_string_value(json_object_get(json_array_get(g.calls, 4), "phase")),
      "execute");
  rounds = th_events_of(evs, "swarm.round", "s");
  assert_int_equal(json_array_size(rounds), 1);
  assert_string_equal(
      json_string_value(json_object_get(json_array_get(rounds, 0), "winner")),
      "b");
  json_decref(rounds);
  json_decref(evs);
  json_decref(res);

  /* The lowest bid wins wherever it is; a bid that is not a number fails. */
  res = run(e,
            "nodes:\n"
            "  - id: s\n"
            "    type: swarm\n"
            "    coordination_strategy: marketplace\n"
            "    agents:\n"
            "      - {role: a, tool: member, config_overrides: {bid: 1}}\n"
            "      - {role: b, tool: member, config_overrides: {bid: -1}}\n"
            "  - id: t\n"
            "    type: swarm\n"
            "    coordination_strategy: marketplace\n"
            "    agents:\n"
            "      - {role: a, tool: member, config_overrides: {bid: 1}}\n"
            "      - {role: b, tool: member, config_overrides: {bid: cheap}}\n",
            NULL, NULL);
  assert_string_equal(
      json_string_value(json_object_get(out_of(res, "s"), "winner")), "b");
  th_want_node(res, "t", "failed", "tool_error");
  assert_non_null(
      strstr(json_string_value(json_object_get(error_of(res, "t"), "message")),
             "member 'b' answered without a number as \"bid\""));
  json_decref(res);
  ice_engine_free(e);
}

/* ---- concurrency, failures, cancels ----------------------------------------
 */

static void round_runs_concurrently(void **state) {
  ice_engine_t *e = mk();
  json_t *res;

  (void)state;
  res = run(e,
            "nodes:\n"
            "  - id: s\n"
            "    type: swarm\n"
            "    max_rounds: 2\n"
            "    agents:\n"
            "      - {role: a, tool: member, config_overrides: {ms: 150}}\n"
            "      - {role: b, tool: member, config_overrides: {ms: 150}}\n"
            "      - {role: c, tool: member, config_overrides: {ms: 150}}\n",
            NULL, NULL);
  th_want_node(res, "s", "completed", NULL);
  /* Every call of a round starts before any ends; rounds do not overlap. */
  assert_true(log_at("start propose c 1") < log_at("end a"));
  assert_true(log_at("start propose a 2") > 4);
  assert_int_equal(json_array_size(g.log), 12);
  /* Two rounds of 150 ms each, not six calls of 150 ms. */
  assert_true(ms_of(res, "s") >= 290);
  assert_true(ms_of(res, "s") < 600);
  json_decref(res);
  ice_engine_free(e);
}

static void member_failure(void **state) {
  ice_engine_t *e = mk();
  json_t *res;

  (void)state;
  res = run(e,
            "nodes:\n"
            "  - id: s\n"
            "    type: swarm\n"
            "    agents:\n"
            "      - {role: slow, tool: member, config_overrides: {ms: 5000}}\n"
            "      - {role: broken, tool: member, config_overrides: {fail: "
            "disk full, kind: transient}}\n"
            "      - {role: other, tool: member, config_overrides: {ms: "
            "5000}}\n",
            NULL, NULL);
  th_want_node(res, "s", "failed", "transient");
  assert_string_equal(
      json_string_value(json_object_get(error_of(res, "s"), "message")),
      "member 'broken' failed in round 1 (phase propose): disk full");
  /* The other calls of the round were stopped, not waited for. */
  assert_true(log_at("cancel slow") >= 0);
  assert_int_equal(log_at("end slow"), -1);
  assert_int_equal(log_at("end other"), -1);
  assert_true(ms_of(res, "s") < 1000);
  json_decref(res);

  /* An answer without a proposal breaks the protocol: tool_error. */
  res = run(e,
            "nodes:\n"
            "  - id: s\n"
            "    type: swarm\n"
            "    agents:\n"
            "      - {role: a, tool: member}\n"
            "      - {role: mute, tool: member, config_overrides: {bad: "
            "true}}\n",
            NULL, NULL);
  th_want_node(res, "s", "failed", "tool_error");
  assert_string_equal(
      json_string_value(json_object_get(error_of(res, "s"), "message")),
      "member 'mute' answered without a \"proposal\" in round 1 (phase "
      "propose)");
  json_decref(res);

  /* A retried swarm runs again from round 1. */
  json_array_clear(g.calls);
  res =
      run(e,
          "nodes:\n"
          "  - id: s\n"
          "    type: swarm\n"
          "    retry_policy: {max_attempts: 2, backoff_seconds: 0.01}\n"
          "    agents:\n"
          "      - {role: a, tool: member, config_overrides: {answers: [x]}}\n"
          "      - {role: b, tool: member, config_overrides: {answers: [x], "
          "fail: busy, kind: transient, fail_attempts: 1}}\n",
          NULL, NULL);
  th_want_node(res, "s", "completed", NULL);
  assert_int_equal(
      json_integer_value(json_object_get(
          json_object_get(json_object_get(res, "nodes"), "s"), "attempts")),
      2);
  assert_int_equal(json_array_size(g.calls), 4);
  assert_int_equal(
      json_integer_value(json_object_get(json_array_get(g.calls, 3), "round")),
      1);
  json_decref(res);
  ice_engine_free(e);
}

static void timeout_stops_every_call(void **state) {
  ice_engine_t *e = mk();
  json_t *res;

  (void)state;
  res = run(e,
            "nodes:\n"
            "  - id: s\n"
            "    type: swarm\n"
            "    timeout_seconds: 0.2\n"
            "    agents:\n"
            "      - {role: a, tool: member, config_overrides: {ms: 10}}\n"
            "      - {role: b, tool: member, config_overrides: {ms: 5000}}\n"
            "      - {role: c, tool: sleep, config_overrides: {seconds: 30}}\n"
            "  - id: after\n"
            "    type: tool\n"
            "    tool_name: echo\n"
            "    dependencies: [s]\n"
            "    trigger_rule: all_done\n",
            NULL, NULL);
  th_want_node(res, "s", "failed", "timeout");
  th_want_node(res, "after", "completed", NULL);
  assert_true(log_at("end a") >= 0);
  assert_true(log_at("cancel b") >= 0);
  assert_true(ms_of(res, "s") < 1000);
  json_decref(res);
  ice_engine_free(e);
}

/* ---- agent members
 * ------------------------------------------------------------ */

/* The echo provider answers the agent's user message, which is the call
 * object: the agent's step is that object, its `message` (set through
 * config_overrides) the agent's final message, and the member's answer is
 * that message parsed as a JSON object, else {"proposal": message}. */
static void agent_members(void **state) {
  ice_engine_t *e = mk();
  json_t *res, *evs = json_array();

  (void)state;
  res = run(e,
            "agents:\n"
            "  helper:\n"
            "    system_prompt: You are one voice of a swarm.\n"
            "    llm_config: {provider: echo}\n"
            "nodes:\n"
            "  - id: s\n"
            "    type: swarm\n"
            "    task: name a fruit\n"
            "    agents:\n"
            "      - {role: json, agent: helper, config_overrides: {message: "
            "'{\"proposal\": \"fig\", \"why\": \"sweet\"}'}}\n"
            "      - {role: text, agent: helper, config_overrides: {message: "
            "fig}}\n"
            "      - {role: fenced, agent: helper, config_overrides: "
            "{message: \"```json\\n{\\\"proposal\\\": \\\"fig\\\"}\\n```\"}}\n"
            "      - {role: tool, tool: member, config_overrides: {answers: "
            "[plum]}}\n",
            NULL, evs);
  th_want_node(res, "s", "completed", NULL);
  th_assert_json(out_of(res, "s"),
                 "{\"strategy\":\"consensus\",\"rounds\":1,\"consensus\":true,"
                 "\"result\":\"fig\",\"support\":0.75,\"proposals\":[{\"role\":"
                 "\"json\",\"proposal\":\"fig\"},{\"role\":\"text\","
                 "\"proposal\":\"fig\"},{\"role\":\"fenced\",\"proposal\":"
                 "\"fig\"},{\"role\":\"tool\",\"proposal\":\"plum\"}]}");
  /* The LLM requests were made and counted. */
  assert_true(json_integer_value(json_object_get(
                  json_object_get(res, "metrics"), "tokens")) > 0);
  json_decref(evs);
  json_decref(res);

  /* An agent whose answer has no proposal fails as llm_error. */
  res = run(e,
            "agents:\n"
            "  helper: {llm_config: {provider: echo}}\n"
            "nodes:\n"
            "  - id: s\n"
            "    type: swarm\n"
            "    coordination_strategy: marketplace\n"
            "    agents:\n"
            "      - {role: a, agent: helper, config_overrides: {message: "
            "'{\"price\": 3}'}}\n"
            "      - {role: b, tool: member, config_overrides: {bid: 1}}\n",
            NULL, NULL);
  th_want_node(res, "s", "failed", "llm_error");
  assert_non_null(
      strstr(json_string_value(json_object_get(error_of(res, "s"), "message")),
             "member 'a' answered without a number as \"bid\""));
  json_decref(res);
  ice_engine_free(e);
}

/* ---- validation
 * ---------------------------------------------------------------- */

/* Parses yaml, which must be invalid; returns every diagnostic, one per
 * line (caller frees). */
static char *diags_of(ice_engine_t *e, const char *yaml) {
  ice_workflow_t *wf = NULL;
  ice_diags_t d = {0};
  size_t len = 0;
  char *all = calloc(1, 1);

  assert_int_not_equal(
      ice_workflow_parse(e, "t.yaml", yaml, strlen(yaml), 1, &wf, &d), 0);
  assert_null(wf);
  for (size_t i = 0; i < d.count; i++) {
    char *s = ice_diag_format(&d.items[i]);
    all = realloc(all, len + strlen(s) + 2);
    strcpy(all + len, s);
    len += strlen(s);
    strcpy(all + len, "\n");
    len++;
    free(s);
  }
  ice_diags_free(&d);
  return all;
}

static void want_diag(const char *all, const char *line) {
  if (strstr(all, line) == NULL) {
    fprintf(stderr, "missing: %s\nin:\n%s", line, all);
    fail();
  }
}

static void validation(void **state) {
  ice_engine_t *e = mk();
  char *d;

  (void)state;
  d = diags_of(e, "agents:\n"
                  "  helper: {llm_config: {provider: echo}}\n"
                  "nodes:\n"
                  "  - id: one\n"
                  "    type: swarm\n"
                  "    agents:\n"
                  "      - {role: a, tool: echo}\n"
                  "  - id: s\n"
                  "    type: swarm\n"
                  "    coordination_strategy: concensus\n"
                  "    max_rounds: 0\n"
                  "    consensus_threshold: 0\n"
                  "    agents:\n"
                  "      - {role: a, tool: echo}\n"
                  "      - {role: a, tool: echo}\n"
                  "      - {role: b, tool: echo, agent: helper}\n"
                  "      - {role: c, tool: nope}\n"
                  "      - {role: d, agent: ghost}\n"
                  "      - {role: e}\n"
                  "      - {tool: echo}\n"
                  "      - {role: f, tool: echo, confg_overrides: {}}\n"
                  "      - {role: g, tool: echo, config_overrides: [1]}\n"
                  "      - oops\n"
                  "  - id: nolist\n"
                  "    type: swarm\n");
  want_diag(d, "t.yaml:7:7: error: node 'one': a swarm needs at least two "
               "members in agents (got 1)\n");
  want_diag(d, "t.yaml:10:5: error: node 's': coordination_strategy "
               "'concensus' is not one of consensus, hierarchical, "
               "marketplace (did you mean 'consensus'?)\n");
  want_diag(d, "t.yaml:11:5: error: node 's': max_rounds must be an integer "
               "from 1 to 100000\n");
  want_diag(d, "t.yaml:12:5: error: node 's': consensus_threshold must be a "
               "number in (0, 1]\n");
  want_diag(d, "t.yaml:15:10: error: node 's': agents[1]: duplicate role 'a': "
               "roles must be unique\n");
  want_diag(d, "t.yaml:16:19: error: node 's': agents[2] (role 'b'): give "
               "either \"agent\" or \"tool\", not both\n");
  want_diag(d, "t.yaml:17:19: error: node 's': unknown tool 'nope'");
  want_diag(d, "t.yaml:18:19: error: node 's': unknown agent 'ghost'");
  want_diag(d, "t.yaml:19:9: error: node 's': agents[5] (role 'e'): needs "
               "\"agent\" (a name of `agents`) or \"tool\" (a tool name)\n");
  want_diag(d, "t.yaml:20:9: error: node 's': agents[6]: missing \"role\"\n");
  want_diag(d, "t.yaml:21:31: error: node 's': agents[7]: unknown field "
               "'confg_overrides' (did you "
               "mean 'config_overrides'?)\n");
  want_diag(d, "t.yaml:22:31: error: node 's': agents[8]: config_overrides "
               "must be an object\n");
  want_diag(d, "t.yaml:23:9: error: node 's': agents[9] must be an object");
  want_diag(d, "node 'nolist': missing required field 'agents'\n");
  free(d);
  ice_engine_free(e);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void) {
  const struct CMUnitTest tests[] = {
      T(call_object),
      T(task_defaults_to_context),
      T(consensus_converges),
      T(consensus_threshold),
      T(consensus_tie),
      T(hierarchical_order),
      T(hierarchical_bounds),
      T(marketplace),
      T(round_runs_concurrently),
      T(member_failure),
      T(timeout_stops_every_call),
      T(agent_members),
      T(validation),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
