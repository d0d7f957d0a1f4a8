/* http_guard.c — Host, Origin and Content-Type checks for browser-facing HTTP servers
 * (common/http_server.h, docs/security.md).
 *
 * Why: a page open in a browser on the same machine can send "simple" requests (form or
 * text/plain POSTs, no preflight) to any local port, and a DNS-rebinding page can even read
 * the answers, because to the browser its own host name now points at 127.0.0.1. Requiring
 * a known Host stops rebinding (the browser sends the attacker's name); requiring a known
 * Origin and a JSON body on mutations stops cross-site writes (a page cannot send
 * application/json to another origin without a CORS preflight, which these servers never
 * grant). Host names are compared exactly after lower-casing and dropping one trailing dot;
 * IPv6 addresses by value; ports never. */
#include "common/hostport.h"
#include "common/http_server.h"
#include "common/log.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define NAME_MAX_LEN 253 /* a DNS name */
#define NORM_CAP 256

static bool name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.';
}

/* s[0..n) an IPv6 address (no brackets) -> its canonical text, so "::1" and "0:0::1" match. */
static bool normalize_v6(const char *s, size_t n, char *out, size_t cap)
{
    char buf[INET6_ADDRSTRLEN];
    struct in6_addr a;

    if (n == 0 || n >= sizeof(buf) || strspn(s, "0123456789abcdefABCDEF:.") < n)
        return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    return inet_pton(AF_INET6, buf, &a) == 1 && inet_ntop(AF_INET6, &a, out, (socklen_t)cap) != NULL;
}

/* A host without port ("Name.", "1.2.3.4", "[::1]", "::1") -> the form compared: lower case,
 * one trailing dot dropped, IPv6 canonical. False when it is not a host. */
static bool normalize_name(const char *s, size_t n, char *out, size_t cap)
{
    if (n >= 2 && s[0] == '[' && s[n - 1] == ']')
        return normalize_v6(s + 1, n - 2, out, cap);
    if (memchr(s, ':', n))
        return normalize_v6(s, n, out, cap);
    if (n > 1 && s[n - 1] == '.')
        n--;
    if (n == 0 || n > NAME_MAX_LEN || n >= cap)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!name_char(s[i]))
            return false;
        out[i] = (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] - 'A' + 'a') : s[i];
    }
    out[n] = '\0';
    return true;
}

/* "host", "host:port", "[v6]", "[v6]:port" -> the host's normalized form. The port must be
 * 1-5 digits when its colon is there: "localhost:80@evil" is no authority. */
static bool authority_host(const char *a, char *out, size_t cap)
{
    size_t n = strlen(a), hlen;
    const char *rest;

    if (a[0] == '[') {
        const char *end = memchr(a, ']', n);
        if (!end)
            return false;
        hlen = (size_t)(end - a) + 1;
    } else {
        hlen = strcspn(a, ":");
    }
    rest = a + hlen;
    if (*rest == ':') {
        size_t digits = strspn(rest + 1, "0123456789");
        if (digits == 0 || digits > 5 || rest[1 + digits] != '\0')
            return false;
    } else if (*rest != '\0') {
        return false;
    }
    return normalize_name(a, hlen, out, cap);
}

static bool listed(const char *const *allowed, const char *norm)
{
    char entry[NORM_CAP];

    for (; allowed && *allowed; allowed++)
        if (normalize_name(*allowed, strlen(*allowed), entry, sizeof(entry)) && strcmp(entry, norm) == 0)
            return true;
    return false;
}

bool sw_http_host_allowed(const char *const *allowed, const char *host)
{
    char norm[NORM_CAP];
    return allowed && host && authority_host(host, norm, sizeof(norm)) && listed(allowed, norm);
}

bool sw_http_origin_allowed(const char *const *allowed, const char *origin)
{
    if (!origin)
        return false;
    if (strncasecmp(origin, "http://", 7) == 0)
        return sw_http_host_allowed(allowed, origin + 7);
    if (strncasecmp(origin, "https://", 8) == 0)
        return sw_http_host_allowed(allowed, origin + 8);
    return false;
}

bool sw_http_host_valid(const char *name)
{
    char norm[NORM_CAP];
    return name && normalize_name(name, strlen(name), norm, sizeof(norm));
}

