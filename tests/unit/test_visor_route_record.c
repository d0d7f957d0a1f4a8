/* Unit tests for visor/route_record.c: the end-to-end records of a route group (seal/open with
 * the packet number as the nonce, the 256-packet replay window), the 21-byte stream header and
 * the 6-byte route hello — valid input and every kind of malformed input (short, tampered,
 * replayed, unknown flags, sequence overflow, wrong length/version/mode). */
#include "common/bytes.h"
#include "common/err.h"
#include "common/keys.h"
#include "common/noise.h"
#include "visor/route_record.h"
#include "tests/harness/check_main.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#define REC_MAX (VISOR_REC_OVERHEAD + SW_NOISE_MAX_PAYLOAD)

/* check's ck_assert reports every check through a pipe: the loops of many thousands of checks
 * below use this instead (a failure still fails the test, with its line). */
#define REQUIRE(c)                                                   \
    do {                                                             \
        if (!(c))                                                    \
            ck_abort_msg("line %d: %s", __LINE__, #c);               \
    } while (0)

static uint8_t g_rec[REC_MAX + 64], g_inner[SW_NOISE_MAX_PAYLOAD + 64], g_plain[SW_NOISE_MAX_MSG + 64];

/* Both directions of one test session share this key (the test only needs one direction). */
static void cipher_pair(struct sw_noise_cipher *tx, struct sw_noise_cipher *rx, uint8_t key_byte)
{
    memset(tx, 0, sizeof(*tx));
    for (size_t i = 0; i < sizeof(tx->k); i++)
        tx->k[i] = (uint8_t)(key_byte + i * 7);
    *rx = *tx;
    rx->n = 12345; /* whatever the cipher's counter says, the record's pn is the nonce */
    tx->n = 999;
}

static void fill(uint8_t *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(seed * 31 + i * 13 + (i >> 8));
}

/* Seals inner[len] (filled from seed) as pn; returns the record's length. */
static size_t seal(struct sw_noise_cipher *tx, uint64_t pn, size_t len, unsigned seed)
{
    size_t n;
    fill(g_inner, len, seed);
    n = visor_rec_seal(tx, pn, g_inner, len, g_rec);
    ck_assert_uint_eq(n, VISOR_REC_OVERHEAD + len);
    return n;
}

static int open_rec(struct sw_noise_cipher *rx, struct visor_replay *rw, const uint8_t *rec, size_t len,
                    size_t *plain_len)
{
    struct sw_error err = { 0 };
    int rc = visor_rec_open(rx, rw, rec, len, g_plain, plain_len, &err);
    if (rc != SW_OK)
        REQUIRE(err.code == rc && err.msg[0] != '\0');
    return rc;
}

/* ---- records ---- */

START_TEST(test_seal_open_round_trip)
{
    static const size_t sizes[] = { 0, 1, VISOR_REC_HDR_LEN, 1000, 65000, SW_NOISE_MAX_PAYLOAD };
    struct sw_noise_cipher tx, rx;
    struct visor_replay rw = { 0 };
    size_t plain_len, n;

    cipher_pair(&tx, &rx, 1);
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        uint64_t pn = i * 3 + 1;
        n = seal(&tx, pn, sizes[i], (unsigned)i);
        ck_assert_uint_eq(sw_get_u64(g_rec), pn); /* the pn travels in the clear, big-endian */
        plain_len = 7777;
        ck_assert_int_eq(open_rec(&rx, &rw, g_rec, n, &plain_len), SW_OK);
        ck_assert_uint_eq(plain_len, sizes[i]);
        ck_assert(memcmp(g_plain, g_inner, sizes[i]) == 0);
        ck_assert(rw.any);
        ck_assert_uint_eq(rw.top, pn);
    }
    /* the highest pn that can be sealed (UINT64_MAX is Noise's reserved nonce) */
    n = seal(&tx, UINT64_MAX - 1, 5, 9);
    ck_assert_int_eq(open_rec(&rx, &rw, g_rec, n, &plain_len), SW_OK);
    ck_assert_uint_eq(plain_len, 5);
    ck_assert(memcmp(g_plain, g_inner, 5) == 0);
}
END_TEST

