/* exit_policy.h — which destinations an exit app (socksproxy, later vpn-server) may reach on
 * behalf of remote visors (SPEC §11 "Exit policy"; apps/socksproxy/README.md "Exit policy").
 *
 * Default DENY for every address that is not on the public internet or that is this host:
 * loopback, unspecified, link-local, RFC 1918 private, RFC 6598 shared, ULA, multicast,
 * broadcast, the reserved / documentation / benchmarking ranges (full table in
 * exit_policy.c) and the host's own interface addresses. Everything else is allowed.
 *
 * Operators widen the defaults with allow CIDRs and narrow them with deny CIDRs. Rule order,
 * for one address:
 *   1. an operator deny that matches wins, always;
 *   2. else the most specific matching rule decides: a default deny with prefix d against the
 *      most specific matching operator allow with prefix a: allowed when a >= d (an allow
 *      wins a tie), refused when a < d or no allow matches;
 *   3. no rule matches: allowed (a public address).
 * So an allow opens a default range only where it is at least as specific as that range:
 * `0.0.0.0/0` opens nothing, `127.0.0.1/32` opens that address, `10.0.0.0/8` the whole
 * private range. The host's own addresses count as /32 and /128 rules, so only an allow
 * naming the address itself opens one (`192.168.0.0/16` opens the LAN but not this host).
 * Own addresses inside 127.0.0.0/8 or ::1 are left to the loopback rule.
 *
 * Addresses are checked as the kernel would send to them: an IPv4-mapped IPv6 address
 * (::ffff:a.b.c.d) is checked as IPv4 only; operator rules written inside ::ffff:0:0/96
 * become IPv4 rules, and other IPv6 rules (even ::/0) never match IPv4. A NAT64 address
 * (64:ff9b::a.b.c.d, RFC 6052) must pass both as IPv6 and as its embedded IPv4 address, so a
 * NAT64 gateway cannot carry a connection into a private range; a 6to4 address
 * (2002:a.b.c.d::/48) likewise passes as IPv6 and as a.b.c.d. Teredo addresses are checked
 * as IPv6 only (their client address is obfuscated and reaching it needs a Teredo relay).
 *
 * The host's own addresses come from getifaddrs: read by sw_exit_policy_new, reread by
 * sw_exit_policy_refresh_host (socksproxy calls it once per request, ~20 us) and by a check
 * that finds its copy older than the max age (default 1000 ms; for per-packet callers).
 * When a reread fails the previous copy stays in use.
 *
 * Threads: configure (add rules, set the max age) before sharing; afterwards checks and
 * refreshes may run from any number of threads. A check takes no allocation and no system
 * call except the periodic reread: a few dozen mask comparisons (O(rules + own addresses)).
 * Ownership: the policy owns its rules and their names; a verdict's rule string is borrowed
 * from the policy (or static) and valid while the policy lives. */
#ifndef SW_EXIT_POLICY_H
#define SW_EXIT_POLICY_H

#include "common/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* A CIDR as written: family AF_INET or AF_INET6, the network address (host bits zero; IPv4
 * in addr[0..4)) and the prefix length (0..32 or 0..128). */
struct sw_cidr {
    int family;
    unsigned prefix;
    uint8_t addr[16];
};

#define SW_CIDR_TEXT_MAX 64           /* longest accepted CIDR text ("ffff:...:ffff/128" fits) */
#define SW_EXIT_POLICY_MAX_RULES 256  /* per list (allow, deny) */

/* Parses "ADDR/PREFIX" or a bare "ADDR" (= /32 or /128). Strict: dotted-quad IPv4 without
 * leading zeros or IPv6 as inet_pton reads it (no zone "%eth0"), decimal prefix without sign
 * or leading zeros, no spaces, and no host bits set ("10.0.0.1/8" is refused, naming
 * 10.0.0.0/8, as a likely typo for a single host). SW_EINVAL with a message naming the value. */
int sw_cidr_parse(const char *s, struct sw_cidr *out, struct sw_error *err);
/* A comma-separated list of CIDRs (spaces around entries ignored; no empty entries) into
 * out[0..cap); *n the count. SW_EINVAL naming the bad entry, SW_ERANGE past cap entries
 * (out may then hold the entries before it; *n is written only on success). */
int sw_cidr_list_parse(const char *list, struct sw_cidr *out, size_t cap, size_t *n,
                       struct sw_error *err);
/* "ADDR/PREFIX" into out (cap >= SW_CIDR_TEXT_MAX). */
void sw_cidr_format(const struct sw_cidr *c, char *out, size_t cap);
/* True when addr (4 or 16 bytes of c->family) lies in c. */
bool sw_cidr_contains(const struct sw_cidr *c, const uint8_t *addr);

enum sw_exit_list { SW_EXIT_ALLOW, SW_EXIT_DENY };

struct sw_exit_verdict {
    bool allowed;
    /* what decided, for the log line: "-deny 10.1.0.0/16", "-allow 127.0.0.1/32",
     * "loopback 127.0.0.0/8", "own address of this host", "public address", ... Borrowed. */
    const char *rule;
};

struct sw_exit_policy;

/* The default policy, with the host's addresses read once. *out is owned by the caller
 * (sw_exit_policy_free). SW_ENOMEM, or SW_EIO when getifaddrs fails (err says why). */
int sw_exit_policy_new(struct sw_exit_policy **out, struct sw_error *err);
void sw_exit_policy_free(struct sw_exit_policy *p);

/* Adds the CIDRs of a list (as sw_cidr_list_parse reads it) to the allow or deny list. All or
 * nothing: on error no rule of the list is added.
 * SW_EINVAL naming the bad entry, SW_ERANGE past SW_EXIT_POLICY_MAX_RULES, SW_ENOMEM. */
int sw_exit_policy_add(struct sw_exit_policy *p, enum sw_exit_list list, const char *cidrs,
                       struct sw_error *err);

/* Own addresses older than max_age_ms are reread by the next check (0: every check). */
void sw_exit_policy_set_host_max_age(struct sw_exit_policy *p, int64_t max_age_ms);
/* Rereads the host's addresses now. SW_OK, SW_EIO or SW_ENOMEM (the old copy stays). */
int sw_exit_policy_refresh_host(struct sw_exit_policy *p, struct sw_error *err);

/* Checks one address: ip is 4 (IPv4) or 16 (IPv6) bytes in network order. Any other length
 * is refused. Returns v->allowed; v may be NULL. */
bool sw_exit_policy_check_ip(struct sw_exit_policy *p, const uint8_t *ip, size_t ip_len,
                             struct sw_exit_verdict *v);
/* The same for a sockaddr_in / sockaddr_in6 (the port is not looked at); other families
 * and short lengths are refused. */
bool sw_exit_policy_check_sa(struct sw_exit_policy *p, const struct sockaddr *sa,
                             socklen_t sa_len, struct sw_exit_verdict *v);

/* The counts of operator rules, for a start-up log line. */
size_t sw_exit_policy_count(const struct sw_exit_policy *p, enum sw_exit_list list);

#endif
