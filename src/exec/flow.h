/* Helpers shared by the control-flow executors (condition, loop, parallel,
 * recursive, workflow): reading the outcome of a finished child frame and
 * the common compile-time checks. */
#ifndef ICE_EXEC_FLOW_H
#define ICE_EXEC_FLOW_H

#include "../run.h"

/* {id: output} of the frame's completed nodes (new reference). */
json_t *ice__frame_outputs(const ice__frame_t *f);
/* Output of the last node of the frame's list, or NULL (borrowed). */
json_t *ice__frame_last_output(const ice__frame_t *f);
/* The first failed node of the frame, or NULL. */
const ice__node_t *ice__frame_failed(const ice__frame_t *f,
                                     const ice__slot_t **slot);
/* 1 when every node of the frame completed or was skipped. */
int ice__frame_succeeded(const ice__frame_t *f);

/* Reads an optional integer field >= min; reports and returns dflt when it
 * is out of range. */
long ice__field_int(ice__vctx_t *v, ice__node_t *n, const char *key, long dflt,
                    long min);
/* Compiles an expression field; reports a syntax error with its column. */
ice__expr_t *ice__field_expr(ice__vctx_t *v, ice__node_t *n, const char *key);

/* Fails t with a nested node's failure: "WHERE: node 'x' failed: MSG". */
void ice__fail_nested(ice_task_t *t, const char *where, const ice__node_t *n,
                      const ice__slot_t *s);

/* Completes a control-flow node with out (taken), or fails it with kind
 * resource_limit when out's JSON text would be over ICE__MAX_TEXT_BYTES. */
void ice__flow_done(ice_task_t *t, json_t *out);

#endif
