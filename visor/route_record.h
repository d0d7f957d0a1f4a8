/* route_record.h — the bytes of one end-to-end record on a route group, as pure functions
 * (docs/routing.md §4). No sockets, no loop: group.c and group_stream.c call them for every record,
 * tests/unit/test_visor_route_record.c and tests/fuzz/fuzz_visor_route_record.c directly.
 *
 *   record  = pn (u64 BE) || ChaCha20-Poly1305(key, nonce = pn, inner)
 *   inner   = stream:   flags u8 || seq u64 || ack u64 || window u32 || payload
 *             datagram: payload
 *
 * pn is the sender's packet number: it never repeats in a session (a resent byte travels in
 * a new record with a new pn), so every record decrypts on its own and a lost record costs
 * only itself. The receiver keeps a window of the last 256 packet numbers and refuses a
 * replayed or older one. Every read of peer bytes goes through struct sw_reader. */
#ifndef VISOR_ROUTE_RECORD_H
#define VISOR_ROUTE_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/noise.h"

#define VISOR_REC_PN_LEN 8
#define VISOR_REC_OVERHEAD (VISOR_REC_PN_LEN + SW_NOISE_TAG)
#define VISOR_REC_HDR_LEN 21 /* the stream header inside the AEAD */
#define VISOR_REC_REPLAY_BITS 256

enum visor_rec_flag {
    VISOR_REC_FIN = 0x01,   /* the payload's last byte ends this direction (seq + len is the FIN) */
    VISOR_REC_PROBE = 0x02, /* answer with an ACK (the sender's window is closed, or it resumed) */
    VISOR_REC_GAP = 0x04,   /* the sender of this ACK saw a record beyond ack: resend from ack */
    VISOR_REC_MOVE = 0x08,  /* the sender's first hop is going away: the initiator sets up a new
                             * route avoiding the transport whose 16-byte ID is the payload
                             * (not stream bytes) */
};
#define VISOR_REC_FLAGS_KNOWN (VISOR_REC_FIN | VISOR_REC_PROBE | VISOR_REC_GAP | VISOR_REC_MOVE)

struct visor_rec_hdr {
    uint8_t flags;
    uint64_t seq;            /* stream offset of the first payload byte */
    uint64_t ack;            /* next offset expected from the peer (its FIN counts as one) */
    uint32_t window;         /* bytes beyond ack this end will buffer */
    const uint8_t *payload;  /* borrowed from the input */
    size_t len;
};

/* Packet numbers seen lately (zeroed = none yet). */
struct visor_replay {
    uint64_t top;
    uint64_t bits[VISOR_REC_REPLAY_BITS / 64]; /* bit i of the window: pn top - i was seen */
    bool any;
};

/* Parses a stream inner header. SW_EPROTO (err says why) when shorter than
 * VISOR_REC_HDR_LEN, with an unknown flag, or when seq + len overflows. */
int visor_rec_hdr_parse(const uint8_t *inner, size_t len, struct visor_rec_hdr *h, struct sw_error *err);
/* Writes the VISOR_REC_HDR_LEN header bytes of h (payload not copied). */
void visor_rec_hdr_put(uint8_t *out, const struct visor_rec_hdr *h);

/* Seals inner[len] as record pn into out (VISOR_REC_OVERHEAD + len bytes; out + 8 may equal
 * inner). Returns the record's length, 0 when len is above SW_NOISE_MAX_PAYLOAD. */
size_t visor_rec_seal(struct sw_noise_cipher *tx, uint64_t pn, const uint8_t *inner, size_t len, uint8_t *out);
/* Opens a record into plain (len - VISOR_REC_OVERHEAD bytes; may equal rec + 8). SW_EPROTO
 * when too short, SW_EEXIST when its pn was seen or is older than the window, SW_ECRYPTO when
 * it does not authenticate. The replay window changes only on success. */
int visor_rec_open(struct sw_noise_cipher *rx, struct visor_replay *rw, const uint8_t *rec, size_t len,
                   uint8_t *plain, size_t *plain_len, struct sw_error *err);

/* ---- the handshake payload: what each end says in its Noise KK message ----
 *   version u8 (1) || mode u8 (0 stream, 1 datagram) || window u32 (stream: bytes it buffers) */
#define VISOR_HELLO_LEN 6
#define VISOR_HELLO_VERSION 1
enum visor_route_mode { VISOR_ROUTE_STREAM = 0, VISOR_ROUTE_DATAGRAM = 1 };
const char *visor_route_mode_name(enum visor_route_mode m);
void visor_hello_put(uint8_t out[VISOR_HELLO_LEN], enum visor_route_mode mode, uint32_t window);
/* SW_EPROTO (err says why) for a wrong length, version or mode. */
int visor_hello_parse(const uint8_t *p, size_t len, enum visor_route_mode *mode, uint32_t *window,
                      struct sw_error *err);

bool visor_replay_fresh(const struct visor_replay *rw, uint64_t pn);
void visor_replay_mark(struct visor_replay *rw, uint64_t pn);

#endif
