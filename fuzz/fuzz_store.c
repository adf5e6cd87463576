/* libFuzzer target: the run store's reader (store.c) on damaged database
 * files. The first byte is the mode:
 *
 *   even  the rest IS the database file: a mutated copy of a valid store
 *         (the seeds are real stores, fuzz/seeds.py), opened as found
 *   odd   the rest is a list of cells (see next_cell) written with plain
 *         SQLite into a new, valid store: runs, records, events and cache
 *         rows whose columns hold any type, any bytes, bad JSON; then, with
 *         bit 1 set, a run of a fixed workflow is restored from the
 *         records ice_store_load returns for run "r"
 *
 * Then the store is opened, and every run it lists (and "r", "r.1") is
 * loaded and its events read. Whatever the file holds, ice_store_open
 * fails with a message or every call returns: never a crash, a hang or a
 * leak. */
#include <ice.h>

#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char g_path[256];

/* Strings that make rows refer to one another, and bodies the reader and a
 * restore understand, so that mutations start from the meaningful. */
static const char *const dict[] = {
    "r",
    "r.1",
    "r.1.2",
    "running",
    "completed",
    "failed",
    "paused",
    "waiting",
    "{}",
    "[]",
    "null",
    "a",
    "b",
    "2026-01-01T00:00:00.000Z",
    "{\"run_id\":\"r\",\"key\":\"a\",\"node_id\":\"a\",\"change\":"
    "\"completed\","
    "\"attempt\":1,\"at_ms\":1,\"seq\":3,\"output\":{\"text\":\"x\"}}",
    "{\"run_id\":\"r\",\"key\":\"b\",\"node_id\":\"b\",\"change\":\"running\","
    "\"attempt\":1,\"at_ms\":2,\"seq\":4}",
    "{\"run_id\":\"r\",\"key\":\"b\",\"node_id\":\"b\",\"change\":\"retrying\","
    "\"attempt\":1,\"at_ms\":2,\"seq\":5,\"wake_at_ms\":3,\"error\":{\"kind\":"
    "\"tool_error\",\"message\":\"m\"}}",
    "{\"run_id\":\"r\",\"key\":\"c\",\"node_id\":\"c\",\"change\":\"waiting\","
    "\"attempt\":1,\"at_ms\":2,\"seq\":6,\"state\":{\"k\":1}}",
    "{\"type\":\"node.completed\",\"seq\":3,\"run_id\":\"r\",\"node_id\":"
    "\"a\"}",
    "{\"run_id\":\"r\",\"status\":\"failed\",\"success\":false,\"output\":{}}",
    "[{\"path\":\"/nonexistent/t.yaml\",\"content\":\"tools: {}\"}]",
};

/* Cells: a type byte, then its bytes. Returns 0 at the end of the input. */
static int next_cell(sqlite3_stmt *st, int col, const uint8_t **p,
                     const uint8_t *end) {
  const uint8_t *q = *p;
  uint8_t t;
  size_t n;

  if (q >= end)
    return 0;
  t = *q++;
  switch (t % 7) {
  case 0:
    sqlite3_bind_null(st, col);
    break;
  case 1: { /* an integer, up to 8 bytes little-endian */
    uint64_t v = 0;
    for (n = 0; n < 8 && q < end; n++)
      v |= (uint64_t)*q++ << (8 * n);
    sqlite3_bind_int64(st, col, (sqlite3_int64)v);
    break;
  }
  case 2: { /* a double, 8 bytes */
    double d = 0;
    n = end - q < 8 ? (size_t)(end - q) : 8;
    memcpy(&d, q, n);
    q += n;
    sqlite3_bind_double(st, col, d);
    break;
  }
  case 3: /* text or a blob, length in one byte */
  case 4:
    n = q < end ? *q++ : 0;
    if (n > (size_t)(end - q))
      n = (size_t)(end - q);
    if (t % 7 == 3)
      sqlite3_bind_text(st, col, (const char *)q, (int)n, SQLITE_TRANSIENT);
    else
      sqlite3_bind_blob(st, col, q, (int)n, SQLITE_TRANSIENT);
    q += n;
    break;
  case 5: /* a dictionary string */
    n = q < end ? *q++ : 0;
    sqlite3_bind_text(st, col, dict[n % (sizeof(dict) / sizeof(*dict))], -1,
                      SQLITE_STATIC);
    break;
  default: /* a small integer in the type byte: pids, seqs */
    sqlite3_bind_int(st, col, (int)(t / 7) - 8);
    break;
  }
  *p = q;
  return 1;
}

