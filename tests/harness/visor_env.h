/* visor_env.h — running real skywire-visor processes in tests and benches: configs made by
 * `skywire-cli node gen-config`, loopback ports, start/stop by PID, commands with captured
 * output. */
#ifndef SW_TEST_VISOR_ENV_H
#define SW_TEST_VISOR_ENV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <json-c/json.h>

#include "common/keys.h"
#include "tests/harness/harness.h" /* th_sleep_ms */

struct th_visor {
    char name[16];
    char config[512];
    char data_dir[512];
    char log[512];
    char pk_hex[SW_PK_HEX_LEN + 1];
    struct sw_pk pk;
    uint16_t api_port, stcp_port;
    char api[64];   /* http://127.0.0.1:PORT */
    char stcp[32];  /* 127.0.0.1:PORT */
    char token_file[560]; /* data_dir/api-token, made by the visor at its first start */
    char token[65];       /* its content once th_visor_start saw it ("" before) */
    pid_t pid;
};

/* Runs argv[0] (a path) with argv, stdout and stderr captured into out/err (NUL-terminated,
 * truncated to their caps; either may be NULL). Waits up to timeout_ms, then kills it.
 * Returns the exit status, 128 + signal, or -1 on timeout or failure to start. */
int th_run(const char *const argv[], char *out, size_t out_cap, char *err, size_t err_cap,
           int timeout_ms);

/* A fresh private directory (static storage per call: copy it). */
const char *th_temp_dir(const char *prefix);

/* Writes dir/<name>.json through `skywire-cli node gen-config` with loopback ports, the
 * transport discovery tpd_url and extra gen-config options (NULL-terminated, may be NULL).
 * Fills v (not started). 0 on success; prints the CLI's stderr otherwise. */
int th_visor_gen(struct th_visor *v, const char *dir, const char *name, const char *tpd_url,
                 const char *const extra[]);
/* Spawns the visor (log appended to v->log) and waits for its API. 0 when it answers; the
 * API token is then in v->token and registered for th_call (th_api_set_token). */
int th_visor_start(struct th_visor *v);
/* SIGKILL (kill9) or SIGTERM with a 10 s grace; returns the wait status. */
int th_visor_stop(struct th_visor *v, bool kill9);
/* One app entry of a visor config: {"app":name,"auto_start":true,"port":port,"args":[...]}
 * (args NULL-terminated, may be NULL). The caller owns it. */
struct json_object *th_app_entry(const char *name, uint16_t port, const char *const args[]);
/* Replaces the "apps" of v's config file with apps (taken, also on failure). 0 on success;
 * prints why otherwise. */
int th_visor_set_apps(const struct th_visor *v, struct json_object *apps);
/* Sets the field at a dotted path of v's config file (e.g. "network.revocations_refresh_ms")
 * to value (taken, also on failure; NULL removes the field); objects missing on the way are
 * made. 0 on success; prints why otherwise. */
int th_visor_set_field(const struct th_visor *v, const char *path, struct json_object *value);
/* Polls until something accepts TCP connections on 127.0.0.1:port (every 100 ms). */
bool th_tcp_up(uint16_t port, int timeout_ms);
/* True once the file holds a line containing needle (polls up to timeout_ms). */
bool th_log_wait(const char *path, const char *needle, int timeout_ms);
/* Lines of the file at path holding needle (0 when it cannot be read). */
int th_log_count(const char *path, const char *needle);

#endif
