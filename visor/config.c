/* config.c — loading, validating and generating the visor's config (see config.h). */
#include "visor/config.h"
#include "common/config.h"
#include "common/hex.h"
#include "common/http_server.h"
#include "common/json.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Copies a string field that must fit cap; absent leaves dst untouched. */
static int get_str(const struct sw_config *cfg, const char *path, bool required, char *dst,
                   size_t cap, struct sw_error *err)
{
    const char *s = NULL;
    int rc = sw_config_string(cfg, path, required, &s, err);
    if (rc || !s)
        return rc;
    if (strlen(s) >= cap)
        return sw_config_field_error(cfg, path, err, "longer than %zu characters", cap - 1);
    memcpy(dst, s, strlen(s) + 1);
    return SW_OK;
}

static int get_url(const struct sw_config *cfg, const char *path, bool required, char *dst,
                   struct sw_error *err)
{
    const char *s = NULL;
    int rc = sw_config_url(cfg, path, required, &s, err);
    if (rc || !s)
        return rc;
    if (strlen(s) >= VISOR_URL_MAX)
        return sw_config_field_error(cfg, path, err, "longer than %d characters", VISOR_URL_MAX - 1);
    /* a trailing slash would double up with the targets appended to it */
    snprintf(dst, VISOR_URL_MAX, "%.*s", (int)(strlen(s) - (s[strlen(s) - 1] == '/')), s);
    return SW_OK;
}

static int get_hostport(const struct sw_config *cfg, const char *path, unsigned flags, char *dst,
                        struct sw_error *err)
{
    const char *s = NULL;
    int rc = sw_config_hostport(cfg, path, false, flags, &s, err);
    if (rc || !s)
        return rc;
    if (strlen(s) >= VISOR_ADDR_MAX)
        return sw_config_field_error(cfg, path, err, "longer than %d characters", VISOR_ADDR_MAX - 1);
    memcpy(dst, s, strlen(s) + 1);
    return SW_OK;
}

/* A section that is present must be an object. */
static int check_object(const struct sw_config *cfg, const char *path, bool required,
                        struct sw_error *err)
{
    struct json_object *v = sw_config_node(cfg, path);
    if (!v)
        return required ? sw_config_field_error(cfg, path, err, "is required") : SW_OK;
    if (!json_object_is_type(v, json_type_object))
        return sw_config_field_error(cfg, path, err, "must be an object");
    return SW_OK;
}

/* An array that is present must be an array of at most max items; *out NULL when absent. */
static int get_array(const struct sw_config *cfg, const char *path, size_t max,
                     struct json_object **out, struct sw_error *err)
{
    struct json_object *v = sw_config_node(cfg, path);
    *out = NULL;
    if (!v)
        return SW_OK;
    if (!json_object_is_type(v, json_type_array))
        return sw_config_field_error(cfg, path, err, "must be an array");
    if (json_object_array_length(v) > max)
        return sw_config_field_error(cfg, path, err, "holds more than %zu items", max);
    *out = v;
    return SW_OK;
}

static int load_keys(const struct sw_config *cfg, struct visor_config *c, struct sw_error *err)
{
    const char *sk_hex = NULL;
    uint8_t seed[crypto_sign_SEEDBYTES], derived_pk[SW_PK_LEN], derived_sk[SW_SK_LEN];
    int rc;

    if ((rc = check_object(cfg, "keys", true, err)) ||
        (rc = sw_config_pk(cfg, "keys.public_key", true, &c->kp.pk, err)) ||
        (rc = sw_config_string(cfg, "keys.secret_key", true, &sk_hex, err)))
        return rc;
    if (sw_hex_decode(c->kp.sk, SW_SK_LEN, sk_hex, strlen(sk_hex)))
        return sw_config_field_error(cfg, "keys.secret_key", err, "must be %d hex characters",
                                     SW_SK_LEN * 2);
    crypto_sign_ed25519_sk_to_seed(seed, c->kp.sk);
    crypto_sign_seed_keypair(derived_pk, derived_sk, seed);
    rc = memcmp(derived_pk, c->kp.pk.b, SW_PK_LEN) != 0 ||
         sodium_memcmp(derived_sk, c->kp.sk, SW_SK_LEN) != 0;
    sodium_memzero(seed, sizeof(seed));
    sodium_memzero(derived_sk, sizeof(derived_sk));
    if (rc)
        return sw_config_field_error(cfg, "keys.secret_key", err,
                                     "does not belong to keys.public_key");
    return SW_OK;
}

/* One {"pk", "<addr_key>"} entry of the array at array_path (a pinned messaging server, a
 * hypervisor): errors name the field, e.g. "messaging.servers[2].address". */
