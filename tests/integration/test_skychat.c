/* skychat end to end (SPEC §9, apps/skychat/README.md) with real processes: transport
 * discovery, route finder, messaging discovery + server, setup node, and three visors A-B-C
 * (stcp A-B and B-C only). A and C run skychat as an auto-started app from their config, each
 * with its own -addr. The seed's check: three POSTs (libcurl, as `curl -d`) A->C "Hello Mike!",
 * C->A "Hello Joe!", A->C "System is working!" all arrive with the right sender; an SSE client
 * on A sees "Hello Joe!" live (and keep-alive comments); bad key -> 400, oversize -> 413,
 * text that is not valid UTF-8 -> 400 on POST and refused (never stored) from a peer, so
 * /messages stays valid JSON text; browser checks (foreign Host 403, foreign Origin 403, non-JSON POST 415, -allowed-host),
 * unreachable recipient -> 502/504 quickly; one route per recipient is reused, and redialled
 * after the recipient restarts; the page (headless Chromium when installed) renders the
 * received messages. */
#include "common/http_client.h"
#include "common/json.h"
#include "common/keys.h"
#include "common/stream_io.h"
#include "common/utf8.h"
#include "common/uuid.h"
#include "tests/harness/api_client.h"
#include "tests/harness/check_main.h"
#include "tests/harness/harness.h"
#include "tests/harness/net_env.h"
#include "tests/harness/visor_env.h"
#include "visor/app/app.h"

#include <check.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct th_visor va, vb, vc;
static struct th_net net = { .name = "skychat", .with_rf = true, .with_sn = true };
static char chat_a[64], chat_c[64]; /* http://127.0.0.1:PORT of each skychat */
static struct sw_http_client *http; /* net.http */
static char tp_ab[SW_UUID_STR_LEN + 1], tp_bc[SW_UUID_STR_LEN + 1];

static long api(const struct th_visor *v, const char *method, const char *target, const char *body,
                struct json_object **out)
{
    return th_call(http, v->api, method, target, body, NULL, out);
}

/* Adds skychat (app port 1, auto_start) with args to a visor's config. */
static void add_skychat(const struct th_visor *v, const char *args_json)
{
    char apps[512];
    struct json_object *cfg = json_object_from_file(v->config);
    ck_assert_ptr_nonnull(cfg);
    snprintf(apps, sizeof(apps), "[{\"app\":\"skychat\",\"auto_start\":true,\"port\":1,\"args\":%s}]",
             args_json);
    json_object_object_add(cfg, "apps", json_tokener_parse(apps));
    ck_assert_int_eq(json_object_to_file_ext(v->config, cfg, JSON_C_TO_STRING_PRETTY), 0);
    json_object_put(cfg);
}

static int count_rules(const struct th_visor *v)
{
    struct json_object *o = NULL;
    int n;
    ck_assert_int_eq(api(v, "GET", "/api/routes", NULL, &o), 200);
    n = (int)json_object_array_length(o);
    json_object_put(o);
    return n;
}

static void app_log(const struct th_visor *v, char *out, size_t cap)
{
    snprintf(out, cap, "%s/skychat.log", v->data_dir);
}

