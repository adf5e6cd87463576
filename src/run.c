/* A run's lifetime: creation (inputs checked against the input schema, a
 * restored run's records indexed), start, pause, cancel, child runs, the
 * result of SPEC §11.1 and deferred freeing. Scheduling is in sched.c,
 * state changes in commit.c. */
#include "core.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void run_finish(ice_run_t *r);

static void top_done(ice__frame_t *f, void *data) {
  (void)data;
  f->run->finished = 1;
}

static char *make_id(ice_engine_t *e) {
  struct timespec ts;
  unsigned rnd;
  char buf[40];

  clock_gettime(CLOCK_REALTIME, &ts);
  rnd = (unsigned)random() ^ (unsigned)getpid() ^ (unsigned)ts.tv_nsec;
  snprintf(buf, sizeof(buf), "%08lx%04x%04llx",
           (unsigned long)ts.tv_sec & 0xffffffffUL, rnd & 0xffff,
           (unsigned long long)(++e->run_counter & 0xffff));
  return ice__strdup(buf);
}

/* Indexes this run's records (of a restore array or map) by instance key,
 * the last one of each key winning: records come in commit order, and a
 * tree of runs shares one list, each record naming its run. */
static int index_restore(ice_run_t *r, json_t *all) {
  json_t *records = json_is_object(all) ? json_object_get(all, r->id) : all;
  size_t i;
  json_t *rec;

  r->restore = json_object();
  if (r->restore == NULL)
    return ICE_ENOMEM;
  json_array_foreach(records, i, rec) {
    const char *key = json_string_value(json_object_get(rec, "key"));
    const char *id = json_string_value(json_object_get(rec, "run_id"));
    if (key != NULL && (id == NULL || strcmp(id, r->id) == 0) &&
        json_object_set(r->restore, key, rec) != 0)
      return ICE_ENOMEM;
  }
  return 0;
}

/* The run a restore array is of, when the caller did not say: the run of
 * its first record (a child's records come after its parent's first). */
static const char *restored_id(json_t *all) {
  if (json_is_array(all))
    return json_string_value(json_object_get(json_array_get(all, 0), "run_id"));
  return NULL;
}

static int check_inputs(ice_workflow_t *wf, json_t *inputs,
                        ice_diags_t *diags) {
  int bad;

  if (inputs != NULL && !json_is_object(inputs)) {
    ice__diags_add(diags, wf->file, 0, 0, "run inputs must be a JSON object");
    return ICE_EINPUT;
  }
  /* Declared inputs (SPEC §1.1) and input_schema both apply; every
   * problem is reported. */
  bad = ice__inputs_check(wf, inputs, diags);
  if (wf->input_schema != NULL) {
    ice__err_t err;
    json_t *in = inputs != NULL ? json_incref(inputs) : json_object();
    int rc = ice__schema_check(wf->input_schema, in, &err);
    json_decref(in);
    if (rc != 0) {
      char msg[640];
      snprintf(msg, sizeof(msg), "inputs do not match input_schema: %s",
               err.msg);
      ice__diags_add(diags, wf->file, 0, 0, msg);
      return ICE_EINPUT;
    }
  }
  return bad;
}

