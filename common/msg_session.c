/* msg_session.c — one Noise XK messaging session on a bufferevent; see msg_session.h.
 *
 * Life: CONNECTING (initiator, TCP connect) -> HANDSHAKE -> READY -> [DRAINING] -> DEAD.
 * DRAINING: a GOAWAY is queued; we flush it, shut our write side, discard input and wait
 * for the peer's hangup (bounded by LINGER_MS) so the GOAWAY is not lost to a reset.
 * DEAD: close_ev is active; its callback runs on_closed exactly once, then frees.
 *
 * Memory: an idle session holds this struct, a bufferevent and two events. The 64 KiB
 * frame reader exists only while a frame is partly received; the handshake state only
 * until the handshake completes. Output is sealed straight into the output evbuffer. */
#include "common/msg_session.h"
#include "common/bytes.h"
#include "common/clock.h"
#include "common/frame.h"
#include "common/hostport.h"
#include "common/netcert.h"
#include "common/noise.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define DEFAULT_HANDSHAKE_MS 5000
#define DEFAULT_IDLE_MS 60000
#define DEFAULT_PING_MS 20000
#define DEFAULT_MAX_OUTPUT ((size_t)64 << 20)
#define LINGER_MS 2000  /* DRAINING: time for the GOAWAY to leave and the peer to hang up */
#define MAX_ADDRS 4     /* resolved addresses tried in order */
#define WHY_MAX 128

enum sess_state { S_CONNECTING, S_HANDSHAKE, S_READY, S_DRAINING, S_DEAD };

/* Only while connecting: the resolved addresses still to try. */
struct connect_state {
    struct sockaddr_storage addr[MAX_ADDRS];
    socklen_t len[MAX_ADDRS];
    int n, next;
    int last_errno;
    char hostport[64];
};

struct sw_msg_session {
    struct event_base *base;
    struct bufferevent *bev;
    struct event *timer;    /* handshake deadline, then ping/idle, then linger */
    struct event *close_ev; /* runs on_closed from the loop */
    struct sw_msg_session_callbacks cb;
    void *ctx;
    struct sw_msg_session_opts opts;
    enum sess_state state;
    bool initiator;
    bool has_peer;
    bool above_half;        /* output rose above max_output/2: on_drained when it falls */
    bool ping_out;          /* a PING is unanswered */
    struct sw_noise_hs *hs; /* handshake only */
    struct sw_frame_reader *fr;
    struct connect_state *conn;
    struct sw_noise_cipher tx, rx;
    struct sw_pk local_pk, peer;
    struct sw_cert *peer_cert; /* private network: the admitted certificate of the peer */
    int64_t last_rx_ms;       /* monotonic */
    uint64_t ping_token;
    enum sw_msg_close_reason reason;
    int goaway_code;
    bool reason_set;
    char why[WHY_MAX];
    char remote[64];
};

static void readcb(struct bufferevent *bev, void *arg);
static void writecb(struct bufferevent *bev, void *arg);
static void eventcb(struct bufferevent *bev, short what, void *arg);


static void arm_timer(struct sw_msg_session *s, uint64_t ms)
{
    struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };
    evtimer_add(s->timer, &tv);
}

/* ---- closing ---------------------------------------------------------------------- */

/* First reason wins: a GOAWAY we send for a protocol error stays a protocol error even
 * if the peer then hangs up. */
