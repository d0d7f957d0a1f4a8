#include "common/daemon.h"
#include "common/err.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>

static sigset_t stop_set;

int sw_daemon_init(void)
{
    sigemptyset(&stop_set);
    sigaddset(&stop_set, SIGTERM);
    sigaddset(&stop_set, SIGINT);
    sigaddset(&stop_set, SIGHUP);
    signal(SIGPIPE, SIG_IGN);
    return pthread_sigmask(SIG_BLOCK, &stop_set, NULL) == 0 ? SW_OK : SW_EIO;
}

int sw_daemon_wait(void)
{
    int sig = 0;
    for (;;) {
        if (sigwait(&stop_set, &sig) != 0)
            continue;
        if (sig == SIGTERM || sig == SIGINT)
            return sig;
        /* SIGHUP: nothing to reload yet; keep running */
    }
}

bool sw_daemon_sleep(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    int sig;
    for (;;) {
        sig = sigtimedwait(&stop_set, NULL, &ts);
        if (sig == SIGTERM || sig == SIGINT)
            return true;
        if (sig < 0 && errno == EAGAIN)
            return false;
        /* EINTR or SIGHUP: the remaining time is not tracked; a short oversleep is harmless */
    }
}
