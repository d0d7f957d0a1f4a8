/* messaging-server — relays encrypted streams between keys that cannot reach each other
 * (SPEC §7, docs/messaging.md, docs/messaging-server.md). main.c: flags and life cycle.
 *
 * Threads: main (flags, signals via sw_daemon_wait, orderly stop), the relay loop
 * (loop.c), the HTTP server's workers (http.c), the discovery registration (registry.c). */
#include "messaging-server/ms.h"
#include "common/config.h"
#include "common/daemon.h"
#include "common/http_client.h"
#include "common/log.h"
#include "common/msg_entry.h"
#include "common/version.h"

#include <event2/thread.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAME "messaging-server"

enum {
    OPT_ADDR = 1000, OPT_HTTP_ADDR, OPT_KEY_FILE, OPT_DISCOVERY, OPT_PUBLIC_ADDR, OPT_MAX_SESSIONS,
    OPT_MAX_STREAMS, OPT_MAX_HANDSHAKES, OPT_HS_TIMEOUT, OPT_OPEN_TIMEOUT, OPT_IDLE_TIMEOUT,
    OPT_PING_INTERVAL, OPT_MAX_BUFFER, OPT_REGISTER_INTERVAL, OPT_HELP, OPT_VERSION,
};

static const struct option options[] = {
    { "addr", required_argument, NULL, OPT_ADDR },
    { "http-addr", required_argument, NULL, OPT_HTTP_ADDR },
    { "key-file", required_argument, NULL, OPT_KEY_FILE },
    { "discovery", required_argument, NULL, OPT_DISCOVERY },
    { "public-addr", required_argument, NULL, OPT_PUBLIC_ADDR },
    { "max-sessions", required_argument, NULL, OPT_MAX_SESSIONS },
    { "max-streams-per-session", required_argument, NULL, OPT_MAX_STREAMS },
    { "max-handshakes", required_argument, NULL, OPT_MAX_HANDSHAKES },
    { "handshake-timeout-ms", required_argument, NULL, OPT_HS_TIMEOUT },
    { "open-timeout-ms", required_argument, NULL, OPT_OPEN_TIMEOUT },
    { "idle-timeout-ms", required_argument, NULL, OPT_IDLE_TIMEOUT },
    { "ping-interval-ms", required_argument, NULL, OPT_PING_INTERVAL },
    { "max-session-buffer", required_argument, NULL, OPT_MAX_BUFFER },
    { "register-interval", required_argument, NULL, OPT_REGISTER_INTERVAL },
    { "help", no_argument, NULL, OPT_HELP },
    { "version", no_argument, NULL, OPT_VERSION },
    { NULL, 0, NULL, 0 },
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: " NAME " [options]\n"
            "  --addr HOST:PORT               relay listen address (default 0.0.0.0:8081)\n"
            "  --http-addr HOST:PORT          /health and /metrics (default 0.0.0.0:8082)\n"
            "  --key-file FILE                Ed25519 key pair; created (0600) when missing\n"
            "                                 (default ./messaging-server.key)\n"
            "  --discovery URL                messaging discovery to register at (default: none)\n"
            "  --public-addr HOST:PORT        address advertised in the entry (default: --addr)\n"
            "  --max-sessions N               client sessions (default 2048)\n"
            "  --max-streams-per-session N    streams per session (default 1024)\n"
            "  --max-handshakes N             connections still handshaking (default 512)\n"
            "  --handshake-timeout-ms MS      handshake deadline (default 5000)\n"
            "  --open-timeout-ms MS           wait for ACCEPT before REFUSE(timeout) (default 5000)\n"
            "  --idle-timeout-ms MS           drop a silent session (default 60000)\n"
            "  --ping-interval-ms MS          PING a silent session (default 20000)\n"
            "  --max-session-buffer BYTES     unsent output before a session is dropped (default 16777216)\n"
            "  --register-interval SECONDS    entry refresh period (default 30)\n"
            "  --version                      print the version\n"
            "  --help                         this text\n"
            "environment: SKYWIRE_LOG_LEVEL=debug|info|warn|error\n");
}

