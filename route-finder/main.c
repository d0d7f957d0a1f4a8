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
};

static int migrate(void *arg, struct sw_db *db, struct sw_error *err)
{
    struct rf_main *m = arg;
    m->app.ttl_s = m->ttl_s;
    return rf_store_migrate(db, err);
}

/* Starts the sync thread and waits for the first full load, so that the HTTP server never
 * answers from an empty graph. */
static int prepare(void *arg, struct sw_db *db)
{
    struct rf_main *m = arg;
    struct sw_error err = { 0 };
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
    rf_app_free(&m->app);
}

int main(int argc, char **argv)
{
    static struct rf_main m;
    const struct sw_opt options[] = {
        SW_OPT_NUM("ttl", "SECONDS", "transports not refreshed by both edges within this are not used (default 300;\n"
                   "give it the transport discovery's --ttl)", &m.ttl_s, 1, 86400L * 365),
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
