/* The run store (SPEC §9, issue 8), through the public API only, on real
 * SQLite files in a temporary directory: a run recorded through the
 * commit hook and the attached engine, loaded back and restored without
 * running again what completed; events of a run and its child runs; the
 * list of runs; the owner of a running run; and bad stores: unknown runs,
 * garbage, a truncated file, an unwritable directory, a full disk. */
#include "helpers.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char g_dir[64];
static char g_path[128];
static json_t *g_counts; /* instance key -> times the `count` tool ran */
static int g_answer;     /* `gate` completes when set, else parks */

/* `count`: records that its node instance ran; outputs {"key": KEY}. */
static void count_start(ice_task_t *t, json_t *args, void *data) {
  const char *key = ice_task_key(t);
  json_int_t n = json_integer_value(json_object_get(g_counts, key)) + 1;

  (void)args;
  (void)data;
  json_object_set_new(g_counts, key, json_integer(n));
  ice_task_done(t, json_pack("{s:s}", "key", key));
}

/* `gate`: a human stand-in: completes when g_answer is set, else parks. */
static void gate_start(ice_task_t *t) {
  if (g_answer) {
    ice_task_done(t, json_pack("{s:b}", "answered", 1));
    return;
  }
  assert_int_equal(ice_task_wait(t, json_pack("{s:b}", "asked", 1), 0), 0);
}

static void gate_cancel(ice_task_t *t) {
  ice_task_fail(t, "cancelled", "gate stopped");
}

static const ice_executor_t gate_ex = {.abi = ICE_EXECUTOR_ABI,
                                       .type = "gate",
                                       .start = gate_start,
                                       .cancel = gate_cancel};

static ice_engine_t *mk(void) {
  ice_engine_t *e = NULL;
  ice_engine_opts_t o = ICE_ENGINE_OPTS_INIT;
  ice_tool_t count = {"count", count_start, NULL, NULL};

  o.virtual_clock = 1;
  assert_int_equal(ice_engine_new(&e, NULL, &o), 0);
  assert_int_equal(ice_register_node(e, &gate_ex), 0);
  assert_int_equal(ice_register_tool(e, &count), 0);
  return e;
}

static ice_store_t *open_store(void) {
  ice_store_t *s = NULL;
  char msg[512] = "";

  if (ice_store_open(&s, g_path, msg, sizeof(msg)) != 0)
    fail_msg("ice_store_open: %s", msg);
  return s;
}

static void close_store(ice_store_t *s) {
  char msg[512] = "";

  if (ice_store_close(s, msg, sizeof(msg)) != 0)
    fail_msg("ice_store_close: %s", msg);
}

static int setup(void **state) {
  (void)state;
  snprintf(g_dir, sizeof(g_dir), "/tmp/ice-store-XXXXXX");
  assert_non_null(mkdtemp(g_dir));
  /* A directory that does not exist yet: the store creates it. */
  snprintf(g_path, sizeof(g_path), "%s/state/ice/runs.db", g_dir);
  g_counts = json_object();
  g_answer = 0;
  return 0;
}

static int teardown(void **state) {
  char cmd[128];

  (void)state;
  json_decref(g_counts);
  snprintf(cmd, sizeof(cmd), "chmod -R u+rwx %s; rm -rf %s", g_dir, g_dir);
  if (system(cmd) != 0)
    return -1;
  return 0;
}

/* Runs wf (our reference dropped) with the store as commit hook, recorded
 * as started and finished; restored from `from` (run_id, seq) when given.
 * Returns a copy of the result. */
static json_t *run_stored(ice_engine_t *e, ice_store_t *s, ice_workflow_t *wf,
                          json_t *from, const char *run_id,
                          unsigned long long seq) {
  ice_run_opts_t o = ICE_RUN_OPTS_INIT;
  ice_run_t *r = NULL;
  json_t *res;
  char msg[512] = "";

  o.commit = ice_store_commit;
  o.commit_data = s;
  o.restore = from;
  o.run_id = run_id;
  o.seq = seq;
  o.suspend_after = 0;
  assert_int_equal(ice_store_attach(s, e), 0);
  assert_int_equal(ice_run_new(e, wf, &o, &r, NULL), 0);
  if (ice_store_begin(s, ice_run_id(r), ice_workflow_name(wf), "t.yaml",
                      "fnv1a64:0", NULL, msg, sizeof(msg)) != 0)
    fail_msg("ice_store_begin: %s", msg);
  ice_workflow_free(wf);
  assert_int_equal(ice_run_execute(r), 0);
  res = json_deep_copy(ice_run_result(r));
  if (ice_store_finish(s, ice_run_id(r), res, msg, sizeof(msg)) != 0)
    fail_msg("ice_store_finish: %s", msg);
  ice_run_free(r);
  ice_store_detach(s, e);
  return res;
}

