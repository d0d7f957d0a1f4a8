/* msg_client_dial.c — dialing pk:port (docs/messaging.md §5).
 *
 * Caller side (the thread in sw_msg_dial): looks up the target's delegated servers in the
 * discovery (blocking HTTP on the caller's own thread), orders them — servers we already
 * have a ready session with first — and runs one attempt per server through the loop until
 * one succeeds. An attempt that needs a server address we do not know comes back as
 * MC_DIAL_NEED_ADDR; the caller fetches the server's entry and retries with it.
 *
 * Loop side (struct mc_dial): waits for the session to be ready, sends OPEN, then follows
 * its stream (msg_stream.c) until KK completes, a refusal, a session failure or the
 * caller's deadline. */
#include "common/msg_client_internal.h"
#include "common/log.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- loop side --------------------------------------------------------------------- */

static void dial_unlink(struct mc_dial *d)
{
    struct sw_msg_client *c = d->c;
    if (d->prev)
        d->prev->next = d->next;
    else
        c->dials = d->next;
    if (d->next)
        d->next->prev = d->prev;
    if (d->sess && !d->st) {
        struct mc_dial **pp = &d->sess->waiting;
        while (*pp && *pp != d)
            pp = &(*pp)->wnext;
        if (*pp)
            *pp = d->wnext;
    }
}

void mc_dial_finish(struct mc_dial *d, enum mc_dial_result result, int refusal, const char *why)
{
    struct sw_msg_client *c = d->c;
    struct mc_cmd *cmd = d->cmd;
    struct mc_stream *st = d->st;

    dial_unlink(d);
    if (st) {
        /* ended from the dial's side (deadline, stop): the stream dies with it */
        st->dial = NULL;
        mc_stream_close(st, 1, result);
    }
    cmd->result = result;
    cmd->refusal = refusal;
    cmd->rc = result == MC_DIAL_OK ? SW_OK : SW_EIO;
    snprintf(cmd->why, sizeof(cmd->why), "%s", why ? why : "");
    event_free(d->timer);
    free(d);
    mc_cmd_complete(c, cmd);
}

static void on_dial_timeout(evutil_socket_t fd, short what, void *arg)
{
    mc_dial_finish(arg, MC_DIAL_TIMEOUT, 0, "dial timed out");
}

void mc_dial_start(struct mc_dial *d)
{
    struct mc_sess *ss = d->sess;
    struct mc_stream *st;
    uint32_t id = ss->next_id;

    while (mc_stream_find(ss, id))
        id += 2;
    ss->next_id = id + 2 == 0 ? 1 : id + 2;
    if (!(st = mc_stream_new(ss, id, true))) {
        mc_dial_finish(d, MC_DIAL_ERROR, 0, "cannot create the stream's socket pair");
        return;
    }
    st->peer = d->cmd->peer;
    st->roles = d->cmd->roles;
    st->local_port = d->c->next_src_port;
    st->remote_port = d->cmd->port;
    d->c->next_src_port = (uint16_t)(d->c->next_src_port == UINT16_MAX ? MC_SRC_PORT_MIN : d->c->next_src_port + 1u);
    st->dial = d;
    d->st = st;
    if (mc_stream_send_open(st, d->cmd->port) != SW_OK)
        mc_dial_finish(d, MC_DIAL_SESSION_FAILED, 0, "cannot send OPEN");
}

void mc_dial_begin(struct sw_msg_client *c, struct mc_cmd *cmd)
{
    struct mc_sess *ss = mc_sess_find(c, &cmd->server);
    struct mc_dial *d;
    int64_t now = sw_mono_ms();

    if (!ss) {
        const struct mc_known *k = mc_known_find(c, &cmd->server);
        if (cmd->has_addr)
            mc_known_put(c, &cmd->server, cmd->addr, false);
        else if (k)
            snprintf(cmd->addr, sizeof(cmd->addr), "%s", k->addr);
        if (!cmd->has_addr && !k) {
            cmd->result = MC_DIAL_NEED_ADDR;
            mc_cmd_complete(c, cmd);
            return;
        }
        ss = mc_sess_open(c, &cmd->server, cmd->addr, NULL);
    }
    d = calloc(1, sizeof(*d));
    if (!ss || !d || !(d->timer = evtimer_new(c->base, on_dial_timeout, d))) {
        free(d);
        cmd->result = ss ? MC_DIAL_ERROR : MC_DIAL_SESSION_FAILED;
        snprintf(cmd->why, sizeof(cmd->why), "%s", ss ? "out of memory" : "cannot connect to the server");
        mc_cmd_complete(c, cmd);
        return;
    }
    d->c = c;
    d->cmd = cmd;
    d->sess = ss;
    d->next = c->dials;
    if (c->dials)
        c->dials->prev = d;
    c->dials = d;
    mc_timer_arm(d->timer, cmd->deadline_ms > now ? cmd->deadline_ms - now : 0);
    if (ss->state == MC_SESS_READY) {
        mc_dial_start(d);
    } else {
        d->wnext = ss->waiting;
        ss->waiting = d;
    }
}

