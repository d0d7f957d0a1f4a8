/* Unit tests for visor/rules.c: the route ID table (reserve, install, ownership, expiry,
 * keep-alive) and the routing packet parser (valid and malformed packets). */
#include "visor/rules.h"
#include "common/err.h"
#include "tests/harness/check_main.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

static struct sw_pk pk_of(uint8_t b)
{
    struct sw_pk pk;
    memset(pk.b, b, sizeof(pk.b));
    return pk;
}

START_TEST(test_reserve_install)
{
    struct visor_rule_table rt;
    struct sw_pk sn = pk_of(1), other = pk_of(2);
    struct visor_rule r = { 0 }, *got;
    uint32_t a = 0, b = 0;

    visor_rules_init(&rt);
    ck_assert_int_eq(visor_rules_reserve(&rt, &sn, 1000, &a), SW_OK);
    ck_assert_int_eq(visor_rules_reserve(&rt, &sn, 1000, &b), SW_OK);
    ck_assert_uint_ne(a, 0);
    ck_assert_uint_ne(a, b);
    ck_assert_uint_eq(rt.n, 2);
    got = visor_rules_get(&rt, a);
    ck_assert_ptr_nonnull(got);
    ck_assert_int_eq(got->type, VISOR_RULE_RESERVED);
    ck_assert_int_eq(got->expires_at, 1000 + VISOR_RULE_RESERVE_S);
    ck_assert_ptr_null(visor_rules_get(&rt, 0));
    ck_assert_ptr_null(visor_rules_get(&rt, 999999));

    r.rid = a;
    r.type = VISOR_RULE_FORWARD;
    r.next_rid = 77;
    ck_assert_int_eq(visor_rules_install(&rt, &r, &other, 1001), SW_EPERM);  /* not its reservation */
    ck_assert_int_eq(visor_rules_install(&rt, &r, &sn, 1001), SW_OK);
    ck_assert_int_eq(visor_rules_install(&rt, &r, &sn, 1001), SW_EEXIST);    /* only once */
    got = visor_rules_get(&rt, a);
    ck_assert_int_eq(got->type, VISOR_RULE_FORWARD);
    ck_assert_uint_eq(got->next_rid, 77);
    ck_assert_int_eq(got->expires_at, 1001 + VISOR_RULE_KEEPALIVE_S);
    r.rid = 123456;
    ck_assert_int_eq(visor_rules_install(&rt, &r, &sn, 1001), SW_ENOTFOUND); /* never reserved */
    r.rid = b;
    r.next_rid = 0;
    ck_assert_int_eq(visor_rules_install(&rt, &r, &sn, 1001), SW_EINVAL);    /* forward needs next_rid */
    r.type = VISOR_RULE_RESERVED;
    ck_assert_int_eq(visor_rules_install(&rt, &r, &sn, 1001), SW_EINVAL);
    r.type = VISOR_RULE_CONSUME;
    r.local_port = 5;
    ck_assert_int_eq(visor_rules_install(&rt, &r, &sn, 1001), SW_OK);
    ck_assert_str_eq(visor_rule_type_name(visor_rules_get(&rt, b)->type), "consume");

    ck_assert_int_eq(visor_rules_del(&rt, a), SW_OK);
    ck_assert_int_eq(visor_rules_del(&rt, a), SW_ENOTFOUND);
    ck_assert_ptr_null(visor_rules_get(&rt, a));
    ck_assert_uint_eq(rt.n, 1);
    visor_rules_free(&rt);
}
END_TEST

static void count_cb(void *arg, const struct visor_rule *r)
{
    (*(int *)arg)++;
}

