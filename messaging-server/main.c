/* messaging-server — relays encrypted streams between keys that cannot reach each other
 * (SPEC §7, docs/messaging.md, docs/messaging-server.md). main.c: flags and life cycle.
 *
 * Threads: main (flags, signals and orderly stop: common/daemon_main.h), the relay loop
 * (loop.c), the HTTP server's workers (http.c), the discovery registration (registry.c). */
#include "messaging-server/ms.h"
#include "common/daemon_main.h"
#include "common/hostport.h"
#include "common/log.h"
#include "common/msg_entry.h"
#include "common/version.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAME "messaging-server"

/* The daemon core's app: the server and what runs beside its relay loop. */
struct ms_daemon {
    struct ms_server srv;
    struct sw_http_server *http;
    struct ms_registry *reg;
};

/* The checks between options, once all are parsed. */
static int configure(void *arg, int argc, char **argv, struct sw_error *err)
{
    struct ms_config *c = &((struct ms_daemon *)arg)->srv.cfg;

    if (c->ping_interval_ms >= c->idle_timeout_ms)
        return sw_error_set(err, SW_EINVAL, "--ping-interval-ms must be below --idle-timeout-ms");
    if (!c->public_addr)
        c->public_addr = c->addr;
    if (strlen(c->public_addr) > SW_MSG_ADDR_MAX || sw_hostport_parse(c->public_addr, 0, NULL, 0, NULL))
        return sw_error_set(err, SW_EINVAL, "--public-addr '%s' is not HOST:PORT", c->public_addr);
    if (c->network && !c->network[0])
        c->network = NULL; /* --network "": open, as when absent */
    if (c->network && (!c->cert_file || !c->cert_file[0]))
        return sw_error_set(err, SW_EINVAL, "--network needs --cert-file (this server's certificate, "
                            "role messaging-server: skywire-cli net sign --pk <key> --role messaging-server)");
    if (!c->network && (c->cert_file || c->revocations))
        return sw_error_set(err, SW_EINVAL, "--cert-file and --revocations need --network");
    return SW_OK;
}

static int load_key(struct ms_server *srv, struct sw_error *err)
{
    struct sw_error why = { 0 };
    char hex[SW_PK_HEX_LEN + 1];
    bool created = false;
    int rc;

    if ((rc = sw_keyfile_load_or_create(srv->cfg.key_file, &srv->kp, &created, &why)))
        return sw_error_set(err, rc, "key file: %s", why.msg);
    sw_pk_to_hex(&srv->kp.pk, hex);
    sw_log_info("public key %s (%s %s)", hex, created ? "new key file" : "key file", srv->cfg.key_file);
    return SW_OK;
}

/* Private network: our certificate must name our key with role messaging-server. */
static int open_network(struct ms_server *srv, struct sw_error *err)
{
    const struct ms_config *c = &srv->cfg;
    const struct sw_network_opts o = {
        .network_pk = c->network, .self = &srv->kp.pk, .cert_file = c->cert_file,
        .self_roles = SW_ROLE_BIT(SW_ROLE_MESSAGING_SERVER), .revocations = c->revocations,
        .refresh_ms = (unsigned)c->revocations_refresh_ms,
    };
    const struct sw_cert *own;
    char hex[SW_PK_HEX_LEN + 1];
    int rc;

    if ((rc = sw_network_open(&srv->net, &o, err)))
        return rc;
    if (!srv->net) {
        sw_log_info("open network: any key may open a session");
        return SW_OK;
    }
    own = sw_network_own_cert_parsed(srv->net);
    sw_pk_to_hex(sw_network_key(srv->net), hex);
    sw_log_info("private network %s: certificate '%s' valid until %llu; revocations from %s", hex,
                own->name, (unsigned long long)own->not_after, c->revocations ? c->revocations : "nowhere");
    return SW_OK;
}

static int start(void *arg, struct sw_error *err)
{
    struct ms_daemon *d = arg;
    const struct ms_config *c = &d->srv.cfg;
    int rc;

    if ((rc = load_key(&d->srv, err)) || (rc = open_network(&d->srv, err)) ||
        (rc = ms_loop_start(&d->srv, err)) ||
        (rc = ms_http_start(&d->srv, &d->http, err)))
        return rc;
    if (c->discovery && (rc = ms_registry_start(&d->srv, &d->reg, err)))
        return rc;
    if (!c->discovery)
        sw_log_info("no --discovery: not registering");
    if (c->discovery && (strncmp(c->public_addr, "0.0.0.0:", 8) == 0 || strncmp(c->public_addr, "[::]:", 5) == 0))
        sw_log_warn("advertising %s: clients elsewhere cannot reach it; set --public-addr", c->public_addr);
    sw_log_info(NAME " %s relaying on %s, http on %s (port %u), advertising %s, max %ld sessions",
                SW_VERSION, c->addr, c->http_addr, sw_http_server_port(d->http), c->public_addr,
                c->max_sessions);
    return SW_OK;
}

