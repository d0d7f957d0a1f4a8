/* Unit tests for common/noise.c and common/frame.c: cacophony interop vectors, XK and KK
 * handshakes with Ed25519 identities, tampering, replay, limits, misuse, framing. */
#include "common/err.h"
#include "common/frame.h"
#include "common/hex.h"
#include "common/keys.h"
#include "common/noise.h"
#include "tests/harness/check_main.h"

#include <check.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ---- */

static size_t unhex(uint8_t *out, size_t cap, const char *hex)
{
    size_t n = strlen(hex) / 2;
    ck_assert_uint_le(n, cap);
    ck_assert_int_eq(sw_hex_decode(out, n, hex, strlen(hex)), SW_OK);
    return n;
}

static void x25519_pk(uint8_t pk[32], const uint8_t sk[32])
{
    ck_assert_int_eq(crypto_scalarmult_base(pk, sk), 0);
}

/* ---- cacophony test vectors ----
 * From vectors/cacophony.txt of github.com/haskell-cryptography/cacophony (the same vectors
 * ship with noise-c and snow). Messages alternate initiator/responder, also after the
 * handshake; payloads are spelled out so a mismatch is easy to read. */

struct vec_msg {
    const char *payload;
    const char *ciphertext;
};

struct vector {
    enum sw_noise_pattern pattern;
    unsigned n_handshake;
    const char *prologue, *init_static, *init_ephemeral, *init_remote_static;
    const char *resp_static, *resp_ephemeral, *resp_remote_static; /* NULL when unknown */
    struct vec_msg msgs[6];
};

#define CACO_PROLOGUE "4a6f686e2047616c74" /* "John Galt" */
#define CACO_INIT_STATIC "e61ef9919cde45dd5f82166404bd08e38bceb5dfdfded0a34c8df7ed542214d1"
#define CACO_INIT_EPHEMERAL "893e28b9dc6ca8d611ab664754b8ceb7bac5117349a4439a6b0569da977c464a"
#define CACO_RESP_STATIC "4a3acbfdb163dec651dfa3194dece676d437029c62a408b4c5ea9114246e4893"
#define CACO_RESP_EPHEMERAL "bbdb4cdbd309f1a1f2e1456967fe288cadd6f712d65dc7b7793d5e63da6b375b"
#define CACO_RESP_PUB "31e0303fd6418d2f8c0e78b91f22e8caed0fbe48656dcf4767e4834f701b8f62"
#define CACO_INIT_PUB "6bc3822a2aa7f4e6981d6538692b3cdf3e6df9eea6ed269eb41d93c22757b75a"

/* "Noise_XK_25519_ChaChaPoly_SHA256" */
static const struct vector VEC_XK = {
    SW_NOISE_XK, 3, CACO_PROLOGUE, CACO_INIT_STATIC, CACO_INIT_EPHEMERAL, CACO_RESP_PUB,
    CACO_RESP_STATIC, CACO_RESP_EPHEMERAL, NULL,
    {
        { "4c756477696720766f6e204d69736573",
          "ca35def5ae56cec33dc2036731ab14896bc4c75dbb07a61f879f8e3afa4c7944a3785af283c991bab613"
          "473804356ef6931f83acf64f99c274b93570857cfc5e" },
        { "4d757272617920526f746862617264",
          "95ebc60d2b1fa672c1f46a8aa265ef51bfe38e7ccb39ec5be34069f1448088433a4534805fa9fe4eb834"
          "3ace6609160c767ad9b832e8eea1d9b7a2111818dd" },
        { "462e20412e20486179656b",
          "5d8e67b9c1b8e36f5dc674bc5cd2ce243fb5d1710fa57de0370da7cc979015398eaad94603b05498ba9a"
          "613d2fd923dcaa6fd4288dfd8d70f419bf737efb4cd37f5da37ebb728849318c82" },
        { "4361726c204d656e676572", "3205e1265f809505e6edc092839d3156745d2abafbfd946b261e41" },
        { "4a65616e2d426170746973746520536179",
          "470bcb1ae099555ff0d729500df550418d6ee5149d9e40bd2f4c6b3d263cc818d5" },
        { "457567656e2042f6686d20766f6e2042617765726b",
          "d7187ed9d217ba6e91cf596e4871012ccedf7b5bed0d4cb8f7affb020fa17a95a23371e0f6" },
    },
};

/* "Noise_KK_25519_ChaChaPoly_SHA256" */
static const struct vector VEC_KK = {
    SW_NOISE_KK, 2, CACO_PROLOGUE, CACO_INIT_STATIC, CACO_INIT_EPHEMERAL, CACO_RESP_PUB,
    CACO_RESP_STATIC, CACO_RESP_EPHEMERAL, CACO_INIT_PUB,
    {
        { "4c756477696720766f6e204d69736573",
          "ca35def5ae56cec33dc2036731ab14896bc4c75dbb07a61f879f8e3afa4c79440177015efc1fe7a37c62"
          "9af7120a96274e6ab7afcc9261901d0e09ae32a5bb96" },
        { "4d757272617920526f746862617264",
          "95ebc60d2b1fa672c1f46a8aa265ef51bfe38e7ccb39ec5be34069f144808843b274d3429adc47ca093b"
          "a63ef90f8da89fda108db471dccfa4894aa7b00003" },
        { "462e20412e20486179656b", "966b05bc69ec01b8454d3160a214e6f24a3d884eb31ec2408af63f" },
        { "4361726c204d656e676572", "0ad887fba4f611bbb4afe44ba3556b8164332ca7d5934634d63d80" },
        { "4a65616e2d426170746973746520536179",
          "012b28ae646ae7830e2c5472cb023eab071c1db3d8413ec69b513b83832f974c2d" },
        { "457567656e2042f6686d20766f6e2042617765726b",
          "bb3e6a48160d9c5971d37f975727294e0d868342db31832e54d07191ab0ca3c3703b5ed3d9" },
    },
};

static void vec_init(struct sw_noise_hs *hs, const struct vector *v, bool init)
{
    uint8_t prologue[64], sk[32], eph[32], rs[32];
    size_t plen = unhex(prologue, sizeof(prologue), v->prologue);
    const char *remote = init ? v->init_remote_static : v->resp_remote_static;
    unhex(sk, 32, init ? v->init_static : v->resp_static);
    unhex(eph, 32, init ? v->init_ephemeral : v->resp_ephemeral);
    if (remote)
        unhex(rs, 32, remote);
    ck_assert_int_eq(sw_noise_hs_init(hs, v->pattern, init ? SW_NOISE_INITIATOR : SW_NOISE_RESPONDER,
                                      prologue, plen, sk, remote ? rs : NULL),
                     SW_OK);
    ck_assert_int_eq(sw_noise_hs_set_ephemeral(hs, eph), SW_OK);
}

