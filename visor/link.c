/* link.c — one connection carrying transport packets, on the loop thread.
 *
 * stcp links run Noise_XK (prologue "skywire-tp/1", initiator = dialer, whose message 3
 * payload is its Ed25519 key) and then seal every packet in one transport message; dmsg
 * links carry packets in plain frames because the messaging stream under them is already
 * end to end Noise_KK. Either way each message is framed u16 length || bytes
 * (common/frame.h). Frames are decoded straight out of the bufferevent's input, so an idle
 * link costs no frame buffer; a frame longer than the state allows (512 bytes while
 * handshaking) or of length 0 closes the link at once, and a handshake must finish within
 * VISOR_HANDSHAKE_MS (an inbound one must deliver message 1 within VISOR_FIRST_MESSAGE_MS;
 * a dialer told VISOR_HS_BUSY instead of message 2 says the peer is busy). Closing is
 * always deferred to a finalizer event so that visor_tm_link_closed() never runs inside
 * another callback of the same link. */
#include "visor/packet.h"
#include "common/bytes.h"
#include "common/frame.h"
#include "common/hostport.h"
#include "common/log.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void link_read_cb(struct bufferevent *bev, void *arg);
static void link_write_cb(struct bufferevent *bev, void *arg);
static void link_event_cb(struct bufferevent *bev, short what, void *arg);

static void finalize_cb(evutil_socket_t fd, short what, void *arg)
{
    struct visor_link *l = arg;

    LIST_REMOVE(l, all);
    visor_tm_link_closed(l);
    bufferevent_free(l->bev);
    event_free(l->deadline);
    event_free(l->finalizer);
    sw_noise_hs_wipe(&l->hs);
    sw_noise_cipher_wipe(&l->tx);
    sw_noise_cipher_wipe(&l->rx);
    json_object_put(l->addrs);
    free(l);
}

static void uncount(struct visor_link *l)
{
    if (l->counted) {
        l->counted = false;
        l->v->n_handshakes--;
        visor_stcp_slot_release(l);
    }
}

static void close_now(struct visor_link *l)
{
    uncount(l);
    l->state = VISOR_LINK_DEAD;
    bufferevent_disable(l->bev, EV_READ | EV_WRITE);
    evtimer_del(l->deadline);
    event_active(l->finalizer, EV_READ, 0);
}

void visor_link_close(struct visor_link *l, bool flush, const char *fmt, ...)
{
    va_list ap;

    if (l->state == VISOR_LINK_DEAD)
        return;
    if (l->state != VISOR_LINK_CLOSING) {
        l->closed_in = l->state;
        va_start(ap, fmt);
        vsnprintf(l->why, sizeof(l->why), fmt, ap);
        va_end(ap);
    }
    if (flush && l->state == VISOR_LINK_OPEN && evbuffer_get_length(bufferevent_get_output(l->bev))) {
        l->state = VISOR_LINK_CLOSING;
        bufferevent_disable(l->bev, EV_READ);
        bufferevent_setwatermark(l->bev, EV_WRITE, 0, 0);
        visor_link_set_deadline(l, 2000, "flushing before close");
        return;
    }
    close_now(l);
}

static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    struct visor_link *l = arg;
    if (l->state == VISOR_LINK_CLOSING) {
        close_now(l);
        return;
    }
    if (l->state == VISOR_LINK_HANDSHAKE && l->role == VISOR_LINK_RESPONDER && !l->first_msg)
        l->v->m_hs_first_timeouts++;
    visor_link_close(l, false, "%s timed out", l->deadline_what ? l->deadline_what : "deadline");
}

void visor_link_set_deadline(struct visor_link *l, int ms, const char *what)
{
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

    l->deadline_what = what;
    if (ms <= 0)
        evtimer_del(l->deadline);
    else
        evtimer_add(l->deadline, &tv);
}

