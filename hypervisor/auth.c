/* auth.c — the hypervisor's admin login (docs/hypervisor.md "Authentication").
 *
 * One account, "admin". Its password is stored as an Argon2id string
 * (crypto_pwhash_str, interactive limits) in data_dir/admin.pwhash (mode 0600). A login
 * creates a session: a 32-byte random token (cookie swhv_session, HttpOnly,
 * SameSite=Strict, Path=/, Secure with --cookie-secure) and a 32-byte random CSRF token
 * (returned in the body; mutations must echo it in X-CSRF-Token). Sessions live in memory
 * (HV_MAX_SESSIONS, the oldest is evicted), expire after 1 h idle or 12 h, and all end when
 * the password changes: the caller gets a fresh session (new cookie and CSRF token).
 *
 * Failed logins are limited per source, and only per source: an IPv4 address, or an IPv6 /64
 * (which one subscriber usually holds whole), and every loopback address (127.0.0.0/8, ::1,
 * their IPv4-mapped forms) as the one source "loopback", so a local user cannot spread
 * guesses over 127.x.y.z. cfg.login_failures (default 5) are free, then each failure locks
 * the source out for 1 min, doubling up to 1 h; a success or a day without failures forgets
 * them. There is no global ceiling: guessers at other addresses never lock the admin out
 * (Argon2 running one check at a time bounds the guessing rate of many addresses). A source
 * over its limit gets 429 with Retry-After before its password is looked at. The local way
 * back in for an admin whose own source is backed off is hypervisor --reset-password and a
 * restart (main.c), which also forgets every backoff. Password checks run one at a time
 * (Argon2 takes 64 MiB).
 * Tokens are compared in constant time; nothing secret is logged. */
#include "hypervisor/hv.h"
#include "common/hex.h"
#include "common/http_server.h"
#include "common/json.h"
#include "common/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HV_MAX_SESSIONS 64
#define HV_TOKEN_BYTES 32
#define HV_TOKEN_HEX (HV_TOKEN_BYTES * 2)
#define HV_IDLE_S 3600
#define HV_ABSOLUTE_S (12 * 3600)
#define HV_SOURCES 1024           /* sources with failed logins remembered (LRU) */
#define HV_SOURCE_MAX (HV_IP_MAX + 4) /* "2001:db8:1:2::/64" */
#define HV_SOURCE_LOOPBACK "loopback" /* 127.0.0.0/8 and ::1: one source */
#define HV_BACKOFF_FIRST_S 60
#define HV_BACKOFF_MAX_S 3600
#define HV_FORGET_S (24 * 3600)   /* a source's failures are forgotten after a quiet day */
#define HV_PASSWORD_MIN 8
#define HV_PASSWORD_MAX 256
#define HV_COOKIE "swhv_session"

struct hv_session {
    bool used;
    char token[HV_TOKEN_HEX + 1];
    char csrf[HV_TOKEN_HEX + 1];
    int64_t created, last_seen; /* Unix seconds: expires_at is shown to the page */
};

struct hv_source {             /* failed logins of one source */
    char key[HV_SOURCE_MAX];      /* "" = free slot */
    unsigned failures;
    int64_t last_failure, locked_until; /* monotonic seconds */
};

struct hv_auth {
    pthread_mutex_t mu;       /* sessions, failures, hash */
    pthread_mutex_t verify_mu; /* one Argon2 at a time */
    char hash[crypto_pwhash_STRBYTES];
    char hash_path[PATH_MAX + 32];
    bool secure;
    unsigned free_failures;   /* per source before the backoff */
    struct hv_session s[HV_MAX_SESSIONS];
    struct hv_source src[HV_SOURCES];
};

/* ---- the password file -------------------------------------------------------------------- */

