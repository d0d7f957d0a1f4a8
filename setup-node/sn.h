/* sn.h — setup-node internals: the daemon's state, its records and the setup steps.
 * docs/setup-node.md describes the behaviour; docs/routing.md §3 the protocol. */
#ifndef SN_H
#define SN_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#include "common/db.h"
#include "common/http_server.h"
#include "common/keys.h"
#include "common/metrics.h"
#include "common/msg_client.h"
#include "common/network.h"
#include "common/setup_proto.h"
#include "common/signed_request.h"

#define SN_MAX_FIXED_SERVERS 8
#define SN_MAX_WORKERS 256
#define SN_MAX_ADMIN_KEYS 16

/* Who may read GET /route-groups (--route-groups-access; access.c). */
enum sn_access_mode {
    SN_ACCESS_LOOPBACK = 0, /* loopback peers, and requests signed by an admin key */
    SN_ACCESS_ADMIN,        /* only requests signed by an admin key */
    SN_ACCESS_ANY,          /* everyone who reaches the port */
};

/* Results of a route_group request; index into sn_result_names (the error code a visor
 * reads) and the metrics. */
enum sn_result {
    SN_ESTABLISHED = 0, SN_FORBIDDEN, SN_INVALID_REQUEST, SN_INVALID_PATH, SN_UNREACHABLE,
    SN_REFUSED, SN_TIMEOUT, SN_NO_LISTENER, SN_DB_UNAVAILABLE, SN_INTERNAL, SN_N_RESULTS
};
extern const char *const sn_result_names[SN_N_RESULTS];
/* The result of a setup that failed with code (setup.c): SW_EPERM forbidden, SW_EIO
 * visor_unreachable, SW_EPROTO refused (the visor refused the step or answered out of
 * protocol), SW_ETIMEDOUT timeout, SW_ENOTFOUND no_listener, SW_EDB database_unavailable,
 * any other internal_error. Requests that do not parse (invalid_request, invalid_path) are
 * answered by server.c before a setup starts. */
enum sn_result sn_result_of(int code);

enum sn_step { SN_STEP_RESERVE = 0, SN_STEP_ADD_RULES, SN_STEP_GROUP_READY, SN_STEP_DEL_RULES, SN_N_STEPS };
extern const char *const sn_step_names[SN_N_STEPS];

/* pool.c: idle rule-server streams by visor key (see pool.c for the limits). */
#define SN_POOL_MAX 256
#define SN_POOL_PER_VISOR 2
#define SN_POOL_IDLE_MS 20000
struct sn_idle_stream {
    struct sw_pk pk;
    int fd;
    uint64_t next_id;
    int64_t since_ms;
};
struct sn_pool {
    pthread_mutex_t mu;
    struct sn_idle_stream idle[SN_POOL_MAX];
    size_t n;
    bool closed; /* the daemon is stopping: streams given back are closed */
};
void sn_pool_init(struct sn_pool *p);
/* An idle stream to pk (its fd and next request id become the caller's). False: none. */
bool sn_pool_take(struct sn_pool *p, const struct sw_pk *pk, int *fd, uint64_t *next_id);
/* Gives back a stream whose every request was answered; takes fd (closes it when full). */
void sn_pool_put(struct sn_pool *p, const struct sw_pk *pk, int fd, uint64_t next_id);
void sn_pool_close_all(struct sn_pool *p);

struct sn_conn;
struct sn_app {
    struct sw_db *db;
    /* flags */
    const char *key_file;
    const char *discovery_url;
    struct sw_msg_server_addr servers[SN_MAX_FIXED_SERVERS];
    size_t n_servers;
    long sessions;
    long step_timeout_ms;
    enum sn_access_mode rg_access;
    struct sw_pk admin_keys[SN_MAX_ADMIN_KEYS];
    size_t n_admin_keys;
    const char *network_pk;  /* --network: a private network's key (NULL: open network) */
    const char *cert_file;   /* --cert-file: our certificate (role setup-node) */
    const char *revocations; /* --revocations: a transport discovery URL or a file */
    long revocations_refresh_ms;
    /* run time */
    struct sw_network *net;  /* NULL: open network (common/network.h) */
    struct sw_nonce_store nonces; /* sn_nonces: signed requests of admin keys */
    struct sw_keypair kp;
    struct sw_msg_client *msg;
    int listener_fd;
    pthread_t listen_thread;
    atomic_bool stopping;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned workers; /* under mu */
    struct sn_conn *conns; /* under mu: the requester streams being served, oldest first */
    uint64_t m_evicted, m_refused; /* under mu: idle streams closed for newer ones; streams refused */
    struct sn_pool pool;
    /* metrics */
    _Atomic uint64_t results[SN_N_RESULTS];
    _Atomic uint64_t rolled_back_at_start;
    _Atomic int64_t active;
    struct sw_histogram step_latency[SN_N_STEPS];
    struct sw_histogram setup_latency;
};

