/* Integration tests of the hypervisor (docs/hypervisor.md): the local network services,
 * a hypervisor with two visors (A runs helloworld) that connect out to it, a third visor
 * C whose key is not allowed, and a second hypervisor without visors for the auth state
 * machine; a third hypervisor shows a visor of a private network with its certificate.
 * Everything real, on 127.0.0.1. */
#include "common/hv_chan.h"
#include "common/json.h"
#include "common/keys.h"
#include "tests/harness/api_client.h"
#include "tests/harness/check_main.h"
#include "tests/harness/harness.h"
#include "tests/harness/net_env.h"
#include "tests/harness/visor_env.h"

#include <check.h>
#include <pthread.h>
#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static struct th_net net = { .name = "hypervisor" };
static struct th_visor va, vb, vc, vd;
static struct sw_keypair hv_kp, fake_kp; /* fake_kp: an allowed visor key the tests speak for */
static char fake_hex[SW_PK_HEX_LEN + 1], hv_vaddr[32];
static char hv_hex[SW_PK_HEX_LEN + 1];
static char hv_base[64], hv2_base[64], hv_log[512], hv2_log[512], hv2_dir[512];
static pid_t hv_pid = -1, hv2_pid = -1;
static char tp_id[SW_UUID_STR_LEN + 1];
#define PASSWORD "admin-pass-1"

/* ---- a cookie-keeping client ----------------------------------------------------------------- */

struct hvc {
    const char *base;
    char cookie[160]; /* swhv_session=... */
    char set_cookie[512];
    char csrf[96];
    const char *source;  /* local address to connect from (e.g. "127.0.0.2"); NULL = any */
    const char *headers; /* extra request headers, '\n'-separated; a Content-Type replaces JSON's */
    long retry_after;    /* the last Retry-After seen, or -1 */
    struct sw_buf *raw;  /* when set: the last answer's body, as it came */
};

static size_t hdr_cb(char *d, size_t s, size_t n, void *arg)
{
    struct hvc *c = arg;
    size_t len = s * n;

    if (len > 13 && strncasecmp(d, "Retry-After: ", 13) == 0)
        c->retry_after = strtol(d + 13, NULL, 10);
    if (len > 12 && strncasecmp(d, "Set-Cookie: ", 12) == 0) {
        snprintf(c->set_cookie, sizeof(c->set_cookie), "%.*s", (int)(len - 12), d + 12);
        c->set_cookie[strcspn(c->set_cookie, "\r\n")] = '\0';
        snprintf(c->cookie, sizeof(c->cookie), "%.*s", (int)strcspn(c->set_cookie, ";"), c->set_cookie);
    }
    return len;
}

static size_t body_cb(char *d, size_t s, size_t n, void *arg)
{
    struct sw_buf *b = arg;
    return sw_buf_append(b, d, s * n) == SW_OK ? s * n : 0;
}

/* method base+target with the client's cookie and (if csrf) its CSRF token; returns the
 * status, *out the parsed JSON (may be NULL). */
/* The client's extra headers, then JSON's Content-Type unless they name one. */
static struct curl_slist *base_headers(const struct hvc *c)
{
    struct curl_slist *hdrs = NULL;
    const char *p = c->headers;
    char line[512];

    while (p && *p) {
        size_t n = strcspn(p, "\n");
        snprintf(line, sizeof(line), "%.*s", (int)n, p);
        hdrs = curl_slist_append(hdrs, line);
        p += n + (p[n] == '\n');
    }
    if (!c->headers || !strcasestr(c->headers, "Content-Type:"))
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
    return hdrs;
}

static long call(struct hvc *c, const char *method, const char *target, const char *body, bool csrf,
                 struct json_object **out)
{
    CURL *h = curl_easy_init();
    struct curl_slist *hdrs = base_headers(c);
    char url[1024], ck[200], cs[160], iface[64];
    struct sw_buf b;
    long status = -1;

    sw_buf_init(&b, 4u << 20);
    c->retry_after = -1;
    if (c->source) { /* bind the client socket: the hypervisor sees another source address */
        snprintf(iface, sizeof(iface), "host!%s", c->source);
        curl_easy_setopt(h, CURLOPT_INTERFACE, iface);
    }
    snprintf(url, sizeof(url), "%s%s", c->base, target);
    if (c->cookie[0]) {
        snprintf(ck, sizeof(ck), "Cookie: %s", c->cookie);
        hdrs = curl_slist_append(hdrs, ck);
    }
    if (csrf) {
        snprintf(cs, sizeof(cs), "X-CSRF-Token: %s", c->csrf);
        hdrs = curl_slist_append(hdrs, cs);
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (body)
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, hdr_cb);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, c);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, body_cb);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 40000L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    if (curl_easy_perform(h) == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (out) {
        *out = NULL;
        if (b.len)
            sw_json_parse(b.data, b.len, out, NULL);
    }
    if (c->raw) {
        sw_buf_reset(c->raw);
        if (b.len)
            sw_buf_append(c->raw, b.data, b.len);
        sw_buf_append(c->raw, "", 1); /* a C string */
    }
    if (status >= 400 && getenv("SW_TEST_VERBOSE"))
        fprintf(stderr, "%s %s -> %ld %s\n", method, target, status, b.data ? b.data : "");
    sw_buf_free(&b);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    return status;
}

static const char *err_code(struct json_object *o)
{
    return th_error_code(o) ? th_error_code(o) : "";
}

static long login(struct hvc *c, const char *password)
{
    char body[256];
    struct json_object *o = NULL, *t;
    long st;

    snprintf(body, sizeof(body), "{\"username\":\"admin\",\"password\":\"%s\"}", password);
    c->cookie[0] = '\0';
    st = call(c, "POST", "/api/login", body, false, &o);
    if (st == 200 && json_object_object_get_ex(o, "csrf_token", &t))
        snprintf(c->csrf, sizeof(c->csrf), "%s", json_object_get_string(t));
    json_object_put(o);
    return st;
}

static void expect(struct hvc *c, const char *method, const char *target, const char *body, bool csrf,
                   long status, const char *code)
{
    struct json_object *o = NULL;
    long st = call(c, method, target, body, csrf, &o);
    ck_assert_msg(st == status, "%s %s: HTTP %ld, expected %ld", method, target, st, status);
    if (code)
        ck_assert_str_eq(err_code(o), code);
    json_object_put(o);
}

/* ---- fixture --------------------------------------------------------------------------------- */

static void add_helloworld(struct th_visor *v)
{
    struct json_object *cfg = json_object_from_file(v->config);
    ck_assert_ptr_nonnull(cfg);
    json_object_object_add(cfg, "apps", json_tokener_parse(
        "[{\"app\":\"helloworld\",\"auto_start\":true,\"port\":9,\"args\":[]}]"));
    ck_assert_int_eq(json_object_to_file_ext(v->config, cfg, JSON_C_TO_STRING_PRETTY), 0);
    json_object_put(cfg);
}

static pid_t start_hv(const char *name, const char *dirpath, char *base, char *log, const char *const extra[])
{
    char addr[32], vaddr[32], key[600], data[600];
    const char *argv[32];
    uint16_t port = th_free_port();
    size_t n = 0;

    snprintf(addr, sizeof(addr), "127.0.0.1:%u", port);
    snprintf(base, 64, "http://%s", addr);
    snprintf(key, sizeof(key), "%s/%s.key", dirpath, name);
    snprintf(data, sizeof(data), "%s/%s-data", dirpath, name);
    snprintf(log, 512, "%s", th_log_path(name));
    argv[n++] = th_bin("hypervisor");
    argv[n++] = "--addr";
    argv[n++] = addr;
    argv[n++] = "--key-file";
    argv[n++] = key;
    argv[n++] = "--data-dir";
    argv[n++] = data;
    for (size_t i = 0; extra && extra[i] && n < 30; i++)
        argv[n++] = extra[i];
    if (!extra || !extra[0]) { /* hv2: any free port for links */
        snprintf(vaddr, sizeof(vaddr), "127.0.0.1:%u", th_free_port());
        argv[n++] = "--visor-addr";
        argv[n++] = vaddr;
    }
    argv[n] = NULL;
    return th_start_service(argv, port, log);
}

