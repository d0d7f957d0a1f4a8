/* router_setup.c — the rule server: setup nodes open messaging streams to our port 3 and
 * send reserve / add_rules / del_rules / group_ready (docs/routing.md §3).
 *
 * An acceptor thread waits on the port-3 listener. A stream from a key outside
 * routing.setup_nodes is closed at once and logged. Each accepted stream is served by its
 * own thread (at most VISOR_ROUTER_SETUP_STREAMS; when all are busy a new stream waits up to
 * SETUP_BODY_MS for one to end, then is closed): it reads one request (a record of
 * common/stream_io.h: u32 BE length, 1..64 KiB, all of it within 5 s of its first byte),
 * runs it on the loop through a VISOR_CMD_CALL command and writes the framed response.
 * Blocking reads never happen on the loop. */
#include "visor/router.h"
#include "visor/router_proto.h"
#include "visor/connpool.h"
#include "common/json.h"
#include "common/log.h"
#include "common/msg_client.h"
#include "common/setup_proto.h"
#include "common/stream_io.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SETUP_BODY_MS 5000
#define SETUP_POLL_MS 250

struct setup_stream {
    struct visor_router_setup *s;
    int fd; /* owned by the pool */
    struct sw_pk remote;
};

struct visor_router_setup {
    struct visor *v;
    int listener_fd;
    pthread_t acceptor;
    bool acceptor_started;
    atomic_bool stopping;
    struct visor_connpool pool;
    struct visor_connpool_slot slots[VISOR_ROUTER_SETUP_STREAMS];
    struct setup_stream streams[VISOR_ROUTER_SETUP_STREAMS];
};

static bool trusted(const struct visor *v, const struct sw_pk *pk)
{
    for (size_t i = 0; i < v->cfg.n_setup_nodes; i++)
        if (sw_pk_equal(&v->cfg.setup_nodes[i], pk))
            return true;
    return false;
}

/* The next request on the stream: *req (caller's) on success, SW_EINVAL with err when the
 * body is not a JSON object (answered; the stream stays usable), anything else ends the
 * stream. Waits up to VISOR_ROUTER_SETUP_IDLE_MS for a request to begin, then SETUP_BODY_MS for
 * the rest of it, and gives up when the visor stops. */
static int read_request(struct visor_router_setup *s, int fd, const char *pk, struct json_object **req,
                        struct sw_error *err)
{
    struct sw_io_limit idle = sw_io_within(VISOR_ROUTER_SETUP_IDLE_MS, &s->stopping);
    char *body = NULL;
    size_t len;
    int rc = sw_record_read(fd, VISOR_ROUTER_MSG_MAX, idle, SETUP_BODY_MS, &body, &len);

    if (rc == SW_ERANGE)
        sw_log_warn("setup node %.16s…: message of %zu bytes (allowed 1..%u); closing", pk, len,
                    VISOR_ROUTER_MSG_MAX);
    else if (rc && len > 0)
        sw_log_warn("setup node %.16s…: incomplete message; closing", pk);
    if (rc)
        return rc;
    rc = sw_json_parse(body, len, req, err);
    free(body);
    if (rc == SW_OK && !json_object_is_type(*req, json_type_object)) {
        json_object_put(*req);
        *req = NULL;
        rc = SW_EINVAL;
    }
    return rc ? SW_EINVAL : SW_OK;
}

/* Runs req (taken) on the loop; the response, NULL when the stream must end. */
static struct json_object *run_request(struct visor_router_setup *s, struct setup_stream *ss,
                                       struct json_object *req)
{
    uint64_t id = json_object_get_uint64(json_object_object_get(req, "id"));
    struct json_object *resp;
    struct visor_cmd *c;
    int rc;

    if (!(c = visor_cmd_new(VISOR_CMD_CALL))) {
        json_object_put(req);
        return NULL;
    }
    c->fn = visor_router_setup_exec;
    c->pk = ss->remote;
    c->body = req;
    rc = visor_cmdq_call(&s->v->q, c, SETUP_BODY_MS);
    if (rc == SW_OK && c->body) {
        resp = c->body;
        c->body = NULL;
    } else {
        resp = sw_setup_error(id, rc == SW_ETIMEDOUT ? "timeout" : "shutting_down",
                              rc == SW_ETIMEDOUT ? "the visor did not answer in time"
                                                 : "the visor is shutting down");
    }
    visor_cmd_release(&s->v->q, c);
    return resp;
}

