/* Routes that never lose a byte (docs/routing.md §4, §7), with the real services and visors
 * A, B, C, D, E, F: stcp A-B, B-C (the main path), A-D, D-C and A-F, F-C (alternatives) and
 * A-E, E-C where E drops 5% of the DATA packets it forwards (SKYWIRE_VISOR_FAULT_DROP_PCT;
 * removed after test 3, so that failovers do not pick the lossy path).
 *
 * 1. A reader that stops for 30 s and then reads on: the connection survives, every byte
 *    arrives (SHA-256), B's queues stay below one window, B's memory stays bounded and no
 *    visor drops anything.
 * 2. Half-close: A shuts its write side; C reads to EOF, answers and closes; A reads it all.
 * 3. Over the lossy hop E: a datagram group delivers about 95% of its datagrams, intact, each
 *    at most once, and stays up; a stream group over the same hop delivers every byte in
 *    order; a stream dial to a datagram listener is refused.
 * 4. rm-tp of A-B while 64 MiB flow over A-B-C: the group moves first and every byte arrives.
 * 5. kill -9 of the middle visor during a 256 MiB transfer: the transfer completes over
 *    another path with the right SHA-256. */
#include "common/clock.h"
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
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static struct th_visor va, vb, vc, vd, ve, vf;
static struct th_net net = { .name = "rl", .with_rf = true, .with_sn = true };
static char tp_ab[SW_UUID_STR_LEN + 1], tp_bc[SW_UUID_STR_LEN + 1], tp_ad[SW_UUID_STR_LEN + 1],
    tp_dc[SW_UUID_STR_LEN + 1], tp_ae[SW_UUID_STR_LEN + 1], tp_ec[SW_UUID_STR_LEN + 1],
    tp_af[SW_UUID_STR_LEN + 1], tp_fc[SW_UUID_STR_LEN + 1];

static void setup(void)
{
    struct th_visor *all[] = { &va, &vb, &vc, &vd, &ve, &vf };
    const char *names[] = { "rl-a", "rl-b", "rl-c", "rl-d", "rl-e", "rl-f" };

    ck_assert_msg(th_net_start(&net), "the services did not start");
    for (int i = 0; i < 6; i++)
        ck_assert_int_eq(th_net_visor_gen(&net, all[i], names[i], NULL, NULL), 0);
    for (int i = 0; i < 6; i++) {
        if (all[i] == &ve)
            setenv("SKYWIRE_VISOR_FAULT_DROP_PCT", "5", 1);
        ck_assert_int_eq(th_visor_start(all[i]), 0);
        unsetenv("SKYWIRE_VISOR_FAULT_DROP_PCT");
    }
    for (int i = 0; i < 6; i++)
        ck_assert(th_net_wait_ready(&net, all[i], 15000));
    ck_assert_int_eq(th_net_add_stcp(&net, &va, &vb, tp_ab), 201);
    ck_assert_int_eq(th_net_add_stcp(&net, &vb, &vc, tp_bc), 201);
    ck_assert_int_eq(th_net_add_stcp(&net, &va, &vd, tp_ad), 201);
    ck_assert_int_eq(th_net_add_stcp(&net, &vd, &vc, tp_dc), 201);
    ck_assert_int_eq(th_net_add_stcp(&net, &va, &ve, tp_ae), 201);
    ck_assert_int_eq(th_net_add_stcp(&net, &ve, &vc, tp_ec), 201);
    ck_assert_int_eq(th_net_add_stcp(&net, &va, &vf, tp_af), 201);
    ck_assert_int_eq(th_net_add_stcp(&net, &vf, &vc, tp_fc), 201);
}

static void teardown(void)
{
    th_net_stop(&net, (struct th_visor *const[]){ &va, &vb, &vc, &vd, &ve, &vf }, 6);
}

/* ---- helpers --------------------------------------------------------------------------- */

static void app_sock(const struct th_visor *v, char *out, size_t cap)
{
    snprintf(out, cap, "%s/app.sock", v->data_dir);
}

