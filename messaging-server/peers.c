/* peers.c — client sessions from accept to close, and the pk -> session map.
 *
 * A peer is WAITING from accept until its first handshake message is readable (no session
 * yet: it holds only a socket, an event and a handshake slot of its source, slots.c), then
 * HANDSHAKE until its session is ready, then ACTIVE (in srv->peers, counted in
 * ms_sessions) or, when over --max-sessions or the server is stopping, LEAVING at once
 * after a GOAWAY. A peer leaves the map (and its streams are reset) the moment it is
 * replaced, breaks the protocol or closes; the struct lives until on_closed. */
#include "messaging-server/ms.h"
#include "common/clock.h"
#include "common/frame.h"
#include "common/log.h"
#include "common/noise.h"

#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static void on_ready(struct sw_msg_session *s, void *ctx);
static int on_frame(struct sw_msg_session *s, const struct sw_msg_frame *f, void *ctx);
static void on_closed(struct sw_msg_session *s, enum sw_msg_close_reason reason, int goaway,
                      const char *why, void *ctx);

static const struct sw_msg_session_callbacks peer_callbacks = {
    .on_ready = on_ready, .on_frame = on_frame, .on_drained = NULL, .on_closed = on_closed,
};

static const char *reason_name(enum sw_msg_close_reason r)
{
    static const char *const names[MS_CLOSE_REASONS] = {
        "local", "eof", "io", "handshake", "protocol", "goaway", "idle", "overflow", "refused",
    };
    return (unsigned)r < MS_CLOSE_REASONS ? names[r] : "unknown";
}

struct ms_peer *ms_peer_find(struct ms_server *srv, const struct sw_pk *pk)
{
    struct ms_hnode *n = ms_table_find(&srv->peers, pk->b);
    return n ? MS_CONTAINER(n, struct ms_peer, node) : NULL;
}

/* Takes an ACTIVE peer out of the map and resets its streams; it stays LEAVING. */
static void detach(struct ms_peer *p)
{
    if (p->state != MS_PEER_ACTIVE)
        return;
    ms_table_remove(&p->srv->peers, &p->node);
    atomic_fetch_sub(&p->srv->m.sessions, 1);
    p->state = MS_PEER_LEAVING;
    ms_relay_peer_gone(p);
}

void ms_peer_goaway(struct ms_peer *p, enum sw_msg_goaway code)
{
    if ((unsigned)code < MS_GOAWAY_CODES)
        atomic_fetch_add(&p->srv->m.goaways[code], 1);
    p->state = MS_PEER_LEAVING;
    sw_msg_session_goaway(p->s, code);
}

static void format_addr(const struct sockaddr *sa, socklen_t len, char *out, size_t cap)
{
    char host[INET6_ADDRSTRLEN], serv[8];

    if (!sa || (sa->sa_family != AF_INET && sa->sa_family != AF_INET6) ||
        getnameinfo(sa, len, host, sizeof(host), serv, sizeof(serv), NI_NUMERICHOST | NI_NUMERICSERV))
        snprintf(out, cap, "?");
    else
        snprintf(out, cap, sa->sa_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, serv);
}

/* A WAITING peer goes away without a session: its socket, event and slot. */
static void drop_waiting(struct ms_peer *p)
{
    struct ms_server *srv = p->srv;

    event_free(p->first_ev);
    evutil_closesocket(p->fd);
    ms_slots_release(srv, p);
    LIST_REMOVE(p, link);
    free(p);
    if (--srv->n_conns == 0 && srv->stopping)
        event_base_loopbreak(srv->base);
}

/* Makes room: the pending handshake of the busiest source's oldest connection ends now. */
static void evict(struct ms_server *srv, struct ms_peer *p)
{
    ms_slots_note(srv, true, p->src->key, p->src->n);
    sw_log_debug("handshake from %s evicted: all %ld handshake slots taken", p->addr, srv->cfg.max_handshakes);
    if (p->state == MS_PEER_WAITING) {
        drop_waiting(p);
        return;
    }
    ms_slots_release(srv, p); /* the slot is free at once; on_closed follows from the loop */
    sw_msg_session_close(p->s);
}

