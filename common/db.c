#include "common/db.h"
#include "common/clock.h"
#include "common/cond.h"
#include "common/log.h"

#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DB_DEFAULT_POOL 8
#define DB_MAX_POOL 1024
#define DB_ACQUIRE_TIMEOUT_MS 5000
/* An unreachable database must fail a request in seconds, not after the TCP timeout. */
#define DB_CONNECT_TIMEOUT "3"
/* After a failed connect, others fail at once for this long instead of queueing on it. */
#define DB_RETRY_AFTER_MS 500
/* One key for every component: it also serializes creating sw_schema_migrations. */
#define DB_MIGRATION_LOCK "SELECT pg_advisory_xact_lock(7245193560192837)"
#define DB_MIGRATION_TABLE                                                                   \
    "CREATE TABLE IF NOT EXISTS sw_schema_migrations (component text NOT NULL, "             \
    "version int NOT NULL, applied_at timestamptz NOT NULL DEFAULT now(), "                  \
    "PRIMARY KEY (component, version))"

struct db_stmt {
    const char *name;
    const char *sql;
};

struct sw_db_conn {
    struct sw_db *db;
    PGconn *pg;       /* NULL until first use */
    bool *prepared;   /* prepared[i]: db->stmts[i] exists in this session */
    size_t nprepared;
    bool in_use;
    bool broken;      /* reset on next acquire */
};

struct sw_db {
    char **keys, **vals;  /* NULL-terminated, for PQconnectdbParams */
    char target[192];     /* user@host:port/dbname, for logs: never the password */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool sync_ready;
    struct sw_db_conn *conns;
    unsigned nconns;
    struct db_stmt *stmts;
    size_t nstmts, capstmts;
    int acquire_timeout_ms;
    int64_t retry_at_ms;  /* monotonic; guarded by mu */
};


/* Copies a libpq message onto one line: whitespace runs become one space, ends trimmed. */
static void flatten(char *dst, size_t cap, const char *src)
{
    size_t o = 0;
    bool space = false;
    for (; src && *src && o + 1 < cap; src++) {
        if (isspace((unsigned char)*src)) {
            space = o > 0;
            continue;
        }
        if (space && o + 2 < cap)
            dst[o++] = ' ';
        space = false;
        dst[o++] = *src;
    }
    dst[o] = '\0';
}

/* NOTICEs (e.g. "relation already exists, skipping") are not worth stderr noise. */
static void on_notice(void *arg, const char *message)
{
    char line[512];
    flatten(line, sizeof(line), message);
    sw_log_debug("postgres: %s", line);
}

/* ---- opening ---------------------------------------------------------------------- */

static void free_params(struct sw_db *db)
{
    for (size_t i = 0; db->keys && db->keys[i]; i++) {
        free(db->keys[i]);
        free(db->vals[i]);
    }
    free(db->keys);
    free(db->vals);
}

static const char *opt_val(const PQconninfoOption *opts, const char *key)
{
    for (; opts->keyword; opts++) {
        if (strcmp(opts->keyword, key) == 0)
            return opts->val;
    }
    return NULL;
}

static void describe_target(struct sw_db *db, const PQconninfoOption *opts)
{
    const char *user = opt_val(opts, "user"), *host = opt_val(opts, "host");
    const char *port = opt_val(opts, "port"), *name = opt_val(opts, "dbname");
    if (!host)
        host = opt_val(opts, "hostaddr");
    snprintf(db->target, sizeof(db->target), "%s@%s:%s/%s", user ? user : "(default)",
             host ? host : "(default)", port ? port : "(default)", name ? name : "(default)");
}

static int add_param(struct sw_db *db, size_t *i, const char *key, const char *val)
{
    db->keys[*i] = strdup(key);
    db->vals[*i] = strdup(val);
    if (!db->keys[*i] || !db->vals[*i])
        return SW_ENOMEM;
    (*i)++;
    return SW_OK;
}

