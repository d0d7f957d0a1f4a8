#include "apps/socks5/relay.h"

#include "common/bytes.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/socks5.h"
#include "common/stream_io.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdatomic.h>
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

#define SX_BUF_CAP (256u << 10)
#define SX_CHUNK 65535u
#define SX_RESERVE 16u          /* room kept in the route output for FIN / FINACK / CREDIT */
/* DATA bytes in flight (sent, not yet credited by the receiver) for all connections of the
 * process together. Routes forward without back-pressure: a hop drops packets when its next
 * transport has more than 1 MiB queued (docs/routing.md §6), and a lost record ends the
 * route group. Keeping every byte a process has in flight under this budget keeps any hop's
 * queue of it below that cap. */
#define SX_BUDGET (768u << 10)
/* ... and one connection's share of it, so that a reader that stalls (its bytes wait in the
 * receiving visor, not on a hop) holds back only this much of the budget. */
#define SX_CONN_WINDOW (256u << 10)
#define SX_CREDIT_STEP (32u << 10)
#define SX_BUDGET_WAIT_MS 5
#define SX_IDLE_MS (30 * 60 * 1000)

struct sbuf {
    uint8_t *p;
    size_t off, len;
};

static size_t sb_room(struct sbuf *b)
{
    if (b->off > 0) {
        memmove(b->p, b->p + b->off, b->len);
        b->off = 0;
    }
    return SX_BUF_CAP - b->len;
}

static uint8_t *sb_tail(struct sbuf *b) { return b->p + b->off + b->len; }
static uint8_t *sb_head(struct sbuf *b) { return b->p + b->off; }

static void sb_drop(struct sbuf *b, size_t n)
{
    b->off += n;
    b->len -= n;
    if (b->len == 0)
        b->off = 0;
}

static void sb_put(struct sbuf *b, const void *p, size_t n)
{
    memcpy(sb_tail(b), p, n);
    b->len += n;
}

static void put_data(struct sbuf *b, const uint8_t *p, size_t n)
{
    uint8_t h[3] = { SW_SOCKS_F_DATA };
    sw_put_u16(h + 1, (uint16_t)n);
    sb_put(b, h, 3);
    sb_put(b, p, n);
}

static void put_credit(struct sbuf *b, uint32_t v)
{
    uint8_t c[5] = { SW_SOCKS_F_CREDIT };
    sw_put_u32(c + 1, v);
    sb_put(b, c, 5);
}

static _Atomic uint64_t budget_used;

/* Takes up to want bytes of the process budget; 0 when it is exhausted. */
static size_t budget_take(size_t want)
{
    uint64_t cur = atomic_load(&budget_used);
    for (;;) {
        size_t n;
        if (cur >= SX_BUDGET)
            return 0;
        n = SX_BUDGET - cur < want ? (size_t)(SX_BUDGET - cur) : want;
        if (atomic_compare_exchange_weak(&budget_used, &cur, cur + n))
            return n;
    }
}

static void budget_give(uint64_t n)
{
    atomic_fetch_sub(&budget_used, n);
}

static bool again(void)
{
    return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
}

struct splice {
    struct sbuf rout, rin, lout; /* framed to the route, framed from it, plain to local */
    uint64_t inflight, pending_credit;
    bool l_eof, fin_sent, r_fin, finack, l_shut, r_eof;
};

/* Handles the complete frames in rin; -1 on a protocol violation. */
static int take_frames(struct splice *s, int local)
{
    while (s->rin.len > 0) {
        struct sw_socks_frame f;
        size_t used = 0;
        int rc = sw_socks_frame_parse(sb_head(&s->rin), s->rin.len, &used, &f);
        uint8_t t;

        if (rc == SW_SOCKS5_MORE)
            return 0;
        if (rc < 0)
            return -1;
        switch (f.type) {
        case SW_SOCKS_F_DATA:
            if (s->r_fin)
                return -1;
            if (sb_room(&s->lout) < f.value)
                return 0; /* wait until local takes some */
            sb_put(&s->lout, f.data, f.value);
            break;
        case SW_SOCKS_F_FIN:
            if (s->r_fin)
                return -1;
            s->r_fin = true;
            t = SW_SOCKS_F_FINACK;
            if (!s->r_eof)
                sb_put(&s->rout, &t, 1); /* within SX_RESERVE */
            break;
        case SW_SOCKS_F_FINACK:
            if (!s->fin_sent || s->finack)
                return -1;
            s->finack = true;
            break;
        case SW_SOCKS_F_CREDIT:
            if (f.value > s->inflight)
                return -1;
            s->inflight -= f.value;
            budget_give(f.value);
            break;
        }
        sb_drop(&s->rin, used);
    }
    (void)local;
    return 0;
}

