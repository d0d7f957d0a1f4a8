/* Integration tests of the transport discovery: a real daemon on loopback, a real
 * PostgreSQL cluster, real HTTP through libcurl. Each edge's half of an entry (its opinion
 * and refresh time) is checked through the API and, where the reaper matters, in the table. */
#include "common/http_client.h"
#include "common/json.h"
#include "common/keys.h"
#include "common/signed_request.h"
#include "common/tp_entry.h"
#include "tests/harness/api_client.h"
#include "tests/harness/check_main.h"
#include "tests/harness/harness.h"
#include "tests/harness/td_v1.h"
#include "tests/harness/visor_env.h"

#include <arpa/inet.h>
#include <check.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static char base[64];
static pid_t daemon_pid = -1;
static char log_path[512];
static char ttl_log_path[512];
static struct sw_http_client *http;
static struct sw_keypair ka, kb, kc; /* kc is never an edge */

static pid_t start_td_purge(const char *db_url, uint16_t port, const char *ttl, const char *purge,
                            const char *log)
{
    char addr[32];
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", port);
    const char *argv[] = { th_bin("transport-discovery"), "--addr", addr, "--db", db_url, "--ttl", ttl,
                           "--purge-after", purge, "--reap-interval", "1", "--threads", "4", NULL };
    return th_start_service(argv, port, log);
}

static pid_t start_td(const char *db_url, uint16_t port, const char *ttl, const char *log)
{
    return start_td_purge(db_url, port, ttl, "86400", log);
}

static void setup(void)
{
    char db[256];
    uint16_t port = th_free_port();
    snprintf(log_path, sizeof(log_path), "%s", th_log_path("transport-discovery.log"));
    snprintf(ttl_log_path, sizeof(ttl_log_path), "%s", th_log_path("transport-discovery-ttl.log"));
    snprintf(db, sizeof(db), "%s", th_fresh_db("td_it"));
    snprintf(base, sizeof(base), "http://127.0.0.1:%u", port);
    daemon_pid = start_td(db, port, "300", log_path);
    ck_assert_int_gt(daemon_pid, 0);
    http = sw_http_client_new(NULL);
    sw_keypair_generate(&ka);
    sw_keypair_generate(&kb);
    sw_keypair_generate(&kc);
}

static void teardown(void)
{
    if (daemon_pid > 0)
        th_stop(daemon_pid, 5000);
    sw_http_client_free(http);
}

static long call(const char *method, const char *target, const char *body,
                 const struct sw_keypair *signer, struct json_object **out)
{
    return th_call(http, base, method, target, body, signer, out);
}

static void expect_error(const char *method, const char *target, const char *body,
                         const struct sw_keypair *signer, long status, const char *code)
{
    th_expect_error(http, base, method, target, body, signer, status, code);
}

/* A body registering the transport between a and b, signed by both. */
static char *signed_entry_body(const struct sw_keypair *a, const struct sw_keypair *b,
                               const char *type, const char *label, struct sw_uuid *id)
{
    struct sw_tp_signed_entry se;
    struct json_object *arr = json_object_new_array();
    char *body;
    ck_assert_int_eq(sw_tp_entry_make(&se.entry, &a->pk, &b->pk, type, label, NULL), SW_OK);
    int i = sw_tp_entry_edge_index(&se.entry, &a->pk);
    sw_tp_entry_sign(&se.entry, a, &se.sigs[i]);
    sw_tp_entry_sign(&se.entry, b, &se.sigs[1 - i]);
    json_object_array_add(arr, sw_tp_signed_entry_to_json(&se));
    body = strdup(sw_json_compact(arr, NULL));
    json_object_put(arr);
    if (id)
        *id = se.entry.id;
    return body;
}

static void id_target(char *out, size_t cap, const struct sw_uuid *id)
{
    char s[SW_UUID_STR_LEN + 1];
    sw_uuid_format(id, s);
    snprintf(out, cap, "/transports/id:%s", s);
}

static struct sw_uuid register_ok(const struct sw_keypair *a, const struct sw_keypair *b, const char *label)
{
    struct sw_uuid id;
    char *body = signed_entry_body(a, b, "stcp", label, &id);
    struct json_object *o;
    long st = call("POST", "/transports/", body, a, &o);
    ck_assert_msg(st == 201, "register: %ld %s", st, json_object_to_json_string(o));
    json_object_put(o);
    free(body);
    return id;
}

static uint64_t next_nonce(const struct sw_keypair *kp)
{
    uint64_t n = 0;
    struct sw_error err;
    ck_assert_int_eq(sw_http_get_nonce(http, base, &kp->pk, &n, &err), SW_OK);
    return n;
}

