/* Unit tests for common/stream_io.c: whole writes and reads through short reads and writes
 * (socketpairs with small buffers, pipes), deadlines, the stop flag, and the u32-length
 * record codec with its JSON form (EOF inside a record, lengths over the cap or 0, malformed
 * JSON, record cutting from a buffer). */
#include "common/clock.h"
#include "common/err.h"
#include "common/stream_io.h"
#include "tests/harness/check_main.h"

#include <check.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BIG (1u << 20)

static void pair(int sv[2], bool nonblocking)
{
    int small = 4096;

    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | (nonblocking ? SOCK_NONBLOCK : 0), 0, sv), 0);
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
}

static void sleep_ms(int ms)
{
    struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

/* Writes raw bytes with gaps between them, then optionally closes: a slow peer. */
struct dribble {
    int fd;
    const uint8_t *data;
    size_t len, step;
    int gap_ms;
    bool close_after;
};

static void *dribble_main(void *arg)
{
    struct dribble *d = arg;

    for (size_t off = 0; off < d->len; off += d->step) {
        size_t n = d->len - off < d->step ? d->len - off : d->step;
        ck_assert_int_eq(write(d->fd, d->data + off, n), (ssize_t)n);
        sleep_ms(d->gap_ms);
    }
    if (d->close_after)
        shutdown(d->fd, SHUT_WR);
    return NULL;
}

struct big_write {
    int fd;
    uint8_t *data;
    int rc;
};

static void *big_write_main(void *arg)
{
    struct big_write *w = arg;
    w->rc = sw_io_write_all(w->fd, w->data, BIG, sw_io_within(10000, NULL));
    return NULL;
}

static uint8_t *pattern(size_t n)
{
    uint8_t *p = malloc(n);
    ck_assert_ptr_nonnull(p);
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(i * 131 + (i >> 9));
    return p;
}

/* 1 MiB through 4 KiB socket buffers: many short writes and short reads, both ends set
 * non-blocking (the calls wait with poll themselves). */
START_TEST(test_short_writes_and_reads)
{
    struct big_write w;
    pthread_t t;
    uint8_t *in = malloc(BIG);
    size_t got = 0;
    int sv[2];

    pair(sv, true);
    w = (struct big_write){ .fd = sv[0], .data = pattern(BIG), .rc = 1 };
    ck_assert_int_eq(pthread_create(&t, NULL, big_write_main, &w), 0);
    for (size_t off = 0; off < BIG; off += 1000) { /* reads of odd sizes */
        size_t n = BIG - off < 1000 ? BIG - off : 1000;
        ck_assert_int_eq(sw_io_read_full(sv[1], in + off, n, sw_io_within(10000, NULL), &got), SW_OK);
        ck_assert_uint_eq(got, n);
    }
    pthread_join(t, NULL);
    ck_assert_int_eq(w.rc, SW_OK);
    ck_assert_mem_eq(in, w.data, BIG);
    free(in);
    free(w.data);
    close(sv[0]);
    close(sv[1]);
}
END_TEST

/* A record sent a byte at a time still arrives whole. */
START_TEST(test_record_in_pieces)
{
    const uint8_t rec[] = { 0, 0, 0, 7, '{', '"', 'a', '"', ':', '1', '}' };
    struct dribble d;
    pthread_t t;
    char *out = NULL;
    size_t len = 0;
    int sv[2];

    pair(sv, false);
    d = (struct dribble){ .fd = sv[0], .data = rec, .len = sizeof(rec), .step = 1, .gap_ms = 2 };
    ck_assert_int_eq(pthread_create(&t, NULL, dribble_main, &d), 0);
    ck_assert_int_eq(sw_record_read(sv[1], 64, sw_io_within(5000, NULL), 5000, &out, &len), SW_OK);
    pthread_join(t, NULL);
    ck_assert_uint_eq(len, 7);
    ck_assert_str_eq(out, "{\"a\":1}");
    free(out);
    close(sv[0]);
    close(sv[1]);
}
END_TEST

START_TEST(test_write_read_record_roundtrip)
{
    struct json_object *o = json_object_new_object(), *back = NULL;
    char *out = NULL;
    size_t len = 0;
    uint8_t hdr[4];
    int sv[2];

    pair(sv, false);
    json_object_object_add(o, "id", json_object_new_int(7));
    ck_assert_int_eq(sw_json_record_send(sv[0], o, 64, sw_io_within(1000, NULL)), SW_OK);
    /* the bytes on the wire: u32 BE length, then the compact JSON */
    ck_assert_int_eq(read(sv[1], hdr, 4), 4);
    ck_assert_mem_eq(hdr, "\0\0\0\x08", 4);
    ck_assert_int_eq(sw_io_read_full(sv[1], hdr, 4, sw_io_within(1000, NULL), &len), SW_OK);
    ck_assert_mem_eq(hdr, "{\"id", 4);
    ck_assert_int_eq(sw_io_read_full(sv[1], hdr, 4, sw_io_within(1000, NULL), &len), SW_OK);
    ck_assert_mem_eq(hdr, "\":7}", 4);
    /* and back */
    ck_assert_int_eq(sw_json_record_send(sv[0], o, 64, SW_IO_NO_LIMIT), SW_OK);
    ck_assert_int_eq(sw_json_record_recv(sv[1], 64, sw_io_within(1000, NULL), -1, &back, NULL), SW_OK);
    ck_assert_int_eq(json_object_get_int(json_object_object_get(back, "id")), 7);
    json_object_put(back);
    /* raw payloads */
    ck_assert_int_eq(sw_record_write(sv[0], "xyz", 3, 3, SW_IO_NO_LIMIT), SW_OK);
    ck_assert_int_eq(sw_record_read(sv[1], 3, SW_IO_NO_LIMIT, -1, &out, &len), SW_OK);
    ck_assert_uint_eq(len, 3);
    ck_assert_str_eq(out, "xyz");
    free(out);
    json_object_put(o);
    close(sv[0]);
    close(sv[1]);
}
END_TEST

/* Header and payload leave in one system call when there is room (one segment: one
 * messaging DATA frame): a packet socket shows the calls. */
START_TEST(test_record_in_one_write)
{
    uint8_t all[16];
    int sp[2];

    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sp), 0);
    ck_assert_int_eq(sw_record_write(sp[0], "xyz", 3, 3, SW_IO_NO_LIMIT), SW_OK);
    ck_assert_int_eq(recv(sp[1], all, sizeof(all), MSG_DONTWAIT), 7);
    ck_assert_mem_eq(all, "\0\0\0\x03xyz", 7);
    close(sp[0]);
    close(sp[1]);
}
END_TEST