static void first_message_cb(evutil_socket_t fd, short what, void *arg);

void ms_peer_accept(struct ms_server *srv, evutil_socket_t fd, const struct sockaddr *sa, int salen)
{
    uint8_t key[MS_SOURCE_KEY_LEN];
    struct timeval tv;
    struct ms_peer *p, *victim;
    long n, first_ms;
    int lowat = SW_FRAME_HDR_LEN + SW_NOISE_XK_MSG1_LEN;

    if (srv->stopping) {
        atomic_fetch_add(&srv->m.handshakes_rejected, 1);
        evutil_closesocket(fd);
        return;
    }
    ms_slots_key(sa, key);
    /* a source's share counts once half of the slots are taken: below that, one busy host
     * (several clients behind one address, a test network on loopback) is not held back */
    if (atomic_load(&srv->m.handshaking) >= srv->cfg.max_handshakes / 2 &&
        (n = ms_slots_pending(srv, key)) >= srv->cfg.max_handshakes_per_source) {
        ms_slots_note(srv, false, key, n);
        evutil_closesocket(fd);
        return;
    }
    /* unauthenticated connections are capped so they cannot exhaust fds or memory; the
     * oldest of the busiest source makes room, so a few sources cannot lock others out */
    while (atomic_load(&srv->m.handshaking) >= srv->cfg.max_handshakes && (victim = ms_slots_victim(srv)))
        evict(srv, victim);
    if (!(p = calloc(1, sizeof(*p)))) {
        evutil_closesocket(fd);
        return;
    }
    p->srv = srv;
    p->serial = ++srv->next_serial;
    p->next_even = 2;
    p->state = MS_PEER_WAITING;
    p->fd = fd;
    p->accepted_ms = sw_mono_ms();
    LIST_INIT(&p->ends);
    format_addr(sa, (socklen_t)salen, p->addr, sizeof(p->addr));
    if (ms_slots_take(srv, p, key) ||
        !(p->first_ev = event_new(srv->base, fd, EV_READ, first_message_cb, p))) {
        ms_slots_release(srv, p);
        free(p);
        evutil_closesocket(fd);
        return;
    }
    /* readable only once message 1 is complete (or at EOF): a connection that sends
     * nothing, or a byte now and then, costs a slot for first_ms at most */
    evutil_make_socket_nonblocking(fd);
    setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &lowat, sizeof(lowat));
    first_ms = srv->cfg.first_message_timeout_ms < srv->cfg.handshake_timeout_ms
                   ? srv->cfg.first_message_timeout_ms : srv->cfg.handshake_timeout_ms;
    tv = (struct timeval){ first_ms / 1000, (first_ms % 1000) * 1000 };
    event_add(p->first_ev, &tv);
    LIST_INSERT_HEAD(&srv->conns, p, link);
    srv->n_conns++;
}

/* Message 1 is there (or the client hung up): the session takes the socket, with what is
 * left of --handshake-timeout-ms. Or the first message's deadline passed: closed. */
