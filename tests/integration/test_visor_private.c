/* Integration tests of skywire-visor in a private network (docs/visor.md "Private networks"):
 * real visors whose configs come from `skywire-cli node gen-config --network ... --cert-file
 * ...`, talking stcp over 127.0.0.1, with certificates signed here by a test network key and
 * one revocation list file every visor rereads every 300 ms. A small in-process transport
 * discovery records what the visors register (the entries' "certs" and the SW-Cert header).
 *
 *   P, Q  members (role visor); P's certificate names it "private-p", groups test,lab
 *   O     a visor of an open network: no network, no certificate
 *
 * Checked: members connect and register both certificates; an outsider is refused both ways
 * with "not a member" in add-tp's error and one log line; hand-made dialers with a wrong-role,
 * expired, foreign, future, flipped or another key's certificate are refused with a REFUSE
 * packet naming why (a genuine one gets ENTRY_SIG); a revoked peer's transport is closed within
 * seconds of the new list and comes back once the list drops it; the visor will not start
 * without a valid certificate of its own; gen-config's --network flags. */
#include "common/bytes.h"
#include "common/frame.h"
#include "common/http_client.h"
#include "common/http_server.h"
#include "common/json.h"
#include "common/keys.h"
#include "common/netcert.h"
#include "common/noise.h"
#include "common/tp_entry.h"
#include "tests/harness/api_client.h"
#include "tests/harness/check_main.h"
#include "tests/harness/harness.h"
#include "tests/harness/members.h"
#include "tests/harness/net_env.h"
#include "tests/harness/visor_env.h"
#include "visor/visor.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static struct th_net pn; /* holds the network key and the revocation file only */
static struct th_visor vp, vq, vo;
static char dir[256], p_cert[SW_CERT_HEX_MAX + 1], q_cert[SW_CERT_HEX_MAX + 1];
static struct sw_http_client *http;
static char tp_pq[SW_UUID_STR_LEN + 1]; /* P's stcp transport to Q */

/* ---- a transport discovery that records ------------------------------------------------ */

#define REC_MAX 512
struct rec {
    char path[96];
    char cert[SW_CERT_HEX_MAX + 1]; /* the SW-Cert header, "" without */
    char *body;
};
static struct rec recs[REC_MAX];
static size_t n_recs;
static pthread_mutex_t rec_mu = PTHREAD_MUTEX_INITIALIZER;
static struct sw_http_server *tpd;
static char tpd_base[64];

static void record(struct sw_http_request *req, struct sw_http_response *resp)
{
    const char *cert = sw_http_header(req, SW_HDR_CERT);

    pthread_mutex_lock(&rec_mu);
    if (n_recs < REC_MAX) {
        struct rec *r = &recs[n_recs++];
        snprintf(r->path, sizeof(r->path), "%s", req->path);
        snprintf(r->cert, sizeof(r->cert), "%s", cert ? cert : "");
        r->body = strdup(req->body);
    }
    pthread_mutex_unlock(&rec_mu);
    sw_http_reply_json(resp, 200, json_object_new_object());
}

/* Signed requests ask for their nonce first: any will do here. */
static void nonce(struct sw_http_request *req, struct sw_http_response *resp)
{
    struct json_object *o = json_object_new_object();
    json_object_object_add(o, "next_nonce", json_object_new_int(1));
    sw_http_reply_json(resp, 200, o);
}

static const struct sw_http_route tpd_routes[] = {
    { "GET", "/security/nonces/", SW_ROUTE_PREFIX, nonce, NULL, 0 },
    { "POST", "/transports/", SW_ROUTE_EXACT, record, NULL, 0 },
    { "POST", "/statuses", SW_ROUTE_EXACT, record, NULL, 0 },
    { "DELETE", "/transports/", SW_ROUTE_PREFIX, record, NULL, 0 },
};

/* A registration of transport id whose "certs" are want (in edge order), sent with SW-Cert
 * equal to one of them, within timeout_ms. */
