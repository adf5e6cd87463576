/* Child processes on the libuv loop (see proc.h). A proc owns its handles
 * (an exit watcher, the stdout and stderr pipes, a drain timer; stdin's
 * pipe, the report pipe's watcher and a prepare handle when it needs
 * them); it calls on_exit and frees itself only once every one of them has
 * closed, so nothing outlives it and the loop can be closed right after. The
 * sandbox (sandbox.c) hooks in at three points: it creates the child (clone
 * into namespaces), it runs in the child before exec, and it judges the exit
 * (which limit was hit).
 *
 * We start and exec the child ourselves instead of using uv_spawn (a
 * clone that shares our memory until exec, or, to make namespaces, a
 * fork): libuv has no hook that runs in the child before exec, and the
 * child must ask for a parent-death signal (so that a tool never outlives
 * an engine killed with SIGKILL) and must tell us which step failed (cwd
 * or exec). The exit is
 * watched through a pidfd (Linux >= 5.3), or through SIGCHLD where there is
 * none; we reap the child ourselves, which also gives us its rusage. */
#include "proc.h"

#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

extern char **environ;

/* The child of vfork_child runs on a buffer in our frame and never
 * returns, so AddressSanitizer's poisoning of its frames stays in the
 * shadow of that buffer: clear it before and after each use. */
#if defined(__SANITIZE_ADDRESS__)
#define PROC_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PROC_ASAN 1
#endif
#endif
#ifdef PROC_ASAN
#include <sanitizer/asan_interface.h>
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

/* stderr is split into lines of at most this many bytes: a child that
 * writes megabytes without a newline gets it back in chunks instead of
 * making us buffer it all. */
#define LINE_CAP (64 * 1024)
/* Bytes of stderr kept for error messages. */
#define TAIL_CAP 2048
/* stdout is read straight into the result buffer; keep this much free.
 * The first buffer is small: most tools print a line, and 64 KiB taken
 * and given back per tool made malloc grow and trim its heap (brk, and
 * page faults on the fresh pages) every time. */
#define READ_CHUNK (64 * 1024)
#define FIRST_READ 4096
/* libuv asks for a buffer before every read, EOF included: `line` is
 * taken only once stderr has bytes, which most tools never write. */
#define FIRST_ERR 512
/* After the child has exited and its group was killed, EOF normally comes
 * at once. Only a descendant that left the group (setsid) can hold a pipe
 * open; we stop waiting for it after this long. */
#define DRAIN_MS 1000

/* Without a pidfd, how often we also check for an exit that SIGCHLD did
 * not report (see on_reap_poll). */
#define REAP_POLL_MS 100
/* With a pidfd, stdout and stderr are read from the exit, or from this
 * long after the start for a tool still running: a short tool then wakes
 * the loop once (its exit), not for its output and each pipe's EOF too.
 * Meanwhile the pipes buffer what it writes (64 KiB each). */
#define LAZY_MS 5

int ice__proc_no_pidfd;

struct ice__proc_s {
  union {            /* the exit watcher: poll when pidfd >= 0, else sig */
    uv_poll_t poll;  /* readable when the child has exited */
    uv_signal_t sig; /* SIGCHLD, when there is no pidfd */
  } watch;
  uv_pipe_t in; /* only for an input PIPE_BUF cannot hold (in_init) */
  uv_pipe_t out;
  uv_pipe_t err;
  uv_timer_t drain;
  uv_prepare_t tell; /* tells on_degraded before the loop waits (tell_init) */
  uv_write_t write_req;
  int open_handles; /* initialised and not yet closed */
  int spawned;      /* the child runs: on_exit is owed */
  int exited;       /* reaped (or known gone) */
  int pid;
  int pidfd;      /* -1 without one; closed after the poll handle */
  int watch_init; /* `watch` was initialised (it must be closed) */
  int drain_late; /* the drain timer fired once already */
  int in_init;    /* `in` was initialised (it must be closed) */
  int reading;    /* libuv reads stdout and stderr (else: at the exit) */
  int out_fd;     /* the pipes' ends until libuv has them (or -1) */
  int err_fd;
  int tell_init; /* `tell` was initialised (it must be closed) */
  size_t max_output;
  void (*on_stderr_line)(void *data, const char *line, size_t len);
  void (*on_exit)(void *data, const ice__proc_result_t *res);
  void *data;
  char *stdin_buf; /* our copy: the caller's buffer may go away */
  char *out_buf;   /* stdout, always with room for a final NUL */
  size_t out_len;
  size_t out_cap;
  char *line; /* partial stderr line, LINE_CAP bytes when allocated */
  size_t line_len;
  char err_first[FIRST_ERR]; /* the first read of stderr, before `line` */
  char tail[TAIL_CAP + 1];
  size_t tail_len;
  ice__proc_result_t res;
  ice__sandbox_t *sb; /* or NULL; freed with the proc */
  int status_fd;      /* the sandbox init's status pipe, or -1 */
  char limit[256];    /* res.limit points here */
  /* async_start: the report pipe is read on the loop, until EOF. */
  uv_poll_t report;
  int report_fd;     /* -1 when there is none (or it was closed) */
  int report_init;   /* `report` was initialised (it must be closed) */
  int report_eof;    /* every record is in */
  int report_failed; /* a FAIL record came: `failed` */
  int degraded_due;  /* every record is in: on_degraded is owed */
  ice__sandbox_report_t failed;
  unsigned degraded;
  void (*on_degraded)(void *data, unsigned mask);
  char spawn_msg[512]; /* res.spawn_msg points here */
};

/* A write to a pipe whose reader is gone raises SIGPIPE, whose default
 * action would kill the whole engine. Ignore it unless the embedding
 * program installed its own handler. Children get SIG_DFL back: the child
 * resets every signal between fork and exec. */
static void ignore_sigpipe(void) {
  struct sigaction sa;

  if (sigaction(SIGPIPE, NULL, &sa) != 0)
    return;
  if ((sa.sa_flags & SA_SIGINFO) || sa.sa_handler != SIG_DFL)
    return;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = SIG_IGN;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGPIPE, &sa, NULL);
}

/* ---- spawning ----------------------------------------------------------- */

/* What the child tells the parent through the report pipe: a step before
 * exec (or exec itself) failed, or the sandbox runs without something.
 * Smaller than PIPE_BUF: atomic. */
typedef ice__sandbox_report_t report_t;

/* Everything the child needs, prepared before fork: between fork and exec
 * the child may only make async-signal-safe calls (another thread of the
 * engine may hold the malloc lock), so it allocates nothing. */
