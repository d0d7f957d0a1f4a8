/* network.c — see network.h. */
#include "common/network.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/cond.h"
#include "common/hex.h"
#include "common/http_client.h"
#include "common/json.h"
#include "common/log.h"

#define DEFAULT_REFRESH_MS 20000
#define REVLIST_FILE_MAX (2 * SW_REVLIST_MAX_LEN + 16)

struct sw_network {
    struct sw_pk key;
    bool has_own;
    struct sw_cert own;
    uint8_t own_raw[SW_CERT_MAX_LEN];
    size_t own_len;
    char own_hex[SW_CERT_HEX_MAX + 1];

    pthread_mutex_t mu;     /* guards list, generation */
    struct sw_revlist list; /* the newest verified list (count 0 before the first) */
    uint64_t generation;

    char *source; /* URL or file path, or NULL */
    unsigned refresh_ms;
    pthread_t thread;
    bool thread_started;
    pthread_mutex_t stop_mu;
    pthread_cond_t stop_cv;
    bool stopping;
};

static uint64_t now_s(void) { return (uint64_t)(sw_unix_ms() / 1000); }

bool sw_network_is_private(const struct sw_network *net) { return net != NULL; }
const struct sw_pk *sw_network_key(const struct sw_network *net) { return net ? &net->key : NULL; }

const uint8_t *sw_network_own_cert(const struct sw_network *net, size_t *len)
{
    *len = net && net->has_own ? net->own_len : 0;
    return net && net->has_own ? net->own_raw : NULL;
}

const char *sw_network_own_cert_hex(const struct sw_network *net)
{
    return net && net->has_own ? net->own_hex : "";
}

const struct sw_cert *sw_network_own_cert_parsed(const struct sw_network *net)
{
    return net && net->has_own ? &net->own : NULL;
}

bool sw_network_revoked(struct sw_network *net, const struct sw_pk *pk)
{
    bool r;
    if (!net)
        return false;
    pthread_mutex_lock(&net->mu);
    r = sw_revlist_contains(&net->list, pk);
    pthread_mutex_unlock(&net->mu);
    return r;
}

uint64_t sw_network_generation(struct sw_network *net)
{
    uint64_t g;
    if (!net)
        return 0;
    pthread_mutex_lock(&net->mu);
    g = net->generation;
    pthread_mutex_unlock(&net->mu);
    return g;
}

void sw_network_revocations_info(struct sw_network *net, uint64_t *issued_at, uint32_t *count)
{
    *issued_at = 0;
    *count = 0;
    if (!net)
        return;
    pthread_mutex_lock(&net->mu);
    *issued_at = net->list.issued_at;
    *count = net->list.count;
    pthread_mutex_unlock(&net->mu);
}

int sw_network_recheck(struct sw_network *net, const struct sw_cert *c, struct sw_error *err)
{
    char pk_hex[SW_PK_HEX_LEN + 1];
    if (!net)
        return SW_OK;
    if (now_s() >= c->not_after)
        return sw_error_set(err, SW_EPERM, "not a member: certificate expired");
    if (sw_network_revoked(net, &c->subject)) {
        sw_pk_to_hex(&c->subject, pk_hex);
        return sw_error_set(err, SW_EPERM, "not a member: %s is revoked", pk_hex);
    }
    return SW_OK;
}

int sw_network_admit(struct sw_network *net, const struct sw_pk *who, const uint8_t *cert,
                     size_t len, unsigned roles, struct sw_cert *out, struct sw_error *err)
{
    struct sw_cert c;
    struct sw_error e = { 0 };
    char want[96];
    int rc;

    if (out)
        memset(out, 0, sizeof(*out));
    if (!net)
        return SW_OK;
    if (!cert || len == 0)
        return sw_error_set(err, SW_EPERM, "not a member: no certificate");
    if (sw_cert_parse(cert, len, &c, &e))
        return sw_error_set(err, SW_EPERM, "not a member: %s", e.msg);
    if (!sw_pk_equal(&c.subject, who))
        return sw_error_set(err, SW_EPERM, "not a member: the certificate is for another key");
    if ((rc = sw_cert_verify(&c, &net->key, now_s(), &e)))
        return sw_error_set(err, SW_EPERM, "not a member: %s", e.msg);
    if (roles == 0)
        roles = SW_ROLES_ANY;
    if (!(roles & SW_ROLE_BIT(c.role))) {
        sw_roles_describe(roles, want, sizeof(want));
        return sw_error_set(err, SW_EPERM, "not a member in this role: role %s, expected %s",
                            sw_role_name(c.role), want);
    }
    if ((rc = sw_network_recheck(net, &c, err)))
        return rc;
    if (out)
        *out = c;
    return SW_OK;
}

