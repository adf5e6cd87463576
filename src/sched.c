/* The scheduler (SPEC §4.2-§4.5): dataflow over frames, trigger rules,
 * run_if, attempts with retries and back-off timers, per-attempt timeouts,
 * failure policies and cancellation.
 *
 * Executors complete attempts through ice_task_done/ice_task_fail, which
 * only queue the task; ice__sched_drain() then processes the queue and
 * starts ready nodes in one flat loop. A chain of 100,000 synchronous
 * nodes therefore runs in constant stack depth. Executors, events and the
 * result are in other files. */
#include "run.h"
#include "retry.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void settle(ice__frame_t *f, uint32_t k);
static void start_attempt(ice_task_t *t);

/* ---- the ready heap: (depth, position in the file) ---------------------- */

static int before(const ice__frame_t *f, uint32_t a, uint32_t b) {
  const ice_workflow_t *wf = f->run->wf;
  const ice__node_t *na = &wf->nodes[f->scope->nodes[a]];
  const ice__node_t *nb = &wf->nodes[f->scope->nodes[b]];

  if (na->depth != nb->depth)
    return na->depth < nb->depth;
  return a < b;
}

static void heap_push(ice__frame_t *f, uint32_t k) {
  uint32_t i = f->nheap++;

  f->heap[i] = k;
  while (i > 0) {
    uint32_t p = (i - 1) / 2;
    if (!before(f, f->heap[i], f->heap[p]))
      break;
    uint32_t tmp = f->heap[i];
    f->heap[i] = f->heap[p];
    f->heap[p] = tmp;
    i = p;
  }
}

static uint32_t heap_pop(ice__frame_t *f) {
  uint32_t top = f->heap[0], i = 0;

  f->heap[0] = f->heap[--f->nheap];
  for (;;) {
    uint32_t l = 2 * i + 1, r = l + 1, m = i;
    if (l < f->nheap && before(f, f->heap[l], f->heap[m]))
      m = l;
    if (r < f->nheap && before(f, f->heap[r], f->heap[m]))
      m = r;
    if (m == i)
      break;
    uint32_t tmp = f->heap[i];
    f->heap[i] = f->heap[m];
    f->heap[m] = tmp;
    i = m;
  }
  return top;
}

static void mark_ready(ice__frame_t *f) {
  ice_run_t *r = f->run;

  if (f->in_ready_list)
    return;
  f->in_ready_list = 1;
  f->next_ready = NULL;
  f->prev_ready = r->ready_tail;
  if (r->ready_tail != NULL)
    r->ready_tail->next_ready = f;
  else
    r->ready_head = f;
  r->ready_tail = f;
}

static void unmark_ready(ice__frame_t *f) {
  ice_run_t *r = f->run;

  if (!f->in_ready_list)
    return;
  f->in_ready_list = 0;
  if (f->prev_ready != NULL)
    f->prev_ready->next_ready = f->next_ready;
  else
    r->ready_head = f->next_ready;
  if (f->next_ready != NULL)
    f->next_ready->prev_ready = f->prev_ready;
  else
    r->ready_tail = f->prev_ready;
  f->next_ready = f->prev_ready = NULL;
}

/* ---- frames ------------------------------------------------------------- */

static const ice__node_t *node_of(const ice__frame_t *f, uint32_t k) {
  return &f->run->wf->nodes[f->scope->nodes[k]];
}

int ice__frame_new(ice_run_t *r, uint32_t scope, ice_task_t *parent,
                   json_t *extras, long index, uint32_t limit,
                   ice__frame_done_cb on_done, void *data, ice__frame_t **out) {
  const ice__scope_t *sc = &r->wf->scopes[scope];
  ice__frame_t *f;

  *out = NULL;
  f = ice__calloc(1, sizeof(*f));
  if (f == NULL)
    return ICE_ENOMEM;
  f->slots = ice__calloc(sc->n, sizeof(*f->slots));
  f->heap = ice__malloc(sizeof(uint32_t) * (sc->n + 1));
  f->work = ice__malloc(sizeof(uint32_t) * (sc->n + 1));
  if (f->slots == NULL || f->heap == NULL || f->work == NULL) {
    ice__frame_free(f);
    return ICE_ENOMEM;
  }
  f->run = r;
  f->scope = sc;
  f->parent = parent;
  f->extras = json_incref(extras);
  f->index = index;
  f->n = f->remaining = sc->n;
  f->limit = limit;
  f->on_done = on_done;
  f->data = data;
  for (uint32_t k = 0; k < sc->n; k++)
    f->slots[k].pending = node_of(f, k)->nsched;
  *out = f;
  return 0;
}

