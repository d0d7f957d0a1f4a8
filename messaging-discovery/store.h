/* store.h — the messaging discovery's PostgreSQL records.
 *
 * md_entries holds the latest accepted entry per key (its JSON, and for servers the free
 * capacity); md_watermarks holds the highest sequence ever accepted per key and outlives
 * deletes and expiry, so an old signed entry can never be replayed. A write is one
 * statement: raise the watermark if the sequence is higher, and only then upsert.
 *
 * Capacity claims: a server entry's available_sessions cannot be checked, so the value
 * stored and ranked by (available_servers' weighted order) is clamped to MD_SESSIONS_CLAMP
 * (rows stored unclamped by an older version are clamped when read);
 * the entry itself is served as signed (clients clamp it the same way).
 *
 * Private networks: each entry keeps the certificate it was admitted with (role, not_after,
 * hex); reads serve only entries whose certificate is unexpired (stored without one, as in
 * an open network, counts as expired), and the caller filters revoked keys (skip) and
 * purges them when a new revocation list arrives. */
#ifndef MD_STORE_H
#define MD_STORE_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/db.h"
#include "common/msg_entry.h"

/* Free sessions counted at most (the messaging server's default --max-sessions): a claim of
 * 4294967295 ranks like an honest default server, not 2 million times higher. */
#define MD_SESSIONS_CLAMP 2048

struct md_store {
    struct sw_db *db;
    int64_t ttl_s;    /* entries not refreshed within this are gone */
    bool private_net; /* serve only entries with an unexpired certificate */
};

/* The certificate an entry was admitted with (NULL / role 0: open network). */
struct md_cert_info {
    unsigned role;
    uint64_t not_after;
    const char *hex;
};

/* true: leave pk out of a listing (revoked). */
typedef bool (*md_skip_fn)(void *arg, const struct sw_pk *pk);

int md_store_migrate(struct md_store *st, struct sw_error *err);
int md_store_prepare(struct md_store *st);

/* SW_ECONFLICT when the sequence is not above the key's watermark. A server's
 * available_sessions is stored clamped to MD_SESSIONS_CLAMP. */
int md_store_put(struct md_store *st, const struct sw_msg_entry *e, const struct md_cert_info *ci,
                 struct sw_error *err);
/* *out: the entry's JSON object (caller owns); SW_ENOTFOUND when absent or expired. */
int md_store_get(struct md_store *st, const struct sw_pk *pk, struct json_object **out,
                 struct sw_error *err);
int md_store_delete(struct md_store *st, const struct sw_pk *pk, struct sw_error *err);
/* Live servers as a JSON array: all of them, or (available) those with free sessions in
 * a random order weighted by free capacity, at most limit; skip (may be NULL) drops keys. */
int md_store_servers(struct md_store *st, bool available, unsigned limit, md_skip_fn skip, void *skip_arg,
                     struct json_object **out, struct sw_error *err);
/* Deletes the entries whose key drop() names (revoked); *purged = how many. */
int md_store_purge(struct md_store *st, md_skip_fn drop, void *arg, int64_t *purged,
                   struct sw_error *err);

struct md_counts {
    int64_t entries, servers, expired_now;
};
int md_store_expire(struct md_store *st, struct md_counts *out, struct sw_error *err);

#endif
