/* Loading a workflow (SPEC §1, §4.1): the file read (bounded), its text
 * parsed, the top-level keys checked, every node collected (nested lists
 * included, as their types declare them), then each node's fields
 * (fields.c), the graph (graph.c) and each type's compile hook. Every
 * problem is reported (diag.c); none stops the others. */
#include "load.h"

#include "engine.h"
#include "graph.h"
#include "llm.h"
#include "readfile.h"

#include <errno.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- collecting nodes (nested lists included) --------------------------- */

int ice__collect_scope(collect_t *c, uint32_t parent, json_t *list,
                       uint32_t *out) {
  if (c->nscopes == c->scap) {
    uint32_t ncap = c->scap == 0 ? 8 : c->scap * 2;
    ice__scope_t *s = ice__realloc(c->scopes, ncap * sizeof(*s));
    if (s == NULL)
      return -1;
    c->scopes = s;
    c->scap = ncap;
  }
  c->scopes[c->nscopes] = (ice__scope_t){NULL, 0, parent, list, NULL};
  *out = c->nscopes++;
  return 0;
}

int ice__collect_room(collect_t *c) {
  if (c->n == c->cap) {
    uint32_t ncap = c->cap == 0 ? 64 : c->cap * 2;
    json_t **d = ice__realloc(c->defs, ncap * sizeof(*d));
    uint32_t *s = ice__realloc(c->scope, ncap * sizeof(*s));
    if (d != NULL)
      c->defs = d;
    if (s != NULL)
      c->scope = s;
    if (d == NULL || s == NULL)
      return -1;
    c->cap = ncap;
  }
  return 0;
}

static int add_def(collect_t *c, json_t *def, uint32_t scope) {
  if (ice__collect_room(c) != 0)
    return -1;
  /* null optional fields are absent from here on (SPEC §1.1). */
  def = ice__node_drop_nulls(c->v->wf, def);
  if (def == NULL)
    return -1;
  c->defs[c->n] = def;
  c->scope[c->n] = scope;
  c->n++;
  return 0;
}

/* The node at global index g, good enough to prefix a message with its id
 * before ids are checked. */
static ice__node_t msg_node(collect_t *c, uint32_t g) {
  ice__node_t o;

  memset(&o, 0, sizeof(o));
  o.idx = g;
  o.id = json_string_value(json_object_get(c->defs[g], "id"));
  return o;
}

/* Adds the nodes of one array as a new scope, then recurses into the
 * nested lists of its control-flow nodes. `what` names the array in
 * messages ("nodes", "body", "branches[1]"); parent is the owning node
 * (NONE at the top). Depth is bounded by the document's nesting limit. */
static int collect_list(collect_t *c, json_t *list, uint32_t parent,
                        const char *what) {
  ice__node_t owner = {0};
  const ice__node_t *on = NULL;
  uint32_t scope, first;
  size_t i;
  json_t *def;

  if (parent != ICE__NONE) {
    owner = msg_node(c, parent);
    on = &owner;
  }
  if (ice__collect_scope(c, parent, list, &scope) != 0)
    return -1;
  first = c->n;
  json_array_foreach(list, i, def) {
    if (!json_is_object(def)) {
      ice__verr_item(c->v, on, list, i, "%s[%zu] must be a node object", what,
                     i);
      continue;
    }
    if (add_def(c, def, scope) != 0)
      return -1;
  }
  /* Record the scope's members before recursing (indices are stable). */
  c->scopes[scope].n = c->n - first;
  c->scopes[scope].nodes =
      ice__malloc(sizeof(uint32_t) * (c->scopes[scope].n + 1));
  if (c->scopes[scope].nodes == NULL)
    return -1;
  for (uint32_t k = 0; k < c->scopes[scope].n; k++)
    c->scopes[scope].nodes[k] = first + k;
  return ice__collect_nested(c, first, c->n);
}

/* The nested lists of nodes [first, end): the fields their types declare
 * as lists of nodes (ICE_T_NODES) or lists of such lists
 * (ICE_T_NODE_LISTS). The loader names no type: a registered type nests
 * the same way. A node without its object (a streamed one) has none. */
