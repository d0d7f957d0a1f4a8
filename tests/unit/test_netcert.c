/* Unit tests for common/netcert.c and common/network.c: certificates round-trip and verify;
 * flipped bits, another network, a future not_before, an expired one, another key, a wrong
 * role, truncation, trailing bytes and bad spelling are refused with a reason; revocation
 * lists sort, verify, refuse stale or foreign lists and revoke through the policy; the policy
 * reads its own certificate and revocation file; an open network admits everything. */
#include "common/clock.h"
#include "common/err.h"
#include "common/fs.h"
#include "common/hex.h"
#include "common/netcert.h"
#include "common/network.h"
#include "tests/harness/check_main.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static struct sw_keypair net_kp, other_net, member;

static uint64_t now_s(void) { return (uint64_t)(sw_unix_ms() / 1000); }

static void setup(void)
{
    ck_assert_int_eq(sw_crypto_init(), SW_OK);
    ck_assert_int_eq(sw_keypair_generate(&net_kp), SW_OK);
    ck_assert_int_eq(sw_keypair_generate(&other_net), SW_OK);
    ck_assert_int_eq(sw_keypair_generate(&member), SW_OK);
}

static struct sw_cert make_cert(const struct sw_keypair *signer, const struct sw_pk *subject,
                                unsigned role, int64_t from_rel, int64_t to_rel)
{
    struct sw_cert c = { 0 };
    struct sw_error err = { 0 };
    c.role = (uint8_t)role;
    c.subject = *subject;
    c.not_before = (uint64_t)((int64_t)now_s() + from_rel);
    c.not_after = (uint64_t)((int64_t)now_s() + to_rel);
    snprintf(c.name, sizeof(c.name), "node-1.lab");
    snprintf(c.groups, sizeof(c.groups), "ops,eu_west");
    ck_assert_msg(sw_cert_sign(&c, signer, &err) == SW_OK, "%s", err.msg);
    return c;
}

static size_t encode(const struct sw_cert *c, uint8_t *raw)
{
    size_t n = 0;
    ck_assert_int_eq(sw_cert_encode(c, raw, SW_CERT_MAX_LEN, &n), SW_OK);
    return n;
}

START_TEST(test_cert_round_trip)
{
    struct sw_cert c = make_cert(&net_kp, &member.pk, SW_ROLE_VISOR, -10, 3600), back;
    uint8_t raw[SW_CERT_MAX_LEN], raw2[SW_CERT_MAX_LEN];
    char hex[SW_CERT_HEX_MAX + 1];
    size_t n = encode(&c, raw), n2 = 0;
    struct sw_error err = { 0 };

    ck_assert_uint_eq(n, SW_CERT_MIN_LEN + strlen("node-1.lab") + strlen("ops,eu_west"));
    ck_assert_int_eq(sw_cert_parse(raw, n, &back, &err), SW_OK);
    ck_assert(memcmp(&back.subject, &member.pk, SW_PK_LEN) == 0);
    ck_assert_str_eq(back.name, "node-1.lab");
    ck_assert_str_eq(back.groups, "ops,eu_west");
    ck_assert_int_eq(sw_cert_verify(&back, &net_kp.pk, now_s(), &err), SW_OK);
    ck_assert_int_eq(sw_cert_to_hex(&c, hex, sizeof(hex)), SW_OK);
    ck_assert_int_eq(sw_cert_from_hex(hex, strlen(hex), &back, raw2, sizeof(raw2), &n2, &err), SW_OK);
    ck_assert_uint_eq(n2, n);
    ck_assert(memcmp(raw, raw2, n) == 0);
}
END_TEST

