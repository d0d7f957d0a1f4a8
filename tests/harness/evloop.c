#include "tests/harness/evloop.h"

#include <stddef.h>

static void tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

bool th_loop_until2(struct event_base *b1, struct event_base *b2, bool (*done)(void *), void *arg,
                    int ms)
{
    int64_t end = sw_deadline_ms(ms);
    struct timeval tv = { 0, 2000 };
    struct event *t1 = event_new(b1, -1, EV_PERSIST, tick, NULL), *t2 = NULL;
    bool ok;

    event_add(t1, &tv);
    if (b2) {
        t2 = event_new(b2, -1, EV_PERSIST, tick, NULL);
        event_add(t2, &tv);
    }
    while (!(ok = done(arg)) && sw_mono_ms() < end) {
        event_base_loop(b1, EVLOOP_ONCE);
        if (b2)
            event_base_loop(b2, EVLOOP_NONBLOCK);
    }
    event_free(t1);
    if (t2)
        event_free(t2);
    return ok;
}

bool th_loop_until(struct event_base *b, bool (*done)(void *), void *arg, int ms)
{
    return th_loop_until2(b, NULL, done, arg, ms);
}

static bool never(void *arg)
{
    (void)arg;
    return false;
}

void th_loop_for(struct event_base *b, int ms)
{
    th_loop_until(b, never, NULL, ms);
}
