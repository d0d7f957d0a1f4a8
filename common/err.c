#include "common/err.h"

#include <stdarg.h>
#include <stdio.h>

int sw_error_set(struct sw_error *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        err->code = code;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        va_end(ap);
    }
    return code;
}

const char *sw_strerror(int code)
{
    switch (code) {
    case SW_OK: return "ok";
    case SW_EINVAL: return "invalid input";
    case SW_ENOMEM: return "out of memory";
    case SW_EIO: return "i/o error";
    case SW_ETIMEDOUT: return "timed out";
    case SW_ENOTFOUND: return "not found";
    case SW_EEXIST: return "already exists";
    case SW_EDB: return "database error";
    case SW_ECRYPTO: return "cryptographic check failed";
    case SW_ERANGE: return "out of range";
    case SW_EPROTO: return "protocol error";
    case SW_ECONFLICT: return "conflict";
    case SW_EPERM: return "not permitted";
    default: return "unknown error";
    }
}
