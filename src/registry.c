/* The registry of node types and tools: what an embedding program
 * registers (the C form of iceOS's @register_node), the built-in types
 * included (engine_new.c), and the lookups the loader makes. */
#include "engine.h"

#include <string.h>

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