static void setup(void)
{
    char key[600], pwfile[600], hv_arg[128], vaddr[32], tpd[96];
    FILE *f;

    curl_global_init(CURL_GLOBAL_DEFAULT);
    ck_assert_msg(th_net_start(&net), "the services did not start");
    sw_keypair_generate(&hv_kp);
    sw_pk_to_hex(&hv_kp.pk, hv_hex);
    snprintf(key, sizeof(key), "%s/hv.key", net.dir);
    ck_assert_int_eq(sw_keyfile_save(key, &hv_kp, NULL), 0);
    snprintf(pwfile, sizeof(pwfile), "%s/hv-password", net.dir);
    ck_assert_ptr_nonnull(f = fopen(pwfile, "w"));
    fprintf(f, "%s\n", PASSWORD);
    fclose(f);
    snprintf(vaddr, sizeof(vaddr), "127.0.0.1:%u", th_free_port());
    snprintf(hv_vaddr, sizeof(hv_vaddr), "%s", vaddr);
    sw_keypair_generate(&fake_kp);
    sw_pk_to_hex(&fake_kp.pk, fake_hex);
    snprintf(hv_arg, sizeof(hv_arg), "%s@%s", hv_hex, vaddr);
    const char *vextra[] = { "--hypervisor", hv_arg, NULL };
    ck_assert_int_eq(th_net_visor_gen(&net, &va, "hv-a", NULL, vextra), 0);
    ck_assert_int_eq(th_net_visor_gen(&net, &vb, "hv-b", NULL, vextra), 0);
    ck_assert_int_eq(th_net_visor_gen(&net, &vc, "hv-c", NULL, vextra), 0);
    add_helloworld(&va);
    snprintf(tpd, sizeof(tpd), "%s", net.td_base);
    const char *extra[] = { "--visor-addr", vaddr, "--visor", va.pk_hex, "--visor", vb.pk_hex, "--visor", fake_hex,
                            "--tpd", tpd, "--admin-password-file", pwfile, "--allowed-host", "hv.example.org", NULL };
    hv_pid = start_hv("hv", net.dir, hv_base, hv_log, extra);
    ck_assert_msg(hv_pid > 0, "the hypervisor did not start");
    snprintf(hv2_dir, sizeof(hv2_dir), "%s", net.dir);
    hv2_pid = start_hv("hv2", net.dir, hv2_base, hv2_log, NULL);
    ck_assert_msg(hv2_pid > 0, "the second hypervisor did not start");
    ck_assert_int_eq(th_visor_start(&va), 0);
    ck_assert_int_eq(th_visor_start(&vb), 0);
}

static void teardown(void)
{
    if (hv_pid > 0)
        th_stop(hv_pid, 5000);
    if (hv2_pid > 0)
        th_stop(hv2_pid, 5000);
    th_net_stop(&net, (struct th_visor *[]){ &va, &vb, &vc, &vd }, 4);
    sw_keypair_wipe(&hv_kp);
    sw_keypair_wipe(&fake_kp);
}

/* Polls GET /api/visors until visor pk_hex has online == want. */
static bool wait_online(struct hvc *c, const char *pk_hex, bool want, int timeout_ms)
{
    int64_t end = sw_deadline_ms(timeout_ms);

    do {
        struct json_object *o = NULL;
        bool hit = false;
        if (call(c, "GET", "/api/visors", NULL, false, &o) == 200) {
            for (size_t i = 0; i < json_object_array_length(o); i++) {
                struct json_object *e = json_object_array_get_idx(o, i);
                if (strcmp(json_object_get_string(json_object_object_get(e, "pk")), pk_hex) == 0)
                    hit = json_object_get_boolean(json_object_object_get(e, "online")) == want &&
                          (!want || json_object_object_get(e, "summary"));
            }
        }
        json_object_put(o);
        if (hit)
            return true;
        th_sleep_ms(100);
    } while (sw_mono_ms() < end);
    return false;
}

static struct hvc session(void)
{
    struct hvc c = { .base = hv_base };
    ck_assert_int_eq(login(&c, PASSWORD), 200);
    return c;
}

/* ---- tests ----------------------------------------------------------------------------------- */

/* The auth state machine, on the second hypervisor (its password was generated). */
START_TEST(test_auth)
{
    struct hvc c1 = { .base = hv2_base }, c2 = { .base = hv2_base }, anon = { .base = hv2_base };
    struct hvc old_c1, mixed = { .base = hv2_base };
    char path[700], pw[128] = "", body[512], *log = NULL;
    struct json_object *o = NULL;
    struct stat st;
    FILE *f;
    long s = 0;
    int i;

    expect(&anon, "GET", "/api/visors", NULL, false, 401, "unauthenticated");
    expect(&anon, "GET", "/api/session", NULL, false, 401, "unauthenticated");
    expect(&anon, "GET", "/api/network", NULL, false, 401, "unauthenticated");
    expect(&anon, "GET", "/health", NULL, false, 200, NULL);
    expect(&anon, "GET", "/metrics", NULL, false, 401, "unauthenticated");
    /* the generated password: a 0600 file named in the log, the password itself never logged */
    snprintf(path, sizeof(path), "%s/hv2-data/initial-password", hv2_dir);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);
    ck_assert_ptr_nonnull(f = fopen(path, "r"));
    ck_assert_ptr_nonnull(fgets(pw, sizeof(pw), f));
    fclose(f);
    pw[strcspn(pw, "\n")] = '\0';
    ck_assert_int_ge(strlen(pw), 16);
    ck_assert(th_log_wait(hv2_log, "initial-password", 1000));
    ck_assert_ptr_nonnull(f = fopen(hv2_log, "r"));
    log = calloc(1, 1 << 20);
    ck_assert_uint_gt(fread(log, 1, (1 << 20) - 1, f), 0);
    fclose(f);
    ck_assert_ptr_null(strstr(log, pw));
    free(log);

    ck_assert_int_eq(login(&c1, "wrong-password"), 401);
    ck_assert_int_eq(login(&c1, pw), 200);
    ck_assert_ptr_nonnull(strstr(c1.set_cookie, "HttpOnly"));
    ck_assert_ptr_nonnull(strstr(c1.set_cookie, "SameSite=Strict"));
    ck_assert_ptr_nonnull(strstr(c1.set_cookie, "Path=/"));
    ck_assert_ptr_null(strstr(c1.set_cookie, "Secure"));
    ck_assert_int_eq(call(&c1, "GET", "/api/session", NULL, false, &o), 200);
    ck_assert_str_eq(json_object_get_string(json_object_object_get(o, "user")), "admin");
    ck_assert_str_eq(json_object_get_string(json_object_object_get(o, "csrf_token")), c1.csrf);
    json_object_put(o);
    expect(&c1, "GET", "/api/visors", NULL, false, 200, NULL);
    /* mutations need the CSRF token */
    expect(&c1, "POST", "/api/logout", "{}", false, 403, "csrf");
    ck_assert_int_eq(login(&c2, pw), 200);
    snprintf(body, sizeof(body), "{\"old_password\":\"%s\",\"new_password\":\"short\"}", pw);
    expect(&c1, "POST", "/api/password", body, true, 400, "invalid_password");
    expect(&c1, "POST", "/api/password", "{\"old_password\":\"nope-nope\",\"new_password\":\"new-password-2\"}",
           true, 401, "invalid_credentials");
    snprintf(body, sizeof(body), "{\"old_password\":\"%s\",\"new_password\":\"new-password-2\"}", pw);
    expect(&c1, "POST", "/api/password", body, false, 403, "csrf");
    old_c1 = c1;
    ck_assert_int_eq(call(&c1, "POST", "/api/password", body, true, &o), 200);
    ck_assert(json_object_get_boolean(json_object_object_get(o, "changed")));
    snprintf(c1.csrf, sizeof(c1.csrf), "%s", json_object_get_string(json_object_object_get(o, "csrf_token")));
    json_object_put(o);
    o = NULL;
    ck_assert_int_ne(access(path, F_OK), 0); /* the generated password's file is gone */
    /* every session ended, the caller's too: it got a new cookie and CSRF token */
    ck_assert_str_ne(c1.cookie, old_c1.cookie);
    ck_assert_str_ne(c1.csrf, old_c1.csrf);
    ck_assert_uint_eq(strlen(c1.csrf), 64);
    ck_assert_ptr_nonnull(strstr(c1.set_cookie, "HttpOnly"));
    expect(&c2, "GET", "/api/session", NULL, false, 401, "unauthenticated");
    expect(&old_c1, "GET", "/api/session", NULL, false, 401, "unauthenticated");
    expect(&old_c1, "POST", "/api/logout", "{}", true, 401, "unauthenticated");
    snprintf(mixed.cookie, sizeof(mixed.cookie), "%s", c1.cookie); /* new cookie, old CSRF token */
    snprintf(mixed.csrf, sizeof(mixed.csrf), "%s", old_c1.csrf);
    expect(&mixed, "POST", "/api/logout", "{}", true, 403, "csrf");
    ck_assert_int_eq(call(&c1, "GET", "/api/session", NULL, false, &o), 200);
    ck_assert_str_eq(json_object_get_string(json_object_object_get(o, "csrf_token")), c1.csrf);
    json_object_put(o);
    o = NULL;
    /* only the new password works */
    ck_assert_int_eq(login(&c2, pw), 401);
    ck_assert_int_eq(login(&c2, "new-password-2"), 200);
    /* logout ends the session and clears the cookie */
    expect(&c1, "POST", "/api/logout", "{}", true, 200, NULL);
    ck_assert_ptr_nonnull(strstr(c1.set_cookie, "Max-Age=0"));
    snprintf(c1.cookie, sizeof(c1.cookie), "%s", c2.cookie);
    expect(&c2, "GET", "/api/session", NULL, false, 200, NULL);
    /* a stray cookie of the same name (a parent domain's) ahead of ours does not hide it */
    snprintf(c1.cookie, sizeof(c1.cookie), "swhv_session=stray; %.100s", c2.cookie);
    expect(&c1, "GET", "/api/session", NULL, false, 200, NULL);
    /* rate limit: the last login's success forgot this address's failures; after 5 new ones
     * it waits (1 min), even with the right password */
    for (i = 0; i < 7 && (s = login(&anon, "wrong-again")) == 401; i++)
        ;
    ck_assert_int_eq(s, 429);
    ck_assert_int_eq(i, 5);
    ck_assert_int_gt(anon.retry_after, 0);
    ck_assert_int_le(anon.retry_after, 60);
    ck_assert_int_eq(login(&anon, "new-password-2"), 429);
    ck_assert(th_log_wait(hv2_log, "rate limited", 1000));
}
END_TEST