static bool registered_with_certs(const char *id, const char *want0, const char *want1, int timeout_ms)
{
    for (int waited = 0; waited <= timeout_ms; waited += 100) {
        bool hit = false;
        pthread_mutex_lock(&rec_mu);
        for (size_t i = 0; i < n_recs && !hit; i++) {
            struct json_object *arr = NULL;
            if (strcmp(recs[i].path, "/transports/") != 0 || !strstr(recs[i].body, id) ||
                sw_json_parse(recs[i].body, strlen(recs[i].body), &arr, NULL))
                continue;
            for (size_t k = 0; k < json_object_array_length(arr) && !hit; k++) {
                struct json_object *se = json_object_array_get_idx(arr, k);
                struct json_object *e = json_object_object_get(se, "entry");
                struct json_object *c = json_object_object_get(se, "certs");
                if (strcmp(json_object_get_string(json_object_object_get(e, "t_id")), id) != 0 ||
                    json_object_array_length(c) != 2)
                    continue;
                hit = strcmp(json_object_get_string(json_object_array_get_idx(c, 0)), want0) == 0 &&
                      strcmp(json_object_get_string(json_object_array_get_idx(c, 1)), want1) == 0 &&
                      (strcmp(recs[i].cert, want0) == 0 || strcmp(recs[i].cert, want1) == 0);
            }
            json_object_put(arr);
        }
        pthread_mutex_unlock(&rec_mu);
        if (hit)
            return true;
        th_sleep_ms(100);
    }
    return false;
}

/* A DELETE of transport id reached the discovery within timeout_ms. */
static bool deleted(const char *id, int timeout_ms)
{
    for (int waited = 0; waited <= timeout_ms; waited += 100) {
        bool hit = false;
        pthread_mutex_lock(&rec_mu);
        for (size_t i = 0; i < n_recs && !hit; i++)
            hit = strncmp(recs[i].path, "/transports/id:", 15) == 0 && strstr(recs[i].path, id);
        pthread_mutex_unlock(&rec_mu);
        if (hit)
            return true;
        th_sleep_ms(100);
    }
    return false;
}

/* ---- fixture ----------------------------------------------------------------------------- */

/* A visor of the private network (cert_name NULL: an open one) with dmsg off. */
static void gen_visor(struct th_visor *v, const char *name, const char *cert_name, const char *groups,
                      char *cert_hex)
{
    char cert[512];
    snprintf(cert, sizeof(cert), "%s/%s.cert", dir, name);
    const char *priv[] = { "--mdisc", "", "--network", pn.network.pk_hex, "--cert-file", cert,
                           "--revocations", pn.revocations, NULL };
    const char *open[] = { "--mdisc", "", NULL };

    ck_assert_int_eq(th_visor_gen(v, dir, name, tpd_base, cert_name ? priv : open), 0);
    if (!cert_name)
        return;
    ck_assert_int_eq(th_net_member_cert(&pn, &v->pk, SW_ROLE_VISOR, cert_name, groups, 86400, cert,
                                        cert_hex), 0);
    ck_assert_int_eq(th_visor_set_field(v, "network.revocations_refresh_ms", json_object_new_int(300)), 0);
}

static void setup(void)
{
    struct sw_error err = { 0 };
    static const struct sw_http_server_config cfg = { /* borrowed by the server */
        .addr = "127.0.0.1:0", .service = "test-tpd", .version = "0", .routes = tpd_routes,
        .n_routes = sizeof(tpd_routes) / sizeof(tpd_routes[0]), .threads = 4 };

    http = sw_http_client_new(NULL);
    ck_assert_msg(sw_http_server_start(&cfg, &tpd, &err) == SW_OK, "%s", err.msg);
    snprintf(tpd_base, sizeof(tpd_base), "http://127.0.0.1:%u", sw_http_server_port(tpd));
    snprintf(dir, sizeof(dir), "%s", th_temp_dir("sw-visor-private"));
    snprintf(pn.dir, sizeof(pn.dir), "%s", dir);
    th_network_init(&pn.network);
    snprintf(pn.revocations, sizeof(pn.revocations), "%s/revocations", dir);
    gen_visor(&vp, "private-p", "private-p", "test,lab", p_cert);
    gen_visor(&vq, "private-q", "private-q", "test", q_cert);
    gen_visor(&vo, "open-o", NULL, NULL, NULL);
    ck_assert_int_eq(th_visor_start(&vp), 0);
    ck_assert_int_eq(th_visor_start(&vq), 0);
    ck_assert_int_eq(th_visor_start(&vo), 0);
}

