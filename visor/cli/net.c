/* net: a private network from the operator's side — its signing key, the membership
 * certificates it issues and its revocation list (docs/visor.md "Private networks: skywire-cli
 * net"; formats in common/netcert.h). The network key is a key file like any other
 * (common/keys.h) and never leaves this command: certificates and lists are signed here. */
#include "common/clock.h"
#include "common/fs.h"
#include "common/json.h"
#include "common/keys.h"
#include "common/netcert.h"
#include "common/num.h"
#include "visor/cli/cli.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define NET_DEFAULT_KEY_FILE "network-key.json"
#define NET_DEFAULT_EXPIRY_S (365LL * 86400)
#define NET_MAX_EXPIRY_S (100LL * 365 * 86400)
#define NET_LIST_FILE_MAX (2 * SW_REVLIST_MAX_LEN + 16)

struct net_args {
    const char *out, *key, *pk, *role, *name, *groups, *expires, *file;
    bool undo;
};

static int usage(void)
{
    fprintf(stderr,
            "usage: skywire-cli net init [--out FILE]\n"
            "       skywire-cli net sign --key NETKEY --pk PK --role visor|messaging-server|setup-node|service\n"
            "                            [--name N] [--groups a,b] [--expires DURATION] [--out FILE]\n"
            "       skywire-cli net show FILE|HEX\n"
            "       skywire-cli net revoke --key NETKEY --pk PK [--tpd URL | --file F] [--undo]\n"
            "       skywire-cli net revocations [--tpd URL | --file F]\n"
            "DURATION: a number with s, m, h or d (90d, 12h, 30m, 3600s); default 365d\n");
    return CLI_USAGE;
}

static int parse(struct cli_ctx *ctx, int argc, char **argv, struct net_args *a)
{
    static const struct option own[] = {
        { "out", required_argument, NULL, 'o' },     { "key", required_argument, NULL, 'k' },
        { "pk", required_argument, NULL, 'p' },      { "role", required_argument, NULL, 'r' },
        { "name", required_argument, NULL, 'n' },    { "groups", required_argument, NULL, 'g' },
        { "expires", required_argument, NULL, 'e' }, { "file", required_argument, NULL, 'f' },
        { "undo", no_argument, NULL, 'u' },          { NULL, 0, NULL, 0 },
    };
    struct option opts[CLI_MAX_OPTIONS];
    int c;

    *a = (struct net_args){ .name = "", .groups = "" };
    cli_options(own, opts, CLI_MAX_OPTIONS);
    while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
        switch (c) {
        case 'o': a->out = optarg; break;
        case 'k': a->key = optarg; break;
        case 'p': a->pk = optarg; break;
        case 'r': a->role = optarg; break;
        case 'n': a->name = optarg; break;
        case 'g': a->groups = optarg; break;
        case 'e': a->expires = optarg; break;
        case 'f': a->file = optarg; break;
        case 'u': a->undo = true; break;
        default:
            if (!cli_global_option(ctx, c, optarg))
                return CLI_USAGE;
        }
    }
    return CLI_OK;
}

static int need(const char *v, const char *flag)
{
    if (v)
        return 0;
    fprintf(stderr, "skywire-cli net: %s is required\n", flag);
    return 1;
}

static int fail(const struct sw_error *err)
{
    fprintf(stderr, "skywire-cli: %s\n", err->msg);
    return CLI_FAIL;
}

static void print_json(struct json_object *o)
{
    printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
}

static const char *tpd_url(void)
{
    const char *env = getenv("SKYWIRE_TPD_URL"); /* --tpd sets it */
    return env && *env ? env : "http://127.0.0.1:9091";
}

static void utc(uint64_t t, char *out, size_t cap)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (gmtime_r(&tt, &tm))
        strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
    else
        snprintf(out, cap, "%llu", (unsigned long long)t);
}

/* "90d", "12h", "30m", "3600s" or plain seconds. */
static int parse_duration(const char *s, int64_t *out)
{
    char digits[24];
    size_t n = strlen(s);
    uint64_t v, unit = 1;
    if (n == 0 || n >= sizeof(digits))
        return SW_EINVAL;
    switch (s[n - 1]) {
    case 'd': unit = 86400; n--; break;
    case 'h': unit = 3600; n--; break;
    case 'm': unit = 60; n--; break;
    case 's': n--; break;
    default: break;
    }
    memcpy(digits, s, n);
    digits[n] = '\0';
    if (sw_parse_u64(digits, 1, (uint64_t)NET_MAX_EXPIRY_S, &v) || v * unit > (uint64_t)NET_MAX_EXPIRY_S)
        return SW_EINVAL;
    *out = (int64_t)(v * unit);
    return SW_OK;
}