static int load_pk_addr(const struct sw_config *cfg, struct json_object *o, const char *array_path,
                        size_t i, const char *addr_key, struct visor_pk_addr *out, struct sw_error *err)
{
    char path[96];
    struct json_object *pk, *addr;
    struct sw_error kerr;

    snprintf(path, sizeof(path), "%s[%zu]", array_path, i);
    if (!json_object_is_type(o, json_type_object))
        return sw_config_field_error(cfg, path, err, "must be an object {\"pk\",\"%s\"}", addr_key);
    pk = json_object_object_get(o, "pk");
    addr = json_object_object_get(o, addr_key);
    snprintf(path, sizeof(path), "%s[%zu].pk", array_path, i);
    if (!json_object_is_type(pk, json_type_string) ||
        sw_pk_from_hex(&out->pk, json_object_get_string(pk), "pk", &kerr))
        return sw_config_field_error(cfg, path, err, "must be a public key (64 hex characters)");
    snprintf(path, sizeof(path), "%s[%zu].%s", array_path, i, addr_key);
    if (!json_object_is_type(addr, json_type_string) ||
        json_object_get_string_len(addr) >= VISOR_ADDR_MAX ||
        sw_hostport_parse(json_object_get_string(addr), 0, NULL, 0, NULL))
        return sw_config_field_error(cfg, path, err, "must be host:port");
    snprintf(out->addr, sizeof(out->addr), "%s", json_object_get_string(addr));
    return SW_OK;
}

static int load_messaging(const struct sw_config *cfg, struct visor_config *c, struct sw_error *err)
{
    struct json_object *arr;
    uint64_t sessions = 2;
    int rc;

    if ((rc = check_object(cfg, "messaging", false, err)) ||
        (rc = get_url(cfg, "messaging.discovery", false, c->msg_discovery, err)) ||
        (rc = sw_config_uint(cfg, "messaging.sessions", false, 1, 16, &sessions, err)) ||
        (rc = get_array(cfg, "messaging.servers", VISOR_MSG_SERVERS_MAX, &arr, err)))
        return rc;
    c->msg_sessions = (unsigned)sessions;
    for (size_t i = 0; arr && i < json_object_array_length(arr); i++) {
        rc = load_pk_addr(cfg, json_object_array_get_idx(arr, i), "messaging.servers", i, "address",
                          &c->msg_servers[i], err);
        if (rc)
            return rc;
        c->n_msg_servers = i + 1;
    }
    return SW_OK;
}

/* "hypervisors": [{"pk","addr"}] — hypervisors this visor connects out to (hvlink.c). */
static int load_hypervisors(const struct sw_config *cfg, struct visor_config *c, struct sw_error *err)
{
    struct json_object *arr;
    int rc = get_array(cfg, "hypervisors", VISOR_HYPERVISORS_MAX, &arr, err);

    for (size_t i = 0; rc == SW_OK && arr && i < json_object_array_length(arr); i++) {
        rc = load_pk_addr(cfg, json_object_array_get_idx(arr, i), "hypervisors", i, "addr",
                          &c->hypervisors[i], err);
        if (rc == SW_OK)
            c->n_hypervisors = i + 1;
    }
    return rc;
}

static int load_routing(const struct sw_config *cfg, struct visor_config *c, struct sw_error *err)
{
    struct json_object *arr, *v;
    struct sw_error kerr;
    char path[64];
    int rc;

    if ((rc = check_object(cfg, "routing", false, err)) ||
        (rc = get_url(cfg, "routing.route_finder", false, c->route_finder, err)) ||
        (rc = get_array(cfg, "routing.setup_nodes", VISOR_SETUP_NODES_MAX, &arr, err)))
        return rc;
    for (size_t i = 0; arr && i < json_object_array_length(arr); i++) {
        v = json_object_array_get_idx(arr, i);
        snprintf(path, sizeof(path), "routing.setup_nodes[%zu]", i);
        if (!json_object_is_type(v, json_type_string) ||
            sw_pk_from_hex(&c->setup_nodes[i], json_object_get_string(v), "pk", &kerr))
            return sw_config_field_error(cfg, path, err, "not a valid public key (64 hex characters)");
        c->n_setup_nodes = i + 1;
    }
    return SW_OK;
}

