/* route_stream.c — sequence-number bookkeeping of a route group's byte stream (route_stream.h). */
#include "visor/route_stream.h"

#define RTO_INITIAL_MS 1000

static uint64_t min_u64(uint64_t a, uint64_t b) { return a < b ? a : b; }

void visor_stream_init(struct visor_stream *s, uint32_t peer_window, uint32_t our_window)
{
    *s = (struct visor_stream){
        .snd_edge = peer_window < VISOR_STREAM_MAX_WINDOW ? peer_window : VISOR_STREAM_MAX_WINDOW, .fin_seq = VISOR_STREAM_NO_FIN, .rto_ms = RTO_INITIAL_MS,
        .rcv_edge = our_window, .fin_at = VISOR_STREAM_NO_FIN,
    };
}

enum visor_stream_rx visor_stream_rx(struct visor_stream *s, const struct visor_rec_hdr *h, size_t *skip,
                                     size_t *take)
{
    uint64_t end = h->seq + h->len; /* no overflow: visor_rec_hdr_parse checked */
    bool fresh = false;

    *skip = *take = 0;
    if (h->len == 0 && !(h->flags & VISOR_REC_FIN))
        return VISOR_STREAM_RX_OLD; /* an ACK: no bytes */
    if (h->seq > s->rcv_nxt)
        return VISOR_STREAM_RX_GAP;
    if (end > s->rcv_edge)
        return VISOR_STREAM_RX_BEYOND;
    if (h->flags & VISOR_REC_FIN) {
        if (s->fin_at == VISOR_STREAM_NO_FIN && end >= s->rcv_nxt)
            s->fin_at = end;
        else if (s->fin_at != end)
            return VISOR_STREAM_RX_BEYOND; /* two different ends of one stream */
    }
    if (s->fin_at != VISOR_STREAM_NO_FIN && end > s->fin_at)
        return VISOR_STREAM_RX_BEYOND;     /* bytes after the end */
    if (end > s->rcv_nxt) {
        *skip = (size_t)(s->rcv_nxt - h->seq);
        *take = (size_t)(end - s->rcv_nxt);
        s->rcv_nxt = end;
        fresh = true;
    }
    if (!s->fin_rcvd && s->fin_at == s->rcv_nxt) {
        s->fin_rcvd = true;
        fresh = true;
    }
    return fresh ? VISOR_STREAM_RX_NEW : VISOR_STREAM_RX_OLD;
}

uint64_t visor_stream_ack_value(const struct visor_stream *s)
{
    return s->rcv_nxt + (s->fin_rcvd ? 1 : 0);
}

uint32_t visor_stream_window(struct visor_stream *s, size_t room)
{
    if (s->rcv_nxt + room > s->rcv_edge)
        s->rcv_edge = s->rcv_nxt + room;
    return (uint32_t)min_u64(s->rcv_edge - s->rcv_nxt, UINT32_MAX);
}

/* The timeout from the smoothed RTT; queueing on a busy path varies a lot: generous. */
static void set_rto(struct visor_stream *s)
{
    uint64_t rto = (uint64_t)s->srtt_ms * 3 + 50;
    s->rto_ms = (uint32_t)(rto < VISOR_STREAM_RTO_MIN_MS ? VISOR_STREAM_RTO_MIN_MS
                           : rto > VISOR_STREAM_RTO_MAX_MS ? VISOR_STREAM_RTO_MAX_MS : rto);
}

static void rtt_sample(struct visor_stream *s, int64_t now_ms)
{
    uint32_t sample = now_ms > s->rtt_start_ms ? (uint32_t)(now_ms - s->rtt_start_ms) : 0;

    s->srtt_ms = s->srtt_ms ? (7 * s->srtt_ms + sample) / 8 : sample;
    s->rtt_seq = 0;
}

/* Out-of-order records of an earlier send keep arriving for about a round trip. */
static void hold_gaps(struct visor_stream *s, int64_t now_ms)
{
    uint32_t hold = s->srtt_ms ? s->srtt_ms + s->srtt_ms / 2 : 50;
    s->gap_hold_ms = now_ms + (hold < 10 ? 10 : hold > 1000 ? 1000 : hold);
}

