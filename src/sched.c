/* The scheduler (SPEC §4.2-§4.5): dataflow over frames, trigger rules,
 * run_if, attempts with retries and back-off timers, per-attempt timeouts,
 * pools, failure policies, cancellation, waiting and background attempts.
 *
 * Executors complete attempts through ice_task_done/ice_task_fail, which
 * only queue the task; finished child frames are queued the same way.
 * ice__sched_drain() processes both queues and starts ready nodes in one
 * flat loop, so a chain of 100,000 synchronous nodes runs in constant
 * stack depth and no executor is re-entered while the scheduler settles a
 * node. Every change of a node instance's state goes through ice__commit
 * (commit.c). */
#include "retry.h"
#include "core.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void settle(ice__frame_t *f, uint32_t k);
static void start_attempt(ice_task_t *t);
static void frame_check_background(ice__frame_t *f);

/* ---- the ready heap: (depth, position in the file) ---------------------- */

/* Each entry is its key, depth << 32 | local index: comparing two is one
 * comparison, without loading either node (a fan-out of 10,000 nodes pops
 * each through 13 levels). */
static void heap_push(ice__frame_t *f, uint32_t k) {
  const ice__node_t *n = &f->run->wf->nodes[f->scope->nodes[k]];
  uint64_t key = (uint64_t)n->depth << 32 | k;
  uint32_t i = f->nheap++;

  while (i > 0) {
    uint32_t p = (i - 1) / 2;
    if (f->heap[p] <= key)
      break;
    f->heap[i] = f->heap[p];
    i = p;
  }
  f->heap[i] = key;
}

static uint32_t heap_pop(ice__frame_t *f) {
  uint32_t top = (uint32_t)f->heap[0], i = 0, n = --f->nheap;
  uint64_t last = f->heap[n];

  for (;;) {
    uint32_t l = 2 * i + 1, m = l;
    if (l >= n)
      break;
    if (l + 1 < n && f->heap[l + 1] < f->heap[l])
      m = l + 1;
    if (last <= f->heap[m])
      break;
    f->heap[i] = f->heap[m];
    i = m;
  }
  f->heap[i] = last;
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
                   ice__frame_cb on_done, void *data, ice__frame_t **out) {
  const ice__scope_t *sc = &r->wf->scopes[scope];
  ice__frame_t *f;

  *out = NULL;
  f = ice__calloc(1, sizeof(*f));
  if (f == NULL)
    return ICE_ENOMEM;
  f->slots = ice__calloc(sc->n, sizeof(*f->slots));
  f->heap = ice__malloc(sizeof(uint64_t) * (sc->n + 1));
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
  f->branch = -1;
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
  ice__free(f->key);
  ice__free(f->slots);
  ice__free(f->heap);
  ice__free(f->work);
  ice__free(f);
}

void ice__frame_close(ice__frame_t *f) {
  ice__frame_free(f);
}

/* The last node of f became terminal: its done callback is queued, so
 * that no executor runs inside the settling that finished the frame. */
