/* The streamed load of a JSON workflow file. A document kept whole as
 * jansson values costs about 900 bytes a node (two hash tables, the
 * strings, the array), five times what the node costs compiled, and it
 * would stay alive for the whole run. Here the elements of "nodes" are
 * handed over one at a time as the text is read (jsonfast.c). A plain
 * tool node (the bulk of a generated workflow: id, type, tool_name,
 * tool_args, dependencies on nodes before it, see take) is checked and
 * compiled as soon as it is read, and no object of it is kept but its
 * tool_args; any other node keeps its object and goes through the usual
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

#include "jsonrd.h"

#include "engine.h"

#include <string.h>

typedef struct {
  ice__vctx_t *v;
  const char *text; /* the file */
  size_t len;
  int started;   /* the top level was checked, at the first node */
  int plain_ok;  /* `tool` is the built-in tool type */
  uint32_t ncap; /* room in wf->nodes and off */
  collect_t c;
  /* The dependencies of the plain nodes: node i's at deps + off[i]. */
  uint32_t *deps, *off;
  size_t ndeps, cap;
  /* What ice__check_node gives every plain node (see start). */
  const ice__node_opts_t *opt;
  ice__trigger_t trigger;
  int enomem;
  int invalid; /* a problem was seen, not yet reported */
} stream_t;

static int problem(const stream_t *st) {
  return st->v->errors > 0 || st->v->diags->count > 0;
}

/* Before the first node: the top-level members read so far (all of
 * them, or the file is given up), the scope of "nodes", and what the
 * field checks give a plain node: its fields leave every policy at its
 * default, so the checks of one such node (run for real here) hold for
 * all of them. */
static int start(stream_t *st, json_t *root) {
  ice__vctx_t *v = st->v;
  const ice__type_entry_t *te = ice__engine_type(v->wf->engine, "tool");
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
  if (te != NULL && te->ex == &ice__exec_tool) {
    json_t *def = json_pack("{s:s, s:s, s:s, s:{}}", "id", "n", "type", "tool",
                            "tool_name", "t", "tool_args");
    ice__node_t n;
    if (def == NULL) {
      st->enomem = 1;
      return -1;
    }
    memset(&n, 0, sizeof(n));
    n.id = "n";
    n.type = "tool";
    n.def = def;
    ice__check_node(v, &n, te);
    json_decref(def);
    st->opt = n.opt;
    st->trigger = n.trigger;
    st->plain_ok = n.opt != NULL && !problem(st);
  }
  return problem(st) ? -1 : 0;
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
  if (ice__collect_room(&st->c) != 0)
    return -1;
  memset(&wf->nodes[i], 0, sizeof(ice__node_t));
  st->off[i] = 0;
  return 0;
}

/* Node i of the stream, in wf->nodes, with def (NULL for a plain node). */
static ice__node_t *add_node(stream_t *st, json_t *def) {
  ice_workflow_t *wf = st->v->wf;
  uint32_t i = st->c.n;
  ice__node_t *n;

  if (room(st, i) != 0) {
    st->enomem = 1;
    return NULL;
  }
  n = &wf->nodes[i];
  n->idx = i;
  n->local = i;
  n->def = def;
  st->c.defs[i] = def;
  st->c.scope[i] = 0;
  st->c.n++;
  wf->nnodes = st->c.n;
  return n;
}

/* A plain node's "dependencies": each a node before node i, in the order
 * of the file and without repeats (then they are what graph.c would make
 * of them, and ice__tool_config gives them back as written), into
 * st->deps after the committed ones, *k of them. 0, or 1 when they are
 * anything else, an empty list included (the node keeps its object, and
 * graph.c resolves or reports them). */
static int read_deps(stream_t *st, ice__jrd_t *j, uint32_t i, uint32_t *k) {
  uint32_t cnt = 0;

  if (ice__jrd_char(j, '[') != 0 || ice__jrd_peek(j) == ']')
    return 1;
  for (;;) {
    const char *s;
    size_t n;
    uint32_t g;
    if (ice__jrd_string(j, &s, &n) != 0)
      return 1;
    g = ice__workflow_find(st->v->wf, s, n);
    if (g == ICE__NONE || g >= i)
      return 1; /* unknown, or not before it */
    if (cnt > 0 && g <= st->deps[st->ndeps + cnt - 1])
      return 1; /* out of order, or repeated */
    if (st->ndeps + cnt == st->cap) {
      size_t ncap = st->cap == 0 ? 1024 : st->cap * 2;
      uint32_t *nd = ice__realloc(st->deps, ncap * sizeof(*nd));
      if (nd == NULL) {
        st->enomem = 1;
        return 1;
      }
      st->deps = nd;
      st->cap = ncap;
    }
    st->deps[st->ndeps + cnt++] = g;
    if (ice__jrd_char(j, ',') == 0)
      continue;
    if (ice__jrd_char(j, ']') != 0)
      return 1;
    break;
  }
  *k = cnt;
  return 0;
}

/* The fields of a plain node. */
enum { F_ID = 1, F_TYPE = 2, F_NAME = 4, F_ARGS = 8, F_DEPS = 16 };

static unsigned field_bit(const char *k, size_t n) {
  switch (n) {
  case 2:
    return memcmp(k, "id", 2) == 0 ? F_ID : 0;
  case 4:
    return memcmp(k, "type", 4) == 0 ? F_TYPE : 0;
  case 9:
    return memcmp(k, "tool_name", 9) == 0   ? F_NAME
           : memcmp(k, "tool_args", 9) == 0 ? F_ARGS
                                            : 0;
  case 12:
    return memcmp(k, "dependencies", 12) == 0 ? F_DEPS : 0;
  default:
    return 0;
  }
}

