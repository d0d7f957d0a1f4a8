/* store.c — sn_route_groups: one row per route_group request that got past validation. */
#include "setup-node/sn.h"
#include "common/json.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct sw_db_migration migrations[] = {
    { 1,
      "CREATE TABLE sn_route_groups ("
      "  id bigserial PRIMARY KEY,"
      "  src_pk text NOT NULL, src_port integer NOT NULL,"
      "  dst_pk text NOT NULL, dst_port integer NOT NULL,"
      "  forward jsonb NOT NULL, reverse jsonb NOT NULL,"
      "  status text NOT NULL DEFAULT 'in_progress'"
      "    CHECK (status IN ('in_progress','established','failed','rolled_back')),"
      "  error text,"
      "  installed jsonb NOT NULL DEFAULT '[]',"
      "  started_at timestamptz NOT NULL DEFAULT clock_timestamp(),"
      "  finished_at timestamptz,"
      "  duration_ms bigint);"
      "CREATE INDEX sn_route_groups_in_progress ON sn_route_groups (id) WHERE status = 'in_progress';" },
    /* next nonces of the admin keys that sign GET /route-groups (access.c) */
    { 2, SW_NONCE_TABLE_DDL("sn_nonces") },
};

#define TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

static const struct {
    const char *name, *sql;
} statements[] = {
    { "sn_begin",
      "INSERT INTO sn_route_groups (src_pk, src_port, dst_pk, dst_port, forward, reverse)"
      " VALUES ($1, $2::int, $3, $4::int, $5::jsonb, $6::jsonb) RETURNING id" },
    { "sn_installed", "UPDATE sn_route_groups SET installed = $2::jsonb WHERE id = $1::bigint" },
    { "sn_finish",
      "UPDATE sn_route_groups SET status = $2, error = $3, finished_at = clock_timestamp(),"
      " duration_ms = (extract(epoch FROM clock_timestamp() - started_at) * 1000)::bigint"
      " WHERE id = $1::bigint" },
    { "sn_list",
      "SELECT coalesce(json_agg(json_build_object('id', id,"
      " 'src', json_build_object('pk', src_pk, 'port', src_port),"
      " 'dst', json_build_object('pk', dst_pk, 'port', dst_port),"
      " 'forward', forward, 'reverse', reverse, 'status', status, 'error', error,"
      " 'installed', installed, 'started_at', " TS("started_at") ","
      " 'finished_at', " TS("finished_at") ", 'duration_ms', duration_ms) ORDER BY id DESC), '[]')"
      " FROM (SELECT * FROM sn_route_groups ORDER BY id DESC LIMIT $1::int) g" },
    { "sn_in_progress",
      "SELECT coalesce(json_agg(json_build_object('id', id, 'installed', installed) ORDER BY id), '[]')"
      " FROM sn_route_groups WHERE status = 'in_progress'" },
};

int sn_store_migrate(struct sw_db *db, struct sw_error *err)
{
    return sw_db_migrate(db, "setup-node", migrations, sizeof(migrations) / sizeof(migrations[0]), err);
}

int sn_store_prepare(struct sw_db *db)
{
    for (size_t i = 0; i < sizeof(statements) / sizeof(statements[0]); i++)
        if (sw_db_prepare(db, statements[i].name, statements[i].sql))
            return SW_ENOMEM;
    return SW_OK;
}

static int run(struct sw_db *db, const char *stmt, int n, const char *const *params, PGresult **res,
               struct sw_error *err)
{
    struct sw_db_conn *c = NULL;
    PGresult *r = NULL;
    int rc = sw_db_acquire(db, &c, err);
    if (rc)
        return rc;
    rc = sw_db_exec_prepared(c, stmt, n, params, &r, err);
    sw_db_release(db, c);
    if (res)
        *res = r;
    else
        PQclear(r);
    return rc;
}

static struct json_object *path_json(const struct sw_setup_hop *hops, size_t n)
{
    struct json_object *arr = json_object_new_array();
    char tid[SW_UUID_STR_LEN + 1];
    for (size_t i = 0; arr && i < n; i++) {
        struct json_object *h = json_object_new_object();
        json_object_object_add(h, "from", sw_json_pk(&hops[i].from));
        json_object_object_add(h, "to", sw_json_pk(&hops[i].to));
        sw_uuid_format(&hops[i].t_id, tid);
        json_object_object_add(h, "t_id", json_object_new_string(tid));
        json_object_array_add(arr, h);
    }
    return arr;
}

int sn_store_begin(struct sw_db *db, const struct sw_route_group_req *r, int64_t *id, struct sw_error *err)
{
    char src[SW_PK_HEX_LEN + 1], dst[SW_PK_HEX_LEN + 1], sport[8], dport[8];
    struct json_object *fwd = path_json(r->fwd, r->n_fwd), *rev = path_json(r->rev, r->n_rev);
    const char *params[6] = { src, sport, dst, dport, NULL, NULL };
    PGresult *res = NULL;
    int rc = SW_ENOMEM;
    if (!fwd || !rev)
        goto out;
    sw_pk_to_hex(&r->src.pk, src);
    sw_pk_to_hex(&r->dst.pk, dst);
    snprintf(sport, sizeof(sport), "%u", r->src.port);
    snprintf(dport, sizeof(dport), "%u", r->dst.port);
    params[4] = sw_json_compact(fwd, NULL);
    params[5] = sw_json_compact(rev, NULL);
    if ((rc = run(db, "sn_begin", 6, params, &res, err)) == SW_OK)
        *id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
out:
    json_object_put(fwd);
    json_object_put(rev);
    return rc;
}

int sn_store_installed(struct sw_db *db, int64_t id, const char *installed, struct sw_error *err)
{
    char ids[24];
    const char *params[2] = { ids, installed };
    snprintf(ids, sizeof(ids), "%" PRId64, id);
    return run(db, "sn_installed", 2, params, NULL, err);
}

int sn_store_finish(struct sw_db *db, int64_t id, const char *status, const char *error, struct sw_error *err)
{
    char ids[24];
    const char *params[3] = { ids, status, error };
    snprintf(ids, sizeof(ids), "%" PRId64, id);
    return run(db, "sn_finish", 3, params, NULL, err);
}

static int query_json(struct sw_db *db, const char *stmt, int n, const char *const *params,
                      struct json_object **out, struct sw_error *err)
{
    PGresult *res = NULL;
    int rc = run(db, stmt, n, params, &res, err);
    if (rc == SW_OK)
        rc = sw_json_parse(PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0), out, err);
    PQclear(res);
    return rc;
}

int sn_store_list(struct sw_db *db, unsigned limit, struct json_object **out, struct sw_error *err)
{
    char lim[16];
    const char *params[1] = { lim };
    snprintf(lim, sizeof(lim), "%u", limit);
    return query_json(db, "sn_list", 1, params, out, err);
}

int sn_store_in_progress(struct sw_db *db, struct json_object **out, struct sw_error *err)
{
    return query_json(db, "sn_in_progress", 0, NULL, out, err);
}
