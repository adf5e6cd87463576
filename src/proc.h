/* Child processes on the libuv loop: spawn with explicit argv/env/cwd, write
 * one buffer to stdin then close it, collect stdout up to a cap, split
 * stderr into lines, and kill the whole process group on request. The
 * sandbox (limits, namespaces, seccomp; sandbox.h) is applied in the child
 * when opts.sandbox is given; this file knows nothing about tools or JSON.
 *
 * The child gets PR_SET_PDEATHSIG = SIGKILL: it dies when the thread that
 * called ice__proc_start exits, so call it from the loop's thread (which is
 * where every callback runs anyway). In a sandbox with a pid namespace its
 * own children die with it too. */
#ifndef ICE_PROC_H
#define ICE_PROC_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "sandbox.h"

typedef struct ice__proc_s ice__proc_t;

typedef struct {
  int spawn_error;     /* 0, or a negative libuv error: nothing ran */
  int64_t exit_status; /* valid when term_signal == 0 */
  int term_signal;     /* signal that ended the child, 0 if it exited */
  int killed;          /* 1 when ice__proc_kill was called before exit */
  int output_exceeded; /* 1 when stdout passed max_output_bytes */
  char *out;           /* stdout bytes (NUL-terminated), owned by proc */
  size_t out_len;
  /* Last lines of stderr (<= 2 KiB), NUL-terminated; may hold NUL bytes
   * of its own, hence the length. Never starts inside a UTF-8 character
   * (the bytes need not be UTF-8 at all). */
  const char *stderr_tail;
  size_t stderr_tail_len;
  double cpu_seconds; /* user+sys CPU time of the child (0 if unknown) */
  int64_t max_rss_kb; /* peak RSS of the child in KiB (0 if unknown) */
  /* 1 when the child's private TMPDIR may be handed to another child: no
   * process it started can still run (it was a pid namespace's init,
   * which takes them all with it), or it had no mount namespace, so that
   * what it left behind could write wherever the engine's user can (or,
   * as root, not in the engine's directory at all) anyway. */
  int tmp_reusable;
  /* The sandbox limit the child hit, as a message that names it
   * ("memory: ..."; SPEC §5.2), or NULL. Never set when killed. */
  const char *limit;
  /* async_start only: when spawn_error is set, the step that failed
   * (ICE__PROC_STEP_*) and, for ICE__PROC_STEP_SANDBOX, why. */
  int failed_step;
  const char *spawn_msg;
} ice__proc_result_t;

/* Which step failed when ice__proc_start returns an error. */
enum {
  ICE__PROC_STEP_NONE,   /* no child was created (bad args, no memory...) */
  ICE__PROC_STEP_SETUP,  /* in the child, before chdir (setsid, dup2...) */
  ICE__PROC_STEP_CWD,    /* chdir(cwd) */
  ICE__PROC_STEP_EXEC,   /* finding or executing argv[0] */
  ICE__PROC_STEP_SANDBOX /* preparing or applying the sandbox: the
                            message is in opts.errbuf */
};

typedef struct {
  /* argv[0] is searched in the PATH of `env` (or of the engine's
   * environment) unless it holds a '/'; NULL-terminated. */
  const char *const *argv;
  const char *const *env; /* full environment, NULL-terminated; NULL =
                             inherit the engine's */
  const char *cwd;        /* NULL = the engine's */
  const char *stdin_data; /* written then stdin is closed; may be NULL */
  size_t stdin_len;
  size_t max_output_bytes; /* 0 = unlimited; past it the child is killed */
  /* Called for each complete stderr line (without the newline; a final
   * unterminated line is delivered at EOF). May be NULL. */
  void (*on_stderr_line)(void *data, const char *line, size_t len);
  /* Called exactly once, on the loop thread, after the child has exited
   * and both pipes reached EOF (or were closed). `res` and its buffers are
   * valid only during the call. The proc frees itself after it returns. */
  void (*on_exit)(void *data, const ice__proc_result_t *res);
  void *data;
  /* Out, may be NULL: set to an ICE__PROC_STEP_* when start fails. */
  int *failed_step;
  /* The sandbox (SPEC §5.2), or NULL for none. Borrowed: it must outlive
   * the proc. tmpdir is the child's private TMPDIR, writable inside. */
  const ice__sandbox_conf_t *sandbox;
  const char *tmpdir;
  /* Out, may be NULL: the mechanisms (ICE__SBX_*) the sandbox runs
   * without (the kernel refused them and sandbox.strict is false): all of
   * them, or with async_start those known when start returns. */
  unsigned *degraded;
  /* 1: do not wait for the exec in ice__proc_start (with namespaces, the
   * child's set-up takes milliseconds the loop need not block for). A
   * failure before exec then comes to on_exit as spawn_error, with
   * failed_step and spawn_msg; on_degraded (may be NULL) gets what the
   * sandbox runs without, once the exec happened, if anything. */
  int async_start;
  void (*on_degraded)(void *data, unsigned mask);
  /* Out, may be NULL: why start failed at ICE__PROC_STEP_SANDBOX. */
  char *errbuf;
  size_t errlen;
} ice__proc_opts_t;

/* Starts the child in its own session and process group. Returns 0 and
 * *out, or a negative libuv error (a negative errno) when spawning failed
 * before the program ran: on_exit is then NOT called, and *failed_step says
 * whether chdir or exec failed. The engine ignores SIGPIPE; a child that
 * never reads its stdin is not an error. The child's signal dispositions
 * and mask are the defaults. */
int ice__proc_start(uv_loop_t *loop, const ice__proc_opts_t *opts,
                    ice__proc_t **out);

/* Sends SIGKILL to the child's whole process group. on_exit still fires
 * (once) with killed = 1. Safe to call more than once, and after exit
 * before on_exit has run. */
void ice__proc_kill(ice__proc_t *p);

/* The child's pid (its process group id too). */
int ice__proc_pid(const ice__proc_t *p);

/* Tests only: 1 makes the next starts watch exits through SIGCHLD, as on
 * kernels without pidfd_open. */
extern int ice__proc_no_pidfd;

#endif
