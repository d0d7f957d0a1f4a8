/* msg_flow.c — pure logic of the messaging client: stream credit and
 * the bounded receive buffer. No I/O, no globals; unit tested in
 * tests/unit/test_msg_client_stream.c. */
#include "common/msg_client_internal.h"

#include <stdlib.h>
#include <string.h>

void mc_credit_init(struct mc_credit *cr, uint32_t window)
{
    cr->window = window;
    cr->avail = window;
    cr->consumed = 0;
}

int mc_credit_receive(struct mc_credit *cr, size_t n)
{
    if (n > cr->avail)
        return SW_ERANGE;
    cr->avail -= n;
    return SW_OK;
}

uint32_t mc_credit_consume(struct mc_credit *cr, size_t n)
{
    uint64_t inc;
    cr->consumed += n;
    if (cr->consumed == 0 || cr->consumed < (cr->window + 1) / 2)
        return 0;
    inc = cr->consumed > UINT32_MAX ? UINT32_MAX : cr->consumed;
    cr->consumed -= inc;
    cr->avail += inc;
    return (uint32_t)inc;
}

size_t mc_send_chunk(uint64_t credit, size_t max)
{
    uint64_t n;
    if (credit <= MC_REC_OVERHEAD)
        return 0;
    n = credit - MC_REC_OVERHEAD;
    if (n > MC_MAX_CHUNK)
        n = MC_MAX_CHUNK;
    if (n > max)
        n = max;
    return (size_t)n;
}

void mc_ring_init(struct mc_ring *r, size_t cap)
{
    memset(r, 0, sizeof(*r));
    r->cap = cap;
}

int mc_ring_push(struct mc_ring *r, const void *data, size_t n)
{
    const uint8_t *p = data;
    size_t tail, first;
    if (n > r->cap - r->len)
        return SW_ERANGE;
    if (n == 0)
        return SW_OK;
    if (!r->buf && !(r->buf = malloc(r->cap)))
        return SW_ENOMEM;
    tail = (r->head + r->len) % r->cap;
    first = r->cap - tail < n ? r->cap - tail : n;
    memcpy(r->buf + tail, p, first);
    memcpy(r->buf, p + first, n - first);
    r->len += n;
    return SW_OK;
}

const uint8_t *mc_ring_peek(const struct mc_ring *r, size_t *n)
{
    size_t run = r->cap - r->head;
    *n = r->len < run ? r->len : run;
    return r->len ? r->buf + r->head : NULL;
}

void mc_ring_drop(struct mc_ring *r, size_t n)
{
    if (n > r->len)
        n = r->len;
    r->len -= n;
    r->head = r->len ? (r->head + n) % r->cap : 0;
}

void mc_ring_free(struct mc_ring *r)
{
    free(r->buf);
    r->buf = NULL;
    r->head = r->len = 0;
}
