/* route_acquire.c — getting a route for a route group (docs/routing.md §6 "App socket", §7):
 * paths from the route finder, the group from a setup node, and a broken group's new route.
 * Everything here blocks (HTTP, messaging): it runs on app-socket and re-establishment
 * threads, never on the loop, and reaches the loop only through visor_cmd_call_fn. */
#include "visor/route_acquire.h"
#include "common/http_client.h"
#include "common/json.h"
#include "common/log.h"
#include "common/msg_client.h"
#include "common/setup_proto.h"
#include "common/stream_io.h"

#include <json-c/json.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define ROUTE_SETUP_MS 20000 /* a setup node sets up every hop before it answers */

static const char *error_message(struct json_object *o)
{
    const char *m = json_object_get_string(json_object_object_get(json_object_object_get(o, "error"), "message"));
    return m ? m : "";
}

/* How bad a candidate path is: -1 when it uses the failed transport, else the number of its
 * transports the broken route used (fewer is better: a path around the failure). */
static int path_score(struct json_object *path, const char *failed, struct json_object *old)
{
    int score = 0;
    size_t n = json_object_is_type(path, json_type_array) ? json_object_array_length(path) : 0;
    for (size_t i = 0; i < n; i++) {
        const char *t = json_object_get_string(json_object_object_get(json_object_array_get_idx(path, i), "t_id"));
        if (!t)
            return -1;
        if (failed && failed[0] && strcasecmp(t, failed) == 0)
            return -1;
        for (const char *dir = "forward"; dir; dir = strcmp(dir, "forward") == 0 ? "reverse" : NULL) {
            struct json_object *op = json_object_object_get(old, dir);
            size_t m = json_object_is_type(op, json_type_array) ? json_object_array_length(op) : 0;
            for (size_t j = 0; j < m; j++) {
                const char *u = json_object_get_string(json_object_object_get(json_object_array_get_idx(op, j), "t_id"));
                if (u && strcasecmp(t, u) == 0)
                    score++;
            }
        }
    }
    return score;
}

/* The best of a route finder's candidate paths (new reference), NULL when every one is out. */
static struct json_object *best_path(struct json_object *paths, const char *failed, struct json_object *old)
{
    struct json_object *best = NULL;
    int best_score = -1;
    size_t n = json_object_is_type(paths, json_type_array) ? json_object_array_length(paths) : 0;
    for (size_t i = 0; i < n; i++) {
        struct json_object *p = json_object_array_get_idx(paths, i);
        int sc = path_score(p, failed, old);
        if (sc >= 0 && (!best || sc < best_score)) {
            best = p;
            best_score = sc;
        }
    }
    return best ? json_object_get(best) : NULL;
}

/* POST /routes asking for count paths per direction; picks the best of each (best_path). */
int visor_route_find(struct visor *v, const struct sw_pk *dst, int count, const char *failed, struct json_object *old,
                     struct json_object **fwd, struct json_object **rev, struct sw_error *err)
{
    struct sw_http_client_opts opts = { .connect_timeout_ms = 3000, .timeout_ms = 5000,
                                        .max_response = 1u << 20 };
    struct sw_http_client *http;
    struct sw_http_result res = { 0 };
    struct json_object *root = NULL, *pair, *f, *r;
    char a[SW_PK_HEX_LEN + 1], b[SW_PK_HEX_LEN + 1], url[VISOR_URL_MAX + 16], body[300], key[140];
    int rc;

    if (!v->cfg.route_finder[0])
        return sw_error_set(err, SW_EINVAL, "no routing.route_finder in the config (give explicit paths)");
    sw_pk_to_hex(&v->cfg.kp.pk, a);
    sw_pk_to_hex(dst, b);
    snprintf(url, sizeof(url), "%s/routes", v->cfg.route_finder);
    snprintf(body, sizeof(body), "{\"edges\":[[\"%s\",\"%s\"]],\"opts\":{\"min_hops\":1,\"max_hops\":%d,\"count\":%d}}",
             a, b, SW_SETUP_MAX_HOPS, count);
    snprintf(key, sizeof(key), "%s:%s", a, b);
    if (!(http = sw_http_client_new(&opts)))
        return sw_error_set(err, SW_ENOMEM, "out of memory");
    rc = sw_http_do(http, "POST", url, NULL, body, strlen(body), &res, err);
    if (rc == SW_OK && res.status != 200)
        rc = sw_error_set(err, res.status == 404 ? SW_ENOTFOUND : SW_EIO, "route finder: HTTP %ld", res.status);
    if (rc == SW_OK && (rc = sw_json_parse(res.body, res.body_len, &root, err)) == SW_OK) {
        pair = json_object_object_get(root, key);
        f = best_path(json_object_object_get(pair, "forward"), failed, old);
        r = best_path(json_object_object_get(pair, "reverse"), failed, old);
        if (!f || !r) {
            json_object_put(f);
            json_object_put(r);
            rc = sw_error_set(err, SW_ENOTFOUND, "route finder: no usable forward and reverse path");
        } else {
            *fwd = f;
            *rev = r;
        }
    }
    json_object_put(root);
    sw_http_result_free(&res);
    sw_http_client_free(http);
    return rc;
}

/* route_group to the first setup node; *group = the response's "group" (new reference). */
static int ask_setup_node(struct visor *v, const atomic_bool *stopping, size_t idx, bool rebind,
                          const struct sw_pk *dst, uint16_t dst_port, uint16_t src_port, struct json_object *fwd,
                          struct json_object *rev, struct json_object **group, const char **code,
                          struct sw_error *err)
{
    struct sw_msg_client *mc = visor_dmsg_client(v);
    struct json_object *req, *src, *dsto, *resp = NULL;
    char *out = NULL;
    size_t len;
    int fd = -1, refusal = 0, rc;

