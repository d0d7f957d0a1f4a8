/* group.c — route group ends on the visor (docs/routing.md §4-5), loop thread only.
 *
 * A group end ties a local app connection (one end of a socketpair, the other end is the
 * app's fd) to a route pair: it sends DATA on (send_tp, send_rid) and receives on its consume
 * rule recv_rid. Both ends first run Noise_KK (prologue "skywire-route/1") over DATA packets:
 * the initiator's first DATA carries message 1, the responder's first DATA message 2. Then
 * each DATA body is one Noise transport message of up to VISOR_GROUP_RECORD_MAX app bytes, so the
 * hops in between only ever forward ciphertext.
 *
 * Closing: when the app closes (EOF), the end sends what the app wrote, then CLOSE on its
 * outgoing route; the CLOSE reaches the other end, which sends CLOSE back on its own outgoing
 * route and closes its app fd once the bytes that came before the CLOSE are written to it
 * (G_CLOSING; the closing end likewise). Each hop deletes the rule a CLOSE used (router.c), so both routes'
 * rules disappear everywhere. Idle groups send KEEPALIVE every VISOR_GROUP_KEEPALIVE_S.
 *
 * Failover (docs/routing.md §7): an open end whose first hop's transport is down, or that
 * heard nothing for VISOR_GROUP_DEAD_S, stops reading from its app; the initiator has a thread
 * (visor_appsrv_reroute) set up a new route with "rebind": true, the responder waits for that
 * rebind (group_ready with the same address pair). Both swap their route IDs and keep the
 * Noise session; after VISOR_GROUP_REROUTE_S without success the group is closed with an error. */
#include "visor/router.h"
#include "visor/transport.h"
#include "common/bytes.h"
#include "common/json.h"
#include "common/log.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* G_REROUTE: initiator, the route broke, a new one is being set up (app reading paused);
 * G_WAIT: responder, the route broke, waiting for the initiator's rebind;
 * G_CLOSING: CLOSE sent (the peer closed, or the app hit EOF and all it wrote is sent); the
 * bytes that arrived from the peer are still being written to the app, then the end goes
 * away (at most VISOR_GROUP_FLUSH_MS). */
enum group_state { G_HANDSHAKE, G_OPEN, G_REROUTE, G_WAIT, G_CLOSING };

struct visor_group {
    struct visor *v;
    uint32_t recv_rid, send_rid;
    struct sw_uuid send_tp;
    uint16_t local_port, remote_port;
    struct sw_pk remote;
    bool initiator;
    enum group_state state;
    struct sw_noise_hs hs;
    struct sw_noise_cipher tx, rx;
    int app_fd;                /* the app's end until handed over */
    struct bufferevent *bev;   /* our end of the socketpair */
    struct visor_cmd *waiter;  /* dial waiting for the handshake */
    struct event *timer;       /* handshake deadline, keepalive, read resume */
    int64_t deadline_ms, last_tx_s, last_rx_s; /* monotonic: ms, s, s */
    bool paused;
    bool app_eof;              /* the app closed its side: end once its input is sent */
    const char *close_why;     /* G_CLOSING: why the peer closed */
    /* failover (docs/routing.md §7) */
    uint64_t serial;           /* identifies the group to its re-establishment thread */
    int64_t broken_ms, reroute_deadline_ms, retry_at_ms; /* monotonic */
    bool job;                  /* a re-establishment thread is running for it */
    bool tp_down;              /* the first hop's transport went down (avoid it) */
    struct sw_uuid failed_tp;
    char *paths;               /* initiator: {"forward","reverse"} of the current route */
    LIST_ENTRY(visor_group) next;
};

struct visor_app_listener {
    struct visor *v;
    uint16_t port;
    int fd;                    /* our end of the SOCK_SEQPACKET pair */
    struct event *ev;          /* EOF: the app closed its listener */
    LIST_ENTRY(visor_app_listener) next;
};

static uint8_t pktbuf[4 + 2 + SW_NOISE_MAX_MSG];

static struct visor_group *find_group(struct visor_router *ro, uint32_t recv_rid)
{
    struct visor_group *g;
    LIST_FOREACH(g, &ro->groups, next)
        if (g->recv_rid == recv_rid && g->state != G_CLOSING)
            return g;
    return NULL;
}

