/* hv_chan.c — the Noise channel of the hypervisor link on a blocking socket (hv_chan.h). */
#include "common/hv_chan.h"
#include "common/clock.h"
#include "common/stream_io.h"

#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int sw_hv_chan_init(struct sw_hv_chan *c, int fd)
{
    memset(c, 0, sizeof(*c));
    c->fd = fd;
    c->send_timeout_ms = SW_HV_SEND_TIMEOUT_MS;
    sw_frame_reader_init(&c->fr, 0);
    sw_buf_init(&c->in, SW_HV_RECORD_HDR + SW_HV_MAX_RECORD + SW_FRAME_MAX);
    if (pthread_mutex_init(&c->wmu, NULL)) {
        close(fd);
        c->fd = -1;
        return SW_ENOMEM;
    }
    return SW_OK;
}

/* Next frame body (borrowed from c->fr) within the deadline. */
static int read_frame(struct sw_hv_chan *c, int64_t deadline, const uint8_t **frame, size_t *len)
{
    size_t used;
    int rc;

    for (;;) {
        while (c->raw_off < c->raw_len) {
            rc = sw_frame_reader_feed(&c->fr, c->raw + c->raw_off, c->raw_len - c->raw_off, &used,
                                      frame, len);
            if (rc)
                return SW_EPROTO;
            c->raw_off += used;
            if (*frame)
                return SW_OK;
        }
        c->raw_off = c->raw_len = 0;
        rc = sw_io_read_some(c->fd, c->raw, sizeof(c->raw), (struct sw_io_limit){ .deadline = deadline },
                             &c->raw_len);
        if (rc)
            return rc == SW_ENOTFOUND ? SW_EIO : rc;
    }
}

static int send_hs(struct sw_hv_chan *c, struct sw_noise_hs *hs, const uint8_t *payload, size_t plen,
                   int64_t deadline)
{
    uint8_t buf[SW_FRAME_HDR_LEN + SW_HV_HS_FRAME_MAX];
    size_t n = 0;
    int rc = sw_noise_hs_write_message(hs, payload, plen, buf + SW_FRAME_HDR_LEN,
                                       SW_HV_HS_FRAME_MAX, &n);
    if (rc == SW_OK)
        rc = sw_frame_header(buf, n);
    if (rc)
        return rc;
    return sw_io_write_all(c->fd, buf, n + SW_FRAME_HDR_LEN, (struct sw_io_limit){ .deadline = deadline });
}

static int recv_hs(struct sw_hv_chan *c, struct sw_noise_hs *hs, int64_t deadline,
                   uint8_t *payload, size_t cap, size_t *plen)
{
    const uint8_t *f;
    size_t n;
    int rc = read_frame(c, deadline, &f, &n);

    if (rc)
        return rc;
    if (n > SW_HV_HS_FRAME_MAX)
        return SW_EPROTO;
    return sw_noise_hs_read_message(hs, f, n, payload, cap, plen);
}

static int hs_steps(struct sw_hv_chan *c, struct sw_noise_hs *hs, bool initiator,
                    const struct sw_keypair *kp, int64_t deadline)
{
    uint8_t payload[64];
    size_t plen = 0;
    int rc;

    if (initiator) {
        if ((rc = send_hs(c, hs, NULL, 0, deadline)) ||
            (rc = recv_hs(c, hs, deadline, payload, sizeof(payload), &plen)))
            return rc;
        return send_hs(c, hs, kp->pk.b, SW_PK_LEN, deadline);
    }
    if ((rc = recv_hs(c, hs, deadline, payload, sizeof(payload), &plen)) ||
        (rc = send_hs(c, hs, NULL, 0, deadline)) ||
        (rc = recv_hs(c, hs, deadline, payload, sizeof(payload), &plen)))
        return rc;
    return sw_noise_check_ed25519_payload(hs, payload, plen, &c->peer);
}