static void frame_done(ice__frame_t *f) {
  ice_run_t *r = f->run;

  if (f->done_queued)
    return;
  f->done_queued = 1;
  f->next_done = NULL;
  if (r->fq_tail != NULL)
    r->fq_tail->next_done = f;
  else
    r->fq_head = f;
  r->fq_tail = f;
  if (!r->in_drain)
    ice__sched_kick(r);
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

int ice__frame_open(ice_task_t *parent, uint32_t scope, json_t *extras,
                    long index, long branch, ice__frame_cb done, void *data,
                    ice__frame_t **out) {
  int rc = ice__frame_new(parent->run, scope, parent, extras, index, 0, done,
                          data, out);

  if (rc != 0)
    return rc;
  (*out)->branch = branch;
  ice__frame_start(*out);
  return 0;
}

long ice__frame_index(const ice__frame_t *f) {
  return f->index >= 0 ? f->index : f->branch;
}

json_t *ice__frame_outputs(const ice__frame_t *f) {
  json_t *o = json_object();

  for (uint32_t k = 0; o != NULL && k < f->n; k++) {
    if (f->slots[k].state == ICE__ST_COMPLETED &&
        json_object_set_nocheck(o, node_of(f, k)->id, f->slots[k].output) !=
            0) {
      json_decref(o);
      return NULL; /* ENOMEM: an output would be missing */
    }
  }
  return o;
}

json_t *ice__frame_last_output(const ice__frame_t *f) {
  if (f->n == 0 || f->slots[f->n - 1].state != ICE__ST_COMPLETED)
    return NULL;
  return f->slots[f->n - 1].output;
}

const char *ice__frame_failure(const ice__frame_t *f, int *kind,
                               const char **msg) {
  for (uint32_t k = 0; k < f->n; k++) {
    if (f->slots[k].state == ICE__ST_FAILED) {
      *kind = f->slots[k].err_kind;
      *msg = f->slots[k].err_msg != NULL ? f->slots[k].err_msg : "";
      return node_of(f, k)->id;
    }
  }
  return NULL;
}

int ice__frame_succeeded(const ice__frame_t *f) {
  for (uint32_t k = 0; k < f->n; k++) {
    uint8_t s = f->slots[k].state;
    if (s != ICE__ST_COMPLETED && s != ICE__ST_SKIPPED)
      return 0;
  }
  return 1;
}

/* ---- tasks -------------------------------------------------------------- */

static void task_closed(uv_handle_t *h) {
  ice_task_t *t = h->data;
  ice_run_t *r = t->run;

  ice__free(t);
  r->live_tasks--;
  if (r->free_requested && r->live_tasks == 0)
    r->release(r); /* the run's deferred free (run.c) */
}

static void pool_release(ice_task_t *t);

static void task_free(ice_task_t *t) {
  pool_release(t);
  json_decref(t->output);
  json_decref(t->mapped);
  json_decref(t->input);
  json_decref(t->saved);
  ice__free(t->err_msg);
  ice__free(t->key);
  ice__free(t->cache_key);
  t->key = t->cache_key = NULL;
  t->output = t->mapped = t->input = t->saved = NULL;
  t->err_msg = NULL;
  if (t->timer_init) {
    uv_close((uv_handle_t *)&t->timer, task_closed);
    return;
  }
  {
    ice_run_t *r = t->run;
    ice__free(t);
    r->live_tasks--;
    /* The last task of a run whose free was deferred (an abandoned call
     * that ended late) releases it, as task_closed does. */
    if (r->free_requested && r->live_tasks == 0)
      r->release(r);
  }
}

static ice_task_t *task_new(ice__frame_t *f, uint32_t k) {
  ice_task_t *t = ice__calloc(1, sizeof(*t));

  if (t == NULL)
    return NULL;
  t->run = f->run;
  t->frame = f;
  t->node = node_of(f, k);
  t->local = k;
  t->pool1 = t->node->pool1;
  t->retry_after_ms = -1;
  f->run->live_tasks++;
  return t;
}

void ice__task_free(ice_task_t *t) {
  task_free(t);
}

static void push_done(ice_task_t *t);

void ice__sched_push_done(ice_task_t *t) {
  push_done(t);
}

/* Gives t's pool slot back; the waiter that gets it starts from the drain
 * (back on the done queue, flagged restart: start_attempt finds its slot
 * reserved). */
static void pool_release(ice_task_t *t) {
  ice_task_t *next = ice__pool_release(t);

  if (next != NULL) {
    next->restart = 1;
    push_done(next);
  }
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
  if (t->call != NULL)
    ice__call_request_cancel(t);
  else if (t->node->ex->cancel != NULL)
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
  if (is_delay)
    ms = ice_engine_delay(e, ms);
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
  ice__sched_unpark(t);
  n->attempt = t->attempt;
  n->cancel = t->cancel;
  n->mapped = t->mapped;
  n->in_pool = t->in_pool;
  n->background = t->background; /* the run's idle count stays right */
  n->placed = t->placed;
  t->in_pool = t->placed = 0;
  t->mapped = NULL;
  disarm(t);
  t->abandoned = 1;
  f->slots[t->local].task = n;
  ice__task_fail_kind(n, ICE__KIND_CANCELLED,
                      "the executor cannot be interrupted; attempt "
                      "abandoned");
}

/* Requests that a running task stop for `why`; it completes as cancelled
 * (or, when suspended, stays waiting). A task whose attempt already
 * completed keeps its outcome. */
static void task_stop(ice_task_t *t, ice__cancel_t why) {
  if (t->cancel == ICE__CANCEL_STOP || t->cancel == why)
    return;
  if (t->restart || t->pool_wait) {
    t->cancel = why;
    if (t->pool_wait) {
      ice__pool_release(t);
      t->restart = 1;
      push_done(t);
    }
    return;
  }
  if (t->in_backoff) {
    disarm(t);
    t->in_backoff = 0;
    t->cancel = why;
    t->restart = 1;
    push_done(t);
    return;
  }
  if (t->done)
    return;
  t->cancel = why;
  request_cancel(t);
}

/* ---- node outcomes ------------------------------------------------------ */

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
        s->skip = (uint8_t)why;
        ice__commit(f, d, ICE__CH_SKIPPED, NULL, NULL);
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
  else
    frame_check_background(f);
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
    ice__commit(f, k, ICE__CH_CANCELLED, NULL, NULL);
    f->remaining--;
  }
  /* Running nodes are asked to stop (they end as cancelled later); pending
   * ones are cancelled now. */
  for (uint32_t k = 0; k < f->n; k++) {
    ice__slot_t *s = &f->slots[k];
    if ((s->state == ICE__ST_RUNNING || s->state == ICE__ST_WAITING) &&
        s->task != NULL)
      task_stop(s->task, ICE__CANCEL_STOP);
  }
  for (uint32_t k = 0; k < f->n; k++) {
    if (f->slots[k].state == ICE__ST_PENDING) {
      ice__commit(f, k, ICE__CH_CANCELLED, NULL, NULL);
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
    ice__commit(f, k, ICE__CH_CANCELLED, NULL, NULL);
    node_terminal(f, k);
  } else if ((s->state == ICE__ST_RUNNING || s->state == ICE__ST_WAITING) &&
             s->task != NULL) {
    task_stop(s->task, ICE__CANCEL_STOP);
  }
  return 0;
}

