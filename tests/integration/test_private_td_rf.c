/* Integration tests of a private network at the transport discovery and the route finder:
 * real daemons started with --network, one fresh database, certificates signed here with a
 * network key made for the test, requests over real HTTP (SW-Cert beside signed requests,
 * "certs" in entries). Two TD instances share the database, so that a revocation list PUT
 * to one is shown to be applied by the other; the route finder reads both tables. The
 * open network's unchanged behaviour is what test_transport_discovery.c and
 * test_route_finder.c check (their daemons run without --network). */
#include "common/hex.h"
#include "common/http_client.h"
#include "common/json.h"
#include "common/keys.h"
#include "common/netcert.h"
#include "common/tp_entry.h"
#include "tests/harness/api_client.h"
#include "tests/harness/check_main.h"
#include "tests/harness/harness.h"
#include "tests/harness/visor_env.h"

#include <check.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FRESH_MS 5000 /* route changes: notifications, within a second; allow a loaded machine */

static char td_base[64], td2_base[64], rf_base[64], db_url[256], net_hex[SW_PK_HEX_LEN + 1];
static char td_log[512], td2_log[512], rf_log[512];
static pid_t td_pid = -1, td2_pid = -1, rf_pid = -1;
static struct sw_http_client *http;
static struct sw_keypair netkey, otherkey; /* the network's key; another network's */

/* A test identity: its key, its certificate (hex, "" = none) and a one-letter name. */
struct who {
    char name;
    struct sw_keypair kp;
    char hex[SW_PK_HEX_LEN + 1];
    char cert[SW_CERT_HEX_MAX + 1];
};

static struct who people[64];
static size_t n_people;

static int64_t now_s(void)
{
    return sw_unix_ms() / 1000;
}

/* A certificate for kp signed by signer. */
static void make_cert(const struct sw_keypair *kp, unsigned role, int64_t not_before, int64_t not_after,
                      const struct sw_keypair *signer, char *out)
{
    struct sw_cert c;
    struct sw_error err = { 0 };
    memset(&c, 0, sizeof(c));
    c.role = (uint8_t)role;
    c.subject = kp->pk;
    c.not_before = (uint64_t)not_before;
    c.not_after = (uint64_t)not_after;
    snprintf(c.name, sizeof(c.name), "t%02zu", n_people);
    snprintf(c.groups, sizeof(c.groups), "lab,test");
    ck_assert_msg(sw_cert_sign(&c, signer, &err) == SW_OK, "%s", err.msg);
    ck_assert_int_eq(sw_cert_to_hex(&c, out, SW_CERT_HEX_MAX + 1), SW_OK);
}

/* A new identity with a certificate of role for a day (role 0: none). */
static struct who *person_as(char name, unsigned role)
{
    struct who *w = &people[n_people++];
    ck_assert_uint_le(n_people, sizeof(people) / sizeof(people[0]));
    w->name = name;
    sw_keypair_generate(&w->kp);
    sw_pk_to_hex(&w->kp.pk, w->hex);
    w->cert[0] = '\0';
    if (role)
        make_cert(&w->kp, role, now_s() - 60, now_s() + 86400, &netkey, w->cert);
    return w;
}

static struct who *member(char name)
{
    return person_as(name, SW_ROLE_VISOR);
}

static char name_of(const char *hex)
{
    for (size_t i = 0; i < n_people; i++)
        if (strcmp(people[i].hex, hex) == 0)
            return people[i].name;
    return '?';
}

static pid_t start_td(uint16_t port, const char *log)
{
    char addr[32];
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", port);
    const char *argv[] = { th_bin("transport-discovery"), "--addr", addr, "--db", db_url, "--network", net_hex,
                           "--reap-interval", "1", "--threads", "4", NULL };
    return th_start_service(argv, port, log);
}

