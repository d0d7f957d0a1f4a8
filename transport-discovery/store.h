/* store.h — the transport discovery's PostgreSQL records.
 *
 * One row per transport (td_transports): the entry, both edges' signatures and each edge's
 * up/down opinion, registration and last-refresh times (unix seconds). A transport is up
 * only when both edges say so and it was refreshed within the TTL; the reaper also marks
 * stale rows down in the table so readers of the raw data (the route finder) agree. */
#ifndef TD_STORE_H
#define TD_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/db.h"
#include "common/tp_entry.h"

struct td_store {
    struct sw_db *db;
    int64_t ttl_s;
};

struct td_status_update {
    struct sw_uuid id;
    bool is_up;
};

/* Migrations and statements; call once at start-up before serving. */
int td_store_migrate(struct td_store *st, struct sw_error *err);
int td_store_prepare(struct td_store *st);

/* Each appends JSON text to out (an array of EntryWithStatus; one object for get; a page
 * {"transports":[...],"next":ID|null} for list) and returns SW_OK, or an error code:
 * SW_ENOTFOUND / SW_EPERM (caller not an edge; err says which item) / SW_EDB. */
int td_store_register(struct td_store *st, const struct sw_tp_signed_entry *entries, size_t n,
                      struct sw_buf *out, struct sw_error *err);
int td_store_get(struct td_store *st, const struct sw_uuid *id, struct sw_buf *out,
                 struct sw_error *err);
int td_store_by_edge(struct td_store *st, const struct sw_pk *pk, struct sw_buf *out,
                     struct sw_error *err);
int td_store_set_statuses(struct td_store *st, const struct sw_pk *caller,
                          const struct td_status_update *ups, size_t n, struct sw_buf *out,
                          struct sw_error *err);
int td_store_delete(struct td_store *st, const struct sw_pk *caller, const struct sw_uuid *id,
                    struct sw_error *err);
/* Page of at most limit entries with t_id > after, ordered by t_id. */
int td_store_list(struct td_store *st, const struct sw_uuid *after, unsigned limit,
                  struct sw_buf *out, struct sw_error *err);

struct td_counts {
    int64_t total, up, expired_now, purged_now;
};
/* Marks transports not refreshed within the TTL down, deletes those not refreshed within
 * purge_s, and counts rows. */
int td_store_reap(struct td_store *st, int64_t purge_s, struct td_counts *out, struct sw_error *err);

#endif