/* The task no longer holds a place among the frame's running nodes. */
static void task_leaves(ice__frame_t *f, ice_task_t *t) {
  ice_run_t *r = f->run;

  if (t->placed)
    f->running--; /* a parked task gave its place back already */
  t->placed = 0;
  ice__sched_unpark(t);
  r->active--;
  r->idle -= ice__task_idle(t);
  if (t->background)
    f->background--;
  t->background = 0;
  if (f->nheap > 0)
    mark_ready(f);
}

/* Ends node k's run with a terminal change: commits it, frees the task,
 * settles. */
static void finish_node(ice__frame_t *f, ice_task_t *t, ice__change_t ch) {
  ice__slot_t *s = &f->slots[t->local];
  uint32_t k = t->local;

  s->task = NULL;
  s->duration_ms = ice__engine_mono_ms(f->run->engine) - s->t_start_ms;
  task_leaves(f, t);
  /* A computed output of a use_cache node is kept for later runs (a
   * failure to keep it loses nothing but time). */
  if (ch == ICE__CH_COMPLETED && t->cache_key != NULL && !t->cache_hit &&
      f->run->cache_put != NULL)
    f->run->cache_put(f->run->cache_data, t->cache_key, t->output);
  ice__commit(f, k, ch, t, NULL);
  task_free(t);
  node_terminal(f, k);
}

/* A recursive node asked for another iteration: it goes back to pending
 * with its intermediate output, and its body nodes run again. Also used
 * when a restored run replays a committed iteration (t == NULL). */