int ice__collect_nested(collect_t *c, uint32_t first, uint32_t end) {
  for (uint32_t g = first; g < end; g++) {
    const char *type = json_string_value(json_object_get(c->defs[g], "type"));
    const ice__type_entry_t *te =
        type != NULL ? ice__engine_type(c->v->wf->engine, type) : NULL;
    for (const ice_field_t *f = te != NULL ? te->ex->fields : NULL;
         f != NULL && f->name != NULL; f++) {
      int lists = (f->types & ICE_T_NODE_LISTS) != 0;
      ice__node_t self;
      json_t *sub;
      if (!(f->types & (ICE_T_NODES | ICE_T_NODE_LISTS)))
        continue;
      sub = json_object_get(c->defs[g], f->name);
      if (sub == NULL)
        continue;
      self = msg_node(c, g);
      /* One message per problem, at the value, naming the node. */
      if (!json_is_array(sub)) {
        ice__verr_value(c->v, &self, c->defs[g], f->name,
                        "field '%s' must be an array of %s", f->name,
                        lists ? "lists of nodes" : "nodes");
      } else if (lists) {
        size_t b;
        json_t *br;
        json_array_foreach(sub, b, br) {
          char label[48];
          snprintf(label, sizeof(label), "%s[%zu]", f->name, b);
          if (!json_is_array(br))
            ice__verr_item(c->v, &self, sub, b, "%s must be an array of nodes",
                           label);
          else if (collect_list(c, br, g, label) != 0)
            return -1;
        }
      } else if (collect_list(c, sub, g, f->name) != 0) {
        return -1;
      }
    }
  }
  return 0;
}

/* ---- top-level keys ----------------------------------------------------- */

static const char *const top_keys[] = {
    "nodes",          "name",         "version",      "schema_version",
    "blueprint_id",   "id",           "description",  "metadata",
    "failure_policy", "max_parallel", "input_schema", "tools",
    "agents",         "workflows",    "llm",          "pools",
    "inputs",         "outputs",      NULL,
};

static int parse_policy(const char *s, ice__policy_t *out) {
  static const struct {
    const char *name;
    ice__policy_t p;
  } map[] = {{"halt", ICE__POLICY_HALT},
             {"HALT", ICE__POLICY_HALT},
             {"halt_on_first_error", ICE__POLICY_HALT},
             {"continue_possible", ICE__POLICY_CONTINUE},
             {"CONTINUE_POSSIBLE", ICE__POLICY_CONTINUE},
             {"continue_if_possible", ICE__POLICY_CONTINUE},
             {"always", ICE__POLICY_ALWAYS},
             {"ALWAYS", ICE__POLICY_ALWAYS},
             {"always_continue", ICE__POLICY_ALWAYS}};
  for (size_t i = 0; i < ICE__ARRAY_SIZE(map); i++) {
    if (strcmp(s, map[i].name) == 0) {
      *out = map[i].p;
      return 0;
    }
  }
  return -1;
}

static char *stem_of(const char *file) {
  const char *base = strrchr(file, '/');
  const char *dot;

  base = base != NULL ? base + 1 : file;
  dot = strrchr(base, '.');
  /* A file name is bytes; the workflow's name goes into JSON. */
  return ice__utf8_dup(base, dot != NULL && dot != base ? (size_t)(dot - base)
                                                        : strlen(base));
}

/* `pools` (SPEC §4.2): name -> size >= 1. `llm` exists without being
 * defined (size 16) and comes first; an entry resizes it. */
static void check_pools(ice__vctx_t *v, json_t *pools) {
  ice_workflow_t *wf = v->wf;
  size_t n = 1 + json_object_size(pools);
  const char *k;
  json_t *x;

  wf->pool_names = ice__calloc(n, sizeof(*wf->pool_names));
  wf->pool_sizes = ice__calloc(n, sizeof(*wf->pool_sizes));
  if (wf->pool_names == NULL || wf->pool_sizes == NULL)
    return;
  wf->pool_names[0] = "llm";
  wf->pool_sizes[0] = 16;
  wf->npools = 1;
  json_object_foreach(pools, k, x) {
    uint32_t i = strcmp(k, "llm") == 0 ? 0 : wf->npools;
    if (!json_is_integer(x) || json_integer_value(x) < 1 ||
        json_integer_value(x) > 1000000) {
      ice__verr(v, NULL, pools, k, "pools.%s must be an integer >= 1", k);
      continue;
    }
    wf->pool_names[i] = k;
    wf->pool_sizes[i] = (uint32_t)json_integer_value(x);
    if (i == wf->npools)
      wf->npools++;
  }
}

