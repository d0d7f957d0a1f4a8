/* msg_client_internal.h — private state of the messaging client (common/msg_client.h).
 *
 * Threads (docs/messaging.md, "Client threads and stream states"):
 *   - the loop thread runs c->base and owns every session, stream, listener and slot;
 *   - the worker thread does the client's own blocking HTTP (available_servers, publishing
 *     and deleting the entry) and hands results back through c->mu + event_active;
 *   - caller threads (sw_msg_dial, sw_msg_listen, ...) queue a struct mc_cmd under c->mu,
 *     wake the loop with event_active and wait on the command's condition variable.
 *     A dial's discovery lookups run on the caller's own thread (it blocks anyway).
 * Only what is marked "(mu)" is touched from more than one thread.
 *
 * Files: msg_client.c (life cycle, commands, public calls), msg_client_dial.c (dialing:
 * caller side and loop side), msg_client_sess.c (sessions, slots, server pool),
 * msg_client_disc.c (discovery: worker thread, entry publishing, lookups),
 * msg_client_listen.c (listening ports), msg_stream.c (one stream's state machine and I/O), msg_flow.c
 * (pure logic: credit, ring buffer — unit tested). */
#ifndef SW_MSG_CLIENT_INTERNAL_H
#define SW_MSG_CLIENT_INTERNAL_H

#include <event2/event.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/backoff.h"
#include "common/bytes.h"
#include "common/clock.h"
#include "common/msg_client.h"
#include "common/msg_entry.h"
#include "common/msg_proto.h"
#include "common/msg_session.h"
#include "common/noise.h"

/* ---- limits and timings ------------------------------------------------------------ */
#define MC_REC_OVERHEAD (2 + SW_NOISE_TAG)                 /* u16 length + AEAD tag: 18 */
#define MC_MAX_CHUNK (SW_MSG_MAX_DATA - MC_REC_OVERHEAD)   /* 65496 plaintext bytes a record */
#define MC_BACKOFF_MIN_MS 500u         /* a slot with nothing to try: waits (and refetches) */
#define MC_BACKOFF_MAX_MS 30000u
#define MC_PUBLISH_INTERVAL_MS 60000
#define MC_PUBLISH_RETRY_MS 2000
#define MC_ACCEPT_HS_TIMEOUT_MS 5000   /* listener side: KK must finish after ACCEPT */
#define MC_HUP_CHECK_MS 1000           /* half-closed by the user: poll for its close() */
#define MC_LISTEN_BACKLOG 128          /* streams waiting for sw_msg_accept per port */
#define MC_INCOMING_HS_MAX 512         /* incoming streams in their KK handshake, all ports */
#define MC_KNOWN_MAX 64                /* cached server addresses */
#define MC_STREAM_BUCKETS 64
#define MC_READ_BUDGET 4               /* records read from one user fd per wakeup */
/* Choosing servers (docs/messaging.md §5 "Choosing servers"): claims are clamped and only
 * tilt the order among untried servers; what a server did decides. */
#define MC_POOL_FETCH 32               /* available_servers?limit= */
#define MC_CLAIM_MAX 2048u             /* available_sessions counted at most this (as the discovery) */
#define MC_SLOT_PROBES 4               /* attempts at unproven servers in flight per slot */
#define MC_PROBE_STAGGER_MS 250        /* between a slot's attempts while one is pending */
#define MC_PROBE_HS_MS 3000            /* handshake deadline of a first try at an unproven server */
#define MC_KNOWN_RETRY_MIN_MS 500u     /* proven or pinned server: retried after 0.5 s ... */
#define MC_KNOWN_RETRY_MAX_MS 4000u    /* ... doubling to 4 s (jittered) */
#define MC_DEMOTE_MIN_MS 5000u         /* unproven server that failed: left out 5 s ... */
#define MC_DEMOTE_MAX_MS 600000u       /* ... doubling to 10 min (jittered) */
#define MC_PROVEN_KEEP_MS 600000       /* a server that worked stays "proven" this long after */
#define MC_STICKY_MS 2000              /* after losing a session: proven servers only */
#define MC_FULL_AVOID_MS 60000         /* left out after server_full / not a member */
#define MC_IDLE_FETCH_MS 5000          /* a slot with nothing to try refetches at most this often */
#define MC_STOP_GRACE_MS 2000          /* GOAWAY flush time before sessions are cut */
#define MC_FETCH_MIN_GAP_MS 1000       /* at most one available_servers request a second */
#define MC_SRC_PORT_MIN 49152u
#define MC_LISTEN_HDR_LEN (SW_PK_LEN + 2) /* what sw_msg_accept receives with the fd */

