/* api.c — the visor's local REST API (docs/visor.md "Local API"), on api.listen.
 *
 * Access: the common HTTP layer checks Host against allowed_hosts and, with browser_guard,
 * Origin on mutations and the body's Content-Type, then calls authorize(), which wants the
 * bearer token of data_dir/api-token on everything but GET /health (/metrics included).
 *
 * Handlers run on libmicrohttpd's threads. They validate input, then hand a command to the
 * loop thread (cmdq.c) and wait for its reply with a deadline, so they never touch loop
 * state themselves. GET /api/tpdisc proxies one lookup to the transport discovery from
 * the handler's thread (a blocking call, but never on the loop). */
#include "visor/router.h"
#include "visor/parse.h"
#include "common/config.h"
#include "common/http_client.h"
#include "common/http_server.h"
#include "common/json.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/num.h"
#include "common/version.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define API_MAX_DISCARD (64ull << 30)

static void reply_cmd(struct sw_http_request *req, struct sw_http_response *resp, struct visor_cmd *c,
                      int timeout_ms)
{
    struct visor *v = req->app;
    int rc = visor_cmdq_call(&v->q, c, timeout_ms);

    if (rc == SW_ETIMEDOUT) {
        sw_http_reply_error(resp, 504, "timeout", "the visor did not answer within %d ms", timeout_ms);
    } else if (rc) {
        sw_http_reply_error(resp, 503, "shutting_down", "the visor is shutting down");
    } else {
        sw_http_reply_json(resp, c->status, c->body);
        c->body = NULL;
    }
    visor_cmd_release(&v->q, c);
}

static struct visor_cmd *new_cmd(struct sw_http_response *resp, enum visor_cmd_kind kind)
{
    struct visor_cmd *c = visor_cmd_new(kind);
    if (!c)
        sw_http_reply_error(resp, 500, "internal_error", "out of memory");
    return c;
}

static void handle_summary(struct sw_http_request *req, struct sw_http_response *resp)
{
    struct visor_cmd *c = new_cmd(resp, VISOR_CMD_SUMMARY);
    if (c)
        reply_cmd(req, resp, c, VISOR_CMD_TIMEOUT_MS);
}

static void handle_list(struct sw_http_request *req, struct sw_http_response *resp)
{
    struct visor_cmd *c = new_cmd(resp, VISOR_CMD_LIST);
    if (c)
        reply_cmd(req, resp, c, VISOR_CMD_TIMEOUT_MS);
}

/* Parses the body of POST /api/transports into c; replies 400 on failure. */
static int parse_add(const struct sw_http_request *req, struct sw_http_response *resp, struct visor_cmd *c)
{
    struct visor_api_add_request r;
    struct sw_error err = { 0 };
    const char *code = "invalid_body";
    int rc = visor_api_parse_add(req->body, req->body_len, &r, &code, &err);

    if (rc) {
        sw_http_reply_error(resp, 400, code, "%s", err.msg);
        return rc;
    }
    c->pk = r.remote;
    c->type = r.kind;
    snprintf(c->addr, sizeof(c->addr), "%s", r.addr);
    return SW_OK;
}

static void handle_add(struct sw_http_request *req, struct sw_http_response *resp)
{
    struct visor *v = req->app;
    struct visor_cmd *c = new_cmd(resp, VISOR_CMD_ADD);

    if (!c)
        return;
    c->type = VISOR_TP_STCP;
    if (parse_add(req, resp, c)) {
        visor_cmd_release(&v->q, c);
        return;
    }
    reply_cmd(req, resp, c, VISOR_ADD_TIMEOUT_MS);
}

/* "<uuid>" or "<uuid>/<suffix>": parses the ID and checks the suffix. */
static int parse_id_param(const struct sw_http_request *req, struct sw_http_response *resp,
                          const char *suffix, struct sw_uuid *id)
{
    char buf[SW_UUID_STR_LEN + 1];
    size_t n = strcspn(req->param, "/");
    struct sw_error err = { 0 };

    if (strcmp(req->param + n, suffix) != 0) {
        sw_http_reply_error(resp, 404, "not_found", "no such endpoint");
        return SW_ENOTFOUND;
    }
    if (n != SW_UUID_STR_LEN) {
        sw_http_reply_error(resp, 400, "invalid_transport_id", "'%.*s' is not a transport ID (UUID)",
                            (int)(n > 64 ? 64 : n), req->param);
        return SW_EINVAL;
    }
    memcpy(buf, req->param, n);
    buf[n] = '\0';
    if (sw_uuid_parse(id, buf, "id", &err)) {
        sw_http_reply_error(resp, 400, "invalid_transport_id", "%s", err.msg);
        return SW_EINVAL;
    }
    return SW_OK;
}

