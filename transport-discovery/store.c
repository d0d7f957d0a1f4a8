#include "transport-discovery/store.h"
#include "common/clock.h"
#include "common/json.h"
#include "common/log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct sw_db_migration migrations[] = {
    { 1,
      "CREATE TABLE td_transports ("
      "  t_id uuid PRIMARY KEY,"
      "  edge_a bytea NOT NULL CHECK (length(edge_a) = 32),"
      "  edge_b bytea NOT NULL CHECK (length(edge_b) = 32),"
      "  type text NOT NULL,"
      "  label text NOT NULL DEFAULT '',"
      "  sig_a bytea NOT NULL,"
      "  sig_b bytea NOT NULL,"
      "  up_a boolean NOT NULL,"
      "  up_b boolean NOT NULL,"
      "  registered bigint NOT NULL,"
      "  updated bigint NOT NULL);"
      "CREATE INDEX td_transports_edge_a ON td_transports (edge_a);"
      "CREATE INDEX td_transports_edge_b ON td_transports (edge_b);"
      "CREATE INDEX td_transports_updated ON td_transports (updated);"
      "CREATE TABLE IF NOT EXISTS td_nonces (pk bytea PRIMARY KEY, next_nonce bigint NOT NULL);" },
    /* Each edge's refresh time of its own. Old rows had one stamp for both halves: both get
     * it. `updated` stays, computed as the older half's time (LEAST skips the NULL of a half
     * never reported), so that readers of v1 rows (the route finder: up_a AND up_b AND
     * updated within the TTL) mean "both up and both fresh" without a change. Dropping the
     * old column also drops its index; the new one indexes the computed column. */
    { 2,
      "ALTER TABLE td_transports ADD COLUMN updated_a bigint, ADD COLUMN updated_b bigint;"
      "UPDATE td_transports SET updated_a = updated, updated_b = updated;"
      "ALTER TABLE td_transports DROP COLUMN updated;"
      "ALTER TABLE td_transports"
      "  ADD COLUMN updated bigint GENERATED ALWAYS AS (LEAST(updated_a, updated_b)) STORED,"
      "  ADD CONSTRAINT td_transports_reported CHECK (updated_a IS NOT NULL OR updated_b IS NOT NULL),"
      "  ADD CONSTRAINT td_transports_up_reported"
      "    CHECK ((updated_a IS NOT NULL OR NOT up_a) AND (updated_b IS NOT NULL OR NOT up_b));"
      "CREATE INDEX td_transports_updated ON td_transports (updated);" },
    /* Private networks (transport-discovery/members.h): each edge's certificate, as last
     * admitted, so that the route finder can leave out keys that are no longer members; and
     * the network's revocation list, shared by every TD instance on this database. Empty
     * on an open network. */
    { 3,
      "CREATE TABLE td_members ("
      "  pk bytea PRIMARY KEY CHECK (length(pk) = 32),"
      "  network bytea NOT NULL CHECK (length(network) = 32),"
      "  role text NOT NULL,"
      "  name text NOT NULL DEFAULT '',"
      "  groups text NOT NULL DEFAULT '',"
      "  not_before bigint NOT NULL,"
      "  not_after bigint NOT NULL,"
      "  cert bytea NOT NULL,"
      "  updated bigint NOT NULL);"
      "CREATE INDEX td_members_not_after ON td_members (not_after);"
      "CREATE TABLE td_revocations ("
      "  network bytea PRIMARY KEY CHECK (length(network) = 32),"
      "  issued_at bigint NOT NULL,"
      "  list bytea NOT NULL,"
      "  updated bigint NOT NULL);" },
};

#define COLS "t_id::text, encode(edge_a, 'hex'), encode(edge_b, 'hex'), type, label, " \
             "encode(sig_a, 'hex'), encode(sig_b, 'hex'), up_a, up_b, registered, updated, " \
             "updated_a, updated_b"
enum { COL_UP_A = 7, COL_UP_B, COL_REGISTERED, COL_UPDATED, COL_UPDATED_A, COL_UPDATED_B };

