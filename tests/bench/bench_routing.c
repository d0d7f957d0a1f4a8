/* bench_routing.c — routes through real visors (docs/routing.md; a route group is a reliable,
 * ordered, flow-controlled byte stream end to end: visor/group_stream.c), with the real
 * services: transport discovery, route finder (on the discovery's database), messaging
 * discovery + server, the setup node, and five visors V0-V1-V2-V3-V4 in a line (stcp between
 * neighbours only), so the route from V0 to Vh has exactly h hops.
 *
 *  1. route setup latency: an app on V0 dials Vh through V0's app socket (sw_app_dial:
 *     route finder POST /routes, setup node route_group over messaging, reserve/add_rules/
 *     group_ready on every hop, end-to-end Noise KK) until it holds a connected fd; then one
 *     byte is echoed (untimed) and the fd closed. h = 1, 2, 4;
 *  2. app-to-app throughput, V0 -> Vh one way (h = 1, 2): the sender writes N bytes and
 *     shuts down its write side; no app-level window or acknowledgements, the route's own
 *     flow control (the receiving visor's VISOR_GROUP_WINDOW) paces it. The clock stops when
 *     the receiving app on Vh has read N bytes and EOF. A pilot of 8 MiB sizes the run to
 *     about 2 s (at most 512 MiB). Plain loopback TCP (same protocol) beside it. For both
 *     route runs, CPU (utime+stime from /proc/PID/stat) per MiB of the middle hop and the
 *     ends, the bytes V0 resent and the packets V1 dropped for a full queue; during the
 *     2-hop run the VmRSS of V0/V1/V2 is sampled (phase 5);
 *  3. round-trip time of 64-byte messages echoed by an app on Vh (h = 1, 2, 4) on one
 *     open route; the p50 difference gives the forwarding latency one hop adds;
 *  4. fairness through one middle hop: four transfers V0 -> V1 -> V2 at once, each its own
 *     route; three are read as fast as they come, the fourth at 1 MiB/s until the other
 *     three are done (then its reader closes). Each fast transfer's rate beside the solo
 *     2-hop rate of phase 2, and V1's hop-queue bytes (visor_route_queued_bytes sampled,
 *     _peak, visor_route_dropped_full_total from its /metrics), the bytes V0 resent
 *     (visor_route_rtx_bytes_total) and VmRSS over the run;
 *  5. memory per route: VmRSS of V1 (middle hop) and of V0/V2 (ends) before and with 200
 *     idle connections V0 -> V2 open (measured before the bulk transfers, on a quiet heap),
 *     KiB per idle connection; and the RSS growth of V0/V1/V2 during phase 2's 2-hop run.
 *
 * Phases run in the order 1, 3, 5 (idle routes), 2, 4, then 5 is printed. The app ends on
 * Vh are threads of this process using the app library (visor/app/app.h). Run through
 * tests/run-bench.sh (it provides the PostgreSQL cluster). Nothing asserts on timing; exits 1
 * when a phase fails to run. */
#include "common/http_client.h"
#include "common/json.h"
#include "common/keys.h"
#include "common/uuid.h"
#include "tests/harness/api_client.h"
#include "tests/harness/bench_util.h"
#include "tests/harness/harness.h"
#include "tests/harness/net_env.h"
#include "tests/harness/visor_env.h"
#include "visor/app/app.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define N_VISORS 5
#define ECHO_PORT 7
#define SINK_PORT 8
#define HOLD_PORT 9             /* accepted connections are kept open, unread (phase 5) */
#define DIALS 100
#define DIAL_SECONDS 12.0
#define RTT_MSGS 5000
#define RTT_SECONDS 3.0
#define RTT_MSG 64
#define PILOT_BYTES (8ull << 20)
#define MAX_BYTES (512ull << 20)
#define TARGET_SECONDS 2.0
#define CHUNK (64 * 1024)
#define ROUTE_WINDOW_MIB 4      /* VISOR_GROUP_WINDOW (visor/router.h), for the captions */
#define FAIR_FLOWS 4            /* the last one is the slow reader */
#define FAIR_SECONDS 3.0        /* the fast three together, at the solo rate */
#define FAIR_MAX_BYTES (256ull << 20)
#define SLOW_RATE (1u << 20)    /* bytes/s the slow reader takes */
#define IDLE_ROUTES 200
#define IDLE_DIAL_SECONDS 40.0
#define SAMPLE_MS 50            /* RSS sampling; /metrics every 4th sample */
#define WAIT_SECONDS 120        /* a transfer not done by then has failed */
#define NAME_W 30

static struct sw_http_client *http; /* net.http */
static struct th_visor vs[N_VISORS];
static struct th_net net = { .name = "bench-routing", .db_prefix = "bench_routing",
                             .temp_dir = "sw-bench-routing", .with_rf = true, .with_sn = true,
                             .rf_threads = "2" };
static char sock0[600];

/* One request; the status (-1 when it did not go through), the parsed reply in *out when
 * asked (NULL when not JSON). */
static long call(const char *base, const char *method, const char *target, const char *body,
                 struct json_object **out)
{
    struct sw_http_result res = { 0 };
    struct sw_error err = { 0 };
    char url[256];
    long st;

    if (out)
        *out = NULL;
    snprintf(url, sizeof(url), "%s%s", base, target);
    if (sw_http_do(http, method, url, th_api_headers(base), body, body ? strlen(body) : 0, &res, &err))
        return -1;
    st = res.status;
    if (out && sw_json_parse(res.body, res.body_len, out, NULL))
        *out = NULL;
    sw_http_result_free(&res);
    return st;
}

static double now_s(void)
{
    return sw_mono_ns() / 1e9;
}

/* ---- the app ends on Vh (threads of this process) ------------------------------------- */

static int read_full(int fd, void *p, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t k = read(fd, (char *)p + got, n - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        got += (size_t)k;
    }
    return 0;
}

