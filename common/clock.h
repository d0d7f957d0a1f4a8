/* clock.h — the one clock of the tree (models: OpenBSD bgpd's monotime.h, Redis's monotonic.h).
 *
 * Two kinds of time, kept apart by name:
 * - monotonic (sw_mono_*, sw_deadline_ms, sw_ms_left, sw_ms_since): every timeout, deadline,
 *   interval, idle check and latency. It never jumps when someone sets the wall clock; its zero
 *   is arbitrary (boot), so a value means something only against another monotonic value and
 *   never leaves the process.
 * - Unix time (sw_unix_ms): only for dates that leave the process — wire fields, database rows,
 *   log lines, "up since". Divide by 1000 for Unix seconds.
 * Both are int64_t milliseconds (ns for latency measurements), so arithmetic and atomics stay
 * plain; a variable holding one says which in its name or comment, and the two are never
 * compared or subtracted. Timed waits on a condition variable use common/cond.h (same clock).
 * Stateless and thread-safe. */
#ifndef SW_CLOCK_H
#define SW_CLOCK_H

#include <stdint.h>

/* Monotonic time in milliseconds. */
int64_t sw_mono_ms(void);
/* Monotonic time in nanoseconds (the same clock): latency measurements. */
int64_t sw_mono_ns(void);
/* The monotonic instant ms from now: a deadline for sw_ms_left or a comparison with sw_mono_ms. */
int64_t sw_deadline_ms(int64_t ms);
/* Milliseconds until the monotonic deadline, 0 once it has passed, at most INT32_MAX:
 * fits poll()'s timeout. */
int sw_ms_left(int64_t deadline);
/* Milliseconds since the monotonic instant since_ms (negative if that is in the future). */
int64_t sw_ms_since(int64_t since_ms);

/* Wall clock: Unix time in milliseconds. Only for dates that leave the process. */
int64_t sw_unix_ms(void);

#endif
