/* The sandbox's side in the child (see sandbox.h): from clone to exec, in
 * a child of an engine that may have other threads, so system calls only:
 * nothing here allocates, takes a lock or touches stdio. It follows the
 * plan sandbox.c prepared: maps, cgroup, mounts; then, in the process that
 * execs the tool, its user, limits, capabilities and seccomp; and the
 * init's life after that. */
#include "sandbox_impl.h"

#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/close_range.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* The state of a child between its sandbox calls. Thread-local: a child
 * started with CLONE_VM (no namespaces: proc.c's vfork_child) writes it
 * in the memory of the engine's thread that spawned it, which waits until
 * the exec and never reads it; another thread spawning at the same time
 * has its own. */
static _Thread_local struct {
  int proc_ok;   /* /proc is the pid namespace's own */
  int cg_joined; /* in the cgroup: no RLIMIT_DATA needed */
  int ro_done;   /* OP_RO_ALL made the host read-only */
} child_state;

/* ---- the child's side: async-signal-safe from here ---------------------- */

static size_t str_len(const char *s) {
  size_t n = 0;

  while (s[n] != '\0')
    n++;
  return n;
}

static int put_file(const char *path, const char *s) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  ssize_t n;

  if (fd < 0)
    return -1;
  n = write(fd, s, str_len(s));
  close(fd);
  return n == (ssize_t)str_len(s) ? 0 : -1;
}

static void report(int fd, int kind, int what, int arg, int err,
                   unsigned mech) {
  ice__sandbox_report_t r;
  ssize_t n;

  memset(&r, 0, sizeof(r));
  r.kind = kind;
  r.step = ICE__PROC_STEP_SANDBOX;
  r.what = what;
  r.arg = arg;
  r.err = err;
  r.mech = mech;
  do
    n = write(fd, &r, sizeof(r));
  while (n < 0 && errno == EINTR);
}

/* A mechanism refused in the child: fail when strict, else say so and go
 * on. Returns -1 to fail. */
static int refused(const ice__sandbox_t *s, int fd, int what, int arg, int err,
                   unsigned mech) {
  report(fd, s->c->strict ? ICE__SBX_REPORT_FAIL : ICE__SBX_REPORT_DEGRADED,
         what, arg, err, mech);
  return s->c->strict ? -1 : 0;
}

static int fail(int fd, int what, int arg, int err) {
  report(fd, ICE__SBX_REPORT_FAIL, what, arg, err, 0);
  return -1;
}

static int setattr(int dfd, const char *path, unsigned flags,
                   struct mount_attr *a) {
  return (int)syscall(SYS_mount_setattr, dfd, path, flags, a, sizeof(*a));
}

