/* dmsg.c — dmsg transports: messaging streams to <pk>:1 through the messaging client
 * (common/msg_client.h).
 *
 * The client runs its own threads. Incoming streams arrive on the port 1 listener fd,
 * which the loop watches and drains without blocking (sw_msg_accept with timeout 0).
 * Dials block up to their timeout, so they run on a small pool of dial threads that post
 * the outcome (a stream fd, or why not) back to the loop as VISOR_CMD_DMSG_DIALED. Either way the
 * fd becomes a plain link (link.c): the stream is already end to end Noise_KK. */
#include "visor/visor.h"
#include "common/log.h"
#include "common/msg_client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DMSG_PORT 1
#define DMSG_DIALERS 4
#define DMSG_DIAL_TIMEOUT_MS 10000
#define DMSG_ACCEPT_BATCH 64

struct dmsg_job {
    struct sw_pk pk;
    struct dmsg_job *next;
};

struct visor_dmsg {
    struct visor *v;
    struct sw_msg_client *client;
    int listener_fd;
    struct event *listen_ev;
    pthread_t dialers[DMSG_DIALERS];
    int n_dialers;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    struct dmsg_job *head, *tail;
    int active;      /* dials running sw_msg_dial_roles: the client must outlive them */
    bool stopping;
};

bool visor_dmsg_enabled(const struct visor *v) { return v->dmsg != NULL; }

struct sw_msg_client *visor_dmsg_client(struct visor *v) { return v->dmsg ? v->dmsg->client : NULL; }

unsigned visor_dmsg_sessions(struct visor *v)
{
    struct sw_msg_client_stats st;
    if (!v->dmsg)
        return 0;
    sw_msg_client_stats(v->dmsg->client, &st);
    return st.sessions;
}

/* Loop: streams other visors opened to our port 1. */
static void listen_cb(evutil_socket_t fd, short what, void *arg)
{
    struct visor_dmsg *d = arg;
    struct sw_error err = { 0 };
    struct sw_pk remote;
    uint16_t port;
    int conn, rc;

    for (int i = 0; i < DMSG_ACCEPT_BATCH; i++) {
        rc = sw_msg_accept(d->listener_fd, 0, &conn, &remote, &port, &err);
        if (rc == SW_ETIMEDOUT)
            return;
        if (rc == SW_EPROTO) { /* one stream lost (e.g. out of descriptors): keep listening */
            sw_log_warn("dmsg: an incoming stream was dropped: %s", err.msg);
            continue;
        }
        if (rc) {
            sw_log_warn("dmsg: the port %d listener failed: %s; no more incoming dmsg transports",
                        DMSG_PORT, err.msg);
            event_del(d->listen_ev);
            return;
        }
        visor_tm_dmsg_incoming(d->v, conn, &remote);
    }
}

static void *dialer_main(void *arg)
{
    struct visor_dmsg *d = arg;
    struct dmsg_job *j;
    struct sw_error err = { 0 };
    struct visor_cmd *c;
    int fd, refusal, rc;

    pthread_mutex_lock(&d->mu);
    for (;;) {
        while (!d->stopping && !d->head)
            pthread_cond_wait(&d->cond, &d->mu);
        if (d->stopping)
            break;
        j = d->head;
        d->head = j->next;
        if (!d->head)
            d->tail = NULL;
        d->active++;
        pthread_mutex_unlock(&d->mu);
        fd = -1;
        refusal = 0;
        memset(&err, 0, sizeof(err));
        rc = sw_msg_dial_roles(d->client, &j->pk, DMSG_PORT, SW_ROLE_BIT(SW_ROLE_VISOR),
                               DMSG_DIAL_TIMEOUT_MS, &fd, &refusal, &err);
        if ((c = visor_cmd_new(VISOR_CMD_DMSG_DIALED))) {
            c->pk = j->pk;
            c->fd = rc == SW_OK ? fd : -1;
            snprintf(c->why, sizeof(c->why), "%s", rc == SW_OK ? "" : err.msg[0] ? err.msg : sw_strerror(rc));
            visor_cmdq_post(&d->v->q, c); /* on failure the command (and fd) is released */
        } else if (rc == SW_OK) {
            close(fd);
        }
        free(j);
        pthread_mutex_lock(&d->mu);
        d->active--;
        pthread_cond_broadcast(&d->cond);
    }
    pthread_mutex_unlock(&d->mu);
    return NULL;
}

