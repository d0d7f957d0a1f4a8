/* net_env.h — a whole local Skywire network for integration tests and benches: transport
 * discovery, messaging discovery, messaging server and, when asked, route finder and setup
 * node (with a key made here), plus helpers for the visors run against them (configs from
 * `skywire-cli node gen-config`, stcp transports, readiness waits). Every process runs on
 * loopback with fresh ports and a fresh database; th_net_stop stops them all by PID.
 *
 * No check assertions inside: functions report failure by their return value (with the reason
 * on stderr), so benches can use them too.
 *
 *     static struct th_net net = { .name = "skychat", .with_rf = true, .with_sn = true };
 *     ck_assert(th_net_start(&net));
 *     ck_assert_int_eq(th_net_visor_gen(&net, &va, "skychat-a", NULL, NULL), 0);
 *     ck_assert_int_eq(th_visor_start(&va), 0);
 *     ck_assert(th_net_wait_sessions(&net, &va, 15000) && th_net_wait_mdisc(&net, va.pk_hex, 15000));
 *     ck_assert_int_eq(th_net_add_stcp(&net, &va, &vb, tp_ab), 201);
 *     ...
 *     th_net_stop(&net, (struct th_visor *[]){ &va, &vb }, 2);
 *
 * With .private_net the network is private (docs/security.md "Membership"): th_net_start makes
 * a network key, signs the messaging server's and setup node's keys, and starts every service
 * with --network (and --cert-file / --revocations where it takes them); th_net_visor_gen signs
 * each visor's key (role visor) and writes the network section into its config. Every party
 * reads its revocation list from the file n->revocations, the route finder from the transport
 * discovery (th_net_member_revoke writes both).
 */
#ifndef SW_TEST_NET_ENV_H
#define SW_TEST_NET_ENV_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "common/http_client.h"
#include "common/keys.h"
#include "common/netcert.h"
#include "common/uuid.h"
#include "tests/harness/members.h"
#include "tests/harness/visor_env.h"

struct th_net {
    /* set by the caller */
    const char *name;       /* names logs SW_TEST_LOG_DIR/<name>-<service>.log, databases
                             * <db_prefix>_td/_md/_sn and the temp dir sw-<name>-it */
    const char *db_prefix;  /* NULL: name */
    const char *temp_dir;   /* prefix for th_temp_dir; NULL: "sw-<name>-it" */
    bool with_rf, with_sn;  /* also start a route finder / a setup node */
    const char *rf_threads; /* route finder --threads; NULL: "4" */
    bool private_net;       /* a private network (see the top) */
    unsigned refresh_ms;    /* private: how often everyone rereads the revocation file; 0: 1000 */
    /* set by th_net_start */
    char dir[256];                       /* private directory: keys, visor configs */
    char td_base[64], md_base[64];       /* http://127.0.0.1:PORT */
    char rf_base[64], sn_base[64];       /* empty without the service */
    char td_db[256];                     /* the transport discovery's database URL */
    struct sw_keypair sn_kp;             /* the setup node's key (made even without it) */
    char sn_hex[SW_PK_HEX_LEN + 1];
    pid_t td_pid, md_pid, ms_pid, rf_pid, sn_pid; /* -1 when not running */
    struct sw_http_client *http;         /* a client for the caller to share */
    /* private network only */
    struct th_network network;           /* the operator's network key (members.h) */
    char revocations[300];               /* the revocation list file (absent: nothing revoked) */
};

/* Makes the setup node key and the directory, then starts the services in order (transport
 * discovery, messaging discovery, route finder, messaging server — waiting until the messaging
 * discovery lists it — then setup node). false at the first failure, with the reason on
 * stderr; what did start is still stopped by th_net_stop. */
bool th_net_start(struct th_net *n);

/* th_visor_gen for this network: --mdisc, --setup-node (setup_node_hex, NULL: the network's),
 * --rf (with a route finder), --sessions 1, then the extra gen-config options (NULL-terminated,
 * may be NULL). In a private network also --network, --cert-file <dir>/<name>.cert (signed
 * here: role visor, name <name>, groups "test", valid a day; replace the file to test other
 * certificates), --revocations n->revocations and network.revocations_refresh_ms. The visor
 * is not started (edit v->config first if needed). 0 on success. */
int th_net_visor_gen(struct th_net *n, struct th_visor *v, const char *name,
                     const char *setup_node_hex, const char *const extra[]);

/* Polls the visor's /api/summary every 100 ms until it reports a messaging session. */
bool th_net_wait_sessions(struct th_net *n, const struct th_visor *v, int timeout_ms);
/* Polls the messaging discovery every 100 ms until it holds the entry of the key pk_hex (a
 * visor's pk_hex, or any messaging client's). */
bool th_net_wait_mdisc(struct th_net *n, const char *pk_hex, int timeout_ms);
/* Both conditions at once in one poll loop (a session and the discovery entry). */
bool th_net_wait_ready(struct th_net *n, const struct th_visor *v, int timeout_ms);

/* POST /api/transports on from: an stcp transport to `to` at its stcp address. Returns the
 * HTTP status (201 on success; -1 when the request failed) and copies the transport ID to id
 * (SW_UUID_STR_LEN + 1 bytes, may be NULL); prints the reply to stderr otherwise. */
long th_net_add_stcp(struct th_net *n, const struct th_visor *from, const struct th_visor *to,
                     char *id);
/* True when GET /api/transports/{id} on v answers with state "up" (one request, no wait). */
bool th_net_tp_up(struct th_net *n, const struct th_visor *v, const char *id);
/* Polls th_net_tp_up every 100 ms up to timeout_ms. */
bool th_net_wait_tp_up(struct th_net *n, const struct th_visor *v, const char *id, int timeout_ms);

/* Private network: th_network_cert_ex of n->network for pk with role (SW_ROLE_*), name and
 * groups ("" for none), valid from now - 60 s for ttl_s seconds (negative: it expired that
 * long ago), to path and hex (SW_CERT_HEX_MAX + 1 bytes), each when not NULL. 0 on success. */
int th_net_member_cert(const struct th_net *n, const struct sw_pk *pk, unsigned role, const char *name,
                       const char *groups, int64_t ttl_s, const char *path, char *hex);
/* Private network: th_network_revoke of n->network to the file n->revocations (keys[count],
 * count 0: nothing revoked), then publishes the list in the running transport discovery
 * (PUT /network/revocations; the route finder reads it there). 0 on success. */
int th_net_member_revoke(struct th_net *n, const struct sw_pk *keys, size_t count);

/* Stops the visors (SIGTERM, th_visor_stop) then every service by PID (5 s grace each) and
 * frees the HTTP client. Safe after a partial start. */
void th_net_stop(struct th_net *n, struct th_visor *const visors[], size_t n_visors);

#endif