static int load_pk_table(const struct sw_config *cfg, struct visor_config *c, struct sw_error *err)
{
    struct json_object *tbl = sw_config_node(cfg, "stcp.pk_table");
    struct sw_error kerr;
    char path[128];
    size_t n = 0;
    int rc;

    if (!tbl)
        return SW_OK;
    if (!json_object_is_type(tbl, json_type_object))
        return sw_config_field_error(cfg, "stcp.pk_table", err, "must be an object {\"<pk>\":\"host:port\"}");
    if ((size_t)json_object_object_length(tbl) > VISOR_PK_TABLE_MAX)
        return sw_config_field_error(cfg, "stcp.pk_table", err, "holds more than %d entries",
                                     VISOR_PK_TABLE_MAX);
    c->pk_table = calloc((size_t)json_object_object_length(tbl) + 1, sizeof(*c->pk_table));
    if (!c->pk_table)
        return sw_error_set(err, SW_ENOMEM, "out of memory");
    json_object_object_foreach(tbl, key, val) {
        (void)val;
        snprintf(path, sizeof(path), "stcp.pk_table.%.64s", key);
        if (sw_pk_from_hex(&c->pk_table[n].pk, key, "key", &kerr))
            return sw_config_field_error(cfg, path, err, "the key is not a valid public key");
        if ((rc = get_hostport(cfg, path, 0, c->pk_table[n].addr, err)))
            return rc;
        if (!c->pk_table[n].addr[0])
            return sw_config_field_error(cfg, path, err, "must be host:port");
        c->n_pk_table = ++n;
    }
    return SW_OK;
}

static int load_stcp(const struct sw_config *cfg, struct visor_config *c, struct sw_error *err)
{
    const char *listen = NULL;
    int rc;

    snprintf(c->stcp_listen, sizeof(c->stcp_listen), "%s", VISOR_DEFAULT_STCP);
    if ((rc = check_object(cfg, "stcp", false, err)) ||
        (rc = sw_config_string(cfg, "stcp.listen", false, &listen, err)))
        return rc;
    if (listen && !*listen)
        c->stcp_listen[0] = '\0'; /* "" turns the listener off */
    else if ((rc = get_hostport(cfg, "stcp.listen", SW_HOSTPORT_LISTEN, c->stcp_listen, err)))
        return rc;
    return load_pk_table(cfg, c, err);
}

static bool app_name_ok(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++) {
        if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_' && *s != '.')
            return false;
    }
    return true;
}

static int load_app_args(const struct sw_config *cfg, struct json_object *arr, size_t i,
                         struct visor_app_config *a, struct sw_error *err)
{
    char path[64];
    struct json_object *v;

    snprintf(path, sizeof(path), "apps[%zu].args", i);
    if (!arr)
        return SW_OK;
    if (!json_object_is_type(arr, json_type_array) || json_object_array_length(arr) > VISOR_APP_ARGS_MAX)
        return sw_config_field_error(cfg, path, err, "must be an array of at most %d strings",
                                     VISOR_APP_ARGS_MAX);
    for (size_t j = 0; j < json_object_array_length(arr); j++) {
        v = json_object_array_get_idx(arr, j);
        snprintf(path, sizeof(path), "apps[%zu].args[%zu]", i, j);
        if (!json_object_is_type(v, json_type_string) ||
            json_object_get_string_len(v) >= VISOR_APP_ARG_MAX ||
            strlen(json_object_get_string(v)) != (size_t)json_object_get_string_len(v))
            return sw_config_field_error(cfg, path, err, "must be a string of at most %d bytes",
                                         VISOR_APP_ARG_MAX - 1);
        snprintf(a->args[j], sizeof(a->args[j]), "%s", json_object_get_string(v));
        a->n_args = j + 1;
    }
    return SW_OK;
}

static int load_app(const struct sw_config *cfg, struct json_object *o, size_t i,
                    struct visor_app_config *a, struct sw_error *err)
{
    struct json_object *name, *ver, *autos, *port;
    char path[64];

    snprintf(path, sizeof(path), "apps[%zu]", i);
    if (!json_object_is_type(o, json_type_object))
        return sw_config_field_error(cfg, path, err, "must be an object");
    name = json_object_object_get(o, "app");
    ver = json_object_object_get(o, "version");
    autos = json_object_object_get(o, "auto_start");
    port = json_object_object_get(o, "port");
    snprintf(path, sizeof(path), "apps[%zu].app", i);
    if (!json_object_is_type(name, json_type_string) ||
        json_object_get_string_len(name) >= VISOR_APP_NAME_MAX || !app_name_ok(json_object_get_string(name)))
        return sw_config_field_error(cfg, path, err, "must be an app name (letters, digits, - _ .)");
    snprintf(a->name, sizeof(a->name), "%s", json_object_get_string(name));
    snprintf(path, sizeof(path), "apps[%zu].version", i);
    if (ver && (!json_object_is_type(ver, json_type_string) || json_object_get_string_len(ver) >= 32))
        return sw_config_field_error(cfg, path, err, "must be a string of at most 31 characters");
    snprintf(a->version, sizeof(a->version), "%s", ver ? json_object_get_string(ver) : "");
    snprintf(path, sizeof(path), "apps[%zu].auto_start", i);
    if (autos && !json_object_is_type(autos, json_type_boolean))
        return sw_config_field_error(cfg, path, err, "must be true or false");
    a->auto_start = autos && json_object_get_boolean(autos);
    snprintf(path, sizeof(path), "apps[%zu].port", i);
    if (!json_object_is_type(port, json_type_int) || json_object_get_int64(port) < 1 ||
        json_object_get_int64(port) > 65535)
        return sw_config_field_error(cfg, path, err, "must be an integer between 1 and 65535");
    a->port = (uint16_t)json_object_get_int64(port);
    return load_app_args(cfg, json_object_object_get(o, "args"), i, a, err);
}

