#include "common/http_server.h"
#include "common/clock.h"
#include "common/hostport.h"
#include "common/json.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/num.h"

#include <errno.h>
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_THREADS 8
#define DEFAULT_MAX_BODY (1024 * 1024)
#define DEFAULT_MAX_CONNECTIONS 1024
#define DEFAULT_IDLE_TIMEOUT_S 30
/* After a body overflows we keep reading (and discarding) this much more so the client
 * still receives the 413; beyond it the connection is simply closed. */
#define DRAIN_MAX (1024 * 1024)
#define STATUS_SLOTS 16
#define N_BUILTIN 2 /* /health, /metrics */

struct status_slot {
    _Atomic uint32_t status; /* 0 = free */
    _Atomic uint64_t count;
};

struct route_stats {
    const char *label;  /* borrowed from the route */
    const char *method;
    struct status_slot slots[STATUS_SLOTS];
    _Atomic uint64_t other; /* statuses that found no free slot */
    struct sw_histogram hist;
};

struct sw_http_server {
    const struct sw_http_server_config *cfg;
    struct MHD_Daemon *mhd;
    uint16_t port;
    size_t max_body;
    int64_t start_ns;    /* monotonic */
    double start_wall;   /* Unix seconds */
    char started_at[32];
    struct sw_http_route builtin[N_BUILTIN];
    /* cfg routes, then builtins, then the "unmatched" pseudo-route (404/405) */
    struct route_stats *stats;
    size_t n_stats;
    /* MHD reports bind errors only through its logger; keep the last one for err. */
    pthread_mutex_t log_lock;
    atomic_bool running;
    char start_msg[SW_ERROR_MSG_MAX];
};

struct req_state {
    struct sw_http_server *srv;
    struct MHD_Connection *conn;
    const struct sw_http_route *route;
    size_t stats_idx;
    const char *param;
    size_t limit;
    size_t drained;
    int64_t start_ns;    /* monotonic */
    bool routed, too_large, responded;
    struct sw_buf body;
    char *target; /* both point into strings[] */
    char *path;
    char strings[];
};

/* ---------- metrics bookkeeping ---------- */

static void count_status(struct route_stats *rs, unsigned status)
{
    for (size_t i = 0; i < STATUS_SLOTS; i++) {
        uint32_t cur = atomic_load_explicit(&rs->slots[i].status, memory_order_acquire);
        if (cur == 0) {
            uint32_t expected = 0;
            if (atomic_compare_exchange_strong(&rs->slots[i].status, &expected, status))
                cur = status;
            else
                cur = expected;
        }
        if (cur == status) {
            atomic_fetch_add_explicit(&rs->slots[i].count, 1, memory_order_relaxed);
            return;
        }
    }
    atomic_fetch_add_explicit(&rs->other, 1, memory_order_relaxed);
}

static void stats_labels(char *out, size_t cap, const struct sw_http_server *srv,
                         const struct route_stats *rs)
{
    char svc[128], route[256], method[64];
    sw_metrics_escape(svc, sizeof(svc), srv->cfg->service);
    sw_metrics_escape(route, sizeof(route), rs->label);
    sw_metrics_escape(method, sizeof(method), rs->method);
    snprintf(out, cap, "service=\"%s\",route=\"%s\",method=\"%s\"", svc, route, method);
}

static void write_request_counters(struct sw_http_server *srv, struct sw_buf *out)
{
    char base[512], labels[600];
    sw_metrics_write_header(out, "sw_http_requests_total", "counter",
                            "HTTP requests answered, by route, method and status.");
    for (size_t r = 0; r < srv->n_stats; r++) {
        struct route_stats *rs = &srv->stats[r];
        uint64_t other = atomic_load_explicit(&rs->other, memory_order_relaxed);
        stats_labels(base, sizeof(base), srv, rs);
        for (size_t i = 0; i < STATUS_SLOTS; i++) {
            uint32_t st = atomic_load_explicit(&rs->slots[i].status, memory_order_acquire);
            uint64_t n = atomic_load_explicit(&rs->slots[i].count, memory_order_relaxed);
            if (st == 0 || n == 0)
                continue;
            snprintf(labels, sizeof(labels), "%s,status=\"%u\"", base, (unsigned)st);
            sw_metrics_write_sample(out, "sw_http_requests_total", labels, (double)n);
        }
        if (other) {
            snprintf(labels, sizeof(labels), "%s,status=\"other\"", base);
            sw_metrics_write_sample(out, "sw_http_requests_total", labels, (double)other);
        }
    }
}

