/* socks5.h — SOCKS5 (RFC 1928) messages and the socksproxy tunnel header, as pure parsers
 * over byte buffers (no I/O; every read goes through struct sw_reader).
 *
 * Parsers take what has arrived so far: they return SW_OK with *used = the message's length,
 * SW_SOCKS5_MORE when the buffer holds a proper prefix of a message (read more and call again),
 * or a negative SW_E* code when the bytes can never become a valid message. Outputs are
 * written only on SW_OK.
 *
 * The tunnel (apps/socksproxy, apps/socksproxy-client) runs over one route connection per
 * SOCKS connection:
 *   client -> exit  u8 version (2) | u8 passcode length | passcode | u8 atyp | address | u16 port
 *                   (atyp/address/port as in a SOCKS5 request: 1 = IPv4 (4 bytes), 3 = domain
 *                   (u8 length 1..255, no NUL), 4 = IPv6 (16 bytes); port big-endian)
 *   exit -> client  u8 version (2) | u8 SOCKS5 reply code (0 = connected)
 * then, only after reply 0, the connection's bytes both ways as they are: the route
 * connection is reliable, ordered and flow-controlled, and shutdown(SHUT_WR) on it is the
 * half-close (visor/app/app.h). Version 1 had frames with credit and FIN here. */
#ifndef SW_SOCKS5_H
#define SW_SOCKS5_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SW_SOCKS5_MORE 1 /* incomplete: read more bytes */

enum sw_socks5_rep {
    SW_SOCKS5_REP_OK = 0,
    SW_SOCKS5_REP_FAILURE = 1,
    SW_SOCKS5_REP_NOT_ALLOWED = 2,
    SW_SOCKS5_REP_NET_UNREACHABLE = 3,
    SW_SOCKS5_REP_HOST_UNREACHABLE = 4,
    SW_SOCKS5_REP_REFUSED = 5,
    SW_SOCKS5_REP_TTL_EXPIRED = 6,
    SW_SOCKS5_REP_CMD_UNSUPPORTED = 7,
    SW_SOCKS5_REP_ATYP_UNSUPPORTED = 8,
};

enum { SW_SOCKS5_ATYP_IPV4 = 1, SW_SOCKS5_ATYP_DOMAIN = 3, SW_SOCKS5_ATYP_IPV6 = 4 };
enum { SW_SOCKS5_CMD_CONNECT = 1 };

/* A destination. host is NUL-terminated: the domain name, or the address in text form. */
struct sw_socks5_addr {
    uint8_t atyp;
    uint8_t ip[16]; /* IPv4 in the first 4 bytes */
    char host[256];
    uint16_t port;
};

struct sw_socks5_request {
    uint8_t cmd;
    struct sw_socks5_addr dst;
};

/* Greeting: u8 5 | u8 nmethods (>= 1) | methods. *no_auth: method 0 was offered.
 * SW_EPROTO for another version or nmethods 0. */
int sw_socks5_parse_greeting(const uint8_t *buf, size_t len, size_t *used, bool *no_auth);

/* Request: u8 5 | u8 cmd | u8 0 | atyp | address | u16 port. Any command is returned (the
 * caller refuses what it does not support). On failure *rep (if not NULL) is the reply code
 * to send: SW_SOCKS5_REP_ATYP_UNSUPPORTED for an unknown atyp (SW_EINVAL), FAILURE for a bad
 * version, reserved byte, empty domain or a domain with a NUL (SW_EPROTO / SW_EINVAL). */
int sw_socks5_parse_request(const uint8_t *buf, size_t len, size_t *used,
                            struct sw_socks5_request *req, uint8_t *rep);

/* A reply with the bound address 0.0.0.0:0 (10 bytes into out). */
size_t sw_socks5_encode_reply(uint8_t rep, uint8_t out[10]);

#define SW_SOCKS_TUNNEL_VERSION 2
#define SW_SOCKS_PASSCODE_MAX 255
#define SW_SOCKS_HDR_MAX (2 + 255 + 1 + 1 + 255 + 2)

/* Tunnel header (client -> exit). passcode: NUL-terminated, at most 255 bytes, no NUL inside.
 * encode: SW_ERANGE when it does not fit or the passcode is too long, SW_EINVAL for a bad
 * address. parse: SW_EPROTO for a wrong version, SW_EINVAL for a bad address. */
int sw_socks_hdr_encode(uint8_t *out, size_t cap, size_t *len, const char *passcode,
                        const struct sw_socks5_addr *dst);
int sw_socks_hdr_parse(const uint8_t *buf, size_t len, size_t *used,
                       char passcode[SW_SOCKS_PASSCODE_MAX + 1], struct sw_socks5_addr *dst);

/* Exit status (exit -> client): 2 bytes. */
int sw_socks_status_parse(const uint8_t *buf, size_t len, size_t *used, uint8_t *rep);

#endif
