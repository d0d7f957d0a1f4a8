/* socksproxy-client — the local side of the Skywire SOCKS5 proxy (apps/socksproxy/README.md).
 *
 *   socksproxy-client -srv PK [-addr 127.0.0.1:1080] [-passcode X] [-port 3]
 *
 * A SOCKS5 listener (method "no auth", command CONNECT with IPv4, IPv6 or a domain name:
 * the name is resolved by the exit). Each SOCKS connection dials its own route connection
 * to PK's socksproxy, sends the tunnel header and maps the exit's status to the reply. */
#include "apps/socks5/relay.h"
#include "common/backoff.h"
#include "common/err.h"
#include "common/hostport.h"
#include "common/keys.h"
#include "common/opts.h"
#include "common/socks5.h"
#include "common/stream_io.h"
#include "visor/app/app.h"

#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define SOCKS_TIMEOUT_MS 10000  /* greeting and request from the local client */
#define STATUS_TIMEOUT_MS 30000 /* the exit resolves and connects (10 s per address) */
#define MAX_CONNS 256
#define MAX_DIALS 4     /* route setups at once (each one is a setup-node round) */
#define DIAL_TRIES 3
#define DIAL_RETRY_MS 300 /* first pause between tries, doubling */

static struct sw_pk srv;
static uint16_t srv_port = 3;
static const char *passcode = "";
static atomic_int n_conns;
static pthread_mutex_t dial_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t dial_cv = PTHREAD_COND_INITIALIZER;
static int n_dials;

/* sw_app_dial with at most MAX_DIALS at once and DIAL_TRIES attempts (a route setup can fail
 * transiently, e.g. while the setup node's streams to the hops come up). */
static int dial(int *fd, struct sw_error *err)
{
    struct sw_backoff backoff = SW_BACKOFF_INIT(DIAL_RETRY_MS, DIAL_RETRY_MS * 4, false);
    int rc = SW_EIO;

    pthread_mutex_lock(&dial_mu);
    while (n_dials >= MAX_DIALS)
        pthread_cond_wait(&dial_cv, &dial_mu);
    n_dials++;
    pthread_mutex_unlock(&dial_mu);
    for (int i = 0; i < DIAL_TRIES; i++) {
        if (i > 0) {
            fprintf(stderr, "socksproxy-client: dial: %s (retrying)\n", err->msg);
            usleep(sw_backoff_next(&backoff) * 1000u);
        }
        if ((rc = sw_app_dial(NULL, &srv, srv_port, fd, err)) == SW_OK || rc == SW_EPERM)
            break;
    }
    pthread_mutex_lock(&dial_mu);
    n_dials--;
    pthread_cond_signal(&dial_cv);
    pthread_mutex_unlock(&dial_mu);
    return rc;
}

static int parse_greeting(const uint8_t *buf, size_t len, size_t *used, void *ctx)
{
    return sw_socks5_parse_greeting(buf, len, used, ctx);
}

struct req_ctx {
    struct sw_socks5_request req;
    uint8_t rep;
};

static int parse_request(const uint8_t *buf, size_t len, size_t *used, void *ctx)
{
    struct req_ctx *r = ctx;
    return sw_socks5_parse_request(buf, len, used, &r->req, &r->rep);
}

static int parse_status(const uint8_t *buf, size_t len, size_t *used, void *ctx)
{
    return sw_socks_status_parse(buf, len, used, ctx);
}

static void reply(int fd, uint8_t rep)
{
    uint8_t r[10];
    sw_io_write_all(fd, r, sw_socks5_encode_reply(rep, r), sw_io_within(SOCKS_TIMEOUT_MS, NULL));
}

static void *serve(void *arg)
{
    int cfd = (int)(intptr_t)arg, rfd = -1, rc;
    uint8_t buf[1024], rbuf[512], hdr[SW_SOCKS_HDR_MAX];
    size_t have = 0, rhave = 0, used = 0, hlen = 0;
    struct req_ctx rq = { .rep = SW_SOCKS5_REP_FAILURE };
    struct sw_error err = { 0 };
    bool no_auth = false;
    uint8_t rep = SW_SOCKS5_REP_FAILURE;

    rc = sx_read_msg(cfd, buf, sizeof(buf), &have, SOCKS_TIMEOUT_MS, parse_greeting, &no_auth, &used);
    if (rc != SW_OK)
        goto out;
    sx_consume(buf, &have, used);
    if (!no_auth) {
        static const uint8_t none[2] = { 5, 0xff };
        sw_io_write_all(cfd, none, 2, sw_io_within(SOCKS_TIMEOUT_MS, NULL));
        goto out;
    }
    {
        static const uint8_t ok[2] = { 5, 0 };
        if (sw_io_write_all(cfd, ok, 2, sw_io_within(SOCKS_TIMEOUT_MS, NULL)) != SW_OK)
            goto out;
    }
    rc = sx_read_msg(cfd, buf, sizeof(buf), &have, SOCKS_TIMEOUT_MS, parse_request, &rq, &used);
    if (rc != SW_OK) {
        if (rc == SW_EINVAL || rc == SW_EPROTO)
            reply(cfd, rq.rep);
        goto out;
    }
    sx_consume(buf, &have, used);
    if (rq.req.cmd != SW_SOCKS5_CMD_CONNECT) {
        reply(cfd, SW_SOCKS5_REP_CMD_UNSUPPORTED);
        goto out;
    }
    if (sw_socks_hdr_encode(hdr, sizeof(hdr), &hlen, passcode, &rq.req.dst) != SW_OK) {
        reply(cfd, SW_SOCKS5_REP_FAILURE);
        goto out;
    }
    if (dial(&rfd, &err) != SW_OK) {
        fprintf(stderr, "socksproxy-client: dial: %s\n", err.msg);
        reply(cfd, SW_SOCKS5_REP_NET_UNREACHABLE);
        goto out;
    }
    if (sw_io_write_all(rfd, hdr, hlen, sw_io_within(SOCKS_TIMEOUT_MS, NULL)) != SW_OK ||
        sx_read_msg(rfd, rbuf, sizeof(rbuf), &rhave, STATUS_TIMEOUT_MS, parse_status, &rep, &used) != SW_OK) {
        fprintf(stderr, "socksproxy-client: no status from the exit for %s port %u\n",
                rq.req.dst.host, rq.req.dst.port);
        reply(cfd, SW_SOCKS5_REP_FAILURE);
        goto out;
    }
    sx_consume(rbuf, &rhave, used);
    if (rep != SW_SOCKS5_REP_OK) {
        fprintf(stderr, "socksproxy-client: %s port %u: the exit answered %u%s\n", rq.req.dst.host,
                rq.req.dst.port, rep, rep == SW_SOCKS5_REP_NOT_ALLOWED ? " (wrong passcode?)" : "");
        reply(cfd, rep);
        goto out;
    }
    {
        uint8_t r[10];
        if (sw_io_write_all(cfd, r, sw_socks5_encode_reply(SW_SOCKS5_REP_OK, r),
                            sw_io_within(SOCKS_TIMEOUT_MS, NULL)))
            goto out;
    }
    sx_splice(cfd, rfd, buf, have, rbuf, rhave);
out:
    if (rfd >= 0)
        close(rfd);
    close(cfd);
    atomic_fetch_sub(&n_conns, 1);
    return NULL;
}