static void first_message_cb(evutil_socket_t fd, short what, void *arg)
{
    struct ms_peer *p = arg;
    struct ms_server *srv = p->srv;
    struct sw_msg_session_opts opts = {
        .idle_timeout_ms = (int)srv->cfg.idle_timeout_ms,
        .ping_interval_ms = (int)srv->cfg.ping_interval_ms,
        .max_output = (size_t)srv->cfg.max_session_buffer,
        .network = srv->net,
    };
    struct sw_error err = { 0 };
    int64_t left = srv->cfg.handshake_timeout_ms - sw_ms_since(p->accepted_ms);
    int one = 1;
    char byte;

    if (what & EV_TIMEOUT) {
        atomic_fetch_add(&srv->m.handshakes_failed, 1);
        atomic_fetch_add(&srv->m.first_message_timeouts, 1);
        atomic_fetch_add(&srv->m.closed[SW_MSG_CLOSED_HANDSHAKE], 1);
        sw_log_debug("handshake from %s failed: no first message within %ld ms", p->addr,
                     (long)sw_ms_since(p->accepted_ms));
        drop_waiting(p);
        return;
    }
    if (recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) == 0) { /* connected and hung up: no session */
        atomic_fetch_add(&srv->m.handshakes_failed, 1);
        atomic_fetch_add(&srv->m.closed[SW_MSG_CLOSED_HANDSHAKE], 1);
        sw_log_debug("handshake from %s failed: hung up before message 1", p->addr);
        drop_waiting(p);
        return;
    }
    setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &one, sizeof(one));
    event_free(p->first_ev);
    p->first_ev = NULL;
    p->state = MS_PEER_HANDSHAKE;
    opts.handshake_timeout_ms = left > 1 ? (int)left : 1; /* 0 would mean the default */
    if (sw_msg_session_accept(srv->base, fd, &srv->kp, &opts, &peer_callbacks, p, &p->s, &err)) {
        sw_log_warn("cannot start a session: %s", err.msg); /* the socket is closed */
        atomic_fetch_add(&srv->m.handshakes_failed, 1);
        ms_slots_release(srv, p);
        LIST_REMOVE(p, link);
        free(p);
        if (--srv->n_conns == 0 && srv->stopping)
            event_base_loopbreak(srv->base);
    }
}

static void on_ready(struct sw_msg_session *s, void *ctx)
{
    struct ms_peer *p = ctx, *old;
    struct ms_server *srv = p->srv;
    char hex[SW_PK_HEX_LEN + 1];

    p->pk = *sw_msg_session_peer(s);
    p->cert = sw_msg_session_peer_cert(s);
    sw_pk_to_hex(&p->pk, hex);
    ms_slots_release(srv, p);
    atomic_fetch_add(&srv->m.handshakes_ok, 1);
    if (srv->stopping) {
        ms_peer_goaway(p, SW_GOAWAY_SHUTDOWN);
        return;
    }
    old = ms_peer_find(srv, &p->pk);
    if (old) {
        detach(old);
        ms_peer_goaway(old, SW_GOAWAY_REPLACED);
        sw_log_info("session %s from %s replaces the one from %s", hex, sw_msg_session_remote_addr(s),
                    sw_msg_session_remote_addr(old->s));
    } else if (atomic_load(&srv->m.sessions) >= srv->cfg.max_sessions) {
        sw_log_info("session %s from %s turned away: %ld sessions (server_full)", hex,
                    sw_msg_session_remote_addr(s), srv->cfg.max_sessions);
        ms_peer_goaway(p, SW_GOAWAY_SERVER_FULL);
        return;
    } else {
        sw_log_info("session %s from %s up", hex, sw_msg_session_remote_addr(s));
    }
    ms_table_insert(&srv->peers, &p->node);
    p->state = MS_PEER_ACTIVE;
    if (p->cert && (srv->members_expiry == 0 || p->cert->not_after < srv->members_expiry))
        srv->members_expiry = p->cert->not_after; /* the loop's sweep closes it then */
    atomic_fetch_add(&srv->m.sessions, 1);
}

static int on_frame(struct sw_msg_session *s, const struct sw_msg_frame *f, void *ctx)
{
    struct ms_peer *p = ctx;
    struct sw_error err = { 0 };
    char hex[SW_PK_HEX_LEN + 1];
    int rc;

    if (p->state != MS_PEER_ACTIVE)
        return SW_OK; /* replaced or turned away: its words no longer matter */
    rc = ms_relay_frame(p, f, &err);
    if (rc == SW_OK)
        return SW_OK;
    atomic_fetch_add(&p->srv->m.protocol_errors, 1);
    sw_pk_to_hex(&p->pk, hex);
    sw_log_info("session %s: protocol error: %s", hex, err.msg);
    detach(p); /* reset its streams now, not after the GOAWAY has drained */
    return rc;
}

