/* fs.h — directories of the daemons' state (data_dir and the like).
 * Stateless, thread-safe (apart from errno). */
#ifndef SW_FS_H
#define SW_FS_H

#include <sys/types.h>

#include "common/err.h"

/* mkdir -p: creates path and its missing parents with mode (directories that exist are left
 * as they are). what names the setting in errors ("data_dir", "--data-dir"):
 * SW_ERANGE "<what> is too long", SW_EIO "<what> <dir>: <strerror>". */
int sw_make_dirs(const char *path, mode_t mode, const char *what, struct sw_error *err);

#endif
