/* Integration tests of messaging in a private network (docs/messaging.md "Private
 * networks"): a real messaging-discovery and messaging-servers started with --network,
 * --cert-file and a revocation list file polled every 200 ms, and in-process messaging
 * clients holding certificates of that network, of another one, of the wrong role, or
 * none. Shows each refusal, the 30-fake-servers attack listing zero fakes, revoked and
 * expired members dropped within seconds, and the roles of streams (listen/dial_roles). */
#include "common/http_client.h"
#include "common/json.h"
#include "common/keys.h"
#include "common/log.h"
#include "common/msg_client.h"
#include "common/msg_entry.h"
#include "common/msg_proto.h"
#include "common/netcert.h"
#include "common/network.h"
#include "tests/harness/api_client.h"
#include "tests/harness/check_main.h"
#include "tests/harness/harness.h"
#include "tests/harness/members.h"
#include "tests/harness/msg_server.h"

#include <check.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define ENTRY "/messaging-discovery/entry/"
#define MAX_REVOKED 16

static struct th_network net, other_net;
static char md_base[64], md_log[512], rev_path[512];
static struct th_msg_server s1 = { .name = "p1" }, s2 = { .name = "p2" };
static struct sw_http_client *http;
static pid_t md_pid = -1;
static struct sw_pk revoked[MAX_REVOKED];
static size_t n_revoked;

static void setup_die(const char *what)
{
    fprintf(stderr, "test_messaging_private setup: %s\n", what);
    th_cleanup();
    exit(EXIT_FAILURE);
}

/* ---- helpers ---------------------------------------------------------------------------- */

static bool log_has(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    char line[4096];
    bool found = false;
    while (f && !found && fgets(line, sizeof(line), f))
        found = strstr(line, needle) != NULL;
    if (f)
        fclose(f);
    return found;
}

static void wait_log(const char *path, const char *needle, int timeout_ms)
{
    int64_t end = sw_deadline_ms(timeout_ms);
    while (!log_has(path, needle) && sw_mono_ms() < end)
        th_sleep_ms(50);
    if (!log_has(path, needle))
        th_dump_log(path);
    ck_assert_msg(log_has(path, needle), "%s: no line with '%s'", path, needle);
}

static void revoke_key(const struct sw_pk *pk)
{
    ck_assert_uint_lt(n_revoked, MAX_REVOKED);
    revoked[n_revoked++] = *pk;
    th_network_revoke_file(&net, revoked, n_revoked, rev_path);
}

static char *entry_body(const struct sw_msg_entry *e)
{
    struct json_object *o = sw_msg_entry_to_json(e);
    char *s = strdup(sw_json_compact(o, NULL));
    json_object_put(o);
    return s;
}

static void make_entry(struct sw_msg_entry *e, const struct sw_keypair *kp, bool server, uint32_t avail)
{
    memset(e, 0, sizeof(*e));
    snprintf(e->version, sizeof(e->version), "%s", SW_MSG_VERSION);
    e->sequence = (uint64_t)sw_unix_ms();
    e->timestamp = (uint64_t)(sw_unix_ms() / 1000);
    e->static_pk = kp->pk;
    if (server) {
        e->has_server = true;
        snprintf(e->address, sizeof(e->address), "127.0.0.1:%u", 1 + (unsigned)randombytes_uniform(60000));
        e->available_sessions = avail;
    } else {
        e->has_client = true;
        e->n_delegated = 1;
        e->delegated[0] = s1.kp.pk;
    }
    sw_msg_entry_sign(e, kp);
}

/* POSTs an entry of kp with cert_hex in SW-Cert ("" or NULL: none); returns the status and
 * checks the error code of a 403. */
