#include "common/service.h"
#include "common/daemon.h"
#include "common/keys.h"
#include "common/log.h"
#include "common/version.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { OPT_ADDR = 1000, OPT_DB, OPT_THREADS, OPT_POOL, OPT_HELP, OPT_VERSION };
#define MAX_OPTIONS 32

struct common_opts {
    const char *addr;
    const char *db_url;
    long threads;
    long pool;
};

static void usage(const struct sw_service_def *def, FILE *f)
{
    fprintf(f,
            "usage: %s [options]\n"
            "  --addr HOST:PORT   listen address (default %s)\n"
            "  --db URL           PostgreSQL URL (default: $DATABASE_URL)\n"
            "  --threads N        HTTP worker threads (default 8)\n"
            "  --db-pool N        PostgreSQL connections (default: threads)\n"
            "%s"
            "  --version          print the version\n"
            "  --help             this text\n"
            "environment: DATABASE_URL, SKYWIRE_LOG_LEVEL=debug|info|warn|error\n",
            def->name, def->default_addr, def->options_help ? def->options_help : "");
}

int sw_service_parse_long(const char *service, const char *opt, const char *arg, long min,
                          long max, long *out)
{
    char *end;
    long v = strtol(arg, &end, 10);
    if (!*arg || *end || v < min || v > max) {
        fprintf(stderr, "%s: --%s: '%s' is not a number from %ld to %ld\n", service, opt, arg, min, max);
        return -1;
    }
    *out = v;
    return 0;
}

/* Builds the getopt table: common options followed by the service's. */
static int build_options(const struct sw_service_def *def, struct option *all)
{
    static const struct option common[] = {
        { "addr", required_argument, NULL, OPT_ADDR },
        { "db", required_argument, NULL, OPT_DB },
        { "threads", required_argument, NULL, OPT_THREADS },
        { "db-pool", required_argument, NULL, OPT_POOL },
        { "help", no_argument, NULL, OPT_HELP },
        { "version", no_argument, NULL, OPT_VERSION },
    };
    size_t n = sizeof(common) / sizeof(common[0]);
    memcpy(all, common, sizeof(common));
    for (const struct option *o = def->options; o && o->name; o++) {
        if (n + 1 >= MAX_OPTIONS)
            return -1;
        all[n++] = *o;
    }
    memset(&all[n], 0, sizeof(all[n]));
    return 0;
}

/* Returns 0 to run, 1 to exit 0 (help/version), -1 on a usage error. */
static int parse_args(const struct sw_service_def *def, void *app, int argc, char **argv,
                      struct common_opts *o)
{
    struct option all[MAX_OPTIONS];
    int c;
    *o = (struct common_opts){ def->default_addr, getenv("DATABASE_URL"), 8, 0 };
    if (build_options(def, all))
        return -1;
    while ((c = getopt_long(argc, argv, "", all, NULL)) != -1) {
        switch (c) {
        case OPT_ADDR: o->addr = optarg; break;
        case OPT_DB: o->db_url = optarg; break;
        case OPT_THREADS:
            if (sw_service_parse_long(def->name, "threads", optarg, 1, 256, &o->threads))
                return -1;
            break;
        case OPT_POOL:
            if (sw_service_parse_long(def->name, "db-pool", optarg, 1, 256, &o->pool))
                return -1;
            break;
        case OPT_HELP: usage(def, stdout); return 1;
        case OPT_VERSION: printf("%s %s\n", def->name, SW_VERSION); return 1;
        case '?': usage(def, stderr); return -1;
        default:
            if (!def->parse_option || def->parse_option(app, c, optarg))
                return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "%s: unexpected argument '%s'\n", def->name, argv[optind]);
        return -1;
    }
    if (!o->db_url || !*o->db_url) {
        fprintf(stderr, "%s: no database: pass --db URL or set DATABASE_URL\n", def->name);
        return -1;
    }
    if (!o->pool)
        o->pool = o->threads;
    return 0;
}

struct periodic {
    const struct sw_service_def *def;
    void *app;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
};