START_TEST(test_read_deadline)
{
    char *out = NULL;
    size_t len = 9, got = 9;
    uint8_t b;
    int64_t t0;
    int sv[2];

    pair(sv, false);
    t0 = sw_mono_ms();
    ck_assert_int_eq(sw_io_read_full(sv[1], &b, 1, sw_io_within(50, NULL), &got), SW_ETIMEDOUT);
    ck_assert_uint_eq(got, 0);
    ck_assert_int_ge(sw_ms_since(t0), 45);
    ck_assert_int_eq(sw_record_read(sv[1], 64, sw_io_within(30, NULL), 5000, &out, &len), SW_ETIMEDOUT);
    ck_assert_uint_eq(len, 0);
    ck_assert_int_eq(sw_io_wait(sv[1], POLLIN, sw_io_within(20, NULL)), SW_ETIMEDOUT);
    ck_assert_int_eq(sw_io_wait(sv[0], POLLOUT, sw_io_within(20, NULL)), SW_OK);
    close(sv[0]);
    close(sv[1]);
}
END_TEST

/* Once a record began, the rest must come within rest_ms, however long lim would allow. */
START_TEST(test_rest_of_record_deadline)
{
    const uint8_t part[] = { 0, 0, 0, 5, '{' };
    char *out = NULL;
    size_t len = 0;
    int64_t t0;
    int sv[2];

    pair(sv, false);
    ck_assert_int_eq(write(sv[0], part, sizeof(part)), (ssize_t)sizeof(part));
    t0 = sw_mono_ms();
    ck_assert_int_eq(sw_record_read(sv[1], 64, SW_IO_NO_LIMIT, 80, &out, &len), SW_ETIMEDOUT);
    ck_assert_int_ge(sw_ms_since(t0), 75);
    ck_assert_int_lt(sw_ms_since(t0), 5000);
    ck_assert_uint_eq(len, 5); /* the header was read */
    close(sv[0]);
    close(sv[1]);
}
END_TEST

