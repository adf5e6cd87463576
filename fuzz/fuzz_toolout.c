/* libFuzzer target: bytes -> the parser of a process tool's stdout
 * (ice__tool_output_parse, toolcall.c): any bytes, NULs, bytes that are
 * not UTF-8 and integers past 64 bits included. What it accepts must be a
 * value jansson can write back out and read again as the same value. */
#include "call.h"
#include "expr.h" /* ice__json_equal */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  json_error_t jerr;
  json_t *out, *back;
  char *text;

  out = ice__tool_output_parse((const char *)data, size, &jerr);
  if (out == NULL) {
    if (jerr.text[0] == '\0')
      abort();
    return 0;
  }
  text = json_dumps(out, JSON_ENCODE_ANY | JSON_COMPACT);
  if (text == NULL)
    abort();
  back = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
  if (back == NULL || !ice__json_equal(out, back))
    abort();
  json_decref(back);
  free(text);
  json_decref(out);
  return 0;
}
