/* The dependency graph: dependencies are resolved to sibling indices (a
 * node depends only on nodes of its own list), mappings to dependency
 * indices, and each list is ordered with Kahn's algorithm, which gives the
 * depth used for scheduling priority. What Kahn leaves over lies on or
 * behind a cycle; an iterative DFS then spells each cycle out. */
#include "graph.h"

#include "engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

  return x < y ? -1 : x > y;
}

/* Room for k dependencies of a node, from the workflow's block (counted
 * by ice__graph_check): one allocation for all the nodes' lists. */
static uint32_t *deps_room(ice_workflow_t *wf, size_t k) {
  uint32_t *p = wf->deps_pool + wf->deps_used;

  wf->deps_used += k;
  return p;
}

int ice__deps_pooled(const ice_workflow_t *wf, const uint32_t *deps) {
  uintptr_t p = (uintptr_t)deps, lo = (uintptr_t)wf->deps_pool;

  return wf->deps_pool != NULL && p >= lo &&
         p < lo + sizeof(uint32_t) * (wf->deps_used + 1);
}

static int resolve_deps(ice__vctx_t *v, ice__node_t *n) {
  ice_workflow_t *wf = v->wf;
  const ice__scope_t *sc = &wf->scopes[n->scope];
  json_t *deps = json_object_get(n->def, "dependencies");
  uint32_t cnt = 0;
  size_t i;
  json_t *d;

  if (!json_is_array(deps)) {
    /* Nested nodes default to depending on the previous sibling. */
    if (deps == NULL && sc->parent != ICE__NONE && n->local > 0) {
      n->deps = deps_room(wf, 1);
      n->deps[0] = n->local - 1;
      n->ndeps = n->nsched = 1;
    }
    return 0;
  }
  n->deps = deps_room(wf, json_array_size(deps));
  json_array_foreach(deps, i, d) {
    const ice__node_t *t;
    if (!json_is_string(d)) {
      ice__verr(v, n, n->def, "dependencies",
                "dependencies[%zu] must be a node id string", i);
      continue;
    }
    t = ice__workflow_node(wf, json_string_value(d));
    if (t == NULL) {
      char h[300];
      const char **ids = ice__malloc(sizeof(char *) * (sc->n + 1));
      for (uint32_t k = 0; ids != NULL && k < sc->n; k++)
        ids[k] = wf->nodes[sc->nodes[k]].id;
      ice__verr(v, n, n->def, "dependencies", "unknown dependency '%s'%s",
                json_string_value(d),
                ids != NULL
                    ? ice__hint(h, sizeof(h), json_string_value(d), ids, sc->n)
                    : "");
      ice__free(ids);
      continue;
    }
    if (t == n) {
      ice__verr(v, n, n->def, "dependencies",
                "a node may not depend on "
                "itself ('%s')",
                n->id);
      continue;
    }
    if (t->scope != n->scope) {
      ice__verr(v, n, n->def, "dependencies",
                "dependency '%s' is not in the same list of nodes (a node "
                "may depend only on its siblings)",
                t->id);
      continue;
    }
    n->deps[cnt++] = t->local;
  }
  qsort(n->deps, cnt, sizeof(uint32_t), cmp_u32);
  n->ndeps = 0;
  for (uint32_t k = 0; k < cnt; k++) {
    if (n->ndeps == 0 || n->deps[n->ndeps - 1] != n->deps[k])
      n->deps[n->ndeps++] = n->deps[k];
  }
  n->nsched = n->ndeps;
  return 0;
}

