/* graph.h — the route finder's picture of the network: an immutable, reference-counted
 * snapshot of the transport graph, built from rows of the transport discovery's table.
 *
 * Nodes are public keys, numbered in ascending key order; edges are transports, numbered in
 * ascending t_id order, undirected (a hop may cross a transport either way). Each node's
 * adjacency list is sorted by (neighbour, edge), so "first in the list" is the
 * deterministic tie-break the search relies on. A snapshot never changes once built: the
 * sync thread builds a new one and swaps it in (see sync.h), readers hold a reference for
 * the length of one request. No database, no I/O: unit tests build graphs from rows. */
#ifndef RF_GRAPH_H
#define RF_GRAPH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/keys.h"
#include "common/uuid.h"

#define RF_NO_NODE UINT32_MAX

/* One transport as stored in td_transports. */
struct rf_row {
    struct sw_uuid id;
    struct sw_pk a, b;
    int64_t updated; /* unix seconds of the older of the two edges' last reports */
    bool up;         /* both edges say up (up_a AND up_b) */
};

struct rf_edge {
    struct sw_uuid id;
    uint32_t a, b;  /* node indices */
    int64_t up_at;  /* `updated` when up, INT64_MIN when down: usable iff up_at >= cutoff */
};

struct rf_adj {
    uint32_t node; /* the neighbour */
    uint32_t edge; /* the transport leading there */
};

struct rf_graph {
    _Atomic uint32_t refs;
    uint32_t n_nodes, n_edges;
    struct sw_pk *pks;      /* [n_nodes], ascending */
    struct rf_edge *edges;  /* [n_edges], ascending t_id */
    uint32_t *adj_off;      /* [n_nodes + 1]: node i's neighbours are adj[adj_off[i] .. adj_off[i+1]) */
    struct rf_adj *adj;     /* [2 * n_edges] */
    uint32_t *slots;        /* open-addressing key index: node + 1, 0 = empty */
    uint32_t slot_mask;
    uint8_t hash_key[16];   /* random per snapshot: keys are chosen by strangers */
};

/* Builds a snapshot from n rows (any order; of rows with the same t_id one is kept; rows
 * whose two edges are equal are skipped). *out has one reference. SW_ENOMEM, or SW_ERANGE
 * above RF_GRAPH_MAX_ROWS rows. */
#define RF_GRAPH_MAX_ROWS (1u << 26)
int rf_graph_build(const struct rf_row *rows, size_t n, struct rf_graph **out);

/* Reference counting: ref returns g; unref frees on the last reference. NULL is a no-op. */
struct rf_graph *rf_graph_ref(struct rf_graph *g);
void rf_graph_unref(struct rf_graph *g);

/* Node index of pk, or RF_NO_NODE when no transport names it. */
uint32_t rf_graph_find(const struct rf_graph *g, const struct sw_pk *pk);

static inline bool rf_edge_usable(const struct rf_edge *e, int64_t cutoff)
{
    return e->up_at >= cutoff;
}

/* Transports of node that are usable at cutoff (now - ttl). */
uint32_t rf_graph_usable_degree(const struct rf_graph *g, uint32_t node, int64_t cutoff);
/* Transports usable at cutoff, over the whole graph (O(edges); for metrics). */
uint32_t rf_graph_usable_edges(const struct rf_graph *g, int64_t cutoff);

/* Sorts rows by t_id (memcmp order, as PostgreSQL orders uuid). */
void rf_rows_sort(struct rf_row *rows, size_t n);
int rf_uuid_cmp(const struct sw_uuid *a, const struct sw_uuid *b);

#endif