void ice__frame_free(ice__frame_t *f) {
  if (f == NULL)
    return;
  /* A finished frame may still sit in the ready list. */
  if (f->run != NULL)
    unmark_ready(f);
  for (uint32_t k = 0; f->slots != NULL && k < f->n; k++) {
    json_decref(f->slots[k].output);
    json_decref(f->slots[k].carry);
    ice__free(f->slots[k].err_msg);
  }
  json_decref(f->extras);
  ice__free(f->slots);
  ice__free(f->heap);
  ice__free(f->work);
  ice__free(f);
}

/* Called when the last node of f became terminal. Nothing may touch f
 * after on_done: it may free the frame. */
static void frame_done(ice__frame_t *f) {
  if (f->on_done != NULL)
    f->on_done(f);
}

void ice__frame_start(ice__frame_t *f) {
  for (uint32_t k = 0; k < f->n; k++) {
    if (f->slots[k].pending == 0) {
      f->slots[k].state = ICE__ST_READY;
      heap_push(f, k);
    }
  }
  if (f->n == 0) {
    frame_done(f);
    return;
  }
  mark_ready(f);
}

/* ---- tasks -------------------------------------------------------------- */

static void task_closed(uv_handle_t *h) {
  ice_task_t *t = h->data;
  ice_run_t *r = t->run;

  ice__free(t);
  r->live_tasks--;
  if (r->free_requested && r->live_tasks == 0)
    ice_run_free(r);
}

static void task_free(ice_task_t *t) {
  json_decref(t->output);
  json_decref(t->mapped);
  json_decref(t->input);
  ice__free(t->err_msg);
  t->output = t->mapped = t->input = NULL;
  t->err_msg = NULL;
  if (t->timer_init) {
    uv_close((uv_handle_t *)&t->timer, task_closed);
    return;
  }
  t->run->live_tasks--;
  ice__free(t);
}

static ice_task_t *task_new(ice__frame_t *f, uint32_t k) {
  ice_task_t *t = ice__calloc(1, sizeof(*t));

  if (t == NULL)
    return NULL;
  t->run = f->run;
  t->frame = f;
  t->node = node_of(f, k);
  t->local = k;
  f->run->live_tasks++;
  return t;
}

static void push_done(ice_task_t *t) {
  ice_run_t *r = t->run;

  t->next_done = NULL;
  if (r->dq_tail != NULL)
    r->dq_tail->next_done = t;
  else
    r->dq_head = t;
  r->dq_tail = t;
  if (!r->in_drain)
    ice__sched_kick(r);
}

static int ensure_timer(ice_task_t *t) {
  if (t->timer_init)
    return 0;
  if (uv_timer_init(t->run->engine->loop, &t->timer) != 0)
    return -1;
  t->timer.data = t;
  t->timer_init = 1;
  return 0;
}

/* Asks the executor to stop the attempt; one that cannot (no cancel hook)
 * has its attempt abandoned instead. */
static void request_cancel(ice_task_t *t) {
  if (t->node->ex->cancel != NULL)
    t->node->ex->cancel(t);
  else
    ice__task_abandon(t);
}

static void on_timeout(uv_timer_t *h) {
  ice_task_t *t = h->data;

  t->timer_armed = 0;
  if (t->done || t->cancel != ICE__CANCEL_NONE)
    return;
  t->cancel = ICE__CANCEL_TIMEOUT;
  request_cancel(t);
}

static void on_backoff(uv_timer_t *h) {
  ice_task_t *t = h->data;

  t->timer_armed = 0;
  t->in_backoff = 0;
  t->restart = 1;
  push_done(t);
}

/* Arms the task's timer. Delay timers (back-off) honour the virtual
 * clock; timeouts are always real. */