static struct visor_group *find_serial(struct visor_router *ro, uint64_t serial)
{
    struct visor_group *g;
    LIST_FOREACH(g, &ro->groups, next)
        if (g->serial == serial)
            return g;
    return NULL;
}

/* The group of the address pair (local port, remote pk, remote port) on this side. */
static struct visor_group *find_tuple(struct visor_router *ro, uint16_t local_port,
                                      const struct sw_pk *remote, uint16_t remote_port, bool initiator)
{
    struct visor_group *g;
    LIST_FOREACH(g, &ro->groups, next)
        if (g->local_port == local_port && g->remote_port == remote_port && g->initiator == initiator &&
            g->state != G_CLOSING && sw_pk_equal(&g->remote, remote))
            return g;
    return NULL;
}

static struct visor_app_listener *find_listener(struct visor_router *ro, uint16_t port)
{
    struct visor_app_listener *l;
    LIST_FOREACH(l, &ro->listeners, next)
        if (l->port == port)
            return l;
    return NULL;
}

/* The link of the group's outgoing transport if it can take a packet now. */
static struct visor_link *out_link(struct visor_group *g, bool *full)
{
    struct visor_transport *t = visor_tm_find_id(g->v, &g->send_tp);
    struct visor_link *l = t && t->state == VISOR_TP_UP ? t->link : NULL;
    *full = false;
    if (!l || l->state != VISOR_LINK_OPEN)
        return NULL;
    if (visor_link_output_len(l) > VISOR_ROUTER_OUTPUT_CAP) {
        *full = true;
        return NULL;
    }
    return l;
}

/* Sends one routing packet on the outgoing route; body = what follows the route ID. */
static int send_routed(struct visor_group *g, uint8_t type, const uint8_t *body, size_t len)
{
    bool full;
    struct visor_link *l = out_link(g, &full);

    if (!l)
        return full ? SW_ERANGE : SW_EIO;
    sw_put_u32(pktbuf, g->send_rid);
    if (len)
        memmove(pktbuf + 4, body, len);
    g->last_tx_s = sw_mono_ms() / 1000;
    return visor_link_send(l, type, pktbuf, 4 + len) ? SW_EIO : SW_OK;
}

/* DATA carrying msg (a Noise message): built in place in pktbuf + 6. */
static int send_data(struct visor_group *g, size_t msg_len)
{
    sw_put_u16(pktbuf + 4, (uint16_t)msg_len);
    bool full;
    struct visor_link *l = out_link(g, &full);
    if (!l)
        return full ? SW_ERANGE : SW_EIO;
    sw_put_u32(pktbuf, g->send_rid);
    g->last_tx_s = sw_mono_ms() / 1000;
    return visor_link_send(l, VISOR_RPKT_DATA, pktbuf, 6 + msg_len) ? SW_EIO : SW_OK;
}

static void group_free(struct visor_group *g, const char *why)
{
    struct visor_router *ro = g->v->router;
    char pk[SW_PK_HEX_LEN + 1];

    sw_pk_to_hex(&g->remote, pk);
    sw_log_info("route group %u (%s %.16s…:%u, local port %u) closed: %s", g->recv_rid,
                g->initiator ? "to" : "from", pk, g->remote_port, g->local_port, why);
    if (g->waiter) {
        ro->m_group_failures++;
        visor_cmd_reply_error(&g->v->q, g->waiter, 502, "route_failed", "%s", why);
    }
    LIST_REMOVE(g, next);
    ro->n_groups--;
    if (g->bev)
        bufferevent_free(g->bev);
    if (g->app_fd >= 0)
        close(g->app_fd);
    if (g->timer)
        event_free(g->timer);
    sw_noise_hs_wipe(&g->hs);
    sw_noise_cipher_wipe(&g->tx);
    sw_noise_cipher_wipe(&g->rx);
    free(g->paths);
    free(g);
}

/* Ends the group: CLOSE on the outgoing route (when send_close), app fd closed. */
static void group_end(struct visor_group *g, bool send_close, uint8_t code, const char *why)
{
    if (send_close) {
        uint8_t c = code;
        send_routed(g, VISOR_RPKT_CLOSE, &c, 1);
    }
    group_free(g, why);
}

static bool pump_app(struct visor_group *g);

static void flush_write_cb(struct bufferevent *bev, void *arg)
{
    struct visor_group *g = arg;
    if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        group_free(g, g->close_why);
}

static void flush_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct visor_group *g = arg;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        group_free(g, g->close_why);
}

