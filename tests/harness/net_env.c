/* net_env.c — see net_env.h. */
#include "tests/harness/net_env.h"

#include "common/json.h"
#include "tests/harness/api_client.h"
#include "tests/harness/harness.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One request without assertions: the status (-1 when it did not go through) and the parsed
 * reply in *out when asked (NULL when not JSON). */
static long net_call(struct th_net *n, const char *base, const char *method, const char *target,
                     const char *body, struct json_object **out)
{
    struct sw_http_result res = { 0 };
    struct sw_error err = { 0 };
    char url[1024];
    long st;

    if (out)
        *out = NULL;
    snprintf(url, sizeof(url), "%s%s", base, target);
    if (sw_http_do(n->http, method, url, th_api_headers(base), body, body ? strlen(body) : 0, &res, &err))
        return -1;
    st = res.status;
    if (out && sw_json_parse(res.body, res.body_len, out, NULL))
        *out = NULL;
    sw_http_result_free(&res);
    return st;
}

static const char *net_log(const struct th_net *n, const char *service)
{
    char name[128];
    snprintf(name, sizeof(name), "%s-%s.log", n->name, service);
    return th_log_path(name);
}

static const char *net_db(const struct th_net *n, const char *suffix)
{
    char prefix[96];
    snprintf(prefix, sizeof(prefix), "%s_%s", n->db_prefix ? n->db_prefix : n->name, suffix);
    return th_fresh_db(prefix);
}

/* ---- private networks ------------------------------------------------------------------- */

int th_net_member_cert(const struct th_net *n, const struct sw_pk *pk, unsigned role, const char *name,
                       const char *groups, int64_t ttl_s, const char *path, char *hex)
{
    return th_network_cert_ex(&n->network, pk, role, name, groups, TH_CERT_FROM_AUTO, ttl_s, path, hex, NULL,
                              NULL);
}

int th_net_member_revoke(struct th_net *n, const struct sw_pk *keys, size_t count)
{
    char *hex = NULL, *body = NULL;
    long st;
    int rc = -1;

    if (th_network_revoke(&n->network, keys, count, n->revocations, &hex))
        return -1;
    if (n->td_pid > 0 && n->http) { /* published by the transport discovery as an operator would */
        if (!(body = malloc(strlen(hex) + 16)))
            goto out;
        sprintf(body, "{\"list\":\"%s\"}", hex);
        st = net_call(n, n->td_base, "PUT", "/network/revocations", body, NULL);
        if (st != 200) {
            fprintf(stderr, "net_env: PUT /network/revocations: HTTP %ld\n", st);
            goto out;
        }
    }
    rc = 0;
out:
    free(body);
    free(hex);
    return rc;
}

/* A service's private-network options after argv[*k] (nothing in an open network). role 0:
 * no certificate (the service has no key). */
static void private_args(struct th_net *n, const char **argv, size_t *k, const char *service, unsigned role,
                         const struct sw_pk *pk, bool revocations, char *cert_path, size_t cap,
                         char *refresh, size_t refresh_cap)
{
    if (!n->private_net)
        return;
    argv[(*k)++] = "--network";
    argv[(*k)++] = n->network.pk_hex;
    if (role) {
        snprintf(cert_path, cap, "%s/%s.cert", n->dir, service);
        if (th_net_member_cert(n, pk, role, service, "", 86400, cert_path, NULL) == 0) {
            argv[(*k)++] = "--cert-file";
            argv[(*k)++] = cert_path;
        }
    }
    if (revocations) {
        snprintf(refresh, refresh_cap, "%u", n->refresh_ms ? n->refresh_ms : 1000);
        argv[(*k)++] = "--revocations";
        argv[(*k)++] = n->revocations;
        argv[(*k)++] = "--revocations-refresh-ms";
        argv[(*k)++] = refresh;
    }
}

