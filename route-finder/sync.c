#include "route-finder/sync.h"
#include "common/backoff.h"
#include "common/clock.h"
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- publishing ---------------------------------------------------------------------- */

static void publish(struct rf_sync *s, struct rf_graph *g)
{
    struct rf_graph *old;
    pthread_mutex_lock(&s->mu);
    old = s->graph;
    s->graph = g;
    pthread_mutex_unlock(&s->mu);
    rf_graph_unref(old);
    atomic_store(&s->published_ms, sw_mono_ms());
}

struct rf_graph *rf_sync_graph(struct rf_sync *s)
{
    struct rf_graph *g;
    pthread_mutex_lock(&s->mu);
    g = rf_graph_ref(s->graph);
    pthread_mutex_unlock(&s->mu);
    return g;
}

bool rf_sync_loaded(struct rf_sync *s)
{
    return atomic_load(&s->loaded);
}

/* A snapshot of rows; on a private network, of the rows masked by the members (members.h). */
static int build(struct rf_sync *s, const struct rf_row *rows, size_t n, struct rf_graph **g)
{
    int64_t now = sw_unix_ms() / 1000, next;
    struct rf_row *masked;
    int rc;
    if (!s->net)
        return rf_graph_build(rows, n, g);
    /* read first: a list that arrives while masking is noticed at the next look */
    s->net_generation = sw_network_generation(s->net);
    if (!(masked = rf_members_mask(&s->members, s->net, rows, n, now, s->ttl_s, &next)))
        return SW_ENOMEM;
    rc = rf_graph_build(masked, n, g);
    free(masked);
    s->next_member_s = next;
    atomic_store(&s->members_valid, rf_members_valid(&s->members, s->net, now));
    return rc;
}

/* Spaces the next rebuild after one that took since t0 (see RF_SYNC_GAP_FACTOR). */
static void space_rebuilds(struct rf_sync *s, int64_t t0)
{
    int64_t gap = sw_ms_since(t0) * RF_SYNC_GAP_FACTOR;
    s->next_apply_ms = sw_deadline_ms(gap > RF_SYNC_GAP_MAX_MS ? RF_SYNC_GAP_MAX_MS : gap);
}

/* Builds a snapshot of rows (sorted) and publishes it; takes ownership of rows. */
static int install(struct rf_sync *s, struct rf_row *rows, size_t n, struct sw_error *err)
{
    struct rf_graph *g;
    int64_t t0 = sw_mono_ms();
    int rc = build(s, rows, n, &g);
    if (rc) {
        free(rows);
        return sw_error_set(err, rc, "building the graph of %zu transports: %s", n, sw_strerror(rc));
    }
    free(s->rows);
    s->rows = rows;
    s->n_rows = n;
    publish(s, g);
    space_rebuilds(s, t0);
    return SW_OK;
}

/* ---- full load ----------------------------------------------------------------------- */

static int full_load(struct rf_sync *s, const char *why, struct sw_error *err)
{
    int64_t t0 = sw_mono_ms();
    struct rf_row *rows = NULL;
    struct rf_graph *g;
    size_t n = 0;
    int rc;

    if ((rc = rf_store_load_all(s->pg, &rows, &n, err)))
        return rc;
    rf_rows_sort(rows, n);
    if ((rc = install(s, rows, n, err)))
        return rc;
    atomic_store(&s->last_load_us, (uint64_t)sw_ms_since(t0) * 1000);
    atomic_fetch_add(&s->full_loads, 1);
    atomic_store(&s->loaded, true);
    g = rf_sync_graph(s);
    sw_log_info("graph loaded (%s): %u keys, %u transports (%u up) in %lld ms", why, g->n_nodes,
                g->n_edges, rf_graph_usable_edges(g, 0), (long long)sw_ms_since(t0));
    rf_graph_unref(g);
    return SW_OK;
}

/* ---- incremental update -------------------------------------------------------------- */

static int uuid_qcmp(const void *a, const void *b)
{
    return rf_uuid_cmp(a, b);
}

