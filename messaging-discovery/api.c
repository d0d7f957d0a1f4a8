#include "messaging-discovery/api.h"
#include "common/clock.h"
#include "common/json.h"
#include "common/log.h"
#include "common/metrics.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void reject(struct md_app *app, struct sw_http_response *resp, int status, const char *code,
                   const char *msg)
{
    atomic_fetch_add(&app->rejected_total, 1);
    sw_http_reply_error(resp, status, code, "%s", msg);
}

/* Checks the parts a signature cannot: freshness and bounds. */
static int check_entry_policy(const struct md_app *app, const struct sw_msg_entry *e, char *why, size_t cap)
{
    int64_t now = sw_unix_ms() / 1000;
    if (e->sequence > INT64_MAX) {
        snprintf(why, cap, "sequence is larger than 2^63-1");
        return -1;
    }
    if (e->timestamp > (uint64_t)(now + app->max_future_s)) {
        snprintf(why, cap, "timestamp %" PRIu64 " is in the future (now %" PRId64 ")", e->timestamp, now);
        return -1;
    }
    if ((int64_t)e->timestamp < now - app->max_age_s) {
        snprintf(why, cap, "timestamp %" PRIu64 " is stale: older than %" PRId64 "s", e->timestamp,
                 app->max_age_s);
        return -1;
    }
    return 0;
}

static bool is_revoked(void *arg, const struct sw_pk *pk)
{
    return sw_network_revoked(arg, pk);
}

/* Private network: a server entry needs role messaging-server, a client entry visor,
 * setup-node or service; the certificate comes in SW-Cert beside the self-signed entry. */
static unsigned entry_roles(const struct sw_msg_entry *e)
{
    return e->has_server ? SW_ROLE_BIT(SW_ROLE_MESSAGING_SERVER)
                         : SW_ROLE_BIT(SW_ROLE_VISOR) | SW_ROLE_BIT(SW_ROLE_SETUP_NODE) |
                           SW_ROLE_BIT(SW_ROLE_SERVICE);
}

static void handle_post_entry(struct sw_http_request *req, struct sw_http_response *resp)
{
    struct md_app *app = req->app;
    struct json_object *root = NULL;
    struct sw_error err = { 0 };
    struct sw_msg_entry e;
    struct sw_cert cert;
    struct md_cert_info ci = { 0 };
    char why[160], pk[SW_PK_HEX_LEN + 1];
    int rc;

    if (sw_json_parse(req->body, req->body_len, &root, &err)) {
        reject(app, resp, 400, "invalid_json", err.msg);
        return;
    }
    if (sw_msg_entry_from_json(root, &e, &err)) {
        reject(app, resp, 422, "invalid_entry", err.msg);
        goto out;
    }
    if ((rc = sw_msg_entry_verify(&e, &err))) {
        reject(app, resp, rc == SW_ECRYPTO ? 401 : 422,
               rc == SW_ECRYPTO ? "invalid_signature" : "invalid_entry", err.msg);
        goto out;
    }
    /* the signature proved the key: now its membership (403 not_a_member, one log line) */
    if (sw_network_admit_request(app->net, req, &e.static_pk, entry_roles(&e), &cert, resp)) {
        atomic_fetch_add(&app->rejected_total, 1);
        atomic_fetch_add(&app->not_member_total, 1);
        goto out;
    }
    if (app->net) {
        ci.role = cert.role;
        ci.not_after = cert.not_after;
        ci.hex = sw_http_header(req, SW_HDR_CERT);
    }
    if (check_entry_policy(app, &e, why, sizeof(why))) {
        reject(app, resp, 422, strstr(why, "sequence") ? "invalid_entry" : "stale_timestamp", why);
        goto out;
    }
    rc = md_store_put(&app->store, &e, app->net ? &ci : NULL, &err);
    if (rc == SW_ECONFLICT) {
        reject(app, resp, 422, "sequence_not_increasing", err.msg);
        goto out;
    }
    if (rc) {
        sw_http_reply_store_error(resp, &err);
        goto out;
    }
    atomic_fetch_add(&app->accepted_total, 1);
    sw_pk_to_hex(&e.static_pk, pk);
    if (e.has_server && e.available_sessions > MD_SESSIONS_CLAMP) {
        atomic_fetch_add(&app->clamped_total, 1);
        sw_log_debug("entry %s claims %" PRIu32 " free sessions: counted as %d", pk, e.available_sessions,
                     MD_SESSIONS_CLAMP);
    }
    sw_log_debug("entry %s sequence %" PRIu64 "%s", pk, e.sequence, e.has_server ? " (server)" : "");
    sw_http_reply_json(resp, 200, sw_msg_entry_to_json(&e));
out:
    json_object_put(root);
}

static void handle_get_entry(struct sw_http_request *req, struct sw_http_response *resp)
{
    struct md_app *app = req->app;
    struct sw_error err = { 0 };
    struct json_object *out = NULL;
    struct sw_pk pk;
    int rc;
    if (sw_pk_from_hex(&pk, req->param, "public key in path", &err)) {
        sw_http_reply_error(resp, 400, "invalid_public_key", "%s", err.msg);
        return;
    }
    rc = sw_network_revoked(app->net, &pk) ? SW_ENOTFOUND : md_store_get(&app->store, &pk, &out, &err);
    if (rc == SW_ENOTFOUND)
        sw_http_reply_error(resp, 404, "not_found", "no entry for %s", req->param);
    else if (rc)
        sw_http_reply_store_error(resp, &err);
    else
        sw_http_reply_json(resp, 200, out);
}

