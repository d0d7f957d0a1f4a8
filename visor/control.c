/* control.c — what the operator and the clock ask of the transport manager, on the loop:
 * API commands (add, remove, list, discard), the 1 s tick (keepalive, store, discovery
 * refresh) and the orderly shutdown. */
#include "visor/transport.h"
#include "visor/router.h"
#include "common/json.h"
#include "common/log.h"
#include "common/network.h"
#include "common/version.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define REFRESH_BATCH 256

struct json_object *visor_tm_transport_json(struct visor *v, const struct visor_transport *t)
{
    struct json_object *o = json_object_new_object();
    char id[SW_UUID_STR_LEN + 1];
    const char *addr = t->link ? t->link->peer_addr : visor_tp_dial_addr(v, t);

    sw_uuid_format(&t->entry.id, id);
    json_object_object_add(o, "id", json_object_new_string(id));
    json_object_object_add(o, "local_pk", sw_json_pk(&v->cfg.kp.pk));
    json_object_object_add(o, "remote_pk", sw_json_pk(&t->remote));
    json_object_object_add(o, "type", json_object_new_string(visor_tp_kind_name(t->kind)));
    json_object_object_add(o, "state", json_object_new_string(visor_tp_state_name(t->state)));
    json_object_object_add(o, "is_initiator",
                           json_object_new_boolean(t->link && t->link->role == VISOR_LINK_INITIATOR));
    json_object_object_add(o, "remembered", json_object_new_boolean(t->remembered));
    json_object_object_add(o, "bytes_sent", json_object_new_uint64(visor_tm_bytes_sent(t)));
    json_object_object_add(o, "bytes_received", json_object_new_uint64(visor_tm_bytes_received(t)));
    json_object_object_add(o, "since", json_object_new_int64(t->since));
    if (t->kind == VISOR_TP_STCP)
        json_object_object_add(o, "address", json_object_new_string(addr));
    return o;
}

/* The visor's own certificate for the summary (the hypervisor shows it); NULL when open. */
static struct json_object *membership_json(const struct visor *v)
{
    const struct sw_cert *c = sw_network_own_cert_parsed(v->net);
    struct json_object *o, *groups;
    char buf[SW_CERT_GROUPS_MAX + 1], *save = NULL;

    if (!c)
        return NULL;
    groups = json_object_new_array();
    snprintf(buf, sizeof(buf), "%s", c->groups);
    for (char *g = strtok_r(buf, ",", &save); g; g = strtok_r(NULL, ",", &save))
        json_object_array_add(groups, json_object_new_string(g));
    o = json_object_new_object();
    json_object_object_add(o, "network", sw_json_pk(&c->network));
    json_object_object_add(o, "role", json_object_new_string(sw_role_name(c->role)));
    json_object_object_add(o, "name", json_object_new_string(c->name));
    json_object_object_add(o, "groups", groups);
    json_object_object_add(o, "not_before", json_object_new_uint64(c->not_before));
    json_object_object_add(o, "not_after", json_object_new_uint64(c->not_after));
    return o;
}

static void cmd_summary(struct visor *v, struct visor_cmd *c)
{
    struct json_object *o = json_object_new_object(), *m = json_object_new_object();
    struct visor_transport *t;
    int up = 0;

    TAILQ_FOREACH(t, &v->transports, next)
        up += t->state == VISOR_TP_UP;
    json_object_object_add(o, "public_key", sw_json_pk(&v->cfg.kp.pk));
    json_object_object_add(o, "version", json_object_new_string(SW_VERSION));
    json_object_object_add(o, "uptime_s", json_object_new_int64(sw_unix_ms() / 1000 - v->started_at));
    json_object_object_add(o, "transports", json_object_new_int64((int64_t)v->n_transports));
    json_object_object_add(o, "transports_up", json_object_new_int(up));
    json_object_object_add(o, "stcp_listen", json_object_new_string(v->stcp_addr));
    json_object_object_add(m, "enabled", json_object_new_boolean(visor_dmsg_enabled(v)));
    json_object_object_add(m, "sessions", json_object_new_int((int)visor_dmsg_sessions(v)));
    json_object_object_add(o, "messaging", m);
    json_object_object_add(o, "membership", membership_json(v));
    visor_cmd_reply(&v->q, c, 200, o);
}

