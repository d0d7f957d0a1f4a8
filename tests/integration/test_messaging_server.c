/* Integration tests of the messaging server: the real binary on loopback, driven by raw
 * sessions (common/msg_session.h) on a local event_base: relaying per docs/messaging.md §3,
 * refusals, the open timeout, limits, misbehaving clients, metrics, discovery registration
 * and SIGTERM. CK_NOFORK: the spawned daemons belong to this process. */
#include "common/http_client.h"
#include "common/json.h"
#include "common/keys.h"
#include "common/metrics.h"
#include "common/msg_proto.h"
#include "common/msg_session.h"
#include "tests/harness/api_client.h"
#include "tests/harness/check_main.h"
#include "tests/harness/evloop.h"
#include "tests/harness/harness.h"

#include <arpa/inet.h>
#include <check.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- the daemon ---- */

static pid_t ms_pid = -1;
static uint16_t relay_port, http_port;
static char relay_addr[64], http_base[96], log_path[512];
static struct sw_keypair server_kp;
static struct event_base *base, *base2;
static struct sw_http_client *http;

/* Starts messaging-server with its key written by us (so we know the server key) plus
 * extra flags (NULL-terminated). */
static void start_ms(const char *const extra[])
{
    static unsigned n;
    const char *argv[32];
    char key_path[512], haddr[64];
    struct sw_error err = { 0 };
    size_t i = 0;

    relay_port = th_free_port();
    http_port = th_free_port();
    snprintf(relay_addr, sizeof(relay_addr), "127.0.0.1:%u", relay_port);
    snprintf(haddr, sizeof(haddr), "127.0.0.1:%u", http_port);
    snprintf(http_base, sizeof(http_base), "http://%s", haddr);
    snprintf(key_path, sizeof(key_path), "%s", th_log_path("ms-it.key"));
    snprintf(key_path + strlen(key_path), sizeof(key_path) - strlen(key_path), ".%d.%u", (int)getpid(), n);
    snprintf(log_path, sizeof(log_path), "%s", th_log_path("messaging-server.log"));
    n++;
    unlink(key_path);
    ck_assert_int_eq(sw_keypair_generate(&server_kp), SW_OK);
    ck_assert_msg(sw_keyfile_save(key_path, &server_kp, &err) == SW_OK, "%s", err.msg);
    argv[i++] = th_bin("messaging-server");
    argv[i++] = "--addr";
    argv[i++] = relay_addr;
    argv[i++] = "--http-addr";
    argv[i++] = haddr;
    argv[i++] = "--key-file";
    argv[i++] = key_path;
    for (; extra && *extra && i < 30; extra++)
        argv[i++] = *extra;
    argv[i] = NULL;
    ms_pid = th_start_service(argv, http_port, log_path);
    ck_assert_int_gt(ms_pid, 0);
}

/* SIGTERM; the daemon must exit 0 (under ASan: also no leaks). */
static void stop_ms(void)
{
    int st;
    if (ms_pid <= 0)
        return;
    st = th_stop(ms_pid, 10000);
    ms_pid = -1;
    if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0))
        th_dump_log(log_path);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "messaging-server exit status 0x%x", st);
}

static void setup(void)
{
    ck_assert_int_eq(sw_crypto_init(), SW_OK);
    base = event_base_new();
    base2 = event_base_new();
    http = sw_http_client_new(NULL);
    ck_assert_ptr_nonnull(base);
    ck_assert_ptr_nonnull(http);
}

static void teardown(void)
{
    stop_ms();
    event_base_free(base);
    event_base_free(base2);
    sw_http_client_free(http);
}

/* Value of one metric sample ("name" or "name{labels}"), -1 when absent. */
static double metric(const char *sample)
{
    struct sw_http_result res = { 0 };
    struct sw_error err = { 0 };
    char url[128];
    double v = -1;
    size_t n = strlen(sample);

    snprintf(url, sizeof(url), "%s/metrics", http_base);
    ck_assert_int_eq(sw_http_do(http, "GET", url, NULL, NULL, 0, &res, &err), SW_OK);
    ck_assert_int_eq(res.status, 200);
    for (const char *line = res.body; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        if (strncmp(line, sample, n) == 0 && line[n] == ' ') {
            v = strtod(line + n + 1, NULL);
            break;
        }
    }
    sw_http_result_free(&res);
    return v;
}



