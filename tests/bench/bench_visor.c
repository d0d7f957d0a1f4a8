/* bench_visor.c — the visor's stcp and dmsg data paths and its memory per transport.
 *
 *  1. throughput of one transport between two real visors on loopback, stcp (direct) and
 *     dmsg (through one local messaging-server found via a messaging-discovery on a fresh
 *     DB): visor A is asked to send N bytes of DISCARD packets (POST
 *     /api/transports/{id}/discard) and the clock stops when visor B has counted them all
 *     (bytes_received) or at a time cap (then the bytes that did arrive count); next to
 *     plain loopback TCP (this process, one writer thread, 64 KiB writes) and to
 *     ChaCha20-Poly1305 sealing of 64 KiB packets on one core (the cipher's own limit).
 *     One table: MB/s, seconds, bytes, and cores busy over the row split between visor A,
 *     visor B, the messaging server and the rest (this process, PostgreSQL, the machine);
 *  2. visor A's resident memory with 1,000 idle transports: this process plays 1,000 peers,
 *     each with its own key, doing the real Noise XK handshake and ENTRY_SIG exchange.
 *
 * Run through tests/run-bench.sh (it provides the PostgreSQL cluster for the transport
 * discovery). Exits 1 when a phase fails. */
#include "common/bytes.h"
#include "common/frame.h"
#include "common/http_client.h"
#include "common/json.h"
#include "common/keys.h"
#include "common/noise.h"
#include "common/tp_entry.h"
#include "tests/harness/api_client.h"
#include "tests/harness/bench_util.h"
#include "tests/harness/harness.h"
#include "tests/harness/msg_server.h"
#include "tests/harness/visor_env.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define THROUGHPUT_BYTES (1ull << 30)
#define DMSG_BYTES (1ull << 30)
#define TP_MAX_SECONDS 15.0 /* cap per transport row; the bytes that arrived by then count */
#define TCP_BYTES (4ull << 30)
#define SEAL_BYTES (1ull << 30)
#define IDLE_PEERS 1000
#define CHUNK (64 * 1024)

static struct sw_http_client *http;

/* ---- the throughput table ----------------------------------------------------------- */

/* Whose CPU the throughput rows account: visor A, visor B, the messaging server. */
static struct bu_procs procs;
static struct bu_cpu_snap *snap0, *snap1;

struct tp_row {
    const char *name;
    uint64_t bytes;
    double seconds;
    struct bu_cores cores;
    const char *note; /* after the row, may be NULL */
};

#define ROW_W 46

static void row_start(double *t0)
{
    bu_cpu_snapshot(snap0, &procs);
    *t0 = (sw_mono_ns() / 1e9);
}

static void row_stop(struct tp_row *r, double t0, uint64_t bytes)
{
    r->seconds = (sw_mono_ns() / 1e9) - t0;
    bu_cpu_snapshot(snap1, &procs);
    bu_cores_between(snap0, snap1, procs.n, r->seconds, &r->cores);
    r->bytes = bytes;
}

static void print_rows(const struct tp_row *rows, size_t n)
{
    static const char label[] = "cores busy: visor A / visor B / msg srv / rest";
    printf("  %-*s %9s %6s %12s  %s\n", ROW_W, "path", "MB/s", "secs", "bytes", label);
    printf("  %-*.*s %9s %6s %12s  %.*s\n", ROW_W, ROW_W,
           "----------------------------------------------------------------", "---------", "------",
           "------------", (int)strlen(label),
           "----------------------------------------------------------------");
    for (size_t i = 0; i < n; i++) {
        const struct tp_row *r = &rows[i];
        const struct bu_cores *c = &r->cores;
        printf("  %-*s %9.0f %6.2f %12" PRIu64 "  %11.2f / %7.2f / %7.2f / %4.2f%s%s\n", ROW_W, r->name,
               r->seconds > 0 ? (double)r->bytes / r->seconds / 1e6 : 0, r->seconds, r->bytes, c->pid[0],
               c->pid[1], c->pid[2], c->pg + c->self + c->other, r->note ? "  " : "", r->note ? r->note : "");
    }
    fflush(stdout);
}

