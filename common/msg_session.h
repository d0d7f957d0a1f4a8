/* msg_session.h — one encrypted messaging session on a libevent loop (docs/messaging.md §1-2).
 *
 * Wraps a TCP connection: the Noise XK handshake (prologue "skywire-msg/1"; the client is
 * the initiator and proves its Ed25519 key in message 3's payload), then frames
 * (common/msg_proto.h) each sealed in one length-prefixed Noise transport message.
 * Everything is non-blocking and runs on the event_base's thread; none of these functions
 * is thread-safe. The session answers PING itself, sends PINGs when idle, and closes on a
 * handshake deadline, idle timeout, malformed input (after GOAWAY(protocol_error)), EOF,
 * or when unsent output exceeds opts.max_output.
 *
 * Ownership: the session owns the fd and frees itself after on_closed returns; the caller
 * must not touch it afterwards. Callbacks run on the loop thread. From inside any callback
 * the caller may send frames or close the session.
 *
 * on_closed runs exactly once, always from the loop (never inside a call of this API), so
 * after sw_msg_session_close() keep running the loop until it has fired before freeing the
 * event_base. After sw_msg_session_goaway() the session flushes, half-closes and waits up
 * to 2 s for the peer to hang up (so the GOAWAY is not lost to a reset); calling
 * sw_msg_session_close() meanwhile ends that wait at once. Before the handshake completes
 * every failure on an established connection is SW_MSG_CLOSED_HANDSHAKE; connect failures
 * are SW_MSG_CLOSED_IO.
 *
 * Private networks (opts.network set): message 2's payload is the server's certificate,
 * message 3's the client's Ed25519 key followed by the client's certificate (both empty /
 * key only in an open network). The client refuses a server whose certificate does not
 * admit it with role messaging-server (no message 3; SW_MSG_CLOSED_REFUSED); the server
 * refuses a client that is not a visor, setup-node or service member: it completes the
 * handshake only to send GOAWAY(not_a_member), and on_ready never runs (on_closed gets
 * SW_MSG_CLOSED_REFUSED with the reason; the caller logs it).
 *
 * Memory: ~2 KiB per idle session (struct, bufferevent, two events); the 64 KiB frame
 * reader is allocated only while a message is partly received, the handshake state only
 * until the handshake completes. */
#ifndef SW_MSG_SESSION_H
#define SW_MSG_SESSION_H

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"
#include "common/keys.h"
#include "common/msg_proto.h"
#include "common/network.h"

struct sw_msg_session;

/* Why a session ended (on_closed's reason). */
enum sw_msg_close_reason {
    SW_MSG_CLOSED_LOCAL = 0,      /* sw_msg_session_close / goaway by us */
    SW_MSG_CLOSED_EOF,            /* peer hung up */
    SW_MSG_CLOSED_IO,             /* socket error / connect failed */
    SW_MSG_CLOSED_HANDSHAKE,      /* handshake failed or timed out */
    SW_MSG_CLOSED_PROTOCOL,       /* malformed frame or callback rejected a frame */
    SW_MSG_CLOSED_GOAWAY,         /* peer sent GOAWAY (code in goaway_code) */
    SW_MSG_CLOSED_IDLE,           /* nothing heard within idle timeout */
    SW_MSG_CLOSED_OVERFLOW,       /* peer stopped reading; output above max_output */
    SW_MSG_CLOSED_REFUSED,        /* private network: we refused the peer's certificate */
};

struct sw_msg_session_callbacks {
    /* Handshake complete; sw_msg_session_peer() is authenticated. */
    void (*on_ready)(struct sw_msg_session *s, void *ctx);
    /* One decoded non-session frame (OPEN..CLOSE). Return SW_OK, or non-zero to have the
     * session send GOAWAY(protocol_error) and close. f's pointers borrow session memory
     * valid only during the call. */
    int (*on_frame)(struct sw_msg_session *s, const struct sw_msg_frame *f, void *ctx);
    /* Output fell to at most half of opts.max_output after having been above that half
     * (optional; use it to resume producing after checking sw_msg_session_output_len). */
    void (*on_drained)(struct sw_msg_session *s, void *ctx);
    /* The session is over. goaway_code is the peer's GOAWAY code or -1. */
    void (*on_closed)(struct sw_msg_session *s, enum sw_msg_close_reason reason, int goaway_code,
                      const char *why, void *ctx);
};

