/* Unit tests for the visor's parsers of peer and file input (visor/packet.c, visor/parse.c):
 * transport packets (every type and body length), the u16 framing, the stcp handshake step
 * (honest run, wrong key, out of turn, forged identity, tampering; in a private network:
 * certificates both ways, and a missing, foreign, expired, future, revoked, flipped or
 * wrong-role certificate refused on either side), transports.json (every
 * malformed field is refused and named, nothing is delivered from a bad file) and the local
 * API's request bodies. Inputs sit in exact-size heap buffers so ASan catches over-reads. */
#include "visor/packet.h"
#include "visor/parse.h"
#include "common/bytes.h"
#include "common/err.h"
#include "common/frame.h"
#include "common/clock.h"
#include "common/keys.h"
#include "common/netcert.h"
#include "common/network.h"
#include "common/noise.h"
#include "tests/harness/check_main.h"

#include <check.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ASSERT_MSG_HAS(err, needle)                                                           \
    ck_assert_msg(strstr((err).msg, (needle)) != NULL, "message '%s' lacks '%s'", (err).msg, \
                  (needle))

/* An exact-size heap copy (never NULL, even for n == 0). */
static uint8_t *dup_exact(const void *p, size_t n)
{
    uint8_t *b = malloc(n ? n : 1);
    ck_assert_ptr_nonnull(b);
    if (n)
        memcpy(b, p, n);
    return b;
}

/* ---- transport packets ---------------------------------------------------------------- */

/* The body length a known type must have, -1 for "any", -2 for unknown/routing types, -3
 * for 1..VISOR_REFUSE_TEXT_MAX (REFUSE), -4 for a certificate's SW_CERT_MIN_LEN..MAX (CERT). */
static long want_body(uint8_t type)
{
    switch (type) {
    case VISOR_TP_PKT_ENTRY_SIG: return SW_SIG_LEN;
    case VISOR_TP_PKT_PING:
    case VISOR_TP_PKT_PONG: return 8;
    case VISOR_TP_PKT_DISCARD: return -1;
    case VISOR_TP_PKT_CLOSE: return 1;
    case VISOR_TP_PKT_REFUSE: return -3;
    case VISOR_TP_PKT_CERT: return -4;
    default: return -2;
    }
}

static bool body_ok(uint8_t type, size_t blen)
{
    long want = want_body(type);
    if (want == -3)
        return blen >= 1 && blen <= VISOR_REFUSE_TEXT_MAX;
    if (want == -4)
        return blen >= SW_CERT_MIN_LEN && blen <= SW_CERT_MAX_LEN;
    return want < 0 || (size_t)want == blen;
}

START_TEST(test_packet_every_type_and_length)
{
    for (unsigned type = 0; type < 256; type++) {
        for (size_t blen = 0; blen <= SW_CERT_MAX_LEN + 1; blen++) {
            uint8_t buf[SW_CERT_MAX_LEN + 2];
            struct visor_packet p;
            struct sw_error err = { 0 };
            long want = want_body((uint8_t)type);
            bool ok = body_ok((uint8_t)type, blen);
            uint8_t *pkt;
            int rc;

            for (size_t i = 0; i <= blen; i++)
                buf[i] = (uint8_t)(i * 7 + 1);
            buf[0] = (uint8_t)type;
            pkt = dup_exact(buf, blen + 1);
            memset(&p, 0xa5, sizeof(p));
            rc = visor_packet_parse(pkt, blen + 1, &p, &err);
            if (!ok) {
                ck_assert_int_eq(rc, SW_EPROTO);
                ck_assert_int_eq(err.code, SW_EPROTO);
                ASSERT_MSG_HAS(err, "-byte body");
                ck_assert_uint_eq(p.type, 0xa5); /* untouched on failure */
                free(pkt);
                continue;
            }
            ck_assert_msg(rc == SW_OK, "type 0x%02x body %zu: %s", type, blen, err.msg);
            ck_assert_uint_eq(p.type, type);
            ck_assert_uint_eq(p.body_len, blen);
            ck_assert(blen == 0 ? p.body == NULL : p.body == pkt + 1);
            ck_assert(p.known == (want != -2));
            if (type == VISOR_TP_PKT_ENTRY_SIG)
                ck_assert(p.sig == pkt + 1);
            if (type == VISOR_TP_PKT_CLOSE)
                ck_assert_uint_eq(p.reason, pkt[1]);
            free(pkt);
        }
    }
}
END_TEST

START_TEST(test_packet_fields_and_limits)
{
    const uint8_t ping[] = { VISOR_TP_PKT_PING, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08 };
    uint8_t *big;
    struct visor_packet p;
    struct sw_error err = { 0 };

    ck_assert_int_eq(visor_packet_parse(ping, sizeof(ping), &p, &err), SW_OK);
    ck_assert(p.known);
    ck_assert_uint_eq(p.token, 0x0102030405060708ull);

    /* empty and oversize packets */
    ck_assert_int_eq(visor_packet_parse(ping, 0, &p, &err), SW_EPROTO);
    ASSERT_MSG_HAS(err, "empty packet");
    ck_assert_int_eq(visor_packet_parse(NULL, 0, &p, NULL), SW_EPROTO);
    big = calloc(1, VISOR_TP_PKT_MAX + 1);
    ck_assert_ptr_nonnull(big);
    big[0] = VISOR_TP_PKT_DISCARD;
    ck_assert_int_eq(visor_packet_parse(big, VISOR_TP_PKT_MAX, &p, &err), SW_OK);
    ck_assert_uint_eq(p.body_len, VISOR_TP_PKT_MAX - 1);
    ck_assert_int_eq(visor_packet_parse(big, VISOR_TP_PKT_MAX + 1, &p, &err), SW_EPROTO);
    ASSERT_MSG_HAS(err, "at most 65519");
    /* routing packets pass through unchecked whatever their size (the router checks) */
    big[0] = 0x10;
    ck_assert_int_eq(visor_packet_parse(big, VISOR_TP_PKT_MAX, &p, &err), SW_OK);
    ck_assert(!p.known);
    free(big);

    /* the messages the log shows */
    const uint8_t short_sig[] = { VISOR_TP_PKT_ENTRY_SIG, 1, 2, 3 };
    ck_assert_int_eq(visor_packet_parse(short_sig, sizeof(short_sig), &p, &err), SW_EPROTO);
    ck_assert_str_eq(err.msg, "packet type 0x01 with a 3-byte body");
    const uint8_t long_close[] = { VISOR_TP_PKT_CLOSE, 0, 0 };
    ck_assert_int_eq(visor_packet_parse(long_close, sizeof(long_close), &p, &err), SW_EPROTO);
    ck_assert_str_eq(err.msg, "packet type 0x05 with a 2-byte body");
    const uint8_t empty_refuse[] = { VISOR_TP_PKT_REFUSE };
    ck_assert_int_eq(visor_packet_parse(empty_refuse, sizeof(empty_refuse), &p, &err), SW_EPROTO);
    ck_assert_str_eq(err.msg, "packet type 0x07 with a 0-byte body");
    const uint8_t refuse[] = { VISOR_TP_PKT_REFUSE, 'n', 'o' };
    ck_assert_int_eq(visor_packet_parse(refuse, sizeof(refuse), &p, &err), SW_OK);
    ck_assert(p.known && p.body_len == 2 && memcmp(p.body, "no", 2) == 0);
}
END_TEST

