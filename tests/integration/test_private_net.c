/* A whole private network (docs/security.md "Membership"), with real services started by
 * tests/harness/net_env.c with .private_net: every service has --network, the messaging
 * server and setup node hold certificates, and three visors A, B, C (members, role visor)
 * get theirs from th_net_visor_gen. Transports A-B and B-C are stcp; C runs helloworld.
 *
 * Checked: a route A -> B -> C found by the route finder and installed by the setup node
 * carries helloworld's "pong" (the setup node's streams and the visors' rule servers admit
 * each other by role); a dmsg transport between members comes up and the private transport
 * discovery (which wants both edges' certificates) lists it; a member with role visor that
 * is even listed in a visor's routing.setup_nodes cannot open its rule server (role
 * setup-node needed), nor can it dial a visor's dmsg transport port with a service
 * certificate; the setup node serves only visors (a service's stream to port 2 is refused)
 * and installs rules only on visors (a path through a service's key fails before any rule,
 * naming why); a revoked visor's transport is closed within seconds of the new list. */
#include "common/http_client.h"
#include "common/json.h"
#include "common/keys.h"
#include "common/msg_client.h"
#include "common/network.h"
#include "common/setup_proto.h"
#include "common/uuid.h"
#include "tests/harness/api_client.h"
#include "tests/harness/check_main.h"
#include "tests/harness/harness.h"
#include "tests/harness/net_env.h"
#include "tests/harness/visor_env.h"

#include <check.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct th_visor va, vb, vc;
static struct th_net net = { .name = "private", .with_rf = true, .with_sn = true, .private_net = true,
                             .refresh_ms = 500 };
static struct sw_http_client *http; /* net.http */
static char tp_ab[SW_UUID_STR_LEN + 1], tp_bc[SW_UUID_STR_LEN + 1];
static struct sw_keypair fake_sn; /* listed in A's routing.setup_nodes, but signed as a visor */
static char fake_sn_hex[SW_PK_HEX_LEN + 1];

static long api(const struct th_visor *v, const char *method, const char *target, const char *body,
                struct json_object **out)
{
    return th_call(http, v->api, method, target, body, NULL, out);
}

static const char *jstr(struct json_object *o, const char *key)
{
    return json_object_get_string(json_object_object_get(o, key));
}

static void setup(void)
{
    ck_assert_msg(th_net_start(&net), "the services did not start");
    http = net.http;
    sw_keypair_generate(&fake_sn);
    sw_pk_to_hex(&fake_sn.pk, fake_sn_hex);
    const char *extra_a[] = { "--setup-node", fake_sn_hex, NULL };
    ck_assert_int_eq(th_net_visor_gen(&net, &va, "private-a", NULL, extra_a), 0);
    ck_assert_int_eq(th_net_visor_gen(&net, &vb, "private-b", NULL, NULL), 0);
    ck_assert_int_eq(th_net_visor_gen(&net, &vc, "private-c", NULL, NULL), 0);
    ck_assert_int_eq(th_visor_set_apps(&vc, json_tokener_parse("[{\"app\":\"helloworld\",\"auto_start\":true,\"port\":1}]")), 0);
    ck_assert_int_eq(th_visor_start(&va), 0);
    ck_assert_int_eq(th_visor_start(&vb), 0);
    ck_assert_int_eq(th_visor_start(&vc), 0);
    ck_assert_msg(th_net_wait_ready(&net, &va, 15000) && th_net_wait_ready(&net, &vb, 15000) &&
                  th_net_wait_ready(&net, &vc, 15000), "the visors have no messaging session");
    ck_assert_int_eq(th_net_add_stcp(&net, &va, &vb, tp_ab), 201);
    ck_assert_int_eq(th_net_add_stcp(&net, &vb, &vc, tp_bc), 201);
}

static void teardown(void)
{
    th_net_stop(&net, (struct th_visor *const[]){ &va, &vb, &vc }, 3);
    sw_keypair_wipe(&fake_sn);
    http = NULL;
}

