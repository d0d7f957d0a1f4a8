#include "route-finder/search.h"

#include <stdlib.h>
#include <string.h>

#define RF_MAX_CANDIDATES (RF_MAX_ENUMERATED * RF_MAX_HOPS)

/* One side of a bidirectional breadth-first search: the nodes it labelled (mark == gen),
 * their hops from its root, and its queue in layer order. */
struct side {
    uint32_t *mark, *hops, *queue;
    uint32_t gen;
    uint32_t depth;                  /* layers 0..depth are complete */
    uint32_t layer[RF_MAX_HOPS + 3]; /* layer i is queue[layer[i] .. layer[i+1]) */
};

struct rf_scratch {
    uint32_t cap; /* nodes the per-node arrays hold */
    struct side fwd, bwd;
    uint32_t *good, good_gen;     /* == good_gen: forward node on a shortest path */
    uint32_t *blocked, block_gen; /* == block_gen: a root node the current spur avoids */
    struct rf_path enumerated[RF_MAX_ENUMERATED];
    unsigned n_enum;
    struct rf_path *cand; /* Yen's candidate set, unordered */
    size_t n_cand, cap_cand;
    uint32_t removed[RF_MAX_ENUMERATED]; /* transports taken away at the spur node */
    size_t n_removed;
};

#define N_ARRAYS 8

/* The per-node arrays, in one list so that allocating and freeing them stays short. */
static void node_arrays(struct rf_scratch *s, uint32_t **a[N_ARRAYS])
{
    uint32_t **list[N_ARRAYS] = { &s->fwd.mark, &s->fwd.hops, &s->fwd.queue, &s->bwd.mark,
                                  &s->bwd.hops, &s->bwd.queue, &s->good, &s->blocked };
    memcpy(a, list, sizeof(list));
}

struct rf_scratch *rf_scratch_new(void)
{
    return calloc(1, sizeof(struct rf_scratch));
}

static void free_arrays(struct rf_scratch *s)
{
    uint32_t **a[N_ARRAYS];
    node_arrays(s, a);
    for (int i = 0; i < N_ARRAYS; i++) {
        free(*a[i]);
        *a[i] = NULL;
    }
    s->cap = 0;
}

void rf_scratch_free(struct rf_scratch *s)
{
    if (!s)
        return;
    free_arrays(s);
    free(s->cand);
    free(s);
}

/* Sizes the per-node arrays for n nodes, with room to spare for a growing graph. */
static int reserve(struct rf_scratch *s, uint32_t n)
{
    uint32_t **a[N_ARRAYS];
    size_t cap = (size_t)n + n / 4 + 64;
    if (n <= s->cap && s->good)
        return SW_OK;
    free_arrays(s);
    node_arrays(s, a);
    for (int i = 0; i < N_ARRAYS; i++) {
        if (!(*a[i] = calloc(cap + 1, sizeof(uint32_t)))) {
            free_arrays(s);
            return SW_ENOMEM;
        }
    }
    s->cap = (uint32_t)cap;
    s->fwd.gen = s->bwd.gen = s->good_gen = s->block_gen = 0;
    return SW_OK;
}

/* Starts a new generation of marks; after 2^32 of them, clears the array. */
static uint32_t next_gen(uint32_t *gen, uint32_t *marks, uint32_t cap)
{
    if (++*gen == 0) {
        memset(marks, 0, ((size_t)cap + 1) * sizeof(*marks));
        *gen = 1;
    }
    return *gen;
}

int rf_path_cmp(const struct rf_path *a, const struct rf_path *b)
{
    if (a->len != b->len)
        return a->len < b->len ? -1 : 1;
    for (uint32_t k = 0; k < a->len; k++) {
        if (a->nodes[k + 1] != b->nodes[k + 1])
            return a->nodes[k + 1] < b->nodes[k + 1] ? -1 : 1;
        if (a->edges[k] != b->edges[k])
            return a->edges[k] < b->edges[k] ? -1 : 1;
    }
    return 0;
}

void rf_path_reverse(const struct rf_path *src, struct rf_path *dst)
{
    dst->len = src->len;
    dst->dev = 0;
    for (uint32_t k = 0; k <= src->len; k++)
        dst->nodes[k] = src->nodes[src->len - k];
    for (uint32_t k = 0; k < src->len; k++)
        dst->edges[k] = src->edges[src->len - 1 - k];
}