static const char *status_of(json_t *res) {
  return json_string_value(json_object_get(res, "status"));
}

/* Collects events (deep copies, in delivery order). */
static void collect(json_t *ev, void *data) {
  json_array_append_new(data, json_deep_copy(ev));
}

/* ---- tests --------------------------------------------------------------- */

static const char *const gated =
    "nodes:\n"
    "  - {id: a, type: tool, tool_name: count}\n"
    "  - id: L\n    type: loop\n    dependencies: [a]\n"
    "    items_source: '[1, 2, 3]'\n"
    "    body:\n"
    "      - {id: before, type: tool, tool_name: count}\n"
    "      - {id: g, type: gate}\n"
    "      - {id: after, type: tool, tool_name: count}\n"
    "  - {id: z, type: tool, tool_name: count, dependencies: [L]}\n";

/* A run stops as waiting; a new store handle (a new process) loads its
 * records; restored from them it completes without running again what
 * completed, keeps its id and continues its event seq. */
static void test_record_load_restore(void **state) {
  ice_engine_t *e = mk();
  ice_store_t *s = open_store();
  json_t *first, *run, *resumed, *evs, *ev, *n;
  char *id, msg[512] = "";
  const char *key;
  json_int_t last_seq, prev = 0;
  size_t i;

  (void)state;
  first = run_stored(e, s, th_wf(e, gated), NULL, NULL, 0);
  assert_string_equal(status_of(first), "waiting");
  id = strdup(json_string_value(json_object_get(first, "run_id")));
  close_store(s);

  s = open_store();
  assert_int_equal(ice_store_load(s, id, &run, msg, sizeof(msg)), 0);
  assert_string_equal(status_of(run), "waiting");
  assert_string_equal(json_string_value(json_object_get(run, "path")),
                      "t.yaml");
  th_assert_json(json_object_get(run, "inputs"), "{}");
  assert_false(json_is_true(json_object_get(run, "owner_alive")));
  assert_true(json_equal(json_object_get(run, "result"), first));
  assert_true(json_is_string(json_object_get(run, "finished")));
  /* a, then before and g of each of the 3 items: every one of them has a
   * record, and the gates' last is `waiting` with the state they saved. */
  /* Loop items run one at a time: a, L, and item 0's `before` and gate,
   * whose last record is `waiting` with the state it saved. */
  {
    json_t *recs = json_object_get(run, "records"), *got = json_array();
    json_array_foreach(recs, i, ev) {
      json_array_append_new(got, json_pack("[O,O]", json_object_get(ev, "key"),
                                           json_object_get(ev, "change")));
    }
    th_assert_json(got, "[[\"a\",\"running\"],[\"a\",\"completed\"],"
                        "[\"L\",\"running\"],[\"L[0]/before\",\"running\"],"
                        "[\"L[0]/before\",\"completed\"],"
                        "[\"L[0]/g\",\"running\"],[\"L[0]/g\",\"waiting\"]]");
    json_decref(got);
    th_assert_json(json_object_get(json_array_get(recs, 6), "state"),
                   "{\"asked\":true}");
    th_assert_json(json_object_get(json_array_get(recs, 1), "output"),
                   "{\"key\":\"a\"}");
  }
  last_seq = json_integer_value(json_object_get(run, "last_seq"));
  assert_true(last_seq > 0);

  g_answer = 1;
  resumed = run_stored(e, s, th_wf(e, gated), json_object_get(run, "records"),
                       id, (unsigned long long)last_seq);
  assert_string_equal(status_of(resumed), "completed");
  assert_string_equal(json_string_value(json_object_get(resumed, "run_id")),
                      id);
  json_object_foreach(g_counts, key, n) {
    if (json_integer_value(n) != 1)
      fail_msg("%s ran %lld times", key, (long long)json_integer_value(n));
  }
  /* a, z, and before and after of 3 items. */
  assert_int_equal(json_object_size(g_counts), 8);
  json_decref(run);
  assert_int_equal(ice_store_load(s, id, &run, msg, sizeof(msg)), 0);
  assert_string_equal(status_of(run), "completed");
  /* One event stream across both processes: seq 1, 2, 3, ... */
  evs = json_array();
  assert_int_equal(ice_store_events(s, id, collect, evs, msg, sizeof(msg)), 0);
  assert_true(json_array_size(evs) > 20);
  json_array_foreach(evs, i, ev) {
    json_int_t seq = json_integer_value(json_object_get(ev, "seq"));
    if (seq != prev + 1)
      fail_msg("event %zu has seq %lld after %lld", i, (long long)seq,
               (long long)prev);
    prev = seq;
  }
  assert_true(json_integer_value(json_object_get(run, "last_seq")) == prev);
  json_decref(evs);
  json_decref(run);
  json_decref(first);
  json_decref(resumed);
  free(id);
  close_store(s);
  assert_int_equal(ice_engine_free(e), 0);
}

