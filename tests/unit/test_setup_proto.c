/* Unit tests for common/setup_proto.c: route_group parsing (malformed JSON, bad keys and
 * t_ids, broken paths) and the u32-length framing over a socketpair. */
#include "common/err.h"
#include "common/json.h"
#include "common/keys.h"
#include "common/setup_proto.h"
#include "tests/harness/check_main.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static char ka[65], kh[65], kb[65];
#define T1 "0a1b2c3d-0000-4000-8000-000000000001"
#define T2 "0a1b2c3d-0000-4000-8000-000000000002"

static int keys_init(void)
{
    struct sw_keypair kp;
    char *out[3] = { ka, kh, kb };
    if (sw_crypto_init() != SW_OK)
        abort();
    for (int i = 0; i < 3; i++) {
        sw_keypair_generate(&kp);
        sw_pk_to_hex(&kp.pk, out[i]);
        sw_keypair_wipe(&kp);
    }
    return 0;
}

/* Builds a request text; fwd/rev are JSON arrays given verbatim. */
static char *request(const char *src, const char *dst, const char *fwd, const char *rev)
{
    char *s = NULL;
    ck_assert_int_ge(asprintf(&s,
                              "{\"type\":\"route_group\",\"id\":42,\"src\":{\"pk\":\"%s\",\"port\":5},"
                              "\"dst\":{\"pk\":\"%s\",\"port\":1},\"forward\":%s,\"reverse\":%s,\"extra\":1}",
                              src, dst, fwd, rev),
                     0);
    return s;
}

static char *hop(const char *from, const char *to, const char *t)
{
    char *s = NULL;
    ck_assert_int_ge(asprintf(&s, "{\"from\":\"%s\",\"to\":\"%s\",\"t_id\":\"%s\"}", from, to, t), 0);
    return s;
}

static char *path2(const char *a, const char *b, const char *c, const char *t1, const char *t2)
{
    char *h1 = hop(a, b, t1), *h2 = hop(b, c, t2), *s = NULL;
    ck_assert_int_ge(asprintf(&s, "[%s,%s]", h1, h2), 0);
    free(h1);
    free(h2);
    return s;
}

static int parse_text(const char *text, struct sw_route_group_req *r, struct sw_error *err)
{
    struct json_object *o = NULL;
    int rc;
    memset(err, 0, sizeof(*err));
    rc = sw_json_parse(text, strlen(text), &o, err);
    if (rc == SW_OK)
        rc = sw_route_group_parse(o, r, err);
    json_object_put(o);
    return rc;
}

static int parse_paths(const char *fwd, const char *rev, struct sw_error *err)
{
    struct sw_route_group_req *r = malloc(sizeof(*r));
    char *text = request(ka, kb, fwd, rev);
    int rc = parse_text(text, r, err);
    free(text);
    free(r);
    return rc;
}

START_TEST(test_valid_two_hop)
{
    struct sw_route_group_req *r = malloc(sizeof(*r));
    struct sw_error err;
    char *fwd = path2(ka, kh, kb, T1, T2), *rev = path2(kb, kh, ka, T2, T1), *text = request(ka, kb, fwd, rev);
    char hex[65];
    ck_assert_msg(parse_text(text, r, &err) == SW_OK, "%s", err.msg);
    ck_assert_uint_eq(r->id, 42);
    ck_assert_uint_eq(r->n_fwd, 2);
    ck_assert_uint_eq(r->n_rev, 2);
    ck_assert_uint_eq(r->src.port, 5);
    ck_assert_uint_eq(r->dst.port, 1);
    sw_pk_to_hex(&r->fwd[0].to, hex);
    ck_assert_str_eq(hex, kh);
    free(text);
    free(fwd);
    free(rev);
    free(r);
}
END_TEST

