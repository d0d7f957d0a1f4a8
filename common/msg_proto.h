/* msg_proto.h — frames of the messaging session protocol (docs/messaging.md §2).
 *
 * A frame is the plaintext of one Noise transport message: type u8, stream id u32, body.
 * sw_msg_frame_decode checks the exact body length of every type with a bounded reader and
 * never reads outside the input; decoded pointers (data, reason) borrow from the input. */
#ifndef SW_MSG_PROTO_H
#define SW_MSG_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/keys.h"

#define SW_MSG_PROLOGUE "skywire-msg/1"
#define SW_STREAM_PROLOGUE "skywire-stream/1"
#define SW_MSG_FRAME_HEADER 5
#define SW_MSG_MAX_PLAINTEXT (65535 - 16)
#define SW_MSG_MAX_DATA (SW_MSG_MAX_PLAINTEXT - SW_MSG_FRAME_HEADER)
#define SW_MSG_DEFAULT_WINDOW (256u * 1024u)
#define SW_MSG_REASON_MAX 255

enum sw_msg_type {
    SW_MSG_OPEN = 0x01,
    SW_MSG_ACCEPT = 0x02,
    SW_MSG_REFUSE = 0x03,
    SW_MSG_DATA = 0x04,
    SW_MSG_WINDOW = 0x05,
    SW_MSG_FIN = 0x06,
    SW_MSG_CLOSE = 0x07,
    SW_MSG_PING = 0x08,
    SW_MSG_PONG = 0x09,
    SW_MSG_GOAWAY = 0x0a,
};

enum sw_msg_refusal {
    SW_REFUSE_NO_LISTENER = 1,
    SW_REFUSE_PEER_OFFLINE = 2,
    SW_REFUSE_SERVER_FULL = 3,
    SW_REFUSE_TIMEOUT = 4,
    SW_REFUSE_INVALID = 5,
    SW_REFUSE_REFUSED = 6,
};

enum sw_msg_goaway {
    SW_GOAWAY_SHUTDOWN = 0,
    SW_GOAWAY_SERVER_FULL = 1,
    SW_GOAWAY_REPLACED = 2,
    SW_GOAWAY_PROTOCOL_ERROR = 3,
    SW_GOAWAY_IDLE_TIMEOUT = 4,
    SW_GOAWAY_NOT_A_MEMBER = 5, /* private network: the client's certificate was refused */
};

/* CLOSE codes; any other non-zero value is a reset too. */
enum sw_msg_close_code {
    SW_CLOSE_NORMAL = 0,
    SW_CLOSE_RESET = 1,
    SW_CLOSE_NOT_A_MEMBER = 2, /* private network: the KK peer's certificate was refused */
};

struct sw_msg_frame {
    uint8_t type;
    uint32_t stream;
    /* OPEN */
    struct sw_pk peer;
    uint16_t dst_port, src_port;
    /* OPEN, ACCEPT: initial window; WINDOW: increment */
    uint32_t window;
    /* REFUSE, CLOSE, GOAWAY */
    uint8_t code;
    const char *reason; /* REFUSE: not NUL-terminated; reason_len bytes */
    size_t reason_len;
    /* DATA */
    const uint8_t *data;
    size_t data_len;
    /* PING, PONG */
    uint64_t token;
};

/* SW_EPROTO (err says why) for an unknown type, a wrong body length, a zero window
 * increment, empty DATA or a session frame with a non-zero stream id (and vice versa). */
int sw_msg_frame_decode(const uint8_t *buf, size_t len, struct sw_msg_frame *f, struct sw_error *err);
/* Encodes f into out (cap >= SW_MSG_MAX_PLAINTEXT is always enough); returns the length,
 * or 0 if f is invalid (e.g. DATA longer than SW_MSG_MAX_DATA). */
size_t sw_msg_frame_encode(const struct sw_msg_frame *f, uint8_t *out, size_t cap);

const char *sw_msg_refusal_name(int code);
const char *sw_msg_goaway_name(int code);

#endif
