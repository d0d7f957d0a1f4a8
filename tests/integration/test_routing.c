/* Integration tests of routing on the visor (docs/routing.md §1-3): three real visors
 * A-B-C (stcp A-B and B-C, no A-C), a transport discovery, a messaging discovery and a
 * messaging server. The setup node is played by this test: a messaging client S whose key
 * is in every visor's routing.setup_nodes installs rules over the port-3 protocol; another
 * client U (not listed) is refused. A third client T plays a remote visor holding dmsg
 * transports to A and C, so it can inject routing packets at A and see what C forwards:
 *
 *   T --dmsg--> A --stcp--> B --stcp--> C --dmsg--> T      (and back the other way)
 *
 * Checked: multi-hop forwarding with route ID rewriting, bytes unchanged through B, B's
 * rules name only its neighbours' transports, CLOSE removes the rules hop by hop, rules from
 * an untrusted key are refused, add_rules is all-or-nothing, the REST views of rules. */
#include "common/bytes.h"
#include "common/http_client.h"
#include "common/json.h"
#include "common/keys.h"
#include "common/msg_client.h"
#include "common/setup_proto.h"
#include "common/stream_io.h"
#include "common/tp_entry.h"
#include "tests/harness/api_client.h"
#include "tests/harness/check_main.h"
#include "tests/harness/harness.h"
#include "tests/harness/net_env.h"
#include "tests/harness/visor_env.h"
#include "visor/app/app.h"

#include <check.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static struct th_visor va, vb, vc;
static struct th_net net = { .name = "routing" }; /* no route finder; S is the setup node */
static struct sw_http_client *http; /* net.http */
static struct sw_keypair kp_s, kp_u, kp_t;
static struct sw_msg_client *mc_s, *mc_u, *mc_t;
static char tp_ab[SW_UUID_STR_LEN + 1], tp_bc[SW_UUID_STR_LEN + 1];
static char tp_ta[SW_UUID_STR_LEN + 1], tp_ct[SW_UUID_STR_LEN + 1];
static int fd_ta = -1, fd_tc = -1; /* T's dmsg transport streams to A and C */
static int sn_listener = -1;         /* S's port 2: the test's setup node */
static pthread_t sn_thread;
static volatile bool sn_stop;
static int sn_served;

static long api(const struct th_visor *v, const char *method, const char *target, const char *body,
                struct json_object **out)
{
    return th_call(http, v->api, method, target, body, NULL, out);
}

static const char *jstr(struct json_object *o, const char *key)
{
    return json_object_get_string(json_object_object_get(o, key));
}

static struct sw_msg_client *client(const struct sw_keypair *kp)
{
    struct sw_msg_client_config cfg = { .kp = *kp, .discovery_url = net.md_base, .n_servers = 1 };
    struct sw_msg_client *c = NULL;
    struct sw_error err = { 0 };
    char pk[SW_PK_HEX_LEN + 1];

    ck_assert_msg(sw_msg_client_start(&cfg, &c, &err) == SW_OK, "%s", err.msg);
    ck_assert_int_eq(sw_msg_client_wait_ready(c, 15000), SW_OK);
    sw_pk_to_hex(&kp->pk, pk);
    ck_assert(th_net_wait_mdisc(&net, pk, 15000));
    return c;
}

/* ---- T: a fake remote visor holding dmsg transports (docs/visor.md "Transports") ---------- */

static void send_packet(int fd, const uint8_t *pkt, size_t len)
{
    uint8_t hdr[2];
    sw_put_u16(hdr, (uint16_t)len);
    ck_assert_int_eq(send(fd, hdr, 2, MSG_NOSIGNAL), 2);
    ck_assert_int_eq(send(fd, pkt, len, MSG_NOSIGNAL), (ssize_t)len);
}

static bool read_exact(int fd, uint8_t *p, size_t n, int timeout_ms)
{
    size_t got;
    return sw_io_read_full(fd, p, n, sw_io_within(timeout_ms, NULL), &got) == SW_OK;
}

/* Next packet of a type other than PING/PONG (answers PINGs); 0 length on timeout. */
static size_t recv_packet(int fd, uint8_t *buf, size_t cap, int timeout_ms)
{
    for (;;) {
        uint8_t hdr[2];
        size_t n;
        if (!read_exact(fd, hdr, 2, timeout_ms))
            return 0;
        n = sw_get_u16(hdr);
        ck_assert_uint_le(n, cap);
        if (!read_exact(fd, buf, n, 5000))
            return 0;
        if (n == 9 && buf[0] == 0x02) { /* PING -> PONG */
            buf[0] = 0x03;
            send_packet(fd, buf, 9);
            continue;
        }
        if (n >= 1 && buf[0] == 0x03)
            continue;
        return n;
    }
}

/* T opens a dmsg transport to v: a stream to v:1, then the ENTRY_SIG exchange. */
static int dmsg_transport(const struct th_visor *v, char id_out[SW_UUID_STR_LEN + 1])
{
    struct sw_tp_entry e;
    struct sw_sig sig;
    uint8_t pkt[1 + SW_SIG_LEN], in[256];
    struct sw_error err = { 0 };
    int fd = -1, refusal = 0;
    size_t n;

    ck_assert_msg(sw_msg_dial(mc_t, &v->pk, 1, 10000, &fd, &refusal, &err) == SW_OK, "%s", err.msg);
    ck_assert_int_eq(sw_tp_entry_make(&e, &kp_t.pk, &v->pk, "dmsg", "", &err), SW_OK);
    sw_tp_entry_sign(&e, &kp_t, &sig);
    pkt[0] = 0x01;
    memcpy(pkt + 1, sig.b, SW_SIG_LEN);
    send_packet(fd, pkt, sizeof(pkt));
    n = recv_packet(fd, in, sizeof(in), 5000);
    ck_assert_uint_eq(n, 1 + SW_SIG_LEN);
    ck_assert_uint_eq(in[0], 0x01);
    sw_uuid_format(&e.id, id_out);
    return fd;
}

/* ---- S / U: the port-3 protocol --------------------------------------------------------- */

static int rules_stream(struct sw_msg_client *c, const struct th_visor *v)
{
    struct sw_error err = { 0 };
    int fd = -1, refusal = 0;
    ck_assert_msg(sw_msg_dial(c, &v->pk, SW_RULES_PORT, 10000, &fd, &refusal, &err) == SW_OK, "%s",
                  err.msg);
    return fd;
}

static uint64_t next_id = 1;

