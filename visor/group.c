/* group.c — route group ends on the visor (docs/routing.md §4-7): their life, loop thread only.
 *
 * A group end ties a local app connection (one end of a socketpair, the other end is the
 * app's fd) to a route pair: it sends DATA on (send_tp, send_rid) and receives on its consume
 * rule recv_rid. Both ends first run Noise_KK (prologue "skywire-route/2") over DATA packets,
 * each saying in its handshake payload whether the group is a stream or a datagram route and
 * how many bytes it buffers; after that every DATA body is one record (route_record.h) with
 * an explicit packet number, so the hops only ever forward ciphertext and a lost record costs
 * only itself. Streams (group_stream.c) resend what is lost and never overrun the receiver;
 * datagrams (group_dgram.c) do neither. A broken route is re-established underneath
 * (group_failover.c).
 *
 * Closing: CLOSE travels the outgoing route and each hop deletes the rule it used (router.c),
 * so both routes' rules disappear everywhere. A stream end sends CLOSE once both directions
 * are finished (its FIN acknowledged, the peer's FIN delivered); either end sends it at once
 * when its app resets the connection or a deadline passes; the receiving end writes what it
 * has to the app, then closes it. Idle groups send KEEPALIVE every VISOR_GROUP_KEEPALIVE_S. */
#include "visor/group.h"
#include "visor/transport.h"
#include "common/bytes.h"
#include "common/json.h"
#include "common/log.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* route ID || u16 length || record (pn || sealed inner) */
#define PKT_REC_OFF 6
#define PKT_INNER_OFF (PKT_REC_OFF + VISOR_REC_PN_LEN)
static uint8_t pktbuf[PKT_REC_OFF + SW_NOISE_MAX_MSG];
static uint8_t plain[SW_NOISE_MAX_MSG];

uint8_t *visor_group_inner(void)
{
    return pktbuf + PKT_INNER_OFF;
}

struct visor_group *visor_group_by_rid(struct visor_router *ro, uint32_t recv_rid)
{
    struct visor_group *g;
    LIST_FOREACH(g, &ro->groups, next)
        if (g->recv_rid == recv_rid && g->state != G_CLOSING)
            return g;
    return NULL;
}

struct visor_group *visor_group_find_serial(struct visor_router *ro, uint64_t serial)
{
    struct visor_group *g;
    LIST_FOREACH(g, &ro->groups, next)
        if (g->serial == serial)
            return g;
    return NULL;
}

/* The group of the address pair (local port, remote pk, remote port) on this side. */
struct visor_group *visor_group_find_tuple(struct visor_router *ro, uint16_t local_port,
                                      const struct sw_pk *remote, uint16_t remote_port, bool initiator)
{
    struct visor_group *g;
    LIST_FOREACH(g, &ro->groups, next)
        if (g->local_port == local_port && g->remote_port == remote_port && g->initiator == initiator &&
            g->state != G_CLOSING && sw_pk_equal(&g->remote, remote))
            return g;
    return NULL;
}

struct visor_app_listener *visor_group_find_listener(struct visor_router *ro, uint16_t port)
{
    struct visor_app_listener *l;
    LIST_FOREACH(l, &ro->listeners, next)
        if (l->port == port)
            return l;
    return NULL;
}

/* ---- sending ------------------------------------------------------------------------------ */

enum visor_send visor_group_send(struct visor_group *g, uint8_t type, const uint8_t *body, size_t len, int flags)
{
    uint8_t pkt[4 + 16]; /* CLOSE and KEEPALIVE: a code byte at most */
    enum visor_send rc;

    if (len > sizeof(pkt) - 4)
        return VISOR_SEND_DOWN;
    sw_put_u32(pkt, g->send_rid);
    if (len)
        memcpy(pkt + 4, body, len);
    rc = visor_tp_send(g->v, &g->send_tp, type, pkt, 4 + len, flags);
    if (rc == VISOR_SEND_OK)
        g->last_tx_ms = sw_mono_ms();
    return rc;
}

/* DATA carrying the message already in pktbuf + PKT_REC_OFF. */
static enum visor_send send_data(struct visor_group *g, size_t msg_len, int flags)
{
    enum visor_send rc;