typedef struct {
  pid_t ppid;
  const char *const *argv;
  const char *const *envp;
  const char *cwd;
  const char **sh_argv;      /* {"/bin/sh", <path>, argv[1..], NULL} */
  int fd_in, fd_out, fd_err; /* child ends, all > 2 */
  int report;                /* write end of the report pipe */
  const ice__sandbox_t *sb;  /* or NULL */
  int status;                /* sandbox: the init's end of the status pipe */
} child_t;

/* Moves fd above 0-2, keeping O_CLOEXEC. An engine started with a
 * standard descriptor closed would otherwise get a pipe end as fd 0-2,
 * and the child's dup2 onto 0-2 would clobber it. */
static int above_stdio(int fd) {
  int nfd;

  if (fd > STDERR_FILENO)
    return fd;
  nfd = fcntl(fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
  close(fd);
  return nfd;
}

/* pipe2 with O_CLOEXEC (no other thread's child may inherit our ends),
 * both ends above 0-2. Returns 0 or a negative errno. */
static int make_pipe(int fds[2]) {
  if (pipe2(fds, O_CLOEXEC) != 0)
    return -errno;
  fds[0] = above_stdio(fds[0]);
  fds[1] = above_stdio(fds[1]);
  if (fds[0] < 0 || fds[1] < 0) {
    int e = errno;

    if (fds[0] >= 0)
      close(fds[0]);
    if (fds[1] >= 0)
      close(fds[1]);
    fds[0] = fds[1] = -1;
    return -e;
  }
  return 0;
}

static void close_fd(int *fd) {
  if (*fd >= 0)
    close(*fd);
  *fd = -1;
}

/* From here to the end of child_main the code runs only in the child,
 * between fork and exec, which ends in exec or _exit: gcov never gets to
 * write down what ran, so a coverage build cannot see it (the tests of
 * test_proc.c, test_sandbox.c and the CLI cases exercise every path of it;
 * test_sandbox.c runs the sandbox's own child steps where gcov can count
 * them). */
// GCOVR_EXCL_START
static _Noreturn void child_fail(const child_t *c, int step, int err) {
  report_t r;
  ssize_t n;

  memset(&r, 0, sizeof(r));
  r.kind = ICE__SBX_REPORT_FAIL;
  r.step = step;
  r.err = err;
  do
    n = write(c->report, &r, sizeof(r));
  while (n < 0 && errno == EINTR);
  _exit(127);
}

/* execve of one candidate; a file without a #! line runs under /bin/sh,
 * as execvp does. Returns errno. */
static int child_execve(const child_t *c, const char *path) {
  execve(path, (char *const *)c->argv, (char *const *)c->envp);
  if (errno == ENOEXEC) {
    c->sh_argv[1] = path;
    execve("/bin/sh", (char *const *)c->sh_argv, (char *const *)c->envp);
    errno = ENOEXEC;
  }
  return errno;
}

/* execvpe, but searching the PATH of the child's environment (glibc's
 * execvpe searches the caller's) and allocating nothing. Returns errno. */
static int child_exec(const child_t *c) {
  const char *file = c->argv[0];
  const char *path = NULL;
  size_t flen = strlen(file);
  int eacces = 0;
  char buf[PATH_MAX];

  if (strchr(file, '/') != NULL) {
    struct stat st;
    int err = child_execve(c, file);

    /* execve says EACCES for a directory; say what it is. */
    if (err == EACCES && stat(file, &st) == 0 && S_ISDIR(st.st_mode))
      err = EISDIR;
    return err;
  }
  for (const char *const *e = c->envp; *e != NULL; e++) {
    if (strncmp(*e, "PATH=", 5) == 0) {
      path = *e + 5;
      break;
    }
  }
  if (path == NULL)
    path = "/bin:/usr/bin"; /* confstr(_CS_PATH), as execvp uses */
  for (const char *p = path;;) {
    const char *end = strchrnul(p, ':');
    size_t dlen = (size_t)(end - p);

    /* An empty element is the current directory. */
    if (dlen + 1 + flen < sizeof(buf)) {
      memcpy(buf, p, dlen);
      if (dlen > 0)
        buf[dlen++] = '/';
      memcpy(buf + dlen, file, flen + 1);
      switch (child_execve(c, buf)) {
      case EACCES: {
        struct stat st;

        /* A directory of PATH the tool's user cannot search (a sandboxed
         * tool may run as nobody) hides nothing it could run: go on as for
         * a missing file. A file it may not execute is reported if nothing
         * else runs. */
        if (stat(buf, &st) == 0)
          eacces = 1;
        break;
      }
      case ENOENT:
      case ENOTDIR:
      case ESTALE:
      case ENODEV:
      case ETIMEDOUT:
      case ELOOP:
      case ENAMETOOLONG:
        break;
      default:
        return errno; /* E2BIG, ENOEXEC, ENOMEM...: found but failed */
      }
    }
    if (*end == '\0')
      break;
    p = end + 1;
  }
  return eacces ? EACCES : ENOENT;
}

/* The tool's own steps, last before exec: its pipes onto 0-2, then the
 * sandbox's drop (user, cwd, limits, capabilities, seccomp) or a plain
 * chdir. Runs in the forked child, or, with a sandbox's init, in a child
 * of that init sharing its memory until exec (so: system calls only). */
static int tool_main(void *arg) {
  const child_t *c = arg;
  sigset_t none;

  /* The sources are all > 2 (above_stdio), so no dup2 clobbers another;
   * dup2 clears O_CLOEXEC on the copies, the originals close at exec. */
  if (dup2(c->fd_in, STDIN_FILENO) < 0 || dup2(c->fd_out, STDOUT_FILENO) < 0 ||
      dup2(c->fd_err, STDERR_FILENO) < 0)
    child_fail(c, ICE__PROC_STEP_SETUP, errno);
  if (c->sb != NULL) {
    if (ice__sandbox_child_drop(c->sb, c->cwd, c->report) != 0)
      _exit(127);
  } else if (c->cwd != NULL && chdir(c->cwd) != 0) {
    child_fail(c, ICE__PROC_STEP_CWD, errno);
  }
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  child_fail(c, ICE__PROC_STEP_EXEC, child_exec(c));
}

/* We stay as the namespace's init; the tool is a child that shares our
 * memory until it execs (vfork-like: no second copy of the engine's page
 * tables), on a stack in this frame. A function of its own: a child of
 * vfork_child, which runs on a stack of that size itself, never has this
 * frame. */
static __attribute__((noinline)) _Noreturn void init_main(const child_t *c) {
  char stack[ICE__SBX_TOOL_STACK] __attribute__((aligned(16)));
  pid_t t = ice__sandbox_spawn_tool(tool_main, (void *)c, stack);

  if (t < 0)
    child_fail(c, ICE__PROC_STEP_SETUP, errno);
  ice__sandbox_init_reap(c->sb, t, c->status);
  _exit(0); /* and the kernel kills the rest of the namespace */
}

/* The child, from fork to exec. Every signal is blocked on entry (the
 * parent blocked them around fork, so no handler of the engine runs here,
 * libuv's included, which would write into the engine's signal pipe). */
static _Noreturn void child_main(const child_t *c) {
  struct sigaction sa;

  /* A new session: the child leads its own process group, which we kill
   * as a whole, and a terminal's Ctrl-C reaches only the engine. */
  if (setsid() < 0)
    child_fail(c, ICE__PROC_STEP_SETUP, errno);
#ifdef __linux__
  /* Dies with the engine, even when the engine is SIGKILLed. The signal
   * fires when the *thread* that forked exits: the loop thread spawns. */
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
    child_fail(c, ICE__PROC_STEP_SETUP, errno);
  /* The engine died between fork and prctl: nobody will reap or read us.
   * In a new pid namespace getppid() is 0 (the parent is outside it): the
   * engine is then gone when no one reads the report pipe any more. */
  {
    pid_t pp = getppid();
    struct pollfd pf = {c->report, POLLOUT, 0};

    if (pp != 0 ? pp != c->ppid : poll(&pf, 1, 0) < 0 || (pf.revents & POLLERR))
      _exit(127);
  }
#endif
  /* Default dispositions (the engine ignores SIGPIPE; a tool must not). */
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = SIG_DFL;
  sigemptyset(&sa.sa_mask);
  for (int sig = 1; sig < NSIG; sig++) {
    if (sig == SIGKILL || sig == SIGSTOP || sigaction(sig, &sa, NULL) == 0)
      continue;
    /* glibc refuses its reserved real-time signals (32, 33), which a
     * runtime such as a sanitizer's may have set to SIG_IGN, and exec
     * keeps SIG_IGN: reset them with the raw system call. */
    {
      struct {
        void *handler;
        unsigned long flags;
        void *restorer;
        uint64_t mask;
      } ksa = {SIG_DFL, 0, NULL, 0};
      syscall(SYS_rt_sigaction, sig, &ksa, NULL, sizeof(ksa.mask));
    }
  }
  /* The sandbox: namespaces are made (clone), now the mounts and maps. As
   * the init of a pid namespace, this process then forks the tool and
   * only waits; the tool goes on below. */
  if (c->sb != NULL) {
    if (ice__sandbox_child_setup(c->sb, c->report) != 0)
      _exit(127);
    if (ice__sandbox_has_init(c->sb))
      init_main(c);
  }
  tool_main((void *)c);
  _exit(127); /* not reached */
}

static int child_entry(void *arg) {
  child_main(arg);
}

// GCOVR_EXCL_STOP

/* Without namespaces the child borrows our memory until it execs, as
 * posix_spawn's does: a fork would copy the page tables of the whole engine
 * only for exec to throw them away, and that copy and its teardown were a
 * third of the CPU a short tool cost. CLONE_VFORK: this thread waits until
 * the child has exec'd or died, so the stack it runs on (here, in our
 * frame) and the buffers of c are never used by two at once. The child
 * makes system calls only (no atfork handler runs, no lock is taken), keeps
 * every signal blocked until its dispositions are the defaults (it has its
 * own copy of the handlers: no CLONE_SIGHAND), and writes nothing of ours
 * but errno (this thread's, which is waiting) and c->sh_argv, made for it.
 * The stack grows down from its end: one past the buffer is where it
 * starts, which cppcheck takes for an overflow. */
static pid_t vfork_child(child_t *c) {
  char stack[ICE__SBX_TOOL_STACK] __attribute__((aligned(16)));
  pid_t pid;
  int err;

  UNPOISON(stack, sizeof(stack));
  // cppcheck-suppress ctuPointerArith
  pid = clone(child_entry, stack + sizeof(stack),
              CLONE_VM | CLONE_VFORK | SIGCHLD, c);
  err = errno;
  UNPOISON(stack, sizeof(stack));
  errno = err;
  return pid;
}

/* Reads report records from fd until EOF (returns 1) or, on a
 * non-blocking fd, until none is ready (returns 0). DEGRADED records add to
 * *degraded; the first FAIL record goes to *failed (*got set). */
static int read_reports(int fd, unsigned *degraded, report_t *failed,
                        int *got) {
  report_t r;
  ssize_t n;

  for (;;) {
    n = read(fd, &r, sizeof(r));
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && errno == EAGAIN)
      return 0;
    if (n != (ssize_t)sizeof(r))
      return 1; /* EOF (or an error: nothing more will come) */
    if (r.kind == ICE__SBX_REPORT_DEGRADED)
      *degraded |= r.mech;
    else if (r.kind == ICE__SBX_REPORT_FAIL && !*got) {
      *failed = r;
      *got = 1;
    }
  }
}

