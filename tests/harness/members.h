/* members.h — private-network test material: a network key, certificates for test keys
 * (files, hex or binary) and revocation lists, made in-process with common/netcert.h the way
 * `skywire-cli net sign` / `net revoke --file` make them. The one place tests sign: net_env.h
 * wraps it. The _ex and th_network_revoke calls return 0, or -1 with the reason on stderr;
 * the others abort on failure (they run in setup code as well as in tests). */
#ifndef SW_TEST_MEMBERS_H
#define SW_TEST_MEMBERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/keys.h"
#include "common/netcert.h"

struct th_network {
    struct sw_keypair kp;              /* the network key pair (the operator's) */
    char pk_hex[SW_PK_HEX_LEN + 1];    /* what --network takes */
    uint64_t rev_issued;               /* issued_at of the last list signed */
};

/* from_s of th_network_cert_ex: now - 60 s, or 60 s before a not_after already past. */
#define TH_CERT_FROM_AUTO INT64_MIN

void th_network_init(struct th_network *n);
/* A certificate for pk with role, name (NULL: "test-<role>") and groups (NULL: none), valid
 * from now + from_s (TH_CERT_FROM_AUTO: see above) until now + ttl_s (negative: already
 * expired). Written, each when not NULL, to path (hex and a newline, as skywire-cli writes
 * it), to hex (SW_CERT_HEX_MAX + 1 bytes) and to raw (SW_CERT_MAX_LEN bytes, size in
 * *raw_len). */
int th_network_cert_ex(const struct th_network *n, const struct sw_pk *pk, unsigned role, const char *name,
                       const char *groups, int64_t from_s, int64_t ttl_s, const char *path, char *hex,
                       uint8_t *raw, size_t *raw_len);
/* th_network_cert_ex with the default name, no groups, TH_CERT_FROM_AUTO and no file. */
void th_network_cert(const struct th_network *n, const struct sw_pk *pk, unsigned role, int64_t ttl_s,
                     char hex[SW_CERT_HEX_MAX + 1], uint8_t *raw, size_t *raw_len);
/* The same written to path only. */
void th_network_cert_file(const struct th_network *n, const struct sw_pk *pk, unsigned role, int64_t ttl_s,
                          const char *path);
/* A revocation list naming keys[count] (count 0: nothing revoked), issued after the previous
 * one this struct signed, written to path (atomically, hex and a newline) when not NULL; its
 * hex form to *hex (free()) when hex is not NULL. */
int th_network_revoke(struct th_network *n, const struct sw_pk *keys, size_t count, const char *path,
                      char **hex);
/* th_network_revoke to path only. */
void th_network_revoke_file(struct th_network *n, const struct sw_pk *keys, size_t count, const char *path);

#endif
