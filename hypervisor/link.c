/* link.c — visor links on the hypervisor side (docs/hypervisor.md "Link").
 *
 * An accept thread takes TCP connections on --visor-addr; each gets its own thread that
 * runs the Noise XK handshake as responder (HV_HANDSHAKE_MS, at most HV_MAX_HANDSHAKES at
 * once), refuses keys outside the allow-list, then becomes the visor's link (replacing an
 * older one) and reads RESP/PING/PONG until the link fails. Requests (hv_relay_*) are
 * written by the REST threads; each waits on its own pending slot, which the reader fills
 * or, when the link dies, fails. The hypervisor pings a link silent for HV_PING_MS and
 * drops it after HV_DEAD_MS.
 *
 * Ownership: a struct hv_conn is referenced by its reader thread and by every pending
 * request on it (refs under hv->mu); the last reference destroys the channel. */
#include "hypervisor/hv.h"
#include "common/cond.h"
#include "common/hostport.h"
#include "common/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct hv_pending {
    uint32_t id;
    bool done, failed;
    int status;
    char *body;
    size_t body_len;
    pthread_cond_t cond;
    struct hv_conn *conn;
    struct hv_pending *next;
};

struct hv_conn {
    struct hv *hv;
    struct sw_hv_chan ch;
    int refs;
    bool dead;
    int idx;                      /* allow-list index once authenticated, else -1 */
    char addr[HV_ADDR_MAX];
    char ip[HV_IP_MAX];           /* addr without the port: its handshake slot */
    int64_t since;
    uint32_t next_id;
    size_t n_pending;
    struct hv_pending *pending;
};

int hv_visor_find(const struct hv *hv, const struct sw_pk *pk)
{
    for (size_t i = 0; i < hv->n_visors; i++)
        if (sw_pk_equal(&hv->visors[i].pk, pk))
            return (int)i;
    return -1;
}

void hv_visor_state(struct hv *hv, size_t idx, struct hv_visor_state *out)
{
    struct hv_conn *c;

    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&hv->mu);
    if ((c = hv->visors[idx].conn)) {
        out->online = true;
        snprintf(out->remote_addr, sizeof(out->remote_addr), "%s", c->addr);
        out->connected_since = c->since;
    }
    pthread_mutex_unlock(&hv->mu);
}

size_t hv_visors_online(struct hv *hv)
{
    size_t n = 0;
    pthread_mutex_lock(&hv->mu);
    for (size_t i = 0; i < hv->n_visors; i++)
        n += hv->visors[i].conn != NULL;
    pthread_mutex_unlock(&hv->mu);
    return n;
}

/* Under hv->mu. */
static void conn_unref_locked(struct hv_conn *c, bool *destroy)
{
    *destroy = --c->refs == 0;
}

static void conn_put(struct hv *hv, struct hv_conn *c)
{
    bool destroy;

    pthread_mutex_lock(&hv->mu);
    conn_unref_locked(c, &destroy);
    pthread_mutex_unlock(&hv->mu);
    if (destroy) {
        sw_hv_chan_destroy(&c->ch);
        free(c);
    }
}

/* ---- requests ----------------------------------------------------------------------------- */

