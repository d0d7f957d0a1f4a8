/* search.h — k shortest loopless paths by hop count over a graph snapshot.
 *
 * Order: paths are ranked by hop count, then lexicographically by their hops, each hop
 * compared as (next node, transport), i.e. by (next key, t_id) since both are numbered in
 * ascending order. rf_search returns the first `count` paths of that ranking among all
 * loopless paths src -> dst of min_hops..max_hops hops over transports usable at `cutoff`.
 *
 * Algorithm: Yen's k shortest loopless paths with Lawler's improvement (spur only from the
 * node where the last path left its parent). Every shortest path it asks for is found by a
 * breadth-first search from both ends (a layer at a time, smaller frontier first) until
 * they meet, then a walk from the start taking at each step the first neighbour, in
 * (node, transport) order, that is still on a shortest path: that is the smallest shortest
 * path in the ranking, so the ranking is respected exactly (ties included). Paths shorter
 * than min_hops are enumerated (they shape the later ones) but not returned.
 *
 * Work is bounded: every adjacency entry looked at and every candidate compared costs one
 * unit of q->budget; at most RF_MAX_ENUMERATED paths are enumerated. When either runs out
 * the search stops with the paths found so far (stats->exhausted), which are still the
 * first of the ranking. */
#ifndef RF_SEARCH_H
#define RF_SEARCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "route-finder/graph.h"

#define RF_MAX_HOPS 32
#define RF_MAX_COUNT 16
#define RF_MAX_ENUMERATED 128

struct rf_path {
    uint32_t len;                   /* hops */
    uint32_t dev;                   /* index of the node where it left its parent path */
    uint32_t nodes[RF_MAX_HOPS + 1]; /* nodes[0] = src, nodes[len] = dst */
    uint32_t edges[RF_MAX_HOPS];    /* edges[i] joins nodes[i] and nodes[i+1] */
};

struct rf_query {
    uint32_t src, dst;       /* node indices, different */
    unsigned min_hops;       /* 1 .. max_hops */
    unsigned max_hops;       /* .. RF_MAX_HOPS */
    unsigned count;          /* 1 .. RF_MAX_COUNT */
    int64_t cutoff;          /* transports with up_at < cutoff are not used (now - ttl) */
    uint64_t budget;         /* work units; 0 = unlimited */
};

struct rf_search_stats {
    uint64_t work;       /* units spent */
    unsigned enumerated; /* paths enumerated, returned or skipped */
    bool exhausted;      /* stopped by the budget or RF_MAX_ENUMERATED, not by running out of paths */
};

/* Working memory of one search at a time (one per thread); reusable across searches and
 * snapshots. */
struct rf_scratch;
struct rf_scratch *rf_scratch_new(void);
void rf_scratch_free(struct rf_scratch *s);

/* Writes up to q->count paths, best first, to out[] and their number to *n (0 = none).
 * SW_EINVAL for a query outside the bounds above, SW_ENOMEM. stats may be NULL. */
int rf_search(const struct rf_graph *g, const struct rf_query *q, struct rf_scratch *s,
              struct rf_path *out, size_t *n, struct rf_search_stats *stats);

/* Ranking order of two paths (<0, 0, >0). */
int rf_path_cmp(const struct rf_path *a, const struct rf_path *b);
/* dst = src walked backwards (dst != src). */
void rf_path_reverse(const struct rf_path *src, struct rf_path *dst);

#endif
