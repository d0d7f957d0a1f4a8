#include "common/socks5.h"

#include "common/bytes.h"
#include "common/err.h"

#include <arpa/inet.h>
#include <string.h>

int sw_socks5_parse_greeting(const uint8_t *buf, size_t len, size_t *used, bool *no_auth)
{
    struct sw_reader r;
    uint8_t ver, n;
    const uint8_t *m;

    sw_reader_init(&r, buf, len);
    if (sw_read_u8(&r, &ver))
        return SW_SOCKS5_MORE;
    if (ver != 5)
        return SW_EPROTO;
    if (sw_read_u8(&r, &n))
        return SW_SOCKS5_MORE;
    if (n == 0)
        return SW_EPROTO;
    if (sw_read_view(&r, &m, n))
        return SW_SOCKS5_MORE;
    *no_auth = memchr(m, 0, n) != NULL;
    *used = r.off;
    return SW_OK;
}

/* atyp | address | port into a; SW_SOCKS5_MORE, SW_EINVAL (*rep says why). */
static int parse_addr(struct sw_reader *r, struct sw_socks5_addr *a, uint8_t *rep)
{
    uint8_t n;
    const uint8_t *p;

    memset(a, 0, sizeof(*a));
    if (sw_read_u8(r, &a->atyp))
        return SW_SOCKS5_MORE;
    switch (a->atyp) {
    case SW_SOCKS5_ATYP_IPV4:
        if (sw_read_bytes(r, a->ip, 4))
            return SW_SOCKS5_MORE;
        inet_ntop(AF_INET, a->ip, a->host, sizeof(a->host));
        break;
    case SW_SOCKS5_ATYP_IPV6:
        if (sw_read_bytes(r, a->ip, 16))
            return SW_SOCKS5_MORE;
        inet_ntop(AF_INET6, a->ip, a->host, sizeof(a->host));
        break;
    case SW_SOCKS5_ATYP_DOMAIN:
        if (sw_read_u8(r, &n))
            return SW_SOCKS5_MORE;
        if (n == 0) {
            *rep = SW_SOCKS5_REP_FAILURE;
            return SW_EINVAL;
        }
        if (sw_read_view(r, &p, n))
            return SW_SOCKS5_MORE;
        if (memchr(p, 0, n)) {
            *rep = SW_SOCKS5_REP_FAILURE;
            return SW_EINVAL;
        }
        memcpy(a->host, p, n);
        a->host[n] = '\0';
        break;
    default:
        *rep = SW_SOCKS5_REP_ATYP_UNSUPPORTED;
        return SW_EINVAL;
    }
    if (sw_read_u16(r, &a->port))
        return SW_SOCKS5_MORE;
    return SW_OK;
}

int sw_socks5_parse_request(const uint8_t *buf, size_t len, size_t *used,
                            struct sw_socks5_request *req, uint8_t *rep)
{
    struct sw_reader r;
    struct sw_socks5_request tmp;
    uint8_t ver, rsv, code = SW_SOCKS5_REP_FAILURE;
    int rc;

    sw_reader_init(&r, buf, len);
    if (sw_read_u8(&r, &ver))
        return SW_SOCKS5_MORE;
    if (ver != 5)
        goto proto;
    if (sw_read_u8(&r, &tmp.cmd) || sw_read_u8(&r, &rsv))
        return SW_SOCKS5_MORE;
    if (rsv != 0)
        goto proto;
    rc = parse_addr(&r, &tmp.dst, &code);
    if (rc) {
        if (rc < 0 && rep)
            *rep = code;
        return rc;
    }
    *req = tmp;
    *used = r.off;
    return SW_OK;
proto:
    if (rep)
        *rep = SW_SOCKS5_REP_FAILURE;
    return SW_EPROTO;
}

size_t sw_socks5_encode_reply(uint8_t rep, uint8_t out[10])
{
    memset(out, 0, 10);
    out[0] = 5;
    out[1] = rep;
    out[3] = SW_SOCKS5_ATYP_IPV4;
    return 10;
}

int sw_socks_hdr_encode(uint8_t *out, size_t cap, size_t *len, const char *passcode,
                        const struct sw_socks5_addr *dst)
{
    struct sw_writer w;
    size_t pl = passcode ? strlen(passcode) : 0, hl;

    if (pl > SW_SOCKS_PASSCODE_MAX)
        return SW_ERANGE;
    sw_writer_init(&w, out, cap);
    sw_write_u8(&w, SW_SOCKS_TUNNEL_VERSION);
    sw_write_u8(&w, (uint8_t)pl);
    sw_write_bytes(&w, passcode ? passcode : "", pl);
    sw_write_u8(&w, dst->atyp);
    switch (dst->atyp) {
    case SW_SOCKS5_ATYP_IPV4:
        sw_write_bytes(&w, dst->ip, 4);
        break;
    case SW_SOCKS5_ATYP_IPV6:
        sw_write_bytes(&w, dst->ip, 16);
        break;
    case SW_SOCKS5_ATYP_DOMAIN:
        hl = strnlen(dst->host, sizeof(dst->host));
        if (hl == 0 || hl > 255)
            return SW_EINVAL;
        sw_write_u8(&w, (uint8_t)hl);
        sw_write_bytes(&w, dst->host, hl);
        break;
    default:
        return SW_EINVAL;
    }
    sw_write_u16(&w, dst->port);
    if (!sw_writer_ok(&w))
        return SW_ERANGE;
    *len = w.len;
    return SW_OK;
}

int sw_socks_hdr_parse(const uint8_t *buf, size_t len, size_t *used,
                       char passcode[SW_SOCKS_PASSCODE_MAX + 1], struct sw_socks5_addr *dst)
{
    struct sw_reader r;
    struct sw_socks5_addr a;
    uint8_t ver, pl, rep;
    const uint8_t *p;
    int rc;

    sw_reader_init(&r, buf, len);
    if (sw_read_u8(&r, &ver))
        return SW_SOCKS5_MORE;
    if (ver != SW_SOCKS_TUNNEL_VERSION)
        return SW_EPROTO;
    if (sw_read_u8(&r, &pl) || sw_read_view(&r, &p, pl))
        return SW_SOCKS5_MORE;
    if (pl && memchr(p, 0, pl))
        return SW_EINVAL;
    if ((rc = parse_addr(&r, &a, &rep)))
        return rc;
    if (pl)
        memcpy(passcode, p, pl);
    passcode[pl] = '\0';
    *dst = a;
    *used = r.off;
    return SW_OK;
}

int sw_socks_status_parse(const uint8_t *buf, size_t len, size_t *used, uint8_t *rep)
{
    if (len >= 1 && buf[0] != SW_SOCKS_TUNNEL_VERSION)
        return SW_EPROTO;
    if (len < 2)
        return SW_SOCKS5_MORE;
    *rep = buf[1];
    *used = 2;
    return SW_OK;
}
