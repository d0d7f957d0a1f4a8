/* json.h — helpers over json-c for JSON from untrusted sources.
 *
 * Parsing is depth-limited, rejects trailing garbage, and errors name the offending field
 * using a caller-supplied path prefix `where` (e.g. "[2].entry"), so a 400 can say exactly
 * what was wrong. Getters return borrowed pointers owned by the json_object they came from.
 * Objects returned through `out` of sw_json_parse are owned by the caller (json_object_put). */
#ifndef SW_JSON_H
#define SW_JSON_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/keys.h"

#define SW_JSON_MAX_DEPTH 32

int sw_json_parse(const char *buf, size_t len, struct json_object **out, struct sw_error *err);

/* Required fields. SW_EINVAL with "field 'where.key' ..." when missing or of the wrong type. */
int sw_json_get_object(struct json_object *obj, const char *key, const char *where,
                       struct json_object **out, struct sw_error *err);
int sw_json_get_array(struct json_object *obj, const char *key, const char *where,
                      struct json_object **out, struct sw_error *err);
/* String of at most maxlen bytes, without NUL bytes. */
int sw_json_get_string(struct json_object *obj, const char *key, const char *where,
                       size_t maxlen, const char **out, struct sw_error *err);
int sw_json_get_bool(struct json_object *obj, const char *key, const char *where, bool *out,
                     struct sw_error *err);
int sw_json_get_u64(struct json_object *obj, const char *key, const char *where, uint64_t *out,
                    struct sw_error *err);
int sw_json_get_pk(struct json_object *obj, const char *key, const char *where,
                   struct sw_pk *out, struct sw_error *err);

/* Compact serialisation; the string is owned by obj. */
const char *sw_json_compact(struct json_object *obj, size_t *len);

/* Appends s (len bytes) as a quoted JSON string, escaping quotes, backslashes and control
 * characters; for hot paths that write JSON text directly instead of building objects. */
int sw_json_append_string(struct sw_buf *b, const char *s, size_t len);

/* Small constructors that never return NULL-on-success ambiguity: NULL only on ENOMEM. */
struct json_object *sw_json_pk(const struct sw_pk *pk);

#endif