static void teardown(void)
{
    th_visor_stop(&vp, false);
    th_visor_stop(&vq, false);
    th_visor_stop(&vo, false);
    sw_http_server_stop(tpd);
    for (size_t i = 0; i < n_recs; i++)
        free(recs[i].body);
    sw_http_client_free(http);
    sw_keypair_wipe(&pn.network.kp);
}

/* ---- helpers ----------------------------------------------------------------------------- */

static long api(const struct th_visor *v, const char *method, const char *target, const char *body,
                struct json_object **out)
{
    return th_call(http, v->api, method, target, body, NULL, out);
}

static const char *jstr(struct json_object *o, const char *key)
{
    return json_object_get_string(json_object_object_get(o, key));
}

/* add-tp stcp from -> to: the status, the reply in *out (caller puts). */
static long add_stcp(const struct th_visor *from, const struct th_visor *to, struct json_object **out)
{
    char body[256];
    snprintf(body, sizeof(body), "{\"remote_pk\":\"%s\",\"address\":\"%s\"}", to->pk_hex, to->stcp);
    return api(from, "POST", "/api/transports", body, out);
}

/* The error message of an API error reply ("" when none). */
static const char *err_msg(struct json_object *o)
{
    const char *m = jstr(json_object_object_get(o, "error"), "message");
    return m ? m : "";
}

static const char *tp_state(const struct th_visor *v, const char *id, char *buf, size_t cap)
{
    char target[96];
    struct json_object *o = NULL;
    snprintf(target, sizeof(target), "/api/transports/%s", id);
    snprintf(buf, cap, "%s", api(v, "GET", target, NULL, &o) == 200 ? jstr(o, "state") : "absent");
    json_object_put(o);
    return buf;
}

static bool wait_state(const struct th_visor *v, const char *id, const char *want, bool equal, int timeout_ms)
{
    char buf[32];
    for (int waited = 0;; waited += 100) {
        bool is = strcmp(tp_state(v, id, buf, sizeof(buf)), want) == 0;
        if (is == equal)
            return true;
        if (waited >= timeout_ms)
            return false;
        th_sleep_ms(100);
    }
}

/* ---- a hand-made stcp dialer ----------------------------------------------------------------- */

static int connect_port(uint16_t port)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

/* Reads exactly n bytes within timeout_ms; false on EOF, error or timeout. */
static bool read_n(int fd, uint8_t *buf, size_t n, int timeout_ms)
{
    size_t got = 0;
    int64_t end = sw_deadline_ms(timeout_ms);
    while (got < n) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (poll(&p, 1, sw_ms_left(end)) <= 0)
            return false;
        ssize_t r = recv(fd, buf + got, n - got, 0);
        if (r <= 0)
            return false;
        got += (size_t)r;
    }
    return true;
}

/* One u16-framed message into buf[cap]; its length, or 0 on EOF/timeout/oversize. */
static size_t read_frame(int fd, uint8_t *buf, size_t cap)
{
    uint8_t hdr[2];
    size_t n;
    if (!read_n(fd, hdr, 2, 3000) || (n = sw_get_u16(hdr)) == 0 || n > cap || !read_n(fd, buf, n, 3000))
        return 0;
    return n;
}

/* Dials v as key me with cert[len] (len 0: none) in message 3, then reads the visor's first
 * transport packet. Returns its type (-1 when the connection ended without one); a REFUSE's
 * text goes to why. *peer_cert_len gets the length of v's certificate (message 2's payload). */
