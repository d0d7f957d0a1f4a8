/* gen_socks_policy.c — gen-config's --socks-allow / --socks-deny (gen_socks_policy.h). */
#include "visor/cli/gen_socks_policy.h"

#include "common/exit_policy.h"
#include "visor/config.h"

#include <stdio.h>
#include <string.h>

#define PACKED_MAX (VISOR_APP_ARG_MAX - 1) /* one app arg, without its NUL */

static struct json_object *socksproxy_args(struct json_object *doc)
{
    struct json_object *apps = json_object_object_get(doc, "apps");

    for (size_t i = 0; apps && i < json_object_array_length(apps); i++) {
        struct json_object *a = json_object_array_get_idx(apps, i);
        const char *name = json_object_get_string(json_object_object_get(a, "app"));
        if (name && strcmp(name, "socksproxy") == 0)
            return json_object_object_get(a, "args");
    }
    return NULL;
}

static void flush(struct json_object *args, const char *flag, char *packed)
{
    if (!*packed)
        return;
    json_object_array_add(args, json_object_new_string(flag));
    json_object_array_add(args, json_object_new_string(packed));
    *packed = '\0';
}

/* Appends the CIDRs of vals[0..n) as `flag LIST` pairs, each LIST within one arg. */
static int append_list(struct json_object *args, const char *flag, const char *opt,
                       const char *const *vals, size_t n, struct sw_error *err)
{
    struct sw_cidr cidrs[SW_EXIT_POLICY_MAX_RULES];
    char packed[VISOR_APP_ARG_MAX] = "", text[SW_CIDR_TEXT_MAX];
    struct sw_error perr = { 0 };
    size_t total = 0;

    for (size_t i = 0; i < n; i++) {
        size_t got = 0;
        int rc = sw_cidr_list_parse(vals[i], cidrs, SW_EXIT_POLICY_MAX_RULES - total, &got, &perr);
        if (rc == SW_ERANGE)
            return sw_error_set(err, SW_EINVAL, "%s: at most %d CIDRs", opt, SW_EXIT_POLICY_MAX_RULES);
        if (rc)
            return sw_error_set(err, SW_EINVAL, "%s %.64s: %s", opt, vals[i], perr.msg);
        total += got;
        for (size_t j = 0; j < got; j++) {
            size_t have = strlen(packed);
            sw_cidr_format(&cidrs[j], text, sizeof(text));
            if (have && have + 1 + strlen(text) > PACKED_MAX)
                flush(args, flag, packed);
            have = strlen(packed);
            snprintf(packed + have, sizeof(packed) - have, "%s%s", have ? "," : "", text);
        }
    }
    flush(args, flag, packed);
    return SW_OK;
}

int cli_gen_socks_policy(struct json_object *doc, const char *const *allow, size_t n_allow,
                         const char *const *deny, size_t n_deny, struct sw_error *err)
{
    struct json_object *args;
    int rc;

    if (n_allow == 0 && n_deny == 0)
        return SW_OK;
    if (!(args = socksproxy_args(doc)))
        return sw_error_set(err, SW_EINVAL, "--socks-allow / --socks-deny need the socksproxy app "
                                            "(not with --no-apps)");
    if ((rc = append_list(args, "-allow", "--socks-allow", allow, n_allow, err)) ||
        (rc = append_list(args, "-deny", "--socks-deny", deny, n_deny, err)))
        return rc;
    if (json_object_array_length(args) > VISOR_APP_ARGS_MAX)
        return sw_error_set(err, SW_EINVAL, "--socks-allow / --socks-deny: too many CIDRs for the "
                                            "socksproxy app's %d args", VISOR_APP_ARGS_MAX);
    return SW_OK;
}
