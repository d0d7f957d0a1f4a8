/* Unit tests for common/exit_policy.c: the CIDR parser (valid and malformed input), the
 * default denies, the rule order (operator deny > most specific of allow / default, an
 * allow winning a tie), IPv4-mapped and NAT64 addresses, the host's own addresses, lists
 * and their limits, sockaddr checks, and checks racing a reread of the host's addresses. */
#include "common/err.h"
#include "common/exit_policy.h"
#include "tests/harness/check_main.h"

#include <arpa/inet.h>
#include <check.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

/* ---- helpers ------------------------------------------------------------------------------- */

static struct sw_exit_policy *policy_with(const char *allow, const char *deny)
{
    struct sw_exit_policy *p = NULL;
    struct sw_error err = { 0 };

    ck_assert_int_eq(sw_exit_policy_new(&p, &err), SW_OK);
    if (allow)
        ck_assert_msg(sw_exit_policy_add(p, SW_EXIT_ALLOW, allow, &err) == SW_OK, "%s", err.msg);
    if (deny)
        ck_assert_msg(sw_exit_policy_add(p, SW_EXIT_DENY, deny, &err) == SW_OK, "%s", err.msg);
    return p;
}

/* Checks the text address; the verdict's rule must contain rule_part (when not NULL). */
static void expect(struct sw_exit_policy *p, const char *addr, bool allowed, const char *rule_part)
{
    uint8_t ip[16];
    struct sw_exit_verdict v = { .allowed = !allowed, .rule = NULL };
    bool v6 = strchr(addr, ':') != NULL;

    ck_assert_msg(inet_pton(v6 ? AF_INET6 : AF_INET, addr, ip) == 1, "bad test address %s", addr);
    ck_assert_msg(sw_exit_policy_check_ip(p, ip, v6 ? 16 : 4, &v) == allowed, "%s: %s (rule %s)",
                  addr, allowed ? "refused" : "allowed", v.rule ? v.rule : "?");
    ck_assert(v.allowed == allowed);
    ck_assert_ptr_nonnull(v.rule);
    if (rule_part)
        ck_assert_msg(strstr(v.rule, rule_part) != NULL, "%s: rule \"%s\", want \"%s\"", addr,
                      v.rule, rule_part);
}

static void parse_ok(const char *s, int family, unsigned prefix, const char *formatted)
{
    struct sw_cidr c;
    struct sw_error err = { 0 };
    char out[SW_CIDR_TEXT_MAX];

    ck_assert_msg(sw_cidr_parse(s, &c, &err) == SW_OK, "%s: %s", s, err.msg);
    ck_assert_int_eq(c.family, family);
    ck_assert_uint_eq(c.prefix, prefix);
    sw_cidr_format(&c, out, sizeof(out));
    ck_assert_str_eq(out, formatted);
}

static void parse_bad(const char *s, const char *msg_part)
{
    struct sw_cidr c = { .family = 99 };
    struct sw_error err = { 0 };

    ck_assert_msg(sw_cidr_parse(s, &c, &err) == SW_EINVAL, "'%s' accepted", s);
    ck_assert_int_eq(err.code, SW_EINVAL);
    ck_assert_int_eq(c.family, 99); /* untouched */
    ck_assert_msg(strstr(err.msg, "CIDR '") == err.msg, "%s", err.msg);
    if (msg_part)
        ck_assert_msg(strstr(err.msg, msg_part) != NULL, "'%s': \"%s\" lacks \"%s\"", s, err.msg, msg_part);
}

/* ---- CIDR parser --------------------------------------------------------------------------- */

START_TEST(test_cidr_parse_valid)
{
    parse_ok("10.0.0.0/8", AF_INET, 8, "10.0.0.0/8");
    parse_ok("0.0.0.0/0", AF_INET, 0, "0.0.0.0/0");
    parse_ok("127.0.0.1", AF_INET, 32, "127.0.0.1/32");
    parse_ok("127.0.0.1/32", AF_INET, 32, "127.0.0.1/32");
    parse_ok("255.255.255.255/32", AF_INET, 32, "255.255.255.255/32");
    parse_ok("::/0", AF_INET6, 0, "::/0");
    parse_ok("::1", AF_INET6, 128, "::1/128");
    parse_ok("FE80::/10", AF_INET6, 10, "fe80::/10");
    parse_ok("2001:db8:0:0::/64", AF_INET6, 64, "2001:db8::/64");
    parse_ok("::ffff:10.0.0.0/104", AF_INET6, 104, "::ffff:10.0.0.0/104");
    parse_ok("2001:db8::1/128", AF_INET6, 128, "2001:db8::1/128");
}
END_TEST

