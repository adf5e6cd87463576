/* The run store (SPEC §9): a SQLite file holding runs, the commit records
 * of every node instance and every event, so that a run can be resumed
 * after a crash, a cancel, a pause or a wait. It plugs into a run through
 * the public seam only: ice_store_commit is the run's commit hook, and
 * ice_store_attach subscribes to events and installs a prepare handle
 * that commits the open transaction once per loop turn, right before the
 * loop waits. Grouping turns thousands of commit records of one turn into
 * one write of the WAL; a write lock is held only during a turn.
 *
 * A write that fails (a full disk, an I/O error, a read-only file, a lock
 * held elsewhere for over the busy timeout) rolls the open transaction
 * back, so the file stays valid, and every run that had rows in it is
 * marked: its next commit fails, which stops it (`Commit: MESSAGE`), since
 * its record now has a gap. See docs/durability.md. */
#include "internal.h"
#include "store.h"

#include <ice.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#define BUSY_TIMEOUT_MS 5000

/* The prepare handle is allocated apart from the store and closed
 * asynchronously by detach: its close callback frees it alone, so the
 * store may be closed (freed) before the loop runs that callback. */
typedef struct {
  uv_prepare_t h;
  ice_store_t *s; /* NULL once detached */
} store_prep_t;

struct ice_store_s {
  sqlite3 *db;
  char *path;
  sqlite3_stmt *ins_record, *ins_event, *begin, *commit, *rollback;
  int in_tx; /* a transaction is open (BEGIN IMMEDIATE) */
  /* Runs with rows in the open transaction (run id -> true), and the last
   * one added, to skip the lookup while one run commits many rows. */
  json_t *tx_runs;
  char *tx_last;
  /* Runs whose rows were lost to a failed write (run id -> message): their
   * next commit fails. */
  json_t *failed;
  /* Set when even that could not be noted (ENOMEM): every run's next
   * commit fails. */
  int broken;
  ice_engine_t *engine; /* attached to, or NULL */
  ice_sub_t *sub;
  store_prep_t *prep;
  long long self_start; /* this process's start time (/proc stat field 22) */
};

/* ---- small helpers ------------------------------------------------------ */

static void now_rfc3339(char *buf, size_t len) {
  struct timespec ts;
  struct tm tm;

  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
           tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
           (int)(ts.tv_nsec / 1000000));
}

/* Field 22 of /proc/PID/stat: when the process started, in clock ticks
 * since boot. With the pid it names one process: a pid reused after the
 * owner died has another start time. -1 when unknown. */
static long long proc_start(long pid) {
  char path[64], buf[1024];
  const char *p;
  FILE *f;
  size_t n;
  long long start = -1;

  snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
  f = fopen(path, "r");
  if (f == NULL)
    return -1;
  n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[n] = '\0';
  /* Field 2, the command, is in parentheses and may hold spaces and
   * parentheses: count from the last ')'. */
  p = strrchr(buf, ')');
  if (p == NULL)
    return -1;
  p++;
  for (int field = 3; field <= 22 && p != NULL; field++) {
    while (*p == ' ')
      p++;
    if (field == 22) {
      char *end;
      start = strtoll(p, &end, 10);
      if (end == p)
        start = -1;
      break;
    }
    p = strchr(p, ' ');
  }
  return start;
}

static int owner_alive(long pid, long long start) {
  long long now;

  if (pid <= 0)
    return 0;
  if (kill((pid_t)pid, 0) != 0 && errno != EPERM)
    return 0;
  now = proc_start(pid);
  /* Without /proc, the pid alone decides. */
  return start < 0 || now < 0 || now == start;
}

/* mkdir -p with mode 0700 for the directories it creates. */
static int make_dirs(const char *dir, char *msg, size_t msglen,
                     const char *path) {
  char *d = ice__strdup(dir);
  struct stat st;
  int rc = 0;

  if (d == NULL)
    return ICE_ENOMEM;
  for (char *p = d + 1;; p++) {
    if (*p != '/' && *p != '\0')
      continue;
    char c = *p;
    *p = '\0';
    if (stat(d, &st) != 0) {
      if (errno != ENOENT || (mkdir(d, 0700) != 0 && errno != EEXIST)) {
        snprintf(msg, msglen,
                 "cannot open the run store '%s': cannot create the "
                 "directory '%s': %s",
                 path, d, strerror(errno));
        rc = ICE_EIO;
        break;
      }
    } else if (!S_ISDIR(st.st_mode)) {
      snprintf(msg, msglen,
               "cannot open the run store '%s': '%s' is not a directory", path,
               d);
      rc = ICE_EIO;
      break;
    }
    *p = c;
    if (c == '\0')
      break;
  }
  ice__free(d);
  return rc;
}

/* The default path: $ICE_HOME/runs.db, ICE_HOME defaulting to
 * $XDG_STATE_HOME/ice, else ~/.local/state/ice. malloc'd. */
