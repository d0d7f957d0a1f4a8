/* msg_client_disc.c — the messaging client's use of the messaging discovery: the worker
 * thread (GET available_servers, POST the client entry, DELETE it at stop), building and
 * signing the entry on the loop thread, and entry lookups for dials (caller threads). */
#include "common/msg_client_internal.h"
#include "common/http_client.h"
#include "common/json.h"
#include "common/log.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MC_HTTP_CONNECT_MS 2000
#define MC_HTTP_TOTAL_MS 5000
#define MC_HTTP_MAX_RESPONSE (1024 * 1024)

static struct sw_http_client *http_new(long total_ms)
{
    struct sw_http_client_opts o = {
        .connect_timeout_ms = total_ms < MC_HTTP_CONNECT_MS ? total_ms : MC_HTTP_CONNECT_MS,
        .timeout_ms = total_ms,
        .max_response = MC_HTTP_MAX_RESPONSE,
    };
    return sw_http_client_new(&o);
}

/* ---- entry lookups ----------------------------------------------------------------- */

static int parse_entry(const char *body, size_t len, const struct sw_pk *pk, struct sw_msg_entry *e,
                       struct sw_error *err)
{
    struct json_object *o = NULL;
    int rc;
    if ((rc = sw_json_parse(body, len, &o, err)) || (rc = sw_msg_entry_from_json(o, e, err)) ||
        (rc = sw_msg_entry_verify(e, err)))
        goto out;
    if (pk && !sw_pk_equal(&e->static_pk, pk))
        rc = sw_error_set(err, SW_ECRYPTO, "discovery returned the entry of another key");
out:
    json_object_put(o);
    return rc;
}

int mc_disc_lookup(const char *discovery, const struct sw_pk *pk, int64_t deadline_ms,
                   struct sw_msg_entry *e, struct sw_error *err)
{
    struct sw_http_result res = { 0 };
    struct sw_http_client *http;
    char url[512], hex[SW_PK_HEX_LEN + 1];
    int64_t now = sw_mono_ms();
    int rc;

    if (now >= deadline_ms)
        return sw_error_set(err, SW_ETIMEDOUT, "dial deadline passed");
    if (!(http = http_new((long)(deadline_ms - now > MC_HTTP_TOTAL_MS ? MC_HTTP_TOTAL_MS : deadline_ms - now))))
        return sw_error_set(err, SW_ENOMEM, "out of memory");
    sw_pk_to_hex(pk, hex);
    snprintf(url, sizeof(url), "%s/messaging-discovery/entry/%s", discovery, hex);
    if ((rc = sw_http_do(http, "GET", url, NULL, NULL, 0, &res, err)))
        goto out;
    if (res.status == 404) {
        rc = sw_error_set(err, SW_ENOTFOUND, "no messaging entry for %s", hex);
    } else if (res.status != 200) {
        rc = sw_error_set(err, SW_EIO, "messaging discovery answered %ld for %s", res.status, hex);
    } else if ((rc = parse_entry(res.body, res.body_len, pk, e, err)) != SW_OK) {
        sw_log_warn("messaging entry of %s rejected: %s", hex, err ? err->msg : "invalid");
    }
out:
    sw_http_result_free(&res);
    sw_http_client_free(http);
    return rc;
}

/* ---- worker thread ----------------------------------------------------------------- */

static int fetch_servers(struct sw_msg_client *c, struct sw_http_client *http, struct mc_known **out,
                         size_t *n_out)
{
    struct sw_http_result res = { 0 };
    struct sw_error err = { 0 };
    struct json_object *arr = NULL;
    struct mc_known *list = NULL;
    char url[512];
    size_t n = 0, len;
    int rc;

    snprintf(url, sizeof(url), "%s/messaging-discovery/available_servers?limit=%d", c->discovery, MC_POOL_FETCH);
    if ((rc = sw_http_do(http, "GET", url, NULL, NULL, 0, &res, &err)))
        goto out;
    if (res.status != 200) {
        rc = sw_error_set(&err, SW_EIO, "available_servers answered %ld", res.status);
        goto out;
    }
    if ((rc = sw_json_parse(res.body, res.body_len, &arr, &err)))
        goto out;
    if (!json_object_is_type(arr, json_type_array)) {
        rc = sw_error_set(&err, SW_EINVAL, "available_servers is not an array");
        goto out;
    }
    len = json_object_array_length(arr);
    if (len > MC_POOL_FETCH)
        len = MC_POOL_FETCH;
    if (len && !(list = calloc(len, sizeof(*list)))) {
        rc = SW_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < len; i++) {
        struct sw_msg_entry e;
        if (sw_msg_entry_from_json(json_object_array_get_idx(arr, i), &e, NULL) ||
            sw_msg_entry_verify(&e, NULL) || !e.has_server)
            continue;
        list[n].pk = e.static_pk;
        snprintf(list[n].addr, sizeof(list[n].addr), "%s", e.address);
        /* a claim nobody can check: clamped, and only a tie-break among untried servers */
        list[n].claim = e.available_sessions < MC_CLAIM_MAX ? e.available_sessions : MC_CLAIM_MAX;
        n++;
    }
out:
    if (rc)
        sw_log_warn("messaging discovery: %s", err.msg[0] ? err.msg : sw_strerror(rc));
    json_object_put(arr);
    sw_http_result_free(&res);
    if (rc) {
        free(list);
        return rc;
    }
    *out = list;
    *n_out = n;
    return SW_OK;
}

