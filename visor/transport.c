/* transport.c — the per-transport state machine (docs/visor.md "Transports").
 *
 *   connecting --ENTRY_SIG verified--> up --link lost--> down --redial timer--> connecting
 *
 * A transport holds at most one authenticated link (t->link) and at most one outgoing
 * dial (t->dial, or a dmsg dial on the dial thread). When two links end up authenticated
 * for one transport (simultaneous dials), both ends keep the one initiated by the lower
 * key, or the newer one when both were initiated by the same side. Every state change is
 * one log line; leaving up posts status down, reaching up registers the entry (lower key)
 * or posts status up (higher key). Remembered transports redial with exponential backoff
 * (1 s doubling to 60 s, ±25% jitter); the side that did not add a transport waits. */
#include "visor/transport.h"
#include "visor/packet.h"
#include "visor/router.h"
#include "common/log.h"
#include "common/network.h"

#include <json-c/json.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const uint8_t zeros[VISOR_TP_PKT_MAX];

const char *visor_tp_kind_name(enum visor_tp_kind k) { return k == VISOR_TP_DMSG ? "dmsg" : "stcp"; }

int visor_tp_kind_parse(const char *s, enum visor_tp_kind *out)
{
    if (s && strcmp(s, "stcp") == 0)
        *out = VISOR_TP_STCP;
    else if (s && strcmp(s, "dmsg") == 0)
        *out = VISOR_TP_DMSG;
    else
        return SW_EINVAL;
    return SW_OK;
}

const char *visor_tp_state_name(enum visor_tp_state s)
{
    switch (s) {
    case VISOR_TP_CONNECTING: return "connecting";
    case VISOR_TP_UP: return "up";
    default: return "down";
    }
}

static const char *tp_id_str(const struct visor_transport *t)
{
    static char buf[SW_UUID_STR_LEN + 1]; /* loop thread only */
    sw_uuid_format(&t->entry.id, buf);
    return buf;
}

static const char *pk_str(const struct sw_pk *pk)
{
    static char buf[SW_PK_HEX_LEN + 1]; /* loop thread only */
    sw_pk_to_hex(pk, buf);
    return buf;
}

struct visor_transport *visor_tp_find(struct visor *v, const struct sw_pk *remote, enum visor_tp_kind kind)
{
    struct visor_transport *t;
    TAILQ_FOREACH(t, &v->transports, next) {
        if (t->kind == kind && sw_pk_equal(&t->remote, remote))
            return t;
    }
    return NULL;
}

struct visor_transport *visor_tm_find_id(struct visor *v, const struct sw_uuid *id)
{
    struct visor_transport *t;
    TAILQ_FOREACH(t, &v->transports, next) {
        if (sw_uuid_equal(&t->entry.id, id))
            return t;
    }
    return NULL;
}

bool visor_tp_local_is_lower(const struct visor *v, const struct visor_transport *t)
{
    return sw_pk_cmp(&v->cfg.kp.pk, &t->remote) < 0;
}

uint64_t visor_tm_bytes_sent(const struct visor_transport *t)
{
    return t->base_sent + (t->link ? t->link->bytes_out : 0);
}

uint64_t visor_tm_bytes_received(const struct visor_transport *t)
{
    return t->base_received + (t->link ? t->link->bytes_in : 0);
}

void visor_tp_fold_bytes(struct visor_transport *t, const struct visor_link *l)
{
    t->base_sent += l->bytes_out;
    t->base_received += l->bytes_in;
}

const char *visor_tp_dial_addr(const struct visor *v, const struct visor_transport *t)
{
    const char *a;
    if (t->addr[0])
        return t->addr;
    a = visor_config_pk_addr(&v->cfg, &t->remote);
    return a ? a : "";
}

static void went_down(struct visor *v, struct visor_transport *t, const char *why);

/* The peer's connection did not come after our dial lost the race: give up as usual. */
static void grace_cb(evutil_socket_t fd, short what, void *arg)
{
    struct visor_transport *t = arg;
    (void)fd;
    (void)what;
    if (!t->link && !t->dial && !t->dmsg_dialing)
        went_down(t->v, t, t->grace_why);
}

static void redial_cb(evutil_socket_t fd, short what, void *arg)
{
    struct visor_transport *t = arg;
    visor_tp_dial(t->v, t);
}

