/* Unit tests for common/tp_entry.c: transport IDs, canonical bytes, signatures and JSON. */
#include "common/err.h"
#include "common/json.h"
#include "common/keys.h"
#include "common/tp_entry.h"
#include "common/uuid.h"
#include "tests/harness/check_main.h"

#include <check.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ASSERT_MSG_HAS(err, needle)                                                           \
    ck_assert_msg(strstr((err).msg, (needle)) != NULL, "message '%s' lacks '%s'", (err).msg, \
                  (needle))

static struct sw_keypair ka, kb, stranger;

static void setup(void)
{
    ck_assert_int_eq(sw_crypto_init(), SW_OK);
    ck_assert_int_eq(sw_keypair_generate(&ka), SW_OK);
    ck_assert_int_eq(sw_keypair_generate(&kb), SW_OK);
    ck_assert_int_eq(sw_keypair_generate(&stranger), SW_OK);
}

/* A correctly made and signed entry between ka and kb. */
static void make_signed(struct sw_tp_signed_entry *se, const char *type, const char *label)
{
    struct sw_error err = { 0 };
    memset(se, 0, sizeof(*se));
    ck_assert_int_eq(sw_tp_entry_make(&se->entry, &ka.pk, &kb.pk, type, label, &err), SW_OK);
    for (int i = 0; i < 2; i++) {
        const struct sw_keypair *kp = sw_pk_equal(&se->entry.edges[i], &ka.pk) ? &ka : &kb;
        sw_tp_entry_sign(&se->entry, kp, &se->sigs[i]);
    }
}

/* Independent computation of the transport ID as documented in tp_entry.h. */
static void expected_id(const struct sw_pk *a, const struct sw_pk *b, const char *type,
                        uint8_t out[16])
{
    uint8_t msg[15 + 64 + SW_TP_TYPE_MAX], digest[32];
    const struct sw_pk *lo = memcmp(a->b, b->b, 32) < 0 ? a : b, *hi = lo == a ? b : a;
    size_t tlen = strlen(type), n = 0;
    memcpy(msg, "skywire-tp-id/1", 15);
    n += 15;
    memcpy(msg + n, lo->b, 32);
    n += 32;
    memcpy(msg + n, hi->b, 32);
    n += 32;
    memcpy(msg + n, type, tlen);
    n += tlen;
    crypto_generichash(digest, sizeof(digest), msg, n, NULL, 0);
    memcpy(out, digest, 16);
    out[6] = (uint8_t)((out[6] & 0x0f) | 0x80);
    out[8] = (uint8_t)((out[8] & 0x3f) | 0x80);
}

START_TEST(test_id_deterministic_and_symmetric)
{
    struct sw_uuid ab, ba, again, dmsg;
    uint8_t want[16];
    sw_tp_id(&ka.pk, &kb.pk, "stcp", &ab);
    sw_tp_id(&kb.pk, &ka.pk, "stcp", &ba);
    sw_tp_id(&ka.pk, &kb.pk, "stcp", &again);
    ck_assert(sw_uuid_equal(&ab, &ba));
    ck_assert(sw_uuid_equal(&ab, &again));
    expected_id(&ka.pk, &kb.pk, "stcp", want);
    ck_assert_mem_eq(ab.b, want, 16);

    sw_tp_id(&ka.pk, &kb.pk, "dmsg", &dmsg);
    ck_assert(!sw_uuid_equal(&ab, &dmsg));
    expected_id(&kb.pk, &ka.pk, "dmsg", want);
    ck_assert_mem_eq(dmsg.b, want, 16);

    /* a different edge gives a different ID */
    sw_tp_id(&ka.pk, &stranger.pk, "stcp", &again);
    ck_assert(!sw_uuid_equal(&ab, &again));
}
END_TEST

