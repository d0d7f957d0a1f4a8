/* app.c — the app side of the visor's app socket (app.h; the server is visor/appsrv.c). */
#include "visor/app/app.h"
#include "common/bytes.h"
#include "common/json.h"
#include "common/num.h"

#include <errno.h>
#include <json-c/json.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define APP_REPLY_MAX 4096
#define APP_DIAL_TIMEOUT_MS 60000

/* Receives one message (and an fd when one is attached) within timeout_ms. */
static ssize_t recv_with_fd(int s, char *buf, size_t cap, int *fd, int timeout_ms)
{
    char cbuf[CMSG_SPACE(sizeof(int))];
    struct iovec iov = { buf, cap };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                         .msg_controllen = sizeof(cbuf) };
    struct pollfd pfd = { .fd = s, .events = POLLIN };
    struct cmsghdr *cm;
    ssize_t n;
    int r;

    *fd = -1;
    while ((r = poll(&pfd, 1, timeout_ms)) < 0 && errno == EINTR)
        ;
    if (r == 0)
        return -2;
    if (r < 0)
        return -1;
    while ((n = recvmsg(s, &mh, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR)
        ;
    if (n < 0)
        return -1;
    for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS &&
            cm->cmsg_len == CMSG_LEN(sizeof(int)))
            memcpy(fd, CMSG_DATA(cm), sizeof(int));
    return n;
}

static int request(const char *sock, const char *req, int timeout_ms, int *fd, struct sw_error *err)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    char buf[APP_REPLY_MAX];
    struct json_object *o = NULL;
    int s, rc = SW_OK;
    ssize_t n;

    *fd = -1;
    if (!sock && !(sock = getenv(SW_APP_SOCKET_ENV)))
        return sw_error_set(err, SW_EINVAL, "%s is not set (not started by a visor?)", SW_APP_SOCKET_ENV);
    if (strlen(sock) >= sizeof(sa.sun_path))
        return sw_error_set(err, SW_EINVAL, "app socket path too long");
    memcpy(sa.sun_path, sock, strlen(sock) + 1);
    if ((s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0)) < 0)
        return sw_error_set(err, SW_EIO, "socket: %s", strerror(errno));
    if (connect(s, (struct sockaddr *)&sa, sizeof(sa))) {
        rc = sw_error_set(err, SW_EIO, "cannot reach the visor at %s: %s", sock, strerror(errno));
        goto out;
    }
    if (send(s, req, strlen(req), MSG_NOSIGNAL) < 0) {
        rc = sw_error_set(err, SW_EIO, "send to the visor: %s", strerror(errno));
        goto out;
    }
    n = recv_with_fd(s, buf, sizeof(buf), fd, timeout_ms);
    if (n <= 0) {
        rc = sw_error_set(err, n == -2 ? SW_ETIMEDOUT : SW_EIO, "the visor did not answer");
        goto out;
    }
    if (sw_json_parse(buf, (size_t)n, &o, err)) {
        rc = SW_EPROTO;
        goto out;
    }
    if (!json_object_get_boolean(json_object_object_get(o, "ok"))) {
        struct json_object *e = json_object_object_get(o, "error");
        const char *code = json_object_get_string(json_object_object_get(e, "code"));
        const char *msg = json_object_get_string(json_object_object_get(e, "message"));
        code = code ? code : "error";
        rc = strcmp(code, "port_in_use") == 0 ? SW_EEXIST
             : strcmp(code, "no_route") == 0 ? SW_ENOTFOUND
             : strcmp(code, "setup_failed") == 0 ? SW_EPERM : SW_EIO;
        sw_error_set(err, rc, "%s: %s", code, msg ? msg : "");
    } else if (*fd < 0) {
        rc = sw_error_set(err, SW_EPROTO, "the visor sent no file descriptor");
    }
out:
    if (rc && *fd >= 0) {
        close(*fd);
        *fd = -1;
    }
    json_object_put(o);
    close(s);
    return rc;
}

