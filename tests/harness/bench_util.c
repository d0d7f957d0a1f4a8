#include "tests/harness/bench_util.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ---- small helpers ------------------------------------------------------------------ */

void bu_die(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", program_invocation_short_name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void bu_sort(double *v, size_t n)
{
    qsort(v, n, sizeof(*v), cmp_double);
}

double bu_percentile(const double *v, size_t n, double p)
{
    size_t rank;
    if (n == 0)
        return 0;
    rank = (size_t)(p * (double)n + 0.999999);
    return v[rank ? rank - 1 : 0];
}

void bu_tcp_pair(int *a, int *b)
{
    struct sockaddr_in sa = { .sin_family = AF_INET };
    socklen_t len = sizeof(sa);
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof(sa)) || listen(l, 4) ||
        getsockname(l, (struct sockaddr *)&sa, &len))
        bu_die("loopback listen: %s", strerror(errno));
    *a = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (*a < 0 || connect(*a, (struct sockaddr *)&sa, sizeof(sa)) ||
        (*b = accept4(l, NULL, NULL, SOCK_CLOEXEC)) < 0)
        bu_die("loopback connect: %s", strerror(errno));
    close(l);
}

void bu_proc_mem(pid_t pid, long *hwm_kb, long *rss_kb)
{
    char path[64], line[256];
    FILE *f;
    *hwm_kb = *rss_kb = -1;
    snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
    if (!(f = fopen(path, "r")))
        return;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "VmHWM:", 6) == 0)
            *hwm_kb = strtol(line + 6, NULL, 10);
        else if (strncmp(line, "VmRSS:", 6) == 0)
            *rss_kb = strtol(line + 6, NULL, 10);
    }
    fclose(f);
}

rlim_t bu_raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl))
        return 0;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    return rl.rlim_cur;
}

/* ---- CPU accounting ----------------------------------------------------------------- */

/* utime+stime and parent of pid; -1 when the process is gone. */
static int read_proc_stat(pid_t pid, pid_t *ppid, uint64_t *ticks)
{
    char path[64], buf[1024], *p;
    unsigned long ut = 0, st = 0;
    int parent = 0;
    size_t n;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
    if (!(f = fopen(path, "r")))
        return -1;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    if (!(p = strrchr(buf, ')')) ||
        sscanf(p + 2, "%*c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &parent, &ut, &st) != 3)
        return -1;
    if (ppid)
        *ppid = parent;
    *ticks = (uint64_t)ut + st;
    return 0;
}

static uint64_t ticks_of(pid_t pid)
{
    uint64_t t = 0;
    if (pid > 0)
        read_proc_stat(pid, NULL, &t);
    return t;
}

pid_t bu_postmaster_pid(void)
{
    const char *dir = getenv("SW_TEST_PG_DIR");
    char path[PATH_MAX];
    long pid = 0;
    FILE *f;

    if (!dir)
        return 0;
    snprintf(path, sizeof(path), "%s/data/postmaster.pid", dir);
    if (!(f = fopen(path, "r")))
        return 0;
    if (fscanf(f, "%ld", &pid) != 1)
        pid = 0;
    fclose(f);
    return (pid_t)pid;
}

/* The postmaster and all its children (backends, checkpointer, walwriter, ...). */
static void snap_postgres(struct bu_cpu_snap *s, pid_t postmaster)
{
    struct dirent *de;
    DIR *d = opendir("/proc");

    s->n_pg = 0;
    if (!d || !postmaster)
        goto out;
    while ((de = readdir(d)) && s->n_pg < BU_MAX_PG_PROCS) {
        pid_t pid = (pid_t)strtol(de->d_name, NULL, 10), parent = 0;
        uint64_t t;
        if (pid <= 0 || read_proc_stat(pid, &parent, &t))
            continue;
        if (pid == postmaster || parent == postmaster)
            s->pg[s->n_pg++] = (struct bu_proc_ticks){ pid, t };
    }
out:
    if (d)
        closedir(d);
}

/* Busy (non-idle, non-iowait) ticks of the whole machine. */
static uint64_t machine_busy_ticks(void)
{
    unsigned long long v[8] = { 0 };
    uint64_t busy = 0;
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return 0;
    if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
               &v[4], &v[5], &v[6], &v[7]) == 8)
        busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7]; /* all but idle and iowait */
    fclose(f);
    return busy;
}

void bu_cpu_snapshot(struct bu_cpu_snap *s, const struct bu_procs *p)
{
    s->machine = machine_busy_ticks();
    for (size_t i = 0; i < p->n && i < BU_MAX_PIDS; i++)
        s->pid[i] = ticks_of(p->pid[i]);
    s->self = ticks_of(getpid());
    snap_postgres(s, p->postmaster);
}