START_TEST(test_seal_open_in_place)
{
    struct sw_noise_cipher tx, rx;
    struct visor_replay rw = { 0 };
    uint8_t buf[VISOR_REC_OVERHEAD + 300], want[300];
    struct sw_error err = { 0 };
    size_t n, plain_len = 0;

    cipher_pair(&tx, &rx, 2);
    fill(buf + VISOR_REC_PN_LEN, 300, 4);
    memcpy(want, buf + VISOR_REC_PN_LEN, 300);
    /* out + 8 == inner */
    n = visor_rec_seal(&tx, 77, buf + VISOR_REC_PN_LEN, 300, buf);
    ck_assert_uint_eq(n, sizeof(buf));
    ck_assert_uint_eq(sw_get_u64(buf), 77);
    /* plain == rec + 8 */
    ck_assert_int_eq(visor_rec_open(&rx, &rw, buf, n, buf + VISOR_REC_PN_LEN, &plain_len, &err), SW_OK);
    ck_assert_uint_eq(plain_len, 300);
    ck_assert(memcmp(buf + VISOR_REC_PN_LEN, want, 300) == 0);
}
END_TEST

START_TEST(test_seal_refuses_oversize_and_reserved_pn)
{
    struct sw_noise_cipher tx, rx;

    cipher_pair(&tx, &rx, 3);
    fill(g_inner, SW_NOISE_MAX_PAYLOAD + 1, 1);
    ck_assert_uint_eq(visor_rec_seal(&tx, 1, g_inner, SW_NOISE_MAX_PAYLOAD + 1, g_rec), 0);
    ck_assert_uint_eq(visor_rec_seal(&tx, UINT64_MAX, g_inner, 10, g_rec), 0);
    ck_assert_uint_eq(visor_rec_seal(&tx, 0, g_inner, 10, g_rec), VISOR_REC_OVERHEAD + 10);
}
END_TEST

/* Malformed: every single-bit flip, in the pn, the ciphertext or the tag, is refused. */
START_TEST(test_open_tampered_byte_is_ecrypto)
{
    struct sw_noise_cipher tx, rx;
    struct visor_replay rw = { 0 }, before;
    uint8_t rec[VISOR_REC_OVERHEAD + 40];
    size_t n, plain_len = 0;

    cipher_pair(&tx, &rx, 4);
    n = seal(&tx, 500, 40, 2);
    memcpy(rec, g_rec, n);
    /* a window with something in it, so a forged pn would show if it were marked */
    ck_assert_int_eq(open_rec(&rx, &rw, g_rec, seal(&tx, 480, 3, 3), &plain_len), SW_OK);
    before = rw;
    for (size_t i = 0; i < n; i++) {
        for (int bit = 0; bit < 8; bit++) {
            rec[i] ^= (uint8_t)(1u << bit);
            plain_len = 4242;
            ck_assert_int_eq(open_rec(&rx, &rw, rec, n, &plain_len), SW_ECRYPTO);
            ck_assert_uint_eq(plain_len, 4242); /* untouched */
            ck_assert(memcmp(&rw, &before, sizeof(rw)) == 0);
            rec[i] ^= (uint8_t)(1u << bit);
        }
    }
    /* one byte less (a truncated tag) does not authenticate either */
    ck_assert_int_eq(open_rec(&rx, &rw, rec, n - 1, &plain_len), SW_ECRYPTO);
    /* another key */
    {
        struct sw_noise_cipher tx2, rx2;
        cipher_pair(&tx2, &rx2, 99);
        ck_assert_int_eq(open_rec(&rx2, &rw, rec, n, &plain_len), SW_ECRYPTO);
    }
    ck_assert(memcmp(&rw, &before, sizeof(rw)) == 0);
    /* the genuine record still opens */
    ck_assert_int_eq(open_rec(&rx, &rw, rec, n, &plain_len), SW_OK);
    ck_assert_uint_eq(plain_len, 40);
}
END_TEST