static void id_cmd(struct sw_http_request *req, struct sw_http_response *resp, enum visor_cmd_kind kind,
                   const char *suffix)
{
    struct visor *v = req->app;
    struct sw_uuid id;
    struct visor_cmd *c;

    if (parse_id_param(req, resp, suffix, &id) || !(c = new_cmd(resp, kind)))
        return;
    c->id = id;
    if (kind == VISOR_CMD_DISCARD) {
        struct sw_error err = { 0 };
        if (visor_api_parse_discard(req->body, req->body_len, API_MAX_DISCARD, &c->n, &err)) {
            sw_http_reply_error(resp, 400, "invalid_body", "%s", err.msg);
            visor_cmd_release(&v->q, c);
            return;
        }
    }
    reply_cmd(req, resp, c, VISOR_CMD_TIMEOUT_MS);
}

static void handle_get(struct sw_http_request *req, struct sw_http_response *resp)
{
    id_cmd(req, resp, VISOR_CMD_GET, "");
}

static void handle_remove(struct sw_http_request *req, struct sw_http_response *resp)
{
    id_cmd(req, resp, VISOR_CMD_REMOVE, "");
}

static void handle_discard(struct sw_http_request *req, struct sw_http_response *resp)
{
    id_cmd(req, resp, VISOR_CMD_DISCARD, "/discard");
}

/* GET /api/tpdisc?id=ID | ?pk=PK: the transport discovery's answer, passed through. */
static void handle_tpdisc(struct sw_http_request *req, struct sw_http_response *resp)
{
    struct visor *v = req->app;
    struct sw_http_client_opts opts = { .connect_timeout_ms = 3000, .timeout_ms = 5000,
                                        .max_response = 4u << 20 };
    struct sw_http_result res = { 0 };
    struct sw_error err = { 0 };
    struct sw_http_client *http = NULL;
    struct json_object *body = NULL;
    struct sw_uuid id;
    struct sw_pk pk;
    char idq[64], pkq[128], url[VISOR_URL_MAX + 256];
    bool has_id = sw_http_query(req, "id", idq, sizeof(idq)) == SW_OK;
    bool has_pk = sw_http_query(req, "pk", pkq, sizeof(pkq)) == SW_OK;

    if (has_id == has_pk) {
        sw_http_reply_error(resp, 400, "invalid_query", "give exactly one of ?id=ID or ?pk=PK");
        return;
    }
    if (has_id && sw_uuid_parse(&id, idq, "id", &err)) {
        sw_http_reply_error(resp, 400, "invalid_transport_id", "%s", err.msg);
        return;
    }
    if (has_pk && sw_pk_from_hex(&pk, pkq, "pk", &err)) {
        sw_http_reply_error(resp, 400, "invalid_public_key", "%s", err.msg);
        return;
    }
    snprintf(url, sizeof(url), "%s/transports/%s:%s", v->cfg.tpd_url, has_id ? "id" : "edge",
             has_id ? idq : pkq);
    if (!(http = sw_http_client_new(&opts))) {
        sw_http_reply_error(resp, 500, "internal_error", "out of memory");
        return;
    }
    if (sw_http_do(http, "GET", url, NULL, NULL, 0, &res, &err))
        sw_http_reply_error(resp, 502, "discovery_unreachable", "%s", err.msg);
    else if (sw_json_parse(res.body, res.body_len, &body, &err))
        sw_http_reply_error(resp, 502, "discovery_error", "HTTP %ld without JSON", res.status);
    else
        sw_http_reply_json(resp, (int)res.status, body);
    sw_http_result_free(&res);
    sw_http_client_free(http);
}

/* ---- routes (docs/routing.md): the rule table, read and pruned through the loop ---------- */

static void call_cmd(struct sw_http_request *req, struct sw_http_response *resp,
                     void (*fn)(struct visor *, struct visor_cmd *), uint64_t n)
{
    struct visor_cmd *c = new_cmd(resp, VISOR_CMD_CALL);
    if (!c)
        return;
    c->fn = fn;
    c->n = n;
    reply_cmd(req, resp, c, VISOR_CMD_TIMEOUT_MS);
}

static void handle_routes(struct sw_http_request *req, struct sw_http_response *resp)
{
    call_cmd(req, resp, visor_router_cmd_list, 0);
}

