/* fuzz_ssh_proto.c — the SSH apps' parsers (apps/ssh/proto.c) on untrusted bytes. Byte 0
 * picks the input: a frame stream (each frame then goes through its typed parser), a
 * request payload, or a local request / answer. Checks: a frame never claims more bytes
 * than given and is prefix-stable (every shorter prefix is "more" or the same error); a
 * parsed request re-encodes to a frame that parses to the same request; parsed text is
 * printable and NUL-terminated. */
#include "apps/ssh/proto.h"
#include "common/err.h"
#include "tests/fuzz/fuzz.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint8_t enc[SSH_HDR_LEN + SSH_FRAME_MAX];
static struct ssh_request req, req2;

static void check_text(const char *t)
{
    for (size_t i = 0; t[i]; i++)
        CHECK(t[i] >= 0x20 && t[i] < 0x7f);
}

static void request_round_trip(const struct ssh_frame *f)
{
    struct ssh_frame g;
    size_t len = 0, used = 0;

    if (ssh_request_parse(f, &req) != SW_OK)
        return;
    CHECK(req.mode == SSH_MODE_SHELL || req.mode == SSH_MODE_EXEC);
    CHECK(strlen(req.term) <= SSH_TERM_MAX && strlen(req.cmd) <= SSH_CMD_MAX);
    CHECK(ssh_request_encode(enc, sizeof(enc), &len, &req) == SW_OK);
    CHECK(ssh_frame_parse(enc, len, &used, &g) == SW_OK && used == len);
    CHECK(ssh_request_parse(&g, &req2) == SW_OK);
    CHECK(req2.mode == req.mode && req2.rows == req.rows && req2.cols == req.cols);
    CHECK(strcmp(req2.term, req.term) == 0 && strcmp(req2.cmd, req.cmd) == 0);
}

static void typed(const struct ssh_frame *f)
{
    uint16_t a, b;
    uint32_t n;
    uint8_t k, v;
    char text[SSH_ERRTEXT_MAX + 1];

    if (ssh_resize_parse(f, &a, &b) == SW_OK)
        CHECK(a >= 1 && b >= 1 && a <= SSH_DIM_MAX && b <= SSH_DIM_MAX);
    if (ssh_ack_parse(f, &n) == SW_OK)
        CHECK(n >= 1);
    if (ssh_exit_parse(f, &k, &v) == SW_OK)
        CHECK(k <= SSH_EXIT_SIGNAL);
    if (ssh_error_parse(f, text) == SW_OK) {
        CHECK(strlen(text) == f->len);
        check_text(text);
    }
    request_round_trip(f);
}

static void frames(const uint8_t *d, size_t n)
{
    size_t off = 0;

    while (off < n) {
        struct ssh_frame f, g;
        size_t used = 0, used2 = 0;
        int rc = ssh_frame_parse(d + off, n - off, &used, &f);

        if (rc != SW_OK) {
            CHECK(rc == SSH_MORE || rc == SW_EINVAL || rc == SW_ERANGE || rc == SW_EPROTO);
            if (rc == SSH_MORE)
                CHECK(n - off < SSH_HDR_LEN + SSH_FRAME_MAX);
            break;
        }
        CHECK(used >= SSH_HDR_LEN && used <= n - off && f.len == used - SSH_HDR_LEN);
        CHECK(f.data == d + off + SSH_HDR_LEN);
        CHECK(ssh_frame_parse(d + off, used - 1, &used2, &g) == SSH_MORE);
        typed(&f);
        off += used;
    }
}

static void local(const uint8_t *d, size_t n)
{
    struct sw_pk pk;
    uint16_t port;
    bool ok;
    char text[SSH_ERRTEXT_MAX + 1];
    uint8_t out[SSH_LOCAL_REQ_LEN];

    if (ssh_local_req_parse(d, n, &pk, &port) == SW_OK) {
        CHECK(n == SSH_LOCAL_REQ_LEN && port != 0);
        ssh_local_req_encode(out, &pk, port);
        CHECK(memcmp(out, d, n) == 0);
    }
    if (ssh_local_resp_parse(d, n, &ok, text) == SW_OK) {
        CHECK(ok ? text[0] == '\0' : strlen(text) == n - 1);
        check_text(text);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ssh_frame f;

    if (size < 1)
        return 0;
    switch (data[0] % 3) {
    case 0:
        frames(data + 1, size - 1);
        break;
    case 1: /* a request payload without a frame header */
        f = (struct ssh_frame){ .type = SSH_F_REQUEST, .data = data + 1, .len = size - 1 };
        request_round_trip(&f);
        break;
    default:
        local(data + 1, size - 1);
        break;
    }
    return 0;
}
