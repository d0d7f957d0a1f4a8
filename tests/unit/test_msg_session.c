/* Unit tests for common/msg_session.c: two sessions over a socketpair (or loopback TCP) on
 * local event_bases: handshake, frames both ways, wrong key, deadlines, garbage, PING/PONG,
 * idle timeout, GOAWAY, output overflow and on_drained, close semantics, memory use; and
 * private networks: the certificates in messages 2 and 3 and every refusal. */
#include "common/err.h"
#include "common/keys.h"
#include "common/metrics.h"
#include "common/msg_proto.h"
#include "common/msg_session.h"
#include "common/bytes.h"
#include "common/frame.h"
#include "common/network.h"
#include "common/noise.h"
#include "tests/harness/check_main.h"
#include "tests/harness/evloop.h"
#include "tests/harness/members.h"

#include <arpa/inet.h>
#include <check.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- a test endpoint: records what its session reports ---- */

#define MAX_RX 64

struct rx_frame {
    struct sw_msg_frame f; /* pointers cleared; data goes to ep.data */
    char reason[256];
};

struct ep {
    struct sw_msg_session *s;
    int ready, closed, drained;
    enum sw_msg_close_reason reason;
    int goaway;
    char why[256];
    struct rx_frame rx[MAX_RX];
    size_t n_rx;
    uint8_t *data;
    size_t data_len, data_cap;
    int reject;          /* on_frame returns an error */
    int close_in_frame;  /* on_frame closes the session */
    int closed_after_close_call; /* on_closed ran inside sw_msg_session_close */
    int send_in_closed_rc;
};

static void on_ready(struct sw_msg_session *s, void *ctx)
{
    struct ep *e = ctx;
    e->ready++;
}

static int on_frame(struct sw_msg_session *s, const struct sw_msg_frame *f, void *ctx)
{
    struct ep *e = ctx;
    if (e->n_rx < MAX_RX) {
        struct rx_frame *r = &e->rx[e->n_rx++];
        r->f = *f;
        r->f.data = NULL;
        r->f.reason = NULL;
        if (f->type == SW_MSG_REFUSE)
            snprintf(r->reason, sizeof(r->reason), "%.*s", (int)f->reason_len, f->reason);
    }
    if (f->type == SW_MSG_DATA) {
        if (e->data_len + f->data_len > e->data_cap) {
            e->data_cap = (e->data_len + f->data_len) * 2;
            e->data = realloc(e->data, e->data_cap);
            ck_assert_ptr_nonnull(e->data);
        }
        memcpy(e->data + e->data_len, f->data, f->data_len);
        e->data_len += f->data_len;
    }
    if (e->close_in_frame) {
        int before = e->closed;
        sw_msg_session_close(s);
        e->closed_after_close_call = e->closed != before;
    }
    return e->reject ? SW_EPROTO : SW_OK;
}

static void on_drained(struct sw_msg_session *s, void *ctx)
{
    struct ep *e = ctx;
    e->drained++;
}

static void on_closed(struct sw_msg_session *s, enum sw_msg_close_reason reason, int goaway,
                      const char *why, void *ctx)
{
    struct ep *e = ctx;
    struct sw_msg_frame f = { .type = SW_MSG_FIN, .stream = 1 };
    e->closed++;
    e->reason = reason;
    e->goaway = goaway;
    snprintf(e->why, sizeof(e->why), "%s", why ? why : "");
    e->send_in_closed_rc = sw_msg_session_send(s, &f);
    sw_msg_session_close(s); /* harmless no-op here */
    e->s = NULL;
}

static const struct sw_msg_session_callbacks cbs = { on_ready, on_frame, on_drained, on_closed };

static void ep_free(struct ep *e)
{
    free(e->data);
    memset(e, 0, sizeof(*e));
}

/* ---- loop conditions (the loops run in tests/harness/evloop.c) ---- */

struct pair {
    struct ep *a, *b;
};
static bool both_ready(void *arg)
{
    struct pair *p = arg;
    return p->a->ready && p->b->ready;
}
static bool both_closed(void *arg)
{
    struct pair *p = arg;
    return p->a->closed && p->b->closed;
}
static bool ep_closed(void *arg) { return ((struct ep *)arg)->closed > 0; }
static bool ep_drained(void *arg) { return ((struct ep *)arg)->drained > 0; }

static size_t want_rx;
static bool ep_has_rx(void *arg) { return ((struct ep *)arg)->n_rx >= want_rx; }
static size_t want_data;
static bool ep_has_data(void *arg) { return ((struct ep *)arg)->data_len >= want_data; }

/* ---- fixture: keys and a connected pair over a socketpair ---- */

static struct sw_keypair server_kp, client_kp, other_kp;
static struct event_base *base, *base2;

static void setup(void)
{
    ck_assert_int_eq(sw_crypto_init(), SW_OK);
    ck_assert_int_eq(sw_keypair_generate(&server_kp), SW_OK);
    ck_assert_int_eq(sw_keypair_generate(&client_kp), SW_OK);
    ck_assert_int_eq(sw_keypair_generate(&other_kp), SW_OK);
    base = event_base_new();
    base2 = event_base_new();
    ck_assert_ptr_nonnull(base);
    ck_assert_ptr_nonnull(base2);
}

static void teardown(void)
{
    event_base_free(base);
    event_base_free(base2);
    sw_keypair_wipe(&server_kp);
    sw_keypair_wipe(&client_kp);
    sw_keypair_wipe(&other_kp);
}

/* Server (responder) on sbase, client (initiator) on cbase; raw_client gets a dup of the
 * client's fd when non-NULL (to inject bytes behind the session's back). */