static int write_secret_file(const char *path, const char *text, struct sw_error *err)
{
    char tmp[PATH_MAX + 48];
    size_t n = strlen(text);
    int fd;

    snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return sw_error_set(err, SW_EIO, "%s: %s", tmp, strerror(errno));
    if (write(fd, text, n) != (ssize_t)n || write(fd, "\n", 1) != 1 || fsync(fd) || close(fd)) {
        unlink(tmp);
        return sw_error_set(err, SW_EIO, "writing %s: %s", tmp, strerror(errno));
    }
    if (rename(tmp, path)) {
        unlink(tmp);
        return sw_error_set(err, SW_EIO, "renaming %s: %s", tmp, strerror(errno));
    }
    return SW_OK;
}

static int hash_password(const char *pw, char out[crypto_pwhash_STRBYTES])
{
    return crypto_pwhash_str(out, pw, strlen(pw), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                             crypto_pwhash_MEMLIMIT_INTERACTIVE) ? SW_ENOMEM : SW_OK;
}

/* First line of path into pw (no newline). */
static int read_password_file(const char *path, char *pw, size_t cap, struct sw_error *err)
{
    FILE *f = fopen(path, "r");
    size_t n;

    if (!f)
        return sw_error_set(err, SW_EIO, "--admin-password-file %s: %s", path, strerror(errno));
    if (!fgets(pw, (int)cap, f))
        pw[0] = '\0';
    fclose(f);
    n = strcspn(pw, "\r\n");
    pw[n] = '\0';
    if (n < HV_PASSWORD_MIN)
        return sw_error_set(err, SW_EINVAL, "--admin-password-file %s: the password must have at least %d characters",
                            path, HV_PASSWORD_MIN);
    return SW_OK;
}

/* The admin_password_file's password, or a generated one written to data_dir/initial-password
 * (its path into where, when given). */
static int new_password(const struct hv_config *cfg, char *pw, size_t cap, char *where, size_t wcap,
                        struct sw_error *err)
{
    char path[PATH_MAX + 32];
    uint8_t raw[15];
    int rc;

    if (cfg->admin_password_file[0]) {
        if (where)
            snprintf(where, wcap, "the first line of %s", cfg->admin_password_file);
        return read_password_file(cfg->admin_password_file, pw, cap, err);
    }
    randombytes_buf(raw, sizeof(raw));
    sodium_bin2base64(pw, cap, raw, sizeof(raw), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof(raw));
    snprintf(path, sizeof(path), "%s/initial-password", cfg->data_dir);
    if ((rc = write_secret_file(path, pw, err)))
        return rc;
    if (where)
        snprintf(where, wcap, "in %s", path);
    return SW_OK;
}

static int first_password(struct hv *hv, char *pw, size_t cap, struct sw_error *err)
{
    char where[PATH_MAX + 64];
    int rc = new_password(&hv->cfg, pw, cap, where, sizeof(where), err);

    if (rc == SW_OK && !hv->cfg.admin_password_file[0])
        sw_log_info("first start: generated the admin password %s (log in, then change it)", where);
    return rc;
}

int hv_auth_reset_password(const struct hv_config *cfg, char *where, size_t cap, struct sw_error *err)
{
    char pw[HV_PASSWORD_MAX + 2], hash[crypto_pwhash_STRBYTES], path[PATH_MAX + 32];
    int rc;

    snprintf(path, sizeof(path), "%s/admin.pwhash", cfg->data_dir);
    if ((rc = new_password(cfg, pw, sizeof(pw), where, cap, err)))
        goto out;
    if ((rc = hash_password(pw, hash))) {
        sw_error_set(err, rc, "cannot hash the password (out of memory)");
        goto out;
    }
    rc = write_secret_file(path, hash, err);
out:
    sodium_memzero(pw, sizeof(pw));
    return rc;
}

