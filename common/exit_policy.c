/* exit_policy.c — the exit policy of exit apps (exit_policy.h has the rules and their order).
 *
 * Addresses and rules are held as 128-bit keys (two uint64 in host order; IPv4 in the low 32
 * bits of lo) so that one check is a handful of mask compares per rule. */
#include "common/exit_policy.h"
#include "common/bytes.h"
#include "common/clock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_HOST_MAX_AGE_MS 1000
#define RULE_NAME_MAX (SW_CIDR_TEXT_MAX + 64)

static const char OWN_ADDRESS[] = "own address of this host";
static const char OWN_BROADCAST[] = "broadcast address of this host's subnet";
static const char PUBLIC_ADDRESS[] = "public address";
static const char NOT_IP[] = "not an IPv4 or IPv6 address";

/* The default denies (IANA special-purpose registries, the ones not reachable on the public
 * internet or that mean this host). The most specific match names the reason. */
static const struct {
    const char *cidr, *what;
} default_denies[] = {
    { "0.0.0.0/8", "unspecified (this network)" },
    { "10.0.0.0/8", "private (RFC 1918)" },
    { "100.64.0.0/10", "shared address space (RFC 6598)" },
    { "127.0.0.0/8", "loopback" },
    { "169.254.0.0/16", "link-local" },
    { "172.16.0.0/12", "private (RFC 1918)" },
    { "192.0.0.0/24", "IETF protocol assignments" },
    { "192.0.2.0/24", "documentation (TEST-NET-1)" },
    { "192.168.0.0/16", "private (RFC 1918)" },
    { "198.18.0.0/15", "benchmarking" },
    { "198.51.100.0/24", "documentation (TEST-NET-2)" },
    { "203.0.113.0/24", "documentation (TEST-NET-3)" },
    { "224.0.0.0/4", "multicast" },
    { "240.0.0.0/4", "reserved" },
    { "255.255.255.255/32", "broadcast" },
    { "::/128", "unspecified" },
    { "::1/128", "loopback" },
    { "::/96", "IPv4-compatible (deprecated)" },
    { "64:ff9b:1::/48", "local-use NAT64 (RFC 8215)" },
    { "100::/64", "discard-only" },
    { "2001:2::/48", "benchmarking" },
    { "2001:db8::/32", "documentation" },
    { "fc00::/7", "unique local (ULA)" },
    { "fe80::/10", "link-local" },
    { "fec0::/10", "site-local (deprecated)" },
    { "ff00::/8", "multicast" },
};
#define N_DEFAULTS (sizeof(default_denies) / sizeof(default_denies[0]))

struct ep_key {
    int family;
    uint64_t hi, lo;
};

struct ep_rule {
    int family;
    unsigned prefix;
    uint64_t hi, lo, mask_hi, mask_lo; /* hi/lo with the host bits cleared */
    char name[RULE_NAME_MAX];
};

struct ep_host_addr {
    struct ep_key key;
    const char *what; /* OWN_ADDRESS or OWN_BROADCAST */
};

struct ep_host {
    size_t n;
    struct ep_host_addr addrs[]; /* flexible: one allocation per snapshot */
};

struct ep_list {
    struct ep_rule *rules;
    size_t n;
};

struct sw_exit_policy {
    struct ep_rule defaults[N_DEFAULTS];
    struct ep_list allow, deny;
    int64_t host_max_age_ms;
    pthread_rwlock_t host_lock;
    struct ep_host *host;        /* under host_lock */
    _Atomic int64_t host_read_ms; /* monotonic time of the last successful read */
    atomic_bool refreshing;      /* one periodic reread at a time */
};

/* ---- keys, masks, CIDRs ------------------------------------------------------------------ */

static void key_v4(const uint8_t b[4], struct ep_key *k)
{
    k->family = AF_INET;
    k->hi = 0;
    k->lo = sw_get_u32(b);
}

static void key_v6(const uint8_t b[16], struct ep_key *k)
{
    k->family = AF_INET6;
    k->hi = sw_get_u64(b);
    k->lo = sw_get_u64(b + 8);
}

static unsigned family_bits(int family)
{
    return family == AF_INET ? 32 : 128;
}

static void prefix_masks(int family, unsigned prefix, uint64_t *mhi, uint64_t *mlo)
{
    if (family == AF_INET) {
        *mhi = 0;
        *mlo = prefix ? (0xffffffffull << (32 - prefix)) & 0xffffffffull : 0;
    } else if (prefix >= 64) {
        *mhi = ~0ull;
        *mlo = prefix == 64 ? 0 : ~0ull << (128 - prefix);
    } else {
        *mhi = prefix ? ~0ull << (64 - prefix) : 0;
        *mlo = 0;
    }
}

