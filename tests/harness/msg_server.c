#include "tests/harness/msg_server.h"

#include "common/err.h"
#include "tests/harness/api_client.h"
#include "tests/harness/harness.h"

#include <stdio.h>
#include <unistd.h>

bool th_msg_server_init(struct th_msg_server *s, const char *prefix, const char *discovery)
{
    struct sw_error err = { 0 };
    char name[128];

    if (sw_keypair_generate(&s->kp) != SW_OK) {
        fprintf(stderr, "messaging-server %s: key generation failed\n", s->name);
        return false;
    }
    snprintf(name, sizeof(name), "%s-%s.key", prefix, s->name);
    snprintf(s->keyfile, sizeof(s->keyfile), "%s", th_log_path(name));
    unlink(s->keyfile);
    if (sw_keyfile_save(s->keyfile, &s->kp, &err) != SW_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return false;
    }
    if (s->net) {
        snprintf(name, sizeof(name), "%s-%s.cert", prefix, s->name);
        snprintf(s->certfile, sizeof(s->certfile), "%s", th_log_path(name));
        th_network_cert_file(s->net, &s->kp.pk, SW_ROLE_MESSAGING_SERVER, 86400, s->certfile);
    }
    snprintf(name, sizeof(name), "%s-%s.log", prefix, s->name);
    snprintf(s->log, sizeof(s->log), "%s", th_log_path(name));
    s->port = th_free_port();
    s->http_port = th_free_port();
    snprintf(s->addr, sizeof(s->addr), "127.0.0.1:%u", s->port);
    snprintf(s->http_base, sizeof(s->http_base), "http://127.0.0.1:%u", s->http_port);
    return th_msg_server_start(s, discovery);
}

bool th_msg_server_start(struct th_msg_server *s, const char *discovery)
{
    char http_addr[32];
    const char *argv[24];
    size_t i = 0;

    snprintf(http_addr, sizeof(http_addr), "127.0.0.1:%u", s->http_port);
    argv[i++] = th_bin("messaging-server");
    argv[i++] = "--addr";
    argv[i++] = s->addr;
    argv[i++] = "--http-addr";
    argv[i++] = http_addr;
    argv[i++] = "--key-file";
    argv[i++] = s->keyfile;
    argv[i++] = "--max-sessions";
    argv[i++] = s->max_sessions ? s->max_sessions : "200";
    if (s->net) {
        argv[i++] = "--network";
        argv[i++] = s->net->pk_hex;
        argv[i++] = "--cert-file";
        argv[i++] = s->certfile;
    }
    if (s->net && s->revocations) {
        argv[i++] = "--revocations";
        argv[i++] = s->revocations;
    }
    if (s->net && s->revocations_refresh_ms) {
        argv[i++] = "--revocations-refresh-ms";
        argv[i++] = s->revocations_refresh_ms;
    }
    if (discovery) {
        argv[i++] = "--discovery";
        argv[i++] = discovery;
        argv[i++] = "--public-addr";
        argv[i++] = s->addr;
    }
    argv[i] = NULL;
    s->pid = th_start_service(argv, s->http_port, s->log);
    if (s->pid <= 0)
        return false;
    return !discovery || th_md_wait_entry(discovery, &s->kp.pk, 5000);
}
