/* messaging-discovery — REST + PostgreSQL registry of signed messaging entries. */
#include "common/log.h"
#include "common/service.h"
#include "messaging-discovery/api.h"

struct md_main {
    struct md_app app; /* first: handlers receive it as req->app */
    long ttl_s, max_age_s, max_future_s; /* the options, copied into app at start */
    long expire_interval_s;
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

static int prepare(void *arg, struct sw_db *db)
{
    struct md_main *m = arg;
    if (md_store_prepare(&m->app.store) || sw_nonce_store_init(&m->app.nonces, db, "md_nonces"))
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
}

int main(int argc, char **argv)
{
    static struct md_main m;
    const struct sw_opt options[] = {
        SW_OPT_NUM("entry-ttl", "SECONDS", "entries not refreshed within this expire (default 180)",
                   &m.ttl_s, 1, 86400),
        SW_OPT_NUM("max-entry-age", "SECONDS", "reject entries whose timestamp is older (default 120)",
                   &m.max_age_s, 1, 86400),
        SW_OPT_NUM("max-clock-skew", "SECONDS", "reject timestamps further ahead (default 30)",
                   &m.max_future_s, 1, 86400),
        SW_OPT_NUM("expire-interval", "SECONDS", "how often expired entries are removed (default 10)",
                   &m.expire_interval_s, 1, 86400),
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
    return sw_service_main(&def, &m, argc, argv);
}
