/* bench_routing.c — routes through real visors (docs/routing.md), with the real services:
 * transport discovery, route finder (on the discovery's database), messaging discovery +
 * server, the setup node, and five visors V0-V1-V2-V3-V4 in a line (stcp between
 * neighbours only), so the route from V0 to Vh has exactly h hops.
 *
 *  1. route setup latency: an app on V0 dials Vh through V0's app socket (sw_app_dial:
 *     route finder POST /routes, setup node route_group over messaging, reserve/add_rules/
 *     group_ready on every hop, end-to-end Noise KK) until it holds a connected fd; then one
 *     byte is echoed (untimed) and the fd closed. h = 1, 2, 4;
 *  2. app-to-app throughput, V0 -> Vh one way (h = 1, 2), paced by a 4 MiB window the
 *     receiving app acknowledges per MiB (a visor drops an app that leaves 8 MiB unread,
 *     and a route has no end-to-end flow control); a pilot of 8 MiB sizes the run to
 *     about 2 s (at most 512 MiB); the clock stops when the receiving app on Vh has read
 *     every byte and its final acknowledgement is back. Plain loopback TCP (same window)
 *     beside it;
 *  3. round-trip time of 64-byte messages echoed by an app on Vh (h = 1, 2, 4) on one
 *     open route; the p50 difference gives the forwarding latency one hop adds.
 *
 * The app ends on Vh are threads of this process using the app library (visor/app/app.h).
 * Run through tests/run-bench.sh (it provides the PostgreSQL cluster). Exits 1 when a phase
 * fails. */
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
#include <unistd.h>

#define N_VISORS 5
#define ECHO_PORT 7
#define SINK_PORT 8
#define DIALS 100
#define DIAL_SECONDS 12.0
#define RTT_MSGS 5000
#define RTT_SECONDS 3.0
#define RTT_MSG 64
#define PILOT_BYTES (8ull << 20)
#define MAX_BYTES (512ull << 20)
#define TARGET_SECONDS 2.0
#define CHUNK (64 * 1024)
#define ACK_UNIT (1u << 20)
#define WINDOW (4u << 20)       /* below the visor's 8 MiB unread-by-the-app limit */
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

/* echo: returns every byte; sink: reads a u64 BE count, then that many bytes, answers 1 byte. */
static void *serve_conn(void *arg)
{
    int fd = (int)((intptr_t)arg & 0xffffff);
    bool sink = ((intptr_t)arg >> 24) & 1;
    static __thread char buf[CHUNK];

    if (sink) {
        uint8_t hdr[8];
        uint64_t want = 0, got = 0;
        if (read_full(fd, hdr, 8) == 0) {
            for (int i = 0; i < 8; i++)
                want = want << 8 | hdr[i];
            while (got < want) {
                ssize_t k = read(fd, buf, sizeof(buf));
                if (k < 0 && errno == EINTR)
                    continue;
                if (k <= 0)
                    break;
                /* one 'a' per ACK_UNIT received: the sender's window (see send_mbps) */
                for (uint64_t u = got / ACK_UNIT; u < (got + (uint64_t)k) / ACK_UNIT; u++)
                    if (write_full(fd, "a", 1))
                        break;
                got += (uint64_t)k;
            }
            /* ack, then wait for the sender to close first: a visor drops data still queued
             * for its app when the peer's CLOSE follows right behind it */
            if (got == want && write_full(fd, "k", 1) == 0)
                while (read(fd, buf, sizeof(buf)) > 0)
                    ;
        }
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
    bool sink;
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
        if (pthread_create(&th, NULL, serve_conn, (void *)(intptr_t)(fd | (l->sink ? 1 << 24 : 0)))) {
            close(fd);
            continue;
        }
        pthread_detach(th);
    }
}

