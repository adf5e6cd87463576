/* A run's lifetime: creation (inputs checked against the input schema),
 * start, cancel, the result of SPEC §11.1, events and deferred freeing.
 * Scheduling is in sched.c. */
#include "run.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void top_done(ice__frame_t *f) {
  f->run->finished = 1;
}

static void make_id(ice_run_t *r) {
  struct timespec ts;
  unsigned rnd;

  clock_gettime(CLOCK_REALTIME, &ts);
  rnd = (unsigned)random() ^ (unsigned)getpid() ^ (unsigned)ts.tv_nsec;
  snprintf(r->id, sizeof(r->id), "%08lx%04x%04llx",
           (unsigned long)ts.tv_sec & 0xffffffffUL, rnd & 0xffff,
           (unsigned long long)(++r->engine->run_counter & 0xffff));
}

int ice_run_new(ice_engine_t *e, ice_workflow_t *wf, const ice_run_opts_t *opts,
                ice_run_t **out, ice_diags_t *diags) {
  ice_run_t *r;
  json_t *inputs = opts != NULL ? opts->inputs : NULL;
  int max_parallel;
  int rc;

  *out = NULL;
  if (e == NULL || wf == NULL)
    return ICE_EINVAL;
  if (inputs != NULL && !json_is_object(inputs)) {
    ice__diags_add(diags, wf->file, 0, 0, "run inputs must be a JSON object");
    return ICE_EINPUT;
  }
  if (wf->input_schema != NULL) {
    ice__err_t err;
    json_t *in = inputs != NULL ? json_incref(inputs) : json_object();
    rc = ice__schema_check(wf->input_schema, in, &err);
    json_decref(in);
    if (rc != 0) {
      char msg[640];
      snprintf(msg, sizeof(msg), "inputs do not match input_schema: %s",
               err.msg);
      ice__diags_add(diags, wf->file, 0, 0, msg);
      return ICE_EINPUT;
    }
  }
  r = ice__calloc(1, sizeof(*r));
  if (r == NULL)
    return ICE_ENOMEM;
  r->engine = e;
  r->wf = wf;
  ice__workflow_ref(wf);
  e->runs++;
  r->inputs = inputs != NULL ? json_incref(inputs) : json_object();
  r->output = json_object();
  r->flaky = json_object();
  max_parallel = opts != NULL && opts->max_parallel > 0 ? opts->max_parallel
                                                        : wf->max_parallel;
  make_id(r);
  rc = ice__frame_new(r, 0, NULL, NULL, -1, (uint32_t)max_parallel, top_done,
                      NULL, &r->top);
  if (rc != 0 || r->inputs == NULL || r->output == NULL || r->flaky == NULL) {
    ice_run_free(r);
    return ICE_ENOMEM;
  }
  if (uv_idle_init(e->loop, &r->kick) != 0) {
    ice_run_free(r);
    return ICE_EIO;
  }
  r->kick.data = r;
  r->kick_init = 1;
  *out = r;
  return 0;
}

const char *ice_run_id(const ice_run_t *r) {
  return r->id;
}
int ice_run_finished(const ice_run_t *r) {
  return r->result != NULL;
}

/* Adds parent_run_id and parent_node_id to a sub-workflow run's
 * workflow.* event fields. */
static json_t *with_parent(const ice_run_t *r, json_t *fields) {
  if (fields != NULL && r->parent_node_id != NULL) {
    json_object_set_new(fields, "parent_run_id", json_string(r->parent_run_id));
    json_object_set_new(fields, "parent_node_id",
                        json_string(r->parent_node_id));
  }
  return fields;
}

int ice_run_start(ice_run_t *r, ice_run_done_cb done, void *data) {
  if (r == NULL || r->started)
    return ICE_EINVAL;
  r->started = 1;
  r->done = done;
  r->done_data = data;
  r->t0_ms = ice__engine_mono_ms(r->engine);
  ICE__EMIT(r, "workflow.started", NULL, NULL, NULL,
            with_parent(r, json_pack("{s:s,s:I}", "workflow", r->wf->name,
                                     "nodes", (json_int_t)r->wf->scopes[0].n)));
  ice__frame_start(r->top);
  ice__sched_kick(r);
  return 0;
}