/* The entry of id as the TD serves it now (caller puts). */
static struct json_object *get_entry(const struct sw_uuid *id)
{
    char target[128];
    struct json_object *o;
    id_target(target, sizeof(target), id);
    long st = call("GET", target, NULL, NULL, &o);
    ck_assert_msg(st == 200, "GET %s: %ld", target, st);
    return o;
}

/* Which of the entry's edges kp is. */
static int edge_index(struct json_object *e, const struct sw_keypair *kp)
{
    char hex[SW_PK_HEX_LEN + 1];
    struct json_object *edges = json_object_object_get(json_object_object_get(e, "entry"), "edges");
    sw_pk_to_hex(&kp->pk, hex);
    for (int i = 0; i < 2; i++)
        if (strcmp(json_object_get_string(json_object_array_get_idx(edges, (size_t)i)), hex) == 0)
            return i;
    ck_abort_msg("not an edge of %s", json_object_to_json_string(e));
    return -1;
}

/* kp's opinion as served (statuses[i]: false once its TTL passed). */
static bool edge_up(struct json_object *e, const struct sw_keypair *kp)
{
    return json_object_get_boolean(json_object_array_get_idx(json_object_object_get(e, "statuses"),
                                                             (size_t)edge_index(e, kp)));
}

/* kp's last report (updated_edges[i]), -1 when it never reported. */
static int64_t edge_updated(struct json_object *e, const struct sw_keypair *kp)
{
    struct json_object *t = json_object_array_get_idx(json_object_object_get(e, "updated_edges"),
                                                      (size_t)edge_index(e, kp));
    return t ? json_object_get_int64(t) : -1;
}

static bool entry_is_up(struct json_object *e)
{
    return json_object_get_boolean(json_object_object_get(e, "is_up"));
}

/* Asserts what GET /transports/id:{id} says about both edges' opinions and is_up. */
static void expect_opinions(const struct sw_uuid *id, const struct sw_keypair *k1, bool up1,
                            const struct sw_keypair *k2, bool up2)
{
    struct json_object *e = get_entry(id);
    ck_assert_msg(edge_up(e, k1) == up1 && edge_up(e, k2) == up2 && entry_is_up(e) == (up1 && up2),
                  "want statuses %d/%d: %s", up1, up2, json_object_to_json_string(e));
    json_object_put(e);
}

/* Registration by signer (an edge), checking its reply says signer's half is up. */
static void reregister(const struct sw_keypair *signer, const struct sw_keypair *other, const char *label)
{
    char *body = signed_entry_body(signer, other, "stcp", label, NULL);
    struct json_object *o;
    long st = call("POST", "/transports/", body, signer, &o);
    ck_assert_msg(st == 201, "register: %ld %s", st, json_object_to_json_string(o));
    ck_assert(edge_up(json_object_array_get_idx(o, 0), signer));
    json_object_put(o);
    free(body);
}

START_TEST(test_health_and_metrics)
{
    struct json_object *o;
    struct sw_http_result res = { 0 };
    char url[128];
    ck_assert_int_eq(call("GET", "/health", NULL, NULL, &o), 200);
    ck_assert_str_eq(json_object_get_string(json_object_object_get(o, "status")), "ok");
    json_object_put(o);
    snprintf(url, sizeof(url), "%s/metrics", base);
    ck_assert_int_eq(sw_http_do(http, "GET", url, NULL, NULL, 0, &res, NULL), SW_OK);
    ck_assert_int_eq(res.status, 200);
    ck_assert_ptr_nonnull(strstr(res.body, "td_transports"));
    ck_assert_ptr_nonnull(strstr(res.body, "sw_http_requests_total"));
    sw_http_result_free(&res);
}
END_TEST

