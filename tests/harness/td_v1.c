#include "tests/harness/td_v1.h"
#include "common/db.h"
#include "common/tp_entry.h"

#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>

/* Verbatim migration 1 of transport-discovery/store.c. */
static const struct sw_db_migration schema_v1[] = {
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
};

int th_td_v1_create(const char *db_url)
{
    struct sw_error err = { 0 };
    struct sw_db *db = NULL;
    int rc = sw_db_open(db_url, 1, &db, &err);
    if (rc == SW_OK)
        rc = sw_db_migrate(db, "transport-discovery", schema_v1, 1, &err);
    sw_db_close(db);
    if (rc != SW_OK)
        fprintf(stderr, "th_td_v1_create: %s\n", err.msg);
    return rc == SW_OK ? 0 : -1;
}

static void bytea_hex(char *out, const uint8_t *b, size_t n)
{
    out[0] = '\\';
    out[1] = 'x';
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 + 2 * i, 3, "%02x", b[i]);
}

int th_td_v1_insert(const char *db_url, const struct sw_keypair *x, bool up_x, const struct sw_keypair *y,
                    bool up_y, int64_t updated, struct sw_uuid *id)
{
    struct sw_tp_entry e;
    char ids[SW_UUID_STR_LEN + 1], ea[2 + 2 * SW_PK_LEN + 1], eb[sizeof(ea)], sig[2 + 2 * SW_SIG_LEN + 1];
    char t[24];
    const uint8_t zero[SW_SIG_LEN] = { 0 };
    const char *params[7] = { ids, ea, eb, sig, NULL, NULL, t };
    PGconn *pg;
    PGresult *r;
    bool x_is_a, ok;

    if (sw_tp_entry_make(&e, &x->pk, &y->pk, "stcp", "v1", NULL) != SW_OK)
        return -1;
    x_is_a = sw_tp_entry_edge_index(&e, &x->pk) == 0;
    sw_uuid_format(&e.id, ids);
    bytea_hex(ea, e.edges[0].b, SW_PK_LEN);
    bytea_hex(eb, e.edges[1].b, SW_PK_LEN);
    bytea_hex(sig, zero, SW_SIG_LEN);
    params[4] = (x_is_a ? up_x : up_y) ? "true" : "false";
    params[5] = (x_is_a ? up_y : up_x) ? "true" : "false";
    snprintf(t, sizeof(t), "%" PRId64, updated);
    pg = PQconnectdb(db_url);
    r = PQexecParams(pg, "INSERT INTO td_transports (t_id, edge_a, edge_b, type, label, sig_a, sig_b, up_a, up_b,"
                         " registered, updated) VALUES ($1::uuid, $2::bytea, $3::bytea, 'stcp', 'v1', $4::bytea,"
                         " $4::bytea, $5::boolean, $6::boolean, $7::bigint, $7::bigint)",
                     7, NULL, params, NULL, NULL, 0);
    ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        fprintf(stderr, "th_td_v1_insert: %s", PQerrorMessage(pg));
    PQclear(r);
    PQfinish(pg);
    if (ok)
        *id = e.id;
    return ok ? 0 : -1;
}
