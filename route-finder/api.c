#include "route-finder/api.h"
#include "common/clock.h"
#include "common/json.h"
#include "common/log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rf_pair {
    struct sw_pk src, dst;
    char src_hex[SW_PK_HEX_LEN + 1], dst_hex[SW_PK_HEX_LEN + 1];
};

struct rf_request {
    struct rf_pair pairs[RF_MAX_PAIRS];
    size_t n;
    unsigned min_hops, max_hops, count;
};

/* One request's working state (on the heap: ~30 KB). */
struct rf_job {
    struct rf_request req;
    struct rf_path paths[RF_MAX_COUNT];
    struct sw_buf out;
    char why[400]; /* the no_route message */
    bool exhausted;
};

/* ---- scratch pool ---------------------------------------------------------------------- */

static struct rf_scratch *pool_get(struct rf_scratch_pool *p)
{
    struct rf_scratch *s = NULL;
    pthread_mutex_lock(&p->mu);
    if (p->n)
        s = p->free[--p->n];
    pthread_mutex_unlock(&p->mu);
    return s ? s : rf_scratch_new();
}

static void pool_put(struct rf_scratch_pool *p, struct rf_scratch *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&p->mu);
    if (p->n < RF_SCRATCH_POOL_MAX) {
        p->free[p->n++] = s;
        s = NULL;
    }
    pthread_mutex_unlock(&p->mu);
    rf_scratch_free(s);
}

void rf_app_init(struct rf_app *app)
{
    pthread_mutex_init(&app->pool.mu, NULL);
}

void rf_app_free(struct rf_app *app)
{
    rf_sync_stop(&app->sync);
    for (size_t i = 0; i < app->pool.n; i++)
        rf_scratch_free(app->pool.free[i]);
    app->pool.n = 0;
    pthread_mutex_destroy(&app->pool.mu);
}

/* ---- parsing ----------------------------------------------------------------------------- */

static int parse_key(struct json_object *v, const char *where, struct sw_pk *pk, char hex[SW_PK_HEX_LEN + 1],
                     struct sw_error *err)
{
    int rc;
    if (!json_object_is_type(v, json_type_string))
        return sw_error_set(err, SW_EINVAL, "%s: must be a public key (%d hex characters)", where, SW_PK_HEX_LEN);
    if ((rc = sw_pk_from_hex(pk, json_object_get_string(v), where, err)))
        return rc;
    sw_pk_to_hex(pk, hex);
    return SW_OK;
}

static bool seen_pair(const struct rf_request *r, const struct rf_pair *p)
{
    for (size_t i = 0; i < r->n; i++)
        if (sw_pk_equal(&r->pairs[i].src, &p->src) && sw_pk_equal(&r->pairs[i].dst, &p->dst))
            return true;
    return false;
}

/* edges[i]: a [src, dst] pair of distinct keys; repeated pairs are answered once. */
static int parse_pair(struct json_object *v, size_t i, struct rf_request *r, const char **code,
                      struct sw_error *err)
{
    struct rf_pair p;
    char where[40];
    int rc;

    *code = "invalid_body";
    if (!json_object_is_type(v, json_type_array) || json_object_array_length(v) != 2)
        return sw_error_set(err, SW_EINVAL, "field 'edges[%zu]' must be a [source, destination] pair of public keys", i);
    *code = "invalid_public_key";
    snprintf(where, sizeof(where), "field 'edges[%zu][0]'", i);
    if ((rc = parse_key(json_object_array_get_idx(v, 0), where, &p.src, p.src_hex, err)))
        return rc;
    snprintf(where, sizeof(where), "field 'edges[%zu][1]'", i);
    if ((rc = parse_key(json_object_array_get_idx(v, 1), where, &p.dst, p.dst_hex, err)))
        return rc;
    *code = "invalid_body";
    if (sw_pk_equal(&p.src, &p.dst))
        return sw_error_set(err, SW_EINVAL, "field 'edges[%zu]': source and destination are the same key", i);
    if (!seen_pair(r, &p))
        r->pairs[r->n++] = p;
    return SW_OK;
}