static int parse_long(const char *opt, const char *arg, long min, long max, long *out)
{
    char *end;
    long v = strtol(arg, &end, 10);
    if (!*arg || *end || v < min || v > max) {
        fprintf(stderr, NAME ": --%s: '%s' is not a number from %ld to %ld\n", opt, arg, min, max);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_numeric(struct ms_config *c, int opt, const char *arg)
{
    switch (opt) {
    case OPT_MAX_SESSIONS: return parse_long("max-sessions", arg, 1, 1000000, &c->max_sessions);
    case OPT_MAX_STREAMS: return parse_long("max-streams-per-session", arg, 1, 1000000, &c->max_streams);
    case OPT_MAX_HANDSHAKES: return parse_long("max-handshakes", arg, 1, 1000000, &c->max_handshakes);
    case OPT_HS_TIMEOUT: return parse_long("handshake-timeout-ms", arg, 10, 600000, &c->handshake_timeout_ms);
    case OPT_OPEN_TIMEOUT: return parse_long("open-timeout-ms", arg, 10, 600000, &c->open_timeout_ms);
    case OPT_IDLE_TIMEOUT: return parse_long("idle-timeout-ms", arg, 100, 86400000, &c->idle_timeout_ms);
    case OPT_PING_INTERVAL: return parse_long("ping-interval-ms", arg, 50, 86400000, &c->ping_interval_ms);
    case OPT_MAX_BUFFER: return parse_long("max-session-buffer", arg, 1 << 17, 1L << 34, &c->max_session_buffer);
    case OPT_REGISTER_INTERVAL: return parse_long("register-interval", arg, 1, 3600, &c->register_interval_s);
    default: return -1;
    }
}

/* Returns 0 to run, 1 to exit 0 (help/version), -1 on a usage error. */
static int parse_args(struct ms_config *c, int argc, char **argv)
{
    int o;
    *c = (struct ms_config){
        .addr = "0.0.0.0:8081", .http_addr = "0.0.0.0:8082", .key_file = "messaging-server.key",
        .max_sessions = 2048, .max_streams = 1024, .max_handshakes = 512,
        .handshake_timeout_ms = 5000, .open_timeout_ms = 5000, .idle_timeout_ms = 60000,
        .ping_interval_ms = 20000, .max_session_buffer = 16L << 20, .register_interval_s = 30,
    };
    while ((o = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (o) {
        case OPT_ADDR: c->addr = optarg; break;
        case OPT_HTTP_ADDR: c->http_addr = optarg; break;
        case OPT_KEY_FILE: c->key_file = optarg; break;
        case OPT_DISCOVERY: c->discovery = optarg; break;
        case OPT_PUBLIC_ADDR: c->public_addr = optarg; break;
        case OPT_HELP: usage(stdout); return 1;
        case OPT_VERSION: printf(NAME " %s\n", SW_VERSION); return 1;
        case '?': usage(stderr); return -1;
        default:
            if (parse_numeric(c, o, optarg))
                return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, NAME ": unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    if (c->ping_interval_ms >= c->idle_timeout_ms) {
        fprintf(stderr, NAME ": --ping-interval-ms must be below --idle-timeout-ms\n");
        return -1;
    }
    if (!c->public_addr)
        c->public_addr = c->addr;
    if (strlen(c->public_addr) > SW_MSG_ADDR_MAX || sw_hostport_parse(c->public_addr, NULL, 0, NULL)) {
        fprintf(stderr, NAME ": --public-addr '%s' is not HOST:PORT\n", c->public_addr);
        return -1;
    }
    return 0;
}

static int load_key(struct ms_server *srv)
{
    struct sw_error err = { 0 };
    char hex[SW_PK_HEX_LEN + 1];
    bool created = false;

    if (sw_keyfile_load_or_create(srv->cfg.key_file, &srv->kp, &created, &err)) {
        sw_log_error("key file: %s", err.msg);
        return -1;
    }
    sw_pk_to_hex(&srv->kp.pk, hex);
    sw_log_info("public key %s (%s %s)", hex, created ? "new key file" : "key file", srv->cfg.key_file);
    return 0;
}

int main(int argc, char **argv)
{
    static struct ms_server srv;
    struct sw_http_server *http = NULL;
    struct ms_registry *reg = NULL;
    struct sw_error err = { 0 };
    int rc;

    sw_log_init(NAME);
    if ((rc = parse_args(&srv.cfg, argc, argv)))
        return rc > 0 ? 0 : 2;
    /* before any thread: signals reach only sw_daemon_wait; event_active works cross-thread */
    if (sw_daemon_init() || sw_crypto_init() || sw_http_global_init() || evthread_use_pthreads()) {
        sw_log_error("initialisation failed");
        return 1;
    }
    rc = 1;
    if (load_key(&srv))
        goto out;
    if (ms_loop_start(&srv, &err) || ms_http_start(&srv, &http, &err)) {
        sw_log_error("%s", err.msg);
        goto out;
    }
    if (srv.cfg.discovery && ms_registry_start(&srv, &reg, &err)) {
        sw_log_error("%s", err.msg);
        goto out;
    }
    if (!srv.cfg.discovery)
        sw_log_info("no --discovery: not registering");
    if (srv.cfg.discovery && (strncmp(srv.cfg.public_addr, "0.0.0.0:", 8) == 0 || strncmp(srv.cfg.public_addr, "[::]:", 5) == 0))
        sw_log_warn("advertising %s: clients elsewhere cannot reach it; set --public-addr",
                    srv.cfg.public_addr);
    sw_log_info(NAME " %s relaying on %s, http on %s (port %u), advertising %s, max %ld sessions",
                SW_VERSION, srv.cfg.addr, srv.cfg.http_addr, sw_http_server_port(http),
                srv.cfg.public_addr, srv.cfg.max_sessions);
    sw_log_info("stopping on signal %d", sw_daemon_wait());
    rc = 0;
out:
    ms_registry_signal(reg); /* DELETE the entry while the sessions drain */
    ms_loop_stop(&srv);
    ms_registry_stop(reg);
    sw_http_server_stop(http);
    sw_keypair_wipe(&srv.kp);
    libevent_global_shutdown();
    sw_log_info("stopped");
    return rc;
}
