/* The commit point: every change of a node instance's state (started,
 * waiting, retrying, iterated, completed, failed, skipped, cancelled) goes
 * through ice__commit. It updates the slot, emits the change's event, and
 * hands a record to the run's commit hook (where the store writes) before
 * the scheduler releases any dependent. The same records, given back to a
 * new run, rebuild it: completed instances are not run again (sched.c's
 * replay). Node instances are named here, once, by their key. */
#include "core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const ice__node_t *node_of(const ice__frame_t *f, uint32_t k) {
  return &f->run->wf->nodes[f->scope->nodes[k]];
}

/* ---- instance keys ------------------------------------------------------ */

static int append(char **buf, size_t *len, size_t *cap, const char *s,
                  size_t n) {
  if (*len + n + 1 > *cap) {
    size_t ncap = (*len + n + 1) * 2;
    char *nb = ice__realloc(*buf, ncap);
    if (nb == NULL)
      return -1;
    *buf = nb;
    *cap = ncap;
  }
  memcpy(*buf + *len, s, n);
  *len += n;
  (*buf)[*len] = '\0';
  return 0;
}

/* "ID" or "ID@N" for node k's current instance. */
static int append_node(char **buf, size_t *len, size_t *cap,
                       const ice__frame_t *f, uint32_t k) {
  const char *id = node_of(f, k)->id;
  char gen[24];

  if (append(buf, len, cap, id, strlen(id)) != 0)
    return -1;
  if (f->slots[k].gen == 0)
    return 0;
  snprintf(gen, sizeof(gen), "@%u", f->slots[k].gen + 1);
  return append(buf, len, cap, gen, strlen(gen));
}

/* The prefix of every key in f: "" at the top, else the key of the node
 * that opened f, its loop index or branch in brackets, and a slash. Built
 * once per frame: the opening node's instance does not change while the
 * frame lives. */
static const char *frame_prefix(ice__frame_t *f) {
  char *buf = NULL, part[32];
  size_t len = 0, cap = 0;
  const char *up;
  long i;

  if (f->key != NULL)
    return f->key;
  if (f->parent == NULL) {
    f->key = ice__strdup("");
    return f->key;
  }
  up = frame_prefix(f->parent->frame);
  if (up == NULL)
    return NULL;
  i = f->index >= 0 ? f->index : f->branch;
  if (i >= 0)
    snprintf(part, sizeof(part), "[%ld]/", i);
  else
    snprintf(part, sizeof(part), "/");
  if (append(&buf, &len, &cap, up, strlen(up)) != 0 ||
      append_node(&buf, &len, &cap, f->parent->frame, f->parent->local) != 0 ||
      append(&buf, &len, &cap, part, strlen(part)) != 0) {
    ice__free(buf);
    return NULL;
  }
  f->key = buf;
  return buf;
}

char *ice__instance_key(ice__frame_t *f, uint32_t k) {
  const char *pre = frame_prefix(f);
  char *buf = NULL;
  size_t len = 0, cap = 0;

  if (pre == NULL || append(&buf, &len, &cap, pre, strlen(pre)) != 0 ||
      append_node(&buf, &len, &cap, f, k) != 0) {
    ice__free(buf);
    return NULL;
  }
  return buf;
}

json_t *ice__restored(ice__frame_t *f, uint32_t k) {
  char *key;
  json_t *rec;

  if (f->run->restore == NULL)
    return NULL;
  key = ice__instance_key(f, k);
  rec = key != NULL ? json_object_get(f->run->restore, key) : NULL;
  ice__free(key);
  return rec;
}

/* ---- records ------------------------------------------------------------ */

json_t *ice_commit_to_json(const ice_commit_t *c) {
  /* Times in whole milliseconds: precise enough for due times, and an
   * integer formats several times faster than a real on a store's hot
   * path. */
  json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:i,s:I,s:I}", "run_id", c->run_id,
                        "key", c->key, "node_id", c->node_id, "change",
                        c->change, "attempt", c->attempt, "at_ms",
                        (json_int_t)c->at_ms, "seq", (json_int_t)c->seq);

  int bad = 0;

  if (o == NULL)
    return NULL;
  if (c->output != NULL)
    bad |= json_object_set(o, "output", c->output);
  if (c->state != NULL)
    bad |= json_object_set(o, "state", c->state);
  if (c->error_kind != NULL)
    bad |= json_object_set_new(
        o, "error",
        json_pack("{s:s,s:o}", "kind", c->error_kind, "message",
                  ice__json_lossy_cstr(
                      c->error_message != NULL ? c->error_message : "")));
  if (c->reason != NULL)
    bad |= json_object_set_new(o, "reason", json_string(c->reason));
  if (c->wake_at_ms > 0)
    bad |= json_object_set_new(o, "wake_at_ms",
                               json_integer((json_int_t)c->wake_at_ms));
  if (bad) {
    json_decref(o);
    return NULL; /* ENOMEM: a record missing a field would mislead */
  }
  return o;
}

