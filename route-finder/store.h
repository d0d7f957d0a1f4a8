/* store.h — what the route finder reads from, and adds to, the transport discovery's
 * database. It never creates or alters the TD's tables: its one migration (component
 * "route-finder") adds a trigger function, and every start makes sure the trigger
 * rf_notify_td_transports exists on td_transports, so that every INSERT, UPDATE and DELETE
 * there sends pg_notify('td_transports', t_id). Rows are read with binary results.
 *
 * It reads only t_id, edge_a, edge_b, up_a AND up_b, and updated: columns of every schema
 * version of td_transports. Since the TD's v2 each edge has its own refresh time and
 * `updated` is computed as the older of the two, so "up and updated within the TTL" means
 * both edges say up and both reported within the TTL, against a v1 or a v2 table alike. */
#ifndef RF_STORE_H
#define RF_STORE_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/db.h"
#include "route-finder/graph.h"

#define RF_NOTIFY_CHANNEL "td_transports"
/* Private networks: td_members or td_revocations changed (payload: the table's name). */
#define RF_MEMBERSHIP_CHANNEL "td_membership"

/* Waits (logging once) until td_transports exists (and, for a private network, the TD's
 * td_members and td_revocations of its schema v3), then applies the migrations and installs
 * the triggers that are missing: rf_notify_td_transports, and for a private network
 * rf_notify_td_members and rf_notify_td_revocations (channel RF_MEMBERSHIP_CHANNEL).
 * SW_EDB while the database is unreachable (the caller retries); SW_EIO when a stop signal
 * arrived while waiting. */
int rf_store_migrate(struct sw_db *db, bool private_network, struct sw_error *err);

/* Connection parameters for a dedicated session (not from the pool): those of a live pooled
 * connection, plus TCP keepalives so that a silently dead link is noticed. */
struct rf_conninfo {
    char **keys, **vals; /* NULL-terminated, for PQconnectdbParams */
};
int rf_conninfo_from_pool(struct sw_db *db, struct rf_conninfo *out, struct sw_error *err);
void rf_conninfo_free(struct rf_conninfo *ci);
/* A connected session, or NULL with err set (SW_EDB). */
PGconn *rf_store_connect(const struct rf_conninfo *ci, struct sw_error *err);

/* The session's last error on one line (whitespace runs become one space). */
void rf_store_pg_message(PGconn *pg, char *out, size_t cap);
/* Runs a command without results (LISTEN). SW_EDB with PostgreSQL's message. */
int rf_store_command(PGconn *pg, const char *sql, struct sw_error *err);

/* Every transport (*rows malloc'd, caller frees; any order). */
int rf_store_load_all(PGconn *pg, struct rf_row **rows, size_t *n, struct sw_error *err);
/* The transports among ids[0..n_ids) that still exist. */
int rf_store_load_ids(PGconn *pg, const struct sw_uuid *ids, size_t n_ids, struct rf_row **rows,
                      size_t *n, struct sw_error *err);

#endif
