/* setup_proto.h — the route setup protocol's wire layer (docs/routing.md §3).
 *
 * Messages on the setup streams (visor -> setup node on messaging port 2, setup node ->
 * visor on port 3) are JSON objects framed as u32 big-endian length || JSON, at most
 * SW_SETUP_MAX_FRAME bytes: the records of common/stream_io.h, with this protocol's limit
 * and one deadline per frame. This module reads/writes such frames on a stream fd, and
 * parses a "route_group" request into a fixed-size struct (bounded: at most
 * SW_SETUP_MAX_HOPS hops per path). Used by setup-node and the visor. */
#ifndef SW_SETUP_PROTO_H
#define SW_SETUP_PROTO_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/keys.h"
#include "common/uuid.h"

#define SW_SETUP_MAX_FRAME (64 * 1024)
#define SW_SETUP_MAX_HOPS 16
#define SW_SETUP_PORT 2 /* setup node listens here */
#define SW_RULES_PORT 3 /* visors listen here for rule changes */

struct sw_setup_hop {
    struct sw_pk from, to;
    struct sw_uuid t_id;
};

struct sw_setup_addr {
    struct sw_pk pk;
    uint16_t port;
};

struct sw_route_group_req {
    uint64_t id;
    struct sw_setup_addr src, dst;
    size_t n_fwd, n_rev;
    bool rebind; /* optional "rebind": true: re-route the existing group src<->dst (passed to group_ready) */
    struct sw_setup_hop fwd[SW_SETUP_MAX_HOPS], rev[SW_SETUP_MAX_HOPS];
};

/* Writes one frame (1 <= len <= SW_SETUP_MAX_FRAME) before timeout_ms passes (< 0: no
 * limit). SW_ERANGE empty or too long, SW_ETIMEDOUT, SW_EIO when the stream is closed or fails. */
int sw_setup_frame_write(int fd, const char *json, size_t len, int timeout_ms);
/* Writes obj compactly as one frame. */
int sw_setup_send(int fd, struct json_object *obj, int timeout_ms);

/* Reads one frame within timeout_ms (< 0: no limit). On success *out is a malloc'd
 * NUL-terminated copy of the payload the caller frees, *len its length. SW_ETIMEDOUT,
 * SW_EIO on EOF or a socket error (EOF before the first byte: SW_ENOTFOUND, a clean end),
 * SW_ERANGE when the announced length is 0 or above SW_SETUP_MAX_FRAME (the stream is
 * then out of sync: close it). */
int sw_setup_frame_read(int fd, int timeout_ms, char **out, size_t *len);

/* Parses a route_group request (root must be an object with "type":"route_group").
 * SW_EINVAL: the request itself is malformed (type, id, src, dst, missing paths);
 * SW_ERANGE: a path is invalid (empty, more than SW_SETUP_MAX_HOPS hops, bad key or t_id,
 * not contiguous, not from src to dst / dst to src, or visiting a key twice).
 * err names the field. *out is written only on success; out->id is the request id. */
int sw_route_group_parse(struct json_object *root, struct sw_route_group_req *out,
                         struct sw_error *err);

/* Helpers to build responses: {"id":id,"ok":true} and
 * {"id":id,"ok":false,"error":{"code":code,"message":msg}}. NULL on ENOMEM. */
struct json_object *sw_setup_ok(uint64_t id);
struct json_object *sw_setup_error(uint64_t id, const char *code, const char *msg);

#endif
