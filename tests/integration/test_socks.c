/* The SOCKS5 proxy apps end to end (apps/socksproxy/README.md): transport discovery, route
 * finder, messaging discovery + server, setup node and three visors A-B-C (stcp A-B and B-C
 * only). C runs socksproxy, A runs socksproxy-client, both launched by their visors from
 * config (auto_start). An HTTP server in this process, bound to 127.0.0.1, serves a page, a
 * 50 MB file and smaller slices of it; a real curl process fetches them with
 * --socks5-hostname (the name "localhost" is resolved at the exit) across the 2-hop route,
 * and the bytes are compared by SHA-256. A client with a wrong passcode is refused (SOCKS
 * reply 2) and a closed port gives reply 5. Keep-alive connections left idle do not starve
 * a later download. Half-close goes through both ways: a client that shuts down its side
 * still gets the target's answer, and a target that ends first still gets the client's
 * bytes (megabytes each way, compared byte for byte).
 *
 * The exit policy (common/exit_policy.h): C runs three socksproxy instances, each with its
 * own socksproxy-client on A:
 *   app port 3  -passcode P -allow 127.0.0.1/32   the downloads above (the server is on
 *                                                  loopback, which the defaults refuse)
 *   app port 4  no arguments (the defaults)       C's API, PostgreSQL, 10.x, 192.168.x,
 *                                                  "localhost" and [::1] all get reply 2,
 *                                                  before any connect, with one log line
 *   app port 5  -allow 127.0.0.0/24,::1/128       inside the range works, an address
 *               -deny 127.0.0.3/32                 denied or outside it does not
 * A canary listener on 127.0.0.1 proves that a refused destination is never connected. */
#include "common/bytes.h"
#include "common/http_client.h"
#include "common/json.h"
#include "common/keys.h"
#include "common/uuid.h"
#include "tests/harness/api_client.h"
#include "tests/harness/check_main.h"
#include "tests/harness/harness.h"
#include "tests/harness/net_env.h"
#include "tests/harness/visor_env.h"

#include <arpa/inet.h>
#include <check.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BIG_SIZE (50u * 1000 * 1000)
#define SMALL_SIZE (1u << 20)
#define N_PARALLEL 20
#define K31_SIZE (31u << 10)
#define PASSCODE "s3cret-pass"
static const char page[] = "<html><body>Hello through Skywire!</body></html>\n";

static struct th_visor va, vb, vc;
static struct th_net net = { .name = "socks", .with_rf = true, .with_sn = true };
static pid_t bad_pid = -1;
static struct sw_http_client *http; /* net.http */
static char tp_ab[SW_UUID_STR_LEN + 1], tp_bc[SW_UUID_STR_LEN + 1];
static struct MHD_Daemon *mhd;
static uint8_t *big;
static uint16_t http_port, socks_port, bad_port, closed_port;
static uint16_t dflt_port, range_port; /* SOCKS listeners on A for C's app ports 4 and 5 */
static int canary_fd = -1, range_fd = -1, v6_fd = -1; /* listeners on 127.0.0.1, .2, [::1] */
static uint16_t canary_port, range_listen_port, v6_listen_port;
static char socks_addr[32], bad_addr[32], c_log[600];

/* ---- the HTTP server on the exit's side ---------------------------------------------------- */

static void gen_big(void)
{
    uint64_t x = 0x9e3779b97f4a7c15ull;
    big = malloc(BIG_SIZE);
    ck_assert_ptr_nonnull(big);
    for (size_t i = 0; i < BIG_SIZE; i += 8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        memcpy(big + i, &x, BIG_SIZE - i < 8 ? BIG_SIZE - i : 8);
    }
}

static enum MHD_Result serve_http(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **state)
{
    struct MHD_Response *r;
    enum MHD_Result ret;
    unsigned n;

    static int first;

