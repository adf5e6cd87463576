/* The `llm` node (SPEC §6.1): renders its prompt and settings, sends one
 * request (llm.c) and completes with the answer. Its output_schema
 * describes the model's answer, not the node's output: a schema other
 * than none, `{}` or iceOS's `{"text": "string"}` asks for structured
 * output, whose parsed value is checked here and kept as `data`. */
#include "../llm.h"

#include <string.h>

typedef struct {
  ice__llmspec_t *spec;
  ice__tmpl_t *prompt_tmpl;
  json_t *prompt; /* borrowed */
  /* Structured output: the compiled schema (taken from the node, so that
   * the scheduler does not check the output object against it) and its
   * response_format. */
  ice__schema_t *schema;
  json_t *response_format;
} llm_conf_t;

typedef struct {
  ice_task_t *call;
  json_t *prompt_text; /* the rendered prompt */
} llm_run_t;

static const ice_field_t llm_fields[] = {
    {"prompt", ICE_T_STRING, 1, 1},
    {"model", ICE_T_STRING, 0, 1},
    {"llm_config", ICE_T_OBJECT, 0, 1},
    {"temperature", ICE_T_NUMBER, 0, 0},
    {"max_tokens", ICE_T_INT, 0, 0},
    {"provider", ICE_T_STRING, 0, 1},
    {NULL, 0, 0, 0},
};

static void conf_free(void *p, void *data) {
  llm_conf_t *c = p;

  (void)data;
  if (c == NULL)
    return;
  ice__llmspec_free(c->spec);
  ice__tmpl_free(c->prompt_tmpl);
  ice__schema_free(c->schema);
  json_decref(c->response_format);
  ice__free(c);
}

/* 1 when the output_schema asks for a plain-text answer: none, {}, or a
 * simple form whose only field is `text` of a string type. */
static int plain_text(json_t *schema) {
  json_t *t;

  if (!json_is_object(schema) || json_object_size(schema) == 0)
    return 1;
  t = json_object_get(schema, "text");
  return json_object_size(schema) == 1 && json_is_string(t) &&
         (strcmp(json_string_value(t), "str") == 0 ||
          strcmp(json_string_value(t), "string") == 0);
}

static void *compile(ice_compile_t *cc) {
  ice__vctx_t *v = cc->v;
  ice__node_t *n = cc->node;
  json_t *schema = json_object_get(n->def, "output_schema");
  llm_conf_t *c = ice__calloc(1, sizeof(*c));
  ice__err_t err;

  if (c == NULL) {
    ice_compile_error(cc, NULL, "out of memory");
    return NULL;
  }
  c->prompt = json_object_get(n->def, "prompt");
  if (json_is_string(c->prompt) &&
      ice__tmpl_compile(c->prompt, &c->prompt_tmpl, &err) != 0)
    ice__verr_tmpl(v, n, n->def, "prompt", &err);
  c->spec = ice__llmspec_compile(v, n, json_object_get(n->def, "llm_config"),
                                 n->def, NULL, NULL);
  if (!plain_text(schema) && n->out_schema != NULL) {
    json_t *js = ice__schema_as_json_schema(schema);
    c->response_format = json_pack("{s:s,s:{s:s,s:o}}", "type", "json_schema",
                                   "json_schema", "name", n->id, "schema", js);
    c->schema = n->out_schema;
    n->out_schema = NULL;
  } else if (n->out_schema != NULL) {
    /* Plain text: nothing to check against the output object. */
    ice__schema_free(n->out_schema);
    n->out_schema = NULL;
  }
  return c;
}