static int post_entry(struct sw_msg_client *c, struct sw_http_client *http, const char *body)
{
    struct sw_http_result res = { 0 };
    struct sw_error err = { 0 };
    char url[512], cert[sizeof(SW_HDR_CERT) + 2 + SW_CERT_HEX_MAX + 1];
    const char *headers[2] = { cert, NULL };
    int rc;

    snprintf(url, sizeof(url), "%s/messaging-discovery/entry/", c->discovery);
    /* the entry signs itself; in a private network our certificate rides beside it */
    snprintf(cert, sizeof(cert), SW_HDR_CERT ": %s", sw_network_own_cert_hex(c->network));
    rc = sw_http_do(http, "POST", url, sw_network_own_cert_hex(c->network)[0] ? headers : NULL, body,
                    strlen(body), &res, &err);
    if (rc == SW_OK && res.status != 200)
        rc = sw_error_set(&err, SW_EIO, "POST entry answered %ld: %.120s", res.status,
                          res.body ? res.body : "");
    if (rc)
        sw_log_warn("publishing the messaging entry failed: %s", err.msg);
    sw_http_result_free(&res);
    return rc;
}

static void delete_entry(struct sw_msg_client *c, struct sw_http_client *http)
{
    struct sw_http_result res = { 0 };
    struct sw_error err = { 0 };
    char target[128], hex[SW_PK_HEX_LEN + 1];

    sw_pk_to_hex(&c->kp.pk, hex);
    snprintf(target, sizeof(target), "/messaging-discovery/entry/%s", hex);
    if (sw_http_do_signed(http, &c->kp, c->discovery, "DELETE", target, NULL, 0, &res, &err))
        sw_log_debug("deleting the messaging entry failed: %s", err.msg);
    sw_http_result_free(&res);
}

/* Runs one job with mu released; returns false when it is time to quit. */
static bool worker_step(struct sw_msg_client *c, struct sw_http_client *http)
{
    if (c->wk.quit) {
        bool del = c->wk.delete_entry;
        pthread_mutex_unlock(&c->mu);
        if (del)
            delete_entry(c, http);
        pthread_mutex_lock(&c->mu);
        return false;
    }
    if (c->wk.fetch) {
        struct mc_known *list = NULL;
        size_t n = 0;
        int rc;
        c->wk.fetch = false;
        pthread_mutex_unlock(&c->mu);
        rc = fetch_servers(c, http, &list, &n);
        pthread_mutex_lock(&c->mu);
        free(c->wk.servers);
        c->wk.servers = list;
        c->wk.n_servers = n;
        c->wk.servers_rc = rc;
        c->wk.servers_done = true;
        event_active(c->ev_worker, EV_READ, 0);
        return true;
    }
    if (c->wk.publish_body) {
        char *body = c->wk.publish_body;
        size_t n = c->wk.publish_n;
        int rc;
        c->wk.publish_body = NULL;
        pthread_mutex_unlock(&c->mu);
        rc = post_entry(c, http, body);
        free(body);
        pthread_mutex_lock(&c->mu);
        c->wk.publish_rc = rc;
        c->wk.published_n = n;
        c->wk.publish_done = true;
        event_active(c->ev_worker, EV_READ, 0);
    }
    return true;
}

