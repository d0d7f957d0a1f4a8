/* spawn.h — starting the SSH server's child: an interactive login shell on a new PTY, or
 * `/bin/sh -c CMD` with three pipes. The child runs as the server's own user (the visor's)
 * in a new session (its own process group, so it can be killed as a whole). */
#ifndef SW_SSH_SPAWN_H
#define SW_SSH_SPAWN_H

#include <stdbool.h>
#include <sys/types.h>

#include "apps/ssh/proto.h"
#include "common/err.h"

struct ssh_child {
    pid_t pid;  /* also the process group ID */
    int in_fd;  /* the child's stdin: pipe write end, or a dup of the PTY master */
    int out_fd; /* stdout pipe read end, or the PTY master */
    int err_fd; /* stderr pipe read end; -1 with a PTY */
    bool pty;
};

/* Starts the child for req (shell: shell_path, NULL = the user's login shell from the
 * password database, else /bin/sh). The fds are non-blocking and owned by the caller.
 * SW_EIO with err naming the failing step. */
int ssh_spawn(const struct ssh_request *req, const char *shell_path, struct ssh_child *c,
              struct sw_error *err);

#endif