/* ---- pure logic (msg_flow.c) --------------------------------------------------------- */

/* Receive-side credit of one stream (counts DATA body bytes, docs/messaging.md §3). */
struct mc_credit {
    uint32_t window;    /* window we granted at OPEN/ACCEPT */
    uint64_t avail;     /* bytes the peer may still send */
    uint64_t consumed;  /* bytes consumed and not yet granted back */
};
void mc_credit_init(struct mc_credit *cr, uint32_t window);
/* The peer sent n bytes: SW_ERANGE (nothing changes) if that exceeds its credit. */
int mc_credit_receive(struct mc_credit *cr, size_t n);
/* n received bytes were consumed (written to the user or discarded as overhead). Returns the
 * WINDOW increment to send now — all consumed bytes once they reach half the window — and
 * grants it, or 0 when nothing is due yet. */
uint32_t mc_credit_consume(struct mc_credit *cr, size_t n);

/* Plaintext bytes one record may carry with send credit `credit`: 0 when not even one byte
 * fits, else min(credit - MC_REC_OVERHEAD, MC_MAX_CHUNK, max). */
size_t mc_send_chunk(uint64_t credit, size_t max);

/* Bounded ring buffer of bytes; memory is allocated at the first push. */
struct mc_ring {
    uint8_t *buf;
    size_t cap, head, len;
};
void mc_ring_init(struct mc_ring *r, size_t cap);
/* Appends all n bytes or nothing: SW_ERANGE when they do not fit, SW_ENOMEM. */
int mc_ring_push(struct mc_ring *r, const void *data, size_t n);
/* The longest contiguous run at the head (*n = 0 when empty). */
const uint8_t *mc_ring_peek(const struct mc_ring *r, size_t *n);
void mc_ring_drop(struct mc_ring *r, size_t n);
void mc_ring_free(struct mc_ring *r);

/* ---- commands from caller threads ---------------------------------------------------- */
enum mc_cmd_type { MC_CMD_LISTEN, MC_CMD_UNLISTEN, MC_CMD_DIAL };

/* How one dial attempt through one server ended. */
enum mc_dial_result {
    MC_DIAL_OK = 0,         /* fd is the established stream */
    MC_DIAL_REFUSED,        /* refusal holds the code */
    MC_DIAL_NEED_ADDR,      /* no session to that server and its address is unknown */
    MC_DIAL_SESSION_FAILED, /* the session failed or closed before the stream opened */
    MC_DIAL_RESET,          /* the peer or server reset the stream during its opening */
    MC_DIAL_TIMEOUT,        /* the deadline passed */
    MC_DIAL_STOPPED,        /* the client is stopping */
    MC_DIAL_ERROR,          /* local failure (fd, memory) */
    MC_DIAL_NOT_MEMBER,     /* private network: one side refused the other's certificate */
};

/* Lives on the caller's stack; the loop never touches it after setting done (under mu). */
struct mc_cmd {
    enum mc_cmd_type type;
    struct mc_cmd *next;
    pthread_cond_t cond;
    bool done;
    /* inputs */
    uint16_t port;
    unsigned roles;            /* listen / dial: roles the peer's certificate may have */
    struct sw_pk peer, server;
    bool has_addr;
    char addr[SW_MSG_ADDR_MAX + 1];
    int64_t deadline_ms;       /* monotonic (common/clock.h) */
    /* outputs */
    int rc;
    int fd;
    enum mc_dial_result result;
    int refusal;
    char why[160];
};

/* ---- loop-side objects --------------------------------------------------------------- */
struct mc_sess;
struct mc_stream;
struct mc_listener;

