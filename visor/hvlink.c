/* hvlink.c — the visor's links out to its hypervisors (docs/hypervisor.md).
 *
 * One thread per cfg.hypervisors entry dials the hypervisor (TCP, 5 s connect), runs the
 * Noise XK handshake as initiator (common/hv_chan.h) and then serves requests: each REQ
 * {id, method, path, body} runs on a detached worker thread (at most HVLINK_MAX_INFLIGHT
 * per link, beyond that 503 at once) that performs it against the visor's OWN local API
 * (api.listen, loopback for a wildcard address, with the API token: so the hypervisor gets
 * exactly what the local API answers an operator) and sends
 * RESP {id, status, body}. Only paths under /api/ are relayed. The visor pings after
 * HVLINK_PING_MS without traffic and drops a link silent for HVLINK_DEAD_MS; a lost link
 * is redialled after a backoff (1 s doubling to 30 s, +-25 % jitter; reset after a
 * successful handshake).
 *
 * Ownership: a struct hvsess (one connection) is shared by the link thread and its workers
 * through a reference count under l->mu; the last reference destroys the channel. */
#include "visor/visor.h"
#include "common/backoff.h"
#include "common/cond.h"
#include "common/hostport.h"
#include "common/hv_chan.h"
#include "common/http_client.h"
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HVLINK_CONNECT_MS 5000
#define HVLINK_HANDSHAKE_MS 5000
#define HVLINK_PING_MS 10000
#define HVLINK_DEAD_MS 30000
#define HVLINK_BACKOFF_MIN_MS 1000
#define HVLINK_BACKOFF_MAX_MS 30000
#define HVLINK_MAX_INFLIGHT 32
#define HVLINK_REQ_TIMEOUT_MS 25000 /* add-tp may wait 20 s for the handshake */

struct hvsess {
    struct sw_hv_chan ch;
    int refs; /* under the link's mu */
};

struct hvlink {
    struct visor *v;
    const struct visor_pk_addr *hv; /* borrowed from v->cfg */
    char pk_hex[SW_PK_HEX_LEN + 1];
    pthread_t th;
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t cond;   /* stop requests, worker exits */
    bool stop;
    struct hvsess *cur;    /* the open connection, if any */
    int inflight;
};

struct visor_hvlinks {
    size_t n;
    struct hvlink l[VISOR_HYPERVISORS_MAX];
};

struct hvjob {
    struct hvlink *l;
    struct hvsess *s;
    uint32_t id;
    char method[SW_HV_MAX_METHOD + 1];
    char path[SW_HV_MAX_PATH + 1];
    char *body;
    size_t body_len;
};

static void sess_put(struct hvlink *l, struct hvsess *s)
{
    bool last;

    pthread_mutex_lock(&l->mu);
    last = --s->refs == 0;
    pthread_mutex_unlock(&l->mu);
    if (last) {
        sw_hv_chan_destroy(&s->ch);
        free(s);
    }
}

/* ---- dialing ------------------------------------------------------------------------- */

static int connect_one(const struct addrinfo *ai, int timeout_ms)
{
    struct pollfd pfd;
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
    int soerr = 0;
    socklen_t sl = sizeof(soerr);

    if (fd < 0)
        return -1;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS)
        goto fail;
    pfd = (struct pollfd){ .fd = fd, .events = POLLOUT };
    if (poll(&pfd, 1, timeout_ms) != 1 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) || soerr) {
        errno = soerr ? soerr : ETIMEDOUT;
        goto fail;
    }
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) != 0)
        goto fail;
    return fd;
fail:
    close(fd);
    return -1;
}

static int dial(const char *hostport, struct sw_error *err)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *res = NULL, *ai;
    char host[VISOR_ADDR_MAX], port[8];
    uint16_t p;
    int fd = -1, e;

    if (sw_hostport_parse(hostport, 0, host, sizeof(host), &p) || p == 0)
        return sw_error_set(err, SW_EINVAL, "'%s' is not host:port", hostport);
    snprintf(port, sizeof(port), "%u", p);
    if ((e = getaddrinfo(host, port, &hints, &res)))
        return sw_error_set(err, SW_EIO, "cannot resolve %s: %s", host, gai_strerror(e));
    for (ai = res; ai && fd < 0; ai = ai->ai_next)
        fd = connect_one(ai, HVLINK_CONNECT_MS);
    if (fd < 0)
        sw_error_set(err, SW_EIO, "connect to %s failed: %s", hostport, strerror(errno));
    freeaddrinfo(res);
    return fd < 0 ? SW_EIO : fd;
}