START_TEST(test_cidr_parse_malformed)
{
    char longer[200];

    parse_bad("", "empty");
    parse_bad(NULL, "empty");
    parse_bad("10.0.0.0/", "prefix length must be 0..32");
    parse_bad("10.0.0.0/33", "0..32");
    parse_bad("10.0.0.0/08", "0..32");
    parse_bad("10.0.0.0/+8", "0..32");
    parse_bad("10.0.0.0/-1", "0..32");
    parse_bad("10.0.0.0/8x", "0..32");
    parse_bad("10.0.0.0/8/8", "0..32");
    parse_bad("10.0.0.0/1000", "0..32");
    parse_bad("10.0.0.0/ 8", "0..32");
    parse_bad("::/129", "0..128");
    parse_bad("/8", "not an IPv4 address");
    parse_bad("10.0.0/8", "not an IPv4 address");
    parse_bad("010.0.0.0/8", "not an IPv4 address");
    parse_bad("0x0a.0.0.0/8", "not an IPv4 address");
    parse_bad("256.0.0.0/8", "not an IPv4 address");
    parse_bad(" 10.0.0.0/8", "not an IPv4 address");
    parse_bad("10.0.0.0 /8", "not an IPv4 address");
    parse_bad("example.com/8", "not an IPv4 address");
    parse_bad("1::2::3/64", "not an IPv6 address");
    parse_bad("fe80::1%eth0/64", "not an IPv6 address");
    parse_bad("[::1]/128", "not an IPv6 address");
    parse_bad("10.0.0.1/8", "host bits set (the network would be 10.0.0.0/8)");
    parse_bad("192.168.1.10/24", "192.168.1.0/24");
    parse_bad("2001:db8::1/32", "2001:db8::/32");
    parse_bad("0.0.0.1/0", "0.0.0.0/0");
    /* the message names the value (cut to SW_CIDR_TEXT_MAX) */
    parse_bad("10.0.0.0/99", "CIDR '10.0.0.0/99'");
    memset(longer, '1', sizeof(longer) - 1);
    longer[sizeof(longer) - 1] = '\0';
    parse_bad(longer, "too long");
}
END_TEST

START_TEST(test_cidr_contains)
{
    struct sw_cidr c;
    uint8_t a[16];

    ck_assert_int_eq(sw_cidr_parse("172.16.0.0/12", &c, NULL), SW_OK);
    inet_pton(AF_INET, "172.31.255.255", a);
    ck_assert(sw_cidr_contains(&c, a));
    inet_pton(AF_INET, "172.32.0.0", a);
    ck_assert(!sw_cidr_contains(&c, a));
    ck_assert_int_eq(sw_cidr_parse("fe80::/10", &c, NULL), SW_OK);
    inet_pton(AF_INET6, "febf:ffff::1", a);
    ck_assert(sw_cidr_contains(&c, a));
    inet_pton(AF_INET6, "fec0::1", a);
    ck_assert(!sw_cidr_contains(&c, a));
    ck_assert_int_eq(sw_cidr_parse("2001:db8::/64", &c, NULL), SW_OK);
    inet_pton(AF_INET6, "2001:db8::ffff:ffff:ffff:ffff", a);
    ck_assert(sw_cidr_contains(&c, a));
    inet_pton(AF_INET6, "2001:db8:0:1::", a);
    ck_assert(!sw_cidr_contains(&c, a));
}
END_TEST

/* ---- defaults ------------------------------------------------------------------------------ */

