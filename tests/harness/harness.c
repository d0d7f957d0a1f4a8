#include "tests/harness/harness.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define TH_MAX_CHILDREN 256
#define TH_CLEANUP_GRACE_MS 2000

static pthread_mutex_t th_mu = PTHREAD_MUTEX_INITIALIZER;
static pid_t th_children[TH_MAX_CHILDREN];
static size_t th_nchildren;
static pthread_once_t th_once = PTHREAD_ONCE_INIT;

static void th_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    atexit(th_cleanup);
}

static void th_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void th_die(const char *fmt, ...)
{
    va_list ap;
    fputs("harness: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}

void th_sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* ---- databases ------------------------------------------------------------------- */

/* prefix_<pid>_<n>, reduced to [a-z0-9_] so it never needs more than plain quoting. */
static void db_name(char *out, size_t cap, const char *prefix, unsigned n)
{
    char clean[33];
    size_t i = 0;
    for (; prefix && prefix[i] && i < sizeof(clean) - 1; i++) {
        unsigned char ch = (unsigned char)tolower((unsigned char)prefix[i]);
        clean[i] = (char)(isalnum(ch) ? ch : '_');
    }
    clean[i] = '\0';
    snprintf(out, cap, "%s_%ld_%u", i ? clean : "t", (long)getpid(), n);
}

/* Same server and credentials, other database: swaps the URI path or appends dbname=. */
static void url_with_db(char *out, size_t cap, const char *maint, const char *name)
{
    const char *auth, *path, *query;
    if (strncmp(maint, "postgresql://", 13) != 0 && strncmp(maint, "postgres://", 11) != 0) {
        snprintf(out, cap, "%s dbname=%s", maint, name);
        return;
    }
    auth = strstr(maint, "://") + 3;
    path = auth + strcspn(auth, "/?");
    query = path + strcspn(path, "?");
    snprintf(out, cap, "%.*s/%s%s", (int)(path - maint), maint, name, query);
}

const char *th_fresh_db(const char *prefix)
{
    static __thread char url[1024];
    static atomic_uint counter;
    const char *maint = getenv("SW_TEST_PG_URL");
    char name[80], sql[128];
    PGconn *pg;
    PGresult *r;

    if (!maint || !*maint)
        th_die("SW_TEST_PG_URL is not set: run tests through tests/run-tests.sh");
    db_name(name, sizeof(name), prefix, atomic_fetch_add(&counter, 1));
    pg = PQconnectdb(maint);
    if (PQstatus(pg) != CONNECTION_OK)
        th_die("test cluster %s unreachable: %s", maint, PQerrorMessage(pg));
    snprintf(sql, sizeof(sql), "CREATE DATABASE \"%s\"", name);
    r = PQexec(pg, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        th_die("%s: %s", sql, PQerrorMessage(pg));
    PQclear(r);
    PQfinish(pg);
    url_with_db(url, sizeof(url), maint, name);
    return url;
}

/* Runs tests/pg-cluster.sh VERB $SW_TEST_PG_DIR; its URL output is not wanted, its
 * diagnostics go to our stderr. */
static int run_cluster(const char *verb)
{
    const char *root = getenv("SW_TEST_ROOT"), *dir = getenv("SW_TEST_PG_DIR");
    char script[PATH_MAX];
    int st;
    pid_t pid;

    if (!dir || !*dir) {
        fprintf(stderr, "harness: SW_TEST_PG_DIR is not set\n");
        return -1;
    }
    snprintf(script, sizeof(script), "%s/tests/pg-cluster.sh", root && *root ? root : ".");
    pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        const char *argv[] = { "bash", script, verb, dir, NULL };
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0)
            dup2(null, STDOUT_FILENO);
        close_range(3, ~0U, 0);
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    while (waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR)
            return -1;
    }
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

int th_pg_stop(void) { return run_cluster("stop"); }
int th_pg_start(void) { return run_cluster("start"); }

/* ---- binaries and ports ---------------------------------------------------------- */

const char *th_bin(const char *name)
{
    static __thread char path[PATH_MAX];
    const char *dir = getenv("SW_TEST_BIN_DIR");
    snprintf(path, sizeof(path), "%s/%s", dir && *dir ? dir : "build/release/bin", name);
    return path;
}

uint16_t th_free_port(void)
{
    struct sockaddr_in a = { .sin_family = AF_INET };
    socklen_t len = sizeof(a);
    uint16_t port = 0;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    if (!port)
        th_die("no free port on 127.0.0.1: %s", strerror(errno));
    return port;
}

/* ---- processes ------------------------------------------------------------------- */

static void remember(pid_t pid)
{
    pthread_mutex_lock(&th_mu);
    if (th_nchildren < TH_MAX_CHILDREN)
        th_children[th_nchildren++] = pid;
    else
        fprintf(stderr, "harness: more than %d children; pid %ld not tracked\n",
                TH_MAX_CHILDREN, (long)pid);
    pthread_mutex_unlock(&th_mu);
}

static void forget(pid_t pid)
{
    pthread_mutex_lock(&th_mu);
    for (size_t i = 0; i < th_nchildren; i++) {
        if (th_children[i] == pid) {
            th_children[i] = th_children[--th_nchildren];
            break;
        }
    }
    pthread_mutex_unlock(&th_mu);
}

static bool overridden(const char *kv, const char *const extra[])
{
    size_t klen = strcspn(kv, "=");
    for (; extra && *extra; extra++) {
        if (strncmp(*extra, kv, klen) == 0 && (*extra)[klen] == '=')
            return true;
    }
    return false;
}

/* environ minus the keys extra sets, plus extra; the strings stay borrowed. */
static char **merge_env(const char *const extra[])
{
    size_t n = 0, m = 0, k = 0;
    char **envp;
    while (environ[n])
        n++;
    while (extra && extra[m])
        m++;
    if (!(envp = calloc(n + m + 1, sizeof(*envp))))
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (!overridden(environ[i], extra))
            envp[k++] = environ[i];
    }
    for (size_t j = 0; j < m; j++)
        envp[k++] = (char *)extra[j];
    return envp;
}

/* Child side of th_spawn: only async-signal-safe calls (the parent may have threads). */
static void exec_child(const char *const argv[], char **envp, int logfd, int nullfd,
                       pid_t parent)
{
    static const char msg[] = ": th_spawn: exec failed\n";
    sigset_t none;

    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) /* parent died before prctl took effect */
        _exit(126);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    dup2(nullfd, STDIN_FILENO);
    dup2(logfd, STDOUT_FILENO);
    dup2(logfd, STDERR_FILENO);
    close_range(3, ~0U, 0);
    execve(argv[0], (char *const *)argv, envp);
    if (write(STDERR_FILENO, argv[0], strlen(argv[0])) >= 0 &&
        write(STDERR_FILENO, msg, sizeof(msg) - 1) >= 0)
        _exit(127);
    _exit(127);
}

