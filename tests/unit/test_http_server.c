/* Unit tests for common/http_server.c and common/metrics.c: an in-process server on
 * 127.0.0.1:0 driven with libcurl. */
#include "common/buf.h"
#include "common/err.h"
#include "common/http_server.h"
#include "common/json.h"
#include "common/metrics.h"
#include "tests/harness/check_main.h"

#include <check.h>
#include <curl/curl.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---------- handlers ---------- */

static atomic_int healthy = 1;

static void h_hello(struct sw_http_request *req, struct sw_http_response *resp)
{
    struct json_object *o = json_object_new_object();
    json_object_object_add(o, "hello", json_object_new_string("world"));
    sw_http_reply_json(resp, 200, o);
}

static void h_item(struct sw_http_request *req, struct sw_http_response *resp)
{
    struct json_object *o = json_object_new_object();
    json_object_object_add(o, "param", json_object_new_string(req->param));
    json_object_object_add(o, "method", json_object_new_string(req->method));
    sw_http_reply_json(resp, 200, o);
}

static void h_echo_body(struct sw_http_request *req, struct sw_http_response *resp)
{
    sw_http_reply_text(resp, 200, "application/octet-stream", req->body, req->body_len);
}

static void add_query(struct json_object *o, struct sw_http_request *req, const char *name)
{
    char v[64];
    if (sw_http_query(req, name, v, sizeof(v)) == SW_OK)
        json_object_object_add(o, name, json_object_new_string(v));
}

static void h_echo_target(struct sw_http_request *req, struct sw_http_response *resp)
{
    struct json_object *o = json_object_new_object();
    json_object_object_add(o, "target", json_object_new_string(req->target));
    json_object_object_add(o, "path", json_object_new_string(req->path));
    json_object_object_add(o, "param", json_object_new_string(req->param));
    add_query(o, req, "x");
    add_query(o, req, "y");
    sw_http_reply_json(resp, 200, o);
}

static void h_header(struct sw_http_request *req, struct sw_http_response *resp)
{
    const char *v = sw_http_header(req, "x-test-header");
    if (!v) {
        sw_http_reply_error(resp, 400, "missing_header", "X-Test-Header is required");
        return;
    }
    sw_http_reply_text(resp, 200, "text/plain", v, strlen(v));
}

static void h_nothing(struct sw_http_request *req, struct sw_http_response *resp)
{
}

static int health(void *app, struct sw_error *err)
{
    if (atomic_load(&healthy))
        return SW_OK;
    return sw_error_set(err, SW_EDB, "db down");
}

static void extra_metrics(void *app, struct sw_buf *out)
{
    sw_metrics_write_header(out, "test_custom_metric", "gauge", "A test gauge.");
    sw_metrics_write_sample(out, "test_custom_metric", NULL, 42);
}

static const struct sw_http_route routes[] = {
    { "GET", "/hello", SW_ROUTE_EXACT, h_hello, NULL, 0 },
    { "GET", "/items/", SW_ROUTE_PREFIX, h_item, "/items/{id}", 0 },
    { "DELETE", "/items/", SW_ROUTE_PREFIX, h_item, "/items/{id}", 0 },
    { "POST", "/echo", SW_ROUTE_EXACT, h_echo_body, NULL, 64 },
    { "GET", "/echo/", SW_ROUTE_PREFIX, h_echo_target, "/echo/{rest}", 0 },
    { "GET", "/hdr", SW_ROUTE_EXACT, h_header, NULL, 0 },
    { "GET", "/nothing", SW_ROUTE_EXACT, h_nothing, NULL, 0 },
    { "POST", "/big", SW_ROUTE_EXACT, h_echo_body, NULL, 0 },
};

static struct sw_http_server_config cfg = {
    .addr = "127.0.0.1:0",
    .service = "test-svc",
    .version = "1.2.3",
    .threads = 4,
    .max_body = 4096,
    .routes = routes,
    .n_routes = sizeof(routes) / sizeof(routes[0]),
    .health_check = health,
    .write_metrics = extra_metrics,
};

static struct sw_http_server *srv;
static uint16_t port;

static void setup(void)
{
    struct sw_error err = { 0 };
    atomic_store(&healthy, 1);
    ck_assert_msg(sw_http_server_start(&cfg, &srv, &err) == SW_OK, "start: %s", err.msg);
    port = sw_http_server_port(srv);
    ck_assert_uint_ne(port, 0);
}

static void teardown(void)
{
    sw_http_server_stop(srv);
    srv = NULL;
}

/* ---------- a browser-facing server: Host allow-list, Origin/Content-Type, authorize ---------- */

static const char *const guard_hosts[] = { "localhost", "127.0.0.1", "[::1]", "Example.COM.", NULL };
static atomic_int authorize_calls;

/* "/secret" needs X-Token: t; everything else passes. Sees only headers (body still unread). */
static int test_authorize(void *app, const struct sw_http_request *req, struct sw_http_response *resp)
{
    const char *tok = sw_http_header(req, "X-Token");
    atomic_fetch_add(&authorize_calls, 1);
    ck_assert_uint_eq(req->body_len, 0);
    if (strncmp(req->path, "/secret", 7) != 0 && strcmp(req->path, "/metrics") != 0)
        return SW_OK;
    if (tok && strcmp(tok, "t") == 0)
        return SW_OK;
    resp->www_authenticate = "Bearer realm=\"test\"";
    sw_http_reply_error(resp, 401, "unauthenticated", "X-Token missing");
    return SW_EPERM;
}

static const struct sw_http_route guarded_routes[] = {
    { "GET", "/hello", SW_ROUTE_EXACT, h_hello, NULL, 0 },
    { "POST", "/echo", SW_ROUTE_EXACT, h_echo_body, NULL, 64 },
    { "DELETE", "/items/", SW_ROUTE_PREFIX, h_item, "/items/{id}", 0 },
    { "GET", "/secret", SW_ROUTE_EXACT, h_hello, NULL, 0 },
    { "POST", "/secret", SW_ROUTE_EXACT, h_echo_body, NULL, 16 },
};