struct visor_transport *visor_tp_new(struct visor *v, const struct sw_pk *remote, enum visor_tp_kind kind,
                                     struct sw_error *err)
{
    struct visor_transport *t;

    if (v->n_transports >= VISOR_MAX_TRANSPORTS) {
        sw_error_set(err, SW_ERANGE, "too many transports (%d)", VISOR_MAX_TRANSPORTS);
        return NULL;
    }
    if (!(t = calloc(1, sizeof(*t)))) {
        sw_error_set(err, SW_ENOMEM, "out of memory");
        return NULL;
    }
    if (sw_tp_entry_make(&t->entry, &v->cfg.kp.pk, remote, visor_tp_kind_name(kind), "", err)) {
        free(t);
        return NULL;
    }
    if (!(t->redial = evtimer_new(v->base, redial_cb, t)) ||
        !(t->grace = evtimer_new(v->base, grace_cb, t))) {
        if (t->redial)
            event_free(t->redial);
        free(t);
        sw_error_set(err, SW_ENOMEM, "out of memory");
        return NULL;
    }
    t->v = v;
    t->remote = *remote;
    t->kind = kind;
    TAILQ_INIT(&t->waiters);
    t->state = VISOR_TP_DOWN;
    t->since = sw_unix_ms() / 1000;
    sw_backoff_init(&t->redial_backoff, VISOR_REDIAL_MIN_MS, VISOR_REDIAL_MAX_MS, true);
    sw_tp_entry_sign(&t->entry, &v->cfg.kp, &t->local_sig);
    TAILQ_INSERT_TAIL(&v->transports, t, next);
    v->n_transports++;
    return t;
}

void visor_tp_fail_waiter(struct visor *v, struct visor_transport *t, int status, const char *code,
                          const char *why)
{
    struct visor_cmd *c = t->waiter;
    if (!c)
        return;
    t->waiter = NULL;
    visor_cmd_reply_error(&v->q, c, status, code, "%s", why);
}

static void detach_link(struct visor_transport *t, struct visor_link *l, const char *why)
{
    if (!l)
        return;
    if (t->link == l) {
        visor_tp_fold_bytes(t, l);
        t->link = NULL;
    }
    if (t->dial == l)
        t->dial = NULL;
    l->tp = NULL;
    visor_link_close(l, false, "%s", why);
}

/* Waiters of a transport that leaves up or goes away are let go without a call: their own
 * 1 s ticks find the transport down (a call here could re-enter whoever changed the state). */
static void release_waiters(struct visor_transport *t)
{
    struct visor_tp_waiter *w;
    while ((w = TAILQ_FIRST(&t->waiters))) {
        TAILQ_REMOVE(&t->waiters, w, next);
        w->t = NULL;
    }
}

void visor_tp_free(struct visor *v, struct visor_transport *t)
{
    release_waiters(t);
    if (t->remove_ev)
        event_free(t->remove_ev);
    if (t->remove_cmd)
        visor_cmd_reply_error(&v->q, t->remove_cmd, 410, "gone", "the transport went away");
    detach_link(t, t->link, "transport removed");
    detach_link(t, t->dial, "transport removed");
    visor_tp_fail_waiter(v, t, 410, "removed", "the transport was removed");
    evtimer_del(t->redial);
    event_free(t->redial);
    evtimer_del(t->grace);
    event_free(t->grace);
    TAILQ_REMOVE(&v->transports, t, next);
    v->n_transports--;
    free(t);
}

void visor_tp_signed_entry(const struct visor *v, const struct visor_transport *t,
                           struct sw_tp_signed_entry *se)
{
    int i = sw_tp_entry_edge_index(&t->entry, &v->cfg.kp.pk);
    se->entry = t->entry;
    se->sigs[i] = t->local_sig;
    se->sigs[1 - i] = t->remote_sig;
    /* private network: both edges' certificates, so the discovery admits the entry */
    snprintf(se->certs[i], sizeof(se->certs[i]), "%s", sw_network_own_cert_hex(v->net));
    snprintf(se->certs[1 - i], sizeof(se->certs[1 - i]), "%s", t->peer_cert_hex);
}