START_TEST(test_expiry_and_keepalive)
{
    struct visor_rule_table rt;
    struct sw_pk sn = pk_of(3);
    struct visor_rule r = { .type = VISOR_RULE_CONSUME, .local_port = 1 };
    uint32_t used = 0, idle = 0, unused = 0;
    int n = 0;

    visor_rules_init(&rt);
    ck_assert_int_eq(visor_rules_reserve(&rt, &sn, 0, &used), SW_OK);
    ck_assert_int_eq(visor_rules_reserve(&rt, &sn, 0, &idle), SW_OK);
    ck_assert_int_eq(visor_rules_reserve(&rt, &sn, 0, &unused), SW_OK);
    r.rid = used;
    ck_assert_int_eq(visor_rules_install(&rt, &r, &sn, 0), SW_OK);
    r.rid = idle;
    ck_assert_int_eq(visor_rules_install(&rt, &r, &sn, 0), SW_OK);

    /* the reservation alone expires after VISOR_RULE_RESERVE_S */
    ck_assert_uint_eq(visor_rules_expire(&rt, VISOR_RULE_RESERVE_S - 1, count_cb, &n), 0);
    ck_assert_uint_eq(visor_rules_expire(&rt, VISOR_RULE_RESERVE_S, count_cb, &n), 1);
    ck_assert_int_eq(n, 1);
    ck_assert_ptr_null(visor_rules_get(&rt, unused));

    /* traffic pushes the expiry; the idle rule goes at VISOR_RULE_KEEPALIVE_S */
    visor_rules_touch(&rt, visor_rules_get(&rt, used), 100, 100);
    ck_assert_uint_eq(visor_rules_get(&rt, used)->packets, 1);
    ck_assert_uint_eq(visor_rules_get(&rt, used)->bytes, 100);
    ck_assert_uint_eq(visor_rules_expire(&rt, VISOR_RULE_KEEPALIVE_S, NULL, NULL), 1);
    ck_assert_ptr_null(visor_rules_get(&rt, idle));
    ck_assert_ptr_nonnull(visor_rules_get(&rt, used));
    ck_assert_uint_eq(visor_rules_expire(&rt, 100 + VISOR_RULE_KEEPALIVE_S, NULL, NULL), 1);
    ck_assert_uint_eq(rt.n, 0);
    visor_rules_free(&rt);
}
END_TEST

START_TEST(test_many_ids)
{
    struct visor_rule_table rt;
    struct sw_pk sn = pk_of(4);
    uint32_t rid = 0, prev = 0;

    visor_rules_init(&rt);
    for (int i = 0; i < 10000; i++) {
        ck_assert_int_eq(visor_rules_reserve(&rt, &sn, 0, &rid), SW_OK);
        ck_assert_uint_ne(rid, prev);
        prev = rid;
    }
    ck_assert_uint_eq(rt.n, 10000);
    /* wrap-around skips 0 and IDs in use */
    rt.last_rid = UINT32_MAX - 1;
    ck_assert_int_eq(visor_rules_reserve(&rt, &sn, 0, &rid), SW_OK);
    ck_assert_uint_eq(rid, UINT32_MAX);
    ck_assert_int_eq(visor_rules_reserve(&rt, &sn, 0, &rid), SW_OK);
    ck_assert_uint_eq(rid, 10001);
    visor_rules_free(&rt);
}
END_TEST

START_TEST(test_parse_valid)
{
    uint8_t buf[64], msg[3] = { 'a', 'b', 'c' };
    struct visor_rpkt p;
    size_t n;

    n = visor_rpkt_build(buf, sizeof(buf), VISOR_RPKT_DATA, 0x01020304, msg, 3, 0);
    ck_assert_uint_eq(n, 5 + 2 + 3);
    ck_assert_uint_eq(buf[0], 0x10);
    ck_assert_uint_eq(buf[1], 1);
    ck_assert_uint_eq(buf[4], 4);
    ck_assert_uint_eq(buf[6], 3);
    ck_assert_int_eq(visor_rpkt_parse(buf, n, &p), SW_OK);
    ck_assert_uint_eq(p.type, VISOR_RPKT_DATA);
    ck_assert_uint_eq(p.rid, 0x01020304);
    ck_assert_uint_eq(p.data_len, 3);
    ck_assert(memcmp(p.data, "abc", 3) == 0);

    n = visor_rpkt_build(buf, sizeof(buf), VISOR_RPKT_CLOSE, 9, NULL, 0, VISOR_RPKT_CLOSE_ERROR);
    ck_assert_uint_eq(n, 6);
    ck_assert_int_eq(visor_rpkt_parse(buf, n, &p), SW_OK);
    ck_assert_uint_eq(p.type, VISOR_RPKT_CLOSE);
    ck_assert_uint_eq(p.code, 1);

    n = visor_rpkt_build(buf, sizeof(buf), VISOR_RPKT_KEEPALIVE, 7, NULL, 0, 0);
    ck_assert_uint_eq(n, 5);
    ck_assert_int_eq(visor_rpkt_parse(buf, n, &p), SW_OK);
    ck_assert_uint_eq(p.type, VISOR_RPKT_KEEPALIVE);
    ck_assert_uint_eq(p.rid, 7);

    ck_assert(visor_rpkt_is_routing(0x10) && visor_rpkt_is_routing(0x11) && visor_rpkt_is_routing(0x12));
    ck_assert(!visor_rpkt_is_routing(0x13) && !visor_rpkt_is_routing(0x05));
    ck_assert_uint_eq(visor_rpkt_build(buf, 6, VISOR_RPKT_DATA, 1, msg, 3, 0), 0); /* does not fit */
    ck_assert_uint_eq(visor_rpkt_build(buf, sizeof(buf), VISOR_RPKT_DATA, 1, msg, 0, 0), 0);
}
END_TEST

