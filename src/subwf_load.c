/* Loading the workflow files that a workflow references (SPEC §7.4,
 * §7.5): `workflow_ref` paths and `workflows` names, each distinct file
 * loaded and validated once per validation however many references it
 * has (keyed by real path), regular files only, bounded. Loading is
 * recursive (a child file loads its own children), so the loader reaches
 * this file through the engine's hooks (ice__refs_hooks), never by name. */
#include "subwf_load.h"

#include "engine.h"
#include "readfile.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void cache_clear(ice_engine_t *e) {
  for (size_t i = 0; i < e->nsubwf; i++) {
    free(e->subwf_cache[i].real);
    ice_workflow_free(e->subwf_cache[i].wf);
  }
  ice__free(e->subwf_cache);
  e->subwf_cache = NULL;
  e->nsubwf = e->subwf_cap = 0;
  json_decref(e->subwf_index);
  e->subwf_index = NULL;
}

static void build_begin(ice__vctx_t *v) {
  ice_engine_t *e = v->wf->engine;

  /* A child file being loaded belongs to the validation that loads it. */
  if (e->subwf_nest > 0)
    return;
  cache_clear(e);
  e->subwf_top = v->wf;
  e->subwf_sink = v->diags;
}

struct ice__subwf_s {
  ice_workflow_t *wf;
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
    build_begin(v);
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

static int check_names(ice__vctx_t *v) {
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

const ice__refs_hooks_t ice__refs_hooks = {
    .begin = build_begin,
    .check_names = check_names,
    .clear = cache_clear,
};
