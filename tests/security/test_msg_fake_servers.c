/* Adversarial test of the messaging client in an open network (issue 20, "Hostile load":
 * clients that do not believe claims; docs/messaging.md §5 "Choosing servers"): one real
 * messaging server and 30 fake server entries posted by fresh keys, all claiming
 * 4294967295 free sessions. Half the fakes point at closed ports, half at a listener that
 * accepts TCP and never answers (each costs a client the whole handshake deadline).
 *
 * The honest outcomes checked, for discovery-only clients: clients connected before the
 * fakes appeared, and clients started while they are listed (which form a session within
 * FAKE_BOUND_MS), are all back within FAKE_BOUND_MS of a restart of the real server (killed,
 * then started again with the same key and address) while the fakes stay listed; a dial
 * between two of them then works. The figures are printed for the bench table
 * (build with -DFAKE_BOUND_MS=... -DFAKE_CASE_TIMEOUT_S=... to measure a slower client). */
#include "common/http_client.h"
#include "common/json.h"
#include "common/keys.h"
#include "common/log.h"
#include "common/msg_client.h"
#include "common/msg_entry.h"
#include "tests/harness/api_client.h"
#include "tests/harness/check_main.h"
#include "tests/harness/harness.h"
#include "tests/harness/msg_server.h"

#include <check.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef FAKE_BOUND_MS
#define FAKE_BOUND_MS 10000 /* first session, and rejoin after a restart */
#endif
#ifndef FAKE_CASE_TIMEOUT_S
#define FAKE_CASE_TIMEOUT_S 120
#endif
#define N_FAKES 30
#define N_CLIENTS 4
#define SILENT_MAX 512      /* connections the silent listener holds */
#define REPOST_MS 20000     /* fakes refresh their entries like a server does */

static char md_base[64];
static struct th_msg_server real = { .name = "real" };
static struct sw_keypair fakes[N_FAKES];
static char fake_addr[N_FAKES][32];
static uint64_t fake_seq;

/* ---- fakes ---------------------------------------------------------------------------- */

static int silent_fd = -1;
static uint16_t silent_port;
static pthread_t fakes_thread;
static atomic_bool fakes_stop;
static atomic_uint silent_accepted;

static void post_fakes(struct sw_http_client *http)
{
    fake_seq = fake_seq < (uint64_t)sw_unix_ms() ? (uint64_t)sw_unix_ms() : fake_seq + 1;
    for (int i = 0; i < N_FAKES; i++) {
        struct sw_msg_entry e;
        struct json_object *o;
        char *body;
        long status;

        memset(&e, 0, sizeof(e));
        snprintf(e.version, sizeof(e.version), "%s", SW_MSG_VERSION);
        e.sequence = fake_seq;
        e.timestamp = (uint64_t)(sw_unix_ms() / 1000);
        e.static_pk = fakes[i].pk;
        e.has_server = true;
        snprintf(e.address, sizeof(e.address), "%.31s", fake_addr[i]);
        e.available_sessions = UINT32_MAX;
        sw_msg_entry_sign(&e, &fakes[i]);
        o = sw_msg_entry_to_json(&e);
        body = strdup(sw_json_compact(o, NULL));
        json_object_put(o);
        status = th_call(http, md_base, "POST", "/messaging-discovery/entry/", body, NULL, NULL);
        free(body);
        if (status != 200)
            fprintf(stderr, "fake entry %d: POST answered %ld\n", i, status);
    }
}

/* Accepts TCP connections and never answers them (held until the end); re-posts the fake
 * entries every REPOST_MS. */
