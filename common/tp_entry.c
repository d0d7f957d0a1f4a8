#include "common/tp_entry.h"
#include "common/bytes.h"
#include "common/json.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

static const char id_domain[] = "skywire-tp-id/1";
static const char entry_domain[] = "skywire-tp-entry/1";

bool sw_tp_type_valid(const char *type)
{
    return type && (strcmp(type, "stcp") == 0 || strcmp(type, "dmsg") == 0);
}

void sw_tp_id(const struct sw_pk *a, const struct sw_pk *b, const char *type, struct sw_uuid *out)
{
    crypto_generichash_state st;
    uint8_t digest[32];
    const struct sw_pk *lo = sw_pk_cmp(a, b) <= 0 ? a : b, *hi = lo == a ? b : a;

    crypto_generichash_init(&st, NULL, 0, sizeof(digest));
    crypto_generichash_update(&st, (const uint8_t *)id_domain, sizeof(id_domain) - 1);
    crypto_generichash_update(&st, lo->b, SW_PK_LEN);
    crypto_generichash_update(&st, hi->b, SW_PK_LEN);
    crypto_generichash_update(&st, (const uint8_t *)type, strlen(type));
    crypto_generichash_final(&st, digest, sizeof(digest));
    memcpy(out->b, digest, SW_UUID_LEN);
    out->b[6] = (uint8_t)((out->b[6] & 0x0f) | 0x80); /* version 8: custom */
    out->b[8] = (uint8_t)((out->b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
}

int sw_tp_entry_make(struct sw_tp_entry *e, const struct sw_pk *a, const struct sw_pk *b,
                     const char *type, const char *label, struct sw_error *err)
{
    int c = sw_pk_cmp(a, b);
    if (c == 0)
        return sw_error_set(err, SW_EINVAL, "a transport needs two different edges");
    if (!sw_tp_type_valid(type))
        return sw_error_set(err, SW_EINVAL, "type: unknown transport type (want stcp or dmsg)");
    if (!label)
        label = "";
    if (strlen(label) > SW_TP_LABEL_MAX)
        return sw_error_set(err, SW_EINVAL, "label: longer than %d bytes", SW_TP_LABEL_MAX);
    memset(e, 0, sizeof(*e));
    e->edges[0] = c < 0 ? *a : *b;
    e->edges[1] = c < 0 ? *b : *a;
    snprintf(e->type, sizeof(e->type), "%s", type);
    snprintf(e->label, sizeof(e->label), "%s", label);
    sw_tp_id(&e->edges[0], &e->edges[1], e->type, &e->id);
    return SW_OK;
}

size_t sw_tp_entry_canonical(const struct sw_tp_entry *e, uint8_t *out, size_t cap)
{
    struct sw_writer w;
    size_t tlen = strnlen(e->type, SW_TP_TYPE_MAX), llen = strnlen(e->label, SW_TP_LABEL_MAX);
    sw_writer_init(&w, out, cap);
    sw_write_bytes(&w, entry_domain, sizeof(entry_domain) - 1);
    sw_write_bytes(&w, e->id.b, SW_UUID_LEN);
    sw_write_bytes(&w, e->edges[0].b, SW_PK_LEN);
    sw_write_bytes(&w, e->edges[1].b, SW_PK_LEN);
    sw_write_u8(&w, (uint8_t)tlen);
    sw_write_bytes(&w, e->type, tlen);
    sw_write_u16(&w, (uint16_t)llen);
    sw_write_bytes(&w, e->label, llen);
    return sw_writer_ok(&w) ? w.len : 0;
}

int sw_tp_entry_edge_index(const struct sw_tp_entry *e, const struct sw_pk *pk)
{
    if (sw_pk_equal(&e->edges[0], pk))
        return 0;
    if (sw_pk_equal(&e->edges[1], pk))
        return 1;
    return -1;
}

void sw_tp_entry_sign(const struct sw_tp_entry *e, const struct sw_keypair *kp, struct sw_sig *out)
{
    uint8_t buf[SW_TP_CANON_MAX];
    size_t n = sw_tp_entry_canonical(e, buf, sizeof(buf));
    sw_sign(kp, buf, n, out);
}

int sw_tp_signed_entry_verify(const struct sw_tp_signed_entry *se, struct sw_error *err)
{
    const struct sw_tp_entry *e = &se->entry;
    uint8_t buf[SW_TP_CANON_MAX];
    struct sw_uuid want;
    size_t n;

    if (sw_pk_cmp(&e->edges[0], &e->edges[1]) >= 0)
        return sw_error_set(err, SW_EINVAL, "edges must be two different keys in ascending order");
    if (!sw_tp_type_valid(e->type))
        return sw_error_set(err, SW_EINVAL, "type: unknown transport type (want stcp or dmsg)");
    sw_tp_id(&e->edges[0], &e->edges[1], e->type, &want);
    if (!sw_uuid_equal(&want, &e->id))
        return sw_error_set(err, SW_EINVAL, "t_id is not the ID derived from the edges and type");
    n = sw_tp_entry_canonical(e, buf, sizeof(buf));
    for (int i = 0; i < 2; i++)
        if (sw_verify(&e->edges[i], buf, n, &se->sigs[i]) != SW_OK)
            return sw_error_set(err, SW_ECRYPTO, "signatures[%d] is not edges[%d]'s signature of the entry", i, i);
    return SW_OK;
}

int sw_tp_entry_from_json(struct json_object *obj, const char *where, struct sw_tp_entry *e,
                          struct sw_error *err)
{
    struct json_object *edges;
    const char *id, *type, *label = "";
    char name[96];
    struct sw_tp_entry tmp;
    const char *sep;
    int rc;

    if (!where)
        where = "";
    sep = *where ? "." : ""; /* top level: "t_id", not ".t_id" */
    memset(&tmp, 0, sizeof(tmp));
    if ((rc = sw_json_get_string(obj, "t_id", where, 64, &id, err)))
        return rc;
    snprintf(name, sizeof(name), "%s%st_id", where, sep);
    if ((rc = sw_uuid_parse(&tmp.id, id, name, err)))
        return rc;
    if ((rc = sw_json_get_array(obj, "edges", where, &edges, err)))
        return rc;
    if (json_object_array_length(edges) != 2)
        return sw_error_set(err, SW_EINVAL, "field '%s%sedges' must hold exactly two keys", where, sep);
    for (size_t i = 0; i < 2; i++) {
        struct json_object *v = json_object_array_get_idx(edges, i);
        snprintf(name, sizeof(name), "%s%sedges[%zu]", where, sep, i);
        if (!json_object_is_type(v, json_type_string))
            return sw_error_set(err, SW_EINVAL, "%s: a public key must be a string", name);
        if ((rc = sw_pk_from_hex(&tmp.edges[i], json_object_get_string(v), name, err)))
            return rc;
    }
    if ((rc = sw_json_get_string(obj, "type", where, SW_TP_TYPE_MAX, &type, err)))
        return rc;
    if (json_object_object_get_ex(obj, "label", NULL) &&
        (rc = sw_json_get_string(obj, "label", where, SW_TP_LABEL_MAX, &label, err)))
        return rc;
    memcpy(tmp.type, type, strlen(type) + 1);
    memcpy(tmp.label, label, strlen(label) + 1);
    *e = tmp;
    return SW_OK;
}

int sw_tp_signed_entry_from_json(struct json_object *obj, const char *where,
                                 struct sw_tp_signed_entry *se, struct sw_error *err)
{
    struct json_object *entry, *sigs, *certs;
    struct sw_tp_signed_entry tmp; /* *se is written only on success */
    char name[96];
    int rc;

    if (!where)
        where = "";
    if ((rc = sw_json_get_object(obj, "entry", where, &entry, err)))
        return rc;
    snprintf(name, sizeof(name), "%s%sentry", where, *where ? "." : "");
    if ((rc = sw_tp_entry_from_json(entry, name, &tmp.entry, err)))
        return rc;
    if ((rc = sw_json_get_array(obj, "signatures", where, &sigs, err)))
        return rc;
    if (json_object_array_length(sigs) != 2)
        return sw_error_set(err, SW_EINVAL, "field '%s%ssignatures' must hold exactly two signatures",
                            where, *where ? "." : "");
    for (size_t i = 0; i < 2; i++) {
        struct json_object *v = json_object_array_get_idx(sigs, i);
        snprintf(name, sizeof(name), "%s%ssignatures[%zu]", where, *where ? "." : "", i);
        if (!json_object_is_type(v, json_type_string))
            return sw_error_set(err, SW_EINVAL, "%s: a signature must be a string", name);
        if ((rc = sw_sig_from_hex(&tmp.sigs[i], json_object_get_string(v), name, err)))
            return rc;
    }
    memset(tmp.certs, 0, sizeof(tmp.certs));
    if (json_object_object_get_ex(obj, "certs", &certs) && !json_object_is_type(certs, json_type_null)) {
        snprintf(name, sizeof(name), "%s%scerts", where, *where ? "." : "");
        if (!json_object_is_type(certs, json_type_array) || json_object_array_length(certs) != 2)
            return sw_error_set(err, SW_EINVAL, "field '%s' must hold two certificates", name);
        for (size_t i = 0; i < 2; i++) {
            struct json_object *v = json_object_array_get_idx(certs, i);
            size_t n = v ? (size_t)json_object_get_string_len(v) : 0;
            if (!json_object_is_type(v, json_type_string) || n > SW_CERT_HEX_MAX)
                return sw_error_set(err, SW_EINVAL,
                                    "%s[%zu]: a certificate is a string of at most %d hex digits",
                                    name, i, SW_CERT_HEX_MAX);
            memcpy(tmp.certs[i], json_object_get_string(v), n);
        }
    }
    *se = tmp;
    return SW_OK;
}

struct json_object *sw_tp_entry_to_json(const struct sw_tp_entry *e)
{
    char id[SW_UUID_STR_LEN + 1];
    struct json_object *o = json_object_new_object(), *edges = json_object_new_array();
    sw_uuid_format(&e->id, id);
    json_object_object_add(o, "t_id", json_object_new_string(id));
    json_object_array_add(edges, sw_json_pk(&e->edges[0]));
    json_object_array_add(edges, sw_json_pk(&e->edges[1]));
    json_object_object_add(o, "edges", edges);
    json_object_object_add(o, "type", json_object_new_string(e->type));
    json_object_object_add(o, "label", json_object_new_string(e->label));
    return o;
}

struct json_object *sw_tp_signed_entry_to_json(const struct sw_tp_signed_entry *se)
{
    struct json_object *o = json_object_new_object(), *sigs = json_object_new_array();
    char hex[SW_SIG_HEX_LEN + 1];
    json_object_object_add(o, "entry", sw_tp_entry_to_json(&se->entry));
    for (int i = 0; i < 2; i++) {
        sw_sig_to_hex(&se->sigs[i], hex);
        json_object_array_add(sigs, json_object_new_string(hex));
    }
    json_object_object_add(o, "signatures", sigs);
    if (se->certs[0][0] || se->certs[1][0]) {
        struct json_object *certs = json_object_new_array();
        json_object_array_add(certs, json_object_new_string(se->certs[0]));
        json_object_array_add(certs, json_object_new_string(se->certs[1]));
        json_object_object_add(o, "certs", certs);
    }
    return o;
}