static int raw_dial(const struct th_visor *v, const struct sw_keypair *me, const uint8_t *cert, size_t len,
                    char *why, size_t cap, size_t *peer_cert_len)
{
    struct sw_noise_hs hs;
    struct sw_noise_cipher tx, rx;
    uint8_t msg[2 + VISOR_HS_FRAME_MAX], payload[VISOR_HS_FRAME_MAX], pkt[4096];
    size_t n = 0, plen = 0;
    int fd = connect_port(v->stcp_port), type = -1;

    why[0] = '\0';
    ck_assert_int_eq(sw_noise_hs_init_ed25519(&hs, SW_NOISE_XK, SW_NOISE_INITIATOR, SW_NOISE_PROLOGUE_TP,
                                              me, &v->pk), SW_OK);
    ck_assert_int_eq(sw_noise_hs_write_message(&hs, NULL, 0, msg + 2, VISOR_HS_FRAME_MAX, &n), SW_OK);
    sw_frame_header(msg, n);
    ck_assert_int_eq(send(fd, msg, n + 2, MSG_NOSIGNAL), (ssize_t)(n + 2));
    ck_assert_uint_gt(n = read_frame(fd, msg, sizeof(msg)), 0);
    ck_assert_int_eq(sw_noise_hs_read_message(&hs, msg, n, payload, sizeof(payload), &plen), SW_OK);
    *peer_cert_len = plen;
    memcpy(payload, me->pk.b, SW_PK_LEN);
    if (len)
        memcpy(payload + SW_PK_LEN, cert, len);
    ck_assert_int_eq(sw_noise_hs_write_message(&hs, payload, SW_PK_LEN + len, msg + 2, VISOR_HS_FRAME_MAX, &n),
                     SW_OK);
    sw_frame_header(msg, n);
    ck_assert_int_eq(send(fd, msg, n + 2, MSG_NOSIGNAL), (ssize_t)(n + 2));
    ck_assert_int_eq(sw_noise_hs_split(&hs, &tx, &rx), SW_OK);
    if ((n = read_frame(fd, pkt, sizeof(pkt))) > SW_NOISE_TAG &&
        sw_noise_decrypt(&rx, NULL, 0, pkt, n, pkt) == SW_OK) {
        type = pkt[0];
        if (type == VISOR_TP_PKT_REFUSE)
            snprintf(why, cap, "%.*s", (int)(n - SW_NOISE_TAG - 1), (const char *)pkt + 1);
    }
    close(fd);
    sw_noise_hs_wipe(&hs);
    sw_noise_cipher_wipe(&tx);
    sw_noise_cipher_wipe(&rx);
    return type;
}

/* ---- tests ----------------------------------------------------------------------------------- */