static void *fakes_main(void *arg)
{
    struct sw_http_client *http = sw_http_client_new(NULL);
    int held[SILENT_MAX], n_held = 0;
    int64_t next_post = sw_deadline_ms(REPOST_MS);

    while (!atomic_load(&fakes_stop)) {
        struct pollfd p = { .fd = silent_fd, .events = POLLIN };
        if (poll(&p, 1, 100) > 0) {
            int fd = accept(silent_fd, NULL, NULL);
            if (fd >= 0 && n_held < SILENT_MAX) {
                held[n_held++] = fd;
                atomic_fetch_add(&silent_accepted, 1);
            } else if (fd >= 0) {
                close(fd);
            }
        }
        if (sw_mono_ms() >= next_post) {
            post_fakes(http);
            next_post = sw_deadline_ms(REPOST_MS);
        }
    }
    while (n_held > 0)
        close(held[--n_held]);
    sw_http_client_free(http);
    return NULL;
}

static bool fakes_started;

/* Posts the fake entries and starts their thread (once). */
static void fakes_start(void)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    struct sw_http_client *http;
    socklen_t len = sizeof(a);
    int one = 1;

    if (fakes_started)
        return;
    fakes_started = true;
    http = sw_http_client_new(NULL);

    silent_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(silent_fd, 0);
    setsockopt(silent_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    ck_assert_int_eq(bind(silent_fd, (struct sockaddr *)&a, sizeof(a)), 0);
    ck_assert_int_eq(listen(silent_fd, 512), 0);
    ck_assert_int_eq(getsockname(silent_fd, (struct sockaddr *)&a, &len), 0);
    silent_port = ntohs(a.sin_port);
    for (int i = 0; i < N_FAKES; i++) {
        sw_keypair_generate(&fakes[i]);
        if (i % 2)
            snprintf(fake_addr[i], sizeof(fake_addr[i]), "127.0.0.1:%u", silent_port);
        else /* a port nothing listens on */
            snprintf(fake_addr[i], sizeof(fake_addr[i]), "127.0.0.1:%u", th_free_port());
    }
    post_fakes(http);
    sw_http_client_free(http);
    atomic_store(&fakes_stop, false);
    ck_assert_int_eq(pthread_create(&fakes_thread, NULL, fakes_main, NULL), 0);
}

static void fakes_end(void)
{
    if (!fakes_started)
        return;
    fakes_started = false;
    atomic_store(&fakes_stop, true);
    pthread_join(fakes_thread, NULL);
    close(silent_fd);
    silent_fd = -1;
    for (int i = 0; i < N_FAKES; i++)
        sw_keypair_wipe(&fakes[i]);
}

/* How many listed servers (available_servers, the discovery's default limit) are fakes. */
static void count_listed(unsigned *n_fakes, bool *real_listed)
{
    struct sw_http_client *http = sw_http_client_new(NULL);
    struct json_object *o = NULL;
    char real_hex[SW_PK_HEX_LEN + 1];

    *n_fakes = 0;
    *real_listed = false;
    sw_pk_to_hex(&real.kp.pk, real_hex);
    ck_assert_int_eq(th_call(http, md_base, "GET", "/messaging-discovery/available_servers?limit=100", NULL, NULL,
                             &o), 200);
    for (size_t i = 0; i < json_object_array_length(o); i++) {
        const char *pk = json_object_get_string(json_object_object_get(json_object_array_get_idx(o, i), "static"));
        if (pk && strcmp(pk, real_hex) == 0)
            *real_listed = true;
        else
            (*n_fakes)++;
    }
    json_object_put(o);
    sw_http_client_free(http);
}

/* ---- clients -------------------------------------------------------------------------- */

static struct sw_msg_client *client_start(struct sw_pk *pk_out)
{
    struct sw_msg_client_config cfg;
    struct sw_msg_client *c = NULL;
    struct sw_error err = { 0 };

    memset(&cfg, 0, sizeof(cfg));
    ck_assert_int_eq(sw_keypair_generate(&cfg.kp), SW_OK);
    cfg.discovery_url = md_base; /* servers from the discovery only: no pinned server */
    ck_assert_msg(sw_msg_client_start(&cfg, &c, &err) == SW_OK, "%s", err.msg);
    if (pk_out)
        *pk_out = cfg.kp.pk;
    sw_keypair_wipe(&cfg.kp);
    return c;
}

