/* msg_client_sess.c — the client's sessions to messaging servers: kept slots with
 * reconnect backoff, sessions opened on demand by dials, the server pool, and the frame
 * dispatch from a session to its streams. Runs on the loop thread. */
#include "common/msg_client_internal.h"
#include "common/log.h"

#include <stdlib.h>
#include <string.h>

static void slot_connect(struct mc_slot *sl);

/* ---- known servers ----------------------------------------------------------------- */

const struct mc_known *mc_known_find(const struct sw_msg_client *c, const struct sw_pk *pk)
{
    for (size_t i = 0; i < c->n_known; i++)
        if (sw_pk_equal(&c->known[i].pk, pk))
            return &c->known[i];
    return NULL;
}

void mc_known_put(struct sw_msg_client *c, const struct sw_pk *pk, const char *addr, bool in_pool)
{
    struct mc_known *k = (struct mc_known *)mc_known_find(c, pk);
    if (!k) {
        if (c->n_known < MC_KNOWN_MAX) {
            k = &c->known[c->n_known++];
        } else {
            /* replace a dial-only entry first, round robin */
            for (size_t i = 0; i < MC_KNOWN_MAX && !k; i++) {
                size_t j = (c->known_next + i) % MC_KNOWN_MAX;
                if (!c->known[j].in_pool)
                    k = &c->known[j];
            }
            if (!k)
                k = &c->known[c->known_next % MC_KNOWN_MAX];
            c->known_next++;
        }
        memset(k, 0, sizeof(*k));
        k->pk = *pk;
    }
    snprintf(k->addr, sizeof(k->addr), "%s", addr);
    k->in_pool = k->in_pool || in_pool;
}

/* ---- snapshot for other threads ---------------------------------------------------- */

static void snapshot_update(struct sw_msg_client *c)
{
    unsigned n = 0;
    pthread_mutex_lock(&c->mu);
    for (struct mc_sess *ss = c->sessions; ss && n < MC_SNAP_MAX; ss = ss->next)
        if (ss->state == MC_SESS_READY)
            c->snap_ready[n++] = ss->server;
    c->snap_n = n;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->mu);
}

/* ---- session callbacks ------------------------------------------------------------- */

struct mc_sess *mc_sess_find(struct sw_msg_client *c, const struct sw_pk *server)
{
    for (struct mc_sess *ss = c->sessions; ss; ss = ss->next)
        if (sw_pk_equal(&ss->server, server))
            return ss;
    return NULL;
}

int mc_sess_send(struct mc_sess *ss, const struct sw_msg_frame *f)
{
    if (!ss->s || ss->state != MC_SESS_READY)
        return SW_EIO;
    return sw_msg_session_send(ss->s, f);
}

static void on_ready(struct sw_msg_session *s, void *ctx)
{
    struct mc_sess *ss = ctx;
    struct mc_dial *d, *next;
    char hex[SW_PK_HEX_LEN + 1];

    ss->state = MC_SESS_READY;
    sw_pk_to_hex(&ss->server, hex);
    sw_log_info("messaging session to %s (%s) is up%s", hex, ss->addr, ss->slot ? "" : " (on demand)");
    if (ss->slot) {
        sw_backoff_reset(&ss->slot->backoff);
        ss->slot->fails = 0;
    }
    d = ss->waiting;
    ss->waiting = NULL;
    for (; d; d = next) {
        next = d->wnext;
        d->wnext = NULL;
        mc_dial_start(d);
    }
    snapshot_update(ss->c);
    mc_publish(ss->c, false);
}

static int on_frame(struct sw_msg_session *s, const struct sw_msg_frame *f, void *ctx)
{
    struct mc_sess *ss = ctx;
    struct mc_stream *st;

    if (f->type == SW_MSG_OPEN)
        return mc_stream_incoming(ss, f);
    st = mc_stream_find(ss, f->stream);
    if (!st) {
        /* a late frame for a stream we already closed (our CLOSE crossed it) */
        sw_log_debug("frame 0x%02x for unknown stream %u ignored", f->type, f->stream);
        return SW_OK;
    }
    mc_stream_on_frame(st, f);
    return SW_OK;
}

/* avoid: the server is not a member (its certificate was refused): like server_full, try
 * the others first for a while. */
