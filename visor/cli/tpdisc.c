/* tpdisc: the transport discovery from the command line (lookups and signed mutations). */
#include "common/json.h"
#include "common/keys.h"
#include "common/tp_entry.h"
#include "visor/cli/cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tpdisc_args {
    const char *url, *id, *pk, *key_file, *peer_key_file, *type, *label, *after;
    long limit;
    int up; /* -1 unset, 0 down, 1 up */
};

static int parse(int argc, char **argv, struct tpdisc_args *a)
{
    static const struct option opts[] = {
        { "tpd", required_argument, NULL, 'u' },      { "id", required_argument, NULL, 'i' },
        { "pk", required_argument, NULL, 'p' },       { "key-file", required_argument, NULL, 'k' },
        { "peer-key-file", required_argument, NULL, 'K' },
        { "type", required_argument, NULL, 't' },     { "label", required_argument, NULL, 'l' },
        { "after", required_argument, NULL, 'a' },    { "limit", required_argument, NULL, 'n' },
        { "up", no_argument, NULL, 'U' },             { "down", no_argument, NULL, 'D' },
        { NULL, 0, NULL, 0 },
    };
    int c;
    const char *env = getenv("SKYWIRE_TPD_URL");
    *a = (struct tpdisc_args){ .url = env && *env ? env : "http://127.0.0.1:9091", .type = "stcp",
                               .label = "", .limit = 0, .up = -1 };
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'u': a->url = optarg; break;
        case 'i': a->id = optarg; break;
        case 'p': a->pk = optarg; break;
        case 'k': a->key_file = optarg; break;
        case 'K': a->peer_key_file = optarg; break;
        case 't': a->type = optarg; break;
        case 'l': a->label = optarg; break;
        case 'a': a->after = optarg; break;
        case 'n': a->limit = strtol(optarg, NULL, 10); break;
        case 'U': a->up = 1; break;
        case 'D': a->up = 0; break;
        default: return CLI_USAGE;
        }
    }
    return CLI_OK;
}

static int need(const char *v, const char *flag)
{
    if (v)
        return 0;
    fprintf(stderr, "skywire-cli tpdisc: %s is required\n", flag);
    return 1;
}

static int load_key(const char *path, struct sw_keypair *kp)
{
    struct sw_error err;
    if (sw_keyfile_load(path, kp, &err)) {
        fprintf(stderr, "skywire-cli: %s\n", err.msg);
        return CLI_FAIL;
    }
    return CLI_OK;
}

static int do_request(struct cli_ctx *ctx, const struct sw_keypair *kp, const char *url,
                      const char *method, const char *target, const char *body,
                      void (*table)(struct json_object *))
{
    struct sw_http_result res = { 0 };
    struct sw_error err;
    char full[2048];
    int rc;
    if (kp) {
        rc = sw_http_do_signed(ctx->http, kp, url, method, target, body, body ? strlen(body) : 0,
                               &res, &err);
    } else {
        snprintf(full, sizeof(full), "%s%s", url, target);
        rc = sw_http_do(ctx->http, method, full, NULL, body, body ? strlen(body) : 0, &res, &err);
    }
    if (rc) {
        fprintf(stderr, "skywire-cli: %s\n", err.msg);
        return CLI_FAIL;
    }
    rc = cli_print_reply(ctx, &res, table);
    sw_http_result_free(&res);
    return rc;
}

static int cmd_lookup(struct cli_ctx *ctx, const struct tpdisc_args *a)
{
    char target[256];
    struct sw_error err;
    struct sw_uuid id;
    struct sw_pk pk;
    if ((a->id != NULL) == (a->pk != NULL)) {
        fprintf(stderr, "skywire-cli tpdisc: give exactly one of --id ID or --pk PK\n");
        return CLI_USAGE;
    }
    if (a->id && sw_uuid_parse(&id, a->id, "--id", &err)) {
        fprintf(stderr, "skywire-cli: %s\n", err.msg);
        return CLI_USAGE;
    }
    if (a->pk && sw_pk_from_hex(&pk, a->pk, "--pk", &err)) {
        fprintf(stderr, "skywire-cli: %s\n", err.msg);
        return CLI_USAGE;
    }
    snprintf(target, sizeof(target), a->id ? "/transports/id:%s" : "/transports/edge:%s",
             a->id ? a->id : a->pk);
    return do_request(ctx, NULL, a->url, "GET", target, NULL, cli_print_transports_table);
}

static int cmd_list(struct cli_ctx *ctx, const struct tpdisc_args *a)
{
    char target[256];
    int n = snprintf(target, sizeof(target), "/transports/?limit=%ld", a->limit > 0 ? a->limit : 100);
    if (a->after)
        snprintf(target + n, sizeof(target) - (size_t)n, "&after=%s", a->after);
    return do_request(ctx, NULL, a->url, "GET", target, NULL, cli_print_transports_table);
}

