/* node: a visor from the command line — its config (gen-config) and its local API. */
#include "common/json.h"
#include "common/keys.h"
#include "common/num.h"
#include "common/uuid.h"
#include "visor/cli/cli.h"
#include "visor/cli/gen_socks_policy.h"
#include "visor/config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NODE_MAX_LIST 64

struct node_args {
    const char *api, *out, *type, *addr, *id, *pk;
    bool replace;
    struct visor_gen_opts gen;
    const char *setup_nodes[NODE_MAX_LIST], *pk_table[NODE_MAX_LIST], *msg_servers[NODE_MAX_LIST];
    const char *ssh_allow[NODE_MAX_LIST];
    const char *socks_allow[NODE_MAX_LIST], *socks_deny[NODE_MAX_LIST]; /* gen-config */
    size_t n_socks_allow, n_socks_deny;
    const char *hypervisors[NODE_MAX_LIST];
    const char *visor;  /* --visor PK: the managed visor with --hypervisor */
    const char *lines;  /* app-logs --lines N */
    const char *sub;    /* the subcommand: the first word after "node" that is no option's */
    int npos;
    char **pos; /* positional arguments after the subcommand */
};

static int add_list(const char **list, size_t *n, const char *v, const char *opt)
{
    if (*n >= NODE_MAX_LIST) {
        fprintf(stderr, "skywire-cli node: at most %d %s options\n", NODE_MAX_LIST, opt);
        return CLI_USAGE;
    }
    list[(*n)++] = v;
    return CLI_OK;
}

/* The subcommand and the options wherever they stand (getopt moves the words after them):
 * a->sub, then a->pos. --tpd, --mdisc, --rf and --hypervisor are gen-config's here. */
static int parse(struct cli_ctx *ctx, int argc, char **argv, struct node_args *a)
{
    static const struct option own[] = {
        { "type", required_argument, NULL, 't' },
        { "addr", required_argument, NULL, 'a' },      { "id", required_argument, NULL, 'i' },
        { "pk", required_argument, NULL, 'p' },        { "tpd", required_argument, NULL, 'T' },
        { "mdisc", required_argument, NULL, 'M' },     { "rf", required_argument, NULL, 'R' },
        { "stcp", required_argument, NULL, 'S' },      { "api-addr", required_argument, NULL, 'L' },
        { "data-dir", required_argument, NULL, 'D' },  { "log-level", required_argument, NULL, 'l' },
        { "sessions", required_argument, NULL, 'n' },  { "setup-node", required_argument, NULL, 'N' },
        { "pk-table", required_argument, NULL, 'P' },  { "msg-server", required_argument, NULL, 'm' },
        { "no-apps", no_argument, NULL, 'x' },         { "skychat-addr", required_argument, NULL, 'c' },
        { "socks-srv", required_argument, NULL, 'v' }, { "socks-addr", required_argument, NULL, 'k' },
        { "ssh-allow", required_argument, NULL, 'h' },
        { "socks-allow", required_argument, NULL, 'w' }, { "socks-deny", required_argument, NULL, 'y' },
        { "hypervisor", required_argument, NULL, 'H' }, { "visor", required_argument, NULL, 'V' },
        { "lines", required_argument, NULL, 'z' },
        { "network", required_argument, NULL, 'W' }, { "cert-file", required_argument, NULL, 'C' },
        { "revocations", required_argument, NULL, 'X' },
        { NULL, 0, NULL, 0 },
    };
    struct option opts[CLI_MAX_OPTIONS];
    const char *env;
    int c, rc = CLI_OK;
    long n;

    memset(a, 0, sizeof(*a));
    cli_options(own, opts, CLI_MAX_OPTIONS);
    a->type = "stcp";
    a->gen.setup_nodes = a->setup_nodes;
    a->gen.pk_table = a->pk_table;
    a->gen.msg_servers = a->msg_servers;
    a->gen.ssh_allow = a->ssh_allow;
    a->gen.hypervisors = a->hypervisors;
    while (rc == CLI_OK && (c = getopt_long(argc, argv, "o:r", opts, NULL)) != -1) {
        switch (c) {
        case 't': a->type = optarg; break;
        case 'a': a->addr = optarg; break;
        case 'i': a->id = optarg; break;
        case 'p': a->pk = optarg; break;
        case 'o': a->out = optarg; break;
        case 'r': a->replace = true; break;
        case 'T': a->gen.tpd = optarg; break;
        case 'M': a->gen.mdisc = optarg; break;
        case 'R': a->gen.route_finder = optarg; break;
        case 'S': a->gen.stcp = optarg; break;
        case 'L': a->gen.api = optarg; break;
        case 'D': a->gen.data_dir = optarg; break;
        case 'l': a->gen.log_level = optarg; break;
        case 'n':
            if (sw_parse_long(optarg, 1, 16, &n)) {
                fprintf(stderr, "skywire-cli node: --sessions must be 1..16\n");
                rc = CLI_USAGE;
            } else {
                a->gen.sessions = (unsigned)n;
            }
            break;
        case 'N': rc = add_list(a->setup_nodes, &a->gen.n_setup_nodes, optarg, "--setup-node"); break;
        case 'P': rc = add_list(a->pk_table, &a->gen.n_pk_table, optarg, "--pk-table"); break;
        case 'm': rc = add_list(a->msg_servers, &a->gen.n_msg_servers, optarg, "--msg-server"); break;
        case 'x': a->gen.no_apps = true; break;
        case 'c': a->gen.skychat_addr = optarg; break;
        case 'v': a->gen.socks_srv = optarg; break;
        case 'k': a->gen.socks_addr = optarg; break;
        case 'h': rc = add_list(a->ssh_allow, &a->gen.n_ssh_allow, optarg, "--ssh-allow"); break;
        case 'w': rc = add_list(a->socks_allow, &a->n_socks_allow, optarg, "--socks-allow"); break;
        case 'y': rc = add_list(a->socks_deny, &a->n_socks_deny, optarg, "--socks-deny"); break;
        case 'H': rc = add_list(a->hypervisors, &a->gen.n_hypervisors, optarg, "--hypervisor"); break;
        case 'V': a->visor = optarg; break;
        case 'z': a->lines = optarg; break;
        case 'W': a->gen.network = optarg; break;
        case 'C': a->gen.cert_file = optarg; break;
        case 'X': a->gen.revocations = optarg; break;
        default:
            if (!cli_global_option(ctx, c, optarg))
                rc = CLI_USAGE;
        }
    }
    env = getenv("SKYWIRE_API_URL"); /* --api sets it */
    a->api = env && *env ? env : NULL; /* NULL: the config's api.listen (visor_api.c) */
    a->sub = optind < argc ? argv[optind++] : NULL;
    a->npos = argc - optind;
    a->pos = argv + optind;
    return rc;
}