static int parse_edges(struct json_object *root, struct rf_request *r, const char **code, struct sw_error *err)
{
    struct json_object *edges;
    size_t n;
    int rc;

    *code = "invalid_body";
    if ((rc = sw_json_get_array(root, "edges", "", &edges, err)))
        return rc;
    n = json_object_array_length(edges);
    if (n < 1 || n > RF_MAX_PAIRS)
        return sw_error_set(err, SW_EINVAL, "field 'edges' must hold 1 to %d pairs, not %zu", RF_MAX_PAIRS, n);
    for (size_t i = 0; i < n; i++)
        if ((rc = parse_pair(json_object_array_get_idx(edges, i), i, r, code, err)))
            return rc;
    return SW_OK;
}

/* opts.<name>: absent or null = *out unchanged; otherwise an integer in [min, max]. */
static int parse_opt(struct json_object *opts, const char *name, long min, long max, unsigned *out,
                     struct sw_error *err)
{
    struct json_object *v;
    int64_t x;
    if (!json_object_object_get_ex(opts, name, &v) || json_object_is_type(v, json_type_null))
        return SW_OK;
    x = json_object_get_int64(v);
    if (!json_object_is_type(v, json_type_int) || x < min || x > max)
        return sw_error_set(err, SW_EINVAL, "field 'opts.%s' must be an integer from %ld to %ld", name, min, max);
    *out = (unsigned)x;
    return SW_OK;
}

static int parse_opts(struct json_object *root, struct rf_request *r, struct sw_error *err)
{
    struct json_object *opts;
    bool max_given;
    int rc;

    r->min_hops = 1;
    r->max_hops = 0;
    r->count = 1;
    if (!json_object_object_get_ex(root, "opts", &opts) || json_object_is_type(opts, json_type_null))
        opts = NULL;
    else if (!json_object_is_type(opts, json_type_object))
        return sw_error_set(err, SW_EINVAL, "field 'opts' must be an object");
    if (opts && ((rc = parse_opt(opts, "min_hops", 0, RF_MAX_HOPS, &r->min_hops, err)) ||
                 (rc = parse_opt(opts, "max_hops", 1, RF_MAX_HOPS, &r->max_hops, err)) ||
                 (rc = parse_opt(opts, "count", 1, RF_MAX_COUNT, &r->count, err))))
        return rc;
    if (r->min_hops == 0) /* "no minimum" (the Go visor sends 0): a route has at least one hop */
        r->min_hops = 1;
    max_given = r->max_hops != 0;
    if (!max_given) /* a min_hops above the default raises the default */
        r->max_hops = r->min_hops > RF_DEFAULT_MAX_HOPS ? r->min_hops : RF_DEFAULT_MAX_HOPS;
    if (r->min_hops > r->max_hops)
        return sw_error_set(err, SW_EINVAL, "field 'opts.min_hops' (%u) is above 'opts.max_hops' (%u)",
                            r->min_hops, r->max_hops);
    return SW_OK;
}

static int parse_request(const char *body, size_t len, struct rf_request *r, const char **code,
                         struct sw_error *err)
{
    struct json_object *root = NULL;
    int rc;

    *code = "invalid_json";
    if ((rc = sw_json_parse(body, len, &root, err)))
        return rc;
    *code = "invalid_body";
    if (!json_object_is_type(root, json_type_object))
        rc = sw_error_set(err, SW_EINVAL, "the body must be an object: {\"edges\":[[src,dst],...],\"opts\":{...}}");
    else if ((rc = parse_edges(root, r, code, err)) == SW_OK && (rc = parse_opts(root, r, err)))
        *code = "invalid_opts";
    json_object_put(root);
    return rc;
}

/* ---- writing ----------------------------------------------------------------------------- */

static char *put(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}

#define PUT_LIT(p, lit) put(p, lit, sizeof(lit) - 1)