static size_t sort_unique(struct sw_uuid *ids, size_t n)
{
    size_t k = 0;
    qsort(ids, n, sizeof(*ids), uuid_qcmp);
    for (size_t i = 0; i < n; i++)
        if (k == 0 || !sw_uuid_equal(&ids[k - 1], &ids[i]))
            ids[k++] = ids[i];
    return k;
}

static bool row_equal(const struct rf_row *a, const struct rf_row *b)
{
    return sw_uuid_equal(&a->id, &b->id) && sw_pk_equal(&a->a, &b->a) && sw_pk_equal(&a->b, &b->b) &&
           a->updated == b->updated && a->up == b->up;
}

struct merge {
    const struct rf_row *old;  /* sorted */
    size_t n_old;
    const struct sw_uuid *ids; /* sorted, unique: every t_id that was notified */
    size_t n_ids;
    const struct rf_row *found; /* sorted: those of ids that still exist */
    size_t n_found;
};

/* New sorted table: old rows, with each notified t_id replaced by its row as re-read, or
 * dropped when it no longer exists. *changed when anything differs. */
static struct rf_row *merge_rows(const struct merge *m, size_t *n, bool *changed)
{
    struct rf_row *out = malloc((m->n_old + m->n_found + 1) * sizeof(*out));
    size_t i = 0, j = 0, f = 0, k = 0;
    if (!out)
        return NULL;
    *changed = false;
    while (i < m->n_old || j < m->n_ids) {
        int cmp = i == m->n_old ? 1 : j == m->n_ids ? -1 : rf_uuid_cmp(&m->old[i].id, &m->ids[j]);
        bool was = cmp == 0, is = f < m->n_found && j < m->n_ids && sw_uuid_equal(&m->found[f].id, &m->ids[j]);
        if (cmp < 0) {
            out[k++] = m->old[i++];
            continue;
        }
        if (is)
            out[k++] = m->found[f];
        *changed |= was != is || (was && is && !row_equal(&m->old[i], &m->found[f]));
        f += is;
        i += was;
        j++;
    }
    *n = k;
    return out;
}

static int reread(struct rf_sync *s, struct sw_error *err)
{
    int64_t t0 = sw_mono_ms();
    struct rf_row *found = NULL, *rows;
    size_t n_ids = sort_unique(s->pending, s->n_pending), n_found = 0, n = 0;
    bool changed = false;
    int rc;

    if ((rc = rf_store_load_ids(s->pg, s->pending, n_ids, &found, &n_found, err)))
        return rc;
    rf_rows_sort(found, n_found);
    {
        struct merge m = { s->rows, s->n_rows, s->pending, n_ids, found, n_found };
        rows = merge_rows(&m, &n, &changed);
    }
    free(found);
    if (!rows)
        return sw_error_set(err, SW_ENOMEM, "out of memory merging %zu changes", n_ids);
    if (!changed) {
        free(rows);
        return SW_OK;
    }
    if ((rc = install(s, rows, n, err)))
        return rc;
    atomic_fetch_add(&s->updates, 1);
    sw_log_debug("graph updated: %zu transport(s) re-read, %zu in the table, in %lld ms", n_ids, n,
                 (long long)sw_ms_since(t0));
    return SW_OK;
}

static int apply_pending(struct rf_sync *s, struct sw_error *err)
{
    int rc = s->pending_overflow ? full_load(s, "many changes at once", err) : reread(s, err);
    s->n_pending = 0;
    s->pending_overflow = false;
    return rc;
}

/* ---- membership (private network) ------------------------------------------------------ */

/* Members and, unless net reads them itself, the stored revocation list. A list that does
 * not verify is logged and skipped (the last good one stays); only the database's failures
 * end the session. */
