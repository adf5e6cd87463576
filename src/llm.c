/* LLM requests (llm.h). A request is a call (call.h) of the node that
 * makes it: it waits for a slot of the `llm` pool, checks the run's
 * budgets, and then either answers at once (`echo`) or POSTs to an
 * OpenAI-compatible Chat Completions endpoint on the engine's HTTP client
 * (httpc.c, libcurl's multi interface on the loop). The API key is read
 * from the environment when the request is sent and goes nowhere but the
 * Authorization header: never into an event, a record, a result or an
 * error message. */
#include "llm.h"

#include "core.h"
#include "httpc.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_BASE_URL "https://api.openai.com/v1"
/* The most of an error body quoted in a message. */
#define QUOTE_MAX 300

/* ---- settings ----------------------------------------------------------- */

static const char *const cfg_keys[] = {
    "provider",    "model",      "base_url", "api_key_env",
    "temperature", "max_tokens", "system",   NULL};

/* Keys of llm_config (and of the file's `llm`) that iceOS writes and ice
 * accepts without acting on them (SPEC §1.1). */
static const char *const ignored_keys[] = {"timeout", "max_retries",
                                           "custom_parameters", NULL};

struct ice__llmspec_s {
  json_t *layers[4]; /* lowest first: file llm, package, node, llm_config */
  ice__tmpl_t *tmpl[4];
  char *system; /* an agent's system prompt, or NULL */
};

void ice__llmspec_free(ice__llmspec_t *s) {
  if (s == NULL)
    return;
  for (int i = 0; i < 4; i++) {
    json_decref(s->layers[i]);
    ice__tmpl_free(s->tmpl[i]);
  }
  ice__free(s->system);
  ice__free(s);
}

/* The settings keys of obj, as one layer (new object; NULL on ENOMEM). */
static json_t *layer_of(json_t *obj) {
  json_t *out = json_object();

  if (out == NULL || !json_is_object(obj))
    return out;
  for (const char *const *k = cfg_keys; *k != NULL; k++) {
    json_t *x = json_object_get(obj, *k);
    if (x != NULL && !json_is_null(x) && json_object_set(out, *k, x) != 0) {
      json_decref(out);
      return NULL;
    }
  }
  return out;
}

static int known_provider(const char *p) {
  return strcmp(p, "openai") == 0 || strcmp(p, "echo") == 0;
}

/* Checks one object of settings: types, a literal provider. Other keys
 * are the caller's (the node's fields, the file's `llm` object). */
static void check_settings(ice__vctx_t *v, const ice__node_t *n, json_t *obj,
                           const char *where) {
  const char *k;
  json_t *x;

  if (!json_is_object(obj))
    return;
  json_object_foreach(obj, k, x) {
    if (!ice__in_list(k, cfg_keys))
      continue;
    if (json_is_null(x) ||
        (json_is_string(x) && strstr(json_string_value(x), "{{") != NULL))
      continue; /* absent, or decided per attempt */
    if ((strcmp(k, "temperature") == 0 && !json_is_number(x)) ||
        (strcmp(k, "max_tokens") == 0 &&
         (!json_is_integer(x) || json_integer_value(x) < 1)))
      ice__verr_value(v, n, obj, k, "%s.%s must be a %s", where, k,
                      strcmp(k, "temperature") == 0 ? "number"
                                                    : "positive integer");
    else if (strcmp(k, "temperature") != 0 && strcmp(k, "max_tokens") != 0 &&
             !json_is_string(x))
      ice__verr_value(v, n, obj, k, "%s.%s must be a string", where, k);
    else if (strcmp(k, "provider") == 0 &&
             !known_provider(json_string_value(x)))
      ice__verr_value(v, n, obj, k,
                      "%s.provider: unknown provider '%s' (known: openai, "
                      "echo)",
                      where, json_string_value(x));
  }
}

