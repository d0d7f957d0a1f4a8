/* msg_client.h — the messaging client: sessions to messaging servers, listening ports and
 * dialing pk:port through them (docs/messaging.md §3-5).
 *
 * The client runs its own thread with a libevent loop; the functions below are called from
 * any other thread and block at most for their timeout. Each stream is handed to the user
 * as an ordinary file descriptor (one end of an AF_UNIX stream socketpair): read/write it,
 * shutdown(SHUT_WR) sends FIN, close() ends the stream. Bytes are encrypted end to end
 * (Noise KK, prologue "skywire-stream/1") between the two clients; servers relay
 * ciphertext. Credit-based flow control keeps one slow reader from stalling other streams.
 *
 * Ownership: fds returned by listen/accept/dial belong to the caller. The client owns
 * everything else; sw_msg_client_stop() closes all sessions and streams and frees it.
 * Stream fds are handed out only once the end-to-end handshake is complete; they are
 * blocking and close-on-exec. When the peer closes, resets, or the session is lost or the
 * client stops, reads return EOF (ECONNRESET if bytes the user wrote were still unsent).
 * Write with MSG_NOSIGNAL (or ignore SIGPIPE): a closed stream raises EPIPE like any socket.
 *
 * The listener fd is one end of an AF_UNIX SOCK_SEQPACKET pair: each accepted stream
 * arrives as one 34-byte message (dialer's public key, dialer's port u16 big-endian) with
 * the stream's fd attached (SCM_RIGHTS). Poll it for POLLIN and call sw_msg_accept.
 * Internals and the stream state machine: docs/messaging.md §7; private networks (which
 * certificate goes where, who is admitted): §9. */
#ifndef SW_MSG_CLIENT_H
#define SW_MSG_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/keys.h"
#include "common/network.h"

struct sw_msg_client;

struct sw_msg_server_addr {
    struct sw_pk pk;
    char address[256]; /* host:port */
};

struct sw_msg_client_config {
    struct sw_keypair kp;           /* copied; wiped at stop */
    const char *discovery_url;      /* messaging discovery base URL (copied) */
    unsigned n_servers;             /* sessions to keep; 0 = 2 */
    /* Optional fixed servers used instead of GET available_servers (copied). */
    const struct sw_msg_server_addr *servers;
    size_t n_fixed_servers;
    int dial_timeout_ms;            /* default per-dial deadline; 0 = 10000 */
    /* Private network (borrowed, outlives the client; NULL = open): sessions send our
     * certificate and accept only servers with role messaging-server; streams send it and
     * admit peers per the roles given to sw_msg_listen_roles / sw_msg_dial_roles. */
    struct sw_network *network;
};

int sw_msg_client_start(const struct sw_msg_client_config *cfg, struct sw_msg_client **out,
                        struct sw_error *err);
void sw_msg_client_stop(struct sw_msg_client *c);

/* Waits until at least one session is up and the client entry is published. */
int sw_msg_client_wait_ready(struct sw_msg_client *c, int timeout_ms);

/* Starts listening on port; *listener_fd becomes readable when a stream arrives. Closing
 * the listener fd (or sw_msg_unlisten) stops listening. SW_EEXIST if already listening. */
int sw_msg_listen(struct sw_msg_client *c, uint16_t port, int *listener_fd, struct sw_error *err);
int sw_msg_unlisten(struct sw_msg_client *c, uint16_t port);
/* As sw_msg_listen, admitting (private network) only streams whose dialer's certificate has
 * one of roles (SW_ROLE_BIT mask; 0 = any member, which is what sw_msg_listen admits); others
 * are refused in the KK handshake with CLOSE(not_a_member) and one warn line, and never
 * reach sw_msg_accept. Open network: as sw_msg_listen. */
int sw_msg_listen_roles(struct sw_msg_client *c, uint16_t port, unsigned roles, int *listener_fd,
                        struct sw_error *err);

/* Takes the next incoming stream from a listener fd (timeout_ms < 0 waits forever, 0
 * polls). SW_ETIMEDOUT when none arrived in time; SW_EIO once the client stopped listening
 * on that port (unlisten, stop); SW_EPROTO for a malformed message. Thread-safe; needs
 * no client pointer. */
int sw_msg_accept(int listener_fd, int timeout_ms, int *conn_fd, struct sw_pk *remote,
                  uint16_t *remote_port, struct sw_error *err);

/* Opens a stream to pk:port. On refusal returns SW_EPERM with
 * *refusal = an sw_msg_refusal code and err naming it; SW_ETIMEDOUT after timeout_ms
 * (0 = the configured default); SW_ENOTFOUND when pk has no discovery entry.
 * refusal may be NULL. An entry without delegated servers is refused as peer_offline;
 * SW_EIO when no delegated server could be reached (or the client is stopping). Without a
 * discovery URL the fixed servers are tried in turn. Blocks the calling thread only
 * (discovery lookups run on it), never the client's loop. */
int sw_msg_dial(struct sw_msg_client *c, const struct sw_pk *pk, uint16_t port, int timeout_ms,
                int *conn_fd, int *refusal, struct sw_error *err);

/* As sw_msg_dial, completing (private network) only when the remote's certificate has one
 * of roles (0 = any member); SW_EPERM naming the reason otherwise (*refusal =
 * SW_REFUSE_REFUSED), also when the listener refused our certificate. Such a refusal ends
 * the dial at once: other delegated servers are not tried. Open network: as sw_msg_dial. */
int sw_msg_dial_roles(struct sw_msg_client *c, const struct sw_pk *pk, uint16_t port,
                      unsigned roles, int timeout_ms, int *conn_fd, int *refusal,
                      struct sw_error *err);

struct sw_msg_client_stats {
    unsigned sessions;
    unsigned streams;
    uint64_t bytes_sent, bytes_received;
    uint64_t reconnects;
};
void sw_msg_client_stats(struct sw_msg_client *c, struct sw_msg_client_stats *out);

#endif
