/* libFuzzer target: bytes -> the schema compiler and validator (SPEC
 * §2.3, both dialects). The input is SCHEMA, or SCHEMA '\0' VALUE, both
 * JSON; the value (or, without one, each of a few fixed values) is checked
 * against the compiled schema. Failures must have a message; a schema that
 * compiles must also compile in its JSON Schema form (an LLM node's
 * response_format). */
#include "schema.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char *const fixed[] = {
    "null",
    "true",
    "0",
    "-1",
    "2.5",
    "\"\"",
    "\"abc\"",
    "[]",
    "[1, \"a\", null]",
    "{}",
    "{\"name\": \"x\", \"count\": 3, \"tags\": [\"a\"], \"n\": {\"a\": 1}}",
};

static void check(const ice__schema_t *s, json_t *v) {
  ice__err_t err;

  memset(&err, 0, sizeof(err));
  if (ice__schema_check(s, v, &err) != 0 && err.msg[0] == '\0')
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static json_t *values[sizeof(fixed) / sizeof(fixed[0])];
  const char *text = (const char *)data, *nul = memchr(data, '\0', size);
  size_t slen = nul != NULL ? (size_t)(nul - text) : size;
  json_t *schema, *value = NULL, *js;
  ice__schema_t *s = NULL, *s2 = NULL;
  ice__err_t err;

  for (size_t i = 0; values[0] == NULL && i < sizeof(fixed) / sizeof(*fixed);
       i++) {
    if ((values[i] = json_loads(fixed[i], JSON_DECODE_ANY, NULL)) == NULL)
      abort();
  }
  schema = json_loadb(text, slen, JSON_DECODE_ANY, NULL);
  if (schema == NULL)
    return 0;
  if (nul != NULL)
    value = json_loadb(nul + 1, size - slen - 1, JSON_DECODE_ANY, NULL);
  memset(&err, 0, sizeof(err));
  if (ice__schema_compile(schema, &s, &err) != 0) {
    if (s != NULL || err.msg[0] == '\0')
      abort();
  } else {
    if (value != NULL)
      check(s, value);
    for (size_t i = 0; value == NULL && i < sizeof(fixed) / sizeof(*fixed); i++)
      check(s, values[i]);
    js = ice__schema_as_json_schema(schema);
    if (js == NULL || ice__schema_compile(js, &s2, &err) != 0)
      abort();
    ice__schema_free(s2);
    json_decref(js);
    ice__schema_free(s);
  }
  json_decref(value);
  json_decref(schema);
  return 0;
}
