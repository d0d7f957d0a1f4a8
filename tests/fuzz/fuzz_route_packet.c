/* fuzz_route_packet.c — the router's pure parts (visor/rules.c): the routing packet codec
 * and the route ID table. The first byte picks a mode:
 *   0  one routing packet: visor_rpkt_parse on an exact-size heap copy of the rest. A parsed
 *      packet obeys docs/routing.md §2 (type 0x10-0x12, route ID nonzero, DATA u16 length
 *      nonzero and exactly the rest, CLOSE one byte 0/1, KEEPALIVE empty), points inside
 *      the input and re-encodes to it byte for byte (visor_rpkt_build), and does not fit one byte
 *      less; a failure leaves the output untouched and matches an independent check;
 *   1  a program of table operations (reserve, install, delete, touch, expire, get, wrap
 *      the allocation cursor) driven by the input, run against rules.c and a shadow model
 *      (a small array of the live IDs): after every step the two agree on every ID, the
 *      count, types, owners and expiry, and reserved IDs are never 0 nor reused while live.
 * Nothing may crash, leak or read out of bounds; a disagreement traps. */
#include "common/bytes.h"
#include "common/err.h"
#include "common/keys.h"
#include "visor/rules.h"
#include "tests/fuzz/fuzz.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- mode 0 ------------------------------------------------------------------------------ */

/* The contract, written independently of rules.c: 1 when p[0..n) is a valid packet. */
static bool valid_packet(const uint8_t *p, size_t n)
{
    uint32_t rid;
    if (n < VISOR_RPKT_HDR_LEN)
        return false;
    rid = sw_get_u32(p + 1);
    if (rid == 0)
        return false;
    switch (p[0]) {
    case VISOR_RPKT_DATA: {
        size_t len;
        if (n < VISOR_RPKT_HDR_LEN + 2)
            return false;
        len = sw_get_u16(p + 5);
        return len != 0 && n == VISOR_RPKT_HDR_LEN + 2 + len;
    }
    case VISOR_RPKT_CLOSE:
        return n == VISOR_RPKT_HDR_LEN + 1 && p[5] <= VISOR_RPKT_CLOSE_ERROR;
    case VISOR_RPKT_KEEPALIVE:
        return n == VISOR_RPKT_HDR_LEN;
    default:
        return false;
    }
}

static void one_packet(const uint8_t *data, size_t size)
{
    uint8_t *buf = calloc(size ? size : 1, 1), *again;
    struct visor_rpkt p, before;
    int rc;

    CHECK(buf != NULL);
    if (size)
        memcpy(buf, data, size);
    memset(&p, 0xa5, sizeof(p));
    before = p;
    rc = visor_rpkt_parse(buf, size, &p);
    CHECK(rc == SW_OK || rc == SW_EPROTO);
    CHECK((rc == SW_OK) == valid_packet(buf, size));
    if (rc != SW_OK) {
        CHECK(memcmp(&p, &before, sizeof(p)) == 0);
        free(buf);
        return;
    }
    CHECK(visor_rpkt_is_routing(p.type) && p.type == buf[0] && p.rid != 0);
    if (p.type == VISOR_RPKT_DATA) {
        CHECK(p.data == buf + VISOR_RPKT_HDR_LEN + 2 && p.data_len == size - VISOR_RPKT_HDR_LEN - 2);
    } else {
        CHECK(p.data == NULL && p.data_len == 0);
        CHECK(p.type == VISOR_RPKT_CLOSE ? p.code == buf[5] : p.code == 0);
    }
    again = malloc(size);
    CHECK(again != NULL);
    CHECK(visor_rpkt_build(again, size, p.type, p.rid, p.data, p.data_len, p.code) == size);
    CHECK(memcmp(again, buf, size) == 0);
    CHECK(visor_rpkt_build(again, size - 1, p.type, p.rid, p.data, p.data_len, p.code) == 0);
    free(again);
    free(buf);
}

