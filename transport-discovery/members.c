#include "transport-discovery/members.h"
#include "common/clock.h"
#include "common/hex.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* $1 pk, $2 network, $3 role, $4 name, $5 groups, $6 not_before, $7 not_after, $8 cert,
 * $9 now. An unchanged or older certificate writes nothing (no trigger fires, so the route
 * finder is not woken for nothing). */
#define UPSERT_SQL                                                                            \
    "INSERT INTO td_members AS m (pk, network, role, name, groups, not_before, not_after, cert," \
    " updated) VALUES ($1::bytea, $2::bytea, $3, $4, $5, $6::bigint, $7::bigint, $8::bytea,"   \
    " $9::bigint) ON CONFLICT (pk) DO UPDATE SET network = EXCLUDED.network,"                 \
    " role = EXCLUDED.role, name = EXCLUDED.name, groups = EXCLUDED.groups,"                  \
    " not_before = EXCLUDED.not_before, not_after = EXCLUDED.not_after, cert = EXCLUDED.cert," \
    " updated = EXCLUDED.updated WHERE m.cert <> EXCLUDED.cert AND (m.network <> EXCLUDED.network" \
    " OR m.not_before < EXCLUDED.not_before"                                                  \
    " OR (m.not_before = EXCLUDED.not_before AND m.not_after < EXCLUDED.not_after))"

/* $1 network, $2 issued_at, $3 list, $4 now: only a newer list replaces the stored one. */
#define REVOCATIONS_PUT_SQL                                                                   \
    "INSERT INTO td_revocations AS r (network, issued_at, list, updated)"                     \
    " VALUES ($1::bytea, $2::bigint, $3::bytea, $4::bigint) ON CONFLICT (network) DO UPDATE"  \
    " SET issued_at = EXCLUDED.issued_at, list = EXCLUDED.list, updated = EXCLUDED.updated"   \
    " WHERE r.issued_at < EXCLUDED.issued_at RETURNING issued_at"

static const struct {
    const char *name, *sql;
} statements[] = {
    { "td_member_upsert", UPSERT_SQL },
    { "td_member_purge", "DELETE FROM td_members WHERE not_after < $1::bigint" },
    { "td_member_count",
      "SELECT count(*), count(*) FILTER (WHERE not_after > $1::bigint) FROM td_members" },
    { "td_revocations_get",
      "SELECT issued_at, encode(list, 'hex') FROM td_revocations"
      " WHERE network = $1::bytea AND issued_at > $2::bigint" },
    { "td_revocations_put", REVOCATIONS_PUT_SQL },
    { "td_revocations_issued", "SELECT issued_at FROM td_revocations WHERE network = $1::bytea" },
};

int td_members_prepare(struct td_store *st)
{
    for (size_t i = 0; i < sizeof(statements) / sizeof(statements[0]); i++)
        if (sw_db_prepare(st->db, statements[i].name, statements[i].sql))
            return SW_ENOMEM;
    return SW_OK;
}

/* "\x<hex>" (PostgreSQL's text form of bytea) into out[2 * n + 3]. */
static void bytea_text(char *out, const void *b, size_t n)
{
    out[0] = '\\';
    out[1] = 'x';
    sw_hex_encode(out + 2, 2 * n + 1, b, n);
}

static int run(struct sw_db_conn *c, const char *stmt, int n, const char *const *params,
               PGresult **res, struct sw_error *err)
{
    PGresult *r = NULL;
    int rc = sw_db_exec_prepared(c, stmt, n, params, &r, err);
    if (res)
        *res = rc ? NULL : r;
    else
        PQclear(r);
    return rc;
}

int td_members_upsert(struct td_store *st, const struct sw_cert *certs, size_t n,
                      struct sw_error *err)
{
    struct sw_db_conn *c = NULL;
    char pk[2 * SW_PK_LEN + 3], net[2 * SW_PK_LEN + 3], nb[24], na[24], now[24];
    char cert[2 * SW_CERT_MAX_LEN + 3];
    const char *params[9] = { pk, net, NULL, NULL, NULL, nb, na, cert, now };
    int rc;

    if (n == 0)
        return SW_OK;
    snprintf(now, sizeof(now), "%" PRId64, sw_unix_ms() / 1000);
    if ((rc = sw_db_acquire(st->db, &c, err)))
        return rc;
    for (size_t i = 0; i < n && rc == SW_OK; i++) {
        uint8_t raw[SW_CERT_MAX_LEN];
        size_t len;
        if (sw_cert_encode(&certs[i], raw, sizeof(raw), &len)) {
            rc = sw_error_set(err, SW_EINVAL, "certificate cannot be encoded");
            break;
        }
        bytea_text(pk, certs[i].subject.b, SW_PK_LEN);
        bytea_text(net, certs[i].network.b, SW_PK_LEN);
        bytea_text(cert, raw, len);
        snprintf(nb, sizeof(nb), "%" PRIu64, certs[i].not_before);
        snprintf(na, sizeof(na), "%" PRIu64, certs[i].not_after);
        params[2] = sw_role_name(certs[i].role);
        params[3] = certs[i].name;
        params[4] = certs[i].groups;
        rc = run(c, "td_member_upsert", 9, params, NULL, err);
    }
    sw_db_release(st->db, c);
    return rc;
}

