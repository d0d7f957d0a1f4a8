#include "tests/harness/visor_env.h"
#include "common/json.h"
#include "tests/harness/api_client.h"
#include "tests/harness/harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void slurp(int fd, char *buf, size_t cap)
{
    size_t got = 0;
    ssize_t n;
    if (!buf || !cap)
        return;
    lseek(fd, 0, SEEK_SET);
    while (got + 1 < cap && (n = read(fd, buf + got, cap - 1 - got)) > 0)
        got += (size_t)n;
    buf[got] = '\0';
}

static int temp_fd(void)
{
    char path[] = "/tmp/sw-run.XXXXXX";
    int fd = mkstemp(path);
    if (fd >= 0)
        unlink(path);
    return fd;
}

int th_run(const char *const argv[], char *out, size_t out_cap, char *err, size_t err_cap,
           int timeout_ms)
{
    int ofd = temp_fd(), efd = temp_fd(), st = 0, rc = -1;
    pid_t pid;

    if (ofd < 0 || efd < 0)
        goto done;
    pid = fork();
    if (pid == 0) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        dup2(ofd, STDOUT_FILENO);
        dup2(efd, STDERR_FILENO);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    if (pid < 0)
        goto done;
    for (int waited = 0;; waited += 10) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            break;
        if (waited >= timeout_ms) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            goto done;
        }
        th_sleep_ms(10);
    }
    rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
done:
    if (ofd >= 0) {
        slurp(ofd, out, out_cap);
        close(ofd);
    }
    if (efd >= 0) {
        slurp(efd, err, err_cap);
        close(efd);
    }
    return rc;
}

const char *th_temp_dir(const char *prefix)
{
    static char path[256];
    snprintf(path, sizeof(path), "/tmp/%s.XXXXXX", prefix);
    if (!mkdtemp(path))
        return NULL;
    return path;
}

