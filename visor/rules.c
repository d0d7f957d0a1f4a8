/* rules.c — the route ID table and the routing packet codec (rules.h). */
#include "visor/rules.h"
#include "common/bytes.h"
#include "common/err.h"

#include <stdlib.h>
#include <string.h>

const char *visor_rule_type_name(enum visor_rule_type t)
{
    switch (t) {
    case VISOR_RULE_FORWARD: return "forward";
    case VISOR_RULE_CONSUME: return "consume";
    default: return "reserved";
    }
}

static size_t bucket(uint32_t rid)
{
    return (size_t)((rid * 2654435761u) >> 20) % VISOR_RULE_BUCKETS;
}

void visor_rules_init(struct visor_rule_table *rt)
{
    memset(rt, 0, sizeof(*rt));
    rt->keepalive_s = VISOR_RULE_KEEPALIVE_S;
}

/* Every rule leaves through here, so whoever attached state to it (on_free) hears of it. */
static void rule_free(struct visor_rule_table *rt, struct visor_rule *r)
{
    if (rt->on_free)
        rt->on_free(rt->on_free_arg, r);
    free(r);
}

void visor_rules_free(struct visor_rule_table *rt)
{
    for (size_t i = 0; i < VISOR_RULE_BUCKETS; i++) {
        struct visor_rule *r = rt->buckets[i], *nx;
        for (; r; r = nx) {
            nx = r->next;
            rule_free(rt, r);
        }
        rt->buckets[i] = NULL;
    }
    rt->n = 0;
}

struct visor_rule *visor_rules_get(struct visor_rule_table *rt, uint32_t rid)
{
    struct visor_rule *r;
    if (rid == 0)
        return NULL;
    for (r = rt->buckets[bucket(rid)]; r; r = r->next)
        if (r->rid == rid)
            return r;
    return NULL;
}

int visor_rules_reserve(struct visor_rule_table *rt, const struct sw_pk *owner, int64_t now, uint32_t *rid)
{
    struct visor_rule *r;
    uint32_t id;

    if (rt->n >= VISOR_MAX_RULES)
        return SW_ERANGE;
    /* the table is far from covering the ID space, so this ends quickly */
    do {
        id = ++rt->last_rid;
        if (id == 0)
            id = rt->last_rid = 1;
    } while (visor_rules_get(rt, id));
    if (!(r = calloc(1, sizeof(*r))))
        return SW_ENOMEM;
    r->rid = id;
    r->type = VISOR_RULE_RESERVED;
    r->owner = *owner;
    r->created_at = now;
    r->expires_at = now + VISOR_RULE_RESERVE_S;
    r->next = rt->buckets[bucket(id)];
    rt->buckets[bucket(id)] = r;
    rt->n++;
    *rid = id;
    return SW_OK;
}

int visor_rules_install(struct visor_rule_table *rt, const struct visor_rule *in,
                        const struct sw_pk *owner, int64_t now)
{
    struct visor_rule *r = visor_rules_get(rt, in->rid);

    if (in->type != VISOR_RULE_FORWARD && in->type != VISOR_RULE_CONSUME)
        return SW_EINVAL;
    if (in->type == VISOR_RULE_FORWARD && in->next_rid == 0)
        return SW_EINVAL;
    if (!r)
        return SW_ENOTFOUND;
    if (!sw_pk_equal(&r->owner, owner))
        return SW_EPERM;
    if (r->type != VISOR_RULE_RESERVED)
        return SW_EEXIST;
    r->type = in->type;
    r->next_tp = in->next_tp;
    r->next_rid = in->next_rid;
    r->local_port = in->local_port;
    r->remote_port = in->remote_port;
    r->remote_pk = in->remote_pk;
    r->group = in->group;
    r->expires_at = now + rt->keepalive_s;
    return SW_OK;
}