/* forward x -> m -> y over tp1, tp2 and back; out gets {"fwd","rev"} JSON arrays. */
static void path3(char *fwd, char *rev, size_t cap, const struct th_visor *x, const struct th_visor *m,
                  const struct th_visor *y, const char *tp1, const char *tp2)
{
    snprintf(fwd, cap, "[{\"from\":\"%s\",\"to\":\"%s\",\"t_id\":\"%s\"},{\"from\":\"%s\",\"to\":\"%s\",\"t_id\":\"%s\"}]",
             x->pk_hex, m->pk_hex, tp1, m->pk_hex, y->pk_hex, tp2);
    snprintf(rev, cap, "[{\"from\":\"%s\",\"to\":\"%s\",\"t_id\":\"%s\"},{\"from\":\"%s\",\"to\":\"%s\",\"t_id\":\"%s\"}]",
             y->pk_hex, m->pk_hex, tp2, m->pk_hex, x->pk_hex, tp1);
}

/* A connection A -> C through middle m (listener on C's port, stream or datagram). */
static void connect_via(const struct th_visor *m, const char *tp1, const char *tp2, uint16_t port, bool datagram,
                        int *fa, int *fc, int *lfd)
{
    char sock[600], fwd[800], rev[800];
    struct sw_error err = { 0 };
    struct sw_app_dial_opts o = { .forward_json = fwd, .reverse_json = rev, .datagram = datagram };

    app_sock(&vc, sock, sizeof(sock));
    ck_assert_int_eq(sw_app_listen_mode(sock, port, datagram, lfd, &err), SW_OK);
    path3(fwd, rev, sizeof(fwd), &va, m, &vc, tp1, tp2);
    app_sock(&va, sock, sizeof(sock));
    ck_assert_msg(sw_app_dial_opts(sock, &vc.pk, port, &o, fa, &err) == SW_OK, "dial: %s", err.msg);
    ck_assert_int_eq(sw_app_accept(*lfd, 10000, fc, NULL, NULL, &err), SW_OK);
}

/* A visor's counter or gauge from /metrics (-1 when absent). */
static double metric(const struct th_visor *v, const char *name)
{
    struct sw_http_result res = { 0 };
    struct sw_error err = { 0 };
    char url[128], key[128];
    const char *p;
    double val = -1;

    snprintf(url, sizeof(url), "%s/metrics", v->api);
    if (sw_http_do(net.http, "GET", url, th_api_headers(v->api), NULL, 0, &res, &err) == SW_OK &&
        res.status == 200 && res.body) {
        snprintf(key, sizeof(key), "\n%s ", name);
        if ((p = strstr(res.body, key)))
            val = strtod(p + strlen(key), NULL);
    }
    sw_http_result_free(&res);
    return val;
}

static long rss_kib(pid_t pid)
{
    char path[64], line[256];
    long kib = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    if (!(f = fopen(path, "r")))
        return -1;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

/* A writer thread: len pseudo-random bytes (seeded), SHA-256 of them, then shutdown(SHUT_WR). */
struct writer {
    int fd;
    size_t len;
    uint32_t seed;
    uint8_t sha[crypto_hash_sha256_BYTES];
    bool ok;
    pthread_t th;
};

static void fill(uint8_t *buf, size_t n, uint32_t *x)
{
    for (size_t i = 0; i < n; i++) {
        *x ^= *x << 13;
        *x ^= *x >> 17;
        *x ^= *x << 5;
        buf[i] = (uint8_t)*x;
    }
}

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    static __thread uint8_t buf[65536];
    crypto_hash_sha256_state st;
    uint32_t x = w->seed;
    size_t left = w->len;

    crypto_hash_sha256_init(&st);
    while (left) {
        size_t n = left < sizeof(buf) ? left : sizeof(buf), off = 0;
        fill(buf, n, &x);
        crypto_hash_sha256_update(&st, buf, n);
        while (off < n) {
            ssize_t k = send(w->fd, buf + off, n - off, MSG_NOSIGNAL);
            if (k <= 0)
                return NULL;
            off += (size_t)k;
        }
        left -= n;
    }
    crypto_hash_sha256_final(&st, w->sha);
    shutdown(w->fd, SHUT_WR);
    w->ok = true;
    return NULL;
}

