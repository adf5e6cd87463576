/* LLM requests (SPEC §6.1): the configuration of one request, resolved
 * from the node's fields, an agent package and the file's `llm` object;
 * the request itself as a call (call.h) that holds a slot of the `llm`
 * pool while in flight; the `openai` (Chat Completions) and `echo`
 * providers; usage, cost and the run's budgets. */
#ifndef ICE_LLM_H
#define ICE_LLM_H

#include "call.h"

/* One request's settings, rendered for an attempt. Strings owned. */
typedef struct {
  char *provider; /* "openai" or "echo" */
  char *model;
  char *base_url; /* without a trailing '/' */
  char *api_key_env;
  char *system; /* NULL: no system message */
  double temperature;
  long max_tokens; /* 0: not sent */
} ice__llmcfg_t;

/* The layers a request's settings come from, compiled at validation:
 * the node's `llm_config` wins, then the node's own `model`,
 * `temperature`, `max_tokens`, `provider` (and `system` given), then an
 * agent package's `llm_config`, then the file's `llm` object. */
typedef struct ice__llmspec_s ice__llmspec_t;

/* node_cfg: the node's `llm_config` (or NULL); node: the object holding
 * the node-level fields (or NULL); pkg: a package's `llm_config` (or
 * NULL). Reports template errors and an unknown literal provider at the
 * node. NULL on ENOMEM or error. */
ice__llmspec_t *ice__llmspec_compile(ice__vctx_t *v, const ice__node_t *n,
                                     json_t *node_cfg, json_t *node,
                                     json_t *pkg, const char *system);
void ice__llmspec_free(ice__llmspec_t *s);
/* Renders the layers for attempt t. 0, or -1 with err. */
int ice__llmspec_render(const ice__llmspec_t *s, ice_task_t *t,
                        ice__llmcfg_t *out, ice__err_t *err);
void ice__llmcfg_clear(ice__llmcfg_t *c);

/* Checks the file's `llm` object (defaults, `prices`, budgets). */
void ice__llm_defaults_check(ice__vctx_t *v, json_t *llm);

/* Sends messages (an array of {"role", "content"}; borrowed) as one
 * request of parent's node. response_format (borrowed, may be NULL) asks
 * for structured output. On success the call's output is {"text",
 * "model", "usage": {"prompt_tokens", "completion_tokens",
 * "total_tokens", "cost_usd"}}, and the usage is added to the node and
 * the run. Failures: kind transient (429, 5xx, a dropped connection:
 * retry_after set from Retry-After), llm_error (other answers),
 * non_retryable (a budget is spent), cancelled. NULL on ENOMEM. */
ice_task_t *ice__llm_call(ice_task_t *parent, const ice__llmcfg_t *cfg,
                          json_t *messages, json_t *response_format,
                          ice__call_cb cb, void *data);

/* A Chat Completions answer (a 2xx body of the `openai` provider). */
typedef struct {
  json_t *doc;        /* owned: the parsed body; holds the strings below */
  const char *text;   /* choices[0].message.content */
  const char *model;  /* NULL: the body names none */
  json_int_t in, out; /* usage.prompt_tokens, completion_tokens, as sent */
  double cost;        /* usage.cost, or -1 when absent or negative */
} ice__llm_answer_t;

/* Parses an answer's body: pure, no task or run (fuzz/fuzz_llm.c). 0, or
 * -1 with a->doc NULL and the reason in msg: the body is not JSON, or has
 * no choices[0].message.content string. */
int ice__llm_parse_answer(const char *body, size_t len, ice__llm_answer_t *a,
                          char *msg, size_t msglen);

#endif