static int resolve_mappings(ice__vctx_t *v, ice__node_t *n) {
  ice_workflow_t *wf = v->wf;
  json_t *m = json_object_get(n->def, "input_mappings"), *val;
  const char *key;

  if (m == NULL)
    return 0;
  if (!json_is_object(m)) {
    ice__verr(v, n, n->def, "input_mappings",
              "field 'input_mappings' must be an object");
    return 0;
  }
  n->maps = ice__calloc(json_object_size(m) + 1, sizeof(ice__mapping_t));
  if (n->maps == NULL)
    return ICE_ENOMEM;
  json_object_foreach(m, key, val) {
    ice__mapping_t *mp = &n->maps[n->nmaps];
    json_t *src = json_object_get(val, "source_node_id");
    mp->key = key;
    mp->src = ICE__NONE;
    if (!json_is_object(val) || src == NULL) {
      mp->literal = val;
      n->nmaps++;
      continue;
    }
    json_t *path = json_object_get(val, "source_output_key");
    const ice__node_t *t = json_is_string(src)
                               ? ice__workflow_node(wf, json_string_value(src))
                               : NULL;
    if (path != NULL && !json_is_string(path)) {
      ice__verr(v, n, m, key,
                "input_mappings.%s.source_output_key must be a string", key);
      continue;
    }
    if (t == NULL || t->scope != n->scope || n->ndeps == 0 ||
        bsearch(&t->local, n->deps, n->ndeps, sizeof(uint32_t), cmp_u32) ==
            NULL) {
      ice__verr(v, n, m, key,
                "input_mappings.%s: source '%s' is not a dependency of this "
                "node",
                key, json_is_string(src) ? json_string_value(src) : "?");
      continue;
    }
    mp->src = t->local;
    mp->path = path != NULL ? json_string_value(path) : "";
    n->nmaps++;
  }
  return 0;
}

/* Most bytes of a cycle's path in its message: a long cycle is cut at an
 * id boundary, and the message says how many ids were left out. */
#define CYCLE_TEXT_MAX 480

static const char *id_or_q(const ice__node_t *n) {
  return n->id != NULL ? n->id : "?";
}

/* Reports the cycle that closes at stack[from..top] -> stack[from], as
 * "cycle: a -> b -> ... (N more) -> z -> a" when it is long. */
static void report_cycle(ice__vctx_t *v, const ice__scope_t *sc,
                         const uint32_t *stack, uint32_t from, uint32_t top) {
  ice_workflow_t *wf = v->wf;
  const ice__node_t *first = &wf->nodes[sc->nodes[stack[from]]];
  const ice__node_t *last = &wf->nodes[sc->nodes[stack[top]]];
  size_t cap = CYCLE_TEXT_MAX + 64, len = 0, tail;
  uint32_t k, kept;
  char *path, *msg;
  int line = 0, col = 0;

  /* The tail " -> LAST -> FIRST" (or " -> FIRST" alone) is always shown,
   * so the cycle visibly closes. */
  tail = strlen(id_or_q(first)) + 4;
  if (top > from)
    tail += strlen(id_or_q(last)) + 4;
  cap += tail + strlen(id_or_q(first));
  path = ice__malloc(cap);
  if (path == NULL) {
    v->errors++;
    return;
  }
  len = (size_t)snprintf(path, cap, "%s", id_or_q(first));
  for (k = from + 1; k < top; k++) {
    const char *id = id_or_q(&wf->nodes[sc->nodes[stack[k]]]);
    if (len + strlen(id) + 4 + tail > CYCLE_TEXT_MAX)
      break;
    len += (size_t)snprintf(path + len, cap - len, " -> %s", id);
  }
  kept = k;
  if (kept < top)
    len += (size_t)snprintf(path + len, cap - len, " -> ... (%u more)",
                            top - kept);
  if (top > from)
    len += (size_t)snprintf(path + len, cap - len, " -> %s", id_or_q(last));
  snprintf(path + len, cap - len, " -> %s", id_or_q(first));
  /* Not through ice__verr, whose fixed buffer would cut long ids. */
  if ((first->id != NULL
           ? asprintf(&msg, "node '%s': cycle: %s", first->id, path)
           : asprintf(&msg, "node #%u: cycle: %s", first->idx + 1, path)) >=
      0) {
    if (!ice__pos_get(&wf->pos, first->def, ice__pos_key("dependencies"), &line,
                      &col))
      ice__pos_get(&wf->pos, first->def, ICE__POS_SELF, &line, &col);
    ice__diags_add(v->diags, wf->file, line, col, msg);
    free(msg);
  }
  v->errors++;
  ice__free(path);
}

