/* Unit tests of the route finder's graph snapshot and k-shortest-paths search, on crafted
 * graphs and against a brute-force enumeration of every loopless path on random ones. */
#include "common/keys.h"
#include "route-finder/graph.h"
#include "route-finder/search.h"
#include "tests/harness/check_main.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOW 1800000000LL
#define CUTOFF (NOW - 300)

/* A transport between labelled nodes: node i's key sorts as i, transport id's as `id`. */
struct tedge {
    int a, b, id;
    bool down;
};

#define UP(a, b, id) { a, b, id, false }
#define DOWN(a, b, id) { a, b, id, true }

static struct sw_pk key_of(int label)
{
    struct sw_pk pk;
    memset(&pk, 0, sizeof(pk));
    pk.b[0] = 0x10;
    pk.b[30] = (uint8_t)(label >> 8);
    pk.b[31] = (uint8_t)label;
    return pk;
}

static struct sw_uuid id_of(int n)
{
    struct sw_uuid u;
    memset(&u, 0, sizeof(u));
    u.b[0] = 0x20;
    u.b[13] = (uint8_t)(n >> 16);
    u.b[14] = (uint8_t)(n >> 8);
    u.b[15] = (uint8_t)n;
    return u;
}

static struct rf_row row_of(const struct tedge *t)
{
    struct rf_row r = { .id = id_of(t->id), .a = key_of(t->a), .b = key_of(t->b), .updated = NOW, .up = !t->down };
    return r;
}

static struct rf_graph *build(const struct tedge *t, size_t n)
{
    struct rf_row *rows = calloc(n + 1, sizeof(*rows));
    struct rf_graph *g = NULL;
    for (size_t i = 0; i < n; i++)
        rows[i] = row_of(&t[i]);
    ck_assert_int_eq(rf_graph_build(rows, n, &g), SW_OK);
    free(rows);
    return g;
}

static uint32_t node(const struct rf_graph *g, int label)
{
    struct sw_pk pk = key_of(label);
    uint32_t i = rf_graph_find(g, &pk);
    ck_assert_msg(i != RF_NO_NODE, "node %d not in the graph", label);
    return i;
}

static int label_of(const struct rf_graph *g, uint32_t i)
{
    return g->pks[i].b[30] << 8 | g->pks[i].b[31];
}

static int tid_of(const struct rf_graph *g, uint32_t e)
{
    const uint8_t *b = g->edges[e].id.b;
    return b[13] << 16 | b[14] << 8 | b[15];
}

/* "0-1-3" (nodes), with "=id" after a hop when with_ids. */
static void fmt(const struct rf_graph *g, const struct rf_path *p, bool with_ids, char *out, size_t cap)
{
    size_t o = (size_t)snprintf(out, cap, "%d", label_of(g, p->nodes[0]));
    for (uint32_t k = 0; k < p->len && o < cap; k++) {
        if (with_ids)
            o += (size_t)snprintf(out + o, cap - o, "=%d", tid_of(g, p->edges[k]));
        o += (size_t)snprintf(out + o, cap - o, "-%d", label_of(g, p->nodes[k + 1]));
    }
}

struct q {
    int src, dst;
    unsigned min, max, count;
};

/* Runs a query and returns its paths joined by " | ". */
static char *run(const struct rf_graph *g, struct q qq, bool with_ids)
{
    static char out[4096];
    struct rf_query q = { node(g, qq.src), node(g, qq.dst), qq.min ? qq.min : 1, qq.max ? qq.max : 10,
                          qq.count ? qq.count : 1, CUTOFF, 0 };
    struct rf_path paths[RF_MAX_COUNT];
    struct rf_scratch *s = rf_scratch_new();
    size_t n = 0, o = 0;
    ck_assert_int_eq(rf_search(g, &q, s, paths, &n, NULL), SW_OK);
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        char one[512];
        fmt(g, &paths[i], with_ids, one, sizeof(one));
        o += (size_t)snprintf(out + o, sizeof(out) - o, "%s%s", i ? " | " : "", one);
    }
    rf_scratch_free(s);
    return out;
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

