/* Node types of the SPEC that this version does not run yet (llm, agent,
 * swarm, code). They are registered so that a workflow
 * using them gets a clear validation error naming what is missing, rather
 * than "unknown node type", and so that their names stay reserved. */
#include "../control.h"

static void never_start(ice_task_t *t) {
  /* Unreachable: validation refuses these nodes. */
  ice__task_fail_kind(t, ICE__KIND_NON_RETRYABLE,
                      "node type '%s' is not "
                      "supported yet",
                      ice__task_node(t)->type);
}

static void *refuse(ice_compile_t *c) {
  ice_compile_error(
      c, "type",
      "node type '%s' is not supported by this version of ice "
      "yet",
      json_string_value(json_object_get(ice_compile_config(c), "type")));
  return NULL;
}

#define UNSUPPORTED(name)                                                      \
  const ice_executor_t ice__exec_##name = {                                    \
      .abi = ICE_EXECUTOR_ABI,                                                 \
      .type = #name,                                                           \
      .fields = NULL,                                                          \
      .start = never_start,                                                    \
      .compile = refuse,                                                       \
  };



UNSUPPORTED(code)