/* ---- framing -------------------------------------------------------------------------- */

START_TEST(test_frame_peek)
{
    uint8_t buf[2 + 600];
    struct sw_error err = { 0 };
    size_t n = 99;

    memset(buf, 0, sizeof(buf));
    /* no header yet */
    ck_assert_int_eq(visor_frame_peek(buf, 0, 512, &n, &err), SW_OK);
    ck_assert_uint_eq(n, 0);
    buf[0] = 0x01;
    n = 99;
    ck_assert_int_eq(visor_frame_peek(buf, 1, 512, &n, &err), SW_OK);
    ck_assert_uint_eq(n, 0);
    /* 0x0100 = 256: incomplete until 258 bytes are there */
    buf[1] = 0x00;
    ck_assert_int_eq(visor_frame_peek(buf, 2, 512, &n, &err), SW_OK);
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(visor_frame_peek(buf, 257, 512, &n, &err), SW_OK);
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(visor_frame_peek(buf, 258, 512, &n, &err), SW_OK);
    ck_assert_uint_eq(n, 256);
    ck_assert_int_eq(visor_frame_peek(buf, sizeof(buf), 512, &n, &err), SW_OK);
    ck_assert_uint_eq(n, 256);
    /* zero and oversize lengths */
    buf[0] = buf[1] = 0;
    ck_assert_int_eq(visor_frame_peek(buf, 2, 512, &n, &err), SW_EPROTO);
    ck_assert_str_eq(err.msg, "frame length 0 (allowed 1..512)");
    sw_put_u16(buf, 513);
    ck_assert_int_eq(visor_frame_peek(buf, 2, 512, &n, &err), SW_EPROTO);
    ck_assert_str_eq(err.msg, "frame length 513 (allowed 1..512)");
    sw_put_u16(buf, 512);
    ck_assert_int_eq(visor_frame_peek(buf, 514, 512, &n, &err), SW_OK);
    ck_assert_uint_eq(n, 512);
    /* max 0 means SW_FRAME_MAX */
    sw_put_u16(buf, 0xffff);
    ck_assert_int_eq(visor_frame_peek(buf, 2, 0, &n, &err), SW_OK);
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(visor_frame_peek(buf, 2, SW_FRAME_MAX + 10, &n, &err), SW_OK);
    /* the header is read from buf only as far as have says */
    uint8_t *one = dup_exact("\x00", 1);
    ck_assert_int_eq(visor_frame_peek(one, 1, 512, &n, &err), SW_OK);
    ck_assert_uint_eq(n, 0);
    free(one);
}
END_TEST

/* ---- the stcp handshake ---------------------------------------------------------------- */

static struct sw_keypair k_dialer, k_listener, k_other;

static void keys_setup(void)
{
    ck_assert_int_eq(sw_crypto_init(), SW_OK);
    ck_assert_int_eq(sw_keypair_generate(&k_dialer), SW_OK);
    ck_assert_int_eq(sw_keypair_generate(&k_listener), SW_OK);
    ck_assert_int_eq(sw_keypair_generate(&k_other), SW_OK);
}

static void start(struct sw_noise_hs *hs, const struct sw_keypair *me, const struct sw_pk *expect)
{
    ck_assert_int_eq(sw_noise_hs_init_ed25519(hs, SW_NOISE_XK,
                                              expect ? SW_NOISE_INITIATOR : SW_NOISE_RESPONDER,
                                              SW_NOISE_PROLOGUE_TP, me, expect),
                     SW_OK);
}

/* Message 1 from an initiator expecting `expect`. */
static size_t msg1(struct sw_noise_hs *ini, const struct sw_pk *expect, uint8_t *out)
{
    size_t n = 0;
    start(ini, &k_dialer, expect);
    ck_assert_int_eq(sw_noise_hs_write_message(ini, NULL, 0, out, VISOR_HS_FRAME_MAX, &n), SW_OK);
    return n;
}

START_TEST(test_hs_honest)
{
    struct sw_noise_hs ini, resp;
    struct sw_noise_cipher itx, irx, rtx, rrx;
    uint8_t m1[VISOR_HS_FRAME_MAX], m2[VISOR_HS_FRAME_MAX], m3[VISOR_HS_FRAME_MAX], *in;
    uint8_t pkt[64];
    size_t n1, n2 = 0, n3 = 0, n = 99;
    bool done = true;
    struct sw_pk remote;
    struct sw_cert peer;
    struct sw_error err = { 0 };

    n1 = msg1(&ini, &k_listener.pk, m1);
    start(&resp, &k_listener, NULL);
    in = dup_exact(m1, n1);
    ck_assert_int_eq(visor_hs_read(&resp, &k_listener.pk, NULL, in, n1, m2, sizeof(m2), &n2, &done, &remote,
                                   &peer, &err), SW_OK);
    free(in);
    ck_assert(!done);
    ck_assert_uint_eq(n2, SW_NOISE_XK_MSG2_LEN);

    in = dup_exact(m2, n2);
    ck_assert_int_eq(visor_hs_read(&ini, &k_dialer.pk, NULL, in, n2, m3, sizeof(m3), &n3, &done, &remote,
                                   &peer, &err), SW_OK);
    free(in);
    ck_assert(done);
    ck_assert_uint_eq(n3, SW_NOISE_XK_MSG3_LEN + SW_PK_LEN);

    done = false;
    in = dup_exact(m3, n3);
    ck_assert_int_eq(visor_hs_read(&resp, &k_listener.pk, NULL, in, n3, m2, sizeof(m2), &n, &done, &remote,
                                   &peer, &err), SW_OK);
    free(in);
    ck_assert(done);
    ck_assert_uint_eq(n, 0);
    ck_assert(sw_pk_equal(&remote, &k_dialer.pk));

    /* the ciphers agree: a PING survives the trip and parses */
    ck_assert_int_eq(sw_noise_hs_split(&ini, &itx, &irx), SW_OK);
    ck_assert_int_eq(sw_noise_hs_split(&resp, &rtx, &rrx), SW_OK);
    memset(pkt, 0, sizeof(pkt));
    pkt[0] = VISOR_TP_PKT_PING;
    pkt[8] = 42;
    ck_assert_int_eq(sw_noise_encrypt(&itx, NULL, 0, pkt, 9, pkt), SW_OK);
    ck_assert_int_eq(sw_noise_decrypt(&rrx, NULL, 0, pkt, 9 + SW_NOISE_TAG, pkt), SW_OK);
    struct visor_packet p;
    ck_assert_int_eq(visor_packet_parse(pkt, 9, &p, &err), SW_OK);
    ck_assert_uint_eq(p.token, 42);

    /* a finished handshake reads nothing more */
    ck_assert_int_ne(visor_hs_read(&resp, &k_listener.pk, NULL, m3, n3, m2, sizeof(m2), &n, &done, &remote,
                                   &peer, &err), SW_OK);
    sw_noise_hs_wipe(&ini);
    sw_noise_hs_wipe(&resp);
}
END_TEST

