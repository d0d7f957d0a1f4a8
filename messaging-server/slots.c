/* slots.c — handshake slots per source address (docs/messaging-server.md "Handshake slots").
 *
 * Every accepted connection holds a slot until its handshake ends (ready, failed, evicted).
 * A source is an IPv4 address or an IPv6 /64 (one host usually holds a whole /64); once
 * half of --max-handshakes are taken, a source may hold at most --max-handshakes-per-source
 * slots, and when all are taken the oldest pending handshake of the busiest source is
 * evicted for the newcomer (peers.c), so idle connections from a few addresses cannot lock
 * everyone else out.
 * Sources live in a SipHash table (keys chosen by clients cannot build long chains) and in
 * a list scanned for the busiest one at an eviction (at most --max-handshakes sources). */
#include "messaging-server/ms.h"
#include "common/log.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t v4_mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

void ms_slots_key(const struct sockaddr *sa, uint8_t key[MS_SOURCE_KEY_LEN])
{
    memset(key, 0, MS_SOURCE_KEY_LEN);
    if (sa && sa->sa_family == AF_INET) {
        memcpy(key, v4_mapped, sizeof(v4_mapped));
        memcpy(key + 12, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
    } else if (sa && sa->sa_family == AF_INET6) {
        const uint8_t *a = ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr;
        if (memcmp(a, v4_mapped, sizeof(v4_mapped)) == 0)
            memcpy(key, a, 16); /* an IPv4 client of a dual-stack listener */
        else
            memcpy(key, a, 8);  /* its /64 */
    }
}

void ms_slots_key_text(const uint8_t key[MS_SOURCE_KEY_LEN], char *out, size_t cap)
{
    char ip[INET6_ADDRSTRLEN];

    if (memcmp(key, v4_mapped, sizeof(v4_mapped)) == 0) {
        if (!inet_ntop(AF_INET, key + 12, ip, sizeof(ip)))
            snprintf(ip, sizeof(ip), "?");
        snprintf(out, cap, "%s", ip);
        return;
    }
    if (!inet_ntop(AF_INET6, key, ip, sizeof(ip)))
        snprintf(ip, sizeof(ip), "?");
    snprintf(out, cap, "%s/64", ip);
}

static void log_cb(evutil_socket_t fd, short what, void *arg);

int ms_slots_init(struct ms_server *srv)
{
    LIST_INIT(&srv->source_list);
    if (ms_table_init(&srv->sources, offsetof(struct ms_source, key) - offsetof(struct ms_source, node),
                      MS_SOURCE_KEY_LEN))
        return SW_ENOMEM;
    if (!(srv->slot_log.ev = evtimer_new(srv->base, log_cb, srv)))
        return SW_ENOMEM;
    return SW_OK;
}

void ms_slots_free(struct ms_server *srv)
{
    struct ms_source *src;

    while ((src = LIST_FIRST(&srv->source_list))) { /* peers were freed without release */
        LIST_REMOVE(src, link);
        free(src);
    }
    if (srv->slot_log.ev)
        event_free(srv->slot_log.ev);
    srv->slot_log.ev = NULL;
    ms_table_free(&srv->sources);
}

static struct ms_source *find(struct ms_server *srv, const uint8_t key[MS_SOURCE_KEY_LEN])
{
    struct ms_hnode *n = ms_table_find(&srv->sources, key);
    return n ? MS_CONTAINER(n, struct ms_source, node) : NULL;
}

long ms_slots_pending(struct ms_server *srv, const uint8_t key[MS_SOURCE_KEY_LEN])
{
    struct ms_source *src = find(srv, key);
    return src ? src->n : 0;
}

int ms_slots_take(struct ms_server *srv, struct ms_peer *p, const uint8_t key[MS_SOURCE_KEY_LEN])
{
    struct ms_source *src = find(srv, key);

    if (!src) {
        if (!(src = calloc(1, sizeof(*src))))
            return SW_ENOMEM;
        memcpy(src->key, key, MS_SOURCE_KEY_LEN);
        TAILQ_INIT(&src->pending);
        if (ms_table_insert(&srv->sources, &src->node)) {
            free(src);
            return SW_ENOMEM;
        }
        LIST_INSERT_HEAD(&srv->source_list, src, link);
        atomic_fetch_add(&srv->m.handshake_sources, 1);
    }
    TAILQ_INSERT_TAIL(&src->pending, p, src_link);
    src->n++;
    p->src = src;
    atomic_fetch_add(&srv->m.handshaking, 1);
    return SW_OK;
}

void ms_slots_release(struct ms_server *srv, struct ms_peer *p)
{
    struct ms_source *src = p->src;

    if (!src)
        return;
    p->src = NULL;
    TAILQ_REMOVE(&src->pending, p, src_link);
    atomic_fetch_sub(&srv->m.handshaking, 1);
    if (--src->n > 0)
        return;
    ms_table_remove(&srv->sources, &src->node);
    LIST_REMOVE(src, link);
    free(src);
    atomic_fetch_sub(&srv->m.handshake_sources, 1);
}

struct ms_peer *ms_slots_victim(struct ms_server *srv)
{
    struct ms_source *src, *best = NULL;

    LIST_FOREACH(src, &srv->source_list, link) {
        if (!best || src->n > best->n ||
            (src->n == best->n && TAILQ_FIRST(&src->pending)->serial < TAILQ_FIRST(&best->pending)->serial))
            best = src;
    }
    return best ? TAILQ_FIRST(&best->pending) : NULL;
}

/* The busiest source now, for the summary line. */
static void busiest(struct ms_server *srv, char *out, size_t cap)
{
    struct ms_peer *p = ms_slots_victim(srv);
    char who[INET6_ADDRSTRLEN + 8];

    if (!p) {
        snprintf(out, cap, "none pending now");
        return;
    }
    ms_slots_key_text(p->src->key, who, sizeof(who));
    snprintf(out, cap, "busiest source now %s with %ld pending", who, p->src->n);
}

static void log_cb(evutil_socket_t fd, short what, void *arg)
{
    struct ms_server *srv = arg;
    struct ms_slot_log *sl = &srv->slot_log;
    struct timeval tv = { MS_SLOT_LOG_MS / 1000, (MS_SLOT_LOG_MS % 1000) * 1000 };
    char top[INET6_ADDRSTRLEN + 64];

    if (sl->evicted + sl->refused == 0) {
        sl->open = false; /* a quiet period: the next one is logged at once */
        return;
    }
    busiest(srv, top, sizeof(top));
    sw_log_warn("handshake slots in the last %d s: %llu pending handshakes evicted (all %ld taken), "
                "%llu connections refused (their source had %ld pending, half or more taken); %s",
                MS_SLOT_LOG_MS / 1000, (unsigned long long)sl->evicted, srv->cfg.max_handshakes,
                (unsigned long long)sl->refused, srv->cfg.max_handshakes_per_source, top);
    sl->evicted = sl->refused = 0;
    evtimer_add(sl->ev, &tv);
}

void ms_slots_note(struct ms_server *srv, bool evicted, const uint8_t key[MS_SOURCE_KEY_LEN], long pending)
{
    struct ms_slot_log *sl = &srv->slot_log;
    struct timeval tv = { MS_SLOT_LOG_MS / 1000, (MS_SLOT_LOG_MS % 1000) * 1000 };
    char who[INET6_ADDRSTRLEN + 8];

    atomic_fetch_add(evicted ? &srv->m.handshakes_evicted : &srv->m.handshakes_source_limited, 1);
    if (sl->open) {
        if (evicted)
            sl->evicted++;
        else
            sl->refused++;
        return;
    }
    sl->open = true;
    ms_slots_key_text(key, who, sizeof(who));
    if (evicted)
        sw_log_warn("handshake slots: all %ld taken; evicted the oldest pending handshake of %s (%ld pending "
                    "from it); more are summed up every %d s", srv->cfg.max_handshakes, who, pending,
                    MS_SLOT_LOG_MS / 1000);
    else
        sw_log_warn("handshake slots: refused a connection from %s, which has %ld of the %lld pending "
                    "(--max-handshakes-per-source, once half of %ld are taken); more are summed up every %d s",
                    who, pending, (long long)atomic_load(&srv->m.handshaking), srv->cfg.max_handshakes,
                    MS_SLOT_LOG_MS / 1000);
    evtimer_add(sl->ev, &tv);
}
