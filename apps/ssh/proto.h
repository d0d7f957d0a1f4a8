/* proto.h — the SSH apps' wire protocol (apps/ssh/README.md, docs/wire-formats.md "SSH
 * apps"): pure encode/decode, no I/O, so the unit test and the fuzz target link it alone.
 *
 * Route connection (SSH-cli <-> SSH): a stream of frames
 *     u8 type | u32 length (BE) | payload[length]     length <= SSH_FRAME_MAX
 * Local socket (SSH-cli <-> SSH-client): one request and one answer (SOCK_SEQPACKET).
 *
 * Parsers read through struct sw_reader; parsed frames borrow the caller's buffer. */
#ifndef SW_SSH_PROTO_H
#define SW_SSH_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/keys.h"

#define SSH_PROTO_VERSION 2       /* REQUEST (1: ACK frames both ways) */
#define SSH_LOCAL_VERSION 1       /* the local socket's request */
#define SSH_HDR_LEN 5
#define SSH_FRAME_MAX 32768       /* payload cap of any frame */
#define SSH_TERM_MAX 64
#define SSH_CMD_MAX 16384
#define SSH_ERRTEXT_MAX 512
#define SSH_DIM_MAX 10000         /* rows / cols */
#define SSH_WINDOW (256u * 1024)  /* stdin bytes in flight (sent, not yet acknowledged) */
#define SSH_MORE 1                /* parse: need more bytes */

enum ssh_ftype {
    SSH_F_REQUEST = 0x01,   /* client: mode, term, size, command (first frame) */
    SSH_F_STDIN = 0x02,     /* client: bytes for the child's stdin (1..cap) */
    SSH_F_STDIN_EOF = 0x03, /* client: stdin reached EOF (empty) */
    SSH_F_RESIZE = 0x04,    /* client: u16 rows | u16 cols */
    SSH_F_ACK = 0x05,       /* server: u32 stdin bytes consumed (window credit) */
    SSH_F_STDOUT = 0x11,    /* server: child's stdout (or the PTY) */
    SSH_F_STDERR = 0x12,    /* server: child's stderr (exec mode) */
    SSH_F_EXIT = 0x13,      /* server: u8 kind | u8 value; last frame */
    SSH_F_ERROR = 0x14,     /* server: text (1..512 bytes); last frame */
};

enum ssh_mode { SSH_MODE_SHELL = 1, SSH_MODE_EXEC = 2 };
enum ssh_exit_kind { SSH_EXIT_CODE = 0, SSH_EXIT_SIGNAL = 1 };

struct ssh_frame {
    uint8_t type;
    const uint8_t *data; /* borrowed from the parsed buffer */
    size_t len;
};

struct ssh_request {
    uint8_t mode;                 /* enum ssh_mode */
    uint16_t rows, cols;          /* shell: 1..SSH_DIM_MAX; exec: ignored (0) */
    char term[SSH_TERM_MAX + 1];  /* [A-Za-z0-9._+-]*, may be empty */
    char cmd[SSH_CMD_MAX + 1];    /* exec: 1..SSH_CMD_MAX bytes, no NUL; shell: empty */
};

/* One frame from buf[0..len). SW_OK with *used = header + payload; SSH_MORE when incomplete;
 * SW_EINVAL for an unknown type, SW_ERANGE for a length over SSH_FRAME_MAX, SW_EPROTO for a
 * length the type does not allow (stdin/stdout/stderr 1..cap, stdin_eof 0, resize/ack 4,
 * exit 2, error 1..SSH_ERRTEXT_MAX). Errors are reported as soon as the header is in. */
int ssh_frame_parse(const uint8_t *buf, size_t len, size_t *used, struct ssh_frame *f);
/* Writes header + payload into out (cap bytes). SW_ERANGE when n > SSH_FRAME_MAX or it does
 * not fit. Does not check per-type rules (the parser does). */
int ssh_frame_encode(uint8_t *out, size_t cap, size_t *len, uint8_t type, const void *data,
                     size_t n);

/* Request payload: u8 version | u8 mode | u16 rows | u16 cols | u8 term_len | term | cmd. */
int ssh_request_parse(const struct ssh_frame *f, struct ssh_request *r);
/* Encodes a whole request frame. SW_EINVAL when r breaks the rules above. */
int ssh_request_encode(uint8_t *out, size_t cap, size_t *len, const struct ssh_request *r);

int ssh_resize_parse(const struct ssh_frame *f, uint16_t *rows, uint16_t *cols);
int ssh_ack_parse(const struct ssh_frame *f, uint32_t *n);
int ssh_exit_parse(const struct ssh_frame *f, uint8_t *kind, uint8_t *value);
/* Copies the text with bytes outside printable ASCII replaced by '?' (NUL-terminated). */
int ssh_error_parse(const struct ssh_frame *f, char text[SSH_ERRTEXT_MAX + 1]);

/* Payload of a resize frame (a u32 payload is common/bytes.h's sw_put_u32). */
void ssh_u16pair_put(uint8_t out[4], uint16_t a, uint16_t b);

/* Local socket. Request: u8 version (SSH_LOCAL_VERSION) | pk[32] | u16 port BE (35 bytes).
 * Answer: u8 status (0 ok: the route fd rides along via SCM_RIGHTS; 1 error) | text
 * (error: 1..SSH_ERRTEXT_MAX bytes; ok: empty). */
#define SSH_LOCAL_REQ_LEN 35
#define SSH_LOCAL_RESP_MAX (1 + SSH_ERRTEXT_MAX)
int ssh_local_req_parse(const uint8_t *buf, size_t len, struct sw_pk *pk, uint16_t *port);
void ssh_local_req_encode(uint8_t out[SSH_LOCAL_REQ_LEN], const struct sw_pk *pk, uint16_t port);
/* SW_OK with *ok and text (error text, sanitized; "" when ok); SW_EPROTO when malformed. */
int ssh_local_resp_parse(const uint8_t *buf, size_t len, bool *ok,
                         char text[SSH_ERRTEXT_MAX + 1]);

#endif