/* $1 t_id, $2 edge_a, $3 edge_b, $4 type, $5 label, $6 sig_a, $7 sig_b, $8 now, $9 caller.
 * The caller's half becomes up and fresh; the other half is left as it was, and on a new
 * row starts "not reported" (down, no time) until that edge registers or posts a status. */
#define REGISTER_SQL                                                                          \
    "INSERT INTO td_transports AS t (t_id, edge_a, edge_b, type, label, sig_a, sig_b, up_a, up_b," \
    " registered, updated_a, updated_b) VALUES ($1::uuid, $2::bytea, $3::bytea, $4, $5, $6::bytea," \
    " $7::bytea, $2::bytea = $9::bytea, $3::bytea = $9::bytea, $8::bigint,"                    \
    " CASE WHEN $2::bytea = $9::bytea THEN $8::bigint END,"                                    \
    " CASE WHEN $3::bytea = $9::bytea THEN $8::bigint END)"                                    \
    " ON CONFLICT (t_id) DO UPDATE SET label = EXCLUDED.label, sig_a = EXCLUDED.sig_a,"        \
    " sig_b = EXCLUDED.sig_b,"                                                                 \
    " up_a = CASE WHEN t.edge_a = $9::bytea THEN true ELSE t.up_a END,"                        \
    " updated_a = CASE WHEN t.edge_a = $9::bytea THEN $8::bigint ELSE t.updated_a END,"        \
    " up_b = CASE WHEN t.edge_b = $9::bytea THEN true ELSE t.up_b END,"                        \
    " updated_b = CASE WHEN t.edge_b = $9::bytea THEN $8::bigint ELSE t.updated_b END"         \
    " RETURNING " COLS

/* $1 t_id, $2 caller, $3 is_up, $4 now: the caller's half only. */
#define STATUS_SQL                                                                            \
    "UPDATE td_transports SET"                                                                \
    " up_a = CASE WHEN edge_a = $2::bytea THEN $3::boolean ELSE up_a END,"                    \
    " updated_a = CASE WHEN edge_a = $2::bytea THEN $4::bigint ELSE updated_a END,"           \
    " up_b = CASE WHEN edge_b = $2::bytea THEN $3::boolean ELSE up_b END,"                    \
    " updated_b = CASE WHEN edge_b = $2::bytea THEN $4::bigint ELSE updated_b END"            \
    " WHERE t_id = $1::uuid AND (edge_a = $2::bytea OR edge_b = $2::bytea) RETURNING " COLS

/* $1 cutoff. A half that is up but older than the cutoff goes down; `updated` (the older
 * half) is below the cutoff whenever one is, which lets the index narrow the scan. */
#define EXPIRE_SQL                                                                            \
    "UPDATE td_transports SET up_a = up_a AND updated_a >= $1::bigint,"                       \
    " up_b = up_b AND updated_b >= $1::bigint WHERE updated < $1::bigint"                     \
    " AND ((up_a AND updated_a < $1::bigint) OR (up_b AND updated_b < $1::bigint))"

/* $1 cutoff: both halves older than it (GREATEST skips a half never reported). */
#define PURGE_SQL \
    "DELETE FROM td_transports WHERE updated < $1::bigint AND GREATEST(updated_a, updated_b) < $1::bigint"

static const struct {
    const char *name, *sql;
} statements[] = {
    { "td_register", REGISTER_SQL },
    { "td_get", "SELECT " COLS " FROM td_transports WHERE t_id = $1::uuid" },
    { "td_by_edge",
      "SELECT " COLS " FROM td_transports WHERE edge_a = $1::bytea UNION ALL "
      "SELECT " COLS " FROM td_transports WHERE edge_b = $1::bytea ORDER BY 1" },
    { "td_status", STATUS_SQL },
    { "td_exists",
      "SELECT edge_a = $2::bytea OR edge_b = $2::bytea FROM td_transports WHERE t_id = $1::uuid" },
    { "td_delete",
      "DELETE FROM td_transports WHERE t_id = $1::uuid AND (edge_a = $2::bytea OR edge_b = $2::bytea)"
      " RETURNING t_id" },
    { "td_list", "SELECT " COLS " FROM td_transports WHERE t_id > $1::uuid ORDER BY t_id LIMIT $2::int" },
    { "td_expire", EXPIRE_SQL },
    { "td_purge", PURGE_SQL },
    { "td_count", "SELECT count(*), count(*) FILTER (WHERE up_a AND up_b) FROM td_transports" },
};

