/* SSH-client — the Skywire SSH apps' dialer on the client's visor (apps/ssh/README.md).
 *
 *   SSH-client [-sock PATH]
 *
 * Listens on a unix socket (SOCK_SEQPACKET, mode 0600; default: ssh-client.sock in the
 * directory of $SKYWIRE_APP_SOCKET, i.e. the visor's data_dir). A local SSH-cli sends one
 * request (remote key, port; apps/ssh/proto.h); this app dials it through the visor and
 * passes the route connection's fd back (SCM_RIGHTS), or an error text. The session's bytes
 * then flow between SSH-cli and the visor directly. Whoever can open the socket acts with
 * this visor's identity: keep its directory private. */
#include "apps/ssh/local.h"
#include "apps/ssh/proto.h"
#include "common/backoff.h"
#include "common/opts.h"
#include "common/err.h"
#include "common/keys.h"
#include "common/log.h"
#include "visor/app/app.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_CONNS 16
#define REQ_TIMEOUT_S 10
#define DIAL_TRIES 3
#define DIAL_RETRY_MS 300 /* first pause between tries, doubling */

static atomic_int n_conns;

/* sw_app_dial with up to DIAL_TRIES attempts (a route setup can fail transiently); a refusal
 * (SW_EPERM) is final. */
static int dial(const struct sw_pk *pk, uint16_t port, int *fd, struct sw_error *err)
{
    struct sw_backoff backoff = SW_BACKOFF_INIT(DIAL_RETRY_MS, DIAL_RETRY_MS * 4, false);
    int rc = SW_EIO;

    for (int i = 0; i < DIAL_TRIES; i++) {
        if (i > 0) {
            sw_log_warn("dial: %s (retrying)", err->msg);
            usleep(sw_backoff_next(&backoff) * 1000u);
        }
        if ((rc = sw_app_dial(NULL, pk, port, fd, err)) == SW_OK || rc == SW_EPERM)
            break;
    }
    return rc;
}

static void answer_error(int s, const char *text)
{
    uint8_t m[SSH_LOCAL_RESP_MAX];
    size_t n = strnlen(text, SSH_ERRTEXT_MAX);

    m[0] = 1;
    memcpy(m + 1, text, n);
    ssh_local_send(s, m, 1 + n, -1);
}

static void *serve(void *arg)
{
    int s = (int)(intptr_t)arg, rfd = -1;
    uint8_t req[SSH_LOCAL_REQ_LEN + 1], ok = 0;
    struct timeval tv = { REQ_TIMEOUT_S, 0 };
    char hex[SW_PK_HEX_LEN + 1], text[SSH_ERRTEXT_MAX];
    struct sw_error err = { 0 };
    struct sw_pk pk;
    uint16_t port;
    size_t n = 0;
    int pfd = -1;

    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (ssh_local_recv(s, req, sizeof(req), &n, &pfd) != SW_OK ||
        ssh_local_req_parse(req, n, &pk, &port) != SW_OK) {
        answer_error(s, "SSH-client: malformed request");
        goto out;
    }
    sw_pk_to_hex(&pk, hex);
    if (dial(&pk, port, &rfd, &err) != SW_OK) {
        sw_log_warn("dial %s port %u: %s", hex, port, err.msg);
        snprintf(text, sizeof(text), "SSH-client: cannot reach %s port %u: %s", hex, port, err.msg);
        answer_error(s, text);
        goto out;
    }
    sw_log_info("connected to %s port %u", hex, port);
    ssh_local_send(s, &ok, 1, rfd);
out:
    if (pfd >= 0)
        close(pfd);
    if (rfd >= 0)
        close(rfd);
    close(s);
    atomic_fetch_sub(&n_conns, 1);
    return NULL;
}

