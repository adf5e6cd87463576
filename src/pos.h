/* The position table of a document's values (pos.c). */
#ifndef ICE_POS_H
#define ICE_POS_H

#include <stddef.h>
#include <stdint.h>

/* Positions are keyed by (container, member): an object member by the hash
 * of its key, an array element by its index, the container itself by
 * ICE__POS_SELF. Lookups of unknown keys simply fail. */
typedef struct {
  const void *c;
  uint64_t h;
  int line;
  int col;
} ice__posent_t;

typedef struct {
  ice__posent_t *slots;
  size_t cap;
  size_t count;
} ice__posmap_t;

#define ICE__POS_SELF UINT64_C(0xffffffffffffffff)

uint64_t ice__pos_key(const char *key);
uint64_t ice__pos_index(size_t i);
int ice__pos_put(ice__posmap_t *m, const void *c, uint64_t h, int line,
                 int col);
/* Returns 1 and sets line/col when known, else 0. */
int ice__pos_get(const ice__posmap_t *m, const void *c, uint64_t h, int *line,
                 int *col);
void ice__pos_free(ice__posmap_t *m);

#endif
