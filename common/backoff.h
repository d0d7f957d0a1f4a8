/* backoff.h — the one retry delay of the tree: exponential backoff with optional jitter.
 *
 * The first delay is base_ms, each next one doubles up to max_ms; sw_backoff_reset starts
 * over after a success. With jitter every delay is drawn uniformly from [3/4, 5/4] of the
 * current step (libsodium's randombytes), so many clients that lost the same server do not
 * come back in lockstep; without it the delays are exact (retries nobody else competes with,
 * and tests that count them). Users: visor transport redial, visor hypervisor link,
 * messaging client reconnect (jitter); visor discovery jobs, service migrations, route-finder
 * graph sync (none).
 * Threads: a struct sw_backoff belongs to one thread (or its owner's lock); no globals. */
#ifndef SW_BACKOFF_H
#define SW_BACKOFF_H

#include <stdbool.h>
#include <stdint.h>

struct sw_backoff {
    uint32_t base_ms; /* first delay */
    uint32_t max_ms;  /* ceiling of the step */
    bool jitter;      /* +-25 % on each delay */
    uint32_t step_ms; /* the next delay before jitter; 0: not started (base_ms) */
};

/* A backoff that has not retried yet. */
#define SW_BACKOFF_INIT(base, max, jit) { .base_ms = (base), .max_ms = (max), .jitter = (jit), .step_ms = 0 }

void sw_backoff_init(struct sw_backoff *b, uint32_t base_ms, uint32_t max_ms, bool jitter);
/* The delay before the next attempt (ms); advances the step. */
uint32_t sw_backoff_next(struct sw_backoff *b);
/* Back to base_ms, after a success. */
void sw_backoff_reset(struct sw_backoff *b);
/* The jittered delay for step_ms and a uniform 32-bit rnd: in [step*3/4, step*5/4)
 * (at most UINT32_MAX). Pure, for tests; sw_backoff_next calls it with a random rnd. */
uint32_t sw_backoff_jitter(uint32_t step_ms, uint32_t rnd);

#endif
