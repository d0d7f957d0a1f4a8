/* Unit tests for apps/ssh/proto.c (the SSH apps' frames and local messages) and the
 * authorized-keys text of apps/ssh/auth.c: round trips, every proper prefix (incomplete),
 * and malformed input — truncated, oversize, unknown types, bad lengths and fields. */
#include "apps/ssh/auth.h"
#include "apps/ssh/proto.h"
#include "common/bytes.h"
#include "common/err.h"
#include "common/keys.h"
#include "tests/harness/check_main.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint8_t buf[SSH_HDR_LEN + SSH_FRAME_MAX + 16];

static void prefixes_incomplete(const uint8_t *m, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct ssh_frame f;
        size_t used = 0;
        ck_assert_int_eq(ssh_frame_parse(m, i, &used, &f), SSH_MORE);
    }
}

/* A header with the given type and length (payload not included). */
static const uint8_t *hdr(uint8_t type, uint32_t len)
{
    static uint8_t h[SSH_HDR_LEN];
    h[0] = type;
    sw_put_u32(h + 1, len);
    return h;
}

static int parse_hdr_only(uint8_t type, uint32_t len)
{
    struct ssh_frame f;
    size_t used;
    return ssh_frame_parse(hdr(type, len), SSH_HDR_LEN, &used, &f);
}

START_TEST(test_frame_round_trip)
{
    struct ssh_frame f;
    size_t len = 0, used = 0;
    static uint8_t data[SSH_FRAME_MAX];

    memset(data, 'x', sizeof(data));
    ck_assert_int_eq(ssh_frame_encode(buf, sizeof(buf), &len, SSH_F_STDOUT, "hello", 5), SW_OK);
    ck_assert_uint_eq(len, SSH_HDR_LEN + 5);
    buf[len] = 0xee; /* a trailing byte is not part of the frame */
    ck_assert_int_eq(ssh_frame_parse(buf, len + 1, &used, &f), SW_OK);
    ck_assert_uint_eq(used, len);
    ck_assert_uint_eq(f.type, SSH_F_STDOUT);
    ck_assert_uint_eq(f.len, 5);
    ck_assert(memcmp(f.data, "hello", 5) == 0 && f.data == buf + SSH_HDR_LEN);
    prefixes_incomplete(buf, len);

    /* the largest frame */
    ck_assert_int_eq(ssh_frame_encode(buf, sizeof(buf), &len, SSH_F_STDIN, data, sizeof(data)), SW_OK);
    ck_assert_int_eq(ssh_frame_parse(buf, len, &used, &f), SW_OK);
    ck_assert_uint_eq(f.len, SSH_FRAME_MAX);
    ck_assert_int_eq(ssh_frame_encode(buf, sizeof(buf), &len, SSH_F_STDIN, data, sizeof(data) + 1), SW_ERANGE);
    ck_assert_int_eq(ssh_frame_encode(buf, 10, &len, SSH_F_STDIN, data, 6), SW_ERANGE);
    /* an empty STDIN_EOF */
    ck_assert_int_eq(ssh_frame_encode(buf, sizeof(buf), &len, SSH_F_STDIN_EOF, NULL, 0), SW_OK);
    ck_assert_int_eq(ssh_frame_parse(buf, len, &used, &f), SW_OK);
    ck_assert_uint_eq(used, SSH_HDR_LEN);
    ck_assert_uint_eq(f.len, 0);
}
END_TEST

