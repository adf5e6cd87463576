/* Running workflows through the public API (SPEC §2.2, §3.1, §4.2-§4.5,
 * §5.1, §5.3, §10, §11.1): dataflow scheduling and its order, max_parallel,
 * failure policies and trigger rules, run_if, retries measured on the
 * virtual clock, timeouts, cancellation, schemas, input mappings,
 * templates, the event bus, run and engine lifetimes, and custom
 * executors and tools. */
#include "helpers.h"

#include <ice.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- shared state of the custom executors ---- */

static struct {
  int inflight, max_inflight;
  json_t *order;   /* node ids in start order */
  json_t *ctx;     /* last context seen by the `probe` executor */
  json_t *lookups; /* lookups done by `probe` */
  int cancels;     /* executor cancel() calls */
} g;

static void g_reset(void) {
  json_decref(g.order);
  json_decref(g.ctx);
  json_decref(g.lookups);
  memset(&g, 0, sizeof(g));
  g.order = json_array();
  g.lookups = json_object();
}

static int setup(void **state) {
  (void)state;
  g_reset();
  return 0;
}

static int teardown(void **state) {
  (void)state;
  json_decref(g.order);
  json_decref(g.ctx);
  json_decref(g.lookups);
  memset(&g, 0, sizeof(g));
  return 0;
}

static void note_start(ice_task_t *t) {
  json_array_append_new(g.order, json_string(ice_task_node_id(t)));
  if (++g.inflight > g.max_inflight)
    g.max_inflight = g.inflight;
}

/* `async`: completes from a uv timer after `ms` (default 1); fails with
 * kind `fail` when given. */
typedef struct {
  uv_timer_t timer;
  ice_task_t *task;
} atimer_t;

static void atimer_closed(uv_handle_t *h) {
  free(h->data);
}

static void async_fire(uv_timer_t *h) {
  atimer_t *a = h->data;
  ice_task_t *t = a->task;
  json_t *cfg = ice_task_config(t);
  const char *fail = json_string_value(json_object_get(cfg, "fail"));

  g.inflight--;
  ice_task_set_data(t, NULL);
  uv_close((uv_handle_t *)&a->timer, atimer_closed);
  if (fail != NULL)
    ice_task_fail(t, fail, "async failed");
  else
    ice_task_done(t, json_pack("{s:s,s:i}", "id", ice_task_node_id(t),
                               "attempt", ice_task_attempt(t)));
}

static void async_start(ice_task_t *t) {
  json_t *ms = json_object_get(ice_task_config(t), "ms");
  atimer_t *a = calloc(1, sizeof(*a));

  note_start(t);
  a->task = t;
  a->timer.data = a;
  uv_timer_init(ice_task_loop(t), &a->timer);
  ice_task_set_data(t, a);
  uv_timer_start(&a->timer, async_fire,
                 json_is_integer(ms) ? (uint64_t)json_integer_value(ms) : 1, 0);
}

static void async_cancel(ice_task_t *t) {
  atimer_t *a = ice_task_data(t);

  g.cancels++;
  if (a == NULL)
    return;
  g.inflight--;
  ice_task_set_data(t, NULL);
  uv_timer_stop(&a->timer);
  uv_close((uv_handle_t *)&a->timer, atimer_closed);
  ice_task_fail(t, "cancelled", "async cancelled");
}

static const ice_field_t async_fields[] = {
    {"ms", ICE_T_INT, 0, 0},
    {"fail", ICE_T_STRING, 0, 0},
    {NULL, 0, 0, 0},
};

static const ice_executor_t async_ex = {.abi = ICE_EXECUTOR_ABI,
                                        .type = "async",
                                        .fields = async_fields,
                                        .start = async_start,
                                        .cancel = async_cancel};

/* `sync`: completes inside start(). mode: "scalar" outputs 5, "twice"
 * completes twice, "badkind" fails with an unknown kind, "fail" fails. */
static void sync_start(ice_task_t *t) {
  json_t *cfg = ice_task_config(t);
  const char *mode = json_string_value(json_object_get(cfg, "mode"));

  note_start(t);
  g.inflight--;
  if (mode == NULL) {
    ice_task_done(t, json_pack("{s:s}", "id", ice_task_node_id(t)));
  } else if (strcmp(mode, "scalar") == 0) {
    ice_task_done(t, json_integer(5));
  } else if (strcmp(mode, "twice") == 0) {
    ice_task_done(t, json_pack("{s:i}", "n", 1));
    ice_task_done(t, json_pack("{s:i}", "n", 2));
    ice_task_fail(t, "tool_error", "too late");
  } else if (strcmp(mode, "badkind") == 0) {
    ice_task_fail(t, "no_such_kind", "odd %d", 42);
  } else {
    ice_task_fail(t, "tool_error", "sync failed");
  }
}

static const ice_field_t sync_fields[] = {
    {"mode", ICE_T_STRING, 0, 0},
    {NULL, 0, 0, 0},
};

static const ice_executor_t sync_ex = {.abi = ICE_EXECUTOR_ABI,
                                       .type = "sync",
                                       .fields = sync_fields,
                                       .start = sync_start};

/* `probe`: records its context and a few lookups, outputs {}. */
static void probe_start(ice_task_t *t) {
  static const char *const names[] = {"a", "inputs", "topic",
                                      "m", "other",  "f"};

  json_decref(g.ctx);
  g.ctx = ice_task_context(t);
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
    json_t *v = ice_task_lookup(t, names[i]);
    json_object_set_new(g.lookups, names[i],
                        v != NULL ? json_incref(v) : json_string("<none>"));
  }
  ice_task_done(t, json_object());
}

static const ice_executor_t probe_ex = {
    .abi = ICE_EXECUTOR_ABI, .type = "probe", .start = probe_start};

/* C tools: `add` (sync) and `later` (completes from a timer). */
static void add_start(ice_task_t *t, json_t *args, void *data) {
  (void)data;
  ice_task_done(t,
                json_pack("{s:I}", "sum",
                          json_integer_value(json_object_get(args, "a")) +
                              json_integer_value(json_object_get(args, "b"))));
}

static void later_fire(uv_timer_t *h) {
  atimer_t *a = h->data;
  ice_task_t *t = a->task;

  ice_task_set_data(t, NULL);
  uv_close((uv_handle_t *)&a->timer, atimer_closed);
  ice_task_done(t, json_string("later"));
}

static void later_start(ice_task_t *t, json_t *args, void *data) {
  atimer_t *a = calloc(1, sizeof(*a));

  (void)args;
  (void)data;
  a->task = t;
  a->timer.data = a;
  uv_timer_init(ice_task_loop(t), &a->timer);
  ice_task_set_data(t, a);
  uv_timer_start(&a->timer, later_fire, 1, 0);
}

static void later_cancel(ice_task_t *t, void *data) {
  (void)data;
  async_cancel(t);
  g.inflight++; /* later_start did not count itself */
}

/* `stubborn` (node type) and `stubborn_tool` (C tool): complete from a
 * timer after 200 ms and have no cancel hook, so a timeout cannot stop
 * them. stub_done counts their completions. */
static int stub_done;

static void stub_fire(uv_timer_t *h) {
  atimer_t *a = h->data;
  ice_task_t *t = a->task;

  stub_done++;
  uv_close((uv_handle_t *)&a->timer, atimer_closed);
  /* The node moved on: this outcome is dropped, and the accessors say so. */
  assert_int_equal(ice_task_index(t), -1);
  assert_null(ice_task_lookup(t, "inputs"));
  ice_task_done(t, json_pack("{s:b}", "late", 1));
}

static void stub_arm(ice_task_t *t) {
  atimer_t *a = calloc(1, sizeof(*a));

  a->task = t;
  a->timer.data = a;
  uv_timer_init(ice_task_loop(t), &a->timer);
  uv_timer_start(&a->timer, stub_fire, 200, 0);
}

static void stub_tool_start(ice_task_t *t, json_t *args, void *data) {
  (void)args;
  (void)data;
  stub_arm(t);
}

static const ice_executor_t stubborn_ex = {
    .abi = ICE_EXECUTOR_ABI, .type = "stubborn", .start = stub_arm};

static ice_engine_t *mk(int virtual_clock) {
  ice_engine_t *e = NULL;
  ice_engine_opts_t o = ICE_ENGINE_OPTS_INIT;
  ice_tool_t add = {"add", add_start, NULL, NULL};
  ice_tool_t later = {"later", later_start, later_cancel, NULL};

  o.virtual_clock = virtual_clock;
  assert_int_equal(ice_engine_new(&e, NULL, &o), 0);
  assert_int_equal(ice_register_node(e, &async_ex), 0);
  assert_int_equal(ice_register_node(e, &sync_ex), 0);
  assert_int_equal(ice_register_node(e, &probe_ex), 0);
  assert_int_equal(ice_register_tool(e, &add), 0);
  assert_int_equal(ice_register_tool(e, &later), 0);
  {
    ice_tool_t stub = {"stubborn_tool", stub_tool_start, NULL, NULL};
    assert_int_equal(ice_register_node(e, &stubborn_ex), 0);
    assert_int_equal(ice_register_tool(e, &stub), 0);
  }
  return e;
}

static void done_engine(ice_engine_t *e) {
  assert_int_equal(ice_engine_free(e), 0);
}

/* Runs yaml with inputs (JSON text or NULL) to the end; returns a copy of
 * the result (caller decrefs). */
static json_t *run_opts(ice_engine_t *e, const char *yaml, const char *inputs,
                        int max_parallel) {
  json_t *in = inputs != NULL ? th_json(inputs) : NULL;
  json_t *res = th_run_wf(e, th_wf(e, yaml), in, max_parallel, NULL);

  json_decref(in);
  return res;
}

static json_t *run(ice_engine_t *e, const char *yaml, const char *inputs) {
  return run_opts(e, yaml, inputs, 0);
}

static const char *str_at(json_t *res, const char *a, const char *b,
                          const char *c) {
  json_t *v = json_object_get(res, a);

  if (b != NULL)
    v = json_object_get(v, b);
  if (c != NULL)
    v = json_object_get(v, c);
  return json_string_value(v);
}

static json_int_t int_at(json_t *res, const char *a, const char *b,
                         const char *c) {
  json_t *v = json_object_get(res, a);

  if (b != NULL)
    v = json_object_get(v, b);
  if (c != NULL)
    v = json_object_get(v, c);
  if (!json_is_integer(v))
    fail_msg("%s.%s.%s is not an integer", a, b ? b : "", c ? c : "");
  return json_integer_value(v);
}

/* "[1000,2000]" style list of field `f` of the events. */
static void want_field_list(json_t *evs, const char *f, const char *expected) {
  json_t *vals = json_array(), *ev;
  size_t i;

  json_array_foreach(evs, i, ev)
      json_array_append(vals, json_object_get(ev, f));
  th_assert_json(vals, expected);
  json_decref(vals);
}

/* ---- scheduling ---- */

static void test_hello(void **state) {
  ice_engine_t *e = mk(0);
  json_t *res;

  (void)state;
  res = run(e,
            "name: demo\nnodes:\n"
            "  - {id: hello, type: tool, tool_name: echo, tool_args: {msg: "
            "hi}}\n",
            NULL);
  assert_string_equal(str_at(res, "status", NULL, NULL), "completed");
  assert_true(json_is_true(json_object_get(res, "success")));
  th_assert_json(json_object_get(res, "output"),
                 "{\"hello\":{\"msg\":\"hi\"}}");
  th_assert_json(json_object_get(res, "errors"), "[]");
  json_decref(res);
  done_engine(e);
}

