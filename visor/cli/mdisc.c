/* mdisc: the messaging discovery from the command line (read-only lookups). */
#include "common/keys.h"
#include "visor/cli/cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *jstr(struct json_object *o, const char *key)
{
    struct json_object *v = json_object_object_get(o, key);
    return v ? json_object_get_string(v) : "";
}

static void print_entry(struct json_object *e)
{
    struct json_object *c = json_object_object_get(e, "client");
    struct json_object *s = json_object_object_get(e, "server");
    struct json_object *d = json_object_object_get(c, "delegated_servers");

    printf("static:            %s\n", jstr(e, "static"));
    printf("version:           %s\n", jstr(e, "version"));
    printf("sequence:          %s\n", jstr(e, "sequence"));
    printf("timestamp:         %s\n", jstr(e, "timestamp"));
    if (s) {
        printf("server address:    %s\n", jstr(s, "address"));
        printf("available sessions: %s\n", jstr(s, "available_sessions"));
    }
    for (size_t i = 0; c && i < json_object_array_length(d); i++)
        printf("delegated server:  %s\n", json_object_get_string(json_object_array_get_idx(d, i)));
}

static void print_servers(struct json_object *v)
{
    struct json_object *e, *s;
    printf("%-64s  %-24s  %s\n", "PK", "ADDRESS", "AVAILABLE_SESSIONS");
    for (size_t i = 0; json_object_is_type(v, json_type_array) && i < json_object_array_length(v); i++) {
        e = json_object_array_get_idx(v, i);
        s = json_object_object_get(e, "server");
        printf("%-64s  %-24s  %s\n", jstr(e, "static"), jstr(s, "address"), jstr(s, "available_sessions"));
    }
}

int cli_mdisc(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = { { "mdisc", required_argument, NULL, 'u' }, { NULL, 0, NULL, 0 } };
    const char *env = getenv("SKYWIRE_MDISC_URL");
    const char *url = env && *env ? env : "http://127.0.0.1:9090";
    const char *sub = argc > 1 ? argv[1] : NULL;
    struct sw_pk pk;
    struct sw_error err = { 0 };
    char target[160];
    int c;

    if (!sub || sub[0] == '-')
        goto usage;
    optind = 1;
    while ((c = getopt_long(argc - 1, argv + 1, "", opts, NULL)) != -1) {
        if (c != 'u')
            goto usage;
        url = optarg;
    }
    if (strcmp(sub, "available-servers") == 0 && optind == argc - 1)
        return cli_request(ctx, url, "GET", "/messaging-discovery/available_servers", NULL, print_servers);
    if (strcmp(sub, "entry") == 0 && optind == argc - 2) {
        if (sw_pk_from_hex(&pk, argv[1 + optind], "PK", &err)) {
            fprintf(stderr, "skywire-cli: %s\n", err.msg);
            return CLI_USAGE;
        }
        snprintf(target, sizeof(target), "/messaging-discovery/entry/%s", argv[1 + optind]);
        return cli_request(ctx, url, "GET", target, NULL, print_entry);
    }
usage:
    fprintf(stderr, "usage: skywire-cli [--json] mdisc entry PK | available-servers [--mdisc URL]\n"
                    "  --mdisc URL: messaging discovery (default $SKYWIRE_MDISC_URL or http://127.0.0.1:9090)\n");
    return CLI_USAGE;
}
