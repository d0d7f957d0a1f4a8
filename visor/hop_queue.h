/* hop_queue.h — a middle hop's queue for one forward rule whose next transport is full
 * (docs/routing.md §2 "Forwarding"). Loop thread only.
 *
 * A packet for a full transport waits here instead of being dropped; the transport serves
 * the queues waiting on it in turn (visor_tp_wait), so one busy route never stalls the
 * others. The ends' flow control keeps a stream route's packets in flight below
 * VISOR_HOP_QUEUE_MAX, so a stream route never overflows it; above it (a datagram route, a
 * misbehaving sender) or above VISOR_HOP_QUEUE_TOTAL for the whole visor the oldest
 * packets are dropped and counted. A queue outlives its rule until it has sent what it
 * holds (a CLOSE travelling behind data must not overtake it). */
#ifndef VISOR_HOP_QUEUE_H
#define VISOR_HOP_QUEUE_H

#include "visor/router.h"

#define VISOR_HOP_QUEUE_MAX (VISOR_GROUP_WINDOW + (512u << 10)) /* bytes per route */
#define VISOR_HOP_QUEUE_TOTAL (64u << 20)                      /* bytes per visor */
#define VISOR_HOP_QUEUE_QUANTUM (64u << 10)                    /* bytes sent per turn */

/* Forwards pkt (type || rid || body, rid already rewritten) along forward rule r: sent at
 * once, queued behind earlier packets, or dropped (transport down, or the caps). */
void visor_hopq_forward(struct visor_router *ro, struct visor_rule *r, const uint8_t *pkt, size_t len);
/* rules' on_free: the rule's queue drains on by itself, or goes now when empty. */
void visor_hopq_rule_gone(void *ro, struct visor_rule *r);
/* 1 s tick: queues whose transport is down are dropped. */
void visor_hopq_tick(struct visor_router *ro);
void visor_hopq_free_all(struct visor_router *ro);

#endif
