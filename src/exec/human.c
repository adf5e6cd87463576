/* The `human` node (SPEC §8.1): asks a person and waits. An answer given
 * ahead (ice_run_opts_t.answers) completes it at once; otherwise it emits
 * `human.requested` and parks (ice_task_wait), saving when it asked, so
 * that auto_approve_after and timeout_seconds count from the first request
 * across restarts. Its own timer completes it when one of those falls due;
 * a run that stops as waiting is restored with the answer to complete it. */
#include "../control.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

extern const ice_executor_t ice__exec_human;

typedef enum { HUM_APPROVE_REJECT, HUM_INPUT, HUM_CHOICE } hum_type_t;

static const char *const type_names[] = {"approve_reject", "input_required",
                                         "choice"};

typedef struct {
  hum_type_t type;
  ice__tmpl_t *prompt;    /* NULL: prompt_message holds no template */
  json_t *choices;        /* borrowed from the node; choice only */
  const char *escalation; /* borrowed; NULL = none */
  double auto_s;          /* auto_approve_after; < 0 = none */
  double timeout_s;       /* timeout_seconds; 0 = none */
} hum_conf_t;

static const ice_field_t fields[] = {
    {"prompt_message", ICE_T_STRING, 1, 1},
    {"approval_type", ICE_T_STRING, 0, 0},
    {"choices", ICE_T_ARRAY, 0, 0},
    {"auto_approve_after", ICE_T_NUMBER, 0, 0},
    {"escalation_path", ICE_T_STRING, 0, 0},
    {NULL, 0, 0, 0},
};

static void conf_free(void *p, void *data) {
  hum_conf_t *c = p;

  (void)data;
  ice__tmpl_free(c->prompt);
  ice__free(c);
}

/* Checks the fields the table cannot (wrong types were reported already:
 * they are skipped here). Returns the number of problems reported. */
static int check(ice_compile_t *cc, json_t *def, hum_conf_t *c) {
  json_t *at = json_object_get(def, "approval_type");
  json_t *ch = json_object_get(def, "choices");
  json_t *aa = json_object_get(def, "auto_approve_after");
  json_t *to = json_object_get(def, "timeout_seconds");
  json_t *v;
  size_t i;
  int bad = 0;

  c->type = HUM_APPROVE_REJECT;
  if (json_is_string(at)) {
    size_t k;
    for (k = 0; k < ICE__ARRAY_SIZE(type_names); k++) {
      if (strcmp(json_string_value(at), type_names[k]) == 0)
        break;
    }
    if (k == ICE__ARRAY_SIZE(type_names)) {
      ice_compile_error(cc, "approval_type",
                        "approval_type must be approve_reject, "
                        "input_required or choice, not '%s'",
                        json_string_value(at));
      bad++;
    } else {
      c->type = (hum_type_t)k;
    }
  }
  if (c->type == HUM_CHOICE && ch == NULL) {
    ice_compile_error(cc, "approval_type",
                      "approval_type choice needs 'choices' (at least two)");
    bad++;
  } else if (c->type == HUM_CHOICE && json_is_array(ch)) {
    json_array_foreach(ch, i, v) {
      if (!json_is_string(v)) {
        ice_compile_error(cc, "choices", "choices must be strings (item %zu)",
                          i);
        bad++;
        break;
      }
    }
    if (json_array_size(ch) < 2) {
      ice_compile_error(cc, "choices",
                        "approval_type choice needs at least two choices");
      bad++;
    }
    c->choices = ch;
  }
  c->timeout_s = json_is_number(to) ? json_number_value(to) : 0;
  c->auto_s = -1;
  if (json_is_number(aa)) {
    double a = json_number_value(aa);
    if (a < 0) {
      ice_compile_error(cc, "auto_approve_after",
                        "auto_approve_after must be a number >= 0");
      bad++;
    } else if (to == NULL) {
      ice_compile_error(cc, "auto_approve_after",
                        "auto_approve_after needs timeout_seconds");
      bad++;
    } else if (json_is_number(to) && a >= c->timeout_s) {
      ice_compile_error(cc, "auto_approve_after",
                        "auto_approve_after (%g) must be smaller than "
                        "timeout_seconds (%g)",
                        a, c->timeout_s);
      bad++;
    }
    c->auto_s = a;
  }
  c->escalation =
      json_string_value(json_object_get(def, "escalation_path")); /* or NULL */
  return bad;
}

