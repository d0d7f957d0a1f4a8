/* bench_util.h — what the benchmarks in tests/bench share: clocks, latency percentiles,
 * per-process CPU accounting from /proc (the "cores busy" columns), memory of a process,
 * a loopback TCP pair, and a phase runner that fans a request loop out over threads and
 * prints one table row per phase.
 *
 * A phase: `threads` client threads each prepare (untimed, e.g. sign bodies), wait for
 * the others, then run `request` up to their share of max_requests or until max_seconds
 * have passed since the common start. Every request's latency is kept; the result has the
 * count, errors (with the first reason), p50/p99 and how many cores each watched process,
 * PostgreSQL, this process and the rest of the machine kept busy over the phase. */
#ifndef SW_TEST_BENCH_UTIL_H
#define SW_TEST_BENCH_UTIL_H

#include "common/clock.h"
#include "common/err.h"
#include "common/http_client.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

#define BU_WHY_MAX 320    /* room for a failure reason */
#define BU_MAX_PIDS 4     /* watched processes besides PostgreSQL and this one */
#define BU_MAX_PG_PROCS 512

/* ---- small helpers ------------------------------------------------------------------ */

/* Prints "<program>: <message>" to stderr and exits 1. */
void bu_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* Sorts v[0..n) ascending. */
void bu_sort(double *v, size_t n);
/* Nearest-rank percentile (p in 0..1) of sorted v[0..n); 0 when n is 0. */
double bu_percentile(const double *v, size_t n, double p);
/* Two connected blocking loopback TCP sockets (close-on-exec); dies on failure. */
void bu_tcp_pair(int *a, int *b);
/* VmHWM / VmRSS of pid in kB (-1 each when unknown). */
void bu_proc_mem(pid_t pid, long *hwm_kb, long *rss_kb);
/* Raises RLIMIT_NOFILE's soft limit to the hard limit (children inherit it); returns the
 * soft limit now (RLIM_INFINITY as is), 0 when it cannot be read. */
rlim_t bu_raise_fd_limit(void);

/* ---- CPU accounting ----------------------------------------------------------------- */

/* The processes whose CPU a phase accounts: pid[0..n) (a pid <= 0 counts nothing) and all
 * of PostgreSQL (postmaster and its children; 0: none). */
struct bu_procs {
    pid_t pid[BU_MAX_PIDS];
    size_t n;
    pid_t postmaster;
};

struct bu_proc_ticks {
    pid_t pid;
    uint64_t ticks;
};

/* CPU ticks (utime+stime) at one instant. Large: allocate it, do not put it on a stack
 * a worker thread might be short of. */
struct bu_cpu_snap {
    uint64_t machine; /* busy ticks of all CPUs (/proc/stat) */
    uint64_t pid[BU_MAX_PIDS], self;
    struct bu_proc_ticks pg[BU_MAX_PG_PROCS];
    size_t n_pg;
};

/* CPU seconds per wall second of each process group over an interval. */
struct bu_cores {
    double pid[BU_MAX_PIDS]; /* the watched processes, in bu_procs order */
    double pg, self;         /* PostgreSQL, this process */
    double other;            /* everything else on the machine (noise from other work) */
};

/* The test cluster's postmaster (from $SW_TEST_PG_DIR/data/postmaster.pid); 0 if unknown. */
pid_t bu_postmaster_pid(void);
void bu_cpu_snapshot(struct bu_cpu_snap *s, const struct bu_procs *p);
/* Cores busy between snapshots a and b taken `seconds` apart (n: watched processes);
 * processes born in between count from zero. */
void bu_cores_between(const struct bu_cpu_snap *a, const struct bu_cpu_snap *b, size_t n,
                      double seconds, struct bu_cores *out);

/* ---- phases ------------------------------------------------------------------------- */

struct bu_phase;

/* One client thread of a phase, handed to the phase's callbacks. */
struct bu_worker {
    struct bu_phase *ph;
    unsigned index; /* 0 .. threads-1 */
    size_t quota;   /* requests this thread may make */
    void *state;    /* ph->state_size zeroed bytes of the bench's own per-thread state */
    struct sw_http_client *http; /* bu_prepare_http's; freed by the runner */
    /* the runner's */
    size_t done, errors;
    double *lat_ms;
    int64_t end_ns;
    int ready;
    char why[BU_WHY_MAX];
};

/* A bench may embed this as the first member of its own phase struct and cast w->ph back. */
struct bu_phase {
    const char *name;
    unsigned threads;
    size_t max_requests; /* over all threads */
    double max_seconds;
    const char *const *targets; /* e.g. URLs, spread over the threads (bu_target) */
    size_t n_targets;
    size_t state_size;
    int (*prepare)(struct bu_worker *w, char *why);            /* untimed; 0 = ready */
    int (*request)(struct bu_worker *w, size_t i, char *why); /* timed; 0 = success */
    void (*release)(struct bu_worker *w);                      /* may be NULL */
    const struct bu_procs *procs; /* whose CPU the cores columns show */
    /* the runner's */
    pthread_barrier_t go;
    int64_t start_ns;
};

struct bu_result {
    char name[56];
    unsigned threads;
    size_t requests, errors;
    double seconds, p50_ms, p99_ms;
    struct bu_cores cores;
    char first_error[BU_WHY_MAX];
};

/* Target i of worker w: each thread starts at its own offset and rotates over them all. */
const char *bu_target(const struct bu_worker *w, size_t i);
/* Runs one phase into *res (zeroed first). Dies when threads cannot be started. */
void bu_run_phase(struct bu_phase *ph, struct bu_result *res);
/* CPU microseconds per operation of this process (for single-threaded in-process loops:
 * unlike the wall-clock rate it does not suffer when other work shares the machine). */
double bu_cpu_us_per_op(const struct bu_result *r);

/* ---- HTTP requests in a phase ------------------------------------------------------ */

/* A phase's prepare: w->http, a keep-alive client with a 10 s timeout. */
int bu_prepare_http(struct bu_worker *w, char *why);
/* A phase's request: GET bu_target(w, i) on w->http, expecting 200. */
int bu_request_get(struct bu_worker *w, size_t i, char *why);
/* 0 when the request went through (rc, err of sw_http_do*) and the status is want;
 * -1 with the reason in why (BU_WHY_MAX) otherwise. */
int bu_http_answer(int rc, const struct sw_error *err, const struct sw_http_result *res, long want,
                   char *why);

/* ---- the request table -------------------------------------------------------------- */

/* The header (two lines) of the per-phase table: name column name_w wide, then thr,
 * count (unit), secs, rate, p50 ms, p99 ms, errors and cores_label (e.g. "cores busy:
 * td / pg / bench / other"), dashes under each (cores_rule under the label; 0: as long
 * as the label). */
void bu_print_header(int name_w, const char *unit, const char *rate, const char *cores_label,
                     size_t cores_rule);
/* One row: the figures and "pid0 / .. / pid[n-1] / pg / self / other" cores. */
void bu_print_result(const struct bu_result *r, int name_w, size_t n_pids);

#endif