    if (strcmp(method, "GET") != 0)
        return MHD_NO;
    if (!*state) { /* the headers; answer on the next call (keeps the connection alive) */
        *state = &first;
        return MHD_YES;
    }
    if (strcmp(url, "/page") == 0)
        r = MHD_create_response_from_buffer(strlen(page), (void *)page, MHD_RESPMEM_PERSISTENT);
    else if (strcmp(url, "/k31") == 0)
        r = MHD_create_response_from_buffer(K31_SIZE, big, MHD_RESPMEM_PERSISTENT);
    else if (strcmp(url, "/big") == 0)
        r = MHD_create_response_from_buffer(BIG_SIZE, big, MHD_RESPMEM_PERSISTENT);
    else if (sscanf(url, "/small/%u", &n) == 1 && n < N_PARALLEL)
        r = MHD_create_response_from_buffer(SMALL_SIZE + n * 1000, big + (size_t)n * SMALL_SIZE,
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
    ck_assert_ptr_nonnull(mhd);
}

/* A non-blocking TCP listener on ip (text, IPv4 or IPv6) and a free port; -1 when ip cannot
 * be bound here. A port taken between th_free_port and bind (other tests) is tried again. */
static int listen_once(const char *ip, uint16_t *port);
static int listen_on(const char *ip, uint16_t *port)
{
    int fd = -1;
    for (int i = 0; i < 5 && fd < 0; i++)
        fd = listen_once(ip, port);
    return fd;
}

static int listen_once(const char *ip, uint16_t *port)
{
    struct sockaddr_storage ss = { 0 };
    struct sockaddr_in *in = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    bool v6 = strchr(ip, ':') != NULL;
    socklen_t len = v6 ? sizeof(*in6) : sizeof(*in);
    int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);

    *port = th_free_port();
    if (v6) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(*port);
        inet_pton(AF_INET6, ip, &in6->sin6_addr);
    } else {
        in->sin_family = AF_INET;
        in->sin_port = htons(*port);
        inet_pton(AF_INET, ip, &in->sin_addr);
    }
    if (fd < 0 || bind(fd, (struct sockaddr *)&ss, len) || listen(fd, 16)) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

