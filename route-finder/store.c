#include "route-finder/store.h"
#include "common/bytes.h"
#include "common/daemon.h"
#include "common/log.h"
#include "common/uuid.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WAIT_TABLE_MS 1000

static const struct sw_db_migration migrations[] = {
    { 1,
      "CREATE OR REPLACE FUNCTION rf_notify_td_transports() RETURNS trigger LANGUAGE plpgsql AS $$\n"
      "BEGIN\n"
      "  IF TG_OP = 'DELETE' THEN\n"
      "    PERFORM pg_notify('" RF_NOTIFY_CHANNEL "', OLD.t_id::text);\n"
      "  ELSE\n"
      "    PERFORM pg_notify('" RF_NOTIFY_CHANNEL "', NEW.t_id::text);\n"
      "  END IF;\n"
      "  RETURN NULL;\n"
      "END $$" },
    /* Private networks: td_members or td_revocations changed (one payload per table; a
     * transaction's notifications with equal payloads arrive once). */
    { 2,
      "CREATE OR REPLACE FUNCTION rf_notify_td_membership() RETURNS trigger LANGUAGE plpgsql AS $$\n"
      "BEGIN\n"
      "  PERFORM pg_notify('" RF_MEMBERSHIP_CHANNEL "', TG_TABLE_NAME);\n"
      "  RETURN NULL;\n"
      "END $$" },
};

#define TRIGGER_EXISTS                                                                       \
    "SELECT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = to_regclass($1) AND tgname = $2)"

/* Idempotent, and harmless when another route finder races us to it. %1$s table, %2$s
 * trigger, %3$s function. Row triggers: an upsert that changes nothing notifies nothing. */
#define TRIGGER_CREATE                                                                       \
    "DO $$ BEGIN\n"                                                                          \
    "  IF to_regclass('%1$s') IS NOT NULL AND NOT EXISTS (SELECT 1 FROM pg_trigger"          \
    "     WHERE tgrelid = to_regclass('%1$s') AND tgname = '%2$s') THEN\n"                   \
    "    CREATE TRIGGER %2$s AFTER INSERT OR UPDATE OR DELETE ON %1$s"                       \
    "      FOR EACH ROW EXECUTE FUNCTION %3$s();\n"                                          \
    "  END IF;\n"                                                                            \
    "EXCEPTION WHEN duplicate_object THEN NULL;\n"                                           \
    "END $$"

#define ROW_COLS "SELECT t_id, edge_a, edge_b, up_a AND up_b, updated FROM td_transports"

/* Runs sql (text parameters) on a pooled connection; *yes = first column of the first row
 * is true. */
static int pool_query_bool(struct sw_db *db, const char *sql, int nparams, const char *const *params, bool *yes,
                           struct sw_error *err)
{
    struct sw_db_conn *c;
    PGresult *r = NULL;
    int rc = sw_db_acquire(db, &c, err);
    if (rc)
        return rc;
    rc = sw_db_exec(c, sql, nparams, params, &r, err);
    if (rc == SW_OK)
        *yes = PQntuples(r) > 0 && PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    sw_db_release(db, c);
    return rc;
}

static int wait_for_table(struct sw_db *db, const char *table, struct sw_error *err)
{
    const char *params[1] = { table };
    bool exists = false, logged = false;
    int rc;
    for (;;) {
        if ((rc = pool_query_bool(db, "SELECT to_regclass($1) IS NOT NULL", 1, params, &exists, err)))
            return rc;
        if (exists)
            break;
        if (!logged)
            sw_log_info("waiting for the transport discovery to create %s in this database", table);
        logged = true;
        if (sw_daemon_sleep(WAIT_TABLE_MS))
            return sw_error_set(err, SW_EIO, "stopped while waiting for %s", table);
    }
    if (logged)
        sw_log_info("%s exists now", table);
    return SW_OK;
}

static int ensure_trigger(struct sw_db *db, const char *table, const char *trigger, const char *function,
                          struct sw_error *err)
{
    const char *params[2] = { table, trigger };
    struct sw_db_conn *c;
    PGresult *r = NULL;
    bool exists = false;
    char sql[1024];
    int rc = pool_query_bool(db, TRIGGER_EXISTS, 2, params, &exists, err);
    if (rc || exists)
        return rc;
    if ((rc = sw_db_acquire(db, &c, err)))
        return rc;
    snprintf(sql, sizeof(sql), TRIGGER_CREATE, table, trigger, function);
    rc = sw_db_exec(c, sql, 0, NULL, &r, err);
    PQclear(r);
    sw_db_release(db, c);
    if (rc == SW_OK)
        sw_log_info("database: installed trigger %s on %s", trigger, table);
    return rc;
}

