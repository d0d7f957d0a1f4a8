/* Unit tests for common/config.c: dotted paths, typed getters, ranges and messages. */
#include "common/config.h"
#include "common/err.h"
#include "common/keys.h"
#include "tests/harness/check_main.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ASSERT_MSG_HAS(err, needle)                                                           \
    ck_assert_msg(strstr((err).msg, (needle)) != NULL, "message '%s' lacks '%s'", (err).msg, \
                  (needle))

static struct sw_config cfg;
static char pk_hex[SW_PK_HEX_LEN + 1];

static void load(const char *text)
{
    struct sw_error err = { 0 };
    int rc = sw_config_load_string(&cfg, "test.json", text, strlen(text), &err);
    ck_assert_msg(rc == SW_OK, "load: %s", err.msg);
}

static void setup(void)
{
    struct sw_keypair kp;
    char text[2048];
    ck_assert_int_eq(sw_crypto_init(), SW_OK);
    ck_assert_int_eq(sw_keypair_generate(&kp), SW_OK);
    sw_pk_to_hex(&kp.pk, pk_hex);
    snprintf(text, sizeof(text),
             "{\"name\":\"visor\",\"debug\":true,\"port\":8080,\"neg\":-3,\"ratio\":0.5,"
             "\"nothing\":null,\"big\":18446744073709551615,\"above\":9223372036854775809,"
             "\"transport\":{\"discovery_url\":\"http://td.example:9091\","
             "\"listen\":\"0.0.0.0:7777\",\"pk\":\"%s\",\"bad_pk\":\"%064d\","
             "\"deep\":{\"er\":{\"est\":\"yes\"}}},"
             "\"list\":[1,2],\"emptyobj\":{}}",
             pk_hex, 0);
    load(text);
}

static void teardown(void) { sw_config_free(&cfg); }

START_TEST(test_load_string_errors)
{
    struct sw_config c;
    struct sw_error err = { 0 };
    ck_assert_int_eq(sw_config_load_string(&c, "bad.json", "{\"a\":", 5, &err), SW_EINVAL);
    ASSERT_MSG_HAS(err, "config bad.json:");
    ASSERT_MSG_HAS(err, "invalid JSON");
    ck_assert_ptr_null(c.root);
    ck_assert_int_eq(sw_config_load_string(&c, "arr.json", "[1]", 3, &err), SW_EINVAL);
    ASSERT_MSG_HAS(err, "arr.json");
    ASSERT_MSG_HAS(err, "top level must be a JSON object");
    ck_assert_ptr_null(c.root);
    ck_assert_int_eq(sw_config_load_string(&c, "t.json", "{} x", 4, &err), SW_EINVAL);
    ck_assert_int_eq(sw_config_load_string(&c, "t.json", "{}", 2, &err), SW_OK);
    ck_assert_str_eq(c.source, "t.json");
    sw_config_free(&c);
    ck_assert_ptr_null(c.root);
    sw_config_free(&c); /* idempotent */
}
END_TEST

START_TEST(test_load_file)
{
    char dir[] = "/tmp/sw-test-config-XXXXXX";
    char path[256], missing[256];
    struct sw_config c;
    struct sw_error err = { 0 };
    const char *s = NULL;
    FILE *f;
    char *big;

    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/skywire-config.json", dir);
    snprintf(missing, sizeof(missing), "%s/none.json", dir);

    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("{\"a\":{\"b\":\"c\"}}\n", f);
    fclose(f);
    ck_assert_int_eq(sw_config_load_file(&c, path, &err), SW_OK);
    ck_assert_int_eq(sw_config_string(&c, "a.b", true, &s, &err), SW_OK);
    ck_assert_str_eq(s, "c");
    ck_assert_int_eq(sw_config_string(&c, "a.x", true, &s, &err), SW_EINVAL);
    ASSERT_MSG_HAS(err, path); /* messages name the file */
    sw_config_free(&c);

    ck_assert_int_eq(sw_config_load_file(&c, missing, &err), SW_ENOTFOUND);
    ASSERT_MSG_HAS(err, "none.json");

    /* larger than SW_CONFIG_MAX_BYTES */
    big = malloc(SW_CONFIG_MAX_BYTES + 10);
    ck_assert_ptr_nonnull(big);
    memset(big, ' ', SW_CONFIG_MAX_BYTES + 10);
    big[0] = '{';
    big[SW_CONFIG_MAX_BYTES + 9] = '}';
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(big, 1, SW_CONFIG_MAX_BYTES + 10, f), SW_CONFIG_MAX_BYTES + 10);
    fclose(f);
    free(big);
    ck_assert_int_eq(sw_config_load_file(&c, path, &err), SW_ERANGE);
    ASSERT_MSG_HAS(err, "larger");

    unlink(path);
    rmdir(dir);
}
END_TEST