int td_store_migrate(struct td_store *st, struct sw_error *err)
{
    return sw_db_migrate(st->db, "transport-discovery", migrations,
                         sizeof(migrations) / sizeof(migrations[0]), err);
}

int td_store_prepare(struct td_store *st)
{
    for (size_t i = 0; i < sizeof(statements) / sizeof(statements[0]); i++)
        if (sw_db_prepare(st->db, statements[i].name, statements[i].sql))
            return SW_ENOMEM;
    return SW_OK;
}

static void bytea_param(char *out, size_t cap, const uint8_t *b, size_t n)
{
    out[0] = '\\';
    out[1] = 'x';
    for (size_t i = 0; i < n && 2 + 2 * i + 2 < cap; i++)
        snprintf(out + 2 + 2 * i, 3, "%02x", b[i]);
}

/* One edge's half of a row: its opinion counts only while refreshed within the TTL. */
struct half {
    bool reported, up;
    int64_t updated;
};

static struct half read_half(const struct td_store *st, PGresult *res, int row, int up_col, int time_col,
                             int64_t now)
{
    struct half h = { .reported = !PQgetisnull(res, row, time_col) };
    if (h.reported)
        h.updated = strtoll(PQgetvalue(res, row, time_col), NULL, 10);
    h.up = h.reported && PQgetvalue(res, row, up_col)[0] == 't' && h.updated >= now - st->ttl_s;
    return h;
}

static int append_time(struct sw_buf *b, const struct half *h)
{
    return h->reported ? sw_buf_printf(b, "%" PRId64, h->updated) : sw_buf_append(b, "null", 4);
}

/* Appends one result row (COLS order) as EntryWithStatus JSON text. Written directly, not
 * through json-c objects: a 100-entry reply would otherwise build ~1,500 objects. Every field
 * but the label is hex, a UUID, a known type or a number, so only the label needs escaping. */
static int append_row(const struct td_store *st, PGresult *res, int row, int64_t now, struct sw_buf *b)
{
    int64_t registered = strtoll(PQgetvalue(res, row, COL_REGISTERED), NULL, 10);
    int64_t updated = strtoll(PQgetvalue(res, row, COL_UPDATED), NULL, 10);
    struct half ha = read_half(st, res, row, COL_UP_A, COL_UPDATED_A, now);
    struct half hb = read_half(st, res, row, COL_UP_B, COL_UPDATED_B, now);
    int rc = sw_buf_printf(b, "{\"entry\":{\"t_id\":\"%s\",\"edges\":[\"%s\",\"%s\"],\"type\":\"%s\",\"label\":",
                           PQgetvalue(res, row, 0), PQgetvalue(res, row, 1), PQgetvalue(res, row, 2),
                           PQgetvalue(res, row, 3));
    if (rc == SW_OK)
        rc = sw_json_append_string(b, PQgetvalue(res, row, 4), (size_t)PQgetlength(res, row, 4));
    if (rc == SW_OK)
        rc = sw_buf_printf(b, "},\"signatures\":[\"%s\",\"%s\"],\"is_up\":%s,\"registered\":%" PRId64
                              ",\"updated\":%" PRId64 ",\"statuses\":[%s,%s],\"updated_edges\":[",
                           PQgetvalue(res, row, 5), PQgetvalue(res, row, 6), ha.up && hb.up ? "true" : "false",
                           registered, updated, ha.up ? "true" : "false", hb.up ? "true" : "false");
    if (rc == SW_OK)
        rc = append_time(b, &ha);
    if (rc == SW_OK)
        rc = sw_buf_append(b, ",", 1);
    if (rc == SW_OK)
        rc = append_time(b, &hb);
    if (rc == SW_OK)
        rc = sw_buf_append(b, "]}", 2);
    return rc;
}

