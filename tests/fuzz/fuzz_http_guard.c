/* fuzz_http_guard.c — the Host / Origin / Content-Type checks of common/http_guard.c.
 *
 * Input: up to four NUL- or newline-separated fields: an allow-list entry, a Host value, an
 * Origin value, a Content-Type value. Invariants (any break traps):
 * - a Host that passes holds only host characters, brackets, ':' and digits, and no '@';
 * - an Origin passes only as "http(s)://" + a Host that passes;
 * - the guard refuses exactly when the pieces say so, and always fills a 403/415 then;
 * - the loopback list holds the entry when it is valid, and is NULL when it is not. */
#include "common/http_server.h"
#include "common/log.h"
#include "tests/fuzz/fuzz.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static bool host_charset(const char *s)
{
    return s[strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.:[]")] == '\0';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 1), *field[4] = { NULL, NULL, NULL, NULL }, *p;
    const char **list;
    struct sw_http_response resp = { 0 };
    struct sw_http_guard_input in = { .method = "POST", .has_body = true };
    size_t n = 0;
    int rc;

    static bool quiet;
    if (!quiet) {
        sw_log_set_level(SW_LOG_ERROR);
        quiet = true;
    }
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    for (p = buf; n < 4; n++) {
        field[n] = p;
        p += strcspn(p, "\n");
        if (!*p)
            break;
        *p++ = '\0';
    }
    list = sw_http_loopback_hosts(NULL, (const char *const *)&field[0], 1);
    CHECK(!list == !sw_http_host_valid(field[0]));
    if (list) {
        in.host = field[1];
        in.origin = field[2];
        in.content_type = field[3];
        if (sw_http_host_allowed(list, field[1]))
            CHECK(host_charset(field[1]) && !strchr(field[1], '@'));
        if (field[2] && sw_http_origin_allowed(list, field[2]))
            CHECK(strncasecmp(field[2], "http", 4) == 0 && strstr(field[2], "://") &&
                  sw_http_host_allowed(list, strstr(field[2], "://") + 3));
        rc = sw_http_guard_check(list, true, &in, &resp);
        CHECK(rc == SW_OK || rc == SW_EPERM);
        CHECK(rc == SW_OK ? resp.body == NULL : (resp.status == 403 || resp.status == 415) && resp.body);
        if (field[1] && !sw_http_host_allowed(list, field[1]))
            CHECK(rc == SW_EPERM && resp.status == 403);
        free(resp.body);
        free(list);
    }
    free(buf);
    return 0;
}
