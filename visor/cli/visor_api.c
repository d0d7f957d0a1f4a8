/* visor_api.c — how skywire-cli reaches the local visor's API: its URL and its bearer token
 * (docs/visor.md "skywire-cli" and "Access to the local API").
 *
 * The URL is --api / $SKYWIRE_API_URL, else the config's api.listen. The token is read from
 * --api-token-file / $SKYWIRE_API_TOKEN_FILE, else from the config's data_dir/api-token.
 * The config is --config / $SKYWIRE_CONFIG, else ./skywire-config.json when it exists, else
 * the installed one (CLI_INSTALLED_CONFIG). A relative data_dir is relative to the visor's
 * working directory, which the CLI cannot know: it tries the config file's directory (where
 * run-local.sh and the usual `skywire-visor skywire-config.json` run it) and then its own.
 * Everything is resolved once per run, on the first request; the token lives only in
 * ctx->visor.auth, is wiped by cli_visor_wipe and never printed. */
#include "visor/cli/cli.h"
#include "visor/config.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *env_or_null(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

/* The config to use; *chosen says whether the user named it. */
static const char *config_path(bool *chosen)
{
    const char *p = env_or_null("SKYWIRE_CONFIG");

    *chosen = p != NULL;
    if (p)
        return p;
    return access(VISOR_DEFAULT_CONFIG, F_OK) == 0 ? VISOR_DEFAULT_CONFIG : CLI_INSTALLED_CONFIG;
}

static int load_config(struct visor_config *cfg, const char **path)
{
    struct sw_error err = { 0 };
    bool chosen;
    int rc;

    *path = config_path(&chosen);
    if (!chosen && access(*path, F_OK) != 0) {
        fprintf(stderr,
                "skywire-cli: no visor config: neither ./%s nor %s exists; give --config FILE "
                "(the visor's config, or $SKYWIRE_CONFIG), or --api URL with --api-token-file FILE\n",
                VISOR_DEFAULT_CONFIG, CLI_INSTALLED_CONFIG);
        return CLI_FAIL;
    }
    if ((rc = visor_config_load(cfg, *path, &err))) {
        fprintf(stderr, "skywire-cli: %s%s\n", err.msg,
                rc == SW_EIO ? " (the config is the visor's secret: run as the visor's user)" : "");
        return CLI_FAIL;
    }
    return CLI_OK;
}

/* dir/data_dir/api-token into out; dir NULL for data_dir alone. */
static void token_path(const char *dir, size_t dir_len, const char *data_dir, char *out, size_t cap)
{
    if (dir)
        snprintf(out, cap, "%.*s/%s/%s", (int)dir_len, dir, data_dir, VISOR_API_TOKEN_FILE);
    else
        snprintf(out, cap, "%s/%s", data_dir, VISOR_API_TOKEN_FILE);
}

/* The token of the visor configured by cfg (at config_file); messages say where it looked. */
static int token_from_config(const struct visor_config *cfg, const char *config_file,
                             char token[VISOR_API_TOKEN_HEX + 1])
{
    char first[PATH_MAX + 64], second[PATH_MAX + 64];
    const char *slash = strrchr(config_file, '/');
    struct sw_error e1 = { 0 }, e2 = { 0 };
    int rc;

    if (cfg->data_dir[0] == '/' || !slash || (slash == config_file + 1 && config_file[0] == '.')) {
        token_path(NULL, 0, cfg->data_dir, first, sizeof(first));
        if ((rc = visor_api_token_read(first, false, token, &e1)) == SW_OK)
            return CLI_OK;
        fprintf(stderr, "skywire-cli: no API token: %s (data_dir of %s)%s\n", e1.msg, config_file,
                rc == SW_ENOTFOUND ? "; the visor makes it at its first start" : "");
        return CLI_FAIL;
    }
    token_path(config_file, (size_t)(slash - config_file), cfg->data_dir, first, sizeof(first));
    token_path(NULL, 0, cfg->data_dir, second, sizeof(second));
    if (visor_api_token_read(first, false, token, &e1) == SW_OK ||
        visor_api_token_read(second, false, token, &e2) == SW_OK)
        return CLI_OK;
    fprintf(stderr,
            "skywire-cli: no API token: data_dir '%s' of %s is relative to the visor's working "
            "directory; tried the config's directory: %s; and this one: %s. Give --api-token-file "
            "FILE, or make data_dir absolute\n", cfg->data_dir, config_file, e1.msg, e2.msg);
    return CLI_FAIL;
}

/* Finds URL and token (see the top of the file) into ctx->visor. */
static int resolve(struct cli_ctx *ctx, const char *api)
{
    const char *token_file = env_or_null("SKYWIRE_API_TOKEN_FILE"), *config_file = NULL;
    struct visor_config *cfg = NULL;
    struct sw_error err = { 0 };
    char token[VISOR_API_TOKEN_HEX + 1];
    int rc = CLI_FAIL;

    if (!api)
        api = env_or_null("SKYWIRE_API_URL");
    if ((!api || !token_file) &&
        (!(cfg = calloc(1, sizeof(*cfg))) || load_config(cfg, &config_file) != CLI_OK))
        goto out;
    if (api)
        snprintf(ctx->visor.url, sizeof(ctx->visor.url), "%s", api);
    else if (visor_config_api_url(cfg, ctx->visor.url, sizeof(ctx->visor.url)))
        goto out;
    if (token_file && visor_api_token_read(token_file, false, token, &err)) {
        fprintf(stderr, "skywire-cli: no API token: %s (from --api-token-file or "
                        "$SKYWIRE_API_TOKEN_FILE)\n", err.msg);
        goto out;
    }
    if (!token_file && token_from_config(cfg, config_file, token) != CLI_OK)
        goto out;
    snprintf(ctx->visor.auth, sizeof(ctx->visor.auth), "Authorization: Bearer %s", token);
    ctx->visor.ready = true;
    rc = CLI_OK;
out:
    sodium_memzero(token, sizeof(token));
    if (cfg)
        visor_config_free(cfg);
    free(cfg);
    return rc;
}

int cli_visor_request(struct cli_ctx *ctx, const char *api, const char *method, const char *target,
                      const char *body, void (*table)(struct json_object *))
{
    const char *headers[2] = { ctx->visor.auth, NULL };

    if (ctx->hv)
        return cli_hv_request(ctx, method, target, body, table);
    if (!ctx->visor.ready && resolve(ctx, api) != CLI_OK)
        return CLI_FAIL;
    return cli_request_with(ctx, ctx->visor.url, method, target, headers, body, table);
}

void cli_visor_wipe(struct cli_ctx *ctx)
{
    sodium_memzero(&ctx->visor, sizeof(ctx->visor));
}
