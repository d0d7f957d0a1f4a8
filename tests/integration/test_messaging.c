/* Integration tests of messaging: real messaging-discovery and messaging-server processes,
 * and in-process messaging clients (common/msg_client.h) relaying through them. */
#include "common/http_client.h"
#include "common/json.h"
#include "common/keys.h"
#include "common/log.h"
#include "common/msg_client.h"
#include "common/msg_entry.h"
#include "common/msg_proto.h"
#include "tests/harness/api_client.h"
#include "tests/harness/check_main.h"
#include "tests/harness/harness.h"
#include "tests/harness/msg_server.h"

#include <check.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MB (1024 * 1024)
#define N_MANY 50

static char md_base[64];
static struct th_msg_server s1 = { .name = "s1" }, s2 = { .name = "s2" }, s3 = { .name = "s3" };
static struct th_msg_server s_full = { .name = "s4", .max_sessions = "1" };

/* ---- daemons ------------------------------------------------------------------------ */

static void setup_die(const char *what)
{
    fprintf(stderr, "test_messaging setup: %s\n", what);
    th_cleanup();
    exit(EXIT_FAILURE);
}

/* Starts the server (again) and waits until its entry is in the discovery; false on failure. */
static bool server_start(struct th_msg_server *s)
{
    return th_msg_server_start(s, md_base);
}

/* Key, ports, then server_start; false on failure. */
static bool server_init(struct th_msg_server *s)
{
    return th_msg_server_init(s, "messaging-server", md_base);
}

static void start_network(void)
{
    const char *db = th_fresh_db("msg_it");
    uint16_t port = th_free_port();
    char addr[32], db_url[256];
    snprintf(db_url, sizeof(db_url), "%s", db);
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", port);
    snprintf(md_base, sizeof(md_base), "http://%s", addr);
    const char *argv[] = { th_bin("messaging-discovery"), "--addr", addr, "--db", db_url, "--threads", "8",
                           NULL };
    if (th_start_service(argv, port, th_log_path("msg-discovery.log")) <= 0)
        setup_die("messaging-discovery did not start");
    if (!server_init(&s1) || !server_init(&s2) || !server_init(&s3))
        setup_die("messaging-server did not start or register");
}

/* ---- clients ------------------------------------------------------------------------ */

static struct sw_msg_server_addr fixed_of(const struct th_msg_server *s)
{
    struct sw_msg_server_addr a;
    memset(&a, 0, sizeof(a));
    a.pk = s->kp.pk;
    snprintf(a.address, sizeof(a.address), "127.0.0.1:%u", s->port);
    return a;
}

/* n_fixed == 0: servers from the discovery. with_discovery: publish and look up there. */
static struct sw_msg_client *client_new_ex(const struct th_msg_server *const *fixed, size_t n_fixed, unsigned n,
                                           bool with_discovery, struct sw_pk *pk_out)
{
    struct sw_msg_client_config cfg;
    struct sw_msg_server_addr a[4];
    struct sw_msg_client *c = NULL;
    struct sw_error err = { 0 };

    memset(&cfg, 0, sizeof(cfg));
    ck_assert_int_eq(sw_keypair_generate(&cfg.kp), SW_OK);
    cfg.discovery_url = with_discovery ? md_base : NULL;
    cfg.n_servers = n;
    ck_assert_uint_le(n_fixed, 4);
    for (size_t i = 0; i < n_fixed; i++)
        a[i] = fixed_of(fixed[i]);
    cfg.servers = n_fixed ? a : NULL;
    cfg.n_fixed_servers = n_fixed;
    ck_assert_msg(sw_msg_client_start(&cfg, &c, &err) == SW_OK, "%s", err.msg);
    if (pk_out)
        *pk_out = cfg.kp.pk;
    sw_keypair_wipe(&cfg.kp);
    return c;
}