START_TEST(test_register_and_lookup)
{
    struct json_object *o, *e;
    char target[128], hex[SW_PK_HEX_LEN + 1], ids[SW_UUID_STR_LEN + 1];
    struct sw_uuid id = register_ok(&ka, &kb, "link-ab");

    id_target(target, sizeof(target), &id);
    ck_assert_int_eq(call("GET", target, NULL, NULL, &o), 200);
    sw_uuid_format(&id, ids);
    e = json_object_object_get(o, "entry");
    ck_assert_str_eq(json_object_get_string(json_object_object_get(e, "t_id")), ids);
    ck_assert_str_eq(json_object_get_string(json_object_object_get(e, "label")), "link-ab");
    /* only A registered: A's half is up, B's not reported yet, so the transport is down */
    ck_assert(!entry_is_up(o));
    ck_assert(edge_up(o, &ka) && !edge_up(o, &kb));
    ck_assert_int_eq(edge_updated(o, &kb), -1);
    ck_assert_int_eq(edge_updated(o, &ka), json_object_get_int64(json_object_object_get(o, "updated")));
    ck_assert_int_eq(json_object_array_length(json_object_object_get(o, "signatures")), 2);
    ck_assert_int_gt(json_object_get_int64(json_object_object_get(o, "registered")), 1700000000);
    json_object_put(o);

    /* both edges see it; a stranger sees an empty list */
    const struct sw_keypair *keys[] = { &ka, &kb };
    for (int i = 0; i < 2; i++) {
        sw_pk_to_hex(&keys[i]->pk, hex);
        snprintf(target, sizeof(target), "/transports/edge:%s", hex);
        ck_assert_int_eq(call("GET", target, NULL, NULL, &o), 200);
        ck_assert_int_eq(json_object_array_length(o), 1);
        json_object_put(o);
    }
    sw_pk_to_hex(&kc.pk, hex);
    snprintf(target, sizeof(target), "/transports/edge:%s", hex);
    ck_assert_int_eq(call("GET", target, NULL, NULL, &o), 200);
    ck_assert_int_eq(json_object_array_length(o), 0);
    json_object_put(o);

    /* B's registration of the same entry reports B's half: now both are up; one row */
    register_ok(&kb, &ka, "link-ab-2");
    sw_pk_to_hex(&ka.pk, hex);
    snprintf(target, sizeof(target), "/transports/edge:%s", hex);
    ck_assert_int_eq(call("GET", target, NULL, NULL, &o), 200);
    ck_assert_int_eq(json_object_array_length(o), 1);
    e = json_object_array_get_idx(o, 0);
    ck_assert_msg(entry_is_up(e) && edge_up(e, &ka) && edge_up(e, &kb), "%s", json_object_to_json_string(e));
    ck_assert_int_ge(edge_updated(e, &kb), edge_updated(e, &ka));
    ck_assert_str_eq(json_object_get_string(json_object_object_get(json_object_object_get(e, "entry"), "label")),
                     "link-ab-2");
    json_object_put(o);
}
END_TEST

START_TEST(test_register_rejections)
{
    struct sw_keypair kd;
    struct sw_tp_signed_entry se;
    struct json_object *arr;
    uint64_t before;
    char *body;

    sw_keypair_generate(&kd);
    /* a non-edge may not register, and its nonce is consumed all the same */
    body = signed_entry_body(&ka, &kd, "stcp", "", NULL);
    before = next_nonce(&kc);
    expect_error("POST", "/transports/", body, &kc, 403, "not_an_edge");
    ck_assert_uint_eq(next_nonce(&kc), before + 1);
    free(body);

    /* signatures swapped between the edges */
    sw_tp_entry_make(&se.entry, &ka.pk, &kd.pk, "stcp", "", NULL);
    sw_tp_entry_sign(&se.entry, &ka, &se.sigs[1 - sw_tp_entry_edge_index(&se.entry, &ka.pk)]);
    sw_tp_entry_sign(&se.entry, &kd, &se.sigs[sw_tp_entry_edge_index(&se.entry, &ka.pk)]);
    arr = json_object_new_array();
    json_object_array_add(arr, sw_tp_signed_entry_to_json(&se));
    expect_error("POST", "/transports/", sw_json_compact(arr, NULL), &ka, 422, "invalid_entry_signature");
    json_object_put(arr);

    /* a t_id that is not derived from the edges */
    se.entry.id.b[0] ^= 1;
    sw_tp_entry_sign(&se.entry, &ka, &se.sigs[sw_tp_entry_edge_index(&se.entry, &ka.pk)]);
    sw_tp_entry_sign(&se.entry, &kd, &se.sigs[sw_tp_entry_edge_index(&se.entry, &kd.pk)]);
    arr = json_object_new_array();
    json_object_array_add(arr, sw_tp_signed_entry_to_json(&se));
    expect_error("POST", "/transports/", sw_json_compact(arr, NULL), &ka, 422, "invalid_entry");
    json_object_put(arr);

    /* malformed bodies */
    expect_error("POST", "/transports/", "{not json", &ka, 400, "invalid_json");
    expect_error("POST", "/transports/", "[{\"entry\":{\"t_id\":\"", &ka, 400, "invalid_json");
    expect_error("POST", "/transports/", "{}", &ka, 400, "invalid_body");
    expect_error("POST", "/transports/", "[]", &ka, 400, "invalid_body");
    expect_error("POST", "/transports/",
                 "[{\"entry\":{\"t_id\":\"00000000-0000-0000-0000-000000000000\",\"edges\":[\"zz\",\"00\"],"
                 "\"type\":\"stcp\"},\"signatures\":[\"00\",\"00\"]}]",
                 &ka, 400, "invalid_entry");
}
END_TEST