START_TEST(test_id_version_variant)
{
    /* many key pairs, so that every nibble value is exercised before the bits are forced */
    for (int i = 0; i < 64; i++) {
        struct sw_keypair x, y;
        struct sw_uuid id;
        char s[SW_UUID_STR_LEN + 1];
        ck_assert_int_eq(sw_keypair_generate(&x), SW_OK);
        ck_assert_int_eq(sw_keypair_generate(&y), SW_OK);
        sw_tp_id(&x.pk, &y.pk, i % 2 ? "stcp" : "dmsg", &id);
        ck_assert_uint_eq(id.b[6] >> 4, 8);       /* version 8 */
        ck_assert_uint_eq(id.b[8] & 0xc0, 0x80);  /* RFC 4122 variant 10xx */
        sw_uuid_format(&id, s);
        ck_assert_int_eq(s[14], '8');
        ck_assert_ptr_nonnull(strchr("89ab", s[19]));
    }
}
END_TEST

START_TEST(test_make)
{
    struct sw_tp_entry e1, e2;
    struct sw_error err = { 0 };
    struct sw_uuid id;
    char label[SW_TP_LABEL_MAX + 2];

    ck_assert_int_eq(sw_tp_entry_make(&e1, &ka.pk, &kb.pk, "stcp", "lbl", &err), SW_OK);
    ck_assert_int_eq(sw_tp_entry_make(&e2, &kb.pk, &ka.pk, "stcp", "lbl", &err), SW_OK);
    ck_assert_mem_eq(&e1, &e2, sizeof(e1)); /* argument order does not matter */
    ck_assert_int_lt(sw_pk_cmp(&e1.edges[0], &e1.edges[1]), 0);
    ck_assert_str_eq(e1.type, "stcp");
    ck_assert_str_eq(e1.label, "lbl");
    sw_tp_id(&ka.pk, &kb.pk, "stcp", &id);
    ck_assert(sw_uuid_equal(&e1.id, &id));
    ck_assert_int_eq(sw_tp_entry_edge_index(&e1, &e1.edges[0]), 0);
    ck_assert_int_eq(sw_tp_entry_edge_index(&e1, &e1.edges[1]), 1);
    ck_assert_int_eq(sw_tp_entry_edge_index(&e1, &stranger.pk), -1);

    ck_assert_int_eq(sw_tp_entry_make(&e1, &ka.pk, &kb.pk, "dmsg", NULL, &err), SW_OK);
    ck_assert_str_eq(e1.label, "");

    memset(&e2, 0x5a, sizeof(e2));
    ck_assert_int_eq(sw_tp_entry_make(&e2, &ka.pk, &ka.pk, "stcp", "", &err), SW_EINVAL);
    ASSERT_MSG_HAS(err, "two different edges");
    ck_assert_int_eq(sw_tp_entry_make(&e2, &ka.pk, &kb.pk, "udp", "", &err), SW_EINVAL);
    ASSERT_MSG_HAS(err, "type");
    ck_assert_int_eq(sw_tp_entry_make(&e2, &ka.pk, &kb.pk, "STCP", "", &err), SW_EINVAL);
    ck_assert_int_eq(sw_tp_entry_make(&e2, &ka.pk, &kb.pk, "", "", &err), SW_EINVAL);
    memset(label, 'x', SW_TP_LABEL_MAX + 1);
    label[SW_TP_LABEL_MAX + 1] = '\0';
    ck_assert_int_eq(sw_tp_entry_make(&e2, &ka.pk, &kb.pk, "stcp", label, &err), SW_EINVAL);
    ASSERT_MSG_HAS(err, "label");
    ck_assert_uint_eq(((uint8_t *)&e2)[0], 0x5a); /* untouched on failure */
    label[SW_TP_LABEL_MAX] = '\0';
    ck_assert_int_eq(sw_tp_entry_make(&e2, &ka.pk, &kb.pk, "stcp", label, &err), SW_OK);
    ck_assert_uint_eq(strlen(e2.label), SW_TP_LABEL_MAX);

    ck_assert(sw_tp_type_valid("stcp"));
    ck_assert(sw_tp_type_valid("dmsg"));
    ck_assert(!sw_tp_type_valid("stc"));
    ck_assert(!sw_tp_type_valid("stcpx"));
    ck_assert(!sw_tp_type_valid(NULL));
}
END_TEST

