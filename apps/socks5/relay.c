#include "apps/socks5/relay.h"

#include "common/clock.h"
#include "common/err.h"
#include "common/socks5.h"
#include "common/stream_io.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int sx_read_msg(int fd, uint8_t *buf, size_t cap, size_t *have, int timeout_ms,
                sx_parse_fn parse, void *ctx, size_t *used)
{
    struct sw_io_limit lim = sw_io_within(timeout_ms, NULL);

    for (;;) {
        size_t n;
        int rc = parse(buf, *have, used, ctx);
        if (rc != SW_SOCKS5_MORE)
            return rc;
        if (*have >= cap)
            return SW_ERANGE;
        if ((rc = sw_io_read_some(fd, buf + *have, cap - *have, lim, &n)))
            return rc == SW_ENOTFOUND ? SW_EIO : rc;
        *have += n;
    }
}

void sx_consume(uint8_t *buf, size_t *have, size_t used)
{
    memmove(buf, buf + used, *have - used);
    *have -= used;
}

static uint8_t rep_for_errno(int e)
{
    switch (e) {
    case ECONNREFUSED:
        return SW_SOCKS5_REP_REFUSED;
    case ENETUNREACH:
    case ENETDOWN:
        return SW_SOCKS5_REP_NET_UNREACHABLE;
    case EHOSTUNREACH:
    case EHOSTDOWN:
    case ETIMEDOUT:
        return SW_SOCKS5_REP_HOST_UNREACHABLE;
    default:
        return SW_SOCKS5_REP_FAILURE;
    }
}

static int connect_one(const struct addrinfo *ai, int timeout_ms, int *err)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
    int e = 0;
    socklen_t el = sizeof(e);

    if (fd < 0) {
        *err = errno;
        return -1;
    }
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        if (errno != EINPROGRESS) {
            *err = errno;
            goto fail;
        }
        if (sw_io_wait(fd, POLLOUT, sw_io_within(timeout_ms, NULL))) {
            *err = ETIMEDOUT;
            goto fail;
        }
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) || e) {
            *err = e ? e : errno;
            goto fail;
        }
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    return fd;
fail:
    close(fd);
    return -1;
}

int sx_resolve(const char *host, uint16_t port, struct addrinfo **res, uint8_t *rep)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_NUMERICSERV };
    char ps[8];

    *res = NULL;
    snprintf(ps, sizeof(ps), "%u", port);
    if (getaddrinfo(host, ps, &hints, res) != 0 || !*res) {
        *res = NULL;
        *rep = SW_SOCKS5_REP_HOST_UNREACHABLE;
        return SW_ENOTFOUND;
    }
    return SW_OK;
}

int sx_connect_addrs(const struct addrinfo *const addrs[], size_t n, int timeout_ms, uint8_t *rep)
{
    int fd = -1, e = EHOSTUNREACH;

    for (size_t i = 0; i < n && fd < 0; i++)
        fd = connect_one(addrs[i], timeout_ms, &e);
    if (fd < 0)
        *rep = rep_for_errno(e);
    return fd;
}


/* ---- splice ----------------------------------------------------------------------------- */

/* One direction of the relay: bytes read from `from` wait in buf until written to `to`.
 * The route connection is reliable, ordered and flow-controlled end to end (visor/app/app.h):
 * a side that stops reading stops its writer, so this buffer is all a direction holds here,
 * and an EOF is a half-close in both worlds (shutdown(SHUT_WR) on a TCP socket sends a FIN,
 * on the route connection the visor sends its own; either way the other way stays open). */
#define SX_BUF_CAP (128u << 10)
#define SX_IDLE_MS (30 * 60 * 1000)

struct sx_dir {
    int from, to;
    uint8_t *buf;
    size_t off, len;
    bool eof;  /* from reached its end */
    bool shut; /* ... and to's write side is shut down, every byte before it written */
};

static bool again(void)
{
    return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
}

/* Room at the tail of d->buf, moving what waits to the front when the tail got short. */
static size_t room(struct sx_dir *d)
{
    if (d->len == 0)
        d->off = 0;
    else if (d->off > 0 && SX_BUF_CAP - d->off - d->len < SX_BUF_CAP / 4) {
        memmove(d->buf, d->buf + d->off, d->len);
        d->off = 0;
    }
    return SX_BUF_CAP - d->off - d->len;
}

