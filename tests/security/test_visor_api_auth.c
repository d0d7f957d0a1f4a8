/* Adversarial tests of access to the visor's local API (docs/visor.md "Access to the local
 * API", docs/security.md "local users / apps / web pages -> visor API"): a real
 * skywire-visor, spoken to as another local user, an app or a web page would: no token, a
 * wrong one, a forged Host (DNS rebinding), a foreign Origin and non-JSON bodies (a page's
 * cross-site POST). Then the token file itself (mode 0600, kept across restarts, refused
 * when others may read it or when it is a symbolic link), api.allowed_hosts, and
 * skywire-cli finding the API and the token by itself.
 *
 * No services: the visors' discovery URL points at a closed port (their worker retries). */
#include "common/http_client.h"
#include "common/json.h"
#include "common/keys.h"
#include "tests/harness/api_client.h"
#include "tests/harness/check_main.h"
#include "tests/harness/harness.h"
#include "tests/harness/visor_env.h"

#include <check.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define NO_TPD "http://127.0.0.1:9" /* discard port: nothing answers */
#define ZERO_ID "00000000-0000-8000-8000-000000000000"

static struct th_visor va, vb;
static char dir[256];

/* ---- raw requests (libcurl: any header, and the reply's WWW-Authenticate) ------------------ */

struct reply {
    long status;
    char body[128 * 1024]; /* /metrics is long */
    size_t len;
    char www_auth[160];
};

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    struct reply *r = arg;
    size_t k = size * n, room = sizeof(r->body) - 1 - r->len;

    memcpy(r->body + r->len, p, k < room ? k : room);
    r->len += k < room ? k : room;
    r->body[r->len] = '\0';
    return size * n;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
    struct reply *r = arg;
    static const char name[] = "WWW-Authenticate:";
    size_t k = size * n;

    if (k > sizeof(name) && strncasecmp(p, name, sizeof(name) - 1) == 0)
        snprintf(r->www_auth, sizeof(r->www_auth), "%.*s", (int)(k - sizeof(name) - 1), p + sizeof(name));
    return k;
}

/* method v's API + path with extra headers (NULL-terminated, may be NULL) and body (NULL:
 * none). Like curl, a body goes out as a form unless a Content-Type header says otherwise. */
