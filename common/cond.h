/* cond.h — condition variables whose timed waits run on the monotonic clock (the clock of
 * common/clock.h), so a change of the wall clock neither cuts a wait short nor stretches it.
 * Every timed wait in the tree uses this: sw_cond_init on the condition and sw_cond_deadline
 * (or sw_timespec_add_ms) for pthread_cond_timedwait. */
#ifndef SW_COND_H
#define SW_COND_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

/* pthread_cond_init with CLOCK_MONOTONIC for timed waits. 0 or the pthread error. */
int sw_cond_init(pthread_cond_t *cond);
/* The monotonic time ms (>= 0) from now, as pthread_cond_timedwait wants it. */
void sw_cond_deadline(int64_t ms, struct timespec *out);
/* Moves ts ms (>= 0) later, keeping tv_nsec below one second. */
void sw_timespec_add_ms(struct timespec *ts, int64_t ms);

#endif