START_TEST(test_build_index)
{
    const struct tedge t[] = { UP(5, 2, 9), UP(2, 7, 3), UP(7, 5, 4), UP(3, 3, 1) /* self-loop */ };
    struct rf_graph *g = build(t, N(t));
    struct sw_pk absent = key_of(3);
    ck_assert_uint_eq(g->n_nodes, 3);
    ck_assert_uint_eq(g->n_edges, 3);
    ck_assert_int_eq(rf_graph_find(g, &absent), RF_NO_NODE);
    /* nodes in key order, edges in id order */
    ck_assert_int_eq(label_of(g, 0), 2);
    ck_assert_int_eq(label_of(g, 1), 5);
    ck_assert_int_eq(label_of(g, 2), 7);
    ck_assert_int_eq(tid_of(g, 0), 3);
    ck_assert_int_eq(tid_of(g, 2), 9);
    for (uint32_t i = 0; i < g->n_nodes; i++) {
        ck_assert_uint_eq(g->adj_off[i + 1] - g->adj_off[i], 2);
        ck_assert_uint_eq(rf_graph_usable_degree(g, i, CUTOFF), 2);
        /* sorted by (neighbour, edge) */
        ck_assert_uint_lt(g->adj[g->adj_off[i]].node, g->adj[g->adj_off[i] + 1].node);
    }
    ck_assert_uint_eq(rf_graph_usable_edges(g, CUTOFF), 3);
    ck_assert_uint_eq(rf_graph_usable_edges(g, NOW + 1), 0);
    ck_assert_ptr_eq(rf_graph_ref(g), g);
    rf_graph_unref(g);
    rf_graph_unref(g);
}
END_TEST

START_TEST(test_empty_and_duplicates)
{
    struct rf_graph *g = NULL;
    struct rf_row rows[3];
    struct sw_pk k = key_of(1);
    ck_assert_int_eq(rf_graph_build(NULL, 0, &g), SW_OK);
    ck_assert_uint_eq(g->n_nodes, 0);
    ck_assert_int_eq(rf_graph_find(g, &k), RF_NO_NODE);
    rf_graph_unref(g);
    /* the same t_id twice (unsorted input) keeps one transport */
    const struct tedge t[] = { UP(1, 2, 7), UP(2, 3, 5), UP(1, 2, 7) };
    for (int i = 0; i < 3; i++)
        rows[i] = row_of(&t[i]);
    ck_assert_int_eq(rf_graph_build(rows, 3, &g), SW_OK);
    ck_assert_uint_eq(g->n_edges, 2);
    ck_assert_uint_eq(g->n_nodes, 3);
    rf_graph_unref(g);
}
END_TEST

START_TEST(test_shortest_path)
{
    const struct tedge t[] = { UP(0, 1, 1), UP(1, 2, 2), UP(2, 3, 3), UP(0, 4, 4), UP(4, 3, 5) };
    struct rf_graph *g = build(t, N(t));
    ck_assert_str_eq(run(g, (struct q){ .src = 0, .dst = 3 }, false), "0-4-3");
    ck_assert_str_eq(run(g, (struct q){ .src = 3, .dst = 0 }, false), "3-4-0");
    ck_assert_str_eq(run(g, (struct q){ .src = 1, .dst = 2 }, true), "1=2-2");
    ck_assert_str_eq(run(g, (struct q){ .src = 1, .dst = 4 }, false), "1-0-4");
    rf_graph_unref(g);
}
END_TEST

