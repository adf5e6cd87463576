/* The streamed load of a JSON workflow file. A document kept whole as
 * jansson values costs about 900 bytes a node (two hash tables, the
 * strings, the array), five times what the node costs compiled, and it
 * would stay alive for the whole run. Here the elements of "nodes" are
 * handed over one at a time as the text is read (jsonfast.c). A plain
 * tool node (the bulk of a generated workflow: id, type, tool_name,
 * tool_args, dependencies on nodes before it) is checked and compiled as
 * soon as it is read and its object freed, so that the next node reuses
 * its memory; any other node keeps its object and goes through the usual
 * steps after the stream, with the nested lists.
 *
 * The top-level members before "nodes" are checked when the first node
 * arrives; a file with members after "nodes" is not taken, since its
 * nodes would have been compiled without them (`tools`, `pools`...).
 * Only a valid file is taken: at the first problem (a diagnostic, even a
 * warning, or anything the quick reader gives up on) the load gives up
 * and the caller loads the file the usual way, which reports every
 * problem with its position exactly as before. */
#include "load.h"

#include "engine.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
  ice__vctx_t *v;
  const char *text; /* the file */
  size_t len;
  int started;   /* the top level was checked, at the first node */
  uint32_t ncap; /* room in wf->nodes and off */
  collect_t c;
  /* The dependencies of the freed nodes: node i's at deps + off[i]. */
  uint32_t *deps, *off;
  size_t ndeps, cap;
  int enomem;
} stream_t;

static int problem(const stream_t *st) {
  return st->v->errors > 0 || st->v->diags->count > 0;
}

/* 1 when only these fields are present: what ice__tool_config makes
 * again when a caller asks for the object. */
static int plain_fields(json_t *def) {
  static const char *const plain[] = {"id",        "type",         "tool_name",
                                      "tool_args", "dependencies", NULL};
  const char *k;
  json_t *x;

  json_object_foreach(def, k, x) {
    if (!ice__in_list(k, plain))
      return 0;
  }
  return json_is_string(json_object_get(def, "tool_name")) &&
         json_is_object(json_object_get(def, "tool_args"));
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

  return x < y ? -1 : x > y;
}

/* Node i's dependencies, when each names a node before it, resolved into
 * st->deps (sorted, without repeats, as graph.c does): 1, else 0 (the
 * node keeps its object and graph.c resolves or reports them). */
static int resolve_back(stream_t *st, ice__node_t *n) {
  json_t *deps = json_object_get(n->def, "dependencies"), *d;
  size_t k = json_array_size(deps), i, start = st->ndeps;
  uint32_t *out, cnt = 0;

  if (deps != NULL && !json_is_array(deps))
    return 0;
  if (st->ndeps + k > st->cap) {
    size_t ncap = (st->ndeps + k) * 2;
    uint32_t *nd = ice__realloc(st->deps, ncap * sizeof(*nd));
    if (nd == NULL) {
      st->enomem = 1;
      return 0;
    }
    st->deps = nd;
    st->cap = ncap;
  }
  out = st->deps + start;
  json_array_foreach(deps, i, d) {
    uint32_t g;
    if (!json_is_string(d))
      return 0;
    g = ice__workflow_find(st->v->wf, json_string_value(d),
                           json_string_length(d));
    if (g == ICE__NONE || g >= n->idx)
      return 0; /* a later node, itself or unknown */
    out[cnt++] = g;
  }
  qsort(out, cnt, sizeof(uint32_t), cmp_u32);
  n->ndeps = 0;
  for (uint32_t j = 0; j < cnt; j++) {
    if (n->ndeps == 0 || out[n->ndeps - 1] != out[j])
      out[n->ndeps++] = out[j];
  }
  n->nsched = n->ndeps;
  st->off[n->idx] = (uint32_t)start;
  st->ndeps = start + n->ndeps;
  return 1;
}

