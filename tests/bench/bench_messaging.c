/* bench_messaging.c — messaging on loopback with real processes: a messaging-server and a
 * messaging-discovery (fresh database) spawned through the harness, and in-process
 * messaging clients (common/msg_client.h) as the two ends of every stream:
 *
 *   1. relay throughput of one stream and of 16 parallel streams between two clients
 *      through one server (one way and both ways), next to plain loopback TCP moved by the
 *      same poll loops and ChaCha20-Poly1305 on one core for scale;
 *   2. stream open latency: sw_msg_dial through the server to a listening client, Noise KK
 *      included, without and with the discovery lookup a dial makes, 1 and 16 threads;
 *   3. idle sessions: raw sessions (common/msg_session.h, one local event_base) against a
 *      second, fresh server; its VmRSS before/after gives the memory per session;
 *   4. messaging discovery: POST of signed client entries (distinct keys, bodies signed
 *      before the clock starts) and GET entry/{pk}, at 1 and 16 keep-alive client threads.
 *
 * Every phase is bounded by a byte or request count and a time limit. Next to each figure
 * the table shows how many cores the server, the discovery, PostgreSQL, this process (both
 * clients, all their crypto) and everything else kept busy (CPU seconds from /proc/PID/stat
 * per wall second). Run through tests/run-bench.sh (it provides the PostgreSQL cluster).
 * Exits 1 when anything failed. */
#include "common/http_client.h"
#include "common/json.h"
#include "common/keys.h"
#include "common/log.h"
#include "common/msg_client.h"
#include "common/msg_entry.h"
#include "common/msg_proto.h"
#include "common/msg_session.h"
#include "tests/harness/api_client.h"
#include "tests/harness/bench_util.h"
#include "tests/harness/harness.h"
#include "tests/harness/msg_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MIB (1024.0 * 1024.0)
#define MANY 16               /* parallel streams, dialing threads, HTTP client threads */
#define MD_THREADS 16         /* messaging-discovery --threads (db pool the same) */
#define PORT_BULK 10          /* B listens here for the throughput streams */
#define PORT_DIAL 11          /* ... and here for the dial phases (an accept thread) */
#define IDLE_SESSIONS 2000    /* raw idle sessions held by the second server */
#define IDLE_IN_FLIGHT 250    /* handshakes in flight at a time (server default cap: 512) */
#define SEND_CHUNK (256 * 1024)
#define MAX_RESULTS 16
#define MAX_POSTED 4000       /* keys GET rotates over (from the POST phases) */
#define URL_MAX 256
#define WHY_MAX BU_WHY_MAX

/* ---- small helpers ----------------------------------------------------------------- */

static void set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        bu_die("fcntl: %s", strerror(errno));
}

/* ---- the bench's state ------------------------------------------------------------- */

enum { P_MS, P_MD }; /* bench.procs.pid[] and bu_cores.pid[] */

struct bench {
    char db_url[1024], md_base[64], md_log[PATH_MAX];
    pid_t md;
    /* whose CPU the phases account: P_MS the server in use, P_MD the discovery; PostgreSQL */
    struct bu_procs procs;
    struct th_msg_server ms, ms_idle;
    /* clients: A dials after looking B up in the discovery, A0 knows the server only,
     * B listens (PORT_BULK: taken by the main thread, PORT_DIAL: by the accept thread) */
    struct sw_msg_client *a, *a0, *bcl;
    struct sw_pk pk_b;
    int lfd_bulk, lfd_dial;
    pthread_t acceptor;
    atomic_bool stop_accept;
    atomic_size_t accepted;
    /* keys whose POSTed entries the GET phases read */
    pthread_mutex_t posted_mu;
    struct sw_pk posted[MAX_POSTED];
    size_t n_posted;
    const char *get_urls[MAX_POSTED];
    size_t n_get_urls;
    struct bu_result results[MAX_RESULTS]; /* dial and discovery phases */
    size_t n_results, errors;
    char first_error[WHY_MAX];
    double aead_mib_s, x25519_per_s, verify_per_s;
    double relay_srv_ms, relay_cli_ms, relay_pump_ms, relay_mib_s; /* 1 stream, one way */
};

