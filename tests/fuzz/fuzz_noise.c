/* fuzz_noise.c — libFuzzer target for common/noise.c and common/frame.c.
 *
 * The first input byte picks a mode; the rest is either
 *  - modes 0-3: a byte stream cut into frames by sw_frame_reader (chunk size from the input)
 *    whose frames are handshake then transport messages for a hostile peer, against an XK or
 *    KK responder or initiator; the raw stream is also read as one handshake message;
 *  - modes 4-5: mutation commands applied to an honest XK/KK session in transit, so the
 *    fuzzer reaches the later handshake messages and the transport phase.
 * Whatever the input, nothing may crash, leak, or read out of bounds. */
#include "common/err.h"
#include "common/frame.h"
#include "common/keys.h"
#include "common/noise.h"
#include "tests/fuzz/fuzz.h"

#include <sodium.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

static struct sw_keypair g_init, g_resp;
static uint8_t g_eph_i[32], g_eph_r[32];
static struct sw_frame_reader g_fr;
static uint8_t g_out[SW_NOISE_MAX_MSG + 64], g_pl[SW_NOISE_MAX_MSG];

/* Deterministic keys so crashes reproduce. */
static void setup(void)
{
    uint8_t seed[crypto_sign_SEEDBYTES];
    if (sodium_init() < 0)
        __builtin_trap();
    memset(seed, 1, sizeof(seed));
    crypto_sign_seed_keypair(g_init.pk.b, g_init.sk, seed);
    memset(seed, 2, sizeof(seed));
    crypto_sign_seed_keypair(g_resp.pk.b, g_resp.sk, seed);
    memset(g_eph_i, 3, sizeof(g_eph_i));
    memset(g_eph_r, 4, sizeof(g_eph_r));
}

static void hs_start(struct sw_noise_hs *hs, enum sw_noise_pattern pat, enum sw_noise_role role)
{
    bool init = role == SW_NOISE_INITIATOR;
    const struct sw_pk *remote = init ? &g_resp.pk : (pat == SW_NOISE_KK ? &g_init.pk : NULL);
    if (sw_noise_hs_init_ed25519(hs, pat, role, SW_NOISE_PROLOGUE_TP, init ? &g_init : &g_resp,
                                 remote) != SW_OK)
        __builtin_trap();
    sw_noise_hs_set_ephemeral(hs, init ? g_eph_i : g_eph_r);
}

/* Our turn: write a message whose payload is our identity (what XK message 3 carries). */
static void hs_write(struct sw_noise_hs *hs, const struct sw_keypair *me)
{
    size_t n;
    if (sw_noise_hs_my_turn(hs))
        sw_noise_hs_write_message(hs, me->pk.b, SW_PK_LEN, g_out, sizeof(g_out), &n);
}

/* One hostile message: handshake while active, transport once split. */
static void on_frame(struct sw_noise_hs *hs, struct sw_noise_cipher *tx, struct sw_noise_cipher *rx,
                     bool *split, const struct sw_keypair *me, const uint8_t *msg, size_t len)
{
    size_t n;
    if (*split) {
        if (sw_noise_decrypt(rx, NULL, 0, msg, len, g_pl) == SW_OK)
            sw_noise_encrypt(tx, NULL, 0, g_pl, len - SW_NOISE_TAG, g_out);
        return;
    }
    if (sw_noise_hs_read_message(hs, msg, len, g_pl, sizeof(g_pl), &n) != SW_OK)
        return;
    if (sw_noise_hs_finished(hs)) {
        sw_noise_check_ed25519_payload(hs, g_pl, n, NULL);
        *split = sw_noise_hs_split(hs, tx, rx) == SW_OK;
        return;
    }
    hs_write(hs, me);
    if (sw_noise_hs_finished(hs))
        *split = sw_noise_hs_split(hs, tx, rx) == SW_OK;
}