START_TEST(test_oversize_body)
{
    size_t n = 2u << 20;
    char *big = malloc(n + 1);
    memset(big, ' ', n);
    big[0] = '[';
    big[n - 1] = ']';
    big[n] = '\0';
    expect_error("POST", "/transports/", big, NULL, 413, "body_too_large");
    free(big);
    ck_assert_int_eq(call("GET", "/health", NULL, NULL, NULL), 200);
}
END_TEST

/* Sends a request signed with an explicit nonce and optionally a signature over another
 * method/target. */
static long call_raw_signed(const char *method, const char *target, const char *sign_method,
                            const char *sign_target, uint64_t nonce, const char *body,
                            struct json_object **out)
{
    struct sw_sig sig;
    char url[256], pk[SW_PK_HEX_LEN + 1], sig_hex[SW_SIG_HEX_LEN + 1];
    char h1[96], h2[48], h3[160];
    const char *headers[] = { h1, h2, h3, NULL };
    struct sw_http_result res = { 0 };
    size_t len = body ? strlen(body) : 0;
    sw_sreq_sign(&ka, sign_method, sign_target, nonce, body ? body : "", len, &sig);
    sw_pk_to_hex(&ka.pk, pk);
    sw_sig_to_hex(&sig, sig_hex);
    snprintf(h1, sizeof(h1), "SW-Public: %s", pk);
    snprintf(h2, sizeof(h2), "SW-Nonce: %" PRIu64, nonce);
    snprintf(h3, sizeof(h3), "SW-Sig: %s", sig_hex);
    snprintf(url, sizeof(url), "%s%s", base, target);
    ck_assert_int_eq(sw_http_do(http, method, url, headers, body, len, &res, NULL), SW_OK);
    ck_assert_int_eq(sw_json_parse(res.body, res.body_len, out, NULL), SW_OK);
    long st = res.status;
    sw_http_result_free(&res);
    return st;
}

START_TEST(test_signed_request_rules)
{
    struct json_object *o;
    uint64_t n;
    char *body = signed_entry_body(&ka, &kb, "dmsg", "", NULL);

    expect_error("POST", "/transports/", body, NULL, 401, "unsigned");
    n = next_nonce(&ka);
    /* signature made for another method or path does not verify */
    ck_assert_int_eq(call_raw_signed("POST", "/transports/", "DELETE", "/transports/", n, body, &o), 401);
    ck_assert_str_eq(th_error_code(o), "invalid_signature");
    json_object_put(o);
    ck_assert_uint_eq(next_nonce(&ka), n); /* not consumed: it never verified */
    /* a skipped nonce */
    ck_assert_int_eq(call_raw_signed("POST", "/transports/", "POST", "/transports/", n + 1, body, &o), 401);
    ck_assert_str_eq(th_error_code(o), "nonce_mismatch");
    json_object_put(o);
    /* the right nonce works once; replaying it fails */
    ck_assert_int_eq(call_raw_signed("POST", "/transports/", "POST", "/transports/", n, body, &o), 201);
    json_object_put(o);
    ck_assert_int_eq(call_raw_signed("POST", "/transports/", "POST", "/transports/", n, body, &o), 401);
    ck_assert_str_eq(th_error_code(o), "nonce_mismatch");
    json_object_put(o);
    ck_assert_uint_eq(next_nonce(&ka), n + 1);
    free(body);

    expect_error("GET", "/security/nonces/xyz", NULL, NULL, 400, "invalid_public_key");
}
END_TEST

START_TEST(test_malformed_lookups)
{
    char target[128];
    struct sw_uuid id;
    memset(&id, 0x5a, sizeof(id));
    expect_error("GET", "/transports/id:not-a-uuid", NULL, NULL, 400, "invalid_transport_id");
    expect_error("GET", "/transports/id:", NULL, NULL, 400, "invalid_transport_id");
    expect_error("GET", "/transports/edge:1234", NULL, NULL, 400, "invalid_public_key");
    expect_error("GET", "/transports/edge:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
                 NULL, NULL, 400, "invalid_public_key");
    id_target(target, sizeof(target), &id);
    expect_error("GET", target, NULL, NULL, 404, "not_found");
    expect_error("GET", "/no/such/path", NULL, NULL, 404, "not_found");
    expect_error("PUT", "/transports/", "[]", NULL, 405, "method_not_allowed");
}
END_TEST

static struct json_object *post_status(const struct sw_keypair *kp, const struct sw_uuid *id, bool up,
                                       long want)
{
    char body[128], ids[SW_UUID_STR_LEN + 1];
    struct json_object *o;
    sw_uuid_format(id, ids);
    snprintf(body, sizeof(body), "[{\"t_id\":\"%s\",\"is_up\":%s}]", ids, up ? "true" : "false");
    long st = call("POST", "/statuses", body, kp, &o);
    ck_assert_msg(st == want, "statuses: %ld (want %ld): %s", st, want, json_object_to_json_string(o));
    return o;
}