static long raw(const struct th_visor *v, const char *method, const char *path,
                const char *const *headers, const char *body, struct reply *r)
{
    CURL *h = curl_easy_init();
    struct curl_slist *list = NULL;
    char url[512];

    memset(r, 0, sizeof(*r));
    r->status = -1;
    snprintf(url, sizeof(url), "%s%s", v->api, path);
    for (size_t i = 0; headers && headers[i]; i++)
        list = curl_slist_append(list, headers[i]);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (body)
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 20000L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    if (curl_easy_perform(h) == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(list);
    curl_easy_cleanup(h);
    return r->status;
}

static const char *code_of(const struct reply *r)
{
    static char code[64];
    struct json_object *o = NULL;

    code[0] = '\0';
    if (sw_json_parse(r->body, r->len, &o, NULL) == SW_OK && th_error_code(o))
        snprintf(code, sizeof(code), "%s", th_error_code(o));
    json_object_put(o);
    return code;
}

static void expect_refused(const struct th_visor *v, const char *method, const char *path,
                           const char *const *headers, const char *body, long status, const char *code)
{
    struct reply r;

    raw(v, method, path, headers, body, &r);
    ck_assert_msg(r.status == status && strcmp(code_of(&r), code) == 0,
                  "%s %s: HTTP %ld %s, want %ld %s", method, path, r.status, r.body, status, code);
}

/* ---- fixture --------------------------------------------------------------------------------- */

static void gen_visor(struct th_visor *v, const char *name)
{
    const char *extra[] = { "--mdisc", "", NULL };
    ck_assert_int_eq(th_visor_gen(v, dir, name, NO_TPD, extra), 0);
}

static void setup(void)
{
    struct json_object *apps = json_object_new_array();

    unsetenv("SKYWIRE_CONFIG");
    unsetenv("SKYWIRE_API_URL");
    unsetenv("SKYWIRE_API_TOKEN_FILE");
    curl_global_init(CURL_GLOBAL_DEFAULT);
    snprintf(dir, sizeof(dir), "%s", th_temp_dir("sw-api-auth"));
    gen_visor(&va, "auth-a");
    gen_visor(&vb, "auth-b");
    json_object_array_add(apps, th_app_entry("helloworld", 9, NULL));
    ck_assert_int_eq(th_visor_set_apps(&va, apps), 0);
    ck_assert_int_eq(th_visor_start(&va), 0);
    ck_assert_int_eq(th_visor_start(&vb), 0);
}

static void teardown(void)
{
    th_visor_stop(&va, false);
    th_visor_stop(&vb, false);
}

static void bearer(const struct th_visor *v, char *out, size_t cap)
{
    snprintf(out, cap, "Authorization: Bearer %s", v->token);
}

/* helloworld's state on A, asked with the token ("" when unknown). */
static const char *app_state(void)
{
    static char state[32];
    char auth[128];
    const char *h[] = { auth, NULL };
    struct json_object *o = NULL;
    struct reply r;

    state[0] = '\0';
    bearer(&va, auth, sizeof(auth));
    if (raw(&va, "GET", "/api/apps", h, NULL, &r) == 200 && sw_json_parse(r.body, r.len, &o, NULL) == SW_OK)
        snprintf(state, sizeof(state), "%s",
                 json_object_get_string(json_object_object_get(json_object_array_get_idx(o, 0), "state")));
    json_object_put(o);
    return state;
}

/* Waits (10 s at most) until helloworld is running, or (running = false) no longer is. */
static bool wait_app(bool running)
{
    for (int i = 0; i < 100; i++) {
        if ((strcmp(app_state(), "running") == 0) == running)
            return true;
        th_sleep_ms(100);
    }
    return false;
}

static bool wait_app_running(void) { return wait_app(true); }

/* ---- the token ------------------------------------------------------------------------------ */

/* Every route of the API, with a body its handler would accept. */
static const struct { const char *method, *path, *body; } all_routes[] = {
    { "GET", "/metrics", NULL },
    { "GET", "/api/summary", NULL },
    { "GET", "/api/transports", NULL },
    { "POST", "/api/transports", "{\"remote_pk\":\"" "0000000000000000000000000000000000000000000000000000000000000000" "\"}" },
    { "GET", "/api/transports/" ZERO_ID, NULL },
    { "DELETE", "/api/transports/" ZERO_ID, NULL },
    { "POST", "/api/transports/" ZERO_ID "/discard", "{\"bytes\":1000}" },
    { "GET", "/api/tpdisc?id=" ZERO_ID, NULL },
    { "GET", "/api/routes", NULL },
    { "GET", "/api/routes/1", NULL },
    { "DELETE", "/api/routes/1", NULL },
    { "GET", "/api/apps", NULL },
    { "POST", "/api/apps/helloworld/stop", "{}" },
    { "POST", "/api/apps/helloworld/start", "{}" },
    { "POST", "/api/apps/helloworld/autostart", "{\"auto_start\":false}" },
    { "GET", "/api/apps/helloworld/logs?lines=5", NULL },
};

/* Authorization values that must not pass (NULL: no header at all). */
static void wrong_authorizations(char out[][160], size_t *n)
{
    char flipped[65];

    snprintf(flipped, sizeof(flipped), "%s", va.token);
    flipped[63] = flipped[63] == '0' ? '1' : '0';
    *n = 0;
    snprintf(out[(*n)++], 160, "Authorization: Bearer %s", flipped);
    snprintf(out[(*n)++], 160, "Authorization: Bearer %s", vb.token);        /* another visor's */
    snprintf(out[(*n)++], 160, "Authorization: Bearer %.63s", va.token);     /* a prefix */
    snprintf(out[(*n)++], 160, "Authorization: Bearer %s0", va.token);       /* longer */
    snprintf(out[(*n)++], 160, "Authorization: Basic %s", va.token);
    snprintf(out[(*n)++], 160, "Authorization: %s", va.token);
    snprintf(out[(*n)++], 160, "Authorization: Bearer");
    snprintf(out[(*n)++], 160, "X-Api-Token: %s", va.token);
}

/* No token, or a wrong one: 401 unauthenticated with WWW-Authenticate: Bearer, on every
 * route but /health (/metrics included), and nothing happens (the app keeps running). */
START_TEST(test_without_token_401)
{
    char wrong[8][160];
    size_t n_wrong;
    struct reply r;

    wrong_authorizations(wrong, &n_wrong);
    ck_assert(wait_app_running());
    for (size_t i = 0; i < sizeof(all_routes) / sizeof(all_routes[0]); i++) {
        const char *json[] = { "Content-Type: application/json", NULL, NULL };
        raw(&va, all_routes[i].method, all_routes[i].path, json, all_routes[i].body, &r);
        ck_assert_msg(r.status == 401 && strcmp(code_of(&r), "unauthenticated") == 0,
                      "%s %s without a token: HTTP %ld %s", all_routes[i].method, all_routes[i].path,
                      r.status, r.body);
        ck_assert_msg(strncmp(r.www_auth, "Bearer", 6) == 0, "%s: WWW-Authenticate '%s'",
                      all_routes[i].path, r.www_auth);
        ck_assert_ptr_null(strstr(r.body, va.token)); /* the answer never shows the token */
        for (size_t k = 0; k < n_wrong; k++) {
            json[1] = wrong[k];
            expect_refused(&va, all_routes[i].method, all_routes[i].path, json, all_routes[i].body,
                           401, "unauthenticated");
        }
    }
    ck_assert_str_eq(app_state(), "running"); /* "stop" without the token did nothing */
    ck_assert_int_eq(raw(&va, "GET", "/health", NULL, NULL, &r), 200);
    /* refusals are logged, but not what was sent: near misses of the token stay out */
    ck_assert(th_log_wait(va.log, "API: refused POST /api/apps/helloworld/stop from 127.0.0.1", 2000));
    ck_assert(!th_log_wait(va.log, wrong[0] + strlen("Authorization: Bearer "), 0));
    ck_assert(!th_log_wait(va.log, va.token, 0));
}
END_TEST

/* The token opens every route; the scheme is case-blind (RFC 7235). */
START_TEST(test_with_token)
{
    char auth[128], lower[128];
    const char *h[] = { auth, NULL }, *hl[] = { lower, NULL };
    struct reply r;

    bearer(&va, auth, sizeof(auth));
    snprintf(lower, sizeof(lower), "authorization: bearer %s", va.token);
    ck_assert_int_eq(raw(&va, "GET", "/api/summary", h, NULL, &r), 200);
    ck_assert_ptr_nonnull(strstr(r.body, va.pk_hex));
    ck_assert_int_eq(raw(&va, "GET", "/api/summary", hl, NULL, &r), 200);
    ck_assert_int_eq(raw(&va, "GET", "/metrics", h, NULL, &r), 200);
    ck_assert_ptr_nonnull(strstr(r.body, "visor_transports"));
    for (size_t i = 0; i < sizeof(all_routes) / sizeof(all_routes[0]); i++) {
        const char *json[] = { "Content-Type: application/json", auth, NULL };
        raw(&va, all_routes[i].method, all_routes[i].path, json, all_routes[i].body, &r);
        ck_assert_msg(r.status != 401 && r.status != 403 && r.status != 415, "%s %s with the token: %ld %s",
                      all_routes[i].method, all_routes[i].path, r.status, r.body);
        /* a stopped app is "running" until it has exited: the next start would get 409 */
        if (strstr(all_routes[i].path, "/stop"))
            ck_assert(wait_app(false));
    }
    ck_assert(wait_app_running()); /* the list above stopped and started it */
}
END_TEST

/* ---- browsers: Host (DNS rebinding), Origin and Content-Type (cross-site writes) ---------- */

START_TEST(test_forged_host_403)
{
    char auth[128], local[64];
    const char *evil[] = { auth, "Host: evil.example", NULL };
    const char *evil_port[] = { auth, "Host: evil.example:3435", NULL };
    const char *suffix[] = { auth, "Host: 127.0.0.1.evil.example", NULL };
    const char *no_host[] = { auth, "Host:", NULL };
    const char *ok[] = { auth, local, NULL };
    struct reply r;

    bearer(&va, auth, sizeof(auth));
    snprintf(local, sizeof(local), "Host: localhost:%u", va.api_port);
    expect_refused(&va, "GET", "/api/summary", evil, NULL, 403, "forbidden_host");
    expect_refused(&va, "GET", "/api/summary", evil_port, NULL, 403, "forbidden_host");
    expect_refused(&va, "GET", "/api/summary", suffix, NULL, 403, "forbidden_host");
    expect_refused(&va, "GET", "/api/summary", no_host, NULL, 403, "forbidden_host");
    expect_refused(&va, "GET", "/metrics", evil, NULL, 403, "forbidden_host");
    expect_refused(&va, "GET", "/health", evil + 1, NULL, 403, "forbidden_host");
    ck_assert_int_eq(raw(&va, "GET", "/api/summary", ok, NULL, &r), 200);
}
END_TEST

START_TEST(test_foreign_origin_403)
{
    char auth[128], own[96];
    const char *evil[] = { auth, "Content-Type: application/json", "Origin: http://evil.example", NULL };
    const char *null_origin[] = { auth, "Content-Type: application/json", "Origin: null", NULL };
    const char *same[] = { auth, "Content-Type: application/json", own, NULL };
    struct reply r;

    bearer(&va, auth, sizeof(auth));
    snprintf(own, sizeof(own), "Origin: http://127.0.0.1:%u", va.api_port);
    ck_assert(wait_app_running());
    expect_refused(&va, "POST", "/api/apps/helloworld/stop", evil, "{}", 403, "forbidden_origin");
    expect_refused(&va, "POST", "/api/apps/helloworld/stop", null_origin, "{}", 403, "forbidden_origin");
    expect_refused(&va, "DELETE", "/api/routes/1", evil, NULL, 403, "forbidden_origin");
    ck_assert_str_eq(app_state(), "running");
    ck_assert_int_eq(raw(&va, "POST", "/api/apps/helloworld/autostart", same, "{\"auto_start\":true}", &r), 200);
}
END_TEST

START_TEST(test_non_json_body_415)
{
    char auth[128];
    const char *text[] = { auth, "Content-Type: text/plain", NULL };
    const char *form[] = { auth, NULL }; /* curl's default for a body: a form */
    const char *none[] = { auth, "Content-Type:", NULL };
    const char *multipart[] = { auth, "Content-Type: multipart/form-data; boundary=x", NULL };

    bearer(&va, auth, sizeof(auth));
    ck_assert(wait_app_running());
    expect_refused(&va, "POST", "/api/apps/helloworld/stop", text, "{}", 415, "unsupported_media_type");
    expect_refused(&va, "POST", "/api/apps/helloworld/stop", form, "{}", 415, "unsupported_media_type");
    expect_refused(&va, "POST", "/api/apps/helloworld/stop", none, "{}", 415, "unsupported_media_type");
    expect_refused(&va, "POST", "/api/apps/helloworld/stop", multipart, "{}", 415, "unsupported_media_type");
    ck_assert_str_eq(app_state(), "running");
}
END_TEST

/* ---- the token file --------------------------------------------------------------------------- */

START_TEST(test_token_file_private)
{
    struct stat st, dst;
    char text[80] = "";
    FILE *f;

    ck_assert_int_eq(lstat(va.token_file, &st), 0);
    ck_assert(S_ISREG(st.st_mode));
    ck_assert_uint_eq(st.st_mode & 0777, 0600);
    ck_assert_uint_eq(st.st_uid, geteuid());
    ck_assert_int_eq(stat(va.data_dir, &dst), 0);
    ck_assert_uint_eq(dst.st_mode & 077, 0);
    ck_assert_ptr_nonnull(f = fopen(va.token_file, "r"));
    ck_assert_ptr_nonnull(fgets(text, sizeof(text), f));
    fclose(f);
    ck_assert_uint_eq(strlen(text), 65);
    ck_assert_uint_eq(strspn(text, "0123456789abcdef"), 64);
    ck_assert_int_eq(text[64], '\n');
    ck_assert_str_ne(va.token, vb.token);
    ck_assert(!th_log_wait(va.log, va.token, 0)); /* never logged */
}
END_TEST

/* Runs B's visor in the foreground; its exit status, stderr in err. */
static int run_b(char *err, size_t cap)
{
    char bin[512];
    const char *argv[] = { bin, vb.config, NULL };

    snprintf(bin, sizeof(bin), "%s", th_bin("skywire-visor"));
    return th_run(argv, NULL, 0, err, cap, 10000);
}

/* Kept across restarts; refused when others may read it or when it is a symbolic link; a
 * deleted one is replaced by a new token, and the old one stops working. */
START_TEST(test_token_file_lifecycle)
{
    char old[65], err[2048], moved[600];
    const char *h[] = { NULL, NULL };
    char auth[128];

    snprintf(old, sizeof(old), "%s", vb.token);
    th_visor_stop(&vb, false);
    ck_assert_int_eq(th_visor_start(&vb), 0);
    ck_assert_str_eq(vb.token, old);
    th_visor_stop(&vb, false);

    ck_assert_int_eq(chmod(vb.token_file, 0640), 0);
    ck_assert_int_eq(run_b(err, sizeof(err)), 1);
    ck_assert_msg(strstr(err, "open to other users") && strstr(err, "api-token"), "%s", err);
    ck_assert_ptr_null(strstr(err, old));
    ck_assert_int_eq(chmod(vb.token_file, 0600), 0);

    snprintf(moved, sizeof(moved), "%s.real", vb.token_file);
    ck_assert_int_eq(rename(vb.token_file, moved), 0);
    ck_assert_int_eq(symlink(moved, vb.token_file), 0);
    ck_assert_int_eq(run_b(err, sizeof(err)), 1);
    ck_assert_msg(strstr(err, "symbolic link"), "%s", err);
    ck_assert_int_eq(unlink(vb.token_file), 0);
    ck_assert_int_eq(unlink(moved), 0);

    ck_assert_int_eq(th_visor_start(&vb), 0); /* no file: a new token */
    ck_assert_str_ne(vb.token, old);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", old);
    h[0] = auth;
    expect_refused(&vb, "GET", "/api/summary", h, NULL, 401, "unauthenticated");
}
END_TEST

/* api.allowed_hosts adds names to the Host allow-list; a bad entry stops the visor (exit 2)
 * naming the field. */
START_TEST(test_allowed_hosts_config)
{
    struct json_object *cfg, *api, *hosts;
    char auth[128], err[2048];
    const char *named[] = { auth, "Host: visor.example", NULL };
    const char *other[] = { auth, "Host: other.example", NULL };
    struct reply r;

    th_visor_stop(&vb, false);
    ck_assert_ptr_nonnull(cfg = json_object_from_file(vb.config));
    ck_assert(json_object_object_get_ex(cfg, "api", &api));
    hosts = json_object_new_array();
    json_object_array_add(hosts, json_object_new_string("http://visor.example"));
    json_object_object_add(api, "allowed_hosts", hosts);
    ck_assert_int_eq(json_object_to_file(vb.config, cfg), 0);
    ck_assert_int_eq(run_b(err, sizeof(err)), 2);
    ck_assert_msg(strstr(err, "field 'api.allowed_hosts[0]'"), "%s", err);

    json_object_array_put_idx(hosts, 0, json_object_new_string("Visor.Example"));
    ck_assert_int_eq(json_object_to_file(vb.config, cfg), 0);
    json_object_put(cfg);
    ck_assert_int_eq(th_visor_start(&vb), 0);
    bearer(&vb, auth, sizeof(auth));
    ck_assert_int_eq(raw(&vb, "GET", "/api/summary", named, NULL, &r), 200);
    expect_refused(&vb, "GET", "/api/summary", other, NULL, 403, "forbidden_host");
}
END_TEST

/* ---- skywire-cli finds the API and the token by itself ----------------------------------- */

/* skywire-cli args... in cwd (NULL: ours); exit status, stdout and stderr. */
static int cli_in(const char *cwd, const char *const args[], char *out, size_t out_cap, char *err,
                  size_t err_cap)
{
    char script[4096], bin[512];
    size_t n;

    snprintf(bin, sizeof(bin), "%s", th_bin("skywire-cli"));
    n = (size_t)snprintf(script, sizeof(script), "cd '%s' && exec '%s'", cwd ? cwd : ".", bin);
    for (size_t i = 0; args[i] && n < sizeof(script); i++)
        n += (size_t)snprintf(script + n, sizeof(script) - n, " '%s'", args[i]);
    const char *argv[] = { "/bin/sh", "-c", script, NULL };
    return th_run(argv, out, out_cap, err, err_cap, 30000);
}

START_TEST(test_cli_config)
{
    char out[4096], err[2048], want[80], cwd[600], copy[700], cmd[1600];
    const char *by_config[] = { "--config", va.config, "node", "pk", NULL };
    const char *node_opt[] = { "node", "pk", "--config", va.config, NULL };
    const char *by_default[] = { "node", "pk", NULL };

    snprintf(want, sizeof(want), "%s\n", va.pk_hex);
    ck_assert_int_eq(cli_in(NULL, by_config, out, sizeof(out), err, sizeof(err)), 0);
    ck_assert_str_eq(out, want);
    ck_assert_int_eq(cli_in(NULL, node_opt, out, sizeof(out), err, sizeof(err)), 0);
    ck_assert_str_eq(out, want);
    setenv("SKYWIRE_CONFIG", vb.config, 1);
    ck_assert_int_eq(cli_in(NULL, by_default, out, sizeof(out), err, sizeof(err)), 0);
    unsetenv("SKYWIRE_CONFIG");
    ck_assert_ptr_nonnull(strstr(out, vb.pk_hex));

    /* ./skywire-config.json when none is named */
    snprintf(cwd, sizeof(cwd), "%s/cwd-a", dir);
    ck_assert_int_eq(mkdir(cwd, 0700), 0);
    snprintf(copy, sizeof(copy), "%s/skywire-config.json", cwd);
    snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", va.config, copy);
    ck_assert_int_eq(system(cmd), 0);
    ck_assert_int_eq(cli_in(cwd, by_default, out, sizeof(out), err, sizeof(err)), 0);
    ck_assert_str_eq(out, want);
}
END_TEST

/* Without a token the CLI says where it looked; a wrong token is the API's 401. */
START_TEST(test_cli_without_token)
{
    char out[4096], err[2048], empty[600];
    const char *api_only[] = { "--api", va.api, "node", "pk", NULL };
    const char *missing[] = { "--api", va.api, "--api-token-file", "/nonexistent/api-token", "node", "pk", NULL };
    const char *wrong[] = { "--api", va.api, "--api-token-file", vb.token_file, "node", "pk", NULL };

    snprintf(empty, sizeof(empty), "%s/cwd-empty", dir);
    ck_assert_int_eq(mkdir(empty, 0700), 0);
    ck_assert_int_eq(cli_in(empty, api_only, out, sizeof(out), err, sizeof(err)), 1);
    ck_assert_msg(strstr(err, "skywire-config.json") && strstr(err, "--config"), "%s", err);
    ck_assert_int_eq(cli_in(empty, missing, out, sizeof(out), err, sizeof(err)), 1);
    ck_assert_msg(strstr(err, "/nonexistent/api-token"), "%s", err);
    ck_assert_int_eq(cli_in(empty, wrong, out, sizeof(out), err, sizeof(err)), 1);
    ck_assert_msg(strstr(err, "unauthenticated"), "%s", err);
}
END_TEST

/* A relative data_dir is relative to the visor's working directory: run from the config's
 * directory (as run-local.sh does), the CLI finds the token from anywhere with --config. */
START_TEST(test_cli_relative_data_dir)
{
    struct th_visor vr;
    struct json_object *cfg;
    char out[4096], err[2048], want[80], script[2048], url[96], bin[512];
    const char *pk[] = { "--config", NULL, "node", "pk", NULL };
    pid_t pid;

    gen_visor(&vr, "auth-rel");
    ck_assert_ptr_nonnull(cfg = json_object_from_file(vr.config));
    json_object_object_add(cfg, "data_dir", json_object_new_string("rel-data"));
    ck_assert_int_eq(json_object_to_file(vr.config, cfg), 0);
    json_object_put(cfg);
    snprintf(bin, sizeof(bin), "%s", th_bin("skywire-visor"));
    snprintf(script, sizeof(script), "cd '%s' && exec '%s' '%s'", dir, bin, vr.config);
    const char *argv[] = { "/bin/sh", "-c", script, NULL };
    ck_assert_int_gt(pid = th_spawn(argv, NULL, vr.log), 0);
    snprintf(url, sizeof(url), "%s/health", vr.api);
    ck_assert_int_eq(th_wait_http(url, 10000), 0);
    pk[1] = vr.config;
    snprintf(want, sizeof(want), "%s\n", vr.pk_hex);
    ck_assert_int_eq(cli_in("/", pk, out, sizeof(out), err, sizeof(err)), 0);
    ck_assert_str_eq(out, want);
    th_stop(pid, 10000);
}
END_TEST

/* The global options work before or after the command word (visor/cli/globals.c). */
START_TEST(test_cli_global_options_anywhere)
{
    char first[4096], out[4096], err[2048], want[80];
    const char *before[] = { "--json", "node", "ls-tp", "--config", va.config, NULL };
    const char *after[] = { "node", "ls-tp", "--json", "--config", va.config, NULL };
    const char *between[] = { "node", "--json", "--config", va.config, "ls-tp", NULL };
    const char *api_after[] = { "node", "pk", "--api", va.api, "--api-token-file", va.token_file, NULL };
    const char *table[] = { "node", "ls-tp", "--config", va.config, NULL };

    ck_assert_int_eq(cli_in(NULL, before, first, sizeof(first), err, sizeof(err)), 0);
    ck_assert_msg(first[0] == '[', "not JSON: %s", first);
    ck_assert_int_eq(cli_in(NULL, after, out, sizeof(out), err, sizeof(err)), 0);
    ck_assert_str_eq(out, first);
    ck_assert_int_eq(cli_in(NULL, between, out, sizeof(out), err, sizeof(err)), 0);
    ck_assert_str_eq(out, first);
    ck_assert_int_eq(cli_in(NULL, table, out, sizeof(out), err, sizeof(err)), 0);
    ck_assert_msg(strncmp(out, "ID ", 3) == 0, "not a table: %s", out);
    snprintf(want, sizeof(want), "%s\n", va.pk_hex);
    ck_assert_int_eq(cli_in("/", api_after, out, sizeof(out), err, sizeof(err)), 0);
    ck_assert_str_eq(out, want);
}
END_TEST

static Suite *api_auth_suite(void)
{
    Suite *s = suite_create("visor_api_auth");
    TCase *tc = tcase_create("access");

    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_without_token_401);
    tcase_add_test(tc, test_with_token);
    tcase_add_test(tc, test_forged_host_403);
    tcase_add_test(tc, test_foreign_origin_403);
    tcase_add_test(tc, test_non_json_body_415);
    tcase_add_test(tc, test_token_file_private);
    tcase_add_test(tc, test_token_file_lifecycle);
    tcase_add_test(tc, test_allowed_hosts_config);
    tcase_add_test(tc, test_cli_config);
    tcase_add_test(tc, test_cli_without_token);
    tcase_add_test(tc, test_cli_relative_data_dir);
    tcase_add_test(tc, test_cli_global_options_anywhere);
    suite_add_tcase(s, tc);
    return s;
}

const struct th_check_main th_check_main = {
    .suite = api_auth_suite,
    .fork = CK_NOFORK, /* the daemons belong to this process */
    .before = th_check_init_crypto_http,
};
