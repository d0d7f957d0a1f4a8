/* hop_queue.c — per-route queues at a middle hop (hop_queue.h). */
#include "visor/hop_queue.h"
#include "common/bytes.h"
#include "common/log.h"

#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>

struct visor_hop_queue {
    struct visor_router *ro;
    struct visor_rule *rule;     /* NULL once the rule is gone (then it drains and frees) */
    struct sw_uuid tp;
    struct evbuffer *pkts;       /* u16 length || packet, each already rewritten */
    size_t bytes;                /* packet bytes queued (lengths not counted) */
    struct visor_tp_waiter w;    /* first member: the waiter's callback finds the queue */
    LIST_ENTRY(visor_hop_queue) all;
};

static void queue_free(struct visor_hop_queue *q)
{
    visor_tp_unwait(&q->w);
    q->ro->hopq_bytes -= q->bytes;
    if (q->rule)
        q->rule->queue = NULL;
    LIST_REMOVE(q, all);
    evbuffer_free(q->pkts);
    free(q);
}

/* Drops the oldest packet, counted in *counter; false when empty. */
static bool drop_oldest(struct visor_hop_queue *q, _Atomic uint64_t *counter)
{
    uint8_t hdr[2];
    size_t n;

    if (evbuffer_copyout(q->pkts, hdr, 2) != 2)
        return false;
    n = sw_get_u16(hdr);
    evbuffer_drain(q->pkts, 2 + n);
    q->bytes -= n;
    q->ro->hopq_bytes -= n;
    (*counter)++;
    return true;
}

/* Sends up to a quantum; waits again when more is left. Frees an emptied orphan. */
static void drain(struct visor_hop_queue *q)
{
    struct visor_router *ro = q->ro;
    size_t sent = 0;
    uint8_t hdr[2];

    while (sent < VISOR_HOP_QUEUE_QUANTUM && evbuffer_copyout(q->pkts, hdr, 2) == 2) {
        size_t n = sw_get_u16(hdr);
        uint8_t *p = evbuffer_pullup(q->pkts, (ssize_t)(2 + n));
        enum visor_send rc = p ? visor_tp_send(ro->v, &q->tp, p[2], p + 3, n - 1, 0) : VISOR_SEND_FULL;
        if (rc == VISOR_SEND_FULL)
            break;
        if (rc == VISOR_SEND_DOWN) { /* the tick or the next forward cleans up */
            while (drop_oldest(q, &ro->m_dropped_down))
                ;
            break;
        }
        evbuffer_drain(q->pkts, 2 + n);
        q->bytes -= n;
        ro->hopq_bytes -= n;
        ro->m_forwarded++;
        sent += n;
    }
    if (q->bytes)
        visor_tp_wait(ro->v, &q->tp, &q->w);
    else if (!q->rule)
        queue_free(q);
}

static void writable_cb(struct visor_tp_waiter *w)
{
    drain((struct visor_hop_queue *)((char *)w - offsetof(struct visor_hop_queue, w)));
}

static struct visor_hop_queue *queue_of(struct visor_router *ro, struct visor_rule *r)
{
    struct visor_hop_queue *q = r->queue;

    if (q)
        return q;
    if (!(q = calloc(1, sizeof(*q))) || !(q->pkts = evbuffer_new())) {
        free(q);
        return NULL;
    }
    q->ro = ro;
    q->rule = r;
    q->tp = r->next_tp;
    q->w.writable = writable_cb;
    LIST_INSERT_HEAD(&ro->hop_queues, q, all);
    r->queue = q;
    return q;
}

static void enqueue(struct visor_router *ro, struct visor_rule *r, const uint8_t *pkt, size_t len)
{
    struct visor_hop_queue *q = queue_of(ro, r);
    uint8_t hdr[2];

    if (!q) {
        ro->m_dropped_full++;
        return;
    }
    /* the oldest go first: a stream route resends them, a datagram route wants the newest */
    while (q->bytes && (q->bytes + len > VISOR_HOP_QUEUE_MAX || ro->hopq_bytes + len > VISOR_HOP_QUEUE_TOTAL))
        drop_oldest(q, &ro->m_dropped_full);
    if (ro->hopq_bytes + len > VISOR_HOP_QUEUE_TOTAL) {
        ro->m_dropped_full++;
        return;
    }
    sw_put_u16(hdr, (uint16_t)len);
    if (evbuffer_add(q->pkts, hdr, 2) || evbuffer_add(q->pkts, pkt, len)) {
        ro->m_dropped_full++;
        return;
    }
    q->bytes += len;
    ro->hopq_bytes += len;
    if (ro->hopq_bytes > ro->m_hopq_peak)
        ro->m_hopq_peak = ro->hopq_bytes;
    visor_tp_wait(ro->v, &q->tp, &q->w);
}

void visor_hopq_forward(struct visor_router *ro, struct visor_rule *r, const uint8_t *pkt, size_t len)
{
    if (r->queue && r->queue->bytes) { /* behind what waits already: order is kept */
        enqueue(ro, r, pkt, len);
        return;
    }
    switch (visor_tp_send(ro->v, &r->next_tp, pkt[0], pkt + 1, len - 1, 0)) {
    case VISOR_SEND_OK:
        ro->m_forwarded++;
        break;
    case VISOR_SEND_FULL:
        enqueue(ro, r, pkt, len);
        break;
    case VISOR_SEND_DOWN:
        ro->m_dropped_down++;
        break;
    }
}

void visor_hopq_rule_gone(void *arg, struct visor_rule *r)
{
    struct visor_hop_queue *q = r->queue;

    (void)arg;
    if (!q)
        return;
    q->rule = NULL;
    r->queue = NULL;
    if (!q->bytes)
        queue_free(q);
}

void visor_hopq_tick(struct visor_router *ro)
{
    struct visor_hop_queue *q, *nx;

    for (q = LIST_FIRST(&ro->hop_queues); q; q = nx) {
        nx = LIST_NEXT(q, all);
        if (q->bytes && !visor_tp_is_up(ro->v, &q->tp)) {
            while (drop_oldest(q, &ro->m_dropped_down))
                ;
        }
        if (!q->bytes && !q->rule)
            queue_free(q);
    }
}

void visor_hopq_free_all(struct visor_router *ro)
{
    while (!LIST_EMPTY(&ro->hop_queues))
        queue_free(LIST_FIRST(&ro->hop_queues));
}