static void writer_start(struct writer *w, int fd, size_t len, uint32_t seed)
{
    *w = (struct writer){ .fd = fd, .len = len, .seed = seed };
    ck_assert_int_eq(pthread_create(&w->th, NULL, writer_main, w), 0);
}

/* Reads until EOF (or timeout_ms of silence): byte count, SHA-256, longest silence between
 * reads. at / on_at: once `at` bytes arrived, on_at() runs once (a fault). */
struct reader {
    size_t got;
    uint8_t sha[crypto_hash_sha256_BYTES];
    int64_t longest_gap_ms;
    bool eof;
};

static void read_all(int fd, int timeout_ms, size_t at, void (*on_at)(void), struct reader *r)
{
    static uint8_t buf[65536];
    crypto_hash_sha256_state st;
    int64_t last = sw_mono_ms();
    bool fired = false;

    memset(r, 0, sizeof(*r));
    crypto_hash_sha256_init(&st);
    for (;;) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (poll(&p, 1, timeout_ms) != 1)
            break;
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n <= 0) {
            r->eof = n == 0;
            break;
        }
        crypto_hash_sha256_update(&st, buf, (size_t)n);
        r->got += (size_t)n;
        if (fired && sw_ms_since(last) > r->longest_gap_ms)
            r->longest_gap_ms = sw_ms_since(last);
        last = sw_mono_ms();
        if (on_at && !fired && r->got >= at) {
            fired = true;
            on_at();
            last = sw_mono_ms();
        }
    }
    crypto_hash_sha256_final(&st, r->sha);
}

static void check_transfer(struct writer *w, const struct reader *r, size_t len)
{
    pthread_join(w->th, NULL);
    ck_assert_msg(w->ok, "the writer failed");
    ck_assert_msg(r->eof, "no EOF after %zu of %zu bytes", r->got, len);
    ck_assert_uint_eq(r->got, len);
    ck_assert_msg(memcmp(r->sha, w->sha, sizeof(w->sha)) == 0, "SHA-256 differs");
}

/* ---- 1. a reader that stops for 30 s ---------------------------------------------------- */

START_TEST(test_slow_reader_loses_nothing)
{
    const size_t len = 48u << 20;
    struct writer w;
    struct reader r;
    int fa, fc, lfd;
    long rss0, rss3, rss30;
    double peak;

    connect_via(&vb, tp_ab, tp_bc, 11, false, &fa, &fc, &lfd);
    rss0 = rss_kib(vb.pid);
    writer_start(&w, fa, len, 11);
    th_sleep_ms(3000); /* C reads nothing; the writer blocks once the window is full */
    rss3 = rss_kib(vb.pid);
    th_sleep_ms(27000);
    rss30 = rss_kib(vb.pid);
    peak = metric(&vb, "visor_route_queued_bytes_peak");
    read_all(fc, 20000, 0, NULL, &r);
    check_transfer(&w, &r, len);
    fprintf(stderr, "slow reader: B's RSS %ld KiB before, %ld KiB after 3 s and %ld KiB after 30 s of a "
                    "stalled reader; B's hop queues peaked at %.0f bytes\n", rss0, rss3, rss30, peak);
    /* bounded: nothing accumulates while the reader sleeps (the window filled within 3 s) */
    ck_assert_msg(rss30 - rss3 < 2048, "B grew by %ld KiB while the reader slept", rss30 - rss3);
    ck_assert(peak >= 0 && peak <= 5 * 1024 * 1024);
    ck_assert(metric(&vb, "visor_route_dropped_full_total") == 0);
    ck_assert(metric(&va, "visor_route_dropped_full_total") == 0);
    ck_assert(metric(&vc, "visor_route_dropped_full_total") == 0);
    ck_assert(metric(&vb, "visor_route_bad_records_total") == 0);
    close(fa);
    close(fc);
    close(lfd);
}
END_TEST

