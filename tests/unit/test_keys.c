/* Unit tests for common/keys.c: key pairs, signatures, hex parsing and key files. */
#include "common/err.h"
#include "common/hex.h"
#include "common/keys.h"
#include "tests/harness/check_main.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[256];

static void keyfile_path(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", tmpdir, name);
}

static void write_file(const char *path, const char *text, size_t len)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(text, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
}

static size_t read_file(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    size_t n;
    ck_assert_ptr_nonnull(f);
    n = fread(buf, 1, cap - 1, f);
    buf[n] = '\0';
    fclose(f);
    return n;
}

static void write_keyfile(const char *path, const char *pk_hex, const char *sk_hex)
{
    char text[512];
    int n = snprintf(text, sizeof(text), "{\"public_key\":\"%s\",\"secret_key\":\"%s\"}", pk_hex,
                     sk_hex);
    write_file(path, text, (size_t)n);
}

static void sk_hex_of(const struct sw_keypair *kp, char out[SW_SK_LEN * 2 + 1])
{
    ck_assert_int_eq(sw_hex_encode(out, SW_SK_LEN * 2 + 1, kp->sk, SW_SK_LEN), SW_OK);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static void setup(void)
{
    ck_assert_int_eq(sw_crypto_init(), SW_OK);
    snprintf(tmpdir, sizeof(tmpdir), "%s/sw-test-keys-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void teardown(void)
{
    nftw(tmpdir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

START_TEST(test_generate_sign_verify)
{
    struct sw_keypair kp, other;
    struct sw_sig sig, tampered;
    static const char msg[] = "hello skywire";
    char bad[sizeof(msg)];

    ck_assert_int_eq(sw_keypair_generate(&kp), SW_OK);
    ck_assert_int_eq(sw_keypair_generate(&other), SW_OK);
    ck_assert(!sw_pk_equal(&kp.pk, &other.pk));

    sw_sign(&kp, msg, sizeof(msg) - 1, &sig);
    ck_assert_int_eq(sw_verify(&kp.pk, msg, sizeof(msg) - 1, &sig), SW_OK);

    /* tampered message: one bit, one byte shorter, one byte longer */
    memcpy(bad, msg, sizeof(msg));
    bad[0] ^= 1;
    ck_assert_int_eq(sw_verify(&kp.pk, bad, sizeof(msg) - 1, &sig), SW_ECRYPTO);
    ck_assert_int_eq(sw_verify(&kp.pk, msg, sizeof(msg) - 2, &sig), SW_ECRYPTO);
    ck_assert_int_eq(sw_verify(&kp.pk, msg, sizeof(msg), &sig), SW_ECRYPTO);

    /* tampered signature: first and last byte */
    tampered = sig;
    tampered.b[0] ^= 0x80;
    ck_assert_int_eq(sw_verify(&kp.pk, msg, sizeof(msg) - 1, &tampered), SW_ECRYPTO);
    tampered = sig;
    tampered.b[SW_SIG_LEN - 1] ^= 0x01;
    ck_assert_int_eq(sw_verify(&kp.pk, msg, sizeof(msg) - 1, &tampered), SW_ECRYPTO);

    /* wrong key */
    ck_assert_int_eq(sw_verify(&other.pk, msg, sizeof(msg) - 1, &sig), SW_ECRYPTO);

    /* empty message works too */
    sw_sign(&kp, "", 0, &sig);
    ck_assert_int_eq(sw_verify(&kp.pk, "", 0, &sig), SW_OK);
    ck_assert_int_eq(sw_verify(&kp.pk, "x", 1, &sig), SW_ECRYPTO);
}
END_TEST

START_TEST(test_wipe)
{
    struct sw_keypair kp;
    static const uint8_t zero[sizeof(kp)];
    ck_assert_int_eq(sw_keypair_generate(&kp), SW_OK);
    sw_keypair_wipe(&kp);
    ck_assert_mem_eq(&kp, zero, sizeof(kp));
}
END_TEST

START_TEST(test_pk_hex_round_trip_and_uppercase)
{
    struct sw_keypair kp;
    struct sw_pk back, upper;
    struct sw_error err = { 0 };
    char hex[SW_PK_HEX_LEN + 1], uhex[SW_PK_HEX_LEN + 1];

    ck_assert_int_eq(sw_keypair_generate(&kp), SW_OK);
    sw_pk_to_hex(&kp.pk, hex);
    ck_assert_uint_eq(strlen(hex), SW_PK_HEX_LEN);
    for (size_t i = 0; i < SW_PK_HEX_LEN; i++) {
        ck_assert(strchr("0123456789abcdef", hex[i]) != NULL);
        uhex[i] = (char)(hex[i] >= 'a' ? hex[i] - 'a' + 'A' : hex[i]);
    }
    uhex[SW_PK_HEX_LEN] = '\0';
    ck_assert_int_eq(sw_pk_from_hex(&back, hex, "k", &err), SW_OK);
    ck_assert(sw_pk_equal(&back, &kp.pk));
    ck_assert_int_eq(sw_pk_from_hex(&upper, uhex, "k", &err), SW_OK);
    ck_assert(sw_pk_equal(&upper, &kp.pk));
}
END_TEST

START_TEST(test_pk_hex_rejects)
{
    struct sw_keypair kp;
    struct sw_pk pk, orig;
    struct sw_error err;
    char hex[SW_PK_HEX_LEN + 2];
    char bad[SW_PK_HEX_LEN + 1];

    ck_assert_int_eq(sw_keypair_generate(&kp), SW_OK);
    sw_pk_to_hex(&kp.pk, hex);
    memset(&pk, 0x5a, sizeof(pk));
    orig = pk;

    /* too short */
    memcpy(bad, hex, SW_PK_HEX_LEN);
    bad[SW_PK_HEX_LEN - 1] = '\0';
    memset(&err, 0, sizeof(err));
    ck_assert_int_eq(sw_pk_from_hex(&pk, bad, "edges[1]", &err), SW_EINVAL);
    ck_assert_int_eq(err.code, SW_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "edges[1]"));
    ck_assert_ptr_nonnull(strstr(err.msg, "64 hex"));
    /* too long */
    hex[SW_PK_HEX_LEN] = '0';
    hex[SW_PK_HEX_LEN + 1] = '\0';
    ck_assert_int_eq(sw_pk_from_hex(&pk, hex, "edges[1]", &err), SW_EINVAL);
    hex[SW_PK_HEX_LEN] = '\0';
    /* empty, NULL */
    ck_assert_int_eq(sw_pk_from_hex(&pk, "", "x", &err), SW_EINVAL);
    ck_assert_int_eq(sw_pk_from_hex(&pk, NULL, "x", &err), SW_EINVAL);
    /* non-hex character */
    memcpy(bad, hex, sizeof(bad));
    bad[10] = 'g';
    ck_assert_int_eq(sw_pk_from_hex(&pk, bad, "SW-Public", &err), SW_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "SW-Public"));
    /* invalid curve points: all-ff (non-canonical) and all-zero (small order) */
    memset(bad, 'f', SW_PK_HEX_LEN);
    bad[SW_PK_HEX_LEN] = '\0';
    ck_assert_int_eq(sw_pk_from_hex(&pk, bad, "edges[0]", &err), SW_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "edges[0]"));
    ck_assert_ptr_nonnull(strstr(err.msg, "not a valid Ed25519"));
    memset(bad, '0', SW_PK_HEX_LEN);
    ck_assert_int_eq(sw_pk_from_hex(&pk, bad, "edges[0]", &err), SW_EINVAL);
    /* the identity point (y = 1) has small order too */
    memcpy(bad, "01", 2);
    ck_assert_int_eq(sw_pk_from_hex(&pk, bad, "edges[0]", &err), SW_EINVAL);
    /* pk untouched by all of the above */
    ck_assert_mem_eq(&pk, &orig, sizeof(pk));
    /* default name and NULL err */
    ck_assert_int_eq(sw_pk_from_hex(&pk, "zz", NULL, &err), SW_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "public key"));
    ck_assert_int_eq(sw_pk_from_hex(&pk, "zz", "x", NULL), SW_EINVAL);
}
END_TEST

START_TEST(test_pk_cmp_equal)
{
    struct sw_pk a, b;
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    ck_assert(sw_pk_equal(&a, &b));
    ck_assert_int_eq(sw_pk_cmp(&a, &b), 0);
    b.b[SW_PK_LEN - 1] = 1;
    ck_assert(!sw_pk_equal(&a, &b));
    ck_assert_int_lt(sw_pk_cmp(&a, &b), 0);
    ck_assert_int_gt(sw_pk_cmp(&b, &a), 0);
    a.b[0] = 0x80; /* memcmp is unsigned: 0x80 > 0x00 */
    ck_assert_int_gt(sw_pk_cmp(&a, &b), 0);
}
END_TEST

START_TEST(test_sig_hex)
{
    struct sw_keypair kp;
    struct sw_sig sig, back, orig;
    struct sw_error err;
    char hex[SW_SIG_HEX_LEN + 1];

    ck_assert_int_eq(sw_keypair_generate(&kp), SW_OK);
    sw_sign(&kp, "m", 1, &sig);
    sw_sig_to_hex(&sig, hex);
    ck_assert_uint_eq(strlen(hex), SW_SIG_HEX_LEN);
    ck_assert_int_eq(sw_sig_from_hex(&back, hex, "sig", &err), SW_OK);
    ck_assert_mem_eq(&back, &sig, sizeof(sig));

    memset(&back, 0x33, sizeof(back));
    orig = back;
    hex[SW_SIG_HEX_LEN - 1] = '\0';
    ck_assert_int_eq(sw_sig_from_hex(&back, hex, "signatures[1]", &err), SW_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "signatures[1]"));
    ck_assert_ptr_nonnull(strstr(err.msg, "128 hex"));
    ck_assert_int_eq(sw_sig_from_hex(&back, NULL, NULL, &err), SW_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "signature"));
    ck_assert_mem_eq(&back, &orig, sizeof(back));
}
END_TEST

