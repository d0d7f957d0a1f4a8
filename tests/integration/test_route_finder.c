/* Integration tests of the route finder: a real transport discovery and a real route finder
 * on one fresh database; transports registered through the TD with signed requests, both
 * edges reporting as visors do (one registers, the other posts its status); routes asked
 * for over HTTP. Freshness (LISTEN/NOTIFY) is checked by polling for at most 2 s. */
#include "common/http_client.h"
#include "common/json.h"
#include "common/keys.h"
#include "common/tp_entry.h"
#include "tests/harness/api_client.h"
#include "tests/harness/check_main.h"
#include "tests/harness/harness.h"
#include "tests/harness/td_v1.h"
#include "tests/harness/visor_env.h"

#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define FRESH_MS 2000 /* the contract is 1 s; the poll allows for a loaded machine */

static char td_base[64], rf_base[64], db_url[256];
static char rf_log[512], td_log[512], ttl_log[512];
static pid_t td_pid = -1, rf_pid = -1;
static struct sw_http_client *http;

/* A test identity with a one-letter name for readable path strings. */
struct who {
    char name;
    struct sw_keypair kp;
    char hex[SW_PK_HEX_LEN + 1];
};

static struct who people[64];
static size_t n_people;

static struct who *person(char name)
{
    struct who *w = &people[n_people++];
    ck_assert_uint_le(n_people, sizeof(people) / sizeof(people[0]));
    w->name = name;
    sw_keypair_generate(&w->kp);
    sw_pk_to_hex(&w->kp.pk, w->hex);
    return w;
}

static char name_of(const char *hex)
{
    for (size_t i = 0; i < n_people; i++)
        if (strcmp(people[i].hex, hex) == 0)
            return people[i].name;
    return '?';
}

static pid_t start_rf(uint16_t port, const char *ttl, const char *log, bool wait)
{
    char addr[32];
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", port);
    const char *argv[] = { th_bin("route-finder"), "--addr", addr, "--db", db_url, "--ttl", ttl,
                           "--threads", "4", NULL };
    return wait ? th_start_service(argv, port, log) : th_spawn(argv, NULL, log);
}

/* The route finder starts first: it must wait for the TD to create td_transports. */
static void setup(void)
{
    uint16_t td_port = th_free_port(), rf_port = th_free_port();
    char td_addr[32], health[96];

    snprintf(rf_log, sizeof(rf_log), "%s", th_log_path("route-finder.log"));
    snprintf(td_log, sizeof(td_log), "%s", th_log_path("route-finder-td.log"));
    snprintf(ttl_log, sizeof(ttl_log), "%s", th_log_path("route-finder-ttl.log"));
    snprintf(db_url, sizeof(db_url), "%s", th_fresh_db("rf_it"));
    snprintf(td_base, sizeof(td_base), "http://127.0.0.1:%u", td_port);
    snprintf(rf_base, sizeof(rf_base), "http://127.0.0.1:%u", rf_port);
    snprintf(td_addr, sizeof(td_addr), "127.0.0.1:%u", td_port);
    rf_pid = start_rf(rf_port, "300", rf_log, false);
    ck_assert_int_gt(rf_pid, 0);
    usleep(700 * 1000);
    const char *td_argv[] = { th_bin("transport-discovery"), "--addr", td_addr, "--db", db_url,
                              "--threads", "4", NULL };
    td_pid = th_start_service(td_argv, td_port, td_log);
    ck_assert_int_gt(td_pid, 0);
    snprintf(health, sizeof(health), "%s/health", rf_base);
    if (th_wait_http(health, 15000) != 0)
        th_dump_log(rf_log);
    http = sw_http_client_new(NULL);
}

static void teardown(void)
{
    if (rf_pid > 0)
        th_stop(rf_pid, 5000);
    if (td_pid > 0)
        th_stop(td_pid, 5000);
    sw_http_client_free(http);
}

/* ---- the transport discovery ----------------------------------------------------------- */