static void run_vector(const struct vector *v)
{
    struct sw_noise_hs hs[2]; /* [0] initiator, [1] responder */
    struct sw_noise_cipher send[2], recv[2];
    uint8_t pt[128], want[256], out[256], got[256];
    size_t plen, wlen, olen, glen;

    vec_init(&hs[0], v, true);
    vec_init(&hs[1], v, false);
    for (unsigned i = 0; i < 6; i++) {
        int from = i % 2, to = 1 - from;
        plen = unhex(pt, sizeof(pt), v->msgs[i].payload);
        wlen = unhex(want, sizeof(want), v->msgs[i].ciphertext);
        if (i < v->n_handshake) {
            ck_assert(sw_noise_hs_my_turn(&hs[from]) && !sw_noise_hs_my_turn(&hs[to]));
            ck_assert_uint_eq(sw_noise_hs_overhead(&hs[from]) + plen, wlen);
            ck_assert_int_eq(sw_noise_hs_write_message(&hs[from], pt, plen, out, sizeof(out), &olen),
                             SW_OK);
            ck_assert_uint_eq(olen, wlen);
            ck_assert_msg(memcmp(out, want, wlen) == 0, "handshake message %u differs", i);
            ck_assert_int_eq(sw_noise_hs_read_message(&hs[to], out, olen, got, sizeof(got), &glen),
                             SW_OK);
        } else {
            if (i == v->n_handshake) {
                ck_assert(sw_noise_hs_finished(&hs[0]) && sw_noise_hs_finished(&hs[1]));
                ck_assert_mem_eq(sw_noise_hs_handshake_hash(&hs[0]),
                                 sw_noise_hs_handshake_hash(&hs[1]), 32);
                ck_assert_int_eq(sw_noise_hs_split(&hs[0], &send[0], &recv[0]), SW_OK);
                ck_assert_int_eq(sw_noise_hs_split(&hs[1], &send[1], &recv[1]), SW_OK);
            }
            ck_assert_int_eq(sw_noise_encrypt(&send[from], NULL, 0, pt, plen, out), SW_OK);
            olen = plen + SW_NOISE_TAG;
            ck_assert_uint_eq(olen, wlen);
            ck_assert_msg(memcmp(out, want, wlen) == 0, "transport message %u differs", i);
            ck_assert_int_eq(sw_noise_decrypt(&recv[to], NULL, 0, out, olen, got), SW_OK);
            glen = plen;
        }
        ck_assert_uint_eq(glen, plen);
        ck_assert_mem_eq(got, pt, plen);
    }
}

START_TEST(test_vector_keys_consistent)
{
    uint8_t sk[32], pk[32], want[32];
    unhex(sk, 32, CACO_RESP_STATIC);
    unhex(want, 32, CACO_RESP_PUB);
    x25519_pk(pk, sk);
    ck_assert_mem_eq(pk, want, 32);
    unhex(sk, 32, CACO_INIT_STATIC);
    unhex(want, 32, CACO_INIT_PUB);
    x25519_pk(pk, sk);
    ck_assert_mem_eq(pk, want, 32);
}
END_TEST

START_TEST(test_vector_xk) { run_vector(&VEC_XK); }
END_TEST

START_TEST(test_vector_kk) { run_vector(&VEC_KK); }
END_TEST

/* ---- handshakes between Ed25519 identities ---- */

struct pair {
    struct sw_keypair a, b; /* a initiates, b responds */
    struct sw_noise_hs i, r;
};

static void pair_keys(struct pair *p)
{
    memset(p, 0, sizeof(*p));
    ck_assert_int_eq(sw_keypair_generate(&p->a), SW_OK);
    ck_assert_int_eq(sw_keypair_generate(&p->b), SW_OK);
}

static void pair_init(struct pair *p, enum sw_noise_pattern pat)
{
    ck_assert_int_eq(sw_noise_hs_init_ed25519(&p->i, pat, SW_NOISE_INITIATOR, SW_NOISE_PROLOGUE_TP,
                                              &p->a, &p->b.pk),
                     SW_OK);
    ck_assert_int_eq(sw_noise_hs_init_ed25519(&p->r, pat, SW_NOISE_RESPONDER, SW_NOISE_PROLOGUE_TP,
                                              &p->b, pat == SW_NOISE_KK ? &p->a.pk : NULL),
                     SW_OK);
}

/* Payload of message idx: XK message 3 starts with the initiator's Ed25519 key (SPEC §2). */
static size_t make_payload(const struct pair *p, enum sw_noise_pattern pat, unsigned idx,
                           uint8_t *buf)
{
    size_t n = 0;
    if (pat == SW_NOISE_XK && idx == 2) {
        memcpy(buf, p->a.pk.b, SW_PK_LEN);
        n = SW_PK_LEN;
    }
    for (unsigned k = 0; k <= idx; k++)
        buf[n++] = (uint8_t)('A' + idx);
    return n;
}

static unsigned n_msgs(enum sw_noise_pattern pat) { return pat == SW_NOISE_XK ? 3 : 2; }

static struct sw_noise_hs *sender(struct pair *p, unsigned idx) { return idx % 2 ? &p->r : &p->i; }
static struct sw_noise_hs *receiver(struct pair *p, unsigned idx) { return idx % 2 ? &p->i : &p->r; }

/* Passes message idx from sender to receiver, checking the payload. */
static void pass(struct pair *p, enum sw_noise_pattern pat, unsigned idx)
{
    uint8_t pl[64], msg[256], got[256];
    size_t plen = make_payload(p, pat, idx, pl), mlen, glen;
    ck_assert_int_eq(sw_noise_hs_write_message(sender(p, idx), pl, plen, msg, sizeof(msg), &mlen),
                     SW_OK);
    ck_assert_int_eq(sw_noise_hs_read_message(receiver(p, idx), msg, mlen, got, sizeof(got), &glen),
                     SW_OK);
    ck_assert_uint_eq(glen, plen);
    ck_assert_mem_eq(got, pl, plen);
}

