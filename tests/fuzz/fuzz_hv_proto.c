/* fuzz_hv_proto.c — hypervisor link messages (common/hv_proto.c).
 *
 * The input is a stream of records as the link would carry it. Every record that
 * sw_hv_record_peek hands out is decoded; a message that decodes must encode again to the
 * very same bytes (the format has one encoding), and fields must respect their bounds. */
#include "common/hv_proto.h"
#include "common/err.h"
#include "tests/fuzz/fuzz.h"

#include <stdint.h>
#include <string.h>

static void one(const uint8_t *msg, size_t len)
{
    struct sw_hv_msg m;
    struct sw_buf b;

    if (sw_hv_msg_decode(msg, len, &m) != SW_OK)
        return;
    CHECK(m.type >= SW_HV_REQ && m.type <= SW_HV_PONG);
    CHECK(m.body_len <= SW_HV_MAX_BODY);
    CHECK(strlen(m.path) <= SW_HV_MAX_PATH);
    sw_buf_init(&b, 0);
    CHECK(sw_hv_msg_encode(&m, &b) == SW_OK);
    CHECK(b.len == len + SW_HV_RECORD_HDR);
    CHECK(memcmp(b.data + SW_HV_RECORD_HDR, msg, len) == 0);
    sw_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *msg;
    size_t len, used;

    while (size) {
        if (sw_hv_record_peek(data, size, &msg, &len, &used) != SW_OK || used == 0) {
            one(data, size); /* the rest as one bare message */
            break;
        }
        CHECK(used == len + SW_HV_RECORD_HDR && used <= size);
        one(msg, len);
        data += used;
        size -= used;
    }
    return 0;
}
