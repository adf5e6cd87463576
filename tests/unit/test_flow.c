/* Control-flow nodes through the public API (SPEC §7.1-§7.5, with §2.2,
 * §3.1, §4.2-§4.5 and §10 as they apply to nested nodes): condition paths
 * and downstream branching, loops (sources, order, concurrency, errors,
 * nesting), parallel wait strategies, recursive cycles and their
 * convergence, sub-workflows, and cancellation and timeouts of
 * control-flow nodes. */
#include "helpers.h"

#include <ice.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- shared state of the custom tools and executors ---- */

static struct {
  int inflight, max_inflight;
  json_t *order; /* `later`: values in completion order */
  json_t *calls; /* `rec`: args of every call, in call order */
  int cancels;   /* `later` cancel() calls */
  int starts;    /* `later` start() calls */
} g;

static void g_reset(void) {
  json_decref(g.order);
  json_decref(g.calls);
  memset(&g, 0, sizeof(g));
  g.order = json_array();
  g.calls = json_array();
}

static int setup(void **state) {
  (void)state;
  g_reset();
  return 0;
}

static int teardown(void **state) {
  (void)state;
  json_decref(g.order);
  json_decref(g.calls);
  memset(&g, 0, sizeof(g));
  return 0;
}

/* `later` (C tool): completes from a uv timer after args.ms (default 0)
 * with {"v": args.v}; fails with kind tool_error when args.fail is true.
 * Counts the calls in flight. */
typedef struct {
  uv_timer_t timer;
  ice_task_t *task;
  json_t *v;
  int fail;
} later_t;

static void later_closed(uv_handle_t *h) {
  later_t *a = h->data;

  json_decref(a->v);
  free(a);
}

static void later_fire(uv_timer_t *h) {
  later_t *a = h->data;
  ice_task_t *t = a->task;

  g.inflight--;
  ice_task_set_data(t, NULL);
  json_array_append(g.order, a->v);
  if (a->fail)
    ice_task_fail(t, "tool_error", "later failed");
  else
    ice_task_done(t, json_pack("{s:O}", "v", a->v));
  uv_close((uv_handle_t *)&a->timer, later_closed);
}

static void later_start(ice_task_t *t, json_t *args, void *data) {
  later_t *a = calloc(1, sizeof(*a));
  json_t *ms = json_object_get(args, "ms");
  json_t *v = json_object_get(args, "v");

  (void)data;
  g.starts++;
  if (++g.inflight > g.max_inflight)
    g.max_inflight = g.inflight;
  a->task = t;
  a->v = v != NULL ? json_incref(v) : json_null();
  a->fail = json_is_true(json_object_get(args, "fail"));
  a->timer.data = a;
  uv_timer_init(ice_task_loop(t), &a->timer);
  ice_task_set_data(t, a);
  uv_timer_start(&a->timer, later_fire,
                 json_is_integer(ms) ? (uint64_t)json_integer_value(ms) : 0,
                 0);
}

static void later_cancel(ice_task_t *t, void *data) {
  later_t *a = ice_task_data(t);

  (void)data;
  g.cancels++;
  if (a == NULL)
    return;
  g.inflight--;
  ice_task_set_data(t, NULL);
  uv_timer_stop(&a->timer);
  uv_close((uv_handle_t *)&a->timer, later_closed);
  ice_task_fail(t, "cancelled", "later cancelled");
}

/* `rec` (C tool, synchronous): records its args and returns a copy. */
static void rec_start(ice_task_t *t, json_t *args, void *data) {
  (void)data;
  json_array_append_new(g.calls, json_deep_copy(args));
  ice_task_done(t, json_deep_copy(args));
}

static ice_engine_t *mk(int virtual_clock) {
  ice_engine_t *e = NULL;
  ice_engine_opts_t o = ICE_ENGINE_OPTS_INIT;
  ice_tool_t later = {"later", later_start, later_cancel, NULL};
  ice_tool_t rec = {"rec", rec_start, NULL, NULL};

  o.virtual_clock = virtual_clock;
  assert_int_equal(ice_engine_new(&e, NULL, &o), 0);
  assert_int_equal(ice_register_tool(e, &later), 0);
  assert_int_equal(ice_register_tool(e, &rec), 0);
  return e;
}

static void done_engine(ice_engine_t *e) {
  assert_int_equal(ice_engine_free(e), 0);
}

/* ---- helpers ---- */

/* Records every event into the array `data`. */
static void rec_cb(json_t *ev, void *data) {
  json_array_append(data, ev);
}

static void print_diags(ice_diags_t *d) {
  for (size_t i = 0; i < d->count; i++) {
    char *s = ice_diag_format(&d->items[i]);
    fprintf(stderr, "%s\n", s);
    free(s);
  }
}

static ice_workflow_t *wf_of(ice_engine_t *e, const char *yaml) {
  ice_workflow_t *wf = NULL;
  ice_diags_t d = {0};

  if (ice_workflow_parse(e, "t.yaml", yaml, strlen(yaml), 1, &wf, &d) != 0) {
    print_diags(&d);
    ice_diags_free(&d);
    fail_msg("workflow did not validate:\n%s", yaml);
  }
  return wf;
}

/* Runs wf with inputs (borrowed, may be NULL) to the end, recording events
 * into evs when given; returns a copy of the result. Frees wf. */
static json_t *run_wf(ice_engine_t *e, ice_workflow_t *wf, json_t *inputs,
                      json_t *evs) {
  ice_run_opts_t o = ICE_RUN_OPTS_INIT;
  ice_run_t *r = NULL;
  ice_sub_t *sub = NULL;
  json_t *res;

  if (evs != NULL)
    assert_int_equal(ice_subscribe(e, NULL, rec_cb, evs, &sub), 0);
  o.inputs = inputs;
  assert_int_equal(ice_run_new(e, wf, &o, &r, NULL), 0);
  ice_workflow_free(wf);
  assert_int_equal(ice_run_execute(r), 0);
  assert_int_equal(ice_run_finished(r), 1);
  res = json_deep_copy(ice_run_result(r));
  assert_non_null(res);
  ice_run_free(r);
  if (sub != NULL)
    ice_unsubscribe(e, sub);
  return res;
}
