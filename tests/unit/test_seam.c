/* The seam between the scheduler and what plugs into it (issue 7), through
 * the public API only: the commit hook and a run rebuilt from its records,
 * parked (waiting) attempts, background attempts, pausing, usage
 * reporting, pools across every depth and child runs, and the ABI 2
 * compile hook and executor data. */
#include "helpers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- fixtures: node types and tools -------------------------------------- */

static json_t *g_counts; /* instance key -> times the `count` tool ran */
static int g_answer;     /* `gate` completes when set, else parks */
static int g_saw_saved;  /* gate attempts that got their saved state back */
static int g_budget;     /* else `gate` completes this many more times */

/* `count`: records that its node instance ran; outputs {"key": KEY}. */
static void count_start(ice_task_t *t, json_t *args, void *data) {
  const char *key = ice_task_key(t);
  json_int_t n = json_integer_value(json_object_get(g_counts, key)) + 1;

  (void)args;
  (void)data;
  json_object_set_new(g_counts, key, json_integer(n));
  ice_task_done(t, json_pack("{s:s}", "key", key));
}

/* `gate`: a human stand-in. Completes at once when g_answer is set (also
 * when a restored run starts it again); else parks with a saved state
 * and no wake-up of its own. */
static void gate_start(ice_task_t *t) {
  if (g_answer || g_budget > 0) {
    json_t *saved = ice_task_saved_state(t);
    if (saved != NULL && json_is_true(json_object_get(saved, "asked")))
      g_saw_saved++;
    if (!g_answer)
      g_budget--;
    ice_task_done(t, json_pack("{s:b}", "answered", 1));
    return;
  }
  assert_int_equal(ice_task_wait(t, json_pack("{s:b}", "asked", 1), 0), 0);
}

static void gate_cancel(ice_task_t *t) {
  ice_task_fail(t, "cancelled", "gate stopped (%d)", ice_task_stop_reason(t));
}

static const ice_executor_t gate_ex = {.abi = ICE_EXECUTOR_ABI,
                                       .type = "gate",
                                       .start = gate_start,
                                       .cancel = gate_cancel};

/* `later`: parks, and completes itself from a timer 20 ms on. */
typedef struct {
  uv_timer_t timer;
  ice_task_t *task;
} later_t;

static void later_closed(uv_handle_t *h) {
  free(h->data);
}

static void later_fire(uv_timer_t *h) {
  later_t *l = h->data;

  ice_task_done(l->task, json_pack("{s:b}", "late", 1));
  l->timer.data = l;
  uv_close((uv_handle_t *)&l->timer, later_closed);
}

static void later_start(ice_task_t *t) {
  later_t *l = calloc(1, sizeof(*l));
  ice_engine_t *e = ice_task_engine(t);

  assert_non_null(l);
  l->task = t;
  uv_timer_init(ice_task_loop(t), &l->timer);
  l->timer.data = l;
  uv_timer_start(&l->timer, later_fire, 20, 0);
  assert_int_equal(ice_task_wait(t, NULL, ice_engine_now_ms(e) + 20), 0);
  /* Parked twice is refused. */
  assert_int_equal(ice_task_wait(t, NULL, 0), ICE_EINVAL);
}

static const ice_executor_t later_ex = {
    .abi = ICE_EXECUTOR_ABI, .type = "later", .start = later_start};

/* `spend`: reports usage, then completes. */
static void spend_start(ice_task_t *t) {
  ice_task_usage(t, 10, 0.25);
  ice_task_done(t, json_object());
}

static const ice_executor_t spend_ex = {
    .abi = ICE_EXECUTOR_ABI, .type = "spend", .start = spend_start};

/* `mon`: background work that checks every 5 ms until told to finish. */
typedef struct {
  uv_timer_t timer;
  ice_task_t *task;
  int checks;
} mon_t;

static void mon_closed(uv_handle_t *h) {
  free(h->data);
}

static void mon_tick(uv_timer_t *h) {
  ((mon_t *)h->data)->checks++;
}

static void mon_start(ice_task_t *t) {
  mon_t *m = calloc(1, sizeof(*m));

  assert_non_null(m);
  m->task = t;
  uv_timer_init(ice_task_loop(t), &m->timer);
  m->timer.data = m;
  uv_timer_start(&m->timer, mon_tick, 5, 5);
  ice_task_set_data(t, m);
  ice_task_set_background(t);
}

static void mon_cancel(ice_task_t *t) {
  mon_t *m = ice_task_data(t);

  assert_int_equal(ice_task_stop_reason(t), ICE_STOP_FINISH);
  uv_timer_stop(&m->timer);
  ice_task_done(t, json_pack("{s:i}", "checks", m->checks));
  uv_close((uv_handle_t *)&m->timer, mon_closed);
}

static const ice_executor_t mon_ex = {.abi = ICE_EXECUTOR_ABI,
                                      .type = "mon",
                                      .start = mon_start,
                                      .cancel = mon_cancel};

