/* tpd.c — the transport discovery client. The loop queues jobs (register, status, delete)
 * and one worker thread runs them with blocking libcurl calls, so the event loop never
 * waits on the network. Jobs are ordered by due time. A single job is retried with backoff
 * (1 s doubling to 30 s, 10 attempts) on network errors and 5xx, and a status post a few
 * times on 404 (the other edge's registration may not have landed yet). A newer job for the
 * same transport supersedes queued ones, so a stale "up" never lands after a "down".
 * At stop the queue is drained for a bounded time, one attempt per job. */
#include "visor/visor.h"
#include "common/backoff.h"
#include "common/cond.h"
#include "common/http_client.h"
#include "common/json.h"
#include "common/log.h"
#include "common/network.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TPD_MAX_ATTEMPTS 10
#define TPD_MAX_404 5
#define TPD_BACKOFF_MIN_MS 1000
#define TPD_BACKOFF_MAX_MS 30000
#define TPD_RETRY_404_MS 1000
/* Queued batches (refresh: up to 256 transports each, every 60 s). Single jobs are bounded by
 * the transports (one per transport), batches are not: with the discovery unreachable a big
 * visor would queue them faster than they time out. Beyond this the oldest is dropped. */
#define TPD_MAX_BATCHES 64

enum job_kind { JOB_REGISTER, JOB_STATUS, JOB_DELETE };
enum job_outcome { JOB_DONE, JOB_RETRY, JOB_RETRY_404, JOB_SPLIT };

struct job {
    enum job_kind kind;
    bool batch;       /* one attempt; split into singles on 404 */
    bool retry;       /* single jobs: retried */
    bool canceled;    /* superseded while running */
    bool up;
    unsigned attempts;
    struct sw_backoff backoff; /* no jitter: one visor's own queue */
    int64_t due_ms;       /* monotonic */
    size_t n;
    struct sw_uuid *ids;                 /* n */
    struct sw_tp_signed_entry *entries;  /* n, JOB_REGISTER */
    struct job *next;
};

struct visor_tpd {
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    struct job *head;
    struct job *running;
    bool stopping;
    bool dropping;    /* batches are being dropped (logged once per episode) */
    int64_t drain_until;  /* monotonic */
    struct sw_keypair kp;
    char url[VISOR_URL_MAX];
    struct sw_http_client *http;
};

static void job_free(struct job *j)
{
    if (!j)
        return;
    free(j->ids);
    free(j->entries);
    free(j);
}

static struct job *job_new(enum job_kind kind, size_t n, bool batch)
{
    struct job *j = calloc(1, sizeof(*j));
    if (!j)
        return NULL;
    j->kind = kind;
    j->n = n;
    j->batch = batch;
    j->retry = !batch;
    sw_backoff_init(&j->backoff, TPD_BACKOFF_MIN_MS, TPD_BACKOFF_MAX_MS, false);
    j->ids = calloc(n, sizeof(*j->ids));
    if (kind == JOB_REGISTER)
        j->entries = calloc(n, sizeof(*j->entries));
    if (!j->ids || (kind == JOB_REGISTER && !j->entries)) {
        job_free(j);
        return NULL;
    }
    return j;
}

/* Inserts by due time, after jobs due at the same time (FIFO). Called locked. */
static void insert_locked(struct visor_tpd *t, struct job *j)
{
    struct job **pp = &t->head;
    while (*pp && (*pp)->due_ms <= j->due_ms)
        pp = &(*pp)->next;
    j->next = *pp;
    *pp = j;
    pthread_cond_signal(&t->cond);
}

/* Drops queued single jobs for id and keeps a running one from being retried. Locked. */
static void supersede_locked(struct visor_tpd *t, const struct sw_uuid *id)
{
    struct job **pp = &t->head, *j;
    while ((j = *pp)) {
        if (!j->batch && sw_uuid_equal(&j->ids[0], id)) {
            *pp = j->next;
            job_free(j);
        } else {
            pp = &j->next;
        }
    }
    if (t->running && !t->running->batch && sw_uuid_equal(&t->running->ids[0], id))
        t->running->canceled = true;
}

/* Keeps at most TPD_MAX_BATCHES - 1 batches queued by dropping the oldest. Locked. */
static void limit_batches_locked(struct visor_tpd *t)
{
    struct job **pp, **oldest = NULL, *j;
    size_t n = 0;

    for (pp = &t->head; (j = *pp); pp = &j->next) {
        if (j->batch && n++ == 0)
            oldest = pp;
    }
    if (n < TPD_MAX_BATCHES) {
        t->dropping = false;
        return;
    }
    if (!t->dropping)
        sw_log_warn("discovery: %zu batches queued (the discovery is slow or unreachable): dropping the oldest",
                    n);
    t->dropping = true;
    j = *oldest;
    *oldest = j->next;
    job_free(j);
}

static void enqueue(struct visor_tpd *t, struct job *j)
{
    if (!t || !j) {
        if (t)
            sw_log_error("discovery: out of memory; a job is lost");
        job_free(j);
        return;
    }
    j->due_ms = sw_mono_ms();
    pthread_mutex_lock(&t->mu);
    if (!j->batch)
        supersede_locked(t, &j->ids[0]);
    else
        limit_batches_locked(t);
    insert_locked(t, j);
    pthread_mutex_unlock(&t->mu);
}