/* Appends the rows as elements of a JSON array being written (commas included). */
static int append_rows(const struct td_store *st, PGresult *res, struct sw_buf *b, size_t *count)
{
    int64_t now = sw_unix_ms() / 1000;
    int rc = SW_OK;
    for (int i = 0; rc == SW_OK && i < PQntuples(res); i++) {
        if (*count && (rc = sw_buf_append(b, ",", 1)))
            break;
        rc = append_row(st, res, i, now, b);
        (*count)++;
    }
    return rc == SW_OK ? SW_OK : SW_ENOMEM;
}

static int tx(struct sw_db_conn *c, const char *cmd, struct sw_error *err)
{
    PGresult *res = NULL;
    int rc = sw_db_exec(c, cmd, 0, NULL, &res, err);
    PQclear(res);
    return rc;
}

int td_store_register(struct td_store *st, const struct sw_pk *caller, const struct sw_tp_signed_entry *entries,
                      size_t n, struct sw_buf *out, struct sw_error *err)
{
    struct sw_db_conn *c = NULL;
    size_t count = 0;
    char id[SW_UUID_STR_LEN + 1], ea[80], eb[80], sa[140], sb[140], now[24], pkp[80];
    const char *params[9] = { id, ea, eb, NULL, NULL, sa, sb, now, pkp };
    bool in_tx = false;
    int rc;

    snprintf(now, sizeof(now), "%" PRId64, sw_unix_ms() / 1000);
    bytea_param(pkp, sizeof(pkp), caller->b, SW_PK_LEN);
    if ((rc = sw_buf_append(out, "[", 1)) || (rc = sw_db_acquire(st->db, &c, err)))
        goto fail;
    if (n > 1 && (rc = tx(c, "BEGIN", err)))
        goto fail;
    in_tx = n > 1;
    for (size_t i = 0; i < n; i++) {
        const struct sw_tp_entry *e = &entries[i].entry;
        PGresult *res = NULL;
        sw_uuid_format(&e->id, id);
        bytea_param(ea, sizeof(ea), e->edges[0].b, SW_PK_LEN);
        bytea_param(eb, sizeof(eb), e->edges[1].b, SW_PK_LEN);
        bytea_param(sa, sizeof(sa), entries[i].sigs[0].b, SW_SIG_LEN);
        bytea_param(sb, sizeof(sb), entries[i].sigs[1].b, SW_SIG_LEN);
        params[3] = e->type;
        params[4] = e->label;
        if ((rc = sw_db_exec_prepared(c, "td_register", 9, params, &res, err)))
            goto fail;
        rc = append_rows(st, res, out, &count);
        PQclear(res);
        if (rc)
            goto fail;
    }
    if (in_tx && (rc = tx(c, "COMMIT", err)))
        goto fail;
    sw_db_release(st->db, c);
    return sw_buf_append(out, "]", 1);
fail:
    if (in_tx)
        tx(c, "ROLLBACK", NULL);
    if (c)
        sw_db_release(st->db, c);
    return rc;
}

/* Runs a one-statement read and appends the rows as a JSON array; *count = rows. */
static int query_rows(struct td_store *st, const char *stmt, int nparams, const char *const *params,
                      struct sw_buf *out, size_t *count, struct sw_error *err)
{
    struct sw_db_conn *c = NULL;
    PGresult *res = NULL;
    int rc;
    *count = 0;
    if ((rc = sw_db_acquire(st->db, &c, err)))
        return rc;
    rc = sw_db_exec_prepared(c, stmt, nparams, params, &res, err);
    sw_db_release(st->db, c);
    if (rc)
        return rc;
    if (sw_buf_append(out, "[", 1) || append_rows(st, res, out, count) || sw_buf_append(out, "]", 1))
        rc = sw_error_set(err, SW_ENOMEM, "out of memory");
    PQclear(res);
    return rc;
}