/* `comp`: compiles its `factor` once per node; fails its first attempts. */
static int g_compiles, g_frees;
static int g_exdata = 42;

static const ice_field_t comp_fields[] = {{"factor", ICE_T_INT, 1, 0},
                                          {NULL, 0, 0, 0}};

static void *comp_compile(ice_compile_t *c) {
  json_t *f = json_object_get(ice_compile_config(c), "factor");
  int *v;

  g_compiles++;
  assert_ptr_equal(ice_compile_executor_data(c), &g_exdata);
  if (json_integer_value(f) < 0) {
    ice_compile_error(c, "factor", "factor must be >= 0, not %lld",
                      (long long)json_integer_value(f));
    return NULL;
  }
  v = malloc(sizeof(*v));
  *v = (int)json_integer_value(f);
  return v;
}

static void comp_free(void *compiled, void *data) {
  assert_ptr_equal(data, &g_exdata);
  g_frees++;
  free(compiled);
}

static void comp_start(ice_task_t *t) {
  const int *factor = ice_task_compiled(t);

  assert_ptr_equal(ice_task_executor_data(t), &g_exdata);
  if (ice_task_attempt(t) < 3) {
    ice_task_fail(t, "transient", "not yet");
    return;
  }
  ice_task_done(t, json_pack("{s:i}", "value", *factor * 2));
}

static const ice_executor_t comp_ex = {.abi = ICE_EXECUTOR_ABI,
                                       .type = "comp",
                                       .fields = comp_fields,
                                       .start = comp_start,
                                       .data = &g_exdata,
                                       .compile = comp_compile,
                                       .free_compiled = comp_free};

static ice_engine_t *mk(void) {
  ice_engine_t *e = NULL;
  ice_engine_opts_t o = ICE_ENGINE_OPTS_INIT;
  ice_tool_t count = {"count", count_start, NULL, NULL};

  o.virtual_clock = 1;
  assert_int_equal(ice_engine_new(&e, NULL, &o), 0);
  assert_int_equal(ice_register_node(e, &gate_ex), 0);
  assert_int_equal(ice_register_node(e, &later_ex), 0);
  assert_int_equal(ice_register_node(e, &spend_ex), 0);
  assert_int_equal(ice_register_node(e, &mon_ex), 0);
  assert_int_equal(ice_register_node(e, &comp_ex), 0);
  assert_int_equal(ice_register_tool(e, &count), 0);
  return e;
}

static int setup(void **state) {
  (void)state;
  g_counts = json_object();
  g_answer = 0;
  g_budget = 0;
  return 0;
}

static int teardown(void **state) {
  (void)state;
  json_decref(g_counts);
  return 0;
}

/* ---- the commit log ------------------------------------------------------ */

typedef struct {
  json_t *records;      /* every record, in commit order */
  const char *fail_key; /* fail the hook on this key's completion */
} log_t;

static int commit_cb(const ice_commit_t *c, void *data, char *msg,
                     size_t msglen) {
  log_t *log = data;

  if (log->fail_key != NULL && strcmp(c->key, log->fail_key) == 0 &&
      strcmp(c->change, "completed") == 0) {
    snprintf(msg, msglen, "disk full");
    return -1;
  }
  json_array_append_new(log->records, ice_commit_to_json(c));
  return 0;
}

/* Runs wf (our reference dropped) with the commit log; restore from `from`
 * when given (keeping run_id and seq). Returns a copy of the result. */
static json_t *run_logged(ice_engine_t *e, ice_workflow_t *wf, log_t *log,
                          json_t *from, const char *run_id,
                          unsigned long long seq) {
  ice_run_opts_t o = ICE_RUN_OPTS_INIT;
  ice_run_t *r = NULL;
  json_t *res;

  o.commit = commit_cb;
  o.commit_data = log;
  o.restore = from;
  o.run_id = run_id;
  o.seq = seq;
  o.suspend_after = 0;
  assert_int_equal(ice_run_new(e, wf, &o, &r, NULL), 0);
  ice_workflow_free(wf);
  assert_int_equal(ice_run_execute(r), 0);
  res = json_deep_copy(ice_run_result(r));
  ice_run_free(r);
  return res;
}

static const char *status_of(json_t *res) {
  return json_string_value(json_object_get(res, "status"));
}

/* The changes committed for one key, as a JSON array of names. */
static json_t *changes_of(json_t *records, const char *key) {
  json_t *out = json_array(), *rec;
  size_t i;

  json_array_foreach(records, i, rec) {
    if (strcmp(json_string_value(json_object_get(rec, "key")), key) == 0)
      json_array_append(out, json_object_get(rec, "change"));
  }
  return out;
}

/* ---- tests --------------------------------------------------------------- */