static void setup(void)
{
    uint16_t td_port = th_free_port(), td2_port = th_free_port(), rf_port = th_free_port();
    char rf_addr[32];

    snprintf(td_log, sizeof(td_log), "%s", th_log_path("private-td.log"));
    snprintf(td2_log, sizeof(td2_log), "%s", th_log_path("private-td2.log"));
    snprintf(rf_log, sizeof(rf_log), "%s", th_log_path("private-rf.log"));
    snprintf(db_url, sizeof(db_url), "%s", th_fresh_db("private_td"));
    snprintf(td_base, sizeof(td_base), "http://127.0.0.1:%u", td_port);
    snprintf(td2_base, sizeof(td2_base), "http://127.0.0.1:%u", td2_port);
    snprintf(rf_base, sizeof(rf_base), "http://127.0.0.1:%u", rf_port);
    snprintf(rf_addr, sizeof(rf_addr), "127.0.0.1:%u", rf_port);
    sw_keypair_generate(&netkey);
    sw_keypair_generate(&otherkey);
    sw_pk_to_hex(&netkey.pk, net_hex);
    td_pid = start_td(td_port, td_log);
    ck_assert_int_gt(td_pid, 0);
    td2_pid = start_td(td2_port, td2_log);
    ck_assert_int_gt(td2_pid, 0);
    const char *rf_argv[] = { th_bin("route-finder"), "--addr", rf_addr, "--db", db_url, "--network", net_hex,
                              "--ttl", "300", "--threads", "4", NULL };
    rf_pid = th_start_service(rf_argv, rf_port, rf_log);
    ck_assert_int_gt(rf_pid, 0);
    http = sw_http_client_new(NULL);
}

static void teardown(void)
{
    if (rf_pid > 0)
        th_stop(rf_pid, 5000);
    if (td2_pid > 0)
        th_stop(td2_pid, 5000);
    if (td_pid > 0)
        th_stop(td_pid, 5000);
    sw_http_client_free(http);
}

/* ---- requests ------------------------------------------------------------------------- */

/* A request signed by `by` (NULL: unsigned) carrying its certificate, if it has one. */
static long call_at(const char *base, const struct who *by, const char *method, const char *target,
                    const char *body, struct json_object **out)
{
    sw_http_client_set_cert(http, by ? by->cert : NULL);
    long st = th_call(http, base, method, target, body, by ? &by->kp : NULL, out);
    sw_http_client_set_cert(http, NULL);
    return st;
}

static long call(const struct who *by, const char *method, const char *target, const char *body,
                 struct json_object **out)
{
    return call_at(td_base, by, method, target, body, out);
}

/* Asserts status and error code; returns the message (static, for substring checks). */
static const char *expect_error_at(const char *base, const struct who *by, const char *method, const char *target,
                                   const char *body, long status, const char *code)
{
    static char msg[512];
    struct json_object *o;
    long st = call_at(base, by, method, target, body, &o);
    const char *got = th_error_code(o);
    ck_assert_msg(st == status && got && strcmp(got, code) == 0, "%s %s: want %ld %s, got %ld %s", method,
                  target, status, code, st, json_object_to_json_string(o));
    snprintf(msg, sizeof(msg), "%s",
             json_object_get_string(json_object_object_get(json_object_object_get(o, "error"), "message")));
    json_object_put(o);
    return msg;
}

static const char *expect_error(const struct who *by, const char *method, const char *target, const char *body,
                                long status, const char *code)
{
    return expect_error_at(td_base, by, method, target, body, status, code);
}

/* The registration body of the transport a-b, signed by both, with the given certificates
 * in edge order of a, b (NULL: each one's own). */
static char *entry_body(const struct who *a, const struct who *b, const char *cert_a, const char *cert_b,
                        struct sw_uuid *id)
{
    struct sw_tp_signed_entry se;
    struct json_object *arr = json_object_new_array();
    char *body;
    memset(&se, 0, sizeof(se));
    ck_assert_int_eq(sw_tp_entry_make(&se.entry, &a->kp.pk, &b->kp.pk, "stcp", "", NULL), SW_OK);
    int i = sw_tp_entry_edge_index(&se.entry, &a->kp.pk);
    sw_tp_entry_sign(&se.entry, &a->kp, &se.sigs[i]);
    sw_tp_entry_sign(&se.entry, &b->kp, &se.sigs[1 - i]);
    snprintf(se.certs[i], sizeof(se.certs[i]), "%s", cert_a ? cert_a : a->cert);
    snprintf(se.certs[1 - i], sizeof(se.certs[1 - i]), "%s", cert_b ? cert_b : b->cert);
    json_object_array_add(arr, sw_tp_signed_entry_to_json(&se));
    body = strdup(sw_json_compact(arr, NULL));
    json_object_put(arr);
    if (id)
        *id = se.entry.id;
    return body;
}

static struct sw_uuid register_ok(const struct who *a, const struct who *b)
{
    struct sw_uuid id;
    struct json_object *o;
    char *body = entry_body(a, b, NULL, NULL, &id);
    long st = call(a, "POST", "/transports/", body, &o);
    ck_assert_msg(st == 201, "register %c-%c: %ld %s", a->name, b->name, st, json_object_to_json_string(o));
    json_object_put(o);
    free(body);
    return id;
}

