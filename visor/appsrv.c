/* appsrv.c — the app API (docs/routing.md §5): a unix SOCK_SEQPACKET socket at
 * data_dir/app.sock (SKYWIRE_APP_SOCKET for apps). Each request is one connection carrying
 * one JSON message; the answer is one JSON message, with a file descriptor attached
 * (SCM_RIGHTS) when it succeeded:
 *
 *   {"op":"listen","port":N}                      -> listener fd (SOCK_SEQPACKET; each
 *        connection arrives as 34 bytes: remote pk || remote port u16 BE, with its fd)
 *   {"op":"dial","pk":"<hex>","port":N[,"forward":[hops],"reverse":[hops]]}
 *                                                 -> connection fd (SOCK_STREAM)
 *
 * A dial without explicit hop lists (source routing) asks the route finder
 * (routing.route_finder, POST /routes, count 1) for both paths, then asks the first setup
 * node of routing.setup_nodes (messaging port 2; the next one on failure) for the route
 * group, then has the loop run
 * the end-to-end handshake (group.c). All of that blocks, so every connection is served on
 * its own thread (at most APPSRV_CONNS), never on the loop. visor_appsrv_reroute runs the same
 * steps with "rebind": true on a detached thread when a group's route broke (docs/routing.md
 * §7); visor_appsrv_stop waits for those threads. */
#include "visor/router.h"
#include "visor/appsrv_proto.h"
#include "visor/connpool.h"
#include "common/http_client.h"
#include "common/json.h"
#include "common/log.h"
#include "common/msg_client.h"
#include "common/setup_proto.h"
#include "common/stream_io.h"

#include <errno.h>
#include <json-c/json.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define APPSRV_CONNS 32
#define APPSRV_MSG_MAX (16u << 10)
#define APPSRV_POLL_MS 250
#define APPSRV_REQ_MS 5000
#define APPSRV_SETUP_MS 20000
#define APPSRV_EPHEMERAL_MIN 49152

struct appsrv_conn {
    struct visor_appsrv *s;
    int fd; /* owned by the pool */
};

struct visor_appsrv {
    struct visor *v;
    int fd;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    pthread_t acceptor;
    bool acceptor_started;
    atomic_bool stopping;
    _Atomic unsigned next_port;
    _Atomic int jobs;                 /* re-establishment threads running */
    struct visor_connpool pool;
    struct visor_connpool_slot slots[APPSRV_CONNS];
    struct appsrv_conn conns[APPSRV_CONNS];
};

static void reply(int fd, struct json_object *o, int pass_fd)
{
    size_t len;
    const char *js = sw_json_compact(o, &len);
    char cbuf[CMSG_SPACE(sizeof(int))];
    struct iovec iov = { (void *)js, len };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

    if (pass_fd >= 0) {
        struct cmsghdr *cm;
        memset(cbuf, 0, sizeof(cbuf));
        mh.msg_control = cbuf;
        mh.msg_controllen = sizeof(cbuf);
        cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cm), &pass_fd, sizeof(int));
    }
    if (sendmsg(fd, &mh, MSG_NOSIGNAL) < 0)
        sw_log_debug("app socket: reply lost: %s", strerror(errno));
}

static struct json_object *err_obj(const char *code, const char *msg)
{
    struct json_object *o = json_object_new_object(), *e = json_object_new_object();
    json_object_object_add(o, "ok", json_object_new_boolean(false));
    json_object_object_add(e, "code", json_object_new_string(code));
    json_object_object_add(e, "message", json_object_new_string(msg));
    json_object_object_add(o, "error", e);
    return o;
}

/* Runs fn on the loop with body (owned) and port n; returns the status, fd in *fd_out. */
static int loop_call(struct visor *v, void (*fn)(struct visor *, struct visor_cmd *),
                     struct json_object *body, uint64_t n, int timeout_ms, int *fd_out,
                     struct json_object **resp)
{
    struct visor_cmd *c = visor_cmd_new(VISOR_CMD_CALL);
    int status, rc;

    *fd_out = -1;
    *resp = NULL;
    if (!c) {
        json_object_put(body);
        return 500;
    }
    c->fn = fn;
    c->n = n;
    c->body = body;
    rc = visor_cmdq_call(&v->q, c, timeout_ms);
    if (rc) {
        visor_cmd_release(&v->q, c);
        return rc == SW_ETIMEDOUT ? 504 : 503;
    }
    status = c->status;
    *fd_out = c->fd;
    c->fd = -1;
    *resp = c->body;
    c->body = NULL;
    visor_cmd_release(&v->q, c);
    return status;
}

static const char *resp_message(struct json_object *o, const char *dflt)
{
    const char *m = json_object_get_string(json_object_object_get(json_object_object_get(o, "error"), "message"));
    return m ? m : dflt;
}