/* Pages in a local browser (docs/security.md): a DNS-rebinding page (foreign Host) reads
 * nothing, /metrics included; a page of another site (foreign Origin, or a form's or
 * text/plain body) changes nothing, even holding a session and its CSRF token. */
START_TEST(test_browser_guard)
{
    struct hvc c = session(), alt;
    char t[256], origin[128];

    snprintf(t, sizeof(t), "/api/visors/%s/apps/helloworld/stop", va.pk_hex);
    c.headers = "Host: evil.example";
    expect(&c, "GET", "/api/visors", NULL, false, 403, "forbidden_host");
    expect(&c, "GET", "/metrics", NULL, false, 403, "forbidden_host");
    expect(&c, "GET", "/health", NULL, false, 403, "forbidden_host");
    expect(&c, "GET", "/", NULL, false, 403, "forbidden_host");
    c.headers = "Host: localhost.evil.example:80";
    expect(&c, "GET", "/api/session", NULL, false, 403, "forbidden_host");
    c.headers = "Host: hv.example.org"; /* --allowed-host, as behind a reverse proxy */
    expect(&c, "GET", "/api/session", NULL, false, 200, NULL);
    c.headers = "Host: LOCALHOST:9080";
    expect(&c, "GET", "/api/session", NULL, false, 200, NULL);
    c.headers = "Origin: http://evil.example";
    expect(&c, "POST", t, "{}", true, 403, "forbidden_origin");
    expect(&c, "GET", "/api/session", NULL, false, 200, NULL); /* reads: the Host decides */
    c.headers = "Origin: null";
    expect(&c, "POST", "/api/logout", "{}", true, 403, "forbidden_origin");
    c.headers = "Content-Type: text/plain";
    expect(&c, "POST", t, "{}", true, 415, "unsupported_media_type");
    c.headers = "Content-Type: application/x-www-form-urlencoded";
    expect(&c, "POST", "/api/password", "old_password=a&new_password=bbbbbbbb", true, 415, "unsupported_media_type");
    /* a login form posted from another site (login CSRF) */
    alt = (struct hvc){ .base = hv_base, .headers = "Content-Type: text/plain" };
    ck_assert_int_eq(login(&alt, PASSWORD), 415);
    alt.headers = "Origin: https://evil.example";
    ck_assert_int_eq(login(&alt, PASSWORD), 403);
    /* the page's own origin (any spelling of this host) passes */
    snprintf(origin, sizeof(origin), "Origin: %s", hv_base);
    alt.headers = origin;
    ck_assert_int_eq(login(&alt, PASSWORD), 200);
    c.headers = "Origin: https://hv.example.org";
    expect(&c, "GET", "/api/session", NULL, false, 200, NULL);
    expect(&c, "POST", "/api/logout", "{}", true, 200, NULL);
    ck_assert(th_log_wait(hv_log, "refused POST", 1000));
}
END_TEST

static long login_from(const char *base, const char *source, const char *password, long *retry_after)
{
    struct hvc c = { .base = base, .source = source };
    long st = login(&c, password);
    if (retry_after)
        *retry_after = c.retry_after;
    return st;
}

/* Every loopback address is one source (127.0.0.0/8 is all this machine): five wrong
 * passwords spread over 127.0.0.2-6 use up the free guesses of them all, so 127.0.0.7,
 * 127.0.0.1 and any other 127.x wait, the right password included (addresses elsewhere are
 * tests/security/test_hv_login_sources.sh's, in a network namespace). Then the local
 * recovery path: --reset-password and a restart. */
START_TEST(test_login_backoff)
{
    char base[64], log[512], src[32], pwfile[700], data[600], out[4096], err[1024], pw[128] = "";
    const char *const extra[] = { "--admin-password-file", pwfile, "--visor-addr", "127.0.0.1:0", NULL };
    long wait = -1;
    pid_t pid;
    FILE *f;

    snprintf(pwfile, sizeof(pwfile), "%s/hv-password", net.dir);
    ck_assert_msg((pid = start_hv("hv5", net.dir, base, log, extra)) > 0, "hv5 did not start");
    for (int i = 2; i <= 6; i++) {
        snprintf(src, sizeof(src), "127.0.0.%d", i);
        ck_assert_msg(login_from(base, src, "guess-guess", NULL) == 401, "%s", src);
    }
    ck_assert_int_eq(login_from(base, "127.0.0.7", "guess-guess", &wait), 429);
    ck_assert_msg(wait > 0 && wait <= 60, "Retry-After %ld", wait);
    ck_assert_int_eq(login_from(base, "127.0.0.1", PASSWORD, NULL), 429);
    ck_assert_int_eq(login_from(base, "127.45.6.7", PASSWORD, NULL), 429);
    ck_assert_int_eq(login_from(base, "127.0.0.2", PASSWORD, NULL), 429);
    ck_assert(th_log_wait(log, "login from 127.0.0.7: rate limited (source loopback", 1000));
    ck_assert(th_log_wait(log, "login from 127.45.6.7: rate limited (source loopback", 1000));
    th_stop(pid, 5000);

    /* locked out, or the password forgotten: reset it locally and restart */
    snprintf(data, sizeof(data), "%s/hv5-data", net.dir);
    const char *reset[] = { th_bin("hypervisor"), "--reset-password", "--data-dir", data, NULL };
    ck_assert_int_eq(th_run(reset, out, sizeof(out), err, sizeof(err), 30000), 0);
    ck_assert_ptr_nonnull(strstr(out, "initial-password"));
    snprintf(pwfile, sizeof(pwfile), "%s/initial-password", data);
    ck_assert_ptr_nonnull(f = fopen(pwfile, "r"));
    ck_assert_ptr_nonnull(fgets(pw, sizeof(pw), f));
    fclose(f);
    pw[strcspn(pw, "\n")] = '\0';
    ck_assert_msg((pid = start_hv("hv5", net.dir, base, log, extra + 2)) > 0, "hv5 did not restart");
    ck_assert_int_eq(login_from(base, "127.0.0.2", PASSWORD, NULL), 401); /* restarted: no backoff */
    ck_assert_int_eq(login_from(base, "127.0.0.2", pw, NULL), 200);
    th_stop(pid, 5000);
}
END_TEST

