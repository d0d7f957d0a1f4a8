/* server.c — messaging port 2: accepts visors' streams, one worker thread per stream. */
#include "setup-node/sn.h"
#include "common/json.h"
#include "common/log.h"

#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SN_IDLE_SLICE_MS 500
#define SN_IDLE_MAX_MS (5 * 60 * 1000) /* an idle requester stream is closed after this */

struct sn_conn {
    struct sn_app *app;
    int fd;
    struct sw_pk remote;
};

/* Waits for the next request's first byte; false on stop, idle limit, or hang-up. */
static bool wait_request(struct sn_app *app, int fd)
{
    for (int waited = 0; waited < SN_IDLE_MAX_MS && !atomic_load(&app->stopping); waited += SN_IDLE_SLICE_MS) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int n = poll(&p, 1, SN_IDLE_SLICE_MS);
        if (n > 0)
            return true;
    }
    return false;
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
    while (wait_request(app, c->fd) && serve_one(c))
        ;
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
    struct sn_conn *c = malloc(sizeof(*c));
    pthread_attr_t attr;
    pthread_t t;
    bool ok = false;
    pthread_mutex_lock(&app->mu);
    if (c && app->workers < SN_MAX_WORKERS) {
        *c = (struct sn_conn){ .app = app, .fd = fd, .remote = *remote };
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        ok = pthread_create(&t, &attr, conn_main, c) == 0;
        pthread_attr_destroy(&attr);
        if (ok)
            app->workers++;
    }
    pthread_mutex_unlock(&app->mu);
    if (!ok) {
        sw_log_warn("refusing a setup stream: %u streams are being served", (unsigned)SN_MAX_WORKERS);
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
    if (sw_msg_listen(app->msg, SW_SETUP_PORT, &app->listener_fd, &why))
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
