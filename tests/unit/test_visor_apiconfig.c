/* Unit tests for the local API's pieces of visor/config.c (docs/visor.md "Access to the local
 * API"): the api.allowed_hosts field and its errors, the URL skywire-cli and the hypervisor
 * link use to reach api.listen, and the reader of the API token file with malformed or
 * misplaced files. */
#include "common/keys.h"
#include "tests/harness/check_main.h"
#include "visor/config.h"

#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static struct sw_keypair kp;
static char dir[64];

/* A generated config with "api" replaced by the JSON text api_json, loaded into c. */
static int load_api(const char *api_json, struct visor_config *c, struct sw_error *err)
{
    struct visor_gen_opts o = { .no_apps = true };
    struct json_object *doc = NULL;
    const char *text;
    int rc;

    ck_assert_int_eq(visor_config_generate(&o, &kp, &doc, err), SW_OK);
    json_object_object_add(doc, "api", json_tokener_parse(api_json));
    text = json_object_to_json_string(doc);
    rc = visor_config_load_string(c, "t.json", text, strlen(text), err);
    json_object_put(doc);
    return rc;
}

START_TEST(test_allowed_hosts)
{
    struct visor_config c;
    struct sw_error err = { 0 };

    ck_assert_int_eq(load_api("{\"listen\":\"127.0.0.1:3435\"}", &c, &err), SW_OK);
    ck_assert_uint_eq(c.n_api_allowed_hosts, 0);
    visor_config_free(&c);
    ck_assert_int_eq(load_api("{\"allowed_hosts\":[\"visor.lan\",\"10.0.0.5\",\"fe80::1\",\"[::1]\"]}",
                              &c, &err), SW_OK);
    ck_assert_uint_eq(c.n_api_allowed_hosts, 4);
    ck_assert_str_eq(c.api_allowed_hosts[0], "visor.lan");
    ck_assert_str_eq(c.api_allowed_hosts[2], "fe80::1");
    visor_config_free(&c);
}
END_TEST

START_TEST(test_allowed_hosts_errors)
{
    static const struct { const char *api, *want; } bad[] = {
        { "{\"allowed_hosts\":\"visor.lan\"}", "field 'api.allowed_hosts': must be an array" },
        { "{\"allowed_hosts\":[\"http://visor.lan\"]}", "field 'api.allowed_hosts[0]'" },
        { "{\"allowed_hosts\":[\"ok.lan\",\"visor.lan:3435\"]}", "field 'api.allowed_hosts[1]'" },
        { "{\"allowed_hosts\":[\"\"]}", "field 'api.allowed_hosts[0]'" },
        { "{\"allowed_hosts\":[7]}", "field 'api.allowed_hosts[0]'" },
        { "{\"allowed_hosts\":[\"a b\"]}", "field 'api.allowed_hosts[0]'" },
        { "{\"allowed_hosts\":[\"*.lan\"]}", "field 'api.allowed_hosts[0]'" },
        { "{\"allowed_hosts\":[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\",\"10\",\"11\","
          "\"12\",\"13\",\"14\",\"15\",\"16\",\"17\"]}", "holds more than 16 items" },
    };
    struct visor_config c;
    char longname[400];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct sw_error err = { 0 };
        ck_assert_int_eq(load_api(bad[i].api, &c, &err), SW_EINVAL);
        ck_assert_msg(strstr(err.msg, bad[i].want), "%s: %s", bad[i].api, err.msg);
    }
    {
        char name[300];
        memset(name, 'a', sizeof(name) - 1);
        name[sizeof(name) - 1] = '\0';
        snprintf(longname, sizeof(longname), "{\"allowed_hosts\":[\"%s\"]}", name);
    }
    {
        struct sw_error err = { 0 };
        ck_assert_int_eq(load_api(longname, &c, &err), SW_EINVAL);
        ck_assert_msg(strstr(err.msg, "api.allowed_hosts[0]"), "%s", err.msg);
    }
}
END_TEST

START_TEST(test_api_url)
{
    static const struct { const char *listen, *url, *host; } cases[] = {
        { "127.0.0.1:3435", "http://127.0.0.1:3435", "127.0.0.1" },
        { "0.0.0.0:3435", "http://127.0.0.1:3435", "" },
        { ":3436", "http://127.0.0.1:3436", "" },
        { "[::]:3435", "http://[::1]:3435", "" },
        { "[::1]:4000", "http://[::1]:4000", "::1" },
        { "localhost:1", "http://localhost:1", "localhost" },
        { "10.1.2.3:80", "http://10.1.2.3:80", "10.1.2.3" },
    };
    char api[96], url[64], host[64];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct visor_config c;
        struct sw_error err = { 0 };
        snprintf(api, sizeof(api), "{\"listen\":\"%s\"}", cases[i].listen);
        ck_assert_msg(load_api(api, &c, &err) == SW_OK, "%s", err.msg);
        ck_assert_int_eq(visor_config_api_url(&c, url, sizeof(url)), SW_OK);
        ck_assert_str_eq(url, cases[i].url);
        visor_config_api_listen_host(&c, host, sizeof(host));
        ck_assert_str_eq(host, cases[i].host);
        ck_assert_int_eq(visor_config_api_url(&c, url, 10), SW_ERANGE);
        visor_config_free(&c);
    }
}
END_TEST