static void test_result_shape(void **state) {
  ice_engine_t *e = mk(1);
  ice_workflow_t *wf;
  ice_run_t *r;
  json_t *res, *v, *keys = json_array();
  const char *k;

  (void)state;
  wf = th_wf(e, "name: demo\nnodes:\n"
                "  - {id: hello, type: tool, tool_name: echo, tool_args: {msg: "
                "hi}}\n"
                "  - {id: bad, type: tool, tool_name: fail, tool_args: "
                "{message: boom, kind: transient}}\n"
                "  - {id: after, type: tool, tool_name: echo, dependencies: "
                "[bad]}\n"
                "  - id: fl\n    type: tool\n    tool_name: flaky\n"
                "    tool_args: {failures: 1}\n"
                "    retry_policy: {max_attempts: 2}\n");
  assert_int_equal(ice_run_new(e, wf, NULL, &r, NULL), 0);
  ice_workflow_free(wf);
  assert_int_equal(ice_run_execute(r), 0);
  res = ice_run_result(r);
  /* Top-level keys, in the order of §11.1. */
  json_object_foreach(res, k, v) json_array_append_new(keys, json_string(k));
  th_assert_json(keys, "[\"run_id\",\"workflow\",\"status\",\"success\","
                       "\"output\",\"nodes\",\"errors\",\"metrics\"]");
  json_decref(keys);
  assert_string_equal(str_at(res, "run_id", NULL, NULL), ice_run_id(r));
  assert_true(strlen(ice_run_id(r)) > 0);
  assert_string_equal(str_at(res, "workflow", NULL, NULL), "demo");
  assert_string_equal(str_at(res, "status", NULL, NULL), "failed");
  assert_true(json_is_false(json_object_get(res, "success")));
  /* output: every completed top-level node. */
  th_assert_json(json_object_get(res, "output"),
                 "{\"hello\":{\"msg\":\"hi\"},\"fl\":{\"attempts\":2}}");
  assert_ptr_equal(ice_run_output(r, "hello"),
                   json_object_get(json_object_get(res, "output"), "hello"));
  assert_null(ice_run_output(r, "bad"));
  /* nodes: status, attempts, duration_ms; error or reason. */
  v = json_object_get(json_object_get(res, "nodes"), "hello");
  assert_int_equal(json_object_size(v), 3);
  assert_string_equal(json_string_value(json_object_get(v, "status")),
                      "completed");
  assert_int_equal(json_integer_value(json_object_get(v, "attempts")), 1);
  assert_true(json_is_number(json_object_get(v, "duration_ms")));
  assert_true(json_number_value(json_object_get(v, "duration_ms")) >= 0);
  v = json_object_get(json_object_get(res, "nodes"), "bad");
  th_assert_json(json_object_get(v, "error"),
                 "{\"kind\":\"transient\",\"message\":\"boom\"}");
  v = json_object_get(json_object_get(res, "nodes"), "after");
  assert_string_equal(json_string_value(json_object_get(v, "reason")),
                      "upstream_failed");
  assert_int_equal(json_integer_value(json_object_get(v, "attempts")), 0);
  assert_int_equal(int_at(res, "nodes", "fl", "attempts"), 2);
  th_assert_json(json_object_get(res, "errors"), "[\"Node bad failed: boom\"]");
  /* metrics. */
  keys = json_array();
  json_object_foreach(json_object_get(res, "metrics"), k, v)
      json_array_append_new(keys, json_string(k));
  th_assert_json(keys, "[\"duration_ms\",\"nodes_completed\",\"nodes_failed\","
                       "\"nodes_skipped\",\"nodes_cancelled\",\"retries\","
                       "\"tokens\",\"cost_usd\"]");
  json_decref(keys);
  assert_int_equal(int_at(res, "metrics", "nodes_completed", NULL), 2);
  assert_int_equal(int_at(res, "metrics", "nodes_failed", NULL), 1);
  assert_int_equal(int_at(res, "metrics", "nodes_skipped", NULL), 1);
  assert_int_equal(int_at(res, "metrics", "nodes_cancelled", NULL), 0);
  assert_int_equal(int_at(res, "metrics", "retries", NULL), 1);
  assert_int_equal(int_at(res, "metrics", "tokens", NULL), 0);
  assert_true(json_number_value(json_object_get(json_object_get(res, "metrics"),
                                                "cost_usd")) == 0);
  assert_true(json_is_number(
      json_object_get(json_object_get(res, "metrics"), "duration_ms")));
  ice_run_free(r);
  done_engine(e);
}

static void test_long_chain(void **state) {
  /* 100,000 nodes in a chain of synchronous echo tools: constant stack. */
  ice_engine_t *e = mk(0);
  const int n = 100000;
  json_t *doc = json_object(), *nodes = json_array();
  ice_workflow_t *wf = NULL;
  ice_run_t *r = NULL;
  char id[32], prev[32];

  (void)state;
  for (int i = 0; i < n; i++) {
    json_t *nd;
    snprintf(id, sizeof(id), "n%d", i);
    nd = json_pack("{s:s,s:s,s:s,s:{s:i}}", "id", id, "type", "tool",
                   "tool_name", "echo", "tool_args", "i", i);
    if (i > 0) {
      snprintf(prev, sizeof(prev), "n%d", i - 1);
      json_object_set_new(nd, "dependencies", json_pack("[s]", prev));
    }
    json_array_append_new(nodes, nd);
  }
  json_object_set_new(doc, "nodes", nodes);
  assert_int_equal(ice_workflow_from_json(e, "chain", doc, &wf, NULL), 0);
  json_decref(doc);
  assert_int_equal(ice_workflow_node_count(wf), n);
  assert_int_equal(ice_run_new(e, wf, NULL, &r, NULL), 0);
  ice_workflow_free(wf);
  assert_int_equal(ice_run_execute(r), 0);
  assert_string_equal(str_at(ice_run_result(r), "status", NULL, NULL),
                      "completed");
  assert_int_equal(
      int_at(ice_run_result(r), "metrics", "nodes_completed", NULL), n);
  th_assert_json(ice_run_output(r, "n99999"), "{\"i\":99999}");
  ice_run_free(r);
  done_engine(e);
}

static void test_wide_fan_out_in(void **state) {
  ice_engine_t *e = mk(0);
  const int n = 10000;
  json_t *doc = json_object(), *nodes = json_array(), *all = json_array();
  ice_workflow_t *wf = NULL;
  ice_run_t *r = NULL;
  char id[32];

  (void)state;
  json_array_append_new(nodes, json_pack("{s:s,s:s,s:s}", "id", "root", "type",
                                         "tool", "tool_name", "echo"));
  for (int i = 0; i < n; i++) {
    snprintf(id, sizeof(id), "m%d", i);
    json_array_append_new(nodes, json_pack("{s:s,s:s,s:s,s:[s],s:{s:i}}", "id",
                                           id, "type", "tool", "tool_name",
                                           "echo", "dependencies", "root",
                                           "tool_args", "i", i));
    json_array_append_new(all, json_string(id));
  }
  json_array_append_new(nodes, json_pack("{s:s,s:s,s:s,s:o,s:{s:s}}", "id",
                                         "sink", "type", "tool", "tool_name",
                                         "echo", "dependencies", all,
                                         "tool_args", "last", "{{ m9999.i }}"));
  json_object_set_new(doc, "nodes", nodes);
  json_object_set_new(doc, "max_parallel", json_integer(64));
  assert_int_equal(ice_workflow_from_json(e, "fan", doc, &wf, NULL), 0);
  json_decref(doc);
  assert_int_equal(ice_run_new(e, wf, NULL, &r, NULL), 0);
  ice_workflow_free(wf);
  assert_int_equal(ice_run_execute(r), 0);
  assert_string_equal(str_at(ice_run_result(r), "status", NULL, NULL),
                      "completed");
  assert_int_equal(
      int_at(ice_run_result(r), "metrics", "nodes_completed", NULL), n + 2);
  th_assert_json(ice_run_output(r, "sink"), "{\"last\":9999}");
  ice_run_free(r);
  done_engine(e);
}

static void test_max_parallel(void **state) {
  ice_engine_t *e = mk(0);
  char yaml[4096];
  size_t len = 0;
  json_t *res;

  (void)state;
  len += (size_t)snprintf(yaml + len, sizeof(yaml) - len,
                          "max_parallel: 3\nnodes:\n");
  for (int i = 0; i < 12; i++)
    len +=
        (size_t)snprintf(yaml + len, sizeof(yaml) - len,
                         "  - {id: r%d, type: async, ms: %d}\n", i, 1 + i % 3);
  for (int i = 0; i < 6; i++)
    len += (size_t)snprintf(yaml + len, sizeof(yaml) - len,
                            "  - {id: d%d, type: async, ms: 1, dependencies: "
                            "[r%d]}\n",
                            i, i * 2);
  res = run(e, yaml, NULL);
  assert_string_equal(str_at(res, "status", NULL, NULL), "completed");
  assert_int_equal(json_array_size(g.order), 18);
  assert_int_equal(g.max_inflight, 3);
  assert_int_equal(g.inflight, 0);
  json_decref(res);
  /* The run's option overrides the file. */
  g_reset();
  res = run_opts(e, yaml, NULL, 1);
  assert_int_equal(g.max_inflight, 1);
  assert_int_equal(int_at(res, "metrics", "nodes_completed", NULL), 18);
  json_decref(res);
  g_reset();
  res = run_opts(e, yaml, NULL, 7);
  assert_int_equal(g.max_inflight, 7);
  json_decref(res);
  done_engine(e);
}

static void test_start_order(void **state) {
  static const char *const yaml[] = {
      /* Completing synchronously... */
      "max_parallel: 1\nnodes:\n"
      "  - {id: z, type: sync, dependencies: [a]}\n"
      "  - {id: a, type: sync}\n"
      "  - {id: y, type: sync, dependencies: [a]}\n"
      "  - {id: b, type: sync}\n"
      "  - {id: x, type: sync, dependencies: [z, y]}\n",
      /* ...or later. */
      "max_parallel: 1\nnodes:\n"
      "  - {id: z, type: async, dependencies: [a]}\n"
      "  - {id: a, type: async}\n"
      "  - {id: y, type: async, dependencies: [a]}\n"
      "  - {id: b, type: async}\n"
      "  - {id: x, type: async, dependencies: [z, y]}\n",
  };
  ice_engine_t *e = mk(0);

  (void)state;
  for (int i = 0; i < 2; i++) {
    json_t *res;
    g_reset();
    res = run(e, yaml[i], NULL);
    /* (depth, position): b (depth 0) before z (depth 1, earlier in the
     * file); z before y (same depth, file order). */
    th_assert_json(g.order, "[\"a\",\"b\",\"z\",\"y\",\"x\"]");
    json_decref(res);
  }
  done_engine(e);
}

static void test_dataflow_not_lockstep(void **state) {
  ice_engine_t *e = mk(0);
  json_t *res;

  (void)state;
  /* A slow branch never delays an unrelated one. */
  res = run(e,
            "nodes:\n"
            "  - {id: slow, type: async, ms: 150}\n"
            "  - {id: fast, type: async, ms: 1}\n"
            "  - {id: slow2, type: async, dependencies: [slow]}\n"
            "  - {id: fast2, type: async, dependencies: [fast]}\n"
            "  - {id: fast3, type: async, dependencies: [fast2]}\n",
            NULL);
  th_assert_json(g.order, "[\"slow\",\"fast\",\"fast2\",\"fast3\",\"slow2\"]");
  json_decref(res);
  done_engine(e);
}

/* ---- failure policies and trigger rules ---- */

