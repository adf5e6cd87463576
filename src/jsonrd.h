/* The reading a streamed load does itself (load_stream.c reads plain
 * nodes straight from the text; jsonfast.c hands it the text at each
 * node): small steps, inline, since a node is a few dozen of them. Each
 * skips white space first, as JSON allows it between any two tokens. */
#ifndef ICE_JSONRD_H
#define ICE_JSONRD_H

#include "doc.h"

struct ice__jrd_s {
  const char *p, *end; /* what is left to read */
  void *scratch;       /* jsonfast.c's, for ice__jrd_value */
};

/* p past JSON's white space, up to end (jsonfast.c's reader too). */
static inline const char *ice__json_ws(const char *p, const char *end) {
  while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
    p++;
  return p;
}

static inline void ice__jrd_ws(ice__jrd_t *j) {
  j->p = ice__json_ws(j->p, j->end);
}

/* The next character, -1 at the end. */
static inline int ice__jrd_peek(ice__jrd_t *j) {
  ice__jrd_ws(j);
  return j->p < j->end ? (unsigned char)*j->p : -1;
}

/* That character consumed when it is c: 0, else -1. */
static inline int ice__jrd_char(ice__jrd_t *j, char c) {
  if (ice__jrd_peek(j) != (unsigned char)c)
    return -1;
  j->p++;
  return 0;
}

/* A string of printable ASCII without escapes, as a pointer into the text:
 * 0, else -1 (anything else is left to the usual reading, which checks
 * escapes and UTF-8 as jansson does). */
static inline int ice__jrd_string(ice__jrd_t *j, const char **s, size_t *n) {
  const char *q;

  if (ice__jrd_char(j, '"') != 0)
    return -1;
  /* The bytes 0x20..0x7e but '"' and '\\' are the string itself. */
  for (q = j->p; q < j->end; q++) {
    unsigned char c = (unsigned char)*q;
    if ((unsigned char)(c - 0x20) >= 0x5f || c == '"' || c == '\\')
      break;
  }
  if (q >= j->end || *q != '"')
    return -1;
  *s = j->p;
  *n = (size_t)(q - j->p);
  j->p = q + 1;
  return 0;
}

#endif