/* Waits for the transport discovery's view of id: want 1 = up, 0 = down, -1 = absent. */
static bool wait_disc(const char *id, int want, int timeout_ms)
{
    char target[96];
    snprintf(target, sizeof(target), "/transports/id:%s", id);
    for (int waited = 0;; waited += 100) {
        struct json_object *o = NULL;
        long st = th_call(http, net.td_base, "GET", target, NULL, NULL, &o);
        bool ok = want < 0 ? st == 404
                           : st == 200 && json_object_get_boolean(json_object_object_get(o, "is_up")) == (want == 1);
        json_object_put(o);
        if (ok)
            return true;
        if (waited >= timeout_ms)
            return false;
        th_sleep_ms(100);
    }
}

/* An in-process messaging client of the network with key kp and a certificate of role. */
struct member {
    struct sw_network *net;
    struct sw_msg_client *c;
};

static void member_start(struct member *m, const struct sw_keypair *kp, unsigned role, const char *name)
{
    char cert[512];
    struct sw_error err = { 0 };
    struct sw_msg_client_config cfg = { .kp = *kp, .discovery_url = net.md_base, .n_servers = 1 };

    snprintf(cert, sizeof(cert), "%s/%s.cert", net.dir, name);
    ck_assert_int_eq(th_net_member_cert(&net, &kp->pk, role, name, "", 3600, cert, NULL), 0);
    const struct sw_network_opts o = { .network_pk = net.network.pk_hex, .self = &kp->pk, .cert_file = cert };
    ck_assert_msg(sw_network_open(&m->net, &o, &err) == SW_OK, "%s", err.msg);
    cfg.network = m->net;
    ck_assert_msg(sw_msg_client_start(&cfg, &m->c, &err) == SW_OK, "%s", err.msg);
    sw_keypair_wipe(&cfg.kp);
    ck_assert_int_eq(sw_msg_client_wait_ready(m->c, 15000), SW_OK);
}

static void member_stop(struct member *m)
{
    sw_msg_client_stop(m->c);
    sw_network_close(m->net);
}

/* A member's minimal rule server on port 3: reserve gets rids, everything else ok; counts
 * the requests. */
struct rules {
    struct member *m;
    int lfd;
    pthread_t th;
    atomic_bool stop;
    atomic_int requests;
};

static void *rules_main(void *arg)
{
    struct rules *r = arg;
    while (!atomic_load(&r->stop)) {
        int fd = -1;
        if (sw_msg_accept(r->lfd, 100, &fd, NULL, NULL, NULL) != SW_OK)
            continue;
        for (;;) {
            struct json_object *req = NULL, *resp;
            char *buf = NULL;
            size_t len;
            uint64_t id = 0;
            if (sw_setup_frame_read(fd, 5000, &buf, &len) != SW_OK ||
                sw_json_parse(buf, len, &req, NULL) != SW_OK) {
                free(buf);
                break;
            }
            free(buf);
            atomic_fetch_add(&r->requests, 1);
            sw_json_get_u64(req, "id", "", &id, NULL);
            resp = sw_setup_ok(id);
            if (strcmp(jstr(req, "type"), "reserve") == 0)
                json_object_object_add(resp, "rids", json_tokener_parse("[901,902,903,904]"));
            json_object_put(req);
            sw_setup_send(fd, resp, 5000);
            json_object_put(resp);
        }
        close(fd);
    }
    return NULL;
}

static void rules_start(struct rules *r, struct member *m)
{
    struct sw_error err = { 0 };
    r->m = m;
    ck_assert_msg(sw_msg_listen(m->c, SW_RULES_PORT, &r->lfd, &err) == SW_OK, "%s", err.msg);
    ck_assert_int_eq(pthread_create(&r->th, NULL, rules_main, r), 0);
}

static void rules_stop(struct rules *r)
{
    atomic_store(&r->stop, true);
    pthread_join(r->th, NULL);
    sw_msg_unlisten(r->m->c, SW_RULES_PORT);
    close(r->lfd);
}