static int load_apps(const struct sw_config *cfg, struct visor_config *c, struct sw_error *err)
{
    struct json_object *arr;
    char path[64];
    int rc = get_array(cfg, "apps", VISOR_APPS_MAX, &arr, err);

    if (rc || !arr || json_object_array_length(arr) == 0)
        return rc;
    c->apps = calloc(json_object_array_length(arr), sizeof(*c->apps));
    if (!c->apps)
        return sw_error_set(err, SW_ENOMEM, "out of memory");
    for (size_t i = 0; i < json_object_array_length(arr); i++) {
        if ((rc = load_app(cfg, json_object_array_get_idx(arr, i), i, &c->apps[i], err)))
            return rc;
        for (size_t j = 0; j < i; j++) {
            snprintf(path, sizeof(path), "apps[%zu].port", i);
            if (c->apps[j].port == c->apps[i].port)
                return sw_config_field_error(cfg, path, err, "port %u is already used by apps[%zu]",
                                             c->apps[i].port, j);
        }
        c->n_apps = i + 1;
    }
    return SW_OK;
}

/* api.allowed_hosts: up to VISOR_API_HOSTS_MAX names (the HTTP layer compares them without
 * case, IPv6 by value). */
static int load_api_hosts(const struct sw_config *cfg, struct visor_config *c, struct sw_error *err)
{
    struct json_object *arr, *h;
    char path[64];
    int rc = get_array(cfg, "api.allowed_hosts", VISOR_API_HOSTS_MAX, &arr, err);

    for (size_t i = 0; rc == SW_OK && arr && i < json_object_array_length(arr); i++) {
        h = json_object_array_get_idx(arr, i);
        snprintf(path, sizeof(path), "api.allowed_hosts[%zu]", i);
        if (!json_object_is_type(h, json_type_string) || json_object_get_string_len(h) >= VISOR_HOST_NAME_MAX ||
            !sw_http_host_valid(json_object_get_string(h)))
            return sw_config_field_error(cfg, path, err,
                                         "must be a host name (letters, digits, '-', '.') or an IP "
                                         "address, without port or scheme");
        snprintf(c->api_allowed_hosts[i], VISOR_HOST_NAME_MAX, "%s", json_object_get_string(h));
        c->n_api_allowed_hosts = i + 1;
    }
    return rc;
}

/* "network": {"public_key", "certificate_file", "revocations", "revocations_refresh_ms"};
 * absent or an empty public_key is an open network. Runs after transport.discovery (the
 * default revocation source). */
static int load_network(const struct sw_config *cfg, struct visor_config *c, struct sw_error *err)
{
    const char *pk = NULL, *rev = NULL;
    struct sw_pk key;
    uint64_t refresh = VISOR_DEFAULT_NET_REFRESH_MS;
    int rc;

    c->net_refresh_ms = VISOR_DEFAULT_NET_REFRESH_MS;
    if ((rc = check_object(cfg, "network", false, err)) ||
        (rc = sw_config_string(cfg, "network.public_key", false, &pk, err)))
        return rc;
    if (!pk || !*pk)
        return SW_OK;
    if ((rc = sw_config_pk(cfg, "network.public_key", true, &key, err)))
        return rc;
    sw_pk_to_hex(&key, c->net_pk);
    if ((rc = get_str(cfg, "network.certificate_file", true, c->net_cert_file,
                      sizeof(c->net_cert_file), err)) ||
        (rc = sw_config_string(cfg, "network.revocations", false, &rev, err)) ||
        (rc = sw_config_uint(cfg, "network.revocations_refresh_ms", false, 100, 600000, &refresh, err)))
        return rc;
    if (!c->net_cert_file[0])
        return sw_config_field_error(cfg, "network.certificate_file", err,
                                     "must name this visor's certificate (skywire-cli net sign)");
    if (rev && strlen(rev) >= sizeof(c->net_revocations))
        return sw_config_field_error(cfg, "network.revocations", err, "longer than %zu characters",
                                     sizeof(c->net_revocations) - 1);
    snprintf(c->net_revocations, sizeof(c->net_revocations), "%s", rev ? rev : c->tpd_url);
    c->net_refresh_ms = (unsigned)refresh;
    return SW_OK;
}