static int run_op(const ice__sandbox_t *s, size_t i, int fd) {
  const op_t *o = &s->ops[i];
  struct mount_attr a;
  int t;

  memset(&a, 0, sizeof(a));
  switch (o->kind) {
  case OP_PRIVATE:
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
      return fail(fd, ICE__SBX_WHAT_MOUNT, (int)i, errno);
    return 0;
  case OP_RO_ALL:
    a.attr_set = MOUNT_ATTR_RDONLY;
    if (setattr(AT_FDCWD, "/", AT_RECURSIVE, &a) != 0)
      return refused(s, fd, ICE__SBX_WHAT_MOUNT, (int)i, errno,
                     ICE__SBX_READONLY);
    child_state.ro_done = 1;
    return 0;
  case OP_CLONE:
    t = (int)syscall(SYS_open_tree, AT_FDCWD, o->path,
                     OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
    if (t < 0)
      return fail(fd, ICE__SBX_WHAT_MOUNT, (int)i, errno);
    s->slot_fds[o->slot] = t;
    /* Writable again, unless nothing was made read-only (refused). */
    if (o->rw && child_state.ro_done)
      a.attr_clr = MOUNT_ATTR_RDONLY;
    if (o->idmap_fd >= 0) {
      a.attr_set = MOUNT_ATTR_IDMAP;
      a.userns_fd = (uint64_t)o->idmap_fd;
      if (setattr(t, "", AT_EMPTY_PATH, &a) == 0)
        return 0;
      if (refused(s, fd, ICE__SBX_WHAT_MOUNT, (int)i, errno, ICE__SBX_IDMAP))
        return -1;
      a.attr_set = 0;
      a.userns_fd = 0;
    }
    if (a.attr_clr != 0 && setattr(t, "", AT_EMPTY_PATH, &a) != 0)
      return fail(fd, ICE__SBX_WHAT_MOUNT, (int)i, errno);
    return 0;
  case OP_TMPFS:
    if (mount("tmpfs", o->path, "tmpfs", MS_NOSUID | MS_NODEV,
              "mode=0755,size=1m") != 0)
      return fail(fd, ICE__SBX_WHAT_MOUNT, (int)i, errno);
    return 0;
  case OP_MKDIR:
    if (mkdir(o->path, 0755) != 0 && errno != EEXIST)
      return fail(fd, ICE__SBX_WHAT_MOUNT, (int)i, errno);
    return 0;
  case OP_MKFILE:
    t = open(o->path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (t < 0)
      return fail(fd, ICE__SBX_WHAT_MOUNT, (int)i, errno);
    close(t);
    return 0;
  case OP_ATTACH:
    if (syscall(SYS_move_mount, s->slot_fds[o->slot], "", AT_FDCWD, o->path,
                MOVE_MOUNT_F_EMPTY_PATH) != 0)
      return fail(fd, ICE__SBX_WHAT_MOUNT, (int)i, errno);
    close(s->slot_fds[o->slot]);
    return 0;
  case OP_RO:
    a.attr_set = MOUNT_ATTR_RDONLY;
    if (setattr(AT_FDCWD, o->path, 0, &a) != 0 &&
        mount(NULL, o->path, NULL,
              MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV,
              NULL) != 0)
      return fail(fd, ICE__SBX_WHAT_MOUNT, (int)i, errno);
    return 0;
  case OP_SHM:
    /* POSIX shared memory and semaphores (Python's multiprocessing) need
     * a writable /dev/shm: a small one of the tool's own, not the host's.
     * Without it they fail, the rest works: not an error. */
    (void)mount("tmpfs", o->path, "tmpfs", MS_NOSUID | MS_NODEV, o->data);
    return 0;
  case OP_PROC:
    /* Refused where /proc is partly covered (containers mask parts of
     * it): the host's /proc then stays, which shows more processes but
     * gives no access to them (other user namespace, no capabilities). */
    child_state.proc_ok = (s->flags & CLONE_NEWPID) &&
                          mount("proc", "/proc", "proc",
                                MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) == 0;
    /* The host's /proc, read-only since OP_RO_ALL: the tool must write
     * its user namespace's maps into it. */
    if (!child_state.proc_ok && o->rw && child_state.ro_done) {
      a.attr_clr = MOUNT_ATTR_RDONLY;
      if (setattr(AT_FDCWD, "/proc", 0, &a) != 0)
        return fail(fd, ICE__SBX_WHAT_MOUNT, (int)i, errno);
    }
    return 0;
  }
  return 0;
}

static int write_maps(const char *uid_map, const char *gid_map) {
  if (put_file("/proc/self/uid_map", uid_map) != 0)
    return -1;
  /* setgroups must be denied before an unprivileged gid_map; a nested
   * namespace inherits "deny" and may refuse the write. */
  if (put_file("/proc/self/setgroups", "deny") != 0 && errno != EPERM)
    return -1;
  return put_file("/proc/self/gid_map", gid_map);
}

int ice__sandbox_child_setup(const ice__sandbox_t *s, int fd) {
  mode_t old;

  child_state.proc_ok = 0;
  child_state.cg_joined = 0;
  if (s->missing != 0)
    report(fd, ICE__SBX_REPORT_DEGRADED, 0, 0, 0, s->missing);
  /* An engine that changed its uid without exec (a daemon dropping root)
   * is not dumpable, and neither are we: /proc/self/uid_map would then be
   * root's. Being dumpable exposes nothing the engine does not. */
  if ((s->flags & CLONE_NEWUSER) &&
      (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) != 0 ||
       write_maps(s->c_uid_map, s->c_gid_map) != 0))
    return fail(fd, ICE__SBX_WHAT_MAPS, 0, errno);
  /* The network namespace, made here rather than by the engine's clone
   * (sandbox.c says why), or the engine's shared offline one joined; the
   * tool inherits it. */
  if (s->unshare_net &&
      (s->net_fd < 0 || setns(s->net_fd, CLONE_NEWNET) != 0) &&
      unshare(CLONE_NEWNET) != 0 &&
      refused(s, fd, ICE__SBX_WHAT_NONE, 0, errno, ICE__SBX_NET))
    return -1;
  /* The cgroup: memory and processes of everything below. Without it,
   * RLIMIT_DATA (in ice__sandbox_child_drop). */
  if (s->cg_procs_fd >= 0 && write(s->cg_procs_fd, "0", 1) == 1)
    child_state.cg_joined = 1;
  if (s->cg_pids_fd >= 0 && write(s->cg_pids_fd, "0", 1) != 1) {
    /* No pids cgroup: RLIMIT_NPROC in the tool's user namespace still. */
  }
  old = umask(022); /* mount points nobody can search through */
  for (size_t i = 0; i < s->nops; i++) {
    if (run_op(s, i, fd) != 0)
      return -1;
  }
  umask(old);
  /* Our working directory is still the engine's in the old mounts: take
   * it again through the new ones, so that a relative cwd resolves there
   * (the tool's user may only pass through an id-mapped copy). */
  if (s->nops > 0 && s->engine_cwd != NULL && chdir(s->engine_cwd) != 0) {
    /* Gone meanwhile: the tool's own chdir says so. */
  }
  return 0;
}

/* The bounding set limits what an exec could ever grant. Dropping it
 * needs CAP_SETPCAP: where we have none (unprivileged, no user namespace)
 * there is nothing to drop from, and no_new_privs stops setuid and file
 * capabilities anyway. */
static void drop_bounding_set(const ice__sandbox_t *s) {
  for (int cap = 0; cap <= s->last_cap; cap++) {
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0)
      break;
  }
}

