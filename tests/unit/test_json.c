/* Unit tests for common/json.c: strict parsing and getters whose errors name the field. */
#include "common/err.h"
#include "common/json.h"
#include "common/keys.h"
#include "tests/harness/check_main.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse(const char *s, size_t len, struct json_object **out, struct sw_error *err)
{
    *out = NULL;
    memset(err, 0, sizeof(*err));
    return sw_json_parse(s, len, out, err);
}

static int parse_str(const char *s, struct json_object **out, struct sw_error *err)
{
    return parse(s, strlen(s), out, err);
}

static struct json_object *must_parse(const char *s)
{
    struct json_object *o;
    struct sw_error err;
    int rc = parse_str(s, &o, &err);
    ck_assert_msg(rc == SW_OK, "parse '%s': %s", s, err.msg);
    return o;
}

#define ASSERT_MSG_HAS(err, needle)                                                           \
    ck_assert_msg(strstr((err).msg, (needle)) != NULL, "message '%s' lacks '%s'", (err).msg, \
                  (needle))

START_TEST(test_parse_valid)
{
    static const char *const ok[] = {
        "{}", "[]", "{\"a\":1,\"b\":[true,false,null],\"c\":{\"d\":\"e\"}}",
        "  {\"a\" : 1 }\r\n\t ", "[1]\n", "\"text\"", "123", "-5", "true", "false", "null",
        "0", " 42 ", "1.5e3",
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        struct json_object *o;
        struct sw_error err;
        ck_assert_msg(parse_str(ok[i], &o, &err) == SW_OK, "rejected '%s': %s", ok[i], err.msg);
        json_object_put(o);
    }
}
END_TEST

START_TEST(test_parse_values)
{
    struct json_object *o = must_parse("{\"a\":[1,\"x\"],\"b\":-7}");
    struct json_object *a;
    ck_assert(json_object_is_type(o, json_type_object));
    ck_assert(json_object_object_get_ex(o, "a", &a));
    ck_assert_uint_eq(json_object_array_length(a), 2);
    ck_assert_str_eq(json_object_get_string(json_object_array_get_idx(a, 1)), "x");
    json_object_put(o);

    o = must_parse("123");
    ck_assert(json_object_is_type(o, json_type_int));
    ck_assert_int_eq(json_object_get_int64(o), 123);
    json_object_put(o);

    o = must_parse("true");
    ck_assert(json_object_is_type(o, json_type_boolean));
    json_object_put(o);
}
END_TEST

START_TEST(test_parse_only_prefix_of_buffer)
{
    /* len, not the NUL terminator, bounds the document */
    struct json_object *o;
    struct sw_error err;
    ck_assert_int_eq(parse("[1]garbage", 3, &o, &err), SW_OK);
    ck_assert_uint_eq(json_object_array_length(o), 1);
    json_object_put(o);
    ck_assert_int_eq(parse("{\"a\":1}", 6, &o, &err), SW_EINVAL);
    ck_assert_ptr_null(o);
}
END_TEST

START_TEST(test_parse_truncated)
{
    static const char *const bad[] = { "", "   ", "{", "{\"a\":", "{\"a\":1", "[1,2", "\"abc",
                                       "tru", "-", "{\"a\"" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct json_object *o;
        struct sw_error err;
        ck_assert_msg(parse_str(bad[i], &o, &err) == SW_EINVAL, "accepted '%s'", bad[i]);
        ck_assert_ptr_null(o);
        ck_assert_int_eq(err.code, SW_EINVAL);
        ASSERT_MSG_HAS(err, "invalid JSON");
    }
}
END_TEST

START_TEST(test_parse_trailing_garbage)
{
    static const char *const bad[] = { "{}x", "{} {}", "[1] [2]", "{\"a\":1}}", "1 2", "{}\n,",
                                       "[1],", "null null", "\"a\"\"b\"" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct json_object *o;
        struct sw_error err;
        ck_assert_msg(parse_str(bad[i], &o, &err) == SW_EINVAL, "accepted '%s'", bad[i]);
        ck_assert_ptr_null(o);
        ASSERT_MSG_HAS(err, "invalid JSON");
    }
}
END_TEST