static struct sw_http_server_config guarded_cfg = {
    .addr = "127.0.0.1:0",
    .service = "guarded-svc",
    .version = "1.2.3",
    .threads = 2,
    .max_body = 4096,
    .routes = guarded_routes,
    .n_routes = sizeof(guarded_routes) / sizeof(guarded_routes[0]),
    .allowed_hosts = guard_hosts,
    .browser_guard = true,
    .authorize = test_authorize,
};

static void setup_guarded(void)
{
    struct sw_error err = { 0 };
    atomic_store(&authorize_calls, 0);
    ck_assert_msg(sw_http_server_start(&guarded_cfg, &srv, &err) == SW_OK, "start: %s", err.msg);
    port = sw_http_server_port(srv);
}

/* ---------- client ---------- */

struct reply {
    long status;
    struct sw_buf body;
    struct sw_buf headers;
};

struct upload {
    const char *data;
    size_t len, off;
};

static size_t on_write(char *p, size_t size, size_t n, void *ud)
{
    return sw_buf_append(ud, p, size * n) == SW_OK ? size * n : 0;
}

static size_t on_read(char *p, size_t size, size_t n, void *ud)
{
    struct upload *u = ud;
    size_t k = size * n;
    if (k > u->len - u->off)
        k = u->len - u->off;
    if (k > 100) /* many small chunks */
        k = 100;
    memcpy(p, u->data + u->off, k);
    u->off += k;
    return k;
}

static void reply_free(struct reply *r)
{
    sw_buf_free(&r->body);
    sw_buf_free(&r->headers);
}

/* body NULL = no body; chunked streams it without Content-Length. Returns the CURLcode. */
static int request(const char *method, const char *target, const char *body, size_t body_len,
                   int chunked, struct curl_slist *hdrs, struct reply *r)
{
    char url[2048];
    struct upload up = { body, body_len, 0 };
    CURL *c = curl_easy_init();
    int rc;

    memset(r, 0, sizeof(*r));
    sw_buf_init(&r->body, 0);
    sw_buf_init(&r->headers, 0);
    snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", port, target);
    hdrs = curl_slist_append(hdrs, "Expect:");
    if (chunked)
        hdrs = curl_slist_append(hdrs, "Transfer-Encoding: chunked");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r->body);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_write);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r->headers);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
    if (body && chunked) {
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(c, CURLOPT_READDATA, &up);
    } else if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    }
    rc = (int)curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_cleanup(c);
    curl_slist_free_all(hdrs);
    return rc;
}

static long get(const char *target, struct reply *r)
{
    int rc = request("GET", target, NULL, 0, 0, NULL, r);
    ck_assert_msg(rc == CURLE_OK, "GET %s: %s", target, curl_easy_strerror((CURLcode)rc));
    return r->status;
}

static struct json_object *body_json(const struct reply *r)
{
    struct json_object *o = NULL;
    struct sw_error err;
    ck_assert_msg(sw_json_parse(r->body.data ? r->body.data : "", r->body.len, &o, &err) == SW_OK,
                  "bad JSON body: %s", r->body.data ? r->body.data : "");
    return o;
}

static const char *jstr(struct json_object *o, const char *a, const char *b)
{
    struct json_object *v;
    if (!json_object_object_get_ex(o, a, &v))
        return NULL;
    if (b && !json_object_object_get_ex(v, b, &v))
        return NULL;
    return json_object_get_string(v);
}

static void assert_error_code(const struct reply *r, const char *code)
{
    struct json_object *o = body_json(r);
    ck_assert_ptr_nonnull(jstr(o, "error", "code"));
    ck_assert_str_eq(jstr(o, "error", "code"), code);
    ck_assert_ptr_nonnull(jstr(o, "error", "message"));
    json_object_put(o);
    ck_assert_ptr_nonnull(strcasestr(r->headers.data, "content-type: application/json"));
}

/* ---------- server tests ---------- */

START_TEST(test_exact_route)
{
    struct reply r;
    struct json_object *o;
    ck_assert_int_eq(get("/hello", &r), 200);
    ck_assert_ptr_nonnull(strcasestr(r.headers.data, "content-type: application/json"));
    o = body_json(&r);
    ck_assert_str_eq(jstr(o, "hello", NULL), "world");
    json_object_put(o);
    reply_free(&r);
    /* exact means exact */
    ck_assert_int_eq(get("/hello/", &r), 404);
    reply_free(&r);
    ck_assert_int_eq(get("/hello?a=1", &r), 200);
    reply_free(&r);
}
END_TEST

START_TEST(test_prefix_param)
{
    struct reply r;
    struct json_object *o;
    ck_assert_int_eq(get("/items/abc%2Fdef", &r), 200);
    o = body_json(&r);
    ck_assert_str_eq(jstr(o, "param", NULL), "abc%2Fdef");
    json_object_put(o);
    reply_free(&r);

    ck_assert_int_eq(request("DELETE", "/items/42", NULL, 0, 0, NULL, &r), CURLE_OK);
    ck_assert_int_eq(r.status, 200);
    o = body_json(&r);
    ck_assert_str_eq(jstr(o, "param", NULL), "42");
    ck_assert_str_eq(jstr(o, "method", NULL), "DELETE");
    json_object_put(o);
    reply_free(&r);
}
END_TEST

START_TEST(test_not_found)
{
    struct reply r;
    ck_assert_int_eq(get("/nope", &r), 404);
    assert_error_code(&r, "not_found");
    reply_free(&r);
    ck_assert_int_eq(get("/", &r), 404);
    reply_free(&r);
}
END_TEST