static int append_hop(struct sw_buf *b, const struct rf_graph *g, uint32_t from, uint32_t to, uint32_t e)
{
    char line[256], *p = line;
    p = PUT_LIT(p, "{\"from\":\"");
    sw_pk_to_hex(&g->pks[from], p);
    p = PUT_LIT(p + SW_PK_HEX_LEN, "\",\"to\":\"");
    sw_pk_to_hex(&g->pks[to], p);
    p = PUT_LIT(p + SW_PK_HEX_LEN, "\",\"t_id\":\"");
    sw_uuid_format(&g->edges[e].id, p);
    p = PUT_LIT(p + SW_UUID_STR_LEN, "\"}");
    return sw_buf_append(b, line, (size_t)(p - line));
}

static int append_path(struct sw_buf *b, const struct rf_graph *g, const struct rf_path *path)
{
    int rc = sw_buf_append(b, "[", 1);
    for (uint32_t k = 0; rc == SW_OK && k < path->len; k++) {
        if (k && (rc = sw_buf_append(b, ",", 1)))
            break;
        rc = append_hop(b, g, path->nodes[k], path->nodes[k + 1], path->edges[k]);
    }
    return rc ? rc : sw_buf_append(b, "]", 1);
}

/* A JSON array of paths, each walked backwards when reverse. */
static int append_paths(struct sw_buf *b, const struct rf_graph *g, const struct rf_path *paths, size_t n,
                        bool reverse)
{
    int rc = sw_buf_append(b, "[", 1);
    for (size_t i = 0; rc == SW_OK && i < n; i++) {
        struct rf_path r;
        if (reverse)
            rf_path_reverse(&paths[i], &r);
        if (i && (rc = sw_buf_append(b, ",", 1)))
            break;
        rc = append_path(b, g, reverse ? &r : &paths[i]);
    }
    return rc ? rc : sw_buf_append(b, "]", 1);
}

/* "src:dst":{"forward":[...],"reverse":[...]}; reverse[i] is forward[i] walked backwards. */
static int append_pair(struct sw_buf *b, const struct rf_graph *g, const struct rf_pair *p,
                       const struct rf_path *paths, size_t n)
{
    int rc = sw_buf_printf(b, "\"%s:%s\":{\"forward\":", p->src_hex, p->dst_hex);
    if (rc == SW_OK && (rc = append_paths(b, g, paths, n, false)) == SW_OK &&
        (rc = sw_buf_append(b, ",\"reverse\":", 11)) == SW_OK)
        rc = append_paths(b, g, paths, n, true);
    return rc ? rc : sw_buf_append(b, "}", 1);
}

/* ---- answering --------------------------------------------------------------------------- */

/* True (with the reason in why) when key idx cannot be part of any route. */
static bool key_unroutable(const struct rf_graph *g, uint32_t idx, const char *hex, int64_t cutoff,
                           bool private_network, char *why, size_t cap)
{
    if (idx == RF_NO_NODE)
        snprintf(why, cap, "key %s has no transports", hex);
    else if (rf_graph_usable_degree(g, idx, cutoff) == 0)
        snprintf(why, cap, "none of key %s's transports is up%s", hex,
                 private_network ? " between members of the network" : "");
    else
        return false;
    return true;
}

/* Paths for one pair into job->paths; SW_ENOTFOUND (job->why says why) when there are none. */
static int route_pair(const struct rf_graph *g, struct rf_scratch *s, struct rf_query *q, bool private_network,
                      const struct rf_pair *p, struct rf_job *job, size_t *n)
{
    char why[200];
    struct rf_search_stats st;
    int rc;

    q->src = rf_graph_find(g, &p->src);
    q->dst = rf_graph_find(g, &p->dst);
    if (key_unroutable(g, q->src, p->src_hex, q->cutoff, private_network, why, sizeof(why)) ||
        key_unroutable(g, q->dst, p->dst_hex, q->cutoff, private_network, why, sizeof(why))) {
        snprintf(job->why, sizeof(job->why), "no route from %s to %s: %s", p->src_hex, p->dst_hex, why);
        return SW_ENOTFOUND;
    }
    if ((rc = rf_search(g, q, s, job->paths, n, &st)))
        return rc;
    job->exhausted |= st.exhausted;
    if (*n == 0) {
        snprintf(job->why, sizeof(job->why), "no route from %s to %s of %u to %u hops over transports that are up%s",
                 p->src_hex, p->dst_hex, q->min_hops, q->max_hops, st.exhausted ? " (search limit reached)" : "");
        return SW_ENOTFOUND;
    }
    return SW_OK;
}