/* Accepts both URI and key=value forms; adds connect_timeout unless the URL sets one. */
static int build_params(struct sw_db *db, const char *url, struct sw_error *err)
{
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(url, &perr);
    size_t n = 0, i = 0;
    int rc = SW_OK;

    if (!opts) {
        PQfreemem(perr);
        /* libpq's message may quote part of the URL, password included: don't repeat it. */
        return sw_error_set(err, SW_EINVAL, "database url: not a valid libpq URI or conninfo");
    }
    for (const PQconninfoOption *o = opts; o->keyword; o++)
        n += o->val != NULL;
    db->keys = calloc(n + 2, sizeof(char *));
    db->vals = calloc(n + 2, sizeof(char *));
    if (!db->keys || !db->vals) {
        rc = SW_ENOMEM;
        goto out;
    }
    for (const PQconninfoOption *o = opts; o->keyword && rc == SW_OK; o++) {
        if (o->val)
            rc = add_param(db, &i, o->keyword, o->val);
    }
    if (rc == SW_OK && !opt_val(opts, "connect_timeout"))
        rc = add_param(db, &i, "connect_timeout", DB_CONNECT_TIMEOUT);
    describe_target(db, opts);
out:
    PQconninfoFree(opts);
    if (rc)
        sw_error_set(err, rc, "database url: out of memory");
    return rc;
}

static int init_sync(struct sw_db *db)
{
    if (pthread_mutex_init(&db->mu, NULL))
        return SW_ENOMEM;
    if (sw_cond_init(&db->cv)) {
        pthread_mutex_destroy(&db->mu);
        return SW_ENOMEM;
    }
    db->sync_ready = true;
    return SW_OK;
}

int sw_db_open(const char *url, unsigned pool_size, struct sw_db **out, struct sw_error *err)
{
    struct sw_db *db;
    int rc;

    if (!url || !out)
        return sw_error_set(err, SW_EINVAL, "database url missing");
    if (pool_size > DB_MAX_POOL)
        return sw_error_set(err, SW_ERANGE, "database pool size %u above %u", pool_size,
                            DB_MAX_POOL);
    if (!(db = calloc(1, sizeof(*db))))
        return sw_error_set(err, SW_ENOMEM, "out of memory");
    db->nconns = pool_size ? pool_size : DB_DEFAULT_POOL;
    db->acquire_timeout_ms = DB_ACQUIRE_TIMEOUT_MS;
    if ((rc = build_params(db, url, err)))
        goto fail;
    db->conns = calloc(db->nconns, sizeof(*db->conns));
    if (!db->conns || (rc = init_sync(db))) {
        rc = sw_error_set(err, SW_ENOMEM, "out of memory");
        goto fail;
    }
    for (unsigned i = 0; i < db->nconns; i++)
        db->conns[i].db = db;
    *out = db;
    return SW_OK;
fail:
    sw_db_close(db);
    return rc;
}

void sw_db_close(struct sw_db *db)
{
    if (!db)
        return;
    for (unsigned i = 0; db->conns && i < db->nconns; i++) {
        if (db->conns[i].in_use)
            sw_log_warn("database %s: pool closed with a connection still in use", db->target);
        if (db->conns[i].pg)
            PQfinish(db->conns[i].pg);
        free(db->conns[i].prepared);
    }
    if (db->sync_ready) {
        pthread_cond_destroy(&db->cv);
        pthread_mutex_destroy(&db->mu);
    }
    free(db->conns);
    free(db->stmts);
    free_params(db);
    free(db);
}

void sw_db_set_acquire_timeout(struct sw_db *db, int timeout_ms)
{
    db->acquire_timeout_ms = timeout_ms > 0 ? timeout_ms : 0;
}

int sw_db_prepare(struct sw_db *db, const char *name, const char *sql)
{
    int rc = SW_OK;

    if (!db || !name || !*name || !sql)
        return SW_EINVAL;
    pthread_mutex_lock(&db->mu);
    for (size_t i = 0; i < db->nstmts; i++) {
        if (strcmp(db->stmts[i].name, name) == 0) {
            rc = SW_EEXIST;
            goto out;
        }
    }
    if (db->nstmts == db->capstmts) {
        size_t cap = db->capstmts ? db->capstmts * 2 : 16;
        struct db_stmt *p = realloc(db->stmts, cap * sizeof(*p));
        if (!p) {
            rc = SW_ENOMEM;
            goto out;
        }
        db->stmts = p;
        db->capstmts = cap;
    }
    db->stmts[db->nstmts++] = (struct db_stmt){ name, sql };
out:
    pthread_mutex_unlock(&db->mu);
    return rc;
}

/* ---- acquiring ------------------------------------------------------------------- */

/* Prefers an idle slot that already holds a live session, so the pool stays lazy. */
static struct sw_db_conn *idle_slot(struct sw_db *db)
{
    struct sw_db_conn *empty = NULL;
    for (unsigned i = 0; i < db->nconns; i++) {
        struct sw_db_conn *c = &db->conns[i];
        if (c->in_use)
            continue;
        if (c->pg && !c->broken)
            return c;
        if (!empty)
            empty = c;
    }
    return empty;
}

