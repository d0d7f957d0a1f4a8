/* visor.h — the visor daemon's shared state and the interfaces between its files.
 *
 * Threads (docs/visor.md "Threads"):
 *   - the loop thread runs one libevent event_base and owns every struct visor field not
 *     marked otherwise: links, transports, the stcp listener, the store;
 *   - the API's libmicrohttpd threads build a struct visor_cmd and wait on it (cmdq.c);
 *   - the discovery worker (tpd.c) runs blocking libcurl requests from its own queue;
 *   - the messaging client (dmsg.c) runs its own thread; blocking dials run on a dial thread;
 *   - the main thread only waits for signals.
 * Nothing here is thread-safe unless it says so. */
#ifndef VISOR_VISOR_H
#define VISOR_VISOR_H

#include <event2/event.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "common/backoff.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/keys.h"
#include "common/netcert.h"
#include "common/noise.h"
#include "common/tp_entry.h"
#include "common/uuid.h"
#include "visor/config.h"

struct bufferevent;
struct evconnlistener;
struct visor_resolver;
struct visor_cmd;
struct json_object;
struct visor;
struct visor_transport;
struct visor_tpd;
struct visor_dmsg;
struct visor_hs_source;
struct visor_router;
struct sw_msg_client;
struct sw_network;

/* ---- limits and timing ------------------------------------------------------------- */
#define VISOR_HANDSHAKE_MS 5000        /* TCP connect, then each of: handshake, ENTRY_SIG */
#define VISOR_HS_FRAME_MAX 512         /* largest handshake message accepted (message 3 with a
                                        * certificate: 64 + 32 + SW_CERT_MAX_LEN = 436 bytes) */
#define VISOR_MAX_HANDSHAKES 256       /* inbound links still handshaking; when all are taken
                                        * the oldest of the busiest source is evicted (stcp.c) */
#define VISOR_MAX_HANDSHAKES_PER_SOURCE 8 /* inbound handshakes pending from one IPv4 address
                                        * or IPv6 /64 once half of all slots are taken; more
                                        * are refused at once */
#define VISOR_FIRST_MESSAGE_MS 2000    /* an inbound link's handshake message 1 must be in by then */
#define VISOR_HS_SLOT_LOG_MS 10000     /* evictions and refusals: one line, then a sum this often */
#define VISOR_HS_BUSY "busy"           /* the responder's frame before it closes a refused or
                                        * evicted handshake (shorter than any message 2) */
#define VISOR_MAX_TRANSPORTS 65536
#define VISOR_LINK_MAX_OUTPUT (8u << 20) /* unsent bytes before a peer counts as stuck */
#define VISOR_DISCARD_HIGH (1u << 20)  /* DISCARD output kept queued */
#define VISOR_DISCARD_LOW (256u << 10)
#define VISOR_PING_IDLE_MS 10000       /* PING after this long without receiving */
#define VISOR_DEAD_MS 30000            /* drop a link silent for this long */
#define VISOR_REDIAL_MIN_MS 1000
#define VISOR_REDIAL_MAX_MS 60000
#define VISOR_DIAL_RACE_GRACE_MS 2000  /* wait for the winner after losing a simultaneous dial */
#define VISOR_SAVE_EVERY_MS 10000
#define VISOR_REFRESH_EVERY_MS 60000   /* status refresh in the discovery (TTL 300 s) */
#define VISOR_CMD_TIMEOUT_MS 5000
#define VISOR_ADD_TIMEOUT_MS 20000
#define VISOR_TP_REMOVE_GRACE_MS 3000 /* rm-tp waits this long at most for groups to move off */
#define VISOR_MEMBER_CHECK_MS 30000   /* peers' certificates re-checked at least this often */
#define VISOR_REFUSE_TEXT_MAX 200     /* REFUSE packet: the reason's length */