static long post_entry(const struct sw_keypair *kp, bool server, uint32_t avail, const char *cert_hex)
{
    struct sw_msg_entry e;
    struct sw_http_result res = { 0 };
    struct sw_error err = { 0 };
    char url[128], h[SW_CERT_HEX_MAX + 32];
    const char *headers[2] = { h, NULL };
    char *body;
    long status;

    make_entry(&e, kp, server, avail);
    body = entry_body(&e);
    snprintf(url, sizeof(url), "%s" ENTRY, md_base);
    snprintf(h, sizeof(h), SW_HDR_CERT ": %s", cert_hex ? cert_hex : "");
    ck_assert_int_eq(sw_http_do(http, "POST", url, cert_hex && cert_hex[0] ? headers : NULL, body, strlen(body),
                                &res, &err), SW_OK);
    status = res.status;
    if (status == 403)
        ck_assert_msg(strstr(res.body, "\"not_a_member\""), "403 body: %s", res.body);
    sw_http_result_free(&res);
    free(body);
    return status;
}

static long get_entry(const struct sw_pk *pk)
{
    char target[160], hex[SW_PK_HEX_LEN + 1];
    sw_pk_to_hex(pk, hex);
    snprintf(target, sizeof(target), ENTRY "%s", hex);
    return th_call(http, md_base, "GET", target, NULL, NULL, NULL);
}

static void wait_entry_status(const struct sw_pk *pk, long want, int timeout_ms)
{
    int64_t end = sw_deadline_ms(timeout_ms);
    long st;
    while ((st = get_entry(pk)) != want && sw_mono_ms() < end)
        th_sleep_ms(50);
    ck_assert_int_eq(st, want);
}

/* Does GET available_servers (or all_servers) list pk? Also counts the entries. */
static bool servers_list(bool available, const struct sw_pk *pk, size_t *count)
{
    struct json_object *o;
    char hex[SW_PK_HEX_LEN + 1];
    bool found = false;
    sw_pk_to_hex(pk, hex);
    ck_assert_int_eq(th_call(http, md_base, "GET",
                             available ? "/messaging-discovery/available_servers?limit=1000"
                                       : "/messaging-discovery/all_servers",
                             NULL, NULL, &o), 200);
    for (size_t i = 0; i < json_object_array_length(o); i++) {
        const char *k = json_object_get_string(json_object_object_get(json_object_array_get_idx(o, i), "static"));
        found = found || (k && strcmp(k, hex) == 0);
    }
    if (count)
        *count = json_object_array_length(o);
    json_object_put(o);
    return found;
}

/* A messaging client of n's network with role (n NULL: open, no certificate). */
struct member {
    struct sw_keypair kp;
    struct sw_network *net;
    struct sw_msg_client *c;
};

static void member_start(struct member *m, const struct th_network *n, unsigned role, int64_t ttl_s,
                         const struct th_msg_server *fixed)
{
    static unsigned seq;
    struct sw_msg_client_config cfg;
    struct sw_msg_server_addr a;
    struct sw_error err = { 0 };
    char name[64], path[512];

    memset(m, 0, sizeof(*m));
    ck_assert_int_eq(sw_keypair_generate(&m->kp), SW_OK);
    if (n) {
        snprintf(name, sizeof(name), "member-%d-%u.cert", (int)getpid(), seq++);
        snprintf(path, sizeof(path), "%s", th_log_path(name));
        th_network_cert_file(n, &m->kp.pk, role, ttl_s, path);
        struct sw_network_opts o = { .network_pk = n->pk_hex, .self = &m->kp.pk, .cert_file = path };
        ck_assert_msg(sw_network_open(&m->net, &o, &err) == SW_OK, "%s", err.msg);
    }
    memset(&cfg, 0, sizeof(cfg));
    cfg.kp = m->kp;
    cfg.discovery_url = md_base;
    cfg.n_servers = 1;
    cfg.network = m->net;
    if (fixed) {
        memset(&a, 0, sizeof(a));
        a.pk = fixed->kp.pk;
        snprintf(a.address, sizeof(a.address), "%s", fixed->addr);
        cfg.servers = &a;
        cfg.n_fixed_servers = 1;
    }
    ck_assert_msg(sw_msg_client_start(&cfg, &m->c, &err) == SW_OK, "%s", err.msg);
}