START_TEST(test_parse_syntax_errors)
{
    static const char *const bad[] = { "[1,]", "{\"a\" 1}", "[01]", "[\"\\x\"]", "[tru]",
                                       "{\"a\":1,}", "\xef\xbb\xbf{}", "[-]", "nan" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct json_object *o;
        struct sw_error err;
        ck_assert_msg(parse_str(bad[i], &o, &err) == SW_EINVAL, "accepted '%s'", bad[i]);
        ASSERT_MSG_HAS(err, "offset");
    }
}
END_TEST

START_TEST(test_parse_nul_bytes)
{
    struct json_object *o;
    struct sw_error err;
    ck_assert_int_eq(parse("{\"a\":1}\0", 8, &o, &err), SW_EINVAL);
    ASSERT_MSG_HAS(err, "NUL");
    ck_assert_ptr_null(o);
    ck_assert_int_eq(parse("{\"a\":\"x\0y\"}", 11, &o, &err), SW_EINVAL);
    ASSERT_MSG_HAS(err, "NUL");
    ck_assert_int_eq(parse("\0{}", 3, &o, &err), SW_EINVAL);
    ck_assert_int_eq(parse("\0", 1, &o, &err), SW_EINVAL);
}
END_TEST

static char *nested_arrays(int depth)
{
    char *s = malloc((size_t)depth * 2 + 1);
    ck_assert_ptr_nonnull(s);
    memset(s, '[', (size_t)depth);
    memset(s + depth, ']', (size_t)depth);
    s[depth * 2] = '\0';
    return s;
}

START_TEST(test_parse_depth_limit)
{
    struct json_object *o;
    struct sw_error err;
    char *s = nested_arrays(100);
    ck_assert_int_eq(parse_str(s, &o, &err), SW_EINVAL);
    ck_assert_ptr_null(o);
    ASSERT_MSG_HAS(err, "deep");
    free(s);

    s = nested_arrays(SW_JSON_MAX_DEPTH + 1);
    ck_assert_int_eq(parse_str(s, &o, &err), SW_EINVAL);
    free(s);

    s = nested_arrays(SW_JSON_MAX_DEPTH);
    ck_assert_int_eq(parse_str(s, &o, &err), SW_OK);
    json_object_put(o);
    free(s);

    /* deep objects too, and a truncated very deep document */
    s = malloc(100 * 6 + 2);
    ck_assert_ptr_nonnull(s);
    s[0] = '\0';
    for (int i = 0; i < 100; i++)
        strcat(s, "{\"a\":");
    ck_assert_int_eq(parse_str(s, &o, &err), SW_EINVAL);
    free(s);
}
END_TEST

START_TEST(test_parse_huge_numbers)
{
    struct json_object *o;
    struct sw_error err;
    uint64_t u = 7;
    char *digits;

    o = must_parse("{\"max\":18446744073709551615,\"big\":1e400,\"neg\":-99999999999999999999999,"
                   "\"frac\":1.5,\"i64max\":9223372036854775807,\"above\":9223372036854775808}");
    ck_assert_int_eq(sw_json_get_u64(o, "max", "", &u, &err), SW_OK);
    ck_assert(u == UINT64_MAX);
    ck_assert_int_eq(sw_json_get_u64(o, "i64max", "", &u, &err), SW_OK);
    ck_assert(u == (uint64_t)INT64_MAX);
    ck_assert_int_eq(sw_json_get_u64(o, "above", "", &u, &err), SW_OK);
    ck_assert(u == (uint64_t)INT64_MAX + 1);
    u = 7;
    ck_assert_int_eq(sw_json_get_u64(o, "big", "", &u, &err), SW_EINVAL);
    ASSERT_MSG_HAS(err, "'big'");
    ck_assert_int_eq(sw_json_get_u64(o, "neg", "", &u, &err), SW_EINVAL);
    ASSERT_MSG_HAS(err, "non-negative");
    ck_assert_int_eq(sw_json_get_u64(o, "frac", "", &u, &err), SW_EINVAL);
    ck_assert(u == 7);
    json_object_put(o);

    /* a very long number must neither crash nor hang */
    digits = malloc(20003);
    ck_assert_ptr_nonnull(digits);
    digits[0] = '[';
    memset(digits + 1, '9', 20000);
    digits[20001] = ']';
    digits[20002] = '\0';
    if (parse_str(digits, &o, &err) == SW_OK)
        json_object_put(o);
    free(digits);
}
END_TEST

