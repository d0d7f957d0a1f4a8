/* fs.c — see fs.h. */
#include "common/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

int sw_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode,
                         struct sw_error *err)
{
    char tmp[PATH_MAX];
    const char *p = data;
    size_t left = len;
    int fd;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
        return sw_error_set(err, SW_ERANGE, "%s: path too long", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return sw_error_set(err, SW_EIO, "%s: %s", tmp, strerror(errno));
    while (left > 0) {
        ssize_t n = write(fd, p, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            goto fail;
        p += n;
        left -= (size_t)n;
    }
    if (fchmod(fd, mode) != 0 || fsync(fd) != 0)
        goto fail;
    if (close(fd) != 0) {
        fd = -1;
        goto fail;
    }
    if (rename(tmp, path) != 0) {
        fd = -1;
        goto fail;
    }
    return SW_OK;
fail:;
    int e = errno;
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    return sw_error_set(err, SW_EIO, "%s: %s", path, strerror(e));
}
