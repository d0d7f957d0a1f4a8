/* fuzz_visor_packet.c — what a peer sends over a visor link (visor/packet.c; routing
 * packets: visor_rpkt_parse of visor/rules.c). The first byte picks a mode:
 *   0  one packet: visor_packet_parse (and visor_rpkt_parse for routing types); a parsed
 *      packet obeys its type's length rule and points inside the input, a routing packet
 *      re-encodes to the input byte for byte, and a failure leaves the output untouched;
 *   1  a raw byte stream as link.c reads it: visor_frame_peek cuts frames (512 bytes at most
 *      while handshaking) that go to a listener's visor_hs_read, then to visor_packet_parse;
 *   2  an honest dialer against the listener's visor_hs_read, with input-driven damage
 *      (flipped byte, truncation, forged identity payload); if it still completes, the rest
 *      of the input is packets sealed by the dialer, opened and parsed as link.c does;
 *   3  the dialer's side: visor_hs_read on an honest listener's message 2, damaged likewise;
 *   4  a private network's listener: an honest dialer's message 3 carries its key and a
 *      certificate, the genuine one damaged by the input or the input's own bytes; only the
 *      undamaged certificate admits it, a refusal (SW_EPERM) leaves the handshake finished.
 * Keys and ephemerals are fixed so crashes reproduce. Nothing may crash, leak or read out of
 * bounds; a disagreement with the documented contract traps. */
#include "common/bytes.h"
#include "common/err.h"
#include "common/frame.h"
#include "common/keys.h"
#include "common/netcert.h"
#include "common/network.h"
#include "common/noise.h"
#include "visor/packet.h"
#include "visor/rules.h"
#include "tests/fuzz/fuzz.h"

#include <sodium.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static struct sw_keypair g_dialer, g_listener, g_netkey;
static uint8_t g_eph_d[32], g_eph_l[32];
static bool g_ready;
static struct sw_network *g_net;          /* mode 4: a private network, no own certificate */
static uint8_t g_cert[SW_CERT_MAX_LEN];    /* the dialer's genuine visor certificate */
static size_t g_cert_len;

static void setup(void)
{
    uint8_t seed[crypto_sign_SEEDBYTES];
    if (sodium_init() < 0)
        __builtin_trap();
    memset(seed, 1, sizeof(seed));
    crypto_sign_seed_keypair(g_dialer.pk.b, g_dialer.sk, seed);
    memset(seed, 2, sizeof(seed));
    crypto_sign_seed_keypair(g_listener.pk.b, g_listener.sk, seed);
    memset(g_eph_d, 3, sizeof(g_eph_d));
    memset(g_eph_l, 4, sizeof(g_eph_l));
    memset(seed, 5, sizeof(seed));
    crypto_sign_seed_keypair(g_netkey.pk.b, g_netkey.sk, seed);
    char hex[SW_PK_HEX_LEN + 1];
    sw_pk_to_hex(&g_netkey.pk, hex);
    const struct sw_network_opts o = { .network_pk = hex };
    struct sw_cert c = { .role = SW_ROLE_VISOR, .subject = g_dialer.pk, .not_before = 0,
                         .not_after = 4102444800u /* 2100 */, .name = "fuzz", .groups = "a,b" };
    CHECK(sw_network_open(&g_net, &o, NULL) == SW_OK && g_net);
    CHECK(sw_cert_sign(&c, &g_netkey, NULL) == SW_OK);
    CHECK(sw_cert_encode(&c, g_cert, sizeof(g_cert), &g_cert_len) == SW_OK);
    g_ready = true;
}

static bool inside(const uint8_t *p, size_t n, const uint8_t *buf, size_t len)
{
    return p >= buf && n <= len && (size_t)(p - buf) <= len - n;
}

