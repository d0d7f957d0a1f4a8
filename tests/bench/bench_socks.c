/* bench_socks.c — the SOCKS5 proxy apps (apps/socksproxy/README.md) under load, beside a
 * direct download, in one run. Real services (transport discovery, route finder, messaging
 * discovery + server, setup node) and three visors A-B-C (stcp A-B and B-C only).
 * socksproxy runs on B and on C (exits, port 3, `-allow 127.0.0.1/32` for the loopback
 * server: the exit policy refuses loopback by default); A runs two socksproxy-client instances
 * (app ports 3 and 4), one with -srv B (1 hop) and one with -srv C (2 hops, A-B-C), on two
 * local SOCKS ports. All apps are launched by their visors from config (auto_start).
 *
 * An HTTP server in this process (libmicrohttpd, thread per connection) on 127.0.0.1 serves
 * a generated file from memory (256 MiB; SW_BENCH_SOCKS_MIB overrides), quarters of it and
 * a 1 KiB object. libcurl in this process fetches them directly and through each SOCKS
 * listener (socks5h://):
 *
 *  1. bulk download, per path: one checked run (SHA-256 of the stream against the file's),
 *     then REPS timed runs; every run's bytes are also compared with the file as they
 *     arrive (memcmp) and its size checked. MiB/s median and best, time to first byte, and
 *     the CPU (from /proc/PID/stat) each visor, the path's apps and this process spent
 *     per MiB over the timed runs;
 *  2. 4 downloads at once (a quarter of the file each) through the 2-hop path;
 *  3. 1 KiB GETs, 100 per path: on a new connection each time (SOCKS handshake, route
 *     setup through the route finder and setup node, the exit's connect, HTTP), and on one
 *     kept-alive connection (a round trip over the route).
 *
 * No timed assertions; exits 1 when a transfer fails or its bytes are wrong. Run through
 * tests/run-bench.sh (it provides the PostgreSQL cluster). Every process is stopped by PID
 * (the visors, which stop their apps; apps still alive after that are killed by PID). */
#include "common/http_client.h"
#include "common/json.h"
#include "common/keys.h"
#include "common/uuid.h"
#include "tests/harness/bench_util.h"
#include "tests/harness/harness.h"
#include "tests/harness/net_env.h"
#include "tests/harness/visor_env.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define DEFAULT_MIB 256
#define REPS 3
#define N_PAR 4
#define SMALL_SIZE 1024
#define SMALL_REQS 100
#define SMALL_SECONDS 60.0
#define NAME_W 30

enum { P_DIRECT, P_HOP1, P_HOP2, N_PATHS };
static const char *const path_name[N_PATHS] = { "direct (no proxy)", "SOCKS, 1 hop (A-B)",
                                                "SOCKS, 2 hops (A-B-C)" };

static struct th_visor va, vb, vc;
static struct th_net net = { .name = "bench-socks", .db_prefix = "bench_socks",
                             .temp_dir = "sw-bench-socks", .with_rf = true, .with_sn = true,
                             .rf_threads = "2" };
static struct sw_http_client *http; /* net.http */
static struct MHD_Daemon *mhd;
static uint8_t *big;
static size_t big_size;
static uint8_t big_hash[32];
static uint16_t http_port, socks_port[N_PATHS];
static char proxy_url[N_PATHS][64]; /* "" for direct */
/* the apps, found as children of their visors */
static pid_t pid_cli[N_PATHS], pid_px_b, pid_px_c;

/* ---- the HTTP server ---------------------------------------------------------------------- */

static void gen_big(void)
{
    uint64_t x = 0x9e3779b97f4a7c15ull;
    if (!(big = malloc(big_size)))
        bu_die("out of memory for %zu bytes", big_size);
    for (size_t i = 0; i < big_size; i += 8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        memcpy(big + i, &x, big_size - i < 8 ? big_size - i : 8);
    }
    crypto_hash_sha256(big_hash, big, big_size);
}

