/* The process sandbox (SPEC §5.2; see sandbox.h and docs/security.md),
 * the parent's side: the configuration, then, per child, everything that
 * allocates or looks at the file system, prepared before fork: the clone
 * flags (namespaces), the uid maps, the cgroup where one can be made, a
 * mount plan (a list of system calls on fixed paths), the rlimits and a
 * seccomp program compiled by libseccomp into BPF once per process; and
 * after the child, the verdict. The child's side, which only acts on what
 * is prepared here, is sandbox_child.c.
 *
 * Who runs what: the engine clones the child C into new namespaces. With a
 * pid namespace, C is its init: it sets up the mounts, starts the tool T,
 * reaps every process of the namespace until T ends, tells the engine T's
 * status through a pipe, and exits, which kills whatever T left behind.
 * T drops to the tool's user (nobody when the engine is root) in a user
 * namespace of its own (so RLIMIT_NPROC counts its processes only), then
 * limits, capabilities, no_new_privs and seccomp, and execs. Without a pid
 * namespace C is T. proc.c owns fork, pipes and exec. */
#include "sandbox_impl.h"

#include "internal.h"
#include "proc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/capability.h> /* CAP_LAST_CAP */
#include <linux/filter.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h> /* ST_RDONLY */
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define MIB (INT64_C(1) << 20)

/* ---- configuration ------------------------------------------------------ */

const char *const ice__sandbox_fields[] = {"memory_mb",
                                           "cpu_seconds",
                                           "max_processes",
                                           "max_open_files",
                                           "max_output_bytes",
                                           "max_file_bytes",
                                           "network",
                                           "filesystem",
                                           "writable",
                                           "strict",
                                           NULL};

void ice__sandbox_conf_init(ice__sandbox_conf_t *c) {
  memset(c, 0, sizeof(*c));
  c->memory_mb = 512;
  c->cpu_seconds = 10;
  c->max_processes = 64;
  c->max_open_files = 256;
  c->max_file_bytes = 64 * MIB;
  c->max_output_bytes = 1024 * 1024;
  c->strict = 1;
}

void ice__sandbox_conf_free(ice__sandbox_conf_t *c) {
  for (char **w = c->writable; w != NULL && *w != NULL; w++)
    ice__free(*w);
  ice__free(c->writable);
  for (char **r = c->readable; r != NULL && *r != NULL; r++)
    ice__free(*r);
  ice__free(c->readable);
  c->readable = NULL;
  ice__free(c->dir);
  c->writable = NULL;
  c->dir = NULL;
}

/* An integer field's bounds; memory_mb stays below 2^42 so that its bytes
 * fit in 64 bits, the others below what their rlimit can hold. */
static int int_bounds(const char *key, int64_t *max) {
  static const struct {
    const char *key;
    int64_t max;
  } ints[] = {{"memory_mb", INT64_C(1) << 42},
              {"max_processes", INT32_MAX},
              {"max_open_files", INT32_MAX},
              {"max_output_bytes", INT64_MAX / 2},
              {"max_file_bytes", INT64_MAX / 2}};

  for (size_t i = 0; i < ICE__ARRAY_SIZE(ints); i++) {
    if (strcmp(ints[i].key, key) == 0) {
      *max = ints[i].max;
      return 1;
    }
  }
  return 0;
}

const char *ice__sandbox_check_field(const char *key, json_t *val, char *buf,
                                     size_t len) {
  int64_t max;
  size_t i;
  json_t *w;

  if (int_bounds(key, &max)) {
    if (!json_is_integer(val) || json_integer_value(val) < 1) {
      snprintf(buf, len, "must be an integer >= 1");
      return buf;
    }
    if (json_integer_value(val) > max) {
      snprintf(buf, len, "must be an integer <= %lld", (long long)max);
      return buf;
    }
  } else if (strcmp(key, "cpu_seconds") == 0) {
    if (!json_is_number(val) || !(json_number_value(val) > 0) ||
        json_number_value(val) > 1e9) {
      snprintf(buf, len, "must be a number of seconds > 0");
      return buf;
    }
  } else if (strcmp(key, "network") == 0 || strcmp(key, "strict") == 0) {
    if (!json_is_boolean(val)) {
      snprintf(buf, len, "must be true or false");
      return buf;
    }
  } else if (strcmp(key, "filesystem") == 0) {
    const char *s = json_string_value(val);
    if (s == NULL || (strcmp(s, "read-only") != 0 && strcmp(s, "full") != 0)) {
      snprintf(buf, len, "must be \"read-only\" or \"full\"");
      return buf;
    }
  } else if (strcmp(key, "writable") == 0) {
    if (!json_is_array(val)) {
      snprintf(buf, len, "must be a list of paths");
      return buf;
    }
    json_array_foreach(val, i, w) {
      if (!json_is_string(w) || json_string_length(w) == 0 ||
          strlen(json_string_value(w)) != json_string_length(w)) {
        snprintf(buf, len, "[%zu] must be a non-empty path", i);
        return buf;
      }
    }
  } else {
    snprintf(buf, len, "unknown field");
    return buf;
  }
  return NULL;
}

