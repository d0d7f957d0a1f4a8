/* Unit tests for visor/route_stream.c: the sequence-number bookkeeping of a route group's
 * byte stream. The receiver's decisions (NEW, OLD, GAP, BEYOND), its window that never moves
 * back and the FIN; the sender's acks (OK, RESEND once per round trip, BOGUS), its window, FIN,
 * retransmission timer, zero-window probe and stall clock. Records travel between two
 * struct visor_stream as visor_rec_hdr values built here; the last tests run two ends over a
 * simulated network that loses, duplicates and reorders records, and check that each end
 * delivers exactly the other's bytes, in order, once, and that both finish. */
#include "common/err.h"
#include "visor/route_record.h"
#include "visor/route_stream.h"
#include "tests/harness/check_main.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint8_t g_zero[1 << 16];

static struct visor_rec_hdr hdr(uint8_t flags, uint64_t seq, size_t len, uint64_t ack, uint32_t window)
{
    return (struct visor_rec_hdr){ .flags = flags, .seq = seq, .ack = ack, .window = window,
                                   .payload = len ? g_zero : NULL, .len = len };
}

static enum visor_stream_rx rx(struct visor_stream *s, uint8_t flags, uint64_t seq, size_t len, size_t *skip,
                               size_t *take)
{
    struct visor_rec_hdr h = hdr(flags, seq, len, 0, 0);
    return visor_stream_rx(s, &h, skip, take);
}

static enum visor_stream_ack ack(struct visor_stream *s, uint8_t flags, uint64_t a, uint32_t window, int64_t now,
                                 uint64_t *acked)
{
    struct visor_rec_hdr h = hdr(flags, 0, 0, a, window);
    return visor_stream_on_ack(s, &h, now, acked);
}

/* ---- receiving ---- */

START_TEST(test_init)
{
    struct visor_stream s;

    memset(&s, 0x77, sizeof(s));
    visor_stream_init(&s, 500, 700);
    ck_assert_uint_eq(s.snd_una, 0);
    ck_assert_uint_eq(s.snd_nxt, 0);
    ck_assert_uint_eq(s.snd_max, 0);
    ck_assert_uint_eq(s.snd_edge, 500);
    ck_assert_uint_eq(s.rcv_nxt, 0);
    ck_assert_uint_eq(s.rcv_edge, 700);
    ck_assert_uint_eq(s.fin_seq, VISOR_STREAM_NO_FIN);
    ck_assert_uint_eq(s.fin_at, VISOR_STREAM_NO_FIN);
    ck_assert(!s.fin_rcvd);
    ck_assert(!visor_stream_in_flight(&s));
    ck_assert(!visor_stream_fin_due(&s));
    ck_assert(!visor_stream_fin_acked(&s));
    ck_assert_uint_eq(visor_stream_ack_value(&s), 0);
    /* the peer's hello window counts up to VISOR_STREAM_MAX_WINDOW; ours is what we say */
    visor_stream_init(&s, UINT32_MAX, UINT32_MAX);
    ck_assert_uint_eq(s.snd_edge, VISOR_STREAM_MAX_WINDOW);
    ck_assert_uint_eq(s.rcv_edge, UINT32_MAX);
}
END_TEST

START_TEST(test_rx_in_order)
{
    struct visor_stream s;
    size_t skip, take;

    visor_stream_init(&s, 100, 100);
    ck_assert_int_eq(rx(&s, 0, 0, 10, &skip, &take), VISOR_STREAM_RX_NEW);
    ck_assert_uint_eq(skip, 0);
    ck_assert_uint_eq(take, 10);
    ck_assert_int_eq(rx(&s, 0, 10, 20, &skip, &take), VISOR_STREAM_RX_NEW);
    ck_assert_uint_eq(skip, 0);
    ck_assert_uint_eq(take, 20);
    ck_assert_uint_eq(s.rcv_nxt, 30);
    ck_assert_uint_eq(visor_stream_ack_value(&s), 30);
    /* up to the edge exactly */
    ck_assert_int_eq(rx(&s, 0, 30, 70, &skip, &take), VISOR_STREAM_RX_NEW);
    ck_assert_uint_eq(take, 70);
    ck_assert_uint_eq(visor_stream_ack_value(&s), 100);
    ck_assert(!s.fin_rcvd);
}
END_TEST

/* A resend of what arrived is OLD; a partial one delivers only its new bytes. */
START_TEST(test_rx_duplicate_is_old)
{
    struct visor_stream s;
    size_t skip, take;

    visor_stream_init(&s, 100, 100);
    ck_assert_int_eq(rx(&s, 0, 0, 10, &skip, &take), VISOR_STREAM_RX_NEW);
    ck_assert_int_eq(rx(&s, 0, 0, 10, &skip, &take), VISOR_STREAM_RX_OLD);
    ck_assert_uint_eq(skip, 0);
    ck_assert_uint_eq(take, 0);
    ck_assert_int_eq(rx(&s, 0, 3, 5, &skip, &take), VISOR_STREAM_RX_OLD);
    ck_assert_int_eq(rx(&s, 0, 0, 1, &skip, &take), VISOR_STREAM_RX_OLD);
    ck_assert_uint_eq(s.rcv_nxt, 10);
    /* overlapping: only [10, 15) is new */
    ck_assert_int_eq(rx(&s, 0, 5, 10, &skip, &take), VISOR_STREAM_RX_NEW);
    ck_assert_uint_eq(skip, 5);
    ck_assert_uint_eq(take, 5);
    ck_assert_uint_eq(s.rcv_nxt, 15);
    /* an ACK (no bytes, no FIN) is OLD wherever its seq points */
    ck_assert_int_eq(rx(&s, 0, 0, 0, &skip, &take), VISOR_STREAM_RX_OLD);
    ck_assert_int_eq(rx(&s, 0, 15, 0, &skip, &take), VISOR_STREAM_RX_OLD);
    ck_assert_int_eq(rx(&s, VISOR_REC_PROBE | VISOR_REC_GAP, 9999, 0, &skip, &take), VISOR_STREAM_RX_OLD);
    ck_assert_uint_eq(s.rcv_nxt, 15);
}
END_TEST

START_TEST(test_rx_gap)
{
    struct visor_stream s;
    size_t skip = 9, take = 9;

    visor_stream_init(&s, 100, 100);
    ck_assert_int_eq(rx(&s, 0, 1, 10, &skip, &take), VISOR_STREAM_RX_GAP);
    ck_assert_uint_eq(skip, 0);
    ck_assert_uint_eq(take, 0);
    ck_assert_uint_eq(s.rcv_nxt, 0);
    ck_assert_int_eq(rx(&s, 0, 0, 10, &skip, &take), VISOR_STREAM_RX_NEW);
    ck_assert_int_eq(rx(&s, 0, 20, 10, &skip, &take), VISOR_STREAM_RX_GAP);
    ck_assert_uint_eq(visor_stream_ack_value(&s), 10);
}
END_TEST