static void cmd_list(struct visor *v, struct visor_cmd *c)
{
    struct json_object *arr = json_object_new_array();
    struct visor_transport *t;
    TAILQ_FOREACH(t, &v->transports, next)
        json_object_array_add(arr, visor_tm_transport_json(v, t));
    visor_cmd_reply(&v->q, c, 200, arr);
}

static struct visor_transport *find_or_404(struct visor *v, struct visor_cmd *c)
{
    struct visor_transport *t = visor_tm_find_id(v, &c->id);
    char id[SW_UUID_STR_LEN + 1];
    if (!t) {
        sw_uuid_format(&c->id, id);
        visor_cmd_reply_error(&v->q, c, 404, "not_found", "no transport %s", id);
    }
    return t;
}

/* add-tp on a transport that exists: remember it and dial now unless it is up. */
static void add_existing(struct visor *v, struct visor_cmd *c, struct visor_transport *t)
{
    if (c->addr[0])
        snprintf(t->addr, sizeof(t->addr), "%s", c->addr);
    if (!t->remembered) {
        t->remembered = true;
        visor_store_save(v);
    }
    if (t->state == VISOR_TP_UP) {
        visor_cmd_reply(&v->q, c, 200, visor_tm_transport_json(v, t));
        return;
    }
    if (t->waiter) {
        visor_cmd_reply_error(&v->q, c, 409, "busy", "an add-tp for this transport is still waiting");
        return;
    }
    t->waiter = c;
    sw_backoff_reset(&t->redial_backoff);
    evtimer_del(t->redial);
    visor_tp_dial(v, t);
}

static void cmd_add(struct visor *v, struct visor_cmd *c)
{
    struct visor_transport *t = visor_tp_find(v, &c->pk, c->type);
    struct sw_error err = { 0 };

    if (sw_pk_equal(&c->pk, &v->cfg.kp.pk)) {
        visor_cmd_reply_error(&v->q, c, 400, "invalid_public_key",
                              "a transport to our own key makes no sense");
        return;
    }
    if (t) {
        add_existing(v, c, t);
        return;
    }
    if (c->type == VISOR_TP_STCP && !c->addr[0] && !visor_config_pk_addr(&v->cfg, &c->pk)) {
        visor_cmd_reply_error(&v->q, c, 400, "no_address",
                              "no stcp address for this key: give \"address\" or list it in stcp.pk_table");
        return;
    }
    if (c->type == VISOR_TP_DMSG && !visor_dmsg_enabled(v)) {
        visor_cmd_reply_error(&v->q, c, 400, "dmsg_disabled",
                              "dmsg transports need messaging.discovery in the config");
        return;
    }
    if (!(t = visor_tp_new(v, &c->pk, c->type, &err))) {
        visor_cmd_reply_error(&v->q, c, 503, "no_capacity", "%s", err.msg);
        return;
    }
    snprintf(t->addr, sizeof(t->addr), "%s", c->addr);
    t->remembered = true;
    t->provisional = true;
    t->waiter = c;
    visor_tp_dial(v, t); /* on failure t is gone and the waiter answered */
}

/* Forgets t for good: CLOSE to the peer, the discovery entry, the store; answers c. */
static void remove_now(struct visor *v, struct visor_transport *t, struct visor_cmd *c)
{
    struct json_object *o;
    struct visor_link *l;
    char id[SW_UUID_STR_LEN + 1];
    uint8_t reason = VISOR_TP_CLOSE_REMOVED;

    sw_uuid_format(&t->entry.id, id);
    sw_log_info("transport %s %s: removed by the operator", id, visor_tp_kind_name(t->kind));
    if ((l = t->link) && visor_link_send(l, VISOR_TP_PKT_CLOSE, &reason, 1) == SW_OK) {
        /* flush the CLOSE so the peer forgets it too instead of reporting it down */
        visor_tp_fold_bytes(t, l);
        t->link = NULL;
        l->tp = NULL;
        visor_link_close(l, true, "removed by the operator");
    }
    visor_tpd_cancel(v->tpd, &t->entry.id);
    visor_tpd_delete(v->tpd, &t->entry.id);
    visor_tp_free(v, t);
    visor_store_save(v);
    o = json_object_new_object();
    json_object_object_add(o, "removed", json_object_new_string(id));
    visor_cmd_reply(&v->q, c, 200, o);
}

