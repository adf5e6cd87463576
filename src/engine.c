/* The engine's registry of node types and tools, its clock, the files of a
 * validation, freeing, and the error codes of the public API. Creating an
 * engine (with the built-in types) is engine_new.c's; running lives in
 * run.c and sched.c; loading in load.c. */
#include "engine.h"
#include "httpc.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

const char *ice_strerror(int err) {
  switch (err) {
  case 0:
    return "success";
#define XX(name, val, msg)                                                     \
  case ICE_##name:                                                             \
    return msg;
    ICE_ERRNO_MAP(XX)
#undef XX
  default:
    return "unknown error";
  }
}

/* ---- engine ------------------------------------------------------------- */

int ice_engine_free(ice_engine_t *e) {
  struct ice_sub_s *s, *next;

  if (e == NULL)
    return 0;
  ice__httpc_free(e); /* its handles close in the uv_run below */
  /* Freed runs close their handles asynchronously: let those callbacks
   * run before deciding whether anything is still alive. */
  if (e->owns_loop)
    uv_run(e->loop, UV_RUN_NOWAIT);
  if (e->runs > 0)
    return ICE_EBUSY;
  if (e->owns_loop && uv_loop_close(e->loop) != 0)
    return ICE_EBUSY;
  for (s = e->subs; s != NULL; s = next) {
    next = s->next;
    ice__free(s->filter);
    ice__free(s);
  }
  if (e->refs != NULL)
    e->refs->clear(e); /* the files of the last validation */
  ice__toolfiles_free(e);
  for (size_t i = 0; i < e->ntools; i++)
    ice__free((char *)e->tools[i].tool.name);
  ice__free(e->tools);
  ice__free(e->types);
  ice__free(e);
  return 0;
}

uv_loop_t *ice_engine_loop(ice_engine_t *e) {
  return e->loop;
}
