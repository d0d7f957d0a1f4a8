/* fuzz_setup_request.c — a route_group request from raw bytes: sw_json_parse then
 * sw_route_group_parse; a parsed request must satisfy the invariants the setup node relies
 * on (1..16 hops per path, contiguous, from src to dst and back, no key visited twice). */
#include "common/err.h"
#include "common/json.h"
#include "common/keys.h"
#include "common/setup_proto.h"
#include "tests/fuzz/fuzz.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void check_path(const struct sw_setup_hop *h, size_t n, const struct sw_pk *from, const struct sw_pk *to)
{
    CHECK(n >= 1 && n <= SW_SETUP_MAX_HOPS);
    CHECK(sw_pk_equal(&h[0].from, from));
    CHECK(sw_pk_equal(&h[n - 1].to, to));
    for (size_t i = 1; i < n; i++)
        CHECK(sw_pk_equal(&h[i].from, &h[i - 1].to));
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j <= i; j++)
            CHECK(!sw_pk_equal(&h[i].to, &h[j].from));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool init;
    static struct sw_route_group_req req;
    struct json_object *o = NULL;
    struct sw_error err;
    char *copy;
    int rc;

    if (!init) {
        if (sw_crypto_init() != SW_OK)
            abort();
        init = true;
    }
    copy = malloc(size ? size : 1);
    if (!copy)
        abort();
    if (size)
        memcpy(copy, data, size);
    memset(&err, 0, sizeof(err));
    if (sw_json_parse(copy, size, &o, &err) == SW_OK) {
        memset(&err, 0, sizeof(err));
        rc = sw_route_group_parse(o, &req, &err);
        CHECK(rc == SW_OK || rc == SW_EINVAL || rc == SW_ERANGE || rc == SW_ENOMEM);
        if (rc == SW_OK) {
            check_path(req.fwd, req.n_fwd, &req.src.pk, &req.dst.pk);
            check_path(req.rev, req.n_rev, &req.dst.pk, &req.src.pk);
        } else {
            CHECK(memchr(err.msg, '\0', sizeof(err.msg)) != NULL && err.msg[0] != '\0');
        }
        json_object_put(o);
    }
    free(copy);
    return 0;
}
