/* bench_route_finder.c — the route finder on a large graph: 10,000 keys and 50,000 up
 * transports (a ring through every key, so all pairs are connected; 8 hubs with 500
 * transports each; the rest between random keys), loaded straight into td_transports with
 * COPY. Measures the daemon's start (full load) time and memory, POST /routes throughput
 * and latency at 1 and 16 client threads for count=1 and count=3 on random pairs, the
 * same search in-process without HTTP, and how long a change in td_transports takes to
 * show in the answers (LISTEN/NOTIFY, re-read, rebuild of the 50,000-transport snapshot).
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

#define KEYS 10000
#define TRANSPORTS 50000
#define HUBS 8
#define HUB_DEGREE 500
#define PAIRS 4096
#define DAEMON_THREADS 16
#define MANY_CLIENTS 16
#define BATCH_PAIRS 16
#define FRESH_ROUNDS 10
#define MAX_RESULTS 16
#define NAME_W 40
#define URL_MAX 128

struct bench {
    char db_url[1024];
    char base_url[64], routes_url[URL_MAX];
    char rf_log[PATH_MAX], td_log[PATH_MAX];
    pid_t daemon;
    struct bu_procs procs;
    struct sw_pk keys[KEYS];
    char hex[KEYS][SW_PK_HEX_LEN + 1];
    struct rf_row *rows; /* what was loaded, for the in-process phases */
    size_t n_rows;
    struct rf_graph *graph;
    uint32_t pair_src[PAIRS], pair_dst[PAIRS]; /* key indices */
    char *body1[PAIRS], *body3[PAIRS], *body_batch[PAIRS / BATCH_PAIRS];
    struct bu_result results[MAX_RESULTS];
    size_t n_results;
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

/* A set of transport IDs (first 8 bytes), to keep every pair+type once. */
struct idset {
    uint64_t slot[1 << 17];
};

static bool idset_add(struct idset *s, const struct sw_uuid *id)
{
    uint64_t k = id_key(id);
    for (size_t i = k & ((1 << 17) - 1);; i = (i + 1) & ((1 << 17) - 1)) {
        if (s->slot[i] == k)
            return false;
        if (!s->slot[i]) {
            s->slot[i] = k;
            return true;
        }
    }
}

/* Adds a transport between keys a and b (dmsg, else stcp when dmsg exists); false when
 * both exist or a == b. */
static bool add_transport(struct bench *b, struct idset *ids, uint32_t x, uint32_t y, int64_t now)
{
    static const char *const types[] = { "dmsg", "stcp" };
    if (x == y)
        return false;
    for (int t = 0; t < 2; t++) {
        struct rf_row *r = &b->rows[b->n_rows];
        sw_tp_id(&b->keys[x], &b->keys[y], types[t], &r->id);
        if (!idset_add(ids, &r->id))
            continue;
        bool lt = sw_pk_cmp(&b->keys[x], &b->keys[y]) < 0;
        r->a = b->keys[lt ? x : y];
        r->b = b->keys[lt ? y : x];
        r->up = true;
        r->updated = now;
        b->n_rows++;
        return true;
    }
    return false;
}

