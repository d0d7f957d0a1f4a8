/* session.h — one SSH session on the server: request, child, relay, exit status. */
#ifndef SW_SSH_SESSION_H
#define SW_SSH_SESSION_H

#define SSH_REQUEST_TIMEOUT_MS 10000 /* the client's request frame */
#define SSH_LINGER_MS 5000           /* after the last frame: wait for the client to close */

/* Serves the route connection fd of an authorized client (who: its key in hex, for logs):
 * reads the request, starts the child (shell_path: -shell, may be NULL), relays stdin,
 * stdout, stderr and resizes until the child exits, then sends its status. When the client
 * goes away first, the child's process group gets SIGHUP, then SIGKILL. Closes fd. */
void ssh_session_run(int fd, const char *who, const char *shell_path);

/* Sends an ERROR frame and waits (bounded) for the peer to close, so that the text is not
 * lost in a route torn down under it. Closes fd. */
void ssh_refuse(int fd, const char *text);
/* The same without waiting: for refusals beyond the ones a server lets linger. */
void ssh_refuse_now(int fd, const char *text);

#endif
