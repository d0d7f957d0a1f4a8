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
    struct option opts[CLI_MAX_OPTIONS];
    const char *env, *url, *sub;
    struct sw_pk pk;
    struct sw_error err = { 0 };
    char target[160];
    int c, npos;
    char **pos;

    cli_options(NULL, opts, CLI_MAX_OPTIONS); /* --mdisc URL is a global option */
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1)
        if (!cli_global_option(ctx, c, optarg))
            goto usage;
    env = getenv("SKYWIRE_MDISC_URL");
    url = env && *env ? env : "http://127.0.0.1:9090";
    pos = argv + optind; /* the subcommand and its arguments */
    npos = argc - optind;
    sub = npos ? pos[0] : "";
    if (strcmp(sub, "available-servers") == 0 && npos == 1)
        return cli_request(ctx, url, "GET", "/messaging-discovery/available_servers", NULL, print_servers);
    if (strcmp(sub, "entry") == 0 && npos == 2) {
        if (sw_pk_from_hex(&pk, pos[1], "PK", &err)) {
            fprintf(stderr, "skywire-cli: %s\n", err.msg);
            return CLI_USAGE;
        }
        snprintf(target, sizeof(target), "/messaging-discovery/entry/%s", pos[1]);
        return cli_request(ctx, url, "GET", target, NULL, print_entry);
    }
usage:
    fprintf(stderr, "usage: skywire-cli [--json] mdisc entry PK | available-servers [--mdisc URL]\n"
                    "  --mdisc URL: messaging discovery (default $SKYWIRE_MDISC_URL or http://127.0.0.1:9090)\n");
    return CLI_USAGE;
}
