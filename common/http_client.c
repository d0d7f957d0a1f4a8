#include "common/http_client.h"
#include "common/buf.h"
#include "common/json.h"
#include "common/netcert.h"
#include "common/signed_request.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sw_http_client {
    CURL *curl;
    struct sw_http_client_opts opts;
    char cert[SW_CERT_HEX_MAX + 1]; /* SW-Cert of signed requests, "" for none */
};

int sw_http_global_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? SW_OK : SW_EIO;
}

struct sw_http_client *sw_http_client_new(const struct sw_http_client_opts *opts)
{
    struct sw_http_client *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    if (opts)
        c->opts = *opts;
    if (!c->opts.connect_timeout_ms)
        c->opts.connect_timeout_ms = 3000;
    if (!c->opts.timeout_ms)
        c->opts.timeout_ms = 10000;
    if (!c->opts.max_response)
        c->opts.max_response = 16u << 20;
    c->curl = curl_easy_init();
    if (!c->curl) {
        free(c);
        return NULL;
    }
    return c;
}

int sw_http_client_set_cert(struct sw_http_client *c, const char *hex)
{
    size_t n = hex ? strlen(hex) : 0;
    if (n > SW_CERT_HEX_MAX)
        return SW_ERANGE;
    memcpy(c->cert, hex ? hex : "", n + 1);
    return SW_OK;
}

void sw_http_client_free(struct sw_http_client *c)
{
    if (!c)
        return;
    curl_easy_cleanup(c->curl);
    free(c);
}

void sw_http_result_free(struct sw_http_result *r)
{
    free(r->body);
    r->body = NULL;
    r->body_len = 0;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userp)
{
    struct sw_buf *b = userp;
    size_t n = size * nmemb;
    return sw_buf_append(b, data, n) == SW_OK ? n : 0; /* 0 aborts: response over the cap */
}

int sw_http_do(struct sw_http_client *c, const char *method, const char *url,
               const char *const *headers, const void *body, size_t body_len,
               struct sw_http_result *out, struct sw_error *err)
{
    struct curl_slist *hl = NULL;
    struct sw_buf resp;
    CURLcode cc;
    int rc = SW_OK;
    CURL *h = c->curl;

    sw_buf_init(&resp, c->opts.max_response);
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->opts.connect_timeout_ms);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->opts.timeout_ms);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &resp);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    for (; headers && *headers; headers++)
        hl = curl_slist_append(hl, *headers);
    if (body) {
        hl = curl_slist_append(hl, "Content-Type: application/json");
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    }
    hl = curl_slist_append(hl, "Expect:"); /* no 100-continue round trip */
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    cc = curl_easy_perform(h);
    if (cc != CURLE_OK) {
        rc = cc == CURLE_OPERATION_TIMEDOUT ? SW_ETIMEDOUT
           : cc == CURLE_WRITE_ERROR       ? SW_ERANGE
                                           : SW_EIO;
        sw_error_set(err, rc, "%s %s: %s", method, url,
                     rc == SW_ERANGE ? "response larger than the cap" : curl_easy_strerror(cc));
        goto out;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out->status);
    if (!resp.data && sw_buf_append(&resp, "", 0)) {
        rc = sw_error_set(err, SW_ENOMEM, "out of memory");
        goto out;
    }
    out->body = sw_buf_steal(&resp, &out->body_len);
out:
    curl_slist_free_all(hl);
    sw_buf_free(&resp);
    return rc;
}

int sw_http_get_nonce(struct sw_http_client *c, const char *base_url, const struct sw_pk *pk,
                      uint64_t *nonce, struct sw_error *err)
{
    char url[1024], hex[SW_PK_HEX_LEN + 1];
    struct sw_http_result res = { 0 };
    struct json_object *o = NULL;
    int rc;

    sw_pk_to_hex(pk, hex);
    snprintf(url, sizeof(url), "%s/security/nonces/%s", base_url, hex);
    if ((rc = sw_http_do(c, "GET", url, NULL, NULL, 0, &res, err)))
        return rc;
    if (res.status != 200) {
        rc = sw_error_set(err, SW_EPROTO, "GET %s: HTTP %ld: %.200s", url, res.status, res.body);
        goto out;
    }
    if ((rc = sw_json_parse(res.body, res.body_len, &o, err)) ||
        (rc = sw_json_get_u64(o, "next_nonce", "", nonce, err)))
        goto out;
out:
    json_object_put(o);
    sw_http_result_free(&res);
    return rc;
}

int sw_http_do_signed_nonce(struct sw_http_client *c, const struct sw_keypair *kp,
                            const char *base_url, const char *method, const char *target,
                            uint64_t nonce, const void *body, size_t body_len,
                            struct sw_http_result *out, struct sw_error *err)
{
    char url[2048], pk_hex[SW_PK_HEX_LEN + 1], sig_hex[SW_SIG_HEX_LEN + 1];
    char h_pub[96], h_nonce[48], h_sig[160], h_cert[SW_CERT_HEX_MAX + 16];
    const char *headers[5] = { h_pub, h_nonce, h_sig, c->cert[0] ? h_cert : NULL, NULL };
    struct sw_sig sig;
    int rc;

    if ((size_t)snprintf(url, sizeof(url), "%s%s", base_url, target) >= sizeof(url))
        return sw_error_set(err, SW_ERANGE, "URL too long");
    if ((rc = sw_sreq_sign(kp, method, target, nonce, body ? body : "", body ? body_len : 0, &sig)))
        return sw_error_set(err, rc, "out of memory");
    sw_pk_to_hex(&kp->pk, pk_hex);
    sw_sig_to_hex(&sig, sig_hex);
    snprintf(h_pub, sizeof(h_pub), SW_HDR_PUBLIC ": %s", pk_hex);
    snprintf(h_nonce, sizeof(h_nonce), SW_HDR_NONCE ": %" PRIu64, nonce);
    snprintf(h_sig, sizeof(h_sig), SW_HDR_SIG ": %s", sig_hex);
    snprintf(h_cert, sizeof(h_cert), SW_HDR_CERT ": %s", c->cert);
    return sw_http_do(c, method, url, headers, body, body_len, out, err);
}

static int is_nonce_mismatch(const struct sw_http_result *r)
{
    return r->status == 401 && r->body && strstr(r->body, "\"nonce_mismatch\"");
}

int sw_http_do_signed(struct sw_http_client *c, const struct sw_keypair *kp, const char *base_url,
                      const char *method, const char *target, const void *body, size_t body_len,
                      struct sw_http_result *out, struct sw_error *err)
{
    uint64_t nonce;
    int rc;
    for (int attempt = 0; attempt < 2; attempt++) {
        if ((rc = sw_http_get_nonce(c, base_url, &kp->pk, &nonce, err)))
            return rc;
        rc = sw_http_do_signed_nonce(c, kp, base_url, method, target, nonce, body, body_len, out, err);
        if (rc || !is_nonce_mismatch(out) || attempt == 1)
            return rc;
        sw_http_result_free(out);
    }
    return rc;
}