START_TEST(test_keyfile_create_mode_and_load)
{
    char path[512];
    struct sw_keypair kp, loaded;
    struct sw_error err = { 0 };
    struct stat st;
    struct sw_sig sig;
    bool created = false;
    mode_t old = umask(0); /* the file must be 0600 because of open()'s mode, not the umask */

    keyfile_path(path, sizeof(path), "key.json");
    ck_assert_int_eq(sw_keyfile_load_or_create(path, &kp, &created, &err), SW_OK);
    umask(old);
    ck_assert(created);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert(S_ISREG(st.st_mode));
    ck_assert_uint_eq(st.st_mode & 07777, 0600);

    ck_assert_int_eq(sw_keyfile_load(path, &loaded, &err), SW_OK);
    ck_assert(sw_pk_equal(&loaded.pk, &kp.pk));
    ck_assert_mem_eq(loaded.sk, kp.sk, SW_SK_LEN);
    /* the loaded key signs for the created key's pk */
    sw_sign(&loaded, "abc", 3, &sig);
    ck_assert_int_eq(sw_verify(&kp.pk, "abc", 3, &sig), SW_OK);
}
END_TEST

START_TEST(test_keyfile_load_or_create_twice_same_key)
{
    char path[512];
    struct sw_keypair a, b;
    struct sw_error err = { 0 };
    bool created = false;

    keyfile_path(path, sizeof(path), "visor.json");
    ck_assert_int_eq(sw_keyfile_load_or_create(path, &a, &created, &err), SW_OK);
    ck_assert(created);
    created = true;
    ck_assert_int_eq(sw_keyfile_load_or_create(path, &b, &created, &err), SW_OK);
    ck_assert(!created);
    ck_assert(sw_pk_equal(&a.pk, &b.pk));
    ck_assert_mem_eq(a.sk, b.sk, SW_SK_LEN);

    /* a file readable by others still loads (only a warning is logged) */
    ck_assert_int_eq(chmod(path, 0644), 0);
    ck_assert_int_eq(sw_keyfile_load_or_create(path, &b, &created, &err), SW_OK);
    ck_assert(!created);
    ck_assert(sw_pk_equal(&a.pk, &b.pk));
}
END_TEST