START_TEST(test_frame_malformed)
{
    /* unknown types: an error as soon as the header is in */
    ck_assert_int_eq(parse_hdr_only(0x00, 1), SW_EINVAL);
    ck_assert_int_eq(parse_hdr_only(0x06, 4), SW_EINVAL);
    ck_assert_int_eq(parse_hdr_only(0x15, 1), SW_EINVAL);
    ck_assert_int_eq(parse_hdr_only(0xff, 0), SW_EINVAL);
    /* oversize */
    ck_assert_int_eq(parse_hdr_only(SSH_F_STDOUT, SSH_FRAME_MAX + 1), SW_ERANGE);
    ck_assert_int_eq(parse_hdr_only(SSH_F_STDIN, 0xffffffffu), SW_ERANGE);
    /* lengths a type does not allow */
    ck_assert_int_eq(parse_hdr_only(SSH_F_STDIN, 0), SW_EPROTO);
    ck_assert_int_eq(parse_hdr_only(SSH_F_STDOUT, 0), SW_EPROTO);
    ck_assert_int_eq(parse_hdr_only(SSH_F_STDERR, 0), SW_EPROTO);
    ck_assert_int_eq(parse_hdr_only(SSH_F_STDIN_EOF, 1), SW_EPROTO);
    ck_assert_int_eq(parse_hdr_only(SSH_F_RESIZE, 3), SW_EPROTO);
    ck_assert_int_eq(parse_hdr_only(SSH_F_RESIZE, 5), SW_EPROTO);
    ck_assert_int_eq(parse_hdr_only(SSH_F_ACK, 8), SW_EPROTO);
    ck_assert_int_eq(parse_hdr_only(SSH_F_EXIT, 1), SW_EPROTO);
    ck_assert_int_eq(parse_hdr_only(SSH_F_ERROR, 0), SW_EPROTO);
    ck_assert_int_eq(parse_hdr_only(SSH_F_ERROR, SSH_ERRTEXT_MAX + 1), SW_EPROTO);
    ck_assert_int_eq(parse_hdr_only(SSH_F_REQUEST, 6), SW_EPROTO);
    ck_assert_int_eq(parse_hdr_only(SSH_F_REQUEST, 7 + SSH_TERM_MAX + SSH_CMD_MAX + 1), SW_EPROTO);
    /* a valid header whose payload is not all there: incomplete */
    ck_assert_int_eq(parse_hdr_only(SSH_F_RESIZE, 4), SSH_MORE);
    ck_assert_int_eq(parse_hdr_only(SSH_F_STDOUT, SSH_FRAME_MAX), SSH_MORE);
}
END_TEST

static int parse_request_bytes(const uint8_t *payload, size_t n, struct ssh_request *r)
{
    struct ssh_frame f = { .type = SSH_F_REQUEST, .data = payload, .len = n };
    return ssh_request_parse(&f, r);
}

START_TEST(test_request)
{
    static struct ssh_request r, got;
    struct ssh_frame f;
    size_t len, used;

    memset(&r, 0, sizeof(r));
    r.mode = SSH_MODE_SHELL;
    r.rows = 40;
    r.cols = 120;
    strcpy(r.term, "xterm-256color");
    ck_assert_int_eq(ssh_request_encode(buf, sizeof(buf), &len, &r), SW_OK);
    ck_assert_uint_eq(len, SSH_HDR_LEN + 7 + 14);
    prefixes_incomplete(buf, len);
    ck_assert_int_eq(ssh_frame_parse(buf, len, &used, &f), SW_OK);
    ck_assert_int_eq(ssh_request_parse(&f, &got), SW_OK);
    ck_assert_uint_eq(got.mode, SSH_MODE_SHELL);
    ck_assert_uint_eq(got.rows, 40);
    ck_assert_uint_eq(got.cols, 120);
    ck_assert_str_eq(got.term, "xterm-256color");
    ck_assert_str_eq(got.cmd, "");

    memset(&r, 0, sizeof(r));
    r.mode = SSH_MODE_EXEC;
    strcpy(r.cmd, "echo hi; exit 7");
    ck_assert_int_eq(ssh_request_encode(buf, sizeof(buf), &len, &r), SW_OK);
    ck_assert_int_eq(ssh_frame_parse(buf, len, &used, &f), SW_OK);
    ck_assert_int_eq(ssh_request_parse(&f, &got), SW_OK);
    ck_assert_uint_eq(got.mode, SSH_MODE_EXEC);
    ck_assert_str_eq(got.cmd, "echo hi; exit 7");
    ck_assert_uint_eq(got.rows, 0);

    /* encode refuses what parse would refuse */
    r.mode = SSH_MODE_SHELL; /* with a command */
    ck_assert_int_eq(ssh_request_encode(buf, sizeof(buf), &len, &r), SW_EINVAL);
    r.mode = SSH_MODE_EXEC;
    r.cmd[0] = '\0';
    ck_assert_int_eq(ssh_request_encode(buf, sizeof(buf), &len, &r), SW_EINVAL);
    strcpy(r.cmd, "x");
    strcpy(r.term, "bad term");
    ck_assert_int_eq(ssh_request_encode(buf, sizeof(buf), &len, &r), SW_EINVAL);
    /* a frame of another type is not a request */
    f.type = SSH_F_STDIN;
    ck_assert_int_eq(ssh_request_parse(&f, &got), SW_EPROTO);
}
END_TEST

