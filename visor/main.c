/* skywire-visor — the data-plane daemon: transports to other visors, the local API.
 *
 *   skywire-visor [CONFIG]        (default ./skywire-config.json)
 *
 * Life: load and validate the config (exit 2 naming the bad field), open the store and the
 * stcp listener, start the discovery worker, the messaging client and the API, run the
 * event loop on its own thread, and wait for SIGTERM/SIGINT on the main thread. Stopping
 * posts status down for every transport that is up, closes them, persists the store,
 * drains the discovery queue for at most 5 s and exits 0. */
#include "visor/router.h"
#include "common/daemon.h"
#include "common/http_client.h"
#include "common/log.h"
#include "common/version.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sodium.h>
#include <event2/thread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DRAIN_MS 5000

int64_t visor_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t visor_unix_now(void) { return (int64_t)time(NULL); }

static void usage(FILE *f)
{
    fprintf(f, "usage: skywire-visor [CONFIG]\n"
               "  CONFIG   the visor's config file (default ./%s);\n"
               "           create one with: skywire-cli node gen-config -o FILE\n"
               "  --help, --version\n"
               "environment: SKYWIRE_LOG_LEVEL=debug|info|warn|error overrides log_level\n",
            VISOR_DEFAULT_CONFIG);
}

/* mkdir -p with mode 0700 for the parts we create. */
static int make_dirs(const char *path, struct sw_error *err)
{
    char buf[PATH_MAX];
    size_t n = strlen(path);

    if (n >= sizeof(buf))
        return sw_error_set(err, SW_ERANGE, "data_dir is too long");
    memcpy(buf, path, n + 1);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0700) && errno != EEXIST)
            return sw_error_set(err, SW_EIO, "data_dir %s: %s", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0700) && errno != EEXIST)
        return sw_error_set(err, SW_EIO, "data_dir %s: %s", buf, strerror(errno));
    return SW_OK;
}

/* One visor per data directory: a second one would overwrite the first one's store. The
 * lock lives as long as the process (the descriptor is never closed). */
static int lock_data_dir(const char *dir, struct sw_error *err)
{
    char path[PATH_MAX + 16];
    int fd;

    snprintf(path, sizeof(path), "%s/visor.lock", dir);
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return sw_error_set(err, SW_EIO, "%s: %s", path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        close(fd);
        return sw_error_set(err, SW_EEXIST, "data_dir %s is in use by another visor", dir);
    }
    return SW_OK;
}

/* Lets a visor hold many transports: the soft descriptor limit goes up to the hard one. */
static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    tm_tick(arg);
}

static void *loop_main(void *arg)
{
    struct visor *v = arg;
    event_base_dispatch(v->base);
    return NULL;
}

static int load_config(struct visor *v, const char *path)
{
    struct sw_error err = { 0 };
    struct stat st;
    const char *env = getenv("SKYWIRE_LOG_LEVEL");

    if (visor_config_load(&v->cfg, path, &err)) {
        fprintf(stderr, "skywire-visor: %s\n", err.msg);
        return -1;
    }
    if (!env || !*env)
        sw_log_set_level(v->cfg.log_level);
    if (stat(path, &st) == 0 && (st.st_mode & 077))
        sw_log_warn("config %s holds the secret key and is readable by others (mode %03o); chmod 600 it",
                    path, (unsigned)(st.st_mode & 0777));
    return 0;
}