ice__llmspec_t *ice__llmspec_compile(ice__vctx_t *v, const ice__node_t *n,
                                     json_t *node_cfg, json_t *node,
                                     json_t *pkg, const char *system) {
  ice__llmspec_t *s = ice__calloc(1, sizeof(*s));
  json_t *file = json_object_get(v->wf->doc, "llm");
  ice__err_t err;

  if (s == NULL)
    goto nomem;
  check_settings(v, n, node_cfg, "llm_config");
  check_settings(v, n, pkg, "llm_config");
  s->layers[0] = layer_of(file);
  s->layers[1] = layer_of(pkg);
  s->layers[2] = layer_of(node);
  s->layers[3] = layer_of(node_cfg);
  if (system != NULL && (s->system = ice__strdup(system)) == NULL)
    goto nomem;
  for (int i = 0; i < 4; i++) {
    if (s->layers[i] == NULL)
      goto nomem;
    if (ice__tmpl_compile(s->layers[i], &s->tmpl[i], &err) != 0) {
      ice__verr_tmpl(v, n, node_cfg != NULL && i == 3 ? node_cfg : n->def, NULL,
                     &err);
      ice__llmspec_free(s);
      return NULL;
    }
  }
  return s;
nomem:
  ice__llmspec_free(s);
  ice__verr(v, n, n->def, NULL, "out of memory");
  return NULL;
}

void ice__llmcfg_clear(ice__llmcfg_t *c) {
  ice__free(c->provider);
  ice__free(c->model);
  ice__free(c->base_url);
  ice__free(c->api_key_env);
  ice__free(c->system);
  memset(c, 0, sizeof(*c));
}

static int take_str(json_t *m, const char *key, const char *dflt, char **out,
                    ice__err_t *err) {
  json_t *x = json_object_get(m, key);
  const char *s = dflt;

  if (x != NULL && !json_is_null(x)) {
    if (!json_is_string(x))
      return ice__err_set(err, ICE__KIND_LLM_ERROR, 0,
                          "llm_config.%s must be a string", key);
    s = json_string_value(x);
  }
  *out = NULL;
  if (s != NULL && (*out = ice__strdup(s)) == NULL)
    return ice__err_set(err, ICE__KIND_INTERNAL, 0, "out of memory");
  return 0;
}

int ice__llmspec_render(const ice__llmspec_t *s, ice_task_t *t,
                        ice__llmcfg_t *out, ice__err_t *err) {
  json_t *m = json_object(), *x;
  const char *env_base = getenv("OPENAI_BASE_URL");
  int rc = -1;

  memset(out, 0, sizeof(*out));
  if (m == NULL)
    return ice__err_set(err, ICE__KIND_INTERNAL, 0, "out of memory");
  for (int i = 0; i < 4; i++) {
    json_t *r;
    if (ice__tmpl_render_or_share(s->tmpl[i], s->layers[i], ice__task_lookup, t,
                                  &r, err) != 0) {
      if (err->kind == 0)
        err->kind = ICE__KIND_TEMPLATE;
      goto done;
    }
    rc = json_object_update(m, r);
    json_decref(r);
    if (rc != 0) {
      rc = ice__err_set(err, ICE__KIND_INTERNAL, 0, "out of memory");
      goto done;
    }
    rc = -1;
  }
  if (take_str(m, "provider", "openai", &out->provider, err) != 0 ||
      take_str(m, "model", NULL, &out->model, err) != 0 ||
      take_str(m, "base_url",
               env_base != NULL && env_base[0] != '\0' ? env_base
                                                       : DEFAULT_BASE_URL,
               &out->base_url, err) != 0 ||
      take_str(m, "api_key_env", "OPENAI_API_KEY", &out->api_key_env, err) !=
          0 ||
      take_str(m, "system", s->system, &out->system, err) != 0)
    goto done;
  if (!known_provider(out->provider)) {
    ice__err_set(err, ICE__KIND_LLM_ERROR, 0,
                 "unknown provider '%s' (known: openai, echo)", out->provider);
    goto done;
  }
  if (out->model == NULL && strcmp(out->provider, "echo") != 0) {
    ice__err_set(err, ICE__KIND_LLM_ERROR, 0,
                 "no model: set `model` or llm_config.model");
    goto done;
  }
  {
    size_t n = strlen(out->base_url);
    while (n > 0 && out->base_url[n - 1] == '/')
      out->base_url[--n] = '\0';
  }
  out->temperature = 0.7;
  if ((x = json_object_get(m, "temperature")) != NULL && !json_is_null(x)) {
    if (!json_is_number(x)) {
      ice__err_set(err, ICE__KIND_LLM_ERROR, 0, "temperature must be a number");
      goto done;
    }
    out->temperature = json_number_value(x);
  }
  if ((x = json_object_get(m, "max_tokens")) != NULL && !json_is_null(x)) {
    if (!json_is_integer(x) || json_integer_value(x) < 1) {
      ice__err_set(err, ICE__KIND_LLM_ERROR, 0,
                   "max_tokens must be a positive integer");
      goto done;
    }
    out->max_tokens = (long)json_integer_value(x);
  }
  rc = 0;
done:
  json_decref(m);
  if (rc != 0)
    ice__llmcfg_clear(out);
  return rc;
}

