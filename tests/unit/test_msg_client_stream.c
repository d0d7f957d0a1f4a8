/* Unit tests for the messaging client's pure logic (common/msg_flow.c): stream credit
 * accounting, record sizing, the bounded receive ring;
 * and sw_msg_accept's parsing of listener messages (fd passing over a SEQPACKET pair). */
#include "common/msg_client.h"
#include "common/msg_client_internal.h"
#include "tests/harness/check_main.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

START_TEST(test_credit_receive_limit)
{
    struct mc_credit cr;
    mc_credit_init(&cr, 1000);
    ck_assert_int_eq(mc_credit_receive(&cr, 600), SW_OK);
    ck_assert_int_eq(mc_credit_receive(&cr, 401), SW_ERANGE); /* beyond credit: nothing changes */
    ck_assert_uint_eq(cr.avail, 400);
    ck_assert_int_eq(mc_credit_receive(&cr, 400), SW_OK);
    ck_assert_int_eq(mc_credit_receive(&cr, 1), SW_ERANGE);
}
END_TEST

START_TEST(test_credit_grants_at_half)
{
    struct mc_credit cr;
    mc_credit_init(&cr, 1000);
    ck_assert_int_eq(mc_credit_receive(&cr, 1000), SW_OK);
    ck_assert_uint_eq(mc_credit_consume(&cr, 300), 0);   /* below half: nothing yet */
    ck_assert_uint_eq(mc_credit_consume(&cr, 199), 0);
    ck_assert_uint_eq(mc_credit_consume(&cr, 1), 500);   /* half consumed: grant it all */
    ck_assert_uint_eq(cr.avail, 500);
    ck_assert_uint_eq(cr.consumed, 0);
    ck_assert_uint_eq(mc_credit_consume(&cr, 0), 0);
    ck_assert_uint_eq(mc_credit_consume(&cr, 500), 500);
    ck_assert_uint_eq(cr.avail, 1000);                    /* never more than the window */
}
END_TEST

/* Random traffic: the peer's credit never exceeds the window and buffered bytes (received,
 * not consumed) never exceed it either. */
START_TEST(test_credit_invariant)
{
    struct mc_credit cr;
    uint64_t received = 0, consumed = 0, granted = 0;
    mc_credit_init(&cr, SW_MSG_DEFAULT_WINDOW);
    for (int i = 0; i < 100000; i++) {
        if (randombytes_uniform(2) && cr.avail) {
            size_t n = 1 + randombytes_uniform((uint32_t)(cr.avail < 70000 ? cr.avail : 70000));
            ck_assert_int_eq(mc_credit_receive(&cr, n), SW_OK);
            received += n;
        } else if (received > consumed) {
            size_t n = 1 + randombytes_uniform((uint32_t)(received - consumed));
            granted += mc_credit_consume(&cr, n);
            consumed += n;
        }
        ck_assert_uint_le(received - consumed, SW_MSG_DEFAULT_WINDOW);
        ck_assert_uint_eq(cr.avail, SW_MSG_DEFAULT_WINDOW - (received - granted));
        ck_assert_uint_lt(consumed - granted, SW_MSG_DEFAULT_WINDOW / 2);
    }
}
END_TEST

START_TEST(test_send_chunk)
{
    ck_assert_uint_eq(mc_send_chunk(0, 100), 0);
    ck_assert_uint_eq(mc_send_chunk(MC_REC_OVERHEAD, 100), 0);
    ck_assert_uint_eq(mc_send_chunk(MC_REC_OVERHEAD + 1, 100), 1);
    ck_assert_uint_eq(mc_send_chunk(1000, 100), 100);
    ck_assert_uint_eq(mc_send_chunk(1000, 5000), 1000 - MC_REC_OVERHEAD);
    ck_assert_uint_eq(mc_send_chunk(SW_MSG_DEFAULT_WINDOW, SIZE_MAX), MC_MAX_CHUNK);
    ck_assert_uint_eq(MC_MAX_CHUNK, 65496);
    /* a full record is exactly the largest DATA body */
    ck_assert_uint_eq(MC_MAX_CHUNK + MC_REC_OVERHEAD, SW_MSG_MAX_DATA);
}
END_TEST

