/* Unit tests for common/msg_entry.c: the canonical bytes a messaging discovery entry's key
 * signs (docs/wire-formats.md "Messaging discovery entry"), signatures, and the JSON parser on
 * malformed input (every error names its field; nothing is written on failure). */
#include "common/err.h"
#include "common/json.h"
#include "common/keys.h"
#include "common/msg_entry.h"
#include "tests/harness/check_main.h"

#include <check.h>
#include <stdio.h>
#include <string.h>

static struct sw_keypair ka, kb;

static void setup(void)
{
    ck_assert_int_eq(sw_crypto_init(), SW_OK);
    ck_assert_int_eq(sw_keypair_generate(&ka), SW_OK);
    ck_assert_int_eq(sw_keypair_generate(&kb), SW_OK);
}

/* A client-and-server entry of ka, delegating to kb, signed. */
static void make_entry(struct sw_msg_entry *e)
{
    memset(e, 0, sizeof(*e));
    snprintf(e->version, sizeof(e->version), "0.1.0");
    e->sequence = 0x0102030405060708ull;
    e->timestamp = 1764000000;
    e->static_pk = ka.pk;
    e->has_client = true;
    e->n_delegated = 1;
    e->delegated[0] = kb.pk;
    e->has_server = true;
    snprintf(e->address, sizeof(e->address), "10.0.0.1:8081");
    e->available_sessions = 2048;
    sw_msg_entry_sign(e, &ka);
}

START_TEST(test_canonical_layout)
{
    struct sw_msg_entry e;
    uint8_t buf[SW_MSG_CANON_MAX], *p = buf;
    size_t n;

    make_entry(&e);
    n = sw_msg_entry_canonical(&e, buf, sizeof(buf));
    ck_assert_uint_eq(n, 19 + 1 + 5 + 8 + 8 + 32 + 1 + (1 + 32) + (2 + 13 + 4));
    ck_assert_mem_eq(p, "skywire-msg-entry/1", 19);
    p += 19;
    ck_assert_uint_eq(*p++, 5);
    ck_assert_mem_eq(p, "0.1.0", 5);
    p += 5;
    ck_assert_mem_eq(p, "\x01\x02\x03\x04\x05\x06\x07\x08", 8); /* sequence, big-endian */
    p += 16;                                                     /* and the timestamp */
    ck_assert_mem_eq(p, ka.pk.b, 32);
    p += 32;
    ck_assert_uint_eq(*p++, 3); /* flags: client | server */
    ck_assert_uint_eq(*p++, 1);
    ck_assert_mem_eq(p, kb.pk.b, 32);
    p += 32;
    ck_assert_mem_eq(p, "\x00\x0d" "10.0.0.1:8081" "\x00\x00\x08\x00", 2 + 13 + 4);
    /* one byte short of room: nothing */
    ck_assert_uint_eq(sw_msg_entry_canonical(&e, buf, n - 1), 0);
    /* a server-only entry has no client part at all */
    e.has_client = false;
    ck_assert_uint_eq(sw_msg_entry_canonical(&e, buf, sizeof(buf)), n - 33);
    ck_assert_uint_eq(buf[19 + 1 + 5 + 16 + 32], 2);
}
END_TEST

START_TEST(test_sign_verify)
{
    struct sw_msg_entry e, t;
    struct sw_error err = { 0 };

    make_entry(&e);
    ck_assert_int_eq(sw_msg_entry_verify(&e, &err), SW_OK);
    t = e;
    t.available_sessions--;
    ck_assert_int_eq(sw_msg_entry_verify(&t, &err), SW_ECRYPTO);
    t = e;
    t.static_pk = kb.pk; /* another key claims it */
    ck_assert_int_eq(sw_msg_entry_verify(&t, &err), SW_ECRYPTO);
    t = e;
    t.has_client = t.has_server = false;
    ck_assert_int_eq(sw_msg_entry_verify(&t, &err), SW_EINVAL);
    t = e;
    snprintf(t.address, sizeof(t.address), "no-port");
    ck_assert_int_eq(sw_msg_entry_verify(&t, &err), SW_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "server.address"));
}
END_TEST

/* make_entry's entry as JSON (the caller's). */
static struct json_object *entry_json(void)
{
    struct sw_msg_entry e;
    make_entry(&e);
    return sw_msg_entry_to_json(&e);
}

