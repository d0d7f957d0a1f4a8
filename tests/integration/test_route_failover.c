/* Route failover with the real services (docs/routing.md §7): transport discovery, route
 * finder, messaging discovery + server, the setup node, and visors A, B, C, D (stcp A-B, B-C,
 * A-D, D-C) plus E (stcp A-E only) whose routing.setup_nodes does not list the setup node.
 *
 * 1. A route group whose reverse path crosses E: E refuses the rule stream, the setup fails,
 *    and no forward/consume rule is left on any visor.
 * 2. An app connection A->C (this process listens on C's app socket and dials through A's,
 *    with an explicit path through B), data flows both ways; B is killed with SIGKILL; the
 *    group is re-established through D within a bounded time, every byte arrives exactly once
 *    and in order, and D's rule table shows the new route.
 * 3. A route that silently stops delivering (a rule removed on D, every transport up) is set
 *    up again after the keepalive timeout.
 * 4. With D killed too there is no path left: both app connections are closed after the
 *    30 s re-establishment deadline. */
#include "common/http_client.h"
#include "common/json.h"
#include "common/keys.h"
#include "common/uuid.h"
#include "tests/harness/api_client.h"
#include "tests/harness/check_main.h"
#include "tests/harness/harness.h"
#include "tests/harness/net_env.h"
#include "tests/harness/visor_env.h"
#include "visor/app/app.h"

#include <check.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static struct th_visor va, vb, vc, vd, ve;
static struct th_net net = { .name = "fo", .with_rf = true, .with_sn = true };
static struct sw_http_client *http; /* net.http */
static char tp_ab[SW_UUID_STR_LEN + 1], tp_bc[SW_UUID_STR_LEN + 1], tp_ad[SW_UUID_STR_LEN + 1],
    tp_dc[SW_UUID_STR_LEN + 1], tp_ae[SW_UUID_STR_LEN + 1];

static long api(const struct th_visor *v, const char *method, const char *target, const char *body,
                struct json_object **out)
{
    return th_call(http, v->api, method, target, body, NULL, out);
}

static const char *jstr(struct json_object *o, const char *key)
{
    return json_object_get_string(json_object_object_get(o, key));
}

/* "rid:type:next_tp," for every forward/consume rule (reserved IDs are not rules). */
static void rules_sig(const struct th_visor *v, char *out, size_t cap)
{
    struct json_object *o = NULL;
    size_t len = 0;
    out[0] = 0;
    ck_assert_int_eq(api(v, "GET", "/api/routes", NULL, &o), 200);
    for (size_t i = 0; i < json_object_array_length(o); i++) {
        struct json_object *r = json_object_array_get_idx(o, i);
        const char *t = jstr(r, "type"), *nt = jstr(r, "next_tp");
        if (!t || strcmp(t, "reserved") == 0)
            continue;
        len += (size_t)snprintf(out + len, cap - len, "%lld:%s:%s,", (long long)json_object_get_int64(json_object_object_get(r, "rid")),
                                t, nt ? nt : "");
        ck_assert_uint_lt(len, cap);
    }
    json_object_put(o);
}

/* Forward rules on v whose next transport is tp. */
static int count_forward_to(const struct th_visor *v, const char *tp)
{
    struct json_object *o = NULL;
    int n = 0;
    ck_assert_int_eq(api(v, "GET", "/api/routes", NULL, &o), 200);
    for (size_t i = 0; i < json_object_array_length(o); i++) {
        struct json_object *r = json_object_array_get_idx(o, i);
        const char *t = jstr(r, "type"), *nt = jstr(r, "next_tp");
        if (t && strcmp(t, "forward") == 0 && nt && strcasecmp(nt, tp) == 0)
            n++;
    }
    json_object_put(o);
    return n;
}

static bool rf_has_route(const struct th_visor *from, const struct th_visor *to)
{
    char body[400];
    snprintf(body, sizeof(body), "{\"edges\":[[\"%s\",\"%s\"]],\"opts\":{\"min_hops\":1,\"max_hops\":4,\"count\":4}}",
             from->pk_hex, to->pk_hex);
    return th_call(http, net.rf_base, "POST", "/routes", body, NULL, NULL) == 200;
}

static void hop(char *out, size_t cap, const struct th_visor *a, const struct th_visor *b, const char *tp)
{
    snprintf(out, cap, "{\"from\":\"%s\",\"to\":\"%s\",\"t_id\":\"%s\"}", a->pk_hex, b->pk_hex, tp);
}