static void test_park_and_complete_later(void **state) {
  ice_engine_t *e = mk();
  log_t log = {json_array(), NULL};
  ice_run_opts_t o = ICE_RUN_OPTS_INIT;
  ice_run_t *r;
  ice_workflow_t *wf;
  json_t *ch;

  (void)state;
  /* suspend_after -1 (the default): the run waits in-process. */
  o.commit = commit_cb;
  o.commit_data = &log;
  wf = th_wf(e, "max_parallel: 1\nnodes:\n"
                "  - {id: w, type: later}\n"
                "  - {id: x, type: tool, tool_name: count}\n");
  assert_int_equal(ice_run_new(e, wf, &o, &r, NULL), 0);
  ice_workflow_free(wf); /* the run holds its own reference */
  assert_int_equal(ice_run_execute(r), 0);
  assert_string_equal(status_of(ice_run_result(r)), "completed");
  th_assert_json(ice_run_output(r, "w"), "{\"late\":true}");
  /* A parked node gives its max_parallel place back: x ran meanwhile. */
  th_assert_json(ice_run_output(r, "x"), "{\"key\":\"x\"}");
  ch = changes_of(log.records, "w");
  th_assert_json(ch, "[\"running\",\"waiting\",\"completed\"]");
  json_decref(ch);
  ice_run_free(r);
  json_decref(log.records);
  assert_int_equal(ice_engine_free(e), 0);
}

/* The five shapes of the issue: a parked gate somewhere in each. */
static const char *const shapes[] = {
    /* chain */
    "nodes:\n"
    "  - {id: a, type: tool, tool_name: count}\n"
    "  - {id: b, type: tool, tool_name: count, dependencies: [a]}\n"
    "  - {id: g, type: gate, dependencies: [b]}\n"
    "  - {id: c, type: tool, tool_name: count, dependencies: [g]}\n",
    /* diamond */
    "nodes:\n"
    "  - {id: a, type: tool, tool_name: count}\n"
    "  - {id: b, type: tool, tool_name: count, dependencies: [a]}\n"
    "  - {id: g, type: gate, dependencies: [a]}\n"
    "  - {id: d, type: tool, tool_name: count, dependencies: [b, g]}\n",
    /* loop: every iteration parks */
    "nodes:\n"
    "  - {id: a, type: tool, tool_name: count}\n"
    "  - id: L\n    type: loop\n    dependencies: [a]\n"
    "    items_source: '[1, 2, 3]'\n    max_concurrency: 2\n"
    "    body:\n"
    "      - {id: before, type: tool, tool_name: count}\n"
    "      - {id: g, type: gate}\n"
    "      - {id: after, type: tool, tool_name: count}\n"
    "  - {id: z, type: tool, tool_name: count, dependencies: [L]}\n",
    /* nested parallel */
    "nodes:\n"
    "  - id: P\n    type: parallel\n    branches:\n"
    "      - - {id: p1, type: tool, tool_name: count}\n"
    "        - id: Q\n          type: parallel\n          branches:\n"
    "            - [{id: g, type: gate}]\n"
    "            - [{id: q2, type: tool, tool_name: count}]\n"
    "      - - {id: p2, type: tool, tool_name: count}\n"
    "  - {id: z, type: tool, tool_name: count, dependencies: [P]}\n",
    /* recursive: the gate is in the body, every iteration */
    "nodes:\n"
    "  - {id: step, type: tool, tool_name: count, dependencies: [R]}\n"
    "  - {id: g, type: gate, dependencies: [step]}\n"
    "  - id: R\n    type: recursive\n    dependencies: [g]\n"
    "    recursive_sources: [g]\n"
    "    convergence_condition: 'iteration >= 3'\n"
    "  - {id: z, type: tool, tool_name: count, dependencies: [R]}\n",
};

/* A preserve_context recursive node stopped twice mid-way and restored
 * each time: it ends as an uninterrupted run does, and every `iterated`
 * record holds only the history added since the one before (a whole
 * history each time would grow the records with the square of the
 * iterations). */
