/* Unit tests for common/socks5.c: SOCKS5 greeting and request, the tunnel header, status
 * and frames — valid input, every proper prefix (incomplete), and malformed input. */
#include "common/err.h"
#include "common/socks5.h"
#include "tests/harness/check_main.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

/* Every proper prefix of a valid message is "incomplete", never an error or a success. */
static void prefixes_incomplete_request(const uint8_t *m, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct sw_socks5_request r;
        size_t used = 0;
        ck_assert_int_eq(sw_socks5_parse_request(m, i, &used, &r, NULL), SW_SOCKS5_MORE);
    }
}

START_TEST(test_greeting)
{
    static const uint8_t ok[] = { 5, 2, 2, 0, 0xaa };
    static const uint8_t noauth[] = { 5, 1, 2 };
    size_t used = 0;
    bool na = false;

    ck_assert_int_eq(sw_socks5_parse_greeting(ok, sizeof(ok), &used, &na), SW_OK);
    ck_assert_uint_eq(used, 4);
    ck_assert(na);
    ck_assert_int_eq(sw_socks5_parse_greeting(noauth, sizeof(noauth), &used, &na), SW_OK);
    ck_assert(!na);
    for (size_t i = 0; i < 4; i++)
        ck_assert_int_eq(sw_socks5_parse_greeting(ok, i, &used, &na), SW_SOCKS5_MORE);
    ck_assert_int_eq(sw_socks5_parse_greeting((const uint8_t *)"\x04\x01\x00", 3, &used, &na), SW_EPROTO);
    ck_assert_int_eq(sw_socks5_parse_greeting((const uint8_t *)"\x05\x00", 2, &used, &na), SW_EPROTO);
    ck_assert_int_eq(sw_socks5_parse_greeting((const uint8_t *)"\x05", 1, &used, &na), SW_SOCKS5_MORE);
}
END_TEST

START_TEST(test_request_domain)
{
    static const uint8_t m[] = { 5, 1, 0, 3, 9, 'l', 'o', 'c', 'a', 'l', 'h', 'o', 's', 't', 0x1f, 0x90, 0xee };
    struct sw_socks5_request r;
    size_t used = 0;

    ck_assert_int_eq(sw_socks5_parse_request(m, sizeof(m), &used, &r, NULL), SW_OK);
    ck_assert_uint_eq(used, sizeof(m) - 1); /* trailing byte is not part of it */
    ck_assert_uint_eq(r.cmd, SW_SOCKS5_CMD_CONNECT);
    ck_assert_uint_eq(r.dst.atyp, SW_SOCKS5_ATYP_DOMAIN);
    ck_assert_str_eq(r.dst.host, "localhost");
    ck_assert_uint_eq(r.dst.port, 8080);
    prefixes_incomplete_request(m, sizeof(m) - 1);
}
END_TEST

START_TEST(test_request_ipv4_ipv6)
{
    static const uint8_t v4[] = { 5, 1, 0, 1, 127, 0, 0, 1, 0, 80 };
    static const uint8_t v6[] = { 5, 1, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0xbb };
    struct sw_socks5_request r;
    size_t used = 0;

    ck_assert_int_eq(sw_socks5_parse_request(v4, sizeof(v4), &used, &r, NULL), SW_OK);
    ck_assert_uint_eq(used, sizeof(v4));
    ck_assert_str_eq(r.dst.host, "127.0.0.1");
    ck_assert_uint_eq(r.dst.port, 80);
    prefixes_incomplete_request(v4, sizeof(v4));
    ck_assert_int_eq(sw_socks5_parse_request(v6, sizeof(v6), &used, &r, NULL), SW_OK);
    ck_assert_uint_eq(used, sizeof(v6));
    ck_assert_str_eq(r.dst.host, "::1");
    ck_assert_uint_eq(r.dst.port, 443);
    prefixes_incomplete_request(v6, sizeof(v6));
}
END_TEST

