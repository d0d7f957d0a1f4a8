/* noise.c — Noise revision 34: CipherState, SymmetricState, HandshakeState for XK and KK
 * over libsodium (X25519, ChaCha20-Poly1305 IETF, SHA-256, HMAC-SHA256 HKDF).
 * Names follow the specification's sections so the code can be checked against it. */
#include "common/noise.h"
#include "common/bytes.h"
#include "common/err.h"

#include <sodium.h>
#include <string.h>

/* ---- patterns (spec §7) ---- */

enum token { T_END = 0, T_E, T_S, T_EE, T_ES, T_SE, T_SS };

#define MAX_MSGS 3
#define MAX_TOKENS 4

struct pattern_def {
    const char *name;
    bool pre_initiator_s; /* "-> s" before "..." */
    bool pre_responder_s; /* "<- s" before "..." */
    uint8_t n_msgs;
    uint8_t msgs[MAX_MSGS][MAX_TOKENS];
};

static const struct pattern_def PATTERNS[] = {
    [SW_NOISE_XK] = { "Noise_XK_25519_ChaChaPoly_SHA256", false, true, 3,
                      { { T_E, T_ES }, { T_E, T_EE }, { T_S, T_SE } } },
    [SW_NOISE_KK] = { "Noise_KK_25519_ChaChaPoly_SHA256", true, true, 2,
                      { { T_E, T_ES, T_SS }, { T_E, T_EE, T_SE } } },
};

/* libsodium wants real pointers even for empty inputs on some paths. */
static const uint8_t *nz(const uint8_t *p)
{
    static const uint8_t dummy;
    return p ? p : &dummy;
}

/* ---- CipherState (spec §5.1) ---- */

/* ChaChaPoly nonce (spec §12.3): 32 bits of zeros then the 64-bit counter little-endian. */
static void nonce_bytes(uint8_t out[crypto_aead_chacha20poly1305_IETF_NPUBBYTES], uint64_t n)
{
    memset(out, 0, 4);
    for (int i = 0; i < 8; i++)
        out[4 + i] = (uint8_t)(n >> (8 * i));
}

/* EncryptWithAd with a key; 2^64-1 is reserved (spec §5.1), so it is an error. */
static int aead_encrypt(struct sw_noise_cipher *c, const uint8_t *ad, size_t adlen,
                        const uint8_t *pt, size_t len, uint8_t *out)
{
    uint8_t nonce[crypto_aead_chacha20poly1305_IETF_NPUBBYTES];
    if (c->n == UINT64_MAX)
        return SW_ERANGE;
    nonce_bytes(nonce, c->n);
    crypto_aead_chacha20poly1305_ietf_encrypt(out, NULL, nz(pt), len, nz(ad), adlen, NULL,
                                              nonce, c->k);
    c->n++;
    return SW_OK;
}

/* DecryptWithAd with a key; the nonce advances only when the tag verifies. */
static int aead_decrypt(struct sw_noise_cipher *c, const uint8_t *ad, size_t adlen,
                        const uint8_t *ct, size_t len, uint8_t *out)
{
    uint8_t nonce[crypto_aead_chacha20poly1305_IETF_NPUBBYTES];
    uint8_t dummy[1];
    if (len < SW_NOISE_TAG)
        return SW_EPROTO;
    if (c->n == UINT64_MAX)
        return SW_ERANGE;
    nonce_bytes(nonce, c->n);
    if (crypto_aead_chacha20poly1305_ietf_decrypt(out ? out : dummy, NULL, NULL, ct, len,
                                                  nz(ad), adlen, nonce, c->k) != 0)
        return SW_ECRYPTO;
    c->n++;
    return SW_OK;
}

int sw_noise_encrypt(struct sw_noise_cipher *c, const uint8_t *ad, size_t adlen,
                     const uint8_t *pt, size_t len, uint8_t *out)
{
    if (!c || !out || (!pt && len) || (!ad && adlen))
        return SW_EINVAL;
    if (len > SW_NOISE_MAX_PAYLOAD)
        return SW_ERANGE;
    return aead_encrypt(c, ad, adlen, pt, len, out);
}