/* Bytes past the advertised edge: a sender that ignores the window. */
START_TEST(test_rx_beyond_window)
{
    struct visor_stream s;
    size_t skip, take;

    visor_stream_init(&s, 100, 100);
    ck_assert_int_eq(rx(&s, 0, 0, 101, &skip, &take), VISOR_STREAM_RX_BEYOND);
    ck_assert_uint_eq(take, 0);
    ck_assert_uint_eq(s.rcv_nxt, 0);
    ck_assert_int_eq(rx(&s, 0, 0, 90, &skip, &take), VISOR_STREAM_RX_NEW);
    ck_assert_int_eq(rx(&s, 0, 90, 11, &skip, &take), VISOR_STREAM_RX_BEYOND);
    ck_assert_int_eq(rx(&s, 0, 50, 51, &skip, &take), VISOR_STREAM_RX_BEYOND); /* old start, end past the edge */
    ck_assert_int_eq(rx(&s, VISOR_REC_FIN, 90, 11, &skip, &take), VISOR_STREAM_RX_BEYOND);
    ck_assert_uint_eq(s.fin_at, VISOR_STREAM_NO_FIN);
    ck_assert_uint_eq(s.rcv_nxt, 90);
    ck_assert_int_eq(rx(&s, 0, 90, 10, &skip, &take), VISOR_STREAM_RX_NEW);
    /* a window of 0 */
    ck_assert_uint_eq(visor_stream_window(&s, 0), 0);
    ck_assert_int_eq(rx(&s, 0, 100, 1, &skip, &take), VISOR_STREAM_RX_BEYOND);
    /* the FIN itself needs no room */
    ck_assert_int_eq(rx(&s, VISOR_REC_FIN, 100, 0, &skip, &take), VISOR_STREAM_RX_NEW);
    ck_assert(s.fin_rcvd);
}
END_TEST

START_TEST(test_window_never_moves_back)
{
    struct visor_stream s;
    size_t skip, take;

    visor_stream_init(&s, 100, 100);
    ck_assert_uint_eq(visor_stream_window(&s, 50), 100); /* less room than promised: still 100 */
    ck_assert_uint_eq(s.rcv_edge, 100);
    ck_assert_int_eq(rx(&s, 0, 0, 80, &skip, &take), VISOR_STREAM_RX_NEW);
    ck_assert_uint_eq(visor_stream_window(&s, 10), 20);
    ck_assert_uint_eq(visor_stream_window(&s, 0), 20);
    ck_assert_uint_eq(s.rcv_edge, 100);
    ck_assert_uint_eq(visor_stream_window(&s, 200), 200);
    ck_assert_uint_eq(s.rcv_edge, 280);
    ck_assert_uint_eq(visor_stream_window(&s, 0), 200);
    ck_assert_uint_eq(s.rcv_edge, 280);
    ck_assert_int_eq(rx(&s, 0, 80, 200, &skip, &take), VISOR_STREAM_RX_NEW);
    ck_assert_uint_eq(visor_stream_window(&s, 0), 0);
    ck_assert_uint_eq(s.rcv_edge, 280);
    /* a room larger than a u32 advertises the most a u32 says, and the edge stays honest */
    ck_assert_uint_eq(visor_stream_window(&s, (size_t)1 << 40), UINT32_MAX);
    ck_assert_uint_eq(s.rcv_edge, 280 + ((uint64_t)1 << 40));
    ck_assert_uint_eq(visor_stream_window(&s, 5), UINT32_MAX);
    ck_assert_uint_eq(s.rcv_edge, 280 + ((uint64_t)1 << 40));
}
END_TEST

START_TEST(test_rx_bare_fin)
{
    struct visor_stream s;
    size_t skip, take;

    visor_stream_init(&s, 100, 100);
    ck_assert_int_eq(rx(&s, 0, 0, 10, &skip, &take), VISOR_STREAM_RX_NEW);
    /* a FIN beyond what arrived is a gap like any other */
    ck_assert_int_eq(rx(&s, VISOR_REC_FIN, 11, 0, &skip, &take), VISOR_STREAM_RX_GAP);
    ck_assert_uint_eq(s.fin_at, VISOR_STREAM_NO_FIN);
    ck_assert_int_eq(rx(&s, VISOR_REC_FIN, 10, 0, &skip, &take), VISOR_STREAM_RX_NEW);
    ck_assert_uint_eq(skip, 0);
    ck_assert_uint_eq(take, 0);
    ck_assert(s.fin_rcvd);
    ck_assert_uint_eq(s.fin_at, 10);
    ck_assert_uint_eq(visor_stream_ack_value(&s), 11);
    ck_assert_int_eq(rx(&s, VISOR_REC_FIN, 10, 0, &skip, &take), VISOR_STREAM_RX_OLD);
    ck_assert_int_eq(rx(&s, 0, 0, 10, &skip, &take), VISOR_STREAM_RX_OLD);
    ck_assert_uint_eq(visor_stream_ack_value(&s), 11);

    /* a stream of no bytes at all */
    visor_stream_init(&s, 100, 100);
    ck_assert_int_eq(rx(&s, VISOR_REC_FIN, 0, 0, &skip, &take), VISOR_STREAM_RX_NEW);
    ck_assert(s.fin_rcvd);
    ck_assert_uint_eq(visor_stream_ack_value(&s), 1);
}
END_TEST

START_TEST(test_rx_fin_with_data)
{
    struct visor_stream s;
    size_t skip, take;

    visor_stream_init(&s, 100, 100);
    ck_assert_int_eq(rx(&s, VISOR_REC_FIN, 10, 10, &skip, &take), VISOR_STREAM_RX_GAP);
    ck_assert_uint_eq(s.fin_at, VISOR_STREAM_NO_FIN);
    ck_assert_int_eq(rx(&s, 0, 0, 15, &skip, &take), VISOR_STREAM_RX_NEW);
    ck_assert(!s.fin_rcvd);
    ck_assert_int_eq(rx(&s, VISOR_REC_FIN, 10, 10, &skip, &take), VISOR_STREAM_RX_NEW);
    ck_assert_uint_eq(skip, 5);
    ck_assert_uint_eq(take, 5);
    ck_assert(s.fin_rcvd);
    ck_assert_uint_eq(visor_stream_ack_value(&s), 21);
    ck_assert_int_eq(rx(&s, VISOR_REC_FIN, 10, 10, &skip, &take), VISOR_STREAM_RX_OLD);
    ck_assert_int_eq(rx(&s, 0, 12, 8, &skip, &take), VISOR_STREAM_RX_OLD);
    ck_assert_uint_eq(visor_stream_ack_value(&s), 21);
}
END_TEST

/* Malformed: two different ends of one stream. */
START_TEST(test_rx_conflicting_fin_is_beyond)
{
    struct visor_stream s;
    size_t skip, take;

    visor_stream_init(&s, 100, 100);
    ck_assert_int_eq(rx(&s, VISOR_REC_FIN, 0, 20, &skip, &take), VISOR_STREAM_RX_NEW);
    ck_assert_int_eq(rx(&s, VISOR_REC_FIN, 0, 10, &skip, &take), VISOR_STREAM_RX_BEYOND); /* earlier end */
    ck_assert_int_eq(rx(&s, VISOR_REC_FIN, 15, 0, &skip, &take), VISOR_STREAM_RX_BEYOND);
    ck_assert_int_eq(rx(&s, VISOR_REC_FIN, 20, 5, &skip, &take), VISOR_STREAM_RX_BEYOND); /* later end */
    ck_assert_int_eq(rx(&s, VISOR_REC_FIN, 10, 15, &skip, &take), VISOR_STREAM_RX_BEYOND);
    ck_assert_uint_eq(s.fin_at, 20);
    ck_assert_uint_eq(visor_stream_ack_value(&s), 21);

    /* a FIN before bytes that were already delivered */
    visor_stream_init(&s, 100, 100);
    ck_assert_int_eq(rx(&s, 0, 0, 20, &skip, &take), VISOR_STREAM_RX_NEW);
    ck_assert_int_eq(rx(&s, VISOR_REC_FIN, 0, 10, &skip, &take), VISOR_STREAM_RX_BEYOND);
    ck_assert_int_eq(rx(&s, VISOR_REC_FIN, 19, 0, &skip, &take), VISOR_STREAM_RX_BEYOND);
    ck_assert_uint_eq(s.fin_at, VISOR_STREAM_NO_FIN);
    ck_assert(!s.fin_rcvd);
    ck_assert_int_eq(rx(&s, VISOR_REC_FIN, 20, 0, &skip, &take), VISOR_STREAM_RX_NEW);
    ck_assert(s.fin_rcvd);
}
END_TEST

