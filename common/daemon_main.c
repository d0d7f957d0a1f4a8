#include "common/daemon_main.h"
#include "common/daemon.h"
#include "common/http_client.h"
#include "common/keys.h"
#include "common/log.h"

#include <event2/thread.h>
#include <signal.h>
#include <stdio.h>

static int init_libs(unsigned libs)
{
    if (sw_daemon_init())
        return SW_EIO;
    if ((libs & SW_DAEMON_CURL) && sw_http_global_init())
        return SW_EIO;
    if ((libs & SW_DAEMON_EVENT_THREADS) && evthread_use_pthreads())
        return SW_EIO;
    return SW_OK;
}

int sw_daemon_main(const struct sw_daemon_def *def, void *app, int argc, char **argv)
{
    const char *name = def->cli.prog;
    struct sw_error err = { 0 };
    int first = argc, rc, sig;

    sw_log_init(name);
    if ((rc = sw_opts_main(&def->cli, argc, argv, &first)) != SW_OPTS_CONTINUE)
        return rc;
    if (sw_crypto_init()) {
        sw_log_error("initialisation failed");
        return 1;
    }
    if (def->configure && def->configure(app, argc - first, argv + first, &err)) {
        fprintf(stderr, "%s: %s\n", name, err.msg);
        return 2;
    }
    if (def->oneshot && (rc = def->oneshot(app)) >= 0)
        return rc;
    if (init_libs(def->libs)) {
        sw_log_error("initialisation failed");
        return 1;
    }
    rc = 1;
    if (def->start(app, &err) == SW_OK) {
        sig = sw_daemon_wait();
        sw_log_info("%s received, stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
        rc = 0;
    } else if (err.msg[0]) {
        sw_log_error("%s", err.msg);
    }
    def->stop(app);
    sw_log_info("stopped");
    return rc;
}