static int take_slot(struct sw_db *db, struct sw_db_conn **out, struct sw_error *err)
{
    struct timespec dl;
    struct sw_db_conn *c;
    int rc = SW_OK;

    sw_cond_deadline(db->acquire_timeout_ms, &dl);
    pthread_mutex_lock(&db->mu);
    while (!(c = idle_slot(db))) {
        if (pthread_cond_timedwait(&db->cv, &db->mu, &dl) == ETIMEDOUT && !(c = idle_slot(db))) {
            rc = sw_error_set(err, SW_ETIMEDOUT, "database pool exhausted (%u connections busy)",
                              db->nconns);
            goto out;
        }
    }
    c->in_use = true;
    *out = c;
out:
    pthread_mutex_unlock(&db->mu);
    return rc;
}

static void put_slot(struct sw_db *db, struct sw_db_conn *c)
{
    pthread_mutex_lock(&db->mu);
    c->in_use = false;
    pthread_cond_signal(&db->cv);
    pthread_mutex_unlock(&db->mu);
}

/* A session that is idle yet readable was almost surely closed by the server (restart,
 * admin kill): it sends an error, then EOF, and reading the EOF marks the status bad. */
static bool peer_closed(PGconn *pg)
{
    struct pollfd p = { .fd = PQsocket(pg), .events = POLLIN };
    for (int i = 0; i < 4; i++) {
        if (p.fd < 0 || poll(&p, 1, 0) <= 0)
            break;
        if (!PQconsumeInput(pg))
            return true;
    }
    return PQstatus(pg) != CONNECTION_OK;
}

static bool retry_allowed(struct sw_db *db, int64_t set_until)
{
    bool ok;
    pthread_mutex_lock(&db->mu);
    ok = sw_mono_ms() >= db->retry_at_ms;
    if (set_until >= 0)
        db->retry_at_ms = set_until;
    pthread_mutex_unlock(&db->mu);
    return ok;
}

static int connect_failed(struct sw_db *db, struct sw_db_conn *c, struct sw_error *err)
{
    char msg[SW_ERROR_MSG_MAX];
    c->broken = true;
    retry_allowed(db, sw_deadline_ms(DB_RETRY_AFTER_MS));
    flatten(msg, sizeof(msg), c->pg ? PQerrorMessage(c->pg) : "out of memory");
    sw_log_warn("database %s: connect failed: %s", db->target, msg);
    return sw_error_set(err, SW_EDB, "database unavailable: %s", msg);
}

static int reconnect(struct sw_db *db, struct sw_db_conn *c, struct sw_error *err)
{
    if (!retry_allowed(db, -1))
        return sw_error_set(err, SW_EDB, "database unavailable (retrying shortly)");
    if (c->pg) {
        PQreset(c->pg);
    } else {
        c->pg = PQconnectdbParams((const char *const *)db->keys,
                                  (const char *const *)db->vals, 0);
        if (c->pg)
            PQsetNoticeProcessor(c->pg, on_notice, NULL);
    }
    /* A new session has none of the old one's prepared statements. */
    if (c->prepared)
        memset(c->prepared, 0, c->nprepared * sizeof(*c->prepared));
    if (!c->pg || PQstatus(c->pg) != CONNECTION_OK)
        return connect_failed(db, c, err);
    c->broken = false;
    retry_allowed(db, 0);
    return SW_OK;
}

int sw_db_acquire(struct sw_db *db, struct sw_db_conn **out, struct sw_error *err)
{
    struct sw_db_conn *c = NULL;
    int rc;

    if ((rc = take_slot(db, &c, err)))
        return rc;
    if (!c->pg || c->broken || PQstatus(c->pg) != CONNECTION_OK || peer_closed(c->pg)) {
        if ((rc = reconnect(db, c, err))) {
            put_slot(db, c);
            return rc;
        }
    }
    *out = c;
    return SW_OK;
}

/* The next user must not inherit an open (or aborted) transaction. */
static void end_transaction(struct sw_db_conn *c)
{
    PGTransactionStatusType ts;
    PGresult *r;

    if (!c->pg || c->broken)
        return;
    ts = PQtransactionStatus(c->pg);
    if (ts == PQTRANS_IDLE)
        return;
    if (ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR) {
        r = PQexec(c->pg, "ROLLBACK");
        if (PQresultStatus(r) == PGRES_COMMAND_OK) {
            PQclear(r);
            sw_log_debug("database: released connection inside a transaction; rolled back");
            return;
        }
        PQclear(r);
    }
    c->broken = true; /* query still active or state unknown: start over */
}

