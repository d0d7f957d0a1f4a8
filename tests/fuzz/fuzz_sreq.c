/* fuzz_sreq.c — the text parsers a signed request's peer controls: sw_hostport_parse, the
 * decimal number parser (common/num.h) and hex decoding on a NUL-terminated copy of the
 * input, plus sw_sreq_message framing with the input as the body. */
#include "common/buf.h"
#include "common/err.h"
#include "common/hex.h"
#include "common/hostport.h"
#include "common/keys.h"
#include "common/num.h"
#include "common/signed_request.h"
#include "tests/fuzz/fuzz.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void fuzz_hostport_flags(const char *s, unsigned flags)
{
    char host[64], tiny[4];
    uint16_t port = 0, port2 = 0;
    int rc = sw_hostport_parse(s, flags, NULL, 0, NULL);
    int rc_full = sw_hostport_parse(s, flags, host, sizeof(host), &port);
    int rc_tiny = sw_hostport_parse(s, flags, tiny, sizeof(tiny), &port2);

    CHECK(rc == SW_OK || rc == SW_EINVAL);
    if (rc != SW_OK) {
        CHECK(rc_full == SW_EINVAL && rc_tiny == SW_EINVAL);
        return;
    }
    /* valid text: the split succeeds whenever the host fits */
    if (rc_full == SW_OK) {
        const char *colon = strrchr(s, ':');
        size_t digits;
        CHECK(strlen(host) < sizeof(host));
        CHECK(colon != NULL);
        /* the port text is 1-5 decimal digits to the end, possibly with leading zeros */
        digits = strspn(colon + 1, "0123456789");
        CHECK(digits >= 1 && digits <= 5 && colon[1 + digits] == '\0');
        CHECK(strtoul(colon + 1, NULL, 10) == port);
        if (s[0] == '[') { /* "[" host "]:" port, host non-empty */
            CHECK(host[0] != '\0');
            CHECK(strlen(host) + 3 + strlen(colon + 1) == strlen(s) &&
                  strncmp(host, s + 1, strlen(host)) == 0);
        } else { /* host ":" port, one colon only, no brackets */
            CHECK(strchr(s, ':') == colon);
            CHECK(strpbrk(host, "[]") == NULL);
            CHECK(strlen(host) + 1 + strlen(colon + 1) == strlen(s) &&
                  strncmp(host, s, strlen(host)) == 0);
        }
        /* an empty host only for a listen address */
        CHECK(host[0] != '\0' || (flags & SW_HOSTPORT_LISTEN));
    } else {
        CHECK(strlen(s) >= sizeof(host)); /* only a too-long host can fail here */
    }
    if (rc_tiny == SW_OK) {
        CHECK(strlen(tiny) < sizeof(tiny));
        CHECK(port2 == port || rc_full != SW_OK);
    }
}

static void fuzz_hostport(const char *s)
{
    int dial = sw_hostport_parse(s, 0, NULL, 0, NULL);
    int listen = sw_hostport_parse(s, SW_HOSTPORT_LISTEN, NULL, 0, NULL);
    CHECK(dial != SW_OK || listen == SW_OK); /* a listen address may be anything a dial one is */
    fuzz_hostport_flags(s, 0);
    fuzz_hostport_flags(s, SW_HOSTPORT_LISTEN);
}

/* sw_parse_long / sw_parse_u64 (query parameters, headers): success exactly for an optional
 * '-' (long only) and digits, nothing else, whose value strtol/strtoull reach without overflow. */
static void fuzz_number(const char *s)
{
    size_t sign = s[0] == '-', digits = strspn(s + sign, "0123456789");
    bool shaped = digits > 0 && s[sign + digits] == '\0';
    long l = 7, l_ref;
    uint64_t u = 7;
    unsigned long long u_ref;
    int rc;

    errno = 0;
    l_ref = strtol(s, NULL, 10);
    rc = sw_parse_long(s, LONG_MIN, LONG_MAX, &l);
    CHECK(rc == ((shaped && errno == 0) ? SW_OK : SW_EINVAL));
    CHECK(rc == SW_OK ? l == l_ref : l == 7);
    if (rc == SW_OK)
        CHECK(sw_parse_long(s, l + (l < LONG_MAX), LONG_MAX, &l_ref) == (l < LONG_MAX ? SW_EINVAL : SW_OK));
    errno = 0;
    u_ref = strtoull(s, NULL, 10);
    rc = sw_parse_u64(s, 0, UINT64_MAX, &u);
    CHECK(rc == ((shaped && !sign && errno == 0) ? SW_OK : SW_EINVAL));
    CHECK(rc == SW_OK ? u == u_ref : u == 7);
}

static void fuzz_hex(const char *s, size_t slen)
{
    uint8_t out[256], guard[256];
    char back[2 * sizeof(out) + 1];
    size_t n = slen / 2;
    int rc;

    if (n > sizeof(out))
        n = sizeof(out);
    memset(out, 0xa5, sizeof(out));
    memset(guard, 0xa5, sizeof(guard));
    rc = sw_hex_decode(out, n, s, slen);
    if (rc != SW_OK) {
        CHECK(rc == SW_EINVAL);
        CHECK(memcmp(out, guard, sizeof(out)) == 0); /* untouched on failure */
        return;
    }
    CHECK(slen == 2 * n);
    CHECK(sw_hex_encode(back, sizeof(back), out, n) == SW_OK);
    CHECK(strlen(back) == slen);
    for (size_t i = 0; i < slen; i++)
        CHECK(back[i] == tolower((unsigned char)s[i]));
    if (n < sizeof(out))
        CHECK(out[n] == 0xa5); /* nothing written past n */
    /* a too-small encode buffer fails cleanly */
    if (n)
        CHECK(sw_hex_encode(back, 2 * n, out, n) == SW_ERANGE);
}

static void fuzz_message(const uint8_t *data, size_t size, uint64_t nonce)
{
    struct sw_buf b;
    char head[64];
    int hlen = snprintf(head, sizeof(head), "POST /x?y=1\n%" PRIu64 "\n", nonce);
    sw_buf_init(&b, 0);
    CHECK(sw_sreq_message(&b, "POST", "/x?y=1", nonce, data, size) == SW_OK);
    CHECK(b.len == (size_t)hlen + size);
    CHECK(memcmp(b.data, head, (size_t)hlen) == 0);
    CHECK(size == 0 || memcmp(b.data + hlen, data, size) == 0);
    CHECK(b.data[b.len] == '\0');
    sw_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool init;
    char *copy;
    uint64_t nonce = 0;

    if (!init) {
        if (sw_crypto_init() != SW_OK)
            abort();
        init = true;
    }
    copy = malloc(size + 1);
    if (!copy)
        abort();
    if (size)
        memcpy(copy, data, size);
    copy[size] = '\0';

    fuzz_hostport(copy);
    fuzz_number(copy);
    fuzz_hex(copy, strlen(copy));
    fuzz_hex(copy, size); /* embedded NULs must be rejected */

    for (size_t i = 0; i < size && i < 8; i++)
        nonce = (nonce << 8) | data[i];
    fuzz_message(data, size, nonce);

    free(copy);
    return 0;
}