START_TEST(test_defaults)
{
    struct sw_exit_policy *p = policy_with(NULL, NULL);

    expect(p, "127.0.0.1", false, "loopback 127.0.0.0/8");
    expect(p, "127.255.255.254", false, "loopback");
    expect(p, "0.0.0.0", false, "unspecified");
    expect(p, "0.1.2.3", false, "unspecified");
    expect(p, "10.0.0.1", false, "private (RFC 1918) 10.0.0.0/8");
    expect(p, "172.16.0.1", false, "172.16.0.0/12");
    expect(p, "172.31.255.255", false, "172.16.0.0/12");
    expect(p, "192.168.1.1", false, "192.168.0.0/16");
    expect(p, "100.64.0.1", false, "RFC 6598");
    expect(p, "100.127.255.255", false, "RFC 6598");
    expect(p, "169.254.169.254", false, "link-local");
    expect(p, "192.0.0.8", false, "IETF");
    expect(p, "198.18.0.1", false, "benchmarking");
    expect(p, "198.19.255.255", false, "benchmarking");
    expect(p, "203.0.113.9", false, "documentation");
    expect(p, "224.0.0.251", false, "multicast");
    expect(p, "239.255.255.250", false, "multicast");
    expect(p, "240.0.0.1", false, "reserved");
    expect(p, "255.255.255.255", false, "broadcast 255.255.255.255/32");
    expect(p, "::", false, "unspecified ::/128");
    expect(p, "::1", false, "loopback ::1/128");
    expect(p, "::10.0.0.1", false, "IPv4-compatible");
    expect(p, "fc00::1", false, "ULA");
    expect(p, "fdff:ffff::1", false, "ULA");
    expect(p, "fe80::1", false, "link-local fe80::/10");
    expect(p, "fec0::1", false, "site-local");
    expect(p, "ff02::1", false, "multicast ff00::/8");
    expect(p, "2001:db8::1", false, "documentation");
    expect(p, "100::1", false, "discard-only");
    expect(p, "64:ff9b:1::1", false, "local-use NAT64");
    /* the public internet */
    expect(p, "8.8.8.8", true, "public address");
    expect(p, "1.1.1.1", true, "public address");
    expect(p, "100.63.255.255", true, NULL);
    expect(p, "100.128.0.0", true, NULL);
    expect(p, "172.15.255.255", true, NULL);
    expect(p, "172.32.0.0", true, NULL);
    expect(p, "198.17.255.255", true, NULL);
    expect(p, "223.255.255.255", true, NULL);
    expect(p, "2606:4700:4700::1111", true, "public address");
    expect(p, "2001:4860:4860::8888", true, NULL);
    expect(p, "fe00::1", true, NULL);
    sw_exit_policy_free(p);
}
END_TEST

/* ::ffff:a.b.c.d goes out as IPv4 and is checked as such; NAT64 and 6to4 addresses must pass
 * as IPv6 and as their embedded IPv4. */
START_TEST(test_mapped_and_nat64)
{
    struct sw_exit_policy *p = policy_with(NULL, NULL);

    expect(p, "::ffff:127.0.0.1", false, "loopback 127.0.0.0/8");
    expect(p, "::ffff:10.1.2.3", false, "RFC 1918");
    expect(p, "::ffff:0.0.0.0", false, "unspecified");
    expect(p, "::ffff:8.8.8.8", true, "public");
    expect(p, "64:ff9b::10.0.0.1", false, "RFC 1918");
    expect(p, "64:ff9b::127.0.0.1", false, "loopback");
    expect(p, "64:ff9b::8.8.8.8", true, NULL);
    /* 6to4: a relay would carry 2002:a.b.c.d::/48 to a.b.c.d */
    expect(p, "2002:7f00:1::1", false, "loopback");
    expect(p, "2002:c0a8:101::", false, "RFC 1918");
    expect(p, "2002:a9fe:a9fe::1", false, "link-local");
    expect(p, "2002:808:808::1", true, NULL);
    sw_exit_policy_free(p);

    /* an IPv4 allow covers the mapped form; a mapped-form rule is an IPv4 rule */
    p = policy_with("127.0.0.1/32", "::ffff:8.8.8.0/120");
    expect(p, "::ffff:127.0.0.1", true, "-allow 127.0.0.1/32");
    expect(p, "8.8.8.8", false, "-deny ::ffff:8.8.8.0/120");
    expect(p, "::ffff:8.8.8.8", false, "-deny ::ffff:8.8.8.0/120");
    expect(p, "8.8.4.4", true, NULL);
    sw_exit_policy_free(p);

    /* NAT64: a deny of the prefix stops it; an IPv6 allow does not open the IPv4 behind it */
    p = policy_with("64:ff9b::/96", NULL);
    expect(p, "64:ff9b::10.0.0.1", false, "RFC 1918");
    expect(p, "64:ff9b::8.8.8.8", true, NULL);
    sw_exit_policy_free(p);
    p = policy_with(NULL, "64:ff9b::/96");
    expect(p, "64:ff9b::8.8.8.8", false, "-deny 64:ff9b::/96");
    expect(p, "8.8.8.8", true, NULL);
    sw_exit_policy_free(p);
}
END_TEST

