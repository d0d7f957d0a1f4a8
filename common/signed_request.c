#include "common/signed_request.h"
#include "common/hex.h"
#include "common/json.h"
#include "common/log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int sw_sreq_message(struct sw_buf *out, const char *method, const char *target, uint64_t nonce,
                    const void *body, size_t body_len)
{
    int rc;
    sw_buf_reset(out);
    if ((rc = sw_buf_printf(out, "%s %s\n%" PRIu64 "\n", method, target, nonce)))
        return rc;
    return sw_buf_append(out, body, body_len);
}

int sw_sreq_sign(const struct sw_keypair *kp, const char *method, const char *target,
                 uint64_t nonce, const void *body, size_t body_len, struct sw_sig *sig)
{
    struct sw_buf msg;
    int rc;
    sw_buf_init(&msg, 0);
    rc = sw_sreq_message(&msg, method, target, nonce, body, body_len);
    if (rc == SW_OK)
        sw_sign(kp, msg.data, msg.len, sig);
    sw_buf_free(&msg);
    return rc;
}

int sw_nonce_store_init(struct sw_nonce_store *ns, struct sw_db *db, const char *table)
{
    ns->db = db;
    ns->table = table;
    snprintf(ns->stmt_get, sizeof(ns->stmt_get), "%s_get", table);
    snprintf(ns->stmt_first, sizeof(ns->stmt_first), "%s_first", table);
    snprintf(ns->stmt_next, sizeof(ns->stmt_next), "%s_next", table);
    snprintf(ns->sql_get, sizeof(ns->sql_get), "SELECT next_nonce FROM %s WHERE pk = $1::bytea", table);
    snprintf(ns->sql_first, sizeof(ns->sql_first),
             "INSERT INTO %s AS n (pk, next_nonce) VALUES ($1::bytea, 1) ON CONFLICT (pk) DO "
             "UPDATE SET next_nonce = n.next_nonce + 1 WHERE n.next_nonce = 0 RETURNING next_nonce",
             table);
    snprintf(ns->sql_next, sizeof(ns->sql_next),
             "UPDATE %s SET next_nonce = next_nonce + 1 WHERE pk = $1::bytea AND next_nonce = "
             "$2::bigint RETURNING next_nonce", table);
    if (sw_db_prepare(db, ns->stmt_get, ns->sql_get) || sw_db_prepare(db, ns->stmt_first, ns->sql_first) ||
        sw_db_prepare(db, ns->stmt_next, ns->sql_next))
        return SW_ENOMEM;
    return SW_OK;
}

static void pk_param(const struct sw_pk *pk, char out[2 + SW_PK_HEX_LEN + 1])
{
    out[0] = '\\';
    out[1] = 'x';
    sw_pk_to_hex(pk, out + 2);
}

/* Strict decimal u64: digits only, no sign, no leading zeros, no overflow. */
static int parse_nonce(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    if (!s || !*s || strlen(s) > 20 || (s[0] == '0' && s[1]))
        return SW_EINVAL;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return SW_EINVAL;
        if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
            return SW_EINVAL;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    *out = v;
    return SW_OK;
}

/* Atomically moves the key's next nonce from `nonce` to nonce+1. SW_ECONFLICT on mismatch. */
static int consume_nonce(struct sw_nonce_store *ns, const struct sw_pk *pk, uint64_t nonce,
                         struct sw_error *err)
{
    struct sw_db_conn *c = NULL;
    PGresult *res = NULL;
    char pkp[2 + SW_PK_HEX_LEN + 1], nbuf[24];
    const char *params[2] = { pkp, nbuf };
    int rc;

    if (nonce > INT64_MAX - 1)
        return SW_ECONFLICT; /* the stored nonce is a bigint: it can never be this large */
    pk_param(pk, pkp);
    snprintf(nbuf, sizeof(nbuf), "%" PRIu64, nonce);
    if ((rc = sw_db_acquire(ns->db, &c, err)))
        return rc;
    if (nonce == 0)
        rc = sw_db_exec_prepared(c, ns->stmt_first, 1, params, &res, err);
    else
        rc = sw_db_exec_prepared(c, ns->stmt_next, 2, params, &res, err);
    if (rc == SW_OK && PQntuples(res) != 1)
        rc = SW_ECONFLICT;
    PQclear(res);
    sw_db_release(ns->db, c);
    return rc;
}