static int write_full(int fd, const void *p, size_t n)
{
    size_t put = 0;
    while (put < n) {
        ssize_t k = send(fd, (const char *)p + put, n - put, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        put += (size_t)k;
    }
    return 0;
}

/* One one-way transfer as its receiving app sees it. The sender's stream is an 8-byte
 * header (the slot's index, u64 BE) and then the bytes until EOF (the sender's
 * shutdown(SHUT_WR)). */
struct xfer {
    uint32_t rate;     /* the receiver reads at most this many bytes/s (0: as fast as it can) */
    atomic_bool stop;  /* a paced receiver: stop reading and close */
    /* the receiver's, under xfer_mu */
    uint64_t got;
    int64_t end_ns;    /* when it saw EOF (or stopped) */
    bool eof, done;
};
static struct xfer xfers[FAIR_FLOWS];
static pthread_mutex_t xfer_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t xfer_cv = PTHREAD_COND_INITIALIZER;

static void xfer_reset(size_t slot, uint32_t rate)
{
    pthread_mutex_lock(&xfer_mu);
    xfers[slot].rate = rate;
    atomic_store(&xfers[slot].stop, false);
    xfers[slot].got = 0;
    xfers[slot].end_ns = 0;
    xfers[slot].eof = xfers[slot].done = false;
    pthread_mutex_unlock(&xfer_mu);
}

/* Waits until the receiver of slot is done; -1 after `seconds`. */
static int xfer_wait(size_t slot, int seconds)
{
    struct timespec dl;
    int rc = 0;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += seconds;
    pthread_mutex_lock(&xfer_mu);
    while (!xfers[slot].done && rc == 0)
        rc = pthread_cond_timedwait(&xfer_cv, &xfer_mu, &dl);
    rc = xfers[slot].done ? 0 : -1;
    pthread_mutex_unlock(&xfer_mu);
    return rc;
}

/* The receiving end of a transfer: reads to EOF (paced when the slot says so), then closes. */
static void sink_conn(int fd)
{
    static __thread char buf[CHUNK];
    uint8_t hdr[8];
    uint64_t slot = 0, got = 0;
    uint32_t rate;
    bool eof = false;
    struct xfer *x;
    int64_t t0;

    if (read_full(fd, hdr, 8))
        return;
    for (int i = 0; i < 8; i++)
        slot = slot << 8 | hdr[i];
    if (slot >= FAIR_FLOWS)
        return;
    x = &xfers[slot];
    pthread_mutex_lock(&xfer_mu);
    rate = x->rate;
    pthread_mutex_unlock(&xfer_mu);
    t0 = sw_mono_ns();
    for (;;) {
        ssize_t k;
        if (rate) { /* paced: never block in read longer than 50 ms, so stop is heard */
            struct pollfd pfd = { .fd = fd, .events = POLLIN };
            if (atomic_load(&x->stop))
                break;
            if (poll(&pfd, 1, 50) == 0)
                continue;
        }
        k = read(fd, buf, sizeof(buf));
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            eof = k == 0;
            break;
        }
        got += (uint64_t)k;
        while (rate && !atomic_load(&x->stop)) {
            int64_t due = t0 + (int64_t)((double)got / rate * 1e9), wait = due - sw_mono_ns();
            if (wait <= 0)
                break;
            th_sleep_ms(wait > 50000000 ? 50 : (int)(wait / 1000000) + 1);
        }
    }
    pthread_mutex_lock(&xfer_mu);
    x->got = got;
    x->eof = eof;
    x->end_ns = sw_mono_ns();
    x->done = true;
    pthread_cond_broadcast(&xfer_cv);
    pthread_mutex_unlock(&xfer_mu);
}

/* Phase 5's connections, held open and unread until hold_close_all. */
static int held[IDLE_ROUTES + 16];
static size_t n_held;

static size_t held_count(void)
{
    pthread_mutex_lock(&xfer_mu);
    size_t n = n_held;
    pthread_mutex_unlock(&xfer_mu);
    return n;
}

static void hold_close_all(void)
{
    pthread_mutex_lock(&xfer_mu);
    for (size_t i = 0; i < n_held; i++)
        close(held[i]);
    n_held = 0;
    pthread_mutex_unlock(&xfer_mu);
}

enum conn_kind { K_ECHO, K_SINK, K_HOLD };

/* A connection's thread: echo returns every byte; sink is sink_conn. */
static void *serve_conn(void *arg)
{
    int fd = (int)((intptr_t)arg & 0xffffff);
    enum conn_kind kind = (enum conn_kind)((intptr_t)arg >> 24);
    static __thread char buf[CHUNK];

    if (kind == K_SINK) {
        sink_conn(fd);
    } else {
        ssize_t k;
        while ((k = read(fd, buf, sizeof(buf))) > 0)
            if (write_full(fd, buf, (size_t)k))
                break;
    }
    close(fd);
    return NULL;
}

struct app_listener {
    int lfd;
    enum conn_kind kind;
};

static void *accept_main(void *arg)
{
    struct app_listener *l = arg;
    for (;;) {
        struct sw_error err = { 0 };
        struct sw_pk remote;
        uint16_t rport;
        pthread_t th;
        int fd;
        if (sw_app_accept(l->lfd, -1, &fd, &remote, &rport, &err))
            return NULL;
        if (l->kind == K_HOLD) {
            pthread_mutex_lock(&xfer_mu);
            if (n_held < sizeof(held) / sizeof(held[0]))
                held[n_held++] = fd;
            else
                close(fd);
            pthread_mutex_unlock(&xfer_mu);
            continue;
        }
        if (pthread_create(&th, NULL, serve_conn, (void *)(intptr_t)(fd | (intptr_t)l->kind << 24))) {
            close(fd);
            continue;
        }
        pthread_detach(th);
    }
}

static void listen_app(const struct th_visor *v, uint16_t port, enum conn_kind kind)
{
    static struct app_listener ls[3 * N_VISORS];
    static size_t n_ls;
    struct sw_error err = { 0 };
    char sock[600];
    pthread_t th;

    snprintf(sock, sizeof(sock), "%s/app.sock", v->data_dir);
    ls[n_ls].kind = kind;
    if (sw_app_listen(sock, port, &ls[n_ls].lfd, &err))
        bu_die("listen on %s port %u: %s", v->name, port, err.msg);
    if (pthread_create(&th, NULL, accept_main, &ls[n_ls]))
        bu_die("cannot start an accept thread");
    pthread_detach(th);
    n_ls++;
}

static int dial(int hops, uint16_t port, int *fd, char *why)
{
    struct sw_error err = { 0 };
    if (sw_app_dial(sock0, &vs[hops].pk, port, fd, &err)) {
        snprintf(why, BU_WHY_MAX, "dial V%d: %s", hops, err.msg);
        return -1;
    }
    return 0;
}