static void iterate(ice__frame_t *f, uint32_t k, ice_task_t *t) {
  const ice__node_t *R = node_of(f, k);
  ice__slot_t *rs = &f->slots[k];

  if (t != NULL) {
    rs->task = NULL;
    task_leaves(f, t);
    ice__commit(f, k, ICE__CH_ITERATED, t, NULL);
    task_free(t);
  }
  rs->state = ICE__ST_PENDING;
  rs->gen++;
  rs->pending = R->rec_pending;
  for (uint32_t i = 0; i < R->nbody; i++) {
    uint32_t b = R->body[i];
    ice__slot_t *s = &f->slots[b];
    if (ICE__TERMINAL(s->state))
      f->remaining++;
    s->state = ICE__ST_PENDING;
    s->skip = 0;
    s->rerun = 1;
    s->gen++;
    s->pending = node_of(f, b)->rec_pending;
    ice__free(s->err_msg);
    s->err_msg = NULL;
    /* Until it completes again it is not a completed node of the run: a
     * cancel now must not leave its last output in the result. The slot
     * keeps it for R's context. */
    if (f->parent == NULL)
      ice__run_output_del(f->run, b);
  }
  for (uint32_t i = 0; i < R->nbody; i++) {
    uint32_t b = R->body[i];
    if (f->slots[b].pending == 0) {
      f->slots[b].state = ICE__ST_READY;
      heap_push(f, b);
    }
  }
  if (R->nbody == 0) {
    /* A node that loops on its own (no body) runs again at once. */
    rs->state = ICE__ST_READY;
    heap_push(f, k);
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
  int will_retry;

  if (t->call != NULL) {
    ice__call_process(t);
    return;
  }
  if (t->restart) {
    t->restart = 0;
    if (t->cancel == ICE__CANCEL_STOP || f->stopping) {
      finish_node(f, t, ICE__CH_CANCELLED);
      return;
    }
    if (t->cancel == ICE__CANCEL_SUSPEND) {
      /* A retry that was due: the restored run starts it again. */
      f->slots[t->local].task = NULL;
      task_leaves(f, t);
      task_free(t);
      return;
    }
    start_attempt(t);
    return;
  }
  disarm(t);
  if (t->cancel == ICE__CANCEL_SUSPEND && !t->ok) {
    /* Parked when the run stopped as waiting: it stays waiting, as its
     * last commit says, and runs again when the run is restored. */
    f->slots[t->local].task = NULL;
    task_leaves(f, t);
    task_free(t);
    return;
  }
  if (t->cancel == ICE__CANCEL_STOP) {
    finish_node(f, t, ICE__CH_CANCELLED);
    return;
  }
  if (t->ok == 2 && t->cancel == ICE__CANCEL_NONE) {
    /* An iteration asked for after its frame was stopped (the attempt had
     * completed before the stop reached it) never runs: the node ends
     * cancelled instead of waking its body in a frame that starts
     * nothing more, which would wait for ever. */
    if (f->stopping)
      finish_node(f, t, ICE__CH_CANCELLED);
    else
      iterate(f, t->local, t);
    return;
  }
  if (t->ok && t->cancel != ICE__CANCEL_TIMEOUT) {
    ice__err_t err;
    if (n->out_schema == NULL ||
        ice__schema_check(n->out_schema, t->output, &err) == 0) {
      finish_node(f, t, ICE__CH_COMPLETED);
      return;
    }
    t->ok = 0;
    t->err_kind = ICE__KIND_OUTPUT_VALIDATION;
    ice__free(t->err_msg);
    t->err_msg = ice__strdup(err.msg);
  }
  if (t->cancel == ICE__CANCEL_TIMEOUT) {
    char buf[96];
    snprintf(buf, sizeof(buf), "timed out after %g seconds", n->opt->timeout);
    ice__free(t->err_msg);
    t->err_msg = ice__strdup(buf);
    t->err_kind = ICE__KIND_TIMEOUT;
  }
  will_retry = t->attempt < n->opt->retry.max_attempts &&
               (n->opt->retry.retry_on & (UINT32_C(1) << t->err_kind)) != 0 &&
               !f->stopping && !r->cancelled && r->stop == ICE__STOP_NONE;
  if (!will_retry) {
    finish_node(f, t, ICE__CH_FAILED);
    return;
  }
  {
    uint64_t delay = ice__retry_delay_ms(&n->opt->retry, (unsigned)t->attempt,
                                         (uint32_t)random());
    /* A callee that said how long to wait (an LLM's Retry-After) is
     * believed, up to the policy's ceiling. */
    if (t->retry_after_ms >= 0) {
      double cap = n->opt->retry.max_backoff_seconds * 1000.0;
      delay = (uint64_t)(t->retry_after_ms < cap ? t->retry_after_ms : cap);
    }
    r->retries++;
    /* The pool slot is not held during back-off (SPEC §4.2). */
    pool_release(t);
    t->retry_at_ms = ice__engine_now_ms(r->engine) + (double)delay;
    /* A retry that cannot be recorded is not made: the node fails. */
    if (ice__commit(f, t->local, ICE__CH_RETRYING, t,
                    json_pack("{s:I}", "delay_ms", (json_int_t)delay)) != 0) {
      finish_node(f, t, ICE__CH_FAILED);
      return;
    }
    t->done = 0;
    t->in_backoff = 1;
    arm(t, delay, on_backoff, 1);
  }
}

/* use_cache (SPEC §2.1): the key of this attempt's output, from the
 * node's definition and its context (what its input is rendered from).
 * Two FNV-1a hashes with different seeds: 128 bits. */
static char *cache_key(ice_task_t *t) {
  json_t *ctx = ice_task_context(t);
  char *def = ice_json_format(t->node->def, 0);
  char *in = ctx != NULL ? ice_json_format(ctx, 0) : NULL;
  char *key = NULL;

  json_decref(ctx);
  if (def != NULL && in != NULL) {
    uint64_t a = ice__fnv1a64(def, strlen(def), 0),
             b = ice__fnv1a64(def, strlen(def), 1);
    a = ice__fnv1a64(in, strlen(in), a);
    b = ice__fnv1a64(in, strlen(in), b ^ 0x9e3779b97f4a7c15ull);
    if (asprintf(&key, "%016llx%016llx", (unsigned long long)a,
                 (unsigned long long)b) < 0)
      key = NULL;
  }
  ice__free(def);
  ice__free(in);
  return key;
}

/* A cached output for the attempt: completes it (cache_hit) and returns 1.
 * Otherwise keeps the key for finish_node to store the output under. */
static int from_cache(ice_task_t *t) {
  ice_run_t *r = t->run;
  json_t *out;

  ice__free(t->cache_key);
  t->cache_key = cache_key(t);
  if (t->cache_key == NULL)
    return 0;
  out = r->cache_get(
      r->cache_data, t->cache_key,
      t->node->opt->cache_ttl > 0 ? t->node->opt->cache_ttl * 1000 : 0);
  if (out == NULL)
    return 0;
  t->cache_hit = 1;
  ice__task_done_raw(t, out);
  return 1;
}

static void start_attempt(ice_task_t *t) {
  ice__frame_t *f = t->frame;
  ice__slot_t *s = &f->slots[t->local];
  ice__err_t err;

  /* A node with a pool waits for a slot first; timeouts count from when
   * it holds one. */
  if (!ice__pool_acquire(t))
    return;
  t->attempt++;
  s->attempts = (uint32_t)t->attempt;
  t->done = t->ok = 0;
  t->cancel = ICE__CANCEL_NONE;
  t->wake_at_ms = t->retry_at_ms = 0;
  t->retry_after_ms = -1;
  json_decref(t->output);
  t->output = NULL;
  ice__free(t->err_msg);
  t->err_msg = NULL;
  t->err_kind = 0;
  /* A start that cannot be recorded does not run; the attempt still ends,
   * or the run would wait for it forever. */
  if (ice__commit(f, t->local, ICE__CH_STARTED, t, NULL) != 0) {
    ice__task_fail_kind(t, ICE__KIND_CANCELLED,
                        "not started: the run's commit failed");
    return;
  }
  if (t->node->nmaps > 0 && t->mapped == NULL &&
      ice__task_map_inputs(t, &err) != 0) {
    ice__task_fail_kind(t, ICE__KIND_INPUT_MAPPING, "%s", err.msg);
    return;
  }
  t->cache_hit = 0;
  if (t->node->opt->use_cache && t->run->cache_get != NULL && from_cache(t))
    return;
  t->in_exec = 1;
  t->node->ex->start(t);
  t->in_exec = 0;
  if (!t->done && !t->waiting && t->node->opt->timeout > 0)
    arm(t, (uint64_t)(t->node->opt->timeout * 1000.0), on_timeout, 0);
}

/* Puts back a recursive node's carried context and intermediate output
 * from an `iterated` record, which holds only the history entries added
 * since the node's previous record (commit.c, iteration_record). Records
 * are replayed in order, so s->carry holds the entries before them. */
static void replay_iteration(ice_run_t *r, ice__slot_t *s, json_t *rec) {
  json_t *state = json_object_get(rec, "state");
  json_t *out = json_object_get(rec, "output");
  json_t *tail = json_object_get(state, "history_tail");
  json_t *old = json_object_get(s->carry, "history");
  json_t *carry, *hist;
  json_int_t from = json_integer_value(json_object_get(state, "history_from"));
  const char *key =
      json_string_value(json_object_get(state, "output_carry_key"));

  if (!json_is_array(tail)) {
    /* Written whole (a carry without a history). */
    json_decref(s->output);
    s->output = json_incref(out);
    json_decref(s->carry);
    s->carry = json_incref(state);
    return;
  }
  /* Records come from outside: a gap keeps what there is. */
  if (from < 0 || (size_t)from > json_array_size(old))
    from = (json_int_t)json_array_size(old);
  carry = json_copy(state);
  out = json_copy(out);
  /* Usually the old history is held by the old carry alone and the new
   * one extends it: it grows in place, so a replay of k iterations costs
   * O(k), not O(k^2). */
  hist = json_incref(old);
  json_decref(s->output);
  json_decref(s->carry);
  s->output = out;
  s->carry = carry;
  if (hist == NULL || hist->refcount != 1 ||
      (size_t)from != json_array_size(hist)) {
    json_t *h = json_array();
    for (size_t i = 0; h != NULL && i < (size_t)from; i++) {
      if (json_array_append(h, json_array_get(hist, i)) != 0) {
        json_decref(h);
        h = NULL;
      }
    }
    json_decref(hist);
    hist = h;
  }
  if (carry == NULL || out == NULL || hist == NULL ||
      json_array_extend(hist, tail) != 0) {
    json_decref(hist);
    ice__run_fault(r, "out of memory: a recursive node's context was lost");
    return;
  }
  json_object_del(carry, "history_from");
  json_object_del(carry, "history_tail");
  json_object_del(carry, "output_carry_key");
  s->hist_committed = (uint32_t)json_array_size(hist);
  if (json_object_set_new(carry, "history", hist) != 0 ||
      (key != NULL && json_object_set(out, key, carry) != 0))
    ice__run_fault(r, "out of memory: a recursive node's context was lost");
}

/* A restored run meets a node instance that was committed before: replay
 * what it did instead of running it. Returns 1 when k needs nothing more
 * now. */
static int replay(ice__frame_t *f, uint32_t k, ice_task_t *t, json_t *rec) {
  ice__slot_t *s = &f->slots[k];
  const char *ch = json_string_value(json_object_get(rec, "change"));
  int change = ch != NULL ? ice__change_from_name(ch) : -1;
  json_int_t attempt = json_integer_value(json_object_get(rec, "attempt"));
  const char *reason = json_string_value(json_object_get(rec, "reason"));

  /* Records come from outside (a store): take nothing on trust. */
  if (attempt < 0 || attempt > 1000000)
    attempt = 0;
  s->restored = 1;
  switch (change) {
  case ICE__CH_COMPLETED:
    json_decref(s->output);
    s->output = json_incref(json_object_get(rec, "output"));
    if (s->output == NULL)
      s->output = json_object();
    s->state = ICE__ST_COMPLETED;
    s->attempts = (uint32_t)attempt;
    if (f->parent == NULL && ice__run_output_add(f->run, k) != 0)
      ice__run_fault(f->run, "out of memory: a node's output was lost");
    task_free(t);
    node_terminal(f, k);
    return 1;
  case ICE__CH_FAILED:
  case ICE__CH_SKIPPED: {
    json_t *e = json_object_get(rec, "error");
    s->state = change == ICE__CH_FAILED ? ICE__ST_FAILED : ICE__ST_SKIPPED;
    s->attempts = (uint32_t)attempt;
    const char *kind = json_string_value(json_object_get(e, "kind"));
    const char *msg = json_string_value(json_object_get(e, "message"));
    s->err_kind = kind != NULL ? ice__kind_from_name(kind) : -1;
    if (s->err_kind < 0)
      s->err_kind = ICE__KIND_INTERNAL;
    ice__free(s->err_msg);
    s->err_msg = ice__strdup(msg != NULL ? msg : "");
    for (int i = 1; reason != NULL && i < ICE__SKIP_COUNT; i++) {
      if (strcmp(reason, ice__skip_name(i)) == 0)
        s->skip = (uint8_t)i;
    }
    task_free(t);
    node_terminal(f, k);
    return 1;
  }
  case ICE__CH_ITERATED:
    replay_iteration(f->run, s, rec);
    s->attempts = (uint32_t)attempt;
    task_free(t);
    iterate(f, k, NULL);
    return 1;
  case ICE__CH_WAITING:
    /* The executor starts again, with what it saved, in the same
     * attempt; it decides what was answered or is due. */
    t->saved = json_incref(json_object_get(rec, "state"));
    t->attempt = (int)attempt - 1;
    return 0;
  case ICE__CH_RETRYING:
    /* Its next attempt was due at wake_at: wait what is left of it. */
    t->attempt = (int)attempt;
    t->retry_at_ms = json_number_value(json_object_get(rec, "wake_at_ms"));
    return 0;
  default:
    /* Started (it was running when the run stopped) or cancelled: it runs
     * again, as the same attempt. */
    t->attempt = attempt > 0 ? (int)attempt - 1 : 0;
    return 0;
  }
}

/* Starts the next ready node of f; returns 0 when f can start nothing. */
static int start_one(ice__frame_t *f) {
  ice_run_t *r = f->run;
  ice_task_t *t;
  uint32_t k;
  ice__slot_t *s;

  if (f->nheap == 0 || f->stopping || r->stop != ICE__STOP_NONE ||
      (f->limit > 0 && f->running >= f->limit))
    return 0;
  k = heap_pop(f);
  s = &f->slots[k];
  if (s->state != ICE__ST_READY)
    return 1; /* cancelled while it waited */
  t = task_new(f, k);
  if (t == NULL) {
    ice__run_fault(f->run, ICE__FAULT_INTERNAL);
    s->err_kind = ICE__KIND_INTERNAL;
    s->err_msg = ice__strdup("out of memory");
    ice__commit(f, k, ICE__CH_FAILED, NULL, NULL);
    node_terminal(f, k);
    return 1;
  }
  if (r->restore != NULL) {
    json_t *rec = ice__restored(f, k);
    if (rec != NULL && replay(f, k, t, rec))
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
      s->skip = ICE__SKIP_RUN_IF;
      ice__commit(f, k, ICE__CH_SKIPPED, NULL, NULL);
      node_terminal(f, k);
      return 1;
    }
    if (rc != 0) {
      /* The node never started: it fails without an attempt. */
      task_free(t);
      s->err_kind = ICE__KIND_EXPRESSION;
      s->err_msg = ice__strdup(err.msg);
      ice__commit(f, k, ICE__CH_FAILED, NULL, NULL);
      node_terminal(f, k);
      return 1;
    }
  }
  s->state = ICE__ST_RUNNING;
  s->task = t;
  s->t_start_ms = now_ms(r);
  f->running++;
  t->placed = 1;
  r->active++;
  r->idle += ice__task_idle(t);
  if (t->retry_at_ms > 0) {
    /* A restored retry: the rest of its back-off, then the attempt. */
    double left = t->retry_at_ms - ice__engine_now_ms(r->engine);
    t->in_backoff = 1;
    arm(t, left > 0 ? (uint64_t)left : 0, on_backoff, 1);
    return 1;
  }
  start_attempt(t);
  return 1;
}

