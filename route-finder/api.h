/* api.h — the route finder's REST endpoints (SPEC §5): POST /routes, plus the framework's
 * /health and /metrics. Queries are answered from the in-memory snapshot only; the
 * database is never touched on the request path. */
#ifndef RF_API_H
#define RF_API_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "common/http_server.h"
#include "common/metrics.h"
#include "route-finder/search.h"
#include "route-finder/sync.h"

#define RF_MAX_PAIRS 64
#define RF_DEFAULT_MAX_HOPS 10
/* Search work per request, in graph traversals (one = 2 x transports + keys adjacency
 * visits), shared evenly by its pairs but never below RF_PAIR_TRAVERSALS_MIN per pair. */
#define RF_REQUEST_TRAVERSALS 256
#define RF_PAIR_TRAVERSALS_MIN 8
#define RF_SCRATCH_POOL_MAX 256

/* Reusable search memory, one per concurrent request. */
struct rf_scratch_pool {
    pthread_mutex_t mu;
    struct rf_scratch *free[RF_SCRATCH_POOL_MAX];
    size_t n;
};

struct rf_app {
    struct rf_sync sync;
    struct rf_scratch_pool pool;
    int64_t ttl_s; /* transports not refreshed within this are not used (as the TD's --ttl) */
    _Atomic uint64_t req_ok, req_no_route, req_invalid, pairs_total, paths_total, exhausted_total;
    struct sw_histogram search_seconds;
};

extern const struct sw_http_route rf_routes[];
extern const size_t rf_n_routes;

void rf_app_init(struct rf_app *app);
void rf_app_free(struct rf_app *app);
void rf_write_metrics(void *app, struct sw_buf *out);

#endif