START_TEST(test_method_not_allowed)
{
    struct reply r;
    ck_assert_int_eq(request("POST", "/items/1", "{}", 2, 0, NULL, &r), CURLE_OK);
    ck_assert_int_eq(r.status, 405);
    assert_error_code(&r, "method_not_allowed");
    ck_assert_ptr_nonnull(strcasestr(r.headers.data, "allow: GET, DELETE\r\n"));
    reply_free(&r);

    ck_assert_int_eq(request("PUT", "/health", NULL, 0, 0, NULL, &r), CURLE_OK);
    ck_assert_int_eq(r.status, 405);
    ck_assert_ptr_nonnull(strcasestr(r.headers.data, "allow: GET\r\n"));
    reply_free(&r);
}
END_TEST

START_TEST(test_body_echo)
{
    struct reply r;
    const char body[] = "hello\0world";
    ck_assert_int_eq(request("POST", "/echo", body, sizeof(body) - 1, 0, NULL, &r), CURLE_OK);
    ck_assert_int_eq(r.status, 200);
    ck_assert_uint_eq(r.body.len, sizeof(body) - 1);
    ck_assert_mem_eq(r.body.data, body, sizeof(body) - 1);
    reply_free(&r);

    /* exactly at the cap is fine, chunked too */
    char full[64];
    memset(full, 'a', sizeof(full));
    ck_assert_int_eq(request("POST", "/echo", full, sizeof(full), 1, NULL, &r), CURLE_OK);
    ck_assert_int_eq(r.status, 200);
    ck_assert_uint_eq(r.body.len, sizeof(full));
    reply_free(&r);

    /* no body at all */
    ck_assert_int_eq(request("POST", "/echo", NULL, 0, 0, NULL, &r), CURLE_OK);
    ck_assert_int_eq(r.status, 200);
    ck_assert_uint_eq(r.body.len, 0);
    reply_free(&r);
}
END_TEST

START_TEST(test_body_too_large)
{
    struct reply r;
    char big[1000];
    memset(big, 'x', sizeof(big));

    ck_assert_int_eq(request("POST", "/echo", big, 65, 0, NULL, &r), CURLE_OK);
    ck_assert_int_eq(r.status, 413);
    assert_error_code(&r, "body_too_large");
    reply_free(&r);

    ck_assert_int_eq(request("POST", "/echo", big, sizeof(big), 1, NULL, &r), CURLE_OK);
    ck_assert_int_eq(r.status, 413);
    assert_error_code(&r, "body_too_large");
    reply_free(&r);

    /* cfg.max_body (4096) applies to routes without their own cap */
    char *huge = calloc(1, 5000);
    memset(huge, 'y', 5000);
    ck_assert_int_eq(request("POST", "/big", huge, 4096, 0, NULL, &r), CURLE_OK);
    ck_assert_int_eq(r.status, 200);
    reply_free(&r);
    ck_assert_int_eq(request("POST", "/big", huge, 5000, 0, NULL, &r), CURLE_OK);
    ck_assert_int_eq(r.status, 413);
    reply_free(&r);
    ck_assert_int_eq(request("POST", "/big", huge, 5000, 1, NULL, &r), CURLE_OK);
    ck_assert_int_eq(r.status, 413);
    reply_free(&r);
    free(huge);
}
END_TEST

START_TEST(test_endless_body_survives)
{
    /* Far beyond the drain allowance: the server may drop the connection, but must live. */
    struct reply r;
    size_t n = 3 * 1024 * 1024;
    char *huge = malloc(n);
    memset(huge, 'z', n);
    request("POST", "/echo", huge, n, 1, NULL, &r);
    ck_assert(r.status == 413 || r.status == 0);
    reply_free(&r);
    free(huge);
    ck_assert_int_eq(get("/hello", &r), 200);
    reply_free(&r);
}
END_TEST

START_TEST(test_raw_target_and_query)
{
    struct reply r;
    struct json_object *o;
    ck_assert_int_eq(get("/echo/a%20b?x=1&y=%41", &r), 200);
    o = body_json(&r);
    ck_assert_str_eq(jstr(o, "target", NULL), "/echo/a%20b?x=1&y=%41");
    ck_assert_str_eq(jstr(o, "path", NULL), "/echo/a%20b");
    ck_assert_str_eq(jstr(o, "param", NULL), "a%20b");
    ck_assert_str_eq(jstr(o, "x", NULL), "1");
    ck_assert_str_eq(jstr(o, "y", NULL), "A");
    json_object_put(o);
    reply_free(&r);

    ck_assert_int_eq(get("/echo/p?y=a+b%2Bc&x=%E2%9C%93", &r), 200);
    o = body_json(&r);
    ck_assert_str_eq(jstr(o, "y", NULL), "a b+c");
    ck_assert_str_eq(jstr(o, "x", NULL), "\xe2\x9c\x93");
    json_object_put(o);
    reply_free(&r);

    /* a bad escape is the handler's business: the value is just absent here */
    ck_assert_int_eq(get("/echo/p?x=%zz", &r), 200);
    o = body_json(&r);
    ck_assert_ptr_null(jstr(o, "x", NULL));
    json_object_put(o);
    reply_free(&r);
}
END_TEST

START_TEST(test_header_lookup)
{
    struct reply r;
    struct curl_slist *h = curl_slist_append(NULL, "X-Test-Header: some value");
    ck_assert_int_eq(request("GET", "/hdr", NULL, 0, 0, h, &r), CURLE_OK);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body.data, "some value");
    reply_free(&r);
    ck_assert_int_eq(get("/hdr", &r), 400);
    assert_error_code(&r, "missing_header");
    reply_free(&r);
}
END_TEST

START_TEST(test_handler_without_status)
{
    struct reply r;
    ck_assert_int_eq(get("/nothing", &r), 500);
    assert_error_code(&r, "internal_error");
    reply_free(&r);
}
END_TEST

