/* bench_td.c — throughput and latency of the transport discovery over a table of 100,000
 * transports: signed registrations and GET /transports/edge:{pk}, at 1 and 16 concurrent
 * keep-alive clients, next to the limits they sit on (raw Ed25519 verification on one
 * core, the same edge query straight through libpq on one connection). Every phase is
 * bounded by a request count and a time limit. For each phase the table also shows how
 * many cores the daemon, PostgreSQL and this client kept busy (CPU seconds from
 * /proc/PID/stat per wall second), which is where the time goes.
 *
 * Run through tests/run-bench.sh (it provides the PostgreSQL cluster). Exits 1 when any
 * request failed (any non-2xx answer is an error). */
#include "common/buf.h"
#include "common/hex.h"
#include "common/http_client.h"
#include "common/json.h"
#include "common/keys.h"
#include "common/tp_entry.h"
#include "tests/harness/harness.h"

#include <dirent.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <limits.h>
#include <pthread.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Table shape: transport j joins ring key j % RING_KEYS and ring key
 * (j % RING_KEYS + 1 + j / RING_KEYS) % RING_KEYS. The offsets 1..50 never sum to the ring
 * size, so all pairs (and therefore all transport IDs) are distinct and every key is an
 * edge of exactly 2 * RING_TRANSPORTS / RING_KEYS = 100 transports. One more transport
 * joins two keys used nowhere else (the 1-transport case). */
#define RING_KEYS 2000
#define RING_TRANSPORTS 100000
#define PER_KEY (2 * RING_TRANSPORTS / RING_KEYS)
#define DAEMON_THREADS 16
#define MANY_CLIENTS 16
#define MAX_RESULTS 16
#define MAX_PG_PROCS 512
#define URL_MAX 256
#define WHY_MAX 320

/* Kept in step with "td_by_edge" in transport-discovery/store.c. */
#define TD_COLS "t_id::text, encode(edge_a, 'hex'), encode(edge_b, 'hex'), type, label, " \
                "encode(sig_a, 'hex'), encode(sig_b, 'hex'), up_a, up_b, registered, updated"
#define TD_BY_EDGE_SQL                                                            \
    "SELECT " TD_COLS " FROM td_transports WHERE edge_a = $1::bytea UNION ALL " \
    "SELECT " TD_COLS " FROM td_transports WHERE edge_b = $1::bytea ORDER BY 1"

/* ---- small helpers ----------------------------------------------------------------- */

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    fputs("bench_td: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted v[0..n). */
static double percentile(const double *v, size_t n, double p)
{
    size_t rank;
    if (n == 0)
        return 0;
    rank = (size_t)(p * (double)n + 0.999999);
    return v[rank ? rank - 1 : 0];
}

/* "\x<hex>" (malloc'd): how the daemon passes a bytea parameter to libpq in text form. */
static char *bytea_literal(const struct sw_pk *pk)
{
    char *out = malloc(2 + SW_PK_HEX_LEN + 1);
    if (!out)
        die("out of memory");
    out[0] = '\\';
    out[1] = 'x';
    sw_pk_to_hex(pk, out + 2);
    return out;
}

/* ---- CPU accounting from /proc ------------------------------------------------------ */

struct proc_ticks {
    pid_t pid;
    uint64_t ticks;
};

struct cpu_snap {
    uint64_t machine; /* busy ticks of all CPUs (/proc/stat) */
    uint64_t daemon, self;
    struct proc_ticks pg[MAX_PG_PROCS];
    size_t n_pg;
};

/* utime+stime and parent of pid; -1 when the process is gone. */
static int read_proc_stat(pid_t pid, pid_t *ppid, uint64_t *ticks)
{
    char path[64], buf[1024], *p;
    unsigned long ut = 0, st = 0;
    int parent = 0;
    size_t n;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
    if (!(f = fopen(path, "r")))
        return -1;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    if (!(p = strrchr(buf, ')')) ||
        sscanf(p + 2, "%*c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &parent, &ut, &st) != 3)
        return -1;
    if (ppid)
        *ppid = parent;
    *ticks = (uint64_t)ut + st;
    return 0;
}

static uint64_t ticks_of(pid_t pid)
{
    uint64_t t = 0;
    read_proc_stat(pid, NULL, &t);
    return t;
}

/* The postmaster's pid from its pid file in the test cluster; 0 when unknown. */
static pid_t postmaster_pid(void)
{
    const char *dir = getenv("SW_TEST_PG_DIR");
    char path[PATH_MAX];
    long pid = 0;
    FILE *f;

    if (!dir)
        return 0;
    snprintf(path, sizeof(path), "%s/data/postmaster.pid", dir);
    if (!(f = fopen(path, "r")))
        return 0;
    if (fscanf(f, "%ld", &pid) != 1)
        pid = 0;
    fclose(f);
    return (pid_t)pid;
}

/* The postmaster and all its children (backends, checkpointer, walwriter, ...). */
static void snap_postgres(struct cpu_snap *s, pid_t postmaster)
{
    struct dirent *de;
    DIR *d = opendir("/proc");

    s->n_pg = 0;
    if (!d || !postmaster)
        goto out;
    while ((de = readdir(d)) && s->n_pg < MAX_PG_PROCS) {
        pid_t pid = (pid_t)strtol(de->d_name, NULL, 10), parent = 0;
        uint64_t t;
        if (pid <= 0 || read_proc_stat(pid, &parent, &t))
            continue;
        if (pid == postmaster || parent == postmaster)
            s->pg[s->n_pg++] = (struct proc_ticks){ pid, t };
    }
out:
    if (d)
        closedir(d);
}

/* Busy (non-idle, non-iowait) ticks of the whole machine. */
static uint64_t machine_busy_ticks(void)
{
    unsigned long long v[8] = { 0 };
    uint64_t busy = 0;
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return 0;
    if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
               &v[4], &v[5], &v[6], &v[7]) == 8)
        busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7]; /* all but idle and iowait */
    fclose(f);
    return busy;
}