int ice__sandbox_conf_parse(ice__sandbox_conf_t *c, json_t *obj,
                            const char *dir, char *err, size_t errlen) {
  const char *key;
  json_t *val;
  char msg[128];

  if ((c->dir = ice__strdup(dir != NULL ? dir : ".")) == NULL)
    goto nomem;
  if (obj == NULL)
    return 0;
  if (!json_is_object(obj)) {
    snprintf(err, errlen, "sandbox must be an object");
    return -1;
  }
  json_object_foreach(obj, key, val) {
    const char *bad = ice__sandbox_check_field(key, val, msg, sizeof(msg));

    if (bad != NULL) {
      snprintf(err, errlen, "sandbox.%s: %s", key, bad);
      return -1;
    }
  }
#define GET_INT(f)                                                             \
  if ((val = json_object_get(obj, #f)) != NULL)                                \
    c->f = json_integer_value(val);
  GET_INT(memory_mb)
  GET_INT(max_processes)
  GET_INT(max_open_files)
  GET_INT(max_file_bytes)
#undef GET_INT
  if ((val = json_object_get(obj, "max_output_bytes")) != NULL)
    c->max_output_bytes = (size_t)json_integer_value(val);
  if ((val = json_object_get(obj, "cpu_seconds")) != NULL)
    c->cpu_seconds = (int64_t)ceil(json_number_value(val));
  if ((val = json_object_get(obj, "network")) != NULL)
    c->network = json_is_true(val);
  if ((val = json_object_get(obj, "strict")) != NULL)
    c->strict = json_is_true(val);
  if ((val = json_object_get(obj, "filesystem")) != NULL)
    c->fs_full = strcmp(json_string_value(val), "full") == 0;
  if ((val = json_object_get(obj, "writable")) != NULL) {
    size_t n = json_array_size(val), i;
    json_t *w;

    c->writable = ice__calloc(n + 1, sizeof(char *));
    if (c->writable == NULL)
      goto nomem;
    json_array_foreach(val, i, w) {
      const char *p = json_string_value(w);

      if (p[0] == '/')
        c->writable[i] = ice__strdup(p);
      else if (asprintf(&c->writable[i], "%s/%s", c->dir, p) < 0)
        c->writable[i] = NULL;
      if (c->writable[i] == NULL)
        goto nomem;
    }
  }
  return 0;
nomem:
  snprintf(err, errlen, "out of memory");
  return -1;
}

json_t *ice__sandbox_missing_json(unsigned mask) {
  static const char *const names[] = {
#define XX(name, key, text) text,
      ICE__SBX_MECH_MAP(XX)
#undef XX
  };
  json_t *a = json_array();

  for (int i = 0; a != NULL && i < ICE__SBX_NMECH; i++) {
    if ((mask & (1u << i)) && json_array_append_new(a, json_string(names[i])))
      return json_decref(a), NULL;
  }
  return a;
}

/* "network namespace, pid namespace" into buf. */
static void mech_list(unsigned mask, char *buf, size_t len) {
  static const char *const names[] = {
#define XX(name, key, text) text,
      ICE__SBX_MECH_MAP(XX)
#undef XX
  };
  size_t w = 0;

  buf[0] = '\0';
  for (int i = 0; i < ICE__SBX_NMECH && w < len; i++) {
    if (mask & (1u << i))
      w += (size_t)snprintf(buf + w, len - w, "%s%s", w > 0 ? ", " : "",
                            names[i]);
  }
}

/* The test hook: ICE_SANDBOX_REFUSE=net,pid (or all) makes the engine act
 * as if the kernel refused those mechanisms. It can only take protection
 * away where the workflow said strict: false; a strict node then fails. */
static unsigned refused_by_env(void) {
  static const char *const keys[] = {
#define XX(name, key, text) key,
      ICE__SBX_MECH_MAP(XX)
#undef XX
  };
  const char *e = getenv("ICE_SANDBOX_REFUSE");
  unsigned mask = 0;

  if (e == NULL)
    return 0;
  if (strcmp(e, "all") == 0 || strcmp(e, "sandbox") == 0)
    return (1u << ICE__SBX_NMECH) - 1;
  for (const char *p = e; *p != '\0';) {
    size_t n = strcspn(p, ", ");

    for (int i = 0; i < ICE__SBX_NMECH; i++) {
      if (strlen(keys[i]) == n && strncmp(p, keys[i], n) == 0)
        mask |= 1u << i;
    }
    p += n;
    p += strspn(p, ", ");
  }
  return mask;
}

/* The mechanisms a configuration asks for. */
static unsigned wanted_mechs(const ice__sandbox_conf_t *c, int root) {
  return ICE__SBX_PID | ICE__SBX_MOUNT | ICE__SBX_IPC | ICE__SBX_UTS |
         ICE__SBX_USER | ICE__SBX_SECCOMP | (c->network ? 0 : ICE__SBX_NET) |
         (c->fs_full ? 0 : ICE__SBX_READONLY) | (root ? ICE__SBX_IDMAP : 0);
}

unsigned ice__sandbox_off(const ice__sandbox_conf_t *c) {
  const char *e = getenv("ICE_SANDBOX_REFUSE");

  if (c->strict || e == NULL || strcmp(e, "sandbox") != 0)
    return 0;
  return wanted_mechs(c, geteuid() == 0);
}

/* ---- seccomp ------------------------------------------------------------ */

/* Denied with EPERM: debugging other processes, the kernel's own state
 * (modules, kexec, keys, BPF, perf, swap, clock, accounting), mounting and
 * namespaces (the child's file system view is final once it runs), and
 * calls that reach around other checks (open_by_handle_at, userfaultfd).
 * Names the running libseccomp does not know are skipped. */
static const char deny_eperm[] =
    "ptrace process_vm_readv process_vm_writev pidfd_getfd kcmp "
    "kexec_load kexec_file_load reboot init_module finit_module "
    "delete_module bpf perf_event_open keyctl add_key request_key "
    "mount umount2 pivot_root chroot move_mount open_tree fsopen fsconfig "
    "fsmount fspick mount_setattr unshare setns swapon swapoff acct "
    "quotactl quotactl_fd lookup_dcookie syslog open_by_handle_at "
    "userfaultfd iopl ioperm uselib vhangup settimeofday clock_settime "
    "clock_adjtime adjtimex fanotify_init nfsservctl _sysctl sysfs";

/* Denied with ENOSYS, so that a library falls back to the older call:
 * clone3's flags are behind a pointer the filter cannot read (glibc then
 * uses clone, whose flags it can), and io_uring runs operations (socket,
 * openat) that the filter never sees. */
static const char deny_enosys[] =
    "clone3 io_uring_setup io_uring_enter io_uring_register";

static const uint64_t ns_flags[] = {
    CLONE_NEWNS,  CLONE_NEWUSER, CLONE_NEWPID,    CLONE_NEWNET,
    CLONE_NEWIPC, CLONE_NEWUTS,  CLONE_NEWCGROUP, 0x00000080 /* TIME */};

/* A rule returning err for each system call named in the space-separated
 * list. 0 or a negative errno. */
static int deny_all(scmp_filter_ctx ctx, const char *names, int err) {
  for (const char *p = names; *p != '\0';) {
    size_t n = strcspn(p, " ");
    char name[32];
    int nr, r;

    snprintf(name, sizeof(name), "%.*s", (int)n, p);
    p += n + (p[n] == ' ');
    nr = seccomp_syscall_resolve_name(name);
    if (nr != __NR_SCMP_ERROR &&
        (r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(err), nr, 0)) != 0)
      return r;
  }
  return 0;
}

/* Compiles the filter and exports it as BPF (through a memfd: libseccomp
 * 2.5 writes only to a descriptor). 0 or a negative errno. */
static int build_filter(int network, int no_pidns, struct sock_fprog *out) {
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  struct stat st;
  int fd = -1, r = -ENOMEM;
  void *buf = NULL;

  if (ctx == NULL)
    return -ENOMEM;
  /* A binary tree of the system calls rather than a list: every tool
   * loads the program, and the kernel runs it once per system call to
   * cache the actions that do not depend on arguments. */
  (void)seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
  if ((r = deny_all(ctx, deny_eperm, EPERM)) != 0 ||
      (r = deny_all(ctx, deny_enosys, ENOSYS)) != 0)
    goto out;
  /* clone with any namespace flag: one rule per flag ("any bit set"). */
  for (size_t i = 0; i < ICE__ARRAY_SIZE(ns_flags); i++) {
    r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
                         SCMP_A0(SCMP_CMP_MASKED_EQ, ns_flags[i], ns_flags[i]));
    if (r != 0)
      goto out;
  }
  /* No network: no socket of any family (the network namespace is the
   * first layer; this one also covers Unix sockets on the host's file
   * system, such as a session bus that could start programs outside).
   * socketpair stays allowed. */
  if (!network && (r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES),
                                        SCMP_SYS(socket), 0)) != 0)
    goto out;
  /* Without a pid namespace, whose end would take them along, the tool's
   * process group is what the engine kills when the tool ends or times
   * out. A new session is how a process leaves for good (a daemon's
   * setsid): setsid then succeeds without doing it, so that a tool
   * starting a helper in a new session still works, and the helper ends
   * with the tool (docs/security.md). setpgid stays: coreutils' timeout
   * signals a group of its own. */
  if (no_pidns &&
      (r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(0), SCMP_SYS(setsid), 0)) != 0)
    goto out;
  fd = memfd_create("ice-seccomp", MFD_CLOEXEC);
  if (fd < 0) {
    r = -errno;
    goto out;
  }
  if ((r = seccomp_export_bpf(ctx, fd)) != 0)
    goto out;
  if (fstat(fd, &st) != 0 || st.st_size <= 0 ||
      st.st_size % sizeof(struct sock_filter) != 0 ||
      st.st_size / sizeof(struct sock_filter) > USHRT_MAX) {
    r = -EINVAL;
    goto out;
  }
  buf = ice__malloc((size_t)st.st_size);
  if (buf == NULL) {
    r = -ENOMEM;
    goto out;
  }
  if (pread(fd, buf, (size_t)st.st_size, 0) != st.st_size) {
    r = -EIO;
    ice__free(buf);
    goto out;
  }
  out->len = (unsigned short)(st.st_size / sizeof(struct sock_filter));
  out->filter = buf;
  r = 0;
out:
  if (fd >= 0)
    close(fd);
  seccomp_release(ctx);
  return r;
}

/* One program per value of `network` and of "no pid namespace", built
 * once per process and kept (never freed: it is the same for every
 * child). */
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sock_fprog filters[4];
static int filter_err[4];

