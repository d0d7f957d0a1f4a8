/* Unit tests for common/backoff.c: the doubling sequence and its ceiling for every user's
 * base and max, reset, and the jitter band. */
#include "common/backoff.h"
#include "tests/harness/check_main.h"

#include <check.h>
#include <sodium.h>
#include <stdint.h>

static void expect_sequence(struct sw_backoff *b, const uint32_t *want, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ck_assert_uint_eq(sw_backoff_next(b), want[i]);
}

START_TEST(test_sequences_of_each_user)
{
    /* messaging client reconnect: 500 ms doubling to 30 s (here without its jitter) */
    static const uint32_t msg[] = { 500, 1000, 2000, 4000, 8000, 16000, 30000, 30000 };
    /* service migrations: 500 ms to 5 s */
    static const uint32_t svc[] = { 500, 1000, 2000, 4000, 5000, 5000 };
    /* route-finder graph sync: 200 ms to 2 s */
    static const uint32_t rf[] = { 200, 400, 800, 1600, 2000, 2000 };
    /* visor discovery jobs: 1 s to 30 s */
    static const uint32_t tpd[] = { 1000, 2000, 4000, 8000, 16000, 30000, 30000 };
    struct sw_backoff b;

    sw_backoff_init(&b, 500, 30000, false);
    expect_sequence(&b, msg, sizeof(msg) / sizeof(msg[0]));
    sw_backoff_init(&b, 500, 5000, false);
    expect_sequence(&b, svc, sizeof(svc) / sizeof(svc[0]));
    b = (struct sw_backoff)SW_BACKOFF_INIT(200, 2000, false);
    expect_sequence(&b, rf, sizeof(rf) / sizeof(rf[0]));
    sw_backoff_init(&b, 1000, 30000, false);
    expect_sequence(&b, tpd, sizeof(tpd) / sizeof(tpd[0]));
}
END_TEST

START_TEST(test_reset_and_edges)
{
    struct sw_backoff b;

    sw_backoff_init(&b, 1000, 60000, false);
    ck_assert_uint_eq(sw_backoff_next(&b), 1000);
    ck_assert_uint_eq(sw_backoff_next(&b), 2000);
    sw_backoff_reset(&b);
    ck_assert_uint_eq(sw_backoff_next(&b), 1000);
    /* a ceiling below the base holds from the first delay */
    sw_backoff_init(&b, 5000, 3000, false);
    ck_assert_uint_eq(sw_backoff_next(&b), 3000);
    ck_assert_uint_eq(sw_backoff_next(&b), 3000);
    /* no overflow near the top of the range */
    sw_backoff_init(&b, UINT32_MAX / 2 + 1, UINT32_MAX, false);
    ck_assert_uint_eq(sw_backoff_next(&b), UINT32_MAX / 2 + 1);
    ck_assert_uint_eq(sw_backoff_next(&b), UINT32_MAX);
    ck_assert_uint_eq(sw_backoff_next(&b), UINT32_MAX);
}
END_TEST

START_TEST(test_jitter_bounds)
{
    static const uint32_t steps[] = { 500, 1000, 30000, 60000 };

    ck_assert_uint_eq(sw_backoff_jitter(1000, 0), 750);
    ck_assert_uint_eq(sw_backoff_jitter(1000, UINT32_MAX), 1249);
    ck_assert_uint_eq(sw_backoff_jitter(1000, 1u << 31), 1000);
    ck_assert_uint_eq(sw_backoff_jitter(UINT32_MAX, UINT32_MAX), UINT32_MAX); /* saturates */
    for (size_t s = 0; s < sizeof(steps) / sizeof(steps[0]); s++) {
        struct sw_backoff b;
        uint32_t lo = UINT32_MAX, hi = 0;
        for (int i = 0; i < 20000; i++) {
            uint32_t d;
            sw_backoff_init(&b, steps[s], steps[s], true);
            d = sw_backoff_next(&b);
            ck_assert_uint_ge(d, steps[s] * 3 / 4);
            ck_assert_uint_le(d, steps[s] * 5 / 4);
            lo = d < lo ? d : lo;
            hi = d > hi ? d : hi;
        }
        /* the spread really covers the +-25 % band */
        ck_assert_uint_lt(lo, steps[s] * 80 / 100);
        ck_assert_uint_gt(hi, steps[s] * 120 / 100);
    }
}
END_TEST

/* The jitter scales the step; it does not feed back into the doubling. */
START_TEST(test_jitter_keeps_the_sequence)
{
    struct sw_backoff b;
    static const uint32_t steps[] = { 1000, 2000, 4000, 8000, 16000, 30000, 30000 };

    sw_backoff_init(&b, 1000, 30000, true);
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        uint32_t d = sw_backoff_next(&b);
        ck_assert_uint_ge(d, steps[i] * 3 / 4);
        ck_assert_uint_le(d, steps[i] * 5 / 4);
    }
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("backoff");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_sequences_of_each_user);
    tcase_add_test(tc, test_reset_and_edges);
    tcase_add_test(tc, test_jitter_bounds);
    tcase_add_test(tc, test_jitter_keeps_the_sequence);
    suite_add_tcase(s, tc);
    return s;
}

static int init_sodium(void)
{
    return sodium_init() < 0 ? -1 : 0;
}

const struct th_check_main th_check_main = { .suite = suite, .before = init_sodium };