static bool rule_matches(const struct ep_rule *r, const struct ep_key *k)
{
    return r->family == k->family && (k->hi & r->mask_hi) == r->hi && (k->lo & r->mask_lo) == r->lo;
}

/* IPv4-mapped ::ffff:0:0/96: the kernel sends IPv4. */
static bool is_mapped(const uint8_t b[16])
{
    static const uint8_t pfx[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
    return memcmp(b, pfx, sizeof(pfx)) == 0;
}

/* NAT64 well-known prefix 64:ff9b::/96 (RFC 6052): a gateway forwards to the embedded IPv4. */
static bool is_nat64(const uint8_t b[16])
{
    static const uint8_t pfx[12] = { 0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0 };
    return memcmp(b, pfx, sizeof(pfx)) == 0;
}

/* 6to4 2002::/16 (RFC 3056): a relay forwards to the IPv4 address in bytes 2-5. */
static bool is_6to4(const uint8_t b[16])
{
    return b[0] == 0x20 && b[1] == 0x02;
}

static int bad_cidr(struct sw_error *err, const char *s, const char *why)
{
    return sw_error_set(err, SW_EINVAL, "CIDR '%.*s': %s", SW_CIDR_TEXT_MAX, s, why);
}

/* Decimal 0..max without sign, spaces or leading zeros. */
static bool parse_prefix(const char *s, unsigned max, unsigned *out)
{
    unsigned v = 0;
    size_t n = strlen(s);

    if (n == 0 || n > 3 || (s[0] == '0' && n > 1))
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v > max)
        return false;
    *out = v;
    return true;
}

static bool host_bits_clear(const struct sw_cidr *c, struct sw_cidr *network)
{
    unsigned bytes = family_bits(c->family) / 8;

    *network = *c;
    for (unsigned i = 0; i < bytes; i++) {
        unsigned first_bit = i * 8;
        uint8_t keep = c->prefix >= first_bit + 8 ? 0xff
                       : c->prefix <= first_bit   ? 0
                                                  : (uint8_t)(0xff << (8 - (c->prefix - first_bit)));
        network->addr[i] = c->addr[i] & keep;
    }
    return memcmp(network->addr, c->addr, bytes) == 0;
}

int sw_cidr_parse(const char *s, struct sw_cidr *out, struct sw_error *err)
{
    char addr[SW_CIDR_TEXT_MAX + 1], net_text[SW_CIDR_TEXT_MAX], why[SW_CIDR_TEXT_MAX + 64];
    struct sw_cidr c = { 0 }, network;
    const char *slash;
    size_t alen;

    if (!s || !*s)
        return bad_cidr(err, "", "empty");
    if (strlen(s) > SW_CIDR_TEXT_MAX)
        return bad_cidr(err, s, "too long");
    slash = strchr(s, '/');
    alen = slash ? (size_t)(slash - s) : strlen(s);
    memcpy(addr, s, alen);
    addr[alen] = '\0';
    c.family = strchr(addr, ':') ? AF_INET6 : AF_INET;
    if (inet_pton(c.family, addr, c.addr) != 1)
        return bad_cidr(err, s, c.family == AF_INET ? "not an IPv4 address (a.b.c.d)"
                                                    : "not an IPv6 address");
    c.prefix = family_bits(c.family);
    if (slash && !parse_prefix(slash + 1, family_bits(c.family), &c.prefix))
        return bad_cidr(err, s, c.family == AF_INET ? "the prefix length must be 0..32"
                                                    : "the prefix length must be 0..128");
    if (!host_bits_clear(&c, &network)) {
        sw_cidr_format(&network, net_text, sizeof(net_text));
        snprintf(why, sizeof(why), "host bits set (the network would be %s)", net_text);
        return bad_cidr(err, s, why);
    }
    *out = c;
    return SW_OK;
}

void sw_cidr_format(const struct sw_cidr *c, char *out, size_t cap)
{
    char a[INET6_ADDRSTRLEN];

    if (!inet_ntop(c->family, c->addr, a, sizeof(a)))
        snprintf(a, sizeof(a), "?");
    snprintf(out, cap, "%s/%u", a, c->prefix);
}

bool sw_cidr_contains(const struct sw_cidr *c, const uint8_t *addr)
{
    struct ep_rule r = { .family = c->family };
    struct ep_key net, k;

    if (c->family == AF_INET) {
        key_v4(c->addr, &net);
        key_v4(addr, &k);
    } else {
        key_v6(c->addr, &net);
        key_v6(addr, &k);
    }
    prefix_masks(c->family, c->prefix, &r.mask_hi, &r.mask_lo);
    r.hi = net.hi & r.mask_hi;
    r.lo = net.lo & r.mask_lo;
    return rule_matches(&r, &k);
}