START_TEST(test_ties_are_deterministic)
{
    /* a square: 0-1-3 and 0-2-3 tie; the smaller next key wins, whatever the row order */
    const struct tedge t1[] = { UP(0, 1, 1), UP(1, 3, 2), UP(0, 2, 3), UP(2, 3, 4) };
    const struct tedge t2[] = { UP(2, 3, 4), UP(0, 2, 3), UP(1, 3, 2), UP(0, 1, 1) };
    struct rf_graph *g1 = build(t1, N(t1)), *g2 = build(t2, N(t2));
    ck_assert_str_eq(run(g1, (struct q){ .src = 0, .dst = 3 }, false), "0-1-3");
    ck_assert_str_eq(run(g2, (struct q){ .src = 0, .dst = 3 }, false), "0-1-3");
    ck_assert_str_eq(run(g1, (struct q){ .src = 3, .dst = 0 }, false), "3-1-0");
    ck_assert_str_eq(run(g1, (struct q){ .src = 0, .dst = 3, .count = 5 }, false), "0-1-3 | 0-2-3");
    ck_assert_str_eq(run(g2, (struct q){ .src = 0, .dst = 3, .count = 5 }, false), "0-1-3 | 0-2-3");
    rf_graph_unref(g1);
    rf_graph_unref(g2);
    /* equal next keys: the smaller transport id wins */
    const struct tedge t3[] = { UP(0, 1, 8), UP(0, 1, 6), UP(1, 2, 1) };
    struct rf_graph *g3 = build(t3, N(t3));
    ck_assert_str_eq(run(g3, (struct q){ .src = 0, .dst = 2 }, true), "0=6-1=1-2");
    ck_assert_str_eq(run(g3, (struct q){ .src = 2, .dst = 0 }, true), "2=1-1=6-0");
    rf_graph_unref(g3);
}
END_TEST

START_TEST(test_min_max_hops)
{
    /* 0-3 direct, 0-1-3, 0-1-2-3 */
    const struct tedge t[] = { UP(0, 3, 1), UP(0, 1, 2), UP(1, 3, 3), UP(1, 2, 4), UP(2, 3, 5) };
    struct rf_graph *g = build(t, N(t));
    ck_assert_str_eq(run(g, (struct q){ .src = 0, .dst = 3, .count = 16 }, false), "0-3 | 0-1-3 | 0-1-2-3");
    ck_assert_str_eq(run(g, (struct q){ .src = 0, .dst = 3, .min = 2 }, false), "0-1-3");
    ck_assert_str_eq(run(g, (struct q){ .src = 0, .dst = 3, .min = 2, .count = 3 }, false), "0-1-3 | 0-1-2-3");
    ck_assert_str_eq(run(g, (struct q){ .src = 0, .dst = 3, .min = 3, .max = 3, .count = 3 }, false), "0-1-2-3");
    ck_assert_str_eq(run(g, (struct q){ .src = 0, .dst = 3, .min = 4, .count = 3 }, false), "");
    ck_assert_str_eq(run(g, (struct q){ .src = 0, .dst = 3, .max = 2, .count = 3 }, false), "0-3 | 0-1-3");
    ck_assert_str_eq(run(g, (struct q){ .src = 0, .dst = 2, .max = 1, .count = 3 }, false), "");
    ck_assert_str_eq(run(g, (struct q){ .src = 0, .dst = 2, .max = 2, .count = 3 }, false), "0-1-2 | 0-3-2");
    rf_graph_unref(g);
}
END_TEST

START_TEST(test_down_and_stale_ignored)
{
    const struct tedge t[] = { UP(0, 1, 1), DOWN(1, 2, 2), UP(0, 3, 3), UP(3, 4, 4), UP(4, 2, 5) };
    struct rf_row rows[N(t)];
    struct rf_graph *g = build(t, N(t));
    ck_assert_str_eq(run(g, (struct q){ .src = 0, .dst = 2, .count = 4 }, false), "0-3-4-2");
    ck_assert_uint_eq(rf_graph_usable_degree(g, node(g, 2), CUTOFF), 1);
    rf_graph_unref(g);
    /* 3-4 refreshed long ago: past the TTL it is as good as down */
    for (size_t i = 0; i < N(t); i++)
        rows[i] = row_of(&t[i]);
    rows[3].updated = CUTOFF - 1;
    ck_assert_int_eq(rf_graph_build(rows, N(t), &g), SW_OK);
    ck_assert_str_eq(run(g, (struct q){ .src = 0, .dst = 2, .count = 4 }, false), "");
    rows[3].updated = CUTOFF;
    rf_graph_unref(g);
    ck_assert_int_eq(rf_graph_build(rows, N(t), &g), SW_OK);
    ck_assert_str_eq(run(g, (struct q){ .src = 0, .dst = 2 }, false), "0-3-4-2");
    rf_graph_unref(g);
}
END_TEST