int sw_app_dial_opts(const char *sock, const struct sw_pk *pk, uint16_t port, const struct sw_app_dial_opts *o,
                     int *fd, struct sw_error *err)
{
    char hex[SW_PK_HEX_LEN + 1], *req;
    const char *fwd = o ? o->forward_json : NULL, *rev = o ? o->reverse_json : NULL;
    const char *mode = o && o->datagram ? "datagram" : "stream";
    size_t cap;
    int rc;

    if (!fwd != !rev)
        return sw_error_set(err, SW_EINVAL, "give both paths or neither");
    sw_pk_to_hex(pk, hex);
    cap = 256 + (fwd ? strlen(fwd) + strlen(rev) : 0);
    if (!(req = malloc(cap)))
        return sw_error_set(err, SW_ENOMEM, "out of memory");
    if (fwd)
        snprintf(req, cap, "{\"op\":\"dial\",\"pk\":\"%s\",\"port\":%u,\"mode\":\"%s\",\"forward\":%s,\"reverse\":%s}",
                 hex, port, mode, fwd, rev);
    else
        snprintf(req, cap, "{\"op\":\"dial\",\"pk\":\"%s\",\"port\":%u,\"mode\":\"%s\"}", hex, port, mode);
    rc = request(sock, req, APP_DIAL_TIMEOUT_MS, fd, err);
    free(req);
    return rc;
}

int sw_app_dial_path(const char *sock, const struct sw_pk *pk, uint16_t port, const char *forward_json,
                     const char *reverse_json, int *fd, struct sw_error *err)
{
    struct sw_app_dial_opts o = { .forward_json = forward_json, .reverse_json = reverse_json };
    return sw_app_dial_opts(sock, pk, port, &o, fd, err);
}

int sw_app_dial(const char *sock, const struct sw_pk *pk, uint16_t port, int *fd, struct sw_error *err)
{
    return sw_app_dial_opts(sock, pk, port, NULL, fd, err);
}

int sw_app_own_port(uint16_t dflt, uint16_t *port, struct sw_error *err)
{
    const char *s = getenv(SW_APP_PORT_ENV);
    long v = dflt;

    if (s && *s && sw_parse_long(s, 1, 65535, &v))
        return sw_error_set(err, SW_EINVAL, SW_APP_PORT_ENV " '%.16s' is not a port (1-65535)", s);
    *port = (uint16_t)v;
    return SW_OK;
}

int sw_app_listen_mode(const char *sock, uint16_t port, bool datagram, int *listener_fd, struct sw_error *err)
{
    char req[96];
    snprintf(req, sizeof(req), "{\"op\":\"listen\",\"port\":%u,\"mode\":\"%s\"}", port,
             datagram ? "datagram" : "stream");
    return request(sock, req, 10000, listener_fd, err);
}

int sw_app_listen(const char *sock, uint16_t port, int *listener_fd, struct sw_error *err)
{
    return sw_app_listen_mode(sock, port, false, listener_fd, err);
}

int sw_app_accept(int listener_fd, int timeout_ms, int *fd, struct sw_pk *remote, uint16_t *remote_port,
                  struct sw_error *err)
{
    char buf[64];
    int got = -1;
    ssize_t n = recv_with_fd(listener_fd, buf, sizeof(buf), &got, timeout_ms);

    if (n == -2)
        return sw_error_set(err, SW_ETIMEDOUT, "no connection within %d ms", timeout_ms);
    if (n <= 0) {
        if (got >= 0)
            close(got);
        return sw_error_set(err, SW_EIO, "the visor closed the listener");
    }
    if (n != SW_PK_LEN + 2 || got < 0) {
        if (got >= 0)
            close(got);
        return sw_error_set(err, SW_EPROTO, "malformed accept message (%zd bytes)", n);
    }
    if (remote)
        memcpy(remote->b, buf, SW_PK_LEN);
    if (remote_port)
        *remote_port = sw_get_u16((const uint8_t *)buf + SW_PK_LEN);
    *fd = got;
    return SW_OK;
}
