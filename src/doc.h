/* Workflow documents: JSON or YAML text turned into jansson values, with a
 * side table of source positions so that validation can name FILE:LINE:COL
 * for any node or field. */
#ifndef ICE_DOC_H
#define ICE_DOC_H

#include "diag.h"
#include "internal.h"
#include "pos.h"

#include <ice.h>

/* Deepest nesting of arrays/objects a workflow file may have. */
#define ICE__DOC_MAX_DEPTH 256

/* 1 when root nests arrays/objects deeper than max levels. */
int ice__json_too_deep(json_t *root, int max);

/* The JSON text of a plain, valid document as the same values as
 * json_loadb(text, len, JSON_REJECT_DUPLICATES) (keys in the same order),
 * read several times faster, and never nested deeper than
 * ICE__DOC_MAX_DEPTH; NULL when the text is anything else (an escape \u,
 * an integer of 19 digits or more, a duplicate key, an error...): then
 * read it the old way, which reports what it must (jsonfast.c). */
json_t *ice__json_fast_parse(const char *text, size_t len);

/* The same, for a streamed load (load_stream.c). Each element of the
 * root object's "nodes" array that is an object is first offered to
 * take(ud, root, j), with j at its '{' (root holds the members read so
 * far): take() may read the node itself through j and return 0, or leave
 * it (1; where it stopped does not matter), or give up (-1). A node it
 * leaves is read, then handed to each(ud, root, item) (item a reference,
 * taken) instead of being kept: "nodes" is an empty array in the result.
 * NULL as ice__json_fast_parse, when take() or each() gives up, or when a
 * member follows "nodes" (the nodes were checked without it). */
typedef struct ice__jrd_s ice__jrd_t;
json_t *ice__json_fast_stream(const char *text, size_t len,
                              int (*take)(void *ud, json_t *root,
                                          ice__jrd_t *j),
                              int (*each)(void *ud, json_t *root, json_t *item),
                              void *ud);
/* take()'s reading (jsonrd.h), and a whole value as jansson values
 * (NULL when the quick reader gives up). */
json_t *ice__jrd_value(ice__jrd_t *j);

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
