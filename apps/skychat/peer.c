/* peer.c — outgoing messages: one route connection per recipient, reused while it works.
 *
 * A message is the frame {"message","sent_at","nonce"}; the recipient answers {"ok":true} once
 * it stored it (or {"ok":false,"error":CODE}). A reused connection that turns out closed is
 * redialled once; the nonce lets the recipient drop a resend it already stored. Dials run on
 * a helper thread so the HTTP request can give up after sc_opt.dial_timeout_ms (the helper
 * then closes whatever it gets). */
#include "apps/skychat/chat.h"
#include "common/cond.h"
#include "common/json.h"
#include "common/log.h"
#include "visor/app/app.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SC_MAX_PEERS 64

struct peer {
    bool used;
    struct sw_pk pk;
    int fd;                 /* -1 when not connected */
    unsigned busy;          /* senders holding or waiting for lock (table_mu) */
    int64_t last_used;   /* monotonic ms */
    pthread_mutex_t lock;   /* one message at a time per recipient */
};

static pthread_mutex_t table_mu = PTHREAD_MUTEX_INITIALIZER;
static struct peer peers[SC_MAX_PEERS];

void sc_peers_init(void)
{
    for (size_t i = 0; i < SC_MAX_PEERS; i++) {
        peers[i].fd = -1;
        pthread_mutex_init(&peers[i].lock, NULL);
    }
}

void sc_peers_close(void)
{
    pthread_mutex_lock(&table_mu);
    for (size_t i = 0; i < SC_MAX_PEERS; i++)
        if (peers[i].used && !peers[i].busy && peers[i].fd >= 0) {
            close(peers[i].fd);
            peers[i].fd = -1;
        }
    pthread_mutex_unlock(&table_mu);
}

/* The slot for pk (busy+1), taking a free or the least recently used idle one. */
static struct peer *peer_get(const struct sw_pk *pk)
{
    struct peer *p = NULL, *lru = NULL;

    pthread_mutex_lock(&table_mu);
    for (size_t i = 0; i < SC_MAX_PEERS && !p; i++)
        if (peers[i].used && sw_pk_equal(&peers[i].pk, pk))
            p = &peers[i];
    for (size_t i = 0; i < SC_MAX_PEERS && !p; i++) {
        if (!peers[i].used) {
            lru = &peers[i];
            break;
        }
        if (!peers[i].busy && (!lru || peers[i].last_used < lru->last_used))
            lru = &peers[i];
    }
    if (!p && lru) {
        if (lru->fd >= 0)
            close(lru->fd);
        p = lru;
        p->used = true;
        p->pk = *pk;
        p->fd = -1;
    }
    if (p)
        p->busy++;
    pthread_mutex_unlock(&table_mu);
    return p;
}

static void peer_put(struct peer *p)
{
    pthread_mutex_lock(&table_mu);
    p->busy--;
    p->last_used = sw_mono_ms();
    pthread_mutex_unlock(&table_mu);
}

/* ---- dial with a deadline ---- */

struct dial_job {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct sw_pk pk;
    uint16_t port;
    bool done, abandoned;
    int rc, fd;
    struct sw_error err;
};

static void dial_job_free(struct dial_job *j)
{
    pthread_cond_destroy(&j->cv);
    pthread_mutex_destroy(&j->mu);
    free(j);
}

static void *dial_thread(void *arg)
{
    struct dial_job *j = arg;
    struct sw_error err = { 0 };
    int fd = -1, rc = sw_app_dial(NULL, &j->pk, j->port, &fd, &err);
    bool abandoned;

    pthread_mutex_lock(&j->mu);
    j->rc = rc;
    j->fd = fd;
    j->err = err;
    j->done = true;
    abandoned = j->abandoned;
    pthread_cond_signal(&j->cv);
    pthread_mutex_unlock(&j->mu);
    if (abandoned) { /* the requester gave up: nobody else owns the job */
        if (fd >= 0)
            close(fd);
        dial_job_free(j);
    }
    return NULL;
}

