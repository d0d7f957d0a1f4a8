/* Adversarial tests of the handshake slots (issue "Hostile load", docs/security.md rows 9 and
 * 14): idle TCP connections that never send a handshake message, from one source and from
 * many (client sockets bound to 127.0.0.2... : each 127.x.y.z is a source of its own), held
 * against the messaging server's relay port and a visor's stcp port while an honest client
 * from 127.0.0.1 forms a messaging session / completes add-tp. Checked: the honest client
 * gets through within a couple of seconds, the idle connections are closed at the first
 * message's deadline (2 s), a source beyond its share (8 once half of the slots are taken)
 * is refused at once, a full table evicts (one log line per burst, the counters in
 * /metrics), and an honest dialer cut by a busy visor is told so (not "another key").
 *
 * Loopback only, bounded: at most ~400 attacker sockets at a time, opened at a bounded rate
 * for a few seconds, all closed at the end of each test. Each test prints the honest
 * client's latency ("honest ...: N ms"); run against an older build (SW_TEST_BIN_DIR) it
 * measures the "before". */
#include "common/http_client.h"
#include "common/json.h"
#include "common/keys.h"
#include "common/msg_session.h"
#include "tests/harness/api_client.h"
#include "tests/harness/check_main.h"
#include "tests/harness/evloop.h"
#include "tests/harness/harness.h"
#include "tests/harness/visor_env.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define NO_TPD "http://127.0.0.1:9" /* the visors' discovery: nothing answers (they retry) */

static struct sw_http_client *http;

/* ---- the attacker: idle connections from 127.0.0.<first>..<first + n_src - 1> -------------- */

#define ATK_MAX 512

struct attack {
    uint16_t port;
    int first_src, n_src, per_src; /* holds n_src * per_src connections (<= ATK_MAX) */
    int rate;                      /* refills per second once the first burst is out */
    int64_t started_ms;            /* monotonic: the burst began */
    int fd[ATK_MAX];
    pthread_t thr;
    bool running;
    atomic_bool stop;
    atomic_long opened;
};

/* A non-blocking connect from 127.0.0.<src> (never blocks on a full backlog). -1 on failure. */
static int connect_from(int src, uint16_t port)
{
    struct sockaddr_in me = { .sin_family = AF_INET }, to = { .sin_family = AF_INET, .sin_port = htons(port) };
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

    if (fd < 0)
        return -1;
    me.sin_addr.s_addr = htonl(0x7f000000u | (uint32_t)src);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&me, sizeof(me)) != 0 ||
        (connect(fd, (struct sockaddr *)&to, sizeof(to)) != 0 && errno != EINPROGRESS)) {
        close(fd);
        return -1;
    }
    return fd;
}

/* True when the server closed fd (EOF or reset); whatever it sent is discarded. */
static bool is_closed(int fd)
{
    char buf[64];
    ssize_t n;

    while ((n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
    }
    return n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOTCONN && errno != EINPROGRESS);
}

static void *attack_main(void *arg)
{
    struct attack *a = arg;
    int total = a->n_src * a->per_src;

    while (!atomic_load(&a->stop)) {
        int budget = a->rate / 100 > 0 ? a->rate / 100 : 1;
        for (int i = 0; i < total && budget > 0; i++) {
            if (a->fd[i] >= 0 && !is_closed(a->fd[i]))
                continue;
            if (a->fd[i] >= 0)
                close(a->fd[i]);
            a->fd[i] = connect_from(a->first_src + i / a->per_src, a->port);
            if (a->fd[i] >= 0)
                atomic_fetch_add(&a->opened, 1);
            budget--;
        }
        th_sleep_ms(10);
    }
    return NULL;
}

/* Opens all connections at once (a burst), then, with rate > 0, a thread reopens the ones
 * the server closed, at most rate per second, until attack_stop. */
/* The one attack of a test: static, so that the fixture can still close its sockets after a
 * failed assertion left the test's frame. */
static struct attack atk;
static struct attack *running_attack;