START_TEST(test_node_paths)
{
    struct json_object *n;
    char longpath[300];
    ck_assert_ptr_eq(sw_config_node(&cfg, ""), cfg.root);
    n = sw_config_node(&cfg, "transport.deep.er.est");
    ck_assert_ptr_nonnull(n);
    ck_assert_str_eq(json_object_get_string(n), "yes");
    ck_assert_ptr_nonnull(sw_config_node(&cfg, "transport.deep"));
    ck_assert_ptr_null(sw_config_node(&cfg, "transport.deep.nope"));
    ck_assert_ptr_null(sw_config_node(&cfg, "nope.deep"));
    ck_assert_ptr_null(sw_config_node(&cfg, "name.sub")); /* through a string */
    ck_assert_ptr_null(sw_config_node(&cfg, "list.0"));   /* no array indexing */
    ck_assert_ptr_null(sw_config_node(&cfg, "nothing"));  /* null = absent */
    ck_assert_ptr_null(sw_config_node(&cfg, "transport..pk"));
    memset(longpath, 'a', sizeof(longpath) - 1);
    longpath[sizeof(longpath) - 1] = '\0';
    ck_assert_ptr_null(sw_config_node(&cfg, longpath));
}
END_TEST

START_TEST(test_string)
{
    const char *s = "default";
    struct sw_error err = { 0 };
    ck_assert_int_eq(sw_config_string(&cfg, "name", true, &s, &err), SW_OK);
    ck_assert_str_eq(s, "visor");

    s = "default";
    ck_assert_int_eq(sw_config_string(&cfg, "transport.missing", false, &s, &err), SW_OK);
    ck_assert_str_eq(s, "default"); /* optional + absent: untouched */
    ck_assert_int_eq(sw_config_string(&cfg, "nothing", false, &s, &err), SW_OK);
    ck_assert_str_eq(s, "default");

    ck_assert_int_eq(sw_config_string(&cfg, "transport.missing", true, &s, &err), SW_EINVAL);
    ck_assert_str_eq(err.msg, "config test.json: field 'transport.missing': is required");
    ck_assert_int_eq(sw_config_string(&cfg, "port", true, &s, &err), SW_EINVAL);
    ck_assert_str_eq(err.msg, "config test.json: field 'port': must be a string");
    /* wrong type is an error even when optional */
    ck_assert_int_eq(sw_config_string(&cfg, "transport.deep", false, &s, &err), SW_EINVAL);
    ASSERT_MSG_HAS(err, "'transport.deep'");
    ck_assert_str_eq(s, "default");
}
END_TEST

START_TEST(test_bool)
{
    bool b = false;
    struct sw_error err = { 0 };
    ck_assert_int_eq(sw_config_bool(&cfg, "debug", true, &b, &err), SW_OK);
    ck_assert(b);
    b = false;
    ck_assert_int_eq(sw_config_bool(&cfg, "x.y", false, &b, &err), SW_OK);
    ck_assert(!b);
    ck_assert_int_eq(sw_config_bool(&cfg, "port", false, &b, &err), SW_EINVAL);
    ck_assert_str_eq(err.msg, "config test.json: field 'port': must be true or false");
    ck_assert_int_eq(sw_config_bool(&cfg, "name", true, &b, &err), SW_EINVAL);
    ck_assert_int_eq(sw_config_bool(&cfg, "x.y", true, &b, &err), SW_EINVAL);
    ASSERT_MSG_HAS(err, "'x.y': is required");
}
END_TEST