/* ---- requests --------------------------------------------------------------------------- */

/* Under /api/, and no "." or ".." segment (the HTTP client would resolve "/api/.." to "/")
 * nor an empty one but a trailing slash; the query is not looked at. */
static bool path_allowed(const char *path)
{
    const char *end = path + strcspn(path, "?#");

    if (strncmp(path, "/api/", 5) != 0)
        return false;
    for (const char *p = path; p < end; p++) {
        size_t seg;
        if (*p != '/')
            continue;
        seg = strcspn(p + 1, "/?#");
        if ((seg == 0 && p + 1 != end) || (seg == 1 && p[1] == '.') ||
            (seg == 2 && p[1] == '.' && p[2] == '.'))
            return false;
    }
    return true;
}

static void reply(struct hvjob *j, int status, const char *body, size_t len)
{
    struct sw_hv_msg m = { .type = SW_HV_RESP, .id = j->id, .status = (uint16_t)status,
                           .body = (const uint8_t *)body, .body_len = len };
    if (sw_hv_chan_send(&j->s->ch, &m))
        sw_hv_chan_shutdown(&j->s->ch); /* a half-sent record leaves the stream unusable */
}

static void reply_error(struct hvjob *j, int status, const char *code, const char *msg)
{
    char body[512];
    int n = snprintf(body, sizeof(body), "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}", code, msg);
    reply(j, status, body, (size_t)n);
}

/* The local API's URL for path: loopback when it listens on a wildcard address, so the
 * Host header is one the API accepts. */
static int api_url(const struct visor *v, const char *path, char *out, size_t cap)
{
    char base[VISOR_ADDR_MAX + 16];
    int n;

    if (visor_config_api_url(&v->cfg, base, sizeof(base)))
        return SW_ERANGE;
    n = snprintf(out, cap, "%s%s", base, path);
    return n < 0 || (size_t)n >= cap ? SW_ERANGE : SW_OK;
}

static void run_job(struct hvjob *j)
{
    struct sw_http_client_opts opts = { .connect_timeout_ms = 3000, .timeout_ms = HVLINK_REQ_TIMEOUT_MS,
                                        .max_response = SW_HV_MAX_BODY };
    struct sw_http_result res = { 0 };
    struct sw_error err = { 0 };
    struct sw_http_client *http;
    char url[VISOR_ADDR_MAX + SW_HV_MAX_PATH + 32];
    char auth[32 + VISOR_API_TOKEN_HEX];
    const char *headers[] = { auth, NULL };
    bool has_body = strcmp(j->method, "GET") != 0 && strcmp(j->method, "DELETE") != 0;

    if (!path_allowed(j->path)) {
        reply_error(j, 403, "forbidden", "only /api/ paths are relayed");
        return;
    }
    if (api_url(j->l->v, j->path, url, sizeof(url))) {
        reply_error(j, 500, "internal_error", "the API address and path do not fit");
        return;
    }
    if (!(http = sw_http_client_new(&opts))) {
        reply_error(j, 500, "internal_error", "out of memory");
        return;
    }
    /* the relay acts as the operator: it holds the token the API wants (never logged) */
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", j->l->v->api_token);
    if (sw_http_do(http, j->method, url, headers, has_body ? (j->body ? j->body : "") : NULL,
                   j->body_len, &res, &err))
        reply_error(j, 502, "visor_api_unreachable",
                    "the visor's local API did not answer (or sent more than 1 MiB)");
    else if (res.status < 100 || res.status > 599)
        reply_error(j, 502, "visor_api_error", "the visor's local API sent an invalid status");
    else
        reply(j, (int)res.status, res.body, res.body_len);
    sodium_memzero(auth, sizeof(auth));
    sw_http_result_free(&res);
    sw_http_client_free(http);
}