static void attack_start(struct attack *a, uint16_t port, int first_src, int n_src, int per_src, int rate)
{
    memset(a, 0, sizeof(*a));
    running_attack = a;
    ck_assert_int_le(n_src * per_src, ATK_MAX);
    a->port = port;
    a->first_src = first_src;
    a->n_src = n_src;
    a->per_src = per_src;
    a->rate = rate;
    for (int i = 0; i < ATK_MAX; i++)
        a->fd[i] = -1;
    a->started_ms = sw_mono_ms();
    for (int i = 0; i < n_src * per_src; i++) {
        if (i && i % 64 == 0)
            th_sleep_ms(20); /* the visor's listen backlog is 128: no SYN left to retry */
        a->fd[i] = connect_from(first_src + i / per_src, port);
        ck_assert_msg(a->fd[i] >= 0, "attacker socket %d: %s", i, strerror(errno));
        atomic_fetch_add(&a->opened, 1);
    }
    if (rate > 0) {
        ck_assert_int_eq(pthread_create(&a->thr, NULL, attack_main, a), 0);
        a->running = true;
    }
}

static void attack_stop(struct attack *a)
{
    running_attack = NULL;
    atomic_store(&a->stop, true);
    if (a->running)
        pthread_join(a->thr, NULL);
    a->running = false;
    for (int i = 0; i < ATK_MAX; i++) {
        if (a->fd[i] >= 0)
            close(a->fd[i]);
        a->fd[i] = -1;
    }
}

/* Waits until every connection of a burst (no refills) is closed by the server, up to ms;
 * returns how many are still open, and in *last_ms when the last one closed (since the
 * burst began; polled every 20 ms). */
static int attack_wait_closed(struct attack *a, int ms, int64_t *last_ms)
{
    int64_t start = a->started_ms, end = sw_deadline_ms(ms);
    int open;

    do {
        open = 0;
        for (int i = 0; i < a->n_src * a->per_src; i++) {
            if (a->fd[i] < 0)
                continue;
            if (is_closed(a->fd[i])) {
                close(a->fd[i]);
                a->fd[i] = -1;
                *last_ms = sw_ms_since(start);
            } else {
                open++;
            }
        }
        if (open)
            th_sleep_ms(20);
    } while (open && sw_mono_ms() < end);
    return open;
}

static void attack_cleanup(void)
{
    if (running_attack)
        attack_stop(running_attack);
}

static int count_open(struct attack *a)
{
    int open = 0;
    for (int i = 0; i < a->n_src * a->per_src; i++)
        if (a->fd[i] >= 0 && !is_closed(a->fd[i]))
            open++;
    return open;
}

/* Value of one sample ("name" or "name{labels}") at base/metrics, -1 when absent. */
static double metric_at(const char *base, const char *sample, const char *const *headers)
{
    struct sw_http_result res = { 0 };
    char url[128];
    double v = -1;
    size_t n = strlen(sample);

    snprintf(url, sizeof(url), "%s/metrics", base);
    if (sw_http_do(http, "GET", url, headers, NULL, 0, &res, NULL) != SW_OK || res.status != 200) {
        sw_http_result_free(&res);
        return -1;
    }
    for (const char *line = res.body; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        if (strncmp(line, sample, n) == 0 && line[n] == ' ') {
            v = strtod(line + n + 1, NULL);
            break;
        }
    }
    sw_http_result_free(&res);
    return v;
}

/* ---- messaging server ------------------------------------------------------------------------ */

static pid_t ms_pid = -1;
static uint16_t ms_port, ms_http_port;
static char ms_addr[64], ms_http[96], ms_log[512];
static struct sw_keypair ms_kp;
static struct event_base *base;

/* The server with a small table (32 slots) so that 8 sources fill it; everything else is
 * its default (8 per source, 2 s for message 1, 5 s for the handshake). */