/* Reached up: tell the discovery, answer a waiting add-tp, remember it for good. */
static void on_up(struct visor *v, struct visor_transport *t)
{
    struct sw_tp_signed_entry se;
    struct visor_cmd *c = t->waiter;
    bool was_provisional = t->provisional;

    sw_backoff_reset(&t->redial_backoff);
    evtimer_del(t->redial);
    t->member_refused = false;
    /* Both edges register (each writes only its own half): a status post could reach the
     * discovery before the other edge's first registration and find no entry. */
    visor_tp_signed_entry(v, t, &se);
    visor_tpd_register(v->tpd, &se);
    t->provisional = false;
    v->store_dirty = true;
    v->store_urgent = true; /* at most one write per tick, however many come up */
    if (c) {
        t->waiter = NULL;
        visor_cmd_reply(&v->q, c, was_provisional ? 201 : 200, visor_tm_transport_json(v, t));
    }
}

void visor_tp_set_state(struct visor *v, struct visor_transport *t, enum visor_tp_state s, const char *why)
{
    enum visor_tp_state old = t->state;

    if (old == s)
        return;
    t->state = s;
    t->since = sw_unix_ms() / 1000;
    sw_log_info("transport %s %s %s: %s -> %s%s%s", tp_id_str(t), visor_tp_kind_name(t->kind),
                pk_str(&t->remote), visor_tp_state_name(old), visor_tp_state_name(s), why ? ": " : "",
                why ? why : "");
    if (old == VISOR_TP_UP)
        release_waiters(t);
    if (old == VISOR_TP_UP && !v->stopping)
        visor_tpd_status(v->tpd, &t->entry.id, false);
    if (s == VISOR_TP_UP)
        on_up(v, t);
}

/* Arms the redial timer of a remembered transport; writes what happens into note. */
static void schedule_redial(struct visor *v, struct visor_transport *t, char *note, size_t cap)
{
    uint32_t delay;

    note[0] = '\0';
    if (!t->remembered || v->stopping)
        return;
    delay = sw_backoff_next(&t->redial_backoff);
    struct timeval tv = { delay / 1000, (delay % 1000) * 1000 };
    evtimer_add(t->redial, &tv);
    snprintf(note, cap, "; redial in %.1f s", delay / 1000.0);
}

/* No link and no dial left: the transport is down (or gone, if it never came up). */
static void went_down(struct visor *v, struct visor_transport *t, const char *why)
{
    char text[320], note[48];

    if (t->provisional) {
        sw_log_info("transport %s %s %s: not added (it never came up): %s", tp_id_str(t),
                    visor_tp_kind_name(t->kind), pk_str(&t->remote), why);
        visor_tp_fail_waiter(v, t, 502, "dial_failed", why);
        visor_tp_free(v, t);
        return;
    }
    visor_tp_fail_waiter(v, t, 502, "dial_failed", why);
    schedule_redial(v, t, note, sizeof(note));
    snprintf(text, sizeof(text), "%s%s", why, note);
    if (t->state == VISOR_TP_DOWN) /* a failed redial: the state does not change, the log says so */
        sw_log_info("transport %s %s %s: still down: %s", tp_id_str(t), visor_tp_kind_name(t->kind),
                    pk_str(&t->remote), text);
    else
        visor_tp_set_state(v, t, VISOR_TP_DOWN, text);
}

int visor_tp_dial(struct visor *v, struct visor_transport *t)
{
    struct sw_error err = { 0 };
    struct visor_link *l;
    char why[SW_ERROR_MSG_MAX + 32];
    const char *addr = visor_tp_dial_addr(v, t);
    int rc;

    if (t->dial || t->dmsg_dialing || v->stopping || t->state == VISOR_TP_UP)
        return SW_OK;
    if (t->kind == VISOR_TP_DMSG) {
        rc = visor_dmsg_dial(v, &t->remote, &err);
    } else if (!addr[0]) {
        rc = sw_error_set(&err, SW_EINVAL, "no stcp address: give one to add-tp or list it in stcp.pk_table");
    } else if ((rc = visor_link_dial_stcp(v, addr, &t->remote, &l, &err)) == SW_OK) {
        l->tp = t;
        t->dial = l;
    }
    if (rc) {
        snprintf(why, sizeof(why), "dial failed: %s", err.msg);
        if (!t->link)
            went_down(v, t, why);
        return rc;
    }
    if (t->kind == VISOR_TP_DMSG)
        t->dmsg_dialing = true;
    v->m_dials++;
    snprintf(why, sizeof(why), "dialing %s", t->kind == VISOR_TP_STCP ? addr : "over messaging");
    if (t->state == VISOR_TP_DOWN)
        visor_tp_set_state(v, t, VISOR_TP_CONNECTING, why);
    else
        sw_log_info("transport %s %s %s: %s", tp_id_str(t), visor_tp_kind_name(t->kind),
                    pk_str(&t->remote), why);
    return SW_OK;
}