static void full_handshake(struct pair *p, enum sw_noise_pattern pat)
{
    pair_init(p, pat);
    for (unsigned k = 0; k < n_msgs(pat); k++) {
        ck_assert(!sw_noise_hs_finished(&p->i) && !sw_noise_hs_finished(&p->r));
        pass(p, pat, k);
    }
    ck_assert(sw_noise_hs_finished(&p->i) && sw_noise_hs_finished(&p->r));
    ck_assert(!sw_noise_hs_my_turn(&p->i) && !sw_noise_hs_my_turn(&p->r));
}

static void x25519_of(const struct sw_pk *pk, uint8_t out[32])
{
    ck_assert_int_eq(crypto_sign_ed25519_pk_to_curve25519(out, pk->b), 0);
}

static void check_transport(struct sw_noise_cipher *s, struct sw_noise_cipher *r)
{
    static uint8_t pt[SW_NOISE_MAX_PAYLOAD], ct[SW_NOISE_MAX_MSG], back[SW_NOISE_MAX_PAYLOAD];
    static const size_t sizes[] = { 0, 1, 100, 1400, SW_NOISE_MAX_PAYLOAD };
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        size_t n = sizes[k];
        randombytes_buf(pt, n);
        ck_assert_int_eq(sw_noise_encrypt(s, NULL, 0, pt, n, ct), SW_OK);
        ck_assert_int_eq(sw_noise_decrypt(r, NULL, 0, ct, n + SW_NOISE_TAG, back), SW_OK);
        ck_assert(memcmp(pt, back, n) == 0);
    }
}

static void handshake_and_transport(enum sw_noise_pattern pat)
{
    struct pair p;
    struct sw_noise_cipher is, ir, rs, rr;
    uint8_t xa[32], xb[32];
    pair_keys(&p);
    full_handshake(&p, pat);
    x25519_of(&p.a.pk, xa);
    x25519_of(&p.b.pk, xb);
    ck_assert_mem_eq(sw_noise_hs_remote_static(&p.r), xa, 32);
    ck_assert_mem_eq(sw_noise_hs_remote_static(&p.i), xb, 32);
    ck_assert_mem_eq(sw_noise_hs_handshake_hash(&p.i), sw_noise_hs_handshake_hash(&p.r), 32);
    ck_assert_int_eq(sw_noise_hs_split(&p.i, &is, &ir), SW_OK);
    ck_assert_int_eq(sw_noise_hs_split(&p.r, &rs, &rr), SW_OK);
    ck_assert_mem_eq(is.k, rr.k, 32);
    ck_assert_mem_eq(ir.k, rs.k, 32);
    ck_assert(memcmp(is.k, ir.k, 32) != 0);
    /* split keeps public results, wipes secrets, and cannot run twice */
    ck_assert_mem_eq(sw_noise_hs_remote_static(&p.r), xa, 32);
    ck_assert_ptr_nonnull(sw_noise_hs_handshake_hash(&p.r));
    for (size_t k = 0; k < 32; k++)
        ck_assert(p.i.s_sk[k] == 0 && p.i.e_sk[k] == 0 && p.i.ss.ck[k] == 0);
    check_transport(&is, &rr);
    check_transport(&rs, &ir);
    ck_assert_int_eq(sw_noise_hs_split(&p.i, &is, &ir), SW_EINVAL);
    sw_noise_hs_wipe(&p.r);
    ck_assert_ptr_null(sw_noise_hs_remote_static(&p.r));
}

START_TEST(test_xk_handshake_transport) { handshake_and_transport(SW_NOISE_XK); }
END_TEST

START_TEST(test_kk_handshake_transport) { handshake_and_transport(SW_NOISE_KK); }
END_TEST

START_TEST(test_turns_and_sizes)
{
    struct pair p;
    pair_keys(&p);
    pair_init(&p, SW_NOISE_XK);
    ck_assert(sw_noise_hs_my_turn(&p.i) && !sw_noise_hs_my_turn(&p.r));
    ck_assert_uint_eq(sw_noise_hs_overhead(&p.i), SW_NOISE_XK_MSG1_LEN);
    ck_assert_uint_eq(sw_noise_hs_overhead(&p.r), SW_NOISE_XK_MSG1_LEN);
    pass(&p, SW_NOISE_XK, 0);
    ck_assert(!sw_noise_hs_my_turn(&p.i) && sw_noise_hs_my_turn(&p.r));
    ck_assert_uint_eq(sw_noise_hs_overhead(&p.r), SW_NOISE_XK_MSG2_LEN);
    pass(&p, SW_NOISE_XK, 1);
    ck_assert_uint_eq(sw_noise_hs_overhead(&p.i), SW_NOISE_XK_MSG3_LEN);
    ck_assert_uint_eq(sw_noise_hs_overhead(&p.r), SW_NOISE_XK_MSG3_LEN);
    /* the XK responder only learns the initiator's key from message 3 */
    ck_assert_ptr_null(sw_noise_hs_remote_static(&p.r));
    pass(&p, SW_NOISE_XK, 2);
    ck_assert_ptr_nonnull(sw_noise_hs_remote_static(&p.r));
    ck_assert_uint_eq(sw_noise_hs_overhead(&p.i), 0);

    pair_init(&p, SW_NOISE_KK);
    ck_assert_uint_eq(sw_noise_hs_overhead(&p.i), SW_NOISE_KK_MSG1_LEN);
    pass(&p, SW_NOISE_KK, 0);
    ck_assert_uint_eq(sw_noise_hs_overhead(&p.r), SW_NOISE_KK_MSG2_LEN);
}
END_TEST

/* ---- Ed25519 identity payload (SPEC §2) ---- */

