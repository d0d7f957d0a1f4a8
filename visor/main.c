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
#include "common/daemon_main.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/network.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DRAIN_MS 5000

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
    visor_tm_tick(arg);
}

static void *loop_main(void *arg)
{
    struct visor *v = arg;
    event_base_dispatch(v->base);
    return NULL;
}

static int load_config(struct visor *v, const char *path, struct sw_error *err)
{
    struct stat st;
    const char *env = getenv("SKYWIRE_LOG_LEVEL");
    int rc;

    if ((rc = visor_config_load(&v->cfg, path, err)))
        return rc;
    if (!env || !*env)
        sw_log_set_level(v->cfg.log_level);
    if (stat(path, &st) == 0 && (st.st_mode & 077))
        sw_log_warn("config %s holds the secret key and is readable by others (mode %03o); chmod 600 it",
                    path, (unsigned)(st.st_mode & 0777));
    return SW_OK;
}

/* A private network (config "network"): our certificate must be there, valid and ours. */
static int open_network(struct visor *v, struct sw_error *err)
{
    const struct sw_network_opts o = {
        .network_pk = v->cfg.net_pk,
        .self = &v->cfg.kp.pk,
        .cert_file = v->cfg.net_cert_file,
        .self_roles = SW_ROLE_BIT(SW_ROLE_VISOR),
        .revocations = v->cfg.net_revocations,
        .refresh_ms = v->cfg.net_refresh_ms,
    };
    const struct sw_cert *c;
    struct sw_error e = { 0 };
    char date[32];
    time_t until;
    struct tm tm;
    int rc;

    if ((rc = sw_network_open(&v->net, &o, &e)))
        return sw_error_set(err, rc, "network: %s", e.msg);
    if (!(c = sw_network_own_cert_parsed(v->net)))
        return SW_OK;
    until = (time_t)c->not_after;
    gmtime_r(&until, &tm);
    strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", &tm);
    sw_log_info("private network %s: member \"%s\" (role %s, groups \"%s\") until %s; revocations "
                "from %s", v->cfg.net_pk, c->name, sw_role_name(c->role), c->groups, date,
                v->cfg.net_revocations[0] ? v->cfg.net_revocations : "nowhere");
    return SW_OK;
}

/* Everything up to (not including) the loop thread. */
static int setup(struct visor *v)
{
    struct timeval one = { 1, 0 };
    struct sw_error err = { 0 };

    v->started_at = sw_unix_ms() / 1000;
    if (open_network(v, &err))
        goto fail;
    if (sw_make_dirs(v->cfg.data_dir, 0700, "data_dir", &err) || lock_data_dir(v->cfg.data_dir, &err) ||
        visor_api_token_init(v->cfg.data_dir, v->api_token, &err))
        goto fail;
    if (!(v->base = event_base_new()) || visor_tm_init(v) || visor_cmdq_init(&v->q, v)) {
        sw_error_set(&err, SW_ENOMEM, "cannot create the event loop");
        goto fail;
    }
    if (visor_resolve_start(v)) {
        sw_error_set(&err, SW_ENOMEM, "cannot create the resolver");
        goto fail;
    }
    if (visor_tpd_start(v, &v->tpd)) {
        sw_error_set(&err, SW_EIO, "cannot start the discovery worker");
        goto fail;
    }
    if (visor_router_start(v, &err) || visor_store_load(v, &err) || visor_stcp_listen(v, &err) ||
        visor_dmsg_start(v, &err) || visor_router_setup_start(v, &err))
        goto fail;
    if (visor_appsrv_start(v, &err)) /* routing still forwards without local apps */
        sw_log_warn("no app socket: %s", err.msg);
    if (visor_apps_start(v, &err))
        goto fail;
    if (!(v->tick = event_new(v->base, -1, EV_PERSIST, tick_cb, v)) || event_add(v->tick, &one)) {
        sw_error_set(&err, SW_ENOMEM, "cannot create the tick timer");
        goto fail;
    }
    v->last_save_ms = v->last_refresh_ms = sw_mono_ms();
    if (visor_api_start(v, &err) || visor_hvlink_start(v, &err))
        goto fail;
    return 0;
fail:
    sw_log_error("%s", err.msg);
    return -1;
}