/* ---- test clients: raw sessions on the local loop ---- */

#define MAX_RX 256

struct rx {
    struct sw_msg_frame f;
    char reason[256];
    bool used;
};

struct tc {
    struct sw_keypair kp;
    struct sw_msg_session *s;
    int ready, closed;
    enum sw_msg_close_reason reason;
    int goaway;
    char why[256];
    struct rx rx[MAX_RX];
    size_t n_rx;
    uint8_t *data;
    size_t data_len, data_cap;
};

static void c_ready(struct sw_msg_session *s, void *ctx) { ((struct tc *)ctx)->ready++; }

static int c_frame(struct sw_msg_session *s, const struct sw_msg_frame *f, void *ctx)
{
    struct tc *c = ctx;
    if (f->type == SW_MSG_DATA) {
        if (c->data_len + f->data_len > c->data_cap) {
            c->data_cap = (c->data_len + f->data_len) * 2;
            ck_assert_ptr_nonnull(c->data = realloc(c->data, c->data_cap));
        }
        memcpy(c->data + c->data_len, f->data, f->data_len);
        c->data_len += f->data_len;
        return SW_OK;
    }
    ck_assert_uint_lt(c->n_rx, MAX_RX);
    c->rx[c->n_rx].f = *f;
    c->rx[c->n_rx].f.reason = NULL;
    c->rx[c->n_rx].f.data = NULL;
    if (f->type == SW_MSG_REFUSE)
        snprintf(c->rx[c->n_rx].reason, sizeof(c->rx[0].reason), "%.*s", (int)f->reason_len, f->reason);
    c->n_rx++;
    return SW_OK;
}

static void c_closed(struct sw_msg_session *s, enum sw_msg_close_reason reason, int goaway, const char *why,
                     void *ctx)
{
    struct tc *c = ctx;
    c->closed++;
    c->reason = reason;
    c->goaway = goaway;
    snprintf(c->why, sizeof(c->why), "%s", why);
    c->s = NULL;
}

static const struct sw_msg_session_callbacks ccb = { c_ready, c_frame, NULL, c_closed };

/* Keeps the local loop running (queued output must still leave) while polling. */
static void pump(int ms) { th_loop_for(base, ms); }

static void wait_metric(const char *sample, double want, int ms)
{
    int64_t end = sw_deadline_ms(ms);
    double v;
    while ((v = metric(sample)) != want && sw_mono_ms() < end)
        pump(20);
    ck_assert_msg(v == want, "%s = %g, want %g", sample, v, want);
}

static bool is_ready(void *arg) { return ((struct tc *)arg)->ready > 0 || ((struct tc *)arg)->closed > 0; }
static bool is_closed(void *arg) { return ((struct tc *)arg)->closed > 0; }

static void tc_init(struct tc *c)
{
    memset(c, 0, sizeof(*c));
    ck_assert_int_eq(sw_keypair_generate(&c->kp), SW_OK);
}

static void tc_free(struct tc *c)
{
    if (c->s) {
        sw_msg_session_close(c->s);
        th_loop_until(base, is_closed, c, 1000);
    }
    free(c->data);
    sw_keypair_wipe(&c->kp);
}

static void tc_connect_on(struct tc *c, struct event_base *b)
{
    struct sw_error err = { 0 };
    ck_assert_int_eq(sw_msg_session_connect(b, relay_addr, &c->kp, &server_kp.pk, NULL, &ccb, c, &c->s, &err), SW_OK);
    ck_assert_msg(th_loop_until(b, is_ready, c, 5000) && c->ready, "session not ready: %s", c->why);
}

static void tc_connect(struct tc *c) { tc_connect_on(c, base); }

struct wait_rx {
    struct tc *c;
    uint8_t type;
};
static bool has_rx(void *arg)
{
    struct wait_rx *w = arg;
    for (size_t i = 0; i < w->c->n_rx; i++)
        if (!w->c->rx[i].used && w->c->rx[i].f.type == w->type)
            return true;
    return false;
}

