/* hypervisor — operates many visors from one place (docs/hypervisor.md).
 *
 *   hypervisor [-c hypervisor-config.json] [--addr ...] [--visor-addr ...] [--visor PK]...
 *
 * Life: parse the options (exit 2 naming the bad one), load or create the key file and the
 * admin password, listen for visor links, start the REST API and page, wait for
 * SIGTERM/SIGINT, then stop the API, close the links and exit 0.
 * `hypervisor --reset-password [--data-dir DIR] [--admin-password-file F]` only replaces the
 * admin password (the operator's local recovery path) and exits. */
#include "hypervisor/hv.h"
#include "common/daemon.h"
#include "common/http_client.h"
#include "common/log.h"
#include "common/version.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static int make_dirs(const char *path, struct sw_error *err)
{
    char buf[PATH_MAX];
    size_t n = strlen(path);

    if (n >= sizeof(buf))
        return sw_error_set(err, SW_ERANGE, "--data-dir is too long");
    memcpy(buf, path, n + 1);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0700) && errno != EEXIST)
            return sw_error_set(err, SW_EIO, "--data-dir %s: %s", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0700) && errno != EEXIST)
        return sw_error_set(err, SW_EIO, "--data-dir %s: %s", buf, strerror(errno));
    return SW_OK;
}

static int setup(struct hv *hv, struct sw_error *err)
{
    bool created = false;
    int rc;

    hv->started_at = (int64_t)time(NULL);
    hv->lfd = -1;
    pthread_mutex_init(&hv->mu, NULL);
    pthread_cond_init(&hv->cond, NULL);
    hv->n_visors = hv->cfg.n_visors;
    for (size_t i = 0; i < hv->n_visors; i++) {
        hv->visors[i].pk = hv->cfg.visors[i];
        sw_pk_to_hex(&hv->visors[i].pk, hv->visors[i].pk_hex);
    }
    if ((rc = make_dirs(hv->cfg.data_dir, err)) ||
        (rc = sw_keyfile_load_or_create(hv->cfg.key_file, &hv->kp, &created, err)) ||
        (rc = hv_auth_init(hv, err)) || (rc = hv_link_start(hv, err)) || (rc = hv_api_start(hv, err)))
        return rc;
    if (created)
        sw_log_info("created key file %s", hv->cfg.key_file);
    return SW_OK;
}

static void teardown(struct hv *hv)
{
    hv_api_stop(hv);
    hv_link_stop(hv);
    hv_auth_free(hv);
    sw_keypair_wipe(&hv->kp);
    pthread_mutex_destroy(&hv->mu);
    pthread_cond_destroy(&hv->cond);
}

/* --reset-password: the local way back in for an operator who forgot the password or whose
 * logins are locked out (a restart also forgets every login backoff). */
static int reset_password(struct hv *hv)
{
    struct sw_error err = { 0 };
    char where[PATH_MAX + 32];

    if (make_dirs(hv->cfg.data_dir, &err) ||
        hv_auth_reset_password(&hv->cfg, where, sizeof(where), &err)) {
        fprintf(stderr, "hypervisor: %s\n", err.msg);
        return 1;
    }
    printf("the admin password was reset; the new one is %s\n"
           "restart the hypervisor to use it (every session ends)\n", where);
    return 0;
}

int main(int argc, char **argv)
{
    struct sw_error err = { 0 };
    char pk[SW_PK_HEX_LEN + 1];
    struct hv *hv;
    int rc = 1, sig;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--version") == 0) {
            printf("hypervisor %s\n", SW_VERSION);
            return 0;
        }
    }
    sw_log_init("hypervisor");
    if (!(hv = calloc(1, sizeof(*hv))))
        return 1;
    if ((rc = hv_config_parse(&hv->cfg, argc, argv, &err))) {
        if (rc == SW_EEXIST)
            hv_config_usage();
        else
            fprintf(stderr, "hypervisor: %s\n", err.msg);
        free(hv);
        return rc == SW_EEXIST ? 0 : 2;
    }
    if (hv->cfg.reset_password) {
        rc = sw_crypto_init() ? 1 : reset_password(hv);
        free(hv);
        return rc;
    }
    rc = 1;
    if (sw_daemon_init() || sw_crypto_init() || sw_http_global_init()) {
        fprintf(stderr, "hypervisor: initialisation failed\n");
        free(hv);
        return 1;
    }
    if (setup(hv, &err)) {
        sw_log_error("%s", err.msg);
        goto out;
    }
    sw_pk_to_hex(&hv->kp.pk, pk);
    sw_log_info("started: public key %s, web http://%s, visor links on %s, %zu visors allowed, tpd %s", pk,
                hv->cfg.addr, hv->visor_bound, hv->n_visors, hv->cfg.tpd[0] ? hv->cfg.tpd : "none");
    sig = sw_daemon_wait();
    sw_log_info("%s received, stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    rc = 0;
out:
    teardown(hv);
    free(hv);
    if (rc == 0)
        sw_log_info("stopped");
    return rc;
}
