/* frame_io.c — SSH frames over a blocking stream fd (frame_io.h). */
#include "apps/ssh/frame_io.h"

#include "common/err.h"
#include "common/stream_io.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int ssh_rbuf_fill(struct ssh_rbuf *rb, int fd)
{
    ssize_t n;

    if (rb->pending) { /* make room: the last frame has been used */
        memmove(rb->buf, rb->buf + rb->pending, rb->have - rb->pending);
        rb->have -= rb->pending;
        rb->pending = 0;
    }
    if (rb->have == sizeof(rb->buf))
        return SW_OK; /* a full frame is in; the caller parses it first */
    n = read(fd, rb->buf + rb->have, sizeof(rb->buf) - rb->have);
    if (n > 0) {
        rb->have += (size_t)n;
        return SW_OK;
    }
    if (n == 0)
        return SW_ENOTFOUND;
    return errno == EINTR || errno == EAGAIN ? SW_OK : SW_EIO;
}

int ssh_rbuf_next(struct ssh_rbuf *rb, struct ssh_frame *f)
{
    size_t used = 0;
    int rc;

    if (rb->pending) {
        memmove(rb->buf, rb->buf + rb->pending, rb->have - rb->pending);
        rb->have -= rb->pending;
        rb->pending = 0;
    }
    rc = ssh_frame_parse(rb->buf, rb->have, &used, f);
    if (rc == SW_OK)
        rb->pending = used;
    return rc;
}

int ssh_send(int fd, uint8_t type, const void *data, size_t n)
{
    uint8_t buf[SSH_HDR_LEN + SSH_FRAME_MAX];
    size_t len;

    if (ssh_frame_encode(buf, sizeof(buf), &len, type, data, n))
        return SW_ERANGE;
    return sw_io_write_all(fd, buf, len, SW_IO_NO_LIMIT);
}

int ssh_send_data(int fd, uint8_t type, const void *data, size_t n)
{
    const uint8_t *p = data;

    while (n > 0) {
        size_t k = n < SSH_FRAME_MAX ? n : SSH_FRAME_MAX;
        if (ssh_send(fd, type, p, k))
            return SW_EIO;
        p += k;
        n -= k;
    }
    return SW_OK;
}

int ssh_send_error(int fd, const char *fmt, ...)
{
    char text[SSH_ERRTEXT_MAX + 1];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (n <= 0)
        return SW_EINVAL;
    return ssh_send(fd, SSH_F_ERROR, text, strlen(text));
}
