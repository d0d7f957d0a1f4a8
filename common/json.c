#include "common/json.h"

#include <stdio.h>
#include <string.h>

int sw_json_parse(const char *buf, size_t len, struct json_object **out, struct sw_error *err)
{
    struct json_tokener *tok;
    struct json_object *obj;
    enum json_tokener_error jerr;
    size_t used;
    int rc = SW_EINVAL;

    if (len > INT32_MAX)
        return sw_error_set(err, SW_ERANGE, "JSON body too large");
    if (memchr(buf, '\0', len))
        return sw_error_set(err, SW_EINVAL, "invalid JSON: NUL byte in input");
    tok = json_tokener_new_ex(SW_JSON_MAX_DEPTH);
    if (!tok)
        return sw_error_set(err, SW_ENOMEM, "out of memory");
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    obj = json_tokener_parse_ex(tok, buf, (int)len);
    jerr = json_tokener_get_error(tok);
    used = json_tokener_get_parse_end(tok);
    if (jerr == json_tokener_continue) {
        /* json-c waits for more input on a truncated document or a bare number */
        obj = json_tokener_parse_ex(tok, "", 1);
        jerr = json_tokener_get_error(tok);
        if (jerr != json_tokener_success) {
            json_object_put(obj);
            sw_error_set(err, SW_EINVAL, "invalid JSON: truncated document");
            goto out;
        }
        used = len; /* the first call consumed all of buf; parse_end now counts the "" */
    }
    if (jerr != json_tokener_success) {
        sw_error_set(err, SW_EINVAL, "invalid JSON: %s at offset %zu",
                     json_tokener_error_desc(jerr), json_tokener_get_parse_end(tok));
        goto out;
    }
    for (; used < len; used++) {
        char c = buf[used];
        if (c != ' ' && c != '\t' && c != '\r' && c != '\n') {
            json_object_put(obj);
            sw_error_set(err, SW_EINVAL, "invalid JSON: trailing data at offset %zu", used);
            goto out;
        }
    }
    *out = obj;
    rc = SW_OK;
out:
    json_tokener_free(tok);
    return rc;
}

static int get_typed(struct json_object *obj, const char *key, const char *where,
                     enum json_type type, const char *type_name, struct json_object **out,
                     struct sw_error *err)
{
    struct json_object *v;
    const char *sep = where && *where ? "." : "";
    if (!where)
        where = "";
    if (!obj || !json_object_is_type(obj, json_type_object))
        return sw_error_set(err, SW_EINVAL, "'%s' must be an object", *where ? where : "body");
    if (!json_object_object_get_ex(obj, key, &v) || json_object_is_type(v, json_type_null))
        return sw_error_set(err, SW_EINVAL, "field '%s%s%s' is missing", where, sep, key);
    if (!json_object_is_type(v, type))
        return sw_error_set(err, SW_EINVAL, "field '%s%s%s' must be %s", where, sep, key, type_name);
    *out = v;
    return SW_OK;
}

int sw_json_get_object(struct json_object *obj, const char *key, const char *where,
                       struct json_object **out, struct sw_error *err)
{
    return get_typed(obj, key, where, json_type_object, "an object", out, err);
}

int sw_json_get_array(struct json_object *obj, const char *key, const char *where,
                      struct json_object **out, struct sw_error *err)
{
    return get_typed(obj, key, where, json_type_array, "an array", out, err);
}

int sw_json_get_string(struct json_object *obj, const char *key, const char *where,
                       size_t maxlen, const char **out, struct sw_error *err)
{
    struct json_object *v;
    int rc = get_typed(obj, key, where, json_type_string, "a string", &v, err);
    const char *sep = where && *where ? "." : "";
    size_t len;
    if (rc)
        return rc;
    len = (size_t)json_object_get_string_len(v);
    if (len > maxlen)
        return sw_error_set(err, SW_EINVAL, "field '%s%s%s' is longer than %zu bytes",
                            where ? where : "", sep, key, maxlen);
    if (memchr(json_object_get_string(v), '\0', len))
        return sw_error_set(err, SW_EINVAL, "field '%s%s%s' contains a NUL character",
                            where ? where : "", sep, key);
    *out = json_object_get_string(v);
    return SW_OK;
}

int sw_json_get_bool(struct json_object *obj, const char *key, const char *where, bool *out,
                     struct sw_error *err)
{
    struct json_object *v;
    int rc = get_typed(obj, key, where, json_type_boolean, "true or false", &v, err);
    if (rc)
        return rc;
    *out = json_object_get_boolean(v);
    return SW_OK;
}

int sw_json_get_u64(struct json_object *obj, const char *key, const char *where, uint64_t *out,
                    struct sw_error *err)
{
    struct json_object *v;
    int rc = get_typed(obj, key, where, json_type_int, "a non-negative integer", &v, err);
    const char *sep = where && *where ? "." : "";
    if (rc)
        return rc;
    /* json-c stores either int64 or uint64; negative values are rejected here */
    if (json_object_get_int64(v) < 0 && json_object_get_uint64(v) <= (uint64_t)INT64_MAX)
        return sw_error_set(err, SW_EINVAL, "field '%s%s%s' must be a non-negative integer",
                            where ? where : "", sep, key);
    *out = json_object_get_uint64(v);
    return SW_OK;
}

int sw_json_get_pk(struct json_object *obj, const char *key, const char *where,
                   struct sw_pk *out, struct sw_error *err)
{
    const char *s;
    char name[128];
    int rc = sw_json_get_string(obj, key, where, SW_PK_HEX_LEN * 4, &s, err);
    if (rc)
        return rc;
    snprintf(name, sizeof(name), "%s%s%s", where ? where : "", where && *where ? "." : "", key);
    return sw_pk_from_hex(out, s, name, err);
}

const char *sw_json_compact(struct json_object *obj, size_t *len)
{
    const char *s = json_object_to_json_string_length(
        obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, len);
    return s;
}

struct json_object *sw_json_pk(const struct sw_pk *pk)
{
    char hex[SW_PK_HEX_LEN + 1];
    sw_pk_to_hex(pk, hex);
    return json_object_new_string_len(hex, SW_PK_HEX_LEN);
}

int sw_json_append_string(struct sw_buf *b, const char *s, size_t len)
{
    size_t start = 0;
    int rc = sw_buf_append(b, "\"", 1);
    for (size_t i = 0; rc == SW_OK && i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 0x20 && ch != '"' && ch != '\\')
            continue;
        rc = sw_buf_append(b, s + start, i - start);
        if (rc == SW_OK)
            rc = ch == '"' ? sw_buf_append(b, "\\\"", 2)
               : ch == '\\' ? sw_buf_append(b, "\\\\", 2)
               : sw_buf_printf(b, "\\u%04x", ch);
        start = i + 1;
    }
    if (rc == SW_OK)
        rc = sw_buf_append(b, s + start, len - start);
    return rc == SW_OK ? sw_buf_append(b, "\"", 1) : rc;
}