static void tp_status(const struct who *by, const struct sw_uuid *id, bool up)
{
    char body[128], ids[SW_UUID_STR_LEN + 1];
    long st;
    sw_uuid_format(id, ids);
    snprintf(body, sizeof(body), "[{\"t_id\":\"%s\",\"is_up\":%s}]", ids, up ? "true" : "false");
    st = th_call(http, td_base, "POST", "/statuses", body, &by->kp, NULL);
    ck_assert_int_eq(st, 200);
}

/* a registers the transport; b's half stays "not reported" (down). */
static struct sw_uuid tp_register_one(const struct who *a, const struct who *b, const char *type)
{
    struct sw_tp_signed_entry se;
    struct json_object *arr = json_object_new_array(), *o;
    long st;
    ck_assert_int_eq(sw_tp_entry_make(&se.entry, &a->kp.pk, &b->kp.pk, type, "", NULL), SW_OK);
    int i = sw_tp_entry_edge_index(&se.entry, &a->kp.pk);
    sw_tp_entry_sign(&se.entry, &a->kp, &se.sigs[i]);
    sw_tp_entry_sign(&se.entry, &b->kp, &se.sigs[1 - i]);
    json_object_array_add(arr, sw_tp_signed_entry_to_json(&se));
    st = th_call(http, td_base, "POST", "/transports/", sw_json_compact(arr, NULL), &a->kp, &o);
    ck_assert_msg(st == 201, "register: %ld %s", st, json_object_to_json_string(o));
    json_object_put(o);
    json_object_put(arr);
    return se.entry.id;
}

/* The transport between a and b as both visors report it: a registers, b says up. */
static struct sw_uuid tp_register(const struct who *a, const struct who *b, const char *type)
{
    struct sw_uuid id = tp_register_one(a, b, type);
    tp_status(b, &id, true);
    return id;
}

static void tp_delete(const struct who *by, const struct sw_uuid *id)
{
    char target[128], ids[SW_UUID_STR_LEN + 1];
    sw_uuid_format(id, ids);
    snprintf(target, sizeof(target), "/transports/id:%s", ids);
    ck_assert_int_eq(th_call(http, td_base, "DELETE", target, NULL, &by->kp, NULL), 200);
}

/* ---- the route finder ------------------------------------------------------------------ */

static long routes(const char *body, struct json_object **out)
{
    return th_call(http, rf_base, "POST", "/routes", body, NULL, out);
}

static void pair_body(char *out, size_t cap, const struct who *a, const struct who *b, const char *opts)
{
    snprintf(out, cap, "{\"edges\":[[\"%s\",\"%s\"]]%s%s}", a->hex, b->hex, opts ? ",\"opts\":" : "",
             opts ? opts : "");
}

/* "A-B-C | A-C" for one direction of one pair's answer. */
static void paths_str(struct json_object *paths, char *out, size_t cap)
{
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; i < json_object_array_length(paths); i++) {
        struct json_object *p = json_object_array_get_idx(paths, i);
        for (size_t k = 0; k < json_object_array_length(p) && o + 8 < cap; k++) {
            struct json_object *hop = json_object_array_get_idx(p, k);
            const char *from = json_object_get_string(json_object_object_get(hop, "from"));
            const char *to = json_object_get_string(json_object_object_get(hop, "to"));
            if (k == 0)
                o += (size_t)snprintf(out + o, cap - o, "%s%c", i ? " | " : "", name_of(from));
            o += (size_t)snprintf(out + o, cap - o, "-%c", name_of(to));
        }
    }
}

/* Asks for a -> b; on 200 writes forward and reverse strings, returns the status. */
static long route_strs(const struct who *a, const struct who *b, const char *opts, char *fwd, char *rev,
                       size_t cap)
{
    char body[512], key[2 * SW_PK_HEX_LEN + 2];
    struct json_object *o, *pair;
    long st;
    pair_body(body, sizeof(body), a, b, opts);
    st = routes(body, &o);
    fwd[0] = rev[0] = '\0';
    if (st == 200) {
        snprintf(key, sizeof(key), "%s:%s", a->hex, b->hex);
        ck_assert_msg(json_object_object_get_ex(o, key, &pair), "reply lacks %s", key);
        paths_str(json_object_object_get(pair, "forward"), fwd, cap);
        paths_str(json_object_object_get(pair, "reverse"), rev, cap);
    }
    json_object_put(o);
    return st;
}

