/* hv.c — skywire-cli through a hypervisor (docs/hypervisor.md "CLI").
 *
 * With --hypervisor URL (or SKYWIRE_HYPERVISOR_URL) the node commands that talk to a
 * visor's API go to URL/api/visors/{--visor PK}/... instead, and `hv visors` lists the
 * managed visors. The CLI logs in first (POST /api/login as admin; the password comes from
 * SKYWIRE_HYPERVISOR_PASSWORD or is asked on the terminal with echo off), keeps the
 * session cookie and CSRF token in memory for this one run and logs out at the end.
 * The password is wiped after use and never printed. */
#include "common/json.h"
#include "common/keys.h"
#include "visor/cli/cli.h"

#include <curl/curl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define HV_COOKIE "swhv_session="

struct cli_hv {
    char url[512];
    char cookie[160];      /* "swhv_session=<token>" */
    char csrf[96];
    const char *visor;     /* --visor PK (borrowed from argv) */
    bool logged_in;
};

static struct cli_hv hv_state;

void cli_hv_set_url(struct cli_ctx *ctx, const char *url)
{
    size_t n;

    snprintf(hv_state.url, sizeof(hv_state.url), "%s", url);
    n = strlen(hv_state.url);
    if (n && hv_state.url[n - 1] == '/')
        hv_state.url[n - 1] = '\0';
    ctx->hv = &hv_state;
}

void cli_hv_set_visor(struct cli_ctx *ctx, const char *pk)
{
    if (ctx->hv)
        ctx->hv->visor = pk;
}

/* Reads the password: the environment, else the terminal with echo off. */
static int read_password(char *pw, size_t cap)
{
    const char *env = getenv("SKYWIRE_HYPERVISOR_PASSWORD");
    struct termios old, quiet;
    FILE *tty;
    bool restore = false;

    if (env && *env) {
        snprintf(pw, cap, "%s", env);
        return CLI_OK;
    }
    if (!(tty = fopen("/dev/tty", "r+"))) {
        fprintf(stderr, "skywire-cli: no terminal to ask for the hypervisor password; "
                        "set SKYWIRE_HYPERVISOR_PASSWORD\n");
        return CLI_FAIL;
    }
    fprintf(tty, "hypervisor password for admin: ");
    fflush(tty);
    if (tcgetattr(fileno(tty), &old) == 0) {
        quiet = old;
        quiet.c_lflag &= (tcflag_t)~ECHO;
        restore = tcsetattr(fileno(tty), TCSAFLUSH, &quiet) == 0;
    }
    if (!fgets(pw, (int)cap, tty))
        pw[0] = '\0';
    if (restore)
        tcsetattr(fileno(tty), TCSAFLUSH, &old);
    fprintf(tty, "\n");
    fclose(tty);
    pw[strcspn(pw, "\r\n")] = '\0';
    return CLI_OK;
}

static size_t header_cb(char *data, size_t size, size_t n, void *arg)
{
    struct cli_hv *h = arg;
    size_t len = size * n, k = strlen("Set-Cookie: ");
    const char *p;

    if (len > k && strncasecmp(data, "Set-Cookie: ", k) == 0 && (p = memmem(data, len, HV_COOKIE, strlen(HV_COOKIE)))) {
        size_t rest = len - (size_t)(p - data), t = 0; /* data is not NUL-terminated */
        while (t < rest && p[t] != ';' && p[t] != '\r' && p[t] != '\n')
            t++;
        if (t < sizeof(h->cookie))
            snprintf(h->cookie, sizeof(h->cookie), "%.*s", (int)t, p);
    }
    return len;
}

static size_t body_cb(char *data, size_t size, size_t n, void *arg)
{
    struct sw_buf *b = arg;
    return sw_buf_append(b, data, size * n) == SW_OK ? size * n : 0;
}

/* POST /api/login with libcurl directly: the cookie arrives in a header. */
static int login(struct cli_hv *h)
{
    char pw[300], url[600];
    struct json_object *req = json_object_new_object(), *res = NULL, *tok;
    struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    struct sw_buf body;
    CURL *c = curl_easy_init();
    long status = 0;
    int rc = CLI_FAIL;

    sw_buf_init(&body, 64 * 1024);
    if (!c || read_password(pw, sizeof(pw)) != CLI_OK)
        goto out;
    json_object_object_add(req, "username", json_object_new_string("admin"));
    json_object_object_add(req, "password", json_object_new_string(pw));
    sodium_memzero(pw, sizeof(pw));
    snprintf(url, sizeof(url), "%s/api/login", h->url);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, json_object_to_json_string(req));
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, body_cb);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 30000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (curl_easy_perform(c) != CURLE_OK) {
        fprintf(stderr, "skywire-cli: cannot reach the hypervisor at %s\n", h->url);
        goto out;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200 || sw_json_parse(body.data ? body.data : "", body.len, &res, NULL) ||
        !json_object_object_get_ex(res, "csrf_token", &tok) || !h->cookie[0]) {
        fprintf(stderr, "skywire-cli: hypervisor login failed (HTTP %ld): %.200s\n", status,
                body.data ? body.data : "");
        goto out;
    }
    snprintf(h->csrf, sizeof(h->csrf), "%s", json_object_get_string(tok));
    h->logged_in = true;
    rc = CLI_OK;
out:
    if (req) {
        struct json_object *p = json_object_object_get(req, "password");
        if (p)
            sodium_memzero((char *)json_object_get_string(p), (size_t)json_object_get_string_len(p));
    }
    json_object_put(req);
    json_object_put(res);
    curl_slist_free_all(hdrs);
    if (c)
        curl_easy_cleanup(c);
    sw_buf_free(&body);
    return rc;
}