/* ---- background attempts and waiting ------------------------------------ */

/* Background attempts (a monitor) do not hold their frame open: once
 * every other node of the frame is terminal, they are asked to finish. */
static void frame_check_background(ice__frame_t *f) {
  if (f->background == 0 || f->remaining != f->background)
    return;
  for (uint32_t k = 0; k < f->n; k++) {
    ice_task_t *t = f->slots[k].task;
    if (t != NULL && t->background && !t->done)
      task_stop(t, ICE__CANCEL_FINISH);
  }
}

/* The soonest wake-up time of a parked attempt (epoch ms), or 0. */
static double next_wake(const ice_run_t *r) {
  double next = 0;

  for (const ice_task_t *t = r->parked; t != NULL; t = t->next_park) {
    if (t->wake_at_ms > 0 && (next == 0 || t->wake_at_ms < next))
      next = t->wake_at_ms;
  }
  return next;
}

/* Stops the run without a trace in the commit log: every frame is stopped
 * with commits muted, so nodes keep the states they had, and the run can
 * be rebuilt from what was committed (SPEC §9). */
static void stop_quietly(ice_run_t *r) {
  r->muted = 1;
  ice__frame_stop(r->top);
}

/* Nothing is queued, ready or working: decide whether the run pauses,
 * stops as waiting, or keeps waiting for a parked attempt that will wake
 * by itself soon. */