static int parse_rid(const struct sw_http_request *req, struct sw_http_response *resp, uint64_t *rid)
{
    uint64_t x;

    if (sw_parse_u64(req->param, 1, UINT32_MAX, &x)) {
        sw_http_reply_error(resp, 400, "invalid_route_id", "'%.32s' is not a route ID (1..4294967295)",
                            req->param);
        return SW_EINVAL;
    }
    *rid = x;
    return SW_OK;
}

static void handle_route_get(struct sw_http_request *req, struct sw_http_response *resp)
{
    uint64_t rid;
    if (parse_rid(req, resp, &rid) == SW_OK)
        call_cmd(req, resp, visor_router_cmd_get, rid);
}

static void handle_route_delete(struct sw_http_request *req, struct sw_http_response *resp)
{
    uint64_t rid;
    if (parse_rid(req, resp, &rid) == SW_OK)
        call_cmd(req, resp, visor_router_cmd_delete, rid);
}

/* ---- apps: GET /api/apps, POST /api/apps/{name}/start|stop|autostart ---------------------- */

static void handle_apps(struct sw_http_request *req, struct sw_http_response *resp)
{
    call_cmd(req, resp, visor_apps_cmd_list, 0);
}

static void handle_app_action(struct sw_http_request *req, struct sw_http_response *resp)
{
    static const char *const actions[] = { "start", "stop", "autostart" };
    struct visor *v = req->app;
    const char *slash = strchr(req->param, '/');
    size_t nlen = slash ? (size_t)(slash - req->param) : 0;
    struct visor_cmd *c;
    int act = -1;

    for (int i = 0; slash && i < 3; i++)
        if (strcmp(slash + 1, actions[i]) == 0)
            act = i;
    if (act < 0 || nlen == 0 || nlen >= VISOR_APP_NAME_MAX) {
        sw_http_reply_error(resp, 404, "not_found", "no such endpoint: POST /api/apps/{name}/start|stop|autostart");
        return;
    }
    if (!(c = new_cmd(resp, VISOR_CMD_CALL)))
        return;
    c->fn = visor_apps_cmd_action;
    c->n = (uint64_t)act;
    memcpy(c->why, req->param, nlen);
    c->why[nlen] = '\0';
    if (act == 2) {
        struct json_object *root = NULL;
        bool on = false;
        if (sw_json_parse(req->body, req->body_len, &root, NULL) ||
            sw_json_get_bool(root, "auto_start", "", &on, NULL)) {
            sw_http_reply_error(resp, 400, "invalid_body", "the body must be {\"auto_start\": true|false}");
            json_object_put(root);
            visor_cmd_release(&v->q, c);
            return;
        }
        json_object_put(root);
        c->type = on ? VISOR_TP_DMSG : VISOR_TP_STCP; /* 1 / 0 */
    }
    reply_cmd(req, resp, c, VISOR_CMD_TIMEOUT_MS);
}

/* ---- GET /api/apps/{name}/logs?lines=N: the tail of data_dir/NAME.log -------------------- */

#define API_LOG_MAX_LINES 1000
#define API_LOG_MAX_BYTES (256u << 10)

static bool app_configured(const struct visor *v, const char *name)
{
    for (size_t i = 0; i < v->cfg.n_apps; i++)
        if (strcmp(v->cfg.apps[i].name, name) == 0)
            return true;
    return false;
}

/* Reads at most the last API_LOG_MAX_BYTES of path into buf (caller frees); *cut when the
 * file is longer (the first, partial line is then dropped by the caller). */
static int read_tail(const char *path, char **buf, size_t *len, bool *cut)
{
    FILE *f = fopen(path, "rb");
    long size;

    *buf = NULL;
    *len = 0;
    *cut = false;
    if (!f)
        return SW_ENOTFOUND;
    if (fseek(f, 0, SEEK_END) || (size = ftell(f)) < 0)
        goto fail;
    *cut = (unsigned long)size > API_LOG_MAX_BYTES;
    if (fseek(f, *cut ? size - (long)API_LOG_MAX_BYTES : 0, SEEK_SET) ||
        !(*buf = malloc(API_LOG_MAX_BYTES + 1)))
        goto fail;
    *len = fread(*buf, 1, API_LOG_MAX_BYTES, f);
    (*buf)[*len] = '\0';
    fclose(f);
    return SW_OK;
fail:
    fclose(f);
    return SW_EIO;
}

/* The last n (<= API_LOG_MAX_LINES) lines of text[len] as a JSON array of strings, oldest
 * first; with cut the first, partial line is dropped. */
static struct json_object *last_lines(const char *text, size_t len, bool cut, unsigned long n)
{
    struct json_object *arr = json_object_new_array();
    size_t starts[API_LOG_MAX_LINES], ends[API_LOG_MAX_LINES];
    size_t begin = 0, end = len, line = 0, k = 0;
    const char *nl = NULL;