START_TEST(test_health)
{
    struct reply r;
    struct json_object *o, *v;
    const char *ts;

    ck_assert_int_eq(get("/health", &r), 200);
    o = body_json(&r);
    ck_assert_str_eq(jstr(o, "status", NULL), "ok");
    ck_assert_str_eq(jstr(o, "service", NULL), "test-svc");
    ck_assert_str_eq(jstr(o, "version", NULL), "1.2.3");
    ts = jstr(o, "started_at", NULL);
    ck_assert_uint_eq(strlen(ts), 20);
    ck_assert_int_eq(ts[19], 'Z');
    ck_assert(json_object_object_get_ex(o, "uptime_s", &v) && json_object_is_type(v, json_type_int));
    json_object_put(o);
    reply_free(&r);

    atomic_store(&healthy, 0);
    ck_assert_int_eq(get("/health", &r), 503);
    o = body_json(&r);
    ck_assert_str_eq(jstr(o, "status", NULL), "unavailable");
    ck_assert_str_eq(jstr(o, "service", NULL), "test-svc");
    ck_assert_str_eq(jstr(o, "error", "code"), "unhealthy");
    ck_assert_str_eq(jstr(o, "error", "message"), "db down");
    json_object_put(o);
    reply_free(&r);
}
END_TEST

static void assert_has(const struct reply *r, const char *needle)
{
    ck_assert_msg(strstr(r->body.data, needle), "missing '%s' in:\n%s", needle, r->body.data);
}

START_TEST(test_metrics)
{
    struct reply r;
    for (int i = 0; i < 3; i++) {
        get("/hello", &r);
        reply_free(&r);
    }
    get("/nope", &r);
    reply_free(&r);
    get("/items/x", &r);
    reply_free(&r);
    request("POST", "/echo", "0123456789012345678901234567890123456789012345678901234567890123456789",
            70, 0, NULL, &r);
    reply_free(&r);

    ck_assert_int_eq(get("/metrics", &r), 200);
    ck_assert_ptr_nonnull(strcasestr(r.headers.data, "content-type: text/plain; version=0.0.4"));
    assert_has(&r, "# TYPE sw_http_requests_total counter\n");
    assert_has(&r, "sw_http_requests_total{service=\"test-svc\",route=\"/hello\",method=\"GET\","
                   "status=\"200\"} 3\n");
    assert_has(&r, "sw_http_requests_total{service=\"test-svc\",route=\"/items/{id}\","
                   "method=\"GET\",status=\"200\"} 1\n");
    assert_has(&r, "sw_http_requests_total{service=\"test-svc\",route=\"unmatched\","
                   "method=\"ANY\",status=\"404\"} 1\n");
    assert_has(&r, "sw_http_requests_total{service=\"test-svc\",route=\"/echo\","
                   "method=\"POST\",status=\"413\"} 1\n");
    assert_has(&r, "# TYPE sw_http_request_duration_seconds histogram\n");
    assert_has(&r, "sw_http_request_duration_seconds_bucket{service=\"test-svc\",route=\"/hello\","
                   "method=\"GET\",le=\"+Inf\"} 3\n");
    assert_has(&r, "sw_http_request_duration_seconds_count{service=\"test-svc\",route=\"/hello\","
                   "method=\"GET\"} 3\n");
    assert_has(&r, "sw_http_request_duration_seconds_bucket{service=\"test-svc\",route=\"/health\","
                   "method=\"GET\",le=\"0.0005\"} 0\n");
    assert_has(&r, "sw_process_start_time_seconds{service=\"test-svc\"} ");
    assert_has(&r, "sw_process_resident_memory_bytes{service=\"test-svc\"} ");
    assert_has(&r, "test_custom_metric 42\n");
    reply_free(&r);

    /* the previous /metrics request is counted now */
    get("/metrics", &r);
    assert_has(&r, "route=\"/metrics\",method=\"GET\",status=\"200\"} 1\n");
    reply_free(&r);
}
END_TEST

static void *hammer(void *arg)
{
    for (int i = 0; i < 25; i++) {
        struct reply r;
        if (request("GET", "/hello", NULL, 0, 0, NULL, &r) != CURLE_OK || r.status != 200)
            atomic_fetch_add((atomic_int *)arg, 1);
        reply_free(&r);
    }
    return NULL;
}

START_TEST(test_concurrent)
{
    pthread_t th[8];
    atomic_int failures = 0;
    struct reply r;
    for (int i = 0; i < 8; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, hammer, &failures), 0);
    for (int i = 0; i < 8; i++)
        pthread_join(th[i], NULL);
    ck_assert_int_eq(atomic_load(&failures), 0);
    get("/metrics", &r);
    assert_has(&r, "route=\"/hello\",method=\"GET\",status=\"200\"} 200\n");
    reply_free(&r);
}
END_TEST

START_TEST(test_keepalive_reuse)
{
    /* One handle, several requests: early rejections must not poison the connection. */
    char url[128];
    struct sw_buf body;
    long status;
    CURL *c = curl_easy_init();
    char big[200];
    memset(big, 'q', sizeof(big));
    sw_buf_init(&body, 0);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
    for (int i = 0; i < 3; i++) {
        snprintf(url, sizeof(url), "http://127.0.0.1:%u/echo", port);
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, big);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)sizeof(big));
        ck_assert_int_eq(curl_easy_perform(c), CURLE_OK);
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        ck_assert_int_eq(status, 413);
        snprintf(url, sizeof(url), "http://127.0.0.1:%u/nope", port);
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
        ck_assert_int_eq(curl_easy_perform(c), CURLE_OK);
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        ck_assert_int_eq(status, 404);
        snprintf(url, sizeof(url), "http://127.0.0.1:%u/hello", port);
        curl_easy_setopt(c, CURLOPT_URL, url);
        ck_assert_int_eq(curl_easy_perform(c), CURLE_OK);
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        ck_assert_int_eq(status, 200);
    }
    curl_easy_cleanup(c);
    sw_buf_free(&body);
}
END_TEST

/* ---------- start-up ---------- */

