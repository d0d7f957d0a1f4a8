/* Unit tests for common/uuid.c. */
#include "common/err.h"
#include "common/uuid.h"
#include "tests/harness/check_main.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

static const char canonical[] = "0123abcd-4567-89ef-8a0b-cdef01234567";
static const uint8_t canonical_bytes[SW_UUID_LEN] = { 0x01, 0x23, 0xab, 0xcd, 0x45, 0x67,
                                                      0x89, 0xef, 0x8a, 0x0b, 0xcd, 0xef,
                                                      0x01, 0x23, 0x45, 0x67 };

START_TEST(test_parse_and_format)
{
    struct sw_uuid u;
    struct sw_error err = { 0 };
    char out[SW_UUID_STR_LEN + 1];

    ck_assert_int_eq(sw_uuid_parse(&u, canonical, "t_id", &err), SW_OK);
    ck_assert_mem_eq(u.b, canonical_bytes, SW_UUID_LEN);
    memset(out, 'Z', sizeof(out));
    sw_uuid_format(&u, out);
    ck_assert_str_eq(out, canonical);
}
END_TEST

START_TEST(test_parse_uppercase_formats_lowercase)
{
    struct sw_uuid u;
    char out[SW_UUID_STR_LEN + 1];
    ck_assert_int_eq(sw_uuid_parse(&u, "0123ABCD-4567-89EF-8A0B-CDEF01234567", NULL, NULL), SW_OK);
    ck_assert_mem_eq(u.b, canonical_bytes, SW_UUID_LEN);
    sw_uuid_format(&u, out);
    ck_assert_str_eq(out, canonical);
}
END_TEST

START_TEST(test_format_extremes)
{
    struct sw_uuid u;
    char out[SW_UUID_STR_LEN + 1];
    memset(u.b, 0, sizeof(u.b));
    sw_uuid_format(&u, out);
    ck_assert_str_eq(out, "00000000-0000-0000-0000-000000000000");
    memset(u.b, 0xff, sizeof(u.b));
    sw_uuid_format(&u, out);
    ck_assert_str_eq(out, "ffffffff-ffff-ffff-ffff-ffffffffffff");
}
END_TEST

START_TEST(test_parse_rejects)
{
    static const char *const bad[] = {
        "",
        "0123abcd-4567-89ef-8a0b-cdef0123456",    /* 35 chars */
        "0123abcd-4567-89ef-8a0b-cdef012345678",  /* 37 chars */
        "0123abcd04567-89ef-8a0b-cdef01234567",   /* hyphen replaced */
        "0123abcd-4567089ef-8a0b-cdef01234567",
        "0123abcd-4567-89ef08a0b-cdef01234567",
        "0123abcd-4567-89ef-8a0b0cdef01234567",
        "0123abc-d4567-89ef-8a0b-cdef01234567",   /* hyphen moved */
        "0123abcg-4567-89ef-8a0b-cdef01234567",   /* non-hex */
        "0123abcd-4567-89ef-8a0b-cdef0123456z",
        "{0123abc-4567-89ef-8a0b-cdef01234567}",
        "0123abcd45678-9ef-8a0b-cdef01234567-",
        "0123abcd-4567-89ef-8a0b-cdef01234567 ",
        " 0123abcd-4567-89ef-8a0b-cdef01234567",
        "0123abcd-+567-89ef-8a0b-cdef01234567",
        "0123abcd4567089ef08a0b0cdef012345670",   /* no hyphens, right length */
        "------------------------------------",
    };
    struct sw_uuid u, orig;
    struct sw_error err;
    memset(&u, 0x42, sizeof(u));
    orig = u;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&err, 0, sizeof(err));
        ck_assert_msg(sw_uuid_parse(&u, bad[i], "[3].t_id", &err) == SW_EINVAL, "accepted '%s'",
                      bad[i]);
        ck_assert_int_eq(err.code, SW_EINVAL);
        ck_assert_ptr_nonnull(strstr(err.msg, "[3].t_id"));
    }
    ck_assert_int_eq(sw_uuid_parse(&u, NULL, NULL, &err), SW_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "uuid"));
    ck_assert_mem_eq(&u, &orig, sizeof(u));
}
END_TEST

START_TEST(test_equal)
{
    struct sw_uuid a, b;
    ck_assert_int_eq(sw_uuid_parse(&a, canonical, NULL, NULL), SW_OK);
    b = a;
    ck_assert(sw_uuid_equal(&a, &b));
    b.b[15] ^= 1;
    ck_assert(!sw_uuid_equal(&a, &b));
    b = a;
    b.b[0] ^= 0x80;
    ck_assert(!sw_uuid_equal(&a, &b));
}
END_TEST

static Suite *uuid_suite(void)
{
    Suite *s = suite_create("uuid");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_parse_and_format);
    tcase_add_test(tc, test_parse_uppercase_formats_lowercase);
    tcase_add_test(tc, test_format_extremes);
    tcase_add_test(tc, test_parse_rejects);
    tcase_add_test(tc, test_equal);
    suite_add_tcase(s, tc);
    return s;
}

const struct th_check_main th_check_main = { .suite = uuid_suite };
