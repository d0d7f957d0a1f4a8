#include "common/service.h"
#include "common/backoff.h"
#include "common/cond.h"
#include "common/daemon.h"
#include "common/daemon_main.h"
#include "common/keys.h"
#include "common/log.h"
#include "common/version.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_OPTIONS 32

/* A running service: the daemon core's app (common/daemon_main.h). */
struct service {
    struct sw_db *db; /* first member: health_check reads it through a struct sw_db ** */
    const struct sw_service_def *def;
    void *app;
    const char *addr, *db_url;
    long threads, pool;
    struct sw_http_server_config http; /* the server keeps a pointer to it */
    struct sw_http_server *srv;
    struct periodic *per;
    bool app_started;
    char addr_help[96], footer[512];
    struct sw_opt opts[MAX_OPTIONS];
};

/* The common options followed by the service's. */
static int build_options(struct service *s)
{
    const struct sw_opt common[] = {
        SW_OPT_STR("addr", "HOST:PORT", s->addr_help, &s->addr),
        SW_OPT_STR("db", "URL", "PostgreSQL URL (default: $DATABASE_URL)", &s->db_url),
        SW_OPT_NUM("threads", "N", "HTTP worker threads (default 8)", &s->threads, 1, 256),
        SW_OPT_NUM("db-pool", "N", "PostgreSQL connections (default: threads)", &s->pool, 1, 256),
    };
    size_t n = sizeof(common) / sizeof(common[0]);

    snprintf(s->addr_help, sizeof(s->addr_help), "listen address (default %s)", s->def->default_addr);
    snprintf(s->footer, sizeof(s->footer), "%senvironment: DATABASE_URL, SKYWIRE_LOG_LEVEL=debug|info|warn|error\n",
             s->def->usage_note ? s->def->usage_note : "");
    memcpy(s->opts, common, sizeof(common));
    for (const struct sw_opt *o = s->def->options; o && o->name; o++) {
        if (n + 1 >= MAX_OPTIONS)
            return -1;
        s->opts[n++] = *o;
    }
    s->opts[n] = (struct sw_opt)SW_OPT_END;
    return 0;
}

static int configure(void *arg, int argc, char **argv, struct sw_error *err)
{
    struct service *s = arg;
    if (!s->db_url || !*s->db_url)
        return sw_error_set(err, SW_EINVAL, "no database: pass --db URL or set DATABASE_URL");
    if (!s->pool)
        s->pool = s->threads;
    return SW_OK;
}

struct periodic {
    const struct sw_service_def *def;
    void *app;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
    pthread_t thread;
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
        sw_cond_deadline((int64_t)*p->def->periodic_interval_s * 1000, &until);
        while (!p->stop && pthread_cond_timedwait(&p->cv, &p->mu, &until) == 0)
            ;
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* Applies migrations, retrying while the database is unreachable. */
static int migrate_with_retry(const struct sw_service_def *def, void *app, struct sw_db *db)
{
    struct sw_backoff backoff = SW_BACKOFF_INIT(500, 5000, false);
    for (;;) {
        struct sw_error err = { 0 };
        int rc = def->migrate(app, db, &err);
        long delay_ms;
        if (rc == SW_OK)
            return SW_OK;
        if (rc != SW_EDB) {
            sw_log_error("schema migration failed: %s", err.msg);
            return rc;
        }
        delay_ms = (long)sw_backoff_next(&backoff);
        sw_log_warn("database not reachable (%s); retrying in %ld ms", err.msg, delay_ms);
        if (sw_daemon_sleep(delay_ms))
            return SW_EIO;
    }
}

static int health_check(void *app, struct sw_error *err)
{
    struct sw_db **db = app;
    return sw_db_ping(*db, err);
}

static void write_metrics(void *arg, struct sw_buf *out)
{
    struct service *s = arg;
    if (s->def->write_metrics)
        s->def->write_metrics(s->app, out);
}

static int start_periodic(struct service *s, struct sw_error *err)
{
    if (!(s->per = calloc(1, sizeof(*s->per))))
        return sw_error_set(err, SW_ENOMEM, "cannot start the periodic task");
    *s->per = (struct periodic){ .def = s->def, .app = s->app };
    pthread_mutex_init(&s->per->mu, NULL);
    sw_cond_init(&s->per->cv);
    if (pthread_create(&s->per->thread, NULL, periodic_main, s->per) != 0) {
        free(s->per);
        s->per = NULL;
        return sw_error_set(err, SW_EIO, "cannot start the periodic task");
    }
    return SW_OK;
}

static void stop_periodic(struct service *s)
{
    if (!s->per)
        return;
    pthread_mutex_lock(&s->per->mu);
    s->per->stop = 1;
    pthread_cond_signal(&s->per->cv);
    pthread_mutex_unlock(&s->per->mu);
    pthread_join(s->per->thread, NULL);
    free(s->per);
    s->per = NULL;
}

/* The pool, migrations, statements, HTTP, the periodic task, then the service's start(). */
static int start(void *arg, struct sw_error *err)
{
    struct service *s = arg;
    const struct sw_service_def *def = s->def;
    struct sw_error why = { 0 };
    int rc;

    if ((rc = sw_db_open(s->db_url, (unsigned)s->pool, &s->db, &why)))
        return sw_error_set(err, rc, "database: %s", why.msg);
    if ((rc = migrate_with_retry(def, s->app, s->db)))
        return sw_error_set(err, rc, "the schema was not applied");
    if (def->prepare && def->prepare(s->app, s->db))
        return sw_error_set(err, SW_EDB, "preparing statements failed");
    s->http = (struct sw_http_server_config){
        .addr = s->addr, .service = def->name, .version = SW_VERSION,
        .threads = (unsigned)s->threads, .routes = def->routes, .n_routes = def->n_routes,
        .app = s->app, .hook_app = s, .health_check = health_check,
        .write_metrics = write_metrics,
    };
    if ((rc = sw_http_server_start(&s->http, &s->srv, &why)))
        return sw_error_set(err, rc, "http: %s", why.msg);
    if (def->periodic && (rc = start_periodic(s, err)))
        return rc;
    if (def->start && def->start(s->app))
        return sw_error_set(err, SW_EIO, "start-up failed");
    s->app_started = def->start != NULL;
    sw_log_info("%s %s listening on %s (port %u)", def->name, SW_VERSION, s->addr,
                sw_http_server_port(s->srv));
    return SW_OK;
}

static void stop(void *arg)
{
    struct service *s = arg;
    sw_http_server_stop(s->srv);
    if (s->app_started && s->def->stop)
        s->def->stop(s->app);
    stop_periodic(s);
    sw_db_close(s->db);
}

int sw_service_main(const struct sw_service_def *def, void *app, int argc, char **argv)
{
    static struct service s; /* one per process; its options point into it */
    struct sw_daemon_def d = {
        .cli = { .prog = def->name, .opts = s.opts, .footer = s.footer },
        .configure = configure,
        .start = start,
        .stop = stop,
    };

    s = (struct service){ .def = def, .app = app, .addr = def->default_addr,
                          .db_url = getenv("DATABASE_URL"), .threads = 8 };
    if (build_options(&s)) {
        fprintf(stderr, "%s: too many options\n", def->name);
        return 2;
    }
    return sw_daemon_main(&d, &s, argc, argv);
}