static void app_sock(const struct th_visor *v, char *out, size_t cap)
{
    snprintf(out, cap, "%s/app.sock", v->data_dir);
}

static void setup(void)
{
    char other_hex[SW_PK_HEX_LEN + 1];
    struct sw_keypair other;

    sw_keypair_generate(&other);
    sw_pk_to_hex(&other.pk, other_hex);
    ck_assert_msg(th_net_start(&net), "the services did not start");
    http = net.http;
    ck_assert_int_eq(th_net_visor_gen(&net, &va, "fo-a", NULL, NULL), 0);
    ck_assert_int_eq(th_net_visor_gen(&net, &vb, "fo-b", NULL, NULL), 0);
    ck_assert_int_eq(th_net_visor_gen(&net, &vc, "fo-c", NULL, NULL), 0);
    ck_assert_int_eq(th_net_visor_gen(&net, &vd, "fo-d", NULL, NULL), 0);
    /* E trusts another setup node: it refuses rule streams from this one */
    ck_assert_int_eq(th_net_visor_gen(&net, &ve, "fo-e", other_hex, NULL), 0);
    ck_assert_int_eq(th_visor_start(&va), 0);
    ck_assert_int_eq(th_visor_start(&vb), 0);
    ck_assert_int_eq(th_visor_start(&vc), 0);
    ck_assert_int_eq(th_visor_start(&vd), 0);
    ck_assert_int_eq(th_visor_start(&ve), 0);
    ck_assert(th_net_wait_sessions(&net, &va, 15000) && th_net_wait_sessions(&net, &vb, 15000) &&
              th_net_wait_sessions(&net, &vc, 15000) && th_net_wait_sessions(&net, &vd, 15000) &&
              th_net_wait_sessions(&net, &ve, 15000));
    ck_assert(th_net_wait_mdisc(&net, va.pk_hex, 15000) && th_net_wait_mdisc(&net, vb.pk_hex, 15000) &&
              th_net_wait_mdisc(&net, vc.pk_hex, 15000) && th_net_wait_mdisc(&net, vd.pk_hex, 15000) &&
              th_net_wait_mdisc(&net, ve.pk_hex, 15000));
    ck_assert_int_eq(th_net_add_stcp(&net, &va, &vb, tp_ab), 201);
    ck_assert_int_eq(th_net_add_stcp(&net, &vb, &vc, tp_bc), 201);
    ck_assert_int_eq(th_net_add_stcp(&net, &va, &vd, tp_ad), 201);
    ck_assert_int_eq(th_net_add_stcp(&net, &vd, &vc, tp_dc), 201);
    ck_assert_int_eq(th_net_add_stcp(&net, &va, &ve, tp_ae), 201);
    for (int i = 0; i < 100 && !rf_has_route(&va, &vc); i++)
        th_sleep_ms(200);
    ck_assert(rf_has_route(&va, &vc));
}

static void teardown(void)
{
    th_net_stop(&net, (struct th_visor *const[]){ &va, &vb, &vc, &vd, &ve }, 5);
    http = NULL;
}

START_TEST(test_refusing_hop_leaves_no_rule)
{
    const struct th_visor *all[] = { &va, &vb, &vc, &vd, &ve };
    static char before[5][8192], after[8192];
    char sock[600], f1[300], f2[300], r1[300], r2[300], fwd[700], rev[700];
    struct sw_error err = { 0 };
    int fd = -1, lfd = -1;

    for (int i = 0; i < 5; i++)
        rules_sig(all[i], before[i], sizeof(before[i]));
    app_sock(&vc, sock, sizeof(sock));
    ck_assert_int_eq(sw_app_listen(sock, 9, &lfd, &err), SW_OK);
    /* forward A-D-C is fine; the reverse C-E-A crosses E, which refuses rule streams from this
     * setup node (after D and C reserved their IDs) */
    hop(f1, sizeof(f1), &va, &vd, tp_ad);
    hop(f2, sizeof(f2), &vd, &vc, tp_dc);
    hop(r1, sizeof(r1), &vc, &ve, tp_ae);
    hop(r2, sizeof(r2), &ve, &va, tp_ae);
    snprintf(fwd, sizeof(fwd), "[%s,%s]", f1, f2);
    snprintf(rev, sizeof(rev), "[%s,%s]", r1, r2);
    app_sock(&va, sock, sizeof(sock));
    ck_assert_int_ne(sw_app_dial_path(sock, &vc.pk, 9, fwd, rev, &fd, &err), SW_OK);
    ck_assert_msg(strstr(err.msg, "refused") || strstr(err.msg, "setup"), "%s", err.msg);
    ck_assert(th_log_wait(ve.log, "not in routing.setup_nodes", 5000));
    for (int i = 0; i < 5; i++) {
        rules_sig(all[i], after, sizeof(after));
        ck_assert_msg(strcmp(before[i], after) == 0, "visor %s: rules %s -> %s", all[i]->name, before[i], after);
    }
    close(lfd);
}
END_TEST

