/* api.h — the transport discovery's REST endpoints (SPEC §4). */
#ifndef TD_API_H
#define TD_API_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

#include "common/http_server.h"
#include "common/network.h"
#include "common/signed_request.h"
#include "transport-discovery/store.h"

#define TD_MAX_BATCH 256   /* entries or statuses in one request */
#define TD_PAGE_DEFAULT 100
#define TD_PAGE_MAX 1000

/* The revocation list this instance serves: GET /network/revocations's body, built once
 * per new list. */
struct td_revcache {
    pthread_mutex_t mu;
    uint64_t issued_at; /* 0: none yet */
    char *body;         /* JSON text, or NULL */
};

struct td_app {
    struct td_store store;
    struct sw_nonce_store nonces;
    /* Private network (--network): every mutation's caller and every registered edge must
     * be a member with role visor; NULL on an open network. */
    struct sw_network *net;
    struct td_revcache revs;
    /* domain gauges/counters for /metrics, refreshed by the reaper */
    _Atomic int64_t transports_total;
    _Atomic int64_t transports_up;
    _Atomic uint64_t expired_total;
    _Atomic uint64_t purged_total;
    _Atomic uint64_t registered_total;
    _Atomic uint64_t deleted_total;
    _Atomic uint64_t refused_total;  /* requests refused as not_a_member */
    _Atomic int64_t members_total, members_valid;
};

extern const struct sw_http_route td_routes[];
extern const size_t td_n_routes;

void td_write_metrics(void *app, struct sw_buf *out);

/* revocations.c: GET/PUT /network/revocations, and the list shared through the database. */
void td_handle_revocations_get(struct sw_http_request *req, struct sw_http_response *resp);
void td_handle_revocations_put(struct sw_http_request *req, struct sw_http_response *resp);
/* Takes a stored list newer than the one in use (start-up, then every reaper run, so that
 * several instances on one database agree). No-op on an open network. */
int td_revocations_sync(struct td_app *app, struct sw_error *err);
void td_revcache_free(struct td_revcache *c);

#endif