/* Sends CLOSE (the peer closed: the answer; the app hit EOF: the end), then closes the app's
 * connection once the bytes that arrived from the peer are written to it (flush, then close;
 * VISOR_GROUP_FLUSH_MS at most). */
static void group_close_flush(struct visor_group *g, const char *why)
{
    struct timeval tv = { 0, 250000 };

    send_routed(g, VISOR_RPKT_CLOSE, (const uint8_t[]){ VISOR_RPKT_CLOSE_NORMAL }, 1);
    if (!g->bev || g->state == G_HANDSHAKE || evbuffer_get_length(bufferevent_get_output(g->bev)) == 0) {
        group_free(g, why);
        return;
    }
    g->state = G_CLOSING;
    g->close_why = why;
    g->paused = false;
    g->deadline_ms = sw_deadline_ms(VISOR_GROUP_FLUSH_MS);
    bufferevent_disable(g->bev, EV_READ);
    bufferevent_setcb(g->bev, NULL, flush_write_cb, flush_event_cb, g);
    bufferevent_setwatermark(g->bev, EV_WRITE, 0, 0);
    bufferevent_enable(g->bev, EV_WRITE);
    event_del(g->timer);
    event_add(g->timer, &tv);
}

/* Initiator: hands the re-establishment to a thread (appsrv.c); retried from the timer. */
static void start_reroute(struct visor_group *g)
{
    struct visor_group_reroute r = { .serial = g->serial, .dst = g->remote, .dst_port = g->remote_port,
                               .src_port = g->local_port };

    if (g->tp_down)
        sw_uuid_format(&g->failed_tp, r.failed_tp);
    r.old_paths = g->paths ? strdup(g->paths) : NULL;
    if (visor_appsrv_reroute(g->v, &r) == SW_OK)
        g->job = true;
    else
        g->retry_at_ms = sw_deadline_ms(VISOR_GROUP_RETRY_MS);
}

/* The route of an open group broke: the initiator re-establishes it, the responder waits for
 * the initiator's rebind; app bytes stay queued (not read) meanwhile. */
static void route_broken(struct visor_group *g, const char *why, bool tp_down)
{
    if (g->state != G_OPEN)
        return;
    sw_log_warn("route group %u: the route broke (%s): %s", g->recv_rid, why,
                g->initiator ? "re-establishing it" : "waiting for the initiator to re-establish it");
    g->state = g->initiator ? G_REROUTE : G_WAIT;
    g->broken_ms = sw_mono_ms();
    g->reroute_deadline_ms = g->broken_ms + VISOR_GROUP_REROUTE_S * 1000;
    g->tp_down = tp_down;
    g->failed_tp = g->send_tp;
    if (g->paused) { /* back to the 1 s tick */
        struct timeval one = { 1, 0 };
        g->paused = false;
        event_del(g->timer);
        event_add(g->timer, &one);
    }
    bufferevent_disable(g->bev, EV_READ);
    if (g->initiator)
        start_reroute(g);
}

/* Back to G_OPEN after a rebind: sends CLOSE on the old route when it still has a first hop. */
static void rebound(struct visor_group *g, const struct sw_uuid *tp, uint32_t send_rid, uint32_t recv_rid)
{
    bool full;
    uint32_t old_recv = g->recv_rid;

    if (out_link(g, &full))
        send_routed(g, VISOR_RPKT_CLOSE, (const uint8_t[]){ VISOR_RPKT_CLOSE_NORMAL }, 1);
    g->send_tp = *tp;
    g->send_rid = send_rid;
    g->recv_rid = recv_rid;
    g->state = G_OPEN;
    g->last_rx_s = g->last_tx_s = sw_mono_ms() / 1000;
    g->v->router->m_group_reroutes++;
    sw_log_info("route group %u: re-established as group %u (%s) %lld ms after the failure", old_recv, recv_rid,
                g->initiator ? "initiator" : "responder", (long long)sw_ms_since(g->broken_ms));
    if (!g->app_eof)
        bufferevent_enable(g->bev, EV_READ);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct visor_group *g = arg;
    int64_t now_ms = sw_mono_ms(), now = now_ms / 1000;
    bool full;

    if (g->state == G_CLOSING) {
        if (now_ms >= g->deadline_ms)
            group_free(g, "closing: the app did not read what was left within the flush deadline");
        return;
    }
    if (g->state == G_HANDSHAKE && now_ms >= g->deadline_ms) {
        group_end(g, true, VISOR_RPKT_CLOSE_ERROR, "the end-to-end handshake timed out");
        return;
    }
    if (g->state == G_REROUTE || g->state == G_WAIT) {
        if (now_ms >= g->reroute_deadline_ms) {
            group_end(g, true, VISOR_RPKT_CLOSE_ERROR,
                      "the route broke and was not re-established in time");
            return;
        }
        if (g->state == G_REROUTE && !g->job && now_ms >= g->retry_at_ms)
            start_reroute(g);
        return;
    }
    if (g->state != G_OPEN)
        return;
    if (!out_link(g, &full) && !full) {
        route_broken(g, "the first hop's transport is down", true);
        return;
    }
    if (now - g->last_rx_s >= VISOR_GROUP_DEAD_S) {
        route_broken(g, "nothing received from the other end", false);
        return;
    }
    if (now - g->last_tx_s >= VISOR_GROUP_KEEPALIVE_S)
        send_routed(g, VISOR_RPKT_KEEPALIVE, NULL, 0);
    if (g->paused || g->app_eof)
        pump_app(g);
}