static const struct sock_fprog *get_filter(int network, int no_pidns,
                                           int *err) {
  const struct sock_fprog *f = NULL;
  int i = network + 2 * no_pidns;

  pthread_mutex_lock(&cache_lock);
  if (filters[i].filter == NULL && filter_err[i] == 0)
    filter_err[i] = build_filter(network, no_pidns, &filters[i]);
  *err = filter_err[i];
  if (filters[i].filter != NULL)
    f = &filters[i];
  pthread_mutex_unlock(&cache_lock);
  return f;
}

/* ---- id-mapped mounts (the engine is root) ------------------------------ */

/* A user namespace whose maps send uid/gid `owner` to nobody: mounting a
 * path through it makes its owner's files the tool's. One per owner, made
 * once per process by a helper child and kept open. */
typedef struct {
  uid_t uid;
  gid_t gid;
  int fd;
} idmap_t;

static idmap_t idmaps[8];
static size_t nidmaps;

/* Writes s to an existing kernel file (/proc, cgroupfs). O_CREAT changes
 * nothing there, and lets the tests point ICE_CGROUP at a plain
 * directory. */
static int write_file(const char *path, const char *s) {
  int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  ssize_t n;
  int e;

  if (fd < 0)
    return -errno;
  n = write(fd, s, strlen(s));
  e = errno;
  close(fd);
  return n == (ssize_t)strlen(s) ? 0 : -(n < 0 ? e : EIO);
}

static int make_idmap(uid_t uid, gid_t gid) {
  int go[2], done[2];
  char path[64], map[64];
  pid_t pid;
  char c = 0;
  int fd = -1, r;

  if (pipe2(go, O_CLOEXEC) != 0)
    return -errno;
  if (pipe2(done, O_CLOEXEC) != 0) {
    r = -errno;
    close(go[0]);
    close(go[1]);
    return r;
  }
  pid = (pid_t)syscall(SYS_clone, (long)SIGCHLD, NULL, NULL, NULL, 0L);
  if (pid == 0) {
    /* Only system calls: the engine may have other threads. Our copies
     * of the other ends go first, or the read below never sees EOF. */
    close(go[0]);
    close(done[1]);
    if (unshare(CLONE_NEWUSER) != 0)
      _exit(1);
    if (write(go[1], &c, 1) != 1 || read(done[0], &c, 1) < 0)
      _exit(1);
    _exit(0);
  }
  close(go[1]);
  close(done[0]);
  r = pid < 0 ? -errno : 0;
  if (r == 0 && read(go[0], &c, 1) != 1)
    r = -EPERM; /* the helper could not unshare */
  if (r == 0) {
    snprintf(map, sizeof(map), "%u %d 1", (unsigned)uid, ICE__SBX_NOBODY);
    snprintf(path, sizeof(path), "/proc/%d/uid_map", (int)pid);
    r = write_file(path, map);
  }
  if (r == 0) {
    snprintf(path, sizeof(path), "/proc/%d/setgroups", (int)pid);
    r = write_file(path, "deny");
  }
  if (r == 0) {
    snprintf(map, sizeof(map), "%u %d 1", (unsigned)gid, ICE__SBX_NOBODY);
    snprintf(path, sizeof(path), "/proc/%d/gid_map", (int)pid);
    r = write_file(path, map);
  }
  if (r == 0) {
    snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
      r = -errno;
  }
  close(done[1]); /* the helper exits */
  close(go[0]);
  if (pid > 0) {
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
    }
  }
  return r == 0 ? fd : r;
}

/* The cached namespace for (uid, gid), or a negative errno. */
static int get_idmap(uid_t uid, gid_t gid) {
  int fd;

  pthread_mutex_lock(&cache_lock);
  for (size_t i = 0; i < nidmaps; i++) {
    if (idmaps[i].uid == uid && idmaps[i].gid == gid) {
      fd = idmaps[i].fd;
      pthread_mutex_unlock(&cache_lock);
      return fd;
    }
  }
  fd = make_idmap(uid, gid);
  if (fd >= 0 && nidmaps < ICE__ARRAY_SIZE(idmaps))
    idmaps[nidmaps++] = (idmap_t){uid, gid, fd};
  else if (fd >= 0) {
    close(fd); /* more owners than slots: rare; the path goes unmapped */
    fd = -ENOSPC;
  }
  pthread_mutex_unlock(&cache_lock);
  return fd;
}

/* ---- cgroups ------------------------------------------------------------ */

/* Where tool cgroups go: $ICE_CGROUP (a directory an operator delegated:
 * cgroup v2, or a v1 memory cgroup), else the engine's own cgroup when its
 * cgroup.subtree_control already enables memory (as it can only for the
 * root cgroup, since a cgroup with processes cannot give controllers to
 * children). "" when neither, or when $ICE_CGROUP is not a path ("off"). */
static char cg_base[PATH_MAX];
static char cg_pids_base[PATH_MAX]; /* v1: the pids hierarchy's, or "" */
static int cg_pids; /* v2: the pids controller is enabled there too */
static int cg_v1;
static int cg_probed;
static unsigned long cg_seq;

static int read_small(const char *path, char *buf, size_t len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  ssize_t n;

  if (fd < 0)
    return -1;
  n = read(fd, buf, len - 1);
  close(fd);
  if (n < 0)
    return -1;
  buf[n] = '\0';
  return (int)n;
}

static int has_word(const char *list, const char *w) {
  size_t n = strlen(w);

  for (const char *p = list; (p = strstr(p, w)) != NULL; p += n) {
    if ((p == list || p[-1] == ' ' || p[-1] == '\n') &&
        (p[n] == '\0' || p[n] == ' ' || p[n] == '\n'))
      return 1;
  }
  return 0;
}

void ice__sandbox_cgroup_reprobe(void) {
  pthread_mutex_lock(&cache_lock);
  cg_probed = 0;
  pthread_mutex_unlock(&cache_lock);
}

/* The engine's own cgroup in the v1 hierarchy of `controller` (mounted
 * at /sys/fs/cgroup/<controller>; `cgroups` is /proc/self/cgroup), into
 * out when it has `file` and we may make cgroups there; else "". */
static void v1_dir(const char *cgroups, const char *controller,
                   const char *file, char *out, size_t len) {
  size_t n = strlen(controller);
  char path[PATH_MAX + 64];

  out[0] = '\0';
  /* Lines "ID:CONTROLLER[,CONTROLLER...]:PATH". */
  for (const char *l = cgroups; *l != '\0';) {
    const char *c = strchr(l, ':'), *end = strchr(l, '\n'), *p;

    if (end == NULL)
      end = l + strlen(l);
    if (c != NULL && c < end &&
        (p = memchr(c + 1, ':', (size_t)(end - c - 1))) != NULL) {
      for (const char *w = c + 1; w < p;) {
        const char *e = memchr(w, ',', (size_t)(p - w));

        if (e == NULL)
          e = p;
        if ((size_t)(e - w) == n && memcmp(w, controller, n) == 0) {
          int plen = (int)(end - p - 1);

          if (plen == 1 && p[1] == '/')
            plen = 0;
          snprintf(out, len, "/sys/fs/cgroup/%s%.*s", controller, plen, p + 1);
          snprintf(path, sizeof(path), "%s/%s", out, file);
          if (access(path, W_OK) != 0 || access(out, W_OK) != 0)
            out[0] = '\0';
          return;
        }
        w = e + 1;
      }
    }
    l = *end != '\0' ? end + 1 : end;
  }
}

/* Removes the empty cgroups "ice-PID-N" under dir whose engine PID is
 * gone: an engine killed while a tool ran could not remove its own. */