/* A peer that reads nothing: the write gives up at its deadline. */
START_TEST(test_write_deadline)
{
    uint8_t *data = pattern(BIG);
    int64_t t0 = sw_mono_ms();
    int sv[2];

    pair(sv, false);
    ck_assert_int_eq(sw_io_write_all(sv[0], data, BIG, sw_io_within(100, NULL)), SW_ETIMEDOUT);
    ck_assert_int_ge(sw_ms_since(t0), 95);
    ck_assert_int_lt(sw_ms_since(t0), 5000);
    free(data);
    close(sv[0]);
    close(sv[1]);
}
END_TEST

static atomic_bool flag;

static void *raise_flag(void *arg)
{
    sleep_ms(100);
    atomic_store(&flag, true);
    return NULL;
}

START_TEST(test_stop_flag)
{
    uint8_t *data = pattern(BIG);
    char *out = NULL;
    size_t len = 0;
    pthread_t t;
    int64_t t0;
    int sv[2];

    pair(sv, false);
    /* a read with no deadline ends soon after the flag is raised */
    atomic_store(&flag, false);
    t0 = sw_mono_ms();
    ck_assert_int_eq(pthread_create(&t, NULL, raise_flag, NULL), 0);
    ck_assert_int_eq(sw_record_read(sv[1], 64, sw_io_within(-1, &flag), 5000, &out, &len), SW_EIO);
    pthread_join(t, NULL);
    ck_assert_int_ge(sw_ms_since(t0), 95);
    ck_assert_int_lt(sw_ms_since(t0), 100 + 4 * SW_IO_STOP_POLL_MS);
    /* so does a blocked write */
    atomic_store(&flag, false);
    ck_assert_int_eq(pthread_create(&t, NULL, raise_flag, NULL), 0);
    ck_assert_int_eq(sw_io_write_all(sv[0], data, BIG, sw_io_within(-1, &flag)), SW_EIO);
    pthread_join(t, NULL);
    /* a raised flag fails at once, even with data waiting */
    ck_assert_int_eq(sw_io_wait(sv[1], POLLIN, sw_io_within(1000, &flag)), SW_EIO);
    ck_assert_int_eq(sw_io_read_some(sv[1], data, 16, sw_io_within(1000, &flag), &len), SW_EIO);
    free(data);
    close(sv[0]);
    close(sv[1]);
}
END_TEST

/* A peer that sent bytes and then ended the stream: the read end (the caller closes it). */
static int ended_after(const void *bytes, size_t n)
{
    int sv[2];

    pair(sv, false);
    ck_assert_int_eq(write(sv[0], bytes, n), (ssize_t)n);
    shutdown(sv[0], SHUT_WR);
    close(sv[0]);
    return sv[1];
}

START_TEST(test_eof)
{
    const uint8_t half_hdr[] = { 0, 0 }, half_body[] = { 0, 0, 0, 9, '{', '}' };
    char *out = NULL;
    size_t len = 9, got = 9;
    uint8_t buf[8];
    int fd;

    /* a clean end between records */
    fd = ended_after("", 0);
    ck_assert_int_eq(sw_record_read(fd, 64, sw_io_within(1000, NULL), -1, &out, &len), SW_ENOTFOUND);
    ck_assert_uint_eq(len, 0);
    ck_assert_int_eq(sw_io_read_some(fd, buf, sizeof(buf), sw_io_within(1000, NULL), &got), SW_ENOTFOUND);
    ck_assert_int_eq(sw_io_read_full(fd, buf, 4, sw_io_within(1000, NULL), &got), SW_ENOTFOUND);
    ck_assert_uint_eq(got, 0);
    close(fd);
    /* inside the header */
    fd = ended_after(half_hdr, sizeof(half_hdr));
    ck_assert_int_eq(sw_record_read(fd, 64, sw_io_within(1000, NULL), 1000, &out, &len), SW_EIO);
    ck_assert_uint_eq(len, 0);
    close(fd);
    /* inside the body: the announced length is reported */
    fd = ended_after(half_body, sizeof(half_body));
    ck_assert_int_eq(sw_record_read(fd, 64, sw_io_within(1000, NULL), 1000, &out, &len), SW_EIO);
    ck_assert_uint_eq(len, 9);
    close(fd);
    /* read_full after some bytes */
    fd = ended_after("abc", 3);
    ck_assert_int_eq(sw_io_read_full(fd, buf, 8, sw_io_within(1000, NULL), &got), SW_EIO);
    ck_assert_uint_eq(got, 3);
    close(fd);
}
END_TEST