/* Fills a new store with the rows the cells describe (at most 32). */
static void write_cells(const uint8_t *p, const uint8_t *end) {
  static const char *const sql[] = {
      "INSERT INTO runs(run_id, workflow, path, hash, inputs, status, started,"
      " finished, result, owner_pid, owner_start, tools)"
      " VALUES(?1, ?2, ?3, ?4, ?5, coalesce(?6, 'running'), ?7, ?8, ?9, ?10,"
      " ?11, ?12)",
      "INSERT INTO records(run_id, key, change, seq, body)"
      " VALUES(coalesce(?1, 'r'), coalesce(?2, 'a'), coalesce(?3, 'x'), ?4,"
      " coalesce(?5, ''))",
      "INSERT INTO events(run_id, seq, type, body)"
      " VALUES(coalesce(?1, 'r'), ?2, ?3, coalesce(?4, ''))",
      "INSERT INTO cache(key, output, at_ms) VALUES(coalesce(?1, 'k'),"
      " coalesce(?2, ''), coalesce(?3, 0))",
  };
  ice_store_t *s;
  sqlite3 *db;
  char msg[512];

  if (ice_store_open(&s, g_path, msg, sizeof(msg)) != 0 ||
      ice_store_close(s, msg, sizeof(msg)) != 0)
    abort();
  if (sqlite3_open(g_path, &db) != SQLITE_OK)
    abort();
  sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
  for (int row = 0; row < 32 && p < end; row++) {
    sqlite3_stmt *st = NULL;
    int table = *p++ % 4;

    if (sqlite3_prepare_v2(db, sql[table], -1, &st, NULL) != SQLITE_OK)
      abort();
    for (int col = 1; col <= sqlite3_bind_parameter_count(st); col++) {
      if (!next_cell(st, col, &p, end))
        break;
    }
    sqlite3_step(st); /* a duplicate key is refused: that row is not kept */
    sqlite3_finalize(st);
  }
  sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
  sqlite3_close(db);
}

static void on_event(json_t *ev, void *data) {
  if (!json_is_object(ev))
    abort();
  (*(size_t *)data)++;
}

/* A run of a fixed workflow rebuilt from what the store kept of "r". */
static void restore(json_t *run) {
  static const char wf_text[] =
      "{\"name\": \"r\", \"nodes\": ["
      "{\"id\": \"a\", \"type\": \"tool\", \"tool_name\": \"echo\","
      " \"tool_args\": {\"text\": \"x\"}},"
      "{\"id\": \"b\", \"type\": \"tool\", \"tool_name\": \"echo\","
      " \"dependencies\": [\"a\"], \"tool_args\": {\"t\": \"{{ a.text }}\"}},"
      "{\"id\": \"c\", \"type\": \"condition\", \"dependencies\": [\"b\"],"
      " \"expression\": \"b.t == 'x'\"}]}";
  static ice_engine_t *e;
  static ice_workflow_t *wf;
  ice_run_opts_t o = ICE_RUN_OPTS_INIT;
  ice_run_t *r = NULL;
  ice_diags_t d = {0};

  if (e == NULL) {
    ice_engine_opts_t eo = {0};
    eo.virtual_clock = 1;
    if (ice_engine_new(&e, NULL, &eo) != 0 ||
        ice_workflow_parse(e, "r.json", wf_text, sizeof(wf_text) - 1, 0, &wf,
                           NULL) != 0)
      abort();
  }
  o.restore = json_object_get(run, "records");
  o.run_id = "r";
  o.suspend_after = 0;
  if (ice_run_new(e, wf, &o, &r, &d) == 0) {
    ice_run_execute(r);
    if (!ice_run_finished(r) || ice_run_result(r) == NULL)
      abort();
    ice_run_free(r);
  }
  ice_diags_free(&d);
}

static void read_run(ice_store_t *s, const char *id, int with_restore) {
  char msg[512];
  json_t *run = NULL;
  size_t n = 0;

  if (ice_store_load(s, id, &run, msg, sizeof(msg)) == 0) {
    if (!json_is_array(json_object_get(run, "records")))
      abort();
    if (with_restore && strcmp(id, "r") == 0)
      restore(run);
    json_decref(run);
  }
  ice_store_events(s, id, on_event, &n, msg, sizeof(msg));
}

static void read_store(int with_restore) {
  ice_store_t *s;
  json_t *runs = NULL, *x;
  char msg[512] = "";
  size_t i;

  if (ice_store_open(&s, g_path, msg, sizeof(msg)) != 0) {
    if (msg[0] == '\0')
      abort();
    return;
  }
  if (ice_store_runs(s, 0, &runs, msg, sizeof(msg)) == 0) {
    json_array_foreach(runs, i, x) {
      const char *id = json_string_value(json_object_get(x, "run_id"));
      if (id != NULL && i < 8)
        read_run(s, id, 0);
    }
    json_decref(runs);
  }
  read_run(s, "r", with_restore);
  read_run(s, "r.1", 0);
  json_decref(ice_store_cache_get(s, "k", 0));
  ice_store_close(s, msg, sizeof(msg));
}

static void remove_files(void) {
  char p[300];

  unlink(g_path);
  snprintf(p, sizeof(p), "%s-wal", g_path);
  unlink(p);
  snprintf(p, sizeof(p), "%s-shm", g_path);
  unlink(p);
  snprintf(p, sizeof(p), "%s-journal", g_path);
  unlink(p);
}

static void cleanup(void) {
  char dir[256];

  remove_files();
  snprintf(dir, sizeof(dir), "%s", g_path);
  *strrchr(dir, '/') = '\0';
  rmdir(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (g_path[0] == '\0') {
    const char *tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    char dir[200];

    snprintf(dir, sizeof(dir), "%s/ice-fuzz-store-XXXXXX", tmp);
    if (mkdtemp(dir) == NULL)
      abort();
    snprintf(g_path, sizeof(g_path), "%s/runs.db", dir);
    atexit(cleanup);
  }
  if (size < 1)
    return 0;
  remove_files();
  if ((data[0] & 1) == 0) {
    FILE *f = fopen(g_path, "wb");
    if (f == NULL || fwrite(data + 1, 1, size - 1, f) != size - 1 ||
        fclose(f) != 0)
      abort();
  } else {
    write_cells(data + 1, data + size);
  }
  read_store((data[0] & 3) == 3);
  return 0;
}
