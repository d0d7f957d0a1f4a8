/* service.h — the life of a PostgreSQL-backed REST daemon, shared by every such service.
 *
 * sw_service_main() parses the common flags (--addr, --db / DATABASE_URL, --threads,
 * --db-pool, --help, --version) plus the service's own, opens the pool, applies the
 * service's migrations (retrying with backoff while the database is unreachable), prepares
 * statements, serves HTTP, runs the optional periodic task on its own thread, and stops
 * cleanly on SIGTERM/SIGINT. It returns the process exit code. */
#ifndef SW_SERVICE_H
#define SW_SERVICE_H

#include <getopt.h>

#include "common/db.h"
#include "common/http_server.h"

struct sw_service_def {
    const char *name;         /* e.g. "transport-discovery"; log component and metrics label */
    const char *default_addr; /* e.g. "0.0.0.0:9091" */
    const char *options_help; /* help lines for the service's own options, or NULL */
    /* Service-specific long options (NULL-terminated array, or NULL) and their parser:
     * returns 0, or -1 after printing why the value is bad. */
    const struct option *options;
    int (*parse_option)(void *app, int id, const char *arg);
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

/* Parses a decimal long in [min,max] for an option; prints an error naming the option. */
int sw_service_parse_long(const char *service, const char *opt, const char *arg, long min,
                          long max, long *out);

#endif
