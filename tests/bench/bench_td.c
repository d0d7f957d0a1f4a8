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
#include "tests/harness/bench_util.h"
#include "tests/harness/harness.h"

#include <inttypes.h>
#include <libpq-fe.h>
#include <limits.h>
#include <pthread.h>
#include <sodium.h>
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
#define URL_MAX 256
#define WHY_MAX BU_WHY_MAX

/* Kept in step with "td_by_edge" in transport-discovery/store.c. */
#define TD_COLS "t_id::text, encode(edge_a, 'hex'), encode(edge_b, 'hex'), type, label, " \
                "encode(sig_a, 'hex'), encode(sig_b, 'hex'), up_a, up_b, registered, updated, " \
                "updated_a, updated_b"
#define TD_BY_EDGE_SQL                                                            \
    "SELECT " TD_COLS " FROM td_transports WHERE edge_a = $1::bytea UNION ALL " \
    "SELECT " TD_COLS " FROM td_transports WHERE edge_b = $1::bytea ORDER BY 1"

/* ---- small helpers ----------------------------------------------------------------- */

/* "\x<hex>" (malloc'd): how the daemon passes a bytea parameter to libpq in text form. */
static char *bytea_literal(const struct sw_pk *pk)
{
    char *out = malloc(2 + SW_PK_HEX_LEN + 1);
    if (!out)
        bu_die("out of memory");
    out[0] = '\\';
    out[1] = 'x';
    sw_pk_to_hex(pk, out + 2);
    return out;
}

/* ---- phases ------------------------------------------------------------------------ */

struct bench {
    char db_url[1024];
    char base_url[64];
    char log_path[PATH_MAX];
    pid_t daemon;
    struct bu_procs procs; /* the daemon and PostgreSQL */
    struct sw_pk ring[RING_KEYS], lone[2];
    /* GET targets (URLs) and libpq parameters (bytea literals), malloc'd */
    const char *ring_urls[RING_KEYS], *lone_url[1];
    const char *ring_params[RING_KEYS], *lone_param[1];
    PGconn *pg; /* the libpq phases' connection */
    struct bu_result results[MAX_RESULTS];
    size_t n_results;
};

/* A phase of this bench: the runner's part and what the callbacks need. */
struct phase {
    struct bu_phase bu;
    struct bench *b;
    int expect_rows; /* libpq phases: rows each query must return */
};