/* A dial in progress on the loop: waiting for its session, then attached to a stream. */
struct mc_dial {
    struct sw_msg_client *c;
    struct mc_cmd *cmd;
    struct mc_sess *sess;
    struct mc_stream *st;        /* once OPEN is sent */
    struct event *timer;         /* the caller's deadline */
    struct mc_dial *next, *prev; /* c->dials */
    struct mc_dial *wnext;       /* sess->waiting while the session is connecting */
};

/* One stream; the states are documented in docs/messaging.md "Client stream states". */
enum mc_stream_state {
    MC_ST_OPENING = 0,   /* dialer: OPEN sent, waiting for ACCEPT/REFUSE */
    MC_ST_HANDSHAKE,     /* KK running inside the stream */
    MC_ST_ESTABLISHED,   /* data both ways; half-close flags below */
    MC_ST_DRAINING,      /* peer sent CLOSE(normal): flushing buffered bytes, then close */
};

struct mc_stream {
    struct sw_msg_client *c;
    struct mc_sess *sess;
    uint32_t id;
    enum mc_stream_state state;
    bool initiator;
    struct sw_pk peer;
    uint16_t local_port, remote_port;
    unsigned roles;  /* private network: roles admitted for the peer (0 = any member) */
    int fd;          /* library end (non-blocking) */
    int user_fd;     /* user end until handed over, else -1 */
    struct event *ev_rd, *ev_wr, *ev_timer;
    bool rd_on, wr_on;
    struct sw_noise_hs hs;
    bool hs_pending;            /* our next KK message waits for credit */
    struct sw_noise_cipher tx, rx;
    uint64_t send_credit;
    struct mc_credit rcv;
    struct mc_ring in;          /* decrypted bytes the user has not taken yet */
    bool user_eof;              /* read EOF from the user (FIN sent or CLOSE sent) */
    bool local_fin, remote_fin; /* FIN sent / FIN received */
    bool shut_wr;               /* shutdown(SHUT_WR) done on fd after remote FIN */
    bool counted;               /* included in the streams stat */
    bool hs_counted;            /* included in c->n_incoming_hs */
    struct mc_dial *dial;
    struct mc_listener *listener; /* waiting in this listener's backlog */
    struct mc_stream *hnext;      /* session hash chain */
    struct mc_stream *lnext;      /* listener backlog */
};

struct mc_listener {
    struct sw_msg_client *c;
    uint16_t port;
    unsigned roles;             /* private network: dialers' admitted roles (0 = any member) */
    int fd;                     /* library end of the SEQPACKET pair */
    struct event *ev_rd, *ev_wr;
    struct mc_stream *head, *tail;
    unsigned n_pending;
    struct mc_listener *next;
};

enum mc_sess_state { MC_SESS_CONNECTING = 0, MC_SESS_READY };

enum mc_slot_state {
    MC_SLOT_SEARCHING = 0, /* no ready session: attempts in flight and/or the timer armed */
    MC_SLOT_READY,         /* sess is a ready session */
};

/* A kept session. While searching, every connecting session with ss->slot == this slot is
 * one attempt (several at once, docs/messaging.md §5); the first ready one wins and the
 * others are closed (or left to the dials waiting on them). */
struct mc_slot {
    struct sw_msg_client *c;
    enum mc_slot_state state;
    struct mc_sess *sess;      /* READY: the slot's session */
    struct sw_pk last;         /* server of the previous ready session */
    bool has_last;
    bool tried;                /* made an attempt already (later ones count as reconnects) */
    int64_t sticky_until_ms;   /* monotonic: proven servers only until then */
    int64_t next_probe_ms;     /* monotonic: no further attempt before, while one is pending */
    struct sw_backoff backoff; /* nothing to try: 500 ms doubling to 30 s, jittered */
    struct event *timer;
};

struct mc_sess {
    struct sw_msg_client *c;
    struct sw_msg_session *s;
    struct sw_pk server;
    char addr[SW_MSG_ADDR_MAX + 1];
    enum mc_sess_state state;
    struct mc_slot *slot;              /* NULL: opened on demand by a dial */
    bool unproven;                     /* a slot's attempt at a server not yet proven */
    bool abandoned;                    /* closed by us: another attempt won (no demotion) */
    struct mc_sess *next, *prev;
    struct mc_stream *buckets[MC_STREAM_BUCKETS];
    unsigned n_streams;
    uint32_t next_id;                  /* odd */
    struct mc_dial *waiting;           /* dials waiting for on_ready */
};

