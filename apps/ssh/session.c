/* session.c — the SSH server's relay between a route connection and its child (session.h).
 *
 * Flow control: each side keeps at most SSH_WINDOW data bytes unacknowledged (ACK frames),
 * because a route has no back-pressure of its own toward the far end. The server stops
 * reading the child's output while its window is full, and the client never sends more
 * stdin than the server has room for, so every buffer here is bounded. */
#include "apps/ssh/session.h"

#include "apps/ssh/frame_io.h"
#include "apps/ssh/spawn.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/log.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define DRAIN_MS 2000   /* after the child exits: output idle this long (window open) ends it */
#define KILL_GRACE_MS 500

struct sess {
    int rfd;
    const char *who;
    struct ssh_child ch;
    int pidfd;     /* readable when the child exits; -1 without pidfd_open (polled then) */
    bool exited;   /* the child exited; it stays a zombie (its group ID pinned) until kill_child */
    bool drained_late;
    int status;
    int64_t quiet_since; /* monotonic ms after the exit: last output read, or window full */
    uint8_t *pend; /* stdin bytes for the child (at most SSH_WINDOW) */
    size_t pend_len;
    bool in_eof;   /* the client sent STDIN_EOF */
    size_t out_unacked;
    struct ssh_rbuf *rb;
};

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* Reads and drops until the peer closes, at most SSH_LINGER_MS. */
static void linger(int fd)
{
    char junk[512];
    struct pollfd pf = { .fd = fd, .events = POLLIN };
    int64_t end = sw_deadline_ms(SSH_LINGER_MS);
    int left;

    while ((left = sw_ms_left(end)) > 0 && poll(&pf, 1, left) > 0)
        if (read(fd, junk, sizeof(junk)) <= 0)
            break;
}

void ssh_refuse(int fd, const char *text)
{
    if (ssh_send_error(fd, "%s", text) == SW_OK)
        linger(fd);
    close(fd);
}

void ssh_refuse_now(int fd, const char *text)
{
    ssh_send_error(fd, "%s", text);
    close(fd);
}

/* The first frame, within SSH_REQUEST_TIMEOUT_MS. */
static int read_request(struct sess *s, struct ssh_request *req)
{
    int64_t end = sw_deadline_ms(SSH_REQUEST_TIMEOUT_MS);
    struct ssh_frame f;
    int rc;

    while ((rc = ssh_rbuf_next(s->rb, &f)) == SSH_MORE) {
        struct pollfd pf = { .fd = s->rfd, .events = POLLIN };
        int left = sw_ms_left(end);
        if (left == 0 || poll(&pf, 1, left) <= 0)
            return SW_ETIMEDOUT;
        if ((rc = ssh_rbuf_fill(s->rb, s->rfd)) != SW_OK)
            return rc;
    }
    if (rc != SW_OK)
        return rc;
    return ssh_request_parse(&f, req);
}

static int ack(struct sess *s, size_t n)
{
    return n ? ssh_send_u32(s->rfd, SSH_F_ACK, (uint32_t)n) : SW_OK;
}

/* Writes what it can of the pending stdin bytes; acknowledges what the child took (or what
 * is dropped because the child closed its stdin). */
static int flush_stdin(struct sess *s)
{
    ssize_t w;

    if (s->ch.in_fd < 0) {
        size_t n = s->pend_len;
        s->pend_len = 0;
        return ack(s, n);
    }
    if (s->pend_len == 0)
        goto eof;
    w = write(s->ch.in_fd, s->pend, s->pend_len);
    if (w < 0 && (errno == EAGAIN || errno == EINTR))
        return SW_OK;
    if (w <= 0) { /* the child closed its stdin (EPIPE): drop the rest */
        close_fd(&s->ch.in_fd);
        return flush_stdin(s);
    }
    memmove(s->pend, s->pend + w, s->pend_len - (size_t)w);
    s->pend_len -= (size_t)w;
    if (ack(s, (size_t)w))
        return SW_EIO;
eof:
    if (s->pend_len == 0 && s->in_eof && !s->ch.pty)
        close_fd(&s->ch.in_fd);
    return SW_OK;
}

static int on_stdin(struct sess *s, const struct ssh_frame *f)
{
    if (s->in_eof || s->pend_len + f->len > SSH_WINDOW)
        return SW_EPROTO;
    memcpy(s->pend + s->pend_len, f->data, f->len);
    s->pend_len += f->len;
    return flush_stdin(s);
}