START_TEST(test_identity_payload)
{
    struct pair p;
    struct sw_keypair other;
    struct sw_pk id;
    uint8_t pl[64], msg[256], got[256], bad[40];
    size_t mlen, glen;
    pair_keys(&p);
    ck_assert_int_eq(sw_keypair_generate(&other), SW_OK);
    pair_init(&p, SW_NOISE_XK);
    ck_assert_int_eq(sw_noise_check_ed25519_payload(&p.r, p.a.pk.b, 32, &id), SW_EINVAL);
    pass(&p, SW_NOISE_XK, 0);
    pass(&p, SW_NOISE_XK, 1);
    memcpy(pl, p.a.pk.b, 32);
    memcpy(pl + 32, "hello", 5);
    ck_assert_int_eq(sw_noise_hs_write_message(&p.i, pl, 37, msg, sizeof(msg), &mlen), SW_OK);
    ck_assert_int_eq(sw_noise_hs_read_message(&p.r, msg, mlen, got, sizeof(got), &glen), SW_OK);
    ck_assert_int_eq(sw_noise_check_ed25519_payload(&p.r, got, glen, &id), SW_OK);
    ck_assert(sw_pk_equal(&id, &p.a.pk));
    /* a key that is not the one behind the authenticated static */
    memset(&id, 0, sizeof(id));
    ck_assert_int_eq(sw_noise_check_ed25519_payload(&p.r, other.pk.b, 32, &id), SW_ECRYPTO);
    ck_assert_int_eq(sw_noise_check_ed25519_payload(&p.r, p.b.pk.b, 32, NULL), SW_ECRYPTO);
    ck_assert_uint_eq(id.b[0] | id.b[31], 0); /* untouched on failure */
    ck_assert_int_eq(sw_noise_check_ed25519_payload(&p.r, got, 31, NULL), SW_EPROTO);
    ck_assert_int_eq(sw_noise_check_ed25519_payload(&p.r, NULL, 0, NULL), SW_EPROTO);
    memset(bad, 0, sizeof(bad)); /* small-order point */
    ck_assert_int_eq(sw_noise_check_ed25519_payload(&p.r, bad, sizeof(bad), NULL), SW_ECRYPTO);
    memset(bad, 0xff, sizeof(bad)); /* not a point */
    ck_assert_int_eq(sw_noise_check_ed25519_payload(&p.r, bad, sizeof(bad), NULL), SW_ECRYPTO);
    /* the initiator can check the responder the same way; still works after split */
    ck_assert_int_eq(sw_noise_check_ed25519_payload(&p.i, p.b.pk.b, 32, NULL), SW_OK);
    {
        struct sw_noise_cipher s, r;
        ck_assert_int_eq(sw_noise_hs_split(&p.r, &s, &r), SW_OK);
        ck_assert_int_eq(sw_noise_check_ed25519_payload(&p.r, p.a.pk.b, 32, NULL), SW_OK);
    }
    sw_keypair_wipe(&other);
}
END_TEST

/* ---- failures ---- */

static void assert_dead(struct sw_noise_hs *hs)
{
    uint8_t buf[256];
    size_t n;
    ck_assert(!sw_noise_hs_my_turn(hs) && !sw_noise_hs_finished(hs));
    ck_assert_ptr_null(sw_noise_hs_remote_static(hs));
    ck_assert_uint_eq(sw_noise_hs_overhead(hs), 0);
    ck_assert_int_ne(sw_noise_hs_write_message(hs, NULL, 0, buf, sizeof(buf), &n), SW_OK);
    memset(buf, 0, 64);
    ck_assert_int_ne(sw_noise_hs_read_message(hs, buf, 64, buf + 64, 100, &n), SW_OK);
    for (size_t k = 0; k < sizeof(hs->s_sk); k++)
        ck_assert(hs->s_sk[k] == 0 && hs->e_sk[k] == 0 && hs->ss.ck[k] == 0);
}

/* Flips every byte of every handshake message in turn: each must be rejected. */
static void tamper_each_message(enum sw_noise_pattern pat)
{
    struct pair p;
    uint8_t pl[64], msg[256], got[256];
    size_t plen, mlen, glen;
    pair_keys(&p);
    for (unsigned idx = 0; idx < n_msgs(pat); idx++) {
        for (size_t pos = 0;; pos++) {
            pair_init(&p, pat);
            for (unsigned k = 0; k < idx; k++)
                pass(&p, pat, k);
            plen = make_payload(&p, pat, idx, pl);
            ck_assert_int_eq(sw_noise_hs_write_message(sender(&p, idx), pl, plen, msg, sizeof(msg),
                                                       &mlen),
                             SW_OK);
            if (pos == mlen)
                break;
            msg[pos] ^= 0x01;
            ck_assert_int_eq(sw_noise_hs_read_message(receiver(&p, idx), msg, mlen, got,
                                                      sizeof(got), &glen),
                             SW_ECRYPTO);
            assert_dead(receiver(&p, idx));
            msg[pos] ^= 0x01; /* even the genuine message is refused now */
            ck_assert_int_ne(sw_noise_hs_read_message(receiver(&p, idx), msg, mlen, got,
                                                      sizeof(got), &glen),
                             SW_OK);
        }
    }
}

START_TEST(test_tamper_xk) { tamper_each_message(SW_NOISE_XK); }
END_TEST

START_TEST(test_tamper_kk) { tamper_each_message(SW_NOISE_KK); }
END_TEST

START_TEST(test_wrong_prologue)
{
    struct pair p;
    uint8_t msg[256], got[256];
    size_t mlen, glen;
    pair_keys(&p);
    ck_assert_int_eq(sw_noise_hs_init_ed25519(&p.i, SW_NOISE_XK, SW_NOISE_INITIATOR,
                                              SW_NOISE_PROLOGUE_TP, &p.a, &p.b.pk),
                     SW_OK);
    ck_assert_int_eq(sw_noise_hs_init_ed25519(&p.r, SW_NOISE_XK, SW_NOISE_RESPONDER,
                                              SW_NOISE_PROLOGUE_MSG, &p.b, NULL),
                     SW_OK);
    ck_assert_int_eq(sw_noise_hs_write_message(&p.i, NULL, 0, msg, sizeof(msg), &mlen), SW_OK);
    ck_assert_int_eq(sw_noise_hs_read_message(&p.r, msg, mlen, got, sizeof(got), &glen), SW_ECRYPTO);
    assert_dead(&p.r);
}
END_TEST

START_TEST(test_xk_wrong_responder_static)
{
    struct pair p;
    struct sw_keypair other;
    uint8_t msg[256], got[256];
    size_t mlen, glen;
    pair_keys(&p);
    ck_assert_int_eq(sw_keypair_generate(&other), SW_OK);
    /* the initiator believes it dials `other`, but b answers */
    ck_assert_int_eq(sw_noise_hs_init_ed25519(&p.i, SW_NOISE_XK, SW_NOISE_INITIATOR,
                                              SW_NOISE_PROLOGUE_TP, &p.a, &other.pk),
                     SW_OK);
    ck_assert_int_eq(sw_noise_hs_init_ed25519(&p.r, SW_NOISE_XK, SW_NOISE_RESPONDER,
                                              SW_NOISE_PROLOGUE_TP, &p.b, NULL),
                     SW_OK);
    ck_assert_int_eq(sw_noise_hs_write_message(&p.i, (const uint8_t *)"x", 1, msg, sizeof(msg), &mlen),
                     SW_OK);
    ck_assert_int_eq(sw_noise_hs_read_message(&p.r, msg, mlen, got, sizeof(got), &glen), SW_ECRYPTO);
    sw_keypair_wipe(&other);
}
END_TEST

