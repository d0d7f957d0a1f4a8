/* msg-peer — a messaging client for tests and benchmarks.
 *
 *   msg-peer [--key-file F] [--discovery URL] [--server PK@HOST:PORT]... listen PORT
 *       accepts streams on PORT and echoes every byte back (a thread per stream)
 *   msg-peer ... dial PK PORT [--bytes N] [--streams K]
 *       opens K streams to PK:PORT, sends N random bytes on each, reads the echo, checks it
 *       byte for byte, prints one line of figures and exits 0 on success
 * Prints "ready <pk>" on stdout once connected. */
#include "common/clock.h"
#include "common/keys.h"
#include "common/log.h"
#include "common/msg_client.h"

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_SERVERS 8
#define MAX_STREAMS 64
#define CHUNK 65536

struct dial_job {
    struct sw_msg_client *client;
    struct sw_pk pk;
    uint16_t port;
    size_t bytes;
    int ok;
    double open_ms;
};

static int parse_server(const char *s, struct sw_msg_server_addr *out)
{
    const char *at = strchr(s, '@');
    char hex[SW_PK_HEX_LEN + 1];
    if (!at || at - s != SW_PK_HEX_LEN || strlen(at + 1) >= sizeof(out->address))
        return -1;
    memcpy(hex, s, SW_PK_HEX_LEN);
    hex[SW_PK_HEX_LEN] = '\0';
    if (sw_pk_from_hex(&out->pk, hex, "--server", NULL))
        return -1;
    snprintf(out->address, sizeof(out->address), "%s", at + 1);
    return 0;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static void *echo_main(void *arg)
{
    int fd = (int)(intptr_t)arg;
    uint8_t *buf = malloc(CHUNK);
    ssize_t n;
    while (buf && (n = read(fd, buf, CHUNK)) > 0)
        if (write_all(fd, buf, (size_t)n))
            break;
    free(buf);
    close(fd);
    return NULL;
}

static int run_listen(struct sw_msg_client *c, uint16_t port)
{
    struct sw_error err = { 0 };
    int lfd;
    if (sw_msg_listen(c, port, &lfd, &err)) {
        fprintf(stderr, "msg-peer: listen: %s\n", err.msg);
        return 1;
    }
    for (;;) {
        int fd;
        struct sw_pk remote;
        uint16_t rport;
        pthread_t t;
        if (sw_msg_accept(lfd, -1, &fd, &remote, &rport, &err)) {
            fprintf(stderr, "msg-peer: accept: %s\n", err.msg);
            return 1;
        }
        if (pthread_create(&t, NULL, echo_main, (void *)(intptr_t)fd) == 0)
            pthread_detach(t);
        else
            close(fd);
    }
}

struct reader_arg {
    int fd;
    const uint8_t *expect;
    size_t bytes;
    int ok;
};

static void *reader_main(void *arg)
{
    struct reader_arg *r = arg;
    uint8_t *buf = malloc(CHUNK);
    size_t got = 0;
    ssize_t n;
    r->ok = 0;
    while (buf && got < r->bytes && (n = read(r->fd, buf, CHUNK)) > 0) {
        if ((size_t)n > r->bytes - got || memcmp(buf, r->expect + got, (size_t)n) != 0)
            break;
        got += (size_t)n;
    }
    r->ok = got == r->bytes;
    free(buf);
    return NULL;
}

static void *dial_main(void *arg)
{
    struct dial_job *j = arg;
    struct sw_error err = { 0 };
    struct reader_arg r = { 0 };
    pthread_t reader;
    uint8_t *data = malloc(j->bytes ? j->bytes : 1);
    int fd = -1, refusal = 0;
    int64_t t0 = sw_mono_ns();

    j->ok = 0;
    if (!data)
        return NULL;
    randombytes_buf(data, j->bytes);
    if (sw_msg_dial(j->client, &j->pk, j->port, 0, &fd, &refusal, &err)) {
        fprintf(stderr, "msg-peer: dial: %s\n", err.msg);
        free(data);
        return NULL;
    }
    j->open_ms = (double)(sw_mono_ns() - t0) / 1e6;
    r = (struct reader_arg){ fd, data, j->bytes, 0 };
    pthread_create(&reader, NULL, reader_main, &r);
    for (size_t off = 0; off < j->bytes; off += CHUNK)
        if (write_all(fd, data + off, j->bytes - off < CHUNK ? j->bytes - off : CHUNK))
            break;
    shutdown(fd, SHUT_WR);
    pthread_join(reader, NULL);
    close(fd);
    j->ok = r.ok;
    free(data);
    return NULL;
}

static int run_dial(struct sw_msg_client *c, const char *pk_hex, uint16_t port, size_t bytes, int streams)
{
    struct dial_job jobs[MAX_STREAMS];
    pthread_t th[MAX_STREAMS];
    struct sw_pk pk;
    struct sw_error err = { 0 };
    int64_t t0;
    double secs, open_max = 0;
    int ok = 0;

    if (sw_pk_from_hex(&pk, pk_hex, "PK", &err)) {
        fprintf(stderr, "msg-peer: %s\n", err.msg);
        return 2;
    }
    t0 = sw_mono_ns();
    for (int i = 0; i < streams; i++) {
        jobs[i] = (struct dial_job){ c, pk, port, bytes, 0, 0 };
        pthread_create(&th[i], NULL, dial_main, &jobs[i]);
    }
    for (int i = 0; i < streams; i++) {
        pthread_join(th[i], NULL);
        ok += jobs[i].ok;
        if (jobs[i].open_ms > open_max)
            open_max = jobs[i].open_ms;
    }
    secs = (double)(sw_mono_ns() - t0) / 1e9;
    printf("%s streams=%d ok=%d bytes_each=%zu seconds=%.3f MBps=%.1f open_ms_max=%.2f\n",
           ok == streams ? "ok" : "FAILED", streams, ok, bytes, secs,
           (double)bytes * streams * 2 / secs / 1e6, open_max);
    return ok == streams ? 0 : 1;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "key-file", required_argument, NULL, 'k' }, { "discovery", required_argument, NULL, 'd' },
        { "server", required_argument, NULL, 's' },   { "bytes", required_argument, NULL, 'b' },
        { "streams", required_argument, NULL, 'n' },  { NULL, 0, NULL, 0 },
    };
    struct sw_msg_server_addr servers[MAX_SERVERS];
    struct sw_msg_client_config cfg = { 0 };
    struct sw_msg_client *client = NULL;
    struct sw_error err = { 0 };
    const char *key_file = NULL;
    size_t bytes = 1 << 20;
    int streams = 1, c, rc;
    bool created;
    char hex[SW_PK_HEX_LEN + 1];

    sw_log_init("msg-peer");
    sw_crypto_init();
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'k': key_file = optarg; break;
        case 'd': cfg.discovery_url = optarg; break;
        case 's':
            if (cfg.n_fixed_servers == MAX_SERVERS || parse_server(optarg, &servers[cfg.n_fixed_servers])) {
                fprintf(stderr, "msg-peer: --server wants PK@HOST:PORT\n");
                return 2;
            }
            cfg.n_fixed_servers++;
            break;
        case 'b': bytes = strtoull(optarg, NULL, 10); break;
        case 'n': streams = atoi(optarg); break;
        default: return 2;
        }
    }
    if (streams < 1 || streams > MAX_STREAMS || optind >= argc) {
        fprintf(stderr, "usage: msg-peer [--key-file F] [--discovery URL] [--server PK@HOST:PORT] "
                        "listen PORT | dial PK PORT [--bytes N] [--streams K]\n");
        return 2;
    }
    if (key_file ? sw_keyfile_load_or_create(key_file, &cfg.kp, &created, &err) : sw_keypair_generate(&cfg.kp)) {
        fprintf(stderr, "msg-peer: key: %s\n", err.msg);
        return 1;
    }
    cfg.servers = servers;
    cfg.n_servers = cfg.n_fixed_servers ? (unsigned)cfg.n_fixed_servers : 0;
    if (sw_msg_client_start(&cfg, &client, &err) || sw_msg_client_wait_ready(client, 15000)) {
        fprintf(stderr, "msg-peer: start: %s\n", err.msg[0] ? err.msg : "no session within 15 s");
        return 1;
    }
    sw_pk_to_hex(&cfg.kp.pk, hex);
    printf("ready %s\n", hex);
    fflush(stdout);
    if (strcmp(argv[optind], "listen") == 0 && optind + 1 < argc)
        rc = run_listen(client, (uint16_t)atoi(argv[optind + 1]));
    else if (strcmp(argv[optind], "dial") == 0 && optind + 2 < argc)
        rc = run_dial(client, argv[optind + 1], (uint16_t)atoi(argv[optind + 2]), bytes, streams);
    else
        rc = 2;
    sw_msg_client_stop(client);
    sw_keypair_wipe(&cfg.kp);
    return rc;
}