/* Mode 0 (and every packet of the other modes): buf is an exact-size heap copy. */
static void check_packet(const uint8_t *buf, size_t len)
{
    struct visor_packet p, before;
    struct sw_error err = { 0 };
    int rc;

    memset(&p, 0x5a, sizeof(p));
    before = p;
    rc = visor_packet_parse(buf, len, &p, &err);
    if (rc != SW_OK) {
        CHECK(rc == SW_EPROTO && err.code == rc && err.msg[0]);
        CHECK(memchr(err.msg, '\0', sizeof(err.msg)) != NULL);
        CHECK(memcmp(&p, &before, sizeof(p)) == 0);
        CHECK(len == 0 || len > VISOR_TP_PKT_MAX || buf[0] == VISOR_TP_PKT_ENTRY_SIG ||
              buf[0] == VISOR_TP_PKT_PING || buf[0] == VISOR_TP_PKT_PONG || buf[0] == VISOR_TP_PKT_CLOSE ||
              buf[0] == VISOR_TP_PKT_CERT || buf[0] == VISOR_TP_PKT_REFUSE);
    } else {
        CHECK(len >= 1 && len <= VISOR_TP_PKT_MAX && p.type == buf[0] && p.body_len == len - 1);
        CHECK(p.body_len == 0 ? p.body == NULL : p.body == buf + 1);
        switch (p.type) {
        case VISOR_TP_PKT_ENTRY_SIG:
            CHECK(p.known && p.body_len == SW_SIG_LEN && p.sig == buf + 1);
            break;
        case VISOR_TP_PKT_PING:
        case VISOR_TP_PKT_PONG: {
            uint64_t t = 0;
            CHECK(p.known && p.body_len == 8);
            for (int i = 0; i < 8; i++)
                t = (t << 8) | buf[1 + i];
            CHECK(p.token == t);
            break;
        }
        case VISOR_TP_PKT_CLOSE:
            CHECK(p.known && p.body_len == 1 && p.reason == buf[1]);
            break;
        case VISOR_TP_PKT_DISCARD:
            CHECK(p.known);
            break;
        case VISOR_TP_PKT_CERT:
            CHECK(p.known && p.body_len >= SW_CERT_MIN_LEN && p.body_len <= SW_CERT_MAX_LEN);
            break;
        case VISOR_TP_PKT_REFUSE:
            CHECK(p.known && p.body_len >= 1 && p.body_len <= VISOR_REFUSE_TEXT_MAX);
            break;
        default:
            CHECK(!p.known);
        }
    }
    if (len == 0 || !visor_rpkt_is_routing(buf[0]))
        return;
    /* routing packets: the router's parser, which must round-trip */
    struct visor_rpkt r;
    if (visor_rpkt_parse(buf, len, &r) == SW_OK) {
        uint8_t *again = malloc(len);
        CHECK(again != NULL);
        CHECK(r.type == buf[0] && r.rid != 0);
        if (r.type == VISOR_RPKT_DATA)
            CHECK(r.data_len >= 1 && inside(r.data, r.data_len, buf, len));
        CHECK(visor_rpkt_build(again, len, r.type, r.rid, r.data, r.data_len, r.code) == len);
        CHECK(memcmp(again, buf, len) == 0);
        if (len > 1)
            CHECK(visor_rpkt_build(again, len - 1, r.type, r.rid, r.data, r.data_len, r.code) == 0);
        free(again);
    }
}

static void packet_copy(const uint8_t *p, size_t n)
{
    uint8_t *buf = malloc(n ? n : 1);
    CHECK(buf != NULL);
    if (n)
        memcpy(buf, p, n);
    check_packet(buf, n);
    free(buf);
}

static void start(struct sw_noise_hs *hs, bool dialer)
{
    CHECK(sw_noise_hs_init_ed25519(hs, SW_NOISE_XK, dialer ? SW_NOISE_INITIATOR : SW_NOISE_RESPONDER,
                                   SW_NOISE_PROLOGUE_TP, dialer ? &g_dialer : &g_listener,
                                   dialer ? &g_listener.pk : NULL) == SW_OK);
    CHECK(sw_noise_hs_set_ephemeral(hs, dialer ? g_eph_d : g_eph_l) == SW_OK);
}

/* Calls visor_hs_read on an exact-size copy and checks the contract. net: NULL, or g_net for
 * a private listener. */