int sw_network_admit_hex(struct sw_network *net, const struct sw_pk *who, const char *hex,
                         unsigned roles, struct sw_cert *out, struct sw_error *err)
{
    uint8_t raw[SW_CERT_MAX_LEN];
    size_t n = hex ? strlen(hex) : 0;
    if (out)
        memset(out, 0, sizeof(*out));
    if (!net)
        return SW_OK;
    if (n == 0)
        return sw_error_set(err, SW_EPERM, "not a member: no certificate");
    if (n % 2 || n / 2 > sizeof(raw) || sw_hex_decode(raw, n / 2, hex, n))
        return sw_error_set(err, SW_EPERM, "not a member: the certificate is not %d-%d hex digits",
                            2 * SW_CERT_MIN_LEN, 2 * SW_CERT_MAX_LEN);
    return sw_network_admit(net, who, raw, n / 2, roles, out, err);
}

int sw_network_admit_request(struct sw_network *net, const struct sw_http_request *req,
                             const struct sw_pk *caller, unsigned roles, struct sw_cert *out,
                             struct sw_http_response *resp)
{
    struct sw_error e = { 0 };
    char pk_hex[SW_PK_HEX_LEN + 1];
    int rc;
    if (!net) {
        if (out)
            memset(out, 0, sizeof(*out));
        return SW_OK;
    }
    rc = sw_network_admit_hex(net, caller, sw_http_header(req, SW_HDR_CERT), roles, out, &e);
    if (rc) {
        sw_pk_to_hex(caller, pk_hex);
        sw_log_warn("refused %s %s from %s: %s", req->method, req->path, pk_hex, e.msg);
        sw_http_reply_error(resp, 403, "not_a_member", "%s", e.msg);
    }
    return rc;
}

/* ---- revocation lists ---------------------------------------------------------------- */

int sw_network_offer_revocations(struct sw_network *net, const uint8_t *bytes, size_t len,
                                 struct sw_error *err)
{
    struct sw_revlist l;
    int rc;
    if (!net)
        return SW_OK;
    if ((rc = sw_revlist_parse(bytes, len, &l, err)))
        return rc;
    if ((rc = sw_revlist_verify(&l, &net->key, err))) {
        sw_revlist_free(&l);
        return rc;
    }
    pthread_mutex_lock(&net->mu);
    if (net->generation > 0 && l.issued_at <= net->list.issued_at) {
        pthread_mutex_unlock(&net->mu);
        sw_revlist_free(&l);
        return sw_error_set(err, SW_ECONFLICT, "revocation list is not newer than the current one");
    }
    sw_revlist_free(&net->list);
    net->list = l;
    net->generation++;
    pthread_mutex_unlock(&net->mu);
    sw_log_info("revocation list issued at %llu taken: %u revoked keys",
                (unsigned long long)l.issued_at, l.count);
    return SW_OK;
}

static int offer_hex(struct sw_network *net, const char *hex, size_t n, struct sw_error *err)
{
    uint8_t *b;
    int rc;
    if (n % 2 || n / 2 > SW_REVLIST_MAX_LEN)
        return sw_error_set(err, SW_EINVAL, "revocation list: %zu hex characters", n);
    if (!(b = malloc(n / 2 + 1)))
        return sw_error_set(err, SW_ENOMEM, "out of memory");
    if (sw_hex_decode(b, n / 2, hex, n)) {
        free(b);
        return sw_error_set(err, SW_EINVAL, "revocation list: not hex");
    }
    rc = sw_network_offer_revocations(net, b, n / 2, err);
    free(b);
    return rc;
}