/* ---- caller side ------------------------------------------------------------------- */

struct dial_ctx {
    struct sw_msg_client *c;
    const struct sw_pk *pk;
    uint16_t port;
    unsigned roles;            /* private network: roles the remote's certificate may have */
    int64_t deadline;          /* monotonic */
    struct sw_pk servers[SW_MSG_DELEGATES_MAX];
    size_t n;
    int last_refusal;
    bool had_failure;
    char last_why[160];
};

static int candidates(struct dial_ctx *x, struct sw_error *err)
{
    struct sw_msg_client *c = x->c;
    struct sw_msg_entry e;
    int rc;

    if (!c->discovery) {
        for (size_t i = 0; i < c->n_fixed && x->n < SW_MSG_DELEGATES_MAX; i++)
            x->servers[x->n++] = c->fixed[i].pk;
        return SW_OK;
    }
    if ((rc = mc_disc_lookup(c->discovery, x->pk, x->deadline, &e, err)))
        return rc;
    if (!e.has_client)
        return sw_error_set(err, SW_ENOTFOUND, "the key's messaging entry has no client part");
    memcpy(x->servers, e.delegated, e.n_delegated * sizeof(e.delegated[0]));
    x->n = e.n_delegated;
    return SW_OK;
}

/* Servers with a ready session first, the rest in discovery order. */
static void order_candidates(struct dial_ctx *x)
{
    struct sw_msg_client *c = x->c;
    struct sw_pk sorted[SW_MSG_DELEGATES_MAX];
    bool ready[SW_MSG_DELEGATES_MAX] = { false };
    size_t k = 0;

    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < x->n; i++)
        for (unsigned j = 0; j < c->snap_n && !ready[i]; j++)
            ready[i] = sw_pk_equal(&x->servers[i], &c->snap_ready[j]);
    pthread_mutex_unlock(&c->mu);
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < x->n; i++)
            if (ready[i] == (pass == 0))
                sorted[k++] = x->servers[i];
    memcpy(x->servers, sorted, k * sizeof(sorted[0]));
}

static int attempt_once(struct dial_ctx *x, const struct sw_pk *server, const char *addr,
                        struct mc_cmd *cmd)
{
    memset(cmd, 0, sizeof(*cmd));
    cmd->type = MC_CMD_DIAL;
    cmd->peer = *x->pk;
    cmd->server = *server;
    cmd->port = x->port;
    cmd->roles = x->roles;
    cmd->deadline_ms = x->deadline;
    if (addr) {
        cmd->has_addr = true;
        snprintf(cmd->addr, sizeof(cmd->addr), "%s", addr);
    }
    return mc_submit(x->c, cmd);
}

/* One server: returns the command's result (with the address fetched when needed). */
static enum mc_dial_result attempt(struct dial_ctx *x, const struct sw_pk *server, struct mc_cmd *cmd)
{
    struct sw_msg_entry e;
    struct sw_error err = { 0 };

    if (attempt_once(x, server, NULL, cmd))
        return MC_DIAL_STOPPED;
    if (cmd->result != MC_DIAL_NEED_ADDR)
        return cmd->result;
    if (!x->c->discovery || mc_disc_lookup(x->c->discovery, server, x->deadline, &e, &err) || !e.has_server) {
        snprintf(x->last_why, sizeof(x->last_why), "no address for the server: %.120s",
                 err.msg[0] ? err.msg : "not a server entry");
        return MC_DIAL_SESSION_FAILED;
    }
    if (attempt_once(x, server, e.address, cmd))
        return MC_DIAL_STOPPED;
    return cmd->result == MC_DIAL_NEED_ADDR ? MC_DIAL_SESSION_FAILED : cmd->result;
}

