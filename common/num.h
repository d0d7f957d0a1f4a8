/* num.h — the one parser of decimal numbers written as text: option values (common/opts.h),
 * query and path parameters, headers, environment variables.
 *
 * A number is one or more decimal digits (after a '-' for sw_parse_long) with nothing before
 * or after (no spaces, no '+', no hex, no empty text), within [min, max]. Leading zeros are
 * allowed. Stateless, thread-safe. */
#ifndef SW_NUM_H
#define SW_NUM_H

#include <stdint.h>

/* SW_OK with *out, or SW_EINVAL (not a number, beyond the type's range or outside
 * [min, max]); *out is written only on success. s may be NULL (SW_EINVAL). */
int sw_parse_long(const char *s, long min, long max, long *out);
/* The same for unsigned values up to UINT64_MAX (no sign at all). */
int sw_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);

#endif