static int install_triggers(struct sw_db *db, bool private_network, struct sw_error *err)
{
    int rc = ensure_trigger(db, "td_transports", "rf_notify_td_transports", "rf_notify_td_transports", err);
    if (rc || !private_network)
        return rc;
    if ((rc = ensure_trigger(db, "td_members", "rf_notify_td_members", "rf_notify_td_membership", err)))
        return rc;
    return ensure_trigger(db, "td_revocations", "rf_notify_td_revocations", "rf_notify_td_membership", err);
}

int rf_store_migrate(struct sw_db *db, bool private_network, struct sw_error *err)
{
    int rc;
    if ((rc = wait_for_table(db, "td_transports", err)) ||
        (private_network && (rc = wait_for_table(db, "td_revocations", err))) ||
        (rc = sw_db_migrate(db, "route-finder", migrations, sizeof(migrations) / sizeof(migrations[0]), err)))
        return rc;
    struct sw_error why = { 0 };
    if ((rc = install_triggers(db, private_network, &why)) == SW_OK)
        return SW_OK;
    return rc == SW_EDB ? sw_error_set(err, rc, "%s", why.msg)
                        : sw_error_set(err, rc, "cannot install the triggers: %.200s", why.msg);
}

/* ---- the dedicated session ----------------------------------------------------------- */

void rf_conninfo_free(struct rf_conninfo *ci)
{
    for (size_t i = 0; ci->keys && ci->keys[i]; i++) {
        free(ci->keys[i]);
        free(ci->vals[i]);
    }
    free(ci->keys);
    free(ci->vals);
    ci->keys = ci->vals = NULL;
}

static const char *const defaults[][2] = {
    { "keepalives", "1" },        { "keepalives_idle", "10" }, { "keepalives_interval", "5" },
    { "keepalives_count", "3" },  { "connect_timeout", "3" },  { "application_name", "route-finder" },
};
#define N_DEFAULTS (sizeof(defaults) / sizeof(defaults[0]))

static const char *default_for(const char *key)
{
    for (size_t i = 0; i < N_DEFAULTS; i++)
        if (strcmp(defaults[i][0], key) == 0)
            return defaults[i][1];
    return NULL;
}

static int add(struct rf_conninfo *ci, size_t *n, const char *key, const char *val)
{
    if (!(ci->keys[*n] = strdup(key)) || !(ci->vals[*n] = strdup(val)))
        return SW_ENOMEM;
    (*n)++;
    return SW_OK;
}

/* Copies the options that have a value; options without one get our default, if any. */
static int copy_options(const PQconninfoOption *opts, struct rf_conninfo *ci)
{
    size_t n = 0, total = 0;
    int rc = SW_OK;
    for (const PQconninfoOption *o = opts; o->keyword; o++)
        total++;
    ci->keys = calloc(total + N_DEFAULTS + 1, sizeof(char *));
    ci->vals = calloc(total + N_DEFAULTS + 1, sizeof(char *));
    if (!ci->keys || !ci->vals)
        return SW_ENOMEM;
    for (const PQconninfoOption *o = opts; o->keyword && rc == SW_OK; o++) {
        const char *val = o->val && *o->val ? o->val : default_for(o->keyword);
        if (val)
            rc = add(ci, &n, o->keyword, val);
    }
    return rc;
}

int rf_conninfo_from_pool(struct sw_db *db, struct rf_conninfo *out, struct sw_error *err)
{
    struct sw_db_conn *c;
    PQconninfoOption *opts;
    struct rf_conninfo ci = { 0 };
    int rc = sw_db_acquire(db, &c, err);
    if (rc)
        return rc;
    opts = PQconninfo(sw_db_pgconn(c));
    rc = opts ? copy_options(opts, &ci) : SW_ENOMEM;
    PQconninfoFree(opts);
    sw_db_release(db, c);
    if (rc) {
        rf_conninfo_free(&ci);
        return sw_error_set(err, rc, "out of memory");
    }
    *out = ci;
    return SW_OK;
}

/* libpq messages end with a newline and may span lines: one log line per event. */
static void one_line(char *dst, size_t cap, const char *src)
{
    size_t o = 0;
    for (; src && *src && o + 1 < cap; src++) {
        bool space = isspace((unsigned char)*src);
        if (!space || (o && dst[o - 1] != ' '))
            dst[o++] = space ? ' ' : *src;
    }
    while (o && dst[o - 1] == ' ')
        o--;
    dst[o] = '\0';
}

