/* tp_entry.h — a transport entry: the link between two visors that the transport
 * discovery records, its deterministic ID, and the canonical bytes both edges sign.
 *
 * Transport ID (docs/wire-formats.md): BLAKE2b-256 of
 *   "skywire-tp-id/1" || edge0 (32) || edge1 (32) || type,   edges sorted ascending,
 * first 16 bytes, with UUID version 8 and RFC 4122 variant bits set.
 *
 * Canonical signed bytes:
 *   "skywire-tp-entry/1" (18 bytes) || t_id (16) || edge0 (32) || edge1 (32)
 *   || type_len (u8) || type || label_len (u16 BE) || label
 * Each edge signs those bytes with its Ed25519 key; signatures[i] belongs to edges[i]. */
#ifndef SW_TP_ENTRY_H
#define SW_TP_ENTRY_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/keys.h"
#include "common/netcert.h"
#include "common/uuid.h"

#define SW_TP_TYPE_MAX 16
#define SW_TP_LABEL_MAX 256
#define SW_TP_CANON_MAX (18 + 16 + 64 + 1 + SW_TP_TYPE_MAX + 2 + SW_TP_LABEL_MAX)

struct sw_tp_entry {
    struct sw_uuid id;
    struct sw_pk edges[2]; /* sorted: memcmp(edges[0], edges[1]) < 0 */
    char type[SW_TP_TYPE_MAX + 1];
    char label[SW_TP_LABEL_MAX + 1];
};

struct sw_tp_signed_entry {
    struct sw_tp_entry entry;
    struct sw_sig sigs[2];
    /* Private networks: each edge's membership certificate (hex, netcert.h), in edge order;
     * "" when absent. JSON "certs":[c0,c1], omitted when both are empty. */
    char certs[2][SW_CERT_HEX_MAX + 1];
};

/* True for the transport types this network knows ("stcp", "dmsg"). */
bool sw_tp_type_valid(const char *type);

void sw_tp_id(const struct sw_pk *a, const struct sw_pk *b, const char *type, struct sw_uuid *out);

/* Builds a complete entry from two keys in any order; SW_EINVAL for equal keys, an unknown
 * type or an oversize label. */
int sw_tp_entry_make(struct sw_tp_entry *e, const struct sw_pk *a, const struct sw_pk *b,
                     const char *type, const char *label, struct sw_error *err);

/* Writes the canonical bytes into out (cap >= SW_TP_CANON_MAX); returns the length. */
size_t sw_tp_entry_canonical(const struct sw_tp_entry *e, uint8_t *out, size_t cap);

/* Index (0/1) of pk among the edges, or -1. */
int sw_tp_entry_edge_index(const struct sw_tp_entry *e, const struct sw_pk *pk);

void sw_tp_entry_sign(const struct sw_tp_entry *e, const struct sw_keypair *kp, struct sw_sig *out);
/* Checks sorted distinct edges, type, derived ID and both signatures.
 * SW_EINVAL for a malformed entry, SW_ECRYPTO for a bad signature (err says which). */
int sw_tp_signed_entry_verify(const struct sw_tp_signed_entry *se, struct sw_error *err);

/* JSON <-> struct. Parsing names the bad field under `where`. New objects are owned by the
 * caller. */
int sw_tp_entry_from_json(struct json_object *obj, const char *where, struct sw_tp_entry *e,
                          struct sw_error *err);
int sw_tp_signed_entry_from_json(struct json_object *obj, const char *where,
                                 struct sw_tp_signed_entry *se, struct sw_error *err);
struct json_object *sw_tp_entry_to_json(const struct sw_tp_entry *e);
struct json_object *sw_tp_signed_entry_to_json(const struct sw_tp_signed_entry *se);

#endif