START_TEST(test_hs_wrong_key_and_turns)
{
    struct sw_noise_hs ini, resp;
    uint8_t m1[VISOR_HS_FRAME_MAX], out[VISOR_HS_FRAME_MAX];
    size_t n1, n = 77;
    bool done = false;
    struct sw_pk remote;
    struct sw_cert peer;
    struct sw_error err = { 0 };

    /* the dialer expects another key: message 1 does not authenticate */
    n1 = msg1(&ini, &k_other.pk, m1);
    start(&resp, &k_listener, NULL);
    ck_assert_int_eq(visor_hs_read(&resp, &k_listener.pk, NULL, m1, n1, out, sizeof(out), &n, &done, &remote,
                                   &peer, &err), SW_ECRYPTO);
    ck_assert_str_eq(err.msg, "handshake message 1 does not authenticate: the dialer expects another key");
    ck_assert_uint_eq(n, 77); /* untouched */
    /* the handshake is dead afterwards, even for a genuine message 1 */
    sw_noise_hs_wipe(&ini);
    n1 = msg1(&ini, &k_listener.pk, m1);
    ck_assert_int_ne(visor_hs_read(&resp, &k_listener.pk, NULL, m1, n1, out, sizeof(out), &n, &done, &remote,
                                   &peer, &err), SW_OK);

    /* the initiator must write first: reading before that is out of turn */
    sw_noise_hs_wipe(&ini);
    start(&ini, &k_dialer, &k_listener.pk);
    ck_assert_int_eq(visor_hs_read(&ini, &k_dialer.pk, NULL, m1, n1, out, sizeof(out), &n, &done, &remote,
                                   &peer, &err), SW_EPROTO);
    ASSERT_MSG_HAS(err, "out of turn");

    /* truncated and oversize message 1 */
    for (size_t cut = 0; cut < SW_NOISE_XK_MSG1_LEN; cut += 7) {
        uint8_t *in;
        sw_noise_hs_wipe(&ini);
        n1 = msg1(&ini, &k_listener.pk, m1);
        start(&resp, &k_listener, NULL);
        in = dup_exact(m1, cut);
        ck_assert_int_eq(visor_hs_read(&resp, &k_listener.pk, NULL, in, cut, out, sizeof(out), &n, &done,
                                       &remote, &peer, &err), SW_EPROTO);
        ASSERT_MSG_HAS(err, "handshake message 1 rejected");
        free(in);
    }
    /* a reply buffer too small for message 2 */
    sw_noise_hs_wipe(&ini);
    n1 = msg1(&ini, &k_listener.pk, m1);
    start(&resp, &k_listener, NULL);
    ck_assert_int_eq(visor_hs_read(&resp, &k_listener.pk, NULL, m1, n1, out, SW_NOISE_XK_MSG2_LEN - 1, &n,
                                   &done, &remote, &peer, &err), SW_ERANGE);
    ASSERT_MSG_HAS(err, "handshake message 2 failed");
    sw_noise_hs_wipe(&ini);
    sw_noise_hs_wipe(&resp);
}
END_TEST

/* Runs messages 1 and 2; returns with ini ready to write message 3. */
static void to_msg3(struct sw_noise_hs *ini, struct sw_noise_hs *resp)
{
    uint8_t m1[VISOR_HS_FRAME_MAX], m2[VISOR_HS_FRAME_MAX];
    size_t n1, n2 = 0, plen = 0;
    bool done;
    struct sw_pk remote;
    struct sw_cert peer;
    struct sw_error err = { 0 };

    n1 = msg1(ini, &k_listener.pk, m1);
    start(resp, &k_listener, NULL);
    ck_assert_int_eq(visor_hs_read(resp, &k_listener.pk, NULL, m1, n1, m2, sizeof(m2), &n2, &done, &remote,
                                   &peer, &err), SW_OK);
    ck_assert_int_eq(sw_noise_hs_read_message(ini, m2, n2, NULL, 0, &plen), SW_OK);
}

