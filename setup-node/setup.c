/* setup.c — the steps of a route group setup (docs/routing.md §3) and their rollback. */
#include "setup-node/sn.h"
#include "common/clock.h"
#include "common/json.h"
#include "common/log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SN_RECOVER_BUDGET_MS 30000

const char *const sn_result_names[SN_N_RESULTS] = {
    "established", "forbidden", "invalid_request", "invalid_path", "visor_unreachable",
    "refused", "timeout", "no_listener", "database_unavailable", "internal_error",
};
const char *const sn_step_names[SN_N_STEPS] = { "reserve", "add_rules", "group_ready", "del_rules" };

enum sn_result sn_result_of(int code)
{
    switch (code) {
    case SW_EPERM: return SN_FORBIDDEN;
    case SW_EIO: return SN_UNREACHABLE;
    case SW_EPROTO: return SN_REFUSED;
    case SW_ETIMEDOUT: return SN_TIMEOUT;
    case SW_ENOTFOUND: return SN_NO_LISTENER;
    case SW_EDB: return SN_DB_UNAVAILABLE;
    default: return SN_INTERNAL;
    }
}

struct sn_setup {
    struct sn_app *app;
    const struct sw_route_group_req *req;
    struct sn_peer peers[SN_MAX_PEERS];
    size_t n_peers;
    uint32_t fwd_rid[SW_SETUP_MAX_HOPS], rev_rid[SW_SETUP_MAX_HOPS]; /* rid on hop[i].to */
    int64_t row;
    struct sw_error fail; /* why it failed: SW_E* code (sn_result_of) and the reason text */
};

static struct sn_peer *peer_of(struct sn_setup *s, const struct sw_pk *pk)
{
    for (size_t i = 0; i < s->n_peers; i++)
        if (sw_pk_equal(&s->peers[i].pk, pk))
            return &s->peers[i];
    if (s->n_peers == SN_MAX_PEERS)
        return NULL; /* cannot happen: validated paths have at most 2*16 distinct ends */
    s->peers[s->n_peers] = (struct sn_peer){ .pk = *pk, .fd = -1 };
    return &s->peers[s->n_peers++];
}

static int collect_peers(struct sn_setup *s)
{
    const struct sw_route_group_req *r = s->req;
    struct sn_peer *p;
    for (size_t i = 0; i < r->n_fwd; i++) {
        if (!(p = peer_of(s, &r->fwd[i].to)))
            return sw_error_set(&s->fail, SW_ERANGE, "too many visors");
        p->n_need++;
    }
    for (size_t i = 0; i < r->n_rev; i++) {
        if (!(p = peer_of(s, &r->rev[i].to)))
            return sw_error_set(&s->fail, SW_ERANGE, "too many visors");
        p->n_need++;
    }
    return SW_OK;
}

static int parse_rids(struct sn_setup *s, struct sn_peer *p, struct json_object *resp)
{
    struct json_object *arr = NULL;
    if (sw_json_get_array(resp, "rids", "", &arr, NULL) || json_object_array_length(arr) != p->n_need)
        goto bad;
    for (size_t i = 0; i < p->n_need; i++) {
        struct json_object *v = json_object_array_get_idx(arr, i);
        int64_t x = json_object_is_type(v, json_type_int) ? json_object_get_int64(v) : 0;
        if (x < 1 || x > UINT32_MAX)
            goto bad;
        p->rids[i] = (uint32_t)x;
    }
    p->n_rids = p->n_need;
    return SW_OK;
bad:
    return sw_error_set(&s->fail, SW_EPROTO, "a visor answered reserve without %zu valid route IDs", p->n_need);
}

/* The first failed call in the order of the visors: its code, its reason in s->fail. */
static int first_failure(struct sn_setup *s, const struct sn_call *calls, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (calls[i].rc) {
            s->fail = calls[i].err;
            return calls[i].rc;
        }
    return SW_OK;
}

