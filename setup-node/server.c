/* server.c — messaging port 2: accepts visors' streams, one worker thread per stream, with
 * per-key and shared limits that idle streams cannot exhaust (struct sn_conn). */
#include "setup-node/sn.h"
#include "common/clock.h"
#include "common/json.h"
#include "common/log.h"

#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define SN_IDLE_SLICE_MS 500
#define SN_FIRST_REQUEST_MS 5000 /* a new stream's first request must start within this */
#define SN_IDLE_MAX_MS 10000     /* and each later one within this (visors send theirs at once) */
#define SN_STREAMS_PER_KEY 48    /* a requester's streams (a visor dials one per app dial in
                                  * progress, at most 32, plus re-establishments): at the limit,
                                  * its oldest idle one goes */
#define SN_EVICT_IDLE_MS 250     /* only a stream idle this long may be closed for a newer one:
                                  * a fresh stream's request is on its way */

/* A requester's stream. Shared slots (SN_MAX_WORKERS) go to whoever asks: a new stream that
 * finds them all taken, or its key at SN_STREAMS_PER_KEY, closes the oldest stream waiting
 * idle for a request (the key's own first), so idle streams cannot hold the setup node. */
struct sn_conn {
    struct sn_app *app;
    int fd;
    struct sw_pk remote;
    bool idle;            /* under app->mu: waiting for a request */
    int64_t idle_since;   /* under app->mu: monotonic ms, when idle */
    bool evicted;         /* under app->mu: shut down for a newer stream */
    struct sn_conn *next; /* under app->mu: app->conns, oldest first */
};

/* Waits for the next request's first byte; false on stop, deadline, hang-up or eviction. */
static bool wait_request(struct sn_conn *c, int limit_ms)
{
    struct sn_app *app = c->app;
    bool ready = false;

    pthread_mutex_lock(&app->mu);
    c->idle = !c->evicted;
    c->idle_since = sw_mono_ms();
    pthread_mutex_unlock(&app->mu);
    for (int waited = 0; waited < limit_ms && !atomic_load(&app->stopping); waited += SN_IDLE_SLICE_MS) {
        struct pollfd p = { .fd = c->fd, .events = POLLIN };
        if (poll(&p, 1, SN_IDLE_SLICE_MS) > 0) {
            ready = true;
            break;
        }
    }
    pthread_mutex_lock(&app->mu);
    ready = ready && !c->evicted;
    c->idle = false;
    pthread_mutex_unlock(&app->mu);
    return ready;
}

/* Under app->mu: closes the oldest stream idle for SN_EVICT_IDLE_MS or more (of key when
 * non-NULL). False when none. */
static bool evict_oldest_idle(struct sn_app *app, const struct sw_pk *key)
{
    int64_t now = sw_mono_ms();

    for (struct sn_conn *c = app->conns; c; c = c->next) {
        if (!c->idle || c->evicted || now - c->idle_since < SN_EVICT_IDLE_MS ||
            (key && !sw_pk_equal(&c->remote, key)))
            continue;
        c->evicted = true;
        shutdown(c->fd, SHUT_RDWR); /* its worker wakes up and closes it */
        app->m_evicted++;
        return true;
    }
    return false;
}

/* Under app->mu: room for a stream from key (evicting an idle one when needed)? */
static bool make_room(struct sn_app *app, const struct sw_pk *key)
{
    unsigned live = 0, of_key = 0;

    for (struct sn_conn *c = app->conns; c; c = c->next) {
        live += !c->evicted;
        of_key += !c->evicted && sw_pk_equal(&c->remote, key);
    }
    if (of_key >= SN_STREAMS_PER_KEY && !evict_oldest_idle(app, key))
        return false;
    if (live >= SN_MAX_WORKERS && !evict_oldest_idle(app, NULL))
        return false;
    return app->workers < SN_MAX_WORKERS + SN_STREAMS_PER_KEY; /* evicted ones are still leaving */
}

static void unlink_conn(struct sn_app *app, struct sn_conn *c)
{
    for (struct sn_conn **pp = &app->conns; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            return;
        }
}

static struct json_object *error_for(uint64_t id, int rc, const char *msg)
{
    return sw_setup_error(id, rc == SW_ERANGE ? "invalid_path" : "invalid_request", msg);
}