enum { WHITE, GREY, BLACK };

/* Finds and reports the cycles among the nodes Kahn could not order. */
static int find_cycles(ice__vctx_t *v, const ice__scope_t *sc,
                       const uint8_t *ordered) {
  ice_workflow_t *wf = v->wf;
  uint8_t *mark = ice__calloc(sc->n, 1);
  uint32_t *stack = ice__malloc(sizeof(uint32_t) * (sc->n + 1));
  uint32_t *edge = ice__malloc(sizeof(uint32_t) * (sc->n + 1));

  if (mark == NULL || stack == NULL || edge == NULL) {
    ice__free(mark);
    ice__free(stack);
    ice__free(edge);
    return ICE_ENOMEM;
  }
  for (uint32_t root = 0; root < sc->n; root++) {
    uint32_t top = 0;
    if (ordered[root] || mark[root] != WHITE)
      continue;
    stack[0] = root;
    edge[0] = 0;
    mark[root] = GREY;
    for (;;) {
      const ice__node_t *n = &wf->nodes[sc->nodes[stack[top]]];
      if (edge[top] < n->nouts) {
        uint32_t next = n->outs[edge[top]++];
        if (ordered[next])
          continue;
        if (mark[next] == GREY) {
          uint32_t from = top;
          while (stack[from] != next)
            from--;
          report_cycle(v, sc, stack, from, top);
        } else if (mark[next] == WHITE) {
          mark[next] = GREY;
          stack[++top] = next;
          edge[top] = 0;
        }
        continue;
      }
      mark[stack[top]] = BLACK;
      if (top == 0)
        break;
      top--;
    }
  }
  ice__free(mark);
  ice__free(stack);
  ice__free(edge);
  return 0;
}

static int order_scope(ice__vctx_t *v, const ice__scope_t *sc) {
  ice_workflow_t *wf = v->wf;
  uint32_t *indeg = ice__calloc(sc->n, sizeof(uint32_t));
  uint32_t *queue = ice__malloc(sizeof(uint32_t) * (sc->n + 1));
  uint8_t *ordered = ice__calloc(sc->n, 1);
  uint32_t head = 0, tail = 0;
  int rc = 0;

  if (indeg == NULL || queue == NULL || ordered == NULL) {
    rc = ICE_ENOMEM;
    goto out;
  }
  for (uint32_t k = 0; k < sc->n; k++) {
    indeg[k] = wf->nodes[sc->nodes[k]].nsched;
    if (indeg[k] == 0)
      queue[tail++] = k;
  }
  while (head < tail) {
    ice__node_t *n = &wf->nodes[sc->nodes[queue[head++]]];
    ordered[n->local] = 1;
    for (uint32_t j = 0; j < n->nouts; j++) {
      ice__node_t *d = &wf->nodes[sc->nodes[n->outs[j]]];
      if (d->depth < n->depth + 1)
        d->depth = n->depth + 1;
      if (--indeg[d->local] == 0)
        queue[tail++] = d->local;
    }
  }
  if (tail < sc->n)
    rc = find_cycles(v, sc, ordered);
out:
  ice__free(indeg);
  ice__free(queue);
  ice__free(ordered);
  return rc;
}

/* Dependents lists, from the dependencies that count for scheduling (all
 * of them when with_back is set). */