static const char *diamond(const char *policy, const char *c_node) {
  static char buf[1024];

  snprintf(buf, sizeof(buf),
           "failure_policy: %s\nnodes:\n"
           "  - {id: a, type: tool, tool_name: echo, tool_args: {v: 1}}\n"
           "  - {id: b, type: async, ms: 20, fail: tool_error, dependencies: "
           "[a]}\n"
           "  - %s\n"
           "  - {id: d, type: tool, tool_name: echo, dependencies: [b, c], "
           "tool_args: {seen: '{{ c }}'}}\n",
           policy, c_node);
  return buf;
}

static void test_policy_halt(void **state) {
  ice_engine_t *e = mk(0);
  json_t *res, *evs = json_array();
  uint64_t t0 = uv_hrtime();

  (void)state;
  assert_int_equal(ice_subscribe(e, "node.cancelled", th_record_cb, evs, NULL),
                   0);
  res = run(e,
            diamond("halt", "{id: c, type: tool, tool_name: sleep, "
                            "tool_args: {seconds: 30}, dependencies: [a]}"),
            NULL);
  /* The running sleep was cancelled, the pending d too: no 30 s wait. */
  assert_true(uv_hrtime() - t0 < 5000000000ULL);
  assert_string_equal(str_at(res, "status", NULL, NULL), "failed");
  assert_true(json_is_false(json_object_get(res, "success")));
  th_want_node(res, "a", "completed", NULL);
  th_want_node(res, "b", "failed", "tool_error");
  th_want_node(res, "c", "cancelled", NULL);
  th_want_node(res, "d", "cancelled", NULL);
  th_assert_json(json_object_get(res, "errors"),
                 "[\"Node b failed: async failed\"]");
  assert_int_equal(int_at(res, "metrics", "nodes_cancelled", NULL), 2);
  assert_int_equal(int_at(res, "metrics", "nodes_failed", NULL), 1);
  assert_int_equal(json_array_size(evs), 2);
  json_decref(res);
  json_decref(evs);
  done_engine(e);
}

static void test_policy_halt_aliases(void **state) {
  static const char *const names[] = {"HALT", "halt_on_first_error"};
  ice_engine_t *e = mk(0);

  (void)state;
  for (int i = 0; i < 2; i++) {
    json_t *res = run(
        e, diamond(names[i], "{id: c, type: async, ms: 60, dependencies: [a]}"),
        NULL);
    th_want_node(res, "c", "cancelled", NULL);
    th_want_node(res, "d", "cancelled", NULL);
    json_decref(res);
  }
  done_engine(e);
}

static void test_policy_continue(void **state) {
  static const char *const names[] = {"continue_possible", "CONTINUE_POSSIBLE",
                                      "continue_if_possible"};
  ice_engine_t *e = mk(0);

  (void)state;
  for (int i = 0; i < 3; i++) {
    json_t *res = run(
        e,
        diamond(names[i], "{id: c, type: tool, tool_name: echo, dependencies: "
                          "[a], tool_args: {c: 1}}"),
        NULL);
    assert_string_equal(str_at(res, "status", NULL, NULL), "failed");
    th_want_node(res, "a", "completed", NULL);
    th_want_node(res, "b", "failed", "tool_error");
    th_want_node(res, "c", "completed", NULL);
    th_want_node(res, "d", "skipped", "upstream_failed");
    th_assert_json(json_object_get(res, "output"),
                   "{\"a\":{\"v\":1},\"c\":{\"c\":1}}");
    json_decref(res);
  }
  done_engine(e);
}

static void test_policy_always(void **state) {
  static const char *const names[] = {"always", "ALWAYS", "always_continue"};
  ice_engine_t *e = mk(0);

  (void)state;
  for (int i = 0; i < 3; i++) {
    json_t *res = run(
        e,
        diamond(names[i], "{id: c, type: tool, tool_name: echo, dependencies: "
                          "[a], tool_args: {c: 1}}"),
        NULL);
    /* all_success behaves like all_done; the run still failed. */
    assert_string_equal(str_at(res, "status", NULL, NULL), "failed");
    assert_true(json_is_false(json_object_get(res, "success")));
    th_want_node(res, "b", "failed", "tool_error");
    th_want_node(res, "d", "completed", NULL);
    th_assert_json(json_object_get(json_object_get(res, "output"), "d"),
                   "{\"seen\":{\"c\":1}}");
    json_decref(res);
  }
  done_engine(e);
}

static void test_trigger_rules(void **state) {
  ice_engine_t *e = mk(0);
  json_t *res;

  (void)state;
  res = run(e,
            "nodes:\n"
            "  - {id: ok, type: tool, tool_name: echo}\n"
            "  - {id: bad, type: tool, tool_name: fail}\n"
            "  - {id: skp, type: tool, tool_name: echo, run_if: 'false'}\n"
            "  - {id: as_f, type: sync, dependencies: [ok, bad]}\n"
            "  - {id: as_s, type: sync, dependencies: [ok, skp]}\n"
            "  - {id: as_ok, type: sync, dependencies: [ok]}\n"
            "  - {id: ad, type: sync, trigger_rule: all_done, dependencies: "
            "[bad, skp]}\n"
            "  - {id: os_1, type: sync, trigger_rule: one_success, "
            "dependencies: [ok, bad]}\n"
            "  - {id: os_f, type: sync, trigger_rule: one_success, "
            "dependencies: [bad, skp]}\n"
            "  - {id: os_s, type: sync, trigger_rule: one_success, "
            "dependencies: [skp]}\n"
            "  - {id: nf_ok, type: sync, trigger_rule: none_failed, "
            "dependencies: [ok, skp]}\n"
            "  - {id: nf_f, type: sync, trigger_rule: none_failed, "
            "dependencies: [ok, bad]}\n"
            "  - {id: casc, type: sync, dependencies: [as_s]}\n"
            "  - {id: casc2, type: sync, dependencies: [as_f]}\n"
            "  - {id: rescue, type: sync, trigger_rule: all_done, "
            "dependencies: [casc2]}\n",
            NULL);
  th_want_node(res, "ok", "completed", NULL);
  th_want_node(res, "bad", "failed", "tool_error");
  th_want_node(res, "skp", "skipped", "run_if");
  th_want_node(res, "as_f", "skipped", "upstream_failed");
  th_want_node(res, "as_s", "skipped", "upstream_skipped");
  th_want_node(res, "as_ok", "completed", NULL);
  th_want_node(res, "ad", "completed", NULL);
  th_want_node(res, "os_1", "completed", NULL);
  th_want_node(res, "os_f", "skipped", "upstream_failed");
  th_want_node(res, "os_s", "skipped", "upstream_skipped");
  th_want_node(res, "nf_ok", "completed", NULL);
  th_want_node(res, "nf_f", "skipped", "upstream_failed");
  th_want_node(res, "casc", "skipped", "upstream_skipped");
  th_want_node(res, "casc2", "skipped", "upstream_skipped");
  th_want_node(res, "rescue", "completed", NULL);
  assert_int_equal(int_at(res, "metrics", "nodes_skipped", NULL), 8);
  /* Only `bad` failed. */
  th_assert_json(json_object_get(res, "errors"),
                 "[\"Node bad failed: fail called\"]");
  json_decref(res);
  done_engine(e);
}

static void test_run_if(void **state) {
  ice_engine_t *e = mk(0);
  json_t *res, *evs = json_array();

  (void)state;
  assert_int_equal(ice_subscribe(e, "node.", th_record_cb, evs, NULL), 0);
  res = run(e,
            "nodes:\n"
            "  - {id: a, type: tool, tool_name: echo, tool_args: {x: 2}}\n"
            "  - {id: r1, type: sync, run_if: inputs.go}\n"
            "  - {id: r2, type: sync, dependencies: [r1]}\n"
            "  - {id: r3, type: sync, run_if: 'not go'}\n"
            "  - {id: r4, type: sync, run_if: 'a.x > 1', dependencies: [a]}\n"
            "  - {id: r5, type: sync, run_if: 'a.x > 5', dependencies: [a]}\n"
            "  - {id: r6, type: sync, run_if: 'nope.x == 1'}\n"
            "  - {id: r7, type: sync, run_if: 'exists(nope) or a', "
            "dependencies: [a]}\n",
            "{\"go\": false}");
  th_want_node(res, "r1", "skipped", "run_if");
  th_want_node(res, "r2", "skipped", "upstream_skipped");
  th_want_node(res, "r3", "completed", NULL);
  th_want_node(res, "r4", "completed", NULL);
  th_want_node(res, "r5", "skipped", "run_if");
  th_want_node(res, "r6", "failed", "expression");
  th_want_node(res, "r7", "completed", NULL);
  th_assert_json(json_object_get(json_object_get(res, "nodes"), "r6"),
                 "{\"status\":\"failed\",\"attempts\":0,\"duration_ms\":0.0,"
                 "\"error\":{\"kind\":\"expression\",\"message\":"
                 "\"undefined: nope.x\"}}");
  /* Skipped nodes never start; the run_if-failed one neither. */
  {
    json_t *st = th_events_of(evs, "node.started", NULL);
    want_field_list(st, "node_id", "[\"a\",\"r3\",\"r4\",\"r7\"]");
    json_decref(st);
    st = th_events_of(evs, "node.skipped", NULL);
    want_field_list(st, "reason",
                    "[\"run_if\",\"upstream_skipped\",\"run_if\"]");
    json_decref(st);
  }
  json_decref(res);
  json_decref(evs);
  done_engine(e);
}

/* ---- retries on the virtual clock ---- */

static json_t *run_events(ice_engine_t *e, const char *yaml, json_t **res) {
  json_t *evs = json_array();
  ice_sub_t *sub = NULL;

  assert_int_equal(ice_subscribe(e, NULL, th_record_cb, evs, &sub), 0);
  *res = run(e, yaml, NULL);
  ice_unsubscribe(e, sub);
  return evs;
}

static void want_delays(ice_engine_t *e, const char *policy, int failures,
                        const char *delays, int attempts) {
  char yaml[512];
  json_t *res, *evs, *rt;
  uint64_t t0 = uv_hrtime();

  snprintf(yaml, sizeof(yaml),
           "nodes:\n  - id: f\n    type: tool\n    tool_name: flaky\n"
           "    tool_args: {failures: %d}\n    %s\n",
           failures, policy);
  evs = run_events(e, yaml, &res);
  /* Never actually slept. */
  assert_true(uv_hrtime() - t0 < 3000000000ULL);
  rt = th_events_of(evs, "node.retrying", "f");
  want_field_list(rt, "delay_ms", delays);
  assert_int_equal(int_at(res, "nodes", "f", "attempts"), attempts);
  assert_int_equal(int_at(res, "metrics", "retries", NULL),
                   (json_int_t)json_array_size(rt));
  json_decref(rt);
  json_decref(evs);
  json_decref(res);
}

static void test_retry_succeeds(void **state) {
  ice_engine_t *e = mk(1);
  json_t *res, *evs, *x;

  (void)state;
  evs = run_events(e,
                   "nodes:\n  - id: f\n    type: tool\n    tool_name: flaky\n"
                   "    tool_args: {failures: 2}\n"
                   "    retry_policy: {max_attempts: 3}\n",
                   &res);
  assert_string_equal(str_at(res, "status", NULL, NULL), "completed");
  th_assert_json(json_object_get(res, "output"), "{\"f\":{\"attempts\":3}}");
  assert_int_equal(int_at(res, "nodes", "f", "attempts"), 3);
  assert_int_equal(int_at(res, "metrics", "retries", NULL), 2);
  /* Exactly one node.started per attempt, numbered. */
  x = th_events_of(evs, "node.started", "f");
  want_field_list(x, "attempt", "[1,2,3]");
  json_decref(x);
  x = th_events_of(evs, "node.failed", "f");
  want_field_list(x, "attempt", "[1,2]");
  want_field_list(x, "will_retry", "[true,true]");
  th_assert_json(json_object_get(json_array_get(x, 1), "error"),
                 "{\"kind\":\"transient\",\"message\":\"flaky failure 2 of "
                 "2\"}");
  json_decref(x);
  x = th_events_of(evs, "node.retrying", "f");
  want_field_list(x, "attempt", "[2,3]");
  want_field_list(x, "delay_ms", "[1000,2000]");
  json_decref(x);
  x = th_events_of(evs, "node.completed", "f");
  want_field_list(x, "attempt", "[3]");
  json_decref(x);
  /* The run's duration includes the virtual back-off. */
  assert_true(json_number_value(json_object_get(json_object_get(res, "metrics"),
                                                "duration_ms")) >= 3000);
  json_decref(evs);
  json_decref(res);
  done_engine(e);
}