static void do_listen(struct visor_appsrv *s, int cfd, struct json_object *req)
{
    uint64_t port = 0;
    struct json_object *resp = NULL, *o;
    int fd, st;

    if (sw_json_get_u64(req, "port", "", &port, NULL) || port == 0 || port > 65535) {
        o = err_obj("invalid_port", "field 'port': must be 1..65535");
        reply(cfd, o, -1);
        json_object_put(o);
        return;
    }
    st = loop_call(s->v, visor_group_cmd_listen, NULL, port, VISOR_CMD_TIMEOUT_MS, &fd, &resp);
    if (st == 200 && fd >= 0) {
        o = json_object_new_object();
        json_object_object_add(o, "ok", json_object_new_boolean(true));
        json_object_object_add(o, "port", json_object_new_int((int)port));
        reply(cfd, o, fd);
        close(fd);
    } else {
        const char *code = json_object_get_string(json_object_object_get(json_object_object_get(resp, "error"), "code"));
        o = err_obj(code ? code : "unavailable", resp_message(resp, "the visor did not answer"));
        reply(cfd, o, -1);
    }
    json_object_put(o);
    json_object_put(resp);
}

/* POST /routes to the route finder: the first forward and reverse path (new references). */
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

static int find_routes_avoiding(struct visor *v, const struct sw_pk *dst, int count, const char *failed,
                                struct json_object *old, struct json_object **fwd, struct json_object **rev,
                                struct sw_error *err);

static int find_routes(struct visor *v, const struct sw_pk *dst, struct json_object **fwd,
                       struct json_object **rev, struct sw_error *err)
{
    return find_routes_avoiding(v, dst, 1, NULL, NULL, fwd, rev, err);
}

/* POST /routes asking for count paths per direction; picks the best of each (best_path). */
static int find_routes_avoiding(struct visor *v, const struct sw_pk *dst, int count, const char *failed,
                                struct json_object *old, struct json_object **fwd, struct json_object **rev,
                                struct sw_error *err)
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
static int ask_setup_node(struct visor_appsrv *s, size_t idx, bool rebind, const struct sw_pk *dst,
                          uint16_t dst_port, uint16_t src_port, struct json_object *fwd,
                          struct json_object *rev, struct json_object **group, const char **code,
                          struct sw_error *err)
{
    struct visor *v = s->v;
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
    if ((rc = sw_msg_dial(mc, &v->cfg.setup_nodes[idx], SW_SETUP_PORT, rebind ? 5000 : 10000, &fd, &refusal, err)))
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
    if (rc == SW_OK && sw_io_wait(fd, POLLIN, sw_io_within(APPSRV_SETUP_MS, &s->stopping)))
        rc = sw_error_set(err, SW_ETIMEDOUT, "the setup node did not answer within %d ms", APPSRV_SETUP_MS);
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
                          resp_message(resp, ""));
    } else if (!(*group = json_object_get(json_object_object_get(resp, "group")))) {
        rc = sw_error_set(err, SW_EPROTO, "the setup node's answer has no group");
    }
    json_object_put(resp);
    return rc;
}

/* ask_setup_node on each key of routing.setup_nodes in turn until one sets the group up. */
static int ask_setup_nodes(struct visor_appsrv *s, bool rebind, const struct sw_pk *dst, uint16_t dst_port,
                           uint16_t src_port, struct json_object *fwd, struct json_object *rev,
                           struct json_object **group, const char **code, struct sw_error *err)
{
    int rc = ask_setup_node(s, 0, rebind, dst, dst_port, src_port, fwd, rev, group, code, err);
    for (size_t i = 1; rc && i < s->v->cfg.n_setup_nodes && !s->stopping; i++) {
        sw_log_info("setup node %zu failed (%s): trying the next one", i - 1, err->msg);
        rc = ask_setup_node(s, i, rebind, dst, dst_port, src_port, fwd, rev, group, code, err);
    }
    return rc;
}

