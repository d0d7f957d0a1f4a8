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
#include "common/daemon_main.h"
#include "common/fs.h"
#include "common/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int setup(struct hv *hv, struct sw_error *err)
{
    bool created = false;
    int rc;

    hv->started_at = sw_unix_ms() / 1000;
    hv->lfd = -1;
    pthread_mutex_init(&hv->mu, NULL);
    pthread_cond_init(&hv->cond, NULL);
    hv->n_visors = hv->cfg.n_visors;
    for (size_t i = 0; i < hv->n_visors; i++) {
        hv->visors[i].pk = hv->cfg.visors[i];
        sw_pk_to_hex(&hv->visors[i].pk, hv->visors[i].pk_hex);
    }
    if ((rc = sw_make_dirs(hv->cfg.data_dir, 0700, "--data-dir", err)) ||
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

    if (sw_make_dirs(hv->cfg.data_dir, 0700, "--data-dir", &err) ||
        hv_auth_reset_password(&hv->cfg, where, sizeof(where), &err)) {
        fprintf(stderr, "hypervisor: %s\n", err.msg);
        return 1;
    }
    printf("the admin password was reset; the new one is %s\n"
           "restart the hypervisor to use it (every session ends)\n", where);
    return 0;
}

static int oneshot(void *arg)
{
    struct hv *hv = arg;
    return hv->cfg.reset_password ? reset_password(hv) : -1;
}

static int configure(void *arg, int argc, char **argv, struct sw_error *err)
{
    struct hv *hv = arg;
    return hv_config_finish(&hv->cfg, err);
}

static int start(void *arg, struct sw_error *err)
{
    struct hv *hv = arg;
    char pk[SW_PK_HEX_LEN + 1];
    int rc;

    if ((rc = setup(hv, err)))
        return rc;
    sw_pk_to_hex(&hv->kp.pk, pk);
    sw_log_info("started: public key %s, web http://%s, visor links on %s, %zu visors allowed, tpd %s", pk,
                hv->cfg.addr, hv->visor_bound, hv->n_visors, hv->cfg.tpd[0] ? hv->cfg.tpd : "none");
    return SW_OK;
}

static void stop(void *arg)
{
    teardown(arg);
}

int main(int argc, char **argv)
{
    struct hv *hv = calloc(1, sizeof(*hv));
    int rc;

    if (!hv)
        return 1;
    hv_config_defaults(&hv->cfg);
    const struct sw_daemon_def def = {
        .cli = { .prog = "hypervisor", .synopsis = "[-c hypervisor-config.json] [options]",
                 .opts = hv_config_options(&hv->cfg),
                 .footer = "environment: SKYWIRE_LOG_LEVEL=debug|info|warn|error\n" },
        .libs = SW_DAEMON_CURL,
        .configure = configure,
        .oneshot = oneshot,
        .start = start,
        .stop = stop,
    };
    rc = sw_daemon_main(&def, hv, argc, argv);
    free(hv);
    return rc;
}
