/* packet.h — the bytes a peer sends over a link, as pure functions (no sockets, no loop):
 * the u16 framing, one step of the stcp Noise XK handshake, and transport packets
 * (docs/visor.md "Handshake", "Transport packets"). Routing packets (types 0x10..) are
 * passed through unchecked: their bodies are router.c's (visor_rpkt_parse in rules.c).
 *
 * link.c and transport.c call these on the loop; tests/unit/test_visor_packet.c and
 * tests/fuzz/fuzz_visor_packet.c call them directly. Every read of peer bytes goes through
 * struct sw_reader (common/bytes.h) and never leaves [buf, buf + len). Pointers in the
 * outputs borrow from the input buffer. Not thread-safe only in the sense that a handshake
 * state is used by one thread at a time; the functions keep no state of their own. */
#ifndef VISOR_PACKET_H
#define VISOR_PACKET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/keys.h"
#include "common/network.h"
#include "common/noise.h"
#include "visor/visor.h"

/* ---- framing -------------------------------------------------------------------------- */

/* Looks at the start of a stream of have bytes, of which buf holds at least the first
 * min(have, 2) (the u16 big-endian length). SW_OK with *body_len = the length of the first
 * frame when the whole frame (2 + *body_len bytes) is within have, or *body_len = 0 when
 * more bytes are needed. SW_EPROTO (err: "frame length N (allowed 1..max)") when the
 * length is 0 or above max (1..SW_FRAME_MAX). */
int visor_frame_peek(const uint8_t *buf, size_t have, size_t max, size_t *body_len,
                     struct sw_error *err);

/* ---- the stcp handshake ----------------------------------------------------------------- */

/* Reads the peer's next handshake message msg[len] into hs (Noise_XK, prologue
 * skywire-tp/1; initiator = dialer) and writes our answer, if any, into reply[cap]
 * (*reply_len = 0 when there is none: message 2 for the responder, message 3 for the
 * initiator). Payloads (docs/visor.md "Handshake"): message 2 carries the responder's
 * membership certificate, message 3 the initiator's Ed25519 key followed by its certificate;
 * both certificates are empty in an open network (net NULL), where a peer's certificate is
 * ignored. In a private network the peer's certificate must admit it with role visor
 * (sw_network_admit); *peer then holds it (zeroed when net is NULL).
 * remote: the initiator passes the key it dialed (its certificate's subject); the
 * responder gets the peer's proven Ed25519 key there once the handshake is done.
 * *done is set once the handshake is finished (split it then). *reply_len, *done, *remote
 * and *peer are written only on success, except: SW_EPERM (not a member) after message 3
 * leaves the finished handshake usable with *done and *remote set, so the responder can
 * split it and tell the dialer why (a REFUSE packet). Any other failure kills hs and err
 * says why in words for the log (e.g. "handshake message 1 does not authenticate: the
 * dialer expects another key"): SW_EPROTO (out of turn, malformed), SW_ECRYPTO (does not
 * authenticate, identity mismatch), SW_EPERM (the responder is not a member: "not a member:
 * ..."), or the code of a failed write. */
int visor_hs_read(struct sw_noise_hs *hs, const struct sw_pk *local_pk, struct sw_network *net,
                  const uint8_t *msg, size_t len, uint8_t *reply, size_t cap, size_t *reply_len,
                  bool *done, struct sw_pk *remote, struct sw_cert *peer, struct sw_error *err);

/* ---- transport packets --------------------------------------------------------------- */

struct visor_packet {
    uint8_t type;
    bool known;              /* ENTRY_SIG..CLOSE; false: routing or unknown (body unchecked) */
    const uint8_t *body;     /* everything after the type byte (borrowed; NULL if empty) */
    size_t body_len;
    const uint8_t *sig;      /* ENTRY_SIG: SW_SIG_LEN bytes (borrowed) */
    uint64_t token;          /* PING, PONG */
    uint8_t reason;          /* CLOSE */
    /* CERT: body/body_len are the certificate (SW_CERT_MIN_LEN..SW_CERT_MAX_LEN bytes, its
     * fields unchecked here); REFUSE: body/body_len the reason text (1..VISOR_REFUSE_TEXT_MAX
     * bytes, unchecked: print it through the log's escaping) */
};

/* Parses one packet (the plaintext of one transport message). SW_OK for every well-formed
 * packet of a known type (ENTRY_SIG, PING, PONG, DISCARD, CLOSE, CERT, REFUSE) and for every packet of
 * another type (known = false: routing packets go to the router, which checks their body;
 * the rest are ignored). SW_EPROTO, with err "packet type 0xTT with a N-byte body" or
 * "empty packet" / "packet of N bytes (at most 65519)", when pkt is empty, longer than
 * VISOR_TP_PKT_MAX, or of a known type with a body of the wrong length: the receiver closes the
 * link. *out is written only on success. */
int visor_packet_parse(const uint8_t *pkt, size_t len, struct visor_packet *out,
                       struct sw_error *err);

#endif
