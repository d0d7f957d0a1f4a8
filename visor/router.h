/* router.h — routing on the visor (docs/routing.md): the rule table, routing packets on
 * transports, the port-3 rule server for setup nodes, and the REST views of the rules.
 *
 * Threads: struct visor_router belongs to the loop, except the counters (atomics, read by the API
 * threads) and the rule server's threads (router_setup.c), which reach the loop only
 * through VISOR_CMD_CALL commands. */
#ifndef VISOR_ROUTER_H
#define VISOR_ROUTER_H

#include "visor/rules.h"
#include "visor/visor.h"

#define VISOR_ROUTER_SETUP_PORT 3          /* messaging port of the rule server */
#define VISOR_ROUTER_MSG_MAX (64u << 10)   /* setup protocol JSON messages */
#define VISOR_ROUTER_SETUP_IDLE_MS 60000   /* a rule stream with no request this long is closed
                                            * (setup nodes keep idle streams for 20 s between
                                            * setups) */
#define VISOR_ROUTER_SETUP_STREAMS 128     /* concurrent setup streams served (a setup node opens
                                            * one per setup in progress: 20 parallel setups need
                                            * 20) */

struct visor_router_setup;
struct visor_appsrv;
struct visor_app_procs;
struct visor_group;
struct visor_app_listener;
struct visor_hop_queue;
LIST_HEAD(visor_hop_queue_list, visor_hop_queue);
LIST_HEAD(visor_group_list, visor_group);
LIST_HEAD(visor_app_listener_list, visor_app_listener);

struct visor_router {
    struct visor *v;
    struct visor_rule_table rt;
    struct event *expire_ev;
    struct visor_router_setup *setup;
    struct visor_appsrv *appsrv;
    struct visor_app_procs *procs;
    struct visor_group_list groups;
    struct visor_app_listener_list listeners;
    uint32_t n_groups;
    uint64_t group_serial;            /* last group serial given out */
    uint8_t buf[VISOR_TP_PKT_MAX];    /* rewritten packet being forwarded */
    struct visor_hop_queue_list hop_queues; /* hop_queue.c */
    size_t hopq_bytes;                /* bytes in all of them */
    uint32_t fault_drop_ppm;          /* SKYWIRE_VISOR_FAULT_DROP_PCT, per million */
    /* counters, read by API threads */
    _Atomic uint64_t m_forwarded, m_consumed, m_unknown, m_malformed, m_dropped_full,
        m_dropped_down, m_expired, m_refused_setup, m_groups_opened, m_group_failures, m_group_reroutes,
        m_fault_dropped, m_rtx_bytes, m_dgram_dropped, m_bad_records;
    _Atomic uint64_t m_rules, m_groups, m_hopq_bytes, m_hopq_peak; /* gauges */
};

/* Main thread, before the loop runs: the table and its expiry timer. */
int visor_router_start(struct visor *v, struct sw_error *err);
/* After the loop has stopped. */
void visor_router_stop(struct visor *v);
/* Loop: a routing packet (type 0x10..0x12) arrived on transport t. */
void visor_router_packet(struct visor *v, struct visor_transport *t, const uint8_t *pkt,
                         size_t len);
/* Loop: JSON of one table entry (owned by the caller). */
struct json_object *visor_router_rule_json(const struct visor_rule *r);
/* Loop, for the API: VISOR_CMD_CALL handlers. c->n is the route ID for get / delete. */
void visor_router_cmd_list(struct visor *v, struct visor_cmd *c);
void visor_router_cmd_get(struct visor *v, struct visor_cmd *c);
void visor_router_cmd_delete(struct visor *v, struct visor_cmd *c);
/* Prometheus lines for /metrics (any thread). */
struct sw_buf;
void visor_router_write_metrics(struct visor *v, struct sw_buf *out);

/* ---- route group ends and app listeners (group.c), loop thread ---------------------------- */
#define VISOR_GROUP_HS_TIMEOUT_MS 10000    /* KK handshake over the route */
#define VISOR_GROUP_HS_RESEND_MS 500       /* handshake message 1 again when unanswered */
#define VISOR_GROUP_HS_ANSWER_GAP_MS 100   /* message 2 again at most this often */
#define VISOR_GROUP_KEEPALIVE_S 5          /* KEEPALIVE on the outgoing route after this idle time */
#define VISOR_GROUP_DEAD_S 20              /* nothing received for this long: the route is broken */
#define VISOR_GROUP_REROUTE_S 30           /* a broken group not re-established by then is closed */
#define VISOR_GROUP_RETRY_MS 1000          /* between re-establishment attempts */
#define VISOR_GROUP_WINDOW (4u << 20)      /* stream: bytes an end buffers for its app (the peer
                                            * never has more than this in flight) */
#define VISOR_GROUP_APP_IN_MAX (256u << 10) /* stream: app bytes read ahead of the window */
#define VISOR_GROUP_ACK_BYTES (512u << 10)  /* stream: ACK at once after this many new bytes */
#define VISOR_GROUP_ACK_DELAY_MS 5          /* stream: else within this long */
#define VISOR_GROUP_STALL_MS 4000          /* stream: bytes in flight and nothing received for
                                            * this long: the route is broken */