/* Malformed: bytes after the FIN. */
START_TEST(test_rx_data_after_fin_is_beyond)
{
    struct visor_stream s;
    size_t skip, take;

    visor_stream_init(&s, 100, 100);
    ck_assert_int_eq(rx(&s, VISOR_REC_FIN, 0, 20, &skip, &take), VISOR_STREAM_RX_NEW);
    ck_assert_int_eq(rx(&s, 0, 20, 5, &skip, &take), VISOR_STREAM_RX_BEYOND);
    ck_assert_int_eq(rx(&s, 0, 15, 10, &skip, &take), VISOR_STREAM_RX_BEYOND);
    ck_assert_int_eq(rx(&s, 0, 0, 21, &skip, &take), VISOR_STREAM_RX_BEYOND);
    /* starting past the FIN it is dropped as a gap: never delivered either way */
    ck_assert_int_ne(rx(&s, 0, 22, 5, &skip, &take), VISOR_STREAM_RX_NEW);
    ck_assert_uint_eq(take, 0);
    ck_assert_uint_eq(s.rcv_nxt, 20);
    ck_assert_uint_eq(visor_stream_ack_value(&s), 21);
}
END_TEST

/* ---- sending ---- */

START_TEST(test_sendable_limited_by_window)
{
    struct visor_stream s;
    uint64_t acked;

    visor_stream_init(&s, 100, 100);
    ck_assert_uint_eq(visor_stream_sendable(&s, 0), 0);
    ck_assert_uint_eq(visor_stream_sendable(&s, 30), 30);
    ck_assert_uint_eq(visor_stream_sendable(&s, 500), 100);
    visor_stream_sent(&s, 60, false, 0);
    ck_assert_uint_eq(visor_stream_sendable(&s, 500), 40);
    ck_assert_uint_eq(visor_stream_sendable(&s, 70), 10); /* have counts from snd_una */
    visor_stream_sent(&s, 40, false, 0);
    ck_assert_uint_eq(visor_stream_sendable(&s, 500), 0);
    ck_assert_int_eq(ack(&s, 0, 50, 100, 10, &acked), VISOR_STREAM_ACK_OK);
    ck_assert_uint_eq(acked, 50);
    ck_assert_uint_eq(s.snd_edge, 150);
    ck_assert_uint_eq(visor_stream_sendable(&s, 450), 50);
    visor_stream_set_fin(&s, 120);
    ck_assert_uint_eq(visor_stream_sendable(&s, 450), 20);
    visor_stream_set_fin(&s, 300); /* the first EOF counts */
    ck_assert_uint_eq(s.fin_seq, 120);
}
END_TEST

START_TEST(test_ack_ok_counts_bytes)
{
    struct visor_stream s;
    uint64_t acked = 99;

    visor_stream_init(&s, 1000, 1000);
    visor_stream_sent(&s, 100, false, 0);
    visor_stream_sent(&s, 100, false, 0);
    ck_assert_int_eq(ack(&s, 0, 0, 1000, 1, &acked), VISOR_STREAM_ACK_OK);
    ck_assert_uint_eq(acked, 0);
    ck_assert_int_eq(ack(&s, 0, 30, 1000, 2, &acked), VISOR_STREAM_ACK_OK);
    ck_assert_uint_eq(acked, 30);
    ck_assert_uint_eq(s.snd_edge, 1030);
    ck_assert_int_eq(ack(&s, 0, 150, 500, 3, &acked), VISOR_STREAM_ACK_OK);
    ck_assert_uint_eq(acked, 120);
    ck_assert_uint_eq(s.snd_edge, 1030); /* 650 < 1030: the edge stays */
    /* an older ack (reordered) moves nothing back */
    ck_assert_int_eq(ack(&s, 0, 30, 1000, 4, &acked), VISOR_STREAM_ACK_OK);
    ck_assert_uint_eq(acked, 0);
    ck_assert_uint_eq(s.snd_una, 150);
    ck_assert_int_eq(ack(&s, 0, 200, 1000, 5, &acked), VISOR_STREAM_ACK_OK);
    ck_assert_uint_eq(acked, 50);
    ck_assert(!visor_stream_in_flight(&s));
    ck_assert_uint_eq(s.snd_edge, 1200);
    /* the largest window a header can carry counts as VISOR_STREAM_MAX_WINDOW */
    ck_assert_int_eq(ack(&s, 0, 200, UINT32_MAX, 6, &acked), VISOR_STREAM_ACK_OK);
    ck_assert_uint_eq(s.snd_edge, 200 + (uint64_t)VISOR_STREAM_MAX_WINDOW);
    ck_assert_uint_eq(visor_stream_sendable(&s, UINT64_MAX / 2), VISOR_STREAM_MAX_WINDOW);
}
END_TEST

/* Malformed: an ack of offsets never sent. */
START_TEST(test_ack_of_unsent_is_bogus)
{
    struct visor_stream s, before;
    uint64_t acked = 99;

    visor_stream_init(&s, 1000, 1000);
    ck_assert_int_eq(ack(&s, 0, 1, 1000, 1, &acked), VISOR_STREAM_ACK_BOGUS);
    ck_assert_uint_eq(acked, 0);
    visor_stream_sent(&s, 100, false, 0);
    before = s;
    ck_assert_int_eq(ack(&s, 0, 101, 5000, 1, &acked), VISOR_STREAM_ACK_BOGUS);
    ck_assert_int_eq(ack(&s, VISOR_REC_GAP, UINT64_MAX, 5000, 1, &acked), VISOR_STREAM_ACK_BOGUS);
    ck_assert(memcmp(&s, &before, sizeof(s)) == 0); /* not even the window moved */
    /* the FIN's offset is acknowledged only once the FIN went out */
    visor_stream_set_fin(&s, 100);
    ck_assert_int_eq(ack(&s, 0, 101, 1000, 1, &acked), VISOR_STREAM_ACK_BOGUS);
    ck_assert(visor_stream_fin_due(&s));
    visor_stream_sent(&s, 0, true, 2);
    ck_assert_int_eq(ack(&s, 0, 101, 1000, 3, &acked), VISOR_STREAM_ACK_OK);
    ck_assert_uint_eq(acked, 100);
    ck_assert(visor_stream_fin_acked(&s));
    ck_assert_int_eq(ack(&s, 0, 102, 1000, 3, &acked), VISOR_STREAM_ACK_BOGUS);
}
END_TEST

/* A GAP report rewinds once; more reports of the same gap, from records that were already on
 * their way, are not acted on for about a round trip (1.5 srtt, 50 ms before a sample, within
 * 10..1000 ms); after that a GAP report resends again. */
