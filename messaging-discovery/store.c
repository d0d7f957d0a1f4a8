#include "messaging-discovery/store.h"
#include "common/buf.h"
#include "common/clock.h"
#include "common/json.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MD_STR_(x) #x
#define MD_STR(x) MD_STR_(x)

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
    /* private networks: the certificate the entry was admitted with (role 0, not_after 0,
     * cert NULL in an open network) */
    { 2,
      "ALTER TABLE md_entries ADD COLUMN role smallint NOT NULL DEFAULT 0,"
      "  ADD COLUMN not_after bigint NOT NULL DEFAULT 0, ADD COLUMN cert text;" },
};

static const struct {
    const char *name, *sql;
} statements[] = {
    { "md_put",
      "WITH w AS (INSERT INTO md_watermarks AS m (pk, sequence) VALUES ($1::bytea, $2::bigint)"
      " ON CONFLICT (pk) DO UPDATE SET sequence = EXCLUDED.sequence WHERE m.sequence < EXCLUDED.sequence"
      " RETURNING pk)"
      " INSERT INTO md_entries AS e (pk, sequence, entry, is_server, available_sessions, updated,"
      "   role, not_after, cert)"
      " SELECT pk, $2::bigint, $3, $4::boolean, $5::bigint, $6::bigint, $7::smallint, $8::bigint,"
      "   NULLIF($9, '') FROM w"
      " ON CONFLICT (pk) DO UPDATE SET sequence = EXCLUDED.sequence, entry = EXCLUDED.entry,"
      " is_server = EXCLUDED.is_server, available_sessions = EXCLUDED.available_sessions,"
      " updated = EXCLUDED.updated, role = EXCLUDED.role, not_after = EXCLUDED.not_after,"
      " cert = EXCLUDED.cert RETURNING pk" },
    /* $3 (not_after floor): -1 in an open network, now in a private one, so an entry stored
     * without a certificate (not_after 0) or with an expired one is not served */
    { "md_get",
      "SELECT entry FROM md_entries WHERE pk = $1::bytea AND updated >= $2::bigint"
      " AND not_after > $3::bigint" },
    { "md_delete", "DELETE FROM md_entries WHERE pk = $1::bytea RETURNING pk" },
    { "md_all_servers",
      "SELECT entry, pk FROM md_entries WHERE is_server AND updated >= $1::bigint"
      " AND not_after > $3::bigint ORDER BY pk LIMIT $2::int" },
    /* Weighted random order without replacement: sort by Exp(1)/weight, the weight being the
     * claimed free sessions clamped (also rows stored before the clamp existed). */
    { "md_available_servers",
      "SELECT entry, pk FROM md_entries WHERE is_server AND updated >= $1::bigint AND available_sessions > 0"
      " AND not_after > $3::bigint"
      " ORDER BY -ln(1.0 - random()) / LEAST(available_sessions, " MD_STR(MD_SESSIONS_CLAMP) ") LIMIT $2::int" },
    { "md_pks", "SELECT pk FROM md_entries" },
    { "md_purge", "DELETE FROM md_entries WHERE pk = ANY($1::bytea[])" },
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

int md_store_put(struct md_store *st, const struct sw_msg_entry *e, const struct md_cert_info *ci,
                 struct sw_error *err)
{
    char pk[2 + SW_PK_HEX_LEN + 1], seq[24], sessions[16], now[24], role[8], not_after[24];
    struct json_object *json = sw_msg_entry_to_json(e);
    const char *params[9] = { pk, seq, sw_json_compact(json, NULL), e->has_server ? "true" : "false",
                              sessions, now, role, not_after, ci && ci->hex ? ci->hex : "" };
    PGresult *res = NULL;
    int rc;

    pk_param(&e->static_pk, pk);
    snprintf(seq, sizeof(seq), "%" PRIu64, e->sequence);
    snprintf(sessions, sizeof(sessions), "%" PRIu32,
             !e->has_server ? 0 : e->available_sessions < MD_SESSIONS_CLAMP ? e->available_sessions : MD_SESSIONS_CLAMP);
    snprintf(now, sizeof(now), "%" PRId64, sw_unix_ms() / 1000);
    snprintf(role, sizeof(role), "%u", ci ? ci->role : 0);
    /* bigint: a not_after past 2^63-1 is stored as the largest value */
    snprintf(not_after, sizeof(not_after), "%" PRIu64,
             ci ? (ci->not_after > INT64_MAX ? (uint64_t)INT64_MAX : ci->not_after) : 0);
    rc = run(st, "md_put", 9, params, &res, err);
    if (rc == SW_OK && PQntuples(res) == 0)
        rc = sw_error_set(err, SW_ECONFLICT, "sequence %" PRIu64 " is not above the last accepted sequence of this key",
                          e->sequence);
    PQclear(res);
    json_object_put(json);
    return rc;
}

static void floor_param(const struct md_store *st, char out[24])
{
    snprintf(out, 24, "%" PRId64, st->private_net ? sw_unix_ms() / 1000 : (int64_t)-1);
}

int md_store_get(struct md_store *st, const struct sw_pk *pk, struct json_object **out,
                 struct sw_error *err)
{
    char pkp[2 + SW_PK_HEX_LEN + 1], cutoff[24], floor[24];
    const char *params[3] = { pkp, cutoff, floor };
    PGresult *res = NULL;
    int rc;
    pk_param(pk, pkp);
    snprintf(cutoff, sizeof(cutoff), "%" PRId64, sw_unix_ms() / 1000 - st->ttl_s);
    floor_param(st, floor);
    if ((rc = run(st, "md_get", 3, params, &res, err)))
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

/* A bytea column in text form ("\\x" + hex) as a key. */
static bool pk_value(const PGresult *res, int row, int col, struct sw_pk *pk)
{
    const char *v = PQgetvalue(res, row, col);
    return PQgetlength(res, row, col) == 2 + SW_PK_HEX_LEN && v[0] == '\\' && v[1] == 'x' &&
           sw_pk_from_hex(pk, v + 2, "pk", NULL) == SW_OK;
}

int md_store_servers(struct md_store *st, bool available, unsigned limit, md_skip_fn skip, void *skip_arg,
                     struct json_object **out, struct sw_error *err)
{
    char cutoff[24], lim[16], floor[24];
    const char *params[3] = { cutoff, lim, floor };
    PGresult *res = NULL;
    struct json_object *arr;
    int rc;
    snprintf(cutoff, sizeof(cutoff), "%" PRId64, sw_unix_ms() / 1000 - st->ttl_s);
    snprintf(lim, sizeof(lim), "%u", limit);
    floor_param(st, floor);
    if ((rc = run(st, available ? "md_available_servers" : "md_all_servers", 3, params, &res, err)))
        return rc;
    arr = json_object_new_array();
    for (int i = 0; i < PQntuples(res); i++) {
        struct json_object *o = NULL;
        struct sw_pk pk;
        if (skip && (!pk_value(res, i, 1, &pk) || skip(skip_arg, &pk)))
            continue;
        if (sw_json_parse(PQgetvalue(res, i, 0), (size_t)PQgetlength(res, i, 0), &o, NULL) == SW_OK)
            json_object_array_add(arr, o);
    }
    PQclear(res);
    *out = arr;
    return SW_OK;
}

int md_store_purge(struct md_store *st, md_skip_fn drop, void *arg, int64_t *purged,
                   struct sw_error *err)
{
    struct sw_buf arr;
    PGresult *res = NULL;
    const char *params[1];
    char hex[SW_PK_HEX_LEN + 1];
    size_t n = 0;
    int rc;

    *purged = 0;
    if ((rc = run(st, "md_pks", 0, NULL, &res, err)))
        return rc;
    /* a bytea[] literal: {"\\x<hex>",...} (the backslash escaped inside the quotes) */
    sw_buf_init(&arr, 0);
    rc = sw_buf_printf(&arr, "{");
    for (int i = 0; i < PQntuples(res) && rc == SW_OK; i++) {
        struct sw_pk pk;
        if (!pk_value(res, i, 0, &pk) || !drop(arg, &pk))
            continue;
        sw_pk_to_hex(&pk, hex);
        rc = sw_buf_printf(&arr, "%s\"\\\\x%s\"", n++ ? "," : "", hex);
    }
    PQclear(res);
    res = NULL;
    if (rc == SW_OK)
        rc = sw_buf_printf(&arr, "}");
    if (rc != SW_OK) {
        sw_buf_free(&arr);
        return sw_error_set(err, SW_ENOMEM, "out of memory");
    }
    if (n > 0) {
        params[0] = arr.data;
        rc = run(st, "md_purge", 1, params, &res, err);
        if (rc == SW_OK)
            *purged = strtoll(PQcmdTuples(res), NULL, 10);
        PQclear(res);
    }
    sw_buf_free(&arr);
    return rc;
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