static void setup(void)
{
    char args[256], url[96], log[600];
    uint16_t pa = th_free_port(), pc = th_free_port();

    ck_assert_msg(th_net_start(&net), "the services did not start");
    http = net.http;
    ck_assert_int_eq(th_net_visor_gen(&net, &va, "skychat-a", NULL, NULL), 0);
    ck_assert_int_eq(th_net_visor_gen(&net, &vb, "skychat-b", NULL, NULL), 0);
    ck_assert_int_eq(th_net_visor_gen(&net, &vc, "skychat-c", NULL, NULL), 0);
    /* both address forms: host:port on A, :port (every interface) on C */
    snprintf(args, sizeof(args), "[\"-addr\",\"127.0.0.1:%u\",\"-sse-keepalive\",\"1\",\"-allowed-host\",\"chat.example\"]", pa);
    add_skychat(&va, args);
    snprintf(args, sizeof(args), "[\"-addr\",\":%u\"]", pc);
    add_skychat(&vc, args);
    snprintf(chat_a, sizeof(chat_a), "http://127.0.0.1:%u", pa);
    snprintf(chat_c, sizeof(chat_c), "http://127.0.0.1:%u", pc);
    ck_assert_int_eq(th_visor_start(&va), 0);
    ck_assert_int_eq(th_visor_start(&vb), 0);
    ck_assert_int_eq(th_visor_start(&vc), 0);
    snprintf(url, sizeof(url), "%s/health", chat_a);
    app_log(&va, log, sizeof(log));
    if (th_wait_http(url, 15000)) {
        th_dump_log(log);
        ck_abort_msg("skychat on A did not start");
    }
    snprintf(url, sizeof(url), "%s/health", chat_c);
    app_log(&vc, log, sizeof(log));
    if (th_wait_http(url, 15000)) {
        th_dump_log(log);
        ck_abort_msg("skychat on C did not start");
    }
    ck_assert(th_net_wait_sessions(&net, &va, 15000) && th_net_wait_sessions(&net, &vb, 15000) &&
              th_net_wait_sessions(&net, &vc, 15000));
    ck_assert(th_net_wait_mdisc(&net, va.pk_hex, 15000) && th_net_wait_mdisc(&net, vb.pk_hex, 15000) &&
              th_net_wait_mdisc(&net, vc.pk_hex, 15000));
    ck_assert_int_eq(th_net_add_stcp(&net, &va, &vb, tp_ab), 201);
    ck_assert_int_eq(th_net_add_stcp(&net, &vb, &vc, tp_bc), 201);
    ck_assert_str_ne(tp_ab, tp_bc);
}

static void teardown(void)
{
    th_net_stop(&net, (struct th_visor *const[]){ &va, &vb, &vc }, 3);
    http = NULL;
}

/* ---------- libcurl ---------- */

struct reply {
    long status;
    char body[16384];
    size_t len;
    char content_type[96];
    uint64_t ms;
};

static size_t collect(char *p, size_t size, size_t n, void *ud)
{
    struct reply *r = ud;
    size_t take = size * n;
    if (take > sizeof(r->body) - 1 - r->len)
        take = sizeof(r->body) - 1 - r->len;
    memcpy(r->body + r->len, p, take);
    r->len += take;
    r->body[r->len] = '\0';
    return size * n;
}

#define JSON_CT "Content-Type: application/json"

/* "Name: value" lines separated by '\n' -> a curl header list. */
static struct curl_slist *header_list(const char *hdrs)
{
    struct curl_slist *h = NULL;
    char line[512];

    while (hdrs && *hdrs) {
        size_t n = strcspn(hdrs, "\n");
        snprintf(line, sizeof(line), "%.*s", (int)n, hdrs);
        h = curl_slist_append(h, line);
        hdrs += n + (hdrs[n] == '\n');
    }
    return h;
}

/* Like `curl [-d BODY] [-H HDR]... URL` (hdr: lines separated by '\n'): a POST sends BODY as
 * application/x-www-form-urlencoded unless a Content-Type header is given, which skychat
 * refuses (415): only application/json is accepted. */
static void request(const char *base, const char *method, const char *target, const char *body,
                    size_t body_len, const char *hdr, struct reply *r)
{
    char url[512];
    CURL *c = curl_easy_init();
    struct curl_slist *h = header_list(hdr);
    char *ct = NULL;
    int64_t t0 = sw_mono_ms();

    memset(r, 0, sizeof(*r));
    ck_assert_ptr_nonnull(c);
    snprintf(url, sizeof(url), "%s%s", base, target);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)body_len);
    }
    if (h)
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 90000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    ck_assert_int_eq(curl_easy_perform(c), CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    if (curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct)
        snprintf(r->content_type, sizeof(r->content_type), "%s", ct);
    r->ms = sw_ms_since(t0);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
}