static void set_reason(struct sw_msg_session *s, enum sw_msg_close_reason reason, int goaway,
                       const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void set_reason(struct sw_msg_session *s, enum sw_msg_close_reason reason, int goaway,
                       const char *fmt, ...)
{
    va_list ap;
    if (s->reason_set)
        return;
    s->reason_set = true;
    s->reason = reason;
    s->goaway_code = goaway;
    va_start(ap, fmt);
    vsnprintf(s->why, sizeof(s->why), fmt, ap);
    va_end(ap);
}

/* Stops all I/O and schedules on_closed; never calls back directly. */
static void go_dead(struct sw_msg_session *s)
{
    if (s->state == S_DEAD)
        return;
    s->state = S_DEAD;
    if (s->bev)
        bufferevent_disable(s->bev, EV_READ | EV_WRITE);
    evtimer_del(s->timer);
    event_active(s->close_ev, EV_TIMEOUT, 1);
}

static void session_free(struct sw_msg_session *s)
{
    if (s->bev)
        bufferevent_free(s->bev);
    if (s->timer)
        event_free(s->timer);
    if (s->close_ev)
        event_free(s->close_ev);
    if (s->hs) {
        sw_noise_hs_wipe(s->hs);
        free(s->hs);
    }
    free(s->fr);
    free(s->conn);
    free(s->peer_cert);
    sw_noise_cipher_wipe(&s->tx);
    sw_noise_cipher_wipe(&s->rx);
    free(s);
}

static void closed_cb(evutil_socket_t fd, short what, void *arg)
{
    struct sw_msg_session *s = arg;
    if (s->cb.on_closed)
        s->cb.on_closed(s, s->reason, s->goaway_code, s->why, s->ctx);
    session_free(s);
}

/* ---- output ----------------------------------------------------------------------- */

/* Plaintext size of f, or 0 when f cannot be sent. */
static size_t frame_len(const struct sw_msg_frame *f)
{
    size_t body;
    switch (f->type) {
    case SW_MSG_OPEN: body = SW_PK_LEN + 2 + 2 + 4; break;
    case SW_MSG_ACCEPT:
    case SW_MSG_WINDOW: body = 4; break;
    case SW_MSG_REFUSE:
        body = 2 + (f->reason_len > SW_MSG_REASON_MAX ? SW_MSG_REASON_MAX : f->reason_len);
        break;
    case SW_MSG_DATA:
        if (f->data_len == 0 || f->data_len > SW_MSG_MAX_DATA)
            return 0;
        body = f->data_len;
        break;
    case SW_MSG_FIN: body = 0; break;
    case SW_MSG_CLOSE:
    case SW_MSG_GOAWAY: body = 1; break;
    case SW_MSG_PING:
    case SW_MSG_PONG: body = 8; break;
    default: return 0;
    }
    return SW_MSG_FRAME_HEADER + body;
}

static bool overflowed(struct sw_msg_session *s)
{
    size_t n = evbuffer_get_length(bufferevent_get_output(s->bev));
    if (n > s->opts.max_output) {
        set_reason(s, SW_MSG_CLOSED_OVERFLOW, -1, "peer is not reading: %zu bytes unsent", n);
        go_dead(s);
        return true;
    }
    if (n > s->opts.max_output / 2)
        s->above_half = true;
    return false;
}

/* Encodes and encrypts f in place inside the output buffer: one copy of DATA in all. */
static int seal(struct sw_msg_session *s, const struct sw_msg_frame *f)
{
    struct evbuffer *out = bufferevent_get_output(s->bev);
    struct evbuffer_iovec v;
    size_t plen = frame_len(f);
    uint8_t *p;

    if (plen == 0 || (f->type == SW_MSG_REFUSE && f->reason_len && !f->reason) ||
        (f->type == SW_MSG_DATA && !f->data))
        return SW_EINVAL;
    if (evbuffer_reserve_space(out, (ev_ssize_t)(SW_FRAME_HDR_LEN + plen + SW_NOISE_TAG), &v, 1) < 1)
        return SW_ENOMEM;
    p = v.iov_base;
    if (sw_msg_frame_encode(f, p + SW_FRAME_HDR_LEN, plen) != plen)
        return SW_EINVAL; /* reserved space is simply not committed */
    if (sw_noise_encrypt(&s->tx, NULL, 0, p + SW_FRAME_HDR_LEN, plen, p + SW_FRAME_HDR_LEN)) {
        set_reason(s, SW_MSG_CLOSED_IO, -1, "send nonce exhausted");
        go_dead(s);
        return SW_EIO;
    }
    sw_put_u16(p, (uint16_t)(plen + SW_NOISE_TAG));
    v.iov_len = SW_FRAME_HDR_LEN + plen + SW_NOISE_TAG;
    if (evbuffer_commit_space(out, &v, 1) != 0)
        return SW_ENOMEM;
    return overflowed(s) ? SW_EIO : SW_OK;
}

static void send_session_frame(struct sw_msg_session *s, uint8_t type, uint8_t code, uint64_t token)
{
    struct sw_msg_frame f = { .type = type, .code = code, .token = token };
    seal(s, &f);
}

/* Queues GOAWAY(code) and drains; before the handshake there is no key: just close. */
static void start_goaway(struct sw_msg_session *s, uint8_t code)
{
    if (s->state != S_READY) {
        go_dead(s);
        return;
    }
    send_session_frame(s, SW_MSG_GOAWAY, code, 0);
    if (s->state == S_DEAD) /* overflowed */
        return;
    s->state = S_DRAINING;
    bufferevent_setwatermark(s->bev, EV_WRITE, 0, 0); /* writecb once fully flushed */
    evtimer_del(s->timer);
    arm_timer(s, LINGER_MS);
}

static void protocol_error(struct sw_msg_session *s, const char *why)
{
    if (s->state == S_HANDSHAKE || s->state == S_CONNECTING) {
        set_reason(s, SW_MSG_CLOSED_HANDSHAKE, -1, "handshake: %s", why);
        go_dead(s);
        return;
    }
    set_reason(s, SW_MSG_CLOSED_PROTOCOL, -1, "%s", why);
    start_goaway(s, SW_GOAWAY_PROTOCOL_ERROR);
}

/* ---- handshake -------------------------------------------------------------------- */

static int hs_write(struct sw_msg_session *s, const uint8_t *payload, size_t len)
{
    struct evbuffer *out = bufferevent_get_output(s->bev);
    struct evbuffer_iovec v;
    size_t need = sw_noise_hs_overhead(s->hs) + len, n;
    int rc;

    if (evbuffer_reserve_space(out, (ev_ssize_t)(SW_FRAME_HDR_LEN + need), &v, 1) < 1)
        return SW_ENOMEM;
    rc = sw_noise_hs_write_message(s->hs, payload, len, (uint8_t *)v.iov_base + SW_FRAME_HDR_LEN,
                                   need, &n);
    if (rc)
        return rc;
    sw_put_u16(v.iov_base, (uint16_t)n);
    v.iov_len = SW_FRAME_HDR_LEN + n;
    return evbuffer_commit_space(out, &v, 1) == 0 ? SW_OK : SW_ENOMEM;
}

static void schedule_ping(struct sw_msg_session *s)
{
    uint64_t idle = (uint64_t)sw_ms_since(s->last_rx_ms);
    uint64_t ping = (uint64_t)s->opts.ping_interval_ms, limit = (uint64_t)s->opts.idle_timeout_ms;
    if (idle < ping && ping < limit)
        arm_timer(s, ping - idle);
    else
        arm_timer(s, idle < limit ? limit - idle : 0);
}

/* Derives the transport keys; the session is READY (on_ready is the caller's business). */
static int hs_split(struct sw_msg_session *s)
{
    if (sw_noise_hs_split(s->hs, &s->tx, &s->rx)) {
        set_reason(s, SW_MSG_CLOSED_HANDSHAKE, -1, "handshake split failed");
        go_dead(s);
        return SW_ECRYPTO;
    }
    sw_noise_hs_wipe(s->hs);
    free(s->hs);
    s->hs = NULL;
    s->state = S_READY;
    s->last_rx_ms = sw_mono_ms();
    bufferevent_setwatermark(s->bev, EV_WRITE, s->opts.max_output / 2, 0);
    evtimer_del(s->timer);
    return SW_OK;
}

static void hs_finish(struct sw_msg_session *s)
{
    if (hs_split(s))
        return;
    schedule_ping(s);
    if (s->cb.on_ready)
        s->cb.on_ready(s, s->ctx);
}

/* The responder's message 3: the payload must begin with the Ed25519 key behind the
 * static key the handshake proved. */
static int hs_check_identity(struct sw_msg_session *s, const uint8_t *pl, size_t plen)
{
    if (sw_noise_check_ed25519_payload(s->hs, pl, plen, &s->peer))
        return SW_ECRYPTO;
    s->has_peer = true;
    return SW_OK;
}

/* Private network: the peer's certificate (message 2's payload for the client, the tail of
 * message 3's for the server) must admit it: a server needs role messaging-server, a
 * client visor, setup-node or service. Open network: always SW_OK. */
static int hs_admit(struct sw_msg_session *s, const uint8_t *cert, size_t len)
{
    unsigned roles = s->initiator ? SW_ROLE_BIT(SW_ROLE_MESSAGING_SERVER)
                                  : SW_ROLE_BIT(SW_ROLE_VISOR) | SW_ROLE_BIT(SW_ROLE_SETUP_NODE) |
                                    SW_ROLE_BIT(SW_ROLE_SERVICE);
    struct sw_cert c;
    struct sw_error e = { 0 };

    if (!s->opts.network)
        return SW_OK;
    if (sw_network_admit(s->opts.network, &s->peer, cert, len, roles, &c, &e)) {
        set_reason(s, SW_MSG_CLOSED_REFUSED, -1, "%s %s", s->initiator ? "server" : "client", e.msg);
        return SW_EPERM;
    }
    if (!(s->peer_cert = malloc(sizeof(*s->peer_cert)))) {
        set_reason(s, SW_MSG_CLOSED_IO, -1, "out of memory");
        return SW_ENOMEM;
    }
    *s->peer_cert = c;
    return SW_OK;
}

/* Our message 2 (server: our certificate) or 3 (client: our key, then our certificate). */
static int hs_write_ours(struct sw_msg_session *s)
{
    uint8_t pl[SW_PK_LEN + SW_CERT_MAX_LEN];
    size_t cert_len, n = 0;
    const uint8_t *cert = sw_network_own_cert(s->opts.network, &cert_len);

    if (s->initiator) {
        memcpy(pl, s->local_pk.b, SW_PK_LEN);
        n = SW_PK_LEN;
    }
    if (cert_len)
        memcpy(pl + n, cert, cert_len);
    return hs_write(s, pl, n + cert_len);
}

static void hs_on_message(struct sw_msg_session *s, const uint8_t *msg, size_t len)
{
    uint8_t small[SW_PK_LEN + SW_CERT_MAX_LEN + 64], *pl;
    size_t plen = 0;
    bool last = !s->initiator && sw_noise_hs_overhead(s->hs) == SW_NOISE_XK_MSG3_LEN;
    int rc;

    /* messages 2 and 3 carry payloads (a certificate; message 3 the key first); message 1's
     * must be empty (cap 0) */
    pl = len <= sizeof(small) ? small : malloc(len);
    if (!pl) {
        set_reason(s, SW_MSG_CLOSED_IO, -1, "out of memory");
        go_dead(s);
        return;
    }
    rc = sw_noise_hs_read_message(s->hs, msg, len, pl, s->initiator || last ? len : 0, &plen);
    if (rc == SW_OK && last)
        rc = hs_check_identity(s, pl, plen);
    if (rc) {
        if (pl != small)
            free(pl);
        set_reason(s, SW_MSG_CLOSED_HANDSHAKE, -1, "handshake message %s",
                   rc == SW_ECRYPTO ? "does not authenticate (wrong key?)" : "is malformed");
        go_dead(s);
        return;
    }
    if (s->initiator || last) /* message 2 (server's certificate) or 3 (client's, after its key) */
        rc = last ? hs_admit(s, pl + SW_PK_LEN, plen - SW_PK_LEN) : hs_admit(s, pl, plen);
    if (pl != small)
        free(pl);
    if (rc && (!last || rc == SW_ENOMEM)) {
        go_dead(s); /* the client refuses the server: no message 3 */
        return;
    }
    if (rc) {
        /* the server refuses a proven key: finish the handshake only to say why */
        if (hs_split(s) == SW_OK)
            start_goaway(s, SW_GOAWAY_NOT_A_MEMBER);
        return;
    }
    if (sw_noise_hs_my_turn(s->hs)) {
        if ((rc = hs_write_ours(s))) {
            set_reason(s, SW_MSG_CLOSED_HANDSHAKE, -1, "cannot write handshake: %s", sw_strerror(rc));
            go_dead(s);
            return;
        }
    }
    if (sw_noise_hs_finished(s->hs))
        hs_finish(s);
}

/* ---- input ------------------------------------------------------------------------ */

static void on_goaway(struct sw_msg_session *s, uint8_t code)
{
    set_reason(s, SW_MSG_CLOSED_GOAWAY, code, "peer sent GOAWAY(%s)", sw_msg_goaway_name(code));
    go_dead(s);
}

static void on_transport_message(struct sw_msg_session *s, uint8_t *msg, size_t len)
{
    struct sw_msg_frame f;
    struct sw_error err = { 0 };

    if (len < SW_NOISE_TAG || sw_noise_decrypt(&s->rx, NULL, 0, msg, len, msg)) {
        protocol_error(s, "undecryptable transport message");
        return;
    }
    if (sw_msg_frame_decode(msg, len - SW_NOISE_TAG, &f, &err)) {
        protocol_error(s, err.msg);
        return;
    }
    switch (f.type) {
    case SW_MSG_PING:
        send_session_frame(s, SW_MSG_PONG, 0, f.token);
        return;
    case SW_MSG_PONG:
        return; /* any input already counted as liveness */
    case SW_MSG_GOAWAY:
        on_goaway(s, f.code);
        return;
    default:
        if (s->cb.on_frame && s->cb.on_frame(s, &f, s->ctx) != SW_OK)
            protocol_error(s, "frame rejected");
    }
}

static bool reading(const struct sw_msg_session *s)
{
    return s->state == S_HANDSHAKE || s->state == S_READY;
}

/* Feeds the frame reader from the input buffer's chunks and handles each whole message. */
static void process_input(struct sw_msg_session *s, struct evbuffer *in)
{
    struct evbuffer_iovec v;
    const uint8_t *frame;
    size_t used, flen;

    while (reading(s) && evbuffer_get_length(in) > 0) {
        if (!s->fr) {
            if (!(s->fr = malloc(sizeof(*s->fr)))) {
                set_reason(s, SW_MSG_CLOSED_IO, -1, "out of memory");
                go_dead(s);
                return;
            }
            sw_frame_reader_init(s->fr, 0);
        }
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            return;
        if (sw_frame_reader_feed(s->fr, v.iov_base, v.iov_len, &used, &frame, &flen)) {
            protocol_error(s, "zero frame length");
            return;
        }
        evbuffer_drain(in, used);
        if (!frame)
            continue;
        /* frame points at s->fr->buf + 2, which we own: decrypt in place */
        if (s->state == S_HANDSHAKE)
            hs_on_message(s, frame, flen);
        else
            on_transport_message(s, s->fr->buf + SW_FRAME_HDR_LEN, flen);
    }
    /* Keep the 64 KiB reader only while a frame is half received. */
    if (s->fr && sw_frame_reader_pending(s->fr) == 0) {
        free(s->fr);
        s->fr = NULL;
    }
}

static void readcb(struct bufferevent *bev, void *arg)
{
    struct sw_msg_session *s = arg;
    struct evbuffer *in = bufferevent_get_input(bev);

    if (!reading(s)) { /* DRAINING: the peer's words no longer matter */
        evbuffer_drain(in, evbuffer_get_length(in));
        return;
    }
    s->last_rx_ms = sw_mono_ms();
    s->ping_out = false;
    process_input(s, in);
    if (s->state == S_DRAINING)
        evbuffer_drain(in, evbuffer_get_length(in));
}

static void writecb(struct bufferevent *bev, void *arg)
{
    struct sw_msg_session *s = arg;
    size_t n = evbuffer_get_length(bufferevent_get_output(bev));

    if (s->state == S_DRAINING) {
        if (n == 0) /* GOAWAY is out: half close, then wait for the peer's EOF */
            shutdown(bufferevent_getfd(bev), SHUT_WR);
        return;
    }
    if (s->state == S_READY && s->above_half && n <= s->opts.max_output / 2) {
        s->above_half = false;
        if (s->cb.on_drained)
            s->cb.on_drained(s, s->ctx);
    }
}

/* ---- connection events ------------------------------------------------------------ */

static void format_addr(const struct sockaddr *sa, char *out, size_t cap)
{
    char ip[INET6_ADDRSTRLEN];
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
        snprintf(out, cap, "%s:%u", ip, ntohs(a->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof(ip));
        snprintf(out, cap, "[%s]:%u", ip, ntohs(a->sin6_port));
    } else {
        snprintf(out, cap, "local");
    }
}

static void note_peer_addr(struct sw_msg_session *s, evutil_socket_t fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    memset(&ss, 0, sizeof(ss));
    if (getpeername(fd, (struct sockaddr *)&ss, &len) == 0)
        format_addr((struct sockaddr *)&ss, s->remote, sizeof(s->remote));
    else
        snprintf(s->remote, sizeof(s->remote), "unknown");
}

static void set_nodelay(evutil_socket_t fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)); /* fails on AF_UNIX: fine */
}