START_TEST(test_disconnected)
{
    const struct tedge t[] = { UP(0, 1, 1), UP(1, 2, 2), UP(5, 6, 3), UP(6, 7, 4) };
    struct rf_graph *g = build(t, N(t));
    ck_assert_str_eq(run(g, (struct q){ .src = 0, .dst = 7, .count = 4 }, false), "");
    ck_assert_str_eq(run(g, (struct q){ .src = 7, .dst = 5, .count = 4 }, false), "7-6-5");
    rf_graph_unref(g);
}
END_TEST

START_TEST(test_parallel_transports)
{
    /* stcp and dmsg between 0 and 1 (and 1 and 2) are distinct paths */
    const struct tedge t[] = { UP(0, 1, 20), UP(0, 1, 10), UP(1, 2, 30), UP(1, 2, 40) };
    struct rf_graph *g = build(t, N(t));
    ck_assert_str_eq(run(g, (struct q){ .src = 0, .dst = 1, .count = 3 }, true), "0=10-1 | 0=20-1");
    ck_assert_str_eq(run(g, (struct q){ .src = 0, .dst = 2, .count = 16 }, true),
                     "0=10-1=30-2 | 0=10-1=40-2 | 0=20-1=30-2 | 0=20-1=40-2");
    ck_assert_str_eq(run(g, (struct q){ .src = 2, .dst = 0, .count = 2 }, true), "2=30-1=10-0 | 2=30-1=20-0");
    rf_graph_unref(g);
}
END_TEST

START_TEST(test_query_bounds)
{
    const struct tedge t[] = { UP(0, 1, 1) };
    struct rf_graph *g = build(t, N(t));
    struct rf_scratch *s = rf_scratch_new();
    struct rf_path p[RF_MAX_COUNT];
    size_t n = 99;
    struct rf_query ok = { 0, 1, 1, 10, 1, CUTOFF, 0 }, q;
    q = ok, q.dst = 0;
    ck_assert_int_eq(rf_search(g, &q, s, p, &n, NULL), SW_EINVAL);
    ck_assert_uint_eq(n, 0);
    q = ok, q.dst = 2;
    ck_assert_int_eq(rf_search(g, &q, s, p, &n, NULL), SW_EINVAL);
    q = ok, q.max_hops = RF_MAX_HOPS + 1;
    ck_assert_int_eq(rf_search(g, &q, s, p, &n, NULL), SW_EINVAL);
    q = ok, q.min_hops = 0;
    ck_assert_int_eq(rf_search(g, &q, s, p, &n, NULL), SW_EINVAL);
    q = ok, q.min_hops = 3, q.max_hops = 2;
    ck_assert_int_eq(rf_search(g, &q, s, p, &n, NULL), SW_EINVAL);
    q = ok, q.count = 0;
    ck_assert_int_eq(rf_search(g, &q, s, p, &n, NULL), SW_EINVAL);
    q = ok, q.count = RF_MAX_COUNT + 1;
    ck_assert_int_eq(rf_search(g, &q, s, p, &n, NULL), SW_EINVAL);
    ck_assert_int_eq(rf_search(g, &ok, s, p, &n, NULL), SW_OK);
    ck_assert_uint_eq(n, 1);
    rf_scratch_free(s);
    rf_graph_unref(g);
}
END_TEST

