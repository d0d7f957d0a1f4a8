/* auth.c — the SSH server's authorized keys (auth.h). */
#include "apps/ssh/auth.h"

#include "common/err.h"
#include "common/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Trims a line in place: drops a '#' comment and surrounding blanks. */
static char *trim(char *s)
{
    char *e;

    s[strcspn(s, "#")] = '\0';
    while (*s == ' ' || *s == '\t' || *s == '\r')
        s++;
    e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
        *--e = '\0';
    return s;
}

bool ssh_auth_text_has(const char *text, size_t len, const char *path, const struct sw_pk *who)
{
    char line[256];
    size_t off = 0, lineno = 0;
    bool found = false;

    while (off < len && !found) {
        const char *nl = memchr(text + off, '\n', len - off);
        size_t n = nl ? (size_t)(nl - (text + off)) : len - off;
        struct sw_pk pk;
        char *t;

        lineno++;
        if (n < sizeof(line)) {
            memcpy(line, text + off, n);
            line[n] = '\0';
        } else {
            snprintf(line, sizeof(line), "(line too long)");
        }
        off += n + 1;
        t = trim(line);
        if (*t == '\0')
            continue;
        if (strlen(t) != SW_PK_HEX_LEN || sw_pk_from_hex(&pk, t, "key", NULL)) {
            sw_log_warn("%s line %zu: not a public key (64 hex digits), skipped", path, lineno);
            continue;
        }
        found = sw_pk_equal(&pk, who);
    }
    return found;
}

/* Reads the whole file (bounded). SW_ENOTFOUND when it does not exist. */
static int read_file(const char *path, char **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t n;
    int rc = SW_EIO;

    if (!f)
        return errno == ENOENT ? SW_ENOTFOUND : SW_EIO;
    if (!(buf = malloc(SSH_AUTH_FILE_MAX + 1)))
        goto out;
    n = fread(buf, 1, SSH_AUTH_FILE_MAX + 1, f);
    if (ferror(f) || n > SSH_AUTH_FILE_MAX) {
        rc = n > SSH_AUTH_FILE_MAX ? SW_ERANGE : SW_EIO;
        goto out;
    }
    *out = buf;
    *len = n;
    buf = NULL;
    rc = SW_OK;
out:
    free(buf);
    fclose(f);
    return rc;
}

bool ssh_auth_allowed(const char *path, const struct sw_pk *allow, size_t n_allow,
                      const struct sw_pk *who)
{
    char *text = NULL;
    size_t len = 0;
    bool ok = false;
    int rc;

    for (size_t i = 0; i < n_allow; i++)
        if (sw_pk_equal(&allow[i], who))
            return true;
    if (!path)
        return false;
    rc = read_file(path, &text, &len);
    if (rc == SW_OK)
        ok = ssh_auth_text_has(text, len, path, who);
    else if (rc != SW_ENOTFOUND)
        sw_log_warn("authorized keys %s: %s (nobody from it is authorized)", path,
                    rc == SW_ERANGE ? "larger than 1 MiB" : "cannot be read");
    free(text);
    return ok;
}
