/* network.h — the membership policy of one daemon: open network, or private network with
 * the operator's key, this daemon's own certificate and the current revocation list.
 *
 * Every component holds at most one struct sw_network (NULL = open network: every check
 * passes and no certificate is sent). In a private network a peer is admitted when its
 * certificate (sent in the handshake payload or the SW-Cert header, docs/security.md
 * "Membership") parses, names that peer's key, is signed by the network key, is inside its
 * time window, has one of the roles the caller accepts and its key is not revoked.
 *
 * Revocations: a background thread reloads the list every refresh_ms (default 20 s) from
 * the transport discovery (GET {url}/network/revocations) or from a file, keeping the
 * newest valid one (issued_at never goes back); sw_network_generation() changes with each
 * new list so owners of long-lived sessions re-check them (sw_network_recheck).
 * Thread-safe: every function may be called from any thread once sw_network_open returned. */
#ifndef SW_NETWORK_H
#define SW_NETWORK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/http_server.h"
#include "common/keys.h"
#include "common/netcert.h"

struct sw_network;

struct sw_network_opts {
    const char *network_pk;  /* 64 hex digits or a file holding them (network.pk); NULL or ""
                              * = open network (sw_network_open gives NULL) */
    const struct sw_pk *self; /* this daemon's key, or NULL for daemons without one */
    const char *cert_file;   /* own certificate; required when self is set (private network) */
    unsigned self_roles;     /* roles the own certificate may have (0 = any) */
    const char *revocations; /* "http://host:port" (a transport discovery), a file path, or NULL */
    unsigned refresh_ms;     /* 0 = 20000 */
};

/* Private network: *out is a new policy (its refresher runs when revocations is set).
 * Open network: SW_OK with *out = NULL. SW_EINVAL etc. with a reason for a bad key, a
 * certificate that is missing, for another key or network, expired or of the wrong role. */
int sw_network_open(struct sw_network **out, const struct sw_network_opts *o, struct sw_error *err);
void sw_network_close(struct sw_network *net); /* NULL ok; stops the refresher */
/* The network key as --network takes it: 64 hex digits, or the path of a file holding them
 * (surrounding whitespace ignored). SW_EINVAL with a reason. */
int sw_network_key_read(const char *arg, struct sw_pk *key, struct sw_error *err);
/* The --network option of every daemon (common/opts.h SW_OPT_CALL; target: a const char *
 * that keeps the value): the key is checked while parsing, so a bad one is a usage error. */
int sw_network_opt_key(void *target, const char *value, struct sw_error *err);

/* NULL-safe accessors. */
bool sw_network_is_private(const struct sw_network *net);
const struct sw_pk *sw_network_key(const struct sw_network *net); /* NULL when open */
/* This daemon's certificate (binary, len 0 when none) and its hex form ("" when none);
 * borrowed, valid until sw_network_close. */
const uint8_t *sw_network_own_cert(const struct sw_network *net, size_t *len);
const char *sw_network_own_cert_hex(const struct sw_network *net);
const struct sw_cert *sw_network_own_cert_parsed(const struct sw_network *net); /* or NULL */

/* The admission check (see the top). Open network: SW_OK whatever cert holds, and *out (if
 * given) is zeroed. Private: SW_EPERM with a reason such as "not a member: no certificate",
 * "...: revoked", "...: role visor, expected messaging-server". cert may be NULL/len 0. */
int sw_network_admit(struct sw_network *net, const struct sw_pk *who, const uint8_t *cert,
                     size_t len, unsigned roles, struct sw_cert *out, struct sw_error *err);
/* The same with the hex form (the SW-Cert header, JSON fields); hex may be NULL. */
int sw_network_admit_hex(struct sw_network *net, const struct sw_pk *who, const char *hex,
                         unsigned roles, struct sw_cert *out, struct sw_error *err);
/* For a signed HTTP request whose signer is *caller: reads SW-Cert and on refusal writes
 * 403 {"error":{"code":"not_a_member",...}} into resp. */
int sw_network_admit_request(struct sw_network *net, const struct sw_http_request *req,
                             const struct sw_pk *caller, unsigned roles, struct sw_cert *out,
                             struct sw_http_response *resp);
/* Is an admitted certificate still good now (time window, revocation)? */
int sw_network_recheck(struct sw_network *net, const struct sw_cert *c, struct sw_error *err);
bool sw_network_revoked(struct sw_network *net, const struct sw_pk *pk);
/* Changes whenever a new revocation list is taken (0 before the first). */
uint64_t sw_network_generation(struct sw_network *net);
/* Offers an encoded list (the transport discovery's own copy, tests): taken when it verifies
 * and is newer than the current one; SW_ECONFLICT when not newer. */
int sw_network_offer_revocations(struct sw_network *net, const uint8_t *list, size_t len,
                                 struct sw_error *err);
/* issued_at of the current list (0 before the first) and the number of keys in it. */
void sw_network_revocations_info(struct sw_network *net, uint64_t *issued_at, uint32_t *count);

#endif