START_TEST(test_reverse)
{
    const struct tedge t[] = { UP(0, 1, 1), UP(1, 2, 2), UP(2, 3, 3) };
    struct rf_graph *g = build(t, N(t));
    struct rf_scratch *s = rf_scratch_new();
    struct rf_path p[1], r;
    struct rf_query q = { node(g, 0), node(g, 3), 1, 10, 1, CUTOFF, 0 };
    char txt[128];
    size_t n;
    ck_assert_int_eq(rf_search(g, &q, s, p, &n, NULL), SW_OK);
    ck_assert_uint_eq(n, 1);
    rf_path_reverse(&p[0], &r);
    fmt(g, &r, true, txt, sizeof(txt));
    ck_assert_str_eq(txt, "3=3-2=2-1=1-0");
    rf_scratch_free(s);
    rf_graph_unref(g);
}
END_TEST

/* ---- against brute force ------------------------------------------------------------- */

struct brute {
    const struct rf_graph *g;
    uint32_t dst, max;
    bool on_path[64];
    struct rf_path cur;
    struct rf_path *all;
    size_t n, cap;
};

static void dfs(struct brute *b, uint32_t x)
{
    const struct rf_graph *g = b->g;
    if (x == b->dst) {
        if (b->n == b->cap) {
            b->cap = b->cap ? b->cap * 2 : 256;
            b->all = realloc(b->all, b->cap * sizeof(*b->all));
        }
        b->all[b->n++] = b->cur;
        return;
    }
    if (b->cur.len == b->max)
        return;
    for (uint32_t k = g->adj_off[x]; k < g->adj_off[x + 1]; k++) {
        uint32_t y = g->adj[k].node, e = g->adj[k].edge;
        if (b->on_path[y] || !rf_edge_usable(&g->edges[e], CUTOFF))
            continue;
        b->on_path[y] = true;
        b->cur.edges[b->cur.len] = e;
        b->cur.nodes[++b->cur.len] = y;
        dfs(b, y);
        b->cur.len--;
        b->on_path[y] = false;
    }
}

static int cmp_paths(const void *x, const void *y)
{
    return rf_path_cmp(x, y);
}

/* Every loopless path of src -> dst within the bounds, in ranking order; returns how many
 * of them the query wants (at most count) in want[]. */
static size_t brute_force(const struct rf_graph *g, const struct rf_query *q, struct rf_path *want)
{
    struct brute b = { .g = g, .dst = q->dst, .max = q->max_hops };
    size_t n = 0;
    b.on_path[q->src] = true;
    b.cur.nodes[0] = q->src;
    dfs(&b, q->src);
    if (b.n)
        qsort(b.all, b.n, sizeof(*b.all), cmp_paths);
    for (size_t i = 0; i < b.n && n < q->count; i++)
        if (b.all[i].len >= q->min_hops)
            want[n++] = b.all[i];
    free(b.all);
    return n;
}

static bool same_path(const struct rf_path *a, const struct rf_path *b)
{
    return rf_path_cmp(a, b) == 0 && memcmp(a->nodes, b->nodes, (a->len + 1) * sizeof(a->nodes[0])) == 0;
}

static struct rf_graph *random_graph(unsigned nodes, unsigned edges, int down_pct, unsigned *seed)
{
    struct tedge *t = calloc(edges + 1, sizeof(*t));
    struct rf_graph *g;
    for (unsigned i = 0; i < edges; i++) {
        int a = (int)(rand_r(seed) % nodes), b = (int)(rand_r(seed) % nodes);
        if (a == b)
            b = (b + 1) % (int)nodes;
        /* ids in random order, so transport order differs from insertion order */
        t[i] = (struct tedge){ a, b, (int)(rand_r(seed) % 100000) * 64 + (int)i, (int)(rand_r(seed) % 100) < down_pct };
    }
    g = build(t, edges);
    free(t);
    return g;
}

