/* pool.c — rule-server streams kept open between setups (sn.h), so a setup does not pay a
 * messaging dial and a Noise handshake per visor (~2 ms each on loopback).
 *
 * A stream is in the pool only while no setup uses it: a setup takes it, runs its exchanges
 * and gives it back when it is still in step (every request answered). At most
 * SN_POOL_PER_VISOR idle streams per visor and SN_POOL_MAX in all; an idle stream is closed
 * after SN_POOL_IDLE_MS, well before the visor drops it (VISOR_ROUTER_SETUP_IDLE_MS). A
 * stream the visor closed anyway (restart) reads EOF: rpc.c checks that before using a pooled
 * stream, and retries on a fresh dial only a request the visor cannot have run (rpc.c,
 * sn_rpc). */
#include "setup-node/sn.h"
#include "common/clock.h"

#include <string.h>
#include <unistd.h>

/* Under mu: closes streams idle too long. */
static void sweep(struct sn_pool *p, int64_t now)
{
    size_t j = 0;
    for (size_t i = 0; i < p->n; i++) {
        if (now - p->idle[i].since_ms >= SN_POOL_IDLE_MS)
            close(p->idle[i].fd);
        else
            p->idle[j++] = p->idle[i];
    }
    p->n = j;
}

void sn_pool_init(struct sn_pool *p)
{
    memset(p, 0, sizeof(*p));
    pthread_mutex_init(&p->mu, NULL);
}

bool sn_pool_take(struct sn_pool *p, const struct sw_pk *pk, int *fd, uint64_t *next_id)
{
    bool found = false;

    pthread_mutex_lock(&p->mu);
    sweep(p, sw_mono_ms());
    for (size_t i = p->n; i-- > 0;) { /* the most recently used first */
        if (!sw_pk_equal(&p->idle[i].pk, pk))
            continue;
        *fd = p->idle[i].fd;
        *next_id = p->idle[i].next_id;
        p->idle[i] = p->idle[--p->n];
        found = true;
        break;
    }
    pthread_mutex_unlock(&p->mu);
    return found;
}

void sn_pool_put(struct sn_pool *p, const struct sw_pk *pk, int fd, uint64_t next_id)
{
    size_t same = 0;
    int64_t now = sw_mono_ms();

    pthread_mutex_lock(&p->mu);
    sweep(p, now);
    for (size_t i = 0; i < p->n; i++)
        same += sw_pk_equal(&p->idle[i].pk, pk);
    if (p->closed || same >= SN_POOL_PER_VISOR || p->n == SN_POOL_MAX) {
        pthread_mutex_unlock(&p->mu);
        close(fd);
        return;
    }
    p->idle[p->n++] = (struct sn_idle_stream){ .pk = *pk, .fd = fd, .next_id = next_id, .since_ms = now };
    pthread_mutex_unlock(&p->mu);
}

void sn_pool_close_all(struct sn_pool *p)
{
    pthread_mutex_lock(&p->mu);
    for (size_t i = 0; i < p->n; i++)
        close(p->idle[i].fd);
    p->n = 0;
    p->closed = true;
    pthread_mutex_unlock(&p->mu);
}
