/* The `workflow` node (SPEC §7.5) and the child-run machinery it shares
 * with `recursive`'s workflow_ref. The child workflow is loaded once, when
 * the parent is validated; each attempt starts a child run on the same
 * engine, with its own run id and events. */
#include "subworkflow.h"

#include "../engine.h" /* the compile side: the engine's cache of files */
#include "../readfile.h"
#include "flow.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct ice__subwf_s {
  ice_workflow_t *wf;
};

struct ice__subwf_run_s {
  ice_task_t *task;
  ice_run_t *child;
  int suspended; /* the child stopped as waiting or paused */
  ice__subwf_cb cb;
  void *data;
};

ice_workflow_t *ice__subwf_workflow(const ice__subwf_t *s) {
  return s != NULL ? s->wf : NULL;
}

void ice__subwf_free(ice__subwf_t *s) {
  if (s == NULL)
    return;
  ice_workflow_free(s->wf);
  ice__free(s);
}

static int has_suffix(const char *s, const char *suf) {
  size_t n = strlen(s), m = strlen(suf);

  return n >= m && strcmp(s + n - m, suf) == 0;
}

/* The entry loaded in this validation for the file `real`, when the file
 * is still the one that was read (same inode, size and mtime). */
static ice__subwf_entry_t *cache_find(ice_engine_t *e, const char *real,
                                      const struct stat *st) {
  json_t *x = json_object_get(e->subwf_index, real);
  ice__subwf_entry_t *c;

  if (x == NULL)
    return NULL;
  c = &e->subwf_cache[json_integer_value(x)];
  if (c->dev != st->st_dev || c->ino != st->st_ino || c->size != st->st_size ||
      c->mtim.tv_sec != st->st_mtim.tv_sec ||
      c->mtim.tv_nsec != st->st_mtim.tv_nsec)
    return NULL;
  return c;
}

/* Records the outcome of loading `real` (taken over, malloc'd by
 * realpath); wf is NULL when the file is not valid. */
static int cache_put(ice_engine_t *e, char *real, const struct stat *st,
                     ice_workflow_t *wf, ice__subwf_entry_t **out) {
  json_t *x;
  ice__subwf_entry_t *c;

  if (e->subwf_index == NULL && (e->subwf_index = json_object()) == NULL)
    goto oom;
  x = json_object_get(e->subwf_index, real);
  if (x != NULL) {
    /* The file changed during this validation: the new one replaces it. */
    c = &e->subwf_cache[json_integer_value(x)];
    free(c->real);
    ice_workflow_free(c->wf);
  } else {
    if (e->nsubwf == e->subwf_cap) {
      size_t ncap = e->subwf_cap == 0 ? 16 : e->subwf_cap * 2;
      ice__subwf_entry_t *nc = ice__realloc(e->subwf_cache, ncap * sizeof(*nc));
      if (nc == NULL)
        goto oom;
      e->subwf_cache = nc;
      e->subwf_cap = ncap;
    }
    if (json_object_set_new(e->subwf_index, real,
                            json_integer((json_int_t)e->nsubwf)) != 0)
      goto oom;
    c = &e->subwf_cache[e->nsubwf++];
  }
  c->real = real;
  c->dev = st->st_dev;
  c->ino = st->st_ino;
  c->size = st->st_size;
  c->mtim = st->st_mtim;
  c->wf = wf;
  *out = c;
  return 0;
oom:
  free(real);
  ice_workflow_free(wf);
  return ICE_ENOMEM;
}

/* Reports what loading the child file `full` found. The child's own
 * diagnostics (cd: its errors, or warnings of a valid file) go straight to
 * the outermost validation's list, once per file however many references
 * it has, right after the line of the reference that loaded it: copying
 * them up level by level would repeat them, and a discarded first pass
 * (the JSON fast path of ice_workflow_parse) would lose them. `mark` is
 * where that list ended when the child started loading. */