static void status_body(char *out, size_t cap, const struct sw_uuid *id, bool up)
{
    char ids[SW_UUID_STR_LEN + 1];
    sw_uuid_format(id, ids);
    snprintf(out, cap, "[{\"t_id\":\"%s\",\"is_up\":%s}]", ids, up ? "true" : "false");
}

static void status_ok(const struct who *by, const struct sw_uuid *id, bool up)
{
    char body[128];
    status_body(body, sizeof(body), id, up);
    ck_assert_int_eq(call(by, "POST", "/statuses", body, NULL), 200);
}

/* The transport a-b as both visors report it: a registers, b says up. */
static struct sw_uuid transport(const struct who *a, const struct who *b)
{
    struct sw_uuid id = register_ok(a, b);
    status_ok(b, &id, true);
    return id;
}

static void delete_target(char *out, size_t cap, const struct sw_uuid *id)
{
    char ids[SW_UUID_STR_LEN + 1];
    sw_uuid_format(id, ids);
    snprintf(out, cap, "/transports/id:%s", ids);
}

/* A signed revocation list of keys, issued at issued_at, by signer: {"list":"<hex>"}. */
static char *revlist_body(const struct sw_keypair *signer, uint64_t issued_at, const struct who *const *keys,
                          size_t n)
{
    struct sw_revlist l = { 0 };
    char *hex, *body;
    for (size_t i = 0; i < n; i++)
        ck_assert_int_eq(sw_revlist_update(&l, &keys[i]->kp.pk, false), SW_OK);
    ck_assert_int_eq(sw_revlist_sign(&l, signer, issued_at), SW_OK);
    ck_assert_int_eq(sw_revlist_to_hex(&l, &hex), SW_OK);
    body = malloc(strlen(hex) + 16);
    sprintf(body, "{\"list\":\"%s\"}", hex);
    free(hex);
    sw_revlist_free(&l);
    return body;
}

/* The issued_at for the next list: one more than the one in use (they only go forward). */
static uint64_t next_issued_at(void)
{
    struct json_object *o;
    uint64_t at = (uint64_t)now_s();
    if (call(NULL, "GET", "/network/revocations", NULL, &o) == 200) {
        uint64_t cur = (uint64_t)json_object_get_int64(json_object_object_get(o, "issued_at"));
        if (cur >= at)
            at = cur + 1;
    }
    json_object_put(o);
    return at;
}

/* Publishes a list revoking keys (nothing else) through the first TD. */
static void revoke_keys(const struct who *const *keys, size_t n)
{
    char *body = revlist_body(&netkey, next_issued_at(), keys, n);
    struct json_object *o;
    long st = call(NULL, "PUT", "/network/revocations", body, &o);
    ck_assert_msg(st == 200, "PUT: %ld %s", st, json_object_to_json_string(o));
    json_object_put(o);
    free(body);
}

/* ---- the route finder ------------------------------------------------------------------ */

static void paths_str(struct json_object *paths, char *out, size_t cap)
{
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; i < json_object_array_length(paths); i++) {
        struct json_object *p = json_object_array_get_idx(paths, i);
        for (size_t k = 0; k < json_object_array_length(p) && o + 8 < cap; k++) {
            struct json_object *hop = json_object_array_get_idx(p, k);
            const char *from = json_object_get_string(json_object_object_get(hop, "from"));
            const char *to = json_object_get_string(json_object_object_get(hop, "to"));
            if (k == 0)
                o += (size_t)snprintf(out + o, cap - o, "%s%c", i ? " | " : "", name_of(from));
            o += (size_t)snprintf(out + o, cap - o, "-%c", name_of(to));
        }
    }
}

/* a -> b's forward paths ("" when 404). */
static long route_str(const struct who *a, const struct who *b, char *fwd, size_t cap)
{
    char body[512], key[2 * SW_PK_HEX_LEN + 2];
    struct json_object *o, *pair;
    long st;
    snprintf(body, sizeof(body), "{\"edges\":[[\"%s\",\"%s\"]],\"opts\":{\"count\":8}}", a->hex, b->hex);
    st = th_call(http, rf_base, "POST", "/routes", body, NULL, &o);
    fwd[0] = '\0';
    if (st == 200) {
        snprintf(key, sizeof(key), "%s:%s", a->hex, b->hex);
        ck_assert(json_object_object_get_ex(o, key, &pair));
        paths_str(json_object_object_get(pair, "forward"), fwd, cap);
    }
    json_object_put(o);
    return st;
}

static int str_cmp(const void *x, const void *y)
{
    return strcmp(*(const char *const *)x, *(const char *const *)y);
}

/* "A-D-C | A-B-C" -> "A-B-C | A-D-C": paths of equal length come in key order, and keys
 * are random here. */
