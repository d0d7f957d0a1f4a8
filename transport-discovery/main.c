/* transport-discovery — REST + PostgreSQL registry of transports between visors. */
#include "common/clock.h"
#include "common/log.h"
#include "common/service.h"
#include "transport-discovery/api.h"
#include "transport-discovery/members.h"

#include <stdio.h>
#include <string.h>

struct td_main {
    struct td_app app; /* first: handlers receive it as req->app */
    long ttl_s;        /* --ttl, copied into the store at start */
    long purge_s;
    long reap_interval_s;
    const char *network; /* --network: a private network's key (hex or file), or NULL */
};

static int migrate(void *arg, struct sw_db *db, struct sw_error *err)
{
    struct td_main *m = arg;
    m->app.store.db = db;
    m->app.store.ttl_s = m->ttl_s;
    return td_store_migrate(&m->app.store, err);
}

/* Private network: the policy, and the revocation list stored by any instance. */
/* The policy lives as long as the process: the reaper may still run while the service
 * stops, and it has no thread of its own to join (no --revocations source). */
static int open_network(struct td_main *m)
{
    struct sw_network_opts o = { .network_pk = m->network };
    struct sw_error err = { 0 };
    char pk[SW_PK_HEX_LEN + 1];
    if (sw_network_open(&m->app.net, &o, &err)) {
        sw_log_error("--network: %s", err.msg);
        return -1;
    }
    if (!m->app.net) {
        sw_log_info("open network: any key may register transports");
        return 0;
    }
    if (td_revocations_sync(&m->app, &err))
        sw_log_warn("stored revocation list: %s", err.msg);
    sw_pk_to_hex(sw_network_key(m->app.net), pk);
    sw_log_info("private network %s: only members with role visor may register transports", pk);
    return 0;
}

static int prepare(void *arg, struct sw_db *db)
{
    struct td_main *m = arg;
    if (td_store_prepare(&m->app.store) || td_members_prepare(&m->app.store) ||
        sw_nonce_store_init(&m->app.nonces, db, "td_nonces"))
        return -1;
    if (open_network(m))
        return -1;
    sw_log_info("an edge's opinion not refreshed within %llds counts as down; transports are purged %lds after "
                "both edges' last report",
                (long long)m->app.store.ttl_s, m->purge_s);
    return 0;
}

/* Private network: takes a list another instance stored, drops certificates that ended
 * longer than --purge-after ago, and counts members. */
static void reap_members(struct td_main *m)
{
    static char last_error[SW_ERROR_MSG_MAX]; /* the reaper's thread alone */
    struct sw_error err = { 0 };
    int64_t now = sw_unix_ms() / 1000, purged = 0, total, valid;
    if (!m->app.net)
        return;
    if (td_revocations_sync(&m->app, &err) == SW_OK)
        last_error[0] = '\0';
    else if (strcmp(last_error, err.msg) != 0) { /* once per cause */
        sw_log_warn("stored revocation list: %s", err.msg);
        snprintf(last_error, sizeof(last_error), "%s", err.msg);
    }
    err.msg[0] = '\0';
    if (td_members_purge(&m->app.store, now - m->purge_s, &purged, &err) ||
        td_members_count(&m->app.store, now, &total, &valid, &err)) {
        sw_log_warn("reaper: members: %s", err.msg);
        return;
    }
    atomic_store(&m->app.members_total, total);
    atomic_store(&m->app.members_valid, valid);
    if (purged)
        sw_log_info("reaper: %lld certificate(s) ended more than %lds ago deleted", (long long)purged, m->purge_s);
}

/* Marks stale transports down and refreshes the gauges. */
static void reap(void *arg)
{
    struct td_main *m = arg;
    struct td_counts counts;
    struct sw_error err = { 0 };
    reap_members(m);
    if (td_store_reap(&m->app.store, m->purge_s, &counts, &err) != SW_OK) {
        sw_log_warn("reaper: %s", err.msg);
        return;
    }
    atomic_store(&m->app.transports_total, counts.total);
    atomic_store(&m->app.transports_up, counts.up);
    atomic_fetch_add(&m->app.expired_total, (uint64_t)counts.expired_now);
    atomic_fetch_add(&m->app.purged_total, (uint64_t)counts.purged_now);
    if (counts.expired_now || counts.purged_now)
        sw_log_info("reaper: %lld transport(s) with an edge marked down after the TTL, %lld purged",
                    (long long)counts.expired_now, (long long)counts.purged_now);
}

int main(int argc, char **argv)
{
    static struct td_main m;
    const struct sw_opt options[] = {
        SW_OPT_NUM("ttl", "SECONDS", "an edge's opinion not refreshed within this counts as down (default 300)",
                   &m.ttl_s, 1, 86400L * 365),
        SW_OPT_NUM("purge-after", "SECONDS", "delete transports neither edge refreshed within this (default 86400)",
                   &m.purge_s, 1, 86400L * 3650),
        SW_OPT_NUM("reap-interval", "SECS", "how often stale opinions are marked down (default 10)",
                   &m.reap_interval_s, 1, 3600),
        SW_OPT_CALL("network", "PK", "private network: the network's public key (hex, or a file holding it); only its members\n"
                    "(certificates with role visor, SW-Cert header and entry \"certs\") may register\n"
                    "transports or post statuses; serves GET/PUT /network/revocations", sw_network_opt_key,
                    &m.network),
        SW_OPT_END,
    };
    const struct sw_service_def def = {
        .name = "transport-discovery",
        .default_addr = "0.0.0.0:9091",
        .options = options,
        .migrate = migrate,
        .prepare = prepare,
        .routes = td_routes,
        .n_routes = td_n_routes,
        .write_metrics = td_write_metrics,
        .periodic = reap,
        .periodic_interval_s = &m.reap_interval_s,
    };
    m.ttl_s = 300;
    m.purge_s = 86400;
    m.reap_interval_s = 10;
    pthread_mutex_init(&m.app.revs.mu, NULL);
    return sw_service_main(&def, &m, argc, argv);
}