static int report_child(ice__vctx_t *v, ice__node_t *n, const char *ref,
                        const char *full, int invalid, const ice_diags_t *cd,
                        size_t mark) {
  ice_diags_t *sink = v->wf->engine->subwf_sink;
  size_t before = sink != NULL ? sink->count : 0;

  if (invalid)
    ice__verr(v, n, n->def, "workflow_ref",
              "workflow_ref '%s': '%s' is not a valid workflow", ref, full);
  if (sink == NULL)
    return 0;
  if (v->diags == sink && sink->count == before + 1 && mark < before) {
    /* The reference's own line goes before what its child loaded. */
    ice_diag_t line = sink->items[before];
    memmove(&sink->items[mark + 1], &sink->items[mark],
            (before - mark) * sizeof(line));
    sink->items[mark] = line;
  }
  if (v->diags == sink)
    mark += sink->count - before;
  return ice__diags_insert(sink, mark, cd);
}

/* Reads, parses and validates the child file (fd open on it), once per
 * validation. real is taken over. */
static int load_child(ice__vctx_t *v, ice__node_t *n, const char *ref,
                      const char *full, char *real, int fd,
                      const struct stat *st, ice__subwf_entry_t **out) {
  ice_engine_t *e = v->wf->engine;
  ice_diags_t cd = {0};
  ice_workflow_t *child = NULL;
  size_t mark = e->subwf_sink != NULL ? e->subwf_sink->count : 0;
  char *buf, why[256];
  size_t len;
  int rc;

  *out = NULL;
  rc = ice__file_slurp(fd, st, &buf, &len, why, sizeof(why));
  if (rc != 0) {
    free(real);
    if (rc == ICE_ENOMEM)
      return rc;
    ice__verr(v, n, n->def, "workflow_ref",
              "workflow_ref '%s': cannot read '%s': %s", ref, full, why);
    return 0;
  }
  /* The stack of files being loaded catches a file that refers to
   * itself; the nesting count tells the child's build from an outermost
   * one. */
  e->loading[e->nloading++] = real;
  e->subwf_nest++;
  e->subwf_loads++;
  rc = ice_workflow_parse(e, full, buf, len,
                          has_suffix(full, ".yaml") || has_suffix(full, ".yml"),
                          &child, &cd);
  e->subwf_nest--;
  e->nloading--;
  ice__free(buf);
  if (rc == ICE_ENOMEM) {
    free(real);
    ice_diags_free(&cd);
    return rc;
  }
  if (rc != 0)
    child = NULL;
  rc = cache_put(e, real, st, child, out);
  if (rc == 0)
    rc = report_child(v, n, ref, full, child == NULL, &cd, mark);
  ice_diags_free(&cd);
  return rc;
}

int ice__subwf_compile(ice__vctx_t *v, ice__node_t *n, const char *ref,
                       ice__subwf_t **out) {
  ice_workflow_t *wf = v->wf;
  ice_engine_t *e = wf->engine;
  json_t *names = json_object_get(wf->doc, "workflows");
  const char *path = json_string_value(json_object_get(names, ref));
  char *full = NULL, *real = NULL, why[256];
  ice__subwf_entry_t *c;
  ice__subwf_t *s;
  struct stat st;
  int fd, rc;

  *out = NULL;
  if (ref[0] == '\0') {
    ice__verr(v, n, n->def, "workflow_ref",
              "workflow_ref is empty: give a path to a workflow file or a "
              "name of the file's 'workflows'");
    return 0;
  }
  if (path == NULL) {
    path = ref;
  } else if (path[0] == '\0') {
    ice__verr(v, n, n->def, "workflow_ref",
              "workflow_ref '%s': workflows.%s is an empty path", ref, ref);
    return 0;
  }
  if (path[strlen(path) - 1] == '/') {
    ice__verr(v, n, n->def, "workflow_ref",
              "workflow_ref '%s': '%s' ends with '/': a workflow is a file, "
              "not a directory",
              ref, path);
    return 0;
  }
  if (path[0] == '/')
    full = ice__strdup(path);
  else if (asprintf(&full, "%s/%s", wf->dir, path) < 0)
    full = NULL;
  if (full == NULL)
    return ICE_ENOMEM;
  real = realpath(full, NULL);
  if (real == NULL) {
    ice__verr(v, n, n->def, "workflow_ref",
              "workflow_ref '%s': cannot read '%s': %s", ref, full,
              strerror(errno));
    ice__free(full);
    return 0;
  }
  for (int i = 0; i < e->nloading; i++) {
    if (strcmp(e->loading[i], real) == 0) {
      ice__verr(v, n, n->def, "workflow_ref",
                "workflow_ref '%s' references itself: %s is already being "
                "loaded",
                ref, full);
      goto done;
    }
  }
  if (e->nloading >= ICE__MAX_LOADING) {
    ice__verr(v, n, n->def, "workflow_ref",
              "workflow_ref '%s': more than %d workflow files nested "
              "(sub-workflows of sub-workflows)",
              ref, ICE__MAX_LOADING);
    goto done;
  }
  /* Regular files only: a FIFO or /dev/zero would never end. */
  if (ice__file_open(real, 1, &fd, &st, why, sizeof(why)) != 0) {
    ice__verr(v, n, n->def, "workflow_ref",
              "workflow_ref '%s': cannot read '%s': %s", ref, full, why);
    goto done;
  }
  /* A build that did not pass ice__engine_build_begin (a workflow loaded
   * from inside another's validation by an embedding program) starts its
   * own validation rather than write into another's diagnostics. */
  if (e->subwf_nest == 0 && (e->subwf_top != wf || e->subwf_sink != v->diags))
    ice__engine_build_begin(v);
  c = cache_find(e, real, &st);
  if (c != NULL) {
    close(fd);
    if (c->wf == NULL)
      ice__verr(v, n, n->def, "workflow_ref",
                "workflow_ref '%s': '%s' is not a valid workflow", ref, full);
  } else {
    rc = load_child(v, n, ref, full, real, fd, &st, &c);
    real = NULL;
    if (rc != 0) {
      ice__free(full);
      return rc;
    }
  }
  s = ice__calloc(1, sizeof(*s));
  if (s == NULL) {
    free(real);
    ice__free(full);
    return ICE_ENOMEM;
  }
  if (c != NULL && c->wf != NULL) {
    ice__workflow_ref(c->wf);
    s->wf = c->wf;
  }
  *out = s;
done:
  free(real);
  ice__free(full);
  return 0;
}