static void calls_free(struct sn_call *calls, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        json_object_put(calls[i].req);
        json_object_put(calls[i].resp);
    }
}

static struct json_object *reserve_req(const struct sn_peer *p)
{
    struct json_object *req = json_object_new_object();
    json_object_object_add(req, "type", json_object_new_string("reserve"));
    json_object_object_add(req, "n", json_object_new_int64((int64_t)p->n_need));
    return req;
}

/* reserve on every visor at once; the first failure in visor order is the setup's. */
static int step_reserve(struct sn_setup *s)
{
    struct sn_call calls[SN_MAX_PEERS];
    int rc = SW_OK;
    for (size_t i = 0; i < s->n_peers; i++)
        calls[i] = (struct sn_call){ .peer = &s->peers[i], .req = reserve_req(&s->peers[i]) };
    sn_rpc_all(s->app, SN_STEP_RESERVE, calls, s->n_peers);
    for (size_t i = 0; i < s->n_peers && rc == SW_OK; i++)
        rc = calls[i].rc ? first_failure(s, &calls[i], 1) : parse_rids(s, &s->peers[i], calls[i].resp);
    calls_free(calls, s->n_peers);
    if (rc)
        return rc;
    for (size_t i = 0; i < s->req->n_fwd; i++) {
        struct sn_peer *p = peer_of(s, &s->req->fwd[i].to);
        s->fwd_rid[i] = p->rids[p->n_used++];
    }
    for (size_t i = 0; i < s->req->n_rev; i++) {
        struct sn_peer *p = peer_of(s, &s->req->rev[i].to);
        s->rev_rid[i] = p->rids[p->n_used++];
    }
    return SW_OK;
}

/* The rule for hop i's receiving end: forward to the next hop, or consume at the end.
 * local/remote: the consuming end's own address and its peer's. */
static struct json_object *rule_json(const struct sw_setup_hop *hops, const uint32_t *rids, size_t n, size_t i,
                                     const struct sw_setup_addr *local, const struct sw_setup_addr *remote)
{
    struct json_object *o = json_object_new_object();
    char tid[SW_UUID_STR_LEN + 1];
    json_object_object_add(o, "rid", json_object_new_int64(rids[i]));
    if (i + 1 < n) {
        sw_uuid_format(&hops[i + 1].t_id, tid);
        json_object_object_add(o, "type", json_object_new_string("forward"));
        json_object_object_add(o, "next_tp", json_object_new_string(tid));
        json_object_object_add(o, "next_rid", json_object_new_int64(rids[i + 1]));
    } else {
        json_object_object_add(o, "type", json_object_new_string("consume"));
        json_object_object_add(o, "local_port", json_object_new_int(local->port));
        json_object_object_add(o, "remote_pk", sw_json_pk(&remote->pk));
        json_object_object_add(o, "remote_port", json_object_new_int(remote->port));
    }
    return o;
}

static struct json_object *rules_for(const struct sn_setup *s, const struct sn_peer *p)
{
    const struct sw_route_group_req *r = s->req;
    struct json_object *arr = json_object_new_array();
    for (size_t i = 0; i < r->n_fwd; i++)
        if (sw_pk_equal(&r->fwd[i].to, &p->pk))
            json_object_array_add(arr, rule_json(r->fwd, s->fwd_rid, r->n_fwd, i, &r->dst, &r->src));
    for (size_t i = 0; i < r->n_rev; i++)
        if (sw_pk_equal(&r->rev[i].to, &p->pk))
            json_object_array_add(arr, rule_json(r->rev, s->rev_rid, r->n_rev, i, &r->src, &r->dst));
    return arr;
}

static struct json_object *rids_json(const struct sn_peer *p)
{
    struct json_object *arr = json_object_new_array();
    for (size_t i = 0; i < p->n_rids; i++)
        json_object_array_add(arr, json_object_new_int64(p->rids[i]));
    return arr;
}