static void sorted_paths(const char *in, char *out, size_t cap)
{
    char buf[1024], *parts[32], *save = NULL;
    size_t n = 0, o = 0;
    snprintf(buf, sizeof(buf), "%s", in);
    for (char *p = strtok_r(buf, " |", &save); p && n < 32; p = strtok_r(NULL, " |", &save))
        parts[n++] = p;
    qsort(parts, n, sizeof(parts[0]), str_cmp);
    out[0] = '\0';
    for (size_t i = 0; i < n && o < cap; i++)
        o += (size_t)snprintf(out + o, cap - o, "%s%s", i ? " | " : "", parts[i]);
}

/* Polls until a -> b's paths read want, in any order ("" = no route); returns the ms it
 * took. */
static int64_t await_route(const struct who *a, const struct who *b, const char *want, int timeout_ms)
{
    char fwd[1024], got[1024], wanted[1024];
    int64_t t0 = sw_mono_ms();
    long st;
    sorted_paths(want, wanted, sizeof(wanted));
    for (;;) {
        st = route_str(a, b, fwd, sizeof(fwd));
        sorted_paths(fwd, got, sizeof(got));
        if ((*want && st == 200 && strcmp(got, wanted) == 0) || (!*want && st == 404))
            return sw_ms_since(t0);
        if (sw_ms_since(t0) > timeout_ms)
            break;
        usleep(50 * 1000);
    }
    ck_abort_msg("%c->%c: after %d ms still status %ld \"%s\", want \"%s\"", a->name, b->name, timeout_ms, st, fwd,
                 want);
    return -1;
}

static PGconn *db_connect(void)
{
    PGconn *pg = PQconnectdb(db_url);
    ck_assert_msg(PQstatus(pg) == CONNECTION_OK, "%s", PQerrorMessage(pg));
    return pg;
}

static void db_exec(PGconn *pg, const char *sql)
{
    PGresult *r = PQexec(pg, sql);
    ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK, "%s: %s", sql,
                  PQerrorMessage(pg));
    PQclear(r);
}

/* ---- tests ------------------------------------------------------------------------------- */

START_TEST(test_members_register)
{
    struct who *a = member('A'), *b = member('B');
    struct sw_uuid id = transport(a, b);
    char sql[512], target[128];
    PGconn *pg;
    PGresult *r;

    /* both edges' certificates are stored, fields spelled out */
    pg = db_connect();
    snprintf(sql, sizeof(sql),
             "SELECT role, name, groups, not_after > extract(epoch from now()) FROM td_members"
             " WHERE pk IN ('\\x%s'::bytea, '\\x%s'::bytea)", a->hex, b->hex);
    r = PQexec(pg, sql);
    ck_assert_int_eq(PQresultStatus(r), PGRES_TUPLES_OK);
    ck_assert_int_eq(PQntuples(r), 2);
    for (int i = 0; i < 2; i++) {
        ck_assert_str_eq(PQgetvalue(r, i, 0), "visor");
        ck_assert_str_eq(PQgetvalue(r, i, 2), "lab,test");
        ck_assert_str_eq(PQgetvalue(r, i, 3), "t");
    }
    PQclear(r);
    PQfinish(pg);
    /* a member may delete its transport */
    delete_target(target, sizeof(target), &id);
    ck_assert_int_eq(call(a, "DELETE", target, NULL, NULL), 200);
}
END_TEST