static char *default_path(void) {
  const char *home = getenv("ICE_HOME");
  char *p = NULL;
  int n;

  if (home != NULL && home[0] != '\0')
    n = asprintf(&p, "%s/runs.db", home);
  else if ((home = getenv("XDG_STATE_HOME")) != NULL && home[0] != '\0')
    n = asprintf(&p, "%s/ice/runs.db", home);
  else {
    home = getenv("HOME");
    n = asprintf(&p, "%s/.local/state/ice/runs.db",
                 home != NULL && home[0] != '\0' ? home : ".");
  }
  return n < 0 ? NULL : p;
}

/* ---- errors ------------------------------------------------------------- */

/* SQLite's message for the last call, with the system's when it is an
 * I/O error. */
static void describe(ice_store_t *s, int rc, char *buf, size_t len) {
  int prim = rc & 0xff, sys = sqlite3_system_errno(s->db);

  if ((prim == SQLITE_IOERR || prim == SQLITE_FULL ||
       prim == SQLITE_CANTOPEN) &&
      sys != 0)
    snprintf(buf, len, "%s (%s)", sqlite3_errmsg(s->db), strerror(sys));
  else
    snprintf(buf, len, "%s", sqlite3_errmsg(s->db));
}

/* Whether a failed write hit a limit of space: SQLite reports a write
 * refused for the file size limit (EFBIG, RLIMIT_FSIZE) as a plain
 * SQLITE_IOERR_WRITE, and its errno is often gone by then. So look: no
 * space left on the file system, or the store or its log at the limit. */