static void arm(ice_task_t *t, uint64_t ms, uv_timer_cb cb, int is_delay) {
  ice_engine_t *e = t->run->engine;

  if (ensure_timer(t) != 0) {
    /* No timer: run the callback at once rather than hang. */
    cb(&t->timer);
    return;
  }
  if (is_delay && e->virtual_clock) {
    e->clock_offset_ms += ms;
    ms = 0;
  }
  t->timer_armed = 1;
  /* The loop's cached time is that of the start of this loop turn; a drain
   * slice may have run since. */
  uv_update_time(e->loop);
  uv_timer_start(&t->timer, cb, ms, 0);
}

static void disarm(ice_task_t *t) {
  if (t->timer_armed) {
    uv_timer_stop(&t->timer);
    t->timer_armed = 0;
  }
}

void ice__task_abandon(ice_task_t *t) {
  ice__frame_t *f = t->frame;
  ice_task_t *n;

  if (t->done || t->abandoned)
    return;
  n = task_new(f, t->local);
  if (n == NULL)
    return; /* then the node waits for the executor after all */
  /* The new task carries the node on: it fails now, as timed out or
   * cancelled, and a retry (if any) starts from it. */
  n->attempt = t->attempt;
  n->cancel = t->cancel;
  n->mapped = t->mapped;
  t->mapped = NULL;
  disarm(t);
  t->abandoned = 1;
  f->slots[t->local].task = n;
  ice__task_fail_kind(n, ICE__KIND_CANCELLED,
                      "the executor cannot be interrupted; attempt "
                      "abandoned");
}

/* Requests that a running task stop; it completes as cancelled. A task
 * whose attempt already completed keeps its outcome. */
static void task_stop(ice_task_t *t) {
  if (t->cancel == ICE__CANCEL_STOP)
    return;
  if (t->restart) {
    t->cancel = ICE__CANCEL_STOP;
    return;
  }
  if (t->in_backoff) {
    disarm(t);
    t->in_backoff = 0;
    t->cancel = ICE__CANCEL_STOP;
    t->restart = 1;
    push_done(t);
    return;
  }
  if (t->done)
    return;
  t->cancel = ICE__CANCEL_STOP;
  request_cancel(t);
}

/* ---- node outcomes ------------------------------------------------------ */

const char *ice__skip_name(int skip) {
  static const char *const names[] = {"", "upstream_failed", "upstream_skipped",
                                      "run_if", "branch_not_taken"};

  return skip >= 0 && skip < (int)ICE__ARRAY_SIZE(names) ? names[skip] : "";
}

static void emit_skipped(ice__frame_t *f, uint32_t k) {
  ICE__EMIT(f->run, "node.skipped", NULL, node_of(f, k), f,
            json_pack("{s:s}", "reason", ice__skip_name(f->slots[k].skip)));
}

/* Decides whether a node whose dependencies are all terminal may run. */
static int trigger_ok(const ice__frame_t *f, uint32_t k, ice__skip_t *why) {
  const ice__node_t *n = node_of(f, k);
  uint32_t completed = 0, failed = 0;
  ice__trigger_t rule = n->trigger;

  if (n->nsched == 0)
    return 1;
  for (uint32_t j = 0; j < n->ndeps; j++) {
    uint8_t s = f->slots[n->deps[j]].state;
    if (n->back != NULL && n->back[j])
      continue;
    completed += s == ICE__ST_COMPLETED;
    failed += s == ICE__ST_FAILED;
  }
  if (f->parent == NULL && f->run->wf->policy == ICE__POLICY_ALWAYS &&
      rule == ICE__TRIGGER_ALL_SUCCESS)
    rule = ICE__TRIGGER_ALL_DONE;
  *why = failed > 0 ? ICE__SKIP_UPSTREAM_FAILED : ICE__SKIP_UPSTREAM_SKIPPED;
  switch (rule) {
  case ICE__TRIGGER_ALL_DONE:
    return 1;
  case ICE__TRIGGER_ONE_SUCCESS:
    return completed > 0;
  case ICE__TRIGGER_NONE_FAILED:
    return failed == 0;
  default:
    return completed == n->nsched;
  }
}

/* Marks node k terminal (its slot state already set) and releases its
 * dependents, iteratively: skips cascade through the work stack. */
