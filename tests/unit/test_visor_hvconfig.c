/* Unit tests for the visor config's "hypervisors" field (visor/config.c): generation with
 * --hypervisor, loading, and errors naming the field. */
#include "common/keys.h"
#include "tests/harness/check_main.h"
#include "visor/config.h"

#include <check.h>
#include <stdio.h>
#include <string.h>

static struct sw_keypair kp, hv;
static char hv_hex[SW_PK_HEX_LEN + 1];

static struct json_object *generated(const char *const *hvs, size_t n, struct sw_error *err, int *rc)
{
    struct visor_gen_opts o = { .no_apps = true, .hypervisors = hvs, .n_hypervisors = n };
    struct json_object *doc = NULL;
    *rc = visor_config_generate(&o, &kp, &doc, err);
    return doc;
}

/* Loads doc with its "hypervisors" replaced by the JSON text value. */
static int load_with(struct json_object *doc, const char *value, struct visor_config *c, struct sw_error *err)
{
    const char *text;

    json_object_object_add(doc, "hypervisors", json_tokener_parse(value));
    text = json_object_to_json_string(doc);
    return visor_config_load_string(c, "test.json", text, strlen(text), err);
}

START_TEST(test_generate_and_load)
{
    char arg[128];
    const char *hvs[1] = { arg };
    struct sw_error err = { 0 };
    struct visor_config c;
    struct json_object *doc;
    const char *text;
    int rc;

    snprintf(arg, sizeof(arg), "%s@hv.example:9081", hv_hex);
    doc = generated(hvs, 1, &err, &rc);
    ck_assert_msg(rc == SW_OK, "%s", err.msg);
    text = json_object_to_json_string(doc);
    ck_assert_int_eq(visor_config_load_string(&c, "gen.json", text, strlen(text), &err), SW_OK);
    ck_assert_uint_eq(c.n_hypervisors, 1);
    ck_assert(sw_pk_equal(&c.hypervisors[0].pk, &hv.pk));
    ck_assert_str_eq(c.hypervisors[0].addr, "hv.example:9081");
    visor_config_free(&c);
    json_object_put(doc);
    /* absent: none */
    doc = generated(NULL, 0, &err, &rc);
    ck_assert_int_eq(rc, SW_OK);
    json_object_object_del(doc, "hypervisors");
    text = json_object_to_json_string(doc);
    ck_assert_int_eq(visor_config_load_string(&c, "gen.json", text, strlen(text), &err), SW_OK);
    ck_assert_uint_eq(c.n_hypervisors, 0);
    visor_config_free(&c);
    json_object_put(doc);
}
END_TEST

START_TEST(test_generate_rejects)
{
    const char *bad[] = { "nothex@127.0.0.1:1" };
    const char *noport[1];
    char arg[128];
    struct sw_error err = { 0 };
    int rc;

    generated(bad, 1, &err, &rc);
    ck_assert_int_eq(rc, SW_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "--hypervisor"));
    snprintf(arg, sizeof(arg), "%s@nohostport", hv_hex);
    noport[0] = arg;
    generated(noport, 1, &err, &rc);
    ck_assert_int_eq(rc, SW_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "--hypervisor"));
}
END_TEST

START_TEST(test_load_errors)
{
    static const struct { const char *value, *field; } cases[] = {
        { "{}", "'hypervisors'" },
        { "[\"x\"]", "'hypervisors[0]'" },
        { "[{\"pk\":\"abc\",\"addr\":\"h:1\"}]", "'hypervisors[0].pk'" },
        { "[{\"addr\":\"h:1\"}]", "'hypervisors[0].pk'" },
        { "[{\"pk\":\"PK\",\"addr\":\"h:1\"},{\"pk\":\"PK\",\"addr\":\"nope\"}]", "'hypervisors[1].addr'" },
        { "[{\"pk\":\"PK\",\"addr\":5}]", "'hypervisors[0].addr'" },
        { "[1,2,3,4,5,6,7,8,9]", "'hypervisors'" },
    };
    struct sw_error err = { 0 };
    struct visor_config c;
    int rc;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct json_object *doc = generated(NULL, 0, &err, &rc);
        char value[512], *p;
        snprintf(value, sizeof(value), "%s", cases[i].value);
        while ((p = strstr(value, "PK"))) { /* a valid key in place of PK */
            char tmp[512];
            snprintf(tmp, sizeof(tmp), "%.*s%s%s", (int)(p - value), value, hv_hex, p + 2);
            snprintf(value, sizeof(value), "%s", tmp);
        }
        ck_assert_int_eq(load_with(doc, value, &c, &err), SW_EINVAL);
        ck_assert_msg(strstr(err.msg, cases[i].field), "case %zu: %s", i, err.msg);
        json_object_put(doc);
    }
}
END_TEST

static Suite *visor_hvconfig_suite(void)
{
    Suite *s = suite_create("visor_hvconfig");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_generate_and_load);
    tcase_add_test(tc, test_generate_rejects);
    tcase_add_test(tc, test_load_errors);
    suite_add_tcase(s, tc);
    return s;
}

/* The visor's key and a hypervisor's key, shared by every test. */
static int make_keys(void)
{
    sw_crypto_init();
    sw_keypair_generate(&kp);
    sw_keypair_generate(&hv);
    sw_pk_to_hex(&hv.pk, hv_hex);
    return 0;
}

const struct th_check_main th_check_main = { .suite = visor_hvconfig_suite, .before = make_keys };
