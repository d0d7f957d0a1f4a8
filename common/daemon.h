/* daemon.h — process life of a daemon: signals and an orderly stop.
 *
 * Call sw_daemon_init() first in main(), before any thread starts: it blocks SIGTERM,
 * SIGINT and SIGHUP in every thread (threads inherit the mask) and ignores SIGPIPE, so the
 * main thread alone receives stop requests through sw_daemon_wait()/sw_daemon_sleep(). */
#ifndef SW_DAEMON_H
#define SW_DAEMON_H

#include <stdbool.h>

int sw_daemon_init(void);
/* Blocks until SIGTERM or SIGINT; returns the signal number. */
int sw_daemon_wait(void);
/* Sleeps up to ms; true if a stop signal arrived meanwhile (the caller should stop). */
bool sw_daemon_sleep(long ms);

#endif
