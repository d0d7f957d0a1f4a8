/* common/cond.h: monotonic deadlines for timed waits. */
#include "common/cond.h"
#include "common/clock.h"
#include "tests/harness/check_main.h"

#include <check.h>
#include <errno.h>
#include <stdlib.h>

START_TEST(test_add_ms_carries)
{
    struct timespec ts = { .tv_sec = 10, .tv_nsec = 900000000L };
    sw_timespec_add_ms(&ts, 250);
    ck_assert_int_eq(ts.tv_sec, 11);
    ck_assert_int_eq(ts.tv_nsec, 150000000L);
    sw_timespec_add_ms(&ts, 2000);
    ck_assert_int_eq(ts.tv_sec, 13);
    ck_assert_int_eq(ts.tv_nsec, 150000000L);
}
END_TEST

/* The deadline is on the clock of common/clock.h. */
START_TEST(test_deadline_is_on_the_clock_of_clock_h)
{
    struct timespec dl;
    int64_t before = sw_mono_ns(), at, after;

    sw_cond_deadline(0, &dl);
    after = sw_mono_ns();
    at = (int64_t)dl.tv_sec * 1000000000 + dl.tv_nsec;
    ck_assert_int_le(before, at);
    ck_assert_int_le(at, after);
}
END_TEST

START_TEST(test_timed_wait_times_out_on_monotonic_deadline)
{
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t cv;
    struct timespec dl;
    int64_t before;
    int rc;

    ck_assert_int_eq(sw_cond_init(&cv), 0);
    before = sw_mono_ms();
    sw_cond_deadline(50, &dl);
    pthread_mutex_lock(&mu);
    do
        rc = pthread_cond_timedwait(&cv, &mu, &dl);
    while (rc == 0);
    pthread_mutex_unlock(&mu);
    ck_assert_int_eq(rc, ETIMEDOUT);
    ck_assert_int_ge(sw_ms_since(before), 49);
    pthread_cond_destroy(&cv);
}
END_TEST

static Suite *cond_suite(void)
{
    Suite *s = suite_create("cond");
    TCase *tc = tcase_create("cond");

    tcase_add_test(tc, test_add_ms_carries);
    tcase_add_test(tc, test_deadline_is_on_the_clock_of_clock_h);
    tcase_add_test(tc, test_timed_wait_times_out_on_monotonic_deadline);
    suite_add_tcase(s, tc);
    return s;
}

const struct th_check_main th_check_main = { .suite = cond_suite };