START_TEST(test_request_malformed)
{
    static struct ssh_request r;
    /*                         ver mode rows    cols    tl  term */
    static const uint8_t ok[] = { 2, 1, 0, 24, 0, 80, 2, 'v', 't' };
    static const uint8_t ver1[] = { 1, 1, 0, 24, 0, 80, 0 }; /* version 1 (output acknowledged too) */
    static const uint8_t ver[] = { 3, 1, 0, 24, 0, 80, 0 };
    static const uint8_t mode[] = { 2, 3, 0, 24, 0, 80, 0 };
    static const uint8_t rows0[] = { 2, 1, 0, 0, 0, 80, 0 };
    static const uint8_t cols_big[] = { 2, 1, 0, 24, 0xff, 0xff, 0 };
    static const uint8_t term_trunc[] = { 2, 1, 0, 24, 0, 80, 5, 'v', 't' };
    static const uint8_t term_bad[] = { 2, 1, 0, 24, 0, 80, 2, 'v', '\n' };
    static const uint8_t term_long[] = { 2, 1, 0, 24, 0, 80, SSH_TERM_MAX + 1 };
    static const uint8_t shell_cmd[] = { 2, 1, 0, 24, 0, 80, 0, 'l', 's' };
    static const uint8_t exec_none[] = { 2, 2, 0, 0, 0, 0, 0 };
    static const uint8_t exec_nul[] = { 2, 2, 0, 0, 0, 0, 0, 'l', 0, 's' };
    static const uint8_t exec_ok[] = { 2, 2, 0, 0, 0, 0, 0, 'l', 's' };

    ck_assert_int_eq(parse_request_bytes(ok, sizeof(ok), &r), SW_OK);
    ck_assert_str_eq(r.term, "vt");
    for (size_t i = 0; i < sizeof(ok); i++)
        ck_assert_int_eq(parse_request_bytes(ok, i, &r), SW_EINVAL); /* truncated */
    ck_assert_int_eq(parse_request_bytes(ver1, sizeof(ver1), &r), SW_EINVAL);
    ck_assert_int_eq(parse_request_bytes(ver, sizeof(ver), &r), SW_EINVAL);
    ck_assert_int_eq(parse_request_bytes(mode, sizeof(mode), &r), SW_EINVAL);
    ck_assert_int_eq(parse_request_bytes(rows0, sizeof(rows0), &r), SW_EINVAL);
    ck_assert_int_eq(parse_request_bytes(cols_big, sizeof(cols_big), &r), SW_EINVAL);
    ck_assert_int_eq(parse_request_bytes(term_trunc, sizeof(term_trunc), &r), SW_EINVAL);
    ck_assert_int_eq(parse_request_bytes(term_bad, sizeof(term_bad), &r), SW_EINVAL);
    ck_assert_int_eq(parse_request_bytes(term_long, sizeof(term_long), &r), SW_EINVAL);
    ck_assert_int_eq(parse_request_bytes(shell_cmd, sizeof(shell_cmd), &r), SW_EINVAL);
    ck_assert_int_eq(parse_request_bytes(exec_none, sizeof(exec_none), &r), SW_EINVAL);
    ck_assert_int_eq(parse_request_bytes(exec_nul, sizeof(exec_nul), &r), SW_EINVAL);
    ck_assert_int_eq(parse_request_bytes(exec_ok, sizeof(exec_ok), &r), SW_OK);
    ck_assert_str_eq(r.cmd, "ls");
}
END_TEST

static struct ssh_frame mk(uint8_t type, const void *d, size_t n)
{
    return (struct ssh_frame){ .type = type, .data = d, .len = n };
}