/* PostgreSQL CPU between two snapshots; processes born in between count from zero. */
static uint64_t pg_delta(const struct bu_cpu_snap *a, const struct bu_cpu_snap *b)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < b->n_pg; i++) {
        uint64_t before = 0;
        for (size_t j = 0; j < a->n_pg; j++)
            if (a->pg[j].pid == b->pg[i].pid)
                before = a->pg[j].ticks;
        sum += b->pg[i].ticks > before ? b->pg[i].ticks - before : 0;
    }
    return sum;
}

void bu_cores_between(const struct bu_cpu_snap *a, const struct bu_cpu_snap *b, size_t n,
                      double seconds, struct bu_cores *out)
{
    double hz = (double)sysconf(_SC_CLK_TCK), wall = seconds > 0 ? seconds : 1;

    memset(out, 0, sizeof(*out));
    out->other = (double)(b->machine - a->machine) / hz / wall;
    for (size_t i = 0; i < n && i < BU_MAX_PIDS; i++) {
        out->pid[i] = (double)(b->pid[i] - a->pid[i]) / hz / wall;
        out->other -= out->pid[i];
    }
    out->pg = (double)pg_delta(a, b) / hz / wall;
    out->self = (double)(b->self - a->self) / hz / wall;
    out->other -= out->pg;
    out->other -= out->self;
    if (out->other < 0)
        out->other = 0;
}

/* ---- phases ------------------------------------------------------------------------- */

const char *bu_target(const struct bu_worker *w, size_t i)
{
    const struct bu_phase *ph = w->ph;
    size_t spread = ph->n_targets / ph->threads;
    return ph->targets[(w->index * spread + i) % ph->n_targets];
}

static void run_requests(struct bu_worker *w)
{
    const struct bu_phase *ph = w->ph;
    int64_t deadline = ph->start_ns + (int64_t)(ph->max_seconds * 1e9);
    char why[BU_WHY_MAX];

    for (size_t i = 0; i < w->quota; i++) {
        int64_t t0 = sw_mono_ns();
        if (t0 >= deadline)
            break;
        if (ph->request(w, i, why)) {
            if (w->errors++ == 0)
                snprintf(w->why, sizeof(w->why), "%s", why);
        }
        w->lat_ms[w->done++] = (double)(sw_mono_ns() - t0) / 1e6;
    }
}

static void *worker_main(void *arg)
{
    struct bu_worker *w = arg;
    struct bu_phase *ph = w->ph;

    w->lat_ms = calloc(w->quota ? w->quota : 1, sizeof(*w->lat_ms));
    w->ready = w->lat_ms && ph->prepare(w, w->why) == 0;
    if (!w->ready && !w->why[0])
        snprintf(w->why, sizeof(w->why), "out of memory");
    pthread_barrier_wait(&ph->go); /* everyone is prepared */
    pthread_barrier_wait(&ph->go); /* the clock has started */
    if (w->ready)
        run_requests(w);
    else
        w->errors = 1;
    w->end_ns = sw_mono_ns();
    return NULL;
}

/* Merges the workers' counts and latencies into res. */
static void collect(struct bu_worker *ws, unsigned n, struct bu_result *res)
{
    size_t total = 0, k = 0;
    double *all;
    for (unsigned i = 0; i < n; i++)
        total += ws[i].done;
    all = calloc(total ? total : 1, sizeof(*all));
    if (!all)
        bu_die("out of memory");
    for (unsigned i = 0; i < n; i++) {
        memcpy(all + k, ws[i].lat_ms, ws[i].done * sizeof(*all));
        k += ws[i].done;
        res->errors += ws[i].errors;
        if (ws[i].errors && !res->first_error[0])
            snprintf(res->first_error, sizeof(res->first_error), "%s", ws[i].why);
    }
    bu_sort(all, total);
    res->requests = total;
    res->p50_ms = bu_percentile(all, total, 0.50);
    res->p99_ms = bu_percentile(all, total, 0.99);
    free(all);
}

static void start_workers(struct bu_phase *ph, struct bu_worker *ws, char *states, pthread_t *tids)
{
    for (unsigned i = 0; i < ph->threads; i++) {
        ws[i].ph = ph;
        ws[i].index = i;
        ws[i].quota = ph->max_requests / ph->threads + (i < ph->max_requests % ph->threads);
        ws[i].state = ph->state_size ? states + i * ph->state_size : NULL;
        if (pthread_create(&tids[i], NULL, worker_main, &ws[i]) != 0)
            bu_die("cannot start a worker thread");
    }
}