    sw_put_u32(pktbuf, g->send_rid);
    sw_put_u16(pktbuf + 4, (uint16_t)msg_len);
    rc = visor_tp_send(g->v, &g->send_tp, VISOR_RPKT_DATA, pktbuf, PKT_REC_OFF + msg_len, flags);
    if (rc == VISOR_SEND_OK)
        g->last_tx_ms = sw_mono_ms();
    return rc;
}

enum visor_send visor_group_send_record(struct visor_group *g, size_t len, int flags)
{
    /* every seal takes a fresh packet number, sent or not: a nonce is never used twice */
    size_t n = visor_rec_seal(&g->tx, g->next_pn++, pktbuf + PKT_INNER_OFF, len, pktbuf + PKT_REC_OFF);
    return n ? send_data(g, n, flags) : VISOR_SEND_DOWN;
}

/* ---- the handshake messages ------------------------------------------------------------- */

/* Writes our handshake message (with our hello), keeps a copy and sends it. */
static int send_hello(struct visor_group *g)
{
    uint8_t hello[VISOR_HELLO_LEN];
    size_t out_len;

    visor_hello_put(hello, g->mode, g->mode == VISOR_ROUTE_STREAM ? VISOR_GROUP_WINDOW : 0);
    if (sw_noise_hs_write_message(&g->hs, hello, sizeof(hello), pktbuf + PKT_REC_OFF,
                                  sizeof(pktbuf) - PKT_REC_OFF, &out_len))
        return SW_ECRYPTO;
    free(g->hs_msg);
    if ((g->hs_msg = malloc(out_len))) {
        memcpy(g->hs_msg, pktbuf + PKT_REC_OFF, out_len);
        g->hs_len = out_len;
    }
    g->hs_sent_ms = sw_mono_ms();
    return send_data(g, out_len, VISOR_SEND_CONTROL) == VISOR_SEND_OK ? SW_OK : SW_EIO;
}

/* A hop may have lost our handshake message: the same bytes again (the peer's Noise state
 * takes a repeated message 1 as new only before it answered; a repeated message 2 is a record
 * that does not open, and is dropped). */
static void resend_hello(struct visor_group *g)
{
    if (!g->hs_msg)
        return;
    memcpy(pktbuf + PKT_REC_OFF, g->hs_msg, g->hs_len);
    send_data(g, g->hs_len, VISOR_SEND_CONTROL);
    g->hs_sent_ms = sw_mono_ms();
}

static void forget_hello(struct visor_group *g)
{
    free(g->hs_msg);
    g->hs_msg = NULL;
    g->hs_len = 0;
}

/* ---- life and death ------------------------------------------------------------------------ */

void visor_group_arm_timer(struct visor_group *g)
{
    bool busy = g->state == G_OPEN && g->mode == VISOR_ROUTE_STREAM &&
                (visor_stream_in_flight(&g->st) || g->st.probe_due_ms);
    struct timeval tv = { 0, busy ? 50000 : 0 };

    if (g->state == G_CLOSING || g->state == G_HANDSHAKE)
        tv.tv_usec = 250000;
    else if (!busy)
        tv.tv_sec = 1;
    event_add(g->timer, &tv);
}

void visor_group_free(struct visor_group *g, const char *why)
{
    struct visor_router *ro = g->v->router;
    char pk[SW_PK_HEX_LEN + 1];

    sw_pk_to_hex(&g->remote, pk);
    sw_log_info("route group %u (%s %s %.16s…:%u, local port %u) closed: %s", g->recv_rid,
                visor_route_mode_name(g->mode), g->initiator ? "to" : "from", pk, g->remote_port,
                g->local_port, why);
    if (g->waiter) {
        ro->m_group_failures++;
        visor_cmd_reply_error(&g->v->q, g->waiter, 502, "route_failed", "%s", why);
    }
    LIST_REMOVE(g, next);
    ro->n_groups--;
    visor_tp_unwait(&g->tpw);
    if (g->mode == VISOR_ROUTE_STREAM)
        visor_gstream_free(g);
    else
        visor_gdgram_free(g);
    if (g->app_fd >= 0)
        close(g->app_fd);
    if (g->timer)
        event_free(g->timer);
    sw_noise_hs_wipe(&g->hs);
    sw_noise_cipher_wipe(&g->tx);
    sw_noise_cipher_wipe(&g->rx);
    forget_hello(g);
    free(g->paths);
    free(g);
}

