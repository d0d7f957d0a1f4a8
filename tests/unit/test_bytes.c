/* Unit tests for common/bytes.c: bounds, sticky failure, big-endian layout, writer overflow. */
#include "common/bytes.h"
#include "common/err.h"
#include "tests/harness/check_main.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

START_TEST(test_read_big_endian)
{
    static const uint8_t in[] = { 0xab, 0x12, 0x34, 0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03,
                                  0x04, 0x05, 0x06, 0x07, 0x08 };
    struct sw_reader r;
    uint8_t u8 = 0;
    uint16_t u16 = 0;
    uint32_t u32 = 0;
    uint64_t u64 = 0;

    sw_reader_init(&r, in, sizeof(in));
    ck_assert_uint_eq(sw_reader_remaining(&r), 15);
    ck_assert_int_eq(sw_read_u8(&r, &u8), SW_OK);
    ck_assert_uint_eq(u8, 0xab);
    ck_assert_int_eq(sw_read_u16(&r, &u16), SW_OK);
    ck_assert_uint_eq(u16, 0x1234);
    ck_assert_int_eq(sw_read_u32(&r, &u32), SW_OK);
    ck_assert_uint_eq(u32, 0xdeadbeefu);
    ck_assert_int_eq(sw_read_u64(&r, &u64), SW_OK);
    ck_assert(u64 == 0x0102030405060708ull);
    ck_assert(sw_reader_ok(&r));
    ck_assert(sw_reader_done(&r));
    ck_assert_uint_eq(sw_reader_remaining(&r), 0);
}
END_TEST

START_TEST(test_read_high_bits)
{
    /* all-ones values catch sign-extension mistakes in the shifts */
    uint8_t in[8];
    struct sw_reader r;
    uint16_t u16;
    uint32_t u32;
    uint64_t u64;
    memset(in, 0xff, sizeof(in));
    sw_reader_init(&r, in, 8);
    ck_assert_int_eq(sw_read_u64(&r, &u64), SW_OK);
    ck_assert(u64 == UINT64_MAX);
    sw_reader_init(&r, in, 8);
    ck_assert_int_eq(sw_read_u32(&r, &u32), SW_OK);
    ck_assert(u32 == UINT32_MAX);
    ck_assert_int_eq(sw_read_u16(&r, &u16), SW_OK);
    ck_assert_uint_eq(u16, 0xffff);
    ck_assert_uint_eq(sw_reader_remaining(&r), 2);
    ck_assert(!sw_reader_done(&r));
}
END_TEST

START_TEST(test_read_past_end_is_sticky)
{
    static const uint8_t in[] = { 1, 2, 3 };
    struct sw_reader r;
    uint8_t u8 = 0x55;
    uint32_t u32 = 0x55555555;
    uint16_t u16 = 0x5555;

    sw_reader_init(&r, in, sizeof(in));
    ck_assert_int_eq(sw_read_u32(&r, &u32), SW_ERANGE);
    ck_assert_uint_eq(u32, 0x55555555); /* untouched on failure */
    ck_assert(!sw_reader_ok(&r));
    ck_assert(!sw_reader_done(&r));
    ck_assert_uint_eq(sw_reader_remaining(&r), 0);
    /* enough bytes remain for a u8 / u16, but failure is sticky */
    ck_assert_int_eq(sw_read_u8(&r, &u8), SW_ERANGE);
    ck_assert_uint_eq(u8, 0x55);
    ck_assert_int_eq(sw_read_u16(&r, &u16), SW_ERANGE);
    ck_assert_int_eq(sw_read_skip(&r, 0), SW_ERANGE);
    ck_assert(!sw_reader_ok(&r));
}
END_TEST

START_TEST(test_read_exact_boundary)
{
    static const uint8_t in[] = { 1, 2, 3, 4, 5 };
    struct sw_reader r;
    uint8_t out[5] = { 0 };
    uint8_t one;

    sw_reader_init(&r, in, sizeof(in));
    ck_assert_int_eq(sw_read_bytes(&r, out, 5), SW_OK);
    ck_assert_mem_eq(out, in, 5);
    ck_assert(sw_reader_done(&r));
    ck_assert_int_eq(sw_read_u8(&r, &one), SW_ERANGE);
    ck_assert(!sw_reader_done(&r));
}
END_TEST

