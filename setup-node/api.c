/* api.c — REST: GET /route-groups (for the operator only: access.c), GET
 * /security/nonces/{pk} for signing those requests, and the domain metrics (/health and
 * /metrics come from the HTTP layer). */
#include "setup-node/sn.h"
#include "common/log.h"

#include <stdio.h>
#include <stdlib.h>

#define SN_LIST_DEFAULT 50
#define SN_LIST_MAX 500

static void handle_list(struct sw_http_request *req, struct sw_http_response *resp)
{
    struct sn_app *app = req->app;
    struct json_object *out = NULL;
    struct sw_error err = { 0 };
    unsigned long limit;
    if (!sn_access_allowed(app, req, resp))
        return;
    if (sw_http_query_uint(req, "limit", 1, SN_LIST_MAX, SN_LIST_DEFAULT, &limit)) {
        sw_http_reply_error(resp, 400, "invalid_limit", "limit must be 1 to %d", SN_LIST_MAX);
        return;
    }
    if (sn_store_list(app->db, (unsigned)limit, &out, &err)) {
        sw_http_reply_store_error(resp, &err);
        return;
    }
    sw_http_reply_json(resp, 200, out);
}

static void handle_nonce(struct sw_http_request *req, struct sw_http_response *resp)
{
    struct sn_app *app = req->app;
    sw_sreq_reply_nonce(&app->nonces, req, resp);
}

const struct sw_http_route sn_routes[] = {
    { "GET", "/route-groups", SW_ROUTE_EXACT, handle_list, NULL, 0 },
    { "GET", "/security/nonces/", SW_ROUTE_PREFIX, handle_nonce, "/security/nonces/{pk}", 0 },
};
const size_t sn_n_routes = sizeof(sn_routes) / sizeof(sn_routes[0]);

void sn_write_metrics(void *arg, struct sw_buf *out)
{
    struct sn_app *a = arg;
    char labels[64];
    sw_metrics_write_header(out, "sn_setups_total", "counter", "route_group requests by result");
    for (int i = 0; i < SN_N_RESULTS; i++) {
        snprintf(labels, sizeof(labels), "result=\"%s\"", sn_result_names[i]);
        sw_metrics_write_sample(out, "sn_setups_total", labels, (double)atomic_load(&a->results[i]));
    }
    sw_metrics_write_header(out, "sn_setups_active", "gauge", "Setups in progress");
    sw_metrics_write_sample(out, "sn_setups_active", NULL, (double)atomic_load(&a->active));
    sw_metrics_write_header(out, "sn_rolled_back_at_start_total", "counter",
                            "Setups interrupted by a restart and rolled back at start");
    sw_metrics_write_sample(out, "sn_rolled_back_at_start_total", NULL,
                            (double)atomic_load(&a->rolled_back_at_start));
    pthread_mutex_lock(&a->mu);
    uint64_t evicted = a->m_evicted, refused = a->m_refused, streams = a->workers;
    pthread_mutex_unlock(&a->mu);
    sw_metrics_write_header(out, "sn_streams", "gauge", "Requester streams being served (port 2)");
    sw_metrics_write_sample(out, "sn_streams", NULL, (double)streams);
    sw_metrics_write_header(out, "sn_streams_evicted_total", "counter",
                            "Idle requester streams closed to make room for newer ones");
    sw_metrics_write_sample(out, "sn_streams_evicted_total", NULL, (double)evicted);
    sw_metrics_write_header(out, "sn_streams_refused_total", "counter",
                            "Requester streams refused: the key's or every slot busy with requests");
    sw_metrics_write_sample(out, "sn_streams_refused_total", NULL, (double)refused);
    sw_metrics_write_header(out, "sn_setup_duration_seconds", "histogram", "Duration of route group setups");
    sw_metrics_write_histogram(out, "sn_setup_duration_seconds", NULL, &a->setup_latency);
    sw_metrics_write_header(out, "sn_step_duration_seconds", "histogram",
                            "Latency of one step with one visor (dial included)");
    for (int i = 0; i < SN_N_STEPS; i++) {
        snprintf(labels, sizeof(labels), "step=\"%s\"", sn_step_names[i]);
        sw_metrics_write_histogram(out, "sn_step_duration_seconds", labels, &a->step_latency[i]);
    }
}