/* ---- gen-config --------------------------------------------------------------------- */

static int write_config(const char *path, const char *text, bool replace)
{
    char tmp[4096];
    size_t len = strlen(text);
    int fd;

    snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
    fd = open(replace ? tmp : path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        if (errno == EEXIST && !replace)
            fprintf(stderr, "skywire-cli: %s exists; give -r to replace it\n", path);
        else
            fprintf(stderr, "skywire-cli: %s: %s\n", replace ? tmp : path, strerror(errno));
        return CLI_FAIL;
    }
    if (write(fd, text, len) != (ssize_t)len || write(fd, "\n", 1) != 1 || fsync(fd) != 0) {
        fprintf(stderr, "skywire-cli: writing %s: %s\n", path, strerror(errno));
        close(fd);
        unlink(replace ? tmp : path);
        return CLI_FAIL;
    }
    close(fd);
    if (replace && rename(tmp, path) != 0) {
        fprintf(stderr, "skywire-cli: replacing %s: %s\n", path, strerror(errno));
        unlink(tmp);
        return CLI_FAIL;
    }
    return CLI_OK;
}

static int cmd_gen_config(struct cli_ctx *ctx, const struct node_args *a)
{
    const char *path = a->out ? a->out : VISOR_DEFAULT_CONFIG;
    struct json_object *doc = NULL;
    struct sw_keypair kp;
    struct sw_error err = { 0 };
    char hex[SW_PK_HEX_LEN + 1];
    const char *text;
    int rc;

    if (strcmp(path, "-") != 0 && !a->replace && access(path, F_OK) == 0) {
        fprintf(stderr, "skywire-cli: %s exists; give -r to replace it\n", path);
        return CLI_FAIL;
    }
    if (sw_keypair_generate(&kp))
        return CLI_FAIL;
    if (visor_config_generate(&a->gen, &kp, &doc, &err) ||
        cli_gen_socks_policy(doc, a->socks_allow, a->n_socks_allow, a->socks_deny, a->n_socks_deny, &err)) {
        fprintf(stderr, "skywire-cli: %s\n", err.msg);
        json_object_put(doc);
        sw_keypair_wipe(&kp);
        return CLI_USAGE;
    }
    text = json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
    if (strcmp(path, "-") == 0) {
        printf("%s\n", text);
        rc = CLI_OK;
    } else if ((rc = write_config(path, text, a->replace)) == CLI_OK) {
        sw_pk_to_hex(&kp.pk, hex);
        if (ctx->json)
            printf("{\"public_key\":\"%s\",\"file\":\"%s\"}\n", hex, path);
        else
            printf("%s written; public key %s\n", path, hex);
    }
    json_object_put(doc);
    sw_keypair_wipe(&kp);
    return rc;
}

