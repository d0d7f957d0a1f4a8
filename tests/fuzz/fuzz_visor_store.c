/* fuzz_visor_store.c — the JSON the visor reads: data_dir/transports.json (visor_store_parse),
 * its config file (visor_config_load_string) and the local API's request bodies
 * (visor_api_parse_add, visor_api_parse_discard). The first byte picks which (byte % 4: 0 store,
 * 1 config, 2 add-tp body, 3 discard body); the rest is the text, in an exact-size heap
 * copy so ASan catches over-reads.
 *   - store: every delivered record obeys the documented rules, nothing is delivered from a
 *     document that fails, and the records written back the way store.c writes them parse
 *     again to the same records;
 *   - config: a loaded config obeys its limits and its key pair matches; an error message
 *     never contains the document's secret key;
 *   - bodies: success gives valid values, failure names a documented error code and leaves
 *     the output untouched.
 * Any disagreement traps. */
#include "common/err.h"
#include "common/hostport.h"
#include "common/json.h"
#include "common/keys.h"
#include "visor/config.h"
#include "visor/parse.h"
#include "tests/fuzz/fuzz.h"

#include <json-c/json.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_KEEP 64

struct seen {
    size_t n;
    bool fail;               /* the callback refuses the record at index fail_at */
    size_t fail_at;
    struct visor_store_record recs[MAX_KEEP];
};

static bool str_ok(const char *s, size_t cap) { return memchr(s, '\0', cap) != NULL; }

static int each(void *ctx, const struct visor_store_record *r, const char *where, struct sw_error *err)
{
    struct seen *s = ctx;

    CHECK(r->kind == VISOR_TP_STCP || r->kind == VISOR_TP_DMSG);
    CHECK(str_ok(r->addr, sizeof(r->addr)));
    CHECK(r->addr[0] == '\0' || sw_hostport_parse(r->addr, 0, NULL, 0, NULL) == SW_OK);
    CHECK(crypto_core_ed25519_is_valid_point(r->remote.b));
    CHECK(strncmp(where, "transports[", 11) == 0);
    if (s->fail && s->n == s->fail_at)
        return sw_error_set(err, SW_EEXIST, "refused");
    if (s->n < MAX_KEEP)
        s->recs[s->n] = *r;
    s->n++;
    return SW_OK;
}

static bool same(const struct visor_store_record *a, const struct visor_store_record *b)
{
    return sw_pk_equal(&a->remote, &b->remote) && a->kind == b->kind && strcmp(a->addr, b->addr) == 0 &&
           a->remembered == b->remembered && a->bytes_sent == b->bytes_sent &&
           a->bytes_received == b->bytes_received;
}

