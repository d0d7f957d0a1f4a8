/* route_record.c — end-to-end records on a route group (route_record.h). */
#include "visor/route_record.h"
#include "common/bytes.h"

#include <string.h>

int visor_rec_hdr_parse(const uint8_t *inner, size_t len, struct visor_rec_hdr *h, struct sw_error *err)
{
    struct sw_reader r;
    struct visor_rec_hdr out = { 0 };

    sw_reader_init(&r, inner, len);
    sw_read_u8(&r, &out.flags);
    sw_read_u64(&r, &out.seq);
    sw_read_u64(&r, &out.ack);
    sw_read_u32(&r, &out.window);
    if (!sw_reader_ok(&r))
        return sw_error_set(err, SW_EPROTO, "stream record of %zu bytes (the header alone is %d)", len,
                            VISOR_REC_HDR_LEN);
    if (out.flags & ~VISOR_REC_FLAGS_KNOWN)
        return sw_error_set(err, SW_EPROTO, "stream record with unknown flags 0x%02x", out.flags);
    out.len = sw_reader_remaining(&r);
    if (out.seq > UINT64_MAX - out.len - 1)
        return sw_error_set(err, SW_EPROTO, "stream record past the end of the sequence space");
    out.payload = out.len ? inner + VISOR_REC_HDR_LEN : NULL;
    *h = out;
    return SW_OK;
}

void visor_rec_hdr_put(uint8_t *out, const struct visor_rec_hdr *h)
{
    out[0] = h->flags;
    sw_put_u64(out + 1, h->seq);
    sw_put_u64(out + 9, h->ack);
    sw_put_u32(out + 17, h->window);
}

size_t visor_rec_seal(struct sw_noise_cipher *tx, uint64_t pn, const uint8_t *inner, size_t len, uint8_t *out)
{
    if (len > SW_NOISE_MAX_PAYLOAD || pn == UINT64_MAX)
        return 0;
    tx->n = pn; /* explicit nonce (Noise SetNonce): records stand alone */
    if (sw_noise_encrypt(tx, NULL, 0, inner, len, out + VISOR_REC_PN_LEN))
        return 0;
    sw_put_u64(out, pn);
    return VISOR_REC_OVERHEAD + len;
}

int visor_rec_open(struct sw_noise_cipher *rx, struct visor_replay *rw, const uint8_t *rec, size_t len,
                   uint8_t *plain, size_t *plain_len, struct sw_error *err)
{
    struct sw_reader r;
    uint64_t pn;

    sw_reader_init(&r, rec, len);
    if (sw_read_u64(&r, &pn) || sw_reader_remaining(&r) < SW_NOISE_TAG ||
        sw_reader_remaining(&r) > SW_NOISE_MAX_MSG)
        return sw_error_set(err, SW_EPROTO, "record of %zu bytes (at least %d)", len, VISOR_REC_OVERHEAD);
    if (pn == UINT64_MAX || !visor_replay_fresh(rw, pn))
        return sw_error_set(err, SW_EEXIST, "record %llu replayed or older than the replay window",
                            (unsigned long long)pn);
    rx->n = pn;
    if (sw_noise_decrypt(rx, NULL, 0, rec + VISOR_REC_PN_LEN, len - VISOR_REC_PN_LEN, plain))
        return sw_error_set(err, SW_ECRYPTO, "record %llu does not authenticate", (unsigned long long)pn);
    visor_replay_mark(rw, pn);
    *plain_len = len - VISOR_REC_OVERHEAD;
    return SW_OK;
}

const char *visor_route_mode_name(enum visor_route_mode m)
{
    return m == VISOR_ROUTE_DATAGRAM ? "datagram" : "stream";
}

void visor_hello_put(uint8_t out[VISOR_HELLO_LEN], enum visor_route_mode mode, uint32_t window)
{
    out[0] = VISOR_HELLO_VERSION;
    out[1] = (uint8_t)mode;
    sw_put_u32(out + 2, window);
}

int visor_hello_parse(const uint8_t *p, size_t len, enum visor_route_mode *mode, uint32_t *window,
                      struct sw_error *err)
{
    struct sw_reader r;
    uint8_t version = 0, m = 0;
    uint32_t w = 0;

    sw_reader_init(&r, p, len);
    sw_read_u8(&r, &version);
    sw_read_u8(&r, &m);
    sw_read_u32(&r, &w);
    if (!sw_reader_done(&r))
        return sw_error_set(err, SW_EPROTO, "route hello of %zu bytes (expected %d)", len, VISOR_HELLO_LEN);
    if (version != VISOR_HELLO_VERSION)
        return sw_error_set(err, SW_EPROTO, "route hello version %u (this visor speaks %d)", version,
                            VISOR_HELLO_VERSION);
    if (m > VISOR_ROUTE_DATAGRAM)
        return sw_error_set(err, SW_EPROTO, "route hello with unknown mode %u", m);
    *mode = (enum visor_route_mode)m;
    *window = w;
    return SW_OK;
}

bool visor_replay_fresh(const struct visor_replay *rw, uint64_t pn)
{
    uint64_t d;

    if (!rw->any || pn > rw->top)
        return true;
    d = rw->top - pn;
    if (d >= VISOR_REC_REPLAY_BITS)
        return false;
    return !(rw->bits[d / 64] >> (d % 64) & 1);
}

/* Moves every mark s places older (marks past the window fall off). */
static void shift_window(struct visor_replay *rw, uint64_t s)
{
    enum { WORDS = VISOR_REC_REPLAY_BITS / 64 };
    uint64_t nb[WORDS] = { 0 };

    if (s < VISOR_REC_REPLAY_BITS) {
        size_t ws = (size_t)(s / 64), bs = (size_t)(s % 64);
        for (size_t i = ws; i < WORDS; i++) {
            size_t j = i - ws;
            nb[i] = rw->bits[j] << bs;
            if (bs && j > 0)
                nb[i] |= rw->bits[j - 1] >> (64 - bs);
        }
    }
    memcpy(rw->bits, nb, sizeof(nb));
}

void visor_replay_mark(struct visor_replay *rw, uint64_t pn)
{
    uint64_t d;

    if (!rw->any) {
        memset(rw, 0, sizeof(*rw));
        rw->any = true;
        rw->top = pn;
    } else if (pn > rw->top) {
        shift_window(rw, pn - rw->top);
        rw->top = pn;
    }
    d = rw->top - pn;
    if (d < VISOR_REC_REPLAY_BITS)
        rw->bits[d / 64] |= (uint64_t)1 << (d % 64);
}