static void check_stalled(ice_run_t *r) {
  double next;

  if (r->finished || r->muted || r->dq_head != NULL || r->fq_head != NULL ||
      r->ready_head != NULL || r->active > r->idle)
    return;
  if (r->stop == ICE__STOP_PAUSE) {
    stop_quietly(r);
    return;
  }
  if (r->waiting == 0 || r->suspend_after_ms < 0)
    return;
  next = next_wake(r);
  if (next > 0 && next - ice__engine_now_ms(r->engine) <= r->suspend_after_ms)
    return;
  r->stop = ICE__STOP_SUSPEND;
  stop_quietly(r);
}

/* ---- the drain loop ----------------------------------------------------- */

/* The drain gives the event loop a turn after this much work, so that
 * timers (timeouts, sleep), signals and I/O of other nodes stay on time
 * while a long loop of synchronous nodes runs (SPEC §4.2, §4.5). The clock
 * is read once per DRAIN_CHECK steps: a step costs well under a
 * microsecond, and a loop turn with nothing to do costs a few. */
#define DRAIN_SLICE_NS 2000000u /* 2 ms */
#define DRAIN_CHECK 64u

int ice__sched_drain(ice_run_t *r) {
  uint64_t deadline;
  unsigned steps = 0;
  int more = 0;

  if (r->in_drain)
    return 0;
  r->in_drain = 1;
  deadline = uv_hrtime() + DRAIN_SLICE_NS;
  for (;;) {
    if (++steps % DRAIN_CHECK == 0 && uv_hrtime() >= deadline &&
        (r->dq_head != NULL || r->fq_head != NULL || r->ready_head != NULL)) {
      more = 1; /* resume after one loop turn */
      break;
    }
    if (r->halt_pending) {
      r->halt_pending = 0;
      ice__frame_stop(r->top);
      continue;
    }
    if (r->dq_head != NULL) {
      ice_task_t *t = r->dq_head;
      r->dq_head = t->next_done;
      if (r->dq_head == NULL)
        r->dq_tail = NULL;
      process(t);
      continue;
    }
    if (r->fq_head != NULL) {
      ice__frame_t *f = r->fq_head;
      r->fq_head = f->next_done;
      if (r->fq_head == NULL)
        r->fq_tail = NULL;
      if (f->on_done != NULL)
        f->on_done(f, f->data); /* may free f */
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
  if (!more)
    check_stalled(r);
  return more;
}

static void on_kick(uv_idle_t *h) {
  ice_run_t *r = h->data;

  uv_idle_stop(h);
  if (ice__sched_drain(r))
    ice__sched_kick(r);
  if (r->finished && r->on_finish != NULL)
    r->on_finish(r);
}

void ice__sched_kick(ice_run_t *r) {
  if (r->kick_init && !r->closing) {
    r->kick.data = r;
    uv_idle_start(&r->kick, on_kick);
  }
}

/* ---- parked and background attempts -------------------------------------- */

void ice__sched_unpark(ice_task_t *t) {
  ice_run_t *r = t->run;

  if (!t->waiting)
    return;
  if (t->prev_park != NULL)
    t->prev_park->next_park = t->next_park;
  else
    r->parked = t->next_park;
  if (t->next_park != NULL)
    t->next_park->prev_park = t->prev_park;
  t->next_park = t->prev_park = NULL;
  r->waiting--;
  ice__task_set_flag(t, &t->waiting, 0);
}

int ice_task_wait(ice_task_t *t, json_t *state, double wake_at_ms) {
  ice__frame_t *f;
  ice_run_t *r;

  if (t == NULL || t->done || t->abandoned || t->waiting || t->call != NULL) {
    json_decref(state);
    return ICE_EINVAL;
  }
  f = t->frame;
  r = t->run;
  t->wake_at_ms = wake_at_ms > 0 ? wake_at_ms : 0;
  /* A parked node is not running: it gives its max_parallel place back,
   * so independent nodes go on (SPEC §8.1), and its timeout stops. */
  disarm(t);
  if (t->placed)
    f->running--;
  t->placed = 0;
  if (f->nheap > 0)
    mark_ready(f);
  ice__task_set_flag(t, &t->waiting, 1);
  r->waiting++;
  t->next_park = r->parked;
  t->prev_park = NULL;
  if (r->parked != NULL)
    r->parked->prev_park = t;
  r->parked = t;
  if (state != NULL) {
    json_decref(t->saved);
    t->saved = state; /* committed with the change, handed back on restore */
  }
  ice__commit(f, t->local, ICE__CH_WAITING, t, NULL);
  if (!r->in_drain)
    ice__sched_kick(r); /* the run may now be stalled */
  return 0;
}

json_t *ice_task_saved_state(const ice_task_t *t) {
  return t != NULL ? t->saved : NULL;
}

void ice_task_set_background(ice_task_t *t) {
  if (t == NULL || t->done || t->abandoned || t->background || t->call != NULL)
    return;
  ice__task_set_flag(t, &t->background, 1);
  t->frame->background++;
  /* Background work does not hold a max_parallel place either: with
   * max_parallel 1, a monitor must not starve the nodes it watches. */
  if (t->placed) {
    t->placed = 0;
    t->frame->running--;
    if (t->frame->nheap > 0)
      mark_ready(t->frame);
  }
  frame_check_background(t->frame);
  if (!t->run->in_drain)
    ice__sched_kick(t->run);
}

int ice_task_stop_reason(const ice_task_t *t) {
  switch (t != NULL ? t->cancel : ICE__CANCEL_NONE) {
  case ICE__CANCEL_TIMEOUT:
    return ICE_STOP_TIMEOUT;
  case ICE__CANCEL_STOP:
    return ICE_STOP_CANCEL;
  case ICE__CANCEL_SUSPEND:
    return ICE_STOP_SUSPEND;
  case ICE__CANCEL_FINISH:
    return ICE_STOP_FINISH;
  default:
    return ICE_STOP_NONE;
  }
}

int ice__task_stopping(const ice_task_t *t) {
  return t->cancel != ICE__CANCEL_NONE;
}

/* ---- a recursive node's iterations --------------------------------------- */

uint32_t ice__task_iteration(const ice_task_t *t) {
  return t->frame->slots[t->local].gen + 1;
}

json_t *ice__task_carry(const ice_task_t *t) {
  return t->frame->slots[t->local].carry;
}

void ice__task_set_carry(ice_task_t *t, json_t *carry) {
  ice__slot_t *s = &t->frame->slots[t->local];

  json_decref(s->carry);
  s->carry = carry;
}

json_t *ice__task_prev_output(const ice_task_t *t) {
  return t->frame->slots[t->local].output;
}

json_t *ice__task_body_outputs(const ice_task_t *t) {
  const ice__frame_t *f = t->frame;
  json_t *o = json_object();

  for (uint32_t j = 0; o != NULL && j < t->node->nbody; j++) {
    const ice__slot_t *s = &f->slots[t->node->body[j]];
    if (s->output != NULL &&
        json_object_set_nocheck(o, node_of(f, t->node->body[j])->id,
                                s->output) != 0) {
      json_decref(o);
      return NULL; /* ENOMEM */
    }
  }
  return o;
}

/* ---- lists that never run ------------------------------------------------ */

void ice__scope_skip(ice_task_t *parent, uint32_t scope, long index,
                     ice__skip_t reason) {
  ice__frame_t *f;

  /* A frame of their own gives them their keys and events; it never
   * starts. */
  if (ice__frame_new(parent->run, scope, parent, NULL, -1, 0, NULL, NULL, &f) !=
      0)
    return;
  f->branch = index;
  for (uint32_t k = 0; k < f->n; k++) {
    f->slots[k].skip = (uint8_t)reason;
    ice__commit(f, k,
                reason == ICE__SKIP_NONE ? ICE__CH_CANCELLED : ICE__CH_SKIPPED,
                NULL, NULL);
  }
  ice__frame_free(f);
}

/* ---- completion API for executors ---------------------------------------- */

void ice_task_done(ice_task_t *t, json_t *output) {
  if (output != NULL && !json_is_object(output)) {
    json_t *wrap = json_object();
    if (json_object_set_new(wrap, "result", output) != 0) {
      json_decref(wrap);
      wrap = NULL;
    }
    output = wrap;
  }
  /* What a json_pack() that ran out of memory hands over. */
  if (output == NULL) {
    ice__task_fail_kind(t, ICE__KIND_INTERNAL,
                        "no output (NULL): out of memory");
    return;
  }
  ice__task_done_raw(t, output);
}

/* Ends the attempt t; 0 when the caller must not touch t any more. */
static int complete(ice_task_t *t) {
  if (t != NULL && t->abandoned && !t->done) {
    /* Its node moved on long ago: drop the outcome, free the task. */
    t->done = 1;
    task_free(t);
    return 0;
  }
  if (t == NULL || t->done)
    return 0;
  t->done = 1;
  if (t->waiting)
    ice__sched_unpark(t);
  return 1;
}

void ice__task_done_raw(ice_task_t *t, json_t *output) {
  if (!complete(t)) {
    json_decref(output);
    return;
  }
  t->ok = 1;
  t->output = output;
  push_done(t);
}

void ice__task_done_flow(ice_task_t *t, json_t *out) {
  /* Control-flow outputs embed their children's outputs (shared, not
   * copied); nesting can make their text explode while memory does not. */
  if (out != NULL && ice__json_size(out, ICE__MAX_TEXT_BYTES) == SIZE_MAX) {
    json_decref(out);
    ice__task_fail_kind(t, ICE__KIND_RESOURCE_LIMIT,
                        "output: its JSON text would be over %zu MiB "
                        "(nested outputs repeated at every level)",
                        ICE__MAX_TEXT_BYTES >> 20);
    return;
  }
  ice__task_done_raw(t, out);
}

void ice__task_iterate(ice_task_t *t, json_t *output) {
  if (!complete(t)) {
    json_decref(output);
    return;
  }
  t->ok = 2;
  t->output = output;
  push_done(t);
}

static void fail_v(ice_task_t *t, int kind, const char *fmt, va_list ap) {
  char buf[1024];

  if (!complete(t))
    return;
  vsnprintf(buf, sizeof(buf), fmt, ap);
  t->ok = 0;
  t->err_kind = kind;
  ice__free(t->err_msg);
  /* The message may quote a tool's stderr: keep it, whatever its bytes. */
  t->err_msg = ice__utf8_dup(buf, strlen(buf));
  push_done(t);
}

void ice__task_fail_kind(ice_task_t *t, int kind, const char *fmt, ...) {
  va_list ap;

  /* The engine itself failed (out of memory, mostly): the run stops,
   * rather than a retry, a failure policy or an `any` strategy hiding it. */
  if (kind == ICE__KIND_INTERNAL)
    ice__task_fault(t);
  va_start(ap, fmt);
  fail_v(t, kind, fmt, ap);
  va_end(ap);
}

void ice_task_fail(ice_task_t *t, const char *kind, const char *fmt, ...) {
  int k = kind != NULL ? ice__kind_from_name(kind) : ICE__KIND_INTERNAL;
  va_list ap;

  va_start(ap, fmt);
  fail_v(t, k < 0 ? ICE__KIND_INTERNAL : k, fmt, ap);
  va_end(ap);
}