void ice__load_top(ice__vctx_t *v, json_t *root) {
  ice_workflow_t *wf = v->wf;
  const char *k;
  json_t *x;
  const char *name = NULL;

  json_object_foreach(root, k, x) {
    char h[96];
    if (!ice__in_list(k, top_keys) && !ice__is_x_key(k))
      ice__verr(v, NULL, root, k, "unknown field '%s' at the top level%s", k,
                ice__hint(h, sizeof(h), k, top_keys, ice__list_len(top_keys)));
  }
  if ((x = ice__field(v, NULL, root, "name", ICE_T_STRING)) != NULL)
    name = json_string_value(x);
  ice__field(v, NULL, root, "version", ICE_T_STRING);
  if ((x = ice__field(v, NULL, root, "schema_version", ICE_T_STRING)) != NULL) {
    const char *sv = json_string_value(x);
    if (strcmp(sv, "1.1.0") != 0 && strcmp(sv, "1.2.0") != 0)
      ice__verr(v, NULL, root, "schema_version",
                "schema_version '%s' is not supported (use 1.1.0 or 1.2.0)",
                sv);
  }
  if (name == NULL) {
    json_t *md = json_object_get(root, "metadata");
    name = json_string_value(json_object_get(md, "draft_name"));
  }
  if (name == NULL)
    name = json_string_value(json_object_get(root, "blueprint_id"));
  wf->name = name != NULL ? ice__strdup(name) : stem_of(wf->file);

  wf->policy = ICE__POLICY_CONTINUE;
  if ((x = ice__field(v, NULL, root, "failure_policy", ICE_T_STRING)) != NULL &&
      parse_policy(json_string_value(x), &wf->policy) != 0)
    ice__verr(v, NULL, root, "failure_policy",
              "failure_policy '%s' is not one of halt, continue_possible, "
              "always",
              json_string_value(x));
  wf->max_parallel = 5;
  if ((x = ice__field(v, NULL, root, "max_parallel", ICE_T_INT)) != NULL) {
    if (json_integer_value(x) < 1 || json_integer_value(x) > 1000000)
      ice__verr(v, NULL, root, "max_parallel",
                "max_parallel must be an integer >= 1");
    else
      wf->max_parallel = (int)json_integer_value(x);
  }
  if ((x = ice__field(v, NULL, root, "input_schema", ICE_T_OBJECT)) != NULL) {
    ice__err_t err;
    if (ice__schema_compile(x, &wf->input_schema, &err) != 0)
      ice__verr(v, NULL, root, "input_schema", "input_schema: %s", err.msg);
  }
  /* Bundle workflows (SPEC §1.1): declared inputs, rendered outputs. */
  ice__inputs_compile(v, root);
  ice__outputs_compile(v, root);
  wf->tools = ice__field(v, NULL, root, "tools", ICE_T_OBJECT);
  check_pools(v, ice__field(v, NULL, root, "pools", ICE_T_OBJECT));
  ice__field(v, NULL, root, "agents", ICE_T_OBJECT);
  ice__llm_defaults_check(v, ice__field(v, NULL, root, "llm", ICE_T_OBJECT));
  if ((x = ice__field(v, NULL, root, "workflows", ICE_T_OBJECT)) != NULL) {
    const char *wk;
    json_t *wv;
    json_object_foreach(x, wk, wv) {
      if (!json_is_string(wv))
        ice__verr(v, NULL, x, wk, "workflows.%s must be a path string", wk);
    }
  }
}

/* ---- building ----------------------------------------------------------- */

/* The nodes of c as wf's nodes [from, c->n) (allocated for c->n, the ones
 * before kept), each scope from `scope` on wired to its nodes and to the
 * node that owns it. The scopes pass to wf. */
