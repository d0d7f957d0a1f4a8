/* api.h — the transport discovery's REST endpoints (SPEC §4). */
#ifndef TD_API_H
#define TD_API_H

#include <stdatomic.h>
#include <stddef.h>

#include "common/http_server.h"
#include "common/signed_request.h"
#include "transport-discovery/store.h"

#define TD_MAX_BATCH 256   /* entries or statuses in one request */
#define TD_PAGE_DEFAULT 100
#define TD_PAGE_MAX 1000

struct td_app {
    struct td_store store;
    struct sw_nonce_store nonces;
    /* domain gauges/counters for /metrics, refreshed by the reaper */
    _Atomic int64_t transports_total;
    _Atomic int64_t transports_up;
    _Atomic uint64_t expired_total;
    _Atomic uint64_t purged_total;
    _Atomic uint64_t registered_total;
    _Atomic uint64_t deleted_total;
};

extern const struct sw_http_route td_routes[];
extern const size_t td_n_routes;

void td_write_metrics(void *app, struct sw_buf *out);

#endif