static enum MHD_Result serve_http(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **state)
{
    static int first;
    struct MHD_Response *r;
    enum MHD_Result ret;
    unsigned n;

    if (strcmp(method, "GET") != 0)
        return MHD_NO;
    if (!*state) { /* the headers; answer on the next call */
        *state = &first;
        return MHD_YES;
    }
    if (strcmp(url, "/big") == 0)
        r = MHD_create_response_from_buffer(big_size, big, MHD_RESPMEM_PERSISTENT);
    else if (strcmp(url, "/small") == 0)
        r = MHD_create_response_from_buffer(SMALL_SIZE, big, MHD_RESPMEM_PERSISTENT);
    else if (sscanf(url, "/part/%u", &n) == 1 && n < N_PAR)
        r = MHD_create_response_from_buffer(big_size / N_PAR, big + n * (big_size / N_PAR),
                                            MHD_RESPMEM_PERSISTENT);
    else
        return MHD_queue_response(conn, 404,
                                  MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT));
    ret = MHD_queue_response(conn, 200, r);
    MHD_destroy_response(r);
    return ret;
}

static void start_http(void)
{
    struct sockaddr_in sa = { .sin_family = AF_INET };
    http_port = th_free_port();
    sa.sin_port = htons(http_port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, http_port,
                           NULL, NULL, serve_http, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                           MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120, MHD_OPTION_END);
    if (!mhd)
        bu_die("the HTTP server did not start on 127.0.0.1:%u", http_port);
}

/* ---- CPU of processes (/proc/PID/stat) ---------------------------------------------------- */

/* utime+stime of pid in ticks (0 when gone); *ppid and comm (16 bytes) when asked. */
static uint64_t proc_ticks(pid_t pid, pid_t *ppid, char *comm)
{
    char path[64], buf[1024], *p, *e;
    unsigned long long ut = 0, st = 0;
    int pp = 0;
    size_t n;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    if (!(f = fopen(path, "r")))
        return 0;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    if (!(p = strchr(buf, '(')) || !(e = strrchr(buf, ')')))
        return 0;
    if (comm)
        snprintf(comm, 16, "%.*s", (int)(e - p - 1 < 15 ? e - p - 1 : 15), p + 1);
    /* after ")": state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime stime */
    if (sscanf(e + 2, "%*c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &pp, &ut, &st) != 3)
        return 0;
    if (ppid)
        *ppid = pp;
    return ut + st;
}

static bool cmdline_has(pid_t pid, const char *needle)
{
    char path[64], buf[4096];
    size_t n;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
    if (!(f = fopen(path, "r")))
        return false;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    for (size_t i = 0; i < n; i++)
        if (!buf[i])
            buf[i] = ' ';
    buf[n] = '\0';
    return strstr(buf, needle) != NULL;
}

/* The child of parent named comm (whose command line holds needle, when not NULL); -1. */
static pid_t find_child(pid_t parent, const char *comm, const char *needle)
{
    DIR *d = opendir("/proc");
    struct dirent *de;
    pid_t found = -1;

    if (!d)
        return -1;
    while (found < 0 && (de = readdir(d))) {
        char c[16] = "";
        pid_t pid = (pid_t)atoi(de->d_name), pp = 0;
        if (pid <= 0)
            continue;
        proc_ticks(pid, &pp, c);
        if (pp == parent && strcmp(c, comm) == 0 && (!needle || cmdline_has(pid, needle)))
            found = pid;
    }
    closedir(d);
    return found;
}

/* Busy ticks of all CPUs together (/proc/stat: all but idle and iowait). */
static uint64_t machine_ticks(void)
{
    unsigned long long v[8] = { 0 };
    FILE *f = fopen("/proc/stat", "r");
    int n = f ? fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4],
                       &v[5], &v[6], &v[7])
              : 0;
    if (f)
        fclose(f);
    if (n < 5)
        return 0;
    return v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
}

enum { C_VA, C_VB, C_VC, C_CLI, C_PXB, C_PXC, C_SELF, C_MACHINE, N_CPU };
static const char *const cpu_label = "CPU ms/MiB: vA / vB / vC / client / proxy B / proxy C / bench";
static const char *const cores_label = "cores: these / machine";