static int load_misc(const struct sw_config *cfg, struct visor_config *c, struct sw_error *err)
{
    const char *lvl = NULL;
    int rc;

    snprintf(c->api_listen, sizeof(c->api_listen), "%s", VISOR_DEFAULT_API);
    snprintf(c->data_dir, sizeof(c->data_dir), "%s", VISOR_DEFAULT_DATA_DIR);
    c->log_level = SW_LOG_INFO;
    if ((rc = check_object(cfg, "api", false, err)) ||
        (rc = get_hostport(cfg, "api.listen", SW_HOSTPORT_LISTEN, c->api_listen, err)) ||
        (rc = load_api_hosts(cfg, c, err)) ||
        (rc = sw_config_string(cfg, "log_level", false, &lvl, err)) ||
        (rc = get_str(cfg, "data_dir", false, c->data_dir, sizeof(c->data_dir), err)))
        return rc;
    if (lvl && sw_log_parse_level(lvl, &c->log_level))
        return sw_config_field_error(cfg, "log_level", err, "must be debug, info, warn or error");
    if (!c->data_dir[0])
        return sw_config_field_error(cfg, "data_dir", err, "must not be empty");
    return SW_OK;
}

static int load_all(const struct sw_config *cfg, struct visor_config *c, struct sw_error *err)
{
    int rc;
    if ((rc = get_str(cfg, "version", true, c->version, sizeof(c->version), err)) ||
        (rc = load_keys(cfg, c, err)) ||
        (rc = load_messaging(cfg, c, err)) ||
        (rc = check_object(cfg, "transport", true, err)) ||
        (rc = get_url(cfg, "transport.discovery", true, c->tpd_url, err)) ||
        (rc = load_routing(cfg, c, err)) ||
        (rc = load_stcp(cfg, c, err)) ||
        (rc = load_apps(cfg, c, err)) ||
        (rc = load_hypervisors(cfg, c, err)) ||
        (rc = load_network(cfg, c, err)))
        return rc;
    return load_misc(cfg, c, err);
}

int visor_config_load_string(struct visor_config *c, const char *name, const char *text,
                             size_t len, struct sw_error *err)
{
    struct sw_config cfg;
    int rc;

    memset(c, 0, sizeof(*c));
    snprintf(c->path, sizeof(c->path), "%s", name);
    if ((rc = sw_config_load_string(&cfg, name, text, len, err)))
        return rc;
    rc = load_all(&cfg, c, err);
    sw_config_free(&cfg);
    if (rc)
        visor_config_free(c);
    return rc;
}

int visor_config_load(struct visor_config *c, const char *path, struct sw_error *err)
{
    struct sw_config cfg;
    int rc;

    memset(c, 0, sizeof(*c));
    snprintf(c->path, sizeof(c->path), "%s", path);
    if ((rc = sw_config_load_file(&cfg, path, err)))
        return rc;
    rc = load_all(&cfg, c, err);
    sw_config_free(&cfg);
    if (rc)
        visor_config_free(c);
    return rc;
}

void visor_config_free(struct visor_config *c)
{
    free(c->pk_table);
    free(c->apps);
    c->pk_table = NULL;
    c->apps = NULL;
    c->n_pk_table = c->n_apps = 0;
    sw_keypair_wipe(&c->kp);
}

const char *visor_config_pk_addr(const struct visor_config *c, const struct sw_pk *pk)
{
    for (size_t i = 0; i < c->n_pk_table; i++) {
        if (sw_pk_equal(&c->pk_table[i].pk, pk))
            return c->pk_table[i].addr;
    }
    return NULL;
}

/* ---- the local API: its URL and its token --------------------------------------------- */

static bool wildcard_host(const char *host)
{
    return !*host || strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0;
}

void visor_config_api_listen_host(const struct visor_config *c, char *out, size_t cap)
{
    char host[VISOR_ADDR_MAX];

    if (sw_hostport_parse(c->api_listen, SW_HOSTPORT_LISTEN, host, sizeof(host), NULL) || wildcard_host(host))
        host[0] = '\0';
    snprintf(out, cap, "%s", host);
}

int visor_config_api_url(const struct visor_config *c, char *out, size_t cap)
{
    char host[VISOR_ADDR_MAX];
    uint16_t port;
    int n;

    if (sw_hostport_parse(c->api_listen, SW_HOSTPORT_LISTEN, host, sizeof(host), &port))
        return SW_EINVAL; /* cannot happen after visor_config_load */
    if (wildcard_host(host)) /* listening everywhere: loopback is one of them */
        snprintf(host, sizeof(host), "%s", strcmp(host, "::") == 0 ? "::1" : "127.0.0.1");
    n = snprintf(out, cap, strchr(host, ':') ? "http://[%s]:%u" : "http://%s:%u", host, port);
    return n < 0 || (size_t)n >= cap ? SW_ERANGE : SW_OK;
}

