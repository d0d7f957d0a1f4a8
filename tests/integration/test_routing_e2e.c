/* End-to-end routing with the real services (docs/routing.md): transport discovery, route
 * finder (reading the discovery's database), messaging discovery + server, the setup node,
 * and three visors A-B-C (stcp A-B and B-C, no A-C). C runs the helloworld app as a child
 * process; `helloworld <C>` on A (through A's app socket) finds the route A-B-C with the route
 * finder, has the setup node install it, and gets "pong" through B. Closing removes the rules
 * on all three visors; the setup node records the group. */
#include "common/http_client.h"
#include "common/json.h"
#include "common/keys.h"
#include "common/uuid.h"
#include "tests/harness/api_client.h"
#include "tests/harness/harness.h"
#include "tests/harness/visor_env.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct th_visor va, vb, vc;
static char dir[256], td_base[64], md_base[64], rf_base[64], sn_base[64], td_db[256];
static pid_t td_pid = -1, md_pid = -1, ms_pid = -1, rf_pid = -1, sn_pid = -1;
static struct sw_http_client *http;
static char tp_ab[SW_UUID_STR_LEN + 1], tp_bc[SW_UUID_STR_LEN + 1];
static struct sw_keypair sn_kp;

static pid_t start_service(const char *bin, const char *db_prefix, char *base, size_t cap,
                           const char *log)
{
    char db[256], addr[32], path[512];
    uint16_t port = th_free_port();
    snprintf(db, sizeof(db), "%s", th_fresh_db(db_prefix));
    if (strcmp(bin, "transport-discovery") == 0)
        snprintf(td_db, sizeof(td_db), "%s", db);
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", port);
    snprintf(base, cap, "http://%s", addr);
    snprintf(path, sizeof(path), "%s", th_bin(bin));
    const char *argv[] = { path, "--addr", addr, "--db", db, NULL };
    return th_start_service(argv, port, th_log_path(log));
}

static pid_t start_messaging_server(void)
{
    char addr[32], http_addr[32], key[512], bin[512];
    uint16_t port = th_free_port(), hport = th_free_port();
    struct json_object *o = NULL;
    pid_t pid;

    snprintf(addr, sizeof(addr), "127.0.0.1:%u", port);
    snprintf(http_addr, sizeof(http_addr), "127.0.0.1:%u", hport);
    snprintf(key, sizeof(key), "%s/messaging-server.key", dir);
    snprintf(bin, sizeof(bin), "%s", th_bin("messaging-server"));
    const char *argv[] = { bin, "--addr", addr, "--http-addr", http_addr, "--key-file", key,
                           "--discovery", md_base, NULL };
    pid = th_start_service(argv, hport, th_log_path("e2e-messaging-server.log"));
    if (pid < 0)
        return pid;
    for (int i = 0; i < 100; i++) {
        long st = th_call(http, md_base, "GET", "/messaging-discovery/available_servers", NULL, NULL, &o);
        bool ok = st == 200 && json_object_array_length(o) > 0;
        json_object_put(o);
        if (ok)
            return pid;
        th_sleep_ms(100);
    }
    return -1;
}

static long api(const struct th_visor *v, const char *method, const char *target, const char *body,
                struct json_object **out)
{
    return th_call(http, v->api, method, target, body, NULL, out);
}

static const char *jstr(struct json_object *o, const char *key)
{
    return json_object_get_string(json_object_object_get(o, key));
}

static bool wait_sessions(const struct th_visor *v, int timeout_ms)
{
    for (int waited = 0;; waited += 100) {
        struct json_object *o = NULL;
        bool ok = api(v, "GET", "/api/summary", NULL, &o) == 200 &&
                  json_object_get_int(json_object_object_get(json_object_object_get(o, "messaging"),
                                                             "sessions")) > 0;
        json_object_put(o);
        if (ok)
            return true;
        if (waited >= timeout_ms)
            return false;
        th_sleep_ms(100);
    }
}

static bool wait_mdisc_entry(const char *pk_hex, int timeout_ms)
{
    char target[160];
    snprintf(target, sizeof(target), "/messaging-discovery/entry/%s", pk_hex);
    for (int waited = 0;; waited += 100) {
        if (th_call(http, md_base, "GET", target, NULL, NULL, NULL) == 200)
            return true;
        if (waited >= timeout_ms)
            return false;
        th_sleep_ms(100);
    }
}


static int count_rules(const struct th_visor *v)
{
    struct json_object *o = NULL;
    int n;
    ck_assert_int_eq(api(v, "GET", "/api/routes", NULL, &o), 200);
    n = (int)json_object_array_length(o);
    json_object_put(o);
    return n;
}

static bool wait_rules(const struct th_visor *v, int want, int timeout_ms)
{
    for (int waited = 0;; waited += 100) {
        if (count_rules(v) == want)
            return true;
        if (waited >= timeout_ms)
            return false;
        th_sleep_ms(100);
    }
}

