/* appsrv_proc.c — apps as child processes of the visor (config "apps", docs/routing.md §5),
 * on the loop thread.
 *
 * An app "NAME" runs the executable NAME from the visor's own directory (else from PATH)
 * with its args and the environment SKYWIRE_APP_SOCKET, SKYWIRE_APP_NAME, SKYWIRE_APP_PORT,
 * SKYWIRE_VISOR_PK; stdout and stderr go to data_dir/NAME.log. Apps with auto_start are
 * started with the visor. Restart policy: none — an app that exits stays "exited" with its
 * code (or signal) until started again. Stop sends SIGTERM, then SIGKILL after 5 s. */
#include "visor/router.h"
#include "common/json.h"
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define APP_KILL_AFTER_MS 5000

enum app_state { APP_STOPPED, APP_RUNNING, APP_EXITED };

struct app_proc {
    const struct visor_app_config *cfg;
    bool auto_start;
    enum app_state state;
    pid_t pid;
    int exit_code;        /* >= 0 exit status; < 0: -signal */
    int64_t started_at, stopped_at;
    int64_t kill_at_ms;   /* monotonic SIGKILL deadline while stopping (0: none) */
};

struct visor_app_procs {
    size_t n;
    struct app_proc *a;
    struct event *tick;
};

static const char *state_name(enum app_state s)
{
    return s == APP_RUNNING ? "running" : s == APP_EXITED ? "exited" : "stopped";
}

static int app_spawn(struct visor *v, struct app_proc *p, struct sw_error *err)
{
    char exe[PATH_MAX + 128], self[PATH_MAX], log[PATH_MAX + 128], sock[PATH_MAX + 32];
    char e_sock[PATH_MAX + 64], e_name[128], e_port[40], e_pk[100], pk[SW_PK_HEX_LEN + 1];
    char *argv[VISOR_APP_ARGS_MAX + 2], **envp = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t mask, defs;
    size_t nenv = 0, k = 0;
    ssize_t n;
    int rc;

    n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    self[n > 0 ? n : 0] = '\0';
    if (n > 0 && strrchr(self, '/'))
        *strrchr(self, '/') = '\0';
    snprintf(exe, sizeof(exe), "%s/%s", n > 0 ? self : ".", p->cfg->name);
    if (access(exe, X_OK) != 0)
        snprintf(exe, sizeof(exe), "%s", p->cfg->name); /* PATH */
    snprintf(log, sizeof(log), "%s/%s.log", v->cfg.data_dir, p->cfg->name);
    snprintf(sock, sizeof(sock), "%s/%s", v->cfg.data_dir, VISOR_APPSRV_SOCKET_NAME);
    sw_pk_to_hex(&v->cfg.kp.pk, pk);
    snprintf(e_sock, sizeof(e_sock), "SKYWIRE_APP_SOCKET=%s", sock);
    snprintf(e_name, sizeof(e_name), "SKYWIRE_APP_NAME=%s", p->cfg->name);
    snprintf(e_port, sizeof(e_port), "SKYWIRE_APP_PORT=%u", p->cfg->port);
    snprintf(e_pk, sizeof(e_pk), "SKYWIRE_VISOR_PK=%s", pk);
    argv[k++] = (char *)p->cfg->name;
    for (size_t i = 0; i < p->cfg->n_args; i++)
        argv[k++] = (char *)p->cfg->args[i];
    argv[k] = NULL;
    while (environ[nenv])
        nenv++;
    if (!(envp = calloc(nenv + 5, sizeof(*envp))))
        return sw_error_set(err, SW_ENOMEM, "out of memory");
    k = 0;
    for (size_t i = 0; i < nenv; i++)
        if (strncmp(environ[i], "SKYWIRE_APP_", 12) != 0 && strncmp(environ[i], "SKYWIRE_VISOR_PK=", 17) != 0)
            envp[k++] = environ[i];
    envp[k++] = e_sock;
    envp[k++] = e_name;
    envp[k++] = e_port;
    envp[k++] = e_pk;
    envp[k] = NULL;
    /* the visor blocks SIGTERM/SIGINT (sigwait) and ignores SIGPIPE: the app must not inherit that */
    posix_spawnattr_init(&attr);
    sigemptyset(&mask);
    sigemptyset(&defs);
    sigaddset(&defs, SIGPIPE);
    sigaddset(&defs, SIGTERM);
    sigaddset(&defs, SIGINT);
    posix_spawnattr_setsigmask(&attr, &mask);
    posix_spawnattr_setsigdefault(&attr, &defs);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0600);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    rc = exe[0] == '/' ? posix_spawn(&p->pid, exe, &fa, &attr, argv, envp)
                       : posix_spawnp(&p->pid, exe, &fa, &attr, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    free(envp);
    if (rc)
        return sw_error_set(err, SW_EIO, "cannot start %s: %s", exe, strerror(rc));
    p->state = APP_RUNNING;
    p->started_at = sw_unix_ms() / 1000;
    p->kill_at_ms = 0;
    sw_log_info("app %s started (pid %d, port %u, log %s)", p->cfg->name, (int)p->pid, p->cfg->port, log);
    return SW_OK;
}

