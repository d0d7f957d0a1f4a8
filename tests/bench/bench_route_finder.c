/* bench_route_finder.c — the route finder on random graphs of 1,000, 10,000 and 100,000
 * keys with two transports per key (average degree 4): a random ring through every key, so
 * all pairs are connected, plus one random chord per key, all up. For each size the rows go
 * straight into td_transports of a fresh database with COPY, then the bench measures the
 * COPY time, the daemon's start-to-ready time and its own full-load time, its RSS after the
 * load, POST /routes throughput and p50/p99 latency on random pairs (count=1 at 1 and 16
 * client threads, count=3 at 16), and the same search in-process without HTTP. On the
 * largest graph it also measures how long a change in td_transports takes to show in the
 * answers (LISTEN/NOTIFY, re-read, rebuild of the snapshot).
 *
 * Queries ask max_hops 32: a random 4-regular graph of 100,000 keys has an average distance
 * near log3(100,000) ~ 10.5 hops, beyond the default max_hops of 10.
 *
 * Run through tests/run-bench.sh (it provides the PostgreSQL cluster). Exits 1 when any
 * request failed (any non-200 answer is an error: every pair is connected). */
#include "common/buf.h"
#include "common/hex.h"
#include "common/http_client.h"
#include "common/json.h"
#include "common/keys.h"
#include "common/tp_entry.h"
#include "route-finder/graph.h"
#include "route-finder/search.h"
#include "tests/harness/bench_util.h"
#include "tests/harness/harness.h"

#include <inttypes.h>
#include <libpq-fe.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_KEYS 100000
#define N_SIZES 3
#define PAIRS 4096
#define MAX_HOPS RF_MAX_HOPS
#define DAEMON_THREADS 16
#define MANY_CLIENTS 16
#define FRESH_ROUNDS 10
#define PHASES_PER_SIZE 5
#define MAX_RESULTS (N_SIZES * PHASES_PER_SIZE)
#define NAME_W 40
#define URL_MAX 128
#define HTTP_SECONDS 3
#define SEARCH_SECONDS 1

static const uint32_t sizes[N_SIZES] = { 1000, 10000, 100000 };

/* What one size's run measured, for the summary at the end. */
struct size_result {
    uint32_t keys;
    size_t transports;
    double copy_s, vacuum_s, start_s, load_s, rss_mib;
    const struct bu_result *r[PHASES_PER_SIZE];
};

struct bench {
    /* every size uses keys[0 .. n_keys) */
    struct sw_pk keys[MAX_KEYS];
    char hex[MAX_KEYS][SW_PK_HEX_LEN + 1];
    char rf_log[PATH_MAX], td_log[PATH_MAX];
    /* the current size */
    uint32_t n_keys;
    char db_url[1024];
    char base_url[64], routes_url[URL_MAX];
    pid_t daemon;
    struct bu_procs procs;
    struct rf_row *rows; /* what was loaded, for the in-process phases */
    size_t n_rows;
    struct rf_graph *graph;
    uint32_t pair_src[PAIRS], pair_dst[PAIRS]; /* key indices */
    char *body1[PAIRS], *body3[PAIRS];
    /* all sizes */
    struct bu_result results[MAX_RESULTS];
    size_t n_results;
    struct size_result sizes[N_SIZES];
};

struct phase {
    struct bu_phase bu;
    struct bench *b;
    unsigned count; /* in-process phases */
};

/* ---- the table --------------------------------------------------------------------------- */

static uint64_t id_key(const struct sw_uuid *id)
{
    uint64_t v;
    memcpy(&v, id->b, sizeof(v));
    return v ? v : 1;
}

/* A set of transport IDs (first 8 bytes), to keep every pair once. */
#define IDSET_SLOTS (1u << 19) /* > 2 x 2 x MAX_KEYS */
struct idset {
    uint64_t slot[IDSET_SLOTS];
};