/* ---- the file's `llm` object --------------------------------------------- */

static const char *const budget_keys[] = {"max_tokens", "max_cost_usd",
                                          "max_llm_calls", NULL};

static void check_number(ice__vctx_t *v, json_t *obj, const char *k,
                         const char *where, int integer) {
  json_t *x = json_object_get(obj, k);

  if (x != NULL && (integer ? !json_is_integer(x) || json_integer_value(x) < 0
                            : !json_is_number(x) || json_number_value(x) < 0))
    ice__verr_value(v, NULL, obj, k, "%s%s must be %s", where, k,
                    integer ? "an integer >= 0" : "a number >= 0");
}

void ice__llm_defaults_check(ice__vctx_t *v, json_t *llm) {
  const char *k;
  json_t *x;

  if (!json_is_object(llm))
    return;
  check_settings(v, NULL, llm, "llm");
  json_object_foreach(llm, k, x) {
    if (ice__in_list(k, cfg_keys) || ice__in_list(k, ignored_keys) ||
        ice__is_x_key(k))
      continue;
    if (strcmp(k, "max_cost_usd") == 0 || strcmp(k, "max_total_tokens") == 0 ||
        strcmp(k, "max_llm_calls") == 0) {
      check_number(v, llm, k, "llm.", strcmp(k, "max_cost_usd") != 0);
    } else if (strcmp(k, "budget") == 0) {
      const char *bk;
      json_t *bx;
      if (!json_is_object(x)) {
        ice__verr_value(v, NULL, llm, k, "llm.budget must be an object");
        continue;
      }
      json_object_foreach(x, bk, bx) {
        if (!ice__in_list(bk, budget_keys))
          ice__verr(v, NULL, x, bk,
                    "llm.budget: unknown field '%s' (known: max_tokens, "
                    "max_cost_usd, max_llm_calls)",
                    bk);
        else
          check_number(v, x, bk, "llm.budget.",
                       strcmp(bk, "max_cost_usd") != 0);
      }
    } else if (strcmp(k, "prices") == 0) {
      const char *mk;
      json_t *mx;
      if (!json_is_object(x)) {
        ice__verr_value(v, NULL, llm, k, "llm.prices must be an object");
        continue;
      }
      json_object_foreach(x, mk, mx) {
        if (!json_is_object(mx)) {
          ice__verr_value(v, NULL, x, mk,
                          "llm.prices.%s must be an object {\"prompt\", "
                          "\"completion\"} (USD per million tokens)",
                          mk);
          continue;
        }
        const char *pk;
        json_t *px;
        json_object_foreach(mx, pk, px) {
          if (strcmp(pk, "prompt") != 0 && strcmp(pk, "completion") != 0)
            ice__verr(v, NULL, mx, pk,
                      "llm.prices.%s: unknown field '%s' (known: prompt, "
                      "completion)",
                      mk, pk);
          else
            check_number(v, mx, pk, "llm.prices.", 0);
        }
      }
    } else {
      ice__verr(v, NULL, llm, k, "llm: unknown field '%s'", k);
    }
  }
}

/* A budget of the run's file (SPEC: `llm.max_cost_usd`, `max_llm_calls`,
 * `max_total_tokens`, or the same in `llm.budget` with `max_tokens`):
 * < 0 when none. */
static double budget_of(const ice_run_t *r, const char *key, const char *flat) {
  json_t *llm = json_object_get(r->wf->doc, "llm");
  json_t *x = json_object_get(json_object_get(llm, "budget"), key);

  if (x == NULL)
    x = json_object_get(llm, flat);
  return json_is_number(x) ? json_number_value(x) : -1;
}

