/* local.h — messages with an optional file descriptor over a unix SOCK_SEQPACKET socket
 * (SSH-cli <-> SSH-client; formats in proto.h). */
#ifndef SW_SSH_LOCAL_H
#define SW_SSH_LOCAL_H

#include <stddef.h>

/* Sends one message; fd >= 0 rides along (SCM_RIGHTS; the caller keeps its copy). */
int ssh_local_send(int s, const void *msg, size_t n, int fd);
/* Receives one message (up to cap bytes; a longer one is SW_EPROTO). *fd is the passed
 * descriptor (owned by the caller, close-on-exec) or -1. SW_ENOTFOUND on EOF, SW_EIO on
 * errors and timeouts (SO_RCVTIMEO). */
int ssh_local_recv(int s, void *buf, size_t cap, size_t *n, int *fd);

#endif