/* Records where rules are (about to be) installed, so a crash can be undone. */
static int record_installed(struct sn_setup *s)
{
    struct json_object *arr = json_object_new_array();
    struct sw_error err = { 0 };
    int rc;
    for (size_t i = 0; i < s->n_peers; i++) {
        struct json_object *o;
        if (!s->peers[i].rules_sent)
            continue;
        o = json_object_new_object();
        json_object_object_add(o, "pk", sw_json_pk(&s->peers[i].pk));
        json_object_object_add(o, "rids", rids_json(&s->peers[i]));
        json_object_array_add(arr, o);
    }
    rc = sn_store_installed(s->app->db, s->row, sw_json_compact(arr, NULL), &err);
    json_object_put(arr);
    if (rc)
        return sw_error_set(&s->fail, SW_EDB, "cannot record the setup: %.200s", err.msg);
    return SW_OK;
}

static struct json_object *add_rules_req(const struct sn_setup *s, const struct sn_peer *p)
{
    struct json_object *req = json_object_new_object();
    json_object_object_add(req, "type", json_object_new_string("add_rules"));
    json_object_object_add(req, "rules", rules_for(s, p));
    return req;
}

/* One record for all visors before any add_rules is sent (one database write, not one per
 * visor), then add_rules on every visor at once. A rollback sends del_rules to every visor
 * but one that refused: a refusal installs nothing, a lost answer may have installed all. */
static int step_add_rules(struct sn_setup *s)
{
    struct sn_call calls[SN_MAX_PEERS];
    int rc;
    for (size_t i = 0; i < s->n_peers; i++)
        s->peers[i].rules_sent = true;
    if ((rc = record_installed(s)))
        return rc;
    for (size_t i = 0; i < s->n_peers; i++)
        calls[i] = (struct sn_call){ .peer = &s->peers[i], .req = add_rules_req(s, &s->peers[i]) };
    sn_rpc_all(s->app, SN_STEP_ADD_RULES, calls, s->n_peers);
    for (size_t i = 0; i < s->n_peers; i++)
        if (calls[i].rc == SW_EPROTO)
            s->peers[i].rules_sent = false;
    rc = first_failure(s, calls, s->n_peers);
    calls_free(calls, s->n_peers);
    return rc;
}

static int step_group_ready(struct sn_setup *s)
{
    const struct sw_route_group_req *r = s->req;
    struct json_object *req = json_object_new_object();
    char tid[SW_UUID_STR_LEN + 1];
    int rc;
    sw_uuid_format(&r->rev[0].t_id, tid);
    json_object_object_add(req, "type", json_object_new_string("group_ready"));
    json_object_object_add(req, "local_port", json_object_new_int(r->dst.port));
    json_object_object_add(req, "remote_pk", sw_json_pk(&r->src.pk));
    json_object_object_add(req, "remote_port", json_object_new_int(r->src.port));
    json_object_object_add(req, "send_tp", json_object_new_string(tid));
    json_object_object_add(req, "send_rid", json_object_new_int64(s->rev_rid[0]));
    json_object_object_add(req, "recv_rid", json_object_new_int64(s->fwd_rid[r->n_fwd - 1]));
    json_object_object_add(req, "initiator", json_object_new_boolean(0));
    if (r->rebind) /* the same group re-routed (docs/routing.md §7): passed through */
        json_object_object_add(req, "rebind", json_object_new_boolean(1));
    rc = sn_rpc(s->app, peer_of(s, &r->dst.pk), SN_STEP_GROUP_READY, req, NULL, &s->fail);
    json_object_put(req);
    return rc;
}

/* A del_rules request for rids (takes them). */
static struct json_object *del_rules_req(struct json_object *rids)
{
    struct json_object *req = json_object_new_object();
    json_object_object_add(req, "type", json_object_new_string("del_rules"));
    json_object_object_add(req, "rids", rids);
    return req;
}

