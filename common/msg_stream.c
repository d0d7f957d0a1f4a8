/* msg_stream.c — one messaging stream on the client's loop thread: its state machine
 * (docs/messaging.md "Client stream states"), the KK handshake inside it, credit-based flow
 * control, and the library end of the user's socketpair. */
#include "common/msg_client_internal.h"
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void on_readable(evutil_socket_t fd, short what, void *arg);
static void on_writable(evutil_socket_t fd, short what, void *arg);
static void on_timer(evutil_socket_t fd, short what, void *arg);

/* ---- table, creation, destruction ------------------------------------------------- */

struct mc_stream *mc_stream_find(struct mc_sess *ss, uint32_t id)
{
    struct mc_stream *st = ss->buckets[id % MC_STREAM_BUCKETS];
    while (st && st->id != id)
        st = st->hnext;
    return st;
}

static int make_pair(int *lib_fd, int *user_fd)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return SW_EIO;
    if (fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK) != 0) {
        close(sv[0]);
        close(sv[1]);
        return SW_EIO;
    }
    *lib_fd = sv[0];
    *user_fd = sv[1];
    return SW_OK;
}

struct mc_stream *mc_stream_new(struct mc_sess *ss, uint32_t id, bool initiator)
{
    struct sw_msg_client *c = ss->c;
    struct mc_stream *st = calloc(1, sizeof(*st));
    struct mc_stream **b;

    if (!st)
        return NULL;
    st->fd = st->user_fd = -1;
    if (make_pair(&st->fd, &st->user_fd) != SW_OK)
        goto fail;
    st->ev_rd = event_new(c->base, st->fd, EV_READ | EV_PERSIST, on_readable, st);
    st->ev_wr = event_new(c->base, st->fd, EV_WRITE | EV_PERSIST, on_writable, st);
    st->ev_timer = evtimer_new(c->base, on_timer, st);
    if (!st->ev_rd || !st->ev_wr || !st->ev_timer)
        goto fail;
    st->c = c;
    st->sess = ss;
    st->id = id;
    st->initiator = initiator;
    mc_credit_init(&st->rcv, SW_MSG_DEFAULT_WINDOW);
    mc_ring_init(&st->in, SW_MSG_DEFAULT_WINDOW);
    b = &ss->buckets[id % MC_STREAM_BUCKETS];
    st->hnext = *b;
    *b = st;
    ss->n_streams++;
    return st;
fail:
    if (st->ev_rd)
        event_free(st->ev_rd);
    if (st->ev_wr)
        event_free(st->ev_wr);
    if (st->ev_timer)
        event_free(st->ev_timer);
    if (st->fd >= 0)
        close(st->fd);
    if (st->user_fd >= 0)
        close(st->user_fd);
    free(st);
    return NULL;
}

static void listener_remove(struct mc_stream *st)
{
    struct mc_listener *l = st->listener;
    struct mc_stream **pp = &l->head, *prev = NULL;
    while (*pp && *pp != st) {
        prev = *pp;
        pp = &(*pp)->lnext;
    }
    if (*pp) {
        *pp = st->lnext;
        if (l->tail == st)
            l->tail = prev;
        l->n_pending--;
    }
    st->listener = NULL;
    st->lnext = NULL;
}

static void table_remove(struct mc_stream *st)
{
    struct mc_stream **pp = &st->sess->buckets[st->id % MC_STREAM_BUCKETS];
    while (*pp && *pp != st)
        pp = &(*pp)->hnext;
    if (*pp) {
        *pp = st->hnext;
        st->sess->n_streams--;
    }
}

/* The stream no longer counts towards the cap on incoming handshakes. */
static void hs_uncount(struct mc_stream *st)
{
    if (st->hs_counted) {
        st->hs_counted = false;
        st->c->n_incoming_hs--;
    }
}

