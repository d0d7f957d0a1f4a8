/* harness.h — what integration tests and benches use to run real processes.
 *
 * tests/run-tests.sh starts one throwaway PostgreSQL cluster (tests/pg-cluster.sh) and
 * exports SW_TEST_PG_URL (maintenance DB url), SW_TEST_PG_DIR and SW_TEST_BIN_DIR before
 * running test binaries. Every spawned process is recorded and killed by PID at exit
 * (th_cleanup is registered with atexit; children also get PR_SET_PDEATHSIG). */
#ifndef SW_TEST_HARNESS_H
#define SW_TEST_HARNESS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/clock.h" /* tests time their waits with sw_deadline_ms / sw_mono_ms */

/* Creates a fresh database named prefix_<pid>_<n> in the test cluster; returns its URL
 * (static storage per call: copy it). Aborts the test program when PostgreSQL is absent. */
const char *th_fresh_db(const char *prefix);
/* Stops / starts the shared cluster (for database-outage tests). 0 on success. */
int th_pg_stop(void);
int th_pg_start(void);

/* Path of a built binary, e.g. th_bin("transport-discovery") (static storage). */
const char *th_bin(const char *name);
/* A currently free TCP port on 127.0.0.1. */
uint16_t th_free_port(void);

/* Starts argv[0] with argv; stdout+stderr go to log_path (appended). Extra env entries
 * ("K=V", NULL-terminated, may be NULL). Returns the pid or -1. */
pid_t th_spawn(const char *const argv[], const char *const env[], const char *log_path);
/* Polls GET url until any HTTP answer arrives or timeout_ms passes; 0 when answered. */
int th_wait_http(const char *url, int timeout_ms);
/* SIGTERM, wait up to timeout_ms, then SIGKILL. Returns the wait status, -1 on error. */
int th_stop(pid_t pid, int timeout_ms);
/* Sleeps ms milliseconds (resumed after signals). */
void th_sleep_ms(int ms);

/* Prints the tail of a log file to stderr (for failing tests). */
void th_dump_log(const char *log_path);
void th_cleanup(void);

#endif