/* A 1-hop route_group request from src to dst over a made-up transport. */
static struct json_object *request_1hop(const struct sw_pk *src, const struct sw_pk *dst)
{
    char s[SW_PK_HEX_LEN + 1], d[SW_PK_HEX_LEN + 1], text[1024];
    sw_pk_to_hex(src, s);
    sw_pk_to_hex(dst, d);
    snprintf(text, sizeof(text),
             "{\"type\":\"route_group\",\"id\":1,\"src\":{\"pk\":\"%s\",\"port\":7},"
             "\"dst\":{\"pk\":\"%s\",\"port\":8},"
             "\"forward\":[{\"from\":\"%s\",\"to\":\"%s\",\"t_id\":\"0a1b2c3d-0000-4000-8000-00000000a0b0\"}],"
             "\"reverse\":[{\"from\":\"%s\",\"to\":\"%s\",\"t_id\":\"0a1b2c3d-0000-4000-8000-00000000a0b0\"}]}",
             s, d, s, d, d, s);
    return json_tokener_parse(text);
}

/* Dials the setup node from m (retrying while its entry is not published yet). */
static int dial_sn(struct member *m, struct sw_error *err)
{
    int fd = -1, refusal = 0, rc = SW_EIO;
    for (int i = 0; i < 50; i++) {
        rc = sw_msg_dial(m->c, &net.sn_kp.pk, SW_SETUP_PORT, 10000, &fd, &refusal, err);
        if (rc != SW_ENOTFOUND)
            break;
        th_sleep_ms(200);
    }
    return rc == SW_OK ? fd : -1;
}

static int run(char *out, size_t cap, const char *const argv[])
{
    char err[4096];
    int rc = th_run(argv, out, cap, err, sizeof(err), 60000);
    if (rc != 0)
        fprintf(stderr, "%s failed (%d): %s%s\n", argv[0], rc, out, err);
    return rc;
}

START_TEST(test_route_between_members)
{
    char out[8192], sock[600], hw[512], body[400];
    long st = 0;

    /* both stcp transports registered with both certificates: the route finder sees A-B-C */
    ck_assert(wait_disc(tp_ab, 1, 10000));
    ck_assert(wait_disc(tp_bc, 1, 10000));
    snprintf(body, sizeof(body), "{\"edges\":[[\"%s\",\"%s\"]],\"opts\":{\"min_hops\":1,\"max_hops\":4,\"count\":1}}",
             va.pk_hex, vc.pk_hex);
    for (int i = 0; i < 100 && st != 200; i++) {
        st = th_call(http, net.rf_base, "POST", "/routes", body, NULL, NULL);
        if (st != 200)
            th_sleep_ms(200);
    }
    ck_assert_int_eq(st, 200);
    /* helloworld on A: route finder -> setup node (admits A as a visor) -> rules on A, B and
     * C (each admits the setup node as one) -> "pong" */
    snprintf(sock, sizeof(sock), "%s/app.sock", va.data_dir);
    setenv("SKYWIRE_APP_SOCKET", sock, 1);
    snprintf(hw, sizeof(hw), "%s", th_bin("helloworld"));
    const char *hwc[] = { hw, vc.pk_hex, "1", NULL };
    ck_assert_int_eq(run(out, sizeof(out), hwc), 0);
    unsetenv("SKYWIRE_APP_SOCKET");
    ck_assert_str_eq(out, "pong\n");
}
END_TEST

START_TEST(test_dmsg_between_members)
{
    struct json_object *o = NULL;
    char body[200], id[SW_UUID_STR_LEN + 1];
    long st;

    /* the stream handshake admits both, the CERT packets give each the other's certificate,
     * and the transport discovery takes the entry only with both */
    snprintf(body, sizeof(body), "{\"remote_pk\":\"%s\",\"type\":\"dmsg\"}", vc.pk_hex);
    st = api(&va, "POST", "/api/transports", body, &o);
    ck_assert_msg(st == 201, "add-tp dmsg: %ld %s", st, json_object_to_json_string(o));
    ck_assert_str_eq(jstr(o, "state"), "up");
    snprintf(id, sizeof(id), "%s", jstr(o, "id"));
    json_object_put(o);
    ck_assert(wait_disc(id, 1, 10000));
    ck_assert_int_eq(th_log_count(va.log, "refused"), 0);
}
END_TEST

