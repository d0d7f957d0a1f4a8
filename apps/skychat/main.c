/* skychat — chat between visors, with a web page (apps/skychat/README.md).
 *
 *   skychat [-addr HOST:PORT] [-remote-port N] [-dial-timeout S] [-ack-timeout S]
 *           [-sse-keepalive S] [-max-sse N] [-history N] [-allowed-host NAME]...
 *
 * A visor app: talks to its visor through $SKYWIRE_APP_SOCKET, listens for chats on
 * $SKYWIRE_APP_PORT (default 1), serves the page and API on -addr (default :8000). */
#include "apps/skychat/chat.h"
#include "common/http_server.h"
#include "common/keys.h"
#include "common/log.h"
#include "common/version.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct sc_options sc_opt;
static atomic_bool stopping;

uint64_t sc_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t sc_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

bool sc_stopping(void)
{
    return atomic_load(&stopping);
}

void sc_stop(void)
{
    atomic_store(&stopping, true);
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: skychat [-addr HOST:PORT] [-remote-port N] [-dial-timeout S] [-ack-timeout S]\n"
            "               [-sse-keepalive S] [-max-sse N] [-history N] [-allowed-host NAME]...\n"
            "  -addr           web page and API address (default :8000 = every interface;\n"
            "                  127.0.0.1:8000 for this host only)\n"
            "  -allowed-host   a host name or address the page may be opened under, besides\n"
            "                  localhost, 127.0.0.1, [::1] and -addr's host (repeatable)\n"
            "  -remote-port    the recipients' skychat app port (default: own port)\n"
            "  -dial-timeout   seconds to wait for a route to a recipient (default 20)\n"
            "  -ack-timeout    seconds to wait for a recipient's acknowledgement (default 10)\n"
            "  -sse-keepalive  seconds between keep-alive comments on /sse (default 15)\n"
            "  -max-sse        open /sse streams at most (default 32)\n"
            "  -history        messages kept in memory (default 1000)\n"
            "Run by a visor (config apps: {\"app\":\"skychat\",\"port\":1,\"args\":[\"-addr\",\":8000\"]}):\n"
            "it reads SKYWIRE_APP_SOCKET, SKYWIRE_APP_PORT and SKYWIRE_VISOR_PK.\n");
}

static bool num(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
    char *end;
    unsigned long v;
    if (!s || *s < '0' || *s > '9')
        return false;
    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return false;
    *out = v;
    return true;
}