/* VmRSS of pid in KiB, -1 when unknown. */
static long rss_kib(pid_t pid)
{
    long hwm, rss;
    bu_proc_mem(pid, &hwm, &rss);
    return rss;
}

/* One API call; the status, and the parsed reply in *out when asked. Dies on I/O errors. */
static long call(const char *base, const char *method, const char *target, const char *body,
                 struct json_object **out)
{
    struct sw_http_result res = { 0 };
    struct sw_error err = { 0 };
    char url[256];
    long st;

    snprintf(url, sizeof(url), "%s%s", base, target);
    if (sw_http_do(http, method, url, th_api_headers(base), body, body ? strlen(body) : 0, &res, &err)) {
        fprintf(stderr, "bench_visor: %s %s: %s\n", method, url, err.msg);
        exit(1);
    }
    st = res.status;
    if (st < 200 || st > 299)
        fprintf(stderr, "bench_visor: %s %s: HTTP %ld %s\n", method, url, st, res.body);
    if (out && sw_json_parse(res.body, res.body_len, out, NULL))
        *out = NULL;
    sw_http_result_free(&res);
    return st;
}

static uint64_t bytes_received(const struct th_visor *v, const char *id)
{
    char url[160];
    struct sw_http_result res = { 0 };
    struct json_object *o = NULL;
    uint64_t n = 0;

    snprintf(url, sizeof(url), "%s/api/transports/%s", v->api, id);
    if (sw_http_do(http, "GET", url, th_api_headers(v->api), NULL, 0, &res, NULL) == SW_OK &&
        sw_json_parse(res.body, res.body_len, &o, NULL) == SW_OK)
        n = json_object_get_uint64(json_object_object_get(o, "bytes_received"));
    json_object_put(o);
    sw_http_result_free(&res);
    return n;
}

/* ---- plain loopback TCP ------------------------------------------------------------ */

static void *tcp_writer(void *arg)
{
    int fd = *(int *)arg;
    static char buf[CHUNK];
    uint64_t left = TCP_BYTES;
    while (left) {
        ssize_t n = write(fd, buf, left < CHUNK ? (size_t)left : CHUNK);
        if (n <= 0)
            break;
        left -= (uint64_t)n;
    }
    close(fd);
    return NULL;
}

static void tcp_row(struct tp_row *r)
{
    static char buf[CHUNK];
    int cfd, sfd;
    uint64_t got = 0;
    pthread_t th;
    double t0;
    ssize_t n;

    bu_tcp_pair(&cfd, &sfd);
    row_start(&t0);
    if (pthread_create(&th, NULL, tcp_writer, &cfd))
        bu_die("no writer thread");
    while ((n = read(sfd, buf, sizeof(buf))) > 0)
        got += (uint64_t)n;
    pthread_join(th, NULL);
    row_stop(r, t0, got);
    close(sfd);
}

static void seal_row(struct tp_row *r)
{
    struct sw_noise_cipher c = { .n = 0 };
    static uint8_t buf[SW_NOISE_MAX_MSG];
    uint64_t done = 0;
    double t0;
    row_start(&t0);
    for (; done < SEAL_BYTES; done += SW_NOISE_MAX_PAYLOAD) {
        if (sw_noise_encrypt(&c, NULL, 0, buf, SW_NOISE_MAX_PAYLOAD, buf))
            bu_die("seal failed");
    }
    row_stop(r, t0, done);
}

/* ---- one fake peer: XK initiator + ENTRY_SIG on a blocking socket --------------------- */

