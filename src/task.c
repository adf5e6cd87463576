/* What an executor sees of one attempt: its node, its context (SPEC §3.1)
 * and the calls to log and render. Context names are resolved on demand,
 * highest precedence first, so that no context object is built unless an
 * executor asks for the whole thing (ice_task_context). Completing an
 * attempt is in sched.c. */
#include "core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *ice_task_node_id(const ice_task_t *t) {
  return t->node->id;
}
json_t *ice_task_config(const ice_task_t *t) {
  ice_workflow_t *wf = t->run->wf;
  ice__node_t *n;
  json_t *def;

  if (t->node->def != NULL)
    return t->node->def;
  /* A tool node whose object a streamed load freed (load_stream.c): made
   * again on first use and kept with the workflow's other node objects.
   * The workflow is read-only for runs, but for this: runs share it on
   * one loop, so no other thread sees it change. */
  if (t->node < wf->nodes || t->node >= wf->nodes + wf->nnodes)
    return NULL;
  n = &wf->nodes[t->node - wf->nodes];
  if ((def = ice__tool_config(wf, n)) == NULL)
    return NULL; /* out of memory */
  if (wf->norm == NULL && (wf->norm = json_array()) == NULL) {
    json_decref(def);
    return NULL;
  }
  if (json_array_append_new(wf->norm, def) != 0)
    return NULL;
  n->def = def;
  return def;
}
int ice_task_attempt(const ice_task_t *t) {
  return t->attempt;
}
long ice_task_index(const ice_task_t *t) {
  if (t->abandoned)
    return -1; /* its frame may be gone */
  for (const ice__frame_t *f = t->frame; f != NULL;
       f = f->parent != NULL ? f->parent->frame : NULL) {
    if (f->index >= 0)
      return f->index;
  }
  return -1;
}
uv_loop_t *ice_task_loop(const ice_task_t *t) {
  return t->run->engine->loop;
}
ice_engine_t *ice_task_engine(const ice_task_t *t) {
  return t->run->engine;
}
void ice_task_set_data(ice_task_t *t, void *data) {
  t->data = data;
}
void *ice_task_data(const ice_task_t *t) {
  return t->data;
}
void *ice_task_executor_data(const ice_task_t *t) {
  return t->node->ex->data;
}
void *ice_task_compiled(const ice_task_t *t) {
  return t->node->xdata;
}
const char *ice_task_key(ice_task_t *t) {
  if (t->key == NULL && !t->abandoned)
    t->key = ice__instance_key(t->frame, t->local);
  return t->key;
}
void ice__task_set_xstate(ice_task_t *t, void *x) {
  t->xstate = x;
}
void *ice__task_xstate(const ice_task_t *t) {
  return t->xstate;
}
void ice__task_keep_input(ice_task_t *t, json_t *input) {
  json_decref(t->input);
  t->input = input;
}
json_t *ice__task_input(const ice_task_t *t) {
  return t->input;
}
const ice__node_t *ice__task_node(const ice_task_t *t) {
  return t->node;
}
const ice_workflow_t *ice__task_workflow(const ice_task_t *t) {
  return t->run->wf;
}

void ice_task_usage(ice_task_t *t, long long tokens, double cost_usd) {
  if (t == NULL || t->abandoned)
    return;
  /* The node, each enclosing control-flow node, and the run; a child
   * run's total reaches its parent through ice__task_add_child_usage. */
  for (ice_task_t *cur = t; cur != NULL; cur = cur->frame->parent) {
    ice__slot_t *s = &cur->frame->slots[cur->local];
    s->tokens += tokens;
    s->cost_usd += cost_usd;
  }
  t->run->tokens += tokens;
  t->run->cost_usd += cost_usd;
}

int ice__task_wants(const ice_task_t *t, ice__event_t type) {
  return ice__bus_wants_type(t->run->engine, type);
}

void ice__task_emit(ice_task_t *t, ice__event_t type, json_t *fields) {
  if (t->abandoned) {
    json_decref(fields);
    return;
  }
  /* fields is built already: drop it when no one listens. */
  if (ice__bus_wants_type(t->run->engine, type))
    ice__emit(t->run, type, t->frame, t->local, fields);
  else {
    t->run->seq++;
    json_decref(fields);
  }
}

void ice__task_fault(ice_task_t *t) {
  ice__run_fault(t->run, ICE__FAULT_INTERNAL);
}

