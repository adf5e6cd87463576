/* The dependency graph of a workflow: resolving `dependencies` and
 * `input_mappings`, cycle detection with the cycle's path, depth (the
 * scheduling priority) and the dot/mermaid renderings. */
#ifndef ICE_GRAPH_H
#define ICE_GRAPH_H

#include "workflow.h"

/* Resolves dependencies and mappings of every node, reports unknown and
 * self dependencies, cycles, and computes depth and dependents. Returns 0
 * or ICE_ENOMEM; problems are reported through v. */
int ice__graph_check(ice__vctx_t *v);

#endif
