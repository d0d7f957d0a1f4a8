/* fuzz_json.c — sw_json_parse on raw bytes, then every getter on every member (recursively),
 * and a compact re-serialisation that must parse back and serialise identically. */
#include "common/err.h"
#include "common/json.h"
#include "common/keys.h"
#include "tests/fuzz/fuzz.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Error messages must be filled in, NUL-terminated and bounded. */
static void check_err(int rc, const struct sw_error *err)
{
    if (rc == SW_OK)
        return;
    CHECK(rc < 0);
    CHECK(err->code == rc);
    CHECK(memchr(err->msg, '\0', sizeof(err->msg)) != NULL);
    CHECK(err->msg[0] != '\0');
}

static void probe_member(struct json_object *obj, const char *key, const char *where)
{
    struct json_object *v;
    const char *s;
    bool b;
    uint64_t u;
    struct sw_pk pk;
    struct sw_error err;
    int rc;

    memset(&err, 0, sizeof(err));
    rc = sw_json_get_object(obj, key, where, &v, &err);
    check_err(rc, &err);
    CHECK(rc != SW_OK || json_object_is_type(v, json_type_object));
    rc = sw_json_get_array(obj, key, where, &v, &err);
    check_err(rc, &err);
    CHECK(rc != SW_OK || json_object_is_type(v, json_type_array));
    for (size_t maxlen = 0; maxlen <= 64; maxlen += 16) {
        rc = sw_json_get_string(obj, key, where, maxlen, &s, &err);
        check_err(rc, &err);
        if (rc == SW_OK)
            CHECK(strlen(s) <= maxlen);
    }
    rc = sw_json_get_bool(obj, key, where, &b, &err);
    check_err(rc, &err);
    rc = sw_json_get_u64(obj, key, where, &u, &err);
    check_err(rc, &err);
    if (rc == SW_OK)
        CHECK(json_object_is_type(json_object_object_get(obj, key), json_type_int));
    rc = sw_json_get_pk(obj, key, where, &pk, &err);
    check_err(rc, &err);
}

static void walk(struct json_object *o, const char *where, int depth)
{
    char sub[256];
    if (depth > SW_JSON_MAX_DEPTH + 1)
        __builtin_trap(); /* the parser's depth limit was not honoured */
    if (json_object_is_type(o, json_type_object)) {
        json_object_object_foreach(o, key, val) {
            probe_member(o, key, where);
            snprintf(sub, sizeof(sub), "%s%s%s", where, *where ? "." : "", key);
            walk(val, sub, depth + 1);
        }
        probe_member(o, "", where);
        probe_member(o, "missing", where);
    } else if (json_object_is_type(o, json_type_array)) {
        size_t n = json_object_array_length(o);
        for (size_t i = 0; i < n && i < 64; i++) {
            snprintf(sub, sizeof(sub), "%s[%zu]", where, i);
            walk(json_object_array_get_idx(o, i), sub, depth + 1);
        }
        /* getters on a non-object must fail cleanly */
        probe_member(o, "k", where);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool init;
    struct json_object *o = NULL, *back = NULL;
    struct sw_error err;
    char *copy;
    const char *s;
    size_t len;
    int rc;

    if (!init) {
        if (sw_crypto_init() != SW_OK)
            abort();
        init = true;
    }
    /* exact-size copy: the parser must not read past len (no NUL terminator here) */
    copy = malloc(size ? size : 1);
    if (!copy)
        abort();
    if (size)
        memcpy(copy, data, size);

    memset(&err, 0, sizeof(err));
    rc = sw_json_parse(copy, size, &o, &err);
    check_err(rc, &err);
    if (rc != SW_OK) {
        CHECK(o == NULL);
        free(copy);
        return 0;
    }
    CHECK(o != NULL || size > 0); /* "null" parses to NULL */
    walk(o, "", 0);

    if (o) {
        const char *s2;
        size_t len2;
        s = sw_json_compact(o, &len);
        CHECK(s != NULL && strlen(s) == len);
        rc = sw_json_parse(s, len, &back, &err);
        CHECK(rc == SW_OK && back != NULL);
        /* (json_object_equal would trip on NaN, which json-c accepts) */
        s2 = sw_json_compact(back, &len2);
        CHECK(len2 == len && memcmp(s, s2, len) == 0);
        json_object_put(back);
    }
    json_object_put(o);
    free(copy);
    return 0;
}