static void *job_main(void *arg)
{
    struct hvjob *j = arg;
    struct hvlink *l = j->l;

    run_job(j);
    sess_put(l, j->s);
    free(j->body);
    free(j);
    pthread_mutex_lock(&l->mu);
    l->inflight--;
    pthread_cond_broadcast(&l->cond);
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

/* Takes a reference on s for the worker; answers 503 when too many run already. */
static void start_job(struct hvlink *l, struct hvsess *s, const struct sw_hv_msg *m)
{
    struct hvjob *j = calloc(1, sizeof(*j));
    pthread_attr_t attr;
    pthread_t th;
    bool ok = false;

    if (!j)
        return;
    *j = (struct hvjob){ .l = l, .s = s, .id = m->id, .body_len = m->body_len };
    snprintf(j->method, sizeof(j->method), "%s", m->method);
    snprintf(j->path, sizeof(j->path), "%s", m->path);
    if (m->body_len && !(j->body = malloc(m->body_len + 1)))
        goto busy;
    if (m->body_len) {
        memcpy(j->body, m->body, m->body_len);
        j->body[m->body_len] = '\0';
    }
    pthread_mutex_lock(&l->mu);
    if (l->inflight < HVLINK_MAX_INFLIGHT) {
        l->inflight++;
        s->refs++;
        ok = true;
    }
    pthread_mutex_unlock(&l->mu);
    if (!ok)
        goto busy;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&th, &attr, job_main, j) == 0) {
        pthread_attr_destroy(&attr);
        return;
    }
    pthread_attr_destroy(&attr);
    pthread_mutex_lock(&l->mu);
    l->inflight--;
    s->refs--;
    pthread_mutex_unlock(&l->mu);
busy:
    reply_error(j, 503, "busy", "too many requests in flight on this visor");
    free(j->body);
    free(j);
}

/* ---- one connection ---------------------------------------------------------------------- */

static bool stopping(struct hvlink *l)
{
    bool s;
    pthread_mutex_lock(&l->mu);
    s = l->stop;
    pthread_mutex_unlock(&l->mu);
    return s;
}

/* Serves requests until the link fails; why says how. */
static void serve(struct hvlink *l, struct hvsess *s, char *why, size_t cap)
{
    int64_t last_rx = sw_mono_ms(), last_tx = last_rx; /* monotonic */
    struct sw_hv_msg m, ping = { .type = SW_HV_PING };
    int rc;

    while (!stopping(l)) {
        rc = sw_hv_chan_recv(&s->ch, 1000, &m);
        if (rc == SW_ETIMEDOUT) {
            if (sw_ms_since(last_rx) > HVLINK_DEAD_MS) {
                snprintf(why, cap, "no traffic for %d s", HVLINK_DEAD_MS / 1000);
                return;
            }
            if (sw_ms_since(last_tx) >= HVLINK_PING_MS) {
                last_tx = sw_mono_ms();
                ping.id++;
                if (sw_hv_chan_send(&s->ch, &ping)) {
                    snprintf(why, cap, "sending a ping failed");
                    return;
                }
            }
            continue;
        }
        if (rc) {
            snprintf(why, cap, "%s", rc == SW_EIO ? "connection closed" : "protocol error");
            return;
        }
        last_rx = sw_mono_ms();
        if (m.type == SW_HV_PING) {
            struct sw_hv_msg pong = { .type = SW_HV_PONG, .id = m.id };
            last_tx = last_rx;
            if (sw_hv_chan_send(&s->ch, &pong)) { /* maybe half sent: the stream is broken */
                snprintf(why, cap, "sending a pong failed");
                return;
            }
        } else if (m.type == SW_HV_REQ) {
            last_tx = last_rx;
            start_job(l, s, &m);
        }
    }
    snprintf(why, cap, "stopping");
}

