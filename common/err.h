/* err.h — the error convention used by every module of Skywire-C.
 *
 * A function that can fail returns int: SW_OK (0) on success or a negative SW_E* code.
 * Where a human must learn *why* (config, JSON bodies, network peers), the function also
 * takes `struct sw_error *err` (may be NULL) and fills a one-line message naming the bad
 * field or value. Outputs are written only on success unless the header says otherwise.
 * Functions clean up with a single `goto out`/`goto fail` path; nothing leaks on error.
 * Ownership: a header comment states who frees what; "borrowed" pointers stay owned by
 * the callee/argument and are valid only as long as it is. */
#ifndef SW_ERR_H
#define SW_ERR_H

#include <stddef.h>

enum sw_status {
    SW_OK = 0,
    SW_EINVAL = -1,     /* malformed input */
    SW_ENOMEM = -2,     /* allocation failed */
    SW_EIO = -3,        /* system call / socket / file failure */
    SW_ETIMEDOUT = -4,  /* deadline passed */
    SW_ENOTFOUND = -5,  /* no such object */
    SW_EEXIST = -6,     /* object exists already */
    SW_EDB = -7,        /* database unavailable or failed */
    SW_ECRYPTO = -8,    /* signature / authentication check failed */
    SW_ERANGE = -9,     /* value or size out of bounds */
    SW_EPROTO = -10,    /* peer broke the protocol */
    SW_ECONFLICT = -11, /* state changed underneath (nonce, sequence) */
    SW_EPERM = -12,     /* caller not allowed */
};

#define SW_ERROR_MSG_MAX 256

struct sw_error {
    int code;
    char msg[SW_ERROR_MSG_MAX];
};

/* Fills err (if non-NULL) with code and a printf-style message; returns code so callers
 * can write `return sw_error_set(err, SW_EINVAL, "field '%s': ...", name);`. */
int sw_error_set(struct sw_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Static text for a code; never NULL. */
const char *sw_strerror(int code);

#endif