int hv_relay_send(struct hv *hv, size_t idx, const char *method, const char *path, const char *body,
                  size_t body_len, struct hv_pending **out)
{
    struct sw_hv_msg m = { .type = SW_HV_REQ, .body = (const uint8_t *)body, .body_len = body_len };
    struct hv_pending *p = calloc(1, sizeof(*p));
    struct hv_conn *c;
    int rc;

    if (!p)
        return SW_ENOMEM;
    sw_cond_init(&p->cond);
    pthread_mutex_lock(&hv->mu);
    c = hv->visors[idx].conn;
    if (!c || c->dead || c->n_pending >= HV_MAX_INFLIGHT) {
        pthread_mutex_unlock(&hv->mu);
        pthread_cond_destroy(&p->cond);
        free(p);
        return c ? SW_ERANGE : SW_EIO;
    }
    c->refs++;
    c->n_pending++;
    p->conn = c;
    p->id = ++c->next_id;
    p->next = c->pending;
    c->pending = p;
    pthread_mutex_unlock(&hv->mu);
    m.id = p->id;
    snprintf(m.method, sizeof(m.method), "%s", method);
    snprintf(m.path, sizeof(m.path), "%s", path);
    if ((rc = sw_hv_chan_send(&c->ch, &m)) && rc != SW_EINVAL)
        sw_hv_chan_shutdown(&c->ch); /* the reader fails every pending request */
    if (rc == SW_EINVAL) { /* nothing was written: withdraw the request */
        pthread_mutex_lock(&hv->mu);
        p->done = p->failed = true;
        pthread_mutex_unlock(&hv->mu);
    }
    *out = p;
    return SW_OK;
}

/* Under hv->mu: unlinks p from its connection. */
static void unlink_pending(struct hv_pending *p)
{
    struct hv_pending **pp = &p->conn->pending;

    while (*pp && *pp != p)
        pp = &(*pp)->next;
    if (*pp) {
        *pp = p->next;
        p->conn->n_pending--;
    }
}

int hv_relay_wait(struct hv *hv, struct hv_pending *p, int timeout_ms, int *status, char **body,
                  size_t *body_len)
{
    struct hv_conn *c = p->conn;
    struct timespec ts;
    int rc;

    sw_cond_deadline(timeout_ms, &ts);
    pthread_mutex_lock(&hv->mu);
    while (!p->done && pthread_cond_timedwait(&p->cond, &hv->mu, &ts) == 0)
        ;
    unlink_pending(p);
    rc = !p->done ? SW_ETIMEDOUT : p->failed ? SW_EIO : SW_OK;
    pthread_mutex_unlock(&hv->mu);
    if (rc == SW_OK) {
        *status = p->status;
        *body = p->body;
        *body_len = p->body_len;
        p->body = NULL;
    }
    atomic_fetch_add(rc ? &hv->m_relay_failed : &hv->m_relayed, 1);
    free(p->body);
    pthread_cond_destroy(&p->cond);
    free(p);
    conn_put(hv, c);
    return rc;
}

int hv_relay(struct hv *hv, size_t idx, const char *method, const char *path, const char *body,
             size_t body_len, int timeout_ms, int *status, char **out, size_t *out_len)
{
    struct hv_pending *p = NULL;
    int rc = hv_relay_send(hv, idx, method, path, body, body_len, &p);
    return rc ? rc : hv_relay_wait(hv, p, timeout_ms, status, out, out_len);
}

/* Reader: a RESP completes its pending request (unknown ids are late answers: dropped). */
static void complete(struct hv_conn *c, const struct sw_hv_msg *m)
{
    struct hv_pending *p;
    char *copy = malloc(m->body_len + 1);

    if (!copy)
        return;
    memcpy(copy, m->body ? (const char *)m->body : "", m->body_len);
    copy[m->body_len] = '\0';
    pthread_mutex_lock(&c->hv->mu);
    for (p = c->pending; p && (p->id != m->id || p->done); p = p->next)
        ;
    if (p) {
        p->done = true;
        p->status = m->status;
        p->body = copy;
        p->body_len = m->body_len;
        copy = NULL;
        pthread_cond_signal(&p->cond);
    }
    pthread_mutex_unlock(&c->hv->mu);
    free(copy);
}

/* ---- one link ----------------------------------------------------------------------------- */

/* Becomes the visor's link; an older link of the same visor is shut down. false when the
 * hypervisor is stopping (hv_link_stop has already swept the links). */