/* The store's events of a run are exactly what a subscriber saw, child
 * runs' included (their ids start with the parent's and a dot), in the
 * order they were emitted. */
static void test_events_with_child_run(void **state) {
  ice_engine_t *e = mk();
  ice_store_t *s = open_store();
  char top[128], child[128], msg[512] = "";
  ice_workflow_t *wf = NULL;
  ice_diags_t d = {0};
  ice_sub_t *sub;
  json_t *seen = json_array(), *stored = json_array(), *res, *ev;
  const char *id;
  size_t i, nchild = 0;
  FILE *f;

  (void)state;
  snprintf(child, sizeof(child), "%s/child.yaml", g_dir);
  snprintf(top, sizeof(top), "%s/top.yaml", g_dir);
  f = fopen(child, "w");
  fputs("nodes:\n"
        "  - {id: c1, type: tool, tool_name: count}\n"
        "  - {id: c2, type: tool, tool_name: count, dependencies: [c1]}\n",
        f);
  fclose(f);
  f = fopen(top, "w");
  fputs("nodes:\n"
        "  - {id: x, type: tool, tool_name: count}\n"
        "  - {id: S, type: workflow, workflow_ref: child.yaml, "
        "dependencies: [x]}\n"
        "  - {id: y, type: tool, tool_name: count, dependencies: [S]}\n",
        f);
  fclose(f);
  assert_int_equal(ice_workflow_load(e, top, &wf, &d), 0);
  assert_int_equal(ice_subscribe(e, NULL, collect, seen, &sub), 0);
  res = run_stored(e, s, wf, NULL, NULL, 0);
  ice_unsubscribe(e, sub);
  assert_string_equal(status_of(res), "completed");
  id = json_string_value(json_object_get(res, "run_id"));
  assert_int_equal(ice_store_events(s, id, collect, stored, msg, sizeof(msg)),
                   0);
  assert_true(json_equal(seen, stored));
  json_array_foreach(stored, i, ev) {
    const char *rid = json_string_value(json_object_get(ev, "run_id"));
    if (strcmp(rid, id) != 0) {
      assert_int_equal(strncmp(rid, id, strlen(id)), 0);
      assert_int_equal(rid[strlen(id)], '.');
      nchild++;
    }
  }
  assert_true(nchild >= 4); /* started, c1 and c2 started/completed, ... */
  /* The child's records are the parent's too. */
  {
    json_t *run, *rec;
    size_t nrec = 0;
    assert_int_equal(ice_store_load(s, id, &run, msg, sizeof(msg)), 0);
    json_array_foreach(json_object_get(run, "records"), i, rec) {
      if (strcmp(json_string_value(json_object_get(rec, "run_id")), id) != 0)
        nrec++;
    }
    assert_int_equal(nrec, 4); /* c1, c2: running, completed */
    json_decref(run);
  }
  json_decref(seen);
  json_decref(stored);
  json_decref(res);
  close_store(s);
  assert_int_equal(ice_engine_free(e), 0);
}

/* A run with the store as commit hook but not attached: each record is
 * written at once (no loop turn to group them). */
