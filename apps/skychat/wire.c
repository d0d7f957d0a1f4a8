/* wire.c — frames between two skychats: records of common/stream_io.h (u32 big-endian
 * length 1..SC_FRAME_MAX, then JSON) with skychat's limits. */
#include "apps/skychat/chat.h"

#include "common/stream_io.h"

#define SC_FRAME_REST_MS 5000 /* the rest of a frame after its first byte */

int sc_frame_write(int fd, const char *json, size_t len)
{
    return sw_record_write(fd, json, len, SC_FRAME_MAX, sw_io_within(SW_IO_FOREVER, NULL));
}

int sc_frame_recv(int fd, int first_ms, struct json_object **out)
{
    return sw_json_record_recv(fd, SC_FRAME_MAX, sw_io_within(first_ms, sc_stop_flag()),
                               SC_FRAME_REST_MS, out, NULL);
}
