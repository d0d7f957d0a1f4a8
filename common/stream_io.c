/* stream_io.c — whole reads and writes with a deadline and a stop flag, and the u32-length
 * record codec (stream_io.h). */
#include "common/stream_io.h"

#include "common/bytes.h"
#include "common/clock.h"
#include "common/json.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

struct sw_io_limit sw_io_within(int timeout_ms, const atomic_bool *stop)
{
    return (struct sw_io_limit){
        .deadline = timeout_ms < 0 ? SW_IO_FOREVER : sw_deadline_ms(timeout_ms),
        .stop = stop,
    };
}

static bool stopped(const struct sw_io_limit *lim)
{
    return lim->stop && atomic_load(lim->stop);
}

int sw_io_wait(int fd, short events, struct sw_io_limit lim)
{
    for (;;) {
        struct pollfd p = { .fd = fd, .events = events };
        int slice = -1, n;

        if (stopped(&lim))
            return SW_EIO;
        if (lim.deadline != SW_IO_FOREVER && (slice = sw_ms_left(lim.deadline)) == 0)
            return SW_ETIMEDOUT;
        if (lim.stop && (slice < 0 || slice > SW_IO_STOP_POLL_MS))
            slice = SW_IO_STOP_POLL_MS;
        n = poll(&p, 1, slice);
        if (n > 0)
            return SW_OK;
        if (n < 0 && errno != EINTR)
            return SW_EIO;
    }
}

static bool would_block(void)
{
    return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
}

/* Drops n written bytes from the front of iov[0..*cnt), and any empty entries there. */
static void iov_advance(struct iovec **iov, int *cnt, size_t n)
{
    while (*cnt > 0 && (n > 0 || (*iov)->iov_len == 0)) {
        size_t take = n < (*iov)->iov_len ? n : (*iov)->iov_len;
        (*iov)->iov_base = (uint8_t *)(*iov)->iov_base + take;
        (*iov)->iov_len -= take;
        n -= take;
        if ((*iov)->iov_len == 0) {
            (*iov)++;
            (*cnt)--;
        }
    }
}

/* Writes all of iov[0..cnt) (consumed), in one system call when there is room: a record's
 * header and payload leave together. */
static int write_iov(int fd, struct iovec *iov, int cnt, const struct sw_io_limit *lim)
{
    bool sock = true;

    iov_advance(&iov, &cnt, 0);
    while (cnt > 0) {
        struct msghdr mh = { .msg_iov = iov, .msg_iovlen = (size_t)cnt };
        ssize_t w = -1;
        int rc;

        if (stopped(lim))
            return SW_EIO;
        if (sock && (w = sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT)) < 0 && errno == ENOTSOCK)
            sock = false;
        if (!sock)
            w = writev(fd, iov, cnt);
        if (w > 0) {
            iov_advance(&iov, &cnt, (size_t)w);
            continue;
        }
        if (w == 0 || !would_block())
            return SW_EIO;
        if (errno != EINTR && (rc = sw_io_wait(fd, POLLOUT, *lim)))
            return rc;
    }
    return SW_OK;
}

int sw_io_write_all(int fd, const void *data, size_t n, struct sw_io_limit lim)
{
    struct iovec iov = { .iov_base = (void *)data, .iov_len = n };

    return write_iov(fd, &iov, 1, &lim);
}

int sw_io_read_some(int fd, void *buf, size_t cap, struct sw_io_limit lim, size_t *n)
{
    bool sock = true;

    for (;;) {
        ssize_t r = -1;
        int rc;

        if (stopped(&lim))
            return SW_EIO;
        if (sock && (r = recv(fd, buf, cap, MSG_DONTWAIT)) < 0 && errno == ENOTSOCK)
            sock = false;
        if (!sock)
            r = read(fd, buf, cap);
        if (r > 0) {
            *n = (size_t)r;
            return SW_OK;
        }
        if (r == 0)
            return SW_ENOTFOUND;
        if (!would_block())
            return SW_EIO;
        if (errno != EINTR && (rc = sw_io_wait(fd, POLLIN, lim)))
            return rc;
    }
}

