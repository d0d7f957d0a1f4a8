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
#include "tests/harness/check_main.h"
#include "tests/harness/harness.h"
#include "tests/harness/net_env.h"
#include "tests/harness/visor_env.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct th_visor va, vb, vc;
static struct th_net net = { .name = "e2e", .with_rf = true, .with_sn = true };
static struct sw_http_client *http; /* net.http */
static char tp_ab[SW_UUID_STR_LEN + 1], tp_bc[SW_UUID_STR_LEN + 1];

static long api(const struct th_visor *v, const char *method, const char *target, const char *body,
                struct json_object **out)
{
    return th_call(http, v->api, method, target, body, NULL, out);
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

static void setup(void)
{
    ck_assert_msg(th_net_start(&net), "the services did not start");
    http = net.http;
    ck_assert_int_eq(th_net_visor_gen(&net, &va, "e2e-a", NULL, NULL), 0);
    ck_assert_int_eq(th_net_visor_gen(&net, &vb, "e2e-b", NULL, NULL), 0);
    ck_assert_int_eq(th_net_visor_gen(&net, &vc, "e2e-c", NULL, NULL), 0);
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
    ck_assert(th_net_wait_sessions(&net, &va, 15000) && th_net_wait_sessions(&net, &vb, 15000) &&
              th_net_wait_sessions(&net, &vc, 15000));
    ck_assert(th_net_wait_mdisc(&net, va.pk_hex, 15000) && th_net_wait_mdisc(&net, vb.pk_hex, 15000) &&
              th_net_wait_mdisc(&net, vc.pk_hex, 15000));
    ck_assert_int_eq(th_net_add_stcp(&net, &va, &vb, tp_ab), 201);
    ck_assert_int_eq(th_net_add_stcp(&net, &vb, &vc, tp_bc), 201);
    ck_assert_str_ne(tp_ab, tp_bc);
}

static void teardown(void)
{
    th_net_stop(&net, (struct th_visor *const[]){ &va, &vb, &vc }, 3);
    http = NULL;
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
        st = th_call(http, net.rf_base, "POST", "/routes", body, NULL, NULL);
        if (st != 200)
            th_sleep_ms(200);
    }
    ck_assert_int_eq(st, 200);
    snprintf(cli, sizeof(cli), "%s", th_bin("skywire-cli"));
    const char *rt[] = { cli, "rtfind", va.pk_hex, vc.pk_hex, "--rf", net.rf_base, NULL };
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
    ck_assert_int_eq(th_call(http, net.sn_base, "GET", "/route-groups?limit=5", NULL, NULL, &o), 200);
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

static Suite *routing_e2e_suite(void)
{
    Suite *s = suite_create("routing_e2e");
    TCase *tc = tcase_create("e2e");

    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_helloworld_via_route_finder_and_setup_node);
    tcase_add_test(tc, test_20_concurrent_route_setups);
    suite_add_tcase(s, tc);
    return s;
}

const struct th_check_main th_check_main = {
    .suite = routing_e2e_suite,
    .fork = CK_NOFORK,
    .before = th_check_init_crypto_http,
};