START_TEST(test_small_frames)
{
    uint8_t b[4];
    uint16_t rows, cols;
    uint32_t n;
    uint8_t kind, value;
    char text[SSH_ERRTEXT_MAX + 1];
    struct ssh_frame f;

    ssh_u16pair_put(b, 30, 100);
    f = mk(SSH_F_RESIZE, b, 4);
    ck_assert_int_eq(ssh_resize_parse(&f, &rows, &cols), SW_OK);
    ck_assert(rows == 30 && cols == 100);
    ssh_u16pair_put(b, 0, 100);
    ck_assert_int_eq(ssh_resize_parse(&f, &rows, &cols), SW_EINVAL);
    ssh_u16pair_put(b, 10, SSH_DIM_MAX + 1);
    ck_assert_int_eq(ssh_resize_parse(&f, &rows, &cols), SW_EINVAL);
    f = mk(SSH_F_RESIZE, b, 3);
    ck_assert_int_eq(ssh_resize_parse(&f, &rows, &cols), SW_EINVAL);

    sw_put_u32(b, 4096);
    f = mk(SSH_F_ACK, b, 4);
    ck_assert_int_eq(ssh_ack_parse(&f, &n), SW_OK);
    ck_assert_uint_eq(n, 4096);
    sw_put_u32(b, 0);
    ck_assert_int_eq(ssh_ack_parse(&f, &n), SW_EINVAL);
    sw_put_u32(b, 0x80000000u);
    ck_assert_int_eq(ssh_ack_parse(&f, &n), SW_EINVAL);
    f.type = SSH_F_RESIZE;
    ck_assert_int_eq(ssh_ack_parse(&f, &n), SW_EPROTO);

    f = mk(SSH_F_EXIT, "\x00\x07", 2);
    ck_assert_int_eq(ssh_exit_parse(&f, &kind, &value), SW_OK);
    ck_assert(kind == SSH_EXIT_CODE && value == 7);
    f = mk(SSH_F_EXIT, "\x01\x0f", 2);
    ck_assert_int_eq(ssh_exit_parse(&f, &kind, &value), SW_OK);
    ck_assert(kind == SSH_EXIT_SIGNAL && value == 15);
    f = mk(SSH_F_EXIT, "\x01\x00", 2);
    ck_assert_int_eq(ssh_exit_parse(&f, &kind, &value), SW_EINVAL);
    f = mk(SSH_F_EXIT, "\x01\x80", 2);
    ck_assert_int_eq(ssh_exit_parse(&f, &kind, &value), SW_EINVAL);
    f = mk(SSH_F_EXIT, "\x02\x01", 2);
    ck_assert_int_eq(ssh_exit_parse(&f, &kind, &value), SW_EINVAL);

    /* error text: control characters cannot reach the user's terminal */
    f = mk(SSH_F_ERROR, "no\x1b[2J\n", 7);
    ck_assert_int_eq(ssh_error_parse(&f, text), SW_OK);
    ck_assert_str_eq(text, "no?[2J?");
    f = mk(SSH_F_ERROR, "", 0);
    ck_assert_int_eq(ssh_error_parse(&f, text), SW_EINVAL);
}
END_TEST