static void test_retry_exhausted(void **state) {
  ice_engine_t *e = mk(1);
  json_t *res, *evs, *x;

  (void)state;
  evs = run_events(e,
                   "nodes:\n  - id: f\n    type: tool\n    tool_name: flaky\n"
                   "    tool_args: {failures: 3}\n"
                   "    retry_policy: {max_attempts: 2, backoff_seconds: 0}\n",
                   &res);
  th_want_node(res, "f", "failed", "transient");
  assert_int_equal(int_at(res, "nodes", "f", "attempts"), 2);
  th_assert_json(json_object_get(res, "errors"),
                 "[\"Node f failed: flaky failure 2 of 3\"]");
  x = th_events_of(evs, "node.failed", "f");
  want_field_list(x, "will_retry", "[true,false]");
  json_decref(x);
  x = th_events_of(evs, "node.retrying", "f");
  want_field_list(x, "delay_ms", "[0]");
  json_decref(x);
  json_decref(evs);
  json_decref(res);
  done_engine(e);
}

static void test_retry_delays(void **state) {
  ice_engine_t *e = mk(1);

  (void)state;
  want_delays(e,
              "retry_policy: {max_attempts: 4, backoff_strategy: fixed, "
              "backoff_seconds: 2}",
              3, "[2000,2000,2000]", 4);
  want_delays(e,
              "retry_policy: {max_attempts: 4, backoff_strategy: linear, "
              "backoff_seconds: 1.5}",
              3, "[1500,3000,4500]", 4);
  want_delays(e,
              "retry_policy: {max_attempts: 5, backoff_strategy: "
              "exponential, backoff_seconds: 0.5}",
              4, "[500,1000,2000,4000]", 5);
  want_delays(e,
              "retry_policy: {max_attempts: 6, backoff_seconds: 1, "
              "max_backoff_seconds: 3}",
              5, "[1000,2000,3000,3000,3000]", 6);
  /* Defaults: exponential from 1 s, 3 attempts. */
  want_delays(e, "retry_policy: {}", 5, "[1000,2000]", 3);
  /* Legacy form: retries r = r+1 attempts, exponential from b. */
  want_delays(e, "retries: 3\n    backoff_seconds: 0.25", 3, "[250,500,1000]",
              4);
  /* No policy: one attempt. */
  want_delays(e, "x-none: 1", 1, "[]", 1);
  done_engine(e);
}

static void test_retry_jitter(void **state) {
  ice_engine_t *e = mk(1);
  json_t *res, *evs, *rt, *ev;
  size_t i;

  (void)state;
  evs = run_events(e,
                   "nodes:\n  - id: f\n    type: tool\n    tool_name: flaky\n"
                   "    tool_args: {failures: 6}\n"
                   "    retry_policy: {max_attempts: 7, backoff_strategy: "
                   "fixed, backoff_seconds: 10, jitter: true}\n",
                   &res);
  rt = th_events_of(evs, "node.retrying", "f");
  assert_int_equal(json_array_size(rt), 6);
  json_array_foreach(rt, i, ev) {
    json_int_t d = json_integer_value(json_object_get(ev, "delay_ms"));
    assert_true(d >= 0 && d <= 10000);
  }
  assert_string_equal(str_at(res, "status", NULL, NULL), "completed");
  json_decref(rt);
  json_decref(evs);
  json_decref(res);
  done_engine(e);
}

static void test_retry_on(void **state) {
  ice_engine_t *e = mk(1);
  json_t *res;

  (void)state;
  /* A kind not listed is not retried. */
  res = run(e,
            "nodes:\n  - id: f\n    type: tool\n    tool_name: fail\n"
            "    tool_args: {kind: tool_error, message: nope}\n"
            "    retry_policy: {max_attempts: 3, retry_on: [transient]}\n",
            NULL);
  th_want_node(res, "f", "failed", "tool_error");
  assert_int_equal(int_at(res, "nodes", "f", "attempts"), 1);
  assert_int_equal(int_at(res, "metrics", "retries", NULL), 0);
  json_decref(res);
  /* A listed one is. */
  res = run(e,
            "nodes:\n  - id: f\n    type: tool\n    tool_name: fail\n"
            "    tool_args: {kind: transient}\n"
            "    retry_policy: {max_attempts: 3, retry_on: [transient]}\n",
            NULL);
  th_want_node(res, "f", "failed", "transient");
  assert_int_equal(int_at(res, "nodes", "f", "attempts"), 3);
  json_decref(res);
  done_engine(e);
}

static void test_retry_on_validation(void **state) {
  ice_engine_t *e = mk(1);
  json_t *res;

  (void)state;
  /* input_validation is not retried by default... */
  res = run(e,
            "nodes:\n  - id: f\n    type: tool\n    tool_name: echo\n"
            "    tool_args: {count: x}\n    input_schema: {count: int}\n"
            "    retry_policy: {max_attempts: 3}\n",
            NULL);
  th_want_node(res, "f", "failed", "input_validation");
  assert_int_equal(int_at(res, "nodes", "f", "attempts"), 1);
  json_decref(res);
  /* ...nor output_validation... */
  res = run(e,
            "nodes:\n  - id: f\n    type: tool\n    tool_name: echo\n"
            "    tool_args: {count: x}\n    output_schema: {count: int}\n"
            "    retries: 2\n",
            NULL);
  th_want_node(res, "f", "failed", "output_validation");
  assert_int_equal(int_at(res, "nodes", "f", "attempts"), 1);
  json_decref(res);
  /* ...unless retry_on names it; failures of any kind can be retried
   * (tool_error from a C executor here). */
  res = run(e,
            "nodes:\n  - id: f\n    type: tool\n    tool_name: echo\n"
            "    tool_args: {count: x}\n    input_schema: {count: int}\n"
            "    retry_policy: {max_attempts: 3, backoff_seconds: 0, "
            "retry_on: [input_validation]}\n"
            "  - id: s\n    type: sync\n    mode: fail\n"
            "    retries: 1\n",
            NULL);
  th_want_node(res, "f", "failed", "input_validation");
  assert_int_equal(int_at(res, "nodes", "f", "attempts"), 3);
  th_want_node(res, "s", "failed", "tool_error");
  assert_int_equal(int_at(res, "nodes", "s", "attempts"), 2);
  json_decref(res);
  done_engine(e);
}

/* ---- timeouts and cancellation (real clock) ---- */

static void test_timeout(void **state) {
  ice_engine_t *e = mk(0);
  json_t *res, *evs, *x;
  uint64_t t0 = uv_hrtime();

  (void)state;
  evs = run_events(e,
                   "nodes:\n"
                   "  - {id: s, type: tool, tool_name: sleep, tool_args: "
                   "{seconds: 10}, timeout_seconds: 0.05}\n"
                   "  - {id: r, type: tool, tool_name: sleep, tool_args: "
                   "{seconds: 10}, timeout_seconds: 0.05, retry_policy: "
                   "{max_attempts: 2, backoff_seconds: 0}}\n"
                   "  - {id: ok, type: tool, tool_name: sleep, tool_args: "
                   "{seconds: 0.01}, timeout_seconds: 5}\n",
                   &res);
  assert_true(uv_hrtime() - t0 < 5000000000ULL);
  th_want_node(res, "s", "failed", "timeout");
  assert_string_equal(
      json_string_value(json_object_get(
          json_object_get(json_object_get(json_object_get(res, "nodes"), "s"),
                          "error"),
          "message")),
      "timed out after 0.05 seconds");
  assert_int_equal(int_at(res, "nodes", "s", "attempts"), 1);
  /* A timeout is retried like any other kind. */
  th_want_node(res, "r", "failed", "timeout");
  assert_int_equal(int_at(res, "nodes", "r", "attempts"), 2);
  x = th_events_of(evs, "node.failed", "r");
  want_field_list(x, "will_retry", "[true,false]");
  json_decref(x);
  th_want_node(res, "ok", "completed", NULL);
  th_assert_json(json_object_get(json_object_get(res, "output"), "ok"),
                 "{\"slept\":0.01}");
  json_decref(evs);
  json_decref(res);
  done_engine(e);
}

static void test_timeout_custom_executor(void **state) {
  ice_engine_t *e = mk(0);
  json_t *res;

  (void)state;
  /* The executor's cancel is asked to stop; the attempt fails as timeout. */
  res = run(e,
            "nodes:\n"
            "  - {id: slow, type: async, ms: 10000, timeout_seconds: 0.03}\n",
            NULL);
  th_want_node(res, "slow", "failed", "timeout");
  assert_int_equal(g.cancels, 1);
  assert_int_equal(g.inflight, 0);
  json_decref(res);
  done_engine(e);
}

static void test_timeout_without_cancel_hook(void **state) {
  ice_engine_t *e = mk(0);
  json_t *res;

  (void)state;
  stub_done = 0;
  /* Neither executor can be interrupted: each timed-out attempt is
   * abandoned, the node goes on (here: retried once, then failed) without
   * waiting, and the late completions are dropped. */
  res = run(e,
            "nodes:\n"
            "  - {id: a, type: stubborn, timeout_seconds: 0.02,\n"
            "     retry_policy: {max_attempts: 2, backoff_seconds: 0}}\n"
            "  - {id: b, type: tool, tool_name: stubborn_tool,\n"
            "     timeout_seconds: 0.02}\n"
            "  - {id: c, type: tool, tool_name: echo, dependencies: [a],\n"
            "     trigger_rule: all_done}\n",
            NULL);
  th_want_node(res, "a", "failed", "timeout");
  th_want_node(res, "b", "failed", "timeout");
  assert_int_equal(int_at(res, "nodes", "a", "attempts"), 2);
  assert_string_equal(str_at(res, "nodes", "c", "status"), "completed");
  assert_int_equal(stub_done, 0); /* the run did not wait for them */
  json_decref(res);
  /* The abandoned attempts still end, and are freed, when they finish. */
  uv_run(ice_engine_loop(e), UV_RUN_DEFAULT);
  assert_int_equal(stub_done, 3);
  done_engine(e);
}

typedef struct {
  ice_run_t *run;
  const char *node; /* NULL = the whole run */
  int rc;
} canceller_t;

static void cancel_fire(uv_timer_t *h) {
  canceller_t *c = h->data;

  c->rc = c->node != NULL ? ice_run_cancel_node(c->run, c->node)
                          : ice_run_cancel(c->run);
  uv_close((uv_handle_t *)h, NULL);
}

/* Starts yaml, cancels (the run or one node) after ms, runs to the end.
 * Returns a copy of the result. */
