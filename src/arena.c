/* A bump allocator for what a workflow compiles and keeps until it is
 * freed: a streamed plain node's id, tool config, templates and
 * expressions (load_stream.c). Each allocation from malloc costs a
 * hundred instructions or more and a header; a workflow of 10,000 nodes
 * makes tens of thousands of them, all freed together. An object made
 * here says so (its in_arena flag), and its free function frees what it
 * owns elsewhere but not itself. */
#include "internal.h"

#include <string.h>

struct ice__arena_blk {
  struct ice__arena_blk *next;
  size_t used, cap;
  _Alignas(16) unsigned char mem[];
};

/* The arena that ice__arena_calloc serves from on this thread, if any. */
static _Thread_local ice__arena_t *current;

void *ice__arena_alloc(ice__arena_t *a, size_t n) {
  struct ice__arena_blk *b = a->blk;
  void *p;

  n = (n + 15) & ~(size_t)15;
  if (n == 0 || n > ((size_t)1 << 30))
    return NULL;
  if (b == NULL || b->cap - b->used < n) {
    /* 64 KiB blocks; a larger object gets a block of its own. */
    size_t cap = n > 65536 - sizeof(*b) ? n : 65536 - sizeof(*b);
    b = ice__malloc(sizeof(*b) + cap);
    if (b == NULL)
      return NULL;
    b->next = a->blk;
    b->used = 0;
    b->cap = cap;
    a->blk = b;
  }
  p = b->mem + b->used;
  b->used += n;
  memset(p, 0, n);
  return p;
}

void ice__arena_free(ice__arena_t *a) {
  for (struct ice__arena_blk *b = a->blk, *next; b != NULL; b = next) {
    next = b->next;
    ice__free(b);
  }
  a->blk = NULL;
}

ice__arena_t *ice__arena_use(ice__arena_t *a) {
  ice__arena_t *old = current;

  current = a;
  return old;
}

void *ice__arena_calloc(size_t n, int *in_arena) {
  void *p;

  if (current != NULL && (p = ice__arena_alloc(current, n)) != NULL) {
    *in_arena = 1;
    return p;
  }
  *in_arena = 0;
  return ice__calloc(1, n);
}