/* ---- rule order ---------------------------------------------------------------------------- */

START_TEST(test_rule_order)
{
    struct sw_exit_policy *p;

    /* a wide allow opens no default range */
    p = policy_with("0.0.0.0/0,::/0", NULL);
    expect(p, "127.0.0.1", false, "loopback");
    expect(p, "10.0.0.1", false, "RFC 1918");
    expect(p, "::1", false, "loopback");
    expect(p, "fd00::1", false, "ULA");
    expect(p, "8.8.8.8", true, "-allow 0.0.0.0/0");
    sw_exit_policy_free(p);

    /* an allow at least as specific as the default opens exactly its range */
    p = policy_with("127.0.0.1/32", NULL);
    expect(p, "127.0.0.1", true, "-allow 127.0.0.1/32");
    expect(p, "127.0.0.2", false, "loopback");
    expect(p, "::1", false, "loopback");
    sw_exit_policy_free(p);
    p = policy_with("127.0.0.0/8,10.0.0.0/8", NULL); /* a tie goes to the allow */
    expect(p, "127.0.0.1", true, "-allow 127.0.0.0/8"); /* own, but left to loopback */
    expect(p, "127.9.9.9", true, "-allow 127.0.0.0/8");
    expect(p, "10.200.1.1", true, "-allow 10.0.0.0/8");
    expect(p, "192.168.1.1", false, "RFC 1918");
    sw_exit_policy_free(p);
    p = policy_with("100.0.0.0/8", NULL); /* less specific than 100.64.0.0/10 */
    expect(p, "100.64.0.1", false, "RFC 6598");
    expect(p, "100.1.2.3", true, "-allow 100.0.0.0/8");
    sw_exit_policy_free(p);

    /* an operator deny always wins, even over a more specific allow */
    p = policy_with("10.0.0.0/8,10.1.2.3/32", "10.1.0.0/16");
    expect(p, "10.1.2.3", false, "-deny 10.1.0.0/16");
    expect(p, "10.1.255.1", false, "-deny 10.1.0.0/16");
    expect(p, "10.2.0.1", true, "-allow 10.0.0.0/8");
    sw_exit_policy_free(p);
    p = policy_with(NULL, "8.8.8.0/24, 2606:4700::/32");
    expect(p, "8.8.8.8", false, "-deny 8.8.8.0/24");
    expect(p, "8.8.4.4", true, "public");
    expect(p, "2606:4700:4700::1111", false, "-deny 2606:4700::/32");
    sw_exit_policy_free(p);

    /* families are separate: an IPv6 deny of everything leaves IPv4 (and mapped) alone */
    p = policy_with(NULL, "::/0");
    expect(p, "2606:4700:4700::1111", false, "-deny ::/0");
    expect(p, "8.8.8.8", true, "public");
    expect(p, "::ffff:8.8.8.8", true, "public");
    sw_exit_policy_free(p);
}
END_TEST

