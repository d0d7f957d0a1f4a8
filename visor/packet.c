/* packet.c — framing, handshake steps and transport packets as pure functions over the
 * bytes a peer sent (see packet.h). Every read goes through struct sw_reader. */
#include "visor/packet.h"
#include "common/bytes.h"
#include "common/frame.h"

#include <string.h>

int visor_frame_peek(const uint8_t *buf, size_t have, size_t max, size_t *body_len,
                     struct sw_error *err)
{
    struct sw_reader r;
    uint16_t n;

    if (max == 0 || max > SW_FRAME_MAX)
        max = SW_FRAME_MAX;
    sw_reader_init(&r, buf, have < SW_FRAME_HDR_LEN ? have : SW_FRAME_HDR_LEN);
    if (sw_read_u16(&r, &n) != SW_OK) {
        *body_len = 0; /* not even the header yet */
        return SW_OK;
    }
    if (n == 0 || n > max)
        return sw_error_set(err, SW_EPROTO, "frame length %u (allowed 1..%zu)", (unsigned)n, max);
    *body_len = have - SW_FRAME_HDR_LEN >= n ? n : 0;
    return SW_OK;
}

/* Fails the handshake: hs is wiped so nothing can continue it. */
static int hs_fail(struct sw_noise_hs *hs, struct sw_error *err, int code, const char *what,
                   unsigned idx)
{
    sw_noise_hs_wipe(hs);
    if (idx)
        return sw_error_set(err, code, "handshake message %u %s: %s", idx, what, sw_strerror(code));
    return sw_error_set(err, code, "%s", what);
}

#define VISOR_ROLE_MASK SW_ROLE_BIT(SW_ROLE_VISOR) /* transports are between visors only */

int visor_hs_read(struct sw_noise_hs *hs, const struct sw_pk *local_pk, struct sw_network *net,
                  const uint8_t *msg, size_t len, uint8_t *reply, size_t cap, size_t *reply_len,
                  bool *done, struct sw_pk *remote, struct sw_cert *peer, struct sw_error *err)
{
    uint8_t payload[VISOR_HS_FRAME_MAX], out[SW_PK_LEN + SW_CERT_MAX_LEN];
    size_t plen = 0, n = 0, own_len = 0;
    const uint8_t *own = sw_network_own_cert(net, &own_len);
    bool initiator = hs->role == SW_NOISE_INITIATOR; /* noise.h keeps no accessor for it */
    /* which message this is, for the log: the initiator only ever reads message 2 */
    unsigned idx = initiator ? 2 : sw_noise_hs_overhead(hs) == SW_NOISE_XK_MSG3_LEN ? 3 : 1;
    struct sw_cert c;
    struct sw_error e = { 0 };
    struct sw_pk id;
    int rc;

    if (own_len > SW_CERT_MAX_LEN)
        return hs_fail(hs, err, SW_EINVAL, "our own certificate is too long", 0);
    if (sw_noise_hs_my_turn(hs))
        return hs_fail(hs, err, SW_EPROTO, "protocol error: handshake message out of turn", 0);
    rc = sw_noise_hs_read_message(hs, msg, len, payload, sizeof(payload), &plen);
    if (rc == SW_ECRYPTO && idx == 1)
        return hs_fail(hs, err, rc,
                       "handshake message 1 does not authenticate: the dialer expects another key", 0);
    if (rc)
        return hs_fail(hs, err, rc, "rejected", idx);
    memset(&c, 0, sizeof(c));
    if (initiator) { /* got message 2 (the responder's certificate): answer with 3, our identity */
        if (net && sw_network_admit(net, remote, payload, plen, VISOR_ROLE_MASK, &c, &e)) {
            sw_noise_hs_wipe(hs);
            return sw_error_set(err, SW_EPERM, "refused the peer: %s", e.msg);
        }
        memcpy(out, local_pk->b, SW_PK_LEN);
        if (own_len)
            memcpy(out + SW_PK_LEN, own, own_len);
        if ((rc = sw_noise_hs_write_message(hs, out, SW_PK_LEN + own_len, reply, cap, &n)))
            return hs_fail(hs, err, rc, "failed", 3);
        *reply_len = n;
        *done = true;
        *peer = c;
        return SW_OK;
    }
    if (!sw_noise_hs_finished(hs)) { /* got message 1: answer with 2, our certificate */
        if ((rc = sw_noise_hs_write_message(hs, own, own_len, reply, cap, &n)))
            return hs_fail(hs, err, rc, "failed", 2);
        *reply_len = n;
        *done = false;
        return SW_OK;
    }
    /* got message 3: its payload starts with the Ed25519 key of the static key it proved */
    if (sw_noise_check_ed25519_payload(hs, payload, plen, &id))
        return hs_fail(hs, err, SW_ECRYPTO,
                       "handshake message 3: the identity does not match the static key", 0);
    *reply_len = 0;
    *done = true;
    *remote = id;
    if (net && sw_network_admit(net, &id, payload + SW_PK_LEN, plen - SW_PK_LEN, VISOR_ROLE_MASK,
                                &c, &e))
        return sw_error_set(err, SW_EPERM, "%s", e.msg); /* hs stays finished: see packet.h */
    *peer = c;
    return SW_OK;
}

int visor_packet_parse(const uint8_t *pkt, size_t len, struct visor_packet *out, struct sw_error *err)
{
    struct visor_packet p;
    struct sw_reader r;

    if (len == 0)
        return sw_error_set(err, SW_EPROTO, "empty packet");
    if (len > VISOR_TP_PKT_MAX)
        return sw_error_set(err, SW_EPROTO, "packet of %zu bytes (at most %zu)", len,
                            (size_t)VISOR_TP_PKT_MAX);
    memset(&p, 0, sizeof(p));
    sw_reader_init(&r, pkt, len);
    sw_read_u8(&r, &p.type);
    p.body_len = sw_reader_remaining(&r);
    p.body = p.body_len ? pkt + 1 : NULL;
    p.known = true;
    switch (p.type) {
    case VISOR_TP_PKT_ENTRY_SIG:
        sw_read_view(&r, &p.sig, SW_SIG_LEN);
        break;
    case VISOR_TP_PKT_PING:
    case VISOR_TP_PKT_PONG:
        sw_read_u64(&r, &p.token);
        break;
    case VISOR_TP_PKT_CLOSE:
        sw_read_u8(&r, &p.reason);
        break;
    case VISOR_TP_PKT_CERT:
        if (p.body_len < SW_CERT_MIN_LEN || p.body_len > SW_CERT_MAX_LEN)
            return sw_error_set(err, SW_EPROTO, "packet type 0x%02x with a %zu-byte body", p.type,
                                p.body_len);
        sw_read_skip(&r, p.body_len);
        break;
    case VISOR_TP_PKT_REFUSE:
        if (p.body_len < 1 || p.body_len > VISOR_REFUSE_TEXT_MAX)
            return sw_error_set(err, SW_EPROTO, "packet type 0x%02x with a %zu-byte body", p.type,
                                p.body_len);
        sw_read_skip(&r, p.body_len);
        break;
    default: /* DISCARD, routing packets (the router checks them) and unknown types */
        p.known = p.type == VISOR_TP_PKT_DISCARD;
        sw_read_skip(&r, p.body_len);
        break;
    }
    if (!sw_reader_done(&r))
        return sw_error_set(err, SW_EPROTO, "packet type 0x%02x with a %zu-byte body", p.type,
                            p.body_len);
    *out = p;
    return SW_OK;
}