START_TEST(test_local_messages)
{
    uint8_t req[SSH_LOCAL_REQ_LEN + 1];
    struct sw_pk pk, got;
    uint16_t port = 0;
    bool ok = false;
    char text[SSH_ERRTEXT_MAX + 1];

    memset(pk.b, 0xab, sizeof(pk.b));
    ssh_local_req_encode(req, &pk, 2);
    ck_assert_int_eq(ssh_local_req_parse(req, SSH_LOCAL_REQ_LEN, &got, &port), SW_OK);
    ck_assert(sw_pk_equal(&pk, &got) && port == 2);
    for (size_t i = 0; i < SSH_LOCAL_REQ_LEN; i++)
        ck_assert_int_eq(ssh_local_req_parse(req, i, &got, &port), SW_EPROTO);
    req[SSH_LOCAL_REQ_LEN] = 0;
    ck_assert_int_eq(ssh_local_req_parse(req, SSH_LOCAL_REQ_LEN + 1, &got, &port), SW_EPROTO);
    ssh_local_req_encode(req, &pk, 0);
    ck_assert_int_eq(ssh_local_req_parse(req, SSH_LOCAL_REQ_LEN, &got, &port), SW_EPROTO);
    ssh_local_req_encode(req, &pk, 2);
    ck_assert_uint_eq(req[0], 1); /* the local socket's version stays 1 */
    req[0] = 9;
    ck_assert_int_eq(ssh_local_req_parse(req, SSH_LOCAL_REQ_LEN, &got, &port), SW_EPROTO);

    ck_assert_int_eq(ssh_local_resp_parse((const uint8_t *)"\x00", 1, &ok, text), SW_OK);
    ck_assert(ok && text[0] == '\0');
    ck_assert_int_eq(ssh_local_resp_parse((const uint8_t *)"\x01no route", 9, &ok, text), SW_OK);
    ck_assert(!ok);
    ck_assert_str_eq(text, "no route");
    ck_assert_int_eq(ssh_local_resp_parse((const uint8_t *)"", 0, &ok, text), SW_EPROTO);
    ck_assert_int_eq(ssh_local_resp_parse((const uint8_t *)"\x00x", 2, &ok, text), SW_EPROTO);
    ck_assert_int_eq(ssh_local_resp_parse((const uint8_t *)"\x01", 1, &ok, text), SW_EPROTO);
    ck_assert_int_eq(ssh_local_resp_parse((const uint8_t *)"\x02x", 2, &ok, text), SW_EPROTO);
}
END_TEST

START_TEST(test_auth_text)
{
    struct sw_keypair kp;
    struct sw_pk a, b, c;
    char ha[SW_PK_HEX_LEN + 1], hb[SW_PK_HEX_LEN + 1], text[1024];

    /* real keys: the parser accepts only valid Ed25519 points */
    ck_assert_int_eq(sw_crypto_init(), 0);
    ck_assert_int_eq(sw_keypair_generate(&kp), 0);
    a = kp.pk;
    ck_assert_int_eq(sw_keypair_generate(&kp), 0);
    b = kp.pk;
    ck_assert_int_eq(sw_keypair_generate(&kp), 0);
    c = kp.pk;
    sw_keypair_wipe(&kp);
    sw_pk_to_hex(&a, ha);
    sw_pk_to_hex(&b, hb);
    snprintf(text, sizeof(text), "# visors allowed in\n\n  %s   # laptop\r\nnot-a-key\n%s", ha, hb);
    ck_assert(ssh_auth_text_has(text, strlen(text), "t", &a));
    ck_assert(ssh_auth_text_has(text, strlen(text), "t", &b)); /* no final newline */
    ck_assert(!ssh_auth_text_has(text, strlen(text), "t", &c));
    ck_assert(!ssh_auth_text_has(text, strlen(text) - 1, "t", &b)); /* truncated key */
    snprintf(text, sizeof(text), "#%s\n", ha); /* commented out */
    ck_assert(!ssh_auth_text_has(text, strlen(text), "t", &a));
    ck_assert(!ssh_auth_text_has("", 0, "t", &a));
    /* -allow keys count without a file; a missing file holds no keys */
    ck_assert(ssh_auth_allowed(NULL, &a, 1, &a));
    ck_assert(!ssh_auth_allowed("/nonexistent/authorized_keys", &b, 1, &a));
}
END_TEST

static Suite *ssh_proto_suite(void)
{
    Suite *s = suite_create("ssh_proto");
    TCase *tc = tcase_create("ssh_proto");

    tcase_add_test(tc, test_frame_round_trip);
    tcase_add_test(tc, test_frame_malformed);
    tcase_add_test(tc, test_request);
    tcase_add_test(tc, test_request_malformed);
    tcase_add_test(tc, test_small_frames);
    tcase_add_test(tc, test_local_messages);
    tcase_add_test(tc, test_auth_text);
    suite_add_tcase(s, tc);
    return s;
}

const struct th_check_main th_check_main = { .suite = ssh_proto_suite };
