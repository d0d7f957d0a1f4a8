#include "common/hex.h"
#include "common/err.h"

#include <stdint.h>
#include <string.h>

int sw_hex_encode(char *out, size_t cap, const void *in, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    const uint8_t *b = in;
    if (n > (SIZE_MAX - 1) / 2 || cap < 2 * n + 1)
        return SW_ERANGE;
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * n] = '\0';
    return SW_OK;
}

static int nibble(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int sw_hex_decode(void *out, size_t n, const char *s, size_t slen)
{
    uint8_t *dst = out;
    if (!s || n > SIZE_MAX / 2 || slen != 2 * n)
        return SW_EINVAL;
    /* validate everything first so out stays untouched on failure, whatever n is */
    for (size_t i = 0; i < slen; i++)
        if (nibble(s[i]) < 0)
            return SW_EINVAL;
    for (size_t i = 0; i < n; i++)
        dst[i] = (uint8_t)(nibble(s[2 * i]) << 4 | nibble(s[2 * i + 1]));
    return SW_OK;
}
