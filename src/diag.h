/* Lists of diagnostics (diag.c): what loading, validation and run
 * creation append to. */
#ifndef ICE_DIAG_H
#define ICE_DIAG_H

#include <ice.h>

/* Appends a diagnostic (strings copied): ice__diags_add makes an error,
 * ice__diags_add_sev one of the given severity (ICE_DIAG_ERROR or
 * ICE_DIAG_WARNING). d may be NULL. */
int ice__diags_add(ice_diags_t *d, const char *file, int line, int col,
                   const char *msg);
int ice__diags_add_sev(ice_diags_t *d, int severity, const char *file, int line,
                       int col, const char *msg);
/* Inserts copies of src's diagnostics into d before position `at`. */
int ice__diags_insert(ice_diags_t *d, size_t at, const ice_diags_t *src);

#endif
