#include "common/keys.h"
#include "common/hex.h"
#include "common/json.h"
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KEYFILE_MAX 4096

int sw_crypto_init(void) { return sodium_init() < 0 ? SW_ECRYPTO : SW_OK; }

int sw_keypair_generate(struct sw_keypair *kp)
{
    return crypto_sign_keypair(kp->pk.b, kp->sk) == 0 ? SW_OK : SW_ECRYPTO;
}

void sw_keypair_wipe(struct sw_keypair *kp) { sodium_memzero(kp, sizeof(*kp)); }

int sw_pk_from_hex(struct sw_pk *pk, const char *hex, const char *what, struct sw_error *err)
{
    struct sw_pk tmp;
    const char *name = what ? what : "public key";
    if (!hex || sw_hex_decode(tmp.b, SW_PK_LEN, hex, strlen(hex)) != SW_OK)
        return sw_error_set(err, SW_EINVAL, "%s: a public key must be %d hex characters",
                            name, SW_PK_HEX_LEN);
    if (!crypto_core_ed25519_is_valid_point(tmp.b))
        return sw_error_set(err, SW_EINVAL, "%s: not a valid Ed25519 public key", name);
    *pk = tmp;
    return SW_OK;
}

void sw_pk_to_hex(const struct sw_pk *pk, char out[SW_PK_HEX_LEN + 1])
{
    sw_hex_encode(out, SW_PK_HEX_LEN + 1, pk->b, SW_PK_LEN);
}

bool sw_pk_equal(const struct sw_pk *a, const struct sw_pk *b)
{
    return memcmp(a->b, b->b, SW_PK_LEN) == 0;
}

int sw_pk_cmp(const struct sw_pk *a, const struct sw_pk *b) { return memcmp(a->b, b->b, SW_PK_LEN); }

int sw_sig_from_hex(struct sw_sig *sig, const char *hex, const char *what, struct sw_error *err)
{
    if (!hex || sw_hex_decode(sig->b, SW_SIG_LEN, hex, strlen(hex)) != SW_OK)
        return sw_error_set(err, SW_EINVAL, "%s: a signature must be %d hex characters",
                            what ? what : "signature", SW_SIG_HEX_LEN);
    return SW_OK;
}

void sw_sig_to_hex(const struct sw_sig *sig, char out[SW_SIG_HEX_LEN + 1])
{
    sw_hex_encode(out, SW_SIG_HEX_LEN + 1, sig->b, SW_SIG_LEN);
}

void sw_sign(const struct sw_keypair *kp, const void *msg, size_t len, struct sw_sig *sig)
{
    crypto_sign_detached(sig->b, NULL, msg, len, kp->sk);
}

int sw_verify(const struct sw_pk *pk, const void *msg, size_t len, const struct sw_sig *sig)
{
    return crypto_sign_verify_detached(sig->b, msg, len, pk->b) == 0 ? SW_OK : SW_ECRYPTO;
}

static int read_small_file(const char *path, char *buf, size_t cap, size_t *len,
                           struct sw_error *err)
{
    ssize_t n;
    size_t got = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return sw_error_set(err, errno == ENOENT ? SW_ENOTFOUND : SW_EIO, "%s: %s", path,
                            strerror(errno));
    while ((n = read(fd, buf + got, cap - got)) > 0)
        got += (size_t)n;
    close(fd);
    if (n < 0)
        return sw_error_set(err, SW_EIO, "%s: %s", path, strerror(errno));
    if (got == cap)
        return sw_error_set(err, SW_ERANGE, "%s: file larger than %zu bytes", path, cap - 1);
    buf[got] = '\0';
    *len = got;
    return SW_OK;
}

