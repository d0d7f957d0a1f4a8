#include "common/msg_proto.h"
#include "common/bytes.h"

#include <stdbool.h>
#include <string.h>

static bool is_session_frame(uint8_t type)
{
    return type == SW_MSG_PING || type == SW_MSG_PONG || type == SW_MSG_GOAWAY;
}

static int decode_body(struct sw_reader *r, struct sw_msg_frame *f)
{
    uint8_t n;
    switch (f->type) {
    case SW_MSG_OPEN:
        sw_read_bytes(r, f->peer.b, SW_PK_LEN);
        sw_read_u16(r, &f->dst_port);
        sw_read_u16(r, &f->src_port);
        sw_read_u32(r, &f->window);
        return SW_OK;
    case SW_MSG_ACCEPT:
        return sw_read_u32(r, &f->window);
    case SW_MSG_WINDOW:
        sw_read_u32(r, &f->window);
        return sw_reader_ok(r) && f->window == 0 ? SW_EPROTO : SW_OK;
    case SW_MSG_REFUSE:
        sw_read_u8(r, &f->code);
        if (sw_read_u8(r, &n))
            return SW_ERANGE;
        f->reason_len = n;
        return sw_read_view(r, (const uint8_t **)&f->reason, n);
    case SW_MSG_DATA:
        f->data_len = sw_reader_remaining(r);
        if (f->data_len == 0)
            return SW_EPROTO;
        return sw_read_view(r, &f->data, f->data_len);
    case SW_MSG_FIN:
        return SW_OK;
    case SW_MSG_CLOSE:
    case SW_MSG_GOAWAY:
        return sw_read_u8(r, &f->code);
    case SW_MSG_PING:
    case SW_MSG_PONG:
        return sw_read_u64(r, &f->token);
    default:
        return SW_EPROTO;
    }
}

int sw_msg_frame_decode(const uint8_t *buf, size_t len, struct sw_msg_frame *f, struct sw_error *err)
{
    struct sw_reader r;
    struct sw_msg_frame tmp;

    memset(&tmp, 0, sizeof(tmp));
    sw_reader_init(&r, buf, len);
    if (sw_read_u8(&r, &tmp.type) || sw_read_u32(&r, &tmp.stream))
        return sw_error_set(err, SW_EPROTO, "frame shorter than its header");
    if (is_session_frame(tmp.type) != (tmp.stream == 0))
        return sw_error_set(err, SW_EPROTO, "frame type 0x%02x with stream id %u", tmp.type, tmp.stream);
    if (decode_body(&r, &tmp) != SW_OK || !sw_reader_done(&r))
        return sw_error_set(err, SW_EPROTO, "malformed frame of type 0x%02x (%zu bytes)", tmp.type, len);
    *f = tmp;
    return SW_OK;
}

size_t sw_msg_frame_encode(const struct sw_msg_frame *f, uint8_t *out, size_t cap)
{
    struct sw_writer w;
    sw_writer_init(&w, out, cap);
    sw_write_u8(&w, f->type);
    sw_write_u32(&w, f->stream);
    switch (f->type) {
    case SW_MSG_OPEN:
        sw_write_bytes(&w, f->peer.b, SW_PK_LEN);
        sw_write_u16(&w, f->dst_port);
        sw_write_u16(&w, f->src_port);
        sw_write_u32(&w, f->window);
        break;
    case SW_MSG_ACCEPT:
        sw_write_u32(&w, f->window);
        break;
    case SW_MSG_WINDOW:
        if (f->window == 0)
            return 0;
        sw_write_u32(&w, f->window);
        break;
    case SW_MSG_REFUSE: {
        size_t n = f->reason_len > SW_MSG_REASON_MAX ? SW_MSG_REASON_MAX : f->reason_len;
        sw_write_u8(&w, f->code);
        sw_write_u8(&w, (uint8_t)n);
        sw_write_bytes(&w, f->reason, n);
        break;
    }
    case SW_MSG_DATA:
        if (f->data_len == 0 || f->data_len > SW_MSG_MAX_DATA)
            return 0;
        sw_write_bytes(&w, f->data, f->data_len);
        break;
    case SW_MSG_FIN:
        break;
    case SW_MSG_CLOSE:
    case SW_MSG_GOAWAY:
        sw_write_u8(&w, f->code);
        break;
    case SW_MSG_PING:
    case SW_MSG_PONG:
        sw_write_u64(&w, f->token);
        break;
    default:
        return 0;
    }
    return sw_writer_ok(&w) ? w.len : 0;
}

const char *sw_msg_refusal_name(int code)
{
    switch (code) {
    case SW_REFUSE_NO_LISTENER: return "no_listener";
    case SW_REFUSE_PEER_OFFLINE: return "peer_offline";
    case SW_REFUSE_SERVER_FULL: return "server_full";
    case SW_REFUSE_TIMEOUT: return "timeout";
    case SW_REFUSE_INVALID: return "invalid";
    case SW_REFUSE_REFUSED: return "refused";
    default: return "unknown";
    }
}

const char *sw_msg_goaway_name(int code)
{
    switch (code) {
    case SW_GOAWAY_SHUTDOWN: return "shutdown";
    case SW_GOAWAY_SERVER_FULL: return "server_full";
    case SW_GOAWAY_REPLACED: return "replaced";
    case SW_GOAWAY_PROTOCOL_ERROR: return "protocol_error";
    case SW_GOAWAY_IDLE_TIMEOUT: return "idle_timeout";
    case SW_GOAWAY_NOT_A_MEMBER: return "not_a_member";
    default: return "unknown";
    }
}