int sw_noise_decrypt(struct sw_noise_cipher *c, const uint8_t *ad, size_t adlen,
                     const uint8_t *ct, size_t len, uint8_t *out)
{
    if (!c || !ct || (!ad && adlen) || (!out && len > SW_NOISE_TAG))
        return SW_EINVAL;
    if (len > SW_NOISE_MAX_MSG)
        return SW_EPROTO;
    return aead_decrypt(c, ad, adlen, ct, len, out);
}

void sw_noise_cipher_wipe(struct sw_noise_cipher *c)
{
    if (c)
        sodium_memzero(c, sizeof(*c));
}

/* ---- SymmetricState (spec §5.2) ---- */

static void sym_init(struct sw_noise_symmetric *ss, const char *protocol_name)
{
    size_t len = strlen(protocol_name);
    memset(ss, 0, sizeof(*ss));
    if (len <= SW_NOISE_HASH_LEN)
        memcpy(ss->h, protocol_name, len); /* zero-padded */
    else
        crypto_hash_sha256(ss->h, (const uint8_t *)protocol_name, len);
    memcpy(ss->ck, ss->h, SW_NOISE_HASH_LEN);
}

/* out = HASH(h || data); out may alias h. */
static void hash2(uint8_t out[SW_NOISE_HASH_LEN], const uint8_t h[SW_NOISE_HASH_LEN],
                  const uint8_t *data, size_t len)
{
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, h, SW_NOISE_HASH_LEN);
    crypto_hash_sha256_update(&st, nz(data), len);
    crypto_hash_sha256_final(&st, out);
}

static void mix_hash(struct sw_noise_symmetric *ss, const uint8_t *data, size_t len)
{
    hash2(ss->h, ss->h, data, len);
}

/* HMAC-SHA256(key, a || b). */
static void hmac2(uint8_t out[32], const uint8_t key[32], const uint8_t *a, size_t alen,
                  const uint8_t *b, size_t blen)
{
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, key, 32);
    crypto_auth_hmacsha256_update(&st, nz(a), alen);
    crypto_auth_hmacsha256_update(&st, nz(b), blen);
    crypto_auth_hmacsha256_final(&st, out);
    sodium_memzero(&st, sizeof(st));
}

/* HKDF with two outputs (spec §4.3). out1 may alias ck: ck is consumed first. */
static void hkdf2(const uint8_t ck[32], const uint8_t *ikm, size_t ikm_len, uint8_t out1[32],
                  uint8_t out2[32])
{
    static const uint8_t one = 1, two = 2;
    uint8_t temp_key[32];
    hmac2(temp_key, ck, ikm, ikm_len, NULL, 0);
    hmac2(out1, temp_key, &one, 1, NULL, 0);
    hmac2(out2, temp_key, out1, 32, &two, 1);
    sodium_memzero(temp_key, sizeof(temp_key));
}

static void mix_key(struct sw_noise_symmetric *ss, const uint8_t ikm[32])
{
    hkdf2(ss->ck, ikm, 32, ss->ck, ss->c.k); /* HASHLEN 32: no truncation */
    ss->c.n = 0;
    ss->has_key = true;
}

/* Writes len (+ tag when keyed) bytes to out, then hashes them. */
static int encrypt_and_hash(struct sw_noise_symmetric *ss, const uint8_t *pt, size_t len,
                            uint8_t *out, size_t *out_len)
{
    int rc;
    if (ss->has_key) {
        rc = aead_encrypt(&ss->c, ss->h, SW_NOISE_HASH_LEN, pt, len, out);
        if (rc != SW_OK)
            return rc;
        len += SW_NOISE_TAG;
    } else if (len) {
        memmove(out, pt, len);
    }
    mix_hash(ss, out, len);
    *out_len = len;
    return SW_OK;
}