int sw_io_read_full(int fd, void *buf, size_t n, struct sw_io_limit lim, size_t *got)
{
    *got = 0;
    while (*got < n) {
        size_t k;
        int rc = sw_io_read_some(fd, (uint8_t *)buf + *got, n - *got, lim, &k);
        if (rc)
            return rc == SW_ENOTFOUND && *got > 0 ? SW_EIO : rc;
        *got += k;
    }
    return SW_OK;
}

/* ---- records ----------------------------------------------------------------------------- */

/* The payload length announced by a record header at r's position. */
static int read_length(struct sw_reader *r, size_t max, size_t *len)
{
    uint32_t l;
    int rc = sw_read_u32(r, &l);

    if (rc)
        return rc;
    *len = l;
    return l == 0 || l > max ? SW_ERANGE : SW_OK;
}

int sw_record_peek(const uint8_t *buf, size_t len, size_t max, const uint8_t **payload,
                   size_t *payload_len, size_t *used)
{
    struct sw_reader r;
    size_t n;
    int rc;

    *used = 0;
    if (len < SW_RECORD_HDR)
        return SW_OK;
    sw_reader_init(&r, buf, len);
    if ((rc = read_length(&r, max, &n)))
        return rc;
    if (sw_read_view(&r, payload, n))
        return SW_OK; /* not all of it yet */
    *payload_len = n;
    *used = SW_RECORD_HDR + n;
    return SW_OK;
}

int sw_record_write(int fd, const void *payload, size_t len, size_t max, struct sw_io_limit lim)
{
    uint8_t hdr[SW_RECORD_HDR];
    struct iovec iov[2] = { { hdr, sizeof(hdr) }, { (void *)payload, len } };
    struct sw_writer w;

    if (len == 0 || len > max || len > UINT32_MAX)
        return SW_ERANGE;
    sw_writer_init(&w, hdr, sizeof(hdr));
    sw_write_u32(&w, (uint32_t)len);
    return write_iov(fd, iov, 2, &lim);
}

/* The header of the next record: lim for its first byte, then the rest within rest_ms. */
static int read_header(int fd, struct sw_io_limit *lim, int rest_ms, uint8_t hdr[SW_RECORD_HDR])
{
    size_t first, got;
    int rc = sw_io_read_some(fd, hdr, SW_RECORD_HDR, *lim, &first);

    if (rc)
        return rc;
    if (rest_ms >= 0)
        lim->deadline = sw_deadline_ms(rest_ms);
    if (first == SW_RECORD_HDR)
        return SW_OK;
    rc = sw_io_read_full(fd, hdr + first, SW_RECORD_HDR - first, *lim, &got);
    return rc == SW_ENOTFOUND ? SW_EIO : rc;
}

int sw_record_read(int fd, size_t max, struct sw_io_limit lim, int rest_ms, char **out,
                   size_t *len)
{
    uint8_t hdr[SW_RECORD_HDR];
    struct sw_reader r;
    size_t n = 0, got;
    char *buf;
    int rc;

    *len = 0;
    if ((rc = read_header(fd, &lim, rest_ms, hdr)))
        return rc;
    sw_reader_init(&r, hdr, sizeof(hdr));
    rc = read_length(&r, max, &n);
    *len = n;
    if (rc)
        return rc;
    if (!(buf = malloc(n + 1)))
        return SW_ENOMEM;
    if ((rc = sw_io_read_full(fd, buf, n, lim, &got))) {
        free(buf);
        return rc == SW_ENOTFOUND ? SW_EIO : rc;
    }
    buf[n] = '\0';
    *out = buf;
    return SW_OK;
}

/* ---- JSON records ------------------------------------------------------------------------ */

int sw_json_record_send(int fd, struct json_object *obj, size_t max, struct sw_io_limit lim)
{
    size_t len;
    const char *s = sw_json_compact(obj, &len);

    if (!s)
        return SW_ENOMEM;
    return sw_record_write(fd, s, len, max, lim);
}

int sw_json_record_recv(int fd, size_t max, struct sw_io_limit lim, int rest_ms,
                        struct json_object **out, struct sw_error *err)
{
    char *text = NULL;
    size_t len;
    int rc = sw_record_read(fd, max, lim, rest_ms, &text, &len);

    if (rc)
        return rc;
    rc = sw_json_parse(text, len, out, err);
    free(text);
    return rc;
}