/* ---- what the visors report: /metrics and /proc ------------------------------------------ */

static double metric(const char *text, const char *series, const char *suffix);

/* GET v's /metrics (with its API token) on client c; the text (caller frees) or NULL. */
static char *visor_metrics(struct sw_http_client *c, const struct th_visor *v)
{
    struct sw_http_result res = { 0 };
    struct sw_error err = { 0 };
    char url[128], *text = NULL;

    snprintf(url, sizeof(url), "%s/metrics", v->api);
    if (sw_http_do(c, "GET", url, th_api_headers(v->api), NULL, 0, &res, &err) == 0 && res.status == 200 &&
        res.body)
        text = strndup(res.body, res.body_len);
    sw_http_result_free(&res);
    return text;
}

/* One series of v's /metrics (-1 when it cannot be read). */
static double visor_metric(const struct th_visor *v, const char *series)
{
    char *text = visor_metrics(http, v);
    double val = text ? metric(text, series, "") : -1;
    free(text);
    return val;
}

static long rss_kb(pid_t pid)
{
    long hwm, rss;
    bu_proc_mem(pid, &hwm, &rss);
    return rss;
}

/* Samples the VmRSS of three visors every SAMPLE_MS (and, when q_visor is set, its
 * visor_route_queued_bytes every fourth time) on a thread of its own until sampler_stop. */
struct sampler {
    const struct th_visor *v[3];
    const struct th_visor *q_visor;
    long rss0[3], rss_max[3];
    double q_max;
    atomic_bool stop;
    pthread_t th;
};

static void sample_once(struct sampler *s, struct sw_http_client *c)
{
    for (int i = 0; i < 3; i++) {
        long r = rss_kb(s->v[i]->pid);
        if (r > s->rss_max[i])
            s->rss_max[i] = r;
    }
    if (c && s->q_visor) {
        char *text = visor_metrics(c, s->q_visor);
        if (text) {
            double q = metric(text, "visor_route_queued_bytes", "");
            if (q > s->q_max)
                s->q_max = q;
        }
        free(text);
    }
}

static void *sampler_main(void *arg)
{
    struct sampler *s = arg;
    struct sw_http_client_opts opts = { .timeout_ms = 5000 };
    struct sw_http_client *c = s->q_visor ? sw_http_client_new(&opts) : NULL;
    for (unsigned n = 0; !atomic_load(&s->stop); n++) {
        sample_once(s, n % 4 == 0 ? c : NULL); /* the gauge itself moves on V1's 1 s tick */
        th_sleep_ms(SAMPLE_MS);
    }
    if (c)
        sw_http_client_free(c);
    return NULL;
}

static void sampler_start(struct sampler *s, const struct th_visor *a, const struct th_visor *b,
                          const struct th_visor *c, const struct th_visor *q_visor)
{
    memset(s, 0, sizeof(*s));
    s->v[0] = a, s->v[1] = b, s->v[2] = c;
    s->q_visor = q_visor;
    for (int i = 0; i < 3; i++)
        s->rss0[i] = s->rss_max[i] = rss_kb(s->v[i]->pid);
    atomic_store(&s->stop, false);
    if (pthread_create(&s->th, NULL, sampler_main, s))
        bu_die("cannot start a sampling thread");
}

static void sampler_stop(struct sampler *s)
{
    atomic_store(&s->stop, true);
    pthread_join(s->th, NULL);
    sample_once(s, NULL);
}

/* ---- 1. route setup latency ------------------------------------------------------------ */

struct route_phase {
    struct bu_phase bu; /* first: the runner's callbacks cast back */
    int hops;
};

static int no_prepare(struct bu_worker *w, char *why)
{
    return 0;
}

static int dial_request(struct bu_worker *w, size_t i, char *why)
{
    struct route_phase *ph = (struct route_phase *)w->ph;
    char c = 'x';
    int fd, rc;

    if (dial(ph->hops, ECHO_PORT, &fd, why))
        return -1;
    /* the clock stops at the connected fd (the runner times this call; the echo adds one RTT,
     * well under 1% of a setup: see the RTT table) */
    rc = write_full(fd, &c, 1) || read_full(fd, &c, 1) || c != 'x';
    close(fd);
    if (rc)
        snprintf(why, BU_WHY_MAX, "no echo on a fresh route of %d hops", ph->hops);
    return rc ? -1 : 0;
}

/* Where a setup's time goes: the setup node's own histograms (sum and count of the whole
 * setup and of each step with one visor, dial included), read from its /metrics. */
#define SN_SERIES 4
static const char *const sn_series[SN_SERIES] = {
    "sn_setup_duration_seconds", "sn_step_duration_seconds{step=\"reserve\"}",
    "sn_step_duration_seconds{step=\"add_rules\"}", "sn_step_duration_seconds{step=\"group_ready\"}",
};

struct sn_snap {
    double sum[SN_SERIES], count[SN_SERIES];
};

static double metric(const char *text, const char *series, const char *suffix)
{
    char name[128];
    const char *brace = strchr(series, '{'), *p = text;
    size_t base = brace ? (size_t)(brace - series) : strlen(series);
    snprintf(name, sizeof(name), "%.*s%s%s ", (int)base, series, suffix, brace ? brace : "");
    while ((p = strstr(p, name))) {
        if (p == text || p[-1] == '\n')
            return strtod(p + strlen(name), NULL);
        p++;
    }
    return 0;
}

static void sn_snapshot(struct sn_snap *s)
{
    struct sw_http_result res = { 0 };
    struct sw_error err = { 0 };
    char url[128];

    memset(s, 0, sizeof(*s));
    snprintf(url, sizeof(url), "%s/metrics", net.sn_base);
    if (sw_http_do(http, "GET", url, NULL, NULL, 0, &res, &err) || res.status != 200 || !res.body) {
        sw_http_result_free(&res);
        return;
    }
    for (int i = 0; i < SN_SERIES; i++) {
        s->sum[i] = metric(res.body, sn_series[i], "_sum");
        s->count[i] = metric(res.body, sn_series[i], "_count");
    }
    sw_http_result_free(&res);
}