/* A recursive node's carried context grows by one `history` entry per
 * iteration, and its intermediate output holds the carry. Recorded whole,
 * iteration k would write k entries: a long run's records would grow with
 * the square of its iterations. So an `iterated` record holds only the
 * entries added since the node's last record (`history_from`,
 * `history_tail`), and its output leaves the carry out (the state names
 * its key, `output_carry_key`); sched.c's replay puts them back together
 * in order. */
static void iteration_record(ice__slot_t *s, json_t **out, json_t **state) {
  json_t *carry = s->carry, *hist = json_object_get(carry, "history");
  json_t *st, *o, *tail;
  const char *key, *carry_key = NULL;
  json_t *v;
  size_t from, n;
  int bad = 0;

  *out = json_incref(s->output);
  *state = json_incref(carry);
  if (!json_is_object(carry) || !json_is_array(hist))
    return;
  n = json_array_size(hist);
  from = s->hist_committed <= n ? s->hist_committed : 0;
  st = json_copy(carry); /* shallow: the entries are shared */
  o = json_copy(s->output);
  tail = json_array();
  if (st == NULL || o == NULL || tail == NULL) {
    json_decref(st);
    json_decref(o);
    json_decref(tail);
    return;
  }
  for (size_t i = from; i < n && !bad; i++)
    bad |= json_array_append(tail, json_array_get(hist, i));
  json_object_del(st, "history");
  bad |=
      json_object_set_new(st, "history_from", json_integer((json_int_t)from));
  bad |= json_object_set_new(st, "history_tail", tail);
  json_object_foreach(o, key, v) {
    if (v == carry)
      carry_key = key;
  }
  if (carry_key != NULL && !bad) {
    bad |= json_object_set_new(st, "output_carry_key", json_string(carry_key));
    json_object_del(o, carry_key); /* frees carry_key: last */
  }
  if (bad) {
    /* ENOMEM: the whole record (bigger, but right) rather than a part. */
    json_decref(st);
    json_decref(o);
    return;
  }
  json_decref(*out);
  json_decref(*state);
  *out = o;
  *state = st;
  s->hist_committed = (uint32_t)n;
}

/* Hands the change to the run's commit hook. A hook that fails stops the
 * run: work whose record cannot be kept must not go on as if it were. */
static int call_hook(ice__frame_t *f, uint32_t k, ice__change_t ch,
                     const ice_task_t *t) {
  ice_run_t *r = f->run;
  ice__slot_t *s = &f->slots[k];
  json_t *own_out = NULL, *own_state = NULL;
  ice_commit_t c;
  char msg[256] = "";
  int rc;

  memset(&c, 0, sizeof(c));
  c.key = ice__instance_key(f, k);
  if (c.key == NULL)
    rc = -1, snprintf(msg, sizeof(msg), "out of memory");
  else {
    c.run_id = r->id;
    c.node_id = node_of(f, k)->id;
    c.change = ice__change_name(ch);
    c.attempt = t != NULL ? t->attempt : (int)s->attempts;
    c.at_ms = ice__engine_now_ms(r->engine);
    c.seq = r->seq;
    switch (ch) {
    case ICE__CH_COMPLETED:
      c.output = s->output;
      break;
    case ICE__CH_ITERATED:
      iteration_record(s, &own_out, &own_state);
      c.output = own_out;
      c.state = own_state;
      break;
    case ICE__CH_WAITING:
      c.state = t->saved;
      c.wake_at_ms = t->wake_at_ms;
      break;
    case ICE__CH_RETRYING:
      c.error_kind = ice__kind_name(t->err_kind);
      c.error_message = t->err_msg;
      c.wake_at_ms = t->retry_at_ms;
      break;
    case ICE__CH_FAILED:
      c.error_kind = ice__kind_name(s->err_kind);
      c.error_message = s->err_msg;
      break;
    case ICE__CH_SKIPPED:
      c.reason = ice__skip_name(s->skip);
      break;
    default:
      break;
    }
    rc = r->commit(&c, r->commit_data, msg, sizeof(msg));
  }
  json_decref(own_out);
  json_decref(own_state);
  ice__free((char *)c.key);
  if (rc != 0 && r->commit_error == NULL) {
    r->commit_error = ice__strdup(msg[0] != '\0' ? msg : "commit hook failed");
    if (r->commit_error == NULL)
      ice__run_fault(r, "out of memory: a commit failed");
    /* Stopped from the drain loop, not from inside this commit. */
    r->halt_pending = 1;
    return -1;
  }
  return rc != 0 ? -1 : 0;
}

