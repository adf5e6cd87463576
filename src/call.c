/* Calls (call.h): sub-tasks whose outcome goes to a callback. The drain
 * treats them apart from nodes: a call holds no max_parallel place, has no
 * timer of its own (its parent's timeout stops it), is never committed
 * and never retried; it only waits for a pool slot, runs, and reports. */
#include "call.h"
#include "core.h"

#include <stdarg.h>
#include <stdio.h>

struct ice__call_s {
  ice_task_t *parent;
  const ice__call_ops_t *ops;
  void *arg;
  ice__call_cb cb;
  void *data;
  int started; /* ops->start was called */
};

static ice_task_t *sub_new(ice_task_t *parent, uint32_t pool1,
                           const ice__call_ops_t *ops, void *arg,
                           ice__call_cb cb, void *data) {
  ice_task_t *t = ice__calloc(1, sizeof(*t));
  struct ice__call_s *c = ice__calloc(1, sizeof(*c));

  if (t == NULL || c == NULL) {
    ice__free(t);
    ice__free(c);
    return NULL;
  }
  c->parent = parent;
  c->ops = ops;
  c->arg = arg;
  c->cb = cb;
  c->data = data;
  t->call = c;
  t->run = parent->run;
  t->frame = parent->frame;
  t->node = parent->node;
  t->local = parent->local;
  t->attempt = parent->attempt;
  t->pool1 = pool1;
  t->retry_after_ms = -1;
  parent->run->live_tasks++;
  return t;
}

ice_task_t *ice__call_start(ice_task_t *parent, uint32_t pool1,
                            const ice__call_ops_t *ops, void *arg,
                            ice__call_cb cb, void *data) {
  ice_task_t *t = sub_new(parent, pool1, ops, arg, cb, data);

  if (t == NULL)
    return NULL;
  /* Started from the drain, like every attempt: the callback can then
   * never fire from inside this function. */
  if (ice__pool_acquire(t))
    t->restart = 1;
  if (t->restart)
    ice__sched_push_done(t);
  return t;
}

int ice__task_is_call(const ice_task_t *t) {
  return t->call != NULL;
}

void ice__task_retry_after(ice_task_t *t, double seconds) {
  t->retry_after_ms = seconds >= 0 ? seconds * 1000.0 : -1;
}

/* Ends a call that never got to run (cancelled while queued). */
static void fail_now(ice_task_t *t, const char *msg) {
  t->done = 1;
  t->ok = 0;
  t->err_kind = ICE__KIND_CANCELLED;
  t->err_msg = ice__strdup(msg);
  ice__sched_push_done(t);
}

void ice__call_process(ice_task_t *t) {
  struct ice__call_s *c = t->call;
  ice__call_res_t res;

  if (t->restart) {
    t->restart = 0;
    if (t->cancel != ICE__CANCEL_NONE) {
      fail_now(t, "call cancelled before it started");
      return;
    }
    c->started = 1;
    c->ops->start(t, c->arg);
    return;
  }
  res.ok = t->ok != 0;
  res.output = t->output;
  res.kind = t->ok ? 0 : t->err_kind;
  res.msg = t->err_msg != NULL ? t->err_msg : "";
  res.retry_after = t->retry_after_ms >= 0 ? t->retry_after_ms / 1000.0 : -1;
  if (c->cb != NULL)
    c->cb(c->data, &res);
  if (!c->started && c->ops->drop != NULL)
    c->ops->drop(c->arg);
  ice__free(c);
  t->call = NULL;
  ice__task_free(t); /* gives a pool slot back */
}

void ice__call_request_cancel(ice_task_t *t) {
  struct ice__call_s *c = t->call;

  if (c->ops->cancel != NULL)
    c->ops->cancel(t, c->arg);
  else
    ice__call_abandon(t);
}

void ice__call_abandon(ice_task_t *t) {
  struct ice__call_s *c = t->call;

  if (c == NULL || t->done)
    return;
  /* The parent gets a cancelled outcome now, from a stand-in, and the
   * callee's own outcome is dropped when it comes (complete() then frees
   * the abandoned task). */
  ice_task_t *n = sub_new(c->parent, 0, c->ops, c->arg, c->cb, c->data);
  c->cb = NULL;
  t->abandoned = 1;
  t->call = NULL;
  ice__free(c);
  if (n != NULL) {
    n->cancel = ICE__CANCEL_STOP;
    fail_now(n, "the tool cannot be interrupted; call abandoned");
  }
}

void ice__call_cancel(ice_task_t *t) {
  if (t == NULL || t->call == NULL || t->done || t->cancel != ICE__CANCEL_NONE)
    return;
  t->cancel = ICE__CANCEL_STOP;
  if (t->pool_wait) {
    ice__pool_release(t); /* off the queue */
    fail_now(t, "call cancelled before it started");
    return;
  }
  if (t->restart)
    return; /* queued to start: the drain sees the cancel */
  if (t->call->started)
    ice__call_request_cancel(t);
}
