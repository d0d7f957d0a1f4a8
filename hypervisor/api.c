/* api.c — the hypervisor's REST API and web page (docs/hypervisor.md "REST API").
 *
 * A browser-facing server (common/http_server.h): every request needs a Host of the
 * allow-list (loopback names, --addr's host, --allowed-host), every mutation a same-site
 * Origin (when the browser sends one) and a JSON body. The layer checks that before any
 * handler here runs.
 *
 * Everything under /api but login needs a session (auth.c); mutations need the CSRF
 * header. /api/visors/{pk}/... is relayed over the visor's link to its own local API
 * (/api/...) and answered with the visor's status and body unchanged; a visor without a
 * link is 503 visor_offline, one that does not answer in time 504 visor_timeout. Other
 * GET paths serve the embedded page (web.h). /health and /metrics come from the layer;
 * /metrics needs a session too (authorize below): its request counts by route and status and
 * hv_sessions would tell anyone who can reach the port when the admin logs in and works. */
#include "hypervisor/hv.h"
#include "hypervisor/web.h"
#include "common/http_server.h"
#include "common/json.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/version.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- visors -------------------------------------------------------------------------------- */

static struct json_object *visor_json(struct hv *hv, size_t i, struct json_object *summary)
{
    struct json_object *o = json_object_new_object();
    struct hv_visor_state st;

    hv_visor_state(hv, i, &st);
    json_object_object_add(o, "pk", json_object_new_string(hv->visors[i].pk_hex));
    json_object_object_add(o, "online", json_object_new_boolean(st.online));
    json_object_object_add(o, "remote_addr", st.online ? json_object_new_string(st.remote_addr) : NULL);
    json_object_object_add(o, "connected_since", st.online ? json_object_new_int64(st.connected_since) : NULL);
    json_object_object_add(o, "summary", summary);
    return o;
}

/* GET /api/visors: asks every online visor for its summary at once, then collects. */
static void handle_visors(struct sw_http_request *req, struct sw_http_response *resp)
{
    struct hv *hv = req->app;
    struct hv_pending **p;
    struct json_object *arr, *summary;
    int64_t deadline = sw_deadline_ms(HV_SUMMARY_TIMEOUT_MS);
    char *body;
    size_t len;
    int status;

    if (!hv_auth_check(req, resp))
        return;
    if (!(p = calloc(hv->n_visors + 1, sizeof(*p)))) {
        sw_http_reply_error(resp, 500, "internal_error", "out of memory");
        return;
    }
    for (size_t i = 0; i < hv->n_visors; i++)
        if (hv_relay_send(hv, i, "GET", "/api/summary", NULL, 0, &p[i]))
            p[i] = NULL;
    arr = json_object_new_array();
    for (size_t i = 0; i < hv->n_visors; i++) {
        summary = NULL;
        body = NULL;
        /* one deadline for all: the visors answer in parallel */
        if (p[i] && hv_relay_wait(hv, p[i], sw_ms_left(deadline), &status, &body, &len) == SW_OK &&
            status == 200)
            sw_json_parse(body, len, &summary, NULL);
        free(body);
        json_object_array_add(arr, visor_json(hv, i, summary));
    }
    free(p);
    sw_http_reply_json(resp, 200, arr);
}

/* Which visor API paths a relayed request may reach: /api/visors/{pk}/REST -> /api/REST. */
static bool relay_allowed(const char *method, const char *rest)
{
    static const char *const first[] = { "summary", "transports", "routes", "apps" };
    size_t n = strcspn(rest, "/?");

    if (strcmp(method, "GET") && strcmp(method, "POST") && strcmp(method, "DELETE"))
        return false;
    for (size_t i = 0; i < sizeof(first) / sizeof(first[0]); i++)
        if (n == strlen(first[i]) && strncmp(rest, first[i], n) == 0)
            return !strstr(rest, "..") && !strstr(rest, "//");
    return false;
}

/* The link carries only printable ASCII paths (hv_proto.h). */
static bool printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
            return false;
    return true;
}

static void reply_relay_error(struct sw_http_response *resp, int rc, const char *pk_hex)
{
    if (rc == SW_ETIMEDOUT)
        sw_http_reply_error(resp, 504, "visor_timeout", "visor %s did not answer in time", pk_hex);
    else if (rc == SW_ERANGE)
        sw_http_reply_error(resp, 503, "visor_busy", "too many requests in flight to visor %s", pk_hex);
    else
        sw_http_reply_error(resp, 503, "visor_offline", "visor %s is not connected", pk_hex);
}

