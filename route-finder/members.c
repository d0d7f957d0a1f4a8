#include "route-finder/members.h"
#include "common/log.h"
#include "common/netcert.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

void rf_members_free(struct rf_members *m)
{
    free(m->v);
    m->v = NULL;
    m->n = 0;
}

static int member_cmp(const void *x, const void *y)
{
    return sw_pk_cmp(&((const struct rf_member *)x)->pk, &((const struct rf_member *)y)->pk);
}

static const struct rf_member *find(const struct rf_members *m, const struct sw_pk *pk)
{
    size_t lo = 0, hi = m ? m->n : 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = sw_pk_cmp(&m->v[mid].pk, pk);
        if (c == 0)
            return &m->v[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* A visor certificate of this network for pk, signed by the network key. The time window
 * is checked when the graph is built, not here: verifying "at not_before" checks the
 * signature and the network alone. */
static void judge(struct rf_member *m, struct sw_network *net, const uint8_t *cert, size_t len)
{
    struct sw_cert c;
    m->ok = false;
    if (sw_cert_parse(cert, len, &c, NULL) || !sw_pk_equal(&c.subject, &m->pk) ||
        c.role != SW_ROLE_VISOR || sw_cert_verify(&c, sw_network_key(net), c.not_before, NULL))
        return;
    m->ok = true;
    m->not_before = (int64_t)c.not_before;
    m->not_after = (int64_t)c.not_after;
}

int rf_members_load(PGconn *pg, struct sw_network *net, const struct rf_members *old,
                    struct rf_members *out, size_t *bad, struct sw_error *err)
{
    PGresult *res = PQexecParams(pg, "SELECT pk, cert FROM td_members", 0, NULL, NULL, NULL, NULL, 1);
    struct rf_members m = { 0 };
    int nt;

    *bad = 0;
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        char msg[200];
        snprintf(msg, sizeof(msg), "%s", PQerrorMessage(pg));
        msg[strcspn(msg, "\n")] = '\0';
        PQclear(res);
        return sw_error_set(err, SW_EDB, "reading td_members: %s", msg);
    }
    nt = PQntuples(res);
    if (!(m.v = malloc(((size_t)nt + 1) * sizeof(*m.v)))) {
        PQclear(res);
        return sw_error_set(err, SW_ENOMEM, "out of memory for %d members", nt);
    }
    for (int i = 0; i < nt; i++) {
        struct rf_member *r = &m.v[m.n];
        const struct rf_member *was;
        const uint8_t *cert = (const uint8_t *)PQgetvalue(res, i, 1);
        size_t len = (size_t)PQgetlength(res, i, 1);
        if (PQgetisnull(res, i, 0) || PQgetlength(res, i, 0) != SW_PK_LEN || PQgetisnull(res, i, 1)) {
            (*bad)++;
            continue;
        }
        memset(r, 0, sizeof(*r));
        memcpy(r->pk.b, PQgetvalue(res, i, 0), SW_PK_LEN);
        crypto_generichash(r->digest, sizeof(r->digest), cert, len, NULL, 0);
        was = find(old, &r->pk);
        if (was && memcmp(was->digest, r->digest, sizeof(r->digest)) == 0)
            *r = *was;
        else
            judge(r, net, cert, len);
        *bad += !r->ok;
        m.n++;
    }
    PQclear(res);
    qsort(m.v, m.n, sizeof(*m.v), member_cmp);
    *out = m;
    return SW_OK;
}

int rf_members_load_revocations(PGconn *pg, struct sw_network *net, struct sw_error *err)
{
    char net_hex[2 * SW_PK_LEN + 3] = "\\x";
    const char *params[1] = { net_hex };
    PGresult *res;
    int rc = SW_OK;

    sw_pk_to_hex(sw_network_key(net), net_hex + 2);
    res = PQexecParams(pg, "SELECT list FROM td_revocations WHERE network = $1::bytea", 1, NULL, params,
                       NULL, NULL, 1);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        char msg[200];
        snprintf(msg, sizeof(msg), "%s", PQerrorMessage(pg));
        msg[strcspn(msg, "\n")] = '\0';
        rc = sw_error_set(err, SW_EDB, "reading td_revocations: %s", msg);
    } else if (PQntuples(res) == 1) {
        rc = sw_network_offer_revocations(net, (const uint8_t *)PQgetvalue(res, 0, 0),
                                          (size_t)PQgetlength(res, 0, 0), err);
        if (rc == SW_ECONFLICT) /* the one in use already */
            rc = SW_OK;
    }
    PQclear(res);
    return rc;
}

/* Until when (unix seconds, exclusive) pk is a member, seen at now; 0 when it is not. */
static int64_t member_until(const struct rf_members *m, struct sw_network *net,
                            const struct sw_pk *pk, int64_t now)
{
    const struct rf_member *r = find(m, pk);
    if (!r || !r->ok || now + SW_CERT_CLOCK_SKEW_S < r->not_before || now >= r->not_after ||
        sw_network_revoked(net, pk))
        return 0;
    return r->not_after;
}

struct rf_row *rf_members_mask(const struct rf_members *m, struct sw_network *net,
                               const struct rf_row *rows, size_t n, int64_t now, int64_t ttl_s,
                               int64_t *next_s)
{
    struct rf_row *out = malloc((n + 1) * sizeof(*out));
    *next_s = 0;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        struct rf_row *r = &out[i];
        int64_t ua, ub, cap;
        *r = rows[i];
        if (!r->up)
            continue;
        ua = member_until(m, net, &r->a, now);
        ub = member_until(m, net, &r->b, now);
        if (!ua || !ub) {
            r->up = false;
            continue;
        }
        /* usable iff updated >= now - ttl: with this cap, only while now < min(ua, ub) */
        cap = (ua < ub ? ua : ub) - ttl_s - 1;
        if (r->updated > cap)
            r->updated = cap;
    }
    for (size_t i = 0; i < m->n; i++) {
        int64_t from = m->v[i].not_before - SW_CERT_CLOCK_SKEW_S;
        if (m->v[i].ok && from > now && m->v[i].not_after > from && (!*next_s || from < *next_s))
            *next_s = from;
    }
    return out;
}

size_t rf_members_valid(const struct rf_members *m, struct sw_network *net, int64_t now)
{
    size_t k = 0;
    for (size_t i = 0; i < m->n; i++)
        k += member_until(m, net, &m->v[i].pk, now) != 0;
    return k;
}
