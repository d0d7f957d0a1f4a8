/* fuzz_visor_route_record.c — the end-to-end records of a route group (visor/route_record.c)
 * and the byte stream's bookkeeping (visor/route_stream.c). The first byte picks a mode:
 *   0  one record: visor_rec_open on the rest (arbitrary bytes, a fixed key, an empty replay
 *      window). It returns SW_EPROTO, SW_EEXIST or SW_ECRYPTO and leaves the window alone, or
 *      succeeds (seeds hold genuine records), and then sealing the plaintext again under the
 *      same pn gives the input back byte for byte and the pn is marked;
 *   1  a stream header: visor_rec_hdr_parse on an exact-size heap copy. It agrees with an
 *      independent reading of docs/routing.md §4 (21 bytes, known flags, seq + len below
 *      2^64 - 1); a parsed header points its payload inside the input and re-encodes
 *      (visor_rec_hdr_put) to the input's first 21 bytes; a failure leaves the output alone;
 *   2  a route hello: visor_hello_parse agrees with the contract (6 bytes, version 1, mode 0
 *      or 1) and a parsed one re-encodes (visor_hello_put) to the input;
 *   3  the replay window: records sealed here with packet numbers from the input, some
 *      damaged, opened in the input's order: every answer agrees with a model that remembers
 *      every pn taken (fresh = ahead of the top, or less than 256 behind it and not taken);
 *   4  two ends of a stream over a network that loses, duplicates, delays and reorders
 *      records as the input says, the apps writing and reading as it says: each end delivers
 *      a prefix of the other's bytes, in order, never more, never twice, never more than its
 *      window promised; once the input is used up the network heals, and both ends must then
 *      finish (every byte delivered, both FINs acknowledged) within 120 virtual seconds;
 *   5  a hostile peer: headers from the input (any flags, seq, ack, window, length) fed to
 *      visor_stream_on_ack and visor_stream_rx of an end that also sends: rcv_nxt, rcv_edge,
 *      snd_una and snd_edge never move back, a delivery stays inside the payload and below
 *      the advertised edge, and an acknowledgement never covers bytes that were not sent.
 * Nothing may crash, leak or read out of bounds; a broken invariant traps. */
#include "common/bytes.h"
#include "common/err.h"
#include "common/keys.h"
#include "common/noise.h"
#include "visor/route_record.h"
#include "visor/route_stream.h"
#include "tests/fuzz/fuzz.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static struct sw_noise_cipher g_key;
static uint8_t g_plain[SW_NOISE_MAX_MSG + 64], g_again[VISOR_REC_OVERHEAD + SW_NOISE_MAX_MSG + 64];

static void setup(void)
{
    static bool ready;
    if (ready)
        return;
    if (sw_crypto_init() != SW_OK)
        __builtin_trap();
    for (size_t i = 0; i < sizeof(g_key.k); i++) /* the seeds in the corpus use this key */
        g_key.k[i] = (uint8_t)(i * 7 + 1);
    ready = true;
}

/* The input as a program: bytes, then zeros once it is used up. */
struct prog {
    const uint8_t *p;
    size_t n, off;
};

static bool prog_done(const struct prog *pg)
{
    return pg->off >= pg->n;
}

static uint8_t next_u8(struct prog *pg)
{
    return pg->off < pg->n ? pg->p[pg->off++] : 0;
}

static uint64_t next_uN(struct prog *pg, int bytes)
{
    uint64_t x = 0;
    for (int i = 0; i < bytes; i++)
        x = x << 8 | next_u8(pg);
    return x;
}

/* ---- mode 0: one record ------------------------------------------------------------------ */

