/* route_stream.h — the reliable, ordered, flow-controlled byte stream of a route group
 * (docs/routing.md §4), as pure bookkeeping over sequence numbers: no buffers, no clock of
 * its own, no sockets. group_stream.c keeps the bytes (the resend buffer and the app's socket)
 * and asks this module what to send, what to deliver and when to resend;
 * tests/unit/test_visor_route_stream.c and tests/fuzz/fuzz_visor_route_record.c drive it.
 *
 * Sequence space per direction: byte offsets from 0; the FIN takes one offset after the
 * last byte. The receiver delivers only the next expected bytes (a record beyond them is a
 * gap: dropped and reported with a GAP ack, so the sender resends from there at once), and
 * advertises a window it never takes back: the sender never has more in flight than the
 * receiver will buffer, so nothing on the way or at the end is ever dropped for lack of
 * room. Lost records (a hop that died, a hop dropping on purpose) are resent after a GAP
 * report, after the retransmission timeout, or all at once after a failover. */
#ifndef VISOR_ROUTE_STREAM_H
#define VISOR_ROUTE_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "visor/route_record.h"

#define VISOR_STREAM_RTO_MIN_MS 250
#define VISOR_STREAM_RTO_MAX_MS 4000
#define VISOR_STREAM_NO_FIN UINT64_MAX
#define VISOR_STREAM_MAX_WINDOW (4u << 20) /* a larger window from the peer counts as this much:
                                            * our resend buffer and the hops' queues stay
                                            * bounded whatever it says */

struct visor_stream {
    /* sending */
    uint64_t snd_una;     /* oldest offset not acknowledged */
    uint64_t snd_nxt;     /* next offset to send (moves back to snd_una to resend) */
    uint64_t snd_max;     /* one past the highest offset sent */
    uint64_t snd_edge;    /* the peer takes offsets below this (its ack + window, never less) */
    uint64_t fin_seq;     /* our FIN's offset (= bytes the app wrote), VISOR_STREAM_NO_FIN before EOF */
    int64_t gap_hold_ms;  /* GAP reports are ignored until then: the records in flight when we
                           * last resent still arrive out of order for about a round trip */
    /* the retransmission timer */
    int64_t rtx_due_ms;   /* resend when no ack moved snd_una by then (0: nothing in flight) */
    int64_t last_progress_ms; /* snd_una last moved (or data first went out) */
    uint32_t rto_ms;
    uint32_t srtt_ms;     /* 0 until the first sample */
    uint64_t rtt_seq;     /* an RTT sample finishes when this is acknowledged (0: none running) */
    int64_t rtt_start_ms;
    int64_t probe_due_ms; /* window closed with bytes waiting: probe then (0: not armed) */
    /* receiving */
    uint64_t rcv_nxt;     /* next offset expected */
    uint64_t rcv_edge;    /* the edge we advertised: we take offsets below it */
    uint64_t fin_at;      /* the peer's FIN offset once a FIN record arrived (NO_FIN before) */
    bool fin_rcvd;        /* every byte before the peer's FIN was delivered */
};

void visor_stream_init(struct visor_stream *s, uint32_t peer_window, uint32_t our_window);

/* ---- receiving ---- */
enum visor_stream_rx {
    VISOR_STREAM_RX_NEW,    /* deliver payload[skip, skip + take); take may be 0 (a bare FIN) */
    VISOR_STREAM_RX_OLD,    /* nothing new (a resend of what we have, or an ACK): no data */
    VISOR_STREAM_RX_GAP,    /* starts beyond rcv_nxt: dropped; answer with a GAP ack */
    VISOR_STREAM_RX_BEYOND, /* past the window we advertised (a broken or hostile sender) */
};
/* Decides on the payload of a record and, for NEW, advances rcv_nxt (and sets fin_rcvd when
 * the FIN is reached). The ack/window fields are for visor_stream_on_ack. */
enum visor_stream_rx visor_stream_rx(struct visor_stream *s, const struct visor_rec_hdr *h, size_t *skip,
                                     size_t *take);
/* The ack to send: rcv_nxt, plus one once the FIN is in. */
uint64_t visor_stream_ack_value(const struct visor_stream *s);
/* The window to advertise when `room` more bytes fit in the app's buffer; moves rcv_edge
 * forward (never back). */
uint32_t visor_stream_window(struct visor_stream *s, size_t room);

/* ---- sending ---- */
enum visor_stream_ack {
    VISOR_STREAM_ACK_OK,      /* *acked bytes (data, not the FIN) may leave the resend buffer */
    VISOR_STREAM_ACK_RESEND,  /* the same, and then resend from snd_una (a GAP report; at most one
                               * per round trip) */
    VISOR_STREAM_ACK_BOGUS,   /* acknowledges offsets never sent: a broken peer */
};
enum visor_stream_ack visor_stream_on_ack(struct visor_stream *s, const struct visor_rec_hdr *h, int64_t now_ms,
                                          uint64_t *acked);
/* Bytes that may go out now, given that `have` bytes of the stream exist past snd_una
 * (resend buffer + what the app wrote): limited by the peer's window. */
uint64_t visor_stream_sendable(const struct visor_stream *s, uint64_t have);
/* Records that bytes [snd_nxt, snd_nxt + n) (and the FIN, when fin) were sent now. */
void visor_stream_sent(struct visor_stream *s, uint64_t n, bool fin, int64_t now_ms);
/* The app hit EOF after `total` bytes: the FIN goes out after them. */
void visor_stream_set_fin(struct visor_stream *s, uint64_t total);
/* True when the FIN is due now (every byte before it sent; the FIN itself needs no window). */
bool visor_stream_fin_due(const struct visor_stream *s);
/* True once our FIN was acknowledged. */
bool visor_stream_fin_acked(const struct visor_stream *s);
/* True when something sent is not acknowledged yet. */
bool visor_stream_in_flight(const struct visor_stream *s);
/* Resend everything not acknowledged (timeout, failover): snd_nxt back to snd_una. */
void visor_stream_rewind(struct visor_stream *s, int64_t now_ms);

enum visor_stream_timer {
    VISOR_STREAM_T_NONE,
    VISOR_STREAM_T_RESEND, /* the retransmission timer fired: rewound; resend (RTO doubled) */
    VISOR_STREAM_T_PROBE,  /* the peer's window is closed and we have bytes: probe for an ACK */
};
/* Called from the end's timer; `pending` = bytes waiting for the window. */
enum visor_stream_timer visor_stream_on_timer(struct visor_stream *s, int64_t now_ms, uint64_t pending);
#endif
