/* Small shared helpers: error kinds, error formatting, allocation and the
 * JSON-object lookup used when a context is a plain object. */
#include "internal.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
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
  ice__utf8_truncate(err->msg); /* the byte limit may cut a character */
  return -1;
}

json_t *ice__lookup_object(void *data, const char *name, size_t len) {
  return json_object_getn((json_t *)data, name, len);
}

/* Edit distance of two short strings, counting a swap of two neighbours
 * as one edit (the commonest typo); longer strings count as far. */
static size_t edits(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  size_t d[3][65]; /* rows i-2, i-1 and i, used round-robin */

  if (la > 64 || lb > 64)
    return SIZE_MAX;
  for (size_t j = 0; j <= lb; j++)
    d[0][j] = j;
  for (size_t i = 1; i <= la; i++) {
    size_t *cur = d[i % 3], *up = d[(i - 1) % 3], *up2 = d[(i + 1) % 3];
    cur[0] = i;
    for (size_t j = 1; j <= lb; j++) {
      size_t best = up[j - 1] + (a[i - 1] != b[j - 1]);
      if (up[j] + 1 < best)
        best = up[j] + 1;
      if (cur[j - 1] + 1 < best)
        best = cur[j - 1] + 1;
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
          up2[j - 2] + 1 < best)
        best = up2[j - 2] + 1;
      cur[j] = best;
    }
  }
  return d[la % 3][lb];
}

const char *ice__closest(const char *word, const char *const *cands, size_t n) {
  const char *best = NULL;
  size_t best_d = SIZE_MAX, len = strlen(word);

  for (size_t i = 0; i < n; i++) {
    size_t d;
    if (cands[i] == NULL || strcmp(cands[i], word) == 0)
      continue;
    d = edits(word, cands[i]);
    if (d < best_d) {
      best_d = d;
      best = cands[i];
    }
  }
  return best_d <= 2 && best_d * 2 < len ? best : NULL;
}

double ice__ms3(double ms) {
  return (double)llround(ms * 1000.0) / 1000.0;
}

/* Allocation-failure injection (docs/reliability.md, tests/unit/
 * test_allocfail.c): a test sets a countdown, and the allocation that takes
 * it to zero fails, once. Atomic because the thread pool allocates too.
 * Off (<= 0) it costs one relaxed load per allocation. */
static atomic_long alloc_countdown;

void ice__alloc_fail_at(long n) {
  atomic_store(&alloc_countdown, n);
}

long ice__alloc_countdown(void) {
  return atomic_load(&alloc_countdown);
}

void (*ice__alloc_on_fail)(void);

bool ice__alloc_fails(void) {
  if (atomic_load_explicit(&alloc_countdown, memory_order_relaxed) <= 0)
    return false;
  if (atomic_fetch_sub(&alloc_countdown, 1) != 1)
    return false;
  if (ice__alloc_on_fail != NULL)
    ice__alloc_on_fail();
  return true;
}

void *ice__malloc(size_t n) {
  return ice__alloc_fails() ? NULL : malloc(n == 0 ? 1 : n);
}

void *ice__calloc(size_t count, size_t n) {
  return ice__alloc_fails() ? NULL
                            : calloc(count == 0 ? 1 : count, n == 0 ? 1 : n);
}

void *ice__realloc(void *p, size_t n) {
  return ice__alloc_fails() ? NULL : realloc(p, n == 0 ? 1 : n);
}

char *ice__strdup(const char *s) {
  return s == NULL || ice__alloc_fails() ? NULL : strdup(s);
}

char *ice__strndup(const char *s, size_t n) {
  return ice__alloc_fails() ? NULL : strndup(s, n);
}

void ice__free(void *p) {
  free(p);
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0 when the
 * bytes there are not one (bad lead, bad continuation, overlong, surrogate,
 * above U+10FFFF or cut short). */
static size_t utf8_seq(const unsigned char *s, size_t n) {
  unsigned c = s[0];
  size_t len;
  uint32_t cp;

  if (c < 0x80)
    return 1;
  if (c >= 0xC2 && c <= 0xDF)
    len = 2, cp = c & 0x1F;
  else if (c >= 0xE0 && c <= 0xEF)
    len = 3, cp = c & 0x0F;
  else if (c >= 0xF0 && c <= 0xF4)
    len = 4, cp = c & 0x07;
  else
    return 0;
  if (len > n)
    return 0;
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xC0) != 0x80)
      return 0;
    cp = (cp << 6) | (s[i] & 0x3F);
  }
  if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
      (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
    return 0;
  return len;
}

size_t ice__utf8_valid_prefix(const char *s, size_t n) {
  size_t i = 0;

  while (i < n) {
    size_t l = s[i] == '\0' ? 0 : utf8_seq((const unsigned char *)s + i, n - i);
    if (l == 0)
      break;
    i += l;
  }
  return i;
}

char *ice__utf8_dup(const char *s, size_t n) {
  static const char repl[] = "\xEF\xBF\xBD"; /* U+FFFD */
  size_t ok = ice__utf8_valid_prefix(s, n);
  char *buf, *w;

  if (ok == n)
    return ice__strndup(s, n);
  /* Each bad byte becomes one U+FFFD (3 bytes); NUL bytes too, so that the
   * text never ends early. */
  buf = ice__malloc(ok + (n - ok) * 3 + 1);
  if (buf == NULL)
    return NULL;
  memcpy(buf, s, ok);
  w = buf + ok;
  for (size_t i = ok; i < n;) {
    size_t l = s[i] == '\0' ? 0 : utf8_seq((const unsigned char *)s + i, n - i);
    if (l == 0) {
      memcpy(w, repl, 3);
      w += 3;
      i++;
    } else {
      memcpy(w, s + i, l);
      w += l;
      i += l;
    }
  }
  *w = '\0';
  return buf;
}

json_t *ice__json_lossy(const char *s, size_t n) {
  char *clean;
  json_t *v;

  if (ice__utf8_valid_prefix(s, n) == n)
    return json_stringn(s, n);
  clean = ice__utf8_dup(s, n);
  if (clean == NULL)
    return NULL;
  v = json_string(clean);
  ice__free(clean);
  return v;
}

json_t *ice__json_lossy_cstr(const char *s) {
  return ice__json_lossy(s, strlen(s));
}

void ice__utf8_truncate(char *s) {
  size_t n = strlen(s), i = n;

  /* Step back over at most 3 continuation bytes to the lead of the last
   * sequence; cut it off when it is incomplete. */
  while (i > 0 && n - i < 4 && ((unsigned char)s[i - 1] & 0xC0) == 0x80)
    i--;
  if (i > 0 && utf8_seq((const unsigned char *)s + i - 1, n - i + 1) == 0 &&
      (unsigned char)s[i - 1] >= 0xC0)
    s[i - 1] = '\0';
}

uint64_t ice__fnv1a64(const void *p, size_t n, uint64_t h) {
  const unsigned char *b = p;

  if (h == 0)
    h = UINT64_C(14695981039346656037);
  for (size_t i = 0; i < n; i++)
    h = (h ^ b[i]) * UINT64_C(1099511628211);
  return h;
}