START_TEST(test_malformed_requests)
{
    static const char *const bad[] = {
        "null", "[]", "1", "{}", "{\"type\":\"reserve\",\"id\":1}", "{\"type\":\"route_group\"}",
        "{\"type\":\"route_group\",\"id\":-1}", "{\"type\":\"route_group\",\"id\":1,\"src\":5}",
        "{\"type\":\"route_group\",\"id\":1,\"src\":{\"pk\":\"zz\",\"port\":1}}",
    };
    struct sw_route_group_req *r = malloc(sizeof(*r));
    struct sw_error err;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = parse_text(bad[i], r, &err);
        ck_assert_msg(rc == SW_EINVAL, "'%s' gave %d", bad[i], rc);
        ck_assert(err.msg[0] != '\0');
    }
    /* port out of range */
    {
        char *fwd = path2(ka, kh, kb, T1, T2), *rev = path2(kb, kh, ka, T2, T1), *text = request(ka, kb, fwd, rev);
        char *p = strstr(text, "\"port\":5");
        memcpy(p, "\"port\":9", 8);
        ck_assert_int_eq(parse_text(text, r, &err), SW_OK);
        char *big = NULL;
        ck_assert_int_ge(asprintf(&big, "{\"type\":\"route_group\",\"id\":1,\"src\":{\"pk\":\"%s\",\"port\":70000}}",
                                  ka), 0);
        ck_assert_int_eq(parse_text(big, r, &err), SW_EINVAL);
        free(big);
        free(text);
        free(fwd);
        free(rev);
    }
    /* truncated JSON */
    ck_assert_int_eq(parse_text("{\"type\":\"route_group\",", r, &err), SW_EINVAL);
    free(r);
}
END_TEST

START_TEST(test_invalid_paths)
{
    struct sw_error err;
    char *fwd = path2(ka, kh, kb, T1, T2), *rev = path2(kb, kh, ka, T2, T1);
    char *gap = path2(ka, kh, kb, T1, T2), *loop = NULL, *h1, *h2, *h3, *many = NULL;
    /* not contiguous: second hop starts at A */
    memcpy(strstr(strstr(gap, "},{") + 3, kh), ka, 64);
    ck_assert_int_eq(parse_paths(gap, rev, &err), SW_ERANGE);
    ck_assert_ptr_nonnull(strstr(err.msg, "contiguous"));
    /* wrong end: reverse given as forward */
    ck_assert_int_eq(parse_paths(rev, rev, &err), SW_ERANGE);
    /* empty path, not an array */
    ck_assert_int_eq(parse_paths("[]", rev, &err), SW_ERANGE);
    ck_assert_int_eq(parse_paths(fwd, "{}", &err), SW_EINVAL);
    /* bad t_id, bad key, hop not an object */
    h1 = hop(ka, kb, "not-a-uuid");
    ck_assert_int_ge(asprintf(&loop, "[%s]", h1), 0);
    ck_assert_int_eq(parse_paths(loop, rev, &err), SW_ERANGE);
    ck_assert_ptr_nonnull(strstr(err.msg, "forward[0].t_id"));
    free(loop);
    free(h1);
    h1 = hop(ka, "00", T1);
    ck_assert_int_ge(asprintf(&loop, "[%s]", h1), 0);
    ck_assert_int_eq(parse_paths(loop, rev, &err), SW_ERANGE);
    free(loop);
    free(h1);
    ck_assert_int_eq(parse_paths("[1]", rev, &err), SW_ERANGE);
    /* a loop: A -> H -> A -> B */
    h1 = hop(ka, kh, T1);
    h2 = hop(kh, ka, T1);
    h3 = hop(ka, kb, T2);
    ck_assert_int_ge(asprintf(&loop, "[%s,%s,%s]", h1, h2, h3), 0);
    ck_assert_int_eq(parse_paths(loop, rev, &err), SW_ERANGE);
    ck_assert_ptr_nonnull(strstr(err.msg, "twice"));
    /* a hop to itself: A -> A -> B */
    free(loop);
    free(h2);
    h2 = hop(ka, ka, T1);
    ck_assert_int_ge(asprintf(&loop, "[%s,%s]", h2, h3), 0);
    ck_assert_int_eq(parse_paths(loop, rev, &err), SW_ERANGE);
    ck_assert_ptr_nonnull(strstr(err.msg, "twice"));
    /* 17 hops */
    {
        size_t cap = 17 * 200 + 3, off = 1;
        many = malloc(cap);
        many[0] = '[';
        for (int i = 0; i < 17; i++)
            off += (size_t)snprintf(many + off, cap - off, "%s%s", i ? "," : "", h1);
        snprintf(many + off, cap - off, "]");
        ck_assert_int_eq(parse_paths(many, rev, &err), SW_ERANGE);
        ck_assert_ptr_nonnull(strstr(err.msg, "1 to 16"));
    }
    free(many);
    free(loop);
    free(h1);
    free(h2);
    free(h3);
    free(gap);
    free(fwd);
    free(rev);
}
END_TEST

