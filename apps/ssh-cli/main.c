/* SSH-cli — the Skywire SSH command line (apps/ssh/README.md).
 *
 *   SSH-cli [-sock PATH] [-port N] PK [command...]
 *
 * Asks the local SSH-client app (unix socket: -sock, else $SKYWIRE_SSH_SOCK, else
 * ./visor-data/ssh-client.sock) for a route connection to PK's SSH app (port -port, default
 * 2), then speaks the SSH frames (apps/ssh/proto.h) on it directly. Without a command: an
 * interactive shell, the terminal in raw mode (restored on every exit path). With one: the
 * words joined by spaces run under /bin/sh -c remotely; stdout and stderr are copied to
 * ours and the exit status is the remote one (128 + signal when it was killed). 255 with a
 * message when the connection or authorization fails. */
#include "apps/ssh-cli/tty.h"
#include "apps/ssh/frame_io.h"
#include "apps/ssh/local.h"
#include "apps/ssh/proto.h"
#include "common/err.h"
#include "common/keys.h"
#include "common/opts.h"
#include "common/stream_io.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define DEFAULT_SOCK "./visor-data/ssh-client.sock"
#define SOCK_ENV "SKYWIRE_SSH_SOCK"
#define DIAL_TIMEOUT_S 150 /* SSH-client tries up to 3 route setups of up to ~40 s */
#define EXIT_FAIL 255
#define GO_ON (-1) /* the session goes on (not an exit status) */

struct cli {
    int rfd, sigfd;
    bool shell, stdin_open;
    size_t in_unacked; /* stdin bytes sent, not yet acknowledged (at most SSH_WINDOW) */
    struct ssh_rbuf *rb;
};

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints a message on stderr with the terminal restored; returns EXIT_FAIL. */
static int fail(const char *fmt, ...)
{
    va_list ap;

    ssh_cli_tty_restore();
    fprintf(stderr, "SSH-cli: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return EXIT_FAIL;
}

/* Waits up to DIAL_TIMEOUT_S for SSH-client's answer on s while watching the signal pipe
 * (a dial can take minutes: Ctrl-C must not wait for it). GO_ON when the answer is there,
 * else the exit status: 128 + the signal, or EXIT_FAIL after printing why. */
static int wait_answer(int s, int sigfd, const char *sock)
{
    int left = DIAL_TIMEOUT_S * 1000;
    unsigned char sig;

    while (left > 0) {
        struct pollfd pf[2] = { { .fd = s, .events = POLLIN }, { .fd = sigfd, .events = POLLIN } };
        int step = left < 200 ? left : 200, r = poll(pf, 2, step);

        if (r < 0 && errno != EINTR)
            return fail("poll: %s", strerror(errno));
        if (r > 0 && pf[0].revents)
            return GO_ON;
        while (r > 0 && pf[1].revents && read(sigfd, &sig, 1) == 1)
            if (sig != SIGWINCH)
                return 128 + sig;
        left -= step;
    }
    return fail("no answer from SSH-client at %s within %d s", sock, DIAL_TIMEOUT_S);
}

/* Gets the route connection from SSH-client into *fd: GO_ON, or the exit status after
 * printing why (128 + signal when one ended the wait). */
static int get_route(const char *sock, const struct sw_pk *pk, uint16_t port, int sigfd, int *fd)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    uint8_t req[SSH_LOCAL_REQ_LEN], resp[SSH_LOCAL_RESP_MAX + 1];
    char text[SSH_ERRTEXT_MAX + 1];
    size_t n = 0;
    int s = -1, rc = EXIT_FAIL;
    bool ok = false;

    *fd = -1;
    if (strlen(sock) >= sizeof(sa.sun_path))
        return fail("socket path too long: %s", sock);
    memcpy(sa.sun_path, sock, strlen(sock) + 1);
    if ((s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0)) < 0 ||
        connect(s, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        rc = fail("cannot reach SSH-client at %s: %s (is the SSH-client app running? -sock PATH)",
                  sock, strerror(errno));
        goto out;
    }
    ssh_local_req_encode(req, pk, port);
    if (ssh_local_send(s, req, sizeof(req), -1) != SW_OK) {
        rc = fail("cannot send to SSH-client at %s", sock);
    } else if ((rc = wait_answer(s, sigfd, sock)) != GO_ON) {
        /* a signal or the timeout */
    } else if (ssh_local_recv(s, resp, sizeof(resp), &n, fd) != SW_OK ||
               ssh_local_resp_parse(resp, n, &ok, text) != SW_OK) {
        rc = fail("no answer from SSH-client at %s", sock);
    } else if (!ok || *fd < 0) {
        rc = fail("%s", ok ? "SSH-client sent no connection" : text);
    } else {
        rc = GO_ON;
    }
out:
    if (rc != GO_ON && *fd >= 0) {
        close(*fd);
        *fd = -1;
    }
    if (s >= 0)
        close(s);
    return rc;
}