int td_store_get(struct td_store *st, const struct sw_uuid *id, struct sw_buf *out,
                 struct sw_error *err)
{
    char ids[SW_UUID_STR_LEN + 1];
    const char *params[1] = { ids };
    struct sw_db_conn *c = NULL;
    PGresult *res = NULL;
    int rc;
    sw_uuid_format(id, ids);
    if ((rc = sw_db_acquire(st->db, &c, err)))
        return rc;
    rc = sw_db_exec_prepared(c, "td_get", 1, params, &res, err);
    sw_db_release(st->db, c);
    if (rc)
        return rc;
    if (PQntuples(res) == 0)
        rc = sw_error_set(err, SW_ENOTFOUND, "no transport with ID %s", ids);
    else if (append_row(st, res, 0, sw_unix_ms() / 1000, out))
        rc = sw_error_set(err, SW_ENOMEM, "out of memory");
    PQclear(res);
    return rc;
}

int td_store_by_edge(struct td_store *st, const struct sw_pk *pk, struct sw_buf *out,
                     struct sw_error *err)
{
    char pkp[80];
    const char *params[1] = { pkp };
    size_t count;
    bytea_param(pkp, sizeof(pkp), pk->b, SW_PK_LEN);
    return query_rows(st, "td_by_edge", 1, params, out, &count, err);
}

/* After an UPDATE/DELETE matched nothing: tells "no such transport" from "not your edge".
 * A row the caller is an edge of can only be there now because it was registered after the
 * UPDATE looked (read committed): that is "not found" too, so the caller retries. */
static int missing_or_forbidden(struct sw_db_conn *c, const char *id, const char *caller,
                                size_t index, bool many, struct sw_error *err)
{
    PGresult *res = NULL;
    const char *params[2] = { id, caller };
    char where[32] = "";
    int rc = sw_db_exec_prepared(c, "td_exists", 2, params, &res, err);
    if (rc)
        return rc;
    if (many)
        snprintf(where, sizeof(where), "[%zu]: ", index);
    bool forbidden = PQntuples(res) && PQgetvalue(res, 0, 0)[0] != 't';
    rc = forbidden ? sw_error_set(err, SW_EPERM, "%sthe caller is not an edge of transport %s", where, id)
                   : sw_error_set(err, SW_ENOTFOUND, "%sno transport with ID %s", where, id);
    PQclear(res);
    return rc;
}

int td_store_set_statuses(struct td_store *st, const struct sw_pk *caller,
                          const struct td_status_update *ups, size_t n, struct sw_buf *out,
                          struct sw_error *err)
{
    struct sw_db_conn *c = NULL;
    size_t count = 0;
    char id[SW_UUID_STR_LEN + 1], pkp[80], now[24];
    const char *params[4] = { id, pkp, NULL, now };
    int rc;

    bytea_param(pkp, sizeof(pkp), caller->b, SW_PK_LEN);
    snprintf(now, sizeof(now), "%" PRId64, sw_unix_ms() / 1000);
    if ((rc = sw_buf_append(out, "[", 1)) || (rc = sw_db_acquire(st->db, &c, err)))
        goto fail;
    if ((rc = tx(c, "BEGIN", err)))
        goto fail;
    for (size_t i = 0; i < n; i++) {
        PGresult *res = NULL;
        sw_uuid_format(&ups[i].id, id);
        params[2] = ups[i].is_up ? "true" : "false";
        if ((rc = sw_db_exec_prepared(c, "td_status", 4, params, &res, err)))
            goto rollback;
        if (PQntuples(res) == 0) {
            PQclear(res);
            rc = missing_or_forbidden(c, id, pkp, i, n > 1, err);
            goto rollback;
        }
        rc = append_rows(st, res, out, &count);
        PQclear(res);
        if (rc)
            goto rollback;
    }
    if ((rc = tx(c, "COMMIT", err)))
        goto fail;
    sw_db_release(st->db, c);
    return sw_buf_append(out, "]", 1);
rollback:
    tx(c, "ROLLBACK", NULL);
fail:
    if (c)
        sw_db_release(st->db, c);
    return rc;
}