static void remove_stale(const char *dir) {
  DIR *d = dir[0] != '\0' ? opendir(dir) : NULL;
  struct dirent *e;
  char path[PATH_MAX + 300];

  if (d == NULL)
    return;
  while ((e = readdir(d)) != NULL) {
    char *end;
    long pid;

    if (strncmp(e->d_name, "ice-", 4) != 0)
      continue;
    pid = strtol(e->d_name + 4, &end, 10);
    /* Alive, or someone else's (EPERM): not ours to remove. */
    if (pid <= 0 || *end != '-' || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
      continue;
    snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
    (void)rmdir(path);
  }
  closedir(d);
}

static void probe_cgroup(void) {
  const char *env = getenv("ICE_CGROUP");
  char buf[PATH_MAX + 64], path[PATH_MAX + 64];

  cg_probed = 1;
  cg_base[0] = '\0';
  cg_pids_base[0] = '\0';
  cg_v1 = 0;
  if (env != NULL && env[0] != '/')
    return; /* ICE_CGROUP=off: rlimits only */
  /* A cgroup v1 memory cgroup (an operator's choice only: moving each
   * tool into a v1 cgroup can wait for an RCU grace period, milliseconds,
   * with the engine's loop waiting when the tool has no namespaces). The
   * pids limit then goes to the engine's own cgroup of the pids
   * hierarchy, when we may make cgroups there. */
  snprintf(path, sizeof(path), "%s/memory.limit_in_bytes",
           env != NULL ? env : "");
  if (env != NULL && access(path, W_OK) == 0) {
    snprintf(cg_base, sizeof(cg_base), "%s", env);
    cg_v1 = 1;
    if (read_small("/proc/self/cgroup", buf, sizeof(buf)) > 0)
      v1_dir(buf, "pids", "cgroup.procs", cg_pids_base, sizeof(cg_pids_base));
    remove_stale(cg_base);
    remove_stale(cg_pids_base);
    return;
  }
  if (env != NULL) {
    snprintf(cg_base, sizeof(cg_base), "%s", env);
  } else if (read_small("/sys/fs/cgroup/cgroup.controllers", buf,
                        sizeof(buf)) >= 0 &&
             read_small("/proc/self/cgroup", buf, sizeof(buf)) > 0 &&
             strncmp(buf, "0::", 3) == 0) {
    buf[strcspn(buf, "\n")] = '\0';
    snprintf(cg_base, sizeof(cg_base), "/sys/fs/cgroup%s",
             strcmp(buf + 3, "/") == 0 ? "" : buf + 3);
  }
  if (cg_base[0] == '\0')
    return;
  snprintf(path, sizeof(path), "%s/cgroup.subtree_control", cg_base);
  if (read_small(path, buf, sizeof(buf)) < 0 || !has_word(buf, "memory")) {
    cg_base[0] = '\0';
    return;
  }
  cg_pids = has_word(buf, "pids");
  remove_stale(cg_base);
}

/* ---- the shared offline network namespace ------------------------------ */

/* Kept open for the process, made on first use; its inode, to notice a
 * program that closed our descriptor (and maybe reused its number). */
static int net_fd = -1;
static struct stat net_st;
static int net_refused; /* the kernel said no: each tool makes its own */

static int open_own_net(void *arg) {
  int *fd = arg;

  /* The parent waits (CLONE_VFORK) and shares our descriptors
   * (CLONE_FILES): the one opened here stays in its table. */
  *fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  return 0;
}

/* A descriptor of an empty network namespace, or -1 (then each tool makes
 * its own). Called with cache_lock held. */
static int shared_net(void) {
  char stack[16384] __attribute__((aligned(16)));
  struct stat st;
  sigset_t all, old;
  int fd = -1, err;
  pid_t pid;

  if (net_fd >= 0 && fstat(net_fd, &st) == 0 && st.st_dev == net_st.st_dev &&
      st.st_ino == net_st.st_ino)
    return net_fd;
  net_fd = -1; /* never made, or no longer ours: not closed, then */
  if (net_refused)
    return -1;
  /* No handler of the engine may run in the child, which has its memory. */
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  // cppcheck-suppress ctuPointerArith
  pid =
      clone(open_own_net, stack + sizeof(stack),
            CLONE_VM | CLONE_VFORK | CLONE_FILES | CLONE_NEWNET | SIGCHLD, &fd);
  err = errno;
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (pid < 0) {
    net_refused =
        err == EPERM || err == EINVAL || err == ENOSPC || err == EUSERS;
    return -1;
  }
  /* ECHILD: a program that reaps every child got it first. */
  while (waitpid(pid, NULL, __WALL) < 0 && errno == EINTR) {
  }
  if (fd >= 0 && fstat(fd, &net_st) == 0) {
    net_fd = fd;
  } else if (fd >= 0) {
    close(fd);
  }
  return net_fd;
}

/* ---- the prepared sandbox ----------------------------------------------- */

/* A path the tool is given: cwd, the workflow's directory, TMPDIR and the
 * writable paths, which it gets with their owner's rights (id-mapped, as
 * root); and the directories of files its command names (`readable`),
 * which are only kept visible, with their own owners and modes. */
typedef struct {
  char *path; /* absolute, real */
  int rw;
  int map; /* as root: id-mapped, so that the tool has its owner's rights */
  int is_dir;
  int clone; /* it gets an OP_CLONE/OP_ATTACH pair */
  struct stat st;
} decl_t;

static char *keep_str(ice__sandbox_t *s, char *p) {
  char **n;

  if (p == NULL)
    return NULL;
  n = ice__realloc(s->strs, (s->nstrs + 1) * sizeof(char *));
  if (n == NULL) {
    ice__free(p);
    return NULL;
  }
  s->strs = n;
  s->strs[s->nstrs++] = p;
  return p;
}

static int add_op(ice__sandbox_t *s, int kind, const char *path, int slot,
                  int rw, int idmap_fd) {
  op_t *n = ice__realloc(s->ops, (s->nops + 1) * sizeof(op_t));

  if (n == NULL)
    return -ENOMEM;
  s->ops = n;
  s->ops[s->nops++] = (op_t){kind, path, slot, rw, idmap_fd, NULL};
  return 0;
}

/* Can nobody search directory st? ACLs are not considered. */
static int searchable(const struct stat *st) {
  if (st->st_uid == ICE__SBX_NOBODY)
    return (st->st_mode & S_IXUSR) != 0;
  if (st->st_gid == ICE__SBX_NOBODY)
    return (st->st_mode & S_IXGRP) != 0;
  return (st->st_mode & S_IXOTH) != 0;
}

/* a == b, or a is a directory above b. */
static int is_under(const char *b, const char *a) {
  size_t n = strlen(a);

  if (strcmp(a, "/") == 0)
    return 1;
  return strncmp(a, b, n) == 0 && (b[n] == '\0' || b[n] == '/');
}

static int by_len(const void *x, const void *y) {
  const decl_t *a = x, *b = y;
  size_t la = strlen(a->path), lb = strlen(b->path);

  return la < lb ? -1 : la > lb ? 1 : strcmp(a->path, b->path);
}

static int str_by_len(const void *x, const void *y) {
  const char *a = *(const char *const *)x, *b = *(const char *const *)y;
  size_t la = strlen(a), lb = strlen(b);

  return la < lb ? -1 : la > lb ? 1 : strcmp(a, b);
}

/* Adds path (made absolute and real) to the declared paths; the real path
 * goes to s. A path that does not exist is skipped unless it is writable,
 * which is an error (the child's chdir reports a missing cwd in its own
 * words). */
static int declare(ice__sandbox_t *s, decl_t *d, size_t *n, const char *path,
                   int rw, int map, char *err, size_t errlen) {
  char *real = realpath(path, NULL);
  int e;

  if (real == NULL) {
    e = errno;
    if (!rw && e != ENOMEM)
      return 0;
    snprintf(err, errlen, "sandbox: writable path '%s': %s", path, strerror(e));
    return -e;
  }
  /* The host's root is the view's root already. Mapped (a cwd of "/"), it
   * would hand the tool the rights of root's files, and the kernel refuses
   * to id-map it anyway: the tool would not start. */
  if (!rw && strcmp(real, "/") == 0) {
    free(real);
    return 0;
  }
  for (size_t i = 0; i < *n; i++) {
    if (strcmp(d[i].path, real) == 0) {
      d[i].rw |= rw;
      d[i].map |= map;
      free(real);
      return 0;
    }
  }
  if (stat(real, &d[*n].st) != 0) {
    e = errno;
    snprintf(err, errlen, "sandbox: '%s': %s", path, strerror(e));
    free(real);
    return -e;
  }
  if ((d[*n].path = keep_str(s, real)) == NULL)
    return -ENOMEM;
  d[*n].rw = rw;
  d[*n].map = map;
  d[*n].is_dir = S_ISDIR(d[*n].st.st_mode);
  (*n)++;
  return 0;
}

/* Mount points to make inside an empty tmpfs (see plan_mounts). */
typedef struct {
  const char *path;
  int is_file;
} mkpt_t;

static int mk_by_len(const void *x, const void *y) {
  const mkpt_t *a = x, *b = y;

  return str_by_len(&a->path, &b->path);
}

/* The directories above declared path i that the tool (nobody) cannot
 * search, and the mount points below them. Appends to skel and mk. */
static int plan_skeleton(ice__sandbox_t *s, decl_t *d, size_t nd, size_t i,
                         const char **skel, size_t *nskel, mkpt_t *mk,
                         size_t *nmk) {
  char *p = ice__strdup(d[i].path);
  const char *root_at = NULL;
  size_t rlen;

  if (p == NULL)
    return -ENOMEM;
  for (char *sl = strchr(p + 1, '/'); sl != NULL; sl = strchr(sl + 1, '/')) {
    struct stat st;
    int covered = 0;

    *sl = '\0';
    /* Inside another declared (id-mapped) path: the tool owns it there. */
    for (size_t j = 0; j < nd && !covered; j++)
      covered = j != i && d[j].clone && d[j].map && is_under(p, d[j].path);
    for (size_t k = 0; !covered && k < *nskel && root_at == NULL; k++) {
      if (strcmp(skel[k], p) == 0)
        root_at = skel[k];
    }
    if (!covered && root_at == NULL && stat(p, &st) == 0 && !searchable(&st)) {
      if ((root_at = keep_str(s, ice__strdup(p))) == NULL) {
        ice__free(p);
        return -ENOMEM;
      }
      skel[(*nskel)++] = root_at;
    }
    *sl = '/';
    if (covered || root_at != NULL)
      break;
  }
  ice__free(p);
  if (root_at == NULL)
    return 0;
  /* Every directory from below root_at down to the path, then the path
   * (a file when a writable file is mounted there). */
  rlen = strlen(root_at);
  for (const char *sl = d[i].path + rlen + 1;; sl++) {
    const char *q;

    sl = strchr(sl, '/');
    q = keep_str(s,
                 ice__strndup(d[i].path, sl != NULL ? (size_t)(sl - d[i].path)
                                                    : strlen(d[i].path)));
    if (q == NULL)
      return -ENOMEM;
    mk[(*nmk)++] = (mkpt_t){q, sl == NULL && !d[i].is_dir};
    if (sl == NULL)
      break;
  }
  return 0;
}

/* The mount plan. Unprivileged, the tool is the engine's own user: only
 * the writable paths need a copy of their own (writable over a read-only
 * view). As root it is nobody: every declared path is copied through an
 * id-mapped mount that makes its owner's files the tool's, and a directory
 * on the way to one that nobody cannot search (e.g. a 0700 home or test
 * directory) is covered, for the tool only, by an empty read-only tmpfs
 * holding just the mount points: the rest of it stays out of sight. */
static int plan_mounts(ice__sandbox_t *s, const char *tmpdir, const char *cwd,
                       char *err, size_t errlen) {
  const ice__sandbox_conf_t *c = s->c;
  size_t nw = 0, nr = 0, nd = 0, nskel = 0, nmk = 0, depth = 0;
  decl_t *d;
  const char **skel = NULL;
  mkpt_t *mk = NULL;
  int r = 0, ro = !c->fs_full, slot = 0;

  while (c->writable != NULL && c->writable[nw] != NULL)
    nw++;
  while (c->readable != NULL && c->readable[nr] != NULL)
    nr++;
  d = ice__calloc(nw + nr + 3, sizeof(decl_t));
  if (d == NULL)
    return -ENOMEM;
  if ((r = declare(s, d, &nd, tmpdir, 1, 1, err, errlen)) != 0)
    goto out;
  for (size_t i = 0; i < nw; i++) {
    if ((r = declare(s, d, &nd, c->writable[i], 1, 1, err, errlen)) != 0)
      goto out;
  }
  if (cwd != NULL && (r = declare(s, d, &nd, cwd, 0, 1, err, errlen)) != 0)
    goto out;
  if (c->dir != NULL &&
      (r = declare(s, d, &nd, c->dir, 0, 1, err, errlen)) != 0)
    goto out;
  for (size_t i = 0; i < nr; i++) {
    /* Never id-mapped: a command may name any file (`cat /etc/shadow`),
     * and mapping its directory would make root's files the tool's. */
    if ((r = declare(s, d, &nd, c->readable[i], 0, 0, err, errlen)) != 0)
      goto out;
  }
  if (cwd != NULL)
    s->cwd = realpath(cwd, NULL); /* chdir through the new mounts */
  s->engine_cwd = getcwd(NULL, 0);
  qsort(d, nd, sizeof(decl_t), by_len);

  if ((r = add_op(s, OP_PRIVATE, "/", 0, 0, -1)) != 0)
    goto out;
  if (ro && (s->refuse & ICE__SBX_READONLY)) {
    s->missing |= ICE__SBX_READONLY;
    ro = 0;
  }
  if (ro && (r = add_op(s, OP_RO_ALL, "/", 0, 0, -1)) != 0)
    goto out;
  for (size_t i = 0; i < nd; i++) {
    int idmap = -1;
    struct statfs sf;

    /* A path on a read-only file system stays read-only. */
    if (d[i].rw && statfs(d[i].path, &sf) == 0 && (sf.f_flags & ST_RDONLY))
      d[i].rw = 0;
    if (s->root && d[i].map && !(s->refuse & ICE__SBX_IDMAP)) {
      idmap = get_idmap(d[i].st.st_uid, d[i].st.st_gid);
      if (idmap < 0)
        s->missing |= ICE__SBX_IDMAP;
    } else if (s->root && d[i].map) {
      s->missing |= ICE__SBX_IDMAP;
    }
    d[i].clone = idmap >= 0 || (d[i].rw && ro);
    /* As root, a path kept only visible gets a plain copy of its own, to
     * be attached inside a tmpfs that hides its parent (plan_skeleton);
     * not when it lies in an id-mapped path, which shows it already. */
    if (s->root && !d[i].map && !d[i].clone) {
      int inside = 0;

      for (size_t j = 0; j < i && !inside; j++)
        inside = d[j].map && d[j].clone && is_under(d[i].path, d[j].path);
      d[i].clone = !inside;
    }
    if (d[i].clone &&
        (r = add_op(s, OP_CLONE, d[i].path, slot++, d[i].rw && ro, idmap)) != 0)
      goto out;
    for (const char *q = d[i].path; *q != '\0'; q++)
      depth += *q == '/';
  }
  s->nslots = slot;
  if (s->root) {
    skel = ice__calloc(nd + 1, sizeof(char *));
    mk = ice__calloc(depth + nd + 1, sizeof(mkpt_t));
    if (skel == NULL || mk == NULL) {
      r = -ENOMEM;
      goto out;
    }
    for (size_t i = 0; i < nd; i++) {
      if (d[i].clone &&
          (r = plan_skeleton(s, d, nd, i, skel, &nskel, mk, &nmk)) != 0)
        goto out;
    }
    qsort(skel, nskel, sizeof(char *), str_by_len);
    qsort(mk, nmk, sizeof(mkpt_t), mk_by_len);
  }
  for (size_t k = 0; k < nskel; k++) {
    if ((r = add_op(s, OP_TMPFS, skel[k], 0, 0, -1)) != 0)
      goto out;
  }
  for (size_t k = 0; k < nmk; k++) {
    if (k > 0 && strcmp(mk[k].path, mk[k - 1].path) == 0)
      continue;
    if ((r = add_op(s, mk[k].is_file ? OP_MKFILE : OP_MKDIR, mk[k].path, 0, 0,
                    -1)) != 0)
      goto out;
  }
  slot = 0;
  for (size_t i = 0; i < nd; i++) {
    if (d[i].clone && (r = add_op(s, OP_ATTACH, d[i].path, slot++, 0, -1)))
      goto out;
  }
  for (size_t k = 0; k < nskel; k++) {
    if ((r = add_op(s, OP_RO, skel[k], 0, 0, -1)) != 0)
      goto out;
  }
  if ((r = add_op(s, OP_PROC, "/proc", 0, ro, -1)) != 0)
    goto out;
  /* /dev/shm read-only would break POSIX semaphores; the host's writable
   * would let tools of different runs meet there. Its size: memory_mb, at
   * most 64 MiB (it is memory the limits do not count without a cgroup). */
  {
    struct stat st;
    char opt[64];

    if (ro && stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode)) {
      snprintf(opt, sizeof(opt), "mode=1777,size=%lldm",
               (long long)(c->memory_mb < 64 ? c->memory_mb : 64));
      if ((r = add_op(s, OP_SHM, "/dev/shm", 0, 0, -1)) != 0)
        goto out;
      if ((s->ops[s->nops - 1].data = keep_str(s, ice__strdup(opt))) == NULL) {
        r = -ENOMEM;
        goto out;
      }
    }
  }
  s->slot_fds = ice__calloc((size_t)s->nslots + 1, sizeof(int));
  if (s->slot_fds == NULL)
    r = -ENOMEM;
out:
  ice__free(d);
  ice__free(skel);
  ice__free(mk);
  if (r == -ENOMEM)
    snprintf(err, errlen, "out of memory");
  return r;
}