static void write_latency(struct sw_http_server *srv, struct sw_buf *out)
{
    char labels[512];
    sw_metrics_write_header(out, "sw_http_request_duration_seconds", "histogram",
                            "Time from request line to response, by route.");
    for (size_t r = 0; r < srv->n_stats; r++) {
        stats_labels(labels, sizeof(labels), srv, &srv->stats[r]);
        sw_metrics_write_histogram(out, "sw_http_request_duration_seconds", labels,
                                   &srv->stats[r].hist);
    }
}

static double resident_bytes(void)
{
    unsigned long size, resident;
    long page = sysconf(_SC_PAGESIZE);
    int n;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return 0;
    n = fscanf(f, "%lu %lu", &size, &resident);
    fclose(f);
    return n == 2 && page > 0 ? (double)resident * (double)page : 0;
}

static void write_process(struct sw_http_server *srv, struct sw_buf *out)
{
    char svc[128], labels[160];
    sw_metrics_escape(svc, sizeof(svc), srv->cfg->service);
    snprintf(labels, sizeof(labels), "service=\"%s\"", svc);
    sw_metrics_write_header(out, "sw_process_start_time_seconds", "gauge",
                            "Start time of the process since the Unix epoch in seconds.");
    sw_metrics_write_sample(out, "sw_process_start_time_seconds", labels, srv->start_wall);
    sw_metrics_write_header(out, "sw_process_resident_memory_bytes", "gauge",
                            "Resident memory size in bytes.");
    sw_metrics_write_sample(out, "sw_process_resident_memory_bytes", labels, resident_bytes());
}

/* ---------- built-in routes ---------- */

static void handle_metrics(struct sw_http_request *req, struct sw_http_response *resp)
{
    struct req_state *st = req->priv;
    struct sw_http_server *srv = st->srv;
    struct sw_buf out;

    sw_buf_init(&out, 0);
    write_request_counters(srv, &out);
    write_latency(srv, &out);
    write_process(srv, &out);
    if (srv->cfg->write_metrics)
        srv->cfg->write_metrics(srv->cfg->hook_app ? srv->cfg->hook_app : srv->cfg->app, &out);
    free(resp->body);
    resp->status = 200;
    resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
    resp->body = sw_buf_steal(&out, &resp->body_len);
}

static void add_str(struct json_object *obj, const char *key, const char *val)
{
    json_object_object_add(obj, key, json_object_new_string(val ? val : ""));
}

static void handle_health(struct sw_http_request *req, struct sw_http_response *resp)
{
    struct req_state *st = req->priv;
    const struct sw_http_server_config *cfg = st->srv->cfg;
    struct sw_error err = { 0 };
    struct json_object *obj = json_object_new_object(), *e;
    int rc = SW_OK;

    if (!obj) {
        sw_http_reply_error(resp, 500, "internal_error", "out of memory");
        return;
    }
    if (cfg->health_check)
        rc = cfg->health_check(cfg->hook_app ? cfg->hook_app : cfg->app, &err);
    add_str(obj, "status", rc == SW_OK ? "ok" : "unavailable");
    add_str(obj, "service", cfg->service);
    add_str(obj, "version", cfg->version);
    add_str(obj, "started_at", st->srv->started_at);
    if (rc == SW_OK) {
        uint64_t up = (uint64_t)(sw_mono_ns() - st->srv->start_ns) / 1000000000ULL;
        json_object_object_add(obj, "uptime_s", json_object_new_int64((int64_t)up));
        sw_http_reply_json(resp, 200, obj);
        return;
    }
    e = json_object_new_object();
    if (e) {
        add_str(e, "code", "unhealthy");
        add_str(e, "message", err.msg[0] ? err.msg : sw_strerror(rc));
    }
    json_object_object_add(obj, "error", e);
    sw_http_reply_json(resp, 503, obj);
}

/* ---------- routing ---------- */