    *code = "setup_failed";
    if (!mc)
        return sw_error_set(err, SW_EINVAL, "messaging is off in the config: setup nodes are unreachable");
    if (!v->cfg.n_setup_nodes)
        return sw_error_set(err, SW_EINVAL, "no routing.setup_nodes in the config");
    /* private network: the stream completes only when the node holds a setup-node certificate */
    if ((rc = sw_msg_dial_roles(mc, &v->cfg.setup_nodes[idx], SW_SETUP_PORT, SW_ROLE_BIT(SW_ROLE_SETUP_NODE),
                                rebind ? 5000 : 10000, &fd, &refusal, err)))
        return rc;
    req = json_object_new_object();
    src = json_object_new_object();
    dsto = json_object_new_object();
    json_object_object_add(req, "type", json_object_new_string("route_group"));
    json_object_object_add(req, "id", json_object_new_int(1));
    json_object_object_add(src, "pk", sw_json_pk(&v->cfg.kp.pk));
    json_object_object_add(src, "port", json_object_new_int(src_port));
    json_object_object_add(dsto, "pk", sw_json_pk(dst));
    json_object_object_add(dsto, "port", json_object_new_int(dst_port));
    json_object_object_add(req, "src", src);
    json_object_object_add(req, "dst", dsto);
    json_object_object_add(req, "forward", json_object_get(fwd));
    json_object_object_add(req, "reverse", json_object_get(rev));
    if (rebind)
        json_object_object_add(req, "rebind", json_object_new_boolean(1));
    rc = sw_setup_send(fd, req, 5000);
    json_object_put(req);
    /* the setup node may take long (it sets up every hop); give up early when we stop */
    if (rc == SW_OK && sw_io_wait(fd, POLLIN, sw_io_within(ROUTE_SETUP_MS, stopping)))
        rc = sw_error_set(err, SW_ETIMEDOUT, "the setup node did not answer within %d ms", ROUTE_SETUP_MS);
    else if (rc == SW_OK && (rc = sw_setup_frame_read(fd, 5000, &out, &len)))
        sw_error_set(err, rc, "the setup node did not answer: %s", sw_strerror(rc));
    else if (rc)
        sw_error_set(err, rc, "cannot send to the setup node: %s", sw_strerror(rc));
    close(fd);
    if (rc)
        return rc;
    rc = sw_json_parse(out, len, &resp, err);
    free(out);
    if (rc)
        return rc;
    if (!json_object_get_boolean(json_object_object_get(resp, "ok"))) {
        const char *c = json_object_get_string(json_object_object_get(json_object_object_get(resp, "error"), "code"));
        rc = sw_error_set(err, SW_EPERM, "the setup node refused: %s: %s", c ? c : "?",
                          error_message(resp));
    } else if (!(*group = json_object_get(json_object_object_get(resp, "group")))) {
        rc = sw_error_set(err, SW_EPROTO, "the setup node's answer has no group");
    }
    json_object_put(resp);
    return rc;
}

int visor_route_setup(struct visor *v, const atomic_bool *stopping, bool rebind, const struct sw_pk *dst,
                      uint16_t dst_port, uint16_t src_port, struct json_object *fwd, struct json_object *rev,
                      struct json_object **group, const char **code, struct sw_error *err)
{
    int rc = ask_setup_node(v, stopping, 0, rebind, dst, dst_port, src_port, fwd, rev, group, code, err);
    for (size_t i = 1; rc && i < v->cfg.n_setup_nodes && !*stopping; i++) {
        sw_log_info("setup node %zu failed (%s): trying the next one", i - 1, err->msg);
        rc = ask_setup_node(v, stopping, i, rebind, dst, dst_port, src_port, fwd, rev, group, code, err);
    }
    return rc;
}

/* ---- re-establishing a broken route group (docs/routing.md §7) -------------------------- */

void visor_route_reacquire(struct visor *v, const struct visor_group_reroute *r, const atomic_bool *stopping)
{
    struct sw_error err = { 0 };
    struct json_object *old = NULL, *fwd = NULL, *rev = NULL, *group = NULL, *body, *resp = NULL;
    const char *code = "no_route";
    int fd = -1, rc;

    if (r->old_paths)
        sw_json_parse(r->old_paths, strlen(r->old_paths), &old, NULL);
    rc = visor_route_find(v, &r->dst, 5, r->failed_tp, old, &fwd, &rev, &err);
    if (rc == SW_OK)
        rc = visor_route_setup(v, stopping, true, &r->dst, r->dst_port, r->src_port, fwd, rev, &group, &code, &err);
    body = json_object_new_object();
    if (rc) {
        json_object_object_add(body, "error", json_object_new_string(err.msg));
    } else {
        json_object_object_add(body, "send_tp", json_object_get(json_object_object_get(group, "send_tp")));
        json_object_object_add(body, "send_rid", json_object_get(json_object_object_get(group, "send_rid")));
        json_object_object_add(body, "recv_rid", json_object_get(json_object_object_get(group, "recv_rid")));
        json_object_object_add(body, "forward", json_object_get(fwd));
        json_object_object_add(body, "reverse", json_object_get(rev));
    }
    visor_cmd_call_fn(v, visor_group_cmd_rebind, body, r->serial, VISOR_CMD_TIMEOUT_MS, &fd, &resp);
    if (fd >= 0)
        close(fd);
    json_object_put(resp);
    json_object_put(old);
    json_object_put(fwd);
    json_object_put(rev);
    json_object_put(group);
}
