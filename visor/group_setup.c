/* group_setup.c — creating route group ends and app listeners on request (loop thread):
 * group_ready from a setup node (port 3), a dial or listen from the app socket, and the
 * initiator's rebind after a failover (docs/routing.md §3, §6, §7). */
#include "visor/group.h"
#include "visor/transport.h"
#include "common/json.h"
#include "common/log.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- setting groups up ------------------------------------------------------------------- */

static int parse_params(struct json_object *o, struct visor_group_params *gp, struct sw_error *err)
{
    uint64_t lp, rp, sr, rr;
    const char *tp;
    int rc;

    if ((rc = sw_json_get_u64(o, "local_port", "", &lp, err)) ||
        (rc = sw_json_get_pk(o, "remote_pk", "", &gp->remote, err)) ||
        (rc = sw_json_get_u64(o, "remote_port", "", &rp, err)) ||
        (rc = sw_json_get_string(o, "send_tp", "", SW_UUID_STR_LEN, &tp, err)) ||
        (rc = sw_uuid_parse(&gp->send_tp, tp, "send_tp", err)) ||
        (rc = sw_json_get_u64(o, "send_rid", "", &sr, err)) ||
        (rc = sw_json_get_u64(o, "recv_rid", "", &rr, err)))
        return rc;
    if (lp == 0 || lp > 65535 || rp == 0 || rp > 65535)
        return sw_error_set(err, SW_EINVAL, "ports must be 1..65535");
    if (sr == 0 || sr > UINT32_MAX || rr == 0 || rr > UINT32_MAX)
        return sw_error_set(err, SW_EINVAL, "route IDs must be 1..4294967295");
    gp->mode = VISOR_ROUTE_STREAM;
    if (json_object_object_get(o, "mode")) { /* a dial's choice; a listener's for group_ready */
        const char *m = json_object_get_string(json_object_object_get(o, "mode"));
        if (m && !strcmp(m, "datagram"))
            gp->mode = VISOR_ROUTE_DATAGRAM;
        else if (!m || strcmp(m, "stream"))
            return sw_error_set(err, SW_EINVAL, "field 'mode': \"stream\" or \"datagram\"");
    }
    gp->local_port = (uint16_t)lp;
    gp->remote_port = (uint16_t)rp;
    gp->send_rid = (uint32_t)sr;
    gp->recv_rid = (uint32_t)rr;
    return SW_OK;
}

/* The initiator remembers its route's hops (a failover avoids them): {"forward","reverse"}. */
static void keep_paths(struct visor_group *g, struct json_object *body)
{
    struct json_object *p;

    free(g->paths);
    g->paths = NULL;
    if (!json_object_object_get(body, "forward"))
        return;
    p = json_object_new_object();
    json_object_object_add(p, "forward", json_object_get(json_object_object_get(body, "forward")));
    json_object_object_add(p, "reverse", json_object_get(json_object_object_get(body, "reverse")));
    g->paths = strdup(json_object_to_json_string_ext(p, JSON_C_TO_STRING_PLAIN));
    json_object_put(p);
}