/* Forks (or clones into the sandbox sb) and execs. fds: the pipes of
 * stdin, stdout, stderr ([0] read end). Returns the pid, or a negative
 * errno with *step set when the child reported a failure before exec (it
 * has been reaped then). With report_fd (async start), it does not wait
 * for the exec: *report_fd is the report pipe's non-blocking read end, for
 * the loop to read, or -1 when every record is in already (*failed and
 * *got as read_reports sets them). With an init (a pid namespace),
 * *status_fd is the read end of the pipe through which it reports the
 * tool's status. */
static int spawn(const ice__proc_opts_t *o, int fds[3][2], ice__sandbox_t *sb,
                 int *status_fd, int *report_fd, unsigned *degraded,
                 report_t *failed, int *got, int *step) {
  child_t c;
  int report[2], status[2] = {-1, -1};
  size_t argc = 0;
  sigset_t all, old;
  pid_t pid;
  int err, vforked = 0;

  while (o->argv[argc] != NULL)
    argc++;
  memset(&c, 0, sizeof(c));
  c.sh_argv = ice__calloc(argc + 2, sizeof(char *));
  if (c.sh_argv == NULL)
    return -ENOMEM;
  c.sh_argv[0] = "/bin/sh";
  for (size_t i = 1; i < argc; i++)
    c.sh_argv[i + 1] = o->argv[i];
  if ((err = make_pipe(report)) != 0) {
    ice__free(c.sh_argv);
    return err;
  }
  if (sb != NULL && ice__sandbox_has_init(sb) &&
      (err = make_pipe(status)) != 0) {
    close(report[0]);
    close(report[1]);
    ice__free(c.sh_argv);
    return err;
  }
  c.ppid = getpid();
  c.argv = o->argv;
  c.envp = o->env != NULL ? o->env : (const char *const *)environ;
  c.cwd = o->cwd;
  c.fd_in = fds[0][0];
  c.fd_out = fds[1][1];
  c.fd_err = fds[2][1];
  c.report = report[1];
  c.sb = sb;
  c.status = status[1];

  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  if (sb != NULL && ice__sandbox_clone_flags(sb) != 0) {
    pid = ice__sandbox_fork(sb);
    if (pid == 0)
      child_main(&c); /* never returns */
  } else {
    pid = vfork_child(&c); /* no namespace to make: nothing to fork for */
    vforked = 1;
  }
  err = errno;
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  close(report[1]);
  if (status[1] >= 0)
    close(status[1]);
  ice__free(c.sh_argv);
  /* The kernel may have refused the pid namespace after all: no init. */
  if (status[0] >= 0 && (pid < 0 || !ice__sandbox_has_init(sb))) {
    close(status[0]);
    status[0] = -1;
  }
  if (pid < 0) {
    close(report[0]);
    if (sb != NULL && ice__sandbox_message(sb)[0] != '\0') {
      *step = ICE__PROC_STEP_SANDBOX;
      if (o->errbuf != NULL)
        snprintf(o->errbuf, o->errlen, "%s", ice__sandbox_message(sb));
    }
    return -err;
  }
  if (sb != NULL)
    *degraded = ice__sandbox_missing(sb);
  /* Read once the init is reaped, when it has written or is gone. */
  if (status[0] >= 0)
    fcntl(status[0], F_SETFL, O_NONBLOCK);
  if (report_fd != NULL) {
    fcntl(report[0], F_SETFL, O_NONBLOCK);
    *status_fd = status[0];
    /* A vfork child without an init has exec'd or exited when clone
     * returns: it wrote every record it will. Read them now, and the loop
     * watches one descriptor less (and wakes once less) per tool. */
    if (vforked && (sb == NULL || !ice__sandbox_has_init(sb))) {
      read_reports(report[0], degraded, failed, got);
      close(report[0]);
      *report_fd = -1;
    } else {
      *report_fd = report[0];
    }
    return pid;
  }
  /* Records until EOF (0 bytes): exec succeeded once every copy of the
   * report end is closed (on exec, and by a sandbox's init after it started
   * the tool). DEGRADED records only add to what is missing; the first
   * FAIL record is the error. */
  read_reports(report[0], degraded, failed, got);
  close(report[0]);
  if (!*got) {
    *status_fd = status[0];
    return pid;
  }
  if (status[0] >= 0)
    close(status[0]);
  while (waitpid(pid, NULL, __WALL) < 0 && errno == EINTR) {
  }
  *step = failed->step;
  if (failed->step == ICE__PROC_STEP_SANDBOX && o->errbuf != NULL)
    ice__sandbox_describe(sb, failed, o->errbuf, o->errlen);
  return failed->err > 0 ? -failed->err : -EIO;
}