static void cpu_snapshot(struct cpu_snap *s, pid_t daemon, pid_t postmaster)
{
    s->machine = machine_busy_ticks();
    s->daemon = ticks_of(daemon);
    s->self = ticks_of(getpid());
    snap_postgres(s, postmaster);
}

/* PostgreSQL CPU between two snapshots; processes born in between count from zero. */
static uint64_t pg_delta(const struct cpu_snap *a, const struct cpu_snap *b)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < b->n_pg; i++) {
        uint64_t before = 0;
        for (size_t j = 0; j < a->n_pg; j++)
            if (a->pg[j].pid == b->pg[i].pid)
                before = a->pg[j].ticks;
        sum += b->pg[i].ticks > before ? b->pg[i].ticks - before : 0;
    }
    return sum;
}

/* ---- phases ------------------------------------------------------------------------ */

struct result {
    char name[48];
    unsigned threads;
    size_t requests, errors;
    double seconds, p50_ms, p99_ms;
    double cores_td, cores_pg, cores_bench; /* CPU seconds per wall second */
    double cores_other; /* everything else on the machine (noise from other work) */
    char first_error[WHY_MAX];
};

struct bench {
    char db_url[1024];
    char base_url[64];
    char log_path[PATH_MAX];
    pid_t daemon, postmaster;
    struct sw_pk ring[RING_KEYS], lone[2];
    /* GET targets (URLs) and libpq parameters (bytea literals), malloc'd */
    const char *ring_urls[RING_KEYS], *lone_url[1];
    const char *ring_params[RING_KEYS], *lone_param[1];
    PGconn *pg; /* the libpq phases' connection */
    struct result results[MAX_RESULTS];
    size_t n_results;
};

struct worker;

struct phase {
    const char *name;
    unsigned threads;
    size_t max_requests; /* over all threads */
    double max_seconds;
    struct bench *b;
    const char *const *targets; /* URLs or bytea literals, spread over the threads */
    size_t n_targets;
    int expect_rows; /* libpq phases: rows each query must return */
    int (*prepare)(struct worker *w, char *why);            /* untimed */
    int (*request)(struct worker *w, size_t i, char *why); /* timed; 0 = success */
    pthread_barrier_t go;
    int64_t start_ns;
};

struct worker {
    struct phase *ph;
    unsigned index;
    size_t quota, done, errors;
    double *lat_ms;
    int64_t end_ns;
    int ready;
    char why[WHY_MAX];
    struct sw_http_client *http;
    PGconn *pg; /* borrowed from the bench */
    /* registrations: own key, locally tracked nonce, bodies signed in advance */
    struct sw_keypair kp;
    uint64_t nonce;
    char **bodies;
    /* raw verification */
    uint8_t msg[SW_TP_CANON_MAX];
    size_t msg_len;
    struct sw_sig sig;
};

static const char *target_for(const struct worker *w, size_t i)
{
    const struct phase *ph = w->ph;
    size_t spread = ph->n_targets / ph->threads;
    return ph->targets[(w->index * spread + i) % ph->n_targets];
}

static int prepare_http(struct worker *w, char *why)
{
    struct sw_http_client_opts opts = { .timeout_ms = 10000 };
    if (!(w->http = sw_http_client_new(&opts))) {
        snprintf(why, WHY_MAX, "cannot create an HTTP client");
        return -1;
    }
    return 0;
}