/* A server the client knows of, with what it observed of it (docs/messaging.md §5). */
struct mc_known {
    struct sw_pk pk;
    char addr[SW_MSG_ADDR_MAX + 1];
    bool in_pool;                /* from cfg.servers or the latest available_servers */
    bool pinned;                 /* a fixed server of the configuration */
    uint32_t claim;              /* available_sessions claimed, clamped to MC_CLAIM_MAX */
    int64_t proven_ms;           /* monotonic: a session to it was last ready then; 0 never */
    unsigned fails;              /* failed attempts since its last ready session */
    struct sw_backoff demote;    /* how long the next failure leaves it out */
    int64_t retry_at_ms;         /* monotonic: left out of the candidates until then */
};

/* Worker thread mailbox (all fields under c->mu). */
struct mc_worker {
    bool fetch;                  /* job: GET available_servers */
    char *publish_body;          /* job: POST this entry (latest wins) */
    size_t publish_n;            /* delegated servers in publish_body */
    bool quit, delete_entry;
    /* results for the loop */
    bool servers_done;
    int servers_rc;
    struct mc_known *servers;    /* malloc'd array */
    size_t n_servers;
    bool publish_done;
    int publish_rc;
    size_t published_n;
};

#define MC_SNAP_MAX 32

struct sw_msg_client {
    /* configuration, immutable after start */
    struct sw_keypair kp;
    struct sw_network *network;  /* borrowed; NULL = open network */
    char *discovery;             /* NULL when none */
    unsigned n_slots;
    int dial_timeout_ms;
    struct sw_msg_server_addr *fixed;
    size_t n_fixed;

    pthread_t loop_thread, worker_thread;
    bool loop_started, worker_started;
    struct event_base *base;
    struct event *ev_cmd, *ev_worker, *ev_publish, *ev_grace, *ev_kick;

    /* (mu) shared with other threads */
    pthread_mutex_t mu;
    pthread_cond_t cond;         /* wait_ready waiters, stop waiting for calls to leave */
    pthread_cond_t wk_cond;
    struct mc_cmd *cmd_head, *cmd_tail;
    bool stopping;
    unsigned calls;              /* public calls in progress */
    unsigned snap_n;             /* ready sessions */
    struct sw_pk snap_ready[MC_SNAP_MAX];
    bool snap_published;         /* the last published entry had a server */
    struct mc_worker wk;

    /* loop thread only */
    bool shutting_down;
    struct mc_sess *sessions;
    unsigned n_sessions;
    struct mc_slot *slots;
    struct mc_known known[MC_KNOWN_MAX];
    size_t n_known, known_next;
    struct mc_listener *listeners;
    struct mc_dial *dials;
    bool fetch_in_flight;
    int64_t last_fetch_ms;       /* monotonic */
    uint64_t last_seq;
    struct sw_pk pub_set[SW_MSG_DELEGATES_MAX];
    size_t pub_n;
    bool pub_valid;
    uint16_t next_src_port;
    unsigned n_incoming_hs;      /* incoming streams not yet established (each holds 2 fds) */
    uint8_t scratch[SW_MSG_MAX_DATA]; /* one record: encrypt or decrypt in place */

    /* statistics */
    atomic_uint_fast64_t bytes_sent, bytes_received, reconnects;
    atomic_uint streams;
};

/* ---- msg_client.c -------------------------------------------------------------------- */
/* Queues cmd for the loop and waits for its completion; SW_EIO when stopping. */
int mc_submit(struct sw_msg_client *c, struct mc_cmd *cmd);
/* Loop side: fills nothing, marks cmd done and wakes its caller (takes mu). */
void mc_cmd_complete(struct sw_msg_client *c, struct mc_cmd *cmd);
void mc_call_enter(struct sw_msg_client *c);
void mc_call_leave(struct sw_msg_client *c);
/* Arms a one-shot timer ms from now. */
void mc_timer_arm(struct event *ev, uint64_t ms);