static int run_new(ice_engine_t *e, ice_workflow_t *wf,
                   const ice_run_opts_t *opts, ice_run_t *parent,
                   const char *id, ice_run_t **out, ice_diags_t *diags) {
  ice_run_t *r;
  json_t *inputs = opts != NULL ? opts->inputs : NULL;
  json_t *restore = opts != NULL ? opts->restore : NULL;
  int max_parallel;
  int rc;

  *out = NULL;
  if (e == NULL || wf == NULL)
    return ICE_EINVAL;
  if ((rc = check_inputs(wf, inputs, diags)) != 0)
    return rc;
  r = ice__calloc(1, sizeof(*r));
  if (r == NULL)
    return ICE_ENOMEM;
  r->engine = e;
  r->wf = wf;
  ice__workflow_ref(wf);
  e->runs++;
  r->inputs = inputs != NULL ? json_incref(inputs) : json_object();
  r->tallies = json_object();
  r->parent = parent;
  r->suspend_after_ms = opts != NULL && opts->suspend_after >= 0
                            ? opts->suspend_after * 1000
                            : -1;
  r->commit = opts != NULL ? opts->commit : NULL;
  r->commit_data = opts != NULL ? opts->commit_data : NULL;
  r->seq = opts != NULL ? opts->seq : 0;
  r->answers = opts != NULL ? json_incref(opts->answers) : NULL;
  if (opts != NULL) {
    r->cache_get = opts->cache_get;
    r->cache_put = opts->cache_put;
    r->cache_data = opts->cache_data;
  }
  r->on_finish = run_finish;
  r->release = ice_run_free;
  if (id == NULL && opts != NULL)
    id = opts->run_id != NULL ? opts->run_id : restored_id(restore);
  r->id = id != NULL ? ice__strdup(id) : make_id(e);
  max_parallel = opts != NULL && opts->max_parallel > 0 ? opts->max_parallel
                                                        : wf->max_parallel;
  rc = ice__frame_new(r, 0, NULL, NULL, -1, (uint32_t)max_parallel, top_done,
                      NULL, &r->top);
  if (rc == 0 && r->id != NULL &&
      (json_is_array(restore) || json_is_object(restore))) {
    /* Child runs find their own records in the same list. */
    r->restore_all = json_incref(restore);
    rc = index_restore(r, restore);
  }
  if (rc == 0)
    rc = ice__pools_open(r);
  /* What run_finish hands out when the result cannot be built: a run must
   * end with a result, and memory may be short then. */
  if (rc == 0 && r->id != NULL)
    r->spare_result = json_pack(
        "{s:s,s:s,s:s,s:b,s:{},s:{},s:[s]}", "run_id", r->id, "workflow",
        wf->name, "status", "failed", "success", 0, "output", "nodes", "errors",
        "out of memory: the run's result could not be built");
  if (rc != 0 || r->inputs == NULL || r->tallies == NULL || r->id == NULL ||
      r->spare_result == NULL) {
    ice_run_free(r);
    return rc != 0 && rc != ICE_EINVAL ? rc : ICE_ENOMEM;
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

int ice_run_new(ice_engine_t *e, ice_workflow_t *wf, const ice_run_opts_t *opts,
                ice_run_t **out, ice_diags_t *diags) {
  return run_new(e, wf, opts, NULL, NULL, out, diags);
}

const char *ice_run_id(const ice_run_t *r) {
  return r->id;
}

int ice_run_finished(const ice_run_t *r) {
  return r->ended;
}

int ice_run_start(ice_run_t *r, ice_run_done_cb done, void *data) {
  int resumed;

  if (r == NULL || r->started)
    return ICE_EINVAL;
  r->started = 1;
  r->done = done;
  r->done_data = data;
  r->t0_ms = ice__engine_mono_ms(r->engine);
  resumed = r->restore != NULL;
  ICE__EMIT(
      r, resumed ? ICE__EV_WORKFLOW_RESUMED : ICE__EV_WORKFLOW_STARTED, NULL, 0,
      ice__with_parent(r, json_pack("{s:s,s:I}", "workflow", r->wf->name,
                                    "nodes", (json_int_t)r->wf->scopes[0].n)));
  ice__frame_start(r->top);
  ice__sched_kick(r);
  return 0;
}

int ice_run_execute(ice_run_t *r) {
  int rc = ice_run_start(r, NULL, NULL);

  if (rc != 0)
    return rc;
  while (!r->ended) {
    if (uv_run(r->engine->loop, UV_RUN_ONCE) == 0 && !r->ended)
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
  if (r->muted)
    return 0; /* stopping as paused or waiting already */
  r->in_drain++;
  ice__frame_stop(r->top);
  r->in_drain--;
  ice__sched_kick(r);
  return 0;
}

int ice_run_abort(ice_run_t *r) {
  if (r == NULL || !r->started)
    return ICE_EINVAL;
  if (r->finished || r->cancelled)
    return 0;
  r->aborted = 1;
  return ice_run_cancel(r);
}

int ice_run_pause(ice_run_t *r) {
  if (r == NULL || !r->started)
    return ICE_EINVAL;
  if (r->finished || r->cancelled || r->stop != ICE__STOP_NONE)
    return 0;
  r->stop = ICE__STOP_PAUSE;
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

json_t *ice_run_output(ice_run_t *r, const char *node_id) {
  const ice__node_t *n = ice__workflow_node(r->wf, node_id);

  if (n == NULL || n->scope != 0 || r->out_pos == NULL ||
      r->out_pos[n->local] == 0)
    return NULL;
  return r->top->slots[n->local].output;
}

/* ---- the run's output --------------------------------------------------- */

int ice__run_output_add(ice_run_t *r, uint32_t k) {
  if (r->out_pos == NULL &&
      (r->out_pos = ice__calloc(r->top->n, sizeof(uint32_t))) == NULL)
    return ICE_ENOMEM;
  if (r->out_pos[k] != 0)
    return 0; /* it keeps its place, as a set of an existing key does */
  if (r->nout == r->out_cap && r->out_live < r->nout / 2) {
    /* Mostly dead entries (recursive iterations): compacted in place. */
    uint32_t n = 0;
    for (uint32_t p = 0; p < r->nout; p++) {
      uint32_t j = r->out_order[p];
      if (r->out_pos[j] == p + 1) {
        r->out_order[n++] = j;
        r->out_pos[j] = n;
      }
    }
    r->nout = n;
  }
  if (r->nout == r->out_cap) {
    uint32_t ncap = r->out_cap == 0 ? 64 : r->out_cap * 2;
    uint32_t *no = ice__realloc(r->out_order, ncap * sizeof(uint32_t));
    if (no == NULL)
      return ICE_ENOMEM;
    r->out_order = no;
    r->out_cap = ncap;
  }
  r->out_order[r->nout++] = k;
  r->out_pos[k] = r->nout;
  r->out_live++;
  return 0;
}

void ice__run_output_del(ice_run_t *r, uint32_t k) {
  if (r->out_pos != NULL && r->out_pos[k] != 0) {
    r->out_pos[k] = 0;
    r->out_live--;
  }
}

/* The live entries of the output, in order: for (p = 0; next_out(r, &p,
 * &k);). */
static int next_out(const ice_run_t *r, uint32_t *p, uint32_t *k) {
  for (; *p < r->nout; (*p)++) {
    uint32_t j = r->out_order[*p];
    if (r->out_pos[j] == *p + 1) {
      *k = j;
      (*p)++;
      return 1;
    }
  }
  return 0;
}

static const char *top_id(const ice_run_t *r, uint32_t k) {
  return r->wf->nodes[r->top->scope->nodes[k]].id;
}

json_t *ice__run_outputs(const ice_run_t *r) {
  json_t *o = json_object();
  uint32_t p = 0, k;

  while (o != NULL && next_out(r, &p, &k)) {
    /* Ids are checked ASCII names (load.c). */
    if (json_object_set_nocheck(o, top_id(r, k), r->top->slots[k].output) !=
        0) {
      json_decref(o);
      return NULL;
    }
  }
  return o;
}

/* The length of the output's compact text, as ice__json_size gives it for
 * ice__run_outputs(r); SIZE_MAX when over cap. */
static size_t outputs_size(const ice_run_t *r, size_t cap) {
  size_t total = 2;
  uint32_t p = 0, k;

  while (next_out(r, &p, &k)) {
    const char *id = top_id(r, k);
    size_t v;
    total += ice__json_quoted_size(id, strlen(id)) + (total > 2 ? 2 : 1);
    if (total > cap ||
        (v = ice__json_size(r->top->slots[k].output, cap - total)) == SIZE_MAX)
      return SIZE_MAX;
    total += v;
  }
  return total <= cap ? total : SIZE_MAX;
}

/* Writes the output's text at `level`, as ice__jw_value would write
 * ice__run_outputs(r). */
static void write_outputs(ice__jw_t *w, const ice_run_t *r, size_t level) {
  uint32_t p = 0, k;
  int first = 1;

  while (next_out(r, &p, &k)) {
    if (first)
      ice__jw_raw(w, "{", 1);
    ice__jw_member(w, level + 1, first, top_id(r, k));
    ice__jw_value(w, r->top->slots[k].output, level + 1);
    first = 0;
  }
  if (first)
    ice__jw_raw(w, "{}", 2);
  else
    ice__jw_close(w, level, '}');
}

/* ---- child runs --------------------------------------------------------- */

/* FNV-1a, for child run ids that a restore finds again. */
static uint32_t hash32(const char *s) {
  uint32_t h = 2166136261u;

  for (; *s != '\0'; s++)
    h = (h ^ (unsigned char)*s) * 16777619u;
  return h;
}

int ice__task_child_run(ice_task_t *t, ice_workflow_t *wf, json_t *inputs,
                        ice_run_t **out, ice_diags_t *diags) {
  ice_run_t *p = t->run;
  ice_run_opts_t opts = ICE_RUN_OPTS_INIT;
  char *key = ice__instance_key(t->frame, t->local);
  char *id = NULL;
  int rc;

  *out = NULL;
  /* The parent's id and the node instance's key name the child, so that a
   * restored parent finds its children's records again. */
  if (key == NULL ||
      asprintf(&id, "%s.%08x", p->id, (unsigned)hash32(key)) < 0) {
    ice__free(key);
    return ICE_ENOMEM;
  }
  ice__free(key);
  opts.inputs = inputs;
  opts.commit = p->commit;
  opts.commit_data = p->commit_data;
  opts.restore = p->restore_all;
  opts.answers = p->answers;
  opts.cache_get = p->cache_get;
  opts.cache_put = p->cache_put;
  opts.cache_data = p->cache_data;
  opts.suspend_after = p->suspend_after_ms < 0 ? -1 : 0;
  rc = run_new(p->engine, wf, &opts, p, id, out, diags);
  free(id);
  if (rc != 0)
    return rc;
  (*out)->depth = p->depth + 1;
  (*out)->parent_run_id = ice__strdup(p->id);
  (*out)->parent_node_id = t->node->id;
  return 0;
}

int ice__task_run_depth(const ice_task_t *t) {
  return t->run->depth;
}

void ice__task_add_child_usage(ice_task_t *t, const ice_run_t *child) {
  ice_task_usage(t, (long long)child->tokens, child->cost_usd);
}

/* ---- the result --------------------------------------------------------- */

void ice__run_fault(ice_run_t *r, const char *what) {
  if (r->fault == NULL)
    r->fault = what;
  r->halt_pending = 1;
  ice__sched_kick(r);
}

static const char *status_of(const ice_run_t *r, json_int_t failed) {
  if (r->end_commit_error != NULL || r->end_fault != NULL)
    return "failed";
  if (r->stop == ICE__STOP_PAUSE)
    return "paused";
  if (r->stop == ICE__STOP_SUSPEND)
    return "waiting";
  if (r->aborted)
    return "aborted";
  if (r->cancelled)
    return "cancelled";
  if (failed > 0)
    return "failed";
  return "completed";
}

/* Values that many node entries of a result hold alike: the status
 * names, small attempt counts, and the duration just used (most nodes of
 * a large run take the same 0.003 ms). Shared, not copied: a result is
 * never changed in place, and each shared value costs one allocation
 * instead of one per node. */
typedef struct {
  json_t *names[ICE__ST_COUNT];
  json_t *attempts[8];
  json_t *ms; /* the last duration_ms */
} shared_t;

static void shared_free(shared_t *sh) {
  for (int i = 0; i < ICE__ST_COUNT; i++)
    json_decref(sh->names[i]);
  for (int i = 0; i < 8; i++)
    json_decref(sh->attempts[i]);
  json_decref(sh->ms);
}

/* A new reference to json_real(ms), shared with the previous node's when
 * equal. */
static json_t *shared_ms(shared_t *sh, double ms) {
  if (sh->ms == NULL || json_real_value(sh->ms) != ms ||
      signbit(json_real_value(sh->ms)) != signbit(ms)) {
    json_decref(sh->ms);
    sh->ms = json_real(ms);
  }
  return json_incref(sh->ms);
}

/* {"status": ..., "attempts": ..., "duration_ms": ...} of one node, built
 * without json_pack's format string (once per node of a large run). NULL
 * on ENOMEM. */
static json_t *node_entry(const ice__slot_t *s, shared_t *sh) {
  /* READY is the scheduler's: to a user, still pending. */
  int st = s->state == ICE__ST_READY ? ICE__ST_PENDING : s->state;
  json_t *e = json_object(), *name = NULL, *att;
  int rc = 0;

  if (e == NULL)
    return NULL;
  if (st >= 0 && st < ICE__ST_COUNT) {
    if (sh->names[st] == NULL)
      sh->names[st] = json_string(ice__state_name(st));
    name = json_incref(sh->names[st]);
  } else {
    name = json_string(ice__state_name(st)); /* "" */
  }
  if (s->attempts < 8) {
    if (sh->attempts[s->attempts] == NULL)
      sh->attempts[s->attempts] = json_integer((int)s->attempts);
    att = json_incref(sh->attempts[s->attempts]);
  } else {
    att = json_integer((int)s->attempts);
  }
  /* Each set takes its value, even when another failed; a value that
   * could not be made (ENOMEM) fails its set, and so the entry: a result
   * missing a field would look complete. */
  rc |= json_object_set_new_nocheck(e, "status", name);
  rc |= json_object_set_new_nocheck(e, "attempts", att);
  rc |= json_object_set_new_nocheck(
      e, "duration_ms",
      shared_ms(sh,
                s->state == ICE__ST_SKIPPED ? 0.0 : ice__ms3(s->duration_ms)));
  if (rc != 0) {
    json_decref(e);
    return NULL;
  }
  return e;
}

/* The result of SPEC §11.1, or NULL on ENOMEM (run_finish then hands out
 * the spare): a result missing a node would look complete. */
static json_t *build_result(ice_run_t *r) {
  const ice__frame_t *f = r->top;
  json_t *nodes = json_object(), *errors = json_array(), *res;
  json_t *output = NULL; /* the rendered outputs, when there are */
  json_t *outs = NULL;   /* the run's output */
  shared_t sh = {{NULL}, {NULL}, NULL};
  json_int_t completed = 0, failed = 0, skipped = 0, cancelled = 0;
  const char *status;
  int bad = nodes == NULL || errors == NULL;

  for (uint32_t k = 0; k < f->n && !bad; k++) {
    const ice__slot_t *s = &f->slots[k];
    const ice__node_t *n = &r->wf->nodes[f->scope->nodes[k]];
    json_t *e = node_entry(s, &sh);
    if (e == NULL) {
      bad = 1;
      break;
    }
    if (s->tokens != 0 || s->cost_usd != 0) {
      bad |= json_object_set_new(e, "tokens", json_integer(s->tokens));
      bad |= json_object_set_new(e, "cost_usd", json_real(s->cost_usd));
    }
    switch (s->state) {
    case ICE__ST_COMPLETED:
      completed++;
      break;
    case ICE__ST_FAILED: {
      char *line = NULL;
      failed++;
      bad |= json_object_set_new(
          e, "error",
          json_pack(
              "{s:s,s:o}", "kind", ice__kind_name(s->err_kind), "message",
              ice__json_lossy_cstr(s->err_msg != NULL ? s->err_msg : "")));
      if (asprintf(&line, "Node %s failed: %s", n->id,
                   s->err_msg != NULL ? s->err_msg : "") < 0) {
        bad = 1;
        break;
      }
      bad |= json_array_append_new(errors, ice__json_lossy_cstr(line));
      free(line);
      break;
    }
    case ICE__ST_SKIPPED:
      skipped++;
      bad |= json_object_set_new(e, "reason",
                                 json_string(ice__skip_name(s->skip)));
      break;
    case ICE__ST_CANCELLED:
      cancelled++;
      break;
    default: /* a paused or waiting run's unfinished nodes */
      break;
    }
    /* Ids are checked ASCII names (load.c). */
    bad |= json_object_set_new_nocheck(nodes, n->id, e);
  }
  shared_free(&sh);
  if (!bad && r->end_commit_error != NULL)
    bad |= json_array_append_new(
        errors, json_sprintf("Commit: %s", r->end_commit_error));
  if (!bad && r->end_fault != NULL)
    bad |= json_array_append_new(errors, json_string(r->end_fault));
  status = status_of(r, failed);
  if (!bad && (outs = ice__run_outputs(r)) == NULL)
    bad = 1;
  /* A bundle workflow's `outputs` (SPEC §1.1) are the output of a run that
   * would otherwise succeed; one that fails to render fails the run. */
  if (!bad && r->wf->outputs != NULL && strcmp(status, "completed") == 0 &&
      ice__outputs_render(r->wf, r->inputs, outs, &output, errors) != 0)
    status = "failed";
  if (bad) {
    json_decref(nodes);
    json_decref(errors);
    json_decref(outs);
    return NULL;
  }
  res = json_pack(
      "{s:s,s:s,s:s,s:b,s:O,s:o,s:o,s:{s:f,s:I,s:I,s:I,s:I,s:I,s:I,s:f}}",
      "run_id", r->id, "workflow", r->wf->name, "status", status, "success",
      strcmp(status, "completed") == 0, "output",
      output != NULL ? output : outs, "nodes", nodes, "errors", errors,
      "metrics", "duration_ms", ice__ms3(r->duration_ms), "nodes_completed",
      completed, "nodes_failed", failed, "nodes_skipped", skipped,
      "nodes_cancelled", cancelled, "retries", (json_int_t)r->retries, "tokens",
      r->tokens, "cost_usd", r->cost_usd);
  json_decref(output);
  json_decref(outs);
  return res;
}

/* The top-level nodes that failed (the status depends on it). */
static json_int_t count_failed(const ice_run_t *r) {
  const ice__frame_t *f = r->top;
  json_int_t failed = 0;

  for (uint32_t k = 0; k < f->n; k++)
    failed += f->slots[k].state == ICE__ST_FAILED;
  return failed;
}

static void really_free(ice_run_t *r);

static void run_finish(ice_run_t *r) {
  const char *status;
  int success;

  if (r->ended)
    return;
  r->ended = 1;
  r->end_fault = r->fault;
  r->end_commit_error = r->commit_error;
  r->duration_ms = ice__engine_mono_ms(r->engine) - r->t0_ms;
  /* Built now unless deferred: a bundle's outputs can fail to render,
   * which fails the run, and a paused or waiting run's parked attempts
   * still finish after its end. */
  if (!r->defer_result || r->wf->outputs != NULL || r->stop != ICE__STOP_NONE) {
    r->result = build_result(r);
    if (r->result == NULL) {
      ice__run_fault(r, "out of memory: the run's result could not be built");
      r->result = r->spare_result;
      r->spare_result = NULL;
    }
  }
  if (r->result != NULL) {
    status = json_string_value(json_object_get(r->result, "status"));
    success = json_is_true(json_object_get(r->result, "success"));
  } else {
    status = status_of(r, count_failed(r));
    success = strcmp(status, "completed") == 0;
  }
  if (r->stop != ICE__STOP_NONE && r->commit_error == NULL && r->fault == NULL)
    ICE__EMIT(r, ICE__EV_WORKFLOW_PAUSED, NULL, 0,
              ice__with_parent(r, json_pack("{s:s}", "status", status)));
  else
    ICE__EMIT(r, ICE__EV_WORKFLOW_COMPLETED, NULL, 0,
              ice__with_parent(r, json_pack("{s:s,s:b,s:f}", "status", status,
                                            "success", success, "duration_ms",
                                            ice__ms3(r->duration_ms))));
  if (r->done != NULL) {
    r->in_drain = 1; /* a done callback that frees the run is deferred */
    r->done(r, r->done_data);
    r->in_drain = 0;
  }
  if (r->free_requested)
    really_free(r);
}

int ice_run_defer_result(ice_run_t *r) {
  if (r == NULL || r->started)
    return ICE_EINVAL;
  r->defer_result = 1;
  return 0;
}

json_t *ice_run_result(ice_run_t *r) {
  if (r->result == NULL && r->ended) {
    r->result = build_result(r);
    if (r->result == NULL) { /* ENOMEM: the run is over, say so */
      r->result = r->spare_result;
      r->spare_result = NULL;
    }
  }
  return r->result;
}

const char *ice_run_status(ice_run_t *r) {
  if (r == NULL || !r->ended)
    return NULL;
  if (r->result != NULL)
    return json_string_value(json_object_get(r->result, "status"));
  return status_of(r, count_failed(r));
}

/* ---- the result, written without being built ---------------------------- */

/* Adds the most bytes s can take as a JSON string (each byte escaped as
 * \u00XX at worst) to *total; 0, or -1 once *total is over cap. */
static int add_str(size_t *total, const char *s, size_t extra, size_t cap) {
  *total += 6 * strlen(s) + 2 + extra;
  return *total > cap ? -1 : 0;
}

/* 1 when the compact text of r's result certainly takes at most cap bytes
 * and its values are ones write_result writes as build_result would build
 * them (finite reals, a UTF-8 run id); else 0, and the result is built
 * and checked exactly. */
static int result_fits(const ice_run_t *r, size_t cap) {
  const ice__frame_t *f = r->top;
  size_t total = outputs_size(r, cap);

  if (total == SIZE_MAX || !isfinite(r->duration_ms) ||
      !isfinite(r->cost_usd) ||
      ice__utf8_valid_prefix(r->id, strlen(r->id)) != strlen(r->id))
    return 0;
  /* The keys, the metrics and the punctuation: 400 at most. */
  if (add_str(&total, r->id, 512, cap) != 0 ||
      add_str(&total, r->wf->name, 0, cap) != 0 ||
      (r->end_commit_error != NULL &&
       add_str(&total, r->end_commit_error, 16, cap) != 0) ||
      (r->end_fault != NULL && add_str(&total, r->end_fault, 0, cap) != 0))
    return 0;
  for (uint32_t k = 0; k < f->n; k++) {
    const ice__slot_t *s = &f->slots[k];
    const char *id = r->wf->nodes[f->scope->nodes[k]].id;
    /* The entry with every field, its reals at 24 characters. */
    if (!isfinite(s->cost_usd) || !isfinite(s->duration_ms) ||
        add_str(&total, id, 256, cap) != 0)
      return 0;
    /* The message is in the entry and in its line of `errors`. */
    if (s->state == ICE__ST_FAILED &&
        (add_str(&total, id, 32, cap) != 0 ||
         add_str(&total, s->err_msg != NULL ? s->err_msg : "", 0, cap) != 0 ||
         add_str(&total, s->err_msg != NULL ? s->err_msg : "", 0, cap) != 0))
      return 0;
  }
  return 1;
}

/* The constant text of an entry up to each of its three values, and its
 * end, for the writer's indent: copied whole, not written key by key (a
 * third of the instructions of printing a large result). */
typedef struct {
  char status[96], attempts[96], ms[96], end[64];
  size_t nstatus, nattempts, nms, nend;
} pieces_t;

/* 0, or -1 for an indent too wide for the pieces (written key by key). */
static int pieces_init(pieces_t *p, int indent) {
  int in3 = indent * 3, in2 = indent * 2;
  const char *nl = indent > 0 ? "\n" : "", *colon = indent > 0 ? ": " : ":";

  if (indent < 0 || indent > 16)
    return -1;
  p->nstatus = (size_t)snprintf(p->status, sizeof(p->status),
                                "{%s%*s\"status\"%s", nl, in3, "", colon);
  p->nattempts = (size_t)snprintf(p->attempts, sizeof(p->attempts),
                                  ",%s%*s\"attempts\"%s", nl, in3, "", colon);
  p->nms = (size_t)snprintf(p->ms, sizeof(p->ms), ",%s%*s\"duration_ms\"%s", nl,
                            in3, "", colon);
  p->nend = (size_t)snprintf(p->end, sizeof(p->end), "%s%*s}", nl, in2, "");
  return 0;
}

/* Writes node k's entry of `nodes`, as node_entry and build_result build
 * it (p: its pieces, or NULL). -1 on ENOMEM. */
static int write_entry(ice__jw_t *w, const ice_run_t *r, uint32_t k,
                       const pieces_t *p) {
  const ice__slot_t *s = &r->top->slots[k];
  const ice__node_t *n = &r->wf->nodes[r->top->scope->nodes[k]];
  int st = s->state == ICE__ST_READY ? ICE__ST_PENDING : s->state;
  double ms = s->state == ICE__ST_SKIPPED ? 0.0 : ice__ms3(s->duration_ms);

  ice__jw_member(w, 2, k == 0, n->id);
  if (p != NULL) {
    ice__jw_raw(w, p->status, p->nstatus);
    ice__jw_string(w, ice__state_name(st));
    ice__jw_raw(w, p->attempts, p->nattempts);
    ice__jw_int(w, (int)s->attempts);
    ice__jw_raw(w, p->ms, p->nms);
    ice__jw_real(w, ms);
  } else {
    ice__jw_raw(w, "{", 1);
    ice__jw_member(w, 3, 1, "status");
    ice__jw_string(w, ice__state_name(st));
    ice__jw_member(w, 3, 0, "attempts");
    ice__jw_int(w, (int)s->attempts);
    ice__jw_member(w, 3, 0, "duration_ms");
    ice__jw_real(w, ms);
  }
  if (s->tokens != 0 || s->cost_usd != 0) {
    ice__jw_member(w, 3, 0, "tokens");
    ice__jw_int(w, s->tokens);
    ice__jw_member(w, 3, 0, "cost_usd");
    ice__jw_real(w, s->cost_usd);
  }
  if (s->state == ICE__ST_FAILED) {
    json_t *e =
        json_pack("{s:s,s:o}", "kind", ice__kind_name(s->err_kind), "message",
                  ice__json_lossy_cstr(s->err_msg != NULL ? s->err_msg : ""));
    if (e == NULL)
      return -1;
    ice__jw_member(w, 3, 0, "error");
    ice__jw_value(w, e, 3);
    json_decref(e);
  } else if (s->state == ICE__ST_SKIPPED) {
    ice__jw_member(w, 3, 0, "reason");
    ice__jw_string(w, ice__skip_name(s->skip));
  }
  if (p != NULL)
    ice__jw_raw(w, p->end, p->nend);
  else
    ice__jw_close(w, 2, '}');
  return 0;
}

/* `errors` as build_result builds it; NULL on ENOMEM. */
static json_t *result_errors(const ice_run_t *r) {
  const ice__frame_t *f = r->top;
  json_t *errors = json_array();
  int bad = errors == NULL;

  for (uint32_t k = 0; k < f->n && !bad; k++) {
    const ice__slot_t *s = &f->slots[k];
    char *line = NULL;
    if (s->state != ICE__ST_FAILED)
      continue;
    if (asprintf(&line, "Node %s failed: %s",
                 r->wf->nodes[f->scope->nodes[k]].id,
                 s->err_msg != NULL ? s->err_msg : "") < 0) {
      bad = 1;
      break;
    }
    bad |= json_array_append_new(errors, ice__json_lossy_cstr(line));
    free(line);
  }
  if (!bad && r->end_commit_error != NULL)
    bad |= json_array_append_new(
        errors, json_sprintf("Commit: %s", r->end_commit_error));
  if (!bad && r->end_fault != NULL)
    bad |= json_array_append_new(errors, json_string(r->end_fault));
  if (bad) {
    json_decref(errors);
    return NULL;
  }
  return errors;
}

/* The text of build_result's object, written from the run's state: a
 * large run's result is never built as jansson values (480 bytes and six
 * allocations per node) only to be printed. 0, or -1. */
static int write_result(const ice_run_t *r, int indent,
                        int (*write)(const char *buf, size_t len, void *data),
                        void *data) {
  const ice__frame_t *f = r->top;
  json_int_t counts[ICE__ST_COUNT] = {0};
  json_t *errors = result_errors(r);
  ice__jw_t *w = errors != NULL ? ice__jw_new(indent, write, data) : NULL;
  const char *status;

  if (w == NULL) {
    json_decref(errors);
    return -1;
  }
  for (uint32_t k = 0; k < f->n; k++) {
    if (f->slots[k].state < ICE__ST_COUNT)
      counts[f->slots[k].state]++;
  }
  status = status_of(r, counts[ICE__ST_FAILED]);
  ice__jw_raw(w, "{", 1);
  ice__jw_member(w, 1, 1, "run_id");
  ice__jw_string(w, r->id);
  ice__jw_member(w, 1, 0, "workflow");
  ice__jw_string(w, r->wf->name);
  ice__jw_member(w, 1, 0, "status");
  ice__jw_string(w, status);
  ice__jw_member(w, 1, 0, "success");
  if (strcmp(status, "completed") == 0)
    ice__jw_raw(w, "true", 4);
  else
    ice__jw_raw(w, "false", 5);
  ice__jw_member(w, 1, 0, "output");
  write_outputs(w, r, 1);
  ice__jw_member(w, 1, 0, "nodes");
  if (f->n == 0) {
    ice__jw_raw(w, "{}", 2);
  } else {
    pieces_t p;
    int fast = pieces_init(&p, indent) == 0;
    ice__jw_raw(w, "{", 1);
    for (uint32_t k = 0; k < f->n; k++) {
      if (write_entry(w, r, k, fast ? &p : NULL) != 0) {
        json_decref(errors);
        ice__jw_end(w);
        return -1;
      }
    }
    ice__jw_close(w, 1, '}');
  }
  ice__jw_member(w, 1, 0, "errors");
  ice__jw_value(w, errors, 1);
  json_decref(errors);
  ice__jw_member(w, 1, 0, "metrics");
  ice__jw_raw(w, "{", 1);
  ice__jw_member(w, 2, 1, "duration_ms");
  ice__jw_real(w, ice__ms3(r->duration_ms));
  ice__jw_member(w, 2, 0, "nodes_completed");
  ice__jw_int(w, counts[ICE__ST_COMPLETED]);
  ice__jw_member(w, 2, 0, "nodes_failed");
  ice__jw_int(w, counts[ICE__ST_FAILED]);
  ice__jw_member(w, 2, 0, "nodes_skipped");
  ice__jw_int(w, counts[ICE__ST_SKIPPED]);
  ice__jw_member(w, 2, 0, "nodes_cancelled");
  ice__jw_int(w, counts[ICE__ST_CANCELLED]);
  ice__jw_member(w, 2, 0, "retries");
  ice__jw_int(w, (long long)r->retries);
  ice__jw_member(w, 2, 0, "tokens");
  ice__jw_int(w, r->tokens);
  ice__jw_member(w, 2, 0, "cost_usd");
  ice__jw_real(w, r->cost_usd);
  ice__jw_close(w, 1, '}');
  ice__jw_close(w, 0, '}');
  return ice__jw_end(w);
}

int ice_run_write_result(ice_run_t *r, int output_only, int indent, size_t cap,
                         int (*write)(const char *buf, size_t len, void *data),
                         void *data) {
  const json_t *shown;

  if (r == NULL || write == NULL || !r->ended)
    return ICE_EINVAL;
  if (r->result == NULL) {
    /* Without a bundle's outputs (built at the end), `output` is the
     * run's own. */
    if (output_only) {
      ice__jw_t *w;
      if (outputs_size(r, cap) == SIZE_MAX)
        return 1;
      if ((w = ice__jw_new(indent, write, data)) == NULL)
        return -1;
      write_outputs(w, r, 0);
      return ice__jw_end(w);
    }
    if (result_fits(r, cap))
      return write_result(r, indent, write, data);
  }
  if (ice_run_result(r) == NULL)
    return -1;
  shown = output_only ? json_object_get(r->result, "output") : r->result;
  if (ice__json_size(shown, cap) == SIZE_MAX)
    return 1;
  return ice_json_write(shown, indent, write, data);
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
  ice__pools_close(r);
  json_decref(r->inputs);
  ice__free(r->out_order);
  ice__free(r->out_pos);
  json_decref(r->result);
  json_decref(r->spare_result);
  json_decref(r->tallies);
  json_decref(r->restore);
  json_decref(r->restore_all);
  json_decref(r->answers);
  ice__free(r->id);
  ice__free(r->parent_run_id);
  ice__free(r->commit_error);
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
  if (r->started && !r->ended) {
    /* Still executing: stop it, free once it is done. */
    ice_run_cancel(r);
    return;
  }
  really_free(r);
}

/* ---- what an attempt may ask of its run ---------------------------------- */

json_t *ice__task_answer(const ice_task_t *t) {
  return json_object_get(t->run->answers, t->node->id);
}

json_t *ice__task_metrics(ice_task_t *t) {
  ice_run_t *r = t->run;
  const ice__frame_t *f = r->top;
  json_int_t done = 0, failed = 0, running = 0;

  /* Top-level nodes, as the result counts them (SPEC §11.1). */
  for (uint32_t k = 0; k < f->n; k++) {
    uint8_t s = f->slots[k].state;
    done += s == ICE__ST_COMPLETED;
    failed += s == ICE__ST_FAILED;
    running += s == ICE__ST_RUNNING || s == ICE__ST_WAITING;
  }
  return json_pack("{s:f,s:I,s:I,s:I,s:I,s:I,s:f,s:I}", "elapsed_seconds",
                   (ice__engine_mono_ms(r->engine) - r->t0_ms) / 1000.0,
                   "nodes_completed", done, "nodes_failed", failed,
                   "nodes_running", running, "retries", (json_int_t)r->retries,
                   "tokens", r->tokens, "cost", r->cost_usd, "llm_calls",
                   (json_int_t)r->llm_calls);
}

void ice__task_pause_run(ice_task_t *t) {
  ice_run_pause(t->run);
}

void ice__task_abort_run(ice_task_t *t) {
  ice_run_abort(t->run);
}