START_TEST(test_kk_wrong_static)
{
    struct pair p;
    struct sw_keypair other;
    uint8_t msg[256], got[256];
    size_t mlen, glen;
    pair_keys(&p);
    ck_assert_int_eq(sw_keypair_generate(&other), SW_OK);
    /* the responder expects `other` as initiator */
    ck_assert_int_eq(sw_noise_hs_init_ed25519(&p.i, SW_NOISE_KK, SW_NOISE_INITIATOR,
                                              SW_NOISE_PROLOGUE_ROUTE, &p.a, &p.b.pk),
                     SW_OK);
    ck_assert_int_eq(sw_noise_hs_init_ed25519(&p.r, SW_NOISE_KK, SW_NOISE_RESPONDER,
                                              SW_NOISE_PROLOGUE_ROUTE, &p.b, &other.pk),
                     SW_OK);
    ck_assert_int_eq(sw_noise_hs_write_message(&p.i, NULL, 0, msg, sizeof(msg), &mlen), SW_OK);
    ck_assert_int_eq(sw_noise_hs_read_message(&p.r, msg, mlen, got, sizeof(got), &glen), SW_ECRYPTO);
    sw_keypair_wipe(&other);
}
END_TEST

/* Reads msg[len] as XK message 1 on a fresh responder; returns the result. */
static int read_first(struct pair *p, const uint8_t *msg, size_t len, size_t cap)
{
    static uint8_t got[SW_NOISE_MAX_MSG];
    size_t glen = 12345;
    int rc;
    pair_init(p, SW_NOISE_XK);
    rc = sw_noise_hs_read_message(&p->r, msg, len, got, cap, &glen);
    if (rc != SW_OK) {
        ck_assert_uint_eq(glen, 12345); /* untouched */
        assert_dead(&p->r);
    }
    return rc;
}

START_TEST(test_malformed_handshake_messages)
{
    struct pair p;
    uint8_t *big = calloc(1, SW_NOISE_MAX_MSG + 1);
    uint8_t msg[256], got[64];
    size_t mlen, glen;
    ck_assert_ptr_nonnull(big);
    pair_keys(&p);
    ck_assert_int_eq(read_first(&p, msg, 0, 64), SW_EPROTO);            /* empty */
    ck_assert_int_eq(read_first(&p, NULL, 0, 64), SW_EPROTO);           /* empty, no buffer */
    ck_assert_int_eq(read_first(&p, big, 31, 64), SW_EPROTO);           /* not even a key */
    ck_assert_int_eq(read_first(&p, big, 47, 64), SW_EPROTO);           /* no room for a tag */
    ck_assert_int_eq(read_first(&p, big, SW_NOISE_MAX_MSG + 1, SW_NOISE_MAX_MSG), SW_EPROTO);
    ck_assert_int_eq(read_first(&p, big, SW_NOISE_MAX_MSG, SW_NOISE_MAX_MSG), SW_ECRYPTO);
    ck_assert_int_eq(read_first(&p, big, 48, 0), SW_ECRYPTO); /* zero key: DH output is zero */

    /* a genuine message, truncated or with a payload buffer that is too small */
    pair_init(&p, SW_NOISE_XK);
    ck_assert_int_eq(sw_noise_hs_write_message(&p.i, (const uint8_t *)"payload", 7, msg,
                                               sizeof(msg), &mlen),
                     SW_OK);
    ck_assert_int_eq(read_first(&p, msg, mlen - 1, 64), SW_ECRYPTO);
    ck_assert_int_eq(read_first(&p, msg, mlen - 8, 64), SW_EPROTO);
    ck_assert_int_eq(read_first(&p, msg, mlen, 6), SW_ERANGE);
    ck_assert_int_eq(read_first(&p, msg, mlen, 7), SW_OK);
    /* appended garbage changes the payload tag position: rejected */
    msg[mlen] = 0;
    ck_assert_int_eq(read_first(&p, msg, mlen + 1, 64), SW_ECRYPTO);

    /* truncated message 3 */
    pair_init(&p, SW_NOISE_XK);
    pass(&p, SW_NOISE_XK, 0);
    pass(&p, SW_NOISE_XK, 1);
    ck_assert_int_eq(sw_noise_hs_write_message(&p.i, NULL, 0, msg, sizeof(msg), &mlen), SW_OK);
    ck_assert_uint_eq(mlen, SW_NOISE_XK_MSG3_LEN);
    ck_assert_int_eq(sw_noise_hs_read_message(&p.r, msg, mlen - 1, got, sizeof(got), &glen), SW_EPROTO);
    assert_dead(&p.r);
    free(big);
}
END_TEST

START_TEST(test_payload_limits)
{
    struct pair p;
    uint8_t *pl = calloc(1, SW_NOISE_MAX_MSG), *msg = malloc(SW_NOISE_MAX_MSG + 64);
    uint8_t *got = malloc(SW_NOISE_MAX_MSG);
    size_t max = SW_NOISE_MAX_MSG - SW_NOISE_XK_MSG1_LEN, mlen, glen;
    ck_assert(pl && msg && got);
    pair_keys(&p);
    pair_init(&p, SW_NOISE_XK);
    ck_assert_int_eq(sw_noise_hs_write_message(&p.i, pl, max, msg, SW_NOISE_MAX_MSG, &mlen), SW_OK);
    ck_assert_uint_eq(mlen, SW_NOISE_MAX_MSG);
    ck_assert_int_eq(sw_noise_hs_read_message(&p.r, msg, mlen, got, max, &glen), SW_OK);
    ck_assert_uint_eq(glen, max);
    pair_init(&p, SW_NOISE_XK);
    ck_assert_int_eq(sw_noise_hs_write_message(&p.i, pl, max + 1, msg, SW_NOISE_MAX_MSG + 64, &mlen),
                     SW_ERANGE);
    assert_dead(&p.i);
    pair_init(&p, SW_NOISE_XK);
    ck_assert_int_eq(sw_noise_hs_write_message(&p.i, pl, 10, msg, 57, &mlen), SW_ERANGE);
    pair_init(&p, SW_NOISE_XK);
    ck_assert_int_eq(sw_noise_hs_write_message(&p.i, pl, 10, msg, 58, &mlen), SW_OK);
    free(pl);
    free(msg);
    free(got);
}
END_TEST