static void *compile(ice_compile_t *cc) {
  json_t *def = ice_compile_config(cc);
  json_t *pm = json_object_get(def, "prompt_message");
  hum_conf_t *c = ice__calloc(1, sizeof(*c));
  int bad;

  if (c == NULL) {
    ice_compile_error(cc, NULL, "out of memory");
    return NULL;
  }
  bad = check(cc, def, c);
  if (json_is_string(pm)) {
    ice__err_t err;
    if (ice__tmpl_compile(pm, &c->prompt, &err) != 0) {
      ice__verr_tmpl(cc->v, cc->node, def, "prompt_message", &err);
      bad++;
    }
  }
  if (bad > 0) {
    conf_free(c, NULL);
    return NULL;
  }
  return c;
}

/* ---- answers ------------------------------------------------------------- */

/* The output an answer gives (new reference), or NULL with a message when
 * the node's approval_type refuses it. */
static json_t *answer_output(const hum_conf_t *c, const char *id,
                             const char *value, char *msg, size_t msglen) {
  switch (c->type) {
  case HUM_APPROVE_REJECT: {
    const char *colon = strchr(value, ':');
    size_t len = colon != NULL ? (size_t)(colon - value) : strlen(value);
    int approve = len == 7 && strncmp(value, "approve", 7) == 0;
    int reject = len == 6 && strncmp(value, "reject", 6) == 0;
    json_t *resp;

    if (!approve && !reject) {
      snprintf(msg, msglen,
               "node '%s': '%s' is not an answer for approval_type "
               "approve_reject (approve, reject, approve:COMMENT or "
               "reject:COMMENT)",
               id, value);
      return NULL;
    }
    /* A comment, when given, is the response; else the word itself. */
    if (colon != NULL && colon[1] != '\0')
      resp = ice__json_lossy_cstr(colon + 1);
    else
      resp = json_string(approve ? "approve" : "reject");
    return json_pack("{s:b,s:o}", "approved", approve, "response", resp);
  }
  case HUM_INPUT: {
    /* JSON when it parses, else the text as it is. */
    json_t *v = json_loads(value, JSON_DECODE_ANY, NULL);
    if (v == NULL)
      v = ice__json_lossy_cstr(value);
    return json_pack("{s:b,s:o}", "approved", 1, "response", v);
  }
  case HUM_CHOICE: {
    json_t *ch;
    size_t i, n = 0;
    char list[256] = "";

    json_array_foreach(c->choices, i, ch) {
      if (strcmp(json_string_value(ch), value) == 0)
        return json_pack("{s:b,s:s,s:s}", "approved", 1, "choice", value,
                         "response", value);
      if (n < sizeof(list))
        n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%s",
                              i > 0 ? ", " : "", json_string_value(ch));
    }
    snprintf(msg, msglen, "node '%s': '%s' is not one of its choices: %s", id,
             value, list);
    return NULL;
  }
  }
  snprintf(msg, msglen, "node '%s': unknown approval_type", id);
  return NULL;
}

int ice_workflow_check_answer(const ice_workflow_t *wf, const char *node_id,
                              const char *value, char *msg, size_t msglen) {
  const ice__node_t *n;
  json_t *out;

  if (wf == NULL || node_id == NULL || value == NULL) {
    snprintf(msg, msglen, "no node or no answer given");
    return ICE_EINVAL;
  }
  n = ice__workflow_node(wf, node_id);
  if (n == NULL) {
    snprintf(msg, msglen, "no node '%s' in workflow '%s'", node_id,
             ice_workflow_name(wf));
    return ICE_EINVAL;
  }
  if (n->ex != &ice__exec_human || n->xdata == NULL) {
    snprintf(msg, msglen,
             "node '%s' is a %s node, not a human node: it takes no answer",
             node_id, n->type);
    return ICE_EINVAL;
  }
  out = answer_output(n->xdata, node_id, value, msg, msglen);
  if (out == NULL)
    return ICE_EINVAL;
  json_decref(out);
  return 0;
}