/* Malformed: shorter than pn + tag, or longer than a Noise message allows. */
START_TEST(test_open_short_record_is_eproto)
{
    struct sw_noise_cipher tx, rx;
    struct visor_replay rw = { 0 }, before;
    size_t n, plain_len = 31337;

    cipher_pair(&tx, &rx, 5);
    n = seal(&tx, 1, 0, 1);
    ck_assert_uint_eq(n, VISOR_REC_OVERHEAD);
    before = rw;
    for (size_t len = 0; len < VISOR_REC_OVERHEAD; len++) {
        ck_assert_int_eq(open_rec(&rx, &rw, g_rec, len, &plain_len), SW_EPROTO);
        ck_assert_uint_eq(plain_len, 31337);
        ck_assert(memcmp(&rw, &before, sizeof(rw)) == 0);
    }
    /* a NULL record of length 0 is just short */
    ck_assert_int_eq(open_rec(&rx, &rw, NULL, 0, &plain_len), SW_EPROTO);
    /* longer than pn + the largest Noise message */
    memset(g_rec, 0, VISOR_REC_PN_LEN + SW_NOISE_MAX_MSG + 1);
    ck_assert_int_eq(open_rec(&rx, &rw, g_rec, VISOR_REC_PN_LEN + SW_NOISE_MAX_MSG + 1, &plain_len), SW_EPROTO);
    /* the empty record (pn + tag) is fine */
    n = seal(&tx, 2, 0, 1);
    ck_assert_int_eq(open_rec(&rx, &rw, g_rec, n, &plain_len), SW_OK);
    ck_assert_uint_eq(plain_len, 0);
}
END_TEST

/* Malformed: a replayed record, one older than the window, the reserved pn. */
START_TEST(test_open_replay_is_eexist)
{
    struct sw_noise_cipher tx, rx;
    struct visor_replay rw = { 0 };
    uint8_t saved[VISOR_REC_OVERHEAD + 8];
    size_t n, plain_len;

    cipher_pair(&tx, &rx, 6);
    n = seal(&tx, 5, 8, 1);
    memcpy(saved, g_rec, n);
    ck_assert_int_eq(open_rec(&rx, &rw, saved, n, &plain_len), SW_OK);
    ck_assert_int_eq(open_rec(&rx, &rw, saved, n, &plain_len), SW_EEXIST);

    /* top 1000: 745 (255 behind) is still in the window, 744 (256 behind) is not */
    n = seal(&tx, 1000, 8, 2);
    ck_assert_int_eq(open_rec(&rx, &rw, g_rec, n, &plain_len), SW_OK);
    n = seal(&tx, 744, 8, 3);
    ck_assert_int_eq(open_rec(&rx, &rw, g_rec, n, &plain_len), SW_EEXIST);
    n = seal(&tx, 0, 8, 3);
    ck_assert_int_eq(open_rec(&rx, &rw, g_rec, n, &plain_len), SW_EEXIST);
    n = seal(&tx, 745, 8, 4);
    memcpy(saved, g_rec, n);
    ck_assert_int_eq(open_rec(&rx, &rw, saved, n, &plain_len), SW_OK);
    ck_assert_int_eq(open_rec(&rx, &rw, saved, n, &plain_len), SW_EEXIST);
    /* the old pn 5 is far out of the window now */
    n = seal(&tx, 5, 8, 1);
    ck_assert_int_eq(open_rec(&rx, &rw, g_rec, n, &plain_len), SW_EEXIST);

    /* a record claiming the reserved pn UINT64_MAX (it cannot be sealed) is refused */
    memset(saved, 0xff, VISOR_REC_PN_LEN);
    ck_assert_int_ne(open_rec(&rx, &rw, saved, n, &plain_len), SW_OK);
    ck_assert_uint_eq(rw.top, 1000);
}
END_TEST

