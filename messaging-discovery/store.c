#include "messaging-discovery/store.h"
#include "common/clock.h"
#include "common/json.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct sw_db_migration migrations[] = {
    { 1,
      "CREATE TABLE md_watermarks (pk bytea PRIMARY KEY, sequence bigint NOT NULL);"
      "CREATE TABLE md_entries ("
      "  pk bytea PRIMARY KEY,"
      "  sequence bigint NOT NULL,"
      "  entry text NOT NULL,"
      "  is_server boolean NOT NULL,"
      "  available_sessions bigint NOT NULL DEFAULT 0,"
      "  updated bigint NOT NULL);"
      "CREATE INDEX md_entries_updated ON md_entries (updated);"
      "CREATE INDEX md_entries_servers ON md_entries (updated) WHERE is_server;"
      "CREATE TABLE md_nonces (pk bytea PRIMARY KEY, next_nonce bigint NOT NULL);" },
};

static const struct {
    const char *name, *sql;
} statements[] = {
    { "md_put",
      "WITH w AS (INSERT INTO md_watermarks AS m (pk, sequence) VALUES ($1::bytea, $2::bigint)"
      " ON CONFLICT (pk) DO UPDATE SET sequence = EXCLUDED.sequence WHERE m.sequence < EXCLUDED.sequence"
      " RETURNING pk)"
      " INSERT INTO md_entries AS e (pk, sequence, entry, is_server, available_sessions, updated)"
      " SELECT pk, $2::bigint, $3, $4::boolean, $5::bigint, $6::bigint FROM w"
      " ON CONFLICT (pk) DO UPDATE SET sequence = EXCLUDED.sequence, entry = EXCLUDED.entry,"
      " is_server = EXCLUDED.is_server, available_sessions = EXCLUDED.available_sessions,"
      " updated = EXCLUDED.updated RETURNING pk" },
    { "md_get", "SELECT entry FROM md_entries WHERE pk = $1::bytea AND updated >= $2::bigint" },
    { "md_delete", "DELETE FROM md_entries WHERE pk = $1::bytea RETURNING pk" },
    { "md_all_servers",
      "SELECT entry FROM md_entries WHERE is_server AND updated >= $1::bigint ORDER BY pk LIMIT $2::int" },
    /* Weighted random order without replacement: sort by Exp(1)/weight. */
    { "md_available_servers",
      "SELECT entry FROM md_entries WHERE is_server AND updated >= $1::bigint AND available_sessions > 0"
      " ORDER BY -ln(1.0 - random()) / available_sessions LIMIT $2::int" },
    { "md_expire", "DELETE FROM md_entries WHERE updated < $1::bigint" },
    { "md_count", "SELECT count(*), count(*) FILTER (WHERE is_server) FROM md_entries" },
};

int md_store_migrate(struct md_store *st, struct sw_error *err)
{
    return sw_db_migrate(st->db, "messaging-discovery", migrations,
                         sizeof(migrations) / sizeof(migrations[0]), err);
}

int md_store_prepare(struct md_store *st)
{
    for (size_t i = 0; i < sizeof(statements) / sizeof(statements[0]); i++)
        if (sw_db_prepare(st->db, statements[i].name, statements[i].sql))
            return SW_ENOMEM;
    return SW_OK;
}

static void pk_param(const struct sw_pk *pk, char out[2 + SW_PK_HEX_LEN + 1])
{
    out[0] = '\\';
    out[1] = 'x';
    sw_pk_to_hex(pk, out + 2);
}

/* Runs one statement on a pooled connection. */
static int run(struct md_store *st, const char *stmt, int n, const char *const *params, PGresult **res,
               struct sw_error *err)
{
    struct sw_db_conn *c = NULL;
    int rc = sw_db_acquire(st->db, &c, err);
    if (rc)
        return rc;
    rc = sw_db_exec_prepared(c, stmt, n, params, res, err);
    sw_db_release(st->db, c);
    return rc;
}