/* The first not yet taken frame of that type, waiting up to ms for it. */
static struct rx *tc_expect(struct tc *c, uint8_t type, int ms)
{
    struct wait_rx w = { c, type };
    ck_assert_msg(th_loop_until(base, has_rx, &w, ms), "no frame of type %u (closed=%d: %s)", type, c->closed, c->why);
    for (size_t i = 0; i < c->n_rx; i++) {
        if (!c->rx[i].used && c->rx[i].f.type == type) {
            c->rx[i].used = true;
            return &c->rx[i];
        }
    }
    return NULL;
}

struct wait_data {
    struct tc *c;
    size_t n;
};
static bool has_data(void *arg)
{
    struct wait_data *w = arg;
    return w->c->data_len >= w->n;
}

static void tc_send(struct tc *c, struct sw_msg_frame f)
{
    ck_assert_int_eq(sw_msg_session_send(c->s, &f), SW_OK);
}

static void tc_open(struct tc *c, uint32_t id, const struct sw_pk *peer, uint32_t window)
{
    tc_send(c, (struct sw_msg_frame){ .type = SW_MSG_OPEN, .stream = id, .peer = *peer, .dst_port = 80,
                                      .src_port = 1000, .window = window });
}

static void tc_data(struct tc *c, uint32_t id, const uint8_t *p, size_t n)
{
    while (n) {
        size_t k = n < 3000 ? n : 3000;
        tc_send(c, (struct sw_msg_frame){ .type = SW_MSG_DATA, .stream = id, .data = p, .data_len = k });
        p += k;
        n -= k;
    }
}

/* A and B up and both registered at the server; returns B's id of a stream A opened and
 * B accepted (A's id 1, windows as given). */
static uint32_t open_stream(struct tc *a, struct tc *b, uint32_t id, uint32_t wa, uint32_t wb)
{
    struct rx *r;
    tc_open(a, id, &b->kp.pk, wa);
    r = tc_expect(b, SW_MSG_OPEN, 3000);
    tc_send(b, (struct sw_msg_frame){ .type = SW_MSG_ACCEPT, .stream = r->f.stream, .window = wb });
    ck_assert_uint_eq(tc_expect(a, SW_MSG_ACCEPT, 3000)->f.window, wb);
    return r->f.stream;
}

static void two_clients(struct tc *a, struct tc *b, double sessions)
{
    tc_init(a);
    tc_init(b);
    tc_connect(a);
    tc_connect(b);
    wait_metric("ms_sessions", sessions, 3000);
}

/* ---- tests ---- */

