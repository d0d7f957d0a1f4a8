/* transport-discovery — REST + PostgreSQL registry of transports between visors. */
#include "common/log.h"
#include "common/service.h"
#include "transport-discovery/api.h"

#include <stdio.h>
#include <string.h>

struct td_main {
    struct td_app app; /* first: handlers receive it as req->app */
    long ttl_s;        /* --ttl, copied into the store at start */
    long purge_s;
    long reap_interval_s;
};

static int migrate(void *arg, struct sw_db *db, struct sw_error *err)
{
    struct td_main *m = arg;
    m->app.store.db = db;
    m->app.store.ttl_s = m->ttl_s;
    return td_store_migrate(&m->app.store, err);
}

static int prepare(void *arg, struct sw_db *db)
{
    struct td_main *m = arg;
    if (td_store_prepare(&m->app.store) || sw_nonce_store_init(&m->app.nonces, db, "td_nonces"))
        return -1;
    sw_log_info("an edge's opinion not refreshed within %llds counts as down; transports are purged %lds after "
                "both edges' last report",
                (long long)m->app.store.ttl_s, m->purge_s);
    return 0;
}

/* Marks stale transports down and refreshes the gauges. */
static void reap(void *arg)
{
    struct td_main *m = arg;
    struct td_counts counts;
    struct sw_error err = { 0 };
    if (td_store_reap(&m->app.store, m->purge_s, &counts, &err) != SW_OK) {
        sw_log_warn("reaper: %s", err.msg);
        return;
    }
    atomic_store(&m->app.transports_total, counts.total);
    atomic_store(&m->app.transports_up, counts.up);
    atomic_fetch_add(&m->app.expired_total, (uint64_t)counts.expired_now);
    atomic_fetch_add(&m->app.purged_total, (uint64_t)counts.purged_now);
    if (counts.expired_now || counts.purged_now)
        sw_log_info("reaper: %lld transport(s) with an edge marked down after the TTL, %lld purged",
                    (long long)counts.expired_now, (long long)counts.purged_now);
}

int main(int argc, char **argv)
{
    static struct td_main m;
    const struct sw_opt options[] = {
        SW_OPT_NUM("ttl", "SECONDS", "an edge's opinion not refreshed within this counts as down (default 300)",
                   &m.ttl_s, 1, 86400L * 365),
        SW_OPT_NUM("purge-after", "SECONDS", "delete transports neither edge refreshed within this (default 86400)",
                   &m.purge_s, 1, 86400L * 3650),
        SW_OPT_NUM("reap-interval", "SECS", "how often stale opinions are marked down (default 10)",
                   &m.reap_interval_s, 1, 3600),
        SW_OPT_END,
    };
    const struct sw_service_def def = {
        .name = "transport-discovery",
        .default_addr = "0.0.0.0:9091",
        .options = options,
        .migrate = migrate,
        .prepare = prepare,
        .routes = td_routes,
        .n_routes = td_n_routes,
        .write_metrics = td_write_metrics,
        .periodic = reap,
        .periodic_interval_s = &m.reap_interval_s,
    };
    m.ttl_s = 300;
    m.purge_s = 86400;
    m.reap_interval_s = 10;
    return sw_service_main(&def, &m, argc, argv);
}
