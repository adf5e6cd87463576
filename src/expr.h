/* The expression language of SPEC §3.2: a real parser producing an AST,
 * and an evaluator over JSON values. Parsing happens once, when a workflow
 * is validated; evaluation happens per node attempt and never prints. */
#ifndef ICE_EXPR_H
#define ICE_EXPR_H

#include "internal.h"

typedef struct ice__expr_s ice__expr_t;

/* Parses `len` bytes of `src`. On success *out is a new expression (free
 * with ice__expr_free) and 0 is returned. On a syntax error returns -1 and
 * fills err: kind ICE__KIND_EXPRESSION, col = 1-based column in src, msg =
 * what was wrong ("expected ')'", "unexpected token 'x'" ...). */
int ice__expr_parse(const char *src, size_t len, ice__expr_t **out,
                    ice__err_t *err);
/* The same, sharing a simple path's key with *last_key when they are
 * equal (*last_key, a reference, is then the last key made; the caller
 * drops it at the end): for a template of many such expressions. */
int ice__expr_parse_keys(const char *src, size_t len, ice__expr_t **out,
                         ice__err_t *err, json_t **last_key);

/* Evaluates e. Top-level names are resolved through lookup(data, ...).
 * On success *out is a NEW reference and 0 is returned. On error returns
 * -1 with err->kind ICE__KIND_EXPRESSION and a message such as
 * "undefined: inputs.model" or "cannot add integer and string". */
int ice__expr_eval(const ice__expr_t *e, ice__lookup_fn lookup, void *data,
                   json_t **out, ice__err_t *err);

/* Python truthiness of a JSON value (null, false, 0, "", [], {} are false). */
int ice__json_truthy(const json_t *v);

/* Deep equality with 1 == 1.0. */
int ice__json_equal(const json_t *a, const json_t *b);

/* The source text the expression was parsed from (NUL-terminated). */
const char *ice__expr_source(const ice__expr_t *e);

void ice__expr_free(ice__expr_t *e);

/* 1 when the len bytes at s are a keyword of the language (true, None,
 * and, if, ...): a name that an expression cannot use as a path. */
int ice__expr_is_keyword(const char *s, size_t len);

/* ---- expr_names.c: the names an expression reads (SPEC §1.1) ---- */

/* Adds to `set` (an object used as a set of keys) each top-level name e
 * reads; for `inputs.K` and `inputs["K"]` the key K instead, and "inputs"
 * when e reads the inputs object any other way. 0, or -1 on ENOMEM. */
int ice__expr_reads(const ice__expr_t *e, json_t *set);
/* Installs `set` (NULL: none) as the collector of this thread: from now
 * on every expression parsed adds what it reads to it (ice__expr_reads).
 * Returns the collector it replaces, to be put back. */
json_t *ice__expr_collect(json_t *set);
/* What ice__expr_parse calls on each expression it made: 0, or -1 on
 * ENOMEM. */
int ice__expr_collected(const ice__expr_t *e);

#endif