START_TEST(test_read_bytes_view_skip)
{
    static const uint8_t in[] = { 'h', 'e', 'l', 'l', 'o', 'w', 'o', 'r', 'l', 'd' };
    struct sw_reader r;
    const uint8_t *view = NULL;
    uint8_t out[3];

    sw_reader_init(&r, in, sizeof(in));
    ck_assert_int_eq(sw_read_skip(&r, 2), SW_OK);
    ck_assert_int_eq(sw_read_view(&r, &view, 3), SW_OK);
    ck_assert_ptr_eq(view, in + 2); /* zero-copy: borrowed from the buffer */
    ck_assert_int_eq(sw_read_bytes(&r, out, 3), SW_OK);
    ck_assert_mem_eq(view, "llo", 3);
    ck_assert_mem_eq(out, "wor", 3);
    ck_assert_uint_eq(sw_reader_remaining(&r), 2);
    view = NULL;
    ck_assert_int_eq(sw_read_view(&r, &view, 3), SW_ERANGE);
    ck_assert_ptr_null(view);
    ck_assert(!sw_reader_ok(&r));
}
END_TEST

START_TEST(test_read_huge_length_no_overflow)
{
    /* n close to SIZE_MAX must not wrap the bounds check */
    static const uint8_t in[] = { 1, 2, 3, 4 };
    struct sw_reader r;
    const uint8_t *view = NULL;
    sw_reader_init(&r, in, sizeof(in));
    ck_assert_int_eq(sw_read_skip(&r, 1), SW_OK);
    ck_assert_int_eq(sw_read_view(&r, &view, SIZE_MAX), SW_ERANGE);
    ck_assert(!sw_reader_ok(&r));
    sw_reader_init(&r, in, sizeof(in));
    ck_assert_int_eq(sw_read_skip(&r, 3), SW_OK);
    ck_assert_int_eq(sw_read_skip(&r, SIZE_MAX - 1), SW_ERANGE);
    ck_assert(!sw_reader_ok(&r));
}
END_TEST

START_TEST(test_read_zero_length)
{
    static const uint8_t in[] = { 9 };
    struct sw_reader r;
    const uint8_t *view = NULL;
    uint8_t out = 0x77;

    /* zero-length reads succeed at any position, including the end */
    sw_reader_init(&r, in, sizeof(in));
    ck_assert_int_eq(sw_read_bytes(&r, &out, 0), SW_OK);
    ck_assert_uint_eq(out, 0x77);
    ck_assert_int_eq(sw_read_skip(&r, 1), SW_OK);
    ck_assert_int_eq(sw_read_bytes(&r, &out, 0), SW_OK);
    ck_assert_int_eq(sw_read_view(&r, &view, 0), SW_OK);
    ck_assert_int_eq(sw_read_skip(&r, 0), SW_OK);
    ck_assert(sw_reader_done(&r));

    /* an empty, non-NULL buffer */
    sw_reader_init(&r, in, 0);
    ck_assert(sw_reader_done(&r));
    ck_assert_int_eq(sw_read_bytes(&r, &out, 0), SW_OK);
    ck_assert_int_eq(sw_read_u8(&r, &out), SW_ERANGE);
    ck_assert(!sw_reader_ok(&r));
}
END_TEST

START_TEST(test_read_null_buffer)
{
    /* a reader over no buffer (e.g. an empty HTTP body) is an empty reader: zero-length
     * reads succeed, anything else fails */
    struct sw_reader r;
    const uint8_t *view = (const uint8_t *)"x";
    uint8_t out = 0;

    sw_reader_init(&r, NULL, 100); /* len is ignored without data */
    ck_assert_uint_eq(sw_reader_remaining(&r), 0);
    ck_assert(sw_reader_done(&r));
    ck_assert_int_eq(sw_read_bytes(&r, &out, 0), SW_OK);
    ck_assert_int_eq(sw_read_skip(&r, 0), SW_OK);
    ck_assert_int_eq(sw_read_view(&r, &view, 0), SW_OK);
    ck_assert(sw_reader_ok(&r));
    ck_assert(sw_reader_done(&r));
    ck_assert_int_eq(sw_read_u8(&r, &out), SW_ERANGE);
    ck_assert(!sw_reader_ok(&r));
}
END_TEST

