/* session.c — the SSH server's relay between a route connection and its child (session.h).
 *
 * Every buffer here is bounded and the loop never blocks (poll, non-blocking writes):
 *  - output: frames for the client wait in s->out (two frames at most); the child's output is
 *    read only while a whole frame fits there. The route connection is flow-controlled end to
 *    end, so a client that reads slowly makes the route stop taking our writes, s->out stays
 *    full and the child blocks on its stdout: no window of our own is needed this way.
 *  - stdin: the client sends at most SSH_WINDOW stdin bytes we have not acknowledged (ACK
 *    frames, sent as the child takes them), so s->pend never holds more and we can always
 *    read the route connection: RESIZE, STDIN_EOF and the client's departure are seen at
 *    once even while the child does not read its stdin (they would otherwise wait behind
 *    stdin bytes in the same stream). */
#include "apps/ssh/session.h"

#include "apps/ssh/frame_io.h"
#include "apps/ssh/spawn.h"
#include "common/bytes.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/log.h"
#include "common/stream_io.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define DRAIN_MS 2000   /* after the child exits: output idle this long (client keeping up) ends it */
#define KILL_GRACE_MS 500
#define ACK_LEN (SSH_HDR_LEN + 4)
#define OUTPUT_MIN (SSH_HDR_LEN + SSH_FRAME_MAX + ACK_LEN) /* room to read the child's output */
#define OUT_CAP (SSH_HDR_LEN + SSH_FRAME_MAX + OUTPUT_MIN)

struct sess {
    int rfd;
    const char *who;
    struct ssh_child ch;
    int pidfd;     /* readable when the child exits; -1 without pidfd_open (polled then) */
    bool exited;   /* the child exited; it stays a zombie (its group ID pinned) until kill_child */
    bool drained_late;
    int status;
    int64_t quiet_since; /* monotonic ms after the exit: last output read, or s->out full */
    uint8_t *pend; /* stdin bytes for the child (at most SSH_WINDOW) */
    size_t pend_len;
    bool in_eof;   /* the client sent STDIN_EOF */
    size_t ack_due; /* stdin bytes the child took (or that were dropped), not yet acknowledged */
    uint8_t *out;  /* frames for the client, not yet written (whole frames, OUT_CAP at most) */
    size_t out_off, out_len;
    struct ssh_rbuf *rb;
};

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* Ends our direction (the client reads EOF after our last frame) and reads and drops until the
 * client closes, at most SSH_LINGER_MS: closing with its bytes unread would reset the route
 * connection, and a reset may drop what is still on its way to the client. */
static void linger(int fd)
{
    char junk[512];
    struct pollfd pf = { .fd = fd, .events = POLLIN };
    int64_t end = sw_deadline_ms(SSH_LINGER_MS);
    int left;

    shutdown(fd, SHUT_WR);
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

/* The first frame, within SSH_REQUEST_TIMEOUT_MS. *version: the version byte of a request
 * frame, 0 when none came. */
static int read_request(struct sess *s, struct ssh_request *req, uint8_t *version)
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
    *version = f.type == SSH_F_REQUEST && f.len > 0 ? f.data[0] : 0;
    return ssh_request_parse(&f, req);
}

/* Room left in s->out (what waits is moved to the front first). */
static size_t out_room(struct sess *s)
{
    if (s->out_off > 0) {
        memmove(s->out, s->out + s->out_off, s->out_len);
        s->out_off = 0;
    }
    return OUT_CAP - s->out_len;
}

/* Appends one frame to s->out; the caller made sure it fits. */
static void out_frame(struct sess *s, uint8_t type, const void *data, size_t n)
{
    size_t len = 0;

    out_room(s);
    ssh_frame_encode(s->out + s->out_len, OUT_CAP - s->out_len, &len, type, data, n);
    s->out_len += len;
}

/* One ACK for the stdin bytes taken since the last one, when it fits (output reads always
 * leave room for one). */
static void out_ack(struct sess *s)
{
    uint8_t b[4];

    if (s->ack_due == 0 || out_room(s) < ACK_LEN)
        return;
    sw_put_u32(b, (uint32_t)s->ack_due);
    out_frame(s, SSH_F_ACK, b, sizeof(b));
    s->ack_due = 0;
}

/* Writes what the route connection takes now. SW_ENOTFOUND when the client went away. */
static int out_write(struct sess *s)
{
    ssize_t n;

    if (s->out_len == 0)
        return SW_OK;
    n = send(s->rfd, s->out + s->out_off, s->out_len, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) {
        s->out_off += (size_t)n;
        s->out_len -= (size_t)n;
    } else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        return SW_ENOTFOUND;
    }
    return SW_OK;
}

/* The last frame of a session after everything that waits in s->out, waiting within lim. */
static int send_last(struct sess *s, uint8_t type, const void *data, size_t n, struct sw_io_limit lim)
{
    if (s->out_len && sw_io_write_all(s->rfd, s->out + s->out_off, s->out_len, lim) != SW_OK)
        return SW_EIO;
    s->out_off = s->out_len = 0;
    out_frame(s, type, data, n);
    return sw_io_write_all(s->rfd, s->out, s->out_len, lim);
}

