/* gen_socks_policy.h — `skywire-cli node gen-config --socks-allow / --socks-deny`: the exit
 * policy of the generated socksproxy app (common/exit_policy.h, apps/socksproxy/README.md). */
#ifndef SW_CLI_GEN_SOCKS_POLICY_H
#define SW_CLI_GEN_SOCKS_POLICY_H

#include <stddef.h>

#include <json-c/json.h>

#include "common/err.h"

/* Checks every CIDR of the allow and deny values (each a CIDR or a comma-separated list, as
 * the socksproxy flags take them) and appends them to the args of the "socksproxy" entry of
 * doc's "apps" as `-allow LIST` / `-deny LIST`, written back in canonical form ("127.0.0.1"
 * becomes "127.0.0.1/32") and packed into as few args as the visor config's limits allow.
 * Nothing to add: SW_OK, doc untouched. SW_EINVAL naming the option and the bad value, no
 * socksproxy app (--no-apps), or too many CIDRs for one app's args; doc may then hold part
 * of the args (the caller drops it). doc stays owned by the caller. */
int cli_gen_socks_policy(struct json_object *doc, const char *const *allow, size_t n_allow,
                         const char *const *deny, size_t n_deny, struct sw_error *err);

#endif
