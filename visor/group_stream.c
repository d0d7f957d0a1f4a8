/* group_stream.c — a stream route group end's data path (docs/routing.md §4), loop thread.
 *
 * App bytes are read from the app's socketpair (at most VISOR_GROUP_APP_IN_MAX ahead), sent
 * in records while the peer's window allows, and kept in the resend buffer (g->rtx) until
 * acknowledged. Received bytes go to the app in order; the window we advertise is the room
 * left of VISOR_GROUP_WINDOW in the app's output, so nothing is ever dropped for lack of
 * room: a reader that stops just stops its sender. One ACK answers everything a loop turn
 * received (g->ack_ev); data records carry the ACK too. Half-close: the app's EOF becomes
 * our FIN; the peer's FIN shuts the app's read side once everything before it was written.
 * The group ends (CLOSE) when both FINs are through. */
#include "visor/group.h"
#include "common/log.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

_Static_assert(VISOR_GROUP_WINDOW <= VISOR_STREAM_MAX_WINDOW, "the window we offer is one we would take");

static size_t app_out_len(const struct visor_group *g)
{
    return evbuffer_get_length(bufferevent_get_output(g->bev));
}

size_t visor_gstream_app_pending(const struct visor_group *g)
{
    return g->bev ? app_out_len(g) : 0;
}

static uint32_t our_window(struct visor_group *g)
{
    size_t out = app_out_len(g);
    uint32_t w = visor_stream_window(&g->st, out < VISOR_GROUP_WINDOW ? VISOR_GROUP_WINDOW - out : 0);
    g->told_edge = g->st.rcv_nxt + w;
    return w;
}

/* The stream header of our next record, with any ACK flags that were due (then carried). */
static void put_header(struct visor_group *g, uint8_t flags, uint64_t seq)
{
    struct visor_rec_hdr h = {
        .flags = (uint8_t)(flags | (g->ack_flags & (VISOR_REC_GAP | VISOR_REC_PROBE))),
        .seq = seq, .ack = visor_stream_ack_value(&g->st), .window = our_window(g),
    };
    visor_rec_hdr_put(visor_group_inner(), &h);
    g->ack_flags = 0;
    g->acked_to = h.ack;
}

static void send_ack(struct visor_group *g)
{
    put_header(g, 0, g->st.snd_nxt);
    visor_group_send_record(g, VISOR_REC_HDR_LEN, VISOR_SEND_CONTROL);
}

/* An ACK at the end of this loop turn (one for everything the turn received). */
static void request_ack(struct visor_group *g, uint8_t flags)
{
    g->ack_flags |= (uint8_t)(flags | VISOR_GROUP_ACK_PLAIN);
    event_active(g->ack_ev, EV_TIMEOUT, 0);
}

/* New bytes in order: an ACK every VISOR_GROUP_ACK_BYTES, else within VISOR_GROUP_ACK_DELAY_MS
 * (the sender's window is far larger; fewer ACKs are less work for every visor on the path). */
static void note_new_bytes(struct visor_group *g)
{
    struct timeval delay = { 0, VISOR_GROUP_ACK_DELAY_MS * 1000 };

    if (g->st.rcv_nxt - g->acked_to >= VISOR_GROUP_ACK_BYTES || g->st.fin_rcvd) {
        request_ack(g, 0);
        return;
    }
    g->ack_flags |= VISOR_GROUP_ACK_PLAIN;
    if (!event_pending(g->ack_ev, EV_TIMEOUT, NULL))
        event_add(g->ack_ev, &delay);
}

static void ack_cb(evutil_socket_t fd, short what, void *arg)
{
    struct visor_group *g = arg;
    if (g->ack_flags && g->state != G_HANDSHAKE && g->state != G_CLOSING)
        send_ack(g);
}

/* Both directions are through: CLOSE, and the end goes. False: g is freed. */
static bool check_done(struct visor_group *g)
{
    if (!visor_stream_fin_acked(&g->st) || !g->st.fin_rcvd || !g->app_shut)
        return true;
    if (g->ack_flags)
        send_ack(g); /* the ACK of the peer's FIN goes before our CLOSE */
    visor_group_end(g, true, VISOR_RPKT_CLOSE_NORMAL, "both sides finished");
    return false;
}

/* The peer's FIN reached the app once everything before it is written: shut its read side. */
static bool maybe_shut_app(struct visor_group *g)
{
    if (!g->st.fin_rcvd || g->app_shut)
        return true;
    if (app_out_len(g)) {
        bufferevent_setwatermark(g->bev, EV_WRITE, 0, 0); /* hear when it is empty */
        return true;
    }
    shutdown(bufferevent_getfd(g->bev), SHUT_WR);
    g->app_shut = true;
    return check_done(g);
}

