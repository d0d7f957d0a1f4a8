/* socksproxy — the exit side of the Skywire SOCKS5 proxy (README.md here).
 *
 *   socksproxy [-passcode X] [-allow CIDR[,CIDR]]... [-deny CIDR[,CIDR]]...
 *
 * Listens on app port $SKYWIRE_APP_PORT (default 3). Each route connection carries one
 * tunnel header (common/socks5.h): the passcode is checked, the destination resolved here
 * (getaddrinfo: DNS happens at the exit), every resolved address checked against the exit
 * policy (common/exit_policy.h), one of the allowed ones connected — the very sockaddr that
 * was checked — the status returned, then the connection's bytes are relayed both ways as
 * they are, half-close included (apps/socks5/relay.c). */
#include "apps/socks5/relay.h"
#include "common/err.h"
#include "common/exit_policy.h"
#include "common/keys.h"
#include "common/log.h"
#include "common/opts.h"
#include "common/socks5.h"
#include "common/stream_io.h"
#include "visor/app/app.h"

#include <netdb.h>
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
#define MAX_ADDRS 32 /* allowed addresses of one name tried in turn */

static const char *passcode = "";
static struct sw_exit_policy *policy; /* configured in main, then shared read-only */
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

/* Sends a failure status, shuts the write side down and reads (at most 5 s) until the client
 * closes: closing with the client's bytes unread would reset the route connection, and a
 * reset may drop the status on its way. */
static void refuse(int fd, uint8_t rep)
{
    uint8_t st[2] = { SW_SOCKS_TUNNEL_VERSION, rep }, junk[256];
    struct timeval tv = { 5, 0 };

    if (sw_io_write_all(fd, st, sizeof(st), sw_io_within(HDR_TIMEOUT_MS, NULL)) != SW_OK)
        return;
    shutdown(fd, SHUT_WR);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    while (read(fd, junk, sizeof(junk)) > 0)
        ;
}

static void addr_text(const struct addrinfo *ai, char *out, size_t cap)
{
    if (getnameinfo(ai->ai_addr, ai->ai_addrlen, out, (socklen_t)cap, NULL, 0, NI_NUMERICHOST))
        snprintf(out, cap, "?");
}

/* The one line for a refused destination: the rule that refused its first address. */
static void log_refusal(const struct conn *c, const struct sw_socks5_addr *dst,
                        const struct addrinfo *first, const char *rule, size_t n_refused)
{
    char a[NI_MAXHOST];

    addr_text(first, a, sizeof(a));
    sw_log_warn("%s: exit policy refused %s port %u: %s matches rule \"%s\" (%zu address%s, "
                "all refused)", c->remote, dst->host, dst->port, a, rule, n_refused,
                n_refused == 1 ? "" : "es");
}

/* Resolves dst, keeps the addresses the exit policy allows and connects to one of them: the
 * checked sockaddr itself, so nothing can rebind the name between check and connect. A
 * destination without an allowed address gets reply 2. Logs every failure. Returns the
 * connected fd, or -1 with *rep. */
static int connect_allowed(const struct conn *c, const struct sw_socks5_addr *dst, uint8_t *rep)
{
    const struct addrinfo *ok[MAX_ADDRS], *first_refused = NULL;
    const char *refused_by = NULL;
    struct addrinfo *res;
    size_t n_ok = 0, n_refused = 0;
    int fd = -1;

    if (sx_resolve(dst->host, dst->port, &res, rep) != SW_OK) {
        sw_log_info("%s: %s port %u: the name did not resolve (reply %u)", c->remote, dst->host,
                    dst->port, *rep);
        return -1;
    }
    sw_exit_policy_refresh_host(policy, NULL); /* this host's addresses as they are now */
    for (const struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        struct sw_exit_verdict v;
        if (sw_exit_policy_check_sa(policy, ai->ai_addr, ai->ai_addrlen, &v)) {
            if (n_ok < MAX_ADDRS)
                ok[n_ok++] = ai;
        } else if (n_refused++ == 0) {
            first_refused = ai;
            refused_by = v.rule;
        }
    }
    if (n_ok == 0) {
        log_refusal(c, dst, first_refused, refused_by, n_refused);
        *rep = SW_SOCKS5_REP_NOT_ALLOWED;
    } else {
        if (n_refused)
            sw_log_debug("%s: %s port %u: %zu refused address(es) skipped (first: rule \"%s\")",
                         c->remote, dst->host, dst->port, n_refused, refused_by);
        if ((fd = sx_connect_addrs(ok, n_ok, CONNECT_TIMEOUT_MS, rep)) < 0)
            sw_log_info("%s: connect %s port %u failed (reply %u)", c->remote, dst->host,
                        dst->port, *rep);
    }
    freeaddrinfo(res);
    return fd;
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
    if (rc == SW_EPROTO && have > 0) {
        sw_log_warn("%s: tunnel version %u, this exit speaks %u (socksproxy-client and socksproxy "
                    "must be of the same release)", c->remote, buf[0], SW_SOCKS_TUNNEL_VERSION);
        goto out;
    }
    if (rc != SW_OK) {
        sw_log_warn("%s: bad tunnel header (%s)", c->remote, sw_strerror(rc));
        if (rc == SW_EINVAL)
            refuse(c->fd, SW_SOCKS5_REP_FAILURE);
        goto out;
    }
    sx_consume(buf, &have, used);
    if (!passcode_ok(pass)) {
        sw_log_warn("%s: wrong passcode, refused", c->remote);
        refuse(c->fd, SW_SOCKS5_REP_NOT_ALLOWED);
        goto out;
    }
    if ((tfd = connect_allowed(c, &dst, &rep)) < 0) {
        refuse(c->fd, rep);
        goto out;
    }
    {
        uint8_t st[2] = { SW_SOCKS_TUNNEL_VERSION, SW_SOCKS5_REP_OK };
        if (sw_io_write_all(c->fd, st, sizeof(st), sw_io_within(HDR_TIMEOUT_MS, NULL)) != SW_OK)
            goto out;
    }
    rc = sx_splice(tfd, c->fd, NULL, 0, buf, have);
    sw_log_info("%s: %s port %u %s", c->remote, dst.host, dst.port, rc == 0 ? "done" : "cut short");
out:
    if (tfd >= 0)
        close(tfd);
    close(c->fd);
    free(c);
    atomic_fetch_sub(&n_conns, 1);
    return NULL;
}