static void note_error(struct bench *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note_error(struct bench *b, const char *fmt, ...)
{
    va_list ap;
    if (b->errors++ == 0) {
        va_start(ap, fmt);
        vsnprintf(b->first_error, sizeof(b->first_error), fmt, ap);
        va_end(ap);
    }
}

/* Value of one sample ("name" or "name{labels}") in the server's /metrics; -1 if absent. */
static double metric(const struct th_msg_server *s, const char *sample)
{
    struct sw_http_client *http = sw_http_client_new(NULL);
    struct sw_http_result res = { 0 };
    char url[128];
    double v = -1;
    size_t n = strlen(sample);

    snprintf(url, sizeof(url), "%s/metrics", s->http_base);
    if (http && sw_http_do(http, "GET", url, NULL, NULL, 0, &res, NULL) == SW_OK && res.status == 200) {
        for (const char *line = res.body; line && *line;) {
            const char *nl = strchr(line, '\n');
            if (strncmp(line, sample, n) == 0 && line[n] == ' ') {
                v = strtod(line + n + 1, NULL);
                break;
            }
            line = nl ? nl + 1 : NULL;
        }
    }
    sw_http_result_free(&res);
    sw_http_client_free(http);
    return v;
}

/* ---- daemons ----------------------------------------------------------------------- */

static void start_discovery(struct bench *b)
{
    char addr[32], threads[16], health[URL_MAX];
    uint16_t port = th_free_port();

    snprintf(b->db_url, sizeof(b->db_url), "%s", th_fresh_db("bench_msg"));
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", port);
    snprintf(threads, sizeof(threads), "%d", MD_THREADS);
    snprintf(b->md_base, sizeof(b->md_base), "http://%s", addr);
    snprintf(b->md_log, sizeof(b->md_log), "%s", th_log_path("bench_messaging-discovery.log"));
    {
        const char *argv[] = { th_bin("messaging-discovery"), "--addr", addr, "--db", b->db_url,
                               "--threads", threads, NULL };
        b->md = th_spawn(argv, NULL, b->md_log);
        snprintf(health, sizeof(health), "%s/health", b->md_base);
        if (b->md < 0 || th_wait_http(health, 20000)) {
            th_dump_log(b->md_log);
            bu_die("messaging-discovery did not come up at %s", b->md_base);
        }
    }
}

/* Starts a messaging-server with a key we wrote (so we know it); with a discovery base it
 * registers there and we wait for its entry. */
static void start_server(struct th_msg_server *s, const char *discovery, const char *max_sessions)
{
    s->max_sessions = max_sessions;
    if (!th_msg_server_init(s, "bench_messaging", discovery))
        bu_die("messaging-server %s did not come up%s", s->name,
               discovery ? " or did not register in the discovery" : "");
    s->max_sessions = NULL; /* the caller's string */
}

/* ---- clients ----------------------------------------------------------------------- */

static struct sw_msg_client *client_start(const struct bench *b, bool with_discovery, struct sw_pk *pk)
{
    struct sw_msg_client_config cfg;
    struct sw_msg_server_addr srv;
    struct sw_msg_client *c = NULL;
    struct sw_error err = { 0 };

    memset(&cfg, 0, sizeof(cfg));
    memset(&srv, 0, sizeof(srv));
    srv.pk = b->ms.kp.pk;
    snprintf(srv.address, sizeof(srv.address), "%s", b->ms.addr);
    if (sw_keypair_generate(&cfg.kp))
        bu_die("key generation failed");
    cfg.discovery_url = with_discovery ? b->md_base : NULL;
    cfg.n_servers = 1;
    cfg.servers = &srv;
    cfg.n_fixed_servers = 1;
    if (sw_msg_client_start(&cfg, &c, &err))
        bu_die("messaging client: %s", err.msg);
    if (pk)
        *pk = cfg.kp.pk;
    sw_keypair_wipe(&cfg.kp);
    if (sw_msg_client_wait_ready(c, 15000))
        bu_die("a messaging client did not get ready");
    return c;
}

static void *acceptor_main(void *arg)
{
    struct bench *b = arg;
    while (!atomic_load(&b->stop_accept)) {
        struct sw_error err = { 0 };
        struct sw_pk remote;
        uint16_t rport;
        int fd = -1;
        int rc = sw_msg_accept(b->lfd_dial, 100, &fd, &remote, &rport, &err);
        if (rc == SW_OK) {
            close(fd);
            atomic_fetch_add(&b->accepted, 1);
        } else if (rc != SW_ETIMEDOUT) {
            fprintf(stderr, "bench_messaging: accept: %s\n", err.msg);
            break;
        }
    }
    return NULL;
}

static void start_clients(struct bench *b)
{
    struct sw_error err = { 0 };
    b->bcl = client_start(b, true, &b->pk_b);
    b->a = client_start(b, true, NULL);
    b->a0 = client_start(b, false, NULL);
    if (sw_msg_listen(b->bcl, PORT_BULK, &b->lfd_bulk, &err) ||
        sw_msg_listen(b->bcl, PORT_DIAL, &b->lfd_dial, &err))
        bu_die("listen: %s", err.msg);
    if (pthread_create(&b->acceptor, NULL, acceptor_main, b))
        bu_die("cannot start the accept thread");
}

static void stop_clients(struct bench *b)
{
    atomic_store(&b->stop_accept, true);
    pthread_join(b->acceptor, NULL);
    close(b->lfd_bulk);
    close(b->lfd_dial);
    sw_msg_client_stop(b->a);
    sw_msg_client_stop(b->a0);
    sw_msg_client_stop(b->bcl);
}

/* ---- 1. throughput: two poll loops moving bytes over pairs of stream fds ------------ */

static uint8_t g_payload[SEND_CHUNK];

struct flow {
    int fd;
    uint64_t to_send, sent, recvd;
    bool wr_done, rd_eof, failed;
};

/* One thread serving all flows of one side: sends to_send bytes on each (then
 * shutdown(SHUT_WR)) and reads until EOF. Stops sending at send_deadline. */
struct pump {
    struct flow *flows;
    size_t n;
    int64_t send_deadline, hard_deadline, end_ns;
    double cpu_s; /* this thread's CPU time */
    char why[WHY_MAX];
};

static double thread_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void flow_shut(struct flow *f)
{
    shutdown(f->fd, SHUT_WR);
    f->wr_done = true;
}

static void flow_fail(struct pump *p, struct flow *f, const char *what, int e)
{
    if (!p->why[0])
        snprintf(p->why, sizeof(p->why), "%s: %s", what, strerror(e));
    f->failed = f->wr_done = f->rd_eof = true;
}

static void flow_read(struct pump *p, struct flow *f, uint8_t *scratch)
{
    for (int rep = 0; rep < 4; rep++) {
        ssize_t n = recv(f->fd, scratch, SEND_CHUNK, 0);
        if (n > 0) {
            f->recvd += (uint64_t)n;
        } else if (n == 0) {
            f->rd_eof = true;
            return;
        } else if (errno == EINTR) {
            continue;
        } else {
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                flow_fail(p, f, "recv", errno);
            return;
        }
    }
}

static void flow_write(struct pump *p, struct flow *f)
{
    uint64_t left = f->to_send - f->sent;
    ssize_t n = send(f->fd, g_payload, left < SEND_CHUNK ? (size_t)left : SEND_CHUNK, MSG_NOSIGNAL);
    if (n > 0) {
        f->sent += (uint64_t)n;
        if (f->sent == f->to_send)
            flow_shut(f);
    } else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        flow_fail(p, f, "send", errno);
    }
}

