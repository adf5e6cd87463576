/* The `monitor` node (SPEC §8.2): background work that evaluates an
 * expression over the run's live metrics at once and then every interval,
 * on a uv timer, until it triggers or every other node of its list is
 * terminal. A trigger acts once (alerts, pause or abort) and ends it. */
#include "../expr.h"
#include "../http.h"
#include "flow.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { ACT_ALERT, ACT_PAUSE, ACT_ABORT };

static const char *const channel_names[] = {"log",   "webhook", "email",
                                            "slack", "sms",     "dashboard"};
enum { CH_WEBHOOK = 1, NCHANNELS = 6 };

/* A webhook gives up after this long: the alert must not hold the run. */
#define WEBHOOK_TIMEOUT_MS 10000L

typedef struct {
  ice__expr_t *expr;
  int action;
  int channels[NCHANNELS]; /* indexes into channel_names, in file order */
  int nchannels;
  uint64_t interval_ms;
  const char *webhook_url; /* borrowed from the node's config */
} mon_conf_t;

typedef struct {
  uv_timer_t timer;
  ice_task_t *task; /* NULL once completed */
  json_t *metrics;  /* the last check's, for the expression's lookup */
  json_t *capture;  /* the webhook event, as subscribers saw it */
  ice__http_t *http;
  char *webhook_error;
  int stop; /* ICE_STOP_* asked while the webhook was in flight */
  int triggered;
  json_int_t checks;
  json_int_t alerts;
  const char *action_taken;
} mon_state_t;

static const ice_field_t fields[] = {
    {"metric_expression", ICE_T_STRING, 1, 0},
    {"action_on_trigger", ICE_T_STRING, 0, 0},
    {"alert_channels", ICE_T_ARRAY, 0, 0},
    {"check_interval_seconds", ICE_T_NUMBER, 0, 0},
    {"webhook_url", ICE_T_STRING, 0, 0},
    {NULL, 0, 0, 0},
};

static void conf_free(void *p, void *data) {
  (void)data;
  mon_conf_t *c = p;

  ice__expr_free(c->expr);
  ice__free(c);
}

static int channel_index(const char *name) {
  for (int i = 0; i < NCHANNELS; i++) {
    if (strcmp(name, channel_names[i]) == 0)
      return i;
  }
  return -1;
}

static void compile_channels(ice__vctx_t *v, ice__node_t *n, mon_conf_t *c) {
  json_t *list = json_object_get(n->def, "alert_channels"), *x;
  unsigned seen = 0;
  size_t i;

  if (!json_is_array(list)) {
    c->channels[c->nchannels++] = 0; /* ["log"] */
    return;
  }
  if (json_array_size(list) == 0)
    ice__verr(v, n, n->def, "alert_channels",
              "'alert_channels' must hold at least one channel");
  json_array_foreach(list, i, x) {
    int ch = json_is_string(x) ? channel_index(json_string_value(x)) : -1;
    if (ch < 0) {
      char h[96];
      if (!json_is_string(x)) {
        ice__verr_item(v, n, list, i, "alert channel must be a string");
        continue;
      }
      ice__verr_item(
          v, n, list, i,
          "alert channel '%s' is not one of log, webhook, email, slack, sms, "
          "dashboard%s",
          json_string_value(x),
          ice__hint(h, sizeof(h), json_string_value(x), channel_names,
                    NCHANNELS));
      continue;
    }
    /* Each channel alerts once, however often it is listed. */
    if (!(seen & (1u << ch)))
      c->channels[c->nchannels++] = ch;
    seen |= 1u << ch;
  }
}