int ice__subwf_names_check(ice__vctx_t *v) {
  ice_workflow_t *wf = v->wf;
  json_t *names = json_object_get(wf->doc, "workflows"), *x, *used;
  const char *name;

  if (!json_is_object(names) || json_object_size(names) == 0)
    return 0;
  /* Referenced names are checked (and loaded) by their references. */
  used = json_object();
  if (used == NULL)
    return ICE_ENOMEM;
  for (uint32_t i = 0; i < wf->nnodes; i++) {
    const char *r =
        json_string_value(json_object_get(wf->nodes[i].def, "workflow_ref"));
    if (r != NULL && json_object_set_new(used, r, json_true()) != 0) {
      json_decref(used);
      return ICE_ENOMEM;
    }
  }
  json_object_foreach(names, name, x) {
    const char *path = json_string_value(x);
    char *full = NULL, why[256];
    struct stat st;
    int fd;
    if (path == NULL || json_object_get(used, name) != NULL)
      continue;
    if (path[0] == '\0') {
      ice__verr(v, NULL, names, name, "workflows.%s is an empty path", name);
      continue;
    }
    if (path[0] == '/')
      full = ice__strdup(path);
    else if (asprintf(&full, "%s/%s", wf->dir, path) < 0)
      full = NULL;
    if (full == NULL) {
      json_decref(used);
      return ICE_ENOMEM;
    }
    if (ice__file_open(full, 1, &fd, &st, why, sizeof(why)) != 0)
      ice__verr(v, NULL, names, name, "workflows.%s: cannot read '%s': %s",
                name, full, why);
    else
      close(fd);
    ice__free(full);
  }
  json_decref(used);
  return 0;
}

