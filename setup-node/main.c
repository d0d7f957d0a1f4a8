/* setup-node — installs route groups on visors over messaging streams (docs/setup-node.md). */
#include "common/log.h"
#include "common/service.h"
#include "setup-node/sn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { OPT_KEY_FILE = 1, OPT_DISCOVERY, OPT_SERVER, OPT_SESSIONS, OPT_STEP_TIMEOUT, OPT_ADMIN_KEY, OPT_RG_ACCESS };

static const struct option sn_options[] = {
    { "key-file", required_argument, NULL, OPT_KEY_FILE },
    { "messaging-discovery", required_argument, NULL, OPT_DISCOVERY },
    { "messaging-server", required_argument, NULL, OPT_SERVER },
    { "messaging-sessions", required_argument, NULL, OPT_SESSIONS },
    { "step-timeout-ms", required_argument, NULL, OPT_STEP_TIMEOUT },
    { "admin-key", required_argument, NULL, OPT_ADMIN_KEY },
    { "route-groups-access", required_argument, NULL, OPT_RG_ACCESS },
    { NULL, 0, NULL, 0 },
};

/* PK@HOST:PORT */
static int parse_server(struct sn_app *app, const char *arg)
{
    const char *at = strchr(arg, '@');
    struct sw_msg_server_addr *s = &app->servers[app->n_servers];
    char hex[SW_PK_HEX_LEN + 1];
    struct sw_error err = { 0 };
    if (app->n_servers == SN_MAX_FIXED_SERVERS) {
        fprintf(stderr, "setup-node: at most %d --messaging-server\n", SN_MAX_FIXED_SERVERS);
        return -1;
    }
    if (!at || at - arg != SW_PK_HEX_LEN || !strchr(at + 1, ':') || strlen(at + 1) >= sizeof(s->address)) {
        fprintf(stderr, "setup-node: --messaging-server: '%s' is not PK@HOST:PORT\n", arg);
        return -1;
    }
    memcpy(hex, arg, SW_PK_HEX_LEN);
    hex[SW_PK_HEX_LEN] = '\0';
    if (sw_pk_from_hex(&s->pk, hex, "--messaging-server", &err)) {
        fprintf(stderr, "setup-node: %s\n", err.msg);
        return -1;
    }
    snprintf(s->address, sizeof(s->address), "%s", at + 1);
    app->n_servers++;
    return 0;
}

static int parse_option(void *arg, int id, const char *val)
{
    struct sn_app *app = arg;
    switch (id) {
    case OPT_KEY_FILE: app->key_file = val; return 0;
    case OPT_DISCOVERY: app->discovery_url = val; return 0;
    case OPT_SERVER: return parse_server(app, val);
    case OPT_SESSIONS: return sw_service_parse_long("setup-node", "messaging-sessions", val, 1, 8, &app->sessions);
    case OPT_STEP_TIMEOUT:
        return sw_service_parse_long("setup-node", "step-timeout-ms", val, 100, 600000, &app->step_timeout_ms);
    case OPT_ADMIN_KEY: return sn_access_add_admin_key(app, val);
    case OPT_RG_ACCESS: return sn_access_parse_mode(val, &app->rg_access);
    default: return -1;
    }
}

static int migrate(void *arg, struct sw_db *db, struct sw_error *err)
{
    struct sn_app *app = arg;
    app->db = db;
    return sn_store_migrate(db, err);
}

static int load_key(struct sn_app *app)
{
    struct sw_error err = { 0 };
    char hex[SW_PK_HEX_LEN + 1];
    bool created = false;
    if (sw_keyfile_load_or_create(app->key_file, &app->kp, &created, &err)) {
        sw_log_error("key file: %s", err.msg);
        return -1;
    }
    sw_pk_to_hex(&app->kp.pk, hex);
    sw_log_info("public key %s (%s %s)", hex, created ? "created" : "loaded from", app->key_file);
    return 0;
}

static int prepare(void *arg, struct sw_db *db)
{
    struct sn_app *app = arg;
    if (!app->discovery_url && app->n_servers == 0) {
        sw_log_error("no messaging: pass --messaging-discovery URL and/or --messaging-server PK@HOST:PORT");
        return -1;
    }
    if (sn_access_check_config(app) || sn_store_prepare(db) || sw_nonce_store_init(&app->nonces, db, "sn_nonces") ||
        load_key(app))
        return -1;
    return 0;
}

static int start(void *arg)
{
    struct sn_app *app = arg;
    struct sw_msg_client_config cfg = {
        .kp = app->kp, .discovery_url = app->discovery_url, .n_servers = (unsigned)app->sessions,
        .servers = app->n_servers ? app->servers : NULL, .n_fixed_servers = app->n_servers,
        .dial_timeout_ms = (int)app->step_timeout_ms,
    };
    struct sw_error err = { 0 };
    int rc = sw_msg_client_start(&cfg, &app->msg, &err);
    sw_keypair_wipe(&cfg.kp);
    if (rc) {
        sw_log_error("messaging client: %s", err.msg);
        return -1;
    }
    if (sn_server_start(app)) {
        sw_msg_client_stop(app->msg);
        return -1;
    }
    sw_log_info("serving route_group requests on messaging port %d (step timeout %ld ms)", SW_SETUP_PORT,
                app->step_timeout_ms);
    return 0;
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
    const struct sw_service_def def = {
        .name = "setup-node",
        .default_addr = "0.0.0.0:9093",
        .options_help =
            "  --key-file FILE           identity key (created 0600 when missing; default setup-node.key)\n"
            "  --messaging-discovery URL messaging discovery base URL\n"
            "  --messaging-server PK@HOST:PORT  fixed messaging server (repeatable)\n"
            "  --messaging-sessions N    messaging server sessions to keep (default 2)\n"
            "  --step-timeout-ms MS      deadline of each setup step with one visor (default 5000)\n"
            "  --admin-key PK            key whose signed requests may read GET /route-groups (repeatable)\n"
            "  --route-groups-access loopback|admin|any\n"
            "                            who may read GET /route-groups: loopback clients and admin keys\n"
            "                            (default), admin keys only, or everyone\n",
        .options = sn_options,
        .parse_option = parse_option,
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
    app.listener_fd = -1;
    pthread_mutex_init(&app.mu, NULL);
    pthread_cond_init(&app.cv, NULL);
    sn_pool_init(&app.pool);
    rc = sw_service_main(&def, &app, argc, argv);
    sw_keypair_wipe(&app.kp);
    return rc;
}