static int try_connect(struct sw_msg_session *s);

/* Initiator's TCP connection is up: send message 1. */
static void on_connected(struct sw_msg_session *s)
{
    int rc;
    note_peer_addr(s, bufferevent_getfd(s->bev));
    free(s->conn);
    s->conn = NULL;
    s->state = S_HANDSHAKE;
    if ((rc = hs_write(s, NULL, 0))) {
        set_reason(s, SW_MSG_CLOSED_HANDSHAKE, -1, "cannot write handshake: %s", sw_strerror(rc));
        go_dead(s);
    }
}

static void on_connect_failed(struct sw_msg_session *s, int e)
{
    bufferevent_free(s->bev);
    s->bev = NULL;
    s->conn->last_errno = e;
    if (try_connect(s) != SW_OK) {
        set_reason(s, SW_MSG_CLOSED_IO, -1, "connect to %s: %s", s->conn->hostport,
                   strerror(s->conn->last_errno ? s->conn->last_errno : ECONNREFUSED));
        go_dead(s);
    }
}

static void eventcb(struct bufferevent *bev, short what, void *arg)
{
    struct sw_msg_session *s = arg;
    int e = EVUTIL_SOCKET_ERROR();

    if (s->state == S_DEAD)
        return;
    if (s->state == S_CONNECTING) {
        if (what & BEV_EVENT_CONNECTED)
            on_connected(s);
        else
            on_connect_failed(s, e ? e : ECONNREFUSED);
        return;
    }
    if (s->state == S_DRAINING) {
        go_dead(s); /* EOF or error after our GOAWAY: done */
        return;
    }
    if (s->state == S_HANDSHAKE)
        set_reason(s, SW_MSG_CLOSED_HANDSHAKE, -1, "peer %s during the handshake",
                   (what & BEV_EVENT_EOF) ? "hung up" : "connection failed");
    else if (what & BEV_EVENT_EOF)
        set_reason(s, SW_MSG_CLOSED_EOF, -1, "peer hung up%s",
                   s->fr && sw_frame_reader_pending(s->fr) ? " mid-frame" : "");
    else
        set_reason(s, SW_MSG_CLOSED_IO, -1, "socket error: %s", strerror(e));
    go_dead(s);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct sw_msg_session *s = arg;
    uint64_t idle;

    switch (s->state) {
    case S_CONNECTING:
        set_reason(s, SW_MSG_CLOSED_IO, -1, "connect to %s timed out", s->conn->hostport);
        go_dead(s);
        return;
    case S_HANDSHAKE:
        set_reason(s, SW_MSG_CLOSED_HANDSHAKE, -1, "handshake not complete within %d ms",
                   s->opts.handshake_timeout_ms);
        go_dead(s);
        return;
    case S_DRAINING:
        go_dead(s); /* the peer did not hang up in time */
        return;
    case S_READY:
        break;
    default:
        return;
    }
    idle = (uint64_t)sw_ms_since(s->last_rx_ms);
    if (idle >= (uint64_t)s->opts.idle_timeout_ms) {
        set_reason(s, SW_MSG_CLOSED_IDLE, -1, "nothing received for %llu ms", (unsigned long long)idle);
        start_goaway(s, SW_GOAWAY_IDLE_TIMEOUT);
        return;
    }
    if (idle >= (uint64_t)s->opts.ping_interval_ms && !s->ping_out) {
        s->ping_out = true;
        send_session_frame(s, SW_MSG_PING, 0, ++s->ping_token);
        if (s->state != S_READY)
            return;
    }
    schedule_ping(s);
}