/* method URL/target with the session's cookie and CSRF token; logs in on first use. */
static int hv_do(struct cli_ctx *ctx, const char *method, const char *target, const char *body,
                 struct sw_http_result *res)
{
    struct cli_hv *h = ctx->hv;
    char url[2048], cookie[200], csrf[128];
    const char *hdrs[3] = { cookie, csrf, NULL };
    struct sw_error err = { 0 };

    if (!h->logged_in && login(h) != CLI_OK)
        return CLI_FAIL;
    snprintf(url, sizeof(url), "%s%s", h->url, target);
    snprintf(cookie, sizeof(cookie), "Cookie: %s", h->cookie);
    snprintf(csrf, sizeof(csrf), "X-CSRF-Token: %s", h->csrf);
    if (sw_http_do(ctx->http, method, url, hdrs, body, body ? strlen(body) : 0, res, &err)) {
        fprintf(stderr, "skywire-cli: %s\n", err.msg);
        return CLI_FAIL;
    }
    return CLI_OK;
}

int cli_hv_request(struct cli_ctx *ctx, const char *method, const char *target, const char *body,
                   void (*table)(struct json_object *))
{
    struct sw_http_result res = { 0 };
    char t[2048];
    int rc;

    if (strncmp(target, "/api/", 5) == 0 && strncmp(target, "/api/visors", 11) != 0) {
        if (!ctx->hv->visor) {
            fprintf(stderr, "skywire-cli: with --hypervisor, node commands need --visor PK\n");
            return CLI_USAGE;
        }
        snprintf(t, sizeof(t), "/api/visors/%s/%s", ctx->hv->visor, target + 5);
    } else {
        snprintf(t, sizeof(t), "%s", target);
    }
    if ((rc = hv_do(ctx, method, t, body, &res)) == CLI_OK)
        rc = cli_print_reply(ctx, &res, table);
    sw_http_result_free(&res);
    return rc;
}

void cli_hv_logout(struct cli_ctx *ctx)
{
    struct sw_http_result res = { 0 };

    if (ctx->hv && ctx->hv->logged_in && hv_do(ctx, "POST", "/api/logout", "{}", &res) == CLI_OK)
        sw_http_result_free(&res);
    if (ctx->hv) {
        sodium_memzero(ctx->hv->cookie, sizeof(ctx->hv->cookie));
        sodium_memzero(ctx->hv->csrf, sizeof(ctx->hv->csrf));
        ctx->hv->logged_in = false;
    }
}

static const char *jstr(struct json_object *o, const char *key)
{
    struct json_object *v = json_object_object_get(o, key);
    return v ? json_object_get_string(v) : "-";
}

/* A visor's certificate from its summary: "open" (null), "NAME until DATE", "-" unknown. */
static void membership(struct json_object *s, char *out, size_t cap)
{
    struct json_object *m;
    time_t until;
    struct tm tm;
    char date[16];

    if (!s || !json_object_object_get_ex(s, "membership", &m)) {
        snprintf(out, cap, "-");
        return;
    }
    if (!m) {
        snprintf(out, cap, "open");
        return;
    }
    until = (time_t)json_object_get_int64(json_object_object_get(m, "not_after"));
    gmtime_r(&until, &tm);
    strftime(date, sizeof(date), "%Y-%m-%d", &tm);
    snprintf(out, cap, "%.64s until %s", jstr(m, "name"), date);
}

static void print_visors(struct json_object *v)
{
    printf("%-64s  %-7s  %-22s  %-20s  %-10s  %s\n", "PK", "ONLINE", "REMOTE_ADDR", "SINCE", "TRANSPORTS",
           "MEMBER");
    for (size_t i = 0; json_object_is_type(v, json_type_array) && i < json_object_array_length(v); i++) {
        struct json_object *e = json_object_array_get_idx(v, i), *s = json_object_object_get(e, "summary");
        struct json_object *since = json_object_object_get(e, "connected_since");
        char when[32] = "-", member[96];
        membership(s, member, sizeof(member));
        if (since) {
            time_t t = (time_t)json_object_get_int64(since);
            struct tm tm;
            gmtime_r(&t, &tm);
            strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
        }
        printf("%-64s  %-7s  %-22s  %-20s  %-10s  %s\n", jstr(e, "pk"),
               json_object_get_boolean(json_object_object_get(e, "online")) ? "yes" : "no",
               jstr(e, "remote_addr"), when, s ? jstr(s, "transports") : "-", member);
    }
}

int cli_hv(struct cli_ctx *ctx, int argc, char **argv)
{
    struct option opts[CLI_MAX_OPTIONS];
    const char *sub;
    int c;

    cli_options(NULL, opts, CLI_MAX_OPTIONS); /* --hypervisor URL may follow "hv" too */
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1)
        if (!cli_global_option(ctx, c, optarg))
            goto usage;
    if (!ctx->hv) {
        fprintf(stderr, "skywire-cli hv: give --hypervisor URL (or set SKYWIRE_HYPERVISOR_URL)\n");
        return CLI_USAGE;
    }
    sub = optind == argc - 1 ? argv[optind] : "";
    if (strcmp(sub, "visors") == 0)
        return cli_hv_request(ctx, "GET", "/api/visors", NULL, print_visors);
    if (strcmp(sub, "network") == 0)
        return cli_hv_request(ctx, "GET", "/api/network", NULL, NULL);
usage:
    fprintf(stderr, "usage: skywire-cli --hypervisor URL hv visors | network\n");
    return CLI_USAGE;
}
