/* hostport.h — the one parser of "host:port" text, for config files and command lines alike
 * (as wireguard-tools' parse_endpoint serves both).
 *
 * Rules, decided once:
 * - "host:port" where host holds no ':', '[' or ']' (a name or an IPv4 address), or
 *   "[host]:port" (an IPv6 address, with an optional "%zone"); an unbracketed host with a ':'
 *   is refused, so "::1:80" never means a guess.
 * - port: 1 to 5 decimal digits, 0..65535 (leading zeros allowed, no sign, no spaces).
 *   Port 0 passes ("any free port" for a listener); a dialer refuses it itself.
 * - host non-empty, except with SW_HOSTPORT_LISTEN, where ":port" is a listen address on
 *   every interface (the host comes out as ""). "[]:port" is always refused.
 * The host is not resolved or checked further: getaddrinfo has the last word.
 * Stateless and thread-safe. */
#ifndef SW_HOSTPORT_H
#define SW_HOSTPORT_H

#include <stddef.h>
#include <stdint.h>

/* Flags of sw_hostport_parse. */
#define SW_HOSTPORT_LISTEN 1u /* a listen address: ":port" (empty host) allowed */

/* SW_OK or SW_EINVAL. When host is non-NULL it receives the host without brackets
 * (NUL-terminated; SW_EINVAL when it does not fit host_cap), and port when non-NULL; both
 * are written only on success. */
int sw_hostport_parse(const char *s, unsigned flags, char *host, size_t host_cap, uint16_t *port);

#endif
