/* hv_proto.c — encoding and decoding of hypervisor link messages (see hv_proto.h). */
#include "common/hv_proto.h"
#include "common/bytes.h"
#include "common/err.h"
#include "common/stream_io.h"

#include <stdbool.h>
#include <string.h>

static bool method_ok(const char *s, size_t n)
{
    if (n == 0 || n > SW_HV_MAX_METHOD)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < 'A' || s[i] > 'Z')
            return false;
    return true;
}

static bool path_ok(const char *s, size_t n)
{
    if (n == 0 || n > SW_HV_MAX_PATH || s[0] != '/')
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return false;
    return true;
}

static int decode_req(struct sw_reader *r, struct sw_hv_msg *m)
{
    uint8_t mlen = 0;
    uint16_t plen = 0;

    if (sw_read_u8(r, &mlen) || mlen == 0 || mlen > SW_HV_MAX_METHOD ||
        sw_read_bytes(r, m->method, mlen))
        return SW_EPROTO;
    m->method[mlen] = '\0';
    if (!method_ok(m->method, mlen) || sw_read_u16(r, &plen) || plen == 0 || plen > SW_HV_MAX_PATH ||
        sw_read_bytes(r, m->path, plen))
        return SW_EPROTO;
    m->path[plen] = '\0';
    return path_ok(m->path, plen) ? SW_OK : SW_EPROTO;
}

static int decode_body(struct sw_reader *r, struct sw_hv_msg *m)
{
    uint32_t blen = 0;

    if (sw_read_u32(r, &blen) || blen > SW_HV_MAX_BODY)
        return SW_EPROTO;
    m->body = NULL;
    m->body_len = blen;
    if (blen && sw_read_view(r, &m->body, blen))
        return SW_EPROTO;
    return SW_OK;
}

int sw_hv_msg_decode(const uint8_t *data, size_t len, struct sw_hv_msg *m)
{
    struct sw_reader r;

    memset(m, 0, sizeof(*m));
    sw_reader_init(&r, data, len);
    if (sw_read_u8(&r, &m->type) || sw_read_u32(&r, &m->id))
        return SW_EPROTO;
    switch (m->type) {
    case SW_HV_REQ:
        if (decode_req(&r, m) || decode_body(&r, m))
            return SW_EPROTO;
        break;
    case SW_HV_RESP:
        if (sw_read_u16(&r, &m->status) || m->status < 100 || m->status > 599 || decode_body(&r, m))
            return SW_EPROTO;
        break;
    case SW_HV_PING:
    case SW_HV_PONG:
        break;
    default:
        return SW_EPROTO;
    }
    return sw_reader_done(&r) ? SW_OK : SW_EPROTO;
}

static int check_fields(const struct sw_hv_msg *m, size_t *mlen, size_t *plen)
{
    *mlen = strnlen(m->method, sizeof(m->method));
    *plen = strnlen(m->path, sizeof(m->path));
    if (m->type < SW_HV_REQ || m->type > SW_HV_PONG)
        return SW_EINVAL;
    if ((m->type == SW_HV_REQ || m->type == SW_HV_RESP) &&
        (m->body_len > SW_HV_MAX_BODY || (m->body_len && !m->body)))
        return SW_EINVAL;
    if (m->type == SW_HV_REQ && (!method_ok(m->method, *mlen) || !path_ok(m->path, *plen)))
        return SW_EINVAL;
    if (m->type == SW_HV_RESP && (m->status < 100 || m->status > 599))
        return SW_EINVAL;
    return SW_OK;
}

int sw_hv_msg_encode(const struct sw_hv_msg *m, struct sw_buf *out)
{
    uint8_t hdr[SW_HV_RECORD_HDR + 5], mid[8];
    size_t mlen, plen, total = 5;
    int rc;

    if ((rc = check_fields(m, &mlen, &plen)))
        return rc;
    if (m->type == SW_HV_REQ)
        total += 1 + mlen + 2 + plen + 4 + m->body_len;
    else if (m->type == SW_HV_RESP)
        total += 2 + 4 + m->body_len;
    sw_put_u32(hdr, (uint32_t)total);
    hdr[4] = m->type;
    sw_put_u32(hdr + 5, m->id);
    if ((rc = sw_buf_append(out, hdr, sizeof(hdr))))
        return rc;
    if (m->type == SW_HV_REQ) {
        mid[0] = (uint8_t)mlen;
        if ((rc = sw_buf_append(out, mid, 1)) || (rc = sw_buf_append(out, m->method, mlen)))
            return rc;
        sw_put_u16(mid, (uint16_t)plen);
        if ((rc = sw_buf_append(out, mid, 2)) || (rc = sw_buf_append(out, m->path, plen)))
            return rc;
    } else if (m->type == SW_HV_RESP) {
        sw_put_u16(mid, m->status);
        if ((rc = sw_buf_append(out, mid, 2)))
            return rc;
    }
    if (m->type == SW_HV_REQ || m->type == SW_HV_RESP) {
        sw_put_u32(mid, (uint32_t)m->body_len);
        if ((rc = sw_buf_append(out, mid, 4)) ||
            (m->body_len && (rc = sw_buf_append(out, m->body, m->body_len))))
            return rc;
    }
    return SW_OK;
}

int sw_hv_record_peek(const uint8_t *buf, size_t len, const uint8_t **msg, size_t *msg_len,
                      size_t *used)
{
    int rc = sw_record_peek(buf, len, SW_HV_MAX_RECORD, msg, msg_len, used);

    return rc == SW_ERANGE ? SW_EPROTO : rc;
}
