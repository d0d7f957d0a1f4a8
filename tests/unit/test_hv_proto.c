/* Unit tests for common/hv_proto.c (hypervisor link messages, malformed input included) and
 * common/hv_chan.c (the Noise XK link over a socketpair: handshake, identity, big records,
 * wrong keys, timeouts). */
#include "common/bytes.h"
#include "common/clock.h"
#include "common/hv_chan.h"
#include "common/hv_proto.h"
#include "tests/harness/check_main.h"

#include <check.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Encodes m and returns the message part (after the record header) in b. */
static const uint8_t *encode(const struct sw_hv_msg *m, struct sw_buf *b, size_t *len)
{
    const uint8_t *msg = NULL;
    size_t used = 0;

    sw_buf_init(b, 0);
    ck_assert_int_eq(sw_hv_msg_encode(m, b), SW_OK);
    ck_assert_int_eq(sw_hv_record_peek((const uint8_t *)b->data, b->len, &msg, len, &used), SW_OK);
    ck_assert_uint_eq(used, b->len);
    return msg;
}

START_TEST(test_roundtrip)
{
    struct sw_hv_msg m = { .type = SW_HV_REQ, .id = 7, .method = "POST", .path = "/api/apps/x/start?y=1",
                           .body = (const uint8_t *)"{}", .body_len = 2 }, d;
    struct sw_buf b;
    size_t len;
    const uint8_t *p = encode(&m, &b, &len);

    ck_assert_int_eq(sw_hv_msg_decode(p, len, &d), SW_OK);
    ck_assert_uint_eq(d.type, SW_HV_REQ);
    ck_assert_uint_eq(d.id, 7);
    ck_assert_str_eq(d.method, "POST");
    ck_assert_str_eq(d.path, "/api/apps/x/start?y=1");
    ck_assert_uint_eq(d.body_len, 2);
    ck_assert_mem_eq(d.body, "{}", 2);
    sw_buf_free(&b);

    m = (struct sw_hv_msg){ .type = SW_HV_RESP, .id = 9, .status = 404 };
    p = encode(&m, &b, &len);
    ck_assert_int_eq(sw_hv_msg_decode(p, len, &d), SW_OK);
    ck_assert_uint_eq(d.status, 404);
    ck_assert_ptr_null(d.body);
    ck_assert_uint_eq(d.body_len, 0);
    sw_buf_free(&b);

    m = (struct sw_hv_msg){ .type = SW_HV_PING, .id = 0xdeadbeef };
    p = encode(&m, &b, &len);
    ck_assert_uint_eq(len, 5);
    ck_assert_int_eq(sw_hv_msg_decode(p, len, &d), SW_OK);
    ck_assert_uint_eq(d.id, 0xdeadbeef);
    sw_buf_free(&b);
}
END_TEST

START_TEST(test_encode_rejects)
{
    struct sw_buf b;
    struct sw_hv_msg m = { .type = SW_HV_REQ, .method = "get", .path = "/api" };

    sw_buf_init(&b, 0);
    ck_assert_int_eq(sw_hv_msg_encode(&m, &b), SW_EINVAL); /* lower case method */
    m = (struct sw_hv_msg){ .type = SW_HV_REQ, .method = "GET", .path = "api" };
    ck_assert_int_eq(sw_hv_msg_encode(&m, &b), SW_EINVAL); /* no leading slash */
    m = (struct sw_hv_msg){ .type = SW_HV_REQ, .method = "GET", .path = "/a b" };
    ck_assert_int_eq(sw_hv_msg_encode(&m, &b), SW_EINVAL); /* space */
    m = (struct sw_hv_msg){ .type = SW_HV_RESP, .status = 99 };
    ck_assert_int_eq(sw_hv_msg_encode(&m, &b), SW_EINVAL);
    m = (struct sw_hv_msg){ .type = SW_HV_RESP, .status = 200, .body = (const uint8_t *)"x",
                            .body_len = SW_HV_MAX_BODY + 1 };
    ck_assert_int_eq(sw_hv_msg_encode(&m, &b), SW_EINVAL);
    m = (struct sw_hv_msg){ .type = 9 };
    ck_assert_int_eq(sw_hv_msg_encode(&m, &b), SW_EINVAL);
    sw_buf_free(&b);
}
END_TEST

