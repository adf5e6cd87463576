/* The names the engine shows: node states, skip reasons, event types and
 * the changes a node instance goes through. Each is one X-macro table, so
 * an enum and its strings cannot drift apart. */
#ifndef ICE_STATES_H
#define ICE_STATES_H

/* Node states of SPEC §2.2 (READY is internal: its dependencies are done
 * and it waits for a turn). Terminal states come last. */
#define ICE__STATE_MAP(XX)                                                     \
  XX(PENDING, "pending")                                                       \
  XX(READY, "ready")                                                           \
  XX(RUNNING, "running")                                                       \
  XX(WAITING, "waiting")                                                       \
  XX(COMPLETED, "completed")                                                   \
  XX(FAILED, "failed")                                                         \
  XX(SKIPPED, "skipped")                                                       \
  XX(CANCELLED, "cancelled")

typedef enum {
#define XX(name, str) ICE__ST_##name,
  ICE__STATE_MAP(XX)
#undef XX
      ICE__ST_COUNT
} ice__state_t;

#define ICE__TERMINAL(s) ((s) >= ICE__ST_COMPLETED)

/* Why a node was skipped (SPEC §4.2, §7.1). */
#define ICE__SKIP_MAP(XX)                                                      \
  XX(NONE, "")                                                                 \
  XX(UPSTREAM_FAILED, "upstream_failed")                                       \
  XX(UPSTREAM_SKIPPED, "upstream_skipped")                                     \
  XX(RUN_IF, "run_if")                                                         \
  XX(BRANCH, "branch_not_taken")

typedef enum {
#define XX(name, str) ICE__SKIP_##name,
  ICE__SKIP_MAP(XX)
#undef XX
      ICE__SKIP_COUNT
} ice__skip_t;

/* Event types of SPEC §10. */
#define ICE__EVENT_MAP(XX)                                                     \
  XX(WORKFLOW_STARTED, "workflow.started")                                     \
  XX(WORKFLOW_COMPLETED, "workflow.completed")                                 \
  XX(WORKFLOW_PAUSED, "workflow.paused")                                       \
  XX(WORKFLOW_RESUMED, "workflow.resumed")                                     \
  XX(NODE_STARTED, "node.started")                                             \
  XX(NODE_COMPLETED, "node.completed")                                         \
  XX(NODE_FAILED, "node.failed")                                               \
  XX(NODE_RETRYING, "node.retrying")                                           \
  XX(NODE_SKIPPED, "node.skipped")                                             \
  XX(NODE_CANCELLED, "node.cancelled")                                         \
  XX(NODE_LOG, "node.log")                                                     \
  XX(HUMAN_REQUESTED, "human.requested")                                       \
  XX(HUMAN_RESOLVED, "human.resolved")                                         \
  XX(MONITOR_ALERT, "monitor.alert")                                           \
  XX(RECURSIVE_ITERATION, "recursive.iteration")                               \
  XX(LOOP_ITERATION, "loop.iteration")                                         \
  XX(SWARM_ROUND, "swarm.round")                                               \
  XX(SANDBOX_DEGRADED, "sandbox.degraded")

typedef enum {
#define XX(name, str) ICE__EV_##name,
  ICE__EVENT_MAP(XX)
#undef XX
      ICE__EV_COUNT
} ice__event_t;

/* The changes of a node instance that go through the commit point
 * (sched.c), each recorded by the commit hook in this order of a node's
 * life: started (an attempt began), waiting (parked), retrying (an attempt
 * failed, another is due at a time), iterated (a recursive node handed
 * its body another iteration), then one terminal change. */
#define ICE__CHANGE_MAP(XX)                                                    \
  XX(STARTED, "running")                                                       \
  XX(WAITING, "waiting")                                                       \
  XX(RETRYING, "retrying")                                                     \
  XX(ITERATED, "iterated")                                                     \
  XX(COMPLETED, "completed")                                                   \
  XX(FAILED, "failed")                                                         \
  XX(SKIPPED, "skipped")                                                       \
  XX(CANCELLED, "cancelled")

typedef enum {
#define XX(name, str) ICE__CH_##name,
  ICE__CHANGE_MAP(XX)
#undef XX
      ICE__CH_COUNT
} ice__change_t;

const char *ice__state_name(int state);
const char *ice__skip_name(int skip);
const char *ice__event_name(int ev);
const char *ice__change_name(int change);
/* The change for a name, or -1. */
int ice__change_from_name(const char *name);

#endif