void visor_group_end(struct visor_group *g, bool send_close, uint8_t code, const char *why)
{
    if (send_close)
        visor_group_send(g, VISOR_RPKT_CLOSE, &code, 1, VISOR_SEND_CONTROL);
    visor_group_free(g, why);
}

void visor_group_close_flush(struct visor_group *g, const char *why)
{
    visor_group_send(g, VISOR_RPKT_CLOSE, (const uint8_t[]){ VISOR_RPKT_CLOSE_NORMAL }, 1, VISOR_SEND_CONTROL);
    if (g->state == G_HANDSHAKE || g->mode != VISOR_ROUTE_STREAM || visor_gstream_app_pending(g) == 0) {
        visor_group_free(g, why);
        return;
    }
    g->state = G_CLOSING;
    g->close_why = why;
    bufferevent_disable(g->bev, EV_READ);
    g->deadline_ms = sw_deadline_ms(VISOR_GROUP_FLUSH_MS);
    visor_tp_unwait(&g->tpw);
    event_del(g->timer);
    visor_group_arm_timer(g);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct visor_group *g = arg;
    int64_t now = sw_mono_ms();

    switch (g->state) {
    case G_CLOSING:
        if (now >= g->deadline_ms) {
            visor_group_free(g, "closing: the app did not read what was left within the flush deadline");
            return;
        }
        break;
    case G_HANDSHAKE:
        if (now >= g->deadline_ms) {
            visor_group_end(g, true, VISOR_RPKT_CLOSE_ERROR, "the end-to-end handshake timed out");
            return;
        }
        if (g->initiator && now - g->hs_sent_ms >= VISOR_GROUP_HS_RESEND_MS)
            resend_hello(g);
        break;
    case G_REROUTE:
    case G_WAIT:
        visor_group_failover_tick(g, now); /* may end the group */
        return;
    case G_OPEN:
        if (!visor_tp_is_up(g->v, &g->send_tp)) {
            visor_group_route_broken(g, "the first hop's transport is down", true);
            return;
        }
        if (now - g->last_rx_ms >= VISOR_GROUP_DEAD_S * 1000) {
            visor_group_route_broken(g, "nothing received from the other end", false);
            return;
        }
        if (g->mode == VISOR_ROUTE_STREAM) {
            visor_gstream_tick(g, now); /* may break the route or end the group */
            return;
        }
        if (now - g->last_tx_ms >= VISOR_GROUP_KEEPALIVE_S * 1000)
            visor_group_send(g, VISOR_RPKT_KEEPALIVE, NULL, 0, VISOR_SEND_CONTROL);
        break;
    }
    visor_group_arm_timer(g);
}

static void writable_cb(struct visor_tp_waiter *w)
{
    struct visor_group *g = (struct visor_group *)((char *)w - offsetof(struct visor_group, tpw));
    if (g->mode == VISOR_ROUTE_STREAM)
        visor_gstream_pump(g);
    else
        visor_gdgram_flush(g);
}

static struct visor_group *group_new(struct visor *v, uint32_t recv_rid, enum visor_route_mode mode,
                                     struct sw_error *err)
{
    struct visor_router *ro = v->router;
    struct visor_group *g;
    int sv[2] = { -1, -1 };
    int type = mode == VISOR_ROUTE_STREAM ? SOCK_STREAM : SOCK_SEQPACKET;

    if (visor_group_by_rid(ro, recv_rid)) {
        sw_error_set(err, SW_EEXIST, "route %u belongs to a group already", recv_rid);
        return NULL;
    }
    if (!(g = calloc(1, sizeof(*g)))) {
        sw_error_set(err, SW_ENOMEM, "out of memory");
        return NULL;
    }
    g->v = v;
    g->recv_rid = recv_rid;
    g->mode = mode;
    g->app_fd = g->dfd = -1;
    g->tpw.writable = writable_cb;
    if (socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv)) {
        free(g);
        sw_error_set(err, SW_EIO, "socketpair: %s", strerror(errno));
        return NULL;
    }
    g->app_fd = sv[1];
    evutil_make_socket_nonblocking(sv[0]);
    if ((mode == VISOR_ROUTE_STREAM ? visor_gstream_init(g, sv[0], err) : visor_gdgram_init(g, sv[0], err)) ||
        !(g->timer = evtimer_new(v->base, timer_cb, g))) {
        if (!err->msg[0])
            sw_error_set(err, SW_ENOMEM, "out of memory");
        g->mode == VISOR_ROUTE_STREAM ? visor_gstream_free(g) : visor_gdgram_free(g);
        close(sv[1]);
        free(g);
        return NULL;
    }
    g->deadline_ms = sw_deadline_ms(VISOR_GROUP_HS_TIMEOUT_MS);
    g->last_tx_ms = g->last_rx_ms = sw_mono_ms();
    g->serial = ++ro->group_serial;
    LIST_INSERT_HEAD(&ro->groups, g, next);
    ro->n_groups++;
    visor_group_arm_timer(g);
    return g;
}