/* Whether the metrics text names something about sessions or logins. */
static bool tells_login(const char *text)
{
    return strstr(text, "hv_sessions") || strstr(text, "route=") || strstr(text, "sw_http_requests_total");
}

/* /metrics tells no one without a session whether the admin is logged in: its request counts
 * by route and status (a 200 on /api/login, the page polling /api/visors) and hv_sessions
 * would. Without a session, or with a wrong one, 401 and nothing else; with one, all of it. */
START_TEST(test_metrics_private)
{
    struct sw_buf raw;
    struct hvc anon = { .base = hv_base, .raw = &raw }, c = session();

    sw_buf_init(&raw, 1u << 20);
    c.raw = &raw;
    expect(&c, "GET", "/api/visors", NULL, false, 200, NULL);
    expect(&anon, "GET", "/metrics", NULL, false, 401, "unauthenticated");
    ck_assert_msg(!tells_login(raw.data), "/metrics without a session: %s", raw.data);
    snprintf(anon.cookie, sizeof(anon.cookie), "swhv_session=%064d", 0);
    expect(&anon, "GET", "/metrics", NULL, false, 401, "unauthenticated");
    ck_assert(!tells_login(raw.data));
    expect(&anon, "GET", "/health", NULL, false, 200, NULL);
    ck_assert_msg(!strstr(raw.data, "session") && !strstr(raw.data, "login"), "/health: %s", raw.data);
    /* the admin sees everything, hv_sessions included */
    expect(&c, "GET", "/metrics", NULL, false, 200, NULL);
    ck_assert_ptr_nonnull(strstr(raw.data, "hv_sessions"));
    ck_assert_ptr_nonnull(strstr(raw.data, "hv_visors{state=\"online\"}"));
    ck_assert_ptr_nonnull(strstr(raw.data, "route=\"/api/login\""));
    sw_buf_free(&raw);
}
END_TEST

START_TEST(test_visors_online)
{
    struct hvc c = session();
    struct json_object *o = NULL, *e, *s;

    ck_assert_msg(wait_online(&c, va.pk_hex, true, 15000), "visor A is not online");
    ck_assert_msg(wait_online(&c, vb.pk_hex, true, 15000), "visor B is not online");
    ck_assert_int_eq(call(&c, "GET", "/api/visors", NULL, false, &o), 200);
    ck_assert_uint_eq(json_object_array_length(o), 3);
    for (size_t i = 0; i < 3; i++) {
        e = json_object_array_get_idx(o, i);
        if (strcmp(json_object_get_string(json_object_object_get(e, "pk")), fake_hex) == 0) {
            ck_assert(!json_object_get_boolean(json_object_object_get(e, "online")));
            continue;
        }
        s = json_object_object_get(e, "summary");
        ck_assert_str_eq(json_object_get_string(json_object_object_get(s, "public_key")),
                         json_object_get_string(json_object_object_get(e, "pk")));
        ck_assert_ptr_nonnull(strstr(json_object_get_string(json_object_object_get(e, "remote_addr")), "127.0.0.1:"));
        ck_assert_int_gt(json_object_get_int64(json_object_object_get(e, "connected_since")), 0);
    }
    json_object_put(o);
}
END_TEST

START_TEST(test_summary)
{
    struct hvc c = session();
    struct json_object *o = NULL, *m;
    char t[256];
    struct sw_keypair other;

    snprintf(t, sizeof(t), "/api/visors/%s", va.pk_hex);
    ck_assert_int_eq(call(&c, "GET", t, NULL, false, &o), 200);
    ck_assert_str_eq(json_object_get_string(json_object_object_get(o, "public_key")), va.pk_hex);
    /* an open network: no certificate */
    ck_assert(json_object_object_get_ex(o, "membership", &m) && m == NULL);
    json_object_put(o);
    sw_keypair_generate(&other);
    sw_pk_to_hex(&other.pk, t + strlen("/api/visors/"));
    expect(&c, "GET", t, NULL, false, 404, "unknown_visor");
    expect(&c, "GET", "/api/visors/zz", NULL, false, 400, "invalid_public_key");
    snprintf(t, sizeof(t), "/api/visors/%s/metrics", va.pk_hex);
    expect(&c, "GET", t, NULL, false, 404, "not_found");
    expect(&c, "GET", "/api/nothing", NULL, false, 404, "not_found");
}
END_TEST

START_TEST(test_refused_key)
{
    struct hvc c = session();
    char needle[128], t[128];

    ck_assert_int_eq(th_visor_start(&vc), 0);
    snprintf(needle, sizeof(needle), "refused key %s", vc.pk_hex);
    ck_assert_msg(th_log_wait(hv_log, needle, 10000), "the hypervisor did not refuse visor C");
    snprintf(t, sizeof(t), "/api/visors/%s", vc.pk_hex);
    expect(&c, "GET", t, NULL, false, 404, "unknown_visor");
    th_visor_stop(&vc, false);
}
END_TEST

/* A visor of a private network (dmsg off) behind a third hypervisor: its list entry and its
 * summary carry its certificate (name, groups, expiry), and the page has the column. */
START_TEST(test_membership)
{
    static struct th_net pnet; /* holds a network key only */
    struct sw_keypair hv3_kp;
    struct th_visor ve;
    char key[600], cert[600], hv_arg[128], vaddr[32], hv3_hex[SW_PK_HEX_LEN + 1], hv3_base[64], hv3_log[512];
    char pwfile[600], t[256];
    struct json_object *o = NULL, *e = NULL, *m;
    pid_t hv3_pid;
    int64_t now = sw_unix_ms() / 1000;

    th_network_init(&pnet.network);
    sw_keypair_generate(&hv3_kp);
    sw_pk_to_hex(&hv3_kp.pk, hv3_hex);
    snprintf(key, sizeof(key), "%s/hv-member.key", net.dir);
    ck_assert_int_eq(sw_keyfile_save(key, &hv3_kp, NULL), 0);
    snprintf(vaddr, sizeof(vaddr), "127.0.0.1:%u", th_free_port());
    snprintf(hv_arg, sizeof(hv_arg), "%s@%s", hv3_hex, vaddr);
    snprintf(cert, sizeof(cert), "%s/hv-e.cert", net.dir);
    const char *vextra[] = { "--mdisc", "", "--hypervisor", hv_arg, "--network", pnet.network.pk_hex,
                             "--cert-file", cert, NULL };
    ck_assert_int_eq(th_visor_gen(&ve, net.dir, "hv-e", net.td_base, vextra), 0);
    ck_assert_int_eq(th_net_member_cert(&pnet, &ve.pk, SW_ROLE_VISOR, "lab-e", "ops,eu", 30 * 86400, cert, NULL),
                     0);
    snprintf(pwfile, sizeof(pwfile), "%s/hv-password", net.dir);
    const char *extra[] = { "--visor-addr", vaddr, "--visor", ve.pk_hex, "--admin-password-file", pwfile, NULL };
    hv3_pid = start_hv("hv-member", net.dir, hv3_base, hv3_log, extra);
    ck_assert_msg(hv3_pid > 0, "the third hypervisor did not start");
    ck_assert_int_eq(th_visor_start(&ve), 0);

    struct hvc c = { .base = hv3_base };
    ck_assert_int_eq(login(&c, PASSWORD), 200);
    ck_assert_msg(wait_online(&c, ve.pk_hex, true, 15000), "visor E is not online");
    ck_assert_int_eq(call(&c, "GET", "/api/visors", NULL, false, &o), 200);
    e = json_object_array_get_idx(o, 0);
    m = json_object_object_get(json_object_object_get(e, "summary"), "membership");
    ck_assert_str_eq(json_object_get_string(json_object_object_get(m, "name")), "lab-e");
    ck_assert_str_eq(json_object_get_string(json_object_object_get(m, "role")), "visor");
    ck_assert_str_eq(json_object_get_string(json_object_object_get(m, "network")), pnet.network.pk_hex);
    ck_assert_str_eq(json_object_to_json_string_ext(json_object_object_get(m, "groups"), JSON_C_TO_STRING_PLAIN),
                     "[\"ops\",\"eu\"]");
    ck_assert_int_ge(json_object_get_int64(json_object_object_get(m, "not_after")), now + 30 * 86400 - 5);
    json_object_put(o);
    snprintf(t, sizeof(t), "/api/visors/%s", ve.pk_hex);
    ck_assert_int_eq(call(&c, "GET", t, NULL, false, &o), 200);
    m = json_object_object_get(o, "membership");
    ck_assert_str_eq(json_object_get_string(json_object_object_get(m, "name")), "lab-e");
    json_object_put(o);
    /* skywire-cli hv visors shows it too */
    char out[4096], err[1024];
    setenv("SKYWIRE_HYPERVISOR_PASSWORD", PASSWORD, 1);
    const char *visors[] = { th_bin("skywire-cli"), "--hypervisor", hv3_base, "hv", "visors", NULL };
    ck_assert_int_eq(th_run(visors, out, sizeof(out), err, sizeof(err), 10000), 0);
    unsetenv("SKYWIRE_HYPERVISOR_PASSWORD");
    ck_assert_msg(strstr(out, "MEMBER") && strstr(out, "lab-e until "), "%s", out);

    th_visor_stop(&ve, false);
    th_stop(hv3_pid, 5000);
    sw_keypair_wipe(&hv3_kp);
    sw_keypair_wipe(&pnet.network.kp);
}
END_TEST