START_TEST(test_unsigned_key_refused)
{
    struct who *a = member('A'), *b = member('B'), *x = person_as('X', 0);
    struct sw_uuid id, xid;
    char *body, target[128], st_body[128];
    const char *msg;

    /* an outsider registering a transport with a member: refused, whatever it claims */
    body = entry_body(x, a, NULL, NULL, &xid);
    msg = expect_error(x, "POST", "/transports/", body, 403, "not_a_member");
    ck_assert_msg(strstr(msg, "no certificate"), "%s", msg);
    free(body);
    /* with a member's certificate in SW-Cert: the certificate is for another key */
    strcpy(x->cert, a->cert);
    body = entry_body(x, a, NULL, NULL, NULL);
    msg = expect_error(x, "POST", "/transports/", body, 403, "not_a_member");
    ck_assert_msg(strstr(msg, "another key"), "%s", msg);
    free(body);
    x->cert[0] = '\0';
    ck_assert(th_log_wait(td_log, "refused POST /transports/ from", 2000));

    /* a member naming an outsider as the other edge: refused (the outsider has no cert) */
    body = entry_body(a, x, NULL, NULL, NULL);
    msg = expect_error(a, "POST", "/transports/", body, 403, "not_a_member");
    ck_assert_msg(strstr(msg, "certs[") && strstr(msg, x->hex) && strstr(msg, "no certificate"), "%s", msg);
    free(body);
    /* ... or with the member's own certificate in the outsider's slot */
    body = entry_body(a, x, NULL, a->cert, NULL);
    msg = expect_error(a, "POST", "/transports/", body, 403, "not_a_member");
    ck_assert_msg(strstr(msg, "another key"), "%s", msg);
    free(body);

    /* statuses and deletes by an outsider */
    id = transport(a, b);
    status_body(st_body, sizeof(st_body), &id, false);
    expect_error(x, "POST", "/statuses", st_body, 403, "not_a_member");
    delete_target(target, sizeof(target), &id);
    expect_error(x, "DELETE", target, NULL, 403, "not_a_member");
    /* a member without its certificate beside the request is an outsider too */
    {
        char saved[SW_CERT_HEX_MAX + 1];
        strcpy(saved, a->cert);
        a->cert[0] = '\0';
        expect_error(a, "POST", "/statuses", st_body, 403, "not_a_member");
        expect_error(a, "DELETE", target, NULL, 403, "not_a_member");
        strcpy(a->cert, saved);
    }
    ck_assert(th_log_wait(td_log, "refused POST /statuses from", 2000));
    ck_assert(th_log_wait(td_log, "refused DELETE /transports/id:", 2000));
    /* nothing changed: the members' transport is still up */
    {
        struct json_object *o;
        char get[128];
        delete_target(get, sizeof(get), &id);
        ck_assert_int_eq(call(NULL, "GET", get, NULL, &o), 200);
        ck_assert(json_object_get_boolean(json_object_object_get(o, "is_up")));
        json_object_put(o);
    }
}
END_TEST

START_TEST(test_bad_certificates_refused)
{
    struct who *a = member('A'), *s = person_as('S', SW_ROLE_SERVICE), *m = person_as('M', SW_ROLE_MESSAGING_SERVER);
    struct who *o = person_as('O', 0), *e = person_as('E', 0), *f = person_as('F', 0), *g = person_as('G', 0);
    char *body, flipped[SW_CERT_HEX_MAX + 1];
    const char *msg;

    /* a member with the wrong role, as the caller and as the other edge */
    body = entry_body(s, a, NULL, NULL, NULL);
    msg = expect_error(s, "POST", "/transports/", body, 403, "not_a_member");
    ck_assert_msg(strstr(msg, "role service, expected visor"), "%s", msg);
    free(body);
    body = entry_body(a, m, NULL, NULL, NULL);
    msg = expect_error(a, "POST", "/transports/", body, 403, "not_a_member");
    ck_assert_msg(strstr(msg, "role messaging-server, expected visor"), "%s", msg);
    free(body);
    /* another network's certificate */
    make_cert(&o->kp, SW_ROLE_VISOR, now_s() - 60, now_s() + 3600, &otherkey, o->cert);
    body = entry_body(a, o, NULL, NULL, NULL);
    msg = expect_error(a, "POST", "/transports/", body, 403, "not_a_member");
    ck_assert_msg(strstr(msg, "another network"), "%s", msg);
    free(body);
    /* expired */
    make_cert(&e->kp, SW_ROLE_VISOR, now_s() - 7200, now_s() - 10, &netkey, e->cert);
    body = entry_body(e, a, NULL, NULL, NULL);
    msg = expect_error(e, "POST", "/transports/", body, 403, "not_a_member");
    ck_assert_msg(strstr(msg, "expired"), "%s", msg);
    free(body);
    /* not valid yet (beyond the clock skew allowed) */
    make_cert(&f->kp, SW_ROLE_VISOR, now_s() + 3600, now_s() + 7200, &netkey, f->cert);
    body = entry_body(a, f, NULL, NULL, NULL);
    msg = expect_error(a, "POST", "/transports/", body, 403, "not_a_member");
    ck_assert_msg(strstr(msg, "not valid before"), "%s", msg);
    free(body);
    /* a flipped bit in the signed part */
    make_cert(&g->kp, SW_ROLE_VISOR, now_s() - 60, now_s() + 3600, &netkey, g->cert);
    strcpy(flipped, g->cert);
    {
        /* a hex digit of the groups (just before the signature) gets another value */
        static const char digits[] = "0123456789abcdef";
        char *p = &flipped[strlen(flipped) - 2 * SW_SIG_LEN - 4];
        *p = digits[(strchr(digits, *p) - digits) ^ 1];
    }
    body = entry_body(a, g, NULL, flipped, NULL);
    msg = expect_error(a, "POST", "/transports/", body, 403, "not_a_member");
    ck_assert_msg(strstr(msg, "not a member"), "%s", msg);
    free(body);
    /* garbage where the certificate goes */
    body = entry_body(a, g, NULL, "zz", NULL);
    expect_error(a, "POST", "/transports/", body, 403, "not_a_member");
    free(body);
}
END_TEST