/* An open token file must be a regular file; with private_only also ours and private. */
static int check_file(int fd, const char *path, bool private_only, struct sw_error *err)
{
    struct stat st;

    if (fstat(fd, &st) != 0)
        return sw_error_set(err, SW_EIO, "%s: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return sw_error_set(err, SW_EPERM, "%s is not a regular file", path);
    if (!private_only)
        return SW_OK;
    if (st.st_uid != geteuid())
        return sw_error_set(err, SW_EPERM, "%s belongs to uid %u, not to this user (uid %u)", path,
                            (unsigned)st.st_uid, (unsigned)geteuid());
    if (st.st_mode & 077)
        return sw_error_set(err, SW_EPERM,
                            "%s is open to other users (mode %03o), so the token may have leaked: "
                            "delete it (the visor makes a new one at start) or chmod 600 it",
                            path, (unsigned)(st.st_mode & 0777));
    return SW_OK;
}

/* 64 lowercase hex characters and an optional newline. */
static bool token_text_ok(const char *buf, size_t n)
{
    if (n == VISOR_API_TOKEN_HEX + 1 && buf[VISOR_API_TOKEN_HEX] == '\n')
        n--;
    if (n != VISOR_API_TOKEN_HEX)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)buf[i]) && (buf[i] < 'a' || buf[i] > 'f'))
            return false;
    }
    return true;
}

int visor_api_token_read(const char *path, bool private_only, char out[VISOR_API_TOKEN_HEX + 1],
                         struct sw_error *err)
{
    char buf[VISOR_API_TOKEN_HEX + 2];
    ssize_t n = 0, got;
    /* O_NONBLOCK: opening a FIFO put in its place must not hang (it is refused below) */
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK), rc = SW_OK;

    if (fd < 0) {
        if (errno == ENOENT)
            return sw_error_set(err, SW_ENOTFOUND, "%s does not exist", path);
        if (errno == ELOOP)
            return sw_error_set(err, SW_EPERM, "%s is a symbolic link; refusing it", path);
        return sw_error_set(err, errno == EACCES ? SW_EPERM : SW_EIO, "cannot read %s: %s", path,
                            strerror(errno));
    }
    if ((rc = check_file(fd, path, private_only, err)))
        goto out;
    while ((size_t)n < sizeof(buf)) {
        got = read(fd, buf + n, sizeof(buf) - (size_t)n);
        if (got == 0)
            break;
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            rc = sw_error_set(err, SW_EIO, "cannot read %s: %s", path, strerror(errno));
            goto out;
        }
        n += got;
    }
    if (!token_text_ok(buf, (size_t)n)) {
        rc = sw_error_set(err, SW_EINVAL,
                          "%s is not an API token (64 hex characters); delete it and restart the "
                          "visor to make a new one", path);
        goto out;
    }
    memcpy(out, buf, VISOR_API_TOKEN_HEX);
    out[VISOR_API_TOKEN_HEX] = '\0';
out:
    sodium_memzero(buf, sizeof(buf));
    close(fd);
    return rc;
}

/* ---- generation -------------------------------------------------------------------- */

static struct json_object *jstr(const char *s) { return json_object_new_string(s); }

/* "PK<sep>HOST:PORT" split into a checked key and address. */
static int split_pk_addr(const char *s, char sep, const char *opt, char pk_hex[SW_PK_HEX_LEN + 1],
                         const char **addr, struct sw_error *err)
{
    const char *p = strchr(s, sep);
    struct sw_pk pk;
    struct sw_error kerr;

    if (!p || p - s != SW_PK_HEX_LEN)
        return sw_error_set(err, SW_EINVAL, "%s '%s': must be PK%cHOST:PORT", opt, s, sep);
    memcpy(pk_hex, s, SW_PK_HEX_LEN);
    pk_hex[SW_PK_HEX_LEN] = '\0';
    if (sw_pk_from_hex(&pk, pk_hex, opt, &kerr))
        return sw_error_set(err, SW_EINVAL, "%s '%s': not a valid public key", opt, s);
    if (sw_hostport_parse(p + 1, 0, NULL, 0, NULL) || strlen(p + 1) >= VISOR_ADDR_MAX)
        return sw_error_set(err, SW_EINVAL, "%s '%s': the address must be host:port", opt, s);
    *addr = p + 1;
    return SW_OK;
}

static int gen_messaging(const struct visor_gen_opts *o, struct json_object *root, struct sw_error *err)
{
    struct json_object *m = json_object_new_object(), *servers = json_object_new_array(), *s;
    char pk_hex[SW_PK_HEX_LEN + 1];
    const char *addr;
    int rc = SW_OK;

    json_object_object_add(root, "messaging", m);
    if (!o->mdisc || *o->mdisc) /* --mdisc "" leaves dmsg off */
        json_object_object_add(m, "discovery", jstr(o->mdisc ? o->mdisc : VISOR_DEFAULT_MDISC));
    json_object_object_add(m, "sessions", json_object_new_int(o->sessions ? (int)o->sessions : 2));
    json_object_object_add(m, "servers", servers);
    for (size_t i = 0; i < o->n_msg_servers && rc == SW_OK; i++) {
        if ((rc = split_pk_addr(o->msg_servers[i], '@', "--msg-server", pk_hex, &addr, err)))
            break;
        s = json_object_new_object();
        json_object_object_add(s, "pk", jstr(pk_hex));
        json_object_object_add(s, "address", jstr(addr));
        json_object_array_add(servers, s);
    }
    return rc;
}

