/* rules.h — the routing rule table and the routing packet codec (docs/routing.md §1-2).
 *
 * Pure data structures: no libevent, no visor state, so unit tests and fuzz targets link
 * rules.c alone. The table is owned by one thread (the visor's loop); nothing is
 * thread-safe. Times are unix seconds passed in by the caller.
 *
 * A route ID (u32, nonzero) is first *reserved* by a setup node (expires after
 * VISOR_RULE_RESERVE_S unless a rule uses it), then filled with a forward or consume rule that
 * expires VISOR_RULE_KEEPALIVE_S after it was last used (visor_rules_touch). */
#ifndef VISOR_RULES_H
#define VISOR_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/keys.h"
#include "common/uuid.h"

#define VISOR_RULE_KEEPALIVE_S 120 /* a rule lives this long after its last packet */
#define VISOR_RULE_RESERVE_S 30    /* a reserved, unused ID lives this long */
#define VISOR_MAX_RULES 65536      /* reserved + installed IDs per visor */
#define VISOR_RULE_BUCKETS 4096

enum visor_rule_type { VISOR_RULE_RESERVED = 0, VISOR_RULE_FORWARD = 1, VISOR_RULE_CONSUME = 2 };

struct visor_hop_queue;
struct visor_rule {
    uint32_t rid;
    enum visor_rule_type type;
    int64_t created_at, expires_at;
    struct sw_pk owner;          /* the setup node that reserved the ID */
    /* forward */
    struct sw_uuid next_tp;
    uint32_t next_rid;
    /* consume */
    uint16_t local_port, remote_port;
    struct sw_pk remote_pk;
    uint32_t group;
    /* counters */
    uint64_t packets, bytes;
    struct visor_hop_queue *queue;     /* forward: packets waiting for room on next_tp (router) */
    struct visor_rule *next;           /* hash chain */
};

struct visor_rule_table {
    struct visor_rule *buckets[VISOR_RULE_BUCKETS];
    size_t n;
    uint32_t last_rid;           /* allocation cursor */
    int keepalive_s;             /* VISOR_RULE_KEEPALIVE_S unless a test sets it */
    /* called with every rule just before it is freed (deleted, expired, table freed) */
    void (*on_free)(void *arg, struct visor_rule *r);
    void *on_free_arg;
};

const char *visor_rule_type_name(enum visor_rule_type t);

void visor_rules_init(struct visor_rule_table *rt);
void visor_rules_free(struct visor_rule_table *rt);
/* Allocates a fresh nonzero ID reserved by owner, expiring at now + VISOR_RULE_RESERVE_S.
 * SW_ERANGE when the table is full. */
int visor_rules_reserve(struct visor_rule_table *rt, const struct sw_pk *owner, int64_t now,
                        uint32_t *rid);
/* Borrowed; NULL when the ID is unknown. */
struct visor_rule *visor_rules_get(struct visor_rule_table *rt, uint32_t rid);
/* Installs r (type forward or consume) on its reserved ID r->rid. SW_ENOTFOUND when the ID is
 * not reserved, SW_EPERM when owner did not reserve it, SW_EEXIST when a rule is installed
 * there already, SW_EINVAL for a bad rule. The rule expires at now + keepalive. */
int visor_rules_install(struct visor_rule_table *rt, const struct visor_rule *r,
                        const struct sw_pk *owner, int64_t now);
/* Removes the ID (reserved or installed). SW_ENOTFOUND when unknown. */
int visor_rules_del(struct visor_rule_table *rt, uint32_t rid);
/* A packet used r: count it and push its expiry. */
void visor_rules_touch(struct visor_rule_table *rt, struct visor_rule *r, size_t bytes,
                       int64_t now);
/* Removes every ID with expires_at <= now; calls cb (may be NULL) before freeing each.
 * Returns how many were removed. */
size_t visor_rules_expire(struct visor_rule_table *rt, int64_t now,
                          void (*cb)(void *arg, const struct visor_rule *r), void *arg);
/* Calls cb for every entry (any order); cb must not change the table. */
void visor_rules_foreach(struct visor_rule_table *rt,
                         void (*cb)(void *arg, const struct visor_rule *r), void *arg);

/* ---- routing packets: type (u8) || route id (u32 BE) || body ----------------------------- */
enum visor_rpkt_type {
    VISOR_RPKT_DATA = 0x10, VISOR_RPKT_CLOSE = 0x11, VISOR_RPKT_KEEPALIVE = 0x12
};
#define VISOR_RPKT_HDR_LEN 5
#define VISOR_RPKT_CLOSE_NORMAL 0
#define VISOR_RPKT_CLOSE_ERROR 1

struct visor_rpkt {
    uint8_t type;
    uint32_t rid;
    const uint8_t *data;   /* DATA: the Noise message (borrowed from the input) */
    size_t data_len;
    uint8_t code;          /* CLOSE */
};

/* True for the types this module parses (0x10-0x12). */
bool visor_rpkt_is_routing(uint8_t type);
/* Parses one whole routing packet. SW_EPROTO for an unknown type, a zero route ID, a body of
 * the wrong size (DATA: u16 length that must match the rest exactly, and nonzero; CLOSE:
 * one byte 0 or 1; KEEPALIVE: empty). Never reads outside [pkt, pkt+len). */
int visor_rpkt_parse(const uint8_t *pkt, size_t len, struct visor_rpkt *out);
/* Writes a packet into out (cap bytes); returns its length, or 0 when it does not fit. */
size_t visor_rpkt_build(uint8_t *out, size_t cap, uint8_t type, uint32_t rid, const void *data,
                        size_t data_len, uint8_t code);

#endif