/* ---- transport packets (plaintext of one transport message) ------------------------- */
enum visor_tp_packet_type {
    VISOR_TP_PKT_ENTRY_SIG = 0x01, /* 64-byte signature of the entry */
    VISOR_TP_PKT_PING = 0x02,      /* u64 token */
    VISOR_TP_PKT_PONG = 0x03,      /* u64 token */
    VISOR_TP_PKT_DISCARD = 0x04,   /* bytes, dropped */
    VISOR_TP_PKT_CLOSE = 0x05,     /* u8 reason: the sender removed the transport */
    VISOR_TP_PKT_CERT = 0x06,      /* the sender's membership certificate (dmsg, private network) */
    VISOR_TP_PKT_REFUSE = 0x07,    /* 1..200 bytes of text: why the sender closes (membership) */
};
#define VISOR_TP_CLOSE_REMOVED 0
#define VISOR_TP_PKT_MAX (SW_NOISE_MAX_PAYLOAD)   /* type + body */

enum visor_tp_kind { VISOR_TP_STCP = 0, VISOR_TP_DMSG = 1 };
const char *visor_tp_kind_name(enum visor_tp_kind k);
int visor_tp_kind_parse(const char *s, enum visor_tp_kind *out);

/* ---- links: one connection carrying transport packets (link.c) ---------------------- */
enum visor_link_role { VISOR_LINK_INITIATOR, VISOR_LINK_RESPONDER };
enum visor_link_state {
    VISOR_LINK_CONNECTING, /* TCP connect in progress */
    VISOR_LINK_HANDSHAKE,  /* Noise XK in progress */
    VISOR_LINK_OPEN,       /* packets flow */
    VISOR_LINK_CLOSING,    /* flushing, then closed */
    VISOR_LINK_DEAD,       /* closed; finalizer pending */
};

struct visor_link {
    struct visor *v;
    struct bufferevent *bev;
    enum visor_tp_kind kind;
    enum visor_link_role role;
    enum visor_link_state state;
    enum visor_link_state closed_in; /* the state visor_link_close found it in */
    bool encrypted;                  /* stcp: Noise; dmsg: the stream is already end to end */
    struct sw_noise_hs hs;
    struct sw_noise_cipher tx, rx;
    struct sw_pk remote;             /* expected (initiator) / proven (after the handshake) */
    char peer_addr[VISOR_ADDR_MAX];
    char label[VISOR_ADDR_MAX + 32]; /* "stcp#12 127.0.0.1:40000" for log lines */
    uint64_t serial;
    bool counted;                    /* inbound handshake counted in v->n_handshakes */
    struct visor_hs_source *hs_src;  /* counted: the source whose slot it holds (stcp.c) */
    TAILQ_ENTRY(visor_link) hs_next; /* in hs_src->pending, oldest first */
    int64_t hs_start_ms;             /* monotonic: the inbound handshake began */
    bool first_msg;                  /* responder: handshake message 1 came in */
    bool opened;                     /* reached VISOR_LINK_OPEN once */
    bool heard;                      /* received at least one byte */
    const char *deadline_what;
    struct event *deadline;
    struct event *finalizer;
    struct visor_transport *tp;      /* owner, or NULL (inbound handshake, detached loser) */
    struct json_object *addrs;       /* a resolved name's addresses ("ip:port"), tried in order */
    size_t next_addr;                /* the next of addrs to try */
    uint64_t bytes_in, bytes_out;
    int64_t last_rx_ms;              /* monotonic */
    char why[160];                   /* why it closed */
    bool refused;                    /* closed for membership (either side): no dial-race grace */
    bool has_peer_cert;              /* private network: peer_cert admitted (handshake or CERT) */
    struct sw_cert peer_cert;
    LIST_ENTRY(visor_link) all;
};

/* Takes ownership of a connected (or connecting, when connecting is true) socket. stcp
 * links are encrypted: the initiator must give the expected remote key. Plain links (dmsg)
 * open at once with remote as the proven key. On failure the fd is closed. */
int visor_link_new(struct visor *v, evutil_socket_t fd, enum visor_tp_kind kind,
                   enum visor_link_role role, bool encrypted, const struct sw_pk *remote,
                   const char *peer_addr, struct visor_link **out);
/* Starts an stcp dial to host:port expecting remote. Failures arrive via visor_tm_link_closed. */
int visor_link_dial_stcp(struct visor *v, const char *hostport, const struct sw_pk *remote,
                         struct visor_link **out, struct sw_error *err);