/* ---- one shortest path --------------------------------------------------------------- */

struct spur {
    const struct rf_graph *g;
    struct rf_scratch *s;
    int64_t cutoff;
    uint32_t from, to, max_len;
    uint64_t *left; /* work units left */
};

static bool charge(uint64_t *left, uint64_t units)
{
    if (*left < units) {
        *left = 0;
        return false;
    }
    *left -= units;
    return true;
}

/* True when transport e between nodes v and y may be used: it is up, and not one of the
 * transports removed at the spur node. */
static bool passable(const struct spur *sp, uint32_t v, uint32_t y, uint32_t e)
{
    const struct rf_scratch *s = sp->s;
    if (!rf_edge_usable(&sp->g->edges[e], sp->cutoff))
        return false;
    if (v != sp->from && y != sp->from)
        return true;
    for (size_t i = 0; i < s->n_removed; i++)
        if (s->removed[i] == e)
            return false;
    return true;
}

static bool labelled(const struct side *d, uint32_t v)
{
    return d->mark[v] == d->gen;
}

static void side_start(struct side *d, uint32_t cap, uint32_t root)
{
    next_gen(&d->gen, d->mark, cap);
    d->mark[root] = d->gen;
    d->hops[root] = 0;
    d->queue[0] = root;
    d->depth = 0;
    d->layer[0] = 0;
    d->layer[1] = 1;
}

static uint32_t frontier(const struct side *d)
{
    return d->layer[d->depth + 1] - d->layer[d->depth];
}

/* Labels layer depth+1 of d from layer depth. 1: it touched the other side; 0: not;
 * -1: out of budget. */
static int expand(const struct spur *sp, struct side *d, const struct side *other)
{
    const struct rf_graph *g = sp->g;
    const struct rf_scratch *s = sp->s;
    uint32_t tail = d->layer[d->depth + 1];
    int met = 0;

    for (uint32_t q = d->layer[d->depth]; q < d->layer[d->depth + 1]; q++) {
        uint32_t v = d->queue[q], begin = g->adj_off[v], end = g->adj_off[v + 1];
        if (!charge(sp->left, end - begin))
            return -1;
        for (uint32_t k = begin; k < end; k++) {
            uint32_t y = g->adj[k].node;
            if (labelled(d, y) || s->blocked[y] == s->block_gen || !passable(sp, v, y, g->adj[k].edge))
                continue;
            d->mark[y] = d->gen;
            d->hops[y] = d->depth + 1;
            d->queue[tail++] = y;
            met |= labelled(other, y);
        }
    }
    d->layer[++d->depth + 1] = tail;
    return met;
}

/* Breadth first from both ends, a whole layer at a time, the smaller frontier first, until
 * the two meet: the distance is then fwd.depth + bwd.depth (no meeting happened at a
 * smaller sum). 1: met; 0: no path within max_len; -1: out of budget. */
static int meet(const struct spur *sp)
{
    struct rf_scratch *s = sp->s;
    side_start(&s->fwd, s->cap, sp->from);
    side_start(&s->bwd, s->cap, sp->to);
    for (;;) {
        bool forward = frontier(&s->fwd) <= frontier(&s->bwd);
        int rc;
        if (s->fwd.depth + s->bwd.depth >= sp->max_len || frontier(&s->fwd) == 0 || frontier(&s->bwd) == 0)
            return 0;
        rc = forward ? expand(sp, &s->fwd, &s->bwd) : expand(sp, &s->bwd, &s->fwd);
        if (rc)
            return rc;
    }
}

/* First transport, in (node, transport) order, from cur to a node that `ok` accepts. */
typedef bool (*step_ok)(const struct rf_scratch *s, uint32_t y, uint32_t want);

static bool step(const struct spur *sp, struct rf_path *p, step_ok ok, uint32_t want)
{
    const struct rf_graph *g = sp->g;
    uint32_t cur = p->nodes[p->len], k = g->adj_off[cur], end = g->adj_off[cur + 1];
    for (; k < end; k++)
        if (ok(sp->s, g->adj[k].node, want) && passable(sp, cur, g->adj[k].node, g->adj[k].edge))
            break;
    charge(sp->left, k - g->adj_off[cur]);
    if (k == end || p->len == RF_MAX_HOPS)
        return false; /* cannot happen with complete labels; never write past the path */
    p->edges[p->len] = g->adj[k].edge;
    p->nodes[++p->len] = g->adj[k].node;
    return true;
}