static void make_pair(struct event_base *sbase, struct event_base *cbase, struct ep *srv, struct ep *cli,
                      const struct sw_msg_session_opts *sopts, const struct sw_msg_session_opts *copts,
                      const struct sw_pk *server_pk, int *raw_client)
{
    int sv[2];
    struct sw_error err = { 0 };
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    if (raw_client)
        *raw_client = dup(sv[1]);
    ck_assert_int_eq(sw_msg_session_accept(sbase, sv[0], &server_kp, sopts, &cbs, srv, &srv->s, &err), SW_OK);
    ck_assert_int_eq(sw_msg_session_connect_fd(cbase, sv[1], &client_kp, server_pk ? server_pk : &server_kp.pk,
                                               copts, &cbs, cli, &cli->s, &err), SW_OK);
}

static void ready_pair(struct ep *srv, struct ep *cli)
{
    struct pair p = { srv, cli };
    make_pair(base, base, srv, cli, NULL, NULL, NULL, NULL);
    ck_assert(th_loop_until(base, both_ready, &p, 3000));
}

static void close_pair(struct ep *srv, struct ep *cli)
{
    struct pair p = { srv, cli };
    if (srv->s)
        sw_msg_session_close(srv->s);
    if (cli->s)
        sw_msg_session_close(cli->s);
    ck_assert(th_loop_until(base, both_closed, &p, 3000));
    ck_assert_int_eq(srv->closed, 1);
    ck_assert_int_eq(cli->closed, 1);
}

static int send_data(struct sw_msg_session *s, uint32_t stream, const uint8_t *p, size_t n)
{
    struct sw_msg_frame f = { .type = SW_MSG_DATA, .stream = stream, .data = p, .data_len = n };
    return sw_msg_session_send(s, &f);
}

/* ---- tests ---- */

START_TEST(test_handshake_and_frames)
{
    struct ep srv = { 0 }, cli = { 0 };
    uint8_t *big = malloc(SW_MSG_MAX_DATA);
    struct sw_msg_frame f;
    ready_pair(&srv, &cli);

    ck_assert(sw_msg_session_ready(srv.s) && sw_msg_session_ready(cli.s));
    ck_assert(sw_pk_equal(sw_msg_session_peer(srv.s), &client_kp.pk));
    ck_assert(sw_pk_equal(sw_msg_session_peer(cli.s), &server_kp.pk));
    ck_assert_int_eq(srv.ready, 1);
    ck_assert_int_eq(cli.ready, 1);

    f = (struct sw_msg_frame){ .type = SW_MSG_OPEN, .stream = 7, .peer = other_kp.pk, .dst_port = 80,
                               .src_port = 4242, .window = 262144 };
    ck_assert_int_eq(sw_msg_session_send(cli.s, &f), SW_OK);
    randombytes_buf(big, SW_MSG_MAX_DATA);
    ck_assert_int_eq(send_data(cli.s, 7, big, SW_MSG_MAX_DATA), SW_OK);
    ck_assert_int_eq(send_data(cli.s, 7, big, SW_MSG_MAX_DATA + 1), SW_EINVAL);
    f = (struct sw_msg_frame){ .type = SW_MSG_WINDOW, .stream = 7, .window = 1000 };
    ck_assert_int_eq(sw_msg_session_send(cli.s, &f), SW_OK);
    f = (struct sw_msg_frame){ .type = SW_MSG_REFUSE, .stream = 9, .code = SW_REFUSE_NO_LISTENER,
                               .reason = "nobody home", .reason_len = 11 };
    ck_assert_int_eq(sw_msg_session_send(cli.s, &f), SW_OK);
    f = (struct sw_msg_frame){ .type = SW_MSG_FIN, .stream = 7 };
    ck_assert_int_eq(sw_msg_session_send(cli.s, &f), SW_OK);
    f = (struct sw_msg_frame){ .type = SW_MSG_CLOSE, .stream = 7, .code = 1 };
    ck_assert_int_eq(sw_msg_session_send(cli.s, &f), SW_OK);
    /* session-level frames belong to the session */
    f = (struct sw_msg_frame){ .type = SW_MSG_GOAWAY };
    ck_assert_int_eq(sw_msg_session_send(cli.s, &f), SW_EINVAL);
    f = (struct sw_msg_frame){ .type = SW_MSG_PING, .token = 1 };
    ck_assert_int_eq(sw_msg_session_send(cli.s, &f), SW_EINVAL);

    want_rx = 6;
    ck_assert(th_loop_until(base, ep_has_rx, &srv, 3000));
    ck_assert_int_eq(srv.rx[0].f.type, SW_MSG_OPEN);
    ck_assert_uint_eq(srv.rx[0].f.stream, 7);
    ck_assert(sw_pk_equal(&srv.rx[0].f.peer, &other_kp.pk));
    ck_assert_uint_eq(srv.rx[0].f.dst_port, 80);
    ck_assert_uint_eq(srv.rx[0].f.src_port, 4242);
    ck_assert_uint_eq(srv.rx[0].f.window, 262144);
    ck_assert_int_eq(srv.rx[1].f.type, SW_MSG_DATA);
    ck_assert_uint_eq(srv.data_len, SW_MSG_MAX_DATA);
    ck_assert_mem_eq(srv.data, big, SW_MSG_MAX_DATA);
    ck_assert_int_eq(srv.rx[2].f.type, SW_MSG_WINDOW);
    ck_assert_uint_eq(srv.rx[2].f.window, 1000);
    ck_assert_int_eq(srv.rx[3].f.type, SW_MSG_REFUSE);
    ck_assert_str_eq(srv.rx[3].reason, "nobody home");
    ck_assert_int_eq(srv.rx[4].f.type, SW_MSG_FIN);
    ck_assert_int_eq(srv.rx[5].f.type, SW_MSG_CLOSE);
    ck_assert_uint_eq(srv.rx[5].f.code, 1);

    /* the other way: 1 MiB in many frames arrives byte-exact and in order */
    {
        size_t total = 1 << 20, off = 0;
        uint8_t *blob = malloc(total);
        randombytes_buf(blob, total);
        while (off < total) {
            size_t n = total - off < 30000 ? total - off : 30000;
            ck_assert_int_eq(send_data(srv.s, 2, blob + off, n), SW_OK);
            off += n;
        }
        want_data = total;
        ck_assert(th_loop_until(base, ep_has_data, &cli, 5000));
        ck_assert_uint_eq(cli.data_len, total);
        ck_assert_mem_eq(cli.data, blob, total);
        free(blob);
    }
    close_pair(&srv, &cli);
    ck_assert_int_eq(srv.reason, SW_MSG_CLOSED_LOCAL);
    ck_assert_int_eq(srv.send_in_closed_rc, SW_EIO);
    free(big);
    ep_free(&srv);
    ep_free(&cli);
}
END_TEST