START_TEST(test_closed_peer_write)
{
    int sv[2];

    pair(sv, false);
    close(sv[1]);
    /* EPIPE, not SIGPIPE */
    ck_assert_int_eq(sw_io_write_all(sv[0], "x", 1, sw_io_within(1000, NULL)), SW_EIO);
    close(sv[0]);
}
END_TEST

START_TEST(test_length_limits)
{
    const uint8_t over[] = { 0, 0, 0, 65 }, zero[] = { 0, 0, 0, 0 }, huge[] = { 0xff, 0xff, 0xff, 0xff };
    char *out = NULL;
    size_t len = 0;
    uint8_t b;
    int sv[2];

    pair(sv, false);
    ck_assert_int_eq(write(sv[0], over, 4), 4);
    ck_assert_int_eq(sw_record_read(sv[1], 64, sw_io_within(1000, NULL), -1, &out, &len), SW_ERANGE);
    ck_assert_uint_eq(len, 65);
    ck_assert_int_eq(write(sv[0], zero, 4), 4);
    ck_assert_int_eq(sw_record_read(sv[1], 64, sw_io_within(1000, NULL), -1, &out, &len), SW_ERANGE);
    ck_assert_uint_eq(len, 0);
    ck_assert_int_eq(write(sv[0], huge, 4), 4);
    ck_assert_int_eq(sw_record_read(sv[1], 64, sw_io_within(1000, NULL), -1, &out, &len), SW_ERANGE);
    ck_assert_uint_eq(len, 0xffffffffu);
    /* a writer refuses what a reader would, and writes nothing */
    ck_assert_int_eq(sw_record_write(sv[0], "x", 0, 64, SW_IO_NO_LIMIT), SW_ERANGE);
    ck_assert_int_eq(sw_record_write(sv[0], "x", 65, 64, SW_IO_NO_LIMIT), SW_ERANGE);
    ck_assert_int_eq(recv(sv[1], &b, 1, MSG_DONTWAIT), -1);
    close(sv[0]);
    close(sv[1]);
}
END_TEST

/* Not JSON: SW_EINVAL with a reason, and the next record still reads (in sync). */
START_TEST(test_malformed_json)
{
    static const char *const bad[] = { "{", "{\"a\":}", "[1,2", "{\"a\":1} x", "nul", "\"\\u00" };
    struct json_object *o = NULL;
    struct sw_error err;
    int sv[2];

    pair(sv, false);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&err, 0, sizeof(err));
        ck_assert_int_eq(sw_record_write(sv[0], bad[i], strlen(bad[i]), 64, SW_IO_NO_LIMIT), SW_OK);
        ck_assert_int_eq(sw_record_write(sv[0], "{}", 2, 64, SW_IO_NO_LIMIT), SW_OK);
        ck_assert_int_eq(sw_json_record_recv(sv[1], 64, sw_io_within(1000, NULL), -1, &o, &err), SW_EINVAL);
        ck_assert_ptr_null(o);
        ck_assert_str_ne(err.msg, "");
        ck_assert_int_eq(sw_json_record_recv(sv[1], 64, sw_io_within(1000, NULL), -1, &o, &err), SW_OK);
        ck_assert(json_object_is_type(o, json_type_object));
        json_object_put(o);
        o = NULL;
    }
    /* a NUL byte inside the payload */
    ck_assert_int_eq(sw_record_write(sv[0], "{\"a\":\0}", 7, 64, SW_IO_NO_LIMIT), SW_OK);
    ck_assert_int_eq(sw_json_record_recv(sv[1], 64, sw_io_within(1000, NULL), -1, &o, NULL), SW_EINVAL);
    /* framing errors are not JSON errors */
    ck_assert_int_eq(sw_record_write(sv[0], "{}", 2, 64, SW_IO_NO_LIMIT), SW_OK);
    ck_assert_int_eq(sw_json_record_recv(sv[1], 1, sw_io_within(1000, NULL), -1, &o, NULL), SW_ERANGE);
    close(sv[0]);
    close(sv[1]);
}
END_TEST

