/* appsrv_proto.c — the app socket's request parser (appsrv_proto.h). */
#include "visor/appsrv_proto.h"
#include "common/json.h"

#include <string.h>

void visor_appsrv_req_free(struct visor_appsrv_req *r)
{
    json_object_put(r->root);
    r->root = r->forward = r->reverse = NULL;
}

static int fail(struct visor_appsrv_req *out, int rc)
{
    visor_appsrv_req_free(out);
    return rc;
}

int visor_appsrv_req_parse(const char *buf, size_t len, struct visor_appsrv_req *out, const char **code,
                           struct sw_error *err)
{
    struct json_object *root = NULL;
    const char *op;
    uint64_t port = 0;

    memset(out, 0, sizeof(*out));
    *code = "invalid_request";
    if (len == 0 || sw_json_parse(buf, len, &root, NULL) != SW_OK ||
        !(op = json_object_get_string(json_object_object_get(root, "op")))) {
        json_object_put(root);
        return sw_error_set(err, SW_EINVAL, "a request is one JSON object with \"op\"");
    }
    out->root = root;
    if (strcmp(op, "listen") == 0) {
        out->op = VISOR_APPSRV_OP_LISTEN;
        if (sw_json_get_u64(root, "port", "", &port, NULL) || port == 0 || port > 65535) {
            *code = "invalid_port";
            return fail(out, sw_error_set(err, SW_EINVAL, "field 'port': must be 1..65535"));
        }
    } else if (strcmp(op, "dial") == 0) {
        out->op = VISOR_APPSRV_OP_DIAL;
        struct sw_error e = { 0 };
        if (sw_json_get_pk(root, "pk", "", &out->pk, &e) ||
            sw_json_get_u64(root, "port", "", &port, &e) || port == 0 || port > 65535) {
            if (!e.msg[0])
                sw_error_set(&e, SW_EINVAL, "field 'port': must be 1..65535");
            return fail(out, sw_error_set(err, SW_EINVAL, "%s", e.msg));
        }
        out->forward = json_object_object_get(root, "forward");
        out->reverse = json_object_object_get(root, "reverse");
        if (!out->forward != !out->reverse)
            return fail(out, sw_error_set(err, SW_EINVAL, "give both \"forward\" and \"reverse\" or neither"));
    } else {
        *code = "unknown_op";
        return fail(out, sw_error_set(err, SW_EINVAL, "op must be \"listen\" or \"dial\""));
    }
    if (json_object_object_get(root, "mode")) {
        const char *m = json_object_get_string(json_object_object_get(root, "mode"));
        if (!json_object_is_type(json_object_object_get(root, "mode"), json_type_string) ||
            (strcmp(m, "stream") && strcmp(m, "datagram")))
            return fail(out, sw_error_set(err, SW_EINVAL, "field 'mode': \"stream\" or \"datagram\""));
        out->datagram = !strcmp(m, "datagram");
    }
    out->port = (uint16_t)port;
    return SW_OK;
}