static int http_answer(int rc, const struct sw_error *err, const struct sw_http_result *res,
                       long want, char *why)
{
    if (rc) {
        snprintf(why, WHY_MAX, "%.250s", err->msg);
        return -1;
    }
    if (res->status != want) {
        snprintf(why, WHY_MAX, "HTTP %ld: %.150s", res->status, res->body ? res->body : "");
        return -1;
    }
    return 0;
}

static int request_get(struct worker *w, size_t i, char *why)
{
    struct sw_http_result res = { 0 };
    struct sw_error err = { 0 };
    int rc = sw_http_do(w->http, "GET", target_for(w, i), NULL, NULL, 0, &res, &err);
    rc = http_answer(rc, &err, &res, 200, why);
    sw_http_result_free(&res);
    return rc;
}

/* One registration body: [SignedEntry] joining caller and a fresh key, signed by both. */
static char *build_registration(const struct sw_keypair *caller)
{
    struct sw_keypair other;
    struct sw_tp_signed_entry se;
    struct json_object *arr = NULL;
    char *body = NULL;
    size_t len;
    int mine;

    memset(&se, 0, sizeof(se));
    if (sw_keypair_generate(&other) ||
        sw_tp_entry_make(&se.entry, &caller->pk, &other.pk, "dmsg", "bench", NULL))
        goto out;
    mine = sw_tp_entry_edge_index(&se.entry, &caller->pk);
    sw_tp_entry_sign(&se.entry, caller, &se.sigs[mine]);
    sw_tp_entry_sign(&se.entry, &other, &se.sigs[1 - mine]);
    arr = json_object_new_array();
    json_object_array_add(arr, sw_tp_signed_entry_to_json(&se));
    body = strdup(sw_json_compact(arr, &len));
out:
    json_object_put(arr);
    sw_keypair_wipe(&other);
    return body;
}

static int prepare_register(struct worker *w, char *why)
{
    struct sw_error err = { 0 };
    if (prepare_http(w, why))
        return -1;
    if (sw_keypair_generate(&w->kp)) {
        snprintf(why, WHY_MAX, "key generation failed");
        return -1;
    }
    if (sw_http_get_nonce(w->http, w->ph->b->base_url, &w->kp.pk, &w->nonce, &err)) {
        snprintf(why, WHY_MAX, "nonce: %.250s", err.msg);
        return -1;
    }
    if (!(w->bodies = calloc(w->quota ? w->quota : 1, sizeof(*w->bodies))))
        goto oom;
    for (size_t i = 0; i < w->quota; i++)
        if (!(w->bodies[i] = build_registration(&w->kp)))
            goto oom;
    return 0;
oom:
    snprintf(why, WHY_MAX, "cannot build registration bodies");
    return -1;
}

static int request_register(struct worker *w, size_t i, char *why)
{
    struct sw_http_result res = { 0 };
    struct sw_error err = { 0 };
    const char *body = w->bodies[i];
    int rc = sw_http_do_signed_nonce(w->http, &w->kp, w->ph->b->base_url, "POST", "/transports/",
                                     w->nonce++, body, strlen(body), &res, &err);
    rc = http_answer(rc, &err, &res, 201, why);
    sw_http_result_free(&res);
    return rc;
}

/* The libpq phases share one connection (single-threaded), like a pooled connection of the
 * daemon that has seen many keys: PostgreSQL's plan cache then settles on the generic plan
 * instead of re-planning for a key it has only ever seen rare. */
static int prepare_pg(struct worker *w, char *why)
{
    struct bench *b = w->ph->b;
    PGresult *r;
    int ok;

    w->pg = b->pg;
    if (b->pg)
        return 0;
    b->pg = w->pg = PQconnectdb(b->db_url);
    if (PQstatus(w->pg) != CONNECTION_OK) {
        snprintf(why, WHY_MAX, "libpq: %.250s", PQerrorMessage(w->pg));
        return -1;
    }
    r = PQprepare(w->pg, "bench_by_edge", TD_BY_EDGE_SQL, 1, NULL);
    ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    if (!ok)
        snprintf(why, WHY_MAX, "prepare: %.250s", PQerrorMessage(w->pg));
    return ok ? 0 : -1;
}

/* The daemon's query as the daemon runs it: prepared, text parameter, text results. */
static int request_pg(struct worker *w, size_t i, char *why)
{
    const char *params[1] = { target_for(w, i) };
    PGresult *r = PQexecPrepared(w->pg, "bench_by_edge", 1, params, NULL, NULL, 0);
    int rc = 0;
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        snprintf(why, WHY_MAX, "query: %.250s", PQerrorMessage(w->pg));
        rc = -1;
    } else if (PQntuples(r) != w->ph->expect_rows) {
        snprintf(why, WHY_MAX, "query returned %d rows, want %d", PQntuples(r), w->ph->expect_rows);
        rc = -1;
    }
    PQclear(r);
    return rc;
}

