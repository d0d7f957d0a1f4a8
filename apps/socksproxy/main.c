/* socksproxy — the exit side of the Skywire SOCKS5 proxy (README.md here).
 *
 *   socksproxy [-passcode X]
 *
 * Listens on app port $SKYWIRE_APP_PORT (default 3). Each route connection carries one
 * tunnel header (common/socks5.h): the passcode is checked, the destination resolved here
 * (getaddrinfo: DNS happens at the exit) and connected, the status returned, then bytes are
 * relayed both ways (apps/socks5/relay.c). */
#include "apps/socks5/relay.h"
#include "common/err.h"
#include "common/keys.h"
#include "common/socks5.h"
#include "visor/app/app.h"

#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define HDR_TIMEOUT_MS 10000
#define CONNECT_TIMEOUT_MS 10000
#define MAX_CONNS 256

static const char *passcode = "";
static atomic_int n_conns;

struct conn {
    int fd;
    char remote[SW_PK_HEX_LEN + 1];
};

static int parse_hdr(const uint8_t *buf, size_t len, size_t *used, void *ctx)
{
    void **c = ctx;
    return sw_socks_hdr_parse(buf, len, used, c[0], c[1]);
}

static bool passcode_ok(const char *got)
{
    size_t a = strlen(got), b = strlen(passcode);
    char x[SW_SOCKS_PASSCODE_MAX + 1] = { 0 }, y[SW_SOCKS_PASSCODE_MAX + 1] = { 0 };

    if (b > SW_SOCKS_PASSCODE_MAX)
        return false;
    memcpy(x, got, a);
    memcpy(y, passcode, b);
    return (sodium_memcmp(x, y, sizeof(x)) == 0) & (a == b);
}

/* Sends a failure status and waits (bounded) for the client to close, so that the status is
 * not lost in a route torn down under it. */
static void refuse(int fd, uint8_t rep)
{
    uint8_t st[2] = { SW_SOCKS_TUNNEL_VERSION, rep }, junk[256];
    struct timeval tv = { 5, 0 };

    if (sx_write_all(fd, st, sizeof(st), HDR_TIMEOUT_MS) != SW_OK)
        return;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    while (read(fd, junk, sizeof(junk)) > 0)
        ;
}

static void *serve(void *arg)
{
    struct conn *c = arg;
    uint8_t buf[SW_SOCKS_HDR_MAX + 512];
    char pass[SW_SOCKS_PASSCODE_MAX + 1];
    struct sw_socks5_addr dst;
    void *ctx[2] = { pass, &dst };
    size_t have = 0, used = 0;
    uint8_t rep = SW_SOCKS5_REP_FAILURE;
    int rc, tfd = -1;

    rc = sx_read_msg(c->fd, buf, sizeof(buf), &have, HDR_TIMEOUT_MS, parse_hdr, ctx, &used);
    if (rc != SW_OK) {
        fprintf(stderr, "socksproxy: %s: bad tunnel header (%s)\n", c->remote, sw_strerror(rc));
        if (rc == SW_EINVAL)
            refuse(c->fd, SW_SOCKS5_REP_FAILURE);
        goto out;
    }
    sx_consume(buf, &have, used);
    if (!passcode_ok(pass)) {
        fprintf(stderr, "socksproxy: %s: wrong passcode, refused\n", c->remote);
        refuse(c->fd, SW_SOCKS5_REP_NOT_ALLOWED);
        goto out;
    }
    if ((tfd = sx_connect(dst.host, dst.port, CONNECT_TIMEOUT_MS, &rep)) < 0) {
        fprintf(stderr, "socksproxy: %s: connect %s port %u failed (reply %u)\n", c->remote,
                dst.host, dst.port, rep);
        refuse(c->fd, rep);
        goto out;
    }
    {
        uint8_t st[2] = { SW_SOCKS_TUNNEL_VERSION, SW_SOCKS5_REP_OK };
        if (sx_write_all(c->fd, st, sizeof(st), HDR_TIMEOUT_MS) != SW_OK)
            goto out;
    }
    rc = sx_splice(tfd, c->fd, NULL, 0, buf, have);
    printf("socksproxy: %s: %s port %u %s\n", c->remote, dst.host, dst.port,
           rc == 0 ? "done" : "cut short");
    fflush(stdout);
out:
    if (tfd >= 0)
        close(tfd);
    close(c->fd);
    free(c);
    atomic_fetch_sub(&n_conns, 1);
    return NULL;
}

static void usage(void)
{
    fprintf(stderr, "usage: socksproxy [-passcode X]   (listens on $SKYWIRE_APP_PORT, default 3)\n");
}

int main(int argc, char **argv)
{
    const char *p = getenv("SKYWIRE_APP_PORT");
    struct sw_error err = { 0 };
    unsigned long port = p ? strtoul(p, NULL, 10) : 3;
    int lfd;

    signal(SIGPIPE, SIG_IGN);
    if (sodium_init() < 0)
        return 1;
    for (int i = 1; i < argc; i++) {
        if ((!strcmp(argv[i], "-passcode") || !strcmp(argv[i], "--passcode")) && i + 1 < argc) {
            passcode = argv[++i];
        } else {
            usage();
            return 2;
        }
    }
    if (strlen(passcode) > SW_SOCKS_PASSCODE_MAX) {
        fprintf(stderr, "socksproxy: the passcode is longer than %d bytes\n", SW_SOCKS_PASSCODE_MAX);
        return 2;
    }
    if (port == 0 || port > 65535) {
        fprintf(stderr, "socksproxy: bad SKYWIRE_APP_PORT\n");
        return 2;
    }
    if (sw_app_listen(NULL, (uint16_t)port, &lfd, &err)) {
        fprintf(stderr, "socksproxy: listen: %s\n", err.msg);
        return 1;
    }
    printf("socksproxy: listening on app port %lu%s\n", port, *passcode ? " (passcode set)" : "");
    fflush(stdout);
    for (;;) {
        struct sw_pk remote;
        uint16_t rport;
        pthread_t th;
        struct conn *c;
        int fd;

        if (sw_app_accept(lfd, -1, &fd, &remote, &rport, &err)) {
            fprintf(stderr, "socksproxy: accept: %s\n", err.msg);
            return 1;
        }
        if (atomic_load(&n_conns) >= MAX_CONNS || !(c = calloc(1, sizeof(*c)))) {
            fprintf(stderr, "socksproxy: too many connections, one refused\n");
            close(fd);
            continue;
        }
        c->fd = fd;
        sw_pk_to_hex(&remote, c->remote);
        atomic_fetch_add(&n_conns, 1);
        if (pthread_create(&th, NULL, serve, c)) {
            atomic_fetch_sub(&n_conns, 1);
            close(fd);
            free(c);
            continue;
        }
        pthread_detach(th);
    }
}