START_TEST(test_keyfile_save_refuses_overwrite)
{
    char path[512], before[1024], after[1024];
    struct sw_keypair a, b;
    struct sw_error err = { 0 };

    keyfile_path(path, sizeof(path), "k.json");
    ck_assert_int_eq(sw_keypair_generate(&a), SW_OK);
    ck_assert_int_eq(sw_keypair_generate(&b), SW_OK);
    ck_assert_int_eq(sw_keyfile_save(path, &a, &err), SW_OK);
    read_file(path, before, sizeof(before));
    ck_assert_int_eq(sw_keyfile_save(path, &b, &err), SW_EEXIST);
    ck_assert_ptr_nonnull(strstr(err.msg, path));
    read_file(path, after, sizeof(after));
    ck_assert_str_eq(before, after);
}
END_TEST

START_TEST(test_keyfile_missing)
{
    char path[512];
    struct sw_keypair kp;
    struct sw_error err = { 0 };
    bool created = true;

    keyfile_path(path, sizeof(path), "nope.json");
    ck_assert_int_eq(sw_keyfile_load(path, &kp, &err), SW_ENOTFOUND);
    ck_assert_ptr_nonnull(strstr(err.msg, "nope.json"));
    /* a missing directory cannot be created into */
    keyfile_path(path, sizeof(path), "no/such/dir/key.json");
    ck_assert_int_ne(sw_keyfile_load_or_create(path, &kp, &created, &err), SW_OK);
    ck_assert(!created);
}
END_TEST