int ice_run_execute(ice_run_t *r) {
  int rc = ice_run_start(r, NULL, NULL);

  if (rc != 0)
    return rc;
  while (r->result == NULL) {
    if (uv_run(r->engine->loop, UV_RUN_ONCE) == 0 && !r->finished)
      return ICE_EIO;
  }
  return 0;
}

int ice_run_cancel(ice_run_t *r) {
  if (r == NULL || !r->started)
    return ICE_EINVAL;
  if (r->finished || r->cancelled)
    return 0;
  r->cancelled = 1;
  ice__frame_stop(r->top);
  ice__sched_kick(r);
  return 0;
}

int ice_run_cancel_node(ice_run_t *r, const char *node_id) {
  const ice__node_t *n;

  if (r == NULL || node_id == NULL)
    return ICE_EINVAL;
  n = ice__workflow_node(r->wf, node_id);
  if (n == NULL || n->scope != 0)
    return ICE_ENOENT;
  if (!r->started || r->finished)
    return 0;
  r->in_drain++;
  ice__frame_cancel_node(r->top, n->local);
  r->in_drain--;
  ice__sched_kick(r);
  return 0;
}

json_t *ice_run_result(ice_run_t *r) {
  return r->result;
}

json_t *ice_run_output(ice_run_t *r, const char *node_id) {
  return json_object_get(r->output, node_id);
}

json_int_t ice__run_flaky_attempt(ice_run_t *r, const char *key) {
  json_int_t n = json_integer_value(json_object_get(r->flaky, key)) + 1;

  json_object_set_new(r->flaky, key, json_integer(n));
  return n;
}

/* ---- events ------------------------------------------------------------- */

static void format_ts(double ms, char *buf, size_t len) {
  time_t sec = (time_t)(ms / 1000.0);
  int milli = (int)((long long)ms % 1000);
  struct tm tm;

  gmtime_r(&sec, &tm);
  snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
           tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
           milli < 0 ? 0 : milli);
}

void ice__emit_now(ice_run_t *r, const char *type, ice_task_t *t,
                   const ice__node_t *n, ice__frame_t *f, json_t *fields) {
  json_t *ev;
  char ts[40];
  uint64_t seq = ++r->seq;

  if (t != NULL) {
    n = t->node;
    f = t->frame;
  }
  ev = json_object();
  if (ev == NULL) {
    json_decref(fields);
    return;
  }
  format_ts(ice__engine_now_ms(r->engine), ts, sizeof(ts));
  json_object_set_new(ev, "type", json_string(type));
  json_object_set_new(ev, "seq", json_integer((json_int_t)seq));
  json_object_set_new(ev, "ts", json_string(ts));
  json_object_set_new(ev, "run_id", json_string(r->id));
  if (n != NULL)
    json_object_set_new(ev, "node_id", json_string(n->id));
  if (f != NULL && f->parent != NULL) {
    long idx = -1;
    json_object_set_new(ev, "parent_id", json_string(f->parent->node->id));
    for (const ice__frame_t *p = f; p != NULL;
         p = p->parent != NULL ? p->parent->frame : NULL) {
      if (p->index >= 0) {
        idx = p->index;
        break;
      }
    }
    if (idx >= 0)
      json_object_set_new(ev, "index", json_integer(idx));
  }
  if (fields != NULL) {
    json_object_update(ev, fields);
    json_decref(fields);
  }
  ice__bus_emit(r->engine, type, ev);
  json_decref(ev);
}

/* ---- the result --------------------------------------------------------- */

static const char *const state_names[] = {"pending",   "ready",  "running",
                                          "completed", "failed", "skipped",
                                          "cancelled"};