/* ---- tables ------------------------------------------------------------------------- */

static const char *jstr(struct json_object *o, const char *key)
{
    struct json_object *v = json_object_object_get(o, key);
    return v ? json_object_get_string(v) : "";
}

static void when(int64_t t, char *out, size_t cap)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void print_tp_row(struct json_object *t)
{
    char since[32];
    when(json_object_get_int64(json_object_object_get(t, "since")), since, sizeof(since));
    printf("%-36s  %-4s  %-10s  %-64s  %-4s  %12" PRIu64 "  %12" PRIu64 "  %-20s  %s\n", jstr(t, "id"),
           jstr(t, "type"), jstr(t, "state"), jstr(t, "remote_pk"),
           json_object_get_boolean(json_object_object_get(t, "is_initiator")) ? "yes" : "no",
           json_object_get_uint64(json_object_object_get(t, "bytes_sent")),
           json_object_get_uint64(json_object_object_get(t, "bytes_received")), since,
           jstr(t, "address"));
}

static void print_visor_transports(struct json_object *v)
{
    printf("%-36s  %-4s  %-10s  %-64s  %-4s  %12s  %12s  %-20s  %s\n", "ID", "TYPE", "STATE",
           "REMOTE_PK", "INIT", "SENT", "RECEIVED", "SINCE", "ADDRESS");
    if (json_object_is_type(v, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(v); i++)
            print_tp_row(json_object_array_get_idx(v, i));
    } else {
        print_tp_row(v);
    }
}

/* "membership": null in an open network, else the visor's certificate. */
static void print_membership(struct json_object *m)
{
    struct json_object *g = json_object_object_get(m, "groups");
    char from[32], until[32], groups[256] = "";
    size_t n = 0;

    if (!json_object_is_type(m, json_type_object)) {
        printf("membership:     open network\n");
        return;
    }
    when(json_object_get_int64(json_object_object_get(m, "not_before")), from, sizeof(from));
    when(json_object_get_int64(json_object_object_get(m, "not_after")), until, sizeof(until));
    for (size_t i = 0; json_object_is_type(g, json_type_array) && i < json_object_array_length(g); i++) {
        int k = snprintf(groups + n, sizeof(groups) - n, "%s%s", i ? "," : "",
                         json_object_get_string(json_object_array_get_idx(g, i)));
        if (k < 0 || (size_t)k >= sizeof(groups) - n)
            break;
        n += (size_t)k;
    }
    printf("network:        %s\n", jstr(m, "network"));
    printf("member:         %s \"%s\"%s%s, valid %s .. %s\n", jstr(m, "role"), jstr(m, "name"),
           n ? ", groups " : "", groups, from, until);
}

static void print_summary(struct json_object *v)
{
    struct json_object *m = json_object_object_get(v, "messaging");
    printf("public key:     %s\n", jstr(v, "public_key"));
    printf("version:        %s\n", jstr(v, "version"));
    printf("uptime:         %s s\n", jstr(v, "uptime_s"));
    printf("transports:     %s (%s up)\n", jstr(v, "transports"), jstr(v, "transports_up"));
    printf("stcp listen:    %s\n", *jstr(v, "stcp_listen") ? jstr(v, "stcp_listen") : "off");
    printf("messaging:      %s, %s sessions\n",
           json_object_get_boolean(json_object_object_get(m, "enabled")) ? "on" : "off",
           jstr(m, "sessions"));
    print_membership(json_object_object_get(v, "membership"));
}

static void print_pk(struct json_object *v)
{
    printf("%s\n", jstr(v, "public_key"));
}

static void print_removed(struct json_object *v)
{
    printf("removed %s\n", jstr(v, "removed"));
}

/* ---- API calls ----------------------------------------------------------------------- */

int cli_request(struct cli_ctx *ctx, const char *base, const char *method, const char *target,
                const char *body, void (*table)(struct json_object *))
{
    return cli_request_with(ctx, base, method, target, NULL, body, table);
}