/* ---- init ----------------------------------------------------------------------------- */

static int cmd_init(struct cli_ctx *ctx, const struct net_args *a)
{
    const char *out = a->out ? a->out : NET_DEFAULT_KEY_FILE;
    struct sw_keypair kp;
    struct sw_error err = { 0 };
    char hex[SW_PK_HEX_LEN + 1];
    int rc;

    if (sw_keypair_generate(&kp))
        return CLI_FAIL;
    rc = sw_keyfile_save(out, &kp, &err); /* O_EXCL, mode 0600 */
    sw_pk_to_hex(&kp.pk, hex);
    sw_keypair_wipe(&kp);
    if (rc == SW_EEXIST) {
        fprintf(stderr, "skywire-cli: %s exists: a network key is never overwritten (every certificate "
                        "it signed would stop working); remove it first if that is what you want\n", out);
        return CLI_FAIL;
    }
    if (rc)
        return fail(&err);
    if (ctx->json) {
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "public_key", json_object_new_string(hex));
        json_object_object_add(o, "file", json_object_new_string(out));
        print_json(o);
        json_object_put(o);
    } else {
        printf("%s\n", hex);
        fprintf(stderr, "network key written to %s (mode 0600): keep it offline; give daemons and visors "
                        "only the public key above\n", out);
    }
    return CLI_OK;
}

/* ---- certificates --------------------------------------------------------------------- */

static struct json_object *cert_json(const struct sw_cert *c)
{
    struct json_object *o = json_object_new_object(), *groups = json_object_new_array();
    char hex[SW_CERT_HEX_MAX + 1], pk[SW_PK_HEX_LEN + 1], when[40];
    struct sw_error err = { 0 };
    uint64_t now = (uint64_t)(sw_unix_ms() / 1000);
    const char *g = c->groups;

    json_object_object_add(o, "version", json_object_new_int(c->version));
    json_object_object_add(o, "role", json_object_new_string(sw_role_name(c->role)));
    sw_pk_to_hex(&c->subject, pk);
    json_object_object_add(o, "public_key", json_object_new_string(pk));
    json_object_object_add(o, "name", json_object_new_string(c->name));
    while (*g) {
        size_t n = strcspn(g, ",");
        json_object_array_add(groups, json_object_new_string_len(g, (int)n));
        g += n + (g[n] == ',');
    }
    json_object_object_add(o, "groups", groups);
    sw_pk_to_hex(&c->network, pk);
    json_object_object_add(o, "network", json_object_new_string(pk));
    json_object_object_add(o, "not_before", json_object_new_int64((int64_t)c->not_before));
    utc(c->not_before, when, sizeof(when));
    json_object_object_add(o, "not_before_utc", json_object_new_string(when));
    json_object_object_add(o, "not_after", json_object_new_int64((int64_t)c->not_after));
    utc(c->not_after, when, sizeof(when));
    json_object_object_add(o, "not_after_utc", json_object_new_string(when));
    json_object_object_add(o, "expired", json_object_new_boolean(now >= c->not_after));
    /* by the network the certificate names; whether that is the right network is for
     * the daemon configured with it to say */
    json_object_object_add(o, "signature_valid",
                           json_object_new_boolean(sw_cert_verify(c, &c->network, c->not_before, &err) == SW_OK));
    if (sw_cert_to_hex(c, hex, sizeof(hex)) == SW_OK)
        json_object_object_add(o, "cert", json_object_new_string(hex));
    return o;
}

static int copy_field(char *dst, size_t cap, const char *src, const char *flag)
{
    size_t n = strlen(src);
    if (n >= cap) {
        fprintf(stderr, "skywire-cli net sign: %s is longer than %zu characters\n", flag, cap - 1);
        return CLI_USAGE;
    }
    memcpy(dst, src, n + 1);
    return CLI_OK;
}