static int load_hash(struct hv_auth *a, struct hv *hv, struct sw_error *err)
{
    char pw[HV_PASSWORD_MAX + 2];
    FILE *f = fopen(a->hash_path, "r");
    int rc;

    if (f) {
        if (!fgets(a->hash, sizeof(a->hash), f))
            a->hash[0] = '\0';
        fclose(f);
        a->hash[strcspn(a->hash, "\r\n")] = '\0';
        if (strncmp(a->hash, "$argon2id$", 10) != 0)
            return sw_error_set(err, SW_EINVAL, "%s: not an Argon2id password hash", a->hash_path);
        return SW_OK;
    }
    if (errno != ENOENT)
        return sw_error_set(err, SW_EIO, "%s: %s", a->hash_path, strerror(errno));
    if ((rc = first_password(hv, pw, sizeof(pw), err)))
        goto out;
    if ((rc = hash_password(pw, a->hash))) {
        sw_error_set(err, rc, "cannot hash the password (out of memory)");
        goto out;
    }
    rc = write_secret_file(a->hash_path, a->hash, err);
out:
    sodium_memzero(pw, sizeof(pw));
    return rc;
}

int hv_auth_init(struct hv *hv, struct sw_error *err)
{
    struct hv_auth *a = calloc(1, sizeof(*a));
    int rc;

    if (!a)
        return sw_error_set(err, SW_ENOMEM, "out of memory");
    pthread_mutex_init(&a->mu, NULL);
    pthread_mutex_init(&a->verify_mu, NULL);
    a->secure = hv->cfg.cookie_secure;
    a->free_failures = hv->cfg.login_failures ? hv->cfg.login_failures : 5;
    snprintf(a->hash_path, sizeof(a->hash_path), "%s/admin.pwhash", hv->cfg.data_dir);
    hv->auth = a;
    if ((rc = load_hash(a, hv, err)))
        return rc;
    return SW_OK;
}

void hv_auth_free(struct hv *hv)
{
    if (!hv->auth)
        return;
    pthread_mutex_destroy(&hv->auth->mu);
    pthread_mutex_destroy(&hv->auth->verify_mu);
    sodium_memzero(hv->auth, sizeof(*hv->auth));
    free(hv->auth);
    hv->auth = NULL;
}

/* ---- sessions ----------------------------------------------------------------------------- */

static bool expired(const struct hv_session *s, int64_t now)
{
    return now - s->last_seen > HV_IDLE_S || now - s->created > HV_ABSOLUTE_S;
}

/* The live session whose token is tok[0..HV_TOKEN_HEX) (under a->mu), or NULL. */
static struct hv_session *session_of(struct hv_auth *a, const char *tok, int64_t now)
{
    for (size_t i = 0; i < HV_MAX_SESSIONS; i++) {
        struct hv_session *s = &a->s[i];
        if (!s->used || sodium_memcmp(s->token, tok, HV_TOKEN_HEX) != 0)
            continue;
        if (expired(s, now)) {
            sodium_memzero(s, sizeof(*s));
            return NULL;
        }
        s->last_seen = now;
        return s;
    }
    return NULL;
}

/* The session named by the request's cookie (under a->mu), or NULL. Every swhv_session
 * cookie is tried: a stray one set for a parent domain or path may come first. */
static struct hv_session *find_session(struct hv_auth *a, const struct sw_http_request *req)
{
    const char *cookie = sw_http_header(req, "Cookie"), *p;
    struct hv_session *s;
    int64_t now = sw_unix_ms() / 1000;

    for (p = cookie; p && (p = strstr(p, HV_COOKIE "=")); p++) {
        if (p != cookie && p[-1] != ' ' && p[-1] != ';')
            continue;
        p += strlen(HV_COOKIE "=");
        if (strcspn(p, "; ") == HV_TOKEN_HEX && (s = session_of(a, p, now)))
            return s;
    }
    return NULL;
}

static void random_hex(char out[HV_TOKEN_HEX + 1])
{
    uint8_t raw[HV_TOKEN_BYTES];
    randombytes_buf(raw, sizeof(raw));
    sodium_bin2hex(out, HV_TOKEN_HEX + 1, raw, sizeof(raw));
    sodium_memzero(raw, sizeof(raw));
}

/* Under a->mu: a fresh session in a free, expired or the oldest slot. */
static struct hv_session *new_session(struct hv_auth *a)
{
    struct hv_session *pick = NULL;
    int64_t now = sw_unix_ms() / 1000;

