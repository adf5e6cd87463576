/* Private to src/: helpers shared by the library's files. Nothing here is
 * part of the public API (include/ice.h); names use the ice__ prefix. */
#ifndef ICE_INTERNAL_H
#define ICE_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ICE__ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define ICE__CONTAINER_OF(ptr, type, field)                                    \
  ((type *)((char *)(ptr)-offsetof(type, field)))

/* Error kinds of SPEC §4.4, in the order of the spec. The name table is
 * generated from the same map so the two cannot drift apart. */
#define ICE__KIND_MAP(XX)                                                      \
  XX(NONE, "none")                                                             \
  XX(TOOL_ERROR, "tool_error")                                                 \
  XX(TRANSIENT, "transient")                                                   \
  XX(TIMEOUT, "timeout")                                                       \
  XX(RESOURCE_LIMIT, "resource_limit")                                         \
  XX(LLM_ERROR, "llm_error")                                                   \
  XX(INPUT_VALIDATION, "input_validation")                                     \
  XX(OUTPUT_VALIDATION, "output_validation")                                   \
  XX(EXPRESSION, "expression")                                                 \
  XX(TEMPLATE, "template")                                                     \
  XX(INPUT_MAPPING, "input_mapping")                                           \
  XX(SUBWORKFLOW, "subworkflow")                                               \
  XX(CANCELLED, "cancelled")                                                   \
  XX(NON_RETRYABLE, "non_retryable")                                           \
  XX(INTERNAL, "internal")

typedef enum {
#define XX(name, str) ICE__KIND_##name,
  ICE__KIND_MAP(XX)
#undef XX
      ICE__KIND_COUNT
} ice__kind_t;

const char *ice__kind_name(int kind);
/* Returns the kind for a name, or -1 when the name is not a kind. */
int ice__kind_from_name(const char *name);

/* An error as data: a kind, an optional 1-based column (0 = unknown) and a
 * message a user can read. Filled only on failure. */
typedef struct {
  int kind;
  int col;
  char msg[512];
} ice__err_t;

/* printf into err->msg and set kind/col; returns -1 so callers can write
 * `return ice__err_set(...)`. */