static int fetch_url(struct sw_network *net, struct sw_http_client *hc, struct sw_error *err)
{
    char url[1024];
    struct sw_http_result res = { 0 };
    struct json_object *root = NULL;
    const char *hex;
    int rc;

    snprintf(url, sizeof(url), "%s/network/revocations", net->source);
    if ((rc = sw_http_do(hc, "GET", url, NULL, NULL, 0, &res, err)))
        return rc;
    if (res.status == 404) { /* no list published yet */
        sw_http_result_free(&res);
        return SW_OK;
    }
    if (res.status != 200) {
        rc = sw_error_set(err, SW_EIO, "GET %s: status %ld", url, res.status);
        goto out;
    }
    if ((rc = sw_json_parse(res.body, res.body_len, &root, err)))
        goto out;
    if ((rc = sw_json_get_string(root, "list", "revocations", 2 * SW_REVLIST_MAX_LEN, &hex, err)))
        goto out;
    rc = offer_hex(net, hex, strlen(hex), err);
out:
    json_object_put(root);
    sw_http_result_free(&res);
    return rc;
}

static int read_file(struct sw_network *net, struct sw_error *err)
{
    struct stat st;
    char *buf;
    size_t n = 0, start = 0;
    int fd, rc;

    if ((fd = open(net->source, O_RDONLY | O_CLOEXEC)) < 0)
        return errno == ENOENT ? SW_OK /* nothing revoked yet */
                               : sw_error_set(err, SW_EIO, "%s: %s", net->source, strerror(errno));
    if (fstat(fd, &st) || st.st_size > REVLIST_FILE_MAX) {
        close(fd);
        return sw_error_set(err, SW_ERANGE, "%s: not a revocation list file", net->source);
    }
    if (!(buf = malloc((size_t)st.st_size + 1))) {
        close(fd);
        return sw_error_set(err, SW_ENOMEM, "out of memory");
    }
    while (n < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + n, (size_t)st.st_size - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    while (start < n && (buf[start] == ' ' || buf[start] == '\n' || buf[start] == '\r'))
        start++;
    while (n > start && (buf[n - 1] == ' ' || buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    rc = n > start ? offer_hex(net, buf + start, n - start, err) : SW_OK;
    free(buf);
    return rc;
}

static void *refresher(void *arg)
{
    struct sw_network *net = arg;
    bool url = strncmp(net->source, "http://", 7) == 0 || strncmp(net->source, "https://", 8) == 0;
    struct sw_http_client_opts ho = { .connect_timeout_ms = 3000, .timeout_ms = 10000 };
    struct sw_http_client *hc = url ? sw_http_client_new(&ho) : NULL;
    char last_error[SW_ERROR_MSG_MAX] = "";

    for (;;) {
        struct sw_error e = { 0 };
        int rc = url ? (hc ? fetch_url(net, hc, &e) : sw_error_set(&e, SW_ENOMEM, "no HTTP client"))
                     : read_file(net, &e);
        if (rc && rc != SW_ECONFLICT && strcmp(last_error, e.msg) != 0) {
            sw_log_warn("revocation list from %s: %s", net->source, e.msg); /* once per cause */
            snprintf(last_error, sizeof(last_error), "%s", e.msg);
        } else if (!rc) {
            last_error[0] = '\0';
        }
        struct timespec ts;
        sw_cond_deadline(net->refresh_ms, &ts);
        pthread_mutex_lock(&net->stop_mu);
        while (!net->stopping && pthread_cond_timedwait(&net->stop_cv, &net->stop_mu, &ts) != ETIMEDOUT)
            ;
        bool stop = net->stopping;
        pthread_mutex_unlock(&net->stop_mu);
        if (stop)
            break;
    }
    sw_http_client_free(hc);
    return NULL;
}

int sw_network_key_read(const char *arg, struct sw_pk *key, struct sw_error *err)
{
    char buf[256];
    size_t n = 0, start = 0;
    int fd;

    if (strlen(arg) == SW_PK_HEX_LEN && sw_pk_from_hex(key, arg, "network key", NULL) == SW_OK)
        return SW_OK;
    if ((fd = open(arg, O_RDONLY | O_CLOEXEC)) < 0)
        return sw_error_set(err, SW_EINVAL,
                            "network key '%s': neither 64 hex digits nor a readable file (%s)",
                            arg, strerror(errno));
    for (ssize_t r; n < sizeof(buf) - 1 && (r = read(fd, buf + n, sizeof(buf) - 1 - n)) != 0;) {
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    buf[n] = '\0';
    while (start < n && (buf[start] == ' ' || buf[start] == '\n' || buf[start] == '\r'))
        start++;
    while (n > start && (buf[n - 1] == ' ' || buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    if (sw_pk_from_hex(key, buf + start, "network key", NULL) != SW_OK)
        return sw_error_set(err, SW_EINVAL, "network key file %s: expected 64 hex digits", arg);
    return SW_OK;
}

int sw_network_opt_key(void *target, const char *value, struct sw_error *err)
{
    struct sw_pk pk;
    struct sw_error e = { 0 };
    if (value && *value && sw_network_key_read(value, &pk, &e))
        return sw_error_set(err, SW_EINVAL, "--network: %s", e.msg);
    *(const char **)target = value;
    return SW_OK;
}

int sw_network_open(struct sw_network **out, const struct sw_network_opts *o, struct sw_error *err)
{
    struct sw_network *net;
    struct sw_error e = { 0 };
    int rc;

    *out = NULL;
    if (!o->network_pk || !o->network_pk[0])
        return SW_OK;
    if (!(net = calloc(1, sizeof(*net))))
        return sw_error_set(err, SW_ENOMEM, "out of memory");
    pthread_mutex_init(&net->mu, NULL);
    pthread_mutex_init(&net->stop_mu, NULL);
    sw_cond_init(&net->stop_cv);
    net->refresh_ms = o->refresh_ms ? o->refresh_ms : DEFAULT_REFRESH_MS;
    if ((rc = sw_network_key_read(o->network_pk, &net->key, err)))
        goto fail;
    if (o->self) {
        if (!o->cert_file || !o->cert_file[0]) {
            rc = sw_error_set(err, SW_EINVAL,
                              "a private network needs this daemon's certificate "
                              "(skywire-cli net sign --pk <key> ... --out FILE)");
            goto fail;
        }
        if ((rc = sw_cert_load_file(o->cert_file, &net->own, net->own_raw, &net->own_len, err)))
            goto fail;
        if (!sw_pk_equal(&net->own.subject, o->self)) {
            rc = sw_error_set(err, SW_EINVAL, "%s: the certificate is for another key",
                              o->cert_file);
            goto fail;
        }
        if ((rc = sw_cert_verify(&net->own, &net->key, now_s(), &e))) {
            rc = sw_error_set(err, rc, "%s: %s", o->cert_file, e.msg);
            goto fail;
        }
        unsigned roles = o->self_roles ? o->self_roles : SW_ROLES_ANY;
        if (!(roles & SW_ROLE_BIT(net->own.role))) {
            char want[96];
            sw_roles_describe(roles, want, sizeof(want));
            rc = sw_error_set(err, SW_EINVAL, "%s: role %s, this daemon needs %s", o->cert_file,
                              sw_role_name(net->own.role), want);
            goto fail;
        }
        sw_hex_encode(net->own_hex, sizeof(net->own_hex), net->own_raw, net->own_len);
        net->has_own = true;
    }
    if (o->revocations && o->revocations[0]) {
        if (!(net->source = strdup(o->revocations))) {
            rc = sw_error_set(err, SW_ENOMEM, "out of memory");
            goto fail;
        }
        if (pthread_create(&net->thread, NULL, refresher, net)) {
            rc = sw_error_set(err, SW_EIO, "cannot start the revocation refresher");
            goto fail;
        }
        net->thread_started = true;
    }
    *out = net;
    return SW_OK;
fail:
    sw_network_close(net);
    return rc;
}

void sw_network_close(struct sw_network *net)
{
    if (!net)
        return;
    if (net->thread_started) {
        pthread_mutex_lock(&net->stop_mu);
        net->stopping = true;
        pthread_cond_signal(&net->stop_cv);
        pthread_mutex_unlock(&net->stop_mu);
        pthread_join(net->thread, NULL);
    }
    sw_revlist_free(&net->list);
    free(net->source);
    pthread_mutex_destroy(&net->mu);
    pthread_mutex_destroy(&net->stop_mu);
    pthread_cond_destroy(&net->stop_cv);
    free(net);
}
