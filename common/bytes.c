#include "common/bytes.h"
#include "common/err.h"

#include <string.h>

void sw_reader_init(struct sw_reader *r, const void *data, size_t len)
{
    r->data = data;
    r->len = data ? len : 0;
    r->off = 0;
    r->failed = false;
}

size_t sw_reader_remaining(const struct sw_reader *r) { return r->failed ? 0 : r->len - r->off; }
bool sw_reader_ok(const struct sw_reader *r) { return !r->failed; }
bool sw_reader_done(const struct sw_reader *r) { return !r->failed && r->off == r->len; }

/* Claims n bytes; the single place where reader bounds are checked. *p may be NULL for a
 * zero-length claim on a reader over no buffer. */
static bool take(struct sw_reader *r, size_t n, const uint8_t **p)
{
    if (r->failed || n > r->len - r->off) {
        r->failed = true;
        return false;
    }
    *p = r->data ? r->data + r->off : NULL;
    r->off += n;
    return true;
}

int sw_read_u8(struct sw_reader *r, uint8_t *out)
{
    const uint8_t *p;
    if (!take(r, 1, &p))
        return SW_ERANGE;
    *out = p[0];
    return SW_OK;
}

int sw_read_u16(struct sw_reader *r, uint16_t *out)
{
    const uint8_t *p;
    if (!take(r, 2, &p))
        return SW_ERANGE;
    *out = sw_get_u16(p);
    return SW_OK;
}

int sw_read_u32(struct sw_reader *r, uint32_t *out)
{
    const uint8_t *p;
    if (!take(r, 4, &p))
        return SW_ERANGE;
    *out = sw_get_u32(p);
    return SW_OK;
}

int sw_read_u64(struct sw_reader *r, uint64_t *out)
{
    const uint8_t *p;
    if (!take(r, 8, &p))
        return SW_ERANGE;
    *out = sw_get_u64(p);
    return SW_OK;
}

int sw_read_bytes(struct sw_reader *r, void *out, size_t n)
{
    const uint8_t *p;
    if (!take(r, n, &p))
        return SW_ERANGE;
    if (n)
        memcpy(out, p, n);
    return SW_OK;
}

int sw_read_view(struct sw_reader *r, const uint8_t **out, size_t n)
{
    const uint8_t *p;
    if (!take(r, n, &p))
        return SW_ERANGE;
    *out = p;
    return SW_OK;
}

int sw_read_skip(struct sw_reader *r, size_t n)
{
    const uint8_t *p;
    return take(r, n, &p) ? SW_OK : SW_ERANGE;
}

void sw_writer_init(struct sw_writer *w, void *buf, size_t cap)
{
    w->data = buf;
    w->cap = buf ? cap : 0;
    w->len = 0;
    w->failed = false;
}

bool sw_writer_ok(const struct sw_writer *w) { return !w->failed; }

/* *p may be NULL for a zero-length reservation on a writer over no buffer. */
static bool reserve(struct sw_writer *w, size_t n, uint8_t **p)
{
    if (w->failed || n > w->cap - w->len) {
        w->failed = true;
        return false;
    }
    *p = w->data ? w->data + w->len : NULL;
    w->len += n;
    return true;
}

int sw_write_u8(struct sw_writer *w, uint8_t v) { return sw_write_bytes(w, &v, 1); }

int sw_write_u16(struct sw_writer *w, uint16_t v)
{
    uint8_t b[2];
    sw_put_u16(b, v);
    return sw_write_bytes(w, b, 2);
}

int sw_write_u32(struct sw_writer *w, uint32_t v)
{
    uint8_t b[4];
    sw_put_u32(b, v);
    return sw_write_bytes(w, b, 4);
}

int sw_write_u64(struct sw_writer *w, uint64_t v)
{
    uint8_t b[8];
    sw_put_u64(b, v);
    return sw_write_bytes(w, b, 8);
}

int sw_write_bytes(struct sw_writer *w, const void *src, size_t n)
{
    uint8_t *p;
    if (!reserve(w, n, &p))
        return SW_ERANGE;
    if (n)
        memcpy(p, src, n);
    return SW_OK;
}