static void ms_setup(void)
{
    char key_path[600], haddr[64];
    struct sw_error err = { 0 };
    static unsigned n;

    ck_assert_int_eq(sw_crypto_init(), SW_OK);
    base = event_base_new();
    http = sw_http_client_new(NULL);
    ms_port = th_free_port();
    ms_http_port = th_free_port();
    snprintf(ms_addr, sizeof(ms_addr), "127.0.0.1:%u", ms_port);
    snprintf(haddr, sizeof(haddr), "127.0.0.1:%u", ms_http_port);
    snprintf(ms_http, sizeof(ms_http), "http://%s", haddr);
    snprintf(key_path, sizeof(key_path), "slots-messaging-server-%u.log", n);
    snprintf(ms_log, sizeof(ms_log), "%s", th_log_path(key_path)); /* one per test: lines are counted */
    unlink(ms_log);
    snprintf(key_path, sizeof(key_path), "%s.%d.%u", th_log_path("slots-ms.key"), (int)getpid(), n++);
    unlink(key_path);
    ck_assert_int_eq(sw_keypair_generate(&ms_kp), SW_OK);
    ck_assert_msg(sw_keyfile_save(key_path, &ms_kp, &err) == SW_OK, "%s", err.msg);
    const char *argv[] = { th_bin("messaging-server"), "--addr", ms_addr, "--http-addr", haddr,
                           "--key-file", key_path, "--max-handshakes", "32", NULL };
    char bin[512];
    snprintf(bin, sizeof(bin), "%s", argv[0]);
    argv[0] = bin;
    ms_pid = th_start_service(argv, ms_http_port, ms_log);
    ck_assert_int_gt(ms_pid, 0);
}

static void ms_teardown(void)
{
    int st;

    attack_cleanup();
    st = th_stop(ms_pid, 10000);
    ms_pid = -1;
    if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0))
        th_dump_log(ms_log);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "messaging-server exit status 0x%x", st);
    event_base_free(base);
    sw_http_client_free(http);
    sw_keypair_wipe(&ms_kp);
}

static double ms_metric(const char *sample) { return metric_at(ms_http, sample, NULL); }

struct honest {
    struct sw_msg_session *s;
    int ready, closed;
    char why[256];
};

static void h_ready(struct sw_msg_session *s, void *ctx) { ((struct honest *)ctx)->ready++; }
static int h_frame(struct sw_msg_session *s, const struct sw_msg_frame *f, void *ctx) { return SW_OK; }
static void h_closed(struct sw_msg_session *s, enum sw_msg_close_reason r, int goaway, const char *why, void *ctx)
{
    struct honest *h = ctx;
    h->closed++;
    h->s = NULL;
    snprintf(h->why, sizeof(h->why), "%s", why);
}
static const struct sw_msg_session_callbacks hcb = { h_ready, h_frame, NULL, h_closed };
static bool h_done(void *arg) { return ((struct honest *)arg)->ready || ((struct honest *)arg)->closed; }
static bool h_gone(void *arg) { return ((struct honest *)arg)->closed > 0; }

/* An honest client (127.0.0.1, a fresh key) forms a session, retrying a failed attempt after
 * 250 ms as a real client backs off; returns the ms until its session was ready, or -1 when
 * none was within limit_ms. why gets the last failure. */
static int64_t honest_session_ms(int limit_ms, char *why, size_t cap)
{
    int64_t start = sw_mono_ms(), end = sw_deadline_ms(limit_ms);
    struct sw_keypair kp;
    struct sw_error err = { 0 };
    int64_t took = -1;

    why[0] = '\0';
    ck_assert_int_eq(sw_keypair_generate(&kp), SW_OK);
    while (sw_mono_ms() < end) {
        struct honest h = { 0 };
        ck_assert_int_eq(sw_msg_session_connect(base, ms_addr, &kp, &ms_kp.pk, NULL, &hcb, &h, &h.s, &err), SW_OK);
        th_loop_until(base, h_done, &h, (int)(end - sw_mono_ms() > 0 ? end - sw_mono_ms() : 1));
        if (h.s) /* ready, or still handshaking at the limit: close it (on_closed follows) */
            sw_msg_session_close(h.s);
        ck_assert(th_loop_until(base, h_gone, &h, 2000));
        if (h.ready) {
            took = sw_ms_since(start);
            break;
        }
        snprintf(why, cap, "%s", h.why);
        th_loop_for(base, 250);
    }
    sw_keypair_wipe(&kp);
    return took;
}

/* One source holds 100 idle connections: 16 are taken (half of the 32 slots; beyond that a
 * source has its share of 8), the rest refused at once; the honest session forms at once;
 * the 16 are closed at the first message's deadline (2 s). */