static void test_restore_recursive_history(void **state) {
  static const char wf[] =
      "nodes:\n"
      "  - {id: step, type: tool, tool_name: count, dependencies: [R]}\n"
      "  - {id: g, type: gate, dependencies: [step]}\n"
      "  - id: R\n    type: recursive\n    dependencies: [g]\n"
      "    recursive_sources: [g]\n    preserve_context: true\n"
      "    convergence_condition: 'iteration >= 6'\n"
      "  - {id: z, type: tool, tool_name: count, dependencies: [R]}\n";
  ice_engine_t *e = mk();
  log_t log = {json_array(), NULL}, plain_log = {json_array(), NULL};
  json_t *res = NULL, *plain, *rec, *hist;
  char *id = NULL;
  unsigned long long seq = 0;
  size_t j, iterated = 0;

  (void)state;
  for (int round = 0; round < 3; round++) {
    g_answer = round == 2;
    g_budget = 2;
    json_decref(res);
    res = run_logged(e, th_wf(e, wf), &log, round > 0 ? log.records : NULL, id,
                     round > 0 ? seq + 1 : 0);
    assert_string_equal(status_of(res), round < 2 ? "waiting" : "completed");
    if (id == NULL)
      id = strdup(json_string_value(json_object_get(res, "run_id")));
    json_array_foreach(log.records, j, rec) {
      seq = (unsigned long long)json_integer_value(json_object_get(rec, "seq"));
    }
  }
  json_array_foreach(log.records, j, rec) {
    json_t *st = json_object_get(rec, "state");
    if (strcmp(json_string_value(json_object_get(rec, "change")), "iterated") !=
        0)
      continue;
    iterated++;
    assert_int_equal(json_array_size(json_object_get(st, "history_tail")), 1);
    assert_int_equal(json_integer_value(json_object_get(st, "history_from")),
                     iterated - 1);
  }
  assert_int_equal(iterated, 5);
  json_object_clear(g_counts);
  g_answer = 1;
  plain = run_logged(e, th_wf(e, wf), &plain_log, NULL, NULL, 0);
  assert_true(json_equal(json_object_get(plain, "output"),
                         json_object_get(res, "output")));
  hist = json_object_get(
      json_object_get(json_object_get(json_object_get(res, "output"), "R"),
                      "final_context"),
      "history");
  assert_int_equal(json_array_size(hist), 6);
  /* Records that do not follow each other, or are not records at all:
   * the run goes on with what there is. */
  json_decref(res);
  json_decref(log.records);
  log.records = th_json(
      "[{\"key\": \"R\", \"change\": \"iterated\", \"attempt\": 1,"
      "  \"state\": {\"history_from\": 99, \"history_tail\": [{}],"
      "  \"output_carry_key\": \"final_context\"}, \"output\": {}},"
      " {\"key\": \"R@2\", \"change\": \"iterated\", \"output\": 5,"
      "  \"state\": {\"history_from\": -3, \"history_tail\": [2]}},"
      " {\"key\": \"R@3\", \"change\": \"iterated\", \"state\": \"x\"}]");
  json_object_clear(g_counts);
  res =
      run_logged(e, th_wf(e, wf), &(log_t){NULL, NULL}, log.records, "junk", 0);
  assert_string_equal(status_of(res), "completed");
  /* Only R's iterations have records: the body and z ran (seven), and R
   * counted its replayed iterations. */
  assert_int_equal(json_object_size(g_counts), 7);
  assert_int_equal(
      json_integer_value(json_object_get(
          json_object_get(json_object_get(res, "output"), "R"), "iterations")),
      6);
  json_decref(plain_log.records);
  json_decref(plain);
  json_decref(res);
  json_decref(log.records);
  free(id);
  assert_int_equal(ice_engine_free(e), 0);
}

static void test_restore_from_commit_log(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
    ice_engine_t *e = mk();
    log_t log = {json_array(), NULL}, plain_log = {json_array(), NULL};
    json_t *first, *resumed, *plain, *counts, *rec;
    char *id;
    unsigned long long seq = 0;
    size_t j;
    const char *key;
    json_t *n;

    /* 1. Runs until only the gate is left: stops as waiting. */
    g_answer = 0;
    json_object_clear(g_counts);
    first = run_logged(e, th_wf(e, shapes[i]), &log, NULL, NULL, 0);
    if (strcmp(status_of(first), "waiting") != 0)
      fail_msg("shape %zu: status %s", i, status_of(first));
    assert_false(json_is_true(json_object_get(first, "success")));
    id = strdup(json_string_value(json_object_get(first, "run_id")));
    json_array_foreach(log.records, j, rec) {
      seq = (unsigned long long)json_integer_value(json_object_get(rec, "seq"));
    }
    /* 2. Rebuilt from its records, answered: completes, and each parked
     * gate got the state it saved. */
    g_answer = 1;
    g_saw_saved = 0;
    resumed =
        run_logged(e, th_wf(e, shapes[i]), &log, log.records, id, seq + 1);
    if (strcmp(status_of(resumed), "completed") != 0)
      fail_msg("shape %zu: resumed status %s", i, status_of(resumed));
    assert_string_equal(json_string_value(json_object_get(resumed, "run_id")),
                        id);
    assert_true(g_saw_saved >= 1);
    /* Every node instance that completed ran once, across both runs. */
    counts = json_deep_copy(g_counts);
    json_object_foreach(counts, key, n) {
      if (json_integer_value(n) != 1)
        fail_msg("shape %zu: %s ran %lld times", i, key,
                 (long long)json_integer_value(n));
    }
    /* 3. The same workflow, uninterrupted: the same result. */
    json_object_clear(g_counts);
    plain = run_logged(e, th_wf(e, shapes[i]), &plain_log, NULL, NULL, 0);
    json_decref(plain_log.records);
    assert_string_equal(status_of(plain), "completed");
    if (!json_equal(json_object_get(plain, "output"),
                    json_object_get(resumed, "output"))) {
      char *a = json_dumps(json_object_get(plain, "output"), JSON_COMPACT);
      char *b = json_dumps(json_object_get(resumed, "output"), JSON_COMPACT);
      fail_msg("shape %zu: outputs differ:\n plain   %s\n resumed %s", i, a, b);
    }
    /* The same node instances ran, in total, as in the plain run. */
    assert_true(json_equal(counts, g_counts));
    json_decref(counts);
    json_decref(first);
    json_decref(resumed);
    json_decref(plain);
    json_decref(log.records);
    free(id);
    assert_int_equal(ice_engine_free(e), 0);
  }
}