int visor_rules_del(struct visor_rule_table *rt, uint32_t rid)
{
    struct visor_rule **pp;
    if (rid == 0)
        return SW_ENOTFOUND;
    for (pp = &rt->buckets[bucket(rid)]; *pp; pp = &(*pp)->next) {
        if ((*pp)->rid == rid) {
            struct visor_rule *r = *pp;
            *pp = r->next;
            rule_free(rt, r);
            rt->n--;
            return SW_OK;
        }
    }
    return SW_ENOTFOUND;
}

void visor_rules_touch(struct visor_rule_table *rt, struct visor_rule *r, size_t bytes, int64_t now)
{
    r->packets++;
    r->bytes += bytes;
    if (r->type != VISOR_RULE_RESERVED && r->expires_at < now + rt->keepalive_s)
        r->expires_at = now + rt->keepalive_s;
}

size_t visor_rules_expire(struct visor_rule_table *rt, int64_t now,
                          void (*cb)(void *arg, const struct visor_rule *r), void *arg)
{
    size_t removed = 0;
    for (size_t i = 0; i < VISOR_RULE_BUCKETS; i++) {
        struct visor_rule **pp = &rt->buckets[i];
        while (*pp) {
            struct visor_rule *r = *pp;
            if (r->expires_at <= now) {
                if (cb)
                    cb(arg, r);
                *pp = r->next;
                rule_free(rt, r);
                rt->n--;
                removed++;
            } else {
                pp = &r->next;
            }
        }
    }
    return removed;
}

void visor_rules_foreach(struct visor_rule_table *rt,
                         void (*cb)(void *arg, const struct visor_rule *r), void *arg)
{
    for (size_t i = 0; i < VISOR_RULE_BUCKETS; i++)
        for (struct visor_rule *r = rt->buckets[i]; r; r = r->next)
            cb(arg, r);
}

/* ---- packets ------------------------------------------------------------------------------ */

bool visor_rpkt_is_routing(uint8_t type)
{
    return type == VISOR_RPKT_DATA || type == VISOR_RPKT_CLOSE || type == VISOR_RPKT_KEEPALIVE;
}

int visor_rpkt_parse(const uint8_t *pkt, size_t len, struct visor_rpkt *out)
{
    struct sw_reader r;
    struct visor_rpkt p = { 0 };
    uint16_t n = 0;

    sw_reader_init(&r, pkt, len);
    sw_read_u8(&r, &p.type);
    sw_read_u32(&r, &p.rid);
    if (!sw_reader_ok(&r) || p.rid == 0 || !visor_rpkt_is_routing(p.type))
        return SW_EPROTO;
    switch (p.type) {
    case VISOR_RPKT_DATA:
        if (sw_read_u16(&r, &n) || n == 0 || sw_read_view(&r, &p.data, n))
            return SW_EPROTO;
        p.data_len = n;
        break;
    case VISOR_RPKT_CLOSE:
        if (sw_read_u8(&r, &p.code) || p.code > VISOR_RPKT_CLOSE_ERROR)
            return SW_EPROTO;
        break;
    default:
        break;
    }
    if (!sw_reader_done(&r))
        return SW_EPROTO;
    *out = p;
    return SW_OK;
}

size_t visor_rpkt_build(uint8_t *out, size_t cap, uint8_t type, uint32_t rid, const void *data,
                        size_t data_len, uint8_t code)
{
    struct sw_writer w;

    sw_writer_init(&w, out, cap);
    sw_write_u8(&w, type);
    sw_write_u32(&w, rid);
    if (type == VISOR_RPKT_DATA) {
        if (data_len == 0 || data_len > 0xffff)
            return 0;
        sw_write_u16(&w, (uint16_t)data_len);
        sw_write_bytes(&w, data, data_len);
    } else if (type == VISOR_RPKT_CLOSE) {
        sw_write_u8(&w, code);
    }
    return sw_writer_ok(&w) ? w.len : 0;
}