START_TEST(test_frames)
{
    int sv[2];
    char *out = NULL;
    size_t len;
    const uint8_t huge[4] = { 0, 1, 0, 1 }, zero[4] = { 0 }, partial[6] = { 0, 0, 0, 9, '{', '}' };
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    ck_assert_int_eq(sw_setup_frame_write(sv[0], "{\"a\":1}", 7, 1000), SW_OK);
    ck_assert_int_eq(sw_setup_frame_read(sv[1], 1000, &out, &len), SW_OK);
    ck_assert_uint_eq(len, 7);
    ck_assert_str_eq(out, "{\"a\":1}");
    free(out);
    /* nothing to read: timeout */
    ck_assert_int_eq(sw_setup_frame_read(sv[1], 50, &out, &len), SW_ETIMEDOUT);
    /* over 64 KiB, and zero length */
    ck_assert_int_eq(write(sv[0], huge, 4), 4);
    ck_assert_int_eq(sw_setup_frame_read(sv[1], 1000, &out, &len), SW_ERANGE);
    ck_assert_int_eq(write(sv[0], zero, 4), 4);
    ck_assert_int_eq(sw_setup_frame_read(sv[1], 1000, &out, &len), SW_ERANGE);
    ck_assert_int_eq(sw_setup_frame_write(sv[0], "x", SW_SETUP_MAX_FRAME + 1, 1000), SW_ERANGE);
    /* EOF in the middle of a frame, then a clean EOF */
    ck_assert_int_eq(write(sv[0], partial, 6), 6);
    shutdown(sv[0], SHUT_WR);
    ck_assert_int_eq(sw_setup_frame_read(sv[1], 1000, &out, &len), SW_EIO);
    ck_assert_int_eq(sw_setup_frame_read(sv[1], 1000, &out, &len), SW_ENOTFOUND);
    close(sv[0]);
    close(sv[1]);
}
END_TEST

START_TEST(test_responses)
{
    struct json_object *o = sw_setup_error(3, "forbidden", "no");
    ck_assert_str_eq(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN),
                     "{\"id\":3,\"ok\":false,\"error\":{\"code\":\"forbidden\",\"message\":\"no\"}}");
    json_object_put(o);
    o = sw_setup_ok(18446744073709551615ull);
    ck_assert_str_eq(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN),
                     "{\"id\":18446744073709551615,\"ok\":true}");
    json_object_put(o);
}
END_TEST

static Suite *setup_proto_suite(void)
{
    Suite *s = suite_create("setup_proto");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_valid_two_hop);
    tcase_add_test(tc, test_malformed_requests);
    tcase_add_test(tc, test_invalid_paths);
    tcase_add_test(tc, test_frames);
    tcase_add_test(tc, test_responses);
    suite_add_tcase(s, tc);
    return s;
}

const struct th_check_main th_check_main = { .suite = setup_proto_suite, .before = keys_init };