static void make_graph(struct bench *b)
{
    struct idset *ids = calloc(1, sizeof(*ids));
    uint32_t *perm = malloc(KEYS * sizeof(*perm));
    int64_t now = (int64_t)time(NULL);
    struct sw_keypair kp;

    b->rows = calloc(TRANSPORTS, sizeof(*b->rows));
    if (!ids || !perm || !b->rows)
        bu_die("out of memory");
    for (uint32_t i = 0; i < KEYS; i++) {
        if (sw_keypair_generate(&kp))
            bu_die("key generation failed");
        b->keys[i] = kp.pk;
        sw_pk_to_hex(&kp.pk, b->hex[i]);
        perm[i] = i;
    }
    sw_keypair_wipe(&kp);
    for (uint32_t i = KEYS - 1; i > 0; i--) { /* a random ring through every key */
        uint32_t j = randombytes_uniform(i + 1), t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    for (uint32_t i = 0; i < KEYS; i++)
        add_transport(b, ids, perm[i], perm[(i + 1) % KEYS], now);
    for (uint32_t h = 0; h < HUBS; h++)
        for (uint32_t k = 0; k < HUB_DEGREE;)
            k += add_transport(b, ids, h, HUBS + randombytes_uniform(KEYS - HUBS), now);
    while (b->n_rows < TRANSPORTS)
        add_transport(b, ids, randombytes_uniform(KEYS), randombytes_uniform(KEYS), now);
    free(ids);
    free(perm);
}

static int copy_row(struct sw_buf *out, const struct rf_row *r)
{
    char id[SW_UUID_STR_LEN + 1], ea[SW_PK_HEX_LEN + 1], eb[SW_PK_HEX_LEN + 1];
    sw_uuid_format(&r->id, id);
    sw_pk_to_hex(&r->a, ea);
    sw_pk_to_hex(&r->b, eb);
    /* the type is not read by the route finder; signatures are never checked on reads */
    return sw_buf_printf(out, "%s\t\\\\x%s\t\\\\x%s\tdmsg\t\t\\\\x00\t\\\\x00\tt\tt\t%" PRId64 "\t%" PRId64 "\n", id,
                         ea, eb, r->updated, r->updated);
}

static int exec_ok(PGconn *pg, const char *sql, ExecStatusType want)
{
    PGresult *r = PQexec(pg, sql);
    int ok = PQresultStatus(r) == want;
    PQclear(r);
    return ok ? 0 : -1;
}

/* COPY into td_transports; returns the seconds it took. */
static double populate(const struct bench *b)
{
    int64_t t0 = bu_now_ns();
    PGconn *pg = PQconnectdb(b->db_url);
    struct sw_buf buf;
    PGresult *r = NULL;
    int ok = 0;

    sw_buf_init(&buf, 0);
    if (PQstatus(pg) != CONNECTION_OK ||
        exec_ok(pg, "COPY td_transports (t_id, edge_a, edge_b, type, label, sig_a, sig_b, up_a,"
                    " up_b, registered, updated) FROM STDIN", PGRES_COPY_IN))
        goto out;
    for (size_t i = 0; i < b->n_rows; i++) {
        if (copy_row(&buf, &b->rows[i]))
            goto out;
        if ((buf.len > (1u << 16) || i + 1 == b->n_rows) && PQputCopyData(pg, buf.data, (int)buf.len) != 1)
            goto out;
        if (buf.len > (1u << 16) || i + 1 == b->n_rows)
            sw_buf_reset(&buf);
    }
    if (PQputCopyEnd(pg, NULL) != 1)
        goto out;
    r = PQgetResult(pg);
    ok = PQresultStatus(r) == PGRES_COMMAND_OK && exec_ok(pg, "VACUUM ANALYZE td_transports", PGRES_COMMAND_OK) == 0;
out:
    if (!ok)
        bu_die("populating td_transports failed: %s", PQerrorMessage(pg));
    sw_buf_free(&buf);
    PQclear(r);
    PQfinish(pg);
    return (double)(bu_now_ns() - t0) / 1e9;
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
    int64_t t0 = bu_now_ns();
    uint16_t port = th_free_port();
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", port);
    snprintf(threads, sizeof(threads), "%d", DAEMON_THREADS);
    snprintf(b->base_url, sizeof(b->base_url), "http://%s", addr);
    snprintf(b->routes_url, sizeof(b->routes_url), "%s/routes", b->base_url);
    const char *argv[] = { th_bin("route-finder"), "--addr", addr, "--db", b->db_url, "--threads", threads, NULL };
    b->daemon = spawn_and_wait(argv, b->base_url, b->rf_log);
    return (double)(bu_now_ns() - t0) / 1e9;
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

static char *pairs_body(const struct bench *b, size_t first, size_t n, unsigned count)
{
    struct sw_buf buf;
    sw_buf_init(&buf, 0);
    sw_buf_printf(&buf, "{\"edges\":[");
    for (size_t i = first; i < first + n; i++)
        sw_buf_printf(&buf, "%s[\"%s\",\"%s\"]", i > first ? "," : "", b->hex[b->pair_src[i]], b->hex[b->pair_dst[i]]);
    sw_buf_printf(&buf, "],\"opts\":{\"count\":%u}}", count);
    if (!buf.data)
        bu_die("out of memory");
    return sw_buf_steal(&buf, NULL);
}

static void make_bodies(struct bench *b)
{
    for (size_t i = 0; i < PAIRS; i++) {
        b->pair_src[i] = randombytes_uniform(KEYS);
        do
            b->pair_dst[i] = randombytes_uniform(KEYS);
        while (b->pair_dst[i] == b->pair_src[i]);
    }
    for (size_t i = 0; i < PAIRS; i++) {
        b->body1[i] = pairs_body(b, i, 1, 1);
        b->body3[i] = pairs_body(b, i, 1, 3);
    }
    for (size_t i = 0; i < PAIRS / BATCH_PAIRS; i++)
        b->body_batch[i] = pairs_body(b, i * BATCH_PAIRS, BATCH_PAIRS, 1);
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
                          1, 10, ph->count, (int64_t)time(NULL) - 300, 0 };
    if (rf_search(b->graph, &q, *(struct rf_scratch **)w->state, paths, &n, NULL) || n != ph->count) {
        snprintf(why, BU_WHY_MAX, "search found %zu paths, want %u", n, ph->count);
        return -1;
    }
    return 0;
}

static void run_phase(struct bench *b, struct phase *ph)
{
    struct bu_result *res = &b->results[b->n_results++];
    ph->b = b;
    ph->bu.procs = &b->procs;
    bu_run_phase(&ph->bu, res);
    bu_print_result(res, NAME_W, b->procs.n);
}

#define HTTP_PHASE(label, n, bodies, nb)                                                        \
    { .bu = { .name = label, .threads = n, .max_requests = 400000, .max_seconds = 4,          \
              .targets = (const char *const *)(bodies), .n_targets = nb,                      \
              .prepare = bu_prepare_http, .request = request_routes } }
#define SEARCH_PHASE(label, n, k)                                                               \
    { .bu = { .name = label, .threads = n, .max_requests = 1000000, .max_seconds = 2,         \
              .state_size = sizeof(struct rf_scratch *), .prepare = prepare_search,          \
              .request = request_search, .release = release_search }, .count = k }

static void run_all(struct bench *b)
{
    struct phase phases[] = {
        SEARCH_PHASE("in-process search, count=1", 1, 1),
        SEARCH_PHASE("in-process search, count=3", 1, 3),
        HTTP_PHASE("POST /routes, 1 pair, count=1", 1, b->body1, PAIRS),
        HTTP_PHASE("POST /routes, 1 pair, count=1", MANY_CLIENTS, b->body1, PAIRS),
        HTTP_PHASE("POST /routes, 1 pair, count=3", 1, b->body3, PAIRS),
        HTTP_PHASE("POST /routes, 1 pair, count=3", MANY_CLIENTS, b->body3, PAIRS),
        HTTP_PHASE("POST /routes, 16 pairs, count=1", MANY_CLIENTS, b->body_batch, PAIRS / BATCH_PAIRS),
    };
    bu_print_header(NAME_W, "requests", "req/s", "cores busy: rf / pg / bench / other", 0);
    for (size_t i = 0; i < sizeof(phases) / sizeof(phases[0]); i++)
        run_phase(b, &phases[i]);
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
        t0 = bu_now_ns();
        set_up(pg, tid, false);
        do
            first_hop(c, b, k, now_tid, sizeof(now_tid));
        while (strcmp(tid, now_tid) == 0 && bu_now_ns() - t0 < 5000000000LL);
        ms[k] = (double)(bu_now_ns() - t0) / 1e6;
        if (strcmp(tid, now_tid) == 0)
            bu_die("freshness: the change did not show within 5 s");
        set_up(pg, tid, true);
        usleep(150 * 1000);
    }
    bu_sort(ms, FRESH_ROUNDS);
    printf("change visible (UPDATE td_transports -> answer avoids it), %d rounds: p50 %.1f ms, max %.1f ms\n",
           FRESH_ROUNDS, bu_percentile(ms, FRESH_ROUNDS, 0.5), ms[FRESH_ROUNDS - 1]);
    PQfinish(pg);
    sw_http_client_free(c);
}