int visor_dmsg_dial(struct visor *v, const struct sw_pk *remote, struct sw_error *err)
{
    struct visor_dmsg *d = v->dmsg;
    struct dmsg_job *j;

    if (!d)
        return sw_error_set(err, SW_EINVAL, "dmsg transports need messaging.discovery in the config");
    if (!(j = calloc(1, sizeof(*j))))
        return sw_error_set(err, SW_ENOMEM, "out of memory");
    j->pk = *remote;
    pthread_mutex_lock(&d->mu);
    if (d->tail)
        d->tail->next = j;
    else
        d->head = j;
    d->tail = j;
    pthread_cond_signal(&d->cond);
    pthread_mutex_unlock(&d->mu);
    return SW_OK;
}

static int start_client(struct visor *v, struct visor_dmsg *d, struct sw_error *err)
{
    struct sw_msg_server_addr servers[VISOR_MSG_SERVERS_MAX];
    struct sw_msg_client_config cfg = {
        .kp = v->cfg.kp,
        .discovery_url = v->cfg.msg_discovery[0] ? v->cfg.msg_discovery : NULL,
        .n_servers = v->cfg.msg_sessions,
        .servers = v->cfg.n_msg_servers ? servers : NULL,
        .n_fixed_servers = v->cfg.n_msg_servers,
        .dial_timeout_ms = DMSG_DIAL_TIMEOUT_MS,
        .network = v->net,
    };
    int rc;

    for (size_t i = 0; i < v->cfg.n_msg_servers; i++) {
        servers[i].pk = v->cfg.msg_servers[i].pk;
        snprintf(servers[i].address, sizeof(servers[i].address), "%s", v->cfg.msg_servers[i].addr);
    }
    rc = sw_msg_client_start(&cfg, &d->client, err);
    sw_keypair_wipe(&cfg.kp);
    if (rc)
        return rc;
    /* private network: dmsg transports are between visors only (the stream handshake checks) */
    if ((rc = sw_msg_listen_roles(d->client, DMSG_PORT, SW_ROLE_BIT(SW_ROLE_VISOR), &d->listener_fd, err)))
        return rc;
    d->listen_ev = event_new(v->base, d->listener_fd, EV_READ | EV_PERSIST, listen_cb, d);
    if (!d->listen_ev || event_add(d->listen_ev, NULL))
        return sw_error_set(err, SW_ENOMEM, "cannot watch the dmsg listener");
    return SW_OK;
}

int visor_dmsg_start(struct visor *v, struct sw_error *err)
{
    struct visor_dmsg *d;
    int rc;

    if (!v->cfg.msg_discovery[0] && !v->cfg.n_msg_servers)
        return SW_OK;
    if (!(d = calloc(1, sizeof(*d))))
        return sw_error_set(err, SW_ENOMEM, "out of memory");
    d->v = v;
    d->listener_fd = -1;
    pthread_mutex_init(&d->mu, NULL);
    pthread_cond_init(&d->cond, NULL);
    v->dmsg = d;
    if ((rc = start_client(v, d, err)))
        goto fail;
    for (; d->n_dialers < DMSG_DIALERS; d->n_dialers++) {
        if (pthread_create(&d->dialers[d->n_dialers], NULL, dialer_main, d)) {
            rc = sw_error_set(err, SW_EIO, "cannot start the dmsg dial threads");
            goto fail;
        }
    }
    sw_log_info("dmsg: messaging client started (%u sessions, discovery %s, %zu pinned servers)",
                v->cfg.msg_sessions, v->cfg.msg_discovery[0] ? v->cfg.msg_discovery : "none",
                v->cfg.n_msg_servers);
    return SW_OK;
fail:
    visor_dmsg_stop(v);
    return rc;
}

void visor_dmsg_stop(struct visor *v)
{
    struct visor_dmsg *d = v->dmsg;
    struct dmsg_job *j;

    if (!d)
        return;
    /* no new dials; the ones running end by their deadline (DMSG_DIAL_TIMEOUT_MS) */
    pthread_mutex_lock(&d->mu);
    d->stopping = true;
    pthread_cond_broadcast(&d->cond);
    while (d->active > 0)
        pthread_cond_wait(&d->cond, &d->mu);
    pthread_mutex_unlock(&d->mu);
    if (d->listen_ev)
        event_free(d->listen_ev);
    if (d->client)
        sw_msg_client_stop(d->client);
    for (int i = 0; i < d->n_dialers; i++)
        pthread_join(d->dialers[i], NULL);
    if (d->listener_fd >= 0)
        close(d->listener_fd);
    while ((j = d->head)) {
        d->head = j->next;
        free(j);
    }
    pthread_mutex_destroy(&d->mu);
    pthread_cond_destroy(&d->cond);
    free(d);
    v->dmsg = NULL;
}
