/* fuzz_setup_messages.c — the requests a visor parses from others on the route setup path.
 * The first byte picks a mode:
 *   0  one rule-server request (messaging port 3, docs/routing.md §3) from raw JSON text:
 *      sw_json_parse, then visor_rproto_parse (visor/router_proto.c: reserve, add_rules,
 *      del_rules, group_ready) as router_setup.c does;
 *   1  the same requests as a framed stream, cut as router_setup.c's stream thread does
 *      (u32 BE length 1..64 KiB, then the body; a bad length ends the stream);
 *   2  one app socket request (visor/appsrv_proto.c: listen / dial with optional hop
 *      lists); a dial with hop lists is then handed to sw_route_group_parse inside a
 *      route_group request, as the setup node would receive it.
 * A parsed request must meet what the executing code relies on (bounds, nonzero IDs and
 * ports, distinct rule IDs, both hop lists or neither), parse the same twice, survive a
 * JSON round trip of its fields, and its add_rules must install into a rule table whose IDs
 * were reserved by the same setup node. Failures carry a known error code and a message.
 * Nothing may crash, leak or read out of bounds; a disagreement traps. */
#include "common/err.h"
#include "common/json.h"
#include "common/keys.h"
#include "common/setup_proto.h"
#include "common/stream_io.h"
#include "common/uuid.h"
#include "visor/appsrv_proto.h"
#include "visor/router_proto.h"
#include "visor/rules.h"
#include "tests/fuzz/fuzz.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static bool msg_ok(const struct sw_error *err)
{
    return memchr(err->msg, '\0', sizeof(err->msg)) != NULL && err->msg[0] != '\0';
}

/* ---- rule server ------------------------------------------------------------------------- */

static struct visor_rproto_req g_a, g_b; /* 12 KiB each: off the stack */

static bool same_req(const struct visor_rproto_req *a, const struct visor_rproto_req *b)
{
    if (a->type != b->type || a->id != b->id || a->n != b->n || a->n_rules != b->n_rules ||
        a->n_rids != b->n_rids)
        return false;
    for (size_t i = 0; i < a->n_rules; i++) {
        const struct visor_rule *x = &a->rules[i], *y = &b->rules[i];
        if (x->rid != y->rid || x->type != y->type || x->next_rid != y->next_rid ||
            memcmp(&x->next_tp, &y->next_tp, sizeof(x->next_tp)) != 0 || x->local_port != y->local_port ||
            x->remote_port != y->remote_port || !sw_pk_equal(&x->remote_pk, &y->remote_pk) ||
            x->group != y->group)
            return false;
    }
    return memcmp(a->rids, b->rids, a->n_rids * sizeof(a->rids[0])) == 0;
}

/* The request rebuilt from its parsed fields (what a setup node would have sent). */
static struct json_object *rebuild(const struct visor_rproto_req *q)
{
    static const char *const names[] = { "", "reserve", "add_rules", "del_rules", "group_ready" };
    struct json_object *o = json_object_new_object(), *arr;
    char tp[SW_UUID_STR_LEN + 1];

    json_object_object_add(o, "id", json_object_new_uint64(q->id));
    json_object_object_add(o, "type", json_object_new_string(names[q->type]));
    switch (q->type) {
    case VISOR_RPROTO_RESERVE:
        json_object_object_add(o, "n", json_object_new_int64(q->n));
        break;
    case VISOR_RPROTO_ADD_RULES:
        arr = json_object_new_array();
        for (size_t i = 0; i < q->n_rules; i++) {
            const struct visor_rule *r = &q->rules[i];
            struct json_object *jr = json_object_new_object();
            json_object_object_add(jr, "rid", json_object_new_int64(r->rid));
            if (r->type == VISOR_RULE_FORWARD) {
                sw_uuid_format(&r->next_tp, tp);
                json_object_object_add(jr, "type", json_object_new_string("forward"));
                json_object_object_add(jr, "next_tp", json_object_new_string(tp));
                json_object_object_add(jr, "next_rid", json_object_new_int64(r->next_rid));
            } else {
                json_object_object_add(jr, "type", json_object_new_string("consume"));
                json_object_object_add(jr, "local_port", json_object_new_int(r->local_port));
                json_object_object_add(jr, "remote_pk", sw_json_pk(&r->remote_pk));
                json_object_object_add(jr, "remote_port", json_object_new_int(r->remote_port));
            }
            json_object_array_add(arr, jr);
        }
        json_object_object_add(o, "rules", arr);
        break;
    case VISOR_RPROTO_DEL_RULES:
        arr = json_object_new_array();
        for (size_t i = 0; i < q->n_rids; i++)
            json_object_array_add(arr, json_object_new_int64(q->rids[i]));
        json_object_object_add(o, "rids", arr);
        break;
    default:
        break;
    }
    return o;
}

