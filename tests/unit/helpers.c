#include "helpers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

json_t *th_json(const char *text) {
  json_error_t e;
  json_t *v = json_loads(text, JSON_DECODE_ANY, &e);

  if (v == NULL) {
    fail_msg("bad test JSON at %d:%d: %s: %s", e.line, e.column, e.text, text);
  }
  return v;
}

void th_assert_json(const json_t *v, const char *expected) {
  char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

  assert_non_null(s);
  if (strcmp(s, expected) != 0) {
    fprintf(stderr, "expected: %s\n     got: %s\n", expected, s);
    free(s);
    fail();
  }
  free(s);
}