static void test_usage_in_metrics(void **state) {
  ice_engine_t *e = mk();
  json_t *res;

  (void)state;
  res = th_run_wf(e,
                  th_wf(e, "nodes:\n"
                           "  - {id: one, type: spend}\n"
                           "  - id: L\n    type: loop\n"
                           "    items_source: '[1, 2, 3]'\n"
                           "    body: [{id: s, type: spend}]\n"),
                  NULL, 0, NULL);
  assert_string_equal(status_of(res), "completed");
  th_assert_json(json_object_get(json_object_get(res, "metrics"), "tokens"),
                 "40");
  th_assert_json(json_object_get(json_object_get(res, "metrics"), "cost_usd"),
                 "1.0");
  /* The loop node carries its body's usage. */
  th_assert_json(
      json_object_get(json_object_get(json_object_get(res, "nodes"), "L"),
                      "tokens"),
      "30");
  json_decref(res);
  assert_int_equal(ice_engine_free(e), 0);
}

static void test_compile_once_per_node(void **state) {
  ice_engine_t *e = mk();
  ice_workflow_t *wf;
  ice_diags_t d = {0};
  json_t *res;
  const char *bad = "nodes: [{id: c, type: comp, factor: -1}]";

  (void)state;
  g_compiles = g_frees = 0;
  wf = th_wf(e, "nodes:\n"
                "  - {id: c1, type: comp, factor: 2, retry_policy: "
                "{max_attempts: 3, backoff_seconds: 0}}\n"
                "  - {id: c2, type: comp, factor: 5, retry_policy: "
                "{max_attempts: 3, backoff_seconds: 0}}\n");
  assert_int_equal(g_compiles, 2);
  res = th_run_wf(e, wf, NULL, 0, NULL);
  /* Three attempts each, two compiles in all. */
  assert_int_equal(g_compiles, 2);
  assert_int_equal(g_frees, 2);
  th_assert_json(json_object_get(res, "output"),
                 "{\"c1\":{\"value\":4},\"c2\":{\"value\":10}}");
  th_assert_json(
      json_object_get(json_object_get(json_object_get(res, "nodes"), "c1"),
                      "attempts"),
      "3");
  json_decref(res);
  /* A compile error is a validation error at the field. */
  assert_int_equal(
      ice_workflow_parse(e, "t.yaml", bad, strlen(bad), 1, &wf, &d),
      ICE_EWORKFLOW);
  assert_int_equal(d.count, 1);
  {
    char *s = ice_diag_format(&d.items[0]);
    assert_string_equal(s, "t.yaml:1:29: error: node 'c': factor must be >= "
                           "0, not -1");
    free(s);
  }
  ice_diags_free(&d);
  assert_int_equal(ice_engine_free(e), 0);
}

/* Counts node.started/ending events of nodes whose id starts with 'w'. */
static int g_inflight, g_peak;

static void pool_cb(json_t *ev, void *data) {
  const char *type = json_string_value(json_object_get(ev, "type"));
  const char *id = json_string_value(json_object_get(ev, "node_id"));

  (void)data;
  if (id == NULL || id[0] != 'w')
    return;
  if (strcmp(type, "node.started") == 0 && ++g_inflight > g_peak)
    g_peak = g_inflight;
  if (strcmp(type, "node.completed") == 0 || strcmp(type, "node.failed") == 0 ||
      strcmp(type, "node.cancelled") == 0)
    g_inflight--;
}