/* The ciphertext is hashed after decryption with the old h as AD; computing the new h first
 * keeps this correct even if out overlaps ct. */
static int decrypt_and_hash(struct sw_noise_symmetric *ss, const uint8_t *ct, size_t len,
                            uint8_t *out)
{
    uint8_t h_next[SW_NOISE_HASH_LEN];
    int rc = SW_OK;
    hash2(h_next, ss->h, ct, len);
    if (ss->has_key)
        rc = aead_decrypt(&ss->c, ss->h, SW_NOISE_HASH_LEN, ct, len, out);
    else if (len)
        memmove(out, ct, len);
    if (rc == SW_OK)
        memcpy(ss->h, h_next, SW_NOISE_HASH_LEN);
    return rc;
}

/* ---- HandshakeState (spec §5.3) ---- */

static const struct pattern_def *pat(const struct sw_noise_hs *hs) { return &PATTERNS[hs->pattern]; }

static bool is_initiator(const struct sw_noise_hs *hs) { return hs->role == SW_NOISE_INITIATOR; }

void sw_noise_hs_wipe(struct sw_noise_hs *hs)
{
    if (hs)
        sodium_memzero(hs, sizeof(*hs));
}

/* Every failure ends here: nothing secret survives and the state is dead. */
static int hs_fail(struct sw_noise_hs *hs, int rc)
{
    sw_noise_hs_wipe(hs);
    return rc;
}

static int keypair_from_sk(uint8_t pk[32], uint8_t sk_out[32], const uint8_t sk[32])
{
    memmove(sk_out, sk, 32);
    return crypto_scalarmult_base(pk, sk_out) == 0 ? SW_OK : SW_ECRYPTO;
}

int sw_noise_hs_init(struct sw_noise_hs *hs, enum sw_noise_pattern pattern, enum sw_noise_role role,
                     const void *prologue, size_t prologue_len,
                     const uint8_t local_static_sk[SW_NOISE_KEY_LEN],
                     const uint8_t *remote_static_pk)
{
    bool need_remote;
    const struct pattern_def *p;
    if (!hs)
        return SW_EINVAL;
    sw_noise_hs_wipe(hs);
    if ((pattern != SW_NOISE_XK && pattern != SW_NOISE_KK) ||
        (role != SW_NOISE_INITIATOR && role != SW_NOISE_RESPONDER) || !local_static_sk ||
        (!prologue && prologue_len))
        return SW_EINVAL;
    need_remote = pattern == SW_NOISE_KK || role == SW_NOISE_INITIATOR;
    if (need_remote != (remote_static_pk != NULL))
        return SW_EINVAL;
    hs->pattern = (uint8_t)pattern;
    hs->role = (uint8_t)role;
    if (keypair_from_sk(hs->s_pk, hs->s_sk, local_static_sk) != SW_OK)
        return hs_fail(hs, SW_EINVAL);
    if (remote_static_pk) {
        memcpy(hs->rs, remote_static_pk, SW_NOISE_KEY_LEN);
        hs->has_rs = true;
    }
    p = pat(hs);
    sym_init(&hs->ss, p->name);
    mix_hash(&hs->ss, prologue, prologue_len);
    /* pre-messages: the initiator's first, then the responder's (spec §7.1) */
    if (p->pre_initiator_s)
        mix_hash(&hs->ss, is_initiator(hs) ? hs->s_pk : hs->rs, SW_NOISE_KEY_LEN);
    if (p->pre_responder_s)
        mix_hash(&hs->ss, is_initiator(hs) ? hs->rs : hs->s_pk, SW_NOISE_KEY_LEN);
    hs->state = SW_NOISE_HS_ACTIVE;
    return SW_OK;
}

