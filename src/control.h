/* What built-in executors (src/exec/) and built-in tools (src/tools/) may
 * use besides <ice.h>: child frames for control flow, skipping a nested
 * list, the per-iteration state of a recursive node, child runs, and a few
 * internal forms of the public task calls. Frames, slots and runs stay
 * opaque here: only the scheduler changes them, through its commit point.
 * Compile hooks also use workflow.h (the validated graph). */
#ifndef ICE_CONTROL_H
#define ICE_CONTROL_H

#include "states.h"
#include "workflow.h"

#include <ice.h>

typedef struct ice__frame_s ice__frame_t;
/* A child frame finished (every node terminal). Called from the drain
 * loop, never from inside ice__frame_open or ice__frame_stop. */
typedef void (*ice__frame_cb)(ice__frame_t *f, void *data);

/* ---- child frames ------------------------------------------------------- */

/* Opens and starts a frame over `scope` under the running task `parent`:
 * extras (borrowed) are names added to its nodes' context; index is the
 * loop index (-1: none), shown in its nodes' events; branch is a parallel
 * branch number (-1: none); either is part of its nodes' keys. done fires
 * once, from the drain. */
int ice__frame_open(ice_task_t *parent, uint32_t scope, json_t *extras,
                    long index, long branch, ice__frame_cb done, void *data,
                    ice__frame_t **out);
/* Stops a frame: nothing more starts, running nodes are cancelled. Its
 * done callback still fires (queued). */
void ice__frame_stop(ice__frame_t *f);
/* Frees a finished frame (after its done callback). */
void ice__frame_close(ice__frame_t *f);
long ice__frame_index(const ice__frame_t *f);
/* {id: output} of the frame's completed nodes (new reference). */
json_t *ice__frame_outputs(const ice__frame_t *f);
/* Output of the last node of the frame's list, or NULL (borrowed). */
json_t *ice__frame_last_output(const ice__frame_t *f);
/* The first failed node of the frame: its id, error kind and message; NULL
 * when none failed. */
const char *ice__frame_failure(const ice__frame_t *f, int *kind,
                               const char **msg);
/* 1 when every node of the frame completed or was skipped. */
int ice__frame_succeeded(const ice__frame_t *f);

/* The nodes of `scope` under `parent` that will never run (an untaken
 * condition path, a parallel branch never started): each is committed as
 * skipped with `reason`, or as cancelled when reason is ICE__SKIP_NONE. */
void ice__scope_skip(ice_task_t *parent, uint32_t scope, long index,
                     ice__skip_t reason);

/* ---- the attempt -------------------------------------------------------- */

const ice__node_t *ice__task_node(const ice_task_t *t);
const ice_workflow_t *ice__task_workflow(const ice_task_t *t);
/* 1 once the engine asked the attempt to stop (any reason). */
int ice__task_stopping(const ice_task_t *t);
/* Context name resolution (SPEC §3.1), as an ice__lookup_fn. */
json_t *ice__task_lookup(void *task, const char *name, size_t len);
/* ice_task_fail with an ice__kind_t. */
/* Stops the attempt's run as failed after an internal error (ENOMEM,
 * mostly), which its node's error names (ice__run_fault). Called by
 * ice__task_fail_kind for ICE__KIND_INTERNAL. */
void ice__task_fault(ice_task_t *t);
void ice__task_fail_kind(ice_task_t *t, int kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Completes with any JSON value as the output (built-in executors whose
 * output is not an object, such as loop's list). Takes output. */
void ice__task_done_raw(ice_task_t *t, json_t *output);
/* Completes a control-flow node with out (taken), or fails it with kind
 * resource_limit when out's JSON text would be over ICE__MAX_TEXT_BYTES.
 * For the types that can hold one shared value several times (parallel's
 * branch_results and merged, recursive's history), whose text can then
 * double at every level while memory does not. A loop or a condition
 * only adds its children's outputs once, so it does not need it. */
void ice__task_done_flow(ice_task_t *t, json_t *out);
/* Gives up on an attempt whose executor cannot be interrupted: the node
 * goes on as if it had been cancelled; the task is freed, unseen, when its
 * executor completes it. */
void ice__task_abandon(ice_task_t *t);
/* State of a built-in executor that also hands the task to C code which
 * may use ice_task_set_data itself (the tool node and its C tools). */
void ice__task_set_xstate(ice_task_t *t, void *x);
void *ice__task_xstate(const ice_task_t *t);
/* Keeps the attempt's resolved input (tool args, taken) alive for as long
 * as the attempt, for code that borrowed it. */
void ice__task_keep_input(ice_task_t *t, json_t *input);
/* What ice__task_keep_input kept (borrowed), or NULL. */
json_t *ice__task_input(const ice_task_t *t);
/* 1 when a subscriber wants events of the type: build fields only then
 * (ice__task_emit with NULL fields still counts the event's seq). */
int ice__task_wants(const ice_task_t *t, ice__event_t type);
/* Emits an event of the attempt's node (fields taken). */
void ice__task_emit(ice_task_t *t, ice__event_t type, json_t *fields);
/* Calls of this run so far for the attempt's node id and chain of loop
 * indexes, this one included (the `flaky` tool). */
json_int_t ice__task_tally(ice_task_t *t);

/* Follows a dotted path ("a.b.0") into v; "" is v. Borrowed or NULL. */
json_t *ice__json_follow(json_t *v, const char *path);

/* ---- a recursive node's iterations, kept by the scheduler --------------- */

/* The iteration this attempt belongs to (1-based). */
uint32_t ice__task_iteration(const ice_task_t *t);
/* The context carried from the previous iteration (borrowed; NULL in the
 * first), and its replacement (taken). */
json_t *ice__task_carry(const ice_task_t *t);
void ice__task_set_carry(ice_task_t *t, json_t *carry);
/* The node's previous intermediate output (borrowed; NULL at first). */
json_t *ice__task_prev_output(const ice_task_t *t);
/* {id: output} of the completed nodes of its body (new reference). */
json_t *ice__task_body_outputs(const ice_task_t *t);
/* Completes the attempt without ending the node: output (taken) is what
 * its body sees of it, and the body runs again. */
void ice__task_iterate(ice_task_t *t, json_t *output);

/* ---- what an attempt may ask of its run ---------------------------------- */

/* The answer given ahead for this node (ice_run_opts_t.answers, the root
 * run's for a child run), borrowed, or NULL. */
json_t *ice__task_answer(const ice_task_t *t);
/* The run's live metrics (SPEC §8.2): elapsed_seconds, nodes_completed,
 * nodes_failed, nodes_running, retries, tokens, cost (new object). */
json_t *ice__task_metrics(ice_task_t *t);
/* Asks the attempt's run to pause (nothing new starts; running nodes
 * finish) or to abort (as a cancel; status `aborted`). */
void ice__task_pause_run(ice_task_t *t);
void ice__task_abort_run(ice_task_t *t);

/* ---- child runs --------------------------------------------------------- */

/* Depth of the attempt's run: 0 for a run started by the caller. */
int ice__task_run_depth(const ice_task_t *t);
/* Creates a child run of wf for the attempt (its inputs borrowed): it
 * shares the parent's pools, commit hook and restore records, names the
 * parent in its workflow.* events, and gets a run id derived from the
 * parent's and the node instance's. Start it with ice_run_start. */
int ice__task_child_run(ice_task_t *t, ice_workflow_t *wf, json_t *inputs,
                        ice_run_t **out, ice_diags_t *diags);
/* The usage (tokens, cost) of a finished child run, added to the task. */
void ice__task_add_child_usage(ice_task_t *t, const ice_run_t *child);

#endif