START_TEST(test_request_malformed)
{
    struct sw_socks5_request r;
    size_t used = 0;
    uint8_t rep = 0xff;

    memset(&r, 0xa5, sizeof(r));
    /* wrong version */
    ck_assert_int_eq(sw_socks5_parse_request((const uint8_t *)"\x04\x01\x00\x01", 4, &used, &r, &rep), SW_EPROTO);
    ck_assert_uint_eq(rep, SW_SOCKS5_REP_FAILURE);
    /* reserved byte not 0 */
    rep = 0xff;
    ck_assert_int_eq(sw_socks5_parse_request((const uint8_t *)"\x05\x01\x01\x01", 4, &used, &r, &rep), SW_EPROTO);
    ck_assert_uint_eq(rep, SW_SOCKS5_REP_FAILURE);
    /* unknown address type */
    rep = 0xff;
    ck_assert_int_eq(sw_socks5_parse_request((const uint8_t *)"\x05\x01\x00\x02\x00", 5, &used, &r, &rep), SW_EINVAL);
    ck_assert_uint_eq(rep, SW_SOCKS5_REP_ATYP_UNSUPPORTED);
    /* empty domain */
    rep = 0xff;
    ck_assert_int_eq(sw_socks5_parse_request((const uint8_t *)"\x05\x01\x00\x03\x00\x00\x50", 7, &used, &r, &rep), SW_EINVAL);
    ck_assert_uint_eq(rep, SW_SOCKS5_REP_FAILURE);
    /* NUL inside a domain */
    ck_assert_int_eq(sw_socks5_parse_request((const uint8_t *)"\x05\x01\x00\x03\x03""a\x00""b\x00\x50", 10, &used, &r, &rep),
                     SW_EINVAL);
    /* the output was never touched */
    ck_assert_uint_eq(r.cmd, 0xa5);
    /* other commands parse (the caller refuses them with reply 7) */
    ck_assert_int_eq(sw_socks5_parse_request((const uint8_t *)"\x05\x02\x00\x01\x01\x02\x03\x04\x00\x01", 10, &used, &r, &rep), SW_OK);
    ck_assert_uint_eq(r.cmd, 2);
}
END_TEST

START_TEST(test_request_max_domain)
{
    uint8_t m[4 + 1 + 255 + 2];
    struct sw_socks5_request r;
    size_t used = 0;

    memcpy(m, "\x05\x01\x00\x03", 4);
    m[4] = 255;
    memset(m + 5, 'x', 255);
    m[260] = 0;
    m[261] = 1;
    ck_assert_int_eq(sw_socks5_parse_request(m, sizeof(m), &used, &r, NULL), SW_OK);
    ck_assert_uint_eq(strlen(r.dst.host), 255);
    ck_assert_uint_eq(r.dst.port, 1);
}
END_TEST

START_TEST(test_reply)
{
    uint8_t out[10];
    ck_assert_uint_eq(sw_socks5_encode_reply(SW_SOCKS5_REP_REFUSED, out), 10);
    ck_assert_mem_eq(out, "\x05\x05\x00\x01\x00\x00\x00\x00\x00\x00", 10);
}
END_TEST

START_TEST(test_tunnel_header_roundtrip)
{
    struct sw_socks5_addr a = { .atyp = SW_SOCKS5_ATYP_DOMAIN, .port = 443 }, b;
    char pass[SW_SOCKS_PASSCODE_MAX + 1], longpass[300];
    uint8_t buf[SW_SOCKS_HDR_MAX];
    size_t len = 0, used = 0;

    strcpy(a.host, "example.com");
    ck_assert_int_eq(sw_socks_hdr_encode(buf, sizeof(buf), &len, "pw", &a), SW_OK);
    ck_assert_int_eq(sw_socks_hdr_parse(buf, len, &used, pass, &b), SW_OK);
    ck_assert_uint_eq(used, len);
    ck_assert_str_eq(pass, "pw");
    ck_assert_str_eq(b.host, "example.com");
    ck_assert_uint_eq(b.port, 443);
    for (size_t i = 0; i < len; i++)
        ck_assert_int_eq(sw_socks_hdr_parse(buf, i, &used, pass, &b), SW_SOCKS5_MORE);
    /* no passcode */
    ck_assert_int_eq(sw_socks_hdr_encode(buf, sizeof(buf), &len, NULL, &a), SW_OK);
    ck_assert_int_eq(sw_socks_hdr_parse(buf, len, &used, pass, &b), SW_OK);
    ck_assert_str_eq(pass, "");
    /* too small a buffer, too long a passcode, bad address */
    ck_assert_int_eq(sw_socks_hdr_encode(buf, 5, &len, "pw", &a), SW_ERANGE);
    memset(longpass, 'p', sizeof(longpass) - 1);
    longpass[sizeof(longpass) - 1] = '\0';
    ck_assert_int_eq(sw_socks_hdr_encode(buf, sizeof(buf), &len, longpass, &a), SW_ERANGE);
    a.atyp = 2;
    ck_assert_int_eq(sw_socks_hdr_encode(buf, sizeof(buf), &len, "pw", &a), SW_EINVAL);
    a.atyp = SW_SOCKS5_ATYP_DOMAIN;
    a.host[0] = '\0';
    ck_assert_int_eq(sw_socks_hdr_encode(buf, sizeof(buf), &len, "pw", &a), SW_EINVAL);
}
END_TEST

