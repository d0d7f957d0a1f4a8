/* frame_io.h — reading and writing SSH frames (proto.h) on a blocking stream fd (the route
 * connection). Shared by SSH and SSH-cli.
 *
 * struct ssh_rbuf is caller-owned (about 33 KiB: allocate it, do not put it on a small
 * stack); a frame returned by ssh_rbuf_next borrows its buffer until the next call. */
#ifndef SW_SSH_FRAME_IO_H
#define SW_SSH_FRAME_IO_H

#include <stddef.h>
#include <stdint.h>

#include "apps/ssh/proto.h"

struct ssh_rbuf {
    uint8_t buf[SSH_HDR_LEN + SSH_FRAME_MAX];
    size_t have;    /* bytes in buf */
    size_t pending; /* bytes of the frame handed out last; dropped on the next call */
};

/* One read(2) into the buffer: SW_OK, SW_ENOTFOUND on EOF, SW_EIO on error (EINTR and
 * EAGAIN are SW_OK with nothing read). */
int ssh_rbuf_fill(struct ssh_rbuf *rb, int fd);
/* The next complete frame: SW_OK, SSH_MORE (fill first), or the parser's error. */
int ssh_rbuf_next(struct ssh_rbuf *rb, struct ssh_frame *f);

/* Writes one frame (n <= SSH_FRAME_MAX) completely, however long it takes
 * (sw_io_write_all of common/stream_io.h): SW_OK or SW_EIO. */
int ssh_send(int fd, uint8_t type, const void *data, size_t n);
/* Data of any length as frames of at most SSH_FRAME_MAX bytes (n may be 0: nothing sent). */
int ssh_send_data(int fd, uint8_t type, const void *data, size_t n);
/* printf-style ERROR frame (text cut to SSH_ERRTEXT_MAX). */
int ssh_send_error(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
