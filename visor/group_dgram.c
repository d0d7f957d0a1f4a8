/* group_dgram.c — a datagram route group end's data path (docs/routing.md §4), loop thread.
 *
 * Each message the app writes on its SOCK_SEQPACKET end is one record; nothing is resent or
 * reordered, so a lost record costs only itself and nothing waits behind it. While the first
 * hop's transport is full or the route is being re-established, datagrams wait in a queue of
 * VISOR_GROUP_DGRAM_QUEUE bytes that drops its oldest; a datagram for an app whose socket
 * buffer is full is dropped. Both are counted (visor_route_dgram_dropped_total). */
#include "visor/group.h"
#include "common/bytes.h"
#include "common/log.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define DGRAM_READS_PER_TURN 64 /* then other work gets the loop */

/* Sends one datagram (already at visor_group_inner()). */
static enum visor_send send_one(struct visor_group *g, size_t len)
{
    enum visor_send rc = visor_group_send_record(g, len, 0);

    if (rc == VISOR_SEND_FULL)
        visor_tp_wait(g->v, &g->send_tp, &g->tpw);
    return rc;
}

static void queue_drop_oldest(struct visor_group *g)
{
    uint8_t hdr[2];

    if (evbuffer_copyout(g->dgram_q, hdr, 2) != 2)
        return;
    evbuffer_drain(g->dgram_q, 2 + (size_t)sw_get_u16(hdr));
    g->dgram_q_bytes -= sw_get_u16(hdr);
    g->v->router->m_dgram_dropped++;
}

static void queue_add(struct visor_group *g, const uint8_t *p, size_t len)
{
    uint8_t hdr[2];

    while (g->dgram_q_bytes && g->dgram_q_bytes + len > VISOR_GROUP_DGRAM_QUEUE)
        queue_drop_oldest(g);
    sw_put_u16(hdr, (uint16_t)len);
    if (evbuffer_add(g->dgram_q, hdr, 2) || evbuffer_add(g->dgram_q, p, len)) {
        g->v->router->m_dgram_dropped++;
        return;
    }
    g->dgram_q_bytes += len;
}

void visor_gdgram_flush(struct visor_group *g)
{
    uint8_t hdr[2];
    struct evbuffer_ptr pos;

    while (g->state == G_OPEN && evbuffer_copyout(g->dgram_q, hdr, 2) == 2) {
        size_t n = sw_get_u16(hdr);
        if (evbuffer_ptr_set(g->dgram_q, &pos, 2, EVBUFFER_PTR_SET) ||
            evbuffer_copyout_from(g->dgram_q, &pos, visor_group_inner(), n) != (ssize_t)n)
            return;
        switch (send_one(g, n)) {
        case VISOR_SEND_FULL:
            return; /* stays at the head; the waiter calls again */
        case VISOR_SEND_DOWN:
            visor_group_route_broken(g, "the first hop's transport is down", true);
            return;
        case VISOR_SEND_OK:
            break;
        }
        evbuffer_drain(g->dgram_q, 2 + n);
        g->dgram_q_bytes -= n;
    }
}

static void app_readable(evutil_socket_t fd, short what, void *arg)
{
    struct visor_group *g = arg;
    uint8_t *buf = visor_group_inner();

    for (int i = 0; i < DGRAM_READS_PER_TURN; i++) {
        ssize_t n = recv(fd, buf, VISOR_GROUP_RECORD_MAX + 1, MSG_DONTWAIT | MSG_TRUNC);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (n <= 0) {
            visor_group_close_flush(g, n == 0 ? "the app closed the connection" : "the app's connection failed");
            return;
        }
        if (n > VISOR_GROUP_RECORD_MAX) {
            g->v->router->m_dgram_dropped++;
            continue;
        }
        if (g->state != G_OPEN || g->dgram_q_bytes) { /* behind what waits already */
            queue_add(g, buf, (size_t)n);
            continue;
        }
        switch (send_one(g, (size_t)n)) {
        case VISOR_SEND_OK:
            break;
        case VISOR_SEND_FULL:
            queue_add(g, buf, (size_t)n);
            break;
        case VISOR_SEND_DOWN:
            queue_add(g, buf, (size_t)n);
            visor_group_route_broken(g, "the first hop's transport is down", true);
            return;
        }
    }
}

void visor_gdgram_record(struct visor_group *g, const uint8_t *payload, size_t len)
{
    if (!len)
        return; /* nothing to deliver (an empty datagram says nothing on SOCK_SEQPACKET either) */
    if (send(g->dfd, payload, len, MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t)len)
        g->v->router->m_dgram_dropped++;
}

int visor_gdgram_init(struct visor_group *g, int sock, struct sw_error *err)
{
    int sndbuf = 1 << 20;

    g->dfd = sock;
    setsockopt(sock, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
    if (!(g->dgram_q = evbuffer_new()) ||
        !(g->dgram_ev = event_new(g->v->base, sock, EV_READ | EV_PERSIST, app_readable, g)))
        return sw_error_set(err, SW_ENOMEM, "out of memory");
    return SW_OK;
}

void visor_gdgram_open(struct visor_group *g)
{
    event_add(g->dgram_ev, NULL);
}

void visor_gdgram_free(struct visor_group *g)
{
    if (g->dgram_ev)
        event_free(g->dgram_ev);
    if (g->dgram_q)
        evbuffer_free(g->dgram_q);
    if (g->dfd >= 0)
        close(g->dfd);
    g->dgram_ev = NULL;
    g->dgram_q = NULL;
    g->dfd = -1;
}