struct json_object *visor_group_ready(struct visor *v, struct json_object *req, uint64_t id,
                                      const struct sw_pk *owner)
{
    struct sw_error err = { 0 };
    struct visor_group_params gp;
    const char *code = "invalid_request";
    struct json_object *o, *e;
    bool initiator = false, rebind = false;

    if (parse_params(req, &gp, &err) == SW_OK &&
        (!json_object_object_get(req, "initiator") || sw_json_get_bool(req, "initiator", "", &initiator, &err) == SW_OK) &&
        (!json_object_object_get(req, "rebind") || sw_json_get_bool(req, "rebind", "", &rebind, &err) == SW_OK)) {
        struct visor_group *g;
        struct visor_rule *r;
        struct visor_app_listener *l;
        if (initiator) {
            sw_error_set(&err, SW_EINVAL, "the initiator learns its group from the route_group response");
        } else if (rebind) {
            /* the same group (same address pair) moves onto a new route; Noise state kept */
            g = visor_group_find_tuple(v->router, gp.local_port, &gp.remote, gp.remote_port, false);
            r = visor_rules_get(&v->router->rt, gp.recv_rid);
            if (!g || g->state == G_HANDSHAKE) {
                code = "no_group";
                sw_error_set(&err, SW_ENOTFOUND, "no open route group for this address pair");
            } else if (!r || r->type != VISOR_RULE_CONSUME) {
                sw_error_set(&err, SW_ENOTFOUND, "route %u is not a consume rule here", gp.recv_rid);
            } else if (visor_group_by_rid(v->router, gp.recv_rid)) {
                sw_error_set(&err, SW_EEXIST, "route %u belongs to a group already", gp.recv_rid);
            } else if (!visor_tm_find_id(v, &gp.send_tp)) {
                code = "unknown_transport";
                sw_error_set(&err, SW_ENOTFOUND, "send_tp is not a transport here");
            } else {
                if (g->state == G_OPEN)
                    g->broken_ms = sw_mono_ms();
                visor_group_rebound(g, &gp.send_tp, gp.send_rid, gp.recv_rid);
                o = json_object_new_object();
                json_object_object_add(o, "id", json_object_new_uint64(id));
                json_object_object_add(o, "ok", json_object_new_boolean(true));
                return o;
            }
        } else if (!(l = visor_group_find_listener(v->router, gp.local_port))) {
            code = "no_listener";
            sw_error_set(&err, SW_ENOTFOUND, "no app listens on port %u", gp.local_port);
        } else if ((gp.mode = l->mode, visor_group_start(v, &gp, false, &code, &err))) {
            o = json_object_new_object();
            json_object_object_add(o, "id", json_object_new_uint64(id));
            json_object_object_add(o, "ok", json_object_new_boolean(true));
            return o;
        }
    }
    o = json_object_new_object();
    e = json_object_new_object();
    json_object_object_add(o, "id", json_object_new_uint64(id));
    json_object_object_add(o, "ok", json_object_new_boolean(false));
    json_object_object_add(e, "code", json_object_new_string(code));
    json_object_object_add(e, "message", json_object_new_string(err.msg));
    json_object_object_add(o, "error", e);
    return o;
}

void visor_group_cmd_dial(struct visor *v, struct visor_cmd *c)
{
    struct sw_error err = { 0 };
    struct visor_group_params gp;
    const char *code = "invalid_request";
    struct visor_group *g;

    if (parse_params(c->body, &gp, &err)) {
        visor_cmd_reply_error(&v->q, c, 400, code, "%s", err.msg);
        return;
    }
    if (!(g = visor_group_start(v, &gp, true, &code, &err))) {
        visor_cmd_reply_error(&v->q, c, 502, code, "%s", err.msg);
        return;
    }
    g->waiter = c; /* replied when the handshake ends either way */
    keep_paths(g, c->body);
}

void visor_group_cmd_port_free(struct visor *v, struct visor_cmd *c)
{
    struct visor_group *g;
    LIST_FOREACH(g, &v->router->groups, next)
        if (g->initiator && g->local_port == c->n) {
            visor_cmd_reply_error(&v->q, c, 409, "port_in_use", "a group uses local port %u",
                                  (unsigned)c->n);
            return;
        }
    visor_cmd_reply(&v->q, c, 200, json_object_new_object());
}