START_TEST(test_bad_addresses)
{
    struct sw_http_server_config c = cfg;
    struct sw_http_server *s = NULL;
    struct sw_error err = { 0 };
    const char *bad[] = { "nonsense", "127.0.0.1", "127.0.0.1:99999", "127.0.0.1:x", "::1:80",
                          "[::1]80", ":", "[::1:80" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        c.addr = bad[i];
        ck_assert_msg(sw_http_server_start(&c, &s, &err) == SW_EINVAL, "accepted %s", bad[i]);
        ck_assert_uint_gt(strlen(err.msg), 0);
    }
}
END_TEST

START_TEST(test_port_in_use)
{
    char addr[64];
    struct sw_http_server_config c = cfg;
    struct sw_http_server *s = NULL;
    struct sw_error err = { 0 };
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", port);
    c.addr = addr;
    ck_assert_int_eq(sw_http_server_start(&c, &s, &err), SW_EIO);
    ck_assert_ptr_nonnull(strstr(err.msg, addr));
}
END_TEST

static void check_listen(const char *addr, const char *url_host)
{
    struct sw_http_server_config c = cfg;
    struct sw_http_server *s = NULL;
    struct sw_error err = { 0 };
    char url[128];
    long status = 0;
    CURL *h;
    c.addr = addr;
    c.threads = 1;
    ck_assert_msg(sw_http_server_start(&c, &s, &err) == SW_OK, "%s: %s", addr, err.msg);
    snprintf(url, sizeof(url), "http://%s:%u/health", url_host, sw_http_server_port(s));
    h = curl_easy_init();
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    ck_assert_int_eq(curl_easy_perform(h), CURLE_OK);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(h);
    sw_http_server_stop(s);
    /* HEAD is answered by GET routes */
    ck_assert_int_eq(status, 200);
}

START_TEST(test_listen_variants)
{
    check_listen("localhost:0", "localhost");
    if (access("/proc/net/if_inet6", F_OK) == 0)
        check_listen("[::1]:0", "[::1]");
}
END_TEST

START_TEST(test_stop_null)
{
    sw_http_server_stop(NULL);
}
END_TEST

/* ---------- sw_http_query without a server ---------- */

START_TEST(test_query_decoding)
{
    struct sw_http_request req = { 0 };
    char out[8];
    req.target = "/p?a=1&b=x+y&c=%41%62&d=%zz&e=%4&f&g=&h=%00&a%62c=k&long=123456789";
    ck_assert_int_eq(sw_http_query(&req, "a", out, sizeof(out)), SW_OK);
    ck_assert_str_eq(out, "1");
    ck_assert_int_eq(sw_http_query(&req, "b", out, sizeof(out)), SW_OK);
    ck_assert_str_eq(out, "x y");
    ck_assert_int_eq(sw_http_query(&req, "c", out, sizeof(out)), SW_OK);
    ck_assert_str_eq(out, "Ab");
    ck_assert_int_eq(sw_http_query(&req, "d", out, sizeof(out)), SW_EINVAL);
    ck_assert_int_eq(sw_http_query(&req, "e", out, sizeof(out)), SW_EINVAL);
    ck_assert_int_eq(sw_http_query(&req, "f", out, sizeof(out)), SW_OK);
    ck_assert_str_eq(out, "");
    ck_assert_int_eq(sw_http_query(&req, "g", out, sizeof(out)), SW_OK);
    ck_assert_str_eq(out, "");
    ck_assert_int_eq(sw_http_query(&req, "h", out, sizeof(out)), SW_EINVAL);
    ck_assert_int_eq(sw_http_query(&req, "abc", out, sizeof(out)), SW_OK);
    ck_assert_str_eq(out, "k");
    ck_assert_int_eq(sw_http_query(&req, "long", out, sizeof(out)), SW_ERANGE);
    ck_assert_int_eq(sw_http_query(&req, "zzz", out, sizeof(out)), SW_ENOTFOUND);
    ck_assert_int_eq(sw_http_query(&req, "", out, sizeof(out)), SW_ENOTFOUND);
    req.target = "/p";
    ck_assert_int_eq(sw_http_query(&req, "a", out, sizeof(out)), SW_ENOTFOUND);
    req.target = "/p?&&a=2&";
    ck_assert_int_eq(sw_http_query(&req, "a", out, sizeof(out)), SW_OK);
    ck_assert_str_eq(out, "2");
}
END_TEST

START_TEST(test_reply_helpers)
{
    struct sw_http_response resp = { 0 };
    sw_http_reply_error(&resp, 400, "bad_field", "field '%s' is wrong", "x\"y");
    ck_assert_int_eq(resp.status, 400);
    ck_assert_str_eq(resp.content_type, "application/json");
    ck_assert_str_eq(resp.body, "{\"error\":{\"code\":\"bad_field\",\"message\":\"field 'x\\\"y' is wrong\"}}");
    /* a second reply replaces the first without leaking */
    sw_http_reply_text(&resp, 201, "text/plain", "ok", 2);
    ck_assert_int_eq(resp.status, 201);
    ck_assert_uint_eq(resp.body_len, 2);
    ck_assert_str_eq(resp.body, "ok");
    free(resp.body);
}
END_TEST

/* ---------- metrics ---------- */

