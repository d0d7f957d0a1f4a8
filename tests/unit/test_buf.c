/* Unit tests for common/buf.c: growth, limit, printf, reset and steal. */
#include "common/buf.h"
#include "common/err.h"
#include "tests/harness/check_main.h"

#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

START_TEST(test_init_append)
{
    struct sw_buf b;
    sw_buf_init(&b, 0);
    ck_assert_ptr_null(b.data);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_int_eq(sw_buf_append(&b, "abc", 3), SW_OK);
    ck_assert_uint_eq(b.len, 3);
    ck_assert_str_eq(b.data, "abc");
    ck_assert_int_eq(sw_buf_append(&b, "", 0), SW_OK);
    ck_assert_str_eq(b.data, "abc");
    ck_assert_int_eq(sw_buf_append(&b, "d\0e", 3), SW_OK); /* binary-safe */
    ck_assert_uint_eq(b.len, 6);
    ck_assert_mem_eq(b.data, "abcd\0e", 7);
    sw_buf_free(&b);
    ck_assert_ptr_null(b.data);
    ck_assert_uint_eq(b.len, 0);
    sw_buf_free(&b); /* idempotent */
}
END_TEST

START_TEST(test_empty_append_terminates)
{
    /* even a zero-length first append yields a NUL-terminated string */
    struct sw_buf b;
    sw_buf_init(&b, 0);
    ck_assert_int_eq(sw_buf_append(&b, NULL, 0), SW_OK);
    ck_assert_ptr_nonnull(b.data);
    ck_assert_str_eq(b.data, "");
    sw_buf_free(&b);
}
END_TEST

START_TEST(test_growth)
{
    struct sw_buf b;
    char chunk[1000];
    sw_buf_init(&b, 0);
    for (int i = 0; i < 100; i++) {
        memset(chunk, 'a' + i % 26, sizeof(chunk));
        ck_assert_int_eq(sw_buf_append(&b, chunk, sizeof(chunk)), SW_OK);
    }
    ck_assert_uint_eq(b.len, 100000);
    ck_assert_uint_ge(b.cap, b.len + 1);
    ck_assert_int_eq(b.data[0], 'a');
    ck_assert_int_eq(b.data[99999], 'a' + 99 % 26);
    ck_assert_int_eq(b.data[100000], '\0');
    ck_assert_uint_eq(strlen(b.data), 100000);
    sw_buf_free(&b);
}
END_TEST

START_TEST(test_limit)
{
    struct sw_buf b;
    sw_buf_init(&b, 8);
    ck_assert_int_eq(sw_buf_append(&b, "12345", 5), SW_OK);
    ck_assert_int_eq(sw_buf_append(&b, "6789", 4), SW_ERANGE);
    /* content unchanged by the failed append */
    ck_assert_uint_eq(b.len, 5);
    ck_assert_str_eq(b.data, "12345");
    ck_assert_int_eq(sw_buf_append(&b, "678", 3), SW_OK); /* exactly the limit */
    ck_assert_uint_eq(b.len, 8);
    ck_assert_str_eq(b.data, "12345678");
    ck_assert_int_eq(sw_buf_append(&b, "9", 1), SW_ERANGE);
    ck_assert_int_eq(sw_buf_append(&b, "", 0), SW_OK);
    ck_assert_int_eq(sw_buf_printf(&b, "%s", "x"), SW_ERANGE);
    ck_assert_str_eq(b.data, "12345678");
    /* reset makes room again */
    sw_buf_reset(&b);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_str_eq(b.data, "");
    ck_assert_int_eq(sw_buf_printf(&b, "%08d", 42), SW_OK);
    ck_assert_str_eq(b.data, "00000042");
    ck_assert_int_eq(sw_buf_printf(&b, "%d", 1), SW_ERANGE);
    ck_assert_str_eq(b.data, "00000042");
    sw_buf_free(&b);
}
END_TEST