int th_visor_gen(struct th_visor *v, const char *dir, const char *name, const char *tpd_url,
                 const char *const extra[])
{
    const char *argv[64];
    char out[1024], err[2048], cli[512];
    struct json_object *o = NULL;
    struct sw_error e = { 0 };
    size_t n = 0;
    int rc;

    memset(v, 0, sizeof(*v));
    v->pid = -1;
    snprintf(v->name, sizeof(v->name), "%s", name);
    snprintf(v->config, sizeof(v->config), "%s/%s.json", dir, name);
    snprintf(v->data_dir, sizeof(v->data_dir), "%s/%s-data", dir, name);
    snprintf(v->token_file, sizeof(v->token_file), "%s/api-token", v->data_dir);
    snprintf(v->log, sizeof(v->log), "%s", th_log_path(name));
    v->api_port = th_free_port();
    v->stcp_port = th_free_port();
    snprintf(v->api, sizeof(v->api), "http://127.0.0.1:%u", v->api_port);
    snprintf(v->stcp, sizeof(v->stcp), "127.0.0.1:%u", v->stcp_port);
    snprintf(cli, sizeof(cli), "%s", th_bin("skywire-cli"));
    char api_addr[32];
    snprintf(api_addr, sizeof(api_addr), "127.0.0.1:%u", v->api_port);
    const char *base[] = { cli, "--json", "node", "gen-config", "-o", v->config, "--tpd", tpd_url,
                           "--stcp", v->stcp, "--api-addr", api_addr, "--data-dir", v->data_dir,
                           "--log-level", "debug", "--no-apps" };
    for (size_t i = 0; i < sizeof(base) / sizeof(base[0]); i++)
        argv[n++] = base[i];
    for (size_t i = 0; extra && extra[i] && n < 63; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    rc = th_run(argv, out, sizeof(out), err, sizeof(err), 10000);
    if (rc != 0) {
        fprintf(stderr, "gen-config %s failed (%d): %s\n", name, rc, err);
        return -1;
    }
    if (sw_json_parse(out, strlen(out), &o, &e) ||
        sw_json_get_pk(o, "public_key", "", &v->pk, &e)) {
        fprintf(stderr, "gen-config %s: unexpected output %s (%s)\n", name, out, e.msg);
        json_object_put(o);
        return -1;
    }
    sw_pk_to_hex(&v->pk, v->pk_hex);
    json_object_put(o);
    return 0;
}

/* The visor writes its token before its API listens: read it once /health answers. */
static int read_token(struct th_visor *v)
{
    FILE *f = fopen(v->token_file, "r");
    size_t n = 0;

    if (f) {
        n = fread(v->token, 1, sizeof(v->token) - 1, f);
        fclose(f);
    }
    v->token[n] = '\0';
    if (n != sizeof(v->token) - 1) {
        fprintf(stderr, "visor %s: no API token in %s\n", v->name, v->token_file);
        return -1;
    }
    th_api_set_token(v->api, v->token);
    return 0;
}

int th_visor_start(struct th_visor *v)
{
    char url[96];
    const char *argv[] = { th_bin("skywire-visor"), v->config, NULL };
    char bin[512];

    snprintf(bin, sizeof(bin), "%s", argv[0]);
    argv[0] = bin;
    v->pid = th_spawn(argv, NULL, v->log);
    snprintf(url, sizeof(url), "%s/health", v->api);
    if (v->pid < 0 || th_wait_http(url, 10000) != 0 || read_token(v) != 0) {
        th_dump_log(v->log);
        return -1;
    }
    return 0;
}

int th_visor_stop(struct th_visor *v, bool kill9)
{
    int st = -1;
    if (v->pid <= 0)
        return -1;
    if (kill9)
        kill(v->pid, SIGKILL);
    st = th_stop(v->pid, 10000);
    v->pid = -1;
    return st;
}

bool th_log_wait(const char *path, const char *needle, int timeout_ms)
{
    char *buf = malloc(1 << 20);
    bool found = false;

    for (int waited = 0; buf && !found; waited += 50) {
        FILE *f = fopen(path, "r");
        if (f) {
            long size;
            fseek(f, 0, SEEK_END);
            size = ftell(f);
            fseek(f, size > (1 << 20) - 1 ? size - ((1 << 20) - 1) : 0, SEEK_SET);
            size_t n = fread(buf, 1, (1 << 20) - 1, f);
            buf[n] = '\0';
            fclose(f);
            found = strstr(buf, needle) != NULL;
        }
        if (found || waited >= timeout_ms)
            break;
        th_sleep_ms(50);
    }
    free(buf);
    return found;
}

int th_log_count(const char *path, const char *needle)
{
    char line[2048];
    int n = 0;
    FILE *f = fopen(path, "r");

    while (f && fgets(line, sizeof(line), f))
        n += strstr(line, needle) != NULL;
    if (f)
        fclose(f);
    return n;
}

struct json_object *th_app_entry(const char *name, uint16_t port, const char *const args[])
{
    struct json_object *o = json_object_new_object(), *a = json_object_new_array();

    json_object_object_add(o, "app", json_object_new_string(name));
    json_object_object_add(o, "auto_start", json_object_new_boolean(1));
    json_object_object_add(o, "port", json_object_new_int(port));
    for (size_t i = 0; args && args[i]; i++)
        json_object_array_add(a, json_object_new_string(args[i]));
    json_object_object_add(o, "args", a);
    return o;
}

int th_visor_set_apps(const struct th_visor *v, struct json_object *apps)
{
    struct json_object *cfg = json_object_from_file(v->config);
    int rc = -1;

    if (!cfg) {
        fprintf(stderr, "cannot read %s\n", v->config);
        json_object_put(apps);
        return -1;
    }
    json_object_object_add(cfg, "apps", apps);
    if (json_object_to_file_ext(v->config, cfg, JSON_C_TO_STRING_PRETTY) == 0)
        rc = 0;
    else
        fprintf(stderr, "cannot write %s\n", v->config);
    json_object_put(cfg);
    return rc;
}

int th_visor_set_field(const struct th_visor *v, const char *path, struct json_object *value)
{
    struct json_object *cfg = json_object_from_file(v->config), *o;
    char buf[256], *dot, *key;
    int rc = -1;

    snprintf(buf, sizeof(buf), "%s", path);
    if (!cfg) {
        fprintf(stderr, "cannot read %s\n", v->config);
        json_object_put(value);
        return -1;
    }
    for (o = cfg, key = buf; (dot = strchr(key, '.')); key = dot + 1) {
        struct json_object *next;
        *dot = '\0';
        next = json_object_object_get(o, key);
        if (!json_object_is_type(next, json_type_object)) {
            next = json_object_new_object();
            json_object_object_add(o, key, next);
        }
        o = next;
    }
    if (value)
        json_object_object_add(o, key, value);
    else
        json_object_object_del(o, key);
    if (json_object_to_file_ext(v->config, cfg, JSON_C_TO_STRING_PRETTY) == 0)
        rc = 0;
    else
        fprintf(stderr, "cannot write %s\n", v->config);
    json_object_put(cfg);
    return rc;
}

bool th_tcp_up(uint16_t port, int timeout_ms)
{
    for (int waited = 0;; waited += 100) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port),
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
        if (fd >= 0)
            close(fd);
        if (ok)
            return true;
        if (waited >= timeout_ms)
            return false;
        th_sleep_ms(100);
    }
}
