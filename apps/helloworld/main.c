/* helloworld — the smallest Skywire app (docs/routing.md §5).
 *
 *   helloworld                 server: listens on $SKYWIRE_APP_PORT (default 1) and answers
 *                              "pong" to every "ping" on each connection
 *   helloworld PK [PORT]       client: dials PK:PORT (default 1), sends "ping", prints the reply
 *
 * Both talk to the visor through $SKYWIRE_APP_SOCKET (set by the visor for its apps). */
#include "common/keys.h"
#include "visor/app/app.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void *serve(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[4];
    size_t have = 0;
    ssize_t n;

    while ((n = read(fd, buf + have, sizeof(buf) - have)) > 0) {
        have += (size_t)n;
        if (have < sizeof(buf))
            continue;
        if (memcmp(buf, "ping", 4) != 0 || send(fd, "pong", 4, MSG_NOSIGNAL) != 4)
            break;
        have = 0;
    }
    close(fd);
    return NULL;
}

static int server(void)
{
    const char *p = getenv("SKYWIRE_APP_PORT");
    struct sw_error err = { 0 };
    unsigned long port = p ? strtoul(p, NULL, 10) : 1;
    int lfd, fd;

    if (port == 0 || port > 65535) {
        fprintf(stderr, "helloworld: bad SKYWIRE_APP_PORT\n");
        return 2;
    }
    if (sw_app_listen(NULL, (uint16_t)port, &lfd, &err)) {
        fprintf(stderr, "helloworld: listen: %s\n", err.msg);
        return 1;
    }
    printf("helloworld: listening on port %lu\n", port);
    fflush(stdout);
    for (;;) {
        struct sw_pk remote;
        uint16_t rport;
        char hex[SW_PK_HEX_LEN + 1];
        pthread_t th;

        if (sw_app_accept(lfd, -1, &fd, &remote, &rport, &err)) {
            fprintf(stderr, "helloworld: accept: %s\n", err.msg);
            return 1;
        }
        sw_pk_to_hex(&remote, hex);
        printf("helloworld: connection from %s:%u\n", hex, rport);
        fflush(stdout);
        if (pthread_create(&th, NULL, serve, (void *)(intptr_t)fd)) {
            close(fd);
            continue;
        }
        pthread_detach(th);
    }
}

static int client(const char *pkhex, const char *portstr)
{
    struct sw_error err = { 0 };
    struct sw_pk pk;
    unsigned long port = portstr ? strtoul(portstr, NULL, 10) : 1;
    char buf[5] = { 0 };
    size_t have = 0;
    ssize_t n;
    int fd;

    if (sw_pk_from_hex(&pk, pkhex, "PK", &err) || port == 0 || port > 65535) {
        fprintf(stderr, "usage: helloworld [PK [PORT]]\n");
        return 2;
    }
    if (sw_app_dial(NULL, &pk, (uint16_t)port, &fd, &err)) {
        fprintf(stderr, "helloworld: dial: %s\n", err.msg);
        return 1;
    }
    if (send(fd, "ping", 4, MSG_NOSIGNAL) != 4) {
        fprintf(stderr, "helloworld: send failed\n");
        return 1;
    }
    while (have < 4 && (n = read(fd, buf + have, 4 - have)) > 0)
        have += (size_t)n;
    close(fd);
    if (have < 4) {
        fprintf(stderr, "helloworld: no reply\n");
        return 1;
    }
    printf("%s\n", buf);
    return 0;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (argc == 1)
        return server();
    if (argc == 2 || argc == 3)
        return client(argv[1], argc == 3 ? argv[2] : NULL);
    fprintf(stderr, "usage: helloworld [PK [PORT]]\n");
    return 2;
}
