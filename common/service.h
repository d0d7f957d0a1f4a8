/* service.h — the life of a PostgreSQL-backed REST daemon, shared by every such service.
 *
 * sw_service_main() is the PostgreSQL layer over the daemon core (common/daemon_main.h): it
 * adds the common flags (--addr, --db / DATABASE_URL, --threads, --db-pool; the core gives
 * --help and --version) before the service's own, opens the pool, applies the service's
 * migrations (retrying with backoff while the database is unreachable), prepares
 * statements, serves HTTP, runs the optional periodic task on its own thread, and stops
 * cleanly on SIGTERM/SIGINT. It returns the process exit code. */
#ifndef SW_SERVICE_H
#define SW_SERVICE_H

#include "common/db.h"
#include "common/http_server.h"
#include "common/opts.h"

struct sw_service_def {
    const char *name;         /* e.g. "transport-discovery"; log component and metrics label */
    const char *default_addr; /* e.g. "0.0.0.0:9091" */
    /* The service's own options (common/opts.h; ended by SW_OPT_END, or NULL): their help
     * lines follow the common ones in --help. */
    const struct sw_opt *options;
    const char *usage_note; /* lines printed after the options in --help, or NULL */
    /* Called after flags are parsed, with the pool open: migrations, then statements. */
    int (*migrate)(void *app, struct sw_db *db, struct sw_error *err);
    int (*prepare)(void *app, struct sw_db *db);
    const struct sw_http_route *routes;
    size_t n_routes;
    void (*write_metrics)(void *app, struct sw_buf *out);
    /* Optional periodic task (e.g. expiry), every *periodic_interval_s seconds. */
    void (*periodic)(void *app);
    const long *periodic_interval_s;
    /* Optional background work beyond HTTP (e.g. a messaging client and its threads):
     * start() runs once the HTTP server listens (non-zero aborts start-up with exit 1);
     * stop() runs after the HTTP server stopped and before the pool closes, only if start()
     * succeeded, and must join what start() started. */
    int (*start)(void *app);
    void (*stop)(void *app);
};

/* app: the service's state, handed to every callback and to handlers as req->app; the
 * service keeps the pool it is given in migrate(). */
int sw_service_main(const struct sw_service_def *def, void *app, int argc, char **argv);

#endif