START_TEST(test_revocation_lists)
{
    struct who *a = member('A'), *b = member('B'), *c = member('C');
    const struct who *const rc_list[] = { c };
    struct sw_uuid id_ac = transport(a, c);
    struct json_object *o;
    char *body, st_body[128];
    const char *msg;
    uint64_t at;

    /* both instances take a list published to one; the revoked key is refused by both */
    revoke_keys(rc_list, 1);
    ck_assert_int_eq(call(NULL, "GET", "/network/revocations", NULL, &o), 200);
    ck_assert_int_eq(json_object_array_length(json_object_object_get(o, "revoked")), 1);
    ck_assert_str_eq(json_object_get_string(json_object_array_get_idx(json_object_object_get(o, "revoked"), 0)),
                     c->hex);
    at = (uint64_t)json_object_get_int64(json_object_object_get(o, "issued_at"));
    ck_assert(json_object_get_string(json_object_object_get(o, "list")) != NULL);
    json_object_put(o);

    body = entry_body(c, b, NULL, NULL, NULL);
    msg = expect_error(c, "POST", "/transports/", body, 403, "not_a_member");
    ck_assert_msg(strstr(msg, "revoked"), "%s", msg);
    free(body);
    status_body(st_body, sizeof(st_body), &id_ac, true);
    expect_error(c, "POST", "/statuses", st_body, 403, "not_a_member");
    body = entry_body(a, c, NULL, NULL, NULL);
    msg = expect_error(a, "POST", "/transports/", body, 403, "not_a_member");
    ck_assert_msg(strstr(msg, "revoked"), "%s", msg);
    free(body);
    /* the second instance: within its reaper's period (1 s here) */
    {
        int64_t t0 = sw_mono_ms();
        long st = 0;
        body = entry_body(c, b, NULL, NULL, NULL);
        while (sw_ms_since(t0) < 10000) {
            if ((st = call_at(td2_base, c, "POST", "/transports/", body, NULL)) == 403)
                break;
            usleep(100 * 1000);
        }
        ck_assert_msg(st == 403, "second instance still says %ld", st);
        printf("second instance refused the revoked key after %lld ms\n", (long long)sw_ms_since(t0));
        free(body);
        ck_assert_int_eq(call_at(td2_base, NULL, "GET", "/network/revocations", NULL, &o), 200);
        ck_assert_int_eq((uint64_t)json_object_get_int64(json_object_object_get(o, "issued_at")), at);
        json_object_put(o);
    }

    /* stale: the same issued_at, or an older one */
    body = revlist_body(&netkey, at, NULL, 0);
    msg = expect_error(NULL, "PUT", "/network/revocations", body, 409, "stale_revocations");
    ck_assert_msg(strstr(msg, "not newer"), "%s", msg);
    free(body);
    body = revlist_body(&netkey, at - 100, NULL, 0);
    expect_error_at(td2_base, NULL, "PUT", "/network/revocations", body, 409, "stale_revocations");
    free(body);
    /* another signer (newer, or not) */
    body = revlist_body(&otherkey, at + 1000, NULL, 0);
    expect_error(NULL, "PUT", "/network/revocations", body, 403, "wrong_signer");
    free(body);
    /* malformed */
    expect_error(NULL, "PUT", "/network/revocations", "{\"list\":\"00ff\"}", 400, "invalid_revocations");
    expect_error(NULL, "PUT", "/network/revocations", "{\"list\":\"xyz\"}", 400, "invalid_revocations");
    expect_error(NULL, "PUT", "/network/revocations", "{\"lists\":\"\"}", 400, "invalid_body");
    expect_error(NULL, "PUT", "/network/revocations", "[", 400, "invalid_json");
    /* still the list issued at `at` */
    ck_assert_int_eq(call(NULL, "GET", "/network/revocations", NULL, &o), 200);
    ck_assert_int_eq((uint64_t)json_object_get_int64(json_object_object_get(o, "issued_at")), at);
    json_object_put(o);

    /* a newer list without c: c is a member again */
    revoke_keys(NULL, 0);
    register_ok(c, b);
}
END_TEST

