/* setup-node — installs route groups on visors over messaging streams (docs/setup-node.md). */
#include "common/hostport.h"
#include "common/log.h"
#include "common/service.h"
#include "setup-node/sn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --messaging-server PK@HOST:PORT (repeatable) */
static int parse_server(void *arg, const char *val, struct sw_error *err)
{
    struct sn_app *app = arg;
    const char *at = strchr(val, '@');
    struct sw_msg_server_addr *s = &app->servers[app->n_servers];
    char hex[SW_PK_HEX_LEN + 1];
    int rc;
    if (app->n_servers == SN_MAX_FIXED_SERVERS)
        return sw_error_set(err, SW_EINVAL, "at most %d --messaging-server", SN_MAX_FIXED_SERVERS);
    if (!at || at - val != SW_PK_HEX_LEN || sw_hostport_parse(at + 1, 0, NULL, 0, NULL) ||
        strlen(at + 1) >= sizeof(s->address))
        return sw_error_set(err, SW_EINVAL, "--messaging-server: '%s' is not PK@HOST:PORT", val);
    memcpy(hex, val, SW_PK_HEX_LEN);
    hex[SW_PK_HEX_LEN] = '\0';
    if ((rc = sw_pk_from_hex(&s->pk, hex, "--messaging-server", err)))
        return rc;
    snprintf(s->address, sizeof(s->address), "%s", at + 1);
    app->n_servers++;
    return SW_OK;
}

static int parse_admin_key(void *arg, const char *val, struct sw_error *err)
{
    return sn_access_add_admin_key(arg, val, err);
}

static int parse_access(void *arg, const char *val, struct sw_error *err)
{
    struct sn_app *app = arg;
    return sn_access_parse_mode(val, &app->rg_access, err);
}

static int migrate(void *arg, struct sw_db *db, struct sw_error *err)
{
    struct sn_app *app = arg;
    app->db = db;
    return sn_store_migrate(db, err);
}

static int load_key(struct sn_app *app, struct sw_error *err)
{
    struct sw_error why = { 0 };
    char hex[SW_PK_HEX_LEN + 1];
    bool created = false;
    int rc;
    if ((rc = sw_keyfile_load_or_create(app->key_file, &app->kp, &created, &why)))
        return sw_error_set(err, rc, "key file: %s", why.msg);
    sw_pk_to_hex(&app->kp.pk, hex);
    sw_log_info("public key %s (%s %s)", hex, created ? "created" : "loaded from", app->key_file);
    return SW_OK;
}

/* A private network (--network): our certificate must be there, valid, ours and a setup
 * node's; the revocation list is polled from --revocations. */
static int open_network(struct sn_app *app, struct sw_error *err)
{
    const struct sw_network_opts o = {
        .network_pk = app->network_pk,
        .self = &app->kp.pk,
        .cert_file = app->cert_file,
        .self_roles = SW_ROLE_BIT(SW_ROLE_SETUP_NODE),
        .revocations = app->revocations,
        .refresh_ms = (unsigned)app->revocations_refresh_ms,
    };
    const struct sw_cert *c;
    struct sw_error e = { 0 };
    char hex[SW_PK_HEX_LEN + 1];
    int rc;

    if (app->network_pk && !app->network_pk[0])
        app->network_pk = NULL; /* --network "": open, as when absent */
    if (!app->network_pk && (app->cert_file || app->revocations))
        return sw_error_set(err, SW_EINVAL, "--cert-file and --revocations need --network PK");
    if ((rc = sw_network_open(&app->net, &o, &e)))
        return sw_error_set(err, rc, "--network: %s", e.msg);
    if ((c = sw_network_own_cert_parsed(app->net))) {
        sw_pk_to_hex(sw_network_key(app->net), hex);
        sw_log_info("private network %s: member \"%s\" (role %s), certificate valid until %llu; "
                    "revocations from %s; only visors may ask for routes, rules go to visors only",
                    hex, c->name, sw_role_name(c->role),
                    (unsigned long long)c->not_after, app->revocations ? app->revocations : "nowhere");
    }
    if (app->net && !app->revocations)
        sw_log_warn("--revocations not given: revoked certificates stay valid here until they expire");
    return SW_OK;
}

/* Checks the flags together, prepares the statements and the nonce table, loads the key.
 * The service layer only logs that this step failed: the reason, when there is one, is here. */