/* A service taking --addr and --db; base gets its URL. */
static pid_t start_db_service(struct th_net *n, const char *bin, const char *db_suffix, char *base,
                              size_t cap, char *db_out, size_t db_cap)
{
    char db[256], addr[32], path[512];
    uint16_t port = th_free_port();
    snprintf(db, sizeof(db), "%s", net_db(n, db_suffix));
    if (db_out)
        snprintf(db_out, db_cap, "%s", db);
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", port);
    snprintf(base, cap, "http://%s", addr);
    snprintf(path, sizeof(path), "%s", th_bin(bin));
    const char *argv[16] = { path, "--addr", addr, "--db", db };
    size_t k = 5;
    char refresh[16];
    /* the transport discovery is where revocations are published: it reads no list itself */
    private_args(n, argv, &k, bin, 0, NULL, strcmp(bin, "transport-discovery") != 0, NULL, 0, refresh,
                 sizeof(refresh));
    argv[k] = NULL;
    return th_start_service(argv, port, net_log(n, bin));
}

static pid_t start_rf(struct th_net *n)
{
    char addr[32], path[512];
    uint16_t port = th_free_port();
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", port);
    snprintf(n->rf_base, sizeof(n->rf_base), "http://%s", addr);
    snprintf(path, sizeof(path), "%s", th_bin("route-finder"));
    const char *argv[16] = { path, "--addr", addr, "--db", n->td_db, "--threads",
                             n->rf_threads ? n->rf_threads : "4" };
    size_t k = 7;
    char refresh[16];
    /* its revocation list: the transport discovery's, in the database (th_net_member_revoke
     * publishes each list there too) */
    private_args(n, argv, &k, "route-finder", 0, NULL, false, NULL, 0, refresh, sizeof(refresh));
    argv[k] = NULL;
    return th_start_service(argv, port, net_log(n, "route-finder"));
}

/* The messaging server, then up to 10 s until the discovery lists it. */
static pid_t start_messaging_server(struct th_net *n)
{
    char addr[32], http_addr[32], key[512], bin[512], cert[512], refresh[16];
    uint16_t port = th_free_port(), hport = th_free_port();
    struct sw_keypair kp;
    struct sw_error err = { 0 };
    size_t k = 9;
    pid_t pid;

    snprintf(addr, sizeof(addr), "127.0.0.1:%u", port);
    snprintf(http_addr, sizeof(http_addr), "127.0.0.1:%u", hport);
    snprintf(key, sizeof(key), "%s/messaging-server.key", n->dir);
    snprintf(bin, sizeof(bin), "%s", th_bin("messaging-server"));
    const char *argv[20] = { bin, "--addr", addr, "--http-addr", http_addr, "--key-file", key,
                             "--discovery", n->md_base };
    if (n->private_net) { /* its key first, to sign it */
        sw_keypair_generate(&kp);
        if (sw_keyfile_save(key, &kp, &err) != SW_OK) {
            fprintf(stderr, "net_env: messaging server key %s: %s\n", key, err.msg);
            return -1;
        }
        private_args(n, argv, &k, "messaging-server", SW_ROLE_MESSAGING_SERVER, &kp.pk, true, cert,
                     sizeof(cert), refresh, sizeof(refresh));
        sw_keypair_wipe(&kp);
    }
    argv[k] = NULL;
    pid = th_start_service(argv, hport, net_log(n, "messaging-server"));
    if (pid < 0)
        return pid;
    n->ms_pid = pid;
    for (int i = 0; i < 100; i++) {
        struct json_object *o = NULL;
        long st = net_call(n, n->md_base, "GET", "/messaging-discovery/available_servers", NULL, &o);
        bool ok = st == 200 && json_object_array_length(o) > 0;
        json_object_put(o);
        if (ok)
            return pid;
        th_sleep_ms(100);
    }
    return -1;
}