int ice__err_set(ice__err_t *err, int kind, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Name resolution for expressions and templates. Returns a BORROWED value
 * for the top-level name `name` (not NUL-terminated, `len` bytes), or NULL
 * when the name is undefined. The callee keeps the value alive at least
 * until the evaluation that asked for it returns. */
typedef json_t *(*ice__lookup_fn)(void *data, const char *name, size_t len);

/* A lookup over a plain JSON object (data is the json_t object). */
json_t *ice__lookup_object(void *data, const char *name, size_t len);

/* Shortest text that reads back as the same double, in Python's repr
 * layout ("2.0", "0.1", "1e+16"); jsonfmt.c. */
void ice__format_real(double d, char *buf, size_t len);
/* The same without its shortcut: the reference the tests compare with. */
void ice__format_real_slow(double d, char *buf, size_t len);
/* A value as text inside a larger string (SPEC §3.3): a string as it is,
 * anything else as compact JSON (jsonfmt.c). malloc'd, NULL on ENOMEM. */
char *ice__json_text(const json_t *v);

/* JSON text written a piece at a time to a sink, as ice_json_write writes
 * it (the same pieces, the same bytes), for a value that is not built as
 * one json_t (a run's result, run.c). `level` is the nesting of what is
 * written: its lines are indented from there. Nothing is reported until
 * ice__jw_end: 0, or -1 when memory ran out or the sink stopped it. */
typedef struct ice__jw_s ice__jw_t;
/* NULL on ENOMEM. */
ice__jw_t *ice__jw_new(int indent,
                       int (*write)(const char *buf, size_t len, void *data),
                       void *data);
void ice__jw_raw(ice__jw_t *w, const char *s, size_t len);
/* An object member's start: a comma unless first, the line break, the key
 * and the colon. */
void ice__jw_member(ice__jw_t *w, size_t level, int first, const char *key);
/* The line break and the closing bracket of a non-empty container. */
void ice__jw_close(ice__jw_t *w, size_t level, char bracket);
void ice__jw_string(ice__jw_t *w, const char *s);
void ice__jw_value(ice__jw_t *w, const json_t *v, size_t level);
void ice__jw_int(ice__jw_t *w, long long i);
void ice__jw_real(ice__jw_t *w, double d);
/* Flushes and frees w (NULL: -1). */
int ice__jw_end(ice__jw_t *w);

/* Milliseconds rounded to microseconds, for results and events. */
double ice__ms3(double ms);

/* The candidate closest to `word` when it is close enough to be a likely
 * typo (at most 2 edits, and fewer than half of the word's letters), else
 * NULL. NULL entries in cands are skipped. */
const char *ice__closest(const char *word, const char *const *cands, size_t n);

/* Strings from outside (stderr, file names, tool output, messages cut at a
 * byte limit) may hold bytes that are not UTF-8, which jansson refuses.
 * ice__json_lossy makes a JSON string of n bytes with each invalid byte (and
 * each NUL) replaced by U+FFFD, so the value is never dropped; NULL only on
 * ENOMEM. ice__json_lossy_cstr is the same for a NUL-terminated string. */
json_t *ice__json_lossy(const char *s, size_t n);
json_t *ice__json_lossy_cstr(const char *s);
/* A malloc'd NUL-terminated copy of n bytes with the same replacements. */
char *ice__utf8_dup(const char *s, size_t n);
/* Bytes at the start of s (n bytes) that are valid UTF-8 without NUL. */
size_t ice__utf8_valid_prefix(const char *s, size_t n);
/* Cuts an incomplete UTF-8 sequence off the end of s (after a byte limit
 * cut it in the middle of a character). */
void ice__utf8_truncate(char *s);

/* The length of v's compact JSON text (as ice_json_format(v, 0) prints it),
 * counting each shared container once, so it takes time linear in the
 * distinct content; SIZE_MAX when it is over cap (or on ENOMEM). */
size_t ice__json_size(const json_t *v, size_t cap);
/* The length of the JSON string literal of s (len bytes), quotes and
 * escapes included. */
size_t ice__json_quoted_size(const char *s, size_t len);
/* Most bytes of JSON text one node's output or a run's result may take.
 * Far above any real output, it stops a value whose text would be
 * exponentially larger than its memory (nested outputs shared many times)
 * from hanging the run, with a clear error instead. */
#define ICE__MAX_TEXT_BYTES ((size_t)256 << 20)

/* FNV-1a, 64 bits, continuing from h (0 starts with the offset basis). */
uint64_t ice__fnv1a64(const void *p, size_t n, uint64_t h);
/* 32-bit FNV-1a, for the open-addressing tables of the loader (ids,
 * interned keys): inline, as it runs once per key of a document. */
static inline uint32_t ice__fnv1a32(const char *s, size_t n) {
  uint32_t h = 2166136261u;

  for (size_t i = 0; i < n; i++) {
    h ^= (unsigned char)s[i];
    h *= 16777619u;
  }
  return h;
}

/* Allocation that never returns NULL silently: callers check. */
void *ice__malloc(size_t n);
void *ice__calloc(size_t count, size_t n);

/* A bump allocator whose memory is all freed at once (arena.c). */
typedef struct {
  struct ice__arena_blk *blk;
} ice__arena_t;
/* n zeroed bytes, 16-aligned, that live until ice__arena_free(a); NULL on
 * ENOMEM. */
void *ice__arena_alloc(ice__arena_t *a, size_t n);
void ice__arena_free(ice__arena_t *a);
/* Makes a the arena of ice__arena_calloc on this thread (NULL: none);
 * returns the one before. */
ice__arena_t *ice__arena_use(ice__arena_t *a);
/* n zeroed bytes from this thread's arena (*in_arena = 1: never freed on
 * their own), else from ice__calloc (*in_arena = 0). NULL on ENOMEM. */
void *ice__arena_calloc(size_t n, int *in_arena);
void *ice__realloc(void *p, size_t n);
char *ice__strdup(const char *s);
char *ice__strndup(const char *s, size_t n);
void ice__free(void *p);
/* Allocation-failure injection, for tests: the n-th allocation from now
 * (ice__* above, and jansson's when a test routes it through
 * ice__alloc_fails) returns NULL, once; n <= 0 turns it off. The countdown
 * left tells a test how many allocations a run made. */
void ice__alloc_fail_at(long n);
long ice__alloc_countdown(void);
bool ice__alloc_fails(void);
/* Called when an injected failure happens (a test prints where). */
extern void (*ice__alloc_on_fail)(void);

#endif
