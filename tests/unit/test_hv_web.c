/* Unit tests for hypervisor/web.c: the embedded page (hypervisor/web/, turned into byte
 * arrays by scripts/embed.sh) is found by URL path, byte for byte, with its content type. */
#include "hypervisor/web.h"
#include "tests/harness/check_main.h"

#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reads hypervisor/web/NAME (the tests run from the source root) into a malloc'd buffer. */
static unsigned char *read_source(const char *name, size_t *len)
{
    char path[512];
    unsigned char *buf = NULL;
    long n;
    FILE *f;

    snprintf(path, sizeof(path), "%s/hypervisor/web/%s", getenv("SW_TEST_ROOT") ? getenv("SW_TEST_ROOT") : ".", name);
    f = fopen(path, "rb");
    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
        buf = malloc((size_t)n + 1);
        if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
            free(buf);
            buf = NULL;
        }
        *len = (size_t)n;
    }
    fclose(f);
    return buf;
}

START_TEST(test_index)
{
    const unsigned char *d1 = NULL, *d2 = NULL;
    size_t l1 = 0, l2 = 0;
    const char *t1 = NULL, *t2 = NULL;

    ck_assert_int_eq(hv_web_lookup("/", &d1, &l1, &t1), 0);
    ck_assert_int_eq(hv_web_lookup("/index.html", &d2, &l2, &t2), 0);
    ck_assert_ptr_eq(d1, d2);
    ck_assert_uint_eq(l1, l2);
    ck_assert_str_eq(t1, "text/html; charset=utf-8");
    ck_assert_uint_gt(l1, 15);
    ck_assert_int_eq(memcmp(d1, "<!DOCTYPE html>", 15), 0);
    ck_assert_int_eq(d1[l1], '\0'); /* one NUL after the bytes, not counted */
}
END_TEST

START_TEST(test_assets_and_types)
{
    const unsigned char *d;
    size_t l;
    const char *t;

    ck_assert_int_eq(hv_web_lookup("/app.js", &d, &l, &t), 0);
    ck_assert_str_eq(t, "text/javascript; charset=utf-8");
    ck_assert_int_eq(hv_web_lookup("/style.css", &d, &l, &t), 0);
    ck_assert_str_eq(t, "text/css; charset=utf-8");
    ck_assert_int_eq(hv_web_lookup("/favicon.svg", &d, &l, &t), 0);
    ck_assert_str_eq(t, "image/svg+xml");
}
END_TEST

START_TEST(test_not_found)
{
    static const char *const bad[] = {
        "", "index.html", "/nope.html", "/api/visors", "/web/app.js", "/../Makefile", "//app.js",
        "/app.js/", "/app.js?x=1", "/APP.JS", "/app.j", "/app.jsx",
    };
    const unsigned char *d = (const unsigned char *)"x";
    size_t l = 7;
    const char *t = "y";
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(hv_web_lookup(bad[i], &d, &l, &t) == -1, "'%s' was found", bad[i]);
    ck_assert_int_eq(hv_web_lookup(NULL, &d, &l, &t), -1);
    /* outputs untouched on failure */
    ck_assert_int_eq(d[0], 'x');
    ck_assert_uint_eq(l, 7);
    ck_assert_str_eq(t, "y");
}
END_TEST

/* Every file of hypervisor/web/ is embedded byte for byte. */
START_TEST(test_every_source_file_embedded)
{
    char dir[512];
    DIR *dp;
    struct dirent *de;
    int files = 0;

    snprintf(dir, sizeof(dir), "%s/hypervisor/web", getenv("SW_TEST_ROOT") ? getenv("SW_TEST_ROOT") : ".");
    dp = opendir(dir);
    ck_assert_msg(dp != NULL, "cannot open %s", dir);
    while ((de = readdir(dp)) != NULL) {
        char path[300];
        const unsigned char *d;
        const char *t;
        size_t l, srclen = 0;
        unsigned char *src;

        if (de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "/%s", de->d_name);
        ck_assert_msg(hv_web_lookup(path, &d, &l, &t) == 0, "%s is not embedded", path);
        src = read_source(de->d_name, &srclen);
        ck_assert_ptr_nonnull(src);
        ck_assert_uint_eq(l, srclen);
        ck_assert_msg(memcmp(d, src, l) == 0, "%s differs from its source", path);
        ck_assert_str_ne(t, "application/octet-stream");
        free(src);
        files++;
    }
    closedir(dp);
    ck_assert_int_ge(files, 4);
}
END_TEST

static Suite *web_suite(void)
{
    Suite *s = suite_create("hv_web");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_index);
    tcase_add_test(tc, test_assets_and_types);
    tcase_add_test(tc, test_not_found);
    tcase_add_test(tc, test_every_source_file_embedded);
    suite_add_tcase(s, tc);
    return s;
}

const struct th_check_main th_check_main = { .suite = web_suite };