START_TEST(test_misuse)
{
    struct pair p;
    struct sw_noise_cipher s, r;
    uint8_t msg[256], got[256], zero[32] = { 0 }, sk[32];
    size_t mlen, glen;
    pair_keys(&p);
    randombytes_buf(sk, sizeof(sk));
    /* remote key required for KK and the XK initiator, forbidden for the XK responder */
    ck_assert_int_eq(sw_noise_hs_init(&p.i, SW_NOISE_XK, SW_NOISE_INITIATOR, NULL, 0, sk, NULL), SW_EINVAL);
    ck_assert_int_eq(sw_noise_hs_init(&p.i, SW_NOISE_KK, SW_NOISE_RESPONDER, NULL, 0, sk, NULL), SW_EINVAL);
    ck_assert_int_eq(sw_noise_hs_init(&p.i, SW_NOISE_XK, SW_NOISE_RESPONDER, NULL, 0, sk, zero), SW_EINVAL);
    ck_assert_int_eq(sw_noise_hs_init(&p.i, (enum sw_noise_pattern)7, SW_NOISE_INITIATOR, NULL, 0, sk,
                                      zero),
                     SW_EINVAL);
    ck_assert_int_eq(sw_noise_hs_init(&p.i, SW_NOISE_XK, SW_NOISE_INITIATOR, NULL, 3, sk, zero), SW_EINVAL);
    assert_dead(&p.i);
    ck_assert_int_eq(sw_noise_hs_init_ed25519(&p.i, SW_NOISE_KK, SW_NOISE_INITIATOR, "x", &p.a, NULL),
                     SW_EINVAL);
    ck_assert_int_eq(sw_noise_hs_init_ed25519(&p.i, SW_NOISE_KK, SW_NOISE_INITIATOR, NULL, &p.a,
                                              &p.b.pk),
                     SW_EINVAL);

    /* low-order remote static: the DH output is all zero and must be refused */
    ck_assert_int_eq(sw_noise_hs_init(&p.i, SW_NOISE_XK, SW_NOISE_INITIATOR, NULL, 0, sk, zero), SW_OK);
    ck_assert_int_eq(sw_noise_hs_write_message(&p.i, NULL, 0, msg, sizeof(msg), &mlen), SW_ECRYPTO);
    assert_dead(&p.i);

    /* wrong turns kill the handshake */
    pair_init(&p, SW_NOISE_XK);
    ck_assert_int_eq(sw_noise_hs_write_message(&p.r, NULL, 0, msg, sizeof(msg), &mlen), SW_EINVAL);
    assert_dead(&p.r);
    ck_assert_int_eq(sw_noise_hs_read_message(&p.i, msg, 48, got, sizeof(got), &glen), SW_EINVAL);
    assert_dead(&p.i);

    /* split only when finished; ephemeral only before the first "e" is written */
    pair_init(&p, SW_NOISE_KK);
    ck_assert_int_eq(sw_noise_hs_set_ephemeral(&p.i, sk), SW_OK);
    ck_assert_int_eq(sw_noise_hs_set_ephemeral(&p.i, sk), SW_EINVAL);
    pass(&p, SW_NOISE_KK, 0);
    ck_assert_int_eq(sw_noise_hs_set_ephemeral(&p.r, sk), SW_OK);
    ck_assert_int_eq(sw_noise_hs_split(&p.r, &s, &r), SW_EINVAL);
    assert_dead(&p.r);
    /* the finished side cannot write or read more */
    pair_init(&p, SW_NOISE_KK);
    pass(&p, SW_NOISE_KK, 0);
    pass(&p, SW_NOISE_KK, 1);
    ck_assert_int_eq(sw_noise_hs_write_message(&p.i, NULL, 0, msg, sizeof(msg), &mlen), SW_EINVAL);
    ck_assert(!sw_noise_hs_finished(&p.i));
}
END_TEST

/* ---- transport ---- */

static void transport_pair(struct sw_noise_cipher *s, struct sw_noise_cipher *r)
{
    struct pair p;
    struct sw_noise_cipher x, y;
    pair_keys(&p);
    full_handshake(&p, SW_NOISE_KK);
    ck_assert_int_eq(sw_noise_hs_split(&p.i, s, &x), SW_OK);
    ck_assert_int_eq(sw_noise_hs_split(&p.r, &y, r), SW_OK);
}

START_TEST(test_transport_tamper)
{
    struct sw_noise_cipher s, r;
    uint8_t pt[40], ct[56], out[40];
    transport_pair(&s, &r);
    randombytes_buf(pt, sizeof(pt));
    ck_assert_int_eq(sw_noise_encrypt(&s, NULL, 0, pt, sizeof(pt), ct), SW_OK);
    for (size_t pos = 0; pos < sizeof(ct); pos++) {
        ct[pos] ^= 0x80;
        ck_assert_int_eq(sw_noise_decrypt(&r, NULL, 0, ct, sizeof(ct), out), SW_ECRYPTO);
        ck_assert(r.n == 0); /* a failure does not consume the nonce */
        ct[pos] ^= 0x80;
    }
    /* truncated, wrong associated data */
    ck_assert_int_eq(sw_noise_decrypt(&r, NULL, 0, ct, sizeof(ct) - 1, out), SW_ECRYPTO);
    ck_assert_int_eq(sw_noise_decrypt(&r, (const uint8_t *)"ad", 2, ct, sizeof(ct), out), SW_ECRYPTO);
    ck_assert_int_eq(sw_noise_decrypt(&r, NULL, 0, ct, SW_NOISE_TAG - 1, out), SW_EPROTO);
    ck_assert_int_eq(sw_noise_decrypt(&r, NULL, 0, ct, SW_NOISE_MAX_MSG + 1, out), SW_EPROTO);
    ck_assert(r.n == 0);
    ck_assert_int_eq(sw_noise_decrypt(&r, NULL, 0, ct, sizeof(ct), out), SW_OK);
    ck_assert_mem_eq(out, pt, sizeof(pt));
    ck_assert(r.n == 1);
}
END_TEST