    if (cut && (nl = memchr(text, '\n', len)))
        begin = (size_t)(nl - text) + 1;
    if (end > begin && text[end - 1] == '\n')
        end--; /* the last newline ends the last line */
    if (cut && !nl)
        begin = end;
    line = begin;
    for (size_t i = begin; begin < end && i <= end; i++) {
        if (i < end && text[i] != '\n')
            continue;
        starts[k % n] = line;
        ends[k % n] = i;
        k++;
        line = i + 1;
    }
    for (size_t j = k > n ? k - n : 0; j < k; j++)
        json_object_array_add(arr, json_object_new_string_len(text + starts[j % n],
                                                              (int)(ends[j % n] - starts[j % n])));
    return arr;
}

static void handle_app_logs(struct sw_http_request *req, struct sw_http_response *resp)
{
    struct visor *v = req->app;
    const char *slash = strchr(req->param, '/');
    size_t nlen = slash ? (size_t)(slash - req->param) : 0;
    char name[VISOR_APP_NAME_MAX], path[PATH_MAX + VISOR_APP_NAME_MAX + 8], *text = NULL;
    struct json_object *o;
    unsigned long n = 100;
    size_t len = 0;
    bool cut = false;

    if (!slash || strcmp(slash, "/logs") != 0 || nlen == 0 || nlen >= sizeof(name)) {
        sw_http_reply_error(resp, 404, "not_found", "no such endpoint: GET /api/apps/{name}/logs");
        return;
    }
    memcpy(name, req->param, nlen);
    name[nlen] = '\0';
    if (!app_configured(v, name)) {
        sw_http_reply_error(resp, 404, "not_found", "no app named '%s' in the config", name);
        return;
    }
    if (sw_http_query_uint(req, "lines", 1, API_LOG_MAX_LINES, 100, &n)) {
        sw_http_reply_error(resp, 400, "invalid_lines", "lines must be 1..%d", API_LOG_MAX_LINES);
        return;
    }
    snprintf(path, sizeof(path), "%s/%s.log", v->cfg.data_dir, name);
    if (read_tail(path, &text, &len, &cut) == SW_EIO) {
        sw_http_reply_error(resp, 500, "internal_error", "cannot read the app's log");
        return;
    }
    o = json_object_new_object();
    json_object_object_add(o, "app", json_object_new_string(name));
    json_object_object_add(o, "lines", last_lines(text ? text : "", len, cut, n));
    free(text);
    sw_http_reply_json(resp, 200, o);
}

static void write_metrics(void *app, struct sw_buf *out)
{
    struct visor *v = app;

    sw_metrics_write_header(out, "visor_transports", "gauge", "Transports known, by state");
    sw_metrics_write_sample(out, "visor_transports", "state=\"up\"", (double)v->m_up);
    sw_metrics_write_sample(out, "visor_transports", "state=\"not_up\"", (double)(v->m_total - v->m_up));
    sw_metrics_write_header(out, "visor_transport_bytes_total", "counter", "Bytes over transports");
    sw_metrics_write_sample(out, "visor_transport_bytes_total", "dir=\"sent\"", (double)v->m_sent);
    sw_metrics_write_sample(out, "visor_transport_bytes_total", "dir=\"received\"", (double)v->m_received);
    sw_metrics_write_header(out, "visor_dials_total", "counter", "Transport dials started");
    sw_metrics_write_sample(out, "visor_dials_total", NULL, (double)v->m_dials);
    sw_metrics_write_header(out, "visor_handshake_failures_total", "counter", "Failed handshakes");
    sw_metrics_write_sample(out, "visor_handshake_failures_total", NULL, (double)v->m_handshake_failures);
    sw_metrics_write_header(out, "visor_membership_refusals_total", "counter",
                            "Transport links refused or closed because the peer is not a member");
    sw_metrics_write_sample(out, "visor_membership_refusals_total", NULL, (double)v->m_refused_members);
    visor_stcp_write_metrics(v, out);
    visor_router_write_metrics(v, out);
}

/* ---- access (docs/visor.md "Access to the local API") ------------------------------------ */

/* Loopback names, the listen host when it names one address, then api.allowed_hosts (the
 * config validated them, so only a lack of memory fails). The caller frees the list. */
static const char **build_allowed_hosts(const struct visor *v)
{
    const char *extras[VISOR_API_HOSTS_MAX];

    for (size_t i = 0; i < v->cfg.n_api_allowed_hosts; i++)
        extras[i] = v->cfg.api_allowed_hosts[i];
    return sw_http_loopback_hosts(v->cfg.api_listen, extras, v->cfg.n_api_allowed_hosts);
}

