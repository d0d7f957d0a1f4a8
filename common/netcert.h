/* netcert.h — private-network membership records: certificates and the revocation list.
 *
 * A network is an Ed25519 key pair the operator keeps (skywire-cli net init). A certificate
 * says "subject key K is a member with role R (name, groups) from not_before to not_after",
 * signed by the network key; a revocation list says "these keys are no longer members",
 * signed by the same key and ordered by issued_at. Byte layouts: docs/wire-formats.md
 * "Membership certificate" and "Revocation list". Parsers go through the bounded reader and
 * check structure only; sw_cert_verify / sw_revlist_verify check signature, network and time.
 * Callers own every struct; nothing here allocates except sw_revlist (see below).
 * Pure functions, thread-safe. Policy (who must be a member where) lives in network.h. */
#ifndef SW_NETCERT_H
#define SW_NETCERT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/keys.h"

#define SW_CERT_VERSION 1
#define SW_CERT_NAME_MAX 64
#define SW_CERT_GROUPS_MAX 128
/* version, role, network, subject, not_before, not_after, name_len, groups_len, signature */
#define SW_CERT_MIN_LEN (1 + 1 + 32 + 32 + 8 + 8 + 1 + 1 + SW_SIG_LEN)
#define SW_CERT_MAX_LEN (SW_CERT_MIN_LEN + SW_CERT_NAME_MAX + SW_CERT_GROUPS_MAX)
#define SW_CERT_HEX_MAX (2 * SW_CERT_MAX_LEN)
/* A not_before this far in the future still counts (clocks of two machines disagree). */
#define SW_CERT_CLOCK_SKEW_S 120
/* HTTP header carrying the caller's certificate (hex) beside a signed request. */
#define SW_HDR_CERT "SW-Cert"

enum sw_role {
    SW_ROLE_VISOR = 1,
    SW_ROLE_MESSAGING_SERVER = 2,
    SW_ROLE_SETUP_NODE = 3,
    SW_ROLE_SERVICE = 4,
};
#define SW_ROLE_BIT(r) (1u << (r))
#define SW_ROLES_ANY (SW_ROLE_BIT(SW_ROLE_VISOR) | SW_ROLE_BIT(SW_ROLE_MESSAGING_SERVER) | \
                      SW_ROLE_BIT(SW_ROLE_SETUP_NODE) | SW_ROLE_BIT(SW_ROLE_SERVICE))

/* "visor", "messaging-server", "setup-node", "service"; "unknown" otherwise. */
const char *sw_role_name(unsigned role);
/* SW_OK and *role, or SW_EINVAL naming the accepted names. */
int sw_role_parse(const char *s, unsigned *role, struct sw_error *err);
/* "visor or setup-node": the roles of mask, for error messages. */
void sw_roles_describe(unsigned mask, char *out, size_t cap);

struct sw_cert {
    uint8_t version;
    uint8_t role;
    struct sw_pk network;
    struct sw_pk subject;
    uint64_t not_before; /* unix seconds */
    uint64_t not_after;  /* unix seconds, exclusive */
    char name[SW_CERT_NAME_MAX + 1];     /* [A-Za-z0-9._-]*, NUL-terminated */
    char groups[SW_CERT_GROUPS_MAX + 1]; /* "" or comma-separated [a-z0-9_-]+, no empty item */
    struct sw_sig sig;
};

/* Checks name and groups spelling (what sign and parse accept). */
int sw_cert_check_fields(const struct sw_cert *c, struct sw_error *err);
/* Fills c->network and c->sig from the network key pair (version set to 1). */
int sw_cert_sign(struct sw_cert *c, const struct sw_keypair *network, struct sw_error *err);
/* Encodes a signed certificate into out[cap]; *len its size (≤ SW_CERT_MAX_LEN). */
int sw_cert_encode(const struct sw_cert *c, uint8_t *out, size_t cap, size_t *len);
/* Structure only: exact length, version, role, field spelling. SW_EINVAL with a reason. */
int sw_cert_parse(const uint8_t *b, size_t len, struct sw_cert *out, struct sw_error *err);
/* Signature by *network, c->network == *network, not_before - skew <= now < not_after.
 * SW_ECRYPTO (signature or network), SW_EPERM (time window), with a reason. */
int sw_cert_verify(const struct sw_cert *c, const struct sw_pk *network, uint64_t now_s,
                   struct sw_error *err);

/* Hex text (the file format is this text plus an optional newline, the header value this). */
int sw_cert_to_hex(const struct sw_cert *c, char *out, size_t cap);
int sw_cert_from_hex(const char *hex, size_t len, struct sw_cert *out, uint8_t *raw,
                     size_t raw_cap, size_t *raw_len, struct sw_error *err);
/* Reads a certificate file (hex, surrounding whitespace ignored; at most 4 KiB). raw may be
 * NULL; else the binary form goes to raw[SW_CERT_MAX_LEN] and its size to *raw_len. */
int sw_cert_load_file(const char *path, struct sw_cert *out, uint8_t *raw, size_t *raw_len,
                      struct sw_error *err);
/* Writes the hex form and a newline, mode 0644, through a temporary file and rename. */
int sw_cert_save_file(const char *path, const struct sw_cert *c, struct sw_error *err);

/* ---- revocation list -------------------------------------------------------------------- */

#define SW_REVLIST_VERSION 1
#define SW_REVLIST_MAX_KEYS 16384
#define SW_REVLIST_MIN_LEN (1 + 32 + 8 + 4 + SW_SIG_LEN)
#define SW_REVLIST_MAX_LEN (SW_REVLIST_MIN_LEN + 32 * SW_REVLIST_MAX_KEYS)

/* keys: sorted ascending, no duplicates; owned (free with sw_revlist_free). */
struct sw_revlist {
    struct sw_pk network;
    uint64_t issued_at; /* unix seconds; a list replaces another only with a larger value */
    uint32_t count;
    struct sw_pk *keys;
    struct sw_sig sig;
};

void sw_revlist_free(struct sw_revlist *l);
/* Adds (or with remove=true drops) pk, keeping keys sorted; SW_EEXIST / SW_ENOTFOUND when
 * nothing changes, SW_ERANGE past SW_REVLIST_MAX_KEYS. The signature is stale afterwards. */
int sw_revlist_update(struct sw_revlist *l, const struct sw_pk *pk, bool remove);
bool sw_revlist_contains(const struct sw_revlist *l, const struct sw_pk *pk);
/* Sets network, issued_at (must be > the list's current one, else now is bumped) and sig. */
int sw_revlist_sign(struct sw_revlist *l, const struct sw_keypair *network, uint64_t issued_at);
/* Encoded form into a new buffer *out (free()), *len its size. */
int sw_revlist_encode(const struct sw_revlist *l, uint8_t **out, size_t *len);
/* Structure only (sorted, unique, counts); on success *out owns its keys. */
int sw_revlist_parse(const uint8_t *b, size_t len, struct sw_revlist *out, struct sw_error *err);
/* Signature by *network and l->network == *network. */
int sw_revlist_verify(const struct sw_revlist *l, const struct sw_pk *network, struct sw_error *err);
/* Hex forms for JSON bodies and files; *out is a new NUL-terminated string (free()). */
int sw_revlist_to_hex(const struct sw_revlist *l, char **out);
int sw_revlist_from_hex(const char *hex, size_t len, struct sw_revlist *out, struct sw_error *err);

#endif