static void settle(ice__frame_t *f, uint32_t k) {
  f->work[f->nwork++] = k;
  f->remaining--;
  while (f->nwork > 0) {
    uint32_t done = f->work[--f->nwork];
    const ice__node_t *n = node_of(f, done);
    int rerun = f->slots[done].rerun;
    for (uint32_t j = 0; j < n->nouts; j++) {
      uint32_t d = n->outs[j];
      ice__slot_t *s = &f->slots[d];
      ice__skip_t why = ICE__SKIP_NONE;
      /* A body node re-run by its recursive node releases only the nodes
       * of that loop: the others counted it the first time. */
      if (rerun && node_of(f, d)->rec_owner == ICE__NONE && n->rec_owner != d)
        continue;
      if (s->pending == 0 || --s->pending > 0 || s->state != ICE__ST_PENDING)
        continue;
      if (!trigger_ok(f, d, &why)) {
        s->state = ICE__ST_SKIPPED;
        s->skip = (uint8_t)why;
        emit_skipped(f, d);
      } else {
        s->state = ICE__ST_READY;
        heap_push(f, d);
        continue;
      }
      f->work[f->nwork++] = d;
      f->remaining--;
    }
  }
  if (f->nheap > 0)
    mark_ready(f);
  if (f->remaining == 0)
    frame_done(f);
}

void ice__frame_stop(ice__frame_t *f) {
  if (f->stopping)
    return;
  f->stopping = 1;
  /* Ready nodes never start (a node cancelled while ready is still in the
   * heap, already counted). */
  while (f->nheap > 0) {
    uint32_t k = heap_pop(f);
    if (f->slots[k].state != ICE__ST_READY)
      continue;
    f->slots[k].state = ICE__ST_CANCELLED;
    ICE__EMIT(f->run, "node.cancelled", NULL, node_of(f, k), f, NULL);
    f->remaining--;
  }
  /* Running nodes are asked to stop (they end as cancelled later); pending
   * ones are cancelled now. */
  for (uint32_t k = 0; k < f->n; k++) {
    ice__slot_t *s = &f->slots[k];
    if (s->state == ICE__ST_RUNNING && s->task != NULL)
      task_stop(s->task);
  }
  for (uint32_t k = 0; k < f->n; k++) {
    ice__slot_t *s = &f->slots[k];
    if (s->state == ICE__ST_PENDING) {
      s->state = ICE__ST_CANCELLED;
      ICE__EMIT(f->run, "node.cancelled", NULL, node_of(f, k), f, NULL);
      f->remaining--;
    }
  }
  if (f->remaining == 0)
    frame_done(f);
}

/* Node k's slot has reached a terminal state: apply the failure policy
 * (halt stops the frame) or release its dependents. */
static void node_terminal(ice__frame_t *f, uint32_t k) {
  ice_run_t *r = f->run;

  if (f->slots[k].state == ICE__ST_FAILED && f->parent == NULL &&
      r->wf->policy == ICE__POLICY_HALT && !f->stopping) {
    r->halted = 1;
    f->remaining--;
    ice__frame_stop(f);
    return;
  }
  if (f->stopping) {
    /* Everything not running was cancelled by ice__frame_stop. */
    if (--f->remaining == 0)
      frame_done(f);
    return;
  }
  settle(f, k);
}

int ice__frame_cancel_node(ice__frame_t *f, uint32_t k) {
  ice__slot_t *s = &f->slots[k];

  if (s->state == ICE__ST_PENDING || s->state == ICE__ST_READY) {
    /* A ready node stays in the heap; start_one skips it. */
    s->state = ICE__ST_CANCELLED;
    ICE__EMIT(f->run, "node.cancelled", NULL, node_of(f, k), f, NULL);
    node_terminal(f, k);
  } else if (s->state == ICE__ST_RUNNING && s->task != NULL) {
    task_stop(s->task);
  }
  return 0;
}