START_TEST(test_ring_wrap)
{
    struct mc_ring r;
    uint8_t out[16];
    const uint8_t *p;
    size_t n;

    mc_ring_init(&r, 10);
    ck_assert_ptr_null(mc_ring_peek(&r, &n));
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(mc_ring_push(&r, "abcdefgh", 8), SW_OK);
    ck_assert_int_eq(mc_ring_push(&r, "XYZ", 3), SW_ERANGE); /* all or nothing */
    ck_assert_uint_eq(r.len, 8);
    mc_ring_drop(&r, 6);
    ck_assert_int_eq(mc_ring_push(&r, "ijklmn", 6), SW_OK);  /* wraps around */
    p = mc_ring_peek(&r, &n);
    ck_assert_uint_eq(n, 4);                                 /* g h i j up to the end */
    memcpy(out, p, n);
    mc_ring_drop(&r, n);
    p = mc_ring_peek(&r, &n);
    ck_assert_uint_eq(n, 4);
    memcpy(out + 4, p, n);
    ck_assert_mem_eq(out, "ghijklmn", 8);
    mc_ring_drop(&r, 100); /* more than held: empties */
    ck_assert_uint_eq(r.len, 0);
    ck_assert_int_eq(mc_ring_push(&r, "0123456789", 10), SW_OK); /* exactly full */
    ck_assert_int_eq(mc_ring_push(&r, "x", 1), SW_ERANGE);
    mc_ring_free(&r);
    ck_assert_ptr_null(r.buf);
}
END_TEST

/* Random pushes/drops against a reference FIFO. */
START_TEST(test_ring_random)
{
    struct mc_ring r;
    uint8_t *ref = malloc(1 << 20), chunk[300];
    size_t ref_head = 0, ref_len = 0;
    uint8_t next = 0;

    mc_ring_init(&r, 1000);
    for (int i = 0; i < 50000; i++) {
        if (randombytes_uniform(2)) {
            size_t n = randombytes_uniform(sizeof(chunk));
            for (size_t k = 0; k < n; k++)
                chunk[k] = next++;
            if (mc_ring_push(&r, chunk, n) == SW_OK) {
                ck_assert_uint_le(ref_head + ref_len + n, 1 << 20);
                memcpy(ref + ref_head + ref_len, chunk, n);
                ref_len += n;
            } else {
                next = (uint8_t)(next - n);
                ck_assert_uint_gt(r.len + n, r.cap);
            }
        } else {
            size_t n;
            const uint8_t *p = mc_ring_peek(&r, &n);
            size_t take = n ? randombytes_uniform((uint32_t)n) + 1 : 0;
            if (take)
                ck_assert_mem_eq(p, ref + ref_head, take);
            mc_ring_drop(&r, take);
            ref_head += take;
            ref_len -= take;
        }
        ck_assert_uint_eq(r.len, ref_len);
        if (ref_head > (1 << 19)) {
            memmove(ref, ref + ref_head, ref_len);
            ref_head = 0;
        }
    }
    mc_ring_free(&r);
    free(ref);
}
END_TEST

/* sw_msg_accept against a hand-made listener pair. */
static void send_with_fd(int sock, const void *hdr, size_t len, int fd)
{
    union { struct cmsghdr h; char b[CMSG_SPACE(sizeof(int))]; } ctl;
    struct iovec iov = { .iov_base = (void *)hdr, .iov_len = len };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
    memset(&ctl, 0, sizeof(ctl));
    if (fd >= 0) {
        struct cmsghdr *ch;
        m.msg_control = ctl.b;
        m.msg_controllen = sizeof(ctl.b);
        ch = CMSG_FIRSTHDR(&m);
        ch->cmsg_level = SOL_SOCKET;
        ch->cmsg_type = SCM_RIGHTS;
        ch->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(ch), &fd, sizeof(int));
    }
    ck_assert_int_eq(sendmsg(sock, &m, 0), (ssize_t)len);
}