static int gen_routing(const struct visor_gen_opts *o, struct json_object *root, struct sw_error *err)
{
    struct json_object *r = json_object_new_object(), *nodes = json_object_new_array();
    struct sw_pk pk;
    struct sw_error kerr;

    json_object_object_add(root, "routing", r);
    json_object_object_add(r, "route_finder", jstr(o->route_finder ? o->route_finder : VISOR_DEFAULT_RF));
    json_object_object_add(r, "setup_nodes", nodes);
    for (size_t i = 0; i < o->n_setup_nodes; i++) {
        if (sw_pk_from_hex(&pk, o->setup_nodes[i], "--setup-node", &kerr))
            return sw_error_set(err, SW_EINVAL, "--setup-node '%s': not a valid public key",
                                o->setup_nodes[i]);
        json_object_array_add(nodes, sw_json_pk(&pk));
    }
    return SW_OK;
}

static int gen_stcp(const struct visor_gen_opts *o, struct json_object *root, struct sw_error *err)
{
    struct json_object *s = json_object_new_object(), *tbl = json_object_new_object();
    char pk_hex[SW_PK_HEX_LEN + 1];
    const char *addr;
    int rc;

    json_object_object_add(root, "stcp", s);
    json_object_object_add(s, "listen", jstr(o->stcp ? o->stcp : VISOR_DEFAULT_STCP));
    json_object_object_add(s, "pk_table", tbl);
    for (size_t i = 0; i < o->n_pk_table; i++) {
        if ((rc = split_pk_addr(o->pk_table[i], '=', "--pk-table", pk_hex, &addr, err)))
            return rc;
        json_object_object_add(tbl, pk_hex, jstr(addr));
    }
    return SW_OK;
}

static struct json_object *gen_app(const char *name, uint16_t port, bool auto_start,
                                   const char *const args[])
{
    struct json_object *a = json_object_new_object(), *arr = json_object_new_array();

    json_object_object_add(a, "app", jstr(name));
    json_object_object_add(a, "auto_start", json_object_new_boolean(auto_start));
    json_object_object_add(a, "port", json_object_new_int(port));
    for (size_t i = 0; args && args[i]; i++)
        json_object_array_add(arr, jstr(args[i]));
    json_object_object_add(a, "args", arr);
    return a;
}

static int gen_key_arg(const char *hex, const char *opt, struct json_object *args,
                       struct sw_error *err)
{
    struct sw_error kerr = { 0 };
    struct sw_pk pk;

    if (sw_pk_from_hex(&pk, hex, opt, &kerr))
        return sw_error_set(err, SW_EINVAL, "%s '%s': not a valid public key", opt, hex);
    json_object_array_add(args, sw_json_pk(&pk));
    return SW_OK;
}

/* The default apps (docs/visor.md "Apps"): skychat on port 1, SSH 2, socksproxy 3,
 * SSH-client 12, socksproxy-client 13. */
static int gen_apps(const struct visor_gen_opts *o, struct json_object *root, struct sw_error *err)
{
    struct json_object *apps = json_object_new_array(), *ssh, *socks_client, *args;
    const char *data_dir = o->data_dir ? o->data_dir : VISOR_DEFAULT_DATA_DIR;
    const char *socks_addr = o->socks_addr ? o->socks_addr : VISOR_DEFAULT_SOCKS_ADDR;
    char auth[sizeof(((struct visor_config *)0)->data_dir) + 32];
    int rc;

    json_object_object_add(root, "apps", apps);
    if (o->no_apps)
        return SW_OK;
    json_object_array_add(apps, gen_app("skychat", 1, true, (const char *[]){
        "-addr", o->skychat_addr ? o->skychat_addr : VISOR_DEFAULT_SKYCHAT_ADDR, NULL }));
    snprintf(auth, sizeof(auth), "%s/ssh_authorized_keys", data_dir);
    json_object_array_add(apps, ssh = gen_app("SSH", 2, true, (const char *[]){ "-auth", auth, NULL }));
    args = json_object_object_get(ssh, "args");
    for (size_t i = 0; i < o->n_ssh_allow; i++) {
        json_object_array_add(args, jstr("-allow"));
        if ((rc = gen_key_arg(o->ssh_allow[i], "--ssh-allow", args, err)))
            return rc;
    }
    json_object_array_add(apps, gen_app("socksproxy", 3, true, NULL));
    json_object_array_add(apps, gen_app("SSH-client", 12, true, NULL));
    socks_client = gen_app("socksproxy-client", 13, o->socks_srv != NULL,
                           (const char *[]){ "-addr", socks_addr, NULL });
    json_object_array_add(apps, socks_client);
    if (o->socks_srv) {
        args = json_object_object_get(socks_client, "args");
        json_object_array_add(args, jstr("-srv"));
        if ((rc = gen_key_arg(o->socks_srv, "--socks-srv", args, err)))
            return rc;
    }
    return SW_OK;
}

