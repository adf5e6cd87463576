/* Templates of SPEC §3.3: `{{ expression }}` inside any string of a JSON
 * value. A value is compiled once (at validation) and rendered per attempt;
 * the parts of the value that hold no template are shared, never copied. */
#ifndef ICE_TEMPLATE_H
#define ICE_TEMPLATE_H

#include "internal.h"

typedef struct ice__tmpl_s ice__tmpl_t;

/* Compiles every string inside `value` (recursively through objects and
 * arrays; object keys are not templated). Returns 0 and sets *out to NULL
 * when `value` holds no template at all: the caller then uses `value` as
 * it is. Returns 0 and a compiled template otherwise (it keeps its own
 * reference to `value`). On a syntax error (an unterminated `{{`, an
 * expression syntax error) returns -1 with err filled: kind
 * ICE__KIND_TEMPLATE or ICE__KIND_EXPRESSION, col = column inside the
 * offending string, msg naming the JSON path of the string inside `value`
 * (e.g. "$.query: unterminated '{{'"). */
int ice__tmpl_compile(json_t *value, ice__tmpl_t **out, ice__err_t *err);

/* Renders t; *out is a NEW reference. A string that is exactly one
 * template yields the expression's JSON value with its type; other
 * strings are rendered as text (SPEC §3.3). Errors: -1, err->kind
 * ICE__KIND_EXPRESSION for an expression error. */
int ice__tmpl_render(const ice__tmpl_t *t, ice__lookup_fn lookup, void *data,
                     json_t **out, ice__err_t *err);

/* Renders a value that may or may not have been compiled: when t is NULL
 * returns a new reference to `value` itself. */
int ice__tmpl_render_or_share(const ice__tmpl_t *t, json_t *value,
                              ice__lookup_fn lookup, void *data, json_t **out,
                              ice__err_t *err);

void ice__tmpl_free(ice__tmpl_t *t);

#endif
