/* api_client.h — JSON request helpers for integration tests (check assertions inside). */
#ifndef SW_TEST_API_CLIENT_H
#define SW_TEST_API_CLIENT_H

#include <json-c/json.h>
#include <stdbool.h>

#include "common/http_client.h"
#include "common/keys.h"

/* Visor APIs want a bearer token (docs/visor.md "Access to the local API"). visor_env
 * registers the token of every visor it starts under its API base URL; th_call (and
 * th_api_headers for a test's own requests) then sends it to that base. Thread-safe. */
void th_api_set_token(const char *base, const char *token);
/* {"Authorization: Bearer <token>", NULL} when base is a registered visor API, else NULL.
 * Borrowed: valid for the process (entries are never removed). */
const char *const *th_api_headers(const char *base);

/* Performs method base+target (signed by signer when non-NULL, body may be NULL); returns
 * the HTTP status and, when out is non-NULL, the parsed JSON reply (caller puts). A visor
 * API's token goes along (th_api_headers). */
long th_call(struct sw_http_client *http, const char *base, const char *method, const char *target,
             const char *body, const struct sw_keypair *signer, struct json_object **out);
/* Asserts the reply's status and error code. */
void th_expect_error(struct sw_http_client *http, const char *base, const char *method,
                     const char *target, const char *body, const struct sw_keypair *signer,
                     long status, const char *code);
/* The error.code of a reply, or NULL. Borrowed from o. */
const char *th_error_code(struct json_object *o);
/* Starts a daemon with argv (port already in it) and waits for its /health. -1 on failure. */
pid_t th_start_service(const char *const argv[], uint16_t port, const char *log_path);
/* Polls GET md_base/messaging-discovery/entry/{pk} (every 25 ms, up to timeout_ms) until it
 * answers 200; true when it did. No assertions (usable in setup code and benches). */
bool th_md_wait_entry(const char *md_base, const struct sw_pk *pk, int timeout_ms);
/* SW_TEST_LOG_DIR/name (static storage per call: copy it). */
const char *th_log_path(const char *name);

#endif