int ice__load_nodes(ice_workflow_t *wf, collect_t *c, uint32_t from,
                    uint32_t scope) {
  if (c->n > wf->nnodes || wf->nodes == NULL) {
    ice__node_t *nodes = ice__realloc(
        wf->nodes, (size_t)(c->n == 0 ? 1 : c->n) * sizeof(*nodes));
    if (nodes == NULL)
      return ICE_ENOMEM;
    memset(nodes + from, 0, (size_t)(c->n - from) * sizeof(*nodes));
    wf->nodes = nodes;
  }
  wf->nnodes = c->n;
  for (uint32_t i = from; i < c->n; i++) {
    wf->nodes[i].idx = i;
    wf->nodes[i].def = c->defs[i];
  }
  wf->scopes = c->scopes;
  wf->nscopes = c->nscopes;
  c->scopes = NULL;
  for (uint32_t s = scope; s < wf->nscopes; s++) {
    for (uint32_t k = 0; k < wf->scopes[s].n; k++) {
      ice__node_t *n = &wf->nodes[wf->scopes[s].nodes[k]];
      n->scope = s;
      n->local = k;
    }
    if (wf->scopes[s].parent != ICE__NONE) {
      ice__node_t *p = &wf->nodes[wf->scopes[s].parent];
      uint32_t *cs =
          ice__realloc(p->child_scopes, (p->nchild + 1) * sizeof(uint32_t));
      if (cs == NULL)
        return ICE_ENOMEM;
      p->child_scopes = cs;
      p->child_scopes[p->nchild++] = s;
    }
  }
  return 0;
}

int ice__load_id(ice__vctx_t *v, ice__node_t *n) {
  json_t *idv = json_object_get(n->def, "id");

  if (idv == NULL) {
    ice__verr(v, n, n->def, NULL, "missing required field 'id'");
    return 0;
  }
  if (!json_is_string(idv) || !ice__valid_id(json_string_value(idv))) {
    ice__verr(v, n, n->def, "id",
              "field 'id' must be a string matching "
              "^[A-Za-z_][A-Za-z0-9_-]*$");
    return 0;
  }
  n->id = json_string_value(idv);
  if (ice__expr_is_keyword(n->id, strlen(n->id)))
    /* SPEC §2.1 allows the id, but no expression can name it (§3.2): say
     * so, and how its output can still be read. */
    ice__vwarn(v, n, n->def, "id",
               "id '%s' is a keyword of expressions: expressions and "
               "templates cannot name it (read its output through "
               "input_mappings, or choose another id)",
               n->id);
  switch (ice__workflow_add_id(v->wf, n->idx)) {
  case 0:
    return 0;
  case 1:
    ice__verr(v, NULL, n->def, "id", "duplicate id '%s'", n->id);
    return 0;
  default:
    return ICE_ENOMEM;
  }
}

void ice__load_check(ice__vctx_t *v, ice__node_t *n) {
  ice_workflow_t *wf = v->wf;
  json_t *tv = json_object_get(n->def, "type");
  const ice__type_entry_t *te = NULL;

  if (tv == NULL) {
    ice__verr(v, n, n->def, NULL, "missing required field 'type'");
  } else if (!json_is_string(tv)) {
    ice__verr(v, n, n->def, "type", "field 'type' must be a string");
  } else {
    n->type = json_string_value(tv);
    te = ice__engine_type(wf->engine, n->type);
    if (te == NULL) {
      const char *names[64];
      size_t nn = 0;
      char h[96];
      for (size_t t = 0; t < wf->engine->ntypes && nn < 64; t++)
        names[nn++] = wf->engine->types[t].ex->type;
      ice__verr(v, n, n->def, "type", "unknown node type '%s'%s", n->type,
                ice__hint(h, sizeof(h), n->type, names, nn));
    }
  }
  if (te != NULL)
    n->ex = te->ex;
  ice__check_node(v, n, te);
}

void ice__load_compile(ice__vctx_t *v, ice__node_t *n) {
  if (n->ex == NULL)
    return;
  if (n->ex->validate != NULL) {
    char msg[512] = "";
    if (n->ex->validate(n->def, msg, sizeof(msg)) != 0)
      ice__verr(v, n, n->def, NULL, "%s", msg[0] ? msg : "invalid config");
  }
  if (n->ex->compile != NULL) {
    /* Once per node, at validation; every attempt gets the result. */
    ice_compile_t cc = {v, n};
    n->xdata = n->ex->compile(&cc);
  }
}

int ice__load_graph(ice__vctx_t *v) {
  ice_workflow_t *wf = v->wf;
  int rc = ice__graph_check(v);

  if (rc == 0)
    rc = ice__tool_defs_check(v);
  if (rc == 0 && wf->engine->refs != NULL)
    rc = wf->engine->refs->check_names(v);
  return rc;
}

void ice__collect_free(collect_t *c) {
  for (uint32_t i = 0; c->scopes != NULL && i < c->nscopes; i++)
    ice__free(c->scopes[i].nodes);
  ice__free(c->scopes);
  ice__free(c->defs);
  ice__free(c->scope);
}