static bool good_at(const struct rf_scratch *s, uint32_t y, uint32_t layer)
{
    return labelled(&s->fwd, y) && s->fwd.hops[y] == layer && s->good[y] == s->good_gen;
}

static bool back_at(const struct rf_scratch *s, uint32_t y, uint32_t hops)
{
    return labelled(&s->bwd, y) && s->bwd.hops[y] == hops;
}

/* Marks the forward nodes that lie on a shortest path: the meeting layer's nodes that the
 * backward side reached, then, layer by layer towards the start, every node with a good
 * neighbour one layer further. */
static void mark_good(const struct spur *sp)
{
    const struct rf_graph *g = sp->g;
    struct rf_scratch *s = sp->s;
    const struct side *f = &s->fwd;
    uint32_t gen = next_gen(&s->good_gen, s->good, s->cap), a = f->depth;

    for (uint32_t q = f->layer[a]; q < f->layer[a + 1]; q++)
        if (back_at(s, f->queue[q], s->bwd.depth))
            s->good[f->queue[q]] = gen;
    for (uint32_t i = a; i-- > 0;) {
        for (uint32_t q = f->layer[i]; q < f->layer[i + 1]; q++) {
            uint32_t v = f->queue[q];
            charge(sp->left, g->adj_off[v + 1] - g->adj_off[v]);
            for (uint32_t k = g->adj_off[v]; k < g->adj_off[v + 1]; k++)
                if (good_at(s, g->adj[k].node, i + 1) && passable(sp, v, g->adj[k].node, g->adj[k].edge)) {
                    s->good[v] = gen;
                    break;
                }
        }
    }
}

/* Appends to p (ending at from) the best path from -> to of at most max_len hops that
 * avoids the blocked nodes and the removed transports: the shortest, and among those the
 * first in (node, transport) order at every hop. The walk takes, at each step, the first
 * neighbour that is still on a shortest path: marked good while in the forward half, one
 * hop nearer `to` by the backward labels after the meeting layer.
 * 1 found, 0 none, -1 out of budget. */
static int shortest(const struct rf_graph *g, struct rf_scratch *s, const struct rf_query *q,
                    struct rf_path *p, uint32_t max_len, uint64_t *left)
{
    struct spur sp = { g, s, q->cutoff, p->nodes[p->len], q->dst, max_len, left };
    int rc = meet(&sp);
    if (rc != 1)
        return rc;
    mark_good(&sp);
    for (uint32_t i = 1; i <= s->fwd.depth; i++)
        if (!step(&sp, p, good_at, i))
            return 0;
    for (uint32_t j = s->bwd.depth; j-- > 0;)
        if (!step(&sp, p, back_at, j))
            return 0;
    return 1;
}

/* ---- Yen ----------------------------------------------------------------------------- */

static bool same_edges(const struct rf_path *a, const struct rf_path *b, uint32_t n)
{
    return memcmp(a->edges, b->edges, n * sizeof(a->edges[0])) == 0;
}

static bool known(const struct rf_scratch *s, const struct rf_path *p, uint64_t *left)
{
    charge(left, s->n_cand + s->n_enum);
    for (size_t i = 0; i < s->n_cand; i++)
        if (s->cand[i].len == p->len && same_edges(&s->cand[i], p, p->len))
            return true;
    for (unsigned i = 0; i < s->n_enum; i++)
        if (s->enumerated[i].len == p->len && same_edges(&s->enumerated[i], p, p->len))
            return true;
    return false;
}

static int add_candidate(struct rf_scratch *s, const struct rf_path *p, uint64_t *left)
{
    if (known(s, p, left))
        return SW_OK;
    if (s->n_cand == s->cap_cand) {
        size_t cap = s->cap_cand ? s->cap_cand * 2 : 64;
        struct rf_path *c;
        if (cap > RF_MAX_CANDIDATES)
            cap = RF_MAX_CANDIDATES;
        if (cap <= s->n_cand || !(c = realloc(s->cand, cap * sizeof(*c))))
            return SW_ENOMEM;
        s->cand = c;
        s->cap_cand = cap;
    }
    s->cand[s->n_cand++] = *p;
    return SW_OK;
}