/* Sends one request (printf format) and returns the parsed response (NULL: stream closed). */
static struct json_object *rpc(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static struct json_object *rpc(int fd, const char *fmt, ...)
{
    char body[4096], *out = NULL;
    struct json_object *o = NULL;
    size_t len = 0;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(body, sizeof(body), fmt, ap);
    va_end(ap);
    if (sw_setup_frame_write(fd, body, strlen(body), 5000))
        return NULL;
    if (sw_setup_frame_read(fd, 8000, &out, &len))
        return NULL;
    ck_assert_int_eq(sw_json_parse(out, len, &o, NULL), SW_OK);
    free(out);
    return o;
}

static bool resp_ok(struct json_object *o)
{
    return o && json_object_get_boolean(json_object_object_get(o, "ok"));
}

static const char *resp_code(struct json_object *o)
{
    return jstr(json_object_object_get(o, "error"), "code");
}

static uint32_t reserve1(int fd)
{
    uint64_t id = next_id++;
    struct json_object *o = rpc(fd, "{\"type\":\"reserve\",\"id\":%llu,\"n\":1}", (unsigned long long)id);
    uint32_t rid;
    ck_assert_msg(resp_ok(o), "reserve: %s", o ? json_object_to_json_string(o) : "closed");
    ck_assert_uint_eq(json_object_get_uint64(json_object_object_get(o, "id")), id);
    ck_assert_int_eq(json_object_array_length(json_object_object_get(o, "rids")), 1);
    rid = (uint32_t)json_object_get_int64(json_object_array_get_idx(json_object_object_get(o, "rids"), 0));
    json_object_put(o);
    ck_assert_uint_ne(rid, 0);
    return rid;
}

static void add_forward(int fd, uint32_t rid, const char *tp, uint32_t next)
{
    struct json_object *o = rpc(fd, "{\"type\":\"add_rules\",\"id\":%llu,\"rules\":[{\"rid\":%u,"
                                    "\"type\":\"forward\",\"next_tp\":\"%s\",\"next_rid\":%u}]}",
                                (unsigned long long)next_id++, rid, tp, next);
    ck_assert_msg(resp_ok(o), "add_rules: %s", o ? json_object_to_json_string(o) : "closed");
    json_object_put(o);
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

/* ---- fixture ------------------------------------------------------------------------------ */

static void setup(void)
{
    char s_hex[SW_PK_HEX_LEN + 1];

    sw_keypair_generate(&kp_s);
    sw_keypair_generate(&kp_u);
    sw_keypair_generate(&kp_t);
    sw_pk_to_hex(&kp_s.pk, s_hex);
    ck_assert_msg(th_net_start(&net), "the services did not start");
    http = net.http;
    ck_assert_int_eq(th_net_visor_gen(&net, &va, "route-a", s_hex, NULL), 0);
    ck_assert_int_eq(th_net_visor_gen(&net, &vb, "route-b", s_hex, NULL), 0);
    ck_assert_int_eq(th_net_visor_gen(&net, &vc, "route-c", s_hex, NULL), 0);
    { /* C runs the helloworld app (bin/helloworld) on port 9 */
        struct json_object *cfg = json_object_from_file(vc.config);
        ck_assert_ptr_nonnull(cfg);
        json_object_object_add(cfg, "apps", json_tokener_parse(
            "[{\"app\":\"helloworld\",\"auto_start\":true,\"port\":9,\"args\":[]}]"));
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
    mc_s = client(&kp_s);
    mc_u = client(&kp_u);
    mc_t = client(&kp_t);
    fd_ta = dmsg_transport(&va, tp_ta);
    fd_tc = dmsg_transport(&vc, tp_ct);
}

static void teardown(void)
{
    sn_stop = true;
    if (sn_listener >= 0) {
        pthread_join(sn_thread, NULL);
        close(sn_listener);
    }
    if (fd_ta >= 0)
        close(fd_ta);
    if (fd_tc >= 0)
        close(fd_tc);
    if (mc_s)
        sw_msg_client_stop(mc_s);
    if (mc_u)
        sw_msg_client_stop(mc_u);
    if (mc_t)
        sw_msg_client_stop(mc_t);
    th_net_stop(&net, (struct th_visor *const[]){ &va, &vb, &vc }, 3);
    http = NULL;
}

/* ---- tests ---------------------------------------------------------------------------------- */

START_TEST(test_untrusted_refused)
{
    int fd = rules_stream(mc_u, &vb);
    struct json_object *o;
    int before = count_rules(&vb);

    /* the visor closes a stream from a key outside routing.setup_nodes at once */
    o = rpc(fd, "{\"type\":\"reserve\",\"id\":1,\"n\":1}");
    ck_assert_ptr_null(o);
    close(fd);
    ck_assert(th_log_wait(vb.log, "not in routing.setup_nodes", 3000));
    ck_assert_int_eq(count_rules(&vb), before);
}
END_TEST

START_TEST(test_protocol_errors)
{
    int fd = rules_stream(mc_s, &vb);
    struct json_object *o;
    uint32_t rid;

    o = rpc(fd, "{\"type\":\"reserve\",\"id\":5,\"n\":9}");
    ck_assert(!resp_ok(o));
    ck_assert_str_eq(resp_code(o), "invalid_request");
    ck_assert_uint_eq(json_object_get_uint64(json_object_object_get(o, "id")), 5);
    json_object_put(o);
    o = rpc(fd, "{\"type\":\"bogus\",\"id\":6}");
    ck_assert_str_eq(resp_code(o), "unknown_type");
    json_object_put(o);
    o = rpc(fd, "[1,2]");
    ck_assert_str_eq(resp_code(o), "invalid_json");
    json_object_put(o);
    /* a rule on an ID nobody reserved, and on an unknown transport: nothing installed */
    rid = reserve1(fd);
    o = rpc(fd, "{\"type\":\"add_rules\",\"id\":7,\"rules\":[{\"rid\":%u,\"type\":\"consume\","
                "\"local_port\":1,\"remote_pk\":\"%s\",\"remote_port\":2},{\"rid\":%u,\"type\":\"consume\","
                "\"local_port\":1,\"remote_pk\":\"%s\",\"remote_port\":2}]}",
            rid, va.pk_hex, rid + 1000, va.pk_hex);
    ck_assert_str_eq(resp_code(o), "not_reserved");
    json_object_put(o);
    o = rpc(fd, "{\"type\":\"add_rules\",\"id\":8,\"rules\":[{\"rid\":%u,\"type\":\"forward\","
                "\"next_tp\":\"00000000-0000-8000-8000-000000000000\",\"next_rid\":5}]}", rid);
    ck_assert_str_eq(resp_code(o), "unknown_transport");
    json_object_put(o);
    {
        char target[64];
        snprintf(target, sizeof(target), "/api/routes/%u", rid);
        ck_assert_int_eq(api(&vb, "GET", target, NULL, &o), 200);
        ck_assert_str_eq(jstr(o, "type"), "reserved");
        json_object_put(o);
    }
    o = rpc(fd, "{\"type\":\"group_ready\",\"id\":9,\"local_port\":1,\"remote_pk\":\"%s\",\"remote_port\":1,"
                "\"send_tp\":\"%s\",\"send_rid\":1,\"recv_rid\":%u,\"initiator\":false}",
            va.pk_hex, tp_ab, rid);
    ck_assert_str_eq(resp_code(o), "no_listener");
    json_object_put(o);
    o = rpc(fd, "{\"type\":\"del_rules\",\"id\":10,\"rids\":[%u]}", rid);
    ck_assert(resp_ok(o));
    ck_assert_int_eq(json_object_get_int(json_object_object_get(o, "removed")), 1);
    json_object_put(o);
    /* an oversized frame closes the stream */
    {
        uint8_t hdr[4] = { 0, 2, 0, 0 }; /* 128 KiB */
        char *out = NULL;
        size_t len;
        ck_assert_int_eq(write(fd, hdr, 4), 4);
        ck_assert_int_ne(sw_setup_frame_read(fd, 5000, &out, &len), SW_OK);
    }
    close(fd);
    /* the REST views */
    th_expect_error(http, vb.api, "GET", "/api/routes/0", NULL, NULL, 400, "invalid_route_id");
    th_expect_error(http, vb.api, "GET", "/api/routes/x1", NULL, NULL, 400, "invalid_route_id");
    th_expect_error(http, vb.api, "GET", "/api/routes/4000000000", NULL, NULL, 404, "not_found");
    th_expect_error(http, vb.api, "DELETE", "/api/routes/4000000000", NULL, NULL, 404, "not_found");
}
END_TEST

/* Installs T->A->B->C->T as forward rules; returns the ID T sends with and expects back. */
struct route { uint32_t a, b, c, t; };

static struct route install_route(int sa, int sb, int sc, const char *ab, const char *bc,
                                  bool forward_dir)
{
    struct route r;
    /* forward_dir: A -> B -> C -> T; else C -> B -> A -> T (entered at C) */
    r.a = reserve1(sa);
    r.b = reserve1(sb);
    r.c = reserve1(sc);
    r.t = 0x7000000u + (forward_dir ? 1 : 2); /* T's own ID: T is not a visor of this test */
    if (forward_dir) {
        add_forward(sa, r.a, ab, r.b);
        add_forward(sb, r.b, bc, r.c);
        add_forward(sc, r.c, tp_ct, r.t);
    } else {
        add_forward(sc, r.c, bc, r.b);
        add_forward(sb, r.b, ab, r.a);
        add_forward(sa, r.a, tp_ta, r.t);
    }
    return r;
}

static size_t data_packet(uint8_t *out, uint32_t rid, const uint8_t *msg, size_t n)
{
    out[0] = 0x10;
    sw_put_u32(out + 1, rid);
    sw_put_u16(out + 5, (uint16_t)n);
    memcpy(out + 7, msg, n);
    return 7 + n;
}

static uint32_t rid_of(const uint8_t *p)
{
    return sw_get_u32(p + 1);
}

START_TEST(test_forward_both_ways_and_close)
{
    int sa = rules_stream(mc_s, &va), sb = rules_stream(mc_s, &vb), sc = rules_stream(mc_s, &vc);
    struct route fw, rv;
    uint8_t msg[1000], pkt[2048], in[2048];
    struct json_object *o, *arr;
    size_t n, m;
    int base_a = count_rules(&va), base_b = count_rules(&vb), base_c = count_rules(&vc);

    fw = install_route(sa, sb, sc, tp_ab, tp_bc, true);
    rv = install_route(sa, sb, sc, tp_ab, tp_bc, false);

    /* B's rules name only its neighbours' transports (A-B, B-C) */
    ck_assert_int_eq(api(&vb, "GET", "/api/routes", NULL, &arr), 200);
    ck_assert_int_eq((int)json_object_array_length(arr), base_b + 2);
    for (size_t i = 0; i < json_object_array_length(arr); i++) {
        o = json_object_array_get_idx(arr, i);
        if (strcmp(jstr(o, "type"), "forward") != 0)
            continue;
        ck_assert(strcmp(jstr(o, "next_tp"), tp_ab) == 0 || strcmp(jstr(o, "next_tp"), tp_bc) == 0);
    }
    json_object_put(arr);

    /* forward: T -> A -> B -> C -> T, route ID rewritten on every hop, bytes unchanged */
    for (size_t i = 0; i < sizeof(msg); i++)
        msg[i] = (uint8_t)(i * 7 + 3);
    for (int k = 0; k < 20; k++) {
        msg[0] = (uint8_t)k;
        n = data_packet(pkt, fw.a, msg, sizeof(msg));
        send_packet(fd_ta, pkt, n);
        m = recv_packet(fd_tc, in, sizeof(in), 5000);
        ck_assert_uint_eq(m, n);
        ck_assert_uint_eq(in[0], 0x10);
        ck_assert_uint_eq(rid_of(in), fw.t);
        ck_assert(memcmp(in + 5, pkt + 5, n - 5) == 0);
    }
    /* reverse: T -> C -> B -> A -> T */
    for (int k = 0; k < 20; k++) {
        msg[0] = (uint8_t)(100 + k);
        n = data_packet(pkt, rv.c, msg, 500);
        send_packet(fd_tc, pkt, n);
        m = recv_packet(fd_ta, in, sizeof(in), 5000);
        ck_assert_uint_eq(m, n);
        ck_assert_uint_eq(rid_of(in), rv.t);
        ck_assert(memcmp(in + 5, pkt + 5, n - 5) == 0);
    }
    /* keepalive travels too and counts on the rule */
    pkt[0] = 0x12;
    sw_put_u32(pkt + 1, fw.a);
    send_packet(fd_ta, pkt, 5);
    m = recv_packet(fd_tc, in, sizeof(in), 5000);
    ck_assert_uint_eq(m, 5);
    ck_assert_uint_eq(in[0], 0x12);
    {
        char target[64];
        snprintf(target, sizeof(target), "/api/routes/%u", fw.b);
        ck_assert_int_eq(api(&vb, "GET", target, NULL, &o), 200);
        ck_assert_uint_eq(json_object_get_uint64(json_object_object_get(o, "packets")), 21);
        ck_assert_str_eq(jstr(o, "next_tp"), tp_bc);
        json_object_put(o);
    }
    /* an unknown route ID is dropped and counted */
    n = data_packet(pkt, 0x6ffffffu, msg, 10);
    send_packet(fd_ta, pkt, n);

    /* CLOSE removes the forward route's rules hop by hop and reaches T */
    pkt[0] = 0x11;
    sw_put_u32(pkt + 1, fw.a);
    pkt[5] = 0;
    send_packet(fd_ta, pkt, 6);
    m = recv_packet(fd_tc, in, sizeof(in), 5000);
    ck_assert_uint_eq(m, 6);
    ck_assert_uint_eq(in[0], 0x11);
    ck_assert_uint_eq(rid_of(in), fw.t);
    ck_assert(wait_rules(&va, base_a + 1, 3000));
    ck_assert(wait_rules(&vb, base_b + 1, 3000));
    ck_assert(wait_rules(&vc, base_c + 1, 3000));
    /* the reverse route still works, then closes too */
    n = data_packet(pkt, rv.c, msg, 10);
    send_packet(fd_tc, pkt, n);
    ck_assert_uint_eq(recv_packet(fd_ta, in, sizeof(in), 5000), n);
    pkt[0] = 0x11;
    sw_put_u32(pkt + 1, rv.c);
    pkt[5] = 0;
    send_packet(fd_tc, pkt, 6);
    ck_assert_uint_eq(recv_packet(fd_ta, in, sizeof(in), 5000), 6);
    ck_assert(wait_rules(&va, base_a, 3000));
    ck_assert(wait_rules(&vb, base_b, 3000));
    ck_assert(wait_rules(&vc, base_c, 3000));

    /* a packet on a closed route goes nowhere */
    n = data_packet(pkt, fw.a, msg, 10);
    send_packet(fd_ta, pkt, n);
    ck_assert_uint_eq(recv_packet(fd_tc, in, sizeof(in), 500), 0);
    {
        struct sw_http_result res = { 0 };
        char url[128];
        snprintf(url, sizeof(url), "%s/metrics", va.api);
        ck_assert_int_eq(sw_http_do(http, "GET", url, th_api_headers(va.api), NULL, 0, &res, NULL), SW_OK);
        ck_assert_ptr_nonnull(strstr(res.body, "visor_route_unknown_total 2"));
        ck_assert_ptr_nonnull(strstr(res.body, "visor_route_forwarded_total"));
        sw_http_result_free(&res);
    }
    close(sa);
    close(sb);
    close(sc);
}
END_TEST

static double metric(const struct th_visor *v, const char *name)
{
    struct sw_http_result res = { 0 };
    char url[128], key[128];
    const char *p;
    double x = -1;

    snprintf(url, sizeof(url), "%s/metrics", v->api);
    snprintf(key, sizeof(key), "\n%s ", name);
    if (sw_http_do(http, "GET", url, th_api_headers(v->api), NULL, 0, &res, NULL) == SW_OK && res.body &&
        (p = strstr(res.body, key)))
        x = strtod(p + strlen(key), NULL);
    sw_http_result_free(&res);
    return x;
}

/* Reads fd until it has been quiet for quiet_ms. */
static void drain(int fd, int quiet_ms)
{
    uint8_t buf[65536];
    struct pollfd p = { .fd = fd, .events = POLLIN };
    while (poll(&p, 1, quiet_ms) > 0 && read(fd, buf, sizeof(buf)) > 0)
        ;
}

/* T stops reading what C forwards to it: C's output toward T fills, C drops (and counts)
 * instead of blocking, and another route through the same visors keeps flowing. */
START_TEST(test_full_output_drops_not_blocks)
{
    int sa = rules_stream(mc_s, &va), sb = rules_stream(mc_s, &vb), sc = rules_stream(mc_s, &vc);
    struct route fw = install_route(sa, sb, sc, tp_ab, tp_bc, true);
    struct route rv = install_route(sa, sb, sc, tp_ab, tp_bc, false);
    static uint8_t msg[1000], pkt[1100], in[2048];
    double dropped = 0;
    size_t n;

    memset(msg, 0x5a, sizeof(msg));
    for (int k = 0; k < 8000 && dropped <= 0; k++) {
        n = data_packet(pkt, fw.a, msg, sizeof(msg));
        send_packet(fd_ta, pkt, n);
        if (k % 1000 == 999)
            dropped = metric(&vc, "visor_route_dropped_full_total");
    }
    for (int i = 0; i < 50 && dropped <= 0; i++) {
        th_sleep_ms(100);
        dropped = metric(&vc, "visor_route_dropped_full_total");
    }
    ck_assert_msg(dropped > 0, "C dropped nothing (%g)", dropped);
    /* C is not stuck: the reverse route (C -> B -> A -> T) still delivers */
    for (int k = 0; k < 5; k++) {
        n = data_packet(pkt, rv.c, msg, 100);
        send_packet(fd_tc, pkt, n);
        ck_assert_uint_eq(recv_packet(fd_ta, in, sizeof(in), 5000), n);
        ck_assert_uint_eq(rid_of(in), rv.t);
    }
    /* clean up: drain T's side, then close both routes */
    drain(fd_tc, 500);
    pkt[0] = 0x11;
    pkt[5] = 0;
    sw_put_u32(pkt + 1, fw.a);
    send_packet(fd_ta, pkt, 6);
    sw_put_u32(pkt + 1, rv.c);
    send_packet(fd_tc, pkt, 6);
    drain(fd_tc, 300);
    drain(fd_ta, 300);
    close(sa);
    close(sb);
    close(sc);
}
END_TEST

START_TEST(test_operator_delete)
{
    int sb = rules_stream(mc_s, &vb);
    uint32_t rid = reserve1(sb);
    char target[64];
    struct json_object *o;

    add_forward(sb, rid, tp_bc, 99);
    snprintf(target, sizeof(target), "/api/routes/%u", rid);
    ck_assert_int_eq(api(&vb, "DELETE", target, NULL, &o), 200);
    ck_assert_uint_eq(json_object_get_uint64(json_object_object_get(o, "removed")), rid);
    json_object_put(o);
    th_expect_error(http, vb.api, "GET", target, NULL, NULL, 404, "not_found");
    close(sb);
}
END_TEST

/* ---- a minimal setup node played by S (docs/routing.md §3 "Setup steps") ---------------- */


static struct json_object *rpc_fd_pk(const struct sw_pk *pk, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static struct json_object *rpc_fd_pk(const struct sw_pk *pk, const char *fmt, ...)
{
    char body[2048], *out = NULL;
    struct json_object *o = NULL;
    struct sw_error err = { 0 };
    size_t len;
    int fd = -1, refusal;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(body, sizeof(body), fmt, ap);
    va_end(ap);
    if (sw_msg_dial(mc_s, pk, SW_RULES_PORT, 10000, &fd, &refusal, &err))
        return NULL;
    if (sw_setup_frame_write(fd, body, strlen(body), 5000) == SW_OK &&
        sw_setup_frame_read(fd, 8000, &out, &len) == SW_OK)
        sw_json_parse(out, len, &o, NULL);
    free(out);
    close(fd);
    return o;
}

/* Reserves and installs one route along hops; the last hop consumes. */
static bool sn_path(const struct sw_setup_hop *hops, size_t n, uint16_t lport, const struct sw_pk *remote,
                    uint16_t rport, uint32_t *first, uint32_t *last)
{
    uint32_t rid[SW_SETUP_MAX_HOPS + 1];
    char tp[SW_UUID_STR_LEN + 1], rpk[SW_PK_HEX_LEN + 1];
    struct json_object *o;

    for (size_t i = 1; i <= n; i++) {
        o = rpc_fd_pk(&hops[i - 1].to, "{\"type\":\"reserve\",\"id\":%zu,\"n\":1}", i);
        if (!resp_ok(o)) {
            json_object_put(o);
            return false;
        }
        rid[i] = (uint32_t)json_object_get_int64(json_object_array_get_idx(json_object_object_get(o, "rids"), 0));
        json_object_put(o);
    }
    sw_pk_to_hex(remote, rpk);
    for (size_t i = 1; i <= n; i++) {
        if (i < n) {
            sw_uuid_format(&hops[i].t_id, tp);
            o = rpc_fd_pk(&hops[i - 1].to, "{\"type\":\"add_rules\",\"id\":%zu,\"rules\":[{\"rid\":%u,"
                          "\"type\":\"forward\",\"next_tp\":\"%s\",\"next_rid\":%u}]}", i, rid[i], tp, rid[i + 1]);
        } else {
            o = rpc_fd_pk(&hops[i - 1].to, "{\"type\":\"add_rules\",\"id\":%zu,\"rules\":[{\"rid\":%u,"
                          "\"type\":\"consume\",\"local_port\":%u,\"remote_pk\":\"%s\",\"remote_port\":%u}]}",
                          i, rid[i], lport, rpk, rport);
        }
        if (!resp_ok(o)) {
            json_object_put(o);
            return false;
        }
        json_object_put(o);
    }
    *first = rid[1];
    *last = rid[n];
    return true;
}

static void sn_serve(int fd, const struct sw_pk *from)
{
    struct sw_route_group_req rq;
    struct json_object *req = NULL, *o, *resp;
    char *out = NULL, tp[SW_UUID_STR_LEN + 1], pk[SW_PK_HEX_LEN + 1];
    size_t len;
    uint32_t f1, fn, r1, rn;

    if (sw_setup_frame_read(fd, 5000, &out, &len) || sw_json_parse(out, len, &req, NULL) ||
        sw_route_group_parse(req, &rq, NULL) || !sw_pk_equal(&rq.src.pk, from)) {
        resp = sw_setup_error(0, "invalid_request", "bad route_group");
    } else if (!sn_path(rq.fwd, rq.n_fwd, rq.dst.port, &rq.src.pk, rq.src.port, &f1, &fn) ||
               !sn_path(rq.rev, rq.n_rev, rq.src.port, &rq.dst.pk, rq.dst.port, &r1, &rn)) {
        resp = sw_setup_error(rq.id, "setup_failed", "a hop refused");
    } else {
        sw_uuid_format(&rq.rev[0].t_id, tp);
        sw_pk_to_hex(&rq.src.pk, pk);
        o = rpc_fd_pk(&rq.dst.pk, "{\"type\":\"group_ready\",\"id\":1,\"local_port\":%u,\"remote_pk\":\"%s\","
                      "\"remote_port\":%u,\"send_tp\":\"%s\",\"send_rid\":%u,\"recv_rid\":%u,\"initiator\":false}",
                      rq.dst.port, pk, rq.src.port, tp, r1, fn);
        if (!resp_ok(o)) {
            resp = sw_setup_error(rq.id, o ? resp_code(o) : "unreachable", "group_ready failed");
        } else {
            struct json_object *g = json_object_new_object();
            sw_uuid_format(&rq.fwd[0].t_id, tp);
            resp = sw_setup_ok(rq.id);
            json_object_object_add(g, "send_tp", json_object_new_string(tp));
            json_object_object_add(g, "send_rid", json_object_new_int64(f1));
            json_object_object_add(g, "recv_rid", json_object_new_int64(rn));
            json_object_object_add(resp, "group", g);
        }
        json_object_put(o);
    }
    sw_setup_send(fd, resp, 5000);
    json_object_put(resp);
    json_object_put(req);
    free(out);
    sn_served++;
}

static void *sn_main(void *arg)
{
    while (!sn_stop) {
        struct sw_pk from;
        uint16_t port;
        int fd = -1, rc = sw_msg_accept(sn_listener, 300, &fd, &from, &port, NULL);
        if (rc == SW_ETIMEDOUT)
            continue;
        if (rc)
            break;
        sn_serve(fd, &from);
        close(fd);
    }
    return NULL;
}

static void sn_start(void)
{
    if (sn_listener >= 0)
        return;
    ck_assert_int_eq(sw_msg_listen(mc_s, SW_SETUP_PORT, &sn_listener, NULL), SW_OK);
    ck_assert_int_eq(pthread_create(&sn_thread, NULL, sn_main, NULL), 0);
}

static void app_sock(const struct th_visor *v, char *out, size_t cap)
{
    snprintf(out, cap, "%s/app.sock", v->data_dir);
}

static void hop(char *out, size_t cap, const struct th_visor *from, const struct th_visor *to, const char *tp)
{
    snprintf(out, cap, "{\"from\":\"%s\",\"to\":\"%s\",\"t_id\":\"%s\"}", from->pk_hex, to->pk_hex, tp);
}

static void paths_abc(char *fwd, char *rev, size_t cap)
{
    char h1[256], h2[256], h3[256], h4[256];
    hop(h1, sizeof(h1), &va, &vb, tp_ab);
    hop(h2, sizeof(h2), &vb, &vc, tp_bc);
    hop(h3, sizeof(h3), &vc, &vb, tp_bc);
    hop(h4, sizeof(h4), &vb, &va, tp_ab);
    snprintf(fwd, cap, "[%s,%s]", h1, h2);
    snprintf(rev, cap, "[%s,%s]", h3, h4);
}

static void write_all(int fd, const void *p, size_t n)
{
    ck_assert_int_eq(sw_io_write_all(fd, p, n, SW_IO_NO_LIMIT), SW_OK);
}

START_TEST(test_app_dial_through_b)
{
    char sa[600], sc[600], fwd[1024], rev[1024];
    struct sw_error err = { 0 };
    struct sw_pk remote;
    uint16_t rport = 0;
    int lfd = -1, fa = -1, fc = -1;
    uint8_t buf[4096];
    int base_a, base_b, base_c;

    sn_start();
    app_sock(&va, sa, sizeof(sa));
    app_sock(&vc, sc, sizeof(sc));
    paths_abc(fwd, rev, sizeof(fwd));

    /* nothing listens on C:7 yet: the setup fails and the dial says so */
    ck_assert_int_ne(sw_app_dial_path(sa, &vc.pk, 7, fwd, rev, &fa, &err), SW_OK);
    ck_assert_msg(strstr(err.msg, "setup") != NULL, "%s", err.msg);
    /* (this test's setup node does not roll back: the failed attempt's IDs stay until expiry) */
    base_a = count_rules(&va);
    base_b = count_rules(&vb);
    base_c = count_rules(&vc);

    ck_assert_msg(sw_app_listen(sc, 7, &lfd, &err) == SW_OK, "%s", err.msg);
    ck_assert_int_eq(sw_app_listen(sc, 7, &fc, &err), SW_EEXIST);
    ck_assert_msg(sw_app_dial_path(sa, &vc.pk, 7, fwd, rev, &fa, &err) == SW_OK, "%s", err.msg);
    ck_assert_msg(sw_app_accept(lfd, 5000, &fc, &remote, &rport, &err) == SW_OK, "%s", err.msg);
    ck_assert(sw_pk_equal(&remote, &va.pk));
    ck_assert_uint_ge(rport, 49152);

    /* B's rules: two forward rules, each naming only A-B or B-C */
    ck_assert_int_eq(count_rules(&vb), base_b + 2);
    ck_assert_int_eq(count_rules(&va), base_a + 1);
    ck_assert_int_eq(count_rules(&vc), base_c + 1);

    write_all(fa, "ping", 4);
    ck_assert(read_exact(fc, buf, 4, 5000));
    ck_assert(memcmp(buf, "ping", 4) == 0);
    write_all(fc, "pong", 4);
    ck_assert(read_exact(fa, buf, 4, 5000));
    ck_assert(memcmp(buf, "pong", 4) == 0);

    /* bulk both ways: 2 MB A->C while C echoes */
    {
        size_t total = 2u << 20, sent = 0, got = 0;
        uint8_t *out = malloc(total), *back = malloc(total);
        for (size_t i = 0; i < total; i++)
            out[i] = (uint8_t)(i * 31 + 7);
        while (got < total) {
            struct pollfd p[2] = { { .fd = fa, .events = (short)(sent < total ? POLLOUT | POLLIN : POLLIN) },
                                   { .fd = fc, .events = POLLIN } };
            ck_assert_int_gt(poll(p, 2, 10000), 0);
            if (p[0].revents & POLLOUT) {
                ssize_t k = send(fa, out + sent, total - sent > 65536 ? 65536 : total - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (k > 0)
                    sent += (size_t)k;
            }
            if (p[1].revents & POLLIN) {
                ssize_t k = recv(fc, buf, sizeof(buf), MSG_DONTWAIT);
                ck_assert_int_gt(k, 0);
                write_all(fc, buf, (size_t)k);
            }
            if (p[0].revents & POLLIN) {
                ssize_t k = recv(fa, back + got, total - got, MSG_DONTWAIT);
                ck_assert_int_gt(k, 0);
                got += (size_t)k;
            }
        }
        ck_assert(memcmp(out, back, total) == 0);
        free(out);
        free(back);
    }

    /* closing on A removes the rules on all three visors, and C's app sees EOF */
    close(fa);
    ck_assert_int_eq(read(fc, buf, 1) , 0);
    close(fc);
    ck_assert(wait_rules(&va, base_a, 5000));
    ck_assert(wait_rules(&vb, base_b, 5000));
    ck_assert(wait_rules(&vc, base_c, 5000));
    close(lfd);
}
END_TEST

static int cli(char *out, size_t out_cap, const char *const args[])
{
    const char *argv[32];
    char bin[512], err[1024];
    size_t n = 0;
    snprintf(bin, sizeof(bin), "%s", th_bin("skywire-cli"));
    argv[n++] = bin;
    for (size_t i = 0; args[i] && n < 31; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    return th_run(argv, out, out_cap, err, sizeof(err), 30000);
}

static bool wait_app_state(const struct th_visor *v, const char *state, int timeout_ms)
{
    for (int waited = 0;; waited += 100) {
        struct json_object *o = NULL;
        bool ok = api(v, "GET", "/api/apps", NULL, &o) == 200 && json_object_array_length(o) == 1 &&
                  strcmp(jstr(json_object_array_get_idx(o, 0), "state"), state) == 0;
        json_object_put(o);
        if (ok)
            return true;
        if (waited >= timeout_ms)
            return false;
        th_sleep_ms(100);
    }
}

/* helloworld runs as C's child process; an app connection from A gets "pong" for "ping". */
START_TEST(test_helloworld_app)
{
    char sa[600], fwd[1024], rev[1024], out[8192];
    struct sw_error err = { 0 };
    uint8_t buf[8];
    int fd = -1;

    sn_start();
    ck_assert(wait_app_state(&vc, "running", 5000));
    app_sock(&va, sa, sizeof(sa));
    paths_abc(fwd, rev, sizeof(fwd));
    for (int i = 0; i < 50; i++) { /* the app may still be starting to listen */
        if (sw_app_dial_path(sa, &vc.pk, 9, fwd, rev, &fd, &err) == SW_OK)
            break;
        th_sleep_ms(100);
    }
    ck_assert_msg(fd >= 0, "%s", err.msg);
    write_all(fd, "pingping", 8);
    ck_assert(read_exact(fd, buf, 8, 5000));
    ck_assert(memcmp(buf, "pongpong", 8) == 0);
    close(fd);

    /* the CLI: apps and rules */
    const char *ls[] = { "node", "ls-apps", "--config", vc.config, NULL };
    ck_assert_int_eq(cli(out, sizeof(out), ls), 0);
    ck_assert_ptr_nonnull(strstr(out, "helloworld"));
    ck_assert_ptr_nonnull(strstr(out, "running"));
    const char *stop[] = { "node", "stop-app", "helloworld", "--config", vc.config, NULL };
    ck_assert_int_eq(cli(out, sizeof(out), stop), 0);
    ck_assert(wait_app_state(&vc, "stopped", 3000)); /* SIGTERM works: not the 5 s SIGKILL */
    ck_assert_int_eq(cli(out, sizeof(out), stop), 1); /* not running */
    const char *start[] = { "node", "start-app", "helloworld", "--config", vc.config, NULL };
    ck_assert_int_eq(cli(out, sizeof(out), start), 0);
    ck_assert(wait_app_state(&vc, "running", 5000));
    th_expect_error(http, vc.api, "POST", "/api/apps/nope/start", "{}", NULL, 404, "not_found");
    ck_assert_int_eq(api(&vc, "POST", "/api/apps/helloworld/autostart", "{\"auto_start\":false}", NULL), 200);
    const char *lr[] = { "node", "ls-rules", "--config", vb.config, NULL };
    ck_assert_int_eq(cli(out, sizeof(out), lr), 0);
    ck_assert_ptr_nonnull(strstr(out, "RID"));
    const char *rr[] = { "node", "rm-rule", "4000000000", "--config", vb.config, NULL };
    ck_assert_int_eq(cli(out, sizeof(out), rr), 1);
    const char *bad[] = { "node", "rule", "x", "--config", vb.config, NULL };
    ck_assert_int_eq(cli(out, sizeof(out), bad), 2);
}
END_TEST

/* ---- T as the middle hop: the test sees every byte a forwarding hop sees ------------------- */

struct t_rule { uint32_t rid, next_rid; char next_tp[SW_UUID_STR_LEN + 1]; };
static struct t_rule t_rules[16];
static int t_nrules;
static uint32_t t_next_rid = 1000;
static pthread_mutex_t t_mu = PTHREAD_MUTEX_INITIALIZER;
static volatile bool t_stop;
static uint8_t *t_capture;
static size_t t_captured, t_forwarded;

/* T's port 3: reserve and add_rules (forward only), one request per stream. */
static void *t_rules_main(void *arg)
{
    int lfd = (int)(intptr_t)arg;
    while (!t_stop) {
        struct sw_pk from;
        uint16_t port;
        char *in = NULL;
        size_t len;
        struct json_object *req = NULL, *resp;
        int fd = -1;
        if (sw_msg_accept(lfd, 300, &fd, &from, &port, NULL))
            continue;
        if (sw_setup_frame_read(fd, 5000, &in, &len) == SW_OK && sw_json_parse(in, len, &req, NULL) == SW_OK) {
            uint64_t id = json_object_get_uint64(json_object_object_get(req, "id"));
            resp = sw_setup_ok(id);
            pthread_mutex_lock(&t_mu);
            if (strcmp(jstr(req, "type"), "reserve") == 0) {
                struct json_object *arr = json_object_new_array();
                json_object_array_add(arr, json_object_new_int64(t_next_rid++));
                json_object_object_add(resp, "rids", arr);
            } else {
                struct json_object *r = json_object_array_get_idx(json_object_object_get(req, "rules"), 0);
                struct t_rule *tr = &t_rules[t_nrules++ % 16];
                tr->rid = (uint32_t)json_object_get_int64(json_object_object_get(r, "rid"));
                tr->next_rid = (uint32_t)json_object_get_int64(json_object_object_get(r, "next_rid"));
                snprintf(tr->next_tp, sizeof(tr->next_tp), "%s", jstr(r, "next_tp"));
            }
            pthread_mutex_unlock(&t_mu);
            sw_setup_send(fd, resp, 5000);
            json_object_put(resp);
        }
        json_object_put(req);
        free(in);
        close(fd);
    }
    return NULL;
}

/* Relays routing packets between fd_ta and fd_tc by T's rules, capturing them. */
static void *t_relay_main(void *arg)
{
    static uint8_t pkt[70000];
    while (!t_stop) {
        struct pollfd p[2] = { { .fd = fd_ta, .events = POLLIN }, { .fd = fd_tc, .events = POLLIN } };
        if (poll(p, 2, 200) <= 0)
            continue;
        for (int k = 0; k < 2; k++) {
            size_t n;
            uint32_t rid;
            if (!(p[k].revents & POLLIN))
                continue;
            n = recv_packet(p[k].fd, pkt, sizeof(pkt), 1000);
            if (n < 5 || pkt[0] < 0x10 || pkt[0] > 0x12)
                continue;
            rid = rid_of(pkt);
            pthread_mutex_lock(&t_mu);
            for (int i = 0; i < t_nrules && i < 16; i++) {
                if (t_rules[i].rid != rid)
                    continue;
                sw_put_u32(pkt + 1, t_rules[i].next_rid);
                if (t_captured + n <= (8u << 20)) {
                    memcpy(t_capture + t_captured, pkt, n);
                    t_captured += n;
                }
                t_forwarded++;
                send_packet(strcmp(t_rules[i].next_tp, tp_ct) == 0 ? fd_tc : fd_ta, pkt, n);
                break;
            }
            pthread_mutex_unlock(&t_mu);
        }
    }
    return NULL;
}

START_TEST(test_hop_sees_only_ciphertext)
{
    static const char marker[] = "SKYWIRE-PLAINTEXT-MARKER-0123456789";
    char sa[600], sc[600], fwd[1024], rev[1024], h[4][300];
    struct sw_error err = { 0 };
    pthread_t th_rules, th_relay;
    int t3 = -1, lfd = -1, fa = -1, fc = -1;
    uint8_t msg[8 * (sizeof(marker) - 1)], buf[sizeof(msg)];
    struct sw_pk tpk = kp_t.pk;
    char thex[SW_PK_HEX_LEN + 1];

    sn_start();
    t_capture = malloc(8u << 20);
    ck_assert_int_eq(sw_msg_listen(mc_t, SW_RULES_PORT, &t3, NULL), SW_OK);
    ck_assert_int_eq(pthread_create(&th_rules, NULL, t_rules_main, (void *)(intptr_t)t3), 0);
    ck_assert_int_eq(pthread_create(&th_relay, NULL, t_relay_main, NULL), 0);
    sw_pk_to_hex(&tpk, thex);
    snprintf(h[0], sizeof(h[0]), "{\"from\":\"%s\",\"to\":\"%s\",\"t_id\":\"%s\"}", va.pk_hex, thex, tp_ta);
    snprintf(h[1], sizeof(h[1]), "{\"from\":\"%s\",\"to\":\"%s\",\"t_id\":\"%s\"}", thex, vc.pk_hex, tp_ct);
    snprintf(h[2], sizeof(h[2]), "{\"from\":\"%s\",\"to\":\"%s\",\"t_id\":\"%s\"}", vc.pk_hex, thex, tp_ct);
    snprintf(h[3], sizeof(h[3]), "{\"from\":\"%s\",\"to\":\"%s\",\"t_id\":\"%s\"}", thex, va.pk_hex, tp_ta);
    snprintf(fwd, sizeof(fwd), "[%s,%s]", h[0], h[1]);
    snprintf(rev, sizeof(rev), "[%s,%s]", h[2], h[3]);
    app_sock(&va, sa, sizeof(sa));
    app_sock(&vc, sc, sizeof(sc));
    ck_assert_msg(sw_app_listen(sc, 11, &lfd, &err) == SW_OK, "%s", err.msg);
    ck_assert_msg(sw_app_dial_path(sa, &vc.pk, 11, fwd, rev, &fa, &err) == SW_OK, "%s", err.msg);
    ck_assert_msg(sw_app_accept(lfd, 5000, &fc, NULL, NULL, &err) == SW_OK, "%s", err.msg);
    for (size_t i = 0; i < sizeof(msg); i += sizeof(marker) - 1)
        memcpy(msg + i, marker, sizeof(marker) - 1);
    write_all(fa, msg, sizeof(msg));
    ck_assert(read_exact(fc, buf, sizeof(msg), 5000));
    ck_assert(memcmp(buf, msg, sizeof(msg)) == 0);
    write_all(fc, msg, sizeof(msg));
    ck_assert(read_exact(fa, buf, sizeof(msg), 5000));
    ck_assert(memcmp(buf, msg, sizeof(msg)) == 0);
    close(fa);
    ck_assert_int_eq(read(fc, buf, 1), 0);
    close(fc);
    close(lfd);
    th_sleep_ms(300);
    t_stop = true;
    pthread_join(th_relay, NULL);
    pthread_join(th_rules, NULL);
    close(t3);
    /* the hop forwarded handshake + data + close both ways, and never the plaintext */
    ck_assert_uint_ge(t_forwarded, 6);
    ck_assert_uint_gt(t_captured, 2 * sizeof(msg));
    ck_assert_ptr_null(memmem(t_capture, t_captured, marker, 16));
    free(t_capture);
}
END_TEST

/* Reads until EOF (or 10 s of silence); returns the byte count, checking the pattern. */
static size_t read_to_eof(int fd, size_t cap, uint8_t seed)
{
    uint8_t buf[65536];
    size_t got = 0;
    for (;;) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        ck_assert_int_gt(poll(&p, 1, 10000), 0);
        ssize_t k = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (k == 0)
            return got;
        ck_assert_int_gt(k, 0);
        bool same = true;
        for (ssize_t i = 0; i < k; i++)
            same &= buf[i] == (uint8_t)((got + (size_t)i) * 13 + seed);
        ck_assert_msg(same, "wrong bytes after %zu", got);
        got += (size_t)k;
        ck_assert_uint_le(got, cap);
    }
}

static void write_pattern(int fd, size_t total, uint8_t seed)
{
    uint8_t *out = malloc(total);
    for (size_t i = 0; i < total; i++)
        out[i] = (uint8_t)(i * 13 + seed);
    write_all(fd, out, total);
    free(out);
}

/* Bytes that reached a group end before the peer's CLOSE are delivered before the app's fd is
 * closed (flush, then close), and an app's EOF ends the group only after all it wrote is sent. */
START_TEST(test_close_delivers_queued_bytes)
{
    char sa[600], sc[600], fwd[1024], rev[1024];
    struct sw_error err = { 0 };
    struct sw_pk remote;
    uint16_t rport = 0;
    int lfd = -1, fa = -1, fc = -1;
    uint8_t b = 0;
    const size_t big = 3u << 20;

    sn_start();
    app_sock(&va, sa, sizeof(sa));
    app_sock(&vc, sc, sizeof(sc));
    paths_abc(fwd, rev, sizeof(fwd));
    ck_assert_msg(sw_app_listen(sc, 8, &lfd, &err) == SW_OK, "%s", err.msg);

    /* a 1-byte reply written and closed at once reaches the other app */
    for (int i = 0; i < 5; i++) {
        ck_assert_msg(sw_app_dial_path(sa, &vc.pk, 8, fwd, rev, &fa, &err) == SW_OK, "%s", err.msg);
        ck_assert_msg(sw_app_accept(lfd, 5000, &fc, &remote, &rport, &err) == SW_OK, "%s", err.msg);
        write_all(fc, "r", 1);
        close(fc);
        ck_assert_msg(read_exact(fa, &b, 1, 5000), "the reply before the close was lost");
        ck_assert_int_eq(b, 'r');
        ck_assert_int_eq(read(fa, &b, 1), 0);
        close(fa);
    }

    /* C writes 3 MB and closes while A's app is not reading: A's visor still holds most of it
     * when the CLOSE arrives; A gets all of it, then EOF */
    ck_assert_msg(sw_app_dial_path(sa, &vc.pk, 8, fwd, rev, &fa, &err) == SW_OK, "%s", err.msg);
    ck_assert_msg(sw_app_accept(lfd, 5000, &fc, &remote, &rport, &err) == SW_OK, "%s", err.msg);
    write_pattern(fc, big, 5);
    close(fc);
    th_sleep_ms(1000);
    ck_assert_uint_eq(read_to_eof(fa, big, 5), big);
    close(fa);

    /* A writes 3 MB and closes at once: C gets all of it, then EOF */
    ck_assert_msg(sw_app_dial_path(sa, &vc.pk, 8, fwd, rev, &fa, &err) == SW_OK, "%s", err.msg);
    ck_assert_msg(sw_app_accept(lfd, 5000, &fc, &remote, &rport, &err) == SW_OK, "%s", err.msg);
    write_pattern(fa, big, 9);
    close(fa);
    ck_assert_uint_eq(read_to_eof(fc, big, 9), big);
    close(fc);
    close(lfd);
}
END_TEST

static Suite *routing_suite(void)
{
    Suite *s = suite_create("routing");
    TCase *tc = tcase_create("routing");

    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_untrusted_refused);
    tcase_add_test(tc, test_protocol_errors);
    tcase_add_test(tc, test_forward_both_ways_and_close);
    tcase_add_test(tc, test_operator_delete);
    tcase_add_test(tc, test_full_output_drops_not_blocks);
    tcase_add_test(tc, test_app_dial_through_b);
    tcase_add_test(tc, test_close_delivers_queued_bytes);
    tcase_add_test(tc, test_helloworld_app);
    tcase_add_test(tc, test_hop_sees_only_ciphertext);
    suite_add_tcase(s, tc);
    return s;
}

const struct th_check_main th_check_main = {
    .suite = routing_suite,
    .fork = CK_NOFORK,
    .before = th_check_init_crypto_http,
};
