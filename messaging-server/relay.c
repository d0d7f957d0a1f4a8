/* relay.c — streams between two sessions (docs/messaging.md §3).
 *
 * A stream is a pair of ends: (dialer session, its odd id) and (listener session, an even
 * id we assign). Pending until the listener ACCEPTs (or the open timer fires); frames are
 * forwarded with the other end's id. Credit is end to end: each end may send only as many
 * DATA bytes as the other end granted (OPEN/ACCEPT window, then WINDOW increments); more
 * is a protocol error for the sender, so the server never buffers more per stream than
 * the receiver asked for. Frames for unknown ids are dropped: they race with CLOSE,
 * REFUSE, the open timeout and session ends, and relaying nothing is always safe. */
#include "messaging-server/ms.h"
#include "common/log.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CREDIT ((uint64_t)1 << 48) /* granted but unused; far above any sane window */

static struct ms_end *find_end(struct ms_server *srv, const struct ms_peer *p, uint32_t id)
{
    struct ms_ekey k = { p->serial, id, 0 };
    struct ms_hnode *n = ms_table_find(&srv->ends, &k);
    return n ? MS_CONTAINER(n, struct ms_end, node) : NULL;
}

static void attach(struct ms_end *e, struct ms_stream *st, struct ms_peer *p, uint32_t id)
{
    e->st = st;
    e->peer = p;
    e->ekey = (struct ms_ekey){ p->serial, id, 0 };
    ms_table_insert(&p->srv->ends, &e->node);
    LIST_INSERT_HEAD(&p->ends, e, link);
    p->n_streams++;
}

static void detach(struct ms_end *e)
{
    ms_table_remove(&e->peer->srv->ends, &e->node);
    LIST_REMOVE(e, link);
    e->peer->n_streams--;
}

static void stream_free(struct ms_stream *st)
{
    struct ms_server *srv = st->end[0].peer->srv;
    detach(&st->end[0]);
    detach(&st->end[1]);
    if (st->timer)
        event_free(st->timer);
    free(st);
    atomic_fetch_sub(&srv->m.streams, 1);
}

/* A failed send means that session is closing; its on_closed resets its streams. */
static void send_to(struct ms_end *to, struct sw_msg_frame *f)
{
    f->stream = to->ekey.id;
    sw_msg_session_send(to->peer->s, f);
}

static void forward(struct ms_end *to, const struct sw_msg_frame *f)
{
    struct sw_msg_frame copy = *f;
    send_to(to, &copy);
    atomic_fetch_add(&to->peer->srv->m.frames_relayed, 1);
}

static void send_close(struct ms_end *to, uint8_t code)
{
    struct sw_msg_frame f = { .type = SW_MSG_CLOSE, .code = code };
    send_to(to, &f);
}

static void count_refusal(struct ms_server *srv, uint8_t code)
{
    atomic_fetch_add(&srv->m.refusals[code < MS_REFUSE_CODES ? code : 0], 1);
}

static void refuse(struct ms_peer *p, uint32_t id, uint8_t code, const char *why)
{
    struct sw_msg_frame f = { .type = SW_MSG_REFUSE, .stream = id, .code = code,
                              .reason = why, .reason_len = strlen(why) };
    sw_msg_session_send(p->s, &f);
    count_refusal(p->srv, code);
}

static void open_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct ms_stream *st = arg;
    struct ms_end *dialer = &st->end[0];
    refuse(dialer->peer, dialer->ekey.id, SW_REFUSE_TIMEOUT, "the peer did not answer in time");
    send_close(&st->end[1], 1);
    stream_free(st);
}

/* Next free even id on t (ids wrap after 2^31 streams; live ones are skipped). */
static uint32_t alloc_even(struct ms_server *srv, struct ms_peer *t)
{
    for (;;) {
        uint32_t id = t->next_even;
        t->next_even = t->next_even + 2 ? t->next_even + 2 : 2;
        if (!find_end(srv, t, id))
            return id;
    }
}

static int relay_open(struct ms_peer *p, const struct sw_msg_frame *f, struct sw_error *err)
{
    struct ms_server *srv = p->srv;
    struct sw_msg_frame fwd;
    struct ms_stream *st;
    struct ms_peer *t;
    struct timeval tv = { srv->cfg.open_timeout_ms / 1000, (srv->cfg.open_timeout_ms % 1000) * 1000 };

    if (f->stream % 2 == 0)
        return sw_error_set(err, SW_EPROTO, "OPEN with even stream id %" PRIu32, f->stream);
    if (find_end(srv, p, f->stream))
        return sw_error_set(err, SW_EPROTO, "OPEN for stream %" PRIu32 " which is in use", f->stream);
    if (sw_pk_equal(&f->peer, &p->pk)) {
        refuse(p, f->stream, SW_REFUSE_INVALID, "cannot dial yourself");
        return SW_OK;
    }
    if (!(t = ms_peer_find(srv, &f->peer))) {
        refuse(p, f->stream, SW_REFUSE_PEER_OFFLINE, "the key has no session on this server");
        return SW_OK;
    }
    if (p->n_streams >= srv->cfg.max_streams || t->n_streams >= srv->cfg.max_streams) {
        refuse(p, f->stream, SW_REFUSE_SERVER_FULL, "stream limit per session reached");
        return SW_OK;
    }
    if (!(st = calloc(1, sizeof(*st))) || !(st->timer = evtimer_new(srv->base, open_timeout, st))) {
        free(st);
        refuse(p, f->stream, SW_REFUSE_SERVER_FULL, "out of memory");
        return SW_OK;
    }
    attach(&st->end[0], st, p, f->stream);
    attach(&st->end[1], st, t, alloc_even(srv, t));
    st->end[1].credit = f->window; /* the listener may send what the dialer granted */
    evtimer_add(st->timer, &tv);
    atomic_fetch_add(&srv->m.streams, 1);
    atomic_fetch_add(&srv->m.streams_opened, 1);
    fwd = *f;
    fwd.peer = p->pk; /* the listener learns who dials */
    send_to(&st->end[1], &fwd);
    return SW_OK;
}