/* fixed == NULL: servers from the discovery. */
static struct sw_msg_client *client_new(const struct th_msg_server *fixed, unsigned n, struct sw_pk *pk_out)
{
    return client_new_ex(fixed ? &fixed : NULL, fixed ? 1 : 0, n, true, pk_out);
}

static void client_ready(struct sw_msg_client *c)
{
    ck_assert_int_eq(sw_msg_client_wait_ready(c, 15000), SW_OK);
}

static int dial(struct sw_msg_client *c, const struct sw_pk *pk, uint16_t port)
{
    struct sw_error err = { 0 };
    int fd = -1, refusal = 0;
    int rc = sw_msg_dial(c, pk, port, 10000, &fd, &refusal, &err);
    ck_assert_msg(rc == SW_OK, "dial failed: %s (%d)", err.msg, rc);
    return fd;
}

static int accept_one(int lfd, struct sw_pk *remote)
{
    struct sw_error err = { 0 };
    int fd = -1;
    ck_assert_msg(sw_msg_accept(lfd, 10000, &fd, remote, NULL, &err) == SW_OK, "accept: %s", err.msg);
    return fd;
}

static int listen_on(struct sw_msg_client *c, uint16_t port)
{
    struct sw_error err = { 0 };
    int fd = -1;
    ck_assert_msg(sw_msg_listen(c, port, &fd, &err) == SW_OK, "listen: %s", err.msg);
    return fd;
}

/* ---- byte pumps --------------------------------------------------------------------- */

struct pump {
    int fd;
    size_t total;          /* writer: bytes to send */
    uint64_t seed;
    bool shut;             /* writer: shutdown(SHUT_WR) at the end */
    atomic_size_t done;    /* bytes moved so far */
    uint8_t hash[crypto_generichash_BYTES];
    int err;
};

static void *writer_main(void *arg)
{
    struct pump *p = arg;
    crypto_generichash_state h;
    uint8_t *buf = malloc(200000), seed[randombytes_SEEDBYTES] = { 0 };
    size_t sent = 0;
    uint64_t ctr = 0;

    crypto_generichash_init(&h, NULL, 0, sizeof(p->hash));
    memcpy(seed, &p->seed, sizeof(p->seed));
    while (sent < p->total) {
        size_t n = 1 + randombytes_uniform(150000), off = 0;
        if (n > p->total - sent)
            n = p->total - sent;
        memcpy(seed + 8, &ctr, sizeof(ctr));
        ctr++;
        randombytes_buf_deterministic(buf, n, seed);
        crypto_generichash_update(&h, buf, n);
        while (off < n) {
            ssize_t w = send(p->fd, buf + off, n - off, MSG_NOSIGNAL);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                p->err = errno;
                goto out;
            }
            off += (size_t)w;
            atomic_fetch_add(&p->done, (size_t)w);
        }
        sent += n;
    }
    if (p->shut)
        shutdown(p->fd, SHUT_WR);
out:
    crypto_generichash_final(&h, p->hash, sizeof(p->hash));
    free(buf);
    return NULL;
}