void visor_group_cmd_rebind(struct visor *v, struct visor_cmd *c)
{
    struct sw_error err = { 0 };
    struct visor_group *g = visor_group_find_serial(v->router, c->n);
    struct visor_group_params gp;
    struct visor_rule *r;
    const char *msg;

    if (!g || !(g->state == G_REROUTE || (g->state == G_OPEN && g->moving))) {
        visor_cmd_reply_error(&v->q, c, 410, "gone", "the group is no longer re-establishing");
        return;
    }
    g->job = false;
    g->retry_at_ms = sw_deadline_ms(VISOR_GROUP_RETRY_MS);
    if ((msg = json_object_get_string(json_object_object_get(c->body, "error")))) {
        sw_log_info("route group %u: %s failed: %s%s", g->recv_rid, g->moving ? "moving" : "re-establishing",
                    msg, g->moving ? "" : " (retrying)");
        g->moving = false;
        visor_cmd_reply(&v->q, c, 200, json_object_new_object());
        return;
    }
    json_object_object_add(c->body, "local_port", json_object_new_int(g->local_port));
    json_object_object_add(c->body, "remote_pk", sw_json_pk(&g->remote));
    json_object_object_add(c->body, "remote_port", json_object_new_int(g->remote_port));
    if (parse_params(c->body, &gp, &err) ||
        !(r = visor_rules_get(&v->router->rt, gp.recv_rid)) || r->type != VISOR_RULE_CONSUME ||
        visor_group_by_rid(v->router, gp.recv_rid) || !visor_tm_find_id(v, &gp.send_tp)) {
        sw_log_info("route group %u: the setup node's new route is not usable here (retrying)", g->recv_rid);
        visor_cmd_reply(&v->q, c, 200, json_object_new_object());
        return;
    }
    keep_paths(g, c->body);
    visor_cmd_reply(&v->q, c, 200, json_object_new_object());
    visor_group_rebound(g, &gp.send_tp, gp.send_rid, gp.recv_rid);
}

static void listener_cb(evutil_socket_t fd, short what, void *arg)
{
    struct visor_app_listener *l = arg;
    char buf[64];
    ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

    if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EINTR)))
        return;
    sw_log_info("app listener on port %u closed", l->port);
    LIST_REMOVE(l, next);
    event_free(l->ev);
    close(l->fd);
    free(l);
}

void visor_group_cmd_listen(struct visor *v, struct visor_cmd *c)
{
    struct visor_app_listener *l;
    int sv[2];

    if (c->n == 0 || c->n > 65535) {
        visor_cmd_reply_error(&v->q, c, 400, "invalid_port", "ports are 1..65535");
        return;
    }
    if (visor_group_find_listener(v->router, (uint16_t)c->n)) {
        visor_cmd_reply_error(&v->q, c, 409, "port_in_use", "port %u has a listener already",
                              (unsigned)c->n);
        return;
    }
    if (!(l = calloc(1, sizeof(*l))) || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv)) {
        free(l);
        visor_cmd_reply_error(&v->q, c, 500, "internal_error", "cannot create the listener");
        return;
    }
    l->v = v;
    l->port = (uint16_t)c->n;
    l->mode = c->body && !strcmp(json_object_get_string(json_object_object_get(c->body, "mode")) ?: "", "datagram")
                  ? VISOR_ROUTE_DATAGRAM : VISOR_ROUTE_STREAM;
    l->fd = sv[0];
    evutil_make_socket_nonblocking(sv[0]);
    if (!(l->ev = event_new(v->base, sv[0], EV_READ | EV_PERSIST, listener_cb, l)) || event_add(l->ev, NULL)) {
        if (l->ev)
            event_free(l->ev);
        close(sv[0]);
        close(sv[1]);
        free(l);
        visor_cmd_reply_error(&v->q, c, 500, "internal_error", "cannot watch the listener");
        return;
    }
    LIST_INSERT_HEAD(&v->router->listeners, l, next);
    sw_log_info("app listener on port %u (%s routes)", l->port, visor_route_mode_name(l->mode));
    c->fd = sv[1];
    visor_cmd_reply(&v->q, c, 200, json_object_new_object());
}

void visor_group_free_all(struct visor *v)
{
    struct visor_router *ro = v->router;
    struct visor_group *g;
    struct visor_app_listener *l;

    while ((g = LIST_FIRST(&ro->groups)))
        visor_group_free(g, "the visor stops");
    while ((l = LIST_FIRST(&ro->listeners))) {
        LIST_REMOVE(l, next);
        event_free(l->ev);
        close(l->fd);
        free(l);
    }
}
