/* keys.h — Ed25519 identities (libsodium).
 *
 * A public key is 32 bytes, written as 64 lowercase hex chars everywhere. A key file is JSON
 * {"public_key":"<hex>","secret_key":"<hex of 64-byte libsodium secret key>"}, mode 0600.
 * sw_keypair holds a secret: wipe it with sw_keypair_wipe() when done. Never log sk. */
#ifndef SW_KEYS_H
#define SW_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define SW_PK_LEN 32
#define SW_SK_LEN 64
#define SW_SIG_LEN 64
#define SW_PK_HEX_LEN 64
#define SW_SIG_HEX_LEN 128

struct sw_pk { uint8_t b[SW_PK_LEN]; };
struct sw_sig { uint8_t b[SW_SIG_LEN]; };
struct sw_keypair {
    struct sw_pk pk;
    uint8_t sk[SW_SK_LEN];
};

/* Initialises libsodium once; every daemon calls it first. SW_OK or SW_ECRYPTO. */
int sw_crypto_init(void);

int sw_keypair_generate(struct sw_keypair *kp);
void sw_keypair_wipe(struct sw_keypair *kp);

/* Parses a NUL-terminated 64-char hex key that is a valid Ed25519 point.
 * SW_EINVAL with err naming `what` (e.g. "edges[1]") otherwise. */
int sw_pk_from_hex(struct sw_pk *pk, const char *hex, const char *what, struct sw_error *err);
/* out must hold SW_PK_HEX_LEN+1 bytes. */
void sw_pk_to_hex(const struct sw_pk *pk, char out[SW_PK_HEX_LEN + 1]);
bool sw_pk_equal(const struct sw_pk *a, const struct sw_pk *b);
/* memcmp order; used to sort the two edges of a transport. */
int sw_pk_cmp(const struct sw_pk *a, const struct sw_pk *b);

int sw_sig_from_hex(struct sw_sig *sig, const char *hex, const char *what, struct sw_error *err);
void sw_sig_to_hex(const struct sw_sig *sig, char out[SW_SIG_HEX_LEN + 1]);

void sw_sign(const struct sw_keypair *kp, const void *msg, size_t len, struct sw_sig *sig);
/* SW_OK when sig is a valid signature of msg by pk, SW_ECRYPTO otherwise. */
int sw_verify(const struct sw_pk *pk, const void *msg, size_t len, const struct sw_sig *sig);

/* Loads the key file at path; if it does not exist, creates it (mode 0600, O_EXCL) with a
 * new key pair and sets *created. Fails with a clear err if the file is malformed or its
 * public key does not match its secret key. */
int sw_keyfile_load_or_create(const char *path, struct sw_keypair *kp, bool *created,
                              struct sw_error *err);
int sw_keyfile_load(const char *path, struct sw_keypair *kp, struct sw_error *err);
int sw_keyfile_save(const char *path, const struct sw_keypair *kp, struct sw_error *err);

#endif