static void handle_delete_entry(struct sw_http_request *req, struct sw_http_response *resp)
{
    struct md_app *app = req->app;
    struct sw_error err = { 0 };
    struct sw_pk pk, caller;
    struct json_object *o;
    int rc;

    if (sw_sreq_verify(&app->nonces, req, &caller, resp))
        return;
    if (sw_pk_from_hex(&pk, req->param, "public key in path", &err)) {
        sw_http_reply_error(resp, 400, "invalid_public_key", "%s", err.msg);
        return;
    }
    if (!sw_pk_equal(&pk, &caller)) {
        sw_http_reply_error(resp, 403, "not_owner", "only the key itself may delete its entry");
        return;
    }
    rc = md_store_delete(&app->store, &pk, &err);
    if (rc == SW_ENOTFOUND) {
        sw_http_reply_error(resp, 404, "not_found", "no entry for %s", req->param);
        return;
    }
    if (rc) {
        sw_http_reply_store_error(resp, &err);
        return;
    }
    sw_log_info("entry %s deleted by its key", req->param);
    o = json_object_new_object();
    json_object_object_add(o, "deleted", json_object_new_string(req->param));
    sw_http_reply_json(resp, 200, o);
}

static void reply_servers(struct sw_http_request *req, struct sw_http_response *resp, bool available)
{
    struct md_app *app = req->app;
    struct sw_error err = { 0 };
    struct json_object *out = NULL;
    unsigned long limit;
    int rc;

    if (sw_http_query_uint(req, "limit", 1, MD_SERVERS_MAX, available ? MD_SERVERS_DEFAULT : MD_SERVERS_MAX,
                           &limit)) {
        sw_http_reply_error(resp, 400, "invalid_limit", "limit must be 1 to %d", MD_SERVERS_MAX);
        return;
    }
    if ((rc = md_store_servers(&app->store, available, (unsigned)limit, app->net ? is_revoked : NULL,
                               app->net, &out, &err))) {
        sw_http_reply_store_error(resp, &err);
        return;
    }
    sw_http_reply_json(resp, 200, out);
}

static void handle_available(struct sw_http_request *req, struct sw_http_response *resp)
{
    reply_servers(req, resp, true);
}

static void handle_all(struct sw_http_request *req, struct sw_http_response *resp)
{
    reply_servers(req, resp, false);
}

static void handle_nonce(struct sw_http_request *req, struct sw_http_response *resp)
{
    struct md_app *app = req->app;
    sw_sreq_reply_nonce(&app->nonces, req, resp);
}

const struct sw_http_route md_routes[] = {
    { "GET", "/security/nonces/", SW_ROUTE_PREFIX, handle_nonce, "/security/nonces/{pk}", 0 },
    { "GET", "/messaging-discovery/entry/", SW_ROUTE_PREFIX, handle_get_entry,
      "/messaging-discovery/entry/{pk}", 0 },
    { "POST", "/messaging-discovery/entry/", SW_ROUTE_EXACT, handle_post_entry, NULL, 64 * 1024 },
    { "DELETE", "/messaging-discovery/entry/", SW_ROUTE_PREFIX, handle_delete_entry,
      "/messaging-discovery/entry/{pk}", 0 },
    { "GET", "/messaging-discovery/available_servers", SW_ROUTE_EXACT, handle_available, NULL, 0 },
    { "GET", "/messaging-discovery/all_servers", SW_ROUTE_EXACT, handle_all, NULL, 0 },
};
const size_t md_n_routes = sizeof(md_routes) / sizeof(md_routes[0]);

void md_write_metrics(void *arg, struct sw_buf *out)
{
    struct md_app *a = arg;
    sw_metrics_write_one(out, "md_entries", "gauge", "Live entries (clients and servers)",
                         (double)atomic_load(&a->entries));
    sw_metrics_write_one(out, "md_servers", "gauge", "Live messaging server entries",
                         (double)atomic_load(&a->servers));
    sw_metrics_write_one(out, "md_entries_accepted_total", "counter", "Entries accepted",
                         (double)atomic_load(&a->accepted_total));
    sw_metrics_write_one(out, "md_entries_rejected_total", "counter", "Entries rejected",
                         (double)atomic_load(&a->rejected_total));
    sw_metrics_write_one(out, "md_entries_expired_total", "counter", "Entries expired unrefreshed",
                         (double)atomic_load(&a->expired_total));
    sw_metrics_write_one(out, "md_entries_not_member_total", "counter",
                         "Entries refused: no certificate of the needed role (private network)",
                         (double)atomic_load(&a->not_member_total));
    sw_metrics_write_one(out, "md_entries_clamped_total", "counter",
                         "Server entries whose available_sessions was counted as the clamp (2048)",
                         (double)atomic_load(&a->clamped_total));
    sw_metrics_write_one(out, "md_entries_revoked_total", "counter",
                         "Entries deleted because their key was revoked",
                         (double)atomic_load(&a->revoked_purged_total));
}

void md_purge_revoked(struct md_app *app)
{
    uint64_t gen = sw_network_generation(app->net);
    struct sw_error err = { 0 };
    int64_t n = 0;

    if (!app->net || gen == app->purged_gen)
        return;
    if (md_store_purge(&app->store, is_revoked, app->net, &n, &err)) {
        sw_log_warn("removing revoked entries: %s", err.msg); /* retried next period */
        return;
    }
    app->purged_gen = gen;
    atomic_fetch_add(&app->revoked_purged_total, (uint64_t)n);
    if (n)
        sw_log_info("removed %lld entr%s of revoked keys", (long long)n, n == 1 ? "y" : "ies");
}
