/* libFuzzer target: bytes -> the parser of an LLM answer, a 2xx body of
 * the `openai` provider (ice__llm_parse_answer, llm.c). Either the answer
 * (text inside the parsed body, usage as sent, a cost that is a number
 * >= 0 or -1) or a message; never a crash or a leak. */
#include "llm.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ice__llm_answer_t a;
  char msg[256];

  msg[0] = '\0';
  if (ice__llm_parse_answer((const char *)data, size, &a, msg, sizeof(msg)) !=
      0) {
    if (a.doc != NULL || msg[0] == '\0')
      abort();
    return 0;
  }
  if (a.doc == NULL || a.text == NULL || !(a.cost >= 0 || a.cost == -1))
    abort();
  /* Reads every byte of the strings the answer points into. */
  if (strlen(a.text) > size || (a.model != NULL && strlen(a.model) > size))
    abort();
  json_decref(a.doc);
  return 0;
}