static void *pump_main(void *arg)
{
    struct pump *p = arg;
    struct pollfd *pfd = calloc(p->n, sizeof(*pfd));
    size_t *idx = calloc(p->n, sizeof(*idx));
    uint8_t *scratch = malloc(SEND_CHUNK);
    double cpu0 = thread_cpu_s();

    if (!pfd || !idx || !scratch)
        bu_die("out of memory");
    for (size_t i = 0; i < p->n; i++)
        if (p->flows[i].to_send == 0)
            flow_shut(&p->flows[i]);
    for (;;) {
        int64_t now = sw_mono_ns();
        size_t k = 0;
        for (size_t i = 0; i < p->n; i++) {
            struct flow *f = &p->flows[i];
            if (!f->wr_done && now >= p->send_deadline)
                flow_shut(f);
            if (f->wr_done && f->rd_eof)
                continue;
            pfd[k] = (struct pollfd){ .fd = f->fd,
                                      .events = (short)((f->wr_done ? 0 : POLLOUT) | (f->rd_eof ? 0 : POLLIN)) };
            idx[k++] = i;
        }
        if (k == 0)
            break;
        if (now >= p->hard_deadline) {
            for (size_t j = 0; j < k; j++)
                flow_fail(p, &p->flows[idx[j]], "streams did not finish in time", ETIMEDOUT);
            break;
        }
        if (poll(pfd, (nfds_t)k, 100) < 0) {
            if (errno == EINTR)
                continue;
            bu_die("poll: %s", strerror(errno));
        }
        for (size_t j = 0; j < k; j++) {
            struct flow *f = &p->flows[idx[j]];
            short re = pfd[j].revents;
            if ((re & (POLLIN | POLLHUP | POLLERR)) && !f->rd_eof)
                flow_read(p, f, scratch);
            if ((re & (POLLOUT | POLLERR)) && !f->wr_done)
                flow_write(p, f);
        }
    }
    p->end_ns = sw_mono_ns();
    p->cpu_s = thread_cpu_s() - cpu0;
    free(pfd);
    free(idx);
    free(scratch);
    return NULL;
}

/* n relayed streams: A0 dials B:PORT_BULK, the main thread accepts them on B. */
static void relay_pairs(struct bench *b, size_t n, int *fa, int *fb)
{
    for (size_t i = 0; i < n; i++) {
        struct sw_error err = { 0 };
        int refusal = 0;
        if (sw_msg_dial(b->a0, &b->pk_b, PORT_BULK, 10000, &fa[i], &refusal, &err))
            bu_die("dial for the throughput streams: %s", err.msg);
    }
    for (size_t i = 0; i < n; i++) {
        struct sw_error err = { 0 };
        struct sw_pk remote;
        uint16_t rport;
        if (sw_msg_accept(b->lfd_bulk, 10000, &fb[i], &remote, &rport, &err))
            bu_die("accept for the throughput streams: %s", err.msg);
    }
}

static void print_flow_header(void)
{
    printf("%-36s %3s %6s %6s %8s  %-20s  %-s\n", "phase", "str", "MiB", "secs", "MiB/s",
           "CPU ms per MiB", "cores busy");
    printf("%-36s %3s %6s %6s %8s  %-20s  %-s\n", "", "", "", "", "", "srv / clients/ pumps",
           "srv / clients / pumps / other");
    printf("%-36s %3s %6s %6s %8s  %-20s  %-s\n", "------------------------------------", "---",
           "------", "------", "--------", "--------------------", "-----------------------------");
}

/* Moves ab bytes per stream from the a ends to the b ends and ba the other way, each
 * direction bounded by max_s; prints one row and closes the fds. The MiB figure counts
 * bytes received, both directions together. */
static void run_flows(struct bench *b, const char *name, int *fa, int *fb, size_t n, uint64_t ab,
                      uint64_t ba, double max_s)
{
    struct flow *flows = calloc(2 * n, sizeof(*flows));
    struct pump pa = { 0 }, pb = { 0 };
    struct bu_cpu_snap *snaps = calloc(2, sizeof(*snaps));
    uint64_t sent_ab = 0, sent_ba = 0, got_ab = 0, got_ba = 0;
    pthread_t ta, tb;
    struct bu_cores c;
    double secs, mib, pumps, loops, per;
    int64_t t0;

    if (!flows || !snaps)
        bu_die("out of memory");
    for (size_t i = 0; i < n; i++) {
        set_nonblock(fa[i]);
        set_nonblock(fb[i]);
        flows[i] = (struct flow){ .fd = fa[i], .to_send = ab };
        flows[n + i] = (struct flow){ .fd = fb[i], .to_send = ba };
    }
    pa.flows = flows;
    pb.flows = flows + n;
    pa.n = pb.n = n;
    bu_cpu_snapshot(&snaps[0], &b->procs);
    t0 = sw_mono_ns();
    pa.send_deadline = pb.send_deadline = t0 + (int64_t)(max_s * 1e9);
    pa.hard_deadline = pb.hard_deadline = pa.send_deadline + 15 * (int64_t)1000000000;
    if (pthread_create(&ta, NULL, pump_main, &pa) || pthread_create(&tb, NULL, pump_main, &pb))
        bu_die("cannot start pump threads");
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    secs = (double)((pa.end_ns > pb.end_ns ? pa.end_ns : pb.end_ns) - t0) / 1e9;
    bu_cpu_snapshot(&snaps[1], &b->procs);
    bu_cores_between(&snaps[0], &snaps[1], b->procs.n, secs, &c);
    for (size_t i = 0; i < n; i++) {
        sent_ab += flows[i].sent;
        got_ab += flows[n + i].recvd;
        sent_ba += flows[n + i].sent;
        got_ba += flows[i].recvd;
        close(fa[i]);
        close(fb[i]);
    }
    mib = (double)(got_ab + got_ba) / MIB;
    /* this process = the two pump threads + the clients' loop threads (the rest idles) */
    pumps = (pa.cpu_s + pb.cpu_s) / (secs > 0 ? secs : 1);
    loops = c.self > pumps ? c.self - pumps : 0;
    per = mib > 0 ? secs * 1e3 / mib : 0;
    printf("%-36s %3zu %6.0f %6.2f %8.1f  %5.2f / %5.2f / %5.2f  %4.2f / %4.2f / %4.2f / %4.2f\n", name, n,
           mib, secs, secs > 0 ? mib / secs : 0, c.pid[P_MS] * per, loops * per, pumps * per,
           c.pid[P_MS], loops, pumps, c.other);
    if (n == 1 && ba == 0 && c.pid[P_MS] > 0 && !b->relay_srv_ms) {
        b->relay_srv_ms = c.pid[P_MS] * per;
        b->relay_cli_ms = loops * per;
        b->relay_pump_ms = pumps * per;
        b->relay_mib_s = secs > 0 ? mib / secs : 0;
    }
    if (pa.why[0] || pb.why[0])
        note_error(b, "%s: %s", name, pa.why[0] ? pa.why : pb.why);
    else if (got_ab != sent_ab || got_ba != sent_ba)
        note_error(b, "%s: sent %" PRIu64 "/%" PRIu64 " bytes, received %" PRIu64 "/%" PRIu64, name,
                   sent_ab, sent_ba, got_ab, got_ba);
    free(flows);
    free(snaps);
}

