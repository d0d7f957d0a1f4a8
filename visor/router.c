/* router.c — routing packets on transports and the rule table's life (docs/routing.md §1-2).
 *
 * Everything here runs on the loop. A routing packet is parsed (rules.c), its route ID
 * looked up: forward rules rewrite the ID and hand it to the route's hop queue
 * (hop_queue.c: sent at once, or queued while the next transport is full; forwarding never
 * blocks the other routes); consume rules belong to a local route group end; unknown IDs are
 * dropped and counted. CLOSE is forwarded like DATA, then the rule it used is deleted, so a
 * CLOSE travelling a route removes it hop by hop. */
#include "visor/router.h"
#include "visor/hop_queue.h"
#include "visor/transport.h"
#include "common/buf.h"
#include "common/bytes.h"
#include "common/json.h"
#include "common/log.h"
#include "common/metrics.h"

#include <json-c/json.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void expired_one(void *arg, const struct visor_rule *r)
{
    sw_log_debug("route %u (%s) expired", r->rid, visor_rule_type_name(r->type));
    if (r->type == VISOR_RULE_CONSUME)
        visor_group_rule_gone(arg, r->rid, "its route expired");
}

static void expire_cb(evutil_socket_t fd, short what, void *arg)
{
    struct visor_router *ro = arg;
    size_t n = visor_rules_expire(&ro->rt, sw_unix_ms() / 1000, expired_one, ro->v);
    ro->m_expired += n;
    visor_hopq_tick(ro);
    ro->m_hopq_bytes = ro->hopq_bytes;
    ro->m_rules = ro->rt.n;
}

int visor_router_start(struct visor *v, struct sw_error *err)
{
    struct timeval one = { 1, 0 };
    struct visor_router *ro = calloc(1, sizeof(*ro));
    const char *fault;

    if (!ro)
        return sw_error_set(err, SW_ENOMEM, "out of memory");
    ro->v = v;
    visor_rules_init(&ro->rt);
    ro->rt.on_free = visor_hopq_rule_gone;
    ro->rt.on_free_arg = ro;
    LIST_INIT(&ro->hop_queues);
    if ((fault = getenv("SKYWIRE_VISOR_FAULT_DROP_PCT")) && *fault) {
        double pct = strtod(fault, NULL);
        ro->fault_drop_ppm = pct > 0 && pct <= 100 ? (uint32_t)(pct * 10000) : 0;
        sw_log_warn("fault injection: dropping %.2f%% of forwarded DATA packets (SKYWIRE_VISOR_FAULT_DROP_PCT)",
                    ro->fault_drop_ppm / 10000.0);
    }
    LIST_INIT(&ro->groups);
    LIST_INIT(&ro->listeners);
    if (!(ro->expire_ev = event_new(v->base, -1, EV_PERSIST, expire_cb, ro)) ||
        event_add(ro->expire_ev, &one)) {
        if (ro->expire_ev)
            event_free(ro->expire_ev);
        free(ro);
        return sw_error_set(err, SW_ENOMEM, "cannot create the route expiry timer");
    }
    v->router = ro;
    return SW_OK;
}

void visor_router_stop(struct visor *v)
{
    struct visor_router *ro = v->router;
    if (!ro)
        return;
    visor_group_free_all(v);
    event_free(ro->expire_ev);
    visor_rules_free(&ro->rt);
    visor_hopq_free_all(ro);
    free(ro);
    v->router = NULL;
}

/* Fault injection for tests (SKYWIRE_VISOR_FAULT_DROP_PCT): drop this forwarded DATA? */
static bool fault_drop(struct visor_router *ro, uint8_t type)
{
    if (!ro->fault_drop_ppm || type != VISOR_RPKT_DATA || randombytes_uniform(1000000) >= ro->fault_drop_ppm)
        return false;
    ro->m_fault_dropped++;
    return true;
}