static void start_listeners(void)
{
    canary_fd = listen_on("127.0.0.1", &canary_port);
    range_fd = listen_on("127.0.0.2", &range_listen_port);
    v6_fd = listen_on("::1", &v6_listen_port); /* optional: no IPv6 loopback, no [::1] check */
    ck_assert(canary_fd >= 0 && range_fd >= 0);
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* How many connections wait on a listener (accepting and closing them). */
static int drain_accepts(int lfd)
{
    int n = 0, fd;
    while ((fd = accept(lfd, NULL, NULL)) >= 0) {
        close(fd);
        n++;
    }
    return n;
}

/* ---- setup --------------------------------------------------------------------------------- */

static void setup(void)
{
    char body[400], log[600], sock[600], bin[512], envsock[700];
    struct json_object *apps;
    long st = 0;

    gen_big();
    start_http();
    ck_assert_msg(th_net_start(&net), "the services did not start");
    http = net.http;
    ck_assert_int_eq(th_net_visor_gen(&net, &va, "socks-a", NULL, NULL), 0);
    ck_assert_int_eq(th_net_visor_gen(&net, &vb, "socks-b", NULL, NULL), 0);
    ck_assert_int_eq(th_net_visor_gen(&net, &vc, "socks-c", NULL, NULL), 0);

    socks_port = th_free_port();
    dflt_port = th_free_port();
    range_port = th_free_port();
    snprintf(socks_addr, sizeof(socks_addr), "127.0.0.1:%u", socks_port);
    start_listeners();
    apps = json_object_new_array();
    {
        /* the HTTP server is on 127.0.0.1, which the default exit policy refuses */
        const char *main_args[] = { "-passcode", PASSCODE, "-allow", "127.0.0.1/32", NULL };
        const char *range_args[] = { "-allow", "127.0.0.0/24,::1/128", "--deny", "127.0.0.3/32", NULL };
        json_object_array_add(apps, th_app_entry("socksproxy", 3, main_args));
        json_object_array_add(apps, th_app_entry("socksproxy", 4, NULL));
        json_object_array_add(apps, th_app_entry("socksproxy", 5, range_args));
    }
    ck_assert_int_eq(th_visor_set_apps(&vc, apps), 0);
    apps = json_object_new_array();
    {
        const char *args[] = { "-srv", vc.pk_hex, "-addr", socks_addr, "-passcode", PASSCODE, NULL };
        char dflt_addr[32], range_addr[32];
        snprintf(dflt_addr, sizeof(dflt_addr), "127.0.0.1:%u", dflt_port);
        snprintf(range_addr, sizeof(range_addr), "127.0.0.1:%u", range_port);
        const char *dflt_args[] = { "-srv", vc.pk_hex, "-addr", dflt_addr, "-port", "4", NULL };
        const char *range_args[] = { "-srv", vc.pk_hex, "-addr", range_addr, "-port", "5", NULL };
        json_object_array_add(apps, th_app_entry("socksproxy-client", 3, args));
        json_object_array_add(apps, th_app_entry("socksproxy-client", 4, dflt_args));
        json_object_array_add(apps, th_app_entry("socksproxy-client", 5, range_args));
    }
    ck_assert_int_eq(th_visor_set_apps(&va, apps), 0);

    ck_assert_int_eq(th_visor_start(&va), 0);
    ck_assert_int_eq(th_visor_start(&vb), 0);
    ck_assert_int_eq(th_visor_start(&vc), 0);
    ck_assert(th_net_wait_sessions(&net, &va, 15000) && th_net_wait_sessions(&net, &vb, 15000) &&
              th_net_wait_sessions(&net, &vc, 15000));
    ck_assert(th_net_wait_mdisc(&net, va.pk_hex, 15000) && th_net_wait_mdisc(&net, vb.pk_hex, 15000) &&
              th_net_wait_mdisc(&net, vc.pk_hex, 15000));
    ck_assert_int_eq(th_net_add_stcp(&net, &va, &vb, tp_ab), 201);
    ck_assert_int_eq(th_net_add_stcp(&net, &vb, &vc, tp_bc), 201);

    /* the route finder sees A-B-C */
    snprintf(body, sizeof(body), "{\"edges\":[[\"%s\",\"%s\"]],\"opts\":{\"min_hops\":1,\"max_hops\":4,\"count\":1}}",
             va.pk_hex, vc.pk_hex);
    for (int i = 0; i < 100 && st != 200; i++) {
        st = th_call(http, net.rf_base, "POST", "/routes", body, NULL, NULL);
        if (st != 200)
            th_sleep_ms(200);
    }
    ck_assert_int_eq(st, 200);

    /* all apps run (the three exits share C's socksproxy.log) */
    snprintf(c_log, sizeof(c_log), "%s/socksproxy.log", vc.data_dir);
    for (int port = 3; port <= 5; port++) {
        snprintf(log, sizeof(log), "socksproxy: listening on app port %d", port);
        ck_assert_msg(th_log_wait(c_log, log, 15000), "socksproxy on port %d did not start", port);
    }
    ck_assert_msg(th_tcp_up(socks_port, 15000), "socksproxy-client did not listen on %s", socks_addr);
    ck_assert(th_tcp_up(dflt_port, 15000) && th_tcp_up(range_port, 15000));

    /* a second client with a wrong passcode, run by hand against A's app socket */
    bad_port = th_free_port();
    snprintf(bad_addr, sizeof(bad_addr), "127.0.0.1:%u", bad_port);
    snprintf(sock, sizeof(sock), "%s/app.sock", va.data_dir);
    snprintf(envsock, sizeof(envsock), "SKYWIRE_APP_SOCKET=%s", sock);
    snprintf(bin, sizeof(bin), "%s", th_bin("socksproxy-client"));
    {
        const char *argv[] = { bin, "-srv", vc.pk_hex, "-addr", bad_addr, "-passcode", "wrong", NULL };
        const char *env[] = { envsock, NULL };
        bad_pid = th_spawn(argv, env, th_log_path("socks-bad-client.log"));
    }
    ck_assert_int_gt(bad_pid, 0);
    ck_assert(th_tcp_up(bad_port, 15000));
    closed_port = th_free_port();
}

static void teardown(void)
{
    if (bad_pid > 0)
        th_stop(bad_pid, 5000);
    th_net_stop(&net, (struct th_visor *const[]){ &va, &vb, &vc }, 3);
    http = NULL;
    close_fd(&canary_fd);
    close_fd(&range_fd);
    close_fd(&v6_fd);
    if (mhd)
        MHD_stop_daemon(mhd);
    free(big);
}

/* ---- helpers -------------------------------------------------------------------------------- */

/* curl through proxy (host:port) for url into path; returns curl's exit status. */
static int curl_get(const char *proxy, bool remote_dns, const char *url, const char *path,
                    char *errbuf, size_t errcap)
{
    char out[256];
    const char *argv[] = { "/usr/bin/curl", "-sS", "--fail", "--max-time", "240",
                           remote_dns ? "--socks5-hostname" : "--socks5", proxy, "-o", path, url, NULL };
    return th_run(argv, out, sizeof(out), errbuf, errcap, 250000);
}

static void sha256_file(const char *path, uint8_t out[32], size_t *size)
{
    crypto_hash_sha256_state st;
    uint8_t buf[65536];
    size_t n;
    FILE *f = fopen(path, "rb");

    *size = 0;
    crypto_hash_sha256_init(&st);
    if (f) {
        while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
            crypto_hash_sha256_update(&st, buf, n);
            *size += n;
        }
        fclose(f);
    }
    crypto_hash_sha256_final(&st, out);
}