/* ---- msg_client_dial.c (loop side) ----------------------------------------------------- */
void mc_dial_begin(struct sw_msg_client *c, struct mc_cmd *cmd);
/* The session is ready: send OPEN. */
void mc_dial_start(struct mc_dial *d);
/* Ends a dial with result (why may be NULL), wakes its caller and frees it. A stream still
 * attached (d->st) is closed with CLOSE(reset); the stream side detaches itself first
 * (handing its user fd to d->cmd on success) when it is the one ending the dial. */
void mc_dial_finish(struct mc_dial *d, enum mc_dial_result result, int refusal, const char *why);

/* ---- msg_client_sess.c --------------------------------------------------------------- */
int mc_sessions_start(struct sw_msg_client *c, struct sw_error *err);
int mc_worker_start(struct sw_msg_client *c, struct sw_error *err);
void mc_worker_stop(struct sw_msg_client *c);
struct mc_sess *mc_sess_find(struct sw_msg_client *c, const struct sw_pk *server);
/* Opens a session (slot NULL = on demand); NULL when it could not even start. */
struct mc_sess *mc_sess_open(struct sw_msg_client *c, const struct sw_pk *server, const char *addr,
                             struct mc_slot *slot);
const struct mc_known *mc_known_find(const struct sw_msg_client *c, const struct sw_pk *pk);
void mc_known_put(struct sw_msg_client *c, const struct sw_pk *pk, const char *addr, bool in_pool);
void mc_sessions_shutdown(struct sw_msg_client *c);
void mc_sessions_free(struct sw_msg_client *c);
int mc_sess_send(struct mc_sess *ss, const struct sw_msg_frame *f);

/* ---- msg_client_disc.c --------------------------------------------------------------- */
/* Loop: publishes the client entry when the set of ready servers changed (or always when
 * force); the worker POSTs it. */
void mc_publish(struct sw_msg_client *c, bool force);
/* Loop: asks the worker for GET available_servers (at most one in flight, rate limited). */
void mc_request_fetch(struct sw_msg_client *c);
/* Any thread: GET entry/{pk}, verified and checked to be pk's. SW_ENOTFOUND on 404. */
int mc_disc_lookup(const char *discovery, const struct sw_pk *pk, int64_t deadline_ms,
                   struct sw_msg_entry *e, struct sw_error *err);

/* ---- msg_stream.c -------------------------------------------------------------------- */
/* New stream on ss with a socketpair; NULL on failure. Inserted in the session table. */
struct mc_stream *mc_stream_new(struct mc_sess *ss, uint32_t id, bool initiator);
struct mc_stream *mc_stream_find(struct mc_sess *ss, uint32_t id);
/* Frees the stream: closes its fds, wipes its keys, ends its dial with `result`. */
void mc_stream_free(struct mc_stream *st, enum mc_dial_result result);
/* Sends CLOSE(code) if the session is up, then frees. */
void mc_stream_close(struct mc_stream *st, uint8_t code, enum mc_dial_result result);
/* Dialer: starts KK and sends OPEN. */
int mc_stream_send_open(struct mc_stream *st, uint16_t dst_port);
/* One stream frame (not OPEN) from the session. */
void mc_stream_on_frame(struct mc_stream *st, const struct sw_msg_frame *f);
/* Incoming OPEN (server -> us). SW_EPROTO kills the session. */
int mc_stream_incoming(struct mc_sess *ss, const struct sw_msg_frame *f);
/* Frees every stream of a session that is gone (no frames are sent). */
void mc_stream_drop_all(struct mc_sess *ss, enum mc_dial_result result);

/* ---- msg_client_listen.c ------------------------------------------------------------- */
struct mc_listener *mc_listener_find(struct sw_msg_client *c, uint16_t port);
/* An incoming stream finished KK: hand its user fd to the listener (or reset it). */
void mc_listener_deliver(struct mc_stream *st);
void mc_listen_cmd(struct sw_msg_client *c, struct mc_cmd *cmd);
void mc_unlisten_cmd(struct sw_msg_client *c, struct mc_cmd *cmd);
void mc_listeners_free(struct sw_msg_client *c);

#endif
