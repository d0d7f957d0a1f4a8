/* noise.h — Noise Protocol Framework (revision 34) handshakes and transport ciphers.
 *
 * Exactly two protocols (SPEC §2), built on libsodium so any conforming Noise library
 * interoperates (checked byte for byte against the cacophony test vectors):
 *   Noise_XK_25519_ChaChaPoly_SHA256   <- s ; -> e, es ; <- e, ee ; -> s, se
 *   Noise_KK_25519_ChaChaPoly_SHA256   -> s ; <- s ; -> e, es, ss ; <- e, ee, se
 * Static keys are X25519; sw_noise_hs_init_ed25519() derives them from Ed25519 identities.
 * The initiator always writes the first message.
 *
 * Use: init -> alternate write_message/read_message (sw_noise_hs_my_turn() says which)
 * until sw_noise_hs_finished() -> read sw_noise_hs_remote_static() / check the identity
 * payload -> sw_noise_hs_split() into two transport ciphers. Each message travels in one
 * frame (common/frame.h). A message is at most SW_NOISE_MAX_MSG bytes.
 *
 * Errors: SW_EINVAL misuse (wrong turn, wrong state, bad arguments); SW_ERANGE a buffer is
 * too small or a message would exceed SW_NOISE_MAX_MSG, or a nonce is exhausted;
 * SW_EPROTO a received message is malformed (short, oversize); SW_ECRYPTO authentication
 * or DH failure (tampering, wrong key, wrong prologue, low-order point). After ANY failed
 * write/read/split the handshake is dead: its secrets are wiped and every later call
 * fails. Lengths and ciphers are set only on success; on failure an output buffer may
 * hold garbage (never secrets).
 *
 * Ownership: every struct is caller-owned plain memory (no allocation, nothing to free);
 * it holds secrets, so call sw_noise_hs_wipe()/sw_noise_cipher_wipe() when done.
 * Pointers returned by accessors are borrowed from the handshake. Not thread-safe. */
#ifndef SW_NOISE_H
#define SW_NOISE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/keys.h"

#define SW_NOISE_KEY_LEN 32   /* X25519 key, cipher key */
#define SW_NOISE_HASH_LEN 32  /* SHA-256 */
#define SW_NOISE_TAG 16       /* Poly1305 tag */
#define SW_NOISE_MAX_MSG 65535
/* Largest transport plaintext: one message holds the plaintext plus its tag. */
#define SW_NOISE_MAX_PAYLOAD (SW_NOISE_MAX_MSG - SW_NOISE_TAG)

/* Handshake message sizes with an empty payload; a payload adds its own length. */
#define SW_NOISE_XK_MSG1_LEN 48 /* e(32) + tag */
#define SW_NOISE_XK_MSG2_LEN 48 /* e(32) + tag */
#define SW_NOISE_XK_MSG3_LEN 64 /* s(32+16) + tag */
#define SW_NOISE_KK_MSG1_LEN 48
#define SW_NOISE_KK_MSG2_LEN 48

/* SPEC §2 prologues (used as the exact ASCII bytes, no NUL). */
#define SW_NOISE_PROLOGUE_MSG "skywire-msg/1"
#define SW_NOISE_PROLOGUE_STREAM "skywire-stream/1"
#define SW_NOISE_PROLOGUE_TP "skywire-tp/1"
#define SW_NOISE_PROLOGUE_ROUTE "skywire-route/2"

enum sw_noise_pattern { SW_NOISE_XK, SW_NOISE_KK };
enum sw_noise_role { SW_NOISE_INITIATOR, SW_NOISE_RESPONDER };

/* One direction of a transport: key and next nonce. n never reaches 2^64-1. */
struct sw_noise_cipher {
    uint8_t k[SW_NOISE_KEY_LEN];
    uint64_t n;
};

/* Internal; public only so the handshake can live on the stack or inside a connection. */
struct sw_noise_symmetric {
    uint8_t ck[SW_NOISE_HASH_LEN];
    uint8_t h[SW_NOISE_HASH_LEN];
    struct sw_noise_cipher c;
    bool has_key;
};

/* State: zeroed memory is a dead handshake. */
enum sw_noise_hs_state { SW_NOISE_HS_DEAD = 0, SW_NOISE_HS_ACTIVE, SW_NOISE_HS_DONE, SW_NOISE_HS_SPLIT };

struct sw_noise_hs {
    struct sw_noise_symmetric ss;
    uint8_t s_sk[SW_NOISE_KEY_LEN], s_pk[SW_NOISE_KEY_LEN];
    uint8_t e_sk[SW_NOISE_KEY_LEN], e_pk[SW_NOISE_KEY_LEN];
    uint8_t rs[SW_NOISE_KEY_LEN], re[SW_NOISE_KEY_LEN];
    bool has_e, has_rs, has_re;
    uint8_t pattern, role, msg_index, state;
};

/* Starts a handshake. local_static_sk is an X25519 secret key (its public key is derived).
 * remote_static_pk is the peer's X25519 public key: required for KK and the XK initiator,
 * must be NULL for the XK responder (it learns the key from message 3). prologue may be
 * NULL when prologue_len is 0; both sides must use identical prologues. SW_EINVAL on misuse
 * (hs is then dead). */