START_TEST(test_parse_malformed)
{
    static const struct { const char *what; uint8_t b[16]; size_t n; } bad[] = {
        { "empty", { 0 }, 0 },
        { "type only", { 0x10 }, 1 },
        { "short route id", { 0x10, 0, 0, 1 }, 4 },
        { "route id 0", { 0x12, 0, 0, 0, 0 }, 5 },
        { "unknown type", { 0x13, 0, 0, 0, 1 }, 5 },
        { "transport type", { 0x05, 0, 0, 0, 1, 0 }, 6 },
        { "data without length", { 0x10, 0, 0, 0, 1 }, 5 },
        { "data half length", { 0x10, 0, 0, 0, 1, 0 }, 6 },
        { "data length 0", { 0x10, 0, 0, 0, 1, 0, 0 }, 7 },
        { "data truncated", { 0x10, 0, 0, 0, 1, 0, 4, 'a', 'b' }, 9 },
        { "data trailing", { 0x10, 0, 0, 0, 1, 0, 1, 'a', 'b' }, 9 },
        { "data huge length", { 0x10, 0, 0, 0, 1, 0xff, 0xff, 'a' }, 8 },
        { "close empty", { 0x11, 0, 0, 0, 1 }, 5 },
        { "close code 2", { 0x11, 0, 0, 0, 1, 2 }, 6 },
        { "close trailing", { 0x11, 0, 0, 0, 1, 0, 0 }, 7 },
        { "keepalive body", { 0x12, 0, 0, 0, 1, 0 }, 6 },
    };
    struct visor_rpkt p = { .rid = 42 };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        /* heap copies of exactly n bytes so ASan sees any over-read */
        uint8_t *copy = malloc(bad[i].n ? bad[i].n : 1);
        memcpy(copy, bad[i].b, bad[i].n);
        ck_assert_msg(visor_rpkt_parse(copy, bad[i].n, &p) == SW_EPROTO, "%s accepted", bad[i].what);
        ck_assert_uint_eq(p.rid, 42); /* untouched */
        free(copy);
    }
}
END_TEST

START_TEST(test_parse_random)
{
    uint8_t buf[32];
    struct visor_rpkt p;
    unsigned seed = 1;

    for (int i = 0; i < 200000; i++) {
        size_t n = (size_t)(rand_r(&seed) % (int)sizeof(buf));
        uint8_t *copy;
        for (size_t j = 0; j < n; j++)
            buf[j] = (uint8_t)rand_r(&seed);
        if (n)
            buf[0] = (uint8_t)(0x10 + buf[0] % 3);
        copy = malloc(n ? n : 1);
        memcpy(copy, buf, n);
        if (visor_rpkt_parse(copy, n, &p) == SW_OK) {
            ck_assert(visor_rpkt_is_routing(p.type));
            ck_assert_uint_ne(p.rid, 0);
            if (p.type == VISOR_RPKT_DATA)
                ck_assert_uint_eq(p.data_len + 7, n);
        }
        free(copy);
    }
}
END_TEST

static Suite *visor_rules_suite(void)
{
    Suite *s = suite_create("visor_rules");
    TCase *tc = tcase_create("rules");

    tcase_add_test(tc, test_reserve_install);
    tcase_add_test(tc, test_expiry_and_keepalive);
    tcase_add_test(tc, test_many_ids);
    tcase_add_test(tc, test_parse_valid);
    tcase_add_test(tc, test_parse_malformed);
    tcase_add_test(tc, test_parse_random);
    suite_add_tcase(s, tc);
    return s;
}

const struct th_check_main th_check_main = { .suite = visor_rules_suite };