START_TEST(test_wrong_server_key)
{
    struct ep srv = { 0 }, cli = { 0 };
    struct pair p = { &srv, &cli };
    make_pair(base, base, &srv, &cli, NULL, NULL, &other_kp.pk, NULL);
    ck_assert(th_loop_until(base, both_closed, &p, 3000));
    ck_assert_int_eq(srv.ready + cli.ready, 0);
    ck_assert_int_eq(srv.reason, SW_MSG_CLOSED_HANDSHAKE);
    ck_assert_int_eq(cli.reason, SW_MSG_CLOSED_HANDSHAKE);
    ck_assert_int_eq(srv.goaway, -1);
    ep_free(&srv);
    ep_free(&cli);
}
END_TEST

/* A server session whose peer is a raw socket the test controls. */
static int raw_server(struct ep *srv, const struct sw_msg_session_opts *opts)
{
    int sv[2];
    struct sw_error err = { 0 };
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    ck_assert_int_eq(sw_msg_session_accept(base, sv[0], &server_kp, opts, &cbs, srv, &srv->s, &err), SW_OK);
    return sv[1];
}

START_TEST(test_handshake_timeout)
{
    struct ep srv = { 0 };
    struct sw_msg_session_opts o = { .handshake_timeout_ms = 200 };
    int fd = raw_server(&srv, &o);
    int64_t t0 = sw_mono_ms();
    ck_assert_int_eq(write(fd, "\x00\x30", 2), 2); /* slowloris: a header, then nothing */
    ck_assert(th_loop_until(base, ep_closed, &srv, 3000));
    ck_assert_uint_ge(sw_ms_since(t0), 150);
    ck_assert_uint_lt(sw_ms_since(t0), 2000);
    ck_assert_int_eq(srv.reason, SW_MSG_CLOSED_HANDSHAKE);
    ck_assert_ptr_nonnull(strstr(srv.why, "within 200 ms"));
    close(fd);
    ep_free(&srv);
}
END_TEST

START_TEST(test_garbage_handshake)
{
    uint8_t junk[50];
    struct ep a = { 0 }, b = { 0 }, c = { 0 };
    int fa, fb, fc;
    char buf[64];

    /* zero length: rejected at once */
    fa = raw_server(&a, NULL);
    ck_assert_int_eq(write(fa, "\x00\x00garbage", 9), 9);
    ck_assert(th_loop_until(base, ep_closed, &a, 3000));
    ck_assert_int_eq(a.reason, SW_MSG_CLOSED_HANDSHAKE);
    /* a message 1 of the right size that does not authenticate */
    fb = raw_server(&b, NULL);
    randombytes_buf(junk, sizeof(junk));
    junk[0] = 0;
    junk[1] = 48;
    ck_assert_int_eq(write(fb, junk, sizeof(junk)), (ssize_t)sizeof(junk));
    ck_assert(th_loop_until(base, ep_closed, &b, 3000));
    ck_assert_int_eq(b.reason, SW_MSG_CLOSED_HANDSHAKE);
    /* an HTTP request: hang up mid-"frame" */
    fc = raw_server(&c, NULL);
    ck_assert_int_eq(write(fc, "GET / HTTP/1.1\r\n\r\n", 18), 18);
    shutdown(fc, SHUT_WR);
    ck_assert(th_loop_until(base, ep_closed, &c, 3000));
    ck_assert_int_eq(c.reason, SW_MSG_CLOSED_HANDSHAKE);
    /* the server hung up on each */
    ck_assert_int_le(read(fa, buf, sizeof(buf)), 0);
    ck_assert_int_le(read(fb, buf, sizeof(buf)), 0);
    close(fa);
    close(fb);
    close(fc);
    ep_free(&a);
    ep_free(&b);
    ep_free(&c);
}
END_TEST

START_TEST(test_garbage_after_ready)
{
    struct ep srv = { 0 }, cli = { 0 };
    struct pair p = { &srv, &cli };
    uint8_t junk[34];
    int raw;
    make_pair(base, base, &srv, &cli, NULL, NULL, NULL, &raw);
    ck_assert(th_loop_until(base, both_ready, &p, 3000));
    randombytes_buf(junk, sizeof(junk));
    junk[0] = 0;
    junk[1] = 32;
    ck_assert_int_eq(write(raw, junk, sizeof(junk)), (ssize_t)sizeof(junk));
    ck_assert(th_loop_until(base, ep_closed, &cli, 3000));
    close(raw); /* the dup would keep the socket open: the server waits for EOF */
    ck_assert(th_loop_until(base, both_closed, &p, 3000));
    ck_assert_int_eq(srv.reason, SW_MSG_CLOSED_PROTOCOL);
    ck_assert_int_eq(cli.reason, SW_MSG_CLOSED_GOAWAY);
    ck_assert_int_eq(cli.goaway, SW_GOAWAY_PROTOCOL_ERROR);
    ep_free(&srv);
    ep_free(&cli);
}
END_TEST

