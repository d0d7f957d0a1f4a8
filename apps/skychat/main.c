/* skychat — chat between visors, with a web page (apps/skychat/README.md).
 *
 *   skychat [-addr HOST:PORT] [-remote-port N] [-dial-timeout S] [-ack-timeout S]
 *           [-sse-keepalive S] [-max-sse N] [-history N] [-allowed-host NAME]...
 *
 * A visor app: talks to its visor through $SKYWIRE_APP_SOCKET, listens for chats on
 * $SKYWIRE_APP_PORT (default 1), serves the page and API on -addr (default :8000). */
#include "apps/skychat/chat.h"
#include "common/daemon.h"
#include "common/http_server.h"
#include "common/keys.h"
#include "common/log.h"
#include "common/opts.h"
#include "visor/app/app.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sc_options sc_opt;
static atomic_bool stopping;

bool sc_stopping(void)
{
    return atomic_load(&stopping);
}

const atomic_bool *sc_stop_flag(void)
{
    return &stopping;
}

void sc_stop(void)
{
    atomic_store(&stopping, true);
}

static int opt_addr(void *arg, const char *v, struct sw_error *err)
{
    if (!*v || strlen(v) >= sizeof(sc_opt.addr))
        return SW_EINVAL;
    snprintf(sc_opt.addr, sizeof(sc_opt.addr), "%s", v);
    return SW_OK;
}

static int opt_allowed_host(void *arg, const char *v, struct sw_error *err)
{
    if (!sw_http_host_valid(v) || sc_opt.n_allowed_hosts >= SC_MAX_ALLOWED_HOSTS)
        return SW_EINVAL; /* a name or address, no port; at most 16 */
    sc_opt.allowed_hosts[sc_opt.n_allowed_hosts++] = v;
    return SW_OK;
}

/* The environment the visor sets: own app port and key. 0, or 2 after saying why. */
static int read_env(void)
{
    const char *self = getenv("SKYWIRE_VISOR_PK");
    struct sw_error err = { 0 };

    if (sw_app_own_port(1, &sc_opt.port, &err)) {
        fprintf(stderr, "skychat: %s\n", err.msg);
        return 2;
    }
    if (self && *self) {
        if (sw_pk_from_hex(&sc_opt.self, self, "SKYWIRE_VISOR_PK", &err)) {
            fprintf(stderr, "skychat: %s\n", err.msg);
            return 2;
        }
        sc_opt.have_self = true;
    }
    return 0;
}

/* SW_OPTS_CONTINUE, or the exit status (0 after -help, 2 after a bad flag). */
static int parse_args(int argc, char **argv)
{
    long remote = 0, dial_s = 20, ack_s = 10, keepalive_s = 15, max_sse = 32, history = SC_RING_DEFAULT;
    const struct sw_opt options[] = {
        SW_OPT_CALL("addr", "HOST:PORT", "web page and API address (default :8000 = every interface;\n"
                    "127.0.0.1:8000 for this host only)", opt_addr, NULL),
        SW_OPT_CALL("allowed-host", "NAME", "a host name or address the page may be opened under, besides\n"
                    "localhost, 127.0.0.1, [::1] and -addr's host (repeatable)", opt_allowed_host, NULL),
        SW_OPT_NUM("remote-port", "N", "the recipients' skychat app port (default: own port)", &remote, 1, 65535),
        SW_OPT_NUM("dial-timeout", "S", "seconds to wait for a route to a recipient (default 20)", &dial_s, 1, 300),
        SW_OPT_NUM("ack-timeout", "S", "seconds to wait for a recipient's acknowledgement (default 10)", &ack_s, 1, 300),
        SW_OPT_NUM("sse-keepalive", "S", "seconds between keep-alive comments on /sse (default 15)", &keepalive_s,
                   1, 3600),
        SW_OPT_NUM("max-sse", "N", "open /sse streams at most (default 32)", &max_sse, 1, 100),
        SW_OPT_NUM("history", "N", "messages kept in memory (default 1000)", &history, 1, 1000000),
        SW_OPT_END,
    };
    const struct sw_opts cli = {
        .prog = "skychat", .dash = "-", .opts = options,
        .synopsis = "[-addr HOST:PORT] [-remote-port N] [-dial-timeout S] [-ack-timeout S]\n"
                    "               [-sse-keepalive S] [-max-sse N] [-history N] [-allowed-host NAME]...",
        .footer = "Run by a visor (config apps: {\"app\":\"skychat\",\"port\":1,\"args\":[\"-addr\",\":8000\"]}):\n"
                  "it reads SKYWIRE_APP_SOCKET, SKYWIRE_APP_PORT and SKYWIRE_VISOR_PK.\n",
    };
    int rc;

    snprintf(sc_opt.addr, sizeof(sc_opt.addr), ":8000");
    if ((rc = read_env()) || (rc = sw_opts_main(&cli, argc, argv, NULL)) != SW_OPTS_CONTINUE)
        return rc;
    sc_opt.remote_port = remote ? (uint16_t)remote : sc_opt.port;
    sc_opt.dial_timeout_ms = (int)dial_s * 1000;
    sc_opt.ack_timeout_ms = (int)ack_s * 1000;
    sc_opt.sse_keepalive_ms = (int)keepalive_s * 1000;
    sc_opt.max_sse = (unsigned)max_sse;
    sc_opt.ring = (size_t)history;
    return SW_OPTS_CONTINUE;
}

int main(int argc, char **argv)
{
    struct sw_error err = { 0 };
    int rc;
    bool drained;

    sw_log_init("skychat");
    if ((rc = parse_args(argc, argv)) != SW_OPTS_CONTINUE)
        return rc;
    if (sw_crypto_init()) {
        fprintf(stderr, "skychat: libsodium failed to initialise\n");
        return 1;
    }
    /* before any thread: every thread inherits the blocked set; main takes the signals */
    if (sw_daemon_init()) {
        fprintf(stderr, "skychat: cannot block the stop signals\n");
        return 1;
    }
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
    sw_log_info("signal %d: shutting down", sw_daemon_wait());
    sc_stop();
    sc_store_wake_all();
    sc_http_stop();
    drained = sc_inbox_stop();
    sc_peers_close();
    if (drained)
        sc_store_free();
    return 0;
}
