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
 * node of routing.setup_nodes (messaging port 2) for the route group, then has the loop run
 * the end-to-end handshake (group.c). All of that blocks, so every connection is served on
 * its own thread (at most APPSRV_CONNS), never on the loop. */
#include "visor/router.h"
#include "common/http_client.h"
#include "common/json.h"
#include "common/log.h"
#include "common/msg_client.h"
#include "common/setup_proto.h"

#include <errno.h>
#include <json-c/json.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
    struct appsrv *s;
    int fd;
    pthread_t th;
    bool used, done;
};

struct appsrv {
    struct visor *v;
    int fd;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    pthread_t acceptor;
    bool acceptor_started;
    atomic_bool stopping;
    pthread_mutex_t mu;
    _Atomic unsigned next_port;
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
static int loop_call(struct visor *v, void (*fn)(struct visor *, struct vcmd *), struct json_object *body,
                     uint64_t n, int timeout_ms, int *fd_out, struct json_object **resp)
{
    struct vcmd *c = vcmd_new(VCMD_CALL);
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
    rc = cmdq_call(&v->q, c, timeout_ms);
    if (rc) {
        vcmd_release(&v->q, c);
        return rc == SW_ETIMEDOUT ? 504 : 503;
    }
    status = c->status;
    *fd_out = c->fd;
    c->fd = -1;
    *resp = c->body;
    c->body = NULL;
    vcmd_release(&v->q, c);
    return status;
}

static const char *resp_message(struct json_object *o, const char *dflt)
{
    const char *m = json_object_get_string(json_object_object_get(json_object_object_get(o, "error"), "message"));
    return m ? m : dflt;
}

static void do_listen(struct appsrv *s, int cfd, struct json_object *req)
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
    st = loop_call(s->v, group_cmd_listen, NULL, port, VISOR_CMD_TIMEOUT_MS, &fd, &resp);
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
static int find_routes(struct visor *v, const struct sw_pk *dst, struct json_object **fwd,
                       struct json_object **rev, struct sw_error *err)
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
    snprintf(body, sizeof(body), "{\"edges\":[[\"%s\",\"%s\"]],\"opts\":{\"min_hops\":1,\"max_hops\":%d,\"count\":1}}",
             a, b, SW_SETUP_MAX_HOPS);
    snprintf(key, sizeof(key), "%s:%s", a, b);
    if (!(http = sw_http_client_new(&opts)))
        return sw_error_set(err, SW_ENOMEM, "out of memory");
    rc = sw_http_do(http, "POST", url, NULL, body, strlen(body), &res, err);
    if (rc == SW_OK && res.status != 200)
        rc = sw_error_set(err, res.status == 404 ? SW_ENOTFOUND : SW_EIO, "route finder: HTTP %ld", res.status);
    if (rc == SW_OK && (rc = sw_json_parse(res.body, res.body_len, &root, err)) == SW_OK) {
        pair = json_object_object_get(root, key);
        f = json_object_array_get_idx(json_object_object_get(pair, "forward"), 0);
        r = json_object_array_get_idx(json_object_object_get(pair, "reverse"), 0);
        if (!f || !r) {
            rc = sw_error_set(err, SW_ENOTFOUND, "route finder: no forward and reverse path");
        } else {
            *fwd = json_object_get(f);
            *rev = json_object_get(r);
        }
    }
    json_object_put(root);
    sw_http_result_free(&res);
    sw_http_client_free(http);
    return rc;
}

/* route_group to the first setup node; *group = the response's "group" (new reference). */
/* Waits until fd is readable, for at most ms, giving up early when the visor stops. */
static bool wait_readable(struct appsrv *s, int fd, int ms)
{
    for (int waited = 0; waited < ms && !s->stopping; waited += APPSRV_POLL_MS) {
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        if (poll(&pfd, 1, APPSRV_POLL_MS) > 0)
            return true;
    }
    return false;
}

