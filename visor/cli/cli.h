/* cli.h — shared pieces of skywire-cli's commands. */
#ifndef SW_CLI_H
#define SW_CLI_H

#include <getopt.h>
#include <json-c/json.h>
#include <stdbool.h>

#include "common/http_client.h"

struct cli_hv;

/* Where `make install` puts the visor's config (scripts/install-config.sh). */
#ifndef SW_SYSCONFDIR
#define SW_SYSCONFDIR "/etc" /* the Makefile's SYSCONFDIR default */
#endif
#define CLI_INSTALLED_CONFIG SW_SYSCONFDIR "/skywire/skywire-config.json"

/* The local visor's API, found on first use (visor_api.c). */
struct cli_visor {
    bool ready;
    char url[320];
    char auth[96]; /* "Authorization: Bearer <token>": secret, wiped by cli_visor_wipe */
};

struct cli_ctx {
    bool json;                  /* --json: print raw JSON instead of tables */
    struct sw_http_client *http;
    struct cli_hv *hv;          /* --hypervisor: node commands go through it (hv.c) */
    struct cli_visor visor;
};

/* Exit codes: 0 ok, 1 the service said no / failed, 2 usage error. */
enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

/* globals.c: --json, --hypervisor URL, --api URL, --config FILE, --api-token-file FILE,
 * --tpd URL, --mdisc URL, --rf URL are taken before or after the command word. The URL and
 * file ones set their environment variable ($SKYWIRE_API_URL, ...), which the commands read
 * once their options are parsed. A command builds its getopt table with cli_options (its
 * own options first: one of the same name keeps the command's meaning) and hands the ids it
 * does not know to cli_global_option. */
enum {
    CLI_OPT_JSON = 0x1000, CLI_OPT_HYPERVISOR, CLI_OPT_API, CLI_OPT_CONFIG, CLI_OPT_TOKEN_FILE,
    CLI_OPT_TPD, CLI_OPT_MDISC, CLI_OPT_RF,
};
#define CLI_MAX_OPTIONS 64
/* own (NULL-terminated, may be NULL) then the global options into out (cap entries, ended
 * by a zero entry), and rewinds getopt for a new scan. CLI_OK, or CLI_FAIL when out is too
 * small. */
int cli_options(const struct option *own, struct option *out, size_t cap);
/* Applies global option id; false when id is not one. */
bool cli_global_option(struct cli_ctx *ctx, int id, const char *val);

int cli_tpdisc(struct cli_ctx *ctx, int argc, char **argv);
int cli_keygen(struct cli_ctx *ctx, int argc, char **argv);
int cli_node(struct cli_ctx *ctx, int argc, char **argv);
int cli_mdisc(struct cli_ctx *ctx, int argc, char **argv);
/* net.c: net init | sign | show | revoke | revocations (a private network's key, certificates
 * and revocation list). */
int cli_net(struct cli_ctx *ctx, int argc, char **argv);
/* routes.c: node ls-rules | rule ID | rm-rule ID (-1 when sub is none of them); rtfind. */
int cli_node_routes(struct cli_ctx *ctx, const char *sub, const char *api, int npos, char **pos);
int cli_rtfind(struct cli_ctx *ctx, int argc, char **argv);
/* hv.c: the hypervisor mode. cli_request sends /api/ targets through cli_hv_request when
 * ctx->hv is set (to /api/visors/{--visor}/...), logging in on first use. */
void cli_hv_set_url(struct cli_ctx *ctx, const char *url);
void cli_hv_set_visor(struct cli_ctx *ctx, const char *pk);
int cli_hv_request(struct cli_ctx *ctx, const char *method, const char *target, const char *body,
                   void (*table)(struct json_object *));
void cli_hv_logout(struct cli_ctx *ctx);
int cli_hv(struct cli_ctx *ctx, int argc, char **argv);

/* GET/POST/DELETE base+target without signing and prints the reply (cli_print_reply). */
int cli_request(struct cli_ctx *ctx, const char *base, const char *method, const char *target,
                const char *body, void (*table)(struct json_object *));
/* The same with extra headers (NULL-terminated "Name: value" list, may be NULL). */
int cli_request_with(struct cli_ctx *ctx, const char *base, const char *method, const char *target,
                     const char *const *headers, const char *body, void (*table)(struct json_object *));

/* visor_api.c: a request to the local visor's API: through the hypervisor with --hypervisor,
 * else to api (--api; NULL: $SKYWIRE_API_URL or the config's api.listen) with the bearer
 * token of --api-token-file / $SKYWIRE_API_TOKEN_FILE or of the config (--config /
 * $SKYWIRE_CONFIG / ./skywire-config.json / the installed one). CLI_FAIL, saying where it
 * looked, when there is no token. */
int cli_visor_request(struct cli_ctx *ctx, const char *api, const char *method, const char *target,
                      const char *body, void (*table)(struct json_object *));
void cli_visor_wipe(struct cli_ctx *ctx);

/* Prints a service reply: JSON as is with --json, else via table(). Non-2xx replies print
 * the service's error message and return CLI_FAIL. */
int cli_print_reply(struct cli_ctx *ctx, const struct sw_http_result *res,
                    void (*table)(struct json_object *));
void cli_print_transports_table(struct json_object *v);

/* tty_out.c: on a terminal, stdout and stderr go through cli_tty_clean. */
void cli_tty_sanitize(void);
/* Copies n bytes of in to out (room for n + 1) with control characters as '?'; *after_c2
 * carries a UTF-8 lead byte 0xC2 from one call to the next. Returns the bytes written. */
size_t cli_tty_clean(char *out, const char *in, size_t n, bool *after_c2);

#endif