/* Hands the app its end: the dialer's reply, or a new connection on the listener. */
static int hand_over(struct visor_group *g)
{
    struct visor_app_listener *l = visor_group_find_listener(g->v->router, g->local_port);
    uint8_t msg[SW_PK_LEN + 2];
    char cbuf[CMSG_SPACE(sizeof(int))];
    struct iovec iov = { msg, sizeof(msg) };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
    struct cmsghdr *cm;

    if (g->initiator) {
        g->waiter->fd = g->app_fd;
        g->app_fd = -1;
        visor_cmd_reply(&g->v->q, g->waiter, 200, json_object_new_object());
        g->waiter = NULL;
        return SW_OK;
    }
    memset(cbuf, 0, sizeof(cbuf));
    memcpy(msg, g->remote.b, SW_PK_LEN);
    sw_put_u16(msg + SW_PK_LEN, g->remote_port);
    cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &g->app_fd, sizeof(int));
    if (!l || sendmsg(l->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t)sizeof(msg))
        return SW_EIO;
    close(g->app_fd);
    g->app_fd = -1;
    return SW_OK;
}

/* Handshake done: derive the ciphers, start moving app bytes, hand the fd over. */
static void established(struct visor_group *g, uint32_t peer_window)
{
    if (sw_noise_hs_split(&g->hs, &g->tx, &g->rx)) {
        visor_group_end(g, true, VISOR_RPKT_CLOSE_ERROR, "noise split failed");
        return;
    }
    g->state = G_OPEN;
    g->v->router->m_groups_opened++;
    if (g->initiator)
        forget_hello(g); /* message 2 arrived: ours did */
    if (hand_over(g)) {
        visor_group_end(g, true, VISOR_RPKT_CLOSE_ERROR, "the app stopped listening");
        return;
    }
    sw_log_info("route group %u: end-to-end session established (%s, %s)", g->recv_rid,
                visor_route_mode_name(g->mode), g->initiator ? "initiator" : "responder");
    if (g->mode == VISOR_ROUTE_STREAM)
        visor_gstream_open(g, peer_window);
    else
        visor_gdgram_open(g);
}

static void handshake_packet(struct visor_group *g, const struct visor_rpkt *p)
{
    struct sw_error err = { 0 };
    uint8_t hello[64];
    size_t len;
    enum visor_route_mode mode;
    uint32_t window;
    char why[sizeof(err.msg) + 64];

    if (sw_noise_hs_read_message(&g->hs, p->data, p->data_len, hello, sizeof(hello), &len)) {
        visor_group_end(g, true, VISOR_RPKT_CLOSE_ERROR, "the end-to-end handshake failed (wrong key?)");
        return;
    }
    if (visor_hello_parse(hello, len, &mode, &window, &err) == SW_OK && mode != g->mode)
        sw_error_set(&err, SW_EPROTO, "the %s asked for a %s route, this end is a %s one",
                     g->initiator ? "listener" : "dialer", visor_route_mode_name(mode), visor_route_mode_name(g->mode));
    if (err.msg[0]) {
        snprintf(why, sizeof(why), "the end-to-end handshake failed: %s", err.msg);
        if (!g->initiator) /* answer first, so the dialer learns why */
            send_hello(g);
        visor_group_end(g, true, VISOR_RPKT_CLOSE_ERROR, why);
        return;
    }
    if (!g->initiator && send_hello(g)) {
        visor_group_end(g, false, 0, "cannot answer the handshake");
        return;
    }
    if (sw_noise_hs_finished(&g->hs))
        established(g, window);
}