START_TEST(test_random_vs_brute_force)
{
    unsigned seed = 12345;
    struct rf_scratch *s = rf_scratch_new(); /* reused across graphs of every size */
    unsigned checked = 0, nonempty = 0, exhausted = 0;
    for (int round = 0; round < 600; round++) {
        bool medium = round >= 400; /* sparse graphs big enough for both search fronts to grow */
        unsigned nodes = medium ? 10 + rand_r(&seed) % 8 : 2 + rand_r(&seed) % 8;
        unsigned edges = medium ? 14 + rand_r(&seed) % 18 : 1 + rand_r(&seed) % 16;
        struct rf_graph *g = random_graph(nodes, edges, 15, &seed);
        for (int k = 0; k < 6 && g->n_nodes >= 2; k++) {
            struct rf_path got[RF_MAX_COUNT], want[RF_MAX_COUNT];
            struct rf_query q = { rand_r(&seed) % g->n_nodes, rand_r(&seed) % g->n_nodes, 1, 1, 1, CUTOFF, 0 };
            size_t n_got, n_want;
            if (q.src == q.dst)
                continue;
            q.max_hops = 1 + rand_r(&seed) % (medium ? 6 : 7);
            q.min_hops = 1 + rand_r(&seed) % q.max_hops;
            q.count = 1 + rand_r(&seed) % RF_MAX_COUNT;
            struct rf_search_stats st;
            ck_assert_int_eq(rf_search(g, &q, s, got, &n_got, &st), SW_OK);
            n_want = brute_force(g, &q, want);
            /* more than RF_MAX_ENUMERATED shorter paths to skip: a correct prefix, flagged */
            ck_assert_msg(n_got == n_want || (st.exhausted && n_got < n_want),
                          "round %d: %zu paths, brute force %zu (min %u max %u count %u)%s", round, n_got, n_want,
                          q.min_hops, q.max_hops, q.count, st.exhausted ? " (exhausted)" : "");
            exhausted += st.exhausted;
            for (size_t i = 0; i < n_got; i++)
                ck_assert_msg(same_path(&got[i], &want[i]), "round %d: path %zu differs", round, i);
            checked++;
            nonempty += n_got > 1;
        }
        rf_graph_unref(g);
    }
    ck_assert_uint_gt(checked, 2000);
    ck_assert_uint_lt(exhausted, checked / 50);
    ck_assert_uint_gt(nonempty, 200); /* the comparison exercised k > 1 */
    rf_scratch_free(s);
}
END_TEST

/* Plain BFS hop count, for the large graph. */
static int bfs_hops(const struct rf_graph *g, uint32_t src, uint32_t dst)
{
    int *dist = malloc(g->n_nodes * sizeof(int));
    uint32_t *queue = malloc(g->n_nodes * sizeof(uint32_t)), head = 0, tail = 0;
    int d = -1;
    for (uint32_t i = 0; i < g->n_nodes; i++)
        dist[i] = -1;
    dist[src] = 0;
    queue[tail++] = src;
    while (head < tail) {
        uint32_t x = queue[head++];
        for (uint32_t k = g->adj_off[x]; k < g->adj_off[x + 1]; k++) {
            uint32_t y = g->adj[k].node;
            if (dist[y] < 0 && rf_edge_usable(&g->edges[g->adj[k].edge], CUTOFF)) {
                dist[y] = dist[x] + 1;
                queue[tail++] = y;
            }
        }
    }
    d = dist[dst];
    free(dist);
    free(queue);
    return d;
}

static void check_valid(const struct rf_graph *g, const struct rf_query *q, const struct rf_path *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        ck_assert_uint_eq(p[i].nodes[0], q->src);
        ck_assert_uint_eq(p[i].nodes[p[i].len], q->dst);
        ck_assert_uint_ge(p[i].len, q->min_hops);
        ck_assert_uint_le(p[i].len, q->max_hops);
        for (uint32_t k = 0; k < p[i].len; k++) {
            const struct rf_edge *e = &g->edges[p[i].edges[k]];
            uint32_t a = p[i].nodes[k], b = p[i].nodes[k + 1];
            ck_assert((e->a == a && e->b == b) || (e->a == b && e->b == a));
            ck_assert(rf_edge_usable(e, CUTOFF));
            for (uint32_t j = 0; j < k + 1; j++)
                ck_assert_uint_ne(p[i].nodes[j], b); /* loopless */
        }
        if (i)
            ck_assert_int_lt(rf_path_cmp(&p[i - 1], &p[i]), 0); /* ordered and distinct */
    }
}