static void listen_app(const struct th_visor *v, uint16_t port, bool sink)
{
    static struct app_listener ls[2 * N_VISORS];
    static size_t n_ls;
    struct sw_error err = { 0 };
    char sock[600];
    pthread_t th;

    snprintf(sock, sizeof(sock), "%s/app.sock", v->data_dir);
    ls[n_ls].sink = sink;
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

/* Sends bytes to the sink on Vh (h = 0: a loopback TCP pair) with at most WINDOW bytes not
 * yet acknowledged (the sink answers 'a' per ACK_UNIT, 'k' at the end): a route has no flow
 * control end to end, and a visor drops a connection whose app leaves 8 MiB unread, so an
 * app streaming bulk data must pace itself like this. MB/s, 0 on failure (why says). */
static double send_mbps(int hops, uint64_t bytes, double *secs, char *why)
{
    static char buf[CHUNK];
    uint8_t hdr[8];
    uint64_t sent = 0, acked = 0;
    bool done = false;
    pthread_t th;
    double t0;
    int fd;

    if (hops == 0) {
        int other;
        bu_tcp_pair(&fd, &other);
        if (pthread_create(&th, NULL, serve_conn, (void *)(intptr_t)(other | 1 << 24)))
            bu_die("cannot start a thread");
        pthread_detach(th);
    } else if (dial(hops, SINK_PORT, &fd, why)) {
        return 0;
    }
    for (int i = 0; i < 8; i++)
        hdr[i] = (uint8_t)(bytes >> (56 - 8 * i));
    errno = 0;
    t0 = (sw_mono_ns() / 1e9);
    if (write_full(fd, hdr, 8))
        goto fail;
    while (!done) {
        if (sent < bytes && sent - acked * ACK_UNIT < WINDOW) {
            size_t n = bytes - sent < CHUNK ? (size_t)(bytes - sent) : CHUNK;
            if (write_full(fd, buf, n))
                goto fail;
            sent += n;
            continue;
        }
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        char acks[256];
        ssize_t k;
        if (poll(&pfd, 1, 30000) != 1 || (k = read(fd, acks, sizeof(acks))) <= 0)
            goto fail;
        for (ssize_t i = 0; i < k; i++) {
            if (acks[i] == 'a')
                acked++;
            else if (acks[i] == 'k' && sent == bytes)
                done = true;
            else
                goto fail;
        }
    }
    *secs = (sw_mono_ns() / 1e9) - t0;
    close(fd);
    return (double)bytes / *secs / 1e6;
fail:
    snprintf(why, BU_WHY_MAX, "the transfer broke after %" PRIu64 " MiB sent, %" PRIu64 " MiB acknowledged (%s)",
             sent >> 20, (acked * ACK_UNIT) >> 20, errno ? strerror(errno) : "closed");
    close(fd);
    return 0;
}

static void throughput(int hops, const struct bu_procs *procs, const char *label)
{
    struct bu_cpu_snap *snaps = calloc(2, sizeof(*snaps));
    struct bu_cores c;
    char why[BU_WHY_MAX] = "", name[64];
    double secs = 0, pilot, mbps;
    uint64_t bytes;

    if (!snaps)
        bu_die("out of memory");
    pilot = send_mbps(hops, PILOT_BYTES, &secs, why);
    if (pilot <= 0)
        bu_die("throughput pilot over %d hops: %s", hops, why);
    bytes = (uint64_t)(pilot * 1e6 * TARGET_SECONDS);
    if (bytes > MAX_BYTES)
        bytes = MAX_BYTES;
    if (bytes < PILOT_BYTES)
        bytes = PILOT_BYTES;
    bu_cpu_snapshot(&snaps[0], procs);
    mbps = send_mbps(hops, bytes, &secs, why);
    bu_cpu_snapshot(&snaps[1], procs);
    if (mbps <= 0)
        bu_die("throughput over %d hops: %s", hops, why);
    bu_cores_between(&snaps[0], &snaps[1], procs->n, secs, &c);
    snprintf(name, sizeof(name), "%s", label);
    printf("  %-*s %6" PRIu64 " MiB %6.2f s %8.0f MB/s  ", NAME_W, name, bytes >> 20, secs, mbps);
    for (size_t i = 0; i < procs->n; i++)
        printf("%4.2f / ", c.pid[i]);
    printf("%4.2f\n", c.self);
    fflush(stdout);
    free(snaps);
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
    double t_start = (sw_mono_ns() / 1e9);

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
        listen_app(&vs[hop_counts[k]], ECHO_PORT, false);
        listen_app(&vs[hop_counts[k]], SINK_PORT, true);
    }
    printf("routes through visors in a line V0-V1-V2-V3-V4 (stcp on loopback), real route finder,\n"
           "setup node and messaging; %d CPUs; set up in %.1f s\n",
           (int)sysconf(_SC_NPROCESSORS_ONLN), (sw_mono_ns() / 1e9) - t_start);

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

    /* 2. throughput */
    printf("\napp-to-app throughput, one way V0 -> Vh (64 KiB writes, %u MiB window acknowledged per MiB;\n"
           "~%.0f s, at most %llu MiB)\n",
           WINDOW >> 20, TARGET_SECONDS, (unsigned long long)(MAX_BYTES >> 20));
    printf("  %-*s %10s %8s %13s  %s\n", NAME_W, "path", "bytes", "secs", "rate",
           "cores busy: V0 / V1 / V2 / bench");
    {
        struct bu_procs procs = { .pid = { vs[0].pid, vs[1].pid, vs[2].pid }, .n = 3 };
        throughput(1, &procs, "route, 1 hop (V0 -> V1)");
        throughput(2, &procs, "route, 2 hops (V0 -> V1 -> V2)");
        throughput(0, &procs, "plain loopback TCP");
    }
    printf("\ntotal %.1f s\n", (sw_mono_ns() / 1e9) - t_start);
    fflush(stdout);

    {
        struct th_visor *all[N_VISORS];
        for (int i = 0; i < N_VISORS; i++)
            all[i] = &vs[i];
        th_net_stop(&net, all, N_VISORS);
    }
    return 0;
}
