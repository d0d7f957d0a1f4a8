/* config.c — the hypervisor's options: flags, optionally over a JSON file (-c FILE).
 *
 * File fields (all optional): "addr", "visor_addr", "key_file", "data_dir", "tpd",
 * "admin_password_file", "cookie_secure", "login_failures", "visors": ["<pk>", ...],
 * "allowed_hosts": ["<host name>", ...]. Flags override the file; --visor and --allowed-host
 * add to its lists. */
#include "common/http_server.h"
#include "hypervisor/hv.h"
#include "common/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int copy(char *dst, size_t cap, const char *src, const char *what, struct sw_error *err)
{
    if (strlen(src) >= cap)
        return sw_error_set(err, SW_EINVAL, "%s: longer than %zu characters", what, cap - 1);
    memcpy(dst, src, strlen(src) + 1);
    return SW_OK;
}

static int add_visor(struct hv_config *c, const char *hex, const char *what, struct sw_error *err)
{
    struct sw_pk pk;
    struct sw_error kerr;

    if (sw_pk_from_hex(&pk, hex, what, &kerr))
        return sw_error_set(err, SW_EINVAL, "%s '%.80s': not a valid public key", what, hex);
    for (size_t i = 0; i < c->n_visors; i++)
        if (sw_pk_equal(&c->visors[i], &pk))
            return SW_OK;
    if (c->n_visors >= HV_MAX_VISORS)
        return sw_error_set(err, SW_EINVAL, "%s: at most %d visors", what, HV_MAX_VISORS);
    c->visors[c->n_visors++] = pk;
    return SW_OK;
}

static int add_allowed_host(struct hv_config *c, const char *name, const char *what, struct sw_error *err)
{
    if (!sw_http_host_valid(name) || strlen(name) >= HV_HOST_MAX)
        return sw_error_set(err, SW_EINVAL, "%s '%.80s': not a host name or address (no scheme, no port)",
                            what, name);
    if (c->n_allowed_hosts >= HV_MAX_ALLOWED_HOSTS)
        return sw_error_set(err, SW_EINVAL, "%s: at most %d host names", what, HV_MAX_ALLOWED_HOSTS);
    memcpy(c->allowed_hosts[c->n_allowed_hosts++], name, strlen(name) + 1);
    return SW_OK;
}

static int file_str(const struct sw_config *f, const char *key, char *dst, size_t cap, struct sw_error *err)
{
    const char *s = NULL;
    int rc = sw_config_string(f, key, false, &s, err);
    if (rc || !s)
        return rc;
    if (strlen(s) >= cap)
        return sw_config_field_error(f, key, err, "longer than %zu characters", cap - 1);
    memcpy(dst, s, strlen(s) + 1);
    return SW_OK;
}

/* The string array at key (absent is fine: "an array of <items>"), each element handed to
 * add; a bad element is reported as "<key>[i]: <why>". */
static int file_list(const struct sw_config *f, const char *key, const char *items, struct hv_config *c,
                     int (*add)(struct hv_config *, const char *, const char *, struct sw_error *),
                     const char *why, struct sw_error *err)
{
    struct json_object *arr = sw_config_node(f, key), *v;
    char path[48];

    if (!arr)
        return SW_OK;
    if (!json_object_is_type(arr, json_type_array))
        return sw_config_field_error(f, key, err, "must be an array of %s", items);
    for (size_t i = 0; i < json_object_array_length(arr); i++) {
        v = json_object_array_get_idx(arr, i);
        snprintf(path, sizeof(path), "%s[%zu]", key, i);
        if (!json_object_is_type(v, json_type_string) || add(c, json_object_get_string(v), path, NULL))
            return sw_config_field_error(f, path, err, "%s", why);
    }
    return SW_OK;
}

static int load_file(struct hv_config *c, const char *path, struct sw_error *err)
{
    struct sw_config f;
    const char *s = NULL;
    uint64_t n = c->login_failures;
    char bad_host[96];
    int rc;

    snprintf(bad_host, sizeof(bad_host), "not a host name or address (no scheme, no port; at most %d)",
             HV_MAX_ALLOWED_HOSTS);
    if ((rc = sw_config_load_file(&f, path, err)))
        return rc;
    if ((rc = sw_config_hostport(&f, "addr", false, SW_HOSTPORT_LISTEN, &s, err)) ||
        (s && (rc = copy(c->addr, sizeof(c->addr), s, "addr", err))))
        goto out;
    s = NULL;
    if ((rc = sw_config_hostport(&f, "visor_addr", false, SW_HOSTPORT_LISTEN, &s, err)) ||
        (s && (rc = copy(c->visor_addr, sizeof(c->visor_addr), s, "visor_addr", err))))
        goto out;
    s = NULL;
    if ((rc = sw_config_url(&f, "tpd", false, &s, err)) || (s && (rc = copy(c->tpd, sizeof(c->tpd), s, "tpd", err))))
        goto out;
    if ((rc = file_str(&f, "key_file", c->key_file, sizeof(c->key_file), err)) ||
        (rc = file_str(&f, "data_dir", c->data_dir, sizeof(c->data_dir), err)) ||
        (rc = file_str(&f, "admin_password_file", c->admin_password_file, sizeof(c->admin_password_file), err)) ||
        (rc = sw_config_bool(&f, "cookie_secure", false, &c->cookie_secure, err)) ||
        (rc = sw_config_uint(&f, "login_failures", false, 1, 1000, &n, err)) ||
        (rc = file_list(&f, "visors", "public keys", c, add_visor,
                        "not a valid public key (64 hex characters)", err)) ||
        (rc = file_list(&f, "allowed_hosts", "host names", c, add_allowed_host, bad_host, err)))
        goto out;
    c->login_failures = (long)n;
out:
    sw_config_free(&f);
    return rc;
}