/* Per-thread state (bu_worker.state). */
struct worker {
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

static const struct phase *phase_of(const struct bu_worker *bw)
{
    return (const struct phase *)bw->ph;
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

static int prepare_register(struct bu_worker *bw, char *why)
{
    struct worker *w = bw->state;
    struct sw_error err = { 0 };
    if (bu_prepare_http(bw, why))
        return -1;
    if (sw_keypair_generate(&w->kp)) {
        snprintf(why, WHY_MAX, "key generation failed");
        return -1;
    }
    if (sw_http_get_nonce(bw->http, phase_of(bw)->b->base_url, &w->kp.pk, &w->nonce, &err)) {
        snprintf(why, WHY_MAX, "nonce: %.250s", err.msg);
        return -1;
    }
    if (!(w->bodies = calloc(bw->quota ? bw->quota : 1, sizeof(*w->bodies))))
        goto oom;
    for (size_t i = 0; i < bw->quota; i++)
        if (!(w->bodies[i] = build_registration(&w->kp)))
            goto oom;
    return 0;
oom:
    snprintf(why, WHY_MAX, "cannot build registration bodies");
    return -1;
}

static int request_register(struct bu_worker *bw, size_t i, char *why)
{
    struct worker *w = bw->state;
    struct sw_http_result res = { 0 };
    struct sw_error err = { 0 };
    const char *body = w->bodies[i];
    int rc = sw_http_do_signed_nonce(bw->http, &w->kp, phase_of(bw)->b->base_url, "POST",
                                     "/transports/", w->nonce++, body, strlen(body), &res, &err);
    rc = bu_http_answer(rc, &err, &res, 201, why);
    sw_http_result_free(&res);
    return rc;
}

/* The libpq phases share one connection (single-threaded), like a pooled connection of the
 * daemon that has seen many keys: PostgreSQL's plan cache then settles on the generic plan
 * instead of re-planning for a key it has only ever seen rare. */
static int prepare_pg(struct bu_worker *bw, char *why)
{
    struct worker *w = bw->state;
    struct bench *b = phase_of(bw)->b;
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
static int request_pg(struct bu_worker *bw, size_t i, char *why)
{
    const struct worker *w = bw->state;
    int want = phase_of(bw)->expect_rows;
    const char *params[1] = { bu_target(bw, i) };
    PGresult *r = PQexecPrepared(w->pg, "bench_by_edge", 1, params, NULL, NULL, 0);
    int rc = 0;
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        snprintf(why, WHY_MAX, "query: %.250s", PQerrorMessage(w->pg));
        rc = -1;
    } else if (PQntuples(r) != want) {
        snprintf(why, WHY_MAX, "query returned %d rows, want %d", PQntuples(r), want);
        rc = -1;
    }
    PQclear(r);
    return rc;
}

/* A message the size of a canonical transport entry, signed once. */
static int prepare_verify(struct bu_worker *bw, char *why)
{
    struct worker *w = bw->state;
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

/* What sw_pk_from_hex adds to every public key the daemon parses (path, SW-Public, edges). */
static int request_point_check(struct bu_worker *bw, size_t i, char *why)
{
    const struct worker *w = bw->state;
    (void)i;
    if (!crypto_core_ed25519_is_valid_point(w->kp.pk.b)) {
        snprintf(why, WHY_MAX, "public key is not a valid point");
        return -1;
    }
    return 0;
}

static void free_worker(struct bu_worker *bw)
{
    struct worker *w = bw->state;
    if (w->bodies)
        for (size_t i = 0; i < bw->quota; i++)
            free(w->bodies[i]);
    free(w->bodies);
    sw_keypair_wipe(&w->kp);
}

#define NAME_W 40

static void print_header(void)
{
    bu_print_header(NAME_W, "requests", "req/s", "cores busy: td / pg / bench / other", 0);
}

/* Runs one phase: prepare (untimed), then requests until the count or the time is used. */
static void run_phase(struct phase *ph)
{
    struct bench *b = ph->b;
    struct bu_result *res = &b->results[b->n_results++];

    ph->bu.state_size = sizeof(struct worker);
    ph->bu.release = free_worker;
    ph->bu.procs = &b->procs;
    bu_run_phase(&ph->bu, res);
    bu_print_result(res, NAME_W, b->procs.n);
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
            bu_die("transport-discovery did not come up at %s", b->base_url);
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
    return sw_buf_printf(out, "%s\t\\\\x%s\t\\\\x%s\t%s\t\t\\\\x%s\t\\\\x%s\tt\tt\t%ld\t%ld\t%ld\n", id, ea,
                         eb, e.type, sa, sb, now, now, now);
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
    long now = (long)(sw_unix_ms() / 1000);
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
    int64_t t0 = sw_mono_ns();
    PGconn *pg = PQconnectdb(b->db_url);
    PGresult *r = NULL;
    int ok = 0;

    if (PQstatus(pg) != CONNECTION_OK ||
        exec_ok(pg, "COPY td_transports (t_id, edge_a, edge_b, type, label, sig_a, sig_b, up_a,"
                    " up_b, registered, updated_a, updated_b) FROM STDIN", PGRES_COPY_IN))
        goto out;
    if (copy_rows(pg, b) || PQputCopyEnd(pg, NULL) != 1)
        goto out;
    r = PQgetResult(pg);
    ok = PQresultStatus(r) == PGRES_COMMAND_OK && exec_ok(pg, "VACUUM ANALYZE td_transports", PGRES_COMMAND_OK) == 0;
out:
    if (!ok)
        bu_die("populating td_transports failed: %s", PQerrorMessage(pg));
    PQclear(r);
    PQfinish(pg);
    return (double)(sw_mono_ns() - t0) / 1e9;
}

static char *edge_url(const struct bench *b, const struct sw_pk *pk)
{
    char hex[SW_PK_HEX_LEN + 1], *url = malloc(URL_MAX);
    if (!url)
        bu_die("out of memory");
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
            bu_die("key generation failed");
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
        bu_die("the daemon does not see the table shape that was loaded");
}

/* ---- the phases -------------------------------------------------------------------- */

#define GET_PHASE(label, n, targets_, count)                                                  \
    { .bu = { .name = label, .threads = n, .max_requests = 200000, .max_seconds = 4,          \
              .targets = targets_, .n_targets = count, .prepare = bu_prepare_http,           \
              .request = bu_request_get },                                                   \
      .b = b }
#define PG_PHASE(label, targets_, count, rows)                                                \
    { .bu = { .name = label, .threads = 1, .max_requests = 100000, .max_seconds = 2,          \
              .targets = targets_, .n_targets = count, .prepare = prepare_pg,                \
              .request = request_pg },                                                       \
      .b = b, .expect_rows = rows }
#define REG_PHASE(label, n, max)                                                              \
    { .bu = { .name = label, .threads = n, .max_requests = max, .max_seconds = 5,             \
              .prepare = prepare_register, .request = request_register },                    \
      .b = b }

/* Raw limits first (print_footer expects them at R_VERIFY and R_POINT), then reads on the
 * table as loaded, then registrations, which add rows. */
enum { R_VERIFY, R_POINT };

static void run_all(struct bench *b)
{
    struct phase phases[] = {
        { .bu = { .name = "Ed25519 verify (libsodium, 1 core)", .threads = 1, .max_requests = 200000,
                  .max_seconds = 2, .prepare = prepare_verify, .request = request_verify },
          .b = b },
        { .bu = { .name = "Ed25519 pk point check (1 core)", .threads = 1, .max_requests = 200000,
                  .max_seconds = 1, .prepare = prepare_verify, .request = request_point_check },
          .b = b },
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
        const struct bu_result *r = &b->results[i];
        double us = r->requests ? r->seconds * 1e6 / (double)r->requests : 0;
        printf("%-40s %3u %9.1f %9.1f %9.1f\n", r->name, r->threads, r->cores.pid[0] * us,
               r->cores.pg * us, r->cores.self * us);
    }
}

static void print_footer(const struct bench *b)
{
    double us_verify = bu_cpu_us_per_op(&b->results[R_VERIFY]);
    double us_point = bu_cpu_us_per_op(&b->results[R_POINT]);
    double us_reg = 3 * us_verify + 3 * us_point;
    long hwm, rss;

    print_cpu_per_request(b);
    bu_proc_mem(b->daemon, &hwm, &rss);
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
        bu_die("cannot initialise libsodium / libcurl");
    start_daemon(&b);
    b.procs = (struct bu_procs){ .pid = { b.daemon }, .n = 1, .postmaster = bu_postmaster_pid() };
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