/* skywire-cli net revoke / revocations against the transport discovery. */
START_TEST(test_cli_revoke)
{
    struct who *a = member('A'), *d = member('D');
    char dir[512], key_file[600], out[4096], err[1024], *body;
    struct sw_error e = { 0 };
    int st;

    register_ok(a, d);
    snprintf(dir, sizeof(dir), "%s", th_temp_dir("private-cli"));
    snprintf(key_file, sizeof(key_file), "%s/network-key.json", dir);
    ck_assert_msg(sw_keyfile_save(key_file, &netkey, &e) == SW_OK, "%s", e.msg);

    const char *revoke_argv[] = { th_bin("skywire-cli"), "net", "revoke", "--key", key_file, "--pk", d->hex,
                                  "--tpd", td_base, NULL };
    st = th_run(revoke_argv, out, sizeof(out), err, sizeof(err), 10000);
    ck_assert_msg(st == 0, "net revoke: exit %d: %s %s", st, out, err);
    body = entry_body(d, a, NULL, NULL, NULL);
    expect_error(d, "POST", "/transports/", body, 403, "not_a_member");
    free(body);
    const char *list_argv[] = { th_bin("skywire-cli"), "net", "revocations", "--tpd", td_base, NULL };
    st = th_run(list_argv, out, sizeof(out), err, sizeof(err), 10000);
    ck_assert_msg(st == 0 && strstr(out, d->hex) && strstr(out, net_hex), "net revocations: %d %s %s", st, out, err);
    /* revoking again changes nothing */
    st = th_run(revoke_argv, out, sizeof(out), err, sizeof(err), 10000);
    ck_assert_msg(st == 0 && strstr(err, "revoked already"), "again: %d %s", st, err);
    /* --undo: a member again */
    const char *undo_argv[] = { th_bin("skywire-cli"), "net", "revoke", "--key", key_file, "--pk", d->hex,
                                "--tpd", td_base, "--undo", NULL };
    st = th_run(undo_argv, out, sizeof(out), err, sizeof(err), 10000);
    ck_assert_msg(st == 0, "net revoke --undo: exit %d: %s %s", st, out, err);
    register_ok(d, a);
    /* a list signed by another key is refused by the TD: the CLI says why, exit 1 */
    {
        char other_file[600];
        snprintf(other_file, sizeof(other_file), "%s/other-key.json", dir);
        ck_assert(sw_keyfile_save(other_file, &otherkey, &e) == SW_OK);
        const char *bad_argv[] = { th_bin("skywire-cli"), "net", "revoke", "--key", other_file, "--pk", d->hex,
                                   "--tpd", td_base, NULL };
        st = th_run(bad_argv, out, sizeof(out), err, sizeof(err), 10000);
        ck_assert_msg(st == 1 && strstr(err, "does not verify"), "other key: %d %s", st, err);
    }
}
END_TEST

START_TEST(test_route_finder_members_only)
{
    struct who *a = member('A'), *b = member('B'), *c = member('C'), *d = member('D'), *e = person_as('E', 0);
    struct who *x = person_as('X', 0);
    const struct who *const revoked[] = { d };
    char sql[1024];
    int64_t ms;
    PGconn *pg;

    /* a member whose certificate ends in a few seconds */
    make_cert(&e->kp, SW_ROLE_VISOR, now_s() - 60, now_s() + 8, &netkey, e->cert);
    transport(a, b);
    transport(b, c);
    transport(a, d);
    transport(d, c);
    transport(a, e);
    transport(e, c);
    /* a transport written behind the TD's back through a key that has no certificate stored:
     * the route finder must not use it */
    pg = db_connect();
    snprintf(sql, sizeof(sql),
             "INSERT INTO td_transports (t_id, edge_a, edge_b, type, label, sig_a, sig_b, up_a, up_b, registered,"
             " updated_a, updated_b) VALUES (gen_random_uuid(), '\\x%s', '\\x%s', 'stcp', '', '\\x00', '\\x00',"
             " true, true, %lld, %lld, %lld), (gen_random_uuid(), '\\x%s', '\\x%s', 'stcp', '', '\\x00', '\\x00',"
             " true, true, %lld, %lld, %lld)",
             a->hex, x->hex, (long long)now_s(), (long long)now_s(), (long long)now_s(), x->hex, c->hex,
             (long long)now_s(), (long long)now_s(), (long long)now_s());
    db_exec(pg, sql);
    PQfinish(pg);

    await_route(a, c, "A-B-C | A-D-C | A-E-C", FRESH_MS);
    /* E's certificate ends: exact at query time, no rebuild needed */
    ms = await_route(a, c, "A-B-C | A-D-C", 15000);
    printf("expired member left out after %lld ms\n", (long long)ms);
    /* D revoked: the list reaches the route finder through td_revocations */
    revoke_keys(revoked, 1);
    ms = await_route(a, c, "A-B-C", FRESH_MS);
    printf("revoked member left out after %lld ms\n", (long long)ms);
    ck_assert(th_log_wait(rf_log, "graph rebuilt for the revocation list issued at", 1000));
    /* a route from or to a non-member: none */
    await_route(a, d, "", FRESH_MS);
    await_route(x, c, "", FRESH_MS);
    /* reinstated */
    revoke_keys(NULL, 0);
    await_route(a, c, "A-B-C | A-D-C", FRESH_MS);
}
END_TEST