json_int_t ice__task_tally(ice_task_t *t) {
  char key[512];
  size_t len;
  json_int_t n;

  /* Per node id, and per index inside a loop: with loops in loops, per
   * chain of indexes, innermost first. */
  len = (size_t)snprintf(key, sizeof(key), "%s", t->node->id);
  for (const ice__frame_t *f = t->frame; f != NULL && len < sizeof(key);
       f = f->parent != NULL ? f->parent->frame : NULL) {
    if (f->index >= 0)
      len += (size_t)snprintf(key + len, sizeof(key) - len, "#%ld", f->index);
  }
  n = json_integer_value(json_object_get(t->run->tallies, key)) + 1;
  if (json_object_set_new(t->run->tallies, key, json_integer(n)) != 0)
    ice__run_fault(t->run, "out of memory: a call count was lost");
  return n;
}

/* A completed sibling (nested frames) or direct dependency (top level)
 * named `name`; NULL otherwise. */
static json_t *dep_output(const ice_task_t *t, const char *name, size_t len) {
  const ice__frame_t *f = t->frame;
  uint32_t g = ice__workflow_find(t->run->wf, name, len);
  const ice__node_t *d;

  if (g == ICE__NONE)
    return NULL;
  d = &t->run->wf->nodes[g];
  if (d->scope != t->node->scope || d == t->node)
    return NULL;
  if (f->parent == NULL && d->rec_owner != t->local) {
    /* Top level: direct dependencies only (deps are sorted); a recursive
     * node also sees every node of its body. */
    uint32_t lo = 0, hi = t->node->ndeps;
    while (lo < hi) {
      uint32_t mid = (lo + hi) / 2;
      if (t->node->deps[mid] < d->local)
        lo = mid + 1;
      else
        hi = mid;
    }
    if (lo == t->node->ndeps || t->node->deps[lo] != d->local)
      return NULL;
  }
  /* Only completed nodes have outputs, and a recursive node between
   * iterations, whose body sees its intermediate output. */
  return f->slots[d->local].output;
}

json_t *ice__task_lookup(void *data, const char *name, size_t len) {
  ice_task_t *t = data;
  const ice__frame_t *f = t->frame;
  json_t *v;

  if (t->mapped != NULL && (v = json_object_getn(t->mapped, name, len)) != NULL)
    return v;
  if ((v = dep_output(t, name, len)) != NULL)
    return v;
  if (f->extras != NULL && (v = json_object_getn(f->extras, name, len)) != NULL)
    return v;
  if (f->parent != NULL)
    return ice__task_lookup(f->parent, name, len);
  if (len == 6 && memcmp(name, "inputs", 6) == 0)
    return t->run->inputs;
  return json_object_getn(t->run->inputs, name, len);
}

json_t *ice_task_lookup(ice_task_t *t, const char *name) {
  if (t->abandoned)
    return NULL;
  return ice__task_lookup(t, name, strlen(name));
}

/* Follows "a.b.0" into v; "" or "." is v itself. Borrowed, or NULL. */
static json_t *follow(json_t *v, const char *path) {
  const char *p = path;

  if (p[0] == '\0' || strcmp(p, ".") == 0)
    return v;
  while (v != NULL && *p != '\0') {
    const char *dot = strchr(p, '.');
    size_t n = dot != NULL ? (size_t)(dot - p) : strlen(p);
    if (json_is_object(v)) {
      v = json_object_getn(v, p, n);
    } else if (json_is_array(v) && n > 0 && n < 20) {
      char buf[24], *end;
      long idx;
      memcpy(buf, p, n);
      buf[n] = '\0';
      idx = strtol(buf, &end, 10);
      if (*end != '\0')
        return NULL;
      if (idx < 0)
        idx += (long)json_array_size(v);
      v = idx < 0 ? NULL : json_array_get(v, (size_t)idx);
    } else {
      return NULL;
    }
    p += n;
    if (*p == '.')
      p++;
  }
  return v;
}

int ice__task_map_inputs(ice_task_t *t, ice__err_t *err) {
  const ice__node_t *n = t->node;
  json_t *m = json_object();

  if (m == NULL)
    return ice__err_set(err, ICE__KIND_INTERNAL, 0, "out of memory");
  for (uint32_t i = 0; i < n->nmaps; i++) {
    const ice__mapping_t *mp = &n->maps[i];
    json_t *v;
    if (mp->src == ICE__NONE) {
      v = mp->literal;
    } else {
      const ice__slot_t *s = &t->frame->slots[mp->src];
      const char *src_id =
          t->run->wf->nodes[t->frame->scope->nodes[mp->src]].id;
      if (s->state != ICE__ST_COMPLETED) {
        json_decref(m);
        return ice__err_set(err, ICE__KIND_INPUT_MAPPING, 0,
                            "input_mappings.%s: source '%s' did not complete",
                            mp->key, src_id);
      }
      v = follow(s->output, mp->path);
      if (v == NULL) {
        json_decref(m);
        return ice__err_set(err, ICE__KIND_INPUT_MAPPING, 0,
                            "input_mappings.%s: path '%s' not found in the "
                            "output of '%s'",
                            mp->key, mp->path, src_id);
      }
    }
    if (json_object_set_nocheck(m, mp->key, v) != 0) {
      json_decref(m);
      return ice__err_set(err, ICE__KIND_RESOURCE_LIMIT, 0, "out of memory");
    }
  }
  t->mapped = m;
  return 0;
}