/* A message the size of a canonical transport entry, signed once. */
static int prepare_verify(struct worker *w, char *why)
{
    struct sw_keypair kp;
    struct sw_tp_entry e;
    struct sw_pk other;

    if (sw_keypair_generate(&kp)) {
        snprintf(why, WHY_MAX, "key generation failed");
        return -1;
    }
    randombytes_buf(other.b, sizeof(other.b));
    sw_tp_entry_make(&e, &kp.pk, &other, "dmsg", "bench", NULL);
    w->msg_len = sw_tp_entry_canonical(&e, w->msg, sizeof(w->msg));
    sw_sign(&kp, w->msg, w->msg_len, &w->sig);
    w->kp = kp;
    sw_keypair_wipe(&kp);
    return 0;
}

static int request_verify(struct worker *w, size_t i, char *why)
{
    (void)i;
    if (crypto_sign_verify_detached(w->sig.b, w->msg, w->msg_len, w->kp.pk.b) != 0) {
        snprintf(why, WHY_MAX, "signature did not verify");
        return -1;
    }
    return 0;
}

/* What sw_pk_from_hex adds to every public key the daemon parses (path, SW-Public, edges). */
static int request_point_check(struct worker *w, size_t i, char *why)
{
    (void)i;
    if (!crypto_core_ed25519_is_valid_point(w->kp.pk.b)) {
        snprintf(why, WHY_MAX, "public key is not a valid point");
        return -1;
    }
    return 0;
}

static void run_requests(struct worker *w)
{
    const struct phase *ph = w->ph;
    int64_t deadline = ph->start_ns + (int64_t)(ph->max_seconds * 1e9);
    char why[WHY_MAX];

    for (size_t i = 0; i < w->quota; i++) {
        int64_t t0 = now_ns();
        if (t0 >= deadline)
            break;
        if (ph->request(w, i, why)) {
            if (w->errors++ == 0)
                snprintf(w->why, sizeof(w->why), "%s", why);
        }
        w->lat_ms[w->done++] = (double)(now_ns() - t0) / 1e6;
    }
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct phase *ph = w->ph;

    w->lat_ms = calloc(w->quota ? w->quota : 1, sizeof(*w->lat_ms));
    w->ready = w->lat_ms && ph->prepare(w, w->why) == 0;
    if (!w->ready && !w->why[0])
        snprintf(w->why, sizeof(w->why), "out of memory");
    pthread_barrier_wait(&ph->go); /* everyone is prepared */
    pthread_barrier_wait(&ph->go); /* the clock has started */
    if (w->ready)
        run_requests(w);
    else
        w->errors = 1;
    w->end_ns = now_ns();
    return NULL;
}

static void free_worker(struct worker *w)
{
    if (w->bodies)
        for (size_t i = 0; i < w->quota; i++)
            free(w->bodies[i]);
    free(w->bodies);
    free(w->lat_ms);
    sw_http_client_free(w->http);
    sw_keypair_wipe(&w->kp);
}

/* Merges the workers' counts and latencies into res. */
static void collect(struct worker *ws, unsigned n, struct result *res)
{
    size_t total = 0, k = 0;
    double *all;
    for (unsigned i = 0; i < n; i++)
        total += ws[i].done;
    all = calloc(total ? total : 1, sizeof(*all));
    if (!all)
        die("out of memory");
    for (unsigned i = 0; i < n; i++) {
        memcpy(all + k, ws[i].lat_ms, ws[i].done * sizeof(*all));
        k += ws[i].done;
        res->errors += ws[i].errors;
        if (ws[i].errors && !res->first_error[0])
            snprintf(res->first_error, sizeof(res->first_error), "%s", ws[i].why);
    }
    qsort(all, total, sizeof(*all), cmp_double);
    res->requests = total;
    res->p50_ms = percentile(all, total, 0.50);
    res->p99_ms = percentile(all, total, 0.99);
    free(all);
}

static void print_header(void)
{
    printf("%-40s %3s %8s %6s %9s %8s %8s %6s  %-s\n", "phase", "thr", "requests", "secs",
           "req/s", "p50 ms", "p99 ms", "errors", "cores busy: td / pg / bench / other");
    printf("%-40s %3s %8s %6s %9s %8s %8s %6s  %-s\n", "----------------------------------------",
           "---", "--------", "------", "---------", "--------", "--------", "------",
           "-----------------------------------");
}