int sw_sreq_verify(struct sw_nonce_store *ns, const struct sw_http_request *req,
                   struct sw_pk *caller, struct sw_http_response *resp)
{
    const char *pk_hex = sw_http_header(req, SW_HDR_PUBLIC);
    const char *nonce_s = sw_http_header(req, SW_HDR_NONCE);
    const char *sig_hex = sw_http_header(req, SW_HDR_SIG);
    struct sw_error err = { 0 };
    struct sw_pk pk;
    struct sw_sig sig;
    struct sw_buf msg;
    uint64_t nonce;
    int rc;

    if (!pk_hex || !nonce_s || !sig_hex) {
        sw_http_reply_error(resp, 401, "unsigned",
                            "this request must be signed: send SW-Public, SW-Nonce and SW-Sig headers");
        return SW_EPERM;
    }
    if (sw_pk_from_hex(&pk, pk_hex, "SW-Public", &err)) {
        sw_http_reply_error(resp, 400, "invalid_public_key", "%s", err.msg);
        return SW_EINVAL;
    }
    if (parse_nonce(nonce_s, &nonce)) {
        sw_http_reply_error(resp, 400, "invalid_nonce", "SW-Nonce must be a decimal unsigned 64-bit integer");
        return SW_EINVAL;
    }
    sw_buf_init(&msg, 0);
    if (sw_sig_from_hex(&sig, sig_hex, "SW-Sig", &err) ||
        sw_sreq_message(&msg, req->method, req->target, nonce, req->body, req->body_len) ||
        sw_verify(&pk, msg.data, msg.len, &sig)) {
        sw_buf_free(&msg);
        sw_http_reply_error(resp, 401, "invalid_signature",
                            "SW-Sig is not a signature by SW-Public of this method, target, nonce and body");
        return SW_ECRYPTO;
    }
    sw_buf_free(&msg);
    rc = consume_nonce(ns, &pk, nonce, &err);
    if (rc == SW_ECONFLICT) {
        sw_http_reply_error(resp, 401, "nonce_mismatch",
                            "nonce %" PRIu64 " is not the next nonce of this key; GET /security/nonces/{pk}",
                            nonce);
        return rc;
    }
    if (rc) {
        sw_http_reply_store_error(resp, &err);
        return rc;
    }
    *caller = pk;
    return SW_OK;
}

void sw_sreq_reply_nonce(struct sw_nonce_store *ns, const struct sw_http_request *req,
                         struct sw_http_response *resp)
{
    struct sw_error err = { 0 };
    struct sw_db_conn *c = NULL;
    PGresult *res = NULL;
    struct sw_pk pk;
    char pkp[2 + SW_PK_HEX_LEN + 1];
    const char *params[1] = { pkp };
    struct json_object *o;
    int64_t next = 0;

    if (sw_pk_from_hex(&pk, req->param, "public key in path", &err)) {
        sw_http_reply_error(resp, 400, "invalid_public_key", "%s", err.msg);
        return;
    }
    pk_param(&pk, pkp);
    if (sw_db_acquire(ns->db, &c, &err) ||
        sw_db_exec_prepared(c, ns->stmt_get, 1, params, &res, &err)) {
        if (c)
            sw_db_release(ns->db, c);
        sw_http_reply_store_error(resp, &err);
        return;
    }
    if (PQntuples(res) == 1)
        next = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    sw_db_release(ns->db, c);
    o = json_object_new_object();
    json_object_object_add(o, "edge", sw_json_pk(&pk));
    json_object_object_add(o, "next_nonce", json_object_new_int64(next));
    sw_http_reply_json(resp, 200, o);
}