static void *compile(ice_compile_t *cc) {
  ice__vctx_t *v = cc->v;
  ice__node_t *n = cc->node;
  mon_conf_t *c = ice__calloc(1, sizeof(*c));
  const char *act =
      json_string_value(json_object_get(n->def, "action_on_trigger"));
  json_t *iv = json_object_get(n->def, "check_interval_seconds");
  int webhook = 0;

  if (c == NULL) {
    ice_compile_error(cc, NULL, "out of memory");
    return NULL;
  }
  n->xdata = c;
  c->expr = ice__field_expr(v, n, "metric_expression");
  c->action = ACT_ALERT;
  if (act != NULL) {
    if (strcmp(act, "pause") == 0)
      c->action = ACT_PAUSE;
    else if (strcmp(act, "abort") == 0)
      c->action = ACT_ABORT;
    else if (strcmp(act, "alert_only") != 0)
      ice__verr(v, n, n->def, "action_on_trigger",
                "action_on_trigger '%s' is not one of alert_only, pause, "
                "abort",
                act);
  }
  compile_channels(v, n, c);
  c->interval_ms = 5000;
  if (json_is_number(iv)) {
    double s = json_number_value(iv);
    /* A week at most: longer is surely a mistake, and the ms fit. */
    if (!(s > 0) || s > 604800)
      ice__verr(v, n, n->def, "check_interval_seconds",
                "check_interval_seconds must be a number > 0 and at most "
                "604800");
    else
      c->interval_ms = s * 1000 < 1 ? 1 : (uint64_t)(s * 1000 + 0.5);
  }
  for (int i = 0; i < c->nchannels; i++)
    webhook |= c->channels[i] == CH_WEBHOOK;
  c->webhook_url = json_string_value(json_object_get(n->def, "webhook_url"));
  if (c->webhook_url != NULL && !ice__http_url_ok(c->webhook_url))
    ice__verr(v, n, n->def, "webhook_url",
              "webhook_url '%s' is not an http:// or https:// URL",
              c->webhook_url);
  else if (webhook && c->webhook_url == NULL)
    ice__verr(v, n, n->def, "alert_channels",
              "'webhook_url' is required when alert_channels holds "
              "'webhook'");
  return c;
}

/* ---- an attempt ---------------------------------------------------------- */

/* The expression's names: the metrics, as `metrics` and bare, then the
 * node's context. */
static json_t *lookup(void *data, const char *name, size_t len) {
  mon_state_t *st = data;
  json_t *v;

  if (len == 7 && memcmp(name, "metrics", 7) == 0)
    return st->metrics;
  if ((v = json_object_getn(st->metrics, name, len)) != NULL)
    return v;
  return ice__task_lookup(st->task, name, len);
}

static json_t *output(const mon_state_t *st, const ice_task_t *t) {
  json_t *out = json_pack(
      "{s:s,s:b,s:I,s:I,s:o,s:I}", "metric_evaluated",
      json_string_value(
          json_object_get(ice_task_config(t), "metric_expression")),
      "triggered", st->triggered, "triggers_fired",
      (json_int_t)(st->triggered ? 1 : 0), "checks_performed", st->checks,
      "action_taken",
      st->action_taken != NULL ? json_string(st->action_taken) : json_null(),
      "alerts_sent", st->alerts);

  if (out != NULL && st->webhook_error != NULL &&
      json_object_set_new(out, "webhook_error",
                          json_string(st->webhook_error)) != 0) {
    json_decref(out);
    return NULL;
  }
  return out;
}

static void state_closed(uv_handle_t *h) {
  mon_state_t *st = h->data;

  json_decref(st->metrics);
  json_decref(st->capture);
  ice__free(st->webhook_error);
  ice__free(st);
}

/* Ends the attempt: completes it with the output (ok) or as cancelled,
 * and lets the timer's close free the state. */
static void finish(mon_state_t *st, int ok) {
  ice_task_t *t = st->task;

  st->task = NULL;
  ice_task_set_data(t, NULL);
  if (ok)
    ice_task_done(t, output(st, t));
  else
    ice_task_fail(t, "cancelled", "monitor cancelled");
  uv_timer_stop(&st->timer);
  uv_close((uv_handle_t *)&st->timer, state_closed);
}

static void webhook_done(void *data, long status, const char *err) {
  mon_state_t *st = data;

  (void)status;
  st->http = NULL;
  if (err == NULL)
    st->alerts++;
  else if (st->webhook_error == NULL)
    st->webhook_error = ice__strdup(err);
  finish(st, st->stop == ICE_STOP_NONE || st->stop == ICE_STOP_FINISH);
}

/* Keeps the webhook's event as the bus delivers it (seq, ts, run_id...). */
static void capture_cb(json_t *ev, void *data) {
  mon_state_t *st = data;
  const char *ch = json_string_value(json_object_get(ev, "channel"));

  if (st->capture == NULL && ch != NULL && strcmp(ch, "webhook") == 0)
    st->capture = json_incref(ev);
}

/* Emits monitor.alert once per channel; POSTs the webhook's. Returns 1
 * when a POST is in flight (the attempt completes when it ends). */
