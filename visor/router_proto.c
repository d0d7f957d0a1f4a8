/* router_proto.c — the rule server's request parser (router_proto.h). */
#include "visor/router_proto.h"
#include "common/json.h"
#include "common/uuid.h"

#include <stdio.h>
#include <string.h>

static int get_u32(struct json_object *o, const char *key, const char *where, bool nonzero,
                   uint32_t *out, struct sw_error *err)
{
    uint64_t x = 0;
    int rc = sw_json_get_u64(o, key, where, &x, err);
    if (rc)
        return rc;
    if (x > UINT32_MAX || (nonzero && x == 0))
        return sw_error_set(err, SW_EINVAL, "field '%s%s': must be %s..4294967295", where, key,
                            nonzero ? "1" : "0");
    *out = (uint32_t)x;
    return SW_OK;
}

static int get_port(struct json_object *o, const char *key, const char *where, uint16_t *out,
                    struct sw_error *err)
{
    uint32_t x = 0;
    int rc = get_u32(o, key, where, true, &x, err);
    if (rc)
        return rc;
    if (x > 65535)
        return sw_error_set(err, SW_EINVAL, "field '%s%s': must be a port 1..65535", where, key);
    *out = (uint16_t)x;
    return SW_OK;
}

/* rules[i] into r (its own fields only). */
static int parse_rule(struct json_object *jr, size_t i, struct visor_rule *r, struct sw_error *err)
{
    char where[32];
    const char *type = "", *tp = "";
    int rc;

    snprintf(where, sizeof(where), "rules[%zu].", i);
    memset(r, 0, sizeof(*r));
    if (!json_object_is_type(jr, json_type_object))
        return sw_error_set(err, SW_EINVAL, "field 'rules[%zu]': must be an object", i);
    if ((rc = get_u32(jr, "rid", where, true, &r->rid, err)) ||
        (rc = sw_json_get_string(jr, "type", where, 16, &type, err)))
        return rc;
    if (strcmp(type, "forward") == 0) {
        r->type = VISOR_RULE_FORWARD;
        if ((rc = sw_json_get_string(jr, "next_tp", where, SW_UUID_STR_LEN, &tp, err)) ||
            (rc = sw_uuid_parse(&r->next_tp, tp, "next_tp", err)) ||
            (rc = get_u32(jr, "next_rid", where, true, &r->next_rid, err)))
            return rc;
    } else if (strcmp(type, "consume") == 0) {
        r->type = VISOR_RULE_CONSUME;
        if ((rc = get_port(jr, "local_port", where, &r->local_port, err)) ||
            (rc = sw_json_get_pk(jr, "remote_pk", where, &r->remote_pk, err)) ||
            (rc = get_port(jr, "remote_port", where, &r->remote_port, err)))
            return rc;
        r->group = r->rid;
    } else {
        return sw_error_set(err, SW_EINVAL, "field '%stype': must be \"forward\" or \"consume\"", where);
    }
    return SW_OK;
}

static int parse_add_rules(struct json_object *req, struct visor_rproto_req *out, struct sw_error *err)
{
    struct json_object *arr;
    size_t n;
    int rc;

    if ((rc = sw_json_get_array(req, "rules", "", &arr, err)))
        return rc;
    n = json_object_array_length(arr);
    if (n == 0 || n > VISOR_RPROTO_RULES_MAX)
        return sw_error_set(err, SW_EINVAL, "field 'rules': must hold 1..%d rules", VISOR_RPROTO_RULES_MAX);
    for (size_t i = 0; i < n; i++) {
        if ((rc = parse_rule(json_object_array_get_idx(arr, i), i, &out->rules[i], err)))
            return rc;
        for (size_t j = 0; j < i; j++)
            if (out->rules[j].rid == out->rules[i].rid)
                return sw_error_set(err, SW_EINVAL, "the same route ID appears twice");
    }
    out->n_rules = n;
    return SW_OK;
}

static int parse_del_rules(struct json_object *req, struct visor_rproto_req *out, struct sw_error *err)
{
    struct json_object *arr;
    size_t n;
    int rc;

    if ((rc = sw_json_get_array(req, "rids", "", &arr, err)))
        return rc;
    n = json_object_array_length(arr);
    if (n > VISOR_RPROTO_DEL_MAX)
        return sw_error_set(err, SW_EINVAL, "field 'rids': at most %d IDs", VISOR_RPROTO_DEL_MAX);
    for (size_t i = 0; i < n; i++) {
        struct json_object *x = json_object_array_get_idx(arr, i);
        int64_t rid = json_object_get_int64(x);
        if (!json_object_is_type(x, json_type_int) || rid <= 0 || rid > UINT32_MAX)
            return sw_error_set(err, SW_EINVAL, "field 'rids': route IDs are 1..4294967295");
        out->rids[i] = (uint32_t)rid;
    }
    out->n_rids = n;
    return SW_OK;
}

int visor_rproto_parse(struct json_object *req, struct visor_rproto_req *out, const char **code,
                       struct sw_error *err)
{
    struct json_object *jid = json_object_object_get(req, "id");
    const char *type = json_object_get_string(json_object_object_get(req, "type"));
    int rc;

    out->id = 0;
    out->n = 0;
    out->n_rules = out->n_rids = 0;
    *code = "invalid_request";
    if (!jid || !json_object_is_type(jid, json_type_int))
        return sw_error_set(err, SW_EINVAL, "field 'id': must be an integer");
    out->id = json_object_get_uint64(jid);
    if (!type)
        return sw_error_set(err, SW_EINVAL, "field 'type': missing");
    if (strcmp(type, "reserve") == 0) {
        out->type = VISOR_RPROTO_RESERVE;
        if ((rc = get_u32(req, "n", "", true, &out->n, err)))
            return rc;
        if (out->n > VISOR_RPROTO_RESERVE_MAX)
            return sw_error_set(err, SW_EINVAL, "field 'n': must be 1..%d", VISOR_RPROTO_RESERVE_MAX);
        return SW_OK;
    }
    if (strcmp(type, "add_rules") == 0) {
        out->type = VISOR_RPROTO_ADD_RULES;
        return parse_add_rules(req, out, err);
    }
    if (strcmp(type, "del_rules") == 0) {
        out->type = VISOR_RPROTO_DEL_RULES;
        return parse_del_rules(req, out, err);
    }
    if (strcmp(type, "group_ready") == 0) {
        out->type = VISOR_RPROTO_GROUP_READY;
        return SW_OK;
    }
    *code = "unknown_type";
    return sw_error_set(err, SW_EINVAL, "unknown request type");
}