START_TEST(test_cert_every_flipped_bit_refused)
{
    struct sw_cert c = make_cert(&net_kp, &member.pk, SW_ROLE_VISOR, -10, 3600), back;
    uint8_t raw[SW_CERT_MAX_LEN];
    size_t n = encode(&c, raw);

    for (size_t i = 0; i < n * 8; i++) {
        struct sw_error err = { 0 };
        raw[i / 8] ^= (uint8_t)(1u << (i % 8));
        int rc = sw_cert_parse(raw, n, &back, &err);
        if (rc == SW_OK)
            rc = sw_cert_verify(&back, &net_kp.pk, now_s(), &err);
        ck_assert_msg(rc != SW_OK, "bit %zu flipped still verifies", i);
        ck_assert(err.msg[0]);
        raw[i / 8] ^= (uint8_t)(1u << (i % 8));
    }
}
END_TEST

START_TEST(test_cert_refusals)
{
    struct sw_error err = { 0 };
    struct sw_cert c, back;
    uint8_t raw[SW_CERT_MAX_LEN + 8];
    size_t n;

    c = make_cert(&other_net, &member.pk, SW_ROLE_VISOR, -10, 3600); /* another network */
    ck_assert_int_eq(sw_cert_verify(&c, &net_kp.pk, now_s(), &err), SW_ECRYPTO);
    ck_assert_ptr_nonnull(strstr(err.msg, "another network"));

    c = make_cert(&net_kp, &member.pk, SW_ROLE_VISOR, 3600, 7200); /* future not_before */
    ck_assert_int_eq(sw_cert_verify(&c, &net_kp.pk, now_s(), &err), SW_EPERM);
    ck_assert_ptr_nonnull(strstr(err.msg, "not valid before"));
    c = make_cert(&net_kp, &member.pk, SW_ROLE_VISOR, 60, 7200); /* within the clock skew */
    ck_assert_int_eq(sw_cert_verify(&c, &net_kp.pk, now_s(), &err), SW_OK);

    c = make_cert(&net_kp, &member.pk, SW_ROLE_VISOR, -7200, -1); /* expired */
    ck_assert_int_eq(sw_cert_verify(&c, &net_kp.pk, now_s(), &err), SW_EPERM);
    ck_assert_ptr_nonnull(strstr(err.msg, "expired"));

    c = make_cert(&net_kp, &member.pk, SW_ROLE_VISOR, -10, 3600);
    n = encode(&c, raw);
    ck_assert_int_eq(sw_cert_parse(raw, n - 1, &back, &err), SW_EINVAL); /* truncated */
    raw[n] = 0;
    ck_assert_int_eq(sw_cert_parse(raw, n + 1, &back, &err), SW_EINVAL); /* trailing */
    ck_assert_ptr_nonnull(strstr(err.msg, "trailing"));
    raw[0] = 2;
    ck_assert_int_eq(sw_cert_parse(raw, n, &back, &err), SW_EINVAL); /* version */
    ck_assert_ptr_nonnull(strstr(err.msg, "version"));
    raw[0] = 1;
    raw[1] = 9;
    ck_assert_int_eq(sw_cert_parse(raw, n, &back, &err), SW_EINVAL); /* role */
    raw[1] = SW_ROLE_VISOR;
    raw[82] = 200; /* name length past the limit */
    ck_assert_int_eq(sw_cert_parse(raw, n, &back, &err), SW_EINVAL);
    ck_assert_int_eq(sw_cert_parse(raw, 3, &back, &err), SW_EINVAL);
    ck_assert_int_eq(sw_cert_parse(NULL, 0, &back, &err), SW_EINVAL);
    ck_assert_int_eq(sw_cert_from_hex("zz", 2, &back, NULL, 0, NULL, &err), SW_EINVAL);

    /* spelling: what sign refuses */
    struct sw_cert bad = make_cert(&net_kp, &member.pk, SW_ROLE_VISOR, -10, 3600);
    snprintf(bad.name, sizeof(bad.name), "a b");
    ck_assert_int_eq(sw_cert_sign(&bad, &net_kp, &err), SW_EINVAL);
    bad = make_cert(&net_kp, &member.pk, SW_ROLE_VISOR, -10, 3600);
    snprintf(bad.groups, sizeof(bad.groups), "ops,,x");
    ck_assert_int_eq(sw_cert_sign(&bad, &net_kp, &err), SW_EINVAL);
    snprintf(bad.groups, sizeof(bad.groups), "Ops");
    ck_assert_int_eq(sw_cert_sign(&bad, &net_kp, &err), SW_EINVAL);
    snprintf(bad.groups, sizeof(bad.groups), "ops,");
    ck_assert_int_eq(sw_cert_sign(&bad, &net_kp, &err), SW_EINVAL);
    snprintf(bad.groups, sizeof(bad.groups), "%s", "");
    bad.not_after = bad.not_before;
    ck_assert_int_eq(sw_cert_sign(&bad, &net_kp, &err), SW_EINVAL);
}
END_TEST

