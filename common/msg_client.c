/* msg_client.c — life cycle of the messaging client, the command queue between caller
 * threads and the loop thread, and the small public calls (listen, accept, stats).
 * See msg_client_internal.h for the threading model. */
#include "common/msg_client_internal.h"
#include "common/cond.h"
#include "common/http_client.h"
#include "common/log.h"

#include <errno.h>
#include <event2/thread.h>
#include <poll.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static pthread_once_t mc_once = PTHREAD_ONCE_INIT;
static int mc_once_rc;

static void mc_global_init(void)
{
    if (evthread_use_pthreads() != 0 || sw_crypto_init() != SW_OK || sw_http_global_init() != SW_OK)
        mc_once_rc = SW_EIO;
}


void mc_timer_arm(struct event *ev, uint64_t ms)
{
    struct timeval tv = { .tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000 };
    event_add(ev, &tv);
}

void mc_call_enter(struct sw_msg_client *c)
{
    pthread_mutex_lock(&c->mu);
    c->calls++;
    pthread_mutex_unlock(&c->mu);
}

void mc_call_leave(struct sw_msg_client *c)
{
    pthread_mutex_lock(&c->mu);
    if (--c->calls == 0)
        pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->mu);
}

/* ---- command queue ----------------------------------------------------------------- */

int mc_submit(struct sw_msg_client *c, struct mc_cmd *cmd)
{
    cmd->done = false;
    cmd->next = NULL;
    cmd->fd = -1;
    pthread_cond_init(&cmd->cond, NULL);
    pthread_mutex_lock(&c->mu);
    if (c->stopping) {
        pthread_mutex_unlock(&c->mu);
        pthread_cond_destroy(&cmd->cond);
        return SW_EIO;
    }
    if (c->cmd_tail)
        c->cmd_tail->next = cmd;
    else
        c->cmd_head = cmd;
    c->cmd_tail = cmd;
    event_active(c->ev_cmd, EV_READ, 0);
    while (!cmd->done)
        pthread_cond_wait(&cmd->cond, &c->mu);
    pthread_mutex_unlock(&c->mu);
    pthread_cond_destroy(&cmd->cond);
    return SW_OK;
}

void mc_cmd_complete(struct sw_msg_client *c, struct mc_cmd *cmd)
{
    pthread_mutex_lock(&c->mu);
    cmd->done = true;
    pthread_cond_signal(&cmd->cond);
    pthread_mutex_unlock(&c->mu);
}

static void fail_cmd(struct sw_msg_client *c, struct mc_cmd *cmd)
{
    cmd->rc = SW_EIO;
    cmd->result = MC_DIAL_STOPPED;
    snprintf(cmd->why, sizeof(cmd->why), "the messaging client is stopping");
    mc_cmd_complete(c, cmd);
}

static void run_cmd(struct sw_msg_client *c, struct mc_cmd *cmd)
{
    if (c->shutting_down) {
        fail_cmd(c, cmd);
        return;
    }
    switch (cmd->type) {
    case MC_CMD_LISTEN: mc_listen_cmd(c, cmd); break;
    case MC_CMD_UNLISTEN: mc_unlisten_cmd(c, cmd); break;
    case MC_CMD_DIAL: mc_dial_begin(c, cmd); break;
    }
}

static void on_cmd(evutil_socket_t fd, short what, void *arg)
{
    struct sw_msg_client *c = arg;
    struct mc_cmd *list, *next;
    bool stopping;

    pthread_mutex_lock(&c->mu);
    list = c->cmd_head;
    c->cmd_head = c->cmd_tail = NULL;
    stopping = c->stopping;
    pthread_mutex_unlock(&c->mu);
    for (; list; list = next) {
        next = list->next; /* list may be gone once completed */
        run_cmd(c, list);
    }
    if (stopping && !c->shutting_down) {
        c->shutting_down = true;
        mc_sessions_shutdown(c);
    }
}

static void *loop_main(void *arg)
{
    struct sw_msg_client *c = arg;
    event_base_dispatch(c->base);
    return NULL;
}

/* ---- start / stop ------------------------------------------------------------------ */

