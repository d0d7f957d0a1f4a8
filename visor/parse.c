/* parse.c — transports.json and the local API's request bodies (see parse.h). */
#include "visor/parse.h"
#include "common/hostport.h"
#include "common/json.h"

#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

/* visor_tp_kind_parse lives in transport.c, which this file must not need (fuzz targets link
 * parse.c alone); same rule. */
static int kind_parse(const char *s, enum visor_tp_kind *out)
{
    if (strcmp(s, "stcp") == 0)
        *out = VISOR_TP_STCP;
    else if (strcmp(s, "dmsg") == 0)
        *out = VISOR_TP_DMSG;
    else
        return SW_EINVAL;
    return SW_OK;
}

static int parse_record(struct json_object *o, const char *where, struct visor_store_record *out,
                        struct sw_error *err)
{
    struct visor_store_record r;
    const char *type, *addr = "";
    int rc;

    memset(&r, 0, sizeof(r));
    if (!json_object_is_type(o, json_type_object))
        return sw_error_set(err, SW_EINVAL, "field '%s': must be an object", where);
    if ((rc = sw_json_get_pk(o, "remote_pk", where, &r.remote, err)) ||
        (rc = sw_json_get_string(o, "type", where, 16, &type, err)) ||
        (rc = sw_json_get_bool(o, "remembered", where, &r.remembered, err)) ||
        (rc = sw_json_get_u64(o, "bytes_sent", where, &r.bytes_sent, err)) ||
        (rc = sw_json_get_u64(o, "bytes_received", where, &r.bytes_received, err)))
        return rc;
    if (kind_parse(type, &r.kind))
        return sw_error_set(err, SW_EINVAL, "field '%s.type': must be \"stcp\" or \"dmsg\"", where);
    if (json_object_object_get(o, "address") &&
        (rc = sw_json_get_string(o, "address", where, VISOR_ADDR_MAX - 1, &addr, err)))
        return rc;
    if (*addr && sw_hostport_parse(addr, 0, NULL, 0, NULL))
        return sw_error_set(err, SW_EINVAL, "field '%s.address': must be host:port", where);
    memcpy(r.addr, addr, strlen(addr) + 1);
    *out = r;
    return SW_OK;
}

int visor_store_parse(const char *text, size_t len, visor_store_record_fn each, void *ctx,
                      struct sw_error *err)
{
    struct json_object *root = NULL, *arr, *ver;
    struct visor_store_record rec;
    char where[48];
    size_t n;
    int rc;

    if ((rc = sw_json_parse(text ? text : "", text ? len : 0, &root, err)))
        return rc;
    if (!json_object_is_type(root, json_type_object)) {
        rc = sw_error_set(err, SW_EINVAL, "the document must be a JSON object");
        goto out;
    }
    ver = json_object_object_get(root, "version");
    if (ver && (!json_object_is_type(ver, json_type_int) ||
                json_object_get_int64(ver) != VISOR_STORE_VERSION)) {
        rc = sw_error_set(err, SW_EINVAL, "field 'version': must be %d (a newer visor wrote this file?)",
                          VISOR_STORE_VERSION);
        goto out;
    }
    if ((rc = sw_json_get_array(root, "transports", "", &arr, err)))
        goto out;
    n = json_object_array_length(arr);
    if (n > VISOR_MAX_TRANSPORTS) {
        rc = sw_error_set(err, SW_EINVAL, "field 'transports': more than %d records",
                          VISOR_MAX_TRANSPORTS);
        goto out;
    }
    /* two passes: nothing is delivered from a file that is malformed further on */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < n; i++) {
            snprintf(where, sizeof(where), "transports[%zu]", i);
            if ((rc = parse_record(json_object_array_get_idx(arr, i), where, &rec, err)))
                goto out;
            if (pass == 1 && each && (rc = each(ctx, &rec, where, err)))
                goto out;
        }
    }
out:
    json_object_put(root);
    return rc;
}

/* Replies 400 with code: the message is already in err. */
static int fail(const char **code, const char *c, int rc)
{
    if (code)
        *code = c;
    return rc ? rc : SW_EINVAL;
}

int visor_api_parse_add(const char *body, size_t len, struct visor_api_add_request *out,
                        const char **code, struct sw_error *err)
{
    struct json_object *root = NULL;
    struct visor_api_add_request r;
    const char *type = "stcp", *addr = "";
    int rc;

    memset(&r, 0, sizeof(r));
    if ((rc = sw_json_parse(body ? body : "", body ? len : 0, &root, err)))
        return fail(code, "invalid_json", rc);
    if (!json_object_is_type(root, json_type_object)) {
        rc = fail(code, "invalid_body", sw_error_set(err, SW_EINVAL, "the body must be a JSON object"));
    } else if ((rc = sw_json_get_pk(root, "remote_pk", "", &r.remote, err))) {
        rc = fail(code, "invalid_public_key", rc);
    } else if (json_object_object_get(root, "type") &&
               ((rc = sw_json_get_string(root, "type", "", 16, &type, err)) ||
                (rc = kind_parse(type, &r.kind)))) {
        rc = fail(code, "invalid_type",
                  sw_error_set(err, SW_EINVAL, "field 'type' must be \"stcp\" or \"dmsg\""));
    } else if (json_object_object_get(root, "address") &&
               ((rc = sw_json_get_string(root, "address", "", VISOR_ADDR_MAX - 1, &addr, err)) ||
                (*addr && (rc = sw_hostport_parse(addr, 0, NULL, 0, NULL))))) {
        rc = fail(code, "invalid_address", sw_error_set(err, SW_EINVAL, "field 'address' must be host:port"));
    } else {
        memcpy(r.addr, addr, strlen(addr) + 1);
        *out = r;
    }
    json_object_put(root);
    return rc;
}

int visor_api_parse_discard(const char *body, size_t len, uint64_t max, uint64_t *bytes,
                            struct sw_error *err)
{
    struct json_object *root = NULL;
    uint64_t n = 0;
    int rc = sw_json_parse(body ? body : "", body ? len : 0, &root, err);

    if (rc == SW_OK && sw_json_get_u64(root, "bytes", "", &n, err) == SW_OK && n >= 1 && n <= max)
        *bytes = n;
    else
        rc = sw_error_set(err, SW_EINVAL, "the body must be {\"bytes\": 1..%llu}",
                          (unsigned long long)max);
    json_object_put(root);
    return rc;
}
