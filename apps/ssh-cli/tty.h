/* tty.h — SSH-cli's terminal handling: raw mode with a guaranteed restore, and signals
 * delivered through a self-pipe so the main poll loop handles them (never in a handler). */
#ifndef SW_SSH_CLI_TTY_H
#define SW_SSH_CLI_TTY_H

#include <stdbool.h>
#include <stdint.h>

/* Puts fd 0 in raw mode (when it is a terminal); the saved mode is restored by
 * ssh_cli_tty_restore, which is also registered with atexit. 0, or -1 when fd 0 is no tty. */
int ssh_cli_tty_raw(void);
/* Restores the saved mode; safe to call more than once or without ssh_cli_tty_raw. */
void ssh_cli_tty_restore(void);
/* The terminal size of fd 0 (24x80 when unknown). */
void ssh_cli_tty_size(uint16_t *rows, uint16_t *cols);

/* Routes SIGWINCH, SIGINT, SIGTERM, SIGHUP and SIGQUIT to a pipe (one byte: the signal
 * number) and ignores SIGPIPE. Returns the pipe's read end, or -1. */
int ssh_cli_signals_init(void);

#endif