static int build_outs(ice_workflow_t *wf, ice__scope_t *sc, int with_back) {
  uint32_t total = 0, at = 0;

  /* One block per scope for every node's list: a node of a chain has one
   * dependent, and its own allocation cost more than the list. */
  ice__free(sc->outs_pool);
  sc->outs_pool = NULL;
  for (uint32_t k = 0; k < sc->n; k++) {
    ice__node_t *n = &wf->nodes[sc->nodes[k]];
    n->outs = NULL;
    n->nouts = 0;
  }
  for (uint32_t k = 0; k < sc->n; k++) {
    const ice__node_t *n = &wf->nodes[sc->nodes[k]];
    for (uint32_t j = 0; j < n->ndeps; j++) {
      if (with_back || n->back == NULL || !n->back[j]) {
        wf->nodes[sc->nodes[n->deps[j]]].nouts++;
        total++;
      }
    }
  }
  sc->outs_pool = ice__malloc(sizeof(uint32_t) * (total + 1));
  if (sc->outs_pool == NULL)
    return ICE_ENOMEM;
  for (uint32_t k = 0; k < sc->n; k++) {
    ice__node_t *n = &wf->nodes[sc->nodes[k]];
    n->outs = sc->outs_pool + at;
    at += n->nouts;
    n->nouts = 0;
  }
  /* Filling in node order keeps each outs list sorted by file position. */
  for (uint32_t k = 0; k < sc->n; k++) {
    const ice__node_t *n = &wf->nodes[sc->nodes[k]];
    for (uint32_t j = 0; j < n->ndeps; j++) {
      if (with_back || n->back == NULL || !n->back[j]) {
        ice__node_t *d = &wf->nodes[sc->nodes[n->deps[j]]];
        d->outs[d->nouts++] = k;
      }
    }
  }
  return 0;
}

/* Marks in `seen` every node reachable from `from` (forward along outs, or
 * backward along deps). */
static void reach(const ice_workflow_t *wf, const ice__scope_t *sc,
                  uint32_t from, int forward, uint8_t *seen, uint32_t *queue) {
  uint32_t head = 0, tail = 0;

  queue[tail++] = from;
  while (head < tail) {
    const ice__node_t *n = &wf->nodes[sc->nodes[queue[head++]]];
    uint32_t cnt = forward ? n->nouts : n->ndeps;
    const uint32_t *next = forward ? n->outs : n->deps;
    for (uint32_t j = 0; j < cnt; j++) {
      if (!seen[next[j]]) {
        seen[next[j]] = 1;
        queue[tail++] = next[j];
      }
    }
  }
}

/* Adds dependency d to x (kept sorted; a scheduling dependency). A list
 * in the workflow's block moves to its own allocation. */
static int add_dep(const ice_workflow_t *wf, ice__node_t *x, uint32_t d) {
  int pooled = ice__deps_pooled(wf, x->deps);
  uint32_t *nd = pooled
                     ? ice__malloc(sizeof(uint32_t) * (x->ndeps + 1))
                     : ice__realloc(x->deps, sizeof(uint32_t) * (x->ndeps + 1));
  uint32_t i;

  if (nd == NULL)
    return -1;
  if (pooled && x->ndeps > 0)
    memcpy(nd, x->deps, sizeof(uint32_t) * x->ndeps);
  x->deps = nd;
  if (x->back != NULL) {
    uint8_t *nb = ice__realloc(x->back, x->ndeps + 1);
    if (nb == NULL)
      return -1;
    x->back = nb;
  }
  for (i = x->ndeps; i > 0 && x->deps[i - 1] > d; i--) {
    x->deps[i] = x->deps[i - 1];
    if (x->back != NULL)
      x->back[i] = x->back[i - 1];
  }
  x->deps[i] = d;
  if (x->back != NULL)
    x->back[i] = 0;
  x->ndeps++;
  x->nsched++;
  return 0;
}

/* A recursive node R closes a loop with the nodes on cycles through it
 * (SPEC §7.4): they are its body, and their dependencies on R are back
 * edges, ignored for scheduling. At least one of R's recursive_sources
 * must be on such a cycle. */