START_TEST(test_ms_one_source)
{
    char why[256];
    int64_t took, last = 0;
    int open;

    attack_start(&atk, ms_port, 2, 1, 100, 0);
    th_sleep_ms(200);
    took = honest_session_ms(10000, why, sizeof(why));
    printf("honest session, 100 idle connections from one source: %lld ms%s%s\n", (long long)took,
           took < 0 ? ", failed: " : "", took < 0 ? why : "");
    ck_assert_msg(took >= 0 && took < 2000, "honest session after %lld ms: %s", (long long)took, why);
    ck_assert(ms_metric("ms_handshakes_total{result=\"source_limit\"}") >= 80);
    ck_assert(ms_metric("ms_handshakes_pending") <= 16);
    open = attack_wait_closed(&atk, 4000, &last);
    ck_assert_msg(open == 0, "%d idle connections still open", open);
    printf("the last idle connection closed %lld ms after it was opened\n", (long long)last);
    ck_assert_msg(last >= 1800 && last <= 3000, "the last idle connection closed after %lld ms", (long long)last);
    ck_assert(ms_metric("ms_handshake_first_message_timeouts_total") == 16);
    ck_assert(ms_metric("ms_handshakes_pending") == 0);
    ck_assert_int_eq(th_log_count(ms_log, "handshake slots: refused a connection from 127.0.0.2"), 1);
    attack_stop(&atk);
}
END_TEST

/* Eight sources keep 64 idle connections coming (the table holds 32): the table stays full,
 * the oldest of the busiest source is evicted for each newcomer, and honest sessions still
 * form at once, also after the first deadline passed; one log line for the burst. */
START_TEST(test_ms_many_sources)
{
    char why[256];
    int64_t took1, took2;

    attack_start(&atk, ms_port, 2, 8, 8, 100);
    th_sleep_ms(300);
    took1 = honest_session_ms(10000, why, sizeof(why));
    printf("honest session, 8 sources refilling 64 idle connections at 100/s (32 slots): %lld ms%s%s\n",
           (long long)took1, took1 < 0 ? ", failed: " : "", took1 < 0 ? why : "");
    ck_assert_msg(took1 >= 0 && took1 < 2000, "honest session after %lld ms: %s", (long long)took1, why);
    ck_assert(ms_metric("ms_handshakes_pending") >= 24); /* still full, but for a refill or two */
    th_sleep_ms(2500); /* the first connections met their deadline and were refilled */
    took2 = honest_session_ms(10000, why, sizeof(why));
    printf("again 2.5 s later: %lld ms (attacker opened %ld connections)\n", (long long)took2,
           atomic_load(&atk.opened));
    ck_assert_msg(took2 >= 0 && took2 < 2000, "honest session after %lld ms: %s", (long long)took2, why);
    ck_assert(ms_metric("ms_handshakes_total{result=\"evicted\"}") >= 32);
    ck_assert(ms_metric("ms_handshake_first_message_timeouts_total") > 0);
    ck_assert(ms_metric("ms_handshake_sources") >= 4);
    ck_assert_int_eq(th_log_count(ms_log, "handshake slots: all 32 taken"), 1);
    attack_stop(&atk);
    for (int i = 0; i < 100 && ms_metric("ms_handshakes_pending") != 0; i++)
        th_sleep_ms(50);
    ck_assert(ms_metric("ms_handshakes_pending") == 0);
    ck_assert(ms_metric("ms_handshake_sources") == 0);
}
END_TEST

/* ---- visor stcp -------------------------------------------------------------------------- */

static struct th_visor va, vb;
static char vdir[256];

static void visor_setup(void)
{
    const char *extra[] = { "--mdisc", "", NULL };

    http = sw_http_client_new(&(struct sw_http_client_opts){ .timeout_ms = 30000 });
    snprintf(vdir, sizeof(vdir), "%s", th_temp_dir("sw-hs-slots"));
    ck_assert_int_eq(th_visor_gen(&va, vdir, "slots-a", NO_TPD, extra), 0);
    ck_assert_int_eq(th_visor_gen(&vb, vdir, "slots-b", NO_TPD, extra), 0);
    ck_assert_int_eq(th_visor_start(&va), 0);
    ck_assert_int_eq(th_visor_start(&vb), 0);
}

static void visor_teardown(void)
{
    th_visor_stop(&va, false);
    th_visor_stop(&vb, false);
    sw_http_client_free(http);
}

/* A adds an stcp transport to B (retrying a failed add after 250 ms) and removes it again;
 * returns the ms until the add succeeded, or -1 when none did within limit_ms. why gets
 * the last failure's message. */