/* Checks, compiles and frees plain tool node n (its object def). 0 when
 * it did, 1 when n is not one (it keeps its object), -1 on a problem. */
static int take_plain(stream_t *st, ice__node_t *n, json_t *def) {
  ice__vctx_t *v = st->v;
  const ice__type_entry_t *te;
  const char *id;

  if (!plain_fields(def) ||
      strcmp(json_string_value(json_object_get(def, "type")), "tool") != 0 ||
      (te = ice__engine_type(v->wf->engine, "tool")) == NULL ||
      te->ex != &ice__exec_tool || !resolve_back(st, n))
    return st->enomem ? -1 : 1;
  ice__load_check(v, n);
  ice__load_compile(v, n);
  if (problem(st))
    return -1;
  if ((id = ice__workflow_keep(v->wf, n->id, strlen(n->id))) == NULL) {
    st->enomem = 1;
    return -1;
  }
  n->id = id;
  n->type = n->ex->type;
  n->def = NULL;
  st->c.defs[n->idx] = NULL;
  json_decref(def);
  return 0;
}

/* Before the first node: the top-level members read so far (all of
 * them, or the file is given up), and the scope of "nodes". */
static int start(stream_t *st, json_t *root) {
  ice__vctx_t *v = st->v;
  uint32_t scope;

  st->started = 1;
  /* A file that declares its inputs collects the names its expressions
   * read (load.c's ice__load_finish, for a whole document). */
  if (json_object_get(root, "inputs") != NULL) {
    if ((v->wf->reads = json_object()) == NULL) {
      st->enomem = 1;
      return -1;
    }
    ice__expr_collect(v->wf->reads);
  }
  ice__load_top(v, root);
  if (problem(st))
    return -1;
  if (ice__collect_scope(&st->c, ICE__NONE, NULL, &scope) != 0) {
    st->enomem = 1;
    return -1;
  }
  /* Before any compile hook, as build() does. */
  if (v->wf->engine->refs != NULL)
    v->wf->engine->refs->begin(v);
  return 0;
}

/* Room for node i in wf->nodes and off. */
static int room(stream_t *st, uint32_t i) {
  ice_workflow_t *wf = st->v->wf;

  if (i == st->ncap) {
    uint32_t ncap = st->ncap == 0 ? 256 : st->ncap * 2;
    ice__node_t *nodes = ice__realloc(wf->nodes, ncap * sizeof(*nodes));
    uint32_t *off;
    if (nodes == NULL)
      return -1;
    wf->nodes = nodes;
    off = ice__realloc(st->off, ncap * sizeof(*off));
    if (off == NULL)
      return -1;
    st->off = off;
    st->ncap = ncap;
  }
  memset(&wf->nodes[i], 0, sizeof(ice__node_t));
  st->off[i] = 0;
  return 0;
}

/* One element of "nodes" (a reference, taken). */
static int on_node(void *ud, json_t *root, json_t *def) {
  stream_t *st = ud;
  ice_workflow_t *wf = st->v->wf;
  uint32_t i = st->c.n;
  ice__node_t *n;
  json_t *d;
  int rc = 1;

  if (!json_is_object(def) || i == UINT32_MAX / 4 ||
      (!st->started && start(st, root) != 0)) {
    json_decref(def);
    return -1;
  }
  if (room(st, i) != 0 || ice__collect_room(&st->c) != 0 ||
      (d = ice__node_drop_nulls(wf, def)) == NULL) {
    json_decref(def);
    st->enomem = 1;
    return -1;
  }
  n = &wf->nodes[i];
  n->idx = i;
  n->local = i;
  n->def = d;
  st->c.defs[i] = d;
  st->c.scope[i] = 0;
  st->c.n++;
  wf->nnodes = st->c.n;
  if (ice__load_id(st->v, n) != 0) {
    st->enomem = 1;
    rc = -1;
  } else if (problem(st)) {
    rc = -1;
  } else if (d == def && (rc = take_plain(st, n, def)) == 0) {
    return 0; /* def is freed */
  }
  if (rc < 0) {
    json_decref(def);
    return -1;
  }
  /* A node that keeps its object: the workflow holds it (a copy without
   * its nulls is held there already). */
  if (d != def) {
    json_decref(def);
    return 0;
  }
  if (wf->norm == NULL && (wf->norm = json_array()) == NULL) {
    json_decref(def);
    st->enomem = 1;
    return -1;
  }
  if (json_array_append_new(wf->norm, def) != 0) {
    st->enomem = 1;
    return -1;
  }
  return 0;
}