static int on_frame(struct sess *s, const struct ssh_frame *f)
{
    uint16_t rows, cols;
    uint32_t n;

    switch (f->type) {
    case SSH_F_STDIN:
        return on_stdin(s, f);
    case SSH_F_STDIN_EOF:
        if (s->in_eof)
            return SW_EPROTO;
        s->in_eof = true;
        return flush_stdin(s);
    case SSH_F_RESIZE:
        if (ssh_resize_parse(f, &rows, &cols))
            return SW_EPROTO;
        if (s->ch.pty) { /* the kernel sends SIGWINCH to the foreground group */
            struct winsize ws = { .ws_row = rows, .ws_col = cols };
            ioctl(s->ch.out_fd, TIOCSWINSZ, &ws);
        }
        return SW_OK;
    case SSH_F_ACK:
        if (ssh_ack_parse(f, &n) || n > s->out_unacked)
            return SW_EPROTO;
        s->out_unacked -= n;
        return SW_OK;
    default:
        return SW_EPROTO;
    }
}

/* Handles the complete frames in the buffer; SW_EPROTO on a bad one, SW_ENOTFOUND when the
 * client cannot be written to. */
static int drain_frames(struct sess *s)
{
    struct ssh_frame f;
    int rc;

    while ((rc = ssh_rbuf_next(s->rb, &f)) == SW_OK)
        if ((rc = on_frame(s, &f)) != SW_OK)
            return rc == SW_EIO ? SW_ENOTFOUND : SW_EPROTO;
    return rc == SSH_MORE ? SW_OK : SW_EPROTO;
}

/* Reads from the client; SW_ENOTFOUND when it went away. */
static int on_route(struct sess *s)
{
    if (ssh_rbuf_fill(s->rb, s->rfd) != SW_OK)
        return SW_ENOTFOUND;
    return drain_frames(s);
}

/* One read of the child's stdout (or PTY) or stderr, sent as a frame. */
static int on_output(struct sess *s, int *fd, uint8_t type)
{
    uint8_t buf[SSH_FRAME_MAX];
    size_t room = SSH_WINDOW - s->out_unacked;
    ssize_t n;

    if (room == 0) /* the other output filled the window in this round: a read of 0 is no EOF */
        return SW_OK;
    n = read(*fd, buf, room < sizeof(buf) ? room : sizeof(buf));
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return SW_OK;
    if (n <= 0) { /* EOF; a PTY whose slave side is closed reads EIO */
        close_fd(fd);
        return SW_OK;
    }
    s->out_unacked += (size_t)n;
    s->quiet_since = sw_mono_ms();
    return ssh_send(s->rfd, type, buf, (size_t)n) ? SW_ENOTFOUND : SW_OK;
}

/* Notes the child's exit without reaping it (WNOWAIT): while the leader is a zombie, its
 * pid, which is also the group ID, cannot be reused, so kill_child may signal the group. */