START_TEST(test_huge_append_rejected)
{
    struct sw_buf b;
    sw_buf_init(&b, 0);
    ck_assert_int_eq(sw_buf_append(&b, "ab", 2), SW_OK);
    /* sizes that would overflow len + n + 1 */
    ck_assert_int_eq(sw_buf_append(&b, "x", SIZE_MAX), SW_ERANGE);
    ck_assert_int_eq(sw_buf_append(&b, "x", SIZE_MAX - 2), SW_ERANGE);
    ck_assert_str_eq(b.data, "ab");
    ck_assert_uint_eq(b.len, 2);
    sw_buf_free(&b);
}
END_TEST

START_TEST(test_printf)
{
    struct sw_buf b;
    char big[5000];
    sw_buf_init(&b, 0);
    ck_assert_int_eq(sw_buf_printf(&b, "%s=%d", "a", 1), SW_OK);
    ck_assert_int_eq(sw_buf_printf(&b, ",%s=%llu", "b", 18446744073709551615ull), SW_OK);
    ck_assert_str_eq(b.data, "a=1,b=18446744073709551615");
    ck_assert_uint_eq(b.len, strlen("a=1,b=18446744073709551615"));
    ck_assert_int_eq(sw_buf_printf(&b, "%s", ""), SW_OK);
    ck_assert_uint_eq(b.len, strlen("a=1,b=18446744073709551615"));
    /* output longer than the initial allocation */
    memset(big, 'z', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    ck_assert_int_eq(sw_buf_printf(&b, "[%s]", big), SW_OK);
    ck_assert_uint_eq(b.len, 26 + 2 + 4999);
    ck_assert_int_eq(b.data[26], '[');
    ck_assert_int_eq(b.data[b.len - 1], ']');
    ck_assert_int_eq(b.data[b.len], '\0');
    sw_buf_free(&b);

    sw_buf_init(&b, 0);
    ck_assert_int_eq(sw_buf_printf(&b, "%s", ""), SW_OK);
    ck_assert_ptr_nonnull(b.data);
    ck_assert_str_eq(b.data, "");
    sw_buf_free(&b);
}
END_TEST

START_TEST(test_reset_empty)
{
    struct sw_buf b;
    sw_buf_init(&b, 0);
    sw_buf_reset(&b); /* no data yet: must not crash */
    ck_assert_uint_eq(b.len, 0);
    ck_assert_int_eq(sw_buf_append(&b, "q", 1), SW_OK);
    sw_buf_reset(&b);
    ck_assert_str_eq(b.data, "");
    ck_assert_int_eq(sw_buf_append(&b, "r", 1), SW_OK);
    ck_assert_str_eq(b.data, "r");
    sw_buf_free(&b);
}
END_TEST

START_TEST(test_steal)
{
    struct sw_buf b;
    size_t len = 0;
    char *p;
    sw_buf_init(&b, 100);
    ck_assert_int_eq(sw_buf_printf(&b, "hello %s", "world"), SW_OK);
    p = sw_buf_steal(&b, &len);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq(len, 11);
    ck_assert_str_eq(p, "hello world");
    /* the buffer is empty and reusable; the stolen memory is ours */
    ck_assert_ptr_null(b.data);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_uint_eq(b.cap, 0);
    ck_assert_uint_eq(b.limit, 100);
    ck_assert_int_eq(sw_buf_append(&b, "again", 5), SW_OK);
    ck_assert_str_eq(b.data, "again");
    ck_assert_ptr_ne(b.data, p);
    ck_assert_str_eq(p, "hello world");
    free(p);
    p = sw_buf_steal(&b, NULL); /* len may be NULL */
    ck_assert_str_eq(p, "again");
    free(p);
    sw_buf_free(&b); /* nothing left to free */
}
END_TEST

static Suite *buf_suite(void)
{
    Suite *s = suite_create("buf");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_init_append);
    tcase_add_test(tc, test_empty_append_terminates);
    tcase_add_test(tc, test_growth);
    tcase_add_test(tc, test_limit);
    tcase_add_test(tc, test_huge_append_rejected);
    tcase_add_test(tc, test_printf);
    tcase_add_test(tc, test_reset_empty);
    tcase_add_test(tc, test_steal);
    suite_add_tcase(s, tc);
    return s;
}

const struct th_check_main th_check_main = { .suite = buf_suite };
