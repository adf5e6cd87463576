/* Private to the run store (store.c, store_schema.c): the schema version
 * and its migrations. The store's API is in include/ice.h. */
#ifndef ICE_STORE_H
#define ICE_STORE_H

#include <sqlite3.h>
#include <stddef.h>

/* The schema this build writes (PRAGMA user_version). */
#define ICE__STORE_SCHEMA 2

/* Brings db (opened, busy timeout set) to ICE__STORE_SCHEMA inside one
 * BEGIN IMMEDIATE transaction, so two processes opening a new store at
 * once migrate it once. 0, or -1 with a message (without the path) in
 * msg: a newer schema, a database that is not a run store, a SQLite
 * error. */
int ice__store_migrate(sqlite3 *db, char *msg, size_t msglen);

#endif
