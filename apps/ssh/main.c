/* SSH — the server side of the Skywire SSH apps (README.md here).
 *
 *   SSH [-auth FILE] [-allow PK]... [-shell PATH]
 *
 * Listens on app port $SKYWIRE_APP_PORT (default 2). The visor tells who dials (the remote
 * visor's key, authenticated by the route's Noise KK handshake); a key that is neither in
 * FILE (re-read for every connection) nor given with -allow is refused with an ERROR frame.
 * Each accepted connection runs one session (session.c) on its own thread, as the user the
 * visor runs as. */
#include "apps/ssh/auth.h"
#include "apps/ssh/session.h"
#include "common/err.h"
#include "common/keys.h"
#include "common/log.h"
#include "common/opts.h"
#include "visor/app/app.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_SESSIONS 32
#define MAX_LINGERING 16 /* refusals waiting for their client to read the reason */
#define MAX_CONNS (MAX_SESSIONS + MAX_LINGERING + 8)
#define MAX_ALLOW 64

static const char *auth_path;
static const char *shell_path;
static struct sw_pk allow[MAX_ALLOW];
static size_t n_allow;
static atomic_int n_conns, n_sessions, n_lingering;

struct conn {
    int fd;
    struct sw_pk remote;
    char who[SW_PK_HEX_LEN + 1];
};

/* Refusals linger (bounded) so the client reads why; beyond MAX_LINGERING of them at once
 * (a flood from keys that are not let in) they close at once, keeping slots for sessions. */
static void refuse(int fd, const char *msg)
{
    if (atomic_fetch_add(&n_lingering, 1) < MAX_LINGERING)
        ssh_refuse(fd, msg);
    else
        ssh_refuse_now(fd, msg);
    atomic_fetch_sub(&n_lingering, 1);
}

static void *serve(void *arg)
{
    struct conn *c = arg;
    char msg[256];

    if (!ssh_auth_allowed(auth_path, allow, n_allow, &c->remote)) {
        sw_log_warn("refused %s: not an authorized key", c->who);
        snprintf(msg, sizeof(msg), "SSH: visor %s is not authorized on this server "
                 "(add its key to the server's authorized keys)", c->who);
        refuse(c->fd, msg);
    } else if (atomic_fetch_add(&n_sessions, 1) >= MAX_SESSIONS) {
        atomic_fetch_sub(&n_sessions, 1);
        sw_log_warn("refused %s: %d sessions are running", c->who, MAX_SESSIONS);
        snprintf(msg, sizeof(msg), "SSH: too many sessions (%d); try again later", MAX_SESSIONS);
        refuse(c->fd, msg);
    } else {
        ssh_session_run(c->fd, c->who, shell_path);
        atomic_fetch_sub(&n_sessions, 1);
    }
    free(c);
    atomic_fetch_sub(&n_conns, 1);
    return NULL;
}

static void start(int fd, const struct sw_pk *remote)
{
    struct conn *c;
    pthread_t th;

    if (atomic_load(&n_conns) >= MAX_CONNS || !(c = calloc(1, sizeof(*c)))) {
        sw_log_warn("too many connections; one closed");
        close(fd);
        return;
    }
    c->fd = fd;
    c->remote = *remote;
    sw_pk_to_hex(remote, c->who);
    atomic_fetch_add(&n_conns, 1);
    if (pthread_create(&th, NULL, serve, c)) {
        atomic_fetch_sub(&n_conns, 1);
        close(fd);
        free(c);
        return;
    }
    pthread_detach(th);
}

static int opt_allow(void *arg, const char *v, struct sw_error *err)
{
    int rc;
    if (n_allow == MAX_ALLOW)
        return sw_error_set(err, SW_EINVAL, "too many -allow");
    if ((rc = sw_pk_from_hex(&allow[n_allow], v, "-allow", err)))
        return rc;
    n_allow++;
    return SW_OK;
}

/* SW_OPTS_CONTINUE, or the exit status after printing why. */
static int parse_args(int argc, char **argv)
{
    const struct sw_opt options[] = {
        SW_OPT_STR("auth", "FILE", "authorized visor keys, one per line (re-read for every connection)", &auth_path),
        SW_OPT_CALL("allow", "PK", "one more authorized key (repeatable, at most 64)", opt_allow, NULL),
        SW_OPT_STR("shell", "PATH", "the shell sessions run (default: the user's login shell, else /bin/sh)", &shell_path),
        SW_OPT_END,
    };
    const struct sw_opts cli = {
        .prog = "SSH", .dash = "-", .opts = options, .synopsis = "[-auth FILE] [-allow PK]... [-shell PATH]",
        .footer = "  (listens on $SKYWIRE_APP_PORT, default 2)\n",
    };
    return sw_opts_main(&cli, argc, argv, NULL);
}

int main(int argc, char **argv)
{
    uint16_t port;
    struct sw_error err = { 0 };
    int lfd, rc;

    signal(SIGPIPE, SIG_IGN);
    sw_log_init("SSH");
    if ((rc = parse_args(argc, argv)) != SW_OPTS_CONTINUE)
        return rc;
    if (sw_app_own_port(2, &port, &err)) {
        fprintf(stderr, "SSH: %s\n", err.msg);
        return 2;
    }
    if (sw_app_listen(NULL, port, &lfd, &err)) {
        sw_log_error("listen on app port %u: %s", port, err.msg);
        return 1;
    }
    sw_log_info("listening on app port %u (%zu keys from -allow, authorized keys file %s)",
                port, n_allow, auth_path ? auth_path : "none");
    for (;;) {
        struct sw_pk remote;
        uint16_t rport;
        int fd;

        if (sw_app_accept(lfd, -1, &fd, &remote, &rport, &err)) {
            sw_log_error("accept: %s", err.msg);
            return 1;
        }
        start(fd, &remote);
    }
}