static int gen_hypervisors(const struct visor_gen_opts *o, struct json_object *root,
                           struct sw_error *err)
{
    struct json_object *arr = json_object_new_array(), *h;
    char pk_hex[SW_PK_HEX_LEN + 1];
    const char *addr;
    int rc;

    json_object_object_add(root, "hypervisors", arr);
    if (o->n_hypervisors > VISOR_HYPERVISORS_MAX)
        return sw_error_set(err, SW_EINVAL, "at most %d --hypervisor options", VISOR_HYPERVISORS_MAX);
    for (size_t i = 0; i < o->n_hypervisors; i++) {
        if ((rc = split_pk_addr(o->hypervisors[i], '@', "--hypervisor", pk_hex, &addr, err)))
            return rc;
        h = json_object_new_object();
        json_object_object_add(h, "pk", jstr(pk_hex));
        json_object_object_add(h, "addr", jstr(addr));
        json_object_array_add(arr, h);
    }
    return SW_OK;
}

/* "network" only for a private network: --network needs --cert-file, and the others need
 * --network. */
static int gen_network(const struct visor_gen_opts *o, struct json_object *root, struct sw_error *err)
{
    struct json_object *n;
    struct sw_pk pk;
    struct sw_error kerr = { 0 };

    if (!o->network || !*o->network) {
        if (o->cert_file || o->revocations)
            return sw_error_set(err, SW_EINVAL, "--cert-file and --revocations need --network PK");
        return SW_OK;
    }
    if (sw_pk_from_hex(&pk, o->network, "--network", &kerr))
        return sw_error_set(err, SW_EINVAL, "--network '%s': not a valid public key", o->network);
    if (!o->cert_file || !*o->cert_file)
        return sw_error_set(err, SW_EINVAL,
                            "--network needs --cert-file FILE (where this visor's certificate will be)");
    n = json_object_new_object();
    json_object_object_add(n, "public_key", sw_json_pk(&pk));
    json_object_object_add(n, "certificate_file", jstr(o->cert_file));
    if (o->revocations)
        json_object_object_add(n, "revocations", jstr(o->revocations));
    json_object_object_add(root, "network", n);
    return SW_OK;
}

static void gen_keys(const struct sw_keypair *kp, struct json_object *root)
{
    struct json_object *k = json_object_new_object();
    char sk_hex[SW_SK_LEN * 2 + 1];

    sw_hex_encode(sk_hex, sizeof(sk_hex), kp->sk, SW_SK_LEN);
    json_object_object_add(k, "public_key", sw_json_pk(&kp->pk));
    json_object_object_add(k, "secret_key", jstr(sk_hex));
    json_object_object_add(root, "keys", k);
    sodium_memzero(sk_hex, sizeof(sk_hex));
}

int visor_config_generate(const struct visor_gen_opts *o, const struct sw_keypair *kp,
                          struct json_object **out, struct sw_error *err)
{
    struct json_object *root = json_object_new_object(), *t, *api;
    struct visor_config check;
    const char *text;
    int rc;

    json_object_object_add(root, "version", jstr("0.1.0"));
    gen_keys(kp, root);
    if ((rc = gen_messaging(o, root, err)))
        goto fail;
    t = json_object_new_object();
    json_object_object_add(t, "discovery", jstr(o->tpd ? o->tpd : VISOR_DEFAULT_TPD));
    json_object_object_add(root, "transport", t);
    if ((rc = gen_routing(o, root, err)) || (rc = gen_stcp(o, root, err)) ||
        (rc = gen_apps(o, root, err)) || (rc = gen_hypervisors(o, root, err)) ||
        (rc = gen_network(o, root, err)))
        goto fail;
    api = json_object_new_object();
    json_object_object_add(api, "listen", jstr(o->api ? o->api : VISOR_DEFAULT_API));
    json_object_object_add(root, "api", api);
    json_object_object_add(root, "log_level", jstr(o->log_level ? o->log_level : "info"));
    json_object_object_add(root, "data_dir", jstr(o->data_dir ? o->data_dir : VISOR_DEFAULT_DATA_DIR));
    /* the options may hold anything: what we write must be what the visor accepts */
    text = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN);
    if ((rc = visor_config_load_string(&check, "generated config", text, strlen(text), err)))
        goto fail;
    visor_config_free(&check);
    *out = root;
    return SW_OK;
fail:
    json_object_put(root);
    return rc;
}