/* Ends the stream's pending dial, if any, with result. */
static void end_dial(struct mc_stream *st, enum mc_dial_result result, int refusal, const char *why)
{
    struct mc_dial *d = st->dial;
    if (!d)
        return;
    if (result == MC_DIAL_OK) {
        d->cmd->fd = st->user_fd; /* the caller owns the user end from now on */
        st->user_fd = -1;
    }
    st->dial = NULL;
    d->st = NULL;
    mc_dial_finish(d, result, refusal, why);
}

void mc_stream_free(struct mc_stream *st, enum mc_dial_result result)
{
    end_dial(st, result, 0, result == MC_DIAL_RESET ? "stream reset during its opening" : NULL);
    if (st->listener)
        listener_remove(st);
    table_remove(st);
    hs_uncount(st);
    event_free(st->ev_rd);
    event_free(st->ev_wr);
    event_free(st->ev_timer);
    close(st->fd);
    if (st->user_fd >= 0)
        close(st->user_fd);
    if (st->counted)
        atomic_fetch_sub(&st->c->streams, 1);
    sw_noise_hs_wipe(&st->hs);
    sw_noise_cipher_wipe(&st->tx);
    sw_noise_cipher_wipe(&st->rx);
    mc_ring_free(&st->in);
    free(st);
}

void mc_stream_drop_all(struct mc_sess *ss, enum mc_dial_result result)
{
    for (unsigned i = 0; i < MC_STREAM_BUCKETS; i++)
        while (ss->buckets[i])
            mc_stream_free(ss->buckets[i], result);
}

/* ---- sending frames ------------------------------------------------------------------ */

static int send_simple(struct mc_stream *st, uint8_t type, uint32_t value, uint8_t code)
{
    struct sw_msg_frame f = { .type = type, .stream = st->id, .window = value, .code = code };
    return mc_sess_send(st->sess, &f);
}

static int send_record(struct mc_stream *st, const uint8_t *rec, size_t len)
{
    struct sw_msg_frame f = { .type = SW_MSG_DATA, .stream = st->id, .data = rec, .data_len = len };
    st->send_credit -= len;
    return mc_sess_send(st->sess, &f);
}

void mc_stream_close(struct mc_stream *st, uint8_t code, enum mc_dial_result result)
{
    send_simple(st, SW_MSG_CLOSE, 0, code);
    sw_log_debug("stream %u closed (%s)", st->id, code ? "reset" : "normal");
    mc_stream_free(st, result);
}

static void stream_reset(struct mc_stream *st, const char *why)
{
    sw_log_debug("stream %u reset: %s", st->id, why);
    mc_stream_close(st, 1, MC_DIAL_RESET);
}

/* Grants credit back for n consumed bytes (WINDOW once half the window is consumed). */
static void consumed(struct mc_stream *st, size_t n)
{
    uint32_t inc = mc_credit_consume(&st->rcv, n);
    if (inc && st->state == MC_ST_ESTABLISHED && !st->remote_fin)
        send_simple(st, SW_MSG_WINDOW, inc, 0);
}

static void update_events(struct mc_stream *st)
{
    bool rd = st->state == MC_ST_ESTABLISHED && !st->user_eof && st->send_credit > MC_REC_OVERHEAD;
    bool wr = st->in.len > 0 && (st->state == MC_ST_ESTABLISHED || st->state == MC_ST_DRAINING);
    if (rd != st->rd_on) {
        if (rd)
            event_add(st->ev_rd, NULL);
        else
            event_del(st->ev_rd);
        st->rd_on = rd;
    }
    if (wr != st->wr_on) {
        if (wr)
            event_add(st->ev_wr, NULL);
        else
            event_del(st->ev_wr);
        st->wr_on = wr;
    }
}

/* ---- opening and the KK handshake ------------------------------------------------------ */

int mc_stream_send_open(struct mc_stream *st, uint16_t dst_port)
{
    struct sw_msg_frame f = { .type = SW_MSG_OPEN, .stream = st->id, .peer = st->peer,
                              .dst_port = dst_port, .src_port = st->local_port,
                              .window = SW_MSG_DEFAULT_WINDOW };
    int rc = sw_noise_hs_init_ed25519(&st->hs, SW_NOISE_KK, SW_NOISE_INITIATOR, SW_STREAM_PROLOGUE,
                                      &st->c->kp, &st->peer);
    if (rc)
        return rc;
    st->state = MC_ST_OPENING;
    return mc_sess_send(st->sess, &f);
}