int ice__commit(ice__frame_t *f, uint32_t k, ice__change_t ch, ice_task_t *t,
                json_t *fields) {
  ice_run_t *r = f->run;
  ice__slot_t *s = &f->slots[k];
  const ice__node_t *n = node_of(f, k);

  if (r->muted) {
    /* The run is stopping as paused or waiting: nodes keep the state of
     * their last commit, which is what a restore rebuilds. */
    json_decref(fields);
    return 0;
  }
  switch (ch) {
  case ICE__CH_STARTED:
    s->state = ICE__ST_RUNNING;
    /* A recursive node starting its next iteration is not a new attempt:
     * recursive.iteration events count iterations. */
    if (!(s->gen > 0 && n->nbody > 0 && t->attempt == 1))
      ICE__EMIT(
          r, ICE__EV_NODE_STARTED, f, k,
          json_pack("{s:s,s:i}", "node_type", n->type, "attempt", t->attempt));
    break;
  case ICE__CH_WAITING:
    s->state = ICE__ST_WAITING;
    break;
  case ICE__CH_RETRYING:
    s->state = ICE__ST_RUNNING;
    ICE__EMIT(r, ICE__EV_NODE_FAILED, f, k,
              json_pack("{s:i,s:{s:s,s:o},s:b}", "attempt", t->attempt, "error",
                        "kind", ice__kind_name(t->err_kind), "message",
                        ice__json_lossy_cstr(t->err_msg != NULL ? t->err_msg
                                                                : "failed"),
                        "will_retry", 1));
    ICE__EMIT(r, ICE__EV_NODE_RETRYING, f, k,
              json_pack("{s:i,s:O}", "attempt", t->attempt + 1, "delay_ms",
                        json_object_get(fields, "delay_ms")));
    break;
  case ICE__CH_ITERATED:
    json_decref(s->output);
    s->output = t->output;
    t->output = NULL;
    break;
  case ICE__CH_COMPLETED:
    s->state = ICE__ST_COMPLETED;
    if (t != NULL) {
      json_decref(s->output);
      s->output = t->output;
      t->output = NULL;
    }
    if (f->parent == NULL && ice__run_output_add(r, k) != 0)
      ice__run_fault(r, "out of memory: a node's output was lost");
    r->engine->ev_output = s->output; /* ice_event_output, during delivery */
    ICE__EMIT(r, ICE__EV_NODE_COMPLETED, f, k,
              json_pack("{s:i,s:f,s:b}", "attempt", t != NULL ? t->attempt : 0,
                        "duration_ms", ice__ms3(t != NULL ? s->duration_ms : 0),
                        "cache_hit", t != NULL && t->cache_hit));
    r->engine->ev_output = NULL;
    break;
  case ICE__CH_FAILED:
    s->state = ICE__ST_FAILED;
    if (t != NULL) {
      s->err_kind = t->err_kind;
      ice__free(s->err_msg);
      s->err_msg = t->err_msg;
      t->err_msg = NULL;
    }
    ICE__EMIT(r, ICE__EV_NODE_FAILED, f, k,
              json_pack("{s:i,s:{s:s,s:o},s:b}", "attempt",
                        t != NULL ? t->attempt : 0, "error", "kind",
                        ice__kind_name(s->err_kind), "message",
                        ice__json_lossy_cstr(s->err_msg != NULL ? s->err_msg
                                                                : "failed"),
                        "will_retry", 0));
    break;
  case ICE__CH_SKIPPED:
    s->state = ICE__ST_SKIPPED;
    ICE__EMIT(r, ICE__EV_NODE_SKIPPED, f, k,
              json_pack("{s:s}", "reason", ice__skip_name(s->skip)));
    break;
  case ICE__CH_CANCELLED:
    s->state = ICE__ST_CANCELLED;
    ICE__EMIT(r, ICE__EV_NODE_CANCELLED, f, k, json_object());
    break;
  default:
    break;
  }
  json_decref(fields);
  if (r->commit != NULL)
    return call_hook(f, k, ch, t);
  return 0;
}