START_TEST(test_hs_forged_identity)
{
    struct sw_noise_hs ini, resp;
    uint8_t m3[VISOR_HS_FRAME_MAX], out[VISOR_HS_FRAME_MAX];
    size_t n3 = 0, n = 0;
    bool done = false;
    struct sw_pk remote;
    struct sw_cert peer;
    struct sw_error err = { 0 };

    /* message 3 names another identity than the static key it proves */
    to_msg3(&ini, &resp);
    ck_assert_int_eq(sw_noise_hs_write_message(&ini, k_other.pk.b, SW_PK_LEN, m3, sizeof(m3), &n3), SW_OK);
    ck_assert_int_eq(visor_hs_read(&resp, &k_listener.pk, NULL, m3, n3, out, sizeof(out), &n, &done, &remote,
                                   &peer, &err), SW_ECRYPTO);
    ck_assert_str_eq(err.msg, "handshake message 3: the identity does not match the static key");
    ck_assert(!done);
    sw_noise_hs_wipe(&ini);

    /* message 3 without an identity at all */
    to_msg3(&ini, &resp);
    ck_assert_int_eq(sw_noise_hs_write_message(&ini, NULL, 0, m3, sizeof(m3), &n3), SW_OK);
    ck_assert_int_eq(visor_hs_read(&resp, &k_listener.pk, NULL, m3, n3, out, sizeof(out), &n, &done, &remote,
                                   &peer, &err), SW_ECRYPTO);
    sw_noise_hs_wipe(&ini);

    /* every single-byte change of message 3 is refused */
    to_msg3(&ini, &resp);
    ck_assert_int_eq(sw_noise_hs_write_message(&ini, k_dialer.pk.b, SW_PK_LEN, m3, sizeof(m3), &n3), SW_OK);
    sw_noise_hs_wipe(&resp);
    for (size_t i = 0; i < n3; i++) {
        struct sw_noise_hs ini2, resp2;
        uint8_t bad[VISOR_HS_FRAME_MAX], m3b[VISOR_HS_FRAME_MAX];
        size_t nb = 0;
        to_msg3(&ini2, &resp2);
        ck_assert_int_eq(sw_noise_hs_write_message(&ini2, k_dialer.pk.b, SW_PK_LEN, m3b, sizeof(m3b), &nb),
                         SW_OK);
        memcpy(bad, m3b, nb);
        bad[i] ^= 0x01;
        ck_assert_int_ne(visor_hs_read(&resp2, &k_listener.pk, NULL, bad, nb, out, sizeof(out), &n, &done,
                                       &remote, &peer, &err), SW_OK);
        sw_noise_hs_wipe(&ini2);
        sw_noise_hs_wipe(&resp2);
    }
    sw_noise_hs_wipe(&ini);
}
END_TEST

/* ---- the handshake in a private network ------------------------------------------------- */

static struct sw_keypair k_net, k_net2;
static char g_tmp[64];

static void member_setup(void)
{
    keys_setup();
    ck_assert_int_eq(sw_keypair_generate(&k_net), SW_OK);
    ck_assert_int_eq(sw_keypair_generate(&k_net2), SW_OK);
    snprintf(g_tmp, sizeof(g_tmp), "/tmp/sw-visor-packet.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(g_tmp));
}

static void member_teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_tmp);
    ck_assert_int_eq(system(cmd), 0);
}

static uint64_t now_s(void) { return (uint64_t)(sw_unix_ms() / 1000); }

/* A certificate for subject signed by signer, valid [now + from, now + until). */
static struct sw_cert cert_for(const struct sw_keypair *signer, const struct sw_pk *subject, unsigned role,
                               int64_t from, int64_t until)
{
    struct sw_cert c = { 0 };
    c.role = (uint8_t)role;
    c.subject = *subject;
    c.not_before = (uint64_t)((int64_t)now_s() + from);
    c.not_after = (uint64_t)((int64_t)now_s() + until);
    snprintf(c.name, sizeof(c.name), "test");
    ck_assert_int_eq(sw_cert_sign(&c, signer, NULL), SW_OK);
    return c;
}

/* The policy of a member of k_net holding a visor certificate (me NULL: no own certificate). */
static struct sw_network *member_net(const struct sw_keypair *me)
{
    char hex[SW_PK_HEX_LEN + 1], path[128];
    struct sw_network *net = NULL;
    struct sw_error err = { 0 };
    struct sw_cert c;

    sw_pk_to_hex(&k_net.pk, hex);
    if (me) {
        char who[SW_PK_HEX_LEN + 1];
        sw_pk_to_hex(&me->pk, who);
        snprintf(path, sizeof(path), "%s/%.16s.cert", g_tmp, who);
        c = cert_for(&k_net, &me->pk, SW_ROLE_VISOR, -60, 3600);
        ck_assert_int_eq(sw_cert_save_file(path, &c, NULL), SW_OK);
    }
    const struct sw_network_opts o = { .network_pk = hex, .self = me ? &me->pk : NULL,
                                       .cert_file = me ? path : NULL,
                                       .self_roles = SW_ROLE_BIT(SW_ROLE_VISOR) };
    ck_assert_msg(sw_network_open(&net, &o, &err) == SW_OK, "%s", err.msg);
    ck_assert_ptr_nonnull(net);
    return net;
}

/* Runs a handshake dialer -> listener with the two policies (either may be NULL). Returns
 * the first failing visor_hs_read's code (SW_OK when both finished) and its err. */
static int run_hs(struct sw_network *dnet, struct sw_network *lnet, struct sw_cert *lpeer,
                  struct sw_cert *dpeer, bool *ldone, struct sw_pk *lremote, struct sw_error *err)
{
    struct sw_noise_hs ini, resp;
    uint8_t m1[VISOR_HS_FRAME_MAX], m2[VISOR_HS_FRAME_MAX], m3[VISOR_HS_FRAME_MAX];
    size_t n1, n2 = 0, n3 = 0, n = 0;
    bool done = false;
    struct sw_pk remote = k_listener.pk;
    int rc;

    *ldone = false;
    n1 = msg1(&ini, &k_listener.pk, m1);
    start(&resp, &k_listener, NULL);
    if ((rc = visor_hs_read(&resp, &k_listener.pk, lnet, m1, n1, m2, sizeof(m2), &n2, &done, lremote,
                            lpeer, err)))
        goto out;
    if ((rc = visor_hs_read(&ini, &k_dialer.pk, dnet, m2, n2, m3, sizeof(m3), &n3, &done, &remote,
                            dpeer, err)))
        goto out;
    rc = visor_hs_read(&resp, &k_listener.pk, lnet, m3, n3, m2, sizeof(m2), &n, ldone, lremote, lpeer, err);
    if (rc == SW_EPERM) /* the finished handshake can still be split to send REFUSE */
        ck_assert_int_eq(sw_noise_hs_split(&resp, &(struct sw_noise_cipher){ 0 },
                                           &(struct sw_noise_cipher){ 0 }), SW_OK);
out:
    sw_noise_hs_wipe(&ini);
    sw_noise_hs_wipe(&resp);
    return rc;
}