static bool idset_add(struct idset *s, const struct sw_uuid *id)
{
    uint64_t k = id_key(id);
    for (size_t i = k & (IDSET_SLOTS - 1);; i = (i + 1) & (IDSET_SLOTS - 1)) {
        if (s->slot[i] == k)
            return false;
        if (!s->slot[i]) {
            s->slot[i] = k;
            return true;
        }
    }
}

/* Adds a dmsg transport between keys x and y; false when it exists or x == y. */
static bool add_transport(struct bench *b, struct idset *ids, uint32_t x, uint32_t y, int64_t now)
{
    struct rf_row *r = &b->rows[b->n_rows];
    if (x == y)
        return false;
    sw_tp_id(&b->keys[x], &b->keys[y], "dmsg", &r->id);
    if (!idset_add(ids, &r->id))
        return false;
    bool lt = sw_pk_cmp(&b->keys[x], &b->keys[y]) < 0;
    r->a = b->keys[lt ? x : y];
    r->b = b->keys[lt ? y : x];
    r->up = true;
    r->updated = now;
    b->n_rows++;
    return true;
}

static void make_keys(struct bench *b)
{
    struct sw_keypair kp;
    for (uint32_t i = 0; i < MAX_KEYS; i++) {
        if (sw_keypair_generate(&kp))
            bu_die("key generation failed");
        b->keys[i] = kp.pk;
        sw_pk_to_hex(&kp.pk, b->hex[i]);
    }
    sw_keypair_wipe(&kp);
}