/* Records arriving out of order inside the window are each taken once. */
START_TEST(test_open_out_of_order_within_window)
{
    static const uint64_t order[] = { 300, 100, 299, 45, 200, 301, 46, 290, 550, 296, 295, 549, 400 };
    struct sw_noise_cipher tx, rx;
    struct visor_replay rw = { 0 };
    static uint8_t recs[sizeof(order) / sizeof(order[0])][VISOR_REC_OVERHEAD + 4];
    size_t n = 0, plain_len;
    const size_t k = sizeof(order) / sizeof(order[0]);

    cipher_pair(&tx, &rx, 7);
    for (size_t i = 0; i < k; i++) {
        n = seal(&tx, order[i], 4, (unsigned)i);
        memcpy(recs[i], g_rec, n);
    }
    for (size_t i = 0; i < k; i++) {
        ck_assert_int_eq(open_rec(&rx, &rw, recs[i], n, &plain_len), SW_OK);
        fill(g_inner, 4, (unsigned)i);
        ck_assert(memcmp(g_plain, g_inner, 4) == 0);
        /* every one opened so far is now a replay, whatever its place in the window */
        for (size_t j = 0; j <= i; j++)
            ck_assert_int_eq(open_rec(&rx, &rw, recs[j], n, &plain_len), SW_EEXIST);
    }
    ck_assert_uint_eq(rw.top, 550);
    /* 294 (256 behind 550) fell out; 295 was taken; 297 is fresh */
    n = seal(&tx, 294, 4, 1);
    ck_assert_int_eq(open_rec(&rx, &rw, g_rec, n, &plain_len), SW_EEXIST);
    n = seal(&tx, 297, 4, 1);
    ck_assert_int_eq(open_rec(&rx, &rw, g_rec, n, &plain_len), SW_OK);
    ck_assert_int_eq(open_rec(&rx, &rw, g_rec, n, &plain_len), SW_EEXIST);
}
END_TEST

/* A record that does not authenticate changes nothing: not its pn, not the top. */
START_TEST(test_failed_open_does_not_mark_window)
{
    struct sw_noise_cipher tx, rx;
    struct visor_replay rw = { 0 }, before;
    uint8_t good[VISOR_REC_OVERHEAD + 16];
    size_t n, plain_len;

    cipher_pair(&tx, &rx, 8);
    /* a forgery before anything arrived leaves the window empty */
    n = seal(&tx, 7, 16, 1);
    memcpy(good, g_rec, n);
    g_rec[n - 1] ^= 1;
    ck_assert_int_eq(open_rec(&rx, &rw, g_rec, n, &plain_len), SW_ECRYPTO);
    ck_assert(!rw.any);
    ck_assert_int_eq(open_rec(&rx, &rw, good, n, &plain_len), SW_OK);

    /* a forgery far ahead does not move the window (else 7 + 1 would fall out of it) */
    before = rw;
    n = seal(&tx, 1u << 20, 16, 2);
    g_rec[VISOR_REC_PN_LEN] ^= 0x80;
    ck_assert_int_eq(open_rec(&rx, &rw, g_rec, n, &plain_len), SW_ECRYPTO);
    ck_assert(memcmp(&rw, &before, sizeof(rw)) == 0);
    /* the forged pn itself is still fresh */
    ck_assert(visor_replay_fresh(&rw, 1u << 20));
    n = seal(&tx, 8, 16, 3);
    ck_assert_int_eq(open_rec(&rx, &rw, g_rec, n, &plain_len), SW_OK);
    n = seal(&tx, 1u << 20, 16, 2);
    ck_assert_int_eq(open_rec(&rx, &rw, g_rec, n, &plain_len), SW_OK);
}
END_TEST

