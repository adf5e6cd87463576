/* Child runs of another workflow file, shared by the `workflow` node and
 * the `workflow_ref` of `recursive` nodes (SPEC §7.4, §7.5). */
#ifndef ICE_EXEC_SUBWORKFLOW_H
#define ICE_EXEC_SUBWORKFLOW_H

#include "../control.h"

/* Deepest nesting of child runs. */
#define ICE__MAX_SUBWORKFLOW_DEPTH 16

typedef struct ice__subwf_s ice__subwf_t;
typedef struct ice__subwf_run_s ice__subwf_run_t;

/* Resolves `ref` (a name of the file's `workflows`, else a path relative to
 * the workflow's directory), loads and validates it. Each distinct file
 * (by real path) is loaded once per outermost validation, and all its
 * references share the one compiled workflow; only regular files of at
 * most 64 MiB are read. Problems (missing, unreadable or invalid file, a
 * workflow that references itself) are reported through v, naming both
 * files; an invalid child's own problems are reported once, however many
 * references it has. Returns 0 or ICE_ENOMEM. */
int ice__subwf_compile(ice__vctx_t *v, ice__node_t *n, const char *ref,
                       ice__subwf_t **out);
void ice__subwf_free(ice__subwf_t *s);
/* The child workflow, or NULL when it did not load. */
ice_workflow_t *ice__subwf_workflow(const ice__subwf_t *s);

/* Called once when the child run ends. output is the child's output map
 * (borrowed); on failure kind and msg say why. */
typedef void (*ice__subwf_cb)(void *data, int ok, json_t *output, int kind,
                              const char *msg);

/* Starts a child run with `inputs` (borrowed). On error returns -1 after
 * failing `parent` itself (the callback is then not called). */
int ice__subwf_start(const ice__subwf_t *s, ice_task_t *parent, json_t *inputs,
                     ice__subwf_cb cb, void *data, ice__subwf_run_t **out);
/* Cancels the child run; the callback still fires. A child that stopped
 * as waiting or paused left its node parked (ice_task_wait): cancelling
 * then fires the callback at once, as cancelled, so that the node, still
 * waiting, runs again when its run is restored. */
void ice__subwf_cancel(ice__subwf_run_t *r);

#endif
