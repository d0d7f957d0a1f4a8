/* wire.c — frames between two skychats: u32 big-endian length (1..SC_FRAME_MAX) + JSON. */
#include "apps/skychat/chat.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define SC_FRAME_REST_MS 5000

int sc_frame_write(int fd, const char *json, size_t len)
{
    unsigned char hdr[4] = { (unsigned char)(len >> 24), (unsigned char)(len >> 16),
                             (unsigned char)(len >> 8), (unsigned char)len };
    struct iovec iov[2] = { { hdr, 4 }, { (void *)json, len } };
    struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };
    size_t left = 4 + len;

    if (len == 0 || len > SC_FRAME_MAX)
        return SW_ERANGE;
    while (left) {
        ssize_t n = sendmsg(fd, &mh, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return SW_EIO;
        left -= (size_t)n;
        while (n > 0 && mh.msg_iovlen) {
            size_t take = (size_t)n < mh.msg_iov->iov_len ? (size_t)n : mh.msg_iov->iov_len;
            mh.msg_iov->iov_base = (char *)mh.msg_iov->iov_base + take;
            mh.msg_iov->iov_len -= take;
            n -= (ssize_t)take;
            if (mh.msg_iov->iov_len == 0) {
                mh.msg_iov++;
                mh.msg_iovlen--;
            }
        }
    }
    return SW_OK;
}

/* Waits for input on fd: 1 ready, 0 timeout, -1 error/stopping. timeout_ms < 0: forever. */
static int wait_in(int fd, int timeout_ms)
{
    uint64_t deadline = timeout_ms < 0 ? UINT64_MAX : sc_now_ms() + (uint64_t)timeout_ms;

    for (;;) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        uint64_t now = sc_now_ms();
        int slice, r;

        if (sc_stopping())
            return -1;
        if (now >= deadline)
            return 0;
        slice = deadline - now > 500 ? 500 : (int)(deadline - now);
        r = poll(&p, 1, slice);
        if (r < 0 && errno != EINTR)
            return -1;
        if (r > 0)
            return 1;
    }
}

static int read_full(int fd, void *buf, size_t len, int first_ms)
{
    size_t have = 0;
    uint64_t rest_deadline = 0;

    while (have < len) {
        int w, ms = first_ms;
        ssize_t n;

        if (have) {
            uint64_t now = sc_now_ms();
            if (!rest_deadline)
                rest_deadline = now + SC_FRAME_REST_MS;
            ms = now >= rest_deadline ? 0 : (int)(rest_deadline - now);
        }
        if ((w = wait_in(fd, ms)) <= 0)
            return w == 0 ? SW_ETIMEDOUT : SW_EIO;
        n = read(fd, (char *)buf + have, len - have);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n <= 0)
            return SW_EIO;
        have += (size_t)n;
    }
    return SW_OK;
}

int sc_frame_read(int fd, int first_ms, char **out, size_t *len)
{
    unsigned char hdr[4];
    uint32_t n;
    char *buf;
    int rc;

    if ((rc = read_full(fd, hdr, 4, first_ms)))
        return rc;
    n = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
    if (n == 0 || n > SC_FRAME_MAX)
        return SW_EPROTO;
    if (!(buf = malloc(n + 1)))
        return SW_ENOMEM;
    /* the rest of a started frame must follow within SC_FRAME_REST_MS */
    if ((rc = read_full(fd, buf, n, SC_FRAME_REST_MS))) {
        free(buf);
        return rc;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return SW_OK;
}