START_TEST(test_write_big_endian)
{
    static const uint8_t want[] = { 0xab, 0x12, 0x34, 0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03,
                                    0x04, 0x05, 0x06, 0x07, 0x08, 'x', 'y' };
    uint8_t buf[sizeof(want)];
    struct sw_writer w;

    memset(buf, 0, sizeof(buf));
    sw_writer_init(&w, buf, sizeof(buf));
    ck_assert_int_eq(sw_write_u8(&w, 0xab), SW_OK);
    ck_assert_int_eq(sw_write_u16(&w, 0x1234), SW_OK);
    ck_assert_int_eq(sw_write_u32(&w, 0xdeadbeefu), SW_OK);
    ck_assert_int_eq(sw_write_u64(&w, 0x0102030405060708ull), SW_OK);
    ck_assert_int_eq(sw_write_bytes(&w, "xy", 2), SW_OK);
    ck_assert(sw_writer_ok(&w));
    ck_assert_uint_eq(w.len, sizeof(want));
    ck_assert_mem_eq(buf, want, sizeof(want));
}
END_TEST

START_TEST(test_write_read_round_trip)
{
    uint8_t buf[64];
    struct sw_writer w;
    struct sw_reader r;
    uint8_t a;
    uint16_t b;
    uint32_t c;
    uint64_t d;
    char s[5];

    sw_writer_init(&w, buf, sizeof(buf));
    sw_write_u8(&w, 0xfe);
    sw_write_u16(&w, 0xfedc);
    sw_write_u32(&w, 0xfedcba98u);
    sw_write_u64(&w, 0xfedcba9876543210ull);
    sw_write_bytes(&w, "hello", 5);
    ck_assert(sw_writer_ok(&w));

    sw_reader_init(&r, buf, w.len);
    sw_read_u8(&r, &a);
    sw_read_u16(&r, &b);
    sw_read_u32(&r, &c);
    sw_read_u64(&r, &d);
    sw_read_bytes(&r, s, 5);
    ck_assert(sw_reader_done(&r));
    ck_assert_uint_eq(a, 0xfe);
    ck_assert_uint_eq(b, 0xfedc);
    ck_assert_uint_eq(c, 0xfedcba98u);
    ck_assert(d == 0xfedcba9876543210ull);
    ck_assert_mem_eq(s, "hello", 5);
}
END_TEST

START_TEST(test_write_overflow_is_sticky)
{
    uint8_t buf[8];
    uint8_t guard[4];
    struct sw_writer w;

    memset(buf, 0, sizeof(buf));
    memset(guard, 0xcc, sizeof(guard));
    sw_writer_init(&w, buf, 6); /* capacity smaller than the array: must not touch buf[6..] */
    ck_assert_int_eq(sw_write_u32(&w, 0x11223344), SW_OK);
    ck_assert_int_eq(sw_write_u32(&w, 0x55667788), SW_ERANGE);
    ck_assert(!sw_writer_ok(&w));
    ck_assert_uint_eq(w.len, 4);
    /* nothing of the failed write landed */
    ck_assert_uint_eq(buf[4], 0);
    ck_assert_uint_eq(buf[5], 0);
    ck_assert_uint_eq(buf[6], 0);
    /* a write that would fit now still fails: sticky */
    ck_assert_int_eq(sw_write_u8(&w, 1), SW_ERANGE);
    ck_assert_int_eq(sw_write_u16(&w, 1), SW_ERANGE);
    ck_assert_int_eq(sw_write_bytes(&w, "", 0), SW_ERANGE);
    ck_assert_uint_eq(w.len, 4);
    ck_assert_uint_eq(buf[4], 0);
    ck_assert_mem_eq(buf, "\x11\x22\x33\x44", 4);
}
END_TEST

