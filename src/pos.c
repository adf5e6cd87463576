/* Source positions of a document's values: a side table keyed by
 * (container, member), filled while parsing (doc.c) and read when a
 * diagnostic names FILE:LINE:COL (diag.c). */
#include "pos.h"

#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* ---- position table: open addressing, linear probing ------------------- */

uint64_t ice__pos_key(const char *key) {
  uint64_t h = UINT64_C(1469598103934665603);

  for (const unsigned char *p = (const unsigned char *)key; *p != '\0'; p++) {
    h ^= *p;
    h *= UINT64_C(1099511628211);
  }
  return h == ICE__POS_SELF ? h - 1 : h;
}

uint64_t ice__pos_index(size_t i) {
  return (UINT64_C(0x9e3779b97f4a7c15) * (i + 1)) ^ UINT64_C(0x5bd1e995);
}

/* splitmix64's finaliser: every input bit reaches the low bits that pick
 * the slot (heap pointers differ mostly in their middle bits). */
static size_t slot_of(const void *c, uint64_t h, size_t cap) {
  uint64_t x = (uint64_t)(uintptr_t)c ^ (h * UINT64_C(0x9e3779b97f4a7c15));

  x ^= x >> 30;
  x *= UINT64_C(0xbf58476d1ce4e5b9);
  x ^= x >> 27;
  x *= UINT64_C(0x94d049bb133111eb);
  x ^= x >> 31;
  return (size_t)(x & (cap - 1));
}

static int grow(ice__posmap_t *m) {
  size_t ncap = m->cap == 0 ? 64 : m->cap * 2;
  ice__posent_t *ns = ice__calloc(ncap, sizeof(*ns));

  if (ns == NULL)
    return -1;
  for (size_t i = 0; i < m->cap; i++) {
    ice__posent_t *e = &m->slots[i];
    if (e->c == NULL)
      continue;
    size_t s = slot_of(e->c, e->h, ncap);
    while (ns[s].c != NULL)
      s = (s + 1) & (ncap - 1);
    ns[s] = *e;
  }
  ice__free(m->slots);
  m->slots = ns;
  m->cap = ncap;
  return 0;
}

int ice__pos_put(ice__posmap_t *m, const void *c, uint64_t h, int line,
                 int col) {
  size_t s;

  if ((m->count + 1) * 2 > m->cap && grow(m) != 0)
    return -1;
  s = slot_of(c, h, m->cap);
  while (m->slots[s].c != NULL) {
    if (m->slots[s].c == c && m->slots[s].h == h)
      break;
    s = (s + 1) & (m->cap - 1);
  }
  if (m->slots[s].c == NULL)
    m->count++;
  m->slots[s] = (ice__posent_t){c, h, line, col};
  return 0;
}

int ice__pos_get(const ice__posmap_t *m, const void *c, uint64_t h, int *line,
                 int *col) {
  size_t s;

  if (m == NULL || m->cap == 0 || c == NULL)
    return 0;
  s = slot_of(c, h, m->cap);
  while (m->slots[s].c != NULL) {
    if (m->slots[s].c == c && m->slots[s].h == h) {
      *line = m->slots[s].line;
      *col = m->slots[s].col;
      return 1;
    }
    s = (s + 1) & (m->cap - 1);
  }
  return 0;
}

void ice__pos_free(ice__posmap_t *m) {
  ice__free(m->slots);
  m->slots = NULL;
  m->cap = m->count = 0;
}

/* ---- scalars ------------------------------------------------------------ */