int cli_request_with(struct cli_ctx *ctx, const char *base, const char *method, const char *target,
                     const char *const *headers, const char *body, void (*table)(struct json_object *))
{
    struct sw_http_result res = { 0 };
    struct sw_error err = { 0 };
    char url[2048];
    int rc;

    if (ctx->hv && strncmp(target, "/api/", 5) == 0)
        return cli_hv_request(ctx, method, target, body, table);
    snprintf(url, sizeof(url), "%s%s", base, target);
    if (sw_http_do(ctx->http, method, url, headers, body, body ? strlen(body) : 0, &res, &err)) {
        fprintf(stderr, "skywire-cli: %s\n", err.msg);
        return CLI_FAIL;
    }
    rc = cli_print_reply(ctx, &res, table);
    sw_http_result_free(&res);
    return rc;
}

static int need_id(const struct node_args *a, const char *cmd, char out[SW_UUID_STR_LEN + 1])
{
    struct sw_uuid id;
    struct sw_error err = { 0 };
    if (a->npos != 1) {
        fprintf(stderr, "usage: skywire-cli node %s ID\n", cmd);
        return CLI_USAGE;
    }
    if (sw_uuid_parse(&id, a->pos[0], "ID", &err)) {
        fprintf(stderr, "skywire-cli: %s\n", err.msg);
        return CLI_USAGE;
    }
    sw_uuid_format(&id, out);
    return CLI_OK;
}

static int cmd_add_tp(struct cli_ctx *ctx, const struct node_args *a)
{
    struct sw_pk pk;
    struct sw_error err = { 0 };
    struct json_object *body;
    int rc;

    if (a->npos != 1) {
        fprintf(stderr, "usage: skywire-cli node add-tp PK [--type stcp|dmsg] [--addr HOST:PORT]\n");
        return CLI_USAGE;
    }
    if (sw_pk_from_hex(&pk, a->pos[0], "PK", &err)) {
        fprintf(stderr, "skywire-cli: %s\n", err.msg);
        return CLI_USAGE;
    }
    if (strcmp(a->type, "stcp") != 0 && strcmp(a->type, "dmsg") != 0) {
        fprintf(stderr, "skywire-cli: --type must be stcp or dmsg\n");
        return CLI_USAGE;
    }
    body = json_object_new_object();
    json_object_object_add(body, "remote_pk", sw_json_pk(&pk));
    json_object_object_add(body, "type", json_object_new_string(a->type));
    if (a->addr)
        json_object_object_add(body, "address", json_object_new_string(a->addr));
    rc = cli_visor_request(ctx, a->api, "POST", "/api/transports", sw_json_compact(body, NULL),
                     print_visor_transports);
    json_object_put(body);
    return rc;
}

static int cmd_disc_tp(struct cli_ctx *ctx, const struct node_args *a)
{
    char target[256];
    if ((a->id != NULL) == (a->pk != NULL)) {
        fprintf(stderr, "usage: skywire-cli node disc-tp --id ID | --pk PK\n");
        return CLI_USAGE;
    }
    snprintf(target, sizeof(target), "/api/tpdisc?%s=%.100s", a->id ? "id" : "pk", a->id ? a->id : a->pk);
    return cli_visor_request(ctx, a->api, "GET", target, NULL, cli_print_transports_table);
}

static void print_log_lines(struct json_object *v)
{
    struct json_object *lines = json_object_object_get(v, "lines");
    for (size_t i = 0; json_object_is_type(lines, json_type_array) && i < json_object_array_length(lines); i++)
        printf("%s\n", json_object_get_string(json_object_array_get_idx(lines, i)));
}

/* app-logs NAME [--lines N]: the tail of the app's log (GET /api/apps/{name}/logs). */
static int cmd_app_logs(struct cli_ctx *ctx, const struct node_args *a)
{
    char target[160];
    long n = 100;

    if (a->npos != 1 || strlen(a->pos[0]) > 63 || strpbrk(a->pos[0], "/?#% ") ||
        (a->lines && sw_parse_long(a->lines, 1, 1000, &n))) {
        fprintf(stderr, "usage: skywire-cli node app-logs NAME [--lines 1..1000]\n");
        return CLI_USAGE;
    }
    snprintf(target, sizeof(target), "/api/apps/%s/logs?lines=%ld", a->pos[0], n);
    return cli_visor_request(ctx, a->api, "GET", target, NULL, print_log_lines);
}