/* Polls until a -> b's forward paths read `want` ("" = 404 no_route); returns the ms it took. */
static int64_t await_route(const struct who *a, const struct who *b, const char *opts, const char *want)
{
    char fwd[1024], rev[1024];
    int64_t t0 = sw_mono_ms();
    long st = 0;
    for (;;) {
        st = route_strs(a, b, opts, fwd, rev, sizeof(fwd));
        if ((*want && st == 200 && strcmp(fwd, want) == 0) || (!*want && st == 404))
            return sw_ms_since(t0);
        if (sw_ms_since(t0) > FRESH_MS)
            break;
        usleep(20 * 1000);
    }
    ck_abort_msg("%c->%c: after %d ms still status %ld \"%s\", want \"%s\"", a->name, b->name, FRESH_MS, st,
                 fwd, want);
    return -1;
}

/* Makes a new transport and waits until answers show it. The route finder applies
 * notifications in commit order, so every earlier change is applied by then too: a check
 * that something did NOT change can follow this instead of a sleep. */
static void sync_barrier(void)
{
    struct who *x = person('+'), *y = person('+');
    tp_register(x, y, "stcp");
    await_route(x, y, NULL, "+-+");
}

static void expect_no_route(const struct who *a, const struct who *b)
{
    char fwd[256], rev[256];
    long st = route_strs(a, b, NULL, fwd, rev, sizeof(fwd));
    ck_assert_msg(st == 404, "%c->%c: status %ld \"%s\", want no route", a->name, b->name, st, fwd);
}

static void uuid_str(const struct sw_uuid *id, char *out)
{
    sw_uuid_format(id, out);
}

/* ---- tests -------------------------------------------------------------------------------- */

START_TEST(test_waits_for_td_table)
{
    ck_assert_msg(th_log_wait(rf_log, "waiting for the transport discovery to create td_transports", 1000),
                  "no wait logged");
    ck_assert(th_log_wait(rf_log, "installed trigger rf_notify_td_transports", 1000));
    ck_assert_int_eq(th_call(http, rf_base, "GET", "/health", NULL, NULL, NULL), 200);
}
END_TEST