static unsigned sessions_of(struct sw_msg_client *c)
{
    struct sw_msg_client_stats st;
    sw_msg_client_stats(c, &st);
    return st.sessions;
}

/* Waits until every client has at least one session (want_up) or none; the ms each one
 * took from t0 in took[] (-1: not within timeout_ms). */
static void wait_all(struct sw_msg_client *const *c, size_t n, bool want_up, int64_t t0, int timeout_ms,
                     int64_t *took)
{
    int64_t end = t0 + timeout_ms;
    size_t done = 0;

    for (size_t i = 0; i < n; i++)
        took[i] = -1;
    while (done < n && sw_mono_ms() < end) {
        for (size_t i = 0; i < n; i++)
            if (took[i] < 0 && (sessions_of(c[i]) > 0) == want_up) {
                took[i] = sw_mono_ms() - t0;
                done++;
            }
        th_sleep_ms(20);
    }
}

/* Prints took[] and returns the worst (INT64_MAX when one never made it). */
static int64_t report(const char *what, const int64_t *took, size_t n)
{
    int64_t worst = 0;
    fprintf(stderr, "%s (ms):", what);
    for (size_t i = 0; i < n; i++) {
        fprintf(stderr, " %lld", (long long)took[i]);
        if (took[i] < 0)
            worst = INT64_MAX;
        else if (took[i] > worst)
            worst = took[i];
    }
    if (worst == INT64_MAX)
        fprintf(stderr, "; worst: never\n");
    else
        fprintf(stderr, "; worst %lld\n", (long long)worst);
    return worst;
}

static void echo_once(struct sw_msg_client *a, struct sw_msg_client *b, const struct sw_pk *pb)
{
    struct sw_error err = { 0 };
    int lfd = -1, fd = -1, conn = -1, refusal = 0;
    char buf[4];

    ck_assert_int_eq(sw_msg_listen(b, 7, &lfd, &err), SW_OK);
    ck_assert_msg(sw_msg_dial(a, pb, 7, 10000, &fd, &refusal, &err) == SW_OK, "dial: %s", err.msg);
    ck_assert_msg(sw_msg_accept(lfd, 5000, &conn, NULL, NULL, &err) == SW_OK, "accept: %s", err.msg);
    ck_assert_int_eq(send(fd, "ping", 4, MSG_NOSIGNAL), 4);
    ck_assert_int_eq(read(conn, buf, 4), 4);
    ck_assert_mem_eq(buf, "ping", 4);
    close(conn);
    close(fd);
    close(lfd);
}

/* Kills the real server, waits until no client has a session, lets them try the fakes for
 * 5 s, restarts it and checks that every client rejoins within FAKE_BOUND_MS. */
static void restart_and_rejoin(struct sw_msg_client *const *c, size_t n)
{
    int64_t took[N_CLIENTS], t0, worst;
    unsigned listed_fakes;
    bool real_listed;

    kill(real.pid, SIGKILL);
    th_stop(real.pid, 2000);
    wait_all(c, n, false, sw_mono_ms(), 5000, took);
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(took[i] >= 0, "client %zu kept a session to a dead server", i);
    th_sleep_ms(5000); /* the clients try the real server and the fakes meanwhile */
    t0 = sw_mono_ms();
    ck_assert_msg(th_msg_server_start(&real, md_base), "the real server did not restart");
    wait_all(c, n, true, t0, FAKE_BOUND_MS, took);
    worst = report("rejoined after the restart", took, n);
    ck_assert_msg(worst <= FAKE_BOUND_MS, "a client did not rejoin within %d ms of the restart", FAKE_BOUND_MS);
    count_listed(&listed_fakes, &real_listed);
    ck_assert_uint_ge(listed_fakes, N_FAKES); /* listed all along */
}

/* The fakes appear in a running network: clients that had the real server lose it to a
 * restart and come back. */
