/* cli.h — shared pieces of skywire-cli's commands. */
#ifndef SW_CLI_H
#define SW_CLI_H

#include <json-c/json.h>
#include <stdbool.h>

#include "common/http_client.h"

struct cli_hv;

struct cli_ctx {
    bool json;                  /* --json: print raw JSON instead of tables */
    struct sw_http_client *http;
    struct cli_hv *hv;          /* --hypervisor: node commands go through it (hv.c) */
};

/* Exit codes: 0 ok, 1 the service said no / failed, 2 usage error. */
enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

int cli_tpdisc(struct cli_ctx *ctx, int argc, char **argv);
int cli_keygen(struct cli_ctx *ctx, int argc, char **argv);
int cli_node(struct cli_ctx *ctx, int argc, char **argv);
int cli_mdisc(struct cli_ctx *ctx, int argc, char **argv);
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