START_TEST(test_hs_members)
{
    struct sw_network *dnet = member_net(&k_dialer), *lnet = member_net(&k_listener);
    struct sw_cert lpeer, dpeer;
    struct sw_pk remote;
    struct sw_error err = { 0 };
    bool done;

    /* both members: each learns the other's certificate */
    ck_assert_msg(run_hs(dnet, lnet, &lpeer, &dpeer, &done, &remote, &err) == SW_OK, "%s", err.msg);
    ck_assert(done && sw_pk_equal(&remote, &k_dialer.pk));
    ck_assert(sw_pk_equal(&lpeer.subject, &k_dialer.pk) && lpeer.role == SW_ROLE_VISOR);
    ck_assert(sw_pk_equal(&dpeer.subject, &k_listener.pk) && sw_pk_equal(&dpeer.network, &k_net.pk));

    /* an open dialer (no certificate) is refused after message 3, which stays splittable */
    ck_assert_int_eq(run_hs(NULL, lnet, &lpeer, &dpeer, &done, &remote, &err), SW_EPERM);
    ck_assert_str_eq(err.msg, "not a member: no certificate");
    ck_assert(done && sw_pk_equal(&remote, &k_dialer.pk));

    /* a member dialing an open listener refuses it at message 2 */
    ck_assert_int_eq(run_hs(dnet, NULL, &lpeer, &dpeer, &done, &remote, &err), SW_EPERM);
    ck_assert_str_eq(err.msg, "refused the peer: not a member: no certificate");
    ck_assert(!done);

    /* an open listener ignores the member dialer's certificate: as today */
    ck_assert_int_eq(run_hs(NULL, NULL, &lpeer, &dpeer, &done, &remote, &err), SW_OK);

    /* revoked: the listener refuses a revoked dialer after message 3, and the dialer (with
     * the same list) refuses a revoked listener at message 2 */
    struct sw_revlist rl = { 0 };
    uint8_t *enc = NULL;
    size_t enc_len = 0;
    ck_assert_int_eq(sw_revlist_update(&rl, &k_dialer.pk, false), SW_OK);
    ck_assert_int_eq(sw_revlist_update(&rl, &k_listener.pk, false), SW_OK);
    ck_assert_int_eq(sw_revlist_sign(&rl, &k_net, now_s()), SW_OK);
    ck_assert_int_eq(sw_revlist_encode(&rl, &enc, &enc_len), SW_OK);
    ck_assert_int_eq(sw_network_offer_revocations(lnet, enc, enc_len, NULL), SW_OK);
    ck_assert_int_eq(run_hs(NULL, lnet, &lpeer, &dpeer, &done, &remote, &err), SW_EPERM);
    ck_assert_int_eq(run_hs(dnet, lnet, &lpeer, &dpeer, &done, &remote, &err), SW_EPERM);
    ASSERT_MSG_HAS(err, "is revoked");
    ck_assert(done); /* the listener's refusal, after message 3 */
    ck_assert_int_eq(sw_network_offer_revocations(dnet, enc, enc_len, NULL), SW_OK);
    ck_assert_int_eq(run_hs(dnet, NULL, &lpeer, &dpeer, &done, &remote, &err), SW_EPERM);
    ck_assert_str_eq(err.msg, "refused the peer: not a member: no certificate");
    sw_network_close(lnet);
    lnet = member_net(&k_listener); /* a fresh policy: no list yet */
    ck_assert_int_eq(run_hs(dnet, lnet, &lpeer, &dpeer, &done, &remote, &err), SW_EPERM);
    ASSERT_MSG_HAS(err, "refused the peer: not a member: ");
    ASSERT_MSG_HAS(err, "is revoked");
    ck_assert(!done); /* the dialer's refusal, at message 2 */
    sw_revlist_free(&rl);
    free(enc);
    sw_network_close(dnet);
    sw_network_close(lnet);
}
END_TEST

/* Message 3 carrying the dialer's key and cert[len] (as a hand-made dialer would send it). */
static int msg3_with(struct sw_network *lnet, const uint8_t *cert, size_t len, struct sw_error *err)
{
    struct sw_noise_hs ini, resp;
    uint8_t m3[VISOR_HS_FRAME_MAX], out[VISOR_HS_FRAME_MAX], payload[SW_PK_LEN + SW_CERT_MAX_LEN];
    size_t n3 = 0, n = 0;
    bool done = false;
    struct sw_pk remote;
    struct sw_cert peer;
    int rc;

    to_msg3(&ini, &resp); /* the listener runs open for messages 1-2: nothing checks them */
    memcpy(payload, k_dialer.pk.b, SW_PK_LEN);
    memcpy(payload + SW_PK_LEN, cert, len);
    ck_assert_int_eq(sw_noise_hs_write_message(&ini, payload, SW_PK_LEN + len, m3, sizeof(m3), &n3), SW_OK);
    rc = visor_hs_read(&resp, &k_listener.pk, lnet, m3, n3, out, sizeof(out), &n, &done, &remote, &peer, err);
    ck_assert(rc != SW_OK || sw_pk_equal(&peer.subject, &k_dialer.pk));
    if (rc == SW_EPERM)
        ck_assert(done && sw_pk_equal(&remote, &k_dialer.pk));
    sw_noise_hs_wipe(&ini);
    sw_noise_hs_wipe(&resp);
    return rc;
}

