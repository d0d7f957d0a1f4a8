/* messaging-discovery — REST + PostgreSQL registry of signed messaging entries. */
#include "common/log.h"
#include "common/service.h"
#include "messaging-discovery/api.h"

enum { OPT_TTL = 1, OPT_MAX_AGE, OPT_MAX_FUTURE, OPT_EXPIRE_INTERVAL };

struct md_main {
    struct md_app app; /* first: handlers receive it as req->app */
    long expire_interval_s;
};

static const struct option md_options[] = {
    { "entry-ttl", required_argument, NULL, OPT_TTL },
    { "max-entry-age", required_argument, NULL, OPT_MAX_AGE },
    { "max-clock-skew", required_argument, NULL, OPT_MAX_FUTURE },
    { "expire-interval", required_argument, NULL, OPT_EXPIRE_INTERVAL },
    { NULL, 0, NULL, 0 },
};

static int parse_option(void *arg, int id, const char *val)
{
    struct md_main *m = arg;
    long v;
    const char *name = id == OPT_TTL ? "entry-ttl" : id == OPT_MAX_AGE ? "max-entry-age"
                     : id == OPT_MAX_FUTURE ? "max-clock-skew" : "expire-interval";
    if (sw_service_parse_long("messaging-discovery", name, val, 1, 86400, &v))
        return -1;
    switch (id) {
    case OPT_TTL: m->app.store.ttl_s = v; break;
    case OPT_MAX_AGE: m->app.max_age_s = v; break;
    case OPT_MAX_FUTURE: m->app.max_future_s = v; break;
    case OPT_EXPIRE_INTERVAL: m->expire_interval_s = v; break;
    default: return -1;
    }
    return 0;
}

static int migrate(void *arg, struct sw_db *db, struct sw_error *err)
{
    struct md_main *m = arg;
    m->app.store.db = db;
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
    const struct sw_service_def def = {
        .name = "messaging-discovery",
        .default_addr = "0.0.0.0:9090",
        .options_help =
            "  --entry-ttl SECONDS       entries not refreshed within this expire (default 180)\n"
            "  --max-entry-age SECONDS   reject entries whose timestamp is older (default 120)\n"
            "  --max-clock-skew SECONDS  reject timestamps further ahead (default 30)\n"
            "  --expire-interval SECONDS how often expired entries are removed (default 10)\n",
        .options = md_options,
        .parse_option = parse_option,
        .migrate = migrate,
        .prepare = prepare,
        .routes = md_routes,
        .n_routes = md_n_routes,
        .write_metrics = md_write_metrics,
        .periodic = expire,
        .periodic_interval_s = &m.expire_interval_s,
    };
    m.app.store.ttl_s = 180;
    m.app.max_age_s = 120;
    m.app.max_future_s = 30;
    m.expire_interval_s = 10;
    return sw_service_main(&def, &m, argc, argv);
}
