/* group_failover.c — a route group end whose route broke (docs/routing.md §7), loop thread.
 *
 * An open end considers its route broken when its first hop's transport is not up, when
 * nothing arrived for VISOR_GROUP_DEAD_S, or (streams) when bytes in flight got no
 * acknowledgement for VISOR_GROUP_STALL_MS. The initiator has a thread (visor_appsrv_reroute)
 * set up a new route with "rebind": true; the responder waits for that rebind (group_ready
 * with the same address pair). Both move onto the new route keeping their session; a stream
 * then resends everything not acknowledged, so nothing in flight on the dead path is lost.
 * After VISOR_GROUP_REROUTE_S without success the group is closed with an error. */
#include "visor/group.h"
#include "common/log.h"

#include <stdlib.h>
#include <string.h>

/* Initiator: hands the re-establishment to a thread (appsrv.c); retried from the timer. */
static void start_reroute(struct visor_group *g)
{
    struct visor_group_reroute r = { .serial = g->serial, .dst = g->remote, .dst_port = g->remote_port,
                                     .src_port = g->local_port };

    if (g->tp_down)
        sw_uuid_format(&g->failed_tp, r.failed_tp);
    r.old_paths = g->paths ? strdup(g->paths) : NULL;
    if (visor_appsrv_reroute(g->v, &r) == SW_OK)
        g->job = true;
    else
        g->retry_at_ms = sw_deadline_ms(VISOR_GROUP_RETRY_MS);
}

void visor_group_move(struct visor_group *g, const struct sw_uuid *avoid)
{
    if (g->state != G_OPEN || !g->initiator || g->job)
        return;
    sw_log_info("route group %u: moving to a new route before its transport goes away", g->recv_rid);
    g->moving = true;
    g->tp_down = true; /* the re-establishment avoids it */
    g->failed_tp = *avoid;
    g->broken_ms = sw_mono_ms();
    start_reroute(g);
    if (!g->job)
        g->moving = false; /* no thread: the failover handles it when the transport goes */
}

int visor_group_transport_leaving(struct visor *v, const struct sw_uuid *tp)
{
    struct visor_group *g;
    int n = 0;

    LIST_FOREACH(g, &v->router->groups, next) {
        if (g->state == G_CLOSING || !sw_uuid_equal(&g->send_tp, tp))
            continue;
        n++;
        if (g->state != G_OPEN)
            continue;
        if (g->initiator)
            visor_group_move(g, tp);
        else if (g->mode == VISOR_ROUTE_STREAM)
            visor_gstream_ask_move(g, tp);
    }
    return n;
}

int visor_group_count_on(struct visor *v, const struct sw_uuid *tp)
{
    struct visor_group *g;
    int n = 0;

    LIST_FOREACH(g, &v->router->groups, next)
        n += g->state != G_CLOSING && sw_uuid_equal(&g->send_tp, tp);
    return n;
}

void visor_group_route_broken(struct visor_group *g, const char *why, bool tp_down)
{
    if (g->state != G_OPEN)
        return;
    g->moving = false; /* a running move's answer is taken as the re-establishment's */
    sw_log_warn("route group %u: the route broke (%s): %s", g->recv_rid, why,
                g->initiator ? "re-establishing it" : "waiting for the initiator to re-establish it");
    g->state = g->initiator ? G_REROUTE : G_WAIT;
    g->broken_ms = sw_mono_ms();
    g->reroute_deadline_ms = g->broken_ms + VISOR_GROUP_REROUTE_S * 1000;
    g->tp_down = tp_down;
    g->failed_tp = g->send_tp;
    visor_tp_unwait(&g->tpw);
    if (g->bev)
        bufferevent_disable(g->bev, EV_READ); /* app bytes wait in its socket meanwhile */
    event_del(g->timer);
    visor_group_arm_timer(g);
    if (g->initiator)
        start_reroute(g);
}

void visor_group_failover_tick(struct visor_group *g, int64_t now)
{
    if (now >= g->reroute_deadline_ms) {
        visor_group_end(g, true, VISOR_RPKT_CLOSE_ERROR, "the route broke and was not re-established in time");
        return;
    }
    if (g->state == G_REROUTE && !g->job && now >= g->retry_at_ms)
        start_reroute(g);
    visor_group_arm_timer(g);
}

void visor_group_rebound(struct visor_group *g, const struct sw_uuid *tp, uint32_t send_rid, uint32_t recv_rid)
{
    uint32_t old_recv = g->recv_rid;

    if (visor_tp_is_up(g->v, &g->send_tp)) /* retire the old route where it still stands */
        visor_group_send(g, VISOR_RPKT_CLOSE, (const uint8_t[]){ VISOR_RPKT_CLOSE_NORMAL }, 1, VISOR_SEND_CONTROL);
    visor_tp_unwait(&g->tpw);
    g->moving = false;
    g->job = false;
    g->send_tp = *tp;
    g->send_rid = send_rid;
    g->recv_rid = recv_rid;
    g->last_rx_ms = g->last_tx_ms = sw_mono_ms();
    g->v->router->m_group_reroutes++;
    sw_log_info("route group %u: re-established as group %u (%s) %lld ms after the failure", old_recv, recv_rid,
                g->initiator ? "initiator" : "responder", (long long)sw_ms_since(g->broken_ms));
    visor_group_resume(g);
}

void visor_group_resume(struct visor_group *g)
{
    g->state = G_OPEN;
    event_del(g->timer);
    visor_group_arm_timer(g);
    if (g->mode == VISOR_ROUTE_STREAM)
        visor_gstream_resume(g);
    else
        visor_gdgram_flush(g);
}