/* Runs the attempts; SW_OK with *fd, or the final error. */
static int dial_servers(struct dial_ctx *x, int *fd, int *refusal, struct sw_error *err)
{
    char hex[SW_PK_HEX_LEN + 1];
    struct mc_cmd cmd;

    sw_pk_to_hex(x->pk, hex);
    for (size_t i = 0; i < x->n; i++) {
        enum mc_dial_result r = attempt(x, &x->servers[i], &cmd);
        switch (r) {
        case MC_DIAL_OK:
            *fd = cmd.fd;
            return SW_OK;
        case MC_DIAL_REFUSED:
            x->last_refusal = cmd.refusal;
            if (cmd.refusal == SW_REFUSE_PEER_OFFLINE || cmd.refusal == SW_REFUSE_TIMEOUT)
                continue;
            goto refused;
        case MC_DIAL_SESSION_FAILED:
        case MC_DIAL_RESET:
            x->had_failure = true;
            if (cmd.why[0])
                snprintf(x->last_why, sizeof(x->last_why), "%s", cmd.why);
            continue;
        case MC_DIAL_NOT_MEMBER:
            /* the same certificates meet through any other server: stop here */
            if (refusal)
                *refusal = SW_REFUSE_REFUSED;
            return sw_error_set(err, SW_EPERM, "dial %s:%u: %s", hex, x->port, cmd.why);
        case MC_DIAL_TIMEOUT:
            return sw_error_set(err, SW_ETIMEDOUT, "dial %s:%u timed out", hex, x->port);
        case MC_DIAL_STOPPED:
            return sw_error_set(err, SW_EIO, "the messaging client is stopping");
        case MC_DIAL_NEED_ADDR:
        case MC_DIAL_ERROR:
            return sw_error_set(err, SW_EIO, "dial %s:%u: %s", hex, x->port, cmd.why);
        }
    }
    if (x->last_refusal)
        goto refused;
    if (x->n == 0) {
        x->last_refusal = SW_REFUSE_PEER_OFFLINE;
        goto refused;
    }
    return sw_error_set(err, SW_EIO, "dial %s:%u: no delegated server could open the stream (%s)", hex,
                        x->port, x->last_why[0] ? x->last_why : "session failed");
refused:
    if (refusal)
        *refusal = x->last_refusal;
    return sw_error_set(err, SW_EPERM, "dial %s:%u refused: %s", hex, x->port,
                        x->n ? sw_msg_refusal_name(x->last_refusal) : "peer_offline (no delegated servers)");
}

static int dial(struct sw_msg_client *c, const struct sw_pk *pk, uint16_t port, unsigned roles,
                int timeout_ms, int *conn_fd, int *refusal, struct sw_error *err)
{
    struct dial_ctx x = { .c = c, .pk = pk, .port = port, .roles = roles };
    int rc, fd = -1;

    if (!c || !pk || !conn_fd)
        return sw_error_set(err, SW_EINVAL, "missing argument");
    x.deadline = sw_deadline_ms(timeout_ms > 0 ? timeout_ms : c->dial_timeout_ms);
    mc_call_enter(c);
    if ((rc = candidates(&x, err)) == SW_OK) {
        order_candidates(&x);
        rc = dial_servers(&x, &fd, refusal, err);
    }
    mc_call_leave(c);
    if (rc == SW_OK)
        *conn_fd = fd;
    return rc;
}

int sw_msg_dial(struct sw_msg_client *c, const struct sw_pk *pk, uint16_t port, int timeout_ms,
                int *conn_fd, int *refusal, struct sw_error *err)
{
    return dial(c, pk, port, 0, timeout_ms, conn_fd, refusal, err);
}

int sw_msg_dial_roles(struct sw_msg_client *c, const struct sw_pk *pk, uint16_t port,
                      unsigned roles, int timeout_ms, int *conn_fd, int *refusal,
                      struct sw_error *err)
{
    return dial(c, pk, port, roles, timeout_ms, conn_fd, refusal, err);
}
