/* relay.h — I/O shared by socksproxy and socksproxy-client: a bounded message reader with a
 * deadline, the exit's outgoing connect, and the splice that relays a connection's bytes
 * between its TCP socket and its route connection once the tunnel header and status
 * (common/socks5.h) are through. All functions work on blocking sockets (they use poll and
 * MSG_DONTWAIT) and never close the fds they are given. Whole writes with a deadline are
 * common/stream_io.h's sw_io_write_all. */
#ifndef SW_SOCKS_RELAY_H
#define SW_SOCKS_RELAY_H

#include <netdb.h>
#include <stddef.h>
#include <stdint.h>

/* A parser as in common/socks5.h: SW_OK with *used, SW_SOCKS5_MORE, or a negative code. */
typedef int (*sx_parse_fn)(const uint8_t *buf, size_t len, size_t *used, void *ctx);

/* Reads from fd into buf[*have..cap) until parse accepts a message (bytes already in buf
 * are parsed first). On SW_OK *used is the message length; the caller consumes it with
 * sx_consume and keeps any bytes after it. SW_ETIMEDOUT after timeout_ms, SW_EIO on EOF or
 * a socket error, SW_ERANGE when cap bytes hold no complete message, else parse's error. */
int sx_read_msg(int fd, uint8_t *buf, size_t cap, size_t *have, int timeout_ms,
                sx_parse_fn parse, void *ctx, size_t *used);
void sx_consume(uint8_t *buf, size_t *have, size_t used);

/* Resolves host:port for TCP with getaddrinfo, here (at the exit). SW_OK with *res (owned by
 * the caller: freeaddrinfo), or SW_ENOTFOUND with *rep = SW_SOCKS5_REP_HOST_UNREACHABLE. */
int sx_resolve(const char *host, uint16_t port, struct addrinfo **res, uint8_t *rep);

/* Connects to the first of addrs[0..n) that answers, each attempt within timeout_ms, using
 * exactly these sockaddrs (no second resolution: what the caller checked is what is
 * connected). Returns a connected blocking fd, or -1 with *rep the SOCKS5 reply code for
 * the failure (SW_SOCKS5_REP_HOST_UNREACHABLE when n is 0). */
int sx_connect_addrs(const struct addrinfo *const addrs[], size_t n, int timeout_ms, uint8_t *rep);

/* Relays bytes both ways between local (the TCP connection: the SOCKS client, or the target
 * at the exit) and route (the route connection) until both directions have ended: an EOF
 * read on one side becomes shutdown(SHUT_WR) on the other once every byte before it is
 * written, and the other direction goes on (half-close). At most 128 KiB wait per direction:
 * a reader that stops holds back its writer, across the route too (the route connection is
 * flow-controlled end to end). local_pre / route_pre are bytes already read from each side (at most 128 KiB).
 * 0 when both directions ended cleanly; -1 when the relay was cut short (a reset, a write to
 * a side that closed, 30 minutes without a byte moving), and then local is set to reset
 * (SO_LINGER 0) when it is closed. */
int sx_splice(int local, int route, const uint8_t *local_pre, size_t local_pre_len,
              const uint8_t *route_pre, size_t route_pre_len);

#endif