static int hs_read(struct sw_noise_hs *hs, bool dialer, struct sw_network *net, const uint8_t *msg,
                   size_t len, uint8_t *reply, size_t *reply_len, bool *done, struct sw_pk *remote)
{
    struct sw_error err = { 0 };
    uint8_t *copy = malloc(len ? len : 1);
    size_t n = 12345;
    bool d = false;
    struct sw_pk r;
    struct sw_cert peer;
    int rc;

    CHECK(copy != NULL);
    if (len)
        memcpy(copy, msg, len);
    memset(&r, 0x77, sizeof(r));
    if (dialer)
        r = g_listener.pk; /* the key it dialed */
    rc = visor_hs_read(hs, dialer ? &g_dialer.pk : &g_listener.pk, net, copy, len, reply,
                       VISOR_HS_FRAME_MAX, &n, &d, &r, &peer, &err);
    free(copy);
    if (rc == SW_EPERM && net && !dialer) { /* not a member: the finished handshake stays */
        CHECK(err.code == rc && strstr(err.msg, "not a member") != NULL);
        CHECK(d && n == 0 && sw_pk_equal(&r, &g_dialer.pk) && sw_noise_hs_finished(hs));
        *done = d;
        if (remote)
            *remote = r;
        return rc;
    }
    if (rc != SW_OK) {
        CHECK(rc < 0 && err.code == rc && err.msg[0]);
        CHECK(n == 12345);
        CHECK(!sw_noise_hs_my_turn(hs) && !sw_noise_hs_finished(hs)); /* dead */
        return rc;
    }
    CHECK(n <= VISOR_HS_FRAME_MAX);
    if (!dialer && d) /* the listener learnt the dialer's key: the only one that can finish */
        CHECK(sw_pk_equal(&r, &g_dialer.pk) && n == 0);
    if (!dialer && d && net) /* ... and in a private network its certificate */
        CHECK(sw_pk_equal(&peer.subject, &g_dialer.pk) && peer.role == SW_ROLE_VISOR);
    if (dialer)
        CHECK(d && n == SW_NOISE_XK_MSG3_LEN + SW_PK_LEN);
    *reply_len = n;
    *done = d;
    if (remote)
        *remote = r;
    return rc;
}

/* Mode 1: a hostile byte stream to a listener. */
static void mode_stream(const uint8_t *d, size_t n)
{
    struct sw_noise_hs hs;
    struct sw_error err = { 0 };
    uint8_t reply[VISOR_HS_FRAME_MAX];
    bool handshaking = true, done = false;
    size_t body, rl;

    start(&hs, false);
    while (n > 0) {
        size_t max = handshaking ? VISOR_HS_FRAME_MAX : SW_FRAME_MAX;
        int rc = visor_frame_peek(d, n, max, &body, &err);
        if (rc != SW_OK) {
            CHECK(rc == SW_EPROTO && n >= 2);
            break;
        }
        if (body == 0) { /* incomplete: the real stream would wait for more */
            CHECK(n < 2 || n < 2 + sw_get_u16(d));
            break;
        }
        CHECK(body >= 1 && body <= max && 2 + body <= n && sw_get_u16(d) == body);
        if (handshaking) {
            if (hs_read(&hs, false, NULL, d + 2, body, reply, &rl, &done, NULL) != SW_OK)
                break;
            handshaking = !done; /* random bytes never get here: XK needs the dialer's keys */
        } else {
            packet_copy(d + 2, body);
        }
        d += 2 + body;
        n -= 2 + body;
    }
    sw_noise_hs_wipe(&hs);
}

/* Input-driven damage to a message in m[*len]. */
struct damage {
    uint8_t which;   /* message number to damage (1..3), 0 none */
    uint8_t pos, xor_with, cut;
};

static void apply(const struct damage *dm, unsigned idx, uint8_t *m, size_t *len)
{
    if (dm->which != idx || *len == 0)
        return;
    m[dm->pos % *len] ^= dm->xor_with;
    if (dm->cut && dm->cut < *len)
        *len = dm->cut;
}