int sw_noise_hs_init_ed25519(struct sw_noise_hs *hs, enum sw_noise_pattern pattern,
                             enum sw_noise_role role, const char *prologue,
                             const struct sw_keypair *local, const struct sw_pk *remote)
{
    uint8_t x_sk[SW_NOISE_KEY_LEN], x_rs[SW_NOISE_KEY_LEN];
    int rc = SW_EINVAL;
    if (!hs)
        return SW_EINVAL;
    sw_noise_hs_wipe(hs);
    if (!prologue || !local)
        goto out;
    if (remote && crypto_sign_ed25519_pk_to_curve25519(x_rs, remote->b) != 0)
        goto out;
    if (crypto_sign_ed25519_sk_to_curve25519(x_sk, local->sk) != 0)
        goto out;
    rc = sw_noise_hs_init(hs, pattern, role, prologue, strlen(prologue), x_sk,
                          remote ? x_rs : NULL);
out:
    sodium_memzero(x_sk, sizeof(x_sk));
    return rc;
}

/* Ephemeral for the next "e" we write; fixed by tests, random otherwise. */
int sw_noise_hs_set_ephemeral(struct sw_noise_hs *hs, const uint8_t sk[SW_NOISE_KEY_LEN])
{
    if (!hs || !sk || hs->state != SW_NOISE_HS_ACTIVE || hs->has_e)
        return SW_EINVAL;
    if (keypair_from_sk(hs->e_pk, hs->e_sk, sk) != SW_OK)
        return SW_EINVAL;
    hs->has_e = true;
    return SW_OK;
}

bool sw_noise_hs_finished(const struct sw_noise_hs *hs)
{
    return hs && hs->state == SW_NOISE_HS_DONE;
}

bool sw_noise_hs_my_turn(const struct sw_noise_hs *hs)
{
    if (!hs || hs->state != SW_NOISE_HS_ACTIVE)
        return false;
    return (hs->msg_index % 2 == 0) == is_initiator(hs);
}

const uint8_t *sw_noise_hs_remote_static(const struct sw_noise_hs *hs)
{
    if (!hs || hs->state == SW_NOISE_HS_DEAD || !hs->has_rs)
        return NULL;
    return hs->rs;
}

const uint8_t *sw_noise_hs_handshake_hash(const struct sw_noise_hs *hs)
{
    if (!hs || (hs->state != SW_NOISE_HS_DONE && hs->state != SW_NOISE_HS_SPLIT))
        return NULL;
    return hs->ss.h;
}

size_t sw_noise_hs_overhead(const struct sw_noise_hs *hs)
{
    const uint8_t *toks;
    bool keyed;
    size_t n = 0;
    if (!hs || hs->state != SW_NOISE_HS_ACTIVE)
        return 0;
    toks = pat(hs)->msgs[hs->msg_index];
    keyed = hs->ss.has_key;
    for (int i = 0; i < MAX_TOKENS && toks[i] != T_END; i++) {
        if (toks[i] == T_E)
            n += SW_NOISE_KEY_LEN;
        else if (toks[i] == T_S)
            n += SW_NOISE_KEY_LEN + (keyed ? SW_NOISE_TAG : 0);
        else
            keyed = true; /* a DH token runs MixKey */
    }
    return n + (keyed ? SW_NOISE_TAG : 0);
}

/* ee/es/se/ss: DH(our key, their key) from this side's point of view, then MixKey.
 * libsodium's crypto_scalarmult fails on an all-zero (low-order) result. */
static int mix_dh(struct sw_noise_hs *hs, uint8_t tok)
{
    bool init = is_initiator(hs);
    const uint8_t *sk, *pk;
    uint8_t shared[32];
    bool ok;
    switch (tok) {
    case T_EE: sk = hs->e_sk; pk = hs->re; ok = hs->has_e && hs->has_re; break;
    case T_ES: sk = init ? hs->e_sk : hs->s_sk; pk = init ? hs->rs : hs->re;
               ok = init ? hs->has_e && hs->has_rs : hs->has_re; break;
    case T_SE: sk = init ? hs->s_sk : hs->e_sk; pk = init ? hs->re : hs->rs;
               ok = init ? hs->has_re : hs->has_e && hs->has_rs; break;
    case T_SS: sk = hs->s_sk; pk = hs->rs; ok = hs->has_rs; break;
    default: return SW_EINVAL;
    }
    if (!ok)
        return SW_EINVAL;
    if (crypto_scalarmult(shared, sk, pk) != 0) {
        sodium_memzero(shared, sizeof(shared));
        return SW_ECRYPTO;
    }
    mix_key(&hs->ss, shared);
    sodium_memzero(shared, sizeof(shared));
    return SW_OK;
}

