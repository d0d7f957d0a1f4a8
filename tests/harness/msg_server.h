/* msg_server.h — a messaging-server run by a test or a benchmark, with a key written up
 * front (so the caller knows the server's public key) and ports picked once (so it can be
 * restarted on the same addresses). */
#ifndef SW_TEST_MSG_SERVER_H
#define SW_TEST_MSG_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/keys.h"
#include "tests/harness/members.h"

struct th_msg_server {
    /* set by the caller */
    const char *name;         /* names the files: SW_TEST_LOG_DIR/<prefix>-<name>.key/.log */
    const char *max_sessions; /* --max-sessions; NULL: "200" */
    /* private network (NULL: open, as by default): th_msg_server_init signs the server's key
     * (role messaging-server) into certfile; --revocations SRC, polled every refresh ms */
    const struct th_network *net;
    const char *revocations, *revocations_refresh_ms;
    /* set by th_msg_server_init */
    struct sw_keypair kp;
    uint16_t port, http_port;
    char addr[32];      /* 127.0.0.1:port, the relay address */
    char http_base[64]; /* http://127.0.0.1:http_port */
    char keyfile[512], log[512], certfile[512];
    pid_t pid; /* while running */
};

/* Makes the key (written to the key file) and the ports, then th_msg_server_start. false on
 * failure, with the reason on stderr. */
bool th_msg_server_init(struct th_msg_server *s, const char *prefix, const char *discovery);
/* Spawns the server and waits for its /health; with a discovery base URL it registers there
 * (public address = addr) and this waits (5 s at most) until its entry is there. false on
 * failure. */
bool th_msg_server_start(struct th_msg_server *s, const char *discovery);

#endif
