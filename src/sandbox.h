/* The sandbox of process tools and code nodes (SPEC §5.2): resource limits,
 * namespaces, a read-only view of the host, seccomp, no privileges. It is
 * applied in the child only, between fork and exec (proc.c calls in):
 * everything that allocates is prepared in the parent by
 * ice__sandbox_prepare, and the child runs async-signal-safe system calls
 * only. docs/security.md has the threat model and the order of the steps.
 *
 * Three parts: the configuration read from a definition's `sandbox` object
 * (once, at validation); a prepared sandbox (one per child: cgroup, mount
 * plan, seccomp program, maps); and the verdict after the child ended
 * (which limit, if any, it hit). */
#ifndef ICE_SANDBOX_H
#define ICE_SANDBOX_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* The mechanisms a kernel may refuse: bit, key of ICE_SANDBOX_REFUSE (the
 * test hook, see docs/security.md), and the name a `sandbox.degraded`
 * event or a strict failure gives. */
#define ICE__SBX_MECH_MAP(XX)                                                  \
  XX(USER, "user", "user namespace")                                           \
  XX(PID, "pid", "pid namespace")                                              \
  XX(NET, "net", "network namespace")                                          \
  XX(MOUNT, "mount", "mount namespace")                                        \
  XX(IPC, "ipc", "ipc namespace")                                              \
  XX(UTS, "uts", "uts namespace")                                              \
  XX(READONLY, "readonly", "read-only file system")                            \
  XX(IDMAP, "idmap", "id-mapped mounts")                                       \
  XX(SECCOMP, "seccomp", "seccomp filter")

enum {
#define XX(name, key, text) ICE__SBX_BIT_##name,
  ICE__SBX_MECH_MAP(XX)
#undef XX
      ICE__SBX_NMECH
};
#define XX(name, key, text) ICE__SBX_##name = 1u << ICE__SBX_BIT_##name,
enum { ICE__SBX_MECH_MAP(XX) };
#undef XX

/* A definition's `sandbox` object with SPEC §5.2's defaults filled in. */
typedef struct {
  int64_t memory_mb;       /* 512 */
  int64_t cpu_seconds;     /* 10 */
  int64_t max_processes;   /* 64 */
  int64_t max_open_files;  /* 256 */
  int64_t max_file_bytes;  /* 64 MiB */
  size_t max_output_bytes; /* 1 MiB (proc.c enforces it) */
  int network;             /* 1: the host's network (default 0) */
  int fs_full;             /* 1: filesystem "full" (default "read-only") */
  int strict;              /* 1: a refused mechanism fails the node */
  char *dir;               /* the workflow's directory, owned */
  char **writable;         /* absolute paths, NULL-terminated, owned */
  /* Directories of the tool's own files (a script named in its command,
   * `../tools/x.py`), kept visible read-only like the workflow's
   * directory even under a directory the tool's user cannot search.
   * Absolute, NULL-terminated, owned; NULL for none. */
  char **readable;
} ice__sandbox_conf_t;

/* The defaults. Never fails; ice__sandbox_conf_free is still needed after
 * ice__sandbox_conf_parse. */
void ice__sandbox_conf_init(ice__sandbox_conf_t *c);

/* Reads `obj` (a `sandbox` object, or NULL for the defaults) over c's
 * defaults; relative `writable` paths start from dir (the workflow's
 * directory, also kept in c->dir). Returns 0, or -1 with a message in err:
 * a field the checks below refuse, or ENOMEM ("out of memory"). */
int ice__sandbox_conf_parse(ice__sandbox_conf_t *c, json_t *obj,
                            const char *dir, char *err, size_t errlen);
void ice__sandbox_conf_free(ice__sandbox_conf_t *c);

/* The field names of a `sandbox` object, NULL-terminated (for typo
 * hints). */
extern const char *const ice__sandbox_fields[];

/* Checks one field of a `sandbox` object. NULL when it is valid, else a
 * message ("must be an integer >= 1"; "unknown field" for a name not in
 * ice__sandbox_fields) written into buf. */
const char *ice__sandbox_check_field(const char *key, json_t *val, char *buf,
                                     size_t len);

/* The benchmark hook ICE_SANDBOX_REFUSE=sandbox: for a configuration that
 * is not strict, the mechanisms it asks for (the tool then runs with no
 * sandbox at all: no namespaces, limits, seccomp or privilege drop), else
 * 0. A strict configuration fails as with `all`. */
unsigned ice__sandbox_off(const ice__sandbox_conf_t *c);

/* The names of the mechanisms in `mask` as a new JSON array of strings
 * (for a sandbox.degraded event); NULL on ENOMEM. */
json_t *ice__sandbox_missing_json(unsigned mask);

/* ---- one child --------------------------------------------------------- */

typedef struct ice__sandbox_s ice__sandbox_t;

/* Everything a child needs, prepared in the parent: the clone flags (the
 * namespaces; probed again when the kernel refuses some), the cgroup, the
 * mount plan for cwd, the workflow's directory, tmpdir (the private
 * TMPDIR, writable) and c->writable, the uid maps, the rlimits and the
 * seccomp program. c must outlive the result. Returns 0, or a negative
 * errno with a message in err (e.g. a writable path that does not exist,
 * or, when c->strict, a mechanism the kernel refuses). */
int ice__sandbox_prepare(const ice__sandbox_conf_t *c, const char *tmpdir,
                         const char *cwd, ice__sandbox_t **out, char *err,
                         size_t errlen);