START_TEST(test_gap_resend_once_per_round_trip)
{
    struct visor_stream s;
    uint64_t acked;

    visor_stream_init(&s, 1000, 1000);
    for (int i = 0; i < 10; i++)
        visor_stream_sent(&s, 10, false, i);
    ck_assert_int_eq(ack(&s, VISOR_REC_GAP, 0, 1000, 20, &acked), VISOR_STREAM_ACK_RESEND);
    ck_assert_uint_eq(s.snd_nxt, 0);
    ck_assert_int_eq(s.gap_hold_ms, 20 + 50); /* no RTT sample yet */
    ck_assert_uint_eq(visor_stream_sendable(&s, 100), 100);
    visor_stream_sent(&s, 10, false, 21);                   /* resending [0, 10) */
    ck_assert_int_eq(ack(&s, VISOR_REC_GAP, 0, 1000, 22, &acked), VISOR_STREAM_ACK_OK);
    ck_assert_uint_eq(s.snd_nxt, 10);                       /* not rewound again */
    for (int i = 1; i < 10; i++)
        visor_stream_sent(&s, 10, false, 22);
    ck_assert_uint_eq(s.snd_max, 100);
    /* progress, but inside the hold: another gap report is not acted on */
    ck_assert_int_eq(ack(&s, VISOR_REC_GAP, 30, 1000, 23, &acked), VISOR_STREAM_ACK_OK);
    ck_assert_uint_eq(acked, 30);
    ck_assert_uint_eq(s.snd_nxt, 100);
    ck_assert_int_eq(ack(&s, VISOR_REC_GAP, 30, 1000, 69, &acked), VISOR_STREAM_ACK_OK);
    ck_assert_uint_eq(s.snd_nxt, 100);
    /* the hold is over: the gap is real, resend again */
    ck_assert_int_eq(ack(&s, VISOR_REC_GAP, 30, 1000, 70, &acked), VISOR_STREAM_ACK_RESEND);
    ck_assert_uint_eq(s.snd_nxt, 30);
    ck_assert_int_eq(s.gap_hold_ms, 120);
    visor_stream_sent(&s, 70, false, 71);
    /* a stale GAP report (its ack behind snd_una) asks for nothing */
    ck_assert_int_eq(ack(&s, 0, 60, 1000, 200, &acked), VISOR_STREAM_ACK_OK);
    ck_assert_int_eq(ack(&s, VISOR_REC_GAP, 30, 1000, 201, &acked), VISOR_STREAM_ACK_OK);
    ck_assert_uint_eq(s.snd_nxt, 100);
    /* a GAP report that also acknowledges bytes resends from its ack */
    ck_assert_int_eq(ack(&s, VISOR_REC_GAP, 80, 1000, 202, &acked), VISOR_STREAM_ACK_RESEND);
    ck_assert_uint_eq(acked, 20);
    ck_assert_uint_eq(s.snd_nxt, 80);
    visor_stream_sent(&s, 20, false, 203);
    ck_assert_int_eq(ack(&s, 0, 100, 1000, 300, &acked), VISOR_STREAM_ACK_OK);
    /* a GAP when nothing is in flight asks for nothing */
    ck_assert_int_eq(ack(&s, VISOR_REC_GAP, 100, 1000, 5000, &acked), VISOR_STREAM_ACK_OK);
    ck_assert_uint_eq(s.snd_nxt, 100);
}
END_TEST

/* The hold follows the smoothed RTT, within 10..1000 ms; a rewind holds too. */
START_TEST(test_gap_hold_follows_rtt)
{
    static const struct { int64_t rtt, hold; } cases[] = { { 200, 300 }, { 1, 10 }, { 5000, 1000 } };
    struct visor_stream s;
    uint64_t acked;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        visor_stream_init(&s, 1000, 1000);
        visor_stream_sent(&s, 10, false, 1000);
        ck_assert_int_eq(ack(&s, 0, 10, 1000, 1000 + cases[i].rtt, &acked), VISOR_STREAM_ACK_OK);
        ck_assert_uint_eq(s.srtt_ms, cases[i].rtt);
        visor_stream_sent(&s, 50, false, 10000);
        ck_assert_int_eq(ack(&s, VISOR_REC_GAP, 10, 1000, 10000, &acked), VISOR_STREAM_ACK_RESEND);
        visor_stream_sent(&s, 50, false, 10000);
        ck_assert_int_eq(ack(&s, VISOR_REC_GAP, 10, 1000, 10000 + cases[i].hold - 1, &acked), VISOR_STREAM_ACK_OK);
        ck_assert_uint_eq(s.snd_nxt, 60);
        ck_assert_int_eq(ack(&s, VISOR_REC_GAP, 10, 1000, 10000 + cases[i].hold, &acked), VISOR_STREAM_ACK_RESEND);
        ck_assert_uint_eq(s.snd_nxt, 10);
    }
    /* a rewind (timeout, failover) holds GAP reports as a GAP resend does */
    visor_stream_init(&s, 1000, 1000);
    visor_stream_sent(&s, 50, false, 0);
    visor_stream_rewind(&s, 100);
    visor_stream_sent(&s, 50, false, 100);
    ck_assert_int_eq(ack(&s, VISOR_REC_GAP, 0, 1000, 149, &acked), VISOR_STREAM_ACK_OK);
    ck_assert_int_eq(ack(&s, VISOR_REC_GAP, 0, 1000, 150, &acked), VISOR_STREAM_ACK_RESEND);
}
END_TEST

START_TEST(test_rto_doubles_up_to_max)
{
    struct visor_stream s;
    uint64_t acked;

    visor_stream_init(&s, 1000, 1000);
    ck_assert_int_eq(visor_stream_on_timer(&s, 5, 0), VISOR_STREAM_T_NONE);
    visor_stream_sent(&s, 100, false, 1000);
    ck_assert_uint_eq(s.rto_ms, 1000);
    ck_assert_int_eq(s.rtx_due_ms, 2000);
    ck_assert_int_eq(visor_stream_on_timer(&s, 1999, 0), VISOR_STREAM_T_NONE);
    ck_assert_int_eq(visor_stream_on_timer(&s, 2000, 0), VISOR_STREAM_T_RESEND);
    ck_assert_uint_eq(s.snd_nxt, 0);
    ck_assert_uint_eq(s.rto_ms, 2000);
    ck_assert_int_eq(s.rtx_due_ms, 4000);
    visor_stream_sent(&s, 100, false, 2000);          /* the resend does not restart the timer */
    ck_assert_int_eq(s.rtx_due_ms, 4000);
    ck_assert_int_eq(visor_stream_on_timer(&s, 3999, 0), VISOR_STREAM_T_NONE);
    ck_assert_int_eq(visor_stream_on_timer(&s, 4000, 0), VISOR_STREAM_T_RESEND);
    ck_assert_uint_eq(s.rto_ms, 4000);
    ck_assert_int_eq(visor_stream_on_timer(&s, 8000, 0), VISOR_STREAM_T_RESEND);
    ck_assert_uint_eq(s.rto_ms, VISOR_STREAM_RTO_MAX_MS);
    ck_assert_int_eq(visor_stream_on_timer(&s, 12000, 0), VISOR_STREAM_T_RESEND);
    ck_assert_uint_eq(s.rto_ms, VISOR_STREAM_RTO_MAX_MS);
    ck_assert_int_eq(s.rtx_due_ms, 12000 + VISOR_STREAM_RTO_MAX_MS);
    /* after resends no RTT sample (Karn), but progress ends the backoff: with no sample yet the
     * timeout is the initial one again */
    visor_stream_sent(&s, 100, false, 12000);
    ck_assert_int_eq(ack(&s, 0, 100, 1000, 12010, &acked), VISOR_STREAM_ACK_OK);
    ck_assert_uint_eq(s.srtt_ms, 0);
    ck_assert_uint_eq(s.rto_ms, 1000);
    ck_assert_int_eq(s.rtx_due_ms, 0);
    ck_assert_int_eq(visor_stream_on_timer(&s, 50000, 0), VISOR_STREAM_T_NONE);
    /* new bytes give a sample: 100 ms -> srtt 100, rto 3 * 100 + 50 */
    visor_stream_sent(&s, 10, false, 20000);
    ck_assert_int_eq(ack(&s, 0, 110, 1000, 20100, &acked), VISOR_STREAM_ACK_OK);
    ck_assert_uint_eq(s.srtt_ms, 100);
    ck_assert_uint_eq(s.rto_ms, 350);
    /* a tiny RTT is floored, a huge one capped */
    visor_stream_sent(&s, 10, false, 30000);
    ck_assert_int_eq(ack(&s, 0, 120, 1000, 30000, &acked), VISOR_STREAM_ACK_OK);
    ck_assert_uint_ge(s.rto_ms, VISOR_STREAM_RTO_MIN_MS);
    for (int i = 0; i < 40; i++) {
        visor_stream_sent(&s, 1, false, 40000 + i * 100000);
        ck_assert_int_eq(ack(&s, 0, s.snd_max, 1000, 40000 + i * 100000 + 60000, &acked), VISOR_STREAM_ACK_OK);
        ck_assert_uint_le(s.rto_ms, VISOR_STREAM_RTO_MAX_MS);
    }
    ck_assert_uint_eq(s.rto_ms, VISOR_STREAM_RTO_MAX_MS);
}
END_TEST

