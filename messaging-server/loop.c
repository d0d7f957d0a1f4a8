/* loop.c — the relay's event loop thread: listener, accept, orderly stop.
 *
 * Stop: the main thread (which alone receives SIGTERM, common/daemon.h) activates stop_ev
 * (event_active is thread-safe: main() enabled libevent's pthread locking). On the loop:
 * close the listener, reset every stream, GOAWAY(shutdown) every session, close pending
 * handshakes; the loop breaks when the last session is freed, or FORCE_MS later closes
 * whatever still lingers. */
#include "messaging-server/ms.h"
#include "common/clock.h"
#include "common/hostport.h"
#include "common/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define LISTEN_BACKLOG 512
#define RELISTEN_MS 100 /* pause after accept() fails (EMFILE) instead of spinning */
#define FORCE_MS 3000   /* sessions drain GOAWAY within 2 s (msg_session LINGER_MS) */

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len, void *arg)
{
    ms_peer_accept(arg, fd, sa, len);
}

static void accept_error_cb(struct evconnlistener *l, void *arg)
{
    struct ms_server *srv = arg;
    struct timeval tv = { 0, RELISTEN_MS * 1000 };
    sw_log_warn("accept failed: %s; pausing the listener for %d ms",
                strerror(EVUTIL_SOCKET_ERROR()), RELISTEN_MS);
    evconnlistener_disable(l);
    evtimer_add(srv->relisten_ev, &tv);
}

static void relisten_cb(evutil_socket_t fd, short what, void *arg)
{
    struct ms_server *srv = arg;
    if (srv->listener && !srv->stopping)
        evconnlistener_enable(srv->listener);
}

static void force_cb(evutil_socket_t fd, short what, void *arg)
{
    struct ms_server *srv = arg;
    sw_log_warn("%ld sessions still open after %d ms; closing them", srv->n_conns, FORCE_MS);
    ms_peers_force_close(srv);
}

/* Private network: a new revocation list (its generation changed), the earliest
 * certificate's expiry, or MS_MEMBERS_RECHECK_MS since the last sweep re-checks every
 * session. */
static void members_cb(evutil_socket_t fd, short what, void *arg)
{
    struct ms_server *srv = arg;
    uint64_t gen = sw_network_generation(srv->net);
    uint64_t now_s = (uint64_t)(sw_unix_ms() / 1000);

    if (srv->stopping)
        return;
    if (gen != srv->members_gen || (srv->members_expiry && now_s >= srv->members_expiry) ||
        sw_ms_since(srv->members_swept_ms) >= MS_MEMBERS_RECHECK_MS) {
        srv->members_gen = gen;
        srv->members_swept_ms = sw_mono_ms();
        ms_peers_recheck(srv);
    }
}

static void stop_cb(evutil_socket_t fd, short what, void *arg)
{
    struct ms_server *srv = arg;
    struct timeval tv = { FORCE_MS / 1000, (FORCE_MS % 1000) * 1000 };

    srv->stopping = true;
    if (srv->listener) {
        evconnlistener_free(srv->listener);
        srv->listener = NULL;
    }
    evtimer_del(srv->relisten_ev);
    evtimer_del(srv->slot_log.ev);
    if (srv->members_ev)
        event_del(srv->members_ev);
    sw_log_info("sending GOAWAY(shutdown) to %lld sessions", (long long)atomic_load(&srv->m.sessions));
    ms_peers_shutdown(srv);
    if (srv->n_conns == 0)
        event_base_loopbreak(srv->base);
    else
        evtimer_add(srv->force_ev, &tv);
}

