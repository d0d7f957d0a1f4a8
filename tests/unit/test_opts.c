/* Unit tests for common/opts.c: the options table, its parser and the generated usage. */
#include "common/opts.h"
#include "tests/harness/check_main.h"

#include <check.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* What the table below writes into. */
static struct {
    const char *addr;
    long threads;
    bool secure;
    const char *list[4];
    size_t n_list;
    char order[16]; /* the options applied, in order: 'f' file, 'a' addr, 'l' list */
} got;

static void note(char c)
{
    size_t n = strlen(got.order);
    if (n + 1 < sizeof(got.order))
        got.order[n] = c;
}

static int add_item(void *arg, const char *v, struct sw_error *err)
{
    if (got.n_list == 4)
        return sw_error_set(err, SW_EINVAL, "-item: at most 4");
    if (strcmp(v, "bad") == 0)
        return SW_EINVAL; /* no message: the parser names the option */
    got.list[got.n_list++] = v;
    note('l');
    return SW_OK;
}

static int load_file(void *arg, const char *v, struct sw_error *err)
{
    note('f');
    return SW_OK;
}

static int set_addr(void *arg, const char *v, struct sw_error *err)
{
    got.addr = v;
    note('a');
    return SW_OK;
}

static const struct sw_opt table[] = {
    SW_OPT_CALL("addr", "HOST:PORT", "listen address (default :8000)", set_addr, NULL),
    SW_OPT_NUM("threads", "N", "worker threads (default 8)\nat most 256", &got.threads, 1, 256),
    SW_OPT_FLAG("secure", "mark cookies Secure", &got.secure),
    SW_OPT_CALL("item", "X", "an item (repeatable)", add_item, NULL),
    SW_OPT_CALL("a-rather-long-option-name", "LONG-VALUE", "its text on the next line", add_item, NULL),
    { "c", "FILE", NULL, SW_OPT_FUNC, NULL, 0, 0, load_file, true },
    SW_OPT_END,
};

static const struct sw_opts go_style = {
    .prog = "demo", .dash = "-", .opts = table, .synopsis = "[-addr HOST:PORT] [ARG]", .max_args = 1,
    .args_help = "  ARG  what to do\n", .footer = "environment: DEMO_LEVEL\n",
};

static int parse(const struct sw_opts *o, struct sw_opts_result *res, struct sw_error *err, ...)
{
    char *argv[16] = { "demo" };
    int argc = 1;
    va_list ap;
    va_start(ap, err);
    for (char *a; (a = va_arg(ap, char *)) && argc < 15;)
        argv[argc++] = a;
    va_end(ap);
    memset(&got, 0, sizeof(got));
    memset(err, 0, sizeof(*err));
    return sw_opts_parse(o, argc, argv, res, err);
}

static char *usage_text(const struct sw_opts *o)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    ck_assert_ptr_nonnull(f);
    sw_opts_usage(o, f);
    fclose(f);
    return text;
}

START_TEST(test_generated_usage)
{
    char *u = usage_text(&go_style);
    ck_assert_str_eq(u, "usage: demo [-addr HOST:PORT] [ARG]\n"
                        "  ARG  what to do\n"
                        "  -addr HOST:PORT  listen address (default :8000)\n"
                        "  -threads N       worker threads (default 8)\n"
                        "                   at most 256\n"
                        "  -secure          mark cookies Secure\n"
                        "  -item X          an item (repeatable)\n"
                        "  -a-rather-long-option-name LONG-VALUE\n"
                        "                   its text on the next line\n"
                        "  -version         print the version\n"
                        "  -help            this text\n"
                        "environment: DEMO_LEVEL\n");
    free(u);
}
END_TEST

START_TEST(test_usage_double_dash_default_synopsis)
{
    static const struct sw_opt one[] = { SW_OPT_FLAG("secure", "mark cookies Secure", &got.secure), SW_OPT_END };
    const struct sw_opts o = { .prog = "d", .opts = one };
    char *u = usage_text(&o);
    ck_assert_str_eq(u, "usage: d [options]\n"
                        "  --secure   mark cookies Secure\n"
                        "  --version  print the version\n"
                        "  --help     this text\n");
    free(u);
}
END_TEST