START_TEST(test_hs_bad_certificates)
{
    struct sw_network *lnet = member_net(NULL);
    struct sw_error err = { 0 };
    uint8_t raw[SW_CERT_MAX_LEN];
    size_t n = 0;
    struct sw_cert c;

    /* the genuine one gets in */
    c = cert_for(&k_net, &k_dialer.pk, SW_ROLE_VISOR, -10, 3600);
    ck_assert_int_eq(sw_cert_encode(&c, raw, sizeof(raw), &n), SW_OK);
    ck_assert_msg(msg3_with(lnet, raw, n, &err) == SW_OK, "%s", err.msg);
    /* every flipped bit of it is refused */
    for (size_t i = 0; i < n; i++) {
        for (int bit = 0; bit < 8; bit += 3) {
            raw[i] ^= (uint8_t)(1u << bit);
            ck_assert_msg(msg3_with(lnet, raw, n, &err) == SW_EPERM, "byte %zu bit %d", i, bit);
            raw[i] ^= (uint8_t)(1u << bit);
        }
    }
    /* truncated, and with a byte too many */
    ck_assert_int_eq(msg3_with(lnet, raw, n - 1, &err), SW_EPERM);
    raw[n] = 0;
    ck_assert_int_eq(msg3_with(lnet, raw, n + 1, &err), SW_EPERM);
    /* a messaging server's certificate: wrong role */
    c = cert_for(&k_net, &k_dialer.pk, SW_ROLE_MESSAGING_SERVER, -10, 3600);
    ck_assert_int_eq(sw_cert_encode(&c, raw, sizeof(raw), &n), SW_OK);
    ck_assert_int_eq(msg3_with(lnet, raw, n, &err), SW_EPERM);
    ck_assert_str_eq(err.msg, "not a member in this role: role messaging-server, expected visor");
    /* another network's, another key's, expired, not yet valid */
    c = cert_for(&k_net2, &k_dialer.pk, SW_ROLE_VISOR, -10, 3600);
    ck_assert_int_eq(sw_cert_encode(&c, raw, sizeof(raw), &n), SW_OK);
    ck_assert_int_eq(msg3_with(lnet, raw, n, &err), SW_EPERM);
    ASSERT_MSG_HAS(err, "not a member");
    c = cert_for(&k_net, &k_other.pk, SW_ROLE_VISOR, -10, 3600);
    ck_assert_int_eq(sw_cert_encode(&c, raw, sizeof(raw), &n), SW_OK);
    ck_assert_int_eq(msg3_with(lnet, raw, n, &err), SW_EPERM);
    ck_assert_str_eq(err.msg, "not a member: the certificate is for another key");
    c = cert_for(&k_net, &k_dialer.pk, SW_ROLE_VISOR, -7200, -3600);
    ck_assert_int_eq(sw_cert_encode(&c, raw, sizeof(raw), &n), SW_OK);
    ck_assert_int_eq(msg3_with(lnet, raw, n, &err), SW_EPERM);
    c = cert_for(&k_net, &k_dialer.pk, SW_ROLE_VISOR, 3600, 7200);
    ck_assert_int_eq(sw_cert_encode(&c, raw, sizeof(raw), &n), SW_OK);
    ck_assert_int_eq(msg3_with(lnet, raw, n, &err), SW_EPERM);
    /* no certificate at all, and garbage */
    ck_assert_int_eq(msg3_with(lnet, raw, 0, &err), SW_EPERM);
    ck_assert_str_eq(err.msg, "not a member: no certificate");
    memset(raw, 0xee, sizeof(raw));
    ck_assert_int_eq(msg3_with(lnet, raw, SW_CERT_MAX_LEN, &err), SW_EPERM);
    sw_network_close(lnet);
}
END_TEST

/* ---- transports.json -------------------------------------------------------------------- */

#define PK_A "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c" /* seed 0x01.. */

struct collected {
    size_t n;
    struct visor_store_record recs[4];
    char where[4][48];
    int fail_at; /* -1: never */
};

static int collect(void *ctx, const struct visor_store_record *r, const char *where, struct sw_error *err)
{
    struct collected *c = ctx;
    if ((int)c->n == c->fail_at)
        return sw_error_set(err, SW_EEXIST, "%s: refused by the callback", where);
    if (c->n < 4) {
        c->recs[c->n] = *r;
        snprintf(c->where[c->n], sizeof(c->where[0]), "%s", where);
    }
    c->n++;
    return SW_OK;
}

static int store(const char *text, struct collected *c, struct sw_error *err)
{
    uint8_t *buf = dup_exact(text, strlen(text));
    int rc;
    memset(c, 0, sizeof(*c));
    c->fail_at = -1;
    memset(err, 0, sizeof(*err));
    rc = visor_store_parse((const char *)buf, strlen(text), collect, c, err);
    free(buf);
    return rc;
}

static struct sw_pk some_pk(void)
{
    struct sw_pk pk;
    struct sw_keypair kp;
    ck_assert_int_eq(sw_keypair_generate(&kp), SW_OK);
    pk = kp.pk;
    sw_keypair_wipe(&kp);
    return pk;
}

START_TEST(test_store_valid)
{
    struct sw_pk a = some_pk(), b = some_pk();
    char ha[SW_PK_HEX_LEN + 1], hb[SW_PK_HEX_LEN + 1], doc[1024];
    struct collected c;
    struct sw_error err;

    sw_pk_to_hex(&a, ha);
    sw_pk_to_hex(&b, hb);
    snprintf(doc, sizeof(doc),
             "{\"version\":1,\"transports\":["
             "{\"id\":\"whatever\",\"remote_pk\":\"%s\",\"type\":\"stcp\",\"address\":\"10.0.0.2:7777\","
             "\"remembered\":true,\"bytes_sent\":18446744073709551615,\"bytes_received\":5678,\"extra\":[1]},"
             "{\"remote_pk\":\"%s\",\"type\":\"dmsg\",\"address\":null,\"remembered\":false,"
             "\"bytes_sent\":0,\"bytes_received\":0}]}\n",
             ha, hb);
    ck_assert_int_eq(store(doc, &c, &err), SW_OK);
    ck_assert_uint_eq(c.n, 2);
    ck_assert(sw_pk_equal(&c.recs[0].remote, &a));
    ck_assert_int_eq(c.recs[0].kind, VISOR_TP_STCP);
    ck_assert_str_eq(c.recs[0].addr, "10.0.0.2:7777");
    ck_assert(c.recs[0].remembered);
    ck_assert_uint_eq(c.recs[0].bytes_sent, UINT64_MAX);
    ck_assert_uint_eq(c.recs[0].bytes_received, 5678);
    ck_assert_str_eq(c.where[0], "transports[0]");
    ck_assert(sw_pk_equal(&c.recs[1].remote, &b));
    ck_assert_int_eq(c.recs[1].kind, VISOR_TP_DMSG);
    ck_assert_str_eq(c.recs[1].addr, "");
    ck_assert(!c.recs[1].remembered);
    ck_assert_str_eq(c.where[1], "transports[1]");

    /* no version (older files), empty list, the callback may be NULL */
    ck_assert_int_eq(store("{\"transports\":[]}", &c, &err), SW_OK);
    ck_assert_uint_eq(c.n, 0);
    ck_assert_int_eq(visor_store_parse(doc, strlen(doc), NULL, NULL, &err), SW_OK);

    /* a callback failure stops the parse with its code and message */
    memset(&c, 0, sizeof(c));
    c.fail_at = 1;
    ck_assert_int_eq(visor_store_parse(doc, strlen(doc), collect, &c, &err), SW_EEXIST);
    ck_assert_uint_eq(c.n, 1);
    ASSERT_MSG_HAS(err, "transports[1]: refused by the callback");
}
END_TEST