/* ---- main -------------------------------------------------------------------------------- */

static double build_in_process(struct bench *b)
{
    int64_t t0 = bu_now_ns();
    if (rf_graph_build(b->rows, b->n_rows, &b->graph))
        bu_die("building the graph failed");
    return (double)(bu_now_ns() - t0) / 1e9;
}

static size_t total_errors(const struct bench *b)
{
    size_t n = 0;
    for (size_t i = 0; i < b->n_results; i++)
        n += b->results[i].errors;
    return n;
}

static void count_parallel(struct bench *b, size_t *parallel)
{
    *parallel = 0;
    for (uint32_t v = 0; v < b->graph->n_nodes; v++)
        for (uint32_t k = b->graph->adj_off[v] + 1; k < b->graph->adj_off[v + 1]; k++)
            *parallel += b->graph->adj[k].node == b->graph->adj[k - 1].node && v < b->graph->adj[k].node;
}

static void print_intro(const struct bench *b, double copy_s, double start_s, double build_s, size_t parallel)
{
    long hwm, rss;
    bu_proc_mem(b->daemon, &hwm, &rss);
    printf("route-finder benchmark (%ld CPUs)\n", sysconf(_SC_NPROCESSORS_ONLN));
    printf("  graph:   %d keys, %zu transports, all up: a ring through every key, %d hubs x %d, the rest\n"
           "           between random keys (%zu key pairs with two transports, dmsg + stcp)\n",
           KEYS, b->n_rows, HUBS, HUB_DEGREE, parallel);
    printf("  load:    COPY into td_transports %.2f s; route-finder start to /health %.2f s, of which the\n"
           "           full load (query + build) %.3f s; in-process snapshot build %.3f s\n",
           copy_s, start_s, metric(b, "rf_graph_load_seconds"), build_s);
    printf("  daemon:  %s --threads %d; graph seen: %.0f keys, %.0f transports (%.0f usable);\n"
           "           RSS %.1f MiB (peak %.1f MiB)\n",
           th_bin("route-finder"), DAEMON_THREADS, metric(b, "rf_graph_keys"), metric(b, "rf_graph_transports"),
           metric(b, "rf_graph_transports_usable"), (double)rss / 1024, (double)hwm / 1024);
    printf("  queries: %d random pairs (max_hops 10); HTTP phases 4 s, in-process 2 s\n\n", PAIRS);
}

