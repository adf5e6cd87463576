/* Workflow documents: JSON or YAML text turned into jansson values, with a
 * side table of source positions so that validation can name FILE:LINE:COL
 * for any node or field. */
#ifndef ICE_DOC_H
#define ICE_DOC_H

#include "internal.h"

#include <ice.h>

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

/* Appends a diagnostic (strings copied); ice__diags_add makes an error,
 * ice__diags_add_sev one of the given severity (ICE_DIAG_ERROR or
 * ICE_DIAG_WARNING). */
int ice__diags_add(ice_diags_t *d, const char *file, int line, int col,
                   const char *msg);
int ice__diags_add_sev(ice_diags_t *d, int severity, const char *file, int line,
                       int col, const char *msg);

/* Parses text (JSON when !is_yaml; YAML 1.2 core schema otherwise). On
 * success *root is a new reference and positions are added to pm. On
 * failure returns -1 with a message and 1-based line/col in err_* .
 *
 * Problems after which the rest of the file can still be trusted do not
 * stop the parse when soft is not NULL: each is appended to soft as an
 * error in `file`, and parsing goes on (SPEC §4.1 reports every problem).
 * They are: a duplicate key (the first value is kept), an integer or
 * number out of range, a YAML scalar that does not match its tag (null
 * takes its place) and an unsupported YAML tag (ignored). *nsoft counts
 * them; the caller must treat the document as invalid when it is > 0.
 * With soft NULL the first of them fails the parse. */
int ice__doc_parse_all(const char *text, size_t len, int is_yaml, json_t **root,
                       ice__posmap_t *pm, ice_diags_t *soft, const char *file,
                       int *nsoft, int *err_line, int *err_col, char *err_msg,
                       size_t err_len);

/* ice__doc_parse_all with soft NULL: the first problem fails the parse. */
int ice__doc_parse(const char *text, size_t len, int is_yaml, json_t **root,
                   ice__posmap_t *pm, int *err_line, int *err_col,
                   char *err_msg, size_t err_len);

#endif