static void *reader_main(void *arg)
{
    struct pump *p = arg;
    crypto_generichash_state h;
    uint8_t *buf = malloc(100000);

    crypto_generichash_init(&h, NULL, 0, sizeof(p->hash));
    for (;;) {
        size_t n = 1 + randombytes_uniform(100000);
        ssize_t r = read(p->fd, buf, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            p->err = errno;
        if (r <= 0)
            break;
        crypto_generichash_update(&h, buf, (size_t)r);
        atomic_fetch_add(&p->done, (size_t)r);
    }
    crypto_generichash_final(&h, p->hash, sizeof(p->hash));
    free(buf);
    return NULL;
}

/* Echo until EOF, then close. */
static void echo(int fd)
{
    char buf[8192];
    for (;;) {
        ssize_t r = read(fd, buf, sizeof(buf)), off = 0;
        if (r <= 0)
            break;
        while (off < r) {
            ssize_t w = send(fd, buf + off, (size_t)(r - off), MSG_NOSIGNAL);
            if (w <= 0)
                goto out;
            off += w;
        }
    }
out:
    close(fd);
}

/* Sends msg, half-closes, reads the echo back; true when it matches. */
static bool echo_check(int fd, const void *msg, size_t len)
{
    char *back = malloc(len + 1);
    size_t got = 0;
    bool ok;
    ck_assert_int_eq(send(fd, msg, len, MSG_NOSIGNAL), (ssize_t)len);
    shutdown(fd, SHUT_WR);
    for (;;) {
        ssize_t r = read(fd, back + got, len + 1 - got);
        if (r <= 0)
            break;
        got += (size_t)r;
        if (got > len)
            break;
    }
    ok = got == len && memcmp(back, msg, len) == 0;
    free(back);
    return ok;
}

/* ---- tests -------------------------------------------------------------------------- */

START_TEST(test_transfer_10mb_both_ways)
{
    struct sw_pk pa, pb, remote;
    struct sw_msg_client *a = client_new(&s1, 1, &pa), *b = client_new(&s1, 1, &pb);
    struct pump aw = { .total = 10 * MB, .seed = 1, .shut = true }, bw = { .total = 10 * MB, .seed = 2, .shut = true };
    struct pump ar = { 0 }, br = { 0 };
    pthread_t t[4];
    struct sw_msg_client_stats st;
    int lfd, fa, fb;
    int64_t t0;
    uint64_t dt;

    client_ready(a);
    client_ready(b);
    lfd = listen_on(b, 7);
    fa = dial(a, &pb, 7);
    fb = accept_one(lfd, &remote);
    ck_assert(sw_pk_equal(&remote, &pa));
    aw.fd = ar.fd = fa;
    bw.fd = br.fd = fb;
    t0 = sw_mono_ms();
    pthread_create(&t[0], NULL, writer_main, &aw);
    pthread_create(&t[1], NULL, reader_main, &ar);
    pthread_create(&t[2], NULL, writer_main, &bw);
    pthread_create(&t[3], NULL, reader_main, &br);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    dt = sw_ms_since(t0);
    fprintf(stderr, "10 MB each way through one server: %llu ms, %.1f MB/s per direction\n",
            (unsigned long long)dt, dt ? 10.0 * 1000.0 / (double)dt : 0.0);
    ck_assert_int_eq(aw.err, 0);
    ck_assert_int_eq(bw.err, 0);
    ck_assert_uint_eq(atomic_load(&ar.done), 10 * MB);
    ck_assert_uint_eq(atomic_load(&br.done), 10 * MB);
    ck_assert_mem_eq(aw.hash, br.hash, sizeof(aw.hash));
    ck_assert_mem_eq(bw.hash, ar.hash, sizeof(bw.hash));
    sw_msg_client_stats(a, &st);
    ck_assert_uint_eq(st.bytes_sent, 10 * MB);
    ck_assert_uint_eq(st.bytes_received, 10 * MB);
    ck_assert_uint_ge(st.sessions, 1);
    close(fa);
    close(fb);
    close(lfd);
    sw_msg_client_stop(a);
    sw_msg_client_stop(b);
}
END_TEST

struct many {
    struct sw_msg_client *c;
    struct sw_pk pk;
    int lfd;
    const struct sw_pk *next;
    bool echo_ok, dial_ok;
    char why[SW_ERROR_MSG_MAX];
};

static void *many_echo(void *arg)
{
    struct many *m = arg;
    struct sw_error err = { 0 };
    int fd;
    if (sw_msg_accept(m->lfd, 30000, &fd, NULL, NULL, &err) == SW_OK) {
        echo(fd);
        m->echo_ok = true;
    }
    return NULL;
}

static void *many_dial(void *arg)
{
    struct many *m = arg;
    struct sw_error err = { 0 };
    char msg[1500];
    int fd, refusal = 0;
    if (sw_msg_dial(m->c, m->next, 1, 20000, &fd, &refusal, &err) != SW_OK) {
        snprintf(m->why, sizeof(m->why), "%s", err.msg);
        return NULL;
    }
    randombytes_buf(msg, sizeof(msg));
    m->dial_ok = echo_check(fd, msg, sizeof(msg));
    close(fd);
    return NULL;
}

START_TEST(test_fifty_clients_dial_each_other)
{
    static struct many m[N_MANY];
    pthread_t te[N_MANY], td[N_MANY];
    int64_t t0;

    for (int i = 0; i < N_MANY; i++)
        m[i].c = client_new(NULL, 1, &m[i].pk); /* servers from the discovery: spread over s1..s3 */
    for (int i = 0; i < N_MANY; i++) {
        client_ready(m[i].c);
        m[i].lfd = listen_on(m[i].c, 1);
        m[i].next = &m[(i + 1) % N_MANY].pk;
    }
    t0 = sw_mono_ms();
    for (int i = 0; i < N_MANY; i++)
        pthread_create(&te[i], NULL, many_echo, &m[i]);
    for (int i = 0; i < N_MANY; i++)
        pthread_create(&td[i], NULL, many_dial, &m[i]);
    for (int i = 0; i < N_MANY; i++)
        pthread_join(td[i], NULL);
    for (int i = 0; i < N_MANY; i++)
        pthread_join(te[i], NULL);
    fprintf(stderr, "%d concurrent dials + echoes: %llu ms\n", N_MANY, (unsigned long long)sw_ms_since(t0));
    for (int i = 0; i < N_MANY; i++) {
        ck_assert_msg(m[i].dial_ok, "client %d's dial failed: %s", i, m[i].why);
        ck_assert_msg(m[i].echo_ok, "client %d accepted nothing", i);
    }
    for (int i = 0; i < N_MANY; i++) {
        close(m[i].lfd);
        sw_msg_client_stop(m[i].c);
    }
}
END_TEST

START_TEST(test_no_listener_refused_fast)
{
    struct sw_pk pb;
    struct sw_msg_client *a = client_new(&s1, 1, NULL), *b = client_new(&s1, 1, &pb);
    struct sw_error err = { 0 };
    int fd = -1, refusal = 0, lfd;
    int64_t t0;

    client_ready(a);
    client_ready(b);
    t0 = sw_mono_ms();
    ck_assert_int_eq(sw_msg_dial(a, &pb, 999, 5000, &fd, &refusal, &err), SW_EPERM);
    ck_assert_uint_lt(sw_ms_since(t0), 1000);
    ck_assert_int_eq(refusal, SW_REFUSE_NO_LISTENER);
    ck_assert_ptr_nonnull(strstr(err.msg, "no_listener"));

    /* closing the listener fd stops listening */
    lfd = listen_on(b, 5);
    ck_assert_int_eq(sw_msg_listen(b, 5, &fd, &err), SW_EEXIST);
    close(lfd);
    th_sleep_ms(100);
    refusal = 0;
    ck_assert_int_eq(sw_msg_dial(a, &pb, 5, 5000, &fd, &refusal, &err), SW_EPERM);
    ck_assert_int_eq(refusal, SW_REFUSE_NO_LISTENER);
    /* ... and the port can be listened on again; unlisten works too */
    lfd = listen_on(b, 5);
    ck_assert_int_eq(sw_msg_unlisten(b, 5), SW_OK);
    ck_assert_int_eq(sw_msg_unlisten(b, 5), SW_ENOTFOUND);
    ck_assert_int_eq(sw_msg_accept(lfd, 1000, &fd, NULL, NULL, &err), SW_EIO);
    close(lfd);
    sw_msg_client_stop(a);
    sw_msg_client_stop(b);
}
END_TEST

START_TEST(test_offline_key_refused)
{
    struct sw_msg_client *a = client_new(&s1, 1, NULL);
    struct sw_http_client *http = sw_http_client_new(NULL);
    struct sw_keypair k;
    struct sw_msg_entry e;
    struct sw_error err = { 0 };
    struct json_object *o;
    int fd = -1, refusal = 0;

    client_ready(a);
    /* k's entry says it is reachable over s1, but k has no session there */
    sw_keypair_generate(&k);
    memset(&e, 0, sizeof(e));
    snprintf(e.version, sizeof(e.version), "%s", SW_MSG_VERSION);
    e.sequence = 1;
    e.timestamp = (uint64_t)(sw_unix_ms() / 1000);
    e.static_pk = k.pk;
    e.has_client = true;
    e.n_delegated = 1;
    e.delegated[0] = s1.kp.pk;
    sw_msg_entry_sign(&e, &k);
    o = sw_msg_entry_to_json(&e);
    ck_assert_int_eq(th_call(http, md_base, "POST", "/messaging-discovery/entry/", sw_json_compact(o, NULL),
                             NULL, NULL), 200);
    json_object_put(o);
    ck_assert_int_eq(sw_msg_dial(a, &k.pk, 1, 5000, &fd, &refusal, &err), SW_EPERM);
    ck_assert_int_eq(refusal, SW_REFUSE_PEER_OFFLINE);

    /* a key without any entry */
    sw_keypair_generate(&k);
    ck_assert_int_eq(sw_msg_dial(a, &k.pk, 1, 5000, &fd, &refusal, &err), SW_ENOTFOUND);
    sw_keypair_wipe(&k);
    sw_http_client_free(http);
    sw_msg_client_stop(a);
}
END_TEST

static void wait_sessions(struct sw_msg_client *c, unsigned want, int timeout_ms)
{
    struct sw_msg_client_stats st;
    int64_t end = sw_deadline_ms(timeout_ms);
    do {
        sw_msg_client_stats(c, &st);
        if (st.sessions == want)
            return;
        th_sleep_ms(20);
    } while (sw_mono_ms() < end);
    ck_abort_msg("sessions stayed at %u, wanted %u", st.sessions, want);
}

START_TEST(test_server_restart_reconnects)
{
    struct sw_pk pb;
    struct sw_msg_client *a = client_new(&s3, 1, NULL), *b = client_new(&s3, 1, &pb);
    struct sw_msg_client_stats st;
    int lfd, fd, conn;
    int64_t t0;

    client_ready(a);
    client_ready(b);
    lfd = listen_on(b, 9);
    fd = dial(a, &pb, 9);
    conn = accept_one(lfd, NULL);

    kill(s3.pid, SIGKILL);
    th_stop(s3.pid, 2000);
    wait_sessions(a, 0, 5000);
    wait_sessions(b, 0, 5000);
    {
        char c1;
        ck_assert_int_le(read(fd, &c1, 1), 0); /* the stream died with its session */
    }
    close(fd);
    close(conn);
    th_sleep_ms(1500); /* a few failed reconnects: the backoff grows */
    t0 = sw_mono_ms();
    ck_assert_msg(server_start(&s3), "messaging-server s3 did not restart");
    client_ready(a);
    client_ready(b);
    wait_sessions(a, 1, 10000);
    wait_sessions(b, 1, 10000);
    fprintf(stderr, "clients reconnected %llu ms after the restart\n", (unsigned long long)sw_ms_since(t0));
    sw_msg_client_stats(a, &st);
    ck_assert_uint_ge(st.reconnects, 1);

    fd = dial(a, &pb, 9);
    conn = accept_one(lfd, NULL);
    ck_assert_int_eq(send(fd, "ping", 4, MSG_NOSIGNAL), 4);
    {
        char buf[4];
        ck_assert_int_eq(read(conn, buf, 4), 4);
        ck_assert_mem_eq(buf, "ping", 4);
    }
    close(fd);
    close(conn);
    close(lfd);
    sw_msg_client_stop(a);
    sw_msg_client_stop(b);
}
END_TEST

struct echo_job {
    int lfd;
    int n;
};

static void *echo_n(void *arg)
{
    struct echo_job *j = arg;
    for (int i = 0; i < j->n; i++) {
        struct sw_error err = { 0 };
        int fd;
        if (sw_msg_accept(j->lfd, 10000, &fd, NULL, NULL, &err) != SW_OK)
            break;
        echo(fd);
    }
    return NULL;
}

START_TEST(test_cross_server)
{
    struct sw_pk pa, pb;
    struct sw_msg_client *a = client_new(&s1, 1, &pa), *b = client_new(&s2, 1, &pb);
    struct echo_job ja, jb;
    pthread_t ta, tb;
    char msg[20000];
    int fd;

    client_ready(a);
    client_ready(b);
    ja.lfd = listen_on(a, 3);
    jb.lfd = listen_on(b, 3);
    ja.n = jb.n = 1;
    pthread_create(&ta, NULL, echo_n, &ja);
    pthread_create(&tb, NULL, echo_n, &jb);
    randombytes_buf(msg, sizeof(msg));
    fd = dial(a, &pb, 3); /* a is only on s1, b only on s2: a opens a session to s2 on demand */
    ck_assert(echo_check(fd, msg, sizeof(msg)));
    close(fd);
    fd = dial(b, &pa, 3);
    ck_assert(echo_check(fd, msg, sizeof(msg)));
    close(fd);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    close(ja.lfd);
    close(jb.lfd);
    sw_msg_client_stop(a);
    sw_msg_client_stop(b);
}
END_TEST

START_TEST(test_slow_reader_does_not_stall_others)
{
    struct sw_pk pb;
    struct sw_msg_client *a = client_new(&s2, 1, NULL), *b = client_new(&s2, 1, &pb);
    struct pump slow_w = { .total = 8 * MB, .seed = 3, .shut = true }, slow_r = { 0 };
    struct pump fast_w = { .total = 4 * MB, .seed = 4, .shut = true }, fast_r = { 0 };
    pthread_t t[4];
    int lfd, s_a, s_b, f_a, f_b;
    size_t stalled_at;
    int64_t t0;

    client_ready(a);
    client_ready(b);
    lfd = listen_on(b, 11);
    s_a = dial(a, &pb, 11);
    s_b = accept_one(lfd, NULL);
    f_a = dial(a, &pb, 11);
    f_b = accept_one(lfd, NULL);

    slow_w.fd = s_a;
    pthread_create(&t[0], NULL, writer_main, &slow_w); /* nobody reads s_b for now */
    th_sleep_ms(300);
    fast_w.fd = f_a;
    fast_r.fd = f_b;
    t0 = sw_mono_ms();
    pthread_create(&t[1], NULL, writer_main, &fast_w);
    pthread_create(&t[2], NULL, reader_main, &fast_r);
    pthread_join(t[1], NULL);
    pthread_join(t[2], NULL);
    stalled_at = atomic_load(&slow_w.done);
    fprintf(stderr, "4 MB beside a stalled stream: %llu ms (stalled writer at %zu bytes)\n",
            (unsigned long long)sw_ms_since(t0), stalled_at);
    ck_assert_uint_lt(sw_ms_since(t0), 15000);
    ck_assert_uint_eq(atomic_load(&fast_r.done), 4 * MB);
    ck_assert_mem_eq(fast_w.hash, fast_r.hash, sizeof(fast_w.hash));
    ck_assert_uint_lt(stalled_at, 8 * MB); /* flow control held the slow stream back */

    slow_r.fd = s_b; /* now drain the slow stream: everything arrives intact */
    pthread_create(&t[3], NULL, reader_main, &slow_r);
    pthread_join(t[0], NULL);
    pthread_join(t[3], NULL);
    ck_assert_uint_eq(atomic_load(&slow_r.done), 8 * MB);
    ck_assert_mem_eq(slow_w.hash, slow_r.hash, sizeof(slow_w.hash));
    close(s_a);
    close(s_b);
    close(f_a);
    close(f_b);
    close(lfd);
    sw_msg_client_stop(a);
    sw_msg_client_stop(b);
}
END_TEST

START_TEST(test_close_propagates)
{
    struct sw_pk pb;
    struct sw_msg_client *a = client_new(&s1, 1, NULL), *b = client_new(&s1, 1, &pb);
    struct sw_msg_client_stats st;
    char buf[16];
    int lfd, fa, fb;

    client_ready(a);
    client_ready(b);
    lfd = listen_on(b, 12);
    fa = dial(a, &pb, 12);
    fb = accept_one(lfd, NULL);
    ck_assert_int_eq(send(fa, "hello", 5, MSG_NOSIGNAL), 5);
    close(fa); /* CLOSE(normal) after the bytes already read */
    ck_assert_int_eq(read(fb, buf, sizeof(buf)), 5);
    ck_assert_int_eq(read(fb, buf, sizeof(buf)), 0);
    close(fb);
    for (int i = 0; i < 100; i++) {
        sw_msg_client_stats(a, &st);
        if (st.streams == 0)
            break;
        th_sleep_ms(10);
    }
    ck_assert_uint_eq(st.streams, 0);
    close(lfd);
    sw_msg_client_stop(a);
    sw_msg_client_stop(b);
}
END_TEST

START_TEST(test_fixed_servers_without_discovery)
{
    const struct th_msg_server *both[] = { &s1, &s2 };
    struct sw_pk pb;
    struct sw_msg_client *a = client_new_ex(both, 2, 2, false, NULL);
    struct sw_msg_client *b = client_new_ex(both + 1, 1, 1, false, &pb);
    struct sw_msg_client_stats st;
    struct echo_job jb;
    pthread_t tb;
    int fd;

    client_ready(a);
    client_ready(b);
    wait_sessions(a, 2, 5000);
    jb.lfd = listen_on(b, 4);
    jb.n = 1;
    pthread_create(&tb, NULL, echo_n, &jb);
    fd = dial(a, &pb, 4); /* no discovery: tries the fixed servers; b is only on s2 */
    ck_assert(echo_check(fd, "fixed", 5));
    close(fd);
    pthread_join(tb, NULL);
    close(jb.lfd);
    sw_msg_client_stats(b, &st);
    ck_assert_uint_eq(st.sessions, 1);
    sw_msg_client_stop(a);
    sw_msg_client_stop(b);
}
END_TEST

/* Polls c's published entry until it lists exactly `want` (1 server). */
static bool entry_lists_only(const struct sw_pk *c, const struct sw_pk *want, int timeout_ms)
{
    struct sw_http_client *http = sw_http_client_new(NULL);
    int64_t end = sw_deadline_ms(timeout_ms);
    char url[192], hex[SW_PK_HEX_LEN + 1];
    bool ok = false;

    sw_pk_to_hex(c, hex);
    snprintf(url, sizeof(url), "%s/messaging-discovery/entry/%s", md_base, hex);
    while (!ok && sw_mono_ms() < end) {
        struct sw_http_result res = { 0 };
        struct json_object *o = NULL;
        struct sw_msg_entry e;
        if (sw_http_do(http, "GET", url, NULL, NULL, 0, &res, NULL) == SW_OK && res.status == 200 &&
            sw_json_parse(res.body, res.body_len, &o, NULL) == SW_OK &&
            sw_msg_entry_from_json(o, &e, NULL) == SW_OK)
            ok = e.n_delegated == 1 && sw_pk_equal(&e.delegated[0], want);
        json_object_put(o);
        sw_http_result_free(&res);
        if (!ok)
            th_sleep_ms(50);
    }
    sw_http_client_free(http);
    return ok;
}

START_TEST(test_server_full_moves_on)
{
    const struct th_msg_server *pair[] = { &s_full, &s1 };
    struct sw_pk px, pc;
    struct sw_msg_client *x, *c;

    ck_assert_msg(server_init(&s_full), "messaging-server s4 did not start");
    x = client_new(&s_full, 1, &px); /* takes s4's only session */
    client_ready(x);
    ck_assert(entry_lists_only(&px, &s_full.kp.pk, 5000));
    c = client_new_ex(pair, 2, 1, true, &pc); /* tries s4 first: GOAWAY(server_full), then s1 */
    ck_assert_msg(entry_lists_only(&pc, &s1.kp.pk, 10000), "c did not move on to s1");
    wait_sessions(c, 1, 5000);
    sw_msg_client_stop(c);
    sw_msg_client_stop(x);
    th_stop(s_full.pid, 5000);
    s_full.pid = -1;
}
END_TEST

/* A server the client had a session with stays a candidate when the discovery no longer
 * lists it (docs/messaging.md §5 "Choosing servers"): s3 dies, its entry is deleted, and it
 * comes back without registering; the client returns to it by itself. */
START_TEST(test_proven_server_kept_unlisted)
{
    struct sw_http_client *http = sw_http_client_new(NULL);
    struct sw_msg_client *a = client_new(NULL, 3, NULL); /* s1, s2 and s3 from the discovery */
    char target[160], hex[SW_PK_HEX_LEN + 1];
    int64_t t0;

    client_ready(a);
    wait_sessions(a, 3, 10000);
    kill(s3.pid, SIGKILL);
    th_stop(s3.pid, 2000);
    wait_sessions(a, 2, 5000);
    sw_pk_to_hex(&s3.kp.pk, hex);
    snprintf(target, sizeof(target), "/messaging-discovery/entry/%s", hex);
    ck_assert_int_eq(th_call(http, md_base, "DELETE", target, NULL, &s3.kp, NULL), 200);
    th_sleep_ms(4000); /* several failed retries, and refetches that no longer list s3 */
    t0 = sw_mono_ms();
    ck_assert_msg(th_msg_server_start(&s3, NULL), "messaging-server s3 did not restart"); /* unlisted */
    wait_sessions(a, 3, 10000);
    fprintf(stderr, "back on the unlisted server %llu ms after its restart\n", (unsigned long long)sw_ms_since(t0));
    sw_msg_client_stop(a);
    th_stop(s3.pid, 5000);
    ck_assert_msg(server_start(&s3), "messaging-server s3 did not start again"); /* listed again */
    sw_http_client_free(http);
}
END_TEST

static Suite *messaging_suite(void)
{
    Suite *s = suite_create("messaging");
    TCase *tc = tcase_create("relay");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_no_listener_refused_fast);
    tcase_add_test(tc, test_offline_key_refused);
    tcase_add_test(tc, test_close_propagates);
    tcase_add_test(tc, test_transfer_10mb_both_ways);
    tcase_add_test(tc, test_cross_server);
    tcase_add_test(tc, test_slow_reader_does_not_stall_others);
    tcase_add_test(tc, test_fifty_clients_dial_each_other);
    tcase_add_test(tc, test_fixed_servers_without_discovery);
    tcase_add_test(tc, test_server_full_moves_on);
    tcase_add_test(tc, test_server_restart_reconnects);
    tcase_add_test(tc, test_proven_server_kept_unlisted);
    suite_add_tcase(s, tc);
    return s;
}

/* Everything the tests share: the network (start_network) and this process's setup. */
static int start_all(void)
{
    signal(SIGPIPE, SIG_IGN);
    sw_log_init("test-messaging");
    if (th_check_init_crypto_http() != 0)
        return -1;
    start_network();
    return 0;
}

const struct th_check_main th_check_main = {
    .suite = messaging_suite,
    .fork = CK_NOFORK,
    .before = start_all,
    .after = th_cleanup,
};
