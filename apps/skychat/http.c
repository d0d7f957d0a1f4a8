/* http.c — skychat's web page and API on -addr.
 *
 * libmicrohttpd directly, in thread-per-connection mode: the server-sent-events stream is a
 * callback response whose reader blocks (on the store's condition variable) until a message
 * arrives or the keep-alive interval passes, which common/http_server's buffer-only responses
 * cannot do. Replies and error bodies reuse common/http_server.h's helpers, so errors look
 * like every other service's: {"error":{"code","message"}}, and so do its browser checks
 * (sw_http_guard_check, docs/security.md): every request needs a Host of the allow-list
 * (loopback names, -addr's host, -allowed-host), a POST a same-site Origin (when any) and an
 * application/json body, all decided on the headers before the body is read. */
#include "apps/skychat/chat.h"
#include "common/hostport.h"
#include "common/http_server.h"
#include "common/json.h"
#include "common/log.h"
#include "common/num.h"
#include "common/utf8.h"
#include "common/version.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SC_HTTP_CONNECTIONS 128
#define SC_DRAIN_MAX (1u << 20)

static struct MHD_Daemon *mhd;
static uint16_t bound_port;
static char started_at[32];
static pthread_mutex_t sse_mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned sse_count;
static const char **allowed_hosts; /* sw_http_loopback_hosts: owned, freed at stop */

struct req {
    struct sw_buf body;
    bool too_large;
    bool refused;   /* the guard answered on the headers; the body is only drained */
    size_t drained;
};

/* ---------- plumbing ---------- */

static enum MHD_Result queue(struct MHD_Connection *conn, struct sw_http_response *r,
                             const char *cache)
{
    struct MHD_Response *mr;
    enum MHD_Result ret;

    if (!r->body) { /* a handler that set nothing, or ENOMEM */
        r->status = 500;
        mr = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    } else {
        mr = MHD_create_response_from_buffer_with_free_callback(r->body_len, r->body, free);
    }
    if (!mr) {
        free(r->body);
        return MHD_NO;
    }
    r->body = NULL;
    if (r->content_type)
        MHD_add_response_header(mr, MHD_HTTP_HEADER_CONTENT_TYPE, r->content_type);
    if (r->allow[0])
        MHD_add_response_header(mr, MHD_HTTP_HEADER_ALLOW, r->allow);
    MHD_add_response_header(mr, MHD_HTTP_HEADER_CACHE_CONTROL, cache ? cache : "no-store");
    MHD_add_response_header(mr, "X-Content-Type-Options", "nosniff");
    ret = MHD_queue_response(conn, (unsigned)r->status, mr);
    MHD_destroy_response(mr);
    return ret;
}

static enum MHD_Result error(struct MHD_Connection *conn, int status, const char *code,
                             const char *msg)
{
    struct sw_http_response r = { 0 };
    sw_http_reply_error(&r, status, code, "%s", msg);
    return queue(conn, &r, NULL);
}

/* Query argument as a decimal u64 in [0, max]; dflt when absent; false when malformed. */
static bool query_u64(struct MHD_Connection *conn, const char *name, uint64_t max, uint64_t dflt,
                      uint64_t *out)
{
    const char *v = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, name);

    if (!v) {
        *out = dflt;
        return true;
    }
    return sw_parse_u64(v, 0, max, out) == SW_OK;
}

static const char *header(struct MHD_Connection *conn, const char *name)
{
    return MHD_lookup_connection_value(conn, MHD_HEADER_KIND, name);
}

/* Host allow-list for every request; same-site Origin and a JSON body for POSTs. True when
 * the request was refused (the answer is queued in *ret). */
static bool guard_refused(struct MHD_Connection *conn, const char *url, const char *method,
                          enum MHD_Result *ret)
{
    const char *len = header(conn, MHD_HTTP_HEADER_CONTENT_LENGTH);
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    struct sw_http_response r = { 0 };
    char client[INET6_ADDRSTRLEN] = "?";
    struct sw_http_guard_input in = {
        .method = method,
        .host = header(conn, MHD_HTTP_HEADER_HOST),
        .origin = header(conn, "Origin"),
        .content_type = header(conn, MHD_HTTP_HEADER_CONTENT_TYPE),
        .has_body = header(conn, MHD_HTTP_HEADER_TRANSFER_ENCODING) || (len && len[strspn(len, " 0")]),
        .target = url,
        .client = client,
    };

