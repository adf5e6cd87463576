/* The engine's registry of node types and tools, its clock, the files of a
 * validation, freeing, and the error codes of the public API. Creating an
 * engine (with the built-in types) is engine_new.c's; running lives in
 * run.c and sched.c; loading in workflow.c. */
#include "engine.h"

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
  ice__engine_subwf_clear(e);
  for (size_t i = 0; i < e->ntools; i++)
    ice__free((char *)e->tools[i].tool.name);
  ice__free(e->tools);
  ice__free(e->types);
  ice__free(e);
  return 0;
}

/* ---- sub-workflow files of one validation ------------------------------- */

void ice__engine_subwf_clear(ice_engine_t *e) {
  for (size_t i = 0; i < e->nsubwf; i++) {
    free(e->subwf_cache[i].real);
    ice_workflow_free(e->subwf_cache[i].wf);
  }
  ice__free(e->subwf_cache);
  e->subwf_cache = NULL;
  e->nsubwf = e->subwf_cap = 0;
  json_decref(e->subwf_index);
  e->subwf_index = NULL;
}

void ice__engine_build_begin(ice__vctx_t *v) {
  ice_engine_t *e = v->wf->engine;

  /* A child file being loaded belongs to the validation that loads it. */
  if (e->subwf_nest > 0)
    return;
  ice__engine_subwf_clear(e);
  e->subwf_top = v->wf;
  e->subwf_sink = v->diags;
}

uv_loop_t *ice_engine_loop(ice_engine_t *e) {
  return e->loop;
}

double ice__engine_now_ms(const ice_engine_t *e) {
  struct timespec ts;

  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6 +
         (double)e->clock_offset_ms;
}

double ice__engine_mono_ms(const ice_engine_t *e) {
  return (double)uv_hrtime() / 1e6 + (double)e->clock_offset_ms;
}

/* ---- registry ----------------------------------------------------------- */

const ice__type_entry_t *ice__engine_type(const ice_engine_t *e,
                                          const char *type) {
  for (size_t i = 0; i < e->ntypes; i++) {
    if (strcmp(e->types[i].ex->type, type) == 0)
      return &e->types[i];
  }
  return NULL;
}

int ice_register_node(ice_engine_t *e, const ice_executor_t *ex) {
  ice__type_entry_t *n;

  if (e == NULL || ex == NULL || ex->type == NULL || ex->start == NULL)
    return ICE_EINVAL;
  if (ex->abi != ICE_EXECUTOR_ABI)
    return ICE_EABI;
  if (ice__engine_type(e, ex->type) != NULL)
    return ICE_EEXIST;
  n = ice__realloc(e->types, (e->ntypes + 1) * sizeof(*n));
  if (n == NULL)
    return ICE_ENOMEM;
  e->types = n;
  e->types[e->ntypes].ex = ex;
  e->ntypes++;
  return 0;
}

const ice_tool_t *ice__engine_tool(const ice_engine_t *e, const char *name) {
  for (size_t i = 0; i < e->ntools; i++) {
    if (strcmp(e->tools[i].tool.name, name) == 0)
      return &e->tools[i].tool;
  }
  /* Then the built-in tools, handed over by engine_new.c. */
  for (size_t i = 0; i < e->nbuiltin_tools; i++) {
    if (strcmp(e->builtin_tools[i].name, name) == 0)
      return &e->builtin_tools[i];
  }
  return NULL;
}

int ice_register_tool(ice_engine_t *e, const ice_tool_t *tool) {
  ice__tool_entry_t *n;
  char *name;

  if (e == NULL || tool == NULL || tool->name == NULL || tool->start == NULL)
    return ICE_EINVAL;
  for (size_t i = 0; i < e->ntools; i++) {
    if (strcmp(e->tools[i].tool.name, tool->name) == 0)
      return ICE_EEXIST;
  }
  name = ice__strdup(tool->name);
  if (name == NULL)
    return ICE_ENOMEM;
  n = ice__realloc(e->tools, (e->ntools + 1) * sizeof(*n));
  if (n == NULL) {
    ice__free(name);
    return ICE_ENOMEM;
  }
  e->tools = n;
  e->tools[e->ntools].tool = *tool;
  e->tools[e->ntools].tool.name = name;
  e->ntools++;
  return 0;
}
