/* inbox.c — incoming chat connections on the app port: each frame {"message","sent_at",
 * "nonce"?} is stored with the remote key the visor authenticated, then acknowledged with
 * {"ok":true} (or {"ok":false,"error":CODE} and the connection stays usable). A text that is
 * not valid UTF-8 (common/utf8.h) is refused like any other bad message: one log line, never
 * stored. */
#include "apps/skychat/chat.h"
#include "common/cond.h"
#include "common/json.h"
#include "common/log.h"
#include "common/utf8.h"
#include "visor/app/app.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SC_MAX_INCOMING 64

static int listener = -1;
static pthread_t acceptor;
static bool acceptor_running;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv; /* sw_cond_init in sc_inbox_start */
static unsigned active;

struct conn {
    int fd;
    struct sw_pk remote;
};

static void answer(int fd, const char *code)
{
    char buf[96];
    int n = code ? snprintf(buf, sizeof(buf), "{\"ok\":false,\"error\":\"%s\"}", code)
                 : snprintf(buf, sizeof(buf), "{\"ok\":true}");
    sc_frame_write(fd, buf, (size_t)n);
}

/* Stores one message frame (borrowed); returns NULL or the error code to answer. */
static const char *take(const struct sw_pk *from, struct json_object *o)
{
    struct json_object *v;
    const char *text, *code = NULL;
    uint64_t sent_at = 0, nonce = 0;

    if (!json_object_is_type(o, json_type_object)) {
        code = "invalid_json";
    } else if (!json_object_object_get_ex(o, "message", &v) || !json_object_is_type(v, json_type_string)) {
        code = "invalid_message";
    } else if ((size_t)json_object_get_string_len(v) > SC_MSG_MAX) {
        code = "message_too_large";
    } else if (json_object_get_string_len(v) == 0 ||
               memchr(json_object_get_string(v), '\0', (size_t)json_object_get_string_len(v))) {
        code = "invalid_message";
    } else if (!sw_utf8_valid(json_object_get_string(v), (size_t)json_object_get_string_len(v), NULL)) {
        code = "invalid_utf8"; /* never stored: /messages and /sse stay valid JSON text */
    } else {
        text = json_object_get_string(v);
        if (json_object_object_get_ex(o, "sent_at", NULL))
            sw_json_get_u64(o, "sent_at", "", &sent_at, NULL);
        if (json_object_object_get_ex(o, "nonce", NULL))
            sw_json_get_u64(o, "nonce", "", &nonce, NULL);
        if (!sc_store_add(from, false, text, (size_t)json_object_get_string_len(v), sent_at, nonce))
            code = "out_of_memory";
    }
    return code;
}

static void *serve(void *arg)
{
    struct conn *c = arg;
    char hex[SW_PK_HEX_LEN + 1];

    sw_pk_to_hex(&c->remote, hex);
    for (;;) {
        struct json_object *msg = NULL;
        const char *code;
        int rc = sc_frame_recv(c->fd, -1, &msg);

        if (rc == SW_ERANGE) {
            answer(c->fd, "frame_too_large");
            break;
        }
        if (rc && rc != SW_EINVAL)
            break;
        code = rc ? "invalid_json" : take(&c->remote, msg);
        json_object_put(msg);
        if (code)
            sw_log_info("refused a message from %s: %s", hex, code);
        else
            sw_log_debug("message from %s", hex);
        answer(c->fd, code);
    }
    close(c->fd);
    free(c);
    pthread_mutex_lock(&mu);
    active--;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    return NULL;
}

static void *accept_loop(void *arg)
{
    (void)arg;
    while (!sc_stopping()) {
        struct sw_error err = { 0 };
        struct sw_pk remote;
        uint16_t rport;
        struct conn *c;
        pthread_t th;
        pthread_attr_t ta;
        bool full;
        int fd, rc = sw_app_accept(listener, 500, &fd, &remote, &rport, &err);

        if (rc == SW_ETIMEDOUT)
            continue;
        if (rc) {
            if (!sc_stopping()) {
                /* the visor closed the listener (it stopped): nothing left to do */
                sw_log_error("accept: %s; shutting down", err.msg);
                kill(getpid(), SIGTERM);
            }
            break;
        }
        pthread_mutex_lock(&mu);
        full = active >= SC_MAX_INCOMING;
        if (!full)
            active++;
        pthread_mutex_unlock(&mu);
        if (full || !(c = malloc(sizeof(*c)))) {
            sw_log_warn("dropping an incoming connection: %s", full ? "too many" : "out of memory");
            close(fd);
            if (!full) {
                pthread_mutex_lock(&mu);
                active--;
                pthread_mutex_unlock(&mu);
            }
            continue;
        }
        c->fd = fd;
        c->remote = remote;
        pthread_attr_init(&ta);
        pthread_attr_setdetachstate(&ta, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&th, &ta, serve, c)) {
            close(fd);
            free(c);
            pthread_mutex_lock(&mu);
            active--;
            pthread_mutex_unlock(&mu);
        }
        pthread_attr_destroy(&ta);
    }
    return NULL;
}

int sc_inbox_start(struct sw_error *err)
{
    sw_cond_init(&cv);
    if (sw_app_listen(NULL, sc_opt.port, &listener, err))
        return err ? err->code : SW_EIO;
    if (pthread_create(&acceptor, NULL, accept_loop, NULL)) {
        close(listener);
        listener = -1;
        return sw_error_set(err, SW_EIO, "cannot start the accept thread");
    }
    acceptor_running = true;
    return SW_OK;
}

bool sc_inbox_stop(void)
{
    bool drained;
    struct timespec dl;

    if (acceptor_running)
        pthread_join(acceptor, NULL);
    acceptor_running = false;
    if (listener >= 0)
        close(listener);
    listener = -1;
    /* connection threads notice sc_stopping within half a second */
    sw_cond_deadline(3000, &dl);
    pthread_mutex_lock(&mu);
    while (active && pthread_cond_timedwait(&cv, &mu, &dl) == 0)
        ;
    drained = active == 0;
    pthread_mutex_unlock(&mu);
    return drained;
}