static int alert(mon_state_t *st, const mon_conf_t *c) {
  ice_task_t *t = st->task;
  ice_engine_t *e = ice_task_engine(t);
  const char *src = ice__expr_source(c->expr);
  int posting = 0;

  for (int i = 0; i < c->nchannels; i++) {
    int ch = c->channels[i];
    ice_sub_t *sub = NULL;
    json_t *ev = NULL;

    if (ch == CH_WEBHOOK)
      ice_subscribe(e, "monitor.alert", capture_cb, st, &sub);
    if (ice__task_wants(t, ICE__EV_MONITOR_ALERT))
      ev = json_pack("{s:s,s:s,s:O}", "channel", channel_names[ch],
                     "metric_expression", src, "metrics", st->metrics);
    ice__task_emit(t, ICE__EV_MONITOR_ALERT, ev);
    if (sub != NULL)
      ice_unsubscribe(e, sub);
    if (ch != CH_WEBHOOK) {
      st->alerts++; /* the event is the alert */
      continue;
    }
    {
      char *body = st->capture != NULL ? ice_json_format(st->capture, 0) : NULL;
      int rc = body == NULL ? UV_ENOMEM
                            : ice__http_post(ice_task_loop(t), c->webhook_url,
                                             "application/json", body,
                                             strlen(body), WEBHOOK_TIMEOUT_MS,
                                             webhook_done, st, &st->http);
      free(body);
      if (rc != 0) {
        char msg[128];
        snprintf(msg, sizeof(msg), "webhook not sent: %s", uv_strerror(rc));
        st->webhook_error = ice__strdup(msg);
      } else {
        posting = 1;
      }
    }
  }
  return posting;
}

static void tick(uv_timer_t *h);

/* One check. Acts on a trigger; else arms the next check. */
static void check(mon_state_t *st) {
  ice_task_t *t = st->task;
  const mon_conf_t *c = ice_task_compiled(t);
  ice__err_t err;
  json_t *v;
  int hit;

  json_decref(st->metrics);
  st->metrics = ice__task_metrics(t);
  st->checks++;
  if (st->metrics == NULL ||
      ice__expr_eval(c->expr, lookup, st, &v, &err) != 0) {
    st->task = NULL;
    ice_task_set_data(t, NULL);
    if (st->metrics == NULL)
      ice__task_fail_kind(t, ICE__KIND_INTERNAL, "out of memory");
    else
      ice__task_fail_kind(t, ICE__KIND_EXPRESSION, "metric_expression: %s",
                          err.msg);
    uv_close((uv_handle_t *)&st->timer, state_closed);
    return;
  }
  hit = ice__json_truthy(v);
  json_decref(v);
  if (!hit) {
    /* At least 1 ms: under a virtual clock the delay is 0, and a 0 ms
     * timer re-armed from its own callback would fire again in the same
     * pass of the loop, starving everything else. */
    uint64_t ms = ice_engine_delay(ice_task_engine(t), c->interval_ms);
    uv_timer_start(&st->timer, tick, ms > 0 ? ms : 1, 0);
    return;
  }
  st->triggered = 1;
  switch (c->action) {
  case ACT_PAUSE:
    st->action_taken = "pause";
    ice__task_pause_run(t); /* the monitor is among the nodes that finish */
    finish(st, 1);
    break;
  case ACT_ABORT:
    /* Completed first, so the abort does not cancel the monitor itself.
     * The task stays valid until the scheduler drains its completion. */
    st->action_taken = "abort";
    finish(st, 1);
    ice__task_abort_run(t);
    break;
  default:
    st->action_taken = "alert";
    if (!alert(st, c))
      finish(st, 1);
  }
}

static void tick(uv_timer_t *h) {
  mon_state_t *st = h->data;

  if (st->task != NULL && st->http == NULL)
    check(st);
}

static void mon_start(ice_task_t *t) {
  mon_state_t *st = ice__calloc(1, sizeof(*st));

  if (st == NULL || uv_timer_init(ice_task_loop(t), &st->timer) != 0) {
    ice__free(st);
    ice__task_fail_kind(t, ICE__KIND_INTERNAL, "out of memory");
    return;
  }
  st->task = t;
  st->timer.data = st;
  ice_task_set_data(t, st);
  check(st);
  /* After the first check, so that there is always one: this may finish
   * the monitor at once when nothing else is left to watch. */
  if (st->task != NULL && st->http == NULL)
    ice_task_set_background(t);
}

static void mon_cancel(ice_task_t *t) {
  mon_state_t *st = ice_task_data(t);
  int why = ice_task_stop_reason(t);

  if (st == NULL)
    return;
  if (st->http != NULL) {
    /* The attempt completes when the POST ends: at once after an abort. */
    st->stop = why;
    if (why != ICE_STOP_FINISH)
      ice__http_abort(st->http);
    return;
  }
  finish(st, why == ICE_STOP_FINISH);
}

const ice_executor_t ice__exec_monitor = {
    .abi = ICE_EXECUTOR_ABI,
    .type = "monitor",
    .fields = fields,
    .start = mon_start,
    .cancel = mon_cancel,
    .compile = compile,
    .free_compiled = conf_free,
};
