/* The `workflow` node (SPEC §7.5) and the child-run machinery it shares
 * with `recursive`'s workflow_ref. The child workflow is loaded once, when
 * the parent is validated; each attempt starts a child run on the same
 * engine, with its own run id and events. */
#include "subworkflow.h"

#include "flow.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct ice__subwf_run_s {
  ice_task_t *task;
  ice_run_t *child;
  int suspended; /* the child stopped as waiting or paused */
  ice__subwf_cb cb;
  void *data;
};

static void child_done(ice_run_t *run, void *data) {
  ice__subwf_run_t *sr = data;
  json_t *res = ice_run_result(run);
  int ok = json_is_true(json_object_get(res, "success"));
  const char *status = json_string_value(json_object_get(res, "status"));
  char msg[1024] = "";

  if (status != NULL &&
      (strcmp(status, "waiting") == 0 || strcmp(status, "paused") == 0)) {
    /* The child can go no further now: its node parks, and the parent run
     * stops too when nothing else can move. Restored, the node starts the
     * child again, which finds its own records (same run id). */
    ice_run_free(run);
    sr->child = NULL;
    sr->suspended = 1;
    ice_task_wait(sr->task, NULL, 0);
    return;
  }

  if (!ok) {
    size_t len = 0;
    json_t *errs = json_object_get(res, "errors"), *line;
    size_t i;
    len += (size_t)snprintf(msg, sizeof(msg), "child workflow '%s' %s",
                            json_string_value(json_object_get(res, "workflow")),
                            json_string_value(json_object_get(res, "status")));
    json_array_foreach(errs, i, line) {
      if (len < sizeof(msg))
        len += (size_t)snprintf(msg + len, sizeof(msg) - len, "%s %s",
                                i == 0 ? ":" : ";", json_string_value(line));
    }
  }
  ice__task_add_child_usage(sr->task, run);
  sr->cb(sr->data, ok, json_object_get(res, "output"), ICE__KIND_SUBWORKFLOW,
         msg);
  ice_run_free(run);
  ice__free(sr);
}

int ice__subwf_start(const ice__subwf_t *s, ice_task_t *parent, json_t *inputs,
                     ice__subwf_cb cb, void *data, ice__subwf_run_t **out) {
  ice_diags_t d = {0};
  ice__subwf_run_t *sr;
  ice_run_t *child;
  int rc;

  *out = NULL;
  if (ice__task_run_depth(parent) + 1 > ICE__MAX_SUBWORKFLOW_DEPTH) {
    ice__task_fail_kind(parent, ICE__KIND_NON_RETRYABLE,
                        "sub-workflows nested deeper than %d",
                        ICE__MAX_SUBWORKFLOW_DEPTH);
    return -1;
  }
  /* Inputs the child's declared `inputs` refuse fail the node as
   * input_validation (SPEC §1.1), naming every problem. */
  if (ice__inputs_check(ice__subwf_workflow(s), inputs, &d) != 0) {
    char msg[1024];
    size_t len = (size_t)snprintf(
        msg, sizeof(msg), "child workflow %s: ", ice__subwf_workflow(s)->file);
    for (size_t i = 0; i < d.count && len < sizeof(msg); i++)
      len += (size_t)snprintf(msg + len, sizeof(msg) - len, "%s%s",
                              i > 0 ? "; " : "", d.items[i].message);
    ice__task_fail_kind(parent, ICE__KIND_INPUT_VALIDATION, "%s", msg);
    ice_diags_free(&d);
    return -1;
  }
  rc = ice__task_child_run(parent, ice__subwf_workflow(s), inputs, &child, &d);
  if (rc != 0) {
    ice__task_fail_kind(parent, ICE__KIND_SUBWORKFLOW, "%s",
                        d.count > 0 ? d.items[0].message : ice_strerror(rc));
    ice_diags_free(&d);
    return -1;
  }
  sr = ice__calloc(1, sizeof(*sr));
  if (sr == NULL) {
    ice_run_free(child);
    ice__task_fail_kind(parent, ICE__KIND_INTERNAL, "out of memory");
    return -1;
  }
  sr->task = parent;
  sr->child = child;
  sr->cb = cb;
  sr->data = data;
  *out = sr;
  ice_run_start(child, child_done, sr);
  return 0;
}

void ice__subwf_cancel(ice__subwf_run_t *r) {
  if (r == NULL)
    return;
  if (r->suspended) {
    r->cb(r->data, 0, NULL, ICE__KIND_CANCELLED, "the child run is waiting");
    ice__free(r);
    return;
  }
  ice_run_cancel(r->child);
}

/* ---- the `workflow` node ------------------------------------------------ */

typedef struct {
  ice__subwf_t *sub;
  ice__tmpl_t *inputs_tmpl;
  ice__tmpl_t *overrides_tmpl;
  json_t *inputs;    /* borrowed */
  json_t *overrides; /* borrowed */
  json_t *exposed;   /* borrowed */
} wf_conf_t;

static const ice_field_t fields[] = {
    {"workflow_ref", ICE_T_STRING, 1, 0},
    {"inputs", ICE_T_OBJECT, 0, 1},
    {"config_overrides", ICE_T_OBJECT, 0, 1},
    {"exposed_outputs", ICE_T_OBJECT, 0, 0},
    {NULL, 0, 0, 0},
};

static void conf_free(void *p, void *data) {
  wf_conf_t *c = p;

  (void)data;
  ice__subwf_free(c->sub);
  ice__tmpl_free(c->inputs_tmpl);
  ice__tmpl_free(c->overrides_tmpl);
  ice__free(c);
}

