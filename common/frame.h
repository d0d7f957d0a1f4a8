/* frame.h — length-prefixed framing of Noise messages on byte streams (SPEC §2).
 *
 * Wire format of every handshake and transport message: a 2-byte big-endian length, then
 * that many bytes. Length 0 is rejected (SW_EPROTO): no Noise message is empty (the shortest
 * is a bare 16-byte transport tag), so a zero length means a broken or hostile peer.
 *
 * struct sw_frame_reader is an incremental decoder fed with whatever a socket read returned;
 * it owns a fixed buffer of 2 + 65535 bytes (about 64 KiB: embed it in a heap object rather
 * than a small stack), never allocates, and fails sticky: after SW_EPROTO every later feed
 * fails too and the connection should be dropped. Not thread-safe. */
#ifndef SW_FRAME_H
#define SW_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SW_FRAME_HDR_LEN 2
#define SW_FRAME_MAX 65535

struct sw_frame_reader {
    size_t max;      /* largest accepted frame body */
    size_t have;     /* bytes buffered, header included */
    bool complete;   /* buf holds a whole frame handed out by the last feed */
    bool failed;
    uint8_t buf[SW_FRAME_HDR_LEN + SW_FRAME_MAX];
};

/* max is the largest accepted body, 1..SW_FRAME_MAX; 0 or larger values mean SW_FRAME_MAX. */
void sw_frame_reader_init(struct sw_frame_reader *fr, size_t max);

/* Consumes bytes from data[len] up to the end of the first frame that completes, and sets
 * *consumed. If a frame completed, *frame points to its body (borrowed from fr, valid until
 * the next feed) and *frame_len is its length; otherwise *frame is NULL. Call again with the
 * unconsumed rest (data + *consumed) until everything is consumed.
 * SW_EPROTO (sticky) on a length of 0 or above max; SW_EINVAL on NULL arguments. */
int sw_frame_reader_feed(struct sw_frame_reader *fr, const void *data, size_t len,
                         size_t *consumed, const uint8_t **frame, size_t *frame_len);

/* Bytes of an unfinished frame buffered (0 at a frame boundary): non-zero at EOF means the
 * peer hung up mid-frame. */
size_t sw_frame_reader_pending(const struct sw_frame_reader *fr);

/* Writes the 2-byte header for a body of len bytes. SW_ERANGE unless 1 <= len <= 65535. */
int sw_frame_header(uint8_t hdr[SW_FRAME_HDR_LEN], size_t len);

/* Writes header + msg into out[cap] (msg may already sit at out + 2, or anywhere else
 * inside out: overlap is allowed). *out_len = len + 2. SW_ERANGE on a bad len or small cap. */
int sw_frame_encode(uint8_t *out, size_t cap, const uint8_t *msg, size_t len, size_t *out_len);

#endif