static int mark_recursive(ice__vctx_t *v, const ice__scope_t *sc,
                          int *changed) {
  ice_workflow_t *wf = v->wf;
  uint8_t *fwd = NULL, *bwd = NULL;
  uint32_t *queue = NULL;
  int rc = 0;

  *changed = 0;
  for (uint32_t k = 0; k < sc->n; k++)
    wf->nodes[sc->nodes[k]].rec_owner = ICE__NONE;
  for (uint32_t r = 0; r < sc->n; r++) {
    ice__node_t *R = &wf->nodes[sc->nodes[r]];
    json_t *srcs, *sv;
    size_t i;
    int on_cycle = 0;
    /* Types that close cycles (ICE_EX_CLOSES_CYCLES) name the nodes that
     * feed them in `recursive_sources`. */
    if (R->ex == NULL || !(R->ex->flags & ICE_EX_CLOSES_CYCLES))
      continue;
    if (queue == NULL) {
      fwd = ice__calloc(sc->n, 1);
      bwd = ice__calloc(sc->n, 1);
      queue = ice__malloc(sizeof(uint32_t) * (sc->n + 1));
      if (fwd == NULL || bwd == NULL || queue == NULL) {
        rc = ICE_ENOMEM;
        goto out;
      }
    }
    memset(fwd, 0, sc->n);
    memset(bwd, 0, sc->n);
    reach(wf, sc, r, 1, fwd, queue);
    reach(wf, sc, r, 0, bwd, queue);
    srcs = json_object_get(R->def, "recursive_sources");
    json_array_foreach(srcs, i, sv) {
      const ice__node_t *src =
          json_is_string(sv) ? ice__workflow_node(wf, json_string_value(sv))
                             : NULL;
      if (src == NULL || src->scope != R->scope) {
        ice__verr(v, R, R->def, "recursive_sources",
                  "recursive_sources[%zu] is not a node of the same list", i);
        continue;
      }
      if (src != R && fwd[src->local] && bwd[src->local])
        on_cycle = 1;
    }
    if (!on_cycle) {
      /* With agent_package or workflow_ref and no cycle, R loops on its
       * own (SPEC §7.4, the iceOS form): no body, and its sources are
       * ordinary dependencies. */
      if (json_object_get(R->def, "agent_package") != NULL ||
          json_object_get(R->def, "workflow_ref") != NULL) {
        R->rec_pending = 0;
        continue;
      }
      if (json_is_array(srcs))
        ice__verr(v, R, R->def, "recursive_sources",
                  "none of the recursive_sources is on a cycle through "
                  "'%s'",
                  R->id != NULL ? R->id : "?");
      continue;
    }
    *changed = 1; /* back edges, and dependencies added */
    R->body = ice__malloc(sizeof(uint32_t) * (sc->n + 1));
    if (R->body == NULL) {
      rc = ICE_ENOMEM;
      goto out;
    }
    for (uint32_t k = 0; k < sc->n; k++) {
      ice__node_t *b = &wf->nodes[sc->nodes[k]];
      if (k == r || !fwd[k] || !bwd[k])
        continue;
      R->body[R->nbody++] = k;
      b->rec_owner = r;
      for (uint32_t j = 0; j < b->ndeps; j++) {
        if (b->deps[j] != r)
          continue;
        if (b->back == NULL && (b->back = ice__calloc(b->ndeps, 1)) == NULL) {
          rc = ICE_ENOMEM;
          goto out;
        }
        b->back[j] = 1;
        b->nsched--;
      }
    }
    /* A node outside the loop that reads a body node waits for the loop
     * to end, as R's own dependents do, and so sees the final outputs. */
    for (uint32_t k = 0; k < sc->n; k++) {
      ice__node_t *x = &wf->nodes[sc->nodes[k]];
      int reads_body = 0, has_r = 0;
      if (k == r || (fwd[k] && bwd[k]))
        continue;
      for (uint32_t j = 0; j < x->ndeps; j++) {
        has_r |= x->deps[j] == r;
        reads_body |= x->deps[j] != r && fwd[x->deps[j]] && bwd[x->deps[j]];
      }
      if (reads_body && !has_r && add_dep(wf, x, r) != 0) {
        rc = ICE_ENOMEM;
        goto out;
      }
    }
    /* What must finish before an iteration's node may run again. */
    for (uint32_t k = 0; k < R->nbody; k++) {
      ice__node_t *b = &wf->nodes[sc->nodes[R->body[k]]];
      b->rec_pending = 0;
      for (uint32_t j = 0; j < b->ndeps; j++) {
        uint32_t d = b->deps[j];
        if ((b->back == NULL || !b->back[j]) && fwd[d] && bwd[d])
          b->rec_pending++;
      }
    }
    R->rec_pending = 0;
    for (uint32_t j = 0; j < R->ndeps; j++) {
      uint32_t d = R->deps[j];
      if (fwd[d] && bwd[d])
        R->rec_pending++;
    }
  }
out:
  ice__free(fwd);
  ice__free(bwd);
  ice__free(queue);
  return rc;
}

