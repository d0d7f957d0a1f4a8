/* store.h — the transport discovery's PostgreSQL records.
 *
 * One row per transport (td_transports): the entry, both edges' signatures, and one half
 * per edge: its up/down opinion (up_a/up_b) and the time it last registered or posted a
 * status (updated_a/updated_b, unix seconds; NULL while that edge never reported). An
 * edge's request changes only its own half. A half counts as up only while it was
 * refreshed within the TTL; a transport is up only when both halves are. The column
 * `updated` is computed by PostgreSQL as the older half's time, so raw readers (the route
 * finder) get "both up and both fresh" from up_a AND up_b AND updated >= now - ttl; the
 * reaper also writes expiry into up_a/up_b so that readers who skip the time agree. */
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
/* Inserts or refreshes the entries (all or none): caller's half up and refreshed, label and
 * signatures replaced, the other half untouched. The caller must be an edge of every entry
 * (the API checks it before). */
int td_store_register(struct td_store *st, const struct sw_pk *caller, const struct sw_tp_signed_entry *entries,
                      size_t n, struct sw_buf *out, struct sw_error *err);
int td_store_get(struct td_store *st, const struct sw_uuid *id, struct sw_buf *out,
                 struct sw_error *err);
int td_store_by_edge(struct td_store *st, const struct sw_pk *pk, struct sw_buf *out,
                     struct sw_error *err);
/* Sets the caller's half of each transport (its opinion and refresh time) only. */
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
/* Marks down every half not refreshed within the TTL (expired_now counts the rows that
 * changed), deletes rows whose both halves are older than purge_s, and counts rows. */
int td_store_reap(struct td_store *st, int64_t purge_s, struct td_counts *out, struct sw_error *err);

#endif