/* Make-before-break: waits until no route group leaves here over t (they are moving onto new
 * routes) or VISOR_TP_REMOVE_GRACE_MS passed, then removes it. */
static void removing_cb(evutil_socket_t fd, short what, void *arg)
{
    struct visor_transport *t = arg;
    struct visor *v = t->v;
    struct visor_cmd *c;
    struct timeval tick = { 0, 20000 };

    if (visor_group_count_on(v, &t->entry.id) > 0 && sw_mono_ms() < t->remove_deadline_ms) {
        evtimer_add(t->remove_ev, &tick);
        return;
    }
    c = t->remove_cmd;
    t->remove_cmd = NULL; /* answered here, not by visor_tp_free */
    remove_now(v, t, c);
}

static void cmd_remove(struct visor *v, struct visor_cmd *c)
{
    struct visor_transport *t = find_or_404(v, c);
    struct timeval tick = { 0, 20000 };

    if (!t)
        return;
    if (t->remove_cmd) {
        visor_cmd_reply_error(&v->q, c, 409, "removing", "the transport is being removed already");
        return;
    }
    if (t->state != VISOR_TP_UP || visor_group_transport_leaving(v, &t->entry.id) == 0 ||
        !(t->remove_ev = evtimer_new(v->base, removing_cb, t))) {
        remove_now(v, t, c);
        return;
    }
    sw_log_info("transport %s: route groups over it are moving to other routes before it goes",
                visor_tp_kind_name(t->kind));
    t->remove_cmd = c;
    t->remove_deadline_ms = sw_deadline_ms(VISOR_TP_REMOVE_GRACE_MS);
    evtimer_add(t->remove_ev, &tick);
}

static void cmd_discard(struct visor *v, struct visor_cmd *c)
{
    struct visor_transport *t = find_or_404(v, c);
    struct json_object *o;

    if (!t)
        return;
    if (t->state != VISOR_TP_UP) {
        visor_cmd_reply_error(&v->q, c, 409, "not_up", "the transport is %s",
                              visor_tp_state_name(t->state));
        return;
    }
    t->discard_left += c->n;
    visor_tp_pump_discard(t);
    o = json_object_new_object();
    json_object_object_add(o, "queued", json_object_new_uint64(c->n));
    visor_cmd_reply(&v->q, c, 202, o);
}

static void cmd_shutdown(struct visor *v, struct visor_cmd *c)
{
    visor_tm_shutdown(v);
    visor_cmdq_close(&v->q);
    visor_cmd_release(&v->q, c);
    event_base_loopexit(v->base, NULL);
}

void visor_tm_cmd(struct visor *v, struct visor_cmd *c)
{
    if (v->stopping && c->kind != VISOR_CMD_SHUTDOWN) {
        visor_cmd_reply_error(&v->q, c, 503, "shutting_down", "the visor is shutting down");
        return;
    }
    switch (c->kind) {
    case VISOR_CMD_SUMMARY: cmd_summary(v, c); break;
    case VISOR_CMD_LIST: cmd_list(v, c); break;
    case VISOR_CMD_GET: {
        struct visor_transport *t = find_or_404(v, c);
        if (t)
            visor_cmd_reply(&v->q, c, 200, visor_tm_transport_json(v, t));
        break;
    }
    case VISOR_CMD_ADD: cmd_add(v, c); break;
    case VISOR_CMD_REMOVE: cmd_remove(v, c); break;
    case VISOR_CMD_DISCARD: cmd_discard(v, c); break;
    case VISOR_CMD_DMSG_INCOMING:
        visor_tm_dmsg_incoming(v, c->fd, &c->pk);
        c->fd = -1;
        visor_cmd_release(&v->q, c);
        break;
    case VISOR_CMD_DMSG_DIALED:
        visor_tm_dmsg_dialed(v, &c->pk, c->fd, c->why);
        c->fd = -1;
        visor_cmd_release(&v->q, c);
        break;
    case VISOR_CMD_SHUTDOWN: cmd_shutdown(v, c); break;
    case VISOR_CMD_CALL: c->fn(v, c); break;
    }
}

/* ---- the tick ------------------------------------------------------------------------ */

