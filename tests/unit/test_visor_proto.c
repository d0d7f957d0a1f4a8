/* Unit tests for the visor's pure request parsers: visor/router_proto.c (the rule server's
 * reserve / add_rules / del_rules / group_ready, docs/routing.md §3) and
 * visor/appsrv_proto.c (the app socket's listen / dial, §6). */
#include "visor/appsrv_proto.h"
#include "visor/router_proto.h"
#include "common/err.h"
#include "common/json.h"
#include "tests/harness/check_main.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PK_A "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c"
#define TP_1 "6f0a1b2c-3d4e-5f60-7182-93a4b5c6d7e8"

static struct visor_rproto_req rq; /* 12 KiB */

/* Parses text with visor_rproto_parse; returns its code, *code and err. */
static int rparse(const char *text, const char **code, struct sw_error *err)
{
    struct json_object *o = json_tokener_parse(text);
    int rc;
    ck_assert_ptr_nonnull(o);
    memset(err, 0, sizeof(*err));
    *code = NULL;
    rc = visor_rproto_parse(o, &rq, code, err);
    json_object_put(o);
    return rc;
}

static void rfails(const char *text, const char *want_code, const char *msg_part, uint64_t want_id)
{
    struct sw_error err;
    const char *code;
    ck_assert_int_eq(rparse(text, &code, &err), SW_EINVAL);
    ck_assert_str_eq(code, want_code);
    ck_assert_msg(strstr(err.msg, msg_part), "%s: message '%s' lacks '%s'", text, err.msg, msg_part);
    ck_assert_uint_eq(rq.id, want_id);
}

START_TEST(test_rproto_reserve)
{
    struct sw_error err;
    const char *code;

    ck_assert_int_eq(rparse("{\"type\":\"reserve\",\"id\":42,\"n\":8}", &code, &err), SW_OK);
    ck_assert_int_eq(rq.type, VISOR_RPROTO_RESERVE);
    ck_assert_uint_eq(rq.id, 42);
    ck_assert_uint_eq(rq.n, 8);
    rfails("{\"type\":\"reserve\",\"id\":3,\"n\":9}", "invalid_request", "'n'", 3);
    rfails("{\"type\":\"reserve\",\"id\":3,\"n\":0}", "invalid_request", "'n'", 3);
    rfails("{\"type\":\"reserve\",\"id\":3}", "invalid_request", "n", 3);
    rfails("{\"type\":\"reserve\",\"id\":\"3\",\"n\":1}", "invalid_request", "'id'", 0);
    rfails("{\"type\":\"reserve\",\"n\":1}", "invalid_request", "'id'", 0);
    rfails("{\"id\":4}", "invalid_request", "'type'", 4);
    rfails("{\"type\":\"teleport\",\"id\":5}", "unknown_type", "unknown request type", 5);
}
END_TEST

