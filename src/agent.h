/* Agents (SPEC §6.2): an agent compiled from a package of `agents` or a
 * tool file, or defined inline on a node, and one run of it: the decide →
 * tool → observe loop, as a series of calls (call.h) of the node that runs
 * it. The agent node, swarm members and recursive nodes share it. */
#ifndef ICE_AGENT_H
#define ICE_AGENT_H

#include "call.h"

typedef struct ice__agent_s ice__agent_t;

/* Compiles an agent. package: a name of `agents` (or NULL); node: an
 * object holding inline fields that override the package's (`tools`,
 * `llm_config`, `model`, `provider`, `agent_config`; NULL for none).
 * Problems are reported at obj[key] (the field naming the package) or at
 * node's fields. NULL on error. */
ice__agent_t *ice__agent_compile(ice__vctx_t *v, const ice__node_t *n,
                                 const char *package, json_t *node, json_t *obj,
                                 const char *key);
void ice__agent_free(ice__agent_t *a);

typedef struct ice__agentrun_s ice__agentrun_t;

/* Runs agent a as calls of parent, with `user` as the first user message
 * and at most max_iterations LLM steps. cb fires exactly once, from the
 * drain, with the agent's output ({"reasoning", "last_tool", "result",
 * "message", "response", "iterations"}) or its failure. Returns 0, or -1
 * with err (cb then never fires): a setting that does not render. */
int ice__agent_run(ice_task_t *parent, const ice__agent_t *a, const char *user,
                   long max_iterations, ice__call_cb cb, void *data,
                   ice__agentrun_t **out, ice__err_t *err);
/* Stops a run: its cb still fires once (cancelled). */
void ice__agent_cancel(ice__agentrun_t *r);

#endif