static void do_dial(struct visor_appsrv *s, int cfd, struct json_object *req)
{
    struct visor *v = s->v;
    struct sw_error err = { 0 };
    struct json_object *fwd = NULL, *rev = NULL, *group = NULL, *body, *resp = NULL, *o;
    const char *code = "invalid_request";
    struct sw_pk dst;
    uint64_t port = 0;
    uint16_t lport;
    int fd = -1, st;

    if (sw_json_get_pk(req, "pk", "", &dst, &err) ||
        sw_json_get_u64(req, "port", "", &port, &err) || port == 0 || port > 65535) {
        if (!err.msg[0])
            sw_error_set(&err, SW_EINVAL, "field 'port': must be 1..65535");
        goto fail;
    }
    fwd = json_object_get(json_object_object_get(req, "forward"));
    rev = json_object_get(json_object_object_get(req, "reverse"));
    if (!fwd != !rev) {
        sw_error_set(&err, SW_EINVAL, "give both \"forward\" and \"reverse\" or neither");
        goto fail;
    }
    if (!fwd) {
        code = "no_route";
        if (find_routes(v, &dst, &fwd, &rev, &err))
            goto fail;
    }
    for (int tries = 0;; tries++) { /* a port no live group end of ours uses */
        int pfd = -1;
        lport = (uint16_t)(APPSRV_EPHEMERAL_MIN + (s->next_port++ % (65536 - APPSRV_EPHEMERAL_MIN)));
        st = loop_call(v, visor_group_cmd_port_free, NULL, lport, VISOR_CMD_TIMEOUT_MS, &pfd, &resp);
        json_object_put(resp);
        resp = NULL;
        if (pfd >= 0)
            close(pfd);
        if (st == 200)
            break;
        if (st != 409 || tries >= 64) {
            code = "busy";
            sw_error_set(&err, SW_EIO, "no free local port");
            goto fail;
        }
    }
    if (ask_setup_nodes(s, false, &dst, (uint16_t)port, lport, fwd, rev, &group, &code, &err))
        goto fail;
    body = json_object_new_object();
    json_object_object_add(body, "local_port", json_object_new_int(lport));
    json_object_object_add(body, "remote_pk", sw_json_pk(&dst));
    json_object_object_add(body, "remote_port", json_object_new_int((int)port));
    json_object_object_add(body, "send_tp", json_object_get(json_object_object_get(group, "send_tp")));
    json_object_object_add(body, "send_rid", json_object_get(json_object_object_get(group, "send_rid")));
    json_object_object_add(body, "recv_rid", json_object_get(json_object_object_get(group, "recv_rid")));
    json_object_object_add(body, "forward", json_object_get(fwd));
    json_object_object_add(body, "reverse", json_object_get(rev));
    st = loop_call(v, visor_group_cmd_dial, body, 0, VISOR_GROUP_HS_TIMEOUT_MS + 2000, &fd, &resp);
    if (st != 200 || fd < 0) {
        const char *c = json_object_get_string(json_object_object_get(json_object_object_get(resp, "error"), "code"));
        code = c ? c : "route_failed";
        sw_error_set(&err, SW_EIO, "%s", resp_message(resp, "the end-to-end handshake did not finish"));
        json_object_put(resp);
        goto fail;
    }
    json_object_put(resp);
    o = json_object_new_object();
    json_object_object_add(o, "ok", json_object_new_boolean(true));
    json_object_object_add(o, "local_port", json_object_new_int(lport));
    reply(cfd, o, fd);
    json_object_put(o);
    close(fd);
    goto out;
fail:
    sw_log_info("app dial failed: %s: %s", code, err.msg);
    o = err_obj(code, err.msg);
    reply(cfd, o, -1);
    json_object_put(o);
out:
    json_object_put(fwd);
    json_object_put(rev);
    json_object_put(group);
}

/* ---- re-establishing a broken route group (docs/routing.md §7) -------------------------- */

struct reroute_job {
    struct visor_appsrv *s;
    struct visor_group_reroute r;
};

static void *reroute_main(void *arg)
{
    struct reroute_job *j = arg;
    struct visor_appsrv *s = j->s;
    struct visor *v = s->v;
    struct sw_error err = { 0 };
    struct json_object *old = NULL, *fwd = NULL, *rev = NULL, *group = NULL, *body, *resp = NULL;
    const char *code = "no_route";
    int fd = -1, rc;

    if (j->r.old_paths)
        sw_json_parse(j->r.old_paths, strlen(j->r.old_paths), &old, NULL);
    rc = find_routes_avoiding(v, &j->r.dst, 5, j->r.failed_tp, old, &fwd, &rev, &err);
    if (rc == SW_OK)
        rc = ask_setup_nodes(s, true, &j->r.dst, j->r.dst_port, j->r.src_port, fwd, rev, &group, &code, &err);
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
    loop_call(v, visor_group_cmd_rebind, body, j->r.serial, VISOR_CMD_TIMEOUT_MS, &fd, &resp);
    if (fd >= 0)
        close(fd);
    json_object_put(resp);
    json_object_put(old);
    json_object_put(fwd);
    json_object_put(rev);
    json_object_put(group);
    free(j->r.old_paths);
    free(j);
    s->jobs--;
    return NULL;
}

