/* globals: the options every command takes, before or after the command word (as git and
 * kubectl do). One table: main.c parses the ones before the command with it, and every
 * command's getopt table ends with it (cli_options). */
#include "visor/cli/cli.h"

#include <stdlib.h>
#include <string.h>

/* A URL or file option is the same as its environment variable (where commands read it). */
static const struct {
    struct option opt;
    const char *env;
} globals[] = {
    { { "json", no_argument, NULL, CLI_OPT_JSON }, NULL },
    { { "hypervisor", required_argument, NULL, CLI_OPT_HYPERVISOR }, NULL },
    { { "api", required_argument, NULL, CLI_OPT_API }, "SKYWIRE_API_URL" },
    { { "config", required_argument, NULL, CLI_OPT_CONFIG }, "SKYWIRE_CONFIG" },
    { { "api-token-file", required_argument, NULL, CLI_OPT_TOKEN_FILE }, "SKYWIRE_API_TOKEN_FILE" },
    { { "tpd", required_argument, NULL, CLI_OPT_TPD }, "SKYWIRE_TPD_URL" },
    { { "mdisc", required_argument, NULL, CLI_OPT_MDISC }, "SKYWIRE_MDISC_URL" },
    { { "rf", required_argument, NULL, CLI_OPT_RF }, "SKYWIRE_RF_URL" },
};
#define N_GLOBALS (sizeof(globals) / sizeof(globals[0]))

static bool has_name(const struct option *opts, const char *name)
{
    for (const struct option *o = opts; o && o->name; o++)
        if (strcmp(o->name, name) == 0)
            return true;
    return false;
}

int cli_options(const struct option *own, struct option *out, size_t cap)
{
    size_t n = 0;

    for (const struct option *o = own; o && o->name; o++) {
        if (n + 1 >= cap)
            return CLI_FAIL;
        out[n++] = *o;
    }
    for (size_t k = 0; k < N_GLOBALS; k++) {
        if (has_name(own, globals[k].opt.name))
            continue; /* the command's own meaning wins (gen-config --tpd URL) */
        if (n + 1 >= cap)
            return CLI_FAIL;
        out[n++] = globals[k].opt;
    }
    memset(&out[n], 0, sizeof(out[n]));
    optind = 0; /* a full restart: glibc forgets the '+' (stop at the command) of main's scan */
    return CLI_OK;
}

bool cli_global_option(struct cli_ctx *ctx, int id, const char *val)
{
    for (size_t k = 0; k < N_GLOBALS; k++) {
        if (globals[k].opt.val != id)
            continue;
        if (id == CLI_OPT_JSON)
            ctx->json = true;
        else if (id == CLI_OPT_HYPERVISOR && *val)
            cli_hv_set_url(ctx, val);
        else if (id == CLI_OPT_HYPERVISOR)
            ctx->hv = NULL; /* --hypervisor "": the local visor after all */
        else if (globals[k].env)
            setenv(globals[k].env, val, 1);
        return true;
    }
    return false;
}