static void add_rl(ice__sandbox_t *s, int res, int64_t soft, int64_t hard) {
  struct rlimit cur;

  /* Never above what the engine has: lowering is always allowed, raising
   * a hard limit is not. */
  if (getrlimit(res, &cur) == 0) {
    if (cur.rlim_max != RLIM_INFINITY && (rlim_t)hard > cur.rlim_max)
      hard = (int64_t)cur.rlim_max;
    if ((rlim_t)soft > (rlim_t)hard)
      soft = hard;
  }
  s->rl[s->nrl].res = res;
  s->rl[s->nrl].lim.rlim_cur = (rlim_t)soft;
  s->rl[s->nrl].lim.rlim_max = (rlim_t)hard;
  s->nrl++;
}

/* Makes this child's cgroup under the base: its memory and pids limits,
 * no swap, and its cgroup.procs open for the child to join. Any failure
 * just means no cgroup (RLIMIT_DATA instead). */
/* Empties a cgroup (each process in it killed: v1 has no cgroup.kill,
 * and v2's is Linux 5.14) and removes it. */
static void remove_cgroup(const char *cg) {
  char path[PATH_MAX + 32], buf[4096];

  snprintf(path, sizeof(path), "%s/cgroup.kill", cg);
  (void)write_file(path, "1");
  snprintf(path, sizeof(path), "%s/cgroup.procs", cg);
  for (int i = 0; i < 50 && rmdir(cg) != 0 && errno == EBUSY; i++) {
    if (read_small(path, buf, sizeof(buf)) > 0) {
      for (char *p = buf; *p != '\0';) {
        long pid = strtol(p, &p, 10);

        if (pid > 0)
          kill((pid_t)pid, SIGKILL);
        while (*p == '\n')
          p++;
      }
    }
    usleep(1000);
  }
}

