/* Unit tests for common/utf8.c: well-formed text, each kind of malformed sequence (overlong,
 * surrogate, above U+10FFFF, truncated, stray continuation, bad lead bytes) with the offset
 * reported, and every sequence of one to three bytes plus a sweep of four-byte ones against a
 * straightforward reference decoder. */
#include "common/utf8.h"
#include "tests/harness/check_main.h"

#include <check.h>
#include <stdint.h>
#include <string.h>

#define VALID(lit) ck_assert_msg(sw_utf8_valid(lit, sizeof(lit) - 1, NULL), "refused %s", #lit)

static void invalid_at(const char *s, size_t len, size_t want)
{
    size_t at = 12345;
    ck_assert_msg(!sw_utf8_valid(s, len, &at), "accepted %zu bytes", len);
    ck_assert_uint_eq(at, want);
}
#define INVALID(lit, at) invalid_at(lit, sizeof(lit) - 1, at)

START_TEST(test_valid_text)
{
    VALID("");
    VALID("plain ASCII, \"quotes\" and \\ and \t\n\x7f");
    VALID("h\xc3\xa9llo");                     /* é */
    VALID("\xe2\x9c\x93 \xe2\x82\xac");         /* ✓ € */
    VALID("\xf0\x9f\x98\x80");                 /* U+1F600 */
    VALID("\xc2\x80");                         /* U+0080, the first two-byte value */
    VALID("\xdf\xbf\xe0\xa0\x80");             /* U+07FF, U+0800 */
    VALID("\xed\x9f\xbf\xee\x80\x80");         /* U+D7FF, U+E000: around the surrogates */
    VALID("\xef\xbf\xbf\xf0\x90\x80\x80");     /* U+FFFF, U+10000 */
    VALID("\xf4\x8f\xbf\xbf");                 /* U+10FFFF, the last */
    VALID("\xef\xbb\xbf BOM and \xe2\x80\xa8"); /* U+FEFF, U+2028 */
    ck_assert(sw_utf8_valid("a\0b", 3, NULL)); /* NUL is UTF-8; callers refuse it */
}
END_TEST

START_TEST(test_overlong)
{
    INVALID("\xc0\xaf", 0);                 /* '/' in two bytes */
    INVALID("\xc1\xbf", 0);
    INVALID("ab\xc0\x80", 2);               /* NUL in two bytes (modified UTF-8) */
    INVALID("\xe0\x80\xaf", 0);             /* '/' in three */
    INVALID("\xe0\x9f\xbf", 0);             /* U+07FF in three */
    INVALID("\xf0\x80\x80\xaf", 0);         /* '/' in four */
    INVALID("x\xf0\x8f\xbf\xbf", 1);        /* U+FFFF in four */
}
END_TEST

START_TEST(test_surrogates)
{
    INVALID("\xed\xa0\x80", 0);             /* U+D800 */
    INVALID("\xed\xbf\xbf", 0);             /* U+DFFF */
    INVALID("ok \xed\xa0\xbd\xed\xb8\x80", 3); /* a CESU-8 pair for U+1F600 */
}
END_TEST

START_TEST(test_above_max)
{
    INVALID("\xf4\x90\x80\x80", 0);         /* U+110000 */
    INVALID("\xf5\x80\x80\x80", 0);
    INVALID("\xf7\xbf\xbf\xbf", 0);         /* U+1FFFFF */
    INVALID("\xf8\x88\x80\x80\x80", 0);     /* the old five-byte form */
    INVALID("\xfc\x84\x80\x80\x80\x80", 0); /* and six */
    INVALID("\xfe", 0);
    INVALID("\xff", 0);
}
END_TEST

START_TEST(test_truncated_and_stray)
{
    INVALID("\x80", 0);                     /* a continuation byte alone */
    INVALID("abc\xbf", 3);
    INVALID("\xc3", 0);                     /* a lead byte at the end */
    INVALID("\xe2\x9c", 0);
    INVALID("\xf0\x9f\x98", 0);
    INVALID("\xc3(", 0);                    /* a lead byte before ASCII */
    INVALID("\xe2(\xa1", 0);
    INVALID("\xe2\x9c(", 0);
    INVALID("\xf0\x9f\x98(", 0);
    INVALID("\xc3\xa9\xc3\xa9\xa9", 4);     /* é é then a stray continuation */
    INVALID("\xf0\x9f\x98\x80\x80", 4);
}
END_TEST

