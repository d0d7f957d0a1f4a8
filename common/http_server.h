/* http_server.h — the REST layer every daemon uses, over libmicrohttpd.
 *
 * A server is a route table plus options. The layer owns: reading the body up to a cap
 * (413 body_too_large beyond it), 404 not_found / 405 method_not_allowed, JSON error
 * bodies {"error":{"code","message"}}, GET /health (200, or 503 when cfg.health_check
 * fails), GET /metrics (Prometheus text: requests by route and status, latency histogram,
 * plus what cfg.write_metrics adds), and one log line per request at debug level.
 * Handlers run on MHD's worker threads (cfg.threads of them) and may block (e.g. on the
 * database); they must be thread-safe. A handler fills the response with one of the
 * sw_http_reply_* helpers; a handler that sets nothing produces a 500.
 *
 * Browser-facing servers (cfg.allowed_hosts, cfg.browser_guard; docs/security.md) are
 * checked in this order, each as soon as the request's headers are in (before its body is
 * read): the Host allow-list (every request, /health and /metrics included: a DNS-rebinding
 * page must not read them either), then for mutations the Origin and Content-Type rules,
 * then 404/405, then cfg.authorize (every route but /health), then the body cap (413). */
#ifndef SW_HTTP_SERVER_H
#define SW_HTTP_SERVER_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"

struct sw_http_server;

struct sw_http_request {
    const char *method; /* "GET", "POST", ... */
    const char *target; /* request target exactly as sent: raw path + optional "?query" */
    const char *path;   /* raw path part of target (no query), NUL-terminated */
    const char *param;  /* prefix routes: the raw rest of the path after the prefix; else "" */
    const char *body;   /* NUL-terminated copy of the body ("" when none); len in body_len */
    size_t body_len;
    void *app;          /* cfg.app */
    void *priv;         /* the layer's own per-request state; do not touch */
};

struct sw_http_response {
    int status;
    char *body;               /* owned; freed by the layer */
    size_t body_len;
    const char *content_type; /* static string */
    char allow[64];           /* Allow header value for 405, else empty */
    char set_cookie[256];     /* Set-Cookie header value, else empty (hypervisor sessions) */
    const char *cache_control; /* Cache-Control header value (static string), or NULL */
    const char *csp;          /* Content-Security-Policy header value (static string), or NULL */
    unsigned retry_after_s;   /* Retry-After header (seconds) when > 0, e.g. with a 429 */
    const char *www_authenticate; /* WWW-Authenticate header value (static string) with a 401, or NULL */
};

typedef void (*sw_http_handler)(struct sw_http_request *req, struct sw_http_response *resp);

enum sw_route_match { SW_ROUTE_EXACT, SW_ROUTE_PREFIX };

struct sw_http_route {
    const char *method;         /* "GET", "POST", "DELETE", ... */
    const char *pattern;        /* exact path, or prefix (param = rest) */
    enum sw_route_match match;
    sw_http_handler handler;
    const char *label;          /* metrics label, e.g. "/transports/id:{id}"; NULL = pattern */
    size_t max_body;            /* 0 = cfg.max_body */
};

struct sw_http_server_config {
    const char *addr;        /* "host:port"; port 0 picks a free port */
    const char *service;     /* e.g. "transport-discovery"; used in /health and metric names */
    const char *version;
    unsigned threads;        /* worker threads; 0 = 8 */
    /* One thread per connection instead of the pool of `threads` (for handlers that block
     * long, like the hypervisor's relay: a slow handler then holds only its own connection,
     * not every connection of a pool thread). max_connections bounds the threads. */
    bool thread_per_connection;
    size_t max_body;         /* default body cap; 0 = 1 MiB */
    unsigned max_connections; /* 0 = 1024 */
    unsigned idle_timeout_s; /* 0 = 30 */
    const struct sw_http_route *routes;
    size_t n_routes;
    void *app;
    void *hook_app; /* handed to health_check and write_metrics; NULL = app */
    /* Optional: SW_OK when dependencies are healthy; otherwise err->msg goes into the 503. */
    int (*health_check)(void *app, struct sw_error *err);
    /* Optional: append extra Prometheus lines (see metrics.h helpers). */
    void (*write_metrics)(void *app, struct sw_buf *out);
    /* Browser-facing servers (docs/security.md). NULL-terminated list of host names or
     * addresses accepted in the Host header (port ignored; IPv6 as "::1" or "[::1]"; names
     * compared without case and without one trailing dot); a request whose Host is missing,
     * malformed or not listed gets 403 forbidden_host, /health and /metrics included. NULL =
     * no Host check. Borrowed: must outlive the server (sw_http_loopback_hosts builds one). */
    const char *const *allowed_hosts;
    /* With allowed_hosts: a mutation (any method but GET/HEAD/OPTIONS) whose Origin header is
     * present and is not http(s)://<allowed host>[:port] ("null" included) gets 403
     * forbidden_origin, and one that declares a Content-Type other than application/json
     * (parameters allowed), or that has a body without declaring one, gets 415
     * unsupported_media_type. No route can opt out: every API here is JSON (SPEC §3), and a
     * form-encoded or text/plain body is exactly what a page of another site can send
     * without asking. */
    bool browser_guard;
    /* Optional: runs before every route's handler (not before /health; before /metrics, so
     * a hook may let it through by req->path), once the headers are in and before the body
     * is read (req->body is "" then). SW_OK to proceed, else it has filled resp (e.g. 401)
     * and the handler is skipped; a failure that filled nothing answers 500. Runs on MHD's
     * threads like the handlers. */
    int (*authorize)(void *app, const struct sw_http_request *req, struct sw_http_response *resp);
};

