/* registry.c — keeps the server's signed entry in the messaging discovery (docs §6).
 *
 * One thread: posts at start, every --register-interval seconds, and within a second of
 * the free capacity moving by 10% of --max-sessions or more; retries every RETRY_S while
 * the discovery is unreachable. At stop it DELETEs the entry with a signed request.
 * sequence = unix time in ms, forced strictly above the previous post's. */
#include "messaging-server/ms.h"
#include "common/clock.h"
#include "common/cond.h"
#include "common/http_client.h"
#include "common/json.h"
#include "common/log.h"
#include "common/msg_entry.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RETRY_S 5
#define URL_MAX 512

struct ms_registry {
    struct ms_server *srv;
    struct sw_http_client *http;
    char base[URL_MAX];
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
    /* thread only */
    uint64_t last_seq;
    long last_free;
    bool registered, failing;
};

static long free_sessions(const struct ms_server *srv)
{
    long n = srv->cfg.max_sessions - (long)atomic_load(&srv->m.sessions);
    return n > 0 ? n : 0;
}

static void build_entry(struct ms_registry *r, struct sw_msg_entry *e, long avail)
{
    uint64_t unix_ms = (uint64_t)sw_unix_ms(), seq = unix_ms;
    if (seq <= r->last_seq)
        seq = r->last_seq + 1;
    r->last_seq = seq;
    memset(e, 0, sizeof(*e));
    snprintf(e->version, sizeof(e->version), "%s", SW_MSG_VERSION);
    e->sequence = seq;
    e->timestamp = unix_ms / 1000;
    e->static_pk = r->srv->kp.pk;
    e->has_server = true;
    snprintf(e->address, sizeof(e->address), "%s", r->srv->cfg.public_addr);
    e->available_sessions = (uint32_t)avail;
    sw_msg_entry_sign(e, &r->srv->kp);
}

static void note_result(struct ms_registry *r, bool ok, long avail, const char *why)
{
    if (ok) {
        atomic_fetch_add(&r->srv->m.registrations_ok, 1);
        if (!r->registered || r->failing)
            sw_log_info("registered at %s (available_sessions %ld)", r->base, avail);
        else
            sw_log_debug("entry refreshed (available_sessions %ld)", avail);
        r->registered = true;
        r->failing = false;
        r->last_free = avail;
        return;
    }
    atomic_fetch_add(&r->srv->m.registrations_failed, 1);
    if (!r->failing)
        sw_log_warn("cannot register at %s: %s; retrying every %ds", r->base, why, RETRY_S);
    r->failing = true;
}

static bool post_entry(struct ms_registry *r, long avail)
{
    struct sw_msg_entry e;
    struct sw_http_result res = { 0 };
    struct sw_error err = { 0 };
    struct json_object *o;
    const char *body, *cert_hex = sw_network_own_cert_hex(r->srv->net);
    char url[URL_MAX + 64], why[SW_ERROR_MSG_MAX];
    char cert[sizeof(SW_HDR_CERT) + 2 + SW_CERT_HEX_MAX + 1];
    const char *headers[2] = { cert, NULL };
    size_t len;
    bool ok;

    build_entry(r, &e, avail);
    if (!(o = sw_msg_entry_to_json(&e))) {
        note_result(r, false, avail, "out of memory");
        return false;
    }
    body = sw_json_compact(o, &len);
    snprintf(url, sizeof(url), "%s/messaging-discovery/entry/", r->base);
    /* private network: our certificate (role messaging-server) rides beside the entry */
    snprintf(cert, sizeof(cert), SW_HDR_CERT ": %s", cert_hex);
    ok = sw_http_do(r->http, "POST", url, cert_hex[0] ? headers : NULL, body, len, &res, &err) == SW_OK &&
         res.status == 200;
    if (!ok && err.msg[0])
        snprintf(why, sizeof(why), "%s", err.msg);
    else if (!ok)
        snprintf(why, sizeof(why), "HTTP %ld: %.120s", res.status, res.body ? res.body : "");
    note_result(r, ok, avail, ok ? NULL : why);
    sw_http_result_free(&res);
    json_object_put(o);
    return ok;
}