/* The events d wants on from (POLLIN) and on to (POLLOUT); shuts to's write side down once
 * from ended and everything is written. */
static void wants(struct sx_dir *d, short *ev_from, short *ev_to)
{
    if (d->eof && d->len == 0 && !d->shut) {
        shutdown(d->to, SHUT_WR);
        d->shut = true;
    }
    if (!d->eof && room(d) > 0)
        *ev_from |= POLLIN;
    if (d->len > 0)
        *ev_to |= POLLOUT;
}

/* Reads from d->from when ready, writes to d->to when ready. -1 on a failed socket (a reset,
 * or a write to a side that closed): the relay is cut short. */
static int move(struct sx_dir *d, short ev_from, short rev_from, short ev_to, short rev_to)
{
    ssize_t n;

    if ((ev_from & POLLIN) && (rev_from & (POLLIN | POLLHUP | POLLERR))) {
        n = recv(d->from, d->buf + d->off + d->len, SX_BUF_CAP - d->off - d->len, MSG_DONTWAIT);
        if (n > 0)
            d->len += (size_t)n;
        else if (n == 0)
            d->eof = true;
        else if (!again())
            return -1;
    }
    if ((ev_to & POLLOUT) && (rev_to & (POLLOUT | POLLHUP | POLLERR)) && d->len > 0) {
        n = send(d->to, d->buf + d->off, d->len, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0) {
            d->off += (size_t)n;
            d->len -= (size_t)n;
        } else if (n < 0 && !again()) {
            return -1;
        }
    }
    return 0;
}

static int splice_loop(struct sx_dir *up, struct sx_dir *down, int local, int route)
{
    int64_t last = sw_mono_ms(); /* the last time anything moved */

    for (;;) {
        /* up: local -> route; down: route -> local */
        short up_in = 0, up_out = 0, down_in = 0, down_out = 0;
        struct pollfd pf[2];
        int rc;

        wants(up, &up_in, &up_out);
        wants(down, &down_in, &down_out);
        if (up->shut && down->shut)
            return 0;
        pf[0] = (struct pollfd){ .fd = local, .events = (short)(up_in | down_out) };
        pf[1] = (struct pollfd){ .fd = route, .events = (short)(down_in | up_out) };
        for (int i = 0; i < 2; i++)
            if (!pf[i].events)
                pf[i].fd = -1; /* a hang-up there must not wake us while nothing is wanted */
        rc = poll(pf, 2, 1000);
        if (rc < 0 && errno != EINTR)
            return -1;
        if (rc <= 0) {
            if (sw_ms_since(last) > SX_IDLE_MS)
                return -1;
            continue;
        }
        last = sw_mono_ms();
        if (move(up, up_in, pf[0].revents, up_out, pf[1].revents) ||
            move(down, down_in, pf[1].revents, down_out, pf[0].revents))
            return -1;
    }
}

int sx_splice(int local, int route, const uint8_t *local_pre, size_t local_pre_len,
              const uint8_t *route_pre, size_t route_pre_len)
{
    struct sx_dir up = { .from = local, .to = route }, down = { .from = route, .to = local };
    int rc = -1;

    up.buf = malloc(SX_BUF_CAP);
    down.buf = malloc(SX_BUF_CAP);
    if (!up.buf || !down.buf || local_pre_len > SX_BUF_CAP || route_pre_len > SX_BUF_CAP)
        goto out;
    if (local_pre_len)
        memcpy(up.buf, local_pre, local_pre_len);
    if (route_pre_len)
        memcpy(down.buf, route_pre, route_pre_len);
    up.len = local_pre_len;
    down.len = route_pre_len;
    rc = splice_loop(&up, &down, local, route);
out:
    if (rc != 0) { /* the TCP side learns that it was cut short: a reset, not a clean end */
        struct linger lg = { .l_onoff = 1, .l_linger = 0 };
        setsockopt(local, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    }
    free(up.buf);
    free(down.buf);
    return rc;
}