static bool tp_up_on(struct hvc *c, const struct th_visor *v, int timeout_ms)
{
    char t[256];
    int64_t end = sw_deadline_ms(timeout_ms);

    snprintf(t, sizeof(t), "/api/visors/%s/transports/%s", v->pk_hex, tp_id);
    do {
        struct json_object *o = NULL;
        bool up = call(c, "GET", t, NULL, false, &o) == 200 &&
                  strcmp(json_object_get_string(json_object_object_get(o, "state")), "up") == 0;
        json_object_put(o);
        if (up)
            return true;
        th_sleep_ms(100);
    } while (sw_mono_ms() < end);
    return false;
}

START_TEST(test_add_transport)
{
    struct hvc c = session();
    struct json_object *o = NULL;
    char t[256], body[512];

    snprintf(t, sizeof(t), "/api/visors/%s/transports", va.pk_hex);
    snprintf(body, sizeof(body), "{\"remote_pk\":\"%s\",\"type\":\"stcp\",\"address\":\"%s\"}", vb.pk_hex, vb.stcp);
    expect(&c, "POST", t, body, false, 403, "csrf");
    ck_assert_int_eq(call(&c, "POST", t, body, true, &o), 201);
    snprintf(tp_id, sizeof(tp_id), "%s", json_object_get_string(json_object_object_get(o, "id")));
    json_object_put(o);
    ck_assert_uint_eq(strlen(tp_id), SW_UUID_STR_LEN);
    ck_assert(tp_up_on(&c, &va, 10000));
    ck_assert(tp_up_on(&c, &vb, 10000));
    /* the visor's own errors come back unchanged */
    expect(&c, "POST", t, "{\"remote_pk\":\"xyz\"}", true, 400, NULL);
    snprintf(t, sizeof(t), "/api/visors/%s/routes", va.pk_hex);
    expect(&c, "GET", t, NULL, false, 200, NULL);
}
END_TEST

START_TEST(test_network)
{
    struct hvc c = session();
    int64_t end = sw_deadline_ms(15000);
    bool found = false;

    ck_assert(tp_id[0]);
    do {
        struct json_object *o = NULL, *edges, *nodes;
        ck_assert_int_eq(call(&c, "GET", "/api/network", NULL, false, &o), 200);
        edges = json_object_object_get(o, "edges");
        nodes = json_object_object_get(o, "nodes");
        ck_assert_uint_eq(json_object_array_length(nodes), 3); /* A, B and the (offline) fake visor */
        for (size_t i = 0; i < json_object_array_length(edges); i++) {
            struct json_object *e = json_object_array_get_idx(edges, i);
            if (strcmp(json_object_get_string(json_object_object_get(e, "t_id")), tp_id) == 0 &&
                json_object_get_boolean(json_object_object_get(e, "is_up")) &&
                strcmp(json_object_get_string(json_object_object_get(e, "type")), "stcp") == 0)
                found = true;
        }
        json_object_put(o);
        if (!found)
            th_sleep_ms(200);
    } while (!found && sw_mono_ms() < end);
    ck_assert_msg(found, "the A-B transport is not on the map");
}
END_TEST

static const char *app_state(struct hvc *c, const char *name, char *out, size_t cap)
{
    struct json_object *o = NULL;
    char t[256];

    out[0] = '\0';
    snprintf(t, sizeof(t), "/api/visors/%s/apps", va.pk_hex);
    if (call(c, "GET", t, NULL, false, &o) == 200)
        for (size_t i = 0; i < json_object_array_length(o); i++) {
            struct json_object *a = json_object_array_get_idx(o, i);
            if (strcmp(json_object_get_string(json_object_object_get(a, "name")), name) == 0)
                snprintf(out, cap, "%s", json_object_get_string(json_object_object_get(a, "state")));
        }
    json_object_put(o);
    return out;
}

START_TEST(test_apps)
{
    struct hvc c = session();
    struct json_object *o = NULL;
    char t[256], st[32];
    int64_t end = sw_deadline_ms(10000);

    while (strcmp(app_state(&c, "helloworld", st, sizeof(st)), "running") != 0 && sw_mono_ms() < end)
        th_sleep_ms(100);
    ck_assert_str_eq(st, "running");
    snprintf(t, sizeof(t), "/api/visors/%s/apps/helloworld/stop", va.pk_hex);
    expect(&c, "POST", t, "{}", false, 403, "csrf");
    expect(&c, "POST", t, "{}", true, 200, NULL);
    end = sw_deadline_ms(10000);
    while (strcmp(app_state(&c, "helloworld", st, sizeof(st)), "running") == 0 && sw_mono_ms() < end)
        th_sleep_ms(100);
    ck_assert_str_ne(st, "running");
    snprintf(t, sizeof(t), "/api/visors/%s/apps/helloworld/start", va.pk_hex);
    expect(&c, "POST", t, "{}", true, 200, NULL);
    end = sw_deadline_ms(10000);
    while (strcmp(app_state(&c, "helloworld", st, sizeof(st)), "running") != 0 && sw_mono_ms() < end)
        th_sleep_ms(100);
    ck_assert_str_eq(st, "running");
    snprintf(t, sizeof(t), "/api/visors/%s/apps/helloworld/autostart", va.pk_hex);
    expect(&c, "POST", t, "{\"auto_start\":true}", true, 200, NULL);
    snprintf(t, sizeof(t), "/api/visors/%s/apps/helloworld/logs?lines=5", va.pk_hex);
    ck_assert_int_eq(call(&c, "GET", t, NULL, false, &o), 200);
    ck_assert_str_eq(json_object_get_string(json_object_object_get(o, "app")), "helloworld");
    ck_assert(json_object_is_type(json_object_object_get(o, "lines"), json_type_array));
    ck_assert_uint_le(json_object_array_length(json_object_object_get(o, "lines")), 5);
    json_object_put(o);
    snprintf(t, sizeof(t), "/api/visors/%s/apps/nosuchapp/logs", va.pk_hex);
    expect(&c, "GET", t, NULL, false, 404, "not_found");
    snprintf(t, sizeof(t), "/api/visors/%s/apps/helloworld/logs?lines=0", va.pk_hex);
    expect(&c, "GET", t, NULL, false, 400, "invalid_lines");
}
END_TEST

/* The visor's own API: the tail of the log, line by line (the app may add lines meanwhile). */
START_TEST(test_app_logs_local)
{
    char path[700], out[65536];
    struct json_object *o;
    const char *m1, *m2, *m3;
    FILE *f;

    snprintf(path, sizeof(path), "%s/helloworld.log", va.data_dir);
    ck_assert_ptr_nonnull(f = fopen(path, "a"));
    fprintf(f, "marker-line-1\nmarker-line-2\nmarker-line-3\n");
    fclose(f);
    const char *all[] = { th_bin("skywire-cli"), "node", "app-logs", "helloworld", "--lines", "1000",
                          "--config", va.config, NULL };
    ck_assert_int_eq(th_run(all, out, sizeof(out), NULL, 0, 10000), 0);
    ck_assert_ptr_nonnull(m1 = strstr(out, "marker-line-1\n"));
    ck_assert_ptr_nonnull(m2 = strstr(out, "marker-line-2\n"));
    ck_assert_ptr_nonnull(m3 = strstr(out, "marker-line-3\n"));
    ck_assert(m1 < m2 && m2 < m3);
    const char *two[] = { th_bin("skywire-cli"), "--json", "node", "app-logs", "helloworld", "--lines", "2",
                          "--config", va.config, NULL };
    ck_assert_int_eq(th_run(two, out, sizeof(out), NULL, 0, 10000), 0);
    ck_assert_ptr_nonnull(o = json_tokener_parse(out));
    ck_assert_uint_eq(json_object_array_length(json_object_object_get(o, "lines")), 2);
    json_object_put(o);
}
END_TEST