int sw_noise_hs_init(struct sw_noise_hs *hs, enum sw_noise_pattern pattern, enum sw_noise_role role,
                     const void *prologue, size_t prologue_len,
                     const uint8_t local_static_sk[SW_NOISE_KEY_LEN],
                     const uint8_t *remote_static_pk);

/* Same with Ed25519 identities converted by libsodium (SPEC §2); prologue is a NUL-terminated
 * string such as SW_NOISE_PROLOGUE_TP. SW_EINVAL if remote does not convert. */
int sw_noise_hs_init_ed25519(struct sw_noise_hs *hs, enum sw_noise_pattern pattern,
                             enum sw_noise_role role, const char *prologue,
                             const struct sw_keypair *local, const struct sw_pk *remote);

/* Tests only: fixes the ephemeral secret key instead of drawing it from randombytes.
 * Must be called before this side writes its first message; SW_EINVAL otherwise.
 * Reusing an ephemeral destroys the handshake's security. */
int sw_noise_hs_set_ephemeral(struct sw_noise_hs *hs, const uint8_t sk[SW_NOISE_KEY_LEN]);

/* Size of the next handshake message minus its payload (SW_NOISE_*_MSG*_LEN); 0 when the
 * handshake is not active. */
size_t sw_noise_hs_overhead(const struct sw_noise_hs *hs);

/* Writes the next handshake message carrying payload (len may be 0, payload NULL then) into
 * out[cap]; *out_len = overhead + len. out must not overlap payload. */
int sw_noise_hs_write_message(struct sw_noise_hs *hs, const uint8_t *payload, size_t len,
                              uint8_t *out, size_t cap, size_t *out_len);

/* Reads the peer's next handshake message; its payload (len - overhead bytes) goes to
 * payload[cap] (NULL allowed when cap is 0). SW_EPROTO for a message shorter than the
 * overhead or longer than SW_NOISE_MAX_MSG, SW_ECRYPTO when it does not authenticate. */
int sw_noise_hs_read_message(struct sw_noise_hs *hs, const uint8_t *msg, size_t len,
                             uint8_t *payload, size_t cap, size_t *payload_len);

/* True once every handshake message has been written/read (and before split). */
bool sw_noise_hs_finished(const struct sw_noise_hs *hs);
/* True when the handshake is active and this side writes the next message. */
bool sw_noise_hs_my_turn(const struct sw_noise_hs *hs);
/* The peer's X25519 static key (borrowed), or NULL while unknown or dead. Stays available
 * after split. For the XK responder it is authenticated only once finished. */
const uint8_t *sw_noise_hs_remote_static(const struct sw_noise_hs *hs);
/* The handshake hash h (borrowed; for channel binding) once finished, also after split;
 * NULL otherwise. */
const uint8_t *sw_noise_hs_handshake_hash(const struct sw_noise_hs *hs);

/* Derives the transport ciphers (initiator's send = responder's recv) and wipes every secret
 * of hs; remote static and handshake hash remain readable. SW_EINVAL unless finished. */
int sw_noise_hs_split(struct sw_noise_hs *hs, struct sw_noise_cipher *send,
                      struct sw_noise_cipher *recv);

/* Zeroes the whole handshake (it becomes dead). Safe on any state. */
void sw_noise_hs_wipe(struct sw_noise_hs *hs);

/* SPEC §2 identity rule: the payload must begin with a 32-byte Ed25519 public key that
 * converts to the peer's authenticated static key. Call after reading XK message 3 (or any
 * message once the remote static is known). SW_EINVAL if the remote static is unknown,
 * SW_EPROTO if len < 32, SW_ECRYPTO on an invalid or mismatching key (drop the peer).
 * identity_out (may be NULL) receives the key on success. */
int sw_noise_check_ed25519_payload(const struct sw_noise_hs *hs, const uint8_t *payload,
                                   size_t len, struct sw_pk *identity_out);

/* Transport encryption: out receives len + SW_NOISE_TAG bytes (out may equal pt).
 * SW_ERANGE if len > SW_NOISE_MAX_PAYLOAD or the nonce is exhausted. ad may be NULL/0. */
int sw_noise_encrypt(struct sw_noise_cipher *c, const uint8_t *ad, size_t adlen,
                     const uint8_t *pt, size_t len, uint8_t *out);
/* Transport decryption: out receives len - SW_NOISE_TAG bytes (out may equal ct). Messages
 * must arrive in order: a replayed, reordered or tampered message is SW_ECRYPTO and leaves
 * the nonce unchanged (the nonce advances only on success); out is then garbage.
 * SW_EPROTO if len < SW_NOISE_TAG or len > SW_NOISE_MAX_MSG. */
int sw_noise_decrypt(struct sw_noise_cipher *c, const uint8_t *ad, size_t adlen,
                     const uint8_t *ct, size_t len, uint8_t *out);

void sw_noise_cipher_wipe(struct sw_noise_cipher *c);

#endif
