/* rpc.c — request/response exchanges with a visor's rule server (messaging port 3). */
#include "setup-node/sn.h"
#include "common/clock.h"
#include "common/json.h"
#include "common/log.h"

#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void sn_peer_close(struct sn_peer *p)
{
    if (p->fd >= 0)
        close(p->fd);
    p->fd = -1;
    p->pooled = false;
}

void sn_peer_release(struct sn_app *app, struct sn_peer *p)
{
    /* an open fd is in step: every failure that could leave an answer unread closed it */
    if (p->fd >= 0 && !atomic_load(&app->stopping))
        sn_pool_put(&app->pool, &p->pk, p->fd, p->next_id);
    else if (p->fd >= 0)
        close(p->fd);
    p->fd = -1;
    p->pooled = false;
}

/* Fills err with code and "visor <pk>: <what>" (the reason the requesting visor reads). */
static int fail_set(struct sw_error *err, int code, const struct sn_peer *p, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail_set(struct sw_error *err, int code, const struct sn_peer *p, const char *fmt, ...)
{
    char hex[SW_PK_HEX_LEN + 1], what[200];
    va_list ap;
    sw_pk_to_hex(&p->pk, hex);
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    return sw_error_set(err, code, "visor %.16s: %s", hex, what);
}

/* An idle pooled stream may carry a request only when nothing is readable on it: an EOF (the
 * visor closed it, or restarted) or stray bytes mean it is dead or out of step. */
static bool idle_ok(int fd)
{
    struct pollfd pf = { .fd = fd, .events = POLLIN };
    return poll(&pf, 1, 0) == 0;
}

/* fresh: dial even when the pool has a stream (the retry after a pooled one failed). */
static int ensure_stream(struct sn_app *app, struct sn_peer *p, bool fresh, struct sw_error *err)
{
    struct sw_error why = { 0 };
    int refusal = 0, rc;
    if (p->fd >= 0)
        return SW_OK;
    while (!fresh && sn_pool_take(&app->pool, &p->pk, &p->fd, &p->next_id)) {
        if (idle_ok(p->fd)) {
            p->pooled = true;
            return SW_OK;
        }
        close(p->fd);
        p->fd = -1;
    }
    /* private network: rules go only to keys holding a visor certificate; the handshake
     * refuses any other, and the setup fails naming why */
    rc = sw_msg_dial_roles(app->msg, &p->pk, SW_RULES_PORT, SW_ROLE_BIT(SW_ROLE_VISOR),
                           (int)app->step_timeout_ms, &p->fd, &refusal, &why);
    if (rc == SW_OK)
        return SW_OK;
    p->fd = -1;
    return fail_set(err, SW_EIO, p, "unreachable on messaging port 3: %s",
                    why.msg[0] ? why.msg : sw_strerror(rc));
}

/* Checks the response: matching id, ok true, or the visor's error (SW_EPROTO; SW_ENOTFOUND
 * for a group_ready refused with no_listener). */
static int check_response(struct json_object *resp, uint64_t id, struct sn_peer *p, enum sn_step step,
                          struct sw_error *err)
{
    struct json_object *e;
    struct sw_error why = { 0 };
    const char *code = "error", *msg = "";
    uint64_t rid;
    bool ok;
    int rc;
    if (sw_json_get_u64(resp, "id", "", &rid, &why) || rid != id || sw_json_get_bool(resp, "ok", "", &ok, &why)) {
        sn_peer_close(p); /* out of sync: a later step must not read this stream's leftovers */
        return fail_set(err, SW_EPROTO, p, "malformed %s response: %s", sn_step_names[step],
                        why.msg[0] ? why.msg : "id does not match");
    }
    if (ok)
        return SW_OK;
    if (sw_json_get_object(resp, "error", "", &e, NULL) == SW_OK) {
        sw_json_get_string(e, "code", "error", 64, &code, NULL);
        sw_json_get_string(e, "message", "error", 160, &msg, NULL);
    }
    rc = step == SN_STEP_GROUP_READY && strcmp(code, "no_listener") == 0 ? SW_ENOTFOUND : SW_EPROTO;
    return fail_set(err, rc, p, "refused %s: %s: %s", sn_step_names[step], code, msg);
}

/* *sent: the whole request was written (the visor may have run it even if no answer came). */
static int exchange(struct sn_app *app, struct sn_peer *p, enum sn_step step, uint64_t id,
                    struct json_object *req, struct json_object **out, bool *sent, struct sw_error *err)
{
    struct sw_error why = { 0 };
    char *buf = NULL;
    size_t len;
    int rc = sw_setup_send(p->fd, req, (int)app->step_timeout_ms);
    *sent = rc == SW_OK;
    if (rc == SW_OK)
        rc = sw_setup_frame_read(p->fd, (int)app->step_timeout_ms, &buf, &len);
    if (rc == SW_ETIMEDOUT)
        return fail_set(err, SW_ETIMEDOUT, p, "no answer to %s within the step timeout", sn_step_names[step]);
    if (rc)
        return fail_set(err, SW_EIO, p, "stream failed during %s: %s", sn_step_names[step], sw_strerror(rc));
    rc = sw_json_parse(buf, len, out, &why);
    free(buf);
    if (rc) {
        sn_peer_close(p); /* out of sync, as above */
        return fail_set(err, SW_EPROTO, p, "malformed %s response: %s", sn_step_names[step], why.msg);
    }
    if ((rc = check_response(*out, id, p, step, err))) {
        json_object_put(*out);
        *out = NULL;
        return rc;
    }
    return SW_OK;
}

int sn_rpc(struct sn_app *app, struct sn_peer *p, enum sn_step step, struct json_object *req,
           struct json_object **resp, struct sw_error *err)
{
    struct json_object *r = NULL;
    int64_t t0 = sw_mono_ns();
    uint64_t id;
    bool pooled, sent, fresh = false;
    int rc;
again:
    if ((rc = ensure_stream(app, p, fresh, err)))
        return rc;
    pooled = p->pooled;
    id = ++p->next_id;
    json_object_object_add(req, "id", json_object_new_uint64(id));
    rc = exchange(app, p, step, id, req, &r, &sent, err);
    p->pooled = false;
    /* A pooled stream that died while idle (visor restart): once more on a newly dialed one
     * (not another pooled one), only when the visor cannot have run the request (it did not
     * get all of it) or running it twice is harmless: del_rules; reserve (IDs reserved by a
     * lost answer expire, as after any failed setup). A second add_rules would be refused
     * ("exists") and read as "nothing installed"; a second group_ready reach the app twice. */
    if (rc == SW_EIO && pooled &&
        (!sent || step == SN_STEP_RESERVE || step == SN_STEP_DEL_RULES)) {
        sn_peer_close(p);
        fresh = true;
        goto again;
    }
    sw_histogram_observe_ns(&app->step_latency[step], sw_mono_ns() - t0);
    if (rc) {
        if (rc == SW_ETIMEDOUT || rc == SW_EIO)
            sn_peer_close(p); /* out of sync or dead */
        return rc;
    }
    if (resp)
        *resp = r;
    else
        json_object_put(r);
    return SW_OK;
}

static void *call_main(void *arg)
{
    struct sn_call *c = arg;
    c->resp = NULL;
    c->rc = sn_rpc(c->app, c->peer, c->step, c->req, &c->resp, &c->err);
    return NULL;
}

void sn_rpc_all(struct sn_app *app, enum sn_step step, struct sn_call *calls, size_t n)
{
    pthread_t th[SN_MAX_PEERS];
    bool started[SN_MAX_PEERS] = { false };
    for (size_t i = 0; i < n; i++) {
        calls[i].app = app;
        calls[i].step = step;
        if (i > 0 && i < SN_MAX_PEERS)
            started[i] = pthread_create(&th[i], NULL, call_main, &calls[i]) == 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (i < SN_MAX_PEERS && started[i])
            pthread_join(th[i], NULL);
        else
            call_main(&calls[i]);
    }
}