static bool child_exited(struct sess *s)
{
    siginfo_t si;

    if (s->exited)
        return true;
    memset(&si, 0, sizeof(si));
    if (waitid(P_PID, (id_t)s->ch.pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == s->ch.pid) {
        s->exited = true;
        s->quiet_since = sw_mono_ms();
    }
    return s->exited;
}

/* One poll round. SW_OK to go on, 1 when the session is complete, else why it ended. */
static int step(struct sess *s)
{
    struct pollfd pf[5];
    int n = 0, i_out = -1, i_err = -1, i_in = -1, rc = SW_OK, timeout;
    bool room = s->out_unacked < SSH_WINDOW;

    pf[n++] = (struct pollfd){ .fd = s->rfd, .events = POLLIN };
    if (s->ch.out_fd >= 0 && room)
        i_out = n, pf[n++] = (struct pollfd){ .fd = s->ch.out_fd, .events = POLLIN };
    if (s->ch.err_fd >= 0 && room)
        i_err = n, pf[n++] = (struct pollfd){ .fd = s->ch.err_fd, .events = POLLIN };
    if (s->ch.in_fd >= 0 && s->pend_len > 0)
        i_in = n, pf[n++] = (struct pollfd){ .fd = s->ch.in_fd, .events = POLLOUT };
    if (!s->exited && s->pidfd >= 0)
        pf[n++] = (struct pollfd){ .fd = s->pidfd, .events = POLLIN };
    timeout = s->exited ? 100 : s->pidfd >= 0 ? 1000 : 20; /* the drain deadline, or waitpid */
    if (poll(pf, (nfds_t)n, timeout) < 0 && errno != EINTR)
        return SW_EIO;
    if (pf[0].revents)
        rc = on_route(s);
    if (rc == SW_OK && i_out >= 0 && pf[i_out].revents)
        rc = on_output(s, &s->ch.out_fd, SSH_F_STDOUT);
    if (rc == SW_OK && i_err >= 0 && pf[i_err].revents)
        rc = on_output(s, &s->ch.err_fd, SSH_F_STDERR);
    if (rc == SW_OK && i_in >= 0 && pf[i_in].revents)
        rc = flush_stdin(s) ? SW_ENOTFOUND : SW_OK;
    if (rc != SW_OK)
        return rc;
    child_exited(s);
    if (s->exited && s->ch.out_fd < 0 && s->ch.err_fd < 0)
        return 1;
    if (s->out_unacked >= SSH_WINDOW) /* a slow reader is not an idle output */
        s->quiet_since = sw_mono_ms();
    if (s->exited && sw_ms_since(s->quiet_since) > DRAIN_MS) {
        s->drained_late = true; /* something the child left behind holds its output */
        return 1;
    }
    return SW_OK;
}

/* Ends the child: a running one gets SIGHUP to its group, SIGKILL after a grace period; after
 * its exit the rest of the group gets SIGKILL when all (the client went away, or the output
 * was held open). Then reaps it (s->status). */
static void kill_child(struct sess *s, bool all)
{
    int64_t end = sw_deadline_ms(KILL_GRACE_MS);

    if (s->ch.pid <= 0)
        return;
    if (!child_exited(s)) {
        kill(-s->ch.pid, SIGHUP);
        while (sw_ms_left(end) > 0 && !child_exited(s))
            usleep(10000);
        all = true;
    }
    if (all)
        kill(-s->ch.pid, SIGKILL);
    while (waitpid(s->ch.pid, &s->status, 0) < 0 && errno == EINTR)
        ;
    s->ch.pid = -1;
}

static int send_exit(struct sess *s)
{
    uint8_t b[2] = { SSH_EXIT_CODE, 0 };

    if (WIFSIGNALED(s->status)) {
        b[0] = SSH_EXIT_SIGNAL;
        b[1] = (uint8_t)WTERMSIG(s->status);
    } else {
        b[1] = (uint8_t)WEXITSTATUS(s->status);
    }
    sw_log_info("session of %s ended: %s %u", s->who, b[0] ? "signal" : "exit status", b[1]);
    return ssh_send(s->rfd, SSH_F_EXIT, b, sizeof(b));
}

static void describe(const struct sess *s, const struct ssh_request *req)
{
    if (req->mode == SSH_MODE_SHELL)
        sw_log_info("session of %s: shell on a PTY (TERM=%s, %ux%u), pid %d", s->who,
                    req->term[0] ? req->term : "dumb", req->cols, req->rows, (int)s->ch.pid);
    else /* the command itself may hold secrets: only its size is logged */
        sw_log_info("session of %s: command (%zu bytes), pid %d", s->who, strlen(req->cmd),
                    (int)s->ch.pid);
}

static int relay(struct sess *s)
{
    int rc = drain_frames(s); /* frames that came in with the request */

    while (rc == SW_OK && (rc = step(s)) == SW_OK)
        ;
    return rc;
}

void ssh_session_run(int fd, const char *who, const char *shell_path)
{
    struct sess s = { .rfd = fd, .who = who, .pidfd = -1,
                      .ch = { .pid = -1, .in_fd = -1, .out_fd = -1, .err_fd = -1 } };
    struct ssh_request *req = calloc(1, sizeof(*req));
    struct sw_error err = { 0 };
    int rc;

    s.rb = calloc(1, sizeof(*s.rb));
    s.pend = malloc(SSH_WINDOW);
    if (!req || !s.rb || !s.pend) {
        ssh_refuse(fd, "SSH: out of memory");
        fd = -1;
        goto out;
    }
    if ((rc = read_request(&s, req)) != SW_OK) {
        sw_log_warn("session of %s: no valid request (%s)", who, sw_strerror(rc));
        ssh_refuse(fd, "SSH: bad or missing request");
        fd = -1;
        goto out;
    }
    if (ssh_spawn(req, shell_path, &s.ch, &err) != SW_OK) {
        sw_log_error("session of %s: %s", who, err.msg);
        kill_child(&s, true);
        ssh_refuse(fd, "SSH: the server could not start the session");
        fd = -1;
        goto out;
    }
    s.pidfd = (int)syscall(SYS_pidfd_open, s.ch.pid, 0);
    describe(&s, req);
    rc = relay(&s);
    kill_child(&s, rc != 1 || s.drained_late); /* a client gone after the exit: the group too */
    if (rc == 1) {
        if (send_exit(&s) == SW_OK)
            linger(fd);
    } else if (rc == SW_EPROTO) {
        sw_log_warn("session of %s: protocol error; session ended", who);
        ssh_send_error(fd, "SSH: protocol error");
    } else {
        sw_log_info("session of %s: the client went away; its processes were killed", who);
    }
out:
    close_fd(&s.pidfd);
    close_fd(&s.ch.in_fd);
    close_fd(&s.ch.out_fd);
    close_fd(&s.ch.err_fd);
    if (fd >= 0)
        close(fd);
    free(s.pend);
    free(s.rb);
    free(req);
}