/* Replaces the route finder by a new one (extra: NULL or "--revocations", SRC). */
static void restart_rf(const char *extra_flag, const char *extra_value)
{
    uint16_t port = th_free_port();
    char addr[32];
    th_stop(rf_pid, 5000);
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", port);
    const char *argv[] = { th_bin("route-finder"), "--addr", addr, "--db", db_url, "--network", net_hex, "--ttl",
                           "300", "--threads", "4", extra_flag, extra_value, NULL };
    rf_pid = th_start_service(argv, port, rf_log);
    ck_assert_int_gt(rf_pid, 0);
    snprintf(rf_base, sizeof(rf_base), "http://127.0.0.1:%u", port);
}

START_TEST(test_route_finder_restart_keeps_members)
{
    struct who *a = member('A'), *b = member('B'), *c = member('C');
    const struct who *const revoked[] = { b };

    transport(a, b);
    transport(b, c);
    await_route(a, c, "A-B-C", FRESH_MS);
    revoke_keys(revoked, 1);
    await_route(a, c, "", FRESH_MS);
    /* a new route finder reads members and the stored list at start */
    restart_rf(NULL, NULL);
    await_route(a, c, "", FRESH_MS);
    revoke_keys(NULL, 0);
    await_route(a, c, "A-B-C", FRESH_MS);
    /* one that takes the list from the transport discovery's URL instead (its first fetch
     * is at start; later ones every 20 s) */
    revoke_keys(revoked, 1);
    restart_rf("--revocations", td_base);
    await_route(a, c, "", FRESH_MS);
    ck_assert(th_log_wait(rf_log, "revocations from http://", 1000));
    revoke_keys(NULL, 0);
    restart_rf(NULL, NULL);
    await_route(a, c, "A-B-C", FRESH_MS);
}
END_TEST

START_TEST(test_bad_network_flag)
{
    char out[512], err[1024];
    const char *td_argv[] = { th_bin("transport-discovery"), "--db", db_url, "--network", "abc", NULL };
    const char *rf_argv[] = { th_bin("route-finder"), "--db", db_url, "--network", "zz", NULL };
    ck_assert_int_eq(th_run(td_argv, out, sizeof(out), err, sizeof(err), 10000), 2);
    ck_assert_msg(strstr(err, "--network"), "%s", err);
    ck_assert_int_eq(th_run(rf_argv, out, sizeof(out), err, sizeof(err), 10000), 2);
    ck_assert_msg(strstr(err, "--network"), "%s", err);
    /* every daemon checks the key while parsing (sw_network_opt_key), before any database */
    const char *others[] = { "messaging-server", "messaging-discovery", "setup-node" };
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
        const char *argv[] = { th_bin(others[i]), "--network", "/nonexistent/network.pk", NULL };
        ck_assert_int_eq(th_run(argv, out, sizeof(out), err, sizeof(err), 10000), 2);
        ck_assert_msg(strstr(err, "--network"), "%s: %s", others[i], err);
    }
}
END_TEST

static Suite *private_suite(void)
{
    Suite *s = suite_create("private-network-td-rf");
    TCase *tc = tcase_create("private");

    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_members_register);
    tcase_add_test(tc, test_unsigned_key_refused);
    tcase_add_test(tc, test_bad_certificates_refused);
    tcase_add_test(tc, test_revocation_lists);
    tcase_add_test(tc, test_cli_revoke);
    tcase_add_test(tc, test_route_finder_members_only);
    tcase_add_test(tc, test_route_finder_restart_keeps_members);
    tcase_add_test(tc, test_bad_network_flag);
    suite_add_tcase(s, tc);
    return s;
}

const struct th_check_main th_check_main = {
    .suite = private_suite,
    .fork = CK_NOFORK, /* the daemons belong to this process */
    .before = th_check_init_crypto_http,
};