static void one_record(const uint8_t *data, size_t size)
{
    struct sw_noise_cipher rx = g_key, tx = g_key;
    struct visor_replay rw = { 0 }, before;
    struct sw_error err = { 0 };
    uint8_t *rec = calloc(size ? size : 1, 1);
    size_t plain_len = 0x5a5a;
    int rc;

    CHECK(rec != NULL);
    if (size)
        memcpy(rec, data, size);
    before = rw;
    rc = visor_rec_open(&rx, &rw, rec, size, g_plain, &plain_len, &err);
    if (rc != SW_OK) {
        CHECK(rc == SW_EPROTO || rc == SW_EEXIST || rc == SW_ECRYPTO);
        CHECK(err.code == rc && err.msg[0] != '\0');
        CHECK(memcmp(&rw, &before, sizeof(rw)) == 0);
        CHECK(plain_len == 0x5a5a);
        /* too short or too long is always EPROTO */
        if (size < VISOR_REC_OVERHEAD || size > VISOR_REC_PN_LEN + SW_NOISE_MAX_MSG)
            CHECK(rc == SW_EPROTO);
        free(rec);
        return;
    }
    {
        uint64_t pn = sw_get_u64(rec);
        CHECK(size >= VISOR_REC_OVERHEAD && plain_len == size - VISOR_REC_OVERHEAD);
        CHECK(rw.any && rw.top == pn && !visor_replay_fresh(&rw, pn));
        CHECK(visor_rec_seal(&tx, pn, g_plain, plain_len, g_again) == size);
        CHECK(memcmp(g_again, rec, size) == 0);
        /* the same record again is a replay */
        rx = g_key;
        CHECK(visor_rec_open(&rx, &rw, rec, size, g_plain, &plain_len, NULL) == SW_EEXIST);
    }
    free(rec);
}

/* ---- mode 1: the stream header ----------------------------------------------------------- */

static void one_header(const uint8_t *data, size_t size)
{
    uint8_t *buf = calloc(size ? size : 1, 1), again[VISOR_REC_HDR_LEN];
    struct visor_rec_hdr h, before;
    struct sw_error err = { 0 };
    bool valid;
    int rc;

    CHECK(buf != NULL);
    if (size)
        memcpy(buf, data, size);
    valid = size >= VISOR_REC_HDR_LEN && (buf[0] & ~VISOR_REC_FLAGS_KNOWN) == 0 &&
            sw_get_u64(buf + 1) < UINT64_MAX - (size - VISOR_REC_HDR_LEN);
    memset(&h, 0xa5, sizeof(h));
    before = h;
    rc = visor_rec_hdr_parse(buf, size, &h, &err);
    CHECK(rc == SW_OK || rc == SW_EPROTO);
    CHECK((rc == SW_OK) == valid);
    if (rc != SW_OK) {
        CHECK(err.code == SW_EPROTO && err.msg[0] != '\0');
        CHECK(memcmp(&h, &before, sizeof(h)) == 0);
        free(buf);
        return;
    }
    CHECK(h.len == size - VISOR_REC_HDR_LEN);
    CHECK(h.len ? h.payload == buf + VISOR_REC_HDR_LEN : h.payload == NULL);
    CHECK(h.seq + h.len < UINT64_MAX);
    visor_rec_hdr_put(again, &h);
    CHECK(memcmp(again, buf, VISOR_REC_HDR_LEN) == 0);
    free(buf);
}

/* ---- mode 2: the route hello ------------------------------------------------------------- */

static void one_hello(const uint8_t *data, size_t size)
{
    uint8_t *buf = calloc(size ? size : 1, 1), again[VISOR_HELLO_LEN];
    enum visor_route_mode mode = (enum visor_route_mode)77;
    uint32_t window = 0x5a5a5a5a;
    struct sw_error err = { 0 };
    bool valid;
    int rc;

    CHECK(buf != NULL);
    if (size)
        memcpy(buf, data, size);
    valid = size == VISOR_HELLO_LEN && buf[0] == VISOR_HELLO_VERSION && buf[1] <= VISOR_ROUTE_DATAGRAM;
    rc = visor_hello_parse(buf, size, &mode, &window, &err);
    CHECK(rc == SW_OK || rc == SW_EPROTO);
    CHECK((rc == SW_OK) == valid);
    if (rc != SW_OK) {
        CHECK(err.code == SW_EPROTO && err.msg[0] != '\0');
        CHECK(mode == 77 && window == 0x5a5a5a5a);
        free(buf);
        return;
    }
    CHECK(visor_route_mode_name(mode) != NULL);
    visor_hello_put(again, mode, window);
    CHECK(memcmp(again, buf, VISOR_HELLO_LEN) == 0);
    free(buf);
}