START_TEST(test_uint_ranges)
{
    uint64_t u = 42;
    struct sw_error err = { 0 };
    ck_assert_int_eq(sw_config_uint(&cfg, "port", true, 1, 65535, &u, &err), SW_OK);
    ck_assert(u == 8080);
    /* inclusive bounds */
    ck_assert_int_eq(sw_config_uint(&cfg, "port", true, 8080, 8080, &u, &err), SW_OK);
    u = 42;
    ck_assert_int_eq(sw_config_uint(&cfg, "port", true, 8081, 9000, &u, &err), SW_EINVAL);
    ck_assert_str_eq(err.msg, "config test.json: field 'port': must be between 8081 and 9000");
    ck_assert_int_eq(sw_config_uint(&cfg, "port", true, 1, 8079, &u, &err), SW_EINVAL);
    ASSERT_MSG_HAS(err, "between 1 and 8079");
    ck_assert(u == 42);
    ck_assert_int_eq(sw_config_uint(&cfg, "neg", true, 0, 100, &u, &err), SW_EINVAL);
    ASSERT_MSG_HAS(err, "'neg'");
    ck_assert_int_eq(sw_config_uint(&cfg, "ratio", true, 0, 100, &u, &err), SW_EINVAL);
    ck_assert_str_eq(err.msg, "config test.json: field 'ratio': must be an integer");
    ck_assert_int_eq(sw_config_uint(&cfg, "name", false, 0, 100, &u, &err), SW_EINVAL);
    ck_assert_int_eq(sw_config_uint(&cfg, "absent", false, 0, 100, &u, &err), SW_OK);
    ck_assert(u == 42);
    ck_assert_int_eq(sw_config_uint(&cfg, "absent", true, 0, 100, &u, &err), SW_EINVAL);
    ASSERT_MSG_HAS(err, "is required");
    ck_assert(u == 42);
}
END_TEST

START_TEST(test_uint_above_int64)
{
    /* values json-c stores as uint64 must come back exactly, not clamped to INT64_MAX */
    uint64_t u = 0;
    struct sw_error err = { 0 };
    ck_assert_int_eq(sw_config_uint(&cfg, "big", true, 0, UINT64_MAX, &u, &err), SW_OK);
    ck_assert(u == UINT64_MAX);
    ck_assert_int_eq(sw_config_uint(&cfg, "above", true, 0, UINT64_MAX, &u, &err), SW_OK);
    ck_assert(u == (uint64_t)INT64_MAX + 2);
    /* and they are range-checked as such */
    u = 7;
    ck_assert_int_eq(sw_config_uint(&cfg, "above", true, 0, (uint64_t)INT64_MAX, &u, &err),
                     SW_EINVAL);
    ck_assert(u == 7);
    ck_assert_int_eq(sw_config_uint(&cfg, "big", true, (uint64_t)INT64_MAX + 3, UINT64_MAX, &u,
                                    &err), SW_OK);
}
END_TEST

START_TEST(test_pk)
{
    struct sw_pk pk, orig;
    struct sw_error err = { 0 };
    char hex[SW_PK_HEX_LEN + 1];
    memset(&pk, 0x11, sizeof(pk));
    orig = pk;
    ck_assert_int_eq(sw_config_pk(&cfg, "transport.absent", false, &pk, &err), SW_OK);
    ck_assert_mem_eq(&pk, &orig, sizeof(pk));
    ck_assert_int_eq(sw_config_pk(&cfg, "transport.bad_pk", false, &pk, &err), SW_EINVAL);
    ASSERT_MSG_HAS(err, "config test.json: field 'transport.bad_pk':");
    ASSERT_MSG_HAS(err, "not a valid public key");
    ck_assert_int_eq(sw_config_pk(&cfg, "name", true, &pk, &err), SW_EINVAL);
    ASSERT_MSG_HAS(err, "'name'");
    ck_assert_int_eq(sw_config_pk(&cfg, "port", true, &pk, &err), SW_EINVAL);
    ASSERT_MSG_HAS(err, "must be a string");
    ck_assert_int_eq(sw_config_pk(&cfg, "transport.absent", true, &pk, &err), SW_EINVAL);
    ASSERT_MSG_HAS(err, "is required");
    ck_assert_mem_eq(&pk, &orig, sizeof(pk));
    ck_assert_int_eq(sw_config_pk(&cfg, "transport.pk", true, &pk, &err), SW_OK);
    sw_pk_to_hex(&pk, hex);
    ck_assert_str_eq(hex, pk_hex);
}
END_TEST