static void print_result(const struct result *r)
{
    double rate = r->seconds > 0 ? (double)r->requests / r->seconds : 0;
    printf("%-40s %3u %8zu %6.2f %9.0f %8.3f %8.3f %6zu  %4.2f / %4.2f / %4.2f / %4.2f\n",
           r->name, r->threads, r->requests, r->seconds, rate, r->p50_ms, r->p99_ms, r->errors,
           r->cores_td, r->cores_pg, r->cores_bench, r->cores_other);
    fflush(stdout);
}

static void set_cores(struct result *res, const struct cpu_snap *a, const struct cpu_snap *b)
{
    double hz = (double)sysconf(_SC_CLK_TCK), wall = res->seconds > 0 ? res->seconds : 1;
    res->cores_td = (double)(b->daemon - a->daemon) / hz / wall;
    res->cores_pg = (double)pg_delta(a, b) / hz / wall;
    res->cores_bench = (double)(b->self - a->self) / hz / wall;
    res->cores_other = (double)(b->machine - a->machine) / hz / wall - res->cores_td -
                       res->cores_pg - res->cores_bench;
    if (res->cores_other < 0)
        res->cores_other = 0;
}

static void start_workers(struct phase *ph, struct worker *ws, pthread_t *tids)
{
    for (unsigned i = 0; i < ph->threads; i++) {
        ws[i].ph = ph;
        ws[i].index = i;
        ws[i].quota = ph->max_requests / ph->threads + (i < ph->max_requests % ph->threads);
        if (pthread_create(&tids[i], NULL, worker_main, &ws[i]) != 0)
            die("cannot start a worker thread");
    }
}

/* Runs one phase: prepare (untimed), then requests until the count or the time is used. */
static void run_phase(struct phase *ph)
{
    struct bench *b = ph->b;
    struct result *res = &b->results[b->n_results++];
    struct worker *ws = calloc(ph->threads, sizeof(*ws));
    pthread_t *tids = calloc(ph->threads, sizeof(*tids));
    struct cpu_snap *snaps = calloc(2, sizeof(*snaps));
    int64_t end = 0;

    if (!ws || !tids || !snaps)
        die("out of memory");
    snprintf(res->name, sizeof(res->name), "%s", ph->name);
    res->threads = ph->threads;
    pthread_barrier_init(&ph->go, NULL, ph->threads + 1);
    start_workers(ph, ws, tids);
    pthread_barrier_wait(&ph->go);
    cpu_snapshot(&snaps[0], b->daemon, b->postmaster);
    ph->start_ns = now_ns();
    pthread_barrier_wait(&ph->go);
    for (unsigned i = 0; i < ph->threads; i++) {
        pthread_join(tids[i], NULL);
        end = ws[i].end_ns > end ? ws[i].end_ns : end;
    }
    cpu_snapshot(&snaps[1], b->daemon, b->postmaster);
    res->seconds = (double)(end - ph->start_ns) / 1e9;
    set_cores(res, &snaps[0], &snaps[1]);
    collect(ws, ph->threads, res);
    print_result(res);
    for (unsigned i = 0; i < ph->threads; i++)
        free_worker(&ws[i]);
    pthread_barrier_destroy(&ph->go);
    free(ws);
    free(tids);
    free(snaps);
}

/* ---- setup: daemon, table ---------------------------------------------------------- */

static void start_daemon(struct bench *b)
{
    const char *log_dir = getenv("SW_TEST_LOG_DIR");
    char addr[32], threads[16];
    uint16_t port = th_free_port();

    snprintf(b->db_url, sizeof(b->db_url), "%s", th_fresh_db("bench_td"));
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", port);
    snprintf(threads, sizeof(threads), "%d", DAEMON_THREADS);
    snprintf(b->base_url, sizeof(b->base_url), "http://%s", addr);
    snprintf(b->log_path, sizeof(b->log_path), "%s/bench_td-transport-discovery.log",
             log_dir && *log_dir ? log_dir : "/tmp");
    {
        const char *argv[] = { th_bin("transport-discovery"), "--addr", addr, "--db", b->db_url,
                               "--threads", threads, NULL };
        char health[URL_MAX];
        b->daemon = th_spawn(argv, NULL, b->log_path);
        snprintf(health, sizeof(health), "%s/health", b->base_url);
        if (b->daemon < 0 || th_wait_http(health, 20000)) {
            th_dump_log(b->log_path);
            die("transport-discovery did not come up at %s", b->base_url);
        }
    }
}

