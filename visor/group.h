/* group.h — a route group end's state, shared by the files that run it (loop thread only):
 *   group.c           lifecycle: creation from a dial or group_ready, the end-to-end
 *                     handshake, app listeners, closing;
 *   group_stream.c    the reliable byte stream (route_stream.c keeps its sequence numbers);
 *   group_dgram.c     datagram routes: one record per app datagram, nothing resent;
 *   group_failover.c  noticing a broken route, re-establishing it, moving onto the new one.
 * Everything outside these files goes through visor/router.h. */
#ifndef VISOR_GROUP_H
#define VISOR_GROUP_H

#include "visor/route_record.h"
#include "visor/route_stream.h"
#include "visor/router.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

/* G_HANDSHAKE: the end-to-end Noise KK runs;
 * G_OPEN: records flow;
 * G_REROUTE: initiator, the route broke, a new one is being set up;
 * G_WAIT: responder, the route broke, waiting for the initiator's rebind;
 * G_CLOSING: CLOSE sent or received; what arrived is still being written to the app, then
 * the end goes away (at most VISOR_GROUP_FLUSH_MS). */
enum visor_group_state { G_HANDSHAKE, G_OPEN, G_REROUTE, G_WAIT, G_CLOSING };

struct visor_group {
    struct visor *v;
    uint32_t recv_rid, send_rid;
    struct sw_uuid send_tp;
    uint16_t local_port, remote_port;
    struct sw_pk remote;
    bool initiator;
    enum visor_route_mode mode;
    enum visor_group_state state;
    struct sw_noise_hs hs;
    struct sw_noise_cipher tx, rx;
    uint64_t next_pn;            /* packet number of our next record */
    uint8_t *hs_msg;             /* our handshake message, sent again if it may have been lost */
    size_t hs_len;
    int64_t hs_sent_ms;          /* when our handshake message last went out (monotonic) */
    bool heard_record;           /* responder: a record opened, so message 2 arrived */
    struct visor_replay replay;
    int app_fd;                  /* the app's end until handed over */
    struct visor_cmd *waiter;    /* dial waiting for the handshake */
    struct event *timer;         /* handshake deadline, keepalive, resend, failover */
    struct visor_tp_waiter tpw;  /* waiting for room on send_tp */
    int64_t deadline_ms, last_tx_ms, last_rx_ms; /* monotonic */
    const char *close_why;       /* G_CLOSING */
    /* stream (group_stream.c) */
    struct bufferevent *bev;     /* our end of the app's socketpair */
    struct evbuffer *rtx;        /* bytes from snd_una on: sent and not acknowledged */
    struct visor_stream st;
    struct event *ack_ev;        /* deferred: one ACK for everything one loop turn received, or
                                  * a delayed one (VISOR_GROUP_ACK_DELAY_MS) */
    uint8_t ack_flags;           /* an ACK is due (VISOR_REC_* flags to set; 0x80 = plain) */
    uint64_t told_edge;          /* the receive edge the peer last heard */
    uint64_t acked_to;           /* the ack value the peer last heard */
    bool app_eof;                /* the app shut its side: FIN after its bytes */
    bool app_shut;               /* the peer's FIN reached the app (its side shut down) */
    /* datagram (group_dgram.c) */
    int dfd;                     /* our end of the app's SOCK_SEQPACKET pair */
    struct event *dgram_ev;
    struct evbuffer *dgram_q;    /* u16 length || datagram, waiting for room (oldest dropped) */
    size_t dgram_q_bytes;
    /* failover (group_failover.c; docs/routing.md §7) */
    uint64_t serial;             /* identifies the group to its re-establishment thread */
    int64_t broken_ms, reroute_deadline_ms, retry_at_ms; /* monotonic */
    bool job;                    /* a re-establishment thread is running for it */
    bool moving;                 /* make-before-break: a new route is being set up while the
                                  * old one still carries the group (state stays G_OPEN) */
    bool tp_down;                /* the first hop's transport went down (avoid it) */
    struct sw_uuid failed_tp;
    char *paths;                 /* initiator: {"forward","reverse"} of the current route */
    LIST_ENTRY(visor_group) next;
};

#define VISOR_GROUP_ACK_PLAIN 0x80

struct visor_group_params {
    enum visor_route_mode mode;
    uint16_t local_port, remote_port;
    struct sw_pk remote;
    struct sw_uuid send_tp;
    uint32_t send_rid, recv_rid;
};