static void established(struct mc_stream *st)
{
    int rc = sw_noise_hs_split(&st->hs, &st->tx, &st->rx);
    char hex[SW_PK_HEX_LEN + 1];

    sw_noise_hs_wipe(&st->hs);
    if (rc) {
        stream_reset(st, "noise split failed");
        return;
    }
    event_del(st->ev_timer);
    hs_uncount(st);
    st->state = MC_ST_ESTABLISHED;
    st->counted = true;
    atomic_fetch_add(&st->c->streams, 1);
    sw_pk_to_hex(&st->peer, hex);
    sw_log_debug("stream %u %s %s:%u established", st->id, st->initiator ? "to" : "from", hex,
                 st->initiator ? st->remote_port : st->local_port);
    update_events(st);
    if (st->initiator)
        end_dial(st, MC_DIAL_OK, 0, NULL);
    else
        mc_listener_deliver(st);
}

/* Sends our pending handshake message as one DATA record once the peer's credit can carry
 * it (a window may start at 0: we then wait for WINDOW). Its payload is our certificate in
 * a private network (KK message 1 from the dialer, message 2 from the listener), empty in
 * an open one. Finishing the handshake establishes the stream. st may be freed on return. */
static void hs_flush(struct mc_stream *st)
{
    uint8_t rec[2 + 64 + SW_CERT_MAX_LEN];
    size_t len, cert_len;
    const uint8_t *cert = sw_network_own_cert(st->c->network, &cert_len);

    if (!st->hs_pending || st->send_credit < sw_noise_hs_overhead(&st->hs) + cert_len + 2)
        return;
    st->hs_pending = false;
    if (sw_noise_hs_write_message(&st->hs, cert, cert_len, rec + 2, sizeof(rec) - 2, &len) != SW_OK) {
        stream_reset(st, "cannot write the KK handshake");
        return;
    }
    sw_put_u16(rec, (uint16_t)len);
    send_record(st, rec, len + 2);
    if (sw_noise_hs_finished(&st->hs))
        established(st);
}

static void on_accept(struct mc_stream *st, uint32_t window)
{
    if (!st->initiator || st->state != MC_ST_OPENING) {
        stream_reset(st, "unexpected ACCEPT");
        return;
    }
    st->send_credit += window; /* adds to WINDOWs sent while the stream was pending */
    st->state = MC_ST_HANDSHAKE;
    st->hs_pending = true;
    hs_flush(st);
}

static void on_refuse(struct mc_stream *st, const struct sw_msg_frame *f)
{
    char why[SW_MSG_REASON_MAX + 1];
    size_t n = f->reason_len < SW_MSG_REASON_MAX ? f->reason_len : SW_MSG_REASON_MAX;

    memcpy(why, f->reason, n);
    why[n] = '\0';
    sw_log_debug("stream %u refused: %s (%s)", st->id, sw_msg_refusal_name(f->code), why);
    if (st->initiator && st->state == MC_ST_OPENING)
        end_dial(st, MC_DIAL_REFUSED, f->code, why);
    mc_stream_free(st, MC_DIAL_RESET);
}

/* Private network: the peer's certificate (the KK payload it just sent) must admit it in
 * one of st->roles. A refusal is logged once here (the refusing side); the dialer's call
 * fails with the reason, a listener answers CLOSE(not_a_member) so that the dialer's call
 * fails with SW_EPERM too. st is freed then. */