START_TEST(test_canonical_layout)
{
    struct sw_tp_entry e;
    struct sw_error err = { 0 };
    uint8_t buf[SW_TP_CANON_MAX];
    size_t n;

    ck_assert_int_eq(sw_tp_entry_make(&e, &ka.pk, &kb.pk, "stcp", "hello", &err), SW_OK);
    memset(buf, 0xee, sizeof(buf));
    n = sw_tp_entry_canonical(&e, buf, sizeof(buf));
    ck_assert_uint_eq(n, 18 + 16 + 32 + 32 + 1 + 4 + 2 + 5);
    ck_assert_mem_eq(buf, "skywire-tp-entry/1", 18);
    ck_assert_mem_eq(buf + 18, e.id.b, 16);
    ck_assert_mem_eq(buf + 34, e.edges[0].b, 32);
    ck_assert_mem_eq(buf + 66, e.edges[1].b, 32);
    ck_assert_uint_eq(buf[98], 4);
    ck_assert_mem_eq(buf + 99, "stcp", 4);
    ck_assert_uint_eq(buf[103], 0); /* label_len big-endian */
    ck_assert_uint_eq(buf[104], 5);
    ck_assert_mem_eq(buf + 105, "hello", 5);
    ck_assert_uint_eq(buf[110], 0xee); /* nothing written past the end */

    /* empty label: the u16 length is still present */
    ck_assert_int_eq(sw_tp_entry_make(&e, &ka.pk, &kb.pk, "dmsg", "", &err), SW_OK);
    n = sw_tp_entry_canonical(&e, buf, sizeof(buf));
    ck_assert_uint_eq(n, 18 + 16 + 64 + 1 + 4 + 2);
    ck_assert_uint_eq(buf[98], 4);
    ck_assert_mem_eq(buf + 99, "dmsg", 4);
    ck_assert_uint_eq(buf[103], 0);
    ck_assert_uint_eq(buf[104], 0);

    /* maximum label: length needs both bytes of the u16 (256 = 0x0100) */
    {
        char label[SW_TP_LABEL_MAX + 1];
        memset(label, 'L', SW_TP_LABEL_MAX);
        label[SW_TP_LABEL_MAX] = '\0';
        ck_assert_int_eq(sw_tp_entry_make(&e, &ka.pk, &kb.pk, "stcp", label, &err), SW_OK);
        n = sw_tp_entry_canonical(&e, buf, sizeof(buf));
        ck_assert_uint_eq(n, 18 + 16 + 64 + 1 + 4 + 2 + SW_TP_LABEL_MAX);
        ck_assert_uint_eq(buf[103], 0x01);
        ck_assert_uint_eq(buf[104], 0x00);
        ck_assert_uint_eq(buf[n - 1], 'L');
        /* too small a buffer: 0, no overflow */
        ck_assert_uint_eq(sw_tp_entry_canonical(&e, buf, n - 1), 0);
        ck_assert_uint_eq(sw_tp_entry_canonical(&e, buf, n), n);
    }
}
END_TEST

START_TEST(test_sign_verify)
{
    struct sw_tp_signed_entry se;
    struct sw_error err = { 0 };
    uint8_t buf[SW_TP_CANON_MAX];
    size_t n;

    make_signed(&se, "stcp", "office link");
    ck_assert_int_eq(sw_tp_signed_entry_verify(&se, &err), SW_OK);
    /* the signature is an ordinary Ed25519 signature of the canonical bytes */
    n = sw_tp_entry_canonical(&se.entry, buf, sizeof(buf));
    ck_assert_int_eq(sw_verify(&se.entry.edges[0], buf, n, &se.sigs[0]), SW_OK);
    ck_assert_int_eq(sw_verify(&se.entry.edges[1], buf, n, &se.sigs[1]), SW_OK);

    make_signed(&se, "dmsg", "");
    ck_assert_int_eq(sw_tp_signed_entry_verify(&se, NULL), SW_OK);
}
END_TEST