static bool status_is_up(struct json_object *o, int *edge_up0, int *edge_up1)
{
    struct json_object *e = json_object_array_get_idx(o, 0);
    struct json_object *st = json_object_object_get(e, "statuses");
    *edge_up0 = json_object_get_boolean(json_object_array_get_idx(st, 0));
    *edge_up1 = json_object_get_boolean(json_object_array_get_idx(st, 1));
    return json_object_get_boolean(json_object_object_get(e, "is_up"));
}

START_TEST(test_statuses)
{
    struct sw_keypair kd;
    struct json_object *o;
    int s0, s1;
    sw_keypair_generate(&kd);
    struct sw_uuid id = register_ok(&ka, &kd, "");
    int ia = sw_pk_cmp(&ka.pk, &kd.pk) < 0 ? 0 : 1;

    o = post_status(&ka, &id, false, 200);
    ck_assert(!status_is_up(o, &s0, &s1));
    ck_assert_int_eq(ia == 0 ? s0 : s1, 0);
    ck_assert_int_eq(ia == 0 ? s1 : s0, 0); /* D has not reported yet */
    json_object_put(o);
    o = post_status(&kd, &id, true, 200); /* one edge up is not enough */
    ck_assert(!status_is_up(o, &s0, &s1));
    ck_assert_int_eq(ia == 0 ? s1 : s0, 1);
    json_object_put(o);
    o = post_status(&ka, &id, true, 200);
    ck_assert(status_is_up(o, &s0, &s1));
    json_object_put(o);

    o = post_status(&kc, &id, false, 403);
    ck_assert_str_eq(th_error_code(o), "not_an_edge");
    json_object_put(o);
    id.b[0] ^= 0xff;
    o = post_status(&ka, &id, false, 404);
    json_object_put(o);
    expect_error("POST", "/statuses", "[{\"t_id\":\"x\",\"is_up\":true}]", &ka, 400, "invalid_status");
    expect_error("POST", "/statuses", "[{\"t_id\":\"8b3944c3-e3dc-825d-becd-6e053f43336c\"}]", &ka, 400,
                 "invalid_status");
}
END_TEST

START_TEST(test_delete)
{
    struct sw_keypair kd;
    char target[128];
    sw_keypair_generate(&kd);
    struct sw_uuid id = register_ok(&ka, &kd, "");
    id_target(target, sizeof(target), &id);
    expect_error("DELETE", target, NULL, &kc, 403, "not_an_edge");
    ck_assert_int_eq(call("GET", target, NULL, NULL, NULL), 200);
    ck_assert_int_eq(call("DELETE", target, NULL, &kd, NULL), 200);
    expect_error("GET", target, NULL, NULL, 404, "not_found");
    expect_error("DELETE", target, NULL, &kd, 404, "not_found");
    expect_error("DELETE", "/transports/id:bad", NULL, &kd, 400, "invalid_transport_id");
}
END_TEST

START_TEST(test_paging)
{
    struct json_object *o;
    char target[160], last[SW_UUID_STR_LEN + 1] = "";
    size_t seen = 0;
    for (int i = 0; i < 25; i++) {
        struct sw_keypair k;
        sw_keypair_generate(&k);
        register_ok(&k, &kc, "page");
    }
    snprintf(target, sizeof(target), "/transports/?limit=10");
    for (int page = 0; page < 100; page++) {
        ck_assert_int_eq(call("GET", target, NULL, NULL, &o), 200);
        struct json_object *list = json_object_object_get(o, "transports");
        for (size_t i = 0; i < json_object_array_length(list); i++) {
            const char *id = json_object_get_string(json_object_object_get(
                json_object_object_get(json_object_array_get_idx(list, i), "entry"), "t_id"));
            ck_assert_msg(strcmp(id, last) > 0, "page not ordered: %s after %s", id, last);
            snprintf(last, sizeof(last), "%s", id);
            seen++;
        }
        struct json_object *next = json_object_object_get(o, "next");
        if (!next) {
            json_object_put(o);
            break;
        }
        ck_assert_int_eq(json_object_array_length(list), 10);
        snprintf(target, sizeof(target), "/transports/?limit=10&after=%s", json_object_get_string(next));
        json_object_put(o);
    }
    ck_assert_uint_ge(seen, 25);
    expect_error("GET", "/transports/?limit=0", NULL, NULL, 400, "invalid_limit");
    expect_error("GET", "/transports/?limit=abc", NULL, NULL, 400, "invalid_limit");
    expect_error("GET", "/transports/?limit=5000", NULL, NULL, 400, "invalid_limit");
    expect_error("GET", "/transports/?after=zzz", NULL, NULL, 400, "invalid_transport_id");
}
END_TEST