/* Writes len bytes of the pattern starting at offset off (byte i = (i * 7 + i / 251) & 0xff). */
static uint8_t pat(size_t i)
{
    return (uint8_t)((i * 7 + i / 251) & 0xff);
}

static void write_pattern(int fd, size_t off, size_t len)
{
    static uint8_t buf[65536];
    while (len) {
        size_t n = len < sizeof(buf) ? len : sizeof(buf);
        for (size_t i = 0; i < n; i++)
            buf[i] = pat(off + i);
        ssize_t w = write(fd, buf, n);
        ck_assert_msg(w > 0, "write: %s", strerror(errno));
        off += (size_t)w;
        len -= (size_t)w;
    }
}

/* Reads exactly len bytes within timeout_ms and checks them against the pattern at off;
 * returns false on timeout/EOF (bytes read so far in *got). */
static bool read_pattern(int fd, size_t off, size_t len, int timeout_ms, size_t *got)
{
    static uint8_t buf[65536];
    int64_t end = sw_deadline_ms(timeout_ms);
    *got = 0;
    while (*got < len) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int left = sw_ms_left(end);
        if (left == 0 || poll(&p, 1, left) != 1)
            return false;
        size_t want = len - *got < sizeof(buf) ? len - *got : sizeof(buf);
        ssize_t n = read(fd, buf, want);
        if (n <= 0)
            return false;
        for (ssize_t i = 0; i < n; i++)
            ck_assert_msg(buf[i] == pat(off + *got + (size_t)i), "byte %zu differs", off + *got + (size_t)i);
        *got += (size_t)n;
    }
    return true;
}

/* Echo len bytes: A writes, C reads and writes them back, A reads them. */
static bool echo(int fa, int fc, size_t off, size_t len, int timeout_ms)
{
    size_t got = 0;
    write_pattern(fa, off, len);
    if (!read_pattern(fc, off, len, timeout_ms, &got))
        return false;
    write_pattern(fc, off, len);
    return read_pattern(fa, off, len, timeout_ms, &got);
}

static bool nothing_more(int fd, int ms)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    char c;
    if (poll(&p, 1, ms) == 0)
        return true;
    return recv(fd, &c, 1, MSG_DONTWAIT | MSG_PEEK) < 0 && errno == EAGAIN;
}