START_TEST(test_verify_failures)
{
    struct sw_tp_signed_entry good, se;
    struct sw_error err;
    struct sw_sig tmp;

    make_signed(&good, "stcp", "x");

    /* unsorted edges (with their signatures moved along) */
    se = good;
    se.entry.edges[0] = good.entry.edges[1];
    se.entry.edges[1] = good.entry.edges[0];
    se.sigs[0] = good.sigs[1];
    se.sigs[1] = good.sigs[0];
    memset(&err, 0, sizeof(err));
    ck_assert_int_eq(sw_tp_signed_entry_verify(&se, &err), SW_EINVAL);
    ASSERT_MSG_HAS(err, "ascending");

    /* equal edges */
    se = good;
    se.entry.edges[1] = se.entry.edges[0];
    ck_assert_int_eq(sw_tp_signed_entry_verify(&se, &err), SW_EINVAL);
    ASSERT_MSG_HAS(err, "edges");

    /* wrong t_id */
    se = good;
    se.entry.id.b[15] ^= 1;
    ck_assert_int_eq(sw_tp_signed_entry_verify(&se, &err), SW_EINVAL);
    ASSERT_MSG_HAS(err, "t_id");

    /* unknown type */
    se = good;
    strcpy(se.entry.type, "udp");
    ck_assert_int_eq(sw_tp_signed_entry_verify(&se, &err), SW_EINVAL);
    ASSERT_MSG_HAS(err, "type");

    /* a known type that is not the one the ID was derived from */
    se = good;
    strcpy(se.entry.type, "dmsg");
    ck_assert_int_eq(sw_tp_signed_entry_verify(&se, &err), SW_EINVAL);
    ASSERT_MSG_HAS(err, "t_id");

    /* signature by a key that is not the edge */
    se = good;
    sw_tp_entry_sign(&se.entry, &stranger, &se.sigs[1]);
    ck_assert_int_eq(sw_tp_signed_entry_verify(&se, &err), SW_ECRYPTO);
    ASSERT_MSG_HAS(err, "signatures[1]");
    se = good;
    sw_tp_entry_sign(&se.entry, &stranger, &se.sigs[0]);
    ck_assert_int_eq(sw_tp_signed_entry_verify(&se, &err), SW_ECRYPTO);
    ASSERT_MSG_HAS(err, "signatures[0]");

    /* swapped signatures */
    se = good;
    tmp = se.sigs[0];
    se.sigs[0] = se.sigs[1];
    se.sigs[1] = tmp;
    ck_assert_int_eq(sw_tp_signed_entry_verify(&se, &err), SW_ECRYPTO);
    ASSERT_MSG_HAS(err, "signatures[0]");

    /* both signatures by the same edge */
    se = good;
    se.sigs[1] = se.sigs[0];
    ck_assert_int_eq(sw_tp_signed_entry_verify(&se, &err), SW_ECRYPTO);
    ASSERT_MSG_HAS(err, "signatures[1]");

    /* label changed after signing */
    se = good;
    strcpy(se.entry.label, "y");
    ck_assert_int_eq(sw_tp_signed_entry_verify(&se, &err), SW_ECRYPTO);

    /* corrupted signature byte */
    se = good;
    se.sigs[1].b[10] ^= 0x40;
    ck_assert_int_eq(sw_tp_signed_entry_verify(&se, &err), SW_ECRYPTO);
    ASSERT_MSG_HAS(err, "signatures[1]");

    ck_assert_int_eq(sw_tp_signed_entry_verify(&good, &err), SW_OK);
}
END_TEST