static int copy_config(struct sw_msg_client *c, const struct sw_msg_client_config *cfg, struct sw_error *err)
{
    c->kp = cfg->kp;
    c->network = cfg->network;
    c->n_slots = cfg->n_servers ? cfg->n_servers : 2;
    c->dial_timeout_ms = cfg->dial_timeout_ms > 0 ? cfg->dial_timeout_ms : 10000;
    if (cfg->discovery_url && *cfg->discovery_url) {
        size_t n = strlen(cfg->discovery_url);
        if (!(c->discovery = strdup(cfg->discovery_url)))
            return sw_error_set(err, SW_ENOMEM, "out of memory");
        while (n > 0 && c->discovery[n - 1] == '/')
            c->discovery[--n] = '\0';
    }
    if (cfg->n_fixed_servers) {
        if (!cfg->servers)
            return sw_error_set(err, SW_EINVAL, "n_fixed_servers is set but servers is NULL");
        c->fixed = calloc(cfg->n_fixed_servers, sizeof(*c->fixed));
        if (!c->fixed)
            return sw_error_set(err, SW_ENOMEM, "out of memory");
        memcpy(c->fixed, cfg->servers, cfg->n_fixed_servers * sizeof(*c->fixed));
        for (size_t i = 0; i < cfg->n_fixed_servers; i++)
            c->fixed[i].address[sizeof(c->fixed[i].address) - 1] = '\0';
        c->n_fixed = cfg->n_fixed_servers;
        if (c->n_slots > c->n_fixed)
            c->n_slots = (unsigned)c->n_fixed;
    }
    if (!c->discovery && !c->n_fixed)
        return sw_error_set(err, SW_EINVAL, "the messaging client needs a discovery URL or fixed servers");
    if (c->n_slots > SW_MSG_DELEGATES_MAX)
        return sw_error_set(err, SW_EINVAL, "n_servers must be at most %d", SW_MSG_DELEGATES_MAX);
    return SW_OK;
}

static int make_events(struct sw_msg_client *c, struct sw_error *err)
{
    if (!(c->base = event_base_new()))
        return sw_error_set(err, SW_EIO, "event_base_new failed");
    c->ev_cmd = event_new(c->base, -1, 0, on_cmd, c);
    if (!c->ev_cmd)
        return sw_error_set(err, SW_ENOMEM, "out of memory");
    return SW_OK;
}

static void client_free(struct sw_msg_client *c)
{
    mc_listeners_free(c);
    mc_sessions_free(c);
    if (c->ev_cmd)
        event_free(c->ev_cmd);
    if (c->base)
        event_base_free(c->base);
    pthread_mutex_lock(&c->mu);
    free(c->wk.publish_body);
    free(c->wk.servers);
    pthread_mutex_unlock(&c->mu);
    pthread_cond_destroy(&c->wk_cond);
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->mu);
    free(c->discovery);
    free(c->fixed);
    sw_keypair_wipe(&c->kp);
    sodium_memzero(c->scratch, sizeof(c->scratch));
    free(c);
}

int sw_msg_client_start(const struct sw_msg_client_config *cfg, struct sw_msg_client **out,
                        struct sw_error *err)
{
    struct sw_msg_client *c;
    int rc;

    pthread_once(&mc_once, mc_global_init);
    if (mc_once_rc)
        return sw_error_set(err, mc_once_rc, "libevent threads, libsodium or libcurl failed to initialise");
    if (!cfg || !out)
        return sw_error_set(err, SW_EINVAL, "missing config");
    if (!(c = calloc(1, sizeof(*c))))
        return sw_error_set(err, SW_ENOMEM, "out of memory");
    pthread_mutex_init(&c->mu, NULL);
    sw_cond_init(&c->cond); /* wait_ready waits on it with a monotonic deadline */
    pthread_cond_init(&c->wk_cond, NULL);
    c->next_src_port = MC_SRC_PORT_MIN;
    if ((rc = copy_config(c, cfg, err)) || (rc = make_events(c, err)) || (rc = mc_sessions_start(c, err)))
        goto fail;
    if ((rc = mc_worker_start(c, err)))
        goto fail;
    if (pthread_create(&c->loop_thread, NULL, loop_main, c) != 0) {
        rc = sw_error_set(err, SW_EIO, "cannot start the messaging client thread");
        goto fail;
    }
    c->loop_started = true;
    *out = c;
    return SW_OK;
fail:
    mc_worker_stop(c);
    client_free(c);
    return rc;
}

void sw_msg_client_stop(struct sw_msg_client *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    c->stopping = true;
    pthread_cond_broadcast(&c->cond);
    event_active(c->ev_cmd, EV_READ, 0);
    pthread_mutex_unlock(&c->mu);
    if (c->loop_started)
        pthread_join(c->loop_thread, NULL);
    mc_worker_stop(c);
    pthread_mutex_lock(&c->mu);
    while (c->calls > 0)
        pthread_cond_wait(&c->cond, &c->mu);
    pthread_mutex_unlock(&c->mu);
    client_free(c);
}

/* ---- public calls ------------------------------------------------------------------ */

int sw_msg_client_wait_ready(struct sw_msg_client *c, int timeout_ms)
{
    struct timespec ts;
    int rc = SW_OK;

    sw_cond_deadline(timeout_ms < 0 ? 0 : timeout_ms, &ts); /* unused when timeout_ms < 0 */
    pthread_mutex_lock(&c->mu);
    while (!c->stopping && !(c->snap_n > 0 && (!c->discovery || c->snap_published))) {
        if (timeout_ms < 0) {
            pthread_cond_wait(&c->cond, &c->mu);
        } else if (pthread_cond_timedwait(&c->cond, &c->mu, &ts) == ETIMEDOUT) {
            rc = SW_ETIMEDOUT;
            break;
        }
    }
    if (rc == SW_OK && c->stopping)
        rc = SW_EIO;
    pthread_mutex_unlock(&c->mu);
    return rc;
}