static void *periodic_main(void *arg)
{
    struct periodic *p = arg;
    struct timespec until;
    pthread_mutex_lock(&p->mu);
    while (!p->stop) {
        pthread_mutex_unlock(&p->mu);
        p->def->periodic(p->app);
        pthread_mutex_lock(&p->mu);
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += *p->def->periodic_interval_s;
        while (!p->stop && pthread_cond_timedwait(&p->cv, &p->mu, &until) == 0)
            ;
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* Applies migrations, retrying while the database is unreachable. */
static int migrate_with_retry(const struct sw_service_def *def, void *app, struct sw_db *db)
{
    long delay_ms = 500;
    for (;;) {
        struct sw_error err = { 0 };
        int rc = def->migrate(app, db, &err);
        if (rc == SW_OK)
            return SW_OK;
        if (rc != SW_EDB) {
            sw_log_error("schema migration failed: %s", err.msg);
            return rc;
        }
        sw_log_warn("database not reachable (%s); retrying in %ld ms", err.msg, delay_ms);
        if (sw_daemon_sleep(delay_ms))
            return SW_EIO;
        delay_ms = delay_ms * 2 > 5000 ? 5000 : delay_ms * 2;
    }
}

static int health_check(void *app, struct sw_error *err)
{
    struct sw_db **db = app;
    return sw_db_ping(*db, err);
}

struct health_ctx {
    struct sw_db *db; /* first member: health_check reads it through a struct sw_db ** */
    const struct sw_service_def *def;
    void *app;
};

static void write_metrics(void *arg, struct sw_buf *out)
{
    struct health_ctx *h = arg;
    if (h->def->write_metrics)
        h->def->write_metrics(h->app, out);
}

int sw_service_main(const struct sw_service_def *def, void *app, int argc, char **argv)
{
    struct common_opts opt;
    struct sw_error err = { 0 };
    struct sw_http_server *srv = NULL;
    struct sw_db *db = NULL;
    struct periodic per = { .def = def, .app = app };
    struct health_ctx hctx = { .def = def, .app = app };
    pthread_t per_thread;
    bool per_started = false, app_started = false;
    int rc;

    sw_log_init(def->name);
    if ((rc = parse_args(def, app, argc, argv, &opt)))
        return rc > 0 ? 0 : 2;
    if (sw_daemon_init() || sw_crypto_init()) {
        sw_log_error("initialisation failed");
        return 1;
    }
    if (sw_db_open(opt.db_url, (unsigned)opt.pool, &db, &err)) {
        sw_log_error("database: %s", err.msg);
        return 1;
    }
    hctx.db = db;
    rc = 1;
    if (migrate_with_retry(def, app, db) || (def->prepare && def->prepare(app, db)))
        goto out;

    struct sw_http_server_config cfg = {
        .addr = opt.addr, .service = def->name, .version = SW_VERSION,
        .threads = (unsigned)opt.threads, .routes = def->routes, .n_routes = def->n_routes,
        .app = app, .hook_app = &hctx, .health_check = health_check,
        .write_metrics = write_metrics,
    };
    if (sw_http_server_start(&cfg, &srv, &err)) {
        sw_log_error("http: %s", err.msg);
        goto out;
    }
    if (def->periodic) {
        pthread_mutex_init(&per.mu, NULL);
        pthread_cond_init(&per.cv, NULL);
        if (pthread_create(&per_thread, NULL, periodic_main, &per) != 0) {
            sw_log_error("cannot start the periodic task");
            goto out;
        }
        per_started = true;
    }
    if (def->start) {
        if (def->start(app)) {
            sw_log_error("start-up failed");
            goto out;
        }
        app_started = true;
    }
    sw_log_info("%s %s listening on %s (port %u)", def->name, SW_VERSION, opt.addr,
                sw_http_server_port(srv));
    sw_log_info("stopping on signal %d", sw_daemon_wait());
    rc = 0;
out:
    sw_http_server_stop(srv);
    if (app_started && def->stop)
        def->stop(app);
    if (per_started) {
        pthread_mutex_lock(&per.mu);
        per.stop = 1;
        pthread_cond_signal(&per.cv);
        pthread_mutex_unlock(&per.mu);
        pthread_join(per_thread, NULL);
    }
    sw_db_close(db);
    sw_log_info("stopped");
    return rc;
}