START_TEST(test_hostport_parse)
{
    static const char *const good[] = { "localhost:8080", "1.2.3.4:0", "example.com:65535",
                                        "[::1]:443", "[2001:db8::1]:80", "host:00080",
                                        "[fe80::1%eth0]:1", "[1.2.3.4]:5" };
    static const char *const bad[] = { "", "localhost", "localhost:", "localhost:65536",
                                       "localhost:-1", "localhost:+80", "localhost: 80",
                                       "localhost:80 ", "localhost:8o", "host:123456",
                                       "host:000080", "::1:80", "[::1]", "[::1]80", "[::1]:",
                                       "[::1:80", "a:b:80", "host:99999999999999999999",
                                       "[::1]:65536", ":", "::80", "[]:80", "[]:", "]:80",
                                       "[::1]:80:1", "[::1]::80", "h:0x50", "h:٣" };
    char host[64] = "untouched";
    uint16_t port = 7;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        ck_assert_msg(sw_hostport_parse(good[i], 0, NULL, 0, NULL) == SW_OK, "rejected '%s'", good[i]);
        ck_assert_msg(sw_hostport_parse(good[i], SW_HOSTPORT_LISTEN, NULL, 0, NULL) == SW_OK,
                      "rejected '%s' as a listen address", good[i]);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_msg(sw_hostport_parse(bad[i], 0, host, sizeof(host), &port) == SW_EINVAL,
                      "accepted '%s'", bad[i]);
        ck_assert_msg(sw_hostport_parse(bad[i], SW_HOSTPORT_LISTEN, host, sizeof(host), &port) == SW_EINVAL,
                      "accepted '%s' as a listen address", bad[i]);
    }
    ck_assert_str_eq(host, "untouched"); /* outputs only on success */
    ck_assert_uint_eq(port, 7);
    ck_assert_int_eq(sw_hostport_parse(NULL, SW_HOSTPORT_LISTEN, NULL, 0, NULL), SW_EINVAL);

    ck_assert_int_eq(sw_hostport_parse("example.com:65535", 0, host, sizeof(host), &port), SW_OK);
    ck_assert_str_eq(host, "example.com");
    ck_assert_uint_eq(port, 65535);
    ck_assert_int_eq(sw_hostport_parse("[2001:db8::1]:443", 0, host, sizeof(host), &port), SW_OK);
    ck_assert_str_eq(host, "2001:db8::1");
    ck_assert_uint_eq(port, 443);
    ck_assert_int_eq(sw_hostport_parse("h:0", 0, host, sizeof(host), &port), SW_OK);
    ck_assert_str_eq(host, "h");
    ck_assert_uint_eq(port, 0);
    /* host buffer too small: "abcd" needs 5 */
    ck_assert_int_eq(sw_hostport_parse("abcd:1", 0, host, 4, &port), SW_EINVAL);
    ck_assert_int_eq(sw_hostport_parse("abcd:1", 0, host, 5, &port), SW_OK);
    ck_assert_str_eq(host, "abcd");
}
END_TEST

/* ":port" is a listen address on every interface, never something to dial. */
START_TEST(test_hostport_listen_flag)
{
    char host[16] = "x";
    uint16_t port = 0;
    ck_assert_int_eq(sw_hostport_parse(":8080", 0, host, sizeof(host), &port), SW_EINVAL);
    ck_assert_str_eq(host, "x");
    ck_assert_int_eq(sw_hostport_parse(":8080", SW_HOSTPORT_LISTEN, host, sizeof(host), &port), SW_OK);
    ck_assert_str_eq(host, "");
    ck_assert_uint_eq(port, 8080);
    ck_assert_int_eq(sw_hostport_parse(":0", SW_HOSTPORT_LISTEN, host, 1, &port), SW_OK);
    ck_assert_uint_eq(port, 0);
    ck_assert_int_eq(sw_hostport_parse(":0", SW_HOSTPORT_LISTEN, host, 0, &port), SW_EINVAL);
    ck_assert_int_eq(sw_hostport_parse("0.0.0.0:1", SW_HOSTPORT_LISTEN, host, sizeof(host), &port), SW_OK);
    ck_assert_str_eq(host, "0.0.0.0");
}
END_TEST

START_TEST(test_hostport_config)
{
    const char *s = "dflt";
    struct sw_error err = { 0 };
    struct sw_config c;
    static const char text[] = "{\"a\":\"[::1]:5000\",\"b\":\"[::1]\",\"c\":\"h:70000\",\"d\":3,"
                               "\"e\":\":9000\"}";

    ck_assert_int_eq(sw_config_hostport(&cfg, "transport.listen", true, 0, &s, &err), SW_OK);
    ck_assert_str_eq(s, "0.0.0.0:7777");
    s = "dflt";
    ck_assert_int_eq(sw_config_hostport(&cfg, "transport.none", false, 0, &s, &err), SW_OK);
    ck_assert_str_eq(s, "dflt");
    ck_assert_int_eq(sw_config_hostport(&cfg, "name", true, 0, &s, &err), SW_EINVAL);
    ck_assert_str_eq(err.msg,
                     "config test.json: field 'name': must be host:port with a port 0-65535");
    ck_assert_str_eq(s, "dflt");

    ck_assert_int_eq(sw_config_load_string(&c, "h.json", text, sizeof(text) - 1, &err), SW_OK);
    ck_assert_int_eq(sw_config_hostport(&c, "a", true, 0, &s, &err), SW_OK);
    ck_assert_str_eq(s, "[::1]:5000");
    ck_assert_int_eq(sw_config_hostport(&c, "b", true, 0, &s, &err), SW_EINVAL);
    ASSERT_MSG_HAS(err, "config h.json: field 'b'");
    ck_assert_int_eq(sw_config_hostport(&c, "c", true, 0, &s, &err), SW_EINVAL);
    ASSERT_MSG_HAS(err, "field 'c'");
    ck_assert_int_eq(sw_config_hostport(&c, "d", true, 0, &s, &err), SW_EINVAL);
    ASSERT_MSG_HAS(err, "must be a string");
    ck_assert_int_eq(sw_config_hostport(&c, "e", true, 0, &s, &err), SW_EINVAL);
    ASSERT_MSG_HAS(err, "field 'e'");
    ck_assert_int_eq(sw_config_hostport(&c, "e", true, SW_HOSTPORT_LISTEN, &s, &err), SW_OK);
    ck_assert_str_eq(s, ":9000");
    sw_config_free(&c);
}
END_TEST