static void delete_entry(struct ms_registry *r)
{
    struct sw_http_result res = { 0 };
    struct sw_error err = { 0 };
    char target[64 + SW_PK_HEX_LEN], hex[SW_PK_HEX_LEN + 1];

    sw_pk_to_hex(&r->srv->kp.pk, hex);
    snprintf(target, sizeof(target), "/messaging-discovery/entry/%s", hex);
    if (sw_http_do_signed(r->http, &r->srv->kp, r->base, "DELETE", target, NULL, 0, &res, &err) != SW_OK)
        sw_log_warn("cannot remove the entry from %s: %s", r->base, err.msg);
    else if (res.status != 200)
        sw_log_warn("removing the entry from %s: HTTP %ld", r->base, res.status);
    else
        sw_log_info("entry removed from %s", r->base);
    sw_http_result_free(&res);
}

/* Due when the interval passed or free capacity moved by >= 10% of max_sessions. */
static bool capacity_moved(const struct ms_registry *r, long avail)
{
    long d = avail > r->last_free ? avail - r->last_free : r->last_free - avail;
    return r->registered && d * 10 >= r->srv->cfg.max_sessions && d > 0;
}

static void *registry_main(void *arg)
{
    struct ms_registry *r = arg;
    int64_t next = 0; /* monotonic: when to post the entry again */
    struct timespec until;

    pthread_mutex_lock(&r->mu);
    while (!r->stop) {
        long avail = free_sessions(r->srv);
        int64_t now = sw_mono_ms();
        pthread_mutex_unlock(&r->mu);
        if (now >= next || capacity_moved(r, avail)) {
            bool ok = post_entry(r, avail);
            next = now + (int64_t)(ok ? r->srv->cfg.register_interval_s : RETRY_S) * 1000;
        }
        pthread_mutex_lock(&r->mu);
        sw_cond_deadline(1000, &until);
        while (!r->stop && pthread_cond_timedwait(&r->cv, &r->mu, &until) == 0)
            ;
    }
    pthread_mutex_unlock(&r->mu);
    if (r->registered)
        delete_entry(r);
    return NULL;
}

int ms_registry_start(struct ms_server *srv, struct ms_registry **out, struct sw_error *err)
{
    struct sw_http_client_opts opts = { .connect_timeout_ms = 2000, .timeout_ms = 5000, .max_response = 1 << 20 };
    struct ms_registry *r;
    size_t n;

    if (!(r = calloc(1, sizeof(*r))))
        return sw_error_set(err, SW_ENOMEM, "out of memory");
    r->srv = srv;
    r->last_free = -1;
    n = strlen(srv->cfg.discovery);
    while (n && srv->cfg.discovery[n - 1] == '/')
        n--;
    if (n == 0 || n >= sizeof(r->base)) {
        free(r);
        return sw_error_set(err, SW_EINVAL, "--discovery '%s' is not a usable URL", srv->cfg.discovery);
    }
    memcpy(r->base, srv->cfg.discovery, n);
    if (!(r->http = sw_http_client_new(&opts))) {
        free(r);
        return sw_error_set(err, SW_ENOMEM, "cannot create an HTTP client");
    }
    sw_http_client_set_cert(r->http, sw_network_own_cert_hex(srv->net)); /* the signed DELETE */
    pthread_mutex_init(&r->mu, NULL);
    sw_cond_init(&r->cv);
    if (pthread_create(&r->thread, NULL, registry_main, r) != 0) {
        sw_http_client_free(r->http);
        pthread_mutex_destroy(&r->mu);
        pthread_cond_destroy(&r->cv);
        free(r);
        return sw_error_set(err, SW_EIO, "cannot start the registry thread");
    }
    *out = r;
    return SW_OK;
}

void ms_registry_signal(struct ms_registry *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    r->stop = true;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

void ms_registry_stop(struct ms_registry *r)
{
    if (!r)
        return;
    ms_registry_signal(r);
    pthread_join(r->thread, NULL);
    sw_http_client_free(r->http);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    free(r);
}