/* A non-loopback address of this host (first found), or false when it has none. */
static bool own_address(int family, uint8_t out[16])
{
    struct ifaddrs *ifs, *i;
    bool found = false;

    if (getifaddrs(&ifs) != 0)
        return false;
    for (i = ifs; i && !found; i = i->ifa_next) {
        if (!i->ifa_addr || i->ifa_addr->sa_family != family)
            continue;
        if (family == AF_INET) {
            memcpy(out, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, 4);
            found = out[0] != 127;
        } else {
            memcpy(out, &((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr, 16);
            found = !IN6_IS_ADDR_LOOPBACK((struct in6_addr *)out);
        }
    }
    freeifaddrs(ifs);
    return found;
}

/* The host's own addresses count as single-address rules: only an allow naming one opens it. */
START_TEST(test_own_addresses)
{
    const int families[] = { AF_INET, AF_INET6 };
    int tested = 0;

    for (size_t f = 0; f < 2; f++) {
        int fam = families[f], bits = fam == AF_INET ? 32 : 128;
        uint8_t ip[16];
        char text[INET6_ADDRSTRLEN], host[SW_CIDR_TEXT_MAX], wide[SW_CIDR_TEXT_MAX], both[200];
        struct sw_exit_policy *p;
        struct sw_cidr c = { .family = fam, .prefix = (unsigned)bits / 2 };

        if (!own_address(fam, ip))
            continue;
        tested++;
        inet_ntop(fam, ip, text, sizeof(text));
        memcpy(c.addr, ip, 16);
        for (int b = bits / 2; b < bits; b++) /* the half-length network around it */
            c.addr[b / 8] &= (uint8_t)~(0x80 >> (b % 8));
        sw_cidr_format(&c, wide, sizeof(wide));
        snprintf(host, sizeof(host), "%s/%d", text, bits);
        p = policy_with(wide, NULL);
        expect(p, text, false, "own address of this host");
        sw_exit_policy_free(p);
        snprintf(both, sizeof(both), "%s,%s", wide, host);
        p = policy_with(both, NULL);
        expect(p, text, true, host);
        sw_exit_policy_free(p);
        p = policy_with(host, host); /* and a deny still wins */
        expect(p, text, false, "-deny");
        sw_exit_policy_free(p);
    }
    if (!tested)
        printf("SKIP: test_own_addresses: no non-loopback address on this host\n");
}
END_TEST

/* ---- lists --------------------------------------------------------------------------------- */

START_TEST(test_lists)
{
    struct sw_exit_policy *p = policy_with(NULL, NULL);
    struct sw_error err = { 0 };
    char big[SW_EXIT_POLICY_MAX_RULES * 20];
    size_t o = 0;

    ck_assert_int_eq(sw_exit_policy_add(p, SW_EXIT_ALLOW, " 10.0.0.0/8 ,\t192.168.0.0/16", &err), SW_OK);
    ck_assert_uint_eq(sw_exit_policy_count(p, SW_EXIT_ALLOW), 2);
    /* all or nothing */
    ck_assert_int_eq(sw_exit_policy_add(p, SW_EXIT_ALLOW, "172.16.0.0/12,,1.2.3.0/24", &err), SW_EINVAL);
    ck_assert_msg(strstr(err.msg, "empty entry"), "%s", err.msg);
    ck_assert_int_eq(sw_exit_policy_add(p, SW_EXIT_ALLOW, "172.16.0.0/12,", &err), SW_EINVAL);
    ck_assert_int_eq(sw_exit_policy_add(p, SW_EXIT_ALLOW, "", &err), SW_EINVAL);
    ck_assert_int_eq(sw_exit_policy_add(p, SW_EXIT_ALLOW, " ", &err), SW_EINVAL);
    ck_assert_int_eq(sw_exit_policy_add(p, SW_EXIT_ALLOW, NULL, &err), SW_EINVAL);
    ck_assert_int_eq(sw_exit_policy_add(p, SW_EXIT_ALLOW, "172.16.0.0/12,172.16.0.1/12", &err), SW_EINVAL);
    ck_assert_msg(strstr(err.msg, "'172.16.0.1/12'") && strstr(err.msg, "host bits"), "%s", err.msg);
    ck_assert_int_eq(sw_exit_policy_add(p, SW_EXIT_DENY, "1.2.3.4/32;5.6.7.8/32", &err), SW_EINVAL);
    ck_assert_uint_eq(sw_exit_policy_count(p, SW_EXIT_ALLOW), 2);
    ck_assert_uint_eq(sw_exit_policy_count(p, SW_EXIT_DENY), 0);
    expect(p, "172.16.0.1", false, "RFC 1918");
    expect(p, "192.168.3.4", true, "-allow 192.168.0.0/16");
    sw_exit_policy_free(p);

    /* at most SW_EXIT_POLICY_MAX_RULES per list */
    p = policy_with(NULL, NULL);
    for (int i = 0; i < SW_EXIT_POLICY_MAX_RULES; i++)
        o += (size_t)snprintf(big + o, sizeof(big) - o, "%s1.%d.%d.0/24", i ? "," : "", i / 256, i % 256);
    ck_assert_int_eq(sw_exit_policy_add(p, SW_EXIT_DENY, big, &err), SW_OK);
    ck_assert_uint_eq(sw_exit_policy_count(p, SW_EXIT_DENY), SW_EXIT_POLICY_MAX_RULES);
    ck_assert_int_eq(sw_exit_policy_add(p, SW_EXIT_DENY, "9.9.9.0/24", &err), SW_ERANGE);
    ck_assert_int_eq(sw_exit_policy_add(p, SW_EXIT_ALLOW, "9.9.9.0/24", &err), SW_OK);
    expect(p, "1.0.255.1", false, "-deny 1.0.255.0/24");
    sw_exit_policy_free(p);
}
END_TEST

START_TEST(test_check_sockaddr)
{
    struct sw_exit_policy *p = policy_with(NULL, NULL);
    struct sockaddr_in in = { .sin_family = AF_INET, .sin_port = htons(80) };
    struct sockaddr_in6 in6 = { .sin6_family = AF_INET6, .sin6_port = htons(80) };
    struct sockaddr_un un = { .sun_family = AF_UNIX };
    struct sw_exit_verdict v;
    uint8_t ip[16] = { 8, 8, 8, 8 };

    inet_pton(AF_INET, "127.0.0.1", &in.sin_addr);
    ck_assert(!sw_exit_policy_check_sa(p, (struct sockaddr *)&in, sizeof(in), &v));
    ck_assert_ptr_nonnull(strstr(v.rule, "loopback"));
    inet_pton(AF_INET, "8.8.8.8", &in.sin_addr);
    ck_assert(sw_exit_policy_check_sa(p, (struct sockaddr *)&in, sizeof(in), &v));
    ck_assert(!sw_exit_policy_check_sa(p, (struct sockaddr *)&in, sizeof(in) - 1, &v)); /* short */
    inet_pton(AF_INET6, "::ffff:192.168.0.1", &in6.sin6_addr);
    ck_assert(!sw_exit_policy_check_sa(p, (struct sockaddr *)&in6, sizeof(in6), &v));
    ck_assert_ptr_nonnull(strstr(v.rule, "RFC 1918"));
    inet_pton(AF_INET6, "2606:4700:4700::1111", &in6.sin6_addr);
    ck_assert(sw_exit_policy_check_sa(p, (struct sockaddr *)&in6, sizeof(in6), NULL));
    ck_assert(!sw_exit_policy_check_sa(p, (struct sockaddr *)&un, sizeof(un), &v));
    ck_assert_str_eq(v.rule, "not an IPv4 or IPv6 address");
    ck_assert(!sw_exit_policy_check_sa(p, NULL, 0, &v));
    ck_assert(!sw_exit_policy_check_ip(p, ip, 5, &v));
    ck_assert(!sw_exit_policy_check_ip(p, NULL, 4, &v));
    ck_assert(sw_exit_policy_check_ip(p, ip, 4, NULL));
    sw_exit_policy_free(p);
}
END_TEST

/* Checks from several threads while the host's addresses are reread under them (max age 0:
 * every check may reread; ASan / TSan builds catch a use of a freed copy). */
static void *checker(void *arg)
{
    struct sw_exit_policy *p = arg;
    uint8_t lo[4] = { 127, 0, 0, 1 }, pub[4] = { 8, 8, 8, 8 };
    for (int i = 0; i < 2000; i++) {
        if (sw_exit_policy_check_ip(p, lo, 4, NULL) || !sw_exit_policy_check_ip(p, pub, 4, NULL))
            return (void *)1;
        if (i % 100 == 0)
            sw_exit_policy_refresh_host(p, NULL);
    }
    return NULL;
}

START_TEST(test_concurrent_refresh)
{
    struct sw_exit_policy *p = policy_with(NULL, NULL);
    pthread_t th[4];
    void *ret;

    sw_exit_policy_set_host_max_age(p, 0);
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, checker, p), 0);
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], &ret);
        ck_assert_ptr_null(ret);
    }
    ck_assert_int_eq(sw_exit_policy_refresh_host(p, NULL), SW_OK);
    sw_exit_policy_free(p);
}
END_TEST

static Suite *exit_policy_suite(void)
{
    Suite *s = suite_create("exit_policy");
    TCase *tc = tcase_create("exit_policy");

    tcase_add_test(tc, test_cidr_parse_valid);
    tcase_add_test(tc, test_cidr_parse_malformed);
    tcase_add_test(tc, test_cidr_contains);
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_mapped_and_nat64);
    tcase_add_test(tc, test_rule_order);
    tcase_add_test(tc, test_own_addresses);
    tcase_add_test(tc, test_lists);
    tcase_add_test(tc, test_check_sockaddr);
    tcase_add_test(tc, test_concurrent_refresh);
    suite_add_tcase(s, tc);
    return s;
}

const struct th_check_main th_check_main = { .suite = exit_policy_suite };