/* ---- 2. half-close ------------------------------------------------------------------------ */

START_TEST(test_half_close)
{
    struct writer w1, w2;
    struct reader r1, r2;
    int fa, fc, lfd;

    connect_via(&vb, tp_ab, tp_bc, 13, false, &fa, &fc, &lfd);
    writer_start(&w1, fa, 1u << 20, 21); /* A writes, then shuts its write side */
    read_all(fc, 10000, 0, NULL, &r1);
    check_transfer(&w1, &r1, 1u << 20);
    writer_start(&w2, fc, 2u << 20, 22); /* C answers after A's EOF, then closes */
    read_all(fa, 10000, 0, NULL, &r2);
    check_transfer(&w2, &r2, 2u << 20);
    close(fc);
    close(fa);
    close(lfd);
}
END_TEST

/* DELETE /api/transports/{id} on A. */
static void remove_tp(const char *id)
{
    char target[128];
    snprintf(target, sizeof(target), "/api/transports/%s", id);
    ck_assert_int_eq(th_call(net.http, va.api, "DELETE", target, NULL, NULL, NULL), 200);
}

/* ---- 3. datagrams over a lossy hop ------------------------------------------------------ */

enum { N = 2000, SIZE = 1200 }; /* datagrams sent, bytes each */

/* Reads the datagrams waiting (then for up to quiet_ms of silence) and tallies them. */
static void take_datagrams(int fd, int quiet_ms, uint8_t *buf, uint8_t *seen, int *got, int *dup, int *bad)
{
    for (;;) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        uint32_t i;
        if (poll(&p, 1, quiet_ms) != 1)
            return;
        ssize_t n = recv(fd, buf, SIZE + 16, 0);
        ck_assert_int_gt(n, 0);
        memcpy(&i, buf, sizeof(i));
        if (n != SIZE || i >= N || buf[SIZE - 1] != (uint8_t)(i & 0xff)) {
            (*bad)++;
            continue;
        }
        *dup += seen[i]++ > 0;
        (*got)++;
    }
}

START_TEST(test_datagrams_over_lossy_hop)
{
    static uint8_t seen[N];
    uint8_t buf[SIZE + 16];
    int fa, fc, lfd, dup = 0, bad = 0, got = 0, fs, fsc, lfs;
    char sock[600], fwd[800], rev[800];
    struct sw_error err = { 0 };
    struct sw_app_dial_opts o = { .forward_json = fwd, .reverse_json = rev };
    struct writer w;
    struct reader r;

    connect_via(&ve, tp_ae, tp_ec, 12, true, &fa, &fc, &lfd);
    for (uint32_t i = 0; i < N; i++) {
        memset(buf, (int)(i & 0xff), SIZE);
        memcpy(buf, &i, sizeof(i));
        ck_assert_int_eq(send(fa, buf, SIZE, 0), SIZE);
        if (i % 50 == 49) { /* a paced sender, like a VPN's, and a reader that keeps up */
            th_sleep_ms(2);
            take_datagrams(fc, 0, buf, seen, &got, &dup, &bad);
        }
    }
    take_datagrams(fc, 1500, buf, seen, &got, &dup, &bad);
    fprintf(stderr, "datagrams over a hop dropping 5%%: %d of %d arrived (%d duplicated, %d damaged); "
                    "E dropped %.0f\n", got, N, dup, bad, metric(&ve, "visor_route_fault_dropped_total"));
    ck_assert_int_eq(dup, 0);
    ck_assert_int_eq(bad, 0);
    ck_assert_int_gt(got, N * 85 / 100);
    ck_assert_int_lt(got, N); /* the hop did drop some: nothing was resent */
    /* the group stays up */
    ck_assert_int_eq(send(fa, "again", 5, 0), 5);
    {
        struct pollfd p = { .fd = fc, .events = POLLIN };
        int tries = 0;
        while (tries++ < 20 && poll(&p, 1, 100) != 1)
            ck_assert_int_eq(send(fa, "again", 5, 0), 5);
        ck_assert_int_eq(poll(&p, 1, 2000), 1);
    }

    /* a stream over the same lossy hop loses nothing */
    connect_via(&ve, tp_ae, tp_ec, 14, false, &fs, &fsc, &lfs);
    writer_start(&w, fs, 8u << 20, 31);
    read_all(fsc, 20000, 0, NULL, &r);
    check_transfer(&w, &r, 8u << 20);
    ck_assert(metric(&ve, "visor_route_fault_dropped_total") > N / 40);

    /* a stream dial to the datagram listener is refused, with the reason (over the clean
     * path through B: the refusal is sent once, and the lossy hop may drop it) */
    path3(fwd, rev, sizeof(fwd), &va, &vb, &vc, tp_ab, tp_bc);
    app_sock(&va, sock, sizeof(sock));
    {
        int fx = -1;
        ck_assert_int_ne(sw_app_dial_opts(sock, &vc.pk, 12, &o, &fx, &err), SW_OK);
        ck_assert_msg(strstr(err.msg, "datagram"), "%s", err.msg);
    }
    close(fa);
    close(fc);
    close(lfd);
    close(fs);
    close(fsc);
    close(lfs);
    remove_tp(tp_ae); /* the failovers below must not pick the lossy path */
}
END_TEST