START_TEST(test_relay_roundtrip)
{
    struct tc a, b;
    struct rx *r;
    uint8_t up[8192], down[5096];
    struct wait_data wd;
    uint32_t bid;

    start_ms(NULL);
    two_clients(&a, &b, 2);
    randombytes_buf(up, sizeof(up));
    randombytes_buf(down, sizeof(down));

    tc_open(&a, 1, &b.kp.pk, 4096);
    r = tc_expect(&b, SW_MSG_OPEN, 3000);
    bid = r->f.stream;
    ck_assert_uint_eq(bid % 2, 0);
    ck_assert(sw_pk_equal(&r->f.peer, &a.kp.pk)); /* the listener learns the dialer */
    ck_assert_uint_eq(r->f.dst_port, 80);
    ck_assert_uint_eq(r->f.src_port, 1000);
    ck_assert_uint_eq(r->f.window, 4096);
    tc_send(&b, (struct sw_msg_frame){ .type = SW_MSG_ACCEPT, .stream = bid, .window = 8192 });
    r = tc_expect(&a, SW_MSG_ACCEPT, 3000);
    ck_assert_uint_eq(r->f.stream, 1);
    ck_assert_uint_eq(r->f.window, 8192);

    tc_data(&a, 1, up, sizeof(up)); /* exactly B's window */
    wd = (struct wait_data){ &b, sizeof(up) };
    ck_assert(th_loop_until(base, has_data, &wd, 3000));
    ck_assert_uint_eq(b.data_len, sizeof(up));
    ck_assert_mem_eq(b.data, up, sizeof(up));

    tc_data(&b, bid, down, 4096); /* exactly A's window */
    tc_send(&a, (struct sw_msg_frame){ .type = SW_MSG_WINDOW, .stream = 1, .window = 1000 });
    r = tc_expect(&b, SW_MSG_WINDOW, 3000);
    ck_assert_uint_eq(r->f.stream, bid);
    ck_assert_uint_eq(r->f.window, 1000);
    tc_data(&b, bid, down + 4096, 1000);
    wd = (struct wait_data){ &a, sizeof(down) };
    ck_assert(th_loop_until(base, has_data, &wd, 3000));
    ck_assert_uint_eq(a.data_len, sizeof(down));
    ck_assert_mem_eq(a.data, down, sizeof(down));

    tc_send(&b, (struct sw_msg_frame){ .type = SW_MSG_FIN, .stream = bid });
    ck_assert_uint_eq(tc_expect(&a, SW_MSG_FIN, 3000)->f.stream, 1);
    tc_send(&a, (struct sw_msg_frame){ .type = SW_MSG_CLOSE, .stream = 1, .code = 0 });
    r = tc_expect(&b, SW_MSG_CLOSE, 3000);
    ck_assert_uint_eq(r->f.stream, bid);
    ck_assert_uint_eq(r->f.code, 0);

    wait_metric("ms_streams", 0, 3000);
    ck_assert(metric("ms_bytes_relayed_total") == sizeof(up) + sizeof(down));
    ck_assert(metric("ms_streams_opened_total") == 1);
    ck_assert(metric("ms_handshakes_total{result=\"ok\"}") == 2);
    ck_assert(metric("ms_protocol_errors_total") == 0);
    ck_assert_int_eq(a.closed + b.closed, 0);
    tc_free(&a);
    tc_free(&b);
}
END_TEST

START_TEST(test_credit_enforced)
{
    struct tc a, b;
    uint8_t buf[101] = { 0 };
    uint32_t bid;

    start_ms(NULL);
    two_clients(&a, &b, 2);
    bid = open_stream(&a, &b, 1, 65536, 100);
    tc_data(&a, 1, buf, 100);
    tc_data(&a, 1, buf, 1); /* one byte beyond B's credit */
    ck_assert(th_loop_until(base, is_closed, &a, 5000));
    ck_assert_int_eq(a.reason, SW_MSG_CLOSED_GOAWAY);
    ck_assert_int_eq(a.goaway, SW_GOAWAY_PROTOCOL_ERROR);
    ck_assert_uint_eq(tc_expect(&b, SW_MSG_CLOSE, 3000)->f.code, 1); /* reset */
    ck_assert_uint_eq(b.data_len, 100);
    (void)bid;
    /* the server counts the GOAWAY once the session has finished closing: poll */
    wait_metric("ms_protocol_errors_total", 1, 3000);
    wait_metric("ms_goaways_total{code=\"protocol_error\"}", 1, 3000);
    ck_assert_int_eq(b.closed, 0);
    tc_free(&a);
    tc_free(&b);
}
END_TEST