START_TEST(test_chain_down_and_shortcut)
{
    struct who *a = person('A'), *b = person('B'), *c = person('C');
    char body[512], ab[40], bc[40], key[140];
    struct json_object *o, *pair, *fwd, *hop;
    struct sw_uuid id_ab = tp_register(a, b, "stcp"), id_bc = tp_register(b, c, "stcp");
    int64_t ms;

    ms = await_route(a, c, NULL, "A-B-C");
    printf("chain A-B-C visible after %lld ms\n", (long long)ms);
    /* the exact reply: hops with from, to and t_id, and the reverse */
    pair_body(body, sizeof(body), a, c, NULL);
    ck_assert_int_eq(routes(body, &o), 200);
    snprintf(key, sizeof(key), "%s:%s", a->hex, c->hex);
    ck_assert(json_object_object_get_ex(o, key, &pair));
    fwd = json_object_array_get_idx(json_object_object_get(pair, "forward"), 0);
    ck_assert_int_eq(json_object_array_length(json_object_object_get(pair, "forward")), 1);
    ck_assert_int_eq(json_object_array_length(fwd), 2);
    uuid_str(&id_ab, ab);
    uuid_str(&id_bc, bc);
    hop = json_object_array_get_idx(fwd, 0);
    ck_assert_str_eq(json_object_get_string(json_object_object_get(hop, "from")), a->hex);
    ck_assert_str_eq(json_object_get_string(json_object_object_get(hop, "to")), b->hex);
    ck_assert_str_eq(json_object_get_string(json_object_object_get(hop, "t_id")), ab);
    hop = json_object_array_get_idx(fwd, 1);
    ck_assert_str_eq(json_object_get_string(json_object_object_get(hop, "t_id")), bc);
    hop = json_object_array_get_idx(json_object_array_get_idx(json_object_object_get(pair, "reverse"), 0), 0);
    ck_assert_str_eq(json_object_get_string(json_object_object_get(hop, "from")), c->hex);
    ck_assert_str_eq(json_object_get_string(json_object_object_get(hop, "t_id")), bc);
    json_object_put(o);
    {
        char f[256], r[256];
        ck_assert_int_eq(route_strs(c, a, NULL, f, r, sizeof(f)), 200);
        ck_assert_str_eq(f, "C-B-A");
        ck_assert_str_eq(r, "A-B-C");
    }

    /* B says B-C is down: no route any more */
    tp_status(b, &id_bc, false);
    ms = await_route(a, c, NULL, "");
    printf("B-C down visible after %lld ms\n", (long long)ms);
    ck_assert_int_eq(routes(body, &o), 404);
    ck_assert_str_eq(th_error_code(o), "no_route");
    ck_assert_ptr_nonnull(strstr(json_object_get_string(json_object_object_get(json_object_object_get(o, "error"), "message")), c->hex));
    json_object_put(o);

    /* a new transport A-C is a 1-hop route */
    tp_register(a, c, "stcp");
    ms = await_route(a, c, NULL, "A-C");
    printf("new transport A-C visible after %lld ms\n", (long long)ms);
    /* B-C up again (B's opinion; C's never changed): two routes */
    tp_status(b, &id_bc, true);
    await_route(a, c, "{\"count\":5}", "A-C | A-B-C");
}
END_TEST

START_TEST(test_count_min_max)
{
    struct who *a = person('D'), *b = person('E'), *c = person('F');
    struct sw_uuid x, y;
    char fwd[1024], rev[1024], xs[40], ys[40], body[512];
    struct json_object *o, *pair = NULL, *f;

    tp_register(a, b, "stcp");
    tp_register(b, c, "stcp");
    x = tp_register(a, c, "stcp");
    y = tp_register(a, c, "dmsg"); /* parallel transports are distinct routes */
    await_route(a, c, "{\"count\":16}", "D-F | D-F | D-E-F");
    /* the two 1-hop routes come in t_id order */
    uuid_str(&x, xs);
    uuid_str(&y, ys);
    pair_body(body, sizeof(body), a, c, "{\"count\":2}");
    ck_assert_int_eq(routes(body, &o), 200);
    json_object_object_foreach(o, k, v) {
        (void)k;
        pair = v;
    }
    f = json_object_object_get(pair, "forward");
    ck_assert_int_eq(json_object_array_length(f), 2);
    ck_assert_str_eq(json_object_get_string(json_object_object_get(
                         json_object_array_get_idx(json_object_array_get_idx(f, 0), 0), "t_id")),
                     strcmp(xs, ys) < 0 ? xs : ys);
    json_object_put(o);

    ck_assert_int_eq(route_strs(a, c, "{\"min_hops\":2}", fwd, rev, sizeof(fwd)), 200);
    ck_assert_str_eq(fwd, "D-E-F");
    ck_assert_str_eq(rev, "F-E-D");
    ck_assert_int_eq(route_strs(a, c, "{\"max_hops\":1,\"count\":9}", fwd, rev, sizeof(fwd)), 200);
    ck_assert_str_eq(fwd, "D-F | D-F");
    ck_assert_int_eq(route_strs(a, c, "{\"min_hops\":2,\"max_hops\":2,\"count\":9}", fwd, rev, sizeof(fwd)), 200);
    ck_assert_str_eq(fwd, "D-E-F");
    ck_assert_int_eq(route_strs(a, c, "{\"min_hops\":3}", fwd, rev, sizeof(fwd)), 404);
    ck_assert_int_eq(route_strs(a, c, "{\"min_hops\":1,\"max_hops\":1,\"count\":1}", fwd, rev, sizeof(fwd)), 200);
    ck_assert_str_eq(fwd, "D-F");
    /* 0 = no minimum (what the Go visor sends): the same as 1 */
    ck_assert_int_eq(route_strs(a, c, "{\"min_hops\":0,\"max_hops\":1,\"count\":1}", fwd, rev, sizeof(fwd)), 200);
    ck_assert_str_eq(fwd, "D-F");
    ck_assert_int_eq(route_strs(a, c, "{\"min_hops\":0,\"count\":16}", fwd, rev, sizeof(fwd)), 200);
    ck_assert_str_eq(fwd, "D-F | D-F | D-E-F");
    ck_assert_int_eq(route_strs(a, c, "null", fwd, rev, sizeof(fwd)), 200); /* opts null = defaults */
}
END_TEST

