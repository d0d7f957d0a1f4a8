#include "transport-discovery/api.h"
#include "common/json.h"
#include "common/log.h"
#include "common/metrics.h"
#include "transport-discovery/members.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Sends JSON text built by the store and frees it. */
static void reply_buf(struct sw_http_response *resp, int status, struct sw_buf *b)
{
    sw_http_reply_text(resp, status, "application/json", b->data ? b->data : "", b->len);
    sw_buf_free(b);
}

/* Maps a store error to its HTTP reply. */
static void reply_store_error(struct sw_http_response *resp, int rc, const struct sw_error *err)
{
    switch (rc) {
    case SW_ENOTFOUND:
        sw_http_reply_error(resp, 404, "not_found", "%s", err->msg);
        break;
    case SW_EPERM:
        sw_http_reply_error(resp, 403, "not_an_edge", "%s", err->msg);
        break;
    case SW_EINVAL:
        sw_http_reply_error(resp, 422, "invalid_entry", "%s", err->msg);
        break;
    default:
        sw_http_reply_store_error(resp, err);
    }
}

/* Sends the store's JSON text (status on success) or its error; frees out either way. */
static void reply_result(struct sw_http_response *resp, int rc, int status, struct sw_buf *out,
                         const struct sw_error *err)
{
    if (rc) {
        sw_buf_free(out);
        reply_store_error(resp, rc, err);
        return;
    }
    reply_buf(resp, status, out);
}

/* Parses the body as a JSON array of 1..TD_MAX_BATCH items; replies 400 on failure. */
static struct json_object *parse_batch(const struct sw_http_request *req, struct sw_http_response *resp)
{
    struct json_object *root = NULL;
    struct sw_error err = { 0 };
    size_t n;
    if (sw_json_parse(req->body, req->body_len, &root, &err)) {
        sw_http_reply_error(resp, 400, "invalid_json", "%s", err.msg);
        return NULL;
    }
    if (!json_object_is_type(root, json_type_array)) {
        sw_http_reply_error(resp, 400, "invalid_body", "the body must be a JSON array");
        goto fail;
    }
    n = json_object_array_length(root);
    if (n == 0 || n > TD_MAX_BATCH) {
        sw_http_reply_error(resp, 400, "invalid_body", "the array must hold 1 to %d items", TD_MAX_BATCH);
        goto fail;
    }
    return root;
fail:
    json_object_put(root);
    return NULL;
}

/* Private network: the signed request's caller must be a member with role visor (403
 * not_a_member and one log line otherwise). *cert gets its certificate. */
static int admit_caller(struct td_app *app, const struct sw_http_request *req, const struct sw_pk *caller,
                        struct sw_cert *cert, struct sw_http_response *resp)
{
    int rc = sw_network_admit_request(app->net, req, caller, SW_ROLE_BIT(SW_ROLE_VISOR), cert, resp);
    if (rc)
        atomic_fetch_add(&app->refused_total, 1);
    return rc;
}

/* Adds c to the certificates to store unless its key is there already. */
static void add_member(struct sw_cert *certs, size_t *n, const struct sw_cert *c)
{
    for (size_t i = 0; i < *n; i++)
        if (sw_pk_equal(&certs[i].subject, &c->subject))
            return;
    certs[(*n)++] = *c;
}

/* Private network: both edges of entry `where` must carry a valid visor certificate. */
static int admit_edges(struct td_app *app, const struct sw_http_request *req, const struct sw_pk *caller,
                       const struct sw_tp_signed_entry *se, const char *where, struct sw_cert *certs,
                       size_t *n, struct sw_http_response *resp)
{
    for (int j = 0; j < 2; j++) {
        struct sw_error err = { 0 };
        struct sw_cert c;
        char pk[SW_PK_HEX_LEN + 1], by[SW_PK_HEX_LEN + 1];
        if (sw_network_admit_hex(app->net, &se->entry.edges[j], se->certs[j], SW_ROLE_BIT(SW_ROLE_VISOR),
                                 &c, &err) == SW_OK) {
            add_member(certs, n, &c);
            continue;
        }
        sw_pk_to_hex(&se->entry.edges[j], pk);
        sw_pk_to_hex(caller, by);
        sw_log_warn("refused %s %s from %s: %s.certs[%d] (edge %s): %s", req->method, req->path, by, where, j,
                    pk, err.msg);
        sw_http_reply_error(resp, 403, "not_a_member", "%s.certs[%d] (edge %s): %s", where, j, pk, err.msg);
        atomic_fetch_add(&app->refused_total, 1);
        return SW_EPERM;
    }
    return SW_OK;
}