START_TEST(test_rproto_add_rules)
{
    struct sw_error err;
    const char *code;

    ck_assert_int_eq(rparse("{\"type\":\"add_rules\",\"id\":7,\"rules\":["
                            "{\"rid\":5,\"type\":\"forward\",\"next_tp\":\"" TP_1 "\",\"next_rid\":77},"
                            "{\"rid\":6,\"type\":\"consume\",\"local_port\":1,\"remote_pk\":\"" PK_A
                            "\",\"remote_port\":49152}]}",
                            &code, &err),
                     SW_OK);
    ck_assert_int_eq(rq.type, VISOR_RPROTO_ADD_RULES);
    ck_assert_uint_eq(rq.n_rules, 2);
    ck_assert_int_eq(rq.rules[0].type, VISOR_RULE_FORWARD);
    ck_assert_uint_eq(rq.rules[0].rid, 5);
    ck_assert_uint_eq(rq.rules[0].next_rid, 77);
    ck_assert_uint_eq(rq.rules[0].next_tp.b[0], 0x6f);
    ck_assert_int_eq(rq.rules[1].type, VISOR_RULE_CONSUME);
    ck_assert_uint_eq(rq.rules[1].local_port, 1);
    ck_assert_uint_eq(rq.rules[1].remote_port, 49152);
    ck_assert_uint_eq(rq.rules[1].remote_pk.b[0], 0x8a);
    ck_assert_uint_eq(rq.rules[1].group, 6);

    rfails("{\"type\":\"add_rules\",\"id\":1,\"rules\":[]}", "invalid_request", "1..64", 1);
    rfails("{\"type\":\"add_rules\",\"id\":1}", "invalid_request", "rules", 1);
    rfails("{\"type\":\"add_rules\",\"id\":1,\"rules\":[7]}", "invalid_request", "rules[0]", 1);
    rfails("{\"type\":\"add_rules\",\"id\":1,\"rules\":[{\"rid\":0,\"type\":\"consume\"}]}", "invalid_request",
           "rid", 1);
    rfails("{\"type\":\"add_rules\",\"id\":1,\"rules\":[{\"rid\":1,\"type\":\"sideways\"}]}", "invalid_request",
           "type", 1);
    rfails("{\"type\":\"add_rules\",\"id\":1,\"rules\":[{\"rid\":1,\"type\":\"forward\",\"next_tp\":\"" TP_1
           "\",\"next_rid\":0}]}",
           "invalid_request", "next_rid", 1);
    rfails("{\"type\":\"add_rules\",\"id\":1,\"rules\":[{\"rid\":1,\"type\":\"forward\",\"next_tp\":\"nope\","
           "\"next_rid\":3}]}",
           "invalid_request", "next_tp", 1);
    rfails("{\"type\":\"add_rules\",\"id\":1,\"rules\":[{\"rid\":1,\"type\":\"consume\",\"local_port\":70000,"
           "\"remote_pk\":\"" PK_A "\",\"remote_port\":1}]}",
           "invalid_request", "local_port", 1);
    rfails("{\"type\":\"add_rules\",\"id\":1,\"rules\":[{\"rid\":1,\"type\":\"consume\",\"local_port\":1,"
           "\"remote_pk\":\"" PK_A "\",\"remote_port\":1},{\"rid\":1,\"type\":\"forward\",\"next_tp\":\"" TP_1
           "\",\"next_rid\":3}]}",
           "invalid_request", "twice", 1);
    {
        /* 65 rules: one too many */
        char big[4096];
        size_t off = (size_t)snprintf(big, sizeof(big), "{\"type\":\"add_rules\",\"id\":2,\"rules\":[");
        for (int i = 0; i < 65; i++)
            off += (size_t)snprintf(big + off, sizeof(big) - off, "%s{\"rid\":%d}", i ? "," : "", i + 1);
        snprintf(big + off, sizeof(big) - off, "]}");
        rfails(big, "invalid_request", "1..64", 2);
    }
}
END_TEST

START_TEST(test_rproto_del_rules_group_ready)
{
    struct sw_error err;
    const char *code;

    ck_assert_int_eq(rparse("{\"type\":\"del_rules\",\"id\":9,\"rids\":[1,4294967295,1]}", &code, &err), SW_OK);
    ck_assert_int_eq(rq.type, VISOR_RPROTO_DEL_RULES);
    ck_assert_uint_eq(rq.n_rids, 3);
    ck_assert_uint_eq(rq.rids[1], 4294967295u);
    ck_assert_int_eq(rparse("{\"type\":\"del_rules\",\"id\":9,\"rids\":[]}", &code, &err), SW_OK);
    ck_assert_uint_eq(rq.n_rids, 0);
    rfails("{\"type\":\"del_rules\",\"id\":9,\"rids\":[0]}", "invalid_request", "1..4294967295", 9);
    rfails("{\"type\":\"del_rules\",\"id\":9,\"rids\":[4294967296]}", "invalid_request", "1..4294967295", 9);
    rfails("{\"type\":\"del_rules\",\"id\":9,\"rids\":[\"5\"]}", "invalid_request", "1..4294967295", 9);
    rfails("{\"type\":\"del_rules\",\"id\":9}", "invalid_request", "rids", 9);
    /* group_ready: its fields are group.c's; the parser only dispatches */
    ck_assert_int_eq(rparse("{\"type\":\"group_ready\",\"id\":10}", &code, &err), SW_OK);
    ck_assert_int_eq(rq.type, VISOR_RPROTO_GROUP_READY);
    ck_assert_uint_eq(rq.id, 10);
}
END_TEST