/* p50 of POST /routes V0 -> Vh straight to the route finder (n calls). */
static double rf_p50_ms(int hops, int n)
{
    char body[400];
    double lat[64];
    if (n > 64)
        n = 64;
    snprintf(body, sizeof(body), "{\"edges\":[[\"%s\",\"%s\"]],\"opts\":{\"min_hops\":1,\"max_hops\":16,\"count\":1}}",
             vs[0].pk_hex, vs[hops].pk_hex);
    for (int i = 0; i < n; i++) {
        double t0 = (sw_mono_ns() / 1e9);
        if (call(net.rf_base, "POST", "/routes", body, NULL) != 200)
            bu_die("route finder: POST /routes V0 -> V%d failed", hops);
        lat[i] = ((sw_mono_ns() / 1e9) - t0) * 1e3;
    }
    bu_sort(lat, (size_t)n);
    return bu_percentile(lat, (size_t)n, 0.5);
}

static void print_breakdown(const struct sn_snap *a, const struct sn_snap *b, double rf_ms)
{
    double n = b->count[0] - a->count[0];
    static const char *const step[SN_SERIES] = { "", "reserve", "add_rules", "group_ready" };
    if (n <= 0)
        return;
    printf("  %*s   setup node %.2f ms/setup (mean); ", NAME_W - 2, "", (b->sum[0] - a->sum[0]) / n * 1e3);
    for (int i = 1; i < SN_SERIES; i++) {
        double c = b->count[i] - a->count[i];
        printf("%s %.2f ms x%.0f%s", step[i], c > 0 ? (b->sum[i] - a->sum[i]) / c * 1e3 : 0, c / n,
               i + 1 < SN_SERIES ? ", " : "; ");
    }
    printf("route finder %.2f ms (p50)\n", rf_ms);
    fflush(stdout);
}

/* ---- 3. round trips ------------------------------------------------------------------- */

static int rtt_prepare(struct bu_worker *w, char *why)
{
    struct route_phase *ph = (struct route_phase *)w->ph;
    int *fd = w->state;
    if (ph->hops == 0) {
        int other;
        bu_tcp_pair(fd, &other);
        pthread_t th;
        if (pthread_create(&th, NULL, serve_conn, (void *)(intptr_t)other))
            return -1;
        pthread_detach(th);
        return 0;
    }
    return dial(ph->hops, ECHO_PORT, fd, why);
}

static int rtt_request(struct bu_worker *w, size_t i, char *why)
{
    int fd = *(int *)w->state;
    char msg[RTT_MSG], back[RTT_MSG];
    memset(msg, (int)(i & 0x7f), sizeof(msg));
    if (write_full(fd, msg, sizeof(msg)) || read_full(fd, back, sizeof(back)) ||
        memcmp(msg, back, sizeof(msg)) != 0) {
        snprintf(why, BU_WHY_MAX, "echo failed");
        return -1;
    }
    return 0;
}

static void rtt_release(struct bu_worker *w)
{
    int fd = *(int *)w->state;
    if (fd > 0)
        close(fd);
}

/* ---- 2. throughput ------------------------------------------------------------------- */

/* Sends the header of slot and `bytes` bytes on fd, then shuts down its write side (the
 * receiver's EOF). 0 when all went; 1 when *stop was set and the writes failed (the caller
 * cut it short); -1 with why otherwise. *sent counts the bytes after the header. */
static int send_bytes(int fd, size_t slot, uint64_t bytes, atomic_bool *stop, uint64_t *sent, char *why)
{
    static __thread char buf[CHUNK];
    uint8_t hdr[8];

    *sent = 0;
    for (int i = 0; i < 8; i++)
        hdr[i] = (uint8_t)((uint64_t)slot >> (56 - 8 * i));
    errno = 0;
    if (write_full(fd, hdr, 8))
        goto fail;
    while (*sent < bytes) {
        size_t n = bytes - *sent < CHUNK ? (size_t)(bytes - *sent) : CHUNK;
        if (write_full(fd, buf, n))
            goto fail;
        *sent += n;
    }
    if (shutdown(fd, SHUT_WR))
        goto fail;
    return 0;
fail:
    if (stop && atomic_load(stop))
        return 1;
    snprintf(why, BU_WHY_MAX, "the transfer broke after %" PRIu64 " MiB sent (%s)", *sent >> 20,
             errno ? strerror(errno) : "closed");
    return -1;
}

/* After send_bytes: the receiver closes once it saw EOF, which comes back as our EOF (both
 * halves closed: the route group ends normally). */
static int await_eof(int fd, char *why)
{
    char c[256];
    for (;;) {
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        ssize_t k;
        if (poll(&pfd, 1, 30000) != 1) {
            snprintf(why, BU_WHY_MAX, "no EOF back from the receiver within 30 s");
            return -1;
        }
        k = read(fd, c, sizeof(c));
        if (k < 0 && errno == EINTR)
            continue;
        if (k == 0)
            return 0;
        snprintf(why, BU_WHY_MAX, "%s after the transfer", k < 0 ? strerror(errno) : "bytes came back");
        return -1;
    }
}

/* The receiver's figures of slot once it is done: 0 when it read want bytes and EOF. */
static int xfer_check(size_t slot, uint64_t want, int64_t *end_ns, char *why)
{
    pthread_mutex_lock(&xfer_mu);
    uint64_t got = xfers[slot].got;
    bool eof = xfers[slot].eof;
    *end_ns = xfers[slot].end_ns;
    pthread_mutex_unlock(&xfer_mu);
    if (got == want && eof)
        return 0;
    snprintf(why, BU_WHY_MAX, "the receiver read %" PRIu64 " of %" PRIu64 " bytes, %s", got, want,
             eof ? "then EOF" : "then an error");
    return -1;
}

struct run {
    uint64_t bytes;
    double secs, mbps;
    struct bu_cpu_snap snaps[2]; /* around the transfer (procs) */
};

/* One transfer of bytes to the sink on Vh (h = 0: a loopback TCP pair), timed from the
 * header's write to the receiver's EOF; CPU snapshots around it, and smp sampling over it
 * when given. 0, or -1 with why. */
static int transfer(int hops, uint64_t bytes, const struct bu_procs *procs, struct sampler *smp,
                    struct run *r, char *why)
{
    uint64_t sent = 0;
    int64_t t0, end = 0;
    pthread_t th;
    int fd, rc;

