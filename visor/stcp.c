/* stcp.c — the stcp listener: accepts TCP connections on stcp.listen and hands each to a
 * responder link, which must deliver handshake message 1 within VISOR_FIRST_MESSAGE_MS and
 * finish the Noise XK handshake within VISOR_HANDSHAKE_MS (link.c).
 * Handshake slots (docs/visor.md "Hostile load"): at most VISOR_MAX_HANDSHAKES inbound
 * handshakes run at once and, once half of them are taken, at most
 * VISOR_MAX_HANDSHAKES_PER_SOURCE from one source (an IPv4 address or an IPv6 /64); a
 * connection beyond its source's share is refused at once, and when all slots are taken the oldest pending handshake of the busiest source is
 * evicted for the newcomer, so idle sockets from a few addresses cannot lock out honest
 * dialers. Both tell the dialer VISOR_HS_BUSY before closing. Evictions and refusals are
 * logged once per burst, then summed up every VISOR_HS_SLOT_LOG_MS.
 * Dialing lives in link.c (visor_link_dial_stcp). */
#include "visor/visor.h"
#include "common/frame.h"
#include "common/hostport.h"
#include "common/log.h"
#include "common/metrics.h"

#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static void format_addr(const struct sockaddr *sa, socklen_t len, char *out, size_t cap)
{
    char host[INET6_ADDRSTRLEN + 16], serv[16];
    if (getnameinfo(sa, len, host, sizeof(host), serv, sizeof(serv), NI_NUMERICHOST | NI_NUMERICSERV))
        snprintf(out, cap, "?");
    else if (sa->sa_family == AF_INET6)
        snprintf(out, cap, "[%s]:%s", host, serv);
    else
        snprintf(out, cap, "%s:%s", host, serv);
}

/* ---- handshake slots per source --------------------------------------------------------- */

/* A source address with inbound handshakes pending: an IPv4 address or an IPv6 /64. At most
 * VISOR_MAX_HANDSHAKES of them (one per pending link at worst), so a list will do. */
struct visor_hs_source {
    uint8_t key[16];
    LIST_ENTRY(visor_hs_source) link;
    TAILQ_HEAD(, visor_link) pending; /* oldest first */
    size_t n;
};

static const uint8_t v4_mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

