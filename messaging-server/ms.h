/* ms.h — the messaging server's shared state (docs/messaging.md §3, docs/messaging-server.md).
 *
 * Threads: the relay loop thread owns everything reachable from struct ms_server except
 * `m` (C11 atomics, read by the HTTP threads) and the registry's own state. The main thread
 * only starts/stops the others; a stop request reaches the loop through event_active(),
 * which is thread-safe because main() calls evthread_use_pthreads() first. */
#ifndef MS_H
#define MS_H

#include <event2/event.h>
#include <event2/listener.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include "common/http_server.h"
#include "common/keys.h"
#include "common/msg_proto.h"
#include "common/msg_session.h"
#include "common/network.h"

#define MS_REFUSE_CODES 7 /* index = sw_msg_refusal code; 0 counts unknown codes */
#define MS_GOAWAY_CODES 6
#define MS_CLOSE_REASONS 9
/* Private network: sessions' certificates are re-checked at a new revocation list (the
 * generation is polled every MS_MEMBERS_POLL_MS), when the earliest one expires, and at
 * least every MS_MEMBERS_RECHECK_MS. */
#define MS_MEMBERS_POLL_MS 1000
#define MS_MEMBERS_RECHECK_MS 30000
/* Handshake slots (slots.c): evictions and refusals are logged once per burst, then summed
 * up every MS_SLOT_LOG_MS while they go on. */
#define MS_SLOT_LOG_MS 10000
#define MS_SOURCE_KEY_LEN 16 /* an IPv4 address (as ::ffff:a.b.c.d) or an IPv6 /64 */

struct ms_config {
    const char *addr, *http_addr, *key_file, *discovery, *public_addr;
    const char *network, *cert_file, *revocations; /* private network (network NULL = open) */
    long revocations_refresh_ms;
    long max_sessions, max_streams, max_handshakes, max_handshakes_per_source;
    long first_message_timeout_ms, handshake_timeout_ms, open_timeout_ms, idle_timeout_ms, ping_interval_ms;
    long max_session_buffer;
    long register_interval_s;
};

/* Counters and gauges; written by the loop and registry threads, read by HTTP threads. */
struct ms_metrics {
    _Atomic int64_t sessions, handshaking, streams;
    _Atomic int64_t handshake_sources; /* source addresses with pending handshakes */
    _Atomic uint64_t handshakes_ok, handshakes_failed, handshakes_rejected, handshakes_refused;
    _Atomic uint64_t handshakes_evicted;  /* pending ones closed to make room (table full) */
    _Atomic uint64_t handshakes_source_limited; /* refused: the source had its share pending */
    _Atomic uint64_t first_message_timeouts; /* of handshakes_failed: no message 1 in time */
    _Atomic uint64_t members_evicted; /* sessions closed: certificate revoked or expired */
    _Atomic uint64_t streams_opened, bytes_relayed, frames_relayed, late_frames;
    _Atomic uint64_t protocol_errors;
    _Atomic uint64_t refusals[MS_REFUSE_CODES];
    _Atomic uint64_t goaways[MS_GOAWAY_CODES];
    _Atomic uint64_t closed[MS_CLOSE_REASONS];
    _Atomic uint64_t registrations_ok, registrations_failed;
};

/* An intrusive chained hash table keyed by fixed-size byte strings (SipHash, random key,
 * so clients choosing keys or stream ids cannot build long chains). */
struct ms_hnode {
    struct ms_hnode *next;
    uint64_t hash;
};

struct ms_table {
    struct ms_hnode **buckets;
    size_t nbuckets, count;
    ptrdiff_t key_off; /* key address = node address + key_off */
    size_t key_len;
    uint8_t sipkey[16];
};

struct ms_stream;
struct ms_peer;

#define MS_CONTAINER(ptr, type, member) ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

/* Key of a stream end: the session's serial (never reused) and the id on that session. */
struct ms_ekey {
    uint64_t serial;
    uint32_t id;
    uint32_t zero; /* no padding bytes inside a hashed key */
};