static void expect_bad(struct json_object *o, const char *needle)
{
    struct sw_msg_entry e, before;
    struct sw_error err = { 0 };
    int rc;

    memset(&e, 0x5a, sizeof(e));
    before = e;
    rc = sw_msg_entry_from_json(o, &e, &err);
    ck_assert_msg(rc == SW_EINVAL, "rc %d for '%s' (%s)", rc, needle, json_object_to_json_string(o));
    ck_assert_int_eq(err.code, rc);
    ck_assert_msg(strstr(err.msg, needle) != NULL, "message '%s' lacks '%s'", err.msg, needle);
    ck_assert_mem_eq(&e, &before, sizeof(e));
    json_object_put(o);
}

/* The entry with one member set to v (taken), or removed when v is NULL; with_in does the
 * same inside the "client" or "server" object. */
static struct json_object *with(const char *key, struct json_object *v)
{
    struct json_object *o = entry_json();
    if (v)
        json_object_object_add(o, key, v);
    else
        json_object_object_del(o, key);
    return o;
}

static struct json_object *with_in(const char *part, const char *key, struct json_object *v)
{
    struct json_object *o = entry_json(), *p = json_object_object_get(o, part);
    if (v)
        json_object_object_add(p, key, v);
    else
        json_object_object_del(p, key);
    return o;
}

START_TEST(test_json_malformed_fields_named)
{
    struct json_object *many = json_object_new_array();
    char pk_hex[SW_PK_HEX_LEN + 1];

    sw_pk_to_hex(&kb.pk, pk_hex);
    for (int i = 0; i < SW_MSG_DELEGATES_MAX + 1; i++)
        json_object_array_add(many, json_object_new_string(pk_hex));
    expect_bad(with("version", NULL), "field 'version' is missing");
    expect_bad(with("version", json_object_new_string("12345678901234567")), "field 'version' is longer");
    expect_bad(with("sequence", json_object_new_int(-1)), "field 'sequence'");
    expect_bad(with("timestamp", json_object_new_string("now")), "field 'timestamp'");
    expect_bad(with("static", json_object_new_string("abcd")), "static");
    expect_bad(with("client", json_object_new_string("x")), "field 'client' must be an object");
    expect_bad(with_in("client", "delegated_servers", NULL), "field 'client.delegated_servers' is missing");
    expect_bad(with_in("client", "delegated_servers", many), "holds more than 16 keys");
    expect_bad(with_in("client", "delegated_servers", json_object_new_string(pk_hex)),
               "field 'client.delegated_servers' must be an array");
    {
        struct json_object *one = json_object_new_array();
        json_object_array_add(one, json_object_new_int(7));
        expect_bad(with_in("client", "delegated_servers", one),
                   "client.delegated_servers[0]: a public key must be a string");
    }
    expect_bad(with_in("server", "address", json_object_new_string("no-port")), "field 'server.address' must be host:port");
    expect_bad(with_in("server", "address", json_object_new_int(1)), "field 'server.address' must be");
    expect_bad(with_in("server", "available_sessions", json_object_new_int64(1ll << 32)),
               "field 'server.available_sessions' is too large");
    expect_bad(with("signature", json_object_new_string("00")), "signature");
    expect_bad(with("signature", NULL), "field 'signature' is missing");
    {
        struct json_object *o = with("client", NULL);
        json_object_object_del(o, "server");
        expect_bad(o, "an entry needs a 'client' or a 'server' object");
    }
}
END_TEST

START_TEST(test_json_round_trip_and_null_parts)
{
    struct sw_msg_entry e, back;
    struct json_object *o;
    struct sw_error err = { 0 };

    make_entry(&e);
    o = sw_msg_entry_to_json(&e);
    ck_assert_int_eq(sw_msg_entry_from_json(o, &back, &err), SW_OK);
    ck_assert_int_eq(sw_msg_entry_verify(&back, &err), SW_OK);
    ck_assert_str_eq(back.address, e.address);
    ck_assert(sw_pk_equal(&back.delegated[0], &kb.pk));
    /* "client": null counts as absent: the server part alone still parses (but no longer
     * verifies, since the signed bytes had a client part) */
    json_object_object_add(o, "client", NULL);
    ck_assert_int_eq(sw_msg_entry_from_json(o, &back, &err), SW_OK);
    ck_assert(!back.has_client && back.has_server);
    ck_assert_int_eq(sw_msg_entry_verify(&back, &err), SW_ECRYPTO);
    json_object_put(o);
}
END_TEST

static Suite *msg_entry_suite(void)
{
    Suite *s = suite_create("msg_entry");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_canonical_layout);
    tcase_add_test(tc, test_sign_verify);
    tcase_add_test(tc, test_json_malformed_fields_named);
    tcase_add_test(tc, test_json_round_trip_and_null_parts);
    suite_add_tcase(s, tc);
    return s;
}

const struct th_check_main th_check_main = { .suite = msg_entry_suite };