static void test_commit_without_attach(void **state) {
  ice_engine_t *e = mk();
  ice_store_t *s = open_store();
  ice_run_opts_t o = ICE_RUN_OPTS_INIT;
  ice_run_t *r = NULL;
  ice_workflow_t *wf;
  json_t *run;
  char msg[512] = "";

  (void)state;
  o.commit = ice_store_commit;
  o.commit_data = s;
  wf = th_wf(e, "nodes:\n"
                "  - {id: a, type: tool, tool_name: count}\n"
                "  - {id: b, type: tool, tool_name: count, "
                "dependencies: [a]}\n");
  assert_int_equal(ice_run_new(e, wf, &o, &r, NULL), 0);
  ice_workflow_free(wf);
  assert_int_equal(ice_store_begin(s, ice_run_id(r), "t", NULL, NULL, NULL, msg,
                                   sizeof(msg)),
                   0);
  assert_int_equal(ice_run_execute(r), 0);
  /* Readable by another handle before any finish or close. */
  {
    ice_store_t *other = open_store();
    assert_int_equal(
        ice_store_load(other, ice_run_id(r), &run, msg, sizeof(msg)), 0);
    assert_int_equal(json_array_size(json_object_get(run, "records")), 4);
    /* Still `running`, owned by this live process. */
    assert_string_equal(status_of(run), "running");
    assert_true(json_is_true(json_object_get(run, "owner_alive")));
    assert_true(json_is_null(json_object_get(run, "finished")));
    json_decref(run);
    close_store(other);
  }
  ice_run_free(r);
  close_store(s);
  assert_int_equal(ice_engine_free(e), 0);
}

/* A run left `running` by a process that died: its owner is not alive. */
static void test_owner_dead(void **state) {
  ice_store_t *s;
  json_t *run;
  char msg[512] = "";
  pid_t pid;
  int st;

  (void)state;
  s = open_store();
  close_store(s);
  pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    ice_store_t *cs = NULL;
    char m[512];
    int rc = ice_store_open(&cs, g_path, m, sizeof(m)) != 0 ||
             ice_store_begin(cs, "orphan", "w", "w.yaml", "fnv1a64:1", NULL, m,
                             sizeof(m)) != 0;
    /* Dies without finishing the run (nor closing the store). */
    _exit(rc);
  }
  assert_int_equal(waitpid(pid, &st, 0), pid);
  assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  s = open_store();
  assert_int_equal(ice_store_load(s, "orphan", &run, msg, sizeof(msg)), 0);
  assert_string_equal(status_of(run), "running");
  assert_false(json_is_true(json_object_get(run, "owner_alive")));
  assert_true(json_is_null(json_object_get(run, "result")));
  th_assert_json(json_object_get(run, "records"), "[]");
  th_assert_json(json_object_get(run, "last_seq"), "0");
  json_decref(run);
  close_store(s);
}

static void test_unknown_run(void **state) {
  ice_store_t *s = open_store();
  json_t *run = NULL, *evs = json_array();
  char msg[512] = "", want[256];

  (void)state;
  assert_int_equal(ice_store_load(s, "nope", &run, msg, sizeof(msg)),
                   ICE_ENOENT);
  assert_null(run);
  snprintf(want, sizeof(want), "no run 'nope' in the run store '%s'", g_path);
  assert_string_equal(msg, want);
  msg[0] = '\0';
  assert_int_equal(ice_store_events(s, "nope", collect, evs, msg, sizeof(msg)),
                   ICE_ENOENT);
  assert_string_equal(msg, want);
  assert_int_equal(json_array_size(evs), 0);
  json_decref(evs);
  close_store(s);
}

/* Newest first by start time, then by insertion; `limit`. 1,000 runs are
 * listed fast (the time is printed, not asserted). */
