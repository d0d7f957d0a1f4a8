#include "common/uuid.h"
#include "common/hex.h"

#include <string.h>

/* Offsets of the 16 hex pairs in "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx". */
static const uint8_t pair_off[SW_UUID_LEN] = { 0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34 };

int sw_uuid_parse(struct sw_uuid *u, const char *s, const char *what, struct sw_error *err)
{
    struct sw_uuid tmp;
    const char *name = what ? what : "uuid";
    if (!s || strlen(s) != SW_UUID_STR_LEN || s[8] != '-' || s[13] != '-' || s[18] != '-' ||
        s[23] != '-')
        goto bad;
    for (int i = 0; i < SW_UUID_LEN; i++)
        if (sw_hex_decode(&tmp.b[i], 1, s + pair_off[i], 2) != SW_OK)
            goto bad;
    *u = tmp;
    return SW_OK;
bad:
    return sw_error_set(err, SW_EINVAL, "%s: not a UUID (want xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)",
                        name);
}

void sw_uuid_format(const struct sw_uuid *u, char out[SW_UUID_STR_LEN + 1])
{
    memset(out, '-', SW_UUID_STR_LEN);
    for (int i = 0; i < SW_UUID_LEN; i++) {
        char pair[3];
        sw_hex_encode(pair, sizeof(pair), &u->b[i], 1);
        memcpy(out + pair_off[i], pair, 2);
    }
    out[SW_UUID_STR_LEN] = '\0';
}

bool sw_uuid_equal(const struct sw_uuid *a, const struct sw_uuid *b)
{
    return memcmp(a->b, b->b, SW_UUID_LEN) == 0;
}