/* One side of a relayed stream: (session, stream id) and what that side may still send. */
struct ms_end {
    struct ms_hnode node;    /* in srv->ends, key = ekey */
    struct ms_ekey ekey;
    LIST_ENTRY(ms_end) link; /* in peer->ends */
    struct ms_peer *peer;
    struct ms_stream *st;
    uint64_t credit;         /* DATA bytes this side may still send (granted by the other) */
    bool fin;                /* this side sent FIN */
};

struct ms_stream {
    struct ms_end end[2];    /* [0] dialer, [1] listener */
    struct event *timer;     /* open timeout while pending */
    bool open;               /* ACCEPTed */
};

/* WAITING: accepted, no session yet; the server waits (first_ev) until the client's whole
 * Noise message 1 is readable, for at most --first-message-timeout-ms. */
enum ms_peer_state { MS_PEER_WAITING, MS_PEER_HANDSHAKE, MS_PEER_ACTIVE, MS_PEER_LEAVING };

struct ms_source;

/* One client connection, from accept to on_closed (WAITING: until it is dropped). */
struct ms_peer {
    struct ms_hnode node;    /* in srv->peers while ACTIVE, key = pk */
    struct sw_pk pk;
    LIST_ENTRY(ms_peer) link; /* in srv->conns, whatever the state */
    LIST_HEAD(, ms_end) ends;
    struct ms_server *srv;
    struct sw_msg_session *s; /* NULL while WAITING */
    enum ms_peer_state state;
    /* a handshake slot, from accept until the handshake ends (slots.c) */
    struct ms_source *src;   /* non-NULL while it holds one */
    TAILQ_ENTRY(ms_peer) src_link; /* in src->pending, oldest first */
    evutil_socket_t fd;      /* WAITING: the socket (then the session's) */
    struct event *first_ev;  /* WAITING: message 1 readable, or its deadline */
    int64_t accepted_ms;     /* monotonic */
    char addr[64];           /* "ip:port" for log lines */
    const struct sw_cert *cert; /* private network: the admitted certificate (the session's) */
    bool evicted;            /* closed for its certificate: already logged */
    uint64_t serial;
    uint32_t next_even;      /* next server-assigned stream id on this session */
    long n_streams;
};

/* A source address with pending handshakes (slots.c). */
struct ms_source {
    struct ms_hnode node;    /* in srv->sources, key = key */
    uint8_t key[MS_SOURCE_KEY_LEN];
    LIST_ENTRY(ms_source) link; /* in srv->source_list */
    TAILQ_HEAD(, ms_peer) pending; /* oldest first */
    long n;
};

/* One log line per burst of evictions and refusals, then a sum every MS_SLOT_LOG_MS. */
struct ms_slot_log {
    struct event *ev;
    bool open;               /* a burst is being summed up */
    uint64_t evicted, refused; /* since the last line */
};

struct ms_server {
    struct ms_config cfg;
    struct sw_keypair kp;
    struct sw_network *net;  /* NULL = open network; thread-safe */
    struct ms_metrics m;
    /* loop thread only */
    struct event_base *base;
    struct evconnlistener *listener;
    struct event *stop_ev, *force_ev, *relisten_ev, *members_ev;
    uint64_t members_gen;    /* revocation list generation of the last sweep */
    uint64_t members_expiry; /* unix s: the earliest not_after of a session (0 = none) */
    int64_t members_swept_ms; /* monotonic time of the last sweep */
    struct ms_table peers, ends, sources;
    LIST_HEAD(, ms_source) source_list;
    struct ms_slot_log slot_log;
    LIST_HEAD(, ms_peer) conns;
    long n_conns;
    uint64_t next_serial;
    bool stopping;
    pthread_t loop_thread;
    bool loop_started;
    struct sw_http_server_config http_cfg; /* borrowed by the HTTP server */
};