static json_t *run_and_cancel(ice_engine_t *e, const char *yaml,
                              const char *node, uint64_t ms, json_t *evs) {
  ice_workflow_t *wf = th_wf(e, yaml);
  ice_run_t *r = NULL;
  uv_timer_t timer;
  canceller_t c = {NULL, node, -1};
  json_t *res;
  ice_sub_t *sub = NULL;

  if (evs != NULL)
    assert_int_equal(ice_subscribe(e, NULL, th_record_cb, evs, &sub), 0);
  assert_int_equal(ice_run_new(e, wf, NULL, &r, NULL), 0);
  ice_workflow_free(wf);
  assert_int_equal(ice_run_cancel(r), ICE_EINVAL); /* not started */
  c.run = r;
  uv_timer_init(ice_engine_loop(e), &timer);
  timer.data = &c;
  uv_timer_start(&timer, cancel_fire, ms, 0);
  assert_int_equal(ice_run_execute(r), 0);
  uv_run(ice_engine_loop(e), UV_RUN_DEFAULT); /* close the timer */
  assert_int_equal(c.rc, 0);
  assert_int_equal(ice_run_cancel(r), 0); /* finished: a no-op */
  res = json_deep_copy(ice_run_result(r));
  ice_run_free(r);
  if (sub != NULL)
    ice_unsubscribe(e, sub);
  return res;
}

static void test_cancel_run(void **state) {
  ice_engine_t *e = mk(0);
  json_t *res, *evs = json_array(), *x;
  uint64_t t0 = uv_hrtime();

  (void)state;
  res = run_and_cancel(e,
                       "nodes:\n"
                       "  - {id: a, type: tool, tool_name: sleep, tool_args: "
                       "{seconds: 30}}\n"
                       "  - {id: b, type: async, ms: 30000}\n"
                       "  - {id: c, type: tool, tool_name: echo, "
                       "dependencies: [a]}\n"
                       "  - {id: done, type: tool, tool_name: echo}\n",
                       NULL, 30, evs);
  assert_true(uv_hrtime() - t0 < 5000000000ULL);
  assert_string_equal(str_at(res, "status", NULL, NULL), "cancelled");
  assert_true(json_is_false(json_object_get(res, "success")));
  th_want_node(res, "a", "cancelled", NULL);
  th_want_node(res, "b", "cancelled", NULL);
  th_want_node(res, "c", "cancelled", NULL);
  th_want_node(res, "done", "completed", NULL);
  assert_int_equal(int_at(res, "metrics", "nodes_cancelled", NULL), 3);
  assert_int_equal(int_at(res, "metrics", "nodes_failed", NULL), 0);
  th_assert_json(json_object_get(res, "errors"), "[]");
  x = th_events_of(evs, "node.cancelled", NULL);
  assert_int_equal(json_array_size(x), 3);
  json_decref(x);
  x = th_events_of(evs, "workflow.completed", NULL);
  want_field_list(x, "status", "[\"cancelled\"]");
  json_decref(x);
  assert_int_equal(g.cancels, 1);
  assert_int_equal(g.inflight, 0);
  json_decref(evs);
  json_decref(res);
  done_engine(e);
}

static void test_cancel_during_backoff(void **state) {
  ice_engine_t *e = mk(0);
  json_t *res;
  uint64_t t0 = uv_hrtime();

  (void)state;
  res = run_and_cancel(e,
                       "nodes:\n  - id: f\n    type: tool\n    tool_name: "
                       "flaky\n    tool_args: {failures: 5}\n"
                       "    retry_policy: {max_attempts: 5, "
                       "backoff_seconds: 30}\n",
                       NULL, 30, NULL);
  assert_true(uv_hrtime() - t0 < 5000000000ULL);
  assert_string_equal(str_at(res, "status", NULL, NULL), "cancelled");
  th_want_node(res, "f", "cancelled", NULL);
  assert_int_equal(int_at(res, "nodes", "f", "attempts"), 1);
  json_decref(res);
  done_engine(e);
}

static void test_halt_stops_backoff(void **state) {
  ice_engine_t *e = mk(0);
  json_t *res;
  uint64_t t0 = uv_hrtime();

  (void)state;
  /* A node waiting 30 s for its next attempt is cancelled by a halt at
   * once. */
  res = run(e,
            "failure_policy: halt\nnodes:\n"
            "  - id: f\n    type: tool\n    tool_name: flaky\n"
            "    tool_args: {failures: 5}\n"
            "    retry_policy: {max_attempts: 5, backoff_seconds: 30}\n"
            "  - {id: b, type: async, ms: 30, fail: transient}\n",
            NULL);
  assert_true(uv_hrtime() - t0 < 5000000000ULL);
  th_want_node(res, "f", "cancelled", NULL);
  th_want_node(res, "b", "failed", "transient");
  assert_string_equal(str_at(res, "status", NULL, NULL), "failed");
  json_decref(res);
  done_engine(e);
}

static void test_cancel_node_during_backoff(void **state) {
  (void)state;
  ice_engine_t *e = mk(0);
  json_t *res;
  uint64_t t0 = uv_hrtime();

  /* Cancelling one node that waits for its next attempt ends it now, as
   * cancelling the run does (test_cancel_during_backoff). */
  res = run_and_cancel(e,
                       "nodes:\n  - id: f\n    type: tool\n    tool_name: "
                       "flaky\n    tool_args: {failures: 5}\n"
                       "    retry_policy: {max_attempts: 5, "
                       "backoff_seconds: 3}\n",
                       "f", 30, NULL);
  assert_true(uv_hrtime() - t0 < 2000000000ULL);
  th_want_node(res, "f", "cancelled", NULL);
  json_decref(res);
  done_engine(e);
}

static void test_cancel_node(void **state) {
  ice_engine_t *e = mk(0);
  json_t *res;

  (void)state;
  /* Cancelling one running node: the rest of the run goes on. */
  res = run_and_cancel(e,
                       "nodes:\n"
                       "  - {id: a, type: tool, tool_name: sleep, tool_args: "
                       "{seconds: 30}}\n"
                       "  - {id: b, type: async, ms: 60}\n"
                       "  - {id: c, type: sync, dependencies: [b]}\n",
                       "a", 20, NULL);
  th_want_node(res, "a", "cancelled", NULL);
  th_want_node(res, "b", "completed", NULL);
  th_want_node(res, "c", "completed", NULL);
  /* A cancelled node does not fail the run. */
  assert_true(json_is_true(json_object_get(res, "success")));
  json_decref(res);
  done_engine(e);
}

static void test_cancel_pending_node(void **state) {
  ice_engine_t *e = mk(0);
  json_t *res;

  (void)state;
  res = run_and_cancel(e,
                       "nodes:\n"
                       "  - {id: a, type: async, ms: 60}\n"
                       "  - {id: b, type: sync, dependencies: [a]}\n",
                       "b", 10, NULL);
  th_want_node(res, "a", "completed", NULL);
  /* ice.h: "Cancels one running or pending top-level node." */
  th_want_node(res, "b", "cancelled", NULL);
  json_decref(res);
  {
    ice_workflow_t *wf = th_wf(e, "nodes: [{id: a, type: sync}]");
    ice_run_t *r;
    assert_int_equal(ice_run_new(e, wf, NULL, &r, NULL), 0);
    ice_workflow_free(wf);
    assert_int_equal(ice_run_cancel_node(r, "zz"), ICE_ENOENT);
    assert_int_equal(ice_run_execute(r), 0);
    ice_run_free(r);
  }
  done_engine(e);
}

/* ---- data: schemas, mappings, templates, context ---- */

static void test_schemas(void **state) {
  ice_engine_t *e = mk(0);
  json_t *res;

  (void)state;
  res = run(e,
            "nodes:\n"
            "  - {id: out, type: tool, tool_name: echo, tool_args: {count: "
            "x}, output_schema: {count: int}}\n"
            "  - {id: inp, type: tool, tool_name: echo, tool_args: {count: "
            "x}, input_schema: {count: int}}\n"
            "  - id: js\n    type: tool\n    tool_name: echo\n"
            "    tool_args: {a: {b: [1, '2']}}\n"
            "    output_schema: {type: object, properties: {a: {type: object, "
            "properties: {b: {type: array, items: {type: integer}}}}}}\n"
            "  - {id: good, type: tool, tool_name: echo, tool_args: {count: "
            "3}, input_schema: {count: int}, output_schema: {count: int}}\n",
            NULL);
  th_want_node(res, "out", "failed", "output_validation");
  th_want_node(res, "inp", "failed", "input_validation");
  th_want_node(res, "js", "failed", "output_validation");
  th_want_node(res, "good", "completed", NULL);
  th_assert_json(json_object_get(res, "errors"),
                 "[\"Node out failed: $.count: expected integer, got "
                 "string\",\"Node inp failed: $.count: expected integer, got "
                 "string\",\"Node js failed: $.a.b[1]: expected integer, got "
                 "string\"]");
  /* A node whose output failed its schema has no output. */
  th_assert_json(json_object_get(res, "output"), "{\"good\":{\"count\":3}}");
  json_decref(res);
  done_engine(e);
}

static void test_input_schema_of_run(void **state) {
  ice_engine_t *e = mk(0);
  ice_workflow_t *wf = th_wf(e, "input_schema: {topic: str}\nnodes:\n"
                                "  - {id: a, type: tool, tool_name: echo, "
                                "tool_args: {t: '{{ topic }}'}}\n");
  ice_run_opts_t o = ICE_RUN_OPTS_INIT;
  ice_run_t *r = (ice_run_t *)1;
  ice_diags_t d = {0};
  json_t *in = th_json("{\"topic\": 3}");

  (void)state;
  o.inputs = in;
  assert_int_equal(ice_run_new(e, wf, &o, &r, &d), ICE_EINPUT);
  assert_null(r);
  assert_int_equal(d.count, 1);
  assert_string_equal(d.items[0].message,
                      "inputs do not match input_schema: $.topic: expected "
                      "string, got integer");
  ice_diags_free(&d);
  json_decref(in);
  in = th_json("[1]");
  o.inputs = in;
  assert_int_equal(ice_run_new(e, wf, &o, &r, &d), ICE_EINPUT);
  ice_diags_free(&d);
  json_decref(in);
  in = th_json("{\"topic\": \"x\"}");
  o.inputs = in;
  assert_int_equal(ice_run_new(e, wf, &o, &r, &d), 0);
  assert_int_equal(ice_run_execute(r), 0);
  th_assert_json(ice_run_output(r, "a"), "{\"t\":\"x\"}");
  ice_run_free(r);
  json_decref(in);
  ice_workflow_free(wf);
  done_engine(e);
}

static void test_input_mappings(void **state) {
  ice_engine_t *e = mk(0);
  json_t *res;

  (void)state;
  res = run(e,
            "nodes:\n"
            "  - {id: a, type: tool, tool_name: echo, tool_args: {user: "
            "{name: ann, tags: [x, y]}}}\n"
            "  - id: b\n    type: tool\n    tool_name: echo\n"
            "    dependencies: [a]\n"
            "    input_mappings:\n"
            "      who: {source_node_id: a, source_output_key: user.name}\n"
            "      tag: {source_node_id: a, source_output_key: user.tags.1}\n"
            "      all: {source_node_id: a, source_output_key: '.'}\n"
            "      whole: {source_node_id: a, source_output_key: ''}\n"
            "      lit: 5\n"
            "      obj: {k: v}\n"
            "    tool_args: {who: '{{ who }}', tag: '{{ tag }}', n: '{{ "
            "all.user.name }}', w: '{{ len(whole.user.tags) }}', lit: '{{ "
            "lit }}', obj: '{{ obj }}'}\n"
            "  - id: c\n    type: tool\n    tool_name: echo\n"
            "    dependencies: [a]\n"
            "    input_mappings:\n"
            "      x: {source_node_id: a, source_output_key: user.nope}\n",
            NULL);
  th_assert_json(json_object_get(json_object_get(res, "output"), "b"),
                 "{\"who\":\"ann\",\"tag\":\"y\",\"n\":\"ann\",\"w\":2,"
                 "\"lit\":5,\"obj\":{\"k\":\"v\"}}");
  th_want_node(res, "c", "failed", "input_mapping");
  th_assert_json(json_object_get(res, "errors"),
                 "[\"Node c failed: input_mappings.x: path 'user.nope' not "
                 "found in the output of 'a'\"]");
  json_decref(res);
  done_engine(e);
}