/* The default socket path: next to the visor's app socket. 0 or -1. */
static int default_path(char *out, size_t cap)
{
    const char *app = getenv(SW_APP_SOCKET_ENV);
    const char *slash = app ? strrchr(app, '/') : NULL;
    int n;

    if (!app)
        return -1;
    n = slash ? snprintf(out, cap, "%.*s/ssh-client.sock", (int)(slash - app), app)
              : snprintf(out, cap, "ssh-client.sock");
    return n > 0 && (size_t)n < cap ? 0 : -1;
}

/* True when a process accepts connections on the socket at sa (another SSH-client). */
static bool in_use(const struct sockaddr_un *sa)
{
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    bool used = fd >= 0 && connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0;

    if (fd >= 0)
        close(fd);
    return used;
}

/* A listening SOCK_SEQPACKET socket at path, mode 0600 (a stale socket file is replaced; a
 * live one is left to its owner). */
static int listen_on(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    struct stat st;
    mode_t old;
    int fd;

    if (strlen(path) >= sizeof(sa.sun_path)) {
        sw_log_error("socket path too long: %s", path);
        return -1;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode)) {
        if (in_use(&sa)) {
            sw_log_error("%s is in use (another SSH-client listens there)", path);
            return -1;
        }
        unlink(path);
    }
    if ((fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0)) < 0)
        return -1;
    old = umask(0177); /* no window where the socket is open to others */
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || chmod(path, 0600) || listen(fd, 32)) {
        sw_log_error("cannot listen on %s: %s", path, strerror(errno));
        umask(old);
        close(fd);
        return -1;
    }
    umask(old);
    return fd;
}

/* SW_OPTS_CONTINUE with path (cap bytes, holding the default) set, or the exit status. */
static int parse_args(int argc, char **argv, char *path, size_t cap)
{
    const char *sock = NULL;
    const struct sw_opt options[] = {
        SW_OPT_STR("sock", "PATH", "the unix socket SSH-cli connects to", &sock),
        SW_OPT_END,
    };
    const struct sw_opts cli = {
        .prog = "SSH-client", .dash = "-", .opts = options,
        .synopsis = "[-sock PATH]   (default: ssh-client.sock in the visor's data_dir)",
    };
    int rc;

    if ((rc = sw_opts_main(&cli, argc, argv, NULL)) != SW_OPTS_CONTINUE)
        return rc;
    if (sock && strlen(sock) >= cap) {
        fprintf(stderr, "SSH-client: -sock: longer than %zu bytes\n", cap - 1);
        return 2;
    }
    if (sock)
        snprintf(path, cap, "%s", sock);
    return SW_OPTS_CONTINUE;
}

int main(int argc, char **argv)
{
    char path[256];
    int lfd, rc;

    signal(SIGPIPE, SIG_IGN);
    sw_log_init("SSH-client");
    if (default_path(path, sizeof(path)) != 0)
        path[0] = '\0';
    if ((rc = parse_args(argc, argv, path, sizeof(path))) != SW_OPTS_CONTINUE)
        return rc;
    if (!path[0]) {
        fprintf(stderr, "SSH-client: no -sock and no $%s\n", SW_APP_SOCKET_ENV);
        return 2;
    }
    if ((lfd = listen_on(path)) < 0)
        return 1;
    sw_log_info("listening on %s", path);
    for (;;) {
        pthread_t th;
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE || errno == ENFILE) {
                usleep(errno == EMFILE || errno == ENFILE ? 100000 : 0);
                continue;
            }
            sw_log_error("accept: %s", strerror(errno));
            return 1;
        }
        if (atomic_fetch_add(&n_conns, 1) >= MAX_CONNS) {
            atomic_fetch_sub(&n_conns, 1);
            answer_error(fd, "SSH-client: too many dials in progress; try again");
            close(fd);
            continue;
        }
        if (pthread_create(&th, NULL, serve, (void *)(intptr_t)fd)) {
            atomic_fetch_sub(&n_conns, 1);
            close(fd);
            continue;
        }
        pthread_detach(th);
    }
}