/* ---- links arriving and leaving ------------------------------------------------------ */

static bool initiated_by_lower(const struct visor *v, const struct visor_link *l)
{
    bool local_lower = sw_pk_cmp(&v->cfg.kp.pk, &l->remote) < 0;
    return l->role == VISOR_LINK_INITIATOR ? local_lower : !local_lower;
}

/* Both ends pick the same link: the one initiated by the lower key; when one side
 * initiated both (it redialed), the newer one. */
static struct visor_link *pick_winner(const struct visor *v, struct visor_link *old, struct visor_link *l)
{
    if (old->role == l->role)
        return l;
    return initiated_by_lower(v, old) ? old : l;
}

static void install(struct visor *v, struct visor_transport *t, struct visor_link *l)
{
    char why[VISOR_ADDR_MAX + 64];

    t->link = l;
    l->tp = t;
    evtimer_del(t->redial);
    evtimer_del(t->grace);
    /* dmsg links have no handshake of ours: the certificate goes first, before ENTRY_SIG */
    if (l->kind == VISOR_TP_DMSG && v->net) {
        size_t n;
        const uint8_t *cert = sw_network_own_cert(v->net, &n);
        if (visor_link_send(l, VISOR_TP_PKT_CERT, cert, n))
            return;
    }
    if (visor_link_send(l, VISOR_TP_PKT_ENTRY_SIG, t->local_sig.b, SW_SIG_LEN))
        return; /* the link closes; visor_tm_link_closed follows */
    if (t->state == VISOR_TP_UP && t->have_remote_sig) {
        sw_log_info("transport %s %s %s: now on %s", tp_id_str(t), visor_tp_kind_name(t->kind),
                    pk_str(&t->remote), l->label);
        return;
    }
    visor_link_set_deadline(l, VISOR_HANDSHAKE_MS, "ENTRY_SIG exchange");
    snprintf(why, sizeof(why), "authenticated %s", l->label);
    if (t->state == VISOR_TP_DOWN)
        visor_tp_set_state(v, t, VISOR_TP_CONNECTING, why);
}

static void attach(struct visor *v, struct visor_transport *t, struct visor_link *l)
{
    struct visor_link *old = t->link, *keep, *lose;

    if (!old) {
        install(v, t, l);
        return;
    }
    keep = pick_winner(v, old, l);
    lose = keep == l ? old : l;
    sw_log_info("transport %s %s %s: two connections, keeping %s (initiated by the %s key), closing %s",
                tp_id_str(t), visor_tp_kind_name(t->kind), pk_str(&t->remote), keep->label,
                initiated_by_lower(v, keep) ? "lower" : "higher", lose->label);
    l->tp = t;
    detach_link(t, lose, "simultaneous dial: the other connection wins");
    if (keep == l)
        install(v, t, l);
}

/* Transports a peer opened that are down and not remembered here are kept so the peer
 * finds them again (docs/visor.md), but anyone can make new keys: beyond this many such
 * idle records the one down longest is forgotten, so a peer cannot fill the transport table
 * (and transports.json) and lock out real peers and add-tp. */
#define VISOR_MAX_IDLE_PEER_TPS 1024

static void forget_idle_peer_tp(struct visor *v)
{
    struct visor_transport *t, *oldest = NULL;
    size_t n = 0;

    TAILQ_FOREACH(t, &v->transports, next) {
        if (t->remembered || t->provisional || t->state != VISOR_TP_DOWN || t->link || t->dial ||
            t->dmsg_dialing || t->waiter)
            continue;
        n++;
        if (!oldest || t->since < oldest->since)
            oldest = t;
    }
    if (n < VISOR_MAX_IDLE_PEER_TPS)
        return;
    sw_log_info("transport %s %s %s: forgotten (down since %lld, opened by the peer; at most %d such are kept)",
                tp_id_str(oldest), visor_tp_kind_name(oldest->kind), pk_str(&oldest->remote),
                (long long)oldest->since, VISOR_MAX_IDLE_PEER_TPS);
    visor_tpd_cancel(v->tpd, &oldest->entry.id);
    visor_tp_free(v, oldest);
    v->store_dirty = true;
}