/* ---- rules -------------------------------------------------------------------------------- */

/* A rule inside ::ffff:0:0/96 becomes the IPv4 rule it means (mapped addresses are checked
 * as IPv4). */
static void rule_from_cidr(const struct sw_cidr *c, struct ep_rule *r)
{
    struct ep_key k;

    r->family = c->family;
    r->prefix = c->prefix;
    if (c->family == AF_INET6 && c->prefix >= 96 && is_mapped(c->addr)) {
        r->family = AF_INET;
        r->prefix = c->prefix - 96;
        key_v4(c->addr + 12, &k);
    } else if (c->family == AF_INET) {
        key_v4(c->addr, &k);
    } else {
        key_v6(c->addr, &k);
    }
    prefix_masks(r->family, r->prefix, &r->mask_hi, &r->mask_lo);
    r->hi = k.hi & r->mask_hi;
    r->lo = k.lo & r->mask_lo;
}

/* The most specific rule of r[0..n) that matches k, or NULL. */
static const struct ep_rule *longest_match(const struct ep_rule *r, size_t n, const struct ep_key *k)
{
    const struct ep_rule *best = NULL;

    for (size_t i = 0; i < n; i++)
        if (rule_matches(&r[i], k) && (!best || r[i].prefix > best->prefix))
            best = &r[i];
    return best;
}

static int load_defaults(struct sw_exit_policy *p, struct sw_error *err)
{
    char text[SW_CIDR_TEXT_MAX];

    for (size_t i = 0; i < N_DEFAULTS; i++) {
        struct sw_cidr c;
        int rc = sw_cidr_parse(default_denies[i].cidr, &c, err);
        if (rc)
            return rc; /* a typo in the table above: caught by the unit tests */
        rule_from_cidr(&c, &p->defaults[i]);
        sw_cidr_format(&c, text, sizeof(text));
        snprintf(p->defaults[i].name, sizeof(p->defaults[i].name), "%s %s", default_denies[i].what, text);
    }
    return SW_OK;
}

/* Copies one entry of a list (trimmed of spaces) into out; SW_EINVAL when empty or too long. */
static int list_entry(const char *start, size_t len, char *out, const char *whole,
                      struct sw_error *err)
{
    while (len && (*start == ' ' || *start == '\t'))
        start++, len--;
    while (len && (start[len - 1] == ' ' || start[len - 1] == '\t'))
        len--;
    if (len == 0)
        return sw_error_set(err, SW_EINVAL, "CIDR list '%.*s': an empty entry", SW_CIDR_TEXT_MAX, whole);
    if (len > SW_CIDR_TEXT_MAX)
        return sw_error_set(err, SW_EINVAL, "CIDR '%.*s...': too long", SW_CIDR_TEXT_MAX, start);
    memcpy(out, start, len);
    out[len] = '\0';
    return SW_OK;
}

int sw_cidr_list_parse(const char *list, struct sw_cidr *out, size_t cap, size_t *n,
                       struct sw_error *err)
{
    char entry[SW_CIDR_TEXT_MAX + 1];
    const char *s = list;
    size_t got = 0;

    if (!list)
        return sw_error_set(err, SW_EINVAL, "no CIDR list given");
    for (;;) {
        const char *comma = strchr(s, ',');
        size_t len = comma ? (size_t)(comma - s) : strlen(s);
        struct sw_cidr c;
        int rc;

        if ((rc = list_entry(s, len, entry, list, err)) || (rc = sw_cidr_parse(entry, &c, err)))
            return rc;
        if (got >= cap)
            return sw_error_set(err, SW_ERANGE, "CIDR list '%.*s': more than %zu entries",
                                SW_CIDR_TEXT_MAX, list, cap);
        out[got++] = c;
        if (!comma)
            break;
        s = comma + 1;
    }
    *n = got;
    return SW_OK;
}

int sw_exit_policy_add(struct sw_exit_policy *p, enum sw_exit_list list, const char *cidrs,
                       struct sw_error *err)
{
    struct ep_list *l = list == SW_EXIT_ALLOW ? &p->allow : &p->deny;
    const char *flag = list == SW_EXIT_ALLOW ? "-allow" : "-deny";
    size_t room = SW_EXIT_POLICY_MAX_RULES - l->n, n = 0;
    struct sw_cidr *parsed;
    struct ep_rule *grown;
    char text[SW_CIDR_TEXT_MAX];
    int rc;