static bool file_matches(const char *path, const uint8_t *want, size_t want_len)
{
    uint8_t a[32], b[32];
    size_t got;
    sha256_file(path, a, &got);
    crypto_hash_sha256(b, want, want_len);
    if (got != want_len)
        fprintf(stderr, "%s: %zu bytes, want %zu\n", path, got, want_len);
    return got == want_len && memcmp(a, b, 32) == 0;
}

/* A raw SOCKS5 CONNECT to host:port through the listener on lport: host is sent as an IPv4
 * or IPv6 address when it is one, else as a name. Returns the connected socket (reply 0) or
 * -1; *rep is the reply code (-1 when the proxy answered nothing sensible). */
static int socks_open(uint16_t lport, const char *host, uint16_t port, int *rep_code)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(lport),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    struct timeval tv = { 90, 0 };
    uint8_t req[300], rep[10];
    size_t hl = strlen(host), n = 0;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ssize_t r;

    *rep_code = -1;
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
        goto fail;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (write(fd, "\x05\x01\x00", 3) != 3 || read(fd, rep, 2) != 2 || rep[0] != 5 || rep[1] != 0)
        goto fail;
    req[n++] = 5;
    req[n++] = 1;
    req[n++] = 0;
    if (inet_pton(AF_INET, host, req + n + 1) == 1) { /* an address as such (atyp 1 / 4) */
        req[n] = 1;
        n += 5;
    } else if (inet_pton(AF_INET6, host, req + n + 1) == 1) {
        req[n] = 4;
        n += 17;
    } else {
        req[n++] = 3;
        req[n++] = (uint8_t)hl;
        memcpy(req + n, host, hl);
        n += hl;
    }
    sw_put_u16(req + n, port);
    n += 2;
    if (write(fd, req, n) != (ssize_t)n)
        goto fail;
    for (n = 0; n < 10 && (r = read(fd, rep + n, 10 - n)) > 0;)
        n += (size_t)r;
    if (n == 10 && rep[0] == 5)
        *rep_code = rep[1];
    if (*rep_code == 0)
        return fd;
fail:
    if (fd >= 0)
        close(fd);
    return -1;
}

static int socks_connect_rep(uint16_t lport, const char *host, uint16_t port)
{
    int rep, fd = socks_open(lport, host, port, &rep);
    if (fd >= 0)
        close(fd);
    return rep;
}

/* One keep-alive HTTP/1.1 GET of path on fd; true when the body is want[0..want_len). */
static bool http_get(int fd, const char *path, const uint8_t *expect, size_t want)
{
    char req[128], *buf, *body;
    size_t cap = want + 4096, have = 0, hl;
    int len = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n", path);
    bool ok = false;
    ssize_t r;

    if (write(fd, req, (size_t)len) != len || !(buf = malloc(cap + 1)))
        return false;
    for (;;) {
        buf[have] = '\0';
        if ((body = strstr(buf, "\r\n\r\n"))) {
            hl = (size_t)(body + 4 - buf);
            if (have >= hl + want) {
                ok = have == hl + want && memcmp(buf + hl, expect, want) == 0;
                break;
            }
        }
        if (have >= cap || (r = read(fd, buf + have, cap - have)) <= 0)
            break;
        have += (size_t)r;
    }
    if (!ok) {
        buf[have < 80 ? have : 80] = '\0';
        buf[strcspn(buf, "\r\n")] = '\0';
        fprintf(stderr, "GET %s: %zu bytes, want a body of %zu: \"%s\"\n", path, have, want, buf);
    }
    free(buf);
    return ok;
}

