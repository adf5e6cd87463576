/* Node types of the SPEC that this version does not run yet (llm, agent,
 * swarm, code, human, monitor). They are registered so that a workflow
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

static int refuse(ice__vctx_t *v, ice__node_t *n) {
  ice__verr(v, n, n->def, "type",
            "node type '%s' is not supported by this version of ice yet",
            n->type);
  return 0;
}

#define UNSUPPORTED(name)                                                      \
  const ice_executor_t ice__exec_##name = {                                    \
      .abi = ICE_EXECUTOR_ABI,                                                 \
      .type = #name,                                                           \
      .fields = NULL,                                                          \
      .start = never_start,                                                    \
  };

UNSUPPORTED(llm)
UNSUPPORTED(agent)
UNSUPPORTED(swarm)
UNSUPPORTED(code)
UNSUPPORTED(human)
UNSUPPORTED(monitor)

const ice__builtin_t ice__bi_unsupported = {
    .compile = refuse,
    .free_data = NULL,
};
