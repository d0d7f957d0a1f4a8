#include "tests/harness/api_client.h"
#include "common/json.h"
#include "tests/harness/harness.h"

#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TH_API_TOKENS_MAX 64

struct th_api_token {
    char base[128];
    char header[128];       /* "Authorization: Bearer <token>" */
    const char *headers[2]; /* { header, NULL } */
};

static struct th_api_token api_tokens[TH_API_TOKENS_MAX];
static size_t n_api_tokens;
static pthread_mutex_t api_tokens_mu = PTHREAD_MUTEX_INITIALIZER;

void th_api_set_token(const char *base, const char *token)
{
    struct th_api_token *t = NULL;

    pthread_mutex_lock(&api_tokens_mu);
    for (size_t i = 0; i < n_api_tokens && !t; i++)
        if (strcmp(api_tokens[i].base, base) == 0)
            t = &api_tokens[i];
    if (!t && n_api_tokens < TH_API_TOKENS_MAX)
        t = &api_tokens[n_api_tokens++];
    if (t) {
        snprintf(t->base, sizeof(t->base), "%s", base);
        snprintf(t->header, sizeof(t->header), "Authorization: Bearer %s", token);
        t->headers[0] = t->header;
        t->headers[1] = NULL;
    }
    pthread_mutex_unlock(&api_tokens_mu);
    if (!t)
        fprintf(stderr, "th_api_set_token: more than %d visor APIs\n", TH_API_TOKENS_MAX);
}

const char *const *th_api_headers(const char *base)
{
    const char *const *h = NULL;

    pthread_mutex_lock(&api_tokens_mu);
    for (size_t i = 0; i < n_api_tokens && !h; i++)
        if (strcmp(api_tokens[i].base, base) == 0)
            h = api_tokens[i].headers;
    pthread_mutex_unlock(&api_tokens_mu);
    return h;
}

long th_call(struct sw_http_client *http, const char *base, const char *method, const char *target,
             const char *body, const struct sw_keypair *signer, struct json_object **out)
{
    struct sw_http_result res = { 0 };
    struct sw_error err = { 0 };
    char url[1024];
    size_t len = body ? strlen(body) : 0;
    long status;
    int rc;

    if (signer) {
        rc = sw_http_do_signed(http, signer, base, method, target, body, len, &res, &err);
    } else {
        snprintf(url, sizeof(url), "%s%s", base, target);
        rc = sw_http_do(http, method, url, th_api_headers(base), body, len, &res, &err);
    }
    ck_assert_msg(rc == SW_OK, "%s %s: %s", method, target, err.msg);
    if (out) {
        *out = NULL;
        ck_assert_msg(sw_json_parse(res.body, res.body_len, out, &err) == SW_OK,
                      "%s %s: reply is not JSON: %s", method, target, res.body);
    }
    status = res.status;
    sw_http_result_free(&res);
    return status;
}

const char *th_error_code(struct json_object *o)
{
    return json_object_get_string(json_object_object_get(json_object_object_get(o, "error"), "code"));
}

void th_expect_error(struct sw_http_client *http, const char *base, const char *method,
                     const char *target, const char *body, const struct sw_keypair *signer,
                     long status, const char *code)
{
    struct json_object *o;
    long st = th_call(http, base, method, target, body, signer, &o);
    ck_assert_msg(st == status, "%s %s: status %ld, want %ld: %s", method, target, st, status,
                  json_object_to_json_string(o));
    ck_assert_msg(th_error_code(o) && strcmp(th_error_code(o), code) == 0, "%s %s: code %s, want %s",
                  method, target, th_error_code(o), code);
    json_object_put(o);
}

pid_t th_start_service(const char *const argv[], uint16_t port, const char *log_path)
{
    char url[96];
    pid_t pid = th_spawn(argv, NULL, log_path);
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/health", port);
    if (pid < 0 || th_wait_http(url, 15000) != 0) {
        th_dump_log(log_path);
        return -1;
    }
    return pid;
}

bool th_md_wait_entry(const char *md_base, const struct sw_pk *pk, int timeout_ms)
{
    struct sw_http_client *http = sw_http_client_new(NULL);
    char hex[SW_PK_HEX_LEN + 1], url[256];
    int64_t end = sw_deadline_ms(timeout_ms > 0 ? timeout_ms : 0);
    long st = 0;

    sw_pk_to_hex(pk, hex);
    snprintf(url, sizeof(url), "%s/messaging-discovery/entry/%s", md_base, hex);
    for (int k = 0; http && st != 200; k++) {
        struct sw_http_result res = { 0 };
        if (k) {
            if (sw_mono_ms() >= end)
                break;
            th_sleep_ms(25);
        }
        st = sw_http_do(http, "GET", url, NULL, NULL, 0, &res, NULL) == SW_OK ? res.status : 0;
        sw_http_result_free(&res);
    }
    sw_http_client_free(http);
    return st == 200;
}

const char *th_log_path(const char *name)
{
    static char path[512];
    const char *dir = getenv("SW_TEST_LOG_DIR");
    snprintf(path, sizeof(path), "%s/%s", dir && *dir ? dir : "/tmp", name);
    return path;
}