static void add_stcp(const struct th_visor *from, const struct th_visor *to, char *id)
{
    char body[256];
    struct json_object *o = NULL;
    long st;
    snprintf(body, sizeof(body), "{\"remote_pk\":\"%s\",\"address\":\"%s\"}", to->pk_hex, to->stcp);
    st = api(from, "POST", "/api/transports", body, &o);
    ck_assert_msg(st == 201, "add-tp: %ld %s", st, o ? json_object_to_json_string(o) : "");
    snprintf(id, SW_UUID_STR_LEN + 1, "%s", jstr(o, "id"));
    json_object_put(o);
}

static pid_t start_rf(void)
{
    char addr[32], path[512];
    uint16_t port = th_free_port();
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", port);
    snprintf(rf_base, sizeof(rf_base), "http://%s", addr);
    snprintf(path, sizeof(path), "%s", th_bin("route-finder"));
    const char *argv[] = { path, "--addr", addr, "--db", td_db, "--threads", "4", NULL };
    return th_start_service(argv, port, th_log_path("e2e-route-finder.log"));
}

static pid_t start_sn(void)
{
    char addr[32], path[512], db[256], key[512];
    struct sw_error err = { 0 };
    uint16_t port = th_free_port();
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", port);
    snprintf(sn_base, sizeof(sn_base), "http://%s", addr);
    snprintf(path, sizeof(path), "%s", th_bin("setup-node"));
    snprintf(db, sizeof(db), "%s", th_fresh_db("e2e_sn"));
    snprintf(key, sizeof(key), "%s/setup-node.key", dir);
    ck_assert_int_eq(sw_keyfile_save(key, &sn_kp, &err), SW_OK);
    const char *argv[] = { path, "--addr", addr, "--db", db, "--key-file", key, "--messaging-discovery", md_base,
                           "--messaging-sessions", "1", "--threads", "4", NULL };
    return th_start_service(argv, port, th_log_path("e2e-setup-node.log"));
}

static void setup(void)
{
    char sn_hex[SW_PK_HEX_LEN + 1];

    http = sw_http_client_new(NULL);
    sw_keypair_generate(&sn_kp);
    sw_pk_to_hex(&sn_kp.pk, sn_hex);
    snprintf(dir, sizeof(dir), "%s", th_temp_dir("sw-e2e-it"));
    td_pid = start_service("transport-discovery", "e2e_td", td_base, sizeof(td_base), "e2e-transport-discovery.log");
    md_pid = start_service("messaging-discovery", "e2e_md", md_base, sizeof(md_base), "e2e-messaging-discovery.log");
    ck_assert_int_gt(td_pid, 0);
    ck_assert_int_gt(md_pid, 0);
    rf_pid = start_rf();
    ck_assert_int_gt(rf_pid, 0);
    ms_pid = start_messaging_server();
    ck_assert_int_gt(ms_pid, 0);
    sn_pid = start_sn();
    ck_assert_int_gt(sn_pid, 0);
    const char *extra[] = { "--mdisc", md_base, "--setup-node", sn_hex, "--rf", rf_base, "--sessions", "1", NULL };
    ck_assert_int_eq(th_visor_gen(&va, dir, "e2e-a", td_base, extra), 0);
    ck_assert_int_eq(th_visor_gen(&vb, dir, "e2e-b", td_base, extra), 0);
    ck_assert_int_eq(th_visor_gen(&vc, dir, "e2e-c", td_base, extra), 0);
    {
        struct json_object *cfg = json_object_from_file(vc.config);
        ck_assert_ptr_nonnull(cfg);
        json_object_object_add(cfg, "apps", json_tokener_parse(
            "[{\"app\":\"helloworld\",\"auto_start\":true,\"port\":1}]"));
        ck_assert_int_eq(json_object_to_file_ext(vc.config, cfg, JSON_C_TO_STRING_PRETTY), 0);
        json_object_put(cfg);
    }
    ck_assert_int_eq(th_visor_start(&va), 0);
    ck_assert_int_eq(th_visor_start(&vb), 0);
    ck_assert_int_eq(th_visor_start(&vc), 0);
    ck_assert(wait_sessions(&va, 15000) && wait_sessions(&vb, 15000) && wait_sessions(&vc, 15000));
    ck_assert(wait_mdisc_entry(va.pk_hex, 15000) && wait_mdisc_entry(vb.pk_hex, 15000) &&
              wait_mdisc_entry(vc.pk_hex, 15000));
    add_stcp(&va, &vb, tp_ab);
    add_stcp(&vb, &vc, tp_bc);
    ck_assert_str_ne(tp_ab, tp_bc);
}