/* ---- tests ---------------------------------------------------------------------------------- */

START_TEST(test_page_and_50mb)
{
    char url[128], path[512], err[2048];
    int64_t t0;
    uint64_t ms;
    int rc;

    snprintf(path, sizeof(path), "%s/page.html", net.dir);
    snprintf(url, sizeof(url), "http://localhost:%u/page", http_port);
    rc = curl_get(socks_addr, true, url, path, err, sizeof(err));
    ck_assert_msg(rc == 0, "curl page: %d %s", rc, err);
    ck_assert(file_matches(path, (const uint8_t *)page, strlen(page)));

    /* an IPv4 address request (curl resolves, atyp 1) */
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/page", http_port);
    rc = curl_get(socks_addr, false, url, path, err, sizeof(err));
    ck_assert_msg(rc == 0, "curl page (IPv4): %d %s", rc, err);
    ck_assert(file_matches(path, (const uint8_t *)page, strlen(page)));

    snprintf(path, sizeof(path), "%s/big.bin", net.dir);
    snprintf(url, sizeof(url), "http://localhost:%u/big", http_port);
    t0 = sw_mono_ms();
    rc = curl_get(socks_addr, true, url, path, err, sizeof(err));
    ms = sw_ms_since(t0);
    ck_assert_msg(rc == 0, "curl big: %d %s", rc, err);
    ck_assert(file_matches(path, big, BIG_SIZE));
    printf("socks: 50 MB over 2 hops (A-B-C) in %llu ms (%.1f MB/s)\n", (unsigned long long)ms,
           ms ? (double)BIG_SIZE / 1e3 / (double)ms : 0.0);
    fflush(stdout);
    unlink(path);
}
END_TEST

struct job {
    int n, rc;
    bool ok;
    char err[1024];
};

static void *fetch_small(void *arg)
{
    struct job *j = arg;
    char url[128], path[512];
    snprintf(path, sizeof(path), "%s/small-%d.bin", net.dir, j->n);
    snprintf(url, sizeof(url), "http://localhost:%u/small/%d", http_port, j->n);
    j->rc = curl_get(socks_addr, true, url, path, j->err, sizeof(j->err));
    j->ok = j->rc == 0 && file_matches(path, big + (size_t)j->n * SMALL_SIZE, SMALL_SIZE + (size_t)j->n * 1000);
    unlink(path);
    return NULL;
}

START_TEST(test_parallel_20)
{
    static struct job jobs[N_PARALLEL];
    pthread_t th[N_PARALLEL];
    int64_t t0 = sw_mono_ms();

    for (int i = 0; i < N_PARALLEL; i++) {
        jobs[i] = (struct job){ .n = i };
        ck_assert_int_eq(pthread_create(&th[i], NULL, fetch_small, &jobs[i]), 0);
    }
    for (int i = 0; i < N_PARALLEL; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < N_PARALLEL; i++)
        ck_assert_msg(jobs[i].ok, "parallel fetch %d: curl %d %s", i, jobs[i].rc, jobs[i].err);
    printf("socks: %d parallel SOCKS connections of ~1 MiB each in %llu ms\n", N_PARALLEL,
           (unsigned long long)sw_ms_since(t0));
    fflush(stdout);
}
END_TEST

START_TEST(test_wrong_passcode_refused)
{
    char url[128], path[512], err[2048];
    int rc;

    ck_assert_int_eq(socks_connect_rep(bad_port, "localhost", http_port), 2);
    snprintf(path, sizeof(path), "%s/refused.html", net.dir);
    snprintf(url, sizeof(url), "http://localhost:%u/page", http_port);
    rc = curl_get(bad_addr, true, url, path, err, sizeof(err));
    ck_assert_msg(rc != 0, "curl with a wrong passcode succeeded");
    /* the right passcode still works through the same exit */
    ck_assert_int_eq(socks_connect_rep(socks_port, "localhost", http_port), 0);
}
END_TEST