static void stream_main(void *arg)
{
    struct setup_stream *ss = arg;
    char pk[SW_PK_HEX_LEN + 1];

    sw_pk_to_hex(&ss->remote, pk);
    sw_log_info("setup node %.16s…: rule stream opened", pk);
    for (;;) {
        struct json_object *req = NULL, *resp;
        struct sw_error err = { 0 };
        int rc = read_request(ss->s, ss->fd, pk, &req, &err);

        if (rc == SW_EINVAL)
            resp = sw_setup_error(0, "invalid_json", err.msg[0] ? err.msg : "not a JSON object");
        else if (rc || !(resp = run_request(ss->s, ss, req)))
            break;
        rc = sw_json_record_send(ss->fd, resp, VISOR_ROUTER_MSG_MAX, sw_io_within(SW_IO_FOREVER, NULL));
        json_object_put(resp);
        if (rc)
            break;
    }
    sw_log_info("setup node %.16s…: rule stream closed", pk);
}

static void *acceptor_main(void *arg)
{
    struct visor_router_setup *s = arg;
    struct visor *v = s->v;

    while (!s->stopping) {
        struct sw_error err = { 0 };
        struct sw_pk remote;
        char pk[SW_PK_HEX_LEN + 1];
        uint16_t port;
        int fd = -1, rc, slot;

        rc = sw_msg_accept(s->listener_fd, SETUP_POLL_MS, &fd, &remote, &port, &err);
        visor_connpool_reap(&s->pool, false);
        if (rc == SW_ETIMEDOUT)
            continue;
        if (rc) {
            if (!s->stopping)
                sw_log_warn("route setup: the port %d listener failed: %s", VISOR_ROUTER_SETUP_PORT,
                            err.msg);
            break;
        }
        sw_pk_to_hex(&remote, pk);
        if (!trusted(v, &remote)) {
            v->router->m_refused_setup++;
            sw_log_warn("route setup: refused a rule stream from %s: not in routing.setup_nodes", pk);
            close(fd);
            continue;
        }
        /* all slots busy: give running streams up to SETUP_BODY_MS to finish before refusing */
        if ((slot = visor_connpool_acquire(&s->pool, SETUP_BODY_MS, &s->stopping)) < 0) {
            sw_log_warn("route setup: %d rule streams open already; closing one from %s",
                        VISOR_ROUTER_SETUP_STREAMS, pk);
            close(fd);
            continue;
        }
        s->streams[slot] = (struct setup_stream){ .s = s, .fd = fd, .remote = remote };
        if (visor_connpool_start(&s->pool, slot, fd, stream_main, &s->streams[slot]))
            close(fd);
    }
    return NULL;
}

int visor_router_setup_start(struct visor *v, struct sw_error *err)
{
    struct sw_msg_client *mc = visor_dmsg_client(v);
    struct visor_router_setup *s;
    int rc;

    if (!mc || !v->router)
        return SW_OK; /* no messaging: no setup nodes can reach us */
    if (!(s = calloc(1, sizeof(*s))))
        return sw_error_set(err, SW_ENOMEM, "out of memory");
    s->v = v;
    visor_connpool_init(&s->pool, s->slots, VISOR_ROUTER_SETUP_STREAMS);
    for (int i = 0; i < VISOR_ROUTER_SETUP_STREAMS; i++)
        s->streams[i].fd = -1;
    /* private network: only keys with a setup-node certificate get through the handshake
     * (routing.setup_nodes is checked on top) */
    if ((rc = sw_msg_listen_roles(mc, VISOR_ROUTER_SETUP_PORT, SW_ROLE_BIT(SW_ROLE_SETUP_NODE),
                                  &s->listener_fd, err))) {
        visor_connpool_destroy(&s->pool);
        free(s);
        return rc;
    }
    v->router->setup = s;
    if (pthread_create(&s->acceptor, NULL, acceptor_main, s)) {
        visor_router_setup_stop(v);
        return sw_error_set(err, SW_EIO, "cannot start the route setup thread");
    }
    s->acceptor_started = true;
    sw_log_info("route setup: listening on messaging port %d for %zu setup node(s)",
                VISOR_ROUTER_SETUP_PORT, v->cfg.n_setup_nodes);
    return SW_OK;
}

void visor_router_setup_stop(struct visor *v)
{
    struct visor_router_setup *s = v->router ? v->router->setup : NULL;
    struct sw_msg_client *mc = visor_dmsg_client(v);

    if (!s)
        return;
    s->stopping = true;
    if (s->acceptor_started)
        pthread_join(s->acceptor, NULL);
    visor_connpool_reap(&s->pool, true);
    if (mc)
        sw_msg_unlisten(mc, VISOR_ROUTER_SETUP_PORT);
    close(s->listener_fd);
    visor_connpool_destroy(&s->pool);
    free(s);
    v->router->setup = NULL;
}

/* ---- requests, on the loop ----------------------------------------------------------------- */

