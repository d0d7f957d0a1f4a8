/* tty.c — raw mode and signals for SSH-cli (tty.h). */
#include "apps/ssh-cli/tty.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

static struct termios saved;
static bool is_raw;
static int sig_wr = -1;

void ssh_cli_tty_restore(void)
{
    if (!is_raw)
        return;
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
    is_raw = false;
}

int ssh_cli_tty_raw(void)
{
    struct termios t;

    if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &saved) != 0)
        return -1;
    t = saved;
    cfmakeraw(&t);
    if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &t) != 0)
        return -1;
    is_raw = true;
    atexit(ssh_cli_tty_restore);
    return 0;
}

void ssh_cli_tty_size(uint16_t *rows, uint16_t *cols)
{
    struct winsize ws;

    *rows = 24;
    *cols = 80;
    if (ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0 && ws.ws_col > 0) {
        *rows = ws.ws_row;
        *cols = ws.ws_col;
    }
}

static void on_signal(int sig)
{
    int saved_errno = errno;
    unsigned char b = (unsigned char)sig;
    if (write(sig_wr, &b, 1) < 0) { /* pipe full: a resize or an exit is pending anyway */
    }
    errno = saved_errno;
}

int ssh_cli_signals_init(void)
{
    static const int sigs[] = { SIGWINCH, SIGINT, SIGTERM, SIGHUP, SIGQUIT };
    struct sigaction sa;
    int p[2];

    if (pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0)
        return -1;
    sig_wr = p[1];
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        sigaction(sigs[i], &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    return p[0];
}