/* table.c */
int ms_table_init(struct ms_table *t, ptrdiff_t key_off, size_t key_len);
void ms_table_free(struct ms_table *t);
struct ms_hnode *ms_table_find(const struct ms_table *t, const void *key);
int ms_table_insert(struct ms_table *t, struct ms_hnode *n);
void ms_table_remove(struct ms_table *t, struct ms_hnode *n);

/* loop.c: the relay loop thread */
int ms_loop_start(struct ms_server *srv, struct sw_error *err);
void ms_loop_stop(struct ms_server *srv); /* any thread; joins */

/* peers.c: sessions and the pk -> session map (loop thread) */
/* Takes an accepted connection: refused at once when the server is stopping or when its
 * source already has --max-handshakes-per-source pending while half of --max-handshakes or
 * more are; when all --max-handshakes are pending, the oldest one of the busiest source is
 * evicted to make room. */
void ms_peer_accept(struct ms_server *srv, evutil_socket_t fd, const struct sockaddr *sa, int salen);
struct ms_peer *ms_peer_find(struct ms_server *srv, const struct sw_pk *pk);
void ms_peer_goaway(struct ms_peer *p, enum sw_msg_goaway code);
void ms_peers_shutdown(struct ms_server *srv);
void ms_peers_force_close(struct ms_server *srv);
/* Private network: closes (GOAWAY(not_a_member)) every session whose certificate is now
 * revoked or expired, one log line each, and sets srv->members_expiry anew. */
void ms_peers_recheck(struct ms_server *srv);

/* slots.c: handshake slots per source address (loop thread) */
int ms_slots_init(struct ms_server *srv);
void ms_slots_free(struct ms_server *srv);
/* The source key of an address: IPv4 (and IPv4-mapped IPv6) whole, IPv6 its /64. */
void ms_slots_key(const struct sockaddr *sa, uint8_t key[MS_SOURCE_KEY_LEN]);
/* "203.0.113.7" or "2001:db8:1:2::/64". */
void ms_slots_key_text(const uint8_t key[MS_SOURCE_KEY_LEN], char *out, size_t cap);
/* The source's pending handshakes (0 when it has none). */
long ms_slots_pending(struct ms_server *srv, const uint8_t key[MS_SOURCE_KEY_LEN]);
/* Gives p a slot of its source (counted in ms_handshakes_pending). SW_ENOMEM. */
int ms_slots_take(struct ms_server *srv, struct ms_peer *p, const uint8_t key[MS_SOURCE_KEY_LEN]);
/* Gives p's slot back, if it holds one (no-op otherwise). */
void ms_slots_release(struct ms_server *srv, struct ms_peer *p);
/* The pending handshake to evict: the oldest of the source with the most (of those, the
 * source whose oldest is oldest). NULL when none is pending. */
struct ms_peer *ms_slots_victim(struct ms_server *srv);
/* Notes an eviction (evicted) or a refusal of a connection from key for the log: the first
 * of a burst is logged at once, the rest summed up every MS_SLOT_LOG_MS. */
void ms_slots_note(struct ms_server *srv, bool evicted, const uint8_t key[MS_SOURCE_KEY_LEN], long pending);

/* relay.c: streams (loop thread) */
int ms_relay_frame(struct ms_peer *p, const struct sw_msg_frame *f, struct sw_error *err);
void ms_relay_peer_gone(struct ms_peer *p);

/* http.c */
int ms_http_start(struct ms_server *srv, struct sw_http_server **out, struct sw_error *err);

/* registry.c: the discovery registration thread */
struct ms_registry;
int ms_registry_start(struct ms_server *srv, struct ms_registry **out, struct sw_error *err);
/* Asks the thread to DELETE the entry and end (returns at once); NULL is a no-op. */
void ms_registry_signal(struct ms_registry *r);
/* Signals if needed, joins, frees; NULL is a no-op. */
void ms_registry_stop(struct ms_registry *r);

#endif