static void teardown(void)
{
    th_visor_stop(&va, false);
    th_visor_stop(&vb, false);
    th_visor_stop(&vc, false);
    if (sn_pid > 0)
        th_stop(sn_pid, 5000);
    if (rf_pid > 0)
        th_stop(rf_pid, 5000);
    if (td_pid > 0)
        th_stop(td_pid, 5000);
    if (ms_pid > 0)
        th_stop(ms_pid, 5000);
    if (md_pid > 0)
        th_stop(md_pid, 5000);
    sw_http_client_free(http);
}

static int run(char *out, size_t cap, const char *const argv[])
{
    char err[4096];
    int rc = th_run(argv, out, cap, err, sizeof(err), 60000);
    if (rc != 0)
        fprintf(stderr, "%s failed (%d): %s%s\n", argv[0], rc, out, err);
    return rc;
}

START_TEST(test_helloworld_via_route_finder_and_setup_node)
{
    char out[8192], sock[600], cli[512], hw[512], body[400];
    struct json_object *o = NULL;
    long st = 0;
    int base_a = count_rules(&va), base_b = count_rules(&vb), base_c = count_rules(&vc);

    /* the route finder sees A-B-C once both transports are registered */
    snprintf(body, sizeof(body), "{\"edges\":[[\"%s\",\"%s\"]],\"opts\":{\"min_hops\":1,\"max_hops\":4,\"count\":1}}",
             va.pk_hex, vc.pk_hex);
    for (int i = 0; i < 100 && st != 200; i++) {
        st = th_call(http, rf_base, "POST", "/routes", body, NULL, NULL);
        if (st != 200)
            th_sleep_ms(200);
    }
    ck_assert_int_eq(st, 200);
    snprintf(cli, sizeof(cli), "%s", th_bin("skywire-cli"));
    const char *rt[] = { cli, "rtfind", va.pk_hex, vc.pk_hex, "--rf", rf_base, NULL };
    ck_assert_int_eq(run(out, sizeof(out), rt), 0);
    ck_assert_ptr_nonnull(strstr(out, vb.pk_hex));

    /* helloworld as a client on A: route finder -> setup node -> KK -> "pong" from C's app */
    snprintf(sock, sizeof(sock), "%s/app.sock", va.data_dir);
    setenv("SKYWIRE_APP_SOCKET", sock, 1);
    snprintf(hw, sizeof(hw), "%s", th_bin("helloworld"));
    const char *hwc[] = { hw, vc.pk_hex, "1", NULL };
    ck_assert_int_eq(run(out, sizeof(out), hwc), 0);
    unsetenv("SKYWIRE_APP_SOCKET");
    ck_assert_str_eq(out, "pong\n");

    /* the client closed: the rules are gone on all three visors */
    ck_assert(wait_rules(&va, base_a, 5000));
    ck_assert(wait_rules(&vb, base_b, 5000));
    ck_assert(wait_rules(&vc, base_c, 5000));
    ck_assert_int_eq(th_call(http, sn_base, "GET", "/route-groups?limit=5", NULL, NULL, &o), 200);
    ck_assert_ptr_nonnull(strstr(json_object_to_json_string(o), "established"));
    json_object_put(o);
}
END_TEST

/* 20 route setups at once from A (20 helloworld clients in parallel through A's app socket):
 * each setup node stream to a visor's port 3 is one setup in progress, so every visor on the
 * path serves 20 rule streams at once; all must succeed (they failed past 16 with "stream
 * failed during reserve: not found"). */
START_TEST(test_20_concurrent_route_setups)
{
    enum { N = 20 };
    char sock[600], hw[512], cmd[1400];
    FILE *p[N];
    int ok = 0;
    int base_a = count_rules(&va), base_b = count_rules(&vb), base_c = count_rules(&vc);

    snprintf(sock, sizeof(sock), "%s/app.sock", va.data_dir);
    snprintf(hw, sizeof(hw), "%s", th_bin("helloworld"));
    snprintf(cmd, sizeof(cmd), "SKYWIRE_APP_SOCKET='%s' '%s' %s 1 2>&1", sock, hw, vc.pk_hex);
    for (int i = 0; i < N; i++)
        ck_assert_ptr_nonnull(p[i] = popen(cmd, "r"));
    for (int i = 0; i < N; i++) {
        char out[4096] = "";
        size_t n = fread(out, 1, sizeof(out) - 1, p[i]);
        int rc = pclose(p[i]);
        out[n] = 0;
        if (rc == 0 && strcmp(out, "pong\n") == 0)
            ok++;
        else
            fprintf(stderr, "concurrent client %d: exit %d: %s\n", i, rc, out);
    }
    ck_assert_int_eq(ok, N);
    ck_assert(wait_rules(&va, base_a, 10000));
    ck_assert(wait_rules(&vb, base_b, 10000));
    ck_assert(wait_rules(&vc, base_c, 10000));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("routing_e2e");
    TCase *tc = tcase_create("e2e");
    SRunner *sr;
    int failed;

    sw_crypto_init();
    sw_http_global_init();
    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_helloworld_via_route_finder_and_setup_node);
    tcase_add_test(tc, test_20_concurrent_route_setups);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