int ice__sandbox_child_drop(const ice__sandbox_t *s, const char *cwd, int fd) {
  struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2];
  int userns =
      !(s->refuse & ICE__SBX_USER) && (s->root || (s->flags & CLONE_NEWUSER));

  if (s->root) {
    drop_bounding_set(s); /* while we have CAP_SETPCAP */
    /* Raw system calls: glibc's wrappers apply the change to every thread
     * of the process it knows of, and a child cloned from a threaded
     * engine inherits that list, so they can wait forever on a thread
     * that was starting or exiting at the clone (seen from Python threads);
     * a child sharing the engine's memory (CLONE_VM, no namespaces) would
     * even signal the engine's own threads. Credentials are per thread,
     * and this child has one. */
    if (syscall(SYS_setgroups, 0, NULL) != 0 ||
        syscall(SYS_setresgid, s->gid, s->gid, s->gid) != 0 ||
        syscall(SYS_setresuid, s->uid, s->uid, s->uid) != 0)
      return fail(fd, ICE__SBX_WHAT_USER, 0, errno);
    /* A changed uid makes us undumpable, which hides /proc/self/uid_map
     * from us; exec recomputes it anyway. */
    prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
  }
  /* A user namespace of the tool's own: RLIMIT_NPROC counts per user and
   * namespace, so there it counts the tool's processes only. */
  if (userns && unshare(CLONE_NEWUSER) != 0) {
    if (refused(s, fd, ICE__SBX_WHAT_USERNS, 0, errno, ICE__SBX_USER))
      return -1;
    userns = 0;
  } else if (userns && write_maps(s->t_uid_map, s->t_gid_map) != 0) {
    return fail(fd, ICE__SBX_WHAT_MAPS, 1, errno);
  }
  /* Descriptors the embedding program left inheritable must not reach
   * the tool (close_range, Linux 5.11; the report pipe works until exec). */
  syscall(SYS_close_range, 3, ~0u, CLOSE_RANGE_CLOEXEC);
  if (s->cwd != NULL)
    cwd = s->cwd; /* through the mounts made for the tool */
  if (cwd != NULL && chdir(cwd) != 0) {
    ice__sandbox_report_t r;

    memset(&r, 0, sizeof(r));
    r.kind = ICE__SBX_REPORT_FAIL;
    r.step = ICE__PROC_STEP_CWD;
    r.err = errno;
    while (write(fd, &r, sizeof(r)) < 0 && errno == EINTR) {
    }
    return -1;
  }
  for (int i = 0; i < s->nrl; i++) {
    if ((i == s->data_rl && child_state.cg_joined) ||
        (i == s->nproc_rl && !userns))
      continue;
    if (setrlimit(s->rl[i].res, &s->rl[i].lim) != 0)
      return fail(fd, ICE__SBX_WHAT_RLIMIT, s->rl[i].res, errno);
  }
  /* Every capability: the bounding set again (a new user namespace
   * starts with a full one), the ambient set, then permitted, effective
   * and inheritable. */
  drop_bounding_set(s);
  prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  memset(data, 0, sizeof(data));
  if (syscall(SYS_capset, &hdr, data) != 0)
    return fail(fd, ICE__SBX_WHAT_CAPS, -1, errno);
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
    return fail(fd, ICE__SBX_WHAT_NNP, 0, errno);
  if (s->prog != NULL &&
      prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, s->prog, 0, 0) != 0 &&
      refused(s, fd, ICE__SBX_WHAT_SECCOMP, 0, errno, ICE__SBX_SECCOMP))
    return -1;
  return 0;
}

