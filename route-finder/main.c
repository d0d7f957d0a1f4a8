/* route-finder — k shortest paths by hop count over the transport discovery's graph. */
#include "common/daemon.h"
#include "common/log.h"
#include "common/service.h"
#include "route-finder/api.h"
#include "route-finder/store.h"

#define LOAD_POLL_MS 50

struct rf_main {
    struct rf_app app; /* first: handlers receive it as req->app */
    long ttl_s;        /* --ttl, copied into app at start */
    const char *network;     /* --network: a private network's key (hex or file), or NULL */
    const char *revocations; /* --revocations: URL or file, or NULL (td_revocations) */
    struct sw_network *net;
};

static bool private_network(const struct rf_main *m)
{
    return m->network && m->network[0];
}

static int migrate(void *arg, struct sw_db *db, struct sw_error *err)
{
    struct rf_main *m = arg;
    m->app.ttl_s = m->ttl_s;
    return rf_store_migrate(db, private_network(m), err);
}

/* Private network: the policy the sync thread masks the graph with (members.h). */
static int open_network(struct rf_main *m)
{
    struct sw_network_opts o = { .network_pk = m->network, .revocations = m->revocations };
    struct sw_error err = { 0 };
    char pk[SW_PK_HEX_LEN + 1];
    if (sw_network_open(&m->net, &o, &err)) {
        sw_log_error("--network: %s", err.msg);
        return -1;
    }
    m->app.sync.net = m->net;
    m->app.sync.net_has_source = m->revocations && m->revocations[0];
    m->app.sync.ttl_s = m->ttl_s;
    if (!m->net)
        return 0;
    sw_pk_to_hex(sw_network_key(m->net), pk);
    sw_log_info("private network %s: routes only through members (visor certificates in td_members), "
                "revocations from %s", pk, m->app.sync.net_has_source ? m->revocations : "td_revocations");
    return 0;
}

/* Starts the sync thread and waits for the first full load, so that the HTTP server never
 * answers from an empty graph. */
static int prepare(void *arg, struct sw_db *db)
{
    struct rf_main *m = arg;
    struct sw_error err = { 0 };
    if (open_network(m))
        return -1;
    if (rf_sync_start(&m->app.sync, db, &err)) {
        sw_log_error("cannot start the graph sync: %s", err.msg);
        rf_app_free(&m->app);
        return -1;
    }
    while (!rf_sync_loaded(&m->app.sync)) {
        if (sw_daemon_sleep(LOAD_POLL_MS)) {
            sw_log_info("stopped before the graph was loaded");
            rf_app_free(&m->app);
            return -1;
        }
    }
    sw_log_info("transports not refreshed by both edges within %llds are not used", (long long)m->app.ttl_s);
    return 0;
}

static int start(void *arg)
{
    (void)arg;
    return 0; /* everything runs since prepare(); start() only makes stop() be called */
}

static void stop(void *arg)
{
    struct rf_main *m = arg;
    rf_app_free(&m->app); /* joins the sync thread, the network's last user */
    sw_network_close(m->net);
    m->net = NULL;
}

int main(int argc, char **argv)
{
    static struct rf_main m;
    const struct sw_opt options[] = {
        SW_OPT_NUM("ttl", "SECONDS", "transports not refreshed by both edges within this are not used (default 300;\n"
                   "give it the transport discovery's --ttl)", &m.ttl_s, 1, 86400L * 365),
        SW_OPT_CALL("network", "PK", "private network: the network's public key (hex, or a file holding it); routes only through keys\n"
                    "with a valid visor certificate in td_members that is not revoked", sw_network_opt_key, &m.network),
        SW_OPT_STR("revocations", "SRC", "with --network: the revocation list from a transport discovery URL\n"
                   "(http://host:port) or a file, every 20 s (default: td_revocations in --db)", &m.revocations),
        SW_OPT_END,
    };
    const struct sw_service_def def = {
        .name = "route-finder",
        .default_addr = "0.0.0.0:9092",
        .options = options,
        .usage_note = "  (--db is the transport discovery's database: td_transports is read, never written)\n",
        .migrate = migrate,
        .prepare = prepare,
        .routes = rf_routes,
        .n_routes = rf_n_routes,
        .write_metrics = rf_write_metrics,
        .start = start,
        .stop = stop,
    };
    m.ttl_s = 300;
    rf_app_init(&m.app);
    return sw_service_main(&def, &m, argc, argv);
}