static int read_full(int fd, uint8_t *p, size_t n)
{
    while (n) {
        ssize_t r = read(fd, p, n);
        if (r <= 0)
            return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static int send_frame(int fd, const uint8_t *msg, size_t n)
{
    uint8_t buf[2 + 512];
    size_t out;
    if (sw_frame_encode(buf, sizeof(buf), msg, n, &out))
        return -1;
    return write(fd, buf, out) == (ssize_t)out ? 0 : -1;
}

static int recv_frame(int fd, uint8_t *msg, size_t cap, size_t *n)
{
    uint8_t hdr[2];
    if (read_full(fd, hdr, 2))
        return -1;
    *n = sw_get_u16(hdr);
    return *n <= cap ? read_full(fd, msg, *n) : -1;
}

static int peer_connect(uint16_t port, const struct sw_keypair *kp, const struct sw_pk *visor)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
    struct sw_noise_hs hs;
    struct sw_noise_cipher tx, rx;
    struct sw_tp_entry e;
    uint8_t msg[512], pkt[1 + SW_SIG_LEN + SW_NOISE_TAG];
    struct sw_sig sig;
    size_t n;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
        sw_noise_hs_init_ed25519(&hs, SW_NOISE_XK, SW_NOISE_INITIATOR, SW_NOISE_PROLOGUE_TP, kp, visor) ||
        sw_noise_hs_write_message(&hs, NULL, 0, msg, sizeof(msg), &n) || send_frame(fd, msg, n) ||
        recv_frame(fd, msg, sizeof(msg), &n) || sw_noise_hs_read_message(&hs, msg, n, NULL, 0, &n) ||
        sw_noise_hs_write_message(&hs, kp->pk.b, SW_PK_LEN, msg, sizeof(msg), &n) ||
        send_frame(fd, msg, n) || sw_noise_hs_split(&hs, &tx, &rx))
        goto fail;
    sw_tp_entry_make(&e, &kp->pk, visor, "stcp", "", NULL);
    sw_tp_entry_sign(&e, kp, &sig);
    pkt[0] = 0x01;
    memcpy(pkt + 1, sig.b, SW_SIG_LEN);
    if (sw_noise_encrypt(&tx, NULL, 0, pkt, 1 + SW_SIG_LEN, pkt) || send_frame(fd, pkt, sizeof(pkt)) ||
        recv_frame(fd, msg, sizeof(msg), &n) || sw_noise_decrypt(&rx, NULL, 0, msg, n, msg) || msg[0] != 0x01)
        goto fail;
    sw_noise_hs_wipe(&hs);
    return fd;
fail:
    sw_noise_hs_wipe(&hs);
    if (fd >= 0)
        close(fd);
    return -1;
}

/* ---- phases ------------------------------------------------------------------------- */

/* A new transport from -> to of type "stcp" (to's listener) or "dmsg"; its ID (static). */
static const char *add_transport(const struct th_visor *from, const struct th_visor *to, const char *type)
{
    static char id[SW_UUID_STR_LEN + 1];
    char body[256];
    struct json_object *o = NULL;

    if (!strcmp(type, "dmsg"))
        snprintf(body, sizeof(body), "{\"remote_pk\":\"%s\",\"type\":\"dmsg\"}", to->pk_hex);
    else
        snprintf(body, sizeof(body), "{\"remote_pk\":\"%s\",\"address\":\"%s\"}", to->pk_hex, to->stcp);
    if (call(from->api, "POST", "/api/transports", body, &o) != 201)
        bu_die("add-tp %s failed", type);
    snprintf(id, sizeof(id), "%s", json_object_get_string(json_object_object_get(o, "id")));
    json_object_put(o);
    return id;
}

/* A sends `bytes` of DISCARD on transport id; the clock stops when B has counted them or
 * at TP_MAX_SECONDS (the row then has the bytes that did arrive and a note). Dies when
 * nothing arrives at all. */
static void visor_row(struct tp_row *r, const struct th_visor *a, const struct th_visor *b, const char *id,
                      uint64_t bytes)
{
    char target[128], body[64];
    uint64_t base = bytes_received(b, id), got;
    double t0, dt;

    snprintf(target, sizeof(target), "/api/transports/%s/discard", id);
    snprintf(body, sizeof(body), "{\"bytes\":%llu}", (unsigned long long)bytes);
    row_start(&t0);
    if (call(a->api, "POST", target, body, NULL) != 202)
        bu_die("discard request failed");
    do {
        usleep(2000);
        got = bytes_received(b, id) - base;
        dt = (sw_mono_ns() / 1e9) - t0;
    } while (got < bytes && dt < TP_MAX_SECONDS);
    row_stop(r, t0, got);
    if (got == 0)
        bu_die("no DISCARD byte arrived within %.0f s (%s)", TP_MAX_SECONDS, r->name);
    if (got < bytes)
        r->note = "(cut at the time cap)";
}