static bool send_records(struct visor_group *g)
{
    struct evbuffer *in = bufferevent_get_input(g->bev);
    struct visor_stream *st = &g->st;
    int64_t now = sw_mono_ms();
    bool was_busy = visor_stream_in_flight(st), sent = false;

    for (;;) {
        size_t rtx_len = evbuffer_get_length(g->rtx);
        uint64_t n = visor_stream_sendable(st, rtx_len + evbuffer_get_length(in));
        uint64_t off = st->snd_nxt - st->snd_una;
        uint8_t *payload = visor_group_inner() + VISOR_REC_HDR_LEN;
        struct evbuffer_ptr pos;
        bool fin;

        if (n > VISOR_GROUP_RECORD_MAX)
            n = VISOR_GROUP_RECORD_MAX;
        if (off < rtx_len && off + n > rtx_len)
            n = rtx_len - off; /* a resend ends where the buffer does; new bytes follow */
        fin = st->fin_seq != VISOR_STREAM_NO_FIN && st->snd_nxt + n == st->fin_seq;
        if (!n && !fin)
            break;
        put_header(g, fin ? VISOR_REC_FIN : 0, st->snd_nxt);
        if (off == rtx_len) { /* new bytes (the common case): from the app, kept for a resend */
            if (n && (evbuffer_remove(in, payload, (size_t)n) != (int)n || evbuffer_add(g->rtx, payload, (size_t)n))) {
                visor_group_end(g, true, VISOR_RPKT_CLOSE_ERROR, "out of memory for the resend buffer");
                return false;
            }
        } else if (n && (evbuffer_ptr_set(g->rtx, &pos, (size_t)off, EVBUFFER_PTR_SET) ||
                         evbuffer_copyout_from(g->rtx, &pos, payload, (size_t)n) != (ssize_t)n)) {
            visor_group_end(g, true, VISOR_RPKT_CLOSE_ERROR, "the resend buffer lost bytes");
            return false;
        }
        switch (visor_group_send_record(g, VISOR_REC_HDR_LEN + (size_t)n, 0)) {
        case VISOR_SEND_FULL:
            visor_tp_wait(g->v, &g->send_tp, &g->tpw);
            goto out;
        case VISOR_SEND_DOWN:
            visor_group_route_broken(g, "the first hop's transport is down", true);
            return true;
        case VISOR_SEND_OK:
            break;
        }
        if (st->snd_nxt < st->snd_max)
            g->v->router->m_rtx_bytes += n < st->snd_max - st->snd_nxt ? n : st->snd_max - st->snd_nxt;
        visor_stream_sent(st, n, fin, now);
        sent = true;
    }
out:
    if (sent && !was_busy) /* from the idle 1 s tick to the busy one (which re-arms itself) */
        visor_group_arm_timer(g);
    return true;
}

void visor_gstream_pump(struct visor_group *g)
{
    if (g->state != G_OPEN || !send_records(g))
        return;
    check_done(g);
}

void visor_gstream_record(struct visor_group *g, const uint8_t *inner, size_t len)
{
    struct sw_error err = { 0 };
    struct visor_rec_hdr h;
    uint64_t acked;
    size_t skip, take;

    if (visor_rec_hdr_parse(inner, len, &h, &err)) {
        g->v->router->m_bad_records++;
        sw_log_debug("route group %u: %s", g->recv_rid, err.msg);
        return;
    }
    if (visor_stream_on_ack(&g->st, &h, sw_mono_ms(), &acked) == VISOR_STREAM_ACK_BOGUS) {
        visor_group_end(g, true, VISOR_RPKT_CLOSE_ERROR, "the peer acknowledged bytes never sent");
        return;
    }
    evbuffer_drain(g->rtx, (size_t)acked);
    if (h.flags & VISOR_REC_PROBE)
        request_ack(g, 0);
    if (h.flags & VISOR_REC_MOVE) { /* its payload names a transport, it is not stream bytes */
        struct sw_uuid avoid;
        if (h.len == sizeof(avoid.b)) {
            memcpy(avoid.b, h.payload, sizeof(avoid.b));
            visor_group_move(g, &avoid);
        }
        h.len = 0;
        h.payload = NULL;
        h.flags &= (uint8_t)~(VISOR_REC_MOVE | VISOR_REC_FIN);
    }
    switch (visor_stream_rx(&g->st, &h, &skip, &take)) {
    case VISOR_STREAM_RX_NEW:
        if (take)
            bufferevent_write(g->bev, h.payload + skip, take);
        note_new_bytes(g);
        break;
    case VISOR_STREAM_RX_OLD:
        if (h.len || (h.flags & VISOR_REC_FIN))
            request_ack(g, 0); /* a resend of what we have: say where we are */
        break;
    case VISOR_STREAM_RX_GAP:
        request_ack(g, VISOR_REC_GAP);
        break;
    case VISOR_STREAM_RX_BEYOND:
        g->v->router->m_bad_records++;
        request_ack(g, 0);
        break;
    }
    if (!maybe_shut_app(g))
        return;
    visor_gstream_pump(g);
}