START_TEST(test_members_connect)
{
    struct json_object *o = NULL, *m;
    char out[2048], err[1024], bin[512];
    long st;

    st = add_stcp(&vp, &vq, &o);
    ck_assert_msg(st == 201, "add-tp P -> Q: %ld %s", st, json_object_to_json_string(o));
    snprintf(tp_pq, sizeof(tp_pq), "%s", jstr(o, "id"));
    json_object_put(o);
    ck_assert(wait_state(&vq, tp_pq, "up", true, 5000));

    /* both edges' certificates in the registration, in edge order, with SW-Cert */
    bool p_first = sw_pk_cmp(&vp.pk, &vq.pk) < 0;
    ck_assert_msg(registered_with_certs(tp_pq, p_first ? p_cert : q_cert, p_first ? q_cert : p_cert, 5000),
                  "no registration of %s carries both certificates", tp_pq);

    /* the summary shows the visor's own certificate; an open visor's is null */
    ck_assert_int_eq(api(&vp, "GET", "/api/summary", NULL, &o), 200);
    m = json_object_object_get(o, "membership");
    ck_assert_str_eq(jstr(m, "network"), pn.network.pk_hex);
    ck_assert_str_eq(jstr(m, "role"), "visor");
    ck_assert_str_eq(jstr(m, "name"), "private-p");
    ck_assert_str_eq(json_object_to_json_string_ext(json_object_object_get(m, "groups"), JSON_C_TO_STRING_PLAIN),
                     "[\"test\",\"lab\"]");
    ck_assert_int_gt(json_object_get_int64(json_object_object_get(m, "not_after")), sw_unix_ms() / 1000 + 80000);
    ck_assert_int_lt(json_object_get_int64(json_object_object_get(m, "not_before")), sw_unix_ms() / 1000);
    json_object_put(o);
    ck_assert_int_eq(api(&vo, "GET", "/api/summary", NULL, &o), 200);
    ck_assert(json_object_object_get_ex(o, "membership", &m) && m == NULL);
    json_object_put(o);

    /* skywire-cli node summary prints it */
    snprintf(bin, sizeof(bin), "%s", th_bin("skywire-cli"));
    const char *argv[] = { bin, "node", "summary", "--config", vp.config, NULL };
    ck_assert_int_eq(th_run(argv, out, sizeof(out), err, sizeof(err), 10000), 0);
    ck_assert_msg(strstr(out, "member:         visor \"private-p\", groups test,lab, valid "), "%s", out);
    const char *argv_o[] = { bin, "node", "summary", "--config", vo.config, NULL };
    ck_assert_int_eq(th_run(argv_o, out, sizeof(out), err, sizeof(err), 10000), 0);
    ck_assert_msg(strstr(out, "membership:     open network"), "%s", out);
}
END_TEST

START_TEST(test_outsider_refused)
{
    struct json_object *o = NULL;
    char needle[200];
    long st;

    /* an open visor dials a member: refused after message 3, told why */
    st = add_stcp(&vo, &vp, &o);
    ck_assert_msg(st == 502, "add-tp O -> P: %ld %s", st, json_object_to_json_string(o));
    ck_assert_msg(strstr(err_msg(o), "refused by the peer: not a member: no certificate"), "%s", err_msg(o));
    json_object_put(o);
    snprintf(needle, sizeof(needle), "refused %s: not a member: no certificate", vo.pk_hex);
    ck_assert(th_log_wait(vp.log, needle, 2000));
    ck_assert_int_eq(th_log_count(vp.log, needle), 1); /* one line */
    ck_assert_int_eq(th_log_count(vp.log, "handshake failed"), 0);

    /* a member dials the open visor: refused at message 2 (no certificate came back) */
    st = add_stcp(&vp, &vo, &o);
    ck_assert_msg(st == 502, "add-tp P -> O: %ld %s", st, json_object_to_json_string(o));
    ck_assert_msg(strstr(err_msg(o), "refused the peer: not a member: no certificate"), "%s", err_msg(o));
    json_object_put(o);

    /* neither kept a transport to the other */
    ck_assert_int_eq(api(&vo, "GET", "/api/transports", NULL, &o), 200);
    ck_assert_int_eq(json_object_array_length(o), 0);
    json_object_put(o);
    ck_assert_int_eq(api(&vp, "GET", "/api/transports", NULL, &o), 200);
    ck_assert_int_eq(json_object_array_length(o), 1); /* P-Q only */
    json_object_put(o);
}
END_TEST