static void test_templates(void **state) {
  ice_engine_t *e = mk(0);
  json_t *res;

  (void)state;
  res = run(e,
            "nodes:\n"
            "  - {id: a, type: tool, tool_name: echo, tool_args: {count: 3, "
            "list: [1, 2], o: {k: 1}, s: hi, r: 0.5, n: null}}\n"
            "  - {id: other, type: tool, tool_name: echo}\n"
            "  - id: b\n    type: tool\n    tool_name: echo\n"
            "    dependencies: [a]\n"
            "    tool_args:\n"
            "      whole: '{{ a.count }}'\n"
            "      list: '{{ a.list }}'\n"
            "      mixed: 'n={{ a.count }} l={{ a.list }} o={{ a.o }} s={{ "
            "a.s }} r={{ a.r }} z={{ a.n }} t={{ true }}'\n"
            "      flat: '{{ topic }}'\n"
            "      inp: '{{ inputs.topic }}'\n"
            "      math: '{{ a.count * 2 + 1 }}'\n"
            "      nested: {deep: ['{{ upper(topic) }}']}\n"
            "      literal: plain\n"
            "  - {id: c, type: tool, tool_name: echo, dependencies: [a], "
            "tool_args: {x: '{{ other }}'}}\n"
            "  - {id: d, type: tool, tool_name: echo, tool_args: {x: '{{ 1 + "
            "\"a\" }}'}}\n"
            "  - {id: s, type: tool, tool_name: add, tool_args: {a: '{{ "
            "a.count }}', b: 4}, dependencies: [a]}\n",
            "{\"topic\": \"ice\"}");
  th_assert_json(json_object_get(json_object_get(res, "output"), "b"),
                 "{\"whole\":3,\"list\":[1,2],\"mixed\":\"n=3 l=[1,2] "
                 "o={\\\"k\\\":1} s=hi r=0.5 z=null t=true\",\"flat\":\"ice\","
                 "\"inp\":\"ice\",\"math\":7,\"nested\":{\"deep\":[\"ICE\"]},"
                 "\"literal\":\"plain\"}");
  /* Only direct dependencies are in the context. */
  th_want_node(res, "c", "failed", "expression");
  th_want_node(res, "d", "failed", "expression");
  th_assert_json(json_object_get(json_object_get(res, "output"), "s"),
                 "{\"sum\":7}");
  json_decref(res);
  done_engine(e);
}

static void test_task_context(void **state) {
  ice_engine_t *e = mk(0);
  json_t *res;

  (void)state;
  res = run(e,
            "nodes:\n"
            "  - {id: a, type: tool, tool_name: echo, tool_args: {v: 1}}\n"
            "  - {id: f, type: tool, tool_name: fail}\n"
            "  - {id: other, type: tool, tool_name: echo}\n"
            "  - id: p\n    type: probe\n    trigger_rule: all_done\n"
            "    dependencies: [a, f]\n"
            "    input_mappings:\n"
            "      m: {source_node_id: a, source_output_key: v}\n",
            "{\"topic\": \"t\", \"n\": 1, \"a\": \"shadowed\"}");
  th_want_node(res, "p", "completed", NULL);
  /* Inputs flattened, then `inputs`, then completed dependencies (a wins
   * over the input named a; failed f is absent; non-dependency `other`
   * too), then mappings. */
  th_assert_json(g.ctx, "{\"topic\":\"t\",\"n\":1,\"a\":{\"v\":1},"
                        "\"inputs\":{\"topic\":\"t\",\"n\":1,\"a\":"
                        "\"shadowed\"},\"m\":1}");
  th_assert_json(g.lookups,
                 "{\"a\":{\"v\":1},\"inputs\":{\"topic\":\"t\",\"n\":1,\"a\":"
                 "\"shadowed\"},\"topic\":\"t\",\"m\":1,\"other\":\"<none>\","
                 "\"f\":\"<none>\"}");
  json_decref(res);
  done_engine(e);
}

/* ---- custom executors and tools ---- */

static void test_custom_executors(void **state) {
  ice_engine_t *e = mk(0);
  json_t *res;

  (void)state;
  res = run(e,
            "nodes:\n"
            "  - {id: s1, type: sync}\n"
            "  - {id: l1, type: async, ms: 2, dependencies: [s1]}\n"
            "  - {id: s2, type: sync, dependencies: [l1]}\n"
            "  - {id: sc, type: sync, mode: scalar}\n"
            "  - {id: tw, type: sync, mode: twice}\n"
            "  - {id: bk, type: sync, mode: badkind}\n"
            "  - {id: lt, type: tool, tool_name: later}\n",
            NULL);
  th_assert_json(json_object_get(json_object_get(res, "output"), "s2"),
                 "{\"id\":\"s2\"}");
  th_assert_json(json_object_get(json_object_get(res, "output"), "l1"),
                 "{\"id\":\"l1\",\"attempt\":1}");
  /* A non-object output v becomes {"result": v}. */
  th_assert_json(json_object_get(json_object_get(res, "output"), "sc"),
                 "{\"result\":5}");
  th_assert_json(json_object_get(json_object_get(res, "output"), "lt"),
                 "{\"result\":\"later\"}");
  /* Only the first completion counts. */
  th_assert_json(json_object_get(json_object_get(res, "output"), "tw"),
                 "{\"n\":1}");
  /* Unknown kind names become internal. */
  th_want_node(res, "bk", "failed", "internal");
  th_assert_json(json_object_get(res, "errors"),
                 "[\"Node bk failed: odd 42\"]");
  json_decref(res);
  done_engine(e);
}

static void test_tool_registry(void **state) {
  ice_engine_t *e = mk(0);
  ice_tool_t dup = {"add", add_start, NULL, NULL};
  ice_tool_t echo = {"echo", add_start, NULL, NULL};
  json_t *res;

  (void)state;
  assert_int_equal(ice_register_tool(e, &dup), ICE_EEXIST);
  /* A registered tool comes before a built-in of the same name. */
  assert_int_equal(ice_register_tool(e, &echo), 0);
  res = run(e,
            "nodes: [{id: x, type: tool, tool_name: echo, tool_args: {a: 1, "
            "b: 2}}]",
            NULL);
  th_assert_json(json_object_get(res, "output"), "{\"x\":{\"sum\":3}}");
  json_decref(res);
  done_engine(e);
}

static void test_builtin_tools(void **state) {
  ice_engine_t *e = mk(1);
  json_t *res;

  (void)state;
  res = run(e,
            "nodes:\n"
            "  - {id: e, type: tool, tool_name: echo, tool_args: {a: [1, {b: "
            "null}]}}\n"
            "  - {id: e0, type: tool, tool_name: echo}\n"
            "  - {id: s, type: tool, tool_name: sleep, tool_args: {seconds: "
            "2.5}}\n"
            "  - {id: sbad, type: tool, tool_name: sleep, tool_args: "
            "{seconds: -1}}\n"
            "  - {id: f, type: tool, tool_name: fail}\n"
            "  - {id: fk, type: tool, tool_name: fail, tool_args: {message: "
            "m, kind: non_retryable}}\n"
            "  - {id: fl, type: tool, tool_name: flaky, tool_args: "
            "{failures: 0}}\n",
            NULL);
  th_assert_json(json_object_get(json_object_get(res, "output"), "e"),
                 "{\"a\":[1,{\"b\":null}]}");
  th_assert_json(json_object_get(json_object_get(res, "output"), "e0"), "{}");
  th_assert_json(json_object_get(json_object_get(res, "output"), "s"),
                 "{\"slept\":2.5}");
  th_assert_json(json_object_get(json_object_get(res, "output"), "fl"),
                 "{\"attempts\":1}");
  assert_int_equal(json_object_size(json_object_get(res, "output")), 4);
  th_want_node(res, "sbad", "failed", "tool_error");
  th_want_node(res, "f", "failed", "tool_error");
  th_want_node(res, "fk", "failed", "non_retryable");
  th_assert_json(json_object_get(res, "errors"),
                 "[\"Node sbad failed: sleep: 'seconds' must be a number >= "
                 "0\",\"Node f failed: fail called\",\"Node fk failed: m\"]");
  /* The sleep was virtual: the run's clock moved by 2.5 s. */
  assert_true(json_number_value(json_object_get(json_object_get(res, "metrics"),
                                                "duration_ms")) >= 2500);
  json_decref(res);
  done_engine(e);
}

/* ---- events ---- */

typedef struct {
  ice_engine_t *e;
  ice_sub_t *self, *other;
  int n;
  json_t *seen;
} subst_t;

static void count_cb(json_t *ev, void *data) {
  subst_t *s = data;

  s->n++;
  if (s->seen != NULL)
    json_array_append(s->seen, json_object_get(ev, "type"));
}

static void unsub_self_cb(json_t *ev, void *data) {
  subst_t *s = data;

  (void)ev;
  s->n++;
  ice_unsubscribe(s->e, s->self);
}

static void unsub_other_cb(json_t *ev, void *data) {
  subst_t *s = data;

  (void)ev;
  s->n++;
  if (s->other != NULL) {
    ice_unsubscribe(s->e, s->other);
    s->other = NULL;
  }
}