static uint64_t pair_budget(const struct rf_graph *g, size_t pairs)
{
    uint64_t traversal = 2 * (uint64_t)g->n_edges + g->n_nodes + 1;
    uint64_t per_pair = RF_REQUEST_TRAVERSALS / (pairs ? pairs : 1);
    return traversal * (per_pair < RF_PAIR_TRAVERSALS_MIN ? RF_PAIR_TRAVERSALS_MIN : per_pair);
}

static int write_routes(struct rf_app *app, const struct rf_graph *g, struct rf_scratch *s, struct rf_job *job,
                        size_t *paths_out)
{
    const struct rf_request *r = &job->req;
    struct rf_query q = { .min_hops = r->min_hops, .max_hops = r->max_hops, .count = r->count,
                          .cutoff = sw_unix_ms() / 1000 - app->ttl_s, .budget = pair_budget(g, r->n) };
    int rc = sw_buf_append(&job->out, "{", 1);
    for (size_t i = 0; rc == SW_OK && i < r->n; i++) {
        size_t n = 0;
        if ((rc = route_pair(g, s, &q, app->sync.net != NULL, &r->pairs[i], job, &n)))
            break;
        *paths_out += n;
        if (i && (rc = sw_buf_append(&job->out, ",", 1)))
            break;
        rc = append_pair(&job->out, g, &r->pairs[i], job->paths, n);
    }
    return rc ? rc : sw_buf_append(&job->out, "}", 1);
}

static void answer(struct rf_app *app, struct rf_job *job, struct sw_http_response *resp)
{
    struct rf_graph *g = rf_sync_graph(&app->sync);
    struct rf_scratch *s = pool_get(&app->pool);
    int64_t t0 = sw_mono_ns();
    size_t paths = 0;
    int rc = s ? write_routes(app, g, s, job, &paths) : SW_ENOMEM;

    sw_histogram_observe_ns(&app->search_seconds, sw_mono_ns() - t0);
    pool_put(&app->pool, s);
    rf_graph_unref(g);
    atomic_fetch_add(&app->pairs_total, job->req.n);
    atomic_fetch_add(&app->paths_total, paths);
    if (job->exhausted)
        atomic_fetch_add(&app->exhausted_total, 1);
    if (rc == SW_OK) {
        atomic_fetch_add(&app->req_ok, 1);
        free(resp->body);
        resp->status = 200;
        resp->content_type = "application/json";
        resp->body = sw_buf_steal(&job->out, &resp->body_len);
    } else if (rc == SW_ENOTFOUND) {
        atomic_fetch_add(&app->req_no_route, 1);
        sw_http_reply_error(resp, 404, "no_route", "%s", job->why);
    } else {
        sw_log_warn("routes: %s", sw_strerror(rc));
        sw_http_reply_error(resp, 500, "internal_error", "out of memory");
    }
}

static void handle_routes(struct sw_http_request *req, struct sw_http_response *resp)
{
    struct rf_app *app = req->app;
    struct rf_job *job = calloc(1, sizeof(*job));
    struct sw_error err = { 0 };
    const char *code;

    if (!job) {
        sw_http_reply_error(resp, 500, "internal_error", "out of memory");
        return;
    }
    sw_buf_init(&job->out, 0);
    if (parse_request(req->body, req->body_len, &job->req, &code, &err)) {
        atomic_fetch_add(&app->req_invalid, 1);
        sw_http_reply_error(resp, 400, code, "%s", err.msg);
    } else {
        answer(app, job, resp);
    }
    sw_buf_free(&job->out);
    free(job);
}

const struct sw_http_route rf_routes[] = {
    { "POST", "/routes", SW_ROUTE_EXACT, handle_routes, NULL, 64 * 1024 },
};
const size_t rf_n_routes = sizeof(rf_routes) / sizeof(rf_routes[0]);

/* ---- metrics ----------------------------------------------------------------------------- */