static int pidfd_open_(int pid) {
#if defined(SYS_pidfd_open)
  if (ice__proc_no_pidfd)
    return -1;
  return (int)syscall(SYS_pidfd_open, pid, 0);
#else
  (void)pid;
  errno = ENOSYS;
  return -1;
#endif
}

/* ---- the handles -------------------------------------------------------- */

static void finish(ice__proc_t *p) {
  static char empty[1];

  if (p->spawned && p->on_exit != NULL) {
    if (p->out_buf != NULL)
      p->out_buf[p->out_len] = '\0'; /* allocated, maybe never filled */
    p->res.out = p->out_buf != NULL ? p->out_buf : empty;
    p->res.out_len = p->out_len;
    p->tail[p->tail_len] = '\0';
    p->res.stderr_tail = p->tail;
    p->res.stderr_tail_len = p->tail_len;
    p->on_exit(p->data, &p->res);
  }
  /* uv_poll never closes its fd; it is safe to close now it has. */
  close_fd(&p->pidfd);
  close_fd(&p->status_fd);
  close_fd(&p->report_fd); /* after its poll handle closed, as the pidfd */
  close_fd(&p->out_fd);    /* never given to libuv */
  close_fd(&p->err_fd);
  ice__sandbox_free(p->sb);
  ice__free(p->stdin_buf);
  ice__free(p->out_buf);
  ice__free(p->line);
  ice__free(p);
}

static void on_close(uv_handle_t *h) {
  ice__proc_t *p = h->data;

  if (--p->open_handles == 0)
    finish(p);
}

static void close_handle(uv_handle_t *h) {
  if (!uv_is_closing(h))
    uv_close(h, on_close);
}

static void close_in(ice__proc_t *p) {
  if (p->in_init)
    close_handle((uv_handle_t *)&p->in);
}

/* Once the child has exited and both output pipes are closed (or closing)
 * the drain timer has nothing left to guard. */
static void maybe_done(ice__proc_t *p) {
  if (p->exited && uv_is_closing((uv_handle_t *)&p->out) &&
      uv_is_closing((uv_handle_t *)&p->err))
    close_handle((uv_handle_t *)&p->drain);
}

/* SIGKILL to the group, not just the child: a grandchild still holding the
 * pipes would otherwise keep us waiting for EOF. ESRCH (group already
 * gone) is fine. Only called before the child is reaped: until then its
 * pid, and so the group id, cannot be reused. */
static void kill_group(ice__proc_t *p) {
  if (p->pid > 0)
    kill(-p->pid, SIGKILL);
}

/* Index of the first byte at or after `i` that does not continue a UTF-8
 * sequence (at most 3 skipped): a cut there never halves a character. */
static size_t skip_cont(const char *s, size_t n, size_t i) {
  for (int k = 0; k < 3 && i < n && ((unsigned char)s[i] & 0xC0) == 0x80; k++)
    i++;
  return i;
}

/* Length of s[0..n) without an incomplete UTF-8 sequence at its end, so a
 * chunk of a long line never ends in half a character. */