START_TEST(test_values_both_dashes_and_equals)
{
    struct sw_opts_result res;
    struct sw_error err;
    ck_assert_int_eq(parse(&go_style, &res, &err, "-addr", ":1", "--threads=12", "--secure", NULL), SW_OK);
    ck_assert_int_eq(res.action, SW_OPTS_RUN);
    ck_assert_int_eq(res.first_arg, 5);
    ck_assert_str_eq(got.addr, ":1");
    ck_assert_int_eq(got.threads, 12);
    ck_assert(got.secure);
    /* a value may start with '-' and be empty after '=' */
    ck_assert_int_eq(parse(&go_style, &res, &err, "--addr", "-x", NULL), SW_OK);
    ck_assert_str_eq(got.addr, "-x");
    ck_assert_int_eq(parse(&go_style, &res, &err, "-addr=", NULL), SW_OK);
    ck_assert_str_eq(got.addr, "");
}
END_TEST

START_TEST(test_unknown_option)
{
    struct sw_opts_result res;
    struct sw_error err;
    ck_assert_int_eq(parse(&go_style, &res, &err, "-addr", ":1", "-bogus", "x", NULL), SW_EINVAL);
    ck_assert_str_eq(err.msg, "unknown option '-bogus'");
    ck_assert(res.show_usage);
    ck_assert_int_eq(parse(&go_style, &res, &err, "--bogus=1", NULL), SW_EINVAL);
    ck_assert_str_eq(err.msg, "unknown option '--bogus'");
    ck_assert_int_eq(parse(&go_style, &res, &err, "--=1", NULL), SW_EINVAL);
    ck_assert_int_eq(parse(&go_style, &res, &err, "-a", NULL), SW_EINVAL); /* ambiguous prefix */
    ck_assert_str_eq(err.msg, "unknown option '-a'");
}
END_TEST

START_TEST(test_missing_and_unwanted_value)
{
    struct sw_opts_result res;
    struct sw_error err;
    ck_assert_int_eq(parse(&go_style, &res, &err, "-threads", NULL), SW_EINVAL);
    ck_assert_str_eq(err.msg, "option '-threads' needs a value");
    ck_assert(res.show_usage);
    ck_assert_int_eq(parse(&go_style, &res, &err, "--secure=yes", NULL), SW_EINVAL);
    ck_assert_str_eq(err.msg, "option '--secure' takes no value");
    ck_assert(res.show_usage);
}
END_TEST

START_TEST(test_bad_number)
{
    struct sw_opts_result res;
    struct sw_error err;
    const char *bad[] = { "x", "", "0", "257", "12x", " 5", "+5", "99999999999999999999999" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_int_eq(parse(&go_style, &res, &err, "-threads", bad[i], NULL), SW_EINVAL);
        ck_assert(!res.show_usage);
        ck_assert_int_eq(got.threads, 0);
    }
    ck_assert_int_eq(parse(&go_style, &res, &err, "--threads", "x", NULL), SW_EINVAL);
    ck_assert_str_eq(err.msg, "--threads: 'x' is not a number from 1 to 256");
    ck_assert_int_eq(parse(&go_style, &res, &err, "-threads", "256", NULL), SW_OK);
    ck_assert_int_eq(got.threads, 256);
}
END_TEST

START_TEST(test_repeatable_and_callback_errors)
{
    struct sw_opts_result res;
    struct sw_error err;
    ck_assert_int_eq(parse(&go_style, &res, &err, "-item", "a", "--item=b", "-item", "c", NULL), SW_OK);
    ck_assert_uint_eq(got.n_list, 3);
    ck_assert_str_eq(got.list[0], "a");
    ck_assert_str_eq(got.list[2], "c");
    ck_assert_int_eq(parse(&go_style, &res, &err, "-item", "1", "-item", "2", "-item", "3", "-item", "4",
                           "-item", "5", NULL), SW_EINVAL);
    ck_assert_str_eq(err.msg, "-item: at most 4");
    ck_assert_int_eq(parse(&go_style, &res, &err, "-item", "bad", NULL), SW_EINVAL);
    ck_assert_str_eq(err.msg, "-item: bad value 'bad'");
    ck_assert(!res.show_usage);
}
END_TEST