static struct json_object *reparse(struct json_object *o)
{
    size_t len;
    const char *s = sw_json_compact(o, &len);
    struct json_object *back = NULL;
    struct sw_error err;
    ck_assert_int_eq(sw_json_parse(s, len, &back, &err), SW_OK);
    return back;
}

START_TEST(test_json_round_trip)
{
    struct sw_tp_signed_entry se, back;
    struct sw_error err = { 0 };
    struct json_object *o, *p, *entry, *v;
    char id[SW_UUID_STR_LEN + 1], hex[SW_SIG_HEX_LEN + 1];

    make_signed(&se, "stcp", "with \"quotes\" / slash");
    o = sw_tp_signed_entry_to_json(&se);
    ck_assert_ptr_nonnull(o);
    p = reparse(o);
    memset(&back, 0x33, sizeof(back));
    ck_assert_int_eq(sw_tp_signed_entry_from_json(p, "", &back, &err), SW_OK);
    ck_assert_mem_eq(&back, &se, sizeof(se));
    ck_assert_int_eq(sw_tp_signed_entry_verify(&back, &err), SW_OK);

    /* field names and formats */
    ck_assert(json_object_object_get_ex(p, "entry", &entry));
    sw_uuid_format(&se.entry.id, id);
    ck_assert(json_object_object_get_ex(entry, "t_id", &v));
    ck_assert_str_eq(json_object_get_string(v), id);
    ck_assert(json_object_object_get_ex(entry, "type", &v));
    ck_assert_str_eq(json_object_get_string(v), "stcp");
    ck_assert(json_object_object_get_ex(entry, "edges", &v));
    ck_assert_uint_eq(json_object_array_length(v), 2);
    ck_assert(json_object_object_get_ex(p, "signatures", &v));
    sw_sig_to_hex(&se.sigs[1], hex);
    ck_assert_str_eq(json_object_get_string(json_object_array_get_idx(v, 1)), hex);

    json_object_put(o);
    json_object_put(p);

    /* the plain entry too */
    o = sw_tp_entry_to_json(&se.entry);
    p = reparse(o);
    {
        struct sw_tp_entry e;
        ck_assert_int_eq(sw_tp_entry_from_json(p, "x", &e, &err), SW_OK);
        ck_assert_mem_eq(&e, &se.entry, sizeof(e));
    }
    json_object_put(o);
    json_object_put(p);
}
END_TEST

START_TEST(test_json_key_order_and_optional_label)
{
    struct sw_tp_signed_entry se, a, b;
    struct sw_error err = { 0 };
    char id[SW_UUID_STR_LEN + 1], e0[SW_PK_HEX_LEN + 1], e1[SW_PK_HEX_LEN + 1];
    char s0[SW_SIG_HEX_LEN + 1], s1[SW_SIG_HEX_LEN + 1], doc1[1024], doc2[1024];
    struct json_object *o1, *o2;

    make_signed(&se, "dmsg", "");
    sw_uuid_format(&se.entry.id, id);
    sw_pk_to_hex(&se.entry.edges[0], e0);
    sw_pk_to_hex(&se.entry.edges[1], e1);
    sw_sig_to_hex(&se.sigs[0], s0);
    sw_sig_to_hex(&se.sigs[1], s1);
    snprintf(doc1, sizeof(doc1),
             "{\"entry\":{\"t_id\":\"%s\",\"edges\":[\"%s\",\"%s\"],\"type\":\"dmsg\"},"
             "\"signatures\":[\"%s\",\"%s\"]}", id, e0, e1, s0, s1);
    snprintf(doc2, sizeof(doc2),
             "{\"signatures\":[\"%s\",\"%s\"],\"entry\":{\"label\":\"\",\"type\":\"dmsg\","
             "\"edges\":[\"%s\",\"%s\"],\"t_id\":\"%s\"}}", s0, s1, e0, e1, id);
    ck_assert_int_eq(sw_json_parse(doc1, strlen(doc1), &o1, &err), SW_OK);
    ck_assert_int_eq(sw_json_parse(doc2, strlen(doc2), &o2, &err), SW_OK);
    ck_assert_int_eq(sw_tp_signed_entry_from_json(o1, "", &a, &err), SW_OK);
    ck_assert_int_eq(sw_tp_signed_entry_from_json(o2, "", &b, &err), SW_OK);
    ck_assert_mem_eq(&a, &b, sizeof(a));
    ck_assert_mem_eq(&a, &se, sizeof(a));
    ck_assert_int_eq(sw_tp_signed_entry_verify(&a, &err), SW_OK);
    json_object_put(o1);
    json_object_put(o2);
}
END_TEST