/* App bytes -> DATA records while the outgoing transport takes them. False when the group
 * ended (g is freed). */
static bool pump_app(struct visor_group *g)
{
    struct evbuffer *in;
    size_t n;
    int rc;

    if (g->state != G_OPEN || !g->bev)
        return true;
    in = bufferevent_get_input(g->bev);
    while ((n = evbuffer_get_length(in)) > 0) {
        bool full;
        if (!out_link(g, &full)) {
            if (!full) {
                route_broken(g, "the first hop's transport is down", true);
                return true;
            }
            g->paused = true;           /* retry from the timer; stop reading meanwhile */
            bufferevent_disable(g->bev, EV_READ);
            struct timeval tv = { 0, 20000 };
            event_add(g->timer, &tv);
            return true;
        }
        if (n > VISOR_GROUP_RECORD_MAX)
            n = VISOR_GROUP_RECORD_MAX;
        if (evbuffer_remove(in, pktbuf + 6, n) != (int)n ||
            sw_noise_encrypt(&g->tx, NULL, 0, pktbuf + 6, n, pktbuf + 6)) {
            group_end(g, true, VISOR_RPKT_CLOSE_ERROR, "encryption failed");
            return false;
        }
        if ((rc = send_data(g, n + SW_NOISE_TAG))) {
            group_end(g, false, 0, "the outgoing transport failed");
            return false;
        }
    }
    if (g->app_eof) { /* everything the app wrote before its EOF is sent */
        group_close_flush(g, "the app closed the connection");
        return false;
    }
    if (g->paused) {
        struct timeval tv = { 1, 0 };
        g->paused = false;
        bufferevent_enable(g->bev, EV_READ);
        event_del(g->timer);
        event_add(g->timer, &tv);
    }
    return true;
}

static void app_read_cb(struct bufferevent *bev, void *arg)
{
    pump_app(arg);
}

static void app_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct visor_group *g = arg;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        /* the app's remaining input is sent first (now, or when the transport drains or the
         * route is re-established); pump_app ends the group once it is all out */
        g->app_eof = true;
        bufferevent_disable(bev, EV_READ);
        pump_app(g);
    }
}

static struct visor_group *group_new(struct visor *v, uint32_t recv_rid, struct sw_error *err)
{
    struct visor_router *ro = v->router;
    struct visor_group *g;
    int sv[2] = { -1, -1 };
    struct timeval one = { 1, 0 };