static bool path_matches(const struct sw_http_route *r, const char *path, const char **param)
{
    size_t n;
    if (r->match == SW_ROUTE_EXACT) {
        *param = "";
        return strcmp(path, r->pattern) == 0;
    }
    n = strlen(r->pattern);
    if (strncmp(path, r->pattern, n) != 0)
        return false;
    *param = path + n; /* only now: path is known to be at least n long */
    return true;
}

static const struct sw_http_route *route_at(const struct sw_http_server *srv, size_t i)
{
    return i < srv->cfg->n_routes ? &srv->cfg->routes[i] : &srv->builtin[i - srv->cfg->n_routes];
}

/* Appends method to the Allow list unless present or out of room. */
static void allow_add(char *allow, size_t cap, const char *method)
{
    size_t len = strlen(allow), m = strlen(method);
    const char *p = allow;
    while ((p = strstr(p, method))) {
        if ((p == allow || p[-1] == ' ') && (p[m] == ',' || p[m] == '\0'))
            return;
        p += m;
    }
    if (len + m + 3 > cap)
        return;
    snprintf(allow + len, cap - len, "%s%s", len ? ", " : "", method);
}

/* HEAD is served by GET routes (MHD drops the body), as HTTP requires. */
static bool method_matches(const char *route_method, const char *method)
{
    return strcmp(route_method, method) == 0 ||
           (strcmp(method, "HEAD") == 0 && strcmp(route_method, "GET") == 0);
}

/* Returns the index of the matching route (builtins first so they cannot be shadowed),
 * or -1; then allow lists the methods of routes whose path matched. */
static long find_route(const struct sw_http_server *srv, const char *method, const char *path,
                       const char **param, char *allow, size_t allow_cap)
{
    size_t n = srv->cfg->n_routes + N_BUILTIN;
    allow[0] = '\0';
    for (size_t k = 0; k < n; k++) {
        size_t i = (k + srv->cfg->n_routes) % n; /* builtins first */
        const struct sw_http_route *r = route_at(srv, i);
        const char *p;
        if (!path_matches(r, path, &p))
            continue;
        if (method_matches(r->method, method)) {
            *param = p;
            return (long)i;
        }
        allow_add(allow, allow_cap, r->method);
    }
    return -1;
}

/* ---------- responses ---------- */

static void log_request(const struct req_state *st, const char *method, int status,
                        uint64_t ns, bool handler_ran)
{
    double ms = (double)ns / 1e6;
    if (handler_ran && status >= 500)
        sw_log_warn("%s %s -> %d (%.3f ms)", method, st->target, status, ms);
    else
        sw_log_debug("%s %s -> %d (%.3f ms)", method, st->target, status, ms);
}

static enum MHD_Result send_response(struct req_state *st, const char *method,
                                     struct sw_http_response *resp, bool handler_ran)
{
    struct MHD_Response *mr;
    struct route_stats *rs = &st->srv->stats[st->stats_idx];
    enum MHD_Result ret;
    uint64_t ns;

    if (resp->body && resp->body_len)
        mr = MHD_create_response_from_buffer_with_free_callback(resp->body_len, resp->body, free);
    else
        mr = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!mr || !(resp->body && resp->body_len))
        free(resp->body);
    resp->body = NULL;
    if (!mr)
        return MHD_NO;
    if (resp->content_type)
        MHD_add_response_header(mr, MHD_HTTP_HEADER_CONTENT_TYPE, resp->content_type);
    if (resp->allow[0])
        MHD_add_response_header(mr, MHD_HTTP_HEADER_ALLOW, resp->allow);
    if (resp->set_cookie[0])
        MHD_add_response_header(mr, MHD_HTTP_HEADER_SET_COOKIE, resp->set_cookie);
    if (resp->cache_control)
        MHD_add_response_header(mr, MHD_HTTP_HEADER_CACHE_CONTROL, resp->cache_control);
    if (resp->csp)
        MHD_add_response_header(mr, "Content-Security-Policy", resp->csp);
    if (resp->www_authenticate)
        MHD_add_response_header(mr, MHD_HTTP_HEADER_WWW_AUTHENTICATE, resp->www_authenticate);
    if (resp->retry_after_s) {
        char secs[16];
        snprintf(secs, sizeof(secs), "%u", resp->retry_after_s);
        MHD_add_response_header(mr, MHD_HTTP_HEADER_RETRY_AFTER, secs);
    }
    ret = MHD_queue_response(st->conn, (unsigned)resp->status, mr);
    MHD_destroy_response(mr);
    st->responded = true;

    ns = (uint64_t)(sw_mono_ns() - st->start_ns);
    count_status(rs, (unsigned)resp->status);
    sw_histogram_observe_ns(&rs->hist, ns);
    log_request(st, method, resp->status, ns, handler_ran);
    return ret;
}