/* ChaCha20-Poly1305 (IETF, as common/noise.c) sealing full 65496-byte stream records. */
static double aead_mib_per_s(void)
{
    enum { REC = SW_MSG_MAX_DATA - 2 - 16 };
    static uint8_t in[REC], out[REC + 16];
    uint8_t key[crypto_aead_chacha20poly1305_IETF_KEYBYTES] = { 1 };
    uint8_t nonce[crypto_aead_chacha20poly1305_IETF_NPUBBYTES] = { 0 };
    int64_t t0 = sw_mono_ns(), t;
    uint64_t n = 0;

    randombytes_buf(in, sizeof(in));
    do {
        for (int i = 0; i < 16; i++, n++) {
            memcpy(nonce + 4, &n, sizeof(n));
            crypto_aead_chacha20poly1305_ietf_encrypt(out, NULL, in, REC, NULL, 0, NULL, nonce, key);
        }
        t = sw_mono_ns();
    } while (t - t0 < 1000000000);
    return (double)n * REC / MIB / ((double)(t - t0) / 1e9);
}

static void section_throughput(struct bench *b)
{
    const uint64_t relay_total = 256ull << 20, tcp_total = 4096ull << 20;
    int fa[MANY], fb[MANY];

    b->aead_mib_s = aead_mib_per_s();
    printf("1. Relay throughput: client A0 -> messaging-server -> client B on one stream and on %d parallel\n"
           "   streams (256 MiB per direction in all, or 6 s), against plain loopback TCP moved by the same\n"
           "   two poll loops (one thread per side writing and reading all its fds, 256 KiB per send).\n"
           "   MiB counts received bytes, both directions together. cores busy: srv = messaging-server,\n"
           "   clients = this process minus the pumps (the sw_msg_client loop threads, all their crypto),\n"
           "   pumps = the two poll loops, other = the rest of the machine (loopback TCP: kernel softirq\n"
           "   work not charged to a process). ChaCha20-Poly1305 on one core seals %.0f MiB/s of 64 KiB\n"
           "   records; every relayed byte is sealed and opened 3 times (A0: stream KK + session,\n"
           "   server: open + seal, B: session + KK).\n\n",
           MANY, b->aead_mib_s);
    print_flow_header();
    b->procs.pid[P_MS] = b->ms.pid;

    bu_tcp_pair(&fa[0], &fb[0]);
    run_flows(b, "loopback TCP, one way", fa, fb, 1, tcp_total, 0, 1.5);
    bu_tcp_pair(&fa[0], &fb[0]);
    run_flows(b, "loopback TCP, both ways", fa, fb, 1, tcp_total, tcp_total, 1.5);
    for (size_t i = 0; i < MANY; i++)
        bu_tcp_pair(&fa[i], &fb[i]);
    run_flows(b, "loopback TCP, one way", fa, fb, MANY, tcp_total / MANY, 0, 1.5);
    for (size_t i = 0; i < MANY; i++)
        bu_tcp_pair(&fa[i], &fb[i]);
    run_flows(b, "loopback TCP, both ways", fa, fb, MANY, tcp_total / MANY, tcp_total / MANY, 1.5);

    relay_pairs(b, 1, fa, fb);
    run_flows(b, "relayed stream, one way", fa, fb, 1, relay_total, 0, 6);
    relay_pairs(b, 1, fa, fb);
    run_flows(b, "relayed stream, both ways", fa, fb, 1, relay_total, relay_total, 6);
    relay_pairs(b, MANY, fa, fb);
    run_flows(b, "relayed streams, one way", fa, fb, MANY, relay_total / MANY, 0, 6);
    relay_pairs(b, MANY, fa, fb);
    run_flows(b, "relayed streams, both ways", fa, fb, MANY, relay_total / MANY, relay_total / MANY, 6);
    printf("\n");
}

/* ---- request phases (dials, discovery), after bench_td ------------------------------ */

/* A phase of this bench: the runner's part and what the callbacks need. */
struct phase {
    struct bu_phase bu;
    struct bench *b;
    struct sw_msg_client *client; /* dial phases */
};

/* Per-thread state (bu_worker.state). */
struct worker {
    /* POST: one key per request, entries signed in advance */
    struct sw_pk *pks;
    char **bodies;
    char url[URL_MAX];
    /* raw verification */
    struct sw_keypair kp;
    uint8_t msg[SW_MSG_CANON_MAX];
    size_t msg_len;
    struct sw_sig sig;
};

static const struct phase *phase_of(const struct bu_worker *bw)
{
    return (const struct phase *)bw->ph;
}

static int prepare_none(struct bu_worker *w, char *why)
{
    (void)w;
    (void)why;
    return 0;
}

static int request_dial(struct bu_worker *bw, size_t i, char *why)
{
    const struct phase *ph = phase_of(bw);
    struct sw_error err = { 0 };
    int fd = -1, refusal = 0, rc;
    (void)i;
    rc = sw_msg_dial(ph->client, &ph->b->pk_b, PORT_DIAL, 10000, &fd, &refusal, &err);
    if (rc) {
        snprintf(why, WHY_MAX, "dial: %.250s (refusal %d)", err.msg, refusal);
        return -1;
    }
    close(fd);
    return 0;
}