/* The nodes of root, as SPEC §4.1 orders the checks: ids first, so that
 * every later message can name its node, then each node's type and
 * fields, the graph, and last each type's compile hook, which may look at
 * resolved dependencies. */
static int build(ice__vctx_t *v, json_t *root, void *ctx) {
  ice_workflow_t *wf = v->wf;
  collect_t c;
  json_t *nodes;
  int rc = 0;

  (void)ctx;
  memset(&c, 0, sizeof(c));
  c.v = v;
  if (!json_is_object(root)) {
    ice__verr(v, NULL, root, NULL, "a workflow must be an object with 'nodes'");
    return 0;
  }
  ice__load_top(v, root);
  nodes = json_object_get(root, "nodes");
  if (nodes == NULL) {
    ice__verr(v, NULL, root, NULL, "missing required field 'nodes'");
    return 0;
  }
  if (json_is_array(nodes) && json_array_size(nodes) == 0) {
    ice__verr(v, NULL, root, "nodes", "'nodes' must hold at least one node");
    return 0;
  }
  if (!json_is_array(nodes)) {
    ice__verr_value(v, NULL, root, "nodes",
                    "'nodes' must be an array of nodes");
    return 0;
  }
  if (collect_list(&c, nodes, ICE__NONE, "nodes") != 0) {
    rc = ICE_ENOMEM;
    goto out;
  }
  if (c.nscopes == 0)
    goto out;
  if ((rc = ice__load_nodes(wf, &c, 0, 0)) != 0)
    goto out;
  for (uint32_t i = 0; i < wf->nnodes && rc == 0; i++)
    rc = ice__load_id(v, &wf->nodes[i]);
  if (rc != 0)
    goto out;
  for (uint32_t i = 0; i < wf->nnodes; i++)
    ice__load_check(v, &wf->nodes[i]);
  /* Every build that reaches its compile hooks passes here first: the
   * files it references are loaded once per outermost validation. */
  if (wf->engine->refs != NULL)
    wf->engine->refs->begin(v);
  if ((rc = ice__load_graph(v)) != 0)
    goto out;
  for (uint32_t i = 0; i < wf->nnodes; i++)
    ice__load_compile(v, &wf->nodes[i]);
out:
  ice__collect_free(&c);
  return rc;
}

static char *dir_of(const char *file) {
  const char *slash = file != NULL ? strrchr(file, '/') : NULL;

  if (file == NULL)
    return NULL;
  if (slash == NULL)
    return ice__strdup(".");
  if (slash == file)
    return ice__strdup("/");
  return ice__strndup(file, (size_t)(slash - file));
}

/* Validates doc. nsoft: problems the parser already reported (the load
 * fails, but every other problem is still found). Warnings alone do not
 * fail it. */
int ice__load_finish(ice_engine_t *e, const char *name, json_t *doc,
                     ice__posmap_t *pos, int nsoft, ice_workflow_t **out,
                     ice_diags_t *diags, ice__build_fn build_fn, void *ctx) {
  ice_workflow_t *wf;
  ice__vctx_t v;
  int rc;

  wf = ice__calloc(1, sizeof(*wf));
  if (wf == NULL) {
    json_decref(doc);
    ice__pos_free(pos);
    return ICE_ENOMEM;
  }
  wf->refs = 1;
  wf->engine = e;
  wf->doc = doc;
  wf->pos = *pos;
  wf->file = ice__strdup(name != NULL ? name : "<workflow>");
  wf->dir = dir_of(wf->file);
  if (wf->file == NULL || wf->dir == NULL) {
    ice_workflow_free(wf);
    return ICE_ENOMEM;
  }
  v = (ice__vctx_t){.wf = wf, .diags = diags};
  /* A file that declares its inputs accepts an undeclared one only when
   * one of its expressions reads it: collect the names they read. The
   * files it references collect their own. */
  if (json_is_object(doc) && json_object_get(doc, "inputs") != NULL &&
      (wf->reads = json_object()) == NULL) {
    ice_workflow_free(wf);
    return ICE_ENOMEM;
  }
  {
    json_t *outer = ice__expr_collect(wf->reads);
    rc = build_fn(&v, doc, ctx);
    ice__expr_collect(outer);
  }
  if (rc == 0 && (v.errors > 0 || nsoft > 0))
    rc = ICE_EWORKFLOW;
  if (rc != 0) {
    ice_workflow_free(wf);
    return rc;
  }
  *out = wf;
  return 0;
}