static int send_request(int rfd, bool shell, const char *cmd)
{
    static struct ssh_request r;
    static uint8_t buf[SSH_HDR_LEN + SSH_FRAME_MAX];
    const char *term = getenv("TERM");
    size_t len;

    memset(&r, 0, sizeof(r));
    r.mode = shell ? SSH_MODE_SHELL : SSH_MODE_EXEC;
    if (shell) {
        ssh_cli_tty_size(&r.rows, &r.cols);
        snprintf(r.term, sizeof(r.term), "%s", term && strlen(term) <= SSH_TERM_MAX ? term : "");
    } else {
        snprintf(r.cmd, sizeof(r.cmd), "%s", cmd);
    }
    if (ssh_request_encode(buf, sizeof(buf), &len, &r) != SW_OK) {
        r.term[0] = '\0'; /* an odd $TERM: let the server pick */
        if (ssh_request_encode(buf, sizeof(buf), &len, &r) != SW_OK)
            return SW_EINVAL;
    }
    return sw_io_write_all(rfd, buf, len, SW_IO_NO_LIMIT);
}

/* One frame from the server. GO_ON to go on, else the exit status (>= 0) to end with
 * (the same for the functions below). */
static int on_frame(struct cli *c, const struct ssh_frame *f)
{
    char text[SSH_ERRTEXT_MAX + 1];
    uint8_t kind, value;
    uint32_t n;

    switch (f->type) {
    case SSH_F_STDOUT:
    case SSH_F_STDERR:
        /* no acknowledgement: while we write, we do not read, and the route holds the server
         * back (it is flow-controlled end to end) */
        if (sw_io_write_all(f->type == SSH_F_STDOUT ? STDOUT_FILENO : STDERR_FILENO, f->data, f->len,
                            SW_IO_NO_LIMIT))
            return fail("cannot write the output: %s", strerror(errno));
        return GO_ON;
    case SSH_F_ACK:
        if (ssh_ack_parse(f, &n) || n > c->in_unacked)
            break;
        c->in_unacked -= n;
        return GO_ON;
    case SSH_F_EXIT:
        if (ssh_exit_parse(f, &kind, &value))
            break;
        return kind == SSH_EXIT_SIGNAL ? 128 + value : value;
    case SSH_F_ERROR:
        if (ssh_error_parse(f, text))
            break;
        return fail("%s", text);
    default:
        break;
    }
    return fail("protocol error from the server (frame type 0x%02x)", f->type);
}

static int on_route(struct cli *c)
{
    struct ssh_frame f;
    int rc = ssh_rbuf_fill(c->rb, c->rfd);

    if (rc != SW_OK)
        return fail("the connection closed before the session ended");
    while ((rc = ssh_rbuf_next(c->rb, &f)) == SW_OK)
        if ((rc = on_frame(c, &f)) != GO_ON)
            return rc;
    return rc == SSH_MORE ? GO_ON : fail("malformed frame from the server");
}

static int on_stdin(struct cli *c)
{
    uint8_t buf[16384];
    size_t room = SSH_WINDOW - c->in_unacked;
    ssize_t n = read(STDIN_FILENO, buf, room < sizeof(buf) ? room : sizeof(buf));

    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return GO_ON;
    if (n <= 0) {
        c->stdin_open = false;
        return ssh_send(c->rfd, SSH_F_STDIN_EOF, NULL, 0) ? fail("connection lost") : GO_ON;
    }
    c->in_unacked += (size_t)n;
    return ssh_send(c->rfd, SSH_F_STDIN, buf, (size_t)n) ? fail("connection lost") : GO_ON;
}

/* SIGWINCH becomes a resize; the others end the session (128 + signal). */
static int on_signal(struct cli *c)
{
    unsigned char sig;
    uint8_t b[4];
    uint16_t rows, cols;

    while (read(c->sigfd, &sig, 1) == 1) {
        if (sig != SIGWINCH) {
            ssh_cli_tty_restore();
            return 128 + sig;
        }
        if (c->shell) {
            ssh_cli_tty_size(&rows, &cols);
            ssh_u16pair_put(b, rows, cols);
            if (ssh_send(c->rfd, SSH_F_RESIZE, b, sizeof(b)))
                return fail("connection lost");
        }
    }
    return GO_ON;
}

