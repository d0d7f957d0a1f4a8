/* Unit tests for the visor's parsers of peer and file input (visor/packet.c, visor/parse.c):
 * transport packets (every type and body length), the u16 framing, the stcp handshake step
 * (honest run, wrong key, out of turn, forged identity, tampering), transports.json (every
 * malformed field is refused and named, nothing is delivered from a bad file) and the local
 * API's request bodies. Inputs sit in exact-size heap buffers so ASan catches over-reads. */
#include "visor/packet.h"
#include "visor/parse.h"
#include "common/bytes.h"
#include "common/err.h"
#include "common/frame.h"
#include "common/keys.h"
#include "common/noise.h"
#include "tests/harness/check_main.h"

#include <check.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* The body length a known type must have, -1 for "any", -2 for unknown/routing types. */
static long want_body(uint8_t type)
{
    switch (type) {
    case VISOR_TP_PKT_ENTRY_SIG: return SW_SIG_LEN;
    case VISOR_TP_PKT_PING:
    case VISOR_TP_PKT_PONG: return 8;
    case VISOR_TP_PKT_DISCARD: return -1;
    case VISOR_TP_PKT_CLOSE: return 1;
    default: return -2;
    }
}

START_TEST(test_packet_every_type_and_length)
{
    for (unsigned type = 0; type < 256; type++) {
        for (size_t blen = 0; blen <= 80; blen++) {
            uint8_t buf[81];
            struct visor_packet p;
            struct sw_error err = { 0 };
            long want = want_body((uint8_t)type);
            bool ok = want < 0 || (size_t)want == blen;
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
    struct sw_error err = { 0 };

    n1 = msg1(&ini, &k_listener.pk, m1);
    start(&resp, &k_listener, NULL);
    in = dup_exact(m1, n1);
    ck_assert_int_eq(visor_hs_read(&resp, &k_listener.pk, in, n1, m2, sizeof(m2), &n2, &done, &remote,
                                   &err), SW_OK);
    free(in);
    ck_assert(!done);
    ck_assert_uint_eq(n2, SW_NOISE_XK_MSG2_LEN);

    in = dup_exact(m2, n2);
    ck_assert_int_eq(visor_hs_read(&ini, &k_dialer.pk, in, n2, m3, sizeof(m3), &n3, &done, &remote,
                                   &err), SW_OK);
    free(in);
    ck_assert(done);
    ck_assert_uint_eq(n3, SW_NOISE_XK_MSG3_LEN + SW_PK_LEN);

    done = false;
    in = dup_exact(m3, n3);
    ck_assert_int_eq(visor_hs_read(&resp, &k_listener.pk, in, n3, m2, sizeof(m2), &n, &done, &remote,
                                   &err), SW_OK);
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
    ck_assert_int_ne(visor_hs_read(&resp, &k_listener.pk, m3, n3, m2, sizeof(m2), &n, &done, &remote,
                                   &err), SW_OK);
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
    struct sw_error err = { 0 };

    /* the dialer expects another key: message 1 does not authenticate */
    n1 = msg1(&ini, &k_other.pk, m1);
    start(&resp, &k_listener, NULL);
    ck_assert_int_eq(visor_hs_read(&resp, &k_listener.pk, m1, n1, out, sizeof(out), &n, &done, &remote,
                                   &err), SW_ECRYPTO);
    ck_assert_str_eq(err.msg, "handshake message 1 does not authenticate: the dialer expects another key");
    ck_assert_uint_eq(n, 77); /* untouched */
    /* the handshake is dead afterwards, even for a genuine message 1 */
    sw_noise_hs_wipe(&ini);
    n1 = msg1(&ini, &k_listener.pk, m1);
    ck_assert_int_ne(visor_hs_read(&resp, &k_listener.pk, m1, n1, out, sizeof(out), &n, &done, &remote,
                                   &err), SW_OK);

    /* the initiator must write first: reading before that is out of turn */
    sw_noise_hs_wipe(&ini);
    start(&ini, &k_dialer, &k_listener.pk);
    ck_assert_int_eq(visor_hs_read(&ini, &k_dialer.pk, m1, n1, out, sizeof(out), &n, &done, &remote,
                                   &err), SW_EPROTO);
    ASSERT_MSG_HAS(err, "out of turn");

    /* truncated and oversize message 1 */
    for (size_t cut = 0; cut < SW_NOISE_XK_MSG1_LEN; cut += 7) {
        uint8_t *in;
        sw_noise_hs_wipe(&ini);
        n1 = msg1(&ini, &k_listener.pk, m1);
        start(&resp, &k_listener, NULL);
        in = dup_exact(m1, cut);
        ck_assert_int_eq(visor_hs_read(&resp, &k_listener.pk, in, cut, out, sizeof(out), &n, &done,
                                       &remote, &err), SW_EPROTO);
        ASSERT_MSG_HAS(err, "handshake message 1 rejected");
        free(in);
    }
    /* a reply buffer too small for message 2 */
    sw_noise_hs_wipe(&ini);
    n1 = msg1(&ini, &k_listener.pk, m1);
    start(&resp, &k_listener, NULL);
    ck_assert_int_eq(visor_hs_read(&resp, &k_listener.pk, m1, n1, out, SW_NOISE_XK_MSG2_LEN - 1, &n,
                                   &done, &remote, &err), SW_ERANGE);
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
    struct sw_error err = { 0 };

    n1 = msg1(ini, &k_listener.pk, m1);
    start(resp, &k_listener, NULL);
    ck_assert_int_eq(visor_hs_read(resp, &k_listener.pk, m1, n1, m2, sizeof(m2), &n2, &done, &remote,
                                   &err), SW_OK);
    ck_assert_int_eq(sw_noise_hs_read_message(ini, m2, n2, NULL, 0, &plen), SW_OK);
}

START_TEST(test_hs_forged_identity)
{
    struct sw_noise_hs ini, resp;
    uint8_t m3[VISOR_HS_FRAME_MAX], out[VISOR_HS_FRAME_MAX];
    size_t n3 = 0, n = 0;
    bool done = false;
    struct sw_pk remote;
    struct sw_error err = { 0 };

    /* message 3 names another identity than the static key it proves */
    to_msg3(&ini, &resp);
    ck_assert_int_eq(sw_noise_hs_write_message(&ini, k_other.pk.b, SW_PK_LEN, m3, sizeof(m3), &n3), SW_OK);
    ck_assert_int_eq(visor_hs_read(&resp, &k_listener.pk, m3, n3, out, sizeof(out), &n, &done, &remote,
                                   &err), SW_ECRYPTO);
    ck_assert_str_eq(err.msg, "handshake message 3: the identity does not match the static key");
    ck_assert(!done);
    sw_noise_hs_wipe(&ini);

    /* message 3 without an identity at all */
    to_msg3(&ini, &resp);
    ck_assert_int_eq(sw_noise_hs_write_message(&ini, NULL, 0, m3, sizeof(m3), &n3), SW_OK);
    ck_assert_int_eq(visor_hs_read(&resp, &k_listener.pk, m3, n3, out, sizeof(out), &n, &done, &remote,
                                   &err), SW_ECRYPTO);
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
        ck_assert_int_ne(visor_hs_read(&resp2, &k_listener.pk, bad, nb, out, sizeof(out), &n, &done,
                                       &remote, &err), SW_OK);
        sw_noise_hs_wipe(&ini2);
        sw_noise_hs_wipe(&resp2);
    }
    sw_noise_hs_wipe(&ini);
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