static void test_events(void **state) {
  ice_engine_t *e = mk(1);
  json_t *all = json_array(), *node = json_array(), *started = json_array(),
         *wfev = json_array(), *none = json_array(), *res, *ev;
  ice_workflow_t *wf;
  ice_run_t *r;
  size_t i;
  json_int_t seq = 0;

  (void)state;
  assert_int_equal(ice_subscribe(e, NULL, th_record_cb, all, NULL), 0);
  assert_int_equal(ice_subscribe(e, "node.", th_record_cb, node, NULL), 0);
  assert_int_equal(
      ice_subscribe(e, "node.started", th_record_cb, started, NULL), 0);
  assert_int_equal(ice_subscribe(e, "workflow.", th_record_cb, wfev, NULL), 0);
  /* Neither a prefix (no final '.') nor an exact type. */
  assert_int_equal(ice_subscribe(e, "node", th_record_cb, none, NULL), 0);
  assert_int_equal(ice_subscribe(e, "node.start", th_record_cb, none, NULL), 0);
  assert_int_equal(ice_subscribe(e, NULL, NULL, NULL, NULL), ICE_EINVAL);
  wf = th_wf(e, "name: ev\nnodes:\n"
                "  - {id: a, type: tool, tool_name: flaky, tool_args: "
                "{failures: 1}, retries: 1}\n"
                "  - {id: b, type: tool, tool_name: fail, dependencies: [a]}\n"
                "  - {id: c, type: sync, dependencies: [b]}\n");
  assert_int_equal(ice_run_new(e, wf, NULL, &r, NULL), 0);
  ice_workflow_free(wf);
  assert_int_equal(ice_run_execute(r), 0);
  res = ice_run_result(r);
  /* The whole stream, in order. */
  {
    json_t *types = json_array();
    json_array_foreach(all, i, ev)
        json_array_append(types, json_object_get(ev, "type"));
    th_assert_json(types,
                   "[\"workflow.started\",\"node.started\",\"node.failed\","
                   "\"node.retrying\",\"node.started\",\"node.completed\","
                   "\"node.started\",\"node.failed\",\"node.skipped\","
                   "\"workflow.completed\"]");
    json_decref(types);
  }
  /* seq increases by one; common fields on every event. */
  json_array_foreach(all, i, ev) {
    const char *ts = json_string_value(json_object_get(ev, "ts"));
    assert_int_equal(json_integer_value(json_object_get(ev, "seq")), ++seq);
    assert_string_equal(json_string_value(json_object_get(ev, "run_id")),
                        ice_run_id(r));
    /* RFC 3339, milliseconds, UTC: 2024-01-02T03:04:05.678Z */
    assert_non_null(ts);
    assert_int_equal(strlen(ts), 24);
    assert_int_equal(ts[10], 'T');
    assert_int_equal(ts[19], '.');
    assert_int_equal(ts[23], 'Z');
  }
  assert_int_equal(json_array_size(node), 8);
  json_array_foreach(node, i, ev) assert_true(
      strncmp(json_string_value(json_object_get(ev, "type")), "node.", 5) == 0);
  assert_int_equal(json_array_size(started), 3);
  want_field_list(started, "node_id", "[\"a\",\"a\",\"b\"]");
  want_field_list(started, "attempt", "[1,2,1]");
  want_field_list(started, "node_type", "[\"tool\",\"tool\",\"tool\"]");
  assert_int_equal(json_array_size(wfev), 2);
  th_assert_json(json_object_get(json_array_get(wfev, 0), "workflow"),
                 "\"ev\"");
  th_assert_json(json_object_get(json_array_get(wfev, 0), "nodes"), "3");
  th_assert_json(json_object_get(json_array_get(wfev, 1), "status"),
                 "\"failed\"");
  th_assert_json(json_object_get(json_array_get(wfev, 1), "success"), "false");
  assert_true(
      json_is_number(json_object_get(json_array_get(wfev, 1), "duration_ms")));
  assert_int_equal(json_array_size(none), 0);
  /* Event fields of §10. */
  {
    json_t *x = th_events_of(all, "node.completed", "a");
    ev = json_array_get(x, 0);
    th_assert_json(json_object_get(ev, "attempt"), "2");
    th_assert_json(json_object_get(ev, "cache_hit"), "false");
    assert_true(json_is_number(json_object_get(ev, "duration_ms")));
    json_decref(x);
    x = th_events_of(all, "node.skipped", "c");
    th_assert_json(json_object_get(json_array_get(x, 0), "reason"),
                   "\"upstream_failed\"");
    json_decref(x);
    x = th_events_of(all, "node.failed", "b");
    th_assert_json(json_object_get(json_array_get(x, 0), "error"),
                   "{\"kind\":\"tool_error\",\"message\":\"fail called\"}");
    th_assert_json(json_object_get(json_array_get(x, 0), "will_retry"),
                   "false");
    json_decref(x);
  }
  assert_string_equal(str_at(res, "status", NULL, NULL), "failed");
  ice_run_free(r);
  json_decref(all);
  json_decref(node);
  json_decref(started);
  json_decref(wfev);
  json_decref(none);
  done_engine(e);
}

static void test_unsubscribe_during_delivery(void **state) {
  ice_engine_t *e = mk(0);
  subst_t self = {e, NULL, NULL, 0, NULL}, killer = {e, NULL, NULL, 0, NULL},
          victim = {e, NULL, NULL, 0, NULL}, after = {e, NULL, NULL, 0, NULL},
          early = {e, NULL, NULL, 0, NULL}, late = {e, NULL, NULL, 0, NULL};
  ice_sub_t *vsub, *esub, *killer2;
  json_t *res;

  (void)state;
  /* Subscribed first, unsubscribed by a later subscriber: it saw the
   * first event only. */
  assert_int_equal(ice_subscribe(e, NULL, count_cb, &early, &esub), 0);
  assert_int_equal(ice_subscribe(e, NULL, unsub_self_cb, &self, &self.self), 0);
  assert_int_equal(ice_subscribe(e, NULL, unsub_other_cb, &killer, NULL), 0);
  assert_int_equal(ice_subscribe(e, NULL, count_cb, &victim, &vsub), 0);
  killer.other = vsub;
  late.other = esub;
  assert_int_equal(ice_subscribe(e, NULL, unsub_other_cb, &late, &killer2), 0);
  after.seen = json_array();
  assert_int_equal(ice_subscribe(e, "node.", count_cb, &after, NULL), 0);
  res = run(e,
            "nodes:\n  - {id: a, type: sync}\n"
            "  - {id: b, type: sync, dependencies: [a]}\n",
            NULL);
  /* Unsubscribing itself: exactly one event. */
  assert_int_equal(self.n, 1);
  /* Unsubscribed by an earlier subscriber during the first delivery:
   * never called. */
  assert_int_equal(victim.n, 0);
  /* Unsubscribed by a later subscriber during the first delivery: it had
   * seen that event already. */
  assert_int_equal(early.n, 1);
  /* The others see everything. */
  assert_int_equal(killer.n, 6);
  assert_int_equal(late.n, 6);
  th_assert_json(after.seen, "[\"node.started\",\"node.completed\","
                             "\"node.started\",\"node.completed\"]");
  json_decref(after.seen);
  json_decref(res);
  ice_unsubscribe(e, killer2);
  done_engine(e);
}

static void test_subscribe_during_delivery(void **state);

typedef struct {
  ice_engine_t *e;
  subst_t *child;
  int added;
} adder_t;

static void adder_cb(json_t *ev, void *data) {
  adder_t *a = data;

  (void)ev;
  if (!a->added) {
    a->added = 1;
    assert_int_equal(ice_subscribe(a->e, "workflow.", count_cb, a->child, NULL),
                     0);
  }
}

static void test_subscribe_during_delivery(void **state) {
  ice_engine_t *e = mk(0);
  subst_t child = {e, NULL, NULL, 0, NULL};
  adder_t adder = {e, &child, 0};
  json_t *res;

  (void)state;
  assert_int_equal(ice_subscribe(e, NULL, adder_cb, &adder, NULL), 0);
  res = run(e, "nodes: [{id: a, type: sync}]", NULL);
  /* Added during workflow.started: it sees at least workflow.completed. */
  assert_true(child.n >= 1 && child.n <= 2);
  json_decref(res);
  done_engine(e);
}

/* ---- run and engine lifetimes ---- */

typedef struct {
  int calls;
  int free_in_cb;
  int finished_in_cb;
  json_t *status;
} donest_t;

static void on_done(ice_run_t *r, void *data) {
  donest_t *d = data;

  d->calls++;
  d->finished_in_cb = ice_run_finished(r);
  assert_non_null(ice_run_result(r));
  json_decref(d->status);
  d->status = json_deep_copy(json_object_get(ice_run_result(r), "status"));
  if (d->free_in_cb)
    ice_run_free(r);
}

static void test_done_callback_once(void **state) {
  ice_engine_t *e = mk(0);
  ice_workflow_t *wf = th_wf(e, "nodes:\n  - {id: a, type: async, ms: 5}\n"
                                "  - {id: b, type: sync, dependencies: [a]}\n");
  ice_run_t *r;
  donest_t d = {0, 0, 0, NULL};

  (void)state;
  assert_int_equal(ice_run_new(e, wf, NULL, &r, NULL), 0);
  assert_int_equal(ice_run_finished(r), 0);
  assert_int_equal(ice_run_start(r, on_done, &d), 0);
  assert_int_equal(ice_run_start(r, on_done, &d), ICE_EINVAL);
  uv_run(ice_engine_loop(e), UV_RUN_DEFAULT);
  assert_int_equal(d.calls, 1);
  assert_int_equal(d.finished_in_cb, 1);
  assert_int_equal(ice_run_finished(r), 1);
  th_assert_json(d.status, "\"completed\"");
  /* More loop turns do not fire it again. */
  uv_run(ice_engine_loop(e), UV_RUN_NOWAIT);
  assert_int_equal(d.calls, 1);
  ice_run_free(r);
  ice_workflow_free(wf);
  json_decref(d.status);
  done_engine(e);
}

static void test_free_in_done_callback(void **state) {
  ice_engine_t *e = mk(0);
  ice_workflow_t *wf = th_wf(e, "nodes:\n  - {id: a, type: async, ms: 2}\n"
                                "  - {id: b, type: tool, tool_name: sleep, "
                                "tool_args: {seconds: 0.001}, retries: 1}\n");
  ice_run_t *r;
  donest_t d = {0, 1, 0, NULL};

  (void)state;
  assert_int_equal(ice_run_new(e, wf, NULL, &r, NULL), 0);
  ice_workflow_free(wf);
  assert_int_equal(ice_run_start(r, on_done, &d), 0);
  uv_run(ice_engine_loop(e), UV_RUN_DEFAULT);
  assert_int_equal(d.calls, 1);
  th_assert_json(d.status, "\"completed\"");
  json_decref(d.status);
  /* Also with a synchronous-only run. */
  wf = th_wf(e, "nodes: [{id: a, type: sync}]");
  d.calls = 0;
  d.status = NULL;
  assert_int_equal(ice_run_new(e, wf, NULL, &r, NULL), 0);
  ice_workflow_free(wf);
  assert_int_equal(ice_run_start(r, on_done, &d), 0);
  uv_run(ice_engine_loop(e), UV_RUN_DEFAULT);
  assert_int_equal(d.calls, 1);
  json_decref(d.status);
  done_engine(e);
}

static void test_free_while_running(void **state) {
  ice_engine_t *e = mk(0);
  ice_workflow_t *wf = th_wf(e, "nodes:\n  - {id: a, type: tool, tool_name: "
                                "sleep, tool_args: {seconds: 30}}\n"
                                "  - {id: b, type: async, ms: 30000}\n");
  ice_run_t *r;
  donest_t d = {0, 0, 0, NULL};
  uint64_t t0 = uv_hrtime();

  (void)state;
  assert_int_equal(ice_run_new(e, wf, NULL, &r, NULL), 0);
  ice_workflow_free(wf);
  assert_int_equal(ice_run_start(r, on_done, &d), 0);
  uv_run(ice_engine_loop(e), UV_RUN_NOWAIT);
  /* Freeing a running run cancels it and frees it once it is done. */
  ice_run_free(r);
  uv_run(ice_engine_loop(e), UV_RUN_DEFAULT);
  assert_true(uv_hrtime() - t0 < 5000000000ULL);
  assert_int_equal(d.calls, 1);
  th_assert_json(d.status, "\"cancelled\"");
  json_decref(d.status);
  assert_int_equal(g.inflight, 0);
  done_engine(e);
}

static void test_engine_busy(void **state) {
  ice_engine_t *e = mk(0);
  ice_workflow_t *wf = th_wf(e, "nodes:\n  - {id: a, type: async, ms: 20}\n");
  ice_run_t *r, *r2;
  donest_t d = {0, 0, 0, NULL};

  (void)state;
  /* A run that was created but never started keeps the engine busy. */
  assert_int_equal(ice_run_new(e, wf, NULL, &r2, NULL), 0);
  assert_int_equal(ice_engine_free(e), ICE_EBUSY);
  ice_run_free(r2);
  /* So does a running one, and a finished one not yet freed. */
  assert_int_equal(ice_run_new(e, wf, NULL, &r, NULL), 0);
  ice_workflow_free(wf);
  assert_int_equal(ice_run_start(r, on_done, &d), 0);
  assert_int_equal(ice_engine_free(e), ICE_EBUSY);
  uv_run(ice_engine_loop(e), UV_RUN_DEFAULT);
  assert_int_equal(d.calls, 1);
  assert_int_equal(ice_engine_free(e), ICE_EBUSY);
  ice_run_free(r);
  json_decref(d.status);
  done_engine(e);
}