START_TEST(test_cli)
{
    char out[16384], err[4096];

    setenv("SKYWIRE_HYPERVISOR_PASSWORD", PASSWORD, 1);
    const char *visors[] = { th_bin("skywire-cli"), "--hypervisor", hv_base, "hv", "visors", NULL };
    ck_assert_int_eq(th_run(visors, out, sizeof(out), err, sizeof(err), 10000), 0);
    ck_assert_ptr_nonnull(strstr(out, va.pk_hex));
    ck_assert_ptr_nonnull(strstr(out, "ONLINE"));
    ck_assert_ptr_nonnull(strstr(out, "  open\n")); /* the MEMBER column of an open network */
    const char *ls[] = { th_bin("skywire-cli"), "--json", "--hypervisor", hv_base, "node", "ls-tp",
                         "--visor", vb.pk_hex, NULL };
    ck_assert_int_eq(th_run(ls, out, sizeof(out), err, sizeof(err), 10000), 0);
    ck_assert_ptr_nonnull(strstr(out, tp_id));
    const char *apps[] = { th_bin("skywire-cli"), "--hypervisor", hv_base, "node", "ls-apps", "--visor",
                           va.pk_hex, NULL };
    ck_assert_int_eq(th_run(apps, out, sizeof(out), err, sizeof(err), 10000), 0);
    ck_assert_ptr_nonnull(strstr(out, "helloworld"));
    const char *logs[] = { th_bin("skywire-cli"), "--hypervisor", hv_base, "node", "app-logs", "helloworld",
                           "--visor", va.pk_hex, NULL };
    ck_assert_int_eq(th_run(logs, out, sizeof(out), err, sizeof(err), 10000), 0);
    const char *nov[] = { th_bin("skywire-cli"), "--hypervisor", hv_base, "node", "ls-tp", NULL };
    ck_assert_int_eq(th_run(nov, out, sizeof(out), err, sizeof(err), 10000), 2);
    setenv("SKYWIRE_HYPERVISOR_PASSWORD", "wrong-password", 1);
    ck_assert_int_eq(th_run(visors, out, sizeof(out), err, sizeof(err), 10000), 1);
    ck_assert_ptr_nonnull(strstr(err, "login failed"));
    unsetenv("SKYWIRE_HYPERVISOR_PASSWORD");
}
END_TEST

START_TEST(test_remove_transport)
{
    struct hvc c = session();
    char t[256];

    snprintf(t, sizeof(t), "/api/visors/%s/transports/%s", va.pk_hex, tp_id);
    expect(&c, "DELETE", t, NULL, false, 403, "csrf");
    expect(&c, "DELETE", t, NULL, true, 200, NULL);
    expect(&c, "GET", t, NULL, false, 404, NULL);
}
END_TEST

/* The web page in headless Chromium (tests/hypervisor/page_test.sh, docs/hypervisor.md "Web
 * page"): log in, both visors on the map, an stcp transport A -> B added with a click (the one
 * above was just removed) and seen in A's list and as an up edge on the map, helloworld stopped
 * and started, logout; screenshots into $SW_TEST_LOG_DIR. SKIPs without chromium or node. */
START_TEST(test_page)
{
    static char out[65536], err[16384];
    char script[600];
    const char *root = getenv("SW_TEST_ROOT");
    int rc;

    snprintf(script, sizeof(script), "%s/tests/hypervisor/page_test.sh", root ? root : ".");
    const char *argv[] = { "/bin/bash", script, hv_base, PASSWORD, va.pk_hex, vb.pk_hex, vb.stcp, "helloworld", NULL };
    rc = th_run(argv, out, sizeof(out), err, sizeof(err), 240000);
    printf("page_test:\n%s", out);
    ck_assert_msg(rc == 0, "the page test failed (exit %d):\n%s%s", rc, out, err);
}
END_TEST

struct par {
    int ok;
};

static void *par_main(void *arg)
{
    struct par *p = arg;
    struct hvc c = { .base = hv_base };
    char t[256];

    if (login(&c, PASSWORD) != 200) /* no check assertions off the main thread */
        return NULL;
    snprintf(t, sizeof(t), "/api/visors/%s/apps", va.pk_hex);
    for (int i = 0; i < 10; i++)
        p->ok += call(&c, "GET", t, NULL, false, NULL) == 200;
    return NULL;
}

/* Many requests in flight over one link at once. */
START_TEST(test_parallel)
{
    struct par ps[8] = { { 0 } };
    pthread_t th[8];

    for (int i = 0; i < 8; i++)
        pthread_create(&th[i], NULL, par_main, &ps[i]);
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        ck_assert_int_eq(ps[i].ok, 10);
    }
}
END_TEST

struct stuck {
    struct hvc c;
    long status;
    int64_t ms; /* monotonic start, then elapsed */
};

static void *stuck_main(void *arg)
{
    struct stuck *s = arg;
    char t[256];

    snprintf(t, sizeof(t), "/api/visors/%s/transports", vb.pk_hex);
    s->ms = sw_mono_ms();
    s->status = call(&s->c, "GET", t, NULL, false, NULL);
    s->ms = sw_ms_since(s->ms);
    return NULL;
}

/* A visor that stops answering (SIGSTOP: its link stays open) gives 504 after 10 s; the
 * requests waiting for it hold no one else up (more of them than the old pool of 8 threads),
 * and GET /api/visors waits 3 s in all, not 3 s per silent visor. */
START_TEST(test_timeout)
{
    struct hvc c = session();
    struct json_object *o = NULL;
    struct stuck ss[12];
    pthread_t th[12];
    int64_t t0;
    char t[256];

    snprintf(t, sizeof(t), "/api/visors/%s", vb.pk_hex);
    ck_assert_int_eq(kill(vb.pid, SIGSTOP), 0);
    for (int i = 0; i < 12; i++) {
        ss[i] = (struct stuck){ .c = c };
        pthread_create(&th[i], NULL, stuck_main, &ss[i]);
    }
    th_sleep_ms(500);
    t0 = sw_mono_ms();
    expect(&c, "GET", "/api/session", NULL, false, 200, NULL);
    expect(&c, "GET", "/health", NULL, false, 200, NULL);
    ck_assert_msg(sw_ms_since(t0) < 2000, "requests to a silent visor held others up for %llu ms",
                  (unsigned long long)sw_ms_since(t0));
    t0 = sw_mono_ms();
    expect(&c, "GET", t, NULL, false, 504, "visor_timeout");
    ck_assert_uint_ge(sw_ms_since(t0), 9000);
    for (int i = 0; i < 12; i++) {
        pthread_join(th[i], NULL);
        ck_assert_int_eq(ss[i].status, 504);
        ck_assert_msg(ss[i].ms < 13000, "a request waited %llu ms (others held it up)", (unsigned long long)ss[i].ms);
    }
    ck_assert_int_eq(kill(va.pid, SIGSTOP), 0);
    t0 = sw_mono_ms();
    ck_assert_int_eq(call(&c, "GET", "/api/visors", NULL, false, &o), 200); /* summaries null, 3 s */
    ck_assert_msg(sw_ms_since(t0) < 5000, "GET /api/visors took %llu ms with two silent visors",
                  (unsigned long long)sw_ms_since(t0));
    ck_assert_int_eq(kill(va.pid, SIGCONT), 0);
    for (size_t i = 0; i < json_object_array_length(o); i++) {
        struct json_object *e = json_object_array_get_idx(o, i);
        if (strcmp(json_object_get_string(json_object_object_get(e, "pk")), vb.pk_hex) == 0)
            ck_assert_ptr_null(json_object_object_get(e, "summary"));
    }
    json_object_put(o);
    ck_assert_int_eq(kill(vb.pid, SIGCONT), 0);
    expect(&c, "GET", t, NULL, false, 200, NULL); /* late answers were dropped; the link works */
}
END_TEST