/* Applies one mutation to a valid signed-entry JSON and expects parsing to fail with a
 * message containing `needle` (or starting with it, when needle starts with '^'). */
typedef void (*mutate_fn)(struct json_object *root, struct json_object *entry);

static void expect_bad(mutate_fn fn, const char *where, const char *needle)
{
    struct sw_tp_signed_entry se, out, orig;
    struct sw_error err;
    struct json_object *root, *entry;

    make_signed(&se, "stcp", "lbl");
    root = sw_tp_signed_entry_to_json(&se);
    ck_assert(json_object_object_get_ex(root, "entry", &entry));
    fn(root, entry);
    memset(&out, 0x6b, sizeof(out));
    orig = out;
    memset(&err, 0, sizeof(err));
    ck_assert_msg(sw_tp_signed_entry_from_json(root, where, &out, &err) == SW_EINVAL,
                  "accepted mutation expected to mention '%s'", needle);
    ck_assert_int_eq(err.code, SW_EINVAL);
    if (needle[0] == '^')
        ck_assert_msg(strncmp(err.msg, needle + 1, strlen(needle + 1)) == 0,
                      "message '%s' does not start with '%s'", err.msg, needle + 1);
    else
        ASSERT_MSG_HAS(err, needle);
    ck_assert_mem_eq(&out, &orig, sizeof(out)); /* output written only on success */
    json_object_put(root);
}

static void m_no_entry(struct json_object *r, struct json_object *e)
{
    json_object_object_del(r, "entry");
}
static void m_entry_string(struct json_object *r, struct json_object *e)
{
    json_object_object_add(r, "entry", json_object_new_string("x"));
}
static void m_no_tid(struct json_object *r, struct json_object *e) { json_object_object_del(e, "t_id"); }
static void m_bad_tid(struct json_object *r, struct json_object *e)
{
    json_object_object_add(e, "t_id", json_object_new_string("not-a-uuid"));
}
static void m_tid_number(struct json_object *r, struct json_object *e)
{
    json_object_object_add(e, "t_id", json_object_new_int(5));
}
static void m_edges_object(struct json_object *r, struct json_object *e)
{
    json_object_object_add(e, "edges", json_object_new_object());
}
static void m_edges_one(struct json_object *r, struct json_object *e)
{
    json_object_array_del_idx(json_object_object_get(e, "edges"), 1, 1);
}
static void m_edges_three(struct json_object *r, struct json_object *e)
{
    struct json_object *edges = json_object_object_get(e, "edges");
    json_object_array_add(edges, json_object_get(json_object_array_get_idx(edges, 0)));
}
static void m_edge1_number(struct json_object *r, struct json_object *e)
{
    json_object_array_put_idx(json_object_object_get(e, "edges"), 1, json_object_new_int(1));
}
static void m_edge0_short(struct json_object *r, struct json_object *e)
{
    json_object_array_put_idx(json_object_object_get(e, "edges"), 0,
                              json_object_new_string("abcdef"));
}
static void m_edge1_off_curve(struct json_object *r, struct json_object *e)
{
    char ff[SW_PK_HEX_LEN + 1];
    memset(ff, 'f', SW_PK_HEX_LEN);
    ff[SW_PK_HEX_LEN] = '\0';
    json_object_array_put_idx(json_object_object_get(e, "edges"), 1, json_object_new_string(ff));
}
static void m_no_type(struct json_object *r, struct json_object *e) { json_object_object_del(e, "type"); }
static void m_long_type(struct json_object *r, struct json_object *e)
{
    json_object_object_add(e, "type", json_object_new_string("abcdefghijklmnopq")); /* 17 */
}
static void m_label_number(struct json_object *r, struct json_object *e)
{
    json_object_object_add(e, "label", json_object_new_int(3));
}
static void m_long_label(struct json_object *r, struct json_object *e)
{
    char label[SW_TP_LABEL_MAX + 2];
    memset(label, 'a', SW_TP_LABEL_MAX + 1);
    label[SW_TP_LABEL_MAX + 1] = '\0';
    json_object_object_add(e, "label", json_object_new_string(label));
}
static void m_label_nul(struct json_object *r, struct json_object *e)
{
    json_object_object_add(e, "label", json_object_new_string_len("a\0b", 3));
}
static void m_no_sigs(struct json_object *r, struct json_object *e)
{
    json_object_object_del(r, "signatures");
}
static void m_sigs_string(struct json_object *r, struct json_object *e)
{
    json_object_object_add(r, "signatures", json_object_new_string("ab"));
}
static void m_sigs_one(struct json_object *r, struct json_object *e)
{
    json_object_array_del_idx(json_object_object_get(r, "signatures"), 0, 1);
}
static void m_sig1_null(struct json_object *r, struct json_object *e)
{
    json_object_array_put_idx(json_object_object_get(r, "signatures"), 1, NULL);
}
static void m_sig0_badhex(struct json_object *r, struct json_object *e)
{
    char bad[SW_SIG_HEX_LEN + 1];
    memset(bad, 'z', SW_SIG_HEX_LEN);
    bad[SW_SIG_HEX_LEN] = '\0';
    json_object_array_put_idx(json_object_object_get(r, "signatures"), 0,
                              json_object_new_string(bad));
}

