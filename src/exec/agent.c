/* The `agent` node (SPEC §6.2): an agent from a package or defined
 * inline, run once per attempt (agent.c) on the rendered prompt, or on the
 * node's context as JSON when there is no prompt. */
#include "../agent.h"

#include <string.h>

typedef struct {
  ice__agent_t *agent;
  ice__tmpl_t *prompt_tmpl;
  json_t *prompt; /* borrowed, or NULL */
  long max_iterations;
} agent_conf_t;

static const ice_field_t agent_fields[] = {
    {"package", ICE_T_STRING, 0, 0},
    {"prompt", ICE_T_STRING, 0, 1},
    {"max_iterations", ICE_T_INT, 0, 0},
    {"tools", ICE_T_ARRAY | ICE_T_NULL, 0, 0},
    {"llm_config", ICE_T_OBJECT, 0, 1},
    {"agent_config", ICE_T_OBJECT, 0, 0},
    {"model", ICE_T_STRING, 0, 1},
    {"provider", ICE_T_STRING, 0, 1},
    {"temperature", ICE_T_NUMBER, 0, 0},
    {"max_tokens", ICE_T_INT, 0, 0},
    {"memory", ICE_T_ANY, 0, 0},
    {NULL, 0, 0, 0},
};

static void conf_free(void *p, void *data) {
  agent_conf_t *c = p;

  (void)data;
  if (c == NULL)
    return;
  ice__agent_free(c->agent);
  ice__tmpl_free(c->prompt_tmpl);
  ice__free(c);
}

static void *compile(ice_compile_t *cc) {
  ice__vctx_t *v = cc->v;
  ice__node_t *n = cc->node;
  agent_conf_t *c = ice__calloc(1, sizeof(*c));
  const char *package = json_string_value(json_object_get(n->def, "package"));
  json_t *x;
  ice__err_t err;

  if (c == NULL) {
    ice_compile_error(cc, NULL, "out of memory");
    return NULL;
  }
  c->max_iterations = 10;
  if ((x = json_object_get(n->def, "max_iterations")) != NULL &&
      json_is_integer(x)) {
    if (json_integer_value(x) < 1 || json_integer_value(x) > 100000)
      ice__verr_value(v, n, n->def, "max_iterations",
                      "max_iterations must be an integer from 1 to 100000");
    else
      c->max_iterations = (long)json_integer_value(x);
  }
  if ((x = json_object_get(n->def, "memory")) != NULL && !json_is_null(x))
    ice__vwarn(v, n, n->def, "memory",
               "agent memory is accepted and ignored: an agent's "
               "conversation lasts one attempt");
  c->prompt = json_object_get(n->def, "prompt");
  if (json_is_string(c->prompt) &&
      ice__tmpl_compile(c->prompt, &c->prompt_tmpl, &err) != 0)
    ice__verr_tmpl(v, n, n->def, "prompt", &err);
  c->agent = ice__agent_compile(v, n, package, n->def, n->def, "package");
  return c;
}

static void on_done(void *data, const ice__call_res_t *res) {
  ice_task_t *t = data;

  ice_task_set_data(t, NULL);
  if (res->ok) {
    ice_task_done(t, json_incref(res->output));
    return;
  }
  if (res->retry_after >= 0)
    ice__task_retry_after(t, res->retry_after);
  ice__task_fail_kind(t,
                      ice__task_stopping(t) ? ICE__KIND_CANCELLED : res->kind,
                      "%s", res->msg);
}

static void agent_start(ice_task_t *t) {
  const agent_conf_t *c = ice_task_compiled(t);
  const ice__node_t *n = ice__task_node(t);
  json_t *user = NULL, *ctx = NULL;
  ice__agentrun_t *run;
  ice__err_t err;
  char *text;

  if (c->agent == NULL) {
    ice__task_fail_kind(t, ICE__KIND_INTERNAL, "agent not compiled");
    return;
  }
  if (n->in_schema != NULL || c->prompt == NULL)
    ctx = ice_task_context(t);
  if (n->in_schema != NULL && ice__schema_check(n->in_schema, ctx, &err) != 0) {
    json_decref(ctx);
    ice__task_fail_kind(t, ICE__KIND_INPUT_VALIDATION, "%s", err.msg);
    return;
  }
  if (c->prompt != NULL) {
    if (ice__tmpl_render_or_share(c->prompt_tmpl, c->prompt, ice__task_lookup,
                                  t, &user, &err) != 0) {
      json_decref(ctx);
      ice__task_fail_kind(t, err.kind == 0 ? ICE__KIND_TEMPLATE : err.kind,
                          "prompt: %s", err.msg);
      return;
    }
  } else {
    user = json_incref(ctx);
  }
  json_decref(ctx);
  text = json_is_string(user) ? ice__strdup(json_string_value(user))
                              : ice_json_format(user, 0);
  json_decref(user);
  if (text == NULL) {
    ice__task_fail_kind(t, ICE__KIND_INTERNAL, "out of memory");
    return;
  }
  if (ice__agent_run(t, c->agent, text, c->max_iterations, on_done, t, &run,
                     &err) != 0) {
    ice__free(text);
    ice__task_fail_kind(t, err.kind, "%s", err.msg);
    return;
  }
  ice__free(text);
  ice_task_set_data(t, run);
}

static void agent_cancel(ice_task_t *t) {
  ice__agent_cancel(ice_task_data(t));
}

const ice_executor_t ice__exec_agent = {
    .abi = ICE_EXECUTOR_ABI,
    .type = "agent",
    .fields = agent_fields,
    .start = agent_start,
    .cancel = agent_cancel,
    .default_timeout = 30.0,
    .compile = compile,
    .free_compiled = conf_free,
};