START_TEST(test_closed_port_error)
{
    char url[128], path[512], err[2048];
    int rc;

    ck_assert_int_eq(socks_connect_rep(socks_port, "localhost", closed_port), 5);
    ck_assert_int_eq(socks_connect_rep(socks_port, "no-such-host.invalid", 80), 4);
    snprintf(path, sizeof(path), "%s/closed.html", net.dir);
    snprintf(url, sizeof(url), "http://localhost:%u/page", closed_port);
    rc = curl_get(socks_addr, true, url, path, err, sizeof(err));
    ck_assert_msg(rc != 0, "curl to a closed port succeeded");
}
END_TEST

/* Connections that stay open after their transfer (HTTP keep-alive) hold nothing back: with
 * 30 of them idle after a 31 KiB answer each, a 50 MB download still goes through, and the
 * idle ones still work after it. */
START_TEST(test_idle_connections_stay_usable)
{
    enum { N_IDLE = 30 };
    int fds[N_IDLE], rep;
    char url[128], path[512], err[2048];

    for (int i = 0; i < N_IDLE; i++) {
        fds[i] = socks_open(socks_port, "localhost", http_port, &rep);
        ck_assert_msg(fds[i] >= 0, "SOCKS connection %d: reply %d", i, rep);
        ck_assert_msg(http_get(fds[i], "/k31", big, K31_SIZE), "keep-alive GET %d", i);
    }
    ck_assert_msg(http_get(fds[0], "/small/1", big + SMALL_SIZE, SMALL_SIZE + 1000),
                  "second GET on a kept-alive connection");
    snprintf(path, sizeof(path), "%s/big2.bin", net.dir);
    snprintf(url, sizeof(url), "http://localhost:%u/big", http_port);
    rep = curl_get(socks_addr, true, url, path, err, sizeof(err));
    ck_assert_msg(rep == 0, "curl big with idle connections open: %d %s", rep, err);
    ck_assert(file_matches(path, big, BIG_SIZE));
    unlink(path);
    /* and the idle ones still work */
    ck_assert(http_get(fds[N_IDLE - 1], "/k31", big, K31_SIZE));
    for (int i = 0; i < N_IDLE; i++)
        close(fds[i]);
}
END_TEST

/* ---- half-close ------------------------------------------------------------------------------ */

#define HC_UP (5u << 20)   /* client -> target */
#define HC_DOWN (3u << 20) /* target -> client */

/* One connection to a TCP target on the exit's side, served by a thread. */
struct hc_target {
    int lfd;
    bool target_first; /* the target ends its direction first (else the client does) */
    size_t got;        /* bytes the target read before its EOF */
    bool got_ok;       /* ... and they were big[0..HC_UP) */
    bool sent_ok;
};

/* Reads fd to its end; true when it was exactly want[0..n). */
static bool read_to_eof(int fd, const uint8_t *want, size_t n, size_t *got)
{
    static __thread uint8_t buf[65536];
    bool same = true;
    ssize_t r;

    *got = 0;
    while ((r = read(fd, buf, sizeof(buf))) > 0) {
        if (*got + (size_t)r > n || memcmp(buf, want + *got, (size_t)r) != 0)
            same = false;
        *got += (size_t)r;
    }
    return r == 0 && same && *got == n;
}

static bool write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

static void *hc_serve(void *arg)
{
    struct hc_target *t = arg;
    struct pollfd pf = { .fd = t->lfd, .events = POLLIN };
    struct timeval tv = { 60, 0 };
    int fd;

    if (poll(&pf, 1, 60000) != 1 || (fd = accept(t->lfd, NULL, NULL)) < 0)
        return NULL;
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (t->target_first) { /* send everything, shut down, then read what the client still sends */
        t->sent_ok = write_all(fd, big + HC_UP, HC_DOWN) && shutdown(fd, SHUT_WR) == 0;
        t->got_ok = read_to_eof(fd, big, HC_UP, &t->got);
    } else { /* read to the client's EOF, then answer */
        t->got_ok = read_to_eof(fd, big, HC_UP, &t->got);
        t->sent_ok = write_all(fd, big + HC_UP, HC_DOWN);
    }
    close(fd);
    return NULL;
}

