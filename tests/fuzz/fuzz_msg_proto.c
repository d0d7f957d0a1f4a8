/* fuzz_msg_proto.c — sw_msg_frame_decode on arbitrary bytes (docs/messaging.md §2).
 *
 * The input is copied to an exact-size heap buffer so ASan catches any read past it.
 * When decoding succeeds: borrowed pointers lie inside the input, the frame's fields obey
 * the type's rules, and sw_msg_frame_encode reproduces the input byte for byte (every
 * length is exact, so a frame has one encoding). Encoding into a buffer one byte short
 * must fail without writing past it. Any disagreement traps. */
#include "common/err.h"
#include "common/msg_proto.h"
#include "tests/fuzz/fuzz.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static bool inside(const void *p, size_t n, const uint8_t *buf, size_t len)
{
    const uint8_t *q = p;
    return q >= buf && n <= len && (size_t)(q - buf) <= len - n;
}

static void check_fields(const struct sw_msg_frame *f, const uint8_t *buf, size_t len)
{
    bool session = f->type == SW_MSG_PING || f->type == SW_MSG_PONG || f->type == SW_MSG_GOAWAY;
    CHECK(f->type >= SW_MSG_OPEN && f->type <= SW_MSG_GOAWAY);
    CHECK(session == (f->stream == 0));
    if (f->type == SW_MSG_DATA) {
        CHECK(f->data_len >= 1 && f->data_len <= len - SW_MSG_FRAME_HEADER);
        CHECK(inside(f->data, f->data_len, buf, len));
    }
    if (f->type == SW_MSG_REFUSE) {
        CHECK(f->reason_len <= SW_MSG_REASON_MAX);
        CHECK(f->reason_len == 0 || inside(f->reason, f->reason_len, buf, len));
    }
    if (f->type == SW_MSG_WINDOW)
        CHECK(f->window != 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sw_msg_frame f;
    struct sw_error err = { 0 };
    uint8_t *in, *out;
    size_t n;

    in = malloc(size ? size : 1);
    out = malloc(size + 1);
    if (!in || !out)
        abort();
    if (size)
        memcpy(in, data, size);
    if (sw_msg_frame_decode(in, size, &f, &err) != SW_OK) {
        CHECK(err.code == SW_EPROTO && err.msg[0] != '\0');
        goto out;
    }
    check_fields(&f, in, size);
    memset(out, 0xa5, size + 1);
    n = sw_msg_frame_encode(&f, out, size);
    CHECK(n == size);
    CHECK(memcmp(out, in, size) == 0);
    CHECK(out[size] == 0xa5); /* never past cap */
    if (size > 0) {
        n = sw_msg_frame_encode(&f, out, size - 1);
        CHECK(n == 0);
    }
out:
    free(in);
    free(out);
    return 0;
}
