/* api.h — the messaging discovery's REST endpoints (SPEC §7). */
#ifndef MD_API_H
#define MD_API_H

#include <stdatomic.h>
#include <stdint.h>

#include "common/http_server.h"
#include "common/network.h"
#include "common/signed_request.h"
#include "messaging-discovery/store.h"

#define MD_SERVERS_DEFAULT 16
#define MD_SERVERS_MAX 1000

struct md_app {
    struct md_store store;
    struct sw_nonce_store nonces;
    int64_t max_age_s;    /* oldest acceptable entry timestamp, relative to now */
    int64_t max_future_s; /* clock skew tolerated for timestamps ahead of us */
    struct sw_network *net; /* NULL = open network */
    uint64_t purged_gen;  /* periodic task: revocation list generation last purged */
    _Atomic int64_t entries, servers;
    _Atomic uint64_t accepted_total, rejected_total, expired_total;
    _Atomic uint64_t not_member_total, revoked_purged_total;
    _Atomic uint64_t clamped_total; /* server entries claiming more than MD_SESSIONS_CLAMP */
};

extern const struct sw_http_route md_routes[];
extern const size_t md_n_routes;

void md_write_metrics(void *app, struct sw_buf *out);
/* Periodic: after a new revocation list, deletes the revoked keys' entries. */
void md_purge_revoked(struct md_app *app);

#endif