/* One SOCKS connection to a target on the exit's side; each side ends its direction with
 * shutdown(SHUT_WR) while the other goes on, in the order target_first says, with megabytes
 * in both directions. */
static void half_close(bool target_first)
{
    struct hc_target t = { .target_first = target_first };
    struct timeval tv = { 60, 0 };
    uint16_t port;
    pthread_t th;
    size_t got = 0;
    bool down_ok = false, up_ok = false, clean_end = false;
    uint8_t b;
    int fd, rep;

    t.lfd = listen_on("127.0.0.1", &port);
    ck_assert_int_ge(t.lfd, 0);
    ck_assert_int_eq(pthread_create(&th, NULL, hc_serve, &t), 0);
    /* no assertion until the thread is joined: it uses t */
    if ((fd = socks_open(socks_port, "127.0.0.1", port, &rep)) >= 0) {
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        if (target_first) { /* the target's bytes and EOF first, then ours (it still reads) */
            down_ok = read_to_eof(fd, big + HC_UP, HC_DOWN, &got);
            up_ok = write_all(fd, big, HC_UP) && shutdown(fd, SHUT_WR) == 0;
            clean_end = read(fd, &b, 1) == 0; /* nothing more, and no reset */
        } else { /* ours and our EOF first; the answer comes after it */
            up_ok = write_all(fd, big, HC_UP) && shutdown(fd, SHUT_WR) == 0;
            down_ok = read_to_eof(fd, big + HC_UP, HC_DOWN, &got);
            clean_end = true;
        }
    } else {
        shutdown(t.lfd, SHUT_RDWR); /* wakes the thread up */
    }
    pthread_join(th, NULL);
    if (fd >= 0)
        close(fd);
    close(t.lfd);
    ck_assert_msg(fd >= 0, "SOCKS connect: reply %d", rep);
    ck_assert_msg(up_ok, "the client could not send its bytes and its EOF");
    ck_assert_msg(down_ok, "the client got %zu bytes of the target's %u", got, HC_DOWN);
    ck_assert_msg(t.got_ok, "the target got %zu bytes of the client's %u", t.got, HC_UP);
    ck_assert(t.sent_ok && clean_end);
}

START_TEST(test_half_close_client_first)
{
    half_close(false);
}
END_TEST

START_TEST(test_half_close_target_first)
{
    half_close(true);
}
END_TEST

/* ---- exit policy ----------------------------------------------------------------------------- */

/* The port of the test PostgreSQL (SW_TEST_PG_URL: postgresql://postgres@127.0.0.1:PORT/...). */
static uint16_t pg_port(void)
{
    const char *url = getenv("SW_TEST_PG_URL"), *at = url ? strstr(url, "127.0.0.1:") : NULL;
    ck_assert_msg(at, "SW_TEST_PG_URL has no 127.0.0.1:PORT");
    return (uint16_t)strtoul(at + strlen("127.0.0.1:"), NULL, 10);
}

/* Through lport, host:port gets reply 2 and C's log gets exactly one line naming the
 * destination and a rule containing rule_part. */
static void expect_refused(uint16_t lport, const char *host, uint16_t port, const char *rule_part)
{
    char needle[300], rule[200];

    ck_assert_msg(socks_connect_rep(lport, host, port) == 2, "%s port %u was not refused", host, port);
    snprintf(needle, sizeof(needle), "exit policy refused %s port %u: ", host, port);
    ck_assert_msg(th_log_wait(c_log, needle, 5000), "no log line \"%s\"", needle);
    ck_assert_int_eq(th_log_count(c_log, needle), 1);
    snprintf(rule, sizeof(rule), "matches rule \"%s", rule_part);
    ck_assert_msg(th_log_count(c_log, rule) >= 1, "no line with %s", rule);
}

/* C's socksproxy with no allow list: the exit's own services, private ranges and loopback by
 * name or IPv6 are refused with reply 2, before any connect (no packet to 10.x / 192.168.x). */
