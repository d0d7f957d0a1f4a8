/* db.h — PostgreSQL connection pool over libpq, versioned migrations, prepared statements.
 *
 * The pool connects lazily and reconnects by itself: a connection found broken is reset on
 * its next acquire, so a database that goes away and comes back is survived without a
 * restart (callers see SW_EDB meanwhile and answer 503). Each daemon applies its own
 * migrations at start under an advisory lock, recorded in sw_schema_migrations
 * (component, version). Statements registered with sw_db_prepare are prepared on each
 * connection the first time they are used there. All functions are thread-safe except
 * sw_db_prepare, which is called during start-up before handlers run. */
#ifndef SW_DB_H
#define SW_DB_H

#include <libpq-fe.h>
#include <stddef.h>

#include "common/err.h"

struct sw_db;
struct sw_db_conn; /* a pooled connection; borrowed between acquire and release */

struct sw_db_migration {
    int version;     /* 1, 2, 3 ... applied in order, each once */
    const char *sql; /* may hold several statements */
};

/* Creates the pool (size 0 = 8) without connecting. url: libpq URI or conninfo. */
int sw_db_open(const char *url, unsigned pool_size, struct sw_db **out, struct sw_error *err);
void sw_db_close(struct sw_db *db);

/* Applies migrations newer than the recorded version for component, in one transaction. */
int sw_db_migrate(struct sw_db *db, const char *component, const struct sw_db_migration *migs,
                  size_t n, struct sw_error *err);

/* Registers a named statement (name and sql borrowed; static strings). Start-up only. */
int sw_db_prepare(struct sw_db *db, const char *name, const char *sql);

/* Takes a healthy connection, waiting up to 5 s for a free one. SW_EDB when the database
 * cannot be reached, SW_ETIMEDOUT when the pool stays exhausted. */
int sw_db_acquire(struct sw_db *db, struct sw_db_conn **out, struct sw_error *err);
void sw_db_release(struct sw_db *db, struct sw_db_conn *c);
/* Changes how long sw_db_acquire waits for a free connection (default 5000 ms; 0 = don't
 * wait). Start-up only, like sw_db_prepare. */
void sw_db_set_acquire_timeout(struct sw_db *db, int timeout_ms);
PGconn *sw_db_pgconn(struct sw_db_conn *c);

/* Runs a registered statement (text parameters; NULL value = SQL NULL; results in text).
 * On success *res holds a PGRES_COMMAND_OK/TUPLES_OK result the caller PQclear()s.
 * Errors: SW_ECONFLICT unique violation or serialization failure, SW_EINVAL data/check
 * errors (SQLSTATE class 22 or 23 other than 23505), SW_EDB anything else (the connection
 * is marked for reset if broken). err->msg carries PostgreSQL's message. */
int sw_db_exec_prepared(struct sw_db_conn *c, const char *name, int nparams,
                        const char *const *values, PGresult **res, struct sw_error *err);
/* Same for ad-hoc SQL (PQexecParams). */
int sw_db_exec(struct sw_db_conn *c, const char *sql, int nparams, const char *const *values,
               PGresult **res, struct sw_error *err);

/* One-shot SELECT 1 through the pool; for /health. */
int sw_db_ping(struct sw_db *db, struct sw_error *err);

#endif