static void advance(struct sw_noise_hs *hs)
{
    hs->msg_index++;
    if (hs->msg_index == pat(hs)->n_msgs)
        hs->state = SW_NOISE_HS_DONE;
}

static int write_token(struct sw_noise_hs *hs, uint8_t tok, uint8_t *out, size_t *off)
{
    uint8_t sk[SW_NOISE_KEY_LEN];
    size_t n;
    int rc;
    if (tok == T_E) {
        if (!hs->has_e) {
            randombytes_buf(sk, sizeof(sk));
            rc = keypair_from_sk(hs->e_pk, hs->e_sk, sk);
            sodium_memzero(sk, sizeof(sk));
            if (rc != SW_OK)
                return rc;
            hs->has_e = true;
        }
        memcpy(out + *off, hs->e_pk, SW_NOISE_KEY_LEN);
        mix_hash(&hs->ss, hs->e_pk, SW_NOISE_KEY_LEN);
        *off += SW_NOISE_KEY_LEN;
        return SW_OK;
    }
    if (tok == T_S) {
        rc = encrypt_and_hash(&hs->ss, hs->s_pk, SW_NOISE_KEY_LEN, out + *off, &n);
        *off += n;
        return rc;
    }
    return mix_dh(hs, tok);
}

int sw_noise_hs_write_message(struct sw_noise_hs *hs, const uint8_t *payload, size_t len,
                              uint8_t *out, size_t cap, size_t *out_len)
{
    const uint8_t *toks;
    size_t off = 0, n, need;
    int rc;
    if (!hs)
        return SW_EINVAL;
    if (!sw_noise_hs_my_turn(hs) || !out || !out_len || (!payload && len))
        return hs_fail(hs, SW_EINVAL);
    need = sw_noise_hs_overhead(hs);
    if (len > SW_NOISE_MAX_MSG - need || need + len > cap)
        return hs_fail(hs, SW_ERANGE);
    toks = pat(hs)->msgs[hs->msg_index];
    for (int i = 0; i < MAX_TOKENS && toks[i] != T_END; i++) {
        rc = write_token(hs, toks[i], out, &off);
        if (rc != SW_OK)
            return hs_fail(hs, rc);
    }
    rc = encrypt_and_hash(&hs->ss, payload, len, out + off, &n);
    if (rc != SW_OK)
        return hs_fail(hs, rc);
    advance(hs);
    *out_len = off + n;
    return SW_OK;
}

static int read_token(struct sw_noise_hs *hs, uint8_t tok, struct sw_reader *r)
{
    const uint8_t *p;
    size_t n;
    if (tok == T_E) {
        if (sw_read_view(r, &p, SW_NOISE_KEY_LEN) != SW_OK)
            return SW_EPROTO;
        memcpy(hs->re, p, SW_NOISE_KEY_LEN);
        hs->has_re = true;
        mix_hash(&hs->ss, hs->re, SW_NOISE_KEY_LEN);
        return SW_OK;
    }
    if (tok == T_S) {
        n = SW_NOISE_KEY_LEN + (hs->ss.has_key ? SW_NOISE_TAG : 0);
        if (sw_read_view(r, &p, n) != SW_OK)
            return SW_EPROTO;
        if (decrypt_and_hash(&hs->ss, p, n, hs->rs) != SW_OK)
            return SW_ECRYPTO;
        hs->has_rs = true;
        return SW_OK;
    }
    return mix_dh(hs, tok);
}