static void child_done(ice_run_t *run, void *data) {
  ice__subwf_run_t *sr = data;
  json_t *res = ice_run_result(run);
  int ok = json_is_true(json_object_get(res, "success"));
  const char *status = json_string_value(json_object_get(res, "status"));
  char msg[1024] = "";

  if (status != NULL &&
      (strcmp(status, "waiting") == 0 || strcmp(status, "paused") == 0)) {
    /* The child can go no further now: its node parks, and the parent run
     * stops too when nothing else can move. Restored, the node starts the
     * child again, which finds its own records (same run id). */
    ice_run_free(run);
    sr->child = NULL;
    sr->suspended = 1;
    ice_task_wait(sr->task, NULL, 0);
    return;
  }

  if (!ok) {
    size_t len = 0;
    json_t *errs = json_object_get(res, "errors"), *line;
    size_t i;
    len += (size_t)snprintf(msg, sizeof(msg), "child workflow '%s' %s",
                            json_string_value(json_object_get(res, "workflow")),
                            json_string_value(json_object_get(res, "status")));
    json_array_foreach(errs, i, line) {
      if (len < sizeof(msg))
        len += (size_t)snprintf(msg + len, sizeof(msg) - len, "%s %s",
                                i == 0 ? ":" : ";", json_string_value(line));
    }
  }
  ice__task_add_child_usage(sr->task, run);
  sr->cb(sr->data, ok, json_object_get(res, "output"), ICE__KIND_SUBWORKFLOW,
         msg);
  ice_run_free(run);
  ice__free(sr);
}

int ice__subwf_start(const ice__subwf_t *s, ice_task_t *parent, json_t *inputs,
                     ice__subwf_cb cb, void *data, ice__subwf_run_t **out) {
  ice_diags_t d = {0};
  ice__subwf_run_t *sr;
  ice_run_t *child;
  int rc;

  *out = NULL;
  if (ice__task_run_depth(parent) + 1 > ICE__MAX_SUBWORKFLOW_DEPTH) {
    ice__task_fail_kind(parent, ICE__KIND_NON_RETRYABLE,
                        "sub-workflows nested deeper than %d",
                        ICE__MAX_SUBWORKFLOW_DEPTH);
    return -1;
  }
  rc = ice__task_child_run(parent, s->wf, inputs, &child, &d);
  if (rc != 0) {
    ice__task_fail_kind(parent, ICE__KIND_SUBWORKFLOW, "%s",
                        d.count > 0 ? d.items[0].message : ice_strerror(rc));
    ice_diags_free(&d);
    return -1;
  }
  sr = ice__calloc(1, sizeof(*sr));
  if (sr == NULL) {
    ice_run_free(child);
    ice__task_fail_kind(parent, ICE__KIND_INTERNAL, "out of memory");
    return -1;
  }
  sr->task = parent;
  sr->child = child;
  sr->cb = cb;
  sr->data = data;
  *out = sr;
  ice_run_start(child, child_done, sr);
  return 0;
}

void ice__subwf_cancel(ice__subwf_run_t *r) {
  if (r == NULL)
    return;
  if (r->suspended) {
    r->cb(r->data, 0, NULL, ICE__KIND_CANCELLED, "the child run is waiting");
    ice__free(r);
    return;
  }
  ice_run_cancel(r->child);
}

/* ---- the `workflow` node ------------------------------------------------ */

typedef struct {
  ice__subwf_t *sub;
  ice__tmpl_t *inputs_tmpl;
  ice__tmpl_t *overrides_tmpl;
  json_t *inputs;    /* borrowed */
  json_t *overrides; /* borrowed */
  json_t *exposed;   /* borrowed */
} wf_conf_t;

static const ice_field_t fields[] = {
    {"workflow_ref", ICE_T_STRING, 1, 0},
    {"inputs", ICE_T_OBJECT, 0, 1},
    {"config_overrides", ICE_T_OBJECT, 0, 1},
    {"exposed_outputs", ICE_T_OBJECT, 0, 0},
    {NULL, 0, 0, 0},
};

static void conf_free(void *p, void *data) {
  wf_conf_t *c = p;

  (void)data;
  ice__subwf_free(c->sub);
  ice__tmpl_free(c->inputs_tmpl);
  ice__tmpl_free(c->overrides_tmpl);
  ice__free(c);
}