START_TEST(test_tunnel_header_malformed)
{
    char pass[SW_SOCKS_PASSCODE_MAX + 1];
    struct sw_socks5_addr b;
    size_t used = 0;

    /* another version: 1 (the framed tunnel of older releases), 3 */
    ck_assert_int_eq(sw_socks_hdr_parse((const uint8_t *)"\x01\x00", 2, &used, pass, &b), SW_EPROTO);
    ck_assert_int_eq(sw_socks_hdr_parse((const uint8_t *)"\x03\x00", 2, &used, pass, &b), SW_EPROTO);
    /* NUL in the passcode */
    ck_assert_int_eq(sw_socks_hdr_parse((const uint8_t *)"\x02\x02p\x00\x01\x7f\x00\x00\x01\x00\x50", 11, &used, pass, &b),
                     SW_EINVAL);
    /* unknown atyp, empty domain */
    ck_assert_int_eq(sw_socks_hdr_parse((const uint8_t *)"\x02\x00\x09", 3, &used, pass, &b), SW_EINVAL);
    ck_assert_int_eq(sw_socks_hdr_parse((const uint8_t *)"\x02\x00\x03\x00", 4, &used, pass, &b), SW_EINVAL);
    /* IPv4 destination */
    ck_assert_int_eq(sw_socks_hdr_parse((const uint8_t *)"\x02\x00\x01\x0a\x00\x00\x02\x00\x16", 9, &used, pass, &b), SW_OK);
    ck_assert_str_eq(b.host, "10.0.0.2");
    ck_assert_uint_eq(b.port, 22);
}
END_TEST

START_TEST(test_status)
{
    size_t used = 0;
    uint8_t rep = 0xff;

    ck_assert_int_eq(sw_socks_status_parse((const uint8_t *)"", 0, &used, &rep), SW_SOCKS5_MORE);
    ck_assert_int_eq(sw_socks_status_parse((const uint8_t *)"\x02", 1, &used, &rep), SW_SOCKS5_MORE);
    /* version 1 (an exit of the framed tunnel) and others */
    ck_assert_int_eq(sw_socks_status_parse((const uint8_t *)"\x01\x00", 2, &used, &rep), SW_EPROTO);
    ck_assert_int_eq(sw_socks_status_parse((const uint8_t *)"\x01", 1, &used, &rep), SW_EPROTO);
    ck_assert_int_eq(sw_socks_status_parse((const uint8_t *)"\x03\x00", 2, &used, &rep), SW_EPROTO);
    ck_assert_uint_eq(rep, 0xff);
    /* the connection's bytes may follow at once: only the status is used */
    ck_assert_int_eq(sw_socks_status_parse((const uint8_t *)"\x02\x05" "HTTP", 6, &used, &rep), SW_OK);
    ck_assert_uint_eq(rep, 5);
    ck_assert_uint_eq(used, 2);
}
END_TEST

/* Random bytes never crash the parsers and never claim more than they were given. */
START_TEST(test_random_input)
{
    uint8_t buf[600];
    uint32_t x = 12345;

    for (int iter = 0; iter < 20000; iter++) {
        size_t n = (size_t)(x % sizeof(buf)), used = 0;
        struct sw_socks5_request r;
        struct sw_socks5_addr a;
        char pass[SW_SOCKS_PASSCODE_MAX + 1];
        bool na;
        uint8_t rep;

        for (size_t i = 0; i < n; i++) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            buf[i] = (uint8_t)x;
        }
        if (n > 0 && iter % 2)
            buf[0] = 5;
        if (sw_socks5_parse_greeting(buf, n, &used, &na) == SW_OK)
            ck_assert_uint_le(used, n);
        if (sw_socks5_parse_request(buf, n, &used, &r, &rep) == SW_OK)
            ck_assert_uint_le(used, n);
        if (n > 0 && iter % 2)
            buf[0] = SW_SOCKS_TUNNEL_VERSION;
        if (sw_socks_hdr_parse(buf, n, &used, pass, &a) == SW_OK)
            ck_assert_uint_le(used, n);
        if (sw_socks_status_parse(buf, n, &used, &rep) == SW_OK)
            ck_assert_uint_eq(used, 2);
        x = x * 1103515245u + 12345u;
    }
}
END_TEST

static Suite *socks5_suite(void)
{
    Suite *s = suite_create("socks5");
    TCase *tc = tcase_create("parse");

    tcase_add_test(tc, test_greeting);
    tcase_add_test(tc, test_request_domain);
    tcase_add_test(tc, test_request_ipv4_ipv6);
    tcase_add_test(tc, test_request_malformed);
    tcase_add_test(tc, test_request_max_domain);
    tcase_add_test(tc, test_reply);
    tcase_add_test(tc, test_tunnel_header_roundtrip);
    tcase_add_test(tc, test_tunnel_header_malformed);
    tcase_add_test(tc, test_status);
    tcase_add_test(tc, test_random_input);
    suite_add_tcase(s, tc);
    return s;
}

const struct th_check_main th_check_main = { .suite = socks5_suite };