static void *loop_main(void *arg)
{
    struct ms_server *srv = arg;
    event_base_loop(srv->base, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

static int listen_on(struct ms_server *srv, struct sw_error *err)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);

    memset(&ss, 0, sizeof(ss));
    /* the host:port rules of every address; libevent only turns the numeric text into a sockaddr */
    if (sw_hostport_parse(srv->cfg.addr, 0, NULL, 0, NULL) ||
        evutil_parse_sockaddr_port(srv->cfg.addr, (struct sockaddr *)&ss, &len) != 0)
        return sw_error_set(err, SW_EINVAL, "--addr '%s' is not IP:PORT", srv->cfg.addr);
    srv->listener = evconnlistener_new_bind(srv->base, accept_cb, srv,
                                            LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
                                            LISTEN_BACKLOG, (struct sockaddr *)&ss, len);
    if (!srv->listener)
        return sw_error_set(err, SW_EIO, "cannot listen on %s: %s", srv->cfg.addr, strerror(errno));
    evconnlistener_set_error_cb(srv->listener, accept_error_cb);
    return SW_OK;
}

static void loop_free(struct ms_server *srv)
{
    if (srv->listener)
        evconnlistener_free(srv->listener);
    if (srv->stop_ev)
        event_free(srv->stop_ev);
    if (srv->force_ev)
        event_free(srv->force_ev);
    if (srv->relisten_ev)
        event_free(srv->relisten_ev);
    if (srv->members_ev)
        event_free(srv->members_ev);
    ms_slots_free(srv);
    if (srv->base)
        event_base_free(srv->base);
    ms_table_free(&srv->peers);
    ms_table_free(&srv->ends);
    srv->listener = NULL;
    srv->stop_ev = srv->force_ev = srv->relisten_ev = srv->members_ev = NULL;
    srv->base = NULL;
}

int ms_loop_start(struct ms_server *srv, struct sw_error *err)
{
    int rc;

    LIST_INIT(&srv->conns);
    if (!(srv->base = event_base_new()))
        return sw_error_set(err, SW_ENOMEM, "cannot create the event loop");
    if (ms_table_init(&srv->peers, offsetof(struct ms_peer, pk) - offsetof(struct ms_peer, node), SW_PK_LEN) ||
        ms_table_init(&srv->ends, offsetof(struct ms_end, ekey) - offsetof(struct ms_end, node),
                      sizeof(struct ms_ekey)) || ms_slots_init(srv)) {
        rc = sw_error_set(err, SW_ENOMEM, "out of memory");
        goto fail;
    }
    srv->stop_ev = event_new(srv->base, -1, 0, stop_cb, srv);
    srv->force_ev = evtimer_new(srv->base, force_cb, srv);
    srv->relisten_ev = evtimer_new(srv->base, relisten_cb, srv);
    if (!srv->stop_ev || !srv->force_ev || !srv->relisten_ev) {
        rc = sw_error_set(err, SW_ENOMEM, "out of memory");
        goto fail;
    }
    if (srv->net) {
        struct timeval tv = { MS_MEMBERS_POLL_MS / 1000, (MS_MEMBERS_POLL_MS % 1000) * 1000 };
        if (!(srv->members_ev = event_new(srv->base, -1, EV_PERSIST, members_cb, srv))) {
            rc = sw_error_set(err, SW_ENOMEM, "out of memory");
            goto fail;
        }
        srv->members_gen = sw_network_generation(srv->net);
        srv->members_swept_ms = sw_mono_ms();
        event_add(srv->members_ev, &tv);
    }
    if ((rc = listen_on(srv, err)))
        goto fail;
    if (pthread_create(&srv->loop_thread, NULL, loop_main, srv) != 0) {
        rc = sw_error_set(err, SW_EIO, "cannot start the relay thread");
        goto fail;
    }
    srv->loop_started = true;
    return SW_OK;
fail:
    loop_free(srv);
    return rc;
}

void ms_loop_stop(struct ms_server *srv)
{
    if (!srv->loop_started)
        return;
    event_active(srv->stop_ev, EV_TIMEOUT, 1);
    pthread_join(srv->loop_thread, NULL);
    srv->loop_started = false;
    loop_free(srv);
}
