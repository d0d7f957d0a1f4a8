/* store.h — the messaging discovery's PostgreSQL records.
 *
 * md_entries holds the latest accepted entry per key (its JSON, and for servers the free
 * capacity); md_watermarks holds the highest sequence ever accepted per key and outlives
 * deletes and expiry, so an old signed entry can never be replayed. A write is one
 * statement: raise the watermark if the sequence is higher, and only then upsert. */
#ifndef MD_STORE_H
#define MD_STORE_H

#include <json-c/json.h>
#include <stdint.h>

#include "common/db.h"
#include "common/msg_entry.h"

struct md_store {
    struct sw_db *db;
    int64_t ttl_s; /* entries not refreshed within this are gone */
};

int md_store_migrate(struct md_store *st, struct sw_error *err);
int md_store_prepare(struct md_store *st);

/* SW_ECONFLICT when the sequence is not above the key's watermark. */
int md_store_put(struct md_store *st, const struct sw_msg_entry *e, struct sw_error *err);
/* *out: the entry's JSON object (caller owns); SW_ENOTFOUND when absent or expired. */
int md_store_get(struct md_store *st, const struct sw_pk *pk, struct json_object **out,
                 struct sw_error *err);
int md_store_delete(struct md_store *st, const struct sw_pk *pk, struct sw_error *err);
/* Live servers as a JSON array: all of them, or (available) those with free sessions in
 * a random order weighted by free capacity, at most limit. */
int md_store_servers(struct md_store *st, bool available, unsigned limit, struct json_object **out,
                     struct sw_error *err);

struct md_counts {
    int64_t entries, servers, expired_now;
};
int md_store_expire(struct md_store *st, struct md_counts *out, struct sw_error *err);

#endif