/* ---- construction ----------------------------------------------------------------- */

static struct sw_msg_session *session_new(struct event_base *base, const struct sw_msg_session_opts *opts,
                                          const struct sw_msg_session_callbacks *cb, void *ctx)
{
    struct sw_msg_session *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->base = base;
    if (cb)
        s->cb = *cb;
    s->ctx = ctx;
    if (opts)
        s->opts = *opts;
    if (s->opts.handshake_timeout_ms <= 0)
        s->opts.handshake_timeout_ms = DEFAULT_HANDSHAKE_MS;
    if (s->opts.idle_timeout_ms <= 0)
        s->opts.idle_timeout_ms = DEFAULT_IDLE_MS;
    if (s->opts.ping_interval_ms <= 0)
        s->opts.ping_interval_ms = DEFAULT_PING_MS;
    if (s->opts.max_output == 0)
        s->opts.max_output = DEFAULT_MAX_OUTPUT;
    s->goaway_code = -1;
    s->timer = evtimer_new(base, timer_cb, s);
    s->close_ev = event_new(base, -1, 0, closed_cb, s);
    s->hs = malloc(sizeof(*s->hs));
    if (!s->timer || !s->close_ev || !s->hs) {
        session_free(s);
        return NULL;
    }
    return s;
}

/* Callbacks, and reads/writes of up to one whole framed message per syscall (libevent's
 * default is 16 KiB). */
