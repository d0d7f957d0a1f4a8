/* hv_proto.h — messages of the visor <-> hypervisor link (docs/hypervisor.md).
 *
 * The link is TCP + Noise_XK (prologue SW_HV_PROLOGUE, the visor initiates and proves its
 * Ed25519 key in message 3, see hv_chan.h). Inside the Noise transport messages flows a
 * stream of records: u32 big-endian length L (1..SW_HV_MAX_RECORD), then L bytes of one
 * message. A record may span many Noise messages and one Noise message may hold parts of
 * several records. A message is:
 *   u8 type | u32 id | body by type:
 *     REQ  (1): u8 mlen (1..7) | method (A-Z) | u16 plen (1..SW_HV_MAX_PATH) | path (starts
 *               with '/', printable ASCII, no space) | u32 blen (<= SW_HV_MAX_BODY) | body
 *     RESP (2): u16 status (100..599) | u32 blen (<= SW_HV_MAX_BODY) | body
 *     PING (3), PONG (4): nothing (id is a token echoed by PONG)
 * Nothing may follow the body. Decoding goes through struct sw_reader (bounded, never reads
 * outside the record).
 *
 * Ownership: a decoded message borrows body from the record buffer (valid while it is);
 * method and path are copied into the struct. */
#ifndef SW_HV_PROTO_H
#define SW_HV_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define SW_HV_PROLOGUE "skywire-hv/1"
#define SW_HV_MAX_BODY (1u << 20)
#define SW_HV_MAX_PATH 1024
#define SW_HV_MAX_METHOD 7
#define SW_HV_MAX_RECORD (SW_HV_MAX_BODY + SW_HV_MAX_PATH + 64)
#define SW_HV_RECORD_HDR 4

enum sw_hv_type { SW_HV_REQ = 1, SW_HV_RESP = 2, SW_HV_PING = 3, SW_HV_PONG = 4 };

struct sw_hv_msg {
    uint8_t type;
    uint32_t id;
    char method[SW_HV_MAX_METHOD + 1]; /* REQ */
    char path[SW_HV_MAX_PATH + 1];     /* REQ */
    uint16_t status;                   /* RESP */
    const uint8_t *body;               /* REQ/RESP; borrowed; NULL when blen is 0 */
    size_t body_len;
};

/* Decodes one message (the L bytes of a record). SW_EPROTO on any malformed or trailing
 * byte; *m is then unspecified. */
int sw_hv_msg_decode(const uint8_t *data, size_t len, struct sw_hv_msg *m);

/* Appends one record (u32 length + message) to out. SW_EINVAL when a field is out of the
 * ranges above, SW_ENOMEM/SW_ERANGE from the buffer. */
int sw_hv_msg_encode(const struct sw_hv_msg *m, struct sw_buf *out);

/* Record framing (sw_record_peek of common/stream_io.h with this limit): if buf[0..len)
 * starts with a whole record, sets *msg and *msg_len to its message and *used to the
 * record's size; *used = 0 when more bytes are needed.
 * SW_EPROTO when the length is 0 or above SW_HV_MAX_RECORD. */
int sw_hv_record_peek(const uint8_t *buf, size_t len, const uint8_t **msg, size_t *msg_len,
                      size_t *used);

#endif
