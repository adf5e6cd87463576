/* Calls: work an attempt hands to the engine's own paths and gets back
 * through a callback instead of as its own outcome. An agent's tool steps
 * and a swarm's members run a tool exactly as a tool node does (process
 * or C tool, the same protocol, logs and limits); an LLM request holds a
 * slot of the `llm` pool while it is in flight (SPEC §4.2).
 *
 * A call is a sub-task: an ice_task_t of the same node as its parent, so
 * that everything a tool may ask of its task (logging, the loop, tallies,
 * rendering) works unchanged, but whose completion the drain hands to the
 * call's callback rather than to the node. The parent must wait for the
 * callback of every call it started before it completes itself. */
#ifndef ICE_CALL_H
#define ICE_CALL_H

#include "control.h"

/* The outcome of a call, borrowed for the callback. */
typedef struct {
  int ok;
  json_t *output;     /* ok: the output */
  int kind;           /* !ok: an ice__kind_t */
  const char *msg;    /* !ok */
  double retry_after; /* !ok: seconds the callee asked to wait, or -1 */
} ice__call_res_t;

typedef void (*ice__call_cb)(void *data, const ice__call_res_t *res);

/* What a call does once it may start, and how it is stopped. */
typedef struct {
  void (*start)(ice_task_t *sub, void *arg);
  void (*cancel)(ice_task_t *sub, void *arg); /* NULL: abandoned */
  /* Optional: frees arg when the call ends before start (cancelled while
   * it waited for a pool slot). */
  void (*drop)(void *arg);
} ice__call_ops_t;

/* Starts a call under parent: with pool1 (a pool index + 1 of the run's
 * workflow; 0 = none) it first waits for a slot of that pool, then
 * ops->start(sub, arg). cb fires exactly once, from the drain, never from
 * inside this call. Returns the sub-task (valid until cb fires), or NULL
 * on ENOMEM (cb then never fires). */
ice_task_t *ice__call_start(ice_task_t *parent, uint32_t pool1,
                            const ice__call_ops_t *ops, void *arg,
                            ice__call_cb cb, void *data);
/* Stops a call: cb still fires once, with kind cancelled unless the call
 * had already ended. */
void ice__call_cancel(ice_task_t *sub);
/* Gives up on a call whose callee cannot be interrupted (a C tool without
 * a cancel hook): the callback fires now as cancelled, and the callee's
 * own outcome is dropped when it comes. */
void ice__call_abandon(ice_task_t *sub);
/* 1 when t is a call's sub-task. */
int ice__task_is_call(const ice_task_t *t);
/* Sets the delay before t's next attempt when it fails now and is
 * retried (an LLM's Retry-After), instead of its retry policy's. */
void ice__task_retry_after(ice_task_t *t, double seconds);

/* ---- tools (toolcall.c) ------------------------------------------------- */

/* A tool name resolved at validation: SPEC §5.1's order (the workflow's
 * `tools`, the tool files, registered tools, built-ins). */
typedef struct ice__tooldef_s ice__tooldef_t;

/* Resolves `name`, reporting an unknown tool (with a hint) or a bad
 * definition at obj[key] of node n. NULL when it cannot be resolved. */
ice__tooldef_t *ice__tooldef_resolve(ice__vctx_t *v, const ice__node_t *n,
                                     json_t *obj, const char *key,
                                     const char *name);
/* A process tool from a definition object (`command`, `env`, `cwd`,
 * `sandbox`) whose relative paths start from dir: a code node's
 * interpreter. NULL when the definition is unusable or on ENOMEM
 * (reported at node n). */
ice__tooldef_t *ice__tooldef_from_json(ice__vctx_t *v, const ice__node_t *n,
                                       const char *name, json_t *def,
                                       const char *dir);
/* Drops a reference (the last frees it). */
void ice__tooldef_free(ice__tooldef_t *d);
const char *ice__tooldef_name(const ice__tooldef_t *d);

/* Runs the tool on t's own attempt: t completes with the tool's outcome.
 * args are taken. (The tool node.) */
void ice__tool_run(ice_task_t *t, const ice__tooldef_t *d, json_t *args);
/* Stops what ice__tool_run started on t. */
void ice__tool_stop(ice_task_t *t, const ice__tooldef_t *d);
/* Runs the tool as a call of parent (an agent step, a swarm member); args
 * borrowed. NULL on ENOMEM. */
ice_task_t *ice__tool_call(ice_task_t *parent, const ice__tooldef_t *d,
                           json_t *args, ice__call_cb cb, void *data);
/* Parses a process tool's stdout: bytes that are not UTF-8 and integers
 * past 64 bits are accepted. NULL with jerr when it is not JSON. (Also
 * fuzz/fuzz_toolout.c's entry.) */
json_t *ice__tool_output_parse(const char *s, size_t n, json_error_t *jerr);

#endif
