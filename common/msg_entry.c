#include "common/msg_entry.h"
#include "common/bytes.h"
#include "common/hostport.h"
#include "common/json.h"

#include <stdio.h>
#include <string.h>

static const char domain[] = "skywire-msg-entry/1";

size_t sw_msg_entry_canonical(const struct sw_msg_entry *e, uint8_t *out, size_t cap)
{
    struct sw_writer w;
    size_t vlen = strnlen(e->version, SW_MSG_VERSION_MAX);
    size_t alen = strnlen(e->address, SW_MSG_ADDR_MAX);
    uint8_t flags = (uint8_t)((e->has_client ? 1 : 0) | (e->has_server ? 2 : 0));

    if (e->n_delegated > SW_MSG_DELEGATES_MAX)
        return 0;
    sw_writer_init(&w, out, cap);
    sw_write_bytes(&w, domain, sizeof(domain) - 1);
    sw_write_u8(&w, (uint8_t)vlen);
    sw_write_bytes(&w, e->version, vlen);
    sw_write_u64(&w, e->sequence);
    sw_write_u64(&w, e->timestamp);
    sw_write_bytes(&w, e->static_pk.b, SW_PK_LEN);
    sw_write_u8(&w, flags);
    if (e->has_client) {
        sw_write_u8(&w, (uint8_t)e->n_delegated);
        for (size_t i = 0; i < e->n_delegated; i++)
            sw_write_bytes(&w, e->delegated[i].b, SW_PK_LEN);
    }
    if (e->has_server) {
        sw_write_u16(&w, (uint16_t)alen);
        sw_write_bytes(&w, e->address, alen);
        sw_write_u32(&w, e->available_sessions);
    }
    return sw_writer_ok(&w) ? w.len : 0;
}

void sw_msg_entry_sign(struct sw_msg_entry *e, const struct sw_keypair *kp)
{
    uint8_t buf[SW_MSG_CANON_MAX];
    size_t n = sw_msg_entry_canonical(e, buf, sizeof(buf));
    sw_sign(kp, buf, n, &e->signature);
}

int sw_msg_entry_verify(const struct sw_msg_entry *e, struct sw_error *err)
{
    uint8_t buf[SW_MSG_CANON_MAX];
    size_t n;
    if (!e->has_client && !e->has_server)
        return sw_error_set(err, SW_EINVAL, "an entry needs a client or a server part");
    if (e->has_server && sw_hostport_parse(e->address, 0, NULL, 0, NULL))
        return sw_error_set(err, SW_EINVAL, "server.address must be host:port");
    n = sw_msg_entry_canonical(e, buf, sizeof(buf));
    if (n == 0)
        return sw_error_set(err, SW_EINVAL, "entry does not fit the canonical encoding");
    if (sw_verify(&e->static_pk, buf, n, &e->signature))
        return sw_error_set(err, SW_ECRYPTO, "signature is not the static key's signature of the entry");
    return SW_OK;
}

static int parse_client(struct json_object *c, struct sw_msg_entry *e, struct sw_error *err)
{
    struct json_object *arr;
    int rc = sw_json_get_array(c, "delegated_servers", "client", &arr, err);
    if (rc)
        return rc;
    if (json_object_array_length(arr) > SW_MSG_DELEGATES_MAX)
        return sw_error_set(err, SW_EINVAL, "field 'client.delegated_servers' holds more than %d keys",
                            SW_MSG_DELEGATES_MAX);
    e->n_delegated = json_object_array_length(arr);
    for (size_t i = 0; i < e->n_delegated; i++) {
        struct json_object *v = json_object_array_get_idx(arr, i);
        char name[64];
        snprintf(name, sizeof(name), "client.delegated_servers[%zu]", i);
        if (!json_object_is_type(v, json_type_string))
            return sw_error_set(err, SW_EINVAL, "%s: a public key must be a string", name);
        if ((rc = sw_pk_from_hex(&e->delegated[i], json_object_get_string(v), name, err)))
            return rc;
    }
    e->has_client = true;
    return SW_OK;
}