struct visor_app_listener {
    struct visor *v;
    uint16_t port;
    enum visor_route_mode mode;
    int fd;                    /* our end of the SOCK_SEQPACKET pair */
    struct event *ev;          /* EOF: the app closed its listener */
    LIST_ENTRY(visor_app_listener) next;
};

/* group.c */
/* A new end on consume rule gp->recv_rid; the initiator sends the first handshake message.
 * NULL with *code (the answer's error code) and err on failure. */
struct visor_group *visor_group_start(struct visor *v, const struct visor_group_params *gp, bool initiator,
                                      const char **code, struct sw_error *err);
struct visor_group *visor_group_find_serial(struct visor_router *ro, uint64_t serial);
struct visor_group *visor_group_find_tuple(struct visor_router *ro, uint16_t local_port, const struct sw_pk *remote,
                                           uint16_t remote_port, bool initiator);
struct visor_app_listener *visor_group_find_listener(struct visor_router *ro, uint16_t port);
struct visor_group *visor_group_by_rid(struct visor_router *ro, uint32_t recv_rid);
void visor_group_free(struct visor_group *g, const char *why);
/* Ends the group: CLOSE with code on the outgoing route when send_close, app fd closed. */
void visor_group_end(struct visor_group *g, bool send_close, uint8_t code, const char *why);
/* CLOSE on the outgoing route, then the app's connection closes once what arrived is written
 * to it (VISOR_GROUP_FLUSH_MS at most). */
void visor_group_close_flush(struct visor_group *g, const char *why);
/* Sends one small routing packet (CLOSE, KEEPALIVE: type, body after the route ID) on the
 * outgoing route. */
enum visor_send visor_group_send(struct visor_group *g, uint8_t type, const uint8_t *body, size_t len, int flags);
/* Seals inner[len] (which sits at visor_group_inner()) as our next record and sends it in a DATA
 * packet; control records (pure ACKs) ignore the transport's cap. */
enum visor_send visor_group_send_record(struct visor_group *g, size_t len, int flags);
uint8_t *visor_group_inner(void);
/* Re-arms the timer: soon while a stream has bytes in flight, else in a second. */
void visor_group_arm_timer(struct visor_group *g);

/* group_stream.c */
int visor_gstream_init(struct visor_group *g, int sock, struct sw_error *err);
void visor_gstream_free(struct visor_group *g);
void visor_gstream_open(struct visor_group *g, uint32_t peer_window); /* handshake done */
void visor_gstream_record(struct visor_group *g, const uint8_t *inner, size_t len);
void visor_gstream_pump(struct visor_group *g);  /* send what the window allows */
void visor_gstream_tick(struct visor_group *g, int64_t now_ms);
void visor_gstream_resume(struct visor_group *g); /* on a new route: resend what is unacknowledged */
size_t visor_gstream_app_pending(const struct visor_group *g); /* bytes waiting for the app */

/* group_dgram.c */
int visor_gdgram_init(struct visor_group *g, int sock, struct sw_error *err);
void visor_gdgram_free(struct visor_group *g);
void visor_gdgram_open(struct visor_group *g);
void visor_gdgram_record(struct visor_group *g, const uint8_t *payload, size_t len);
void visor_gdgram_flush(struct visor_group *g);   /* queued datagrams, when there is room */

/* group_failover.c */
void visor_group_route_broken(struct visor_group *g, const char *why, bool tp_down);
void visor_group_failover_tick(struct visor_group *g, int64_t now_ms);
/* Initiator, open group: set up a new route avoiding transport avoid, keep using the old one
 * until it is ready (rm-tp, or the responder's MOVE). */
void visor_group_move(struct visor_group *g, const struct sw_uuid *avoid);
/* Responder (stream): asks the initiator to move the group off transport tp. */
void visor_gstream_ask_move(struct visor_group *g, const struct sw_uuid *tp);
/* Back to G_OPEN on the current route: timer re-armed, then what is unacknowledged resent
 * (stream) or the queued datagrams sent. May end the group (g freed). */
void visor_group_resume(struct visor_group *g);
/* Moves the group onto a new route (rebind from the setup node or the initiator's thread). */
void visor_group_rebound(struct visor_group *g, const struct sw_uuid *tp, uint32_t send_rid, uint32_t recv_rid);

#endif