static int listen_on(const char *addr)
{
    char host[256];
    uint16_t port;
    char ps[8];
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_PASSIVE | AI_NUMERICSERV }, *res = NULL;
    int fd = -1, one = 1;

    if (sw_hostport_parse(addr, SW_HOSTPORT_LISTEN, host, sizeof(host), &port) || port == 0) {
        fprintf(stderr, "socksproxy-client: bad -addr %s (want host:port)\n", addr);
        return -1;
    }
    snprintf(ps, sizeof(ps), "%u", port);
    if (getaddrinfo(host[0] ? host : NULL, ps, &hints, &res) != 0 || !res) {
        fprintf(stderr, "socksproxy-client: cannot resolve %s\n", addr);
        return -1;
    }
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0)
            continue;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, 128)) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0)
        fprintf(stderr, "socksproxy-client: cannot listen on %s: %s\n", addr, strerror(errno));
    return fd;
}

/* The command line into srv (*srv_hex its text), srv_port, passcode and *addr:
 * SW_OPTS_CONTINUE, or the exit status. */
static int parse_args(int argc, char **argv, const char **addr, const char **srv_hex)
{
    long port = srv_port;
    const struct sw_opt options[] = {
        SW_OPT_STR("srv", "PK", "the exit: the visor whose socksproxy connects (required)", srv_hex),
        SW_OPT_STR("addr", "HOST:PORT", "the local SOCKS5 listener (default 127.0.0.1:1080)", addr),
        SW_OPT_STR("passcode", "X", "the exit's -passcode (default: nothing)", &passcode),
        SW_OPT_NUM("port", "APP_PORT", "the exit's app port (default 3)", &port, 1, 65535),
        SW_OPT_END,
    };
    const struct sw_opts cli = {
        .prog = "socksproxy-client", .dash = "-", .opts = options,
        .synopsis = "-srv PK [-addr HOST:PORT (127.0.0.1:1080)] [-passcode X] [-port APP_PORT (3)]",
    };
    struct sw_error err = { 0 };
    int rc;

    if ((rc = sw_opts_main(&cli, argc, argv, NULL)) != SW_OPTS_CONTINUE)
        return rc;
    srv_port = (uint16_t)port;
    if (!*srv_hex || sw_pk_from_hex(&srv, *srv_hex, "-srv", &err)) {
        fprintf(stderr, "socksproxy-client: %s\n", *srv_hex ? err.msg : "-srv PK is required");
        sw_opts_usage(&cli, stderr);
        return 2;
    }
    if (strlen(passcode) > SW_SOCKS_PASSCODE_MAX) {
        fprintf(stderr, "socksproxy-client: the passcode is longer than %d bytes\n",
                SW_SOCKS_PASSCODE_MAX);
        return 2;
    }
    return SW_OPTS_CONTINUE;
}

int main(int argc, char **argv)
{
    const char *addr = "127.0.0.1:1080", *srv_hex = NULL;
    int lfd, rc;

    signal(SIGPIPE, SIG_IGN);
    if ((rc = parse_args(argc, argv, &addr, &srv_hex)) != SW_OPTS_CONTINUE)
        return rc;
    if ((lfd = listen_on(addr)) < 0)
        return 1;
    printf("socksproxy-client: SOCKS5 on %s via %s port %u\n", addr, srv_hex, srv_port);
    fflush(stdout);
    for (;;) {
        pthread_t th;
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE || errno == ENFILE) {
                if (errno == EMFILE || errno == ENFILE)
                    usleep(100000);
                continue;
            }
            fprintf(stderr, "socksproxy-client: accept: %s\n", strerror(errno));
            return 1;
        }
        if (atomic_load(&n_conns) >= MAX_CONNS) {
            close(fd);
            continue;
        }
        atomic_fetch_add(&n_conns, 1);
        if (pthread_create(&th, NULL, serve, (void *)(intptr_t)fd)) {
            atomic_fetch_sub(&n_conns, 1);
            close(fd);
            continue;
        }
        pthread_detach(th);
    }
}
