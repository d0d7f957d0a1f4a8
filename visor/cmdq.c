/* cmdq.c — commands from other threads (API handlers, the messaging client) to the loop.
 *
 * A caller queues a struct visor_cmd and, for visor_cmdq_call, waits on its condition
 * variable with a deadline. Each command has two references (caller and loop) when waited on,
 * one when posted; whoever drops the last frees it, so a caller that gave up after its
 * timeout never leaves the loop writing into freed memory. */
#include "visor/visor.h"
#include "common/cond.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static void cmdq_run(evutil_socket_t fd, short what, void *arg)
{
    struct visor_cmdq *q = arg;
    struct visor_cmd *c;

    for (;;) {
        pthread_mutex_lock(&q->mu);
        c = q->head;
        if (c) {
            q->head = c->next;
            if (!q->head)
                q->tail = NULL;
        }
        pthread_mutex_unlock(&q->mu);
        if (!c)
            break;
        visor_tm_cmd(q->v, c);
    }
}

int visor_cmdq_init(struct visor_cmdq *q, struct visor *v)
{
    q->v = v;
    q->head = q->tail = NULL;
    q->closed = false;
    if (pthread_mutex_init(&q->mu, NULL))
        return SW_ENOMEM;
    q->ev = event_new(v->base, -1, 0, cmdq_run, q);
    return q->ev ? SW_OK : SW_ENOMEM;
}

struct visor_cmd *visor_cmd_new(enum visor_cmd_kind kind)
{
    struct visor_cmd *c = calloc(1, sizeof(*c));

    if (!c)
        return NULL;
    sw_cond_init(&c->cond);
    c->kind = kind;
    c->fd = -1;
    c->refs = 1;
    return c;
}

/* Frees c once both sides are done; called with q->mu held. */
static void unref_locked(struct visor_cmd *c)
{
    if (--c->refs > 0)
        return;
    if (c->fd >= 0)
        close(c->fd);
    json_object_put(c->body);
    pthread_cond_destroy(&c->cond);
    free(c);
}

void visor_cmd_release(struct visor_cmdq *q, struct visor_cmd *c)
{
    pthread_mutex_lock(&q->mu);
    unref_locked(c);
    pthread_mutex_unlock(&q->mu);
}

/* Appends c; SW_EIO when the queue is closed (c untouched). */
static int push(struct visor_cmdq *q, struct visor_cmd *c)
{
    pthread_mutex_lock(&q->mu);
    if (q->closed) {
        pthread_mutex_unlock(&q->mu);
        return SW_EIO;
    }
    c->next = NULL;
    if (q->tail)
        q->tail->next = c;
    else
        q->head = c;
    q->tail = c;
    pthread_mutex_unlock(&q->mu);
    event_active(q->ev, EV_READ, 0); /* thread-safe: evthread_use_pthreads() */
    return SW_OK;
}

int visor_cmdq_post(struct visor_cmdq *q, struct visor_cmd *c)
{
    int rc = push(q, c);
    if (rc)
        visor_cmd_release(q, c);
    return rc;
}

int visor_cmdq_call(struct visor_cmdq *q, struct visor_cmd *c, int timeout_ms)
{
    struct timespec dl;
    int rc = SW_OK;

    c->refs = 2;
    if (push(q, c)) {
        c->refs = 1;
        return SW_EIO;
    }
    sw_cond_deadline(timeout_ms, &dl);
    pthread_mutex_lock(&q->mu);
    while (!c->done) {
        if (pthread_cond_timedwait(&c->cond, &q->mu, &dl) == ETIMEDOUT) {
            rc = c->done ? SW_OK : SW_ETIMEDOUT;
            break;
        }
    }
    pthread_mutex_unlock(&q->mu);
    return rc;
}

void visor_cmd_reply(struct visor_cmdq *q, struct visor_cmd *c, int status, struct json_object *body)
{
    pthread_mutex_lock(&q->mu);
    c->status = status;
    json_object_put(c->body);
    c->body = body;
    c->done = true;
    pthread_cond_signal(&c->cond);
    unref_locked(c);
    pthread_mutex_unlock(&q->mu);
}

void visor_cmd_reply_error(struct visor_cmdq *q, struct visor_cmd *c, int status, const char *code,
                           const char *fmt, ...)
{
    struct json_object *o = json_object_new_object(), *e = json_object_new_object();
    char msg[SW_ERROR_MSG_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    json_object_object_add(e, "code", json_object_new_string(code));
    json_object_object_add(e, "message", json_object_new_string(msg));
    json_object_object_add(o, "error", e);
    visor_cmd_reply(q, c, status, o);
}

void visor_cmdq_close(struct visor_cmdq *q)
{
    struct visor_cmd *c, *list;

    pthread_mutex_lock(&q->mu);
    q->closed = true;
    list = q->head;
    q->head = q->tail = NULL;
    pthread_mutex_unlock(&q->mu);
    while ((c = list)) {
        list = c->next;
        visor_cmd_reply_error(q, c, 503, "shutting_down", "the visor is shutting down");
    }
}

void visor_cmdq_free(struct visor_cmdq *q)
{
    if (q->ev)
        event_free(q->ev);
    q->ev = NULL;
    pthread_mutex_destroy(&q->mu);
}

int visor_cmd_call_fn(struct visor *v, void (*fn)(struct visor *, struct visor_cmd *), struct json_object *body,
                      uint64_t n, int timeout_ms, int *fd_out, struct json_object **resp)
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
