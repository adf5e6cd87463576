/* Shared by the files of the `ice` command. */
#ifndef ICE_CLI_H
#define ICE_CLI_H

#include <ice.h>

int cli_run(int argc, char **argv);
const char *cli_run_usage(void);
int cli_resume(int argc, char **argv);
const char *cli_resume_usage(void);
/* `ice runs`, `ice show`, `ice events` (store.c). */
int cli_runs(int argc, char **argv);
int cli_show(int argc, char **argv);
int cli_events(int argc, char **argv);
const char *cli_runs_usage(void);
const char *cli_show_usage(void);
const char *cli_events_usage(void);

/* Opens the run store at path (NULL = the default); 0, or 2 after printing
 * why. */
int cli_open_store(const char *path, ice_store_t **out);
/* Closes s (NULL is fine); 0, or 1 after printing why. */
int cli_close_store(ice_store_t *s);
/* Prints a result (SPEC §11.1) on stdout as `ice run` does: indented on a
 * terminal, one line otherwise; only its output with output_only. 0, or -1
 * after printing why it was not written. */
int cli_print_result(json_t *res, int output_only);
/* cli_print_result for the result of a finished run, written without
 * building it when the run deferred it (ice_run_defer_result). */
int cli_print_run(ice_run_t *run, int output_only);
/* The exit status of a result: 0 success, 3 paused or waiting, else 1. */
int cli_result_exit(json_t *res);
/* Prints "ice: MESSAGE" and a hint; returns 2 (bad usage). */
int cli_usage_error(const char *fmt, const char *arg);
void cli_print_diags(const ice_diags_t *d);
/* Adds the tool files of SPEC §1.1 to e: each path of the array files
 * (--tools, in order), then those of $ICE_TOOLS. Prints every diagnostic;
 * 0, or 2 when one of them could not be loaded. */
int cli_add_tool_files(ice_engine_t *e, json_t *files);
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

/* cli_write_out for a JSON value (its text as ice_json_format gives it,
 * and a newline), written a piece at a time. */
int cli_write_json(const json_t *v, int indent, const char *what);
/* The same for a finished run's result (ice_run_write_result): 0, -1 after
 * printing why, or 1 when its text would be over cap bytes (nothing
 * written, nothing printed). */
int cli_write_run_result(ice_run_t *run, int output_only, int indent,
                         size_t cap);
/* 0 when `ice run` and `ice resume` may leave the run, the workflow and
 * the engine to the exit: freeing a large workflow value by value costs a
 * quarter of the run, and the kernel takes the whole heap back at once.
 * 1 in sanitizer builds (-DICE_ASAN=ON), whose leak checks need
 * everything freed, and when ICE_FREE_AT_EXIT is set in the environment
 * (for valgrind). Stores, event files and stdout are closed either way. */
int cli_free_at_exit(void);

/* Progress on a terminal: subscribes to node events and redraws one line
 * on stderr. */
typedef struct cli_progress_s cli_progress_t;
cli_progress_t *cli_progress_start(ice_engine_t *e, size_t total);
void cli_progress_stop(ice_engine_t *e, cli_progress_t *p);

#endif