#define VISOR_GROUP_DGRAM_QUEUE (256u << 10) /* datagram: bytes waiting for room (oldest dropped) */
#define VISOR_GROUP_FLUSH_MS 5000          /* peer closed: deliver what is queued for the app
                                            * until then */
#define VISOR_GROUP_RECORD_MAX 65000       /* app bytes per record (stream) or datagram */


/* rm-tp (make-before-break): the route groups whose first hop is transport tp move onto new
 * routes (an initiator sets one up, a responder asks its initiator to). Returns how many
 * groups use tp now. */
int visor_group_transport_leaving(struct visor *v, const struct sw_uuid *tp);
/* Route groups whose first hop is transport tp. */
int visor_group_count_on(struct visor *v, const struct sw_uuid *tp);
/* Frees every group and listener (after the loop has stopped). */
void visor_group_free_all(struct visor *v);
/* A routing packet for consume rule r (DATA / KEEPALIVE / CLOSE). */
void visor_group_packet(struct visor *v, struct visor_rule *r, const struct visor_rpkt *p);
/* The consume rule rid went away (expired, deleted by the operator): end its group. */
void visor_group_rule_gone(struct visor *v, uint32_t rid, const char *why);
/* group_ready from a setup node (port 3): the JSON request; returns the response. */
struct json_object *visor_group_ready(struct visor *v, struct json_object *req, uint64_t id,
                                      const struct sw_pk *owner);
/* VISOR_CMD_CALL from the app server: c->body = {"local_port","remote_pk","remote_port","send_tp",
 * "send_rid","recv_rid"}; becomes the initiator end, runs KK and replies 200 with the app's
 * end of a socketpair in c->fd once the handshake is done (else 502 + error). */
void visor_group_cmd_dial(struct visor *v, struct visor_cmd *c);
/* Loop, initiator end: the route of a group broke; what a re-establishment thread needs. */
struct visor_group_reroute {
    uint64_t serial;               /* the group (c->n of visor_group_cmd_rebind) */
    struct sw_pk dst;
    uint16_t dst_port, src_port;
    char failed_tp[SW_UUID_STR_LEN + 1]; /* a transport to avoid ("" none) */
    char *old_paths;               /* {"forward":[..],"reverse":[..]} of the broken route (owned) */
};
/* VISOR_CMD_CALL from a re-establishment thread: c->n = serial, c->body = {"error":msg} or
 * {"send_tp","send_rid","recv_rid","forward","reverse"}: swaps the group onto the new route. */
void visor_group_cmd_rebind(struct visor *v, struct visor_cmd *c);
/* VISOR_CMD_CALL: 200 when no initiator group end uses local port c->n (the address pair that
 * identifies a group across failovers must stay unique), 409 otherwise. */
void visor_group_cmd_port_free(struct visor *v, struct visor_cmd *c);
/* Loop: starts a thread that finds a new path and asks the setup nodes for it ("rebind");
 * takes r->old_paths. SW_OK when the thread runs (it always answers with
 * visor_group_cmd_rebind). */
int visor_appsrv_reroute(struct visor *v, struct visor_group_reroute *r);

/* VISOR_CMD_CALL: listen on port c->n; replies 200 with the app's listener fd in c->fd
 * (SOCK_SEQPACKET: each connection arrives as 34 bytes pk || port BE with its fd). 409 when
 * the port is taken. */
void visor_group_cmd_listen(struct visor *v, struct visor_cmd *c);

/* ---- app API: the unix socket in data_dir (appsrv.c) -------------------------------------- */
#define VISOR_APPSRV_SOCKET_NAME "app.sock"
int visor_appsrv_start(struct visor *v, struct sw_error *err);
void visor_appsrv_stop(struct visor *v);

/* ---- apps as child processes (appsrv_proc.c), loop thread ------------------------------------ */
/* Main thread before the loop runs: starts the auto_start apps. */
int visor_apps_start(struct visor *v, struct sw_error *err);
/* After the loop stopped: SIGTERM every app, SIGKILL after 3 s. */
void visor_apps_stop(struct visor *v);
/* VISOR_CMD_CALL handlers: list; action on app c->why: c->n 0 start, 1 stop, 2 autostart
 * (= c->type). */
void visor_apps_cmd_list(struct visor *v, struct visor_cmd *c);
void visor_apps_cmd_action(struct visor *v, struct visor_cmd *c);

/* ---- rule server on messaging port 3 (router_setup.c) ----------------------------------- */
/* Main thread, after visor_dmsg_start: listens when the messaging client runs. */
int visor_router_setup_start(struct visor *v, struct sw_error *err);
/* Main thread: closes the listener and every stream, joins the threads. Before visor_dmsg_stop. */
void visor_router_setup_stop(struct visor *v);
/* Loop: executes one setup request (the JSON in c->body), owner = c->pk; replies with the
 * response object (status 200). */
void visor_router_setup_exec(struct visor *v, struct visor_cmd *c);

#endif
