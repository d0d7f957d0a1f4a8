/* fuzz_stream_io.c — the u32-length + JSON record codec of common/stream_io.h on untrusted
 * bytes. The first byte picks the limit (64 B, 4 KiB or 64 KiB, as the protocols use); the
 * rest is a stream of records from a peer. It is cut twice:
 *   - from a buffer with sw_record_peek, each payload parsed with sw_json_parse (the parser
 *     itself is fuzz_json's);
 *   - from a socket with sw_json_record_recv (the whole input written to a socketpair whose
 *     writer then shuts down), as the setup protocol, the rule server and skychat read.
 * Both must see the same records and the same outcome (a bad length ends both; a clean end
 * only after a whole record; a cut record is SW_EIO). Nothing may crash, leak or read out
 * of bounds; a disagreement traps. */
#include "common/err.h"
#include "common/json.h"
#include "common/stream_io.h"
#include "tests/fuzz/fuzz.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_RECORDS 64
#define MAX_INPUT (32u << 10) /* fits the socketpair's buffer: written before reading */

struct cut {
    size_t n;
    int end;                         /* SW_OK: ran out (whole records only), else SW_ERANGE */
    bool partial;                    /* bytes of an unfinished record are left */
    int parse_rc[MAX_RECORDS];
    struct json_object *obj[MAX_RECORDS];
};

static void cut_buffer(const uint8_t *p, size_t n, size_t max, struct cut *c)
{
    size_t off = 0;

    c->end = SW_OK;
    for (c->n = 0; c->n < MAX_RECORDS; c->n++) {
        const uint8_t *payload = NULL;
        size_t plen = 0, used = 0;
        struct sw_error err = { 0 };
        char *copy;
        int rc = sw_record_peek(p + off, n - off, max, &payload, &plen, &used);

        if (rc) {
            CHECK(rc == SW_ERANGE && used == 0);
            c->end = rc;
            break;
        }
        if (used == 0) {
            c->partial = off < n;
            break;
        }
        CHECK(plen >= 1 && plen <= max && used == SW_RECORD_HDR + plen && used <= n - off);
        CHECK(payload == p + off + SW_RECORD_HDR);
        copy = malloc(plen); /* exact size, not NUL-terminated: a read past it is caught */
        CHECK(copy != NULL);
        memcpy(copy, payload, plen);
        c->obj[c->n] = NULL;
        c->parse_rc[c->n] = sw_json_parse(copy, plen, &c->obj[c->n], &err);
        if (c->parse_rc[c->n] != SW_OK)
            CHECK(err.msg[0] != '\0' && memchr(err.msg, '\0', sizeof(err.msg)));
        free(copy);
        off += used;
    }
}

/* The same bytes from a socket: the same records, in order, and a matching end. */
static void read_socket(const uint8_t *p, size_t n, size_t max, const struct cut *c)
{
    int sv[2], rc = SW_OK;
    size_t i;

    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    CHECK(sw_io_write_all(sv[0], p, n, sw_io_within(1000, NULL)) == SW_OK);
    shutdown(sv[0], SHUT_WR);
    for (i = 0; i <= c->n && i < MAX_RECORDS; i++) {
        struct json_object *o = NULL;
        rc = sw_json_record_recv(sv[1], max, sw_io_within(1000, NULL), 1000, &o, NULL);
        if (i == c->n || (rc != SW_OK && rc != SW_EINVAL))
            break;
        CHECK(rc == (c->parse_rc[i] == SW_OK ? SW_OK : SW_EINVAL));
        if (rc == SW_OK) {
            size_t a, b;
            CHECK(!o == !c->obj[i]);
            CHECK(!o || strcmp(sw_json_compact(o, &a), sw_json_compact(c->obj[i], &b)) == 0);
        }
        json_object_put(o);
    }
    if (i < MAX_RECORDS) {
        CHECK(i == c->n);
        if (c->end == SW_ERANGE)
            CHECK(rc == SW_ERANGE);
        else
            CHECK(rc == (c->partial ? SW_EIO : SW_ENOTFOUND));
    }
    close(sv[0]);
    close(sv[1]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t limits[] = { 64, 4096, 64u << 10 };
    struct cut c;
    size_t max;

    if (size == 0 || size > MAX_INPUT)
        return 0;
    max = limits[data[0] % 3];
    memset(&c, 0, sizeof(c));
    cut_buffer(data + 1, size - 1, max, &c);
    read_socket(data + 1, size - 1, max, &c);
    for (size_t i = 0; i < c.n; i++)
        json_object_put(c.obj[i]);
    return 0;
}
