#include "route-finder/graph.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

int rf_uuid_cmp(const struct sw_uuid *a, const struct sw_uuid *b)
{
    return memcmp(a->b, b->b, SW_UUID_LEN);
}

static int row_cmp(const void *x, const void *y)
{
    return rf_uuid_cmp(&((const struct rf_row *)x)->id, &((const struct rf_row *)y)->id);
}

void rf_rows_sort(struct rf_row *rows, size_t n)
{
    if (n > 1)
        qsort(rows, n, sizeof(*rows), row_cmp);
}

static bool rows_sorted(const struct rf_row *rows, size_t n)
{
    for (size_t i = 1; i < n; i++)
        if (rf_uuid_cmp(&rows[i - 1].id, &rows[i].id) > 0)
            return false;
    return true;
}

/* ---- the key index ------------------------------------------------------------------ */

static uint32_t slot_of(const uint8_t key[16], const struct sw_pk *pk, uint32_t mask)
{
    uint8_t h[crypto_shorthash_BYTES];
    uint64_t v;
    crypto_shorthash(h, pk->b, SW_PK_LEN, key);
    memcpy(&v, h, sizeof(v));
    return (uint32_t)(v & mask);
}

/* Smallest power of two >= 2 * n (at least 16): the table stays at most half full. */
static uint32_t table_size(size_t n)
{
    uint32_t size = 16;
    while (size < 2 * n)
        size *= 2;
    return size;
}

/* Looks pk up among keys[] through slots; inserts it as keys[*n] when absent (if insert).
 * Returns its index, or RF_NO_NODE. */
static uint32_t probe(uint32_t *slots, uint32_t mask, const uint8_t hkey[16], struct sw_pk *keys,
                      uint32_t *n, const struct sw_pk *pk, bool insert)
{
    for (uint32_t i = slot_of(hkey, pk, mask);; i = (i + 1) & mask) {
        uint32_t v = slots[i];
        if (v == 0) {
            if (!insert)
                return RF_NO_NODE;
            keys[*n] = *pk;
            slots[i] = ++*n;
            return *n - 1;
        }
        if (memcmp(keys[v - 1].b, pk->b, SW_PK_LEN) == 0)
            return v - 1;
    }
}

uint32_t rf_graph_find(const struct rf_graph *g, const struct sw_pk *pk)
{
    uint32_t n = g->n_nodes;
    if (!g->slots)
        return RF_NO_NODE;
    return probe(g->slots, g->slot_mask, g->hash_key, g->pks, &n, pk, false);
}

/* ---- building ----------------------------------------------------------------------- */

struct build {
    const struct rf_row *rows; /* sorted by id */
    size_t n_rows;
    struct rf_graph *g;
    uint32_t *rank; /* provisional node number -> final (key order) */
};

struct keyed {
    struct sw_pk pk;
    uint32_t prov;
};

static int keyed_cmp(const void *x, const void *y)
{
    return memcmp(((const struct keyed *)x)->pk.b, ((const struct keyed *)y)->pk.b, SW_PK_LEN);
}

/* Numbers the distinct keys in first-seen order into g->pks, each edge's ends with those
 * provisional numbers; skips self-loops and repeated t_ids. */
static int collect(struct build *b)
{
    struct rf_graph *g = b->g;
    uint32_t mask = table_size(2 * b->n_rows) - 1, n = 0;

    g->slots = calloc((size_t)mask + 1, sizeof(*g->slots));
    g->pks = malloc((2 * b->n_rows + 1) * sizeof(*g->pks));
    g->edges = malloc((b->n_rows + 1) * sizeof(*g->edges));
    if (!g->slots || !g->pks || !g->edges)
        return SW_ENOMEM;
    g->slot_mask = mask;
    for (size_t i = 0; i < b->n_rows; i++) {
        const struct rf_row *r = &b->rows[i];
        struct rf_edge *e = &g->edges[g->n_edges];
        if (sw_pk_equal(&r->a, &r->b) ||
            (g->n_edges && sw_uuid_equal(&g->edges[g->n_edges - 1].id, &r->id)))
            continue;
        e->id = r->id;
        e->a = probe(g->slots, mask, g->hash_key, g->pks, &n, &r->a, true);
        e->b = probe(g->slots, mask, g->hash_key, g->pks, &n, &r->b, true);
        e->up_at = r->up ? r->updated : INT64_MIN;
        g->n_edges++;
    }
    g->n_nodes = n;
    return SW_OK;
}