static int prepare(void *arg, struct sw_db *db)
{
    struct sn_app *app = arg;
    struct sw_error err = { 0 };
    int rc;
    if (!app->discovery_url && app->n_servers == 0)
        rc = sw_error_set(&err, SW_EINVAL,
                          "no messaging: pass --messaging-discovery URL and/or --messaging-server PK@HOST:PORT");
    else if ((rc = sn_access_check_config(app, &err)) == SW_OK && (rc = sn_store_prepare(db)) == SW_OK &&
             (rc = sw_nonce_store_init(&app->nonces, db, "sn_nonces")) == SW_OK &&
             (rc = load_key(app, &err)) == SW_OK)
        rc = open_network(app, &err);
    if (rc && err.msg[0])
        sw_log_error("%s", err.msg);
    return rc;
}

static int start(void *arg)
{
    struct sn_app *app = arg;
    struct sw_msg_client_config cfg = {
        .kp = app->kp, .discovery_url = app->discovery_url, .n_servers = (unsigned)app->sessions,
        .servers = app->n_servers ? app->servers : NULL, .n_fixed_servers = app->n_servers,
        .dial_timeout_ms = (int)app->step_timeout_ms,
        .network = app->net,
    };
    struct sw_error err = { 0 };
    int rc = sw_msg_client_start(&cfg, &app->msg, &err);
    sw_keypair_wipe(&cfg.kp);
    if (rc) {
        sw_log_error("messaging client: %s", err.msg);
        return rc;
    }
    if ((rc = sn_server_start(app, &err))) {
        sw_log_error("%s", err.msg);
        sw_msg_client_stop(app->msg);
        return rc;
    }
    sw_log_info("serving route_group requests on messaging port %d (step timeout %ld ms)", SW_SETUP_PORT,
                app->step_timeout_ms);
    return SW_OK;
}

static void stop(void *arg)
{
    struct sn_app *app = arg;
    sn_server_stop(app);
    sn_pool_close_all(&app->pool);
    sw_msg_client_stop(app->msg);
    app->msg = NULL;
}

int main(int argc, char **argv)
{
    static struct sn_app app;
    const struct sw_opt options[] = {
        SW_OPT_STR("key-file", "FILE", "identity key (created 0600 when missing; default setup-node.key)", &app.key_file),
        SW_OPT_STR("messaging-discovery", "URL", "messaging discovery base URL", &app.discovery_url),
        SW_OPT_CALL("messaging-server", "PK@HOST:PORT", "fixed messaging server (repeatable)", parse_server, &app),
        SW_OPT_NUM("messaging-sessions", "N", "messaging server sessions to keep (default 2)", &app.sessions, 1, 8),
        SW_OPT_NUM("step-timeout-ms", "MS", "deadline of each setup step with one visor (default 5000)",
                   &app.step_timeout_ms, 100, 600000),
        SW_OPT_CALL("admin-key", "PK", "key whose signed requests may read GET /route-groups (repeatable)",
                    parse_admin_key, &app),
        SW_OPT_CALL("route-groups-access", "loopback|admin|any",
                    "who may read GET /route-groups: loopback clients and admin keys\n"
                    "(default), admin keys only, or everyone", parse_access, &app),
        SW_OPT_CALL("network", "PK", "a private network's public key (hex, or a file holding it): serve\n"
                    "only visors holding its certificate, install rules only on them (default: open)",
                    sw_network_opt_key, &app.network_pk),
        SW_OPT_STR("cert-file", "FILE", "this node's certificate (role setup-node; skywire-cli net sign)",
                   &app.cert_file),
        SW_OPT_STR("revocations", "SRC", "revocation list: a transport discovery URL (http://host:port)\n"
                   "or a file, polled (default: none)", &app.revocations),
        SW_OPT_NUM("revocations-refresh-ms", "MS", "how often --revocations is polled (default 20000)",
                   &app.revocations_refresh_ms, 100, 600000),
        SW_OPT_END,
    };
    const struct sw_service_def def = {
        .name = "setup-node",
        .default_addr = "0.0.0.0:9093",
        .options = options,
        .migrate = migrate,
        .prepare = prepare,
        .routes = sn_routes,
        .n_routes = sn_n_routes,
        .write_metrics = sn_write_metrics,
        .start = start,
        .stop = stop,
    };
    int rc;
    app.key_file = "setup-node.key";
    app.sessions = 2;
    app.step_timeout_ms = 5000;
    app.revocations_refresh_ms = 20000;
    app.listener_fd = -1;
    pthread_mutex_init(&app.mu, NULL);
    pthread_cond_init(&app.cv, NULL);
    sn_pool_init(&app.pool);
    rc = sw_service_main(&def, &app, argc, argv);
    sw_network_close(app.net); /* every thread that reads it has stopped */
    sw_keypair_wipe(&app.kp);
    return rc;
}