int ice__graph_check(ice__vctx_t *v) {
  ice_workflow_t *wf = v->wf;
  int rc;

  size_t total = 0;

  for (uint32_t i = 0; i < wf->nnodes; i++) {
    const ice__node_t *n = &wf->nodes[i];
    json_t *deps;
    if (n->def == NULL) {
      total += n->ndeps; /* resolved by a streamed load */
      continue;
    }
    deps = json_object_get(n->def, "dependencies");
    total += json_is_array(deps) ? json_array_size(deps) : 1;
  }
  wf->deps_pool = ice__malloc(sizeof(uint32_t) * (total + 1));
  if (wf->deps_pool == NULL)
    return ICE_ENOMEM;
  for (uint32_t i = 0; i < wf->nnodes; i++) {
    ice__node_t *n = &wf->nodes[i];
    if (n->def == NULL) { /* a streamed plain node: resolved already */
      if (n->ndeps > 0) {
        n->deps = deps_room(wf, n->ndeps);
        memcpy(n->deps, v->streamed_deps + v->streamed_off[i],
               n->ndeps * sizeof(uint32_t));
      }
      continue;
    }
    rc = resolve_deps(v, n);
    if (rc == 0)
      rc = resolve_mappings(v, &wf->nodes[i]);
    if (rc != 0)
      return rc;
  }
  for (uint32_t s = 0; s < wf->nscopes; s++) {
    int changed = 0;
    rc = build_outs(wf, &wf->scopes[s], 1);
    if (rc == 0)
      rc = mark_recursive(v, &wf->scopes[s], &changed);
    /* Without a loop closed, the lists with back edges are the lists. */
    if (rc == 0 && changed)
      rc = build_outs(wf, &wf->scopes[s], 0);
    if (rc == 0)
      rc = order_scope(v, &wf->scopes[s]);
    if (rc != 0)
      return rc;
  }
  return 0;
}

/* ---- renderings --------------------------------------------------------- */

typedef struct {
  char *s;
  size_t len, cap;
  int oom;
} buf_t;

static void put(buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void put(buf_t *b, const char *fmt, ...) {
  va_list ap;
  int n;

  if (b->oom)
    return;
  for (;;) {
    va_start(ap, fmt);
    n = vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0) {
      b->oom = 1;
      return;
    }
    if ((size_t)n < b->cap - b->len) {
      b->len += (size_t)n;
      return;
    }
    size_t ncap = (b->cap + (size_t)n) * 2;
    char *ns = ice__realloc(b->s, ncap);
    if (ns == NULL) {
      b->oom = 1;
      return;
    }
    b->s = ns;
    b->cap = ncap;
  }
}