/* Moves the best candidate to *out; false when there is none. */
static bool pop_best(struct rf_scratch *s, struct rf_path *out)
{
    size_t best = 0;
    if (s->n_cand == 0)
        return false;
    for (size_t i = 1; i < s->n_cand; i++)
        if (rf_path_cmp(&s->cand[i], &s->cand[best]) < 0)
            best = i;
    *out = s->cand[best];
    s->cand[best] = s->cand[--s->n_cand];
    return true;
}

/* Root = last's first i hops: blocks its nodes but the spur node, and removes at the spur
 * node the next transport of every enumerated path with the same root. */
static void restrict_to_root(struct rf_scratch *s, const struct rf_path *last, uint32_t i,
                             uint64_t *left)
{
    uint32_t gen = next_gen(&s->block_gen, s->blocked, s->cap);
    for (uint32_t j = 0; j < i; j++)
        s->blocked[last->nodes[j]] = gen;
    s->n_removed = 0;
    charge(left, s->n_enum);
    for (unsigned k = 0; k < s->n_enum; k++) {
        const struct rf_path *p = &s->enumerated[k];
        if (p->len > i && same_edges(p, last, i))
            s->removed[s->n_removed++] = p->edges[i];
    }
}

/* Adds the candidates that leave `last` at or after the node where it left its parent.
 * SW_OK, SW_ENOMEM, or SW_ERANGE when the budget ran out. */
static int spur_all(const struct rf_graph *g, struct rf_scratch *s, const struct rf_query *q,
                    const struct rf_path *last, uint64_t *left)
{
    for (uint32_t i = last->dev; i < last->len && i < q->max_hops; i++) {
        struct rf_path cand;
        int rc;
        cand.len = i;
        cand.dev = i;
        memcpy(cand.nodes, last->nodes, ((size_t)i + 1) * sizeof(cand.nodes[0]));
        memcpy(cand.edges, last->edges, (size_t)i * sizeof(cand.edges[0]));
        restrict_to_root(s, last, i, left);
        rc = shortest(g, s, q, &cand, q->max_hops - i, left);
        if (rc < 0)
            return SW_ERANGE;
        if (rc == 1 && (rc = add_candidate(s, &cand, left)))
            return rc;
    }
    return SW_OK;
}

static bool query_valid(const struct rf_graph *g, const struct rf_query *q)
{
    return q->src < g->n_nodes && q->dst < g->n_nodes && q->src != q->dst && q->min_hops >= 1 &&
           q->min_hops <= q->max_hops && q->max_hops <= RF_MAX_HOPS && q->count >= 1 &&
           q->count <= RF_MAX_COUNT;
}

/* The first path: nothing blocked or removed. 1 found, 0 none, -1 out of budget. */
static int first_path(const struct rf_graph *g, struct rf_scratch *s, const struct rf_query *q,
                      uint64_t *left)
{
    struct rf_path *p = &s->enumerated[0];
    int rc;
    next_gen(&s->block_gen, s->blocked, s->cap);
    s->n_removed = 0;
    p->len = 0;
    p->dev = 0;
    p->nodes[0] = q->src;
    rc = shortest(g, s, q, p, q->max_hops, left);
    s->n_enum = rc == 1;
    return rc;
}

int rf_search(const struct rf_graph *g, const struct rf_query *q, struct rf_scratch *s,
              struct rf_path *out, size_t *n, struct rf_search_stats *stats)
{
    uint64_t budget = q->budget ? q->budget : UINT64_MAX, left = budget;
    struct rf_search_stats st = { 0 };
    int rc;

    *n = 0;
    if (!query_valid(g, q))
        return SW_EINVAL;
    if ((rc = reserve(s, g->n_nodes)))
        return rc;
    s->n_cand = 0;
    st.exhausted = first_path(g, s, q, &left) < 0;
    rc = SW_OK;
    while (s->n_enum > 0) {
        const struct rf_path *last = &s->enumerated[s->n_enum - 1];
        if (last->len >= q->min_hops) {
            out[(*n)++] = *last;
            if (*n == q->count)
                break;
        }
        if (s->n_enum == RF_MAX_ENUMERATED) {
            st.exhausted = true;
            break;
        }
        if ((rc = spur_all(g, s, q, last, &left)) || !pop_best(s, &s->enumerated[s->n_enum]))
            break;
        s->n_enum++;
    }
    st.exhausted |= rc == SW_ERANGE;
    st.work = budget - left;
    st.enumerated = s->n_enum;
    if (stats)
        *stats = st;
    return rc == SW_ENOMEM ? rc : SW_OK;
}
