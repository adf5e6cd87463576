/* Helpers shared by the built-in executors' compile hooks (condition,
 * loop, parallel, recursive, workflow): the common field checks. What an
 * executor may do at run time is in control.h. */
#ifndef ICE_EXEC_FLOW_H
#define ICE_EXEC_FLOW_H

#include "../control.h"

/* Reads an optional integer field >= min; reports and returns dflt when it
 * is out of range. */
long ice__field_int(ice__vctx_t *v, ice__node_t *n, const char *key, long dflt,
                    long min);
/* Compiles an expression field; reports a syntax error with its column. */
ice__expr_t *ice__field_expr(ice__vctx_t *v, ice__node_t *n, const char *key);

#endif