START_TEST(test_refusals)
{
    struct tc a, b;
    struct sw_keypair nobody;
    struct rx *r;
    int64_t t0;

    start_ms(NULL);
    two_clients(&a, &b, 2);
    ck_assert_int_eq(sw_keypair_generate(&nobody), SW_OK);

    t0 = sw_mono_ms();
    tc_open(&a, 1, &nobody.pk, 4096);
    r = tc_expect(&a, SW_MSG_REFUSE, 3000);
    ck_assert_uint_lt(sw_ms_since(t0), 1000); /* fast: no waiting for a timeout */
    ck_assert_uint_eq(r->f.stream, 1);
    ck_assert_uint_eq(r->f.code, SW_REFUSE_PEER_OFFLINE);

    tc_open(&a, 3, &a.kp.pk, 4096);
    r = tc_expect(&a, SW_MSG_REFUSE, 3000);
    ck_assert_uint_eq(r->f.stream, 3);
    ck_assert_uint_eq(r->f.code, SW_REFUSE_INVALID);

    /* the listener refuses: code and reason reach the dialer unchanged */
    tc_open(&a, 5, &b.kp.pk, 4096);
    r = tc_expect(&b, SW_MSG_OPEN, 3000);
    tc_send(&b, (struct sw_msg_frame){ .type = SW_MSG_REFUSE, .stream = r->f.stream,
                                       .code = SW_REFUSE_NO_LISTENER, .reason = "port 80 closed", .reason_len = 14 });
    r = tc_expect(&a, SW_MSG_REFUSE, 3000);
    ck_assert_uint_eq(r->f.stream, 5);
    ck_assert_uint_eq(r->f.code, SW_REFUSE_NO_LISTENER);
    ck_assert_str_eq(r->reason, "port 80 closed");

    /* the id is free again after a refusal */
    tc_open(&a, 5, &nobody.pk, 4096);
    ck_assert_uint_eq(tc_expect(&a, SW_MSG_REFUSE, 3000)->f.code, SW_REFUSE_PEER_OFFLINE);

    ck_assert(metric("ms_refusals_total{code=\"peer_offline\"}") == 2);
    ck_assert(metric("ms_refusals_total{code=\"invalid\"}") == 1);
    ck_assert(metric("ms_refusals_total{code=\"no_listener\"}") == 1);

    /* clients use odd ids: an even OPEN is a protocol error */
    tc_open(&b, 2, &a.kp.pk, 4096);
    ck_assert(th_loop_until(base, is_closed, &b, 5000));
    ck_assert_int_eq(b.reason, SW_MSG_CLOSED_GOAWAY);
    ck_assert_int_eq(b.goaway, SW_GOAWAY_PROTOCOL_ERROR);
    ck_assert_int_eq(a.closed, 0);
    sw_keypair_wipe(&nobody);
    tc_free(&a);
    tc_free(&b);
}
END_TEST

START_TEST(test_stream_limit)
{
    static const char *const extra[] = { "--max-streams-per-session", "2", NULL };
    struct tc a, b;
    start_ms(extra);
    two_clients(&a, &b, 2);
    open_stream(&a, &b, 1, 4096, 4096);
    open_stream(&a, &b, 3, 4096, 4096);
    tc_open(&a, 5, &b.kp.pk, 4096);
    ck_assert_uint_eq(tc_expect(&a, SW_MSG_REFUSE, 3000)->f.code, SW_REFUSE_SERVER_FULL);
    tc_send(&a, (struct sw_msg_frame){ .type = SW_MSG_CLOSE, .stream = 1, .code = 0 });
    tc_expect(&b, SW_MSG_CLOSE, 3000);
    open_stream(&a, &b, 5, 4096, 4096); /* a slot is free again */
    tc_free(&a);
    tc_free(&b);
}
END_TEST

START_TEST(test_open_timeout)
{
    static const char *const extra[] = { "--open-timeout-ms", "1000", NULL };
    struct tc a, b;
    struct rx *r;
    int64_t t0;
    uint32_t bid;

    start_ms(extra);
    two_clients(&a, &b, 2);
    t0 = sw_mono_ms();
    tc_open(&a, 7, &b.kp.pk, 4096);
    bid = tc_expect(&b, SW_MSG_OPEN, 3000)->f.stream; /* B never answers */
    r = tc_expect(&a, SW_MSG_REFUSE, 4000);
    ck_assert_uint_ge(sw_ms_since(t0), 900);
    ck_assert_uint_lt(sw_ms_since(t0), 3000);
    ck_assert_uint_eq(r->f.stream, 7);
    ck_assert_uint_eq(r->f.code, SW_REFUSE_TIMEOUT);
    r = tc_expect(&b, SW_MSG_CLOSE, 3000);
    ck_assert_uint_eq(r->f.stream, bid);
    ck_assert_uint_eq(r->f.code, 1);
    /* a late ACCEPT for the dead stream is dropped, not a protocol error */
    tc_send(&b, (struct sw_msg_frame){ .type = SW_MSG_ACCEPT, .stream = bid, .window = 10 });
    wait_metric("ms_late_frames_total", 1, 3000);
    ck_assert_int_eq(b.closed, 0);
    ck_assert(metric("ms_refusals_total{code=\"timeout\"}") == 1);
    tc_free(&a);
    tc_free(&b);
}
END_TEST

