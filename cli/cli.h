/* Shared by the files of the `ice` command. */
#ifndef ICE_CLI_H
#define ICE_CLI_H

#include <ice.h>

int cli_run(int argc, char **argv);
const char *cli_run_usage(void);
/* Prints "ice: MESSAGE" and a hint; returns 2 (bad usage). */
int cli_usage_error(const char *fmt, const char *arg);
void cli_print_diags(const ice_diags_t *d);

/* Progress on a terminal: subscribes to node events and redraws one line
 * on stderr. */
typedef struct cli_progress_s cli_progress_t;
cli_progress_t *cli_progress_start(ice_engine_t *e, size_t total);
void cli_progress_stop(ice_engine_t *e, cli_progress_t *p);

#endif