START_TEST(test_transport_replay_reorder)
{
    struct sw_noise_cipher s, r;
    uint8_t c1[SW_NOISE_TAG + 3], c2[SW_NOISE_TAG + 3], out[3];
    transport_pair(&s, &r);
    ck_assert_int_eq(sw_noise_encrypt(&s, NULL, 0, (const uint8_t *)"one", 3, c1), SW_OK);
    ck_assert_int_eq(sw_noise_encrypt(&s, NULL, 0, (const uint8_t *)"two", 3, c2), SW_OK);
    ck_assert_int_eq(sw_noise_decrypt(&r, NULL, 0, c2, sizeof(c2), out), SW_ECRYPTO); /* reorder */
    ck_assert_int_eq(sw_noise_decrypt(&r, NULL, 0, c1, sizeof(c1), out), SW_OK);
    ck_assert_mem_eq(out, "one", 3);
    ck_assert_int_eq(sw_noise_decrypt(&r, NULL, 0, c1, sizeof(c1), out), SW_ECRYPTO); /* replay */
    ck_assert_int_eq(sw_noise_decrypt(&r, NULL, 0, c2, sizeof(c2), out), SW_OK);
    ck_assert_mem_eq(out, "two", 3);
    ck_assert_int_eq(sw_noise_decrypt(&r, NULL, 0, c2, sizeof(c2), out), SW_ECRYPTO); /* replay */
}
END_TEST

START_TEST(test_transport_nonces)
{
    struct sw_noise_cipher s, r;
    uint8_t pt[8], prev[24], ct[24], buf[24];
    memcpy(pt, "same msg", sizeof(pt));
    transport_pair(&s, &r);
    for (uint64_t k = 0; k < 200; k++) {
        ck_assert(s.n == k);
        ck_assert_int_eq(sw_noise_encrypt(&s, NULL, 0, pt, sizeof(pt), ct), SW_OK);
        ck_assert(s.n == k + 1);
        if (k)
            ck_assert(memcmp(prev, ct, sizeof(ct)) != 0); /* same plaintext, fresh nonce */
        memcpy(prev, ct, sizeof(ct));
        /* in place on the receiving side */
        memcpy(buf, ct, sizeof(ct));
        ck_assert_int_eq(sw_noise_decrypt(&r, NULL, 0, buf, sizeof(buf), buf), SW_OK);
        ck_assert_mem_eq(buf, pt, sizeof(pt));
        ck_assert(r.n == k + 1);
    }
    /* the last usable nonce is 2^64-2; 2^64-1 is reserved and refused */
    s.n = r.n = UINT64_MAX - 1;
    ck_assert_int_eq(sw_noise_encrypt(&s, NULL, 0, pt, sizeof(pt), ct), SW_OK);
    ck_assert_int_eq(sw_noise_decrypt(&r, NULL, 0, ct, sizeof(ct), buf), SW_OK);
    ck_assert(s.n == UINT64_MAX && r.n == UINT64_MAX);
    ck_assert_int_eq(sw_noise_encrypt(&s, NULL, 0, pt, sizeof(pt), ct), SW_ERANGE);
    ck_assert_int_eq(sw_noise_decrypt(&r, NULL, 0, ct, sizeof(ct), buf), SW_ERANGE);
    ck_assert(s.n == UINT64_MAX);
    /* in-place encryption and the size limit */
    s.n = 5;
    memcpy(buf, pt, sizeof(pt));
    ck_assert_int_eq(sw_noise_encrypt(&s, NULL, 0, buf, sizeof(pt), buf), SW_OK);
    ck_assert_int_eq(sw_noise_encrypt(&s, NULL, 0, buf, SW_NOISE_MAX_PAYLOAD + 1, buf), SW_ERANGE);
    sw_noise_cipher_wipe(&s);
    ck_assert(s.n == 0 && s.k[0] == 0 && s.k[31] == 0);
}
END_TEST

/* ---- framing ---- */

static void feed_all(struct sw_frame_reader *fr, const uint8_t *data, size_t len, size_t step,
                     uint8_t out[][300], size_t *lens, size_t *count)
{
    size_t off = 0, used, flen;
    const uint8_t *frame;
    *count = 0;
    while (off < len) {
        size_t n = len - off < step ? len - off : step;
        while (n > 0) {
            ck_assert_int_eq(sw_frame_reader_feed(fr, data + off, n, &used, &frame, &flen), SW_OK);
            ck_assert_uint_le(used, n);
            off += used;
            n -= used;
            if (frame) {
                memcpy(out[*count], frame, flen);
                lens[(*count)++] = flen;
            }
        }
    }
}

START_TEST(test_frame_roundtrip)
{
    static struct sw_frame_reader fr;
    static const size_t sizes[] = { 1, 16, 255, 256, 300 };
    uint8_t wire[2048], bodies[5][300], out[8][300];
    size_t lens[8], count, off = 0, n;
    for (size_t k = 0; k < 5; k++) {
        randombytes_buf(bodies[k], sizes[k]);
        ck_assert_int_eq(sw_frame_encode(wire + off, sizeof(wire) - off, bodies[k], sizes[k], &n), SW_OK);
        ck_assert_uint_eq(n, sizes[k] + 2);
        ck_assert_uint_eq(wire[off], sizes[k] >> 8);
        ck_assert_uint_eq(wire[off + 1], sizes[k] & 0xff);
        off += n;
    }
    /* whole buffer at once, byte at a time, and odd chunk sizes */
    static const size_t steps[] = { sizeof(wire), 1, 3, 7, 257 };
    for (size_t s = 0; s < 5; s++) {
        sw_frame_reader_init(&fr, 0);
        feed_all(&fr, wire, off, steps[s], out, lens, &count);
        ck_assert_uint_eq(count, 5);
        for (size_t k = 0; k < 5; k++) {
            ck_assert_uint_eq(lens[k], sizes[k]);
            ck_assert_mem_eq(out[k], bodies[k], sizes[k]);
        }
        ck_assert_uint_eq(sw_frame_reader_pending(&fr), 0);
    }
}
END_TEST