/* Reference: decodes one sequence of exactly n bytes; true when it is the shortest form of
 * a scalar value. */
static bool reference(const uint8_t *p, size_t n)
{
    static const uint8_t lead_mask[] = { 0, 0x7f, 0x1f, 0x0f, 0x07 };
    static const uint8_t lead_tag[] = { 0, 0x00, 0xc0, 0xe0, 0xf0 };
    static const uint32_t min[] = { 0, 0, 0x80, 0x800, 0x10000 };
    uint32_t cp;

    if ((p[0] & ~lead_mask[n] & 0xff) != lead_tag[n])
        return false;
    cp = p[0] & lead_mask[n];
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return false;
        cp = cp << 6 | (p[i] & 0x3f);
    }
    return cp >= min[n] && cp <= 0x10ffff && !(cp >= 0xd800 && cp <= 0xdfff);
}

START_TEST(test_against_reference)
{
    static const uint8_t edges[] = { 0x00, 0x7f, 0x80, 0x8f, 0x90, 0xbf, 0xc0, 0xff };
    uint8_t b[4];
    unsigned long n_valid = 0;

    for (uint32_t v = 0; v < 0x100; v++) {
        b[0] = (uint8_t)v;
        ck_assert_int_eq(sw_utf8_valid((char *)b, 1, NULL), reference(b, 1));
    }
    for (uint32_t v = 0; v < 0x10000; v++) {
        b[0] = (uint8_t)(v >> 8), b[1] = (uint8_t)v;
        ck_assert_msg(sw_utf8_valid((char *)b, 2, NULL) == (reference(b, 2) ||
                      (reference(b, 1) && reference(b + 1, 1))), "%02x %02x", b[0], b[1]);
    }
    for (uint32_t v = 0; v < 0x1000000; v++) {
        bool want;
        b[0] = (uint8_t)(v >> 16), b[1] = (uint8_t)(v >> 8), b[2] = (uint8_t)v;
        if (b[0] < 0xe0 && b[0] != 0x00 && b[0] != 0x41 && b[0] != 0x7f)
            continue; /* two-byte leads were covered above; ASCII before a pair: three */
        want = reference(b, 3) || (b[0] < 0x80 && sw_utf8_valid((char *)b + 1, 2, NULL));
        n_valid += want;
        ck_assert_msg(sw_utf8_valid((char *)b, 3, NULL) == want, "%02x %02x %02x", b[0], b[1], b[2]);
    }
    ck_assert_uint_gt(n_valid, 0);
    /* four bytes: every lead F0..FF with every second byte, the others at the edges of the
     * continuation range */
    for (uint32_t l = 0xf0; l <= 0xff; l++)
        for (uint32_t s = 0; s < 0x100; s++)
            for (size_t t = 0; t < sizeof(edges); t++)
                for (size_t u = 0; u < sizeof(edges); u++) {
                    b[0] = (uint8_t)l, b[1] = (uint8_t)s, b[2] = edges[t], b[3] = edges[u];
                    ck_assert_msg(sw_utf8_valid((char *)b, 4, NULL) == reference(b, 4),
                                  "%02x %02x %02x %02x", b[0], b[1], b[2], b[3]);
                }
}
END_TEST

START_TEST(test_bad_at_untouched_when_valid)
{
    size_t at = 7;
    ck_assert(sw_utf8_valid("\xe2\x9c\x93", 3, &at));
    ck_assert_uint_eq(at, 7);
    /* the length bounds the check: a valid prefix of a longer buffer */
    ck_assert(sw_utf8_valid("ab\xff", 2, &at));
    ck_assert(!sw_utf8_valid("\xe2\x9c\x93", 2, &at));
    ck_assert_uint_eq(at, 0);
}
END_TEST

static Suite *utf8_suite(void)
{
    Suite *s = suite_create("utf8");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_valid_text);
    tcase_add_test(tc, test_overlong);
    tcase_add_test(tc, test_surrogates);
    tcase_add_test(tc, test_above_max);
    tcase_add_test(tc, test_truncated_and_stray);
    tcase_add_test(tc, test_against_reference);
    tcase_add_test(tc, test_bad_at_untouched_when_valid);
    suite_add_tcase(s, tc);
    return s;
}

const struct th_check_main th_check_main = { .suite = utf8_suite };