void visor_router_packet(struct visor *v, struct visor_transport *t, const uint8_t *pkt, size_t len)
{
    struct visor_router *ro = v->router;
    struct visor_rpkt p;
    struct visor_rule *r;

    if (!ro)
        return;
    if (visor_rpkt_parse(pkt, len, &p)) {
        ro->m_malformed++;
        sw_log_debug("route: dropping a malformed routing packet (type 0x%02x, %zu bytes)", pkt[0], len);
        return;
    }
    if (!(r = visor_rules_get(&ro->rt, p.rid)) || r->type == VISOR_RULE_RESERVED) {
        ro->m_unknown++;
        return;
    }
    visor_rules_touch(&ro->rt, r, len, sw_unix_ms() / 1000);
    if (r->type == VISOR_RULE_FORWARD) {
        if (!fault_drop(ro, p.type)) {
            memcpy(ro->buf, pkt, len);
            sw_put_u32(ro->buf + 1, r->next_rid);
            visor_hopq_forward(ro, r, ro->buf, len);
        }
    } else {
        ro->m_consumed++;
        visor_group_packet(v, r, &p); /* may end the group; the rule stays ours to delete */
    }
    if (p.type == VISOR_RPKT_CLOSE) {
        sw_log_debug("route %u: CLOSE (code %u): rule removed", p.rid, p.code);
        visor_rules_del(&ro->rt, p.rid);
    }
    ro->m_rules = ro->rt.n;
    ro->m_groups = ro->n_groups;
}

/* ---- views ------------------------------------------------------------------------------ */

struct json_object *visor_router_rule_json(const struct visor_rule *r)
{
    struct json_object *o = json_object_new_object();
    char id[SW_UUID_STR_LEN + 1];

    json_object_object_add(o, "rid", json_object_new_int64(r->rid));
    json_object_object_add(o, "type", json_object_new_string(visor_rule_type_name(r->type)));
    if (r->type == VISOR_RULE_FORWARD) {
        sw_uuid_format(&r->next_tp, id);
        json_object_object_add(o, "next_tp", json_object_new_string(id));
        json_object_object_add(o, "next_rid", json_object_new_int64(r->next_rid));
    } else if (r->type == VISOR_RULE_CONSUME) {
        json_object_object_add(o, "local_port", json_object_new_int(r->local_port));
        json_object_object_add(o, "remote_pk", sw_json_pk(&r->remote_pk));
        json_object_object_add(o, "remote_port", json_object_new_int(r->remote_port));
        json_object_object_add(o, "group", json_object_new_int64(r->group));
    }
    json_object_object_add(o, "setup_node", sw_json_pk(&r->owner));
    json_object_object_add(o, "created_at", json_object_new_int64(r->created_at));
    json_object_object_add(o, "expires_at", json_object_new_int64(r->expires_at));
    json_object_object_add(o, "packets", json_object_new_uint64(r->packets));
    json_object_object_add(o, "bytes", json_object_new_uint64(r->bytes));
    return o;
}

static void add_json(void *arg, const struct visor_rule *r)
{
    json_object_array_add(arg, visor_router_rule_json(r));
}

static int cmp_rid(const void *a, const void *b)
{
    int64_t x = json_object_get_int64(json_object_object_get(*(struct json_object *const *)a, "rid"));
    int64_t y = json_object_get_int64(json_object_object_get(*(struct json_object *const *)b, "rid"));
    return (x > y) - (x < y);
}

void visor_router_cmd_list(struct visor *v, struct visor_cmd *c)
{
    struct json_object *arr = json_object_new_array();
    visor_rules_foreach(&v->router->rt, add_json, arr);
    json_object_array_sort(arr, cmp_rid);
    visor_cmd_reply(&v->q, c, 200, arr);
}

void visor_router_cmd_get(struct visor *v, struct visor_cmd *c)
{
    struct visor_rule *r = c->n <= UINT32_MAX ? visor_rules_get(&v->router->rt, (uint32_t)c->n) : NULL;
    if (!r)
        visor_cmd_reply_error(&v->q, c, 404, "not_found", "no route %llu", (unsigned long long)c->n);
    else
        visor_cmd_reply(&v->q, c, 200, visor_router_rule_json(r));
}