START_TEST(test_frame_rejected)
{
    struct ep srv = { 0 }, cli = { 0 };
    struct pair p = { &srv, &cli };
    struct sw_msg_frame f = { .type = SW_MSG_FIN, .stream = 3 };
    ready_pair(&srv, &cli);
    srv.reject = 1;
    ck_assert_int_eq(sw_msg_session_send(cli.s, &f), SW_OK);
    ck_assert(th_loop_until(base, both_closed, &p, 5000));
    ck_assert_int_eq(srv.reason, SW_MSG_CLOSED_PROTOCOL);
    ck_assert_int_eq(cli.reason, SW_MSG_CLOSED_GOAWAY);
    ck_assert_int_eq(cli.goaway, SW_GOAWAY_PROTOCOL_ERROR);
    ep_free(&srv);
    ep_free(&cli);
}
END_TEST

START_TEST(test_ping_keeps_alive)
{
    struct ep srv = { 0 }, cli = { 0 };
    struct sw_msg_session_opts o = { .ping_interval_ms = 50, .idle_timeout_ms = 200 };
    struct pair p = { &srv, &cli };
    make_pair(base, base, &srv, &cli, &o, &o, NULL, NULL);
    ck_assert(th_loop_until(base, both_ready, &p, 3000));
    th_loop_for(base, 800); /* four idle timeouts: PING/PONG keep both alive */
    ck_assert_int_eq(srv.closed + cli.closed, 0);
    ck_assert_int_eq(srv.n_rx + cli.n_rx, 0); /* PING/PONG never reach on_frame */
    close_pair(&srv, &cli);
    ep_free(&srv);
    ep_free(&cli);
}
END_TEST

START_TEST(test_idle_timeout)
{
    struct ep srv = { 0 }, cli = { 0 };
    struct sw_msg_session_opts o = { .ping_interval_ms = 50, .idle_timeout_ms = 200 };
    struct pair p = { &srv, &cli };
    int64_t t0;
    make_pair(base, base2, &srv, &cli, &o, NULL, NULL, NULL);
    ck_assert(th_loop_until2(base, base2, both_ready, &p, 3000));
    /* the client's loop stops: nobody answers the server's PINGs */
    t0 = sw_mono_ms();
    th_loop_for(base, 400); /* PING at 50 ms, GOAWAY(idle_timeout) at 200 ms */
    ck_assert(th_loop_until2(base, base2, both_closed, &p, 3000));
    ck_assert_uint_ge(sw_ms_since(t0), 150);
    ck_assert_int_eq(srv.reason, SW_MSG_CLOSED_IDLE);
    ck_assert_int_eq(cli.reason, SW_MSG_CLOSED_GOAWAY);
    ck_assert_int_eq(cli.goaway, SW_GOAWAY_IDLE_TIMEOUT);
    ep_free(&srv);
    ep_free(&cli);
}
END_TEST

START_TEST(test_goaway)
{
    struct ep srv = { 0 }, cli = { 0 };
    struct pair p = { &srv, &cli };
    struct sw_msg_frame f = { .type = SW_MSG_FIN, .stream = 2 };
    ready_pair(&srv, &cli);
    ck_assert_int_eq(sw_msg_session_send(srv.s, &f), SW_OK);
    sw_msg_session_goaway(srv.s, SW_GOAWAY_SHUTDOWN);
    ck_assert_int_eq(sw_msg_session_send(srv.s, &f), SW_EIO);
    sw_msg_session_goaway(srv.s, SW_GOAWAY_REPLACED); /* second one: ignored */
    ck_assert_int_eq(srv.closed, 0);
    ck_assert(th_loop_until(base, both_closed, &p, 5000));
    ck_assert_int_eq(cli.n_rx, 1); /* what was queued before GOAWAY still arrived */
    ck_assert_int_eq(cli.reason, SW_MSG_CLOSED_GOAWAY);
    ck_assert_int_eq(cli.goaway, SW_GOAWAY_SHUTDOWN);
    ck_assert_int_eq(srv.reason, SW_MSG_CLOSED_LOCAL);
    th_loop_for(base, 50);
    ck_assert_int_eq(srv.closed, 1);
    ck_assert_int_eq(cli.closed, 1);
    ep_free(&srv);
    ep_free(&cli);
}
END_TEST

START_TEST(test_overflow_and_drained)
{
    struct ep srv = { 0 }, cli = { 0 };
    struct sw_msg_session_opts o = { .max_output = 1 << 20 };
    struct pair p = { &srv, &cli };
    uint8_t *chunk = calloc(1, 60000);
    int rc = SW_OK, i;
    make_pair(base, base2, &srv, &cli, &o, NULL, NULL, NULL);
    ck_assert(th_loop_until2(base, base2, both_ready, &p, 3000));

    /* above half, then the reader catches up: on_drained */
    for (i = 0; i < 10; i++)
        ck_assert_int_eq(send_data(srv.s, 2, chunk, 60000), SW_OK);
    ck_assert_uint_gt(sw_msg_session_output_len(srv.s), (size_t)(1 << 19));
    ck_assert_int_eq(srv.drained, 0);
    ck_assert(th_loop_until2(base, base2, ep_drained, &srv, 5000));
    ck_assert_uint_le(sw_msg_session_output_len(srv.s), (size_t)(1 << 19));
    want_data = 600000;
    ck_assert(th_loop_until2(base, base2, ep_has_data, &cli, 5000));

    /* the reader stops for good: the session is dropped past max_output */
    for (i = 0; i < 40 && rc == SW_OK; i++)
        rc = send_data(srv.s, 2, chunk, 60000);
    ck_assert_int_eq(rc, SW_EIO);
    ck_assert_int_eq(srv.closed, 0); /* never from inside send */
    ck_assert(th_loop_until(base, ep_closed, &srv, 3000));
    ck_assert_int_eq(srv.reason, SW_MSG_CLOSED_OVERFLOW);
    ck_assert(th_loop_until(base2, ep_closed, &cli, 3000));
    free(chunk);
    ep_free(&srv);
    ep_free(&cli);
}
END_TEST