void visor_tm_link_ready(struct visor_link *l)
{
    struct visor *v = l->v;
    struct visor_transport *t = l->tp;
    struct sw_error err = { 0 };

    if (l->role == VISOR_LINK_INITIATOR) {
        if (!t) {
            visor_link_close(l, false, "the transport was removed while dialing");
            return;
        }
        if (t->dial == l)
            t->dial = NULL;
        attach(v, t, l);
        return;
    }
    if (sw_pk_equal(&l->remote, &v->cfg.kp.pk)) {
        visor_link_close(l, false, "the peer uses our own key");
        return;
    }
    t = visor_tp_find(v, &l->remote, l->kind);
    if (!t) {
        forget_idle_peer_tp(v);
        if (!(t = visor_tp_new(v, &l->remote, l->kind, &err))) {
            visor_link_close(l, false, "cannot accept: %s", err.msg);
            return;
        }
        t->provisional = true; /* kept only once up: a failed peer leaves nothing behind */
    }
    attach(v, t, l);
}

/* A lower-keyed peer that answered our handshake and then hung up has most likely kept
 * its own connection to us (simultaneous dial): that one is on its way. */
static bool lost_dial_race(const struct visor *v, const struct visor_transport *t,
                           const struct visor_link *l)
{
    return l->heard && !l->refused && t->state != VISOR_TP_UP &&
           sw_pk_cmp(&t->remote, &v->cfg.kp.pk) < 0;
}

static void wait_for_their_dial(struct visor_transport *t, const char *why)
{
    struct timeval tv = { VISOR_DIAL_RACE_GRACE_MS / 1000, (VISOR_DIAL_RACE_GRACE_MS % 1000) * 1000 };
    snprintf(t->grace_why, sizeof(t->grace_why), "%s", why);
    sw_log_debug("transport %s: %s; waiting for the peer's own connection", tp_id_str(t), why);
    evtimer_add(t->grace, &tv);
}

void visor_tm_link_closed(struct visor_link *l)
{
    struct visor *v = l->v;
    struct visor_transport *t = l->tp;
    char why[sizeof(l->why) + VISOR_ADDR_MAX + 40];

    if (v->stopping)
        return;
    if (!t) {
        if (l->refused && !l->opened) { /* a dialer refused for membership: logged then */
        } else if (l->opened) {
            sw_log_debug("%s: closed: %s", l->label, l->why);
        } else if (!l->heard) { /* port scans, idle sockets, refused over the limit */
            sw_log_debug("%s: closed before sending anything: %s", l->label, l->why);
        } else {
            v->m_handshake_failures++;
            sw_log_info("%s: handshake failed: %s", l->label, l->why);
        }
        return;
    }
    snprintf(why, sizeof(why), "%s: %s", l->label, l->why);
    l->tp = NULL;
    if (l->refused)
        t->member_refused = true; /* a new revocation list may let it in: see check_members */
    if (t->dial == l) {
        t->dial = NULL;
        v->m_handshake_failures += l->closed_in == VISOR_LINK_HANDSHAKE;
        if (!t->link && lost_dial_race(v, t, l))
            wait_for_their_dial(t, why);
        else if (!t->link)
            went_down(v, t, why);
        else
            sw_log_debug("transport %s: %s (another connection is up)", tp_id_str(t), why);
        return;
    }
    if (t->link != l)
        return;
    visor_tp_fold_bytes(t, l);
    t->link = NULL;
    if (t->dial || t->dmsg_dialing)
        visor_tp_set_state(v, t, VISOR_TP_CONNECTING, why);
    else if (l->role == VISOR_LINK_INITIATOR && lost_dial_race(v, t, l))
        wait_for_their_dial(t, why); /* our dial got through the handshake, then lost the race */
    else
        went_down(v, t, why);
}

/* ---- packets ------------------------------------------------------------------------- */