/* add_rules onto a table where a setup node reserved exactly the rules' IDs. */
static void install_all(const struct visor_rproto_req *q)
{
    static struct visor_rule_table rt;
    struct sw_pk sn, other;
    uint32_t got;

    memset(sn.b, 7, sizeof(sn.b));
    memset(other.b, 8, sizeof(other.b));
    visor_rules_init(&rt);
    for (size_t i = 0; i < q->n_rules; i++) {
        rt.last_rid = q->rules[i].rid - 1; /* the next reservation takes exactly this ID */
        CHECK(visor_rules_reserve(&rt, &sn, 100, &got) == SW_OK && got == q->rules[i].rid);
    }
    for (size_t i = 0; i < q->n_rules; i++) {
        CHECK(visor_rules_install(&rt, &q->rules[i], &other, 101) == SW_EPERM);
        CHECK(visor_rules_install(&rt, &q->rules[i], &sn, 101) == SW_OK);
        CHECK(visor_rules_install(&rt, &q->rules[i], &sn, 101) == SW_EEXIST);
        CHECK(visor_rules_get(&rt, q->rules[i].rid)->type == q->rules[i].type);
    }
    CHECK(rt.n == q->n_rules);
    visor_rules_free(&rt);
}

static void check_parsed(const struct visor_rproto_req *q)
{
    switch (q->type) {
    case VISOR_RPROTO_RESERVE:
        CHECK(q->n >= 1 && q->n <= VISOR_RPROTO_RESERVE_MAX);
        break;
    case VISOR_RPROTO_ADD_RULES:
        CHECK(q->n_rules >= 1 && q->n_rules <= VISOR_RPROTO_RULES_MAX);
        for (size_t i = 0; i < q->n_rules; i++) {
            const struct visor_rule *r = &q->rules[i];
            CHECK(r->rid != 0);
            for (size_t j = 0; j < i; j++)
                CHECK(q->rules[j].rid != r->rid);
            if (r->type == VISOR_RULE_FORWARD)
                CHECK(r->next_rid != 0 && r->local_port == 0 && r->group == 0);
            else
                CHECK(r->type == VISOR_RULE_CONSUME && r->local_port != 0 && r->remote_port != 0 &&
                      r->group == r->rid && r->next_rid == 0);
        }
        install_all(q);
        break;
    case VISOR_RPROTO_DEL_RULES:
        CHECK(q->n_rids <= VISOR_RPROTO_DEL_MAX);
        for (size_t i = 0; i < q->n_rids; i++)
            CHECK(q->rids[i] != 0);
        break;
    case VISOR_RPROTO_GROUP_READY:
        break;
    default:
        CHECK(false);
    }
}

static void rule_request(const char *text, size_t len)
{
    struct json_object *o = NULL, *again;
    struct sw_error err = { 0 }, err2 = { 0 };
    const char *code = NULL, *code2 = NULL;
    int rc, rc2;

    /* router_setup.c: a body that is not a JSON object is answered invalid_json */
    if (sw_json_parse(text, len, &o, &err) != SW_OK) {
        CHECK(msg_ok(&err));
        return;
    }
    if (!json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        return;
    }
    memset(&err, 0, sizeof(err));
    rc = visor_rproto_parse(o, &g_a, &code, &err);
    rc2 = visor_rproto_parse(o, &g_b, &code2, &err2);
    CHECK(rc == rc2 && code == code2 && g_a.id == g_b.id);
    if (rc != SW_OK) {
        CHECK(rc == SW_EINVAL && msg_ok(&err) && strcmp(err.msg, err2.msg) == 0);
        CHECK(strcmp(code, "invalid_request") == 0 || strcmp(code, "unknown_type") == 0);
        json_object_put(o);
        return;
    }
    CHECK(same_req(&g_a, &g_b));
    check_parsed(&g_a);
    /* the fields survive a round trip through JSON */
    again = rebuild(&g_a);
    CHECK(visor_rproto_parse(again, &g_b, &code2, &err2) == SW_OK && same_req(&g_a, &g_b));
    json_object_put(again);
    json_object_put(o);
}

