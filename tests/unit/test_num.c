/* Unit tests for common/num.c: the decimal number parser of options, query parameters and
 * the environment, with malformed and out-of-range text. */
#include "common/err.h"
#include "common/num.h"
#include "tests/harness/check_main.h"

#include <check.h>
#include <limits.h>
#include <stdint.h>

START_TEST(test_long_good)
{
    long v = 0;
    ck_assert_int_eq(sw_parse_long("0", 0, 10, &v), SW_OK);
    ck_assert_int_eq(v, 0);
    ck_assert_int_eq(sw_parse_long("007", 0, 10, &v), SW_OK);
    ck_assert_int_eq(v, 7);
    ck_assert_int_eq(sw_parse_long("-5", -10, 10, &v), SW_OK);
    ck_assert_int_eq(v, -5);
    ck_assert_int_eq(sw_parse_long("9223372036854775807", LONG_MIN, LONG_MAX, &v), SW_OK);
    ck_assert(v == LONG_MAX);
    ck_assert_int_eq(sw_parse_long("-9223372036854775808", LONG_MIN, LONG_MAX, &v), SW_OK);
    ck_assert(v == LONG_MIN);
    ck_assert_int_eq(sw_parse_long("65535", 1, 65535, &v), SW_OK); /* bounds are inclusive */
    ck_assert_int_eq(v, 65535);
}
END_TEST

START_TEST(test_long_bad)
{
    static const char *const bad[] = { "", " 5", "5 ", "+5", "-", "--5", "5x", "0x10", "1e3",
                                       "5.0", "٣", "9223372036854775808",
                                       "-9223372036854775809", "\t5" };
    long v = 42;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(sw_parse_long(bad[i], LONG_MIN, LONG_MAX, &v) == SW_EINVAL, "accepted '%s'", bad[i]);
    ck_assert_int_eq(sw_parse_long(NULL, 0, 1, &v), SW_EINVAL);
    ck_assert_int_eq(sw_parse_long("11", 1, 10, &v), SW_EINVAL);
    ck_assert_int_eq(sw_parse_long("0", 1, 10, &v), SW_EINVAL);
    ck_assert_int_eq(sw_parse_long("-1", 0, 10, &v), SW_EINVAL);
    ck_assert_int_eq(v, 42); /* untouched on failure */
}
END_TEST

START_TEST(test_u64)
{
    static const char *const bad[] = { "", "-0", "-1", "+1", " 1", "1 ", "18446744073709551616",
                                       "99999999999999999999999", "1a" };
    uint64_t v = 42;
    ck_assert_int_eq(sw_parse_u64("18446744073709551615", 0, UINT64_MAX, &v), SW_OK);
    ck_assert(v == UINT64_MAX);
    ck_assert_int_eq(sw_parse_u64("00", 0, 0, &v), SW_OK);
    ck_assert(v == 0);
    v = 42;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(sw_parse_u64(bad[i], 0, UINT64_MAX, &v) == SW_EINVAL, "accepted '%s'", bad[i]);
    ck_assert_int_eq(sw_parse_u64(NULL, 0, 1, &v), SW_EINVAL);
    ck_assert_int_eq(sw_parse_u64("4294967296", 1, UINT32_MAX, &v), SW_EINVAL);
    ck_assert_int_eq(sw_parse_u64("0", 1, UINT32_MAX, &v), SW_EINVAL);
    ck_assert(v == 42);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("num");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_long_good);
    tcase_add_test(tc, test_long_bad);
    tcase_add_test(tc, test_u64);
    suite_add_tcase(s, tc);
    return s;
}

const struct th_check_main th_check_main = { .suite = suite };