static void gauge(struct sw_buf *out, const char *name, const char *help, double v)
{
    sw_metrics_write_header(out, name, "gauge", help);
    sw_metrics_write_sample(out, name, NULL, v);
}

static void counter(struct sw_buf *out, const char *name, const char *help, uint64_t v)
{
    sw_metrics_write_header(out, name, "counter", help);
    sw_metrics_write_sample(out, name, NULL, (double)v);
}

static void write_graph_metrics(struct rf_app *a, struct sw_buf *out)
{
    struct rf_graph *g = rf_sync_graph(&a->sync);
    int64_t cutoff = sw_unix_ms() / 1000 - a->ttl_s, published = atomic_load(&a->sync.published_ms);

    gauge(out, "rf_graph_keys", "Keys (nodes) in the transport graph", g ? g->n_nodes : 0);
    gauge(out, "rf_graph_transports", "Transports (edges) in the graph, up or not", g ? g->n_edges : 0);
    gauge(out, "rf_graph_transports_usable", "Transports up on both edges and refreshed within the TTL",
          g ? rf_graph_usable_edges(g, cutoff) : 0);
    gauge(out, "rf_graph_age_seconds", "Seconds since the graph last changed (load or update)",
          published ? (double)sw_ms_since(published) / 1e3 : 0);
    gauge(out, "rf_graph_load_seconds", "Duration of the last full load (query and build)",
          (double)atomic_load(&a->sync.last_load_us) / 1e6);
    gauge(out, "rf_sync_connected", "1 while the LISTEN session to the database is up",
          atomic_load(&a->sync.connected) ? 1 : 0);
    rf_graph_unref(g);
    if (a->sync.net) {
        uint64_t issued_at;
        uint32_t revoked;
        sw_network_revocations_info(a->sync.net, &issued_at, &revoked);
        gauge(out, "rf_members_valid", "Keys with a valid visor certificate, not revoked (last rebuild)",
              (double)atomic_load(&a->sync.members_valid));
        counter(out, "rf_members_reloads_total", "Reads of td_members", atomic_load(&a->sync.members_reloads));
        gauge(out, "rf_revocations_issued_at", "issued_at of the revocation list in use", (double)issued_at);
        gauge(out, "rf_revoked_keys", "Keys in the revocation list in use", revoked);
    }
}

void rf_write_metrics(void *arg, struct sw_buf *out)
{
    struct rf_app *a = arg;
    write_graph_metrics(a, out);
    counter(out, "rf_graph_full_loads_total", "Full reads of td_transports (start, reconnect, big batches)",
            atomic_load(&a->sync.full_loads));
    counter(out, "rf_graph_updates_total", "Incremental graph updates from notifications", atomic_load(&a->sync.updates));
    counter(out, "rf_notifications_total", "td_transports notifications received", atomic_load(&a->sync.notifications));
    counter(out, "rf_sync_reconnects_total", "LISTEN sessions lost and reopened", atomic_load(&a->sync.reconnects));
    sw_metrics_write_header(out, "rf_route_requests_total", "counter", "POST /routes by result");
    sw_metrics_write_sample(out, "rf_route_requests_total", "result=\"ok\"", (double)atomic_load(&a->req_ok));
    sw_metrics_write_sample(out, "rf_route_requests_total", "result=\"no_route\"", (double)atomic_load(&a->req_no_route));
    sw_metrics_write_sample(out, "rf_route_requests_total", "result=\"invalid\"", (double)atomic_load(&a->req_invalid));
    counter(out, "rf_route_pairs_total", "Key pairs asked for", atomic_load(&a->pairs_total));
    counter(out, "rf_route_paths_total", "Paths returned (forward direction)", atomic_load(&a->paths_total));
    counter(out, "rf_search_exhausted_total", "Requests where a search hit its work limit",
            atomic_load(&a->exhausted_total));
    sw_metrics_write_header(out, "rf_search_duration_seconds", "histogram", "Search and reply time of POST /routes");
    sw_metrics_write_histogram(out, "rf_search_duration_seconds", NULL, &a->search_seconds);
}