/* /api/visors/{pk}[/REST][?query] */
static void handle_visor(struct sw_http_request *req, struct sw_http_response *resp)
{
    struct hv *hv = req->app;
    const char *rest = req->param + strcspn(req->param, "/"), *q = strchr(req->target, '?');
    char hex[SW_PK_HEX_LEN + 1], path[SW_HV_MAX_PATH + 1];
    struct sw_error err = { 0 };
    struct sw_pk pk;
    char *body = NULL;
    size_t len = 0;
    int idx, status = 0, rc, timeout = HV_REQ_TIMEOUT_MS;

    if (!hv_auth_check(req, resp))
        return;
    if ((size_t)(rest - req->param) != SW_PK_HEX_LEN) {
        sw_http_reply_error(resp, 400, "invalid_public_key", "'%.80s' is not a public key", req->param);
        return;
    }
    memcpy(hex, req->param, SW_PK_HEX_LEN);
    hex[SW_PK_HEX_LEN] = '\0';
    if (sw_pk_from_hex(&pk, hex, "pk", &err)) {
        sw_http_reply_error(resp, 400, "invalid_public_key", "%s", err.msg);
        return;
    }
    if ((idx = hv_visor_find(hv, &pk)) < 0) {
        sw_http_reply_error(resp, 404, "unknown_visor", "visor %s is not managed by this hypervisor", hex);
        return;
    }
    if (*rest == '\0' || strcmp(rest, "/") == 0)
        rest = "/summary";
    if (!relay_allowed(req->method, rest + 1) ||
        snprintf(path, sizeof(path), "/api%s%s", rest, q ? q : "") >= (int)sizeof(path) ||
        !printable(path)) {
        sw_http_reply_error(resp, 404, "not_found", "no such endpoint: %s %.100s", req->method, req->path);
        return;
    }
    if (strcmp(req->method, "POST") == 0 && strcmp(rest, "/transports") == 0)
        timeout = HV_ADD_TP_TIMEOUT_MS;
    rc = hv_relay(hv, (size_t)idx, req->method, path, req->body, req->body_len, timeout, &status, &body, &len);
    if (rc)
        reply_relay_error(resp, rc, hex);
    else if (status < 200) /* 1xx would turn our reply into an interim one (or a protocol switch) */
        sw_http_reply_error(resp, 502, "visor_api_error", "visor %s answered with status %d", hex, status);
    else
        sw_http_reply_text(resp, status, "application/json", body, len);
    free(body);
}

/* ---- the page ------------------------------------------------------------------------------ */

static void handle_web(struct sw_http_request *req, struct sw_http_response *resp)
{
    const unsigned char *data = NULL;
    const char *type = NULL;
    size_t len = 0;

    if (strncmp(req->path, "/api/", 5) == 0 || strcmp(req->path, "/api") == 0 ||
        hv_web_lookup(req->path, &data, &len, &type) != 0) {
        sw_http_reply_error(resp, 404, "not_found", "no such endpoint");
        return;
    }
    sw_http_reply_text(resp, 200, type, (const char *)data, len);
    /* the page ships with the binary: revalidate after an upgrade; nothing but its own files */
    resp->cache_control = "no-cache";
    resp->csp = "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
}

static void handle_api_unknown(struct sw_http_request *req, struct sw_http_response *resp)
{
    sw_http_reply_error(resp, 404, "not_found", "no such endpoint");
}

static void write_metrics(void *app, struct sw_buf *out)
{
    struct hv *hv = app;

    sw_metrics_write_header(out, "hv_visors", "gauge", "Managed visors, by link state");
    sw_metrics_write_sample(out, "hv_visors", "state=\"online\"", (double)hv_visors_online(hv));
    sw_metrics_write_sample(out, "hv_visors", "state=\"offline\"", (double)(hv->n_visors - hv_visors_online(hv)));
    sw_metrics_write_header(out, "hv_relayed_total", "counter", "Requests relayed to visors, by outcome");
    sw_metrics_write_sample(out, "hv_relayed_total", "outcome=\"answered\"", (double)hv->m_relayed);
    sw_metrics_write_sample(out, "hv_relayed_total", "outcome=\"failed\"", (double)hv->m_relay_failed);
    sw_metrics_write_header(out, "hv_links_total", "counter", "Visor links, by outcome");
    sw_metrics_write_sample(out, "hv_links_total", "outcome=\"opened\"", (double)hv->m_links_opened);
    sw_metrics_write_sample(out, "hv_links_total", "outcome=\"refused\"", (double)hv->m_links_refused);
    sw_metrics_write_header(out, "hv_sessions", "gauge", "Live admin sessions");
    sw_metrics_write_sample(out, "hv_sessions", NULL, (double)hv_auth_sessions(hv));
}