START_TEST(test_bad_certificates_refused)
{
    struct sw_keypair me, other_key;
    struct th_network other_net;
    uint8_t raw[SW_CERT_MAX_LEN + 1];
    char why[256], needle[200];
    size_t n, peer_len = 0;
    struct json_object *o;

    sw_keypair_generate(&me);
    th_network_init(&other_net);
    sw_keypair_generate(&other_key);

    /* the genuine certificate: the visor answers with ENTRY_SIG, and sent its own in message 2 */
    ck_assert_int_eq(th_network_cert_ex(&pn.network, &me.pk, SW_ROLE_VISOR, "raw", NULL, -60, 3600,
                                        NULL, NULL, raw, &n), 0);
    ck_assert_int_eq(raw_dial(&vp, &me, raw, n, why, sizeof(why), &peer_len), VISOR_TP_PKT_ENTRY_SIG);
    ck_assert_uint_eq(peer_len, strlen(p_cert) / 2);

    /* a visor key posing as a messaging server (and the reverse: not a visor) */
    ck_assert_int_eq(th_network_cert_ex(&pn.network, &me.pk, SW_ROLE_MESSAGING_SERVER, "raw", NULL, -60, 3600,
                                        NULL, NULL, raw, &n), 0);
    ck_assert_int_eq(raw_dial(&vp, &me, raw, n, why, sizeof(why), &peer_len), VISOR_TP_PKT_REFUSE);
    ck_assert_str_eq(why, "not a member in this role: role messaging-server, expected visor");
    ck_assert_int_eq(th_network_cert_ex(&pn.network, &me.pk, SW_ROLE_SERVICE, "raw", NULL, -60, 3600,
                                        NULL, NULL, raw, &n), 0);
    ck_assert_int_eq(raw_dial(&vp, &me, raw, n, why, sizeof(why), &peer_len), VISOR_TP_PKT_REFUSE);
    ck_assert_str_eq(why, "not a member in this role: role service, expected visor");

    /* expired, not valid yet, another network's, another key's, flipped bits, none */
    ck_assert_int_eq(th_network_cert_ex(&pn.network, &me.pk, SW_ROLE_VISOR, "raw", NULL, -7200, -3600,
                                        NULL, NULL, raw, &n), 0);
    ck_assert_int_eq(raw_dial(&vp, &me, raw, n, why, sizeof(why), &peer_len), VISOR_TP_PKT_REFUSE);
    ck_assert_msg(strstr(why, "not a member: ") && strstr(why, "expired"), "%s", why);
    ck_assert_int_eq(th_network_cert_ex(&pn.network, &me.pk, SW_ROLE_VISOR, "raw", NULL, 3600, 7200,
                                        NULL, NULL, raw, &n), 0);
    ck_assert_int_eq(raw_dial(&vp, &me, raw, n, why, sizeof(why), &peer_len), VISOR_TP_PKT_REFUSE);
    ck_assert_msg(strstr(why, "not a member: "), "%s", why);
    ck_assert_int_eq(th_network_cert_ex(&other_net, &me.pk, SW_ROLE_VISOR, "raw", NULL, -60, 3600,
                                        NULL, NULL, raw, &n), 0);
    ck_assert_int_eq(raw_dial(&vp, &me, raw, n, why, sizeof(why), &peer_len), VISOR_TP_PKT_REFUSE);
    ck_assert_msg(strstr(why, "not a member: "), "%s", why);
    ck_assert_int_eq(th_network_cert_ex(&pn.network, &other_key.pk, SW_ROLE_VISOR, "raw", NULL, -60, 3600,
                                        NULL, NULL, raw, &n), 0);
    ck_assert_int_eq(raw_dial(&vp, &me, raw, n, why, sizeof(why), &peer_len), VISOR_TP_PKT_REFUSE);
    ck_assert_str_eq(why, "not a member: the certificate is for another key");
    ck_assert_int_eq(th_network_cert_ex(&pn.network, &me.pk, SW_ROLE_VISOR, "raw", NULL, -60, 3600,
                                        NULL, NULL, raw, &n), 0);
    raw[n - 1] ^= 0x01; /* the signature */
    ck_assert_int_eq(raw_dial(&vp, &me, raw, n, why, sizeof(why), &peer_len), VISOR_TP_PKT_REFUSE);
    ck_assert_msg(strstr(why, "not a member: "), "%s", why);
    raw[n - 1] ^= 0x01;
    raw[40] ^= 0x80; /* the subject */
    ck_assert_int_eq(raw_dial(&vp, &me, raw, n, why, sizeof(why), &peer_len), VISOR_TP_PKT_REFUSE);
    ck_assert_msg(strstr(why, "not a member: "), "%s", why);
    ck_assert_int_eq(raw_dial(&vp, &me, raw, 0, why, sizeof(why), &peer_len), VISOR_TP_PKT_REFUSE);
    ck_assert_str_eq(why, "not a member: no certificate");

    /* one log line per refusal; nothing was kept; the metric counts them */
    sw_pk_to_hex(&me.pk, needle + snprintf(needle, sizeof(needle), "refused "));
    ck_assert(th_log_wait(vp.log, "expected visor", 2000));
    ck_assert_int_ge(th_log_count(vp.log, needle), 9);
    ck_assert_int_eq(api(&vp, "GET", "/api/transports", NULL, &o), 200);
    for (size_t i = 0; i < json_object_array_length(o); i++)
        ck_assert_str_ne(jstr(json_object_array_get_idx(o, i), "remote_pk"), needle + 8);
    json_object_put(o);
    sw_keypair_wipe(&me);
    sw_keypair_wipe(&other_net.kp);
    sw_keypair_wipe(&other_key);
}
END_TEST