START_TEST(test_many_pairs_and_delete)
{
    struct who *a = person('G'), *b = person('H'), *c = person('I'), *lone = person('J');
    char body[2048];
    struct json_object *o;
    const char *msg;
    struct sw_uuid id = tp_register(a, b, "stcp");
    tp_register(b, c, "dmsg");
    await_route(a, c, NULL, "G-H-I");
    /* several pairs, one repeated: one answer per distinct pair */
    snprintf(body, sizeof(body), "{\"edges\":[[\"%s\",\"%s\"],[\"%s\",\"%s\"],[\"%s\",\"%s\"]]}", a->hex, c->hex,
             c->hex, b->hex, a->hex, c->hex);
    ck_assert_int_eq(routes(body, &o), 200);
    ck_assert_int_eq(json_object_object_length(o), 2);
    json_object_put(o);
    /* a key with no transports: 404 naming it */
    snprintf(body, sizeof(body), "{\"edges\":[[\"%s\",\"%s\"],[\"%s\",\"%s\"]]}", a->hex, c->hex, a->hex, lone->hex);
    ck_assert_int_eq(routes(body, &o), 404);
    ck_assert_str_eq(th_error_code(o), "no_route");
    msg = json_object_get_string(json_object_object_get(json_object_object_get(o, "error"), "message"));
    ck_assert_msg(strstr(msg, lone->hex) && strstr(msg, "has no transports"), "message: %s", msg);
    json_object_put(o);
    /* deleting a transport in the TD removes its routes */
    tp_delete(a, &id);
    await_route(a, c, NULL, "");
    pair_body(body, sizeof(body), a, c, NULL);
    ck_assert_int_eq(routes(body, &o), 404);
    msg = json_object_get_string(json_object_object_get(json_object_object_get(o, "error"), "message"));
    ck_assert_msg(strstr(msg, "has no transports"), "message: %s", msg);
    json_object_put(o);
}
END_TEST

static void expect_400(const char *body, const char *code, const char *needle)
{
    struct json_object *o;
    const char *msg;
    long st = routes(body, &o);
    ck_assert_msg(st == 400, "%.120s: status %ld", body, st);
    ck_assert_msg(strcmp(th_error_code(o), code) == 0, "%.120s: code %s, want %s", body, th_error_code(o), code);
    msg = json_object_get_string(json_object_object_get(json_object_object_get(o, "error"), "message"));
    ck_assert_msg(!needle || strstr(msg, needle), "%.120s: message \"%s\" lacks \"%s\"", body, msg, needle);
    json_object_put(o);
}