    for (size_t i = 0; i < HV_MAX_SESSIONS; i++) {
        struct hv_session *s = &a->s[i];
        if (!s->used || expired(s, now)) {
            pick = s;
            break;
        }
        if (!pick || s->last_seen < pick->last_seen)
            pick = s;
    }
    memset(pick, 0, sizeof(*pick));
    pick->used = true;
    pick->created = pick->last_seen = now;
    random_hex(pick->token);
    random_hex(pick->csrf);
    return pick;
}

/* When s ends unless used again: idle or absolute limit, whichever comes first. */
static int64_t expires_at(const struct hv_session *s)
{
    int64_t idle = s->last_seen + HV_IDLE_S, abs = s->created + HV_ABSOLUTE_S;
    return idle < abs ? idle : abs;
}

size_t hv_auth_sessions(struct hv *hv)
{
    size_t n = 0;
    int64_t now = sw_unix_ms() / 1000;

    pthread_mutex_lock(&hv->auth->mu);
    for (size_t i = 0; i < HV_MAX_SESSIONS; i++)
        n += hv->auth->s[i].used && !expired(&hv->auth->s[i], now);
    pthread_mutex_unlock(&hv->auth->mu);
    return n;
}

/* ---- login rate limits -------------------------------------------------------------------- */

/* The unit of the limits: an IPv4 address (also when mapped into IPv6), an IPv6 /64, and
 * every loopback address as one source: 127.0.0.0/8 is a whole /8 on one machine. */
static void source_of(const char *ip, char out[HV_SOURCE_MAX])
{
    char buf[INET6_ADDRSTRLEN];
    struct in6_addr a;
    struct in_addr a4;

    if (inet_pton(AF_INET, ip, &a4) == 1) {
        if ((ntohl(a4.s_addr) >> 24) == 127)
            snprintf(out, HV_SOURCE_MAX, HV_SOURCE_LOOPBACK);
        else
            snprintf(out, HV_SOURCE_MAX, "%s", ip);
        return;
    }
    if (inet_pton(AF_INET6, ip, &a) != 1) {
        snprintf(out, HV_SOURCE_MAX, "%s", ip);
        return;
    }
    if (IN6_IS_ADDR_V4MAPPED(&a)) {
        inet_ntop(AF_INET, &a.s6_addr[12], buf, sizeof(buf));
        source_of(buf, out);
        return;
    }
    if (IN6_IS_ADDR_LOOPBACK(&a)) {
        snprintf(out, HV_SOURCE_MAX, HV_SOURCE_LOOPBACK);
        return;
    }
    memset(&a.s6_addr[8], 0, 8);
    inet_ntop(AF_INET6, &a, buf, sizeof(buf));
    snprintf(out, HV_SOURCE_MAX, "%s/64", buf);
}

/* Under a->mu: key's record, or (create) a free, forgotten or the least recent slot. */
static struct hv_source *source_slot(struct hv_auth *a, const char *key, bool create, int64_t now)
{
    struct hv_source *reusable = NULL, *oldest = NULL, *pick;

    for (size_t i = 0; i < HV_SOURCES; i++) {
        struct hv_source *s = &a->src[i];
        if (s->key[0] && strcmp(s->key, key) == 0)
            return s;
        if (!s->key[0] || now - s->last_failure > HV_FORGET_S)
            reusable = reusable ? reusable : s;
        else if (!oldest || s->last_failure < oldest->last_failure)
            oldest = s;
    }
    if (!create)
        return NULL;
    pick = reusable ? reusable : oldest;
    memset(pick, 0, sizeof(*pick));
    snprintf(pick->key, sizeof(pick->key), "%s", key);
    return pick;
}

/* Seconds key must wait before its next password check; 0 = now. */
static unsigned wait_s(struct hv_auth *a, const char *key)
{
    int64_t now = sw_mono_ms() / 1000;
    struct hv_source *s;
    unsigned wait = 0;

    pthread_mutex_lock(&a->mu);
    s = source_slot(a, key, false, now);
    if (s && s->locked_until > now)
        wait = (unsigned)(s->locked_until - now);
    pthread_mutex_unlock(&a->mu);
    return wait;
}

