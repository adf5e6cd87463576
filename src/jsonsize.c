/* The size of a value's JSON text, counted without writing it. Outputs are
 * shared, not copied, so a value can hold the same object many times (a
 * nested `parallel` holds each child output in `branch_results` and in
 * `merged`): its text can grow exponentially with nesting while its memory
 * stays linear. Shared containers are counted once and remembered, so the
 * count costs time linear in the distinct content, and it stops at a cap.
 * Results and control-flow outputs are checked with it before anything
 * tries to print them. */
#include "internal.h"

#include <stdio.h>
#include <string.h>

typedef struct {
  const json_t *key;
  size_t size;
} memo_slot_t;

typedef struct {
  memo_slot_t *slots;
  size_t cap, used;
} memo_t;

static size_t hash_ptr(const void *p, size_t cap) {
  uint64_t x = (uint64_t)(uintptr_t)p;

  x ^= x >> 33;
  x *= UINT64_C(0xff51afd7ed558ccd);
  x ^= x >> 33;
  return (size_t)x & (cap - 1);
}

static memo_slot_t *memo_find(memo_t *m, const json_t *key) {
  size_t i;

  if (m->cap == 0)
    return NULL;
  for (i = hash_ptr(key, m->cap); m->slots[i].key != NULL;
       i = (i + 1) & (m->cap - 1)) {
    if (m->slots[i].key == key)
      return &m->slots[i];
  }
  return NULL;
}

static int memo_put(memo_t *m, const json_t *key, size_t size) {
  size_t i;

  if ((m->used + 1) * 2 > m->cap) {
    memo_t n = {NULL, m->cap == 0 ? 64 : m->cap * 2, 0};
    n.slots = ice__calloc(n.cap, sizeof(*n.slots));
    if (n.slots == NULL)
      return -1;
    for (size_t j = 0; j < m->cap; j++) {
      if (m->slots[j].key != NULL)
        memo_put(&n, m->slots[j].key, m->slots[j].size);
    }
    ice__free(m->slots);
    *m = n;
  }
  for (i = hash_ptr(key, m->cap); m->slots[i].key != NULL;
       i = (i + 1) & (m->cap - 1))
    ;
  m->slots[i].key = key;
  m->slots[i].size = size;
  m->used++;
  return 0;
}

size_t ice__json_quoted_size(const char *s, size_t len) {
  size_t n = len + 2;

  for (size_t i = 0; i < len; i++) {
    unsigned char ch = (unsigned char)s[i];
    /* One compare for the common byte. */
    if (ch > '\\' || (ch >= 0x20 && ch != '"' && ch != '\\'))
      continue;
    if (ch == '"' || ch == '\\' || ch == '\n' || ch == '\t' || ch == '\r' ||
        ch == '\b' || ch == '\f')
      n += 1;
    else if (ch < 0x20)
      n += 5;
  }
  return n;
}

static size_t scalar_size(const json_t *v) {
  char buf[64];

  switch (json_typeof(v)) {
  case JSON_INTEGER: {
    json_int_t i = json_integer_value(v);
    uint64_t u = i < 0 ? (uint64_t)0 - (uint64_t)i : (uint64_t)i;
    size_t n = i < 0 ? 2 : 1;
    while (u >= 10) {
      u /= 10;
      n++;
    }
    return n;
  }
  case JSON_REAL:
    ice__format_real(json_real_value(v), buf, sizeof(buf));
    return strlen(buf);
  case JSON_TRUE:
  case JSON_NULL:
    return 4;
  case JSON_FALSE:
    return 5;
  default:
    return ice__json_quoted_size(json_string_value(v), json_string_length(v));
  }
}

typedef struct {
  const json_t *v;
  void *iter;   /* objects */
  size_t i;     /* arrays */
  size_t start; /* total when the container was opened */
} level_t;

/* Values this small are counted without the memo: a hash insert per
 * shared container would cost more than walking them. Past it, shared
 * containers are remembered, so a value whose text doubles per level is
 * still counted in time linear in its distinct content. */
#define MEMO_AFTER 65536u

size_t ice__json_size(const json_t *v, size_t cap) {
  memo_t memo = {NULL, 0, 0};
  /* Most values are shallow: no allocation for their first 16 levels
   * (ice run counts each node's output apart). */
  level_t local[16], *st = local;
  size_t depth = 0, scap = 16, total = 0, visits = 0;
  int failed = 0;

  while (!failed) {
    /* Count v: a scalar, a remembered container, or open a container. */
    if (v != NULL && (json_is_object(v) || json_is_array(v))) {
      memo_slot_t *hit = ++visits > MEMO_AFTER ? memo_find(&memo, v) : NULL;
      if (hit != NULL) {
        total += hit->size;
      } else {
        if (depth == scap) {
          size_t ncap = scap * 2;
          level_t *ns = st == local ? ice__malloc(ncap * sizeof(*ns))
                                    : ice__realloc(st, ncap * sizeof(*ns));
          if (ns == NULL) {
            failed = 1;
            break;
          }
          if (st == local)
            memcpy(ns, local, sizeof(local));
          st = ns;
          scap = ncap;
        }
        st[depth++] = (level_t){
            v, json_is_object(v) ? json_object_iter((json_t *)v) : NULL, 0,
            total};
        total += 2; /* the brackets */
      }
    } else if (v != NULL) {
      total += scalar_size(v);
    }
    if (total > cap)
      break;
    /* The next value, closing finished containers. */
    v = NULL;
    while (depth > 0 && v == NULL) {
      level_t *l = &st[depth - 1];
      int more;
      if (json_is_object(l->v)) {
        more = l->iter != NULL;
        if (more) {
          if (l->iter != json_object_iter((json_t *)l->v))
            total += 1; /* , */
          total += ice__json_quoted_size(json_object_iter_key(l->iter),
                                         json_object_iter_key_len(l->iter)) +
                   1;
          v = json_object_iter_value(l->iter);
          l->iter = json_object_iter_next((json_t *)l->v, l->iter);
        }
      } else {
        more = l->i < json_array_size(l->v);
        if (more) {
          total += l->i > 0;
          v = json_array_get(l->v, l->i++);
        }
      }
      if (!more) {
        /* Only shared containers can be met again. */
        if (visits > MEMO_AFTER && l->v->refcount > 1 &&
            memo_put(&memo, l->v, total - l->start) != 0) {
          failed = 1;
          break;
        }
        depth--;
      }
    }
    if (v == NULL)
      break;
  }
  if (st != local)
    ice__free(st);
  ice__free(memo.slots);
  return failed || total > cap ? SIZE_MAX : total;
}

size_t ice_json_size(const json_t *v, size_t cap) {
  return v != NULL ? ice__json_size(v, cap) : 0;
}
