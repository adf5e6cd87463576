/* Workflow documents: JSON or YAML text turned into jansson values, with a
 * side table of source positions so that validation can name FILE:LINE:COL
 * for any node or field. */
#ifndef ICE_DOC_H
#define ICE_DOC_H

#include "internal.h"

/* Positions are keyed by (container, member): an object member by the hash
 * of its key, an array element by its index, the container itself by
 * ICE__POS_SELF. Lookups of unknown keys simply fail. */
typedef struct {
  const void *c;
  uint64_t h;
  int line;
  int col;
} ice__posent_t;

typedef struct {
  ice__posent_t *slots;
  size_t cap;
  size_t count;
} ice__posmap_t;

#define ICE__POS_SELF UINT64_C(0xffffffffffffffff)

uint64_t ice__pos_key(const char *key);
uint64_t ice__pos_index(size_t i);
int ice__pos_put(ice__posmap_t *m, const void *c, uint64_t h, int line,
                 int col);
/* Returns 1 and sets line/col when known, else 0. */
int ice__pos_get(const ice__posmap_t *m, const void *c, uint64_t h, int *line,
                 int *col);
void ice__pos_free(ice__posmap_t *m);

/* Deepest nesting of arrays/objects a workflow file may have. */
#define ICE__DOC_MAX_DEPTH 256

/* 1 when root nests arrays/objects deeper than max levels. */
int ice__json_too_deep(json_t *root, int max);

/* Parses text (JSON when !is_yaml; YAML 1.2 core schema otherwise). On
 * success *root is a new reference and positions are added to pm. On
 * failure returns -1 with a message and 1-based line/col in err_* . */
int ice__doc_parse(const char *text, size_t len, int is_yaml, json_t **root,
                   ice__posmap_t *pm, int *err_line, int *err_col,
                   char *err_msg, size_t err_len);

#endif
