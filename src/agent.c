/* Agents (agent.h). A run is a small state machine over calls of the node
 * that runs it: ask the LLM for one strict-JSON step, run the tool it
 * names through the same path as a tool node, append the exchange, and
 * ask again, until the answer is final or max_iterations LLM steps were
 * taken. Only one call is in flight at a time, so a cancel has exactly
 * one thing to stop. */
#include "agent.h"

#include "llm.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

struct ice__agent_s {
  ice__llmspec_t *spec;
  char *system; /* the system prompt as written, or NULL */
  ice__tooldef_t **tools;
  size_t ntools;
  char *tool_list; /* "a, b" for the system message and errors */
};

void ice__agent_free(ice__agent_t *a) {
  if (a == NULL)
    return;
  ice__llmspec_free(a->spec);
  for (size_t i = 0; i < a->ntools; i++)
    ice__tooldef_free(a->tools[i]);
  ice__free(a->tools);
  ice__free(a->system);
  ice__free(a->tool_list);
  ice__free(a);
}

/* A tool entry: a name, or iceOS's {"name", ...} object. */
static const char *tool_name(json_t *e) {
  if (json_is_object(e))
    e = json_object_get(e, "name");
  return json_string_value(e);
}

/* The agent's tools: list is owner's `tools`; a package's (pkg set) is
 * reported here when it is not a list, a node's by the field checks. */
static int compile_tools(ice__vctx_t *v, const ice__node_t *n, ice__agent_t *a,
                         json_t *owner, const char *pkg) {
  json_t *list = json_object_get(owner, "tools");
  size_t i, len = 0;
  json_t *e;

  if (list == NULL || json_is_null(list))
    return 0;
  if (!json_is_array(list)) {
    if (pkg != NULL)
      ice__verr_value(v, n, owner, "tools",
                      "agent '%s': tools must be a list of tool names", pkg);
    return -1;
  }
  a->tools = ice__calloc(json_array_size(list) + 1, sizeof(*a->tools));
  if (a->tools == NULL)
    return -1;
  json_array_foreach(list, i, e) {
    const char *name = tool_name(e);
    if (name == NULL) {
      ice__verr_item(v, n, list, i,
                     "tools[%zu] must be a tool name or an object with a "
                     "\"name\"",
                     i);
      continue;
    }
    ice__tooldef_t *d = ice__tooldef_resolve(v, n, list, NULL, name);
    if (d != NULL) {
      a->tools[a->ntools++] = d;
      len += strlen(name) + 2;
    }
  }
  a->tool_list = ice__calloc(1, len + 1);
  if (a->tool_list == NULL)
    return -1;
  for (size_t k = 0; k < a->ntools; k++) {
    if (k > 0)
      strcat(a->tool_list, ", ");
    strcat(a->tool_list, ice__tooldef_name(a->tools[k]));
  }
  return 0;
}

/* The system prompt: agent_config.system_prompt (or .prompt) of the node,
 * else the package's system_prompt. */
static const char *system_of(json_t *node, json_t *pkg) {
  json_t *ac = json_object_get(node, "agent_config");
  const char *s = json_string_value(json_object_get(ac, "system_prompt"));

  if (s == NULL)
    s = json_string_value(json_object_get(ac, "prompt"));
  if (s == NULL)
    s = json_string_value(json_object_get(pkg, "system_prompt"));
  return s;
}

ice__agent_t *ice__agent_compile(ice__vctx_t *v, const ice__node_t *n,
                                 const char *package, json_t *node, json_t *obj,
                                 const char *key) {
  ice__agent_t *a;
  json_t *pkg = NULL, *tools;
  const char *s;

  if (package != NULL) {
    pkg = ice__wf_agent_def(v->wf, package, NULL);
    if (pkg == NULL) {
      ice__verr_value(v, n, obj, key,
                      "unknown agent '%s' (define it in `agents` or in a "
                      "tool file)",
                      package);
      return NULL;
    }
    if (!json_is_object(pkg)) {
      ice__verr_value(v, n, obj, key, "agent '%s' must be an object", package);
      return NULL;
    }
  }
  a = ice__calloc(1, sizeof(*a));
  if (a == NULL) {
    ice__verr(v, n, obj, key, "out of memory");
    return NULL;
  }
  s = system_of(node, pkg);
  if (s != NULL && (a->system = ice__strdup(s)) == NULL)
    goto fail;
  tools = json_object_get(node, "tools");
  if (compile_tools(v, n, a, tools == NULL || json_is_null(tools) ? pkg : node,
                    tools == NULL || json_is_null(tools) ? package : NULL) != 0)
    goto fail;
  if (a->tool_list == NULL && (a->tool_list = ice__strdup("")) == NULL)
    goto fail;
  a->spec =
      ice__llmspec_compile(v, n, json_object_get(node, "llm_config"), node,
                           json_object_get(pkg, "llm_config"), NULL);
  if (a->spec == NULL)
    goto fail;
  return a;
fail:
  ice__agent_free(a);
  return NULL;
}