static void *compile(ice_compile_t *cc) {
  ice__vctx_t *v = cc->v;
  ice__node_t *n = cc->node;
  wf_conf_t *c = ice__calloc(1, sizeof(*c));
  const char *ref = json_string_value(json_object_get(n->def, "workflow_ref"));
  ice__err_t err;
  json_t *x;
  const char *k;

  if (c == NULL) {
    ice_compile_error(cc, NULL, "out of memory");
    return NULL;
  }
  n->xdata = c;
  c->inputs = json_object_get(n->def, "inputs");
  c->overrides = json_object_get(n->def, "config_overrides");
  c->exposed = json_object_get(n->def, "exposed_outputs");
  if (json_is_object(c->inputs) &&
      ice__tmpl_compile(c->inputs, &c->inputs_tmpl, &err) != 0)
    ice__verr_tmpl(v, n, n->def, "inputs", &err);
  if (json_is_object(c->overrides) &&
      ice__tmpl_compile(c->overrides, &c->overrides_tmpl, &err) != 0)
    ice__verr_tmpl(v, n, n->def, "config_overrides", &err);
  if (json_is_object(c->exposed)) {
    json_object_foreach(c->exposed, k, x) {
      if (!json_is_string(x) || json_string_length(x) == 0)
        ice__verr(v, n, c->exposed, k,
                  "exposed_outputs.%s must be a 'node_id.path' string", k);
    }
  } else {
    c->exposed = NULL;
  }
  if (ref != NULL && ice__subwf_compile(v, n, ref, &c->sub) != 0)
    ice_compile_error(cc, NULL, "out of memory");
  return c;
}

static void wf_done(void *data, int ok, json_t *output, int kind,
                    const char *msg) {
  ice_task_t *t = data;
  const wf_conf_t *c = ice_task_compiled(t);
  const char *name;
  json_t *x, *out;

  ice_task_set_data(t, NULL);
  if (ice__task_stopping(t)) {
    ice__task_fail_kind(t, ICE__KIND_CANCELLED, "sub-workflow cancelled");
    return;
  }
  if (!ok) {
    ice__task_fail_kind(t, kind, "%s", msg);
    return;
  }
  if (c->exposed == NULL) {
    ice_task_done(t, json_incref(output));
    return;
  }
  out = json_object();
  json_object_foreach(c->exposed, name, x) {
    const char *spec = json_string_value(x);
    const char *dot = strchr(spec, '.');
    size_t idlen = dot != NULL ? (size_t)(dot - spec) : strlen(spec);
    json_t *v = json_object_getn(output, spec, idlen);
    if (v != NULL && dot != NULL)
      v = ice__json_follow(v, dot + 1);
    if (v == NULL) {
      json_decref(out);
      ice__task_fail_kind(t, ICE__KIND_SUBWORKFLOW,
                          "exposed_outputs.%s: '%s' is not in the child "
                          "workflow's output",
                          name, spec);
      return;
    }
    if (json_object_set(out, name, v) != 0) {
      json_decref(out);
      ice__task_fail_kind(t, ICE__KIND_INTERNAL, "out of memory");
      return;
    }
  }
  ice_task_done(t, out);
}

static void wf_start(ice_task_t *t) {
  const wf_conf_t *c = ice_task_compiled(t);
  const ice__node_t *n = ice__task_node(t);
  json_t *in = NULL, *ov = NULL;
  ice__subwf_run_t *sr;
  ice__err_t err;

  if (ice__tmpl_render_or_share(c->inputs_tmpl, c->inputs, ice__task_lookup, t,
                                &in, &err) != 0 ||
      ice__tmpl_render_or_share(c->overrides_tmpl, c->overrides,
                                ice__task_lookup, t, &ov, &err) != 0) {
    json_decref(in);
    ice__task_fail_kind(t, ICE__KIND_EXPRESSION, "%s", err.msg);
    return;
  }
  /* Inputs are rendered values; overrides win over them. A new object,
   * so that neither rendered value is changed. */
  json_t *merged = json_object();
  if (merged == NULL || (in != NULL && json_object_update(merged, in) != 0) ||
      (ov != NULL && json_object_update(merged, ov) != 0)) {
    json_decref(merged);
    merged = NULL;
  }
  json_decref(in);
  json_decref(ov);
  if (merged == NULL) {
    ice__task_fail_kind(t, ICE__KIND_INTERNAL, "out of memory");
    return;
  }
  /* The node's input_schema checks what the child run receives. */
  if (n->in_schema != NULL &&
      ice__schema_check(n->in_schema, merged, &err) != 0) {
    json_decref(merged);
    ice__task_fail_kind(t, ICE__KIND_INPUT_VALIDATION, "%s", err.msg);
    return;
  }
  if (ice__subwf_start(c->sub, t, merged, wf_done, t, &sr) == 0)
    ice_task_set_data(t, sr);
  json_decref(merged);
}

static void wf_cancel(ice_task_t *t) {
  if (ice_task_data(t) != NULL)
    ice__subwf_cancel(ice_task_data(t));
}

const ice_executor_t ice__exec_workflow = {
    .abi = ICE_EXECUTOR_ABI,
    .type = "workflow",
    .fields = fields,
    .start = wf_start,
    .cancel = wf_cancel,
    .compile = compile,
    .free_compiled = conf_free,
    .flags = ICE_EX_CONTROL_FLOW,
};