static int reload_members(struct rf_sync *s, struct sw_error *err)
{
    struct rf_members m;
    struct sw_error why = { 0 };
    size_t bad = 0;
    int rc;

    if (!s->net_has_source && (rc = rf_members_load_revocations(s->pg, s->net, &why))) {
        if (rc == SW_EDB)
            return sw_error_set(err, rc, "%s", why.msg);
        sw_log_warn("td_revocations: %s; keeping the list in use", why.msg);
    }
    if ((rc = rf_members_load(s->pg, s->net, &s->members, &m, &bad, err)))
        return rc;
    rf_members_free(&s->members);
    s->members = m;
    s->members_dirty = false;
    atomic_fetch_add(&s->members_reloads, 1);
    sw_log_debug("members loaded: %zu certificate(s), %zu not of this network's visors", m.n, bad);
    return SW_OK;
}

/* Rebuilds the snapshot from the rows in memory when membership changed: members notified,
 * a new revocation list, or a certificate that became valid. */
static int membership_tick(struct rf_sync *s, struct sw_error *err)
{
    int64_t t0 = sw_mono_ms(), now_s = sw_unix_ms() / 1000;
    uint64_t gen, issued_at;
    uint32_t revoked;
    struct rf_graph *g;
    bool rebuild, new_list;
    int rc;

    if (!s->net || t0 < s->next_apply_ms)
        return SW_OK;
    rebuild = s->members_dirty;
    if (s->members_dirty && (rc = reload_members(s, err)))
        return rc;
    gen = sw_network_generation(s->net);
    new_list = gen != s->net_generation;
    rebuild |= new_list || (s->next_member_s && now_s >= s->next_member_s);
    if (!rebuild)
        return SW_OK;
    if ((rc = build(s, s->rows, s->n_rows, &g)))
        return sw_error_set(err, rc, "building the graph of %zu transports: %s", s->n_rows, sw_strerror(rc));
    publish(s, g);
    space_rebuilds(s, t0);
    atomic_fetch_add(&s->updates, 1);
    sw_network_revocations_info(s->net, &issued_at, &revoked);
    /* a new list is an operator's act; members come and go with every new visor */
    if (new_list)
        sw_log_info("graph rebuilt for the revocation list issued at %llu (%u key(s)): %llu member(s) valid",
                    (unsigned long long)issued_at, revoked, (unsigned long long)atomic_load(&s->members_valid));
    else
        sw_log_debug("graph rebuilt for membership: %llu member(s) valid",
                     (unsigned long long)atomic_load(&s->members_valid));
    return SW_OK;
}

/* Poll timeout for membership: the rebuild spacing after a notification, the next look at
 * net's own source, the next certificate becoming valid; -1 for none. */
static int membership_wait_ms(const struct rf_sync *s)
{
    int64_t now = sw_mono_ms(), wait = -1;
    if (!s->net)
        return -1;
    if (s->members_dirty)
        wait = s->next_apply_ms > now ? s->next_apply_ms - now : 0;
    if (s->net_has_source && (wait < 0 || wait > RF_SYNC_NET_CHECK_MS))
        wait = RF_SYNC_NET_CHECK_MS;
    if (s->next_member_s) {
        int64_t until = s->next_member_s * 1000 - sw_unix_ms();
        if (until < 0)
            until = 0;
        if (wait < 0 || until < wait)
            wait = until;
    }
    if (wait >= 0 && now + wait < s->next_apply_ms) /* no spinning through the spacing */
        wait = s->next_apply_ms - now;
    return wait < 0 ? -1 : wait > INT32_MAX ? INT32_MAX : (int)wait;
}

/* ---- notifications ------------------------------------------------------------------- */

static void note(struct rf_sync *s, const char *payload)
{
    struct sw_uuid id;
    if (s->n_pending == 0 && !s->pending_overflow)
        s->pending_since_ms = sw_mono_ms();
    if (sw_uuid_parse(&id, payload, "notification", NULL) != SW_OK || s->n_pending == RF_SYNC_REREAD_MAX) {
        s->pending_overflow = true;
        return;
    }
    s->pending[s->n_pending++] = id;
}