/* POST /message {"recipient","message"} the way the seed's curl did (-H 'Content-Type: application/json'). */
static void post_message(const char *base, const char *recipient, const char *text, struct reply *r)
{
    struct json_object *o = json_object_new_object();
    const char *s;

    json_object_object_add(o, "recipient", json_object_new_string(recipient));
    json_object_object_add(o, "message", json_object_new_string(text));
    s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
    request(base, "POST", "/message", s, strlen(s), JSON_CT, r);
    json_object_put(o);
}

static void expect_sent(const char *base, const char *recipient, const char *text)
{
    struct reply r;
    post_message(base, recipient, text, &r);
    ck_assert_msg(r.status == 200, "POST %s/message '%s': %ld %s", base, text, r.status, r.body);
    ck_assert_ptr_nonnull(strstr(r.body, "\"ok\":true"));
}

static const char *error_code(const struct reply *r, char *out, size_t cap)
{
    struct json_object *o = json_tokener_parse(r->body);
    const char *c = json_object_get_string(json_object_object_get(json_object_object_get(o, "error"), "code"));
    snprintf(out, cap, "%s", c ? c : "");
    json_object_put(o);
    return out;
}

/* Whether GET base/messages holds an entry with this text, direction and sender. */
static bool has_message(const char *base, const char *text, const char *direction, const char *sender)
{
    struct reply r;
    struct json_object *arr;
    bool found = false;

    request(base, "GET", "/messages", NULL, 0, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    arr = json_tokener_parse(r.body);
    ck_assert(json_object_is_type(arr, json_type_array));
    for (size_t i = 0; i < json_object_array_length(arr) && !found; i++) {
        struct json_object *m = json_object_array_get_idx(arr, i);
        found = strcmp(json_object_get_string(json_object_object_get(m, "message")), text) == 0 &&
                strcmp(json_object_get_string(json_object_object_get(m, "direction")), direction) == 0 &&
                strcmp(json_object_get_string(json_object_object_get(m, "sender")), sender) == 0;
    }
    json_object_put(arr);
    return found;
}

/* ---------- SSE client: a libcurl streaming read on its own thread ---------- */

struct sse {
    pthread_mutex_t mu;
    char buf[65536];
    size_t len;
    const char *until[2]; /* stop once both appear */
    char content_type[96];
    CURLcode rc;
};

static size_t sse_write(char *p, size_t size, size_t n, void *ud)
{
    struct sse *s = ud;
    size_t take = size * n;
    bool done;

    pthread_mutex_lock(&s->mu);
    if (take > sizeof(s->buf) - 1 - s->len)
        take = sizeof(s->buf) - 1 - s->len;
    memcpy(s->buf + s->len, p, take);
    s->len += take;
    s->buf[s->len] = '\0';
    done = strstr(s->buf, s->until[0]) && strstr(s->buf, s->until[1]);
    pthread_mutex_unlock(&s->mu);
    return done ? 0 : size * n; /* 0 ends the transfer */
}

static void *sse_run(void *arg)
{
    struct sse *s = arg;
    char url[128], *ct = NULL;
    CURL *c = curl_easy_init();

    snprintf(url, sizeof(url), "%s/sse", chat_a);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sse_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 60000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    s->rc = curl_easy_perform(c);
    if (curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct)
        snprintf(s->content_type, sizeof(s->content_type), "%s", ct);
    curl_easy_cleanup(c);
    return NULL;
}

static bool sse_has(struct sse *s, const char *needle, int timeout_ms)
{
    for (int waited = 0;; waited += 50) {
        bool found;
        pthread_mutex_lock(&s->mu);
        found = strstr(s->buf, needle) != NULL;
        pthread_mutex_unlock(&s->mu);
        if (found)
            return true;
        if (waited >= timeout_ms)
            return false;
        th_sleep_ms(50);
    }
}

/* ---------- tests ---------- */

static void wait_route_finder(void)
{
    char body[400];
    long st = 0;
    snprintf(body, sizeof(body), "{\"edges\":[[\"%s\",\"%s\"]],\"opts\":{\"min_hops\":1,\"max_hops\":4,\"count\":1}}",
             va.pk_hex, vc.pk_hex);
    for (int i = 0; i < 100 && st != 200; i++) {
        st = th_call(http, net.rf_base, "POST", "/routes", body, NULL, NULL);
        if (st != 200)
            th_sleep_ms(200);
    }
    ck_assert_int_eq(st, 200);
}

START_TEST(test_seed_messages_and_sse)
{
    static struct sse s = { .mu = PTHREAD_MUTEX_INITIALIZER, .until = { "Hello Joe!", ": keep-alive" } };
    pthread_t th;
    struct reply r;

    wait_route_finder();
    /* an SSE client on A, connected before anything is sent to A */
    ck_assert_int_eq(pthread_create(&th, NULL, sse_run, &s), 0);
    ck_assert_msg(sse_has(&s, ": connected", 10000), "no SSE preamble: %s", s.buf);

    expect_sent(chat_a, vc.pk_hex, "Hello Mike!");
    expect_sent(chat_c, va.pk_hex, "Hello Joe!");
    expect_sent(chat_a, vc.pk_hex, "System is working!");

    ck_assert(has_message(chat_c, "Hello Mike!", "in", va.pk_hex));
    ck_assert(has_message(chat_a, "Hello Joe!", "in", vc.pk_hex));
    ck_assert(has_message(chat_c, "System is working!", "in", va.pk_hex));
    /* the senders keep their own side of the conversation */
    ck_assert(has_message(chat_a, "Hello Mike!", "out", va.pk_hex));
    ck_assert(has_message(chat_c, "Hello Joe!", "out", vc.pk_hex));

    /* the SSE stream delivered "Hello Joe!" as an event from C, and keep-alive comments */
    ck_assert_msg(sse_has(&s, "Hello Joe!", 10000), "SSE got: %s", s.buf);
    ck_assert_msg(sse_has(&s, ": keep-alive", 10000), "no keep-alive: %s", s.buf);
    pthread_join(th, NULL);
    ck_assert_int_eq(s.rc, CURLE_WRITE_ERROR); /* we ended it; it did not time out */
    ck_assert_ptr_nonnull(strstr(s.content_type, "text/event-stream"));
    ck_assert_ptr_nonnull(strstr(s.buf, "event: message\ndata: {"));
    ck_assert_ptr_nonnull(strstr(s.buf, vc.pk_hex));

    /* ?since= lists only newer messages */
    request(chat_c, "GET", "/messages?since=1", NULL, 0, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_null(strstr(r.body, "Hello Mike!"));
    ck_assert_ptr_nonnull(strstr(r.body, "System is working!"));
    request(chat_c, "GET", "/messages?since=x", NULL, 0, NULL, &r);
    ck_assert_int_eq(r.status, 400);
}
END_TEST

static void expect_status(const char *base, const char *method, const char *target, const char *body,
                          const char *hdrs, long status, const char *code)
{
    char got[64];
    struct reply r;

    request(base, method, target, body, body ? strlen(body) : 0, hdrs, &r);
    ck_assert_msg(r.status == status, "%s %s%s [%s]: %ld %s, expected %ld", method, base, target, hdrs ? hdrs : "",
                  r.status, r.body, status);
    if (code)
        ck_assert_str_eq(error_code(&r, got, sizeof(got)), code);
}

/* The checks for pages in a local browser (docs/security.md, common/http_guard.c): a page of
 * another site cannot post (Origin, JSON only), a DNS-rebinding page cannot read (Host). */
static void browser_checks(void)
{
    char body[200], hdrs[256];

    snprintf(body, sizeof(body), "{\"recipient\":\"%s\",\"message\":\"x\"}", vc.pk_hex);
    expect_status(chat_a, "POST", "/message", body, JSON_CT "\nOrigin: http://evil.example", 403, "forbidden_origin");
    expect_status(chat_a, "POST", "/message", body, JSON_CT "\nOrigin: null", 403, "forbidden_origin");
    expect_status(chat_a, "POST", "/message", body, "Content-Type: text/plain", 415, "unsupported_media_type");
    expect_status(chat_a, "POST", "/message", body, NULL, 415, "unsupported_media_type"); /* curl -d: a form */
    expect_status(chat_a, "GET", "/messages", NULL, "Host: evil.example", 403, "forbidden_host");
    expect_status(chat_a, "GET", "/health", NULL, "Host: evil.example:8000", 403, "forbidden_host");
    expect_status(chat_a, "GET", "/", NULL, "Host: localhost.evil.example", 403, "forbidden_host");
    expect_status(chat_a, "GET", "/messages", NULL, "Origin: http://evil.example", 200, NULL); /* Host decides reads */
    /* a same-site page passes the guard (then the handler: its own key is no recipient) */
    snprintf(body, sizeof(body), "{\"recipient\":\"%s\",\"message\":\"x\"}", va.pk_hex);
    snprintf(hdrs, sizeof(hdrs), JSON_CT "\nOrigin: http://localhost:%s", strrchr(chat_a, ':') + 1);
    expect_status(chat_a, "POST", "/message", body, hdrs, 400, "invalid_recipient");
    /* -allowed-host chat.example on A; C listens on every interface but knows no other name */
    expect_status(chat_a, "GET", "/info", NULL, "Host: CHAT.example:1234", 200, NULL);
    expect_status(chat_c, "GET", "/info", NULL, "Host: chat.example", 403, "forbidden_host");
    expect_status(chat_c, "GET", "/info", NULL, "Host: 192.0.2.1", 403, "forbidden_host");
    expect_status(chat_c, "GET", "/info", NULL, "Host: [::1]", 200, NULL);
}

/* Message texts that are not UTF-8, as raw bytes inside a JSON string (json-c passes them
 * through; its \\uD800 escapes become U+FFFD, which is fine). */
static const char *const bad_utf8[] = {
    "overlong \xc0\xaf slash",      /* '/' in two bytes */
    "overlong \xe0\x80\xaf slash",  /* and in three */
    "surrogate \xed\xa0\x80 half",  /* U+D800 */
    "too high \xf4\x90\x80\x80",   /* U+110000 */
    "lead \xf8\x88\x80\x80\x80",    /* a five-byte form */
    "cut \xe2\x9c",                 /* truncated at the end */
    "stray \x80 byte",              /* a continuation byte alone */
    "latin-1 caf\xe9 au lait",       /* not UTF-8 at all */
};
#define N_BAD_UTF8 (sizeof(bad_utf8) / sizeof(bad_utf8[0]))

/* POST /message with each: 400 invalid_utf8 naming the field; nothing is sent or stored. */
static void post_invalid_utf8(void)
{
    char body[300], code[64];
    struct reply r;
    uint64_t before;

    request(chat_a, "GET", "/messages", NULL, 0, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    before = r.len;
    for (size_t i = 0; i < N_BAD_UTF8; i++) {
        int n = snprintf(body, sizeof(body), "{\"recipient\":\"%s\",\"message\":\"%s\"}", vc.pk_hex, bad_utf8[i]);
        request(chat_a, "POST", "/message", body, (size_t)n, JSON_CT, &r);
        ck_assert_msg(r.status == 400, "'%s': %ld %s", bad_utf8[i], r.status, r.body);
        ck_assert_str_eq(error_code(&r, code, sizeof(code)), "invalid_utf8");
        ck_assert_ptr_nonnull(strstr(r.body, "UTF-8"));
        ck_assert_ptr_nonnull(strstr(r.body, "'message'"));
    }
    request(chat_a, "GET", "/messages", NULL, 0, NULL, &r);
    ck_assert_uint_eq(r.len, before); /* nothing new, sent or stored */
}

START_TEST(test_bad_requests)
{
    char code[64], *big;
    struct reply r;
    size_t n = 8193;

    /* bad key: 400 naming the field */
    post_message(chat_a, "not-a-key", "hi", &r);
    ck_assert_int_eq(r.status, 400);
    ck_assert_str_eq(error_code(&r, code, sizeof(code)), "invalid_recipient");
    ck_assert_ptr_nonnull(strstr(r.body, "recipient"));
    request(chat_a, "POST", "/message", "{\"message\":\"hi\"}", 16, JSON_CT, &r);
    ck_assert_int_eq(r.status, 400);
    ck_assert_ptr_nonnull(strstr(r.body, "recipient"));
    post_message(chat_a, va.pk_hex, "to myself", &r);
    ck_assert_int_eq(r.status, 400);
    /* message: missing, empty, not JSON */
    {
        char body[200];
        int len = snprintf(body, sizeof(body), "{\"recipient\":\"%s\"}", vc.pk_hex);
        request(chat_a, "POST", "/message", body, (size_t)len, JSON_CT, &r);
        ck_assert_int_eq(r.status, 400);
        ck_assert_str_eq(error_code(&r, code, sizeof(code)), "invalid_message");
    }
    post_message(chat_a, vc.pk_hex, "", &r);
    ck_assert_int_eq(r.status, 400);
    request(chat_a, "POST", "/message", "{nope", 5, JSON_CT, &r);
    ck_assert_int_eq(r.status, 400);
    ck_assert_str_eq(error_code(&r, code, sizeof(code)), "invalid_json");

    /* oversize: a message over 8 KiB, a body over 64 KiB */
    big = malloc(100000);
    ck_assert_ptr_nonnull(big);
    memset(big, 'x', n);
    big[n] = '\0';
    post_message(chat_a, vc.pk_hex, big, &r);
    ck_assert_int_eq(r.status, 413);
    ck_assert_str_eq(error_code(&r, code, sizeof(code)), "message_too_large");
    memset(big, 'x', 99999);
    big[99999] = '\0';
    request(chat_a, "POST", "/message", big, 99999, JSON_CT, &r);
    ck_assert_int_eq(r.status, 413);
    ck_assert_str_eq(error_code(&r, code, sizeof(code)), "body_too_large");
    free(big);

    post_invalid_utf8();

    browser_checks();
    request(chat_a, "GET", "/message", NULL, 0, NULL, &r);
    ck_assert_int_eq(r.status, 405);
    request(chat_a, "GET", "/nope", NULL, 0, NULL, &r);
    ck_assert_int_eq(r.status, 404);
    request(chat_a, "GET", "/info", NULL, 0, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(r.body, va.pk_hex));
    request(chat_a, "GET", "/", NULL, 0, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(r.content_type, "text/html"));
    ck_assert_ptr_nonnull(strstr(r.body, "EventSource"));
}
END_TEST

/* Whether text is one JSON value, strictly, with valid UTF-8 (json-c's own check and ours). */
static struct json_object *parse_strict_utf8(const char *text, size_t len)
{
    struct json_tokener *tok = json_tokener_new();
    struct json_object *o;

    ck_assert_ptr_nonnull(tok);
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    o = json_tokener_parse_ex(tok, text, (int)len);
    ck_assert_msg(o && json_tokener_get_error(tok) == json_tokener_success &&
                  json_tokener_get_parse_end(tok) == len, "not valid JSON text: %s",
                  json_tokener_error_desc(json_tokener_get_error(tok)));
    json_tokener_free(tok);
    ck_assert_msg(sw_utf8_valid(text, len, NULL), "not valid UTF-8");
    return o;
}

/* A peer that sends what no skychat sends: this process dials C's skychat (app port 1) through
 * A's app socket, so the frames carry A's authenticated key, and writes message texts that
 * are not UTF-8. Each is answered {"ok":false,"error":"invalid_utf8"} with one log line on
 * C, the connection stays usable (a valid message after them is stored), and C's /messages
 * stays valid JSON text without any of them. */
START_TEST(test_invalid_utf8_from_peer)
{
    static const char good[] = "valid: caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf";
    char sock[600], log[600], frame[400];
    struct sw_error err = { 0 };
    struct json_object *o = NULL, *arr;
    struct reply r;
    int fd = -1, n, refused_before;

    wait_route_finder();
    app_log(&vc, log, sizeof(log));
    refused_before = th_log_count(log, "invalid_utf8");
    snprintf(sock, sizeof(sock), "%s/app.sock", va.data_dir);
    ck_assert_msg(sw_app_dial(sock, &vc.pk, 1, &fd, &err) == SW_OK, "dial C's skychat: %s", err.msg);
    for (size_t i = 0; i <= N_BAD_UTF8; i++) {
        const char *text = i < N_BAD_UTF8 ? bad_utf8[i] : good;
        n = snprintf(frame, sizeof(frame), "{\"message\":\"%s\",\"sent_at\":1,\"nonce\":%zu}", text, 7000 + i);
        ck_assert_int_eq(sw_record_write(fd, frame, (size_t)n, 65536, sw_io_within(5000, NULL)), SW_OK);
        ck_assert_int_eq(sw_json_record_recv(fd, 65536, sw_io_within(10000, NULL), 5000, &o, NULL), SW_OK);
        if (i < N_BAD_UTF8) {
            ck_assert_msg(!json_object_get_boolean(json_object_object_get(o, "ok")), "'%s' was accepted", text);
            ck_assert_str_eq(json_object_get_string(json_object_object_get(o, "error")), "invalid_utf8");
        } else {
            ck_assert_msg(json_object_get_boolean(json_object_object_get(o, "ok")), "refused valid UTF-8: %s",
                          json_object_to_json_string(o));
        }
        json_object_put(o);
        o = NULL;
    }
    close(fd);
    /* one log line per refusal, naming the sender */
    ck_assert_int_eq(th_log_count(log, "invalid_utf8") - refused_before, (int)N_BAD_UTF8);
    ck_assert_int_ge(th_log_count(log, va.pk_hex), (int)N_BAD_UTF8);

    request(chat_c, "GET", "/messages", NULL, 0, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_uint_lt(r.len, sizeof(r.body) - 1); /* the whole answer */
    arr = parse_strict_utf8(r.body, r.len);
    ck_assert(json_object_is_type(arr, json_type_array));
    for (size_t i = 0; i < json_object_array_length(arr); i++) {
        const char *m = json_object_get_string(json_object_object_get(json_object_array_get_idx(arr, i), "message"));
        for (size_t k = 0; k < N_BAD_UTF8; k++)
            ck_assert_msg(strncmp(m, bad_utf8[k], 5) != 0, "stored: %s", m);
    }
    json_object_put(arr);
    ck_assert(has_message(chat_c, good, "in", va.pk_hex));
}
END_TEST

START_TEST(test_unreachable_recipient)
{
    struct sw_keypair nobody;
    char hex[SW_PK_HEX_LEN + 1], code[64];
    struct reply r;

    /* a key no visor has: the route finder knows no route */
    sw_keypair_generate(&nobody);
    sw_pk_to_hex(&nobody.pk, hex);
    post_message(chat_a, hex, "anyone there?", &r);
    ck_assert_msg(r.status == 502 || r.status == 504, "%ld %s", r.status, r.body);
    ck_assert_msg(r.ms < 15000, "took %llu ms", (unsigned long long)r.ms);
    error_code(&r, code, sizeof(code));
    ck_assert_msg(strcmp(code, "recipient_unreachable") == 0 || strcmp(code, "dial_timeout") == 0, "%s", code);
    /* B is reachable but runs no skychat */
    post_message(chat_a, vb.pk_hex, "B, are you chatting?", &r);
    ck_assert_msg(r.status == 502 || r.status == 504, "%ld %s", r.status, r.body);
    ck_assert_msg(r.ms < 15000, "took %llu ms", (unsigned long long)r.ms);
    /* and A still reaches C afterwards */
    expect_sent(chat_a, vc.pk_hex, "still here");
}
END_TEST

START_TEST(test_redial_after_recipient_restart)
{
    char url[96];
    struct json_object *o = NULL;
    long st = 0;
    int rules_b;

    expect_sent(chat_a, vc.pk_hex, "before restart");
    /* one connection per recipient: another message sets up no new route (same rules on B) */
    rules_b = count_rules(&vb);
    expect_sent(chat_a, vc.pk_hex, "same connection");
    ck_assert_int_eq(count_rules(&vb), rules_b);
    /* C's skychat restarts: A's cached connection is dead and must be redialled */
    ck_assert_int_eq(api(&vc, "POST", "/api/apps/skychat/stop", NULL, &o), 200);
    json_object_put(o);
    o = NULL;
    snprintf(url, sizeof(url), "%s/health", chat_c);
    for (int i = 0; i < 100 && th_wait_http(url, 100) == 0; i++)
        th_sleep_ms(100);
    /* stop is asynchronous (SIGTERM): start answers 409 "running" until the process is gone */
    for (int i = 0; i < 100 && (st = api(&vc, "POST", "/api/apps/skychat/start", NULL, &o)) == 409; i++) {
        json_object_put(o);
        o = NULL;
        th_sleep_ms(100);
    }
    ck_assert_int_eq(st, 200);
    json_object_put(o);
    ck_assert_int_eq(th_wait_http(url, 15000), 0);
    expect_sent(chat_a, vc.pk_hex, "after restart");
    ck_assert(has_message(chat_c, "after restart", "in", va.pk_hex));
}
END_TEST

START_TEST(test_page_renders_messages)
{
    char script[600], out[16384], err[4096], url[96];
    const char *root = getenv("SW_TEST_ROOT");
    int rc;

    /* A holds "Hello Joe!" from C (test_seed_messages_and_sse) */
    ck_assert(has_message(chat_a, "Hello Joe!", "in", vc.pk_hex));
    snprintf(script, sizeof(script), "%s/tests/integration/skychat_page_check.sh", root ? root : ".");
    snprintf(url, sizeof(url), "%s/", chat_a);
    const char *argv[] = { "/bin/bash", script, url, "Hello Joe!", vc.pk_hex, NULL };
    rc = th_run(argv, out, sizeof(out), err, sizeof(err), 200000);
    printf("skychat_page_check:\n%s", out); /* its own lines, so a "SKIP: " starts one */
    ck_assert_msg(rc == 0, "page check failed (%d): %s%s", rc, out, err);
}
END_TEST

static Suite *skychat_suite(void)
{
    Suite *s = suite_create("skychat");
    TCase *tc = tcase_create("skychat");

    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, test_seed_messages_and_sse);
    tcase_add_test(tc, test_bad_requests);
    tcase_add_test(tc, test_invalid_utf8_from_peer);
    tcase_add_test(tc, test_unreachable_recipient);
    tcase_add_test(tc, test_redial_after_recipient_restart);
    tcase_add_test(tc, test_page_renders_messages);
    suite_add_tcase(s, tc);
    return s;
}

const struct th_check_main th_check_main = {
    .suite = skychat_suite,
    .fork = CK_NOFORK,
    .before = th_check_init_crypto_http,
};