int ice_workflow_parse(ice_engine_t *e, const char *name, const char *text,
                       size_t len, int is_yaml, ice_workflow_t **out,
                       ice_diags_t *diags) {
  ice__posmap_t pos = {0};
  json_t *doc;
  char msg[512];
  int line, col, nsoft = 0;

  *out = NULL;
  if (e == NULL || text == NULL)
    return ICE_EINVAL;
  if (!is_yaml) {
    /* Fast path: jansson reads JSON several times faster than libfyaml and
     * with a fraction of the memory, but keeps no positions. Positions
     * only matter for diagnostics, so any problem sends the text through
     * libfyaml again, which reports it with its line and column. */
    json_t *fast = NULL;
    int rc = ice__load_stream(e, name, text, len, out);
    if (rc != 1 && rc != 2)
      return rc;
    if (rc == 1)
      fast = ice__json_fast_parse(text, len);
    /* What the quick reader leaves (escapes \u, big integers, errors)
     * goes through jansson; jansson allows 2048 levels, and files get
     * the same limit either way. */
    if (rc == 1 && fast == NULL &&
        (fast = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL)) != NULL &&
        ice__json_too_deep(fast, ICE__DOC_MAX_DEPTH)) {
      json_decref(fast);
      fast = NULL;
    }
    if (fast != NULL) {
      ice_diags_t quiet = {0};
      rc = ice__load_finish(e, name, fast, &pos, 0, out, &quiet, build, NULL);
      /* Warnings need their positions too. */
      int redo = rc == ICE_EWORKFLOW || (rc == 0 && quiet.count > 0);
      ice_diags_free(&quiet);
      if (!redo)
        return rc;
      ice_workflow_free(*out);
      *out = NULL;
      pos = (ice__posmap_t){0};
    }
  }
  if (ice__doc_parse_all(text, len, is_yaml, &doc, &pos, diags, name, &nsoft,
                         &line, &col, msg, sizeof(msg)) != 0) {
    ice__pos_free(&pos);
    ice__diags_add_sev(diags, ICE_DIAG_ERROR, name, line, col, msg);
    return ICE_EWORKFLOW;
  }
  return ice__load_finish(e, name, doc, &pos, nsoft, out, diags, build, NULL);
}

int ice_workflow_from_json(ice_engine_t *e, const char *name, json_t *doc,
                           ice_workflow_t **out, ice_diags_t *diags) {
  ice__posmap_t pos = {0};

  *out = NULL;
  if (e == NULL || doc == NULL)
    return ICE_EINVAL;
  /* The document is kept as it is; the caller must not change it. */
  return ice__load_finish(e, name, json_incref(doc), &pos, 0, out, diags, build,
                          NULL);
}

static int has_suffix(const char *s, const char *suf) {
  size_t n = strlen(s), m = strlen(suf);

  return n >= m && strcmp(s + n - m, suf) == 0;
}

int ice_workflow_load(ice_engine_t *e, const char *path, ice_workflow_t **out,
                      ice_diags_t *diags) {
  char *buf = NULL;
  size_t len = 0;
  int rc;

  *out = NULL;
  if (e == NULL || path == NULL)
    return ICE_EINVAL;
  /* Bounded and non-blocking: /dev/zero or a FIFO must not hang. */
  rc = ice__file_read_diag(path, "workflow", &buf, &len, diags);
  if (rc != 0)
    return rc;
  {
    /* Sub-workflows check this stack to refuse a file that includes
     * itself. */
    char *real = realpath(path, NULL);
    int pushed = 0;
    if (real != NULL && e->nloading < ICE__MAX_LOADING) {
      e->loading[e->nloading++] = real;
      pushed = 1;
    } else if (real != NULL) {
      free(real);
      ice__free(buf);
      ice__diags_add_sev(diags, ICE_DIAG_ERROR, path, 0, 0,
                         "workflow files nested too deeply (sub-workflows)");
      return ICE_EWORKFLOW;
    }
    rc = ice_workflow_parse(
        e, path, buf, len,
        has_suffix(path, ".yaml") || has_suffix(path, ".yml"), out, diags);
    if (pushed)
      free(e->loading[--e->nloading]);
  }
  ice__free(buf);
  return rc;
}