/* Each malformed file must be rejected with a message naming the path and the problem,
 * and load_or_create must not replace it. */
static void expect_malformed(const char *name, const char *text, size_t len, const char *needle)
{
    char path[512], after[8192];
    struct sw_keypair kp;
    struct sw_error err = { 0 };
    bool created = true;

    keyfile_path(path, sizeof(path), name);
    write_file(path, text, len);
    memset(&err, 0, sizeof(err));
    ck_assert_int_ne(sw_keyfile_load(path, &kp, &err), SW_OK);
    ck_assert_msg(strstr(err.msg, path) != NULL, "%s: message lacks path: %s", name, err.msg);
    ck_assert_msg(strstr(err.msg, needle) != NULL, "%s: message lacks '%s': %s", name, needle,
                  err.msg);
    ck_assert_int_ne(sw_keyfile_load_or_create(path, &kp, &created, &err), SW_OK);
    ck_assert(!created);
    if (len < sizeof(after)) {
        ck_assert_uint_eq(read_file(path, after, sizeof(after)), len);
        ck_assert_mem_eq(after, text, len);
    }
}

START_TEST(test_keyfile_malformed)
{
    struct sw_keypair kp;
    char pk_hex[SW_PK_HEX_LEN + 1], sk_hex[SW_SK_LEN * 2 + 1], text[1024];
    char *big;
    int n;

    ck_assert_int_eq(sw_keypair_generate(&kp), SW_OK);
    sw_pk_to_hex(&kp.pk, pk_hex);
    sk_hex_of(&kp, sk_hex);

    expect_malformed("empty.json", "", 0, "JSON");
    expect_malformed("garbage.json", "not json at all", 15, "JSON");
    expect_malformed("array.json", "[1,2]", 5, "object");
    expect_malformed("trunc.json", "{\"public_key\":\"ab", 17, "JSON");

    n = snprintf(text, sizeof(text), "{\"public_key\":\"%s\"}", pk_hex);
    expect_malformed("nosk.json", text, (size_t)n, "secret_key");
    n = snprintf(text, sizeof(text), "{\"secret_key\":\"%s\"}", sk_hex);
    expect_malformed("nopk.json", text, (size_t)n, "public_key");
    n = snprintf(text, sizeof(text), "{\"public_key\":42,\"secret_key\":\"%s\"}", sk_hex);
    expect_malformed("pktype.json", text, (size_t)n, "public_key");
    n = snprintf(text, sizeof(text), "{\"public_key\":\"%s\",\"secret_key\":\"%.126s\"}", pk_hex,
                 sk_hex);
    expect_malformed("skshort.json", text, (size_t)n, "secret_key");
    n = snprintf(text, sizeof(text), "{\"public_key\":\"%.62szz\",\"secret_key\":\"%s\"}", pk_hex,
                 sk_hex);
    expect_malformed("pkhex.json", text, (size_t)n, "public_key");
    sk_hex[5] = 'q';
    n = snprintf(text, sizeof(text), "{\"public_key\":\"%s\",\"secret_key\":\"%s\"}", pk_hex,
                 sk_hex);
    expect_malformed("skhex.json", text, (size_t)n, "secret_key");

    /* larger than the 4 KiB limit */
    big = malloc(10000);
    ck_assert_ptr_nonnull(big);
    memset(big, ' ', 10000);
    big[0] = '{';
    big[9999] = '}';
    expect_malformed("big.json", big, 10000, "larger");
    free(big);
}
END_TEST