/* cgroup v1: this child's cgroup in the pids hierarchy, with pids.max. */
static void make_v1_pids(ice__sandbox_t *s, unsigned long seq) {
  char path[PATH_MAX + 96], val[32];

  snprintf(path, sizeof(path), "%s/ice-%d-%lu", cg_pids_base, (int)getpid(),
           seq);
  if (mkdir(path, 0755) != 0 || (s->cg_pids = ice__strdup(path)) == NULL)
    return;
  snprintf(path, sizeof(path), "%s/pids.max", s->cg_pids);
  snprintf(val, sizeof(val), "%lld", (long long)s->c->max_processes);
  if (write_file(path, val) == 0) {
    snprintf(path, sizeof(path), "%s/cgroup.procs", s->cg_pids);
    s->cg_pids_fd = open(path, O_WRONLY | O_CLOEXEC);
    if (s->cg_pids_fd >= 0)
      return;
  }
  rmdir(s->cg_pids);
  ice__free(s->cg_pids);
  s->cg_pids = NULL;
}

static void make_cgroup(ice__sandbox_t *s) {
  char path[PATH_MAX + 96], val[32];
  unsigned long seq;

  pthread_mutex_lock(&cache_lock);
  if (!cg_probed)
    probe_cgroup();
  if (cg_base[0] == '\0') {
    pthread_mutex_unlock(&cache_lock);
    return;
  }
  seq = ++cg_seq;
  snprintf(path, sizeof(path), "%s/ice-%d-%lu", cg_base, (int)getpid(), seq);
  pthread_mutex_unlock(&cache_lock);
  if (mkdir(path, 0755) != 0 || (s->cg = ice__strdup(path)) == NULL)
    return;
  snprintf(val, sizeof(val), "%lld", (long long)(s->c->memory_mb * MIB));
  if (cg_v1) {
    /* No swap: memory+swap gets the same limit (absent without swap
     * accounting). The pids cgroup is optional: RLIMIT_NPROC remains. */
    snprintf(path, sizeof(path), "%s/memory.limit_in_bytes", s->cg);
    if (write_file(path, val) != 0)
      goto fail;
    snprintf(path, sizeof(path), "%s/memory.memsw.limit_in_bytes", s->cg);
    (void)write_file(path, val);
    if (cg_pids_base[0] != '\0')
      make_v1_pids(s, seq);
  } else {
    snprintf(path, sizeof(path), "%s/memory.max", s->cg);
    if (write_file(path, val) != 0)
      goto fail;
    snprintf(path, sizeof(path), "%s/memory.swap.max", s->cg);
    (void)write_file(path, "0"); /* absent without swap accounting */
  }
  if (!cg_v1 && cg_pids) {
    snprintf(path, sizeof(path), "%s/pids.max", s->cg);
    snprintf(val, sizeof(val), "%lld", (long long)s->c->max_processes);
    if (write_file(path, val) != 0)
      goto fail;
  }
  snprintf(path, sizeof(path), "%s/cgroup.procs", s->cg);
  s->cg_procs_fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (s->cg_procs_fd >= 0)
    return;
fail:
  rmdir(s->cg);
  ice__free(s->cg);
  s->cg = NULL;
  if (s->cg_pids_fd >= 0)
    close(s->cg_pids_fd);
  s->cg_pids_fd = -1;
  if (s->cg_pids != NULL)
    rmdir(s->cg_pids);
  ice__free(s->cg_pids);
  s->cg_pids = NULL;
}

static int last_cap(void) {
  static int cached = -1;
  char buf[16];

  if (cached < 0 &&
      read_small("/proc/sys/kernel/cap_last_cap", buf, sizeof(buf)) > 0)
    cached = atoi(buf);
  return cached < 0 ? CAP_LAST_CAP : cached;
}