static void test_pool_across_depths(void **state) {
  ice_engine_t *e = NULL;
  ice_sub_t *sub;
  char dir[] = "/tmp/ice-seam-XXXXXX", top[300], child[300];
  ice_workflow_t *wf = NULL;
  ice_diags_t d = {0};
  FILE *f;
  json_t *res;

  (void)state;
  assert_int_equal(ice_engine_new(&e, NULL, NULL), 0);
  assert_non_null(mkdtemp(dir));
  snprintf(child, sizeof(child), "%s/child.yaml", dir);
  snprintf(top, sizeof(top), "%s/top.yaml", dir);
  f = fopen(child, "w");
  /* The child's own entry for `gpu` is the parent's pool (size ignored). */
  fputs("pools: {gpu: 50}\nnodes:\n", f);
  for (int i = 0; i < 10; i++)
    fprintf(f,
            "  - {id: wc%d, type: tool, tool_name: sleep, pool: gpu, "
            "tool_args: {seconds: 0.005}, dependencies: []}\n",
            i);
  fclose(f);
  f = fopen(top, "w");
  fputs("pools: {gpu: 3}\nmax_parallel: 50\nnodes:\n"
        "  - id: L\n    type: loop\n    max_concurrency: 20\n"
        "    items_source: '[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,"
        "19]'\n"
        "    body: [{id: wl, type: tool, tool_name: sleep, pool: gpu, "
        "tool_args: {seconds: 0.005}}]\n"
        "  - id: P\n    type: parallel\n    branches:\n",
        f);
  for (int b = 0; b < 20; b++)
    fprintf(f,
            "      - [{id: wp%d, type: tool, tool_name: sleep, pool: gpu, "
            "tool_args: {seconds: 0.005}}]\n",
            b);
  fputs("  - {id: S, type: workflow, workflow_ref: child.yaml}\n", f);
  fclose(f);
  if (ice_workflow_load(e, top, &wf, &d) != 0) {
    for (size_t i = 0; i < d.count; i++)
      fprintf(stderr, "%s\n", d.items[i].message);
    fail();
  }
  g_inflight = g_peak = 0;
  assert_int_equal(ice_subscribe(e, "node.", pool_cb, NULL, &sub), 0);
  res = th_run_wf(e, wf, NULL, 0, NULL);
  ice_unsubscribe(e, sub);
  assert_string_equal(status_of(res), "completed");
  /* 50 pool nodes: a loop's 20, a parallel's 20 and a child run's 10. */
  assert_int_equal(g_peak, 3);
  assert_int_equal(g_inflight, 0);
  json_decref(res);
  unlink(child);
  unlink(top);
  rmdir(dir);
  assert_int_equal(ice_engine_free(e), 0);
}

static void test_pool_validation(void **state) {
  ice_engine_t *e = mk();
  ice_workflow_t *wf = NULL;
  ice_diags_t d = {0};
  const char *text =
      "pools: {gpu: 0, ok: 2}\nnodes:\n"
      "  - {id: a, type: tool, tool_name: echo, pool: gpuu}\n"
      "  - {id: L, type: loop, items_source: '[1]', pool: ok, "
      "body: [{id: b, type: tool, tool_name: echo, pool: llm}]}\n";
  const char *const want[] = {
      "t.yaml:1:9: error: pools.gpu must be an integer >= 1",
      "t.yaml:3:42: error: node 'a': unknown pool 'gpuu'",
      "t.yaml:4:46: error: node 'L': a loop node takes no pool (its nested "
      "nodes may)"};

  (void)state;
  assert_int_equal(
      ice_workflow_parse(e, "t.yaml", text, strlen(text), 1, &wf, &d),
      ICE_EWORKFLOW);
  if (d.count != 3)
    fail_msg("%zu diagnostics", d.count);
  for (size_t i = 0; i < d.count; i++) {
    char *s = ice_diag_format(&d.items[i]);
    if (strncmp(s, want[i], strlen(want[i]) - 0) != 0)
      fail_msg("got %s\nwant %s", s, want[i]);
    free(s);
  }
  ice_diags_free(&d);
  assert_int_equal(ice_engine_free(e), 0);
}

static void test_commit_hook_failure_stops_run(void **state) {
  ice_engine_t *e = mk();
  log_t log = {json_array(), "b"};
  json_t *res;

  (void)state;
  res = run_logged(e,
                   th_wf(e, "nodes:\n"
                            "  - {id: a, type: tool, tool_name: count}\n"
                            "  - {id: b, type: tool, tool_name: count, "
                            "dependencies: [a]}\n"
                            "  - {id: c, type: tool, tool_name: count, "
                            "dependencies: [b]}\n"),
                   &log, NULL, NULL, 0);
  assert_string_equal(status_of(res), "failed");
  th_assert_json(json_object_get(res, "errors"), "[\"Commit: disk full\"]");
  /* What could not be recorded released nothing: c never ran. */
  assert_null(json_object_get(g_counts, "c"));
  th_want_node(res, "c", "cancelled", NULL);
  json_decref(res);
  json_decref(log.records);
  assert_int_equal(ice_engine_free(e), 0);
}

