/* Unit tests for the pure part of common/signed_request.c: the signed message bytes and
 * signing (the nonce store needs PostgreSQL and is covered by integration tests). */
#include "common/buf.h"
#include "common/err.h"
#include "common/keys.h"
#include "common/signed_request.h"
#include "tests/harness/check_main.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

START_TEST(test_message_exact_bytes)
{
    struct sw_buf b;
    sw_buf_init(&b, 0);
    ck_assert_int_eq(sw_sreq_message(&b, "POST", "/x?y=1", 5, "{body}", 6), SW_OK);
    ck_assert_uint_eq(b.len, strlen("POST /x?y=1\n5\n{body}"));
    ck_assert_mem_eq(b.data, "POST /x?y=1\n5\n{body}", b.len);
    ck_assert_int_eq(b.data[b.len], '\0');
    sw_buf_free(&b);
}
END_TEST

START_TEST(test_message_resets_and_edge_values)
{
    struct sw_buf b;
    static const char body[] = { 'a', '\0', 'b', '\n' }; /* binary body, embedded NUL */
    sw_buf_init(&b, 0);
    ck_assert_int_eq(sw_buf_append(&b, "junk", 4), SW_OK);

    /* reset first; empty body; nonce 0 */
    ck_assert_int_eq(sw_sreq_message(&b, "DELETE", "/transports/abc", 0, NULL, 0), SW_OK);
    ck_assert_str_eq(b.data, "DELETE /transports/abc\n0\n");
    ck_assert_uint_eq(b.len, strlen("DELETE /transports/abc\n0\n"));

    /* the largest nonce, in decimal */
    ck_assert_int_eq(sw_sreq_message(&b, "POST", "/t", UINT64_MAX, body, sizeof(body)), SW_OK);
    ck_assert_uint_eq(b.len, strlen("POST /t\n18446744073709551615\n") + sizeof(body));
    ck_assert_mem_eq(b.data, "POST /t\n18446744073709551615\na\0b\n", b.len);
    sw_buf_free(&b);
}
END_TEST

START_TEST(test_message_respects_limit)
{
    struct sw_buf b;
    sw_buf_init(&b, 16);
    ck_assert_int_eq(sw_sreq_message(&b, "POST", "/x", 1, "0123456789", 10), SW_ERANGE);
    ck_assert_int_eq(sw_sreq_message(&b, "POST", "/x", 1, "0123", 4), SW_OK);
    ck_assert_str_eq(b.data, "POST /x\n1\n0123");
    sw_buf_free(&b);
}
END_TEST

START_TEST(test_sign_verify_round_trip)
{
    struct sw_keypair kp, other;
    struct sw_sig sig;
    struct sw_buf msg;
    static const char body[] = "{\"edges\":[]}";
    const size_t blen = sizeof(body) - 1;

    ck_assert_int_eq(sw_crypto_init(), SW_OK);
    ck_assert_int_eq(sw_keypair_generate(&kp), SW_OK);
    ck_assert_int_eq(sw_keypair_generate(&other), SW_OK);
    ck_assert_int_eq(sw_sreq_sign(&kp, "POST", "/transports/?x=1", 7, body, blen, &sig), SW_OK);

    sw_buf_init(&msg, 0);
    ck_assert_int_eq(sw_sreq_message(&msg, "POST", "/transports/?x=1", 7, body, blen), SW_OK);
    ck_assert_int_eq(sw_verify(&kp.pk, msg.data, msg.len, &sig), SW_OK);
    ck_assert_int_eq(sw_verify(&other.pk, msg.data, msg.len, &sig), SW_ECRYPTO);

    /* every part of the message is covered by the signature */
    ck_assert_int_eq(sw_sreq_message(&msg, "PUT", "/transports/?x=1", 7, body, blen), SW_OK);
    ck_assert_int_eq(sw_verify(&kp.pk, msg.data, msg.len, &sig), SW_ECRYPTO);
    ck_assert_int_eq(sw_sreq_message(&msg, "POST", "/transports/?x=2", 7, body, blen), SW_OK);
    ck_assert_int_eq(sw_verify(&kp.pk, msg.data, msg.len, &sig), SW_ECRYPTO);
    ck_assert_int_eq(sw_sreq_message(&msg, "POST", "/transports/?x=1", 8, body, blen), SW_OK);
    ck_assert_int_eq(sw_verify(&kp.pk, msg.data, msg.len, &sig), SW_ECRYPTO);
    ck_assert_int_eq(sw_sreq_message(&msg, "POST", "/transports/?x=1", 7, body, blen - 1), SW_OK);
    ck_assert_int_eq(sw_verify(&kp.pk, msg.data, msg.len, &sig), SW_ECRYPTO);

    /* the signature is over exactly the documented bytes */
    ck_assert_int_eq(sw_sreq_sign(&kp, "GET", "/a", 1, "", 0, &sig), SW_OK);
    ck_assert_int_eq(sw_verify(&kp.pk, "GET /a\n1\n", 9, &sig), SW_OK);
    ck_assert_int_eq(sw_sreq_sign(&kp, "GET", "/a", 1, NULL, 0, &sig), SW_OK);
    ck_assert_int_eq(sw_verify(&kp.pk, "GET /a\n1\n", 9, &sig), SW_OK);
    sw_buf_free(&msg);
}
END_TEST

static Suite *sreq_suite(void)
{
    Suite *s = suite_create("signed_request");
    TCase *tc = tcase_create("message");
    tcase_add_test(tc, test_message_exact_bytes);
    tcase_add_test(tc, test_message_resets_and_edge_values);
    tcase_add_test(tc, test_message_respects_limit);
    tcase_add_test(tc, test_sign_verify_round_trip);
    suite_add_tcase(s, tc);
    return s;
}

const struct th_check_main th_check_main = { .suite = sreq_suite };