static int copy_row(struct sw_buf *out, const struct sw_pk *a, const struct sw_pk *b, long now)
{
    struct sw_tp_entry e;
    uint8_t sigs[2][SW_SIG_LEN];
    char id[SW_UUID_STR_LEN + 1], ea[SW_PK_HEX_LEN + 1], eb[SW_PK_HEX_LEN + 1];
    char sa[SW_SIG_HEX_LEN + 1], sb[SW_SIG_HEX_LEN + 1];

    if (sw_tp_entry_make(&e, a, b, "dmsg", "", NULL))
        return -1;
    randombytes_buf(sigs, sizeof(sigs)); /* well-formed, not verifiable: reads never check */
    sw_uuid_format(&e.id, id);
    sw_pk_to_hex(&e.edges[0], ea);
    sw_pk_to_hex(&e.edges[1], eb);
    sw_hex_encode(sa, sizeof(sa), sigs[0], SW_SIG_LEN);
    sw_hex_encode(sb, sizeof(sb), sigs[1], SW_SIG_LEN);
    /* COPY text format: a bytea hex literal's backslash is doubled; empty field = '' */
    return sw_buf_printf(out, "%s\t\\\\x%s\t\\\\x%s\t%s\t\t\\\\x%s\t\\\\x%s\tt\tt\t%ld\t%ld\n", id, ea,
                         eb, e.type, sa, sb, now, now);
}

static int copy_flush(PGconn *pg, struct sw_buf *buf)
{
    int ok = buf->len == 0 || PQputCopyData(pg, buf->data, (int)buf->len) == 1;
    sw_buf_reset(buf);
    return ok ? 0 : -1;
}

static int copy_rows(PGconn *pg, const struct bench *b)
{
    struct sw_buf buf;
    long now = (long)time(NULL);
    int rc = 0;

    sw_buf_init(&buf, 0);
    for (size_t j = 0; j < RING_TRANSPORTS && rc == 0; j++) {
        size_t a = j % RING_KEYS, c = (a + 1 + j / RING_KEYS) % RING_KEYS;
        rc = copy_row(&buf, &b->ring[a], &b->ring[c], now);
        if (rc == 0 && buf.len > (1u << 16))
            rc = copy_flush(pg, &buf);
    }
    if (rc == 0)
        rc = copy_row(&buf, &b->lone[0], &b->lone[1], now);
    if (rc == 0)
        rc = copy_flush(pg, &buf);
    sw_buf_free(&buf);
    return rc;
}

static int exec_ok(PGconn *pg, const char *sql, ExecStatusType want)
{
    PGresult *r = PQexec(pg, sql);
    int ok = PQresultStatus(r) == want;
    PQclear(r);
    return ok ? 0 : -1;
}

/* Loads the table straight into PostgreSQL with COPY; returns the seconds it took. */
static double populate(const struct bench *b)
{
    int64_t t0 = now_ns();
    PGconn *pg = PQconnectdb(b->db_url);
    PGresult *r = NULL;
    int ok = 0;

    if (PQstatus(pg) != CONNECTION_OK ||
        exec_ok(pg, "COPY td_transports (t_id, edge_a, edge_b, type, label, sig_a, sig_b, up_a,"
                    " up_b, registered, updated) FROM STDIN", PGRES_COPY_IN))
        goto out;
    if (copy_rows(pg, b) || PQputCopyEnd(pg, NULL) != 1)
        goto out;
    r = PQgetResult(pg);
    ok = PQresultStatus(r) == PGRES_COMMAND_OK && exec_ok(pg, "VACUUM ANALYZE td_transports", PGRES_COMMAND_OK) == 0;
out:
    if (!ok)
        die("populating td_transports failed: %s", PQerrorMessage(pg));
    PQclear(r);
    PQfinish(pg);
    return (double)(now_ns() - t0) / 1e9;
}

static char *edge_url(const struct bench *b, const struct sw_pk *pk)
{
    char hex[SW_PK_HEX_LEN + 1], *url = malloc(URL_MAX);
    if (!url)
        die("out of memory");
    sw_pk_to_hex(pk, hex);
    snprintf(url, URL_MAX, "%s/transports/edge:%s", b->base_url, hex);
    return url;
}

static void make_keys(struct bench *b)
{
    struct sw_keypair kp;
    for (size_t i = 0; i < RING_KEYS + 2; i++) {
        struct sw_pk *pk = i < RING_KEYS ? &b->ring[i] : &b->lone[i - RING_KEYS];
        if (sw_keypair_generate(&kp))
            die("key generation failed");
        *pk = kp.pk;
    }
    sw_keypair_wipe(&kp);
    for (size_t i = 0; i < RING_KEYS; i++) {
        b->ring_urls[i] = edge_url(b, &b->ring[i]);
        b->ring_params[i] = bytea_literal(&b->ring[i]);
    }
    b->lone_url[0] = edge_url(b, &b->lone[0]);
    b->lone_param[0] = bytea_literal(&b->lone[0]);
}