START_TEST(test_histogram_buckets)
{
    struct sw_histogram h = { 0 };
    struct sw_buf out;
    sw_histogram_observe_ns(&h, 400000);        /* 0.0004 s -> le 0.0005 */
    sw_histogram_observe_ns(&h, 500000);        /* bound is inclusive */
    sw_histogram_observe_ns(&h, 3000000);       /* 0.003 s -> le 0.005 */
    sw_histogram_observe_ns(&h, 1000000000);    /* 1 s -> le 1 */
    sw_histogram_observe_ns(&h, 20000000000ULL); /* 20 s -> +Inf */
    ck_assert_uint_eq(atomic_load(&h.buckets[0]), 2);
    ck_assert_uint_eq(atomic_load(&h.buckets[3]), 1);
    ck_assert_uint_eq(atomic_load(&h.buckets[10]), 1);
    ck_assert_uint_eq(atomic_load(&h.buckets[SW_HIST_BUCKETS]), 1);
    ck_assert_uint_eq(atomic_load(&h.count), 5);

    sw_buf_init(&out, 0);
    sw_metrics_write_histogram(&out, "lat", "a=\"b\"", &h);
    ck_assert_ptr_nonnull(strstr(out.data, "lat_bucket{a=\"b\",le=\"0.0005\"} 2\n"));
    ck_assert_ptr_nonnull(strstr(out.data, "lat_bucket{a=\"b\",le=\"0.001\"} 2\n"));
    ck_assert_ptr_nonnull(strstr(out.data, "lat_bucket{a=\"b\",le=\"0.0025\"} 2\n"));
    ck_assert_ptr_nonnull(strstr(out.data, "lat_bucket{a=\"b\",le=\"0.005\"} 3\n"));
    ck_assert_ptr_nonnull(strstr(out.data, "lat_bucket{a=\"b\",le=\"1\"} 4\n"));
    ck_assert_ptr_nonnull(strstr(out.data, "lat_bucket{a=\"b\",le=\"10\"} 4\n"));
    ck_assert_ptr_nonnull(strstr(out.data, "lat_bucket{a=\"b\",le=\"+Inf\"} 5\n"));
    ck_assert_ptr_nonnull(strstr(out.data, "lat_sum{a=\"b\"} 21.0039\n"));
    ck_assert_ptr_nonnull(strstr(out.data, "lat_count{a=\"b\"} 5\n"));
    sw_buf_reset(&out);
    sw_metrics_write_histogram(&out, "lat", NULL, &h);
    ck_assert_ptr_nonnull(strstr(out.data, "lat_bucket{le=\"+Inf\"} 5\n"));
    ck_assert_ptr_nonnull(strstr(out.data, "lat_count 5\n"));
    sw_buf_free(&out);
}
END_TEST

START_TEST(test_metrics_text)
{
    struct sw_buf out;
    char esc[16];
    sw_buf_init(&out, 0);
    sw_metrics_write_header(&out, "m", "counter", "Help text.");
    sw_metrics_write_sample(&out, "m", "k=\"v\"", 3);
    sw_metrics_write_sample(&out, "m", NULL, 0.25);
    sw_metrics_write_sample(&out, "m", "", INFINITY);
    ck_assert_str_eq(out.data, "# HELP m Help text.\n# TYPE m counter\nm{k=\"v\"} 3\nm 0.25\nm +Inf\n");
    sw_buf_free(&out);

    sw_metrics_escape(esc, sizeof(esc), "a\"b\\c\nd");
    ck_assert_str_eq(esc, "a\\\"b\\\\c\\nd");
    sw_metrics_escape(esc, 4, "ab\"c"); /* never splits an escape */
    ck_assert_str_eq(esc, "ab");
}
END_TEST

/* ---------- guard tests ---------- */

/* method target [body] with extra headers h1, h2 (NULL = none): the status. */
static long guarded(const char *method, const char *target, const char *body, const char *h1,
                    const char *h2, struct reply *r)
{
    struct curl_slist *hdrs = NULL;
    if (h1)
        hdrs = curl_slist_append(hdrs, h1);
    if (h2)
        hdrs = curl_slist_append(hdrs, h2);
    ck_assert_int_eq(request(method, target, body, body ? strlen(body) : 0, 0, hdrs, r), CURLE_OK);
    return r->status;
}

static void expect_guard(const char *method, const char *target, const char *body, const char *h1,
                         const char *h2, long status, const char *code)
{
    struct reply r;
    long st = guarded(method, target, body, h1, h2, &r);
    ck_assert_msg(st == status, "%s %s [%s] [%s]: %ld, expected %ld: %s", method, target, h1 ? h1 : "",
                  h2 ? h2 : "", st, status, r.body.data ? r.body.data : "");
    if (code)
        assert_error_code(&r, code);
    reply_free(&r);
}

START_TEST(test_guard_host)
{
    /* curl's own Host is 127.0.0.1:PORT */
    expect_guard("GET", "/hello", NULL, NULL, NULL, 200, NULL);
    expect_guard("GET", "/hello", NULL, "Host: evil.example", NULL, 403, "forbidden_host");
    expect_guard("GET", "/hello", NULL, "Host:", NULL, 403, "forbidden_host"); /* none sent */
    expect_guard("GET", "/hello", NULL, "Host: localhost.evil.example", NULL, 403, "forbidden_host");
    expect_guard("GET", "/hello", NULL, "Host: evil.localhost", NULL, 403, "forbidden_host");
    expect_guard("GET", "/hello", NULL, "Host: localhost:80@evil", NULL, 403, "forbidden_host");
    expect_guard("GET", "/hello", NULL, "Host: localhost:80:80", NULL, 403, "forbidden_host");
    expect_guard("GET", "/hello", NULL, "Host: localhost:", NULL, 403, "forbidden_host");
    expect_guard("GET", "/hello", NULL, "Host: localhost..", NULL, 403, "forbidden_host");
    expect_guard("GET", "/hello", NULL, "Host: local%68ost", NULL, 403, "forbidden_host");
    expect_guard("GET", "/hello", NULL, "Host: 127.0.0.2", NULL, 403, "forbidden_host");
    expect_guard("GET", "/hello", NULL, "Host: 127.1", NULL, 403, "forbidden_host");
    expect_guard("GET", "/hello", NULL, "Host: ::1", NULL, 403, "forbidden_host"); /* needs brackets */
    expect_guard("GET", "/hello", NULL, "Host: [::2]", NULL, 403, "forbidden_host");
    /* case, one trailing dot, any port, IPv6 by value, an entry written "Example.COM." */
    expect_guard("GET", "/hello", NULL, "Host: LOCALHOST", NULL, 200, NULL);
    expect_guard("GET", "/hello", NULL, "Host: localhost.:8080", NULL, 200, NULL);
    expect_guard("GET", "/hello", NULL, "Host: [::1]:1234", NULL, 200, NULL);
    expect_guard("GET", "/hello", NULL, "Host: [0:0::1]", NULL, 200, NULL);
    expect_guard("GET", "/hello", NULL, "Host: example.com", NULL, 200, NULL);
    /* /health and /metrics too: a rebinding page must not read them; unknown paths as well */
    expect_guard("GET", "/health", NULL, "Host: evil.example", NULL, 403, "forbidden_host");
    expect_guard("GET", "/metrics", NULL, "Host: evil.example", "X-Token: t", 403, "forbidden_host");
    expect_guard("GET", "/nope", NULL, "Host: evil.example", NULL, 403, "forbidden_host");
    expect_guard("GET", "/health", NULL, NULL, NULL, 200, NULL);
    expect_guard("GET", "/nope", NULL, NULL, NULL, 404, "not_found");
}
END_TEST