static void member_stop(struct member *m)
{
    sw_msg_client_stop(m->c);
    sw_network_close(m->net);
    sw_keypair_wipe(&m->kp);
}

static unsigned sessions_of(struct sw_msg_client *c)
{
    struct sw_msg_client_stats st;
    sw_msg_client_stats(c, &st);
    return st.sessions;
}

static void wait_sessions(struct sw_msg_client *c, unsigned want, int timeout_ms)
{
    int64_t end = sw_deadline_ms(timeout_ms);
    while (sessions_of(c) != want && sw_mono_ms() < end)
        th_sleep_ms(20);
    ck_assert_msg(sessions_of(c) == want, "sessions %u, want %u", sessions_of(c), want);
}

/* Value of one metric sample of a messaging server, -1 when absent. */
static double metric(const struct th_msg_server *s, const char *sample)
{
    struct sw_http_result res = { 0 };
    char url[128];
    double v = -1;
    size_t n = strlen(sample);
    snprintf(url, sizeof(url), "%s/metrics", s->http_base);
    ck_assert_int_eq(sw_http_do(http, "GET", url, NULL, NULL, 0, &res, NULL), SW_OK);
    for (const char *line = res.body; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
        if (strncmp(line, sample, n) == 0 && line[n] == ' ') {
            v = strtod(line + n + 1, NULL);
            break;
        }
    sw_http_result_free(&res);
    return v;
}

/* ---- the messaging discovery -------------------------------------------------------------- */

START_TEST(test_discovery_entries_need_membership)
{
    struct sw_keypair kp, other;
    char cert[SW_CERT_HEX_MAX + 1];

    sw_keypair_generate(&kp);
    sw_keypair_generate(&other);
    /* client entries: a fresh key without a certificate, one of another network, another
     * key's, a member of a role that has no client entries */
    ck_assert_int_eq(post_entry(&kp, false, 0, NULL), 403);
    th_network_cert(&other_net, &kp.pk, SW_ROLE_VISOR, 3600, cert, NULL, NULL);
    ck_assert_int_eq(post_entry(&kp, false, 0, cert), 403);
    th_network_cert(&net, &other.pk, SW_ROLE_VISOR, 3600, cert, NULL, NULL);
    ck_assert_int_eq(post_entry(&kp, false, 0, cert), 403);
    th_network_cert(&net, &kp.pk, SW_ROLE_MESSAGING_SERVER, 3600, cert, NULL, NULL);
    ck_assert_int_eq(post_entry(&kp, false, 0, cert), 403);
    th_network_cert(&net, &kp.pk, SW_ROLE_VISOR, -5, cert, NULL, NULL); /* expired */
    ck_assert_int_eq(post_entry(&kp, false, 0, cert), 403);
    ck_assert_int_eq(get_entry(&kp.pk), 404);
    for (unsigned role = SW_ROLE_VISOR; role <= SW_ROLE_SERVICE; role++) {
        if (role == SW_ROLE_MESSAGING_SERVER)
            continue;
        sw_keypair_generate(&kp);
        th_network_cert(&net, &kp.pk, role, 3600, cert, NULL, NULL);
        ck_assert_msg(post_entry(&kp, false, 0, cert) == 200, "role %s", sw_role_name(role));
        ck_assert_int_eq(get_entry(&kp.pk), 200);
    }
    /* server entries: a visor key posing as a messaging server is refused */
    sw_keypair_generate(&kp);
    th_network_cert(&net, &kp.pk, SW_ROLE_VISOR, 3600, cert, NULL, NULL);
    ck_assert_int_eq(post_entry(&kp, true, 10, cert), 403);
    ck_assert_int_eq(post_entry(&kp, true, 10, NULL), 403);
    th_network_cert(&net, &kp.pk, SW_ROLE_MESSAGING_SERVER, 3600, cert, NULL, NULL);
    ck_assert_int_eq(post_entry(&kp, true, 10, cert), 200);
    ck_assert(servers_list(false, &kp.pk, NULL));
    wait_log(md_log, "not a member in this role: role visor, expected messaging-server", 2000);
    sw_keypair_wipe(&kp);
    sw_keypair_wipe(&other);
}
END_TEST

/* The attack of issue 19: 30 fresh keys post server entries claiming 4294967295 free
 * sessions. In a private network none is listed, and members keep using the real servers,
 * also after a messaging server restarts. */
START_TEST(test_thirty_fake_servers)
{
    struct member v;
    char cert[SW_CERT_HEX_MAX + 1];
    size_t count;

    for (int i = 0; i < 30; i++) {
        struct sw_keypair fake;
        sw_keypair_generate(&fake);
        if (i % 3 == 0) /* no certificate at all */
            ck_assert_int_eq(post_entry(&fake, true, UINT32_MAX, NULL), 403);
        else if (i % 3 == 1) /* a member visor posing as a server */
            th_network_cert(&net, &fake.pk, SW_ROLE_VISOR, 3600, cert, NULL, NULL);
        else /* a messaging server of another network */
            th_network_cert(&other_net, &fake.pk, SW_ROLE_MESSAGING_SERVER, 3600, cert, NULL, NULL);
        if (i % 3)
            ck_assert_int_eq(post_entry(&fake, true, UINT32_MAX, cert), 403);
        sw_keypair_wipe(&fake);
    }
    for (int i = 0; i < 10; i++) {
        struct json_object *o;
        ck_assert_int_eq(th_call(http, md_base, "GET", "/messaging-discovery/available_servers", NULL, NULL, &o),
                         200);
        for (size_t j = 0; j < json_object_array_length(o); j++) {
            struct json_object *srv = json_object_object_get(json_object_array_get_idx(o, j), "server");
            ck_assert_int_lt(json_object_get_int64(json_object_object_get(srv, "available_sessions")),
                             UINT32_MAX); /* zero fakes */
        }
        json_object_put(o);
    }
    ck_assert(servers_list(true, &s1.kp.pk, &count));

    /* a member reconnects normally after the server restarts */
    member_start(&v, &net, SW_ROLE_VISOR, 3600, &s1);
    ck_assert_int_eq(sw_msg_client_wait_ready(v.c, 15000), SW_OK);
    kill(s1.pid, SIGKILL);
    th_stop(s1.pid, 2000);
    wait_sessions(v.c, 0, 5000);
    ck_assert_msg(th_msg_server_start(&s1, md_base), "s1 did not restart");
    wait_sessions(v.c, 1, 20000);
    member_stop(&v);
}
END_TEST

/* ---- the messaging server --------------------------------------------------------------- */

START_TEST(test_server_refuses_non_members)
{
    struct member open_client, foreign, wrong_role;
    double before = metric(&s1, "ms_handshakes_total{result=\"not_a_member\"}");

    member_start(&open_client, NULL, 0, 0, &s1);                             /* no certificate */
    member_start(&wrong_role, &net, SW_ROLE_MESSAGING_SERVER, 3600, &s1);    /* not a client role */
    member_start(&foreign, &other_net, SW_ROLE_VISOR, 3600, &s1);            /* another network */
    th_sleep_ms(2000);
    ck_assert_uint_eq(sessions_of(open_client.c), 0);
    ck_assert_uint_eq(sessions_of(wrong_role.c), 0);
    ck_assert_uint_eq(sessions_of(foreign.c), 0);
    ck_assert(metric(&s1, "ms_handshakes_total{result=\"not_a_member\"}") >= before + 2);
    wait_log(s1.log, "refused: client not a member: no certificate", 2000);
    wait_log(s1.log, "refused: client not a member in this role: role messaging-server", 2000);
    /* the foreign client refuses the server itself (its certificate is of our network) */
    member_stop(&open_client);
    member_stop(&wrong_role);
    member_stop(&foreign);
}
END_TEST

START_TEST(test_revoked_member_dropped)
{
    struct member v, w;
    int64_t t0;

    member_start(&v, &net, SW_ROLE_VISOR, 3600, NULL); /* servers from the discovery */
    member_start(&w, &net, SW_ROLE_VISOR, 3600, NULL);
    ck_assert_int_eq(sw_msg_client_wait_ready(v.c, 15000), SW_OK);
    ck_assert_int_eq(sw_msg_client_wait_ready(w.c, 15000), SW_OK);
    ck_assert_int_eq(get_entry(&v.kp.pk), 200);
    ck_assert(servers_list(true, &s2.kp.pk, NULL));

    t0 = sw_mono_ms();
    revoke_key(&v.kp.pk);
    revoke_key(&s2.kp.pk);
    /* well within a minute: the session, the client's entry and the revoked server's listing */
    wait_sessions(v.c, 0, 10000);
    wait_entry_status(&v.kp.pk, 404, 10000);
    {
        int64_t end = sw_deadline_ms(10000);
        while (servers_list(false, &s2.kp.pk, NULL) && sw_mono_ms() < end)
            th_sleep_ms(50);
        ck_assert(!servers_list(false, &s2.kp.pk, NULL));
        ck_assert(!servers_list(true, &s2.kp.pk, NULL));
    }
    fprintf(stderr, "revoked member dropped %lld ms after the new list\n", (long long)sw_ms_since(t0));
    ck_assert_int_lt(sw_ms_since(t0), 60000);
    /* one log line: the server it was on (the discovery chose) names the reason */
    {
        char hex[SW_PK_HEX_LEN + 1], needle[SW_PK_HEX_LEN + 64];
        sw_pk_to_hex(&v.kp.pk, hex);
        snprintf(needle, sizeof(needle), "closed: not a member: %s is revoked", hex);
        wait_log(log_has(s2.log, needle) ? s2.log : s1.log, needle, 2000);
    }
    ck_assert(metric(&s1, "ms_members_evicted_total") + metric(&s2, "ms_members_evicted_total") >= 1);
    /* and it stays out; the other member is untouched */
    th_sleep_ms(1500);
    ck_assert_uint_eq(sessions_of(v.c), 0);
    ck_assert_uint_eq(sessions_of(w.c), 1);
    ck_assert_int_eq(get_entry(&w.kp.pk), 200);
    member_stop(&v);
    member_stop(&w);
}
END_TEST

START_TEST(test_expired_member_dropped)
{
    struct member v;
    int64_t t0 = sw_mono_ms();

    member_start(&v, &net, SW_ROLE_VISOR, 4, &s1); /* valid for 4 more seconds */
    ck_assert_int_eq(sw_msg_client_wait_ready(v.c, 3000), SW_OK);
    ck_assert_int_eq(get_entry(&v.kp.pk), 200);
    wait_sessions(v.c, 0, 10000);
    ck_assert_int_ge(sw_ms_since(t0), 2500);
    wait_log(s1.log, "certificate expired", 2000);
    wait_entry_status(&v.kp.pk, 404, 3000); /* the discovery no longer serves its entry */
    member_stop(&v);
}
END_TEST

/* A messaging server cannot run with a certificate of another role. */
START_TEST(test_server_needs_its_role)
{
    struct sw_keypair kp;
    struct sw_error err = { 0 };
    char key[512], cert[512], log[512], addr[32], haddr[32];
    int st;

    sw_keypair_generate(&kp);
    snprintf(key, sizeof(key), "%s", th_log_path("ms-visor-role.key"));
    snprintf(cert, sizeof(cert), "%s", th_log_path("ms-visor-role.cert"));
    snprintf(log, sizeof(log), "%s", th_log_path("ms-visor-role.log"));
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", th_free_port());
    snprintf(haddr, sizeof(haddr), "127.0.0.1:%u", th_free_port());
    unlink(key);
    ck_assert_int_eq(sw_keyfile_save(key, &kp, &err), SW_OK);
    th_network_cert_file(&net, &kp.pk, SW_ROLE_VISOR, 3600, cert);
    const char *argv[] = { th_bin("messaging-server"), "--addr", addr, "--http-addr", haddr, "--key-file", key,
                           "--network", net.pk_hex, "--cert-file", cert, NULL };
    pid_t pid = th_spawn(argv, NULL, log);
    ck_assert_int_gt(pid, 0);
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) != 0);
    ck_assert(log_has(log, "role visor, this daemon needs messaging-server"));
    sw_keypair_wipe(&kp);
}
END_TEST