/* ---- the token file -------------------------------------------------------------------------- */

static const char token[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

static const char *write_file(const char *name, const char *text, mode_t mode)
{
    static char path[128];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    unlink(path);
    ck_assert_ptr_nonnull(f = fopen(path, "w"));
    fputs(text, f);
    fclose(f);
    ck_assert_int_eq(chmod(path, mode), 0);
    return path;
}

static int read_token(const char *path, bool private_only, char *out, struct sw_error *err)
{
    int rc = visor_api_token_read(path, private_only, out, err);
    ck_assert_ptr_null(strstr(err->msg, token)); /* never in a message */
    return rc;
}

START_TEST(test_token_content)
{
    static const char *const bad[] = {
        "", "\n", "0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF\n",
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n",   /* 63 */
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0\n", /* 65 */
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n\n",
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef \n",
        " 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeg",
    };
    char out[VISOR_API_TOKEN_HEX + 1] = "untouched", line[80];
    struct sw_error err = { 0 };

    snprintf(line, sizeof(line), "%s\n", token);
    ck_assert_int_eq(read_token(write_file("t1", line, 0600), true, out, &err), SW_OK);
    ck_assert_str_eq(out, token);
    ck_assert_int_eq(read_token(write_file("t2", token, 0600), true, out, &err), SW_OK);
    ck_assert_str_eq(out, token);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(out, sizeof(out), "untouched");
        ck_assert_msg(read_token(write_file("t3", bad[i], 0600), true, out, &err) == SW_EINVAL,
                      "'%s' accepted", bad[i]);
        ck_assert_str_eq(out, "untouched");
        ck_assert_ptr_nonnull(strstr(err.msg, "not an API token"));
    }
}
END_TEST

START_TEST(test_token_placement)
{
    char out[VISOR_API_TOKEN_HEX + 1], path[160], link_path[160];
    struct sw_error err = { 0 };
    const char *p;

    snprintf(path, sizeof(path), "%s/missing", dir);
    ck_assert_int_eq(read_token(path, true, out, &err), SW_ENOTFOUND);
    p = write_file("wide", token, 0644);
    ck_assert_int_eq(read_token(p, true, out, &err), SW_EPERM);
    ck_assert_ptr_nonnull(strstr(err.msg, "mode 644"));
    ck_assert_int_eq(read_token(p, false, out, &err), SW_OK); /* the CLI reads what it is given */
    p = write_file("groupw", token, 0620);
    ck_assert_int_eq(read_token(p, true, out, &err), SW_EPERM);
    p = write_file("target", token, 0600);
    snprintf(link_path, sizeof(link_path), "%s/link", dir);
    ck_assert_int_eq(symlink(p, link_path), 0);
    ck_assert_int_eq(read_token(link_path, true, out, &err), SW_EPERM);
    ck_assert_ptr_nonnull(strstr(err.msg, "symbolic link"));
    ck_assert_int_eq(read_token(link_path, false, out, &err), SW_EPERM);
    ck_assert_int_eq(read_token(dir, false, out, &err), SW_EPERM); /* a directory */
    snprintf(path, sizeof(path), "%s/fifo", dir);
    ck_assert_int_eq(mkfifo(path, 0600), 0);
    ck_assert_int_eq(read_token(path, true, out, &err), SW_EPERM); /* refused, not waited on */
}
END_TEST

static Suite *visor_apiconfig_suite(void)
{
    Suite *s = suite_create("visor_apiconfig");
    TCase *tc = tcase_create("api");

    tcase_add_test(tc, test_allowed_hosts);
    tcase_add_test(tc, test_allowed_hosts_errors);
    tcase_add_test(tc, test_api_url);
    tcase_add_test(tc, test_token_content);
    tcase_add_test(tc, test_token_placement);
    suite_add_tcase(s, tc);
    return s;
}

/* The visor's key and the scratch directory the token tests write in. */
static int make_key_and_dir(void)
{
    sw_crypto_init();
    sw_keypair_generate(&kp);
    snprintf(dir, sizeof(dir), "/tmp/sw-apiconfig.XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static void remove_dir(void)
{
    char cmd[96];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

const struct th_check_main th_check_main = {
    .suite = visor_apiconfig_suite,
    .before = make_key_and_dir,
    .after = remove_dir,
};
