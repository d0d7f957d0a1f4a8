/* msg_client_listen.c — listening ports of the messaging client (loop thread).
 *
 * A listener is an AF_UNIX SOCK_SEQPACKET socketpair: the user holds one end (returned by
 * sw_msg_listen), the loop the other. Each established incoming stream is sent over it as
 * one message — the dialer's public key (32 bytes) and port (u16 big-endian) — with the
 * stream's user fd attached (SCM_RIGHTS); sw_msg_accept receives it. When the user end is
 * closed the loop sees EOF/HUP on its end and stops listening. Streams that cannot be sent
 * yet (the pair's buffer is full) wait in a bounded backlog. */
#include "common/msg_client_internal.h"
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct mc_listener *mc_listener_find(struct sw_msg_client *c, uint16_t port)
{
    struct mc_listener *l = c->listeners;
    while (l && l->port != port)
        l = l->next;
    return l;
}

static void listener_free(struct mc_listener *l)
{
    struct sw_msg_client *c = l->c;
    struct mc_listener **pp = &c->listeners;

    while (*pp && *pp != l)
        pp = &(*pp)->next;
    if (*pp)
        *pp = l->next;
    while (l->head)
        mc_stream_close(l->head, 1, MC_DIAL_RESET); /* unlinks itself from the backlog */
    event_free(l->ev_rd);
    event_free(l->ev_wr);
    close(l->fd);
    sw_log_debug("stopped listening on port %u", l->port);
    free(l);
}

/* 1 = sent, 0 = the pair is full, -1 = the user closed the listener. */
static int send_stream(struct mc_listener *l, struct mc_stream *st)
{
    uint8_t hdr[MC_LISTEN_HDR_LEN];
    union { struct cmsghdr h; char b[CMSG_SPACE(sizeof(int))]; } ctl;
    struct iovec iov = { .iov_base = hdr, .iov_len = sizeof(hdr) };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b,
                        .msg_controllen = sizeof(ctl.b) };
    struct cmsghdr *ch;
    ssize_t n;

    memcpy(hdr, st->peer.b, SW_PK_LEN);
    sw_put_u16(hdr + SW_PK_LEN, st->remote_port);
    memset(&ctl, 0, sizeof(ctl));
    ch = CMSG_FIRSTHDR(&m);
    ch->cmsg_level = SOL_SOCKET;
    ch->cmsg_type = SCM_RIGHTS;
    ch->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(ch), &st->user_fd, sizeof(int));
    do
        n = sendmsg(l->fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n == (ssize_t)sizeof(hdr)) {
        close(st->user_fd); /* the user's copy is in flight */
        st->user_fd = -1;
        return 1;
    }
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) ? 0 : -1;
}

static void backlog_append(struct mc_listener *l, struct mc_stream *st)
{
    st->listener = l;
    st->lnext = NULL;
    if (l->tail)
        l->tail->lnext = st;
    else
        l->head = st;
    l->tail = st;
    l->n_pending++;
    event_add(l->ev_wr, NULL);
}

void mc_listener_deliver(struct mc_stream *st)
{
    struct mc_listener *l = mc_listener_find(st->c, st->local_port);
    int rc;

    if (!l) {
        mc_stream_close(st, 1, MC_DIAL_RESET); /* stopped listening meanwhile */
        return;
    }
    if (l->head) {
        backlog_append(l, st);
        return;
    }
    rc = send_stream(l, st);
    if (rc == 0)
        backlog_append(l, st);
    else if (rc < 0)
        listener_free(l); /* st is not in the backlog: reset it too */
    if (rc < 0)
        mc_stream_close(st, 1, MC_DIAL_RESET);
}

static void on_listener_writable(evutil_socket_t fd, short what, void *arg)
{
    struct mc_listener *l = arg;
    while (l->head) {
        struct mc_stream *st = l->head;
        int rc = send_stream(l, st);
        if (rc == 0)
            return;
        if (rc < 0) {
            listener_free(l);
            return;
        }
        l->head = st->lnext;
        if (!l->head)
            l->tail = NULL;
        l->n_pending--;
        st->listener = NULL;
        st->lnext = NULL;
    }
    event_del(l->ev_wr);
}

/* The user never writes to its end: readable means EOF (closed) or an error. */
static void on_listener_readable(evutil_socket_t fd, short what, void *arg)
{
    struct mc_listener *l = arg;
    uint8_t b[64];
    ssize_t n = recv(l->fd, b, sizeof(b), MSG_DONTWAIT);
    if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)))
        return;
    listener_free(l);
}

void mc_listen_cmd(struct sw_msg_client *c, struct mc_cmd *cmd)
{
    struct mc_listener *l = NULL;
    int sv[2] = { -1, -1 };

    cmd->rc = SW_OK;
    if (mc_listener_find(c, cmd->port)) {
        cmd->rc = SW_EEXIST;
        snprintf(cmd->why, sizeof(cmd->why), "port %u is already listening", cmd->port);
        goto out;
    }
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0 ||
        fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK) != 0 || !(l = calloc(1, sizeof(*l))) ||
        !(l->ev_rd = event_new(c->base, sv[0], EV_READ | EV_PERSIST, on_listener_readable, l)) ||
        !(l->ev_wr = event_new(c->base, sv[0], EV_WRITE | EV_PERSIST, on_listener_writable, l))) {
        cmd->rc = SW_EIO;
        snprintf(cmd->why, sizeof(cmd->why), "cannot create the listener socket: %s", strerror(errno));
        goto out;
    }
    l->c = c;
    l->port = cmd->port;
    l->roles = cmd->roles;
    l->fd = sv[0];
    l->next = c->listeners;
    c->listeners = l;
    event_add(l->ev_rd, NULL);
    cmd->fd = sv[1];
    sw_log_debug("listening on port %u", l->port);
    l = NULL;
    sv[0] = sv[1] = -1;
out:
    if (l) {
        if (l->ev_rd)
            event_free(l->ev_rd);
        free(l);
    }
    if (sv[0] >= 0)
        close(sv[0]);
    if (sv[1] >= 0)
        close(sv[1]);
    mc_cmd_complete(c, cmd);
}

void mc_unlisten_cmd(struct sw_msg_client *c, struct mc_cmd *cmd)
{
    struct mc_listener *l = mc_listener_find(c, cmd->port);
    cmd->rc = l ? SW_OK : SW_ENOTFOUND;
    if (l)
        listener_free(l);
    mc_cmd_complete(c, cmd);
}

void mc_listeners_free(struct sw_msg_client *c)
{
    while (c->listeners)
        listener_free(c->listeners);
}