/* ---- streams: the roles a listener admits and a dialer expects ---------------------------- */

static void roundtrip(int fd, int conn)
{
    char buf[4];
    ck_assert_int_eq(send(fd, "ping", 4, MSG_NOSIGNAL), 4);
    ck_assert_int_eq(read(conn, buf, 4), 4);
    ck_assert_mem_eq(buf, "ping", 4);
    close(fd);
    close(conn);
}

START_TEST(test_stream_roles)
{
    struct member visor, setup, service, open_client;
    struct sw_error err = { 0 };
    struct sw_pk remote;
    int l7 = -1, l8 = -1, fd = -1, conn = -1, refusal = 0;

    member_start(&visor, &net, SW_ROLE_VISOR, 3600, &s1);
    member_start(&setup, &net, SW_ROLE_SETUP_NODE, 3600, &s1);
    member_start(&service, &net, SW_ROLE_SERVICE, 3600, &s1);
    member_start(&open_client, NULL, 0, 0, NULL); /* an open network's client on its own */
    ck_assert_int_eq(sw_msg_client_wait_ready(visor.c, 15000), SW_OK);
    ck_assert_int_eq(sw_msg_client_wait_ready(setup.c, 15000), SW_OK);
    ck_assert_int_eq(sw_msg_client_wait_ready(service.c, 15000), SW_OK);

    /* the setup node's port 7 admits visors only; port 8 any member */
    ck_assert_int_eq(sw_msg_listen_roles(setup.c, 7, SW_ROLE_BIT(SW_ROLE_VISOR), &l7, &err), SW_OK);
    ck_assert_int_eq(sw_msg_listen_roles(setup.c, 8, 0, &l8, &err), SW_OK);

    ck_assert_msg(sw_msg_dial(visor.c, &setup.kp.pk, 7, 10000, &fd, &refusal, &err) == SW_OK, "%s", err.msg);
    ck_assert_int_eq(sw_msg_accept(l7, 5000, &conn, &remote, NULL, &err), SW_OK);
    ck_assert(sw_pk_equal(&remote, &visor.kp.pk));
    roundtrip(fd, conn);

    /* a service is refused by port 7 with a clear reason, and nothing reaches accept */
    ck_assert_int_eq(sw_msg_dial(service.c, &setup.kp.pk, 7, 10000, &fd, &refusal, &err), SW_EPERM);
    ck_assert_msg(strstr(err.msg, "refused our certificate"), "%s", err.msg);
    ck_assert_int_eq(sw_msg_accept(l7, 500, &conn, NULL, NULL, &err), SW_ETIMEDOUT);
    /* port 8 takes it */
    ck_assert_msg(sw_msg_dial(service.c, &setup.kp.pk, 8, 10000, &fd, &refusal, &err) == SW_OK, "%s", err.msg);
    ck_assert_int_eq(sw_msg_accept(l8, 5000, &conn, NULL, NULL, &err), SW_OK);
    roundtrip(fd, conn);

    /* the dialer's side: a visor expecting a setup node gets one; expecting a visor it refuses */
    ck_assert_msg(sw_msg_dial_roles(visor.c, &setup.kp.pk, 7, SW_ROLE_BIT(SW_ROLE_SETUP_NODE), 10000, &fd,
                                    &refusal, &err) == SW_OK, "%s", err.msg);
    ck_assert_int_eq(sw_msg_accept(l7, 5000, &conn, NULL, NULL, &err), SW_OK);
    roundtrip(fd, conn);
    ck_assert_int_eq(sw_msg_dial_roles(visor.c, &setup.kp.pk, 7, SW_ROLE_BIT(SW_ROLE_VISOR), 10000, &fd,
                                       &refusal, &err), SW_EPERM);
    ck_assert_msg(strstr(err.msg, "role setup-node, expected visor"), "%s", err.msg);
    ck_assert_int_eq(refusal, SW_REFUSE_REFUSED);
    /* a key of no network reaches no member: the private servers turn it away */
    th_sleep_ms(500);
    ck_assert_uint_eq(sessions_of(open_client.c), 0);

    close(l7);
    close(l8);
    member_stop(&visor);
    member_stop(&setup);
    member_stop(&service);
    member_stop(&open_client);
}
END_TEST

