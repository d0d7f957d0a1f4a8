/* network.c — GET /api/network: the map's nodes and edges (docs/hypervisor.md).
 *
 * Asks the transport discovery (--tpd) for GET /transports/edge:{pk} of every managed
 * visor, from the handler's thread, and merges the answers: nodes are the managed visors
 * plus every other edge key seen (managed false), edges are the transports, once each. A
 * discovery that does not answer leaves that visor's transports out and sets "partial". */
#include "hypervisor/hv.h"
#include "common/http_client.h"
#include "common/http_server.h"
#include "common/json.h"

#include <stdio.h>
#include <string.h>

#define HV_NET_MAX_NODES 4096

static bool has_key(struct json_object *set, const char *k)
{
    return json_object_object_get_ex(set, k, NULL);
}

/* Adds the transports of one discovery answer to edges (deduplicated by t_id in seen). */
static void merge(struct json_object *list, struct json_object *edges, struct json_object *seen,
                  struct json_object *others)
{
    for (size_t i = 0; json_object_is_type(list, json_type_array) && i < json_object_array_length(list); i++) {
        struct json_object *t = json_object_array_get_idx(list, i), *e, *id, *ends, *type, *o, *up;
        /* a JSON null is "present" to get_ex and would be a NULL key: strings only */
        if (!json_object_object_get_ex(t, "entry", &e) || !json_object_object_get_ex(e, "t_id", &id) ||
            !json_object_is_type(id, json_type_string) || !json_object_object_get_ex(e, "edges", &ends) ||
            !json_object_is_type(ends, json_type_array) || json_object_array_length(ends) != 2 ||
            !json_object_is_type(json_object_array_get_idx(ends, 0), json_type_string) ||
            !json_object_is_type(json_object_array_get_idx(ends, 1), json_type_string) ||
            has_key(seen, json_object_get_string(id)))
            continue;
        json_object_object_add(seen, json_object_get_string(id), NULL);
        o = json_object_new_object();
        json_object_object_add(o, "t_id", json_object_get(id));
        json_object_object_add(o, "edges", json_object_get(ends));
        json_object_object_add(o, "type", json_object_object_get_ex(e, "type", &type) ? json_object_get(type)
                                                                                    : json_object_new_string(""));
        json_object_object_add(o, "is_up", json_object_new_boolean(json_object_object_get_ex(t, "is_up", &up) &&
                                                                    json_object_get_boolean(up)));
        json_object_array_add(edges, o);
        for (size_t k = 0; k < 2 && json_object_object_length(others) < HV_NET_MAX_NODES; k++)
            json_object_object_add(others, json_object_get_string(json_object_array_get_idx(ends, k)), NULL);
    }
}

static struct json_object *node(const char *pk, bool managed, bool online)
{
    struct json_object *n = json_object_new_object();
    json_object_object_add(n, "pk", json_object_new_string(pk));
    json_object_object_add(n, "managed", json_object_new_boolean(managed));
    json_object_object_add(n, "online", json_object_new_boolean(online));
    return n;
}

void hv_network_handle(struct sw_http_request *req, struct sw_http_response *resp)
{
    struct hv *hv = req->app;
    struct sw_http_client_opts opts = { .connect_timeout_ms = 2000, .timeout_ms = 5000, .max_response = 8u << 20 };
    struct sw_http_client *http = NULL;
    struct json_object *nodes, *edges, *seen, *others, *list, *root;
    struct hv_visor_state st;
    char url[HV_URL_MAX + 96];
    bool partial = false;

    if (!hv_auth_check(req, resp))
        return;
    if (hv->cfg.tpd[0] && !(http = sw_http_client_new(&opts))) {
        sw_http_reply_error(resp, 500, "internal_error", "out of memory");
        return;
    }
    nodes = json_object_new_array();
    edges = json_object_new_array();
    seen = json_object_new_object();
    others = json_object_new_object();
    for (size_t i = 0; i < hv->n_visors; i++) {
        struct sw_http_result res = { 0 };
        hv_visor_state(hv, i, &st);
        json_object_array_add(nodes, node(hv->visors[i].pk_hex, true, st.online));
        if (!http)
            continue;
        snprintf(url, sizeof(url), "%s/transports/edge:%s", hv->cfg.tpd, hv->visors[i].pk_hex);
        list = NULL;
        if (sw_http_do(http, "GET", url, NULL, NULL, 0, &res, NULL) || res.status != 200 ||
            sw_json_parse(res.body, res.body_len, &list, NULL))
            partial = true;
        else
            merge(list, edges, seen, others);
        json_object_put(list);
        sw_http_result_free(&res);
    }
    json_object_object_foreach(others, pk, unused) {
        struct sw_pk k;
        (void)unused;
        if (sw_pk_from_hex(&k, pk, "pk", NULL) == SW_OK && hv_visor_find(hv, &k) < 0)
            json_object_array_add(nodes, node(pk, false, false));
    }
    root = json_object_new_object();
    json_object_object_add(root, "nodes", nodes);
    json_object_object_add(root, "edges", edges);
    json_object_object_add(root, "partial", json_object_new_boolean(partial));
    json_object_put(seen);
    json_object_put(others);
    sw_http_client_free(http);
    sw_http_reply_json(resp, 200, root);
}