int ice__sandbox_prepare(const ice__sandbox_conf_t *c, const char *tmpdir,
                         const char *cwd, ice__sandbox_t **out, char *err,
                         size_t errlen) {
  ice__sandbox_t *s = ice__calloc(1, sizeof(*s));
  unsigned wanted;
  int r, ferr;

  *out = NULL;
  if (s == NULL) {
    snprintf(err, errlen, "out of memory");
    return -ENOMEM;
  }
  s->c = c;
  s->cg_procs_fd = -1;
  s->cg_pids_fd = -1;
  s->net_fd = -1;
  s->nproc_rl = -1;
  s->data_rl = -1;
  s->root = geteuid() == 0;
  s->refuse = refused_by_env();
  s->uid = s->root ? ICE__SBX_NOBODY : geteuid();
  s->gid = s->root ? ICE__SBX_NOBODY : getegid();
  s->last_cap = last_cap();

  /* The namespaces of C. Root needs no user namespace to make the others
   * (and must stay root in the init namespace to id-map mounts); the tool
   * gets one of its own later either way. */
  s->flags = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS;
  if (!c->network)
    s->flags |= CLONE_NEWNET;
  if (!s->root)
    s->flags |= CLONE_NEWUSER;
  wanted = wanted_mechs(c, s->root);
  s->refuse &= wanted;
  if (s->refuse & ICE__SBX_USER)
    s->flags &= ~(long)CLONE_NEWUSER;
  if (s->refuse & ICE__SBX_PID)
    s->flags &= ~(long)CLONE_NEWPID;
  if (s->refuse & ICE__SBX_NET)
    s->flags &= ~(long)CLONE_NEWNET;
  if (s->refuse & ICE__SBX_IPC)
    s->flags &= ~(long)CLONE_NEWIPC;
  if (s->refuse & ICE__SBX_UTS)
    s->flags &= ~(long)CLONE_NEWUTS;
  /* Unprivileged, every other namespace needs the user namespace. */
  if (!s->root && !(s->flags & CLONE_NEWUSER))
    s->flags &= ~(long)(CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC |
                        CLONE_NEWUTS | CLONE_NEWNET);
  if (s->refuse & ICE__SBX_MOUNT)
    s->flags &= ~(long)CLONE_NEWNS;
  s->missing = s->refuse;
  if (!(s->flags & CLONE_NEWNS))
    s->missing |=
        wanted & (ICE__SBX_MOUNT | ICE__SBX_READONLY | ICE__SBX_IDMAP);
  if (!s->root && !(s->flags & CLONE_NEWUSER))
    s->missing |=
        wanted & (ICE__SBX_PID | ICE__SBX_NET | ICE__SBX_IPC | ICE__SBX_UTS);
  /* C makes the network namespace itself, with unshare, rather than our
   * clone: its set-up (a loopback device, sysctl tables) was 40 % of the
   * engine's own time per tool, and in C it runs while the loop goes on. */
  if (s->flags & CLONE_NEWNET) {
    s->flags &= ~(long)CLONE_NEWNET;
    s->unshare_net = 1;
  }

  if (!s->root && (s->flags & CLONE_NEWUSER)) {
    snprintf(s->c_uid_map, sizeof(s->c_uid_map), "%u %u 1", (unsigned)s->uid,
             (unsigned)s->uid);
    snprintf(s->c_gid_map, sizeof(s->c_gid_map), "%u %u 1", (unsigned)s->gid,
             (unsigned)s->gid);
  }
  snprintf(s->t_uid_map, sizeof(s->t_uid_map), "%u %u 1", (unsigned)s->uid,
           (unsigned)s->uid);
  snprintf(s->t_gid_map, sizeof(s->t_gid_map), "%u %u 1", (unsigned)s->gid,
           (unsigned)s->gid);

  if ((s->flags & CLONE_NEWNS) &&
      (r = plan_mounts(s, tmpdir, cwd, err, errlen)) != 0)
    goto fail;

  make_cgroup(s);
  add_rl(s, RLIMIT_CORE, 0, 0);
  add_rl(s, RLIMIT_CPU, c->cpu_seconds, c->cpu_seconds + 1);
  add_rl(s, RLIMIT_NOFILE, c->max_open_files, c->max_open_files);
  add_rl(s, RLIMIT_FSIZE, c->max_file_bytes, c->max_file_bytes);
  s->data_rl = s->nrl;
  add_rl(s, RLIMIT_DATA, c->memory_mb * MIB, c->memory_mb * MIB);
  s->nproc_rl = s->nrl;
  add_rl(s, RLIMIT_NPROC, c->max_processes, c->max_processes);

  if (!(s->refuse & ICE__SBX_SECCOMP)) {
    s->prog = get_filter(c->network != 0, !(s->flags & CLONE_NEWPID), &ferr);
    if (s->prog == NULL) {
      snprintf(err, errlen, "sandbox: cannot build the seccomp filter: %s",
               strerror(-ferr));
      r = ferr;
      goto fail;
    }
  }
  /* A root engine's tools without network share one empty network
   * namespace, when seccomp keeps them from making any socket (so nothing
   * in it can tell it is shared): making one per tool, and the kernel's
   * tearing it down after, cost 0.6 ms of CPU and 2 ms of wall time per
   * tool. Unprivileged, each tool's user namespace would own its own. */
  if (s->root && s->unshare_net && s->prog != NULL) {
    pthread_mutex_lock(&cache_lock);
    s->net_fd = shared_net();
    pthread_mutex_unlock(&cache_lock);
  }
  if (s->missing != 0 && c->strict) {
    char names[256];

    mech_list(s->missing, names, sizeof(names));
    snprintf(err, errlen,
             "sandbox: missing %s%s; sandbox.strict is true, so the tool does "
             "not run without it",
             names, s->refuse ? " (refused by ICE_SANDBOX_REFUSE)" : "");
    r = -EPERM;
    goto fail;
  }
  *out = s;
  return 0;
fail:
  ice__sandbox_free(s);
  return r;
}

long ice__sandbox_clone_flags(const ice__sandbox_t *s) {
  return s->flags;
}

int ice__sandbox_has_init(const ice__sandbox_t *s) {
  return (s->flags & CLONE_NEWPID) != 0;
}

unsigned ice__sandbox_missing(const ice__sandbox_t *s) {
  return s->missing;
}

const char *ice__sandbox_message(const ice__sandbox_t *s) {
  return s->msg;
}

/* ---- creating the child ------------------------------------------------- */

static pid_t raw_clone(long flags) {
  return (pid_t)syscall(SYS_clone, flags | SIGCHLD, NULL, NULL, NULL, 0L);
}

/* Which of `flags` the kernel refuses, one namespace at a time (each try
 * is a child that exits at once). Only after a clone failed. */
static long probe_refused(long flags) {
  static const long each[] = {CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWNET,
                              CLONE_NEWIPC, CLONE_NEWUTS};
  long ok = 0;

  for (int i = -1; i < (int)ICE__ARRAY_SIZE(each); i++) {
    long f = i < 0 ? CLONE_NEWUSER : each[i];
    pid_t pid;

    if (!(flags & f))
      continue;
    pid = raw_clone((ok & CLONE_NEWUSER) | f | (i < 0 ? 0 : ok));
    if (pid == 0)
      _exit(0);
    if (pid > 0) {
      ok |= f;
      while (waitpid(pid, NULL, __WALL) < 0 && errno == EINTR) {
      }
    }
  }
  return flags & ~ok;
}

static unsigned mechs_of(long flags) {
  return ((flags & CLONE_NEWUSER) ? ICE__SBX_USER : 0) |
         ((flags & CLONE_NEWPID) ? ICE__SBX_PID : 0) |
         ((flags & CLONE_NEWNET) ? ICE__SBX_NET : 0) |
         ((flags & CLONE_NEWNS) ? ICE__SBX_MOUNT : 0) |
         ((flags & CLONE_NEWIPC) ? ICE__SBX_IPC : 0) |
         ((flags & CLONE_NEWUTS) ? ICE__SBX_UTS : 0);
}