START_TEST(test_rule_server_wants_setup_node_role)
{
    struct member m;
    struct sw_error err = { 0 };
    int fd = -1, refusal = 0, rc;
    struct sw_keypair outsider;
    char needle[64];

    /* listed in A's routing.setup_nodes, a member, but signed as a visor: refused */
    member_start(&m, &fake_sn, SW_ROLE_VISOR, "fake-setup-node");
    rc = sw_msg_dial(m.c, &va.pk, SW_RULES_PORT, 10000, &fd, &refusal, &err);
    ck_assert_msg(rc != SW_OK, "A's rule server took a stream from a visor");
    ck_assert(th_log_wait(va.log, "not a member in this role", 5000));
    snprintf(needle, sizeof(needle), "setup node %.16s", fake_sn_hex);
    ck_assert_int_eq(th_log_count(va.log, needle), 0); /* no rule stream was opened */
    member_stop(&m);

    /* a service may hold messaging sessions, but not open a dmsg transport to a visor */
    sw_keypair_generate(&outsider);
    member_start(&m, &outsider, SW_ROLE_SERVICE, "a-service");
    rc = sw_msg_dial(m.c, &vb.pk, 1, 10000, &fd, &refusal, &err);
    ck_assert_msg(rc != SW_OK, "B took a dmsg transport from a service");
    member_stop(&m);
    sw_keypair_wipe(&outsider);
}
END_TEST

START_TEST(test_setup_node_serves_and_installs_on_visors_only)
{
    struct member svc, req;
    struct rules rs = { 0 }, rr = { 0 };
    struct sw_keypair k1, k2;
    struct sw_error err = { 0 };
    struct json_object *r, *resp = NULL;
    char *buf = NULL, needle[160], hex[SW_PK_HEX_LEN + 1];
    size_t len;
    int fd;

    sw_keypair_generate(&k1);
    sw_keypair_generate(&k2);
    member_start(&svc, &k1, SW_ROLE_SERVICE, "svc");
    member_start(&req, &k2, SW_ROLE_VISOR, "requester");
    rules_start(&rs, &svc);
    rules_start(&rr, &req);

    /* a service asks for a route: its stream to port 2 is refused, one line in the log */
    ck_assert_int_lt(dial_sn(&svc, &err), 0);
    sw_pk_to_hex(&k1.pk, hex);
    snprintf(needle, sizeof(needle), "%s to port 2 refused: not a member in this role", hex);
    ck_assert(th_log_wait(th_log_path("private-setup-node.log"), needle, 5000));

    /* a visor asks for a route through the service's key: the setup node will not put rules
     * there (nor anywhere else: the setup fails naming why) */
    ck_assert_int_ge(fd = dial_sn(&req, &err), 0);
    r = request_1hop(&k2.pk, &k1.pk);
    ck_assert_int_eq(sw_setup_send(fd, r, 5000), SW_OK);
    ck_assert_int_eq(sw_setup_frame_read(fd, 20000, &buf, &len), SW_OK);
    ck_assert_int_eq(sw_json_parse(buf, len, &resp, NULL), SW_OK);
    free(buf);
    ck_assert(!json_object_get_boolean(json_object_object_get(resp, "ok")));
    struct json_object *e = json_object_object_get(resp, "error");
    ck_assert_str_eq(jstr(e, "code"), "visor_unreachable");
    ck_assert_msg(strstr(jstr(e, "message"), "not a member in this role: role service, expected visor"),
                  "%s", json_object_to_json_string(resp));
    ck_assert_int_eq(atomic_load(&rs.requests), 0); /* nothing reached the service */
    json_object_put(resp);
    json_object_put(r);
    close(fd);

    rules_stop(&rs);
    rules_stop(&rr);
    member_stop(&svc);
    member_stop(&req);
    sw_keypair_wipe(&k1);
    sw_keypair_wipe(&k2);
}
END_TEST

/* The setup node will not start in a private network without a setup-node certificate of
 * its own key. */