START_TEST(test_store_malformed)
{
    static const struct {
        const char *doc, *needle;
    } cases[] = {
        { "", "JSON" },
        { "not json", "JSON" },
        { "{\"transports\":[]} x", "JSON" },
        { "[]", "must be a JSON object" },
        { "{}", "'transports'" },
        { "{\"transports\":{}}", "'transports'" },
        { "{\"version\":2,\"transports\":[]}", "'version'" },
        { "{\"version\":\"1\",\"transports\":[]}", "'version'" },
        { "{\"version\":1.0,\"transports\":[]}", "'version'" },
        { "{\"transports\":[1]}", "'transports[0]': must be an object" },
        { "{\"transports\":[{}]}", "transports[0].remote_pk" },
        { "{\"transports\":[{\"remote_pk\":\"zz\",\"type\":\"stcp\",\"remembered\":true,"
          "\"bytes_sent\":0,\"bytes_received\":0}]}", "transports[0].remote_pk" },
        { "{\"transports\":[{\"remote_pk\":\"" PK_A "\",\"type\":\"tcp\",\"remembered\":true,"
          "\"bytes_sent\":0,\"bytes_received\":0}]}", "transports[0].type" },
        { "{\"transports\":[{\"remote_pk\":\"" PK_A "\",\"type\":7,\"remembered\":true,"
          "\"bytes_sent\":0,\"bytes_received\":0}]}", "transports[0].type" },
        { "{\"transports\":[{\"remote_pk\":\"" PK_A "\",\"type\":\"stcp\",\"remembered\":1,"
          "\"bytes_sent\":0,\"bytes_received\":0}]}", "transports[0].remembered" },
        { "{\"transports\":[{\"remote_pk\":\"" PK_A "\",\"type\":\"stcp\",\"remembered\":true,"
          "\"bytes_sent\":-1,\"bytes_received\":0}]}", "transports[0].bytes_sent" },
        { "{\"transports\":[{\"remote_pk\":\"" PK_A "\",\"type\":\"stcp\",\"remembered\":true,"
          "\"bytes_sent\":0,\"bytes_received\":1e3}]}", "transports[0].bytes_received" },
        { "{\"transports\":[{\"remote_pk\":\"" PK_A "\",\"type\":\"stcp\",\"remembered\":true,"
          "\"bytes_sent\":0}]}", "transports[0].bytes_received" },
        { "{\"transports\":[{\"remote_pk\":\"" PK_A "\",\"type\":\"stcp\",\"remembered\":true,"
          "\"bytes_sent\":0,\"bytes_received\":0,\"address\":\"no-port\"}]}", "transports[0].address" },
        { "{\"transports\":[{\"remote_pk\":\"" PK_A "\",\"type\":\"stcp\",\"remembered\":true,"
          "\"bytes_sent\":0,\"bytes_received\":0,\"address\":\"h:99999\"}]}", "transports[0].address" },
        { "{\"transports\":[{\"remote_pk\":\"" PK_A "\",\"type\":\"stcp\",\"remembered\":true,"
          "\"bytes_sent\":0,\"bytes_received\":0,\"address\":5}]}", "transports[0].address" },
        { "{\"transports\":[{\"remote_pk\":\"" PK_A "\",\"type\":\"stcp\",\"remembered\":true,"
          "\"bytes_sent\":0,\"bytes_received\":0,\"address\":\"a\\u0000b:1\"}]}", "transports[0].address" },
    };
    struct collected c;
    struct sw_error err;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = store(cases[i].doc, &c, &err);
        ck_assert_msg(rc == SW_EINVAL, "case %zu: rc %d", i, rc);
        ck_assert_int_eq(err.code, rc);
        ck_assert_msg(strstr(err.msg, cases[i].needle), "case %zu: '%s' lacks '%s'", i, err.msg,
                      cases[i].needle);
        ck_assert_uint_eq(c.n, 0);
    }
}
END_TEST

START_TEST(test_store_limits)
{
    char good[512], *doc, *p;
    struct collected c;
    struct sw_error err;
    size_t n = VISOR_MAX_TRANSPORTS + 1, cap;

    /* a bad record late in the file: nothing at all is delivered */
    snprintf(good, sizeof(good),
             "{\"remote_pk\":\"%s\",\"type\":\"stcp\",\"remembered\":true,\"bytes_sent\":0,"
             "\"bytes_received\":0}",
             PK_A);
    cap = 64 + 4 * (strlen(good) + 1);
    doc = malloc(cap);
    ck_assert_ptr_nonnull(doc);
    snprintf(doc, cap, "{\"transports\":[%s,%s,%s,{\"remote_pk\":1}]}", good, good, good);
    ck_assert_int_eq(store(doc, &c, &err), SW_EINVAL);
    ASSERT_MSG_HAS(err, "transports[3].remote_pk");
    ck_assert_uint_eq(c.n, 0);
    free(doc);

    /* an address of VISOR_ADDR_MAX bytes does not fit */
    doc = malloc(2 * VISOR_ADDR_MAX + 512);
    ck_assert_ptr_nonnull(doc);
    p = doc + sprintf(doc, "{\"transports\":[{\"remote_pk\":\"%s\",\"type\":\"stcp\",\"remembered\":true,"
                           "\"bytes_sent\":0,\"bytes_received\":0,\"address\":\"", PK_A);
    memset(p, 'a', VISOR_ADDR_MAX - 5);
    p += VISOR_ADDR_MAX - 5;
    strcpy(p, ":7777\"}]}");
    ck_assert_int_eq(store(doc, &c, &err), SW_EINVAL);
    ASSERT_MSG_HAS(err, "transports[0].address");
    /* one shorter fits */
    memmove(p - 1, p, strlen(p) + 1);
    ck_assert_int_eq(store(doc, &c, &err), SW_OK);
    ck_assert_uint_eq(strlen(c.recs[0].addr), VISOR_ADDR_MAX - 1);
    free(doc);

    /* more records than the visor can hold */
    doc = malloc(32 + 3 * n);
    ck_assert_ptr_nonnull(doc);
    p = doc + sprintf(doc, "{\"transports\":[");
    for (size_t i = 0; i < n; i++)
        p += sprintf(p, i ? ",{}" : "{}");
    strcpy(p, "]}");
    ck_assert_int_eq(store(doc, &c, &err), SW_EINVAL);
    ASSERT_MSG_HAS(err, "more than 65536 records");
    free(doc);

    /* nesting deeper than the JSON limit */
    doc = malloc(200);
    ck_assert_ptr_nonnull(doc);
    p = doc;
    for (int i = 0; i < 40; i++)
        *p++ = '[';
    for (int i = 0; i < 40; i++)
        *p++ = ']';
    *p = '\0';
    ck_assert_int_eq(store(doc, &c, &err), SW_EINVAL);
    free(doc);

    /* a NUL byte inside the text */
    ck_assert_int_eq(visor_store_parse("{\"transports\":[]}\0", 18, collect, &c, &err), SW_EINVAL);
    ck_assert_int_eq(visor_store_parse(NULL, 0, collect, &c, &err), SW_EINVAL);
}
END_TEST