    xfer_reset(0, 0);
    if (hops == 0) {
        int other;
        bu_tcp_pair(&fd, &other);
        if (pthread_create(&th, NULL, serve_conn, (void *)(intptr_t)(other | (intptr_t)K_SINK << 24)))
            bu_die("cannot start a thread");
        pthread_detach(th);
    } else if (dial(hops, SINK_PORT, &fd, why)) {
        return -1;
    }
    if (smp)
        sampler_start(smp, &vs[0], &vs[1], &vs[2], NULL);
    bu_cpu_snapshot(&r->snaps[0], procs);
    t0 = sw_mono_ns();
    rc = send_bytes(fd, 0, bytes, NULL, &sent, why);
    if (rc == 0 && xfer_wait(0, WAIT_SECONDS)) {
        snprintf(why, BU_WHY_MAX, "the receiver did not see EOF within %d s", WAIT_SECONDS);
        rc = -1;
    }
    bu_cpu_snapshot(&r->snaps[1], procs);
    if (smp)
        sampler_stop(smp);
    if (rc == 0)
        rc = xfer_check(0, bytes, &end, why);
    if (rc == 0)
        rc = await_eof(fd, why);
    close(fd);
    if (rc)
        return -1;
    r->bytes = bytes;
    r->secs = (double)(end - t0) / 1e9;
    r->mbps = (double)bytes / r->secs / 1e6;
    return 0;
}

static struct sampler busy_smp; /* the 2-hop run (phase 5) */
static uint64_t busy_bytes;

/* A pilot, then a ~TARGET_SECONDS run; prints its row (beside tcp_mbps when > 0) and, over
 * a route, CPU per MiB of V0/V1/V2. Returns MB/s. */
static double throughput(int hops, const struct bu_procs *procs, const char *label, double tcp_mbps)
{
    struct run *r = calloc(1, sizeof(*r));
    char why[BU_WHY_MAX] = "";
    struct bu_cores c;
    double mbps, hz = (double)sysconf(_SC_CLK_TCK), rtx = 0, drop = 0;
    uint64_t bytes;

    if (!r)
        bu_die("out of memory");
    if (transfer(hops, PILOT_BYTES, procs, NULL, r, why))
        bu_die("throughput pilot over %d hops: %s", hops, why);
    bytes = (uint64_t)(r->mbps * 1e6 * TARGET_SECONDS) & ~((1ull << 20) - 1);
    if (bytes > MAX_BYTES)
        bytes = MAX_BYTES;
    if (bytes < PILOT_BYTES)
        bytes = PILOT_BYTES;
    if (hops > 0) {
        rtx = visor_metric(&vs[0], "visor_route_rtx_bytes_total");
        drop = visor_metric(&vs[1], "visor_route_dropped_full_total");
    }
    if (transfer(hops, bytes, procs, hops == 2 ? &busy_smp : NULL, r, why))
        bu_die("throughput over %d hops: %s", hops, why);
    if (hops > 0) {
        rtx = visor_metric(&vs[0], "visor_route_rtx_bytes_total") - rtx;
        drop = visor_metric(&vs[1], "visor_route_dropped_full_total") - drop;
    }
    if (hops == 2)
        busy_bytes = bytes;
    mbps = r->mbps;
    bu_cores_between(&r->snaps[0], &r->snaps[1], procs->n, r->secs, &c);
    printf("  %-*s %6" PRIu64 " MiB %6.2f s %8.0f MB/s  ", NAME_W, label, bytes >> 20, r->secs, mbps);
    for (size_t i = 0; i < procs->n; i++)
        printf("%4.2f / ", c.pid[i]);
    printf("%4.2f / %4.2f", c.self, c.other);
    if (tcp_mbps > 0)
        printf("   %3.0f%% of TCP", mbps / tcp_mbps * 100);
    printf("\n");
    if (hops > 0) {
        double mib = (double)bytes / (1 << 20), ms[3];
        for (int i = 0; i < 3; i++)
            ms[i] = (double)(r->snaps[1].pid[i] - r->snaps[0].pid[i]) / hz * 1e3 / mib;
        if (hops == 1)
            printf("  %-*s V0 (end) %.2f, V1 (end) %.2f ms", NAME_W, "  CPU per MiB:", ms[0], ms[1]);
        else
            printf("  %-*s V0 (end) %.2f, V1 (middle hop) %.2f, V2 (end) %.2f ms", NAME_W, "  CPU per MiB:",
                   ms[0], ms[1], ms[2]);
        printf("; V0 resent %.0f KiB, V1 dropped (full) %+.0f\n", rtx / 1024, drop);
    }
    fflush(stdout);
    free(r);
    return mbps;
}

/* ---- 4. fairness through one middle hop ------------------------------------------------ */

struct fair_flow {
    int fd;
    size_t slot;
    uint64_t bytes, sent;
    int rc;
    char why[BU_WHY_MAX];
    pthread_barrier_t *go;
};

static void *fair_sender(void *arg)
{
    struct fair_flow *f = arg;
    pthread_barrier_wait(f->go);
    f->rc = send_bytes(f->fd, f->slot, f->bytes, &xfers[f->slot].stop, &f->sent, f->why);
    if (f->rc == 0)
        f->rc = await_eof(f->fd, f->why);
    return NULL;
}