START_TEST(test_setup_node_start_checks)
{
    char key[512], cert[512], db[256], addr[32], bin[512], out[2048], err[4096];
    struct sw_keypair kp;
    struct sw_error e = { 0 };

    sw_keypair_generate(&kp);
    snprintf(key, sizeof(key), "%s/sn2.key", net.dir);
    snprintf(cert, sizeof(cert), "%s/sn2.cert", net.dir);
    ck_assert_int_eq(sw_keyfile_save(key, &kp, &e), SW_OK);
    snprintf(db, sizeof(db), "%s", th_fresh_db("private_sn2"));
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", th_free_port());
    snprintf(bin, sizeof(bin), "%s", th_bin("setup-node"));
    const char *argv[] = { bin, "--addr", addr, "--db", db, "--key-file", key, "--messaging-discovery",
                           net.md_base, "--network", net.network.pk_hex, "--cert-file", cert, NULL };
    /* no certificate; a visor's; another key's */
    ck_assert_int_ne(th_run(argv, out, sizeof(out), err, sizeof(err), 20000), 0);
    ck_assert_msg(strstr(err, cert), "%s", err);
    ck_assert_int_eq(th_net_member_cert(&net, &kp.pk, SW_ROLE_VISOR, "sn2", "", 3600, cert, NULL), 0);
    ck_assert_int_ne(th_run(argv, out, sizeof(out), err, sizeof(err), 20000), 0);
    ck_assert_msg(strstr(err, "role visor, this daemon needs setup-node"), "%s", err);
    ck_assert_int_eq(th_net_member_cert(&net, &va.pk, SW_ROLE_SETUP_NODE, "sn2", "", 3600, cert, NULL), 0);
    ck_assert_int_ne(th_run(argv, out, sizeof(out), err, sizeof(err), 20000), 0);
    ck_assert_msg(strstr(err, "the certificate is for another key"), "%s", err);
    const char *no_net[] = { bin, "--addr", addr, "--db", db, "--key-file", key, "--messaging-discovery",
                             net.md_base, "--cert-file", cert, NULL };
    ck_assert_int_ne(th_run(no_net, out, sizeof(out), err, sizeof(err), 20000), 0);
    ck_assert_msg(strstr(err, "need --network"), "%s", err);
    sw_keypair_wipe(&kp);
}
END_TEST

START_TEST(test_revoked_visor_cut_off)
{
    char needle[200];
    int64_t t0 = sw_mono_ms();

    ck_assert(th_net_wait_tp_up(&net, &vb, tp_bc, 5000));
    /* the operator revokes C: B closes B-C within seconds (every party rereads the list every
     * 500 ms here; 20 s by default) */
    ck_assert_int_eq(th_net_member_revoke(&net, &vc.pk, 1), 0);
    for (int i = 0; i < 100 && th_net_tp_up(&net, &vb, tp_bc); i++)
        th_sleep_ms(100);
    ck_assert(!th_net_tp_up(&net, &vb, tp_bc));
    ck_assert_int_lt(sw_ms_since(t0), 10000);
    snprintf(needle, sizeof(needle), "not a member: %s is revoked", vc.pk_hex);
    ck_assert(th_log_wait(vb.log, needle, 2000));
    ck_assert(wait_disc(tp_bc, 0, 10000) || wait_disc(tp_bc, -1, 1));
    ck_assert_int_eq(th_net_member_revoke(&net, NULL, 0), 0); /* leave the network as it was */
}
END_TEST

static Suite *private_net_suite(void)
{
    Suite *s = suite_create("private_net");
    TCase *tc = tcase_create("members");

    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_route_between_members);
    tcase_add_test(tc, test_dmsg_between_members);
    tcase_add_test(tc, test_rule_server_wants_setup_node_role);
    tcase_add_test(tc, test_setup_node_serves_and_installs_on_visors_only);
    tcase_add_test(tc, test_setup_node_start_checks);
    tcase_add_test(tc, test_revoked_visor_cut_off);
    suite_add_tcase(s, tc);
    return s;
}

const struct th_check_main th_check_main = {
    .suite = private_net_suite,
    .fork = CK_NOFORK, /* the daemons belong to this process */
    .before = th_check_init_crypto_http,
};
