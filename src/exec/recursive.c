/* The `recursive` node (SPEC §7.4). The graph side (its body, back edges)
 * is in graph.c and the re-running of the body in sched.c; this file is
 * one step: count the iteration, optionally run `workflow_ref` on the
 * context, test the convergence condition, and either complete or hand
 * an intermediate output back for another iteration. */
#include "../agent.h"
#include "flow.h"
#include "subworkflow.h"

#include <string.h>

typedef struct {
  ice__expr_t *cond;
  long max_iterations;
  int preserve;
  const char *context_key;
  ice__subwf_t *sub;   /* workflow_ref, or NULL */
  ice__agent_t *agent; /* agent_package, or NULL */
} rec_conf_t;

static const ice_field_t fields[] = {
    {"recursive_sources", ICE_T_ARRAY, 1, 0},
    {"convergence_condition", ICE_T_STRING, 1, 0},
    {"max_iterations", ICE_T_INT, 0, 0},
    {"preserve_context", ICE_T_BOOL, 0, 0},
    {"context_key", ICE_T_STRING, 0, 0},
    {"workflow_ref", ICE_T_STRING, 0, 0},
    {"agent_package", ICE_T_STRING, 0, 0},
    /* iceOS bundles write max_rounds on recursive nodes: the same as
     * max_iterations when that is absent. */
    {"max_rounds", ICE_T_INT, 0, 0},
    {NULL, 0, 0, 0},
};

static void conf_free(void *p, void *data) {
  (void)data;
  rec_conf_t *c = p;

  ice__expr_free(c->cond);
  ice__subwf_free(c->sub);
  ice__agent_free(c->agent);
  ice__free(c);
}

static void *compile(ice_compile_t *cc) {
  ice__vctx_t *v = cc->v;
  ice__node_t *n = cc->node;
  rec_conf_t *c = ice__calloc(1, sizeof(*c));
  const char *ref;

  if (c == NULL) {
    ice_compile_error(cc, NULL, "out of memory");
    return NULL;
  }
  n->xdata = c;
  c->cond = ice__field_expr(v, n, "convergence_condition");
  c->max_iterations =
      ice__field_int(v, n, "max_iterations",
                     json_object_get(n->def, "max_iterations") == NULL
                         ? ice__field_int(v, n, "max_rounds", 50, 1)
                         : 50,
                     1);
  c->preserve = !json_is_false(json_object_get(n->def, "preserve_context"));
  c->context_key = json_string_value(json_object_get(n->def, "context_key"));
  if (c->context_key == NULL)
    c->context_key = "recursive_context";
  ref = json_string_value(json_object_get(n->def, "workflow_ref"));
  if (ref != NULL)
    if (ice__subwf_compile(v, n, ref, &c->sub) != 0)
      ice_compile_error(cc, NULL, "out of memory");
  {
    const char *pkg =
        json_string_value(json_object_get(n->def, "agent_package"));
    if (pkg != NULL && ref != NULL)
      ice_compile_error(cc, "agent_package",
                        "set either agent_package or workflow_ref, not both");
    else if (pkg != NULL)
      c->agent = ice__agent_compile(v, n, pkg, NULL, n->def, "agent_package");
  }
  return c;
}

/* Per-attempt state: the names added to the context for the condition. */
typedef struct {
  ice_task_t *task;
  json_t *extras;
  ice__subwf_run_t *child;
  ice__agentrun_t *agent;
} rec_state_t;

static json_t *lookup(void *data, const char *name, size_t len) {
  rec_state_t *st = data;
  json_t *v = json_object_getn(st->extras, name, len);

  return v != NULL ? v : ice__task_lookup(st->task, name, len);
}

static void state_free(rec_state_t *st) {
  json_decref(st->extras);
  ice__free(st);
}