START_TEST(test_max_sessions)
{
    static const char *const extra[] = { "--max-sessions", "2", NULL };
    struct tc a, b, c;
    start_ms(extra);
    two_clients(&a, &b, 2);
    tc_init(&c);
    tc_connect(&c); /* the handshake completes ... */
    ck_assert(th_loop_until(base, is_closed, &c, 5000)); /* ... then GOAWAY(server_full) */
    ck_assert_int_eq(c.reason, SW_MSG_CLOSED_GOAWAY);
    ck_assert_int_eq(c.goaway, SW_GOAWAY_SERVER_FULL);
    open_stream(&a, &b, 1, 4096, 4096); /* the others are unaffected */
    ck_assert(metric("ms_sessions") == 2);
    ck_assert(metric("ms_goaways_total{code=\"server_full\"}") == 1);
    tc_free(&a);
    tc_free(&b);
    tc_free(&c);
}
END_TEST

START_TEST(test_replaced)
{
    struct tc a, a2, b;
    struct rx *r;
    start_ms(NULL);
    two_clients(&a, &b, 2);
    tc_init(&a2);
    sw_keypair_wipe(&a2.kp);
    a2.kp = a.kp; /* same key, second session */
    tc_connect(&a2);
    ck_assert(th_loop_until(base, is_closed, &a, 5000));
    ck_assert_int_eq(a.reason, SW_MSG_CLOSED_GOAWAY);
    ck_assert_int_eq(a.goaway, SW_GOAWAY_REPLACED);
    tc_open(&b, 1, &a2.kp.pk, 4096); /* reaches the new session */
    r = tc_expect(&a2, SW_MSG_OPEN, 3000);
    ck_assert(sw_pk_equal(&r->f.peer, &b.kp.pk));
    ck_assert(metric("ms_sessions") == 2);
    tc_free(&a);
    tc_free(&a2);
    tc_free(&b);
}
END_TEST

static int raw_connect(void)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(relay_port) };
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

/* True when the server hung up on fd within ms (EOF or reset). */
static bool hung_up(int fd, int ms)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    char buf[256];
    int64_t end = sw_deadline_ms(ms);
    while (sw_mono_ms() < end) {
        if (poll(&p, 1, 50) == 1) {
            ssize_t n = read(fd, buf, sizeof(buf));
            if (n <= 0)
                return true;
        }
    }
    return false;
}

START_TEST(test_misbehaving_clients)
{
    static const char *const extra[] = { "--handshake-timeout-ms", "1000", NULL };
    struct tc a, b;
    uint8_t junk[512], blob[20000];
    struct wait_data wd;
    uint32_t bid;
    int g1, g2, slow, silent;

    start_ms(extra);
    two_clients(&a, &b, 2);
    bid = open_stream(&a, &b, 1, 1 << 20, 1 << 20);
    g1 = raw_connect();
    g2 = raw_connect();
    slow = raw_connect();
    silent = raw_connect();
    ck_assert_int_eq(write(g1, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27), 27);
    randombytes_buf(junk, sizeof(junk));
    junk[0] = 0;
    junk[1] = 48; /* a plausible message 1 that does not authenticate */
    ck_assert_int_eq(write(g2, junk, sizeof(junk)), (ssize_t)sizeof(junk));
    ck_assert_int_eq(write(slow, "\x00\x30\x01", 3), 3); /* slowloris */

    /* A <-> B keep working meanwhile */
    randombytes_buf(blob, sizeof(blob));
    tc_data(&a, 1, blob, sizeof(blob));
    tc_data(&b, bid, blob, sizeof(blob));
    wd = (struct wait_data){ &b, sizeof(blob) };
    ck_assert(th_loop_until(base, has_data, &wd, 3000));
    wd = (struct wait_data){ &a, sizeof(blob) };
    ck_assert(th_loop_until(base, has_data, &wd, 3000));
    ck_assert_mem_eq(b.data, blob, sizeof(blob));
    ck_assert_mem_eq(a.data, blob, sizeof(blob));

    ck_assert(hung_up(g2, 2000)); /* at once: undecryptable */
    /* at the first message's deadline (here the handshake's, 1 s, which is shorter) */
    ck_assert(hung_up(slow, 3000));
    ck_assert(hung_up(silent, 3000));
    ck_assert(hung_up(g1, 3000)); /* 27 bytes: no message 1 */
    wait_metric("ms_handshakes_total{result=\"failed\"}", 4, 3000);
    wait_metric("ms_handshake_first_message_timeouts_total", 3, 1000);
    wait_metric("ms_handshakes_pending", 0, 3000);
    ck_assert_int_eq(a.closed + b.closed, 0);
    ck_assert(metric("ms_sessions") == 2);
    close(g1);
    close(g2);
    close(slow);
    close(silent);
    tc_free(&a);
    tc_free(&b);
}
END_TEST

