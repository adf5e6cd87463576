/* Schemas of SPEC §2.3: JSON Schema (a practical subset) and the simple
 * iceOS form {field: "str"|"int"|...}. Compiled once at validation,
 * checked per node attempt. */
#ifndef ICE_SCHEMA_H
#define ICE_SCHEMA_H

#include "internal.h"

typedef struct ice__schema_s ice__schema_t;

/* Compiles `schema` (a JSON object). Returns 0 and a new schema, or -1 and
 * a message in err (e.g. "unknown type 'strng' for field 'x'",
 * "'minimum' must be a number") when the schema itself is invalid. */
int ice__schema_compile(json_t *schema, ice__schema_t **out, ice__err_t *err);

/* Checks value. Returns 0 when it conforms, else -1 with err->msg naming
 * the JSON path of the first problem: "$.count: expected integer, got
 * string", "$: missing required field 'name'", "$.tags[2]: ...". The kind
 * is left for the caller to set (input_validation / output_validation). */
int ice__schema_check(const ice__schema_t *s, const json_t *value,
                      ice__err_t *err);

void ice__schema_free(ice__schema_t *s);

/* The JSON Schema form of a schema written in either dialect (an LLM's
 * response_format): JSON Schema as it is, the simple form as an object
 * schema with every field required and no other. New reference; NULL on
 * ENOMEM. */
json_t *ice__schema_as_json_schema(json_t *schema);

#endif