/* ---- mode 1 ------------------------------------------------------------------------------ */

#define MAX_LIVE 512
#define N_OWNERS 4

struct shadow {
    uint32_t rid;
    enum visor_rule_type type;
    int owner;
    int64_t expires_at;
    uint32_t next_rid;
    uint16_t local_port;
};

struct prog {
    const uint8_t *p;
    size_t n, off;
};

static uint8_t next_u8(struct prog *pg)
{
    return pg->off < pg->n ? pg->p[pg->off++] : 0;
}

static uint32_t next_u32(struct prog *pg)
{
    uint32_t x = 0;
    for (int i = 0; i < 4; i++)
        x = x << 8 | next_u8(pg);
    return x;
}

static struct sw_pk owners[N_OWNERS];
static struct shadow live[MAX_LIVE];
static size_t n_live;

static int find_live(uint32_t rid)
{
    for (size_t i = 0; i < n_live; i++)
        if (live[i].rid == rid)
            return (int)i;
    return -1;
}

static void drop_live(size_t i)
{
    live[i] = live[--n_live];
}

/* An ID to act on: mostly a live one (so operations succeed), sometimes an arbitrary one. */
static uint32_t pick_rid(struct prog *pg)
{
    uint8_t b = next_u8(pg);
    if (n_live && b < 200)
        return live[b % n_live].rid;
    return b == 255 ? 0 : next_u32(pg);
}

static size_t expire_seen;
static void count_expired(void *arg, const struct visor_rule *r)
{
    int64_t now = *(const int64_t *)arg;
    CHECK(r->expires_at <= now);
    expire_seen++;
}

static size_t foreach_seen;
static void check_entry(void *arg, const struct visor_rule *r)
{
    int i = find_live(r->rid);
    CHECK(i >= 0);
    CHECK(r->type == live[i].type && r->expires_at == live[i].expires_at);
    CHECK(sw_pk_equal(&r->owner, &owners[live[i].owner]));
    foreach_seen++;
}

/* full: also walk the whole table (4096 buckets: every 64th step and at the end) */
static void verify(struct visor_rule_table *rt, bool full)
{
    CHECK(rt->n == n_live);
    if (full) {
        foreach_seen = 0;
        visor_rules_foreach(rt, check_entry, NULL);
        CHECK(foreach_seen == n_live);
    }
    for (size_t i = 0; i < n_live; i++) {
        struct visor_rule *r = visor_rules_get(rt, live[i].rid);
        CHECK(r != NULL && r->rid == live[i].rid);
        if (r->type == VISOR_RULE_FORWARD)
            CHECK(r->next_rid == live[i].next_rid);
        if (r->type == VISOR_RULE_CONSUME)
            CHECK(r->local_port == live[i].local_port);
    }
}

