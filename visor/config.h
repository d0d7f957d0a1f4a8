/* config.h — the visor's configuration file (skywire-config.json, docs/visor.md).
 *
 * visor_config_load() validates every field with the sw_config_* getters, so an error
 * names the field: "config skywire-config.json: field 'stcp.pk_table.<pk>': must be
 * host:port ...". visor_config_generate() builds the JSON document `skywire-cli node
 * gen-config` writes; it is linked into both skywire-visor and skywire-cli.
 *
 * Ownership: struct visor_config owns its arrays (visor_config_free) and holds the secret
 * key (wiped by visor_config_free). Strings are copied out of the document. */
#ifndef VISOR_CONFIG_H
#define VISOR_CONFIG_H

#include <json-c/json.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/keys.h"
#include "common/log.h"

#define VISOR_URL_MAX 256
#define VISOR_ADDR_MAX 256
#define VISOR_PK_TABLE_MAX 4096
#define VISOR_SETUP_NODES_MAX 16
#define VISOR_MSG_SERVERS_MAX 16
#define VISOR_APPS_MAX 64
#define VISOR_APP_ARGS_MAX 32
#define VISOR_APP_NAME_MAX 64
#define VISOR_APP_ARG_MAX 256
#define VISOR_HYPERVISORS_MAX 8
#define VISOR_API_HOSTS_MAX 16
#define VISOR_HOST_NAME_MAX 254 /* a DNS name (253) or an IP address, plus the NUL */

#define VISOR_DEFAULT_CONFIG "skywire-config.json"
#define VISOR_DEFAULT_API "127.0.0.1:3435"
#define VISOR_DEFAULT_STCP "0.0.0.0:7777"
#define VISOR_DEFAULT_TPD "http://127.0.0.1:9091"
#define VISOR_DEFAULT_MDISC "http://127.0.0.1:9090"
#define VISOR_DEFAULT_RF "http://127.0.0.1:9092"
#define VISOR_DEFAULT_DATA_DIR "./visor-data"
#define VISOR_DEFAULT_SKYCHAT_ADDR "127.0.0.1:8000"
#define VISOR_DEFAULT_SOCKS_ADDR "127.0.0.1:1080"
#define VISOR_DEFAULT_NET_REFRESH_MS 20000 /* revocation list reloads (network.revocations_refresh_ms) */

struct visor_pk_addr {
    struct sw_pk pk;
    char addr[VISOR_ADDR_MAX];
};

struct visor_app_config {
    char name[VISOR_APP_NAME_MAX];
    char version[32];
    bool auto_start;
    uint16_t port;
    size_t n_args;
    char args[VISOR_APP_ARGS_MAX][VISOR_APP_ARG_MAX];
};

struct visor_config {
    char path[256];
    char version[32];
    struct sw_keypair kp;
    /* messaging: discovery "" = dmsg disabled */
    char msg_discovery[VISOR_URL_MAX];
    unsigned msg_sessions;
    size_t n_msg_servers;
    struct visor_pk_addr msg_servers[VISOR_MSG_SERVERS_MAX];
    char tpd_url[VISOR_URL_MAX];
    char route_finder[VISOR_URL_MAX];
    size_t n_setup_nodes;
    struct sw_pk setup_nodes[VISOR_SETUP_NODES_MAX];
    char stcp_listen[VISOR_ADDR_MAX]; /* "" = no stcp listener */
    size_t n_pk_table;
    struct visor_pk_addr *pk_table;   /* owned */
    size_t n_apps;
    struct visor_app_config *apps;    /* owned */
    char api_listen[VISOR_ADDR_MAX];
    /* api.allowed_hosts: Host header names the API accepts besides loopback and the listen
     * host (no port); docs/visor.md "Access to the local API" */
    size_t n_api_allowed_hosts;
    char api_allowed_hosts[VISOR_API_HOSTS_MAX][VISOR_HOST_NAME_MAX];
    enum sw_log_level log_level;
    char data_dir[PATH_MAX];
    size_t n_hypervisors;            /* hypervisors this visor connects out to (hvlink.c) */
    struct visor_pk_addr hypervisors[VISOR_HYPERVISORS_MAX];
    /* "network": a private network's key (hex; "" = open network), this visor's certificate
     * file, where the revocation list comes from (a transport discovery URL or a file; ""
     * = none; default: transport.discovery) and how often it is reloaded */
    char net_pk[SW_PK_HEX_LEN + 1];
    char net_cert_file[PATH_MAX];
    char net_revocations[PATH_MAX];
    unsigned net_refresh_ms;
};

