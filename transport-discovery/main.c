/* transport-discovery — REST + PostgreSQL registry of transports between visors. */
#include "common/daemon.h"
#include "common/db.h"
#include "common/http_server.h"
#include "common/keys.h"
#include "common/log.h"
#include "common/version.h"
#include "transport-discovery/api.h"

#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct td_options {
    const char *addr;
    const char *db_url;
    long ttl_s;
    long purge_s;
    long reap_interval_s;
    long threads;
    long pool;
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: transport-discovery [options]\n"
            "  --addr HOST:PORT      listen address (default :9091 on all interfaces)\n"
            "  --db URL              PostgreSQL URL (default: $DATABASE_URL)\n"
            "  --ttl SECONDS         transports not refreshed within this are down (default 300)\n"
            "  --purge-after SECONDS delete transports not refreshed within this (default 86400)\n"
            "  --reap-interval SECS  how often stale transports are marked down (default 10)\n"
            "  --threads N           HTTP worker threads (default 8)\n"
            "  --db-pool N           PostgreSQL connections (default: threads)\n"
            "  --version             print the version\n"
            "  --help                this text\n"
            "environment: SKYWIRE_LOG_LEVEL=debug|info|warn|error, DATABASE_URL\n");
}

static int parse_long(const char *s, long min, long max, long *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static int parse_args(int argc, char **argv, struct td_options *o)
{
    static const struct option longopts[] = {
        { "addr", required_argument, NULL, 'a' },   { "db", required_argument, NULL, 'd' },
        { "ttl", required_argument, NULL, 't' },    { "purge-after", required_argument, NULL, 'p' },
        { "reap-interval", required_argument, NULL, 'r' },
        { "threads", required_argument, NULL, 'n' }, { "db-pool", required_argument, NULL, 'P' },
        { "help", no_argument, NULL, 'h' },         { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    int c;
    *o = (struct td_options){ "0.0.0.0:9091", getenv("DATABASE_URL"), 300, 86400, 10, 8, 0 };
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        const char *bad = NULL;
        switch (c) {
        case 'a': o->addr = optarg; break;
        case 'd': o->db_url = optarg; break;
        case 't': if (parse_long(optarg, 1, 86400 * 365, &o->ttl_s)) bad = "--ttl"; break;
        case 'p': if (parse_long(optarg, 1, 86400 * 3650, &o->purge_s)) bad = "--purge-after"; break;
        case 'r': if (parse_long(optarg, 1, 3600, &o->reap_interval_s)) bad = "--reap-interval"; break;
        case 'n': if (parse_long(optarg, 1, 256, &o->threads)) bad = "--threads"; break;
        case 'P': if (parse_long(optarg, 1, 256, &o->pool)) bad = "--db-pool"; break;
        case 'h': usage(stdout); exit(0);
        case 'V': printf("transport-discovery %s\n", SW_VERSION); exit(0);
        default: usage(stderr); return -1;
        }
        if (bad) {
            fprintf(stderr, "transport-discovery: %s: invalid value '%s'\n", bad, optarg);
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "transport-discovery: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    if (!o->db_url || !*o->db_url) {
        fprintf(stderr, "transport-discovery: no database: pass --db URL or set DATABASE_URL\n");
        return -1;
    }
    if (!o->pool)
        o->pool = o->threads;
    return 0;
}

/* The reaper marks stale transports down and refreshes the gauges. */
struct reaper {
    struct td_app *app;
    long interval_s, purge_s;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
};

static void *reaper_main(void *arg)
{
    struct reaper *r = arg;
    struct timespec until;
    pthread_mutex_lock(&r->mu);
    while (!r->stop) {
        struct td_counts counts;
        struct sw_error err = { 0 };
        pthread_mutex_unlock(&r->mu);
        if (td_store_reap(&r->app->store, r->purge_s, &counts, &err) == SW_OK) {
            atomic_store(&r->app->transports_total, counts.total);
            atomic_store(&r->app->transports_up, counts.up);
            atomic_fetch_add(&r->app->expired_total, (uint64_t)counts.expired_now);
            atomic_fetch_add(&r->app->purged_total, (uint64_t)counts.purged_now);
            if (counts.expired_now || counts.purged_now)
                sw_log_info("reaper: %lld transport(s) marked down after the TTL, %lld purged",
                            (long long)counts.expired_now, (long long)counts.purged_now);
        } else {
            sw_log_warn("reaper: %s", err.msg);
        }
        pthread_mutex_lock(&r->mu);
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += r->interval_s;
        while (!r->stop && pthread_cond_timedwait(&r->cv, &r->mu, &until) == 0)
            ;
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

/* Applies migrations, retrying while the database is unreachable; false if told to stop. */
static int migrate_with_retry(struct td_app *app)
{
    long delay_ms = 500;
    for (;;) {
        struct sw_error err = { 0 };
        int rc = td_store_migrate(&app->store, &err);
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

int main(int argc, char **argv)
{
    struct td_options opt;
    struct td_app app;
    struct sw_error err = { 0 };
    struct sw_http_server *srv = NULL;
    struct reaper reaper = { .app = &app };
    pthread_t reaper_thread;
    bool reaper_started = false;
    int rc = 1;

    sw_log_init("transport-discovery");
    if (parse_args(argc, argv, &opt))
        return 2;
    if (sw_daemon_init() || sw_crypto_init()) {
        sw_log_error("initialisation failed");
        return 1;
    }
    memset(&app, 0, sizeof(app));
    app.store.ttl_s = opt.ttl_s;
    if (sw_db_open(opt.db_url, (unsigned)opt.pool, &app.store.db, &err)) {
        sw_log_error("database: %s", err.msg);
        return 1;
    }
    if (migrate_with_retry(&app) || td_store_prepare(&app.store) ||
        sw_nonce_store_init(&app.nonces, app.store.db, "td_nonces"))
        goto out;

    struct sw_http_server_config cfg = {
        .addr = opt.addr, .service = "transport-discovery", .version = SW_VERSION,
        .threads = (unsigned)opt.threads, .routes = td_routes, .n_routes = td_n_routes,
        .app = &app, .health_check = td_health_check, .write_metrics = td_write_metrics,
    };
    if (sw_http_server_start(&cfg, &srv, &err)) {
        sw_log_error("http: %s", err.msg);
        goto out;
    }
    reaper.interval_s = opt.reap_interval_s;
    reaper.purge_s = opt.purge_s;
    pthread_mutex_init(&reaper.mu, NULL);
    pthread_cond_init(&reaper.cv, NULL);
    if (pthread_create(&reaper_thread, NULL, reaper_main, &reaper) != 0) {
        sw_log_error("cannot start the reaper thread");
        goto out;
    }
    reaper_started = true;
    sw_log_info("listening on %s (port %u), ttl %lds, version %s", opt.addr,
                sw_http_server_port(srv), opt.ttl_s, SW_VERSION);
    sw_log_info("stopping on signal %d", sw_daemon_wait());
    rc = 0;
out:
    sw_http_server_stop(srv);
    if (reaper_started) {
        pthread_mutex_lock(&reaper.mu);
        reaper.stop = 1;
        pthread_cond_signal(&reaper.cv);
        pthread_mutex_unlock(&reaper.mu);
        pthread_join(reaper_thread, NULL);
    }
    sw_db_close(app.store.db);
    sw_log_info("stopped");
    return rc;
}