static void count_failure(struct hv_auth *a, const char *key)
{
    int64_t now = sw_mono_ms() / 1000;
    struct hv_source *s;

    pthread_mutex_lock(&a->mu);
    s = source_slot(a, key, true, now);
    if (now - s->last_failure > HV_FORGET_S)
        s->failures = 0;
    s->failures++;
    s->last_failure = now;
    if (s->failures >= a->free_failures) {
        unsigned doublings = s->failures - a->free_failures;
        int64_t lock = doublings >= 6 ? HV_BACKOFF_MAX_S : (int64_t)HV_BACKOFF_FIRST_S << doublings;
        s->locked_until = now + (lock < HV_BACKOFF_MAX_S ? lock : HV_BACKOFF_MAX_S);
    }
    pthread_mutex_unlock(&a->mu);
}

/* A login from key succeeded: its failures go. */
static void count_success(struct hv_auth *a, const char *key)
{
    struct hv_source *s;

    pthread_mutex_lock(&a->mu);
    if ((s = source_slot(a, key, false, sw_mono_ms() / 1000)))
        memset(s, 0, sizeof(*s));
    pthread_mutex_unlock(&a->mu);
}

enum check { CHECK_OK, CHECK_WRONG, CHECK_LIMITED };

/* Checks pw against the stored hash, one check at a time (Argon2 takes 64 MiB). The limit is
 * looked at, and a failure counted, inside that one-at-a-time section: requests that arrive
 * together then cannot all pass the limit before the first failure is counted. *wait: the
 * seconds to wait when limited. */
static enum check check_password(struct hv_auth *a, const char *key, const char *pw, unsigned *wait)
{
    char hash[crypto_pwhash_STRBYTES];
    enum check rc = CHECK_LIMITED;

    pthread_mutex_lock(&a->verify_mu);
    if ((*wait = wait_s(a, key)) == 0) {
        pthread_mutex_lock(&a->mu);
        memcpy(hash, a->hash, sizeof(hash));
        pthread_mutex_unlock(&a->mu);
        rc = crypto_pwhash_str_verify(hash, pw, strlen(pw)) == 0 ? CHECK_OK : CHECK_WRONG;
        if (rc == CHECK_WRONG)
            count_failure(a, key);
    }
    pthread_mutex_unlock(&a->verify_mu);
    return rc;
}

static void reply_limited(struct sw_http_response *resp, unsigned wait, const char *what)
{
    sw_http_reply_error(resp, 429, "rate_limited", "too many failed %s from your address; try again in %u s",
                        what, wait);
    resp->retry_after_s = wait;
}

/* ---- handlers ----------------------------------------------------------------------------- */

static struct hv_auth *auth_of(const struct sw_http_request *req)
{
    return ((struct hv *)req->app)->auth;
}

static void set_cookie(struct hv_auth *a, struct sw_http_response *resp, const char *token)
{
    snprintf(resp->set_cookie, sizeof(resp->set_cookie), HV_COOKIE "=%s; HttpOnly; SameSite=Strict; Path=/%s%s",
             token, token[0] ? "" : "; Max-Age=0", a->secure ? "; Secure" : "");
}

/* Parses two string fields of at most HV_PASSWORD_MAX bytes from the JSON body. */
static int two_strings(const struct sw_http_request *req, const char *ka, const char **va,
                       const char *kb, const char **vb, struct json_object **root)
{
    if (sw_json_parse(req->body, req->body_len, root, NULL) ||
        sw_json_get_string(*root, ka, "", HV_PASSWORD_MAX, va, NULL) ||
        sw_json_get_string(*root, kb, "", HV_PASSWORD_MAX, vb, NULL))
        return SW_EINVAL;
    return SW_OK;
}