static void table_program(const uint8_t *data, size_t size)
{
    static struct visor_rule_table rt;
    struct prog pg = { data, size, 0 };
    int64_t now = 1000;

    visor_rules_init(&rt);
    if (next_u8(&pg) & 1)
        rt.keepalive_s = 1 + next_u8(&pg);
    n_live = 0;
    for (int i = 0; i < N_OWNERS; i++)
        memset(owners[i].b, i + 1, sizeof(owners[i].b));

    for (int steps = 0; pg.off < pg.n && steps < 4096; steps++) {
        uint8_t op = next_u8(&pg) % 8;
        switch (op) {
        case 0: { /* reserve */
            int o = next_u8(&pg) % N_OWNERS;
            uint32_t rid = 0;
            if (n_live >= MAX_LIVE)
                break;
            CHECK(visor_rules_reserve(&rt, &owners[o], now, &rid) == SW_OK);
            CHECK(rid != 0 && find_live(rid) < 0);
            live[n_live++] = (struct shadow){ .rid = rid, .type = VISOR_RULE_RESERVED, .owner = o,
                                              .expires_at = now + VISOR_RULE_RESERVE_S };
            break;
        }
        case 1: { /* install */
            struct visor_rule r = { 0 };
            int o = next_u8(&pg) % N_OWNERS, i, want, rc;
            uint8_t kind = next_u8(&pg);
            r.rid = pick_rid(&pg);
            r.type = (enum visor_rule_type)(kind % 4);
            r.next_rid = (kind & 0x10) ? 0 : next_u32(&pg);
            r.local_port = (uint16_t)next_u32(&pg);
            memset(r.next_tp.b, kind, sizeof(r.next_tp.b));
            i = find_live(r.rid);
            if (r.type != VISOR_RULE_FORWARD && r.type != VISOR_RULE_CONSUME)
                want = SW_EINVAL;
            else if (r.type == VISOR_RULE_FORWARD && r.next_rid == 0)
                want = SW_EINVAL;
            else if (i < 0)
                want = SW_ENOTFOUND;
            else if (live[i].owner != o)
                want = SW_EPERM;
            else if (live[i].type != VISOR_RULE_RESERVED)
                want = SW_EEXIST;
            else
                want = SW_OK;
            rc = visor_rules_install(&rt, &r, &owners[o], now);
            CHECK(rc == want);
            if (rc == SW_OK) {
                live[i].type = r.type;
                live[i].expires_at = now + rt.keepalive_s;
                live[i].next_rid = r.next_rid;
                live[i].local_port = r.local_port;
            }
            break;
        }
        case 2: { /* delete */
            uint32_t rid = pick_rid(&pg);
            int i = find_live(rid);
            CHECK(visor_rules_del(&rt, rid) == (i >= 0 ? SW_OK : SW_ENOTFOUND));
            if (i >= 0)
                drop_live((size_t)i);
            break;
        }
        case 3: { /* touch */
            uint32_t rid = pick_rid(&pg);
            struct visor_rule *r = visor_rules_get(&rt, rid);
            int i = find_live(rid);
            CHECK((r != NULL) == (i >= 0));
            if (r) {
                uint64_t pk = r->packets;
                visor_rules_touch(&rt, r, next_u8(&pg), now);
                CHECK(r->packets == pk + 1);
                if (live[i].type != VISOR_RULE_RESERVED && live[i].expires_at < now + rt.keepalive_s)
                    live[i].expires_at = now + rt.keepalive_s;
            }
            break;
        }
        case 4: { /* time passes, then expire */
            size_t want = 0, got;
            now += next_u8(&pg);
            for (size_t i = 0; i < n_live; i++)
                if (live[i].expires_at <= now)
                    want++;
            expire_seen = 0;
            got = visor_rules_expire(&rt, now, (next_u8(&pg) & 1) ? count_expired : NULL, &now);
            CHECK(got == want && (expire_seen == 0 || expire_seen == want));
            for (size_t i = 0; i < n_live;)
                if (live[i].expires_at <= now)
                    drop_live(i);
                else
                    i++;
            break;
        }
        case 5: /* lookups of arbitrary IDs */
            for (int k = 0; k < 4; k++) {
                uint32_t rid = next_u32(&pg);
                CHECK((visor_rules_get(&rt, rid) != NULL) == (rid != 0 && find_live(rid) >= 0));
            }
            break;
        case 6: /* move the allocation cursor (wrap-around, skipping live IDs) */
            rt.last_rid = next_u32(&pg);
            break;
        default:
            CHECK(visor_rule_type_name((enum visor_rule_type)next_u8(&pg)) != NULL);
            break;
        }
        verify(&rt, steps % 64 == 63);
    }
    verify(&rt, true);
    visor_rules_free(&rt);
    CHECK(rt.n == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    if (data[0] & 1)
        table_program(data + 1, size - 1);
    else
        one_packet(data + 1, size - 1);
    return 0;
}
