/* utf8.h — UTF-8 validation (RFC 3629) for text that leaves the process as JSON or reaches a
 * person: chat messages, names. Strict: a valid text holds only the shortest encoding of each
 * scalar value U+0000..U+10FFFF without the surrogates U+D800..U+DFFF, so overlong forms
 * (C0 AF for '/'), encoded surrogates (ED A0 80, what CESU-8 writes), code points above
 * U+10FFFF (F4 90 80 80 and the lead bytes F5..FF) and truncated or stray continuation
 * bytes are all refused. U+0000 is valid UTF-8: callers that refuse NUL check it themselves. */
#ifndef SW_UTF8_H
#define SW_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* Whether s[0..len) is valid UTF-8 (len 0 is). When it is not and bad_at is not NULL,
 * *bad_at is the byte offset where the first invalid sequence starts (written only then). */
bool sw_utf8_valid(const char *s, size_t len, size_t *bad_at);

#endif