START_TEST(test_keyfile_mismatched_keys)
{
    char path[512], pk_hex[SW_PK_HEX_LEN + 1], sk_hex[SW_SK_LEN * 2 + 1];
    struct sw_keypair a, b, out, forged;
    struct sw_error err = { 0 };

    ck_assert_int_eq(sw_keypair_generate(&a), SW_OK);
    ck_assert_int_eq(sw_keypair_generate(&b), SW_OK);

    /* public key of a, secret key of b */
    keyfile_path(path, sizeof(path), "mix.json");
    sw_pk_to_hex(&a.pk, pk_hex);
    sk_hex_of(&b, sk_hex);
    write_keyfile(path, pk_hex, sk_hex);
    memset(&out, 0x77, sizeof(out));
    ck_assert_int_eq(sw_keyfile_load(path, &out, &err), SW_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "does not match"));
    ck_assert_ptr_nonnull(strstr(err.msg, path));
    ck_assert_uint_eq(out.sk[0], 0x77); /* untouched */

    /* b's seed spliced with a's public key: the pk half of the secret key matches, but the
     * key would sign as b, so every signature would fail to verify under public_key */
    forged = b;
    memcpy(forged.sk + 32, a.pk.b, SW_PK_LEN);
    forged.pk = a.pk;
    keyfile_path(path, sizeof(path), "splice.json");
    sk_hex_of(&forged, sk_hex);
    write_keyfile(path, pk_hex, sk_hex);
    memset(&err, 0, sizeof(err));
    ck_assert_int_eq(sw_keyfile_load(path, &out, &err), SW_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "does not match"));

    /* the matching pair loads */
    keyfile_path(path, sizeof(path), "good.json");
    sk_hex_of(&a, sk_hex);
    write_keyfile(path, pk_hex, sk_hex);
    ck_assert_int_eq(sw_keyfile_load(path, &out, &err), SW_OK);
    ck_assert(sw_pk_equal(&out.pk, &a.pk));
}
END_TEST

static Suite *keys_suite(void)
{
    Suite *s = suite_create("keys");
    TCase *tc = tcase_create("crypto");
    TCase *tf = tcase_create("keyfile");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_generate_sign_verify);
    tcase_add_test(tc, test_wipe);
    tcase_add_test(tc, test_pk_hex_round_trip_and_uppercase);
    tcase_add_test(tc, test_pk_hex_rejects);
    tcase_add_test(tc, test_pk_cmp_equal);
    tcase_add_test(tc, test_sig_hex);
    suite_add_tcase(s, tc);
    tcase_add_checked_fixture(tf, setup, teardown);
    tcase_add_test(tf, test_keyfile_create_mode_and_load);
    tcase_add_test(tf, test_keyfile_load_or_create_twice_same_key);
    tcase_add_test(tf, test_keyfile_save_refuses_overwrite);
    tcase_add_test(tf, test_keyfile_missing);
    tcase_add_test(tf, test_keyfile_malformed);
    tcase_add_test(tf, test_keyfile_mismatched_keys);
    suite_add_tcase(s, tf);
    return s;
}

const struct th_check_main th_check_main = { .suite = keys_suite };