static void got_entry_sig(struct visor *v, struct visor_transport *t, struct visor_link *l,
                          const uint8_t *sig)
{
    uint8_t canon[SW_TP_CANON_MAX];
    size_t n = sw_tp_entry_canonical(&t->entry, canon, sizeof(canon));
    struct sw_sig s;

    /* private network: the peer's certificate came in the handshake (stcp) or in a CERT
     * packet before this one (dmsg) */
    if (v->net && !l->has_peer_cert) {
        visor_link_refuse(l, "not a member: no certificate");
        return;
    }
    if (v->net && sw_cert_to_hex(&l->peer_cert, t->peer_cert_hex, sizeof(t->peer_cert_hex))) {
        visor_link_close(l, false, "the peer's certificate cannot be encoded");
        return;
    }
    memcpy(s.b, sig, SW_SIG_LEN);
    /* the entry never changes and Ed25519 signatures are deterministic: a repeat of the
     * signature verified before needs no second verification (a peer could otherwise make
     * the loop verify for every 83 bytes it sends) */
    if (!(t->have_remote_sig && sodium_memcmp(s.b, t->remote_sig.b, SW_SIG_LEN) == 0) &&
        sw_verify(&t->remote, canon, n, &s)) {
        visor_link_close(l, false, "the peer's ENTRY_SIG does not verify");
        return;
    }
    t->remote_sig = s;
    t->have_remote_sig = true;
    visor_link_set_deadline(l, 0, NULL);
    visor_tp_set_state(v, t, VISOR_TP_UP, l->label);
}

static void peer_removed(struct visor *v, struct visor_transport *t)
{
    sw_log_info("transport %s %s %s: removed by the peer", tp_id_str(t), visor_tp_kind_name(t->kind),
                pk_str(&t->remote));
    visor_tpd_cancel(v->tpd, &t->entry.id);
    visor_tp_free(v, t);
    /* saved by the next tick: a peer must not be able to make the loop fsync at will */
    v->store_dirty = v->store_urgent = true;
}

/* A CERT packet: the peer's certificate (dmsg links send it first; open networks ignore it). */
static void got_cert(struct visor_link *l, const uint8_t *cert, size_t len)
{
    struct sw_error err = { 0 };
    struct sw_cert c;

    if (!l->v->net)
        return;
    if (sw_network_admit(l->v->net, &l->remote, cert, len, SW_ROLE_BIT(SW_ROLE_VISOR), &c, &err)) {
        visor_link_refuse(l, err.msg);
        return;
    }
    l->peer_cert = c;
    l->has_peer_cert = true;
}

void visor_tm_link_packet(struct visor_link *l, const uint8_t *pkt, size_t len)
{
    struct visor_transport *t = l->tp;
    struct sw_error err = { 0 };
    struct visor_packet p;

    if (!t || t->link != l)
        return;
    if (visor_packet_parse(pkt, len, &p, &err)) { /* a known type with a wrong body */
        visor_link_close(l, false, "protocol error: %s", err.msg);
        return;
    }
    switch (p.type) {
    case VISOR_TP_PKT_ENTRY_SIG:
        got_entry_sig(l->v, t, l, p.sig);
        break;
    case VISOR_TP_PKT_PING:
        visor_link_send(l, VISOR_TP_PKT_PONG, p.body, p.body_len);
        break;
    case VISOR_TP_PKT_PONG:
    case VISOR_TP_PKT_DISCARD:
        break;
    case VISOR_TP_PKT_CLOSE:
        peer_removed(l->v, t);
        break;
    case VISOR_TP_PKT_CERT:
        got_cert(l, p.body, p.body_len);
        break;
    case VISOR_TP_PKT_REFUSE:
        l->refused = true;
        visor_link_close(l, false, "refused by the peer: %.*s", (int)p.body_len, (const char *)p.body);
        break;
    default:
        if (visor_rpkt_is_routing(p.type)) { /* docs/routing.md §2 */
            visor_router_packet(l->v, t, pkt, len);
            break;
        }
        sw_log_debug("%s: ignoring packet type 0x%02x (%zu bytes)", l->label, p.type, len);
    }
}

void visor_tp_pump_discard(struct visor_transport *t)
{
    struct visor_link *l = t->link;
    size_t n;

    while (l && t->discard_left && t->state == VISOR_TP_UP && l->state == VISOR_LINK_OPEN &&
           visor_link_output_len(l) < VISOR_DISCARD_HIGH) {
        n = t->discard_left < VISOR_TP_PKT_MAX - 1 ? (size_t)t->discard_left : VISOR_TP_PKT_MAX - 1;
        if (visor_link_send(l, VISOR_TP_PKT_DISCARD, zeros, n))
            return;
        t->discard_left -= n;
    }
}