static void on_answer(void *data, const ice__call_res_t *res) {
  ice_task_t *t = data;
  llm_run_t *lr = ice_task_data(t);
  const llm_conf_t *c = ice_task_compiled(t);
  json_t *text, *out, *parsed = NULL;
  json_error_t jerr;
  ice__err_t err;

  ice_task_set_data(t, NULL);
  if (!res->ok) {
    json_decref(lr->prompt_text);
    ice__free(lr);
    if (res->retry_after >= 0)
      ice__task_retry_after(t, res->retry_after);
    ice__task_fail_kind(t,
                        ice__task_stopping(t) ? ICE__KIND_CANCELLED : res->kind,
                        "%s", res->msg);
    return;
  }
  text = json_object_get(res->output, "text");
  if (c->schema != NULL) {
    const char *s = json_string_value(text);
    parsed = json_loads(s != NULL ? s : "", JSON_DECODE_ANY, &jerr);
    if (parsed == NULL) {
      json_decref(lr->prompt_text);
      ice__free(lr);
      ice__task_fail_kind(t, ICE__KIND_OUTPUT_VALIDATION,
                          "structured output: the answer is not JSON (%s)",
                          jerr.text);
      return;
    }
    if (ice__schema_check(c->schema, parsed, &err) != 0) {
      json_decref(parsed);
      json_decref(lr->prompt_text);
      ice__free(lr);
      ice__task_fail_kind(t, ICE__KIND_OUTPUT_VALIDATION,
                          "structured output: %s", err.msg);
      return;
    }
  }
  out = json_pack("{s:O,s:O,s:o,s:O,s:O}", "response", text, "text", text,
                  "prompt", lr->prompt_text, "model",
                  json_object_get(res->output, "model"), "usage",
                  json_object_get(res->output, "usage"));
  ice__free(lr);
  if (out != NULL && parsed != NULL &&
      json_object_set_new(out, "data", parsed) != 0) {
    json_decref(out);
    out = NULL;
  } else if (out == NULL) {
    json_decref(parsed);
  }
  if (out == NULL)
    ice__task_fail_kind(t, ICE__KIND_INTERNAL, "out of memory");
  else
    ice_task_done(t, out);
}

static void llm_start(ice_task_t *t) {
  const llm_conf_t *c = ice_task_compiled(t);
  const ice__node_t *n = ice__task_node(t);
  ice__llmcfg_t cfg;
  ice__err_t err;
  json_t *prompt, *msgs, *in;
  llm_run_t *lr;

  if (ice__tmpl_render_or_share(c->prompt_tmpl, c->prompt, ice__task_lookup, t,
                                &prompt, &err) != 0) {
    ice__task_fail_kind(t, err.kind == 0 ? ICE__KIND_TEMPLATE : err.kind,
                        "prompt: %s", err.msg);
    return;
  }
  if (!json_is_string(prompt)) {
    /* A prompt that is one template of a non-string value: its text. */
    char *s = ice_json_format(prompt, 0);
    json_decref(prompt);
    prompt = s != NULL ? json_string(s) : NULL;
    ice__free(s);
    if (prompt == NULL) {
      ice__task_fail_kind(t, ICE__KIND_INTERNAL, "out of memory");
      return;
    }
  }
  if (n->in_schema != NULL) {
    in = json_pack("{s:O}", "prompt", prompt);
    if (ice__schema_check(n->in_schema, in, &err) != 0) {
      json_decref(in);
      json_decref(prompt);
      ice__task_fail_kind(t, ICE__KIND_INPUT_VALIDATION, "%s", err.msg);
      return;
    }
    json_decref(in);
  }
  if (ice__llmspec_render(c->spec, t, &cfg, &err) != 0) {
    json_decref(prompt);
    ice__task_fail_kind(t, err.kind, "llm_config: %s", err.msg);
    return;
  }
  msgs = json_array();
  if (msgs != NULL &&
      ((cfg.system != NULL &&
        json_array_append_new(msgs, json_pack("{s:s,s:s}", "role", "system",
                                              "content", cfg.system)) != 0) ||
       json_array_append_new(msgs, json_pack("{s:s,s:O}", "role", "user",
                                             "content", prompt)) != 0)) {
    json_decref(msgs);
    msgs = NULL;
  }
  lr = ice__calloc(1, sizeof(*lr));
  if (lr == NULL || msgs == NULL) {
    ice__free(lr);
    json_decref(msgs);
    json_decref(prompt);
    ice__llmcfg_clear(&cfg);
    ice__task_fail_kind(t, ICE__KIND_INTERNAL, "out of memory");
    return;
  }
  lr->prompt_text = prompt;
  ice_task_set_data(t, lr);
  lr->call = ice__llm_call(t, &cfg, msgs, c->response_format, on_answer, t);
  json_decref(msgs);
  ice__llmcfg_clear(&cfg);
  if (lr->call == NULL) {
    ice_task_set_data(t, NULL);
    json_decref(prompt);
    ice__free(lr);
    ice__task_fail_kind(t, ICE__KIND_INTERNAL, "out of memory");
  }
}

static void llm_cancel(ice_task_t *t) {
  llm_run_t *lr = ice_task_data(t);

  if (lr != NULL)
    ice__call_cancel(lr->call); /* on_answer completes the task */
}

const ice_executor_t ice__exec_llm = {
    .abi = ICE_EXECUTOR_ABI,
    .type = "llm",
    .fields = llm_fields,
    .start = llm_start,
    .cancel = llm_cancel,
    .default_timeout = 30.0,
    .compile = compile,
    .free_compiled = conf_free,
};