START_TEST(test_revoked_closed)
{
    struct json_object *o = NULL;
    char needle[256];
    int64_t t0;
    long st;

    ck_assert(wait_state(&vp, tp_pq, "up", true, 5000));
    /* the operator revokes Q: P forgets the transport within seconds (the list is reread every
     * 300 ms here, every 20 s by default: well within a minute) and deletes it from the
     * discovery */
    t0 = sw_mono_ms();
    ck_assert_int_eq(th_net_member_revoke(&pn, &vq.pk, 1), 0);
    ck_assert(wait_state(&vp, tp_pq, "absent", true, 10000));
    ck_assert_int_lt(sw_ms_since(t0), 10000);
    ck_assert(deleted(tp_pq, 5000));
    snprintf(needle, sizeof(needle), "refused %s: not a member: %s is revoked", vq.pk_hex, vq.pk_hex);
    ck_assert(th_log_wait(vp.log, needle, 2000));
    ck_assert(th_log_wait(vq.log, "refused by the peer: not a member: ", 2000));
    ck_assert(th_log_wait(vq.log, "our own certificate is no longer valid", 2000));
    ck_assert(wait_state(&vq, tp_pq, "up", false, 2000));

    /* Q cannot come back while revoked */
    st = add_stcp(&vq, &vp, &o);
    ck_assert_msg(st == 502, "add-tp Q -> P: %ld %s", st, json_object_to_json_string(o));
    ck_assert_msg(strstr(err_msg(o), "refused by the peer: not a member: ") && strstr(err_msg(o), "is revoked"),
                  "%s", err_msg(o));
    json_object_put(o);

    /* Q's add-tp made the transport remembered on Q: its redials are refused, their backoff
     * grows (1, 2, 4, 8 s ...). A newer list without Q makes Q redial at once, not after the
     * backoff, and the transport comes back on both sides; P's add-tp finds it up. */
    th_sleep_ms(7000);
    ck_assert_int_eq(th_net_member_revoke(&pn, NULL, 0), 0);
    t0 = sw_mono_ms();
    ck_assert(wait_state(&vq, tp_pq, "up", true, 4000));
    ck_assert_int_lt(sw_ms_since(t0), 4000);
    st = add_stcp(&vp, &vq, &o);
    ck_assert_msg(st == 200, "add-tp P -> Q again: %ld %s", st, json_object_to_json_string(o));
    json_object_put(o);
}
END_TEST

/* The visor refuses to start (exit 1) with a message naming the problem. */
static void start_fails(const struct th_visor *v, const char *want)
{
    char bin[512], out[2048], err[4096];
    snprintf(bin, sizeof(bin), "%s", th_bin("skywire-visor"));
    const char *argv[] = { bin, v->config, NULL };
    int rc = th_run(argv, out, sizeof(out), err, sizeof(err), 10000);
    ck_assert_msg(rc == 1, "exit %d: %s", rc, err);
    ck_assert_msg(strstr(err, want), "'%s' not in: %s", want, err);
}