START_TEST(test_bad_input)
{
    struct who *a = person('K'), *b = person('L');
    char body[16384]; /* 65 pairs */
    size_t o = 0;

    expect_400("{not json", "invalid_json", NULL);
    expect_400("[]", "invalid_body", NULL);
    expect_400("{}", "invalid_body", "edges");
    expect_400("{\"edges\":[]}", "invalid_body", "1 to 64");
    expect_400("{\"edges\":[[\"aa\"]]}", "invalid_body", "edges[0]");
    snprintf(body, sizeof(body), "{\"edges\":[[\"%s\",\"%.63s\"]]}", a->hex, b->hex);
    expect_400(body, "invalid_public_key", "edges[0][1]");
    snprintf(body, sizeof(body), "{\"edges\":[[\"%s\",\"%s\"],[42,\"%s\"]]}", a->hex, b->hex, b->hex);
    expect_400(body, "invalid_public_key", "edges[1][0]");
    snprintf(body, sizeof(body), "{\"edges\":[[\"%s\",\"%s\"]]}", a->hex, a->hex);
    expect_400(body, "invalid_body", "same key");
    o = (size_t)snprintf(body, sizeof(body), "{\"edges\":[");
    for (int i = 0; i < 65; i++)
        o += (size_t)snprintf(body + o, sizeof(body) - o, "%s[\"%s\",\"%s\"]", i ? "," : "", a->hex, b->hex);
    snprintf(body + o, sizeof(body) - o, "]}");
    expect_400(body, "invalid_body", "1 to 64");

    const char *bad_opts[][2] = {
        { "{\"count\":0}", "opts.count" },        { "{\"count\":17}", "opts.count" },
        { "{\"max_hops\":33}", "opts.max_hops" }, { "{\"min_hops\":-1}", "opts.min_hops" },
        { "{\"count\":\"3\"}", "opts.count" },    { "{\"count\":2.5}", "opts.count" },
        { "{\"min_hops\":4,\"max_hops\":3}", "above" }, { "5", "opts" },
        { "{\"count\":-1}", "opts.count" },
    };
    for (size_t i = 0; i < sizeof(bad_opts) / sizeof(bad_opts[0]); i++) {
        pair_body(body, sizeof(body), a, b, bad_opts[i][0]);
        expect_400(body, "invalid_opts", bad_opts[i][1]);
    }
    th_expect_error(http, rf_base, "GET", "/routes", NULL, NULL, 405, "method_not_allowed");
}
END_TEST

START_TEST(test_metrics)
{
    struct sw_http_result res = { 0 };
    char url[128];
    snprintf(url, sizeof(url), "%s/metrics", rf_base);
    ck_assert_int_eq(sw_http_do(http, "GET", url, NULL, NULL, 0, &res, NULL), SW_OK);
    ck_assert_int_eq(res.status, 200);
    const char *want[] = { "rf_graph_keys ", "rf_graph_transports ", "rf_graph_transports_usable ",
                           "rf_graph_age_seconds ", "rf_graph_full_loads_total ", "rf_graph_updates_total ",
                           "rf_notifications_total ", "rf_route_requests_total{result=\"ok\"} ",
                           "rf_search_duration_seconds_count ", "sw_http_requests_total" };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        ck_assert_msg(strstr(res.body, want[i]), "metrics lack %s", want[i]);
    sw_http_result_free(&res);
}
END_TEST

/* The route finder's own --ttl: a transport not refreshed within it is not used, even
 * while the TD's longer TTL still calls it up. */
START_TEST(test_ttl)
{
    struct who *a = person('M'), *b = person('N');
    uint16_t port = th_free_port();
    char saved[64], fwd[256], rev[256];
    pid_t pid = start_rf(port, "2", ttl_log, true);
    ck_assert_int_gt(pid, 0);
    snprintf(saved, sizeof(saved), "%s", rf_base);
    snprintf(rf_base, sizeof(rf_base), "http://127.0.0.1:%u", port);
    struct sw_uuid id = tp_register(a, b, "stcp");
    await_route(a, b, NULL, "M-N");
    sleep(3);
    ck_assert_int_eq(route_strs(a, b, NULL, fwd, rev, sizeof(fwd)), 404);
    tp_status(a, &id, true); /* one edge's refresh is not enough: N's report is still old */
    sync_barrier();
    expect_no_route(a, b);
    tp_status(b, &id, true); /* both edges fresh again */
    await_route(a, b, NULL, "M-N");
    snprintf(rf_base, sizeof(rf_base), "%s", saved);
    th_stop(pid, 5000);
}
END_TEST