static size_t cut_incomplete(const char *s, size_t n) {
  size_t i = n;
  unsigned char lead;
  size_t need;

  for (int k = 0; k < 3 && i > 0 && ((unsigned char)s[i - 1] & 0xC0) == 0x80;
       k++)
    i--;
  if (i == 0)
    return n;
  lead = (unsigned char)s[i - 1];
  need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
  return need > 1 && n - (i - 1) < need ? i - 1 : n;
}

/* Keeps the last TAIL_CAP bytes of stderr, lines joined by '\n'. The cut
 * goes at a line start when that loses less than half the buffer, so the
 * tail is whole lines unless the lines are very long, and a cut inside a line
 * lands on a character boundary. */
static void append_tail(ice__proc_t *p, const char *s, size_t len) {
  size_t sep = p->tail_len > 0 ? 1 : 0;
  size_t total = p->tail_len + sep + len;

  if (len >= TAIL_CAP) {
    size_t from = skip_cont(s, len, len - TAIL_CAP);

    memcpy(p->tail, s + from, len - from);
    p->tail_len = len - from;
    return;
  }
  if (total > TAIL_CAP) {
    size_t excess = total - TAIL_CAP; /* <= tail_len, as len < TAIL_CAP */
    size_t from = excess > 0 ? excess - 1 : 0;
    char *nl = memchr(p->tail + from, '\n', p->tail_len - from);
    size_t drop = excess;

    if (nl != NULL && (size_t)(nl - p->tail) + 1 - excess < TAIL_CAP / 2) {
      drop = (size_t)(nl - p->tail) + 1;
    } else if (nl == NULL && p->tail_len + 1 - excess < TAIL_CAP / 2) {
      drop = p->tail_len; /* the new line starts the tail */
      sep = 0;
    } else {
      drop = skip_cont(p->tail, p->tail_len, drop); /* mid-line cut */
    }
    memmove(p->tail, p->tail + drop, p->tail_len - drop);
    p->tail_len -= drop;
  }
  if (sep)
    p->tail[p->tail_len++] = '\n';
  memcpy(p->tail + p->tail_len, s, len);
  p->tail_len += len;
}

/* Once every record is in: say what the sandbox runs without (once, and
 * only when the tool did start). */
static void tell_degraded(ice__proc_t *p) {
  if (!p->degraded_due)
    return;
  p->degraded_due = 0;
  if (p->degraded != 0 && !p->report_failed && p->on_degraded != NULL)
    p->on_degraded(p->data, p->degraded);
}

static void emit_line(ice__proc_t *p, const char *s, size_t len, int strip) {
  tell_degraded(p); /* before the tool's first line, as it was told */
  if (strip && len > 0 && s[len - 1] == '\r')
    len--;
  append_tail(p, s, len);
  if (p->on_stderr_line != NULL)
    p->on_stderr_line(p->data, s, len);
}

/* Delivers every complete line in p->line[0..line_len), keeping the
 * unterminated rest; a full buffer without a newline goes out as a chunk
 * (holding back a final '\r' so a CRLF split across reads still strips, and
 * an incomplete UTF-8 character so that it arrives whole in the next). */
static void split_lines(ice__proc_t *p, size_t scan_from) {
  size_t start = 0;
  size_t i;

  for (i = scan_from; i < p->line_len; i++) {
    if (p->line[i] == '\n') {
      emit_line(p, p->line + start, i - start, 1);
      start = i + 1;
    }
  }
  if (start == 0 && p->line_len == LINE_CAP) {
    size_t n = p->line[LINE_CAP - 1] == '\r'
                   ? LINE_CAP - 1
                   : cut_incomplete(p->line, LINE_CAP);

    emit_line(p, p->line, n, 0);
    start = n;
  }
  memmove(p->line, p->line + start, p->line_len - start);
  p->line_len -= start;
}

static void err_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  ice__proc_t *p = h->data;

  if (p->line == NULL) {
    *buf = uv_buf_init(p->err_first, sizeof(p->err_first));
    return;
  }
  *buf = uv_buf_init(p->line + p->line_len, LINE_CAP - p->line_len);
}

static void err_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  ice__proc_t *p = s->data;

  if (nread > 0 && buf->base == p->err_first) {
    /* The first bytes: now the line buffer (line_len is 0). */
    p->line = ice__malloc(LINE_CAP);
    if (p->line != NULL)
      memcpy(p->line, p->err_first, (size_t)nread);
    else
      nread = UV_ENOBUFS; /* stop reading, as libuv would have */
  }
  if (nread > 0) {
    size_t old = p->line_len;

    p->line_len += (size_t)nread;
    split_lines(p, old);
    return;
  }
  if (nread == 0)
    return; /* EAGAIN */
  /* EOF or an error: flush the unterminated last line. */
  if (p->line_len > 0) {
    emit_line(p, p->line, p->line_len, 1);
    p->line_len = 0;
  }
  close_handle((uv_handle_t *)s);
  maybe_done(p);
}

static void out_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  ice__proc_t *p = h->data;
  /* Reads of at least half a chunk, which grows with the buffer. */
  size_t chunk = p->out_cap < FIRST_READ   ? FIRST_READ
                 : p->out_cap > READ_CHUNK ? READ_CHUNK
                                           : p->out_cap;
  size_t avail;

  /* +1 keeps room for the NUL that on_exit promises. */
  if (p->out_cap - p->out_len < chunk / 2 + 1) {
    size_t cap = p->out_cap * 2;
    char *nb;

    if (cap < p->out_len + chunk + 1)
      cap = p->out_len + chunk + 1;
    /* Never grow much past the cap: the memory bound is the point. */
    if (p->max_output > 0 && cap > p->max_output + READ_CHUNK + 1)
      cap = p->max_output + READ_CHUNK + 1;
    nb = ice__realloc(p->out_buf, cap);
    if (nb == NULL) {
      *buf = uv_buf_init(NULL, 0);
      return;
    }
    p->out_buf = nb;
    p->out_cap = cap;
  }
  avail = p->out_cap - p->out_len - 1;
  if (avail > (1u << 30)) /* uv_buf_t lengths are unsigned int */
    avail = 1u << 30;
  *buf = uv_buf_init(p->out_buf + p->out_len, (unsigned int)avail);
}

static void out_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  ice__proc_t *p = s->data;

  if (nread > 0) {
    p->out_len += (size_t)nread;
    p->out_buf[p->out_len] = '\0';
    if (p->max_output == 0 || p->out_len <= p->max_output)
      return;
    /* Over the cap: keep exactly max_output bytes and stop the child. The
     * engine asked for that kill, so killed = 1 as well. */
    p->res.output_exceeded = 1;
    p->out_len = p->max_output;
    p->out_buf[p->out_len] = '\0';
    ice__proc_kill(p);
  } else if (nread == 0) {
    return;
  } else if (nread == UV_ENOBUFS) {
    /* No memory for the output: the result would be wrong, so the child
     * is killed (killed = 1) rather than left writing into nothing. */
    ice__proc_kill(p);
  }
  close_handle((uv_handle_t *)s);
  maybe_done(p);
}

