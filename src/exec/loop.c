/* The `loop` node (SPEC §7.2): one child frame per item, at most
 * max_concurrency at once, results kept in item order whatever the order
 * in which iterations finish. */
#include "flow.h"

#include <string.h>

typedef struct {
  ice__expr_t *expr;  /* items_source as a path/expression */
  ice__tmpl_t *tmpl;  /* items_source as a template */
  const char *source; /* as written, for messages */
  const char *item_var;
  const char *index_var;
  uint32_t scope;
  long max_iterations; /* 0 = all */
  long concurrency;
  int continue_on_error;
} loop_conf_t;

typedef struct {
  ice_task_t *task;
  json_t *items;
  json_t *results;
  ice__frame_t **live; /* per item index while running */
  size_t n, next, inflight;
  int failed;   /* an iteration failed: start no more */
  int stopping; /* stopping the others: do not complete yet */
  int fail_kind;
  char *fail_msg;
} loop_state_t;

static const ice_field_t fields[] = {
    {"items_source", ICE_T_STRING, 1, 1},
    {"item_var", ICE_T_STRING, 0, 0},
    {"index_var", ICE_T_STRING, 0, 0},
    {"body", ICE_T_ARRAY | ICE_T_NODES, 1, 0},
    {"max_iterations", ICE_T_INT, 0, 0},
    {"max_concurrency", ICE_T_INT, 0, 0},
    {"continue_on_error", ICE_T_BOOL, 0, 0},
    {NULL, 0, 0, 0},
};

static void conf_free(void *p, void *data) {
  (void)data;
  loop_conf_t *c = p;

  ice__expr_free(c->expr);
  ice__tmpl_free(c->tmpl);
  ice__free(c);
}

static void *compile(ice_compile_t *cc) {
  ice__vctx_t *v = cc->v;
  ice__node_t *n = cc->node;
  loop_conf_t *c = ice__calloc(1, sizeof(*c));
  json_t *src = json_object_get(n->def, "items_source");
  json_t *body = json_object_get(n->def, "body");

  if (c == NULL) {
    ice_compile_error(cc, NULL, "out of memory");
    return NULL;
  }
  n->xdata = c;
  c->item_var = json_string_value(json_object_get(n->def, "item_var"));
  c->index_var = json_string_value(json_object_get(n->def, "index_var"));
  if (c->item_var == NULL)
    c->item_var = "item";
  if (c->index_var == NULL)
    c->index_var = "index";
  c->max_iterations = ice__field_int(v, n, "max_iterations", 0, 1);
  c->concurrency = ice__field_int(v, n, "max_concurrency", 1, 1);
  c->continue_on_error =
      json_is_true(json_object_get(n->def, "continue_on_error"));
  c->scope = ice__node_scope_of(v->wf, n, body);
  if (json_is_array(body) && json_array_size(body) == 0)
    ice__verr(v, n, n->def, "body", "'body' must hold at least one node");
  if (json_is_string(src)) {
    ice__err_t err;
    c->source = json_string_value(src);
    if (strstr(c->source, "{{") != NULL) {
      if (ice__tmpl_compile(src, &c->tmpl, &err) != 0)
        ice__verr_tmpl(v, n, n->def, "items_source", &err);
    } else {
      c->expr = ice__field_expr(v, n, "items_source");
    }
  }
  return c;
}

static void pump(loop_state_t *st);

static void finish(loop_state_t *st) {
  ice_task_t *t = st->task;

  ice_task_set_data(t, NULL);
  if (ice__task_stopping(t))
    ice__task_fail_kind(t, ICE__KIND_CANCELLED, "loop cancelled");
  else if (st->failed)
    ice__task_fail_kind(t, st->fail_kind, "%s", st->fail_msg);
  else
    ice__task_done_raw(t, json_incref(st->results));
  json_decref(st->items);
  json_decref(st->results);
  ice__free(st->live);
  ice__free(st->fail_msg);
  ice__free(st);
}

static void maybe_finish(loop_state_t *st) {
  if (st->stopping || st->inflight > 0)
    return;
  if (st->failed || st->next == st->n || ice__task_stopping(st->task))
    finish(st);
}

/* Stops every running iteration (a failure, a cancel). Their frames end
 * through iter_done, which must not complete the loop meanwhile. */
static void stop_all(loop_state_t *st) {
  st->stopping = 1;
  for (size_t i = 0; i < st->next; i++) {
    if (st->live[i] != NULL)
      ice__frame_stop(st->live[i]);
  }
  st->stopping = 0;
}