START_TEST(test_offline_online)
{
    struct hvc c = session();
    char t[256];

    th_visor_stop(&va, true);
    ck_assert_msg(wait_online(&c, va.pk_hex, false, 5000), "visor A still online after kill -9");
    snprintf(t, sizeof(t), "/api/visors/%s", va.pk_hex);
    expect(&c, "GET", t, NULL, false, 503, "visor_offline");
    ck_assert(wait_online(&c, vb.pk_hex, true, 1000));
    ck_assert_int_eq(th_visor_start(&va), 0);
    ck_assert_msg(wait_online(&c, va.pk_hex, true, 15000), "visor A did not come back");
    expect(&c, "GET", t, NULL, false, 200, NULL);
}
END_TEST

struct lr {
    const char *base;
    long status;
};

static void *lr_main(void *arg)
{
    struct lr *l = arg;
    struct hvc c = { .base = l->base };

    l->status = login(&c, "wrong-password");
    return NULL;
}

/* Parallel wrong logins from one address: no more than --login-failures (5) get their
 * password checked, however many arrive before the first check ends. */
START_TEST(test_login_race)
{
    char base[64], log[512];
    struct lr ls[16];
    pthread_t th[16];
    int n401 = 0, n429 = 0;
    pid_t pid = start_hv("hv3", net.dir, base, log, NULL);

    ck_assert_msg(pid > 0, "the third hypervisor did not start");
    for (int i = 0; i < 16; i++) {
        ls[i] = (struct lr){ .base = base };
        pthread_create(&th[i], NULL, lr_main, &ls[i]);
    }
    for (int i = 0; i < 16; i++) {
        pthread_join(th[i], NULL);
        n401 += ls[i].status == 401;
        n429 += ls[i].status == 429;
    }
    th_stop(pid, 5000);
    ck_assert_msg(n401 <= 5, "%d parallel wrong passwords were checked (limit 5)", n401);
    ck_assert_int_eq(n401 + n429, 16);
}
END_TEST

/* ---- a fake transport discovery: answers every request with one body ------------------------ */

struct fake_tpd {
    int lfd;
    const char *body;
    volatile bool stop;
};

static void *fake_tpd_main(void *arg)
{
    struct fake_tpd *t = arg;
    char req[4096], head[256];
    struct pollfd pfd = { .fd = t->lfd, .events = POLLIN };
    int fd;

    while (!t->stop) {
        if (poll(&pfd, 1, 100) != 1 || (fd = accept(t->lfd, NULL, NULL)) < 0)
            continue;
        if (recv(fd, req, sizeof(req), 0) > 0) { /* a GET fits in one read on loopback */
            snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n", strlen(t->body));
            if (send(fd, head, strlen(head), MSG_NOSIGNAL) < 0 || send(fd, t->body, strlen(t->body), MSG_NOSIGNAL) < 0)
                fprintf(stderr, "fake tpd: send failed\n");
        }
        close(fd);
    }
    return NULL;
}

