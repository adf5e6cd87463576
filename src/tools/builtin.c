/* The built-in tools of SPEC §5.3: echo, sleep, fail and flaky. They are C
 * tools like the ones an embedding program registers, looked up last. */
#include "../control.h"

#include <stdio.h>
#include <string.h>

static void echo_start(ice_task_t *t, json_t *args, void *data) {
  (void)data;
  /* Outputs are immutable, so the rendered args are shared, not copied. */
  ice_task_done(t, json_incref(args));
}

/* ---- sleep -------------------------------------------------------------- */

typedef struct {
  uv_timer_t timer;
  ice_task_t *task;
  json_t *seconds;
} sleeper_t;

static void sleeper_closed(uv_handle_t *h) {
  sleeper_t *s = h->data;

  json_decref(s->seconds);
  ice__free(s);
}

static void sleep_fire(uv_timer_t *h) {
  sleeper_t *s = h->data;
  ice_task_t *t = s->task;

  ice_task_set_data(t, NULL);
  ice_task_done(t, json_pack("{s:O}", "slept", s->seconds));
  uv_close((uv_handle_t *)&s->timer, sleeper_closed);
}

static void sleep_start(ice_task_t *t, json_t *args, void *data) {
  json_t *sec = json_object_get(args, "seconds");
  ice_engine_t *e = ice_task_engine(t);
  sleeper_t *s;
  double d;

  (void)data;
  if (!json_is_number(sec) || (d = json_number_value(sec)) < 0 ||
      d > 31536000) {
    ice__task_fail_kind(t, ICE__KIND_TOOL_ERROR,
                        "sleep: 'seconds' must be a number >= 0");
    return;
  }
  s = ice__calloc(1, sizeof(*s));
  if (s == NULL || uv_timer_init(ice_engine_loop(e), &s->timer) != 0) {
    ice__free(s);
    ice__task_fail_kind(t, ICE__KIND_INTERNAL, "out of memory");
    return;
  }
  s->timer.data = s;
  s->task = t;
  s->seconds = json_incref(sec);
  ice_task_set_data(t, s);
  uint64_t ms = ice_engine_delay(e, (uint64_t)(d * 1000.0));
  uv_update_time(ice_engine_loop(e)); /* a drain slice may have run since */
  uv_timer_start(&s->timer, sleep_fire, ms, 0);
}

static void sleep_cancel(ice_task_t *t, void *data) {
  sleeper_t *s = ice_task_data(t);

  (void)data;
  if (s == NULL)
    return;
  ice_task_set_data(t, NULL);
  uv_timer_stop(&s->timer);
  uv_close((uv_handle_t *)&s->timer, sleeper_closed);
  ice__task_fail_kind(t, ICE__KIND_CANCELLED, "sleep cancelled");
}

/* ---- fail and flaky ----------------------------------------------------- */

static void fail_start(ice_task_t *t, json_t *args, void *data) {
  const char *msg = json_string_value(json_object_get(args, "message"));
  const char *kind = json_string_value(json_object_get(args, "kind"));
  int k = kind != NULL ? ice__kind_from_name(kind) : ICE__KIND_TOOL_ERROR;

  (void)data;
  ice__task_fail_kind(t, k < 0 ? ICE__KIND_TOOL_ERROR : k, "%s",
                      msg != NULL ? msg : "fail called");
}

static void flaky_start(ice_task_t *t, json_t *args, void *data) {
  json_t *fv = json_object_get(args, "failures");
  json_int_t failures = json_is_integer(fv) ? json_integer_value(fv) : 1;
  /* Counted per node id, and per index inside a loop (the scheduler
   * keeps the tally per run). */
  json_int_t a = ice__task_tally(t);

  (void)data;
  if (a <= failures) {
    ice__task_fail_kind(t, ICE__KIND_TRANSIENT, "flaky failure %lld of %lld",
                        (long long)a, (long long)failures);
    return;
  }
  ice_task_done(t, json_pack("{s:I}", "attempts", a));
}

static const ice_tool_t builtins[] = {
    {"echo", echo_start, NULL, NULL},
    {"sleep", sleep_start, sleep_cancel, NULL},
    {"fail", fail_start, NULL, NULL},
    {"flaky", flaky_start, NULL, NULL},
};

const ice_tool_t *ice__builtin_tools(size_t *n) {
  *n = ICE__ARRAY_SIZE(builtins);
  return builtins;
}