START_TEST(test_decode_malformed)
{
    struct sw_hv_msg m = { .type = SW_HV_REQ, .id = 1, .method = "GET", .path = "/api/summary",
                           .body = (const uint8_t *)"abc", .body_len = 3 }, d;
    struct sw_buf b;
    size_t len;
    const uint8_t *p = encode(&m, &b, &len);
    uint8_t buf[256];

    /* every truncation fails, and so does one byte too many */
    for (size_t n = 0; n < len; n++)
        ck_assert_int_eq(sw_hv_msg_decode(p, n, &d), SW_EPROTO);
    memcpy(buf, p, len);
    buf[len] = 0;
    ck_assert_int_eq(sw_hv_msg_decode(buf, len + 1, &d), SW_EPROTO);
    /* unknown type */
    memcpy(buf, p, len);
    buf[0] = 5;
    ck_assert_int_eq(sw_hv_msg_decode(buf, len, &d), SW_EPROTO);
    /* method length 0 and 8, method not upper case */
    memcpy(buf, p, len);
    buf[5] = 0;
    ck_assert_int_eq(sw_hv_msg_decode(buf, len, &d), SW_EPROTO);
    buf[5] = 8;
    ck_assert_int_eq(sw_hv_msg_decode(buf, len, &d), SW_EPROTO);
    memcpy(buf, p, len);
    buf[6] = 'g';
    ck_assert_int_eq(sw_hv_msg_decode(buf, len, &d), SW_EPROTO);
    /* path not starting with '/', path with a control character */
    memcpy(buf, p, len);
    buf[11] = 'x';
    ck_assert_int_eq(sw_hv_msg_decode(buf, len, &d), SW_EPROTO);
    memcpy(buf, p, len);
    buf[13] = '\n';
    ck_assert_int_eq(sw_hv_msg_decode(buf, len, &d), SW_EPROTO);
    /* a body length beyond the record, and beyond SW_HV_MAX_BODY */
    memcpy(buf, p, len);
    sw_put_u32(buf + len - 3 - 4, 4);
    ck_assert_int_eq(sw_hv_msg_decode(buf, len, &d), SW_EPROTO);
    sw_put_u32(buf + len - 3 - 4, SW_HV_MAX_BODY + 1);
    ck_assert_int_eq(sw_hv_msg_decode(buf, len, &d), SW_EPROTO);
    sw_buf_free(&b);
    /* a response with status 600 */
    m = (struct sw_hv_msg){ .type = SW_HV_RESP, .id = 2, .status = 200 };
    p = encode(&m, &b, &len);
    memcpy(buf, p, len);
    buf[5] = 0x02;
    buf[6] = 0x58;
    ck_assert_int_eq(sw_hv_msg_decode(buf, len, &d), SW_EPROTO);
    sw_buf_free(&b);
}
END_TEST

START_TEST(test_record_peek)
{
    uint8_t buf[8] = { 0 };
    const uint8_t *msg = NULL;
    size_t len = 0, used = 9;

    ck_assert_int_eq(sw_hv_record_peek(buf, 3, &msg, &len, &used), SW_OK);
    ck_assert_uint_eq(used, 0);
    ck_assert_int_eq(sw_hv_record_peek(buf, 4, &msg, &len, &used), SW_EPROTO); /* length 0 */
    sw_put_u32(buf, SW_HV_MAX_RECORD + 1);
    ck_assert_int_eq(sw_hv_record_peek(buf, 8, &msg, &len, &used), SW_EPROTO);
    sw_put_u32(buf, 5);
    ck_assert_int_eq(sw_hv_record_peek(buf, 8, &msg, &len, &used), SW_OK);
    ck_assert_uint_eq(used, 0); /* needs 9 bytes */
    sw_put_u32(buf, 4);
    ck_assert_int_eq(sw_hv_record_peek(buf, 8, &msg, &len, &used), SW_OK);
    ck_assert_uint_eq(used, 8);
    ck_assert_uint_eq(len, 4);
    ck_assert_ptr_eq(msg, buf + 4);
}
END_TEST

/* ---- the channel ------------------------------------------------------------------------------ */

struct side {
    struct sw_hv_chan *ch;
    struct sw_keypair kp;
    struct sw_pk remote; /* initiator: the key it expects */
    int rc;
};

static void *responder(void *arg)
{
    struct side *s = arg;
    s->rc = sw_hv_chan_handshake(s->ch, false, &s->kp, NULL, 3000, NULL);
    return NULL;
}