void sw_db_release(struct sw_db *db, struct sw_db_conn *c)
{
    if (!db || !c)
        return;
    end_transaction(c);
    put_slot(db, c);
}

PGconn *sw_db_pgconn(struct sw_db_conn *c) { return c->pg; }

/* ---- executing ------------------------------------------------------------------- */

static int sqlstate_code(const char *s)
{
    if (!s)
        return SW_EDB;
    /* 40P01 (deadlock) is retryable like a serialization failure. */
    if (!strcmp(s, "23505") || !strcmp(s, "40001") || !strcmp(s, "40P01"))
        return SW_ECONFLICT;
    if (!strncmp(s, "22", 2) || !strncmp(s, "23", 2))
        return SW_EINVAL;
    return SW_EDB;
}

/* Maps a result to SW_OK or an SW_E* code with PostgreSQL's message (after ctx). */
static int classify(struct sw_db_conn *c, PGresult *r, const char *ctx, struct sw_error *err)
{
    ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    const char *msg = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    char line[SW_ERROR_MSG_MAX];
    int code;

    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        return SW_OK;
    code = sqlstate_code(r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL);
    if (PQstatus(c->pg) != CONNECTION_OK)
        c->broken = true;
    if (!msg && st == PGRES_FATAL_ERROR)
        msg = PQerrorMessage(c->pg);
    flatten(line, sizeof(line), msg ? msg : PQresStatus(st));
    return sw_error_set(err, code, "%s%s", ctx, line);
}

static int grow_prepared(struct sw_db_conn *c, size_t n)
{
    bool *p;
    if (n <= c->nprepared)
        return SW_OK;
    if (!(p = realloc(c->prepared, n * sizeof(*p))))
        return SW_ENOMEM;
    memset(p + c->nprepared, 0, (n - c->nprepared) * sizeof(*p));
    c->prepared = p;
    c->nprepared = n;
    return SW_OK;
}

static int ensure_prepared(struct sw_db_conn *c, const char *name, struct sw_error *err)
{
    struct sw_db *db = c->db;
    const char *sql = NULL;
    size_t idx, n;
    PGresult *r;
    int rc;

    pthread_mutex_lock(&db->mu);
    n = db->nstmts;
    for (idx = 0; idx < n && strcmp(db->stmts[idx].name, name) != 0; idx++)
        ;
    if (idx < n)
        sql = db->stmts[idx].sql;
    pthread_mutex_unlock(&db->mu);
    if (!sql)
        return sw_error_set(err, SW_EINVAL, "statement '%s' not registered", name);
    if (grow_prepared(c, n))
        return sw_error_set(err, SW_ENOMEM, "out of memory");
    if (c->prepared[idx])
        return SW_OK;
    r = PQprepare(c->pg, name, sql, 0, NULL);
    rc = classify(c, r, "prepare: ", err);
    PQclear(r);
    if (rc == SW_OK)
        c->prepared[idx] = true;
    return rc;
}

static int finish(struct sw_db_conn *c, PGresult *r, PGresult **res, struct sw_error *err)
{
    int rc = classify(c, r, "", err);
    if (rc) {
        PQclear(r);
        return rc;
    }
    *res = r;
    return SW_OK;
}

int sw_db_exec_prepared(struct sw_db_conn *c, const char *name, int nparams,
                        const char *const *values, PGresult **res, struct sw_error *err)
{
    int rc;
    if (!c || !name || !res)
        return sw_error_set(err, SW_EINVAL, "sw_db_exec_prepared: missing argument");
    if ((rc = ensure_prepared(c, name, err)))
        return rc;
    return finish(c, PQexecPrepared(c->pg, name, nparams, values, NULL, NULL, 0), res, err);
}

int sw_db_exec(struct sw_db_conn *c, const char *sql, int nparams, const char *const *values,
               PGresult **res, struct sw_error *err)
{
    if (!c || !sql || !res)
        return sw_error_set(err, SW_EINVAL, "sw_db_exec: missing argument");
    return finish(c, PQexecParams(c->pg, sql, nparams, NULL, values, NULL, NULL, 0), res, err);
}