int sw_keyfile_load(const char *path, struct sw_keypair *kp, struct sw_error *err)
{
    char buf[KEYFILE_MAX];
    size_t len = 0;
    struct json_object *root = NULL;
    const char *pk_hex, *sk_hex;
    struct sw_keypair tmp;
    uint8_t derived[SW_PK_LEN], seed[crypto_sign_SEEDBYTES], full_sk[SW_SK_LEN];
    struct sw_error jerr;
    int rc = read_small_file(path, buf, sizeof(buf), &len, err);
    if (rc)
        return rc;
    rc = sw_json_parse(buf, len, &root, &jerr);
    if (rc) {
        sw_error_set(err, rc, "%s: %s", path, jerr.msg);
        goto out;
    }
    if ((rc = sw_json_get_string(root, "public_key", "", 256, &pk_hex, &jerr)) ||
        (rc = sw_json_get_string(root, "secret_key", "", 256, &sk_hex, &jerr)) ||
        (rc = sw_pk_from_hex(&tmp.pk, pk_hex, "public_key", &jerr))) {
        sw_error_set(err, rc, "%s: %s", path, jerr.msg);
        goto out;
    }
    if (sw_hex_decode(tmp.sk, SW_SK_LEN, sk_hex, strlen(sk_hex)) != SW_OK) {
        rc = sw_error_set(err, SW_EINVAL, "%s: field 'secret_key' must be %d hex characters",
                          path, SW_SK_LEN * 2);
        goto out;
    }
    /* the secret key is seed || pk: derive the key pair from the seed so that a file whose
     * seed does not belong to public_key is rejected too, not only a mismatched copy */
    crypto_sign_ed25519_sk_to_seed(seed, tmp.sk);
    crypto_sign_seed_keypair(derived, full_sk, seed);
    if (memcmp(derived, tmp.pk.b, SW_PK_LEN) != 0 || sodium_memcmp(full_sk, tmp.sk, SW_SK_LEN) != 0) {
        rc = sw_error_set(err, SW_EINVAL, "%s: public_key does not match secret_key", path);
        goto out;
    }
    *kp = tmp;
    rc = SW_OK;
out:
    sodium_memzero(buf, sizeof(buf));
    sodium_memzero(&tmp, sizeof(tmp));
    sodium_memzero(seed, sizeof(seed));
    sodium_memzero(full_sk, sizeof(full_sk));
    json_object_put(root);
    return rc;
}

int sw_keyfile_save(const char *path, const struct sw_keypair *kp, struct sw_error *err)
{
    char pk_hex[SW_PK_HEX_LEN + 1], sk_hex[SW_SK_LEN * 2 + 1], buf[512];
    int n, fd, rc = SW_OK;
    sw_pk_to_hex(&kp->pk, pk_hex);
    sw_hex_encode(sk_hex, sizeof(sk_hex), kp->sk, SW_SK_LEN);
    n = snprintf(buf, sizeof(buf), "{\n  \"public_key\": \"%s\",\n  \"secret_key\": \"%s\"\n}\n",
                 pk_hex, sk_hex);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = sw_error_set(err, errno == EEXIST ? SW_EEXIST : SW_EIO, "%s: %s", path,
                          strerror(errno));
        goto out;
    }
    if (write(fd, buf, (size_t)n) != n || fsync(fd) != 0) {
        rc = sw_error_set(err, SW_EIO, "%s: write failed: %s", path, strerror(errno));
        close(fd);
        unlink(path);
        goto out;
    }
    close(fd);
out:
    sodium_memzero(sk_hex, sizeof(sk_hex));
    sodium_memzero(buf, sizeof(buf));
    return rc;
}

int sw_keyfile_load_or_create(const char *path, struct sw_keypair *kp, bool *created,
                              struct sw_error *err)
{
    struct stat st;
    int rc;
    *created = false;
    if (stat(path, &st) == 0) {
        rc = sw_keyfile_load(path, kp, err);
        if (rc == SW_OK && (st.st_mode & 077))
            sw_log_warn("key file %s is readable by others (mode %03o); chmod 600 it",
                    path, (unsigned)(st.st_mode & 0777));
        return rc;
    }
    if (errno != ENOENT)
        return sw_error_set(err, SW_EIO, "%s: %s", path, strerror(errno));
    if ((rc = sw_keypair_generate(kp)))
        return sw_error_set(err, rc, "key generation failed");
    rc = sw_keyfile_save(path, kp, err);
    if (rc == SW_EEXIST) /* raced with another process creating it: use theirs */
        return sw_keyfile_load(path, kp, err);
    if (rc == SW_OK)
        *created = true;
    return rc;
}