/* Calls fn(name, data) for each entry of directory dfd whose name is a
 * number (a pid or tid in /proc); closes dfd. The count of such entries. */
static int each_number(int dfd, void (*fn)(const char *, void *), void *data) {
  char buf[4096];
  long got;
  int n = 0;

  while ((got = syscall(SYS_getdents64, dfd, buf, sizeof(buf))) > 0) {
    for (long off = 0; off < got;) {
      unsigned short reclen;
      const char *name = buf + off + 19; /* after ino, off, reclen, type */

      memcpy(&reclen, buf + off + 16, sizeof(reclen));
      off += reclen;
      if (name[0] >= '0' && name[0] <= '9') {
        n++;
        if (fn != NULL)
          fn(name, data);
      }
    }
  }
  close(dfd);
  return n;
}

/* Adds the tasks of /proc/<name> to *data (the init, pid 1, is not
 * counted). */
static void add_tasks(const char *name, void *data) {
  int *n = data;
  char path[64] = "/proc/";
  size_t j = 6;
  int tfd;

  if (name[0] == '1' && name[1] == '\0')
    return;
  for (size_t k = 0; name[k] != '\0' && j < sizeof(path) - 8; k++)
    path[j++] = name[k];
  memcpy(path + j, "/task", 6);
  tfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  /* Gone meanwhile, or a zombie without tasks: still one process. */
  *n += tfd < 0 ? 1 : each_number(tfd, NULL, NULL);
}

/* Tasks (threads included, as RLIMIT_NPROC and pids.max count them) in
 * the pid namespace, without the init itself; -1 unknown. */
static int count_tasks(void) {
  int dfd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  int n = 0;

  if (dfd < 0)
    return -1;
  each_number(dfd, add_tasks, &n);
  return n;
}

int ice__sandbox_spawn_tool(int (*fn)(void *), void *arg, char *stack) {
  /* glibc's clone() wrapper: not fork(), whose atfork handlers could wait
   * forever for a lock another thread of the engine held when we were
   * forked. CLONE_VFORK: we go on only once the tool has exec'd or died,
   * so the memory it borrows (this stack included) is never used by two
   * at once. The stack grows down from its end: one past the buffer is
   * where it starts, which cppcheck takes for an overflow. */
  // cppcheck-suppress ctuPointerArith
  return clone(fn, stack + ICE__SBX_TOOL_STACK,
               CLONE_VM | CLONE_VFORK | SIGCHLD, arg);
}

void ice__sandbox_init_reap(const ice__sandbox_t *s, int tool, int status_fd) {
  ice__sandbox_status_t st;
  int status = 0;
  ssize_t n;

  (void)s;
  /* Keep only the status pipe: not the pipes of the tool (the engine's
   * write end of its stdin included: the tool would never see EOF), not the
   * report pipe (its EOF says the tool exec'd), not the engine's 0-2. */
  if (status_fd > 0 &&
      syscall(SYS_close_range, 0u, (unsigned)status_fd - 1, 0u) != 0) {
    for (int fd = 0; fd < status_fd; fd++)
      close(fd);
  }
  if (syscall(SYS_close_range, (unsigned)status_fd + 1, ~0u, 0u) != 0) {
    for (int fd = status_fd + 1; fd < 65536; fd++)
      close(fd);
  }
  /* Reap everything (orphans come to us) until the tool itself ends. */
  for (;;) {
    int w;
    pid_t r = wait4(-1, &w, __WALL, NULL);

    if (r == tool) {
      status = w;
      break;
    }
    if (r < 0 && errno != EINTR) {
      status = 127 << 8; /* cannot happen: the tool is our child */
      break;
    }
  }
  st.status = status;
  st.nprocs = -1;
  /* How crowded the namespace was when the tool failed: the tool itself
   * plus what it left. Only asked for a failure (the processes rule). */
  if (child_state.proc_ok && status != 0) {
    int left = count_tasks();
    st.nprocs = left < 0 ? -1 : left + 1;
  }
  do
    n = write(status_fd, &st, sizeof(st));
  while (n < 0 && errno == EINTR);
}