static void fairness(double solo_mbps)
{
    static struct fair_flow fl[FAIR_FLOWS];
    const size_t slow = FAIR_FLOWS - 1;
    char why[BU_WHY_MAX] = "";
    struct sampler smp;
    struct bu_procs procs = { .pid = { vs[0].pid, vs[1].pid, vs[2].pid }, .n = 3 };
    struct bu_cpu_snap *snaps = calloc(2, sizeof(*snaps));
    struct bu_cores cores;
    pthread_barrier_t go;
    pthread_t th[FAIR_FLOWS];
    double peak0, drop0, peak1, drop1, q1, rtx0, rtx1, fast_secs = 0;
    int64_t t0, end[FAIR_FLOWS] = { 0 };
    uint64_t each, slow_got;
    bool slow_broke;
    char *m;

    if (!snaps)
        bu_die("out of memory");
    each = (uint64_t)(solo_mbps * 1e6 * FAIR_SECONDS / (FAIR_FLOWS - 1)) & ~((1ull << 20) - 1);
    if (each > FAIR_MAX_BYTES)
        each = FAIR_MAX_BYTES;
    if (each < PILOT_BYTES)
        each = PILOT_BYTES;
    for (size_t i = 0; i < FAIR_FLOWS; i++) {
        xfer_reset(i, i == slow ? SLOW_RATE : 0);
        fl[i] = (struct fair_flow){ .slot = i, .bytes = i == slow ? FAIR_MAX_BYTES : each, .go = &go };
        if (dial(2, SINK_PORT, &fl[i].fd, why))
            bu_die("fairness: %s", why);
    }
    m = visor_metrics(http, &vs[1]);
    if (!m)
        bu_die("fairness: no /metrics from V1");
    peak0 = metric(m, "visor_route_queued_bytes_peak", "");
    drop0 = metric(m, "visor_route_dropped_full_total", "");
    free(m);
    rtx0 = visor_metric(&vs[0], "visor_route_rtx_bytes_total");
    if (pthread_barrier_init(&go, NULL, FAIR_FLOWS + 1))
        bu_die("cannot make a barrier");
    for (size_t i = 0; i < FAIR_FLOWS; i++)
        if (pthread_create(&th[i], NULL, fair_sender, &fl[i]))
            bu_die("cannot start a sender thread");
    sampler_start(&smp, &vs[0], &vs[1], &vs[2], &vs[1]);
    bu_cpu_snapshot(&snaps[0], &procs);
    pthread_barrier_wait(&go);
    t0 = sw_mono_ns();
    for (size_t i = 0; i < slow; i++)
        if (xfer_wait(i, WAIT_SECONDS))
            bu_die("fairness: transfer %zu not done within %d s", i + 1, WAIT_SECONDS);
    /* the others are done: the slow reader stops and closes; its sender is cut short */
    pthread_mutex_lock(&xfer_mu);
    slow_broke = xfers[slow].done; /* its reader saw EOF or an error before being told to stop */
    pthread_mutex_unlock(&xfer_mu);
    atomic_store(&xfers[slow].stop, true);
    shutdown(fl[slow].fd, SHUT_RDWR);
    if (xfer_wait(slow, 10))
        bu_die("fairness: the slow reader did not stop");
    for (size_t i = 0; i < FAIR_FLOWS; i++)
        pthread_join(th[i], NULL);
    bu_cpu_snapshot(&snaps[1], &procs);
    sampler_stop(&smp);
    bu_cores_between(&snaps[0], &snaps[1], procs.n, (double)(sw_mono_ns() - t0) / 1e9, &cores);
    free(snaps);
    pthread_barrier_destroy(&go);
    m = visor_metrics(http, &vs[1]);
    if (!m)
        bu_die("fairness: no /metrics from V1");
    peak1 = metric(m, "visor_route_queued_bytes_peak", "");
    drop1 = metric(m, "visor_route_dropped_full_total", "");
    q1 = metric(m, "visor_route_queued_bytes", "");
    free(m);
    rtx1 = visor_metric(&vs[0], "visor_route_rtx_bytes_total");
    for (size_t i = 0; i < FAIR_FLOWS; i++) {
        close(fl[i].fd);
        if (i == slow)
            continue;
        if (fl[i].rc)
            bu_die("fairness: transfer %zu: %s", i + 1, fl[i].why);
        if (xfer_check(i, fl[i].bytes, &end[i], why))
            bu_die("fairness: transfer %zu: %s", i + 1, why);
        if ((double)(end[i] - t0) / 1e9 > fast_secs)
            fast_secs = (double)(end[i] - t0) / 1e9;
    }
    pthread_mutex_lock(&xfer_mu);
    slow_got = xfers[slow].got;
    end[slow] = xfers[slow].end_ns;
    pthread_mutex_unlock(&xfer_mu);

    for (size_t i = 0; i < slow; i++) {
        char name[48];
        double secs = (double)(end[i] - t0) / 1e9, mbps = (double)each / secs / 1e6;
        snprintf(name, sizeof(name), "route %zu (read at full speed)", i + 1);
        printf("  %-*s %6" PRIu64 " MiB %6.2f s %8.0f MB/s   %3.0f%% of solo 2-hop\n", NAME_W, name, each >> 20,
               secs, mbps, mbps / solo_mbps * 100);
    }
    {
        double mbps = (double)(each * slow) / fast_secs / 1e6;
        printf("  %-*s %6" PRIu64 " MiB %6.2f s %8.0f MB/s   %3.0f%% of solo 2-hop (%.0f MB/s, phase 2)\n", NAME_W,
               "the three together", (each * slow) >> 20, fast_secs, mbps, mbps / solo_mbps * 100, solo_mbps);
    }
    {
        double secs = (double)(end[slow] - t0) / 1e9;
        printf("  %-*s %6.1f MiB %6.2f s %8.2f MB/s   %s\n", NAME_W, "route 4 (reader at 1 MiB/s)",
               (double)slow_got / (1 << 20), secs, (double)slow_got / secs / 1e6,
               slow_broke ? "its route ended before the others were done" : "read, then closed by its reader");
    }
    printf("  %-*s queued bytes up to %.0f KiB (gauge read every %d ms; V1 refreshes it each second),\n"
           "  %-*s %.0f KiB at the end;"
           " _peak since start %.0f -> %.0f KiB;\n"
           "  %-*s dropped (full) %+.0f packets; V0 resent %.0f KiB\n",
           NAME_W, "V1 hop queues:", smp.q_max / 1024, SAMPLE_MS * 4, NAME_W, "", q1 / 1024, peak0 / 1024,
           peak1 / 1024, NAME_W, "", drop1 - drop0, (rtx1 - rtx0) / 1024);
    printf("  %-*s V1 (middle hop) %ld -> max %ld KiB (%+ld); V0 %ld -> %ld (%+ld), V2 %ld -> %ld (%+ld)\n",
           NAME_W, "VmRSS over the run:", smp.rss0[1], smp.rss_max[1], smp.rss_max[1] - smp.rss0[1], smp.rss0[0],
           smp.rss_max[0], smp.rss_max[0] - smp.rss0[0], smp.rss0[2], smp.rss_max[2], smp.rss_max[2] - smp.rss0[2]);
    printf("  %-*s V0 %.2f / V1 %.2f / V2 %.2f / bench %.2f / other %.2f\n", NAME_W, "cores busy over the run:", cores.pid[0],
           cores.pid[1], cores.pid[2], cores.self, cores.other);
    fflush(stdout);
}

/* ---- 5. memory per route ---------------------------------------------------------------- */