START_TEST(test_get_missing_and_wrong_type)
{
    struct json_object *o = must_parse(
        "{\"s\":\"str\",\"n\":5,\"b\":true,\"o\":{},\"a\":[],\"z\":null,\"d\":2.5}");
    struct json_object *v;
    const char *s;
    bool b;
    uint64_t u;
    struct sw_error err;

    ck_assert_int_eq(sw_json_get_string(o, "missing", "[2].entry", 10, &s, &err), SW_EINVAL);
    ck_assert_str_eq(err.msg, "field '[2].entry.missing' is missing");
    ck_assert_int_eq(sw_json_get_string(o, "z", "[2].entry", 10, &s, &err), SW_EINVAL);
    ASSERT_MSG_HAS(err, "'[2].entry.z' is missing"); /* null counts as absent */
    ck_assert_int_eq(sw_json_get_string(o, "missing", "", 10, &s, &err), SW_EINVAL);
    ck_assert_str_eq(err.msg, "field 'missing' is missing");
    ck_assert_int_eq(sw_json_get_string(o, "missing", NULL, 10, &s, &err), SW_EINVAL);
    ck_assert_str_eq(err.msg, "field 'missing' is missing");

    ck_assert_int_eq(sw_json_get_string(o, "n", "x", 10, &s, &err), SW_EINVAL);
    ck_assert_str_eq(err.msg, "field 'x.n' must be a string");
    ck_assert_int_eq(sw_json_get_bool(o, "s", "x", &b, &err), SW_EINVAL);
    ck_assert_str_eq(err.msg, "field 'x.s' must be true or false");
    ck_assert_int_eq(sw_json_get_bool(o, "n", "x", &b, &err), SW_EINVAL);
    ck_assert_int_eq(sw_json_get_u64(o, "s", "x", &u, &err), SW_EINVAL);
    ck_assert_str_eq(err.msg, "field 'x.s' must be a non-negative integer");
    ck_assert_int_eq(sw_json_get_u64(o, "b", "x", &u, &err), SW_EINVAL);
    ck_assert_int_eq(sw_json_get_u64(o, "d", "x", &u, &err), SW_EINVAL);
    ASSERT_MSG_HAS(err, "'x.d'");
    ck_assert_int_eq(sw_json_get_object(o, "a", "x", &v, &err), SW_EINVAL);
    ck_assert_str_eq(err.msg, "field 'x.a' must be an object");
    ck_assert_int_eq(sw_json_get_array(o, "o", "x", &v, &err), SW_EINVAL);
    ck_assert_str_eq(err.msg, "field 'x.o' must be an array");
    ck_assert_int_eq(sw_json_get_object(o, "o", "x", &v, &err), SW_OK);
    ck_assert(json_object_is_type(v, json_type_object));
    ck_assert_int_eq(sw_json_get_array(o, "a", "x", &v, &err), SW_OK);
    ck_assert(json_object_is_type(v, json_type_array));
    ck_assert_int_eq(sw_json_get_bool(o, "b", "x", &b, &err), SW_OK);
    ck_assert(b);
    ck_assert_int_eq(sw_json_get_u64(o, "n", "x", &u, &err), SW_OK);
    ck_assert(u == 5);
    json_object_put(o);
}
END_TEST