/* Runs both handshakes; returns the initiator's result, *rrc the responder's. */
static int pair(struct sw_hv_chan *a, struct sw_hv_chan *b, struct sw_keypair *visor, struct sw_keypair *hv,
                const struct sw_pk *expected, int *rrc)
{
    int sv[2];
    pthread_t th;
    struct side r = { .ch = b, .kp = *hv };
    int rc;

    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    ck_assert_int_eq(sw_hv_chan_init(a, sv[0]), SW_OK);
    ck_assert_int_eq(sw_hv_chan_init(b, sv[1]), SW_OK);
    pthread_create(&th, NULL, responder, &r);
    rc = sw_hv_chan_handshake(a, true, visor, expected, 3000, NULL);
    if (rc)
        sw_hv_chan_shutdown(a);
    pthread_join(th, NULL);
    *rrc = r.rc;
    return rc;
}

struct sender {
    struct sw_hv_chan *ch;
    size_t body_len;
};

static void *send_big(void *arg)
{
    struct sender *s = arg;
    uint8_t *body = malloc(s->body_len);
    struct sw_hv_msg m = { .type = SW_HV_RESP, .id = 42, .status = 200, .body = body, .body_len = s->body_len };

    for (size_t i = 0; i < s->body_len; i++)
        body[i] = (uint8_t)(i * 31);
    ck_assert_int_eq(sw_hv_chan_send(s->ch, &m), SW_OK);
    m = (struct sw_hv_msg){ .type = SW_HV_PING, .id = 43 };
    ck_assert_int_eq(sw_hv_chan_send(s->ch, &m), SW_OK);
    free(body);
    return NULL;
}

START_TEST(test_chan)
{
    struct sw_hv_chan *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
    struct sw_keypair visor, hv;
    struct sender snd = { .ch = NULL, .body_len = SW_HV_MAX_BODY };
    struct sw_hv_msg m;
    pthread_t th;
    int rrc;

    sw_keypair_generate(&visor);
    sw_keypair_generate(&hv);
    ck_assert_int_eq(pair(a, b, &visor, &hv, &hv.pk, &rrc), SW_OK);
    ck_assert_int_eq(rrc, SW_OK);
    ck_assert(sw_pk_equal(&b->peer, &visor.pk)); /* the responder learnt the visor's key */
    /* nothing to read yet: a timeout, and the channel stays usable */
    ck_assert_int_eq(sw_hv_chan_recv(b, 50, &m), SW_ETIMEDOUT);
    /* a 1 MiB body spans many Noise messages */
    snd.ch = a;
    pthread_create(&th, NULL, send_big, &snd);
    ck_assert_int_eq(sw_hv_chan_recv(b, 5000, &m), SW_OK);
    ck_assert_uint_eq(m.type, SW_HV_RESP);
    ck_assert_uint_eq(m.id, 42);
    ck_assert_uint_eq(m.body_len, SW_HV_MAX_BODY);
    for (size_t i = 0; i < m.body_len; i += 4099)
        ck_assert_uint_eq(m.body[i], (uint8_t)(i * 31));
    ck_assert_int_eq(sw_hv_chan_recv(b, 5000, &m), SW_OK);
    ck_assert_uint_eq(m.type, SW_HV_PING);
    ck_assert_uint_eq(m.id, 43);
    pthread_join(th, NULL);
    /* the other direction, then EOF */
    m = (struct sw_hv_msg){ .type = SW_HV_REQ, .id = 1, .method = "GET", .path = "/api/summary" };
    ck_assert_int_eq(sw_hv_chan_send(b, &m), SW_OK);
    ck_assert_int_eq(sw_hv_chan_recv(a, 1000, &m), SW_OK);
    ck_assert_str_eq(m.path, "/api/summary");
    sw_hv_chan_shutdown(b);
    ck_assert_int_eq(sw_hv_chan_recv(a, 1000, &m), SW_EIO);
    sw_hv_chan_destroy(a);
    sw_hv_chan_destroy(b);
    free(a);
    free(b);
}
END_TEST

