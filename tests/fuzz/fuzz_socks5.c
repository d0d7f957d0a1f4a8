/* fuzz_socks5.c — the SOCKS5 parsers of common/socks5.c on untrusted bytes: greeting, request,
 * tunnel header and status. Byte 0 picks the parser; the rest is the input. Checks: a
 * success never claims more bytes than given; a success on a prefix of the input is the same
 * success on the whole (parsers are prefix-stable); a parsed request or header re-encodes to
 * exactly the bytes it consumed (round trip). */
#include "common/err.h"
#include "common/socks5.h"
#include "tests/fuzz/fuzz.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void fuzz_request(const uint8_t *d, size_t n)
{
    struct sw_socks5_request r, r2;
    size_t used = 0, used2 = 0;
    uint8_t rep = 0xee, hdr[SW_SOCKS_HDR_MAX];
    int rc = sw_socks5_parse_request(d, n, &used, &r, &rep);

    if (rc == SW_OK) {
        size_t hl = 0;
        CHECK(used <= n && used >= 7);
        CHECK(sw_socks5_parse_request(d, used, &used2, &r2, NULL) == SW_OK && used2 == used);
        CHECK(strlen(r.dst.host) < sizeof(r.dst.host));
        /* the destination travels in a tunnel header and comes back the same */
        CHECK(sw_socks_hdr_encode(hdr, sizeof(hdr), &hl, "pw", &r.dst) == SW_OK);
        {
            char pass[SW_SOCKS_PASSCODE_MAX + 1];
            struct sw_socks5_addr a;
            CHECK(sw_socks_hdr_parse(hdr, hl, &used2, pass, &a) == SW_OK && used2 == hl);
            CHECK(strcmp(pass, "pw") == 0 && a.port == r.dst.port && a.atyp == r.dst.atyp &&
                  strcmp(a.host, r.dst.host) == 0);
            /* header = version, length, "pw", then the request's address bytes verbatim */
            CHECK(hl - 4 == used - 3 && memcmp(hdr + 4, d + 3, used - 3) == 0);
        }
    } else if (rc < 0) {
        CHECK(rep != 0xee);
    } else {
        CHECK(rc == SW_SOCKS5_MORE);
    }
}

static void fuzz_header(const uint8_t *d, size_t n)
{
    char pass[SW_SOCKS_PASSCODE_MAX + 1];
    struct sw_socks5_addr a;
    size_t used = 0, hl = 0;
    uint8_t out[SW_SOCKS_HDR_MAX];
    int rc = sw_socks_hdr_parse(d, n, &used, pass, &a);

    if (rc != SW_OK) {
        CHECK(rc == SW_SOCKS5_MORE || rc < 0);
        return;
    }
    CHECK(used <= n && used <= SW_SOCKS_HDR_MAX);
    CHECK(sw_socks_hdr_encode(out, sizeof(out), &hl, pass, &a) == SW_OK);
    CHECK(hl == used && memcmp(out, d, used) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t used = 0;
    bool na;
    uint8_t rep;

    if (size < 1)
        return 0;
    switch (data[0] % 3) {
    case 0:
        if (sw_socks5_parse_greeting(data + 1, size - 1, &used, &na) == SW_OK)
            CHECK(used >= 3 && used <= size - 1);
        if (sw_socks_status_parse(data + 1, size - 1, &used, &rep) == SW_OK)
            CHECK(used == 2);
        break;
    case 1:
        fuzz_request(data + 1, size - 1);
        break;
    default:
        fuzz_header(data + 1, size - 1);
        break;
    }
    return 0;
}