static void test_background_does_not_hold_the_run(void **state) {
  ice_engine_t *e = mk();
  json_t *res;

  (void)state;
  res = th_run_wf(e,
                  th_wf(e, "nodes:\n"
                           "  - {id: m, type: mon}\n"
                           "  - {id: s, type: tool, tool_name: count}\n"),
                  NULL, 0, NULL);
  assert_string_equal(status_of(res), "completed");
  th_want_node(res, "m", "completed", NULL);
  assert_true(json_is_integer(json_object_get(
      json_object_get(json_object_get(res, "output"), "m"), "checks")));
  json_decref(res);
  assert_int_equal(ice_engine_free(e), 0);
}

static void pause_on_start(json_t *ev, void *data) {
  const char *id = json_string_value(json_object_get(ev, "node_id"));

  if (id != NULL && strcmp(id, "a") == 0)
    ice_run_pause(*(ice_run_t **)data);
}

static void test_pause_then_restore(void **state) {
  ice_engine_t *e = mk();
  log_t log = {json_array(), NULL};
  ice_run_opts_t o = ICE_RUN_OPTS_INIT;
  ice_run_t *r = NULL;
  ice_workflow_t *wf;
  ice_sub_t *sub;
  json_t *res;
  const char *text = "nodes:\n"
                     "  - {id: a, type: tool, tool_name: count}\n"
                     "  - {id: b, type: tool, tool_name: count, "
                     "dependencies: [a]}\n";

  (void)state;
  o.commit = commit_cb;
  o.commit_data = &log;
  wf = th_wf(e, text);
  assert_int_equal(ice_run_new(e, wf, &o, &r, NULL), 0);
  ice_workflow_free(wf);
  assert_int_equal(ice_subscribe(e, "node.started", pause_on_start, &r, &sub),
                   0);
  assert_int_equal(ice_run_execute(r), 0);
  ice_unsubscribe(e, sub);
  /* a finished (running nodes do), b never started. */
  assert_string_equal(status_of(ice_run_result(r)), "paused");
  th_want_node(ice_run_result(r), "a", "completed", NULL);
  th_want_node(ice_run_result(r), "b", "pending", NULL);
  ice_run_free(r);
  res = run_logged(e, th_wf(e, text), &log, log.records, NULL, 0);
  assert_string_equal(status_of(res), "completed");
  assert_int_equal(json_integer_value(json_object_get(g_counts, "a")), 1);
  assert_int_equal(json_integer_value(json_object_get(g_counts, "b")), 1);
  json_decref(res);
  json_decref(log.records);
  assert_int_equal(ice_engine_free(e), 0);
}

/* A gate inside a child run: the child stops as waiting, its workflow node
 * parks, the parent stops as waiting; restored from the one list of
 * records (each names its run), the child finds its own again. */
static void test_restore_child_run(void **state) {
  ice_engine_t *e = mk();
  log_t log = {json_array(), NULL}, plain_log = {json_array(), NULL};
  char dir[] = "/tmp/ice-seam-XXXXXX", top[300], child[300];
  ice_workflow_t *wf = NULL;
  ice_diags_t d = {0};
  json_t *first, *resumed, *plain, *n;
  const char *key;
  FILE *f;

  (void)state;
  assert_non_null(mkdtemp(dir));
  snprintf(child, sizeof(child), "%s/child.yaml", dir);
  snprintf(top, sizeof(top), "%s/top.yaml", dir);
  f = fopen(child, "w");
  fputs("nodes:\n"
        "  - {id: a, type: tool, tool_name: count}\n"
        "  - {id: g, type: gate, dependencies: [a]}\n"
        "  - {id: b, type: tool, tool_name: count, dependencies: [g]}\n",
        f);
  fclose(f);
  f = fopen(top, "w");
  fputs("nodes:\n"
        "  - {id: x, type: tool, tool_name: count}\n"
        "  - {id: S, type: workflow, workflow_ref: child.yaml, "
        "dependencies: [x]}\n"
        "  - {id: y, type: tool, tool_name: count, dependencies: [S]}\n",
        f);
  fclose(f);
  g_answer = 0;
  assert_int_equal(ice_workflow_load(e, top, &wf, &d), 0);
  first = run_logged(e, wf, &log, NULL, NULL, 0);
  assert_string_equal(status_of(first), "waiting");
  th_want_node(first, "S", "waiting", NULL);
  th_want_node(first, "y", "pending", NULL);
  g_answer = 1;
  assert_int_equal(ice_workflow_load(e, top, &wf, &d), 0);
  resumed = run_logged(e, wf, &log, log.records, NULL, 0);
  assert_string_equal(status_of(resumed), "completed");
  assert_string_equal(json_string_value(json_object_get(resumed, "run_id")),
                      json_string_value(json_object_get(first, "run_id")));
  json_object_foreach(g_counts, key, n) {
    if (json_integer_value(n) != 1)
      fail_msg("%s ran %lld times", key, (long long)json_integer_value(n));
  }
  assert_int_equal(json_object_size(g_counts), 4);
  assert_int_equal(ice_workflow_load(e, top, &wf, &d), 0);
  plain = run_logged(e, wf, &plain_log, NULL, NULL, 0);
  assert_true(json_equal(json_object_get(plain, "output"),
                         json_object_get(resumed, "output")));
  json_decref(first);
  json_decref(resumed);
  json_decref(plain);
  json_decref(log.records);
  json_decref(plain_log.records);
  unlink(child);
  unlink(top);
  rmdir(dir);
  assert_int_equal(ice_engine_free(e), 0);
}