int main(void)
{
    static struct bench b;
    const char *log_dir = getenv("SW_TEST_LOG_DIR");
    double copy_s, start_s, build_s;
    size_t parallel;

    setvbuf(stdout, NULL, _IOLBF, 0);
    if (sw_crypto_init() || sw_http_global_init())
        bu_die("cannot initialise libsodium / libcurl");
    snprintf(b.db_url, sizeof(b.db_url), "%s", th_fresh_db("bench_rf"));
    snprintf(b.rf_log, sizeof(b.rf_log), "%s/bench_route_finder.log", log_dir && *log_dir ? log_dir : "/tmp");
    snprintf(b.td_log, sizeof(b.td_log), "%s/bench_route_finder-td.log", log_dir && *log_dir ? log_dir : "/tmp");
    create_schema(&b);
    make_graph(&b);
    copy_s = populate(&b);
    start_s = start_route_finder(&b);
    build_s = build_in_process(&b);
    count_parallel(&b, &parallel);
    b.procs = (struct bu_procs){ .pid = { b.daemon }, .n = 1, .postmaster = bu_postmaster_pid() };
    make_bodies(&b);
    print_intro(&b, copy_s, start_s, build_s, parallel);
    run_all(&b);
    printf("\nin-process search CPU per query (immune to other load): count=1 %.1f us, count=3 %.1f us\n",
           bu_cpu_us_per_op(&b.results[0]), bu_cpu_us_per_op(&b.results[1]));
    freshness(&b);
    printf("graph updates applied by the daemon: %.0f, full loads: %.0f; daemon RSS now: ",
           metric(&b, "rf_graph_updates_total"), metric(&b, "rf_graph_full_loads_total"));
    {
        long hwm, rss;
        bu_proc_mem(b.daemon, &hwm, &rss);
        printf("%.1f MiB (peak %.1f MiB)\n", (double)rss / 1024, (double)hwm / 1024);
    }
    printf("errors: %zu\n", total_errors(&b));
    th_stop(b.daemon, 5000);
    rf_graph_unref(b.graph);
    free(b.rows);
    for (size_t i = 0; i < PAIRS; i++) {
        free(b.body1[i]);
        free(b.body3[i]);
    }
    for (size_t i = 0; i < PAIRS / BATCH_PAIRS; i++)
        free(b.body_batch[i]);
    return total_errors(&b) ? 1 : 0;
}