static void drain(struct rf_sync *s)
{
    PGnotify *n;
    while ((n = PQnotifies(s->pg))) {
        if (strcmp(n->relname, RF_NOTIFY_CHANNEL) == 0) {
            atomic_fetch_add(&s->notifications, 1);
            note(s, n->extra);
        } else if (strcmp(n->relname, RF_MEMBERSHIP_CHANNEL) == 0) {
            s->members_dirty = true;
        }
        PQfreemem(n);
    }
}

static bool has_pending(const struct rf_sync *s)
{
    return s->n_pending > 0 || s->pending_overflow;
}

/* Poll timeout: forever when idle; otherwise until the stream has been quiet long enough
 * or the batch is old enough, but not before the rebuild spacing allows. */
static int wait_ms(const struct rf_sync *s)
{
    int64_t now = sw_mono_ms(), until;
    if (!has_pending(s))
        return -1;
    until = s->pending_since_ms + RF_SYNC_BATCH_MS;
    if (until > now + RF_SYNC_QUIET_MS)
        until = now + RF_SYNC_QUIET_MS;
    if (until < s->next_apply_ms)
        until = s->next_apply_ms;
    return until <= now ? 0 : (int)(until - now);
}

/* Whether to apply the pending changes now: quiet (or old) enough, and spaced enough. */
static bool due(const struct rf_sync *s, bool quiet)
{
    int64_t now = sw_mono_ms();
    return has_pending(s) && now >= s->next_apply_ms &&
           (quiet || now >= s->pending_since_ms + RF_SYNC_BATCH_MS);
}

static int lost(struct rf_sync *s, struct sw_error *err)
{
    char msg[160];
    rf_store_pg_message(s->pg, msg, sizeof(msg));
    return sw_error_set(err, SW_EDB, "connection lost%s%s", msg[0] ? ": " : "", msg);
}

/* Serves notifications until stop (SW_OK) or a lost session (SW_EDB). */
static int listen_loop(struct rf_sync *s, struct sw_error *err)
{
    for (;;) {
        struct pollfd p[2] = { { PQsocket(s->pg), POLLIN, 0 }, { s->wake[0], POLLIN, 0 } };
        int ready;
        /* Notifications that arrived with a query's results (the full load, a re-read) are
         * already in libpq's buffer: the socket will not signal them (libpq: check
         * PQnotifies after each PQexec). */
        drain(s);
        int rows_ms = wait_ms(s), members_ms = membership_wait_ms(s);
        ready = poll(p, 2, rows_ms < 0 || (members_ms >= 0 && members_ms < rows_ms) ? members_ms : rows_ms);
        if (ready < 0 && errno != EINTR)
            return sw_error_set(err, SW_EIO, "poll: %s", strerror(errno));
        if (atomic_load(&s->stop))
            return SW_OK;
        if (ready > 0 && (p[0].revents & (POLLIN | POLLERR | POLLHUP))) {
            if (!PQconsumeInput(s->pg) || PQstatus(s->pg) != CONNECTION_OK)
                return lost(s, err);
            drain(s);
        }
        if (due(s, ready == 0)) {
            int rc = apply_pending(s, err);
            if (rc)
                return rc;
        }
        int rc = membership_tick(s, err);
        if (rc)
            return rc;
    }
}

/* ---- sessions -------------------------------------------------------------------------- */

static void close_session(struct rf_sync *s)
{
    PQfinish(s->pg);
    s->pg = NULL;
    s->n_pending = 0;
    s->pending_overflow = false;
    atomic_store(&s->connected, false);
}

/* LISTEN first, then read everything: a change committed in between is both in the table
 * and notified, never lost. */
static int open_session(struct rf_sync *s, struct sw_error *err)
{
    int rc;
    if (!(s->pg = rf_store_connect(&s->conninfo, err)))
        return SW_EDB;
    if ((rc = rf_store_command(s->pg, "LISTEN " RF_NOTIFY_CHANNEL, err)) ||
        (s->net && (rc = rf_store_command(s->pg, "LISTEN " RF_MEMBERSHIP_CHANNEL, err))) ||
        (s->net && (rc = reload_members(s, err))) ||
        (rc = full_load(s, s->failed_attempts || atomic_load(&s->loaded) ? "reconnected" : "start", err))) {
        close_session(s);
        return rc;
    }
    atomic_store(&s->connected, true);
    return SW_OK;
}

