#include "common/json.h"
#include "visor/cli/cli.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static const char *str_at(struct json_object *arr, size_t i)
{
    struct json_object *v = json_object_array_get_idx(arr, i);
    return v ? json_object_get_string(v) : "";
}

static void print_transport_row(struct json_object *t)
{
    struct json_object *e = json_object_object_get(t, "entry");
    struct json_object *edges = json_object_object_get(e, "edges");
    struct json_object *st = json_object_object_get(t, "statuses");
    time_t upd = (time_t)json_object_get_int64(json_object_object_get(t, "updated"));
    char when[32];
    struct tm tm;
    gmtime_r(&upd, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
    printf("%-36s  %-4s  %-4s  %-5s/%-5s  %s  %s  %-19s  %s\n",
           json_object_get_string(json_object_object_get(e, "t_id")),
           json_object_get_string(json_object_object_get(e, "type")),
           json_object_get_boolean(json_object_object_get(t, "is_up")) ? "up" : "down",
           json_object_get_boolean(json_object_array_get_idx(st, 0)) ? "up" : "down",
           json_object_get_boolean(json_object_array_get_idx(st, 1)) ? "up" : "down",
           str_at(edges, 0), str_at(edges, 1), when,
           json_object_get_string(json_object_object_get(e, "label")));
}

void cli_print_transports_table(struct json_object *v)
{
    struct json_object *list = v;
    if (json_object_is_type(v, json_type_object) && json_object_object_get(v, "transports"))
        list = json_object_object_get(v, "transports");
    printf("%-36s  %-4s  %-4s  %-11s  %-64s  %-64s  %-20s  %s\n", "T_ID", "TYPE", "UP", "UP0/UP1",
           "EDGE0", "EDGE1", "UPDATED", "LABEL");
    if (json_object_is_type(list, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(list); i++)
            print_transport_row(json_object_array_get_idx(list, i));
    } else {
        print_transport_row(list);
    }
    if (list != v && json_object_object_get(v, "next"))
        printf("next page: --after %s\n", json_object_get_string(json_object_object_get(v, "next")));
}

int cli_print_reply(struct cli_ctx *ctx, const struct sw_http_result *res,
                    void (*table)(struct json_object *))
{
    struct json_object *v = NULL, *e;
    struct sw_error err;
    int rc = CLI_OK;

    if (sw_json_parse(res->body, res->body_len, &v, &err)) {
        fprintf(stderr, "error: HTTP %ld with a body that is not JSON: %.200s\n", res->status, res->body);
        return CLI_FAIL;
    }
    if (res->status < 200 || res->status > 299) {
        e = json_object_object_get(v, "error");
        fprintf(stderr, "error: HTTP %ld %s: %s\n", res->status,
                json_object_get_string(json_object_object_get(e, "code")),
                json_object_get_string(json_object_object_get(e, "message")));
        rc = CLI_FAIL;
    } else if (ctx->json || !table) {
        printf("%s\n", json_object_to_json_string_ext(v, JSON_C_TO_STRING_PRETTY |
                                                             JSON_C_TO_STRING_NOSLASHESCAPE));
    } else {
        table(v);
    }
    json_object_put(v);
    return rc;
}