int sw_msg_listen(struct sw_msg_client *c, uint16_t port, int *listener_fd, struct sw_error *err)
{
    return sw_msg_listen_roles(c, port, 0, listener_fd, err);
}

int sw_msg_listen_roles(struct sw_msg_client *c, uint16_t port, unsigned roles, int *listener_fd,
                        struct sw_error *err)
{
    struct mc_cmd cmd = { .type = MC_CMD_LISTEN, .port = port, .roles = roles };
    int rc;

    if (!c || !listener_fd)
        return sw_error_set(err, SW_EINVAL, "missing argument");
    mc_call_enter(c);
    rc = mc_submit(c, &cmd);
    mc_call_leave(c);
    if (rc)
        return sw_error_set(err, rc, "the messaging client is stopping");
    if (cmd.rc)
        return sw_error_set(err, cmd.rc, "%s", cmd.why);
    *listener_fd = cmd.fd;
    return SW_OK;
}

int sw_msg_unlisten(struct sw_msg_client *c, uint16_t port)
{
    struct mc_cmd cmd = { .type = MC_CMD_UNLISTEN, .port = port };
    int rc;

    if (!c)
        return SW_EINVAL;
    mc_call_enter(c);
    rc = mc_submit(c, &cmd);
    mc_call_leave(c);
    return rc ? rc : cmd.rc;
}

/* One recvmsg of a listener message: header + exactly one fd. 1 = got one, 0 = none yet. */
static int recv_stream(int listener_fd, int *conn_fd, struct sw_pk *remote, uint16_t *remote_port,
                       struct sw_error *err)
{
    uint8_t hdr[MC_LISTEN_HDR_LEN + 1];
    union { struct cmsghdr h; char b[CMSG_SPACE(sizeof(int) * 4)]; } ctl;
    struct iovec iov = { .iov_base = hdr, .iov_len = sizeof(hdr) };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b,
                        .msg_controllen = sizeof(ctl.b) };
    struct cmsghdr *ch;
    int fds[4], nfd = 0;
    ssize_t n = recvmsg(listener_fd, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return 0;
    if (n < 0)
        return sw_error_set(err, SW_EIO, "listener: %s", strerror(errno));
    if (n == 0)
        return sw_error_set(err, SW_EIO, "listener closed (stopped listening)");
    for (ch = CMSG_FIRSTHDR(&m); ch; ch = CMSG_NXTHDR(&m, ch)) {
        if (ch->cmsg_level != SOL_SOCKET || ch->cmsg_type != SCM_RIGHTS)
            continue;
        size_t k = (ch->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < k && nfd < 4; i++)
            memcpy(&fds[nfd++], CMSG_DATA(ch) + i * sizeof(int), sizeof(int));
    }
    if (n != MC_LISTEN_HDR_LEN || nfd != 1 || (m.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
        for (int i = 0; i < nfd; i++)
            close(fds[i]);
        return sw_error_set(err, SW_EPROTO, "listener: malformed stream message");
    }
    *conn_fd = fds[0];
    if (remote)
        memcpy(remote->b, hdr, SW_PK_LEN);
    if (remote_port)
        *remote_port = sw_get_u16(hdr + SW_PK_LEN);
    return 1;
}

int sw_msg_accept(int listener_fd, int timeout_ms, int *conn_fd, struct sw_pk *remote,
                  uint16_t *remote_port, struct sw_error *err)
{
    int64_t deadline = sw_deadline_ms(timeout_ms < 0 ? 0 : timeout_ms);
    struct pollfd p = { .fd = listener_fd, .events = POLLIN };

    if (listener_fd < 0 || !conn_fd)
        return sw_error_set(err, SW_EINVAL, "missing argument");
    for (;;) {
        int wait = -1, rc;
        if (timeout_ms >= 0)
            wait = sw_ms_left(deadline);
        rc = poll(&p, 1, wait);
        if (rc < 0 && errno != EINTR)
            return sw_error_set(err, SW_EIO, "poll: %s", strerror(errno));
        if (rc > 0) {
            rc = recv_stream(listener_fd, conn_fd, remote, remote_port, err);
            if (rc < 0)
                return rc;
            if (rc == 1)
                return SW_OK;
        }
        if (timeout_ms >= 0 && sw_ms_left(deadline) == 0)
            return sw_error_set(err, SW_ETIMEDOUT, "no stream arrived within %d ms", timeout_ms);
    }
}

void sw_msg_client_stats(struct sw_msg_client *c, struct sw_msg_client_stats *out)
{
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&c->mu);
    out->sessions = c->snap_n;
    pthread_mutex_unlock(&c->mu);
    out->streams = atomic_load(&c->streams);
    out->bytes_sent = atomic_load(&c->bytes_sent);
    out->bytes_received = atomic_load(&c->bytes_received);
    out->reconnects = atomic_load(&c->reconnects);
}
