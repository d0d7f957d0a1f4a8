/* Unit tests for common/msg_proto.c: the frames of a messaging session (docs/messaging.md §2).
 * Every type at its exact body length decodes and re-encodes to the same bytes; one byte
 * more or less, a stream id on the wrong kind of frame, a zero window increment, empty DATA
 * and unknown types are refused with a reason, leaving the output untouched. */
#include "common/err.h"
#include "common/msg_proto.h"
#include "tests/harness/check_main.h"

#include <check.h>
#include <string.h>

/* Decodes buf[len], expecting SW_EPROTO and an untouched output. */
static void expect_bad(const uint8_t *buf, size_t len, const char *why)
{
    struct sw_msg_frame f, before;
    struct sw_error err = { 0 };

    memset(&f, 0x5a, sizeof(f));
    before = f;
    ck_assert_msg(sw_msg_frame_decode(buf, len, &f, &err) == SW_EPROTO, "accepted: %s", why);
    ck_assert_int_eq(err.code, SW_EPROTO);
    ck_assert_msg(err.msg[0] != '\0', "no message: %s", why);
    ck_assert_mem_eq(&f, &before, sizeof(f));
}

/* Encodes f, checks the length, decodes it back and re-encodes to the same bytes. Every
 * type but DATA has one body length: one byte more or less is then malformed. */
static void round_trip(const struct sw_msg_frame *f, size_t want_len, struct sw_msg_frame *out)
{
    uint8_t a[SW_MSG_MAX_PLAINTEXT], b[SW_MSG_MAX_PLAINTEXT];
    struct sw_error err = { 0 };
    size_t n = sw_msg_frame_encode(f, a, sizeof(a));

    ck_assert_uint_eq(n, want_len);
    ck_assert_int_eq(sw_msg_frame_decode(a, n, out, &err), SW_OK);
    ck_assert_uint_eq(sw_msg_frame_encode(out, b, sizeof(b)), n);
    ck_assert_mem_eq(a, b, n);
    if (f->type == SW_MSG_DATA)
        return;
    expect_bad(a, n - 1, "one byte short");
    a[n] = 0;
    expect_bad(a, n + 1, "one trailing byte");
}

START_TEST(test_every_type_exact_length)
{
    struct sw_msg_frame f, g;
    const uint8_t data[3] = { 1, 2, 3 };

    memset(&f, 0, sizeof(f));
    f.type = SW_MSG_OPEN, f.stream = 7, f.dst_port = 1, f.src_port = 49152, f.window = 1u << 18;
    memset(f.peer.b, 0xab, sizeof(f.peer.b));
    round_trip(&f, 5 + 32 + 2 + 2 + 4, &g);
    ck_assert(sw_pk_equal(&g.peer, &f.peer) && g.dst_port == 1 && g.src_port == 49152);
    memset(&f, 0, sizeof(f));
    f.type = SW_MSG_ACCEPT, f.stream = 8, f.window = 5;
    round_trip(&f, 5 + 4, &g);
    ck_assert_uint_eq(g.window, 5);
    f.type = SW_MSG_WINDOW;
    round_trip(&f, 5 + 4, &g);
    memset(&f, 0, sizeof(f));
    f.type = SW_MSG_REFUSE, f.stream = 9, f.code = SW_REFUSE_PEER_OFFLINE, f.reason = "gone";
    f.reason_len = 4;
    round_trip(&f, 5 + 1 + 1 + 4, &g);
    ck_assert_uint_eq(g.reason_len, 4);
    ck_assert_mem_eq(g.reason, "gone", 4);
    memset(&f, 0, sizeof(f));
    f.type = SW_MSG_DATA, f.stream = 9, f.data = data, f.data_len = sizeof(data);
    round_trip(&f, 5 + 3, &g);
    f.type = SW_MSG_FIN;
    round_trip(&f, 5, &g);
    f.type = SW_MSG_CLOSE, f.code = 1;
    round_trip(&f, 5 + 1, &g);
    memset(&f, 0, sizeof(f));
    f.type = SW_MSG_PING, f.token = 0x0102030405060708ull;
    round_trip(&f, 5 + 8, &g);
    ck_assert(g.token == f.token && g.stream == 0);
    f.type = SW_MSG_PONG;
    round_trip(&f, 5 + 8, &g);
    f.type = SW_MSG_GOAWAY, f.code = SW_GOAWAY_REPLACED;
    round_trip(&f, 5 + 1, &g);
}
END_TEST

