/* access.c — who may read GET /route-groups. The records say which keys talk to which, so
 * by default only the operator gets them: clients on the machine itself (a loopback peer)
 * and requests signed (SPEC §3 headers) by a key given with --admin-key. Signed requests
 * use the setup node's own nonce table (sn_nonces), so a captured request cannot be
 * replayed. docs/setup-node.md "Access to the records" explains the choices. */
#include "setup-node/sn.h"
#include "common/log.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

static const char *const mode_names[] = {
    [SN_ACCESS_LOOPBACK] = "loopback", [SN_ACCESS_ADMIN] = "admin", [SN_ACCESS_ANY] = "any"
};

int sn_access_parse_mode(const char *val, enum sn_access_mode *out, struct sw_error *err)
{
    for (size_t i = 0; i < sizeof(mode_names) / sizeof(mode_names[0]); i++) {
        if (strcmp(val, mode_names[i]) == 0) {
            *out = (enum sn_access_mode)i;
            return SW_OK;
        }
    }
    return sw_error_set(err, SW_EINVAL, "--route-groups-access: '%s' is not loopback, admin or any", val);
}

int sn_access_add_admin_key(struct sn_app *app, const char *hex, struct sw_error *err)
{
    int rc;
    if (app->n_admin_keys == SN_MAX_ADMIN_KEYS)
        return sw_error_set(err, SW_EINVAL, "at most %d --admin-key", SN_MAX_ADMIN_KEYS);
    if ((rc = sw_pk_from_hex(&app->admin_keys[app->n_admin_keys], hex, "--admin-key", err)))
        return rc;
    app->n_admin_keys++;
    return SW_OK;
}

int sn_access_check_config(const struct sn_app *app, struct sw_error *err)
{
    if (app->rg_access == SN_ACCESS_ADMIN && app->n_admin_keys == 0)
        return sw_error_set(err, SW_EINVAL, "--route-groups-access admin needs at least one --admin-key");
    if (app->rg_access == SN_ACCESS_ANY)
        sw_log_warn("GET /route-groups is served to anyone who can reach this port (--route-groups-access any)");
    else
        sw_log_info("GET /route-groups is served to %s%zu admin key(s) (signed requests)",
                    app->rg_access == SN_ACCESS_LOOPBACK ? "loopback clients and " : "", app->n_admin_keys);
    return SW_OK;
}

/* 127.0.0.0/8, ::1, and 127.0.0.0/8 mapped into IPv6 (a dual-stack listener). */
static bool peer_is_loopback(const struct sw_http_request *req)
{
    char ip[INET6_ADDRSTRLEN];
    struct in_addr v4;
    struct in6_addr v6;
    sw_http_client_ip(req, ip, sizeof(ip));
    if (inet_pton(AF_INET, ip, &v4) == 1)
        return (ntohl(v4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, ip, &v6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&v6) || (IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127);
    return false;
}

static bool is_admin_key(const struct sn_app *app, const struct sw_pk *pk)
{
    for (size_t i = 0; i < app->n_admin_keys; i++)
        if (sw_pk_equal(&app->admin_keys[i], pk))
            return true;
    return false;
}

static void forbid(const struct sn_app *app, struct sw_http_response *resp, const char *why)
{
    sw_http_reply_error(resp, 403, "forbidden", "%s: route groups are served only to %s", why,
                        app->rg_access == SN_ACCESS_LOOPBACK ? "loopback clients and requests signed by an admin key"
                                                             : "requests signed by an admin key");
}

bool sn_access_allowed(struct sn_app *app, const struct sw_http_request *req, struct sw_http_response *resp)
{
    const char *pk_hex;
    struct sw_pk pk, caller;

    if (app->rg_access == SN_ACCESS_ANY || (app->rg_access == SN_ACCESS_LOOPBACK && peer_is_loopback(req)))
        return true;
    if (!(pk_hex = sw_http_header(req, SW_HDR_PUBLIC))) {
        forbid(app, resp, "unsigned request");
        return false;
    }
    /* A key that is not an admin is refused before its signature is checked, so strangers
     * cannot grow sn_nonces; a malformed key is left to sw_sreq_verify (400). */
    if (sw_pk_from_hex(&pk, pk_hex, "SW-Public", NULL) == SW_OK && !is_admin_key(app, &pk)) {
        forbid(app, resp, "not an admin key");
        return false;
    }
    return sw_sreq_verify(&app->nonces, req, &caller, resp) == SW_OK;
}