static void keepalive(struct visor *v, struct visor_transport *t, int64_t now)
{
    struct visor_link *l = t->link;
    uint8_t tok[8];
    int64_t idle;

    if (!l || l->state != VISOR_LINK_OPEN)
        return;
    idle = now - l->last_rx_ms;
    if (idle >= VISOR_DEAD_MS) {
        visor_link_close(l, false, "keepalive: nothing received for %lld s", (long long)idle / 1000);
        return;
    }
    if (idle >= VISOR_PING_IDLE_MS && now - t->last_ping_ms >= VISOR_PING_IDLE_MS) {
        t->last_ping_ms = now;
        t->ping_token++;
        for (int i = 0; i < 8; i++)
            tok[i] = (uint8_t)(t->ping_token >> (56 - 8 * i));
        visor_link_send(l, VISOR_TP_PKT_PING, tok, sizeof(tok));
    }
}

/* Keeps the discovery's entries of up transports fresh within its TTL. */
static void refresh(struct visor *v)
{
    struct sw_tp_signed_entry *reg = calloc(REFRESH_BATCH, sizeof(*reg));
    struct sw_uuid *ups = calloc(REFRESH_BATCH, sizeof(*ups));
    struct visor_transport *t;
    size_t nr = 0, nu = 0;

    if (!reg || !ups)
        goto out;
    TAILQ_FOREACH(t, &v->transports, next) {
        if (t->state != VISOR_TP_UP)
            continue;
        if (visor_tp_local_is_lower(v, t))
            visor_tp_signed_entry(v, t, &reg[nr++]);
        else
            ups[nu++] = t->entry.id;
        if (nr == REFRESH_BATCH) {
            visor_tpd_register_batch(v->tpd, reg, nr);
            nr = 0;
        }
        if (nu == REFRESH_BATCH) {
            visor_tpd_status_batch(v->tpd, ups, nu, true);
            nu = 0;
        }
    }
    if (nr)
        visor_tpd_register_batch(v->tpd, reg, nr);
    if (nu)
        visor_tpd_status_batch(v->tpd, ups, nu, true);
out:
    free(reg);
    free(ups);
}

void visor_tm_tick(struct visor *v)
{
    struct visor_transport *t;
    int64_t now = sw_mono_ms();
    uint64_t up = 0, sent = 0, recv = 0;

    TAILQ_FOREACH(t, &v->transports, next) {
        keepalive(v, t, now);
        up += t->state == VISOR_TP_UP;
        sent += visor_tm_bytes_sent(t);
        recv += visor_tm_bytes_received(t);
    }
    if (sent != v->m_sent || recv != v->m_received)
        v->store_dirty = true;
    v->m_up = up;
    v->m_total = v->n_transports;
    v->m_sent = sent;
    v->m_received = recv;
    if (v->store_urgent || (v->store_dirty && now - v->last_save_ms >= VISOR_SAVE_EVERY_MS))
        visor_store_save(v);
    if (now - v->last_refresh_ms >= VISOR_REFRESH_EVERY_MS) {
        v->last_refresh_ms = now;
        refresh(v);
    }
    visor_tm_check_members(v);
}

void visor_tm_shutdown(struct visor *v)
{
    struct sw_uuid *ids = calloc(REFRESH_BATCH, sizeof(*ids));
    struct visor_transport *t;
    struct visor_link *l;
    size_t n = 0, total = 0;

    TAILQ_FOREACH(t, &v->transports, next) {
        if (t->state == VISOR_TP_UP && ids) {
            ids[n++] = t->entry.id;
            total++;
        }
        if (n == REFRESH_BATCH) {
            visor_tpd_status_batch(v->tpd, ids, n, false);
            n = 0;
        }
        if (t->link)
            visor_tp_fold_bytes(t, t->link);
        t->link = NULL;
        t->dial = NULL;
        t->state = VISOR_TP_DOWN;
    }
    if (n)
        visor_tpd_status_batch(v->tpd, ids, n, false);
    free(ids);
    v->stopping = true;
    LIST_FOREACH(l, &v->links, all) {
        l->tp = NULL;
        visor_link_close(l, false, "shutting down");
    }
    visor_store_save(v);
    visor_stcp_close(v);
    sw_log_info("stopping: status down queued for %zu transports, %zu transports saved", total,
                v->n_transports);
}
