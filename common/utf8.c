/* utf8.c — strict UTF-8 validation (RFC 3629 section 4's table of well-formed byte
 * sequences; utf8.h). */
#include "common/utf8.h"

#include <stdint.h>

/* Length of the well-formed sequence at p (at most n bytes left), 0 when there is none. */
static size_t sequence(const uint8_t *p, size_t n)
{
    uint8_t b = p[0], lo = 0x80, hi = 0xBF;
    size_t need;

    if (b < 0x80)
        return 1;
    if (b >= 0xC2 && b <= 0xDF) {
        need = 2;
    } else if (b >= 0xE0 && b <= 0xEF) {
        need = 3;
        if (b == 0xE0)
            lo = 0xA0; /* E0 80..9F would be overlong */
        else if (b == 0xED)
            hi = 0x9F; /* ED A0..BF would be a surrogate */
    } else if (b >= 0xF0 && b <= 0xF4) {
        need = 4;
        if (b == 0xF0)
            lo = 0x90; /* F0 80..8F would be overlong */
        else if (b == 0xF4)
            hi = 0x8F; /* F4 90.. would be above U+10FFFF */
    } else {
        return 0; /* a continuation byte, C0/C1 (overlong) or F5..FF (above U+10FFFF) */
    }
    if (n < need || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < need; i++)
        if (p[i] < 0x80 || p[i] > 0xBF)
            return 0;
    return need;
}

bool sw_utf8_valid(const char *s, size_t len, size_t *bad_at)
{
    const uint8_t *p = (const uint8_t *)s;
    size_t i = 0;

    while (i < len) {
        size_t k = sequence(p + i, len - i);
        if (k == 0) {
            if (bad_at)
                *bad_at = i;
            return false;
        }
        i += k;
    }
    return true;
}