/* Evaluates the condition and completes or iterates. */
static void decide(rec_state_t *st) {
  ice_task_t *t = st->task;
  const rec_conf_t *c = ice_task_compiled(t);
  json_t *ctx = json_object_get(st->extras, c->context_key);
  json_int_t k = (json_int_t)ice__task_iteration(t);
  ice__err_t err;
  json_t *v;
  int met;

  ice_task_set_data(t, NULL);
  if (ice__expr_eval(c->cond, lookup, st, &v, &err) != 0) {
    state_free(st);
    ice__task_fail_kind(t, ICE__KIND_EXPRESSION, "convergence_condition: %s",
                        err.msg);
    return;
  }
  met = ice__json_truthy(v);
  json_decref(v);
  ice__task_emit(t, ICE__EV_RECURSIVE_ITERATION,
                 ice__task_wants(t, ICE__EV_RECURSIVE_ITERATION)
                     ? json_pack("{s:I,s:b}", "iteration", k, "converged", met)
                     : NULL);
  json_t *result = json_object_get(st->extras, "result");
  if (met || k >= c->max_iterations) {
    json_t *fin = c->preserve ? json_incref(ctx) : json_object();
    json_t *out = json_pack("{s:b,s:s,s:I,s:o}", "converged", met, "reason",
                            met ? "condition_met" : "max_iterations_reached",
                            "iterations", k, "final_context", fin);
    if (out != NULL && result != NULL &&
        json_object_set(out, "result", result) != 0) {
      json_decref(out);
      out = NULL;
    }
    if (out == NULL)
      ice__task_fail_kind(t, ICE__KIND_INTERNAL, "out of memory");
    else
      ice__task_done_flow(t, out);
  } else {
    json_t *out = json_pack("{s:b,s:I}", "converged", 0, "iteration", k);
    /* The next iteration of a self-looping node hands it on (§7.4). */
    if (out != NULL &&
        (json_object_set(out, c->context_key, ctx) != 0 ||
         (result != NULL && json_object_set(out, "result", result) != 0))) {
      json_decref(out);
      out = NULL;
    }
    if (out == NULL)
      ice__task_fail_kind(t, ICE__KIND_INTERNAL, "out of memory");
    else
      ice__task_iterate(t, out);
  }
  state_free(st);
}

static void agent_done(void *data, const ice__call_res_t *res) {
  rec_state_t *st = data;
  ice_task_t *t = st->task;

  st->agent = NULL;
  if (ice__task_stopping(t) || !res->ok) {
    ice_task_set_data(t, NULL);
    state_free(st);
    if (res->retry_after >= 0)
      ice__task_retry_after(t, res->retry_after);
    if (ice__task_stopping(t))
      ice__task_fail_kind(t, ICE__KIND_CANCELLED, "recursive cancelled");
    else
      ice__task_fail_kind(t, res->kind, "agent_package: %s", res->msg);
    return;
  }
  if (json_object_set(st->extras, "result", res->output) != 0) {
    ice_task_set_data(t, NULL);
    state_free(st);
    ice__task_fail_kind(t, ICE__KIND_INTERNAL, "out of memory");
    return;
  }
  decide(st);
}

static void child_done(void *data, int ok, json_t *output, int kind,
                       const char *msg) {
  rec_state_t *st = data;

  st->child = NULL;
  if (ice__task_stopping(st->task) || !ok) {
    ice_task_t *t = st->task;
    ice_task_set_data(t, NULL);
    state_free(st);
    if (ice__task_stopping(t))
      ice__task_fail_kind(t, ICE__KIND_CANCELLED, "recursive cancelled");
    else
      ice__task_fail_kind(t, kind, "workflow_ref: %s", msg);
    return;
  }
  if (json_object_set(st->extras, "result", output) != 0) {
    ice_task_t *t = st->task;
    ice_task_set_data(t, NULL);
    state_free(st);
    ice__task_fail_kind(t, ICE__KIND_INTERNAL, "out of memory");
    return;
  }
  decide(st);
}

/* The history array of the next iteration's carried context. Outputs are
 * immutable once seen, so the array may only grow in place when nothing but
 * this node can reach it: the previous carried context C, held by the
 * scheduler and by R's previous intermediate output O (held by the
 * scheduler alone), and the array held by C alone. Then appending is
 * invisible, and a preserve_context run costs O(1) per iteration instead
 * of a copy of the whole history. When a body node kept any of them (an
 * `echo` of R's output, say), the array is copied as before, so what it
 * kept never changes and no reference cycle can form. New reference. */
static json_t *history_for_next(const ice_task_t *t, const char *context_key) {
  json_t *C = ice__task_carry(t), *O = ice__task_prev_output(t);
  json_t *old = json_object_get(C, "history");
  json_t *hist;

  if (old == NULL)
    return json_array();
  if (O != NULL && O->refcount == 1 && json_object_get(O, context_key) == C &&
      C->refcount == 2 && old->refcount == 1)
    return json_incref(old);
  hist = json_array();
  if (hist != NULL && json_array_extend(hist, old) != 0) {
    json_decref(hist);
    return NULL;
  }
  return hist;
}