static void hostile_stream(unsigned mode, const uint8_t *data, size_t size)
{
    enum sw_noise_pattern pat = (mode & 1) ? SW_NOISE_KK : SW_NOISE_XK;
    enum sw_noise_role role = (mode & 2) ? SW_NOISE_INITIATOR : SW_NOISE_RESPONDER;
    const struct sw_keypair *me = role == SW_NOISE_INITIATOR ? &g_init : &g_resp;
    struct sw_noise_hs hs;
    struct sw_noise_cipher tx, rx;
    const uint8_t *frame;
    size_t off = 0, used, flen, step;
    bool split = false;

    memset(&tx, 0, sizeof(tx));
    memset(&rx, 0, sizeof(rx));
    /* the whole stream as one unframed message */
    hs_start(&hs, pat, role);
    hs_write(&hs, me);
    on_frame(&hs, &tx, &rx, &split, me, data, size);

    split = false;
    hs_start(&hs, pat, role);
    hs_write(&hs, me);
    sw_frame_reader_init(&g_fr, size ? data[0] * 257u : 0);
    step = size > 1 ? (size_t)data[1] + 1 : 1;
    while (off < size) {
        size_t n = size - off < step ? size - off : step;
        if (sw_frame_reader_feed(&g_fr, data + off, n, &used, &frame, &flen) != SW_OK)
            break;
        off += used;
        if (frame)
            on_frame(&hs, &tx, &rx, &split, me, frame, flen);
    }
    (void)sw_frame_reader_pending(&g_fr);
    sw_noise_hs_wipe(&hs);
    sw_noise_cipher_wipe(&tx);
    sw_noise_cipher_wipe(&rx);
}

/* Applies one command (op, pos, val) to the message in transit. */
static size_t mutate(uint8_t *msg, size_t len, size_t cap, uint8_t op, size_t pos, uint8_t val)
{
    switch (op % 4) {
    case 0:
        if (len)
            msg[pos % len] ^= val ? val : 1;
        return len;
    case 1:
        return len ? pos % len : 0; /* truncate */
    case 2:
        if (len < cap)
            msg[len++] = val; /* append */
        return len;
    default:
        return len; /* deliver unchanged */
    }
}

/* An honest session whose messages the input corrupts in transit. */
static void honest_session(unsigned mode, const uint8_t *data, size_t size)
{
    enum sw_noise_pattern pat = (mode & 1) ? SW_NOISE_KK : SW_NOISE_XK;
    struct sw_noise_hs hs[2];
    struct sw_noise_cipher tx[2], rx[2];
    size_t len, n, off = 0;
    bool ok = true, transport = false;

    memset(tx, 0, sizeof(tx));
    memset(rx, 0, sizeof(rx));
    hs_start(&hs[0], pat, SW_NOISE_INITIATOR);
    hs_start(&hs[1], pat, SW_NOISE_RESPONDER);
    for (unsigned k = 0; ok && off + 4 <= size; k++, off += 4) {
        int from = k % 2;
        size_t pos = (size_t)data[off + 1] | ((size_t)data[off + 2] << 8);
        if (!transport) {
            const struct sw_keypair *me = from ? &g_resp : &g_init;
            if (sw_noise_hs_write_message(&hs[from], me->pk.b, SW_PK_LEN, g_out, sizeof(g_out) - 64,
                                          &len) != SW_OK)
                break;
            len = mutate(g_out, len, sizeof(g_out), data[off], pos, data[off + 3]);
            ok = sw_noise_hs_read_message(&hs[1 - from], g_out, len, g_pl, sizeof(g_pl), &n) == SW_OK;
            if (ok && sw_noise_hs_finished(&hs[1 - from])) {
                sw_noise_check_ed25519_payload(&hs[1 - from], g_pl, n, NULL);
                ok = sw_noise_hs_split(&hs[0], &tx[0], &rx[0]) == SW_OK &&
                     sw_noise_hs_split(&hs[1], &tx[1], &rx[1]) == SW_OK;
                transport = ok;
            }
            continue;
        }
        n = pos % 2048;
        memset(g_pl, data[off + 3], n);
        if (sw_noise_encrypt(&tx[from], NULL, 0, g_pl, n, g_out) != SW_OK)
            break;
        len = mutate(g_out, n + SW_NOISE_TAG, sizeof(g_out), data[off], pos, data[off + 3]);
        ok = sw_noise_decrypt(&rx[1 - from], NULL, 0, g_out, len, g_pl) == SW_OK;
    }
    sw_noise_hs_wipe(&hs[0]);
    sw_noise_hs_wipe(&hs[1]);
    sodium_memzero(tx, sizeof(tx));
    sodium_memzero(rx, sizeof(rx));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool ready;
    unsigned mode;
    if (!ready) {
        setup();
        ready = true;
    }
    if (size == 0)
        return 0;
    mode = data[0] % 6;
    if (mode < 4)
        hostile_stream(mode, data + 1, size - 1);
    else
        honest_session(mode, data + 1, size - 1);
    return 0;
}