/* del_rules on every call's visor at once (dialing where needed); puts the requests, logs
 * each failure. Returns how many visors confirmed. */
static size_t del_rules_all(struct sn_app *app, struct sn_call *calls, size_t n)
{
    char hex[SW_PK_HEX_LEN + 1];
    size_t done = 0;
    sn_rpc_all(app, SN_STEP_DEL_RULES, calls, n);
    for (size_t i = 0; i < n; i++) {
        if (calls[i].rc == SW_OK) {
            done++;
            continue;
        }
        sw_pk_to_hex(&calls[i].peer->pk, hex);
        sw_log_warn("rollback: del_rules on %.16s failed: %s (rules expire by themselves)", hex, calls[i].err.msg);
    }
    calls_free(calls, n);
    return done;
}

static size_t rollback(struct sn_setup *s)
{
    struct sn_call calls[SN_MAX_PEERS];
    size_t n = 0;
    for (size_t i = 0; i < s->n_peers; i++)
        if (s->peers[i].rules_sent)
            calls[n++] = (struct sn_call){ .peer = &s->peers[i], .req = del_rules_req(rids_json(&s->peers[i])) };
    return del_rules_all(s->app, calls, n);
}

static struct json_object *ok_response(const struct sn_setup *s)
{
    const struct sw_route_group_req *r = s->req;
    struct json_object *o = sw_setup_ok(r->id), *g = json_object_new_object();
    char tid[SW_UUID_STR_LEN + 1];
    sw_uuid_format(&r->fwd[0].t_id, tid);
    json_object_object_add(g, "send_tp", json_object_new_string(tid));
    json_object_object_add(g, "send_rid", json_object_new_int64(s->fwd_rid[0]));
    json_object_object_add(g, "recv_rid", json_object_new_int64(s->rev_rid[r->n_rev - 1]));
    json_object_object_add(o, "group", g);
    return o;
}

/* Runs the steps on a recorded setup; fills s->fail on failure. */
static int run_steps(struct sn_setup *s)
{
    int rc;
    if ((rc = collect_peers(s)) || (rc = step_reserve(s)) || (rc = step_add_rules(s)) ||
        (rc = step_group_ready(s)))
        return rc;
    return SW_OK;
}

static void finish(struct sn_setup *s, bool ok, size_t rolled)
{
    struct sw_error err = { 0 };
    char src[SW_PK_HEX_LEN + 1], dst[SW_PK_HEX_LEN + 1];
    sw_pk_to_hex(&s->req->src.pk, src);
    sw_pk_to_hex(&s->req->dst.pk, dst);
    if (sn_store_finish(s->app->db, s->row, ok ? "established" : "failed", ok ? NULL : s->fail.msg, &err))
        sw_log_warn("route group %" PRId64 ": cannot record the outcome: %s", s->row, err.msg);
    if (ok)
        sw_log_info("route group %" PRId64 " %.16s:%u -> %.16s:%u established (%zu+%zu hops)", s->row, src,
                    s->req->src.port, dst, s->req->dst.port, s->req->n_fwd, s->req->n_rev);
    else
        sw_log_info("route group %" PRId64 " %.16s:%u -> %.16s:%u failed: %s: %s; rolled back on %zu visor(s)",
                    s->row, src, s->req->src.port, dst, s->req->dst.port,
                    sn_result_names[sn_result_of(s->fail.code)], s->fail.msg, rolled);
}

