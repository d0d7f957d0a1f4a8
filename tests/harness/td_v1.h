/* td_v1.h — a transport discovery database as a version-1 daemon left it (td_transports
 * with one `updated` stamp for both edges), for tests of the migration to per-edge halves
 * and of readers (the route finder) across it. */
#ifndef SW_TEST_TD_V1_H
#define SW_TEST_TD_V1_H

#include <stdbool.h>
#include <stdint.h>

#include "common/keys.h"
#include "common/uuid.h"

/* Creates the version-1 schema (recorded as transport-discovery v1 in sw_schema_migrations,
 * exactly as the old daemon did) in the database at db_url. 0 on success, -1 (logged). */
int th_td_v1_create(const char *db_url);

/* Inserts the stcp transport between x and y as a version-1 daemon stored it: x's and y's
 * opinions, registered = updated = the given time, label "v1", zero signatures. *id gets
 * the t_id (derived from the keys like a real entry's). 0 on success, -1 (logged). */
int th_td_v1_insert(const char *db_url, const struct sw_keypair *x, bool up_x, const struct sw_keypair *y,
                    bool up_y, int64_t updated, struct sw_uuid *id);

#endif