/* Stores the admitted certificates (td_members); a failure is the request's 503. */
static int store_members(struct td_app *app, const struct sw_cert *certs, size_t n, struct sw_http_response *resp)
{
    struct sw_error err = { 0 };
    int rc;
    if (!app->net || n == 0)
        return SW_OK;
    if ((rc = td_members_upsert(&app->store, certs, n, &err)))
        reply_store_error(resp, rc, &err);
    return rc;
}

static void handle_register(struct sw_http_request *req, struct sw_http_response *resp)
{
    struct td_app *app = req->app;
    struct sw_tp_signed_entry *entries = NULL;
    struct sw_cert *certs = NULL; /* private network: the certificates to store */
    struct json_object *root = NULL;
    struct sw_buf out;
    struct sw_error err = { 0 };
    struct sw_pk caller;
    struct sw_cert caller_cert;
    char first[SW_UUID_STR_LEN + 1];
    size_t n, n_certs = 0;
    int rc;

    sw_buf_init(&out, 0);
    if (sw_sreq_verify(&app->nonces, req, &caller, resp))
        return;
    if (admit_caller(app, req, &caller, &caller_cert, resp))
        return;
    if (!(root = parse_batch(req, resp)))
        return;
    n = json_object_array_length(root);
    entries = calloc(n, sizeof(*entries));
    certs = app->net ? calloc(2 * n + 1, sizeof(*certs)) : NULL;
    if (!entries || (app->net && !certs)) {
        sw_http_reply_error(resp, 503, "out_of_memory", "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        char where[24];
        snprintf(where, sizeof(where), "[%zu]", i);
        if (sw_tp_signed_entry_from_json(json_object_array_get_idx(root, i), where, &entries[i], &err)) {
            sw_http_reply_error(resp, 400, "invalid_entry", "%s", err.msg);
            goto out;
        }
        if ((rc = sw_tp_signed_entry_verify(&entries[i], &err))) {
            sw_http_reply_error(resp, 422, rc == SW_ECRYPTO ? "invalid_entry_signature" : "invalid_entry",
                                "%s: %s", where, err.msg);
            goto out;
        }
        if (sw_tp_entry_edge_index(&entries[i].entry, &caller) < 0) {
            sw_http_reply_error(resp, 403, "not_an_edge", "%s: the caller is not an edge of this transport", where);
            goto out;
        }
        if (app->net && admit_edges(app, req, &caller, &entries[i], where, certs, &n_certs, resp))
            goto out;
    }
    if (app->net)
        add_member(certs, &n_certs, &caller_cert);
    if (store_members(app, certs, n_certs, resp))
        goto out;
    if ((rc = td_store_register(&app->store, &caller, entries, n, &out, &err))) {
        reply_store_error(resp, rc, &err);
        goto out;
    }
    atomic_fetch_add(&app->registered_total, n);
    sw_uuid_format(&entries[0].entry.id, first);
    sw_log_info("registered %zu transport(s), first %s", n, first);
    reply_buf(resp, 201, &out);
out:
    sw_buf_free(&out);
    free(entries);
    free(certs);
    json_object_put(root);
}

static void handle_get_id(struct sw_http_request *req, struct sw_http_response *resp)
{
    struct td_app *app = req->app;
    struct sw_error err = { 0 };
    struct sw_buf out;
    struct sw_uuid id;
    int rc;
    if (sw_uuid_parse(&id, req->param, "transport ID in path", &err)) {
        sw_http_reply_error(resp, 400, "invalid_transport_id", "%s", err.msg);
        return;
    }
    sw_buf_init(&out, 0);
    rc = td_store_get(&app->store, &id, &out, &err);
    reply_result(resp, rc, 200, &out, &err);
}

static void handle_get_edge(struct sw_http_request *req, struct sw_http_response *resp)
{
    struct td_app *app = req->app;
    struct sw_error err = { 0 };
    struct sw_buf out;
    struct sw_pk pk;
    int rc;
    if (sw_pk_from_hex(&pk, req->param, "public key in path", &err)) {
        sw_http_reply_error(resp, 400, "invalid_public_key", "%s", err.msg);
        return;
    }
    sw_buf_init(&out, 0);
    rc = td_store_by_edge(&app->store, &pk, &out, &err);
    reply_result(resp, rc, 200, &out, &err);
}

static void handle_statuses(struct sw_http_request *req, struct sw_http_response *resp)
{
    struct td_app *app = req->app;
    struct td_status_update ups[TD_MAX_BATCH];
    struct json_object *root = NULL;
    struct sw_buf out;
    struct sw_error err = { 0 };
    struct sw_pk caller;
    struct sw_cert caller_cert;
    size_t n;
    int rc;

    sw_buf_init(&out, 0);
    if (sw_sreq_verify(&app->nonces, req, &caller, resp))
        return;
    if (admit_caller(app, req, &caller, &caller_cert, resp))
        return;
    if (!(root = parse_batch(req, resp)))
        return;
    n = json_object_array_length(root);
    for (size_t i = 0; i < n; i++) {
        struct json_object *item = json_object_array_get_idx(root, i);
        const char *id;
        char where[24], name[40];
        snprintf(where, sizeof(where), "[%zu]", i);
        snprintf(name, sizeof(name), "%s.t_id", where);
        if (sw_json_get_string(item, "t_id", where, 64, &id, &err) ||
            sw_uuid_parse(&ups[i].id, id, name, &err) ||
            sw_json_get_bool(item, "is_up", where, &ups[i].is_up, &err)) {
            sw_http_reply_error(resp, 400, "invalid_status", "%s", err.msg);
            goto out;
        }
    }
    /* a renewed certificate reaches td_members with the edge's next report */
    if (store_members(app, &caller_cert, 1, resp))
        goto out;
    if ((rc = td_store_set_statuses(&app->store, &caller, ups, n, &out, &err))) {
        reply_store_error(resp, rc, &err);
        goto out;
    }
    reply_buf(resp, 200, &out);
out:
    sw_buf_free(&out);
    json_object_put(root);
}

static void handle_delete(struct sw_http_request *req, struct sw_http_response *resp)
{
    struct td_app *app = req->app;
    struct sw_error err = { 0 };
    struct sw_pk caller;
    struct sw_uuid id;
    struct json_object *o;
    int rc;

    if (sw_sreq_verify(&app->nonces, req, &caller, resp))
        return;
    if (admit_caller(app, req, &caller, NULL, resp))
        return;
    if (sw_uuid_parse(&id, req->param, "transport ID in path", &err)) {
        sw_http_reply_error(resp, 400, "invalid_transport_id", "%s", err.msg);
        return;
    }
    if ((rc = td_store_delete(&app->store, &caller, &id, &err))) {
        reply_store_error(resp, rc, &err);
        return;
    }
    atomic_fetch_add(&app->deleted_total, 1);
    sw_log_info("deleted transport %s", req->param);
    o = json_object_new_object();
    json_object_object_add(o, "deleted", json_object_new_string(req->param));
    sw_http_reply_json(resp, 200, o);
}

static void handle_list(struct sw_http_request *req, struct sw_http_response *resp)
{
    struct td_app *app = req->app;
    struct sw_error err = { 0 };
    struct sw_uuid after;
    struct sw_buf out;
    char buf[64];
    unsigned long limit;
    int rc;

    memset(&after, 0, sizeof(after));
    if (sw_http_query_uint(req, "limit", 1, TD_PAGE_MAX, TD_PAGE_DEFAULT, &limit)) {
        sw_http_reply_error(resp, 400, "invalid_limit", "limit must be 1 to %d", TD_PAGE_MAX);
        return;
    }
    rc = sw_http_query(req, "after", buf, sizeof(buf));
    if ((rc == SW_OK && sw_uuid_parse(&after, buf, "after", &err)) || (rc && rc != SW_ENOTFOUND)) {
        sw_http_reply_error(resp, 400, "invalid_transport_id", "after: must be a transport ID");
        return;
    }
    sw_buf_init(&out, 0);
    rc = td_store_list(&app->store, &after, (unsigned)limit, &out, &err);
    reply_result(resp, rc, 200, &out, &err);
}

static void handle_nonce(struct sw_http_request *req, struct sw_http_response *resp)
{
    struct td_app *app = req->app;
    sw_sreq_reply_nonce(&app->nonces, req, resp);
}

const struct sw_http_route td_routes[] = {
    { "GET", "/security/nonces/", SW_ROUTE_PREFIX, handle_nonce, "/security/nonces/{pk}", 0 },
    { "POST", "/transports/", SW_ROUTE_EXACT, handle_register, NULL, 0 },
    { "GET", "/transports/", SW_ROUTE_EXACT, handle_list, NULL, 0 },
    { "GET", "/transports/id:", SW_ROUTE_PREFIX, handle_get_id, "/transports/id:{id}", 0 },
    { "DELETE", "/transports/id:", SW_ROUTE_PREFIX, handle_delete, "/transports/id:{id}", 0 },
    { "GET", "/transports/edge:", SW_ROUTE_PREFIX, handle_get_edge, "/transports/edge:{pk}", 0 },
    { "POST", "/statuses", SW_ROUTE_EXACT, handle_statuses, NULL, 0 },
    { "GET", "/network/revocations", SW_ROUTE_EXACT, td_handle_revocations_get, NULL, 0 },
    /* the largest list is 2 x SW_REVLIST_MAX_LEN hex digits in {"list":"..."} */
    { "PUT", "/network/revocations", SW_ROUTE_EXACT, td_handle_revocations_put, NULL,
      2 * SW_REVLIST_MAX_LEN + 4096 },
};
const size_t td_n_routes = sizeof(td_routes) / sizeof(td_routes[0]);

void td_write_metrics(void *app, struct sw_buf *out)
{
    struct td_app *a = app;
    sw_metrics_write_one(out, "td_transports", "gauge", "Registered transports",
                         (double)atomic_load(&a->transports_total));
    sw_metrics_write_one(out, "td_transports_up", "gauge", "Transports both edges report up",
                         (double)atomic_load(&a->transports_up));
    sw_metrics_write_one(out, "td_registrations_total", "counter", "Entries registered or refreshed",
                         (double)atomic_load(&a->registered_total));
    sw_metrics_write_one(out, "td_deletions_total", "counter", "Transports deleted by an edge",
                         (double)atomic_load(&a->deleted_total));
    sw_metrics_write_one(out, "td_expired_total", "counter",
                         "Reaper updates marking a transport's edge down for missing the TTL",
                         (double)atomic_load(&a->expired_total));
    sw_metrics_write_one(out, "td_purged_total", "counter", "Transports deleted after both edges went silent",
                         (double)atomic_load(&a->purged_total));
    if (!a->net)
        return;
    uint64_t issued_at;
    uint32_t revoked;
    sw_network_revocations_info(a->net, &issued_at, &revoked);
    sw_metrics_write_one(out, "td_refused_total", "counter", "Requests refused as not_a_member",
                         (double)atomic_load(&a->refused_total));
    sw_metrics_write_one(out, "td_members", "gauge", "Keys with a stored certificate",
                         (double)atomic_load(&a->members_total));
    sw_metrics_write_one(out, "td_members_valid", "gauge", "Keys whose stored certificate has not expired",
                         (double)atomic_load(&a->members_valid));
    sw_metrics_write_one(out, "td_revocations_issued_at", "gauge", "issued_at of the revocation list in use",
                         (double)issued_at);
    sw_metrics_write_one(out, "td_revoked_keys", "gauge", "Keys in the revocation list in use", (double)revoked);
}