static enum MHD_Result send_error(struct req_state *st, const char *method, int status,
                                  const char *code, const char *msg, const char *allow)
{
    struct sw_http_response resp = { 0 };
    sw_http_reply_error(&resp, status, code, "%s", msg);
    if (allow)
        snprintf(resp.allow, sizeof(resp.allow), "%s", allow);
    return send_response(st, method, &resp, false);
}

static enum MHD_Result send_too_large(struct req_state *st, const char *method)
{
    char msg[96];
    snprintf(msg, sizeof(msg), "request body exceeds %zu bytes", st->limit);
    return send_error(st, method, 413, "body_too_large", msg, NULL);
}

/* ---------- request lifecycle ---------- */

/* MHD calls this with the raw request target before it decodes anything. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    size_t len = strlen(uri), plen = strcspn(uri, "?");
    struct req_state *st = calloc(1, sizeof(*st) + len + 1 + plen + 1);
    if (!st)
        return NULL;
    st->srv = cls;
    st->conn = conn;
    st->start_ns = sw_mono_ns();
    st->target = st->strings;
    memcpy(st->target, uri, len + 1);
    st->path = st->strings + len + 1;
    memcpy(st->path, uri, plen);
    st->path[plen] = '\0';
    sw_buf_init(&st->body, 0);
    return st;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct req_state *st = *req_cls;
    if (!st)
        return;
    if (!st->responded)
        sw_log_debug("%s: connection ended before a response (code %d)", st->target, (int)toe);
    sw_buf_free(&st->body);
    free(st);
    *req_cls = NULL;
}

/* Strict decimal parse; overflow counts as "too large". Malformed values are left to MHD. */
static bool declared_too_large(struct MHD_Connection *conn, size_t limit)
{
    const char *v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                MHD_HTTP_HEADER_CONTENT_LENGTH);
    uint64_t n = 0;
    if (!v || !*v)
        return false;
    for (; *v; v++) {
        if (*v < '0' || *v > '9')
            return false;
        if (n > (UINT64_MAX - 9) / 10)
            return true;
        n = n * 10 + (uint64_t)(*v - '0');
    }
    return n > limit;
}

static const char *header(const struct req_state *st, const char *name)
{
    return MHD_lookup_connection_value(st->conn, MHD_HEADER_KIND, name);
}

/* A body follows the headers: a non-zero Content-Length, or chunks. */
static bool announces_body(const struct req_state *st)
{
    const char *len = header(st, MHD_HTTP_HEADER_CONTENT_LENGTH);
    return header(st, MHD_HTTP_HEADER_TRANSFER_ENCODING) ||
           (len && len[strspn(len, " \t0")] != '\0');
}

static struct sw_http_request request_view(struct req_state *st, const char *method)
{
    return (struct sw_http_request){
        .method = method,
        .target = st->target,
        .path = st->path,
        .param = st->param ? st->param : "",
        .body = st->body.data ? st->body.data : "",
        .body_len = st->body.len,
        .app = st->srv->cfg->app,
        .priv = st,
    };
}

/* cfg.allowed_hosts / cfg.browser_guard (http_guard.c): true when refused (answer in *ret). */
static bool guard_refused(struct req_state *st, const char *method, enum MHD_Result *ret)
{
    const struct sw_http_server_config *cfg = st->srv->cfg;
    struct sw_http_response resp = { 0 };
    struct sw_http_request view = request_view(st, method);
    char client[64];
    struct sw_http_guard_input in = {
        .method = method,
        .host = header(st, MHD_HTTP_HEADER_HOST),
        .origin = header(st, "Origin"),
        .content_type = header(st, MHD_HTTP_HEADER_CONTENT_TYPE),
        .has_body = announces_body(st),
        .target = st->target,
        .client = client,
    };

    if (!cfg->allowed_hosts)
        return false;
    sw_http_client_ip(&view, client, sizeof(client));
    if (sw_http_guard_check(cfg->allowed_hosts, cfg->browser_guard, &in, &resp) == SW_OK)
        return false;
    *ret = send_response(st, method, &resp, false);
    return true;
}

