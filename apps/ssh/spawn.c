/* spawn.c — fork/exec of the SSH server's child (spawn.h). Everything the child needs
 * (argv, environment, paths) is prepared before fork: the server is multi-threaded, so
 * the child may only make async-signal-safe calls until execve. */
#include "apps/ssh/spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <pty.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

extern char **environ;

#define ENV_MAX 256

struct plan {
    char shell[256], home[256], user[64];
    char argv0[260];
    char *argv[4];
    char *envp[ENV_MAX + 8];
    char own[6][320]; /* the variables set here */
    size_t n_env;
};

/* The user's home, name and login shell (getpwuid_r: other threads may use the database). */
static void lookup_user(struct plan *p, const char *shell_path)
{
    struct passwd pw, *res = NULL;
    char buf[4096];

    snprintf(p->home, sizeof(p->home), "/");
    snprintf(p->user, sizeof(p->user), "%u", (unsigned)getuid());
    snprintf(p->shell, sizeof(p->shell), "/bin/sh");
    if (getpwuid_r(getuid(), &pw, buf, sizeof(buf), &res) == 0 && res) {
        if (pw.pw_dir && *pw.pw_dir)
            snprintf(p->home, sizeof(p->home), "%s", pw.pw_dir);
        snprintf(p->user, sizeof(p->user), "%s", pw.pw_name);
        if (pw.pw_shell && *pw.pw_shell && access(pw.pw_shell, X_OK) == 0)
            snprintf(p->shell, sizeof(p->shell), "%s", pw.pw_shell);
    }
    if (shell_path)
        snprintf(p->shell, sizeof(p->shell), "%s", shell_path);
}

static bool env_skipped(const char *e)
{
    static const char *const drop[] = { "SKYWIRE_", "TERM=", "HOME=", "USER=", "LOGNAME=",
                                        "SHELL=", "LINES=", "COLUMNS=" };
    for (size_t i = 0; i < sizeof(drop) / sizeof(drop[0]); i++)
        if (strncmp(e, drop[i], strlen(drop[i])) == 0)
            return true;
    return false;
}

static void env_add(struct plan *p, char *e)
{
    if (p->n_env < ENV_MAX + 7)
        p->envp[p->n_env++] = e;
}

/* The server's environment minus the visor's variables, plus the user's. */
static void build_env(struct plan *p, const struct ssh_request *req)
{
    bool has_path = false;
    size_t k = 0;

    for (char **e = environ; *e && p->n_env < ENV_MAX; e++) {
        has_path |= strncmp(*e, "PATH=", 5) == 0;
        if (!env_skipped(*e))
            env_add(p, *e);
    }
    snprintf(p->own[k], sizeof(p->own[k]), "HOME=%s", p->home);
    env_add(p, p->own[k++]);
    snprintf(p->own[k], sizeof(p->own[k]), "USER=%s", p->user);
    env_add(p, p->own[k++]);
    snprintf(p->own[k], sizeof(p->own[k]), "LOGNAME=%s", p->user);
    env_add(p, p->own[k++]);
    snprintf(p->own[k], sizeof(p->own[k]), "SHELL=%s", p->shell);
    env_add(p, p->own[k++]);
    if (req->mode == SSH_MODE_SHELL) {
        snprintf(p->own[k], sizeof(p->own[k]), "TERM=%s", req->term[0] ? req->term : "dumb");
        env_add(p, p->own[k++]);
    }
    if (!has_path) {
        snprintf(p->own[k], sizeof(p->own[k]), "PATH=/usr/local/bin:/usr/bin:/bin");
        env_add(p, p->own[k++]);
    }
    p->envp[p->n_env] = NULL;
}

static void build_argv(struct plan *p, const struct ssh_request *req)
{
    if (req->mode == SSH_MODE_SHELL) { /* "-bash": a login shell, as sshd starts it */
        const char *base = strrchr(p->shell, '/');
        snprintf(p->argv0, sizeof(p->argv0), "-%s", base ? base + 1 : p->shell);
        p->argv[0] = p->argv0;
        p->argv[1] = NULL;
    } else {
        snprintf(p->argv0, sizeof(p->argv0), "sh");
        p->argv[0] = p->argv0;
        p->argv[1] = (char *)"-c";
        p->argv[2] = (char *)req->cmd;
        p->argv[3] = NULL;
    }
}