int sw_noise_hs_read_message(struct sw_noise_hs *hs, const uint8_t *msg, size_t len,
                             uint8_t *payload, size_t cap, size_t *payload_len)
{
    struct sw_reader r;
    const uint8_t *toks, *rest;
    size_t plen, need, rest_len;
    int rc;
    if (!hs)
        return SW_EINVAL;
    if (hs->state != SW_NOISE_HS_ACTIVE || sw_noise_hs_my_turn(hs) || !payload_len ||
        (!msg && len) || (!payload && cap))
        return hs_fail(hs, SW_EINVAL);
    need = sw_noise_hs_overhead(hs);
    if (len > SW_NOISE_MAX_MSG || len < need)
        return hs_fail(hs, SW_EPROTO);
    plen = len - need;
    if (plen > cap)
        return hs_fail(hs, SW_ERANGE);
    sw_reader_init(&r, msg, len);
    toks = pat(hs)->msgs[hs->msg_index];
    for (int i = 0; i < MAX_TOKENS && toks[i] != T_END; i++) {
        rc = read_token(hs, toks[i], &r);
        if (rc != SW_OK)
            return hs_fail(hs, rc);
    }
    /* what is left is the payload, plus its tag once keyed (the overhead said so) */
    rest_len = sw_reader_remaining(&r);
    if (rest_len != plen + (hs->ss.has_key ? SW_NOISE_TAG : 0) ||
        sw_read_view(&r, &rest, rest_len) != SW_OK)
        return hs_fail(hs, SW_EPROTO);
    rc = decrypt_and_hash(&hs->ss, rest, rest_len, payload);
    if (rc != SW_OK)
        return hs_fail(hs, SW_ECRYPTO);
    advance(hs);
    *payload_len = plen;
    return SW_OK;
}

int sw_noise_hs_split(struct sw_noise_hs *hs, struct sw_noise_cipher *send,
                      struct sw_noise_cipher *recv)
{
    struct sw_noise_cipher c1, c2;
    if (!hs)
        return SW_EINVAL;
    if (hs->state != SW_NOISE_HS_DONE || !send || !recv || send == recv)
        return hs_fail(hs, SW_EINVAL);
    hkdf2(hs->ss.ck, NULL, 0, c1.k, c2.k);
    c1.n = c2.n = 0;
    /* c1 carries initiator -> responder traffic */
    *send = is_initiator(hs) ? c1 : c2;
    *recv = is_initiator(hs) ? c2 : c1;
    sodium_memzero(&c1, sizeof(c1));
    sodium_memzero(&c2, sizeof(c2));
    /* keep only public results: remote static and handshake hash */
    sodium_memzero(hs->ss.ck, sizeof(hs->ss.ck));
    sodium_memzero(&hs->ss.c, sizeof(hs->ss.c));
    sodium_memzero(hs->s_sk, sizeof(hs->s_sk));
    sodium_memzero(hs->e_sk, sizeof(hs->e_sk));
    hs->ss.has_key = false;
    hs->state = SW_NOISE_HS_SPLIT;
    return SW_OK;
}

int sw_noise_check_ed25519_payload(const struct sw_noise_hs *hs, const uint8_t *payload,
                                   size_t len, struct sw_pk *identity_out)
{
    const uint8_t *rs = sw_noise_hs_remote_static(hs);
    uint8_t x[SW_NOISE_KEY_LEN];
    if (!rs)
        return SW_EINVAL;
    if (!payload || len < SW_PK_LEN)
        return SW_EPROTO;
    if (!crypto_core_ed25519_is_valid_point(payload) ||
        crypto_sign_ed25519_pk_to_curve25519(x, payload) != 0)
        return SW_ECRYPTO;
    if (sodium_memcmp(x, rs, SW_NOISE_KEY_LEN) != 0)
        return SW_ECRYPTO;
    if (identity_out)
        memcpy(identity_out->b, payload, SW_PK_LEN);
    return SW_OK;
}