START_TEST(test_accept_messages)
{
    int lp[2], conn[2], got = -1;
    uint8_t hdr[MC_LISTEN_HDR_LEN];
    struct sw_pk pk, remote;
    uint16_t port = 0;
    struct sw_error err = { 0 };

    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, lp), 0);
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, conn), 0);
    randombytes_buf(pk.b, sizeof(pk.b));

    /* nothing queued: times out */
    ck_assert_int_eq(sw_msg_accept(lp[1], 50, &got, &remote, &port, &err), SW_ETIMEDOUT);

    /* a good message */
    memcpy(hdr, pk.b, SW_PK_LEN);
    sw_put_u16(hdr + SW_PK_LEN, 4242);
    send_with_fd(lp[0], hdr, sizeof(hdr), conn[1]);
    ck_assert_int_eq(sw_msg_accept(lp[1], 1000, &got, &remote, &port, &err), SW_OK);
    ck_assert_int_ge(got, 0);
    ck_assert_mem_eq(remote.b, pk.b, SW_PK_LEN);
    ck_assert_uint_eq(port, 4242);
    ck_assert_int_eq(fcntl(got, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
    ck_assert_int_eq(write(conn[0], "hi", 2), 2); /* it is the same socket */
    {
        char b[2];
        ck_assert_int_eq(read(got, b, 2), 2);
        ck_assert_mem_eq(b, "hi", 2);
    }
    close(got);

    /* short header or no fd: malformed, and no fd leaks */
    send_with_fd(lp[0], hdr, sizeof(hdr) - 1, conn[1]);
    ck_assert_int_eq(sw_msg_accept(lp[1], 1000, &got, NULL, NULL, &err), SW_EPROTO);
    send_with_fd(lp[0], hdr, sizeof(hdr), -1);
    ck_assert_int_eq(sw_msg_accept(lp[1], 1000, &got, NULL, NULL, &err), SW_EPROTO);

    /* the library side went away: the listener is closed */
    close(lp[0]);
    ck_assert_int_eq(sw_msg_accept(lp[1], 1000, &got, NULL, NULL, &err), SW_EIO);
    close(lp[1]);
    close(conn[0]);
    close(conn[1]);
}
END_TEST

/* Configuration errors are reported before any thread starts. */
START_TEST(test_start_rejects_bad_config)
{
    struct sw_msg_client_config cfg;
    struct sw_msg_server_addr srv;
    struct sw_msg_client *c = NULL;
    struct sw_error err = { 0 };

    memset(&cfg, 0, sizeof(cfg));
    memset(&srv, 0, sizeof(srv));
    ck_assert_int_eq(sw_keypair_generate(&cfg.kp), SW_OK);
    ck_assert_int_eq(sw_msg_client_start(&cfg, &c, &err), SW_EINVAL); /* neither discovery nor servers */
    ck_assert_ptr_nonnull(strstr(err.msg, "discovery"));
    cfg.n_fixed_servers = 1; /* servers missing */
    ck_assert_int_eq(sw_msg_client_start(&cfg, &c, &err), SW_EINVAL);
    cfg.n_fixed_servers = 0;
    cfg.discovery_url = "http://127.0.0.1:1";
    cfg.n_servers = SW_MSG_DELEGATES_MAX + 1;
    ck_assert_int_eq(sw_msg_client_start(&cfg, &c, &err), SW_EINVAL);
    ck_assert_ptr_null(c);
    sw_keypair_wipe(&cfg.kp);
}
END_TEST

/* With no server reachable: not ready, dials fail in time, listening still works, and stop
 * is prompt while sessions are backing off. */
START_TEST(test_unreachable_server)
{
    struct sw_msg_client_config cfg;
    struct sw_msg_server_addr srv;
    struct sw_msg_client *c = NULL;
    struct sw_msg_client_stats st;
    struct sw_error err = { 0 };
    struct sw_keypair peer, server;
    int fd = -1, lfd = -1, refusal = 0, rc;

    memset(&cfg, 0, sizeof(cfg));
    memset(&srv, 0, sizeof(srv));
    ck_assert_int_eq(sw_keypair_generate(&cfg.kp), SW_OK);
    ck_assert_int_eq(sw_keypair_generate(&peer), SW_OK);
    ck_assert_int_eq(sw_keypair_generate(&server), SW_OK);
    srv.pk = server.pk;
    snprintf(srv.address, sizeof(srv.address), "127.0.0.1:1");
    cfg.servers = &srv;
    cfg.n_fixed_servers = 1;
    ck_assert_int_eq(sw_msg_client_start(&cfg, &c, &err), SW_OK);
    ck_assert_int_eq(sw_msg_client_wait_ready(c, 300), SW_ETIMEDOUT);
    rc = sw_msg_dial(c, &peer.pk, 1, 500, &fd, &refusal, &err);
    ck_assert_msg(rc == SW_EIO || rc == SW_ETIMEDOUT, "dial: %d %s", rc, err.msg);
    ck_assert_int_eq(fd, -1);
    ck_assert_int_eq(sw_msg_listen(c, 7, &lfd, &err), SW_OK);
    ck_assert_int_eq(sw_msg_listen(c, 7, &fd, &err), SW_EEXIST);
    ck_assert_int_eq(sw_msg_accept(lfd, 10, &fd, NULL, NULL, &err), SW_ETIMEDOUT);
    sw_msg_client_stats(c, &st);
    ck_assert_uint_eq(st.sessions, 0);
    ck_assert_uint_eq(st.streams, 0);
    sw_msg_client_stop(c);
    ck_assert_int_eq(sw_msg_accept(lfd, 1000, &fd, NULL, NULL, &err), SW_EIO); /* listener closed */
    close(lfd);
    sw_keypair_wipe(&cfg.kp);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("msg_client_stream");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_credit_receive_limit);
    tcase_add_test(tc, test_credit_grants_at_half);
    tcase_add_test(tc, test_credit_invariant);
    tcase_add_test(tc, test_send_chunk);
    tcase_add_test(tc, test_ring_wrap);
    tcase_add_test(tc, test_ring_random);
    tcase_add_test(tc, test_accept_messages);
    tcase_add_test(tc, test_start_rejects_bad_config);
    tcase_add_test(tc, test_unreachable_server);
    suite_add_tcase(s, tc);
    return s;
}

static int init_sodium(void)
{
    return sodium_init() < 0 ? -1 : 0;
}

const struct th_check_main th_check_main = { .suite = suite, .before = init_sodium };