/* A new session for the caller: its cookie on resp, its CSRF token into o (under no lock). */
static void open_session(struct hv_auth *a, struct sw_http_response *resp, struct json_object *o)
{
    char token[HV_TOKEN_HEX + 1], csrf[HV_TOKEN_HEX + 1];
    struct hv_session *s;

    pthread_mutex_lock(&a->mu);
    s = new_session(a);
    memcpy(token, s->token, sizeof(token));
    memcpy(csrf, s->csrf, sizeof(csrf));
    pthread_mutex_unlock(&a->mu);
    set_cookie(a, resp, token);
    json_object_object_add(o, "csrf_token", json_object_new_string(csrf));
    sodium_memzero(token, sizeof(token));
    sodium_memzero(csrf, sizeof(csrf));
}

void hv_auth_login(struct sw_http_request *req, struct sw_http_response *resp)
{
    struct hv_auth *a = auth_of(req);
    struct json_object *root = NULL, *o;
    const char *user = NULL, *pw = NULL;
    char ip[64], key[HV_SOURCE_MAX];
    unsigned wait;
    enum check chk;

    sw_http_client_ip(req, ip, sizeof(ip));
    source_of(ip, key);
    if (two_strings(req, "username", &user, "password", &pw, &root)) {
        sw_http_reply_error(resp, 400, "invalid_body",
                            "the body must be {\"username\":\"admin\",\"password\":\"...\"}");
        goto out;
    }
    if ((chk = check_password(a, key, pw, &wait)) == CHECK_LIMITED) {
        sw_log_warn("login from %s: rate limited (source %s, %u s to wait)", ip, key, wait);
        reply_limited(resp, wait, "logins");
        goto out;
    }
    if (chk != CHECK_OK || strcmp(user, "admin") != 0) {
        if (chk == CHECK_OK)
            count_failure(a, key);
        sw_log_warn("login from %s: invalid credentials", ip);
        sw_http_reply_error(resp, 401, "invalid_credentials", "wrong user name or password");
        goto out;
    }
    count_success(a, key);
    sw_log_info("login from %s: admin", ip);
    o = json_object_new_object();
    open_session(a, resp, o);
    sw_http_reply_json(resp, 200, o);
out:
    json_object_put(root);
}

/* Under a->mu on success (returns the session with the lock held), else replies. */
static struct hv_session *session_locked(const struct sw_http_request *req, struct sw_http_response *resp,
                                         bool need_csrf)
{
    struct hv_auth *a = auth_of(req);
    const char *h = sw_http_header(req, "X-CSRF-Token");
    struct hv_session *s;

    pthread_mutex_lock(&a->mu);
    if (!(s = find_session(a, req))) {
        pthread_mutex_unlock(&a->mu);
        sw_http_reply_error(resp, 401, "unauthenticated", "log in first (POST /api/login)");
        return NULL;
    }
    if (need_csrf && (!h || strlen(h) != HV_TOKEN_HEX || sodium_memcmp(h, s->csrf, HV_TOKEN_HEX) != 0)) {
        pthread_mutex_unlock(&a->mu);
        sw_http_reply_error(resp, 403, "csrf", "missing or wrong X-CSRF-Token header");
        return NULL;
    }
    return s;
}

static bool mutation(const struct sw_http_request *req)
{
    return strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0;
}

bool hv_auth_check(const struct sw_http_request *req, struct sw_http_response *resp)
{
    struct hv_session *s = session_locked(req, resp, mutation(req));
    if (s)
        pthread_mutex_unlock(&auth_of(req)->mu);
    return s != NULL;
}

void hv_auth_logout(struct sw_http_request *req, struct sw_http_response *resp)
{
    struct hv_auth *a = auth_of(req);
    struct hv_session *s = session_locked(req, resp, true);
    struct json_object *o;

    if (!s)
        return;
    sodium_memzero(s, sizeof(*s));
    pthread_mutex_unlock(&a->mu);
    set_cookie(a, resp, "");
    o = json_object_new_object();
    json_object_object_add(o, "logged_out", json_object_new_boolean(true));
    sw_http_reply_json(resp, 200, o);
}