int md_store_put(struct md_store *st, const struct sw_msg_entry *e, struct sw_error *err)
{
    char pk[2 + SW_PK_HEX_LEN + 1], seq[24], sessions[16], now[24];
    struct json_object *json = sw_msg_entry_to_json(e);
    const char *params[6] = { pk, seq, sw_json_compact(json, NULL), e->has_server ? "true" : "false",
                              sessions, now };
    PGresult *res = NULL;
    int rc;

    pk_param(&e->static_pk, pk);
    snprintf(seq, sizeof(seq), "%" PRIu64, e->sequence);
    snprintf(sessions, sizeof(sessions), "%" PRIu32, e->has_server ? e->available_sessions : 0);
    snprintf(now, sizeof(now), "%" PRId64, sw_unix_ms() / 1000);
    rc = run(st, "md_put", 6, params, &res, err);
    if (rc == SW_OK && PQntuples(res) == 0)
        rc = sw_error_set(err, SW_ECONFLICT, "sequence %" PRIu64 " is not above the last accepted sequence of this key",
                          e->sequence);
    PQclear(res);
    json_object_put(json);
    return rc;
}

int md_store_get(struct md_store *st, const struct sw_pk *pk, struct json_object **out,
                 struct sw_error *err)
{
    char pkp[2 + SW_PK_HEX_LEN + 1], cutoff[24];
    const char *params[2] = { pkp, cutoff };
    PGresult *res = NULL;
    int rc;
    pk_param(pk, pkp);
    snprintf(cutoff, sizeof(cutoff), "%" PRId64, sw_unix_ms() / 1000 - st->ttl_s);
    if ((rc = run(st, "md_get", 2, params, &res, err)))
        return rc;
    if (PQntuples(res) == 0)
        rc = sw_error_set(err, SW_ENOTFOUND, "no entry for this key");
    else
        rc = sw_json_parse(PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0), out, err);
    PQclear(res);
    return rc;
}

int md_store_delete(struct md_store *st, const struct sw_pk *pk, struct sw_error *err)
{
    char pkp[2 + SW_PK_HEX_LEN + 1];
    const char *params[1] = { pkp };
    PGresult *res = NULL;
    int rc;
    pk_param(pk, pkp);
    if ((rc = run(st, "md_delete", 1, params, &res, err)))
        return rc;
    if (PQntuples(res) == 0)
        rc = sw_error_set(err, SW_ENOTFOUND, "no entry for this key");
    PQclear(res);
    return rc;
}

int md_store_servers(struct md_store *st, bool available, unsigned limit, struct json_object **out,
                     struct sw_error *err)
{
    char cutoff[24], lim[16];
    const char *params[2] = { cutoff, lim };
    PGresult *res = NULL;
    struct json_object *arr;
    int rc;
    snprintf(cutoff, sizeof(cutoff), "%" PRId64, sw_unix_ms() / 1000 - st->ttl_s);
    snprintf(lim, sizeof(lim), "%u", limit);
    if ((rc = run(st, available ? "md_available_servers" : "md_all_servers", 2, params, &res, err)))
        return rc;
    arr = json_object_new_array();
    for (int i = 0; i < PQntuples(res); i++) {
        struct json_object *o = NULL;
        if (sw_json_parse(PQgetvalue(res, i, 0), (size_t)PQgetlength(res, i, 0), &o, NULL) == SW_OK)
            json_object_array_add(arr, o);
    }
    PQclear(res);
    *out = arr;
    return SW_OK;
}

int md_store_expire(struct md_store *st, struct md_counts *out, struct sw_error *err)
{
    char cutoff[24];
    const char *params[1] = { cutoff };
    PGresult *res = NULL;
    int rc;
    memset(out, 0, sizeof(*out));
    snprintf(cutoff, sizeof(cutoff), "%" PRId64, sw_unix_ms() / 1000 - st->ttl_s);
    if ((rc = run(st, "md_expire", 1, params, &res, err)))
        return rc;
    out->expired_now = strtoll(PQcmdTuples(res), NULL, 10);
    PQclear(res);
    if ((rc = run(st, "md_count", 0, NULL, &res, err)))
        return rc;
    out->entries = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    out->servers = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    PQclear(res);
    return SW_OK;
}
