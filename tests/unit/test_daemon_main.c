/* Unit tests for common/daemon_main.c: the init order, exit statuses and stop. Each test runs
 * in its own child (check's fork mode): the core blocks the stop signals process-wide. */
#include "common/daemon_main.h"
#include "tests/harness/check_main.h"

#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

struct app {
    const char *name;     /* --name */
    int configured, started, stopped, oneshots;
    int nargs;
    const char *arg0;
    int configure_rc, start_rc, oneshot_rc;
    bool signal_self; /* start() sends SIGTERM, so the wait ends at once */
};

static struct app app;

static int configure(void *arg, int argc, char **argv, struct sw_error *err)
{
    struct app *a = arg;
    a->configured++;
    a->nargs = argc;
    a->arg0 = argc ? argv[0] : NULL;
    return a->configure_rc ? sw_error_set(err, a->configure_rc, "bad config") : SW_OK;
}

static int oneshot(void *arg)
{
    struct app *a = arg;
    a->oneshots++;
    return a->oneshot_rc;
}

static int start(void *arg, struct sw_error *err)
{
    struct app *a = arg;
    a->started++;
    if (a->start_rc)
        return sw_error_set(err, a->start_rc, "cannot start");
    if (a->signal_self)
        kill(getpid(), SIGTERM); /* blocked: waits for sw_daemon_wait */
    return SW_OK;
}

static void stop(void *arg)
{
    struct app *a = arg;
    a->stopped++;
}

static const struct sw_opt options[] = {
    SW_OPT_STR("name", "NAME", "a name", &app.name),
    SW_OPT_END,
};

static const struct sw_daemon_def def = {
    .cli = { .prog = "demo-daemon", .opts = options, .max_args = 1 },
    .configure = configure,
    .oneshot = oneshot,
    .start = start,
    .stop = stop,
};

static int run(int argc, char **argv)
{
    return sw_daemon_main(&def, &app, argc, argv);
}

static void reset(void)
{
    memset(&app, 0, sizeof(app));
    app.oneshot_rc = -1;
}

START_TEST(test_help_and_bad_option_start_nothing)
{
    char *help[] = { "demo-daemon", "--help" }, *bad[] = { "demo-daemon", "--nope" };
    FILE *saved = stdout;
    reset();
    stdout = fopen("/dev/null", "w");
    ck_assert_int_eq(run(2, help), 0);
    fclose(stdout);
    stdout = saved;
    ck_assert_int_eq(run(2, bad), 2);
    ck_assert_int_eq(app.configured + app.started + app.stopped, 0);
}
END_TEST

START_TEST(test_configure_failure_exits_2)
{
    char *argv[] = { "demo-daemon", "--name", "x", "conf.json" };
    reset();
    app.configure_rc = SW_EINVAL;
    ck_assert_int_eq(run(4, argv), 2);
    ck_assert_int_eq(app.configured, 1);
    ck_assert_int_eq(app.nargs, 1);
    ck_assert_str_eq(app.arg0, "conf.json");
    ck_assert_str_eq(app.name, "x");
    ck_assert_int_eq(app.started + app.stopped, 0);
}
END_TEST

START_TEST(test_oneshot_replaces_the_daemon)
{
    char *argv[] = { "demo-daemon" };
    reset();
    app.oneshot_rc = 7;
    ck_assert_int_eq(run(1, argv), 7);
    ck_assert_int_eq(app.oneshots, 1);
    ck_assert_int_eq(app.started + app.stopped, 0);
}
END_TEST

START_TEST(test_failed_start_is_stopped)
{
    char *argv[] = { "demo-daemon" };
    reset();
    app.start_rc = SW_EIO;
    ck_assert_int_eq(run(1, argv), 1);
    ck_assert_int_eq(app.started, 1);
    ck_assert_int_eq(app.stopped, 1);
}
END_TEST

START_TEST(test_sigterm_stops_with_0)
{
    char *argv[] = { "demo-daemon", "--name=n" };
    reset();
    app.signal_self = true;
    ck_assert_int_eq(run(2, argv), 0);
    ck_assert_int_eq(app.configured, 1);
    ck_assert_int_eq(app.nargs, 0);
    ck_assert_int_eq(app.started, 1);
    ck_assert_int_eq(app.stopped, 1);
}
END_TEST

static Suite *daemon_main_suite(void)
{
    Suite *s = suite_create("daemon_main");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_help_and_bad_option_start_nothing);
    tcase_add_test(tc, test_configure_failure_exits_2);
    tcase_add_test(tc, test_oneshot_replaces_the_daemon);
    tcase_add_test(tc, test_failed_start_is_stopped);
    tcase_add_test(tc, test_sigterm_stops_with_0);
    suite_add_tcase(s, tc);
    return s;
}

const struct th_check_main th_check_main = { .suite = daemon_main_suite, .fork = CK_FORK };