void hv_config_defaults(struct hv_config *c)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->addr, sizeof(c->addr), "%s", HV_DEFAULT_ADDR);
    snprintf(c->visor_addr, sizeof(c->visor_addr), "%s", HV_DEFAULT_VISOR_ADDR);
    snprintf(c->key_file, sizeof(c->key_file), "%s", HV_DEFAULT_KEY_FILE);
    snprintf(c->data_dir, sizeof(c->data_dir), "%s", HV_DEFAULT_DATA_DIR);
    c->login_failures = 5;
}

/* ---- one callback per option with a value to check (common/opts.h) ---- */

static int opt_file(void *c, const char *v, struct sw_error *err) { return load_file(c, v, err); }

static int opt_addr(void *arg, const char *v, struct sw_error *err)
{
    struct hv_config *c = arg;
    if (sw_hostport_parse(v, SW_HOSTPORT_LISTEN, NULL, 0, NULL))
        return sw_error_set(err, SW_EINVAL, "--addr '%s': must be host:port", v);
    return copy(c->addr, sizeof(c->addr), v, "--addr", err);
}

static int opt_visor_addr(void *arg, const char *v, struct sw_error *err)
{
    struct hv_config *c = arg;
    if (sw_hostport_parse(v, SW_HOSTPORT_LISTEN, NULL, 0, NULL))
        return sw_error_set(err, SW_EINVAL, "--visor-addr '%s': must be host:port", v);
    return copy(c->visor_addr, sizeof(c->visor_addr), v, "--visor-addr", err);
}

static int opt_key_file(void *arg, const char *v, struct sw_error *err)
{
    struct hv_config *c = arg;
    return copy(c->key_file, sizeof(c->key_file), v, "--key-file", err);
}

static int opt_data_dir(void *arg, const char *v, struct sw_error *err)
{
    struct hv_config *c = arg;
    return copy(c->data_dir, sizeof(c->data_dir), v, "--data-dir", err);
}

static int opt_password_file(void *arg, const char *v, struct sw_error *err)
{
    struct hv_config *c = arg;
    return copy(c->admin_password_file, sizeof(c->admin_password_file), v, "--admin-password-file", err);
}

static int opt_visor(void *c, const char *v, struct sw_error *err) { return add_visor(c, v, "--visor", err); }

static int opt_allowed_host(void *c, const char *v, struct sw_error *err)
{
    return add_allowed_host(c, v, "--allowed-host", err);
}

static int opt_tpd(void *arg, const char *v, struct sw_error *err)
{
    struct hv_config *c = arg;
    if (strncmp(v, "http://", 7) != 0 && strncmp(v, "https://", 8) != 0)
        return sw_error_set(err, SW_EINVAL, "--tpd '%s': must be an http:// or https:// URL", v);
    return copy(c->tpd, sizeof(c->tpd), v, "--tpd", err);
}

const struct sw_opt *hv_config_options(struct hv_config *c)
{
    static struct sw_opt table[16];
    const struct sw_opt opts[] = {
        { "c", "FILE", NULL, SW_OPT_FUNC, c, 0, 0, opt_file, true }, /* in the usage line */
        SW_OPT_CALL("addr", "HOST:PORT", "web page and REST API (default " HV_DEFAULT_ADDR ")", opt_addr, c),
        SW_OPT_CALL("visor-addr", "HOST:PORT", "where visors connect (default " HV_DEFAULT_VISOR_ADDR ")",
                    opt_visor_addr, c),
        SW_OPT_CALL("key-file", "FILE", "identity, created (0600) if missing (default " HV_DEFAULT_KEY_FILE ")",
                    opt_key_file, c),
        SW_OPT_CALL("visor", "PK", "allow this visor (repeatable; or \"visors\" in the file)", opt_visor, c),
        SW_OPT_CALL("tpd", "URL", "transport discovery for the network map", opt_tpd, c),
        SW_OPT_CALL("data-dir", "DIR", "admin password hash (default " HV_DEFAULT_DATA_DIR ")", opt_data_dir, c),
        SW_OPT_CALL("admin-password-file", "FILE", "first start: the admin password (else one is generated\n"
                    "into DATA_DIR/initial-password)", opt_password_file, c),
        SW_OPT_FLAG("cookie-secure", "mark the session cookie Secure (served over https)", &c->cookie_secure),
        SW_OPT_NUM("login-failures", "N", "failed logins per client address before it must wait\n"
                   "(1 min, doubling to 1 h; default 5)", &c->login_failures, 1, 1000),
        SW_OPT_CALL("allowed-host", "NAME", "a host name the page is reached under besides localhost,\n"
                    "127.0.0.1, [::1] and --addr's host, e.g. a reverse\nproxy's (repeatable)",
                    opt_allowed_host, c),
        SW_OPT_FLAG("reset-password", "set a new admin password (from --admin-password-file,\n"
                    "else generated into DATA_DIR/initial-password) and exit;\n"
                    "restart the hypervisor afterwards", &c->reset_password),
        SW_OPT_END,
    };
    _Static_assert(sizeof(opts) <= sizeof(table), "hv_config_options: table too small");
    memcpy(table, opts, sizeof(opts));
    return table;
}

int hv_config_finish(struct hv_config *c, struct sw_error *err)
{
    size_t n = strlen(c->tpd);
    if (n && c->tpd[n - 1] == '/')
        c->tpd[n - 1] = '\0';
    return SW_OK;
}