/* Entries the daemon returns for url; -1 on any failure. */
static long count_entries(const char *url)
{
    struct sw_http_client *c = sw_http_client_new(NULL);
    struct sw_http_result res = { 0 };
    struct sw_error err = { 0 };
    struct json_object *o = NULL;
    long n = -1;

    if (c && sw_http_do(c, "GET", url, NULL, NULL, 0, &res, &err) == SW_OK && res.status == 200 &&
        sw_json_parse(res.body, res.body_len, &o, &err) == SW_OK && json_object_is_type(o, json_type_array))
        n = (long)json_object_array_length(o);
    json_object_put(o);
    sw_http_result_free(&res);
    sw_http_client_free(c);
    return n;
}

static void check_shape(const struct bench *b)
{
    long ring = count_entries(b->ring_urls[0]), lone = count_entries(b->lone_url[0]);
    printf("  check:   GET edge:{ring key} -> %ld entries, GET edge:{lone key} -> %ld entry\n", ring, lone);
    if (ring != PER_KEY || lone != 1)
        die("the daemon does not see the table shape that was loaded");
}

/* VmHWM / VmRSS line values (kB) of pid. */
static void peak_rss(pid_t pid, long *hwm_kb, long *rss_kb)
{
    char path[64], line[256];
    FILE *f;
    *hwm_kb = *rss_kb = -1;
    snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
    if (!(f = fopen(path, "r")))
        return;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "VmHWM:", 6) == 0)
            *hwm_kb = strtol(line + 6, NULL, 10);
        else if (strncmp(line, "VmRSS:", 6) == 0)
            *rss_kb = strtol(line + 6, NULL, 10);
    }
    fclose(f);
}

/* ---- the phases -------------------------------------------------------------------- */

#define GET_PHASE(label, n, targets_, count)                                                  \
    { .name = label, .threads = n, .max_requests = 200000, .max_seconds = 4, .b = b,         \
      .targets = targets_, .n_targets = count, .prepare = prepare_http, .request = request_get }
#define PG_PHASE(label, targets_, count, rows)                                                \
    { .name = label, .threads = 1, .max_requests = 100000, .max_seconds = 2, .b = b,         \
      .targets = targets_, .n_targets = count, .expect_rows = rows, .prepare = prepare_pg,   \
      .request = request_pg }
#define REG_PHASE(label, n, max)                                                              \
    { .name = label, .threads = n, .max_requests = max, .max_seconds = 5, .b = b,            \
      .prepare = prepare_register, .request = request_register }

/* Raw limits first (print_footer expects them at R_VERIFY and R_POINT), then reads on the
 * table as loaded, then registrations, which add rows. */
enum { R_VERIFY, R_POINT };

static void run_all(struct bench *b)
{
    struct phase phases[] = {
        { .name = "Ed25519 verify (libsodium, 1 core)", .threads = 1, .max_requests = 200000,
          .max_seconds = 2, .b = b, .prepare = prepare_verify, .request = request_verify },
        { .name = "Ed25519 pk point check (1 core)", .threads = 1, .max_requests = 200000,
          .max_seconds = 1, .b = b, .prepare = prepare_verify, .request = request_point_check },
        PG_PHASE("libpq td_by_edge, 100 rows, 1 conn", b->ring_params, RING_KEYS, PER_KEY),
        PG_PHASE("libpq td_by_edge, 1 row, 1 conn", b->lone_param, 1, 1),
        GET_PHASE("GET /transports/edge:{pk}, 100 entries", 1, b->ring_urls, RING_KEYS),
        GET_PHASE("GET /transports/edge:{pk}, 100 entries", MANY_CLIENTS, b->ring_urls, RING_KEYS),
        GET_PHASE("GET /transports/edge:{pk}, 1 entry", 1, b->lone_url, 1),
        GET_PHASE("GET /transports/edge:{pk}, 1 entry", MANY_CLIENTS, b->lone_url, 1),
        REG_PHASE("POST /transports/ (signed, 1 entry)", 1, 12000),
        REG_PHASE("POST /transports/ (signed, 1 entry)", MANY_CLIENTS, MANY_CLIENTS * 2000),
    };
    for (size_t i = 0; i < sizeof(phases) / sizeof(phases[0]); i++)
        run_phase(&phases[i]);
}