/* A client entry of a fresh key delegating to the bench's server, as a client publishes. */
static char *build_entry(const struct bench *b, struct sw_pk *pk_out)
{
    uint64_t unix_ms = (uint64_t)sw_unix_ms();
    struct sw_keypair kp;
    struct sw_msg_entry e;
    struct json_object *o;
    char *body = NULL;

    if (sw_keypair_generate(&kp))
        return NULL;
    memset(&e, 0, sizeof(e));
    snprintf(e.version, sizeof(e.version), "%s", SW_MSG_VERSION);
    e.sequence = unix_ms;
    e.timestamp = unix_ms / 1000;
    e.static_pk = kp.pk;
    e.has_client = true;
    e.n_delegated = 1;
    e.delegated[0] = b->ms.kp.pk;
    sw_msg_entry_sign(&e, &kp);
    if ((o = sw_msg_entry_to_json(&e)))
        body = strdup(sw_json_compact(o, NULL));
    json_object_put(o);
    *pk_out = kp.pk;
    sw_keypair_wipe(&kp);
    return body;
}

static int prepare_post(struct bu_worker *bw, char *why)
{
    struct worker *w = bw->state;
    const struct bench *b = phase_of(bw)->b;
    if (bu_prepare_http(bw, why))
        return -1;
    snprintf(w->url, sizeof(w->url), "%s/messaging-discovery/entry/", b->md_base);
    w->pks = calloc(bw->quota ? bw->quota : 1, sizeof(*w->pks));
    w->bodies = calloc(bw->quota ? bw->quota : 1, sizeof(*w->bodies));
    if (!w->pks || !w->bodies)
        goto oom;
    for (size_t i = 0; i < bw->quota; i++)
        if (!(w->bodies[i] = build_entry(b, &w->pks[i])))
            goto oom;
    return 0;
oom:
    snprintf(why, WHY_MAX, "cannot build entry bodies");
    return -1;
}

static int request_post(struct bu_worker *bw, size_t i, char *why)
{
    struct worker *w = bw->state;
    struct sw_http_result res = { 0 };
    struct sw_error err = { 0 };
    const char *body = w->bodies[i];
    struct bench *b = phase_of(bw)->b;
    int rc = sw_http_do(bw->http, "POST", w->url, NULL, body, strlen(body), &res, &err);
    rc = bu_http_answer(rc, &err, &res, 200, why);
    sw_http_result_free(&res);
    if (rc == 0) {
        pthread_mutex_lock(&b->posted_mu);
        if (b->n_posted < MAX_POSTED)
            b->posted[b->n_posted++] = w->pks[i];
        pthread_mutex_unlock(&b->posted_mu);
    }
    return rc;
}

/* What the discovery does for every POST: verify the entry's signature over its
 * canonical bytes (a client entry with one delegated server). */
static int prepare_verify(struct bu_worker *bw, char *why)
{
    struct worker *w = bw->state;
    struct sw_msg_entry e;
    memset(&e, 0, sizeof(e));
    if (sw_keypair_generate(&w->kp)) {
        snprintf(why, WHY_MAX, "key generation failed");
        return -1;
    }
    snprintf(e.version, sizeof(e.version), "%s", SW_MSG_VERSION);
    e.sequence = 1;
    e.timestamp = (uint64_t)(sw_unix_ms() / 1000);
    e.static_pk = w->kp.pk;
    e.has_client = true;
    e.n_delegated = 1;
    randombytes_buf(e.delegated[0].b, sizeof(e.delegated[0].b));
    w->msg_len = sw_msg_entry_canonical(&e, w->msg, sizeof(w->msg));
    sw_sign(&w->kp, w->msg, w->msg_len, &w->sig);
    return 0;
}

static int request_verify(struct bu_worker *bw, size_t i, char *why)
{
    const struct worker *w = bw->state;
    (void)i;
    if (crypto_sign_verify_detached(w->sig.b, w->msg, w->msg_len, w->kp.pk.b) != 0) {
        snprintf(why, WHY_MAX, "signature did not verify");
        return -1;
    }
    return 0;
}

/* One X25519 scalar multiplication: the unit of the Noise handshakes' cost. */
static int request_x25519(struct bu_worker *bw, size_t i, char *why)
{
    struct worker *w = bw->state;
    uint8_t q[crypto_scalarmult_BYTES];
    (void)why;
    memcpy(w->msg + 32, &i, sizeof(i)); /* a different scalar each time */
    if (crypto_scalarmult(q, w->msg + 32, w->msg) != 0)
        return 0; /* an all-zero result: the multiplication was still done */
    w->msg[40] ^= q[0]; /* depend on the result */
    return 0;
}

static int prepare_x25519(struct bu_worker *bw, char *why)
{
    struct worker *w = bw->state;
    (void)why;
    randombytes_buf(w->msg + 32, 32);
    crypto_scalarmult_base(w->msg, w->msg + 32);
    return 0;
}

static void free_worker(struct bu_worker *bw)
{
    struct worker *w = bw->state;
    if (w->bodies)
        for (size_t i = 0; i < bw->quota; i++)
            free(w->bodies[i]);
    free(w->bodies);
    free(w->pks);
    sw_keypair_wipe(&w->kp);
}

#define NAME_W 44

static void print_header(const char *unit)
{
    bu_print_header(NAME_W, unit, "per sec", "cores busy: ms / md / pg / bench / other", 41);
}

/* Runs one phase: prepare (untimed), then requests until the count or the time is used. */
static struct bu_result *run_phase(struct phase *ph)
{
    struct bench *b = ph->b;
    struct bu_result *res = &b->results[b->n_results++];

    ph->bu.state_size = sizeof(struct worker);
    ph->bu.release = free_worker;
    ph->bu.procs = &b->procs;
    bu_run_phase(&ph->bu, res);
    bu_print_result(res, NAME_W, b->procs.n);
    return res;
}

/* ---- 2. stream open latency --------------------------------------------------------- */

#define DIAL_PHASE(label, n, max, secs, cl)                                                    \
    { .bu = { .name = label, .threads = n, .max_requests = max, .max_seconds = secs,          \
              .prepare = prepare_none, .request = request_dial },                            \
      .b = b, .client = cl }

