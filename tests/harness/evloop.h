/* evloop.h — driving libevent loops from a test's own thread: run a base (or two, round
 * robin) until a condition holds or a time limit passes. */
#ifndef SW_TEST_EVLOOP_H
#define SW_TEST_EVLOOP_H

#include <event2/event.h>
#include <stdbool.h>
#include <stdint.h>

#include "tests/harness/harness.h" /* th_sleep_ms, common/clock.h */

/* Runs b1 (and b2 when non-NULL, round robin) until done(arg) is true or ms pass; returns
 * done's last value. A 2 ms timer keeps the loops turning while nothing else happens. */
bool th_loop_until2(struct event_base *b1, struct event_base *b2, bool (*done)(void *), void *arg,
                    int ms);
bool th_loop_until(struct event_base *b, bool (*done)(void *), void *arg, int ms);
/* Runs b for ms milliseconds. */
void th_loop_for(struct event_base *b, int ms);

#endif