static bool peer_admitted(struct mc_stream *st, const uint8_t *cert, size_t len)
{
    struct sw_error e = { 0 };
    char hex[SW_PK_HEX_LEN + 1], why[SW_ERROR_MSG_MAX + 32];

    if (sw_network_admit(st->c->network, &st->peer, cert, len, st->roles, NULL, &e) == SW_OK)
        return true;
    sw_pk_to_hex(&st->peer, hex);
    if (st->initiator) {
        sw_log_warn("stream to %s:%u refused: the listener is %s", hex, st->remote_port, e.msg);
        snprintf(why, sizeof(why), "the listener is %s", e.msg);
        end_dial(st, MC_DIAL_NOT_MEMBER, 0, why);
        mc_stream_close(st, SW_CLOSE_RESET, MC_DIAL_RESET);
    } else {
        sw_log_warn("stream from %s to port %u refused: %s", hex, st->local_port, e.msg);
        mc_stream_close(st, SW_CLOSE_NOT_A_MEMBER, MC_DIAL_RESET);
    }
    return false;
}

static void on_hs_message(struct mc_stream *st, const uint8_t *msg, size_t len)
{
    uint8_t cert[SW_CERT_MAX_LEN];
    size_t plen;
    if (sw_noise_hs_read_message(&st->hs, msg, len, cert, sizeof(cert), &plen) != SW_OK) {
        stream_reset(st, "KK handshake failed");
        return;
    }
    if (!peer_admitted(st, cert, plen))
        return;
    if (!st->initiator) {
        st->hs_pending = true; /* message 2 */
        hs_flush(st);
    } else if (sw_noise_hs_finished(&st->hs)) {
        established(st);
    } else {
        stream_reset(st, "KK handshake out of order");
    }
}

/* ---- data toward the user ------------------------------------------------------------- */

/* The user closed its end: what it wrote is still read and sent; what we hold for it is
 * dropped (its credit is granted back so the peer is not stalled until our CLOSE). */
static void user_gone_for_reading(struct mc_stream *st)
{
    size_t n = st->in.len;
    mc_ring_drop(&st->in, n);
    consumed(st, n);
    if (st->state == MC_ST_DRAINING) {
        mc_stream_free(st, MC_DIAL_RESET); /* the peer closed already */
        return;
    }
    if (st->user_eof) {
        mc_stream_close(st, 0, MC_DIAL_RESET);
        return;
    }
    update_events(st);
}

