/* hex.h — hexadecimal encoding. Output is always lowercase; input accepts either case. */
#ifndef SW_HEX_H
#define SW_HEX_H

#include <stddef.h>
#include <stdint.h>

/* Writes 2*n hex chars plus NUL into out (cap >= 2*n+1). Returns SW_OK or SW_ERANGE. */
int sw_hex_encode(char *out, size_t cap, const void *in, size_t n);
/* Decodes exactly 2*n hex chars from s (length slen) into out[n].
 * SW_EINVAL if slen != 2*n or a char is not hex; out untouched on failure. */
int sw_hex_decode(void *out, size_t n, const char *s, size_t slen);

#endif