static int ask_setup_node(struct appsrv *s, const struct sw_pk *dst, uint16_t dst_port, uint16_t src_port,
                          struct json_object *fwd, struct json_object *rev, struct json_object **group,
                          const char **code, struct sw_error *err)
{
    struct visor *v = s->v;
    struct sw_msg_client *mc = dmsg_client(v);
    struct json_object *req, *src, *dsto, *resp = NULL;
    char *out = NULL;
    size_t len;
    int fd = -1, refusal = 0, rc;

    *code = "setup_failed";
    if (!mc)
        return sw_error_set(err, SW_EINVAL, "messaging is off in the config: setup nodes are unreachable");
    if (!v->cfg.n_setup_nodes)
        return sw_error_set(err, SW_EINVAL, "no routing.setup_nodes in the config");
    if ((rc = sw_msg_dial(mc, &v->cfg.setup_nodes[0], SW_SETUP_PORT, 10000, &fd, &refusal, err)))
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
    rc = sw_setup_send(fd, req, 5000);
    json_object_put(req);
    if (rc == SW_OK && !wait_readable(s, fd, APPSRV_SETUP_MS))
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

static void do_dial(struct appsrv *s, int cfd, struct json_object *req)
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
    lport = (uint16_t)(APPSRV_EPHEMERAL_MIN + (s->next_port++ % (65536 - APPSRV_EPHEMERAL_MIN)));
    if (ask_setup_node(s, &dst, (uint16_t)port, lport, fwd, rev, &group, &code, &err))
        goto fail;
    body = json_object_new_object();
    json_object_object_add(body, "local_port", json_object_new_int(lport));
    json_object_object_add(body, "remote_pk", sw_json_pk(&dst));
    json_object_object_add(body, "remote_port", json_object_new_int((int)port));
    json_object_object_add(body, "send_tp", json_object_get(json_object_object_get(group, "send_tp")));
    json_object_object_add(body, "send_rid", json_object_get(json_object_object_get(group, "send_rid")));
    json_object_object_add(body, "recv_rid", json_object_get(json_object_object_get(group, "recv_rid")));
    st = loop_call(v, group_cmd_dial, body, 0, GROUP_HS_TIMEOUT_MS + 2000, &fd, &resp);
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

static void *conn_main(void *arg)
{
    struct appsrv_conn *ac = arg;
    struct appsrv *s = ac->s;
    struct pollfd pfd = { .fd = ac->fd, .events = POLLIN };
    char *buf = malloc(APPSRV_MSG_MAX);
    struct json_object *req = NULL;
    const char *op;
    ssize_t n = -1;

    if (buf && poll(&pfd, 1, APPSRV_REQ_MS) == 1)
        n = recv(ac->fd, buf, APPSRV_MSG_MAX, 0);
    if (n > 0 && sw_json_parse(buf, (size_t)n, &req, NULL) == SW_OK &&
        (op = json_object_get_string(json_object_object_get(req, "op")))) {
        if (strcmp(op, "listen") == 0)
            do_listen(s, ac->fd, req);
        else if (strcmp(op, "dial") == 0)
            do_dial(s, ac->fd, req);
        else {
            struct json_object *o = err_obj("unknown_op", "op must be \"listen\" or \"dial\"");
            reply(ac->fd, o, -1);
            json_object_put(o);
        }
    } else if (n > 0) {
        struct json_object *o = err_obj("invalid_request", "a request is one JSON object with \"op\"");
        reply(ac->fd, o, -1);
        json_object_put(o);
    }
    json_object_put(req);
    free(buf);
    pthread_mutex_lock(&s->mu);
    ac->done = true;
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

static void reap(struct appsrv *s, bool all)
{
    for (int i = 0; i < APPSRV_CONNS; i++) {
        struct appsrv_conn *ac = &s->conns[i];
        bool join;
        pthread_mutex_lock(&s->mu);
        join = ac->used && (ac->done || all);
        if (join && !ac->done)
            shutdown(ac->fd, SHUT_RDWR);
        pthread_mutex_unlock(&s->mu);
        if (!join)
            continue;
        pthread_join(ac->th, NULL);
        close(ac->fd);
        ac->used = ac->done = false;
    }
}

static void *acceptor_main(void *arg)
{
    struct appsrv *s = arg;

    while (!s->stopping) {
        struct pollfd pfd = { .fd = s->fd, .events = POLLIN };
        int fd, slot = -1;

        reap(s, false);
        if (poll(&pfd, 1, APPSRV_POLL_MS) != 1)
            continue;
        if ((fd = accept4(s->fd, NULL, NULL, SOCK_CLOEXEC)) < 0)
            continue;
        for (int i = 0; i < APPSRV_CONNS && slot < 0; i++)
            if (!s->conns[i].used)
                slot = i;
        if (slot < 0) {
            struct json_object *o = err_obj("busy", "too many app requests at once");
            reply(fd, o, -1);
            json_object_put(o);
            close(fd);
            continue;
        }
        s->conns[slot] = (struct appsrv_conn){ .s = s, .fd = fd, .used = true };
        if (pthread_create(&s->conns[slot].th, NULL, conn_main, &s->conns[slot])) {
            s->conns[slot].used = false;
            close(fd);
        }
    }
    return NULL;
}

int appsrv_start(struct visor *v, struct sw_error *err)
{
    struct appsrv *s;
    struct sockaddr_un sa = { .sun_family = AF_UNIX };

    if (!v->router)
        return SW_OK;
    if ((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", v->cfg.data_dir, APPSRV_SOCKET_NAME) >=
        sizeof(sa.sun_path))
        return sw_error_set(err, SW_EINVAL, "field 'data_dir': too long for the app socket path");
    if (!(s = calloc(1, sizeof(*s))))
        return sw_error_set(err, SW_ENOMEM, "out of memory");
    s->v = v;
    snprintf(s->path, sizeof(s->path), "%s", sa.sun_path);
    pthread_mutex_init(&s->mu, NULL);
    unlink(s->path); /* the data directory is locked: a leftover socket is ours */
    if ((s->fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0)) < 0 ||
        bind(s->fd, (struct sockaddr *)&sa, sizeof(sa)) || chmod(s->path, 0600) || listen(s->fd, 64)) {
        int e = errno;
        if (s->fd >= 0)
            close(s->fd);
        pthread_mutex_destroy(&s->mu);
        free(s);
        return sw_error_set(err, SW_EIO, "app socket %s: %s", sa.sun_path, strerror(e));
    }
    v->router->appsrv = s;
    if (pthread_create(&s->acceptor, NULL, acceptor_main, s)) {
        appsrv_stop(v);
        return sw_error_set(err, SW_EIO, "cannot start the app socket thread");
    }
    s->acceptor_started = true;
    sw_log_info("app socket %s", s->path);
    return SW_OK;
}

void appsrv_stop(struct visor *v)
{
    struct appsrv *s = v->router ? v->router->appsrv : NULL;
    if (!s)
        return;
    s->stopping = true;
    if (s->acceptor_started)
        pthread_join(s->acceptor, NULL);
    reap(s, true);
    close(s->fd);
    unlink(s->path);
    pthread_mutex_destroy(&s->mu);
    free(s);
    v->router->appsrv = NULL;
}