START_TEST(test_get_from_non_object)
{
    struct json_object *o = must_parse("[1,2]");
    const char *s;
    struct sw_error err;
    ck_assert_int_eq(sw_json_get_string(o, "k", "[0].entry", 10, &s, &err), SW_EINVAL);
    ASSERT_MSG_HAS(err, "'[0].entry' must be an object");
    ck_assert_int_eq(sw_json_get_string(o, "k", "", 10, &s, &err), SW_EINVAL);
    ASSERT_MSG_HAS(err, "must be an object");
    ck_assert_int_eq(sw_json_get_string(NULL, "k", "w", 10, &s, &err), SW_EINVAL);
    json_object_put(o);
}
END_TEST

START_TEST(test_get_u64_negative)
{
    struct json_object *o = must_parse("{\"n\":-1,\"m\":-9223372036854775808,\"z\":0,\"mz\":-0}");
    uint64_t u = 99;
    struct sw_error err;
    ck_assert_int_eq(sw_json_get_u64(o, "n", "body", &u, &err), SW_EINVAL);
    ck_assert_str_eq(err.msg, "field 'body.n' must be a non-negative integer");
    ck_assert_int_eq(sw_json_get_u64(o, "m", "body", &u, &err), SW_EINVAL);
    ck_assert(u == 99);
    ck_assert_int_eq(sw_json_get_u64(o, "z", "body", &u, &err), SW_OK);
    ck_assert(u == 0);
    ck_assert_int_eq(sw_json_get_u64(o, "mz", "body", &u, &err), SW_OK);
    ck_assert(u == 0);
    json_object_put(o);
}
END_TEST

START_TEST(test_get_string_limits)
{
    struct json_object *o = must_parse("{\"s\":\"abcd\",\"nul\":\"a\\u0000b\",\"e\":\"\"}");
    const char *s = NULL;
    struct sw_error err;
    ck_assert_int_eq(sw_json_get_string(o, "s", "q", 4, &s, &err), SW_OK);
    ck_assert_str_eq(s, "abcd");
    s = NULL;
    ck_assert_int_eq(sw_json_get_string(o, "s", "q", 3, &s, &err), SW_EINVAL);
    ck_assert_str_eq(err.msg, "field 'q.s' is longer than 3 bytes");
    ck_assert_ptr_null(s);
    ck_assert_int_eq(sw_json_get_string(o, "nul", "q", 100, &s, &err), SW_EINVAL);
    ck_assert_str_eq(err.msg, "field 'q.nul' contains a NUL character");
    ck_assert_ptr_null(s);
    ck_assert_int_eq(sw_json_get_string(o, "e", "q", 0, &s, &err), SW_OK);
    ck_assert_str_eq(s, "");
    json_object_put(o);
}
END_TEST

