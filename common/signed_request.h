/* signed_request.h — mutations over REST are signed by the caller's Ed25519 key.
 *
 * Headers: SW-Public: <pk hex>, SW-Nonce: <decimal u64>, SW-Sig: <hex signature> over the
 * bytes  METHOD SP TARGET LF NONCE LF BODY  (TARGET = path and query exactly as sent).
 * The server keeps the next nonce per key in PostgreSQL (table chosen by the daemon) and
 * consumes it atomically for every request whose signature verifies, whatever happens next.
 * Verification order: headers present (401 unsigned) -> well-formed (400) -> signature
 * (401 invalid_signature) -> nonce consumed (401 nonce_mismatch / 503 when the DB is down). */
#ifndef SW_SIGNED_REQUEST_H
#define SW_SIGNED_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/db.h"
#include "common/http_server.h"
#include "common/keys.h"

#define SW_HDR_PUBLIC "SW-Public"
#define SW_HDR_NONCE "SW-Nonce"
#define SW_HDR_SIG "SW-Sig"

/* DDL for a daemon's migration list; t is a string literal table name. */
#define SW_NONCE_TABLE_DDL(t) \
    "CREATE TABLE IF NOT EXISTS " t " (pk bytea PRIMARY KEY, next_nonce bigint NOT NULL);"

/* The exact bytes that are signed, into out (reset first). */
int sw_sreq_message(struct sw_buf *out, const char *method, const char *target, uint64_t nonce,
                    const void *body, size_t body_len);
int sw_sreq_sign(const struct sw_keypair *kp, const char *method, const char *target,
                 uint64_t nonce, const void *body, size_t body_len, struct sw_sig *sig);

/* Server side. table is borrowed (static string); statements are registered on db. */
struct sw_nonce_store {
    struct sw_db *db;
    const char *table;
    char stmt_get[64], stmt_first[64], stmt_next[64];
    char sql_get[160], sql_first[256], sql_next[200]; /* borrowed by db: live here */
};

int sw_nonce_store_init(struct sw_nonce_store *ns, struct sw_db *db, const char *table);

/* Verifies req; on SW_OK *caller is the signer. On failure the error reply is already
 * written into resp and a negative code returned. */
int sw_sreq_verify(struct sw_nonce_store *ns, const struct sw_http_request *req,
                   struct sw_pk *caller, struct sw_http_response *resp);

/* Serves GET /security/nonces/{pk}: req->param holds the pk. */
void sw_sreq_reply_nonce(struct sw_nonce_store *ns, const struct sw_http_request *req,
                         struct sw_http_response *resp);

#endif