static struct json_object *do_reserve(struct visor_router *ro, const struct visor_rproto_req *rq,
                                      const struct sw_pk *owner)
{
    struct json_object *o, *arr;
    uint32_t rids[VISOR_RPROTO_RESERVE_MAX];
    int64_t now = sw_unix_ms() / 1000; /* rule times are Unix seconds (shown by the API) */

    for (uint32_t i = 0; i < rq->n; i++) {
        if (visor_rules_reserve(&ro->rt, owner, now, &rids[i])) {
            for (uint32_t j = 0; j < i; j++)
                visor_rules_del(&ro->rt, rids[j]);
            return sw_setup_error(rq->id, "table_full", "the rule table is full");
        }
    }
    o = sw_setup_ok(rq->id);
    arr = json_object_new_array();
    for (uint32_t i = 0; i < rq->n; i++)
        json_object_array_add(arr, json_object_new_int64(rids[i]));
    json_object_object_add(o, "rids", arr);
    return o;
}

/* Checks parsed rule i against the table and the transports. */
static int check_rule(struct visor_router *ro, const struct visor_rule *r, size_t i,
                      const struct sw_pk *owner, const char **code, struct sw_error *err)
{
    struct visor_rule *cur;

    if (r->type == VISOR_RULE_FORWARD && !visor_tm_find_id(ro->v, &r->next_tp)) {
        char tp[SW_UUID_STR_LEN + 1];
        sw_uuid_format(&r->next_tp, tp);
        *code = "unknown_transport";
        return sw_error_set(err, SW_ENOTFOUND, "rules[%zu]: no transport %s here", i, tp);
    }
    cur = visor_rules_get(&ro->rt, r->rid);
    if (!cur || !sw_pk_equal(&cur->owner, owner)) {
        *code = "not_reserved";
        return sw_error_set(err, SW_EPERM, "rules[%zu]: route ID %u was not reserved by this setup node",
                            i, r->rid);
    }
    if (cur->type != VISOR_RULE_RESERVED) {
        *code = "exists";
        return sw_error_set(err, SW_EEXIST, "rules[%zu]: route ID %u has a rule already", i, r->rid);
    }
    return SW_OK;
}

static struct json_object *do_add_rules(struct visor_router *ro, const struct visor_rproto_req *rq,
                                        const struct sw_pk *owner)
{
    struct sw_error err = { 0 };
    const char *code = "invalid_request";
    int64_t now = sw_unix_ms() / 1000; /* rule times are Unix seconds (shown by the API) */

    for (size_t i = 0; i < rq->n_rules; i++)
        if (check_rule(ro, &rq->rules[i], i, owner, &code, &err))
            return sw_setup_error(rq->id, code, err.msg);
    for (size_t i = 0; i < rq->n_rules; i++) {
        const struct visor_rule *r = &rq->rules[i];
        visor_rules_install(&ro->rt, r, owner, now); /* checked above */
        if (r->type == VISOR_RULE_FORWARD) {
            char tp[SW_UUID_STR_LEN + 1];
            sw_uuid_format(&r->next_tp, tp);
            sw_log_info("route %u: forward -> %s rid %u", r->rid, tp, r->next_rid);
        } else {
            sw_log_info("route %u: consume on port %u", r->rid, r->local_port);
        }
    }
    return sw_setup_ok(rq->id);
}

static struct json_object *do_del_rules(struct visor_router *ro, const struct visor_rproto_req *rq,
                                        const struct sw_pk *owner)
{
    struct json_object *o;
    int removed = 0;

    for (size_t i = 0; i < rq->n_rids; i++) {
        struct visor_rule *r = visor_rules_get(&ro->rt, rq->rids[i]);
        if (r && sw_pk_equal(&r->owner, owner) && visor_rules_del(&ro->rt, rq->rids[i]) == SW_OK)
            removed++;
    }
    o = sw_setup_ok(rq->id);
    json_object_object_add(o, "removed", json_object_new_int(removed));
    return o;
}

void visor_router_setup_exec(struct visor *v, struct visor_cmd *c)
{
    struct visor_rproto_req rq; /* 12 KiB, like the rule array it replaced */
    struct visor_router *ro = v->router;
    struct json_object *req = c->body, *resp;
    struct sw_error err = { 0 };
    const char *code;

    if (visor_rproto_parse(req, &rq, &code, &err))
        resp = sw_setup_error(rq.id, code, err.msg);
    else if (rq.type == VISOR_RPROTO_RESERVE)
        resp = do_reserve(ro, &rq, &c->pk);
    else if (rq.type == VISOR_RPROTO_ADD_RULES)
        resp = do_add_rules(ro, &rq, &c->pk);
    else if (rq.type == VISOR_RPROTO_DEL_RULES)
        resp = do_del_rules(ro, &rq, &c->pk);
    else
        resp = visor_group_ready(v, req, rq.id, &c->pk);
    ro->m_rules = ro->rt.n;
    visor_cmd_reply(&v->q, c, 200, resp);
}
