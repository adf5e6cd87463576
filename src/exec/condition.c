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
    {"true_path", ICE_T_ARRAY | ICE_T_NODES, 0, 0},
    {"false_path", ICE_T_ARRAY | ICE_T_NODES, 0, 0},
    {NULL, 0, 0, 0},
};

static void conf_free(void *p, void *data) {
  (void)data;
  cond_conf_t *c = p;

  ice__expr_free(c->expr);
  ice__free(c);
}

static void *compile(ice_compile_t *cc) {
  ice__vctx_t *v = cc->v;
  ice__node_t *n = cc->node;
  cond_conf_t *c = ice__calloc(1, sizeof(*c));

  if (c == NULL) {
    ice_compile_error(cc, NULL, "out of memory");
    return NULL;
  }
  n->xdata = c;
  c->expr = ice__field_expr(v, n, "expression");
  c->scope[0] =
      ice__node_scope_of(v->wf, n, json_object_get(n->def, "false_path"));
  c->scope[1] =
      ice__node_scope_of(v->wf, n, json_object_get(n->def, "true_path"));
  return c;
}

static json_t *result(const ice_task_t *t, int b, json_t *outputs) {
  return json_pack(
      "{s:b,s:s,s:s,s:o}", "result", b, "branch", b ? "true" : "false",
      "expression",
      json_string_value(json_object_get(ice_task_config(t), "expression")),
      "branch_outputs", outputs);
}

/* An attempt's state: the frame of the chosen path, and which it is. */
typedef struct {
  ice__frame_t *frame;
  int b;
} cond_state_t;

static void path_done(ice__frame_t *f, void *data) {
  ice_task_t *t = data;
  cond_state_t *st = ice_task_data(t);
  int b = st->b, kind;
  const char *msg, *failed = ice__frame_failure(f, &kind, &msg);

  ice_task_set_data(t, NULL);
  ice__free(st);
  if (ice__task_stopping(t))
    ice__task_fail_kind(t, ICE__KIND_CANCELLED, "condition cancelled");
  else if (failed != NULL)
    ice__task_fail_kind(t, kind, "%s: node '%s' failed: %s",
                        b ? "true_path" : "false_path", failed, msg);
  else
    ice_task_done(t, result(t, b, ice__frame_outputs(f)));
  ice__frame_close(f);
}

static void cond_start(ice_task_t *t) {
  const cond_conf_t *c = ice_task_compiled(t);
  cond_state_t *st;
  ice__err_t err;
  json_t *v, *extras;
  int b, rc;

  if (ice__expr_eval(c->expr, ice__task_lookup, t, &v, &err) != 0) {
    ice__task_fail_kind(t, ICE__KIND_EXPRESSION, "expression: %s", err.msg);
    return;
  }
  b = ice__json_truthy(v);
  json_decref(v);
  /* The untaken path's nodes never run: say so, once each (a retried
   * condition reports them on its first attempt only). */
  if (c->scope[!b] != ICE__NONE && ice_task_attempt(t) == 1)
    ice__scope_skip(t, c->scope[!b], -1, ICE__SKIP_BRANCH);
  if (c->scope[b] == ICE__NONE) {
    ice_task_done(t, result(t, b, json_object()));
    return;
  }
  st = ice__calloc(1, sizeof(*st));
  if (st == NULL) {
    ice__task_fail_kind(t, ICE__KIND_INTERNAL, "out of memory");
    return;
  }
  st->b = b;
  ice_task_set_data(t, st);
  extras = json_pack("{s:b}", "condition_result", b);
  rc =
      ice__frame_open(t, c->scope[b], extras, -1, -1, path_done, t, &st->frame);
  json_decref(extras);
  if (rc != 0) {
    ice_task_set_data(t, NULL);
    ice__free(st);
    ice__task_fail_kind(t, ICE__KIND_INTERNAL, "out of memory");
  }
}

static void cond_cancel(ice_task_t *t) {
  cond_state_t *st = ice_task_data(t);

  if (st != NULL)
    ice__frame_stop(st->frame);
}

const ice_executor_t ice__exec_condition = {
    .abi = ICE_EXECUTOR_ABI,
    .type = "condition",
    .fields = fields,
    .start = cond_start,
    .cancel = cond_cancel,
    .flags = ICE_EX_CONTROL_FLOW,
    .compile = compile,
    .free_compiled = conf_free,
};
