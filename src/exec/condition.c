/* The `condition` node (SPEC §7.1): evaluates its expression, then runs the
 * chosen path as a child frame through the ordinary scheduler. The nodes of
 * the other path are reported skipped. */
#include "flow.h"

#include <string.h>

typedef struct {
  ice__expr_t *expr;
  uint32_t scope[2]; /* [0] false_path, [1] true_path; NONE when absent */
} cond_conf_t;

static const ice_field_t fields[] = {
    {"expression", ICE_T_STRING, 1, 0},
    {"true_path", ICE_T_ARRAY, 0, 0},
    {"false_path", ICE_T_ARRAY, 0, 0},
    {NULL, 0, 0, 0},
};

static void conf_free(void *p) {
  cond_conf_t *c = p;

  ice__expr_free(c->expr);
  ice__free(c);
}

static int compile(ice__vctx_t *v, ice__node_t *n) {
  cond_conf_t *c = ice__calloc(1, sizeof(*c));

  if (c == NULL)
    return ICE_ENOMEM;
  n->xdata = c;
  c->expr = ice__field_expr(v, n, "expression");
  c->scope[0] =
      ice__node_scope_of(v->wf, n, json_object_get(n->def, "false_path"));
  c->scope[1] =
      ice__node_scope_of(v->wf, n, json_object_get(n->def, "true_path"));
  return 0;
}

static json_t *result(const ice_task_t *t, int b, json_t *outputs) {
  return json_pack(
      "{s:b,s:s,s:s,s:o}", "result", b, "branch", b ? "true" : "false",
      "expression",
      json_string_value(json_object_get(t->node->def, "expression")),
      "branch_outputs", outputs);
}

static void path_done(ice__frame_t *f) {
  ice_task_t *t = f->data;
  int b = json_is_true(json_object_get(f->extras, "condition_result"));
  const ice__slot_t *s;
  const ice__node_t *failed = ice__frame_failed(f, &s);

  t->xstate = NULL;
  if (t->cancel != ICE__CANCEL_NONE)
    ice__task_fail_kind(t, ICE__KIND_CANCELLED, "condition cancelled");
  else if (failed != NULL)
    ice__fail_nested(t, b ? "true_path" : "false_path", failed, s);
  else
    ice__flow_done(t, result(t, b, ice__frame_outputs(f)));
  ice__frame_free(f);
}

/* The untaken path's nodes never run: say so, once each (a retried
 * condition reports them on its first attempt only). */
static void skip_path(ice_task_t *t, uint32_t scope) {
  const ice__scope_t *sc;
  long index = ice_task_index(t);

  if (scope == ICE__NONE || t->attempt > 1)
    return;
  sc = &t->run->wf->scopes[scope];
  for (uint32_t k = 0; k < sc->n; k++) {
    json_t *ev = json_pack("{s:s,s:s}", "reason", "branch_not_taken",
                           "parent_id", t->node->id);
    if (index >= 0)
      json_object_set_new(ev, "index", json_integer(index));
    ICE__EMIT(t->run, "node.skipped", NULL, &t->run->wf->nodes[sc->nodes[k]],
              NULL, ev);
  }
}

static void cond_start(ice_task_t *t) {
  const cond_conf_t *c = t->node->xdata;
  ice__frame_t *f;
  ice__err_t err;
  json_t *v, *extras;
  int b, rc;

  if (ice__expr_eval(c->expr, ice__task_lookup, t, &v, &err) != 0) {
    ice__task_fail_kind(t, ICE__KIND_EXPRESSION, "expression: %s", err.msg);
    return;
  }
  b = ice__json_truthy(v);
  json_decref(v);
  skip_path(t, c->scope[!b]);
  if (c->scope[b] == ICE__NONE) {
    ice_task_done(t, result(t, b, json_object()));
    return;
  }
  extras = json_pack("{s:b}", "condition_result", b);
  rc = ice__frame_new(t->run, c->scope[b], t, extras, -1, 0, path_done, t, &f);
  json_decref(extras);
  if (rc != 0) {
    ice__task_fail_kind(t, ICE__KIND_INTERNAL, "out of memory");
    return;
  }
  t->xstate = f;
  ice__frame_start(f);
}

static void cond_cancel(ice_task_t *t) {
  if (t->xstate != NULL)
    ice__frame_stop(t->xstate);
}

const ice_executor_t ice__exec_condition = {
    .abi = ICE_EXECUTOR_ABI,
    .type = "condition",
    .fields = fields,
    .start = cond_start,
    .cancel = cond_cancel,
};

const ice__builtin_t ice__bi_condition = {
    .compile = compile,
    .free_data = conf_free,
};