/* 2 x n_keys transports: a random ring through every key, then random chords. */
static void make_graph(struct bench *b)
{
    uint32_t n = b->n_keys;
    size_t want = 2 * (size_t)n;
    struct idset *ids = calloc(1, sizeof(*ids));
    uint32_t *perm = malloc(n * sizeof(*perm));
    int64_t now = sw_unix_ms() / 1000;

    b->n_rows = 0;
    b->rows = calloc(want, sizeof(*b->rows));
    if (!ids || !perm || !b->rows)
        bu_die("out of memory");
    for (uint32_t i = 0; i < n; i++)
        perm[i] = i;
    for (uint32_t i = n - 1; i > 0; i--) {
        uint32_t j = randombytes_uniform(i + 1), t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    for (uint32_t i = 0; i < n; i++)
        add_transport(b, ids, perm[i], perm[(i + 1) % n], now);
    while (b->n_rows < want)
        add_transport(b, ids, randombytes_uniform(n), randombytes_uniform(n), now);
    free(ids);
    free(perm);
}

static int copy_row(struct sw_buf *out, const struct rf_row *r)
{
    char id[SW_UUID_STR_LEN + 1], ea[SW_PK_HEX_LEN + 1], eb[SW_PK_HEX_LEN + 1];
    sw_uuid_format(&r->id, id);
    sw_pk_to_hex(&r->a, ea);
    sw_pk_to_hex(&r->b, eb);
    /* signatures are never checked on reads */
    return sw_buf_printf(out, "%s\t\\\\x%s\t\\\\x%s\tdmsg\t\t\\\\x00\t\\\\x00\tt\tt\t%" PRId64 "\t%" PRId64 "\t%" PRId64 "\n",
                         id, ea, eb, r->updated, r->updated, r->updated);
}

static int exec_ok(PGconn *pg, const char *sql, ExecStatusType want)
{
    PGresult *r = PQexec(pg, sql);
    int ok = PQresultStatus(r) == want;
    PQclear(r);
    return ok ? 0 : -1;
}

/* COPY into td_transports (timed into *copy_s), then VACUUM ANALYZE (into *vacuum_s). */
static void populate(const struct bench *b, double *copy_s, double *vacuum_s)
{
    int64_t t0 = sw_mono_ns(), t1;
    PGconn *pg = PQconnectdb(b->db_url);
    struct sw_buf buf;
    PGresult *r = NULL;
    int ok = 0;

    sw_buf_init(&buf, 0);
    if (PQstatus(pg) != CONNECTION_OK ||
        exec_ok(pg, "COPY td_transports (t_id, edge_a, edge_b, type, label, sig_a, sig_b, up_a,"
                    " up_b, registered, updated_a, updated_b) FROM STDIN", PGRES_COPY_IN))
        goto out;
    for (size_t i = 0; i < b->n_rows; i++) {
        if (copy_row(&buf, &b->rows[i]))
            goto out;
        if (buf.len > (1u << 16) || i + 1 == b->n_rows) {
            if (PQputCopyData(pg, buf.data, (int)buf.len) != 1)
                goto out;
            sw_buf_reset(&buf);
        }
    }
    if (PQputCopyEnd(pg, NULL) != 1)
        goto out;
    r = PQgetResult(pg);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        goto out;
    t1 = sw_mono_ns();
    *copy_s = (double)(t1 - t0) / 1e9;
    ok = exec_ok(pg, "VACUUM ANALYZE td_transports", PGRES_COMMAND_OK) == 0;
    *vacuum_s = (double)(sw_mono_ns() - t1) / 1e9;
out:
    if (!ok)
        bu_die("populating td_transports failed: %s", PQerrorMessage(pg));
    sw_buf_free(&buf);
    PQclear(r);
    PQfinish(pg);
}

/* ---- daemons ----------------------------------------------------------------------------- */

static pid_t spawn_and_wait(const char *const argv[], const char *base, const char *log)
{
    char health[URL_MAX];
    pid_t pid = th_spawn(argv, NULL, log);
    snprintf(health, sizeof(health), "%s/health", base);
    if (pid < 0 || th_wait_http(health, 60000)) {
        th_dump_log(log);
        bu_die("%s did not come up at %s", argv[0], base);
    }
    return pid;
}

/* The transport discovery only creates the schema; it is stopped before the load. */
static void create_schema(struct bench *b)
{
    char addr[32], base[64];
    uint16_t port = th_free_port();
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", port);
    snprintf(base, sizeof(base), "http://%s", addr);
    const char *argv[] = { th_bin("transport-discovery"), "--addr", addr, "--db", b->db_url, NULL };
    th_stop(spawn_and_wait(argv, base, b->td_log), 5000);
}

static double start_route_finder(struct bench *b)
{
    char addr[32], threads[16];
    int64_t t0 = sw_mono_ns();
    uint16_t port = th_free_port();
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", port);
    snprintf(threads, sizeof(threads), "%d", DAEMON_THREADS);
    snprintf(b->base_url, sizeof(b->base_url), "http://%s", addr);
    snprintf(b->routes_url, sizeof(b->routes_url), "%s/routes", b->base_url);
    const char *argv[] = { th_bin("route-finder"), "--addr", addr, "--db", b->db_url, "--threads", threads, NULL };
    b->daemon = spawn_and_wait(argv, b->base_url, b->rf_log);
    return (double)(sw_mono_ns() - t0) / 1e9;
}

/* A sample line's value from the daemon's /metrics; -1 when absent. */
static double metric(const struct bench *b, const char *name)
{
    struct sw_http_client *c = sw_http_client_new(NULL);
    struct sw_http_result res = { 0 };
    char url[URL_MAX];
    double v = -1;
    snprintf(url, sizeof(url), "%s/metrics", b->base_url);
    if (c && sw_http_do(c, "GET", url, NULL, NULL, 0, &res, NULL) == SW_OK && res.status == 200) {
        for (const char *p = res.body; (p = strstr(p, name)); p++)
            if ((p == res.body || p[-1] == '\n') && p[strlen(name)] == ' ') {
                v = strtod(p + strlen(name) + 1, NULL);
                break;
            }
    }
    sw_http_result_free(&res);
    sw_http_client_free(c);
    return v;
}

/* ---- request bodies ---------------------------------------------------------------------- */

static char *pair_body(const struct bench *b, size_t i, unsigned count)
{
    struct sw_buf buf;
    sw_buf_init(&buf, 0);
    sw_buf_printf(&buf, "{\"edges\":[[\"%s\",\"%s\"]],\"opts\":{\"max_hops\":%d,\"count\":%u}}",
                  b->hex[b->pair_src[i]], b->hex[b->pair_dst[i]], MAX_HOPS, count);
    if (!buf.data)
        bu_die("out of memory");
    return sw_buf_steal(&buf, NULL);
}

static void make_bodies(struct bench *b)
{
    for (size_t i = 0; i < PAIRS; i++) {
        b->pair_src[i] = randombytes_uniform(b->n_keys);
        do
            b->pair_dst[i] = randombytes_uniform(b->n_keys);
        while (b->pair_dst[i] == b->pair_src[i]);
        b->body1[i] = pair_body(b, i, 1);
        b->body3[i] = pair_body(b, i, 3);
    }
}

static void free_bodies(struct bench *b)
{
    for (size_t i = 0; i < PAIRS; i++) {
        free(b->body1[i]);
        free(b->body3[i]);
        b->body1[i] = b->body3[i] = NULL;
    }
}

/* ---- phases ------------------------------------------------------------------------------ */

static const struct phase *phase_of(const struct bu_worker *w)
{
    return (const struct phase *)w->ph;
}

static int request_routes(struct bu_worker *w, size_t i, char *why)
{
    const char *body = bu_target(w, i);
    struct sw_http_result res = { 0 };
    struct sw_error err = { 0 };
    int rc = sw_http_do(w->http, "POST", phase_of(w)->b->routes_url, NULL, body, strlen(body), &res, &err);
    rc = bu_http_answer(rc, &err, &res, 200, why);
    sw_http_result_free(&res);
    return rc;
}

static int prepare_search(struct bu_worker *w, char *why)
{
    struct rf_scratch **s = w->state;
    if (!(*s = rf_scratch_new())) {
        snprintf(why, BU_WHY_MAX, "out of memory");
        return -1;
    }
    return 0;
}

static void release_search(struct bu_worker *w)
{
    struct rf_scratch **s = w->state;
    rf_scratch_free(*s);
}

/* The daemon's search for one pair, without HTTP or JSON. */
static int request_search(struct bu_worker *w, size_t i, char *why)
{
    const struct phase *ph = phase_of(w);
    const struct bench *b = ph->b;
    size_t k = (w->index * 997 + i) % PAIRS, n = 0;
    struct rf_path paths[RF_MAX_COUNT];
    struct rf_query q = { rf_graph_find(b->graph, &b->keys[b->pair_src[k]]), rf_graph_find(b->graph, &b->keys[b->pair_dst[k]]),
                          1, MAX_HOPS, ph->count, sw_unix_ms() / 1000 - 300, 0 };
    if (rf_search(b->graph, &q, *(struct rf_scratch **)w->state, paths, &n, NULL) || n != ph->count) {
        snprintf(why, BU_WHY_MAX, "search found %zu paths, want %u", n, ph->count);
        return -1;
    }
    return 0;
}

static const struct bu_result *run_phase(struct bench *b, struct phase *ph)
{
    struct bu_result *res = &b->results[b->n_results++];
    ph->b = b;
    ph->bu.procs = &b->procs;
    bu_run_phase(&ph->bu, res);
    bu_print_result(res, NAME_W, b->procs.n);
    return res;
}

#define HTTP_PHASE(label, n, bodies)                                                            \
    { .bu = { .name = label, .threads = n, .max_requests = 200000, .max_seconds = HTTP_SECONDS, \
              .targets = (const char *const *)(bodies), .n_targets = PAIRS,                    \
              .prepare = bu_prepare_http, .request = request_routes } }
#define SEARCH_PHASE(label, n, k)                                                               \
    { .bu = { .name = label, .threads = n, .max_requests = 1000000, .max_seconds = SEARCH_SECONDS, \
              .state_size = sizeof(struct rf_scratch *), .prepare = prepare_search,          \
              .request = request_search, .release = release_search }, .count = k }

/* Order matters: the summary reads the rows by index. */
enum { R_SEARCH1, R_SEARCH3, R_HTTP1_1C, R_HTTP1_16C, R_HTTP3_16C };

static void run_all(struct bench *b, struct size_result *sr)
{
    struct phase phases[PHASES_PER_SIZE] = {
        [R_SEARCH1] = SEARCH_PHASE("in-process search, count=1", 1, 1),
        [R_SEARCH3] = SEARCH_PHASE("in-process search, count=3", 1, 3),
        [R_HTTP1_1C] = HTTP_PHASE("POST /routes, 1 pair, count=1", 1, b->body1),
        [R_HTTP1_16C] = HTTP_PHASE("POST /routes, 1 pair, count=1", MANY_CLIENTS, b->body1),
        [R_HTTP3_16C] = HTTP_PHASE("POST /routes, 1 pair, count=3", MANY_CLIENTS, b->body3),
    };
    bu_print_header(NAME_W, "requests", "req/s", "cores busy: rf / pg / bench / other", 0);
    for (size_t i = 0; i < PHASES_PER_SIZE; i++)
        sr->r[i] = run_phase(b, &phases[i]);
}

/* ---- freshness --------------------------------------------------------------------------- */

/* t_id of the first hop of pair k's first path, from the daemon; "" on failure. */
static void first_hop(struct sw_http_client *c, const struct bench *b, size_t k, char *tid, size_t cap)
{
    struct sw_http_result res = { 0 };
    struct json_object *o = NULL, *pair = NULL;
    char key[2 * SW_PK_HEX_LEN + 2];
    tid[0] = '\0';
    snprintf(key, sizeof(key), "%s:%s", b->hex[b->pair_src[k]], b->hex[b->pair_dst[k]]);
    if (sw_http_do(c, "POST", b->routes_url, NULL, b->body1[k], strlen(b->body1[k]), &res, NULL) == SW_OK &&
        res.status == 200 && sw_json_parse(res.body, res.body_len, &o, NULL) == SW_OK &&
        json_object_object_get_ex(o, key, &pair)) {
        struct json_object *hop = json_object_array_get_idx(
            json_object_array_get_idx(json_object_object_get(pair, "forward"), 0), 0);
        snprintf(tid, cap, "%s", json_object_get_string(json_object_object_get(hop, "t_id")));
    }
    json_object_put(o);
    sw_http_result_free(&res);
}

static void set_up(PGconn *pg, const char *tid, bool up)
{
    const char *params[1] = { tid };
    PGresult *r = PQexecParams(pg, up ? "UPDATE td_transports SET up_a = true WHERE t_id = $1::uuid"
                                      : "UPDATE td_transports SET up_a = false WHERE t_id = $1::uuid",
                               1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        bu_die("update: %s", PQerrorMessage(pg));
    PQclear(r);
}

/* Marks the first transport of a pair's route down with an UPDATE and polls POST /routes
 * until the answer avoids it: notification, re-read, snapshot rebuild, swap. */
static void freshness(struct bench *b)
{
    struct sw_http_client *c = sw_http_client_new(NULL);
    PGconn *pg = PQconnectdb(b->db_url);
    double ms[FRESH_ROUNDS];
    char tid[64], now_tid[64];

    if (!c || PQstatus(pg) != CONNECTION_OK)
        bu_die("freshness: cannot connect");
    for (size_t k = 0; k < FRESH_ROUNDS; k++) {
        int64_t t0;
        first_hop(c, b, k, tid, sizeof(tid));
        if (!tid[0])
            bu_die("freshness: no route for pair %zu", k);
        t0 = sw_mono_ns();
        set_up(pg, tid, false);
        do
            first_hop(c, b, k, now_tid, sizeof(now_tid));
        while (strcmp(tid, now_tid) == 0 && sw_mono_ns() - t0 < 5000000000LL);
        ms[k] = (double)(sw_mono_ns() - t0) / 1e6;
        if (strcmp(tid, now_tid) == 0)
            bu_die("freshness: the change did not show within 5 s");
        set_up(pg, tid, true);
        usleep(150 * 1000);
    }
    bu_sort(ms, FRESH_ROUNDS);
    printf("  change visible (UPDATE td_transports -> answer avoids it), %d rounds: p50 %.1f ms, max %.1f ms\n",
           FRESH_ROUNDS, bu_percentile(ms, FRESH_ROUNDS, 0.5), ms[FRESH_ROUNDS - 1]);
    PQfinish(pg);
    sw_http_client_free(c);
}

/* ---- main -------------------------------------------------------------------------------- */

static double build_in_process(struct bench *b)
{
    int64_t t0 = sw_mono_ns();
    if (rf_graph_build(b->rows, b->n_rows, &b->graph))
        bu_die("building the graph failed");
    return (double)(sw_mono_ns() - t0) / 1e9;
}

static size_t total_errors(const struct bench *b)
{
    size_t n = 0;
    for (size_t i = 0; i < b->n_results; i++)
        n += b->results[i].errors;
    return n;
}

/* Hop distance between pair 0..samples-1 (one-sided search count=1): mean and max. */
static void hop_stats(const struct bench *b, size_t samples, double *mean, unsigned *max)
{
    struct rf_scratch *s = rf_scratch_new();
    struct rf_path path;
    size_t sum = 0, n = 0;
    *max = 0;
    if (!s)
        bu_die("out of memory");
    for (size_t k = 0; k < samples && k < PAIRS; k++) {
        size_t got = 0;
        struct rf_query q = { rf_graph_find(b->graph, &b->keys[b->pair_src[k]]),
                              rf_graph_find(b->graph, &b->keys[b->pair_dst[k]]), 1, MAX_HOPS, 1,
                              sw_unix_ms() / 1000 - 300, 0 };
        if (rf_search(b->graph, &q, s, &path, &got, NULL) || got != 1)
            continue;
        sum += path.len;
        n++;
        if (path.len > *max)
            *max = path.len;
    }
    *mean = n ? (double)sum / (double)n : 0;
    rf_scratch_free(s);
}

/* One size: fresh database, COPY, daemon start, phases; freshness when asked. */
static void run_size(struct bench *b, size_t si, bool fresh)
{
    struct size_result *sr = &b->sizes[si];
    double build_s, hops_mean;
    unsigned hops_max;
    long hwm, rss;

    b->n_keys = sizes[si];
    snprintf(b->db_url, sizeof(b->db_url), "%s", th_fresh_db("bench_rf"));
    create_schema(b);
    make_graph(b);
    sr->keys = b->n_keys;
    sr->transports = b->n_rows;
    populate(b, &sr->copy_s, &sr->vacuum_s);
    sr->start_s = start_route_finder(b);
    sr->load_s = metric(b, "rf_graph_load_seconds");
    bu_proc_mem(b->daemon, &hwm, &rss);
    sr->rss_mib = (double)rss / 1024;
    build_s = build_in_process(b);
    b->procs = (struct bu_procs){ .pid = { b->daemon }, .n = 1, .postmaster = bu_postmaster_pid() };
    make_bodies(b);
    hop_stats(b, 512, &hops_mean, &hops_max);

    printf("--- %u keys, %zu transports (average degree %.1f), all up: a random ring + random chords\n",
           b->n_keys, b->n_rows, 2.0 * (double)b->n_rows / b->n_keys);
    printf("  load:    COPY into td_transports %.3f s (then VACUUM ANALYZE %.3f s); route-finder start to\n"
           "           ready (/health) %.3f s, of which its full load (query + build) %.3f s;\n"
           "           in-process snapshot build %.3f s\n",
           sr->copy_s, sr->vacuum_s, sr->start_s, sr->load_s, build_s);
    printf("  daemon:  --threads %d; graph seen: %.0f keys, %.0f transports (%.0f usable);\n"
           "           RSS after load %.1f MiB (peak %.1f MiB)\n",
           DAEMON_THREADS, metric(b, "rf_graph_keys"), metric(b, "rf_graph_transports"),
           metric(b, "rf_graph_transports_usable"), sr->rss_mib, (double)hwm / 1024);
    printf("  queries: %d random pairs, max_hops %d; shortest path over 512 of them: mean %.2f hops,\n"
           "           max %u; HTTP phases %d s, in-process %d s\n",
           PAIRS, MAX_HOPS, hops_mean, hops_max, HTTP_SECONDS, SEARCH_SECONDS);
    run_all(b, sr);
    printf("  in-process search CPU per query: count=1 %.1f us, count=3 %.1f us\n",
           bu_cpu_us_per_op(sr->r[R_SEARCH1]), bu_cpu_us_per_op(sr->r[R_SEARCH3]));
    if (fresh) {
        freshness(b);
        printf("  graph updates applied by the daemon: %.0f, full loads: %.0f\n",
               metric(b, "rf_graph_updates_total"), metric(b, "rf_graph_full_loads_total"));
    }
    bu_proc_mem(b->daemon, &hwm, &rss);
    printf("  daemon RSS at the end: %.1f MiB (peak %.1f MiB)\n\n", (double)rss / 1024, (double)hwm / 1024);

    th_stop(b->daemon, 5000);
    b->daemon = 0;
    rf_graph_unref(b->graph);
    b->graph = NULL;
    free(b->rows);
    b->rows = NULL;
    free_bodies(b);
}

static void print_summary(const struct bench *b)
{
    printf("summary (req/s and p50/p99 ms per HTTP column; start = spawn to ready, load = the daemon's own full load,\n         RSS = daemon after load; inproc = in-process searches/s, count=1 and count=3)\n");
    printf("%7s %8s %7s %7s %7s %7s | %-22s | %-22s | %-22s | %9s %9s\n", "keys", "tps", "COPY s",
           "start s", "load s", "RSS MiB", "count=1, 1 client", "count=1, 16 clients", "count=3, 16 clients",
           "inproc/s1", "inproc/s3");
    for (size_t i = 0; i < N_SIZES; i++) {
        const struct size_result *sr = &b->sizes[i];
        char cell[3][32];
        static const int rows[3] = { R_HTTP1_1C, R_HTTP1_16C, R_HTTP3_16C };
        double inproc[2];
        for (int c = 0; c < 3; c++) {
            const struct bu_result *r = sr->r[rows[c]];
            snprintf(cell[c], sizeof(cell[c]), "%7.0f %6.3f/%6.3f", r->seconds > 0 ? (double)r->requests / r->seconds : 0,
                     r->p50_ms, r->p99_ms);
        }
        for (int c = 0; c < 2; c++) {
            const struct bu_result *r = sr->r[c == 0 ? R_SEARCH1 : R_SEARCH3];
            inproc[c] = r->seconds > 0 ? (double)r->requests / r->seconds : 0;
        }
        printf("%7u %8zu %7.3f %7.3f %7.3f %7.1f | %-22s | %-22s | %-22s | %9.0f %9.0f\n", sr->keys, sr->transports,
               sr->copy_s, sr->start_s, sr->load_s, sr->rss_mib, cell[0], cell[1], cell[2], inproc[0], inproc[1]);
    }
}

int main(void)
{
    static struct bench b;
    const char *log_dir = getenv("SW_TEST_LOG_DIR");
    double t0 = (sw_mono_ns() / 1e9);

    setvbuf(stdout, NULL, _IOLBF, 0);
    if (sw_crypto_init() || sw_http_global_init())
        bu_die("cannot initialise libsodium / libcurl");
    snprintf(b.rf_log, sizeof(b.rf_log), "%s/bench_route_finder.log", log_dir && *log_dir ? log_dir : "/tmp");
    snprintf(b.td_log, sizeof(b.td_log), "%s/bench_route_finder-td.log", log_dir && *log_dir ? log_dir : "/tmp");
    printf("route-finder benchmark (%ld CPUs): random graphs, 2 transports per key, %s\n",
           sysconf(_SC_NPROCESSORS_ONLN), th_bin("route-finder"));
    make_keys(&b);
    printf("generated %d keys in %.2f s\n\n", MAX_KEYS, (sw_mono_ns() / 1e9) - t0);
    for (size_t i = 0; i < N_SIZES; i++)
        run_size(&b, i, i == N_SIZES - 1);
    print_summary(&b);
    printf("errors: %zu; total %.1f s\n", total_errors(&b), (sw_mono_ns() / 1e9) - t0);
    return total_errors(&b) ? 1 : 0;
}