/* Starts listening; cfg and its routes are borrowed and must outlive the server. */
int sw_http_server_start(const struct sw_http_server_config *cfg, struct sw_http_server **out,
                         struct sw_error *err);
uint16_t sw_http_server_port(const struct sw_http_server *srv);
/* Stops accepting, waits for in-flight handlers, frees everything. NULL is a no-op. */
void sw_http_server_stop(struct sw_http_server *srv);

/* Case-insensitive request header lookup; borrowed, NULL when absent. */
const char *sw_http_header(const struct sw_http_request *req, const char *name);
/* The client's IP address as text ("127.0.0.1", "::1"); "?" when unknown. */
void sw_http_client_ip(const struct sw_http_request *req, char *out, size_t cap);
/* Percent-decoded query argument into out (NUL-terminated). SW_ENOTFOUND when absent,
 * SW_ERANGE when longer than cap-1, SW_EINVAL on bad escapes. */
int sw_http_query(const struct sw_http_request *req, const char *name, char *out, size_t cap);
/* Query argument `name` as a decimal integer in [min, max]; *out = dflt when absent.
 * SW_EINVAL when it is not a plain decimal number in range. */
int sw_http_query_uint(const struct sw_http_request *req, const char *name, unsigned long min,
                       unsigned long max, unsigned long dflt, unsigned long *out);

/* ---- browser-facing protection (common/http_guard.c) ----
 * The checks behind cfg.allowed_hosts and cfg.browser_guard, for servers that run their own
 * libmicrohttpd loop (skychat) as much as for this layer. */

/* What a request shows the guard: raw header values, NULL when absent. */
struct sw_http_guard_input {
    const char *method;
    const char *host;          /* Host */
    const char *origin;        /* Origin */
    const char *content_type;  /* Content-Type */
    bool has_body;             /* Content-Length > 0, or a Transfer-Encoding */
    const char *target;        /* for the log line; may be NULL */
    const char *client;        /* peer address, for the log line; may be NULL */
};

/* allowed_hosts NULL passes everything. SW_OK to proceed; SW_EPERM with resp filled (403
 * forbidden_host / forbidden_origin, 415 unsupported_media_type) after one info line. */
int sw_http_guard_check(const char *const *allowed_hosts, bool browser_guard,
                        const struct sw_http_guard_input *in, struct sw_http_response *resp);
/* True when a Host header value ("name", "name:port", "[v6]", "[v6]:port") names one of
 * allowed (NULL-terminated). Only host-name characters pass: "a:80@b", "a b", "" do not. */
bool sw_http_host_allowed(const char *const *allowed, const char *host);
/* True when origin is exactly "http://" or "https://" + an allowed host + optional ":port"
 * (no path, no user info). "null" and every other scheme are not. */
bool sw_http_origin_allowed(const char *const *allowed, const char *origin);
/* True when name can stand in an allow-list: a host name (letters, digits, '-', '.'), an
 * IPv4 address, or an IPv6 address with or without brackets; no port. */
bool sw_http_host_valid(const char *name);
/* A new allow-list: "localhost", "127.0.0.1", "::1", the host of listen_addr ("host:port")
 * when it names one (not ":port", 0.0.0.0 or [::]; may be NULL), then extras[0..n_extras).
 * Strings are copied; one allocation, release with free(). NULL when out of memory or when
 * an extra is not sw_http_host_valid. */
const char **sw_http_loopback_hosts(const char *listen_addr, const char *const *extras,
                                    size_t n_extras);

/* Replies. json: takes ownership of obj (serialised compactly, then released). */
void sw_http_reply_json(struct sw_http_response *resp, int status, struct json_object *obj);
void sw_http_reply_error(struct sw_http_response *resp, int status, const char *code,
                         const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* A store (database) call failed: logs "database: <err>" at warn and replies 503
 * database_unavailable; the database's own words stay in the log. err may be NULL. */
void sw_http_reply_store_error(struct sw_http_response *resp, const struct sw_error *err);
/* Copies text. */
void sw_http_reply_text(struct sw_http_response *resp, int status, const char *content_type,
                        const char *text, size_t len);

#endif
