#include "common/setup_proto.h"
#include "common/json.h"
#include "common/stream_io.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int sw_setup_frame_write(int fd, const char *json, size_t len, int timeout_ms)
{
    return sw_record_write(fd, json, len, SW_SETUP_MAX_FRAME, sw_io_within(timeout_ms, NULL));
}

int sw_setup_send(int fd, struct json_object *obj, int timeout_ms)
{
    return sw_json_record_send(fd, obj, SW_SETUP_MAX_FRAME, sw_io_within(timeout_ms, NULL));
}

int sw_setup_frame_read(int fd, int timeout_ms, char **out, size_t *len)
{
    size_t n;
    int rc = sw_record_read(fd, SW_SETUP_MAX_FRAME, sw_io_within(timeout_ms, NULL), -1, out, &n);

    if (rc == SW_OK)
        *len = n;
    return rc;
}

static int get_port(struct json_object *o, const char *where, uint16_t *out, struct sw_error *err)
{
    uint64_t v;
    int rc = sw_json_get_u64(o, "port", where, &v, err);
    if (rc)
        return rc;
    if (v > 65535)
        return sw_error_set(err, SW_EINVAL, "field '%s.port': must be 0 to 65535", where);
    *out = (uint16_t)v;
    return SW_OK;
}

static int parse_addr(struct json_object *root, const char *key, struct sw_setup_addr *a,
                      struct sw_error *err)
{
    struct json_object *o;
    int rc = sw_json_get_object(root, key, "", &o, err);
    if (rc || (rc = sw_json_get_pk(o, "pk", key, &a->pk, err)))
        return rc;
    return get_port(o, key, &a->port, err);
}

/* Any failure inside a path is SW_ERANGE ("invalid_path"). */
static int path_fail(int rc, struct sw_error *err)
{
    if (err)
        err->code = SW_ERANGE;
    return rc ? SW_ERANGE : SW_OK;
}

static int parse_hop(struct json_object *h, const char *where, struct sw_setup_hop *out,
                     struct sw_error *err)
{
    const char *tid;
    char what[64];
    int rc;
    if (!json_object_is_type(h, json_type_object))
        return sw_error_set(err, SW_ERANGE, "field '%s': not an object", where);
    if ((rc = sw_json_get_pk(h, "from", where, &out->from, err)) ||
        (rc = sw_json_get_pk(h, "to", where, &out->to, err)) ||
        (rc = sw_json_get_string(h, "t_id", where, SW_UUID_STR_LEN, &tid, err)))
        return path_fail(rc, err);
    snprintf(what, sizeof(what), "%s.t_id", where);
    return path_fail(sw_uuid_parse(&out->t_id, tid, what, err), err);
}

/* Checks that the path runs from `from` to `to` hop after hop without visiting a key twice. */
static int check_path(const char *name, const struct sw_setup_hop *hops, size_t n,
                      const struct sw_pk *from, const struct sw_pk *to, struct sw_error *err)
{
    if (!sw_pk_equal(&hops[0].from, from))
        return sw_error_set(err, SW_ERANGE, "field '%s[0].from': must be the route's start", name);
    if (!sw_pk_equal(&hops[n - 1].to, to))
        return sw_error_set(err, SW_ERANGE, "field '%s[%zu].to': must be the route's end", name, n - 1);
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && !sw_pk_equal(&hops[i].from, &hops[i - 1].to))
            return sw_error_set(err, SW_ERANGE, "field '%s[%zu].from': path is not contiguous", name, i);
        for (size_t j = 0; j <= i; j++)
            if (sw_pk_equal(&hops[i].to, &hops[j].from))
                return sw_error_set(err, SW_ERANGE, "field '%s[%zu].to': path visits a key twice",
                                    name, i);
    }
    return SW_OK;
}

static int parse_path(struct json_object *root, const char *name, struct sw_setup_hop *hops,
                      size_t *n_out, struct sw_error *err)
{
    struct json_object *arr;
    char where[48];
    size_t n;
    int rc = sw_json_get_array(root, name, "", &arr, err);
    if (rc)
        return rc;
    n = json_object_array_length(arr);
    if (n == 0 || n > SW_SETUP_MAX_HOPS)
        return sw_error_set(err, SW_ERANGE, "field '%s': a path has 1 to %d hops, not %zu", name,
                            SW_SETUP_MAX_HOPS, n);
    for (size_t i = 0; i < n; i++) {
        snprintf(where, sizeof(where), "%s[%zu]", name, i);
        if ((rc = parse_hop(json_object_array_get_idx(arr, i), where, &hops[i], err)))
            return rc;
    }
    *n_out = n;
    return SW_OK;
}

int sw_route_group_parse(struct json_object *root, struct sw_route_group_req *out,
                         struct sw_error *err)
{
    struct sw_route_group_req *r;
    const char *type;
    int rc;
    if (!root || !json_object_is_type(root, json_type_object))
        return sw_error_set(err, SW_EINVAL, "request is not a JSON object");
    if ((rc = sw_json_get_string(root, "type", "", 32, &type, err)))
        return rc;
    if (strcmp(type, "route_group") != 0)
        return sw_error_set(err, SW_EINVAL, "field 'type': expected \"route_group\"");
    if (!(r = calloc(1, sizeof(*r))))
        return sw_error_set(err, SW_ENOMEM, "out of memory");
    if ((rc = sw_json_get_u64(root, "id", "", &r->id, err)) || (rc = parse_addr(root, "src", &r->src, err)) ||
        (rc = parse_addr(root, "dst", &r->dst, err)))
        goto out;
    if (sw_pk_equal(&r->src.pk, &r->dst.pk)) {
        rc = sw_error_set(err, SW_ERANGE, "field 'dst.pk': must differ from src.pk");
        goto out;
    }
    if ((rc = parse_path(root, "forward", r->fwd, &r->n_fwd, err)) ||
        (rc = parse_path(root, "reverse", r->rev, &r->n_rev, err)) ||
        (rc = check_path("forward", r->fwd, r->n_fwd, &r->src.pk, &r->dst.pk, err)) ||
        (rc = check_path("reverse", r->rev, r->n_rev, &r->dst.pk, &r->src.pk, err)))
        goto out;
    if (json_object_object_get(root, "rebind") &&
        (rc = sw_json_get_bool(root, "rebind", "", &r->rebind, err)))
        goto out;
    *out = *r;
out:
    free(r);
    return rc;
}

struct json_object *sw_setup_ok(uint64_t id)
{
    struct json_object *o = json_object_new_object();
    if (!o)
        return NULL;
    json_object_object_add(o, "id", json_object_new_uint64(id));
    json_object_object_add(o, "ok", json_object_new_boolean(1));
    return o;
}

struct json_object *sw_setup_error(uint64_t id, const char *code, const char *msg)
{
    struct json_object *o = json_object_new_object(), *e = json_object_new_object();
    if (!o || !e) {
        json_object_put(o);
        json_object_put(e);
        return NULL;
    }
    json_object_object_add(e, "code", json_object_new_string(code));
    json_object_object_add(e, "message", json_object_new_string(msg));
    json_object_object_add(o, "id", json_object_new_uint64(id));
    json_object_object_add(o, "ok", json_object_new_boolean(0));
    json_object_object_add(o, "error", e);
    return o;
}