/* Removes transport id on v (stops whatever DISCARD is still queued). */
static void remove_transport(const struct th_visor *v, const char *id)
{
    char target[128];
    snprintf(target, sizeof(target), "/api/transports/%s", id);
    if (call(v->api, "DELETE", target, NULL, NULL) != 200)
        bu_die("removing transport %s failed", id);
}

static int messaging_sessions(const struct th_visor *v)
{
    struct json_object *o = NULL;
    int n = -1;
    if (call(v->api, "GET", "/api/summary", NULL, &o) == 200)
        n = json_object_get_int(json_object_object_get(json_object_object_get(o, "messaging"), "sessions"));
    json_object_put(o);
    return n;
}

/* Both visors hold a messaging session and B is in the messaging discovery. */
static void wait_dmsg_ready(const struct th_visor *a, const struct th_visor *b, const char *md_base)
{
    for (int i = 0; messaging_sessions(a) < 1 || messaging_sessions(b) < 1; i++) {
        if (i >= 150)
            bu_die("the visors got no messaging session within 15 s");
        usleep(100000);
    }
    if (!th_md_wait_entry(md_base, &b->pk, 15000))
        bu_die("visor B's entry did not reach the messaging discovery within 15 s");
}

static int count_up(const struct th_visor *v)
{
    struct json_object *o = NULL;
    int n = -1;
    if (call(v->api, "GET", "/api/summary", NULL, &o) == 200)
        n = json_object_get_int(json_object_object_get(o, "transports_up"));
    json_object_put(o);
    return n;
}

static void idle_transports(const struct th_visor *a)
{
    static int fds[IDLE_PEERS];
    struct sw_keypair kp;
    long before = rss_kib(a->pid), after;
    double t0 = (sw_mono_ns() / 1e9), dt;
    int up = 0;

    for (int i = 0; i < IDLE_PEERS; i++) {
        /* keys above A's, so A is the lower edge and registers every entry itself */
        do
            sw_keypair_generate(&kp);
        while (sw_pk_cmp(&kp.pk, &a->pk) < 0);
        if ((fds[i] = peer_connect(a->stcp_port, &kp, &a->pk)) < 0)
            bu_die("a fake peer's handshake failed");
    }
    dt = (sw_mono_ns() / 1e9) - t0;
    for (int i = 0; i < 50 && (up = count_up(a)) < IDLE_PEERS + 1; i++)
        usleep(100000);
    usleep(500000);
    after = rss_kib(a->pid);
    printf("  %-44s %10.0f /s  (%d handshakes + ENTRY_SIG in %.2f s)\n", "transports set up", IDLE_PEERS / dt,
           IDLE_PEERS, dt);
    printf("  %-44s %10d\n", "transports up on visor A", up);
    printf("  %-44s %10ld KiB -> %ld KiB\n", "visor A RSS, 1 -> 1,001 transports", before, after);
    printf("  %-44s %10.1f KiB\n", "RSS per idle transport", (double)(after - before) / IDLE_PEERS);
    for (int i = 0; i < IDLE_PEERS; i++)
        close(fds[i]);
    if (up < IDLE_PEERS + 1)
        bu_die("not every idle transport came up");
}

/* A service with --addr and --db on a fresh database; its base URL into base. */
static pid_t start_service(const char *name, const char *db_prefix, char *base, size_t cap, const char *log)
{
    char db[256], addr[32], bin[512];
    uint16_t port = th_free_port();

    snprintf(db, sizeof(db), "%s", th_fresh_db(db_prefix));
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", port);
    snprintf(base, cap, "http://%s", addr);
    snprintf(bin, sizeof(bin), "%s", th_bin(name));
    const char *argv[] = { bin, "--addr", addr, "--db", db, NULL };
    return th_start_service(argv, port, th_log_path(log));
}