START_TEST(test_slow_reader_dropped)
{
    static const char *const extra[] = { "--max-session-buffer", "262144", NULL };
    struct tc a, b;
    struct rx *r;
    uint8_t *chunk = calloc(1, 1 << 20);
    uint32_t id = 1;
    int i;

    start_ms(extra);
    tc_init(&a);
    tc_init(&b);
    tc_connect(&a);
    tc_connect_on(&b, base2); /* B's loop runs only until it has ACCEPTed */
    th_loop_for(base2, 50); /* flush message 3 */
    wait_metric("ms_sessions", 2, 3000);
    tc_open(&a, id, &b.kp.pk, 4096);
    {
        struct wait_rx w = { &b, SW_MSG_OPEN };
        th_loop_until2(base2, base, has_rx, &w, 3000); /* A's OPEN must leave too */
        ck_assert(has_rx(&w));
    }
    r = &b.rx[0];
    tc_send(&b, (struct sw_msg_frame){ .type = SW_MSG_ACCEPT, .stream = r->f.stream, .window = 0xffffffffu });
    {
        struct timeval tv = { 0, 20000 };
        event_base_loopexit(base2, &tv);
        event_base_dispatch(base2); /* flush the ACCEPT, then B stops reading */
    }
    tc_expect(&a, SW_MSG_ACCEPT, 3000);
    /* A sends far more than B's kernel buffers and the server's 256 KiB allow */
    for (i = 0; i < 64 && !a.closed; i++) {
        tc_data(&a, id, chunk, 1 << 20);
        event_base_loop(base, EVLOOP_NONBLOCK);
        if (metric("ms_sessions_closed_total{reason=\"overflow\"}") == 1)
            break;
        while (sw_msg_session_output_len(a.s) > (1 << 20))
            event_base_loop(base, EVLOOP_ONCE);
    }
    wait_metric("ms_sessions_closed_total{reason=\"overflow\"}", 1, 5000);
    ck_assert_uint_eq(tc_expect(&a, SW_MSG_CLOSE, 5000)->f.code, 1); /* A's stream reset */
    ck_assert_int_eq(a.closed, 0); /* A itself is fine */
    ck_assert(metric("ms_sessions") == 1);
    free(chunk);
    tc_free(&a);
    if (b.s)
        sw_msg_session_close(b.s);
    event_base_loop(base2, EVLOOP_NONBLOCK);
    free(b.data);
}
END_TEST

START_TEST(test_sigterm_goaway)
{
    struct tc a, b;
    int st;
    start_ms(NULL);
    two_clients(&a, &b, 2);
    open_stream(&a, &b, 1, 4096, 4096);
    ck_assert_int_eq(kill(ms_pid, SIGTERM), 0);
    ck_assert(th_loop_until(base, is_closed, &a, 5000));
    ck_assert(th_loop_until(base, is_closed, &b, 5000));
    ck_assert_int_eq(a.reason, SW_MSG_CLOSED_GOAWAY);
    ck_assert_int_eq(a.goaway, SW_GOAWAY_SHUTDOWN);
    ck_assert_int_eq(b.reason, SW_MSG_CLOSED_GOAWAY);
    ck_assert_int_eq(b.goaway, SW_GOAWAY_SHUTDOWN);
    st = th_stop(ms_pid, 10000);
    ms_pid = -1;
    if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0))
        th_dump_log(log_path);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "exit status 0x%x", st);
    tc_free(&a);
    tc_free(&b);
}
END_TEST

/* The server's entry appears in a real messaging discovery, follows the session count and
 * is deleted at SIGTERM. */
