/* Concurrency pools (SPEC §4.2), as ninja's pools: each attempt of a node
 * with `pool: NAME` holds one slot of that pool while it runs, whatever its
 * depth, and child runs share their parent's pools by name. `llm` always
 * exists. Waiters queue in FIFO order; a released slot goes straight to
 * the first waiter, so that no later arrival can take it first. */
#include "core.h"

#include <string.h>

struct ice__pool_s {
  int refs;
  const char *name; /* borrowed from the workflow that created it */
  ice_workflow_t *owner;
  uint32_t size, used;
  ice_task_t *head, *tail; /* waiting for a slot */
};

static ice__pool_t *find_parent_pool(const ice_run_t *r, const char *name) {
  for (const ice_run_t *p = r->parent; p != NULL; p = p->parent) {
    for (uint32_t i = 0; i < p->npools; i++) {
      if (strcmp(p->pools[i]->name, name) == 0)
        return p->pools[i];
    }
  }
  return NULL;
}

int ice__pools_open(ice_run_t *r) {
  const ice_workflow_t *wf = r->wf;

  if (wf->npools == 0)
    return 0;
  r->pools = ice__calloc(wf->npools, sizeof(*r->pools));
  if (r->pools == NULL)
    return ICE_ENOMEM;
  for (uint32_t i = 0; i < wf->npools; i++) {
    /* A child's entry of a name its parent has is the parent's pool (its
     * size is ignored); names only the child defines are its own. */
    ice__pool_t *p = find_parent_pool(r, wf->pool_names[i]);
    if (p == NULL) {
      p = ice__calloc(1, sizeof(*p));
      if (p == NULL)
        return ICE_ENOMEM;
      p->name = wf->pool_names[i];
      p->owner = r->wf;
      ice__workflow_ref(r->wf);
      p->size = wf->pool_sizes[i];
    }
    p->refs++;
    r->pools[i] = p;
    r->npools = i + 1;
  }
  return 0;
}

void ice__pools_close(ice_run_t *r) {
  for (uint32_t i = 0; i < r->npools; i++) {
    ice__pool_t *p = r->pools[i];
    if (--p->refs == 0) {
      ice_workflow_free(p->owner);
      ice__free(p);
    }
  }
  ice__free(r->pools);
  r->pools = NULL;
  r->npools = 0;
}

static ice__pool_t *pool_of(const ice_task_t *t) {
  uint32_t i = t->pool1;

  return i > 0 && i <= t->run->npools ? t->run->pools[i - 1] : NULL;
}

int ice__pool_acquire(ice_task_t *t) {
  ice__pool_t *p = pool_of(t);

  if (p == NULL || t->in_pool)
    return 1;
  if (p->used < p->size && p->head == NULL) {
    p->used++;
    t->in_pool = 1;
    return 1;
  }
  t->next_pool = NULL;
  if (p->tail != NULL)
    p->tail->next_pool = t;
  else
    p->head = t;
  p->tail = t;
  ice__task_set_flag(t, &t->pool_wait, 1);
  return 0;
}

ice_task_t *ice__pool_release(ice_task_t *t) {
  ice__pool_t *p = pool_of(t);
  ice_task_t *next;

  if (p == NULL)
    return NULL;
  if (t->pool_wait) {
    ice_task_t **pp = &p->head, *prev = NULL;
    while (*pp != NULL && *pp != t) {
      prev = *pp;
      pp = &(*pp)->next_pool;
    }
    if (*pp == t) {
      *pp = t->next_pool;
      if (p->tail == t)
        p->tail = prev;
    }
    t->next_pool = NULL;
    ice__task_set_flag(t, &t->pool_wait, 0);
    return NULL;
  }
  if (!t->in_pool)
    return NULL;
  t->in_pool = 0;
  next = p->head;
  if (next == NULL) {
    p->used--;
    return NULL;
  }
  /* The slot passes to the first waiter, reserved for it. */
  p->head = next->next_pool;
  if (p->head == NULL)
    p->tail = NULL;
  next->next_pool = NULL;
  next->in_pool = 1;
  ice__task_set_flag(next, &next->pool_wait, 0);
  return next;
}