void sn_setup_run(struct sn_app *app, const struct sw_pk *caller, const struct sw_route_group_req *req,
                  struct json_object **resp)
{
    struct sn_setup *s = calloc(1, sizeof(*s));
    struct sw_error err = { 0 };
    int64_t t0 = sw_mono_ns();
    enum sn_result result;
    bool ok = false;
    size_t rolled = 0;
    if (!s) {
        *resp = sw_setup_error(req->id, "internal_error", "out of memory");
        atomic_fetch_add(&app->results[SN_INTERNAL], 1);
        return;
    }
    *s = (struct sn_setup){ .app = app, .req = req };
    if (!sw_pk_equal(caller, &req->src.pk)) {
        sw_error_set(&s->fail, SW_EPERM, "src.pk must be the requesting visor's key");
        goto out;
    }
    if (sn_store_begin(app->db, req, &s->row, &err)) {
        sw_error_set(&s->fail, SW_EDB, "cannot record the setup: %.200s", err.msg);
        goto out;
    }
    atomic_fetch_add(&app->active, 1);
    ok = run_steps(s) == SW_OK;
    if (!ok)
        rolled = rollback(s);
    finish(s, ok, rolled);
    atomic_fetch_sub(&app->active, 1);
out:
    for (size_t i = 0; i < s->n_peers; i++)
        sn_peer_release(app, &s->peers[i]);
    result = ok ? SN_ESTABLISHED : sn_result_of(s->fail.code);
    if (!ok && s->row == 0)
        sw_log_info("route_group request %" PRIu64 " rejected: %s: %s", req->id, sn_result_names[result],
                    s->fail.msg);
    *resp = ok ? ok_response(s) : sw_setup_error(req->id, sn_result_names[result], s->fail.msg);
    atomic_fetch_add(&app->results[result], 1);
    sw_histogram_observe_ns(&app->setup_latency, sw_mono_ns() - t0);
    free(s);
}

/* Undoes one interrupted setup: del_rules on each recorded visor at once. */
static void recover_row(struct sn_app *app, struct json_object *row, int64_t started_ms)
{
    struct json_object *inst = json_object_object_get(row, "installed");
    int64_t id = json_object_get_int64(json_object_object_get(row, "id"));
    size_t n = json_object_is_type(inst, json_type_array) ? json_object_array_length(inst) : 0, k = 0, done = 0;
    struct sn_peer peers[SN_MAX_PEERS];
    struct sn_call calls[SN_MAX_PEERS];
    struct sw_error err = { 0 };
    for (size_t i = 0; i < n && k < SN_MAX_PEERS; i++) {
        struct json_object *e = json_object_array_get_idx(inst, i), *rids = NULL;
        peers[k] = (struct sn_peer){ .fd = -1 };
        if (sw_json_get_pk(e, "pk", "installed", &peers[k].pk, NULL) || sw_json_get_array(e, "rids", "installed", &rids, NULL))
            continue;
        calls[k] = (struct sn_call){ .peer = &peers[k], .req = del_rules_req(json_object_get(rids)) };
        k++;
    }
    if (sw_ms_since(started_ms) < SN_RECOVER_BUDGET_MS)
        done = del_rules_all(app, calls, k);
    else
        calls_free(calls, k);
    for (size_t i = 0; i < k; i++)
        sn_peer_close(&peers[i]);
    if (sn_store_finish(app->db, id, "rolled_back", "interrupted by a restart of the setup node", &err))
        sw_log_warn("route group %" PRId64 ": cannot record the rollback: %s", id, err.msg);
    else
        sw_log_info("route group %" PRId64 " interrupted by a restart: rolled back on %zu of %zu visor(s)", id, done, n);
    atomic_fetch_add(&app->rolled_back_at_start, 1);
}

void sn_setup_recover(struct sn_app *app)
{
    struct json_object *rows = NULL;
    struct sw_error err = { 0 };
    int64_t started_ms = sw_mono_ms();
    size_t n;
    if (sn_store_in_progress(app->db, &rows, &err)) {
        sw_log_warn("cannot read interrupted setups: %s", err.msg);
        return;
    }
    n = json_object_is_type(rows, json_type_array) ? json_object_array_length(rows) : 0;
    for (size_t i = 0; i < n && !atomic_load(&app->stopping); i++)
        recover_row(app, json_object_array_get_idx(rows, i), started_ms);
    json_object_put(rows);
}
