/* fuzz_local_files.c — the files a program trusts for who is who (docs/wire-formats.md "Local
 * files"): key files (sw_keyfile_load, common/keys.c), the visor's API token file
 * (visor_api_token_read, visor/config.c) and the SSH server's authorized keys
 * (apps/ssh/auth.c). Byte 0 picks which (byte % 4: 0 key file, 1 token file as the visor
 * reads it, private only, 2 token file as skywire-cli reads it, 3 authorized keys); the rest
 * is written as the file (mode 0600, in a private temporary directory) and read back.
 *   - key file: a loaded key pair is whole (its secret key's seed gives its public key) and
 *     was written only on success; a refusal names the file and never quotes the secret key;
 *   - token: an accepted token is 64 lowercase hex characters and the file held exactly it,
 *     perhaps with one newline; a refusal is SW_EINVAL (the file itself is private and ours),
 *     names the file and never quotes its content;
 *   - authorized keys: a key is let in only when the text holds its hex, always once a line
 *     of it is added, and the file is read as its text.
 * Any disagreement traps. */
#include "common/err.h"
#include "apps/ssh/auth.h"
#include "common/keys.h"
#include "common/log.h"
#include "visor/config.h"
#include "tests/fuzz/fuzz.h"

#include <fcntl.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static char g_dir[64], g_path[96];
static struct sw_pk g_who; /* the key the authorized-keys mode asks about */

static void remove_dir(void)
{
    unlink(g_path);
    rmdir(g_dir);
}

static void setup(void)
{
    const char *tmp = getenv("TMPDIR");

    uint8_t seed[crypto_sign_SEEDBYTES], sk[SW_SK_LEN];

    if (sw_crypto_init() != SW_OK)
        abort();
    sw_log_set_level(SW_LOG_ERROR); /* a skipped authorized-keys line is a warning */
    memset(seed, 3, sizeof(seed));
    crypto_sign_seed_keypair(g_who.b, sk, seed);
    snprintf(g_dir, sizeof(g_dir), "%s/fuzz_local_files.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(g_dir))
        abort();
    snprintf(g_path, sizeof(g_path), "%s/f", g_dir);
    atexit(remove_dir);
}

static void write_file(const uint8_t *d, size_t n)
{
    int fd = open(g_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

    CHECK(fd >= 0);
    CHECK(n == 0 || write(fd, d, n) == (ssize_t)n);
    close(fd);
}

static bool err_ok(const struct sw_error *err, int rc)
{
    return err->code == rc && memchr(err->msg, '\0', sizeof(err->msg)) != NULL && err->msg[0] != '\0';
}

/* The longest run of hex digits in d (at least 16 long, else 0), as a string in out. */
static size_t hex_run(const uint8_t *d, size_t n, char *out, size_t cap)
{
    size_t best = 0, at = 0, run = 0;

    for (size_t i = 0; i <= n; i++) {
        if (i < n && strchr("0123456789abcdefABCDEF", d[i]) && d[i]) {
            run++;
            continue;
        }
        if (run > best) {
            best = run;
            at = i - run;
        }
        run = 0;
    }
    if (best < 16)
        return 0;
    best = best < cap - 1 ? best : cap - 1;
    memcpy(out, d + at, best);
    out[best] = '\0';
    return best;
}

static void fuzz_keyfile(const uint8_t *d, size_t n)
{
    struct sw_keypair kp, before;
    struct sw_error err = { 0 };
    uint8_t seed[crypto_sign_SEEDBYTES], pk[SW_PK_LEN], sk[SW_SK_LEN];
    char run[256];
    int rc;

    memset(&kp, 0x5a, sizeof(kp));
    before = kp;
    rc = sw_keyfile_load(g_path, &kp, &err);
    if (rc != SW_OK) {
        CHECK(err_ok(&err, rc) && strstr(err.msg, g_path) != NULL);
        CHECK(memcmp(&kp, &before, sizeof(kp)) == 0);
        if (hex_run(d, n, run, sizeof(run)))
            CHECK(strstr(err.msg, run) == NULL); /* no hex run of the file, the secret above all */
        return;
    }
    crypto_sign_ed25519_sk_to_seed(seed, kp.sk);
    crypto_sign_seed_keypair(pk, sk, seed);
    CHECK(memcmp(pk, kp.pk.b, SW_PK_LEN) == 0 && memcmp(sk, kp.sk, SW_SK_LEN) == 0);
    sodium_memzero(seed, sizeof(seed));
    sodium_memzero(sk, sizeof(sk));
    sw_keypair_wipe(&kp);
}

static void fuzz_token(const uint8_t *d, size_t n, bool private_only)
{
    char out[VISOR_API_TOKEN_HEX + 1], run[256];
    struct sw_error err = { 0 };
    int rc;

    memset(out, 'Z', sizeof(out));
    rc = visor_api_token_read(g_path, private_only, out, &err);
    if (rc != SW_OK) {
        CHECK(rc == SW_EINVAL && err_ok(&err, rc) && strstr(err.msg, g_path) != NULL);
        CHECK(out[0] == 'Z'); /* written only on success */
        if (hex_run(d, n, run, sizeof(run)))
            CHECK(strstr(err.msg, run) == NULL);
        return;
    }
    CHECK(strlen(out) == VISOR_API_TOKEN_HEX);
    CHECK(strspn(out, "0123456789abcdef") == VISOR_API_TOKEN_HEX);
    CHECK(n == VISOR_API_TOKEN_HEX || (n == VISOR_API_TOKEN_HEX + 1 && d[n - 1] == '\n'));
    CHECK(memcmp(out, d, VISOR_API_TOKEN_HEX) == 0);
    sodium_memzero(out, sizeof(out));
}

static void fuzz_authorized_keys(const uint8_t *d, size_t n)
{
    char hex[SW_PK_HEX_LEN + 1], *text = malloc(n + 1 + SW_PK_HEX_LEN);
    bool has = ssh_auth_text_has((const char *)d, n, "fuzz", &g_who);

    CHECK(text != NULL);
    sw_pk_to_hex(&g_who, hex);
    if (n <= SSH_AUTH_FILE_MAX) /* the file, read, is the text */
        CHECK(ssh_auth_allowed(g_path, NULL, 0, &g_who) == has);
    if (has) { /* only a line holding the key's hex lets it in */
        bool found = false;
        for (size_t i = 0; i + SW_PK_HEX_LEN <= n && !found; i++)
            found = strncasecmp((const char *)d + i, hex, SW_PK_HEX_LEN) == 0;
        CHECK(found);
    }
    if (n)
        memcpy(text, d, n);
    text[n] = '\n';
    memcpy(text + n + 1, hex, SW_PK_HEX_LEN);
    CHECK(ssh_auth_text_has(text, n + 1 + SW_PK_HEX_LEN, "fuzz", &g_who));
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool init;

    if (!init) {
        setup();
        init = true;
    }
    if (size == 0)
        return 0;
    write_file(data + 1, size - 1);
    switch (data[0] % 4) {
    case 0: fuzz_keyfile(data + 1, size - 1); break;
    case 1: fuzz_token(data + 1, size - 1, true); break;
    case 2: fuzz_token(data + 1, size - 1, false); break;
    default: fuzz_authorized_keys(data + 1, size - 1); break;
    }
    return 0;
}