/* One request -> one response; false when the stream must be closed. */
static bool serve_one(struct sn_conn *c)
{
    struct sw_route_group_req *req = NULL;
    struct json_object *root = NULL, *resp = NULL;
    struct sw_error err = { 0 };
    char *buf = NULL;
    size_t len;
    uint64_t id = 0;
    bool keep = false;
    int rc = sw_setup_frame_read(c->fd, (int)c->app->step_timeout_ms, &buf, &len);
    if (rc) {
        if (rc != SW_ENOTFOUND)
            sw_log_info("closing a setup stream: bad or incomplete frame (%s)", sw_strerror(rc));
        return false;
    }
    if ((rc = sw_json_parse(buf, len, &root, &err)) == SW_OK && json_object_is_type(root, json_type_object)) {
        struct json_object *v = json_object_object_get(root, "id");
        if (json_object_is_type(v, json_type_int))
            id = json_object_get_uint64(v);
    }
    if (!(req = malloc(sizeof(*req)))) {
        resp = sw_setup_error(id, "internal_error", "out of memory");
    } else if (rc || (rc = sw_route_group_parse(root, req, &err))) {
        atomic_fetch_add(&c->app->results[rc == SW_ERANGE ? SN_INVALID_PATH : SN_INVALID_REQUEST], 1);
        sw_log_info("route_group request %" PRIu64 " rejected: %s", id, err.msg);
        resp = error_for(id, rc, err.msg);
    } else {
        sn_setup_run(c->app, &c->remote, req, &resp);
    }
    keep = resp && sw_setup_send(c->fd, resp, (int)c->app->step_timeout_ms) == SW_OK;
    json_object_put(resp);
    json_object_put(root);
    free(req);
    free(buf);
    return keep;
}

static void *conn_main(void *arg)
{
    struct sn_conn *c = arg;
    struct sn_app *app = c->app;
    int limit_ms = SN_FIRST_REQUEST_MS;

    while (wait_request(c, limit_ms) && serve_one(c))
        limit_ms = SN_IDLE_MAX_MS;
    pthread_mutex_lock(&app->mu);
    unlink_conn(app, c);
    pthread_mutex_unlock(&app->mu);
    close(c->fd);
    free(c);
    pthread_mutex_lock(&app->mu);
    app->workers--;
    pthread_cond_broadcast(&app->cv);
    pthread_mutex_unlock(&app->mu);
    return NULL;
}

static void spawn_worker(struct sn_app *app, int fd, const struct sw_pk *remote)
{
    struct sn_conn *c = calloc(1, sizeof(*c)), **tail;
    pthread_attr_t attr;
    pthread_t t;
    bool ok = false;
    char hex[SW_PK_HEX_LEN + 1];

    pthread_mutex_lock(&app->mu);
    if (c && make_room(app, remote)) {
        *c = (struct sn_conn){ .app = app, .fd = fd, .remote = *remote };
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        ok = pthread_create(&t, &attr, conn_main, c) == 0;
        pthread_attr_destroy(&attr);
        if (ok) {
            app->workers++;
            for (tail = &app->conns; *tail; tail = &(*tail)->next)
                ;
            *tail = c;
        }
    }
    if (!ok)
        app->m_refused++;
    pthread_mutex_unlock(&app->mu);
    if (!ok) {
        sw_pk_to_hex(remote, hex);
        sw_log_warn("refusing a setup stream from %.16s…: its %d streams or all %u are busy or just opened",
                    hex, SN_STREAMS_PER_KEY, (unsigned)SN_MAX_WORKERS);
        close(fd);
        free(c);
    }
}

static void *listen_main(void *arg)
{
    struct sn_app *app = arg;
    if (sw_msg_client_wait_ready(app->msg, 15000) != SW_OK)
        sw_log_warn("no messaging session yet; still trying");
    sn_setup_recover(app);
    while (!atomic_load(&app->stopping)) {
        struct sw_error err = { 0 };
        struct sw_pk remote;
        int fd = -1, rc = sw_msg_accept(app->listener_fd, SN_IDLE_SLICE_MS, &fd, &remote, NULL, &err);
        if (rc == SW_OK)
            spawn_worker(app, fd, &remote);
        else if (rc != SW_ETIMEDOUT) {
            sw_log_error("messaging port %d: %s", SW_SETUP_PORT, err.msg[0] ? err.msg : sw_strerror(rc));
            break;
        }
    }
    return NULL;
}

int sn_server_start(struct sn_app *app, struct sw_error *err)
{
    struct sw_error why = { 0 };
    /* private network: route_group requests come from visors only */
    if (sw_msg_listen_roles(app->msg, SW_SETUP_PORT, SW_ROLE_BIT(SW_ROLE_VISOR), &app->listener_fd, &why))
        return sw_error_set(err, SW_EIO, "cannot listen on messaging port %d: %s", SW_SETUP_PORT, why.msg);
    if (pthread_create(&app->listen_thread, NULL, listen_main, app) != 0) {
        close(app->listener_fd);
        return sw_error_set(err, SW_EIO, "cannot start the messaging listener thread");
    }
    return SW_OK;
}

/* Stops accepting, lets running setups finish or fail (each step is bounded), joins. */
void sn_server_stop(struct sn_app *app)
{
    atomic_store(&app->stopping, true);
    pthread_join(app->listen_thread, NULL);
    sw_msg_unlisten(app->msg, SW_SETUP_PORT);
    close(app->listener_fd);
    pthread_mutex_lock(&app->mu);
    while (app->workers > 0)
        pthread_cond_wait(&app->cv, &app->mu);
    pthread_mutex_unlock(&app->mu);
}
