/* The loader's side of sub-workflows: a reference resolved and its file
 * loaded once per validation (subwf_load.c). */
#ifndef ICE_SUBWF_LOAD_H
#define ICE_SUBWF_LOAD_H

#include "workflow.h"

typedef struct ice__subwf_s ice__subwf_t;

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

#endif