/* Writes what it can of the pending stdin bytes; what the child took (or what is dropped
 * because the child closed its stdin) is acknowledged with the next ACK. */
static int flush_stdin(struct sess *s)
{
    ssize_t w;

    if (s->ch.in_fd < 0) {
        s->ack_due += s->pend_len;
        s->pend_len = 0;
        return SW_OK;
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
    s->ack_due += (size_t)w;
eof:
    if (s->pend_len == 0 && s->in_eof && !s->ch.pty)
        close_fd(&s->ch.in_fd);
    return SW_OK;
}

static int on_stdin(struct sess *s, const struct ssh_frame *f)
{
    /* the client has at least pend_len + ack_due bytes unacknowledged */
    if (s->in_eof || s->pend_len + s->ack_due + f->len > SSH_WINDOW)
        return SW_EPROTO;
    memcpy(s->pend + s->pend_len, f->data, f->len);
    s->pend_len += f->len;
    return flush_stdin(s);
}

static int on_frame(struct sess *s, const struct ssh_frame *f)
{
    uint16_t rows, cols;

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
    default:
        return SW_EPROTO;
    }
}

/* Handles the complete frames in the buffer; SW_EPROTO on a bad one. */
static int drain_frames(struct sess *s)
{
    struct ssh_frame f;
    int rc;

    while ((rc = ssh_rbuf_next(s->rb, &f)) == SW_OK)
        if (on_frame(s, &f) != SW_OK)
            return SW_EPROTO;
    return rc == SSH_MORE ? SW_OK : SW_EPROTO;
}

/* Reads from the client; SW_ENOTFOUND when it went away. */
static int on_route(struct sess *s)
{
    if (ssh_rbuf_fill(s->rb, s->rfd) != SW_OK)
        return SW_ENOTFOUND;
    return drain_frames(s);
}

/* One read of the child's stdout (or PTY) or stderr into a frame in s->out. */
static void on_output(struct sess *s, int *fd, uint8_t type)
{
    uint8_t *h;
    ssize_t n;

    if (out_room(s) < OUTPUT_MIN) /* the other output took the room in this round */
        return;
    h = s->out + s->out_len;
    n = read(*fd, h + SSH_HDR_LEN, SSH_FRAME_MAX);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) { /* EOF; a PTY whose slave side is closed reads EIO */
        close_fd(fd);
        return;
    }
    h[0] = type;
    sw_put_u32(h + 1, (uint32_t)n);
    s->out_len += SSH_HDR_LEN + (size_t)n;
    s->quiet_since = sw_mono_ms();
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
    bool room;

    out_ack(s);
    room = out_room(s) >= OUTPUT_MIN;
    /* the route connection is always read: pend has room for whatever the client may send */
    pf[n++] = (struct pollfd){ .fd = s->rfd, .events = (short)(POLLIN | (s->out_len ? POLLOUT : 0)) };
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
    if (pf[0].revents & (POLLIN | POLLHUP | POLLERR))
        rc = on_route(s);
    if (rc == SW_OK && i_out >= 0 && pf[i_out].revents)
        on_output(s, &s->ch.out_fd, SSH_F_STDOUT);
    if (rc == SW_OK && i_err >= 0 && pf[i_err].revents)
        on_output(s, &s->ch.err_fd, SSH_F_STDERR);
    if (rc == SW_OK && i_in >= 0 && pf[i_in].revents)
        rc = flush_stdin(s);
    if (rc == SW_OK)
        rc = out_write(s); /* what the reads above added, at once */
    if (rc != SW_OK)
        return rc;
    child_exited(s);
    if (s->exited && s->ch.out_fd < 0 && s->ch.err_fd < 0)
        return 1;
    if (out_room(s) < OUTPUT_MIN) /* a slow reader is not an idle output */
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
    /* the output still in s->out, then the status: as long as the client takes to read them
     * (it goes on reading; if it goes away the write fails) */
    return send_last(s, SSH_F_EXIT, b, sizeof(b), SW_IO_NO_LIMIT);
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
    uint8_t version = 0;
    char text[160];
    int rc;

    s.rb = calloc(1, sizeof(*s.rb));
    s.pend = malloc(SSH_WINDOW);
    s.out = malloc(OUT_CAP);
    if (!req || !s.rb || !s.pend || !s.out) {
        ssh_refuse(fd, "SSH: out of memory");
        fd = -1;
        goto out;
    }
    if ((rc = read_request(&s, req, &version)) != SW_OK && version && version != SSH_PROTO_VERSION) {
        sw_log_warn("session of %s: protocol version %u, this server speaks %u", who, version,
                    SSH_PROTO_VERSION);
        snprintf(text, sizeof(text), "SSH: the client speaks protocol version %u, this server %u "
                 "(SSH-cli and SSH must be of the same release)", version, SSH_PROTO_VERSION);
        ssh_refuse(fd, text);
        fd = -1;
        goto out;
    }
    if (rc != SW_OK) {
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
        static const char proto_err[] = "SSH: protocol error";
        sw_log_warn("session of %s: protocol error; session ended", who);
        send_last(&s, SSH_F_ERROR, proto_err, sizeof(proto_err) - 1, sw_io_within(SSH_LINGER_MS, NULL));
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
    free(s.out);
    free(s.rb);
    free(req);
}