static void reap(struct visor *v, struct visor_app_procs *ap)
{
    for (size_t i = 0; i < ap->n; i++) {
        struct app_proc *p = &ap->a[i];
        int st;
        if (p->state != APP_RUNNING)
            continue;
        if (waitpid(p->pid, &st, WNOHANG) == p->pid) {
            p->exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
            p->state = p->kill_at_ms ? APP_STOPPED : APP_EXITED;
            p->stopped_at = sw_unix_ms() / 1000;
            sw_log_info("app %s (pid %d) %s: %s %d", p->cfg->name, (int)p->pid,
                        p->kill_at_ms ? "stopped" : "exited", p->exit_code >= 0 ? "code" : "signal",
                        p->exit_code >= 0 ? p->exit_code : -p->exit_code);
            p->pid = 0;
            p->kill_at_ms = 0;
        } else if (p->kill_at_ms && sw_ms_left(p->kill_at_ms) == 0) {
            kill(p->pid, SIGKILL);
        }
    }
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    struct visor *v = arg;
    reap(v, v->router->procs);
}

int visor_apps_start(struct visor *v, struct sw_error *err)
{
    struct visor_app_procs *ap;
    struct timeval t = { 0, 200000 };

    if (!v->router)
        return SW_OK;
    if (!(ap = calloc(1, sizeof(*ap))) || !(ap->a = calloc(v->cfg.n_apps + 1, sizeof(*ap->a)))) {
        free(ap);
        return sw_error_set(err, SW_ENOMEM, "out of memory");
    }
    ap->n = v->cfg.n_apps;
    v->router->procs = ap;
    if (!(ap->tick = event_new(v->base, -1, EV_PERSIST, tick_cb, v)) || event_add(ap->tick, &t))
        return sw_error_set(err, SW_ENOMEM, "cannot create the app timer");
    for (size_t i = 0; i < ap->n; i++) {
        struct sw_error e = { 0 };
        ap->a[i].cfg = &v->cfg.apps[i];
        ap->a[i].auto_start = v->cfg.apps[i].auto_start;
        if (ap->a[i].auto_start && app_spawn(v, &ap->a[i], &e))
            sw_log_warn("app %s: %s", v->cfg.apps[i].name, e.msg);
    }
    return SW_OK;
}

void visor_apps_stop(struct visor *v)
{
    struct visor_app_procs *ap = v->router ? v->router->procs : NULL;
    int64_t until = sw_deadline_ms(3000);
    bool any;

    if (!ap)
        return;
    for (size_t i = 0; i < ap->n; i++)
        if (ap->a[i].state == APP_RUNNING) {
            kill(ap->a[i].pid, SIGTERM);
            ap->a[i].kill_at_ms = until;
        }
    do {
        reap(v, ap);
        any = false;
        for (size_t i = 0; i < ap->n; i++)
            any |= ap->a[i].state == APP_RUNNING;
        if (any)
            usleep(20000);
    } while (any && sw_ms_left(until + 1000) > 0);
    if (ap->tick)
        event_free(ap->tick);
    free(ap->a);
    free(ap);
    v->router->procs = NULL;
}

static struct json_object *app_json(const struct app_proc *p)
{
    struct json_object *o = json_object_new_object();
    json_object_object_add(o, "name", json_object_new_string(p->cfg->name));
    json_object_object_add(o, "port", json_object_new_int(p->cfg->port));
    json_object_object_add(o, "auto_start", json_object_new_boolean(p->auto_start));
    json_object_object_add(o, "state", json_object_new_string(state_name(p->state)));
    if (p->state == APP_RUNNING)
        json_object_object_add(o, "pid", json_object_new_int(p->pid));
    if (p->state == APP_EXITED) {
        if (p->exit_code >= 0)
            json_object_object_add(o, "exit_code", json_object_new_int(p->exit_code));
        else
            json_object_object_add(o, "signal", json_object_new_int(-p->exit_code));
    }
    json_object_object_add(o, "started_at", json_object_new_int64(p->started_at));
    return o;
}

void visor_apps_cmd_list(struct visor *v, struct visor_cmd *c)
{
    struct visor_app_procs *ap = v->router->procs;
    struct json_object *arr = json_object_new_array();
    for (size_t i = 0; ap && i < ap->n; i++)
        json_object_array_add(arr, app_json(&ap->a[i]));
    visor_cmd_reply(&v->q, c, 200, arr);
}

/* c->why = app name; c->n = 0 start, 1 stop, 2 autostart (c->type = 0/1 value). */
void visor_apps_cmd_action(struct visor *v, struct visor_cmd *c)
{
    struct visor_app_procs *ap = v->router->procs;
    struct app_proc *p = NULL;
    struct sw_error err = { 0 };

    for (size_t i = 0; ap && i < ap->n; i++)
        if (strcmp(ap->a[i].cfg->name, c->why) == 0)
            p = &ap->a[i];
    if (!p) {
        visor_cmd_reply_error(&v->q, c, 404, "not_found", "no app '%.64s' in the config", c->why);
        return;
    }
    reap(v, ap);
    if (c->n == 0) {
        if (p->state == APP_RUNNING) {
            visor_cmd_reply_error(&v->q, c, 409, "running", "app %s is running already", p->cfg->name);
            return;
        }
        if (app_spawn(v, p, &err)) {
            visor_cmd_reply_error(&v->q, c, 500, "start_failed", "%s", err.msg);
            return;
        }
    } else if (c->n == 1) {
        if (p->state != APP_RUNNING) {
            visor_cmd_reply_error(&v->q, c, 409, "not_running", "app %s is not running", p->cfg->name);
            return;
        }
        kill(p->pid, SIGTERM);
        if (!p->kill_at_ms)
            p->kill_at_ms = sw_deadline_ms(APP_KILL_AFTER_MS);
    } else {
        p->auto_start = c->type != 0;
    }
    visor_cmd_reply(&v->q, c, 200, app_json(p));
}
