/* num.c — see num.h. */
#include "common/num.h"
#include "common/err.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>

int sw_parse_long(const char *s, long min, long max, long *out)
{
    char *end;
    long v;

    /* strtol alone would also take leading spaces and a '+' */
    if (!s || !(isdigit((unsigned char)s[0]) || (s[0] == '-' && isdigit((unsigned char)s[1]))))
        return SW_EINVAL;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return SW_EINVAL;
    *out = v;
    return SW_OK;
}

int sw_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end;
    unsigned long long v;

    /* strtoull would also take spaces, a '+' and a '-' (negating the value) */
    if (!s || !isdigit((unsigned char)s[0]))
        return SW_EINVAL;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return SW_EINVAL;
    *out = (uint64_t)v;
    return SW_OK;
}