/* ---- the send seam ------------------------------------------------------------------------ */

static struct visor_link *open_link(struct visor_transport *t)
{
    struct visor_link *l = t && t->state == VISOR_TP_UP ? t->link : NULL;
    return l && l->state == VISOR_LINK_OPEN ? l : NULL;
}

bool visor_tp_is_up(struct visor *v, const struct sw_uuid *id)
{
    return open_link(visor_tm_find_id(v, id)) != NULL;
}

enum visor_send visor_tp_send(struct visor *v, const struct sw_uuid *id, uint8_t type, const void *body,
                              size_t len, int flags)
{
    struct visor_link *l = open_link(visor_tm_find_id(v, id));

    if (!l)
        return VISOR_SEND_DOWN;
    if (!(flags & VISOR_SEND_CONTROL) && visor_link_output_len(l) >= VISOR_TP_SEND_CAP)
        return VISOR_SEND_FULL;
    return visor_link_send(l, type, body, len) ? VISOR_SEND_DOWN : VISOR_SEND_OK;
}

bool visor_tp_wait(struct visor *v, const struct sw_uuid *id, struct visor_tp_waiter *w)
{
    struct visor_transport *t = visor_tm_find_id(v, id);

    if (w->t == t && t)
        return true;
    visor_tp_unwait(w);
    if (!t)
        return false;
    w->t = t;
    TAILQ_INSERT_TAIL(&t->waiters, w, next);
    return true;
}

void visor_tp_unwait(struct visor_tp_waiter *w)
{
    if (!w->t)
        return;
    TAILQ_REMOVE(&w->t->waiters, w, next);
    w->t = NULL;
}

/* The link drained below its low watermark: waiters take turns while there is room. Each
 * sends a bounded amount and queues itself again at the tail when it has more. */
static void serve_waiters(struct visor_transport *t)
{
    struct visor_tp_waiter *w;
    struct visor_link *l;

    while ((w = TAILQ_FIRST(&t->waiters)) && (l = open_link(t)) && visor_link_output_len(l) < VISOR_TP_SEND_CAP) {
        TAILQ_REMOVE(&t->waiters, w, next);
        w->t = NULL;
        w->writable(w); /* sends, then waits again only when it sent something and has more */
    }
}

void visor_tm_link_writable(struct visor_link *l)
{
    struct visor_transport *t = l->tp;
    if (!t || t->link != l)
        return;
    if (t->discard_left)
        visor_tp_pump_discard(t);
    serve_waiters(t);
}

/* ---- other entry points ---------------------------------------------------------------- */

int visor_tm_restore(struct visor *v, const struct sw_pk *remote, enum visor_tp_kind kind, const char *addr,
                     bool remembered, uint64_t sent, uint64_t received, struct sw_error *err)
{
    struct visor_transport *t;

    if (visor_tp_find(v, remote, kind))
        return sw_error_set(err, SW_EEXIST, "two records of the same transport");
    if (!(t = visor_tp_new(v, remote, kind, err)))
        return err->code ? err->code : SW_EINVAL;
    snprintf(t->addr, sizeof(t->addr), "%s", addr ? addr : "");
    t->remembered = remembered;
    t->base_sent = sent;
    t->base_received = received;
    if (remembered) { /* dial once the loop runs, spread a little */
        struct timeval tv = { 0, 50000 + (long)randombytes_uniform(200000) };
        evtimer_add(t->redial, &tv);
    }
    return SW_OK;
}

void visor_tm_dmsg_incoming(struct visor *v, int fd, const struct sw_pk *remote)
{
    struct visor_link *l;
    if (v->stopping) {
        close(fd);
        return;
    }
    if (visor_link_new(v, fd, VISOR_TP_DMSG, VISOR_LINK_RESPONDER, false, remote, "messaging", &l) == SW_OK)
        visor_tm_link_ready(l);
}