/* Any error here (EPIPE, ECONNRESET, ECANCELED when the child exited
 * first) only means the child did not want all of its input. */
static void on_write(uv_write_t *req, int status) {
  ice__proc_t *p = req->data;

  close_in(p);
}

static void on_drain_timeout(uv_timer_t *t) {
  ice__proc_t *p = t->data;

  /* Timers run before I/O in a loop turn: if the loop was busy elsewhere
   * past the deadline, output that came in time may still wait to be
   * read. Give the I/O phase one more turn before giving up the pipes. */
  if (!p->drain_late) {
    p->drain_late = 1;
    uv_timer_start(t, on_drain_timeout, 1, 0);
    return;
  }
  if (!uv_is_closing((uv_handle_t *)&p->err) && p->line_len > 0) {
    emit_line(p, p->line, p->line_len, 1);
    p->line_len = 0;
  }
  close_handle((uv_handle_t *)&p->out);
  close_handle((uv_handle_t *)&p->err);
  close_handle((uv_handle_t *)&p->drain);
}

/* Reads what the report pipe holds (async start). At EOF: the exec
 * happened or the child is gone; stop watching, and tell. */
static void drain_report(ice__proc_t *p) {
  if (!p->report_eof && p->report_fd >= 0) {
    if (!read_reports(p->report_fd, &p->degraded, &p->failed,
                      &p->report_failed))
      return;
    p->report_eof = 1;
    p->degraded_due = 1;
    if (p->report_init)
      close_handle((uv_handle_t *)&p->report);
  }
  tell_degraded(p);
}

static void on_report(uv_poll_t *h, int status, int events) {
  (void)status;
  (void)events;
  drain_report(h->data);
}

/* Hands fd to the initialised pipe handle h (or closes it). A handle
 * without one closes without a system call. */
static void give_fd(uv_pipe_t *h, int *fd) {
  if (*fd >= 0 && uv_pipe_open(h, *fd) != 0)
    close(*fd);
  *fd = -1;
}

/* From now on libuv reads stdout and stderr as they come. */
static void start_reading(ice__proc_t *p) {
  if (p->reading)
    return;
  p->reading = 1;
  give_fd(&p->out, &p->out_fd);
  give_fd(&p->err, &p->err_fd);
  /* Reading cannot fail on freshly opened pipes; if it did, the pipe would
   * just never deliver and the drain timer would close it after exit. */
  uv_read_start((uv_stream_t *)&p->out, out_alloc, out_read);
  uv_read_start((uv_stream_t *)&p->err, err_alloc, err_read);
}

static void on_lazy(uv_timer_t *t) {
  start_reading(t->data);
}

/* At the exit, what a pipe holds, read from *fd (non-blocking) as libuv
 * would (the same callbacks, buffers and errors), until EOF. If it holds
 * nothing yet but is still open (a process the tool left holds it), or
 * keeps filling (as libuv, at most 32 reads at once), libuv goes on. The
 * fd is closed, or libuv's, when this returns. */
static void read_now(uv_pipe_t *h, int *fd, uv_alloc_cb alloc, uv_read_cb cb) {
  uv_buf_t b;
  ssize_t n;

  for (int k = 0; *fd >= 0 && !uv_is_closing((uv_handle_t *)h); k++) {
    if (k == 32)
      break;
    alloc((uv_handle_t *)h, READ_CHUNK, &b);
    if (b.base == NULL || b.len == 0) {
      cb((uv_stream_t *)h, UV_ENOBUFS, &b); /* closes h */
      break;
    }
    do
      n = read(*fd, b.base, b.len);
    while (n < 0 && errno == EINTR);
    if (n > 0) {
      cb((uv_stream_t *)h, n, &b);
    } else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
      int err = n == 0 ? UV_EOF : -errno;

      close_fd(fd);
      cb((uv_stream_t *)h, err, &b);
    } else {
      break;
    }
  }
  if (*fd >= 0 && uv_is_closing((uv_handle_t *)h)) {
    close_fd(fd); /* the callback gave up on it (output cap, no memory) */
  } else if (*fd >= 0) {
    give_fd(h, fd);
    uv_read_start((uv_stream_t *)h, alloc, cb);
  }
}

static void on_exited(ice__proc_t *p) {
  tell_degraded(p);
  p->exited = 1;
  uv_timer_stop(&p->drain); /* the reap poll, or the lazy start */
  if (!p->reading) {
    p->reading = 1;
    read_now(&p->out, &p->out_fd, out_alloc, out_read);
    read_now(&p->err, &p->err_fd, err_alloc, err_read);
  }
  /* Nobody is left to read stdin; this cancels a pending write. */
  close_in(p);
  close_handle((uv_handle_t *)&p->watch);
  if (p->tell_init)
    close_handle((uv_handle_t *)&p->tell);
  if (p->report_init) /* drained at the reap; a stray writer cannot hold us */
    close_handle((uv_handle_t *)&p->report);
  if (!uv_is_closing((uv_handle_t *)&p->out) ||
      !uv_is_closing((uv_handle_t *)&p->err)) {
    /* The loop's cached time is that of the turn's start, and callbacks
     * before us may have taken long: count the delay from now. */
    uv_update_time(p->drain.loop);
    uv_timer_start(&p->drain, on_drain_timeout, DRAIN_MS, 0);
  }
  maybe_done(p);
}

/* The child was a sandbox's init: the tool's own status comes through the
 * status pipe (the init exits 0 whatever the tool did; a killed init wrote
 * nothing). Then which limit, if any, the tool hit. The rusage is the
 * init's, which reaped the tool and everything it left: CPU time and peak
 * RSS of the whole tree. */
static void sandbox_exit(ice__proc_t *p) {
  ice__sandbox_status_t st;
  int nprocs = -1;
  ssize_t n;

  if (p->status_fd >= 0) {
    do
      n = read(p->status_fd, &st, sizeof(st));
    while (n < 0 && errno == EINTR);
    if (n == (ssize_t)sizeof(st)) {
      nprocs = st.nprocs;
      p->res.term_signal = WIFSIGNALED(st.status) ? WTERMSIG(st.status) : 0;
      p->res.exit_status = WIFEXITED(st.status) ? WEXITSTATUS(st.status) : 0;
    }
  }
  if (!p->res.killed &&
      ice__sandbox_verdict(p->sb, p->res.exit_status, p->res.term_signal,
                           p->res.cpu_seconds, p->res.max_rss_kb, nprocs,
                           p->limit, sizeof(p->limit)))
    p->res.limit = p->limit;
}

