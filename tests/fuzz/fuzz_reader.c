/* fuzz_reader.c — drives sw_reader (and sw_writer) with a tiny opcode interpreter.
 *
 * Input layout: byte 0 picks how many trailing bytes form the data buffer; the bytes in
 * between are the program (its first byte is the writer's capacity). Every read is checked
 * against a shadow model of the reader (offset, sticky failure, big-endian values, output
 * untouched on failure). Every successful read is written back with sw_writer into a buffer
 * of fuzzer-chosen capacity, checked against a model of the writer (sticky, never past cap),
 * and the writer's bytes must equal the model's at the end. Any disagreement traps. */
#include "common/bytes.h"
#include "common/err.h"
#include "common/keys.h"
#include "tests/fuzz/fuzz.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct shadow {
    const uint8_t *buf;
    size_t len, off;
    bool failed;
};

/* Model of claiming n bytes; *p is the claimed position (only meaningful when n > 0). */
static bool shadow_take(struct shadow *s, size_t n, size_t *pos)
{
    if (s->failed || n > s->len - s->off) {
        s->failed = true;
        return false;
    }
    *pos = s->off;
    s->off += n;
    return true;
}

static uint64_t be(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool init;
    struct sw_reader r;
    struct shadow s;
    struct sw_writer w;
    uint8_t *buf, *wbuf, *wmodel;
    size_t dlen, plen, wcap, wlen = 0;
    const uint8_t *prog;
    bool wfailed = false;

    if (!init) {
        if (sw_crypto_init() != SW_OK)
            abort();
        init = true;
    }
    if (size < 2)
        return 0;
    dlen = data[0] % size; /* 0 .. size-1 bytes of data */
    plen = size - 1 - dlen;
    prog = data + 1;
    wcap = plen ? prog[0] : 0;

    /* exact-size heap copies, so ASan sees any overread/overwrite; no data = NULL buffer */
    buf = dlen ? malloc(dlen) : NULL;
    wbuf = wcap ? malloc(wcap) : NULL;
    wmodel = malloc(wcap + 1);
    if ((dlen && !buf) || (wcap && !wbuf) || !wmodel)
        abort();
    if (dlen)
        memcpy(buf, data + 1 + plen, dlen);

    sw_reader_init(&r, buf, dlen);
    sw_writer_init(&w, wbuf, wcap);
    s.buf = buf;
    s.len = dlen;
    s.off = 0;
    s.failed = false;

    for (size_t pc = 1; pc < plen; pc++) {
        uint8_t op = prog[pc] % 9, arg = pc + 1 < plen ? prog[pc + 1] : 0;
        uint8_t out[256];
        const uint8_t *view = NULL;
        size_t n = 0, pos = 0;
        bool want_ok, write_back = true;
        int rc;

        memset(out, 0xa5, sizeof(out));
        switch (op) {
        case 0: {
            uint8_t v = 0xa5;
            n = 1;
            rc = sw_read_u8(&r, &v);
            out[0] = v;
            break;
        }
        case 1: {
            uint16_t v = 0xa5a5;
            n = 2;
            rc = sw_read_u16(&r, &v);
            CHECK(rc != SW_OK || v == be(buf + r.off - 2, 2));
            CHECK(rc == SW_OK || v == 0xa5a5);
            sw_put_u16(out, v);
            break;
        }
        case 2: {
            uint32_t v = 0xa5a5a5a5u;
            n = 4;
            rc = sw_read_u32(&r, &v);
            CHECK(rc != SW_OK || v == be(buf + r.off - 4, 4));
            CHECK(rc == SW_OK || v == 0xa5a5a5a5u);
            for (int i = 0; i < 4; i++)
                out[i] = (uint8_t)(v >> (24 - 8 * i));
            break;
        }
        case 3: {
            uint64_t v = 0xa5a5a5a5a5a5a5a5ull;
            n = 8;
            rc = sw_read_u64(&r, &v);
            CHECK(rc != SW_OK || v == be(buf + r.off - 8, 8));
            CHECK(rc == SW_OK || v == 0xa5a5a5a5a5a5a5a5ull);
            for (int i = 0; i < 8; i++)
                out[i] = (uint8_t)(v >> (56 - 8 * i));
            break;
        }
        case 4:
            n = arg;
            pc++;
            rc = sw_read_bytes(&r, out, n);
            break;
        case 5:
            n = arg;
            pc++;
            rc = sw_read_view(&r, &view, n);
            if (rc == SW_OK && n)
                memcpy(out, view, n);
            if (rc != SW_OK)
                CHECK(view == NULL);
            break;
        case 6:
            n = (size_t)arg * 16;
            pc++;
            rc = sw_read_skip(&r, n);
            write_back = false;
            break;
        case 7:
            /* absurd lengths must fail cleanly, never wrap */
            n = SIZE_MAX - arg;
            pc++;
            rc = sw_read_skip(&r, n);
            CHECK(rc == SW_ERANGE);
            write_back = false;
            break;
        default:
            rc = sw_read_bytes(&r, out, 0);
            break;
        }

        want_ok = shadow_take(&s, n, &pos);
        CHECK(rc == (want_ok ? SW_OK : SW_ERANGE));
        if (want_ok && n && op != 6 && op != 7) {
            CHECK(memcmp(out, buf + pos, n) == 0); /* values are the big-endian bytes */
            if (op == 5)
                CHECK(view == buf + pos); /* zero-copy */
        }
        if (!want_ok)
            for (size_t i = 0; i < sizeof(out); i++)
                CHECK(out[i] == 0xa5); /* outputs untouched on failure */
        CHECK(sw_reader_ok(&r) == !s.failed);
        CHECK(sw_reader_remaining(&r) == (s.failed ? 0 : s.len - s.off));
        CHECK(sw_reader_done(&r) == (!s.failed && s.off == s.len));
        CHECK(r.off <= r.len);

        if (op == 7) {
            rc = sw_write_bytes(&w, out, n);
            CHECK(rc == SW_ERANGE);
            wfailed = true;
        } else if (want_ok && write_back) {
            switch (op) {
            case 0: rc = sw_write_u8(&w, out[0]); break;
            case 1: rc = sw_write_u16(&w, sw_get_u16(out)); break;
            case 2: rc = sw_write_u32(&w, (uint32_t)be(out, 4)); break;
            case 3: rc = sw_write_u64(&w, be(out, 8)); break;
            default: rc = sw_write_bytes(&w, out, n); break;
            }
            if (!wfailed && n <= wcap - wlen) {
                CHECK(rc == SW_OK);
                if (n)
                    memcpy(wmodel + wlen, out, n);
                wlen += n;
            } else {
                CHECK(rc == SW_ERANGE);
                wfailed = true;
            }
        }
        CHECK(sw_writer_ok(&w) == !wfailed);
        CHECK(w.len == wlen && w.len <= wcap);
    }
    if (wlen)
        CHECK(memcmp(wbuf, wmodel, wlen) == 0);

    free(buf);
    free(wbuf);
    free(wmodel);
    return 0;
}