    if (!(parsed = calloc(room ? room : 1, sizeof(*parsed))))
        return sw_error_set(err, SW_ENOMEM, "out of memory");
    rc = sw_cidr_list_parse(cidrs, parsed, room, &n, err);
    if (rc == SW_ERANGE)
        rc = sw_error_set(err, SW_ERANGE, "at most %d %s CIDRs", SW_EXIT_POLICY_MAX_RULES, flag);
    if (rc)
        goto out;
    if (!(grown = realloc(l->rules, (l->n + n) * sizeof(*grown)))) {
        rc = sw_error_set(err, SW_ENOMEM, "out of memory");
        goto out;
    }
    l->rules = grown;
    for (size_t i = 0; i < n; i++) {
        struct ep_rule *r = &l->rules[l->n + i];
        rule_from_cidr(&parsed[i], r);
        sw_cidr_format(&parsed[i], text, sizeof(text));
        snprintf(r->name, sizeof(r->name), "%s %s", flag, text);
    }
    l->n += n;
out:
    free(parsed);
    return rc;
}

size_t sw_exit_policy_count(const struct sw_exit_policy *p, enum sw_exit_list list)
{
    return list == SW_EXIT_ALLOW ? p->allow.n : p->deny.n;
}

/* ---- the host's own addresses ------------------------------------------------------------- */


/* Loopback addresses are left to the loopback default rules (so `-allow 127.0.0.0/8` opens
 * 127.0.0.1 as well). */
static bool host_key_of(const struct sockaddr *sa, struct ep_key *k)
{
    if (!sa)
        return false;
    if (sa->sa_family == AF_INET) {
        const uint8_t *b = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
        if (b[0] == 127)
            return false;
        key_v4(b, k);
        return true;
    }
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_LOOPBACK(a))
            return false;
        if (is_mapped(a->s6_addr))
            key_v4(a->s6_addr + 12, k);
        else
            key_v6(a->s6_addr, k);
        return true;
    }
    return false;
}

static size_t collect_host(const struct ifaddrs *ifs, struct ep_host *h)
{
    size_t n = 0;

    for (const struct ifaddrs *i = ifs; i; i = i->ifa_next) {
        struct ep_key k;
        if (host_key_of(i->ifa_addr, &k)) {
            if (h)
                h->addrs[n] = (struct ep_host_addr){ k, OWN_ADDRESS };
            n++;
        }
        /* a directed broadcast reaches the whole subnet */
        if ((i->ifa_flags & IFF_BROADCAST) && host_key_of(i->ifa_broadaddr, &k)) {
            if (h)
                h->addrs[n] = (struct ep_host_addr){ k, OWN_BROADCAST };
            n++;
        }
    }
    return n;
}

int sw_exit_policy_refresh_host(struct sw_exit_policy *p, struct sw_error *err)
{
    struct ifaddrs *ifs = NULL;
    struct ep_host *h, *old;
    size_t n;

    if (getifaddrs(&ifs) != 0)
        return sw_error_set(err, SW_EIO, "getifaddrs: %s", strerror(errno));
    n = collect_host(ifs, NULL);
    if (!(h = malloc(sizeof(*h) + n * sizeof(h->addrs[0])))) {
        freeifaddrs(ifs);
        return sw_error_set(err, SW_ENOMEM, "out of memory");
    }
    h->n = collect_host(ifs, h);
    freeifaddrs(ifs);
    pthread_rwlock_wrlock(&p->host_lock);
    old = p->host;
    p->host = h;
    pthread_rwlock_unlock(&p->host_lock);
    atomic_store(&p->host_read_ms, sw_mono_ms());
    free(old); /* no reader holds it: they read under the lock */
    return SW_OK;
}

void sw_exit_policy_set_host_max_age(struct sw_exit_policy *p, int64_t max_age_ms)
{
    p->host_max_age_ms = max_age_ms < 0 ? 0 : max_age_ms;
}

/* A stale copy is reread by one checker; the others keep using the old one meanwhile. */
static void refresh_if_stale(struct sw_exit_policy *p)
{
    bool fresh = sw_ms_since(atomic_load(&p->host_read_ms)) < p->host_max_age_ms;

    if (fresh)
        return;
    if (atomic_exchange(&p->refreshing, true))
        return;
    sw_exit_policy_refresh_host(p, NULL); /* on failure the old copy stays */
    atomic_store(&p->refreshing, false);
}