static void section_dial(struct bench *b)
{
    struct phase x = { .bu = { .name = "X25519 scalar multiplication (1 core)", .threads = 1,
                               .max_requests = 100000, .max_seconds = 0.5,
                               .prepare = prepare_x25519, .request = request_x25519 },
                       .b = b };
    struct phase phases[] = {
        DIAL_PHASE("dial, server known (A0: no lookup)", 1, 500, 5, b->a0),
        DIAL_PHASE("dial, server known (A0: no lookup)", MANY, MANY * 150, 3, b->a0),
        DIAL_PHASE("dial + discovery lookup of B (A)", 1, 500, 5, b->a),
        DIAL_PHASE("dial + discovery lookup of B (A)", MANY, MANY * 150, 3, b->a),
    };
    struct bu_result *rx;
    size_t before = atomic_load(&b->accepted), dials = 0;

    printf("2. Stream open: sw_msg_dial(B:%d) until the stream fd is returned: OPEN -> server -> B,\n"
           "   ACCEPT back, then Noise KK msg1/msg2 through the server (4 one-way trips over the relay;\n"
           "   per dial each side does 4 X25519 + 1 ephemeral key). B's accept thread takes and closes\n"
           "   every stream, the dialer closes its fd at once. With a discovery URL every dial first GETs\n"
           "   entry/{B} on a new HTTP connection (the dialing thread's own lookup).\n\n", PORT_DIAL);
    print_header("dials");
    rx = run_phase(&x);
    b->x25519_per_s = bu_cpu_us_per_op(rx) > 0 ? 1e6 / bu_cpu_us_per_op(rx) : 0;
    for (size_t i = 0; i < sizeof(phases) / sizeof(phases[0]); i++) {
        struct bu_result *r = run_phase(&phases[i]);
        dials += r->requests - r->errors;
    }
    /* the accept thread may still be taking the last streams */
    for (int k = 0; k < 100 && atomic_load(&b->accepted) - before < dials; k++)
        th_sleep_ms(10);
    printf("  check:   %zu dials succeeded, B accepted %zu streams\n\n", dials,
           atomic_load(&b->accepted) - before);
    if (atomic_load(&b->accepted) - before != dials)
        note_error(b, "B accepted %zu streams for %zu dials", atomic_load(&b->accepted) - before, dials);
}

/* ---- 3. idle sessions --------------------------------------------------------------- */

struct idle;

struct idle_slot {
    struct idle *I;
    struct sw_msg_session *s;
};

struct idle {
    struct event_base *base;
    struct idle_slot *slots;
    size_t n, ready, closed, failed;
    bool stopping;
    char why[WHY_MAX];
};

/* The loop never breaks from a callback: the caller runs it in short slices and looks at
 * the counters in between. That matters twice: on_ready fires once message 3 is queued
 * (it is written on a later pass), and libevent 2.1 closes a freed bufferevent's socket
 * from a finalizer that also runs on a later pass. */
static void idle_on_ready(struct sw_msg_session *s, void *ctx)
{
    struct idle_slot *sl = ctx;
    (void)s;
    sl->I->ready++;
}

static int idle_on_frame(struct sw_msg_session *s, const struct sw_msg_frame *f, void *ctx)
{
    (void)s;
    (void)f;
    (void)ctx;
    return SW_OK;
}

static void idle_on_closed(struct sw_msg_session *s, enum sw_msg_close_reason reason, int goaway_code,
                           const char *why, void *ctx)
{
    struct idle_slot *sl = ctx;
    struct idle *I = sl->I;
    (void)s;
    sl->s = NULL;
    I->closed++;
    if (!I->stopping) {
        I->failed++;
        if (!I->why[0])
            snprintf(I->why, sizeof(I->why), "session closed (reason %d, goaway %d): %.200s", (int)reason,
                     goaway_code, why ? why : "");
    }
}

/* Runs the loop for ms milliseconds. */
static void idle_loop_for(struct idle *I, int ms)
{
    struct timeval tv = { 0, ms * 1000 };
    event_base_loopexit(I->base, &tv);
    event_base_loop(I->base, 0);
}

/* Runs the loop until the server's ms_sessions equals want (10 s at most); the value seen
 * last (-1 when /metrics did not answer). */
static double idle_wait_server(struct idle *I, const struct th_msg_server *s, double want)
{
    int64_t deadline = sw_mono_ns() + 10 * (int64_t)1000000000;
    double v = -1;
    while ((v = metric(s, "ms_sessions")) != want && sw_mono_ns() < deadline)
        idle_loop_for(I, 20);
    return v;
}