/* Mode 2: honest dialer (possibly damaged, possibly lying about its identity) -> listener. */
static void mode_listener(const uint8_t *d, size_t n)
{
    struct sw_noise_hs dial, lis;
    struct sw_noise_cipher dtx, drx, ltx, lrx;
    struct damage dm = { 0 };
    uint8_t m[VISOR_HS_FRAME_MAX], reply[VISOR_HS_FRAME_MAX], ident[SW_PK_LEN], pkt[256 + SW_NOISE_TAG];
    size_t len = 0, rl = 0, plen = 0, ilen = SW_PK_LEN;
    bool done = false, forge;
    struct sw_pk remote;

    if (n < 5)
        return;
    dm.which = d[0] % 4;
    dm.pos = d[1];
    dm.xor_with = d[2];
    dm.cut = d[3];
    forge = d[4] & 1;
    d += 5;
    n -= 5;
    memcpy(ident, g_dialer.pk.b, SW_PK_LEN);
    if (forge) { /* message 3 names whatever identity (of whatever length) the input says */
        ilen = n ? d[0] % (SW_PK_LEN + 8) : 0;
        if (ilen > SW_PK_LEN)
            ilen = SW_PK_LEN;
        for (size_t i = 0; i < ilen && 1 + i < n; i++)
            ident[i] = d[1 + i];
        d += n < 1 + SW_PK_LEN ? n : 1 + SW_PK_LEN;
        n -= n < 1 + SW_PK_LEN ? n : 1 + SW_PK_LEN;
    }
    start(&dial, true);
    start(&lis, false);
    CHECK(sw_noise_hs_write_message(&dial, NULL, 0, m, sizeof(m), &len) == SW_OK);
    apply(&dm, 1, m, &len);
    if (hs_read(&lis, false, NULL, m, len, reply, &rl, &done, &remote) != SW_OK || done)
        goto out;
    apply(&dm, 2, reply, &rl);
    if (sw_noise_hs_read_message(&dial, reply, rl, NULL, 0, &plen) != SW_OK)
        goto out;
    CHECK(sw_noise_hs_write_message(&dial, ident, ilen, m, sizeof(m), &len) == SW_OK);
    apply(&dm, 3, m, &len);
    if (hs_read(&lis, false, NULL, m, len, reply, &rl, &done, &remote) != SW_OK)
        goto out;
    /* only the genuine, undamaged identity gets through */
    CHECK(done && ilen == SW_PK_LEN && memcmp(ident, g_dialer.pk.b, SW_PK_LEN) == 0);
    CHECK(sw_noise_hs_split(&dial, &dtx, &drx) == SW_OK && sw_noise_hs_split(&lis, &ltx, &lrx) == SW_OK);
    /* the rest: packets, each u8 length || plaintext, sealed by the dialer */
    while (n > 0) {
        size_t k = d[0];
        if (k > n - 1)
            k = n - 1;
        memcpy(pkt, d + 1, k);
        CHECK(sw_noise_encrypt(&dtx, NULL, 0, pkt, k, pkt) == SW_OK);
        CHECK(sw_noise_decrypt(&lrx, NULL, 0, pkt, k + SW_NOISE_TAG, pkt) == SW_OK);
        CHECK(memcmp(pkt, d + 1, k) == 0);
        packet_copy(pkt, k);
        d += 1 + k;
        n -= 1 + k;
    }
    sw_noise_cipher_wipe(&dtx);
    sw_noise_cipher_wipe(&drx);
    sw_noise_cipher_wipe(&ltx);
    sw_noise_cipher_wipe(&lrx);
out:
    sw_noise_hs_wipe(&dial);
    sw_noise_hs_wipe(&lis);
}