/* A discovery answer with JSON nulls where strings belong must not crash the hypervisor. */
START_TEST(test_network_bad_tpd)
{
    static struct fake_tpd t;
    struct sockaddr_in sa = { .sin_family = AF_INET };
    socklen_t sl = sizeof(sa);
    char base[64], log[512], tpd[64], vaddr[32];
    struct hvc c;
    struct json_object *o = NULL;
    pthread_t th;
    pid_t pid;

    t = (struct fake_tpd){ .lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0),
                           .body = "[{\"entry\":{\"t_id\":null,\"edges\":[\"a\",\"b\"]}},"
                                   "{\"entry\":{\"t_id\":\"x\",\"edges\":[null,null]}},"
                                   "{\"entry\":{\"t_id\":\"y\",\"edges\":[\"c\",\"d\"],\"type\":null},\"is_up\":null}]" };
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    ck_assert_int_eq(bind(t.lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(listen(t.lfd, 8), 0);
    ck_assert_int_eq(getsockname(t.lfd, (struct sockaddr *)&sa, &sl), 0);
    snprintf(tpd, sizeof(tpd), "http://127.0.0.1:%u", ntohs(sa.sin_port));
    pthread_create(&th, NULL, fake_tpd_main, &t);
    snprintf(vaddr, sizeof(vaddr), "127.0.0.1:%u", th_free_port());
    const char *extra[] = { "--visor", fake_hex, "--tpd", tpd, "--visor-addr", vaddr, NULL };
    pid = start_hv("hv4", net.dir, base, log, extra);
    ck_assert_msg(pid > 0, "the fourth hypervisor did not start");
    c = (struct hvc){ .base = base };
    ck_assert_int_eq(login(&c, "x"), 401); /* its password is a generated one: read it */
    {
        char path[700], pw[128] = "";
        FILE *f;
        snprintf(path, sizeof(path), "%s/hv4-data/initial-password", net.dir);
        ck_assert_ptr_nonnull(f = fopen(path, "r"));
        ck_assert_ptr_nonnull(fgets(pw, sizeof(pw), f));
        fclose(f);
        pw[strcspn(pw, "\n")] = '\0';
        ck_assert_int_eq(login(&c, pw), 200);
    }
    ck_assert_int_eq(call(&c, "GET", "/api/network", NULL, false, &o), 200);
    ck_assert_uint_eq(json_object_array_length(json_object_object_get(o, "edges")), 1); /* only "y" */
    json_object_put(o);
    expect(&c, "GET", "/health", NULL, false, 200, NULL);
    t.stop = true;
    pthread_join(th, NULL);
    close(t.lfd);
    th_stop(pid, 5000);
}
END_TEST

/* ---- a fake visor: an allowed key speaking the link protocol by hand -------------------------- */

struct fake {
    struct sw_hv_chan *ch;
    volatile bool stop;
};

static void fake_resp(struct sw_hv_chan *ch, uint32_t id, int status, const char *body)
{
    struct sw_hv_msg r = { .type = SW_HV_RESP, .id = id, .status = (uint16_t)status,
                           .body = (const uint8_t *)body, .body_len = strlen(body) };
    sw_hv_chan_send(ch, &r);
}

/* A record whose length is over the limit, encrypted as the channel would. */
static void fake_oversized(struct sw_hv_chan *ch)
{
    uint8_t pt[4] = { 0xff, 0xff, 0xff, 0xff }, frame[SW_FRAME_HDR_LEN + sizeof(pt) + SW_NOISE_TAG];

    /* no check assertions off the main thread: the test sees the outcome through the API */
    if (sw_noise_encrypt(&ch->tx, NULL, 0, pt, sizeof(pt), frame + SW_FRAME_HDR_LEN) == SW_OK &&
        sw_frame_header(frame, sizeof(pt) + SW_NOISE_TAG) == SW_OK &&
        send(ch->fd, frame, sizeof(frame), MSG_NOSIGNAL) < 0)
        fprintf(stderr, "fake visor: send failed\n");
}

static void *fake_main(void *arg)
{
    struct fake *f = arg;
    struct sw_hv_msg m;
    int rc;

    while (!f->stop) {
        if ((rc = sw_hv_chan_recv(f->ch, 200, &m)) == SW_ETIMEDOUT)
            continue;
        if (rc)
            break;
        if (m.type == SW_HV_PING) {
            struct sw_hv_msg pong = { .type = SW_HV_PONG, .id = m.id };
            sw_hv_chan_send(f->ch, &pong);
        } else if (m.type != SW_HV_REQ) {
            continue;
        } else if (strcmp(m.path, "/api/summary") == 0) {
            fake_resp(f->ch, m.id, 200, "{\"public_key\":\"fake\"}");
        } else if (strcmp(m.path, "/api/transports") == 0) {
            fake_resp(f->ch, m.id, 101, "[]"); /* a protocol switch must not reach the client */
        } else if (strcmp(m.path, "/api/routes") == 0) {
            fake_resp(f->ch, m.id + 1000, 200, "[\"never asked\"]"); /* an id never sent */
            fake_resp(f->ch, m.id, 200, "[]");
            fake_resp(f->ch, m.id, 200, "[\"duplicate\"]");
        } else {
            fake_oversized(f->ch); /* the hypervisor drops the link */
        }
    }
    return NULL;
}

static int connect_to(const char *hostport)
{
    struct sockaddr_in sa = { .sin_family = AF_INET };
    const char *colon = strrchr(hostport, ':');
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    sa.sin_port = htons((uint16_t)atoi(colon + 1));
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

/* connect_to from a chosen loopback source address (127.0.0.0/8 is all local). */
static int connect_from(const char *src, const char *hostport)
{
    struct sockaddr_in sa = { .sin_family = AF_INET }, me = { .sin_family = AF_INET };
    const char *colon = strrchr(hostport, ':');
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    inet_pton(AF_INET, src, &me.sin_addr);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&me, sizeof(me)), 0);
    sa.sin_port = htons((uint16_t)atoi(colon + 1));
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

/* One address opening every handshake slot's worth of idle connections holds only its
 * share: a visor from another address still gets its link up at once. */
START_TEST(test_handshake_flood)
{
    struct hvc c = session();
    struct sw_hv_chan *ch = calloc(1, sizeof(*ch));
    static struct fake f; /* a failed check leaves its thread running */
    pthread_t th;
    int idle[64];

    for (int i = 0; i < 64; i++)
        idle[i] = connect_to(hv_vaddr);
    th_sleep_ms(200); /* the hypervisor accepted (and refused beyond the share) */
    ck_assert_int_eq(sw_hv_chan_init(ch, connect_from("127.0.0.2", hv_vaddr)), SW_OK);
    ck_assert_int_eq(sw_hv_chan_handshake(ch, true, &fake_kp, &hv_kp.pk, 3000, NULL), SW_OK);
    f = (struct fake){ .ch = ch };
    pthread_create(&th, NULL, fake_main, &f);
    ck_assert_msg(wait_online(&c, fake_hex, true, 5000), "the visor from 127.0.0.2 is not online");
    f.stop = true;
    pthread_join(th, NULL);
    sw_hv_chan_destroy(ch);
    free(ch);
    for (int i = 0; i < 64; i++)
        close(idle[i]);
    ck_assert(wait_online(&c, fake_hex, false, 5000));
}
END_TEST

/* What a malicious visor sends: a 1xx status (502), answers for ids never sent and twice
 * for one id (dropped), then an oversized record (the link is dropped, pending requests
 * fail with 503). */
START_TEST(test_fake_visor)
{
    struct hvc c = session();
    struct sw_hv_chan *ch = calloc(1, sizeof(*ch));
    static struct fake f; /* a failed check leaves its thread running */
    struct json_object *o = NULL;
    pthread_t th;
    char t[256];

    ck_assert_int_eq(sw_hv_chan_init(ch, connect_to(hv_vaddr)), SW_OK);
    ck_assert_int_eq(sw_hv_chan_handshake(ch, true, &fake_kp, &hv_kp.pk, 5000, NULL), SW_OK);
    f = (struct fake){ .ch = ch };
    pthread_create(&th, NULL, fake_main, &f);
    ck_assert_msg(wait_online(&c, fake_hex, true, 5000), "the fake visor is not online");
    snprintf(t, sizeof(t), "/api/visors/%s/transports", fake_hex);
    expect(&c, "GET", t, NULL, false, 502, "visor_api_error");
    snprintf(t, sizeof(t), "/api/visors/%s/routes", fake_hex);
    ck_assert_int_eq(call(&c, "GET", t, NULL, false, &o), 200);
    ck_assert_uint_eq(json_object_array_length(o), 0);
    json_object_put(o);
    snprintf(t, sizeof(t), "/api/visors/%s/apps", fake_hex);
    expect(&c, "GET", t, NULL, false, 503, "visor_offline");
    ck_assert(wait_online(&c, fake_hex, false, 5000));
    f.stop = true;
    pthread_join(th, NULL);
    sw_hv_chan_destroy(ch);
    free(ch);
    ck_assert(wait_online(&c, va.pk_hex, true, 5000)); /* the others are unaffected */
}
END_TEST

/* Sends REQ GET path and returns the status of its RESP (PINGs skipped), -1 on failure. */
static int fake_hv_ask(struct sw_hv_chan *ch, uint32_t id, const char *path)
{
    struct sw_hv_msg m = { .type = SW_HV_REQ, .id = id, .method = "GET" };

    snprintf(m.path, sizeof(m.path), "%s", path);
    if (sw_hv_chan_send(ch, &m))
        return -1;
    for (int i = 0; i < 20; i++) {
        if (sw_hv_chan_recv(ch, 1000, &m) == SW_OK && m.type == SW_HV_RESP && m.id == id)
            return m.status;
    }
    return -1;
}

/* A malicious hypervisor reaches only the visor's /api/: dot segments are refused before
 * the HTTP client could resolve them ("/api/.." would be "/"). */
START_TEST(test_fake_hypervisor)
{
    struct sockaddr_in sa = { .sin_family = AF_INET };
    socklen_t sl = sizeof(sa);
    struct sw_keypair kp2;
    struct sw_hv_chan *ch = calloc(1, sizeof(*ch));
    char hex[SW_PK_HEX_LEN + 1], arg[128];
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), fd;
    struct pollfd pfd;

    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(listen(lfd, 4), 0);
    ck_assert_int_eq(getsockname(lfd, (struct sockaddr *)&sa, &sl), 0);
    sw_keypair_generate(&kp2);
    sw_pk_to_hex(&kp2.pk, hex);
    snprintf(arg, sizeof(arg), "%s@127.0.0.1:%u", hex, ntohs(sa.sin_port));
    const char *extra[] = { "--hypervisor", arg, NULL };
    ck_assert_int_eq(th_net_visor_gen(&net, &vd, "hv-d", NULL, extra), 0);
    ck_assert_int_eq(th_visor_start(&vd), 0);
    pfd = (struct pollfd){ .fd = lfd, .events = POLLIN };
    ck_assert_int_eq(poll(&pfd, 1, 10000), 1);
    ck_assert_int_ge(fd = accept(lfd, NULL, NULL), 0);
    ck_assert_int_eq(sw_hv_chan_init(ch, fd), SW_OK);
    ck_assert_int_eq(sw_hv_chan_handshake(ch, false, &kp2, NULL, 5000, NULL), SW_OK);
    ck_assert(sw_pk_equal(&ch->peer, &vd.pk));
    ck_assert_int_eq(fake_hv_ask(ch, 1, "/api/.."), 403);
    ck_assert_int_eq(fake_hv_ask(ch, 2, "/api/./summary"), 403);
    ck_assert_int_eq(fake_hv_ask(ch, 3, "/api/apps/.."), 403);
    ck_assert_int_eq(fake_hv_ask(ch, 4, "/metrics"), 403);
    ck_assert_int_eq(fake_hv_ask(ch, 5, "/api/summary"), 200);
    sw_hv_chan_destroy(ch);
    free(ch);
    close(lfd);
    th_visor_stop(&vd, false);
    sw_keypair_wipe(&kp2);
}
END_TEST

static Suite *hypervisor_suite(void)
{
    Suite *s = suite_create("hypervisor");
    TCase *tc = tcase_create("hypervisor");

    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_auth);
    tcase_add_test(tc, test_login_race);
    tcase_add_test(tc, test_browser_guard);
    tcase_add_test(tc, test_login_backoff);
    tcase_add_test(tc, test_metrics_private);
    tcase_add_test(tc, test_visors_online);
    tcase_add_test(tc, test_summary);
    tcase_add_test(tc, test_membership);
    tcase_add_test(tc, test_refused_key);
    tcase_add_test(tc, test_add_transport);
    tcase_add_test(tc, test_network);
    tcase_add_test(tc, test_apps);
    tcase_add_test(tc, test_app_logs_local);
    tcase_add_test(tc, test_cli);
    tcase_add_test(tc, test_remove_transport);
    tcase_add_test(tc, test_page);
    tcase_add_test(tc, test_parallel);
    tcase_add_test(tc, test_timeout);
    tcase_add_test(tc, test_fake_visor);
    tcase_add_test(tc, test_handshake_flood);
    tcase_add_test(tc, test_fake_hypervisor);
    tcase_add_test(tc, test_network_bad_tpd);
    tcase_add_test(tc, test_offline_online);
    suite_add_tcase(s, tc);
    return s;
}

const struct th_check_main th_check_main = {
    .suite = hypervisor_suite,
    .fork = CK_NOFORK, /* the daemons belong to this process */
};