/* Failed and skipped instances are restored as they were, and records
 * from outside that make no sense break nothing. */
static void test_restore_failed_skipped_and_junk(void **state) {
  ice_engine_t *e = mk();
  log_t log = {json_array(), NULL};
  json_t *first, *again, *junk;
  const char *text = "nodes:\n"
                     "  - {id: bad, type: tool, tool_name: fail}\n"
                     "  - {id: no, type: tool, tool_name: count, run_if: "
                     "'false'}\n"
                     "  - {id: after, type: tool, tool_name: count, "
                     "dependencies: [bad]}\n"
                     "  - {id: g, type: gate}\n";

  (void)state;
  g_answer = 0;
  first = run_logged(e, th_wf(e, text), &log, NULL, NULL, 0);
  assert_string_equal(status_of(first), "waiting");
  g_answer = 1;
  again = run_logged(e, th_wf(e, text), &log, log.records, NULL, 0);
  assert_string_equal(status_of(again), "failed");
  th_want_node(again, "bad", "failed", "tool_error");
  th_want_node(again, "no", "skipped", "run_if");
  th_want_node(again, "after", "skipped", "upstream_failed");
  th_want_node(again, "g", "completed", NULL);
  assert_true(json_equal(json_object_get(first, "errors"),
                         json_object_get(again, "errors")));
  json_decref(first);
  json_decref(again);
  /* Junk: not objects, unknown changes, missing fields, bad numbers. */
  junk = th_json("[1, null, {}, {\"key\": \"bad\", \"change\": \"failed\"},"
                 " {\"key\": \"no\", \"change\": \"skipped\", \"reason\": 7},"
                 " {\"key\": \"g\", \"change\": \"retrying\", \"attempt\": -5,"
                 " \"wake_at_ms\": \"soon\"},"
                 " {\"key\": \"after\", \"change\": \"what\"}]");
  again = run_logged(e, th_wf(e, text), &(log_t){NULL, NULL}, junk, "junk", 0);
  assert_string_equal(json_string_value(json_object_get(again, "run_id")),
                      "junk");
  th_want_node(again, "bad", "failed", "internal");
  th_want_node(again, "g", "completed", NULL);
  json_decref(again);
  json_decref(junk);
  json_decref(log.records);
  assert_int_equal(ice_engine_free(e), 0);
}

/* A C subscriber to node.completed reads the output it announces. */
static ice_engine_t *g_engine;

static void output_cb(json_t *ev, void *data) {
  json_t *out = ice_event_output(g_engine);

  json_object_set(data, json_string_value(json_object_get(ev, "node_id")),
                  out != NULL ? out : json_null());
}

static void test_subscriber_reads_output(void **state) {
  ice_engine_t *e = mk();
  json_t *seen = json_object(), *res;
  ice_sub_t *sub;

  (void)state;
  g_engine = e;
  assert_int_equal(ice_subscribe(e, "node.completed", output_cb, seen, &sub),
                   0);
  res = th_run_wf(e,
                  th_wf(e, "nodes:\n"
                           "  - {id: a, type: tool, tool_name: echo, "
                           "tool_args: {v: 1}}\n"
                           "  - id: L\n    type: loop\n    items_source: "
                           "'[7]'\n    body: [{id: b, type: tool, tool_name: "
                           "echo, tool_args: {i: '{{ item }}'}}]\n"),
                  NULL, 0, NULL);
  ice_unsubscribe(e, sub);
  th_assert_json(seen, "{\"a\":{\"v\":1},\"b\":{\"i\":7},\"L\":[{\"i\":7}]}");
  /* Outside a delivery there is none. */
  assert_null(ice_event_output(e));
  json_decref(seen);
  json_decref(res);
  assert_int_equal(ice_engine_free(e), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_park_and_complete_later, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_restore_recursive_history, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_restore_from_commit_log, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_usage_in_metrics, setup, teardown),
      cmocka_unit_test_setup_teardown(test_compile_once_per_node, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_pool_across_depths, setup, teardown),
      cmocka_unit_test_setup_teardown(test_pool_validation, setup, teardown),
      cmocka_unit_test_setup_teardown(test_commit_hook_failure_stops_run, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_background_does_not_hold_the_run,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_pause_then_restore, setup, teardown),
      cmocka_unit_test_setup_teardown(test_subscriber_reads_output, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_restore_child_run, setup, teardown),
      cmocka_unit_test_setup_teardown(test_restore_failed_skipped_and_junk,
                                      setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