/* Sends up to n bytes to the user; returns bytes taken, or -1 when the user is gone. */
static ssize_t to_user(struct mc_stream *st, const uint8_t *p, size_t n)
{
    ssize_t w;
    do
        w = send(st->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    while (w < 0 && errno == EINTR);
    if (w >= 0)
        return w;
    return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
}

/* Called once the receive buffer is empty: apply a pending FIN or CLOSE. */
static void after_flush(struct mc_stream *st)
{
    if (st->state == MC_ST_DRAINING) {
        mc_stream_free(st, MC_DIAL_RESET);
        return;
    }
    if (st->remote_fin && !st->shut_wr) {
        shutdown(st->fd, SHUT_WR);
        st->shut_wr = true;
    }
    if (st->local_fin && st->shut_wr) {
        mc_stream_close(st, 0, MC_DIAL_RESET); /* both directions finished */
        return;
    }
    update_events(st);
}

static void deliver(struct mc_stream *st, const uint8_t *pt, size_t n)
{
    ssize_t w = 0;

    atomic_fetch_add(&st->c->bytes_received, n);
    if (st->in.len == 0 && (w = to_user(st, pt, n)) < 0) {
        consumed(st, n);
        user_gone_for_reading(st);
        return;
    }
    consumed(st, (size_t)w);
    if (mc_ring_push(&st->in, pt + w, n - (size_t)w) != SW_OK) {
        stream_reset(st, "receive buffer overflow");
        return;
    }
    update_events(st);
}

static void on_writable(evutil_socket_t fd, short what, void *arg)
{
    struct mc_stream *st = arg;
    while (st->in.len > 0) {
        size_t n;
        const uint8_t *p = mc_ring_peek(&st->in, &n);
        ssize_t w = to_user(st, p, n);
        if (w < 0) {
            user_gone_for_reading(st);
            return;
        }
        if (w == 0)
            break;
        mc_ring_drop(&st->in, (size_t)w);
        consumed(st, (size_t)w);
    }
    if (st->in.len == 0)
        after_flush(st);
    else
        update_events(st);
}

static void on_data(struct mc_stream *st, const uint8_t *data, size_t len)
{
    uint8_t *pt = st->c->scratch;
    size_t mlen;

    if (mc_credit_receive(&st->rcv, len) != SW_OK) {
        stream_reset(st, "DATA beyond the granted window");
        return;
    }
    if (len < 2 + 1 || (size_t)sw_get_u16(data) != len - 2) {
        stream_reset(st, "DATA is not exactly one record");
        return;
    }
    mlen = len - 2;
    if (st->state == MC_ST_HANDSHAKE) {
        consumed(st, len);
        on_hs_message(st, data + 2, mlen);
        return;
    }
    if (st->state != MC_ST_ESTABLISHED || st->remote_fin) {
        stream_reset(st, "DATA in the wrong state");
        return;
    }
    if (sw_noise_decrypt(&st->rx, NULL, 0, data + 2, mlen, pt) != SW_OK) {
        stream_reset(st, "record does not authenticate");
        return;
    }
    consumed(st, MC_REC_OVERHEAD);
    deliver(st, pt, mlen - SW_NOISE_TAG);
}

static void on_fin(struct mc_stream *st)
{
    if (st->state != MC_ST_ESTABLISHED || st->remote_fin) {
        stream_reset(st, "FIN in the wrong state");
        return;
    }
    st->remote_fin = true;
    if (st->in.len == 0)
        after_flush(st);
}

static void on_close(struct mc_stream *st, uint8_t code)
{
    sw_log_debug("stream %u closed by the peer (%s)", st->id,
                 code == SW_CLOSE_NORMAL          ? "normal"
                 : code == SW_CLOSE_NOT_A_MEMBER ? "not a member"
                                                 : "reset");
    if (st->state == MC_ST_ESTABLISHED && code == 0 && st->in.len > 0) {
        st->state = MC_ST_DRAINING;
        st->user_eof = true; /* whatever the user still writes goes nowhere */
        update_events(st);
        return;
    }
    if (code == SW_CLOSE_NOT_A_MEMBER && st->initiator && st->state == MC_ST_HANDSHAKE)
        /* the listener logged its refusal; the dialing caller gets the reason */
        end_dial(st, MC_DIAL_NOT_MEMBER, 0, "the listener refused our certificate (not a member, "
                 "or a role it does not admit)");
    mc_stream_free(st, MC_DIAL_RESET);
}

void mc_stream_on_frame(struct mc_stream *st, const struct sw_msg_frame *f)
{
    switch (f->type) {
    case SW_MSG_ACCEPT: on_accept(st, f->window); break;
    case SW_MSG_REFUSE: on_refuse(st, f); break;
    case SW_MSG_DATA: on_data(st, f->data, f->data_len); break;
    case SW_MSG_WINDOW:
        st->send_credit += f->window;
        if (st->state == MC_ST_HANDSHAKE)
            hs_flush(st);
        else
            update_events(st);
        break;
    case SW_MSG_FIN: on_fin(st); break;
    case SW_MSG_CLOSE: on_close(st, f->code); break;
    default: break;
    }
}

/* ---- data from the user ---------------------------------------------------------------- */

static bool user_hung_up(int fd)
{
    struct pollfd p = { .fd = fd, .events = POLLOUT };
    return poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLERR));
}