static struct {
    size_t n;
    double secs;
    long rss0[3], rss1[3];          /* V0, V1, V2 */
    double rules0, rules1, rules_after; /* V1's rule table */
    double groups0[3], groups1[3];  /* route group ends on V0 / - / V2 */
} idle;

/* IDLE_ROUTES connections V0 -> V2 (held open and unread on V2), RSS with and without them;
 * then they are closed and V1's rules drain. */
static void idle_routes(void)
{
    static int fds[IDLE_ROUTES];
    char why[BU_WHY_MAX] = "";
    double t0;

    idle.rules0 = visor_metric(&vs[1], "visor_route_rules");
    idle.groups0[0] = visor_metric(&vs[0], "visor_route_groups");
    idle.groups0[2] = visor_metric(&vs[2], "visor_route_groups");
    for (int i = 0; i < 3; i++)
        idle.rss0[i] = rss_kb(vs[i].pid);
    t0 = now_s();
    for (idle.n = 0; idle.n < IDLE_ROUTES && now_s() - t0 < IDLE_DIAL_SECONDS; idle.n++)
        if (dial(2, HOLD_PORT, &fds[idle.n], why))
            bu_die("idle routes: %s (after %zu)", why, idle.n);
    idle.secs = now_s() - t0;
    for (int i = 0; i < 50 && held_count() < idle.n; i++)
        th_sleep_ms(100);
    th_sleep_ms(500); /* let the last handshakes' allocations settle */
    for (int i = 0; i < 3; i++)
        idle.rss1[i] = rss_kb(vs[i].pid);
    idle.rules1 = visor_metric(&vs[1], "visor_route_rules");
    idle.groups1[0] = visor_metric(&vs[0], "visor_route_groups");
    idle.groups1[2] = visor_metric(&vs[2], "visor_route_groups");
    for (size_t i = 0; i < idle.n; i++)
        close(fds[i]);
    hold_close_all();
    for (int i = 0; i < 100; i++) { /* CLOSE packets take the rules away along the path */
        idle.rules_after = visor_metric(&vs[1], "visor_route_rules");
        if (idle.rules_after <= idle.rules0)
            break;
        th_sleep_ms(100);
    }
}

static void print_memory(void)
{
    static const char *const who[3] = { "V0 (end)", "V1 (middle hop)", "V2 (end)" };
    printf("\nmemory per route: VmRSS (/proc/PID/status) before and with %zu idle connections V0 -> V1 -> V2\n"
           "(each a forward and a reverse route: 2 rules on V1, a route group end on V0 and V2;\n"
           "opened in %.1f s, before the bulk transfers)\n",
           idle.n, idle.secs);
    printf("  %-*s %12s %12s %10s  %s\n", NAME_W, "visor", "before", "with them", "growth", "per idle connection");
    for (int i = 0; i < 3; i++) {
        char name[64];
        long d = idle.rss1[i] - idle.rss0[i];
        if (i == 1)
            snprintf(name, sizeof(name), "%s, %.0f -> %.0f rules", who[i], idle.rules0, idle.rules1);
        else
            snprintf(name, sizeof(name), "%s, %.0f -> %.0f groups", who[i], idle.groups0[i], idle.groups1[i]);
        printf("  %-*s %8ld KiB %8ld KiB %+6ld KiB  %.2f KiB\n", NAME_W, name, idle.rss0[i], idle.rss1[i], d,
               idle.n ? (double)d / (double)idle.n : 0);
    }
    printf("  %-*s %.0f rules on V1 once they closed\n", NAME_W, "", idle.rules_after);
    printf("\n  one busy 2-hop transfer (phase 2, %" PRIu64 " MiB), VmRSS sampled every %d ms:\n", busy_bytes >> 20,
           SAMPLE_MS);
    printf("  %-*s %12s %12s %10s\n", NAME_W, "visor", "before", "max during", "growth");
    for (int i = 0; i < 3; i++)
        printf("  %-*s %8ld KiB %8ld KiB %+6ld KiB\n", NAME_W, who[i], busy_smp.rss0[i], busy_smp.rss_max[i],
               busy_smp.rss_max[i] - busy_smp.rss0[i]);
    fflush(stdout);
}

/* ---- main ---------------------------------------------------------------------------- */

static void wait_route(int hops)
{
    char body[400];
    long st = 0;
    snprintf(body, sizeof(body), "{\"edges\":[[\"%s\",\"%s\"]],\"opts\":{\"min_hops\":1,\"max_hops\":8,\"count\":1}}",
             vs[0].pk_hex, vs[hops].pk_hex);
    for (int i = 0; i < 150 && st != 200; i++) {
        st = call(net.rf_base, "POST", "/routes", body, NULL);
        if (st != 200)
            th_sleep_ms(200);
    }
    if (st != 200)
        bu_die("the route finder never found V0 -> V%d (HTTP %ld)", hops, st);
}

static void run_phase(struct route_phase *ph, const struct bu_procs *procs)
{
    struct bu_result res;
    ph->bu.procs = procs;
    bu_run_phase(&ph->bu, &res);
    bu_print_result(&res, NAME_W, procs->n);
    if (res.errors)
        bu_die("phase %s: %zu errors, first: %s", res.name, res.errors, res.first_error);
}