static json_t *build_result(ice_run_t *r) {
  const ice__frame_t *f = r->top;
  json_t *nodes = json_object(), *errors = json_array(), *res;
  json_int_t completed = 0, failed = 0, skipped = 0, cancelled = 0;
  int too_big = 0;
  const char *status;

  for (uint32_t k = 0; k < f->n; k++) {
    const ice__slot_t *s = &f->slots[k];
    const ice__node_t *n = &r->wf->nodes[f->scope->nodes[k]];
    json_t *e =
        json_pack("{s:s,s:i,s:f}", "status", state_names[s->state], "attempts",
                  (int)s->attempts, "duration_ms",
                  s->state == ICE__ST_SKIPPED ? 0.0 : ice__ms3(s->duration_ms));
    switch (s->state) {
    case ICE__ST_COMPLETED:
      completed++;
      break;
    case ICE__ST_FAILED:
      failed++;
      json_object_set_new(e, "error",
                          json_pack("{s:s,s:s}", "kind",
                                    ice__kind_name(s->err_kind), "message",
                                    s->err_msg != NULL ? s->err_msg : ""));
      {
        char *line = NULL;
        if (asprintf(&line, "Node %s failed: %s", n->id,
                     s->err_msg != NULL ? s->err_msg : "") >= 0) {
          json_array_append_new(errors, json_string(line));
          free(line);
        }
      }
      break;
    case ICE__ST_SKIPPED:
      skipped++;
      json_object_set_new(e, "reason", json_string(ice__skip_name(s->skip)));
      break;
    default:
      cancelled++;
      break;
    }
    json_object_set_new(nodes, n->id, e);
  }
  /* Top-level outputs share nested values; a result whose text would be
   * too large to print fails clearly instead of hanging its printer. */
  if (ice__json_size(r->output, ICE__MAX_TEXT_BYTES) == SIZE_MAX) {
    json_array_append_new(
        errors, json_sprintf("Output: its JSON text would be over %zu MiB; "
                             "it is left out of the result",
                             ICE__MAX_TEXT_BYTES >> 20));
    json_decref(r->output);
    r->output = json_object();
    too_big = 1;
  }
  if (r->cancelled)
    status = "cancelled";
  else if (failed > 0 || too_big)
    status = "failed";
  else
    status = "completed";
  res = json_pack(
      "{s:s,s:s,s:s,s:b,s:O,s:o,s:o,s:{s:f,s:I,s:I,s:I,s:I,s:I,s:i,s:i}}",
      "run_id", r->id, "workflow", r->wf->name, "status", status, "success",
      failed == 0 && !too_big && !r->cancelled, "output", r->output, "nodes",
      nodes, "errors", errors, "metrics", "duration_ms",
      ice__ms3(r->duration_ms), "nodes_completed", completed, "nodes_failed",
      failed, "nodes_skipped", skipped, "nodes_cancelled", cancelled, "retries",
      (json_int_t)r->retries, "tokens", 0, "cost_usd", 0);
  return res;
}

static void really_free(ice_run_t *r);

void ice__run_finish(ice_run_t *r) {
  if (r->result != NULL)
    return;
  r->duration_ms = ice__engine_mono_ms(r->engine) - r->t0_ms;
  r->result = build_result(r);
  if (r->result == NULL)
    r->result = json_pack("{s:s,s:s,s:b}", "run_id", r->id, "status", "failed",
                          "success", 0);
  ICE__EMIT(
      r, "workflow.completed", NULL, NULL, NULL,
      with_parent(r, json_pack("{s:O,s:O,s:f}", "status",
                               json_object_get(r->result, "status"), "success",
                               json_object_get(r->result, "success"),
                               "duration_ms", ice__ms3(r->duration_ms))));
  if (r->done != NULL) {
    r->in_drain = 1; /* a done callback that frees the run is deferred */
    r->done(r, r->done_data);
    r->in_drain = 0;
  }
  if (r->free_requested)
    really_free(r);
}

/* ---- freeing ------------------------------------------------------------ */

static void kick_closed(uv_handle_t *h) {
  ice_run_t *r = h->data;

  r->engine->runs--;
  ice__free(r);
}

static void really_free(ice_run_t *r) {
  if (r->live_tasks > 0 || r->closing)
    return;
  ice__frame_free(r->top);
  r->top = NULL;
  json_decref(r->inputs);
  json_decref(r->output);
  json_decref(r->result);
  json_decref(r->flaky);
  ice_workflow_free(r->wf);
  if (r->kick_init) {
    r->closing = 1;
    uv_close((uv_handle_t *)&r->kick, kick_closed);
    return;
  }
  r->engine->runs--;
  ice__free(r);
}

void ice_run_free(ice_run_t *r) {
  if (r == NULL)
    return;
  r->free_requested = 1;
  if (r->in_drain)
    return;
  if (r->started && !r->finished) {
    /* Still executing: stop it, free once it is done. */
    ice_run_cancel(r);
    return;
  }
  really_free(r);
}