START_TEST(test_roles)
{
    unsigned r = 0;
    char d[96];
    ck_assert_int_eq(sw_role_parse("messaging-server", &r, NULL), SW_OK);
    ck_assert_uint_eq(r, SW_ROLE_MESSAGING_SERVER);
    ck_assert_int_eq(sw_role_parse("admin", &r, NULL), SW_EINVAL);
    ck_assert_str_eq(sw_role_name(99), "unknown");
    sw_roles_describe(SW_ROLE_BIT(SW_ROLE_VISOR) | SW_ROLE_BIT(SW_ROLE_SETUP_NODE) |
                      SW_ROLE_BIT(SW_ROLE_SERVICE), d, sizeof(d));
    ck_assert_str_eq(d, "visor, setup-node or service");
}
END_TEST

START_TEST(test_revlist)
{
    struct sw_revlist l = { 0 }, back = { 0 };
    struct sw_keypair k[3];
    struct sw_error err = { 0 };
    uint8_t *raw;
    size_t n;

    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(sw_keypair_generate(&k[i]), SW_OK);
        ck_assert_int_eq(sw_revlist_update(&l, &k[i].pk, false), SW_OK);
    }
    ck_assert_int_eq(sw_revlist_update(&l, &k[1].pk, false), SW_EEXIST);
    ck_assert_int_eq(sw_revlist_sign(&l, &net_kp, 100), SW_OK);
    ck_assert_int_eq(sw_revlist_encode(&l, &raw, &n), SW_OK);
    ck_assert_int_eq(sw_revlist_parse(raw, n, &back, &err), SW_OK);
    ck_assert_uint_eq(back.count, 3);
    ck_assert_int_eq(sw_revlist_verify(&back, &net_kp.pk, &err), SW_OK);
    ck_assert(sw_revlist_contains(&back, &k[2].pk));
    ck_assert(!sw_revlist_contains(&back, &member.pk));
    ck_assert_int_eq(sw_revlist_verify(&back, &other_net.pk, &err), SW_ECRYPTO);
    sw_revlist_free(&back);

    raw[n - 1] ^= 1; /* signature */
    ck_assert_int_eq(sw_revlist_parse(raw, n, &back, &err), SW_OK);
    ck_assert_int_eq(sw_revlist_verify(&back, &net_kp.pk, &err), SW_ECRYPTO);
    sw_revlist_free(&back);
    raw[n - 1] ^= 1;
    ck_assert_int_eq(sw_revlist_parse(raw, n - 1, &back, &err), SW_EINVAL);
    memcpy(raw + 45, raw + 45 + 32, 32); /* key 0 == key 1: unsorted */
    ck_assert_int_eq(sw_revlist_parse(raw, n, &back, &err), SW_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "sorted"));
    free(raw);

    ck_assert_int_eq(sw_revlist_update(&l, &k[0].pk, true), SW_OK);
    ck_assert_int_eq(sw_revlist_update(&l, &k[0].pk, true), SW_ENOTFOUND);
    ck_assert_int_eq(sw_revlist_sign(&l, &net_kp, 50), SW_OK); /* never goes back */
    ck_assert_uint_eq(l.issued_at, 101);
    sw_revlist_free(&l);
}
END_TEST