static void test_engine_on_caller_loop(void **state) {
  uv_loop_t loop;
  ice_engine_t *e = NULL;
  ice_workflow_t *wf;
  ice_run_t *r;
  json_t *res;

  (void)state;
  assert_int_equal(uv_loop_init(&loop), 0);
  assert_int_equal(ice_engine_new(&e, &loop, NULL), 0);
  assert_ptr_equal(ice_engine_loop(e), &loop);
  wf = th_wf(e, "nodes:\n  - {id: a, type: tool, tool_name: sleep, "
                "tool_args: {seconds: 0.01}}\n");
  assert_int_equal(ice_run_new(e, wf, NULL, &r, NULL), 0);
  ice_workflow_free(wf);
  assert_int_equal(ice_run_execute(r), 0);
  res = ice_run_result(r);
  assert_string_equal(str_at(res, "status", NULL, NULL), "completed");
  ice_run_free(r);
  uv_run(&loop, UV_RUN_DEFAULT); /* let the run close its handles */
  done_engine(e);
  assert_int_equal(uv_loop_close(&loop), 0);
}

/* A custom executor whose output shares one object at every level: 2^60
 * copies in text, 61 objects in memory. The run fails with a clear line in
 * `errors` instead of trying to print it (issue 6, item 12). */
static void bomb_start(ice_task_t *t) {
  json_t *v = json_pack("{s:s}", "leaf", "abc");
  for (int i = 0; i < 60; i++) {
    json_t *next = json_pack("{s:[O],s:O}", "a", v, "b", v);
    json_decref(v);
    v = next;
  }
  ice_task_done(t, v);
}

static const ice_executor_t bomb_ex = {
    .abi = ICE_EXECUTOR_ABI, .type = "bomb", .start = bomb_start};

static void test_result_too_large(void **state) {
  ice_engine_t *e = mk(0);
  ice_workflow_t *wf;
  ice_run_t *r;
  json_t *res;

  assert_int_equal(ice_register_node(e, &bomb_ex), 0);
  wf = th_wf(e, "nodes:\n"
                "  - {id: b, type: bomb}\n"
                "  - {id: ok, type: tool, tool_name: echo}\n");
  assert_int_equal(ice_run_new(e, wf, NULL, &r, NULL), 0);
  ice_workflow_free(wf);
  assert_int_equal(ice_run_execute(r), 0);
  res = ice_run_result(r);
  assert_string_equal(json_string_value(json_object_get(res, "status")),
                      "completed");
  /* The engine shares the value; ice_json_size tells a printer, at once,
   * that its text would be too large (2^60 copies of one object). */
  assert_int_equal(
      ice_json_size(json_object_get(res, "output"), (size_t)256 << 20),
      SIZE_MAX);
  assert_true(ice_json_size(json_object_get(res, "nodes"), SIZE_MAX - 1) <
              1000);
  ice_run_free(r);
  done_engine(e);
}

/* ---- the result written without being built ---- */

static void usage_start(ice_task_t *t, json_t *args, void *data) {
  (void)args;
  (void)data;
  ice_task_usage(t, 7, 0.125);
  ice_task_done(t, json_pack("{s:s}", "said", "tab\there \"q\" \xc3\xa9"));
}

static int text_sink(const char *buf, size_t len, void *data) {
  json_t *acc = data; /* a string: appended to */
  char *both = NULL;

  if (asprintf(&both, "%s%.*s", json_string_value(acc), (int)len, buf) < 0)
    return -1;
  json_string_set(acc, both);
  free(both);
  return 0;
}

static int failing_sink(const char *buf, size_t len, void *data) {
  (void)buf;
  (void)len;
  (void)data;
  return -1;
}

/* The text ice_run_write_result writes, as a new string. */
static char *written(ice_run_t *r, int output_only, int indent, size_t cap,
                     int *rc) {
  json_t *acc = json_string("");
  char *s;

  *rc = ice_run_write_result(r, output_only, indent, cap, text_sink, acc);
  s = strdup(json_string_value(acc));
  json_decref(acc);
  return s;
}

/* A deferred run writes, in every form, the text of the result it then
 * builds: each node state, an error with escapes, a skip, usage, a fault
 * of the commit hook. */
static void check_written(ice_engine_t *e, const char *yaml, int halt_commit);

static int commit_fails(const ice_commit_t *c, void *data, char *msg,
                        size_t msglen) {
  (void)data;
  if (strcmp(c->change, "completed") == 0 && strcmp(c->node_id, "b") == 0) {
    snprintf(msg, msglen, "disk \"full\"");
    return -1;
  }
  return 0;
}

static void check_written(ice_engine_t *e, const char *yaml, int bad_commit) {
  ice_workflow_t *wf = th_wf(e, yaml);
  ice_run_opts_t o = ICE_RUN_OPTS_INIT;
  ice_run_t *r;
  /* Past 16, an entry is written key by key (run.c, pieces_t). */
  static const int indents[] = {0, 2, 20};
  char *text[2][3], *want;
  const char *status;
  int rc;

  if (bad_commit)
    o.commit = commit_fails;
  assert_int_equal(ice_run_new(e, wf, &o, &r, NULL), 0);
  ice_workflow_free(wf);
  assert_int_equal(ice_run_status(r), NULL);
  assert_int_equal(ice_run_write_result(r, 0, 0, SIZE_MAX, text_sink, NULL),
                   ICE_EINVAL);
  assert_int_equal(ice_run_defer_result(r), 0);
  assert_int_equal(ice_run_execute(r), 0);
  assert_int_equal(ice_run_defer_result(r), ICE_EINVAL);
  assert_true(ice_run_finished(r));
  status = ice_run_status(r);
  assert_non_null(status);
  for (int oo = 0; oo < 2; oo++) {
    for (int ind = 0; ind < 3; ind++) {
      text[oo][ind] = written(r, oo, indents[ind], SIZE_MAX, &rc);
      assert_int_equal(rc, 0);
    }
  }
  /* Over the cap: nothing written. */
  free(written(r, 0, 0, 10, &rc));
  assert_int_equal(rc, 1);
  free(written(r, 1, 0, 1, &rc));
  assert_int_equal(rc, 1);
  assert_int_equal(ice_run_write_result(r, 0, 2, SIZE_MAX, failing_sink, NULL),
                   -1);
  /* Built now, on first use: the same text, the same status. */
  assert_non_null(ice_run_result(r));
  assert_string_equal(
      status, json_string_value(json_object_get(ice_run_result(r), "status")));
  for (int oo = 0; oo < 2; oo++) {
    for (int ind = 0; ind < 3; ind++) {
      json_t *v =
          oo ? json_object_get(ice_run_result(r), "output") : ice_run_result(r);
      want = ice_json_format(v, indents[ind]);
      assert_string_equal(text[oo][ind], want);
      free(want);
      free(text[oo][ind]);
      /* And from the built result, through the same call. */
      text[oo][ind] = written(r, oo, indents[ind], SIZE_MAX, &rc);
      assert_int_equal(rc, 0);
      want = ice_json_format(v, indents[ind]);
      assert_string_equal(text[oo][ind], want);
      free(want);
      free(text[oo][ind]);
    }
  }
  free(written(r, 0, 0, 10, &rc));
  assert_int_equal(rc, 1);
  ice_run_free(r);
}

static void test_write_result(void **state) {
  ice_engine_t *e = mk(1);
  ice_tool_t usage = {"usage", usage_start, NULL, NULL};

  (void)state;
  assert_int_equal(ice_register_tool(e, &usage), 0);
  check_written(e,
                "name: \"w\\u00e9\"\n"
                "failure_policy: continue_possible\nnodes:\n"
                "  - {id: a, type: tool, tool_name: usage}\n"
                "  - {id: b, type: tool, tool_name: fail, dependencies: [a],\n"
                "     tool_args: {message: \"no\\n\\\"way\\\" \\u0001\"},\n"
                "     retries: 1}\n"
                "  - {id: c, type: tool, tool_name: echo, dependencies: [a],\n"
                "     run_if: 'a.said == 1'}\n"
                "  - {id: d, type: tool, tool_name: echo, dependencies: [b]}\n"
                "  - {id: e, type: tool, tool_name: echo,\n"
                "     tool_args: {x: [1, 2.5, {y: null}], z: {}}}\n",
                0);
  check_written(e,
                "nodes:\n"
                "  - {id: a, type: tool, tool_name: echo}\n"
                "  - {id: b, type: tool, tool_name: echo}\n",
                1);
  check_written(e, "nodes:\n  - {id: only, type: tool, tool_name: echo}\n", 0);
  /* A bundle's outputs are rendered at the end: built then. */
  check_written(e,
                "nodes:\n  - {id: a, type: tool, tool_name: echo, tool_args: "
                "{x: 1}}\noutputs:\n  got: '{{ a.x }}'\n",
                0);
  done_engine(e);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_hello, setup, teardown),
      cmocka_unit_test_setup_teardown(test_result_shape, setup, teardown),
      cmocka_unit_test_setup_teardown(test_long_chain, setup, teardown),
      cmocka_unit_test_setup_teardown(test_wide_fan_out_in, setup, teardown),
      cmocka_unit_test_setup_teardown(test_max_parallel, setup, teardown),
      cmocka_unit_test_setup_teardown(test_start_order, setup, teardown),
      cmocka_unit_test_setup_teardown(test_dataflow_not_lockstep, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_policy_halt, setup, teardown),
      cmocka_unit_test_setup_teardown(test_policy_halt_aliases, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_policy_continue, setup, teardown),
      cmocka_unit_test_setup_teardown(test_policy_always, setup, teardown),
      cmocka_unit_test_setup_teardown(test_trigger_rules, setup, teardown),
      cmocka_unit_test_setup_teardown(test_run_if, setup, teardown),
      cmocka_unit_test_setup_teardown(test_retry_succeeds, setup, teardown),
      cmocka_unit_test_setup_teardown(test_retry_exhausted, setup, teardown),
      cmocka_unit_test_setup_teardown(test_retry_delays, setup, teardown),
      cmocka_unit_test_setup_teardown(test_retry_jitter, setup, teardown),
      cmocka_unit_test_setup_teardown(test_retry_on, setup, teardown),
      cmocka_unit_test_setup_teardown(test_retry_on_validation, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
      cmocka_unit_test_setup_teardown(test_timeout_custom_executor, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_timeout_without_cancel_hook, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_cancel_run, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cancel_during_backoff, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_halt_stops_backoff, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cancel_node_during_backoff, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_cancel_node, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cancel_pending_node, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_schemas, setup, teardown),
      cmocka_unit_test_setup_teardown(test_input_schema_of_run, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_input_mappings, setup, teardown),
      cmocka_unit_test_setup_teardown(test_templates, setup, teardown),
      cmocka_unit_test_setup_teardown(test_task_context, setup, teardown),
      cmocka_unit_test_setup_teardown(test_custom_executors, setup, teardown),
      cmocka_unit_test_setup_teardown(test_tool_registry, setup, teardown),
      cmocka_unit_test_setup_teardown(test_builtin_tools, setup, teardown),
      cmocka_unit_test_setup_teardown(test_events, setup, teardown),
      cmocka_unit_test_setup_teardown(test_unsubscribe_during_delivery, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_subscribe_during_delivery, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_done_callback_once, setup, teardown),
      cmocka_unit_test_setup_teardown(test_free_in_done_callback, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_free_while_running, setup, teardown),
      cmocka_unit_test_setup_teardown(test_engine_busy, setup, teardown),
      cmocka_unit_test_setup_teardown(test_engine_on_caller_loop, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_result_too_large, setup, teardown),
      cmocka_unit_test_setup_teardown(test_write_result, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