START_TEST(test_largest_data)
{
    static uint8_t buf[SW_MSG_MAX_PLAINTEXT], payload[SW_MSG_MAX_DATA];
    struct sw_msg_frame f = { .type = SW_MSG_DATA, .stream = 1, .data = payload,
                              .data_len = SW_MSG_MAX_DATA }, g;

    ck_assert_uint_eq(SW_MSG_MAX_DATA, 65514);
    ck_assert_uint_eq(sw_msg_frame_encode(&f, buf, sizeof(buf)), SW_MSG_MAX_PLAINTEXT);
    ck_assert_int_eq(sw_msg_frame_decode(buf, SW_MSG_MAX_PLAINTEXT, &g, NULL), SW_OK);
    ck_assert_uint_eq(g.data_len, SW_MSG_MAX_DATA);
    ck_assert_ptr_eq(g.data, buf + 5); /* borrowed from the input */
    f.data_len++;
    ck_assert_uint_eq(sw_msg_frame_encode(&f, buf, sizeof(buf)), 0);
}
END_TEST

START_TEST(test_malformed)
{
    /* header */
    expect_bad(NULL, 0, "empty");
    expect_bad((const uint8_t *)"\x06\x00\x00\x00", 4, "header cut");
    /* stream ids: session frames have 0, stream frames do not */
    expect_bad((const uint8_t *)"\x08\x00\x00\x00\x01" "12345678", 13, "PING with a stream id");
    expect_bad((const uint8_t *)"\x0a\x00\x00\x00\x02\x00", 6, "GOAWAY with a stream id");
    expect_bad((const uint8_t *)"\x06\x00\x00\x00\x00", 5, "FIN on stream 0");
    expect_bad((const uint8_t *)"\x04\x00\x00\x00\x00\x41", 6, "DATA on stream 0");
    /* bodies */
    expect_bad((const uint8_t *)"\x05\x00\x00\x00\x03\x00\x00\x00\x00", 9, "WINDOW of 0");
    expect_bad((const uint8_t *)"\x04\x00\x00\x00\x03", 5, "empty DATA");
    expect_bad((const uint8_t *)"\x03\x00\x00\x00\x03\x01\x05" "abcd", 11, "REFUSE reason cut");
    expect_bad((const uint8_t *)"\x03\x00\x00\x00\x03\x01\x02" "abc", 10, "REFUSE reason too long");
    expect_bad((const uint8_t *)"\x03\x00\x00\x00\x03\x01", 6, "REFUSE without a length");
    expect_bad((const uint8_t *)"\x07\x00\x00\x00\x03", 5, "CLOSE without a code");
    /* types */
    expect_bad((const uint8_t *)"\x00\x00\x00\x00\x03", 5, "type 0");
    expect_bad((const uint8_t *)"\x0b\x00\x00\x00\x03", 5, "type 0x0b");
    expect_bad((const uint8_t *)"\xff\x00\x00\x00\x00", 5, "type 0xff");
}
END_TEST

START_TEST(test_encode_refuses)
{
    uint8_t buf[64];
    struct sw_msg_frame f = { .type = SW_MSG_WINDOW, .stream = 1, .window = 0 };

    ck_assert_uint_eq(sw_msg_frame_encode(&f, buf, sizeof(buf)), 0);
    f.type = 0x42;
    ck_assert_uint_eq(sw_msg_frame_encode(&f, buf, sizeof(buf)), 0);
    f.type = SW_MSG_PING; /* does not fit */
    ck_assert_uint_eq(sw_msg_frame_encode(&f, buf, 12), 0);
    ck_assert_str_eq(sw_msg_refusal_name(SW_REFUSE_TIMEOUT), "timeout");
    ck_assert_str_eq(sw_msg_goaway_name(SW_GOAWAY_IDLE_TIMEOUT), "idle_timeout");
    ck_assert_str_eq(sw_msg_goaway_name(SW_GOAWAY_NOT_A_MEMBER), "not_a_member");
}
END_TEST

static Suite *msg_proto_suite(void)
{
    Suite *s = suite_create("msg_proto");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_every_type_exact_length);
    tcase_add_test(tc, test_largest_data);
    tcase_add_test(tc, test_malformed);
    tcase_add_test(tc, test_encode_refuses);
    suite_add_tcase(s, tc);
    return s;
}

const struct th_check_main th_check_main = { .suite = msg_proto_suite };
