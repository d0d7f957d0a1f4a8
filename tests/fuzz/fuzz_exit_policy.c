/* fuzz_exit_policy.c — common/exit_policy.c on untrusted input. Byte 0 picks the mode; the
 * rest is the input.
 *   0: one CIDR. A parsed CIDR formats to text that parses to the same CIDR, contains its own
 *      network address, and once denied, its network address is refused by that very rule.
 *   1: a comma-separated list for the allow and the deny list: accepted all or nothing.
 *   2: raw address bytes (4 or 16, else refused): the verdict names a rule, and an IPv6
 *      address in ::ffff:0:0/96 gets the same verdict as its IPv4 address. */
#include "common/err.h"
#include "common/exit_policy.h"
#include "tests/fuzz/fuzz.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static struct sw_exit_policy *shared; /* defaults only, for the address mode */

static bool is_nat64(const uint8_t a[16])
{
    static const uint8_t pfx[12] = { 0, 0x64, 0xff, 0x9b };
    return memcmp(a, pfx, sizeof(pfx)) == 0;
}

static void fuzz_cidr(const char *s)
{
    struct sw_cidr c, again;
    struct sw_error err = { 0 };
    struct sw_exit_policy *p = NULL;
    struct sw_exit_verdict v;
    char text[SW_CIDR_TEXT_MAX];
    int rc = sw_cidr_parse(s, &c, &err);

    if (rc != SW_OK) {
        CHECK(rc == SW_EINVAL && err.code == SW_EINVAL && err.msg[0]);
        return;
    }
    CHECK(c.family == AF_INET || c.family == AF_INET6);
    CHECK(c.prefix <= (c.family == AF_INET ? 32u : 128u));
    sw_cidr_format(&c, text, sizeof(text));
    CHECK(sw_cidr_parse(text, &again, NULL) == SW_OK);
    CHECK(again.family == c.family && again.prefix == c.prefix &&
          memcmp(again.addr, c.addr, c.family == AF_INET ? 4 : 16) == 0);
    CHECK(sw_cidr_contains(&c, c.addr));
    if (sw_exit_policy_new(&p, NULL) != SW_OK)
        return;
    CHECK(sw_exit_policy_add(p, SW_EXIT_DENY, s, NULL) == SW_OK);
    CHECK(!sw_exit_policy_check_ip(p, c.addr, c.family == AF_INET ? 4 : 16, &v));
    CHECK(strncmp(v.rule, "-deny ", 6) == 0);
    sw_exit_policy_free(p);
}

static void fuzz_list(const char *s)
{
    struct sw_exit_policy *p = NULL;
    struct sw_error err = { 0 };
    int rc;

    if (sw_exit_policy_new(&p, NULL) != SW_OK)
        return;
    rc = sw_exit_policy_add(p, SW_EXIT_ALLOW, s, &err);
    CHECK(rc == SW_OK ? sw_exit_policy_count(p, SW_EXIT_ALLOW) > 0
                      : sw_exit_policy_count(p, SW_EXIT_ALLOW) == 0 && err.msg[0]);
    CHECK(sw_exit_policy_add(p, SW_EXIT_DENY, s, NULL) == rc);
    CHECK(sw_exit_policy_count(p, SW_EXIT_DENY) == sw_exit_policy_count(p, SW_EXIT_ALLOW));
    sw_exit_policy_free(p);
}

static void fuzz_address(const uint8_t *d, size_t n)
{
    struct sw_exit_verdict v, v4;
    bool ok;

    if (!shared && sw_exit_policy_new(&shared, NULL) != SW_OK)
        return;
    ok = sw_exit_policy_check_ip(shared, d, n, &v);
    CHECK(ok == v.allowed && v.rule && v.rule[0]);
    if (n != 4 && n != 16)
        CHECK(!ok);
    if (n == 16 && memcmp(d, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) == 0) {
        sw_exit_policy_check_ip(shared, d + 12, 4, &v4);
        CHECK(v4.allowed == ok && strcmp(v4.rule, v.rule) == 0);
    }
    if (n == 16 && is_nat64(d) && ok) /* allowed through NAT64: the IPv4 behind it is allowed */
        CHECK(sw_exit_policy_check_ip(shared, d + 12, 4, NULL));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char s[512];

    if (size < 1)
        return 0;
    if (data[0] % 3 == 2) {
        fuzz_address(data + 1, size - 1);
        return 0;
    }
    if (size - 1 >= sizeof(s))
        return 0;
    memcpy(s, data + 1, size - 1);
    s[size - 1] = '\0';
    if (data[0] % 3 == 0)
        fuzz_cidr(s);
    else
        fuzz_list(s);
    return 0;
}