enum visor_stream_ack visor_stream_on_ack(struct visor_stream *s, const struct visor_rec_hdr *h, int64_t now_ms,
                                          uint64_t *acked)
{
    uint64_t edge = h->ack + (h->window < VISOR_STREAM_MAX_WINDOW ? h->window : VISOR_STREAM_MAX_WINDOW);

    *acked = 0;
    if (h->ack > s->snd_max)
        return VISOR_STREAM_ACK_BOGUS;
    if (edge > s->snd_edge && edge >= h->ack) {
        s->snd_edge = edge;
        s->probe_due_ms = 0;
    }
    if (h->ack > s->snd_una) {
        *acked = min_u64(h->ack, s->fin_seq) - min_u64(s->snd_una, s->fin_seq);
        s->snd_una = h->ack;
        if (s->snd_nxt < s->snd_una)
            s->snd_nxt = s->snd_una;
        s->last_progress_ms = now_ms;
        if (s->rtt_seq && h->ack >= s->rtt_seq)
            rtt_sample(s, now_ms);
        if (s->srtt_ms) /* progress ends a timeout's backoff */
            set_rto(s);
        else
            s->rto_ms = RTO_INITIAL_MS;
        s->rtx_due_ms = visor_stream_in_flight(s) ? now_ms + s->rto_ms : 0;
    }
    if ((h->flags & VISOR_REC_GAP) && h->ack == s->snd_una && visor_stream_in_flight(s) &&
        now_ms >= s->gap_hold_ms) {
        s->snd_nxt = s->snd_una;
        s->rtt_seq = 0;
        hold_gaps(s, now_ms);
        return VISOR_STREAM_ACK_RESEND;
    }
    return VISOR_STREAM_ACK_OK;
}

uint64_t visor_stream_sendable(const struct visor_stream *s, uint64_t have)
{
    uint64_t limit = min_u64(s->snd_una + have, s->snd_edge);
    if (s->fin_seq != VISOR_STREAM_NO_FIN)
        limit = min_u64(limit, s->fin_seq);
    return limit > s->snd_nxt ? limit - s->snd_nxt : 0;
}

void visor_stream_sent(struct visor_stream *s, uint64_t n, bool fin, int64_t now_ms)
{
    uint64_t end = s->snd_nxt + n + (fin ? 1 : 0);

    if (end == s->snd_nxt)
        return;
    if (!visor_stream_in_flight(s))
        s->last_progress_ms = now_ms;
    if (!s->rtt_seq && s->snd_nxt == s->snd_max) { /* new bytes only (Karn) */
        s->rtt_seq = end;
        s->rtt_start_ms = now_ms;
    }
    s->snd_nxt = end;
    if (end > s->snd_max)
        s->snd_max = end;
    if (!s->rtx_due_ms)
        s->rtx_due_ms = now_ms + s->rto_ms;
}

void visor_stream_set_fin(struct visor_stream *s, uint64_t total)
{
    if (s->fin_seq == VISOR_STREAM_NO_FIN)
        s->fin_seq = total;
}

bool visor_stream_fin_due(const struct visor_stream *s)
{
    return s->fin_seq != VISOR_STREAM_NO_FIN && s->snd_nxt == s->fin_seq;
}

bool visor_stream_fin_acked(const struct visor_stream *s)
{
    return s->fin_seq != VISOR_STREAM_NO_FIN && s->snd_una > s->fin_seq;
}

bool visor_stream_in_flight(const struct visor_stream *s)
{
    return s->snd_una < s->snd_max;
}

void visor_stream_rewind(struct visor_stream *s, int64_t now_ms)
{
    s->snd_nxt = s->snd_una;
    s->rtt_seq = 0;
    hold_gaps(s, now_ms);
    s->rtx_due_ms = visor_stream_in_flight(s) ? now_ms + s->rto_ms : 0;
}

enum visor_stream_timer visor_stream_on_timer(struct visor_stream *s, int64_t now_ms, uint64_t pending)
{
    if (visor_stream_in_flight(s)) {
        if (!s->rtx_due_ms || now_ms < s->rtx_due_ms)
            return VISOR_STREAM_T_NONE;
        s->rto_ms = s->rto_ms * 2 > VISOR_STREAM_RTO_MAX_MS ? VISOR_STREAM_RTO_MAX_MS : s->rto_ms * 2;
        visor_stream_rewind(s, now_ms);
        return VISOR_STREAM_T_RESEND;
    }
    s->rtx_due_ms = 0;
    if (!pending || s->snd_nxt < s->snd_edge) {
        s->probe_due_ms = 0;
        return VISOR_STREAM_T_NONE;
    }
    if (!s->probe_due_ms) {
        s->probe_due_ms = now_ms + s->rto_ms;
        return VISOR_STREAM_T_NONE;
    }
    if (now_ms < s->probe_due_ms)
        return VISOR_STREAM_T_NONE;
    s->probe_due_ms = now_ms + VISOR_STREAM_RTO_MAX_MS;
    return VISOR_STREAM_T_PROBE;
}