static int dial(const struct sw_pk *pk, int *fd, struct sc_send_result *res)
{
    struct dial_job *j = calloc(1, sizeof(*j));
    char hex[SW_PK_HEX_LEN + 1];
    pthread_attr_t ta;
    pthread_t th;
    struct timespec dl;
    bool done;
    int rc;

    sw_pk_to_hex(pk, hex);
    if (!j) {
        res->status = SC_BUSY;
        snprintf(res->code, sizeof(res->code), "out_of_memory");
        snprintf(res->msg, sizeof(res->msg), "out of memory");
        return -1;
    }
    j->pk = *pk;
    j->port = sc_opt.remote_port;
    j->fd = -1;
    pthread_mutex_init(&j->mu, NULL);
    sw_cond_init(&j->cv);
    pthread_attr_init(&ta);
    pthread_attr_setdetachstate(&ta, PTHREAD_CREATE_DETACHED);
    rc = pthread_create(&th, &ta, dial_thread, j);
    pthread_attr_destroy(&ta);
    if (rc) {
        dial_job_free(j);
        res->status = SC_BUSY;
        snprintf(res->code, sizeof(res->code), "busy");
        snprintf(res->msg, sizeof(res->msg), "cannot start a dial: %s", strerror(rc));
        return -1;
    }
    sw_cond_deadline(0, &dl);
    pthread_mutex_lock(&j->mu);
    for (int waited = 0; !j->done && waited < sc_opt.dial_timeout_ms && !sc_stopping(); waited += 250) {
        sw_timespec_add_ms(&dl, 250);
        while (!j->done && pthread_cond_timedwait(&j->cv, &j->mu, &dl) != ETIMEDOUT)
            ;
    }
    done = j->done;
    if (!done)
        j->abandoned = true;
    pthread_mutex_unlock(&j->mu);
    if (!done) {
        res->status = SC_TIMEOUT;
        snprintf(res->code, sizeof(res->code), "dial_timeout");
        snprintf(res->msg, sizeof(res->msg), "no route to %s:%u within %d s", hex, sc_opt.remote_port,
                 sc_opt.dial_timeout_ms / 1000);
        return -1;
    }
    rc = j->rc;
    *fd = j->fd;
    if (rc) {
        res->status = rc == SW_ETIMEDOUT ? SC_TIMEOUT : SC_UNREACHABLE;
        snprintf(res->code, sizeof(res->code), "%s",
                 rc == SW_ETIMEDOUT ? "dial_timeout" : "recipient_unreachable");
        snprintf(res->msg, sizeof(res->msg), "cannot reach %s:%u: %s", hex, sc_opt.remote_port,
                 j->err.msg);
    }
    dial_job_free(j);
    return rc ? -1 : 0;
}

/* ---- one exchange ---- */

enum xfer { XF_OK, XF_CLOSED, XF_TIMEOUT, XF_REJECTED };

static enum xfer exchange(int fd, const char *frame, size_t len, char *why, size_t why_cap)
{
    struct json_object *o = NULL;
    enum xfer x;
    int rc;

    if (sc_frame_write(fd, frame, len))
        return XF_CLOSED;
    rc = sc_frame_recv(fd, sc_opt.ack_timeout_ms, &o);
    if (rc && rc != SW_EINVAL)
        return rc == SW_ETIMEDOUT ? XF_TIMEOUT : XF_CLOSED;
    if (rc || !json_object_is_type(o, json_type_object)) {
        snprintf(why, why_cap, "unreadable acknowledgement");
        x = XF_REJECTED;
    } else if (json_object_get_boolean(json_object_object_get(o, "ok"))) {
        x = XF_OK;
    } else {
        const char *e = json_object_get_string(json_object_object_get(o, "error"));
        snprintf(why, why_cap, "%s", e ? e : "refused");
        x = XF_REJECTED;
    }
    json_object_put(o);
    return x;
}

void sc_send(const struct sw_pk *pk, const char *text, size_t len, uint64_t sent_at,
             uint64_t nonce, struct sc_send_result *res)
{
    struct sw_buf frame;
    char hex[SW_PK_HEX_LEN + 1], why[96] = "";
    struct peer *p;

    memset(res, 0, sizeof(*res));
    sw_pk_to_hex(pk, hex);
    sw_buf_init(&frame, SC_FRAME_MAX);
    if (sw_buf_append(&frame, "{\"message\":", 11) || sw_json_append_string(&frame, text, len) ||
        sw_buf_printf(&frame, ",\"sent_at\":%llu,\"nonce\":%llu}", (unsigned long long)sent_at,
                      (unsigned long long)nonce)) {
        sw_buf_free(&frame);
        res->status = SC_REJECTED;
        snprintf(res->code, sizeof(res->code), "message_too_large");
        snprintf(res->msg, sizeof(res->msg), "the encoded message exceeds %d bytes", SC_FRAME_MAX);
        return;
    }
    if (!(p = peer_get(pk))) {
        sw_buf_free(&frame);
        res->status = SC_BUSY;
        snprintf(res->code, sizeof(res->code), "busy");
        snprintf(res->msg, sizeof(res->msg), "messages to %d recipients are in flight", SC_MAX_PEERS);
        return;
    }
    pthread_mutex_lock(&p->lock);
    for (int attempt = 0; attempt < 2; attempt++) {
        bool fresh = p->fd < 0;
        enum xfer x;

        if (fresh && dial(pk, &p->fd, res)) {
            p->fd = -1;
            break;
        }
        x = exchange(p->fd, frame.data, frame.len, why, sizeof(why));
        if (x == XF_OK) {
            res->status = SC_SENT;
            break;
        }
        close(p->fd);
        p->fd = -1;
        if (x == XF_CLOSED && !fresh) {
            sw_log_debug("connection to %s went away; redialling", hex);
            continue; /* a stale connection: redial once */
        }
        res->status = x == XF_TIMEOUT ? SC_TIMEOUT : x == XF_REJECTED ? SC_REJECTED : SC_UNREACHABLE;
        snprintf(res->code, sizeof(res->code), "%s",
                 x == XF_TIMEOUT ? "ack_timeout" : x == XF_REJECTED ? "recipient_refused" : "connection_lost");
        snprintf(res->msg, sizeof(res->msg), "%s:%u %s%s", hex, sc_opt.remote_port,
                 x == XF_TIMEOUT ? "did not acknowledge in time"
                 : x == XF_REJECTED ? "refused the message: " : "closed the connection before acknowledging",
                 x == XF_REJECTED ? why : "");
        break;
    }
    pthread_mutex_unlock(&p->lock);
    peer_put(p);
    sw_buf_free(&frame);
}