static void set_label(struct visor_link *l)
{
    snprintf(l->label, sizeof(l->label), "%s#%llu %s%s", visor_tp_kind_name(l->kind),
             (unsigned long long)l->serial, l->role == VISOR_LINK_INITIATOR ? "to " : "from ",
             l->peer_addr);
}

/* Allocates a link around bev (which it then owns). */
static struct visor_link *link_alloc(struct visor *v, struct bufferevent *bev, enum visor_tp_kind kind,
                                     enum visor_link_role role, const char *peer_addr)
{
    struct visor_link *l = calloc(1, sizeof(*l));

    if (!l)
        return NULL;
    l->v = v;
    l->bev = bev;
    l->kind = kind;
    l->role = role;
    l->serial = ++v->next_serial;
    l->last_rx_ms = sw_mono_ms();
    snprintf(l->peer_addr, sizeof(l->peer_addr), "%s", peer_addr ? peer_addr : "?");
    set_label(l);
    l->deadline = evtimer_new(v->base, deadline_cb, l);
    l->finalizer = event_new(v->base, -1, 0, finalize_cb, l);
    if (!l->deadline || !l->finalizer) {
        if (l->deadline)
            event_free(l->deadline);
        if (l->finalizer)
            event_free(l->finalizer);
        free(l);
        return NULL;
    }
    LIST_INSERT_HEAD(&v->links, l, all);
    bufferevent_setcb(bev, link_read_cb, link_write_cb, link_event_cb, l);
    /* the write callback (visor_tm_link_writable) runs once output falls to this level */
    bufferevent_setwatermark(bev, EV_WRITE, VISOR_DISCARD_LOW, 0);
    return l;
}

static int hs_init(struct visor_link *l)
{
    bool initiator = l->role == VISOR_LINK_INITIATOR;
    return sw_noise_hs_init_ed25519(&l->hs, SW_NOISE_XK,
                                    initiator ? SW_NOISE_INITIATOR : SW_NOISE_RESPONDER,
                                    SW_NOISE_PROLOGUE_TP, &l->v->cfg.kp, initiator ? &l->remote : NULL);
}

/* Sends the handshake message of n bytes at buf + SW_FRAME_HDR_LEN, framed in place. */
static int hs_send(struct visor_link *l, uint8_t *buf, size_t n)
{
    int rc = sw_frame_header(buf, n);
    if (rc == SW_OK && bufferevent_write(l->bev, buf, n + SW_FRAME_HDR_LEN) != 0)
        rc = SW_EIO;
    if (rc == SW_OK)
        l->bytes_out += n + SW_FRAME_HDR_LEN;
    return rc;
}

/* Writes our first handshake message. */
static int hs_write(struct visor_link *l)
{
    uint8_t buf[SW_FRAME_HDR_LEN + VISOR_HS_FRAME_MAX];
    size_t n = 0;
    int rc = sw_noise_hs_write_message(&l->hs, NULL, 0, buf + SW_FRAME_HDR_LEN,
                                       VISOR_HS_FRAME_MAX, &n);
    return rc == SW_OK ? hs_send(l, buf, n) : rc;
}