static int setup_bev(struct sw_msg_session *s)
{
    bufferevent_setcb(s->bev, readcb, writecb, eventcb, s);
    bufferevent_set_max_single_read(s->bev, SW_FRAME_HDR_LEN + SW_FRAME_MAX);
    bufferevent_set_max_single_write(s->bev, SW_FRAME_HDR_LEN + SW_FRAME_MAX);
    return bufferevent_enable(s->bev, EV_READ | EV_WRITE) == 0 ? SW_OK : SW_EIO;
}

static int attach_fd(struct sw_msg_session *s, evutil_socket_t fd)
{
    evutil_make_socket_nonblocking(fd);
    evutil_make_socket_closeonexec(fd);
    set_nodelay(fd);
    s->bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!s->bev)
        return SW_ENOMEM;
    return setup_bev(s);
}

static int start_handshake(struct sw_msg_session *s, const struct sw_keypair *local,
                           const struct sw_pk *remote, struct sw_error *err)
{
    enum sw_noise_role role = remote ? SW_NOISE_INITIATOR : SW_NOISE_RESPONDER;
    if (sw_noise_hs_init_ed25519(s->hs, SW_NOISE_XK, role, SW_MSG_PROLOGUE, local, remote))
        return sw_error_set(err, SW_EINVAL, "server key is not a valid Ed25519 public key");
    s->local_pk = local->pk;
    s->initiator = remote != NULL;
    if (remote) {
        s->peer = *remote;
        s->has_peer = true;
    }
    arm_timer(s, (uint64_t)s->opts.handshake_timeout_ms);
    return SW_OK;
}