static void cpu_snap(uint64_t t[N_CPU], int path)
{
    t[C_VA] = proc_ticks(va.pid, NULL, NULL);
    t[C_VB] = proc_ticks(vb.pid, NULL, NULL);
    t[C_VC] = proc_ticks(vc.pid, NULL, NULL);
    t[C_CLI] = path == P_DIRECT ? 0 : proc_ticks(pid_cli[path], NULL, NULL);
    t[C_PXB] = proc_ticks(pid_px_b, NULL, NULL);
    t[C_PXC] = proc_ticks(pid_px_c, NULL, NULL);
    t[C_SELF] = proc_ticks(getpid(), NULL, NULL);
    t[C_MACHINE] = machine_ticks();
}

/* The per-process columns, then how many cores the listed processes and the whole machine
 * kept busy over the secs. */
static void print_cpu_per_mib(const uint64_t a[N_CPU], const uint64_t b[N_CPU], double mib, double secs)
{
    double ms_per_tick = 1000.0 / (double)sysconf(_SC_CLK_TCK), ours = 0;
    for (int i = 0; i < C_MACHINE; i++) {
        double ms = (double)(b[i] - a[i]) * ms_per_tick;
        ours += ms;
        printf("%5.2f%s", mib > 0 ? ms / mib : 0.0, i + 1 < C_MACHINE ? " / " : "");
    }
    printf("  %4.2f / %4.2f", ours / 1e3 / secs, (double)(b[C_MACHINE] - a[C_MACHINE]) * ms_per_tick / 1e3 / secs);
}

/* ---- downloads with libcurl ---------------------------------------------------------------- */

struct dl {
    const uint8_t *want;
    size_t want_len, got;
    bool bad, hash;
    crypto_hash_sha256_state st;
};

static size_t on_data(char *p, size_t size, size_t nmemb, void *ud)
{
    struct dl *d = ud;
    size_t n = size * nmemb;
    if (d->got + n > d->want_len || memcmp(d->want + d->got, p, n) != 0)
        d->bad = true;
    if (d->hash)
        crypto_hash_sha256_update(&d->st, (const unsigned char *)p, n);
    d->got += n;
    return n;
}

static CURL *curl_new(int path)
{
    CURL *c = curl_easy_init();
    if (!c)
        bu_die("curl_easy_init failed");
    curl_easy_setopt(c, CURLOPT_PROXY, proxy_url[path]); /* "": no proxy, not even from the environment */
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 180L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 60L);
    curl_easy_setopt(c, CURLOPT_BUFFERSIZE, 256L << 10);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    return c;
}