START_TEST(test_failover_moves_traffic_to_d)
{
    char sock[600], f1[300], f2[300], r1[300], r2[300], fwd[700], rev[700];
    struct sw_error err = { 0 };
    struct sw_pk remote;
    uint16_t rport = 0;
    int fa = -1, fc = -1, lfd = -1;
    size_t off = 0, got = 0;
    int64_t t_kill, t_down, t_ok;
    struct json_object *o = NULL;

    app_sock(&vc, sock, sizeof(sock));
    ck_assert_int_eq(sw_app_listen(sock, 7, &lfd, &err), SW_OK);
    hop(f1, sizeof(f1), &va, &vb, tp_ab);
    hop(f2, sizeof(f2), &vb, &vc, tp_bc);
    hop(r1, sizeof(r1), &vc, &vb, tp_bc);
    hop(r2, sizeof(r2), &vb, &va, tp_ab);
    snprintf(fwd, sizeof(fwd), "[%s,%s]", f1, f2);
    snprintf(rev, sizeof(rev), "[%s,%s]", r1, r2);
    app_sock(&va, sock, sizeof(sock));
    ck_assert_msg(sw_app_dial_path(sock, &vc.pk, 7, fwd, rev, &fa, &err) == SW_OK, "dial: %s", err.msg);
    ck_assert_int_eq(sw_app_accept(lfd, 10000, &fc, &remote, &rport, &err), SW_OK);
    ck_assert(sw_pk_equal(&remote, &va.pk));

    /* traffic through B */
    ck_assert(echo(fa, fc, off, 300000, 10000));
    off += 300000;
    ck_assert_int_eq(count_forward_to(&vb, tp_bc), 1);
    ck_assert_int_eq(count_forward_to(&vb, tp_ab), 1);
    ck_assert_int_eq(count_forward_to(&vd, tp_dc) + count_forward_to(&vd, tp_ad), 0);

    /* B dies */
    t_kill = sw_mono_ms();
    th_visor_stop(&vb, true);
    /* bytes written once A knows its first hop is gone are held and sent on the new route */
    while (th_net_tp_up(&net, &va, tp_ab) && sw_ms_since(t_kill) < 10000)
        th_sleep_ms(5);
    t_down = sw_mono_ms();
    write_pattern(fa, off, 100000);
    ck_assert_msg(read_pattern(fc, off, 100000, 30000, &got), "only %zu bytes after the failover", got);
    write_pattern(fc, off, 100000);
    ck_assert(read_pattern(fa, off, 100000, 30000, &got));
    t_ok = sw_mono_ms();
    off += 100000;
    fprintf(stderr, "failover: A saw its transport to B down %lld ms after the kill; the echo "
                    "through D completed %lld ms after the kill\n",
            (long long)(t_down - t_kill), (long long)(t_ok - t_kill));
    ck_assert_int_lt(t_ok - t_kill, 15000);

    /* D carries the route now, both ways */
    ck_assert_int_eq(count_forward_to(&vd, tp_dc), 1);
    ck_assert_int_eq(count_forward_to(&vd, tp_ad), 1);
    /* more traffic, exactly once and in order */
    for (int i = 0; i < 5; i++) {
        ck_assert(echo(fa, fc, off, 200000, 10000));
        off += 200000;
    }
    ck_assert(nothing_more(fa, 300) && nothing_more(fc, 300));
    ck_assert_int_eq(api(&va, "GET", "/metrics", NULL, NULL), 200);
    (void)o;

    /* closing ends both sides and removes the new route's rules on D */
    close(fa);
    {
        char c;
        struct pollfd p = { .fd = fc, .events = POLLIN };
        ck_assert_int_eq(poll(&p, 1, 10000), 1);
        ck_assert_int_eq(read(fc, &c, 1), 0);
    }
    close(fc);
    for (int i = 0; i < 50 && count_forward_to(&vd, tp_dc) + count_forward_to(&vd, tp_ad) > 0; i++)
        th_sleep_ms(100);
    ck_assert_int_eq(count_forward_to(&vd, tp_dc) + count_forward_to(&vd, tp_ad), 0);
    close(lfd);
}
END_TEST

/* The rid of the forward rule on v whose next transport is tp (0 if none). */
static int64_t forward_rid_to(const struct th_visor *v, const char *tp)
{
    struct json_object *o = NULL;
    int64_t rid = 0;
    ck_assert_int_eq(api(v, "GET", "/api/routes", NULL, &o), 200);
    for (size_t i = 0; i < json_object_array_length(o); i++) {
        struct json_object *r = json_object_array_get_idx(o, i);
        const char *t = jstr(r, "type"), *nt = jstr(r, "next_tp");
        if (t && strcmp(t, "forward") == 0 && nt && strcasecmp(nt, tp) == 0)
            rid = json_object_get_int64(json_object_object_get(r, "rid"));
    }
    json_object_put(o);
    return rid;
}

/* A route that silently stops carrying packets back to A (D loses the rule of the reverse
 * route) while every transport stays up: A hears nothing for VISOR_GROUP_DEAD_S, sets the group up
 * again (the route finder only knows A-D-C now) and the connection carries on. */