int visor_appsrv_reroute(struct visor *v, struct visor_group_reroute *r)
{
    struct visor_appsrv *s = v->router ? v->router->appsrv : NULL;
    struct reroute_job *j;
    pthread_attr_t attr;
    pthread_t th;
    int rc;

    if (!s || s->stopping || !(j = calloc(1, sizeof(*j)))) {
        free(r->old_paths);
        r->old_paths = NULL;
        return SW_EINVAL;
    }
    j->s = s;
    j->r = *r;
    r->old_paths = NULL;
    s->jobs++;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    rc = pthread_create(&th, &attr, reroute_main, j);
    pthread_attr_destroy(&attr);
    if (rc) {
        s->jobs--;
        free(j->r.old_paths);
        free(j);
        return SW_EIO;
    }
    return SW_OK;
}

static void conn_main(void *arg)
{
    struct appsrv_conn *ac = arg;
    struct visor_appsrv *s = ac->s;
    struct pollfd pfd = { .fd = ac->fd, .events = POLLIN };
    char *buf = malloc(APPSRV_MSG_MAX);
    struct visor_appsrv_req rq;
    struct sw_error err = { 0 };
    const char *code;
    ssize_t n = -1;

    if (buf && poll(&pfd, 1, APPSRV_REQ_MS) == 1)
        n = recv(ac->fd, buf, APPSRV_MSG_MAX, 0);
    if (n > 0 && visor_appsrv_req_parse(buf, (size_t)n, &rq, &code, &err) == SW_OK) {
        if (rq.op == VISOR_APPSRV_OP_LISTEN)
            do_listen(s, ac->fd, rq.root);
        else
            do_dial(s, ac->fd, rq.root);
        visor_appsrv_req_free(&rq);
    } else if (n > 0) {
        struct json_object *o = err_obj(code, err.msg);
        reply(ac->fd, o, -1);
        json_object_put(o);
    }
    free(buf);
}

static void *acceptor_main(void *arg)
{
    struct visor_appsrv *s = arg;

    while (!s->stopping) {
        struct pollfd pfd = { .fd = s->fd, .events = POLLIN };
        int fd, slot;

        visor_connpool_reap(&s->pool, false);
        if (poll(&pfd, 1, APPSRV_POLL_MS) != 1)
            continue;
        if ((fd = accept4(s->fd, NULL, NULL, SOCK_CLOEXEC)) < 0)
            continue;
        if ((slot = visor_connpool_acquire(&s->pool, 0, NULL)) < 0) {
            struct json_object *o = err_obj("busy", "too many app requests at once");
            reply(fd, o, -1);
            json_object_put(o);
            close(fd);
            continue;
        }
        s->conns[slot] = (struct appsrv_conn){ .s = s, .fd = fd };
        if (visor_connpool_start(&s->pool, slot, fd, conn_main, &s->conns[slot]))
            close(fd);
    }
    return NULL;
}

int visor_appsrv_start(struct visor *v, struct sw_error *err)
{
    struct visor_appsrv *s;
    struct sockaddr_un sa = { .sun_family = AF_UNIX };

    if (!v->router)
        return SW_OK;
    if ((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", v->cfg.data_dir,
                         VISOR_APPSRV_SOCKET_NAME) >= sizeof(sa.sun_path))
        return sw_error_set(err, SW_EINVAL, "field 'data_dir': too long for the app socket path");
    if (!(s = calloc(1, sizeof(*s))))
        return sw_error_set(err, SW_ENOMEM, "out of memory");
    s->v = v;
    snprintf(s->path, sizeof(s->path), "%s", sa.sun_path);
    visor_connpool_init(&s->pool, s->slots, APPSRV_CONNS);
    unlink(s->path); /* the data directory is locked: a leftover socket is ours */
    if ((s->fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0)) < 0 ||
        bind(s->fd, (struct sockaddr *)&sa, sizeof(sa)) || chmod(s->path, 0600) || listen(s->fd, 64)) {
        int e = errno;
        if (s->fd >= 0)
            close(s->fd);
        visor_connpool_destroy(&s->pool);
        free(s);
        return sw_error_set(err, SW_EIO, "app socket %s: %s", sa.sun_path, strerror(e));
    }
    v->router->appsrv = s;
    if (pthread_create(&s->acceptor, NULL, acceptor_main, s)) {
        visor_appsrv_stop(v);
        return sw_error_set(err, SW_EIO, "cannot start the app socket thread");
    }
    s->acceptor_started = true;
    sw_log_info("app socket %s", s->path);
    return SW_OK;
}

void visor_appsrv_stop(struct visor *v)
{
    struct visor_appsrv *s = v->router ? v->router->appsrv : NULL;
    if (!s)
        return;
    s->stopping = true;
    if (s->acceptor_started)
        pthread_join(s->acceptor, NULL);
    visor_connpool_reap(&s->pool, true);
    while (s->jobs > 0) /* re-establishment threads: the loop is gone, they end quickly */
        usleep(10000);
    close(s->fd);
    unlink(s->path);
    visor_connpool_destroy(&s->pool);
    free(s);
    v->router->appsrv = NULL;
}