/* router_setup.c's framing: records of common/stream_io.h (u32 BE length 1..64 KiB || body). */
static void rule_stream(const uint8_t *p, size_t n)
{
    size_t off = 0;
    for (int frames = 0; frames < 64; frames++) {
        const uint8_t *payload;
        size_t len, used;
        char *body;
        if (sw_record_peek(p + off, n - off, SW_SETUP_MAX_FRAME, &payload, &len, &used) || !used)
            return; /* closes the stream (bad length) or waits for more (incomplete) */
        body = malloc(len); /* exact size: a read past the frame is caught */
        CHECK(body != NULL);
        memcpy(body, payload, len);
        rule_request(body, len);
        free(body);
        off += used;
    }
}

/* ---- app socket ------------------------------------------------------------------------- */

static void app_request(const char *buf, size_t len)
{
    struct visor_appsrv_req rq;
    struct sw_error err = { 0 };
    const char *code = NULL;
    int rc = visor_appsrv_req_parse(buf, len, &rq, &code, &err);

    if (rc != SW_OK) {
        CHECK(rc == SW_EINVAL && msg_ok(&err) && rq.root == NULL);
        CHECK(strcmp(code, "invalid_request") == 0 || strcmp(code, "invalid_port") == 0 ||
              strcmp(code, "unknown_op") == 0);
        return;
    }
    CHECK(rq.root != NULL && rq.port != 0);
    CHECK(rq.op == VISOR_APPSRV_OP_LISTEN || rq.op == VISOR_APPSRV_OP_DIAL);
    CHECK(!rq.forward == !rq.reverse);
    if (rq.op == VISOR_APPSRV_OP_LISTEN)
        CHECK(!rq.forward);
    if (rq.forward) {
        /* source routing: the paths go to the setup node inside a route_group request */
        static struct sw_route_group_req g;
        struct json_object *req = json_object_new_object(), *src = json_object_new_object(),
                           *dst = json_object_new_object();
        struct sw_pk me;
        CHECK(sw_pk_from_hex(&me, "ed4928c628d1c2c6eae90338905995612959273a5c63f93636c14614ac8737d1", "me", NULL) == SW_OK);
        json_object_object_add(req, "type", json_object_new_string("route_group"));
        json_object_object_add(req, "id", json_object_new_int(1));
        json_object_object_add(src, "pk", sw_json_pk(&me));
        json_object_object_add(src, "port", json_object_new_int(49152));
        json_object_object_add(dst, "pk", sw_json_pk(&rq.pk));
        json_object_object_add(dst, "port", json_object_new_int(rq.port));
        json_object_object_add(req, "src", src);
        json_object_object_add(req, "dst", dst);
        json_object_object_add(req, "forward", json_object_get(rq.forward));
        json_object_object_add(req, "reverse", json_object_get(rq.reverse));
        memset(&err, 0, sizeof(err));
        rc = sw_route_group_parse(req, &g, &err);
        CHECK(rc == SW_OK || rc == SW_EINVAL || rc == SW_ERANGE || rc == SW_ENOMEM);
        if (rc == SW_OK)
            CHECK(g.n_fwd >= 1 && g.n_fwd <= SW_SETUP_MAX_HOPS && g.n_rev >= 1 && g.n_rev <= SW_SETUP_MAX_HOPS &&
                  sw_pk_equal(&g.fwd[0].from, &me) && sw_pk_equal(&g.fwd[g.n_fwd - 1].to, &rq.pk));
        else
            CHECK(msg_ok(&err));
        json_object_put(req);
    }
    visor_appsrv_req_free(&rq);
    CHECK(rq.root == NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool init;
    char *copy;

    if (!init) {
        if (sw_crypto_init() != SW_OK)
            abort();
        init = true;
    }
    if (size == 0)
        return 0;
    if (data[0] % 3 == 1) {
        rule_stream(data + 1, size - 1);
        return 0;
    }
    copy = malloc(size - 1 ? size - 1 : 1); /* exact size, not NUL-terminated: as received */
    CHECK(copy != NULL);
    memcpy(copy, data + 1, size - 1);
    if (data[0] % 3 == 0)
        rule_request(copy, size - 1);
    else
        app_request(copy, size - 1);
    free(copy);
    return 0;
}