/* A rendering in progress. */
typedef struct {
  const ice_workflow_t *wf;
  buf_t b;
  int mermaid;
  /* Mermaid: the prefix of the ids given to nodes whose own id Mermaid
   * would misread; no node id starts with it. */
  char *alias;
} render_t;

/* Text inside a quoted label or name: escapes what would end or change
 * the string (dot: quote, backslash, newline; Mermaid: entity codes). */
static void put_text(render_t *r, const char *s) {
  for (; *s != '\0'; s++) {
    if (!r->mermaid && (*s == '"' || *s == '\\'))
      put(&r->b, "\\%c", *s);
    else if (!r->mermaid && *s == '\n')
      put(&r->b, "\\n");
    else if (r->mermaid && (*s == '"' || *s == '#' || *s == '<' || *s == '>'))
      put(&r->b, "#%d;", *s);
    else if (r->mermaid && (*s == '\n' || *s == '\r'))
      put(&r->b, " ");
    else
      put(&r->b, "%c", *s);
  }
}

/* Mermaid flowchart words that end or change a statement where a node id
 * is expected (its lexer compares them case-sensitively; any case is
 * avoided here, for other versions of Mermaid). */
static const char *const mermaid_words[] = {
    "end",      "subgraph",    "style",   "class",     "classDef",
    "click",    "linkStyle",   "graph",   "flowchart", "call",
    "href",     "interpolate", "default", "direction", "callback",
    "accTitle", "accDescr",    "title",   "TB",        "TD",
    "BT",       "RL",          "LR",      "_self",     "_blank",
    "_parent",  "_top",        NULL};

/* 1 when Mermaid reads `id` as a plain node id: not a keyword (alone or
 * before a '-', as in `end-x`), no "--" (an edge) and no '-' at the end. */
static int mermaid_plain(const char *id) {
  size_t head = strcspn(id, "-"), len = strlen(id);

  if (strstr(id, "--") != NULL || id[len - 1] == '-')
    return 0;
  for (const char *const *w = mermaid_words; *w != NULL; w++) {
    if (strlen(*w) == head && strncasecmp(id, *w, head) == 0)
      return 0;
  }
  return 1;
}

/* The Mermaid id of n: its own id when Mermaid reads that as a plain id,
 * else ALIAS<index>_<id with '-' as '_'>, which no node id can equal. */
static void put_mid(render_t *r, const ice__node_t *n) {
  if (mermaid_plain(n->id)) {
    put(&r->b, "%s", n->id);
    return;
  }
  put(&r->b, "%s%u_", r->alias, n->idx);
  for (const char *p = n->id; *p != '\0'; p++)
    put(&r->b, "%c", *p == '-' ? '_' : *p);
}

/* "n_", with as many '_' in front as it takes for no node id to start
 * with it. */
static char *alias_prefix(const ice_workflow_t *wf) {
  size_t need = 0;
  char *p;

  for (uint32_t i = 0; i < wf->nnodes; i++) {
    const char *id = wf->nodes[i].id;
    size_t u = strspn(id, "_");
    if (id[u] == 'n' && id[u + 1] == '_' && u + 1 > need)
      need = u + 1;
  }
  p = ice__malloc(need + 3);
  if (p != NULL) {
    memset(p, '_', need);
    memcpy(p + need, "n_", 3);
  }
  return p;
}

/* "c: true_path", "p: branches[1]": which list of n a child scope is. */
static void put_scope_label(render_t *r, const ice__node_t *n, uint32_t scope) {
  const json_t *list = r->wf->scopes[scope].list;
  const char *key;
  json_t *v;

  put_text(r, n->id);
  json_object_foreach(n->def, key, v) {
    if (v == list) {
      put(&r->b, ": ");
      put_text(r, key);
      return;
    }
    if (json_is_array(v)) {
      for (size_t i = 0; i < json_array_size(v); i++) {
        if (json_array_get(v, i) == list) {
          put(&r->b, ": ");
          put_text(r, key);
          put(&r->b, "[%zu]", i);
          return;
        }
      }
    }
  }
}