/* The window against a model that remembers every pn ever marked. */
START_TEST(test_replay_window_model)
{
    enum { SPACE = 1 << 14 };
    static uint8_t seen[SPACE];
    struct visor_replay rw = { 0 };
    uint64_t top = 0;
    bool any = false;
    unsigned seed = 42;

    memset(seen, 0, sizeof(seen));
    REQUIRE(visor_replay_fresh(&rw, 0));
    REQUIRE(visor_replay_fresh(&rw, UINT64_MAX - 1));
    for (int i = 0; i < 200000; i++) {
        uint64_t pn;
        bool want;
        int r = rand_r(&seed);
        switch (r % 4) {
        case 0: /* ahead of the top, sometimes by a lot (shifts of every size) */
            pn = top + (uint64_t)(rand_r(&seed) % ((r & 16) ? 300 : 70));
            break;
        case 1: /* around the edge of the window */
            pn = top - 250 + (uint64_t)(rand_r(&seed) % 10);
            break;
        default: /* inside the window */
            pn = top - (uint64_t)(rand_r(&seed) % 260);
            break;
        }
        if (pn >= SPACE || (any && pn + SPACE / 2 < top)) /* stay inside the model */
            pn = top;
        if (top > SPACE - 400) { /* start over */
            memset(seen, 0, sizeof(seen));
            memset(&rw, 0, sizeof(rw));
            top = 0;
            any = false;
            continue;
        }
        want = !any || pn > top || (top - pn < VISOR_REC_REPLAY_BITS && !seen[pn]);
        if (visor_replay_fresh(&rw, pn) != want)
            ck_abort_msg("step %d pn %llu top %llu", i, (unsigned long long)pn, (unsigned long long)top);
        if (want) {
            visor_replay_mark(&rw, pn);
            seen[pn] = 1;
            if (!any || pn > top)
                top = pn;
            any = true;
            REQUIRE(!visor_replay_fresh(&rw, pn));
            REQUIRE(rw.top == top);
        }
    }
}
END_TEST

/* Arbitrary bytes as a record: refused with one of the three codes, never a success. */
START_TEST(test_open_random_bytes)
{
    struct sw_noise_cipher tx, rx;
    struct visor_replay rw = { 0 };
    unsigned seed = 7;
    uint8_t buf[128];

    cipher_pair(&tx, &rx, 9);
    for (int i = 0; i < 20000; i++) {
        size_t n = (size_t)(rand_r(&seed) % (int)sizeof(buf)), plain_len = 0;
        int rc;
        for (size_t j = 0; j < n; j++)
            buf[j] = (uint8_t)rand_r(&seed);
        rc = open_rec(&rx, &rw, buf, n, &plain_len);
        REQUIRE(rc == SW_EPROTO || rc == SW_ECRYPTO || rc == SW_EEXIST);
        REQUIRE(!rw.any);
    }
}
END_TEST

/* ---- the stream header ---- */

static size_t put_inner(uint8_t *out, uint8_t flags, uint64_t seq, uint64_t ack, uint32_t window, size_t len)
{
    struct visor_rec_hdr h = { .flags = flags, .seq = seq, .ack = ack, .window = window };
    visor_rec_hdr_put(out, &h);
    fill(out + VISOR_REC_HDR_LEN, len, 5);
    return VISOR_REC_HDR_LEN + len;
}