/* store.c: sn_route_groups records. */
int sn_store_migrate(struct sw_db *db, struct sw_error *err);
int sn_store_prepare(struct sw_db *db);
int sn_store_begin(struct sw_db *db, const struct sw_route_group_req *r, int64_t *id,
                   struct sw_error *err);
/* installed: JSON text [{"pk":"<hex>","rids":[...]}] (borrowed). */
int sn_store_installed(struct sw_db *db, int64_t id, const char *installed, struct sw_error *err);
int sn_store_finish(struct sw_db *db, int64_t id, const char *status, const char *error,
                    struct sw_error *err);
int sn_store_list(struct sw_db *db, unsigned limit, struct json_object **out, struct sw_error *err);
/* Rows still 'in_progress': [{"id":N,"installed":[...]}] (caller puts). */
int sn_store_in_progress(struct sw_db *db, struct json_object **out, struct sw_error *err);

/* setup.c: runs one request and builds the response (caller puts *resp): the group, or the
 * error named by sn_result_of with the reason of the step that failed. */
void sn_setup_run(struct sn_app *app, const struct sw_pk *caller, const struct sw_route_group_req *req,
                  struct json_object **resp);
/* Rolls back every record left 'in_progress' by a previous run (bounded time). */
void sn_setup_recover(struct sn_app *app);

/* rpc.c: one stream per visor per setup, taken from the pool or dialed. */
#define SN_MAX_PEERS (2 * SW_SETUP_MAX_HOPS) /* visors of one setup: the ends of its hops */
struct sn_peer {
    struct sw_pk pk;
    int fd;          /* -1 until dialed */
    uint64_t next_id;
    uint32_t rids[2 * SW_SETUP_MAX_HOPS];
    size_t n_rids;   /* reserved so far */
    size_t n_need;   /* to reserve */
    size_t n_used;   /* handed out to rules */
    bool rules_sent; /* add_rules sent: rollback must del_rules here */
    bool pooled;     /* fd came from the pool and has not answered yet in this setup */
};
/* Sends req (type + fields; "id" is added) to the peer and waits for its answer within the
 * step timeout; SW_OK with *resp (if non-NULL) the response (caller puts). On failure err
 * says "visor <pk>: why": SW_EIO unreachable (dial or stream failed; the stream is closed),
 * SW_ETIMEDOUT no answer in time (closed), SW_EPROTO refused or a malformed answer,
 * SW_ENOTFOUND group_ready refused with no_listener. */
int sn_rpc(struct sn_app *app, struct sn_peer *p, enum sn_step step, struct json_object *req,
           struct json_object **resp, struct sw_error *err);
/* One step's request to one visor, for sn_rpc_all. */
struct sn_call {
    struct sn_peer *peer;
    struct json_object *req;  /* borrowed ("id" is added) */
    struct json_object *resp; /* out: the answer on SW_OK (caller puts) */
    int rc;                   /* out: sn_rpc's result */
    struct sw_error err;      /* out: why, when rc != SW_OK */
    struct sn_app *app;       /* set by sn_rpc_all */
    enum sn_step step;        /* set by sn_rpc_all */
};
/* Runs sn_rpc for every call at once, each on its own thread (the first on the caller's),
 * and returns when all have returned; the peers must be distinct. A call whose thread cannot
 * be started runs on the caller's thread afterwards. */
void sn_rpc_all(struct sn_app *app, enum sn_step step, struct sn_call *calls, size_t n);
void sn_peer_close(struct sn_peer *p);
/* After a setup: the peer's stream back to the pool (when it is open), else closed. */
void sn_peer_release(struct sn_app *app, struct sn_peer *p);

/* server.c: listens on messaging port 2 and starts the listener thread (SW_EIO, err saying
 * why, when either fails). In a private network only visors' streams get through the
 * messaging handshake (a refused one is logged there). */
int sn_server_start(struct sn_app *app, struct sw_error *err);
void sn_server_stop(struct sn_app *app);

/* access.c: flags (SW_OK, or SW_EINVAL with err naming the flag), the start-up check (logs
 * who may read the records; SW_EINVAL with err when the flags cannot work together), and the
 * check of one request: true = serve it; false = the 401/403/503 reply is already in resp. */
int sn_access_parse_mode(const char *val, enum sn_access_mode *out, struct sw_error *err);
int sn_access_add_admin_key(struct sn_app *app, const char *hex, struct sw_error *err);
int sn_access_check_config(const struct sn_app *app, struct sw_error *err);
bool sn_access_allowed(struct sn_app *app, const struct sw_http_request *req, struct sw_http_response *resp);

/* api.c */
extern const struct sw_http_route sn_routes[];
extern const size_t sn_n_routes;
void sn_write_metrics(void *app, struct sw_buf *out);

#endif