static int run(struct cli *c)
{
    for (;;) {
        struct pollfd pf[3] = { { .fd = c->rfd, .events = POLLIN }, { .fd = c->sigfd, .events = POLLIN },
                                { .fd = STDIN_FILENO, .events = POLLIN } };
        nfds_t n = c->stdin_open && c->in_unacked < SSH_WINDOW ? 3 : 2;
        int rc = GO_ON;

        if (poll(pf, n, -1) < 0 && errno != EINTR)
            return fail("poll: %s", strerror(errno));
        if (pf[1].revents)
            rc = on_signal(c);
        if (rc == GO_ON && pf[0].revents)
            rc = on_route(c);
        if (rc == GO_ON && n == 3 && pf[2].revents)
            rc = on_stdin(c);
        if (rc != GO_ON)
            return rc;
    }
}

/* The command words joined by spaces (as ssh does); NULL when too long. */
static char *join(int argc, char **argv)
{
    static char cmd[SSH_CMD_MAX + 1];
    size_t off = 0;

    for (int i = 0; i < argc; i++) {
        int n = snprintf(cmd + off, sizeof(cmd) - off, "%s%s", i ? " " : "", argv[i]);
        if (n < 0 || (size_t)n >= sizeof(cmd) - off)
            return NULL;
        off += (size_t)n;
    }
    return cmd;
}

/* The flags, then PK: SW_OPTS_CONTINUE with *pk and *first (PK's index in argv), or the exit
 * status. */
static int parse_args(int argc, char **argv, const char **sock, unsigned long *port, struct sw_pk *pk,
                      int *first)
{
    long p = (long)*port;
    const struct sw_opt options[] = {
        SW_OPT_STR("sock", "PATH", "SSH-client's socket (default $" SOCK_ENV ", else " DEFAULT_SOCK ")", sock),
        SW_OPT_NUM("port", "N", "the SSH app's port on PK's visor (default 2)", &p, 1, 65535),
        SW_OPT_END,
    };
    const struct sw_opts cli = {
        .prog = "SSH-cli", .dash = "-", .opts = options, .synopsis = "[-sock PATH] [-port N] PK [command...]",
        .max_args = SW_OPTS_ANY_ARGS,
    };
    struct sw_error err = { 0 };
    int rc;

    if ((rc = sw_opts_main(&cli, argc, argv, first)) != SW_OPTS_CONTINUE)
        return rc ? EXIT_FAIL : 0;
    *port = (unsigned long)p;
    if (*first >= argc || sw_pk_from_hex(pk, argv[*first], "PK", &err)) {
        if (*first < argc)
            fprintf(stderr, "SSH-cli: %s\n", err.msg);
        sw_opts_usage(&cli, stderr);
        return EXIT_FAIL;
    }
    return SW_OPTS_CONTINUE;
}

int main(int argc, char **argv)
{
    const char *sock = getenv(SOCK_ENV), *cmd = NULL;
    struct cli c = { .rfd = -1, .stdin_open = true };
    unsigned long port = 2;
    struct sw_pk pk;
    int i, rc;

    if ((rc = parse_args(argc, argv, &sock, &port, &pk, &i)) != SW_OPTS_CONTINUE)
        return rc;
    if (i + 1 < argc && !(cmd = join(argc - i - 1, argv + i + 1)))
        return fail("the command is longer than %d bytes", SSH_CMD_MAX);
    if (!cmd && !isatty(STDIN_FILENO)) { /* as ssh -T: the shell reads the commands from stdin */
        fprintf(stderr, "SSH-cli: stdin is not a terminal: the remote shell runs without a PTY\n");
        cmd = "exec \"$SHELL\"";
    }
    c.shell = cmd == NULL;
    rc = EXIT_FAIL;
    if ((c.sigfd = ssh_cli_signals_init()) < 0 || !(c.rb = calloc(1, sizeof(*c.rb)))) {
        fail("out of resources");
        goto out;
    }
    if ((rc = get_route(sock && *sock ? sock : DEFAULT_SOCK, &pk, (uint16_t)port, c.sigfd, &c.rfd)) != GO_ON)
        goto out;
    rc = EXIT_FAIL;
    if (send_request(c.rfd, c.shell, cmd) != SW_OK) {
        fail("cannot send the request");
        goto out;
    }
    if (c.shell)
        ssh_cli_tty_raw();
    rc = run(&c);
out:
    ssh_cli_tty_restore();
    if (c.rfd >= 0)
        close(c.rfd);
    free(c.rb);
    return rc;
}
