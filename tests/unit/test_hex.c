/* Unit tests for common/hex.c. */
#include "common/err.h"
#include "common/hex.h"
#include "tests/harness/check_main.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

START_TEST(test_encode_lowercase)
{
    static const uint8_t in[] = { 0x00, 0x01, 0x7f, 0x80, 0xab, 0xcd, 0xef, 0xff };
    char out[17];
    memset(out, 'Z', sizeof(out));
    ck_assert_int_eq(sw_hex_encode(out, sizeof(out), in, sizeof(in)), SW_OK);
    ck_assert_str_eq(out, "00017f80abcdefff");
}
END_TEST

START_TEST(test_encode_capacity)
{
    static const uint8_t in[] = { 0xde, 0xad };
    char out[5];
    memset(out, 'Z', sizeof(out));
    /* needs 2*n+1 = 5 */
    ck_assert_int_eq(sw_hex_encode(out, 4, in, 2), SW_ERANGE);
    ck_assert_int_eq(out[0], 'Z');
    ck_assert_int_eq(sw_hex_encode(out, 5, in, 2), SW_OK);
    ck_assert_str_eq(out, "dead");
    /* an absurd n must not overflow 2*n+1 */
    ck_assert_int_eq(sw_hex_encode(out, sizeof(out), in, SIZE_MAX / 2 + 1), SW_ERANGE);
    ck_assert_int_eq(sw_hex_encode(out, sizeof(out), in, SIZE_MAX), SW_ERANGE);
}
END_TEST

START_TEST(test_encode_empty)
{
    char out[1] = { 'Z' };
    ck_assert_int_eq(sw_hex_encode(out, 1, "", 0), SW_OK);
    ck_assert_str_eq(out, "");
    ck_assert_int_eq(sw_hex_encode(out, 0, "", 0), SW_ERANGE);
}
END_TEST

START_TEST(test_decode_both_cases)
{
    uint8_t out[4];
    ck_assert_int_eq(sw_hex_decode(out, 4, "DeadBEEF", 8), SW_OK);
    ck_assert_mem_eq(out, "\xde\xad\xbe\xef", 4);
    ck_assert_int_eq(sw_hex_decode(out, 4, "0123abCD", 8), SW_OK);
    ck_assert_mem_eq(out, "\x01\x23\xab\xcd", 4);
}
END_TEST

START_TEST(test_decode_rejects)
{
    uint8_t out[4];
    memset(out, 0x5a, sizeof(out));
    ck_assert_int_eq(sw_hex_decode(out, 4, "deadbee", 7), SW_EINVAL);   /* odd/short */
    ck_assert_int_eq(sw_hex_decode(out, 4, "deadbeef00", 10), SW_EINVAL); /* long */
    ck_assert_int_eq(sw_hex_decode(out, 4, "deadbeeg", 8), SW_EINVAL);  /* non-hex */
    ck_assert_int_eq(sw_hex_decode(out, 4, "dead beef", 8), SW_EINVAL);
    ck_assert_int_eq(sw_hex_decode(out, 4, "+1234567", 8), SW_EINVAL);
    ck_assert_int_eq(sw_hex_decode(out, 4, "0x123456", 8), SW_EINVAL);
    ck_assert_int_eq(sw_hex_decode(out, 4, "dead\0eef", 8), SW_EINVAL); /* embedded NUL */
    ck_assert_int_eq(sw_hex_decode(out, 4, NULL, 8), SW_EINVAL);
    ck_assert_int_eq(sw_hex_decode(out, 1, "\xc3\xa9", 2), SW_EINVAL); /* non-ASCII */
    ck_assert_int_eq(sw_hex_decode(out, 1, "g0", 2), SW_EINVAL);
    ck_assert_int_eq(sw_hex_decode(out, 1, "/0", 2), SW_EINVAL); /* just below '0' */
    ck_assert_int_eq(sw_hex_decode(out, 1, ":0", 2), SW_EINVAL); /* just above '9' */
    ck_assert_int_eq(sw_hex_decode(out, 1, "@0", 2), SW_EINVAL); /* just below 'A' */
    ck_assert_int_eq(sw_hex_decode(out, 1, "G0", 2), SW_EINVAL);
    ck_assert_int_eq(sw_hex_decode(out, 1, "`0", 2), SW_EINVAL); /* just below 'a' */
    /* out untouched by every failure */
    ck_assert_mem_eq(out, "\x5a\x5a\x5a\x5a", 4);
}
END_TEST

START_TEST(test_decode_large_untouched_on_failure)
{
    /* "out untouched on failure" must hold for any n, not only small ones */
    enum { N = 1000 };
    uint8_t *out = malloc(N);
    char *s = malloc(2 * N);
    ck_assert_ptr_nonnull(out);
    ck_assert_ptr_nonnull(s);
    memset(s, 'a', 2 * N);
    s[2 * N - 1] = 'x'; /* bad char in the very last position */
    memset(out, 0x11, N);
    ck_assert_int_eq(sw_hex_decode(out, N, s, 2 * N), SW_EINVAL);
    for (size_t i = 0; i < N; i++)
        ck_assert_uint_eq(out[i], 0x11);
    s[2 * N - 1] = 'b';
    ck_assert_int_eq(sw_hex_decode(out, N, s, 2 * N), SW_OK);
    ck_assert_uint_eq(out[0], 0xaa);
    ck_assert_uint_eq(out[N - 1], 0xab);
    free(out);
    free(s);
}
END_TEST

START_TEST(test_decode_empty_and_overflow)
{
    uint8_t out[1] = { 7 };
    ck_assert_int_eq(sw_hex_decode(out, 0, "", 0), SW_OK);
    ck_assert_uint_eq(out[0], 7);
    /* slen == 2*n only modulo SIZE_MAX must not pass */
    ck_assert_int_eq(sw_hex_decode(out, SIZE_MAX / 2 + 1, "", 0), SW_EINVAL);
}
END_TEST

START_TEST(test_round_trip_all_bytes)
{
    uint8_t in[256], back[256];
    char hex[513];
    for (int i = 0; i < 256; i++)
        in[i] = (uint8_t)i;
    ck_assert_int_eq(sw_hex_encode(hex, sizeof(hex), in, sizeof(in)), SW_OK);
    ck_assert_uint_eq(strlen(hex), 512);
    ck_assert_int_eq(sw_hex_decode(back, sizeof(back), hex, 512), SW_OK);
    ck_assert_mem_eq(in, back, sizeof(in));
}
END_TEST

static Suite *hex_suite(void)
{
    Suite *s = suite_create("hex");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_encode_lowercase);
    tcase_add_test(tc, test_encode_capacity);
    tcase_add_test(tc, test_encode_empty);
    tcase_add_test(tc, test_decode_both_cases);
    tcase_add_test(tc, test_decode_rejects);
    tcase_add_test(tc, test_decode_large_untouched_on_failure);
    tcase_add_test(tc, test_decode_empty_and_overflow);
    tcase_add_test(tc, test_round_trip_all_bytes);
    suite_add_tcase(s, tc);
    return s;
}

const struct th_check_main th_check_main = { .suite = hex_suite };
