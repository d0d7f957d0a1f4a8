/* routes.c — skywire-cli commands for routing: node ls-rules | rule ID | rm-rule ID (the
 * visor's /api/routes) and rtfind PK1 PK2 (straight to the route finder, POST /routes). */
#include "visor/cli/cli.h"
#include "common/json.h"
#include "common/keys.h"
#include "common/num.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *js(struct json_object *o, const char *k)
{
    const char *s = json_object_get_string(json_object_object_get(o, k));
    return s ? s : "";
}

static void print_rule_row(struct json_object *r)
{
    char detail[256];
    if (strcmp(js(r, "type"), "forward") == 0)
        snprintf(detail, sizeof(detail), "-> %s rid %s", js(r, "next_tp"), js(r, "next_rid"));
    else if (strcmp(js(r, "type"), "consume") == 0)
        snprintf(detail, sizeof(detail), "port %s <- %.16s…:%s", js(r, "local_port"), js(r, "remote_pk"),
                 js(r, "remote_port"));
    else
        snprintf(detail, sizeof(detail), "-");
    printf("%-10s  %-8s  %10s  %10s  %12s  %s\n", js(r, "rid"), js(r, "type"), js(r, "packets"),
           js(r, "bytes"), js(r, "expires_at"), detail);
}

static void print_rules(struct json_object *v)
{
    printf("%-10s  %-8s  %10s  %10s  %12s  %s\n", "RID", "TYPE", "PACKETS", "BYTES", "EXPIRES_AT", "RULE");
    if (json_object_is_type(v, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(v); i++)
            print_rule_row(json_object_array_get_idx(v, i));
    } else {
        print_rule_row(v);
    }
}

static void print_removed_rule(struct json_object *v)
{
    printf("removed rule %s\n", js(v, "removed"));
}

static void print_app_row(struct json_object *a)
{
    char st[64];
    if (json_object_object_get(a, "exit_code"))
        snprintf(st, sizeof(st), "exited (code %s)", js(a, "exit_code"));
    else if (json_object_object_get(a, "signal"))
        snprintf(st, sizeof(st), "exited (signal %s)", js(a, "signal"));
    else
        snprintf(st, sizeof(st), "%s", js(a, "state"));
    printf("%-24s  %5s  %-10s  %-8s  %s\n", js(a, "name"), js(a, "port"),
           json_object_get_boolean(json_object_object_get(a, "auto_start")) ? "yes" : "no", js(a, "pid"), st);
}

static void print_apps(struct json_object *v)
{
    printf("%-24s  %5s  %-10s  %-8s  %s\n", "APP", "PORT", "AUTOSTART", "PID", "STATE");
    if (json_object_is_type(v, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(v); i++)
            print_app_row(json_object_array_get_idx(v, i));
    } else {
        print_app_row(v);
    }
}

int cli_node_routes(struct cli_ctx *ctx, const char *sub, const char *api, int npos, char **pos)
{
    char target[160];
    uint64_t rid;

    if (strcmp(sub, "ls-apps") == 0) {
        if (npos != 0) {
            fprintf(stderr, "usage: skywire-cli node ls-apps\n");
            return CLI_USAGE;
        }
        return cli_visor_request(ctx, api, "GET", "/api/apps", NULL, print_apps);
    }
    if (strcmp(sub, "start-app") == 0 || strcmp(sub, "stop-app") == 0) {
        if (npos != 1 || strlen(pos[0]) > 63 || strpbrk(pos[0], "/?#% ")) {
            fprintf(stderr, "usage: skywire-cli node %s NAME\n", sub);
            return CLI_USAGE;
        }
        snprintf(target, sizeof(target), "/api/apps/%s/%s", pos[0], sub[2] == 'a' ? "start" : "stop");
        return cli_visor_request(ctx, api, "POST", target, "{}", print_apps);
    }

    if (strcmp(sub, "ls-rules") == 0) {
        if (npos != 0) {
            fprintf(stderr, "usage: skywire-cli node ls-rules\n");
            return CLI_USAGE;
        }
        return cli_visor_request(ctx, api, "GET", "/api/routes", NULL, print_rules);
    }
    if (strcmp(sub, "rule") != 0 && strcmp(sub, "rm-rule") != 0)
        return -1;
    if (npos != 1 || sw_parse_u64(pos[0], 1, UINT32_MAX, &rid)) {
        fprintf(stderr, "usage: skywire-cli node %s ID   (a route ID, 1..4294967295)\n", sub);
        return CLI_USAGE;
    }
    snprintf(target, sizeof(target), "/api/routes/%" PRIu64, rid);
    if (sub[0] == 'r' && sub[1] == 'u')
        return cli_visor_request(ctx, api, "GET", target, NULL, print_rules);
    return cli_visor_request(ctx, api, "DELETE", target, NULL, print_removed_rule);
}