void visor_gstream_tick(struct visor_group *g, int64_t now)
{
    struct visor_stream *st = &g->st;
    uint64_t have = st->snd_una + evbuffer_get_length(g->rtx) + evbuffer_get_length(bufferevent_get_input(g->bev));

    switch (visor_stream_on_timer(st, now, have > st->snd_nxt ? have - st->snd_nxt : 0)) {
    case VISOR_STREAM_T_RESEND:
        sw_log_debug("route group %u: no acknowledgement within %u ms: resending from %llu", g->recv_rid,
                     st->rto_ms, (unsigned long long)st->snd_una);
        break;
    case VISOR_STREAM_T_PROBE:
        request_ack(g, VISOR_REC_PROBE);
        break;
    case VISOR_STREAM_T_NONE:
        break;
    }
    /* a live path answers every record, even a resent or out-of-order one */
    if (visor_stream_in_flight(st) && now - g->last_rx_ms >= VISOR_GROUP_STALL_MS) {
        visor_group_route_broken(g, "bytes in flight and nothing heard from the other end", false);
        return;
    }
    if (now - g->last_tx_ms >= VISOR_GROUP_KEEPALIVE_S * 1000)
        request_ack(g, 0); /* an ACK is our keepalive: it also tells the peer where we are */
    visor_group_arm_timer(g);
    visor_gstream_pump(g);
}

void visor_gstream_ask_move(struct visor_group *g, const struct sw_uuid *tp)
{
    put_header(g, VISOR_REC_MOVE, g->st.snd_nxt);
    memcpy(visor_group_inner() + VISOR_REC_HDR_LEN, tp->b, sizeof(tp->b));
    visor_group_send_record(g, VISOR_REC_HDR_LEN + sizeof(tp->b), VISOR_SEND_CONTROL);
}

void visor_gstream_resume(struct visor_group *g)
{
    visor_stream_rewind(&g->st, sw_mono_ms());
    request_ack(g, VISOR_REC_PROBE); /* the peer answers with where it is */
    if (!g->app_eof)
        bufferevent_enable(g->bev, EV_READ);
    visor_gstream_pump(g);
}

static void read_cb(struct bufferevent *bev, void *arg)
{
    visor_gstream_pump(arg);
}

static void write_cb(struct bufferevent *bev, void *arg)
{
    struct visor_group *g = arg;

    if (g->state == G_CLOSING) {
        if (!app_out_len(g))
            visor_group_free(g, g->close_why);
        return;
    }
    if (g->state == G_HANDSHAKE || !maybe_shut_app(g))
        return;
    /* the app read: tell the peer when the window grew by a quarter */
    if (g->st.rcv_nxt + (VISOR_GROUP_WINDOW - app_out_len(g)) >= g->told_edge + VISOR_GROUP_WINDOW / 4)
        request_ack(g, 0);
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct visor_group *g = arg;
    struct visor_stream *st = &g->st;

    if (g->state == G_CLOSING) {
        if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
            visor_group_free(g, g->close_why);
        return;
    }
    if (what & BEV_EVENT_ERROR) {
        visor_group_end(g, true, VISOR_RPKT_CLOSE_ERROR, "the app reset its connection");
        return;
    }
    if ((what & BEV_EVENT_EOF) && !g->app_eof) { /* our FIN goes after everything it wrote */
        g->app_eof = true;
        bufferevent_disable(bev, EV_READ);
        visor_stream_set_fin(st, st->snd_una + evbuffer_get_length(g->rtx) +
                                     evbuffer_get_length(bufferevent_get_input(bev)));
        visor_gstream_pump(g);
    }
}

int visor_gstream_init(struct visor_group *g, int sock, struct sw_error *err)
{
    struct event_base *base = g->v->base;

    if (!(g->bev = bufferevent_socket_new(base, sock, BEV_OPT_CLOSE_ON_FREE))) {
        close(sock);
        return sw_error_set(err, SW_ENOMEM, "out of memory");
    }
    if (!(g->rtx = evbuffer_new()) || !(g->ack_ev = event_new(base, -1, 0, ack_cb, g)))
        return sw_error_set(err, SW_ENOMEM, "out of memory");
    bufferevent_setcb(g->bev, read_cb, write_cb, event_cb, g);
    bufferevent_setwatermark(g->bev, EV_READ, 0, VISOR_GROUP_APP_IN_MAX);
    bufferevent_setwatermark(g->bev, EV_WRITE, VISOR_GROUP_WINDOW / 2, 0);
    return SW_OK;
}

void visor_gstream_open(struct visor_group *g, uint32_t peer_window)
{
    visor_stream_init(&g->st, peer_window, VISOR_GROUP_WINDOW);
    g->told_edge = VISOR_GROUP_WINDOW;
    bufferevent_enable(g->bev, EV_READ | EV_WRITE);
    visor_gstream_pump(g);
}

void visor_gstream_free(struct visor_group *g)
{
    if (g->bev)
        bufferevent_free(g->bev);
    if (g->rtx)
        evbuffer_free(g->rtx);
    if (g->ack_ev)
        event_free(g->ack_ev);
    g->bev = NULL;
    g->rtx = NULL;
    g->ack_ev = NULL;
}
