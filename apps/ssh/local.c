/* local.c — one message plus an optional fd over a unix socket (local.h). */
#include "apps/ssh/local.h"

#include "common/err.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

int ssh_local_send(int s, const void *msg, size_t n, int fd)
{
    union {
        struct cmsghdr h;
        char b[CMSG_SPACE(sizeof(int))];
    } ctl;
    struct iovec iov = { .iov_base = (void *)msg, .iov_len = n };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
    ssize_t w;

    if (fd >= 0) {
        memset(&ctl, 0, sizeof(ctl));
        mh.msg_control = ctl.b;
        mh.msg_controllen = sizeof(ctl.b);
        CMSG_FIRSTHDR(&mh)->cmsg_level = SOL_SOCKET;
        CMSG_FIRSTHDR(&mh)->cmsg_type = SCM_RIGHTS;
        CMSG_FIRSTHDR(&mh)->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(CMSG_FIRSTHDR(&mh)), &fd, sizeof(int));
    }
    while ((w = sendmsg(s, &mh, MSG_NOSIGNAL)) < 0 && errno == EINTR)
        ;
    return w == (ssize_t)n ? SW_OK : SW_EIO;
}

/* Takes the first passed fd; closes any others (a peer may send more than one). */
static int take_fds(struct msghdr *mh)
{
    int got = -1;

    for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
        size_t k;
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < k; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
            if (got < 0)
                got = fd;
            else
                close(fd);
        }
    }
    return got;
}

int ssh_local_recv(int s, void *buf, size_t cap, size_t *n, int *fd)
{
    union {
        struct cmsghdr h;
        char b[CMSG_SPACE(4 * sizeof(int))];
    } ctl;
    struct iovec iov = { .iov_base = buf, .iov_len = cap };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b,
                         .msg_controllen = sizeof(ctl.b) };
    ssize_t r;

    *fd = -1;
    while ((r = recvmsg(s, &mh, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR)
        ;
    if (r < 0)
        return SW_EIO;
    *fd = take_fds(&mh);
    if (r == 0 && *fd < 0)
        return SW_ENOTFOUND;
    if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
        if (*fd >= 0)
            close(*fd);
        *fd = -1;
        return SW_EPROTO;
    }
    *n = (size_t)r;
    return SW_OK;
}