static int out_of_space(const ice_store_t *s, int sys) {
  struct statvfs vfs;
  struct rlimit rl;
  struct stat st;
  char wal[4096];

  if (sys == ENOSPC || sys == EFBIG
#ifdef EDQUOT
      || sys == EDQUOT
#endif
  )
    return 1;
  if (statvfs(s->path, &vfs) == 0 &&
      (unsigned long long)vfs.f_bavail * vfs.f_frsize < 65536)
    return 1;
  if (getrlimit(RLIMIT_FSIZE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
    return 0;
  snprintf(wal, sizeof(wal), "%s-wal", s->path);
  return (stat(s->path, &st) == 0 &&
          (unsigned long long)st.st_size + 65536 >= rl.rlim_cur) ||
         (stat(wal, &st) == 0 &&
          (unsigned long long)st.st_size + 65536 >= rl.rlim_cur);
}

static void write_error(ice_store_t *s, int rc, char *msg, size_t msglen) {
  int prim = rc & 0xff, sys = sqlite3_system_errno(s->db);
  char why[300];

  describe(s, rc, why, sizeof(why));
  if (prim == SQLITE_FULL || (prim == SQLITE_IOERR && out_of_space(s, sys)))
    snprintf(msg, msglen, "the run store is full: cannot write '%s': %s",
             s->path, why);
  else if (prim == SQLITE_READONLY)
    snprintf(msg, msglen, "the run store '%s' is read-only: %s", s->path, why);
  else if (prim == SQLITE_BUSY || prim == SQLITE_LOCKED)
    snprintf(msg, msglen,
             "the run store '%s' is busy: another process held it for over "
             "%d s",
             s->path, BUSY_TIMEOUT_MS / 1000);
  else
    snprintf(msg, msglen, "cannot write the run store '%s': %s", s->path, why);
}

static int read_error(ice_store_t *s, int rc, char *msg, size_t msglen) {
  char why[300];

  describe(s, rc, why, sizeof(why));
  snprintf(msg, msglen, "cannot read the run store '%s': %s", s->path, why);
  return ICE_EIO;
}

/* ---- transactions ------------------------------------------------------- */

static int step_reset(sqlite3_stmt *st) {
  int rc = sqlite3_step(st);

  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

/* Marks run_id's rows as lost: its next commit fails with msg. */
static void mark_failed(ice_store_t *s, const char *run_id, const char *msg) {
  if (json_object_get(s->failed, run_id) == NULL &&
      json_object_set_new(s->failed, run_id, json_string(msg)) != 0)
    s->broken = 1;
}

/* The write failed: roll back what the turn wrote, and mark every run
 * that had rows in it (and run_id, when given) so that its next commit
 * fails. msg holds the message. */
static void tx_fail(ice_store_t *s, const char *run_id, const char *msg) {
  const char *id;
  json_t *v;

  if (!sqlite3_get_autocommit(s->db))
    sqlite3_step(s->rollback), sqlite3_reset(s->rollback);
  s->in_tx = 0;
  json_object_foreach(s->tx_runs, id, v) {
    mark_failed(s, id, msg);
  }
  if (run_id != NULL)
    mark_failed(s, run_id, msg);
  json_object_clear(s->tx_runs);
  ice__free(s->tx_last);
  s->tx_last = NULL;
}

static int tx_begin(ice_store_t *s, char *msg, size_t msglen) {
  int rc;

  if (s->in_tx)
    return 0;
  rc = step_reset(s->begin);
  if (rc != SQLITE_OK) {
    write_error(s, rc, msg, msglen);
    return -1;
  }
  s->in_tx = 1;
  return 0;
}

/* Notes that run_id has rows in the open transaction. */
static void tx_note(ice_store_t *s, const char *run_id) {
  if (s->tx_last != NULL && strcmp(s->tx_last, run_id) == 0)
    return;
  ice__free(s->tx_last);
  s->tx_last = ice__strdup(run_id);
  /* A failed write could not be charged to this run: charge every run. */
  if (json_object_set_new(s->tx_runs, run_id, json_true()) != 0)
    s->broken = 1;
}

/* Commits the open transaction. On failure rolls back (tx_fail). */
static int tx_flush(ice_store_t *s, char *msg, size_t msglen) {
  int rc;

  if (!s->in_tx)
    return 0;
  rc = step_reset(s->commit);
  if (rc != SQLITE_OK) {
    write_error(s, rc, msg, msglen);
    tx_fail(s, NULL, msg);
    return -1;
  }
  s->in_tx = 0;
  json_object_clear(s->tx_runs);
  ice__free(s->tx_last);
  s->tx_last = NULL;
  return 0;
}

/* ---- open and close ----------------------------------------------------- */

static int prepare(ice_store_t *s, const char *sql, sqlite3_stmt **st) {
  return sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st,
                            NULL);
}

static void free_store(ice_store_t *s) {
  sqlite3_finalize(s->ins_record);
  sqlite3_finalize(s->ins_event);
  sqlite3_finalize(s->begin);
  sqlite3_finalize(s->commit);
  sqlite3_finalize(s->rollback);
  sqlite3_close_v2(s->db);
  json_decref(s->tx_runs);
  json_decref(s->failed);
  ice__free(s->tx_last);
  ice__free(s->path);
  ice__free(s);
}

static int open_error(ice_store_t *s, int rc, const char *why, char *msg,
                      size_t msglen) {
  char buf[300];

  if (why == NULL) {
    if ((rc & 0xff) == SQLITE_NOTADB) {
      snprintf(buf, sizeof(buf), "the file is not a run store (%s)",
               sqlite3_errmsg(s->db));
    } else if ((rc & 0xff) == SQLITE_READONLY) {
      /* Even reading needs to write: the log (-wal, -shm) and the
       * schema's version check. */
      snprintf(buf, sizeof(buf),
               "it is read-only for this user (%s); a store needs write "
               "access to the file and its directory",
               sqlite3_errmsg(s->db));
    } else
      describe(s, rc, buf, sizeof(buf));
    why = buf;
  }
  /* SQLite says "disk I/O error" for a full disk or a file-size limit. */
  if (((rc & 0xff) == SQLITE_IOERR || (rc & 0xff) == SQLITE_FULL ||
       (rc & 0xff) == SQLITE_ERROR) &&
      out_of_space(s, sqlite3_system_errno(s->db)))
    snprintf(msg, msglen,
             "cannot open the run store '%s': it is full (no space left, or "
             "the file-size limit): %s",
             s->path, why);
  else
    snprintf(msg, msglen, "cannot open the run store '%s': %s", s->path, why);
  free_store(s);
  return (rc & 0xff) == SQLITE_NOMEM ? ICE_ENOMEM : ICE_EIO;
}

int ice_store_open(ice_store_t **out, const char *path, char *msg,
                   size_t msglen) {
  ice_store_t *s;
  char *dir, *slash, why[300];
  const char *parent;
  struct stat pst;
  sqlite3_stmt *st = NULL;
  int rc = 0;

  *out = NULL;
  s = ice__calloc(1, sizeof(*s));
  if (s == NULL)
    return ICE_ENOMEM;
  s->path = path != NULL ? ice__strdup(path) : default_path();
  s->tx_runs = json_object();
  s->failed = json_object();
  if (s->path == NULL || s->tx_runs == NULL || s->failed == NULL) {
    snprintf(msg, msglen, "cannot open the run store: out of memory");
    free_store(s);
    return ICE_ENOMEM;
  }
  dir = ice__strdup(s->path);
  if (dir == NULL) {
    free_store(s);
    return ICE_ENOMEM;
  }
  slash = strrchr(dir, '/');
  if (slash != NULL && slash != dir) {
    *slash = '\0';
    rc = make_dirs(dir, msg, msglen, s->path);
    if (rc != 0) {
      ice__free(dir);
      free_store(s);
      return rc;
    }
  }
  parent = slash == NULL ? "." : slash == dir ? "/" : dir;
  /* Say what is wrong where SQLite would not: a device, FIFO or directory
   * ("disk I/O error"), or a store it could not create in a directory the
   * user may not write ("No such file or directory", from its last try,
   * read-only). */
  if (stat(s->path, &pst) == 0) {
    if (!S_ISREG(pst.st_mode)) {
      snprintf(msg, msglen,
               "cannot open the run store '%s': not a regular file", s->path);
      rc = ICE_EIO;
    }
  } else if (errno == ENOENT && access(parent, W_OK) != 0) {
    snprintf(msg, msglen,
             "cannot open the run store '%s': cannot create it in the "
             "directory '%s': %s",
             s->path, parent, strerror(errno));
    rc = ICE_EIO;
  }
  if (rc != 0) {
    ice__free(dir);
    free_store(s);
    return rc;
  }
  ice__free(dir);
  /* One store is used from one thread (the loop's): no SQLite mutexes. */
  rc = sqlite3_open_v2(
      s->path, &s->db,
      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
  if (rc != SQLITE_OK)
    return open_error(s, rc, NULL, msg, msglen);
  sqlite3_extended_result_codes(s->db, 1);
  sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
  /* WAL: readers never block the writer, a commit is one append to the
   * log. synchronous=NORMAL: the log is synced at checkpoints, not at
   * every commit; a process crash loses nothing committed, a power loss
   * may lose the last transactions (docs/durability.md). */
  /* Switching a new file to WAL needs it alone for a moment, and SQLite
   * does not call the busy handler for that: another process opening the
   * same new store (`ice runs` polling it) makes it fail with "database is
   * locked". Retried for up to the busy timeout. */
  for (int tries = 0;; tries++) {
    rc = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode=WAL", -1, &st, NULL);
    if (rc == SQLITE_OK) {
      rc = sqlite3_step(st);
      rc = rc == SQLITE_ROW ? SQLITE_OK : rc;
    }
    sqlite3_finalize(st);
    if ((rc & 0xff) != SQLITE_BUSY || tries * 50 >= BUSY_TIMEOUT_MS)
      break;
    usleep(50000);
  }
  if (rc == SQLITE_OK)
    rc = sqlite3_exec(s->db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL);
  /* Checkpoints copy the log into the database; every 4,096 pages (16 MB)
   * instead of 1,000 halves their share of a long run's time. */
  if (rc == SQLITE_OK)
    rc =
        sqlite3_exec(s->db, "PRAGMA wal_autocheckpoint=4096", NULL, NULL, NULL);
  if (rc != SQLITE_OK)
    return open_error(s, rc, NULL, msg, msglen);
  if (ice__store_migrate(s->db, why, sizeof(why)) != 0)
    return open_error(s, SQLITE_ERROR, why, msg, msglen);
  rc = prepare(s,
               "INSERT INTO records(run_id, key, change, seq, body) "
               "VALUES(?1, ?2, ?3, ?4, ?5)",
               &s->ins_record);
  if (rc == SQLITE_OK)
    rc = prepare(s,
                 "INSERT INTO events(run_id, seq, type, body) "
                 "VALUES(?1, ?2, ?3, ?4)",
                 &s->ins_event);
  if (rc == SQLITE_OK)
    rc = prepare(s, "BEGIN IMMEDIATE", &s->begin);
  if (rc == SQLITE_OK)
    rc = prepare(s, "COMMIT", &s->commit);
  if (rc == SQLITE_OK)
    rc = prepare(s, "ROLLBACK", &s->rollback);
  if (rc != SQLITE_OK)
    return open_error(s, rc, NULL, msg, msglen);
  s->self_start = proc_start((long)getpid());
  *out = s;
  return 0;
}

int ice_store_close(ice_store_t *s, char *msg, size_t msglen) {
  int rc = 0;

  if (s == NULL)
    return 0;
  if (s->engine != NULL)
    ice_store_detach(s, s->engine);
  if (tx_flush(s, msg, msglen) != 0)
    rc = ICE_EIO;
  free_store(s);
  return rc;
}

const char *ice_store_path(const ice_store_t *s) {
  return s->path;
}

/* ---- writing as the run goes ------------------------------------------- */

int ice_store_commit(const ice_commit_t *c, void *store, char *msg,
                     size_t msglen) {
  ice_store_t *s = store;
  json_t *failed = json_object_get(s->failed, c->run_id), *rec;
  char *body;
  int rc;

  if (failed != NULL || s->broken) {
    snprintf(msg, msglen, "%s",
             failed != NULL ? json_string_value(failed)
                            : "out of memory: the run store lost a write");
    return -1;
  }
  rec = ice_commit_to_json(c);
  body = rec != NULL ? ice_json_format(rec, 0) : NULL;
  json_decref(rec);
  if (body == NULL) {
    snprintf(msg, msglen, "out of memory");
    return -1;
  }
  if (tx_begin(s, msg, msglen) != 0) {
    ice__free(body);
    tx_fail(s, c->run_id, msg);
    return -1;
  }
  sqlite3_bind_text(s->ins_record, 1, c->run_id, -1, SQLITE_STATIC);
  sqlite3_bind_text(s->ins_record, 2, c->key, -1, SQLITE_STATIC);
  sqlite3_bind_text(s->ins_record, 3, c->change, -1, SQLITE_STATIC);
  sqlite3_bind_int64(s->ins_record, 4, (sqlite3_int64)c->seq);
  sqlite3_bind_text(s->ins_record, 5, body, -1, SQLITE_STATIC);
  rc = step_reset(s->ins_record);
  ice__free(body);
  if (rc != SQLITE_OK) {
    write_error(s, rc, msg, msglen);
    tx_fail(s, c->run_id, msg);
    return -1;
  }
  tx_note(s, c->run_id);
  /* Not attached to a loop: nothing would commit the group, so each
   * record is its own transaction. */
  if (s->prep == NULL)
    return tx_flush(s, msg, msglen);
  return 0;
}

static void on_event(json_t *ev, void *data) {
  ice_store_t *s = data;
  const char *run_id = json_string_value(json_object_get(ev, "run_id"));
  char *body, msg[512];
  int rc;

  if (run_id == NULL || s->broken || json_object_get(s->failed, run_id) != NULL)
    return;
  body = ice_json_format(ev, 0);
  if (body == NULL) {
    /* Its next commit fails: an event log with a gap is not kept quiet. */
    mark_failed(s, run_id, "out of memory: an event was not stored");
    return;
  }
  if (tx_begin(s, msg, sizeof(msg)) != 0) {
    ice__free(body);
    tx_fail(s, run_id, msg);
    return;
  }
  sqlite3_bind_text(s->ins_event, 1, run_id, -1, SQLITE_STATIC);
  sqlite3_bind_int64(s->ins_event, 2,
                     json_integer_value(json_object_get(ev, "seq")));
  sqlite3_bind_text(s->ins_event, 3,
                    json_string_value(json_object_get(ev, "type")), -1,
                    SQLITE_STATIC);
  sqlite3_bind_text(s->ins_event, 4, body, -1, SQLITE_STATIC);
  rc = step_reset(s->ins_event);
  ice__free(body);
  if (rc != SQLITE_OK) {
    /* Noted for the run: its next commit fails with this message. */
    write_error(s, rc, msg, sizeof(msg));
    tx_fail(s, run_id, msg);
    return;
  }
  tx_note(s, run_id);
}

/* Right before the loop waits: commit what this turn wrote. A failure is
 * kept for the runs concerned (their next commit reports it). */
static void on_prepare(uv_prepare_t *h) {
  store_prep_t *p = h->data;
  char msg[512];

  if (p->s != NULL)
    tx_flush(p->s, msg, sizeof(msg));
}

static void prep_closed(uv_handle_t *h) {
  ice__free(h->data);
}

int ice_store_attach(ice_store_t *s, ice_engine_t *e) {
  store_prep_t *p;
  int rc;

  if (s == NULL || e == NULL)
    return ICE_EINVAL;
  if (s->engine != NULL)
    return s->engine == e ? 0 : ICE_EBUSY;
  p = ice__calloc(1, sizeof(*p));
  if (p == NULL)
    return ICE_ENOMEM;
  rc = ice_subscribe(e, NULL, on_event, s, &s->sub);
  if (rc != 0) {
    ice__free(p);
    return rc;
  }
  p->s = s;
  uv_prepare_init(ice_engine_loop(e), &p->h);
  p->h.data = p;
  uv_prepare_start(&p->h, on_prepare);
  /* It must not keep the loop alive by itself. */
  uv_unref((uv_handle_t *)&p->h);
  s->prep = p;
  s->engine = e;
  return 0;
}

void ice_store_detach(ice_store_t *s, ice_engine_t *e) {
  char msg[512];

  if (s == NULL || s->engine == NULL || s->engine != e)
    return;
  ice_unsubscribe(e, s->sub);
  s->sub = NULL;
  uv_prepare_stop(&s->prep->h);
  s->prep->s = NULL;
  uv_close((uv_handle_t *)&s->prep->h, prep_closed);
  s->prep = NULL;
  s->engine = NULL;
  /* What the last turn wrote; a failure stays noted for its runs. */
  tx_flush(s, msg, sizeof(msg));
}

/* ---- runs --------------------------------------------------------------- */

/* Runs one write statement (bound by the caller) in the open transaction,
 * then commits: begin and finish are the points where a run's state must
 * be on disk at once. */
static int write_now(ice_store_t *s, sqlite3_stmt *st, const char *run_id,
                     char *msg, size_t msglen) {
  int rc = step_reset(st);

  sqlite3_finalize(st);
  if (rc != SQLITE_OK) {
    write_error(s, rc, msg, msglen);
    tx_fail(s, run_id, msg);
    return ICE_EIO;
  }
  return tx_flush(s, msg, msglen) != 0 ? ICE_EIO : 0;
}

int ice_store_begin(ice_store_t *s, const char *run_id, const char *workflow,
                    const char *path, const char *hash, json_t *inputs,
                    char *msg, size_t msglen) {
  return ice_store_begin_tools(s, run_id, workflow, path, hash, inputs, NULL,
                               msg, msglen);
}

int ice_store_begin_tools(ice_store_t *s, const char *run_id,
                          const char *workflow, const char *path,
                          const char *hash, json_t *inputs, json_t *tools,
                          char *msg, size_t msglen) {
  sqlite3_stmt *st = NULL;
  char started[40], *in, *tl = NULL;
  int rc;

  if (s == NULL || run_id == NULL)
    return ICE_EINVAL;
  in = inputs != NULL ? ice_json_format(inputs, 0) : ice__strdup("{}");
  if (in == NULL)
    return ICE_ENOMEM;
  if (tools != NULL && (tl = ice_json_format(tools, 0)) == NULL) {
    ice__free(in);
    return ICE_ENOMEM;
  }
  if (tx_begin(s, msg, msglen) != 0) {
    ice__free(in);
    ice__free(tl);
    tx_fail(s, run_id, msg);
    return ICE_EIO;
  }
  /* A resumed run keeps its row (and started, and its place in the list,
   * and its tool files unless new ones are given); it is running again,
   * owned by this process. */
  rc = sqlite3_prepare_v2(
      s->db,
      "INSERT INTO runs(run_id, workflow, path, hash, inputs, status, "
      "started, finished, result, owner_pid, owner_start, tools) "
      "VALUES(?1, ?2, ?3, ?4, ?5, 'running', ?6, NULL, NULL, ?7, ?8, ?9) "
      "ON CONFLICT(run_id) DO UPDATE SET workflow = excluded.workflow, "
      "path = excluded.path, hash = excluded.hash, inputs = excluded.inputs, "
      "status = 'running', finished = NULL, owner_pid = excluded.owner_pid, "
      "owner_start = excluded.owner_start, "
      "tools = coalesce(excluded.tools, runs.tools)",
      -1, &st, NULL);
  if (rc != SQLITE_OK) {
    ice__free(in);
    ice__free(tl);
    write_error(s, rc, msg, msglen);
    tx_fail(s, run_id, msg);
    return ICE_EIO;
  }
  now_rfc3339(started, sizeof(started));
  sqlite3_bind_text(st, 1, run_id, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, workflow, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, path, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 4, hash, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 5, in, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 6, started, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 7, (sqlite3_int64)getpid());
  sqlite3_bind_int64(st, 8, s->self_start);
  if (tl != NULL)
    sqlite3_bind_text(st, 9, tl, -1, SQLITE_STATIC);
  rc = write_now(s, st, run_id, msg, msglen);
  ice__free(in);
  ice__free(tl);
  /* A new start: what failed before concerned an earlier attempt. */
  if (rc == 0)
    json_object_del(s->failed, run_id);
  return rc;
}

int ice_store_finish(ice_store_t *s, const char *run_id, json_t *result,
                     char *msg, size_t msglen) {
  sqlite3_stmt *st = NULL;
  const char *status = json_string_value(json_object_get(result, "status"));
  const char *workflow = json_string_value(json_object_get(result, "workflow"));
  char finished[40], *text;
  json_t *lost;
  int rc;

  if (s == NULL || run_id == NULL || result == NULL)
    return ICE_EINVAL;
  /* Rows of the run were lost to a failed write (a full disk): recorded as
   * ended, it would look finished and a resume would not go on from what
   * was committed. Its row stays `running`, the owner gone once it exits. */
  lost = json_object_get(s->failed, run_id);
  if (lost != NULL || s->broken) {
    snprintf(msg, msglen,
             "%s (the run stays as it was recorded, to be resumed from there)",
             lost != NULL ? json_string_value(lost)
                          : "out of memory: the run store lost a write");
    return ICE_EIO;
  }
  text = ice_json_format(result, 0);
  if (text == NULL)
    return ICE_ENOMEM;
  if (tx_begin(s, msg, msglen) != 0) {
    ice__free(text);
    tx_fail(s, run_id, msg);
    return ICE_EIO;
  }
  /* A run that never went through ice_store_begin still gets a row. */
  rc = sqlite3_prepare_v2(
      s->db,
      "INSERT INTO runs(run_id, workflow, status, started, finished, result) "
      "VALUES(?1, ?2, ?3, ?4, ?4, ?5) "
      "ON CONFLICT(run_id) DO UPDATE SET status = excluded.status, "
      "finished = excluded.finished, result = excluded.result",
      -1, &st, NULL);
  if (rc != SQLITE_OK) {
    ice__free(text);
    write_error(s, rc, msg, msglen);
    tx_fail(s, run_id, msg);
    return ICE_EIO;
  }
  now_rfc3339(finished, sizeof(finished));
  sqlite3_bind_text(st, 1, run_id, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, workflow, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, status != NULL ? status : "unknown", -1,
                    SQLITE_STATIC);
  sqlite3_bind_text(st, 4, finished, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 5, text, -1, SQLITE_STATIC);
  rc = write_now(s, st, run_id, msg, msglen);
  ice__free(text);
  return rc;
}

/* ---- reading ------------------------------------------------------------ */

/* A JSON column (NULL or text that does not parse: null). */
static json_t *json_col(sqlite3_stmt *st, int i) {
  const char *text = (const char *)sqlite3_column_text(st, i);
  json_t *v;

  json_error_t err;

  if (text == NULL)
    return sqlite3_errcode(sqlite3_db_handle(st)) == SQLITE_NOMEM ? NULL
                                                                  : json_null();
  v = json_loadb(text, (size_t)sqlite3_column_bytes(st, i), JSON_DECODE_ANY,
                 &err);
  /* NULL only on ENOMEM: text that does not parse reads as null. */
  if (v == NULL && json_error_code(&err) == json_error_out_of_memory)
    return NULL;
  return v != NULL ? v : json_null();
}

static json_t *text_col(sqlite3_stmt *st, int i) {
  const char *text = (const char *)sqlite3_column_text(st, i);

  if (text == NULL)
    return sqlite3_errcode(sqlite3_db_handle(st)) == SQLITE_NOMEM ? NULL
                                                                  : json_null();
  return json_string(text); /* NULL on ENOMEM */
}

/* Binds the run X and the range of its child runs' ids, "X." to "X/"
 * ('/' follows '.'), to ?1, ?2 and ?3. */
static int bind_tree(sqlite3_stmt *st, const char *run_id) {
  size_t n = strlen(run_id);
  char *lo = ice__malloc(n + 2), *hi = ice__malloc(n + 2);

  if (lo == NULL || hi == NULL) {
    ice__free(lo);
    ice__free(hi);
    return ICE_ENOMEM;
  }
  memcpy(lo, run_id, n);
  memcpy(hi, run_id, n);
  lo[n] = '.';
  hi[n] = '/';
  lo[n + 1] = hi[n + 1] = '\0';
  sqlite3_bind_text(st, 1, run_id, -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 2, lo, -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 3, hi, -1, SQLITE_TRANSIENT);
  ice__free(lo);
  ice__free(hi);
  return 0;
}

int ice_store_load(ice_store_t *s, const char *run_id, json_t **out, char *msg,
                   size_t msglen) {
  sqlite3_stmt *st = NULL;
  json_t *o = NULL, *records;
  int rc;

  *out = NULL;
  if (s == NULL || run_id == NULL)
    return ICE_EINVAL;
  rc = sqlite3_prepare_v2(
      s->db,
      "SELECT workflow, path, hash, inputs, status, started, finished, "
      "result, owner_pid, owner_start, "
      "max(coalesce((SELECT max(seq) FROM events WHERE run_id = ?1), 0), "
      "coalesce((SELECT max(seq) FROM records WHERE run_id = ?1), 0)), "
      "tools "
      "FROM runs WHERE run_id = ?1",
      -1, &st, NULL);
  if (rc != SQLITE_OK)
    return read_error(s, rc, msg, msglen);
  sqlite3_bind_text(st, 1, run_id, -1, SQLITE_STATIC);
  rc = sqlite3_step(st);
  if (rc == SQLITE_DONE) {
    sqlite3_finalize(st);
    snprintf(msg, msglen, "no run '%s' in the run store '%s'", run_id, s->path);
    return ICE_ENOENT;
  }
  if (rc != SQLITE_ROW) {
    sqlite3_finalize(st);
    return read_error(s, rc, msg, msglen);
  }
  {
    const char *status = (const char *)sqlite3_column_text(st, 4);
    int alive = status != NULL && strcmp(status, "running") == 0 &&
                sqlite3_column_type(st, 8) != SQLITE_NULL &&
                owner_alive((long)sqlite3_column_int64(st, 8),
                            sqlite3_column_type(st, 9) == SQLITE_NULL
                                ? -1
                                : sqlite3_column_int64(st, 9));
    int bad = (o = json_object()) == NULL;
    bad = bad || json_object_set_new(o, "run_id", json_string(run_id)) ||
          json_object_set_new(o, "workflow", text_col(st, 0)) ||
          json_object_set_new(o, "path", text_col(st, 1)) ||
          json_object_set_new(o, "hash", text_col(st, 2)) ||
          json_object_set_new(o, "inputs", json_col(st, 3)) ||
          json_object_set_new(o, "status", text_col(st, 4)) ||
          json_object_set_new(o, "started", text_col(st, 5)) ||
          json_object_set_new(o, "finished", text_col(st, 6)) ||
          json_object_set_new(o, "result", json_col(st, 7)) ||
          json_object_set_new(o, "owner_alive", json_boolean(alive)) ||
          json_object_set_new(o, "last_seq",
                              json_integer(sqlite3_column_int64(st, 10))) ||
          json_object_set_new(o, "tools", json_col(st, 11));
    if (bad || (records = json_array()) == NULL ||
        json_object_set_new(o, "records", records) != 0) {
      sqlite3_finalize(st);
      json_decref(o);
      return ICE_ENOMEM;
    }
  }
  sqlite3_finalize(st);
  st = NULL;
  rc = sqlite3_prepare_v2(s->db,
                          "SELECT body FROM records WHERE run_id = ?1 OR "
                          "(run_id >= ?2 AND run_id < ?3) ORDER BY id",
                          -1, &st, NULL);
  if (rc == SQLITE_OK && bind_tree(st, run_id) != 0)
    rc = SQLITE_NOMEM;
  while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
    json_t *rec = json_col(st, 0);
    rc = SQLITE_OK;
    /* A row that does not parse is left out: a restore takes nothing on
     * trust anyway, and the rest of the run is still worth having. */
    if (rec == NULL ||
        (json_is_object(rec) && json_array_append_new(records, rec) != 0)) {
      rc = SQLITE_NOMEM;
      break;
    }
    if (!json_is_object(rec))
      json_decref(rec);
  }
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE) {
    json_decref(o);
    return rc == SQLITE_NOMEM ? ICE_ENOMEM : read_error(s, rc, msg, msglen);
  }
  *out = o;
  return 0;
}

int ice_store_runs(ice_store_t *s, size_t limit, json_t **out, char *msg,
                   size_t msglen) {
  sqlite3_stmt *st = NULL;
  json_t *list;
  int rc;

  *out = NULL;
  if (s == NULL)
    return ICE_EINVAL;
  rc = sqlite3_prepare_v2(s->db,
                          "SELECT run_id, status, workflow, started FROM runs "
                          "ORDER BY started DESC, rowid DESC LIMIT ?1",
                          -1, &st, NULL);
  if (rc != SQLITE_OK)
    return read_error(s, rc, msg, msglen);
  sqlite3_bind_int64(st, 1, limit == 0 ? -1 : (sqlite3_int64)limit);
  list = json_array();
  while (list != NULL && (rc = sqlite3_step(st)) == SQLITE_ROW) {
    json_t *cols[4];
    for (int i = 0; i < 4; i++)
      cols[i] = text_col(st, i);
    if (json_array_append_new(list,
                              json_pack("{s:o,s:o,s:o,s:o}", "run_id", cols[0],
                                        "status", cols[1], "workflow", cols[2],
                                        "started", cols[3])) != 0) {
      rc = SQLITE_NOMEM;
      break;
    }
  }
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE) {
    json_decref(list);
    return rc == SQLITE_NOMEM || list == NULL ? ICE_ENOMEM
                                              : read_error(s, rc, msg, msglen);
  }
  *out = list;
  return 0;
}