static void set_nodelay(struct visor_link *l)
{
    int one = 1;
    evutil_socket_t fd = bufferevent_getfd(l->bev);
    if (fd >= 0)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static void open_link(struct visor_link *l)
{
    if (l->encrypted && sw_noise_hs_split(&l->hs, &l->tx, &l->rx)) {
        visor_link_close(l, false, "handshake split failed");
        return;
    }
    uncount(l);
    l->state = VISOR_LINK_OPEN;
    l->opened = true;
    visor_link_set_deadline(l, 0, NULL);
    visor_tm_link_ready(l);
}

/* Membership refusals: the refusing side logs one line and tells the peer why (REFUSE). */
void visor_link_refuse(struct visor_link *l, const char *why)
{
    char pk[SW_PK_HEX_LEN + 1];

    if (l->state != VISOR_LINK_OPEN || l->refused)
        return;
    l->refused = true;
    l->v->m_refused_members++;
    sw_pk_to_hex(&l->remote, pk);
    sw_log_warn("%s: refused %s: %s", l->label, pk, why);
    visor_link_send(l, VISOR_TP_PKT_REFUSE, why, strnlen(why, VISOR_REFUSE_TEXT_MAX));
    visor_link_close(l, true, "refused: %s", why);
}

/* The dialer finished the handshake but is no member: open the link just long enough to
 * send REFUSE, so its add-tp says why instead of "the peer closed the connection". */
static void refuse_dialer(struct visor_link *l, const char *why)
{
    if (sw_noise_hs_split(&l->hs, &l->tx, &l->rx)) {
        visor_link_close(l, false, "handshake split failed");
        return;
    }
    uncount(l);
    l->state = VISOR_LINK_OPEN;
    visor_link_set_deadline(l, 0, NULL);
    visor_link_refuse(l, why);
}

/* One handshake message from the peer (the protocol steps are visor_hs_read's, packet.c). */
static void hs_read(struct visor_link *l, const uint8_t *msg, size_t len)
{
    uint8_t reply[SW_FRAME_HDR_LEN + VISOR_HS_FRAME_MAX];
    struct sw_error err = { 0 };
    struct sw_pk remote = l->remote; /* the initiator's: the key it dialed */
    struct sw_cert peer;
    size_t n = 0;
    bool done = false;
    int rc;

    if (l->role == VISOR_LINK_INITIATOR && len == sizeof(VISOR_HS_BUSY) - 1 &&
        memcmp(msg, VISOR_HS_BUSY, len) == 0) {
        visor_link_close(l, false, "the peer is busy (too many handshakes pending there) and closed the "
                         "connection; try again later");
        return;
    }
    rc = visor_hs_read(&l->hs, &l->v->cfg.kp.pk, l->v->net, msg, len, reply + SW_FRAME_HDR_LEN,
                       VISOR_HS_FRAME_MAX, &n, &done, &remote, &peer, &err);
    if (rc == SW_EPERM && done && l->role == VISOR_LINK_RESPONDER) {
        l->remote = remote;
        refuse_dialer(l, err.msg);
        return;
    }
    if (rc) {
        l->refused = rc == SW_EPERM; /* our dial reached a non-member: the transport says why */
        visor_link_close(l, false, "%s", err.msg);
        return;
    }
    if (n && (rc = hs_send(l, reply, n))) {
        visor_link_close(l, false, "handshake message %u failed: %s",
                         l->role == VISOR_LINK_INITIATOR ? 3u : 2u, sw_strerror(rc));
        return;
    }
    if (l->role == VISOR_LINK_RESPONDER && !l->first_msg) {
        /* message 1 is in: the rest of the whole handshake's time */
        int64_t left = VISOR_HANDSHAKE_MS - sw_ms_since(l->hs_start_ms);
        l->first_msg = true;
        visor_link_set_deadline(l, left > 1 ? (int)left : 1, "handshake");
    }
    if (!done)
        return;
    if (l->role == VISOR_LINK_RESPONDER)
        l->remote = remote;
    if (l->v->net) {
        l->peer_cert = peer;
        l->has_peer_cert = true;
    }
    open_link(l);
}

static void packet_frame(struct visor_link *l, uint8_t *frame, size_t len)
{
    size_t plen = len;

    if (l->encrypted) {
        if (sw_noise_decrypt(&l->rx, NULL, 0, frame, len, frame)) {
            visor_link_close(l, false, "protocol error: a message does not decrypt");
            return;
        }
        plen = len - SW_NOISE_TAG;
    }
    if (plen == 0) {
        visor_link_close(l, false, "protocol error: empty packet");
        return;
    }
    visor_tm_link_packet(l, frame, plen);
}

static void link_read_cb(struct bufferevent *bev, void *arg)
{
    struct visor_link *l = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    uint8_t hdr[SW_FRAME_HDR_LEN], *p;
    struct sw_error err = { 0 };
    size_t have, n, max;

    l->heard = true;
    while (l->state == VISOR_LINK_HANDSHAKE || l->state == VISOR_LINK_OPEN) {
        have = evbuffer_get_length(in);
        if (have < SW_FRAME_HDR_LEN)
            break;
        evbuffer_copyout(in, hdr, SW_FRAME_HDR_LEN);
        max = l->state == VISOR_LINK_HANDSHAKE ? VISOR_HS_FRAME_MAX : SW_FRAME_MAX;
        if (visor_frame_peek(hdr, have, max, &n, &err)) {
            visor_link_close(l, false, "protocol error: %s", err.msg);
            break;
        }
        if (n == 0) /* the frame is not complete yet */
            break;
        if (!(p = evbuffer_pullup(in, (ssize_t)(SW_FRAME_HDR_LEN + n)))) {
            visor_link_close(l, false, "out of memory");
            break;
        }
        l->bytes_in += SW_FRAME_HDR_LEN + n;
        l->last_rx_ms = sw_mono_ms();
        if (l->state == VISOR_LINK_HANDSHAKE)
            hs_read(l, p + SW_FRAME_HDR_LEN, n);
        else
            packet_frame(l, p + SW_FRAME_HDR_LEN, n);
        evbuffer_drain(in, SW_FRAME_HDR_LEN + n);
    }
    if (l->state >= VISOR_LINK_CLOSING)
        evbuffer_drain(in, evbuffer_get_length(in));
}

static void link_write_cb(struct bufferevent *bev, void *arg)
{
    struct visor_link *l = arg;
    if (l->state == VISOR_LINK_CLOSING) {
        if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
            close_now(l);
        return;
    }
    if (l->state == VISOR_LINK_OPEN)
        visor_tm_link_writable(l);
}

static void connected(struct visor_link *l)
{
    int rc;

    set_nodelay(l);
    l->state = VISOR_LINK_HANDSHAKE;
    visor_link_set_deadline(l, VISOR_HANDSHAKE_MS, "handshake");
    if ((rc = hs_write(l)))
        visor_link_close(l, false, "handshake message 1 failed: %s", sw_strerror(rc));
}

/* Connects to the next address of a resolved name (a fresh socket after a failed one).
 * False when none is left or none could be started. */
static bool connect_next(struct visor_link *l)
{
    while (l->addrs && l->next_addr < json_object_array_length(l->addrs)) {
        const char *a = json_object_get_string(json_object_array_get_idx(l->addrs, l->next_addr++));
        struct sockaddr_storage ss;
        int sslen = sizeof(ss);
        struct bufferevent *bev;

        if (!a || evutil_parse_sockaddr_port(a, (struct sockaddr *)&ss, &sslen))
            continue;
        if (l->next_addr > 1) {
            sw_log_debug("%s: trying %s", l->label, a);
            if (!(bev = bufferevent_socket_new(l->v->base, -1, BEV_OPT_CLOSE_ON_FREE)))
                return false;
            bufferevent_free(l->bev); /* safe inside its callback: libevent defers it */
            l->bev = bev;
            bufferevent_setcb(bev, link_read_cb, link_write_cb, link_event_cb, l);
            bufferevent_setwatermark(bev, EV_WRITE, VISOR_DISCARD_LOW, 0);
            bufferevent_enable(bev, EV_READ | EV_WRITE);
        }
        if (bufferevent_socket_connect(l->bev, (struct sockaddr *)&ss, sslen) == 0)
            return true;
    }
    return false;
}

static void link_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct visor_link *l = arg;

    if (what & BEV_EVENT_CONNECTED) {
        connected(l);
        return;
    }
    if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
        return;
    if (l->state == VISOR_LINK_CONNECTING) { /* a resolved name may have more addresses to try */
        const char *why = evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR());
        sw_log_debug("%s: connect failed: %s", l->label, why);
        if (!connect_next(l))
            visor_link_close(l, false, "connect failed: %s", why);
    } else if (what & BEV_EVENT_EOF) {
        if (l->state != VISOR_LINK_HANDSHAKE)
            visor_link_close(l, false, "the peer closed the connection");
        else if (l->role == VISOR_LINK_INITIATOR) /* a busy visor says so first (VISOR_HS_BUSY) */
            visor_link_close(l, false, "the peer closed the connection during the handshake");
        else
            visor_link_close(l, false, "connection closed during the handshake");
    } else {
        visor_link_close(l, false, "connection error: %s",
                         evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
    }
}