/* A transport only one edge says is up is never used, whatever that edge posts. */
START_TEST(test_one_edge_up_is_not_used)
{
    struct who *a = person('S'), *b = person('T');
    struct sw_uuid id = tp_register_one(a, b, "stcp"); /* T has not reported */
    sync_barrier();
    expect_no_route(a, b);
    tp_status(b, &id, true);
    await_route(a, b, NULL, "S-T");

    /* S says down; T's re-registration and "up" do not bring it back */
    tp_status(a, &id, false);
    await_route(a, b, NULL, "");
    tp_register_one(b, a, "stcp");
    tp_status(b, &id, true);
    sync_barrier();
    expect_no_route(a, b);
    expect_no_route(b, a);
    tp_status(a, &id, true);
    await_route(a, b, NULL, "S-T");
}
END_TEST

/* A route finder that loaded a version-1 table keeps answering while a new TD migrates it
 * at start, and afterwards follows each edge's opinion: its trigger survives the
 * migration and `updated` (now the older half's time) keeps its meaning. */
START_TEST(test_old_schema_then_new_td)
{
    struct who *a = person('a'), *b = person('b'), *c = person('c');
    char saved_db[256], saved_td[64], saved_rf[64], td_addr[32], log[512];
    uint16_t rf_port = th_free_port(), td_port = th_free_port();
    int64_t now = sw_unix_ms() / 1000;
    struct sw_uuid ab, bc;
    pid_t rf, td;

    snprintf(saved_db, sizeof(saved_db), "%s", db_url);
    snprintf(saved_td, sizeof(saved_td), "%s", td_base);
    snprintf(saved_rf, sizeof(saved_rf), "%s", rf_base);
    snprintf(db_url, sizeof(db_url), "%s", th_fresh_db("rf_v1"));
    ck_assert_int_eq(th_td_v1_create(db_url), 0);
    ck_assert_int_eq(th_td_v1_insert(db_url, &a->kp, true, &b->kp, true, now - 5, &ab), 0);
    ck_assert_int_eq(th_td_v1_insert(db_url, &b->kp, false, &c->kp, true, now - 5, &bc), 0); /* b says down */

    rf = start_rf(rf_port, "300", th_log_path("route-finder-v1.log"), true);
    ck_assert_int_gt(rf, 0);
    snprintf(rf_base, sizeof(rf_base), "http://127.0.0.1:%u", rf_port);
    await_route(a, b, NULL, "a-b");
    expect_no_route(a, c);

    snprintf(log, sizeof(log), "%s", th_log_path("route-finder-v1-td.log"));
    snprintf(td_addr, sizeof(td_addr), "127.0.0.1:%u", td_port);
    const char *td_argv[] = { th_bin("transport-discovery"), "--addr", td_addr, "--db", db_url,
                              "--threads", "4", NULL };
    td = th_start_service(td_argv, td_port, log);
    ck_assert_int_gt(td, 0);
    ck_assert(th_log_wait(log, "applied migration transport-discovery v2", 1000));
    snprintf(td_base, sizeof(td_base), "http://127.0.0.1:%u", td_port);
    await_route(a, b, NULL, "a-b");

    tp_status(b, &bc, true); /* notified through the trigger installed before the migration */
    await_route(a, c, NULL, "a-b-c");
    tp_status(a, &ab, false);
    await_route(a, b, NULL, "");
    tp_register_one(b, a, "stcp"); /* b's refresh leaves a's "down" alone */
    sync_barrier();
    expect_no_route(a, b);
    tp_status(a, &ab, true);
    await_route(a, c, NULL, "a-b-c");

    th_stop(rf, 5000);
    th_stop(td, 5000);
    snprintf(db_url, sizeof(db_url), "%s", saved_db);
    snprintf(td_base, sizeof(td_base), "%s", saved_td);
    snprintf(rf_base, sizeof(rf_base), "%s", saved_rf);
}
END_TEST