    if (find_group(ro, recv_rid)) {
        sw_error_set(err, SW_EEXIST, "route %u belongs to a group already", recv_rid);
        return NULL;
    }
    if (!(g = calloc(1, sizeof(*g)))) {
        sw_error_set(err, SW_ENOMEM, "out of memory");
        return NULL;
    }
    g->v = v;
    g->recv_rid = recv_rid;
    g->app_fd = -1;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) {
        free(g);
        sw_error_set(err, SW_EIO, "socketpair: %s", strerror(errno));
        return NULL;
    }
    g->app_fd = sv[1];
    evutil_make_socket_nonblocking(sv[0]);
    if (!(g->bev = bufferevent_socket_new(v->base, sv[0], BEV_OPT_CLOSE_ON_FREE)) ||
        !(g->timer = event_new(v->base, -1, EV_PERSIST, timer_cb, g))) {
        if (!g->bev)
            close(sv[0]);
        else
            bufferevent_free(g->bev);
        close(sv[1]);
        free(g);
        sw_error_set(err, SW_ENOMEM, "out of memory");
        return NULL;
    }
    bufferevent_setcb(g->bev, app_read_cb, NULL, app_event_cb, g);
    g->deadline_ms = sw_deadline_ms(VISOR_GROUP_HS_TIMEOUT_MS);
    g->last_tx_s = g->last_rx_s = sw_mono_ms() / 1000;
    g->serial = ++ro->group_serial;
    event_add(g->timer, &one);
    LIST_INSERT_HEAD(&ro->groups, g, next);
    ro->n_groups++;
    return g;
}

/* Handshake done: derive the ciphers, start moving app bytes, hand the fd over. */
static void established(struct visor_group *g)
{
    struct visor_router *ro = g->v->router;

    if (sw_noise_hs_split(&g->hs, &g->tx, &g->rx)) {
        group_end(g, true, VISOR_RPKT_CLOSE_ERROR, "noise split failed");
        return;
    }
    g->state = G_OPEN;
    ro->m_groups_opened++;
    if (g->initiator) {
        g->waiter->fd = g->app_fd;
        g->app_fd = -1;
        visor_cmd_reply(&g->v->q, g->waiter, 200, json_object_new_object());
        g->waiter = NULL;
    } else {
        struct visor_app_listener *l = find_listener(ro, g->local_port);
        uint8_t msg[SW_PK_LEN + 2];
        char cbuf[CMSG_SPACE(sizeof(int))];
        struct iovec iov = { msg, sizeof(msg) };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                             .msg_controllen = sizeof(cbuf) };
        struct cmsghdr *cm;

        memset(cbuf, 0, sizeof(cbuf));
        memcpy(msg, g->remote.b, SW_PK_LEN);
        sw_put_u16(msg + SW_PK_LEN, g->remote_port);
        cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cm), &g->app_fd, sizeof(int));
        if (!l || sendmsg(l->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t)sizeof(msg)) {
            group_end(g, true, VISOR_RPKT_CLOSE_ERROR, "the app stopped listening");
            return;
        }
        close(g->app_fd);
        g->app_fd = -1;
    }
    bufferevent_enable(g->bev, EV_READ);
    sw_log_info("route group %u: end-to-end session established (%s)", g->recv_rid,
                g->initiator ? "initiator" : "responder");
}

static void handshake_packet(struct visor_group *g, const struct visor_rpkt *p)
{
    size_t plen, out_len;

    if (sw_noise_hs_read_message(&g->hs, p->data, p->data_len, NULL, 0, &plen)) {
        group_end(g, true, VISOR_RPKT_CLOSE_ERROR, "the end-to-end handshake failed (wrong key?)");
        return;
    }
    if (!g->initiator) {
        if (sw_noise_hs_write_message(&g->hs, NULL, 0, pktbuf + 6, sizeof(pktbuf) - 6, &out_len) ||
            send_data(g, out_len)) {
            group_end(g, false, 0, "cannot answer the handshake");
            return;
        }
    }
    if (sw_noise_hs_finished(&g->hs))
        established(g);
}