/* In the child: default signal dispositions and mask, no inherited fds beyond 0-2, the home
 * directory, then exec. Async-signal-safe calls only. */
static void child_exec(const struct plan *p, const char *path)
{
    struct sigaction sa;
    sigset_t none;
    static const char msg[] = "SSH: cannot execute the shell\n";

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_DFL;
    for (int s = 1; s < NSIG; s++)
        sigaction(s, &sa, NULL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (syscall(SYS_close_range, 3u, ~0u, 0u) != 0)
        for (int fd = 3; fd < 4096; fd++)
            close(fd);
    if (chdir(p->home) != 0 && chdir("/") != 0)
        _exit(126);
    execve(path, p->argv, p->envp);
    if (write(2, msg, sizeof(msg) - 1) < 0)
        _exit(127);
    _exit(127);
}

static int set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ? -1 : 0;
}

static int spawn_pty(const struct plan *p, const struct ssh_request *req, struct ssh_child *c,
                     struct sw_error *err)
{
    struct winsize ws = { .ws_row = req->rows, .ws_col = req->cols };
    int master = -1;
    pid_t pid = forkpty(&master, NULL, NULL, &ws);

    if (pid < 0)
        return sw_error_set(err, SW_EIO, "cannot open a PTY: %s", strerror(errno));
    if (pid == 0)
        child_exec(p, p->shell);
    fcntl(master, F_SETFD, FD_CLOEXEC);
    c->pid = pid;
    c->pty = true;
    c->out_fd = master;
    c->err_fd = -1;
    c->in_fd = fcntl(master, F_DUPFD_CLOEXEC, 3);
    if (c->in_fd < 0 || set_nonblock(master)) { /* the caller kills the group */
        c->in_fd = -1;
        return sw_error_set(err, SW_EIO, "PTY setup: %s", strerror(errno));
    }
    return SW_OK;
}

static void close_pair(int p[2])
{
    if (p[0] >= 0)
        close(p[0]);
    if (p[1] >= 0)
        close(p[1]);
}

static int spawn_pipes(const struct plan *p, struct ssh_child *c, struct sw_error *err)
{
    int in[2] = { -1, -1 }, out[2] = { -1, -1 }, er[2] = { -1, -1 };
    pid_t pid;

    if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC) || pipe2(er, O_CLOEXEC)) {
        sw_error_set(err, SW_EIO, "pipe: %s", strerror(errno));
        goto fail;
    }
    if ((pid = fork()) < 0) {
        sw_error_set(err, SW_EIO, "fork: %s", strerror(errno));
        goto fail;
    }
    if (pid == 0) {
        setsid();
        if (dup2(in[0], 0) < 0 || dup2(out[1], 1) < 0 || dup2(er[1], 2) < 0)
            _exit(126);
        child_exec(p, "/bin/sh");
    }
    close(in[0]);
    close(out[1]);
    close(er[1]);
    *c = (struct ssh_child){ .pid = pid, .in_fd = in[1], .out_fd = out[0], .err_fd = er[0] };
    set_nonblock(c->in_fd);
    set_nonblock(c->out_fd);
    set_nonblock(c->err_fd);
    return SW_OK;
fail:
    close_pair(in);
    close_pair(out);
    close_pair(er);
    return SW_EIO;
}

int ssh_spawn(const struct ssh_request *req, const char *shell_path, struct ssh_child *c,
              struct sw_error *err)
{
    struct plan *p = calloc(1, sizeof(*p));
    int rc;

    if (!p)
        return sw_error_set(err, SW_ENOMEM, "out of memory");
    *c = (struct ssh_child){ .pid = -1, .in_fd = -1, .out_fd = -1, .err_fd = -1 };
    lookup_user(p, shell_path);
    build_env(p, req);
    build_argv(p, req);
    rc = req->mode == SSH_MODE_SHELL ? spawn_pty(p, req, c, err) : spawn_pipes(p, c, err);
    free(p);
    return rc;
}