static int parse_server(struct json_object *s, struct sw_msg_entry *e, struct sw_error *err)
{
    const char *addr;
    uint64_t sessions;
    int rc;
    if ((rc = sw_json_get_string(s, "address", "server", SW_MSG_ADDR_MAX, &addr, err)) ||
        (rc = sw_json_get_u64(s, "available_sessions", "server", &sessions, err)))
        return rc;
    if (sessions > UINT32_MAX)
        return sw_error_set(err, SW_EINVAL, "field 'server.available_sessions' is too large");
    if (sw_hostport_parse(addr, 0, NULL, 0, NULL))
        return sw_error_set(err, SW_EINVAL, "field 'server.address' must be host:port");
    memcpy(e->address, addr, strlen(addr) + 1);
    e->available_sessions = (uint32_t)sessions;
    e->has_server = true;
    return SW_OK;
}

int sw_msg_entry_from_json(struct json_object *obj, struct sw_msg_entry *e, struct sw_error *err)
{
    struct sw_msg_entry tmp;
    struct json_object *part;
    const char *version;
    int rc;

    memset(&tmp, 0, sizeof(tmp));
    if ((rc = sw_json_get_string(obj, "version", "", SW_MSG_VERSION_MAX, &version, err)) ||
        (rc = sw_json_get_u64(obj, "sequence", "", &tmp.sequence, err)) ||
        (rc = sw_json_get_u64(obj, "timestamp", "", &tmp.timestamp, err)) ||
        (rc = sw_json_get_pk(obj, "static", "", &tmp.static_pk, err)))
        return rc;
    memcpy(tmp.version, version, strlen(version) + 1);
    if (json_object_object_get_ex(obj, "client", &part) && !json_object_is_type(part, json_type_null)) {
        if ((rc = sw_json_get_object(obj, "client", "", &part, err)) || (rc = parse_client(part, &tmp, err)))
            return rc;
    }
    if (json_object_object_get_ex(obj, "server", &part) && !json_object_is_type(part, json_type_null)) {
        if ((rc = sw_json_get_object(obj, "server", "", &part, err)) || (rc = parse_server(part, &tmp, err)))
            return rc;
    }
    if (!tmp.has_client && !tmp.has_server)
        return sw_error_set(err, SW_EINVAL, "an entry needs a 'client' or a 'server' object");
    {
        const char *sig;
        if ((rc = sw_json_get_string(obj, "signature", "", SW_SIG_HEX_LEN, &sig, err)) ||
            (rc = sw_sig_from_hex(&tmp.signature, sig, "signature", err)))
            return rc;
    }
    *e = tmp;
    return SW_OK;
}

struct json_object *sw_msg_entry_to_json(const struct sw_msg_entry *e)
{
    struct json_object *o = json_object_new_object();
    char sig[SW_SIG_HEX_LEN + 1];
    json_object_object_add(o, "version", json_object_new_string(e->version));
    json_object_object_add(o, "sequence", json_object_new_uint64(e->sequence));
    json_object_object_add(o, "timestamp", json_object_new_uint64(e->timestamp));
    json_object_object_add(o, "static", sw_json_pk(&e->static_pk));
    if (e->has_client) {
        struct json_object *c = json_object_new_object(), *arr = json_object_new_array();
        for (size_t i = 0; i < e->n_delegated; i++)
            json_object_array_add(arr, sw_json_pk(&e->delegated[i]));
        json_object_object_add(c, "delegated_servers", arr);
        json_object_object_add(o, "client", c);
    }
    if (e->has_server) {
        struct json_object *s = json_object_new_object();
        json_object_object_add(s, "address", json_object_new_string(e->address));
        json_object_object_add(s, "available_sessions", json_object_new_int64(e->available_sessions));
        json_object_object_add(o, "server", s);
    }
    sw_sig_to_hex(&e->signature, sig);
    json_object_object_add(o, "signature", json_object_new_string(sig));
    return o;
}