START_TEST(test_write_exact_fill_and_u64_overflow)
{
    uint8_t buf[8];
    struct sw_writer w;

    sw_writer_init(&w, buf, 8);
    ck_assert_int_eq(sw_write_u64(&w, 1), SW_OK);
    ck_assert(sw_writer_ok(&w));
    ck_assert_uint_eq(w.len, 8);
    ck_assert_int_eq(sw_write_bytes(&w, "x", 0), SW_OK); /* zero bytes always fit */
    ck_assert(sw_writer_ok(&w));
    ck_assert_int_eq(sw_write_u8(&w, 1), SW_ERANGE);
    ck_assert(!sw_writer_ok(&w));

    sw_writer_init(&w, buf, 7);
    ck_assert_int_eq(sw_write_u64(&w, 1), SW_ERANGE);
    ck_assert_uint_eq(w.len, 0);

    sw_writer_init(&w, buf, 8);
    ck_assert_int_eq(sw_write_u8(&w, 1), SW_OK);
    ck_assert_int_eq(sw_write_bytes(&w, buf, SIZE_MAX), SW_ERANGE); /* no wrap-around */
    ck_assert_uint_eq(w.len, 1);
}
END_TEST

START_TEST(test_writer_null_buffer)
{
    struct sw_writer w;
    sw_writer_init(&w, NULL, 16); /* cap ignored without a buffer */
    ck_assert_int_eq(sw_write_bytes(&w, "", 0), SW_OK);
    ck_assert(sw_writer_ok(&w));
    ck_assert_int_eq(sw_write_u8(&w, 1), SW_ERANGE);
    ck_assert(!sw_writer_ok(&w));
    ck_assert_uint_eq(w.len, 0);
}
END_TEST

START_TEST(test_put_get_u16)
{
    uint8_t p[2];
    sw_put_u16(p, 0xbeef);
    ck_assert_uint_eq(p[0], 0xbe);
    ck_assert_uint_eq(p[1], 0xef);
    ck_assert_uint_eq(sw_get_u16(p), 0xbeef);
    sw_put_u16(p, 0xffff);
    ck_assert_uint_eq(sw_get_u16(p), 0xffff);
}
END_TEST

START_TEST(test_put_get_u32_u64)
{
    static const uint8_t want32[4] = { 0xde, 0xad, 0xbe, 0xef };
    static const uint8_t want64[8] = { 0x01, 0x02, 0x03, 0x04, 0xf5, 0xf6, 0xf7, 0xf8 };
    uint8_t p[8];
    sw_put_u32(p, 0xdeadbeefu);
    ck_assert_mem_eq(p, want32, 4);
    ck_assert_uint_eq(sw_get_u32(p), 0xdeadbeefu);
    sw_put_u32(p, UINT32_MAX); /* high bits must not sign-extend */
    ck_assert(sw_get_u32(p) == UINT32_MAX);
    sw_put_u64(p, 0x01020304f5f6f7f8ull);
    ck_assert_mem_eq(p, want64, 8);
    ck_assert(sw_get_u64(p) == 0x01020304f5f6f7f8ull);
    sw_put_u64(p, UINT64_MAX);
    ck_assert(sw_get_u64(p) == UINT64_MAX);
}
END_TEST

static Suite *bytes_suite(void)
{
    Suite *s = suite_create("bytes");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_read_big_endian);
    tcase_add_test(tc, test_read_high_bits);
    tcase_add_test(tc, test_read_past_end_is_sticky);
    tcase_add_test(tc, test_read_exact_boundary);
    tcase_add_test(tc, test_read_bytes_view_skip);
    tcase_add_test(tc, test_read_huge_length_no_overflow);
    tcase_add_test(tc, test_read_zero_length);
    tcase_add_test(tc, test_read_null_buffer);
    tcase_add_test(tc, test_write_big_endian);
    tcase_add_test(tc, test_write_read_round_trip);
    tcase_add_test(tc, test_write_overflow_is_sticky);
    tcase_add_test(tc, test_write_exact_fill_and_u64_overflow);
    tcase_add_test(tc, test_writer_null_buffer);
    tcase_add_test(tc, test_put_get_u16);
    tcase_add_test(tc, test_put_get_u32_u64);
    suite_add_tcase(s, tc);
    return s;
}

const struct th_check_main th_check_main = { .suite = bytes_suite };