START_TEST(test_json_malformed_fields_named)
{
    expect_bad(m_no_entry, "[3]", "field '[3].entry' is missing");
    expect_bad(m_entry_string, "[3]", "field '[3].entry' must be an object");
    expect_bad(m_no_tid, "[3]", "field '[3].entry.t_id' is missing");
    expect_bad(m_bad_tid, "[3]", "[3].entry.t_id: not a UUID");
    expect_bad(m_tid_number, "[3]", "field '[3].entry.t_id' must be a string");
    expect_bad(m_edges_object, "[3]", "field '[3].entry.edges' must be an array");
    expect_bad(m_edges_one, "[3]", "field '[3].entry.edges' must hold exactly two keys");
    expect_bad(m_edges_three, "[3]", "field '[3].entry.edges' must hold exactly two keys");
    expect_bad(m_edge1_number, "[3]", "[3].entry.edges[1]: a public key must be a string");
    expect_bad(m_edge0_short, "[3]", "[3].entry.edges[0]: a public key must be 64 hex");
    expect_bad(m_edge1_off_curve, "[3]", "[3].entry.edges[1]: not a valid Ed25519");
    expect_bad(m_no_type, "[3]", "field '[3].entry.type' is missing");
    expect_bad(m_long_type, "[3]", "field '[3].entry.type' is longer than 16 bytes");
    expect_bad(m_label_number, "[3]", "field '[3].entry.label' must be a string");
    expect_bad(m_long_label, "[3]", "field '[3].entry.label' is longer than 256 bytes");
    expect_bad(m_label_nul, "[3]", "field '[3].entry.label' contains a NUL");
    expect_bad(m_no_sigs, "[3]", "field '[3].signatures' is missing");
    expect_bad(m_sigs_string, "[3]", "field '[3].signatures' must be an array");
    expect_bad(m_sigs_one, "[3]", "field '[3].signatures' must hold exactly two signatures");
    expect_bad(m_sig1_null, "[3]", "[3].signatures[1]: a signature must be a string");
    expect_bad(m_sig0_badhex, "[3]", "[3].signatures[0]: a signature must be 128 hex");
    /* top level: no leading dot */
    expect_bad(m_no_tid, "", "field 'entry.t_id' is missing");
    expect_bad(m_edges_one, "", "field 'entry.edges' must hold exactly two keys");
    expect_bad(m_sig0_badhex, "", "^signatures[0]: a signature");
    expect_bad(m_edge1_number, "", "^entry.edges[1]: a public key");
    expect_bad(m_no_sigs, "", "field 'signatures' is missing");
}
END_TEST