/* Sleeps up to ms unless asked to stop; true when asked. */
static bool pause_or_stop(struct rf_sync *s, long ms)
{
    struct pollfd p = { s->wake[0], POLLIN, 0 };
    poll(&p, 1, (int)ms);
    return atomic_load(&s->stop);
}

static void session_failed(struct rf_sync *s, const struct sw_error *err)
{
    if (s->failed_attempts++ == 0)
        sw_log_warn("transport graph sync: %s; retrying until the database answers", err->msg);
    else
        sw_log_debug("transport graph sync: attempt %u: %s", s->failed_attempts, err->msg);
}

static void *sync_main(void *arg)
{
    struct rf_sync *s = arg;
    struct sw_backoff backoff = SW_BACKOFF_INIT(RF_SYNC_BACKOFF_MIN_MS, RF_SYNC_BACKOFF_MAX_MS, false);
    while (!atomic_load(&s->stop)) {
        struct sw_error err = { 0 };
        if (open_session(s, &err) != SW_OK) {
            session_failed(s, &err);
            if (pause_or_stop(s, (long)sw_backoff_next(&backoff)))
                break;
            continue;
        }
        s->failed_attempts = 0;
        sw_backoff_reset(&backoff);
        if (listen_loop(s, &err) != SW_OK) {
            sw_log_warn("transport graph sync: %s; serving the last graph while reconnecting", err.msg);
            atomic_fetch_add(&s->reconnects, 1);
        }
        close_session(s);
    }
    return NULL;
}

/* ---- life ------------------------------------------------------------------------------ */

static int init_thread_state(struct rf_sync *s, struct sw_error *err)
{
    struct rf_graph *empty;
    if (pthread_mutex_init(&s->mu, NULL))
        return sw_error_set(err, SW_ENOMEM, "mutex");
    s->mu_ready = true;
    if (pipe2(s->wake, O_CLOEXEC | O_NONBLOCK))
        return sw_error_set(err, SW_EIO, "pipe: %s", strerror(errno));
    s->wake_ready = true;
    s->pending = malloc(RF_SYNC_REREAD_MAX * sizeof(*s->pending));
    if (!s->pending || rf_graph_build(NULL, 0, &empty))
        return sw_error_set(err, SW_ENOMEM, "out of memory");
    s->graph = empty;
    return SW_OK;
}

int rf_sync_start(struct rf_sync *s, struct sw_db *db, struct sw_error *err)
{
    int rc;
    if ((rc = rf_conninfo_from_pool(db, &s->conninfo, err)) || (rc = init_thread_state(s, err)))
        return rc;
    if (pthread_create(&s->thread, NULL, sync_main, s) != 0)
        return sw_error_set(err, SW_ENOMEM, "cannot start the sync thread");
    s->running = true;
    return SW_OK;
}

void rf_sync_stop(struct rf_sync *s)
{
    if (s->running) {
        atomic_store(&s->stop, true);
        if (write(s->wake[1], "x", 1) < 0)
            sw_log_warn("sync: cannot wake the thread: %s", strerror(errno));
        pthread_join(s->thread, NULL);
        s->running = false;
    }
    if (s->pg)
        close_session(s);
    if (s->wake_ready) {
        close(s->wake[0]);
        close(s->wake[1]);
        s->wake_ready = false;
    }
    if (s->mu_ready) {
        pthread_mutex_destroy(&s->mu);
        s->mu_ready = false;
    }
    rf_graph_unref(s->graph);
    s->graph = NULL;
    free(s->rows);
    free(s->pending);
    s->rows = NULL;
    s->pending = NULL;
    rf_members_free(&s->members);
    rf_conninfo_free(&s->conninfo);
}