int ice_store_events(ice_store_t *s, const char *run_id, ice_event_cb cb,
                     void *data, char *msg, size_t msglen) {
  sqlite3_stmt *st = NULL;
  int rc;

  if (s == NULL || run_id == NULL || cb == NULL)
    return ICE_EINVAL;
  rc = sqlite3_prepare_v2(s->db, "SELECT 1 FROM runs WHERE run_id = ?1", -1,
                          &st, NULL);
  if (rc != SQLITE_OK)
    return read_error(s, rc, msg, msglen);
  sqlite3_bind_text(st, 1, run_id, -1, SQLITE_STATIC);
  rc = sqlite3_step(st);
  sqlite3_finalize(st);
  st = NULL;
  if (rc == SQLITE_DONE) {
    snprintf(msg, msglen, "no run '%s' in the run store '%s'", run_id, s->path);
    return ICE_ENOENT;
  }
  if (rc != SQLITE_ROW)
    return read_error(s, rc, msg, msglen);
  /* Emission order: each run's seq order, child runs' events where they
   * happened. */
  rc = sqlite3_prepare_v2(s->db,
                          "SELECT body FROM events WHERE run_id = ?1 OR "
                          "(run_id >= ?2 AND run_id < ?3) ORDER BY id",
                          -1, &st, NULL);
  if (rc != SQLITE_OK)
    return read_error(s, rc, msg, msglen);
  if (bind_tree(st, run_id) != 0) {
    sqlite3_finalize(st);
    return ICE_ENOMEM;
  }
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    json_t *ev = json_col(st, 0);
    if (ev == NULL) {
      rc = SQLITE_NOMEM;
      break;
    }
    if (json_is_object(ev))
      cb(ev, data);
    json_decref(ev);
  }
  sqlite3_finalize(st);
  if (rc == SQLITE_NOMEM) {
    snprintf(msg, msglen, "out of memory");
    return ICE_ENOMEM;
  }
  return rc == SQLITE_DONE ? 0 : read_error(s, rc, msg, msglen);
}