/* After the child ended (and was reaped): the limit it hit, if any, as a
 * message that names it ("memory: ..."), into msg; 1 when one was hit,
 * else 0. status/term_signal are the tool's own (not its init's);
 * cpu_seconds and max_rss_kb from its rusage; nprocs the processes and
 * threads that were left in its namespace when it ended (-1 unknown). */
int ice__sandbox_verdict(ice__sandbox_t *s, int64_t exit_status,
                         int term_signal, double cpu_seconds,
                         int64_t max_rss_kb, int nprocs, char *msg, size_t len);

/* Tests only: the next ice__sandbox_prepare looks for a cgroup base again
 * ($ICE_CGROUP, or the engine's own cgroup; it is cached otherwise). */
void ice__sandbox_cgroup_reprobe(void);

/* Removes the cgroup (killing what is left in it) and frees. NULL-safe. */
void ice__sandbox_free(ice__sandbox_t *s);

/* ---- the child's side (proc.c) ----------------------------------------- */

/* What the child writes to the parent through the report pipe (proc.c
 * uses the same record for its own steps). */
typedef struct {
  int kind;      /* ICE__SBX_REPORT_* */
  int step;      /* ICE__PROC_STEP_* of proc.h, for a failure */
  int err;       /* errno */
  int what;      /* ICE__SBX_WHAT_*: the sandbox step that failed */
  int arg;       /* its detail: the mount plan's op, the rlimit... */
  unsigned mech; /* the mechanisms refused (DEGRADED), or the one whose
                    refusal failed a strict child (FAIL), else 0 */
} ice__sandbox_report_t;

enum { ICE__SBX_REPORT_FAIL = 1, ICE__SBX_REPORT_DEGRADED = 2 };

enum {
  ICE__SBX_WHAT_NONE,
  ICE__SBX_WHAT_MAPS,
  ICE__SBX_WHAT_MOUNT,
  ICE__SBX_WHAT_USER,
  ICE__SBX_WHAT_USERNS,
  ICE__SBX_WHAT_RLIMIT,
  ICE__SBX_WHAT_CAPS,
  ICE__SBX_WHAT_NNP,
  ICE__SBX_WHAT_SECCOMP
};

/* The message for a FAIL report, into buf ("sandbox: ..."). */
void ice__sandbox_describe(const ice__sandbox_t *s,
                           const ice__sandbox_report_t *r, char *buf,
                           size_t len);

/* What the sandbox's init (pid 1 of the tool's pid namespace) writes to
 * the parent just before it exits: the tool's wait status, and how many
 * tasks were left in the namespace (-1 unknown). */
typedef struct {
  int status;
  int nprocs;
} ice__sandbox_status_t;

/* Creates the child (instead of fork) in the sandbox's namespaces: the
 * pid in the parent, 0 in the child, -1 with errno on failure. When the
 * kernel refuses namespaces, finds out which and either fails (strict:
 * errno EPERM and ice__sandbox_message says what) or goes on without
 * them (they are then in ice__sandbox_missing). Call with signals
 * blocked, like fork in proc.c. */
int ice__sandbox_fork(ice__sandbox_t *s);
/* Why ice__sandbox_fork failed ("" if it did not). */
const char *ice__sandbox_message(const ice__sandbox_t *s);

/* The flags for clone(2) (namespaces, without the exit signal). */
long ice__sandbox_clone_flags(const ice__sandbox_t *s);
/* 1 when the child is the init of a new pid namespace: it then forks the
 * tool and waits (ice__sandbox_init_reap). */
int ice__sandbox_has_init(const ice__sandbox_t *s);
/* The mechanisms already known to be missing when the child starts. */
unsigned ice__sandbox_missing(const ice__sandbox_t *s);

/* In the child right after clone, before the tool is forked: uid/gid maps,
 * the cgroup, the mount plan. 0, or -1 after writing a FAIL report to
 * `report` (the child must then exit). A refused mechanism is reported as
 * DEGRADED when the configuration is not strict. Async-signal-safe. */
int ice__sandbox_child_setup(const ice__sandbox_t *s, int report);

/* In the process that will exec the tool, last before exec (after dup2 of
 * its pipes): the tool's user (nobody when the engine is root) in a user
 * namespace of its own, chdir(cwd), the rlimits, no capabilities, no new
 * privileges, the seccomp filter. 0, or -1 after a FAIL report (step
 * ICE__PROC_STEP_CWD when chdir failed). Async-signal-safe. */
int ice__sandbox_child_drop(const ice__sandbox_t *s, const char *cwd,
                            int report);

/* The tool's stack from its clone to its exec: our own frames, the PATH
 * search's buffer, a sanitizer's redzones. */
#define ICE__SBX_TOOL_STACK (64 * 1024)

/* In the init: starts the tool as fn(arg) in a child that shares the
 * init's memory until it execs (the init waits until then), on `stack`
 * (ICE__SBX_TOOL_STACK bytes). Give it a buffer on the init's own stack:
 * a sanitizer knows that stack, and the init's frame outlives the tool's
 * use of it. The tool's pid, or -1 with errno. */
int ice__sandbox_spawn_tool(int (*fn)(void *), void *arg, char *stack);

/* The init's life after starting the tool (pid `tool`): keep only
 * status_fd, reap every process of the namespace until the tool has ended,
 * count what is left, and write an ice__sandbox_status_t to status_fd.
 * The init then exits, which ends every process of the namespace.
 * Async-signal-safe. */
void ice__sandbox_init_reap(const ice__sandbox_t *s, int tool, int status_fd);

#endif