int visor_link_new(struct visor *v, evutil_socket_t fd, enum visor_tp_kind kind, enum visor_link_role role,
                   bool encrypted, const struct sw_pk *remote, const char *peer_addr,
                   struct visor_link **out)
{
    struct bufferevent *bev;
    struct visor_link *l;

    evutil_make_socket_nonblocking(fd);
    evutil_make_socket_closeonexec(fd);
    if (!(bev = bufferevent_socket_new(v->base, fd, BEV_OPT_CLOSE_ON_FREE))) {
        evutil_closesocket(fd);
        return SW_ENOMEM;
    }
    if (!(l = link_alloc(v, bev, kind, role, peer_addr))) {
        bufferevent_free(bev);
        return SW_ENOMEM;
    }
    l->encrypted = encrypted;
    if (remote)
        l->remote = *remote;
    *out = l;
    bufferevent_enable(bev, EV_READ | EV_WRITE);
    if (!encrypted) {
        l->state = VISOR_LINK_OPEN;
        l->opened = true;
        return SW_OK;
    }
    if (hs_init(l)) {
        visor_link_close(l, false, "handshake init failed");
        return SW_OK;
    }
    if (kind == VISOR_TP_STCP)
        set_nodelay(l);
    l->state = VISOR_LINK_HANDSHAKE;
    l->hs_start_ms = sw_mono_ms();
    if (role == VISOR_LINK_RESPONDER) {
        /* a slot of the listener's (stcp.c): message 1 within VISOR_FIRST_MESSAGE_MS, then the
         * rest of VISOR_HANDSHAKE_MS (hs_read) */
        l->counted = true;
        v->n_handshakes++;
        visor_link_set_deadline(l, VISOR_FIRST_MESSAGE_MS, "first handshake message");
    } else {
        visor_link_set_deadline(l, VISOR_HANDSHAKE_MS, "handshake");
    }
    if (role == VISOR_LINK_INITIATOR && hs_write(l))
        visor_link_close(l, false, "handshake message 1 failed");
    return SW_OK;
}

