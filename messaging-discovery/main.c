/* messaging-discovery — REST + PostgreSQL registry of signed messaging entries. */
#include "common/log.h"
#include "common/service.h"
#include "messaging-discovery/api.h"

struct md_main {
    struct md_app app; /* first: handlers receive it as req->app */
    long ttl_s, max_age_s, max_future_s; /* the options, copied into app at start */
    long expire_interval_s;
    const char *network, *revocations;
    long revocations_refresh_ms;
};

static int migrate(void *arg, struct sw_db *db, struct sw_error *err)
{
    struct md_main *m = arg;
    m->app.store.db = db;
    m->app.store.ttl_s = m->ttl_s;
    m->app.max_age_s = m->max_age_s;
    m->app.max_future_s = m->max_future_s;
    return md_store_migrate(&m->app.store, err);
}

/* Before HTTP serves: a private network's policy must be in place for the first request. */
static int open_network(struct md_main *m)
{
    const struct sw_network_opts o = { .network_pk = m->network, .revocations = m->revocations,
                                       .refresh_ms = (unsigned)m->revocations_refresh_ms };
    struct sw_error err = { 0 };
    char hex[SW_PK_HEX_LEN + 1];

    if (!m->network && m->revocations) {
        sw_log_error("--revocations needs --network");
        return -1;
    }
    if (sw_network_open(&m->app.net, &o, &err)) {
        sw_log_error("--network: %s", err.msg);
        return -1;
    }
    m->app.store.private_net = m->app.net != NULL;
    if (!m->app.net)
        return 0;
    sw_pk_to_hex(sw_network_key(m->app.net), hex);
    sw_log_info("private network %s: server entries need role messaging-server, client entries "
                "visor, setup-node or service; revocations from %s", hex,
                m->revocations ? m->revocations : "nowhere");
    return 0;
}

static int prepare(void *arg, struct sw_db *db)
{
    struct md_main *m = arg;
    if (md_store_prepare(&m->app.store) || sw_nonce_store_init(&m->app.nonces, db, "md_nonces"))
        return -1;
    if (open_network(m))
        return -1;
    sw_log_info("entries expire %llds after their last refresh; timestamps older than %llds are stale",
                (long long)m->app.store.ttl_s, (long long)m->app.max_age_s);
    return 0;
}

static void expire(void *arg)
{
    struct md_main *m = arg;
    struct md_counts c;
    struct sw_error err = { 0 };
    if (md_store_expire(&m->app.store, &c, &err)) {
        sw_log_warn("expiry: %s", err.msg);
        return;
    }
    atomic_store(&m->app.entries, c.entries);
    atomic_store(&m->app.servers, c.servers);
    atomic_fetch_add(&m->app.expired_total, (uint64_t)c.expired_now);
    if (c.expired_now)
        sw_log_info("expired %lld unrefreshed entr%s", (long long)c.expired_now, c.expired_now == 1 ? "y" : "ies");
    md_purge_revoked(&m->app);
}

int main(int argc, char **argv)
{
    static struct md_main m;
    int rc;
    const struct sw_opt options[] = {
        SW_OPT_NUM("entry-ttl", "SECONDS", "entries not refreshed within this expire (default 180)",
                   &m.ttl_s, 1, 86400),
        SW_OPT_NUM("max-entry-age", "SECONDS", "reject entries whose timestamp is older (default 120)",
                   &m.max_age_s, 1, 86400),
        SW_OPT_NUM("max-clock-skew", "SECONDS", "reject timestamps further ahead (default 30)",
                   &m.max_future_s, 1, 86400),
        SW_OPT_NUM("expire-interval", "SECONDS", "how often expired entries are removed (default 10)",
                   &m.expire_interval_s, 1, 86400),
        SW_OPT_CALL("network", "PK", "private network: the network's public key (hex, or a file\n"
                    "holding it); entries only from members (default: open)", sw_network_opt_key, &m.network),
        SW_OPT_STR("revocations", "SRC", "revocation list: a transport discovery URL (http://host:port)\n"
                   "or a file, polled (default: none)", &m.revocations),
        SW_OPT_NUM("revocations-refresh-ms", "MS", "how often --revocations is polled (default 20000)",
                   &m.revocations_refresh_ms, 100, 600000),
        SW_OPT_END,
    };
    const struct sw_service_def def = {
        .name = "messaging-discovery",
        .default_addr = "0.0.0.0:9090",
        .options = options,
        .migrate = migrate,
        .prepare = prepare,
        .routes = md_routes,
        .n_routes = md_n_routes,
        .write_metrics = md_write_metrics,
        .periodic = expire,
        .periodic_interval_s = &m.expire_interval_s,
    };
    m.ttl_s = 180;
    m.max_age_s = 120;
    m.max_future_s = 30;
    m.expire_interval_s = 10;
    m.revocations_refresh_ms = 20000;
    rc = sw_service_main(&def, &m, argc, argv);
    sw_network_close(m.app.net);
    return rc;
}