json_t *ice__json_follow(json_t *v, const char *path) {
  return follow(v, path);
}

/* Builds the context object, lowest precedence first. */
static int fill_context(ice_task_t *t, json_t *ctx) {
  const ice__frame_t *f = t->frame;
  const ice__node_t *n = t->node;

  if (f->parent != NULL) {
    if (fill_context(f->parent, ctx) != 0)
      return -1;
  } else {
    if (json_object_update(ctx, t->run->inputs) != 0 ||
        json_object_set(ctx, "inputs", t->run->inputs) != 0)
      return -1;
  }
  if (f->extras != NULL && json_object_update(ctx, f->extras) != 0)
    return -1;
  if (f->parent == NULL) {
    for (uint32_t j = 0; j < n->ndeps; j++) {
      const ice__slot_t *s = &f->slots[n->deps[j]];
      if (s->output != NULL &&
          json_object_set(ctx,
                          t->run->wf->nodes[f->scope->nodes[n->deps[j]]].id,
                          s->output) != 0)
        return -1;
    }
    for (uint32_t j = 0; j < n->nbody; j++) {
      const ice__slot_t *s = &f->slots[n->body[j]];
      if (s->output != NULL &&
          json_object_set(ctx,
                          t->run->wf->nodes[f->scope->nodes[n->body[j]]].id,
                          s->output) != 0)
        return -1;
    }
  } else {
    for (uint32_t k = 0; k < f->n; k++) {
      const ice__slot_t *s = &f->slots[k];
      if (k != t->local && s->output != NULL &&
          json_object_set(ctx, t->run->wf->nodes[f->scope->nodes[k]].id,
                          s->output) != 0)
        return -1;
    }
  }
  if (t->mapped != NULL && json_object_update(ctx, t->mapped) != 0)
    return -1;
  return 0;
}

json_t *ice_task_context(ice_task_t *t) {
  json_t *ctx = json_object();

  if (t->abandoned)
    return ctx;
  if (ctx != NULL && fill_context(t, ctx) != 0) {
    json_decref(ctx);
    return NULL;
  }
  return ctx;
}

int ice_task_render(ice_task_t *t, json_t *value, json_t **out, char *msg,
                    size_t msglen) {
  ice__tmpl_t *tm = NULL;
  ice__err_t err;
  int rc;

  *out = NULL;
  if (t->abandoned) {
    snprintf(msg, msglen, "the attempt was abandoned");
    return -1;
  }
  if (ice__tmpl_compile(value, &tm, &err) != 0) {
    snprintf(msg, msglen, "%s", err.msg);
    return -1;
  }
  rc = ice__tmpl_render_or_share(tm, value, ice__task_lookup, t, out, &err);
  ice__tmpl_free(tm);
  if (rc != 0)
    snprintf(msg, msglen, "%s", err.msg);
  return rc;
}

void ice_task_log(ice_task_t *t, const char *stream, const char *line,
                  size_t len) {
  ice_run_t *r = t->run;

  if (t->abandoned)
    return;
  ICE__EMIT(r, ICE__EV_NODE_LOG, t->frame, t->local,
            json_pack("{s:s,s:o}", "stream", stream, "line",
                      ice__json_lossy(line, len)));
}

/* ---- what the scheduler counts of an attempt ---------------------------- */

/* Tasks that are not working now: parked, queued for a pool slot, a
 * control-flow node (its children work), or background. When no other
 * task is active and nothing is queued or ready, the run can go no
 * further by itself. */
int ice__task_idle(const ice_task_t *t) {
  return t->waiting || t->pool_wait || t->background || t->node->nchild > 0;
}

void ice__task_set_flag(ice_task_t *t, int *flag, int value) {
  int was = ice__task_idle(t);

  if (t->call != NULL) {
    /* A call is its parent's work, not a node the run counts. */
    *flag = value;
    return;
  }
  *flag = value;
  t->run->idle += ice__task_idle(t) - was;
}
