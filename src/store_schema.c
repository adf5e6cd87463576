/* The run store's schema, versioned with PRAGMA user_version. Each entry
 * of `steps` takes the schema from version i to i + 1; a store is brought
 * up to date when opened, in one transaction. Steps are never edited once
 * released: a change is a new step. */
#include "store.h"

#include <stdio.h>

static const char *const steps[] = {
    /* 0 -> 1: runs, the commit records of node instances, events. Records
     * and events are append-only; their INTEGER PRIMARY KEY (the rowid)
     * grows with every insert, so ORDER BY id is commit (or emission)
     * order. AUTOINCREMENT would add a write to sqlite_sequence per row
     * for a guarantee (ids never reused after deleting the newest rows)
     * that ordering does not need. Child runs' rows carry their own run
     * id, "PARENT.xxxxxxxx", found by a range on the index. */
    "CREATE TABLE runs ("
    " run_id TEXT PRIMARY KEY,"
    " workflow TEXT, path TEXT, hash TEXT,"
    " inputs TEXT,"          /* JSON */
    " status TEXT NOT NULL," /* running, completed, failed, ... */
    " started TEXT,"         /* RFC 3339, UTC, milliseconds */
    " finished TEXT,"
    " result TEXT," /* JSON, SPEC 11.1 */
    " owner_pid INTEGER,"
    " owner_start INTEGER" /* /proc/PID/stat field 22 */
    ");"
    "CREATE INDEX runs_started ON runs(started);"
    "CREATE TABLE records ("
    " id INTEGER PRIMARY KEY,"
    " run_id TEXT NOT NULL, key TEXT NOT NULL, change TEXT NOT NULL,"
    " seq INTEGER,"
    " body TEXT NOT NULL" /* ice_commit_to_json */
    ");"
    "CREATE INDEX records_run ON records(run_id, seq);"
    "CREATE TABLE events ("
    " id INTEGER PRIMARY KEY,"
    " run_id TEXT NOT NULL, seq INTEGER, type TEXT,"
    " body TEXT NOT NULL" /* the event as JSON */
    ");"
    "CREATE INDEX events_run ON events(run_id, seq);"
    /* use_cache: outputs by the hash of a node's definition and input. */
    "CREATE TABLE cache ("
    " key TEXT PRIMARY KEY,"
    " output TEXT NOT NULL," /* JSON */
    " at_ms INTEGER NOT NULL"
    ");",
    /* 1 -> 2: the tool files a run started with (SPEC §1.1), as JSON
     * [{"path", "content"}], so that a resumed run uses the same
     * definitions even when a file changed or is gone. NULL: none, or a
     * run recorded by an older ice. */
    "ALTER TABLE runs ADD COLUMN tools TEXT;",
    /* 2 -> 3 is appended here, with ICE__STORE_SCHEMA raised to 3; an
     * older store then runs only the steps it lacks when opened. */
};

_Static_assert(sizeof(steps) / sizeof(steps[0]) == ICE__STORE_SCHEMA,
               "one migration step per schema version");

static int user_version(sqlite3 *db, int *out) {
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);

  if (rc == SQLITE_OK) {
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
      *out = sqlite3_column_int(st, 0);
      rc = SQLITE_OK;
    }
  }
  sqlite3_finalize(st);
  return rc;
}

/* Tables of a version 0 database that are not ours: it is some other
 * application's SQLite file. */
static int foreign_tables(sqlite3 *db, int *out) {
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(db,
                              "SELECT count(*) FROM sqlite_master WHERE "
                              "name NOT LIKE 'sqlite_%'",
                              -1, &st, NULL);

  if (rc == SQLITE_OK) {
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
      *out = sqlite3_column_int(st, 0);
      rc = SQLITE_OK;
    }
  }
  sqlite3_finalize(st);
  return rc;
}

static int sql_error(sqlite3 *db, int rc, char *msg, size_t msglen) {
  if ((rc & 0xff) == SQLITE_NOTADB)
    snprintf(msg, msglen, "the file is not a run store (%s)",
             sqlite3_errmsg(db));
  else
    snprintf(msg, msglen, "%s", sqlite3_errmsg(db));
  return -1;
}

int ice__store_migrate(sqlite3 *db, char *msg, size_t msglen) {
  int v = 0, n = 0, rc;
  char sql[64];

  /* Most opens find the store up to date: no write lock for them. */
  rc = user_version(db, &v);
  if (rc != SQLITE_OK)
    return sql_error(db, rc, msg, msglen);
  if (v == ICE__STORE_SCHEMA)
    return 0;
  rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
  if (rc != SQLITE_OK)
    return sql_error(db, rc, msg, msglen);
  /* Read again under the lock: another process may have migrated. */
  rc = user_version(db, &v);
  if (rc == SQLITE_OK && v == 0)
    rc = foreign_tables(db, &n);
  if (rc != SQLITE_OK) {
    sql_error(db, rc, msg, msglen);
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return -1;
  }
  if (v > ICE__STORE_SCHEMA || v < 0 || (v == 0 && n > 0)) {
    if (v == 0)
      snprintf(msg, msglen,
               "the file is not a run store (a SQLite database of another "
               "program)");
    else
      snprintf(msg, msglen,
               "the run store has schema version %d; this ice knows up to %d "
               "(written by a newer ice?)",
               v, ICE__STORE_SCHEMA);
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return -1;
  }
  for (; v < ICE__STORE_SCHEMA; v++) {
    rc = sqlite3_exec(db, steps[v], NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
      sql_error(db, rc, msg, msglen);
      sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
      return -1;
    }
  }
  snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", ICE__STORE_SCHEMA);
  rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
  if (rc == SQLITE_OK)
    rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
  if (rc != SQLITE_OK) {
    sql_error(db, rc, msg, msglen);
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return -1;
  }
  return 0;
}