START_TEST(test_start_and_gen_config)
{
    struct th_visor v;
    struct sw_keypair other;
    char cert[512], out[2048], err[2048], bin[512], path[512];
    struct json_object *cfg;

    gen_visor(&v, "private-bad", "private-bad", "", NULL);
    snprintf(cert, sizeof(cert), "%s/private-bad.cert", dir);
    /* no certificate file */
    ck_assert_int_eq(unlink(cert), 0);
    start_fails(&v, cert);
    /* a certificate of another key, an expired one, a messaging server's */
    sw_keypair_generate(&other);
    ck_assert_int_eq(th_net_member_cert(&pn, &other.pk, SW_ROLE_VISOR, "x", "", 3600, cert, NULL), 0);
    start_fails(&v, "the certificate is for another key");
    ck_assert_int_eq(th_net_member_cert(&pn, &v.pk, SW_ROLE_VISOR, "x", "", -10, cert, NULL), 0);
    start_fails(&v, "expired");
    ck_assert_int_eq(th_net_member_cert(&pn, &v.pk, SW_ROLE_MESSAGING_SERVER, "x", "", 3600, cert, NULL), 0);
    start_fails(&v, "role messaging-server, this daemon needs visor");
    sw_keypair_wipe(&other);

    /* gen-config: the network section, and flags that need each other */
    cfg = json_object_from_file(v.config);
    ck_assert_ptr_nonnull(cfg);
    struct json_object *n = json_object_object_get(cfg, "network");
    ck_assert_str_eq(jstr(n, "public_key"), pn.network.pk_hex);
    ck_assert_str_eq(jstr(n, "certificate_file"), cert);
    ck_assert_str_eq(jstr(n, "revocations"), pn.revocations);
    json_object_put(cfg);
    snprintf(bin, sizeof(bin), "%s", th_bin("skywire-cli"));
    snprintf(path, sizeof(path), "%s/gen.json", dir);
    const char *no_cert[] = { bin, "node", "gen-config", "-o", path, "--network", pn.network.pk_hex, NULL };
    ck_assert_int_eq(th_run(no_cert, out, sizeof(out), err, sizeof(err), 10000), 2);
    ck_assert_msg(strstr(err, "--network needs --cert-file"), "%s", err);
    const char *no_net[] = { bin, "node", "gen-config", "-o", path, "--cert-file", cert, NULL };
    ck_assert_int_eq(th_run(no_net, out, sizeof(out), err, sizeof(err), 10000), 2);
    ck_assert_msg(strstr(err, "need --network"), "%s", err);
    const char *bad_pk[] = { bin, "node", "gen-config", "-o", path, "--network", "zz", "--cert-file", cert, NULL };
    ck_assert_int_eq(th_run(bad_pk, out, sizeof(out), err, sizeof(err), 10000), 2);
    ck_assert_msg(strstr(err, "--network 'zz': not a valid public key"), "%s", err);
    ck_assert_int_ne(access(path, F_OK), 0);
    /* without --revocations the visor reads the transport discovery's list */
    const char *dflt[] = { bin, "node", "gen-config", "-o", "-", "--tpd", "http://tpd.example:9091",
                           "--network", pn.network.pk_hex, "--cert-file", cert, NULL };
    ck_assert_int_eq(th_run(dflt, out, sizeof(out), err, sizeof(err), 10000), 0);
    ck_assert_ptr_nonnull(cfg = json_tokener_parse(out));
    ck_assert_ptr_null(json_object_object_get(json_object_object_get(cfg, "network"), "revocations"));
    json_object_put(cfg);
}
END_TEST

static Suite *visor_private_suite(void)
{
    Suite *s = suite_create("visor_private");
    TCase *tc = tcase_create("private");

    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_members_connect);
    tcase_add_test(tc, test_outsider_refused);
    tcase_add_test(tc, test_bad_certificates_refused);
    tcase_add_test(tc, test_revoked_closed);
    tcase_add_test(tc, test_start_and_gen_config);
    suite_add_tcase(s, tc);
    return s;
}

const struct th_check_main th_check_main = {
    .suite = visor_private_suite,
    .fork = CK_NOFORK, /* the daemons belong to this process */
    .before = th_check_init_crypto_http,
};