START_TEST(test_garbage_connection)
{
    /* raw bytes that are not HTTP, then a half request, must not disturb the service */
    struct sockaddr_in sa = { .sin_family = AF_INET };
    unsigned port = 0;
    sscanf(base, "http://127.0.0.1:%u", &port);
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int i = 0; i < 2; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        const char *junk = i ? "POST /transports/ HTTP/1.1\r\nContent-Length: 99999\r\n\r\n[{"
                             : "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n";
        ck_assert_int_gt(write(fd, junk, strlen(junk)), 0);
        close(fd);
    }
    ck_assert_int_eq(call("GET", "/health", NULL, NULL, NULL), 200);
}
END_TEST

/* ---- each edge's half ------------------------------------------------------------------ */

static PGconn *db_connect(const char *db)
{
    PGconn *pg = PQconnectdb(db);
    ck_assert_msg(PQstatus(pg) == CONNECTION_OK, "connect %s: %s", db, PQerrorMessage(pg));
    return pg;
}

/* kp's opinion as stored in td_transports (what raw readers such as the route finder see). */
static bool stored_opinion(const char *db, const struct sw_uuid *id, const struct sw_keypair *kp)
{
    char ids[SW_UUID_STR_LEN + 1], pk[3 + SW_PK_HEX_LEN];
    const char *params[2] = { ids, pk };
    PGconn *pg = db_connect(db);
    PGresult *r;
    bool up;
    sw_uuid_format(id, ids);
    pk[0] = '\\';
    pk[1] = 'x';
    sw_pk_to_hex(&kp->pk, pk + 2);
    r = PQexecParams(pg, "SELECT CASE WHEN edge_a = $2::bytea THEN up_a ELSE up_b END FROM td_transports"
                         " WHERE t_id = $1::uuid", 2, NULL, params, NULL, NULL, 0);
    ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1, "%s", PQerrorMessage(pg));
    up = PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    PQfinish(pg);
    return up;
}

/* Polls until the reaper has written kp's opinion as want (it runs every second here). */
static void await_stored_opinion(const char *db, const struct sw_uuid *id, const struct sw_keypair *kp, bool want)
{
    int64_t end = sw_deadline_ms(3000);
    while (stored_opinion(db, id, kp) != want && sw_mono_ms() < end)
        th_sleep_ms(100);
    ck_assert_msg(stored_opinion(db, id, kp) == want, "stored opinion never became %d", want);
}

static void await_gone(const struct sw_uuid *id, int timeout_ms)
{
    char target[128];
    int64_t end = sw_deadline_ms(timeout_ms);
    long st;
    id_target(target, sizeof(target), id);
    while ((st = call("GET", target, NULL, NULL, NULL)) == 200 && sw_mono_ms() < end)
        th_sleep_ms(100);
    ck_assert_msg(st == 404, "%s still there after %d ms (%ld)", target, timeout_ms, st);
}

/* A reports down; B's re-registrations and status posts change only B's half. */
START_TEST(test_each_edge_keeps_its_opinion)
{
    struct sw_keypair kd;
    sw_keypair_generate(&kd);
    struct sw_uuid id = register_ok(&ka, &kd, "");
    json_object_put(post_status(&kd, &id, true, 200));
    expect_opinions(&id, &ka, true, &kd, true);

    json_object_put(post_status(&ka, &id, false, 200));
    for (int i = 0; i < 3; i++)
        reregister(&kd, &ka, "");
    json_object_put(post_status(&kd, &id, true, 200));
    expect_opinions(&id, &ka, false, &kd, true);

    reregister(&ka, &kd, ""); /* A's own registration brings its half back */
    expect_opinions(&id, &ka, true, &kd, true);

    json_object_put(post_status(&kd, &id, false, 200)); /* and the other way round */
    reregister(&ka, &kd, "");
    reregister(&ka, &kd, "");
    expect_opinions(&id, &ka, true, &kd, false);
}
END_TEST

/* An edge alone never makes a transport up, however often it registers or says up. */
START_TEST(test_one_edge_alone_is_not_up)
{
    struct sw_keypair kd;
    struct json_object *e;
    sw_keypair_generate(&kd);
    struct sw_uuid id = register_ok(&kd, &ka, "lonely");
    reregister(&kd, &ka, "lonely");
    json_object_put(post_status(&kd, &id, true, 200));
    e = get_entry(&id);
    ck_assert_msg(!entry_is_up(e) && edge_up(e, &kd) && !edge_up(e, &ka), "%s", json_object_to_json_string(e));
    ck_assert_int_eq(edge_updated(e, &ka), -1); /* never reported */
    ck_assert_int_gt(edge_updated(e, &kd), 1700000000);
    json_object_put(e);
    reregister(&ka, &kd, "lonely"); /* the other edge registers: up */
    expect_opinions(&id, &ka, true, &kd, true);
}
END_TEST