/* Renumbers nodes in key order and rebuilds the index at its final size. */
static int renumber(struct build *b)
{
    struct rf_graph *g = b->g;
    struct keyed *order = malloc(((size_t)g->n_nodes + 1) * sizeof(*order));
    uint32_t n = 0;
    int rc = SW_ENOMEM;

    b->rank = malloc(((size_t)g->n_nodes + 1) * sizeof(*b->rank));
    if (!order || !b->rank)
        goto out;
    for (uint32_t i = 0; i < g->n_nodes; i++)
        order[i] = (struct keyed){ g->pks[i], i };
    qsort(order, g->n_nodes, sizeof(*order), keyed_cmp);
    for (uint32_t i = 0; i < g->n_nodes; i++) {
        g->pks[i] = order[i].pk;
        b->rank[order[i].prov] = i;
    }
    for (uint32_t i = 0; i < g->n_edges; i++) {
        g->edges[i].a = b->rank[g->edges[i].a];
        g->edges[i].b = b->rank[g->edges[i].b];
    }
    free(g->slots);
    g->slot_mask = table_size(g->n_nodes) - 1;
    if (!(g->slots = calloc((size_t)g->slot_mask + 1, sizeof(*g->slots))))
        goto out;
    for (uint32_t i = 0; i < g->n_nodes; i++)
        probe(g->slots, g->slot_mask, g->hash_key, g->pks, &n, &g->pks[i], true);
    rc = SW_OK;
out:
    free(order);
    return rc;
}

/* Two counting passes instead of a sort: the first lists each node's edges in edge order;
 * walking nodes in order and appending (node, edge) to the other end's list then leaves
 * every list sorted by (neighbour, edge). */
static int adjacency(struct rf_graph *g)
{
    size_t n = g->n_nodes, m = g->n_edges;
    uint32_t *by_edge = malloc((2 * m + 1) * sizeof(*by_edge));
    uint32_t *fill = malloc((n + 1) * sizeof(*fill));
    int rc = SW_ENOMEM;

    g->adj_off = calloc(n + 1, sizeof(*g->adj_off));
    g->adj = malloc((2 * m + 1) * sizeof(*g->adj));
    if (!by_edge || !fill || !g->adj_off || !g->adj)
        goto out;
    for (size_t e = 0; e < m; e++) {
        g->adj_off[g->edges[e].a + 1]++;
        g->adj_off[g->edges[e].b + 1]++;
    }
    for (size_t i = 0; i < n; i++)
        g->adj_off[i + 1] += g->adj_off[i];
    memcpy(fill, g->adj_off, n * sizeof(*fill));
    for (uint32_t e = 0; e < m; e++) {
        by_edge[fill[g->edges[e].a]++] = e;
        by_edge[fill[g->edges[e].b]++] = e;
    }
    memcpy(fill, g->adj_off, n * sizeof(*fill));
    for (uint32_t v = 0; v < n; v++) {
        for (uint32_t k = g->adj_off[v]; k < g->adj_off[v + 1]; k++) {
            const struct rf_edge *e = &g->edges[by_edge[k]];
            uint32_t u = e->a == v ? e->b : e->a;
            g->adj[fill[u]++] = (struct rf_adj){ v, by_edge[k] };
        }
    }
    rc = SW_OK;
out:
    free(by_edge);
    free(fill);
    return rc;
}

int rf_graph_build(const struct rf_row *rows, size_t n, struct rf_graph **out)
{
    struct build b = { .rows = rows, .n_rows = n };
    struct rf_row *copy = NULL;
    int rc;

    if (n > RF_GRAPH_MAX_ROWS)
        return SW_ERANGE;
    if (!(b.g = calloc(1, sizeof(*b.g))))
        return SW_ENOMEM;
    atomic_init(&b.g->refs, 1);
    randombytes_buf(b.g->hash_key, sizeof(b.g->hash_key));
    if (!rows_sorted(rows, n)) {
        if (!(copy = malloc(n * sizeof(*copy)))) {
            rc = SW_ENOMEM;
            goto fail;
        }
        memcpy(copy, rows, n * sizeof(*copy));
        rf_rows_sort(copy, n);
        b.rows = copy;
    }
    if ((rc = collect(&b)) || (rc = renumber(&b)) || (rc = adjacency(b.g)))
        goto fail;
    free(copy);
    free(b.rank);
    *out = b.g;
    return SW_OK;
fail:
    free(copy);
    free(b.rank);
    rf_graph_unref(b.g);
    return rc;
}

struct rf_graph *rf_graph_ref(struct rf_graph *g)
{
    if (g)
        atomic_fetch_add(&g->refs, 1);
    return g;
}

void rf_graph_unref(struct rf_graph *g)
{
    if (!g || atomic_fetch_sub(&g->refs, 1) != 1)
        return;
    free(g->pks);
    free(g->edges);
    free(g->adj_off);
    free(g->adj);
    free(g->slots);
    free(g);
}

uint32_t rf_graph_usable_degree(const struct rf_graph *g, uint32_t node, int64_t cutoff)
{
    uint32_t n = 0;
    if (node >= g->n_nodes)
        return 0;
    for (uint32_t k = g->adj_off[node]; k < g->adj_off[node + 1]; k++)
        n += rf_edge_usable(&g->edges[g->adj[k].edge], cutoff);
    return n;
}

uint32_t rf_graph_usable_edges(const struct rf_graph *g, int64_t cutoff)
{
    uint32_t n = 0;
    for (uint32_t e = 0; e < g->n_edges; e++)
        n += rf_edge_usable(&g->edges[e], cutoff);
    return n;
}