START_TEST(test_chan_wrong_key)
{
    struct sw_hv_chan *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
    struct sw_keypair visor, hv, other;
    int rrc;

    sw_keypair_generate(&visor);
    sw_keypair_generate(&hv);
    sw_keypair_generate(&other);
    /* the visor expects another hypervisor key: the responder cannot decrypt message 1 */
    ck_assert_int_ne(pair(a, b, &visor, &hv, &other.pk, &rrc), SW_OK);
    ck_assert_int_ne(rrc, SW_OK);
    sw_hv_chan_destroy(a);
    sw_hv_chan_destroy(b);
    free(a);
    free(b);
}
END_TEST

START_TEST(test_chan_garbage)
{
    struct sw_hv_chan *b = calloc(1, sizeof(*b));
    struct sw_keypair hv;
    int sv[2];
    uint8_t junk[600] = { 0x02, 0x40 }; /* a 576-byte handshake frame: over the 512 cap */

    sw_keypair_generate(&hv);
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    ck_assert_int_eq(sw_hv_chan_init(b, sv[1]), SW_OK);
    ck_assert_int_eq(write(sv[0], junk, sizeof(junk)), (ssize_t)sizeof(junk));
    ck_assert_int_eq(sw_hv_chan_handshake(b, false, &hv, NULL, 1000, NULL), SW_EPROTO);
    /* silence: the handshake times out */
    sw_hv_chan_destroy(b);
    close(sv[0]);
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    ck_assert_int_eq(sw_hv_chan_init(b, sv[1]), SW_OK);
    ck_assert_int_eq(sw_hv_chan_handshake(b, false, &hv, NULL, 200, NULL), SW_ETIMEDOUT);
    sw_hv_chan_destroy(b);
    close(sv[0]);
    free(b);
}
END_TEST

struct trickle {
    int fd;
    volatile bool stop;
};

/* A peer that reads 64 bytes every 20 ms: slow, but never stalls for a whole send timeout. */
static void *trickle_main(void *arg)
{
    struct trickle *t = arg;
    uint8_t buf[64];

    while (!t->stop) {
        if (recv(t->fd, buf, sizeof(buf), MSG_DONTWAIT) == 0)
            break;
        usleep(20000);
    }
    return NULL;
}

/* A record that a slow reader does not take within send_timeout_ms fails with SW_ETIMEDOUT
 * (the send mutex is not held for ever), whatever trickle of progress the peer makes. */
START_TEST(test_chan_slow_reader)
{
    struct sw_hv_chan *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
    struct sw_keypair visor, hv;
    struct trickle t = { 0 };
    uint8_t *body = calloc(1, 256 * 1024);
    struct sw_hv_msg m = { .type = SW_HV_RESP, .id = 7, .status = 200, .body = body, .body_len = 256 * 1024 };
    int small = 4096, rrc;
    pthread_t th;
    int64_t t0;
    int64_t ms;

    sw_keypair_generate(&visor);
    sw_keypair_generate(&hv);
    ck_assert_int_eq(pair(a, b, &visor, &hv, &hv.pk, &rrc), SW_OK);
    ck_assert_int_eq(rrc, SW_OK);
    setsockopt(a->fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    setsockopt(b->fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    a->send_timeout_ms = 500;
    t.fd = b->fd;
    pthread_create(&th, NULL, trickle_main, &t);
    t0 = sw_mono_ms();
    ck_assert_int_eq(sw_hv_chan_send(a, &m), SW_ETIMEDOUT);
    ms = sw_ms_since(t0);
    t.stop = true;
    pthread_join(th, NULL);
    ck_assert_int_ge(ms, 400);
    ck_assert_int_lt(ms, 3000);
    sw_hv_chan_destroy(a);
    sw_hv_chan_destroy(b);
    free(a);
    free(b);
    free(body);
}
END_TEST

static Suite *hv_proto_suite(void)
{
    Suite *s = suite_create("hv_proto");
    TCase *tc = tcase_create("core");

    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_roundtrip);
    tcase_add_test(tc, test_encode_rejects);
    tcase_add_test(tc, test_decode_malformed);
    tcase_add_test(tc, test_record_peek);
    tcase_add_test(tc, test_chan);
    tcase_add_test(tc, test_chan_wrong_key);
    tcase_add_test(tc, test_chan_garbage);
    tcase_add_test(tc, test_chan_slow_reader);
    suite_add_tcase(s, tc);
    return s;
}

const struct th_check_main th_check_main = { .suite = hv_proto_suite, .before = sw_crypto_init };