START_TEST(test_close_not_reentrant)
{
    struct ep srv = { 0 }, cli = { 0 };
    struct sw_msg_frame f = { .type = SW_MSG_FIN, .stream = 3 };
    struct sw_msg_session *s;
    ready_pair(&srv, &cli);
    srv.close_in_frame = 1;
    ck_assert_int_eq(sw_msg_session_send(cli.s, &f), SW_OK);
    ck_assert_int_eq(sw_msg_session_send(cli.s, &f), SW_OK);
    ck_assert(th_loop_until(base, ep_closed, &srv, 3000));
    ck_assert_int_eq(srv.closed_after_close_call, 0);
    ck_assert_int_eq(srv.n_rx, 1); /* nothing delivered after close */
    ck_assert_int_eq(srv.reason, SW_MSG_CLOSED_LOCAL);
    ck_assert(th_loop_until(base, ep_closed, &cli, 3000));
    ck_assert_int_eq(cli.reason, SW_MSG_CLOSED_EOF);
    th_loop_for(base, 30);
    ck_assert_int_eq(srv.closed, 1);
    ck_assert_int_eq(cli.closed, 1);

    /* close right after creation: on_closed comes from the loop, once */
    {
        struct ep a = { 0 }, b = { 0 };
        struct pair p = { &a, &b };
        make_pair(base, base, &a, &b, NULL, NULL, NULL, NULL);
        s = a.s;
        sw_msg_session_close(s);
        sw_msg_session_close(s);
        ck_assert_int_eq(a.closed, 0);
        ck_assert(th_loop_until(base, both_closed, &p, 3000));
        ck_assert_int_eq(a.closed, 1);
        ck_assert_int_eq(a.reason, SW_MSG_CLOSED_LOCAL);
        ck_assert_int_eq(b.reason, SW_MSG_CLOSED_HANDSHAKE);
        ep_free(&a);
        ep_free(&b);
    }
    ep_free(&srv);
    ep_free(&cli);
}
END_TEST

START_TEST(test_send_before_ready)
{
    struct ep srv = { 0 }, cli = { 0 };
    struct sw_msg_frame f = { .type = SW_MSG_FIN, .stream = 1 };
    make_pair(base, base, &srv, &cli, NULL, NULL, NULL, NULL);
    ck_assert_int_eq(sw_msg_session_send(srv.s, &f), SW_EINVAL);
    ck_assert_int_eq(sw_msg_session_send(cli.s, &f), SW_EINVAL);
    ck_assert_ptr_null(sw_msg_session_peer(srv.s));      /* responder: unknown yet */
    ck_assert_ptr_nonnull(sw_msg_session_peer(cli.s));   /* initiator: the server it dialed */
    ck_assert(!sw_msg_session_ready(srv.s));
    close_pair(&srv, &cli);
    ep_free(&srv);
    ep_free(&cli);
}
END_TEST

/* ---- over TCP through sw_msg_session_connect ---- */

struct tcp_srv {
    struct ep ep;
};

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len, void *arg)
{
    struct tcp_srv *t = arg;
    struct sw_error err = { 0 };
    ck_assert_int_eq(sw_msg_session_accept(base, fd, &server_kp, NULL, &cbs, &t->ep, &t->ep.s, &err), SW_OK);
}

START_TEST(test_connect_tcp)
{
    struct tcp_srv t = { 0 };
    struct ep cli = { 0 }, bad = { 0 }, refused = { 0 };
    struct pair p = { &t.ep, &cli };
    struct sockaddr_in a = { .sin_family = AF_INET };
    socklen_t alen = sizeof(a);
    struct sw_error err = { 0 };
    struct sw_msg_frame f = { .type = SW_MSG_WINDOW, .stream = 1, .window = 5 };
    struct sw_msg_session *s = NULL;
    struct evconnlistener *l;
    char hp[64], want[64];

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    l = evconnlistener_new_bind(base, accept_cb, &t, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 16,
                                (struct sockaddr *)&a, sizeof(a));
    ck_assert_ptr_nonnull(l);
    ck_assert_int_eq(getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&a, &alen), 0);
    snprintf(hp, sizeof(hp), "127.0.0.1:%u", ntohs(a.sin_port));
    ck_assert_int_eq(sw_msg_session_connect(base, hp, &client_kp, &server_kp.pk, NULL, &cbs, &cli, &cli.s, &err), SW_OK);
    ck_assert(th_loop_until(base, both_ready, &p, 3000));
    ck_assert_str_eq(sw_msg_session_remote_addr(cli.s), hp);
    ck_assert_int_eq(sw_msg_session_send(cli.s, &f), SW_OK);
    want_rx = 1;
    ck_assert(th_loop_until(base, ep_has_rx, &t.ep, 3000));
    ck_assert_uint_eq(t.ep.rx[0].f.window, 5);
    snprintf(want, sizeof(want), "127.0.0.1:");
    ck_assert(strncmp(sw_msg_session_remote_addr(t.ep.s), want, strlen(want)) == 0);
    close_pair(&t.ep, &cli);
    evconnlistener_free(l);

    /* malformed address: an error now, no callback */
    ck_assert_int_eq(sw_msg_session_connect(base, "no-port", &client_kp, &server_kp.pk, NULL, &cbs, &bad, &s, &err), SW_EINVAL);
    ck_assert_int_eq(sw_msg_session_connect(base, "[::1]80", &client_kp, &server_kp.pk, NULL, &cbs, &bad, &s, &err), SW_EINVAL);
    /* nobody listens any more: reported through on_closed */
    ck_assert_int_eq(sw_msg_session_connect(base, hp, &client_kp, &server_kp.pk, NULL, &cbs, &refused, &refused.s, &err), SW_OK);
    ck_assert_int_eq(refused.closed, 0);
    ck_assert(th_loop_until(base, ep_closed, &refused, 3000));
    ck_assert_int_eq(refused.reason, SW_MSG_CLOSED_IO);
    ck_assert_int_eq(bad.closed, 0);
    ep_free(&t.ep);
    ep_free(&cli);
    ep_free(&refused);
}
END_TEST