/* Mode 3: the dialer reads a (damaged) message 2 from an honest listener. */
static void mode_dialer(const uint8_t *d, size_t n)
{
    struct sw_noise_hs dial, lis;
    struct damage dm = { 0 };
    uint8_t m[VISOR_HS_FRAME_MAX], reply[VISOR_HS_FRAME_MAX], payload[VISOR_HS_FRAME_MAX];
    size_t len = 0, rl = 0, plen = 0;
    bool done = false;
    struct sw_pk id;

    if (n < 4)
        return;
    dm.which = 2;
    dm.pos = d[0];
    dm.xor_with = d[1];
    dm.cut = d[2];
    start(&dial, true);
    start(&lis, false);
    /* a bare listener's message 2 may carry a payload (ignored by the dialer) */
    CHECK(sw_noise_hs_write_message(&dial, NULL, 0, m, sizeof(m), &len) == SW_OK);
    CHECK(sw_noise_hs_read_message(&lis, m, len, NULL, 0, &plen) == SW_OK);
    plen = d[3] % 64 < n - 4 ? d[3] % 64 : n - 4;
    CHECK(sw_noise_hs_write_message(&lis, d + 4, plen, m, sizeof(m), &len) == SW_OK);
    apply(&dm, 2, m, &len);
    if (hs_read(&dial, true, NULL, m, len, reply, &rl, &done, NULL) != SW_OK)
        goto out;
    /* message 3 the dialer wrote convinces the honest listener */
    CHECK(sw_noise_hs_read_message(&lis, reply, rl, payload, sizeof(payload), &plen) == SW_OK);
    CHECK(sw_noise_check_ed25519_payload(&lis, payload, plen, &id) == SW_OK);
    CHECK(sw_pk_equal(&id, &g_dialer.pk));
out:
    sw_noise_hs_wipe(&dial);
    sw_noise_hs_wipe(&lis);
}

/* Mode 4: an honest dialer's message 3 with a certificate tail, to a private listener. */
static void mode_member(const uint8_t *d, size_t n)
{
    struct sw_noise_hs dial, lis;
    uint8_t m[VISOR_HS_FRAME_MAX], reply[VISOR_HS_FRAME_MAX], payload[SW_PK_LEN + SW_CERT_MAX_LEN + 8];
    size_t len = 0, rl = 0, plen = 0, tail;
    bool done = false, genuine;
    struct sw_pk remote;

    if (n < 4)
        return;
    genuine = d[0] & 1; /* the genuine certificate, damaged at d[1] with d[2] and cut to d[3] */
    memcpy(payload, g_dialer.pk.b, SW_PK_LEN);
    if (genuine) {
        memcpy(payload + SW_PK_LEN, g_cert, g_cert_len);
        tail = g_cert_len;
        payload[SW_PK_LEN + d[1] % g_cert_len] ^= d[2];
        if (d[3] && d[3] < tail)
            tail = d[3];
    } else {
        tail = n - 4 < SW_CERT_MAX_LEN + 8 ? n - 4 : SW_CERT_MAX_LEN + 8;
        memcpy(payload + SW_PK_LEN, d + 4, tail);
    }
    start(&dial, true);
    start(&lis, false);
    CHECK(sw_noise_hs_write_message(&dial, NULL, 0, m, sizeof(m), &len) == SW_OK);
    CHECK(hs_read(&lis, false, g_net, m, len, reply, &rl, &done, &remote) == SW_OK && !done);
    CHECK(rl == SW_NOISE_XK_MSG2_LEN); /* no own certificate: an empty payload */
    CHECK(sw_noise_hs_read_message(&dial, reply, rl, NULL, 0, &plen) == SW_OK);
    CHECK(sw_noise_hs_write_message(&dial, payload, SW_PK_LEN + tail, m, sizeof(m), &len) == SW_OK);
    bool intact = genuine && tail == g_cert_len && memcmp(payload + SW_PK_LEN, g_cert, g_cert_len) == 0;
    /* only the genuine certificate, undamaged, admits the dialer, and it always does */
    CHECK((hs_read(&lis, false, g_net, m, len, reply, &rl, &done, &remote) == SW_OK) == intact);
    CHECK(done); /* admitted or refused, the handshake itself finished */
    sw_noise_hs_wipe(&dial);
    sw_noise_hs_wipe(&lis);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g_ready)
        setup();
    if (size == 0) {
        packet_copy(data, 0);
        return 0;
    }
    switch (data[0] % 5) {
    case 0: packet_copy(data + 1, size - 1); break;
    case 1: mode_stream(data + 1, size - 1); break;
    case 2: mode_listener(data + 1, size - 1); break;
    case 3: mode_dialer(data + 1, size - 1); break;
    default: mode_member(data + 1, size - 1); break;
    }
    return 0;
}