static int cmd_sign(struct cli_ctx *ctx, const struct net_args *a)
{
    struct sw_keypair kp;
    struct sw_cert c;
    struct sw_error err = { 0 };
    int64_t expires = NET_DEFAULT_EXPIRY_S, now = sw_unix_ms() / 1000;
    unsigned role;
    int rc = CLI_FAIL;

    if (need(a->key, "--key") || need(a->pk, "--pk") || need(a->role, "--role"))
        return CLI_USAGE;
    memset(&c, 0, sizeof(c));
    if (sw_pk_from_hex(&c.subject, a->pk, "--pk", &err) || sw_role_parse(a->role, &role, &err)) {
        fprintf(stderr, "skywire-cli net sign: %s\n", err.msg);
        return CLI_USAGE;
    }
    if (a->expires && parse_duration(a->expires, &expires)) {
        fprintf(stderr, "skywire-cli net sign: --expires '%s': a duration such as 90d, 12h, 30m or 3600s "
                        "(at most 100 years)\n", a->expires);
        return CLI_USAGE;
    }
    if (copy_field(c.name, sizeof(c.name), a->name, "--name") ||
        copy_field(c.groups, sizeof(c.groups), a->groups, "--groups"))
        return CLI_USAGE;
    c.role = (uint8_t)role;
    c.not_before = (uint64_t)now;
    c.not_after = (uint64_t)(now + expires);
    if (sw_cert_check_fields(&c, &err)) {
        fprintf(stderr, "skywire-cli net sign: %s\n", err.msg);
        return CLI_USAGE;
    }
    if (sw_keyfile_load(a->key, &kp, &err))
        return fail(&err);
    if (sw_cert_sign(&c, &kp, &err) || (a->out && sw_cert_save_file(a->out, &c, &err))) {
        fail(&err);
        goto out;
    }
    if (ctx->json) {
        struct json_object *o = cert_json(&c);
        if (a->out)
            json_object_object_add(o, "file", json_object_new_string(a->out));
        print_json(o);
        json_object_put(o);
    } else if (a->out) {
        char when[40];
        utc(c.not_after, when, sizeof(when));
        printf("certificate for %s (role %s%s%s) valid until %s written to %s\n", a->pk, sw_role_name(c.role),
               c.name[0] ? ", name " : "", c.name, when, a->out);
    } else {
        char hex[SW_CERT_HEX_MAX + 1];
        sw_cert_to_hex(&c, hex, sizeof(hex));
        printf("%s\n", hex);
    }
    rc = CLI_OK;
out:
    sw_keypair_wipe(&kp);
    return rc;
}

static int cmd_show(struct cli_ctx *ctx, int argc, char **argv)
{
    struct sw_cert c;
    struct sw_error err = { 0 };
    struct stat st;
    const char *arg;
    struct json_object *o;

    if (optind + 1 != argc)
        return usage();
    arg = argv[optind];
    if (stat(arg, &st) == 0) {
        if (sw_cert_load_file(arg, &c, NULL, NULL, &err))
            return fail(&err);
    } else if (sw_cert_from_hex(arg, strlen(arg), &c, NULL, 0, NULL, &err)) {
        fprintf(stderr, "skywire-cli net show: '%.80s' is neither a file nor a certificate: %s\n", arg, err.msg);
        return CLI_FAIL;
    }
    o = cert_json(&c);
    print_json(o);
    json_object_put(o);
    (void)ctx;
    return CLI_OK;
}

/* ---- revocation lists ----------------------------------------------------------------- */

/* Reads a list file (hex, surrounding whitespace ignored). *found = false when the file
 * does not exist (nothing revoked yet). */
static int read_list_file(const char *path, struct sw_revlist *l, bool *found, struct sw_error *err)
{
    char *buf;
    size_t n = 0, start = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC), rc;

    *found = false;
    if (fd < 0)
        return errno == ENOENT ? SW_OK : sw_error_set(err, SW_EIO, "%s: %s", path, strerror(errno));
    if (!(buf = malloc(NET_LIST_FILE_MAX + 1))) {
        close(fd);
        return sw_error_set(err, SW_ENOMEM, "out of memory");
    }
    for (;;) {
        ssize_t r = read(fd, buf + n, NET_LIST_FILE_MAX + 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
        if (n > NET_LIST_FILE_MAX)
            break;
    }
    close(fd);
    while (start < n && (buf[start] == ' ' || buf[start] == '\n' || buf[start] == '\r' || buf[start] == '\t'))
        start++;
    while (n > start && (buf[n - 1] == ' ' || buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == '\t'))
        n--;
    if (n > NET_LIST_FILE_MAX)
        rc = sw_error_set(err, SW_ERANGE, "%s: not a revocation list file", path);
    else if (n == start)
        rc = SW_OK; /* empty: nothing revoked yet */
    else if ((rc = sw_revlist_from_hex(buf + start, n - start, l, err)) == SW_OK)
        *found = true;
    free(buf);
    return rc;
}