/* GET target with c into a check of want[0..want_len); 0 on a complete, correct body. */
static int fetch(CURL *c, const char *target, const uint8_t *want, size_t want_len, bool hash,
                 double *secs, double *ttfb_ms, char *why)
{
    char url[128], errbuf[CURL_ERROR_SIZE] = "";
    struct dl d = { .want = want, .want_len = want_len, .hash = hash };
    curl_off_t total_us = 0, first_us = 0;
    long status = 0;
    CURLcode rc;
    uint8_t h[32];

    if (hash)
        crypto_hash_sha256_init(&d.st);
    snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", http_port, target);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &d);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    rc = curl_easy_perform(c);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, NULL);
    if (rc != CURLE_OK) {
        snprintf(why, BU_WHY_MAX, "GET %s: %s (%s) after %zu bytes", target, curl_easy_strerror(rc), errbuf, d.got);
        return -1;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(c, CURLINFO_TOTAL_TIME_T, &total_us);
    curl_easy_getinfo(c, CURLINFO_STARTTRANSFER_TIME_T, &first_us);
    if (status != 200 || d.bad || d.got != want_len) {
        snprintf(why, BU_WHY_MAX, "GET %s: HTTP %ld, %zu bytes (want %zu)%s", target, status, d.got, want_len,
                 d.bad ? ", content differs" : "");
        return -1;
    }
    if (hash) {
        crypto_hash_sha256_final(&d.st, h);
        if (memcmp(h, big_hash, 32) != 0) {
            snprintf(why, BU_WHY_MAX, "GET %s: SHA-256 differs", target);
            return -1;
        }
    }
    if (secs)
        *secs = (double)total_us / 1e6;
    if (ttfb_ms)
        *ttfb_ms = (double)first_us / 1e3;
    return 0;
}

/* ---- 1. bulk downloads ---------------------------------------------------------------------- */

static void bulk(int path)
{
    double rate[REPS], ttfb[REPS], secs, mib = (double)big_size / (1 << 20), t0;
    uint64_t a[N_CPU], b[N_CPU];
    char why[BU_WHY_MAX];
    CURL *c;

    /* the checked run: SHA-256 of the whole stream (untimed) */
    c = curl_new(path);
    if (fetch(c, "/big", big, big_size, true, NULL, NULL, why))
        bu_die("%s, checked run: %s", path_name[path], why);
    curl_easy_cleanup(c);
    cpu_snap(a, path);
    t0 = (sw_mono_ns() / 1e9);
    for (int r = 0; r < REPS; r++) {
        c = curl_new(path); /* a new connection (and, through SOCKS, a new route) each time */
        if (fetch(c, "/big", big, big_size, false, &secs, &ttfb[r], why))
            bu_die("%s, run %d: %s", path_name[path], r + 1, why);
        curl_easy_cleanup(c);
        rate[r] = mib / secs;
    }
    secs = (sw_mono_ns() / 1e9) - t0;
    cpu_snap(b, path);
    bu_sort(rate, REPS);
    bu_sort(ttfb, REPS);
    printf("  %-*s %5.0f %4d %8.1f %8.1f %8.2f %7.2f  ", NAME_W, path_name[path], mib, REPS,
           bu_percentile(rate, REPS, 0.5), rate[REPS - 1], bu_percentile(ttfb, REPS, 0.5), secs);
    print_cpu_per_mib(a, b, mib * REPS, secs);
    printf("\n");
    fflush(stdout);
}

/* ---- 2. parallel downloads ------------------------------------------------------------------ */

struct par_job {
    int path, n, rc;
    double secs;
    char why[BU_WHY_MAX];
};

static void *par_main(void *arg)
{
    struct par_job *j = arg;
    char target[32];
    size_t part = big_size / N_PAR;
    CURL *c = curl_new(j->path);
    snprintf(target, sizeof(target), "/part/%d", j->n);
    j->rc = fetch(c, target, big + (size_t)j->n * part, part, false, &j->secs, NULL, j->why);
    curl_easy_cleanup(c);
    return NULL;
}

static void parallel(int path)
{
    struct par_job jobs[N_PAR];
    pthread_t th[N_PAR];
    uint64_t a[N_CPU], b[N_CPU];
    double t0, secs, mib = (double)(big_size / N_PAR * N_PAR) / (1 << 20), slow = 0, fast = 1e9;
    char name[64];

    cpu_snap(a, path);
    t0 = (sw_mono_ns() / 1e9);
    for (int i = 0; i < N_PAR; i++) {
        jobs[i] = (struct par_job){ .path = path, .n = i };
        if (pthread_create(&th[i], NULL, par_main, &jobs[i]))
            bu_die("cannot start a thread");
    }
    for (int i = 0; i < N_PAR; i++)
        pthread_join(th[i], NULL);
    secs = (sw_mono_ns() / 1e9) - t0;
    cpu_snap(b, path);
    for (int i = 0; i < N_PAR; i++) {
        if (jobs[i].rc)
            bu_die("%s, parallel download %d: %s", path_name[path], i, jobs[i].why);
        slow = jobs[i].secs > slow ? jobs[i].secs : slow;
        fast = jobs[i].secs < fast ? jobs[i].secs : fast;
    }
    snprintf(name, sizeof(name), "%d at once, %s", N_PAR, path == P_HOP2 ? "2 hops" : path == P_HOP1 ? "1 hop" : "direct");
    printf("  %-*s %5.0f %4d %8.1f %8s %8s %7.2f  ", NAME_W, name, mib, N_PAR, mib / secs, "", "", secs);
    print_cpu_per_mib(a, b, mib, secs);
    printf("\n    (aggregate MiB/s over the wall time; each of the %d took %.1f..%.1f s)\n", N_PAR, fast, slow);
    fflush(stdout);
}

/* ---- 3. small requests ---------------------------------------------------------------------- */

struct small_phase {
    struct bu_phase bu; /* first: the runner's callbacks cast back */
    int path;
    bool fresh; /* a new connection per request */
};

static int small_prepare(struct bu_worker *w, char *why)
{
    struct small_phase *ph = (struct small_phase *)w->ph;
    CURL **c = w->state;
    *c = curl_new(ph->path);
    if (ph->fresh) {
        curl_easy_setopt(*c, CURLOPT_FRESH_CONNECT, 1L);
        curl_easy_setopt(*c, CURLOPT_FORBID_REUSE, 1L);
        return 0;
    }
    return fetch(*c, "/small", big, SMALL_SIZE, false, NULL, NULL, why); /* opens the connection */
}

static int small_request(struct bu_worker *w, size_t i, char *why)
{
    return fetch(*(CURL **)w->state, "/small", big, SMALL_SIZE, false, NULL, NULL, why);
}

static void small_release(struct bu_worker *w)
{
    CURL **c = w->state;
    if (*c)
        curl_easy_cleanup(*c);
}

static void small(int path, bool fresh, const struct bu_procs *procs)
{
    struct bu_result res;
    char name[64];
    snprintf(name, sizeof(name), "%s, %s", path == P_DIRECT ? "direct" : path == P_HOP1 ? "1 hop" : "2 hops",
             fresh ? "new connection" : "kept alive");
    struct small_phase ph = { .bu = { .name = name, .threads = 1, .max_requests = SMALL_REQS,
                                      .max_seconds = SMALL_SECONDS, .state_size = sizeof(CURL *),
                                      .prepare = small_prepare, .request = small_request,
                                      .release = small_release, .procs = procs },
                              .path = path, .fresh = fresh };
    bu_run_phase(&ph.bu, &res);
    bu_print_result(&res, NAME_W, procs->n);
    if (res.errors)
        bu_die("phase %s: %zu errors, first: %s", res.name, res.errors, res.first_error);
}

/* ---- setup and teardown --------------------------------------------------------------------- */

/* POST body to the route finder's /routes; the status, -1 when the request did not go through
 * (th_call asserts, which only works inside a check test). */
static long post_routes(const char *body)
{
    struct sw_http_result res = { 0 };
    struct sw_error err = { 0 };
    char url[256];
    long st;

    snprintf(url, sizeof(url), "%s/routes", net.rf_base);
    if (sw_http_do(http, "POST", url, NULL, body, strlen(body), &res, &err))
        return -1;
    st = res.status;
    sw_http_result_free(&res);
    return st;
}

static void wait_route(const struct th_visor *to)
{
    char body[400];
    long st = 0;
    snprintf(body, sizeof(body), "{\"edges\":[[\"%s\",\"%s\"]],\"opts\":{\"min_hops\":1,\"max_hops\":4,\"count\":1}}",
             va.pk_hex, to->pk_hex);
    for (int i = 0; i < 150 && st != 200; i++) {
        st = post_routes(body);
        if (st != 200)
            th_sleep_ms(200);
    }
    if (st != 200)
        bu_die("the route finder never found A -> %s (HTTP %ld)", to->name, st);
}

static void setup(void)
{
    char addr[N_PATHS][32], log[600];
    struct json_object *apps;
    const char *extra[] = { "--log-level", getenv("BENCH_LOG") ? getenv("BENCH_LOG") : "warn", NULL };

    if (!th_net_start(&net))
        bu_die("the discoveries, route finder, messaging server or setup node did not start");
    http = net.http;
    if (th_net_visor_gen(&net, &va, "bench-sx-a", NULL, extra) ||
        th_net_visor_gen(&net, &vb, "bench-sx-b", NULL, extra) ||
        th_net_visor_gen(&net, &vc, "bench-sx-c", NULL, extra))
        bu_die("cannot make the visor configs");

    /* exits on B and C; two clients on A (app ports 3 and 4), 1 hop to B and 2 hops to C.
     * The HTTP server is on loopback, which the exits' default policy refuses: allow it. */
    const char *exit_args[] = { "-allow", "127.0.0.1/32", NULL };
    apps = json_object_new_array();
    json_object_array_add(apps, th_app_entry("socksproxy", 3, exit_args));
    if (th_visor_set_apps(&vb, apps))
        bu_die("cannot configure the apps");
    apps = json_object_new_array();
    json_object_array_add(apps, th_app_entry("socksproxy", 3, exit_args));
    if (th_visor_set_apps(&vc, apps))
        bu_die("cannot configure the apps");
    apps = json_object_new_array();
    for (int p = P_HOP1; p <= P_HOP2; p++) {
        socks_port[p] = th_free_port();
        snprintf(addr[p], sizeof(addr[p]), "127.0.0.1:%u", socks_port[p]);
        snprintf(proxy_url[p], sizeof(proxy_url[p]), "socks5h://%s", addr[p]);
        const char *args[] = { "-srv", p == P_HOP1 ? vb.pk_hex : vc.pk_hex, "-addr", addr[p], NULL };
        json_object_array_add(apps, th_app_entry("socksproxy-client", 2 + p, args));
    }
    if (th_visor_set_apps(&va, apps))
        bu_die("cannot configure the apps");

    if (th_visor_start(&va) || th_visor_start(&vb) || th_visor_start(&vc))
        bu_die("a visor did not start");
    if (!th_net_wait_ready(&net, &va, 15000) || !th_net_wait_ready(&net, &vb, 15000) ||
        !th_net_wait_ready(&net, &vc, 15000))
        bu_die("a visor has no messaging session");
    if (th_net_add_stcp(&net, &va, &vb, NULL) != 201 || th_net_add_stcp(&net, &vb, &vc, NULL) != 201)
        bu_die("cannot add the stcp transports A-B and B-C");
    wait_route(&vb);
    wait_route(&vc);
    snprintf(log, sizeof(log), "%s/socksproxy.log", vb.data_dir);
    if (!th_log_wait(log, "socksproxy: listening on app port 3", 15000))
        bu_die("socksproxy on B did not start (%s)", log);
    snprintf(log, sizeof(log), "%s/socksproxy.log", vc.data_dir);
    if (!th_log_wait(log, "socksproxy: listening on app port 3", 15000))
        bu_die("socksproxy on C did not start (%s)", log);
    for (int p = P_HOP1; p <= P_HOP2; p++)
        if (!th_tcp_up(socks_port[p], 15000))
            bu_die("socksproxy-client did not listen on %s", addr[p]);
    pid_px_b = find_child(vb.pid, "socksproxy", NULL);
    pid_px_c = find_child(vc.pid, "socksproxy", NULL);
    pid_cli[P_HOP1] = find_child(va.pid, "socksproxy-clie", vb.pk_hex);
    pid_cli[P_HOP2] = find_child(va.pid, "socksproxy-clie", vc.pk_hex);
    if (pid_px_b <= 0 || pid_px_c <= 0 || pid_cli[P_HOP1] <= 0 || pid_cli[P_HOP2] <= 0)
        bu_die("cannot find the app processes (proxy B %d, proxy C %d, clients %d %d)", (int)pid_px_b,
               (int)pid_px_c, (int)pid_cli[P_HOP1], (int)pid_cli[P_HOP2]);
}

/* A still-running app (its visor is gone) gets SIGTERM, then SIGKILL after 5 s. */
static void stop_orphan(pid_t pid, const char *comm)
{
    char c[16];
    pid_t pp;
    if (pid <= 0)
        return;
    for (int waited = 0; waited <= 5000; waited += 100) {
        c[0] = '\0';
        proc_ticks(pid, &pp, c);
        if (strcmp(c, comm) != 0)
            return; /* gone (or the PID reused) */
        kill(pid, waited == 0 ? SIGTERM : 0);
        th_sleep_ms(100);
    }
    kill(pid, SIGKILL);
}

static void teardown(void)
{
    th_net_stop(&net, (struct th_visor *const[]){ &va, &vb, &vc }, 3);
    stop_orphan(pid_cli[P_HOP1], "socksproxy-clie");
    stop_orphan(pid_cli[P_HOP2], "socksproxy-clie");
    stop_orphan(pid_px_b, "socksproxy");
    stop_orphan(pid_px_c, "socksproxy");
    http = NULL;
    if (mhd)
        MHD_stop_daemon(mhd);
    free(big);
}

int main(void)
{
    const char *mib_env = getenv("SW_BENCH_SOCKS_MIB");
    long mib = mib_env ? strtol(mib_env, NULL, 10) : DEFAULT_MIB;
    double t_start = (sw_mono_ns() / 1e9);

    if (mib < 4 || mib > 4096)
        bu_die("SW_BENCH_SOCKS_MIB must be 4..4096");
    big_size = (size_t)mib << 20;
    sw_crypto_init();
    sw_http_global_init();
    bu_raise_fd_limit();
    gen_big();
    start_http();
    setup();
    printf("SOCKS5 through socksproxy-client on A and socksproxy on B (1 hop) or C (2 hops), visors\n"
           "A-B-C (stcp on loopback), real route finder, setup node and messaging; HTTP server and\n"
           "libcurl in this process (127.0.0.1, socks5h://); %d CPUs; set up in %.1f s\n",
           (int)sysconf(_SC_NPROCESSORS_ONLN), (sw_mono_ns() / 1e9) - t_start);

    /* 3. small requests first, on quiet transports */
    printf("\nGET of a %d-byte object, one at a time: on a new connection each (SOCKS handshake, route\n"
           "setup, the exit's connect, HTTP) and on one kept-alive connection\n",
           SMALL_SIZE);
    bu_print_header(NAME_W, "reqs", "reqs/s", "cores busy: vA / vB / vC / client / pg / bench / other", 0);
    for (int p = 0; p < N_PATHS; p++) {
        struct bu_procs procs = { .pid = { va.pid, vb.pid, vc.pid, p == P_DIRECT ? 0 : pid_cli[p] }, .n = 4,
                                  .postmaster = bu_postmaster_pid() };
        small(p, true, &procs);
        small(p, false, &procs);
    }

    /* 1. bulk */
    printf("\ndownload of %ld MiB, a new connection each run (every byte compared; SHA-256 checked on an\n"
           "untimed first run per path); MiB/s median and best of %d runs, time to first byte (median),\n"
           "CPU (/proc/PID/stat utime+stime) per MiB over the timed runs, and the cores those processes\n"
           "and the whole machine (/proc/stat) kept busy meanwhile\n",
           mib, REPS);
    printf("  %-*s %5s %4s %8s %8s %8s %7s  %s  %s\n", NAME_W, "path", "MiB", "runs", "median", "best",
           "ttfb ms", "secs", cpu_label, cores_label);
    printf("  ");
    for (int i = 0; i < NAME_W; i++)
        putchar('-');
    printf(" ----- ---- -------- -------- -------- -------  ");
    for (size_t i = 0; i < strlen(cpu_label); i++)
        putchar('-');
    printf("  ");
    for (size_t i = 0; i < strlen(cores_label); i++)
        putchar('-');
    putchar('\n');
    for (int p = 0; p < N_PATHS; p++)
        bulk(p);
    parallel(P_HOP2);

    printf("\ntotal %.1f s\n", (sw_mono_ns() / 1e9) - t_start);
    fflush(stdout);
    teardown();
    return 0;
}