static int cmd_register(struct cli_ctx *ctx, const struct tpdisc_args *a)
{
    struct sw_keypair kp, peer;
    struct sw_tp_signed_entry se;
    struct sw_error err;
    struct json_object *arr;
    int rc = CLI_FAIL, i;

    if (need(a->key_file, "--key-file") || need(a->peer_key_file, "--peer-key-file"))
        return CLI_USAGE;
    if (load_key(a->key_file, &kp) || load_key(a->peer_key_file, &peer))
        goto out;
    if (sw_tp_entry_make(&se.entry, &kp.pk, &peer.pk, a->type, a->label, &err)) {
        fprintf(stderr, "skywire-cli: %s\n", err.msg);
        rc = CLI_USAGE;
        goto out;
    }
    i = sw_tp_entry_edge_index(&se.entry, &kp.pk);
    sw_tp_entry_sign(&se.entry, &kp, &se.sigs[i]);
    sw_tp_entry_sign(&se.entry, &peer, &se.sigs[1 - i]);
    arr = json_object_new_array();
    json_object_array_add(arr, sw_tp_signed_entry_to_json(&se));
    rc = do_request(ctx, &kp, a->url, "POST", "/transports/", sw_json_compact(arr, NULL),
                    cli_print_transports_table);
    json_object_put(arr);
out:
    sw_keypair_wipe(&kp);
    sw_keypair_wipe(&peer);
    return rc;
}

static int cmd_status(struct cli_ctx *ctx, const struct tpdisc_args *a)
{
    struct sw_keypair kp;
    char body[128];
    int rc;
    if (need(a->key_file, "--key-file") || need(a->id, "--id"))
        return CLI_USAGE;
    if (a->up < 0) {
        fprintf(stderr, "skywire-cli tpdisc status: give --up or --down\n");
        return CLI_USAGE;
    }
    if (load_key(a->key_file, &kp))
        return CLI_FAIL;
    snprintf(body, sizeof(body), "[{\"t_id\":\"%.36s\",\"is_up\":%s}]", a->id, a->up ? "true" : "false");
    rc = do_request(ctx, &kp, a->url, "POST", "/statuses", body, cli_print_transports_table);
    sw_keypair_wipe(&kp);
    return rc;
}

static int cmd_delete(struct cli_ctx *ctx, const struct tpdisc_args *a)
{
    struct sw_keypair kp;
    struct sw_uuid id;
    struct sw_error err;
    char target[128];
    int rc;
    if (need(a->key_file, "--key-file") || need(a->id, "--id"))
        return CLI_USAGE;
    if (sw_uuid_parse(&id, a->id, "--id", &err)) {
        fprintf(stderr, "skywire-cli: %s\n", err.msg);
        return CLI_USAGE;
    }
    if (load_key(a->key_file, &kp))
        return CLI_FAIL;
    snprintf(target, sizeof(target), "/transports/id:%s", a->id);
    rc = do_request(ctx, &kp, a->url, "DELETE", target, NULL, NULL);
    sw_keypair_wipe(&kp);
    return rc;
}

/* Moves the subcommand word (wherever it stands among the options) to argv[1]; returns it
 * or NULL for a plain lookup. Option values never count: "--label list" stays a label. */
static const char *take_subcommand(int argc, char **argv)
{
    static const char *const subs[] = { "list", "register", "status", "delete", "nonce" };
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] == '-') {
            if (strcmp(argv[i], "--up") && strcmp(argv[i], "--down") && !strchr(argv[i], '='))
                i++; /* skip the option's value */
            continue;
        }
        for (size_t k = 0; k < sizeof(subs) / sizeof(subs[0]); k++) {
            if (strcmp(argv[i], subs[k]) == 0) {
                char *word = argv[i];
                memmove(&argv[2], &argv[1], (size_t)(i - 1) * sizeof(*argv));
                argv[1] = word;
                return word;
            }
        }
        return NULL;
    }
    return NULL;
}

int cli_tpdisc(struct cli_ctx *ctx, int argc, char **argv)
{
    struct tpdisc_args a;
    const char *sub = take_subcommand(argc, argv);
    int shift = sub ? 1 : 0;
    char target[128];

    if (parse(argc - shift, argv + shift, &a))
        return CLI_USAGE;
    if (!sub)
        return cmd_lookup(ctx, &a);
    if (strcmp(sub, "list") == 0)
        return cmd_list(ctx, &a);
    if (strcmp(sub, "register") == 0)
        return cmd_register(ctx, &a);
    if (strcmp(sub, "status") == 0)
        return cmd_status(ctx, &a);
    if (strcmp(sub, "delete") == 0)
        return cmd_delete(ctx, &a);
    if (strcmp(sub, "nonce") == 0 && optind + shift < argc) {
        snprintf(target, sizeof(target), "/security/nonces/%.64s", argv[optind + shift]);
        return do_request(ctx, NULL, a.url, "GET", target, NULL, NULL);
    }
    fprintf(stderr, "skywire-cli tpdisc: unknown subcommand '%s'\n", sub);
    return CLI_USAGE;
}

int cli_keygen(struct cli_ctx *ctx, int argc, char **argv)
{
    struct sw_keypair kp;
    struct sw_error err;
    char hex[SW_PK_HEX_LEN + 1];
    const char *out = argc == 3 && strcmp(argv[1], "-o") == 0 ? argv[2] : NULL;
    if (!out) {
        fprintf(stderr, "usage: skywire-cli keygen -o FILE\n");
        return CLI_USAGE;
    }
    if (sw_keypair_generate(&kp) || sw_keyfile_save(out, &kp, &err)) {
        fprintf(stderr, "skywire-cli: %s\n", err.msg);
        sw_keypair_wipe(&kp);
        return CLI_FAIL;
    }
    sw_pk_to_hex(&kp.pk, hex);
    if (ctx->json)
        printf("{\"public_key\":\"%s\",\"file\":\"%s\"}\n", hex, out);
    else
        printf("%s\n", hex);
    sw_keypair_wipe(&kp);
    return CLI_OK;
}