START_TEST(test_url)
{
    static const char *const good[] = { "http://x", "https://x", "http://example.com",
                                        "https://td.skywire.dev/v1?x=1", "HTTP://Example.COM",
                                        "http://[::1]:8080/", "http://a:1" };
    static const char *const bad[] = { "", "http://", "https://", "ftp://example.com",
                                       "example.com", "http:/x", "http://exa mple.com",
                                       "http://x\n", "\thttp://x", "http:///path",
                                       "httpx://y" };
    char text[256];
    struct sw_error err = { 0 };
    const char *s;

    ck_assert_int_eq(sw_config_url(&cfg, "transport.discovery_url", true, &s, &err), SW_OK);
    ck_assert_str_eq(s, "http://td.example:9091");

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        struct sw_config c;
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "u", json_object_new_string(good[i]));
        snprintf(text, sizeof(text), "%s", json_object_to_json_string(o));
        json_object_put(o);
        ck_assert_int_eq(sw_config_load_string(&c, "u.json", text, strlen(text), &err), SW_OK);
        s = NULL;
        ck_assert_msg(sw_config_url(&c, "u", true, &s, &err) == SW_OK, "rejected '%s': %s",
                      good[i], err.msg);
        ck_assert_str_eq(s, good[i]);
        sw_config_free(&c);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct sw_config c;
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "svc", json_object_new_object());
        json_object_object_add(json_object_object_get(o, "svc"), "url",
                               json_object_new_string(bad[i]));
        snprintf(text, sizeof(text), "%s", json_object_to_json_string(o));
        json_object_put(o);
        ck_assert_int_eq(sw_config_load_string(&c, "u.json", text, strlen(text), &err), SW_OK);
        s = "dflt";
        ck_assert_msg(sw_config_url(&c, "svc.url", true, &s, &err) == SW_EINVAL,
                      "accepted '%s'", bad[i]);
        ck_assert_str_eq(err.msg,
                         "config u.json: field 'svc.url': must be an http:// or https:// URL");
        ck_assert_str_eq(s, "dflt");
        sw_config_free(&c);
    }
    s = "dflt";
    ck_assert_int_eq(sw_config_url(&cfg, "svc.none", false, &s, &err), SW_OK);
    ck_assert_str_eq(s, "dflt");
}
END_TEST

START_TEST(test_field_error)
{
    struct sw_error err = { 0 };
    ck_assert_int_eq(sw_config_field_error(&cfg, "routing.setup_nodes[1]", &err,
                                           "not a valid public key (%d)", 7), SW_EINVAL);
    ck_assert_int_eq(err.code, SW_EINVAL);
    ck_assert_str_eq(err.msg,
                     "config test.json: field 'routing.setup_nodes[1]': not a valid public key (7)");
    ck_assert_int_eq(sw_config_field_error(&cfg, "x", NULL, "y"), SW_EINVAL);
}
END_TEST

static Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_load_string_errors);
    tcase_add_test(tc, test_load_file);
    tcase_add_test(tc, test_node_paths);
    tcase_add_test(tc, test_string);
    tcase_add_test(tc, test_bool);
    tcase_add_test(tc, test_uint_ranges);
    tcase_add_test(tc, test_uint_above_int64);
    tcase_add_test(tc, test_pk);
    tcase_add_test(tc, test_hostport_parse);
    tcase_add_test(tc, test_hostport_listen_flag);
    tcase_add_test(tc, test_hostport_config);
    tcase_add_test(tc, test_url);
    tcase_add_test(tc, test_field_error);
    suite_add_tcase(s, tc);
    return s;
}

const struct th_check_main th_check_main = { .suite = config_suite };