/* ---- app socket ---------------------------------------------------------------------------- */

static int aparse(const char *text, struct visor_appsrv_req *r, const char **code, struct sw_error *err)
{
    memset(err, 0, sizeof(*err));
    *code = NULL;
    return visor_appsrv_req_parse(text, strlen(text), r, code, err);
}

static void afails(const char *text, const char *want_code, const char *msg_part)
{
    struct visor_appsrv_req r;
    struct sw_error err;
    const char *code;
    ck_assert_int_eq(aparse(text, &r, &code, &err), SW_EINVAL);
    ck_assert_str_eq(code, want_code);
    ck_assert_msg(strstr(err.msg, msg_part), "%s: message '%s' lacks '%s'", text, err.msg, msg_part);
    ck_assert_ptr_null(r.root);
}

START_TEST(test_appsrv_parse)
{
    struct visor_appsrv_req r;
    struct sw_error err;
    const char *code;

    ck_assert_int_eq(aparse("{\"op\":\"listen\",\"port\":65535}", &r, &code, &err), SW_OK);
    ck_assert_int_eq(r.op, VISOR_APPSRV_OP_LISTEN);
    ck_assert_uint_eq(r.port, 65535);
    ck_assert_ptr_nonnull(r.root);
    visor_appsrv_req_free(&r);
    ck_assert_ptr_null(r.root);

    ck_assert_int_eq(aparse("{\"op\":\"dial\",\"pk\":\"" PK_A "\",\"port\":1}", &r, &code, &err), SW_OK);
    ck_assert_int_eq(r.op, VISOR_APPSRV_OP_DIAL);
    ck_assert_uint_eq(r.port, 1);
    ck_assert_uint_eq(r.pk.b[0], 0x8a);
    ck_assert_ptr_null(r.forward);
    visor_appsrv_req_free(&r);

    ck_assert_int_eq(aparse("{\"op\":\"dial\",\"pk\":\"" PK_A "\",\"port\":2,\"forward\":[],\"reverse\":[]}", &r,
                            &code, &err),
                     SW_OK);
    ck_assert_ptr_nonnull(r.forward);
    ck_assert_ptr_nonnull(r.reverse);
    visor_appsrv_req_free(&r);

    afails("{\"op\":\"listen\",\"port\":0}", "invalid_port", "1..65535");
    afails("{\"op\":\"listen\",\"port\":65536}", "invalid_port", "1..65535");
    afails("{\"op\":\"listen\"}", "invalid_port", "1..65535");
    afails("{\"op\":\"dial\",\"pk\":\"" PK_A "\",\"port\":0}", "invalid_request", "'port'");
    afails("{\"op\":\"dial\",\"pk\":\"" PK_A "\",\"port\":70000}", "invalid_request", "'port'");
    afails("{\"op\":\"dial\",\"pk\":\"beef\",\"port\":1}", "invalid_request", "pk");
    afails("{\"op\":\"dial\",\"pk\":\"" PK_A "\",\"port\":1,\"forward\":[]}", "invalid_request", "both");
    afails("{\"op\":\"connect\"}", "unknown_op", "listen");
    afails("{\"port\":1}", "invalid_request", "\"op\"");
    afails("[1]", "invalid_request", "\"op\"");
    afails("not json", "invalid_request", "\"op\"");
    afails("", "invalid_request", "\"op\"");
}
END_TEST

static Suite *visor_proto_suite(void)
{
    Suite *s = suite_create("visor_proto");
    TCase *tc = tcase_create("parse");

    tcase_add_test(tc, test_rproto_reserve);
    tcase_add_test(tc, test_rproto_add_rules);
    tcase_add_test(tc, test_rproto_del_rules_group_ready);
    tcase_add_test(tc, test_appsrv_parse);
    suite_add_tcase(s, tc);
    return s;
}

const struct th_check_main th_check_main = { .suite = visor_proto_suite };
