/* The names an expression reads, for SPEC §1.1: a run input that a
 * workflow does not declare is bad usage unless some expression or
 * template of the file reads it. While a workflow is being built, load.c
 * installs a collector, and every expression parsed meanwhile (in a
 * template or not, by any node type's compile hook) adds what it reads.
 * Parsing is expr_parse.c's, evaluating expr_eval.c's. */
#include "expr_ast.h"

#include <string.h>

/* The set being filled, or NULL. Per thread: an engine belongs to one
 * thread, and so does every build it makes. */
static _Thread_local json_t *collector;

json_t *ice__expr_collect(json_t *set) {
  json_t *old = collector;

  collector = set;
  return old;
}

static int add(json_t *set, const char *s, size_t len) {
  if (json_object_getn(set, s, len) != NULL)
    return 0;
  return json_object_setn_new(set, s, len, json_true());
}

/* Adds the names n reads: a path's top-level name, or for `inputs.K` and
 * `inputs["K"]` the key K; `inputs` read any other way (whole, or with a
 * computed key) adds "inputs". Recursion is bounded by the parser's
 * height limit. */
static int walk(json_t *set, const node *n) {
  if (n == NULL)
    return 0;
  if (n->kind == N_PATH && n->name != NULL) {
    const seg_t *first = n->nsegs > 0 ? &n->segs[0] : NULL;
    int rc;
    if (n->name_len == 6 && memcmp(n->name, "inputs", 6) == 0 &&
        first != NULL && first->kind != SEG_EXPR && json_is_string(first->key))
      rc = add(set, json_string_value(first->key),
               json_string_length(first->key));
    else
      rc = add(set, n->name, n->name_len);
    if (rc != 0)
      return -1;
  }
  for (size_t i = 0; i < n->nkids; i++) {
    if (walk(set, n->kids[i]) != 0)
      return -1;
  }
  for (size_t i = 0; i < n->nsegs; i++) {
    if (walk(set, n->segs[i].expr) != 0)
      return -1;
  }
  return 0;
}

int ice__expr_reads(const ice__expr_t *e, json_t *set) {
  return walk(set, e->root);
}

int ice__expr_collected(const ice__expr_t *e) {
  return collector != NULL ? ice__expr_reads(e, collector) : 0;
}