START_TEST(test_help_version_in_order)
{
    struct sw_opts_result res;
    struct sw_error err;
    const char *help[] = { "-h", "-help", "--help", "--he" };
    for (size_t i = 0; i < sizeof(help) / sizeof(help[0]); i++) {
        ck_assert_int_eq(parse(&go_style, &res, &err, help[i], "-bogus", NULL), SW_OK);
        ck_assert_int_eq(res.action, SW_OPTS_HELP);
    }
    ck_assert_int_eq(parse(&go_style, &res, &err, "-version", NULL), SW_OK);
    ck_assert_int_eq(res.action, SW_OPTS_VERSION);
    /* in order: an error before --help wins */
    ck_assert_int_eq(parse(&go_style, &res, &err, "-bogus", "--help", NULL), SW_EINVAL);
}
END_TEST

START_TEST(test_positional_ends_options)
{
    struct sw_opts_result res;
    struct sw_error err;
    ck_assert_int_eq(parse(&go_style, &res, &err, "-secure", "run", NULL), SW_OK);
    ck_assert_int_eq(res.first_arg, 2);
    ck_assert_int_eq(parse(&go_style, &res, &err, "run", "-secure", NULL), SW_EINVAL);
    ck_assert_str_eq(err.msg, "unexpected argument '-secure'");
    ck_assert(res.show_usage);
    ck_assert(!got.secure);
    ck_assert_int_eq(parse(&go_style, &res, &err, "--", "-secure", NULL), SW_OK);
    ck_assert_int_eq(res.first_arg, 2);
    ck_assert(!got.secure);
    ck_assert_int_eq(parse(&go_style, &res, &err, "-", NULL), SW_OK); /* "-" is an argument */
    ck_assert_int_eq(res.first_arg, 1);
}
END_TEST

START_TEST(test_early_option_first)
{
    struct sw_opts_result res;
    struct sw_error err;
    ck_assert_int_eq(parse(&go_style, &res, &err, "-addr", ":1", "-item", "x", "-c", "f", NULL), SW_OK);
    ck_assert_str_eq(got.order, "fal");
}
END_TEST

START_TEST(test_main_exit_status)
{
    char *ok[] = { "demo", "-secure", "arg", NULL }, *bad[] = { "demo", "-threads", "0", NULL },
         *help[] = { "demo", "-help", NULL };
    int first = 0;
    FILE *saved = stdout;
    ck_assert_int_eq(sw_opts_main(&go_style, 3, ok, &first), SW_OPTS_CONTINUE);
    ck_assert_int_eq(first, 2);
    ck_assert_int_eq(sw_opts_main(&go_style, 3, bad, NULL), 2);
    stdout = fopen("/dev/null", "w");
    ck_assert_int_eq(sw_opts_main(&go_style, 2, help, NULL), 0);
    fclose(stdout);
    stdout = saved;
}
END_TEST

static Suite *opts_suite(void)
{
    Suite *s = suite_create("opts");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_generated_usage);
    tcase_add_test(tc, test_usage_double_dash_default_synopsis);
    tcase_add_test(tc, test_values_both_dashes_and_equals);
    tcase_add_test(tc, test_unknown_option);
    tcase_add_test(tc, test_missing_and_unwanted_value);
    tcase_add_test(tc, test_bad_number);
    tcase_add_test(tc, test_repeatable_and_callback_errors);
    tcase_add_test(tc, test_help_version_in_order);
    tcase_add_test(tc, test_positional_ends_options);
    tcase_add_test(tc, test_early_option_first);
    tcase_add_test(tc, test_main_exit_status);
    suite_add_tcase(s, tc);
    return s;
}

const struct th_check_main th_check_main = { .suite = opts_suite };