void bu_run_phase(struct bu_phase *ph, struct bu_result *res)
{
    struct bu_worker *ws = calloc(ph->threads, sizeof(*ws));
    pthread_t *tids = calloc(ph->threads, sizeof(*tids));
    char *states = calloc(ph->threads, ph->state_size ? ph->state_size : 1);
    struct bu_cpu_snap *snaps = calloc(2, sizeof(*snaps));
    static const struct bu_procs none;
    const struct bu_procs *procs = ph->procs ? ph->procs : &none;
    int64_t end = 0;

    if (!ws || !tids || !states || !snaps)
        bu_die("out of memory");
    memset(res, 0, sizeof(*res));
    snprintf(res->name, sizeof(res->name), "%s", ph->name);
    res->threads = ph->threads;
    pthread_barrier_init(&ph->go, NULL, ph->threads + 1);
    start_workers(ph, ws, states, tids);
    pthread_barrier_wait(&ph->go);
    bu_cpu_snapshot(&snaps[0], procs);
    ph->start_ns = sw_mono_ns();
    pthread_barrier_wait(&ph->go);
    for (unsigned i = 0; i < ph->threads; i++) {
        pthread_join(tids[i], NULL);
        end = ws[i].end_ns > end ? ws[i].end_ns : end;
    }
    bu_cpu_snapshot(&snaps[1], procs);
    res->seconds = (double)(end - ph->start_ns) / 1e9;
    bu_cores_between(&snaps[0], &snaps[1], procs->n, res->seconds, &res->cores);
    collect(ws, ph->threads, res);
    for (unsigned i = 0; i < ph->threads; i++) {
        if (ph->release)
            ph->release(&ws[i]);
        sw_http_client_free(ws[i].http);
        free(ws[i].lat_ms);
    }
    pthread_barrier_destroy(&ph->go);
    free(ws);
    free(tids);
    free(states);
    free(snaps);
}

double bu_cpu_us_per_op(const struct bu_result *r)
{
    return r->requests ? r->cores.self * r->seconds * 1e6 / (double)r->requests : 0;
}

/* ---- HTTP requests in a phase ------------------------------------------------------ */

int bu_prepare_http(struct bu_worker *w, char *why)
{
    struct sw_http_client_opts opts = { .timeout_ms = 10000 };
    if (!(w->http = sw_http_client_new(&opts))) {
        snprintf(why, BU_WHY_MAX, "cannot create an HTTP client");
        return -1;
    }
    return 0;
}

int bu_http_answer(int rc, const struct sw_error *err, const struct sw_http_result *res, long want,
                   char *why)
{
    if (rc) {
        snprintf(why, BU_WHY_MAX, "%.250s", err->msg);
        return -1;
    }
    if (res->status != want) {
        snprintf(why, BU_WHY_MAX, "HTTP %ld: %.150s", res->status, res->body ? res->body : "");
        return -1;
    }
    return 0;
}

int bu_request_get(struct bu_worker *w, size_t i, char *why)
{
    struct sw_http_result res = { 0 };
    struct sw_error err = { 0 };
    int rc = sw_http_do(w->http, "GET", bu_target(w, i), NULL, NULL, 0, &res, &err);
    rc = bu_http_answer(rc, &err, &res, 200, why);
    sw_http_result_free(&res);
    return rc;
}

/* ---- the request table -------------------------------------------------------------- */

static void print_dashes(size_t n)
{
    for (size_t i = 0; i < n; i++)
        putchar('-');
}

void bu_print_header(int name_w, const char *unit, const char *rate, const char *cores_label,
                     size_t cores_rule)
{
    printf("%-*s %3s %8s %6s %9s %8s %8s %6s  %-s\n", name_w, "phase", "thr", unit, "secs", rate,
           "p50 ms", "p99 ms", "errors", cores_label);
    print_dashes((size_t)name_w);
    printf(" --- -------- ------ --------- -------- -------- ------  ");
    print_dashes(cores_rule ? cores_rule : strlen(cores_label));
    putchar('\n');
}

void bu_print_result(const struct bu_result *r, int name_w, size_t n_pids)
{
    double rate = r->seconds > 0 ? (double)r->requests / r->seconds : 0;
    printf("%-*s %3u %8zu %6.2f %9.0f %8.3f %8.3f %6zu  ", name_w, r->name, r->threads, r->requests,
           r->seconds, rate, r->p50_ms, r->p99_ms, r->errors);
    for (size_t i = 0; i < n_pids && i < BU_MAX_PIDS; i++)
        printf("%4.2f / ", r->cores.pid[i]);
    printf("%4.2f / %4.2f / %4.2f\n", r->cores.pg, r->cores.self, r->cores.other);
    fflush(stdout);
}
