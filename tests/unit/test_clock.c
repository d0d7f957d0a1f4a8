/* common/clock.h: the monotonic clock, deadlines, and Unix time. */
#include "common/clock.h"
#include "tests/harness/check_main.h"

#include <check.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

START_TEST(test_mono_ms_and_ns_are_one_clock)
{
    int64_t before = sw_mono_ns(), ms = sw_mono_ms(), after = sw_mono_ns();

    ck_assert_int_gt(before, 0);
    ck_assert_int_le(before, after);
    ck_assert_int_le(before / 1000000, ms);
    ck_assert_int_le(ms, after / 1000000);
}
END_TEST

START_TEST(test_mono_never_goes_back)
{
    int64_t last = sw_mono_ns();

    for (int i = 0; i < 100000; i++) {
        int64_t now = sw_mono_ns();
        ck_assert_int_ge(now, last);
        last = now;
    }
}
END_TEST

START_TEST(test_deadline_counts_down)
{
    int64_t t0 = sw_mono_ms(), deadline = sw_deadline_ms(300);
    int left = sw_ms_left(deadline);

    ck_assert_int_ge(deadline - t0, 300);
    ck_assert_int_le(left, 300);
    ck_assert_int_gt(left, 200); /* even on a busy machine */
    usleep(50 * 1000);
    ck_assert_int_ge(sw_ms_since(t0), 50);
    ck_assert_int_le(sw_ms_left(deadline), left - 50);
}
END_TEST

START_TEST(test_ms_left_is_clamped_for_poll)
{
    int64_t now = sw_mono_ms();

    ck_assert_int_eq(sw_ms_left(now - 1), 0);
    ck_assert_int_eq(sw_ms_left(now - 1000000), 0);
    ck_assert_int_eq(sw_ms_left(sw_deadline_ms(0)), 0);
    ck_assert_int_eq(sw_ms_left(INT64_MAX / 2), INT32_MAX);
    ck_assert_int_eq(sw_ms_left(now + (int64_t)INT32_MAX + 1000000), INT32_MAX);
}
END_TEST

START_TEST(test_ms_since_a_future_instant_is_negative)
{
    ck_assert_int_lt(sw_ms_since(sw_deadline_ms(10000)), 0);
    ck_assert_int_ge(sw_ms_since(sw_mono_ms()), 0);
}
END_TEST

START_TEST(test_unix_ms_is_unix_time)
{
    time_t before = time(NULL);
    int64_t ms = sw_unix_ms();
    time_t after = time(NULL);

    ck_assert_int_ge(ms / 1000, (int64_t)before);
    ck_assert_int_le(ms / 1000, (int64_t)after);
    ck_assert_int_gt(ms, INT64_C(1577836800000)); /* after 2020-01-01 */
}
END_TEST

static Suite *clock_suite(void)
{
    Suite *s = suite_create("clock");
    TCase *tc = tcase_create("clock");

    tcase_add_test(tc, test_mono_ms_and_ns_are_one_clock);
    tcase_add_test(tc, test_mono_never_goes_back);
    tcase_add_test(tc, test_deadline_counts_down);
    tcase_add_test(tc, test_ms_left_is_clamped_for_poll);
    tcase_add_test(tc, test_ms_since_a_future_instant_is_negative);
    tcase_add_test(tc, test_unix_ms_is_unix_time);
    suite_add_tcase(s, tc);
    return s;
}

const struct th_check_main th_check_main = { .suite = clock_suite };