void visor_group_packet(struct visor *v, struct visor_rule *r, const struct visor_rpkt *p)
{
    struct visor_group *g = find_group(v->router, r->rid);
    static uint8_t plain[SW_NOISE_MAX_MSG];
    bool new_route = false;

    if (!g && r->type == VISOR_RULE_CONSUME) {
        /* the responder moved to the new route before our setup answer came: same group */
        g = find_tuple(v->router, r->local_port, &r->remote_pk, r->remote_port, true);
        if (!g || g->state != G_REROUTE)
            return;
        new_route = true;
    }
    if (!g)
        return;
    g->last_rx_s = sw_mono_ms() / 1000;
    if (p->type == VISOR_RPKT_CLOSE && g->state == G_REROUTE && !new_route) {
        sw_log_debug("route group %u: CLOSE on the old route ignored while re-establishing", g->recv_rid);
        return;
    }
    if (p->type == VISOR_RPKT_CLOSE) {
        group_close_flush(g, p->code ? "the peer closed with an error" : "the peer closed");
        return;
    }
    if (g->state == G_WAIT && !g->tp_down) {
        bool full;
        if (out_link(g, &full) || full) { /* the silence is over and we can send: carry on */
            g->state = G_OPEN;
            if (!g->app_eof)
                bufferevent_enable(g->bev, EV_READ);
        }
    }
    if (p->type != VISOR_RPKT_DATA)
        return; /* KEEPALIVE: the rule's expiry was pushed already */
    if (g->state == G_HANDSHAKE) {
        handshake_packet(g, p);
        return;
    }
    if (sw_noise_decrypt(&g->rx, NULL, 0, p->data, p->data_len, plain)) {
        group_end(g, true, VISOR_RPKT_CLOSE_ERROR, "a DATA record did not decrypt");
        return;
    }
    bufferevent_write(g->bev, plain, p->data_len - SW_NOISE_TAG);
    if (evbuffer_get_length(bufferevent_get_output(g->bev)) > VISOR_GROUP_APP_OUT_MAX)
        group_end(g, true, VISOR_RPKT_CLOSE_ERROR, "the app does not read");
}

void visor_group_rule_gone(struct visor *v, uint32_t rid, const char *why)
{
    struct visor_group *g = find_group(v->router, rid);
    if (g)
        group_end(g, true, VISOR_RPKT_CLOSE_ERROR, why);
}

/* ---- setting groups up ------------------------------------------------------------------- */

struct group_params {
    uint16_t local_port, remote_port;
    struct sw_pk remote;
    struct sw_uuid send_tp;
    uint32_t send_rid, recv_rid;
};

static int parse_params(struct json_object *o, struct group_params *gp, struct sw_error *err)
{
    uint64_t lp, rp, sr, rr;
    const char *tp;
    int rc;

    if ((rc = sw_json_get_u64(o, "local_port", "", &lp, err)) ||
        (rc = sw_json_get_pk(o, "remote_pk", "", &gp->remote, err)) ||
        (rc = sw_json_get_u64(o, "remote_port", "", &rp, err)) ||
        (rc = sw_json_get_string(o, "send_tp", "", SW_UUID_STR_LEN, &tp, err)) ||
        (rc = sw_uuid_parse(&gp->send_tp, tp, "send_tp", err)) ||
        (rc = sw_json_get_u64(o, "send_rid", "", &sr, err)) ||
        (rc = sw_json_get_u64(o, "recv_rid", "", &rr, err)))
        return rc;
    if (lp == 0 || lp > 65535 || rp == 0 || rp > 65535)
        return sw_error_set(err, SW_EINVAL, "ports must be 1..65535");
    if (sr == 0 || sr > UINT32_MAX || rr == 0 || rr > UINT32_MAX)
        return sw_error_set(err, SW_EINVAL, "route IDs must be 1..4294967295");
    gp->local_port = (uint16_t)lp;
    gp->remote_port = (uint16_t)rp;
    gp->send_rid = (uint32_t)sr;
    gp->recv_rid = (uint32_t)rr;
    return SW_OK;
}

static struct visor_group *start_group(struct visor *v, const struct group_params *gp, bool initiator,
                                       const char **code, struct sw_error *err)
{
    struct visor_rule *r = visor_rules_get(&v->router->rt, gp->recv_rid);
    struct visor_group *g;
    size_t out_len;

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
    if (!(g = group_new(v, gp->recv_rid, err)))
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
        group_free(g, "the remote key is not usable");
        sw_error_set(err, SW_EINVAL, "the remote key is not usable for Noise");
        return NULL;
    }
    if (initiator &&
        (sw_noise_hs_write_message(&g->hs, NULL, 0, pktbuf + 6, sizeof(pktbuf) - 6, &out_len) ||
         send_data(g, out_len))) {
        group_free(g, "cannot send the first handshake message");
        *code = "route_failed";
        sw_error_set(err, SW_EIO, "the first hop's transport is not up");
        return NULL;
    }
    return g;
}