/* 0, or -1 with a message naming the budget that is spent. */
static int budget_check(const ice_run_t *r, char *msg, size_t len) {
  double calls = budget_of(r, "max_llm_calls", "max_llm_calls");
  double tokens = budget_of(r, "max_tokens", "max_total_tokens");
  double cost = budget_of(r, "max_cost_usd", "max_cost_usd");

  if (calls >= 0 && (double)r->llm_calls >= calls) {
    snprintf(msg, len,
             "budget: max_llm_calls (%.0f) reached; no further LLM call is "
             "made in this run",
             calls);
    return -1;
  }
  if (tokens >= 0 && (double)r->tokens >= tokens) {
    snprintf(msg, len,
             "budget: max_tokens (%.0f) reached (%lld tokens used); no "
             "further LLM call is made in this run",
             tokens, (long long)r->tokens);
    return -1;
  }
  if (cost >= 0 && r->cost_usd >= cost) {
    snprintf(msg, len,
             "budget: max_cost_usd (%g) reached (%g USD spent); no further "
             "LLM call is made in this run",
             cost, r->cost_usd);
    return -1;
  }
  return 0;
}

/* USD for the usage, from the file's price table (USD per million
 * tokens, by model, `*` for any), or 0. */
static double price(const ice_run_t *r, const char *model, json_int_t in,
                    json_int_t out) {
  json_t *prices =
      json_object_get(json_object_get(r->wf->doc, "llm"), "prices");
  json_t *p = model != NULL ? json_object_get(prices, model) : NULL;

  if (p == NULL)
    p = json_object_get(prices, "*");
  if (!json_is_object(p))
    return 0;
  return ((double)in * json_number_value(json_object_get(p, "prompt")) +
          (double)out * json_number_value(json_object_get(p, "completion"))) /
         1e6;
}

/* ---- one request -----------------------------------------------------------
 */

typedef struct {
  ice_task_t *sub;
  ice__llmcfg_t cfg; /* a copy: the caller's may go before the answer */
  json_t *messages;
  json_t *response_format;
  ice__hreq_t *http;
} req_t;

static void req_free(req_t *q) {
  ice__llmcfg_clear(&q->cfg);
  json_decref(q->messages);
  json_decref(q->response_format);
  ice__free(q);
}

static json_int_t words(const char *s) {
  json_int_t n = 0;
  int in = 0;

  for (; s != NULL && *s != '\0'; s++) {
    if (isspace((unsigned char)*s))
      in = 0;
    else if (!in) {
      in = 1;
      n++;
    }
  }
  return n;
}

/* Completes the call with the answer and reports its usage. */
static void answer(req_t *q, const char *text, const char *model, json_int_t in,
                   json_int_t out, double cost) {
  ice_task_t *t = q->sub;
  json_t *o;

  o = json_pack("{s:s,s:s,s:{s:I,s:I,s:I,s:f}}", "text", text, "model",
                model != NULL ? model : "", "usage", "prompt_tokens", in,
                "completion_tokens", out, "total_tokens", in + out, "cost_usd",
                cost);
  if (o == NULL) {
    /* Not UTF-8 (jansson refuses it): keep the answer, whatever its
     * bytes. */
    o = json_pack("{s:o,s:s,s:{s:I,s:I,s:I,s:f}}", "text",
                  ice__json_lossy(text, strlen(text)), "model",
                  model != NULL ? model : "", "usage", "prompt_tokens", in,
                  "completion_tokens", out, "total_tokens", in + out,
                  "cost_usd", cost);
  }
  if (o == NULL) {
    ice__task_fail_kind(t, ICE__KIND_INTERNAL, "out of memory");
    return;
  }
  ice_task_usage(t, (long long)(in + out), cost);
  ice_task_done(t, o);
}

static void echo_answer(req_t *q) {
  json_int_t in = 0;
  const char *last = "";
  size_t i;
  json_t *m;

  json_array_foreach(q->messages, i, m) {
    const char *c = json_string_value(json_object_get(m, "content"));
    in += words(c);
    if (c != NULL &&
        strcmp(json_string_value(json_object_get(m, "role")), "user") == 0)
      last = c;
  }
  answer(q, last, q->cfg.model != NULL ? q->cfg.model : "echo", in, words(last),
         price(q->sub->run, q->cfg.model, in, words(last)));
}

/* The error message of an error body ({"error": {"message"}}, as OpenAI
 * sends), else the start of the body, cut and made valid UTF-8. */