static int64_t honest_add_tp_ms(int limit_ms, char *why, size_t cap)
{
    int64_t start = sw_mono_ms(), end = sw_deadline_ms(limit_ms);
    char body[256], target[96];
    struct json_object *o = NULL;
    long st;

    why[0] = '\0';
    snprintf(body, sizeof(body), "{\"remote_pk\":\"%s\",\"address\":\"%s\"}", vb.pk_hex, vb.stcp);
    while (sw_mono_ms() < end) {
        st = th_call(http, va.api, "POST", "/api/transports", body, NULL, &o);
        if (st == 201 || st == 200) {
            int64_t took = sw_ms_since(start);
            snprintf(target, sizeof(target), "/api/transports/%s",
                     json_object_get_string(json_object_object_get(o, "id")));
            json_object_put(o);
            ck_assert_int_eq(th_call(http, va.api, "DELETE", target, NULL, NULL, NULL), 200);
            return took;
        }
        snprintf(why, cap, "HTTP %ld %s", st, json_object_to_json_string(o));
        json_object_put(o);
        o = NULL;
        th_sleep_ms(250);
    }
    return -1;
}

/* B's /metrics sample, or -1 (the sample is absent, or the API did not answer). */
static double vb_metric(const char *sample)
{
    return metric_at(vb.api, sample, th_api_headers(vb.api));
}

/* One source (127.0.0.2) opens 300 idle connections to B's stcp port: 128 are kept (half of
 * the 256 slots; beyond that a source has its share of 8), the rest are told "busy" and
 * closed at once; A's add-tp completes; the 128 are closed at 2 s. */
START_TEST(test_visor_one_source)
{
    char why[512];
    uint8_t busy[16];
    int64_t took, last = 0;
    double first;
    int open, i;

    attack_start(&atk, vb.stcp_port, 2, 1, 300, 0);
    th_sleep_ms(300);
    took = honest_add_tp_ms(10000, why, sizeof(why));
    printf("honest add-tp, 300 idle connections from one source: %lld ms%s%s\n", (long long)took,
           took < 0 ? ", failed: " : "", took < 0 ? why : "");
    ck_assert_msg(took >= 0 && took < 2000, "add-tp after %lld ms: %s", (long long)took, why);
    /* a refused one got the busy frame: u16 length 4, "busy" */
    for (i = 299; i >= 0; i--) {
        ssize_t n = recv(atk.fd[i], busy, sizeof(busy), MSG_DONTWAIT);
        if (n > 0) {
            ck_assert_int_eq(n, 6);
            ck_assert_mem_eq(busy, "\x00\x04" "busy", 6);
            break;
        }
    }
    ck_assert_msg(i >= 0, "no refused connection was told busy");
    ck_assert_int_le(count_open(&atk), 128);
    open = attack_wait_closed(&atk, 4000, &last);
    ck_assert_msg(open == 0, "%d idle connections still open", open);
    printf("the last idle connection closed %lld ms after it was opened\n", (long long)last);
    ck_assert_msg(last >= 1800 && last <= 3000, "the last idle connection closed after %lld ms", (long long)last);
    /* one line for the burst of 172 refusals */
    ck_assert_int_eq(th_log_count(vb.log, "stcp: refused a connection from 127.0.0.2, which has 128 of the 128"), 1);
    ck_assert_int_eq(th_log_count(vb.log, "stcp: refused a connection from"), 1);
    if ((first = vb_metric("visor_stcp_first_message_timeouts_total")) >= 0) /* where served */
        ck_assert_msg(first >= 128, "first message timeouts %g", first);
    attack_stop(&atk);
}
END_TEST

/* 40 sources keep 320 idle connections coming (B holds 256 handshakes): evictions make room
 * for A's add-tp, at once and again after the first deadline; one log line for the burst. */