void visor_tpd_register(struct visor_tpd *t, const struct sw_tp_signed_entry *se)
{
    struct job *j = job_new(JOB_REGISTER, 1, false);
    if (j) {
        j->entries[0] = *se;
        j->ids[0] = se->entry.id;
    }
    enqueue(t, j);
}

void visor_tpd_status(struct visor_tpd *t, const struct sw_uuid *id, bool up)
{
    struct job *j = job_new(JOB_STATUS, 1, false);
    if (j) {
        j->ids[0] = *id;
        j->up = up;
    }
    enqueue(t, j);
}

void visor_tpd_delete(struct visor_tpd *t, const struct sw_uuid *id)
{
    struct job *j = job_new(JOB_DELETE, 1, false);
    if (j)
        j->ids[0] = *id;
    enqueue(t, j);
}

void visor_tpd_cancel(struct visor_tpd *t, const struct sw_uuid *id)
{
    if (!t)
        return;
    pthread_mutex_lock(&t->mu);
    supersede_locked(t, id);
    pthread_mutex_unlock(&t->mu);
}

void visor_tpd_register_batch(struct visor_tpd *t, const struct sw_tp_signed_entry *se, size_t n)
{
    struct job *j = n ? job_new(JOB_REGISTER, n, true) : NULL;
    if (!n)
        return;
    for (size_t i = 0; j && i < n; i++) {
        j->entries[i] = se[i];
        j->ids[i] = se[i].entry.id;
    }
    enqueue(t, j);
}

void visor_tpd_status_batch(struct visor_tpd *t, const struct sw_uuid *ids, size_t n, bool up)
{
    struct job *j = n ? job_new(JOB_STATUS, n, true) : NULL;
    if (!n)
        return;
    if (j) {
        memcpy(j->ids, ids, n * sizeof(*ids));
        j->up = up;
    }
    enqueue(t, j);
}

/* ---- the worker ------------------------------------------------------------------------ */

static char *job_body(const struct job *j)
{
    struct json_object *arr = json_object_new_array(), *o;
    char id[SW_UUID_STR_LEN + 1], *s;

    for (size_t i = 0; i < j->n; i++) {
        if (j->kind == JOB_REGISTER) {
            json_object_array_add(arr, sw_tp_signed_entry_to_json(&j->entries[i]));
            continue;
        }
        o = json_object_new_object();
        sw_uuid_format(&j->ids[i], id);
        json_object_object_add(o, "t_id", json_object_new_string(id));
        json_object_object_add(o, "is_up", json_object_new_boolean(j->up));
        json_object_array_add(arr, o);
    }
    s = strdup(sw_json_compact(arr, NULL));
    json_object_put(arr);
    return s;
}

static const char *job_what(const struct job *j, char *buf, size_t cap)
{
    char id[SW_UUID_STR_LEN + 1];
    const char *verb = j->kind == JOB_REGISTER ? "register" : j->kind == JOB_DELETE ? "delete"
                       : j->up ? "status up" : "status down";
    sw_uuid_format(&j->ids[0], id);
    if (j->n > 1)
        snprintf(buf, cap, "%s of %zu transports", verb, j->n);
    else
        snprintf(buf, cap, "%s of transport %s", verb, id);
    return buf;
}

/* One HTTP attempt; says what to do with the job next. */
static enum job_outcome run_job(struct visor_tpd *t, struct job *j)
{
    struct sw_http_result res = { 0 };
    struct sw_error err = { 0 };
    char target[96], id[SW_UUID_STR_LEN + 1], what[96];
    char *body = NULL;
    enum job_outcome out = JOB_DONE;
    int rc;

    job_what(j, what, sizeof(what));
    sw_uuid_format(&j->ids[0], id);
    if (j->kind == JOB_DELETE) {
        snprintf(target, sizeof(target), "/transports/id:%s", id);
        rc = sw_http_do_signed(t->http, &t->kp, t->url, "DELETE", target, NULL, 0, &res, &err);
    } else {
        if (!(body = job_body(j))) {
            sw_log_error("discovery: %s: out of memory", what);
            return JOB_DONE;
        }
        rc = sw_http_do_signed(t->http, &t->kp, t->url, "POST",
                               j->kind == JOB_REGISTER ? "/transports/" : "/statuses", body,
                               strlen(body), &res, &err);
    }
    j->attempts++;
    if (rc) {
        sw_log_warn("discovery: %s failed: %s", what, err.msg);
        out = JOB_RETRY;
    } else if (res.status >= 200 && res.status < 300) {
        if (j->batch)
            sw_log_debug("discovery: %s done", what);
        else
            sw_log_info("discovery: %s done", what);
    } else if (res.status == 404 && j->kind == JOB_DELETE) {
        sw_log_info("discovery: %s: it was not registered", what);
    } else if (res.status == 404) {
        sw_log_info("discovery: %s: not registered (yet)", what);
        out = j->batch ? JOB_SPLIT : JOB_RETRY_404;
    } else {
        sw_log_warn("discovery: %s: HTTP %ld %.200s", what, res.status, res.body ? res.body : "");
        out = res.status >= 500 || res.status == 401 ? JOB_RETRY : JOB_DONE;
    }
    sw_http_result_free(&res);
    free(body);
    return out;
}