static void *compile(ice_compile_t *cc) {
  ice__vctx_t *v = cc->v;
  ice__node_t *n = cc->node;
  wf_conf_t *c = ice__calloc(1, sizeof(*c));
  const char *ref = json_string_value(json_object_get(n->def, "workflow_ref"));
  ice__err_t err;
  json_t *x;
  const char *k;

  if (c == NULL) {
    ice_compile_error(cc, NULL, "out of memory");
    return NULL;
  }
  n->xdata = c;
  c->inputs = json_object_get(n->def, "inputs");
  c->overrides = json_object_get(n->def, "config_overrides");
  c->exposed = json_object_get(n->def, "exposed_outputs");
  if (json_is_object(c->inputs) &&
      ice__tmpl_compile(c->inputs, &c->inputs_tmpl, &err) != 0)
    ice__verr_tmpl(v, n, n->def, "inputs", &err);
  if (json_is_object(c->overrides) &&
      ice__tmpl_compile(c->overrides, &c->overrides_tmpl, &err) != 0)
    ice__verr_tmpl(v, n, n->def, "config_overrides", &err);
  if (json_is_object(c->exposed)) {
    json_object_foreach(c->exposed, k, x) {
      if (!json_is_string(x) || json_string_length(x) == 0)
        ice__verr(v, n, c->exposed, k,
                  "exposed_outputs.%s must be a 'node_id.path' string", k);
    }
  } else {
    c->exposed = NULL;
  }
  if (ref != NULL && ice__subwf_compile(v, n, ref, &c->sub) != 0)
    ice_compile_error(cc, NULL, "out of memory");
  return c;
}

static void wf_done(void *data, int ok, json_t *output, int kind,
                    const char *msg) {
  ice_task_t *t = data;
  const wf_conf_t *c = ice_task_compiled(t);
  const char *name;
  json_t *x, *out;

  ice_task_set_data(t, NULL);
  if (ice__task_stopping(t)) {
    ice__task_fail_kind(t, ICE__KIND_CANCELLED, "sub-workflow cancelled");
    return;
  }
  if (!ok) {
    ice__task_fail_kind(t, kind, "%s", msg);
    return;
  }
  if (c->exposed == NULL) {
    ice_task_done(t, json_incref(output));
    return;
  }
  out = json_object();
  json_object_foreach(c->exposed, name, x) {
    const char *spec = json_string_value(x);
    const char *dot = strchr(spec, '.');
    size_t idlen = dot != NULL ? (size_t)(dot - spec) : strlen(spec);
    json_t *v = json_object_getn(output, spec, idlen);
    if (v != NULL && dot != NULL)
      v = ice__json_follow(v, dot + 1);
    if (v == NULL) {
      json_decref(out);
      ice__task_fail_kind(t, ICE__KIND_SUBWORKFLOW,
                          "exposed_outputs.%s: '%s' is not in the child "
                          "workflow's output",
                          name, spec);
      return;
    }
    json_object_set(out, name, v);
  }
  ice_task_done(t, out);
}

static void wf_start(ice_task_t *t) {
  const wf_conf_t *c = ice_task_compiled(t);
  const ice__node_t *n = ice__task_node(t);
  json_t *in = NULL, *ov = NULL;
  ice__subwf_run_t *sr;
  ice__err_t err;

  if (ice__tmpl_render_or_share(c->inputs_tmpl, c->inputs, ice__task_lookup, t,
                                &in, &err) != 0 ||
      ice__tmpl_render_or_share(c->overrides_tmpl, c->overrides,
                                ice__task_lookup, t, &ov, &err) != 0) {
    json_decref(in);
    ice__task_fail_kind(t, ICE__KIND_EXPRESSION, "%s", err.msg);
    return;
  }
  /* Inputs are rendered values; overrides win over them. A new object,
   * so that neither rendered value is changed. */
  json_t *merged = json_object();
  if (in != NULL)
    json_object_update(merged, in);
  if (ov != NULL)
    json_object_update(merged, ov);
  json_decref(in);
  json_decref(ov);
  /* The node's input_schema checks what the child run receives. */
  if (n->in_schema != NULL &&
      ice__schema_check(n->in_schema, merged, &err) != 0) {
    json_decref(merged);
    ice__task_fail_kind(t, ICE__KIND_INPUT_VALIDATION, "%s", err.msg);
    return;
  }
  if (ice__subwf_start(c->sub, t, merged, wf_done, t, &sr) == 0)
    ice_task_set_data(t, sr);
  json_decref(merged);
}

static void wf_cancel(ice_task_t *t) {
  if (ice_task_data(t) != NULL)
    ice__subwf_cancel(ice_task_data(t));
}

const ice_executor_t ice__exec_workflow = {
    .abi = ICE_EXECUTOR_ABI,
    .type = "workflow",
    .fields = fields,
    .start = wf_start,
    .cancel = wf_cancel,
    .compile = compile,
    .free_compiled = conf_free,
    .flags = ICE_EX_CONTROL_FLOW,
};