/* Short TTL (2 s), purge after 5 s: each half goes stale on its own, the reaper writes it
 * into the table, and a transport is purged only once both halves are old. */
START_TEST(test_each_edge_expires_on_its_own)
{
    char db[256], saved[64];
    struct json_object *e;
    struct sw_keypair kd;
    uint16_t port = th_free_port();
    pid_t pid;
    snprintf(db, sizeof(db), "%s", th_fresh_db("td_ttl"));
    pid = start_td_purge(db, port, "2", "5", ttl_log_path);
    ck_assert_int_gt(pid, 0);
    snprintf(saved, sizeof(saved), "%s", base);
    snprintf(base, sizeof(base), "http://127.0.0.1:%u", port);
    sw_keypair_generate(&kd);

    struct sw_uuid t1 = register_ok(&ka, &kb, "t1");
    json_object_put(post_status(&kb, &t1, true, 200));
    expect_opinions(&t1, &ka, true, &kb, true);
    struct sw_uuid t2 = register_ok(&ka, &kd, "t2"); /* D never reports */

    /* only A refreshes (by registering t1, by status for t2): B's half goes stale */
    for (int64_t end = sw_deadline_ms(3500); sw_mono_ms() < end; th_sleep_ms(500)) {
        reregister(&ka, &kb, "t1");
        json_object_put(post_status(&ka, &t2, true, 200));
    }
    expect_opinions(&t1, &ka, true, &kb, false);
    await_stored_opinion(db, &t1, &kb, false);
    ck_assert(stored_opinion(db, &t1, &ka));
    e = get_entry(&t1);
    ck_assert_int_lt(edge_updated(e, &kb), edge_updated(e, &ka));
    ck_assert_int_eq(json_object_get_int64(json_object_object_get(e, "updated")), edge_updated(e, &kb));
    json_object_put(e);

    /* B reports again and A goes silent: now A's half expires and B's stays */
    json_object_put(post_status(&kb, &t1, true, 200));
    expect_opinions(&t1, &ka, true, &kb, true);
    for (int64_t end = sw_deadline_ms(3500); sw_mono_ms() < end; th_sleep_ms(500))
        json_object_put(post_status(&kb, &t1, true, 200));
    expect_opinions(&t1, &ka, false, &kb, true);
    await_stored_opinion(db, &t1, &ka, false);
    ck_assert(stored_opinion(db, &t1, &kb));

    /* t2's only report is ~3.5 s older than B's last one on t1: t2 goes first */
    await_gone(&t2, 8000);
    json_object_put(get_entry(&t1)); /* A's half is as old as t2's, but B reported since */
    await_gone(&t1, 8000);

    snprintf(base, sizeof(base), "%s", saved);
    th_stop(pid, 5000);
}
END_TEST

static void expect_migrated(const struct sw_uuid *id, const struct sw_keypair *x, bool up_x,
                            const struct sw_keypair *y, bool up_y, int64_t updated)
{
    struct json_object *e = get_entry(id);
    ck_assert_msg(edge_up(e, x) == up_x && edge_up(e, y) == up_y && edge_updated(e, x) == updated &&
                      edge_updated(e, y) == updated &&
                      json_object_get_int64(json_object_object_get(e, "updated")) == updated,
                  "want %d/%d at %" PRId64 ": %s", up_x, up_y, updated, json_object_to_json_string(e));
    json_object_put(e);
}

/* A database left by a version-1 daemon, rows in it: the new daemon migrates it at start;
 * both halves get the old `updated`, opinions are kept, and the per-edge rules apply. */
