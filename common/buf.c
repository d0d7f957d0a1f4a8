#include "common/buf.h"
#include "common/err.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sw_buf_init(struct sw_buf *b, size_t limit)
{
    b->data = NULL;
    b->len = b->cap = 0;
    b->limit = limit;
}

static int reserve(struct sw_buf *b, size_t extra)
{
    size_t need, cap;
    char *p;
    if (extra > SIZE_MAX - b->len - 1)
        return SW_ERANGE;
    need = b->len + extra + 1;
    if (b->limit && need - 1 > b->limit)
        return SW_ERANGE;
    if (need <= b->cap)
        return SW_OK;
    cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    p = realloc(b->data, cap);
    if (!p)
        return SW_ENOMEM;
    b->data = p;
    b->cap = cap;
    return SW_OK;
}

int sw_buf_append(struct sw_buf *b, const void *data, size_t n)
{
    int rc = reserve(b, n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
    return SW_OK;
}

int sw_buf_printf(struct sw_buf *b, const char *fmt, ...)
{
    va_list ap;
    int n, rc;
    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return SW_EINVAL;
    if ((rc = reserve(b, (size_t)n)))
        return rc;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return SW_OK;
}

void sw_buf_reset(struct sw_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

char *sw_buf_steal(struct sw_buf *b, size_t *len)
{
    char *p = b->data;
    if (len)
        *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}

void sw_buf_free(struct sw_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