int visor_link_dial_stcp(struct visor *v, const char *hostport, const struct sw_pk *remote,
                         struct visor_link **out, struct sw_error *err)
{
    char host[VISOR_ADDR_MAX];
    uint16_t port;
    struct sockaddr_storage ss;
    int sslen = sizeof(ss);
    struct bufferevent *bev;
    struct visor_link *l;

    if (sw_hostport_parse(hostport, 0, host, sizeof(host), &port) || port == 0)
        return sw_error_set(err, SW_EINVAL, "'%s' is not host:port", hostport);
    if (!(bev = bufferevent_socket_new(v->base, -1, BEV_OPT_CLOSE_ON_FREE)))
        return sw_error_set(err, SW_ENOMEM, "out of memory");
    if (!(l = link_alloc(v, bev, VISOR_TP_STCP, VISOR_LINK_INITIATOR, hostport))) {
        bufferevent_free(bev);
        return sw_error_set(err, SW_ENOMEM, "out of memory");
    }
    l->encrypted = true;
    l->remote = *remote;
    l->state = VISOR_LINK_CONNECTING;
    *out = l;
    if (hs_init(l)) {
        visor_link_close(l, false, "the remote key does not convert to X25519");
        return SW_OK;
    }
    visor_link_set_deadline(l, VISOR_HANDSHAKE_MS, "connect");
    bufferevent_enable(bev, EV_READ | EV_WRITE);
    if (evutil_parse_sockaddr_port(hostport, (struct sockaddr *)&ss, &sslen) == 0) {
        if (bufferevent_socket_connect(bev, (struct sockaddr *)&ss, sslen) != 0 &&
            l->state == VISOR_LINK_CONNECTING)
            visor_link_close(l, false, "connect to %s failed", hostport);
    } else if (visor_resolve_host(v, l->serial, host, port)) { /* a name: off the loop */
        visor_link_close(l, false, "cannot start resolving %s", host);
    }
    return SW_OK;
}