static void slot_lost(struct mc_slot *sl, int goaway_code, bool avoid)
{
    struct sw_msg_client *c = sl->c;
    uint64_t delay;

    sl->sess = NULL;
    sl->fails++;
    if (goaway_code == SW_GOAWAY_SERVER_FULL || avoid) {
        struct mc_known *k = (struct mc_known *)mc_known_find(c, &sl->last);
        if (k)
            k->full_until_ms = sw_deadline_ms(MC_FULL_AVOID_MS);
        sl->avoid_last = true;
    } else if (sl->fails >= MC_SLOT_RETARGET_FAILS) {
        sl->avoid_last = true;
    }
    if (sl->avoid_last)
        mc_request_fetch(c); /* the pool may be stale: refresh it before the retry */
    if (c->shutting_down)
        return;
    delay = sw_backoff_next(&sl->backoff);
    sl->state = MC_SLOT_BACKOFF;
    mc_timer_arm(sl->timer, delay);
    sw_log_debug("reconnecting in %llu ms", (unsigned long long)delay);
}

static void on_closed(struct sw_msg_session *s, enum sw_msg_close_reason reason, int goaway_code,
                      const char *why, void *ctx)
{
    struct mc_sess *ss = ctx;
    struct sw_msg_client *c = ss->c;
    struct mc_dial *d, *next;
    char hex[SW_PK_HEX_LEN + 1];
    bool was_ready = ss->state == MC_SESS_READY;

    sw_pk_to_hex(&ss->server, hex);
    if (c->shutting_down)
        sw_log_debug("messaging session to %s closed", hex);
    else if (reason == SW_MSG_CLOSED_REFUSED)
        sw_log_warn("messaging server %s (%s) refused: %s", hex, ss->addr, why);
    else if (reason == SW_MSG_CLOSED_GOAWAY && goaway_code == SW_GOAWAY_NOT_A_MEMBER)
        sw_log_warn("messaging server %s (%s) refused us: not a member of its network (check "
                    "this key's certificate)", hex, ss->addr);
    else
        sw_log_info("messaging session to %s (%s) %s: %s", hex, ss->addr, was_ready ? "lost" : "failed",
                    why ? why : "closed");
    ss->s = NULL;
    ss->state = MC_SESS_CONNECTING;
    mc_stream_drop_all(ss, MC_DIAL_SESSION_FAILED);
    for (d = ss->waiting, ss->waiting = NULL; d; d = next) {
        next = d->wnext;
        d->wnext = NULL;
        mc_dial_finish(d, MC_DIAL_SESSION_FAILED, 0, "session failed");
    }
    if (ss->prev)
        ss->prev->next = ss->next;
    else
        c->sessions = ss->next;
    if (ss->next)
        ss->next->prev = ss->prev;
    c->n_sessions--;
    if (ss->slot)
        slot_lost(ss->slot, goaway_code, reason == SW_MSG_CLOSED_REFUSED);
    free(ss);
    if (was_ready) {
        snapshot_update(c);
        mc_publish(c, false);
    }
    if (c->shutting_down && !c->sessions)
        event_base_loopexit(c->base, NULL);
}

static const struct sw_msg_session_callbacks sess_cb = {
    .on_ready = on_ready,
    .on_frame = on_frame,
    .on_drained = NULL,
    .on_closed = on_closed,
};

struct mc_sess *mc_sess_open(struct sw_msg_client *c, const struct sw_pk *server, const char *addr,
                             struct mc_slot *slot)
{
    struct mc_sess *ss = calloc(1, sizeof(*ss));
    struct sw_msg_session_opts opts = { .network = c->network };
    struct sw_error err = { 0 };
    char hex[SW_PK_HEX_LEN + 1];

    if (!ss)
        return NULL;
    ss->c = c;
    ss->server = *server;
    snprintf(ss->addr, sizeof(ss->addr), "%s", addr);
    ss->slot = slot;
    ss->next_id = 1;
    sw_pk_to_hex(server, hex);
    if (sw_msg_session_connect(c->base, addr, &c->kp, server, &opts, &sess_cb, ss, &ss->s, &err)) {
        sw_log_warn("messaging session to %s (%s): %s", hex, addr, err.msg);
        free(ss);
        return NULL;
    }
    sw_log_debug("connecting to messaging server %s at %s", hex, addr);
    ss->next = c->sessions;
    if (c->sessions)
        c->sessions->prev = ss;
    c->sessions = ss;
    c->n_sessions++;
    return ss;
}

/* ---- slots ------------------------------------------------------------------------- */

static bool used_by_other_slot(const struct sw_msg_client *c, const struct mc_slot *self,
                               const struct sw_pk *pk)
{
    for (unsigned i = 0; i < c->n_slots; i++) {
        const struct mc_slot *o = &c->slots[i];
        if (o != self && o->sess && sw_pk_equal(&o->sess->server, pk))
            return true;
        if (o != self && o->state == MC_SLOT_BACKOFF && o->has_last && !o->avoid_last &&
            sw_pk_equal(&o->last, pk))
            return true;
    }
    return false;
}