START_TEST(test_connected_clients_rejoin_after_restart)
{
    struct sw_msg_client *c[N_CLIENTS];

    for (int i = 0; i < N_CLIENTS; i++)
        c[i] = client_start(NULL);
    for (int i = 0; i < N_CLIENTS; i++)
        ck_assert_int_eq(sw_msg_client_wait_ready(c[i], 15000), SW_OK);
    fakes_start();
    th_sleep_ms(3000); /* the clients' second slots look for another server and see the fakes */
    restart_and_rejoin(c, N_CLIENTS);
    for (int i = 0; i < N_CLIENTS; i++)
        sw_msg_client_stop(c[i]);
}
END_TEST

/* Clients that start while the fakes are listed form a session, rejoin after a restart and
 * talk to each other. */
START_TEST(test_new_clients_among_fakes)
{
    struct sw_msg_client *c[N_CLIENTS];
    struct sw_pk pk[N_CLIENTS];
    int64_t took[N_CLIENTS], t0, worst;
    unsigned listed_fakes;
    bool real_listed;

    fakes_start();
    count_listed(&listed_fakes, &real_listed);
    fprintf(stderr, "listed (limit=100): %u fakes, real server %s\n", listed_fakes,
            real_listed ? "listed" : "not listed");
    ck_assert_uint_ge(listed_fakes, N_FAKES); /* an open network lists them all */

    t0 = sw_mono_ms();
    for (int i = 0; i < N_CLIENTS; i++)
        c[i] = client_start(&pk[i]);
    wait_all(c, N_CLIENTS, true, t0, FAKE_BOUND_MS, took);
    worst = report("first session after start", took, N_CLIENTS);
    ck_assert_msg(worst <= FAKE_BOUND_MS, "a client had no session within %d ms", FAKE_BOUND_MS);
    for (int i = 0; i < N_CLIENTS; i++)
        ck_assert_int_eq(sw_msg_client_wait_ready(c[i], FAKE_BOUND_MS), SW_OK); /* entry published */

    restart_and_rejoin(c, N_CLIENTS);
    fprintf(stderr, "the silent listener held %u connections\n", atomic_load(&silent_accepted));

    ck_assert_int_eq(sw_msg_client_wait_ready(c[0], FAKE_BOUND_MS), SW_OK);
    ck_assert_int_eq(sw_msg_client_wait_ready(c[1], FAKE_BOUND_MS), SW_OK);
    echo_once(c[0], c[1], &pk[1]);
    for (int i = 0; i < N_CLIENTS; i++)
        sw_msg_client_stop(c[i]);
}
END_TEST

static Suite *fake_suite(void)
{
    Suite *s = suite_create("msg-fake-servers");
    TCase *tc = tcase_create("open-network");
    tcase_set_timeout(tc, FAKE_CASE_TIMEOUT_S);
    tcase_add_test(tc, test_connected_clients_rejoin_after_restart);
    tcase_add_test(tc, test_new_clients_among_fakes);
    suite_add_tcase(s, tc);
    return s;
}

static int start_all(void)
{
    char addr[32], db_url[256];
    uint16_t port = th_free_port();

    signal(SIGPIPE, SIG_IGN);
    sw_log_init("test-msg-fake-servers");
    if (th_check_init_crypto_http() != 0)
        return -1;
    snprintf(db_url, sizeof(db_url), "%s", th_fresh_db("msg_fake"));
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", port);
    snprintf(md_base, sizeof(md_base), "http://%s", addr);
    const char *argv[] = { th_bin("messaging-discovery"), "--addr", addr, "--db", db_url, "--threads", "4", NULL };
    if (th_start_service(argv, port, th_log_path("msg-fake-discovery.log")) <= 0) {
        fprintf(stderr, "messaging-discovery did not start\n");
        return -1;
    }
    if (!th_msg_server_init(&real, "msg-fake", md_base)) {
        fprintf(stderr, "the real messaging server did not start\n");
        return -1;
    }
    return 0;
}

static void stop_all(void)
{
    fakes_end();
    th_cleanup();
}

const struct th_check_main th_check_main = {
    .suite = fake_suite,
    .fork = CK_NOFORK,
    .before = start_all,
    .after = stop_all,
};