static char *quote_error(const char *body, size_t len) {
  json_t *j = json_loadb(body, len, 0, NULL);
  const char *m = json_string_value(
      json_object_get(json_object_get(j, "error"), "message"));
  char *out;

  if (m == NULL)
    m = json_string_value(json_object_get(j, "error"));
  if (m != NULL) {
    out = ice__utf8_dup(m, strlen(m) < QUOTE_MAX ? strlen(m) : QUOTE_MAX);
  } else {
    size_t n = len < QUOTE_MAX ? len : QUOTE_MAX;
    out = ice__utf8_dup(body, n);
  }
  json_decref(j);
  return out;
}

int ice__llm_parse_answer(const char *body, size_t len, ice__llm_answer_t *a,
                          char *msg, size_t msglen) {
  json_t *choice, *content, *usage, *c;
  json_error_t jerr;

  memset(a, 0, sizeof(*a));
  a->doc = json_loadb(body, len, 0, &jerr);
  choice = json_array_get(json_object_get(a->doc, "choices"), 0);
  content = json_object_get(json_object_get(choice, "message"), "content");
  usage = json_object_get(a->doc, "usage");
  if (a->doc == NULL) {
    snprintf(msg, msglen, "LLM response is not JSON (%s at line %d)", jerr.text,
             jerr.line);
    return -1;
  }
  if (!json_is_string(content)) {
    snprintf(msg, msglen,
             "LLM response has no choices[0].message.content string");
    json_decref(a->doc);
    a->doc = NULL;
    return -1;
  }
  a->text = json_string_value(content);
  a->model = json_string_value(json_object_get(a->doc, "model"));
  a->in = json_integer_value(json_object_get(usage, "prompt_tokens"));
  a->out = json_integer_value(json_object_get(usage, "completion_tokens"));
  c = json_object_get(usage, "cost");
  a->cost = json_is_number(c) && json_number_value(c) >= 0
                ? json_number_value(c)
                : -1;
  return 0;
}

static void on_http(void *data, const ice__hresp_t *r) {
  req_t *q = data;
  ice_task_t *t = q->sub;
  ice__llm_answer_t a;
  char msg[256];

  q->http = NULL;
  if (r->err != NULL) {
    if (ice__task_stopping(t))
      ice__task_fail_kind(t, ICE__KIND_CANCELLED, "LLM request cancelled");
    else if (r->timed_out)
      ice__task_fail_kind(t, ICE__KIND_TIMEOUT, "LLM request: %s", r->err);
    else
      ice__task_fail_kind(t, ICE__KIND_TRANSIENT, "LLM request to %s: %s",
                          q->cfg.base_url, r->err);
    req_free(q);
    return;
  }
  if (r->status < 200 || r->status > 299) {
    char *why = quote_error(r->body, r->len);
    int transient = r->status == 429 || r->status >= 500;
    if (transient && r->retry_after >= 0)
      ice__task_retry_after(t, r->retry_after);
    ice__task_fail_kind(
        t, transient ? ICE__KIND_TRANSIENT : ICE__KIND_LLM_ERROR,
        "LLM request: HTTP %ld%s%s", r->status, why != NULL && *why ? ": " : "",
        why != NULL ? why : "");
    ice__free(why);
    req_free(q);
    return;
  }
  if (ice__llm_parse_answer(r->body, r->len, &a, msg, sizeof(msg)) != 0) {
    ice__task_fail_kind(t, ICE__KIND_LLM_ERROR, "%s", msg);
  } else {
    const char *model = a.model != NULL ? a.model : q->cfg.model;
    double cost = a.cost >= 0 ? a.cost : price(t->run, model, a.in, a.out);
    answer(q, a.text, model, a.in < 0 ? 0 : a.in, a.out < 0 ? 0 : a.out, cost);
  }
  json_decref(a.doc);
  req_free(q);
}

