/* router_proto.h — parsing the requests a setup node sends to the visor's rule server
 * (messaging port 3, docs/routing.md §3): reserve, add_rules, del_rules (group_ready's
 * fields are parsed by group.c).
 *
 * Pure: no visor state, no libevent, so unit tests and fuzz targets link this file (with
 * rules.c for struct visor_rule) alone. Checks against the rule table and the transports
 * (reserved by this setup node, rule already there, transport known) stay in
 * router_setup.c. */
#ifndef VISOR_ROUTER_PROTO_H
#define VISOR_ROUTER_PROTO_H

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "visor/rules.h"

#define VISOR_RPROTO_RESERVE_MAX 8 /* IDs per reserve */
#define VISOR_RPROTO_RULES_MAX 64  /* rules per add_rules */
#define VISOR_RPROTO_DEL_MAX 1024  /* IDs per del_rules */

enum visor_rproto_type {
    VISOR_RPROTO_RESERVE = 1, VISOR_RPROTO_ADD_RULES, VISOR_RPROTO_DEL_RULES, VISOR_RPROTO_GROUP_READY
};

struct visor_rproto_req {
    enum visor_rproto_type type;
    uint64_t id;
    uint32_t n;                          /* reserve: 1..VISOR_RPROTO_RESERVE_MAX */
    size_t n_rules;                      /* add_rules: 1..VISOR_RPROTO_RULES_MAX, distinct rids */
    struct visor_rule rules[VISOR_RPROTO_RULES_MAX]; /* rid, type and the type's fields;
                                                      * group = rid */
    size_t n_rids;                       /* del_rules: 0..VISOR_RPROTO_DEL_MAX */
    uint32_t rids[VISOR_RPROTO_DEL_MAX]; /* each nonzero (repeats allowed) */
};

/* Parses one request object. SW_OK with *out filled (for group_ready only type and id);
 * otherwise an error code and *code the protocol's error code: "invalid_request" (bad
 * "id" — then out->id is 0 —, missing "type", bad fields) or "unknown_type"; err says which
 * field. out->id is set (to the request's id) as soon as "id" is valid, so a failure can
 * echo it. */
int visor_rproto_parse(struct json_object *req, struct visor_rproto_req *out, const char **code,
                       struct sw_error *err);

#endif