/* The records written back as store.c writes them. */
static char *write_back(const struct seen *s)
{
    struct json_object *root = json_object_new_object(), *arr = json_object_new_array(), *o;
    char *text;

    for (size_t i = 0; i < s->n && i < MAX_KEEP; i++) {
        const struct visor_store_record *r = &s->recs[i];
        o = json_object_new_object();
        json_object_object_add(o, "remote_pk", sw_json_pk(&r->remote));
        json_object_object_add(o, "type", json_object_new_string(r->kind == VISOR_TP_DMSG ? "dmsg" : "stcp"));
        json_object_object_add(o, "address", json_object_new_string(r->addr));
        json_object_object_add(o, "remembered", json_object_new_boolean(r->remembered));
        json_object_object_add(o, "bytes_sent", json_object_new_uint64(r->bytes_sent));
        json_object_object_add(o, "bytes_received", json_object_new_uint64(r->bytes_received));
        json_object_array_add(arr, o);
    }
    json_object_object_add(root, "version", json_object_new_int(VISOR_STORE_VERSION));
    json_object_object_add(root, "transports", arr);
    text = strdup(json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY |
                                                             JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(root);
    CHECK(text != NULL);
    return text;
}

static void fuzz_store(const char *text, size_t len)
{
    struct seen *s = calloc(1, sizeof(*s)), *again = calloc(1, sizeof(*again));
    struct sw_error err = { 0 };
    int rc;

    CHECK(s && again);
    rc = visor_store_parse(text, len, each, s, &err);
    if (rc != SW_OK) {
        CHECK(rc == SW_EINVAL || rc == SW_ERANGE || rc == SW_ENOMEM);
        CHECK(err.code == rc && err.msg[0] && str_ok(err.msg, sizeof(err.msg)));
        CHECK(s->n == 0); /* nothing from a bad document */
        goto out;
    }
    CHECK(s->n <= VISOR_MAX_TRANSPORTS);
    /* deterministic, and a callback's refusal stops it with the callback's code */
    if (s->n > 0) {
        again->fail = true;
        again->fail_at = s->n - 1;
        CHECK(visor_store_parse(text, len, each, again, &err) == SW_EEXIST);
        CHECK(again->n == s->n - 1);
    }
    if (s->n <= MAX_KEEP) {
        char *back = write_back(s);
        memset(again, 0, sizeof(*again));
        CHECK(visor_store_parse(back, strlen(back), each, again, &err) == SW_OK);
        CHECK(again->n == s->n);
        for (size_t i = 0; i < s->n; i++)
            CHECK(same(&s->recs[i], &again->recs[i]));
        free(back);
    }
out:
    free(s);
    free(again);
}

/* The document's keys.secret_key when it is at least 16 hex digits (no fixed message text
 * holds such a run) and occurs exactly once in the text (so any copy of it in a message
 * came from the secret itself); NULL otherwise. Owned by *root. */
static const char *lone_secret(const char *text, size_t len, struct json_object **root)
{
    struct json_object *k, *sk;
    const char *s, *first;
    size_t n;

    *root = NULL;
    if (sw_json_parse(text, len, root, NULL) != SW_OK)
        return NULL;
    if (!json_object_object_get_ex(*root, "keys", &k) || !json_object_object_get_ex(k, "secret_key", &sk) ||
        !json_object_is_type(sk, json_type_string))
        return NULL;
    s = json_object_get_string(sk);
    n = strlen(s);
    if (n < 16 || strspn(s, "0123456789abcdefABCDEF") != n || !(first = memmem(text, len, s, n)) ||
        memmem(first + 1, len - (size_t)(first + 1 - text), s, n))
        return NULL;
    return s;
}

static void fuzz_config(const char *text, size_t len)
{
    struct visor_config c;
    struct sw_error err = { 0 };
    struct json_object *root;
    const char *secret;
    int rc = visor_config_load_string(&c, "fuzz.json", text, len, &err);

    if (rc != SW_OK) {
        CHECK(err.code == rc && err.msg[0] && str_ok(err.msg, sizeof(err.msg)));
        CHECK(c.pk_table == NULL && c.apps == NULL); /* freed */
        secret = lone_secret(text, len, &root);
        if (secret)
            CHECK(strstr(err.msg, secret) == NULL);
        json_object_put(root);
        return;
    }
    uint8_t seed[crypto_sign_SEEDBYTES], pk[SW_PK_LEN], sk[SW_SK_LEN];
    crypto_sign_ed25519_sk_to_seed(seed, c.kp.sk);
    crypto_sign_seed_keypair(pk, sk, seed);
    CHECK(memcmp(pk, c.kp.pk.b, SW_PK_LEN) == 0);
    CHECK(str_ok(c.version, sizeof(c.version)) && str_ok(c.tpd_url, sizeof(c.tpd_url)));
    CHECK(c.tpd_url[0] != '\0');
    CHECK(str_ok(c.msg_discovery, sizeof(c.msg_discovery)) && str_ok(c.route_finder, sizeof(c.route_finder)));
    CHECK(c.msg_sessions >= 1 && c.msg_sessions <= 16);
    CHECK(c.n_msg_servers <= VISOR_MSG_SERVERS_MAX && c.n_setup_nodes <= VISOR_SETUP_NODES_MAX);
    CHECK(c.n_pk_table <= VISOR_PK_TABLE_MAX && c.n_apps <= VISOR_APPS_MAX);
    CHECK(c.stcp_listen[0] == '\0' || sw_hostport_parse(c.stcp_listen, SW_HOSTPORT_LISTEN, NULL, 0, NULL) == SW_OK);
    CHECK(sw_hostport_parse(c.api_listen, SW_HOSTPORT_LISTEN, NULL, 0, NULL) == SW_OK);
    CHECK(c.data_dir[0] != '\0' && str_ok(c.data_dir, sizeof(c.data_dir)));
    for (size_t i = 0; i < c.n_pk_table; i++) {
        CHECK(sw_hostport_parse(c.pk_table[i].addr, 0, NULL, 0, NULL) == SW_OK);
        CHECK(visor_config_pk_addr(&c, &c.pk_table[i].pk) != NULL);
    }
    for (size_t i = 0; i < c.n_msg_servers; i++)
        CHECK(sw_hostport_parse(c.msg_servers[i].addr, 0, NULL, 0, NULL) == SW_OK);
    for (size_t i = 0; i < c.n_apps; i++) {
        CHECK(c.apps[i].port >= 1 && c.apps[i].name[0] && c.apps[i].n_args <= VISOR_APP_ARGS_MAX);
        for (size_t j = 0; j < i; j++)
            CHECK(c.apps[j].port != c.apps[i].port);
    }
    sodium_memzero(seed, sizeof(seed));
    sodium_memzero(sk, sizeof(sk));
    visor_config_free(&c);
    CHECK(sodium_is_zero(c.kp.sk, SW_SK_LEN));
}

static void fuzz_add(const char *text, size_t len)
{
    static const char *const codes[] = { "invalid_json", "invalid_body", "invalid_public_key",
                                         "invalid_type", "invalid_address" };
    struct visor_api_add_request r, before;
    struct sw_error err = { 0 };
    const char *code = NULL;
    bool known = false;
    int rc;

    memset(&r, 0x5a, sizeof(r));
    before = r;
    rc = visor_api_parse_add(text, len, &r, &code, &err);
    if (rc == SW_OK) {
        CHECK(code == NULL);
        CHECK(r.kind == VISOR_TP_STCP || r.kind == VISOR_TP_DMSG);
        CHECK(str_ok(r.addr, sizeof(r.addr)));
        CHECK(r.addr[0] == '\0' || sw_hostport_parse(r.addr, 0, NULL, 0, NULL) == SW_OK);
        return;
    }
    CHECK(err.code == rc && err.msg[0] && code != NULL);
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
        known |= strcmp(code, codes[i]) == 0;
    CHECK(known);
    CHECK(memcmp(&r, &before, sizeof(r)) == 0);
}

static void fuzz_discard(const char *text, size_t len)
{
    const uint64_t max = 64ull << 30;
    struct sw_error err = { 0 };
    uint64_t n = 77;
    int rc = visor_api_parse_discard(text, len, max, &n, &err);

    if (rc == SW_OK)
        CHECK(n >= 1 && n <= max);
    else
        CHECK(rc == SW_EINVAL && err.code == rc && n == 77);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool init;
    char *text;

    if (!init) {
        if (sodium_init() < 0)
            abort();
        init = true;
    }
    if (size == 0)
        return 0;
    text = malloc(size - 1 ? size - 1 : 1);
    if (!text)
        abort();
    memcpy(text, data + 1, size - 1);
    switch (data[0] % 4) {
    case 0: fuzz_store(text, size - 1); break;
    case 1: fuzz_config(text, size - 1); break;
    case 2: fuzz_add(text, size - 1); break;
    default: fuzz_discard(text, size - 1); break;
    }
    free(text);
    return 0;
}