/* len bytes A -> C through middle m; fault() runs once `at` bytes arrived. Every byte must
 * arrive (SHA-256); returns the longest pause the reader saw after the fault. */
static int64_t transfer_through_fault(const struct th_visor *m, const char *tp1, const char *tp2, uint16_t port,
                                      size_t len, size_t at, void (*fault)(void))
{
    struct writer w;
    struct reader r;
    int fa, fc, lfd;

    connect_via(m, tp1, tp2, port, false, &fa, &fc, &lfd);
    writer_start(&w, fa, len, port);
    read_all(fc, 30000, at, fault, &r);
    check_transfer(&w, &r, len);
    close(fa);
    close(fc);
    close(lfd);
    return r.longest_gap_ms;
}

/* ---- 4. rm-tp of a hop in use ------------------------------------------------------------ */

static void remove_ab(void)
{
    remove_tp(tp_ab);
}

START_TEST(test_rm_tp_moves_the_group_first)
{
    int64_t gap = transfer_through_fault(&vb, tp_ab, tp_bc, 15, 64u << 20, 16u << 20, remove_ab);
    fprintf(stderr, "rm-tp of the first hop during a transfer: longest pause %lld ms\n", (long long)gap);
}
END_TEST

/* ---- 5. kill -9 of the middle visor ------------------------------------------------------ */

static void kill_d(void)
{
    th_visor_stop(&vd, true);
}

START_TEST(test_kill_middle_during_transfer)
{
    int64_t gap = transfer_through_fault(&vd, tp_ad, tp_dc, 16, 256u << 20, 64u << 20, kill_d);
    fprintf(stderr, "kill -9 of the middle visor during 256 MiB: every byte arrived; longest pause %lld ms\n",
            (long long)gap);
}
END_TEST

static Suite *reliable_suite(void)
{
    Suite *s = suite_create("route_reliable");
    TCase *tc = tcase_create("reliable");

    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, test_slow_reader_loses_nothing);
    tcase_add_test(tc, test_half_close);
    tcase_add_test(tc, test_datagrams_over_lossy_hop);
    tcase_add_test(tc, test_rm_tp_moves_the_group_first);
    tcase_add_test(tc, test_kill_middle_during_transfer);
    suite_add_tcase(s, tc);
    return s;
}

const struct th_check_main th_check_main = {
    .suite = reliable_suite,
    .fork = CK_NOFORK,
    .before = th_check_init_crypto_http,
};