/* The timer restarts from each ack that moves snd_una, and stops when nothing is in flight. */
START_TEST(test_rto_restarts_on_progress)
{
    struct visor_stream s;
    uint64_t acked;

    visor_stream_init(&s, 1000, 1000);
    visor_stream_sent(&s, 100, false, 0);
    ck_assert_int_eq(ack(&s, 0, 50, 1000, 800, &acked), VISOR_STREAM_ACK_OK);
    ck_assert_int_eq(s.rtx_due_ms, 800 + (int64_t)s.rto_ms);
    ck_assert_int_eq(visor_stream_on_timer(&s, 1000, 0), VISOR_STREAM_T_NONE);
    ck_assert_int_eq(ack(&s, 0, 50, 1000, 900, &acked), VISOR_STREAM_ACK_OK); /* no progress: no restart */
    ck_assert_int_eq(s.rtx_due_ms, 800 + (int64_t)s.rto_ms);
    ck_assert_int_eq(ack(&s, 0, 100, 1000, 950, &acked), VISOR_STREAM_ACK_OK);
    ck_assert_int_eq(s.rtx_due_ms, 0);
    ck_assert_int_eq(visor_stream_on_timer(&s, 100000, 0), VISOR_STREAM_T_NONE);
    /* rewind (a failover): everything not acknowledged goes again */
    visor_stream_sent(&s, 30, false, 2000);
    visor_stream_rewind(&s, 2100);
    ck_assert_uint_eq(s.snd_nxt, 100);
    ck_assert_int_eq(s.rtx_due_ms, 2100 + (int64_t)s.rto_ms);
    ck_assert_uint_eq(visor_stream_sendable(&s, 30), 30);
}
END_TEST

START_TEST(test_probe_when_window_closed)
{
    struct visor_stream s;
    uint64_t acked;
    int64_t due;

    visor_stream_init(&s, 10, 1000);
    ck_assert_uint_eq(visor_stream_sendable(&s, 50), 10);
    visor_stream_sent(&s, 10, false, 0);
    ck_assert_uint_eq(visor_stream_sendable(&s, 50), 0);
    /* in flight: the retransmission timer is in charge, not the probe */
    ck_assert_int_eq(visor_stream_on_timer(&s, 10, 40), VISOR_STREAM_T_NONE);
    ck_assert_int_eq(s.probe_due_ms, 0);
    ck_assert_int_eq(ack(&s, 0, 10, 0, 100, &acked), VISOR_STREAM_ACK_OK); /* all in, window 0 */
    ck_assert(!visor_stream_in_flight(&s));
    ck_assert_uint_eq(visor_stream_sendable(&s, 40), 0);
    /* nothing pending: no probe */
    ck_assert_int_eq(visor_stream_on_timer(&s, 200, 0), VISOR_STREAM_T_NONE);
    ck_assert_int_eq(s.probe_due_ms, 0);
    /* pending: armed, then fires after an RTO, then every RTO_MAX */
    ck_assert_int_eq(visor_stream_on_timer(&s, 300, 40), VISOR_STREAM_T_NONE);
    due = s.probe_due_ms;
    ck_assert_int_eq(due, 300 + (int64_t)s.rto_ms);
    ck_assert_int_eq(visor_stream_on_timer(&s, due - 1, 40), VISOR_STREAM_T_NONE);
    ck_assert_int_eq(visor_stream_on_timer(&s, due, 40), VISOR_STREAM_T_PROBE);
    ck_assert_int_eq(s.probe_due_ms, due + VISOR_STREAM_RTO_MAX_MS);
    ck_assert_int_eq(visor_stream_on_timer(&s, due + 1, 40), VISOR_STREAM_T_NONE);
    ck_assert_int_eq(visor_stream_on_timer(&s, due + VISOR_STREAM_RTO_MAX_MS, 40), VISOR_STREAM_T_PROBE);
    ck_assert(!visor_stream_in_flight(&s)); /* a probe is not data */
    /* the answer opens the window: disarmed, bytes go */
    ck_assert_int_eq(ack(&s, 0, 10, 100, 9000, &acked), VISOR_STREAM_ACK_OK);
    ck_assert_int_eq(s.probe_due_ms, 0);
    ck_assert_uint_eq(visor_stream_sendable(&s, 40), 40);
    ck_assert_int_eq(visor_stream_on_timer(&s, 20000, 40), VISOR_STREAM_T_NONE);
    ck_assert_int_eq(s.probe_due_ms, 0);
}
END_TEST

/* The stall clock: last_progress_ms is when snd_una last moved, or when data went out with
 * nothing in flight (a stall is measured from it). */
START_TEST(test_last_progress_ms)
{
    struct visor_stream s;
    uint64_t acked;

    visor_stream_init(&s, 1000, 1000);
    ck_assert_int_eq(s.last_progress_ms, 0);
    visor_stream_sent(&s, 100, false, 100);
    ck_assert_int_eq(s.last_progress_ms, 100);
    visor_stream_sent(&s, 100, false, 400); /* more bytes are not progress */
    ck_assert_int_eq(s.last_progress_ms, 100);
    ck_assert_int_eq(ack(&s, 0, 0, 1000, 650, &acked), VISOR_STREAM_ACK_OK); /* nor an ack of nothing */
    ck_assert_int_eq(s.last_progress_ms, 100);
    ck_assert_int_eq(visor_stream_on_timer(&s, 1100, 0), VISOR_STREAM_T_RESEND); /* nor a timeout */
    ck_assert_int_eq(s.last_progress_ms, 100);
    ck_assert_int_eq(ack(&s, 0, 50, 1000, 1200, &acked), VISOR_STREAM_ACK_OK);
    ck_assert_int_eq(s.last_progress_ms, 1200);
    ck_assert_int_eq(ack(&s, 0, 200, 1000, 1300, &acked), VISOR_STREAM_ACK_OK);
    ck_assert(!visor_stream_in_flight(&s));
    /* after an idle time, the clock starts with the next bytes, not with the last ack */
    visor_stream_sent(&s, 1, false, 50000);
    ck_assert_int_eq(s.last_progress_ms, 50000);
}
END_TEST

