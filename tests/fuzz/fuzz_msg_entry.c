/* fuzz_msg_entry.c — messaging discovery entries (common/msg_entry.c) from untrusted JSON, as
 * the messaging discovery reads a POSTed entry and a messaging client reads a looked-up one
 * (docs/wire-formats.md "Messaging discovery entry").
 *
 * The input, in an exact-size heap copy, goes through sw_json_parse then
 * sw_msg_entry_from_json. A failure names a reason and leaves the output untouched. A parsed
 * entry keeps its bounds, has the canonical length the layout gives (and does not fit one
 * byte less), verifies only as a well-formed entry (a bad signature, never a bad structure),
 * survives a JSON round trip unchanged, and once re-signed by a fixed key verifies, while
 * another sequence or a flipped signature bit does not. Any disagreement traps. */
#include "common/err.h"
#include "common/json.h"
#include "common/keys.h"
#include "common/msg_entry.h"
#include "tests/fuzz/fuzz.h"

#include <sodium.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char domain[] = "skywire-msg-entry/1";
static struct sw_keypair g_signer;

static void check_err(int rc, const struct sw_error *err)
{
    CHECK(rc < 0 && err->code == rc);
    CHECK(memchr(err->msg, '\0', sizeof(err->msg)) != NULL && err->msg[0] != '\0');
}

/* The canonical length the layout of msg_entry.h gives for e. */
static size_t layout_len(const struct sw_msg_entry *e)
{
    size_t n = (sizeof(domain) - 1) + 1 + strlen(e->version) + 8 + 8 + SW_PK_LEN + 1;
    if (e->has_client)
        n += 1 + e->n_delegated * SW_PK_LEN;
    if (e->has_server)
        n += 2 + strlen(e->address) + 4;
    return n;
}

static bool same(const struct sw_msg_entry *a, const struct sw_msg_entry *b)
{
    if (strcmp(a->version, b->version) || a->sequence != b->sequence || a->timestamp != b->timestamp ||
        !sw_pk_equal(&a->static_pk, &b->static_pk) || a->has_client != b->has_client ||
        a->has_server != b->has_server || memcmp(&a->signature, &b->signature, sizeof(a->signature)))
        return false;
    if (a->has_client) {
        if (a->n_delegated != b->n_delegated)
            return false;
        for (size_t i = 0; i < a->n_delegated; i++)
            if (!sw_pk_equal(&a->delegated[i], &b->delegated[i]))
                return false;
    }
    return !a->has_server || (strcmp(a->address, b->address) == 0 &&
                              a->available_sessions == b->available_sessions);
}

static void check_canonical(const struct sw_msg_entry *e)
{
    uint8_t buf[SW_MSG_CANON_MAX];
    size_t n = sw_msg_entry_canonical(e, buf, sizeof(buf));

    CHECK(n == layout_len(e) && n <= SW_MSG_CANON_MAX);
    CHECK(memcmp(buf, domain, sizeof(domain) - 1) == 0);
    CHECK(sw_msg_entry_canonical(e, buf, n - 1) == 0); /* one byte short: refused */
}

static void round_trip(const struct sw_msg_entry *e)
{
    struct json_object *o = sw_msg_entry_to_json(e), *back = NULL;
    struct sw_msg_entry again;
    struct sw_error err = { 0 };
    const char *s;
    size_t len;

    CHECK(o != NULL);
    s = sw_json_compact(o, &len);
    CHECK(sw_json_parse(s, len, &back, &err) == SW_OK);
    CHECK(sw_msg_entry_from_json(back, &again, &err) == SW_OK);
    CHECK(same(e, &again));
    json_object_put(back);
    json_object_put(o);
}

/* The same entry, as the fixed key's: its signature verifies, and binds every field. */
static void resign(const struct sw_msg_entry *e)
{
    struct sw_msg_entry mine = *e;

    mine.static_pk = g_signer.pk;
    sw_msg_entry_sign(&mine, &g_signer);
    CHECK(sw_msg_entry_verify(&mine, NULL) == SW_OK);
    mine.sequence++;
    CHECK(sw_msg_entry_verify(&mine, NULL) == SW_ECRYPTO);
    mine.sequence--;
    mine.signature.b[mine.sequence % SW_SIG_LEN] ^= 0x01;
    CHECK(sw_msg_entry_verify(&mine, NULL) == SW_ECRYPTO);
}

static void fuzz_entry(const char *text, size_t len)
{
    struct json_object *o = NULL;
    struct sw_msg_entry e, before;
    struct sw_error err = { 0 };
    int rc;

    if (sw_json_parse(text, len, &o, NULL) != SW_OK)
        return;
    memset(&e, 0x5a, sizeof(e));
    before = e;
    rc = sw_msg_entry_from_json(o, &e, &err);
    if (rc != SW_OK) {
        check_err(rc, &err);
        CHECK(memcmp(&e, &before, sizeof(e)) == 0); /* written only on success */
        json_object_put(o);
        return;
    }
    CHECK(memchr(e.version, '\0', sizeof(e.version)) && memchr(e.address, '\0', sizeof(e.address)));
    CHECK(e.has_client || e.has_server);
    CHECK(e.n_delegated <= SW_MSG_DELEGATES_MAX);
    CHECK(!e.has_server || e.address[0] != '\0');
    check_canonical(&e);
    /* the parser checked the structure: only the signature can fail now */
    rc = sw_msg_entry_verify(&e, &err);
    CHECK(rc == SW_OK || rc == SW_ECRYPTO);
    if (rc != SW_OK)
        check_err(rc, &err);
    round_trip(&e);
    resign(&e);
    json_object_put(o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool init;
    char *text;

    if (!init) {
        if (sw_crypto_init() != SW_OK)
            abort();
        /* a fixed key, so that a crash reproduces */
        uint8_t seed[crypto_sign_SEEDBYTES];
        memset(seed, 7, sizeof(seed));
        crypto_sign_seed_keypair(g_signer.pk.b, g_signer.sk, seed);
        init = true;
    }
    text = malloc(size ? size : 1);
    if (!text)
        abort();
    if (size)
        memcpy(text, data, size);
    fuzz_entry(text, size);
    free(text);
    return 0;
}