pid_t th_spawn(const char *const argv[], const char *const env[], const char *log_path)
{
    char **envp = NULL;
    int logfd = -1, nullfd = -1;
    pid_t parent = getpid(), pid = -1;

    pthread_once(&th_once, th_init);
    if (!argv || !argv[0] || !log_path)
        return -1;
    logfd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (logfd < 0 || nullfd < 0 || !(envp = merge_env(env))) {
        fprintf(stderr, "harness: th_spawn %s: %s\n", argv[0], strerror(errno));
        goto out;
    }
    pid = fork();
    if (pid == 0)
        exec_child(argv, envp, logfd, nullfd, parent);
    if (pid > 0) {
        setpgid(pid, pid); /* also here, so the group exists before we might signal it */
        remember(pid);
    }
out:
    free(envp);
    if (logfd >= 0)
        close(logfd);
    if (nullfd >= 0)
        close(nullfd);
    return pid;
}

/* Waits up to timeout_ms for pid to exit without reaping it, so its pid still names its
 * process group; kills what is left of the group, then reaps. 1 reaped, 0 still running,
 * -1 not our child. */
static int reap_group(pid_t pid, int *status, int timeout_ms)
{
    int64_t end = sw_deadline_ms(timeout_ms);
    siginfo_t si;

    for (;;) {
        memset(&si, 0, sizeof(si));
        if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (si.si_pid == pid)
            break;
        if (sw_ms_left(end) == 0)
            return 0;
        th_sleep_ms(10);
    }
    kill(-pid, SIGKILL);
    while (waitpid(pid, status, 0) < 0) {
        if (errno != EINTR)
            return -1;
    }
    return 1;
}

int th_stop(pid_t pid, int timeout_ms)
{
    int st = -1, r;

    if (pid <= 0)
        return -1;
    kill(pid, SIGTERM);
    r = reap_group(pid, &st, timeout_ms);
    if (r == 0) {
        kill(-pid, SIGKILL);
        kill(pid, SIGKILL);
        r = reap_group(pid, &st, 10000);
    }
    forget(pid);
    return r == 1 ? st : -1;
}

void th_cleanup(void)
{
    pid_t pids[TH_MAX_CHILDREN];
    size_t n;
    int64_t end = sw_deadline_ms(TH_CLEANUP_GRACE_MS);
    int st;

    pthread_mutex_lock(&th_mu);
    n = th_nchildren;
    memcpy(pids, th_children, n * sizeof(pids[0]));
    th_nchildren = 0;
    pthread_mutex_unlock(&th_mu);
    for (size_t i = 0; i < n; i++)
        kill(pids[i], SIGTERM);
    for (size_t i = 0; i < n; i++) {
        if (reap_group(pids[i], &st, sw_ms_left(end)) == 0) {
            kill(-pids[i], SIGKILL);
            reap_group(pids[i], &st, 10000);
        }
    }
}

/* ---- HTTP and logs --------------------------------------------------------------- */

static size_t discard(char *p, size_t size, size_t n, void *user) { return size * n; }

int th_wait_http(const char *url, int timeout_ms)
{
    int64_t end = sw_deadline_ms(timeout_ms);
    CURL *h;
    int rc = -1;

    pthread_once(&th_once, th_init);
    if (!(h = curl_easy_init()))
        return -1;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*"); /* a proxy from the environment would lie */
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 500L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 2000L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    for (;;) {
        if (curl_easy_perform(h) == CURLE_OK) {
            rc = 0;
            break;
        }
        if (sw_ms_left(end) == 0)
            break;
        th_sleep_ms(25);
    }
    curl_easy_cleanup(h);
    return rc;
}

void th_dump_log(const char *log_path)
{
    char buf[4096];
    size_t n;
    long size;
    FILE *f = fopen(log_path, "r");

    if (!f) {
        fprintf(stderr, "harness: no log %s: %s\n", log_path, strerror(errno));
        return;
    }
    fseek(f, 0, SEEK_END);
    size = ftell(f);
    fseek(f, size > 8192 ? size - 8192 : 0, SEEK_SET);
    fprintf(stderr, "----- tail of %s -----\n", log_path);
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        fwrite(buf, 1, n, stderr);
    fprintf(stderr, "----- end of %s -----\n", log_path);
    fclose(f);
}
