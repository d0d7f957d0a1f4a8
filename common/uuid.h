/* uuid.h — UUIDs in canonical 8-4-4-4-12 text form (lowercase out, either case in). */
#ifndef SW_UUID_H
#define SW_UUID_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"

#define SW_UUID_LEN 16
#define SW_UUID_STR_LEN 36

struct sw_uuid { uint8_t b[SW_UUID_LEN]; };

/* SW_EINVAL (err names `what`) unless s is exactly a 36-char canonical UUID. */
int sw_uuid_parse(struct sw_uuid *u, const char *s, const char *what, struct sw_error *err);
void sw_uuid_format(const struct sw_uuid *u, char out[SW_UUID_STR_LEN + 1]);
bool sw_uuid_equal(const struct sw_uuid *a, const struct sw_uuid *b);

#endif