static void iter_done(ice__frame_t *f, void *data) {
  loop_state_t *st = data;
  const loop_conf_t *c = ice_task_compiled(st->task);
  size_t i = (size_t)ice__frame_index(f);
  int kind;
  const char *msg;
  const char *bad = ice__frame_failure(f, &kind, &msg);

  st->live[i] = NULL;
  st->inflight--;
  if (bad != NULL && c->continue_on_error) {
    json_array_set_new(st->results, i,
                       json_pack("{s:b,s:{s:s,s:o,s:s}}", "success", 0, "error",
                                 "kind", ice__kind_name(kind), "message",
                                 ice__json_lossy_cstr(msg), "node_id", bad));
  } else if (bad != NULL) {
    if (!st->failed) {
      char *line = NULL;
      st->failed = 1;
      st->fail_kind = kind;
      if (asprintf(&line, "iteration %zu: node '%s' failed: %s", i, bad, msg) <
          0)
        line = NULL;
      st->fail_msg = line;
      ice__frame_close(f);
      stop_all(st);
      maybe_finish(st);
      return;
    }
  } else {
    json_t *last = ice__frame_last_output(f);
    json_array_set(st->results, i, last != NULL ? last : json_null());
  }
  ice__frame_close(f);
  if (!st->stopping) {
    pump(st);
    maybe_finish(st);
  }
}

/* Starts iterations while the concurrency limit allows. */
static void pump(loop_state_t *st) {
  ice_task_t *t = st->task;
  const loop_conf_t *c = ice_task_compiled(t);

  while (!st->failed && !ice__task_stopping(t) && st->next < st->n &&
         st->inflight < (size_t)c->concurrency) {
    size_t i = st->next;
    json_t *extras = json_object();
    ice__frame_t *f;
    int rc;
    if (extras == NULL ||
        json_object_set(extras, c->item_var, json_array_get(st->items, i)) ||
        json_object_set_new(extras, c->index_var,
                            json_integer((json_int_t)i))) {
      json_decref(extras);
      ice__task_fault(t);
      st->failed = 1;
      st->fail_kind = ICE__KIND_INTERNAL;
      st->fail_msg = ice__strdup("out of memory");
      return;
    }
    if (ice__task_wants(t, ICE__EV_LOOP_ITERATION))
      ice__task_emit(t, ICE__EV_LOOP_ITERATION,
                     json_pack("{s:I}", "index", (json_int_t)i));
    else
      ice__task_emit(t, ICE__EV_LOOP_ITERATION, NULL);
    rc = ice__frame_open(t, c->scope, extras, (long)i, -1, iter_done, st, &f);
    json_decref(extras);
    if (rc != 0) {
      ice__task_fault(t);
      st->failed = 1;
      st->fail_kind = ICE__KIND_INTERNAL;
      st->fail_msg = ice__strdup("out of memory");
      return;
    }
    st->next++;
    st->inflight++;
    st->live[i] = f;
  }
}

static void loop_start(ice_task_t *t) {
  const loop_conf_t *c = ice_task_compiled(t);
  loop_state_t *st;
  ice__err_t err;
  json_t *items;
  int rc;

  if (c->tmpl != NULL)
    rc = ice__tmpl_render(c->tmpl, ice__task_lookup, t, &items, &err);
  else
    rc = ice__expr_eval(c->expr, ice__task_lookup, t, &items, &err);
  if (rc != 0) {
    ice__task_fail_kind(t, ICE__KIND_EXPRESSION, "items_source: %s", err.msg);
    return;
  }
  if (!json_is_array(items)) {
    json_decref(items);
    ice__task_fail_kind(t, ICE__KIND_EXPRESSION,
                        "items_source '%s' did not resolve to a list",
                        c->source);
    return;
  }
  st = ice__calloc(1, sizeof(*st));
  if (st != NULL) {
    st->n = json_array_size(items);
    if (c->max_iterations > 0 && st->n > (size_t)c->max_iterations)
      st->n = (size_t)c->max_iterations;
    st->live = ice__calloc(st->n + 1, sizeof(*st->live));
    st->results = json_array();
    for (size_t i = 0; st->results != NULL && i < st->n; i++) {
      if (json_array_append(st->results, json_null()) != 0) {
        json_decref(st->results);
        st->results = NULL;
      }
    }
  }
  if (st == NULL || st->live == NULL || st->results == NULL) {
    if (st != NULL) {
      ice__free(st->live);
      json_decref(st->results);
    }
    ice__free(st);
    json_decref(items);
    ice__task_fail_kind(t, ICE__KIND_INTERNAL, "out of memory");
    return;
  }
  st->task = t;
  st->items = items;
  ice_task_set_data(t, st);
  pump(st);
  maybe_finish(st);
}

static void loop_cancel(ice_task_t *t) {
  loop_state_t *st = ice_task_data(t);

  if (st == NULL)
    return;
  stop_all(st);
  maybe_finish(st);
}

const ice_executor_t ice__exec_loop = {
    .abi = ICE_EXECUTOR_ABI,
    .type = "loop",
    .fields = fields,
    .start = loop_start,
    .cancel = loop_cancel,
    .flags = ICE_EX_CONTROL_FLOW,
    .compile = compile,
    .free_compiled = conf_free,
};
