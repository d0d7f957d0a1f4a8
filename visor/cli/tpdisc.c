/* tpdisc: the transport discovery from the command line (lookups and signed mutations). */
#include "common/json.h"
#include "common/http_client.h"
#include "common/keys.h"
#include "common/netcert.h"
#include "common/num.h"
#include "common/tp_entry.h"
#include "visor/cli/cli.h"

#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tpdisc_args {
    const char *url, *id, *pk, *key_file, *peer_key_file, *type, *label, *after;
    const char *cert_file, *peer_cert_file; /* private networks: the edges' certificates */
    long limit;
    int up; /* -1 unset, 0 down, 1 up */
};

/* The options wherever they stand (getopt moves the words after them); the global ones
 * (--tpd, --json, ...) too. */
static int parse(struct cli_ctx *ctx, int argc, char **argv, struct tpdisc_args *a)
{
    static const struct option own[] = {
        { "id", required_argument, NULL, 'i' },
        { "pk", required_argument, NULL, 'p' },       { "key-file", required_argument, NULL, 'k' },
        { "peer-key-file", required_argument, NULL, 'K' },
        { "cert-file", required_argument, NULL, 'c' }, { "peer-cert-file", required_argument, NULL, 'C' },
        { "type", required_argument, NULL, 't' },     { "label", required_argument, NULL, 'l' },
        { "after", required_argument, NULL, 'a' },    { "limit", required_argument, NULL, 'n' },
        { "up", no_argument, NULL, 'U' },             { "down", no_argument, NULL, 'D' },
        { NULL, 0, NULL, 0 },
    };
    struct option opts[CLI_MAX_OPTIONS];
    const char *env;
    int c;

    *a = (struct tpdisc_args){ .type = "stcp", .label = "", .limit = 0, .up = -1 };
    cli_options(own, opts, CLI_MAX_OPTIONS);
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'i': a->id = optarg; break;
        case 'p': a->pk = optarg; break;
        case 'k': a->key_file = optarg; break;
        case 'K': a->peer_key_file = optarg; break;
        case 'c': a->cert_file = optarg; break;
        case 'C': a->peer_cert_file = optarg; break;
        case 't': a->type = optarg; break;
        case 'l': a->label = optarg; break;
        case 'a': a->after = optarg; break;
        case 'n':
            /* the range is the discovery's to check */
            if (sw_parse_long(optarg, LONG_MIN, LONG_MAX, &a->limit)) {
                fprintf(stderr, "skywire-cli tpdisc: --limit '%s' is not a number\n", optarg);
                return CLI_USAGE;
            }
            break;
        case 'U': a->up = 1; break;
        case 'D': a->up = 0; break;
        default:
            if (!cli_global_option(ctx, c, optarg))
                return CLI_USAGE;
        }
    }
    env = getenv("SKYWIRE_TPD_URL"); /* --tpd sets it */
    a->url = env && *env ? env : "http://127.0.0.1:9091";
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

/* A certificate file's hex into out[SW_CERT_HEX_MAX + 1] ("" without a file). */
static int load_cert(const char *path, char *out)
{
    struct sw_cert c;
    struct sw_error err;
    out[0] = '\0';
    if (!path)
        return CLI_OK;
    if (sw_cert_load_file(path, &c, NULL, NULL, &err) || sw_cert_to_hex(&c, out, SW_CERT_HEX_MAX + 1)) {
        fprintf(stderr, "skywire-cli: %s\n", err.msg);
        return CLI_FAIL;
    }
    return CLI_OK;
}

/* The caller's certificate rides on its signed requests (SW-Cert). */
static int use_cert(struct cli_ctx *ctx, const char *path)
{
    char hex[SW_CERT_HEX_MAX + 1];
    int rc = load_cert(path, hex);
    if (rc == CLI_OK)
        sw_http_client_set_cert(ctx->http, hex);
    return rc;
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
    if (load_key(a->key_file, &kp) || load_key(a->peer_key_file, &peer) ||
        use_cert(ctx, a->cert_file))
        goto out;
    if (sw_tp_entry_make(&se.entry, &kp.pk, &peer.pk, a->type, a->label, &err)) {
        fprintf(stderr, "skywire-cli: %s\n", err.msg);
        rc = CLI_USAGE;
        goto out;
    }
    i = sw_tp_entry_edge_index(&se.entry, &kp.pk);
    sw_tp_entry_sign(&se.entry, &kp, &se.sigs[i]);
    sw_tp_entry_sign(&se.entry, &peer, &se.sigs[1 - i]);
    if (load_cert(a->cert_file, se.certs[i]) || load_cert(a->peer_cert_file, se.certs[1 - i]))
        goto out;
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
    if (use_cert(ctx, a->cert_file)) {
        sw_keypair_wipe(&kp);
        return CLI_FAIL;
    }
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
    if (use_cert(ctx, a->cert_file)) {
        sw_keypair_wipe(&kp);
        return CLI_FAIL;
    }
    snprintf(target, sizeof(target), "/transports/id:%s", a->id);
    rc = do_request(ctx, &kp, a->url, "DELETE", target, NULL, NULL);
    sw_keypair_wipe(&kp);
    return rc;
}

/* The subcommand: the first word after the options when it is one, else NULL (a lookup). */
static const char *take_subcommand(int argc, char **argv)
{
    static const char *const subs[] = { "list", "register", "status", "delete", "nonce" };
    for (size_t k = 0; optind < argc && k < sizeof(subs) / sizeof(subs[0]); k++)
        if (strcmp(argv[optind], subs[k]) == 0)
            return argv[optind++];
    return NULL;
}

int cli_tpdisc(struct cli_ctx *ctx, int argc, char **argv)
{
    struct tpdisc_args a;
    const char *sub;
    char target[128];

    if (parse(ctx, argc, argv, &a))
        return CLI_USAGE;
    sub = take_subcommand(argc, argv);
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
    if (strcmp(sub, "nonce") == 0 && optind < argc) {
        snprintf(target, sizeof(target), "/security/nonces/%.64s", argv[optind]);
        return do_request(ctx, NULL, a.url, "GET", target, NULL, NULL);
    }
    fprintf(stderr, "skywire-cli tpdisc: unknown subcommand '%s'\n", sub);
    return CLI_USAGE;
}

int cli_keygen(struct cli_ctx *ctx, int argc, char **argv)
{
    struct option opts[CLI_MAX_OPTIONS];
    struct sw_keypair kp;
    struct sw_error err;
    char hex[SW_PK_HEX_LEN + 1];
    const char *out = NULL;
    bool bad = false;
    int c;

    cli_options(NULL, opts, CLI_MAX_OPTIONS);
    while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
        if (c == 'o')
            out = optarg;
        else if (!cli_global_option(ctx, c, optarg))
            bad = true;
    }
    if (bad || !out || optind != argc) {
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