int sw_msg_session_accept(struct event_base *base, evutil_socket_t fd, const struct sw_keypair *local,
                          const struct sw_msg_session_opts *opts,
                          const struct sw_msg_session_callbacks *cb, void *ctx,
                          struct sw_msg_session **out, struct sw_error *err)
{
    struct sw_msg_session *s;
    int rc;

    if (!base || fd < 0 || !local || !out) {
        if (fd >= 0)
            evutil_closesocket(fd);
        return sw_error_set(err, SW_EINVAL, "session: missing argument");
    }
    if (!(s = session_new(base, opts, cb, ctx))) {
        evutil_closesocket(fd);
        return sw_error_set(err, SW_ENOMEM, "session: out of memory");
    }
    if ((rc = attach_fd(s, fd))) {
        if (!s->bev)
            evutil_closesocket(fd);
        session_free(s);
        return sw_error_set(err, rc, "session: cannot set up the socket");
    }
    note_peer_addr(s, fd);
    s->state = S_HANDSHAKE;
    if ((rc = start_handshake(s, local, NULL, err))) {
        session_free(s);
        return rc;
    }
    *out = s;
    return SW_OK;
}

int sw_msg_session_connect_fd(struct event_base *base, evutil_socket_t fd,
                              const struct sw_keypair *local, const struct sw_pk *remote,
                              const struct sw_msg_session_opts *opts,
                              const struct sw_msg_session_callbacks *cb, void *ctx,
                              struct sw_msg_session **out, struct sw_error *err)
{
    struct sw_msg_session *s;
    int rc;