/* GET {url}/network/revocations. *found = false on 404 no_revocations. */
static int fetch_list(struct cli_ctx *ctx, const char *base, struct sw_revlist *l, bool *found,
                      struct sw_error *err)
{
    struct sw_http_result res = { 0 };
    struct json_object *root = NULL;
    const char *hex, *code = NULL;
    char url[1024];
    int rc;

    *found = false;
    snprintf(url, sizeof(url), "%s/network/revocations", base);
    if ((rc = sw_http_do(ctx->http, "GET", url, NULL, NULL, 0, &res, err)))
        return rc;
    if (sw_json_parse(res.body, res.body_len, &root, NULL) == SW_OK)
        code = json_object_get_string(json_object_object_get(json_object_object_get(root, "error"), "code"));
    if (res.status == 404 && code && strcmp(code, "no_revocations") == 0) {
        rc = SW_OK;
    } else if (res.status != 200 || !root) {
        rc = sw_error_set(err, SW_EIO, "GET %s: HTTP %ld %s", url, res.status, code ? code : "");
    } else if ((rc = sw_json_get_string(root, "list", "reply", 2 * SW_REVLIST_MAX_LEN, &hex, err)) == SW_OK &&
               (rc = sw_revlist_from_hex(hex, strlen(hex), l, err)) == SW_OK) {
        *found = true;
    }
    json_object_put(root);
    sw_http_result_free(&res);
    return rc;
}

static int load_list(struct cli_ctx *ctx, const struct net_args *a, struct sw_revlist *l, bool *found,
                     struct sw_error *err)
{
    memset(l, 0, sizeof(*l));
    return a->file ? read_list_file(a->file, l, found, err) : fetch_list(ctx, tpd_url(), l, found, err);
}

static struct json_object *list_json(const struct sw_revlist *l, bool found)
{
    struct json_object *o = json_object_new_object(), *keys = json_object_new_array();
    char pk[SW_PK_HEX_LEN + 1], when[40];
    if (found) {
        sw_pk_to_hex(&l->network, pk);
        json_object_object_add(o, "network", json_object_new_string(pk));
    }
    json_object_object_add(o, "issued_at", json_object_new_int64((int64_t)l->issued_at));
    if (found) {
        utc(l->issued_at, when, sizeof(when));
        json_object_object_add(o, "issued_at_utc", json_object_new_string(when));
    }
    for (uint32_t i = 0; i < l->count; i++) {
        sw_pk_to_hex(&l->keys[i], pk);
        json_object_array_add(keys, json_object_new_string(pk));
    }
    json_object_object_add(o, "revoked", keys);
    return o;
}

/* Writes the list where it came from: PUT to the transport discovery, or the file. */
static int publish(struct cli_ctx *ctx, const struct net_args *a, const struct sw_revlist *l, struct sw_error *err)
{
    struct sw_http_result res = { 0 };
    char *hex = NULL, *body = NULL, url[1024];
    size_t n;
    int rc;

    if ((rc = sw_revlist_to_hex(l, &hex)))
        return sw_error_set(err, rc, "revocation list cannot be encoded");
    n = strlen(hex);
    if (a->file) {
        char *text = malloc(n + 2);
        if (!text) {
            free(hex);
            return sw_error_set(err, SW_ENOMEM, "out of memory");
        }
        memcpy(text, hex, n);
        text[n] = '\n';
        rc = sw_write_file_atomic(a->file, text, n + 1, 0644, err);
        free(text);
        free(hex);
        return rc;
    }
    if (!(body = malloc(n + 16))) {
        free(hex);
        return sw_error_set(err, SW_ENOMEM, "out of memory");
    }
    snprintf(body, n + 16, "{\"list\":\"%s\"}", hex);
    free(hex);
    snprintf(url, sizeof(url), "%s/network/revocations", tpd_url());
    rc = sw_http_do(ctx->http, "PUT", url, NULL, body, strlen(body), &res, err);
    free(body);
    if (rc)
        return rc;
    if (res.status != 200) {
        struct json_object *root = NULL;
        struct json_object *e = NULL;
        if (sw_json_parse(res.body, res.body_len, &root, NULL) == SW_OK)
            e = json_object_object_get(root, "error");
        rc = sw_error_set(err, SW_EIO, "PUT %s: HTTP %ld %s: %s", url, res.status,
                          e ? json_object_get_string(json_object_object_get(e, "code")) : "",
                          e ? json_object_get_string(json_object_object_get(e, "message")) : "");
        json_object_put(root);
    }
    sw_http_result_free(&res);
    return rc;
}