int sw_hv_chan_handshake(struct sw_hv_chan *c, bool initiator, const struct sw_keypair *kp,
                         const struct sw_pk *remote, int timeout_ms, struct sw_error *err)
{
    struct sw_noise_hs hs;
    int rc = sw_noise_hs_init_ed25519(&hs, SW_NOISE_XK, initiator ? SW_NOISE_INITIATOR : SW_NOISE_RESPONDER,
                                      SW_HV_PROLOGUE, kp, initiator ? remote : NULL);

    if (rc) {
        sw_error_set(err, rc, "handshake init failed (the key does not convert to X25519)");
        goto out;
    }
    rc = hs_steps(c, &hs, initiator, kp, sw_deadline_ms(timeout_ms));
    if (rc == SW_OK && (!sw_noise_hs_finished(&hs) || sw_noise_hs_split(&hs, &c->tx, &c->rx)))
        rc = SW_EPROTO;
    if (rc == SW_ETIMEDOUT)
        sw_error_set(err, rc, "handshake timed out");
    else if (rc == SW_EIO)
        sw_error_set(err, rc, "connection closed during the handshake%s",
                     initiator ? " (the peer has another key, or refused ours)" : "");
    else if (rc)
        sw_error_set(err, rc, "handshake failed: %s", sw_strerror(rc));
out:
    sw_noise_hs_wipe(&hs);
    return rc;
}

/* One deadline for the whole record: a peer that reads a byte now and then cannot hold the
 * writer (and the send mutex) for longer (SO_SNDTIMEO would restart on every byte). */
static int send_record(struct sw_hv_chan *c, const uint8_t *p, size_t n)
{
    uint8_t frame[SW_FRAME_HDR_LEN + SW_FRAME_MAX];
    struct sw_io_limit lim = sw_io_within(c->send_timeout_ms, NULL);
    int rc = SW_OK;

    while (n && rc == SW_OK) {
        size_t chunk = n > SW_NOISE_MAX_PAYLOAD ? SW_NOISE_MAX_PAYLOAD : n;
        if ((rc = sw_noise_encrypt(&c->tx, NULL, 0, p, chunk, frame + SW_FRAME_HDR_LEN)) ||
            (rc = sw_frame_header(frame, chunk + SW_NOISE_TAG)))
            break;
        rc = sw_io_write_all(c->fd, frame, SW_FRAME_HDR_LEN + chunk + SW_NOISE_TAG, lim);
        p += chunk;
        n -= chunk;
    }
    return rc;
}

int sw_hv_chan_send(struct sw_hv_chan *c, const struct sw_hv_msg *m)
{
    struct sw_buf b;
    int rc;

    sw_buf_init(&b, SW_HV_MAX_RECORD + SW_HV_RECORD_HDR);
    if ((rc = sw_hv_msg_encode(m, &b)))
        goto out;
    pthread_mutex_lock(&c->wmu);
    rc = send_record(c, (const uint8_t *)b.data, b.len);
    pthread_mutex_unlock(&c->wmu);
out:
    sw_buf_free(&b);
    return rc;
}

/* A whole record at the front of c->in: decodes it. *got false when more bytes are needed. */
static int take_record(struct sw_hv_chan *c, struct sw_hv_msg *m, bool *got)
{
    const uint8_t *msg = NULL;
    size_t len = 0, used = 0;
    int rc = sw_hv_record_peek((const uint8_t *)c->in.data, c->in.len, &msg, &len, &used);

    *got = false;
    if (rc || used == 0)
        return rc;
    if (sw_hv_msg_decode(msg, len, m))
        return SW_EPROTO;
    c->in_used = used;
    *got = true;
    return SW_OK;
}

int sw_hv_chan_recv(struct sw_hv_chan *c, int timeout_ms, struct sw_hv_msg *m)
{
    int64_t deadline = sw_deadline_ms(timeout_ms);
    uint8_t pt[SW_FRAME_MAX];
    const uint8_t *f;
    size_t n;
    bool got;
    int rc;

    if (c->in_used) { /* drop the record handed out last time */
        memmove(c->in.data, c->in.data + c->in_used, c->in.len - c->in_used);
        c->in.len -= c->in_used;
        c->in_used = 0;
    }
    for (;;) {
        if ((rc = take_record(c, m, &got)) || got)
            return rc;
        if ((rc = read_frame(c, deadline, &f, &n)))
            return rc;
        if (n < SW_NOISE_TAG + 1 || sw_noise_decrypt(&c->rx, NULL, 0, f, n, pt))
            return SW_ECRYPTO;
        if (sw_buf_append(&c->in, pt, n - SW_NOISE_TAG))
            return SW_EPROTO;
    }
}

void sw_hv_chan_shutdown(struct sw_hv_chan *c)
{
    if (c->fd >= 0)
        shutdown(c->fd, SHUT_RDWR);
}

void sw_hv_chan_destroy(struct sw_hv_chan *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    pthread_mutex_destroy(&c->wmu);
    sw_buf_free(&c->in);
    sw_noise_cipher_wipe(&c->tx);
    sw_noise_cipher_wipe(&c->rx);
}