START_TEST(test_get_pk)
{
    struct sw_keypair kp;
    char hex[SW_PK_HEX_LEN + 1], doc[256];
    struct json_object *o;
    struct sw_pk pk;
    struct sw_error err;

    ck_assert_int_eq(sw_crypto_init(), SW_OK);
    ck_assert_int_eq(sw_keypair_generate(&kp), SW_OK);
    sw_pk_to_hex(&kp.pk, hex);
    snprintf(doc, sizeof(doc), "{\"pk\":\"%s\",\"short\":\"abcd\",\"n\":1,\"ff\":\"%064d\"}", hex, 0);
    o = must_parse(doc);
    ck_assert_int_eq(sw_json_get_pk(o, "pk", "[1]", &pk, &err), SW_OK);
    ck_assert(sw_pk_equal(&pk, &kp.pk));
    ck_assert_int_eq(sw_json_get_pk(o, "short", "[1]", &pk, &err), SW_EINVAL);
    ASSERT_MSG_HAS(err, "[1].short");
    ck_assert_int_eq(sw_json_get_pk(o, "ff", "", &pk, &err), SW_EINVAL);
    ASSERT_MSG_HAS(err, "ff");
    ASSERT_MSG_HAS(err, "not a valid Ed25519");
    ck_assert_int_eq(sw_json_get_pk(o, "n", "[1]", &pk, &err), SW_EINVAL);
    ck_assert_str_eq(err.msg, "field '[1].n' must be a string");
    ck_assert_int_eq(sw_json_get_pk(o, "nope", "[1]", &pk, &err), SW_EINVAL);
    ASSERT_MSG_HAS(err, "[1].nope");
    json_object_put(o);

    o = sw_json_pk(&kp.pk);
    ck_assert_ptr_nonnull(o);
    ck_assert(json_object_is_type(o, json_type_string));
    ck_assert_str_eq(json_object_get_string(o), hex);
    json_object_put(o);
}
END_TEST

START_TEST(test_compact)
{
    struct json_object *o = must_parse("{ \"a\" : [ 1 , 2 ] , \"u\" : \"http://x/y\" }");
    size_t len = 0;
    const char *s = sw_json_compact(o, &len);
    ck_assert_str_eq(s, "{\"a\":[1,2],\"u\":\"http://x/y\"}");
    ck_assert_uint_eq(len, strlen(s));
    json_object_put(o);
}
END_TEST

START_TEST(test_append_string_escapes)
{
    /* every byte that needs escaping, plus UTF-8 that must pass through unchanged */
    static const char raw[] = "a\"b\\c\n\t\x01\x1f\x7f \xc3\xa9/end";
    struct sw_buf b;
    struct json_object *o = NULL;
    sw_buf_init(&b, 0);
    ck_assert_int_eq(sw_json_append_string(&b, raw, sizeof(raw) - 1), SW_OK);
    ck_assert_str_eq(b.data, "\"a\\\"b\\\\c\\u000a\\u0009\\u0001\\u001f\x7f \xc3\xa9/end\"");
    ck_assert_int_eq(sw_json_parse(b.data, b.len, &o, NULL), SW_OK);
    ck_assert_int_eq(json_object_get_string_len(o), (int)sizeof(raw) - 1);
    ck_assert_mem_eq(json_object_get_string(o), raw, sizeof(raw) - 1);
    json_object_put(o);
    sw_buf_reset(&b);
    ck_assert_int_eq(sw_json_append_string(&b, "", 0), SW_OK);
    ck_assert_str_eq(b.data, "\"\"");
    sw_buf_free(&b);
}
END_TEST

static Suite *json_suite(void)
{
    Suite *s = suite_create("json");
    TCase *tp = tcase_create("parse");
    TCase *tg = tcase_create("getters");
    tcase_add_test(tp, test_parse_valid);
    tcase_add_test(tp, test_parse_values);
    tcase_add_test(tp, test_parse_only_prefix_of_buffer);
    tcase_add_test(tp, test_parse_truncated);
    tcase_add_test(tp, test_parse_trailing_garbage);
    tcase_add_test(tp, test_parse_syntax_errors);
    tcase_add_test(tp, test_parse_nul_bytes);
    tcase_add_test(tp, test_parse_depth_limit);
    tcase_add_test(tp, test_parse_huge_numbers);
    suite_add_tcase(s, tp);
    tcase_add_test(tg, test_get_missing_and_wrong_type);
    tcase_add_test(tg, test_get_from_non_object);
    tcase_add_test(tg, test_get_u64_negative);
    tcase_add_test(tg, test_get_string_limits);
    tcase_add_test(tg, test_get_pk);
    tcase_add_test(tg, test_compact);
    tcase_add_test(tg, test_append_string_escapes);
    suite_add_tcase(s, tg);
    return s;
}

const struct th_check_main th_check_main = { .suite = json_suite };