/* -allow / -deny CIDR[,CIDR]: onto the exit policy's lists. */
static int add_cidrs(enum sw_exit_list l, const char *v, struct sw_error *err)
{
    const char *flag = l == SW_EXIT_ALLOW ? "-allow" : "-deny";
    struct sw_error why = { 0 };
    int rc;

    if ((rc = sw_exit_policy_add(policy, l, v, &why)))
        return sw_error_set(err, rc, "%s %s: %s", flag, v, why.msg);
    sw_log_info("exit policy: %s %s", flag, v);
    return SW_OK;
}

static int opt_allow(void *arg, const char *v, struct sw_error *err) { return add_cidrs(SW_EXIT_ALLOW, v, err); }
static int opt_deny(void *arg, const char *v, struct sw_error *err) { return add_cidrs(SW_EXIT_DENY, v, err); }

/* Fills passcode and the policy's lists from argv: SW_OPTS_CONTINUE, or the exit status. */
static int parse_args(int argc, char **argv)
{
    const struct sw_opt options[] = {
        SW_OPT_STR("passcode", "X", "what clients must send (default: nothing)", &passcode),
        SW_OPT_CALL("allow", "CIDR[,CIDR]", "destinations the default policy refuses that may be\n"
                    "reached after all (repeatable)", opt_allow, NULL),
        SW_OPT_CALL("deny", "CIDR[,CIDR]", "destinations refused whatever allows them (repeatable)", opt_deny, NULL),
        SW_OPT_END,
    };
    const struct sw_opts cli = {
        .prog = "socksproxy", .dash = "-", .opts = options,
        .synopsis = "[-passcode X] [-allow CIDR[,CIDR]]... [-deny CIDR[,CIDR]]...",
        .footer = "  (listens on $SKYWIRE_APP_PORT, default 3; see apps/socksproxy/README.md)\n",
    };
    int rc;

    if ((rc = sw_opts_main(&cli, argc, argv, NULL)) != SW_OPTS_CONTINUE)
        return rc;
    if (strlen(passcode) > SW_SOCKS_PASSCODE_MAX) {
        sw_log_error("the passcode is longer than %d bytes", SW_SOCKS_PASSCODE_MAX);
        return 2;
    }
    return SW_OPTS_CONTINUE;
}

int main(int argc, char **argv)
{
    struct sw_error err = { 0 };
    uint16_t port;
    int lfd, rc;

    signal(SIGPIPE, SIG_IGN);
    sw_log_init("socksproxy");
    if (sodium_init() < 0)
        return 1;
    if (sw_exit_policy_new(&policy, &err)) {
        sw_log_error("exit policy: %s", err.msg);
        return 1;
    }
    if ((rc = parse_args(argc, argv)) != SW_OPTS_CONTINUE)
        return rc;
    if (sw_app_own_port(3, &port, &err)) {
        sw_log_error("%s", err.msg);
        return 2;
    }
    if (sw_app_listen(NULL, port, &lfd, &err)) {
        sw_log_error("listen: %s", err.msg);
        return 1;
    }
    sw_log_info("listening on app port %u%s; exit policy: defaults (no loopback, private, "
                "link-local or own addresses) with %zu allow and %zu deny CIDRs", port,
                *passcode ? " (passcode set)" : "", sw_exit_policy_count(policy, SW_EXIT_ALLOW),
                sw_exit_policy_count(policy, SW_EXIT_DENY));
    for (;;) {
        struct sw_pk remote;
        uint16_t rport;
        pthread_t th;
        struct conn *c;
        int fd;

        if (sw_app_accept(lfd, -1, &fd, &remote, &rport, &err)) {
            sw_log_error("accept: %s", err.msg);
            return 1;
        }
        if (atomic_load(&n_conns) >= MAX_CONNS || !(c = calloc(1, sizeof(*c)))) {
            sw_log_warn("too many connections, one refused");
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