/* Both daemons stop cleanly with their network policies (exit 0; under ASan: no leaks). */
START_TEST(test_clean_stop)
{
    int st = th_stop(s2.pid, 10000);
    s2.pid = -1;
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "messaging-server exit status 0x%x", st);
    st = th_stop(md_pid, 10000);
    md_pid = -1;
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "messaging-discovery exit status 0x%x", st);
}
END_TEST

static Suite *private_suite(void)
{
    Suite *s = suite_create("messaging_private");
    TCase *tc = tcase_create("members");
    tcase_set_timeout(tc, 90);
    tcase_add_test(tc, test_discovery_entries_need_membership);
    tcase_add_test(tc, test_server_refuses_non_members);
    tcase_add_test(tc, test_server_needs_its_role);
    tcase_add_test(tc, test_stream_roles);
    tcase_add_test(tc, test_expired_member_dropped);
    tcase_add_test(tc, test_thirty_fake_servers);
    tcase_add_test(tc, test_revoked_member_dropped); /* late: it revokes s2 */
    tcase_add_test(tc, test_clean_stop);
    suite_add_tcase(s, tc);
    return s;
}

static int start_all(void)
{
    char addr[32], db_url[256];
    uint16_t port = th_free_port();

    signal(SIGPIPE, SIG_IGN);
    sw_log_init("test-messaging-private");
    if (th_check_init_crypto_http() != 0)
        return -1;
    th_network_init(&net);
    th_network_init(&other_net);
    http = sw_http_client_new(NULL);
    snprintf(rev_path, sizeof(rev_path), "%s", th_log_path("private-revocations.hex"));
    unlink(rev_path); /* nothing revoked yet */
    snprintf(db_url, sizeof(db_url), "%s", th_fresh_db("msg_priv"));
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", port);
    snprintf(md_base, sizeof(md_base), "http://%s", addr);
    snprintf(md_log, sizeof(md_log), "%s", th_log_path("msg-discovery-private.log"));
    const char *argv[] = { th_bin("messaging-discovery"), "--addr", addr, "--db", db_url, "--threads", "8",
                           "--expire-interval", "1", "--network", net.pk_hex, "--revocations", rev_path,
                           "--revocations-refresh-ms", "200", NULL };
    if ((md_pid = th_start_service(argv, port, md_log)) <= 0)
        setup_die("messaging-discovery did not start");
    s1.net = s2.net = &net;
    s1.revocations = s2.revocations = rev_path;
    s1.revocations_refresh_ms = s2.revocations_refresh_ms = "200";
    if (!th_msg_server_init(&s1, "messaging-server", md_base) || !th_msg_server_init(&s2, "messaging-server", md_base))
        setup_die("a private messaging-server did not start or register");
    return 0;
}

static void stop_all(void)
{
    sw_http_client_free(http);
    th_cleanup();
}

const struct th_check_main th_check_main = {
    .suite = private_suite,
    .fork = CK_NOFORK,
    .before = start_all,
    .after = stop_all,
};