START_TEST(test_fin_sender)
{
    struct visor_stream s;
    uint64_t acked;

    visor_stream_init(&s, 1000, 1000);
    visor_stream_set_fin(&s, 10);
    ck_assert_uint_eq(visor_stream_sendable(&s, 10), 10);
    ck_assert(!visor_stream_fin_due(&s));
    visor_stream_sent(&s, 4, false, 0);
    ck_assert(!visor_stream_fin_due(&s));
    visor_stream_sent(&s, 6, false, 0);
    ck_assert(visor_stream_fin_due(&s));
    ck_assert_uint_eq(visor_stream_sendable(&s, 10), 0);
    visor_stream_sent(&s, 0, true, 0);
    ck_assert(!visor_stream_fin_due(&s));
    ck_assert_uint_eq(s.snd_max, 11);
    ck_assert_int_eq(ack(&s, 0, 10, 1000, 5, &acked), VISOR_STREAM_ACK_OK);
    ck_assert_uint_eq(acked, 10);
    ck_assert(!visor_stream_fin_acked(&s));
    ck_assert(visor_stream_in_flight(&s));
    /* the lost FIN goes again on the timer */
    ck_assert_int_eq(visor_stream_on_timer(&s, 100000, 0), VISOR_STREAM_T_RESEND);
    ck_assert(visor_stream_fin_due(&s));
    visor_stream_sent(&s, 0, true, 100000);
    ck_assert_int_eq(ack(&s, 0, 11, 1000, 100010, &acked), VISOR_STREAM_ACK_OK);
    ck_assert_uint_eq(acked, 0); /* the FIN is not a byte of data */
    ck_assert(visor_stream_fin_acked(&s));
    ck_assert(!visor_stream_in_flight(&s));
    ck_assert(!visor_stream_fin_due(&s));

    /* the FIN in the record of the last bytes, the window full to the byte */
    visor_stream_init(&s, 10, 1000);
    visor_stream_set_fin(&s, 10);
    ck_assert_uint_eq(visor_stream_sendable(&s, 10), 10);
    visor_stream_sent(&s, 10, true, 0);
    ck_assert_uint_eq(s.snd_max, 11);
    ck_assert_int_eq(ack(&s, 0, 11, 0, 5, &acked), VISOR_STREAM_ACK_OK);
    ck_assert_uint_eq(acked, 10);
    ck_assert(visor_stream_fin_acked(&s));

    /* an empty stream: the FIN is due at once */
    visor_stream_init(&s, 0, 1000);
    visor_stream_set_fin(&s, 0);
    ck_assert(visor_stream_fin_due(&s));
    ck_assert_uint_eq(visor_stream_sendable(&s, 0), 0);
}
END_TEST

/* ---- two ends ---- */

/* check's ck_assert reports every check through a pipe: too slow for the millions of checks of
 * the simulations, which use these (a failure still fails the test, with its line). */
#define REQUIRE_MSG(c, ...)            \
    do {                               \
        if (!(c))                      \
            ck_abort_msg(__VA_ARGS__); \
    } while (0)
