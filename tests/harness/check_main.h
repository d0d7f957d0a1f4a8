/* check_main.h — the one main() of every libcheck test (unit, integration, security).
 *
 * tests/harness/check_main.c holds main(); the Makefile links it into every test binary (not
 * into benches or tools, which have their own). A test file defines th_check_main, naming the
 * function that builds its suite (suite and test-case names, timeouts, fixtures) and, where it
 * needs them, a fork mode and process-wide hooks:
 *
 *     const struct th_check_main th_check_main = { .suite = buf_suite };
 *
 * main() calls before(), builds the suite, runs it with CK_NORMAL output, calls after() and
 * exits EXIT_FAILURE when before() failed or any test failed, else EXIT_SUCCESS. The hooks run
 * on the main thread of the parent process (in fork mode each test runs in a child). */
#ifndef SW_TEST_CHECK_MAIN_H
#define SW_TEST_CHECK_MAIN_H

#include <check.h>

struct th_check_main {
    Suite *(*suite)(void);  /* required; the runner frees the suite */
    /* CK_NOFORK when the test's daemons or fixtures belong to this process; 0
     * (CK_FORK_GETENV) keeps check's default: fork unless the environment says CK_FORK=no. */
    enum fork_status fork;
    int (*before)(void);    /* optional process-wide setup; non-zero: exit before running */
    void (*after)(void);    /* optional process-wide cleanup, after the run */
};

/* Defined by each test file. */
extern const struct th_check_main th_check_main;

/* A before() hook for tests that talk HTTP and sign: sw_crypto_init and sw_http_global_init.
 * Non-zero when either fails. */
int th_check_init_crypto_http(void);

#endif