static void on_user_eof(struct mc_stream *st)
{
    st->user_eof = true;
    if (user_hung_up(st->fd)) {
        mc_stream_close(st, 0, MC_DIAL_RESET); /* the user closed its fd */
        return;
    }
    send_simple(st, SW_MSG_FIN, 0, 0);
    st->local_fin = true;
    if (st->shut_wr) {
        mc_stream_close(st, 0, MC_DIAL_RESET);
        return;
    }
    mc_timer_arm(st->ev_timer, MC_HUP_CHECK_MS);
    update_events(st);
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    struct mc_stream *st = arg;
    uint8_t *rec = st->c->scratch;

    for (int i = 0; i < MC_READ_BUDGET; i++) {
        size_t n = mc_send_chunk(st->send_credit, MC_MAX_CHUNK);
        ssize_t r;
        if (n == 0)
            break;
        r = read(st->fd, rec + 2, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (r < 0) {
            stream_reset(st, "user socket error");
            return;
        }
        if (r == 0) {
            on_user_eof(st);
            return;
        }
        if (sw_noise_encrypt(&st->tx, NULL, 0, rec + 2, (size_t)r, rec + 2) != SW_OK) {
            stream_reset(st, "encryption failed");
            return;
        }
        sw_put_u16(rec, (uint16_t)(r + SW_NOISE_TAG));
        atomic_fetch_add(&st->c->bytes_sent, (uint64_t)r);
        if (send_record(st, rec, (size_t)r + MC_REC_OVERHEAD) != SW_OK)
            break; /* the session is closing; on_closed drops the stream */
    }
    update_events(st);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct mc_stream *st = arg;
    if (st->state == MC_ST_HANDSHAKE) {
        stream_reset(st, "KK handshake timed out");
        return;
    }
    if (st->state == MC_ST_ESTABLISHED && st->local_fin) {
        if (user_hung_up(st->fd))
            mc_stream_close(st, 0, MC_DIAL_RESET);
        else
            mc_timer_arm(st->ev_timer, MC_HUP_CHECK_MS);
    }
}

/* ---- incoming streams ------------------------------------------------------------------ */

static void refuse(struct mc_sess *ss, uint32_t id, enum sw_msg_refusal code, const char *why)
{
    struct sw_msg_frame f = { .type = SW_MSG_REFUSE, .stream = id, .code = (uint8_t)code,
                              .reason = why, .reason_len = strlen(why) };
    mc_sess_send(ss, &f);
}

int mc_stream_incoming(struct mc_sess *ss, const struct sw_msg_frame *f)
{
    struct mc_listener *l;
    struct mc_stream *st;
    char why[64];

    if ((f->stream & 1) || mc_stream_find(ss, f->stream)) {
        sw_log_warn("OPEN with stream id %u that is odd or in use", f->stream);
        return SW_EPROTO;
    }
    l = ss->c->shutting_down ? NULL : mc_listener_find(ss->c, f->dst_port);
    if (!l) {
        snprintf(why, sizeof(why), "nobody listens on port %u", f->dst_port);
        refuse(ss, f->stream, SW_REFUSE_NO_LISTENER, why);
        return SW_OK;
    }
    if (ss->c->n_incoming_hs >= MC_INCOMING_HS_MAX) {
        /* each holds a socketpair until KK ends: dialers that never finish must not
         * exhaust our file descriptors */
        refuse(ss, f->stream, SW_REFUSE_REFUSED, "too many streams in their handshake");
        return SW_OK;
    }
    if (l->n_pending >= MC_LISTEN_BACKLOG || !(st = mc_stream_new(ss, f->stream, false))) {
        refuse(ss, f->stream, SW_REFUSE_REFUSED, "listener backlog full");
        return SW_OK;
    }
    st->hs_counted = true;
    ss->c->n_incoming_hs++;
    st->peer = f->peer;
    st->local_port = f->dst_port;
    st->remote_port = f->src_port;
    st->roles = l->roles;
    st->send_credit = f->window;
    if (sw_noise_hs_init_ed25519(&st->hs, SW_NOISE_KK, SW_NOISE_RESPONDER, SW_STREAM_PROLOGUE,
                                 &ss->c->kp, &st->peer) != SW_OK) {
        mc_stream_free(st, MC_DIAL_RESET);
        refuse(ss, f->stream, SW_REFUSE_INVALID, "the dialer's key is not usable");
        return SW_OK;
    }
    st->state = MC_ST_HANDSHAKE;
    send_simple(st, SW_MSG_ACCEPT, SW_MSG_DEFAULT_WINDOW, 0);
    mc_timer_arm(st->ev_timer, MC_ACCEPT_HS_TIMEOUT_MS);
    return SW_OK;
}