START_TEST(test_silent_route_is_reestablished)
{
    char sock[600], f1[300], f2[300], r1[300], r2[300], fwd[700], rev[700], target[64];
    struct sw_error err = { 0 };
    struct sw_pk remote;
    uint16_t rport = 0;
    int fa = -1, fc = -1, lfd = -1;
    int64_t rid, t0, t1;
    size_t off = 0;

    app_sock(&vc, sock, sizeof(sock));
    ck_assert_int_eq(sw_app_listen(sock, 8, &lfd, &err), SW_OK);
    hop(f1, sizeof(f1), &va, &vd, tp_ad);
    hop(f2, sizeof(f2), &vd, &vc, tp_dc);
    hop(r1, sizeof(r1), &vc, &vd, tp_dc);
    hop(r2, sizeof(r2), &vd, &va, tp_ad);
    snprintf(fwd, sizeof(fwd), "[%s,%s]", f1, f2);
    snprintf(rev, sizeof(rev), "[%s,%s]", r1, r2);
    app_sock(&va, sock, sizeof(sock));
    ck_assert_msg(sw_app_dial_path(sock, &vc.pk, 8, fwd, rev, &fa, &err) == SW_OK, "dial: %s", err.msg);
    ck_assert_int_eq(sw_app_accept(lfd, 10000, &fc, &remote, &rport, &err), SW_OK);
    ck_assert(echo(fa, fc, off, 50000, 10000));
    off += 50000;

    ck_assert_int_gt((rid = forward_rid_to(&vd, tp_ad)), 0);
    snprintf(target, sizeof(target), "/api/routes/%lld", (long long)rid);
    ck_assert_int_eq(api(&vd, "DELETE", target, NULL, NULL), 200);
    t0 = sw_mono_ms();
    /* a new reverse rule appears on D once A has noticed the silence */
    while (forward_rid_to(&vd, tp_ad) == 0 && sw_ms_since(t0) < 40000)
        th_sleep_ms(50);
    t1 = sw_mono_ms();
    ck_assert_int_ne(forward_rid_to(&vd, tp_ad), 0);
    fprintf(stderr, "silent route: re-established %lld ms after the reverse rule was removed\n",
            (long long)(t1 - t0));
    ck_assert_int_ge(t1 - t0, 15000); /* not before the keepalive timeout */
    for (int i = 0; i < 3; i++) {
        ck_assert(echo(fa, fc, off, 100000, 10000));
        off += 100000;
    }
    ck_assert(nothing_more(fa, 300) && nothing_more(fc, 300));
    close(fa);
    close(fc);
    close(lfd);
}
END_TEST

static bool eof_within(int fd, int ms)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    char buf[256];
    int64_t end = sw_deadline_ms(ms);
    while (sw_mono_ms() < end) {
        if (poll(&p, 1, 100) == 1) {
            ssize_t n = read(fd, buf, sizeof(buf));
            if (n <= 0)
                return true;
        }
    }
    return false;
}

START_TEST(test_no_path_left_closes_after_deadline)
{
    char sock[600], f1[300], f2[300], r1[300], r2[300], fwd[700], rev[700];
    struct sw_error err = { 0 };
    struct sw_pk remote;
    uint16_t rport = 0;
    int fa = -1, fc = -1, lfd = -1;
    int64_t t0, ta, tc;

    app_sock(&vc, sock, sizeof(sock));
    ck_assert_int_eq(sw_app_listen(sock, 10, &lfd, &err), SW_OK);
    hop(f1, sizeof(f1), &va, &vd, tp_ad);
    hop(f2, sizeof(f2), &vd, &vc, tp_dc);
    hop(r1, sizeof(r1), &vc, &vd, tp_dc);
    hop(r2, sizeof(r2), &vd, &va, tp_ad);
    snprintf(fwd, sizeof(fwd), "[%s,%s]", f1, f2);
    snprintf(rev, sizeof(rev), "[%s,%s]", r1, r2);
    app_sock(&va, sock, sizeof(sock));
    ck_assert_msg(sw_app_dial_path(sock, &vc.pk, 10, fwd, rev, &fa, &err) == SW_OK, "dial: %s", err.msg);
    ck_assert_int_eq(sw_app_accept(lfd, 10000, &fc, &remote, &rport, &err), SW_OK);
    ck_assert(echo(fa, fc, 0, 1000, 10000));
    t0 = sw_mono_ms();
    th_visor_stop(&vd, true);
    ck_assert(!eof_within(fa, 25000)); /* still trying */
    ck_assert(eof_within(fa, 15000));
    ta = sw_mono_ms();
    ck_assert(eof_within(fc, 10000));
    tc = sw_mono_ms();
    fprintf(stderr, "no path: A's connection closed %lld ms, C's %lld ms after D was killed\n",
            (long long)(ta - t0), (long long)(tc - t0));
    close(fa);
    close(fc);
    close(lfd);
}
END_TEST

static Suite *failover_suite(void)
{
    Suite *s = suite_create("route_failover");
    TCase *tc = tcase_create("failover");

    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_refusing_hop_leaves_no_rule);
    tcase_add_test(tc, test_failover_moves_traffic_to_d);
    tcase_add_test(tc, test_silent_route_is_reestablished);
    tcase_add_test(tc, test_no_path_left_closes_after_deadline);
    suite_add_tcase(s, tc);
    return s;
}

const struct th_check_main th_check_main = {
    .suite = failover_suite,
    .fork = CK_NOFORK,
    .before = th_check_init_crypto_http,
};