struct json_object *visor_group_ready(struct visor *v, struct json_object *req, uint64_t id,
                                      const struct sw_pk *owner)
{
    struct sw_error err = { 0 };
    struct group_params gp;
    const char *code = "invalid_request";
    struct json_object *o, *e;
    bool initiator = false, rebind = false;

    if (parse_params(req, &gp, &err) == SW_OK &&
        (!json_object_object_get(req, "initiator") || sw_json_get_bool(req, "initiator", "", &initiator, &err) == SW_OK) &&
        (!json_object_object_get(req, "rebind") || sw_json_get_bool(req, "rebind", "", &rebind, &err) == SW_OK)) {
        struct visor_group *g;
        struct visor_rule *r;
        if (initiator) {
            sw_error_set(&err, SW_EINVAL, "the initiator learns its group from the route_group response");
        } else if (rebind) {
            /* the same group (same address pair) moves onto a new route; Noise state kept */
            g = find_tuple(v->router, gp.local_port, &gp.remote, gp.remote_port, false);
            r = visor_rules_get(&v->router->rt, gp.recv_rid);
            if (!g || g->state == G_HANDSHAKE) {
                code = "no_group";
                sw_error_set(&err, SW_ENOTFOUND, "no open route group for this address pair");
            } else if (!r || r->type != VISOR_RULE_CONSUME) {
                sw_error_set(&err, SW_ENOTFOUND, "route %u is not a consume rule here", gp.recv_rid);
            } else if (find_group(v->router, gp.recv_rid)) {
                sw_error_set(&err, SW_EEXIST, "route %u belongs to a group already", gp.recv_rid);
            } else if (!visor_tm_find_id(v, &gp.send_tp)) {
                code = "unknown_transport";
                sw_error_set(&err, SW_ENOTFOUND, "send_tp is not a transport here");
            } else {
                if (g->state == G_OPEN)
                    g->broken_ms = sw_mono_ms();
                rebound(g, &gp.send_tp, gp.send_rid, gp.recv_rid);
                pump_app(g);
                o = json_object_new_object();
                json_object_object_add(o, "id", json_object_new_uint64(id));
                json_object_object_add(o, "ok", json_object_new_boolean(true));
                return o;
            }
        } else if (!find_listener(v->router, gp.local_port)) {
            code = "no_listener";
            sw_error_set(&err, SW_ENOTFOUND, "no app listens on port %u", gp.local_port);
        } else if (start_group(v, &gp, false, &code, &err)) {
            o = json_object_new_object();
            json_object_object_add(o, "id", json_object_new_uint64(id));
            json_object_object_add(o, "ok", json_object_new_boolean(true));
            return o;
        }
    }
    o = json_object_new_object();
    e = json_object_new_object();
    json_object_object_add(o, "id", json_object_new_uint64(id));
    json_object_object_add(o, "ok", json_object_new_boolean(false));
    json_object_object_add(e, "code", json_object_new_string(code));
    json_object_object_add(e, "message", json_object_new_string(err.msg));
    json_object_object_add(o, "error", e);
    return o;
}

void visor_group_cmd_dial(struct visor *v, struct visor_cmd *c)
{
    struct sw_error err = { 0 };
    struct group_params gp;
    const char *code = "invalid_request";
    struct visor_group *g;

    if (parse_params(c->body, &gp, &err)) {
        visor_cmd_reply_error(&v->q, c, 400, code, "%s", err.msg);
        return;
    }
    if (!(g = start_group(v, &gp, true, &code, &err))) {
        visor_cmd_reply_error(&v->q, c, 502, code, "%s", err.msg);
        return;
    }
    g->waiter = c; /* replied when the handshake ends either way */
    if (json_object_object_get(c->body, "forward")) {
        struct json_object *p = json_object_new_object();
        json_object_object_add(p, "forward", json_object_get(json_object_object_get(c->body, "forward")));
        json_object_object_add(p, "reverse", json_object_get(json_object_object_get(c->body, "reverse")));
        g->paths = strdup(json_object_to_json_string_ext(p, JSON_C_TO_STRING_PLAIN));
        json_object_put(p);
    }
}

void visor_group_cmd_port_free(struct visor *v, struct visor_cmd *c)
{
    struct visor_group *g;
    LIST_FOREACH(g, &v->router->groups, next)
        if (g->initiator && g->local_port == c->n) {
            visor_cmd_reply_error(&v->q, c, 409, "port_in_use", "a group uses local port %u",
                                  (unsigned)c->n);
            return;
        }
    visor_cmd_reply(&v->q, c, 200, json_object_new_object());
}