/* ---- mode 3: the replay window ----------------------------------------------------------- */

#define MAX_TAKEN 2048

static void replay_program(const uint8_t *data, size_t size)
{
    static uint64_t taken[MAX_TAKEN];
    struct prog pg = { data, size, 0 };
    struct sw_noise_cipher tx = g_key, rx = g_key;
    struct visor_replay rw = { 0 };
    uint8_t rec[VISOR_REC_OVERHEAD + 8], inner[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
    size_t n_taken = 0;
    uint64_t top = 0, pn = 0;
    bool any = false;

    while (!prog_done(&pg) && n_taken < MAX_TAKEN) {
        uint8_t op = next_u8(&pg);
        size_t len = op & 7, plain_len, rec_len;
        bool fresh, damaged = false;
        int rc;

        switch (op >> 3 & 7) {
        case 0: /* ahead of the top */
            pn = top + next_u8(&pg);
            break;
        case 1: /* far ahead: the window moves by more than its size */
            pn = top + next_uN(&pg, 2);
            break;
        case 2: case 3: case 4: /* behind the top, in the window or just out of it */
            pn = top - (next_u8(&pg) + ((op & 0x40) ? 200 : 0));
            if (pn > top)
                pn = 0;
            break;
        case 5: /* any pn at all */
            pn = next_uN(&pg, 8);
            break;
        default: /* the same again */
            break;
        }
        if (pn == UINT64_MAX)
            pn--;
        rec_len = visor_rec_seal(&tx, pn, inner, len, rec);
        CHECK(rec_len == VISOR_REC_OVERHEAD + len);
        if (op & 0x80) { /* damage one bit */
            uint8_t where = next_u8(&pg);
            rec[where % rec_len] ^= (uint8_t)(1u << (where >> 5));
            damaged = true;
        }
        fresh = !any || pn > top;
        if (!fresh && top - pn < VISOR_REC_REPLAY_BITS) {
            fresh = true;
            for (size_t i = 0; i < n_taken; i++)
                if (taken[i] == pn)
                    fresh = false;
        }
        CHECK(visor_replay_fresh(&rw, pn) == fresh);
        rc = visor_rec_open(&rx, &rw, rec, rec_len, g_plain, &plain_len, NULL);
        if (!damaged) {
            CHECK(rc == (fresh ? SW_OK : SW_EEXIST));
        } else {
            /* a damaged pn may name another, fresh or not; whatever it is, it does not open */
            CHECK(rc == SW_EEXIST || rc == SW_ECRYPTO);
            if (rc == SW_ECRYPTO)
                CHECK(visor_replay_fresh(&rw, sw_get_u64(rec)));
        }
        if (rc == SW_OK) {
            CHECK(plain_len == len && memcmp(g_plain, inner, len) == 0);
            taken[n_taken++] = pn;
            if (!any || pn > top)
                top = pn;
            any = true;
            CHECK(!visor_replay_fresh(&rw, pn));
        }
        CHECK(rw.any == any && (!any || rw.top == top));
    }
}

/* ---- mode 4: two ends over a lossy network ----------------------------------------------- */

#define SIM_MSS_MAX 64
#define SIM_QUEUE 2048
#define SIM_TOTAL_MAX 4096
#define SIM_HEAL_MS 120000

static uint8_t pattern(int id, uint64_t off)
{
    return (uint8_t)(off * 131 + (off >> 9) * 7 + (uint64_t)id * 101 + 1);
}

struct fend {
    struct visor_stream s;
    int id;
    uint64_t total, written, delivered, acked, cap, buffered;
    bool saw_fin;
};

struct fpkt {
    int64_t at;
    int to;
    size_t len;
    uint8_t b[VISOR_REC_HDR_LEN + SIM_MSS_MAX];
};

struct sim {
    struct prog pg;
    struct fend e[2];
    struct fpkt pool[SIM_QUEUE];
    uint16_t q[SIM_QUEUE];    /* the records on their way (pool slots), in the order sent */
    uint16_t unused[SIM_QUEUE]; /* unused pool slots */
    size_t qn, nfree, mss;
    int64_t now;
};

static void sim_push(struct sim *m, int to, const uint8_t *b, size_t len)
{
    int copies = 1;
    int64_t delay = 5;

    if (!prog_done(&m->pg)) {
        uint8_t d = next_u8(&m->pg);
        if ((d & 7) == 0)
            return; /* lost */
        if ((d & 7) == 1)
            copies = 2;
        delay = 1 + (d >> 3) * 8;
    }
    for (int c = 0; c < copies && m->nfree; c++) { /* a full network drops */
        uint16_t slot = m->unused[--m->nfree];
        struct fpkt *p = &m->pool[slot];
        m->q[m->qn++] = slot;
        p->at = m->now + delay + c * 3;
        p->to = to;
        p->len = len;
        memcpy(p->b, b, len);
    }
}

static void sim_emit(struct sim *m, struct fend *e, uint8_t flags, uint64_t seq, size_t len)
{
    uint8_t b[VISOR_REC_HDR_LEN + SIM_MSS_MAX];
    struct visor_rec_hdr h = { .flags = flags, .seq = seq, .ack = visor_stream_ack_value(&e->s) };
    uint64_t room = e->cap - e->buffered, edge = e->s.rcv_edge;

    if (!prog_done(&m->pg) && (next_u8(&m->pg) & 3) == 0)
        room = room / 2; /* less room than there is: the window must not move back */
    h.window = visor_stream_window(&e->s, (size_t)room);
    CHECK(e->s.rcv_edge >= edge && e->s.rcv_edge <= e->s.rcv_nxt + e->cap - e->buffered);
    visor_rec_hdr_put(b, &h);
    for (size_t i = 0; i < len; i++)
        b[VISOR_REC_HDR_LEN + i] = pattern(e->id, seq + i);
    sim_push(m, 1 - e->id, b, VISOR_REC_HDR_LEN + len);
}

static void sim_pump(struct sim *m, struct fend *e)
{
    for (;;) {
        uint64_t have = e->written > e->s.snd_una ? e->written - e->s.snd_una : 0;
        uint64_t k = visor_stream_sendable(&e->s, have);
        bool fin;
        if (k > m->mss)
            k = m->mss;
        fin = e->s.fin_seq != VISOR_STREAM_NO_FIN && e->s.snd_nxt + k == e->s.fin_seq;
        if (k == 0 && !visor_stream_fin_due(&e->s))
            return;
        CHECK(e->s.snd_nxt + k <= e->written);
        CHECK(e->s.snd_nxt + k <= e->s.snd_edge);
        sim_emit(m, e, fin ? VISOR_REC_FIN : 0, e->s.snd_nxt, (size_t)k);
        visor_stream_sent(&e->s, k, fin, m->now);
    }
}

static void sim_receive(struct sim *m, struct fend *e, const struct fpkt *p)
{
    struct fend *peer = &m->e[1 - e->id];
    struct visor_rec_hdr h;
    size_t skip, take;
    uint64_t acked = 0, una = e->s.snd_una;
    enum visor_stream_ack a;
    enum visor_stream_rx d;

    CHECK(visor_rec_hdr_parse(p->b, p->len, &h, NULL) == SW_OK);
    a = visor_stream_on_ack(&e->s, &h, m->now, &acked);
    CHECK(a != VISOR_STREAM_ACK_BOGUS);
    CHECK(e->s.snd_una >= una && e->s.snd_una <= e->s.snd_max);
    e->acked += acked;
    CHECK(e->acked <= e->written);
    d = visor_stream_rx(&e->s, &h, &skip, &take);
    CHECK(d != VISOR_STREAM_RX_BEYOND); /* an honest sender never goes past the window */
    if (d == VISOR_STREAM_RX_NEW) {
        CHECK(skip + take <= h.len);
        CHECK(h.seq + skip == e->delivered); /* in order, nothing twice */
        for (size_t i = 0; i < take; i++)
            CHECK(h.payload[skip + i] == pattern(peer->id, e->delivered + i)); /* a prefix of the sent bytes */
        e->delivered += take;
        e->buffered += take;
        CHECK(e->delivered <= peer->written && e->delivered == e->s.rcv_nxt);
        CHECK(e->buffered <= e->cap); /* never more than the window promised */
        if (e->s.fin_rcvd) {
            CHECK(!e->saw_fin && e->delivered == peer->total);
            e->saw_fin = true;
        }
    } else {
        CHECK(take == 0);
    }
    if (d == VISOR_STREAM_RX_GAP)
        sim_emit(m, e, VISOR_REC_GAP, e->s.snd_nxt, 0);
    else if (d == VISOR_STREAM_RX_NEW || h.len || (h.flags & (VISOR_REC_FIN | VISOR_REC_PROBE)))
        sim_emit(m, e, 0, e->s.snd_nxt, 0);
}

static void stream_sim(const uint8_t *data, size_t size)
{
    static struct sim m;
    int64_t healed_at = -1;

    memset(m.e, 0, sizeof(m.e));
    m.qn = 0;
    m.now = 0;
    m.nfree = SIM_QUEUE;
    for (size_t i = 0; i < SIM_QUEUE; i++)
        m.unused[i] = (uint16_t)i;
    m.pg = (struct prog){ data, size, 0 };
    m.mss = 1 + next_u8(&m.pg) % SIM_MSS_MAX;
    for (int k = 0; k < 2; k++) {
        struct fend *e = &m.e[k];
        e->id = k;
        e->total = next_uN(&m.pg, 2) % (SIM_TOTAL_MAX + 1);
        e->cap = 1 + next_uN(&m.pg, 2) % 2048;
    }
    visor_stream_init(&m.e[0].s, (uint32_t)m.e[1].cap, (uint32_t)m.e[0].cap);
    visor_stream_init(&m.e[1].s, (uint32_t)m.e[0].cap, (uint32_t)m.e[1].cap);

    for (;;) {
        bool done = true;
        int64_t next;

        if (healed_at < 0 && prog_done(&m.pg))
            healed_at = m.now;
        /* records due now, in the order they were sent (only their delays reorder them) */
        for (size_t i = 0; i < m.qn;) {
            if (m.pool[m.q[i]].at <= m.now) {
                struct fpkt p = m.pool[m.q[i]];
                m.unused[m.nfree++] = m.q[i];
                memmove(&m.q[i], &m.q[i + 1], (m.qn - i - 1) * sizeof(m.q[0]));
                m.qn--;
                sim_receive(&m, &m.e[p.to], &p);
            } else {
                i++;
            }
        }
        for (int k = 0; k < 2; k++) {
            struct fend *e = &m.e[k];
            uint64_t pending;
            uint8_t app = next_u8(&m.pg);
            if (e->written < e->total) { /* the app writes; all at once once healed */
                e->written += healed_at >= 0 ? e->total : (uint64_t)(app & 0x0f) * m.mss;
                if (e->written > e->total)
                    e->written = e->total;
            }
            if (e->written == e->total)
                visor_stream_set_fin(&e->s, e->total);
            if (e->buffered) { /* the app reads; all of it once healed */
                uint64_t old_edge = e->s.rcv_edge;
                uint64_t r = healed_at >= 0 ? e->buffered : (app >> 4) * e->buffered / 15;
                e->buffered -= r;
                if (r && e->s.rcv_nxt + (e->cap - e->buffered) >= old_edge + (e->cap + 1) / 2)
                    sim_emit(&m, e, 0, e->s.snd_nxt, 0); /* the window opened: say so */
            }
            pending = e->written > e->s.snd_nxt ? e->written - e->s.snd_nxt : 0;
            if (visor_stream_on_timer(&e->s, m.now, pending) == VISOR_STREAM_T_PROBE)
                sim_emit(&m, e, VISOR_REC_PROBE, e->s.snd_nxt, 0);
            sim_pump(&m, e);
            if (!visor_stream_fin_acked(&e->s) || !e->saw_fin || e->buffered)
                done = false;
        }
        if (done)
            break;
        /* the clock: as the input says, then from event to event once it is used up */
        if (healed_at < 0) {
            m.now += 1 + next_u8(&m.pg) % 64;
            continue;
        }
        CHECK(m.now - healed_at <= SIM_HEAL_MS); /* a healed network finishes the streams */
        next = m.now + 10;
        for (size_t i = 0; i < m.qn; i++)
            if (m.pool[m.q[i]].at < next)
                next = m.pool[m.q[i]].at;
        for (int k = 0; k < 2; k++) {
            if (m.e[k].s.rtx_due_ms && m.e[k].s.rtx_due_ms < next)
                next = m.e[k].s.rtx_due_ms;
            if (m.e[k].s.probe_due_ms && m.e[k].s.probe_due_ms < next)
                next = m.e[k].s.probe_due_ms;
        }
        m.now = next > m.now ? next : m.now + 1;
    }
    for (int k = 0; k < 2; k++) {
        CHECK(m.e[k].delivered == m.e[1 - k].total);
        CHECK(m.e[k].acked == m.e[k].total);
        CHECK(!visor_stream_in_flight(&m.e[k].s));
    }
}

/* ---- mode 5: a hostile peer -------------------------------------------------------------- */

static void hostile_peer(const uint8_t *data, size_t size)
{
    static uint8_t payload[4096];
    struct prog pg = { data, size, 0 };
    struct visor_stream s;
    int64_t now = 1;
    uint64_t written = 0, cap = 1 + next_uN(&pg, 2) % 8192, buffered = 0;

    visor_stream_init(&s, (uint32_t)next_uN(&pg, 2), (uint32_t)cap);
    for (int steps = 0; !prog_done(&pg) && steps < 4096; steps++) {
        uint8_t op = next_u8(&pg);
        struct visor_stream before = s;
        now += op >> 4;
        switch (op & 3) {
        case 0: { /* our app writes and we send what the window allows */
            uint64_t k;
            if (s.fin_seq == VISOR_STREAM_NO_FIN)
                written += next_u8(&pg);
            if (op & 4)
                visor_stream_set_fin(&s, written);
            k = visor_stream_sendable(&s, written > s.snd_una ? written - s.snd_una : 0);
            CHECK(s.snd_nxt + k <= s.snd_edge || k == 0);
            k = k > 300 ? 300 : k;
            visor_stream_sent(&s, k, s.fin_seq != VISOR_STREAM_NO_FIN && s.snd_nxt + k == s.fin_seq, now);
            break;
        }
        case 1: { /* a record from the peer */
            struct visor_rec_hdr h;
            enum visor_stream_ack a;
            enum visor_stream_rx d;
            uint64_t acked = 0, sent_data;
            size_t skip = 0, take = 0;
            h.flags = next_u8(&pg) & VISOR_REC_FLAGS_KNOWN;
            h.len = (size_t)(next_uN(&pg, 2) % sizeof(payload));
            /* near our offsets mostly, anywhere sometimes */
            h.seq = (op & 4) ? next_uN(&pg, 8) : s.rcv_nxt + (int8_t)next_u8(&pg);
            h.ack = (op & 8) ? next_uN(&pg, 8) : s.snd_una + (int8_t)next_u8(&pg);
            h.window = (uint32_t)next_uN(&pg, 4);
            if (h.seq > UINT64_MAX - 1 - h.len) /* the parser refuses these */
                h.seq = 0;
            h.payload = h.len ? payload : NULL;
            a = visor_stream_on_ack(&s, &h, now, &acked);
            if (a == VISOR_STREAM_ACK_BOGUS) {
                CHECK(h.ack > before.snd_max && acked == 0);
                CHECK(s.snd_una == before.snd_una && s.snd_edge == before.snd_edge);
            } else {
                CHECK(h.ack <= s.snd_max);
                sent_data = (s.snd_una < s.fin_seq ? s.snd_una : s.fin_seq) -
                            (before.snd_una < before.fin_seq ? before.snd_una : before.fin_seq);
                CHECK(acked == sent_data);
            }
            d = visor_stream_rx(&s, &h, &skip, &take);
            if (d == VISOR_STREAM_RX_NEW) {
                CHECK(skip + take <= h.len);
                if (take) /* the next bytes expected, else a FIN that completes the stream */
                    CHECK(h.seq + skip == before.rcv_nxt);
                else
                    CHECK((h.flags & VISOR_REC_FIN) && s.fin_rcvd && !before.fin_rcvd);
                CHECK(s.rcv_nxt == before.rcv_nxt + take && s.rcv_nxt <= s.rcv_edge);
                buffered += take;
                CHECK(buffered <= cap);
            } else {
                CHECK(take == 0 && s.rcv_nxt == before.rcv_nxt && s.fin_rcvd == before.fin_rcvd);
            }
            break;
        }
        case 2: { /* our app reads, we advertise */
            uint64_t edge = s.rcv_edge;
            buffered -= buffered ? next_u8(&pg) % (buffered + 1) : 0;
            visor_stream_window(&s, (size_t)((op & 4) ? (cap - buffered) / 2 : cap - buffered));
            CHECK(s.rcv_edge >= edge && s.rcv_edge <= s.rcv_nxt + cap - buffered);
            break;
        }
        default: /* the timer */
            visor_stream_on_timer(&s, now, written > s.snd_nxt ? written - s.snd_nxt : 0);
            if (op & 4)
                visor_stream_rewind(&s, now);
            break;
        }
        CHECK(s.rcv_nxt >= before.rcv_nxt && s.rcv_edge >= before.rcv_edge);
        CHECK(s.snd_una >= before.snd_una && s.snd_edge >= before.snd_edge);
        CHECK(s.snd_una <= s.snd_max && s.snd_nxt <= s.snd_max && s.snd_nxt >= s.snd_una);
        CHECK(s.snd_max <= written + 1);
        CHECK(!s.fin_rcvd || s.fin_at == s.rcv_nxt);
        CHECK(s.rto_ms >= VISOR_STREAM_RTO_MIN_MS && s.rto_ms <= VISOR_STREAM_RTO_MAX_MS);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup();
    if (size == 0)
        return 0;
    switch (data[0] % 6) {
    case 0:
        one_record(data + 1, size - 1);
        break;
    case 1:
        one_header(data + 1, size - 1);
        break;
    case 2:
        one_hello(data + 1, size - 1);
        break;
    case 3:
        replay_program(data + 1, size - 1);
        break;
    case 4:
        stream_sim(data + 1, size - 1);
        break;
    default:
        hostile_peer(data + 1, size - 1);
        break;
    }
    return 0;
}