/* Sends one packet (type + body). SW_EIO when the link is not open or is stuck. */
int visor_link_send(struct visor_link *l, uint8_t type, const void *body, size_t len);
size_t visor_link_output_len(const struct visor_link *l);
/* Re-arms (ms > 0) or clears (ms == 0) the link's deadline; when it fires the link closes. */
void visor_link_set_deadline(struct visor_link *l, int ms, const char *what);
/* Closes at once (flush=false) or after flushing queued output (bounded by a deadline).
 * visor_tm_link_closed() follows from the loop, never re-entrantly. */
void visor_link_close(struct visor_link *l, bool flush, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Membership refusal of an open link: one log line, a REFUSE packet telling the peer why,
 * then a flushed close (l->refused is set). */
void visor_link_refuse(struct visor_link *l, const char *why);
/* Frees every link without callbacks (after the loop has stopped). */
void visor_link_free_all(struct visor *v);
/* Loop: the answer of visor_resolve_host for the link with serial c->n (c->status 0: c->body is
 * the array of its "ip:port" addresses; else c->why); connects or closes it. Releases c. */
void visor_link_resolved(struct visor *v, struct visor_cmd *c);

/* ---- stcp host names (resolve.c): getaddrinfo on a thread, the answer to the loop -------- */
int visor_resolve_start(struct visor *v);
/* Late answers are dropped from here on; threads still resolving free what they hold. */
void visor_resolve_stop(struct visor *v);
/* Resolves host on a new thread; visor_link_resolved gets the answer. SW_ENOMEM: not started. */
int visor_resolve_host(struct visor *v, uint64_t serial, const char *host, uint16_t port);

/* ---- transport manager (transport.c) ------------------------------------------------- */
enum visor_tp_state { VISOR_TP_CONNECTING = 0, VISOR_TP_UP, VISOR_TP_DOWN };

struct visor_cmd;

/* ---- the one way to send on a transport (transport.c) --------------------------------
 * The router (forwarded packets) and route group ends (their own packets) send through
 * visor_tp_send; nothing else reads a transport's or link's state to decide. */
#define VISOR_TP_SEND_CAP (1u << 20) /* queued bytes above which a transport is FULL */
enum visor_send { VISOR_SEND_OK, VISOR_SEND_DOWN, VISOR_SEND_FULL };
/* A sender waiting for room: writable() runs on the loop once the transport drained below
 * VISOR_TP_SEND_CAP or went down (the next send says which). Waiters are served in turn, so
 * each sends a bounded amount per call and waits again to stay fair. Owned by the sender;
 * visor_tp_unwait before freeing it. */
struct visor_tp_waiter {
    void (*writable)(struct visor_tp_waiter *w);
    struct visor_transport *t;   /* whose list it is on, NULL when not waiting */
    TAILQ_ENTRY(visor_tp_waiter) next;
};
TAILQ_HEAD(visor_tp_waiter_list, visor_tp_waiter);
enum visor_send_flags {
    VISOR_SEND_CONTROL = 1, /* a small control packet (CLOSE, KEEPALIVE, ACK): ignores the cap */
};
/* Sends one transport packet (type, body) on transport id. DOWN when there is no such
 * transport or it is not up; FULL (nothing sent) when it has VISOR_TP_SEND_CAP bytes queued. */
enum visor_send visor_tp_send(struct visor *v, const struct sw_uuid *id, uint8_t type, const void *body,
                              size_t len, int flags);
/* Queues w on transport id (at the tail; no-op when already waiting there). False when the
 * transport does not exist. */
bool visor_tp_wait(struct visor *v, const struct sw_uuid *id, struct visor_tp_waiter *w);
void visor_tp_unwait(struct visor_tp_waiter *w);
/* True when transport id exists and is up (a group's first hop). */
bool visor_tp_is_up(struct visor *v, const struct sw_uuid *id);

struct visor_transport {
    struct visor *v;
    struct sw_tp_entry entry;
    struct sw_pk remote;
    enum visor_tp_kind kind;
    enum visor_tp_state state;
    bool remembered;          /* the operator added it here: redial it */
    bool provisional;         /* new (add-tp or inbound), never up yet: dropped if that fails */
    char addr[VISOR_ADDR_MAX]; /* stcp address given to add-tp ("" = pk_table) */
    struct visor_link *link;  /* authenticated link (waiting for ENTRY_SIG, or up) */
    struct visor_link *dial;  /* our outgoing stcp link still handshaking */
    bool dmsg_dialing;        /* a dmsg dial is running on the dial thread */
    struct sw_sig local_sig, remote_sig;
    bool have_remote_sig;
    char peer_cert_hex[SW_CERT_HEX_MAX + 1]; /* private network: the peer's, once up ("" none) */
    bool member_refused;      /* its last link ended in a membership refusal (either side) */
    uint64_t base_sent, base_received; /* bytes of earlier links (and earlier runs) */
    int64_t since;            /* unix seconds of the last state change */
    struct sw_backoff redial_backoff; /* VISOR_REDIAL_MIN_MS doubling to _MAX_MS, jittered */
    struct event *redial;
    struct event *grace;      /* our dial lost a simultaneous-dial race: wait for theirs */
    char grace_why[512];
    struct visor_cmd *waiter; /* add-tp waiting for the first outcome */
    uint64_t discard_left;
    int64_t last_ping_ms;     /* monotonic */
    uint64_t ping_token;
    struct visor_tp_waiter_list waiters; /* senders waiting for room (visor_tp_wait) */
    struct visor_cmd *remove_cmd; /* rm-tp waiting for the route groups to move off it */
    struct event *remove_ev;
    int64_t remove_deadline_ms;   /* monotonic */
    TAILQ_ENTRY(visor_transport) next;
};
TAILQ_HEAD(visor_transport_list, visor_transport);

int visor_tm_init(struct visor *v);
void visor_tm_free(struct visor *v);
/* Link events (called by link.c on the loop). */
void visor_tm_link_ready(struct visor_link *l);
void visor_tm_link_packet(struct visor_link *l, const uint8_t *pkt, size_t len);
void visor_tm_link_writable(struct visor_link *l);
void visor_tm_link_closed(struct visor_link *l);
/* A transport from the store: remembered ones are dialed at once. */
int visor_tm_restore(struct visor *v, const struct sw_pk *remote, enum visor_tp_kind kind,
                     const char *addr, bool remembered, uint64_t sent, uint64_t received,
                     struct sw_error *err);
struct visor_transport *visor_tm_find_id(struct visor *v, const struct sw_uuid *id);
uint64_t visor_tm_bytes_sent(const struct visor_transport *t);
uint64_t visor_tm_bytes_received(const struct visor_transport *t);
struct json_object *visor_tm_transport_json(struct visor *v, const struct visor_transport *t);
/* Periodic work from the 1 s tick: keepalive, refresh, store, membership. */
void visor_tm_tick(struct visor *v);
/* Private network, from the tick: on a new revocation list and at least every
 * VISOR_MEMBER_CHECK_MS re-checks the peers of open transports: an expired peer's link is
 * closed (REFUSE), a revoked peer's transport forgotten (REFUSE, discovery delete, store). */
void visor_tm_check_members(struct visor *v);
/* Shutdown: status down for every transport that is up, close links, persist. */
void visor_tm_shutdown(struct visor *v);
/* dmsg: an authenticated stream arrived or our dial finished (fd < 0 = failed, why says). */
void visor_tm_dmsg_incoming(struct visor *v, int fd, const struct sw_pk *remote);
void visor_tm_dmsg_dialed(struct visor *v, const struct sw_pk *remote, int fd, const char *why);
/* API commands (executed on the loop). */
void visor_tm_cmd(struct visor *v, struct visor_cmd *c);

/* ---- command queue: other threads -> loop (cmdq.c) ------------------------------------ */
enum visor_cmd_kind {
    VISOR_CMD_SUMMARY, VISOR_CMD_LIST, VISOR_CMD_GET, VISOR_CMD_ADD, VISOR_CMD_REMOVE,
    VISOR_CMD_DISCARD, VISOR_CMD_DMSG_INCOMING, VISOR_CMD_DMSG_DIALED, VISOR_CMD_SHUTDOWN,
    VISOR_CMD_CALL, /* runs fn on the loop (routing: router*.c) */
};

struct visor_cmd {
    enum visor_cmd_kind kind;
    /* request */
    struct sw_pk pk;
    struct sw_uuid id;
    enum visor_tp_kind type;
    char addr[VISOR_ADDR_MAX];
    uint64_t n;
    int fd;
    char why[SW_ERROR_MSG_MAX];
    void (*fn)(struct visor *v, struct visor_cmd *c); /* VISOR_CMD_CALL: must reply or release c */
    /* reply, written by the loop before completion (VISOR_CMD_CALL: body holds the request) */
    int status;
    struct json_object *body; /* owned */
    /* completion (guarded by the queue's mutex) */
    bool done;
    int refs;
    pthread_cond_t cond;
    struct visor_cmd *next;
};

struct visor_cmdq {
    pthread_mutex_t mu;
    struct visor_cmd *head, *tail;
    bool closed;
    struct event *ev;
    struct visor *v;
};

int visor_cmdq_init(struct visor_cmdq *q, struct visor *v);
/* Loop side: no more commands; pending and later ones fail with 503. */
void visor_cmdq_close(struct visor_cmdq *q);
void visor_cmdq_free(struct visor_cmdq *q);
struct visor_cmd *visor_cmd_new(enum visor_cmd_kind kind);
/* Any thread: queues c and waits up to timeout_ms for the loop to complete it. Returns
 * SW_OK (reply in c), SW_ETIMEDOUT or SW_EIO (closed). The caller releases c afterwards. */
int visor_cmdq_call(struct visor_cmdq *q, struct visor_cmd *c, int timeout_ms);
/* Any thread: queues c without waiting (ownership passes to the queue). */
int visor_cmdq_post(struct visor_cmdq *q, struct visor_cmd *c);
/* Loop: sets the reply and wakes the caller; drops the loop's reference. */
void visor_cmd_reply(struct visor_cmdq *q, struct visor_cmd *c, int status,
                     struct json_object *body);
void visor_cmd_reply_error(struct visor_cmdq *q, struct visor_cmd *c, int status, const char *code,
                           const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void visor_cmd_release(struct visor_cmdq *q, struct visor_cmd *c);
/* Any thread but the loop: runs fn (a VISOR_CMD_CALL handler) on the loop with body (owned,
 * may be NULL) and n, waiting up to timeout_ms. Returns the reply's HTTP-like status (504 on
 * timeout, 503 when the loop is gone, 500 out of memory), the passed fd in *fd_out (-1 when
 * none; the caller closes it) and the reply body in *resp (the caller puts it; may be NULL). */
int visor_cmd_call_fn(struct visor *v, void (*fn)(struct visor *, struct visor_cmd *), struct json_object *body,
                      uint64_t n, int timeout_ms, int *fd_out, struct json_object **resp);

/* ---- transport discovery client (tpd.c): jobs run on a worker thread ------------------- */
int visor_tpd_start(struct visor *v, struct visor_tpd **out);
/* Drains queued jobs for at most drain_ms (one attempt each), then joins and frees. */
void visor_tpd_stop(struct visor_tpd *t, int drain_ms);
/* Single jobs, retried with backoff (status: also a few times on 404, the registration by
 * the other edge may not have landed yet). A new job for a transport supersedes queued
 * ones for it. */
void visor_tpd_register(struct visor_tpd *t, const struct sw_tp_signed_entry *se);
void visor_tpd_status(struct visor_tpd *t, const struct sw_uuid *id, bool up);
void visor_tpd_delete(struct visor_tpd *t, const struct sw_uuid *id);
/* Drops queued jobs that name id (and keeps a running one from being retried). */
void visor_tpd_cancel(struct visor_tpd *t, const struct sw_uuid *id);
/* Batches (refresh, shutdown): one attempt; a batch refused with 404 is retried as single
 * one-attempt requests so one unknown transport does not hide the others. */
void visor_tpd_register_batch(struct visor_tpd *t, const struct sw_tp_signed_entry *se, size_t n);
void visor_tpd_status_batch(struct visor_tpd *t, const struct sw_uuid *ids, size_t n, bool up);

/* ---- store: data_dir/transports.json (store.c) ---------------------------------------- */
int visor_store_load(struct visor *v, struct sw_error *err);
int visor_store_save(struct visor *v);

/* ---- local API (api.c) ------------------------------------------------------------------ */
struct sw_http_server;
/* Serves cfg.api_listen; every request but GET /health needs v->api_token as a bearer
 * token, and Host / Origin / Content-Type pass the browser checks (docs/visor.md). */
int visor_api_start(struct visor *v, struct sw_error *err);
void visor_api_stop(struct visor *v);
/* api_token.c: reads data_dir/api-token into token, making it first when it does not
 * exist; refuses a file others may read or write. The caller wipes token when done. */
int visor_api_token_init(const char *data_dir, char token[VISOR_API_TOKEN_HEX + 1],
                         struct sw_error *err);

/* ---- stcp listener (stcp.c) ------------------------------------------------------------- */
int visor_stcp_listen(struct visor *v, struct sw_error *err);
void visor_stcp_close(struct visor *v);
/* Gives back l's handshake slot (no-op when it holds none): when it opens or closes. */
void visor_stcp_slot_release(struct visor_link *l);
/* The listener's handshake slots for /metrics (any thread: atomics only). */
struct sw_buf;
void visor_stcp_write_metrics(struct visor *v, struct sw_buf *out);

/* ---- dmsg (dmsg.c) ------------------------------------------------------------------------ */
int visor_dmsg_start(struct visor *v, struct sw_error *err);
void visor_dmsg_stop(struct visor *v);
bool visor_dmsg_enabled(const struct visor *v);
/* Loop: starts a dial on the dial thread; the outcome comes back as VISOR_CMD_DMSG_DIALED. */
int visor_dmsg_dial(struct visor *v, const struct sw_pk *remote, struct sw_error *err);
unsigned visor_dmsg_sessions(struct visor *v);
/* The messaging client (NULL without dmsg); thread-safe calls only (msg_client.h). */
struct sw_msg_client *visor_dmsg_client(struct visor *v);

/* ---- the daemon ----------------------------------------------------------------------------- */
struct visor {
    struct visor_config cfg;
    struct sw_network *net;          /* private network policy, NULL = open (thread-safe) */
    uint64_t net_generation;         /* the revocation list last checked against (loop) */
    int64_t net_checked_ms;          /* monotonic */
    bool own_cert_warned;            /* our own certificate expired: said once */
    struct event_base *base;
    struct visor_resolver *resolver; /* stcp host names (resolve.c) */
    struct evconnlistener *stcp;
    char stcp_addr[VISOR_ADDR_MAX]; /* bound address */
    struct visor_cmdq q;
    struct visor_tpd *tpd;
    struct visor_dmsg *dmsg;
    struct sw_http_server *api;
    char api_token[VISOR_API_TOKEN_HEX + 1]; /* secret; set before the API starts, then read-only */
    struct visor_router *router;     /* routing rules and packets (router.c) */
    struct visor_hvlinks *hv;        /* links out to hypervisors (hvlink.c); own threads */
    struct event *tick;
    struct visor_transport_list transports;
    size_t n_transports;
    LIST_HEAD(, visor_link) links;
    size_t n_handshakes;             /* inbound links not yet open */
    LIST_HEAD(, visor_hs_source) hs_sources; /* sources of those (stcp.c) */
    struct event *hs_log_ev;         /* sums up evictions and refusals (stcp.c) */
    bool hs_log_open;                /* a burst is being summed up */
    uint64_t hs_log_evicted, hs_log_refused; /* since the last line */
    uint64_t next_serial;
    int64_t started_at;              /* unix seconds */
    int64_t last_save_ms, last_refresh_ms; /* monotonic */
    bool store_dirty;
    bool store_urgent;               /* a new transport: save on the next tick */
    bool stopping;
    /* read by API threads for /metrics and /health */
    _Atomic uint64_t m_up, m_total, m_sent, m_received, m_handshake_failures, m_dials;
    _Atomic uint64_t m_refused_members; /* links refused or closed for membership */
    _Atomic uint64_t m_hs_pending, m_hs_sources; /* inbound handshakes, and their sources */
    _Atomic uint64_t m_hs_evicted, m_hs_refused, m_hs_first_timeouts;
};

/* ---- hypervisor links (hvlink.c): one thread per configured hypervisor ------------------ */
struct visor_hvlinks;
/* Starts a thread per cfg.hypervisors entry (none: no-op). */
int visor_hvlink_start(struct visor *v, struct sw_error *err);
/* Closes the links, waits for their threads and in-flight requests. Idempotent. */
void visor_hvlink_stop(struct visor *v);

#endif