/* Picks the server for a slot: its previous one unless avoided, else the best in the pool
 * (not full, not the one it just left), falling back to any unused pool server. */
static const struct mc_known *slot_pick(struct sw_msg_client *c, struct mc_slot *sl)
{
    const struct mc_known *best = NULL;
    int best_rank = 99;
    int64_t now = sw_mono_ms();

    if (sl->has_last
 && !sl->avoid_last) {
        const struct mc_known *k = mc_known_find(c, &sl->last);
        if (k && !used_by_other_slot(c, sl, &k->pk))
            return k;
    }
    for (size_t i = 0; i < c->n_known; i++) {
        const struct mc_known *k = &c->known[i];
        int rank;
        if (!k->in_pool || used_by_other_slot(c, sl, &k->pk))
            continue;
        rank = (k->full_until_ms > now ? 2 : 0) + (sl->has_last && sw_pk_equal(&k->pk, &sl->last) ? 1 : 0);
        if (rank < best_rank) {
            best = k;
            best_rank = rank;
        }
    }
    return best;
}

static void slot_wait_servers(struct mc_slot *sl)
{
    mc_request_fetch(sl->c);
    sl->state = MC_SLOT_WAIT_SERVERS;
    mc_timer_arm(sl->timer, sw_backoff_next(&sl->backoff));
}

static void slot_connect(struct mc_slot *sl)
{
    struct sw_msg_client *c = sl->c;
    const struct mc_known *k = slot_pick(c, sl);
    struct mc_sess *ss;

    if (!k) {
        slot_wait_servers(sl);
        return;
    }
    sl->last = k->pk;
    sl->has_last = true;
    sl->avoid_last = false;
    ss = mc_sess_find(c, &k->pk);
    if (ss && !ss->slot) {
        ss->slot = sl; /* adopt a session a dial opened */
        if (ss->state == MC_SESS_READY) {
            sw_backoff_reset(&sl->backoff);
            sl->fails = 0;
        }
    } else if (ss) {
        slot_wait_servers(sl);
        return;
    } else if (!(ss = mc_sess_open(c, &k->pk, k->addr, sl))) {
        sl->fails++;
        sl->state = MC_SLOT_BACKOFF;
        mc_timer_arm(sl->timer, sw_backoff_next(&sl->backoff));
        return;
    }
    sl->sess = ss;
    sl->state = MC_SLOT_ACTIVE;
}

static void on_slot_timer(evutil_socket_t fd, short what, void *arg)
{
    struct mc_slot *sl = arg;
    if (sl->c->shutting_down || sl->state == MC_SLOT_ACTIVE)
        return;
    if (sl->state == MC_SLOT_BACKOFF)
        atomic_fetch_add(&sl->c->reconnects, 1);
    slot_connect(sl);
}

/* The pool changed: slots waiting for servers try at once. */
static void slots_pool_changed(struct sw_msg_client *c)
{
    for (unsigned i = 0; i < c->n_slots; i++) {
        struct mc_slot *sl = &c->slots[i];
        if (sl->state == MC_SLOT_WAIT_SERVERS) {
            event_del(sl->timer);
            slot_connect(sl);
        }
    }
}

/* ---- worker results ---------------------------------------------------------------- */

static void apply_servers(struct sw_msg_client *c, struct mc_known *list, size_t n, int rc)
{
    c->fetch_in_flight = false;
    if (rc != SW_OK)
        return;
    for (size_t i = 0; i < c->n_known; i++)
        c->known[i].in_pool = false;
    for (size_t i = 0; i < n; i++)
        mc_known_put(c, &list[i].pk, list[i].addr, true);
    sw_log_debug("%zu messaging servers available", n);
    slots_pool_changed(c);
}

static void on_worker(evutil_socket_t fd, short what, void *arg)
{
    struct sw_msg_client *c = arg;
    struct mc_known *list = NULL;
    size_t n = 0;
    int srv_rc = SW_OK, pub_rc = SW_OK;
    bool got_servers, got_publish;

    pthread_mutex_lock(&c->mu);
    got_servers = c->wk.servers_done;
    if (got_servers) {
        list = c->wk.servers;
        n = c->wk.n_servers;
        srv_rc = c->wk.servers_rc;
        c->wk.servers = NULL;
        c->wk.servers_done = false;
    }
    got_publish = c->wk.publish_done;
    if (got_publish) {
        pub_rc = c->wk.publish_rc;
        c->wk.publish_done = false;
        c->snap_published = pub_rc == SW_OK && c->wk.published_n > 0;
        pthread_cond_broadcast(&c->cond);
    }
    pthread_mutex_unlock(&c->mu);
    if (got_servers && !c->shutting_down)
        apply_servers(c, list, n, srv_rc);
    free(list);
    if (got_publish && pub_rc != SW_OK && !c->shutting_down) {
        c->pub_valid = false; /* publish again soon */
        mc_timer_arm(c->ev_publish, MC_PUBLISH_RETRY_MS);
    }
}