    if (!base || fd < 0 || !local || !remote || !out) {
        if (fd >= 0)
            evutil_closesocket(fd);
        return sw_error_set(err, SW_EINVAL, "session: missing argument");
    }
    if (!(s = session_new(base, opts, cb, ctx))) {
        evutil_closesocket(fd);
        return sw_error_set(err, SW_ENOMEM, "session: out of memory");
    }
    if ((rc = attach_fd(s, fd))) {
        if (!s->bev)
            evutil_closesocket(fd);
        session_free(s);
        return sw_error_set(err, rc, "session: cannot set up the socket");
    }
    if ((rc = start_handshake(s, local, remote, err))) {
        session_free(s);
        return rc;
    }
    s->state = S_CONNECTING;
    on_connected(s); /* already connected: message 1 now */
    *out = s;
    return SW_OK;
}

/* Resolves into s->conn; a failure is remembered and reported through on_closed. */
static void resolve(struct sw_msg_session *s, const char *host, const char *port)
{
    struct addrinfo hints, *res = NULL, *ai;
    int rc;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        set_reason(s, SW_MSG_CLOSED_IO, -1, "cannot resolve %s: %s", host, gai_strerror(rc));
        return;
    }
    for (ai = res; ai && s->conn->n < MAX_ADDRS; ai = ai->ai_next) {
        if (ai->ai_addrlen > sizeof(s->conn->addr[0]))
            continue;
        memcpy(&s->conn->addr[s->conn->n], ai->ai_addr, ai->ai_addrlen);
        s->conn->len[s->conn->n++] = (socklen_t)ai->ai_addrlen;
    }
    freeaddrinfo(res);
}