/* ---- hash --------------------------------------------------------------- */

char *ice_store_hash(const char *text, size_t len) {
  uint64_t h = ice__fnv1a64(text, len, 0);
  char *out = ice__malloc(32);

  if (out == NULL)
    return NULL;
  snprintf(out, 32, "fnv1a64:%016llx", (unsigned long long)h);
  return out;
}

/* ---- the memo of use_cache outputs -------------------------------------- */

static double wall_ms(void) {
  struct timespec ts;

  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

json_t *ice_store_cache_get(void *store, const char *key, double max_age_ms) {
  ice_store_t *s = store;
  sqlite3_stmt *st = NULL;
  json_t *out = NULL;

  if (s == NULL || key == NULL ||
      sqlite3_prepare_v2(s->db,
                         "SELECT output, at_ms FROM cache WHERE key = ?1", -1,
                         &st, NULL) != SQLITE_OK)
    return NULL;
  sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
  if (sqlite3_step(st) == SQLITE_ROW &&
      (max_age_ms <= 0 ||
       wall_ms() - (double)sqlite3_column_int64(st, 1) <= max_age_ms)) {
    const char *text = (const char *)sqlite3_column_text(st, 0);
    /* A row that does not parse (a damaged store) is a miss, not an
     * error: the node runs again. */
    out = text != NULL ? json_loads(text, JSON_DECODE_ANY, NULL) : NULL;
  }
  sqlite3_finalize(st);
  return out;
}

int ice_store_cache_put(void *store, const char *key, json_t *output) {
  ice_store_t *s = store;
  sqlite3_stmt *st = NULL;
  char *text, msg[256];
  int rc;

  if (s == NULL || key == NULL || output == NULL)
    return ICE_EINVAL;
  text = ice_json_format(output, 0);
  if (text == NULL)
    return ICE_ENOMEM;
  /* In the open transaction, flushed with the run's commits. */
  if (tx_begin(s, msg, sizeof(msg)) != 0 ||
      sqlite3_prepare_v2(s->db,
                         "INSERT OR REPLACE INTO cache (key, output, at_ms) "
                         "VALUES (?1, ?2, ?3)",
                         -1, &st, NULL) != SQLITE_OK) {
    ice__free(text);
    return ICE_EIO;
  }
  sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, text, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 3, (sqlite3_int64)wall_ms());
  rc = sqlite3_step(st);
  sqlite3_finalize(st);
  ice__free(text);
  if (s->prep == NULL)
    tx_flush(s, msg, sizeof(msg));
  return rc == SQLITE_DONE ? 0 : ICE_EIO;
}
