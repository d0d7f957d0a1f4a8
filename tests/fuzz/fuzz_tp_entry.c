/* fuzz_tp_entry.c — untrusted transport entries: parse the input as JSON, then
 * sw_tp_signed_entry_from_json + verify (and sw_tp_entry_from_json); a parsed entry must
 * survive a JSON round trip unchanged. The raw input, as a NUL-terminated copy, also goes
 * through sw_uuid_parse, sw_pk_from_hex and sw_sig_from_hex, whose successes must
 * re-format to the (lower-cased) input. */
#include "common/err.h"
#include "common/json.h"
#include "common/keys.h"
#include "common/tp_entry.h"
#include "common/uuid.h"
#include "tests/fuzz/fuzz.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void check_err(int rc, const struct sw_error *err)
{
    if (rc == SW_OK)
        return;
    CHECK(err->code == rc);
    CHECK(memchr(err->msg, '\0', sizeof(err->msg)) != NULL && err->msg[0] != '\0');
}

static bool same_lower(const char *a, const char *b)
{
    for (; *a && *b; a++, b++)
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b))
            return false;
    return *a == *b;
}

static void check_entry_fields(const struct sw_tp_entry *e)
{
    CHECK(memchr(e->type, '\0', sizeof(e->type)) != NULL);
    CHECK(memchr(e->label, '\0', sizeof(e->label)) != NULL);
}

static void round_trip(const struct sw_tp_signed_entry *se)
{
    struct json_object *o = sw_tp_signed_entry_to_json(se), *back = NULL;
    struct sw_tp_signed_entry again;
    struct sw_error err;
    size_t len;
    const char *s;
    CHECK(o != NULL);
    s = sw_json_compact(o, &len);
    CHECK(sw_json_parse(s, len, &back, &err) == SW_OK);
    memset(&again, 0, sizeof(again));
    CHECK(sw_tp_signed_entry_from_json(back, "rt", &again, &err) == SW_OK);
    CHECK(sw_uuid_equal(&again.entry.id, &se->entry.id));
    CHECK(sw_pk_equal(&again.entry.edges[0], &se->entry.edges[0]));
    CHECK(sw_pk_equal(&again.entry.edges[1], &se->entry.edges[1]));
    CHECK(strcmp(again.entry.type, se->entry.type) == 0);
    CHECK(strcmp(again.entry.label, se->entry.label) == 0);
    CHECK(memcmp(again.sigs, se->sigs, sizeof(se->sigs)) == 0);
    json_object_put(back);
    json_object_put(o);
}

static void fuzz_json_entry(const uint8_t *data, size_t size)
{
    struct json_object *o = NULL, *entry;
    struct sw_tp_signed_entry se;
    struct sw_tp_entry e;
    struct sw_error err;
    uint8_t canon[SW_TP_CANON_MAX];
    int rc;

    if (sw_json_parse((const char *)data, size, &o, &err) != SW_OK)
        return;
    memset(&err, 0, sizeof(err));
    rc = sw_tp_signed_entry_from_json(o, "[0]", &se, &err);
    check_err(rc, &err);
    if (rc == SW_OK) {
        check_entry_fields(&se.entry);
        CHECK(sw_tp_entry_canonical(&se.entry, canon, sizeof(canon)) > 0);
        rc = sw_tp_signed_entry_verify(&se, &err);
        check_err(rc, &err);
        CHECK(rc == SW_OK || rc == SW_EINVAL || rc == SW_ECRYPTO);
        if (rc == SW_OK) {
            /* a verified entry is exactly what sw_tp_entry_make builds from its parts */
            struct sw_tp_entry made;
            CHECK(sw_tp_entry_make(&made, &se.entry.edges[1], &se.entry.edges[0],
                                   se.entry.type, se.entry.label, &err) == SW_OK);
            CHECK(sw_uuid_equal(&made.id, &se.entry.id));
        }
        round_trip(&se);
    }
    /* the bare entry parser, at the top level and nested */
    rc = sw_tp_entry_from_json(o, "", &e, &err);
    check_err(rc, &err);
    if (rc == SW_OK)
        check_entry_fields(&e);
    if (json_object_is_type(o, json_type_object) && json_object_object_get_ex(o, "entry", &entry)) {
        rc = sw_tp_entry_from_json(entry, "entry", &e, &err);
        check_err(rc, &err);
    }
    json_object_put(o);
}

static void fuzz_text(const char *s)
{
    struct sw_uuid u;
    struct sw_pk pk;
    struct sw_sig sig;
    struct sw_error err;
    char out[SW_SIG_HEX_LEN + 1];
    int rc;

    rc = sw_uuid_parse(&u, s, "t_id", &err);
    check_err(rc, &err);
    if (rc == SW_OK) {
        sw_uuid_format(&u, out);
        CHECK(same_lower(out, s));
    }
    rc = sw_pk_from_hex(&pk, s, "edges[0]", &err);
    check_err(rc, &err);
    if (rc == SW_OK) {
        sw_pk_to_hex(&pk, out);
        CHECK(same_lower(out, s));
    }
    rc = sw_sig_from_hex(&sig, s, "signatures[0]", &err);
    check_err(rc, &err);
    if (rc == SW_OK) {
        sw_sig_to_hex(&sig, out);
        CHECK(same_lower(out, s));
    }
    CHECK(sw_tp_type_valid(s) == (strcmp(s, "stcp") == 0 || strcmp(s, "dmsg") == 0));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool init;
    char *copy;

    if (!init) {
        if (sw_crypto_init() != SW_OK)
            abort();
        init = true;
    }
    fuzz_json_entry(data, size);

    copy = malloc(size + 1);
    if (!copy)
        abort();
    if (size)
        memcpy(copy, data, size);
    copy[size] = '\0';
    fuzz_text(copy);
    free(copy);
    return 0;
}
