/* helloworld — the smallest Skywire app (docs/routing.md §5).
 *
 *   helloworld                 server: listens on $SKYWIRE_APP_PORT (default 1) and answers
 *                              "pong" to every "ping" on each connection
 *   helloworld PK [PORT]       client: dials PK:PORT (default 1), sends "ping", prints the reply
 *
 * Both talk to the visor through $SKYWIRE_APP_SOCKET (set by the visor for its apps). */
#include "common/keys.h"
#include "common/num.h"
#include "common/opts.h"
#include "common/stream_io.h"
#include "visor/app/app.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const struct sw_opts cli = {
    .prog = "helloworld", .dash = "-", .synopsis = "[PK [PORT]]", .max_args = 2,
    .args_help = "  (none)     answer \"pong\" to \"ping\" on $SKYWIRE_APP_PORT (default 1)\n"
                 "  PK [PORT]  dial PK's app PORT (default 1), send \"ping\", print the reply\n",
};

static void *serve(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[4];
    size_t got;

    while (sw_io_read_full(fd, buf, sizeof(buf), SW_IO_NO_LIMIT, &got) == SW_OK) {
        if (memcmp(buf, "ping", 4) != 0 || sw_io_write_all(fd, "pong", 4, SW_IO_NO_LIMIT))
            break;
    }
    close(fd);
    return NULL;
}

static int server(void)
{
    struct sw_error err = { 0 };
    uint16_t port;
    int lfd, fd;

    if (sw_app_own_port(1, &port, &err)) {
        fprintf(stderr, "helloworld: %s\n", err.msg);
        return 2;
    }
    if (sw_app_listen(NULL, port, &lfd, &err)) {
        fprintf(stderr, "helloworld: listen: %s\n", err.msg);
        return 1;
    }
    printf("helloworld: listening on port %u\n", port);
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
    long port = 1;
    char buf[5] = { 0 };
    size_t got;
    int fd, rc;

    if (sw_pk_from_hex(&pk, pkhex, "PK", &err) || (portstr && sw_parse_long(portstr, 1, 65535, &port))) {
        sw_opts_usage(&cli, stderr);
        return 2;
    }
    if (sw_app_dial(NULL, &pk, (uint16_t)port, &fd, &err)) {
        fprintf(stderr, "helloworld: dial: %s\n", err.msg);
        return 1;
    }
    if (sw_io_write_all(fd, "ping", 4, SW_IO_NO_LIMIT)) {
        fprintf(stderr, "helloworld: send failed\n");
        return 1;
    }
    rc = sw_io_read_full(fd, buf, 4, SW_IO_NO_LIMIT, &got);
    close(fd);
    if (rc) {
        fprintf(stderr, "helloworld: no reply\n");
        return 1;
    }
    printf("%s\n", buf);
    return 0;
}

int main(int argc, char **argv)
{
    int first, rc;

    signal(SIGPIPE, SIG_IGN);
    if ((rc = sw_opts_main(&cli, argc, argv, &first)) != SW_OPTS_CONTINUE)
        return rc;
    if (first == argc)
        return server();
    return client(argv[first], first + 1 < argc ? argv[first + 1] : NULL);
}
