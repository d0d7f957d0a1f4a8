/* msg_client_sess.c — the client's sessions to messaging servers: kept slots, choosing
 * and demoting servers (docs/messaging.md §5 "Choosing servers"), sessions opened on
 * demand by dials, the server pool, and the frame dispatch from a session to its streams.
 * Runs on the loop thread. */
#include "common/msg_client_internal.h"
#include "common/log.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

static void slot_fill(struct mc_slot *sl);

/* ---- known servers ----------------------------------------------------------------- */

const struct mc_known *mc_known_find(const struct sw_msg_client *c, const struct sw_pk *pk)
{
    for (size_t i = 0; i < c->n_known; i++)
        if (sw_pk_equal(&c->known[i].pk, pk))
            return &c->known[i];
    return NULL;
}

/* Worked within MC_PROVEN_KEEP_MS (a session to it was ready). */
static bool known_proven(const struct mc_known *k, int64_t now)
{
    return k->proven_ms != 0 && now - k->proven_ms < MC_PROVEN_KEEP_MS;
}

/* Proven and pinned servers keep a short retry schedule: they are always candidates. */
static bool known_trusted(const struct mc_known *k, int64_t now)
{
    return k->pinned || known_proven(k, now);
}

/* An entry that may be replaced: not pinned, not proven, no session. */
static bool known_evictable(struct sw_msg_client *c, const struct mc_known *k, int64_t now)
{
    return !k->pinned && !known_proven(k, now) && !mc_sess_find(c, &k->pk);
}

void mc_known_put(struct sw_msg_client *c, const struct sw_pk *pk, const char *addr, bool in_pool)
{
    struct mc_known *k = (struct mc_known *)mc_known_find(c, pk);
    int64_t now = sw_mono_ms();

    if (!k) {
        if (c->n_known < MC_KNOWN_MAX) {
            k = &c->known[c->n_known++];
        } else {
            /* replace, round robin, a dial-only entry first, then any evictable one */
            for (int pass = 0; pass < 2 && !k; pass++)
                for (size_t i = 0; i < MC_KNOWN_MAX && !k; i++) {
                    size_t j = (c->known_next + i) % MC_KNOWN_MAX;
                    if ((pass == 1 || !c->known[j].in_pool) && known_evictable(c, &c->known[j], now))
                        k = &c->known[j];
                }
            if (!k)
                k = &c->known[c->known_next % MC_KNOWN_MAX];
            c->known_next++;
        }
        memset(k, 0, sizeof(*k));
        k->pk = *pk;
        sw_backoff_init(&k->demote, MC_DEMOTE_MIN_MS, MC_DEMOTE_MAX_MS, true);
    }
    snprintf(k->addr, sizeof(k->addr), "%s", addr);
    k->in_pool = k->in_pool || in_pool;
}

/* An attempt at k failed (or its session was lost): leave it out for the next step of its
 * schedule, at least min_ms. */
static void known_demote(struct mc_known *k, int64_t min_ms)
{
    int64_t now = sw_mono_ms(), delay;
    bool trusted = known_trusted(k, now);
    uint32_t base = trusted ? MC_KNOWN_RETRY_MIN_MS : MC_DEMOTE_MIN_MS;
    uint32_t max = trusted ? MC_KNOWN_RETRY_MAX_MS : MC_DEMOTE_MAX_MS;

    if (k->demote.base_ms != base || k->demote.max_ms != max)
        sw_backoff_init(&k->demote, base, max, true); /* its standing changed: start over */
    delay = (int64_t)sw_backoff_next(&k->demote);
    if (delay < min_ms)
        delay = min_ms;
    k->fails++;
    k->retry_at_ms = now + delay;
}