/* Heap bytes per idle, established session (both sides counted separately). */
START_TEST(test_idle_memory)
{
    enum { N = 200 };
    static struct ep srv[N], cli[N];
    struct mallinfo2 m0, m1;
    size_t i, ready = 0;
    double per;

    m0 = mallinfo2();
    for (i = 0; i < N; i++)
        make_pair(base, base, &srv[i], &cli[i], NULL, NULL, NULL, NULL);
    for (int round = 0; round < 300 && ready < N; round++) {
        event_base_loop(base, EVLOOP_NONBLOCK);
        for (ready = 0, i = 0; i < N; i++)
            ready += srv[i].ready && cli[i].ready;
    }
    ck_assert_uint_eq(ready, N);
    m1 = mallinfo2();
    per = ((double)m1.uordblks - (double)m0.uordblks) / (2.0 * N);
    printf("msg_session: %.0f heap bytes per idle session (libevent + session state)\n", per);
    ck_assert(per < 4096);
    for (i = 0; i < N; i++) {
        sw_msg_session_close(srv[i].s);
        sw_msg_session_close(cli[i].s);
    }
    th_loop_for(base, 50);
    for (i = 0; i < N; i++) {
        ck_assert_int_eq(srv[i].closed, 1);
        ck_assert_int_eq(cli[i].closed, 1);
        ep_free(&srv[i]);
        ep_free(&cli[i]);
    }
}
END_TEST

/* ---- private networks ---- */

static struct th_network net_a, net_b;
static char cert_dir[64];

static void private_setup(void)
{
    setup();
    th_network_init(&net_a);
    th_network_init(&net_b);
    snprintf(cert_dir, sizeof(cert_dir), "/tmp/sw-msgsess-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(cert_dir));
}

static void private_teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", cert_dir);
    ck_assert_int_eq(system(cmd), 0);
    sw_keypair_wipe(&net_a.kp);
    sw_keypair_wipe(&net_b.kp);
    teardown();
}

/* kp's membership of n with role (its certificate written to a file, as daemons read it). */
static struct sw_network *member(const struct th_network *n, const struct sw_keypair *kp, unsigned role)
{
    static unsigned seq;
    struct sw_network *net = NULL;
    struct sw_error err = { 0 };
    char path[128];
    snprintf(path, sizeof(path), "%s/%u.cert", cert_dir, seq++);
    th_network_cert_file(n, &kp->pk, role, 3600, path);
    struct sw_network_opts o = { .network_pk = n->pk_hex, .self = &kp->pk, .cert_file = path };
    ck_assert_msg(sw_network_open(&net, &o, &err) == SW_OK, "%s", err.msg);
    ck_assert_ptr_nonnull(net);
    return net;
}

/* Runs a pair with these policies (NULL = open) until both ended or both are ready. */
static void private_pair(struct ep *srv, struct ep *cli, struct sw_network *snet, struct sw_network *cnet)
{
    struct sw_msg_session_opts so = { .network = snet }, co = { .network = cnet };
    struct pair p = { srv, cli };
    make_pair(base, base, srv, cli, &so, &co, NULL, NULL);
    ck_assert(th_loop_until(base, both_closed, &p, 3000) || both_ready(&p));
}

START_TEST(test_private_members)
{
    struct ep srv = { 0 }, cli = { 0 };
    struct sw_network *snet = member(&net_a, &server_kp, SW_ROLE_MESSAGING_SERVER);
    struct sw_network *cnet = member(&net_a, &client_kp, SW_ROLE_SETUP_NODE);
    const struct sw_cert *c;
    struct pair p = { &srv, &cli };
    struct sw_msg_session_opts so = { .network = snet }, co = { .network = cnet };

    make_pair(base, base, &srv, &cli, &so, &co, NULL, NULL);
    ck_assert(th_loop_until(base, both_ready, &p, 3000));
    ck_assert_ptr_nonnull(c = sw_msg_session_peer_cert(srv.s));
    ck_assert_int_eq(c->role, SW_ROLE_SETUP_NODE);
    ck_assert(sw_pk_equal(&c->subject, &client_kp.pk));
    ck_assert_ptr_nonnull(c = sw_msg_session_peer_cert(cli.s));
    ck_assert_int_eq(c->role, SW_ROLE_MESSAGING_SERVER);
    ck_assert(sw_pk_equal(&c->subject, &server_kp.pk));
    close_pair(&srv, &cli);
    /* an open pair carries no certificates */
    ep_free(&srv);
    ep_free(&cli);
    ready_pair(&srv, &cli);
    ck_assert_ptr_null(sw_msg_session_peer_cert(srv.s));
    ck_assert_ptr_null(sw_msg_session_peer_cert(cli.s));
    close_pair(&srv, &cli);
    ep_free(&srv);
    ep_free(&cli);
    sw_network_close(snet);
    sw_network_close(cnet);
}
END_TEST

