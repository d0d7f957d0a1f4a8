/* appsrv.c — the app API (docs/routing.md §5): a unix SOCK_SEQPACKET socket at
 * data_dir/app.sock (SKYWIRE_APP_SOCKET for apps). Each request is one connection carrying
 * one JSON message; the answer is one JSON message, with a file descriptor attached
 * (SCM_RIGHTS) when it succeeded:
 *
 *   {"op":"listen","port":N[,"mode":M]}           -> listener fd (SOCK_SEQPACKET; each
 *        connection arrives as 34 bytes: remote pk || remote port u16 BE, with its fd)
 *   {"op":"dial","pk":"<hex>","port":N[,"mode":M][,"forward":[hops],"reverse":[hops]]}
 *                                                 -> connection fd
 * M is "stream" (default: a SOCK_STREAM fd) or "datagram" (a SOCK_SEQPACKET fd).
 *
 * A dial gets its route from route_acquire.c (the route finder unless the app gave the paths,
 * then a setup node), then has the loop run the end-to-end handshake (group.c). All of that
 * blocks, so every connection is served on its own thread (at most APPSRV_CONNS), never on
 * the loop. visor_appsrv_reroute runs route_acquire.c's re-establishment on a detached thread
 * when a group's route broke or moves (docs/routing.md §7); visor_appsrv_stop waits for those
 * threads. */
#include "visor/router.h"
#include "visor/appsrv_proto.h"
#include "visor/connpool.h"
#include "visor/route_acquire.h"
#include "common/json.h"
#include "common/log.h"

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

static const char *resp_message(struct json_object *o, const char *dflt)
{
    const char *m = json_object_get_string(json_object_object_get(json_object_object_get(o, "error"), "message"));
    return m ? m : dflt;
}

/* "stream" or "datagram" (checked by visor_appsrv_req_parse). */
static const char *request_mode(struct json_object *req)
{
    const char *m = json_object_get_string(json_object_object_get(req, "mode"));
    return m && !strcmp(m, "datagram") ? "datagram" : "stream";
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
    o = json_object_new_object();
    json_object_object_add(o, "mode", json_object_new_string(request_mode(req)));
    st = visor_cmd_call_fn(s->v, visor_group_cmd_listen, o, port, VISOR_CMD_TIMEOUT_MS, &fd, &resp);
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
        if (visor_route_find(v, &dst, 1, NULL, NULL, &fwd, &rev, &err))
            goto fail;
    }
    for (int tries = 0;; tries++) { /* a port no live group end of ours uses */
        int pfd = -1;
        lport = (uint16_t)(APPSRV_EPHEMERAL_MIN + (s->next_port++ % (65536 - APPSRV_EPHEMERAL_MIN)));
        st = visor_cmd_call_fn(v, visor_group_cmd_port_free, NULL, lport, VISOR_CMD_TIMEOUT_MS, &pfd, &resp);
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
    if (visor_route_setup(v, &s->stopping, false, &dst, (uint16_t)port, lport, fwd, rev, &group, &code, &err))
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
    json_object_object_add(body, "mode", json_object_new_string(request_mode(req)));
    st = visor_cmd_call_fn(v, visor_group_cmd_dial, body, 0, VISOR_GROUP_HS_TIMEOUT_MS + 2000, &fd, &resp);
    if (st != 200 || fd < 0) {
        const char *c = json_object_get_string(json_object_object_get(json_object_object_get(resp, "error"), "code"));
        code = c ? c : "route_failed"; /* borrowed from resp: put at out */
        sw_error_set(&err, SW_EIO, "%s", resp_message(resp, "the end-to-end handshake did not finish"));
        goto fail;
    }
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
    json_object_put(resp);
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

    visor_route_reacquire(s->v, &j->r, &s->stopping);
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