/* A session to k became ready. */
static void known_proved(struct mc_known *k)
{
    k->proven_ms = sw_mono_ms();
    k->fails = 0;
    k->retry_at_ms = 0;
    sw_backoff_init(&k->demote, MC_KNOWN_RETRY_MIN_MS, MC_KNOWN_RETRY_MAX_MS, true);
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

/* A slot's attempt (or a dial's session) is ready: the slot takes it; its other attempts
 * are closed, or left as on-demand sessions when dials wait on them. */
static void slot_won(struct mc_slot *sl, struct mc_sess *ss)
{
    struct sw_msg_client *c = sl->c;

    ss->slot = sl;
    ss->unproven = false;
    sl->state = MC_SLOT_READY;
    sl->sess = ss;
    sl->last = ss->server;
    sl->has_last = true;
    sl->sticky_until_ms = 0;
    sw_backoff_reset(&sl->backoff);
    event_del(sl->timer);
    for (struct mc_sess *o = c->sessions; o; o = o->next) {
        if (o == ss || o->slot != sl)
            continue;
        o->slot = NULL;
        o->unproven = false;
        if (o->waiting || o->state != MC_SESS_CONNECTING)
            continue; /* a dial waits for it: it stays, on demand */
        o->abandoned = true;
        sw_msg_session_close(o->s);
    }
}

static void on_ready(struct sw_msg_session *s, void *ctx)
{
    struct mc_sess *ss = ctx;
    struct sw_msg_client *c = ss->c;
    struct mc_known *k = (struct mc_known *)mc_known_find(c, &ss->server);
    struct mc_dial *d, *next;
    char hex[SW_PK_HEX_LEN + 1];

    ss->state = MC_SESS_READY;
    sw_pk_to_hex(&ss->server, hex);
    sw_log_info("messaging session to %s (%s) is up%s", hex, ss->addr, ss->slot ? "" : " (on demand)");
    if (k)
        known_proved(k);
    if (ss->slot && ss->slot->state == MC_SLOT_SEARCHING) {
        slot_won(ss->slot, ss);
    } else if (ss->slot) {
        ss->slot = NULL; /* cannot happen: the slot's other attempts were closed */
    } else {
        for (unsigned i = 0; i < c->n_slots; i++)
            if (c->slots[i].state == MC_SLOT_SEARCHING) {
                slot_won(&c->slots[i], ss); /* a dial's session serves a slot at once */
                break;
            }
    }
    d = ss->waiting;
    ss->waiting = NULL;
    for (; d; d = next) {
        next = d->wnext;
        d->wnext = NULL;
        mc_dial_start(d);
    }
    snapshot_update(c);
    mc_publish(c, false);
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

/* What the client learns from a session's end: the server is left out for a while (not
 * when we closed an attempt that lost the race); server_full and a refused certificate
 * for at least MC_FULL_AVOID_MS. Returns whether the end is worth an info line: a proven or
 * pinned server's, or another's first failure (a flood of fakes is not logged at each try). */
static bool observe_end(struct mc_sess *ss, bool was_ready, bool avoid)
{
    struct mc_known *k = (struct mc_known *)mc_known_find(ss->c, &ss->server);
    char hex[SW_PK_HEX_LEN + 1];

    if (!k || ss->abandoned || ss->c->shutting_down)
        return !ss->abandoned && !ss->c->shutting_down;
    if (was_ready)
        k->proven_ms = sw_mono_ms(); /* it worked until now */
    known_demote(k, avoid ? MC_FULL_AVOID_MS : 0);
    sw_pk_to_hex(&ss->server, hex);
    sw_log_debug("messaging server %s left out for %lld ms (%u failures in a row)", hex,
                 (long long)(k->retry_at_ms - sw_mono_ms()), k->fails);
    return k->fails == 1 || known_trusted(k, sw_mono_ms());
}

static void on_closed(struct sw_msg_session *s, enum sw_msg_close_reason reason, int goaway_code,
                      const char *why, void *ctx)
{
    struct mc_sess *ss = ctx;
    struct sw_msg_client *c = ss->c;
    struct mc_slot *sl = ss->slot;
    struct mc_dial *d, *next;
    char hex[SW_PK_HEX_LEN + 1];
    bool was_ready = ss->state == MC_SESS_READY;
    bool avoid = reason == SW_MSG_CLOSED_REFUSED || goaway_code == SW_GOAWAY_SERVER_FULL ||
                 goaway_code == SW_GOAWAY_NOT_A_MEMBER;
    bool loud = observe_end(ss, was_ready, avoid);

    sw_pk_to_hex(&ss->server, hex);
    if (!loud)
        sw_log_debug("messaging session to %s (%s) %s: %s", hex, ss->addr,
                     ss->abandoned ? "closed" : was_ready ? "lost" : "failed",
                     ss->abandoned ? "another server answered first" : why ? why : "closed");
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
    if (sl && sl->sess == ss) {
        sl->sess = NULL;
        sl->state = MC_SLOT_SEARCHING;
        /* a short outage of the server we had (a restart) does not move us elsewhere */
        sl->sticky_until_ms = avoid ? 0 : sw_deadline_ms(MC_STICKY_MS);
    }
    if (sl && !c->shutting_down)
        mc_timer_arm(sl->timer, 0); /* slot_fill from the loop, not from inside a callback */
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

/* hs_ms: the handshake deadline (0: the session's default, 5 s). */
static struct mc_sess *sess_open(struct sw_msg_client *c, const struct sw_pk *server, const char *addr,
                                 struct mc_slot *slot, int hs_ms)
{
    struct mc_sess *ss = calloc(1, sizeof(*ss));
    struct sw_msg_session_opts opts = { .network = c->network, .handshake_timeout_ms = hs_ms };
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

struct mc_sess *mc_sess_open(struct sw_msg_client *c, const struct sw_pk *server, const char *addr,
                             struct mc_slot *slot)
{
    return sess_open(c, server, addr, slot, 0);
}

/* ---- slots: choosing servers (docs/messaging.md §5) ------------------------------------ */

/* A claim's weight among untried servers: 1 + its bit length, clamped (1..13): 2048 free
 * sessions count 13/9 of 200, and 4294967295 no more than 2048. */
static uint32_t claim_weight(uint32_t claim)
{
    uint32_t w = 1;
    for (uint32_t v = claim < MC_CLAIM_MAX ? claim : MC_CLAIM_MAX; v; v >>= 1)
        w++;
    return w;
}

/* The next server for sl to try now, or NULL; *wake is lowered to when a candidate left
 * out now becomes eligible. Order: the slot's previous server, other proven or pinned
 * servers, untried servers (weighted by claim_weight), servers that failed before; random
 * within a rank. Servers that some slot already holds or tries are skipped. */
static const struct mc_known *slot_pick(struct sw_msg_client *c, const struct mc_slot *sl, int64_t now,
                                        int64_t *wake)
{
    const struct mc_known *best = NULL;
    int best_rank = 99;
    uint32_t total = 0;
    bool sticky = now < sl->sticky_until_ms;

    for (size_t i = 0; i < c->n_known; i++) {
        const struct mc_known *k = &c->known[i];
        bool trusted = known_trusted(k, now);
        struct mc_sess *ss;
        uint32_t w;
        int rank;

        if (!k->in_pool && !trusted)
            continue; /* only a dial's address */
        if ((ss = mc_sess_find(c, &k->pk)) && ss->slot)
            continue;
        if (sticky && !trusted) {
            if (sl->sticky_until_ms < *wake)
                *wake = sl->sticky_until_ms;
            continue;
        }
        if (k->retry_at_ms > now) {
            if (k->retry_at_ms < *wake)
                *wake = k->retry_at_ms;
            continue;
        }
        if (trusted)
            rank = sl->has_last && sw_pk_equal(&k->pk, &sl->last) ? 0 : 1;
        else
            rank = k->fails == 0 ? 2 : 3;
        w = trusted ? 1 : claim_weight(k->claim);
        if (rank < best_rank) {
            best = k;
            best_rank = rank;
            total = w;
        } else if (rank == best_rank) {
            total += w;
            if (randombytes_uniform(total) < w)
                best = k;
        }
    }
    return best;
}

/* The slot's attempts in flight, and how many of them are at unproven servers. */
static unsigned slot_attempts(const struct sw_msg_client *c, const struct mc_slot *sl, unsigned *unproven)
{
    unsigned n = 0;
    *unproven = 0;
    for (const struct mc_sess *ss = c->sessions; ss; ss = ss->next)
        if (ss->slot == sl && ss->state == MC_SESS_CONNECTING) {
            n++;
            *unproven += ss->unproven;
        }
    return n;
}

/* A searching slot starts what it may, one attempt every MC_PROBE_STAGGER_MS while others
 * are pending: proven or pinned servers as they become eligible, and up to MC_SLOT_PROBES
 * unproven ones at once (the first try at one with a MC_PROBE_HS_MS handshake deadline).
 * Then it arms its timer for the next candidate; with nothing in flight it also refreshes
 * the pool (at most every MC_IDLE_FETCH_MS) and waits at most its backoff. */
static void slot_fill(struct mc_slot *sl)
{
    struct sw_msg_client *c = sl->c;
    int64_t now = sw_mono_ms(), wake = INT64_MAX;
    unsigned unproven;

    if (c->shutting_down || sl->state != MC_SLOT_SEARCHING)
        return;
    event_del(sl->timer);
    for (;;) {
        unsigned pending = slot_attempts(c, sl, &unproven);
        const struct mc_known *k = slot_pick(c, sl, now, &wake);
        struct mc_sess *ss;
        bool trusted;

        if (!k)
            break;
        if (pending > 0 && now < sl->next_probe_ms) {
            if (sl->next_probe_ms < wake)
                wake = sl->next_probe_ms;
            break;
        }
        trusted = known_trusted(k, now);
        if (!trusted && unproven >= MC_SLOT_PROBES)
            break; /* the end of one of them calls us again */
        if (sl->tried)
            atomic_fetch_add(&c->reconnects, 1);
        sl->tried = true;
        if ((ss = mc_sess_find(c, &k->pk))) { /* a dial's session: the slot takes it over */
            if (ss->state == MC_SESS_READY) {
                slot_won(sl, ss);
                snapshot_update(c);
                mc_publish(c, false);
                return;
            }
            ss->slot = sl;
        } else if (!(ss = sess_open(c, &k->pk, k->addr, sl, !trusted && k->fails == 0 ? MC_PROBE_HS_MS : 0))) {
            known_demote((struct mc_known *)k, 0); /* could not even start (address) */
            continue;
        }
        ss->unproven = !trusted;
        sl->next_probe_ms = now + MC_PROBE_STAGGER_MS;
    }
    if (slot_attempts(c, sl, &unproven) == 0) {
        int64_t delay = (int64_t)sw_backoff_next(&sl->backoff);
        if (wake == INT64_MAX || c->last_fetch_ms == 0 || sw_ms_since(c->last_fetch_ms) >= MC_IDLE_FETCH_MS)
            mc_request_fetch(c); /* nothing to try, or nothing new: the pool may be stale */
        if (now + delay < wake)
            wake = now + delay;
    }
    if (wake != INT64_MAX)
        mc_timer_arm(sl->timer, (uint64_t)(wake > now ? wake - now : 0));
}

static void on_slot_timer(evutil_socket_t fd, short what, void *arg)
{
    slot_fill(arg);
}

/* The pool changed: searching slots try at once. */
static void slots_pool_changed(struct sw_msg_client *c)
{
    for (unsigned i = 0; i < c->n_slots; i++)
        slot_fill(&c->slots[i]);
}

/* ---- worker results ---------------------------------------------------------------- */

static void apply_servers(struct sw_msg_client *c, struct mc_known *list, size_t n, int rc)
{
    c->fetch_in_flight = false;
    if (rc != SW_OK)
        return;
    for (size_t i = 0; i < c->n_known; i++)
        c->known[i].in_pool = false;
    /* servers known already first, so adding new ones cannot evict what they observed */
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < n; i++) {
            struct mc_known *k = (struct mc_known *)mc_known_find(c, &list[i].pk);
            if (pass == 0 && !k)
                continue;
            if (pass == 1 && k && k->in_pool)
                continue;
            mc_known_put(c, &list[i].pk, list[i].addr, true);
            if ((k = (struct mc_known *)mc_known_find(c, &list[i].pk)))
                k->claim = list[i].claim;
        }
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
        slot_fill(&c->slots[i]);
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
    for (size_t i = 0; i < c->n_fixed; i++) {
        struct mc_known *k;
        mc_known_put(c, &c->fixed[i].pk, c->fixed[i].address, true);
        if ((k = (struct mc_known *)mc_known_find(c, &c->fixed[i].pk)))
            k->pinned = true;
    }
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