START_TEST(test_hdr_parse_valid)
{
    uint8_t buf[VISOR_REC_HDR_LEN + 100];
    struct visor_rec_hdr h;
    struct sw_error err = { 0 };
    size_t n;

    for (uint8_t flags = 0; flags <= VISOR_REC_FLAGS_KNOWN; flags++) {
        n = put_inner(buf, flags, 0x0102030405060708ull, 0x1112131415161718ull, 0x21222324u, 100);
        ck_assert_int_eq(visor_rec_hdr_parse(buf, n, &h, &err), SW_OK);
        ck_assert_uint_eq(h.flags, flags);
        ck_assert_uint_eq(h.seq, 0x0102030405060708ull);
        ck_assert_uint_eq(h.ack, 0x1112131415161718ull);
        ck_assert_uint_eq(h.window, 0x21222324u);
        ck_assert_ptr_eq(h.payload, buf + VISOR_REC_HDR_LEN);
        ck_assert_uint_eq(h.len, 100);
    }
    /* the layout, byte by byte */
    ck_assert_uint_eq(buf[0], VISOR_REC_FLAGS_KNOWN);
    ck_assert_uint_eq(buf[1], 0x01);
    ck_assert_uint_eq(buf[8], 0x08);
    ck_assert_uint_eq(buf[9], 0x11);
    ck_assert_uint_eq(buf[16], 0x18);
    ck_assert_uint_eq(buf[17], 0x21);
    ck_assert_uint_eq(buf[20], 0x24);
    /* a header alone: no payload */
    n = put_inner(buf, VISOR_REC_FIN, 9, 0, 0, 0);
    ck_assert_int_eq(visor_rec_hdr_parse(buf, n, &h, &err), SW_OK);
    ck_assert_uint_eq(h.len, 0);
    ck_assert_ptr_null(h.payload);
    /* re-encoding gives the same bytes */
    n = put_inner(buf, VISOR_REC_GAP | VISOR_REC_PROBE, UINT64_MAX - 2, UINT64_MAX, UINT32_MAX, 1);
    ck_assert_int_eq(visor_rec_hdr_parse(buf, n, &h, &err), SW_OK);
    {
        uint8_t again[VISOR_REC_HDR_LEN];
        visor_rec_hdr_put(again, &h);
        ck_assert(memcmp(again, buf, VISOR_REC_HDR_LEN) == 0);
    }
}
END_TEST

/* Malformed: fewer than 21 bytes. */
START_TEST(test_hdr_parse_short)
{
    uint8_t buf[VISOR_REC_HDR_LEN];
    struct visor_rec_hdr h, before;
    struct sw_error err = { 0 };

    put_inner(buf, 0, 1, 2, 3, 0);
    memset(&h, 0x5a, sizeof(h));
    before = h;
    for (size_t len = 0; len < VISOR_REC_HDR_LEN; len++) {
        ck_assert_int_eq(visor_rec_hdr_parse(buf, len, &h, &err), SW_EPROTO);
        ck_assert_int_eq(err.code, SW_EPROTO);
        ck_assert(memcmp(&h, &before, sizeof(h)) == 0);
    }
    ck_assert_int_eq(visor_rec_hdr_parse(NULL, 0, &h, NULL), SW_EPROTO);
    ck_assert_int_eq(visor_rec_hdr_parse(buf, VISOR_REC_HDR_LEN, &h, NULL), SW_OK);
}
END_TEST

/* Malformed: a flag bit this version does not know. */
START_TEST(test_hdr_parse_unknown_flags)
{
    uint8_t buf[VISOR_REC_HDR_LEN + 4];
    struct visor_rec_hdr h, before;
    struct sw_error err = { 0 };

    memset(&h, 0x5a, sizeof(h));
    before = h;
    for (unsigned f = 0; f < 256; f++) {
        size_t n = put_inner(buf, (uint8_t)f, 10, 0, 100, 4);
        int rc = visor_rec_hdr_parse(buf, n, &h, &err);
        if (f & ~(unsigned)VISOR_REC_FLAGS_KNOWN) {
            ck_assert_int_eq(rc, SW_EPROTO);
            ck_assert_ptr_nonnull(strstr(err.msg, "flag"));
            ck_assert(memcmp(&h, &before, sizeof(h)) == 0);
        } else {
            ck_assert_int_eq(rc, SW_OK);
            memset(&h, 0x5a, sizeof(h));
        }
    }
}
END_TEST

/* Malformed: seq + len past the sequence space. The stream needs seq + len (its FIN offset)
 * below UINT64_MAX, which is VISOR_STREAM_NO_FIN. */
