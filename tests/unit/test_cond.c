/* common/cond.h: monotonic deadlines for timed waits. */
#include "common/cond.h"

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

START_TEST(test_timed_wait_times_out_on_monotonic_deadline)
{
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t cv;
    struct timespec dl, before, after;
    int rc;

    ck_assert_int_eq(sw_cond_init(&cv), 0);
    clock_gettime(CLOCK_MONOTONIC, &before);
    sw_cond_deadline(50, &dl);
    pthread_mutex_lock(&mu);
    do
        rc = pthread_cond_timedwait(&cv, &mu, &dl);
    while (rc == 0);
    pthread_mutex_unlock(&mu);
    clock_gettime(CLOCK_MONOTONIC, &after);
    ck_assert_int_eq(rc, ETIMEDOUT);
    ck_assert_int_ge((after.tv_sec - before.tv_sec) * 1000 + (after.tv_nsec - before.tv_nsec) / 1000000, 49);
    pthread_cond_destroy(&cv);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cond");
    TCase *tc = tcase_create("cond");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, test_add_ms_carries);
    tcase_add_test(tc, test_timed_wait_times_out_on_monotonic_deadline);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