static char tmpdir[64];

static void write_cert_file(const char *name, const struct sw_cert *c, char *path, size_t cap)
{
    snprintf(path, cap, "%s/%s", tmpdir, name);
    ck_assert_int_eq(sw_cert_save_file(path, c, NULL), SW_OK);
}

START_TEST(test_policy)
{
    struct sw_network *net = NULL, *open = NULL;
    struct sw_error err = { 0 };
    char nk[SW_PK_HEX_LEN + 1], own_path[128], rev_path[160];
    struct sw_keypair self, peer;
    struct sw_cert own, pc, got;
    uint8_t raw[SW_CERT_MAX_LEN];
    size_t n;

    snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_netcert.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    ck_assert_int_eq(sw_keypair_generate(&self), SW_OK);
    ck_assert_int_eq(sw_keypair_generate(&peer), SW_OK);
    sw_pk_to_hex(&net_kp.pk, nk);

    /* open network: NULL policy, every check passes */
    struct sw_network_opts oo = { .network_pk = "" };
    ck_assert_int_eq(sw_network_open(&open, &oo, &err), SW_OK);
    ck_assert_ptr_null(open);
    ck_assert_int_eq(sw_network_admit(NULL, &peer.pk, NULL, 0, SW_ROLE_BIT(SW_ROLE_VISOR), &got, &err), SW_OK);

    /* own certificate: missing, another key, wrong role, then good */
    struct sw_network_opts o = { .network_pk = nk, .self = &self.pk, .self_roles = SW_ROLE_BIT(SW_ROLE_VISOR) };
    ck_assert_int_eq(sw_network_open(&net, &o, &err), SW_EINVAL);
    pc = make_cert(&net_kp, &peer.pk, SW_ROLE_VISOR, -10, 3600);
    write_cert_file("other.cert", &pc, own_path, sizeof(own_path));
    o.cert_file = own_path;
    ck_assert_int_eq(sw_network_open(&net, &o, &err), SW_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "another key"));
    own = make_cert(&net_kp, &self.pk, SW_ROLE_SETUP_NODE, -10, 3600);
    write_cert_file("self.cert", &own, own_path, sizeof(own_path));
    ck_assert_int_eq(sw_network_open(&net, &o, &err), SW_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "role setup-node"));
    own = make_cert(&net_kp, &self.pk, SW_ROLE_VISOR, -10, 3600);
    write_cert_file("self.cert", &own, own_path, sizeof(own_path));
    snprintf(rev_path, sizeof(rev_path), "%s/revoked.hex", tmpdir);
    o.revocations = rev_path; /* missing file: nothing revoked yet */
    o.refresh_ms = 50;
    ck_assert_msg(sw_network_open(&net, &o, &err) == SW_OK, "%s", err.msg);
    ck_assert(sw_network_is_private(net));
    ck_assert_int_eq(strlen(sw_network_own_cert_hex(net)), 2 * (SW_CERT_MIN_LEN + 21));

    /* admission */
    n = encode(&pc, raw);
    ck_assert_int_eq(sw_network_admit(net, &peer.pk, raw, n, SW_ROLE_BIT(SW_ROLE_VISOR), &got, &err), SW_OK);
    ck_assert_str_eq(got.name, "node-1.lab");
    ck_assert_int_eq(sw_network_admit(net, &peer.pk, NULL, 0, 0, NULL, &err), SW_EPERM);
    ck_assert_ptr_nonnull(strstr(err.msg, "no certificate"));
    ck_assert_int_eq(sw_network_admit(net, &self.pk, raw, n, 0, NULL, &err), SW_EPERM);
    ck_assert_ptr_nonnull(strstr(err.msg, "another key"));
    ck_assert_int_eq(sw_network_admit(net, &peer.pk, raw, n, SW_ROLE_BIT(SW_ROLE_MESSAGING_SERVER), NULL, &err), SW_EPERM);
    ck_assert_ptr_nonnull(strstr(err.msg, "expected messaging-server"));
    ck_assert_int_eq(sw_network_admit_hex(net, &peer.pk, "abc", 0, NULL, &err), SW_EPERM);

    /* revocation through the file source */
    struct sw_revlist l = { 0 };
    char *hex;
    ck_assert_int_eq(sw_revlist_update(&l, &peer.pk, false), SW_OK);
    ck_assert_int_eq(sw_revlist_sign(&l, &net_kp, now_s()), SW_OK);
    ck_assert_int_eq(sw_revlist_to_hex(&l, &hex), SW_OK);
    ck_assert_int_eq(sw_write_file_atomic(rev_path, hex, strlen(hex), 0644, &err), SW_OK);
    int64_t deadline = sw_deadline_ms(5000);
    while (!sw_network_revoked(net, &peer.pk) && sw_ms_left(deadline) > 0)
        usleep(10000);
    ck_assert(sw_network_revoked(net, &peer.pk));
    ck_assert_uint_ge(sw_network_generation(net), 1);
    ck_assert_int_eq(sw_network_admit(net, &peer.pk, raw, n, 0, NULL, &err), SW_EPERM);
    ck_assert_ptr_nonnull(strstr(err.msg, "revoked"));
    ck_assert_int_eq(sw_network_recheck(net, &pc, &err), SW_EPERM);

    /* an older or foreign list is not taken */
    uint8_t *enc;
    size_t enc_len;
    l.issued_at -= 10;
    ck_assert_int_eq(sw_revlist_update(&l, &peer.pk, true), SW_OK);
    ck_assert_int_eq(sw_revlist_sign(&l, &net_kp, l.issued_at + 1), SW_OK);
    ck_assert_int_eq(sw_revlist_encode(&l, &enc, &enc_len), SW_OK);
    ck_assert_int_eq(sw_network_offer_revocations(net, enc, enc_len, &err), SW_ECONFLICT);
    free(enc);
    ck_assert_int_eq(sw_revlist_sign(&l, &other_net, now_s() + 100), SW_OK);
    ck_assert_int_eq(sw_revlist_encode(&l, &enc, &enc_len), SW_OK);
    ck_assert_int_eq(sw_network_offer_revocations(net, enc, enc_len, &err), SW_ECRYPTO);
    free(enc);
    ck_assert(sw_network_revoked(net, &peer.pk));
    /* un-revoking is a newer list without the key */
    ck_assert_int_eq(sw_revlist_sign(&l, &net_kp, now_s() + 100), SW_OK);
    ck_assert_int_eq(sw_revlist_encode(&l, &enc, &enc_len), SW_OK);
    ck_assert_int_eq(sw_network_offer_revocations(net, enc, enc_len, &err), SW_OK);
    free(enc);
    ck_assert(!sw_network_revoked(net, &peer.pk));

    free(hex);
    sw_revlist_free(&l);
    sw_network_close(net);
    unlink(rev_path);
    snprintf(rev_path, sizeof(rev_path), "%s/self.cert", tmpdir);
    unlink(rev_path);
    snprintf(rev_path, sizeof(rev_path), "%s/other.cert", tmpdir);
    unlink(rev_path);
    rmdir(tmpdir);
}
END_TEST

static Suite *netcert_suite(void)
{
    Suite *s = suite_create("netcert");
    TCase *tc = tcase_create("netcert");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_cert_round_trip);
    tcase_add_test(tc, test_cert_every_flipped_bit_refused);
    tcase_add_test(tc, test_cert_refusals);
    tcase_add_test(tc, test_roles);
    tcase_add_test(tc, test_revlist);
    tcase_add_test(tc, test_policy);
    suite_add_tcase(s, tc);
    return s;
}

const struct th_check_main th_check_main = { .suite = netcert_suite };
