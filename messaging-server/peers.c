/* peers.c — client sessions from accept to close, and the pk -> session map.
 *
 * A peer is HANDSHAKE until its session is ready, then ACTIVE (in srv->peers, counted in
 * ms_sessions) or, when over --max-sessions or the server is stopping, LEAVING at once
 * after a GOAWAY. A peer leaves the map (and its streams are reset) the moment it is
 * replaced, breaks the protocol or closes; the struct lives until on_closed. */
#include "messaging-server/ms.h"
#include "common/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

void ms_peer_accept(struct ms_server *srv, evutil_socket_t fd)
{
    struct sw_msg_session_opts opts = {
        .handshake_timeout_ms = (int)srv->cfg.handshake_timeout_ms,
        .idle_timeout_ms = (int)srv->cfg.idle_timeout_ms,
        .ping_interval_ms = (int)srv->cfg.ping_interval_ms,
        .max_output = (size_t)srv->cfg.max_session_buffer,
        .network = srv->net,
    };
    struct sw_error err = { 0 };
    struct ms_peer *p;

    if (srv->stopping || atomic_load(&srv->m.handshaking) >= srv->cfg.max_handshakes) {
        /* unauthenticated connections are capped so they cannot exhaust fds or memory */
        atomic_fetch_add(&srv->m.handshakes_rejected, 1);
        evutil_closesocket(fd);
        return;
    }
    if (!(p = calloc(1, sizeof(*p)))) {
        evutil_closesocket(fd);
        return;
    }
    p->srv = srv;
    p->serial = ++srv->next_serial;
    p->next_even = 2;
    p->state = MS_PEER_HANDSHAKE;
    LIST_INIT(&p->ends);
    if (sw_msg_session_accept(srv->base, fd, &srv->kp, &opts, &peer_callbacks, p, &p->s, &err)) {
        sw_log_warn("cannot start a session: %s", err.msg);
        free(p);
        return;
    }
    LIST_INSERT_HEAD(&srv->conns, p, link);
    srv->n_conns++;
    atomic_fetch_add(&srv->m.handshaking, 1);
}

static void on_ready(struct sw_msg_session *s, void *ctx)
{
    struct ms_peer *p = ctx, *old;
    struct ms_server *srv = p->srv;
    char hex[SW_PK_HEX_LEN + 1];

    p->pk = *sw_msg_session_peer(s);
    p->cert = sw_msg_session_peer_cert(s);
    sw_pk_to_hex(&p->pk, hex);
    atomic_fetch_sub(&srv->m.handshaking, 1);
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

static void count_close(struct ms_server *srv, const struct ms_peer *p, enum sw_msg_close_reason reason)
{
    if ((unsigned)reason < MS_CLOSE_REASONS)
        atomic_fetch_add(&srv->m.closed[reason], 1);
    if (p->state == MS_PEER_HANDSHAKE) {
        atomic_fetch_sub(&srv->m.handshaking, 1);
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

    count_close(srv, p, reason);
    if (reason == SW_MSG_CLOSED_REFUSED) {
        /* a proven key without a fitting certificate: the operator wants to see it */
        const struct sw_pk *who = sw_msg_session_peer(s);
        if (who)
            sw_pk_to_hex(who, hex);
        else
            snprintf(hex, sizeof(hex), "?");
        sw_log_warn("session %s from %s refused: %s", hex, sw_msg_session_remote_addr(s), why);
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
    struct ms_peer *p;
    /* goaway/close never free synchronously, so plain iteration is safe */
    LIST_FOREACH(p, &srv->conns, link) {
        if (p->state == MS_PEER_ACTIVE) {
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