static pid_t start_sn(struct th_net *n)
{
    char addr[32], path[512], db[256], key[512], cert[512], refresh[16];
    struct sw_error err = { 0 };
    uint16_t port = th_free_port();
    size_t k = 13;
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", port);
    snprintf(n->sn_base, sizeof(n->sn_base), "http://%s", addr);
    snprintf(path, sizeof(path), "%s", th_bin("setup-node"));
    snprintf(db, sizeof(db), "%s", net_db(n, "sn"));
    snprintf(key, sizeof(key), "%s/setup-node.key", n->dir);
    if (sw_keyfile_save(key, &n->sn_kp, &err) != SW_OK) {
        fprintf(stderr, "net_env: setup node key %s: %s\n", key, err.msg);
        return -1;
    }
    const char *argv[24] = { path, "--addr", addr, "--db", db, "--key-file", key,
                             "--messaging-discovery", n->md_base, "--messaging-sessions", "1",
                             "--threads", "4" };
    private_args(n, argv, &k, "setup-node", SW_ROLE_SETUP_NODE, &n->sn_kp.pk, true, cert, sizeof(cert),
                 refresh, sizeof(refresh));
    argv[k] = NULL;
    return th_start_service(argv, port, net_log(n, "setup-node"));
}

bool th_net_start(struct th_net *n)
{
    char temp[96];

    n->td_pid = n->md_pid = n->ms_pid = n->rf_pid = n->sn_pid = -1;
    n->rf_base[0] = n->sn_base[0] = 0;
    n->http = sw_http_client_new(NULL);
    if (!n->http) {
        fprintf(stderr, "net_env: no HTTP client\n");
        return false;
    }
    sw_keypair_generate(&n->sn_kp);
    sw_pk_to_hex(&n->sn_kp.pk, n->sn_hex);
    if (n->temp_dir)
        snprintf(temp, sizeof(temp), "%s", n->temp_dir);
    else
        snprintf(temp, sizeof(temp), "sw-%s-it", n->name);
    snprintf(n->dir, sizeof(n->dir), "%s", th_temp_dir(temp));
    if (n->private_net) {
        th_network_init(&n->network);
        snprintf(n->revocations, sizeof(n->revocations), "%s/revocations", n->dir);
    }
    n->td_pid = start_db_service(n, "transport-discovery", "td", n->td_base, sizeof(n->td_base),
                                 n->td_db, sizeof(n->td_db));
    n->md_pid = start_db_service(n, "messaging-discovery", "md", n->md_base, sizeof(n->md_base),
                                 NULL, 0);
    if (n->td_pid <= 0 || n->md_pid <= 0) {
        fprintf(stderr, "net_env: the discoveries did not start\n");
        return false;
    }
    if (n->with_rf && (n->rf_pid = start_rf(n)) <= 0) {
        fprintf(stderr, "net_env: the route finder did not start\n");
        return false;
    }
    if (start_messaging_server(n) <= 0) {
        fprintf(stderr, "net_env: the messaging server did not start or register\n");
        return false;
    }
    if (n->with_sn && (n->sn_pid = start_sn(n)) <= 0) {
        fprintf(stderr, "net_env: the setup node did not start\n");
        return false;
    }
    return true;
}

int th_net_visor_gen(struct th_net *n, struct th_visor *v, const char *name,
                     const char *setup_node_hex, const char *const extra[])
{
    const char *args[64];
    char cert[512];
    size_t k = 0;
    int rc;

    if (n->private_net) {
        snprintf(cert, sizeof(cert), "%s/%s.cert", n->dir, name);
        args[k++] = "--network";
        args[k++] = n->network.pk_hex;
        args[k++] = "--cert-file";
        args[k++] = cert;
        args[k++] = "--revocations";
        args[k++] = n->revocations;
    }
    args[k++] = "--mdisc";
    args[k++] = n->md_base;
    args[k++] = "--setup-node";
    args[k++] = setup_node_hex ? setup_node_hex : n->sn_hex;
    if (n->rf_base[0]) {
        args[k++] = "--rf";
        args[k++] = n->rf_base;
    }
    args[k++] = "--sessions";
    args[k++] = "1";
    for (size_t i = 0; extra && extra[i]; i++) {
        if (k + 1 >= sizeof(args) / sizeof(args[0])) {
            fprintf(stderr, "net_env: too many gen-config options\n");
            return -1;
        }
        args[k++] = extra[i];
    }
    args[k] = NULL;
    if ((rc = th_visor_gen(v, n->dir, name, n->td_base, args)) || !n->private_net)
        return rc;
    if (th_net_member_cert(n, &v->pk, SW_ROLE_VISOR, name, "test", 86400, cert, NULL) ||
        th_visor_set_field(v, "network.revocations_refresh_ms",
                           json_object_new_int64(n->refresh_ms ? n->refresh_ms : 1000)))
        return -1;
    return 0;
}