struct sw_msg_session_opts {
    int handshake_timeout_ms; /* 0 = 5000 */
    int idle_timeout_ms;      /* 0 = 60000: close when nothing was received for this long */
    int ping_interval_ms;     /* 0 = 20000: PING after this long without receiving */
    size_t max_output;        /* 0 = 64 MiB of unsent output before the session is dropped */
    struct sw_network *network; /* borrowed, outlives the session; NULL = open network */
};

/* Responder side (server): takes ownership of an accepted, connected socket (closed on
 * failure too). */
int sw_msg_session_accept(struct event_base *base, evutil_socket_t fd, const struct sw_keypair *local,
                          const struct sw_msg_session_opts *opts,
                          const struct sw_msg_session_callbacks *cb, void *ctx,
                          struct sw_msg_session **out, struct sw_error *err);
/* Initiator side (client): connects to "host:port" (numeric or resolvable) without
 * blocking and runs the handshake against the server key `remote`. Failures are reported
 * through on_closed (SW_MSG_CLOSED_IO / _HANDSHAKE), never by blocking. A host name (not a
 * numeric address) is resolved with getaddrinfo(), which does block the loop for the
 * lookup. Returns an error (and no callback follows) only for a malformed hostport, a bad
 * key or lack of memory; the handshake deadline also bounds the TCP connect. */
int sw_msg_session_connect(struct event_base *base, const char *hostport, const struct sw_keypair *local,
                           const struct sw_pk *remote, const struct sw_msg_session_opts *opts,
                           const struct sw_msg_session_callbacks *cb, void *ctx,
                           struct sw_msg_session **out, struct sw_error *err);

/* Initiator over a socket that is already connected (a socketpair, an fd the caller
 * connected itself): takes ownership of fd (closed on failure too) and starts the handshake
 * at once. Same callbacks and failure reporting as sw_msg_session_connect. */
int sw_msg_session_connect_fd(struct event_base *base, evutil_socket_t fd,
                              const struct sw_keypair *local, const struct sw_pk *remote,
                              const struct sw_msg_session_opts *opts,
                              const struct sw_msg_session_callbacks *cb, void *ctx,
                              struct sw_msg_session **out, struct sw_error *err);

/* Encrypts and queues one frame. SW_EINVAL before the handshake is done or for an invalid
 * frame (PING, PONG and GOAWAY are the session's own: SW_EINVAL too), SW_EIO if the session
 * is closing or this frame pushed the output past opts.max_output (the session is then
 * dropped with SW_MSG_CLOSED_OVERFLOW). */
int sw_msg_session_send(struct sw_msg_session *s, const struct sw_msg_frame *f);
/* Sends GOAWAY(code), flushes what is queued, then closes (on_closed follows). */
void sw_msg_session_goaway(struct sw_msg_session *s, enum sw_msg_goaway code);
/* Closes at once without flushing; on_closed runs from the loop (not re-entrantly). */
void sw_msg_session_close(struct sw_msg_session *s);

bool sw_msg_session_ready(const struct sw_msg_session *s);
const struct sw_pk *sw_msg_session_peer(const struct sw_msg_session *s); /* NULL before ready (responder) */
/* Private network: the peer's admitted certificate once ready (borrowed, lives as long as
 * the session); NULL in an open network. Owners re-check it (sw_network_recheck). */
const struct sw_cert *sw_msg_session_peer_cert(const struct sw_msg_session *s);
size_t sw_msg_session_output_len(const struct sw_msg_session *s);
/* The remote address as "ip:port" (borrowed). */
const char *sw_msg_session_remote_addr(const struct sw_msg_session *s);
void sw_msg_session_set_ctx(struct sw_msg_session *s, void *ctx);

#endif