static void render_scope(render_t *r, uint32_t s, int indent) {
  const ice_workflow_t *wf = r->wf;
  const ice__scope_t *sc = &wf->scopes[s];
  buf_t *b = &r->b;

  for (uint32_t k = 0; k < sc->n; k++) {
    const ice__node_t *n = &wf->nodes[sc->nodes[k]];
    put(b, "%*s", indent, "");
    if (r->mermaid) {
      put_mid(r, n);
      put(b, "[\"%s (", n->id);
      put_text(r, n->type);
      put(b, ")\"]\n");
    } else {
      put(b, "\"%s\" [label=\"%s\\n(", n->id, n->id);
      put_text(r, n->type);
      put(b, ")\"];\n");
    }
    for (uint32_t c = 0; c < n->nchild; c++) {
      if (r->mermaid) {
        /* Mermaid ids are bare words: number the subgraphs, and lengthen
         * the prefix until no node has that id. */
        char sid[64];
        int pad = 0;
        do {
          snprintf(sid, sizeof(sid), "%.*ssubgraph_%u", pad, "__________",
                   n->child_scopes[c]);
        } while (ice__workflow_find(wf, sid, strlen(sid)) != ICE__NONE &&
                 ++pad < 10);
        put(b, "%*ssubgraph %s [\"", indent, "", sid);
      } else {
        put(b, "%*ssubgraph \"cluster/%s/%u\" {\n%*slabel=\"", indent, "",
            n->id, c, indent + 2, "");
      }
      put_scope_label(r, n, n->child_scopes[c]);
      put(b, r->mermaid ? "\"]\n" : "\";\n");
      render_scope(r, n->child_scopes[c], indent + 2);
      put(b, r->mermaid ? "%*send\n" : "%*s}\n", indent, "");
    }
  }
  for (uint32_t k = 0; k < sc->n; k++) {
    const ice__node_t *n = &wf->nodes[sc->nodes[k]];
    for (uint32_t j = 0; j < n->ndeps; j++) {
      const ice__node_t *d = &wf->nodes[sc->nodes[n->deps[j]]];
      put(b, "%*s", indent, "");
      if (r->mermaid) {
        put_mid(r, d);
        put(b, " --> ");
        put_mid(r, n);
        put(b, "\n");
      } else {
        put(b, "\"%s\" -> \"%s\";\n", d->id, n->id);
      }
    }
  }
}

int ice_workflow_graph(const ice_workflow_t *wf, const char *format,
                       char **out) {
  render_t r = {wf, {NULL, 0, 0, 0}, 0, NULL};

  *out = NULL;
  if (wf == NULL || format == NULL)
    return ICE_EINVAL;
  if (strcmp(format, "mermaid") == 0)
    r.mermaid = 1;
  else if (strcmp(format, "dot") != 0)
    return ICE_EINVAL;
  r.b.cap = 256;
  r.b.s = ice__malloc(r.b.cap);
  if (r.mermaid)
    r.alias = alias_prefix(wf);
  if (r.b.s == NULL || (r.mermaid && r.alias == NULL)) {
    ice__free(r.b.s);
    ice__free(r.alias);
    return ICE_ENOMEM;
  }
  r.b.s[0] = '\0';
  if (r.mermaid) {
    put(&r.b, "flowchart TD\n");
  } else {
    /* The name is free text: escape what would end the dot string. */
    put(&r.b, "digraph \"");
    put_text(&r, wf->name);
    put(&r.b, "\" {\n  rankdir=LR;\n  node [shape=box];\n");
  }
  render_scope(&r, 0, 2);
  if (!r.mermaid)
    put(&r.b, "}\n");
  ice__free(r.alias);
  if (r.b.oom) {
    ice__free(r.b.s);
    return ICE_ENOMEM;
  }
  *out = r.b.s;
  return 0;
}
