/* members.h — what a private network's transport discovery keeps besides transports.
 *
 * td_members: one row per key, the certificate last admitted for it (as the caller of a
 * request or as an edge of a registered entry), with its fields spelled out for operators
 * (role, name, groups, not_before, not_after). A row is replaced only by a certificate
 * issued later (larger not_before, or the same not_before and a larger not_after) or for
 * another network, so an edge's stale copy of its peer's certificate never undoes a
 * renewal. The route finder reads pk and cert (route-finder/members.h).
 *
 * td_revocations: the newest revocation list per network key (issued_at only grows), so
 * that every TD instance on the database serves and applies the same list. */
#ifndef TD_MEMBERS_H
#define TD_MEMBERS_H

#include <stddef.h>
#include <stdint.h>

#include "common/netcert.h"
#include "transport-discovery/store.h"

int td_members_prepare(struct td_store *st);

/* Inserts or renews the n certificates (already admitted: parsed, verified). */
int td_members_upsert(struct td_store *st, const struct sw_cert *certs, size_t n,
                      struct sw_error *err);
/* Deletes rows whose certificate ended before cutoff (unix seconds); *deleted rows. */
int td_members_purge(struct td_store *st, int64_t cutoff, int64_t *deleted, struct sw_error *err);
/* Counts rows, and those valid at now (unix seconds). */
int td_members_count(struct td_store *st, int64_t now, int64_t *total, int64_t *valid,
                     struct sw_error *err);

/* The stored list of network if its issued_at is larger than after: *list (malloc'd,
 * caller frees) and *len; *list = NULL when there is none that new. */
int td_revocations_load(struct td_store *st, const struct sw_pk *network, uint64_t after,
                        uint8_t **list, size_t *len, struct sw_error *err);
/* Stores list (already verified) unless the stored one's issued_at is >= issued_at:
 * SW_ECONFLICT then, with *stored its issued_at. */
int td_revocations_store(struct td_store *st, const struct sw_pk *network, uint64_t issued_at,
                         const uint8_t *list, size_t len, uint64_t *stored, struct sw_error *err);

#endif