/* Ends node k's run: records the outcome, frees the task, settles. */
static void finish_node(ice__frame_t *f, ice_task_t *t, uint8_t state) {
  ice__slot_t *s = &f->slots[t->local];
  ice_run_t *r = f->run;
  uint32_t k = t->local;

  s->state = state;
  s->task = NULL;
  s->duration_ms = ice__engine_mono_ms(r->engine) - s->t_start_ms;
  f->running--;
  if (state == ICE__ST_COMPLETED) {
    json_decref(s->output);
    s->output = t->output;
    t->output = NULL;
    if (f->parent == NULL)
      json_object_set_nocheck(r->output, t->node->id, s->output);
  } else if (state == ICE__ST_FAILED) {
    s->err_kind = t->err_kind;
    s->err_msg = t->err_msg;
    t->err_msg = NULL;
  } else if (state == ICE__ST_CANCELLED) {
    ICE__EMIT(r, "node.cancelled", t, NULL, NULL, NULL);
  }
  task_free(t);
  node_terminal(f, k);
}

/* A recursive node asked for another iteration: it goes back to pending
 * with its intermediate output, and its body nodes run again. */
static void iterate(ice__frame_t *f, ice_task_t *t) {
  const ice__node_t *R = t->node;
  ice__slot_t *rs = &f->slots[t->local];

  json_decref(rs->output);
  rs->output = t->output;
  t->output = NULL;
  rs->state = ICE__ST_PENDING;
  rs->task = NULL;
  rs->pending = R->rec_pending;
  f->running--;
  task_free(t);
  for (uint32_t i = 0; i < R->nbody; i++) {
    uint32_t b = R->body[i];
    ice__slot_t *s = &f->slots[b];
    if (ICE__TERMINAL(s->state))
      f->remaining++;
    s->state = ICE__ST_PENDING;
    s->skip = 0;
    s->rerun = 1;
    s->pending = node_of(f, b)->rec_pending;
    ice__free(s->err_msg);
    s->err_msg = NULL;
    /* Until it completes again it is not a completed node of the run: a
     * cancel now must not leave its last output in the result. The slot
     * keeps it for R's context. */
    if (f->parent == NULL)
      json_object_del(f->run->output, node_of(f, b)->id);
  }
  for (uint32_t i = 0; i < R->nbody; i++) {
    uint32_t b = R->body[i];
    if (f->slots[b].pending == 0) {
      f->slots[b].state = ICE__ST_READY;
      heap_push(f, b);
    }
  }
  if (f->nheap > 0)
    mark_ready(f);
}

static double now_ms(const ice_run_t *r) {
  return ice__engine_mono_ms(r->engine);
}

/* Processes one completed attempt. */
static void process(ice_task_t *t) {
  ice__frame_t *f = t->frame;
  ice_run_t *r = t->run;
  const ice__node_t *n = t->node;
  ice__slot_t *s = &f->slots[t->local];
  int kind;
  const char *msg;
  int will_retry;

  if (t->restart) {
    t->restart = 0;
    if (t->cancel == ICE__CANCEL_STOP || f->stopping) {
      finish_node(f, t, ICE__ST_CANCELLED);
      return;
    }
    start_attempt(t);
    return;
  }
  disarm(t);
  if (t->cancel == ICE__CANCEL_STOP) {
    finish_node(f, t, ICE__ST_CANCELLED);
    return;
  }
  if (t->ok == 2 && t->cancel == ICE__CANCEL_NONE) {
    iterate(f, t);
    return;
  }
  if (t->ok && t->cancel != ICE__CANCEL_TIMEOUT) {
    ice__err_t err;
    if (n->out_schema == NULL ||
        ice__schema_check(n->out_schema, t->output, &err) == 0) {
      ICE__EMIT(r, "node.completed", t, NULL, NULL,
                json_pack("{s:i,s:f,s:b}", "attempt", t->attempt, "duration_ms",
                          ice__ms3(now_ms(r) - s->t_start_ms), "cache_hit", 0));
      finish_node(f, t, ICE__ST_COMPLETED);
      return;
    }
    t->ok = 0;
    t->err_kind = ICE__KIND_OUTPUT_VALIDATION;
    ice__free(t->err_msg);
    t->err_msg = ice__strdup(err.msg);
  }
  if (t->cancel == ICE__CANCEL_TIMEOUT) {
    char buf[96];
    snprintf(buf, sizeof(buf), "timed out after %g seconds", n->timeout);
    ice__free(t->err_msg);
    t->err_msg = ice__strdup(buf);
    t->err_kind = ICE__KIND_TIMEOUT;
  }
  kind = t->err_kind;
  msg = t->err_msg != NULL ? t->err_msg : "failed";
  will_retry = t->attempt < n->retry.max_attempts &&
               (n->retry.retry_on & (UINT32_C(1) << kind)) != 0 &&
               !f->stopping && !r->cancelled;
  ICE__EMIT(r, "node.failed", t, NULL, NULL,
            json_pack("{s:i,s:{s:s,s:s},s:b}", "attempt", t->attempt, "error",
                      "kind", ice__kind_name(kind), "message", msg,
                      "will_retry", will_retry));
  if (!will_retry) {
    finish_node(f, t, ICE__ST_FAILED);
    return;
  }
  {
    uint64_t delay = ice__retry_delay_ms(&n->retry, (unsigned)t->attempt,
                                         (uint32_t)random());
    r->retries++;
    ICE__EMIT(r, "node.retrying", t, NULL, NULL,
              json_pack("{s:i,s:I}", "attempt", t->attempt + 1, "delay_ms",
                        (json_int_t)delay));
    t->done = 0;
    t->in_backoff = 1;
    arm(t, delay, on_backoff, 1);
  }
}

