/* hv.h — the hypervisor daemon's shared state and the interfaces between its files
 * (docs/hypervisor.md).
 *
 * Threads: the main thread waits for signals; one accept thread takes visor links and each
 * link gets a reader thread (link.c); libmicrohttpd runs each REST connection on its own
 * thread (api.c: relays block up to 25 s), whose handler relays requests over the links
 * and waits for the answers. Everything in
 * struct hv that changes after start (visor table, links, pending requests) is guarded by
 * hv->mu; sessions and login counters by the auth's own mutex (auth.c). */
#ifndef HV_HV_H
#define HV_HV_H

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/hv_chan.h"
#include "common/keys.h"
#include "common/opts.h"

#define HV_MAX_VISORS 256
#define HV_ADDR_MAX 256
#define HV_URL_MAX 256
#define HV_DEFAULT_ADDR "127.0.0.1:9080"
#define HV_DEFAULT_VISOR_ADDR "0.0.0.0:9081"
#define HV_DEFAULT_KEY_FILE "hypervisor-key.json"
#define HV_DEFAULT_DATA_DIR "./hypervisor-data"
#define HV_REQ_TIMEOUT_MS 10000
#define HV_ADD_TP_TIMEOUT_MS 25000   /* the visor waits up to 20 s for a new transport */
#define HV_SUMMARY_TIMEOUT_MS 3000   /* per visor in GET /api/visors */
#define HV_HANDSHAKE_MS 5000
#define HV_MAX_HANDSHAKES 64
#define HV_MAX_HANDSHAKES_PER_IP 8 /* one address cannot take every handshake slot */
#define HV_IP_MAX 48               /* a numeric IPv4/IPv6 address */
#define HV_PING_MS 10000
#define HV_DEAD_MS 30000
#define HV_MAX_INFLIGHT 256          /* pending requests per link */
#define HV_MAX_ALLOWED_HOSTS 16      /* --allowed-host */
#define HV_HOST_MAX 256

/* ---- configuration (config.c) ------------------------------------------------------------- */
struct hv_config {
    char addr[HV_ADDR_MAX];        /* web + REST */
    char visor_addr[HV_ADDR_MAX];  /* visor links */
    char key_file[PATH_MAX];
    char data_dir[PATH_MAX];
    char tpd[HV_URL_MAX];          /* "" = no network map */
    char admin_password_file[PATH_MAX];
    bool cookie_secure;            /* add Secure to the session cookie (served over https) */
    long login_failures;           /* failed logins per source before its backoff starts */
    bool reset_password;           /* --reset-password: set a new admin password and exit */
    size_t n_visors;
    struct sw_pk visors[HV_MAX_VISORS]; /* the allow-list */
    /* Host names the page and API answer to besides the loopback names and addr's host
     * (--allowed-host / "allowed_hosts": a reverse proxy's public name) */
    size_t n_allowed_hosts;
    char allowed_hosts[HV_MAX_ALLOWED_HOSTS][HV_HOST_MAX];
};

/* The command line (common/opts.h) over the -c JSON file, whose fields the flags override:
 * defaults, then the options table writing into c (a table of its own, one per process;
 * main thread), then hv_config_finish once parsed. Errors name the option or field. */
void hv_config_defaults(struct hv_config *c);
const struct sw_opt *hv_config_options(struct hv_config *c);
int hv_config_finish(struct hv_config *c, struct sw_error *err);

/* ---- links (link.c) ------------------------------------------------------------------------ */
struct hv_pending;
struct hv_conn;

struct hv_visor {
    struct sw_pk pk;
    char pk_hex[SW_PK_HEX_LEN + 1];
    struct hv_conn *conn;          /* the open link, or NULL (offline) */
};

struct hv_visor_state {            /* a snapshot for GET /api/visors */
    bool online;
    char remote_addr[HV_ADDR_MAX];
    int64_t connected_since;       /* unix seconds */
};