static bool has_session(struct th_net *n, const struct th_visor *v)
{
    struct json_object *o = NULL;
    bool ok = net_call(n, v->api, "GET", "/api/summary", NULL, &o) == 200 &&
              json_object_get_int(json_object_object_get(json_object_object_get(o, "messaging"),
                                                         "sessions")) > 0;
    json_object_put(o);
    return ok;
}

static bool has_mdisc_entry(struct th_net *n, const char *pk_hex)
{
    char target[160];
    snprintf(target, sizeof(target), "/messaging-discovery/entry/%s", pk_hex);
    return net_call(n, n->md_base, "GET", target, NULL, NULL) == 200;
}

bool th_net_wait_sessions(struct th_net *n, const struct th_visor *v, int timeout_ms)
{
    for (int waited = 0;; waited += 100) {
        if (has_session(n, v))
            return true;
        if (waited >= timeout_ms)
            return false;
        th_sleep_ms(100);
    }
}

bool th_net_wait_mdisc(struct th_net *n, const char *pk_hex, int timeout_ms)
{
    for (int waited = 0;; waited += 100) {
        if (has_mdisc_entry(n, pk_hex))
            return true;
        if (waited >= timeout_ms)
            return false;
        th_sleep_ms(100);
    }
}

bool th_net_wait_ready(struct th_net *n, const struct th_visor *v, int timeout_ms)
{
    for (int waited = 0;; waited += 100) {
        if (has_session(n, v) && has_mdisc_entry(n, v->pk_hex))
            return true;
        if (waited >= timeout_ms)
            return false;
        th_sleep_ms(100);
    }
}

long th_net_add_stcp(struct th_net *n, const struct th_visor *from, const struct th_visor *to,
                     char *id)
{
    char body[256];
    struct json_object *o = NULL;
    long st;

    snprintf(body, sizeof(body), "{\"remote_pk\":\"%s\",\"address\":\"%s\"}", to->pk_hex, to->stcp);
    st = net_call(n, from->api, "POST", "/api/transports", body, &o);
    if (st != 201)
        fprintf(stderr, "net_env: add-tp %s -> %s: HTTP %ld %s\n", from->name, to->name, st,
                o ? json_object_to_json_string(o) : "");
    else if (id)
        snprintf(id, SW_UUID_STR_LEN + 1, "%s",
                 json_object_get_string(json_object_object_get(o, "id")));
    json_object_put(o);
    return st;
}

bool th_net_tp_up(struct th_net *n, const struct th_visor *v, const char *id)
{
    char target[128];
    struct json_object *o = NULL;
    const char *state;
    bool up;

    snprintf(target, sizeof(target), "/api/transports/%s", id);
    up = net_call(n, v->api, "GET", target, NULL, &o) == 200 &&
         (state = json_object_get_string(json_object_object_get(o, "state"))) &&
         strcmp(state, "up") == 0;
    json_object_put(o);
    return up;
}

bool th_net_wait_tp_up(struct th_net *n, const struct th_visor *v, const char *id, int timeout_ms)
{
    for (int waited = 0;; waited += 100) {
        if (th_net_tp_up(n, v, id))
            return true;
        if (waited >= timeout_ms)
            return false;
        th_sleep_ms(100);
    }
}

void th_net_stop(struct th_net *n, struct th_visor *const visors[], size_t n_visors)
{
    for (size_t i = 0; i < n_visors; i++)
        th_visor_stop(visors[i], false);
    pid_t *pids[] = { &n->sn_pid, &n->rf_pid, &n->td_pid, &n->ms_pid, &n->md_pid };
    for (size_t i = 0; i < sizeof(pids) / sizeof(pids[0]); i++) {
        if (*pids[i] > 0)
            th_stop(*pids[i], 5000);
        *pids[i] = -1;
    }
    sw_http_client_free(n->http);
    n->http = NULL;
}