/* ---- an attempt ---------------------------------------------------------- */

/* What falls due at the deadline of a parked attempt. */
enum { DUE_NONE, DUE_AUTO, DUE_TIMEOUT };

/* A parked attempt's timer; freed once its handle is closed. */
typedef struct {
  uv_timer_t timer;
  ice_task_t *task;
  int due;
} hum_wait_t;

static void resolved(ice_task_t *t, const char *how, int approved,
                     json_t *response) {
  json_t *f = json_pack("{s:s,s:b}", "resolution", how, "approved", approved);

  if (f != NULL && response != NULL &&
      json_object_set(f, "response", response) != 0) {
    json_decref(f);
    f = NULL; /* ENOMEM: the event is lost, and the run says so */
  }
  ice__task_emit(t, ICE__EV_HUMAN_RESOLVED, f);
}

/* The deadline passed: auto-approve, escalate, or fail with `timeout`. */
static void fall_due(ice_task_t *t, int due) {
  const hum_conf_t *c = ice_task_compiled(t);

  if (due == DUE_AUTO) {
    json_t *out = json_pack("{s:b,s:b,s:s}", "approved", 1, "auto", 1,
                            "response", "auto-approved");
    resolved(t, "auto_approved", 1, json_object_get(out, "response"));
    ice_task_done(t, out);
    return;
  }
  resolved(t, "timed_out", 0, NULL);
  if (c->escalation != NULL) {
    /* Escalated: the path is data for the nodes downstream. */
    ice_task_done(t,
                  json_pack("{s:b,s:b,s:b,s:s}", "approved", 0, "timed_out", 1,
                            "escalated", 1, "escalation_path", c->escalation));
    return;
  }
  ice__task_fail_kind(t, ICE__KIND_TIMEOUT,
                      "no answer within timeout_seconds (%g s)", c->timeout_s);
}

static void wait_closed(uv_handle_t *h) {
  ice__free(h->data);
}

/* Stops and frees the attempt's timer, if any. */
static void drop_timer(ice_task_t *t) {
  hum_wait_t *w = ice_task_data(t);

  if (w == NULL)
    return;
  ice_task_set_data(t, NULL);
  uv_timer_stop(&w->timer);
  uv_close((uv_handle_t *)&w->timer, wait_closed);
}

static void on_due(uv_timer_t *h) {
  hum_wait_t *w = h->data;
  ice_task_t *t = w->task;
  int due = w->due;

  drop_timer(t);
  fall_due(t, due);
}

/* Emits human.requested, with the prompt rendered. Returns 0, or fails the
 * attempt and returns -1. */
static int request(ice_task_t *t, const hum_conf_t *c) {
  json_t *def = ice_task_config(t), *prompt = NULL, *f;
  ice__err_t err;

  /* Rendered even when no one listens: a prompt that cannot be rendered
   * fails the node the same way with or without subscribers. */
  if (ice__tmpl_render_or_share(c->prompt,
                                json_object_get(def, "prompt_message"),
                                ice__task_lookup, t, &prompt, &err) != 0) {
    ice__task_fail_kind(t, err.kind, "prompt_message: %s", err.msg);
    return -1;
  }
  if (!ice__task_wants(t, ICE__EV_HUMAN_REQUESTED)) {
    json_decref(prompt);
    ice__task_emit(t, ICE__EV_HUMAN_REQUESTED, NULL); /* counts the seq */
    return 0;
  }
  f = json_pack("{s:o,s:s,s:O,s:O,s:O,s:O}", "prompt_message", prompt,
                "approval_type", type_names[c->type], "choices",
                c->choices != NULL ? c->choices : json_null(),
                "timeout_seconds",
                json_object_get(def, "timeout_seconds") != NULL
                    ? json_object_get(def, "timeout_seconds")
                    : json_null(),
                "auto_approve_after",
                json_object_get(def, "auto_approve_after") != NULL
                    ? json_object_get(def, "auto_approve_after")
                    : json_null(),
                "escalation_path",
                json_object_get(def, "escalation_path") != NULL
                    ? json_object_get(def, "escalation_path")
                    : json_null());
  ice__task_emit(t, ICE__EV_HUMAN_REQUESTED, f);
  return 0;
}

