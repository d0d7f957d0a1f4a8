/* stream_io.h — the one framing module: whole reads and writes on a stream fd with a
 * deadline and a stop flag, and the u32-length record codec (with its JSON form) on top.
 *
 * I/O: every call works the same on blocking and non-blocking fds. Sockets are written and
 * read with MSG_DONTWAIT and waited for with poll(), so a deadline holds however the fd is
 * set; other fds (pipes, ttys, files) fall back to write(2)/read(2), where the deadline holds
 * only if the fd is non-blocking. A closed peer is SW_EIO, never SIGPIPE. EINTR is retried.
 *
 * Records: u32 big-endian length L (1..max), then L bytes. max is each protocol's own limit
 * (setup protocol and rule server 64 KiB, skychat 64 KiB, hypervisor records about 1 MiB).
 * Lengths are parsed through the bounded reader (common/bytes.h); a length of 0 or above max
 * is SW_ERANGE and leaves the stream out of sync: close it. The JSON form carries one JSON
 * text per record, compact on the way out, through sw_json_parse on the way in.
 *
 * Threads: stateless; calls on different fds run in parallel. Two writers of one fd must be
 * serialised by the caller (a record goes out in one system call only when there is room).
 * Ownership: nothing here closes or keeps an fd; buffers returned through out are the
 * caller's (free / json_object_put). */
#ifndef SW_STREAM_IO_H
#define SW_STREAM_IO_H

#include <json-c/json.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define SW_IO_FOREVER (-1)     /* a deadline that never passes */
#define SW_IO_STOP_POLL_MS 250 /* how often a wait looks at its stop flag */
#define SW_RECORD_HDR 4

/* How long a call may wait. */
struct sw_io_limit {
    int64_t deadline;        /* monotonic ms (common/clock.h), or SW_IO_FOREVER */
    const atomic_bool *stop; /* NULL, or a flag looked at while waiting: once true, SW_EIO */
};

/* A limit timeout_ms from now (< 0: forever), with an optional stop flag (borrowed). */
struct sw_io_limit sw_io_within(int timeout_ms, const atomic_bool *stop);
/* Waits as long as it takes. */
#define SW_IO_NO_LIMIT ((struct sw_io_limit){ .deadline = SW_IO_FOREVER, .stop = NULL })

/* Waits until fd is ready for events (POLLIN / POLLOUT; an error or hang-up counts as
 * ready: the next read or write reports it). SW_OK, SW_ETIMEDOUT, SW_EIO (poll failed or
 * stopped). */
int sw_io_wait(int fd, short events, struct sw_io_limit lim);

/* Writes all n bytes. SW_OK; SW_ETIMEDOUT (part may be out); SW_EIO when the stream is
 * closed or fails, or when stopped. */
int sw_io_write_all(int fd, const void *data, size_t n, struct sw_io_limit lim);

/* Reads what is there (cap >= 1), waiting for at least one byte: SW_OK with 1 <= *n <= cap;
 * SW_ENOTFOUND at end of stream; SW_ETIMEDOUT; SW_EIO on a failure or when stopped. */
int sw_io_read_some(int fd, void *buf, size_t cap, struct sw_io_limit lim, size_t *n);

/* Reads exactly n bytes. *got (written on failure too) counts the bytes read.
 * SW_ENOTFOUND: end of stream before the first byte; SW_EIO: end of stream after it, a
 * failure, or stopped; SW_ETIMEDOUT. */
int sw_io_read_full(int fd, void *buf, size_t n, struct sw_io_limit lim, size_t *got);

/* ---- records: u32 length + payload ------------------------------------------------------- */

/* Cuts one record from the front of buf[0..len): SW_OK with *payload (borrowed from buf),
 * *payload_len and *used (its whole size), or SW_OK with *used = 0 when buf holds only part
 * of it; SW_ERANGE when the announced length is 0 or above max. */
int sw_record_peek(const uint8_t *buf, size_t len, size_t max, const uint8_t **payload,
                   size_t *payload_len, size_t *used);

/* Writes one record of len bytes (1..max; else SW_ERANGE and nothing is written). Errors
 * as sw_io_write_all. */
int sw_record_write(int fd, const void *payload, size_t len, size_t max, struct sw_io_limit lim);

/* Reads one record. lim bounds the wait for its first byte; once that came, the rest must
 * follow within rest_ms of it (rest_ms < 0: lim's deadline holds for the whole record).
 * On success *out is a malloc'd NUL-terminated copy of the payload (the caller frees it)
 * and *len its length. SW_ENOTFOUND: the stream ended before the record began (a clean
 * end); SW_EIO: it ended inside the record, failed, or was stopped; SW_ETIMEDOUT;
 * SW_ERANGE: the length is 0 or above max (the stream is out of sync); SW_ENOMEM.
 * On failure *len is the announced length when the header was read, else 0. */
int sw_record_read(int fd, size_t max, struct sw_io_limit lim, int rest_ms, char **out,
                   size_t *len);

/* ---- JSON records ------------------------------------------------------------------------ */

/* Writes obj compactly (sw_json_compact) as one record. SW_ENOMEM, or as sw_record_write. */
int sw_json_record_send(int fd, struct json_object *obj, size_t max, struct sw_io_limit lim);

/* Reads one record (as sw_record_read) and parses it with sw_json_parse. *out (the caller's,
 * any JSON type, NULL for "null") is written only on success. SW_EINVAL with err when the
 * payload is not JSON (SW_ENOMEM: no memory to parse it): the record was consumed and the
 * stream stays in sync. */
int sw_json_record_recv(int fd, size_t max, struct sw_io_limit lim, int rest_ms,
                        struct json_object **out, struct sw_error *err);

#endif