static bool attach(struct hv *hv, struct hv_conn *c, int idx)
{
    struct hv_conn *old;

    pthread_mutex_lock(&hv->mu);
    if (hv->stopping) {
        pthread_mutex_unlock(&hv->mu);
        return false;
    }
    old = hv->visors[idx].conn;
    if (old)
        sw_hv_chan_shutdown(&old->ch);
    c->idx = idx;
    c->since = sw_unix_ms() / 1000;
    hv->visors[idx].conn = c;
    pthread_mutex_unlock(&hv->mu);
    atomic_fetch_add(&hv->m_links_opened, 1);
    sw_log_info("visor %s: online from %s%s", hv->visors[idx].pk_hex, c->addr,
                old ? " (replaces its previous link)" : "");
    return true;
}

static void detach(struct hv *hv, struct hv_conn *c, const char *why)
{
    pthread_mutex_lock(&hv->mu);
    c->dead = true;
    if (c->idx >= 0 && hv->visors[c->idx].conn == c)
        hv->visors[c->idx].conn = NULL;
    for (struct hv_pending *p = c->pending; p; p = p->next) {
        if (!p->done) {
            p->done = p->failed = true;
            pthread_cond_signal(&p->cond);
        }
    }
    pthread_mutex_unlock(&hv->mu);
    if (c->idx >= 0)
        sw_log_info("visor %s: offline (%s)", hv->visors[c->idx].pk_hex, why);
}