int main(void)
{
    struct th_visor a, b;
    struct th_msg_server ms = { .name = "ms" };
    struct tp_row rows[4] = {
        { .name = "stcp transport, visor A -> visor B" },
        { .name = "dmsg transport, A -> messaging server -> B" },
        { .name = "plain loopback TCP, 64 KiB writes" },
        { .name = "ChaCha20-Poly1305 seal of 64 KiB, one core" },
    };
    char td_base[64], md_base[64], dir[256], stcp_id[SW_UUID_STR_LEN + 1], dmsg_id[SW_UUID_STR_LEN + 1];
    const char *extra[] = { "--mdisc", md_base, "--log-level", "warn", NULL };
    pid_t td, md;
    double t_start;

    sw_crypto_init();
    sw_http_global_init();
    bu_raise_fd_limit();
    http = sw_http_client_new(NULL);
    t_start = (sw_mono_ns() / 1e9);
    if ((td = start_service("transport-discovery", "bench_visor", td_base, sizeof(td_base),
                            "bench-visor-td.log")) < 0)
        bu_die("transport discovery did not start");
    if ((md = start_service("messaging-discovery", "bench_visor_md", md_base, sizeof(md_base),
                            "bench-visor-md.log")) < 0)
        bu_die("messaging discovery did not start");
    if (!th_msg_server_init(&ms, "bench-visor", md_base))
        bu_die("the messaging server did not start");
    snprintf(dir, sizeof(dir), "%s", th_temp_dir("sw-bench-visor"));
    if (th_visor_gen(&a, dir, "bench-visor-a", td_base, extra) || th_visor_gen(&b, dir, "bench-visor-b", td_base, extra) ||
        th_visor_start(&a) || th_visor_start(&b))
        bu_die("the visors did not start");
    procs = (struct bu_procs){ .pid = { a.pid, b.pid, ms.pid }, .n = 3, .postmaster = bu_postmaster_pid() };
    if (!(snap0 = calloc(1, sizeof(*snap0))) || !(snap1 = calloc(1, sizeof(*snap1))))
        bu_die("out of memory");

    printf("throughput on loopback (stcp: %llu MiB of DISCARD, dmsg: %llu MiB, %.0f s cap each; "
           "TCP %llu MiB; seal %llu MiB)\n",
           (unsigned long long)(THROUGHPUT_BYTES >> 20), (unsigned long long)(DMSG_BYTES >> 20), TP_MAX_SECONDS,
           (unsigned long long)(TCP_BYTES >> 20), (unsigned long long)(SEAL_BYTES >> 20));
    snprintf(stcp_id, sizeof(stcp_id), "%s", add_transport(&a, &b, "stcp"));
    visor_row(&rows[0], &a, &b, stcp_id, THROUGHPUT_BYTES);
    wait_dmsg_ready(&a, &b, md_base);
    snprintf(dmsg_id, sizeof(dmsg_id), "%s", add_transport(&a, &b, "dmsg"));
    visor_row(&rows[1], &a, &b, dmsg_id, DMSG_BYTES);
    remove_transport(&a, dmsg_id); /* the idle phase counts A's stcp transports only */
    tcp_row(&rows[2]);
    seal_row(&rows[3]);
    print_rows(rows, 4);
    printf("  (rest = this process + PostgreSQL + everything else on the machine, %ld CPUs)\n",
           sysconf(_SC_NPROCESSORS_ONLN));

    printf("visor memory with %d idle stcp transports\n", IDLE_PEERS);
    idle_transports(&a);
    th_visor_stop(&a, false);
    th_visor_stop(&b, false);
    th_stop(ms.pid, 5000);
    th_stop(md, 5000);
    th_stop(td, 5000);
    printf("bench_visor: %.1f s in all\n", (sw_mono_ns() / 1e9) - t_start);
    free(snap0);
    free(snap1);
    sw_http_client_free(http);
    return 0;
}
