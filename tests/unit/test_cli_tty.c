/* cli_tty_clean (visor/cli/tty_out.c): what a remote peer says cannot steer the terminal. */
#include "tests/harness/check_main.h"
#include "visor/cli/cli.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#define CLEAN(lit) clean(lit, sizeof(lit) - 1)

static const char *clean(const char *in, size_t n)
{
    static char out[256];
    bool c2 = false;
    size_t len = cli_tty_clean(out, in, n, &c2);
    out[len] = '\0';
    return out;
}

START_TEST(test_plain_text_and_utf8_kept)
{
    ck_assert_str_eq(CLEAN("app\tskychat\n"), "app\tskychat\n");
    ck_assert_str_eq(CLEAN("caf\xc3\xa9 \xc2\xa9"), "caf\xc3\xa9 \xc2\xa9"); /* é © */
}
END_TEST

START_TEST(test_controls_replaced)
{
    ck_assert_str_eq(CLEAN("\x1b[2J\x1b]0;pwned\x07x\r\x7f"), "?[2J?]0;pwned?x??");
    ck_assert_str_eq(CLEAN("a\xc2\x9b" "31mb"), "a?31mb"); /* C1 CSI as UTF-8 */
}
END_TEST

START_TEST(test_c2_across_calls)
{
    char out[8];
    bool c2 = false;
    size_t n = cli_tty_clean(out, "x\xc2", 2, &c2);
    ck_assert_uint_eq(n, 1);
    ck_assert(c2);
    n = cli_tty_clean(out, "\x9b", 1, &c2);
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(out[0], '?');
    c2 = false;
    cli_tty_clean(out, "\xc2", 1, &c2);
    n = cli_tty_clean(out, "\xa9", 1, &c2); /* © split over two writes */
    ck_assert_uint_eq(n, 2);
    ck_assert(memcmp(out, "\xc2\xa9", 2) == 0);
}
END_TEST

static Suite *cli_tty_suite(void)
{
    Suite *s = suite_create("cli_tty");
    TCase *tc = tcase_create("clean");

    tcase_add_test(tc, test_plain_text_and_utf8_kept);
    tcase_add_test(tc, test_controls_replaced);
    tcase_add_test(tc, test_c2_across_calls);
    suite_add_tcase(s, tc);
    return s;
}

const struct th_check_main th_check_main = { .suite = cli_tty_suite };