/* Starts a non-blocking connect to the next resolved address. */
static int try_connect(struct sw_msg_session *s)
{
    struct connect_state *c = s->conn;
    while (c->next < c->n) {
        const struct sockaddr *sa = (const struct sockaddr *)&c->addr[c->next];
        socklen_t len = c->len[c->next++];
        evutil_socket_t fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            c->last_errno = errno;
            continue;
        }
        set_nodelay(fd);
        if (!(s->bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE))) {
            close(fd);
            c->last_errno = ENOMEM;
            continue;
        }
        /* enable first: a refused connect may disable the events again (reported later) */
        if (setup_bev(s) == SW_OK && bufferevent_socket_connect(s->bev, sa, (int)len) == 0)
            return SW_OK;
        c->last_errno = EVUTIL_SOCKET_ERROR();
        bufferevent_free(s->bev);
        s->bev = NULL;
    }
    return SW_EIO;
}

int sw_msg_session_connect(struct event_base *base, const char *hostport, const struct sw_keypair *local,
                           const struct sw_pk *remote, const struct sw_msg_session_opts *opts,
                           const struct sw_msg_session_callbacks *cb, void *ctx,
                           struct sw_msg_session **out, struct sw_error *err)
{
    struct sw_msg_session *s;
    char host[256], port[8];
    uint16_t port_num;
    int rc;

    if (!base || !local || !remote || !out)
        return sw_error_set(err, SW_EINVAL, "session: missing argument");
    if (sw_hostport_parse(hostport, 0, host, sizeof(host), &port_num))
        return sw_error_set(err, SW_EINVAL, "server address '%s' is not host:port", hostport ? hostport : "");
    snprintf(port, sizeof(port), "%u", port_num);
    if (!(s = session_new(base, opts, cb, ctx)) || !(s->conn = calloc(1, sizeof(*s->conn)))) {
        if (s)
            session_free(s);
        return sw_error_set(err, SW_ENOMEM, "session: out of memory");
    }
    snprintf(s->conn->hostport, sizeof(s->conn->hostport), "%s", hostport);
    snprintf(s->remote, sizeof(s->remote), "%s", hostport);
    if ((rc = start_handshake(s, local, remote, err))) {
        session_free(s);
        return rc;
    }
    s->state = S_CONNECTING;
    resolve(s, host, port);
    if (s->reason_set || try_connect(s) != SW_OK) {
        set_reason(s, SW_MSG_CLOSED_IO, -1, "connect to %s: %s", hostport,
                   strerror(s->conn->last_errno ? s->conn->last_errno : EADDRNOTAVAIL));
        go_dead(s); /* reported from the loop, like every other failure */
    }
    *out = s;
    return SW_OK;
}

/* ---- public operations ------------------------------------------------------------ */

int sw_msg_session_send(struct sw_msg_session *s, const struct sw_msg_frame *f)
{
    if (!s || !f)
        return SW_EINVAL;
    if (s->state == S_DRAINING || s->state == S_DEAD)
        return SW_EIO;
    if (s->state != S_READY)
        return SW_EINVAL;
    if (f->type == SW_MSG_PING || f->type == SW_MSG_PONG || f->type == SW_MSG_GOAWAY)
        return SW_EINVAL; /* the session's own; GOAWAY goes through sw_msg_session_goaway */
    return seal(s, f);
}

void sw_msg_session_goaway(struct sw_msg_session *s, enum sw_msg_goaway code)
{
    if (!s || s->state == S_DRAINING || s->state == S_DEAD)
        return;
    set_reason(s, SW_MSG_CLOSED_LOCAL, -1, "sent GOAWAY(%s)", sw_msg_goaway_name(code));
    start_goaway(s, (uint8_t)code);
}

void sw_msg_session_close(struct sw_msg_session *s)
{
    if (!s || s->state == S_DEAD)
        return;
    set_reason(s, SW_MSG_CLOSED_LOCAL, -1, "closed locally");
    go_dead(s);
}

bool sw_msg_session_ready(const struct sw_msg_session *s)
{
    return s && s->state == S_READY;
}

const struct sw_pk *sw_msg_session_peer(const struct sw_msg_session *s)
{
    return s && s->has_peer ? &s->peer : NULL;
}

const struct sw_cert *sw_msg_session_peer_cert(const struct sw_msg_session *s)
{
    return s && s->state != S_HANDSHAKE ? s->peer_cert : NULL;
}

size_t sw_msg_session_output_len(const struct sw_msg_session *s)
{
    return s && s->bev ? evbuffer_get_length(bufferevent_get_output(s->bev)) : 0;
}

const char *sw_msg_session_remote_addr(const struct sw_msg_session *s)
{
    return s && s->remote[0] ? s->remote : "unknown";
}

void sw_msg_session_set_ctx(struct sw_msg_session *s, void *ctx)
{
    if (s)
        s->ctx = ctx;
}