/* A node read straight from the text when it is a plain tool node: its
 * id, type "tool", tool_name and tool_args (an object), dependencies on
 * nodes before it, in that order (the one ice__tool_config gives them
 * back in), nothing else. It is checked and compiled
 * at once and no object of it is kept but its tool_args. 0 when taken, 1
 * when it is not such a node (it is read the usual way), -1 to give up. */
static int take(void *ud, json_t *root, ice__jrd_t *j) {
  stream_t *st = ud;
  ice__vctx_t *v = st->v;
  ice_workflow_t *wf = v->wf;
  const char *id = NULL, *type = NULL, *tool = NULL;
  size_t idn = 0, typen = 0, tooln = 0;
  char name[256];
  json_t *args = NULL;
  unsigned seen = 0;
  uint32_t i = st->c.n, ndeps = 0;
  ice__node_t *n;

  if (!st->started && start(st, root) != 0)
    return -1;
  if (!st->plain_ok || i == UINT32_MAX / 4 || ice__jrd_char(j, '{') != 0 ||
      ice__jrd_peek(j) == '}')
    return 1;
  for (;;) {
    const char *k;
    size_t kn;
    unsigned bit;
    int bad;
    if (ice__jrd_string(j, &k, &kn) != 0 || ice__jrd_char(j, ':') != 0 ||
        (bit = field_bit(k, kn)) == 0 || bit <= seen)
      goto leave; /* not a plain field, twice, or out of the usual order */
    seen |= bit;
    switch (bit) {
    case F_ID:
      bad = ice__jrd_string(j, &id, &idn);
      break;
    case F_TYPE:
      bad = ice__jrd_string(j, &type, &typen);
      break;
    case F_NAME:
      bad = ice__jrd_string(j, &tool, &tooln);
      break;
    case F_ARGS:
      bad = ice__jrd_peek(j) != '{' || (args = ice__jrd_value(j)) == NULL;
      break;
    default:
      bad = read_deps(st, j, i, &ndeps);
    }
    if (bad)
      goto leave;
    if (ice__jrd_char(j, ',') == 0)
      continue;
    if (ice__jrd_char(j, '}') != 0)
      goto leave;
    break;
  }
  if ((seen & (F_ID | F_TYPE | F_NAME)) != (F_ID | F_TYPE | F_NAME) ||
      typen != 4 || memcmp(type, "tool", 4) != 0 || tooln >= sizeof(name))
    goto leave;
  memcpy(name, tool, tooln);
  name[tooln] = '\0';
  /* A plain node from here on: a problem gives the file up. */
  if ((n = add_node(st, NULL)) == NULL ||
      (n->id = ice__workflow_keep(wf, id, idn)) == NULL) {
    json_decref(args);
    st->enomem = 1;
    return -1;
  }
  /* What ice__load_id would report. */
  if (!ice__valid_id(n->id) || ice__expr_is_keyword(n->id, idn)) {
    json_decref(args);
    st->invalid = 1;
    return -1;
  }
  switch (ice__workflow_add_id(wf, i)) {
  case 0:
    break;
  case 1:
    json_decref(args);
    st->invalid = 1;
    return -1;
  default:
    json_decref(args);
    st->enomem = 1;
    return -1;
  }
  n->ex = &ice__exec_tool;
  n->type = n->ex->type;
  n->opt = st->opt;
  n->trigger = st->trigger;
  n->ndeps = n->nsched = ndeps;
  st->off[i] = (uint32_t)st->ndeps;
  st->ndeps += ndeps;
  {
    /* What it compiles lives as long as the workflow: in its arena. */
    ice__arena_t *outer = ice__arena_use(&wf->arena);
    if (ice__tool_compile(v, n, name, args) == NULL)
      st->enomem = 1;
    ice__arena_use(outer);
  }
  json_decref(args);
  return st->enomem || problem(st) ? -1 : 0;
leave:
  json_decref(args);
  return st->enomem ? -1 : 1;
}

/* A node take() left, read (a reference, taken): it keeps its object, in
 * the workflow's list of them, for the usual steps after the stream. */
static int on_node(void *ud, json_t *root, json_t *def) {
  stream_t *st = ud;
  ice_workflow_t *wf = st->v->wf;
  ice__node_t *n;
  json_t *d;

  if (!json_is_object(def) || st->c.n == UINT32_MAX / 4 ||
      (!st->started && start(st, root) != 0)) {
    json_decref(def);
    return -1;
  }
  if (wf->norm == NULL && (wf->norm = json_array()) == NULL) {
    json_decref(def);
    st->enomem = 1;
    return -1;
  }
  if (json_array_append_new(wf->norm, def) != 0 ||
      (d = ice__node_drop_nulls(wf, def)) == NULL ||
      (n = add_node(st, d)) == NULL) {
    st->enomem = 1;
    return -1;
  }
  if (ice__load_id(st->v, n) != 0) {
    st->enomem = 1;
    return -1;
  }
  return problem(st) ? -1 : 0;
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
  wf->doc = ice__json_fast_stream(st->text, st->len, take, on_node, st);
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
    rc = quiet.count > 0 || st.invalid ? 2 : 1;
  ice_diags_free(&quiet);
  return rc;
}