/* Single one-attempt jobs for each transport of a refused batch. Locked. */
static void split_locked(struct visor_tpd *t, const struct job *b)
{
    struct job *j;
    for (size_t i = 0; i < b->n; i++) {
        if (!(j = job_new(b->kind, 1, false)))
            return;
        j->retry = false;
        j->up = b->up;
        j->ids[0] = b->ids[i];
        if (b->kind == JOB_REGISTER)
            j->entries[0] = b->entries[i];
        j->due_ms = sw_mono_ms();
        insert_locked(t, j);
    }
}

/* After an attempt: requeue, split or drop. Locked. */
static void settle_locked(struct visor_tpd *t, struct job *j, enum job_outcome out)
{
    unsigned limit = out == JOB_RETRY_404 ? TPD_MAX_404 : TPD_MAX_ATTEMPTS;
    int64_t delay;
    char what[96];

    if (out == JOB_SPLIT) {
        split_locked(t, j);
    } else if ((out == JOB_RETRY || out == JOB_RETRY_404) && j->retry && !j->canceled &&
               !t->stopping && j->attempts < limit) {
        /* the backoff steps on every retry, a 404 one too, as the attempts count */
        delay = sw_backoff_next(&j->backoff);
        if (out == JOB_RETRY_404)
            delay = TPD_RETRY_404_MS;
        j->due_ms = sw_deadline_ms(delay);
        sw_log_debug("discovery: %s: attempt %u, retry in %lld ms", job_what(j, what, sizeof(what)),
                     j->attempts + 1, (long long)delay);
        insert_locked(t, j);
        return;
    } else if (out != JOB_DONE && j->retry && !j->canceled && !t->stopping) {
        sw_log_warn("discovery: giving up on %s after %u attempts", job_what(j, what, sizeof(what)),
                    j->attempts);
    }
    job_free(j);
}

static void wait_until_locked(struct visor_tpd *t, int64_t due_ms)
{
    struct timespec ts;
    int ms = sw_ms_left(due_ms);

    sw_cond_deadline(ms > 1000 ? 1000 : ms, &ts);
    pthread_cond_timedwait(&t->cond, &t->mu, &ts);
}

static void *worker(void *arg)
{
    struct visor_tpd *t = arg;
    struct job *j;
    enum job_outcome out;

    pthread_mutex_lock(&t->mu);
    for (;;) {
        j = t->head;
        if (t->stopping && (!j || sw_ms_left(t->drain_until) == 0))
            break;
        if (!j) {
            pthread_cond_wait(&t->cond, &t->mu);
            continue;
        }
        if (!t->stopping && sw_ms_left(j->due_ms) > 0) {
            wait_until_locked(t, j->due_ms);
            continue;
        }
        t->head = j->next;
        t->running = j;
        pthread_mutex_unlock(&t->mu);
        out = run_job(t, j);
        pthread_mutex_lock(&t->mu);
        t->running = NULL;
        settle_locked(t, j, out);
    }
    while ((j = t->head)) {
        t->head = j->next;
        job_free(j);
    }
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

int visor_tpd_start(struct visor *v, struct visor_tpd **out)
{
    struct sw_http_client_opts opts = { .connect_timeout_ms = 3000, .timeout_ms = 5000,
                                        .max_response = 4u << 20 };
    struct visor_tpd *t = calloc(1, sizeof(*t));

    if (!t)
        return SW_ENOMEM;
    t->kp = v->cfg.kp;
    snprintf(t->url, sizeof(t->url), "%s", v->cfg.tpd_url);
    /* private network: signed requests carry our certificate (SW-Cert) */
    if (!(t->http = sw_http_client_new(&opts)) ||
        sw_http_client_set_cert(t->http, sw_network_own_cert_hex(v->net))) {
        sw_http_client_free(t->http);
        free(t);
        return SW_ENOMEM;
    }
    pthread_mutex_init(&t->mu, NULL);
    sw_cond_init(&t->cond);
    if (pthread_create(&t->th, NULL, worker, t)) {
        sw_http_client_free(t->http);
        sw_keypair_wipe(&t->kp);
        free(t);
        return SW_EIO;
    }
    *out = t;
    return SW_OK;
}

void visor_tpd_stop(struct visor_tpd *t, int drain_ms)
{
    if (!t)
        return;
    pthread_mutex_lock(&t->mu);
    t->stopping = true;
    t->drain_until = sw_deadline_ms(drain_ms);
    pthread_cond_signal(&t->cond);
    pthread_mutex_unlock(&t->mu);
    pthread_join(t->th, NULL);
    sw_http_client_free(t->http);
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->cond);
    sw_keypair_wipe(&t->kp);
    free(t);
}
