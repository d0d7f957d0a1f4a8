/* fuzz_netcert.c — common/netcert.c on untrusted input. Byte 0 picks the mode; the rest is
 * the input.
 *   0: a certificate. A parsed one encodes to the very same bytes and never verifies against
 *      a key that did not sign it (the fuzzer cannot forge a signature).
 *   1: a revocation list. A parsed one is sorted and unique, encodes to the same bytes, and
 *      contains each of its keys.
 *   2: a certificate in hex, as the SW-Cert header and handshake admission see it. */
#include "common/err.h"
#include "common/netcert.h"
#include "common/network.h"
#include "tests/fuzz/fuzz.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void fuzz_cert(const uint8_t *d, size_t n)
{
    struct sw_cert c;
    struct sw_error err = { 0 };
    uint8_t again[SW_CERT_MAX_LEN];
    size_t len = 0;
    struct sw_pk zero = { { 0 } };

    if (sw_cert_parse(d, n, &c, &err) != SW_OK) {
        CHECK(err.code == SW_EINVAL && err.msg[0]);
        return;
    }
    CHECK(sw_cert_encode(&c, again, sizeof(again), &len) == SW_OK);
    CHECK(len == n && memcmp(again, d, n) == 0);
    CHECK(strlen(c.name) <= SW_CERT_NAME_MAX && strlen(c.groups) <= SW_CERT_GROUPS_MAX);
    CHECK(sw_cert_verify(&c, &zero, 0, NULL) != SW_OK);
}

static void fuzz_revlist(const uint8_t *d, size_t n)
{
    struct sw_revlist l;
    struct sw_error err = { 0 };
    uint8_t *again;
    size_t len;

    if (sw_revlist_parse(d, n, &l, &err) != SW_OK) {
        CHECK(err.msg[0]);
        return;
    }
    for (uint32_t i = 0; i < l.count; i++) {
        CHECK(i == 0 || sw_pk_cmp(&l.keys[i - 1], &l.keys[i]) < 0);
        CHECK(sw_revlist_contains(&l, &l.keys[i]));
    }
    CHECK(sw_revlist_encode(&l, &again, &len) == SW_OK);
    CHECK(len == n && memcmp(again, d, n) == 0);
    free(again);
    sw_revlist_free(&l);
}

static void fuzz_hex(const uint8_t *d, size_t n)
{
    char hex[SW_CERT_HEX_MAX + 8];
    struct sw_cert c;
    struct sw_pk who = { { 0 } };

    if (n >= sizeof(hex))
        return;
    memcpy(hex, d, n);
    hex[n] = '\0';
    if (sw_cert_from_hex(hex, n, &c, NULL, 0, NULL, NULL) == SW_OK)
        CHECK(n % 2 == 0 && n / 2 >= SW_CERT_MIN_LEN);
    CHECK(sw_network_admit_hex(NULL, &who, hex, 0, &c, NULL) == SW_OK); /* open network */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    switch (data[0] % 3) {
    case 0: fuzz_cert(data + 1, size - 1); break;
    case 1: fuzz_revlist(data + 1, size - 1); break;
    default: fuzz_hex(data + 1, size - 1); break;
    }
    return 0;
}