START_TEST(test_visor_many_sources)
{
    char why[512];
    int64_t took1, took2;
    double evicted;

    attack_start(&atk, vb.stcp_port, 10, 40, 8, 300);
    th_sleep_ms(500);
    took1 = honest_add_tp_ms(10000, why, sizeof(why));
    printf("honest add-tp, 40 sources refilling 320 idle connections at 300/s: %lld ms%s%s\n",
           (long long)took1, took1 < 0 ? ", failed: " : "", took1 < 0 ? why : "");
    ck_assert_msg(took1 >= 0 && took1 < 2000, "add-tp after %lld ms: %s", (long long)took1, why);
    th_sleep_ms(2500);
    took2 = honest_add_tp_ms(10000, why, sizeof(why));
    printf("again 2.5 s later: %lld ms (attacker opened %ld connections)\n", (long long)took2,
           atomic_load(&atk.opened));
    ck_assert_msg(took2 >= 0 && took2 < 2000, "add-tp after %lld ms: %s", (long long)took2, why);
    attack_stop(&atk);
    /* hundreds of evictions (a debug line each), but at most one warn line per 10 s: the
     * burst's first, or (when the window of the refusals before was still open) its sum */
    ck_assert_int_ge(th_log_count(vb.log, "evicted: all 256 handshake slots taken"), 64);
    for (int i = 0; i < 110 && th_log_count(vb.log, "stcp: handshake slots in the last") == 0; i++)
        th_sleep_ms(100); /* the sum comes at most 10 s after the burst's first line */
    ck_assert_int_ge(th_log_count(vb.log, "WARN  skywire-visor: stcp: all 256 handshake slots taken") +
                     th_log_count(vb.log, "pending handshakes evicted (all 256 taken)") -
                     th_log_count(vb.log, ": 0 pending handshakes evicted (all 256 taken)"), 1);
    ck_assert_int_le(th_log_count(vb.log, "WARN  skywire-visor: stcp: all 256 handshake slots taken") +
                     th_log_count(vb.log, "WARN  skywire-visor: stcp: handshake slots in the last") +
                     th_log_count(vb.log, "WARN  skywire-visor: stcp: refused a connection"), 3);
    /* the counters, where the API serves them (visor_stcp_write_metrics) */
    if ((evicted = vb_metric("visor_stcp_handshake_slots_total{result=\"evicted\"}")) >= 0)
        ck_assert_msg(evicted >= 64, "evicted %g", evicted);
}
END_TEST

/* Half of B's slots are taken and the honest dialer's own source has its share of them: its
 * add-tp fails, saying the peer is busy and not blaming a key. */
START_TEST(test_visor_busy_error)
{
    struct json_object *o = NULL;
    char body[256];
    const char *msg;
    long st;

    attack_start(&atk, vb.stcp_port, 1, 16, 8, 0); /* 127.0.0.1 (A's own source) to 127.0.0.16 */
    th_sleep_ms(200);
    snprintf(body, sizeof(body), "{\"remote_pk\":\"%s\",\"address\":\"%s\"}", vb.pk_hex, vb.stcp);
    st = th_call(http, va.api, "POST", "/api/transports", body, NULL, &o);
    msg = json_object_get_string(json_object_object_get(json_object_object_get(o, "error"), "message"));
    printf("add-tp while its source is at its share: HTTP %ld %s\n", st, msg ? msg : "");
    ck_assert_int_eq(st, 502);
    ck_assert_msg(msg && strstr(msg, "busy") && !strstr(msg, "key"), "%s", msg ? msg : "(none)");
    json_object_put(o);
    attack_stop(&atk);
}
END_TEST

static Suite *slots_suite(void)
{
    Suite *s = suite_create("handshake_slots");
    TCase *tm = tcase_create("messaging_server"), *tv = tcase_create("visor");

    tcase_add_checked_fixture(tm, ms_setup, ms_teardown);
    tcase_set_timeout(tm, 40);
    tcase_add_test(tm, test_ms_one_source);
    tcase_add_test(tm, test_ms_many_sources);
    suite_add_tcase(s, tm);
    tcase_add_unchecked_fixture(tv, visor_setup, visor_teardown);
    tcase_add_checked_fixture(tv, NULL, attack_cleanup);
    tcase_set_timeout(tv, 60);
    tcase_add_test(tv, test_visor_one_source);
    tcase_add_test(tv, test_visor_many_sources);
    tcase_add_test(tv, test_visor_busy_error);
    suite_add_tcase(s, tv);
    return s;
}

static int ignore_sigpipe(void)
{
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

const struct th_check_main th_check_main = {
    .suite = slots_suite,
    .fork = CK_NOFORK, /* the daemons belong to this process */
    .before = ignore_sigpipe,
};