/* ---- one run ---------------------------------------------------------------
 */

struct ice__agentrun_s {
  ice_task_t *parent;
  const ice__agent_t *a;
  ice__llmcfg_t cfg;
  json_t *messages;
  json_t *reasoning;
  json_t *result;        /* the last tool's output, or NULL */
  const char *last_tool; /* borrowed from the agent */
  char *message;
  long iterations, max_iterations;
  ice_task_t *cur; /* the call in flight */
  int cancelled;
  ice__call_cb cb;
  void *data;
};

static void run_free(ice__agentrun_t *r) {
  ice__llmcfg_clear(&r->cfg);
  json_decref(r->messages);
  json_decref(r->reasoning);
  json_decref(r->result);
  ice__free(r->message);
  ice__free(r);
}

static void finish_fail(ice__agentrun_t *r, int kind, double retry_after,
                        const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void finish_fail(ice__agentrun_t *r, int kind, double retry_after,
                        const char *fmt, ...) {
  ice__call_res_t res;
  char msg[1024];
  va_list ap;

  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  memset(&res, 0, sizeof(res));
  res.kind = r->cancelled ? ICE__KIND_CANCELLED : kind;
  res.msg = msg;
  res.retry_after = retry_after;
  r->cb(r->data, &res);
  run_free(r);
}

static void finish_ok(ice__agentrun_t *r) {
  ice__call_res_t res;
  json_t *msg = json_string(r->message != NULL ? r->message : "");
  json_t *out;

  if (msg == NULL)
    msg = ice__json_lossy(r->message, strlen(r->message));
  out = json_pack(
      "{s:O,s:o,s:O,s:O,s:O,s:I}", "reasoning", r->reasoning, "last_tool",
      r->last_tool != NULL ? json_string(r->last_tool) : json_null(), "result",
      r->result != NULL ? r->result : json_null(), "message", msg, "response",
      msg, "iterations", (json_int_t)r->iterations);
  json_decref(msg);
  if (out == NULL) {
    finish_fail(r, ICE__KIND_INTERNAL, -1, "out of memory");
    return;
  }
  memset(&res, 0, sizeof(res));
  res.ok = 1;
  res.output = out;
  r->cb(r->data, &res);
  json_decref(out);
  run_free(r);
}

static void on_llm(void *data, const ice__call_res_t *res);

static int step(ice__agentrun_t *r) {
  r->cur = ice__llm_call(r->parent, &r->cfg, r->messages, NULL, on_llm, r);
  return r->cur != NULL ? 0 : -1;
}

static void on_tool(void *data, const ice__call_res_t *res) {
  ice__agentrun_t *r = data;
  json_t *obs;
  char *text;

  r->cur = NULL;
  if (r->cancelled || !res->ok) {
    finish_fail(r, res->ok ? ICE__KIND_CANCELLED : res->kind, res->retry_after,
                "tool '%s': %s", r->last_tool,
                res->ok ? "cancelled" : res->msg);
    return;
  }
  json_decref(r->result);
  r->result = json_incref(res->output);
  obs = json_pack("{s:O}", "tool_result", res->output);
  text = obs != NULL ? ice_json_format(obs, 0) : NULL;
  json_decref(obs);
  if (text == NULL ||
      json_array_append_new(r->messages, json_pack("{s:s,s:s}", "role", "user",
                                                   "content", text)) != 0) {
    ice__free(text);
    finish_fail(r, ICE__KIND_INTERNAL, -1, "out of memory");
    return;
  }
  ice__free(text);
  if (r->iterations >= r->max_iterations) {
    finish_ok(r);
    return;
  }
  if (step(r) != 0)
    finish_fail(r, ICE__KIND_INTERNAL, -1, "out of memory");
}

/* The answer's JSON: the text itself, or inside a ``` fence, as models
 * often write it. NULL when it is not JSON. */
static json_t *parse_step(const char *text) {
  json_t *j = json_loads(text, JSON_DECODE_ANY, NULL);
  const char *open, *close;

  if (j != NULL || (open = strstr(text, "```")) == NULL)
    return j;
  open += 3;
  while (*open != '\0' && *open != '\n' && *open != '{')
    open++; /* a language tag */
  close = strstr(open, "```");
  if (close == NULL)
    return NULL;
  return json_loadb(open, (size_t)(close - open), JSON_DECODE_ANY, NULL);
}

static const ice__tooldef_t *find_tool(const ice__agent_t *a,
                                       const char *name) {
  for (size_t i = 0; i < a->ntools; i++) {
    if (strcmp(ice__tooldef_name(a->tools[i]), name) == 0)
      return a->tools[i];
  }
  return NULL;
}

static void on_llm(void *data, const ice__call_res_t *res) {
  ice__agentrun_t *r = data;
  const char *text, *tool, *msg;
  const ice__tooldef_t *def;
  json_t *j, *inputs;

  r->cur = NULL;
  if (r->cancelled || !res->ok) {
    finish_fail(r, res->ok ? ICE__KIND_CANCELLED : res->kind, res->retry_after,
                "%s", res->ok ? "agent cancelled" : res->msg);
    return;
  }
  r->iterations++;
  text = json_string_value(json_object_get(res->output, "text"));
  if (text == NULL)
    text = "";
  j = parse_step(text);
  ice__free(r->message);
  if (!json_is_object(j)) {
    /* Plain text is the final answer. */
    json_decref(j);
    r->message = ice__strdup(text);
    finish_ok(r);
    return;
  }
  msg = json_string_value(json_object_get(j, "message"));
  r->message = ice__strdup(msg != NULL ? msg : "");
  if (r->message == NULL ||
      (msg != NULL && msg[0] != '\0' &&
       json_array_append_new(r->reasoning, ice__json_lossy(msg, strlen(msg))) !=
           0)) {
    json_decref(j);
    finish_fail(r, ICE__KIND_INTERNAL, -1, "out of memory");
    return;
  }
  tool = json_string_value(json_object_get(j, "tool"));
  if (json_is_true(json_object_get(j, "done")) || tool == NULL ||
      tool[0] == '\0') {
    json_decref(j);
    finish_ok(r);
    return;
  }
  def = find_tool(r->a, tool);
  if (def == NULL) {
    finish_fail(r, ICE__KIND_NON_RETRYABLE, -1,
                "the agent chose tool '%s', which is not in its tools (%s)",
                tool, r->a->tool_list[0] != '\0' ? r->a->tool_list : "none");
    json_decref(j);
    return;
  }
  r->last_tool = ice__tooldef_name(def);
  inputs = json_object_get(j, "inputs");
  if (inputs == NULL || json_is_null(inputs))
    inputs = json_object();
  else if (!json_is_object(inputs))
    inputs = json_pack("{s:O}", "input", inputs);
  else
    json_incref(inputs);
  r->cur = inputs != NULL &&
                   json_array_append_new(
                       r->messages, json_pack("{s:s,s:s}", "role", "assistant",
                                              "content", text)) == 0
               ? ice__tool_call(r->parent, def, inputs, on_tool, r)
               : NULL;
  json_decref(inputs);
  json_decref(j);
  if (r->cur == NULL)
    finish_fail(r, ICE__KIND_INTERNAL, -1, "out of memory");
}

/* The system message: the agent's prompt, its tools, the answer format. */
static char *system_message(const ice__agent_t *a, const char *own) {
  char *s;

  if (asprintf(&s,
               "%s%sTools you may use: %s.\n"
               "Answer every step with strict JSON only, one object: "
               "{\"tool\": NAME or null, \"inputs\": {ARGUMENTS}, \"done\": "
               "true or false, \"message\": TEXT}. Name a tool to run it; "
               "its result comes back as {\"tool_result\": ...}. Set done "
               "to true, with your final answer in message, when you are "
               "finished.",
               own != NULL ? own : "", own != NULL ? "\n\n" : "",
               a->tool_list[0] != '\0' ? a->tool_list : "none") < 0)
    return NULL;
  return s;
}

int ice__agent_run(ice_task_t *parent, const ice__agent_t *a, const char *user,
                   long max_iterations, ice__call_cb cb, void *data,
                   ice__agentrun_t **out, ice__err_t *err) {
  ice__agentrun_t *r = ice__calloc(1, sizeof(*r));
  char *sys;

  *out = NULL;
  if (r == NULL)
    return ice__err_set(err, ICE__KIND_INTERNAL, 0, "out of memory");
  r->parent = parent;
  r->a = a;
  r->cb = cb;
  r->data = data;
  r->max_iterations = max_iterations;
  if (ice__llmspec_render(a->spec, parent, &r->cfg, err) != 0) {
    run_free(r);
    return -1;
  }
  sys = system_message(a, r->cfg.system != NULL ? r->cfg.system : a->system);
  r->messages = json_array();
  r->reasoning = json_array();
  if (sys == NULL || r->messages == NULL || r->reasoning == NULL ||
      json_array_append_new(r->messages, json_pack("{s:s,s:s}", "role",
                                                   "system", "content", sys)) !=
          0 ||
      json_array_append_new(r->messages, json_pack("{s:s,s:s}", "role", "user",
                                                   "content", user)) != 0) {
    free(sys);
    run_free(r);
    return ice__err_set(err, ICE__KIND_INTERNAL, 0, "out of memory");
  }
  free(sys);
  /* The system message above replaces the settings' own. */
  ice__free(r->cfg.system);
  r->cfg.system = NULL;
  if (max_iterations < 1) {
    run_free(r);
    return ice__err_set(err, ICE__KIND_INTERNAL, 0,
                        "max_iterations must be >= 1");
  }
  if (step(r) != 0) {
    run_free(r);
    return ice__err_set(err, ICE__KIND_INTERNAL, 0, "out of memory");
  }
  *out = r;
  return 0;
}

void ice__agent_cancel(ice__agentrun_t *r) {
  if (r == NULL || r->cancelled)
    return;
  r->cancelled = 1;
  ice__call_cancel(r->cur); /* its callback finishes the run */
}