/* Loads and validates path. On failure err names the field; *c is left freed. */
int visor_config_load(struct visor_config *c, const char *path, struct sw_error *err);
/* Same from text (name is used in messages). */
int visor_config_load_string(struct visor_config *c, const char *name, const char *text,
                             size_t len, struct sw_error *err);
void visor_config_free(struct visor_config *c);
/* The stcp address configured for pk, or NULL (borrowed). */
const char *visor_config_pk_addr(const struct visor_config *c, const struct sw_pk *pk);

/* The URL that reaches api.listen from this machine: a wildcard or empty listen host
 * ("0.0.0.0", "::", "") becomes loopback, an IPv6 literal is bracketed. Used by skywire-cli
 * and the hypervisor link. SW_ERANGE when it does not fit cap. */
int visor_config_api_url(const struct visor_config *c, char *out, size_t cap);
/* The host part of api.listen when it names one address or name (not a wildcard), else "". */
void visor_config_api_listen_host(const struct visor_config *c, char *out, size_t cap);

/* ---- the local API's bearer token: data_dir/api-token (docs/visor.md "Access to the
 * local API"); reading is here because skywire-cli links this file, creating it is the
 * visor's (api_token.c) */
#define VISOR_API_TOKEN_FILE "api-token"
#define VISOR_API_TOKEN_BYTES 32
#define VISOR_API_TOKEN_HEX (2 * VISOR_API_TOKEN_BYTES)

/* Reads the token file at path without following a symbolic link: 64 lowercase hex
 * characters and an optional newline. With private_only the file must also be a regular
 * file of this user that nobody else may read or write (mode 0600 or narrower). out is
 * written only on success (wipe it with sodium_memzero when done); err names the file and
 * the problem, never the content. SW_ENOTFOUND when the file does not exist, SW_EPERM for
 * wrong ownership or permissions, SW_EINVAL for wrong content, SW_EIO otherwise. */
int visor_api_token_read(const char *path, bool private_only, char out[VISOR_API_TOKEN_HEX + 1],
                         struct sw_error *err);

/* Inputs of gen-config; NULL / 0 fields take the defaults above. */
struct visor_gen_opts {
    const char *tpd, *mdisc, *route_finder, *stcp, *api, *data_dir, *log_level;
    unsigned sessions;
    const char *const *setup_nodes;  /* hex keys */
    size_t n_setup_nodes;
    const char *const *pk_table;     /* "PK=HOST:PORT" */
    size_t n_pk_table;
    const char *const *msg_servers;  /* "PK@HOST:PORT" */
    size_t n_msg_servers;
    const char *const *hypervisors;  /* "PK@HOST:PORT" */
    size_t n_hypervisors;
    /* apps: by default skychat, SSH, SSH-client and socksproxy start with the visor, and
     * socksproxy-client is listed (started only when socks_srv names an exit) */
    bool no_apps;                    /* an empty app list */
    const char *skychat_addr;        /* NULL: VISOR_DEFAULT_SKYCHAT_ADDR */
    const char *socks_srv;           /* hex key of the socksproxy exit for socksproxy-client */
    const char *socks_addr;          /* socksproxy-client listener; NULL: VISOR_DEFAULT_SOCKS_ADDR */
    const char *const *ssh_allow;    /* hex keys SSH lets in (besides its authorized-keys file) */
    size_t n_ssh_allow;
    /* private network: the network key (hex), this visor's certificate file and the
     * revocation source (NULL: the transport discovery); all NULL = open network */
    const char *network, *cert_file, *revocations;
};

/* Builds a config document for kp; *out is owned by the caller. The result passes
 * visor_config_load_string (checked before returning). SW_EINVAL names the bad option. */
int visor_config_generate(const struct visor_gen_opts *o, const struct sw_keypair *kp,
                          struct json_object **out, struct sw_error *err);

#endif
