/* http_client.h — HTTP/JSON client over libcurl with connect and total timeouts.
 *
 * A client owns one curl handle and reuses its connections (keep-alive), so it is not
 * thread-safe: use one client per thread. Responses are capped (max_response) so a
 * hostile server cannot exhaust memory. Signed calls fetch the key's next nonce from
 * GET /security/nonces/{pk} and retry once on 401 nonce_mismatch (another request by the
 * same key may have raced us). Call sw_http_global_init() once at program start. */
#ifndef SW_HTTP_CLIENT_H
#define SW_HTTP_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/keys.h"

struct sw_http_client;

struct sw_http_client_opts {
    long connect_timeout_ms; /* 0 = 3000 */
    long timeout_ms;         /* 0 = 10000 */
    size_t max_response;     /* 0 = 16 MiB */
};

struct sw_http_result {
    long status;
    char *body;      /* NUL-terminated, owned; free with sw_http_result_free */
    size_t body_len;
};

int sw_http_global_init(void);
struct sw_http_client *sw_http_client_new(const struct sw_http_client_opts *opts);
void sw_http_client_free(struct sw_http_client *c);
/* Private networks: signed requests also carry "SW-Cert: <hex>" (copied; "" or NULL none). */
int sw_http_client_set_cert(struct sw_http_client *c, const char *hex);

/* method: "GET", "POST", ... url: full URL. headers: NULL-terminated "Name: value" list or
 * NULL. Sends Content-Type: application/json when body is non-NULL. Any HTTP status is
 * SW_OK (look at out->status); transport failures are SW_EIO / SW_ETIMEDOUT / SW_ERANGE. */
int sw_http_do(struct sw_http_client *c, const char *method, const char *url,
               const char *const *headers, const void *body, size_t body_len,
               struct sw_http_result *out, struct sw_error *err);

/* Signed request: base_url like "http://127.0.0.1:9091", target like "/transports/". */
int sw_http_do_signed(struct sw_http_client *c, const struct sw_keypair *kp, const char *base_url,
                      const char *method, const char *target, const void *body, size_t body_len,
                      struct sw_http_result *out, struct sw_error *err);

/* Signed request with a nonce the caller tracks (benchmarks, pipelines). */
int sw_http_do_signed_nonce(struct sw_http_client *c, const struct sw_keypair *kp,
                            const char *base_url, const char *method, const char *target,
                            uint64_t nonce, const void *body, size_t body_len,
                            struct sw_http_result *out, struct sw_error *err);

/* Fetches the next nonce of kp's key from base_url. */
int sw_http_get_nonce(struct sw_http_client *c, const char *base_url, const struct sw_pk *pk,
                      uint64_t *nonce, struct sw_error *err);

void sw_http_result_free(struct sw_http_result *r);

#endif
