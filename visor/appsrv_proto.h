/* appsrv_proto.h — parsing one request on the app socket (docs/routing.md §6, appsrv.c):
 *   {"op":"listen","port":N[,"mode":"stream"|"datagram"]}
 *   {"op":"dial","pk":"<hex>","port":N[,"mode":...][,"forward":[hops],"reverse":[hops]]}
 *
 * Pure: no visor state, so unit tests and fuzz targets link this file alone. The hop lists
 * are passed on to the setup node as they are (it validates them: sw_route_group_parse). */
#ifndef VISOR_APPSRV_PROTO_H
#define VISOR_APPSRV_PROTO_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/keys.h"

enum visor_appsrv_op { VISOR_APPSRV_OP_LISTEN = 1, VISOR_APPSRV_OP_DIAL };

struct visor_appsrv_req {
    enum visor_appsrv_op op;
    uint16_t port;                         /* 1..65535 */
    struct sw_pk pk;                       /* dial: the remote visor */
    bool datagram;                         /* "mode": "datagram" (default "stream") */
    struct json_object *root;              /* the whole request (owned: visor_appsrv_req_free) */
    struct json_object *forward, *reverse; /* dial: borrowed from root; both NULL or neither */
};

/* Parses the message buf[0..len) (not NUL-terminated). SW_OK with *out filled; otherwise an
 * error with nothing to free, *code the answer's error code ("invalid_request",
 * "invalid_port" for a listen port, "unknown_op") and err its message. */
int visor_appsrv_req_parse(const char *buf, size_t len, struct visor_appsrv_req *out,
                           const char **code, struct sw_error *err);
void visor_appsrv_req_free(struct visor_appsrv_req *r);

#endif