static void start_attempt(ice_task_t *t) {
  ice__frame_t *f = t->frame;
  ice__slot_t *s = &f->slots[t->local];
  ice_run_t *r = t->run;
  ice__err_t err;

  t->attempt++;
  s->attempts = (uint32_t)t->attempt;
  t->done = t->ok = 0;
  t->cancel = ICE__CANCEL_NONE;
  json_decref(t->output);
  t->output = NULL;
  ice__free(t->err_msg);
  t->err_msg = NULL;
  t->err_kind = 0;
  /* A recursive node starting its next iteration is not a new attempt:
   * recursive.iteration events record iterations. */
  if (!(s->iter > 0 && t->attempt == 1))
    ICE__EMIT(r, "node.started", t, NULL, NULL,
              json_pack("{s:s,s:i}", "node_type", t->node->type, "attempt",
                        t->attempt));
  if (t->node->nmaps > 0 && t->mapped == NULL &&
      ice__task_map_inputs(t, &err) != 0) {
    ice__task_fail_kind(t, ICE__KIND_INPUT_MAPPING, "%s", err.msg);
    return;
  }
  t->in_exec = 1;
  t->node->ex->start(t);
  t->in_exec = 0;
  if (!t->done && t->node->timeout > 0)
    arm(t, (uint64_t)(t->node->timeout * 1000.0), on_timeout, 0);
}

/* Starts the next ready node of f; returns 0 when f can start nothing. */
static int start_one(ice__frame_t *f) {
  ice_task_t *t;
  uint32_t k;
  ice__slot_t *s;

  if (f->nheap == 0 || f->stopping || (f->limit > 0 && f->running >= f->limit))
    return 0;
  k = heap_pop(f);
  s = &f->slots[k];
  if (s->state != ICE__ST_READY)
    return 1; /* cancelled while it waited */
  t = task_new(f, k);
  if (t == NULL) {
    s->state = ICE__ST_FAILED;
    s->err_kind = ICE__KIND_INTERNAL;
    s->err_msg = ice__strdup("out of memory");
    node_terminal(f, k);
    return 1;
  }
  if (t->node->run_if != NULL) {
    ice__err_t err;
    json_t *v = NULL;
    int rc = ice__expr_eval(t->node->run_if, ice__task_lookup, t, &v, &err);
    int run = rc == 0 && ice__json_truthy(v);
    json_decref(v);
    if (rc == 0 && !run) {
      task_free(t);
      s->state = ICE__ST_SKIPPED;
      s->skip = ICE__SKIP_RUN_IF;
      emit_skipped(f, k);
      node_terminal(f, k);
      return 1;
    }
    if (rc != 0) {
      /* The node never started: it fails without an attempt. */
      task_free(t);
      s->state = ICE__ST_FAILED;
      s->err_kind = ICE__KIND_EXPRESSION;
      s->err_msg = ice__strdup(err.msg);
      ICE__EMIT(f->run, "node.failed", NULL, node_of(f, k), f,
                json_pack("{s:i,s:{s:s,s:s},s:b}", "attempt", 0, "error",
                          "kind", "expression", "message", err.msg,
                          "will_retry", 0));
      node_terminal(f, k);
      return 1;
    }
  }
  s->state = ICE__ST_RUNNING;
  s->task = t;
  s->t_start_ms = now_ms(f->run);
  f->running++;
  start_attempt(t);
  return 1;
}

