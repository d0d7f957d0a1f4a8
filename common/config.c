#include "common/config.h"
#include "common/json.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

int sw_config_load_string(struct sw_config *cfg, const char *name, const char *text, size_t len,
                          struct sw_error *err)
{
    struct sw_error jerr;
    memset(cfg, 0, sizeof(*cfg));
    snprintf(cfg->source, sizeof(cfg->source), "%s", name);
    if (sw_json_parse(text, len, &cfg->root, &jerr))
        return sw_error_set(err, SW_EINVAL, "config %s: %s", cfg->source, jerr.msg);
    if (!json_object_is_type(cfg->root, json_type_object)) {
        sw_config_free(cfg);
        return sw_error_set(err, SW_EINVAL, "config %s: the top level must be a JSON object", name);
    }
    return SW_OK;
}

int sw_config_load_file(struct sw_config *cfg, const char *path, struct sw_error *err)
{
    char *buf = NULL;
    size_t got = 0;
    ssize_t n;
    int rc, fd = open(path, O_RDONLY | O_CLOEXEC);

    memset(cfg, 0, sizeof(*cfg));
    if (fd < 0)
        return sw_error_set(err, errno == ENOENT ? SW_ENOTFOUND : SW_EIO, "config %s: %s", path,
                            strerror(errno));
    buf = malloc(SW_CONFIG_MAX_BYTES + 1);
    if (!buf) {
        close(fd);
        return sw_error_set(err, SW_ENOMEM, "out of memory");
    }
    while (got <= SW_CONFIG_MAX_BYTES && (n = read(fd, buf + got, SW_CONFIG_MAX_BYTES + 1 - got)) > 0)
        got += (size_t)n;
    close(fd);
    if (got > SW_CONFIG_MAX_BYTES)
        rc = sw_error_set(err, SW_ERANGE, "config %s: larger than %u bytes", path, SW_CONFIG_MAX_BYTES);
    else
        rc = sw_config_load_string(cfg, path, buf, got, err);
    free(buf);
    return rc;
}

void sw_config_free(struct sw_config *cfg)
{
    json_object_put(cfg->root);
    cfg->root = NULL;
}

struct json_object *sw_config_node(const struct sw_config *cfg, const char *path)
{
    struct json_object *cur = cfg->root;
    char part[128];
    const char *p = path;
    while (cur && *p) {
        size_t n = strcspn(p, ".");
        if (n >= sizeof(part) || !json_object_is_type(cur, json_type_object))
            return NULL;
        memcpy(part, p, n);
        part[n] = '\0';
        if (!json_object_object_get_ex(cur, part, &cur))
            return NULL;
        p += n;
        if (*p == '.')
            p++;
    }
    return cur && !json_object_is_type(cur, json_type_null) ? cur : NULL;
}

int sw_config_field_error(const struct sw_config *cfg, const char *path, struct sw_error *err,
                          const char *fmt, ...)
{
    char what[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    return sw_error_set(err, SW_EINVAL, "config %s: field '%s': %s", cfg->source, path, what);
}

/* Finds the node; SW_ENOTFOUND (absent, optional) or SW_EINVAL (absent, required). */
static int find(const struct sw_config *cfg, const char *path, bool required, enum json_type type,
                const char *type_name, struct json_object **out, struct sw_error *err)
{
    struct json_object *v = sw_config_node(cfg, path);
    if (!v)
        return required ? sw_config_field_error(cfg, path, err, "is required") : SW_ENOTFOUND;
    if (!json_object_is_type(v, type))
        return sw_config_field_error(cfg, path, err, "must be %s", type_name);
    *out = v;
    return SW_OK;
}

#define FIND_OR_RETURN(type, name)                                          \
    do {                                                                    \
        int frc_ = find(cfg, path, required, type, name, &v, err);         \
        if (frc_ == SW_ENOTFOUND)                                           \
            return SW_OK;                                                   \
        if (frc_)                                                           \
            return frc_;                                                    \
    } while (0)

int sw_config_string(const struct sw_config *cfg, const char *path, bool required,
                     const char **out, struct sw_error *err)
{
    struct json_object *v = NULL;
    FIND_OR_RETURN(json_type_string, "a string");
    *out = json_object_get_string(v);
    return SW_OK;
}

int sw_config_bool(const struct sw_config *cfg, const char *path, bool required, bool *out,
                   struct sw_error *err)
{
    struct json_object *v = NULL;
    FIND_OR_RETURN(json_type_boolean, "true or false");
    *out = json_object_get_boolean(v);
    return SW_OK;
}

int sw_config_uint(const struct sw_config *cfg, const char *path, bool required, uint64_t min,
                   uint64_t max, uint64_t *out, struct sw_error *err)
{
    struct json_object *v = NULL;
    uint64_t x;
    FIND_OR_RETURN(json_type_int, "an integer");
    /* json-c holds either int64 or uint64: get_int64 would clamp values above INT64_MAX */
    x = json_object_get_uint64(v);
    if (json_object_get_int64(v) < 0 || x < min || x > max)
        return sw_config_field_error(cfg, path, err, "must be between %llu and %llu",
                                     (unsigned long long)min, (unsigned long long)max);
    *out = x;
    return SW_OK;
}

int sw_config_pk(const struct sw_config *cfg, const char *path, bool required, struct sw_pk *out,
                 struct sw_error *err)
{
    const char *s = NULL;
    struct sw_error kerr;
    int rc = sw_config_string(cfg, path, required, &s, err);
    if (rc || !s)
        return rc;
    if (sw_pk_from_hex(out, s, "value", &kerr))
        return sw_config_field_error(cfg, path, err, "not a valid public key (64 hex characters)");
    return SW_OK;
}

int sw_config_hostport(const struct sw_config *cfg, const char *path, bool required,
                       unsigned flags, const char **out, struct sw_error *err)
{
    const char *s = NULL;
    int rc = sw_config_string(cfg, path, required, &s, err);
    if (rc || !s)
        return rc;
    if (sw_hostport_parse(s, flags, NULL, 0, NULL))
        return sw_config_field_error(cfg, path, err, "must be host:port with a port 0-65535");
    *out = s;
    return SW_OK;
}

int sw_config_url(const struct sw_config *cfg, const char *path, bool required, const char **out,
                  struct sw_error *err)
{
    const char *s = NULL;
    size_t scheme;
    int rc = sw_config_string(cfg, path, required, &s, err);
    if (rc || !s)
        return rc;
    scheme = strncasecmp(s, "http://", 7) == 0 ? 7 : strncasecmp(s, "https://", 8) == 0 ? 8 : 0;
    if (!scheme || !s[scheme] || s[scheme] == '/' || strpbrk(s, " \t\r\n"))
        return sw_config_field_error(cfg, path, err, "must be an http:// or https:// URL");
    *out = s;
    return SW_OK;
}