/* A record on an established group: opened, then to the stream or the datagram side. */
static void record_packet(struct visor_group *g, const struct visor_rpkt *p)
{
    struct sw_error err = { 0 };
    size_t len;

    if (visor_rec_open(&g->rx, &g->replay, p->data, p->data_len, plain, &len, &err)) {
        g->v->router->m_bad_records++; /* forged, replayed or damaged on the way: ignored */
        sw_log_debug("route group %u: record dropped: %s", g->recv_rid, err.msg);
        if (!g->initiator && !g->heard_record && sw_ms_since(g->hs_sent_ms) >= VISOR_GROUP_HS_ANSWER_GAP_MS)
            resend_hello(g); /* message 1 again: our message 2 was lost (at most every 100 ms) */
        return;
    }
    if (!g->heard_record) {
        g->heard_record = true;
        forget_hello(g);
    }
    if (g->mode == VISOR_ROUTE_STREAM)
        visor_gstream_record(g, plain, len);
    else
        visor_gdgram_record(g, plain, len);
}

void visor_group_packet(struct visor *v, struct visor_rule *r, const struct visor_rpkt *p)
{
    struct visor_group *g = visor_group_by_rid(v->router, r->rid);
    bool new_route = false;

    if (!g && r->type == VISOR_RULE_CONSUME) {
        /* the responder moved to the new route before our setup answer came: same group */
        g = visor_group_find_tuple(v->router, r->local_port, &r->remote_pk, r->remote_port, true);
        if (!g || g->state != G_REROUTE)
            return;
        new_route = true;
    }
    if (!g)
        return;
    g->last_rx_ms = sw_mono_ms();
    if (p->type == VISOR_RPKT_CLOSE && (g->state == G_REROUTE || g->moving) && !new_route) {
        sw_log_debug("route group %u: CLOSE on the old route ignored while re-establishing", g->recv_rid);
        return;
    }
    if (p->type == VISOR_RPKT_CLOSE) {
        visor_group_close_flush(g, p->code ? "the peer closed with an error" : "the peer closed");
        return;
    }
    if (g->state == G_WAIT && !g->tp_down && visor_tp_is_up(v, &g->send_tp)) {
        visor_group_resume(g); /* the silence is over and we can send: carry on */
        if (!(g = visor_group_by_rid(v->router, r->rid)))
            return; /* ended while resuming */
    }
    if (p->type != VISOR_RPKT_DATA)
        return; /* KEEPALIVE: the rule's expiry was pushed already */
    if (g->state == G_HANDSHAKE)
        handshake_packet(g, p);
    else
        record_packet(g, p);
}

struct visor_group *visor_group_start(struct visor *v, const struct visor_group_params *gp, bool initiator,
                                      const char **code, struct sw_error *err)
{
    struct visor_rule *r = visor_rules_get(&v->router->rt, gp->recv_rid);
    struct visor_group *g;

    *code = "invalid_request";
    if (!r || r->type != VISOR_RULE_CONSUME) {
        sw_error_set(err, SW_ENOTFOUND, "route %u is not a consume rule here", gp->recv_rid);
        return NULL;
    }
    if (!visor_tm_find_id(v, &gp->send_tp)) {
        *code = "unknown_transport";
        sw_error_set(err, SW_ENOTFOUND, "send_tp is not a transport here");
        return NULL;
    }
    if (!(g = group_new(v, gp->recv_rid, gp->mode, err)))
        return NULL;
    g->local_port = gp->local_port;
    g->remote_port = gp->remote_port;
    g->remote = gp->remote;
    g->send_tp = gp->send_tp;
    g->send_rid = gp->send_rid;
    g->initiator = initiator;
    g->state = G_HANDSHAKE;
    if (sw_noise_hs_init_ed25519(&g->hs, SW_NOISE_KK, initiator ? SW_NOISE_INITIATOR : SW_NOISE_RESPONDER,
                                 SW_NOISE_PROLOGUE_ROUTE, &v->cfg.kp, &gp->remote)) {
        visor_group_free(g, "the remote key is not usable");
        sw_error_set(err, SW_EINVAL, "the remote key is not usable for Noise");
        return NULL;
    }
    if (initiator && send_hello(g)) {
        visor_group_free(g, "cannot send the first handshake message");
        *code = "route_failed";
        sw_error_set(err, SW_EIO, "the first hop's transport is not up");
        return NULL;
    }
    return g;
}

void visor_group_rule_gone(struct visor *v, uint32_t rid, const char *why)
{
    struct visor_group *g = visor_group_by_rid(v->router, rid);
    if (g)
        visor_group_end(g, true, VISOR_RPKT_CLOSE_ERROR, why);
}