static void answered(ice_task_t *t, const hum_conf_t *c, json_t *ans) {
  char msg[512];
  json_t *out;

  if (!json_is_string(ans)) {
    ice__task_fail_kind(t, ICE__KIND_INPUT_VALIDATION,
                        "the answer must be a string");
    return;
  }
  out = answer_output(c, ice_task_node_id(t), json_string_value(ans), msg,
                      sizeof(msg));
  if (out == NULL) {
    ice__task_fail_kind(t, ICE__KIND_INPUT_VALIDATION, "%s", msg);
    return;
  }
  resolved(t, "answered", json_is_true(json_object_get(out, "approved")),
           json_object_get(out, "response"));
  ice_task_done(t, out);
}

/* Milliseconds to a future deadline, kept within what a timer takes. */
static uint64_t rest_ms(double deadline, double now) {
  double ms = ceil(deadline - now);

  return ms < 9007199254740992.0 ? (uint64_t)ms : UINT64_C(9007199254740992);
}

static void hum_start(ice_task_t *t) {
  const hum_conf_t *c = ice_task_compiled(t);
  ice_engine_t *e = ice_task_engine(t);
  json_t *ans = ice__task_answer(t), *saved = ice_task_saved_state(t);
  json_t *at = json_object_get(saved, "requested_at");
  double now = ice_engine_now_ms(e), asked, deadline = 0;
  int due = DUE_NONE;
  hum_wait_t *w;

  if (ans != NULL) {
    answered(t, c, ans);
    return;
  }
  /* Times count from the first request, whatever restarts came since. */
  if (json_is_number(at)) {
    asked = json_number_value(at);
  } else {
    asked = now;
    if (request(t, c) != 0)
      return;
  }
  if (c->auto_s >= 0) {
    due = DUE_AUTO; /* always before the timeout (checked at validation) */
    deadline = asked + c->auto_s * 1000.0;
  } else if (c->timeout_s > 0) {
    due = DUE_TIMEOUT;
    deadline = asked + c->timeout_s * 1000.0;
  }
  if (due != DUE_NONE && deadline <= now) {
    fall_due(t, due);
    return;
  }
  if (due != DUE_NONE) {
    w = ice__calloc(1, sizeof(*w));
    if (w == NULL) {
      ice__task_fail_kind(t, ICE__KIND_INTERNAL, "out of memory");
      return;
    }
    w->task = t;
    w->due = due;
    uv_timer_init(ice_task_loop(t), &w->timer);
    w->timer.data = w;
    /* A virtual clock jumps instead of waiting (tests). */
    uv_timer_start(&w->timer, on_due,
                   ice_engine_delay(e, rest_ms(deadline, now)), 0);
    ice_task_set_data(t, w);
  }
  if (ice_task_wait(t, json_pack("{s:f}", "requested_at", asked), deadline) !=
      0) {
    drop_timer(t);
    /* A run cancelled while the request was being announced. */
    if (ice__task_stopping(t))
      ice__task_fail_kind(t, ICE__KIND_CANCELLED, "human node cancelled");
    else
      ice__task_fail_kind(t, ICE__KIND_INTERNAL,
                          "could not wait for an answer");
  }
}

static void hum_cancel(ice_task_t *t) {
  drop_timer(t);
  /* On ICE_STOP_SUSPEND the scheduler keeps the node waiting (and its
   * saved request time), whatever this says. */
  ice__task_fail_kind(t, ICE__KIND_CANCELLED, "%s",
                      ice_task_stop_reason(t) == ICE_STOP_SUSPEND
                          ? "the run stopped while waiting for an answer"
                          : "cancelled while waiting for an answer");
}

const ice_executor_t ice__exec_human = {
    .abi = ICE_EXECUTOR_ABI,
    .type = "human",
    .fields = fields,
    .start = hum_start,
    .cancel = hum_cancel,
    .compile = compile,
    .free_compiled = conf_free,
};