static void print_intro(const struct bench *b, double load_s)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    printf("transport-discovery benchmark (%ld CPUs)\n", cpus);
    printf("  daemon:  %s --threads %d (db pool %d), log level from the environment (default info)\n",
           th_bin("transport-discovery"), DAEMON_THREADS, DAEMON_THREADS);
    printf("  db:      throwaway PostgreSQL cluster (tests/pg-cluster.sh: fsync=off, synchronous_commit=off)\n");
    printf("  table:   %d transports loaded by COPY in %.2f s: %d in a ring over %d keys (transport j joins\n"
           "           key j%%%d and key (j%%%d + 1 + j/%d)%%%d, so every key is an edge of exactly %d), plus 1\n"
           "           joining two keys seen nowhere else; real IDs and edges, random signature bytes\n",
           RING_TRANSPORTS + 1, load_s, RING_TRANSPORTS, RING_KEYS, RING_KEYS, RING_KEYS, RING_KEYS,
           RING_KEYS, PER_KEY);
    printf("  phases:  each bounded by a request count and a time limit; GET keys rotate over the ring;\n"
           "           each registration is a new transport (fresh second key), bodies signed before\n"
           "           the clock starts; every client thread has its own key, nonce and keep-alive connection\n");
    printf("  cores busy = CPU seconds per wall second of the daemon, all PostgreSQL processes, this\n"
           "           client, and everything else on the machine (other > 0.1 means the figures are noisy)\n");
    check_shape(b);
    printf("\n");
}

static size_t total_errors(const struct bench *b)
{
    size_t n = 0;
    for (size_t i = 0; i < b->n_results; i++)
        n += b->results[i].errors;
    return n;
}

/* CPU time per request of each process group: comparable with the raw limits above it. */
static void print_cpu_per_request(const struct bench *b)
{
    printf("\n%-40s %3s %9s %9s %9s\n", "CPU per request (us)", "thr", "td", "pg", "bench");
    for (size_t i = 0; i < b->n_results; i++) {
        const struct result *r = &b->results[i];
        double us = r->requests ? r->seconds * 1e6 / (double)r->requests : 0;
        printf("%-40s %3u %9.1f %9.1f %9.1f\n", r->name, r->threads, r->cores_td * us,
               r->cores_pg * us, r->cores_bench * us);
    }
}

/* CPU microseconds per operation of a single-threaded loop in this process: unlike the
 * wall-clock rate, it does not suffer when other work shares the machine. */
static double cpu_us_per_op(const struct result *r)
{
    return r->requests ? r->cores_bench * r->seconds * 1e6 / (double)r->requests : 0;
}

static void print_footer(const struct bench *b)
{
    double us_verify = cpu_us_per_op(&b->results[R_VERIFY]);
    double us_point = cpu_us_per_op(&b->results[R_POINT]);
    double us_reg = 3 * us_verify + 3 * us_point;
    long hwm, rss;

    print_cpu_per_request(b);
    peak_rss(b->daemon, &hwm, &rss);
    printf("\ndaemon peak RSS (VmHWM): %.1f MiB (VmRSS now %.1f MiB)\n", (double)hwm / 1024.0,
           (double)rss / 1024.0);
    printf("Ed25519 work per registration: 3 verifications (SW-Sig, both entry signatures) + 3 point\n"
           "checks (SW-Public, both edges) = %.0f us -> %.0f reg/s per core from Ed25519 alone;\n"
           "per GET /transports/edge:{pk}: 1 point check (the key in the path) = %.0f us\n",
           us_reg, us_reg > 0 ? 1e6 / us_reg : 0, us_point);
    for (size_t i = 0; i < b->n_results; i++)
        if (b->results[i].errors)
            printf("errors in \"%s\" x%u: %zu, first: %s\n", b->results[i].name,
                   b->results[i].threads, b->results[i].errors, b->results[i].first_error);
    printf("errors: %zu\n", total_errors(b));
}

static void free_targets(struct bench *b)
{
    for (size_t i = 0; i < RING_KEYS; i++) {
        free((void *)b->ring_urls[i]);
        free((void *)b->ring_params[i]);
    }
    free((void *)b->lone_url[0]);
    free((void *)b->lone_param[0]);
}

int main(void)
{
    static struct bench b;
    double load_s;

    setvbuf(stdout, NULL, _IOLBF, 0);
    if (sw_crypto_init() || sw_http_global_init())
        die("cannot initialise libsodium / libcurl");
    b.postmaster = postmaster_pid();
    start_daemon(&b);
    make_keys(&b);
    load_s = populate(&b);
    print_intro(&b, load_s);
    print_header();
    run_all(&b);
    print_footer(&b);
    th_stop(b.daemon, 5000);
    if (b.pg)
        PQfinish(b.pg);
    free_targets(&b);
    return total_errors(&b) ? 1 : 0;
}