static int on_pending(struct ms_end *e, int side, const struct sw_msg_frame *f, struct sw_error *err)
{
    struct ms_stream *st = e->st;
    struct ms_end *dialer = &st->end[0];

    if (side != 1)
        return sw_error_set(err, SW_EPROTO, "%s from the dialer of stream %" PRIu32,
                            f->type == SW_MSG_ACCEPT ? "ACCEPT" : "REFUSE", f->stream);
    if (st->open)
        return sw_error_set(err, SW_EPROTO, "%s on open stream %" PRIu32,
                            f->type == SW_MSG_ACCEPT ? "ACCEPT" : "REFUSE", f->stream);
    forward(dialer, f);
    if (f->type == SW_MSG_REFUSE) {
        count_refusal(e->peer->srv, f->code);
        stream_free(st);
        return SW_OK;
    }
    st->open = true;
    event_free(st->timer);
    st->timer = NULL;
    dialer->credit += f->window;
    return SW_OK;
}

static int on_data(struct ms_end *e, const struct sw_msg_frame *f, struct sw_error *err)
{
    if (!e->st->open)
        return sw_error_set(err, SW_EPROTO, "DATA on stream %" PRIu32 " before ACCEPT", f->stream);
    if (e->fin)
        return sw_error_set(err, SW_EPROTO, "DATA on stream %" PRIu32 " after FIN", f->stream);
    if (f->data_len > e->credit)
        return sw_error_set(err, SW_EPROTO, "DATA on stream %" PRIu32 " beyond credit (%zu > %" PRIu64 ")",
                            f->stream, f->data_len, e->credit);
    e->credit -= f->data_len;
    atomic_fetch_add(&e->peer->srv->m.bytes_relayed, f->data_len);
    return SW_OK;
}

/* CLOSE from one side; a listener closing a pending stream refuses it. */
static void on_close(struct ms_end *e, int side, const struct sw_msg_frame *f)
{
    struct ms_stream *st = e->st;
    struct ms_end *o = &st->end[!side];
    if (!st->open && side == 1)
        refuse(o->peer, o->ekey.id, SW_REFUSE_REFUSED, "the peer closed the stream");
    else
        forward(o, f);
    stream_free(st);
}

static int relay_stream(struct ms_end *e, const struct sw_msg_frame *f, struct sw_error *err)
{
    struct ms_stream *st = e->st;
    int side = e == &st->end[1];
    struct ms_end *o = &st->end[!side];
    int rc;

    switch (f->type) {
    case SW_MSG_ACCEPT:
    case SW_MSG_REFUSE:
        return on_pending(e, side, f, err);
    case SW_MSG_DATA:
        if ((rc = on_data(e, f, err)))
            return rc;
        break;
    case SW_MSG_WINDOW:
        if (o->credit + f->window > MAX_CREDIT)
            return sw_error_set(err, SW_EPROTO, "WINDOW on stream %" PRIu32 " overflows the credit", f->stream);
        o->credit += f->window;
        break;
    case SW_MSG_FIN:
        if (!st->open)
            return sw_error_set(err, SW_EPROTO, "FIN on stream %" PRIu32 " before ACCEPT", f->stream);
        if (e->fin)
            return SW_OK; /* duplicate: harmless, not forwarded */
        e->fin = true;
        break;
    case SW_MSG_CLOSE:
        on_close(e, side, f);
        return SW_OK;
    default:
        return sw_error_set(err, SW_EPROTO, "unexpected frame type 0x%02x", f->type);
    }
    forward(o, f);
    return SW_OK;
}

int ms_relay_frame(struct ms_peer *p, const struct sw_msg_frame *f, struct sw_error *err)
{
    struct ms_end *e;
    if (f->type == SW_MSG_OPEN)
        return relay_open(p, f, err);
    if (!(e = find_end(p->srv, p, f->stream))) {
        atomic_fetch_add(&p->srv->m.late_frames, 1);
        return SW_OK;
    }
    return relay_stream(e, f, err);
}

void ms_relay_peer_gone(struct ms_peer *p)
{
    struct ms_end *e;
    while ((e = LIST_FIRST(&p->ends))) {
        struct ms_stream *st = e->st;
        int side = e == &st->end[1];
        struct ms_end *o = &st->end[!side];
        if (!st->open && side == 1)
            refuse(o->peer, o->ekey.id, SW_REFUSE_PEER_OFFLINE, "the peer went offline");
        else
            send_close(o, 1);
        stream_free(st);
    }
}