/* The layer's hook before every route but /health: /metrics needs a session (GET: no CSRF
 * token); the /api routes check their own, the page and login need none. */
static int authorize(void *app, const struct sw_http_request *req, struct sw_http_response *resp)
{
    (void)app;
    if (strcmp(req->path, "/metrics") != 0)
        return SW_OK;
    return hv_auth_check(req, resp) ? SW_OK : SW_EPERM;
}

static const struct sw_http_route routes[] = {
    { "POST", "/api/login", SW_ROUTE_EXACT, hv_auth_login, NULL, 4096 },
    { "POST", "/api/logout", SW_ROUTE_EXACT, hv_auth_logout, NULL, 4096 },
    { "GET", "/api/session", SW_ROUTE_EXACT, hv_auth_session, NULL, 0 },
    { "POST", "/api/password", SW_ROUTE_EXACT, hv_auth_password, NULL, 4096 },
    { "GET", "/api/visors", SW_ROUTE_EXACT, handle_visors, NULL, 0 },
    { "GET", "/api/visors/", SW_ROUTE_PREFIX, handle_visor, "/api/visors/{pk}/...", 0 },
    { "POST", "/api/visors/", SW_ROUTE_PREFIX, handle_visor, "/api/visors/{pk}/...", 64 * 1024 },
    { "DELETE", "/api/visors/", SW_ROUTE_PREFIX, handle_visor, "/api/visors/{pk}/...", 0 },
    { "GET", "/api/network", SW_ROUTE_EXACT, hv_network_handle, NULL, 0 },
    { "GET", "/api/", SW_ROUTE_PREFIX, handle_api_unknown, "/api/{unknown}", 0 },
    { "GET", "/", SW_ROUTE_PREFIX, handle_web, "/{page}", 0 },
};

static struct sw_http_server_config api_cfg;

static void log_allowed_hosts(const struct hv *hv)
{
    char list[1024] = "";
    size_t n = 0;

    for (size_t i = 0; hv->allowed_hosts[i] && n < sizeof(list); i++)
        n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%s", i ? ", " : "", hv->allowed_hosts[i]);
    sw_log_info("the page and API answer to the host names %s (more with --allowed-host)", list);
}

int hv_api_start(struct hv *hv, struct sw_error *err)
{
    const char *extra[HV_MAX_ALLOWED_HOSTS];
    int rc;

    for (size_t i = 0; i < hv->cfg.n_allowed_hosts; i++)
        extra[i] = hv->cfg.allowed_hosts[i];
    if (!(hv->allowed_hosts = sw_http_loopback_hosts(hv->cfg.addr, extra, hv->cfg.n_allowed_hosts)))
        return sw_error_set(err, SW_ENOMEM, "out of memory");
    api_cfg = (struct sw_http_server_config){
        .addr = hv->cfg.addr,
        .service = "hypervisor",
        .version = SW_VERSION,
        .threads = 8,
        .thread_per_connection = true, /* relays wait up to 25 s for a visor */
        .max_body = 64 * 1024,
        .max_connections = 256,
        .routes = routes,
        .n_routes = sizeof(routes) / sizeof(routes[0]),
        .app = hv,
        .write_metrics = write_metrics,
        .authorize = authorize,
        .allowed_hosts = hv->allowed_hosts,
        .browser_guard = true,
    };
    if ((rc = sw_http_server_start(&api_cfg, &hv->http, err))) {
        free(hv->allowed_hosts);
        hv->allowed_hosts = NULL;
        return rc;
    }
    log_allowed_hosts(hv);
    return SW_OK;
}

void hv_api_stop(struct hv *hv)
{
    sw_http_server_stop(hv->http);
    hv->http = NULL;
    free(hv->allowed_hosts);
    hv->allowed_hosts = NULL;
}