static void count_close(struct ms_server *srv, struct ms_peer *p, enum sw_msg_close_reason reason)
{
    if ((unsigned)reason < MS_CLOSE_REASONS)
        atomic_fetch_add(&srv->m.closed[reason], 1);
    if (p->src) { /* still holding its slot: not evicted */
        ms_slots_release(srv, p);
        atomic_fetch_add(reason == SW_MSG_CLOSED_REFUSED ? &srv->m.handshakes_refused
                                                         : &srv->m.handshakes_failed, 1);
    }
    /* the session sends these GOAWAYs itself */
    if (reason == SW_MSG_CLOSED_PROTOCOL)
        atomic_fetch_add(&srv->m.goaways[SW_GOAWAY_PROTOCOL_ERROR], 1);
    else if (reason == SW_MSG_CLOSED_IDLE)
        atomic_fetch_add(&srv->m.goaways[SW_GOAWAY_IDLE_TIMEOUT], 1);
}

static void on_closed(struct sw_msg_session *s, enum sw_msg_close_reason reason, int goaway,
                      const char *why, void *ctx)
{
    struct ms_peer *p = ctx;
    struct ms_server *srv = p->srv;
    char hex[SW_PK_HEX_LEN + 1];
    bool evicted = p->state == MS_PEER_HANDSHAKE && !p->src; /* counted as evicted then */

    count_close(srv, p, reason);
    if (reason == SW_MSG_CLOSED_REFUSED) {
        /* a proven key without a fitting certificate: the operator wants to see it */
        const struct sw_pk *who = sw_msg_session_peer(s);
        if (who)
            sw_pk_to_hex(who, hex);
        else
            snprintf(hex, sizeof(hex), "?");
        sw_log_warn("session %s from %s refused: %s", hex, sw_msg_session_remote_addr(s), why);
    } else if (evicted) {
        /* logged when evicted */
    } else if (p->state == MS_PEER_HANDSHAKE) {
        /* debug only: scanners and garbage must not flood the log (see the metrics) */
        sw_log_debug("handshake from %s failed: %s", sw_msg_session_remote_addr(s), why);
    } else if (!p->evicted) {
        sw_pk_to_hex(&p->pk, hex);
        sw_log_info("session %s closed (%s): %s", hex, reason_name(reason), why);
    }
    detach(p);
    LIST_REMOVE(p, link);
    free(p);
    if (--srv->n_conns == 0 && srv->stopping)
        event_base_loopbreak(srv->base);
}

void ms_peers_shutdown(struct ms_server *srv)
{
    struct ms_peer *p, *next;
    /* goaway/close never free synchronously; waiting connections are freed here */
    for (p = LIST_FIRST(&srv->conns); p; p = next) {
        next = LIST_NEXT(p, link);
        if (p->state == MS_PEER_WAITING) {
            drop_waiting(p);
        } else if (p->state == MS_PEER_ACTIVE) {
            detach(p);
            ms_peer_goaway(p, SW_GOAWAY_SHUTDOWN);
        } else if (p->state == MS_PEER_HANDSHAKE) {
            sw_msg_session_close(p->s);
        }
    }
}

void ms_peers_force_close(struct ms_server *srv)
{
    struct ms_peer *p;
    LIST_FOREACH(p, &srv->conns, link)
        if (p->s) /* none is WAITING after ms_peers_shutdown */
            sw_msg_session_close(p->s);
}

void ms_peers_recheck(struct ms_server *srv)
{
    struct ms_peer *p;
    struct sw_error err = { 0 };
    char hex[SW_PK_HEX_LEN + 1];
    uint64_t earliest = 0;

    LIST_FOREACH(p, &srv->conns, link) {
        if (p->state != MS_PEER_ACTIVE || !p->cert)
            continue;
        if (sw_network_recheck(srv->net, p->cert, &err) == SW_OK) {
            if (earliest == 0 || p->cert->not_after < earliest)
                earliest = p->cert->not_after;
            continue;
        }
        sw_pk_to_hex(&p->pk, hex);
        sw_log_warn("session %s from %s closed: %s", hex, sw_msg_session_remote_addr(p->s), err.msg);
        atomic_fetch_add(&srv->m.members_evicted, 1);
        p->evicted = true;
        detach(p);
        ms_peer_goaway(p, SW_GOAWAY_NOT_A_MEMBER); /* freed later, from the loop */
    }
    srv->members_expiry = earliest;
}
