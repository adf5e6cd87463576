/* Small shared helpers: error kinds, error formatting, allocation and the
 * JSON-object lookup used when a context is a plain object. */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

static const char *const kind_names[] = {
#define XX(name, str) str,
    ICE__KIND_MAP(XX)
#undef XX
};

const char *ice__kind_name(int kind) {
  if (kind < 0 || kind >= ICE__KIND_COUNT)
    return "internal";
  return kind_names[kind];
}

int ice__kind_from_name(const char *name) {
  for (int i = 1; i < ICE__KIND_COUNT; i++) {
    if (strcmp(kind_names[i], name) == 0)
      return i;
  }
  return -1;
}

int ice__err_set(ice__err_t *err, int kind, int col, const char *fmt, ...) {
  va_list ap;

  if (err == NULL)
    return -1;
  err->kind = kind;
  err->col = col;
  va_start(ap, fmt);
  vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
  va_end(ap);
  return -1;
}

json_t *ice__lookup_object(void *data, const char *name, size_t len) {
  return json_object_getn((json_t *)data, name, len);
}

double ice__ms3(double ms) {
  return (double)llround(ms * 1000.0) / 1000.0;
}

void *ice__malloc(size_t n) {
  return malloc(n == 0 ? 1 : n);
}

void *ice__calloc(size_t count, size_t n) {
  return calloc(count == 0 ? 1 : count, n == 0 ? 1 : n);
}

void *ice__realloc(void *p, size_t n) {
  return realloc(p, n == 0 ? 1 : n);
}

char *ice__strdup(const char *s) {
  return s == NULL ? NULL : strdup(s);
}

char *ice__strndup(const char *s, size_t n) {
  return strndup(s, n);
}

void ice__free(void *p) {
  free(p);
}