int sw_db_ping(struct sw_db *db, struct sw_error *err)
{
    struct sw_db_conn *c;
    PGresult *r = NULL;
    int rc;

    if ((rc = sw_db_acquire(db, &c, err)))
        return rc;
    rc = sw_db_exec(c, "SELECT 1", 0, NULL, &r, err);
    PQclear(r);
    sw_db_release(db, c);
    return rc;
}

/* ---- migrations ------------------------------------------------------------------ */

/* Simple-protocol run (several statements allowed), result discarded. */
static int run(struct sw_db_conn *c, const char *sql, const char *ctx, struct sw_error *err)
{
    PGresult *r = PQexec(c->pg, sql);
    int rc = classify(c, r, ctx, err);
    PQclear(r);
    return rc;
}

static int check_order(const char *component, const struct sw_db_migration *migs, size_t n,
                       struct sw_error *err)
{
    for (size_t i = 0; i < n; i++) {
        if (!migs[i].sql || migs[i].version <= (i ? migs[i - 1].version : 0))
            return sw_error_set(err, SW_EINVAL,
                                "migrations of %s: entry %zu needs sql and a version above "
                                "the previous one (>= 1)", component, i);
    }
    return SW_OK;
}

static int current_version(struct sw_db_conn *c, const char *component, int *out,
                           struct sw_error *err)
{
    const char *params[] = { component };
    PGresult *r = NULL;
    int rc = sw_db_exec(c, "SELECT coalesce(max(version), 0) FROM sw_schema_migrations "
                           "WHERE component = $1", 1, params, &r, err);
    if (rc == SW_OK)
        *out = atoi(PQgetvalue(r, 0, 0));
    PQclear(r);
    return rc;
}

static int apply_one(struct sw_db_conn *c, const char *component,
                     const struct sw_db_migration *m, struct sw_error *err)
{
    char ctx[128], ver[16];
    const char *params[] = { component, ver };
    PGresult *r = NULL;
    int rc;

    snprintf(ctx, sizeof(ctx), "migration %s v%d: ", component, m->version);
    snprintf(ver, sizeof(ver), "%d", m->version);
    if ((rc = run(c, m->sql, ctx, err)))
        return rc;
    rc = sw_db_exec(c, "INSERT INTO sw_schema_migrations (component, version) VALUES ($1, $2)",
                    2, params, &r, err);
    PQclear(r);
    return rc;
}

static int migrate_tx(struct sw_db_conn *c, const char *component,
                      const struct sw_db_migration *migs, size_t n, int *from,
                      struct sw_error *err)
{
    int rc;
    if ((rc = run(c, "BEGIN", "", err)) || (rc = run(c, DB_MIGRATION_LOCK, "", err)) ||
        (rc = run(c, DB_MIGRATION_TABLE, "", err)) ||
        (rc = current_version(c, component, from, err)))
        return rc;
    for (size_t i = 0; i < n; i++) {
        if (migs[i].version > *from && (rc = apply_one(c, component, &migs[i], err)))
            return rc;
    }
    return run(c, "COMMIT", "", err);
}

static void log_applied(const char *component, const struct sw_db_migration *migs, size_t n,
                        int from)
{
    int last = n ? migs[n - 1].version : 0;
    for (size_t i = 0; i < n; i++) {
        if (migs[i].version > from)
            sw_log_info("database: applied migration %s v%d", component, migs[i].version);
    }
    if (from > last)
        sw_log_warn("database: schema of %s is at v%d, newer than this binary's v%d",
                    component, from, last);
    else if (from == last)
        sw_log_debug("database: schema of %s is up to date (v%d)", component, last);
}

int sw_db_migrate(struct sw_db *db, const char *component, const struct sw_db_migration *migs,
                  size_t n, struct sw_error *err)
{
    struct sw_db_conn *c;
    struct sw_error local;
    int from = 0, rc;

    if (!err)
        err = &local; /* the failure is logged below either way */
    if (!db || !component || (n && !migs))
        return sw_error_set(err, SW_EINVAL, "sw_db_migrate: missing argument");
    if ((rc = check_order(component, migs, n, err)))
        return rc;
    if ((rc = sw_db_acquire(db, &c, err)))
        return rc;
    rc = migrate_tx(c, component, migs, n, &from, err);
    sw_db_release(db, c); /* rolls back when a step failed */
    if (rc) {
        sw_log_error("database: migrating %s failed: %s", component, err->msg);
        return rc;
    }
    log_applied(component, migs, n, from);
    return SW_OK;
}