/* The own-address entry for k, or NULL. Caller holds host_lock for reading. */
static const char *host_match(const struct ep_host *h, const struct ep_key *k)
{
    for (size_t i = 0; h && i < h->n; i++)
        if (h->addrs[i].key.family == k->family && h->addrs[i].key.hi == k->hi &&
            h->addrs[i].key.lo == k->lo)
            return h->addrs[i].what;
    return NULL;
}

/* ---- checks ------------------------------------------------------------------------------- */

static bool decide(struct sw_exit_policy *p, const struct ep_key *k, struct sw_exit_verdict *v)
{
    const struct ep_rule *deny = longest_match(p->deny.rules, p->deny.n, k);
    const struct ep_rule *allow, *dflt;
    const char *own, *dflt_name;
    unsigned dflt_prefix;

    if (deny) {
        *v = (struct sw_exit_verdict){ false, deny->name };
        return false;
    }
    allow = longest_match(p->allow.rules, p->allow.n, k);
    dflt = longest_match(p->defaults, N_DEFAULTS, k);
    pthread_rwlock_rdlock(&p->host_lock);
    own = host_match(p->host, k);
    pthread_rwlock_unlock(&p->host_lock);
    if (!dflt && !own) {
        *v = (struct sw_exit_verdict){ true, allow ? allow->name : PUBLIC_ADDRESS };
        return true;
    }
    /* an own address is a single-address rule: the most specific there is */
    dflt_prefix = own ? family_bits(k->family) : dflt->prefix;
    dflt_name = own ? own : dflt->name;
    if (allow && allow->prefix >= dflt_prefix)
        *v = (struct sw_exit_verdict){ true, allow->name };
    else
        *v = (struct sw_exit_verdict){ false, dflt_name };
    return v->allowed;
}

bool sw_exit_policy_check_ip(struct sw_exit_policy *p, const uint8_t *ip, size_t ip_len,
                             struct sw_exit_verdict *v)
{
    struct sw_exit_verdict local;
    struct ep_key k;

    if (!v)
        v = &local;
    if (!ip || (ip_len != 4 && ip_len != 16)) {
        *v = (struct sw_exit_verdict){ false, NOT_IP };
        return false;
    }
    refresh_if_stale(p);
    if (ip_len == 4) {
        key_v4(ip, &k);
        return decide(p, &k, v);
    }
    if (is_mapped(ip)) {
        key_v4(ip + 12, &k);
        return decide(p, &k, v);
    }
    key_v6(ip, &k);
    if (!decide(p, &k, v))
        return false;
    if (is_nat64(ip)) {
        key_v4(ip + 12, &k); /* and where the NAT64 gateway sends it */
        return decide(p, &k, v);
    }
    if (is_6to4(ip)) {
        key_v4(ip + 2, &k); /* and where a 6to4 relay sends it */
        return decide(p, &k, v);
    }
    return true;
}

bool sw_exit_policy_check_sa(struct sw_exit_policy *p, const struct sockaddr *sa,
                             socklen_t sa_len, struct sw_exit_verdict *v)
{
    struct sw_exit_verdict local;

    if (!v)
        v = &local;
    if (sa && sa->sa_family == AF_INET && sa_len >= (socklen_t)sizeof(struct sockaddr_in))
        return sw_exit_policy_check_ip(p, (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr, 4, v);
    if (sa && sa->sa_family == AF_INET6 && sa_len >= (socklen_t)sizeof(struct sockaddr_in6))
        return sw_exit_policy_check_ip(p, ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr, 16, v);
    *v = (struct sw_exit_verdict){ false, NOT_IP };
    return false;
}

/* ---- life cycle --------------------------------------------------------------------------- */

int sw_exit_policy_new(struct sw_exit_policy **out, struct sw_error *err)
{
    struct sw_exit_policy *p = calloc(1, sizeof(*p));
    int rc;

    if (!p)
        return sw_error_set(err, SW_ENOMEM, "out of memory");
    p->host_max_age_ms = DEFAULT_HOST_MAX_AGE_MS;
    atomic_init(&p->host_read_ms, 0);
    atomic_init(&p->refreshing, false);
    if (pthread_rwlock_init(&p->host_lock, NULL) != 0) {
        free(p);
        return sw_error_set(err, SW_ENOMEM, "pthread_rwlock_init failed");
    }
    if ((rc = load_defaults(p, err)) || (rc = sw_exit_policy_refresh_host(p, err))) {
        sw_exit_policy_free(p);
        return rc;
    }
    *out = p;
    return SW_OK;
}

void sw_exit_policy_free(struct sw_exit_policy *p)
{
    if (!p)
        return;
    pthread_rwlock_destroy(&p->host_lock);
    free(p->host);
    free(p->allow.rules);
    free(p->deny.rules);
    free(p);
}