START_TEST(test_guard_origin)
{
    const char *json = "Content-Type: application/json";

    expect_guard("POST", "/echo", "{}", json, "Origin: http://evil.example", 403, "forbidden_origin");
    expect_guard("POST", "/echo", "{}", json, "Origin: null", 403, "forbidden_origin");
    expect_guard("POST", "/echo", "{}", json, "Origin: http://localhost.evil.example", 403, "forbidden_origin");
    expect_guard("POST", "/echo", "{}", json, "Origin: http://localhost/", 403, "forbidden_origin");
    expect_guard("POST", "/echo", "{}", json, "Origin: http://user@localhost", 403, "forbidden_origin");
    expect_guard("POST", "/echo", "{}", json, "Origin: ftp://localhost", 403, "forbidden_origin");
    expect_guard("POST", "/echo", "{}", json, "Origin: localhost", 403, "forbidden_origin");
    expect_guard("POST", "/echo", "{}", json, "Origin: http://localhost http://evil.example", 403,
                 "forbidden_origin");
    expect_guard("DELETE", "/items/1", NULL, "Origin: http://evil.example", NULL, 403, "forbidden_origin");
    /* allowed: any port, https, case */
    expect_guard("POST", "/echo", "{}", json, "Origin: http://localhost:5555", 200, NULL);
    expect_guard("POST", "/echo", "{}", json, "Origin: https://127.0.0.1", 200, NULL);
    expect_guard("POST", "/echo", "{}", json, "Origin: HTTP://[::1]:8000", 200, NULL);
    expect_guard("POST", "/echo", "{}", json, NULL, 200, NULL); /* curl, scripts: no Origin */
    /* reads are guarded by Host only */
    expect_guard("GET", "/hello", NULL, "Origin: http://evil.example", NULL, 200, NULL);
    expect_guard("GET", "/hello", NULL, "Origin: null", NULL, 200, NULL);
}
END_TEST

START_TEST(test_guard_content_type)
{
    struct reply r;

    expect_guard("POST", "/echo", "{}", "Content-Type: text/plain", NULL, 415, "unsupported_media_type");
    expect_guard("POST", "/echo", "a=b", NULL, NULL, 415, "unsupported_media_type"); /* curl: form type */
    expect_guard("POST", "/echo", "{}", "Content-Type: multipart/form-data; boundary=x", NULL, 415,
                 "unsupported_media_type");
    expect_guard("POST", "/echo", "{}", "Content-Type: application/jsonp", NULL, 415, "unsupported_media_type");
    expect_guard("POST", "/echo", "{}", "Content-Type:", NULL, 415, "unsupported_media_type"); /* body, no type */
    /* a declared non-JSON type is refused even without a body (an empty HTML form post) */
    expect_guard("POST", "/echo", NULL, "Content-Type: application/x-www-form-urlencoded", NULL, 415,
                 "unsupported_media_type");
    /* parameters and case are fine; no body needs no type */
    expect_guard("POST", "/echo", "{}", "Content-Type: application/json; charset=utf-8", NULL, 200, NULL);
    expect_guard("POST", "/echo", "{}", "Content-Type: Application/JSON", NULL, 200, NULL);
    expect_guard("POST", "/echo", NULL, NULL, NULL, 200, NULL);
    expect_guard("DELETE", "/items/1", NULL, NULL, NULL, 200, NULL);
    /* chunked: a body without a type is refused, with one it passes */
    ck_assert_int_eq(request("POST", "/echo", "{}", 2, 1, curl_slist_append(NULL, "Content-Type:"), &r), CURLE_OK);
    ck_assert_int_eq(r.status, 415);
    reply_free(&r);
    ck_assert_int_eq(request("POST", "/echo", "{}", 2, 1,
                             curl_slist_append(NULL, "Content-Type: application/json"), &r), CURLE_OK);
    ck_assert_int_eq(r.status, 200);
    reply_free(&r);
}
END_TEST