void rf_store_pg_message(PGconn *pg, char *out, size_t cap)
{
    one_line(out, cap, pg ? PQerrorMessage(pg) : "out of memory");
}

static int pg_error(PGconn *pg, const char *what, struct sw_error *err)
{
    char msg[200];
    rf_store_pg_message(pg, msg, sizeof(msg));
    return sw_error_set(err, SW_EDB, "%s: %s", what, msg);
}

/* libpq prints notices (and a server's parting FATAL) to stderr unless told otherwise. */
static void on_notice(void *arg, const char *message)
{
    char line[256];
    (void)arg;
    one_line(line, sizeof(line), message);
    sw_log_debug("postgres: %s", line);
}

PGconn *rf_store_connect(const struct rf_conninfo *ci, struct sw_error *err)
{
    PGconn *pg = PQconnectdbParams((const char *const *)ci->keys, (const char *const *)ci->vals, 0);
    if (pg)
        PQsetNoticeProcessor(pg, on_notice, NULL);
    if (pg && PQstatus(pg) == CONNECTION_OK)
        return pg;
    pg_error(pg, "connect", err);
    PQfinish(pg);
    return NULL;
}

int rf_store_command(PGconn *pg, const char *sql, struct sw_error *err)
{
    PGresult *r = PQexec(pg, sql);
    int rc = PQresultStatus(r) == PGRES_COMMAND_OK ? SW_OK : pg_error(pg, sql, err);
    PQclear(r);
    return rc;
}

/* ---- rows ------------------------------------------------------------------------------ */

/* Binary row (ROW_COLS order) -> r; false when a value is NULL or of an unexpected size. */
static bool parse_row(const PGresult *res, int i, struct rf_row *r)
{
    static const int sizes[5] = { SW_UUID_LEN, SW_PK_LEN, SW_PK_LEN, 1, 8 };
    for (int c = 0; c < 5; c++)
        if (PQgetisnull(res, i, c) || PQgetlength(res, i, c) != sizes[c])
            return false;
    memcpy(r->id.b, PQgetvalue(res, i, 0), SW_UUID_LEN);
    memcpy(r->a.b, PQgetvalue(res, i, 1), SW_PK_LEN);
    memcpy(r->b.b, PQgetvalue(res, i, 2), SW_PK_LEN);
    r->up = PQgetvalue(res, i, 3)[0] != 0;
    r->updated = (int64_t)sw_get_u64((const uint8_t *)PQgetvalue(res, i, 4));
    return true;
}

static int collect_rows(PGconn *pg, PGresult *res, struct rf_row **rows, size_t *n, struct sw_error *err)
{
    int nt = PQntuples(res);
    struct rf_row *out;
    size_t k = 0;

    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        return pg_error(pg, "reading td_transports", err);
    if (!(out = malloc(((size_t)nt + 1) * sizeof(*out))))
        return sw_error_set(err, SW_ENOMEM, "out of memory for %d transports", nt);
    for (int i = 0; i < nt; i++)
        k += parse_row(res, i, &out[k]);
    if (k < (size_t)nt)
        sw_log_warn("td_transports: skipped %zu malformed row(s)", (size_t)nt - k);
    *rows = out;
    *n = k;
    return SW_OK;
}

int rf_store_load_all(PGconn *pg, struct rf_row **rows, size_t *n, struct sw_error *err)
{
    PGresult *res = PQexecParams(pg, ROW_COLS, 0, NULL, NULL, NULL, NULL, 1);
    int rc = collect_rows(pg, res, rows, n, err);
    PQclear(res);
    return rc;
}

int rf_store_load_ids(PGconn *pg, const struct sw_uuid *ids, size_t n_ids, struct rf_row **rows,
                      size_t *n, struct sw_error *err)
{
    char *arr = malloc(n_ids * (SW_UUID_STR_LEN + 1) + 3), *p = arr;
    const char *params[1] = { arr };
    PGresult *res;
    int rc;

    if (!arr)
        return sw_error_set(err, SW_ENOMEM, "out of memory");
    *p++ = '{';
    for (size_t i = 0; i < n_ids; i++) {
        if (i)
            *p++ = ',';
        sw_uuid_format(&ids[i], p);
        p += SW_UUID_STR_LEN;
    }
    *p++ = '}';
    *p = '\0';
    res = PQexecParams(pg, ROW_COLS " WHERE t_id = ANY($1::uuid[])", 1, NULL, params, NULL, NULL, 1);
    rc = collect_rows(pg, res, rows, n, err);
    PQclear(res);
    free(arr);
    return rc;
}