#define REQUIRE(c) REQUIRE_MSG(c, "line %d: %s", __LINE__, #c)
#define REQUIRE_OP(a, op, b)                                                                               \
    do {                                                                                                   \
        unsigned long long a_ = (unsigned long long)(a), b_ = (unsigned long long)(b);                     \
        REQUIRE_MSG(a_ op b_, "line %d: %s %s %s (%llu vs %llu)", __LINE__, #a, #op, #b, a_, b_);          \
    } while (0)
#define REQUIRE_EQ(a, b) REQUIRE_OP(a, ==, b)
#define REQUIRE_NE(a, b) REQUIRE_OP(a, !=, b)
#define REQUIRE_LE(a, b) REQUIRE_OP(a, <=, b)

#define SIM_MAX_LEN 1400

/* What the simulations went through, summed over runs (the random test checks that each path
 * was taken). */
static struct {
    uint64_t records, lost, gaps, gap_resends, timer_resends, probes, old, window_updates;
} g_stats;

/* A byte of the stream that end `id` sends, at offset `off`. */
static uint8_t pattern(int id, uint64_t off)
{
    return (uint8_t)(off * 131 + (off >> 9) * 7 + (uint64_t)id * 101 + 1);
}

struct end {
    struct visor_stream s;
    int id;
    uint64_t total;     /* bytes its app will write */
    uint64_t written;   /* bytes its app wrote so far */
    uint64_t delivered; /* bytes of the peer delivered to its app, in order */
    uint64_t acked;     /* data bytes its peer acknowledged (sum of *acked) */
    uint64_t cap, buffered; /* its app's receive buffer */
    bool saw_fin;       /* delivered the peer's FIN (once) */
    int resends;        /* ACK_RESEND answers */
};

static void end_init(struct end *e, int id, uint64_t total, uint64_t cap, uint64_t peer_cap)
{
    memset(e, 0, sizeof(*e));
    e->id = id;
    e->total = total;
    e->cap = cap;
    visor_stream_init(&e->s, (uint32_t)peer_cap, (uint32_t)cap);
}

/* One record's inner bytes. */
struct rec {
    int64_t at;
    int to;
    size_t len;
    uint8_t b[VISOR_REC_HDR_LEN + SIM_MAX_LEN];
};

struct net {
    struct rec **q; /* in the order sent */
    size_t n, cap;
    unsigned seed;
    int loss, dup, jitter; /* percent, percent, ms */
    bool reliable;         /* no loss, no duplicates, no reordering from now on */
    int64_t now;
    uint64_t sent, lost;
};

static unsigned rnd(struct net *n, unsigned m)
{
    return m ? (unsigned)rand_r(&n->seed) % m : 0;
}

static void net_push(struct net *n, int to, const uint8_t *b, size_t len)
{
    int copies = 1;

    n->sent++;
    if (!n->reliable && (int)rnd(n, 100) < n->loss) {
        n->lost++;
        return;
    }
    if (!n->reliable && (int)rnd(n, 100) < n->dup)
        copies = 2;
    for (int c = 0; c < copies; c++) {
        struct rec *r = malloc(sizeof(*r));
        REQUIRE(r != NULL);
        if (n->n == n->cap) {
            n->cap = n->cap ? n->cap * 2 : 64;
            n->q = realloc(n->q, n->cap * sizeof(*n->q));
            REQUIRE(n->q != NULL);
        }
        n->q[n->n++] = r;
        r->at = n->now + 1 + (n->reliable ? 0 : rnd(n, (unsigned)n->jitter + 1));
        r->to = to;
        r->len = len;
        memcpy(r->b, b, len);
    }
}

/* Sends one record from e: `len` bytes from snd_nxt, flags, our ack and window. */
static void emit(struct net *n, struct end *e, uint8_t flags, uint64_t seq, size_t len)
{
    uint8_t b[VISOR_REC_HDR_LEN + SIM_MAX_LEN];
    struct visor_rec_hdr h = { .flags = flags, .seq = seq, .ack = visor_stream_ack_value(&e->s) };
    uint64_t room = e->cap - e->buffered;

    if (rnd(n, 4) == 0) /* sometimes less room than there is (the app's buffer is shared): the
                         * window must not move back for that */
        room = rnd(n, (unsigned)room + 1);
    h.window = visor_stream_window(&e->s, (size_t)room);
    visor_rec_hdr_put(b, &h);
    for (size_t i = 0; i < len; i++)
        b[VISOR_REC_HDR_LEN + i] = pattern(e->id, seq + i);
    net_push(n, 1 - e->id, b, VISOR_REC_HDR_LEN + len);
}

static void send_ack(struct net *n, struct end *e, uint8_t flags)
{
    emit(n, e, flags, e->s.snd_nxt, 0);
}

/* Everything the stream lets e send now. */
static void pump(struct net *n, struct end *e, size_t mss)
{
    for (;;) {
        uint64_t have = e->written > e->s.snd_una ? e->written - e->s.snd_una : 0;
        uint64_t k = visor_stream_sendable(&e->s, have);
        bool fin;
        if (k > mss)
            k = mss;
        fin = e->s.fin_seq != VISOR_STREAM_NO_FIN && e->s.snd_nxt + k == e->s.fin_seq;
        if (k == 0 && !visor_stream_fin_due(&e->s))
            return;
        REQUIRE_LE(e->s.snd_nxt + k, e->written);
        emit(n, e, fin ? VISOR_REC_FIN : 0, e->s.snd_nxt, (size_t)k);
        visor_stream_sent(&e->s, k, fin, n->now);
    }
}

/* e receives a record. */
static void receive(struct net *n, struct end *e, const struct rec *r, struct end *peer)
{
    struct visor_rec_hdr h;
    struct sw_error err = { 0 };
    size_t skip, take;
    uint64_t acked = 0;
    enum visor_stream_ack a;
    enum visor_stream_rx d;

    REQUIRE_EQ(visor_rec_hdr_parse(r->b, r->len, &h, &err), SW_OK);
    a = visor_stream_on_ack(&e->s, &h, n->now, &acked);
    REQUIRE_NE(a, VISOR_STREAM_ACK_BOGUS);
    e->acked += acked;
    REQUIRE_LE(e->acked, e->written);
    REQUIRE_LE(e->s.snd_una, e->s.snd_max);
    if (a == VISOR_STREAM_ACK_RESEND) {
        e->resends++;
        g_stats.gap_resends++;
    }
    d = visor_stream_rx(&e->s, &h, &skip, &take);
    REQUIRE_MSG(d != VISOR_STREAM_RX_BEYOND, "end %d: record [%llu, +%zu) flags %u judged BEYOND (rcv_nxt %llu edge %llu)",
                  e->id, (unsigned long long)h.seq, h.len, h.flags, (unsigned long long)e->s.rcv_nxt,
                  (unsigned long long)e->s.rcv_edge);
    if (d == VISOR_STREAM_RX_NEW) {
        REQUIRE_LE(skip + take, h.len);
        REQUIRE_EQ(h.seq + skip, e->delivered); /* in order, nothing twice */
        for (size_t i = 0; i < take; i++)
            REQUIRE_EQ(h.payload[skip + i], pattern(peer->id, e->delivered + i));
        e->delivered += take;
        e->buffered += take;
        REQUIRE_LE(e->buffered, e->cap); /* the window never promised more */
        REQUIRE_LE(e->delivered, peer->total);
        REQUIRE_EQ(e->delivered, e->s.rcv_nxt);
        if (e->s.fin_rcvd) {
            REQUIRE(!e->saw_fin);
            REQUIRE_EQ(e->delivered, peer->total);
            e->saw_fin = true;
        }
    } else {
        REQUIRE_EQ(take, 0);
    }
    g_stats.gaps += d == VISOR_STREAM_RX_GAP;
    g_stats.old += d == VISOR_STREAM_RX_OLD && h.len;
    if (d == VISOR_STREAM_RX_GAP)
        send_ack(n, e, VISOR_REC_GAP);
    else if (d == VISOR_STREAM_RX_NEW || h.len || (h.flags & (VISOR_REC_FIN | VISOR_REC_PROBE)))
        send_ack(n, e, 0);
}

struct sim_params {
    unsigned seed;
    uint64_t total[2], cap[2];
    size_t mss;
    int loss, dup, jitter;
    int read_every; /* the apps read every that many ms (a slow reader closes the window) */
};

/* Runs the two ends until both have delivered everything and both FINs are acknowledged. */
static void simulate(const struct sim_params *p)
{
    struct net n = { .seed = p->seed, .loss = p->loss, .dup = p->dup, .jitter = p->jitter };
    struct end ends[2];
    int64_t reliable_at = 120000, deadline = 400000;

    end_init(&ends[0], 0, p->total[0], p->cap[0], p->cap[1]);
    end_init(&ends[1], 1, p->total[1], p->cap[1], p->cap[0]);
    for (n.now = 0;; n.now++) {
        bool done = true;
        if (n.now == reliable_at) /* a lossy path must still finish once it heals */
            n.reliable = true;
        /* records due now, in the order they were sent (only jitter reorders them) */
        for (size_t i = 0; i < n.n;) {
            if (n.q[i]->at <= n.now) {
                struct rec *r = n.q[i];
                memmove(&n.q[i], &n.q[i + 1], (n.n - i - 1) * sizeof(n.q[0]));
                n.n--;
                receive(&n, &ends[r->to], r, &ends[1 - r->to]);
                free(r);
            } else {
                i++;
            }
        }
        for (int k = 0; k < 2; k++) {
            struct end *e = &ends[k];
            uint64_t pending;
            /* the app writes a little, then EOF */
            if (e->written < e->total) {
                e->written += 1 + rnd(&n, 3 * (unsigned)p->mss);
                if (e->written > e->total)
                    e->written = e->total;
            }
            if (e->written == e->total)
                visor_stream_set_fin(&e->s, e->total);
            /* the app reads; a window that opened much is announced */
            if (e->buffered && n.now % p->read_every == 0) {
                uint64_t old_edge = e->s.rcv_edge;
                e->buffered -= 1 + rnd(&n, (unsigned)e->buffered);
                if (e->s.rcv_nxt + (e->cap - e->buffered) >= old_edge + (e->cap + 1) / 2) {
                    send_ack(&n, e, 0);
                    g_stats.window_updates++;
                }
            }
            pending = e->written > e->s.snd_nxt ? e->written - e->s.snd_nxt : 0;
            switch (visor_stream_on_timer(&e->s, n.now, pending)) {
            case VISOR_STREAM_T_PROBE:
                send_ack(&n, e, VISOR_REC_PROBE);
                g_stats.probes++;
                break;
            case VISOR_STREAM_T_RESEND:
                g_stats.timer_resends++;
                break;
            case VISOR_STREAM_T_NONE:
                break;
            }
            pump(&n, e, p->mss);
            if (visor_stream_in_flight(&e->s))
                REQUIRE_LE(e->s.last_progress_ms, n.now);
            if (!visor_stream_fin_acked(&e->s) || !e->saw_fin || e->buffered)
                done = false;
        }
        if (done)
            break;
        REQUIRE_MSG(n.now < deadline,
                      "seed %u: not finished after %lld ms: delivered %llu/%llu and %llu/%llu, "
                      "fin acked %d %d, %llu records sent, %llu lost",
                      p->seed, (long long)n.now, (unsigned long long)ends[1].delivered,
                      (unsigned long long)p->total[0], (unsigned long long)ends[0].delivered,
                      (unsigned long long)p->total[1], visor_stream_fin_acked(&ends[0].s),
                      visor_stream_fin_acked(&ends[1].s), (unsigned long long)n.sent,
                      (unsigned long long)n.lost);
    }
    for (int k = 0; k < 2; k++) {
        REQUIRE_EQ(ends[k].delivered, p->total[1 - k]);
        REQUIRE_EQ(ends[k].acked, p->total[k]);
        REQUIRE_EQ(visor_stream_ack_value(&ends[k].s), p->total[1 - k] + 1);
        REQUIRE(!visor_stream_in_flight(&ends[k].s));
    }
    g_stats.records += n.sent;
    g_stats.lost += n.lost;
    for (size_t i = 0; i < n.n; i++) /* duplicates still on their way */
        free(n.q[i]);
    free(n.q);
}

START_TEST(test_pair_in_order)
{
    struct sim_params p = { .seed = 1, .total = { 100000, 3000 }, .cap = { 65536, 4096 }, .mss = 1000,
                            .read_every = 1 };
    simulate(&p);
}
END_TEST

/* One record lost: the next ones are gaps, the first GAP ack resends, the others do not. */
START_TEST(test_pair_dropped_record_gap_then_resend_once)
{
    struct end a, b;
    struct visor_rec_hdr recs[5], acks[5];
    uint64_t acked;
    size_t skip, take;
    int resend = 0;

    end_init(&a, 0, 50, 1000, 1000);
    end_init(&b, 1, 0, 1000, 1000);
    for (int i = 0; i < 5; i++) {
        recs[i] = hdr(0, a.s.snd_nxt, 10, 0, 1000);
        visor_stream_sent(&a.s, 10, false, i);
    }
    for (int i = 0; i < 5; i++) {
        enum visor_stream_rx d;
        if (i == 2)
            continue; /* lost */
        d = visor_stream_rx(&b.s, &recs[i], &skip, &take);
        ck_assert_int_eq(d, i < 2 ? VISOR_STREAM_RX_NEW : VISOR_STREAM_RX_GAP);
        acks[i] = hdr(d == VISOR_STREAM_RX_GAP ? VISOR_REC_GAP : 0, 0, 0, visor_stream_ack_value(&b.s),
                      visor_stream_window(&b.s, 1000));
    }
    ck_assert_uint_eq(b.s.rcv_nxt, 20);
    for (int i = 0; i < 5; i++) {
        enum visor_stream_ack r;
        if (i == 2)
            continue;
        r = visor_stream_on_ack(&a.s, &acks[i], 10 + i, &acked);
        if (r == VISOR_STREAM_ACK_RESEND) {
            resend++;
            ck_assert_int_eq(i, 3); /* the first GAP report */
            ck_assert_uint_eq(a.s.snd_nxt, 20);
        }
        ck_assert_int_ne(r, VISOR_STREAM_ACK_BOGUS);
    }
    ck_assert_int_eq(resend, 1);
    ck_assert_uint_eq(a.s.snd_una, 20);
    /* the resend: [20, 50) again, all new at b now */
    for (int i = 2; i < 5; i++) {
        struct visor_rec_hdr h = hdr(0, a.s.snd_nxt, 10, 0, 1000);
        ck_assert_uint_eq(h.seq, (uint64_t)i * 10);
        visor_stream_sent(&a.s, 10, false, 20);
        ck_assert_int_eq(visor_stream_rx(&b.s, &h, &skip, &take), VISOR_STREAM_RX_NEW);
        ck_assert_uint_eq(take, 10);
    }
    {
        struct visor_rec_hdr h = hdr(0, 0, 0, visor_stream_ack_value(&b.s), 1000);
        ck_assert_int_eq(visor_stream_on_ack(&a.s, &h, 30, &acked), VISOR_STREAM_ACK_OK);
        ck_assert_uint_eq(acked, 30);
    }
    ck_assert(!visor_stream_in_flight(&a.s));
    ck_assert_uint_eq(b.s.rcv_nxt, 50);
}
END_TEST

START_TEST(test_pair_lossy_fixed)
{
    struct sim_params p = { .seed = 7, .total = { 30000, 30000 }, .cap = { 5000, 3000 }, .mss = 700,
                            .loss = 20, .dup = 10, .jitter = 40, .read_every = 3 };
    simulate(&p);
}
END_TEST

/* The property: whatever the network does, each end delivers exactly the other's bytes in
 * order, once, and both finish (timers drive the resends). */
START_TEST(test_pair_random_loss_dup_reorder)
{
    static const uint64_t caps[] = { 1, 7, 100, 1500, 4096, 65536 };
    static const size_t msss[] = { 1, 13, 500, SIM_MAX_LEN };
    unsigned seed = 2024;

    for (int run = 0; run < 400; run++) {
        struct sim_params p = { .seed = (unsigned)rand_r(&seed) };
        p.cap[0] = caps[rand_r(&seed) % 6];
        p.cap[1] = caps[rand_r(&seed) % 6];
        p.mss = msss[rand_r(&seed) % 4];
        for (int k = 0; k < 2; k++) {
            uint64_t most = 200 * (p.cap[1 - k] < p.mss ? p.cap[1 - k] : p.mss) + 1;
            p.total[k] = rand_r(&seed) % 4 == 0 ? 0 : (uint64_t)rand_r(&seed) % (most < 200000 ? most : 200000);
        }
        p.loss = (int)(rand_r(&seed) % 5) * 10;        /* 0..40 % */
        p.dup = (int)(rand_r(&seed) % 3) * 10;         /* 0..20 % */
        p.jitter = (int)(rand_r(&seed) % 4) * 50;      /* reordering: up to 150 ms apart */
        p.read_every = 1 + (int)(rand_r(&seed) % 200); /* up to a slow reader */
        simulate(&p);
    }
    /* every path of the stream was taken along the way */
    ck_assert_uint_gt(g_stats.lost, 0);
    ck_assert_uint_gt(g_stats.gaps, 0);
    ck_assert_uint_gt(g_stats.gap_resends, 0);
    ck_assert_uint_gt(g_stats.timer_resends, 0);
    ck_assert_uint_gt(g_stats.probes, 0);
    ck_assert_uint_gt(g_stats.old, 0);
    ck_assert_uint_gt(g_stats.window_updates, 0);
    if (getenv("SW_TEST_VERBOSE"))
        printf("route stream: %llu records, %llu lost, %llu gaps, %llu GAP resends, %llu timer resends, "
               "%llu probes, %llu old, %llu window updates\n",
               (unsigned long long)g_stats.records, (unsigned long long)g_stats.lost,
               (unsigned long long)g_stats.gaps, (unsigned long long)g_stats.gap_resends,
               (unsigned long long)g_stats.timer_resends, (unsigned long long)g_stats.probes,
               (unsigned long long)g_stats.old, (unsigned long long)g_stats.window_updates);
}
END_TEST

static Suite *visor_route_stream_suite(void)
{
    Suite *s = suite_create("visor_route_stream");
    TCase *rcv = tcase_create("receive");
    TCase *snd = tcase_create("send");
    TCase *pair = tcase_create("pair");

    tcase_add_test(rcv, test_init);
    tcase_add_test(rcv, test_rx_in_order);
    tcase_add_test(rcv, test_rx_duplicate_is_old);
    tcase_add_test(rcv, test_rx_gap);
    tcase_add_test(rcv, test_rx_beyond_window);
    tcase_add_test(rcv, test_window_never_moves_back);
    tcase_add_test(rcv, test_rx_bare_fin);
    tcase_add_test(rcv, test_rx_fin_with_data);
    tcase_add_test(rcv, test_rx_conflicting_fin_is_beyond);
    tcase_add_test(rcv, test_rx_data_after_fin_is_beyond);
    suite_add_tcase(s, rcv);
    tcase_add_test(snd, test_sendable_limited_by_window);
    tcase_add_test(snd, test_ack_ok_counts_bytes);
    tcase_add_test(snd, test_ack_of_unsent_is_bogus);
    tcase_add_test(snd, test_gap_resend_once_per_round_trip);
    tcase_add_test(snd, test_gap_hold_follows_rtt);
    tcase_add_test(snd, test_rto_doubles_up_to_max);
    tcase_add_test(snd, test_rto_restarts_on_progress);
    tcase_add_test(snd, test_probe_when_window_closed);
    tcase_add_test(snd, test_last_progress_ms);
    tcase_add_test(snd, test_fin_sender);
    suite_add_tcase(s, snd);
    tcase_add_test(pair, test_pair_in_order);
    tcase_add_test(pair, test_pair_dropped_record_gap_then_resend_once);
    tcase_add_test(pair, test_pair_lossy_fixed);
    tcase_add_test(pair, test_pair_random_loss_dup_reorder);
    tcase_set_timeout(pair, 120);
    suite_add_tcase(s, pair);
    return s;
}

const struct th_check_main th_check_main = { .suite = visor_route_stream_suite };