START_TEST(test_peek)
{
    const uint8_t two[] = { 0, 0, 0, 2, 'h', 'i', 0, 0, 0, 1, '!' };
    const uint8_t *p = NULL;
    size_t plen = 0, used = 9;

    /* partial header, partial payload */
    for (size_t n = 0; n < 6; n++) {
        ck_assert_int_eq(sw_record_peek(two, n, 16, &p, &plen, &used), SW_OK);
        ck_assert_uint_eq(used, 0);
    }
    ck_assert_int_eq(sw_record_peek(two, sizeof(two), 16, &p, &plen, &used), SW_OK);
    ck_assert_uint_eq(used, 6);
    ck_assert_uint_eq(plen, 2);
    ck_assert_ptr_eq(p, two + 4);
    ck_assert_int_eq(sw_record_peek(two + 6, sizeof(two) - 6, 16, &p, &plen, &used), SW_OK);
    ck_assert_uint_eq(used, 5);
    ck_assert_uint_eq(plen, 1);
    /* limits */
    ck_assert_int_eq(sw_record_peek(two, sizeof(two), 1, &p, &plen, &used), SW_ERANGE);
    ck_assert_int_eq(sw_record_peek((const uint8_t *)"\0\0\0\0", 4, 16, &p, &plen, &used), SW_ERANGE);
    ck_assert_int_eq(sw_record_peek((const uint8_t *)"\xff\xff\xff\xff", 4, 16, &p, &plen, &used),
                     SW_ERANGE);
}
END_TEST

/* Pipes are not sockets: the same calls, through read(2)/write(2). */
START_TEST(test_pipe)
{
    uint8_t *data = pattern(BIG), *in = malloc(BIG);
    struct big_write w;
    pthread_t t;
    size_t got = 0;
    int p[2];

    ck_assert_int_eq(pipe2(p, O_NONBLOCK), 0);
    w = (struct big_write){ .fd = p[1], .data = data, .rc = 1 };
    ck_assert_int_eq(pthread_create(&t, NULL, big_write_main, &w), 0);
    ck_assert_int_eq(sw_io_read_full(p[0], in, BIG, sw_io_within(10000, NULL), &got), SW_OK);
    pthread_join(t, NULL);
    ck_assert_int_eq(w.rc, SW_OK);
    ck_assert_mem_eq(in, data, BIG);
    /* a full non-blocking pipe: the deadline holds */
    ck_assert_int_eq(sw_io_write_all(p[1], data, BIG, sw_io_within(50, NULL)), SW_ETIMEDOUT);
    close(p[1]);
    while (sw_io_read_some(p[0], in, BIG, sw_io_within(1000, NULL), &got) == SW_OK)
        ;
    ck_assert_int_eq(sw_io_read_some(p[0], in, BIG, sw_io_within(1000, NULL), &got), SW_ENOTFOUND);
    close(p[0]);
    free(in);
    free(data);
}
END_TEST

static Suite *stream_io_suite(void)
{
    Suite *s = suite_create("stream_io");
    TCase *tc = tcase_create("core");

    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_short_writes_and_reads);
    tcase_add_test(tc, test_record_in_pieces);
    tcase_add_test(tc, test_write_read_record_roundtrip);
    tcase_add_test(tc, test_record_in_one_write);
    tcase_add_test(tc, test_read_deadline);
    tcase_add_test(tc, test_rest_of_record_deadline);
    tcase_add_test(tc, test_write_deadline);
    tcase_add_test(tc, test_stop_flag);
    tcase_add_test(tc, test_eof);
    tcase_add_test(tc, test_closed_peer_write);
    tcase_add_test(tc, test_length_limits);
    tcase_add_test(tc, test_malformed_json);
    tcase_add_test(tc, test_peek);
    tcase_add_test(tc, test_pipe);
    suite_add_tcase(s, tc);
    return s;
}

const struct th_check_main th_check_main = { .suite = stream_io_suite };