/* cfg.authorize before a route's handler (not /health): true when refused (answer in *ret). */
static bool authorize_refused(struct req_state *st, const char *method, enum MHD_Result *ret)
{
    const struct sw_http_server_config *cfg = st->srv->cfg;
    struct sw_http_response resp = { 0 };
    struct sw_http_request view = request_view(st, method);

    if (!cfg->authorize || st->route == &st->srv->builtin[0])
        return false;
    if (cfg->authorize(cfg->app, &view, &resp) == SW_OK) {
        free(resp.body);
        return false;
    }
    if (resp.status < 100 || resp.status > 599) {
        sw_log_warn("%s %s: authorize refused without a response", method, st->target);
        sw_http_reply_error(&resp, 500, "internal_error", "authorization failed");
    }
    sw_log_debug("%s %s: not authorized (%d)", method, st->target, resp.status);
    *ret = send_response(st, method, &resp, false);
    return true;
}

/* First call, headers only: guard, route, authorize, and reject early what needs no body. */
static enum MHD_Result begin_request(struct req_state *st, const char *method)
{
    struct sw_http_server *srv = st->srv;
    char allow[sizeof(((struct sw_http_response *)0)->allow)];
    long idx = find_route(srv, method, st->path, &st->param, allow, sizeof(allow));
    enum MHD_Result ret;

    st->routed = true;
    st->stats_idx = idx < 0 ? srv->n_stats - 1 : (size_t)idx;
    if (guard_refused(st, method, &ret))
        return ret;
    if (idx < 0) {
        if (allow[0])
            return send_error(st, method, 405, "method_not_allowed",
                              "method not allowed for this path", allow);
        return send_error(st, method, 404, "not_found", "no such endpoint", NULL);
    }
    st->route = route_at(srv, (size_t)idx);
    if (authorize_refused(st, method, &ret))
        return ret;
    st->limit = st->route->max_body ? st->route->max_body : srv->max_body;
    st->body.limit = st->limit;
    if (declared_too_large(st->conn, st->limit))
        return send_too_large(st, method);
    return MHD_YES;
}

static enum MHD_Result take_body(struct req_state *st, const char *data, size_t *size)
{
    size_t n = *size;
    int rc;
    *size = 0;
    if (st->too_large || st->responded) {
        st->drained += n;
        return st->drained > DRAIN_MAX ? MHD_NO : MHD_YES;
    }
    rc = sw_buf_append(&st->body, data, n);
    if (rc == SW_ERANGE) {
        st->too_large = true;
        st->drained = n;
        sw_buf_free(&st->body);
        return MHD_YES;
    }
    return rc == SW_OK ? MHD_YES : MHD_NO;
}

static enum MHD_Result run_handler(struct req_state *st, const char *method)
{
    struct sw_http_server *srv = st->srv;
    struct sw_http_request req = request_view(st, method);
    struct sw_http_response resp = { 0 };

    st->route->handler(&req, &resp);
    if (resp.status < 100 || resp.status > 599) {
        sw_log_warn("%s %s: handler set no valid status (%d)", method, st->target, resp.status);
        sw_http_reply_error(&resp, 500, "internal_error", "handler produced no response");
    }
    /* Built-in 503s reflect health_check, already the app's to log; only app 5xx warn. */
    return send_response(st, method, &resp, st->stats_idx < srv->cfg->n_routes);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **req_cls)
{
    struct req_state *st = *req_cls;
    if (!st)
        return MHD_NO; /* on_uri could not allocate */
    if (!st->routed)
        return begin_request(st, method);
    if (*upload_data_size)
        return take_body(st, upload_data, upload_data_size);
    if (st->responded)
        return MHD_YES;
    if (st->too_large)
        return send_too_large(st, method);
    return run_handler(st, method);
}

/* ---------- start / stop ---------- */

