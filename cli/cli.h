/* Shared by the files of the `ice` command. */
#ifndef ICE_CLI_H
#define ICE_CLI_H

#include <ice.h>

int cli_run(int argc, char **argv);
const char *cli_run_usage(void);
/* Prints "ice: MESSAGE" and a hint; returns 2 (bad usage). */
int cli_usage_error(const char *fmt, const char *arg);
void cli_print_diags(const ice_diags_t *d);
/* Prints "ice: OPT is not supported yet"; returns 2. */
int cli_unsupported(const char *opt);

/* Opens /dev/null on any of fd 0, 1, 2 that is closed (libuv asserts that
 * the fds it opens are above 2), remembering which. 0, or -1. */
int cli_fill_std_fds(void);
/* The final fclose of stdout, checked: rc, or 1 when the result was lost. */
int cli_close_stdout(int rc);
/* 1 when fd 0, 1 or 2 was closed when ice started (it now holds /dev/null,
 * so what is written there is lost). */
int cli_fd_was_closed(int fd);
/* Writes s (NULL = out of memory), and a newline when asked, to stdout and
 * flushes it. Returns 0, or -1 after printing "ice: cannot write WHAT:
 * REASON" on stderr; the command then exits 1 instead of 0. */
int cli_write_out(const char *s, int newline, const char *what);

/* Progress on a terminal: subscribes to node events and redraws one line
 * on stderr. */
typedef struct cli_progress_s cli_progress_t;
cli_progress_t *cli_progress_start(ice_engine_t *e, size_t total);
void cli_progress_stop(ice_engine_t *e, cli_progress_t *p);

#endif