START_TEST(test_authorize_hook)
{
    const char *json = "Content-Type: application/json";
    char big[1000];
    struct reply r;

    expect_guard("GET", "/secret", NULL, NULL, NULL, 401, "unauthenticated");
    ck_assert_int_eq(guarded("GET", "/secret", NULL, NULL, NULL, &r), 401);
    ck_assert_ptr_nonnull(strcasestr(r.headers.data, "www-authenticate: Bearer realm=\"test\""));
    reply_free(&r);
    expect_guard("GET", "/secret", NULL, "X-Token: t", NULL, 200, NULL);
    expect_guard("GET", "/metrics", NULL, NULL, NULL, 401, "unauthenticated");
    expect_guard("GET", "/metrics", NULL, "X-Token: t", NULL, 200, NULL);
    /* /health never asks the hook; the guard answers before it */
    atomic_store(&authorize_calls, 0);
    expect_guard("GET", "/health", NULL, NULL, NULL, 200, NULL);
    expect_guard("GET", "/secret", NULL, "Host: evil.example", "X-Token: t", 403, "forbidden_host");
    ck_assert_int_eq(atomic_load(&authorize_calls), 0);
    /* before the body: an unauthorized upload over the cap is 401, not 413 */
    memset(big, '1', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    expect_guard("POST", "/secret", big, json, NULL, 401, "unauthenticated");
    expect_guard("POST", "/secret", big, json, "X-Token: t", 413, "body_too_large");
    expect_guard("POST", "/secret", "{}", json, "X-Token: t", 200, NULL);
}
END_TEST

START_TEST(test_guard_helpers)
{
    const char *const ext[] = { "hv.example.org", "[fe80::1]" }, *const bad[] = { "a:80" };
    struct sw_http_response resp = { 0 };
    struct sw_http_guard_input in = { .method = "POST", .host = "evil", .content_type = "text/plain" };
    const char **l;

    ck_assert(sw_http_host_valid("localhost"));
    ck_assert(sw_http_host_valid("10.0.0.1"));
    ck_assert(sw_http_host_valid("::1"));
    ck_assert(sw_http_host_valid("[2001:db8::1]"));
    ck_assert(sw_http_host_valid("example.org."));
    ck_assert(!sw_http_host_valid(""));
    ck_assert(!sw_http_host_valid("a:80"));
    ck_assert(!sw_http_host_valid("http://a"));
    ck_assert(!sw_http_host_valid("a b"));
    ck_assert(!sw_http_host_valid("[::1"));
    ck_assert(!sw_http_host_valid("[zz::1]"));
    ck_assert(!sw_http_host_valid(NULL));

    /* the listen address's host joins when it names one */
    ck_assert_ptr_nonnull(l = sw_http_loopback_hosts("10.1.2.3:80", ext, 2));
    ck_assert_str_eq(l[0], "localhost");
    ck_assert_str_eq(l[1], "127.0.0.1");
    ck_assert_str_eq(l[2], "::1");
    ck_assert_str_eq(l[3], "10.1.2.3");
    ck_assert_str_eq(l[4], "hv.example.org");
    ck_assert_str_eq(l[5], "[fe80::1]");
    ck_assert_ptr_null(l[6]);
    ck_assert(sw_http_host_allowed(l, "[fe80::1]:9080"));
    ck_assert(sw_http_host_allowed(l, "HV.example.org"));
    ck_assert(!sw_http_host_allowed(l, "example.org"));
    free(l);
    const char *wild[] = { ":8000", "0.0.0.0:8000", "[::]:8000", "junk", NULL };
    for (size_t i = 0; i < 5; i++) {
        ck_assert_ptr_nonnull(l = sw_http_loopback_hosts(wild[i], NULL, 0));
        ck_assert_ptr_null(l[3]);
        free(l);
    }
    ck_assert_ptr_nonnull(l = sw_http_loopback_hosts("[fe80::2]:1", NULL, 0));
    ck_assert_str_eq(l[3], "fe80::2");
    ck_assert(sw_http_host_allowed(l, "[fe80::2]"));
    free(l);
    ck_assert_ptr_null(sw_http_loopback_hosts(NULL, bad, 1));

    /* no list: no checks at all */
    ck_assert_int_eq(sw_http_guard_check(NULL, true, &in, &resp), SW_OK);
    ck_assert_ptr_null(resp.body);
    ck_assert(!sw_http_origin_allowed(guard_hosts, NULL));
    ck_assert(!sw_http_host_allowed(NULL, "localhost"));
    ck_assert_int_eq(sw_http_guard_check(guard_hosts, true, &in, &resp), SW_EPERM);
    ck_assert_int_eq(resp.status, 403);
    free(resp.body);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("http_server");
    TCase *srv_tc = tcase_create("server");
    TCase *unit_tc = tcase_create("unit");

    tcase_add_checked_fixture(srv_tc, setup, teardown);
    tcase_set_timeout(srv_tc, 60);
    tcase_add_test(srv_tc, test_exact_route);
    tcase_add_test(srv_tc, test_prefix_param);
    tcase_add_test(srv_tc, test_not_found);
    tcase_add_test(srv_tc, test_method_not_allowed);
    tcase_add_test(srv_tc, test_body_echo);
    tcase_add_test(srv_tc, test_body_too_large);
    tcase_add_test(srv_tc, test_endless_body_survives);
    tcase_add_test(srv_tc, test_raw_target_and_query);
    tcase_add_test(srv_tc, test_header_lookup);
    tcase_add_test(srv_tc, test_handler_without_status);
    tcase_add_test(srv_tc, test_health);
    tcase_add_test(srv_tc, test_metrics);
    tcase_add_test(srv_tc, test_concurrent);
    tcase_add_test(srv_tc, test_keepalive_reuse);
    tcase_add_test(srv_tc, test_port_in_use);
    suite_add_tcase(s, srv_tc);

    TCase *guard_tc = tcase_create("guard");
    tcase_add_checked_fixture(guard_tc, setup_guarded, teardown);
    tcase_set_timeout(guard_tc, 60);
    tcase_add_test(guard_tc, test_guard_host);
    tcase_add_test(guard_tc, test_guard_origin);
    tcase_add_test(guard_tc, test_guard_content_type);
    tcase_add_test(guard_tc, test_authorize_hook);
    suite_add_tcase(s, guard_tc);

    tcase_set_timeout(unit_tc, 30);
    tcase_add_test(unit_tc, test_bad_addresses);
    tcase_add_test(unit_tc, test_listen_variants);
    tcase_add_test(unit_tc, test_stop_null);
    tcase_add_test(unit_tc, test_query_decoding);
    tcase_add_test(unit_tc, test_reply_helpers);
    tcase_add_test(unit_tc, test_histogram_buckets);
    tcase_add_test(unit_tc, test_metrics_text);
    tcase_add_test(unit_tc, test_guard_helpers);
    suite_add_tcase(s, unit_tc);
    return s;
}

static int init_curl(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    return 0;
}

const struct th_check_main th_check_main = {
    .suite = suite,
    .before = init_curl,
    .after = curl_global_cleanup,
};
