/* revocations.c — the private network's revocation list: served to every component
 * (GET /network/revocations), replaced by the operator (PUT, signed by the network key: the
 * list is its own authentication), kept in td_revocations so that every TD instance on the
 * database serves and applies the same one. */
#include "common/hex.h"
#include "common/json.h"
#include "common/log.h"
#include "transport-discovery/api.h"
#include "transport-discovery/members.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define LIST_HEX_MAX (2 * SW_REVLIST_MAX_LEN)

void td_revcache_free(struct td_revcache *c)
{
    free(c->body);
    c->body = NULL;
    c->issued_at = 0;
}

/* GET's body for a parsed list and its encoded bytes. */
static char *build_body(const struct sw_revlist *l, const uint8_t *bytes, size_t len)
{
    struct json_object *o = json_object_new_object(), *keys = json_object_new_array();
    char *hex = malloc(2 * len + 1), *body = NULL;
    if (!o || !keys || !hex)
        goto out;
    sw_hex_encode(hex, 2 * len + 1, bytes, len);
    for (uint32_t i = 0; i < l->count; i++) {
        char pk[SW_PK_HEX_LEN + 1];
        sw_pk_to_hex(&l->keys[i], pk);
        json_object_array_add(keys, json_object_new_string(pk));
    }
    json_object_object_add(o, "list", json_object_new_string(hex));
    json_object_object_add(o, "issued_at", json_object_new_int64((int64_t)l->issued_at));
    json_object_object_add(o, "revoked", keys);
    keys = NULL;
    body = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
out:
    json_object_put(keys);
    json_object_put(o);
    free(hex);
    return body;
}

/* Applies a list that verifies (the network takes it when newer) and serves it when it is
 * newer than the served one. */
static int adopt(struct td_app *app, const uint8_t *bytes, size_t len, struct sw_error *err)
{
    struct sw_revlist l;
    char *body;
    int rc = sw_network_offer_revocations(app->net, bytes, len, err);
    if (rc && rc != SW_ECONFLICT)
        return rc;
    if ((rc = sw_revlist_parse(bytes, len, &l, err)))
        return rc;
    body = build_body(&l, bytes, len);
    if (!body) {
        sw_revlist_free(&l);
        return sw_error_set(err, SW_ENOMEM, "out of memory");
    }
    pthread_mutex_lock(&app->revs.mu);
    if (l.issued_at > app->revs.issued_at) {
        free(app->revs.body);
        app->revs.body = body;
        app->revs.issued_at = l.issued_at;
        body = NULL;
    }
    pthread_mutex_unlock(&app->revs.mu);
    free(body);
    sw_revlist_free(&l);
    return SW_OK;
}

int td_revocations_sync(struct td_app *app, struct sw_error *err)
{
    uint64_t have;
    uint32_t count;
    uint8_t *list = NULL;
    size_t len = 0;
    int rc;

    if (!app->net)
        return SW_OK;
    sw_network_revocations_info(app->net, &have, &count);
    if ((rc = td_revocations_load(&app->store, sw_network_key(app->net), have, &list, &len, err)) ||
        !list)
        return rc;
    rc = adopt(app, list, len, err);
    free(list);
    return rc;
}

void td_handle_revocations_get(struct sw_http_request *req, struct sw_http_response *resp)
{
    struct td_app *app = req->app;
    char *body = NULL;
    if (!app->net) {
        sw_http_reply_error(resp, 404, "no_revocations", "an open network has no revocation list");
        return;
    }
    pthread_mutex_lock(&app->revs.mu);
    if (app->revs.body)
        body = strdup(app->revs.body);
    pthread_mutex_unlock(&app->revs.mu);
    if (!body) {
        sw_http_reply_error(resp, 404, "no_revocations", "no revocation list was published yet");
        return;
    }
    sw_http_reply_text(resp, 200, "application/json", body, strlen(body));
    free(body);
}

/* The body's list: 400 and NULL when it is not {"list":"<hex>"} of a well-formed list. */
static uint8_t *read_list(const struct sw_http_request *req, struct sw_http_response *resp,
                          size_t *len, struct sw_revlist *l)
{
    struct json_object *root = NULL;
    struct sw_error err = { 0 };
    const char *hex;
    uint8_t *b = NULL;
    size_t n;

    if (sw_json_parse(req->body, req->body_len, &root, &err)) {
        sw_http_reply_error(resp, 400, "invalid_json", "%s", err.msg);
        return NULL;
    }
    if (sw_json_get_string(root, "list", "body", LIST_HEX_MAX, &hex, &err)) {
        sw_http_reply_error(resp, 400, "invalid_body", "%s", err.msg);
        goto out;
    }
    n = strlen(hex);
    if (n % 2 || !(b = malloc(n / 2 + 1)) || sw_hex_decode(b, n / 2, hex, n)) {
        sw_http_reply_error(resp, 400, "invalid_revocations", "field 'list': not hex");
        goto fail;
    }
    if (sw_revlist_parse(b, n / 2, l, &err)) {
        sw_http_reply_error(resp, 400, "invalid_revocations", "%s", err.msg);
        goto fail;
    }
    *len = n / 2;
    goto out;
fail:
    free(b);
    b = NULL;
out:
    json_object_put(root);
    return b;
}

void td_handle_revocations_put(struct sw_http_request *req, struct sw_http_response *resp)
{
    struct td_app *app = req->app;
    struct sw_error err = { 0 };
    struct sw_revlist l = { 0 };
    struct json_object *o;
    uint64_t stored;
    uint8_t *list;
    size_t len = 0;
    char ip[64];
    int rc;

    if (!app->net) {
        sw_http_reply_error(resp, 404, "no_revocations", "an open network has no revocation list");
        return;
    }
    if (!(list = read_list(req, resp, &len, &l)))
        return;
    sw_http_client_ip(req, ip, sizeof(ip));
    if (sw_revlist_verify(&l, sw_network_key(app->net), &err)) {
        sw_log_warn("refused a revocation list from %s: %s", ip, err.msg);
        sw_http_reply_error(resp, 403, "wrong_signer", "%s", err.msg);
        goto out;
    }
    rc = td_revocations_store(&app->store, sw_network_key(app->net), l.issued_at, list, len,
                              &stored, &err);
    if (rc == SW_ECONFLICT) {
        sw_http_reply_error(resp, 409, "stale_revocations", "%s", err.msg);
        goto out;
    }
    if (rc) {
        sw_http_reply_store_error(resp, &err);
        goto out;
    }
    if ((rc = adopt(app, list, len, &err))) { /* stored: other instances still take it */
        sw_log_warn("revocation list issued at %" PRIu64 ": %s", l.issued_at, err.msg);
        sw_http_reply_error(resp, 500, "internal_error", "%s", err.msg);
        goto out;
    }
    sw_log_info("revocation list issued at %" PRIu64 " published from %s: %u revoked key(s)",
                l.issued_at, ip, l.count);
    o = json_object_new_object();
    json_object_object_add(o, "issued_at", json_object_new_int64((int64_t)l.issued_at));
    json_object_object_add(o, "revoked_count", json_object_new_int64(l.count));
    sw_http_reply_json(resp, 200, o);
out:
    sw_revlist_free(&l);
    free(list);
}