void hv_auth_session(struct sw_http_request *req, struct sw_http_response *resp)
{
    struct hv_auth *a = auth_of(req);
    struct hv_session *s = session_locked(req, resp, false);
    struct json_object *o;

    if (!s)
        return;
    o = json_object_new_object();
    json_object_object_add(o, "user", json_object_new_string("admin"));
    json_object_object_add(o, "csrf_token", json_object_new_string(s->csrf));
    json_object_object_add(o, "expires_at", json_object_new_int64(expires_at(s)));
    pthread_mutex_unlock(&a->mu);
    sw_http_reply_json(resp, 200, o);
}

/* The generated first password is no longer valid once changed: its file goes. */
static void forget_initial_password(const struct hv_auth *a)
{
    char path[sizeof(a->hash_path) + 32];
    const char *slash = strrchr(a->hash_path, '/');
    int dir = slash ? (int)(slash - a->hash_path) + 1 : 0;

    snprintf(path, sizeof(path), "%.*sinitial-password", dir, a->hash_path);
    if (unlink(path) == 0)
        sw_log_info("removed %s: the admin password was changed", path);
}

/* Stores the new hash and ends every session (the caller gets a new one). */
static int set_password(struct hv_auth *a, const char *pw, struct sw_error *err)
{
    char hash[crypto_pwhash_STRBYTES];
    int rc;

    if (hash_password(pw, hash))
        return sw_error_set(err, SW_ENOMEM, "cannot hash the password (out of memory)");
    pthread_mutex_lock(&a->mu);
    if ((rc = write_secret_file(a->hash_path, hash, err)) == SW_OK) {
        memcpy(a->hash, hash, sizeof(hash));
        sodium_memzero(a->s, sizeof(a->s));
        forget_initial_password(a);
    }
    pthread_mutex_unlock(&a->mu);
    return rc;
}

/* The caller's session is rotated too: whoever copied its cookie or CSRF token (the reason to
 * change a password) loses them; the answer carries the new ones. */
static void change_password(struct hv_auth *a, struct sw_http_response *resp, const char *nw, const char *ip)
{
    struct sw_error err = { 0 };
    struct json_object *o;

    if (set_password(a, nw, &err)) {
        sw_log_error("password change: %s", err.msg);
        sw_http_reply_error(resp, 500, "internal_error", "cannot store the new password");
        return;
    }
    sw_log_info("admin password changed from %s; every session ended, the caller got a new one", ip);
    o = json_object_new_object();
    json_object_object_add(o, "changed", json_object_new_boolean(true));
    open_session(a, resp, o);
    sw_http_reply_json(resp, 200, o);
}

void hv_auth_password(struct sw_http_request *req, struct sw_http_response *resp)
{
    struct hv_auth *a = auth_of(req);
    struct hv_session *s = session_locked(req, resp, true);
    struct json_object *root = NULL;
    const char *old = NULL, *nw = NULL;
    char ip[64], key[HV_SOURCE_MAX];
    unsigned wait;
    enum check chk;

    if (!s)
        return;
    pthread_mutex_unlock(&a->mu);
    sw_http_client_ip(req, ip, sizeof(ip));
    source_of(ip, key);
    if (two_strings(req, "old_password", &old, "new_password", &nw, &root)) {
        sw_http_reply_error(resp, 400, "invalid_body", "the body must be {\"old_password\",\"new_password\"}");
    } else if (strlen(nw) < HV_PASSWORD_MIN) {
        sw_http_reply_error(resp, 400, "invalid_password", "the new password must have at least %d characters",
                            HV_PASSWORD_MIN);
    } else if ((chk = check_password(a, key, old, &wait)) == CHECK_LIMITED) {
        reply_limited(resp, wait, "password checks");
    } else if (chk == CHECK_WRONG) {
        sw_http_reply_error(resp, 401, "invalid_credentials", "the old password is wrong");
    } else {
        change_password(a, resp, nw, ip);
    }
    json_object_put(root);
}