static void *worker_main(void *arg)
{
    struct sw_msg_client *c = arg;
    struct sw_http_client *http = http_new(MC_HTTP_TOTAL_MS);

    if (http)
        sw_http_client_set_cert(http, sw_network_own_cert_hex(c->network)); /* signed DELETE */
    pthread_mutex_lock(&c->mu);
    for (;;) {
        while (!c->wk.quit && !c->wk.fetch && !c->wk.publish_body)
            pthread_cond_wait(&c->wk_cond, &c->mu);
        if (!http) {
            sw_log_error("messaging client: cannot create an HTTP client");
            c->wk.fetch = false;
            free(c->wk.publish_body);
            c->wk.publish_body = NULL;
            if (c->wk.quit)
                break;
            continue;
        }
        if (!worker_step(c, http))
            break;
    }
    pthread_mutex_unlock(&c->mu);
    sw_http_client_free(http);
    return NULL;
}

int mc_worker_start(struct sw_msg_client *c, struct sw_error *err)
{
    if (!c->discovery)
        return SW_OK; /* nothing to fetch or publish */
    if (pthread_create(&c->worker_thread, NULL, worker_main, c) != 0)
        return sw_error_set(err, SW_EIO, "cannot start the messaging discovery thread");
    c->worker_started = true;
    return SW_OK;
}

void mc_worker_stop(struct sw_msg_client *c)
{
    if (!c->worker_started)
        return;
    pthread_mutex_lock(&c->mu);
    c->wk.quit = true;
    pthread_cond_signal(&c->wk_cond);
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->worker_thread, NULL);
    c->worker_started = false;
}

/* ---- loop side: fetch requests and publishing ---------------------------------------- */

void mc_request_fetch(struct sw_msg_client *c)
{
    int64_t now = sw_mono_ms();
    if (!c->discovery || c->n_fixed || c->fetch_in_flight || c->shutting_down ||
        (c->last_fetch_ms && now - c->last_fetch_ms < MC_FETCH_MIN_GAP_MS))
        return;
    c->fetch_in_flight = true;
    c->last_fetch_ms = now;
    pthread_mutex_lock(&c->mu);
    c->wk.fetch = true;
    pthread_cond_signal(&c->wk_cond);
    pthread_mutex_unlock(&c->mu);
}

/* The servers with a ready session, slot sessions first, at most SW_MSG_DELEGATES_MAX. */
static size_t ready_set(const struct sw_msg_client *c, struct sw_pk *out)
{
    size_t n = 0;
    for (int pass = 0; pass < 2; pass++)
        for (const struct mc_sess *ss = c->sessions; ss && n < SW_MSG_DELEGATES_MAX; ss = ss->next)
            if (ss->state == MC_SESS_READY && (pass == 0) == (ss->slot != NULL))
                out[n++] = ss->server;
    return n;
}

static bool same_set(const struct sw_pk *a, size_t na, const struct sw_pk *b, size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++) {
        bool found = false;
        for (size_t j = 0; j < nb && !found; j++)
            found = sw_pk_equal(&a[i], &b[j]);
        if (!found)
            return false;
    }
    return true;
}

void mc_publish(struct sw_msg_client *c, bool force)
{
    struct sw_msg_entry e;
    struct json_object *o;
    struct sw_pk set[SW_MSG_DELEGATES_MAX];
    size_t n;
    uint64_t unix_ms = (uint64_t)sw_unix_ms();
    char *body;

    if (!c->discovery || c->shutting_down)
        return;
    n = ready_set(c, set);
    if (!force && c->pub_valid && same_set(set, n, c->pub_set, c->pub_n))
        return;
    memset(&e, 0, sizeof(e));
    snprintf(e.version, sizeof(e.version), "%s", SW_MSG_VERSION);
    e.sequence = unix_ms > c->last_seq ? unix_ms : c->last_seq + 1;
    e.timestamp = unix_ms / 1000;
    e.static_pk = c->kp.pk;
    e.has_client = true;
    e.n_delegated = n;
    memcpy(e.delegated, set, n * sizeof(set[0]));
    sw_msg_entry_sign(&e, &c->kp);
    if (!(o = sw_msg_entry_to_json(&e)))
        return;
    body = strdup(sw_json_compact(o, NULL));
    json_object_put(o);
    if (!body)
        return;
    c->last_seq = e.sequence;
    memcpy(c->pub_set, set, sizeof(set));
    c->pub_n = n;
    c->pub_valid = true;
    sw_log_debug("publishing messaging entry with %zu servers (sequence %llu)", n,
                 (unsigned long long)e.sequence);
    pthread_mutex_lock(&c->mu);
    free(c->wk.publish_body);
    c->wk.publish_body = body;
    c->wk.publish_n = n;
    pthread_cond_signal(&c->wk_cond);
    pthread_mutex_unlock(&c->mu);
}