static void source_key(const struct sockaddr *sa, uint8_t key[16])
{
    memset(key, 0, 16);
    if (sa->sa_family == AF_INET) {
        memcpy(key, v4_mapped, sizeof(v4_mapped));
        memcpy(key + 12, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
    } else if (sa->sa_family == AF_INET6) {
        const uint8_t *a = ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr;
        /* an IPv4 peer of a dual-stack listener counts as IPv4; IPv6 by its /64 */
        memcpy(key, a, memcmp(a, v4_mapped, sizeof(v4_mapped)) == 0 ? 16 : 8);
    }
}

static void source_text(const uint8_t key[16], char *out, size_t cap)
{
    char ip[INET6_ADDRSTRLEN];
    bool v4 = memcmp(key, v4_mapped, sizeof(v4_mapped)) == 0;

    if (!inet_ntop(v4 ? AF_INET : AF_INET6, v4 ? key + 12 : key, ip, sizeof(ip)))
        snprintf(ip, sizeof(ip), "?");
    snprintf(out, cap, v4 ? "%s" : "%s/64", ip);
}

static struct visor_hs_source *source_find(struct visor *v, const uint8_t key[16])
{
    struct visor_hs_source *src;

    LIST_FOREACH(src, &v->hs_sources, link)
        if (memcmp(src->key, key, 16) == 0)
            return src;
    return NULL;
}

static int slot_take(struct visor *v, struct visor_link *l, const uint8_t key[16])
{
    struct visor_hs_source *src = source_find(v, key);

    if (!src) {
        if (!(src = calloc(1, sizeof(*src))))
            return SW_ENOMEM;
        memcpy(src->key, key, 16);
        TAILQ_INIT(&src->pending);
        LIST_INSERT_HEAD(&v->hs_sources, src, link);
        v->m_hs_sources++;
    }
    TAILQ_INSERT_TAIL(&src->pending, l, hs_next);
    src->n++;
    l->hs_src = src;
    v->m_hs_pending++;
    return SW_OK;
}

void visor_stcp_slot_release(struct visor_link *l)
{
    struct visor_hs_source *src = l->hs_src;

    if (!src)
        return;
    l->hs_src = NULL;
    TAILQ_REMOVE(&src->pending, l, hs_next);
    l->v->m_hs_pending--;
    if (--src->n > 0)
        return;
    LIST_REMOVE(src, link);
    free(src);
    l->v->m_hs_sources--;
}

/* The oldest pending link of the source with the most pending ones (of those, the source
 * whose oldest is oldest). */
static struct visor_link *victim(struct visor *v)
{
    struct visor_hs_source *src, *best = NULL;

    LIST_FOREACH(src, &v->hs_sources, link)
        if (!best || src->n > best->n ||
            (src->n == best->n && TAILQ_FIRST(&src->pending)->serial < TAILQ_FIRST(&best->pending)->serial))
            best = src;
    return best ? TAILQ_FIRST(&best->pending) : NULL;
}

static void log_cb(evutil_socket_t fd, short what, void *arg)
{
    struct visor *v = arg;
    struct timeval tv = { VISOR_HS_SLOT_LOG_MS / 1000, (VISOR_HS_SLOT_LOG_MS % 1000) * 1000 };
    struct visor_link *top = victim(v);
    char who[INET6_ADDRSTRLEN + 8], busiest[INET6_ADDRSTRLEN + 64];

    if (v->hs_log_evicted + v->hs_log_refused == 0) {
        v->hs_log_open = false; /* quiet: the next one is logged at once */
        return;
    }
    if (top) {
        source_text(top->hs_src->key, who, sizeof(who));
        snprintf(busiest, sizeof(busiest), "busiest source now %s with %zu pending", who, top->hs_src->n);
    } else {
        snprintf(busiest, sizeof(busiest), "none pending now");
    }
    sw_log_warn("stcp: handshake slots in the last %d s: %llu pending handshakes evicted (all %d taken), "
                "%llu connections refused (their source had %d pending, half or more taken); %s",
                VISOR_HS_SLOT_LOG_MS / 1000, (unsigned long long)v->hs_log_evicted, VISOR_MAX_HANDSHAKES,
                (unsigned long long)v->hs_log_refused, VISOR_MAX_HANDSHAKES_PER_SOURCE, busiest);
    v->hs_log_evicted = v->hs_log_refused = 0;
    evtimer_add(v->hs_log_ev, &tv);
}

/* An eviction or a refusal: the first of a burst is logged, the rest summed up by log_cb. */
static void note(struct visor *v, bool evicted, const uint8_t key[16], size_t pending)
{
    struct timeval tv = { VISOR_HS_SLOT_LOG_MS / 1000, (VISOR_HS_SLOT_LOG_MS % 1000) * 1000 };
    char who[INET6_ADDRSTRLEN + 8];

    if (evicted)
        v->m_hs_evicted++;
    else
        v->m_hs_refused++;
    if (v->hs_log_open || !v->hs_log_ev) {
        if (evicted)
            v->hs_log_evicted++;
        else
            v->hs_log_refused++;
        return;
    }
    v->hs_log_open = true;
    source_text(key, who, sizeof(who));
    if (evicted)
        sw_log_warn("stcp: all %d handshake slots taken; evicted the oldest pending handshake of %s (%zu "
                    "pending from it); more are summed up every %d s", VISOR_MAX_HANDSHAKES, who, pending,
                    VISOR_HS_SLOT_LOG_MS / 1000);
    else
        sw_log_warn("stcp: refused a connection from %s, which has %zu of the %zu handshakes pending (at most "
                    "%d per source once half of %d are taken); more are summed up every %d s", who, pending,
                    v->n_handshakes, VISOR_MAX_HANDSHAKES_PER_SOURCE, VISOR_MAX_HANDSHAKES, VISOR_HS_SLOT_LOG_MS / 1000);
    evtimer_add(v->hs_log_ev, &tv);
}

/* Tells a dialer we close on why (VISOR_HS_BUSY, one frame), so its add-tp says the visor
 * is busy; what it already sent is read first, so the close is a FIN and not a reset that
 * could overtake the frame. Best effort: non-blocking, errors ignored. */
static void say_busy(evutil_socket_t fd)
{
    uint8_t frame[SW_FRAME_HDR_LEN + sizeof(VISOR_HS_BUSY) - 1], junk[2048];

    sw_frame_header(frame, sizeof(VISOR_HS_BUSY) - 1);
    memcpy(frame + SW_FRAME_HDR_LEN, VISOR_HS_BUSY, sizeof(VISOR_HS_BUSY) - 1);
    for (int i = 0; i < 4 && recv(fd, junk, sizeof(junk), MSG_DONTWAIT) > 0; i++) {
    } /* a dialer sent one message 1 at most; a flood is not worth reading */
    (void)!send(fd, frame, sizeof(frame), MSG_NOSIGNAL | MSG_DONTWAIT);
}

static void evict(struct visor *v, struct visor_link *l)
{
    evutil_socket_t fd = bufferevent_getfd(l->bev);

    note(v, true, l->hs_src->key, l->hs_src->n);
    if (fd >= 0 && !l->first_msg)
        say_busy(fd); /* after message 2 the dialer would not read it as a handshake frame */
    visor_link_close(l, false, "evicted: all %d handshake slots taken", VISOR_MAX_HANDSHAKES);
}

/* ---- the listener -------------------------------------------------------------------------- */

static void accept_cb(struct evconnlistener *lst, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
    struct visor *v = arg;
    struct visor_link *l, *old;
    struct visor_hs_source *src;
    char peer[VISOR_ADDR_MAX];
    uint8_t key[16];

    format_addr(sa, (socklen_t)salen, peer, sizeof(peer));
    if (v->stopping) {
        evutil_closesocket(fd);
        return;
    }
    source_key(sa, key);
    /* a source's share counts once half of the slots are taken: below that, one busy host
     * (visors behind one NAT, a test network on loopback) is not held back */
    if (v->n_handshakes >= VISOR_MAX_HANDSHAKES / 2 && (src = source_find(v, key)) &&
        src->n >= VISOR_MAX_HANDSHAKES_PER_SOURCE) {
        sw_log_debug("stcp: refusing %s: %zu handshakes pending from it", peer, src->n);
        note(v, false, key, src->n);
        say_busy(fd);
        evutil_closesocket(fd);
        return;
    }
    /* the oldest of the busiest source makes room: a few sources cannot lock others out */
    while (v->n_handshakes >= VISOR_MAX_HANDSHAKES && (old = victim(v)))
        evict(v, old);
    if (visor_link_new(v, fd, VISOR_TP_STCP, VISOR_LINK_RESPONDER, true, NULL, peer, &l)) {
        sw_log_warn("stcp: cannot take the connection from %s: out of memory", peer);
        return;
    }
    if (l->counted && slot_take(v, l, key)) /* not counted: closed already */
        visor_link_close(l, false, "out of memory");
    else
        sw_log_debug("%s: accepted", l->label);
}

static void resume_cb(evutil_socket_t fd, short what, void *arg)
{
    struct visor *v = arg;
    if (v->stcp && !v->stopping)
        evconnlistener_enable(v->stcp);
}

/* Out of descriptors (or similar): pause accepting for a second rather than spin. */
static void accept_error_cb(struct evconnlistener *lst, void *arg)
{
    struct visor *v = arg;
    struct timeval one = { 1, 0 };
    int e = EVUTIL_SOCKET_ERROR();

    sw_log_warn("stcp: accept failed: %s; pausing the listener for 1 s", evutil_socket_error_to_string(e));
    evconnlistener_disable(lst);
    event_base_once(v->base, -1, EV_TIMEOUT, resume_cb, v, &one);
}

int visor_stcp_listen(struct visor *v, struct sw_error *err)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    int slen = (int)sizeof(ss);
    char host[VISOR_ADDR_MAX], spec[VISOR_ADDR_MAX + 8];
    uint16_t port;

    if (!v->cfg.stcp_listen[0])
        return SW_OK;
    if (sw_hostport_parse(v->cfg.stcp_listen, SW_HOSTPORT_LISTEN, host, sizeof(host), &port))
        return sw_error_set(err, SW_EINVAL, "stcp.listen '%s' is not host:port", v->cfg.stcp_listen);
    /* evutil wants IPv6 in brackets and an empty host means every address */
    snprintf(spec, sizeof(spec), strchr(host, ':') ? "[%s]:%u" : "%s:%u", host[0] ? host : "0.0.0.0", port);
    memset(&ss, 0, sizeof(ss));
    if (evutil_parse_sockaddr_port(spec, (struct sockaddr *)&ss, &slen))
        return sw_error_set(err, SW_EINVAL, "stcp.listen '%s' must be a numeric IP address and port",
                            v->cfg.stcp_listen);
    v->stcp = evconnlistener_new_bind(v->base, accept_cb, v,
                                      LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
                                      128, (struct sockaddr *)&ss, slen);
    if (!v->stcp)
        return sw_error_set(err, SW_EIO, "stcp: cannot listen on %s: %s", v->cfg.stcp_listen,
                            evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
    evconnlistener_set_error_cb(v->stcp, accept_error_cb);
    if (!(v->hs_log_ev = evtimer_new(v->base, log_cb, v)))
        return sw_error_set(err, SW_ENOMEM, "out of memory");
    if (getsockname(evconnlistener_get_fd(v->stcp), (struct sockaddr *)&ss, &len) == 0)
        format_addr((struct sockaddr *)&ss, len, v->stcp_addr, sizeof(v->stcp_addr));
    return SW_OK;
}

void visor_stcp_close(struct visor *v)
{
    if (v->stcp)
        evconnlistener_free(v->stcp);
    v->stcp = NULL;
    if (v->hs_log_ev)
        event_free(v->hs_log_ev);
    v->hs_log_ev = NULL;
}

void visor_stcp_write_metrics(struct visor *v, struct sw_buf *out)
{
    sw_metrics_write_header(out, "visor_stcp_handshakes_pending", "gauge",
                            "Inbound stcp connections still in the handshake");
    sw_metrics_write_sample(out, "visor_stcp_handshakes_pending", NULL, (double)v->m_hs_pending);
    sw_metrics_write_header(out, "visor_stcp_handshake_sources", "gauge",
                            "Source addresses (IPv4, IPv6 /64) with inbound handshakes pending");
    sw_metrics_write_sample(out, "visor_stcp_handshake_sources", NULL, (double)v->m_hs_sources);
    sw_metrics_write_header(out, "visor_stcp_handshake_slots_total", "counter",
                            "Inbound handshakes evicted (all slots taken) or refused (source at its share)");
    sw_metrics_write_sample(out, "visor_stcp_handshake_slots_total", "result=\"evicted\"", (double)v->m_hs_evicted);
    sw_metrics_write_sample(out, "visor_stcp_handshake_slots_total", "result=\"source_limit\"",
                            (double)v->m_hs_refused);
    sw_metrics_write_header(out, "visor_stcp_first_message_timeouts_total", "counter",
                            "Inbound connections closed without handshake message 1 in time");
    sw_metrics_write_sample(out, "visor_stcp_first_message_timeouts_total", NULL, (double)v->m_hs_first_timeouts);
}
