/* hostport.c — see hostport.h. */
#include "common/hostport.h"
#include "common/err.h"
#include "common/num.h"

#include <string.h>

/* 1..5 decimal digits to the end of the text, at most 65535. */
static int parse_port(const char *s, uint16_t *out)
{
    uint64_t v;

    if (strlen(s) > 5 || sw_parse_u64(s, 0, 65535, &v))
        return SW_EINVAL;
    *out = (uint16_t)v;
    return SW_OK;
}

int sw_hostport_parse(const char *s, unsigned flags, char *host, size_t host_cap, uint16_t *port)
{
    const char *h = s, *colon;
    size_t hlen;
    uint16_t p;

    if (!s)
        return SW_EINVAL;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':' || close == s + 1)
            return SW_EINVAL;
        h = s + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strchr(s, ':');
        if (!colon || strchr(colon + 1, ':'))
            return SW_EINVAL;
        hlen = (size_t)(colon - s);
        if (strcspn(s, "[]") < hlen) /* a bracket outside "[v6]" is no host */
            return SW_EINVAL;
        if (hlen == 0 && !(flags & SW_HOSTPORT_LISTEN))
            return SW_EINVAL;
    }
    if (parse_port(colon + 1, &p))
        return SW_EINVAL;
    if (host) {
        if (hlen >= host_cap)
            return SW_EINVAL;
        memcpy(host, h, hlen);
        host[hlen] = '\0';
    }
    if (port)
        *port = p;
    return SW_OK;
}
