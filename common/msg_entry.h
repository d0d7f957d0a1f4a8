/* msg_entry.h — messaging discovery entries: which messaging servers a key can be reached
 * over (client part) and where a messaging server listens (server part), signed by the key.
 *
 * Canonical signed bytes (docs/wire-formats.md):
 *   "skywire-msg-entry/1" (19) || version_len u8 || version || sequence u64 || timestamp u64
 *   || static (32) || flags u8 (bit0 client, bit1 server)
 *   || [client] n u8 || n * 32-byte delegated server keys
 *   || [server] addr_len u16 || address || available_sessions u32
 * The JSON form only carries those fields; verification re-derives the bytes. */
#ifndef SW_MSG_ENTRY_H
#define SW_MSG_ENTRY_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/keys.h"

#define SW_MSG_VERSION "0.1.0"
#define SW_MSG_VERSION_MAX 16
#define SW_MSG_DELEGATES_MAX 16
#define SW_MSG_ADDR_MAX 255
#define SW_MSG_CANON_MAX (19 + 1 + SW_MSG_VERSION_MAX + 8 + 8 + 32 + 1 + 1 + \
                          SW_MSG_DELEGATES_MAX * 32 + 2 + SW_MSG_ADDR_MAX + 4)

struct sw_msg_entry {
    char version[SW_MSG_VERSION_MAX + 1];
    uint64_t sequence;
    uint64_t timestamp; /* unix seconds when signed */
    struct sw_pk static_pk;
    bool has_client;
    size_t n_delegated;
    struct sw_pk delegated[SW_MSG_DELEGATES_MAX];
    bool has_server;
    char address[SW_MSG_ADDR_MAX + 1]; /* host:port */
    uint32_t available_sessions;
    struct sw_sig signature;
};

/* Writes the canonical bytes into out (cap >= SW_MSG_CANON_MAX); returns the length or 0. */
size_t sw_msg_entry_canonical(const struct sw_msg_entry *e, uint8_t *out, size_t cap);
void sw_msg_entry_sign(struct sw_msg_entry *e, const struct sw_keypair *kp);
/* Structure checks (one of client/server present, address is host:port) and signature.
 * SW_EINVAL for malformed, SW_ECRYPTO for a bad signature. */
int sw_msg_entry_verify(const struct sw_msg_entry *e, struct sw_error *err);

int sw_msg_entry_from_json(struct json_object *obj, struct sw_msg_entry *e, struct sw_error *err);
struct json_object *sw_msg_entry_to_json(const struct sw_msg_entry *e);

#endif