static void teardown(struct visor *v)
{
    visor_hvlink_stop(v);
    visor_api_stop(v);
    visor_apps_stop(v);
    if (v->router)
        visor_group_free_all(v); /* the loop has stopped: wakes app requests waiting for a handshake */
    visor_appsrv_stop(v);
    visor_router_setup_stop(v);
    visor_dmsg_stop(v);
    visor_tpd_stop(v->tpd, DRAIN_MS);
    v->tpd = NULL;
    visor_stcp_close(v);
    visor_link_free_all(v);
    visor_router_stop(v);
    visor_tm_free(v);
    if (v->tick)
        event_free(v->tick);
    visor_resolve_stop(v);
    if (v->q.ev)
        visor_cmdq_free(&v->q);
    if (v->base)
        event_base_free(v->base);
    sw_network_close(v->net); /* after everything that reads it */
    v->net = NULL;
    visor_config_free(&v->cfg);
    sodium_memzero(v->api_token, sizeof(v->api_token));
}

/* Stops the loop from the main thread: the loop runs the shutdown, then exits. */
static void stop_loop(struct visor *v, pthread_t th)
{
    struct visor_cmd *c = visor_cmd_new(VISOR_CMD_SHUTDOWN);
    if (!c || visor_cmdq_post(&v->q, c))
        event_base_loopbreak(v->base);
    pthread_join(th, NULL);
}

/* The daemon core's app: the visor and its loop thread. */
struct visor_daemon {
    struct visor *v;
    pthread_t loop;
    bool loop_running;
};

static int configure(void *arg, int argc, char **argv, struct sw_error *err)
{
    struct visor_daemon *d = arg;
    return load_config(d->v, argc ? argv[0] : VISOR_DEFAULT_CONFIG, err);
}

static int start(void *arg, struct sw_error *err)
{
    struct visor_daemon *d = arg;
    struct visor *v = d->v;
    char pk[SW_PK_HEX_LEN + 1];

    raise_nofile();
    if (setup(v))
        return SW_EIO; /* setup logged why */
    sw_pk_to_hex(&v->cfg.kp.pk, pk);
    sw_log_info("started: public key %s, stcp %s, api http://%s, data %s, %zu transports", pk,
                v->stcp_addr[0] ? v->stcp_addr : "off", v->cfg.api_listen, v->cfg.data_dir,
                v->n_transports);
    if (pthread_create(&d->loop, NULL, loop_main, v))
        return sw_error_set(err, SW_EIO, "cannot start the loop thread");
    d->loop_running = true;
    return SW_OK;
}

static void stop(void *arg)
{
    struct visor_daemon *d = arg;
    if (d->loop_running) {
        visor_hvlink_stop(d->v);
        visor_api_stop(d->v);
        stop_loop(d->v, d->loop);
    }
    teardown(d->v);
}

int main(int argc, char **argv)
{
    static struct visor_daemon d;
    const struct sw_daemon_def def = {
        .cli = { .prog = "skywire-visor", .synopsis = "[CONFIG]", .max_args = 1,
                 .args_help = "  CONFIG   the visor's config file (default ./" VISOR_DEFAULT_CONFIG ");\n"
                              "           create one with: skywire-cli node gen-config -o FILE\n",
                 .footer = "environment: SKYWIRE_LOG_LEVEL=debug|info|warn|error overrides log_level\n" },
        .libs = SW_DAEMON_CURL | SW_DAEMON_EVENT_THREADS,
        .configure = configure,
        .start = start,
        .stop = stop,
    };
    int rc;

    if (!(d.v = calloc(1, sizeof(*d.v))))
        return 1;
    rc = sw_daemon_main(&def, &d, argc, argv);
    free(d.v);
    return rc;
}