static void node_usage(FILE *f)
{
    fprintf(f,
            "usage: skywire-cli node COMMAND [--json] [--config FILE] [--api URL] [--api-token-file FILE]\n"
            "  gen-config [-o FILE] [-r] [--tpd URL] [--mdisc URL] [--rf URL] [--stcp ADDR]\n"
            "             [--api-addr ADDR] [--data-dir DIR] [--log-level L] [--sessions N]\n"
            "             [--setup-node PK]... [--pk-table PK=HOST:PORT]... [--msg-server PK@HOST:PORT]...\n"
            "             [--no-apps] [--skychat-addr ADDR] [--ssh-allow PK]...\n"
            "             [--socks-srv PK] [--socks-addr ADDR]\n"
            "             [--socks-allow CIDR[,CIDR]]... [--socks-deny CIDR[,CIDR]]...  (socksproxy's exit policy)\n"
            "             [--network PK --cert-file FILE [--revocations URL|FILE]]  (a private network:\n"
            "             its key, where `net sign` puts this visor's certificate, the revocation list)\n"
            "  pk | summary | ls-tp | tp ID | rm-tp ID | ls-rules | rule ID | rm-rule ID\n"
            "  ls-apps | start-app NAME | stop-app NAME | app-logs NAME [--lines N]\n"
            "  add-tp PK [--type stcp|dmsg] [--addr HOST:PORT]\n"
            "  disc-tp --id ID | --pk PK\n"
            "  gen-config --hypervisor PK@HOST:PORT (repeatable): hypervisors this visor connects to\n"
            "  with skywire-cli --hypervisor URL: --visor PK names the managed visor\n"
            "  --config FILE: the visor's config, for its API address and token (default $SKYWIRE_CONFIG,\n"
            "                 else ./skywire-config.json when it exists, else the installed one)\n"
            "  --api URL: the visor's API (default $SKYWIRE_API_URL, else the config's api.listen)\n"
            "  --api-token-file FILE: the API token (default $SKYWIRE_API_TOKEN_FILE, else the\n"
            "                 config's data_dir/api-token)\n");
}

/* Outside gen-config, --tpd, --mdisc, --rf and --hypervisor URL are the global options. */
static void apply_globals(struct cli_ctx *ctx, const struct node_args *a)
{
    if (a->gen.tpd)
        cli_global_option(ctx, CLI_OPT_TPD, a->gen.tpd);
    if (a->gen.mdisc)
        cli_global_option(ctx, CLI_OPT_MDISC, a->gen.mdisc);
    if (a->gen.route_finder)
        cli_global_option(ctx, CLI_OPT_RF, a->gen.route_finder);
    if (a->gen.n_hypervisors) /* the last one, as for any repeated global option */
        cli_global_option(ctx, CLI_OPT_HYPERVISOR, a->hypervisors[a->gen.n_hypervisors - 1]);
}

int cli_node(struct cli_ctx *ctx, int argc, char **argv)
{
    struct node_args a;
    const char *sub;
    char id[SW_UUID_STR_LEN + 1], target[128];
    int rc;

    if ((rc = parse(ctx, argc, argv, &a)) || !a.sub) {
        node_usage(stderr);
        return rc ? rc : CLI_USAGE;
    }
    sub = a.sub;
    if (strcmp(sub, "gen-config") != 0)
        apply_globals(ctx, &a);
    cli_hv_set_visor(ctx, a.visor);
    if (strcmp(sub, "gen-config") == 0)
        return cmd_gen_config(ctx, &a);
    if (strcmp(sub, "pk") == 0)
        return cli_visor_request(ctx, a.api, "GET", "/api/summary", NULL, print_pk);
    if (strcmp(sub, "summary") == 0)
        return cli_visor_request(ctx, a.api, "GET", "/api/summary", NULL, print_summary);
    if (strcmp(sub, "ls-tp") == 0)
        return cli_visor_request(ctx, a.api, "GET", "/api/transports", NULL, print_visor_transports);
    if (strcmp(sub, "add-tp") == 0)
        return cmd_add_tp(ctx, &a);
    if (strcmp(sub, "disc-tp") == 0)
        return cmd_disc_tp(ctx, &a);
    if (strcmp(sub, "tp") == 0 || strcmp(sub, "rm-tp") == 0) {
        if ((rc = need_id(&a, sub, id)))
            return rc;
        snprintf(target, sizeof(target), "/api/transports/%s", id);
        if (sub[0] == 't')
            return cli_visor_request(ctx, a.api, "GET", target, NULL, print_visor_transports);
        return cli_visor_request(ctx, a.api, "DELETE", target, NULL, print_removed);
    }
    if (strcmp(sub, "app-logs") == 0)
        return cmd_app_logs(ctx, &a);
    if ((rc = cli_node_routes(ctx, sub, a.api, a.npos, a.pos)) >= 0)
        return rc;
    fprintf(stderr, "skywire-cli node: unknown command '%s'\n", sub);
    node_usage(stderr);
    return CLI_USAGE;
}