int ice__sandbox_fork(ice__sandbox_t *s) {
  for (;;) {
    pid_t pid = raw_clone(s->flags);
    long refused;
    unsigned lost;
    char names[256];
    int e;

    if (pid >= 0 || s->flags == 0)
      return pid;
    e = errno;
    if (e != EPERM && e != EINVAL && e != ENOSPC && e != EUSERS &&
        e != EACCES && e != ENOSYS)
      return -1;
    refused = probe_refused(s->flags);
    if (refused == 0)
      refused = s->flags; /* refused together: drop them all */
    if (!s->root && (refused & CLONE_NEWUSER)) {
      refused = s->flags; /* nothing else works without it */
      if (s->unshare_net)
        refused |= CLONE_NEWNET; /* which C would have made */
      s->unshare_net = 0;
    }
    lost = mechs_of(refused);
    if (s->c->strict) {
      mech_list(lost, names, sizeof(names));
      snprintf(s->msg, sizeof(s->msg),
               "sandbox: the kernel refused the %s (%s); sandbox.strict is "
               "true, so the tool does not run without it",
               names, strerror(e));
      errno = EPERM;
      return -1;
    }
    s->missing |= lost;
    s->flags &= ~refused;
    if ((refused & CLONE_NEWPID) && s->prog != NULL) {
      /* The filter that keeps the tool in its process group. */
      int ferr;
      const struct sock_fprog *f = get_filter(s->c->network != 0, 1, &ferr);

      if (f == NULL) {
        snprintf(s->msg, sizeof(s->msg),
                 "sandbox: cannot build the seccomp filter: %s",
                 strerror(-ferr));
        errno = -ferr;
        return -1;
      }
      s->prog = f;
    }
    if (refused & CLONE_NEWNS) {
      s->missing |= (s->c->fs_full ? 0 : ICE__SBX_READONLY) |
                    (s->root ? ICE__SBX_IDMAP : 0);
      s->nops = 0; /* no mount namespace: no plan */
    }
  }
}

/* ---- after the child ---------------------------------------------------- */

/* "key N" in a cgroup's flat-keyed file, or 0. */
static long long cg_value(const char *cg, const char *file, const char *key) {
  char path[PATH_MAX + 64], buf[1024];
  const char *p;

  snprintf(path, sizeof(path), "%s/%s", cg, file);
  if (read_small(path, buf, sizeof(buf)) < 0)
    return 0;
  if (key == NULL)
    return atoll(buf);
  for (p = buf; (p = strstr(p, key)) != NULL; p++) {
    size_t n = strlen(key);

    if ((p == buf || p[-1] == '\n') && p[n] == ' ')
      return atoll(p + n + 1);
  }
  return 0;
}

/* The engine's resident size in KiB: the child starts as a copy of it, and
 * wait4's peak RSS counts that copy (until exec) as the child's own. */
static int64_t engine_rss_kb(void) {
  char buf[128];
  long long pages = 0;

  if (read_small("/proc/self/statm", buf, sizeof(buf)) > 0)
    sscanf(buf, "%*s %lld", &pages);
  return (int64_t)pages * (sysconf(_SC_PAGESIZE) / 1024);
}

int ice__sandbox_verdict(ice__sandbox_t *s, int64_t exit_status,
                         int term_signal, double cpu_seconds,
                         int64_t max_rss_kb, int nprocs, char *msg,
                         size_t len) {
  const ice__sandbox_conf_t *c = s->c;
  int failed = exit_status != 0 || term_signal != 0;
  int64_t peak_kb = max_rss_kb;

  /* SIGXCPU comes at the soft limit. rusage can trail the time the limit
   * counts (test_cpu_limit), hence the margin; a SIGXCPU long before it
   * was sent by the tool (or another process): it is reported as the
   * signal it is, not as a limit. */
  if ((term_signal == SIGXCPU && cpu_seconds >= (double)c->cpu_seconds / 4) ||
      (term_signal == SIGKILL && cpu_seconds >= (double)c->cpu_seconds)) {
    snprintf(msg, len,
             "cpu: the tool used up its %lld s of CPU time (cpu_seconds)",
             (long long)c->cpu_seconds);
    return 1;
  }
  if (s->cg != NULL &&
      cg_value(s->cg, cg_v1 ? "memory.oom_control" : "memory.events",
               "oom_kill") > 0) {
    snprintf(msg, len,
             "memory: the tool was killed at its memory limit of %lld MiB "
             "(memory_mb)",
             (long long)c->memory_mb);
    return 1;
  }
  if (failed) {
    if (s->cg != NULL) {
      long long pk = cg_value(
          s->cg, cg_v1 ? "memory.max_usage_in_bytes" : "memory.peak", NULL);
      if (pk > 0)
        peak_kb = pk / 1024;
    } else if (peak_kb <= engine_rss_kb()) {
      peak_kb = 0; /* the peak may be the engine's copy, not the tool */
    }
    if (peak_kb * 1024 * 4 >= c->memory_mb * MIB * 3) {
      snprintf(msg, len,
               "memory: the tool failed after using %lld MiB of its %lld MiB "
               "(memory_mb)",
               (long long)(peak_kb / 1024), (long long)c->memory_mb);
      return 1;
    }
    if ((s->cg != NULL && cg_pids &&
         cg_value(s->cg, "pids.events", "max") > 0) ||
        (s->cg_pids != NULL &&
         cg_value(s->cg_pids, "pids.events", "max") > 0) ||
        (nprocs >= 0 && nprocs >= c->max_processes)) {
      snprintf(msg, len,
               "processes: the tool failed at its limit of %lld processes "
               "(max_processes)",
               (long long)c->max_processes);
      return 1;
    }
  }
  if (term_signal == SIGXFSZ) {
    snprintf(msg, len,
             "file size: the tool wrote past its limit of %lld bytes "
             "(max_file_bytes)",
             (long long)c->max_file_bytes);
    return 1;
  }
  return 0;
}

void ice__sandbox_describe(const ice__sandbox_t *s,
                           const ice__sandbox_report_t *r, char *buf,
                           size_t len) {
  static const char *const whats[] = {
      [ICE__SBX_WHAT_MAPS] = "writing the user namespace's maps",
      [ICE__SBX_WHAT_USER] = "switching to the tool's user",
      [ICE__SBX_WHAT_USERNS] = "creating the tool's user namespace",
      [ICE__SBX_WHAT_RLIMIT] = "setting a resource limit",
      [ICE__SBX_WHAT_CAPS] = "dropping capabilities",
      [ICE__SBX_WHAT_NNP] = "setting no_new_privs",
      [ICE__SBX_WHAT_SECCOMP] = "loading the seccomp filter"};
  char names[256];

  if (r->mech != 0) {
    mech_list(r->mech, names, sizeof(names));
    snprintf(buf, len,
             "sandbox: the kernel refused the %s (%s); sandbox.strict is "
             "true, so the tool does not run without it",
             names, strerror(r->err));
  } else if (r->what == ICE__SBX_WHAT_MOUNT && r->arg >= 0 &&
             (size_t)r->arg < s->nops) {
    snprintf(buf, len, "sandbox: cannot set up the mount at '%s': %s",
             s->ops[r->arg].path, strerror(r->err));
  } else if (r->what > 0 && r->what < (int)ICE__ARRAY_SIZE(whats) &&
             whats[r->what] != NULL) {
    snprintf(buf, len, "sandbox: %s: %s", whats[r->what], strerror(r->err));
  } else {
    snprintf(buf, len, "sandbox: %s", strerror(r->err));
  }
}

void ice__sandbox_free(ice__sandbox_t *s) {
  if (s == NULL)
    return;
  if (s->cg_procs_fd >= 0)
    close(s->cg_procs_fd);
  if (s->cg_pids_fd >= 0)
    close(s->cg_pids_fd);
  /* Whatever is still in there dies first: rmdir needs an empty cgroup. */
  if (s->cg != NULL)
    remove_cgroup(s->cg);
  if (s->cg_pids != NULL)
    remove_cgroup(s->cg_pids);
  ice__free(s->cg);
  ice__free(s->cg_pids);
  for (size_t i = 0; i < s->nstrs; i++)
    free(s->strs[i]);
  free(s->cwd);
  free(s->engine_cwd);
  ice__free(s->strs);
  ice__free(s->ops);
  ice__free(s->slot_fds);
  ice__free(s);
}
