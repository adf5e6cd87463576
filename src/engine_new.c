/* Creating an engine: its loop, and the built-in node types and tools
 * registered through the same ABI as an embedding program's. The one place
 * that names them all; nothing in the library calls back into it. */
#include "engine.h"

#include <signal.h>

int ice_engine_new(ice_engine_t **out, uv_loop_t *loop,
                   const ice_engine_opts_t *opts) {
  ice_engine_t *e;
  struct sigaction sa;

  *out = NULL;
  e = ice__calloc(1, sizeof(*e));
  if (e == NULL)
    return ICE_ENOMEM;
  if (loop == NULL) {
    if (uv_loop_init(&e->own_loop) != 0) {
      ice__free(e);
      return ICE_EIO;
    }
    e->loop = &e->own_loop;
    e->owns_loop = 1;
  } else {
    e->loop = loop;
  }
  if (opts != NULL)
    e->virtual_clock = opts->virtual_clock;
  /* A tool that exits without reading its stdin must not kill us. */
  if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL)
    signal(SIGPIPE, SIG_IGN);
  {
    /* The built-in types register through the same ABI as any other. */
    static const ice_executor_t *const builtins[] = {
        &ice__exec_tool,     &ice__exec_condition, &ice__exec_loop,
        &ice__exec_parallel, &ice__exec_recursive, &ice__exec_workflow,
        &ice__exec_llm,      &ice__exec_agent,     &ice__exec_swarm,
        &ice__exec_code,     &ice__exec_human,     &ice__exec_monitor,
    };
    for (size_t i = 0; i < ICE__ARRAY_SIZE(builtins); i++) {
      if (ice_register_node(e, builtins[i]) != 0) {
        ice_engine_free(e);
        return ICE_ENOMEM;
      }
    }
  }
  e->builtin_tools = ice__builtin_tools(&e->nbuiltin_tools);
  e->refs = &ice__refs_hooks;
  *out = e;
  return 0;
}
