/* daemon_main.h — the life of every daemon, in one order:
 *
 *   1. sw_log_init(name);
 *   2. the command line (common/opts.h): --help and --version print and exit 0, a bad option
 *      exits 2 naming it;
 *   3. libsodium, then configure(): positional arguments, cross-option checks, config files
 *      (exit 2, "NAME: why" on stderr, when it fails);
 *   4. oneshot(), when the daemon has a one-shot mode (exit with its status when it took it);
 *   5. sw_daemon_init() (signals, common/daemon.h) and the libraries the daemon asked for;
 *   6. start() (on failure: logged, stop(), exit 1);
 *   7. wait for SIGTERM/SIGINT ("SIGTERM received, stopping"), stop(), "stopped", exit 0.
 *
 * sw_service_main (common/service.h) puts the PostgreSQL services on top of it; the
 * messaging server, the hypervisor and the visor use it directly.
 * Threads: everything here runs on the main thread, which alone takes the stop signals. */
#ifndef SW_DAEMON_MAIN_H
#define SW_DAEMON_MAIN_H

#include "common/err.h"
#include "common/opts.h"

/* Libraries initialised in step 5 (libsodium always is). */
#define SW_DAEMON_CURL 1u          /* sw_http_global_init: the daemon makes HTTP requests */
#define SW_DAEMON_EVENT_THREADS 2u /* evthread_use_pthreads: libevent across threads */

struct sw_daemon_def {
    /* name: the log component (borrowed for the process's life) and the first word of
     * usage and --version. The opts' targets usually point into the app's state. */
    struct sw_opts cli;
    unsigned libs; /* SW_DAEMON_* */
    /* Optional. argv[0..argc) are the positional arguments (at most cli.max_args). */
    int (*configure)(void *app, int argc, char **argv, struct sw_error *err);
    /* Optional: returns the exit status of a one-shot mode chosen on the command line (the
     * hypervisor's --reset-password), or -1 to run the daemon. */
    int (*oneshot)(void *app);
    /* Starts everything and logs the "started" line; SW_OK, or a negative code with err
     * set (left empty when start() logged the reason itself). */
    int (*start)(void *app, struct sw_error *err);
    /* Stops what start() started, also after a start() that failed halfway. */
    void (*stop)(void *app);
};

/* Runs the daemon; returns the process exit status. app is handed to every callback. */
int sw_daemon_main(const struct sw_daemon_def *def, void *app, int argc, char **argv);

#endif
