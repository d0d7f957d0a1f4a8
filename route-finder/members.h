/* members.h — who may be on a route of a private network: the keys whose certificate,
 * stored by the transport discovery in td_members, is a visor certificate of this network
 * signed by its key, inside its time window, and not revoked.
 *
 * The sync thread (sync.h) loads the table at each (re)connection and whenever it changes
 * (trigger rf_notify_td_membership on td_members and td_revocations), and masks the rows of
 * td_transports with it before building a snapshot: a transport with an end that is not a
 * member counts as down. Expiry is exact at query time: the masked row's `updated` is at
 * most not_after - ttl - 1, so rf_edge_usable (up_at >= now - ttl) turns false at the
 * second the certificate ends, without a rebuild. A revocation or a new certificate
 * rebuilds the snapshot. Signatures are checked once per certificate: a reload keeps the
 * verdict of a certificate it saw before. */
#ifndef RF_MEMBERS_H
#define RF_MEMBERS_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "common/network.h"
#include "route-finder/graph.h"

struct rf_member {
    struct sw_pk pk;
    uint8_t digest[32];  /* of the certificate bytes, to skip re-verifying it */
    bool ok;             /* a visor certificate of this network, signature verified */
    int64_t not_before;  /* unix seconds */
    int64_t not_after;   /* unix seconds, exclusive */
};

struct rf_members {
    struct rf_member *v; /* sorted by pk */
    size_t n;
};

void rf_members_free(struct rf_members *m);

/* Reads td_members (pk, cert) into *out, verifying each certificate against net's key
 * unless old holds the same bytes for that key. *bad = rows that are not members. */
int rf_members_load(PGconn *pg, struct sw_network *net, const struct rf_members *old,
                    struct rf_members *out, size_t *bad, struct sw_error *err);

/* Reads td_revocations' list for net's key and offers it to net (taken when it verifies
 * and is newer). */
int rf_members_load_revocations(PGconn *pg, struct sw_network *net, struct sw_error *err);

/* Copies rows with the transports that have an end that is not a member at now marked
 * down, and the others' `updated` capped so that they stop being usable when the first
 * end's certificate ends (see the top). *next_s: the next time (unix seconds) a
 * certificate that is not valid yet becomes valid, 0 when none. NULL on out of memory. */
struct rf_row *rf_members_mask(const struct rf_members *m, struct sw_network *net,
                               const struct rf_row *rows, size_t n, int64_t now, int64_t ttl_s,
                               int64_t *next_s);

/* Keys that are members at now (for metrics). */
size_t rf_members_valid(const struct rf_members *m, struct sw_network *net, int64_t now);

#endif