static void rec_start(ice_task_t *t) {
  const rec_conf_t *c = ice_task_compiled(t);
  const ice__node_t *n = ice__task_node(t);
  rec_state_t *st;
  json_t *inputs, *ctx, *hist;
  json_int_t k = (json_int_t)ice__task_iteration(t);

  /* R's convergence inputs for this iteration: its body's outputs. */
  inputs = json_pack("{s:I}", "iteration", k);
  ctx = ice__task_body_outputs(t);
  if (inputs == NULL || ctx == NULL || json_object_update(inputs, ctx) != 0) {
    json_decref(inputs);
    json_decref(ctx);
    ice__task_fail_kind(t, ICE__KIND_INTERNAL, "out of memory");
    return;
  }
  json_decref(ctx);
  /* A new attempt of the same iteration keeps the carried context. */
  if (ice_task_attempt(t) == 1 || ice__task_carry(t) == NULL) {
    hist = history_for_next(t, c->context_key);
    if (hist != NULL && c->preserve && json_array_append(hist, inputs) != 0) {
      json_decref(hist);
      hist = NULL;
    }
    ctx = json_pack("{s:I,s:s,s:o*}", "iteration", k, "node_id", n->id,
                    "history", hist);
    if (ctx == NULL || hist == NULL) { /* ENOMEM */
      json_decref(ctx);
      json_decref(inputs);
      ice__task_fail_kind(t, ICE__KIND_INTERNAL, "out of memory");
      return;
    }
    ice__task_set_carry(t, ctx);
  }
  ctx = ice__task_carry(t);
  st = ice__calloc(1, sizeof(*st));
  if (st == NULL) {
    json_decref(inputs);
    ice__task_fail_kind(t, ICE__KIND_INTERNAL, "out of memory");
    return;
  }
  st->task = t;
  st->extras = json_pack("{s:I,s:O}", "iteration", k, c->context_key, ctx);
  if (st->extras == NULL) {
    json_decref(inputs);
    state_free(st);
    ice__task_fail_kind(t, ICE__KIND_INTERNAL, "out of memory");
    return;
  }
  ice_task_set_data(t, st);
  if (c->agent != NULL || (c->sub != NULL && n->nbody == 0)) {
    /* The iceOS form (§7.4): the node loops on its own. Each iteration
     * runs a fresh agent, or the workflow, on the node's context plus
     * iteration, the previous result and the carried context. */
    json_t *in = ice_task_context(t);
    json_t *prev = json_object_get(ice__task_prev_output(t), "result");
    json_decref(inputs);
    if (in != NULL &&
        (json_object_set_new(in, "iteration", json_integer(k)) != 0 ||
         (prev != NULL && json_object_set(in, "result", prev) != 0) ||
         (c->preserve && json_object_set(in, c->context_key, ctx) != 0))) {
      json_decref(in);
      in = NULL;
    }
    if (c->agent != NULL) {
      char *text = in != NULL ? ice_json_format(in, 0) : NULL;
      ice__err_t err;
      json_decref(in);
      if (text == NULL) {
        ice_task_set_data(t, NULL);
        state_free(st);
        ice__task_fail_kind(t, ICE__KIND_INTERNAL, "out of memory");
        return;
      }
      if (ice__agent_run(t, c->agent, text, 10, agent_done, st, &st->agent,
                         &err) != 0) {
        ice_task_set_data(t, NULL);
        state_free(st);
        ice__task_fail_kind(t, err.kind, "agent_package: %s", err.msg);
      }
      ice__free(text);
      return;
    }
    json_t *decl = in != NULL
                       ? ice__inputs_declared(ice__subwf_workflow(c->sub), in)
                       : NULL;
    json_decref(in);
    int rc = decl == NULL ? -1
                          : ice__subwf_start(c->sub, t, decl, child_done, st,
                                             &st->child);
    if (decl == NULL)
      ice__task_fail_kind(t, ICE__KIND_INTERNAL, "out of memory");
    json_decref(decl);
    if (rc != 0) {
      ice_task_set_data(t, NULL);
      state_free(st);
    }
    return;
  }
  if (c->sub != NULL) {
    json_t *ctx_in = ice_task_context(t), *in;
    if (ctx_in != NULL &&
        json_object_set_new(ctx_in, "iteration", json_integer(k)) != 0) {
      json_decref(ctx_in);
      ctx_in = NULL;
    }
    json_decref(inputs);
    /* A child that declares its inputs (SPEC §1.1) gets only those. */
    in = ice__inputs_declared(ice__subwf_workflow(c->sub), ctx_in);
    json_decref(ctx_in);
    int rc = in == NULL
                 ? -1
                 : ice__subwf_start(c->sub, t, in, child_done, st, &st->child);
    if (in == NULL)
      ice__task_fail_kind(t, ICE__KIND_INTERNAL, "out of memory");
    json_decref(in);
    if (rc != 0) {
      ice_task_set_data(t, NULL);
      state_free(st);
    }
    return;
  }
  json_decref(inputs);
  decide(st);
}

static void rec_cancel(ice_task_t *t) {
  rec_state_t *st = ice_task_data(t);

  if (st != NULL && st->child != NULL)
    ice__subwf_cancel(st->child);
  if (st != NULL && st->agent != NULL)
    ice__agent_cancel(st->agent);
}

const ice_executor_t ice__exec_recursive = {
    .abi = ICE_EXECUTOR_ABI,
    .type = "recursive",
    .fields = fields,
    .start = rec_start,
    .cancel = rec_cancel,
    .flags = ICE_EX_CONTROL_FLOW | ICE_EX_CLOSES_CYCLES,
    .compile = compile,
    .free_compiled = conf_free,
};