/* "application/json", any case, then nothing, or parameters after ';'. */
static bool json_content_type(const char *ct)
{
    static const char json[] = "application/json";

    ct += strspn(ct, " \t");
    if (strncasecmp(ct, json, sizeof(json) - 1) != 0)
        return false;
    ct += sizeof(json) - 1;
    ct += strspn(ct, " \t");
    return *ct == '\0' || *ct == ';';
}

static bool is_mutation(const char *method)
{
    return method && strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0 &&
           strcmp(method, "OPTIONS") != 0;
}

/* Answers status/code, naming why, and logs one line (info: an operator behind a reverse
 * proxy learns from it which --allowed-host is missing). */
__attribute__((format(printf, 5, 6)))
static int refuse(const struct sw_http_guard_input *in, struct sw_http_response *resp, int status,
                  const char *code, const char *fmt, ...)
{
    char why[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    sw_log_info("refused %s %.200s from %s: %s (%s)", in->method ? in->method : "?",
                in->target ? in->target : "", in->client ? in->client : "?", why, code);
    sw_http_reply_error(resp, status, code, "%s (docs/security.md)", why);
    return SW_EPERM;
}

int sw_http_guard_check(const char *const *allowed_hosts, bool browser_guard,
                        const struct sw_http_guard_input *in, struct sw_http_response *resp)
{
    if (!allowed_hosts)
        return SW_OK;
    if (!in->host)
        return refuse(in, resp, 403, "forbidden_host", "no Host header");
    if (!sw_http_host_allowed(allowed_hosts, in->host))
        return refuse(in, resp, 403, "forbidden_host", "Host '%.100s' is not one this server answers to",
                      in->host);
    if (!browser_guard || !is_mutation(in->method))
        return SW_OK; /* reads are guarded by the Host check: only same-site pages get answers */
    if (in->origin && !sw_http_origin_allowed(allowed_hosts, in->origin))
        return refuse(in, resp, 403, "forbidden_origin", "requests from Origin '%.100s' may not change anything",
                      in->origin);
    if (in->content_type ? !json_content_type(in->content_type) : in->has_body)
        return refuse(in, resp, 415, "unsupported_media_type", "Content-Type '%.100s': send application/json",
                      in->content_type ? in->content_type : "(none)");
    return SW_OK;
}

/* The host of a listen address when it names one, copied into host[NORM_CAP]; 0 for ":port",
 * 0.0.0.0, [::] and junk. */
static size_t listen_host(const char *addr, char *host)
{
    char norm[NORM_CAP];

    if (!addr || sw_hostport_parse(addr, SW_HOSTPORT_LISTEN, host, NORM_CAP, NULL) ||
        !normalize_name(host, strlen(host), norm, sizeof(norm)) || strcmp(norm, "0.0.0.0") == 0 ||
        strcmp(norm, "::") == 0)
        return 0;
    return strlen(host);
}

const char **sw_http_loopback_hosts(const char *listen_addr, const char *const *extras,
                                    size_t n_extras)
{
    static const char *const loopback[] = { "localhost", "127.0.0.1", "::1" };
    const size_t n_lo = sizeof(loopback) / sizeof(loopback[0]);
    char lh[NORM_CAP];
    size_t lh_len = listen_host(listen_addr, lh), count = n_lo + (lh_len ? 1 : 0) + n_extras;
    size_t bytes = (count + 1) * sizeof(char *) + lh_len + 1, k = 0;
    const char **list;
    char *p;

    for (size_t i = 0; i < n_extras; i++) {
        if (!sw_http_host_valid(extras[i]))
            return NULL;
        bytes += strlen(extras[i]) + 1;
    }
    for (size_t i = 0; i < n_lo; i++)
        bytes += strlen(loopback[i]) + 1;
    if (!(list = malloc(bytes)))
        return NULL;
    p = (char *)(list + count + 1);
    for (size_t i = 0; i < count; i++) {
        const char *s = i < n_lo ? loopback[i] : (lh_len && i == n_lo) ? lh : extras[k++];
        size_t n = (lh_len && i == n_lo) ? lh_len : strlen(s);
        memcpy(p, s, n);
        p[n] = '\0';
        list[i] = p;
        p += n + 1;
    }
    list[count] = NULL;
    return list;
}