void visor_tm_dmsg_dialed(struct visor *v, const struct sw_pk *remote, int fd, const char *why)
{
    struct visor_transport *t = visor_tp_find(v, remote, VISOR_TP_DMSG);
    char text[SW_ERROR_MSG_MAX + 32];
    struct visor_link *l;

    if (!t) {
        if (fd >= 0)
            close(fd);
        return;
    }
    t->dmsg_dialing = false;
    if (fd < 0) {
        snprintf(text, sizeof(text), "dial failed: %s", why);
        if (!t->link)
            went_down(v, t, text);
        return;
    }
    if (visor_link_new(v, fd, VISOR_TP_DMSG, VISOR_LINK_INITIATOR, false, remote, "messaging", &l)) {
        if (!t->link)
            went_down(v, t, "out of memory");
        return;
    }
    l->tp = t;
    visor_tm_link_ready(l);
}

/* The peer of t was revoked: tell it (REFUSE), forget the transport here and in the
 * discovery. An expired peer's transport is only closed (a renewed certificate brings it
 * back), a revoked one's would be redialed in vain. */
static void forget_revoked(struct visor *v, struct visor_transport *t, const char *why)
{
    struct visor_link *l = t->link;

    visor_tp_fold_bytes(t, l);
    t->link = NULL;
    l->tp = NULL;
    visor_link_refuse(l, why);
    sw_log_info("transport %s %s %s: forgotten (the peer is revoked)", tp_id_str(t),
                visor_tp_kind_name(t->kind), pk_str(&t->remote));
    visor_tpd_cancel(v->tpd, &t->entry.id);
    visor_tpd_delete(v->tpd, &t->entry.id);
    visor_tp_free(v, t);
    v->store_dirty = v->store_urgent = true;
}

/* A new revocation list may admit peers (or us) again: remembered transports that were
 * refused for membership redial now (spread over half a second) instead of after their
 * backoff, up to a minute away. */
static void redial_refused(struct visor *v)
{
    struct visor_transport *t;

    TAILQ_FOREACH(t, &v->transports, next) {
        if (!t->member_refused || !t->remembered || t->link || t->dial || t->dmsg_dialing ||
            t->state == VISOR_TP_UP)
            continue;
        struct timeval tv = { 0, (long)randombytes_uniform(500000) };
        sw_backoff_reset(&t->redial_backoff);
        evtimer_add(t->redial, &tv);
    }
}

void visor_tm_check_members(struct visor *v)
{
    struct visor_transport *t, *next;
    struct sw_error err = { 0 };
    const struct sw_cert *own = sw_network_own_cert_parsed(v->net);
    uint64_t gen;

    if (!v->net)
        return;
    gen = sw_network_generation(v->net);
    if (gen == v->net_generation && v->net_checked_ms &&
        sw_ms_since(v->net_checked_ms) < VISOR_MEMBER_CHECK_MS)
        return;
    if (gen != v->net_generation)
        redial_refused(v);
    v->net_generation = gen;
    v->net_checked_ms = sw_mono_ms();
    for (t = TAILQ_FIRST(&v->transports); t; t = next) {
        struct visor_link *l = t->link;
        next = TAILQ_NEXT(t, next);
        if (!l || !l->has_peer_cert || sw_network_recheck(v->net, &l->peer_cert, &err) == SW_OK)
            continue;
        if (sw_network_revoked(v->net, &t->remote))
            forget_revoked(v, t, err.msg);
        else
            visor_link_refuse(l, err.msg); /* closes later: the list stays intact */
    }
    if (own && sw_network_recheck(v->net, own, &err)) {
        if (!v->own_cert_warned)
            sw_log_error("our own certificate is no longer valid (%s): peers refuse this visor "
                         "until that changes (a new certificate is read at restart)", err.msg);
        v->own_cert_warned = true;
    } else {
        v->own_cert_warned = false;
    }
}

int visor_tm_init(struct visor *v)
{
    TAILQ_INIT(&v->transports);
    LIST_INIT(&v->links);
    v->n_transports = 0;
    return SW_OK;
}

void visor_tm_free(struct visor *v)
{
    struct visor_transport *t;
    while ((t = TAILQ_FIRST(&v->transports))) {
        t->link = t->dial = NULL; /* links are freed by visor_link_free_all */
        visor_tp_fail_waiter(v, t, 503, "shutting_down", "the visor is shutting down");
        event_free(t->redial);
        event_free(t->grace);
        TAILQ_REMOVE(&v->transports, t, next);
        free(t);
    }
    v->n_transports = 0;
}