static long get_entry(const char *md_base, struct json_object **out)
{
    char target[128], hex[SW_PK_HEX_LEN + 1];
    sw_pk_to_hex(&server_kp.pk, hex);
    snprintf(target, sizeof(target), "/messaging-discovery/entry/%s", hex);
    return th_call(http, md_base, "GET", target, NULL, NULL, out);
}

static long entry_sessions(const char *md_base, char *addr, size_t cap)
{
    struct json_object *o = NULL, *srv;
    long v = -1;
    if (get_entry(md_base, &o) == 200 && json_object_object_get_ex(o, "server", &srv)) {
        v = (long)json_object_get_int64(json_object_object_get(srv, "available_sessions"));
        snprintf(addr, cap, "%s", json_object_get_string(json_object_object_get(srv, "address")));
    }
    json_object_put(o);
    return v;
}

START_TEST(test_discovery_registration)
{
    char md_addr[64], md_base[96], disc_arg[128], pub[64], addr[128] = "";
    const char *md_log = th_log_path("messaging-discovery-ms.log");
    uint16_t md_port = th_free_port();
    struct json_object *o = NULL;
    struct tc a;
    int64_t end;
    pid_t md;
    long v = -1;
    int st;

    snprintf(md_addr, sizeof(md_addr), "127.0.0.1:%u", md_port);
    snprintf(md_base, sizeof(md_base), "http://%s", md_addr);
    {
        char db[512];
        snprintf(db, sizeof(db), "%s", th_fresh_db("ms_it"));
        const char *argv[] = { th_bin("messaging-discovery"), "--addr", md_addr, "--db", db, NULL };
        md = th_start_service(argv, md_port, md_log);
        ck_assert_int_gt(md, 0);
    }
    snprintf(disc_arg, sizeof(disc_arg), "%s/", md_base);
    snprintf(pub, sizeof(pub), "relay.example:%u", 18081);
    {
        const char *extra[] = { "--discovery", disc_arg, "--public-addr", pub, "--max-sessions", "10", NULL };
        start_ms(extra);
    }
    for (end = sw_deadline_ms(5000); sw_mono_ms() < end && (v = entry_sessions(md_base, addr, sizeof(addr))) != 10;)
        pump(50);
    ck_assert_int_eq(v, 10);
    ck_assert_str_eq(addr, pub);

    tc_init(&a);
    tc_connect(&a); /* 10% of capacity: re-registered within about a second */
    for (end = sw_deadline_ms(5000); sw_mono_ms() < end && (v = entry_sessions(md_base, addr, sizeof(addr))) != 9;)
        pump(50);
    ck_assert_int_eq(v, 9);
    ck_assert(metric("ms_registrations_total{result=\"ok\"}") >= 2);

    ck_assert_int_eq(kill(ms_pid, SIGTERM), 0);
    ck_assert(th_loop_until(base, is_closed, &a, 5000));
    st = th_stop(ms_pid, 10000);
    ms_pid = -1;
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "exit status 0x%x", st);
    ck_assert_int_eq(get_entry(md_base, &o), 404); /* DELETEd at shutdown */
    json_object_put(o);
    th_stop(md, 5000);
    tc_free(&a);
}
END_TEST

static Suite *ms_suite(void)
{
    Suite *s = suite_create("messaging_server");
    TCase *tc = tcase_create("relay");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_relay_roundtrip);
    tcase_add_test(tc, test_credit_enforced);
    tcase_add_test(tc, test_refusals);
    tcase_add_test(tc, test_stream_limit);
    tcase_add_test(tc, test_open_timeout);
    tcase_add_test(tc, test_max_sessions);
    tcase_add_test(tc, test_replaced);
    tcase_add_test(tc, test_misbehaving_clients);
    tcase_add_test(tc, test_slow_reader_dropped);
    tcase_add_test(tc, test_sigterm_goaway);
    tcase_add_test(tc, test_discovery_registration);
    suite_add_tcase(s, tc);
    return s;
}

static int ignore_sigpipe(void)
{
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

const struct th_check_main th_check_main = {
    .suite = ms_suite,
    .fork = CK_NOFORK,
    .before = ignore_sigpipe,
};