void visor_link_resolved(struct visor *v, struct visor_cmd *c)
{
    struct visor_link *l;

    LIST_FOREACH(l, &v->links, all)
        if (l->serial == c->n)
            break;
    if (!l || l->state != VISOR_LINK_CONNECTING)
        goto out; /* closed meanwhile (deadline, shutdown) */
    if (c->status) {
        visor_link_close(l, false, "cannot resolve %s: %s", l->peer_addr, c->why);
        goto out;
    }
    l->addrs = c->body; /* the link's now */
    c->body = NULL;
    l->next_addr = 0;
    if (!connect_next(l) && l->state == VISOR_LINK_CONNECTING)
        visor_link_close(l, false, "connect to %s failed", l->peer_addr);
out:
    visor_cmd_release(&v->q, c);
}

int visor_link_send(struct visor_link *l, uint8_t type, const void *body, size_t len)
{
    struct evbuffer *out;
    struct evbuffer_iovec iov;
    size_t total = SW_FRAME_HDR_LEN + 1 + len + (l->encrypted ? SW_NOISE_TAG : 0);
    uint8_t *p;

    if (l->state != VISOR_LINK_OPEN)
        return SW_EIO;
    if (1 + len > VISOR_TP_PKT_MAX)
        return SW_ERANGE;
    out = bufferevent_get_output(l->bev);
    if (evbuffer_get_length(out) > VISOR_LINK_MAX_OUTPUT) {
        visor_link_close(l, false, "the peer stopped reading (%zu bytes queued)", evbuffer_get_length(out));
        return SW_EIO;
    }
    if (evbuffer_reserve_space(out, (ssize_t)total, &iov, 1) != 1 || iov.iov_len < total) {
        visor_link_close(l, false, "out of memory");
        return SW_EIO;
    }
    p = iov.iov_base;
    sw_put_u16(p, (uint16_t)(total - SW_FRAME_HDR_LEN));
    p[SW_FRAME_HDR_LEN] = type;
    if (len)
        memcpy(p + SW_FRAME_HDR_LEN + 1, body, len);
    if (l->encrypted &&
        sw_noise_encrypt(&l->tx, NULL, 0, p + SW_FRAME_HDR_LEN, 1 + len, p + SW_FRAME_HDR_LEN)) {
        visor_link_close(l, false, "encryption failed (nonce exhausted)");
        return SW_EIO;
    }
    iov.iov_len = total;
    evbuffer_commit_space(out, &iov, 1);
    l->bytes_out += total;
    return SW_OK;
}

size_t visor_link_output_len(const struct visor_link *l)
{
    return evbuffer_get_length(bufferevent_get_output(l->bev));
}

void visor_link_free_all(struct visor *v)
{
    struct visor_link *l;

    while ((l = LIST_FIRST(&v->links))) {
        LIST_REMOVE(l, all);
        uncount(l);
        bufferevent_free(l->bev);
        event_free(l->deadline);
        event_free(l->finalizer);
        sw_noise_hs_wipe(&l->hs);
        sw_noise_cipher_wipe(&l->tx);
        sw_noise_cipher_wipe(&l->rx);
        json_object_put(l->addrs);
        free(l);
    }
}
