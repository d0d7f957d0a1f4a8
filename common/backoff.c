/* backoff.c — see backoff.h. */
#include "common/backoff.h"

#include <sodium.h>

void sw_backoff_init(struct sw_backoff *b, uint32_t base_ms, uint32_t max_ms, bool jitter)
{
    *b = (struct sw_backoff)SW_BACKOFF_INIT(base_ms, max_ms, jitter);
}

void sw_backoff_reset(struct sw_backoff *b)
{
    b->step_ms = 0;
}

uint32_t sw_backoff_jitter(uint32_t step_ms, uint32_t rnd)
{
    /* step * (3/4 + 1/2 * rnd / 2^32), in integers */
    uint64_t low = (uint64_t)step_ms * 3 / 4, span = (uint64_t)step_ms / 2;
    uint64_t d = low + ((span * rnd) >> 32);
    return d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
}

uint32_t sw_backoff_next(struct sw_backoff *b)
{
    uint32_t step = b->step_ms ? b->step_ms : b->base_ms;

    if (step > b->max_ms)
        step = b->max_ms;
    b->step_ms = step > b->max_ms / 2 ? b->max_ms : step * 2;
    return b->jitter ? sw_backoff_jitter(step, randombytes_random()) : step;
}