    if (ci && ci->client_addr && ci->client_addr->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)ci->client_addr)->sin_addr, client, sizeof(client));
    else if (ci && ci->client_addr && ci->client_addr->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ci->client_addr)->sin6_addr, client, sizeof(client));
    if (sw_http_guard_check(allowed_hosts, true, &in, &r) == SW_OK)
        return false;
    *ret = queue(conn, &r, NULL);
    return true;
}

/* ---------- handlers ---------- */

static enum MHD_Result get_page(struct MHD_Connection *conn)
{
    struct MHD_Response *mr = MHD_create_response_from_buffer(
        sc_page_html_len, (void *)sc_page_html, MHD_RESPMEM_PERSISTENT);
    enum MHD_Result ret;

    if (!mr)
        return MHD_NO;
    MHD_add_response_header(mr, MHD_HTTP_HEADER_CONTENT_TYPE, "text/html; charset=utf-8");
    MHD_add_response_header(mr, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    MHD_add_response_header(mr, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(mr, "X-Frame-Options", "DENY");
    MHD_add_response_header(mr, "Content-Security-Policy",
                            "default-src 'none'; script-src 'unsafe-inline'; "
                            "style-src 'unsafe-inline'; connect-src 'self'; img-src data:; "
                            "base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
    ret = MHD_queue_response(conn, MHD_HTTP_OK, mr);
    MHD_destroy_response(mr);
    return ret;
}

static enum MHD_Result get_health(struct MHD_Connection *conn)
{
    struct sw_http_response r = { 0 };
    struct json_object *o = json_object_new_object();

    json_object_object_add(o, "status", json_object_new_string("ok"));
    json_object_object_add(o, "version", json_object_new_string(SW_VERSION));
    json_object_object_add(o, "started_at", json_object_new_string(started_at));
    sw_http_reply_json(&r, 200, o);
    return queue(conn, &r, NULL);
}

static enum MHD_Result get_info(struct MHD_Connection *conn)
{
    struct sw_http_response r = { 0 };
    struct json_object *o = json_object_new_object();

    json_object_object_add(o, "pk", sc_opt.have_self ? sw_json_pk(&sc_opt.self) : NULL);
    json_object_object_add(o, "port", json_object_new_int(sc_opt.port));
    json_object_object_add(o, "remote_port", json_object_new_int(sc_opt.remote_port));
    json_object_object_add(o, "max_message", json_object_new_int(SC_MSG_MAX));
    json_object_object_add(o, "version", json_object_new_string(SW_VERSION));
    sw_http_reply_json(&r, 200, o);
    return queue(conn, &r, NULL);
}

static enum MHD_Result get_messages(struct MHD_Connection *conn)
{
    struct sw_http_response r = { 0 };
    struct sw_buf b;
    uint64_t since, limit;

    if (!query_u64(conn, "since", UINT64_MAX, 0, &since))
        return error(conn, 400, "invalid_query", "'since' must be a message id (decimal)");
    if (!query_u64(conn, "limit", 100000, 0, &limit))
        return error(conn, 400, "invalid_query", "'limit' must be a decimal number up to 100000");
    sw_buf_init(&b, 0);
    if (sc_store_json(&b, since, (size_t)limit)) {
        sw_buf_free(&b);
        return error(conn, 500, "internal_error", "out of memory");
    }
    r.body = sw_buf_steal(&b, &r.body_len);
    r.status = 200;
    r.content_type = "application/json";
    return queue(conn, &r, NULL);
}

static enum MHD_Result post_message(struct MHD_Connection *conn, struct req *q)
{
    struct sw_http_response r = { 0 };
    struct json_object *o = NULL, *v, *ok;
    struct sw_error err = { 0 };
    struct sc_send_result res;
    struct sw_pk pk;
    const char *text;
    size_t len, bad = 0;
    uint64_t sent_at, nonce, id;
    char hex[SW_PK_HEX_LEN + 1];
    enum MHD_Result ret;

    if (q->too_large)
        return error(conn, 413, "body_too_large", "the body exceeds 65536 bytes");
    if (sw_json_parse(q->body.data ? q->body.data : "", q->body.len, &o, &err) ||
        !json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        return error(conn, 400, "invalid_json", err.msg[0] ? err.msg : "the body must be a JSON object");
    }
    if (sw_json_get_pk(o, "recipient", "", &pk, &err)) {
        ret = error(conn, 400, "invalid_recipient", err.msg);
        goto out;
    }
    if (sc_opt.have_self && sw_pk_equal(&pk, &sc_opt.self)) {
        ret = error(conn, 400, "invalid_recipient", "field 'recipient': that is this visor's own key");
        goto out;
    }
    if (!json_object_object_get_ex(o, "message", &v) || !json_object_is_type(v, json_type_string)) {
        ret = error(conn, 400, "invalid_message", "field 'message': expected a string");
        goto out;
    }
    text = json_object_get_string(v);
    len = (size_t)json_object_get_string_len(v);
    if (len > SC_MSG_MAX) {
        char m[96];
        snprintf(m, sizeof(m), "field 'message': %zu bytes, at most %d allowed", len, SC_MSG_MAX);
        ret = error(conn, 413, "message_too_large", m);
        goto out;
    }
    if (len == 0 || memchr(text, '\0', len)) {
        ret = error(conn, 400, "invalid_message", "field 'message': must be non-empty text without NUL");
        goto out;
    }
    if (!sw_utf8_valid(text, len, &bad)) {
        char m[128];
        snprintf(m, sizeof(m), "field 'message': not valid UTF-8 (an invalid sequence at byte %zu of the text)", bad);
        ret = error(conn, 400, "invalid_utf8", m);
        goto out;
    }
    sent_at = (uint64_t)sw_unix_ms();
    randombytes_buf(&nonce, sizeof(nonce));
    nonce |= 1; /* never 0 (0 = no nonce) */
    sw_pk_to_hex(&pk, hex);
    sc_send(&pk, text, len, sent_at, nonce, &res);
    if (res.status != SC_SENT) {
        int st = res.status == SC_TIMEOUT ? 504 : res.status == SC_BUSY ? 503 : 502;
        sw_log_info("message to %s not delivered: %s: %s", hex, res.code, res.msg);
        ret = error(conn, st, res.code, res.msg);
        goto out;
    }
    id = sc_store_add(&pk, true, text, len, sent_at, 0);
    sw_log_debug("message %llu delivered to %s", (unsigned long long)id, hex);
    ok = json_object_new_object();
    json_object_object_add(ok, "ok", json_object_new_boolean(1));
    json_object_object_add(ok, "id", json_object_new_uint64(id));
    json_object_object_add(ok, "sent_at", json_object_new_uint64(sent_at));
    sw_http_reply_json(&r, 200, ok);
    ret = queue(conn, &r, NULL);
out:
    json_object_put(o);
    return ret;
}

/* ---------- server-sent events ---------- */

struct sse {
    uint64_t after;      /* last id sent */
    int64_t next_ka;     /* when the next keep-alive comment is due (monotonic ms) */
    struct sw_buf buf;
    size_t off;
    bool hello;
};

static ssize_t sse_read(void *cls, uint64_t pos, char *out, size_t max)
{
    struct sse *s = cls;
    (void)pos;

    for (;;) {
        int64_t now;
        int w;

        if (s->off < s->buf.len) {
            size_t n = s->buf.len - s->off < max ? s->buf.len - s->off : max;
            memcpy(out, s->buf.data + s->off, n);
            s->off += n;
            return (ssize_t)n;
        }
        sw_buf_reset(&s->buf);
        s->off = 0;
        if (sc_stopping())
            return MHD_CONTENT_READER_END_OF_STREAM;
        now = sw_mono_ms();
        if (!s->hello) {
            s->hello = true;
            sw_buf_printf(&s->buf, "retry: 3000\n: connected\n\n");
        } else if (sc_store_events(&s->buf, &s->after, 64) == 0 && now >= s->next_ka) {
            sw_buf_printf(&s->buf, ": keep-alive\n\n");
        }
        if (s->buf.len) {
            s->next_ka = now + sc_opt.sse_keepalive_ms;
            continue;
        }
        w = sc_store_wait(s->after, (int)(s->next_ka - now));
        if (w < 0)
            return MHD_CONTENT_READER_END_OF_STREAM;
    }
}

static void sse_release(void)
{
    pthread_mutex_lock(&sse_mu);
    sse_count--;
    pthread_mutex_unlock(&sse_mu);
}

static void sse_free(void *cls)
{
    struct sse *s = cls;
    sw_buf_free(&s->buf);
    free(s);
    sse_release();
}

static enum MHD_Result get_sse(struct MHD_Connection *conn)
{
    const char *last = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Last-Event-ID");
    uint64_t newest = sc_store_last(), after = newest;
    struct MHD_Response *mr;
    enum MHD_Result ret;
    struct sse *s;
    bool full;

    /* resume after Last-Event-ID (EventSource reconnects) or ?since=; else only new ones */
    if (!(last && sw_parse_u64(last, 0, UINT64_MAX, &after) == SW_OK) &&
        !query_u64(conn, "since", UINT64_MAX, newest, &after))
        return error(conn, 400, "invalid_query", "'since' must be a message id (decimal)");
    if (after > newest) /* ids from before a restart */
        after = newest;
    pthread_mutex_lock(&sse_mu);
    full = sse_count >= sc_opt.max_sse;
    if (!full)
        sse_count++;
    pthread_mutex_unlock(&sse_mu);
    if (full)
        return error(conn, 503, "too_many_streams", "too many event streams are open; try later");
    if (!(s = calloc(1, sizeof(*s)))) {
        sse_release();
        return MHD_NO;
    }
    s->after = after;
    sw_buf_init(&s->buf, 0);
    mr = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, sse_read, s, sse_free);
    if (!mr) {
        sse_free(s);
        return MHD_NO;
    }
    MHD_add_response_header(mr, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream; charset=utf-8");
    MHD_add_response_header(mr, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    MHD_add_response_header(mr, "X-Accel-Buffering", "no");
    ret = MHD_queue_response(conn, MHD_HTTP_OK, mr);
    MHD_destroy_response(mr);
    return ret;
}

/* ---------- dispatch ---------- */

struct route {
    const char *path;
    const char *method; /* GET routes answer HEAD too */
};

static const struct route routes[] = {
    { "/", "GET" },         { "/index.html", "GET" }, { "/messages", "GET" },
    { "/message", "POST" }, { "/sse", "GET" },        { "/health", "GET" },
    { "/info", "GET" },
};

static enum MHD_Result dispatch(struct MHD_Connection *conn, const char *url, const char *method,
                                struct req *q)
{
    bool is_get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    const struct route *rt = NULL;

    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]) && !rt; i++)
        if (strcmp(url, routes[i].path) == 0)
            rt = &routes[i];
    if (!rt)
        return error(conn, 404, "not_found", "no such endpoint");
    if (strcmp(rt->method, "GET") == 0 ? !is_get : strcmp(method, rt->method) != 0) {
        struct sw_http_response r = { 0 };
        sw_http_reply_error(&r, 405, "method_not_allowed", "use %s", rt->method);
        snprintf(r.allow, sizeof(r.allow), "%s", strcmp(rt->method, "GET") == 0 ? "GET, HEAD" : rt->method);
        return queue(conn, &r, NULL);
    }
    if (strcmp(url, "/message") == 0)
        return post_message(conn, q);
    if (strcmp(url, "/messages") == 0)
        return get_messages(conn);
    if (strcmp(url, "/sse") == 0)
        return get_sse(conn);
    if (strcmp(url, "/health") == 0)
        return get_health(conn);
    if (strcmp(url, "/info") == 0)
        return get_info(conn);
    return get_page(conn);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    struct req *q = *con_cls;
    (void)cls;
    (void)version;

    if (!q) {
        enum MHD_Result ret;
        if (!(q = calloc(1, sizeof(*q))))
            return MHD_NO;
        sw_buf_init(&q->body, SC_BODY_MAX);
        *con_cls = q;
        q->refused = guard_refused(conn, url, method, &ret);
        return q->refused ? ret : MHD_YES;
    }
    if (q->refused) { /* answered already: drop what body still comes, up to the cap */
        if ((q->drained += *upload_size) > SC_DRAIN_MAX)
            return MHD_NO;
        *upload_size = 0;
        return MHD_YES;
    }
    if (*upload_size) {
        if (!q->too_large && sw_buf_append(&q->body, upload, *upload_size))
            q->too_large = true;
        if (q->too_large && (q->drained += *upload_size) > SC_DRAIN_MAX)
            return MHD_NO; /* do not read megabytes only to refuse them */
        *upload_size = 0;
        return MHD_YES;
    }
    sw_log_debug("%s %s", method, url);
    return dispatch(conn, url, method, q);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct req *q = *con_cls;
    (void)cls;
    (void)conn;
    (void)toe;
    if (q) {
        sw_buf_free(&q->body);
        free(q);
        *con_cls = NULL;
    }
}

__attribute__((format(printf, 2, 0)))
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[256];
    size_t n;
    (void)cls;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    sw_log_warn("libmicrohttpd: %s", msg);
}