START_TEST(test_entry_from_json_top_level_names)
{
    /* a bare entry parsed at the top level names its fields without a leading dot */
    struct sw_tp_signed_entry se;
    struct sw_tp_entry e;
    struct sw_error err = { 0 };
    struct json_object *o;

    make_signed(&se, "stcp", "");
    o = sw_tp_entry_to_json(&se.entry);
    json_object_object_add(o, "t_id", json_object_new_string("zz"));
    ck_assert_int_eq(sw_tp_entry_from_json(o, "", &e, &err), SW_EINVAL);
    ck_assert_msg(strncmp(err.msg, "t_id:", 5) == 0, "got '%s'", err.msg);
    json_object_put(o);

    o = sw_tp_entry_to_json(&se.entry);
    json_object_array_del_idx(json_object_object_get(o, "edges"), 0, 1);
    ck_assert_int_eq(sw_tp_entry_from_json(o, "", &e, &err), SW_EINVAL);
    ck_assert_str_eq(err.msg, "field 'edges' must hold exactly two keys");
    json_object_put(o);

    o = sw_tp_entry_to_json(&se.entry);
    json_object_array_put_idx(json_object_object_get(o, "edges"), 1, json_object_new_int(1));
    ck_assert_int_eq(sw_tp_entry_from_json(o, "", &e, &err), SW_EINVAL);
    ck_assert_str_eq(err.msg, "edges[1]: a public key must be a string");
    json_object_put(o);
}
END_TEST

START_TEST(test_json_unknown_type_parses_but_fails_verify)
{
    struct sw_tp_signed_entry se, out;
    struct sw_error err = { 0 };
    struct json_object *root, *entry;

    make_signed(&se, "stcp", "");
    root = sw_tp_signed_entry_to_json(&se);
    ck_assert(json_object_object_get_ex(root, "entry", &entry));
    json_object_object_add(entry, "type", json_object_new_string("quic"));
    ck_assert_int_eq(sw_tp_signed_entry_from_json(root, "", &out, &err), SW_OK);
    ck_assert_str_eq(out.entry.type, "quic");
    ck_assert_int_eq(sw_tp_signed_entry_verify(&out, &err), SW_EINVAL);
    ASSERT_MSG_HAS(err, "type");
    json_object_put(root);
}
END_TEST

static Suite *tp_entry_suite(void)
{
    Suite *s = suite_create("tp_entry");
    TCase *tc = tcase_create("core");
    TCase *tj = tcase_create("json");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_id_deterministic_and_symmetric);
    tcase_add_test(tc, test_id_version_variant);
    tcase_add_test(tc, test_make);
    tcase_add_test(tc, test_canonical_layout);
    tcase_add_test(tc, test_sign_verify);
    tcase_add_test(tc, test_verify_failures);
    suite_add_tcase(s, tc);
    tcase_add_checked_fixture(tj, setup, NULL);
    tcase_add_test(tj, test_json_round_trip);
    tcase_add_test(tj, test_json_key_order_and_optional_label);
    tcase_add_test(tj, test_json_malformed_fields_named);
    tcase_add_test(tj, test_entry_from_json_top_level_names);
    tcase_add_test(tj, test_json_unknown_type_parses_but_fails_verify);
    suite_add_tcase(s, tj);
    return s;
}

const struct th_check_main th_check_main = { .suite = tp_entry_suite };
