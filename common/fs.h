/* fs.h — directories of the daemons' state (data_dir and the like).
 * Stateless, thread-safe (apart from errno). */
#ifndef SW_FS_H
#define SW_FS_H

#include <stddef.h>
#include <sys/types.h>

#include "common/err.h"

/* mkdir -p: creates path and its missing parents with mode (directories that exist are left
 * as they are). what names the setting in errors ("data_dir", "--data-dir"):
 * SW_ERANGE "<what> is too long", SW_EIO "<what> <dir>: <strerror>". */
int sw_make_dirs(const char *path, mode_t mode, const char *what, struct sw_error *err);

/* Replaces path with data[len] whole or not at all: writes "<path>.tmp" with mode, fsyncs
 * it and renames it over path. SW_EIO "<path>: <strerror>". */
int sw_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode,
                         struct sw_error *err);

#endif
