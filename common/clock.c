/* clock.c — the one clock (clock.h): the only reader of the system clocks. */
#include "common/clock.h"

#include <time.h>

static int64_t read_ns(clockid_t id)
{
    struct timespec ts;

    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int64_t sw_mono_ns(void)
{
    return read_ns(CLOCK_MONOTONIC);
}

int64_t sw_mono_ms(void)
{
    return sw_mono_ns() / 1000000;
}

int64_t sw_deadline_ms(int64_t ms)
{
    return sw_mono_ms() + ms;
}

int sw_ms_left(int64_t deadline)
{
    int64_t left = deadline - sw_mono_ms();

    if (left <= 0)
        return 0;
    return left > INT32_MAX ? INT32_MAX : (int)left;
}

int64_t sw_ms_since(int64_t since_ms)
{
    return sw_mono_ms() - since_ms;
}

int64_t sw_unix_ms(void)
{
    return read_ns(CLOCK_REALTIME) / 1000000;
}