/* ---- API request bodies ------------------------------------------------------------------ */

static int add(const char *body, struct visor_api_add_request *r, const char **code, struct sw_error *err)
{
    uint8_t *buf = dup_exact(body, strlen(body));
    int rc;
    *code = "unset";
    memset(err, 0, sizeof(*err));
    rc = visor_api_parse_add((const char *)buf, strlen(body), r, code, err);
    free(buf);
    return rc;
}

START_TEST(test_api_add)
{
    struct visor_api_add_request r;
    const char *code;
    struct sw_error err;

    ck_assert_int_eq(add("{\"remote_pk\":\"" PK_A "\"}", &r, &code, &err), SW_OK);
    ck_assert_int_eq(r.kind, VISOR_TP_STCP);
    ck_assert_str_eq(r.addr, "");
    ck_assert_str_eq(code, "unset");
    ck_assert_int_eq(add("{\"remote_pk\":\"" PK_A "\",\"type\":\"dmsg\",\"address\":\"[::1]:7\"}", &r,
                         &code, &err), SW_OK);
    ck_assert_int_eq(r.kind, VISOR_TP_DMSG);
    ck_assert_str_eq(r.addr, "[::1]:7");
    ck_assert_int_eq(add("{\"remote_pk\":\"" PK_A "\",\"type\":null,\"address\":\"\"}", &r, &code, &err),
                     SW_OK);
    ck_assert_int_eq(r.kind, VISOR_TP_STCP);

    static const struct {
        const char *body, *code;
    } bad[] = {
        { "", "invalid_json" },
        { "{", "invalid_json" },
        { "{} {}", "invalid_json" },
        { "[]", "invalid_body" },
        { "\"x\"", "invalid_body" },
        { "{}", "invalid_public_key" },
        { "{\"remote_pk\":\"abc\"}", "invalid_public_key" },
        { "{\"remote_pk\":7}", "invalid_public_key" },
        { "{\"remote_pk\":\"" PK_A "\",\"type\":\"tcp\"}", "invalid_type" },
        { "{\"remote_pk\":\"" PK_A "\",\"type\":[]}", "invalid_type" },
        { "{\"remote_pk\":\"" PK_A "\",\"address\":\"nope\"}", "invalid_address" },
        { "{\"remote_pk\":\"" PK_A "\",\"address\":1}", "invalid_address" },
        { "{\"remote_pk\":\"" PK_A "\",\"address\":\"h:70000\"}", "invalid_address" },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&r, 0x5a, sizeof(r));
        ck_assert_msg(add(bad[i].body, &r, &code, &err) != SW_OK, "case %zu", i);
        ck_assert_msg(strcmp(code, bad[i].code) == 0, "case %zu: code %s, not %s", i, code, bad[i].code);
        ck_assert(err.msg[0] != '\0');
        ck_assert_uint_eq(r.addr[0], 0x5a); /* untouched */
    }
    ck_assert_int_ne(visor_api_parse_add(NULL, 0, &r, &code, &err), SW_OK);
    ck_assert_str_eq(code, "invalid_json");
    ck_assert_int_ne(visor_api_parse_add("{}", 2, &r, NULL, NULL), SW_OK);
}
END_TEST

START_TEST(test_api_discard)
{
    static const char *const bad[] = {
        "", "{}", "[]", "{\"bytes\":0}", "{\"bytes\":-1}", "{\"bytes\":\"1\"}", "{\"bytes\":1.5}",
        "{\"bytes\":1001}", "{\"bytes\":18446744073709551616}", "{\"bytes\":1} x",
    };
    struct sw_error err = { 0 };
    uint64_t n = 0;

    ck_assert_int_eq(visor_api_parse_discard("{\"bytes\":1000}", 14, 1000, &n, &err), SW_OK);
    ck_assert_uint_eq(n, 1000);
    ck_assert_int_eq(visor_api_parse_discard("{\"bytes\":1}", 11, 1000, &n, &err), SW_OK);
    ck_assert_uint_eq(n, 1);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint8_t *buf = dup_exact(bad[i], strlen(bad[i]));
        n = 77;
        ck_assert_msg(visor_api_parse_discard((const char *)buf, strlen(bad[i]), 1000, &n, &err) == SW_EINVAL,
                      "case %zu", i);
        ck_assert_str_eq(err.msg, "the body must be {\"bytes\": 1..1000}");
        ck_assert_uint_eq(n, 77);
        free(buf);
    }
    ck_assert_int_eq(visor_api_parse_discard(NULL, 0, 1000, &n, NULL), SW_EINVAL);
}
END_TEST

static Suite *visor_packet_suite(void)
{
    Suite *s = suite_create("visor_packet");
    TCase *tp = tcase_create("packets");
    TCase *th = tcase_create("handshake");
    TCase *ts = tcase_create("store");
    TCase *ta = tcase_create("api");

    tcase_add_test(tp, test_packet_every_type_and_length);
    tcase_add_test(tp, test_packet_fields_and_limits);
    tcase_add_test(tp, test_frame_peek);
    suite_add_tcase(s, tp);
    tcase_add_checked_fixture(th, keys_setup, NULL);
    tcase_add_test(th, test_hs_honest);
    tcase_add_test(th, test_hs_wrong_key_and_turns);
    tcase_add_test(th, test_hs_forged_identity);
    suite_add_tcase(s, th);
    TCase *tm = tcase_create("membership");
    tcase_add_checked_fixture(tm, member_setup, member_teardown);
    tcase_add_test(tm, test_hs_members);
    tcase_add_test(tm, test_hs_bad_certificates);
    suite_add_tcase(s, tm);
    tcase_add_checked_fixture(ts, keys_setup, NULL);
    tcase_add_test(ts, test_store_valid);
    tcase_add_test(ts, test_store_malformed);
    tcase_add_test(ts, test_store_limits);
    suite_add_tcase(s, ts);
    tcase_add_test(ta, test_api_add);
    tcase_add_test(ta, test_api_discard);
    suite_add_tcase(s, ta);
    return s;
}

const struct th_check_main th_check_main = { .suite = visor_packet_suite };
