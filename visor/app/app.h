/* app.h — the C library for Skywire apps (docs/routing.md §5).
 *
 * An app talks to its visor over the unix socket named by $SKYWIRE_APP_SOCKET (pass
 * sock = NULL) or an explicit path. Connections are ordinary blocking file descriptors. The
 * bytes travel over a route group, encrypted end to end between the two visors.
 *  - stream routes (the default): a SOCK_STREAM fd, reliable and ordered end to end,
 *    flow-controlled (a reader that stops slows its writer; nothing is dropped), surviving a
 *    failover of the route; read, write (use MSG_NOSIGNAL or ignore SIGPIPE),
 *    shutdown(SHUT_WR) for half-close, close;
 *  - datagram routes: a SOCK_SEQPACKET fd, one message per datagram (at most 65,000 bytes),
 *    unordered and unreliable like UDP (what the VPN carries): nothing waits behind a lost one.
 *
 * Every function blocks the calling thread only. Returned fds belong to the caller. */
#ifndef SW_APP_H
#define SW_APP_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "common/keys.h"

#define SW_APP_SOCKET_ENV "SKYWIRE_APP_SOCKET"
#define SW_APP_PORT_ENV "SKYWIRE_APP_PORT"

/* The app's own port from $SKYWIRE_APP_PORT (set by the visor), dflt when unset or empty.
 * SW_EINVAL with err when it is not a port 1..65535. */
int sw_app_own_port(uint16_t dflt, uint16_t *port, struct sw_error *err);

/* Dials pk:port through routes the visor finds (route finder) and sets up (setup node).
 * SW_EPERM / SW_ENOTFOUND / SW_EIO with err naming the visor's reason. Up to ~40 s. */
int sw_app_dial(const char *sock, const struct sw_pk *pk, uint16_t port, int *fd,
                struct sw_error *err);
/* Source routing: forward and reverse are JSON arrays of hops
 * [{"from":pk,"to":pk,"t_id":uuid},...] (docs/routing.md §3). */
int sw_app_dial_path(const char *sock, const struct sw_pk *pk, uint16_t port,
                     const char *forward_json, const char *reverse_json, int *fd,
                     struct sw_error *err);
struct sw_app_dial_opts {
    const char *forward_json, *reverse_json; /* source routing: both or neither */
    bool datagram;                           /* a datagram route (the listener must be one) */
};
/* sw_app_dial with options (o may be NULL). */
int sw_app_dial_opts(const char *sock, const struct sw_pk *pk, uint16_t port, const struct sw_app_dial_opts *o,
                     int *fd, struct sw_error *err);
/* Listens on port; *listener_fd delivers connections to sw_app_accept. Closing it stops
 * listening. SW_EEXIST when the port is taken. */
int sw_app_listen(const char *sock, uint16_t port, int *listener_fd, struct sw_error *err);
/* The same for datagram routes when datagram is true (stream dials to it fail, and back). */
int sw_app_listen_mode(const char *sock, uint16_t port, bool datagram, int *listener_fd, struct sw_error *err);
/* Next connection (timeout_ms < 0: wait forever). SW_ETIMEDOUT, SW_EIO when the visor
 * closed the listener. */
int sw_app_accept(int listener_fd, int timeout_ms, int *fd, struct sw_pk *remote,
                  uint16_t *remote_port, struct sw_error *err);

#endif