void visor_router_cmd_delete(struct visor *v, struct visor_cmd *c)
{
    struct json_object *o;
    if (c->n <= UINT32_MAX)
        visor_group_rule_gone(v, (uint32_t)c->n, "the operator removed its route");
    if (c->n > UINT32_MAX || visor_rules_del(&v->router->rt, (uint32_t)c->n)) {
        visor_cmd_reply_error(&v->q, c, 404, "not_found", "no route %llu", (unsigned long long)c->n);
        return;
    }
    v->router->m_rules = v->router->rt.n;
    sw_log_info("route %llu removed by the operator", (unsigned long long)c->n);
    o = json_object_new_object();
    json_object_object_add(o, "removed", json_object_new_int64((int64_t)c->n));
    visor_cmd_reply(&v->q, c, 200, o);
}

void visor_router_write_metrics(struct visor *v, struct sw_buf *out)
{
    struct visor_router *ro = v->router;
#define COUNTER(field) offsetof(struct visor_router, field)
    static const struct { const char *name, *help; size_t off; } m[] = {
        { "visor_route_forwarded_total", "Routing packets forwarded", COUNTER(m_forwarded) },
        { "visor_route_consumed_total", "Routing packets for local route groups", COUNTER(m_consumed) },
        { "visor_route_unknown_total", "Routing packets with an unknown route ID (dropped)", COUNTER(m_unknown) },
        { "visor_route_malformed_total", "Malformed routing packets (dropped)", COUNTER(m_malformed) },
        { "visor_route_dropped_full_total", "Packets dropped at a hop: the route's or the visor's queue cap (datagram routes; stream routes stay below it)", COUNTER(m_dropped_full) },
        { "visor_route_fault_dropped_total", "Packets dropped on purpose (SKYWIRE_VISOR_FAULT_DROP_PCT)", COUNTER(m_fault_dropped) },
        { "visor_route_rtx_bytes_total", "Stream bytes sent again (after a loss or a failover)", COUNTER(m_rtx_bytes) },
        { "visor_route_dgram_dropped_total", "Datagrams dropped at an end (queue full, app not reading, too long)", COUNTER(m_dgram_dropped) },
        { "visor_route_bad_records_total", "End-to-end records dropped: replayed, forged, damaged or malformed", COUNTER(m_bad_records) },
        { "visor_route_dropped_down_total", "Packets dropped: next transport not up", COUNTER(m_dropped_down) },
        { "visor_route_expired_total", "Route IDs expired", COUNTER(m_expired) },
        { "visor_route_groups_opened_total", "Route group ends established (end-to-end handshake done)", COUNTER(m_groups_opened) },
        { "visor_route_group_failures_total", "Dials that failed after the route was set up", COUNTER(m_group_failures) },
        { "visor_route_group_reroutes_total", "Route groups moved onto a new path after a failure", COUNTER(m_group_reroutes) },
        { "visor_route_setup_refused_total", "Setup streams refused (key not in routing.setup_nodes)", COUNTER(m_refused_setup) },
    };
#undef COUNTER

    if (!ro)
        return;
    for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++) {
        const _Atomic uint64_t *p = (const _Atomic uint64_t *)((const char *)ro + m[i].off);
        sw_metrics_write_header(out, m[i].name, "counter", m[i].help);
        sw_metrics_write_sample(out, m[i].name, NULL, (double)*p);
    }
    sw_metrics_write_header(out, "visor_route_groups", "gauge", "Route group ends on this visor");
    sw_metrics_write_sample(out, "visor_route_groups", NULL, (double)ro->m_groups);
    sw_metrics_write_header(out, "visor_route_queued_bytes", "gauge", "Bytes waiting in hop queues for full transports");
    sw_metrics_write_sample(out, "visor_route_queued_bytes", NULL, (double)ro->m_hopq_bytes);
    sw_metrics_write_header(out, "visor_route_queued_bytes_peak", "gauge", "Most bytes ever waiting in hop queues at once");
    sw_metrics_write_sample(out, "visor_route_queued_bytes_peak", NULL, (double)ro->m_hopq_peak);
    sw_metrics_write_header(out, "visor_route_rules", "gauge", "Route IDs in the rule table");
    sw_metrics_write_sample(out, "visor_route_rules", NULL, (double)ro->m_rules);
}