/* Reaps the child if it has exited. The group is killed first, while the
 * unreaped child still holds its pid (and so the group id): the kill can
 * only hit the grandchildren it left behind, never a recycled pid. */
static void try_reap(ice__proc_t *p) {
  siginfo_t info;
  struct rusage ru;
  int status;
  pid_t r;

  if (p->exited)
    return;
  memset(&info, 0, sizeof(info));
  if (waitid(P_PID, (id_t)p->pid, &info, WEXITED | WNOHANG | WNOWAIT) != 0) {
    if (errno == EINTR)
      return; /* the watcher fires again */
    /* ECHILD: someone else reaped it (the embedding program set SIGCHLD
     * to SIG_IGN, or waits for every child). Its status is lost. */
    p->res.exit_status = -1;
    kill_group(p);
    on_exited(p);
    return;
  }
  if (info.si_pid == 0)
    return; /* still running (a SIGCHLD for another child) */
  kill_group(p);
  memset(&ru, 0, sizeof(ru));
  do
    r = wait4(p->pid, &status, 0, &ru);
  while (r < 0 && errno == EINTR);
  if (r == p->pid && WIFSIGNALED(status)) {
    p->res.term_signal = WTERMSIG(status);
  } else if (r == p->pid) {
    p->res.exit_status = WEXITSTATUS(status);
  } else if (info.si_code == CLD_EXITED) {
    p->res.exit_status = info.si_status;
  } else {
    p->res.term_signal = info.si_status;
  }
  p->res.cpu_seconds =
      (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
      ((double)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  p->res.max_rss_kb = ru.ru_maxrss; /* KiB on Linux */
  /* Every writer of the report pipe is gone now: what it holds is all. */
  drain_report(p);
  if (p->report_failed) {
    /* It never ran (async start): say which step failed, as start would. */
    p->res.spawn_error = p->failed.err > 0 ? -p->failed.err : -EIO;
    p->res.failed_step = p->failed.step;
    if (p->failed.step == ICE__PROC_STEP_SANDBOX && p->sb != NULL)
      ice__sandbox_describe(p->sb, &p->failed, p->spawn_msg,
                            sizeof(p->spawn_msg));
    p->res.spawn_msg = p->spawn_msg;
  } else if (p->sb != NULL) {
    sandbox_exit(p);
  }
  /* An init is reaped: the kernel ended its namespace before. Without a
   * mount namespace the tool's view was the engine user's whole file
   * system (or nobody's, as root, which cannot enter the directory). */
  p->res.tmp_reusable = p->sb == NULL || ice__sandbox_has_init(p->sb) ||
                        !(ice__sandbox_clone_flags(p->sb) & CLONE_NEWNS);
  on_exited(p);
}

static void on_pidfd(uv_poll_t *h, int status, int events) {
  (void)status;
  (void)events;
  try_reap(h->data);
}

static void on_sigchld(uv_signal_t *h, int signum) {
  (void)signum;
  try_reap(h->data);
}

/* libuv drops a signal for a watcher when its signal pipe is full, and
 * every SIGCHLD wakes every watcher: with hundreds of children some exits
 * would go unseen. This check catches them; the drain timer is free until
 * the exit, when on_exited takes it over. */
static void on_reap_poll(uv_timer_t *t) {
  tell_degraded(t->data);
  try_reap(t->data);
}

/* Tells what the records read at the start said, never from inside
 * ice__proc_start (the caller does not hold the proc yet, and could not
 * stop it), but before the loop next waits: a prepare handle, where a
 * timer would cost a loop turn more. */
static void on_started(uv_prepare_t *h) {
  tell_degraded(h->data);
  uv_prepare_stop(h);
}

/* Opens the parent's ends as libuv streams. A failure leaves the handle
 * initialised but not reading; the fd is ours to close then. */
static void open_pipe(uv_loop_t *loop, uv_pipe_t *h, ice__proc_t *p, int *fd) {
  uv_pipe_init(loop, h, 0);
  h->data = p;
  give_fd(h, fd);
}

/* After a failure once handles exist, every one of them still has to go
 * through uv_close; the proc then frees itself from the last close
 * callback (on_exit is not called when spawned == 0). */
static void close_all(ice__proc_t *p) {
  if (p->report_init)
    close_handle((uv_handle_t *)&p->report);
  if (p->watch_init)
    close_handle((uv_handle_t *)&p->watch);
  else
    p->open_handles--; /* never initialised: nothing to close */
  close_in(p);
  close_handle((uv_handle_t *)&p->out);
  close_handle((uv_handle_t *)&p->err);
  close_handle((uv_handle_t *)&p->drain);
}

/* The exit watcher: the pidfd turns readable when the child exits. Without
 * pidfd_open (Linux < 5.3, or a seccomp filter), SIGCHLD and a WNOHANG
 * check instead; libuv waits only for its own children's pids, so the two
 * never reap each other's. */
static int start_watch(uv_loop_t *loop, ice__proc_t *p) {
  int r;

  p->pidfd = pidfd_open_(p->pid);
  if (p->pidfd >= 0)
    p->pidfd = above_stdio(p->pidfd);
  if (p->pidfd >= 0) {
    if (uv_poll_init(loop, &p->watch.poll, p->pidfd) == 0) {
      p->watch_init = 1;
      p->watch.poll.data = p;
      return uv_poll_start(&p->watch.poll, UV_READABLE, on_pidfd);
    }
    close_fd(&p->pidfd);
  }
  if ((r = uv_signal_init(loop, &p->watch.sig)) != 0)
    return r;
  p->watch_init = 1;
  p->watch.sig.data = p;
  if ((r = uv_signal_start(&p->watch.sig, on_sigchld, SIGCHLD)) != 0)
    return r;
  /* The first check, at the loop's next turn, catches an exit before the
   * watcher existed. Not now: on_exit must never be owed to a child seen
   * to exit inside ice__proc_start, before the loop has read its pipes. */
  uv_timer_start(&p->drain, on_reap_poll, 0, REAP_POLL_MS);
  return 0;
}

int ice__proc_start(uv_loop_t *loop, const ice__proc_opts_t *opts,
                    ice__proc_t **out) {
  const ice__sandbox_conf_t *sbc = opts->sandbox;
  int fds[3][2] = {{-1, -1}, {-1, -1}, {-1, -1}};
  int step = ICE__PROC_STEP_SETUP;
  ice__proc_t *p;
  int r = 0;

  *out = NULL;
  if (opts->failed_step != NULL)
    *opts->failed_step = ICE__PROC_STEP_NONE;
  /* uv_buf_t lengths are unsigned int. */
  if (opts->argv == NULL || opts->argv[0] == NULL || opts->stdin_len > UINT_MAX)
    return UV_EINVAL;
  ignore_sigpipe();
  p = ice__calloc(1, sizeof(*p));
  if (p == NULL)
    return UV_ENOMEM;
  p->pidfd = -1;
  p->status_fd = -1;
  p->report_fd = -1;
  p->out_fd = p->err_fd = -1;
  if (opts->degraded != NULL)
    *opts->degraded = 0;
  /* The benchmark hook: no sandbox at all, and every mechanism missing. */
  if (sbc != NULL && (p->degraded = ice__sandbox_off(sbc)) != 0)
    sbc = NULL;
  if (sbc != NULL) {
    char msg[512];

    r = ice__sandbox_prepare(sbc, opts->tmpdir, opts->cwd, &p->sb, msg,
                             sizeof(msg));
    if (r != 0) {
      if (opts->failed_step != NULL)
        *opts->failed_step = ICE__PROC_STEP_SANDBOX;
      if (opts->errbuf != NULL)
        snprintf(opts->errbuf, opts->errlen, "%s", msg);
      ice__free(p);
      return r;
    }
  }
  p->max_output = opts->max_output_bytes;
  p->on_stderr_line = opts->on_stderr_line;
  p->on_exit = opts->on_exit;
  p->data = opts->data;
  p->on_degraded = opts->on_degraded;

  for (int i = 0; i < 3 && r == 0; i++)
    r = make_pipe(fds[i]);
  /* An input that PIPE_BUF holds goes into the empty pipe now, whole (such
   * a write neither blocks nor splits), and our end closes: the child
   * reads the same bytes then EOF, and the loop has no stdin to watch. */
  if (r == 0 && opts->stdin_len <= PIPE_BUF &&
      (opts->stdin_len == 0 ||
       write(fds[0][1], opts->stdin_data, opts->stdin_len) ==
           (ssize_t)opts->stdin_len))
    close_fd(&fds[0][1]);
  else if (r == 0 && (p->stdin_buf = ice__malloc(opts->stdin_len)) == NULL) {
    r = UV_ENOMEM;
    step = ICE__PROC_STEP_NONE;
  } else if (r == 0)
    memcpy(p->stdin_buf, opts->stdin_data, opts->stdin_len);
  if (r == 0)
    r = spawn(opts, fds, p->sb, &p->status_fd,
              opts->async_start ? &p->report_fd : NULL, &p->degraded,
              &p->failed, &p->report_failed, &step);
  /* The child's ends are the child's now (or nobody's). */
  close_fd(&fds[0][0]);
  close_fd(&fds[1][1]);
  close_fd(&fds[2][1]);
  if (r < 0) {
    /* Nothing ran and no handle exists yet: undo synchronously. */
    for (int i = 0; i < 3; i++) {
      close_fd(&fds[i][0]);
      close_fd(&fds[i][1]);
    }
    if (opts->failed_step != NULL)
      *opts->failed_step = step;
    ice__sandbox_free(p->sb);
    ice__free(p->stdin_buf);
    ice__free(p);
    return r; /* libuv errors are negative errnos on Unix */
  }
  p->pid = r;
  p->spawned = 1;
  /* Every record was read at the start (a vfork child). */
  if (opts->async_start && p->report_fd < 0)
    p->report_eof = p->degraded_due = 1;
  if (opts->degraded != NULL)
    *opts->degraded = p->degraded;
  p->open_handles = 4;
  if (fds[0][1] >= 0) {
    open_pipe(loop, &p->in, p, &fds[0][1]);
    p->in_init = 1;
    p->open_handles++;
  }
  /* stdout and stderr go to libuv when it reads them (start_reading). */
  uv_pipe_init(loop, &p->out, 0);
  p->out.data = p;
  p->out_fd = fds[1][0];
  uv_pipe_init(loop, &p->err, 0);
  p->err.data = p;
  p->err_fd = fds[2][0];
  fds[1][0] = fds[2][0] = -1;
  uv_timer_init(loop, &p->drain);
  p->drain.data = p;
  p->write_req.data = p;
  /* Async start: the exec is confirmed on the loop (or the failure comes
   * with the exit); without a poll handle, everything is read at the
   * exit. */
  if (p->report_fd >= 0 && uv_poll_init(loop, &p->report, p->report_fd) == 0) {
    p->report_init = 1;
    p->report.data = p;
    p->open_handles++;
    uv_poll_start(&p->report, UV_READABLE, on_report);
  }

  if (p->in_init) {
    uv_buf_t b = uv_buf_init(p->stdin_buf, (unsigned int)opts->stdin_len);

    if (uv_write(&p->write_req, (uv_stream_t *)&p->in, &b, 1, on_write) != 0)
      close_in(p);
  }
  r = start_watch(loop, p);
  if (r != 0) {
    /* Without a watcher we would never learn of the exit: stop the child
     * now, reap it, and report the failure. */
    kill_group(p);
    while (waitpid(p->pid, NULL, 0) < 0 && errno == EINTR) {
    }
    p->spawned = 0;
    close_all(p);
    return r;
  }
  if (p->pidfd >= 0 && fcntl(p->out_fd, F_SETFL, O_NONBLOCK) == 0 &&
      fcntl(p->err_fd, F_SETFL, O_NONBLOCK) == 0)
    uv_timer_start(&p->drain, on_lazy, LAZY_MS, 0);
  else
    start_reading(p);
  if (p->degraded_due && uv_prepare_init(loop, &p->tell) == 0) {
    p->tell_init = 1;
    p->tell.data = p;
    p->open_handles++;
    uv_prepare_start(&p->tell, on_started);
  }
  *out = p;
  return 0;
}

void ice__proc_kill(ice__proc_t *p) {
  /* After the reap the group was already killed, and the pid may soon
   * belong to someone else: do nothing. */
  if (p == NULL || p->exited)
    return;
  p->res.killed = 1;
  kill_group(p);
}

int ice__proc_pid(const ice__proc_t *p) {
  return p->pid;
}