static void serve(struct hv *hv, struct hv_conn *c, char *why, size_t cap)
{
    int64_t last_rx = sw_mono_ms(), last_ping = last_rx; /* monotonic */
    struct sw_hv_msg m, out = { .type = SW_HV_PING };
    int rc;

    for (;;) {
        rc = sw_hv_chan_recv(&c->ch, 1000, &m);
        if (rc == SW_ETIMEDOUT) {
            pthread_mutex_lock(&hv->mu);
            bool stop = hv->stopping;
            pthread_mutex_unlock(&hv->mu);
            if (stop) {
                snprintf(why, cap, "stopping");
                return;
            }
            if (sw_ms_since(last_rx) > HV_DEAD_MS) {
                snprintf(why, cap, "no traffic for %d s", HV_DEAD_MS / 1000);
                return;
            }
            if (sw_ms_since(last_rx) >= HV_PING_MS && sw_ms_since(last_ping) >= HV_PING_MS) {
                last_ping = sw_mono_ms();
                out = (struct sw_hv_msg){ .type = SW_HV_PING, .id = (uint32_t)last_ping };
                if (sw_hv_chan_send(&c->ch, &out)) { /* maybe half sent: the stream is broken */
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
        if (m.type == SW_HV_RESP) {
            complete(c, &m);
        } else if (m.type == SW_HV_PING) {
            out = (struct sw_hv_msg){ .type = SW_HV_PONG, .id = m.id };
            if (sw_hv_chan_send(&c->ch, &out)) {
                snprintf(why, cap, "sending a pong failed");
                return;
            }
        } else if (m.type == SW_HV_REQ) {
            snprintf(why, cap, "protocol error: a visor sent a request");
            return;
        }
    }
}

/* Under hv->mu: takes a handshake slot for ip unless all are busy or ip holds its share. */
static bool hs_reserve(struct hv *hv, const char *ip)
{
    int slot = -1;

    if (hv->n_handshakes >= HV_MAX_HANDSHAKES)
        return false;
    for (int i = 0; i < HV_MAX_HANDSHAKES; i++) {
        if (hv->hs_ips[i].n > 0 && strcmp(hv->hs_ips[i].ip, ip) == 0) {
            if (hv->hs_ips[i].n >= HV_MAX_HANDSHAKES_PER_IP)
                return false;
            slot = i;
            break;
        }
        if (hv->hs_ips[i].n == 0 && slot < 0)
            slot = i; /* exists: fewer than HV_MAX_HANDSHAKES addresses hold slots */
    }
    if (hv->hs_ips[slot].n == 0)
        snprintf(hv->hs_ips[slot].ip, sizeof(hv->hs_ips[slot].ip), "%s", ip);
    hv->hs_ips[slot].n++;
    hv->n_handshakes++;
    return true;
}

/* Under hv->mu: gives back ip's handshake slot. */
static void hs_release(struct hv *hv, const char *ip)
{
    for (int i = 0; i < HV_MAX_HANDSHAKES; i++) {
        if (hv->hs_ips[i].n > 0 && strcmp(hv->hs_ips[i].ip, ip) == 0) {
            hv->hs_ips[i].n--;
            break;
        }
    }
    hv->n_handshakes--;
}

static bool handshake(struct hv *hv, struct hv_conn *c)
{
    struct sw_error err = { 0 };
    char hex[SW_PK_HEX_LEN + 1];
    int rc = sw_hv_chan_handshake(&c->ch, false, &hv->kp, NULL, HV_HANDSHAKE_MS, &err);
    int idx;

    pthread_mutex_lock(&hv->mu);
    hs_release(hv, c->ip);
    pthread_mutex_unlock(&hv->mu);
    if (rc) {
        sw_log_info("visor link from %s: %s", c->addr, err.msg);
        return false;
    }
    sw_pk_to_hex(&c->ch.peer, hex);
    if ((idx = hv_visor_find(hv, &c->ch.peer)) < 0) {
        atomic_fetch_add(&hv->m_links_refused, 1);
        sw_log_warn("visor link from %s: refused key %s (not in the allow-list)", c->addr, hex);
        return false;
    }
    return attach(hv, c, idx);
}

static void *conn_main(void *arg)
{
    struct hv_conn *c = arg;
    struct hv *hv = c->hv;
    char why[96] = "";

    if (handshake(hv, c)) {
        serve(hv, c, why, sizeof(why));
        detach(hv, c, why);
    } else {
        pthread_mutex_lock(&hv->mu);
        c->dead = true;
        pthread_mutex_unlock(&hv->mu);
    }
    sw_hv_chan_shutdown(&c->ch);
    conn_put(hv, c);
    pthread_mutex_lock(&hv->mu);
    hv->n_threads--;
    pthread_cond_broadcast(&hv->cond);
    pthread_mutex_unlock(&hv->mu);
    return NULL;
}

/* ---- accepting ---------------------------------------------------------------------------- */

/* "ip:port" (or "[ip]:port") into out, the bare address into ip. */
static void format_peer(const struct sockaddr_storage *ss, char *out, size_t cap, char ip[HV_IP_MAX])
{
    char host[INET6_ADDRSTRLEN], serv[8];

    if (getnameinfo((const struct sockaddr *)ss, sizeof(*ss), host, sizeof(host), serv, sizeof(serv),
                    NI_NUMERICHOST | NI_NUMERICSERV)) {
        snprintf(out, cap, "?");
        snprintf(ip, HV_IP_MAX, "?");
    } else {
        snprintf(out, cap, ss->ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, serv);
        snprintf(ip, HV_IP_MAX, "%s", host);
    }
}

static void take(struct hv *hv, int fd, const struct sockaddr_storage *ss)
{
    struct hv_conn *c = calloc(1, sizeof(*c));
    pthread_attr_t attr;
    pthread_t th;
    bool ok;

    if (c)
        format_peer(ss, c->addr, sizeof(c->addr), c->ip);
    pthread_mutex_lock(&hv->mu);
    ok = c && !hv->stopping && hs_reserve(hv, c->ip);
    if (ok)
        hv->n_threads++;
    pthread_mutex_unlock(&hv->mu);
    if (!ok || sw_hv_chan_init(&c->ch, fd)) {
        if (ok) {
            pthread_mutex_lock(&hv->mu);
            hs_release(hv, c->ip);
            hv->n_threads--;
            pthread_mutex_unlock(&hv->mu);
        } else {
            close(fd);
        }
        free(c);
        return;
    }
    c->hv = hv;
    c->refs = 1;
    c->idx = -1;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&th, &attr, conn_main, c)) {
        pthread_mutex_lock(&hv->mu);
        hs_release(hv, c->ip);
        hv->n_threads--;
        pthread_mutex_unlock(&hv->mu);
        sw_hv_chan_destroy(&c->ch);
        free(c);
    }
    pthread_attr_destroy(&attr);
}

static void *accept_main(void *arg)
{
    struct hv *hv = arg;
    struct sockaddr_storage ss;
    socklen_t len;
    int fd;

    for (;;) {
        len = sizeof(ss);
        fd = accept4(hv->lfd, (struct sockaddr *)&ss, &len, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            pthread_mutex_lock(&hv->mu);
            bool stop = hv->stopping;
            pthread_mutex_unlock(&hv->mu);
            if (stop || errno == EINVAL || errno == EBADF)
                return NULL;
            sw_log_warn("visor listener: accept failed: %s; pausing 1 s", strerror(errno));
            sleep(1);
            continue;
        }
        take(hv, fd, &ss);
    }
}

static int listen_on(struct hv *hv, struct sw_error *err)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_PASSIVE | AI_NUMERICHOST };
    struct addrinfo *res = NULL;
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    char host[HV_ADDR_MAX], port[8];
    uint16_t p;
    int one = 1, e;

    if (sw_hostport_parse(hv->cfg.visor_addr, SW_HOSTPORT_LISTEN, host, sizeof(host), &p))
        return sw_error_set(err, SW_EINVAL, "--visor-addr '%s' is not host:port", hv->cfg.visor_addr);
    snprintf(port, sizeof(port), "%u", p);
    if ((e = getaddrinfo(host[0] ? host : NULL, port, &hints, &res)))
        return sw_error_set(err, SW_EINVAL, "--visor-addr '%s': %s", hv->cfg.visor_addr, gai_strerror(e));
    hv->lfd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (hv->lfd < 0 || setsockopt(hv->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
        bind(hv->lfd, res->ai_addr, res->ai_addrlen) || listen(hv->lfd, 128)) {
        sw_error_set(err, SW_EIO, "cannot listen on %s: %s", hv->cfg.visor_addr, strerror(errno));
        freeaddrinfo(res);
        return SW_EIO;
    }
    freeaddrinfo(res);
    if (getsockname(hv->lfd, (struct sockaddr *)&ss, &len) == 0) {
        char ip[HV_IP_MAX];
        format_peer(&ss, hv->visor_bound, sizeof(hv->visor_bound), ip);
    }
    return SW_OK;
}