START_TEST(test_hdr_parse_seq_len_overflow)
{
    uint8_t buf[VISOR_REC_HDR_LEN + 10];
    struct visor_rec_hdr h;
    struct sw_error err = { 0 };

    ck_assert_int_eq(visor_rec_hdr_parse(buf, put_inner(buf, 0, UINT64_MAX, 0, 0, 0), &h, &err), SW_EPROTO);
    ck_assert_int_eq(visor_rec_hdr_parse(buf, put_inner(buf, 0, UINT64_MAX, 0, 0, 10), &h, &err), SW_EPROTO);
    ck_assert_int_eq(visor_rec_hdr_parse(buf, put_inner(buf, 0, UINT64_MAX - 5, 0, 0, 10), &h, &err), SW_EPROTO);
    ck_assert_int_eq(visor_rec_hdr_parse(buf, put_inner(buf, VISOR_REC_FIN, UINT64_MAX - 10, 0, 0, 10), &h, &err),
                     SW_EPROTO);
    /* the last offsets that fit: seq + len = UINT64_MAX - 1 */
    ck_assert_int_eq(visor_rec_hdr_parse(buf, put_inner(buf, 0, UINT64_MAX - 11, 0, 0, 10), &h, &err), SW_OK);
    ck_assert_uint_eq(h.seq + h.len, UINT64_MAX - 1);
    ck_assert_int_eq(visor_rec_hdr_parse(buf, put_inner(buf, VISOR_REC_FIN, UINT64_MAX - 1, 0, 0, 0), &h, &err),
                     SW_OK);
    /* ack and window may take any value (the stream judges them) */
    ck_assert_int_eq(visor_rec_hdr_parse(buf, put_inner(buf, 0, 0, UINT64_MAX, UINT32_MAX, 10), &h, &err), SW_OK);
}
END_TEST

/* Arbitrary bytes: a success is exactly the contract, a failure leaves h alone. */
START_TEST(test_hdr_parse_random)
{
    uint8_t buf[40];
    unsigned seed = 3;

    for (int i = 0; i < 100000; i++) {
        size_t n = (size_t)(rand_r(&seed) % (int)sizeof(buf));
        struct visor_rec_hdr h;
        bool want;
        for (size_t j = 0; j < n; j++)
            buf[j] = (uint8_t)rand_r(&seed);
        if (n && (i & 1))
            buf[0] &= VISOR_REC_FLAGS_KNOWN;
        if (n > 1 && (i & 2))
            buf[1] = 0;
        want = n >= VISOR_REC_HDR_LEN && !(buf[0] & ~VISOR_REC_FLAGS_KNOWN) &&
               sw_get_u64(buf + 1) < UINT64_MAX - (n - VISOR_REC_HDR_LEN);
        memset(&h, 0, sizeof(h));
        REQUIRE((visor_rec_hdr_parse(buf, n, &h, NULL) == SW_OK) == want);
        if (want)
            REQUIRE(h.len == n - VISOR_REC_HDR_LEN);
        else
            REQUIRE(h.seq == 0);
    }
}
END_TEST

/* ---- the route hello ---- */

START_TEST(test_hello_round_trip)
{
    uint8_t p[VISOR_HELLO_LEN];
    enum visor_route_mode mode;
    uint32_t window;
    struct sw_error err = { 0 };

    visor_hello_put(p, VISOR_ROUTE_STREAM, 0x01020304u);
    ck_assert_uint_eq(p[0], VISOR_HELLO_VERSION);
    ck_assert_uint_eq(p[1], 0);
    ck_assert_uint_eq(p[2], 0x01);
    ck_assert_uint_eq(p[5], 0x04);
    ck_assert_int_eq(visor_hello_parse(p, sizeof(p), &mode, &window, &err), SW_OK);
    ck_assert_int_eq(mode, VISOR_ROUTE_STREAM);
    ck_assert_uint_eq(window, 0x01020304u);
    visor_hello_put(p, VISOR_ROUTE_DATAGRAM, UINT32_MAX);
    ck_assert_int_eq(visor_hello_parse(p, sizeof(p), &mode, &window, &err), SW_OK);
    ck_assert_int_eq(mode, VISOR_ROUTE_DATAGRAM);
    ck_assert_uint_eq(window, UINT32_MAX);
    visor_hello_put(p, VISOR_ROUTE_STREAM, 0);
    ck_assert_int_eq(visor_hello_parse(p, sizeof(p), &mode, &window, NULL), SW_OK);
    ck_assert_uint_eq(window, 0);
    ck_assert_str_eq(visor_route_mode_name(VISOR_ROUTE_STREAM), "stream");
    ck_assert_str_eq(visor_route_mode_name(VISOR_ROUTE_DATAGRAM), "datagram");
}
END_TEST

