/* Child runs of another workflow file, shared by the `workflow` node and
 * the `workflow_ref` of `recursive` nodes (SPEC §7.4, §7.5). */
#ifndef ICE_EXEC_SUBWORKFLOW_H
#define ICE_EXEC_SUBWORKFLOW_H

#include "../control.h"
#include "../subwf_load.h"

/* Deepest nesting of child runs. */
#define ICE__MAX_SUBWORKFLOW_DEPTH 16

typedef struct ice__subwf_run_s ice__subwf_run_t;

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