static int cmd_revoke(struct cli_ctx *ctx, const struct net_args *a)
{
    struct sw_keypair kp;
    struct sw_revlist l = { 0 };
    struct sw_error err = { 0 };
    struct sw_pk pk;
    bool found = false;
    int rc = CLI_FAIL, u;

    if (need(a->key, "--key") || need(a->pk, "--pk"))
        return CLI_USAGE;
    if (sw_pk_from_hex(&pk, a->pk, "--pk", &err)) {
        fprintf(stderr, "skywire-cli net revoke: %s\n", err.msg);
        return CLI_USAGE;
    }
    if (sw_keyfile_load(a->key, &kp, &err))
        return fail(&err);
    if (load_list(ctx, a, &l, &found, &err)) {
        fail(&err);
        goto out;
    }
    if (found && sw_revlist_verify(&l, &kp.pk, &err)) {
        fprintf(stderr, "skywire-cli: the current revocation list does not verify with %s: %s\n", a->key,
                err.msg);
        goto out;
    }
    u = sw_revlist_update(&l, &pk, a->undo);
    if (u == SW_EEXIST || u == SW_ENOTFOUND) {
        fprintf(stderr, "skywire-cli: %s %s; the list is unchanged\n", a->pk,
                u == SW_EEXIST ? "is revoked already" : "is not revoked");
        rc = CLI_OK;
        goto out;
    }
    if (u) {
        fprintf(stderr, "skywire-cli: %s\n", u == SW_ERANGE ? "the revocation list is full" : sw_strerror(u));
        goto out;
    }
    /* issued_at = max(now, old + 1): every component takes only a newer list */
    if (sw_revlist_sign(&l, &kp, (uint64_t)(sw_unix_ms() / 1000))) {
        fprintf(stderr, "skywire-cli: out of memory signing the revocation list\n");
        goto out;
    }
    if (publish(ctx, a, &l, &err)) {
        fail(&err);
        goto out;
    }
    if (ctx->json) {
        struct json_object *o = list_json(&l, true);
        print_json(o);
        json_object_put(o);
    } else {
        printf("%s %s: the list issued at %llu holds %u key(s), %s %s\n", a->undo ? "reinstated" : "revoked",
               a->pk, (unsigned long long)l.issued_at, l.count, a->file ? "written to" : "published to",
               a->file ? a->file : tpd_url());
    }
    rc = CLI_OK;
out:
    sw_revlist_free(&l);
    sw_keypair_wipe(&kp);
    return rc;
}

static int cmd_revocations(struct cli_ctx *ctx, const struct net_args *a)
{
    struct sw_revlist l = { 0 };
    struct sw_error err = { 0 };
    struct json_object *o;
    bool found = false;

    if (load_list(ctx, a, &l, &found, &err))
        return fail(&err);
    /* by the network the list names (the daemons check it is theirs) */
    if (found && sw_revlist_verify(&l, &l.network, &err)) {
        sw_revlist_free(&l);
        return fail(&err);
    }
    o = list_json(&l, found);
    print_json(o);
    json_object_put(o);
    if (!found)
        fprintf(stderr, "no revocation list published yet\n");
    sw_revlist_free(&l);
    return CLI_OK;
}

int cli_net(struct cli_ctx *ctx, int argc, char **argv)
{
    struct net_args a;
    const char *sub;

    if (parse(ctx, argc, argv, &a) || optind >= argc)
        return usage();
    sub = argv[optind++];
    if (strcmp(sub, "show") == 0)
        return cmd_show(ctx, argc, argv);
    if (optind != argc) {
        fprintf(stderr, "skywire-cli net %s: unexpected argument '%s'\n", sub, argv[optind]);
        return usage();
    }
    if (strcmp(sub, "init") == 0)
        return cmd_init(ctx, &a);
    if (strcmp(sub, "sign") == 0)
        return cmd_sign(ctx, &a);
    if (strcmp(sub, "revoke") == 0)
        return cmd_revoke(ctx, &a);
    if (strcmp(sub, "revocations") == 0)
        return cmd_revocations(ctx, &a);
    fprintf(stderr, "skywire-cli net: unknown subcommand '%s'\n", sub);
    return usage();
}