void visor_group_cmd_rebind(struct visor *v, struct visor_cmd *c)
{
    struct sw_error err = { 0 };
    struct visor_group *g = find_serial(v->router, c->n);
    struct group_params gp;
    struct visor_rule *r;
    const char *msg;

    if (!g || g->state != G_REROUTE) {
        visor_cmd_reply_error(&v->q, c, 410, "gone", "the group is no longer re-establishing");
        return;
    }
    g->job = false;
    g->retry_at_ms = sw_deadline_ms(VISOR_GROUP_RETRY_MS);
    if ((msg = json_object_get_string(json_object_object_get(c->body, "error")))) {
        sw_log_info("route group %u: re-establishing failed: %s (retrying)", g->recv_rid, msg);
        visor_cmd_reply(&v->q, c, 200, json_object_new_object());
        return;
    }
    json_object_object_add(c->body, "local_port", json_object_new_int(g->local_port));
    json_object_object_add(c->body, "remote_pk", sw_json_pk(&g->remote));
    json_object_object_add(c->body, "remote_port", json_object_new_int(g->remote_port));
    if (parse_params(c->body, &gp, &err) ||
        !(r = visor_rules_get(&v->router->rt, gp.recv_rid)) || r->type != VISOR_RULE_CONSUME ||
        find_group(v->router, gp.recv_rid) || !visor_tm_find_id(v, &gp.send_tp)) {
        sw_log_info("route group %u: the setup node's new route is not usable here (retrying)", g->recv_rid);
        visor_cmd_reply(&v->q, c, 200, json_object_new_object());
        return;
    }
    free(g->paths);
    g->paths = NULL;
    if (json_object_object_get(c->body, "forward")) {
        struct json_object *p = json_object_new_object();
        json_object_object_add(p, "forward", json_object_get(json_object_object_get(c->body, "forward")));
        json_object_object_add(p, "reverse", json_object_get(json_object_object_get(c->body, "reverse")));
        g->paths = strdup(json_object_to_json_string_ext(p, JSON_C_TO_STRING_PLAIN));
        json_object_put(p);
    }
    visor_cmd_reply(&v->q, c, 200, json_object_new_object());
    rebound(g, &gp.send_tp, gp.send_rid, gp.recv_rid);
    pump_app(g);
}

static void listener_cb(evutil_socket_t fd, short what, void *arg)
{
    struct visor_app_listener *l = arg;
    char buf[64];
    ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

    if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EINTR)))
        return;
    sw_log_info("app listener on port %u closed", l->port);
    LIST_REMOVE(l, next);
    event_free(l->ev);
    close(l->fd);
    free(l);
}

void visor_group_cmd_listen(struct visor *v, struct visor_cmd *c)
{
    struct visor_app_listener *l;
    int sv[2];

    if (c->n == 0 || c->n > 65535) {
        visor_cmd_reply_error(&v->q, c, 400, "invalid_port", "ports are 1..65535");
        return;
    }
    if (find_listener(v->router, (uint16_t)c->n)) {
        visor_cmd_reply_error(&v->q, c, 409, "port_in_use", "port %u has a listener already",
                              (unsigned)c->n);
        return;
    }
    if (!(l = calloc(1, sizeof(*l))) || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv)) {
        free(l);
        visor_cmd_reply_error(&v->q, c, 500, "internal_error", "cannot create the listener");
        return;
    }
    l->v = v;
    l->port = (uint16_t)c->n;
    l->fd = sv[0];
    evutil_make_socket_nonblocking(sv[0]);
    if (!(l->ev = event_new(v->base, sv[0], EV_READ | EV_PERSIST, listener_cb, l)) || event_add(l->ev, NULL)) {
        if (l->ev)
            event_free(l->ev);
        close(sv[0]);
        close(sv[1]);
        free(l);
        visor_cmd_reply_error(&v->q, c, 500, "internal_error", "cannot watch the listener");
        return;
    }
    LIST_INSERT_HEAD(&v->router->listeners, l, next);
    sw_log_info("app listener on port %u", l->port);
    c->fd = sv[1];
    visor_cmd_reply(&v->q, c, 200, json_object_new_object());
}

void visor_group_free_all(struct visor *v)
{
    struct visor_router *ro = v->router;
    struct visor_group *g;
    struct visor_app_listener *l;

    while ((g = LIST_FIRST(&ro->groups)))
        group_free(g, "the visor stops");
    while ((l = LIST_FIRST(&ro->listeners))) {
        LIST_REMOVE(l, next);
        event_free(l->ev);
        close(l->fd);
        free(l);
    }
}