__attribute__((format(printf, 2, 0)))
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    struct sw_http_server *srv = cls;
    char msg[SW_ERROR_MSG_MAX];
    size_t n;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    if (atomic_load(&srv->running)) {
        /* Mostly client misbehaviour once running; keep it out of warn-level logs. */
        sw_log_debug("libmicrohttpd: %s", msg);
        return;
    }
    sw_log_warn("libmicrohttpd: %s", msg);
    pthread_mutex_lock(&srv->log_lock);
    memcpy(srv->start_msg, msg, n + 1);
    pthread_mutex_unlock(&srv->log_lock);
}

static int split_addr(const char *addr, char *host, size_t hcap, char *port, size_t pcap,
                      struct sw_error *err)
{
    uint16_t p;
    if (!addr)
        return sw_error_set(err, SW_EINVAL, "listen address is missing");
    if (sw_hostport_parse(addr, SW_HOSTPORT_LISTEN, host, hcap, &p))
        return sw_error_set(err, SW_EINVAL,
                            "listen address '%s': expected host:port, :port or [ipv6]:port", addr);
    snprintf(port, pcap, "%u", p);
    return SW_OK;
}

static struct MHD_Daemon *start_mhd(struct sw_http_server *srv, const struct addrinfo *ai)
{
    const struct sw_http_server_config *cfg = srv->cfg;
    unsigned threads = cfg->threads ? cfg->threads : DEFAULT_THREADS;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
    /* MHD warns about a pool of 1 (it means "no pool"), so pass the option only for >1. */
    struct MHD_OptionItem pool[] = {
        { threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END, (intptr_t)threads, NULL },
        { MHD_OPTION_END, 0, NULL },
    };
    if (cfg->thread_per_connection) { /* MHD runs no pool and no epoll in this mode */
        flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL |
                MHD_USE_ERROR_LOG;
        pool[0].option = MHD_OPTION_END;
    }
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    /* The logger goes first or MHD prints option errors to stderr itself. */
    return MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, srv,
        MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, srv,
        MHD_OPTION_SOCK_ADDR, ai->ai_addr,
        MHD_OPTION_URI_LOG_CALLBACK, on_uri, srv,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
        MHD_OPTION_ARRAY, pool,
        MHD_OPTION_CONNECTION_LIMIT,
        cfg->max_connections ? cfg->max_connections : DEFAULT_MAX_CONNECTIONS,
        MHD_OPTION_CONNECTION_TIMEOUT,
        cfg->idle_timeout_s ? cfg->idle_timeout_s : DEFAULT_IDLE_TIMEOUT_S,
        MHD_OPTION_END);
}