/* The server refuses: it never reports ready, says why, and the client hears GOAWAY(not_a_member). */
static void expect_server_refused(struct ep *srv, struct ep *cli, const char *why)
{
    struct pair p = { srv, cli };
    ck_assert(th_loop_until(base, both_closed, &p, 3000));
    ck_assert_int_eq(srv->ready, 0);
    ck_assert_int_eq(srv->reason, SW_MSG_CLOSED_REFUSED);
    ck_assert_msg(strstr(srv->why, why), "server: %s", srv->why);
    ck_assert_int_eq(cli->reason, SW_MSG_CLOSED_GOAWAY);
    ck_assert_int_eq(cli->goaway, SW_GOAWAY_NOT_A_MEMBER);
    ep_free(srv);
    ep_free(cli);
}

START_TEST(test_private_client_refused)
{
    struct ep srv = { 0 }, cli = { 0 };
    struct sw_network *snet = member(&net_a, &server_kp, SW_ROLE_MESSAGING_SERVER);
    struct sw_network *wrong_role = member(&net_a, &client_kp, SW_ROLE_MESSAGING_SERVER);

    private_pair(&srv, &cli, snet, NULL); /* an open client: no certificate */
    expect_server_refused(&srv, &cli, "no certificate");
    private_pair(&srv, &cli, snet, wrong_role); /* a member, but not one that may use a server */
    expect_server_refused(&srv, &cli, "role messaging-server, expected visor, setup-node or service");
    sw_network_close(snet);
    sw_network_close(wrong_role);
}
END_TEST

/* The client refuses the server in message 2: no message 3, the server sees a hang-up. */
static void expect_client_refused(struct ep *srv, struct ep *cli, const char *why)
{
    struct pair p = { srv, cli };
    ck_assert(th_loop_until(base, both_closed, &p, 3000));
    ck_assert_int_eq(srv->ready + cli->ready, 0);
    ck_assert_int_eq(cli->reason, SW_MSG_CLOSED_REFUSED);
    ck_assert_msg(strstr(cli->why, why), "client: %s", cli->why);
    ck_assert_int_eq(srv->reason, SW_MSG_CLOSED_HANDSHAKE);
    ep_free(srv);
    ep_free(cli);
}

START_TEST(test_private_server_refused)
{
    struct ep srv = { 0 }, cli = { 0 };
    struct sw_network *cnet = member(&net_a, &client_kp, SW_ROLE_VISOR);
    struct sw_network *visor_server = member(&net_a, &server_kp, SW_ROLE_VISOR);
    struct sw_network *other_net = member(&net_b, &server_kp, SW_ROLE_MESSAGING_SERVER);

    private_pair(&srv, &cli, NULL, cnet); /* an open server sends no certificate */
    expect_client_refused(&srv, &cli, "no certificate");
    private_pair(&srv, &cli, visor_server, cnet); /* a visor key posing as a messaging server */
    expect_client_refused(&srv, &cli, "role visor, expected messaging-server");
    private_pair(&srv, &cli, other_net, cnet); /* a server of another network */
    expect_client_refused(&srv, &cli, "server not a member");
    sw_network_close(cnet);
    sw_network_close(visor_server);
    sw_network_close(other_net);
}
END_TEST

/* ---- a raw XK client: sends whatever certificate bytes the test wants in message 3 ---- */

static bool fd_readable(void *arg)
{
    struct pollfd p = { .fd = *(int *)arg, .events = POLLIN };
    return poll(&p, 1, 0) == 1;
}

/* One framed message from fd (the server's loop runs meanwhile); its length, 0 on EOF. */
static size_t raw_read(int fd, uint8_t *buf, size_t cap)
{
    uint8_t hdr[2];
    size_t n, got = 0;
    if (!th_loop_until(base, fd_readable, &fd, 3000) || read(fd, hdr, 2) != 2)
        return 0;
    n = sw_get_u16(hdr);
    ck_assert_uint_le(n, cap);
    while (got < n) {
        ssize_t r;
        ck_assert(th_loop_until(base, fd_readable, &fd, 3000));
        r = read(fd, buf + got, n - got);
        ck_assert_int_gt(r, 0);
        got += (size_t)r;
    }
    return n;
}

static void raw_write(int fd, struct sw_noise_hs *hs, const uint8_t *pl, size_t len)
{
    uint8_t msg[2 + 128 + SW_PK_LEN + SW_CERT_MAX_LEN];
    size_t n;
    ck_assert_int_eq(sw_noise_hs_write_message(hs, pl, len, msg + 2, sizeof(msg) - 2, &n), SW_OK);
    sw_put_u16(msg, (uint16_t)n);
    ck_assert_int_eq(write(fd, msg, n + 2), (ssize_t)(n + 2));
}

/* Completes XK as client_kp with message 3 = our key || cert[len]; returns the GOAWAY code
 * the server sends (-1: none, the session stayed up). */