int hv_link_start(struct hv *hv, struct sw_error *err)
{
    int rc;

    hv->lfd = -1;
    if ((rc = listen_on(hv, err)))
        return rc;
    if (pthread_create(&hv->accept_th, NULL, accept_main, hv))
        return sw_error_set(err, SW_ENOMEM, "cannot start the accept thread");
    hv->accept_started = true;
    return SW_OK;
}

void hv_link_stop(struct hv *hv)
{
    pthread_mutex_lock(&hv->mu);
    hv->stopping = true;
    pthread_mutex_unlock(&hv->mu);
    if (hv->lfd >= 0)
        shutdown(hv->lfd, SHUT_RDWR);
    if (hv->accept_started)
        pthread_join(hv->accept_th, NULL);
    hv->accept_started = false;
    if (hv->lfd >= 0)
        close(hv->lfd);
    hv->lfd = -1;
    pthread_mutex_lock(&hv->mu);
    for (size_t i = 0; i < hv->n_visors; i++)
        if (hv->visors[i].conn)
            sw_hv_chan_shutdown(&hv->visors[i].conn->ch);
    /* handshaking links end within HV_HANDSHAKE_MS */
    while (hv->n_threads > 0)
        pthread_cond_wait(&hv->cond, &hv->mu);
    pthread_mutex_unlock(&hv->mu);
}