/* Reads the file, streaming its nodes, then collects the nested lists
 * and takes the nodes that kept their objects through the usual steps. */
static int build_stream(ice__vctx_t *v, json_t *doc, void *ctx) {
  stream_t *st = ctx;
  ice_workflow_t *wf = v->wf;
  uint32_t count;
  int rc = 0;

  (void)doc; /* read here */
  st->v = v;
  st->c.v = v;
  wf->doc = ice__json_fast_stream(st->text, st->len, on_node, st);
  count = st->c.n;
  if (st->enomem) {
    rc = ICE_ENOMEM;
    goto out;
  }
  if (wf->doc == NULL || !st->started || problem(st))
    goto give_up;
  /* The room left over, given back. */
  if (count < st->ncap) {
    ice__node_t *nodes = ice__realloc(wf->nodes, count * sizeof(*nodes));
    if (nodes != NULL)
      wf->nodes = nodes;
  }
  st->c.scopes[0].n = count;
  if ((st->c.scopes[0].nodes = ice__malloc(sizeof(uint32_t) * (count + 1))) ==
          NULL ||
      ice__collect_nested(&st->c, 0, count) != 0) {
    rc = ICE_ENOMEM;
    goto out;
  }
  for (uint32_t k = 0; k < count; k++)
    st->c.scopes[0].nodes[k] = k;
  if ((rc = ice__load_nodes(wf, &st->c, count, 0)) != 0)
    goto out;
  for (uint32_t i = count; i < wf->nnodes && rc == 0; i++)
    rc = ice__load_id(v, &wf->nodes[i]);
  for (uint32_t i = 0; i < wf->nnodes && rc == 0; i++) {
    if (wf->nodes[i].def != NULL)
      ice__load_check(v, &wf->nodes[i]);
  }
  if (rc != 0 || problem(st))
    goto out;
  v->streamed_deps = st->deps;
  v->streamed_off = st->off;
  rc = ice__load_graph(v);
  v->streamed_deps = v->streamed_off = NULL;
  for (uint32_t i = 0; i < wf->nnodes && rc == 0 && !problem(st); i++) {
    if (wf->nodes[i].def != NULL)
      ice__load_compile(v, &wf->nodes[i]);
  }
  goto out;
give_up:
  v->errors++; /* the caller loads the file the usual way */
out:
  ice__free(st->deps);
  ice__free(st->off);
  ice__collect_free(&st->c);
  return rc;
}

int ice__load_stream(ice_engine_t *e, const char *name, const char *text,
                     size_t len, ice_workflow_t **out) {
  ice__posmap_t pos = {0};
  ice_diags_t quiet = {0};
  stream_t st;
  int rc;

  memset(&st, 0, sizeof(st));
  st.text = text;
  st.len = len;
  rc = ice__load_finish(e, name, NULL, &pos, 0, out, &quiet, build_stream, &st);
  if (rc == 0 && quiet.count > 0) {
    ice_workflow_free(*out);
    *out = NULL;
    rc = ICE_EWORKFLOW;
  }
  if (rc == ICE_EWORKFLOW)
    /* A problem to report needs positions; anything else, the whole
     * document. */
    rc = quiet.count > 0 ? 2 : 1;
  ice_diags_free(&quiet);
  return rc;
}