static int raw_client_cert(struct ep *srv, struct sw_network *snet, const uint8_t *cert, size_t len)
{
    struct sw_msg_session_opts so = { .network = snet };
    struct sw_noise_hs hs;
    struct sw_noise_cipher tx, rx;
    struct sw_msg_frame f;
    uint8_t buf[1024], pl[SW_PK_LEN + SW_CERT_MAX_LEN];
    size_t n, plen;
    int sv[2], code = -1;
    struct sw_error err = { 0 };

    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    ck_assert_int_eq(sw_msg_session_accept(base, sv[0], &server_kp, &so, &cbs, srv, &srv->s, &err), SW_OK);
    ck_assert_int_eq(sw_noise_hs_init_ed25519(&hs, SW_NOISE_XK, SW_NOISE_INITIATOR, SW_MSG_PROLOGUE,
                                              &client_kp, &server_kp.pk), SW_OK);
    raw_write(sv[1], &hs, NULL, 0);
    ck_assert_uint_gt(n = raw_read(sv[1], buf, sizeof(buf)), 0);
    ck_assert_int_eq(sw_noise_hs_read_message(&hs, buf, n, pl, sizeof(pl), &plen), SW_OK);
    ck_assert_uint_gt(plen, 0); /* the server's certificate */
    memcpy(pl, client_kp.pk.b, SW_PK_LEN);
    memcpy(pl + SW_PK_LEN, cert, len);
    raw_write(sv[1], &hs, pl, SW_PK_LEN + len);
    ck_assert_int_eq(sw_noise_hs_split(&hs, &tx, &rx), SW_OK);
    th_loop_for(base, 50);
    if (srv->ready == 0 && (n = raw_read(sv[1], buf, sizeof(buf))) > 0) {
        ck_assert_int_eq(sw_noise_decrypt(&rx, NULL, 0, buf, n, buf), SW_OK);
        ck_assert_int_eq(sw_msg_frame_decode(buf, n - SW_NOISE_TAG, &f, NULL), SW_OK);
        ck_assert_int_eq(f.type, SW_MSG_GOAWAY);
        code = f.code;
    }
    close(sv[1]);
    if (srv->s)
        sw_msg_session_close(srv->s);
    ck_assert(th_loop_until(base, ep_closed, srv, 3000));
    return code;
}

START_TEST(test_private_bad_certificates)
{
    struct ep srv = { 0 };
    struct sw_network *snet = member(&net_a, &server_kp, SW_ROLE_MESSAGING_SERVER);
    uint8_t cert[SW_CERT_MAX_LEN], list_cert[SW_CERT_MAX_LEN];
    size_t len, list_len;
    static const struct {
        const char *what, *why;
    } cases[] = {
        { "valid", NULL },
        { "another network", "not a member" },
        { "expired", "expired" },
        { "another key", "for another key" },
        { "flipped bit", "not a member" },
        { "truncated", "not a member" },
        { "revoked", "is revoked" },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sw_pk who = client_kp.pk;
        const struct th_network *n = i == 1 ? &net_b : &net_a;
        if (i == 3)
            who = other_kp.pk;
        th_network_cert(n, &who, SW_ROLE_VISOR, i == 2 ? -10 : 3600, NULL, cert, &len);
        if (i == 4)
            cert[len - 5] ^= 0x10; /* inside the signature */
        if (i == 5)
            len -= 1;
        if (i == 6) { /* the network revokes the client before it connects */
            struct sw_revlist l;
            uint8_t *enc;
            memset(&l, 0, sizeof(l));
            ck_assert_int_eq(sw_revlist_update(&l, &client_kp.pk, false), SW_OK);
            ck_assert_int_eq(sw_revlist_sign(&l, &net_a.kp, (uint64_t)(sw_unix_ms() / 1000)), SW_OK);
            ck_assert_int_eq(sw_revlist_encode(&l, &enc, &list_len), SW_OK);
            ck_assert_int_eq(sw_network_offer_revocations(snet, enc, list_len, NULL), SW_OK);
            free(enc);
            sw_revlist_free(&l);
        }
        memcpy(list_cert, cert, len);
        int code = raw_client_cert(&srv, snet, list_cert, len);
        if (!cases[i].why) {
            ck_assert_msg(code == -1 && srv.ready == 1, "%s: refused (%s)", cases[i].what, srv.why);
        } else {
            ck_assert_msg(code == SW_GOAWAY_NOT_A_MEMBER, "%s: goaway %d", cases[i].what, code);
            ck_assert_int_eq(srv.reason, SW_MSG_CLOSED_REFUSED);
            ck_assert_msg(strstr(srv.why, cases[i].why), "%s: %s", cases[i].what, srv.why);
        }
        ep_free(&srv);
    }
    sw_network_close(snet);
}
END_TEST

static Suite *session_suite(void)
{
    Suite *s = suite_create("msg_session");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_handshake_and_frames);
    tcase_add_test(tc, test_wrong_server_key);
    tcase_add_test(tc, test_handshake_timeout);
    tcase_add_test(tc, test_garbage_handshake);
    tcase_add_test(tc, test_garbage_after_ready);
    tcase_add_test(tc, test_frame_rejected);
    tcase_add_test(tc, test_ping_keeps_alive);
    tcase_add_test(tc, test_idle_timeout);
    tcase_add_test(tc, test_goaway);
    tcase_add_test(tc, test_overflow_and_drained);
    tcase_add_test(tc, test_close_not_reentrant);
    tcase_add_test(tc, test_send_before_ready);
    tcase_add_test(tc, test_connect_tcp);
    tcase_add_test(tc, test_idle_memory);
    suite_add_tcase(s, tc);
    tc = tcase_create("private");
    tcase_add_checked_fixture(tc, private_setup, private_teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_private_members);
    tcase_add_test(tc, test_private_client_refused);
    tcase_add_test(tc, test_private_server_refused);
    tcase_add_test(tc, test_private_bad_certificates);
    suite_add_tcase(s, tc);
    return s;
}

static int ignore_sigpipe(void)
{
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

const struct th_check_main th_check_main = { .suite = session_suite, .before = ignore_sigpipe };