struct hv {
    struct hv_config cfg;
    struct sw_keypair kp;
    int64_t started_at;
    pthread_mutex_t mu;
    pthread_cond_t cond;           /* link threads exiting */
    size_t n_visors;
    struct hv_visor visors[HV_MAX_VISORS];
    int lfd;                       /* visor listener */
    char visor_bound[HV_ADDR_MAX];
    pthread_t accept_th;
    bool accept_started, stopping;
    int n_threads;                 /* link threads alive */
    int n_handshakes;
    struct { char ip[HV_IP_MAX]; int n; } hs_ips[HV_MAX_HANDSHAKES]; /* handshakes by address */
    struct hv_auth *auth;
    struct sw_http_server *http;
    const char **allowed_hosts;    /* the Host allow-list of the API (api.c; owned) */
    _Atomic uint64_t m_relayed, m_relay_failed, m_links_refused, m_links_opened;
};

/* Index of pk in the allow-list, or -1. */
int hv_visor_find(const struct hv *hv, const struct sw_pk *pk);
void hv_visor_state(struct hv *hv, size_t idx, struct hv_visor_state *out);
size_t hv_visors_online(struct hv *hv);

int hv_link_start(struct hv *hv, struct sw_error *err);
/* Stops accepting, closes every link, waits for their threads. */
void hv_link_stop(struct hv *hv);

/* Sends one request to visor idx without waiting. SW_EIO when it is offline. */
int hv_relay_send(struct hv *hv, size_t idx, const char *method, const char *path, const char *body,
                  size_t body_len, struct hv_pending **out);
/* Waits for the answer (status, body owned by the caller: free) and frees p. SW_ETIMEDOUT,
 * SW_EIO (the link closed meanwhile). */
int hv_relay_wait(struct hv *hv, struct hv_pending *p, int timeout_ms, int *status, char **body,
                  size_t *body_len);
int hv_relay(struct hv *hv, size_t idx, const char *method, const char *path, const char *body,
             size_t body_len, int timeout_ms, int *status, char **out, size_t *out_len);

/* ---- auth (auth.c) ------------------------------------------------------------------------- */
struct hv_auth;
struct sw_http_request;
struct sw_http_response;

/* Loads data_dir/admin.pwhash or creates it (from admin_password_file, or a generated
 * password written to data_dir/initial-password, mode 0600). */
int hv_auth_init(struct hv *hv, struct sw_error *err);
/* --reset-password: replaces data_dir/admin.pwhash with admin_password_file's password or a
 * generated one (then written to data_dir/initial-password, whose path goes into where).
 * A running hypervisor keeps its old hash in memory until restarted. */
int hv_auth_reset_password(const struct hv_config *cfg, char *where, size_t cap, struct sw_error *err);
void hv_auth_free(struct hv *hv);
/* Route handlers: POST /api/login, POST /api/logout, GET /api/session, POST /api/password. */
void hv_auth_login(struct sw_http_request *req, struct sw_http_response *resp);
void hv_auth_logout(struct sw_http_request *req, struct sw_http_response *resp);
void hv_auth_session(struct sw_http_request *req, struct sw_http_response *resp);
void hv_auth_password(struct sw_http_request *req, struct sw_http_response *resp);
/* For every other /api route: true when the request holds a live session (and, for
 * POST/PUT/DELETE, the right X-CSRF-Token); otherwise replies 401/403 and returns false. */
bool hv_auth_check(const struct sw_http_request *req, struct sw_http_response *resp);
/* Live sessions, for the metrics (which need a session themselves: api.c). */
size_t hv_auth_sessions(struct hv *hv);

/* ---- REST (api.c) and the network map (network.c) ----------------------------------------- */
int hv_api_start(struct hv *hv, struct sw_error *err);
void hv_api_stop(struct hv *hv);
void hv_network_handle(struct sw_http_request *req, struct sw_http_response *resp);

#endif
