/* connpool.c — a bounded pool of per-connection threads (see connpool.h). */
#include "visor/connpool.h"
#include "visor/visor.h"

#include <poll.h>
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>

void visor_connpool_init(struct visor_connpool *p, struct visor_connpool_slot *slots, int cap)
{
    pthread_mutex_init(&p->mu, NULL);
    p->slots = slots;
    p->cap = cap;
    for (int i = 0; i < cap; i++)
        slots[i] = (struct visor_connpool_slot){ .pool = p, .fd = -1 };
}

void visor_connpool_destroy(struct visor_connpool *p)
{
    pthread_mutex_destroy(&p->mu);
}

static int find_free(const struct visor_connpool *p)
{
    for (int i = 0; i < p->cap; i++)
        if (!p->slots[i].used)
            return i;
    return -1;
}

int visor_connpool_acquire(struct visor_connpool *p, int wait_ms, const atomic_bool *stopping)
{
    int slot;

    for (int64_t until = sw_deadline_ms(wait_ms);;) {
        slot = find_free(p);
        if (slot >= 0 || (stopping && *stopping) || sw_ms_left(until) == 0)
            return slot;
        poll(NULL, 0, 20);
        visor_connpool_reap(p, false);
    }
}

static void *slot_main(void *arg)
{
    struct visor_connpool_slot *sl = arg;

    sl->fn(sl->arg);
    pthread_mutex_lock(&sl->pool->mu);
    sl->done = true;
    pthread_mutex_unlock(&sl->pool->mu);
    return NULL;
}

int visor_connpool_start(struct visor_connpool *p, int i, int fd, void (*fn)(void *arg), void *arg)
{
    struct visor_connpool_slot *sl = &p->slots[i];

    *sl = (struct visor_connpool_slot){ .pool = p, .fd = fd, .fn = fn, .arg = arg, .used = true };
    if (pthread_create(&sl->th, NULL, slot_main, sl)) {
        sl->used = false;
        sl->fd = -1;
        return -1;
    }
    return 0;
}

void visor_connpool_reap(struct visor_connpool *p, bool all)
{
    for (int i = 0; i < p->cap; i++) {
        struct visor_connpool_slot *sl = &p->slots[i];
        bool join;
        pthread_mutex_lock(&p->mu);
        join = sl->used && (sl->done || all);
        if (join && !sl->done)
            shutdown(sl->fd, SHUT_RDWR);
        pthread_mutex_unlock(&p->mu);
        if (!join)
            continue;
        pthread_join(sl->th, NULL);
        close(sl->fd);
        sl->used = sl->done = false;
        sl->fd = -1;
    }
}