START_TEST(test_migration_from_v1)
{
    char db[256], saved[64], log[512], version[8] = "";
    struct sw_keypair kd;
    struct sw_uuid up, half, stale;
    uint16_t port = th_free_port();
    int64_t now = sw_unix_ms() / 1000;
    PGconn *pg;
    PGresult *r;
    pid_t pid;

    sw_keypair_generate(&kd);
    snprintf(db, sizeof(db), "%s", th_fresh_db("td_v1"));
    snprintf(log, sizeof(log), "%s", th_log_path("transport-discovery-v1.log"));
    ck_assert_int_eq(th_td_v1_create(db), 0);
    ck_assert_int_eq(th_td_v1_insert(db, &ka, true, &kb, true, now - 10, &up), 0);
    ck_assert_int_eq(th_td_v1_insert(db, &ka, false, &kd, true, now - 20, &half), 0);
    ck_assert_int_eq(th_td_v1_insert(db, &kb, true, &kd, true, now - 1000, &stale), 0); /* beyond the TTL */

    pid = start_td(db, port, "300", log);
    ck_assert_int_gt(pid, 0);
    ck_assert(th_log_wait(log, "applied migration transport-discovery v2", 1000));
    pg = db_connect(db);
    r = PQexec(pg, "SELECT max(version) FROM sw_schema_migrations WHERE component = 'transport-discovery'");
    ck_assert_int_eq(PQresultStatus(r), PGRES_TUPLES_OK);
    snprintf(version, sizeof(version), "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    PQfinish(pg);
    ck_assert_str_eq(version, "3"); /* v3: td_members, td_revocations (private networks) */
    snprintf(saved, sizeof(saved), "%s", base);
    snprintf(base, sizeof(base), "http://127.0.0.1:%u", port);

    expect_migrated(&up, &ka, true, &kb, true, now - 10);
    expect_opinions(&up, &ka, true, &kb, true);
    expect_migrated(&half, &ka, false, &kd, true, now - 20);
    expect_migrated(&stale, &kb, false, &kd, false, now - 1000);
    await_stored_opinion(db, &stale, &kb, false); /* the reaper follows the halves too */
    await_stored_opinion(db, &stale, &kd, false);

    /* migrated rows follow the per-edge rules */
    json_object_put(post_status(&ka, &up, false, 200));
    reregister(&kb, &ka, "v1");
    expect_opinions(&up, &ka, false, &kb, true);
    reregister(&ka, &kd, "v1");
    expect_opinions(&half, &ka, true, &kd, true);

    /* a restart finds the schema current */
    th_stop(pid, 5000);
    pid = start_td(db, port, "300", log);
    ck_assert_int_gt(pid, 0);
    expect_opinions(&half, &ka, true, &kd, true);
    snprintf(base, sizeof(base), "%s", saved);
    th_stop(pid, 5000);
}
END_TEST

/* An open network (no --network): no revocation list, and nobody is asked for a certificate
 * (every other test here registers without one). */
START_TEST(test_open_network_has_no_revocations)
{
    expect_error("GET", "/network/revocations", NULL, NULL, 404, "no_revocations");
    expect_error("PUT", "/network/revocations", "{\"list\":\"00\"}", NULL, 404, "no_revocations");
    register_ok(&ka, &kb, "open");
}
END_TEST

START_TEST(test_database_outage)
{
    char hex[SW_PK_HEX_LEN + 1], target[128];
    long st = 0;
    sw_pk_to_hex(&ka.pk, hex);
    snprintf(target, sizeof(target), "/transports/edge:%s", hex);
    ck_assert_int_eq(call("GET", target, NULL, NULL, NULL), 200);
    ck_assert_int_eq(th_pg_stop(), 0);
    expect_error("GET", target, NULL, NULL, 503, "database_unavailable");
    ck_assert_int_eq(call("GET", "/health", NULL, NULL, NULL), 503);
    ck_assert_int_eq(call("GET", "/metrics", NULL, NULL, NULL) , 200);
    ck_assert_int_eq(th_pg_start(), 0);
    for (int i = 0; i < 40 && st != 200; i++) {
        st = call("GET", "/health", NULL, NULL, NULL);
        if (st != 200)
            usleep(250000);
    }
    ck_assert_int_eq(st, 200);
    ck_assert_int_eq(call("GET", target, NULL, NULL, NULL), 200);
    register_ok(&ka, &kc, "after-outage");
}
END_TEST

static Suite *td_suite(void)
{
    Suite *s = suite_create("transport-discovery");
    TCase *tc = tcase_create("api");

    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_health_and_metrics);
    tcase_add_test(tc, test_register_and_lookup);
    tcase_add_test(tc, test_register_rejections);
    tcase_add_test(tc, test_oversize_body);
    tcase_add_test(tc, test_signed_request_rules);
    tcase_add_test(tc, test_malformed_lookups);
    tcase_add_test(tc, test_statuses);
    tcase_add_test(tc, test_delete);
    tcase_add_test(tc, test_paging);
    tcase_add_test(tc, test_garbage_connection);
    tcase_add_test(tc, test_each_edge_keeps_its_opinion);
    tcase_add_test(tc, test_one_edge_alone_is_not_up);
    tcase_add_test(tc, test_each_edge_expires_on_its_own);
    tcase_add_test(tc, test_migration_from_v1);
    tcase_add_test(tc, test_open_network_has_no_revocations);
    tcase_add_test(tc, test_database_outage);
    suite_add_tcase(s, tc);
    return s;
}

const struct th_check_main th_check_main = {
    .suite = td_suite,
    .fork = CK_NOFORK, /* the daemon belongs to this process */
    .before = th_check_init_crypto_http,
};