static double metric(const char *name)
{
    struct sw_http_result res = { 0 };
    char url[128];
    const char *p;
    double v = -1;
    snprintf(url, sizeof(url), "%s/metrics", rf_base);
    ck_assert_int_eq(sw_http_do(http, "GET", url, NULL, NULL, 0, &res, NULL), SW_OK);
    for (p = res.body; (p = strstr(p, name)); p++)
        if ((p == res.body || p[-1] == '\n') && p[strlen(name)] == ' ') {
            v = strtod(p + strlen(name) + 1, NULL);
            break;
        }
    sw_http_result_free(&res);
    return v;
}

static long await_health(const char *base, long want, int timeout_ms)
{
    int64_t t0 = sw_mono_ms();
    long st;
    while ((st = th_call(http, base, "GET", "/health", NULL, NULL, NULL)) != want && sw_ms_since(t0) < timeout_ms)
        usleep(100 * 1000);
    return st;
}

/* While PostgreSQL is down: /health says 503, queries are answered from the graph in
 * memory. Afterwards the sync session reconnects, reloads, and follows changes again. */
START_TEST(test_database_outage)
{
    struct who *a = person('P'), *b = person('Q'), *c = person('R');
    char fwd[256], rev[256];
    double loads, reconnects;

    tp_register(a, b, "stcp");
    await_route(a, b, NULL, "P-Q");
    loads = metric("rf_graph_full_loads_total");
    reconnects = metric("rf_sync_reconnects_total");
    ck_assert_int_eq(th_pg_stop(), 0);
    ck_assert_int_eq(await_health(rf_base, 503, 5000), 503);
    ck_assert_int_eq(route_strs(a, b, NULL, fwd, rev, sizeof(fwd)), 200);
    ck_assert_str_eq(fwd, "P-Q");
    ck_assert_int_eq(th_pg_start(), 0);
    ck_assert_int_eq(await_health(rf_base, 200, 10000), 200);
    ck_assert_int_eq(await_health(td_base, 200, 10000), 200);
    tp_register(b, c, "stcp");
    {
        /* reconnection backs off up to 2 s before the reload; then the usual freshness */
        int64_t t0 = sw_mono_ms();
        while (route_strs(a, c, NULL, fwd, rev, sizeof(fwd)) != 200 && sw_ms_since(t0) < 6000)
            usleep(50 * 1000);
        ck_assert_str_eq(fwd, "P-Q-R");
    }
    ck_assert_double_gt(metric("rf_graph_full_loads_total"), loads);
    ck_assert_double_gt(metric("rf_sync_reconnects_total"), reconnects);
    ck_assert_double_eq(metric("rf_sync_connected"), 1);
    tp_register(a, c, "dmsg"); /* LISTEN works again */
    await_route(a, c, NULL, "P-R");
}
END_TEST

static Suite *rf_suite(void)
{
    Suite *s = suite_create("route-finder");
    TCase *tc = tcase_create("api");

    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_waits_for_td_table);
    tcase_add_test(tc, test_chain_down_and_shortcut);
    tcase_add_test(tc, test_count_min_max);
    tcase_add_test(tc, test_many_pairs_and_delete);
    tcase_add_test(tc, test_bad_input);
    tcase_add_test(tc, test_metrics);
    tcase_add_test(tc, test_ttl);
    tcase_add_test(tc, test_one_edge_up_is_not_used);
    tcase_add_test(tc, test_old_schema_then_new_td);
    tcase_add_test(tc, test_database_outage);
    suite_add_tcase(s, tc);
    return s;
}

static int init_stdout_crypto_http(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    return th_check_init_crypto_http();
}

const struct th_check_main th_check_main = {
    .suite = rf_suite,
    .fork = CK_NOFORK, /* the daemons belong to this process */
    .before = init_stdout_crypto_http,
};