int td_store_delete(struct td_store *st, const struct sw_pk *caller, const struct sw_uuid *id,
                    struct sw_error *err)
{
    struct sw_db_conn *c = NULL;
    PGresult *res = NULL;
    char ids[SW_UUID_STR_LEN + 1], pkp[80];
    const char *params[2] = { ids, pkp };
    int rc;

    sw_uuid_format(id, ids);
    bytea_param(pkp, sizeof(pkp), caller->b, SW_PK_LEN);
    if ((rc = sw_db_acquire(st->db, &c, err)))
        return rc;
    rc = sw_db_exec_prepared(c, "td_delete", 2, params, &res, err);
    if (rc == SW_OK && PQntuples(res) == 0)
        rc = missing_or_forbidden(c, ids, pkp, 0, false, err);
    PQclear(res);
    sw_db_release(st->db, c);
    return rc;
}

int td_store_list(struct td_store *st, const struct sw_uuid *after, unsigned limit,
                  struct sw_buf *out, struct sw_error *err)
{
    char ids[SW_UUID_STR_LEN + 1], lim[16];
    const char *params[2] = { ids, lim };
    struct sw_db_conn *c = NULL;
    PGresult *res = NULL;
    size_t count = 0;
    int rc;
    sw_uuid_format(after, ids);
    snprintf(lim, sizeof(lim), "%u", limit);
    if ((rc = sw_db_acquire(st->db, &c, err)))
        return rc;
    rc = sw_db_exec_prepared(c, "td_list", 2, params, &res, err);
    sw_db_release(st->db, c);
    if (rc)
        return rc;
    if (sw_buf_append(out, "{\"transports\":[", 15) || append_rows(st, res, out, &count) ||
        sw_buf_append(out, "],\"next\":", 9))
        rc = SW_ENOMEM;
    /* a full page: there may be more after its last ID */
    else if (count == limit)
        rc = sw_buf_printf(out, "\"%s\"}", PQgetvalue(res, (int)count - 1, 0));
    else
        rc = sw_buf_append(out, "null}", 5);
    PQclear(res);
    return rc ? sw_error_set(err, SW_ENOMEM, "out of memory") : SW_OK;
}

static int exec_count(struct sw_db_conn *c, const char *stmt, int64_t cutoff, int64_t *affected,
                      struct sw_error *err)
{
    PGresult *res = NULL;
    char cut[24];
    const char *params[1] = { cut };
    int rc;
    snprintf(cut, sizeof(cut), "%" PRId64, cutoff);
    if ((rc = sw_db_exec_prepared(c, stmt, 1, params, &res, err)))
        return rc;
    *affected = strtoll(PQcmdTuples(res), NULL, 10);
    PQclear(res);
    return SW_OK;
}

int td_store_reap(struct td_store *st, int64_t purge_s, struct td_counts *out, struct sw_error *err)
{
    struct sw_db_conn *c = NULL;
    PGresult *res = NULL;
    int64_t now = sw_unix_ms() / 1000;
    int rc;

    memset(out, 0, sizeof(*out));
    if ((rc = sw_db_acquire(st->db, &c, err)))
        return rc;
    if ((rc = exec_count(c, "td_expire", now - st->ttl_s, &out->expired_now, err)) ||
        (rc = exec_count(c, "td_purge", now - purge_s, &out->purged_now, err)) ||
        (rc = sw_db_exec_prepared(c, "td_count", 0, NULL, &res, err)))
        goto out;
    out->total = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    out->up = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    PQclear(res);
out:
    sw_db_release(st->db, c);
    return rc;
}