/* "host:port", ":port" (every interface), "[v6]:port". */
static int resolve(const char *addr, struct addrinfo **ai, struct sw_error *err)
{
    char host[128], port[8];
    uint16_t p;
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE };
    int rc;

    if (sw_hostport_parse(addr, SW_HOSTPORT_LISTEN, host, sizeof(host), &p))
        return sw_error_set(err, SW_EINVAL, "-addr '%s': expected host:port, :port or [ipv6]:port", addr);
    snprintf(port, sizeof(port), "%u", p);
    if (!host[0])
        hints.ai_family = AF_INET; /* ":8000" = every IPv4 interface */
    if ((rc = getaddrinfo(host[0] ? host : NULL, port, &hints, ai)))
        return sw_error_set(err, SW_EINVAL, "-addr '%s': %s", addr, gai_strerror(rc));
    return SW_OK;
}

static void log_allowed_hosts(void)
{
    char list[512] = "";
    size_t n = 0;

    for (size_t i = 0; allowed_hosts[i] && n < sizeof(list); i++)
        n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%s", i ? ", " : "", allowed_hosts[i]);
    sw_log_info("the page and API answer to the host names %s (more with -allowed-host)", list);
}

int sc_http_start(struct sw_error *err)
{
    struct addrinfo *ai = NULL;
    const union MHD_DaemonInfo *info;
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_POLL | MHD_USE_ERROR_LOG;
    time_t now = (time_t)(sw_unix_ms() / 1000);
    struct tm tm;

    gmtime_r(&now, &tm);
    strftime(started_at, sizeof(started_at), "%Y-%m-%dT%H:%M:%SZ", &tm);
    allowed_hosts = sw_http_loopback_hosts(sc_opt.addr, sc_opt.allowed_hosts, sc_opt.n_allowed_hosts);
    if (!allowed_hosts)
        return sw_error_set(err, SW_ENOMEM, "out of memory");
    if (resolve(sc_opt.addr, &ai, err)) {
        free(allowed_hosts);
        allowed_hosts = NULL;
        return SW_EINVAL;
    }
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_request, NULL,
                           MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
                           MHD_OPTION_SOCK_ADDR, ai->ai_addr,
                           MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
                           MHD_OPTION_CONNECTION_LIMIT, (unsigned)SC_HTTP_CONNECTIONS,
                           MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60,
                           MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!mhd) {
        free(allowed_hosts);
        allowed_hosts = NULL;
        return sw_error_set(err, SW_EIO, "cannot listen on %s (in use?)", sc_opt.addr);
    }
    info = MHD_get_daemon_info(mhd, MHD_DAEMON_INFO_BIND_PORT);
    bound_port = info ? info->port : 0;
    log_allowed_hosts();
    return SW_OK;
}

uint16_t sc_http_port(void)
{
    return bound_port;
}

void sc_http_stop(void)
{
    if (!mhd)
        return;
    sc_store_wake_all();
    MHD_stop_daemon(mhd);
    mhd = NULL;
    free(allowed_hosts);
    allowed_hosts = NULL;
}