static void send_openai(req_t *q) {
  ice_task_t *t = q->sub;
  const char *key = getenv(q->cfg.api_key_env);
  char *url = NULL, *auth = NULL, *body;
  const char *headers[3];
  json_t *b;
  int rc;
  long timeout_ms =
      t->node->opt->timeout > 0 ? (long)(t->node->opt->timeout * 1000) : 0;

  if (key == NULL || key[0] == '\0') {
    ice__task_fail_kind(t, ICE__KIND_LLM_ERROR,
                        "no API key: the environment variable %s is not set",
                        q->cfg.api_key_env);
    req_free(q);
    return;
  }
  b = json_pack("{s:s,s:O,s:f}", "model", q->cfg.model, "messages", q->messages,
                "temperature", q->cfg.temperature);
  if (b != NULL &&
      ((q->cfg.max_tokens > 0 &&
        json_object_set_new(b, "max_tokens", json_integer(q->cfg.max_tokens)) !=
            0) ||
       (q->response_format != NULL &&
        json_object_set(b, "response_format", q->response_format) != 0))) {
    json_decref(b);
    b = NULL;
  }
  body = b != NULL ? ice_json_format(b, 0) : NULL;
  json_decref(b);
  if (body == NULL ||
      asprintf(&url, "%s/chat/completions", q->cfg.base_url) < 0 ||
      asprintf(&auth, "Authorization: Bearer %s", key) < 0) {
    ice__free(body);
    ice__task_fail_kind(t, ICE__KIND_INTERNAL, "out of memory");
    req_free(q);
    return;
  }
  headers[0] = auth;
  headers[1] = "Content-Type: application/json";
  headers[2] = NULL;
  rc = ice__hreq_post(t->run->engine, url, headers, body, strlen(body),
                      timeout_ms, 0, on_http, q, &q->http);
  /* The key lives no longer than it must. */
  memset(auth, 0, strlen(auth));
  free(auth);
  free(url);
  ice__free(body);
  if (rc != 0 && ice__httpc_missing() != NULL) {
    /* No libcurl on this machine: retrying will not bring it. */
    ice__task_fail_kind(t, ICE__KIND_NON_RETRYABLE,
                        "cannot send the LLM request to %s: %s",
                        q->cfg.base_url, ice__httpc_missing());
    req_free(q);
  } else if (rc != 0) {
    ice__task_fail_kind(t, ICE__KIND_LLM_ERROR,
                        "cannot send the LLM request to %s (error %d)",
                        q->cfg.base_url, rc);
    req_free(q);
  }
}

static void req_start(ice_task_t *sub, void *arg) {
  req_t *q = arg;
  char msg[256];

  q->sub = sub;
  if (budget_check(sub->run, msg, sizeof(msg)) != 0) {
    ice__task_fail_kind(sub, ICE__KIND_NON_RETRYABLE, "%s", msg);
    req_free(q);
    return;
  }
  sub->run->llm_calls++;
  if (strcmp(q->cfg.provider, "echo") == 0) {
    echo_answer(q);
    req_free(q);
    return;
  }
  send_openai(q);
}

static void req_cancel(ice_task_t *sub, void *arg) {
  req_t *q = arg;

  (void)sub;
  if (q->http != NULL)
    ice__hreq_abort(q->http); /* on_http reports it */
}

static void req_drop(void *arg) {
  req_free(arg);
}

static const ice__call_ops_t req_ops = {req_start, req_cancel, req_drop};

static char *dup_or_null(const char *s, int *bad) {
  char *d = s != NULL ? ice__strdup(s) : NULL;

  if (s != NULL && d == NULL)
    *bad = 1;
  return d;
}

ice_task_t *ice__llm_call(ice_task_t *parent, const ice__llmcfg_t *cfg,
                          json_t *messages, json_t *response_format,
                          ice__call_cb cb, void *data) {
  req_t *q = ice__calloc(1, sizeof(*q));
  ice_task_t *sub;
  int bad = 0;

  if (q == NULL)
    return NULL;
  q->cfg.provider = dup_or_null(cfg->provider, &bad);
  q->cfg.model = dup_or_null(cfg->model, &bad);
  q->cfg.base_url = dup_or_null(cfg->base_url, &bad);
  q->cfg.api_key_env = dup_or_null(cfg->api_key_env, &bad);
  q->cfg.system = dup_or_null(cfg->system, &bad);
  q->cfg.temperature = cfg->temperature;
  q->cfg.max_tokens = cfg->max_tokens;
  q->messages = json_incref(messages);
  q->response_format = json_incref(response_format);
  if (bad) {
    req_free(q);
    return NULL;
  }
  /* Every request holds a slot of the `llm` pool (index 0) while in
   * flight, unless its node's own pool is `llm`: then the node's slot is
   * the request's (SPEC §4.2). */
  sub = ice__call_start(parent, parent->pool1 == 1 ? 0 : 1, &req_ops, q, cb,
                        data);
  if (sub == NULL)
    req_free(q);
  return sub;
}