/* One dial + handshake + serve; true when the handshake succeeded. */
static bool session(struct hvlink *l)
{
    struct sw_error err = { 0 };
    struct hvsess *s = NULL;
    char why[128] = "";
    int fd = dial(l->hv->addr, &err);

    if (fd < 0)
        goto fail;
    if (!(s = calloc(1, sizeof(*s))) || sw_hv_chan_init(&s->ch, fd)) {
        if (!s)
            close(fd);
        free(s);
        sw_error_set(&err, SW_ENOMEM, "out of memory");
        goto fail;
    }
    s->refs = 1;
    if (sw_hv_chan_handshake(&s->ch, true, &l->v->cfg.kp, &l->hv->pk, HVLINK_HANDSHAKE_MS, &err)) {
        sess_put(l, s);
        goto fail;
    }
    pthread_mutex_lock(&l->mu);
    s->refs++;
    l->cur = s;
    pthread_mutex_unlock(&l->mu);
    sw_log_info("hypervisor %.8s: connected to %s", l->pk_hex, l->hv->addr);
    serve(l, s, why, sizeof(why));
    sw_log_info("hypervisor %.8s: link closed: %s", l->pk_hex, why);
    pthread_mutex_lock(&l->mu);
    l->cur = NULL;
    s->refs--;
    pthread_mutex_unlock(&l->mu);
    sw_hv_chan_shutdown(&s->ch); /* workers still holding it fail fast */
    sess_put(l, s);
    return true;
fail:
    sw_log_warn("hypervisor %.8s at %s: %s", l->pk_hex, l->hv->addr, err.msg);
    return false;
}

/* Waits ms unless stopped; true when stopping. */
static bool pause_ms(struct hvlink *l, unsigned ms)
{
    struct timespec ts;
    bool s;

    sw_cond_deadline(ms, &ts);
    pthread_mutex_lock(&l->mu);
    while (!l->stop && pthread_cond_timedwait(&l->cond, &l->mu, &ts) == 0)
        ;
    s = l->stop;
    pthread_mutex_unlock(&l->mu);
    return s;
}

static void *link_main(void *arg)
{
    struct hvlink *l = arg;
    /* jittered so that many visors do not reconnect in lockstep */
    struct sw_backoff backoff = SW_BACKOFF_INIT(HVLINK_BACKOFF_MIN_MS, HVLINK_BACKOFF_MAX_MS, true);

    while (!stopping(l)) {
        if (session(l))
            sw_backoff_reset(&backoff);
        if (pause_ms(l, sw_backoff_next(&backoff)))
            break;
    }
    return NULL;
}

int visor_hvlink_start(struct visor *v, struct sw_error *err)
{
    struct visor_hvlinks *hs;

    if (v->cfg.n_hypervisors == 0)
        return SW_OK;
    if (!(hs = calloc(1, sizeof(*hs))))
        return sw_error_set(err, SW_ENOMEM, "out of memory");
    v->hv = hs;
    for (size_t i = 0; i < v->cfg.n_hypervisors; i++) {
        struct hvlink *l = &hs->l[i];
        l->v = v;
        l->hv = &v->cfg.hypervisors[i];
        sw_pk_to_hex(&l->hv->pk, l->pk_hex);
        pthread_mutex_init(&l->mu, NULL);
        sw_cond_init(&l->cond);
        hs->n = i + 1;
        if (pthread_create(&l->th, NULL, link_main, l))
            return sw_error_set(err, SW_ENOMEM, "cannot start the hypervisor link thread");
        l->started = true;
    }
    return SW_OK;
}

static void stop_one(struct hvlink *l)
{
    pthread_mutex_lock(&l->mu);
    l->stop = true;
    if (l->cur)
        sw_hv_chan_shutdown(&l->cur->ch);
    pthread_cond_broadcast(&l->cond);
    pthread_mutex_unlock(&l->mu);
    if (l->started)
        pthread_join(l->th, NULL);
    l->started = false;
    pthread_mutex_lock(&l->mu);
    while (l->inflight > 0)
        pthread_cond_wait(&l->cond, &l->mu);
    pthread_mutex_unlock(&l->mu);
}

void visor_hvlink_stop(struct visor *v)
{
    struct visor_hvlinks *hs = v->hv;

    if (!hs)
        return;
    for (size_t i = 0; i < hs->n; i++) {
        stop_one(&hs->l[i]);
        pthread_mutex_destroy(&hs->l[i].mu);
        pthread_cond_destroy(&hs->l[i].cond);
    }
    free(hs);
    v->hv = NULL;
}