/* Everything up to (not including) the loop thread. */
static int setup(struct visor *v)
{
    struct timeval one = { 1, 0 };
    struct sw_error err = { 0 };

    v->started_at = visor_unix_now();
    if (make_dirs(v->cfg.data_dir, &err) || lock_data_dir(v->cfg.data_dir, &err) ||
        api_token_init(v->cfg.data_dir, v->api_token, &err))
        goto fail;
    if (!(v->base = event_base_new()) || tm_init(v) || cmdq_init(&v->q, v)) {
        sw_error_set(&err, SW_ENOMEM, "cannot create the event loop");
        goto fail;
    }
    if (resolve_start(v)) {
        sw_error_set(&err, SW_ENOMEM, "cannot create the resolver");
        goto fail;
    }
    if (tpd_start(v, &v->tpd)) {
        sw_error_set(&err, SW_EIO, "cannot start the discovery worker");
        goto fail;
    }
    if (router_start(v, &err) || store_load(v, &err) || stcp_listen(v, &err) ||
        dmsg_start(v, &err) || router_setup_start(v, &err))
        goto fail;
    if (appsrv_start(v, &err)) /* routing still forwards without local apps */
        sw_log_warn("no app socket: %s", err.msg);
    if (apps_start(v, &err))
        goto fail;
    if (!(v->tick = event_new(v->base, -1, EV_PERSIST, tick_cb, v)) || event_add(v->tick, &one)) {
        sw_error_set(&err, SW_ENOMEM, "cannot create the tick timer");
        goto fail;
    }
    v->last_save_ms = v->last_refresh_ms = visor_now_ms();
    if (api_start(v, &err) || hvlink_start(v, &err))
        goto fail;
    return 0;
fail:
    sw_log_error("%s", err.msg);
    return -1;
}

static void teardown(struct visor *v)
{
    hvlink_stop(v);
    api_stop(v);
    apps_stop(v);
    if (v->router)
        group_free_all(v); /* the loop has stopped: wakes app requests waiting for a handshake */
    appsrv_stop(v);
    router_setup_stop(v);
    dmsg_stop(v);
    tpd_stop(v->tpd, DRAIN_MS);
    v->tpd = NULL;
    stcp_close(v);
    link_free_all(v);
    router_stop(v);
    tm_free(v);
    if (v->tick)
        event_free(v->tick);
    resolve_stop(v);
    if (v->q.ev)
        cmdq_free(&v->q);
    if (v->base)
        event_base_free(v->base);
    visor_config_free(&v->cfg);
    sodium_memzero(v->api_token, sizeof(v->api_token));
}

/* Stops the loop from the main thread: the loop runs the shutdown, then exits. */
static void stop_loop(struct visor *v, pthread_t th)
{
    struct vcmd *c = vcmd_new(VCMD_SHUTDOWN);
    if (!c || cmdq_post(&v->q, c))
        event_base_loopbreak(v->base);
    pthread_join(th, NULL);
}

int main(int argc, char **argv)
{
    const char *path = VISOR_DEFAULT_CONFIG;
    struct visor *v;
    pthread_t th;
    char pk[SW_PK_HEX_LEN + 1];
    int sig, rc = 1;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--version") == 0) {
            printf("skywire-visor %s\n", SW_VERSION);
            return 0;
        } else if (argv[i][0] == '-' || i != argc - 1) {
            usage(stderr);
            return 2;
        }
        path = argv[i];
    }
    sw_log_init("skywire-visor");
    if (sw_daemon_init() || sw_crypto_init() || sw_http_global_init() || evthread_use_pthreads()) {
        fprintf(stderr, "skywire-visor: initialisation failed\n");
        return 1;
    }
    if (!(v = calloc(1, sizeof(*v))))
        return 1;
    if (load_config(v, path)) {
        free(v);
        return 2;
    }
    raise_nofile();
    if (setup(v))
        goto out;
    sw_pk_to_hex(&v->cfg.kp.pk, pk);
    sw_log_info("started: public key %s, stcp %s, api http://%s, data %s, %zu transports", pk,
                v->stcp_addr[0] ? v->stcp_addr : "off", v->cfg.api_listen, v->cfg.data_dir,
                v->n_transports);
    if (pthread_create(&th, NULL, loop_main, v)) {
        sw_log_error("cannot start the loop thread");
        goto out;
    }
    sig = sw_daemon_wait();
    sw_log_info("%s received, stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    hvlink_stop(v);
    api_stop(v);
    stop_loop(v, th);
    rc = 0;
out:
    teardown(v);
    free(v);
    if (rc == 0)
        sw_log_info("stopped");
    return rc;
}
