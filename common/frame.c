/* frame.c — 2-byte big-endian length framing; see frame.h. */
#include "common/frame.h"
#include "common/bytes.h"
#include "common/err.h"

#include <string.h>

void sw_frame_reader_init(struct sw_frame_reader *fr, size_t max)
{
    fr->max = (max == 0 || max > SW_FRAME_MAX) ? SW_FRAME_MAX : max;
    fr->have = 0;
    fr->complete = false;
    fr->failed = false;
}

/* Bytes still missing from the header or, once it is known, from the body. */
static size_t wanted(const struct sw_frame_reader *fr)
{
    if (fr->have < SW_FRAME_HDR_LEN)
        return SW_FRAME_HDR_LEN - fr->have;
    return SW_FRAME_HDR_LEN + sw_get_u16(fr->buf) - fr->have;
}

int sw_frame_reader_feed(struct sw_frame_reader *fr, const void *data, size_t len,
                         size_t *consumed, const uint8_t **frame, size_t *frame_len)
{
    const uint8_t *in = data;
    size_t used = 0, n, body;
    if (!fr || !consumed || !frame || !frame_len || (!data && len))
        return SW_EINVAL;
    *consumed = 0;
    *frame = NULL;
    *frame_len = 0;
    if (fr->failed)
        return SW_EPROTO;
    if (fr->complete) { /* the previous frame was handed out; start the next */
        fr->have = 0;
        fr->complete = false;
    }
    while (used < len) {
        n = wanted(fr);
        if (n > len - used)
            n = len - used;
        memcpy(fr->buf + fr->have, in + used, n);
        fr->have += n;
        used += n;
        if (fr->have < SW_FRAME_HDR_LEN)
            continue;
        body = sw_get_u16(fr->buf);
        if (body == 0 || body > fr->max) {
            fr->failed = true;
            *consumed = used;
            return SW_EPROTO;
        }
        if (fr->have == SW_FRAME_HDR_LEN + body) {
            fr->complete = true;
            *frame = fr->buf + SW_FRAME_HDR_LEN;
            *frame_len = body;
            break;
        }
    }
    *consumed = used;
    return SW_OK;
}

size_t sw_frame_reader_pending(const struct sw_frame_reader *fr)
{
    return fr->complete ? 0 : fr->have;
}

int sw_frame_header(uint8_t hdr[SW_FRAME_HDR_LEN], size_t len)
{
    if (len == 0 || len > SW_FRAME_MAX)
        return SW_ERANGE;
    sw_put_u16(hdr, (uint16_t)len);
    return SW_OK;
}

int sw_frame_encode(uint8_t *out, size_t cap, const uint8_t *msg, size_t len, size_t *out_len)
{
    if (!out || !msg || !out_len)
        return SW_EINVAL;
    if (len == 0 || len > SW_FRAME_MAX || cap < SW_FRAME_HDR_LEN + len)
        return SW_ERANGE;
    memmove(out + SW_FRAME_HDR_LEN, msg, len); /* first: msg may start at out */
    sw_put_u16(out, (uint16_t)len);
    *out_len = SW_FRAME_HDR_LEN + len;
    return SW_OK;
}