/* Malformed: wrong length, version or mode; the outputs stay untouched. */
START_TEST(test_hello_malformed)
{
    uint8_t p[VISOR_HELLO_LEN + 4];
    enum visor_route_mode mode = (enum visor_route_mode)77;
    uint32_t window = 4242;
    struct sw_error err = { 0 };

    visor_hello_put(p, VISOR_ROUTE_DATAGRAM, 100);
    p[6] = p[7] = 0;
    for (size_t len = 0; len <= sizeof(p); len++) {
        if (len == VISOR_HELLO_LEN)
            continue;
        ck_assert_int_eq(visor_hello_parse(p, len, &mode, &window, &err), SW_EPROTO);
        ck_assert_ptr_nonnull(strstr(err.msg, "bytes"));
    }
    ck_assert_int_eq(visor_hello_parse(NULL, 0, &mode, &window, &err), SW_EPROTO);
    for (unsigned v = 0; v < 256; v++) {
        if (v == VISOR_HELLO_VERSION)
            continue;
        p[0] = (uint8_t)v;
        ck_assert_int_eq(visor_hello_parse(p, VISOR_HELLO_LEN, &mode, &window, &err), SW_EPROTO);
        ck_assert_ptr_nonnull(strstr(err.msg, "version"));
    }
    p[0] = VISOR_HELLO_VERSION;
    for (unsigned m = VISOR_ROUTE_DATAGRAM + 1; m < 256; m++) {
        p[1] = (uint8_t)m;
        ck_assert_int_eq(visor_hello_parse(p, VISOR_HELLO_LEN, &mode, &window, &err), SW_EPROTO);
        ck_assert_ptr_nonnull(strstr(err.msg, "mode"));
    }
    ck_assert_int_eq(mode, 77);
    ck_assert_uint_eq(window, 4242);
}
END_TEST

static Suite *visor_route_record_suite(void)
{
    Suite *s = suite_create("visor_route_record");
    TCase *rec = tcase_create("record");
    TCase *hdr = tcase_create("header");
    TCase *hello = tcase_create("hello");

    tcase_add_test(rec, test_seal_open_round_trip);
    tcase_add_test(rec, test_seal_open_in_place);
    tcase_add_test(rec, test_seal_refuses_oversize_and_reserved_pn);
    tcase_add_test(rec, test_open_tampered_byte_is_ecrypto);
    tcase_add_test(rec, test_open_short_record_is_eproto);
    tcase_add_test(rec, test_open_replay_is_eexist);
    tcase_add_test(rec, test_open_out_of_order_within_window);
    tcase_add_test(rec, test_failed_open_does_not_mark_window);
    tcase_add_test(rec, test_replay_window_model);
    tcase_add_test(rec, test_open_random_bytes);
    tcase_set_timeout(rec, 60);
    suite_add_tcase(s, rec);
    tcase_add_test(hdr, test_hdr_parse_valid);
    tcase_add_test(hdr, test_hdr_parse_short);
    tcase_add_test(hdr, test_hdr_parse_unknown_flags);
    tcase_add_test(hdr, test_hdr_parse_seq_len_overflow);
    tcase_add_test(hdr, test_hdr_parse_random);
    suite_add_tcase(s, hdr);
    tcase_add_test(hello, test_hello_round_trip);
    tcase_add_test(hello, test_hello_malformed);
    suite_add_tcase(s, hello);
    return s;
}

const struct th_check_main th_check_main = { .suite = visor_route_record_suite, .before = sw_crypto_init };