START_TEST(test_frame_partial_and_errors)
{
    static struct sw_frame_reader fr;
    static uint8_t big[SW_FRAME_HDR_LEN + SW_FRAME_MAX];
    const uint8_t *frame;
    size_t used, flen, n;
    uint8_t hdr[2], buf[8] = { 0, 3, 'a', 'b' };

    sw_frame_reader_init(&fr, 0);
    ck_assert_int_eq(sw_frame_reader_feed(&fr, buf, 4, &used, &frame, &flen), SW_OK);
    ck_assert_uint_eq(used, 4);
    ck_assert_ptr_null(frame);
    ck_assert_uint_eq(sw_frame_reader_pending(&fr), 4); /* EOF here = truncated frame */
    ck_assert_int_eq(sw_frame_reader_feed(&fr, NULL, 0, &used, &frame, &flen), SW_OK);
    ck_assert_int_eq(sw_frame_reader_feed(&fr, "c", 1, &used, &frame, &flen), SW_OK);
    ck_assert_ptr_nonnull(frame);
    ck_assert_uint_eq(flen, 3);
    ck_assert_mem_eq(frame, "abc", 3);

    /* zero length is refused, and the failure is sticky */
    buf[0] = buf[1] = 0;
    ck_assert_int_eq(sw_frame_reader_feed(&fr, buf, 4, &used, &frame, &flen), SW_EPROTO);
    ck_assert_uint_eq(used, 2);
    ck_assert_int_eq(sw_frame_reader_feed(&fr, "\0\1x", 3, &used, &frame, &flen), SW_EPROTO);

    /* a length above the reader's maximum */
    sw_frame_reader_init(&fr, 100);
    ck_assert_int_eq(sw_frame_header(hdr, 101), SW_OK);
    ck_assert_int_eq(sw_frame_reader_feed(&fr, hdr, 1, &used, &frame, &flen), SW_OK);
    ck_assert_int_eq(sw_frame_reader_feed(&fr, hdr + 1, 1, &used, &frame, &flen), SW_EPROTO);
    sw_frame_reader_init(&fr, 100);
    ck_assert_int_eq(sw_frame_header(hdr, 100), SW_OK);
    ck_assert_int_eq(sw_frame_reader_feed(&fr, hdr, 2, &used, &frame, &flen), SW_OK);

    /* the largest frame, built in place (body already at out + 2) */
    sw_frame_reader_init(&fr, 0);
    memset(big + 2, 0x5a, SW_FRAME_MAX);
    ck_assert_int_eq(sw_frame_encode(big, sizeof(big), big + 2, SW_FRAME_MAX, &n), SW_OK);
    ck_assert_uint_eq(big[0], 0xff);
    ck_assert_uint_eq(big[1], 0xff);
    ck_assert_int_eq(sw_frame_reader_feed(&fr, big, n, &used, &frame, &flen), SW_OK);
    ck_assert_uint_eq(used, n);
    ck_assert_uint_eq(flen, SW_FRAME_MAX);
    ck_assert_uint_eq(frame[SW_FRAME_MAX - 1], 0x5a);

    ck_assert_int_eq(sw_frame_header(hdr, 0), SW_ERANGE);
    ck_assert_int_eq(sw_frame_header(hdr, SW_FRAME_MAX + 1), SW_ERANGE);
    ck_assert_int_eq(sw_frame_encode(buf, sizeof(buf), (const uint8_t *)"abcdefg", 7, &n), SW_ERANGE);
    ck_assert_int_eq(sw_frame_encode(buf, sizeof(buf), (const uint8_t *)"abcdef", 6, &n), SW_OK);
    ck_assert_int_eq(sw_frame_encode(buf, sizeof(buf), buf, 0, &n), SW_ERANGE);
}
END_TEST

/* A whole XK session over framed byte streams, delivered in awkward chunks. */
START_TEST(test_handshake_over_frames)
{
    static struct sw_frame_reader fr;
    struct pair p;
    uint8_t wire[512], pl[64], got[256];
    size_t wlen, used, flen, glen, off;
    const uint8_t *frame;
    pair_keys(&p);
    pair_init(&p, SW_NOISE_XK);
    sw_frame_reader_init(&fr, 0);
    for (unsigned idx = 0; idx < 3; idx++) {
        size_t plen = make_payload(&p, SW_NOISE_XK, idx, pl);
        ck_assert_int_eq(sw_noise_hs_write_message(sender(&p, idx), pl, plen, wire + 2,
                                                   sizeof(wire) - 2, &wlen),
                         SW_OK);
        ck_assert_int_eq(sw_frame_encode(wire, sizeof(wire), wire + 2, wlen, &wlen), SW_OK);
        frame = NULL;
        for (off = 0; off < wlen; off += used) {
            size_t n = wlen - off < 5 ? wlen - off : 5;
            ck_assert_int_eq(sw_frame_reader_feed(&fr, wire + off, n, &used, &frame, &flen), SW_OK);
        }
        ck_assert_ptr_nonnull(frame);
        ck_assert_int_eq(sw_noise_hs_read_message(receiver(&p, idx), frame, flen, got, sizeof(got),
                                                  &glen),
                         SW_OK);
        ck_assert_mem_eq(got, pl, plen);
    }
    ck_assert_int_eq(sw_noise_check_ed25519_payload(&p.r, got, glen, NULL), SW_OK);
}
END_TEST

static Suite *noise_suite(void)
{
    Suite *s = suite_create("noise");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_vector_keys_consistent);
    tcase_add_test(tc, test_vector_xk);
    tcase_add_test(tc, test_vector_kk);
    tcase_add_test(tc, test_xk_handshake_transport);
    tcase_add_test(tc, test_kk_handshake_transport);
    tcase_add_test(tc, test_turns_and_sizes);
    tcase_add_test(tc, test_identity_payload);
    tcase_add_test(tc, test_tamper_xk);
    tcase_add_test(tc, test_tamper_kk);
    tcase_add_test(tc, test_wrong_prologue);
    tcase_add_test(tc, test_xk_wrong_responder_static);
    tcase_add_test(tc, test_kk_wrong_static);
    tcase_add_test(tc, test_malformed_handshake_messages);
    tcase_add_test(tc, test_payload_limits);
    tcase_add_test(tc, test_misuse);
    tcase_add_test(tc, test_transport_tamper);
    tcase_add_test(tc, test_transport_replay_reorder);
    tcase_add_test(tc, test_transport_nonces);
    tcase_add_test(tc, test_frame_roundtrip);
    tcase_add_test(tc, test_frame_partial_and_errors);
    tcase_add_test(tc, test_handshake_over_frames);
    suite_add_tcase(s, tc);
    return s;
}

const struct th_check_main th_check_main = { .suite = noise_suite, .before = sw_crypto_init };
