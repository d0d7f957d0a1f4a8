/* buf.h — a growable byte buffer, always NUL-terminated for convenience.
 * The buffer owns its memory; sw_buf_free releases it. A failed append (ENOMEM or past
 * `limit` when set) leaves the content unchanged and returns an error. */
#ifndef SW_BUF_H
#define SW_BUF_H

#include <stddef.h>

struct sw_buf {
    char *data;   /* NUL-terminated; NULL until the first append */
    size_t len;
    size_t cap;
    size_t limit; /* 0 = unlimited; otherwise appends past limit fail with SW_ERANGE */
};

void sw_buf_init(struct sw_buf *b, size_t limit);
int sw_buf_append(struct sw_buf *b, const void *data, size_t n);
int sw_buf_printf(struct sw_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sw_buf_reset(struct sw_buf *b);
/* Transfers ownership of the data to the caller (free() it); the buffer becomes empty. */
char *sw_buf_steal(struct sw_buf *b, size_t *len);
void sw_buf_free(struct sw_buf *b);

#endif
