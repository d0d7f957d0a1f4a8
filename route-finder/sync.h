/* sync.h — keeps the route finder's graph snapshot in step with td_transports.
 *
 * One background thread owns a dedicated libpq session (not from the pool). On every
 * (re)connection it runs LISTEN td_transports, then reads the whole table and publishes a
 * fresh snapshot, so nothing that changed while it was away is missed. Afterwards each
 * notification names a t_id; the thread collects them until the stream has been quiet for
 * RF_SYNC_QUIET_MS (or RF_SYNC_BATCH_MS after the first one, and no sooner than the
 * rebuild spacing below allows), re-reads just those rows in
 * one query (or the whole table when more than RF_SYNC_REREAD_MAX piled up), merges them
 * into its sorted copy of the table and publishes a new snapshot. A lost session is
 * reopened with backoff; meanwhile the last snapshot keeps answering queries.
 *
 * Publishing swaps one pointer under a mutex held for a few instructions; readers take a
 * reference (rf_sync_graph) and drop it when their request is done, so a reload never makes
 * a query wait and a query never delays a reload.
 *
 * Private network (net set): the session also LISTENs on td_membership (td_members and
 * td_revocations changed); the members and, unless net has a source of its own
 * (--revocations), the stored revocation list are read at each (re)connection and after
 * each such notification, and every snapshot is built from the rows masked by the members
 * (members.h). A new revocation list (net's generation), a changed member or a certificate
 * becoming valid rebuilds the snapshot from the rows in memory. */
#ifndef RF_SYNC_H
#define RF_SYNC_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/db.h"
#include "common/network.h"
#include "route-finder/graph.h"
#include "route-finder/members.h"
#include "route-finder/store.h"

/* After a rebuild that took t ms, the next waits at least RF_SYNC_GAP_FACTOR * t ms (at
 * most RF_SYNC_GAP_MAX_MS): under a steady stream of changes the thread spends at most
 * 1 / (1 + RF_SYNC_GAP_FACTOR) of a core on rebuilds, and a change still shows within
 * RF_SYNC_BATCH_MS + RF_SYNC_GAP_MAX_MS + one rebuild. */
#define RF_SYNC_GAP_FACTOR 3
#define RF_SYNC_GAP_MAX_MS 400
#define RF_SYNC_QUIET_MS 10
#define RF_SYNC_BATCH_MS 100
#define RF_SYNC_REREAD_MAX 4096
#define RF_SYNC_BACKOFF_MIN_MS 200
#define RF_SYNC_BACKOFF_MAX_MS 2000
/* Private network: how often net's generation is looked at when it has a source of its own. */
#define RF_SYNC_NET_CHECK_MS 1000

struct rf_sync {
    /* set before rf_sync_start: the private network's policy (NULL: open network), whether
     * it reads revocations itself (else from td_revocations), and the TTL for the masks */
    struct sw_network *net;
    bool net_has_source;
    int64_t ttl_s;

    /* published snapshot: never NULL once started */
    pthread_mutex_t mu;
    struct rf_graph *graph;

    /* counters and gauges, for /metrics */
    _Atomic uint64_t full_loads, updates, notifications, reconnects;
    _Atomic int64_t published_ms;  /* monotonic time of the last published snapshot (0: none) */
    _Atomic uint64_t last_load_us; /* last full load: query + build */
    _Atomic bool connected, loaded;
    _Atomic uint64_t members_valid, members_reloads; /* private network */

    /* the thread's own state */
    struct rf_conninfo conninfo;
    pthread_t thread;
    bool running, mu_ready, wake_ready;
    int wake[2]; /* pipe: a byte asks the thread to stop */
    _Atomic bool stop;
    PGconn *pg;
    struct rf_row *rows; /* the table as last read, sorted by t_id */
    size_t n_rows;
    struct sw_uuid *pending; /* notified t_ids not applied yet */
    size_t n_pending;
    bool pending_overflow; /* too many, or one unreadable: reload everything */
    int64_t pending_since_ms; /* monotonic */
    int64_t next_apply_ms; /* rebuild spacing (monotonic) */
    unsigned failed_attempts;
    /* private network */
    struct rf_members members;
    bool members_dirty;     /* td_membership notified: reload members and revocations */
    uint64_t net_generation; /* net's generation the snapshot was masked with */
    int64_t next_member_s;  /* unix seconds when a certificate becomes valid (0: none) */
};

/* Takes the connection parameters from a live pooled connection of db, publishes an empty
 * graph and starts the thread. s must be zeroed but for net, net_has_source and ttl_s. */
int rf_sync_start(struct rf_sync *s, struct sw_db *db, struct sw_error *err);
/* Stops and joins the thread, frees everything. Safe on a never-started (zeroed) s. */
void rf_sync_stop(struct rf_sync *s);
/* True once the first full load has been published. */
bool rf_sync_loaded(struct rf_sync *s);
/* The current snapshot, with a reference the caller drops with rf_graph_unref. */
struct rf_graph *rf_sync_graph(struct rf_sync *s);

#endif