static int exec_one(struct td_store *st, const char *stmt, int n, const char *const *params,
                    PGresult **res, struct sw_error *err)
{
    struct sw_db_conn *c = NULL;
    int rc = sw_db_acquire(st->db, &c, err);
    if (rc)
        return rc;
    rc = run(c, stmt, n, params, res, err);
    sw_db_release(st->db, c);
    return rc;
}

int td_members_purge(struct td_store *st, int64_t cutoff, int64_t *deleted, struct sw_error *err)
{
    char cut[24];
    const char *params[1] = { cut };
    PGresult *res;
    int rc;
    snprintf(cut, sizeof(cut), "%" PRId64, cutoff);
    if ((rc = exec_one(st, "td_member_purge", 1, params, &res, err)))
        return rc;
    *deleted = strtoll(PQcmdTuples(res), NULL, 10);
    PQclear(res);
    return SW_OK;
}

int td_members_count(struct td_store *st, int64_t now, int64_t *total, int64_t *valid,
                     struct sw_error *err)
{
    char nows[24];
    const char *params[1] = { nows };
    PGresult *res;
    int rc;
    snprintf(nows, sizeof(nows), "%" PRId64, now);
    if ((rc = exec_one(st, "td_member_count", 1, params, &res, err)))
        return rc;
    *total = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    *valid = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    PQclear(res);
    return SW_OK;
}

int td_revocations_load(struct td_store *st, const struct sw_pk *network, uint64_t after,
                        uint8_t **list, size_t *len, struct sw_error *err)
{
    char net[2 * SW_PK_LEN + 3], aft[24];
    const char *params[2] = { net, aft };
    PGresult *res;
    int rc;

    *list = NULL;
    *len = 0;
    bytea_text(net, network->b, SW_PK_LEN);
    snprintf(aft, sizeof(aft), "%" PRIu64, after);
    if ((rc = exec_one(st, "td_revocations_get", 2, params, &res, err)))
        return rc;
    if (PQntuples(res) == 1) {
        const char *hex = PQgetvalue(res, 0, 1);
        size_t n = (size_t)PQgetlength(res, 0, 1) / 2;
        uint8_t *b = malloc(n ? n : 1);
        if (!b)
            rc = sw_error_set(err, SW_ENOMEM, "out of memory");
        else if (sw_hex_decode(b, n, hex, 2 * n)) {
            free(b);
            rc = sw_error_set(err, SW_EINVAL, "td_revocations: list is not hex");
        } else {
            *list = b;
            *len = n;
        }
    }
    PQclear(res);
    return rc;
}

int td_revocations_store(struct td_store *st, const struct sw_pk *network, uint64_t issued_at,
                         const uint8_t *list, size_t len, uint64_t *stored, struct sw_error *err)
{
    char net[2 * SW_PK_LEN + 3], iss[24], now[24];
    char *hex = malloc(2 * len + 3);
    const char *params[4] = { net, iss, hex, now };
    struct sw_db_conn *c = NULL;
    PGresult *res = NULL;
    int rc;

    *stored = 0;
    if (!hex)
        return sw_error_set(err, SW_ENOMEM, "out of memory");
    bytea_text(net, network->b, SW_PK_LEN);
    bytea_text(hex, list, len);
    snprintf(iss, sizeof(iss), "%" PRIu64, issued_at);
    snprintf(now, sizeof(now), "%" PRId64, sw_unix_ms() / 1000);
    if ((rc = sw_db_acquire(st->db, &c, err)))
        goto out;
    if ((rc = run(c, "td_revocations_put", 4, params, &res, err)))
        goto out;
    if (PQntuples(res) == 0) { /* a list as new or newer is there: say which */
        PQclear(res);
        res = NULL;
        if ((rc = run(c, "td_revocations_issued", 1, params, &res, err)))
            goto out;
        *stored = PQntuples(res) ? strtoull(PQgetvalue(res, 0, 0), NULL, 10) : 0;
        rc = sw_error_set(err, SW_ECONFLICT,
                          "issued_at %" PRIu64 " is not newer than the stored list's %" PRIu64,
                          issued_at, *stored);
    }
out:
    PQclear(res);
    if (c)
        sw_db_release(st->db, c);
    free(hex);
    return rc;
}