/* Tries every resolved address until one binds. */
static int listen_on(struct sw_http_server *srv, struct sw_error *err)
{
    char host[256], port[8];
    struct addrinfo hints = { 0 }, *res = NULL;
    const union MHD_DaemonInfo *info;
    int rc, grc;

    if ((rc = split_addr(srv->cfg->addr, host, sizeof(host), port, sizeof(port), err)))
        return rc;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | (host[0] ? 0 : AI_PASSIVE);
    grc = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
    if (grc)
        return sw_error_set(err, SW_EINVAL, "listen address '%s': %s", srv->cfg->addr,
                            gai_strerror(grc));
    for (const struct addrinfo *ai = res; ai && !srv->mhd; ai = ai->ai_next)
        srv->mhd = start_mhd(srv, ai);
    freeaddrinfo(res);
    if (!srv->mhd)
        return sw_error_set(err, SW_EIO, "cannot listen on '%s': %s", srv->cfg->addr,
                            srv->start_msg[0] ? srv->start_msg : "libmicrohttpd failed to start");
    info = MHD_get_daemon_info(srv->mhd, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = info ? info->port : 0;
    return SW_OK;
}

static void init_stats(struct sw_http_server *srv)
{
    for (size_t i = 0; i + 1 < srv->n_stats; i++) {
        const struct sw_http_route *r = route_at(srv, i);
        srv->stats[i].label = r->label ? r->label : r->pattern;
        srv->stats[i].method = r->method;
    }
    srv->stats[srv->n_stats - 1].label = "unmatched";
    srv->stats[srv->n_stats - 1].method = "ANY";
}

static void init_clock(struct sw_http_server *srv)
{
    int64_t unix_ms = sw_unix_ms();
    time_t secs = (time_t)(unix_ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    strftime(srv->started_at, sizeof(srv->started_at), "%Y-%m-%dT%H:%M:%SZ", &tm);
    srv->start_wall = (double)unix_ms / 1e3;
    srv->start_ns = sw_mono_ns();
}

static int check_routes(const struct sw_http_server_config *cfg, struct sw_error *err)
{
    if (cfg->n_routes && !cfg->routes)
        return sw_error_set(err, SW_EINVAL, "routes missing");
    for (size_t i = 0; i < cfg->n_routes; i++) {
        const struct sw_http_route *r = &cfg->routes[i];
        if (!r->method || !r->pattern || !r->handler)
            return sw_error_set(err, SW_EINVAL, "route %zu: method, pattern and handler are required", i);
    }
    return SW_OK;
}

int sw_http_server_start(const struct sw_http_server_config *cfg, struct sw_http_server **out,
                         struct sw_error *err)
{
    struct sw_http_server *srv;
    int rc;

    if (!cfg || !out)
        return sw_error_set(err, SW_EINVAL, "server config missing");
    if ((rc = check_routes(cfg, err)))
        return rc;
    srv = calloc(1, sizeof(*srv));
    if (!srv)
        return sw_error_set(err, SW_ENOMEM, "out of memory");
    srv->cfg = cfg;
    srv->max_body = cfg->max_body ? cfg->max_body : DEFAULT_MAX_BODY;
    srv->builtin[0] = (struct sw_http_route){ "GET", "/health", SW_ROUTE_EXACT, handle_health,
                                              "/health", 0 };
    srv->builtin[1] = (struct sw_http_route){ "GET", "/metrics", SW_ROUTE_EXACT, handle_metrics,
                                              "/metrics", 0 };
    srv->n_stats = cfg->n_routes + N_BUILTIN + 1;
    srv->stats = calloc(srv->n_stats, sizeof(*srv->stats));
    pthread_mutex_init(&srv->log_lock, NULL);
    if (!srv->stats) {
        rc = sw_error_set(err, SW_ENOMEM, "out of memory");
        goto fail;
    }
    init_stats(srv);
    init_clock(srv);
    if ((rc = listen_on(srv, err)))
        goto fail;
    atomic_store(&srv->running, true);
    *out = srv;
    return SW_OK;
fail:
    pthread_mutex_destroy(&srv->log_lock);
    free(srv->stats);
    free(srv);
    return rc;
}

uint16_t sw_http_server_port(const struct sw_http_server *srv)
{
    return srv ? srv->port : 0;
}

void sw_http_server_stop(struct sw_http_server *srv)
{
    if (!srv)
        return;
    MHD_stop_daemon(srv->mhd);
    pthread_mutex_destroy(&srv->log_lock);
    free(srv->stats);
    free(srv);
}

/* ---------- request helpers ---------- */

const char *sw_http_header(const struct sw_http_request *req, const char *name)
{
    const struct req_state *st = req ? req->priv : NULL;
    if (!st || !name)
        return NULL;
    return MHD_lookup_connection_value(st->conn, MHD_HEADER_KIND, name);
}

void sw_http_client_ip(const struct sw_http_request *req, char *out, size_t cap)
{
    const struct req_state *st = req ? req->priv : NULL;
    const union MHD_ConnectionInfo *ci =
        st ? MHD_get_connection_info(st->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS) : NULL;
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;

    snprintf(out, cap, "?");
    if (sa && sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)cap);
    else if (sa && sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out, (socklen_t)cap);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes one char of s[0..n) at *i (form rules: '+' is a space); -1 on a bad escape. */
static int decode_at(const char *s, size_t n, size_t *i)
{
    int hi, lo;
    char c = s[*i];
    if (c == '+') {
        (*i)++;
        return ' ';
    }
    if (c != '%') {
        (*i)++;
        return (unsigned char)c;
    }
    if (*i + 2 >= n)
        return -1;
    hi = hexval(s[*i + 1]);
    lo = hexval(s[*i + 2]);
    if (hi < 0 || lo < 0)
        return -1;
    *i += 3;
    return hi * 16 + lo;
}

/* Compares the decoded form of s[0..n) with name; bad escapes never match. */
static bool key_equals(const char *s, size_t n, const char *name)
{
    size_t i = 0;
    while (i < n) {
        int c = decode_at(s, n, &i);
        if (c < 0 || *name == '\0' || (unsigned char)*name != c)
            return false;
        name++;
    }
    return *name == '\0';
}

static int decode_value(const char *s, size_t n, char *out, size_t cap)
{
    size_t i = 0, o = 0;
    while (i < n) {
        int c = decode_at(s, n, &i);
        if (c <= 0)
            return SW_EINVAL; /* bad escape, or %00 which would silently truncate */
        if (o + 1 >= cap)
            return SW_ERANGE;
        out[o++] = (char)c;
    }
    if (o >= cap)
        return SW_ERANGE;
    out[o] = '\0';
    return SW_OK;
}

int sw_http_query(const struct sw_http_request *req, const char *name, char *out, size_t cap)
{
    const char *q = req && req->target ? strchr(req->target, '?') : NULL;
    if (!q || !name || !out || !cap)
        return SW_ENOTFOUND;
    for (q++; *q;) {
        size_t len = strcspn(q, "&"), klen = strcspn(q, "=");
        if (klen > len)
            klen = len;
        if (len && key_equals(q, klen, name)) {
            size_t vstart = klen < len ? klen + 1 : len;
            return decode_value(q + vstart, len - vstart, out, cap);
        }
        q += len;
        if (*q == '&')
            q++;
    }
    return SW_ENOTFOUND;
}

/* ---------- replies ---------- */

void sw_http_reply_json(struct sw_http_response *resp, int status, struct json_object *obj)
{
    size_t len = 0;
    const char *s = sw_json_compact(obj, &len);
    free(resp->body);
    resp->body = s ? malloc(len + 1) : NULL;
    if (resp->body) {
        memcpy(resp->body, s, len + 1);
        resp->body_len = len;
        resp->status = status;
    } else {
        resp->body_len = 0;
        resp->status = 500;
    }
    resp->content_type = "application/json";
    json_object_put(obj);
}

void sw_http_reply_error(struct sw_http_response *resp, int status, const char *code,
                         const char *fmt, ...)
{
    char msg[512];
    struct json_object *obj = json_object_new_object(), *e = json_object_new_object();
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (!obj || !e) {
        json_object_put(obj);
        json_object_put(e);
        static const char oom[] = "{\"error\":{\"code\":\"internal_error\"}}";
        sw_http_reply_text(resp, status, "application/json", oom, sizeof(oom) - 1);
        return;
    }
    json_object_object_add(e, "code", json_object_new_string(code ? code : "error"));
    json_object_object_add(e, "message", json_object_new_string(msg));
    json_object_object_add(obj, "error", e);
    sw_http_reply_json(resp, status, obj);
    /* Keep the intended status even if serialising ran out of memory. */
    resp->status = status;
}

void sw_http_reply_store_error(struct sw_http_response *resp, const struct sw_error *err)
{
    sw_log_warn("database: %s", err && err->msg[0] ? err->msg : "unavailable");
    sw_http_reply_error(resp, 503, "database_unavailable", "the database is unavailable; retry later");
}

void sw_http_reply_text(struct sw_http_response *resp, int status, const char *content_type,
                        const char *text, size_t len)
{
    free(resp->body);
    resp->body = malloc(len + 1);
    resp->status = resp->body ? status : 500;
    resp->body_len = resp->body ? len : 0;
    if (resp->body) {
        if (len)
            memcpy(resp->body, text, len);
        resp->body[len] = '\0';
    }
    resp->content_type = content_type;
}

int sw_http_query_uint(const struct sw_http_request *req, const char *name, unsigned long min,
                       unsigned long max, unsigned long dflt, unsigned long *out)
{
    char buf[32];
    uint64_t v;
    int rc = sw_http_query(req, name, buf, sizeof(buf));
    if (rc == SW_ENOTFOUND) {
        *out = dflt;
        return SW_OK;
    }
    if (rc || sw_parse_u64(buf, min, max, &v))
        return SW_EINVAL;
    *out = (unsigned long)v;
    return SW_OK;
}