START_TEST(test_large_random_graph)
{
    unsigned seed = 777;
    struct rf_graph *g = random_graph(5000, 20000, 10, &seed);
    struct rf_scratch *s = rf_scratch_new();
    for (int k = 0; k < 40; k++) {
        struct rf_path p[RF_MAX_COUNT];
        struct rf_query q = { rand_r(&seed) % g->n_nodes, rand_r(&seed) % g->n_nodes, 1, RF_MAX_HOPS, 1 + k % 8, CUTOFF, 0 };
        struct rf_search_stats st;
        size_t n;
        int hops;
        if (q.src == q.dst)
            continue;
        hops = bfs_hops(g, q.src, q.dst);
        ck_assert_int_eq(rf_search(g, &q, s, p, &n, &st), SW_OK);
        ck_assert(!st.exhausted);
        if (hops < 0) {
            ck_assert_uint_eq(n, 0);
            continue;
        }
        ck_assert_uint_eq(n, q.count);
        ck_assert_int_eq((int)p[0].len, hops);
        check_valid(g, &q, p, n);
        q.min_hops = (unsigned)hops + 1; /* skips the shortest ones */
        ck_assert_int_eq(rf_search(g, &q, s, p, &n, &st), SW_OK);
        check_valid(g, &q, p, n);
    }
    rf_scratch_free(s);
    rf_graph_unref(g);
}
END_TEST

START_TEST(test_budget_keeps_a_prefix)
{
    unsigned seed = 99;
    struct rf_graph *g = random_graph(400, 1600, 0, &seed);
    struct rf_scratch *s = rf_scratch_new();
    struct rf_path full[RF_MAX_COUNT], part[RF_MAX_COUNT];
    struct rf_query q = { 1, 2, 1, 12, RF_MAX_COUNT, CUTOFF, 0 };
    struct rf_search_stats st;
    size_t nf, np;
    ck_assert_int_eq(rf_search(g, &q, s, full, &nf, &st), SW_OK);
    ck_assert_uint_eq(nf, RF_MAX_COUNT);
    ck_assert(!st.exhausted);
    q.budget = st.work / 2;
    ck_assert_int_eq(rf_search(g, &q, s, part, &np, &st), SW_OK);
    ck_assert(st.exhausted);
    ck_assert_uint_lt(np, nf);
    ck_assert_uint_le(st.work, q.budget);
    for (size_t i = 0; i < np; i++)
        ck_assert(same_path(&part[i], &full[i]));
    /* a budget too small for even the first search finds nothing, and says so */
    q.budget = 3;
    ck_assert_int_eq(rf_search(g, &q, s, part, &np, &st), SW_OK);
    ck_assert_uint_eq(np, 0);
    ck_assert(st.exhausted);
    rf_scratch_free(s);
    rf_graph_unref(g);
}
END_TEST

static Suite *route_suite(void)
{
    Suite *s = suite_create("route_graph");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_build_index);
    tcase_add_test(tc, test_empty_and_duplicates);
    tcase_add_test(tc, test_shortest_path);
    tcase_add_test(tc, test_ties_are_deterministic);
    tcase_add_test(tc, test_min_max_hops);
    tcase_add_test(tc, test_down_and_stale_ignored);
    tcase_add_test(tc, test_disconnected);
    tcase_add_test(tc, test_parallel_transports);
    tcase_add_test(tc, test_query_bounds);
    tcase_add_test(tc, test_reverse);
    tcase_add_test(tc, test_random_vs_brute_force);
    tcase_add_test(tc, test_large_random_graph);
    tcase_add_test(tc, test_budget_keeps_a_prefix);
    suite_add_tcase(s, tc);
    return s;
}

const struct th_check_main th_check_main = { .suite = route_suite, .before = sw_crypto_init };
