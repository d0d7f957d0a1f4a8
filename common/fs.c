/* fs.c — see fs.h. */
#include "common/fs.h"

#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>

int sw_make_dirs(const char *path, mode_t mode, const char *what, struct sw_error *err)
{
    char buf[PATH_MAX];
    size_t n = strlen(path);

    if (n >= sizeof(buf))
        return sw_error_set(err, SW_ERANGE, "%s is too long", what);
    memcpy(buf, path, n + 1);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, mode) && errno != EEXIST)
            return sw_error_set(err, SW_EIO, "%s %s: %s", what, buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, mode) && errno != EEXIST)
        return sw_error_set(err, SW_EIO, "%s %s: %s", what, buf, strerror(errno));
    return SW_OK;
}