static void print_path(struct json_object *path)
{
    for (size_t i = 0; i < json_object_array_length(path); i++) {
        struct json_object *h = json_object_array_get_idx(path, i);
        if (i == 0)
            printf("  %s\n", js(h, "from"));
        printf("    via %s\n  %s\n", js(h, "t_id"), js(h, "to"));
    }
}

static void print_routes(struct json_object *v)
{
    json_object_object_foreach(v, key, pair) {
        static const char *const dirs[] = { "forward", "reverse" };
        printf("%s\n", key);
        for (int d = 0; d < 2; d++) {
            struct json_object *paths = json_object_object_get(pair, dirs[d]);
            for (size_t i = 0; i < json_object_array_length(paths); i++) {
                printf(" %s path %zu (%zu hops):\n", dirs[d], i + 1,
                       json_object_array_length(json_object_array_get_idx(paths, i)));
                print_path(json_object_array_get_idx(paths, i));
            }
        }
    }
}

int cli_rtfind(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option own[] = {
        { "min-hops", required_argument, NULL, 'm' }, { "max-hops", required_argument, NULL, 'M' },
        { "count", required_argument, NULL, 'c' },    { NULL, 0, NULL, 0 },
    };
    struct option opts[CLI_MAX_OPTIONS];
    const char *rf;
    long min_hops = 1, max_hops = 16, count = 1;
    struct sw_pk a, b;
    char body[400];
    int c;

    cli_options(own, opts, CLI_MAX_OPTIONS); /* --rf URL is a global option */
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        long *dst = c == 'm' ? &min_hops : c == 'M' ? &max_hops : c == 'c' ? &count : NULL;
        if (dst) {
            if (sw_parse_long(optarg, 1, 64, dst)) {
                fprintf(stderr, "skywire-cli rtfind: --%s must be 1..64\n",
                        c == 'm' ? "min-hops" : c == 'M' ? "max-hops" : "count");
                return CLI_USAGE;
            }
        } else if (!cli_global_option(ctx, c, optarg)) {
            goto usage;
        }
    }
    rf = getenv("SKYWIRE_RF_URL");
    if (!rf || !*rf)
        rf = "http://127.0.0.1:9092";
    if (argc - optind != 2 || sw_pk_from_hex(&a, argv[optind], "PK1", NULL) ||
        sw_pk_from_hex(&b, argv[optind + 1], "PK2", NULL) || min_hops > max_hops)
        goto usage;
    snprintf(body, sizeof(body),
             "{\"edges\":[[\"%s\",\"%s\"]],\"opts\":{\"min_hops\":%ld,\"max_hops\":%ld,\"count\":%ld}}",
             argv[optind], argv[optind + 1], min_hops, max_hops, count);
    return cli_request(ctx, rf, "POST", "/routes", body, print_routes);
usage:
    fprintf(stderr, "usage: skywire-cli rtfind PK1 PK2 [--min-hops N] [--max-hops N] [--count N] [--rf URL]\n");
    return CLI_USAGE;
}