int main(void)
{
    char name[32];
    const int hop_counts[] = { 1, 2, 4 };
    double t_start = now_s(), t_phase, solo2;

    sw_crypto_init();
    sw_http_global_init();
    bu_raise_fd_limit();
    if (!th_net_start(&net))
        bu_die("the discoveries, route finder, messaging server or setup node did not start");
    http = net.http;
    const char *extra[] = { "--log-level", getenv("BENCH_LOG") ? getenv("BENCH_LOG") : "warn", NULL };
    for (int i = 0; i < N_VISORS; i++) {
        snprintf(name, sizeof(name), "bench-rt-v%d", i);
        if (th_net_visor_gen(&net, &vs[i], name, NULL, extra) || th_visor_start(&vs[i]))
            bu_die("visor V%d did not start", i);
    }
    for (int i = 0; i < N_VISORS; i++)
        if (!th_net_wait_ready(&net, &vs[i], 15000))
            bu_die("visor V%d has no messaging session", i);
    for (int i = 0; i + 1 < N_VISORS; i++)
        if (th_net_add_stcp(&net, &vs[i], &vs[i + 1], NULL) != 201)
            bu_die("add-tp %s -> %s failed", vs[i].name, vs[i + 1].name);
    wait_route(N_VISORS - 1);
    snprintf(sock0, sizeof(sock0), "%s/app.sock", vs[0].data_dir);
    for (size_t k = 0; k < sizeof(hop_counts) / sizeof(hop_counts[0]); k++) {
        listen_app(&vs[hop_counts[k]], ECHO_PORT, K_ECHO);
        listen_app(&vs[hop_counts[k]], SINK_PORT, K_SINK);
    }
    listen_app(&vs[2], HOLD_PORT, K_HOLD);
    printf("routes through visors in a line V0-V1-V2-V3-V4 (stcp on loopback), real route finder,\n"
           "setup node and messaging; %d CPUs; set up in %.1f s\n",
           (int)sysconf(_SC_NPROCESSORS_ONLN), now_s() - t_start);

    /* 1. route setup */
    printf("\nroute setup: app on V0 dials Vh until it holds a connected fd (route finder +\n"
           "setup node + rules on every hop + Noise KK), one dial at a time\n");
    bu_print_header(NAME_W, "dials", "dials/s", "cores busy: V0 / Vh / sn / rf / pg / bench / other", 0);
    for (size_t k = 0; k < sizeof(hop_counts) / sizeof(hop_counts[0]); k++) {
        int h = hop_counts[k];
        char pname[48];
        struct bu_procs procs = { .pid = { vs[0].pid, vs[h].pid, net.sn_pid, net.rf_pid }, .n = 4,
                                  .postmaster = bu_postmaster_pid() };
        snprintf(pname, sizeof(pname), "setup, %d hop%s", h, h > 1 ? "s" : "");
        struct route_phase ph = { .bu = { .name = pname, .threads = 1, .max_requests = DIALS,
                                          .max_seconds = DIAL_SECONDS, .prepare = no_prepare,
                                          .request = dial_request },
                                  .hops = h };
        struct sn_snap before, after;
        double rf_ms = rf_p50_ms(h, 20);
        sn_snapshot(&before);
        run_phase(&ph, &procs);
        sn_snapshot(&after);
        print_breakdown(&before, &after, rf_ms);
    }

    /* 3. round trips (before the bulk transfers, on quiet transports) */
    printf("\nround trip of %d-byte messages echoed by an app on Vh, one open route\n", RTT_MSG);
    bu_print_header(NAME_W, "msgs", "msgs/s", "cores busy: V0 / V1 / V2 / Vh / pg / bench / other", 0);
    double p50[5] = { 0 };
    for (int k = -1; k < 3; k++) {
        int h = k < 0 ? 0 : hop_counts[k];
        char pname[48];
        struct bu_procs procs = { .pid = { vs[0].pid, vs[1].pid, vs[2].pid, vs[h].pid }, .n = 4,
                                  .postmaster = bu_postmaster_pid() };
        struct bu_result res;
        if (h == 0)
            snprintf(pname, sizeof(pname), "plain loopback TCP");
        else
            snprintf(pname, sizeof(pname), "RTT, %d hop%s", h, h > 1 ? "s" : "");
        struct route_phase ph = { .bu = { .name = pname, .threads = 1, .max_requests = RTT_MSGS,
                                          .max_seconds = RTT_SECONDS, .state_size = sizeof(int),
                                          .prepare = rtt_prepare, .request = rtt_request,
                                          .release = rtt_release, .procs = &procs },
                                  .hops = h };
        bu_run_phase(&ph.bu, &res);
        bu_print_result(&res, NAME_W, procs.n);
        if (res.errors)
            bu_die("phase %s: %zu errors, first: %s", res.name, res.errors, res.first_error);
        p50[h] = res.p50_ms;
    }
    printf("  forwarding latency one hop adds (p50 RTT): 1->2 hops %+.3f ms, 1->4 hops %+.3f ms/hop\n",
           p50[2] - p50[1], (p50[4] - p50[1]) / 3);
    fflush(stdout);

    /* 5 (measured now, printed last). idle routes, on a heap no bulk transfer has grown yet */
    t_phase = now_s();
    idle_routes();
    printf("\n(idle routes for the memory figures: %zu opened and closed in %.1f s)\n", idle.n, now_s() - t_phase);

    /* 2. throughput */
    t_phase = now_s();
    printf("\napp-to-app throughput, one way V0 -> Vh: 64 KiB writes, then shutdown(SHUT_WR); no app\n"
           "window, the route's flow control (%d MiB window) paces the sender; timed until the\n"
           "receiving app read every byte and EOF (~%.0f s, at most %llu MiB)\n",
           ROUTE_WINDOW_MIB, TARGET_SECONDS, (unsigned long long)(MAX_BYTES >> 20));
    printf("  %-*s %10s %8s %13s  %s\n", NAME_W, "path", "bytes", "secs", "rate",
           "cores busy: V0 / V1 / V2 / bench / other");
    {
        struct bu_procs procs = { .pid = { vs[0].pid, vs[1].pid, vs[2].pid }, .n = 3 };
        double tcp = throughput(0, &procs, "plain loopback TCP", 0);
        throughput(1, &procs, "route, 1 hop (V0 -> V1)", tcp);
        solo2 = throughput(2, &procs, "route, 2 hops (V0 -> V1 -> V2)", tcp);
    }
    printf("  (%.1f s)\n", now_s() - t_phase);

    /* 4. fairness */
    t_phase = now_s();
    printf("\nfairness through one middle hop: %d routes V0 -> V1 -> V2 at once, each its own connection\n"
           "(64 KiB writes, timed to the receiver's EOF); %d read at full speed, one at %u MiB/s until\n"
           "the others are done, then its reader closes\n",
           FAIR_FLOWS, FAIR_FLOWS - 1, SLOW_RATE >> 20);
    printf("  %-*s %10s %8s %13s\n", NAME_W, "transfer", "bytes", "secs", "rate");
    fairness(solo2);
    printf("  (%.1f s)\n", now_s() - t_phase);

    /* 5. memory */
    print_memory();

    printf("\ntotal %.1f s\n", now_s() - t_start);
    fflush(stdout);

    {
        struct th_visor *all[N_VISORS];
        for (int i = 0; i < N_VISORS; i++)
            all[i] = &vs[i];
        th_net_stop(&net, all, N_VISORS);
    }
    return 0;
}
