/* bytes.h — bounds-checked reading and writing of byte buffers.
 *
 * Every parser of untrusted bytes goes through struct sw_reader. Failure is sticky: once a
 * read runs past the end, every later read fails too, so a parser may read a whole record
 * and check sw_reader_ok() once. Reads never touch memory outside [data, data+len).
 * The reader borrows its buffer; the writer writes into a caller-owned fixed buffer and
 * likewise fails (sticky) instead of overflowing. Integers are big-endian on the wire. */
#ifndef SW_BYTES_H
#define SW_BYTES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sw_reader {
    const uint8_t *data;
    size_t len;
    size_t off;
    bool failed;
};

void sw_reader_init(struct sw_reader *r, const void *data, size_t len);
size_t sw_reader_remaining(const struct sw_reader *r);
bool sw_reader_ok(const struct sw_reader *r);
/* True when the reader is ok and every byte has been consumed. */
bool sw_reader_done(const struct sw_reader *r);

/* Each returns SW_OK or SW_ERANGE (and marks the reader failed); *out untouched on failure. */
int sw_read_u8(struct sw_reader *r, uint8_t *out);
int sw_read_u16(struct sw_reader *r, uint16_t *out);
int sw_read_u32(struct sw_reader *r, uint32_t *out);
int sw_read_u64(struct sw_reader *r, uint64_t *out);
int sw_read_bytes(struct sw_reader *r, void *out, size_t n);
/* Zero-copy: *out points into the reader's buffer (borrowed). */
int sw_read_view(struct sw_reader *r, const uint8_t **out, size_t n);
int sw_read_skip(struct sw_reader *r, size_t n);

struct sw_writer {
    uint8_t *data;
    size_t cap;
    size_t len;
    bool failed;
};

void sw_writer_init(struct sw_writer *w, void *buf, size_t cap);
bool sw_writer_ok(const struct sw_writer *w);
int sw_write_u8(struct sw_writer *w, uint8_t v);
int sw_write_u16(struct sw_writer *w, uint16_t v);
int sw_write_u32(struct sw_writer *w, uint32_t v);
int sw_write_u64(struct sw_writer *w, uint64_t v);
int sw_write_bytes(struct sw_writer *w, const void *src, size_t n);

/* Plain big-endian helpers for fixed layouts whose size the caller has already checked
 * (headers, packet fields); anything of untrusted length goes through the reader above. */
static inline void sw_put_u16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static inline uint16_t sw_get_u16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }
static inline void sw_put_u32(uint8_t *p, uint32_t v)
{
    sw_put_u16(p, (uint16_t)(v >> 16));
    sw_put_u16(p + 2, (uint16_t)v);
}
static inline uint32_t sw_get_u32(const uint8_t *p) { return (uint32_t)sw_get_u16(p) << 16 | sw_get_u16(p + 2); }
static inline void sw_put_u64(uint8_t *p, uint64_t v)
{
    sw_put_u32(p, (uint32_t)(v >> 32));
    sw_put_u32(p + 4, (uint32_t)v);
}
static inline uint64_t sw_get_u64(const uint8_t *p) { return (uint64_t)sw_get_u32(p) << 32 | sw_get_u32(p + 4); }

#endif