START_TEST(test_default_policy_refuses)
{
    char needle[300];

    drain_accepts(canary_fd);
    expect_refused(dflt_port, "127.0.0.1", vc.api_port, "loopback 127.0.0.0/8");
    expect_refused(dflt_port, "127.0.0.1", pg_port(), "loopback 127.0.0.0/8");
    expect_refused(dflt_port, "10.11.12.13", 80, "private (RFC 1918) 10.0.0.0/8");
    expect_refused(dflt_port, "192.168.77.1", 443, "private (RFC 1918) 192.168.0.0/16");
    expect_refused(dflt_port, "localhost", canary_port, "loopback");
    expect_refused(dflt_port, "::1", canary_port, "loopback ::1/128");
    expect_refused(dflt_port, "::ffff:127.0.0.1", canary_port, "loopback 127.0.0.0/8");
    expect_refused(dflt_port, "127.0.0.1", canary_port, "loopback 127.0.0.0/8");
    expect_refused(dflt_port, "0.0.0.0", canary_port, "unspecified");
    /* the name's line says how many addresses it resolved to, all refused */
    snprintf(needle, sizeof(needle), "exit policy refused localhost port %u: ", canary_port);
    ck_assert_int_eq(th_log_count(c_log, needle), 1);
    th_sleep_ms(200);
    ck_assert_msg(drain_accepts(canary_fd) == 0, "a refused destination was connected");
    /* the exit with -allow 127.0.0.1/32 refuses the rest of loopback */
    expect_refused(socks_port, "127.0.0.2", range_listen_port, "loopback 127.0.0.0/8");
    expect_refused(socks_port, "10.11.12.13", 8080, "private");
}
END_TEST

/* -allow 127.0.0.0/24,::1/128 -deny 127.0.0.3/32: inside the range works, the deny wins. */
START_TEST(test_allowed_range)
{
    char url[128], path[512], err[2048], proxy[32];
    int rc;

    snprintf(proxy, sizeof(proxy), "127.0.0.1:%u", range_port);
    drain_accepts(range_fd);
    ck_assert_int_eq(socks_connect_rep(range_port, "127.0.0.2", range_listen_port), 0);
    th_sleep_ms(200);
    ck_assert_int_eq(drain_accepts(range_fd), 1);
    ck_assert_int_eq(socks_connect_rep(range_port, "localhost", http_port), 0);
    snprintf(path, sizeof(path), "%s/range.html", net.dir);
    snprintf(url, sizeof(url), "http://localhost:%u/page", http_port);
    rc = curl_get(proxy, true, url, path, err, sizeof(err));
    ck_assert_msg(rc == 0, "curl page through the range exit: %d %s", rc, err);
    ck_assert(file_matches(path, (const uint8_t *)page, strlen(page)));
    expect_refused(range_port, "127.0.0.3", range_listen_port, "-deny 127.0.0.3/32");
    expect_refused(range_port, "127.0.1.1", range_listen_port, "loopback 127.0.0.0/8");
    expect_refused(range_port, "192.168.77.2", 443, "private");
    if (v6_fd >= 0) {
        drain_accepts(v6_fd);
        ck_assert_int_eq(socks_connect_rep(range_port, "::1", v6_listen_port), 0);
        th_sleep_ms(200);
        ck_assert_int_eq(drain_accepts(v6_fd), 1);
    } else {
        fprintf(stderr, "test_allowed_range: no IPv6 loopback here, [::1] not checked\n");
    }
}
END_TEST

static Suite *socks_suite(void)
{
    Suite *s = suite_create("socks");
    TCase *tc = tcase_create("socks");

    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, test_page_and_50mb);
    tcase_add_test(tc, test_parallel_20);
    tcase_add_test(tc, test_wrong_passcode_refused);
    tcase_add_test(tc, test_closed_port_error);
    tcase_add_test(tc, test_idle_connections_stay_usable);
    tcase_add_test(tc, test_half_close_client_first);
    tcase_add_test(tc, test_half_close_target_first);
    tcase_add_test(tc, test_default_policy_refuses);
    tcase_add_test(tc, test_allowed_range);
    suite_add_tcase(s, tc);
    return s;
}

const struct th_check_main th_check_main = {
    .suite = socks_suite,
    .fork = CK_NOFORK,
    .before = th_check_init_crypto_http,
};