static int splice_loop(struct splice *s, int local, int route)
{
    int64_t last = sw_mono_ms(); /* the last time anything moved */

    for (;;) {
        struct pollfd pf[2];
        bool l_rd, l_wr, r_rd, r_wr, starved = false;
        int rc;

        if (take_frames(s, local))
            return -1;
        if (s->r_fin && s->lout.len == 0 && !s->l_shut) {
            shutdown(local, SHUT_WR);
            s->l_shut = true;
        }
        if (s->r_eof) {
            if (!(s->r_fin && s->fin_sent))
                return -1;  /* the tunnel closed before the peer's FIN */
            s->rout.len = 0; /* nobody reads it any more */
            s->rout.off = 0;
        }
        /* credit every SX_CREDIT_STEP, and whatever is left once all that arrived has been
         * delivered, so that an idle connection holds none of the budget */
        if (s->pending_credit > 0 &&
            (s->pending_credit >= SX_CREDIT_STEP || (s->lout.len == 0 && s->rin.len == 0)) && !s->r_eof &&
            sb_room(&s->rout) >= 5 + SX_RESERVE / 2) {
            put_credit(&s->rout, (uint32_t)s->pending_credit);
            s->pending_credit = 0;
        }
        if (s->r_fin && s->l_shut && s->rout.len == 0 && (s->finack || s->r_eof))
            return 0;

        l_rd = !s->l_eof && sb_room(&s->rout) >= SX_CHUNK + 3 + SX_RESERVE;
        if (l_rd && s->inflight >= SX_CONN_WINDOW)
            l_rd = false; /* the peer's CREDIT wakes us up */
        if (l_rd && atomic_load(&budget_used) >= SX_BUDGET) {
            l_rd = false; /* poll again shortly: other connections return budget */
            starved = true;
        }
        l_wr = s->lout.len > 0;
        r_rd = !s->r_eof && sb_room(&s->rin) > 0;
        r_wr = !s->r_eof && s->rout.len > 0;
        pf[0] = (struct pollfd){ .fd = local, .events = (short)((l_rd ? POLLIN : 0) | (l_wr ? POLLOUT : 0)) };
        pf[1] = (struct pollfd){ .fd = route, .events = (short)((r_rd ? POLLIN : 0) | (r_wr ? POLLOUT : 0)) };
        if (!pf[0].events)
            pf[0].fd = -1;
        if (!pf[1].events)
            pf[1].fd = -1;
        if (pf[0].fd < 0 && pf[1].fd < 0 && !starved)
            return -1; /* nothing can move: cannot happen with a consistent state */
        rc = poll(pf, 2, starved ? SX_BUDGET_WAIT_MS : 1000);
        if (rc < 0 && errno != EINTR)
            return -1;
        if (rc <= 0) {
            if (sw_ms_since(last) > SX_IDLE_MS)
                return -1;
            continue;
        }
        last = sw_mono_ms();
        if (l_rd && pf[0].revents) {
            size_t want = SX_CONN_WINDOW - (size_t)s->inflight;
            size_t grant = budget_take(want < SX_CHUNK ? want : SX_CHUNK);
            ssize_t n = grant ? recv(local, sb_tail(&s->rout) + 3, grant, MSG_DONTWAIT) : -2;
            if (n > 0) {
                uint8_t *h = sb_tail(&s->rout);
                h[0] = SW_SOCKS_F_DATA;
                sw_put_u16(h + 1, (uint16_t)n);
                s->rout.len += 3 + (size_t)n;
                s->inflight += (uint64_t)n;
                budget_give(grant - (size_t)n);
            } else if (n == 0) {
                uint8_t t = SW_SOCKS_F_FIN;
                budget_give(grant);
                s->l_eof = true;
                sb_put(&s->rout, &t, 1);
                s->fin_sent = true;
            } else if (n == -1) {
                budget_give(grant);
                if (!again())
                    return -1;
            }
        }
        if (l_wr && pf[0].revents) {
            ssize_t n = send(local, sb_head(&s->lout), s->lout.len, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (n > 0) {
                sb_drop(&s->lout, (size_t)n);
                s->pending_credit += (uint64_t)n;
            } else if (n < 0 && !again()) {
                return -1;
            }
        }
        if (r_rd && pf[1].revents) {
            ssize_t n = recv(route, sb_tail(&s->rin), SX_BUF_CAP - s->rin.off - s->rin.len, MSG_DONTWAIT);
            if (n > 0)
                s->rin.len += (size_t)n;
            else if (n == 0 || !again())
                s->r_eof = true;
        }
        if (r_wr && !s->r_eof && pf[1].revents) {
            ssize_t n = send(route, sb_head(&s->rout), s->rout.len, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (n > 0)
                sb_drop(&s->rout, (size_t)n);
            else if (n < 0 && !again())
                s->r_eof = true;
        }
    }
}

int sx_splice(int local, int route, const uint8_t *local_pre, size_t local_pre_len,
              const uint8_t *route_pre, size_t route_pre_len)
{
    struct splice s;
    int rc = -1;

    memset(&s, 0, sizeof(s));
    s.rout.p = malloc(SX_BUF_CAP);
    s.rin.p = malloc(SX_BUF_CAP);
    s.lout.p = malloc(SX_BUF_CAP);
    if (!s.rout.p || !s.rin.p || !s.lout.p || route_pre_len > SX_BUF_CAP ||
        local_pre_len > SX_BUF_CAP / 2)
        goto out;
    while (local_pre_len > 0) {
        size_t n = local_pre_len > SX_CHUNK ? SX_CHUNK : local_pre_len;
        put_data(&s.rout, local_pre, n);
        s.inflight += n;
        atomic_fetch_add(&budget_used, (uint64_t)n);
        local_pre += n;
        local_pre_len -= n;
    }
    if (route_pre_len)
        sb_put(&s.rin, route_pre, route_pre_len);
    rc = splice_loop(&s, local, route);
    budget_give(s.inflight); /* never credited: the connection is over */
out:
    free(s.rout.p);
    free(s.rin.p);
    free(s.lout.p);
    return rc;
}
