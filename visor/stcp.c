/* stcp.c — the stcp listener: accepts TCP connections on stcp.listen and hands each to a
 * responder link, which must finish the Noise XK handshake within VISOR_HANDSHAKE_MS.
 * At most VISOR_MAX_HANDSHAKES inbound handshakes run at once; beyond that new
 * connections are closed at once, so a flood of idle sockets cannot exhaust the visor.
 * Dialing lives in link.c (visor_link_dial_stcp). */
#include "visor/visor.h"
#include "common/hostport.h"
#include "common/log.h"

#include <event2/listener.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

static void format_addr(const struct sockaddr *sa, socklen_t len, char *out, size_t cap)
{
    char host[INET6_ADDRSTRLEN + 16], serv[16];
    if (getnameinfo(sa, len, host, sizeof(host), serv, sizeof(serv), NI_NUMERICHOST | NI_NUMERICSERV))
        snprintf(out, cap, "?");
    else if (sa->sa_family == AF_INET6)
        snprintf(out, cap, "[%s]:%s", host, serv);
    else
        snprintf(out, cap, "%s:%s", host, serv);
}

static void accept_cb(struct evconnlistener *lst, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
    struct visor *v = arg;
    struct visor_link *l;
    char peer[VISOR_ADDR_MAX];

    format_addr(sa, (socklen_t)salen, peer, sizeof(peer));
    if (v->stopping || v->n_handshakes >= VISOR_MAX_HANDSHAKES) {
        sw_log_debug("stcp: refusing %s: %zu handshakes already running", peer, v->n_handshakes);
        evutil_closesocket(fd);
        return;
    }
    if (visor_link_new(v, fd, VISOR_TP_STCP, VISOR_LINK_RESPONDER, true, NULL, peer, &l))
        sw_log_warn("stcp: cannot take the connection from %s: out of memory", peer);
    else
        sw_log_debug("%s: accepted", l->label);
}

static void resume_cb(evutil_socket_t fd, short what, void *arg)
{
    struct visor *v = arg;
    if (v->stcp && !v->stopping)
        evconnlistener_enable(v->stcp);
}

/* Out of descriptors (or similar): pause accepting for a second rather than spin. */
static void accept_error_cb(struct evconnlistener *lst, void *arg)
{
    struct visor *v = arg;
    struct timeval one = { 1, 0 };
    int e = EVUTIL_SOCKET_ERROR();

    sw_log_warn("stcp: accept failed: %s; pausing the listener for 1 s", evutil_socket_error_to_string(e));
    evconnlistener_disable(lst);
    event_base_once(v->base, -1, EV_TIMEOUT, resume_cb, v, &one);
}

int visor_stcp_listen(struct visor *v, struct sw_error *err)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    int slen = (int)sizeof(ss);
    char host[VISOR_ADDR_MAX], spec[VISOR_ADDR_MAX + 8];
    uint16_t port;

    if (!v->cfg.stcp_listen[0])
        return SW_OK;
    if (sw_hostport_parse(v->cfg.stcp_listen, SW_HOSTPORT_LISTEN, host, sizeof(host), &port))
        return sw_error_set(err, SW_EINVAL, "stcp.listen '%s' is not host:port", v->cfg.stcp_listen);
    /* evutil wants IPv6 in brackets and an empty host means every address */
    snprintf(spec, sizeof(spec), strchr(host, ':') ? "[%s]:%u" : "%s:%u", host[0] ? host : "0.0.0.0", port);
    memset(&ss, 0, sizeof(ss));
    if (evutil_parse_sockaddr_port(spec, (struct sockaddr *)&ss, &slen))
        return sw_error_set(err, SW_EINVAL, "stcp.listen '%s' must be a numeric IP address and port",
                            v->cfg.stcp_listen);
    v->stcp = evconnlistener_new_bind(v->base, accept_cb, v,
                                      LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
                                      128, (struct sockaddr *)&ss, slen);
    if (!v->stcp)
        return sw_error_set(err, SW_EIO, "stcp: cannot listen on %s: %s", v->cfg.stcp_listen,
                            evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
    evconnlistener_set_error_cb(v->stcp, accept_error_cb);
    if (getsockname(evconnlistener_get_fd(v->stcp), (struct sockaddr *)&ss, &len) == 0)
        format_addr((struct sockaddr *)&ss, len, v->stcp_addr, sizeof(v->stcp_addr));
    return SW_OK;
}

void visor_stcp_close(struct visor *v)
{
    if (v->stcp)
        evconnlistener_free(v->stcp);
    v->stcp = NULL;
}
