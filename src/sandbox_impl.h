/* Private to sandbox.c and sandbox_child.c: the prepared sandbox, shared
 * by the parent that fills it and the child that acts on it. */
#ifndef ICE_SANDBOX_IMPL_H
#define ICE_SANDBOX_IMPL_H

#include "sandbox.h"

#include <linux/filter.h>
#include <stddef.h>
#include <sys/resource.h>
#include <sys/types.h>

/* The user and group a tool runs as when the engine is root: root's own
 * files (owner-readable, like /etc/shadow) must not be the tool's. */
#define ICE__SBX_NOBODY 65534

/* The mount plan: system calls on fixed paths, run by the child in order.
 * Built by the parent (which may allocate and look at the file system);
 * the child only acts. */
enum {
  OP_PRIVATE, /* nothing propagates back to the host */
  OP_RO_ALL,  /* every mount read-only, recursively */
  OP_CLONE,   /* a detached copy of path's tree: id-mapped and/or writable */
  OP_TMPFS,   /* an empty tmpfs over a directory the tool cannot search */
  OP_MKDIR,   /* a mount point inside such a tmpfs */
  OP_MKFILE,  /* the same, for a file */
  OP_ATTACH,  /* the copy made by OP_CLONE `slot`, attached at path */
  OP_RO,      /* path's mount read-only (the tmpfs, once it is filled) */
  OP_SHM,     /* a tmpfs of the tool's own on /dev/shm (data: options) */
  OP_PROC     /* /proc of the new pid namespace, else the host's made
                 writable again (the tool writes its own uid_map there) */
};

typedef struct {
  int kind;
  const char *path; /* points into the sandbox's paths */
  int slot;         /* OP_CLONE, OP_ATTACH */
  int rw;           /* OP_CLONE: clear read-only */
  int idmap_fd;     /* OP_CLONE: -1, or the user namespace to map through */
  const char *data; /* OP_SHM: the tmpfs options */
} op_t;

struct ice__sandbox_s {
  const ice__sandbox_conf_t *c;
  int root;         /* the engine is root: the tool runs as nobody */
  unsigned refuse;  /* ICE_SANDBOX_REFUSE */
  unsigned missing; /* refused so far (before the child runs) */
  long flags;       /* namespaces of C */
  int unshare_net;  /* C makes its network namespace itself (unshare) */
  int net_fd;       /* or joins this one, the engine's shared offline one */
  uid_t uid;        /* the tool's ids, outside any namespace */
  gid_t gid;
  char c_uid_map[32]; /* C's maps, when it has a user namespace */
  char c_gid_map[32];
  char t_uid_map[32]; /* T's own user namespace */
  char t_gid_map[32];
  op_t *ops;
  size_t nops;
  int nslots;
  int *slot_fds; /* the child's tree descriptors (its own copy) */
  char **strs;   /* strings the plan points into */
  size_t nstrs;
  struct {
    int res;
    struct rlimit lim;
  } rl[6];
  int nrl;
  int nproc_rl; /* index of RLIMIT_NPROC in rl, -1 when not set */
  int data_rl;  /* index of RLIMIT_DATA, -1 when the cgroup limits memory */
  const struct sock_fprog *prog;
  int last_cap;
  char *cwd;        /* the real path of cwd, or NULL */
  char *engine_cwd; /* the engine's working directory, or NULL */
  char *cg;         /* this child's cgroup (memory, with pids on v2) */
  int cg_procs_fd;  /* its cgroup.procs, opened by the engine */
  char *cg_pids;    /* cgroup v1: its cgroup in the pids hierarchy */
  int cg_pids_fd;   /* that one's cgroup.procs */
  char msg[512];    /* the reason of a failure in ice__sandbox_fork */
};

#endif