static void test_runs_listing(void **state) {
  ice_store_t *s = open_store();
  json_t *list, *res;
  char msg[512] = "", id[32];
  struct timespec t0, t1;

  (void)state;
  for (int i = 0; i < 1000; i++) {
    snprintf(id, sizeof(id), "run-%04d", i);
    assert_int_equal(ice_store_begin(s, id, i % 2 ? "odd" : "even", NULL, NULL,
                                     NULL, msg, sizeof(msg)),
                     0);
    res = json_pack("{s:s,s:s}", "status", i % 3 ? "completed" : "failed",
                    "workflow", i % 2 ? "odd" : "even");
    assert_int_equal(ice_store_finish(s, id, res, msg, sizeof(msg)), 0);
    json_decref(res);
  }
  close_store(s);
  s = open_store();
  clock_gettime(CLOCK_MONOTONIC, &t0);
  assert_int_equal(ice_store_runs(s, 0, &list, msg, sizeof(msg)), 0);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  print_message("ice_store_runs over 1,000 runs: %.3f ms\n",
                (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
                    (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
  assert_int_equal(json_array_size(list), 1000);
  /* Several runs start in one millisecond: the newest inserted first. */
  for (size_t i = 0; i < 1000; i++) {
    json_t *r = json_array_get(list, i);
    snprintf(id, sizeof(id), "run-%04zu", 999 - i);
    assert_string_equal(json_string_value(json_object_get(r, "run_id")), id);
  }
  {
    json_t *r = json_array_get(list, 0);
    const char *started = json_string_value(json_object_get(r, "started"));
    assert_string_equal(status_of(r), "failed"); /* 999 % 3 == 0 */
    assert_string_equal(json_string_value(json_object_get(r, "workflow")),
                        "odd");
    /* RFC 3339, UTC, milliseconds: 2024-05-01T12:00:00.123Z */
    assert_non_null(started);
    assert_int_equal(strlen(started), 24);
    assert_int_equal(started[10], 'T');
    assert_int_equal(started[23], 'Z');
  }
  json_decref(list);
  assert_int_equal(ice_store_runs(s, 2, &list, msg, sizeof(msg)), 0);
  assert_int_equal(json_array_size(list), 2);
  assert_string_equal(
      json_string_value(json_object_get(json_array_get(list, 1), "run_id")),
      "run-0998");
  assert_string_equal(
      json_string_value(json_object_get(json_array_get(list, 1), "status")),
      "completed");
  json_decref(list);
  close_store(s);
}

static void expect_open_error(const char *path, const char *part) {
  ice_store_t *s = NULL;
  char msg[512] = "", want[300];

  if (ice_store_open(&s, path, msg, sizeof(msg)) != ICE_EIO)
    fail_msg("%s opened (%s)", path, msg);
  assert_null(s);
  snprintf(want, sizeof(want), "cannot open the run store '%s': ", path);
  if (strncmp(msg, want, strlen(want)) != 0 || strstr(msg, part) == NULL)
    fail_msg("message: %s\nwant: %s...%s", msg, want, part);
}

static void write_file(const char *path, const char *text, size_t len) {
  FILE *f = fopen(path, "w");

  assert_non_null(f);
  assert_int_equal(fwrite(text, 1, len, f), len);
  fclose(f);
}

static void test_not_a_store(void **state) {
  char path[128];
  const char junk[] = "this is not a SQLite database, just some text that "
                      "is long enough to hold a header of one hundred bytes "
                      "or so, and then some.\n";
  sqlite3 *db;

  (void)state;
  snprintf(path, sizeof(path), "%s/junk.db", g_dir);
  write_file(path, junk, sizeof(junk) - 1);
  expect_open_error(path,
                    "the file is not a run store (file is not a database)");
  /* Another program's SQLite database. */
  snprintf(path, sizeof(path), "%s/other.db", g_dir);
  assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
  assert_int_equal(sqlite3_exec(db, "CREATE TABLE t(x)", NULL, NULL, NULL),
                   SQLITE_OK);
  sqlite3_close(db);
  expect_open_error(path, "the file is not a run store (a SQLite database of "
                          "another program)");
  /* A store written by a newer ice. */
  snprintf(path, sizeof(path), "%s/newer.db", g_dir);
  assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
  assert_int_equal(
      sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL),
      SQLITE_OK);
  sqlite3_close(db);
  expect_open_error(path, "schema version 99; this ice knows up to 2");
}

/* A store cut short: a clear error when it is opened or read, no crash. */
static void test_truncated(void **state) {
  ice_store_t *s = open_store();
  char msg[512] = "", id[32], want[256];
  json_t *list = NULL, *res = json_pack("{s:s}", "status", "completed");
  struct stat st;
  int rc, fd;

  (void)state;
  for (int i = 0; i < 300; i++) {
    snprintf(id, sizeof(id), "run-%04d-with-a-longer-id-to-fill-pages", i);
    assert_int_equal(
        ice_store_begin(s, id, "w", NULL, NULL, NULL, msg, sizeof(msg)), 0);
    assert_int_equal(ice_store_finish(s, id, res, msg, sizeof(msg)), 0);
  }
  json_decref(res);
  close_store(s); /* checkpoints the WAL into the file */
  assert_int_equal(stat(g_path, &st), 0);
  assert_true(st.st_size > 8 * 4096);
  fd = open(g_path, O_WRONLY);
  assert_true(fd >= 0);
  assert_int_equal(ftruncate(fd, st.st_size / 2), 0);
  close(fd);
  s = NULL;
  rc = ice_store_open(&s, g_path, msg, sizeof(msg));
  if (rc == 0) {
    rc = ice_store_runs(s, 0, &list, msg, sizeof(msg));
    assert_int_equal(rc, ICE_EIO);
    assert_null(list);
    snprintf(want, sizeof(want), "cannot read the run store '%s': ", g_path);
    if (strncmp(msg, want, strlen(want)) != 0 ||
        strstr(msg, "malformed") == NULL)
      fail_msg("message: %s", msg);
    print_message("%s\n", msg);
    close_store(s);
  } else {
    assert_int_equal(rc, ICE_EIO);
    snprintf(want, sizeof(want), "cannot open the run store '%s': ", g_path);
    assert_int_equal(strncmp(msg, want, strlen(want)), 0);
    print_message("%s\n", msg);
  }
}

static void test_unwritable_places(void **state) {
  char path[128], file[128], ro[128];

  (void)state;
  /* The parent "directory" is a regular file: fails even for root. */
  snprintf(file, sizeof(file), "%s/plain", g_dir);
  write_file(file, "x", 1);
  snprintf(path, sizeof(path), "%s/sub/runs.db", file);
  expect_open_error(path, "'/tmp/");
  expect_open_error(path, "/plain' is not a directory");
  /* A read-only directory (root writes there anyway: then skipped). */
  snprintf(ro, sizeof(ro), "%s/ro", g_dir);
  assert_int_equal(mkdir(ro, 0500), 0);
  if (access(ro, W_OK) != 0) {
    snprintf(path, sizeof(path), "%s/runs.db", ro);
    expect_open_error(path, "cannot create it in the directory");
  }
  /* A device or a directory is no store. */
  expect_open_error("/dev/null", "'/dev/null': not a regular file");
  expect_open_error(g_dir, "not a regular file");
  /* The default path honours ICE_HOME. */
  {
    ice_store_t *s = NULL;
    char msg[512], home[128], want[160];
    snprintf(home, sizeof(home), "%s/home/ice", g_dir);
    setenv("ICE_HOME", home, 1);
    assert_int_equal(ice_store_open(&s, NULL, msg, sizeof(msg)), 0);
    snprintf(want, sizeof(want), "%s/runs.db", home);
    assert_string_equal(ice_store_path(s), want);
    close_store(s);
    unsetenv("ICE_HOME");
    assert_int_equal(access(want, F_OK), 0);
  }
}

/* A full disk (RLIMIT_FSIZE) in a child process: the run fails with a
 * `Commit:` error naming the store, and the file is still a valid
 * database with the run's earlier records in it. */
static void test_full_disk(void **state) {
  pid_t pid;
  int st;
  sqlite3 *db;
  sqlite3_stmt *q;
  json_t *run;
  ice_store_t *s;
  char msg[512] = "";

  (void)state;
  s = open_store();
  close_store(s);
  pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    ice_engine_t *e = NULL;
    ice_engine_opts_t eo = ICE_ENGINE_OPTS_INIT;
    ice_store_t *cs = NULL;
    ice_workflow_t *wf = NULL;
    ice_run_t *r = NULL;
    ice_run_opts_t o = ICE_RUN_OPTS_INIT;
    json_t *doc, *nodes = json_array(), *res;
    struct rlimit rl = {256 * 1024, RLIM_INFINITY}; /* room comes back */
    const char *err;
    char m[512], nid[16], prev[16];

    eo.virtual_clock = 1;
    if (ice_engine_new(&e, NULL, &eo) != 0 ||
        ice_store_open(&cs, g_path, m, sizeof(m)) != 0)
      _exit(10);
    /* Each node sleeps: one loop turn, one transaction, per node. */
    for (int i = 0; i < 400; i++) {
      snprintf(nid, sizeof(nid), "n%d", i);
      json_array_append_new(
          nodes,
          i == 0
              ? json_pack("{s:s,s:s,s:s,s:{s:f}}", "id", nid, "type", "tool",
                          "tool_name", "sleep", "tool_args", "seconds", 0.001)
              : json_pack("{s:s,s:s,s:s,s:{s:f},s:[s]}", "id", nid, "type",
                          "tool", "tool_name", "sleep", "tool_args", "seconds",
                          0.001, "dependencies", prev));
      memcpy(prev, nid, sizeof(nid));
    }
    doc = json_pack("{s:s,s:o}", "name", "big", "nodes", nodes);
    if (ice_workflow_from_json(e, "big", doc, &wf, NULL) != 0)
      _exit(11);
    json_decref(doc);
    o.commit = ice_store_commit;
    o.commit_data = cs;
    if (ice_store_attach(cs, e) != 0 || ice_run_new(e, wf, &o, &r, NULL) != 0 ||
        ice_store_begin(cs, ice_run_id(r), "big", "big.yaml", "fnv1a64:2", NULL,
                        m, sizeof(m)) != 0)
      _exit(12);
    signal(SIGXFSZ, SIG_IGN);
    if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
      _exit(13);
    if (ice_run_execute(r) != 0)
      _exit(14);
    res = ice_run_result(r);
    err = json_string_value(json_array_get(json_object_get(res, "errors"), 0));
    if (strcmp(status_of(res), "failed") != 0 || err == NULL ||
        strncmp(err, "Commit: the run store is full: cannot write '",
                strlen("Commit: the run store is full: cannot write '")) != 0) {
      fprintf(stderr, "status %s, error %s\n", status_of(res),
              err != NULL ? err : "(none)");
      _exit(15);
    }
    fprintf(stderr, "%s\n", err);
    /* Its end is not recorded, even with room again: rows were lost, and
     * a run recorded as failed would not be resumed from what was
     * committed. */
    rl.rlim_cur = RLIM_INFINITY;
    if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
      _exit(17);
    if (ice_store_finish(cs, ice_run_id(r), res, m, sizeof(m)) == 0 ||
        strncmp(m, "the run store is full: ",
                strlen("the run store is full: ")) != 0) {
      fprintf(stderr, "finish: %s\n", m);
      _exit(16);
    }
    _exit(0);
  }
  assert_int_equal(waitpid(pid, &st, 0), pid);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
    fail_msg("child: status %d", st);
  assert_int_equal(sqlite3_open(g_path, &db), SQLITE_OK);
  assert_int_equal(
      sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &q, NULL),
      SQLITE_OK);
  assert_int_equal(sqlite3_step(q), SQLITE_ROW);
  assert_string_equal((const char *)sqlite3_column_text(q, 0), "ok");
  sqlite3_finalize(q);
  sqlite3_close(db);
  /* The run is there, left `running` by a process that is gone, with the
   * records written before the disk filled up. */
  s = open_store();
  {
    json_t *list;
    assert_int_equal(ice_store_runs(s, 0, &list, msg, sizeof(msg)), 0);
    assert_int_equal(json_array_size(list), 1);
    assert_int_equal(ice_store_load(s,
                                    json_string_value(json_object_get(
                                        json_array_get(list, 0), "run_id")),
                                    &run, msg, sizeof(msg)),
                     0);
    json_decref(list);
  }
  assert_string_equal(status_of(run), "running");
  assert_false(json_is_true(json_object_get(run, "owner_alive")));
  assert_true(json_array_size(json_object_get(run, "records")) > 10);
  json_decref(run);
  close_store(s);
}

static void test_hash(void **state) {
  char *h;

  (void)state;
  h = ice_store_hash("", 0);
  assert_string_equal(h, "fnv1a64:cbf29ce484222325");
  free(h);
  h = ice_store_hash("a", 1);
  assert_string_equal(h, "fnv1a64:af63dc4c8601ec8c");
  free(h);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_record_load_restore, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_events_with_child_run, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_commit_without_attach, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_owner_dead, setup, teardown),
      cmocka_unit_test_setup_teardown(test_unknown_run, setup, teardown),
      cmocka_unit_test_setup_teardown(test_runs_listing, setup, teardown),
      cmocka_unit_test_setup_teardown(test_not_a_store, setup, teardown),
      cmocka_unit_test_setup_teardown(test_truncated, setup, teardown),
      cmocka_unit_test_setup_teardown(test_unwritable_places, setup, teardown),
      cmocka_unit_test_setup_teardown(test_full_disk, setup, teardown),
      cmocka_unit_test_setup_teardown(test_hash, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