static void section_idle(struct bench *b, size_t n)
{
    const struct sw_msg_session_callbacks cb = { .on_ready = idle_on_ready, .on_frame = idle_on_frame,
                                                 .on_closed = idle_on_closed };
    struct sw_msg_session_opts opts = { .handshake_timeout_ms = 15000 };
    struct idle I = { 0 };
    struct sw_keypair *kps = calloc(n, sizeof(*kps));
    struct bu_cpu_snap *snaps = calloc(2, sizeof(*snaps));
    long hwm, rss0, rss1, rss2;
    double secs, seen;
    struct bu_cores c;
    char max_sessions[24];
    int64_t t0;

    if (!kps || !snaps || !(I.slots = calloc(n, sizeof(*I.slots))) || !(I.base = event_base_new()))
        bu_die("out of memory");
    I.n = n;
    for (size_t i = 0; i < n; i++)
        if (sw_keypair_generate(&kps[i]))
            bu_die("key generation failed");
    snprintf(max_sessions, sizeof(max_sessions), "%zu", n + 16);
    start_server(&b->ms_idle, NULL, max_sessions);
    b->procs.pid[P_MS] = b->ms_idle.pid;
    th_sleep_ms(200);
    bu_proc_mem(b->ms_idle.pid, &hwm, &rss0);

    bu_cpu_snapshot(&snaps[0], &b->procs);
    t0 = sw_mono_ns();
    for (size_t start = 0; start < n && !I.failed && !I.why[0]; start += IDLE_IN_FLIGHT) {
        size_t end = start + IDLE_IN_FLIGHT < n ? start + IDLE_IN_FLIGHT : n;
        for (size_t i = start; i < end; i++) {
            struct sw_error err = { 0 };
            I.slots[i].I = &I;
            if (sw_msg_session_connect(I.base, b->ms_idle.addr, &kps[i], &b->ms_idle.kp.pk, &opts, &cb,
                                       &I.slots[i], &I.slots[i].s, &err))
                bu_die("session connect: %s", err.msg);
        }
        while (I.ready + I.failed < end && sw_mono_ns() - t0 < 60 * (int64_t)1000000000)
            idle_loop_for(&I, 5);
        if (I.ready + I.failed < end && !I.why[0])
            snprintf(I.why, sizeof(I.why), "handshakes timed out (%zu ready)", I.ready);
    }
    seen = idle_wait_server(&I, &b->ms_idle, (double)n);
    secs = (double)(sw_mono_ns() - t0) / 1e9;
    bu_cpu_snapshot(&snaps[1], &b->procs);
    bu_cores_between(&snaps[0], &snaps[1], b->procs.n, secs, &c);
    th_sleep_ms(200);
    bu_proc_mem(b->ms_idle.pid, &hwm, &rss1);

    printf("3. Idle sessions: %zu raw sessions (Noise XK handshake, then silence) from one event_base in\n"
           "   this process to a second, fresh messaging-server (--max-sessions %s), %d handshakes in flight\n"
           "   at a time. Memory = the server's VmRSS (user space only; kernel socket buffers not included).\n\n",
           n, max_sessions, IDLE_IN_FLIGHT);
    printf("  sessions up:    %zu of %zu (server reports ms_sessions %.0f)\n", I.ready, n, seen);
    printf("  handshakes:     %.2f s until the server counted all: %.0f sessions/s   cores busy: ms %.2f / bench %.2f / other %.2f\n",
           secs, secs > 0 ? (double)I.ready / secs : 0, c.pid[P_MS], c.self, c.other);
    printf("  server VmRSS:   %.1f MiB before, %.1f MiB with %zu sessions (+%.1f MiB), VmHWM %.1f MiB\n",
           (double)rss0 / 1024.0, (double)rss1 / 1024.0, I.ready, (double)(rss1 - rss0) / 1024.0,
           (double)hwm / 1024.0);
    printf("  per session:    %.2f KiB\n", I.ready ? (double)(rss1 - rss0) / (double)I.ready : 0);
    if (I.ready != n || seen != (double)n)
        note_error(b, "idle sessions: %zu of %zu up, server counts %.0f: %s", I.ready, n, seen, I.why);

    /* close them all and let every on_closed run before the base goes */
    I.stopping = true;
    for (size_t i = 0; i < n; i++)
        if (I.slots[i].s)
            sw_msg_session_close(I.slots[i].s);
    while (I.closed < n)
        idle_loop_for(&I, 5);
    seen = idle_wait_server(&I, &b->ms_idle, 0);
    bu_proc_mem(b->ms_idle.pid, &hwm, &rss2);
    printf("  after closing:  server VmRSS %.1f MiB, ms_sessions %.0f\n\n", (double)rss2 / 1024.0, seen);
    if (seen != 0)
        note_error(b, "idle sessions: the server still counts %.0f sessions after all were closed", seen);
    th_stop(b->ms_idle.pid, 5000);
    b->procs.pid[P_MS] = b->ms.pid;
    for (size_t i = 0; i < n; i++)
        sw_keypair_wipe(&kps[i]);
    event_base_free(I.base);
    free(I.slots);
    free(kps);
    free(snaps);
}

/* ---- 4. messaging discovery ---------------------------------------------------------- */

static void section_discovery(struct bench *b)
{
    struct phase raw = { .bu = { .name = "Ed25519 verify of an entry (1 core)", .threads = 1,
                                 .max_requests = 200000, .max_seconds = 1,
                                 .prepare = prepare_verify, .request = request_verify },
                         .b = b };
    struct phase posts[] = {
        { .bu = { .name = "POST entry/ (client entry, new key)", .threads = 1, .max_requests = 8000,
                  .max_seconds = 5, .prepare = prepare_post, .request = request_post },
          .b = b },
        { .bu = { .name = "POST entry/ (client entry, new key)", .threads = MANY,
                  .max_requests = MANY * 1000, .max_seconds = 5, .prepare = prepare_post,
                  .request = request_post },
          .b = b },
    };
    size_t first = b->n_results;
    struct bu_result *rv;

    printf("4. Messaging discovery (--threads %d, db pool %d): POST of signed client entries, one new key per\n"
           "   request, bodies signed before the clock starts; GET entry/{pk} rotating over %d keys posted\n"
           "   in the POST phases; every client thread has its own keep-alive connection.\n\n",
           MD_THREADS, MD_THREADS, MAX_POSTED);
    print_header("requests");
    rv = run_phase(&raw);
    b->verify_per_s = bu_cpu_us_per_op(rv) > 0 ? 1e6 / bu_cpu_us_per_op(rv) : 0;
    for (size_t i = 0; i < sizeof(posts) / sizeof(posts[0]); i++)
        run_phase(&posts[i]);

    for (size_t i = 0; i < b->n_posted; i++) {
        char hex[SW_PK_HEX_LEN + 1], *url = malloc(URL_MAX);
        if (!url)
            bu_die("out of memory");
        sw_pk_to_hex(&b->posted[i], hex);
        snprintf(url, URL_MAX, "%s/messaging-discovery/entry/%s", b->md_base, hex);
        b->get_urls[b->n_get_urls++] = url;
    }
    if (b->n_get_urls == 0)
        bu_die("no entry was posted");
    {
        struct phase gets[] = {
            { .bu = { .name = "GET entry/{pk}", .threads = 1, .max_requests = 200000,
                      .max_seconds = 3, .targets = b->get_urls, .n_targets = b->n_get_urls,
                      .prepare = bu_prepare_http, .request = bu_request_get },
              .b = b },
            { .bu = { .name = "GET entry/{pk}", .threads = MANY, .max_requests = 200000,
                      .max_seconds = 3, .targets = b->get_urls, .n_targets = b->n_get_urls,
                      .prepare = bu_prepare_http, .request = bu_request_get },
              .b = b },
        };
        for (size_t i = 0; i < sizeof(gets) / sizeof(gets[0]); i++)
            run_phase(&gets[i]);
    }

    printf("\n%-44s %3s %9s %9s %9s\n", "CPU per request (us)", "thr", "md", "pg", "bench");
    for (size_t i = first + 1; i < b->n_results; i++) {
        const struct bu_result *r = &b->results[i];
        double us = r->requests ? r->seconds * 1e6 / (double)r->requests : 0;
        printf("%-44s %3u %9.1f %9.1f %9.1f\n", r->name, r->threads, r->cores.pid[P_MD] * us,
               r->cores.pg * us, r->cores.self * us);
    }
    printf("\n");
}