/* 0 ok, 1 exit 0 (help/version), 2 usage error */
static int parse_args(int argc, char **argv)
{
    unsigned long v, remote = 0;
    const char *p = getenv("SKYWIRE_APP_PORT"), *self = getenv("SKYWIRE_VISOR_PK");
    struct sw_error err = { 0 };

    snprintf(sc_opt.addr, sizeof(sc_opt.addr), ":8000");
    sc_opt.port = 1;
    sc_opt.dial_timeout_ms = 20000;
    sc_opt.ack_timeout_ms = 10000;
    sc_opt.sse_keepalive_ms = 15000;
    sc_opt.max_sse = 32;
    sc_opt.ring = SC_RING_DEFAULT;
    if (p && *p) {
        if (!num(p, 1, 65535, &v)) {
            fprintf(stderr, "skychat: SKYWIRE_APP_PORT '%s' is not a port\n", p);
            return 2;
        }
        sc_opt.port = (uint16_t)v;
    }
    if (self && *self) {
        if (sw_pk_from_hex(&sc_opt.self, self, "SKYWIRE_VISOR_PK", &err)) {
            fprintf(stderr, "skychat: %s\n", err.msg);
            return 2;
        }
        sc_opt.have_self = true;
    }
    for (int i = 1; i < argc; i++) {
        char name[32];
        const char *arg = argv[i], *a = arg, *val, *eq;

        if (strcmp(a, "-h") == 0 || strcmp(a, "-help") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 1;
        }
        if (strcmp(a, "-version") == 0 || strcmp(a, "--version") == 0) {
            printf("skychat %s\n", SW_VERSION);
            return 1;
        }
        if (a[0] != '-' || !a[1])
            goto bad;
        a += a[1] == '-' ? 2 : 1; /* -flag and --flag */
        eq = strchr(a, '=');
        if (eq && (size_t)(eq - a) < sizeof(name)) {
            memcpy(name, a, (size_t)(eq - a));
            name[eq - a] = '\0';
            val = eq + 1;
        } else {
            snprintf(name, sizeof(name), "%s", a);
            if (i + 1 >= argc) {
                fprintf(stderr, "skychat: %s needs a value\n", argv[i]);
                return 2;
            }
            val = argv[++i];
        }
        if (strcmp(name, "addr") == 0) {
            if (!*val || strlen(val) >= sizeof(sc_opt.addr))
                goto badval;
            snprintf(sc_opt.addr, sizeof(sc_opt.addr), "%s", val);
        } else if (strcmp(name, "remote-port") == 0) {
            if (!num(val, 1, 65535, &remote))
                goto badval;
        } else if (strcmp(name, "dial-timeout") == 0) {
            if (!num(val, 1, 300, &v))
                goto badval;
            sc_opt.dial_timeout_ms = (int)v * 1000;
        } else if (strcmp(name, "ack-timeout") == 0) {
            if (!num(val, 1, 300, &v))
                goto badval;
            sc_opt.ack_timeout_ms = (int)v * 1000;
        } else if (strcmp(name, "sse-keepalive") == 0) {
            if (!num(val, 1, 3600, &v))
                goto badval;
            sc_opt.sse_keepalive_ms = (int)v * 1000;
        } else if (strcmp(name, "max-sse") == 0) {
            if (!num(val, 1, 100, &v))
                goto badval;
            sc_opt.max_sse = (unsigned)v;
        } else if (strcmp(name, "history") == 0) {
            if (!num(val, 1, 1000000, &v))
                goto badval;
            sc_opt.ring = v;
        } else if (strcmp(name, "allowed-host") == 0) {
            if (!sw_http_host_valid(val) || sc_opt.n_allowed_hosts >= SC_MAX_ALLOWED_HOSTS)
                goto badval; /* a name or address, no port; at most 16 */
            sc_opt.allowed_hosts[sc_opt.n_allowed_hosts++] = val;
        } else {
            goto bad;
        }
        continue;
bad:
        fprintf(stderr, "skychat: unknown argument '%s'\n", arg);
        usage(stderr);
        return 2;
badval:
        fprintf(stderr, "skychat: bad value '%s' for -%s\n", val, name);
        return 2;
    }
    sc_opt.remote_port = remote ? (uint16_t)remote : sc_opt.port;
    return 0;
}

int main(int argc, char **argv)
{
    struct sw_error err = { 0 };
    sigset_t set;
    int rc, sig = 0;
    bool drained;

    sw_log_init("skychat");
    if ((rc = parse_args(argc, argv)))
        return rc == 1 ? 0 : 2;
    if (sw_crypto_init()) {
        fprintf(stderr, "skychat: libsodium failed to initialise\n");
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    /* every thread inherits the blocked set; main takes the signals with sigwait */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    if (sc_store_init(sc_opt.ring)) {
        fprintf(stderr, "skychat: out of memory\n");
        return 1;
    }
    sc_peers_init();
    if (sc_inbox_start(&err)) {
        sw_log_error("cannot listen on app port %u: %s", sc_opt.port, err.msg);
        sc_store_free();
        return 1;
    }
    if (sc_http_start(&err)) {
        sw_log_error("%s", err.msg);
        sc_stop();
        sc_inbox_stop();
        sc_store_free();
        return 1;
    }
    sw_log_info("listening on app port %u; web page on %s (port %u)", sc_opt.port, sc_opt.addr,
                sc_http_port());
    while (sigwait(&set, &sig) != 0)
        ;
    sw_log_info("signal %d: shutting down", sig);
    sc_stop();
    sc_store_wake_all();
    sc_http_stop();
    drained = sc_inbox_stop();
    sc_peers_close();
    if (drained)
        sc_store_free();
    return 0;
}