/* "Bearer <token>" (scheme case-blind, as RFC 7235 has it) holding exactly our token; the
 * token itself is compared in constant time. */
static bool bearer_matches(const char *authorization, const char *token)
{
    const char *p = authorization;

    if (!p || strncasecmp(p, "Bearer ", 7) != 0)
        return false;
    p += 7;
    while (*p == ' ')
        p++;
    return strlen(p) == VISOR_API_TOKEN_HEX && sodium_memcmp(p, token, VISOR_API_TOKEN_HEX) == 0;
}

/* Every request but GET /health carries the token of data_dir/api-token. */
static int authorize(void *app, const struct sw_http_request *req, struct sw_http_response *resp)
{
    const struct visor *v = app;
    const char *given = sw_http_header(req, "Authorization");
    char client[64];

    if (strcmp(req->method, "GET") == 0 && strcmp(req->path, "/health") == 0)
        return SW_OK;
    if (bearer_matches(given, v->api_token))
        return SW_OK;
    /* who knocked, never what they sent (it may be a near miss of the token) */
    sw_http_client_ip(req, client, sizeof(client));
    sw_log_info("API: refused %s %.200s from %s: %s", req->method, req->path, client,
                given ? "wrong API token" : "no API token");
    resp->www_authenticate = "Bearer realm=\"skywire-visor\"";
    sw_http_reply_error(resp, 401, "unauthenticated",
                        "send the visor's API token (its data_dir/api-token) as Authorization: "
                        "Bearer TOKEN; skywire-cli --config FILE does");
    return SW_EPERM;
}

static const struct sw_http_route routes[] = {
    { "GET", "/api/summary", SW_ROUTE_EXACT, handle_summary, NULL, 0 },
    { "GET", "/api/transports", SW_ROUTE_EXACT, handle_list, NULL, 0 },
    { "POST", "/api/transports", SW_ROUTE_EXACT, handle_add, NULL, 4096 },
    { "GET", "/api/transports/", SW_ROUTE_PREFIX, handle_get, "/api/transports/{id}", 0 },
    { "DELETE", "/api/transports/", SW_ROUTE_PREFIX, handle_remove, "/api/transports/{id}", 0 },
    { "POST", "/api/transports/", SW_ROUTE_PREFIX, handle_discard, "/api/transports/{id}/discard", 4096 },
    { "GET", "/api/tpdisc", SW_ROUTE_EXACT, handle_tpdisc, NULL, 0 },
    { "GET", "/api/routes", SW_ROUTE_EXACT, handle_routes, NULL, 0 },
    { "GET", "/api/routes/", SW_ROUTE_PREFIX, handle_route_get, "/api/routes/{rid}", 0 },
    { "DELETE", "/api/routes/", SW_ROUTE_PREFIX, handle_route_delete, "/api/routes/{rid}", 0 },
    { "GET", "/api/apps", SW_ROUTE_EXACT, handle_apps, NULL, 0 },
    { "POST", "/api/apps/", SW_ROUTE_PREFIX, handle_app_action, "/api/apps/{name}/{action}", 4096 },
    { "GET", "/api/apps/", SW_ROUTE_PREFIX, handle_app_logs, "/api/apps/{name}/logs", 0 },
};

static struct sw_http_server_config api_cfg;
static const char **allowed_hosts; /* owned; freed by visor_api_stop */

int visor_api_start(struct visor *v, struct sw_error *err)
{
    api_cfg = (struct sw_http_server_config){
        .addr = v->cfg.api_listen,
        .service = "skywire-visor",
        .version = SW_VERSION,
        .threads = 4,
        /* some requests wait (adding a transport: up to 20 s), also relayed ones from a
         * hypervisor: a thread each, so they cannot hold up the others */
        .thread_per_connection = true,
        .max_body = 64 * 1024,
        .max_connections = 128,
        .routes = routes,
        .n_routes = sizeof(routes) / sizeof(routes[0]),
        .app = v,
        .write_metrics = write_metrics,
        .authorize = authorize,
        .allowed_hosts = allowed_hosts = build_allowed_hosts(v),
        .browser_guard = true,
    };
    if (!allowed_hosts)
        return sw_error_set(err, SW_ENOMEM, "out of memory");
    return sw_http_server_start(&api_cfg, &v->api, err);
}

void visor_api_stop(struct visor *v)
{
    sw_http_server_stop(v->api);
    v->api = NULL;
    free(allowed_hosts);
    allowed_hosts = NULL;
}