/* ---- main -------------------------------------------------------------------------- */

/* Idle sessions the raised RLIMIT_NOFILE leaves room for, at most want. */
static size_t raise_fd_limit(size_t want)
{
    rlim_t cur = bu_raise_fd_limit();
    if (cur == 0)
        return 1024;
    /* both ends of every session: ours here, the server's there (it inherits the limit) */
    if (cur != RLIM_INFINITY && cur < want + 256)
        return cur > 512 ? (size_t)cur - 256 : 256;
    return want;
}

static void print_intro(const struct bench *b, size_t fd_limit_sessions)
{
    printf("messaging benchmark (%ld CPUs)\n", sysconf(_SC_NPROCESSORS_ONLN));
    printf("  server:    %s, one relay thread, registered in the discovery\n", th_bin("messaging-server"));
    printf("  discovery: %s --threads %d, fresh database in the throwaway PostgreSQL cluster\n",
           th_bin("messaging-discovery"), MD_THREADS);
    printf("  clients:   three sw_msg_client in this process, one session each to the server: B listens,\n"
           "             A dials after looking B up in the discovery, A0 knows only the server (no lookups)\n");
    printf("  limits:    RLIMIT_NOFILE raised to the hard limit (room for %zu idle sessions)\n", fd_limit_sessions);
    printf("  cores busy = CPU seconds per wall second of messaging-server / messaging-discovery /\n"
           "             PostgreSQL / this process (all clients) / everything else (> 0.1: noisy figures)\n\n");
}

static void print_footer(struct bench *b)
{
    long hwm, rss;
    double relayed = metric(&b->ms, "ms_bytes_relayed_total");
    double opened = metric(&b->ms, "ms_streams_opened_total");
    double late = metric(&b->ms, "ms_late_frames_total");

    bu_proc_mem(b->ms.pid, &hwm, &rss);
    printf("messaging-server: %.0f streams opened, %.1f MiB of DATA relayed, %.0f late frames dropped;\n"
           "                  peak RSS (VmHWM) %.1f MiB, VmRSS now %.1f MiB\n",
           opened, relayed / MIB, late, (double)hwm / 1024.0, (double)rss / 1024.0);
    bu_proc_mem(b->md, &hwm, &rss);
    printf("messaging-discovery: peak RSS (VmHWM) %.1f MiB (VmRSS now %.1f MiB)\n", (double)hwm / 1024.0,
           (double)rss / 1024.0);
    printf("one core: ChaCha20-Poly1305 %.0f MiB/s, X25519 %.0f/s, Ed25519 verify %.0f/s\n", b->aead_mib_s,
           b->x25519_per_s, b->verify_per_s);
    if (b->relay_mib_s > 0 && b->aead_mib_s > 0) {
        double pass = 1e3 / b->aead_mib_s, sum = b->relay_srv_ms + b->relay_cli_ms + b->relay_pump_ms;
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        printf("relay CPU per MiB (1 stream, one way, %.0f MiB/s): server %.2f ms (its 2 AEAD passes: %.2f),\n"
               "  clients %.2f ms (4 passes: %.2f), pumps %.2f ms; %.2f ms in all = %.0f MiB/s if all %ld cores\n"
               "  did nothing else\n",
               b->relay_mib_s, b->relay_srv_ms, 2 * pass, b->relay_cli_ms, 4 * pass, b->relay_pump_ms, sum,
               sum > 0 ? 1e3 * (double)cpus / sum : 0, cpus);
    }
    for (size_t i = 0; i < b->n_results; i++)
        if (b->results[i].errors) {
            b->errors += b->results[i].errors;
            printf("errors in \"%s\" x%u: %zu, first: %s\n", b->results[i].name, b->results[i].threads,
                   b->results[i].errors, b->results[i].first_error);
        }
    if (b->first_error[0])
        printf("first failure: %s\n", b->first_error);
    printf("errors: %zu\n", b->errors);
}

int main(void)
{
    static struct bench b;
    size_t idle_n;
    const char *lvl = getenv("SKYWIRE_LOG_LEVEL");

    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN); /* also inherited by the daemons, which ignore it anyway */
    sw_log_init("bench_messaging");
    if (!lvl || !*lvl)
        sw_log_set_level(SW_LOG_WARN); /* the in-process clients' session chatter */
    if (sw_crypto_init() || sw_http_global_init())
        bu_die("cannot initialise libsodium / libcurl");
    randombytes_buf(g_payload, sizeof(g_payload));
    pthread_mutex_init(&b.posted_mu, NULL);
    idle_n = raise_fd_limit(IDLE_SESSIONS);
    b.ms.name = "server";
    b.ms_idle.name = "server-idle";
    start_discovery(&b);
    start_server(&b.ms, b.md_base, "256");
    b.procs = (struct bu_procs){ .pid = { b.ms.pid, b.md }, .n = 2,
                                 .postmaster = bu_postmaster_pid() };
    start_clients(&b);
    print_intro(&b, idle_n);

    section_throughput(&b);
    section_dial(&b);
    section_idle(&b, idle_n);
    section_discovery(&b);
    print_footer(&b);

    stop_clients(&b);
    th_stop(b.ms.pid, 5000);
    th_stop(b.md, 5000);
    for (size_t i = 0; i < b.n_get_urls; i++)
        free((void *)b.get_urls[i]);
    sw_keypair_wipe(&b.ms.kp);
    sw_keypair_wipe(&b.ms_idle.kp);
    return b.errors ? 1 : 0;
}