/* The drain gives the event loop a turn after this much work, so that
 * timers (timeouts, sleep), signals and I/O of other nodes stay on time
 * while a long loop of synchronous nodes runs (SPEC §4.2, §4.5). The clock
 * is read once per DRAIN_CHECK steps: a step costs well under a
 * microsecond, and a loop turn with nothing to do costs a few. */
#define DRAIN_SLICE_NS 2000000u /* 2 ms */
#define DRAIN_CHECK 64u

void ice__sched_drain(ice_run_t *r) {
  uint64_t deadline;
  unsigned steps = 0;

  if (r->in_drain)
    return;
  r->in_drain = 1;
  deadline = uv_hrtime() + DRAIN_SLICE_NS;
  for (;;) {
    if (++steps % DRAIN_CHECK == 0 && uv_hrtime() >= deadline &&
        (r->dq_head != NULL || r->ready_head != NULL)) {
      /* More to do: resume from the idle handle after one loop turn. */
      ice__sched_kick(r);
      break;
    }
    if (r->dq_head != NULL) {
      ice_task_t *t = r->dq_head;
      r->dq_head = t->next_done;
      if (r->dq_head == NULL)
        r->dq_tail = NULL;
      process(t);
      continue;
    }
    if (r->ready_head != NULL) {
      ice__frame_t *f = r->ready_head;
      if (!start_one(f))
        unmark_ready(f);
      continue;
    }
    break;
  }
  r->in_drain = 0;
  if (r->finished)
    ice__run_finish(r);
}

static void on_kick(uv_idle_t *h) {
  ice_run_t *r = h->data;

  uv_idle_stop(h);
  ice__sched_drain(r);
}

void ice__sched_kick(ice_run_t *r) {
  if (r->kick_init && !r->closing)
    uv_idle_start(&r->kick, on_kick);
}

/* ---- completion API for executors --------------------------------------- */

void ice_task_done(ice_task_t *t, json_t *output) {
  if (output == NULL)
    output = json_object();
  if (output != NULL && !json_is_object(output)) {
    json_t *wrap = json_object();
    json_object_set_new(wrap, "result", output);
    output = wrap;
  }
  ice__task_done_raw(t, output);
}

void ice__task_done_raw(ice_task_t *t, json_t *output) {
  if (t != NULL && t->abandoned && !t->done) {
    /* Its node moved on long ago: drop the outcome, free the task. */
    t->done = 1;
    json_decref(output);
    task_free(t);
    return;
  }
  if (t == NULL || t->done) {
    json_decref(output);
    return;
  }
  t->done = 1;
  t->ok = 1;
  t->output = output;
  push_done(t);
}

void ice__task_iterate(ice_task_t *t, json_t *output) {
  if (t == NULL || t->done) {
    json_decref(output);
    return;
  }
  t->done = 1;
  t->ok = 2;
  t->output = output;
  push_done(t);
}

void ice__task_fail_kind(ice_task_t *t, int kind, const char *fmt, ...) {
  char buf[1024];
  va_list ap;

  if (t != NULL && t->abandoned && !t->done) {
    t->done = 1;
    task_free(t);
    return;
  }
  if (t == NULL || t->done)
    return;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  t->done = 1;
  t->ok = 0;
  t->err_kind = kind;
  ice__free(t->err_msg);
  /* The message may quote a tool's stderr: keep it, whatever its bytes. */
  t->err_msg = ice__utf8_dup(buf, strlen(buf));
  push_done(t);
}

void ice_task_fail(ice_task_t *t, const char *kind, const char *fmt, ...) {
  char buf[1024];
  va_list ap;
  int k = kind != NULL ? ice__kind_from_name(kind) : ICE__KIND_INTERNAL;

  va_start(ap, fmt);
  vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  ice__task_fail_kind(t, k < 0 ? ICE__KIND_INTERNAL : k, "%s", buf);
}