static void on_publish_timer(evutil_socket_t fd, short what, void *arg)
{
    struct sw_msg_client *c = arg;
    mc_publish(c, true);
    mc_timer_arm(c->ev_publish, MC_PUBLISH_INTERVAL_MS);
}

static void on_kick(evutil_socket_t fd, short what, void *arg)
{
    struct sw_msg_client *c = arg;
    for (unsigned i = 0; i < c->n_slots; i++)
        slot_connect(&c->slots[i]);
}

/* ---- start / shutdown -------------------------------------------------------------- */

int mc_sessions_start(struct sw_msg_client *c, struct sw_error *err)
{
    c->slots = calloc(c->n_slots, sizeof(*c->slots));
    c->ev_worker = event_new(c->base, -1, 0, on_worker, c);
    c->ev_publish = evtimer_new(c->base, on_publish_timer, c);
    c->ev_kick = evtimer_new(c->base, on_kick, c);
    if (!c->slots || !c->ev_worker || !c->ev_publish || !c->ev_kick)
        return sw_error_set(err, SW_ENOMEM, "out of memory");
    for (unsigned i = 0; i < c->n_slots; i++) {
        c->slots[i].c = c;
        sw_backoff_init(&c->slots[i].backoff, MC_BACKOFF_MIN_MS, MC_BACKOFF_MAX_MS, true);
        if (!(c->slots[i].timer = evtimer_new(c->base, on_slot_timer, &c->slots[i])))
            return sw_error_set(err, SW_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < c->n_fixed; i++)
        mc_known_put(c, &c->fixed[i].pk, c->fixed[i].address, true);
    mc_timer_arm(c->ev_kick, 0);
    if (c->discovery)
        mc_timer_arm(c->ev_publish, MC_PUBLISH_INTERVAL_MS);
    return SW_OK;
}

static void on_grace(evutil_socket_t fd, short what, void *arg)
{
    struct sw_msg_client *c = arg;
    for (struct mc_sess *ss = c->sessions; ss; ss = ss->next)
        if (ss->s)
            sw_msg_session_close(ss->s);
}

/* Loop side of sw_msg_client_stop: ends dials, listeners, streams and sessions; the loop
 * exits once the last session reported on_closed. */
void mc_sessions_shutdown(struct sw_msg_client *c)
{
    sw_log_debug("messaging client stopping");
    while (c->dials)
        mc_dial_finish(c->dials, MC_DIAL_STOPPED, 0, "the messaging client is stopping");
    mc_listeners_free(c);
    for (unsigned i = 0; i < c->n_slots; i++)
        event_del(c->slots[i].timer);
    event_del(c->ev_publish);
    event_del(c->ev_kick);
    for (struct mc_sess *ss = c->sessions; ss; ss = ss->next) {
        mc_stream_drop_all(ss, MC_DIAL_STOPPED);
        if (ss->state == MC_SESS_READY)
            sw_msg_session_goaway(ss->s, SW_GOAWAY_SHUTDOWN);
        else
            sw_msg_session_close(ss->s);
    }
    pthread_mutex_lock(&c->mu);
    c->wk.quit = true;
    c->wk.fetch = false;
    free(c->wk.publish_body);
    c->wk.publish_body = NULL;
    c->wk.delete_entry = c->discovery && c->last_seq > 0;
    pthread_cond_signal(&c->wk_cond);
    pthread_mutex_unlock(&c->mu);
    if (!c->sessions) {
        event_base_loopexit(c->base, NULL);
        return;
    }
    c->ev_grace = evtimer_new(c->base, on_grace, c);
    if (c->ev_grace)
        mc_timer_arm(c->ev_grace, MC_STOP_GRACE_MS);
}

void mc_sessions_free(struct sw_msg_client *c)
{
    if (c->slots) {
        for (unsigned i = 0; i < c->n_slots; i++)
            if (c->slots[i].timer)
                event_free(c->slots[i].timer);
        free(c->slots);
        c->slots = NULL;
    }
    if (c->ev_worker)
        event_free(c->ev_worker);
    if (c->ev_publish)
        event_free(c->ev_publish);
    if (c->ev_kick)
        event_free(c->ev_kick);
    if (c->ev_grace)
        event_free(c->ev_grace);
    c->ev_worker = c->ev_publish = c->ev_kick = c->ev_grace = NULL;
}
