/* skywire-cli — the operator's command line for visors and services. */
#include "common/http_client.h"
#include "common/keys.h"
#include "common/log.h"
#include "common/version.h"
#include "visor/cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: skywire-cli [--json] COMMAND ...\n"
            "commands:\n"
            "  keygen -o FILE                      create an Ed25519 key file (mode 0600)\n"
            "  tpdisc --id ID | --pk PK            look up transports in the transport discovery\n"
            "  tpdisc list [--limit N] [--after ID]\n"
            "  tpdisc register --key-file K --peer-key-file K2 [--type stcp|dmsg] [--label L]\n"
            "                  [--cert-file C --peer-cert-file C2]   (certificates: private networks)\n"
            "  tpdisc status --key-file K [--cert-file C] --id ID (--up | --down)\n"
            "  tpdisc delete --key-file K [--cert-file C] --id ID\n"
            "  tpdisc nonce PK\n"
            "  node gen-config [-o FILE] [-r] [--tpd URL] [--mdisc URL] [--stcp ADDR] ...\n"
            "  node pk | summary | ls-tp | tp ID | rm-tp ID           (the local visor's API)\n"
            "  node ls-rules | rule ID | rm-rule ID                   (routing rules)\n"
            "  node ls-apps | start-app NAME | stop-app NAME          (the visor's apps)\n"
            "  node add-tp PK [--type stcp|dmsg] [--addr HOST:PORT]\n"
            "  node disc-tp --id ID | --pk PK\n"
            "  mdisc entry PK | available-servers [--mdisc URL]\n"
            "  hv visors | network                 (with --hypervisor) the hypervisor's visors, its map\n"
            "  node app-logs NAME [--lines N]      the tail of an app's log\n"
            "  rtfind PK1 PK2 [--min-hops N] [--max-hops N] [--count N] [--rf URL]\n"
            "  net init [--out FILE]               a private network's signing key (mode 0600, never overwritten)\n"
            "  net sign --key NETKEY --pk PK --role visor|messaging-server|setup-node|service\n"
            "           [--name N] [--groups a,b] [--expires 365d] [--out FILE]   a membership certificate\n"
            "  net show FILE|HEX                   a certificate as JSON\n"
            "  net revoke --key NETKEY --pk PK [--tpd URL | --file F] [--undo]\n"
            "  net revocations [--tpd URL | --file F]\n"
            "options (before or after the command):\n"
            "  --json            print JSON instead of tables\n"
            "  --tpd URL         transport discovery (default $SKYWIRE_TPD_URL or http://127.0.0.1:9091)\n"
            "  --config FILE     the visor's config: node commands take its API address and token\n"
            "                    (data_dir/api-token) from it (default $SKYWIRE_CONFIG, else\n"
            "                    ./skywire-config.json when it exists, else %s)\n"
            "  --api URL         visor API for node commands (default $SKYWIRE_API_URL, else the config's)\n"
            "  --api-token-file FILE  the visor's API token (default $SKYWIRE_API_TOKEN_FILE, else the config's)\n"
            "  --hypervisor URL  send node commands through a hypervisor (default $SKYWIRE_HYPERVISOR_URL);\n"
            "                    add --visor PK to them; password from $SKYWIRE_HYPERVISOR_PASSWORD or asked\n"
            "  --mdisc URL       messaging discovery (default $SKYWIRE_MDISC_URL or http://127.0.0.1:9090)\n"
            "  --rf URL          route finder (default $SKYWIRE_RF_URL or http://127.0.0.1:9092)\n"
            "  (after node gen-config, --tpd, --mdisc, --rf and --hypervisor are what the config gets)\n"
            "  --version, --help\n", CLI_INSTALLED_CONFIG);
}

enum { OPT_HELP = 1, OPT_VERSION };

/* The global options before the command word (the command takes the ones after it).
 * Returns the command's index in argv, or -1 with *rc the exit status. */
static int parse_globals(struct cli_ctx *ctx, int argc, char **argv, int *rc)
{
    static const struct option own[] = {
        { "help", no_argument, NULL, OPT_HELP }, { "version", no_argument, NULL, OPT_VERSION }, { NULL, 0, NULL, 0 },
    };
    struct option opts[CLI_MAX_OPTIONS];
    int c;

    cli_options(own, opts, CLI_MAX_OPTIONS);
    while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) { /* '+': stop at the command */
        if (c == 'h' || c == OPT_HELP) {
            usage(stdout);
            *rc = CLI_OK;
            return -1;
        }
        if (c == OPT_VERSION) {
            printf("skywire-cli %s\n", SW_VERSION);
            *rc = CLI_OK;
            return -1;
        }
        if (!cli_global_option(ctx, c, optarg)) {
            usage(stderr);
            *rc = CLI_USAGE;
            return -1;
        }
    }
    return optind;
}

int main(int argc, char **argv)
{
    struct cli_ctx ctx = { 0 };
    const char *hv_url = getenv("SKYWIRE_HYPERVISOR_URL");
    int i, rc = CLI_USAGE;

    sw_log_init("skywire-cli");
    cli_tty_sanitize();
    if (hv_url && *hv_url)
        cli_hv_set_url(&ctx, hv_url);
    if ((i = parse_globals(&ctx, argc, argv, &rc)) < 0)
        return rc;
    if (i >= argc) {
        usage(stderr);
        return CLI_USAGE;
    }
    if (sw_crypto_init() || sw_http_global_init()) {
        fprintf(stderr, "skywire-cli: initialisation failed\n");
        return CLI_FAIL;
    }
    /* add-tp waits for the handshake: the visor answers within 20 s */
    ctx.http = sw_http_client_new(&(struct sw_http_client_opts){ .timeout_ms = 30000 });
    if (!ctx.http)
        return CLI_FAIL;
    if (strcmp(argv[i], "tpdisc") == 0) {
        rc = cli_tpdisc(&ctx, argc - i, argv + i);
    } else if (strcmp(argv[i], "keygen") == 0) {
        rc = cli_keygen(&ctx, argc - i, argv + i);
    } else if (strcmp(argv[i], "node") == 0) {
        rc = cli_node(&ctx, argc - i, argv + i);
    } else if (strcmp(argv[i], "mdisc") == 0) {
        rc = cli_mdisc(&ctx, argc - i, argv + i);
    } else if (strcmp(argv[i], "hv") == 0) {
        rc = cli_hv(&ctx, argc - i, argv + i);
    } else if (strcmp(argv[i], "rtfind") == 0) {
        rc = cli_rtfind(&ctx, argc - i, argv + i);
    } else if (strcmp(argv[i], "net") == 0) {
        rc = cli_net(&ctx, argc - i, argv + i);
    } else {
        fprintf(stderr, "skywire-cli: unknown command '%s'\n", argv[i]);
        usage(stderr);
        rc = CLI_USAGE;
    }
    cli_hv_logout(&ctx);
    cli_visor_wipe(&ctx);
    sw_http_client_free(ctx.http);
    return rc;
}