static void stop(void *arg)
{
    struct ms_daemon *d = arg;
    ms_registry_signal(d->reg); /* DELETE the entry while the sessions drain */
    ms_loop_stop(&d->srv);
    ms_registry_stop(d->reg);
    sw_http_server_stop(d->http);
    sw_network_close(d->srv.net);
    d->srv.net = NULL;
    sw_keypair_wipe(&d->srv.kp);
    libevent_global_shutdown();
}

int main(int argc, char **argv)
{
    static struct ms_daemon d;
    struct ms_config *c = &d.srv.cfg;
    const struct sw_opt options[] = {
        SW_OPT_STR("addr", "HOST:PORT", "relay listen address (default 0.0.0.0:8081)", &c->addr),
        SW_OPT_STR("http-addr", "HOST:PORT", "/health and /metrics (default 0.0.0.0:8082)", &c->http_addr),
        SW_OPT_STR("key-file", "FILE", "Ed25519 key pair; created (0600) when missing\n(default ./messaging-server.key)",
                   &c->key_file),
        SW_OPT_STR("discovery", "URL", "messaging discovery to register at (default: none)", &c->discovery),
        SW_OPT_STR("public-addr", "HOST:PORT", "address advertised in the entry (default: --addr)", &c->public_addr),
        SW_OPT_NUM("max-sessions", "N", "client sessions (default 2048)", &c->max_sessions, 1, 1000000),
        SW_OPT_NUM("max-streams-per-session", "N", "streams per session (default 1024)", &c->max_streams, 1, 1000000),
        SW_OPT_NUM("max-handshakes", "N", "connections still handshaking; when all are taken the oldest\n"
                   "of the busiest source is evicted (default 512)", &c->max_handshakes, 1, 1000000),
        SW_OPT_NUM("max-handshakes-per-source", "N", "handshakes pending from one IPv4 address or IPv6 /64\n"
                   "once half of --max-handshakes are taken; further connections\n"
                   "from it are closed at once (default 8)",
                   &c->max_handshakes_per_source, 1, 1000000),
        SW_OPT_NUM("first-message-timeout-ms", "MS", "deadline for the client's first handshake message\n"
                   "(default 2000)", &c->first_message_timeout_ms, 10, 600000),
        SW_OPT_NUM("handshake-timeout-ms", "MS", "whole handshake deadline (default 5000)", &c->handshake_timeout_ms, 10, 600000),
        SW_OPT_NUM("open-timeout-ms", "MS", "wait for ACCEPT before REFUSE(timeout) (default 5000)",
                   &c->open_timeout_ms, 10, 600000),
        SW_OPT_NUM("idle-timeout-ms", "MS", "drop a silent session (default 60000)", &c->idle_timeout_ms, 100, 86400000),
        SW_OPT_NUM("ping-interval-ms", "MS", "PING a silent session (default 20000)", &c->ping_interval_ms, 50, 86400000),
        SW_OPT_NUM("max-session-buffer", "BYTES", "unsent output before a session is dropped (default 16777216)",
                   &c->max_session_buffer, 1 << 17, 1L << 34),
        SW_OPT_NUM("register-interval", "SECONDS", "entry refresh period (default 30)", &c->register_interval_s, 1, 3600),
        SW_OPT_CALL("network", "PK", "private network: the network's public key (hex, or a file\n"
                    "holding it); sessions only from members with role visor,\n"
                    "setup-node or service (default: open)", sw_network_opt_key, &c->network),
        SW_OPT_STR("cert-file", "FILE", "this server's certificate, role messaging-server (required\n"
                   "with --network)", &c->cert_file),
        SW_OPT_STR("revocations", "SRC", "revocation list: a transport discovery URL (http://host:port)\n"
                   "or a file, polled (default: none)", &c->revocations),
        SW_OPT_NUM("revocations-refresh-ms", "MS", "how often --revocations is polled (default 20000)",
                   &c->revocations_refresh_ms, 100, 600000),
        SW_OPT_END,
    };
    const struct sw_daemon_def def = {
        .cli = { .prog = NAME, .opts = options, .footer = "environment: SKYWIRE_LOG_LEVEL=debug|info|warn|error\n" },
        /* event_active works across threads */
        .libs = SW_DAEMON_CURL | SW_DAEMON_EVENT_THREADS,
        .configure = configure,
        .start = start,
        .stop = stop,
    };

    *c = (struct ms_config){
        .addr = "0.0.0.0:8081", .http_addr = "0.0.0.0:8082", .key_file = "messaging-server.key",
        .max_sessions = 2048, .max_streams = 1024, .max_handshakes = 512,
        .max_handshakes_per_source = 8, .first_message_timeout_ms = 2000, .handshake_timeout_ms = 5000, .open_timeout_ms = 5000, .idle_timeout_ms = 60000,
        .ping_interval_ms = 20000, .max_session_buffer = 16L << 20, .register_interval_s = 30,
        .revocations_refresh_ms = 20000,
    };
    return sw_daemon_main(&def, &d, argc, argv);
}
