#include "tests/harness/members.h"

#include "common/clock.h"
#include "common/fs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Usable in setup code too (libcheck's asserts need a running test): a failure aborts. */
#define need(cond, ...)                                                                         \
    do {                                                                                        \
        if (!(cond)) {                                                                          \
            fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                                     \
            fprintf(stderr, __VA_ARGS__);                                                       \
            fprintf(stderr, "\n");                                                              \
            abort();                                                                            \
        }                                                                                       \
    } while (0)

void th_network_init(struct th_network *n)
{
    memset(n, 0, sizeof(*n));
    need(sw_keypair_generate(&n->kp) == SW_OK, "%s", "unexpected error");
    sw_pk_to_hex(&n->kp.pk, n->pk_hex);
}

int th_network_cert_ex(const struct th_network *n, const struct sw_pk *pk, unsigned role, const char *name,
                       const char *groups, int64_t from_s, int64_t ttl_s, const char *path, char *hex,
                       uint8_t *raw, size_t *raw_len)
{
    struct sw_cert c = { 0 };
    struct sw_error err = { 0 };
    int64_t now = sw_unix_ms() / 1000;

    if (from_s == TH_CERT_FROM_AUTO)
        from_s = -60 - (ttl_s < 0 ? -ttl_s : 0);
    c.role = (uint8_t)role;
    c.subject = *pk;
    c.not_before = (uint64_t)(now + from_s);
    c.not_after = (uint64_t)(now + ttl_s);
    if (name)
        snprintf(c.name, sizeof(c.name), "%s", name);
    else
        snprintf(c.name, sizeof(c.name), "test-%s", sw_role_name(role));
    snprintf(c.groups, sizeof(c.groups), "%s", groups ? groups : "");
    if (sw_cert_sign(&c, &n->kp, &err) || (path && sw_cert_save_file(path, &c, &err)))
        goto fail;
    if (hex && sw_cert_to_hex(&c, hex, SW_CERT_HEX_MAX + 1)) {
        snprintf(err.msg, sizeof(err.msg), "hex form");
        goto fail;
    }
    if (raw && sw_cert_encode(&c, raw, SW_CERT_MAX_LEN, raw_len)) {
        snprintf(err.msg, sizeof(err.msg), "binary form");
        goto fail;
    }
    return 0;
fail:
    fprintf(stderr, "members: certificate %s: %s\n", path ? path : c.name, err.msg);
    return -1;
}

void th_network_cert(const struct th_network *n, const struct sw_pk *pk, unsigned role, int64_t ttl_s,
                     char hex[SW_CERT_HEX_MAX + 1], uint8_t *raw, size_t *raw_len)
{
    need(th_network_cert_ex(n, pk, role, NULL, NULL, TH_CERT_FROM_AUTO, ttl_s, NULL, hex, raw, raw_len) == 0,
         "%s", "certificate not made");
}

void th_network_cert_file(const struct th_network *n, const struct sw_pk *pk, unsigned role, int64_t ttl_s,
                          const char *path)
{
    need(th_network_cert_ex(n, pk, role, NULL, NULL, TH_CERT_FROM_AUTO, ttl_s, path, NULL, NULL, NULL) == 0,
         "certificate %s not written", path);
}

int th_network_revoke(struct th_network *n, const struct sw_pk *keys, size_t count, const char *path,
                      char **hex)
{
    struct sw_revlist l = { 0 };
    struct sw_error err = { 0 };
    uint64_t now = (uint64_t)(sw_unix_ms() / 1000);
    char *text = NULL;
    size_t len;
    int rc = -1;

    if (hex)
        *hex = NULL;
    for (size_t i = 0; i < count; i++)
        if (sw_revlist_update(&l, &keys[i], false) != SW_OK) {
            snprintf(err.msg, sizeof(err.msg), "key %zu not added", i);
            goto out;
        }
    n->rev_issued = now > n->rev_issued ? now : n->rev_issued + 1;
    if (sw_revlist_sign(&l, &n->kp, n->rev_issued) || sw_revlist_to_hex(&l, &text)) {
        snprintf(err.msg, sizeof(err.msg), "not signed");
        goto out;
    }
    len = strlen(text);
    if (path) { /* hex and a newline, in place of the NUL */
        text[len] = '\n';
        rc = sw_write_file_atomic(path, text, len + 1, 0644, &err);
        text[len] = '\0';
        if (rc) {
            rc = -1;
            goto out;
        }
    }
    if (hex) {
        *hex = text;
        text = NULL;
    }
    rc = 0;
out:
    if (rc)
        fprintf(stderr, "members: revocation list %s: %s\n", path ? path : "", err.msg);
    free(text);
    sw_revlist_free(&l);
    return rc;
}

void th_network_revoke_file(struct th_network *n, const struct sw_pk *keys, size_t count, const char *path)
{
    need(th_network_revoke(n, keys, count, path, NULL) == 0, "revocation list %s not written", path);
}
