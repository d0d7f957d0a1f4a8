/* proto.c — encode/decode of the SSH apps' frames and local messages (proto.h). */
#include "apps/ssh/proto.h"

#include "common/bytes.h"
#include "common/err.h"

#include <string.h>

/* Allowed payload lengths per type; false for an unknown type. */
static bool type_limits(uint8_t type, size_t *min, size_t *max)
{
    switch (type) {
    case SSH_F_REQUEST:
        *min = 7;
        *max = 7 + SSH_TERM_MAX + SSH_CMD_MAX;
        return true;
    case SSH_F_STDIN:
    case SSH_F_STDOUT:
    case SSH_F_STDERR:
        *min = 1;
        *max = SSH_FRAME_MAX;
        return true;
    case SSH_F_STDIN_EOF:
        *min = *max = 0;
        return true;
    case SSH_F_RESIZE:
    case SSH_F_ACK:
        *min = *max = 4;
        return true;
    case SSH_F_EXIT:
        *min = *max = 2;
        return true;
    case SSH_F_ERROR:
        *min = 1;
        *max = SSH_ERRTEXT_MAX;
        return true;
    default:
        return false;
    }
}

int ssh_frame_parse(const uint8_t *buf, size_t len, size_t *used, struct ssh_frame *f)
{
    struct sw_reader r;
    uint8_t type;
    uint32_t n;
    size_t min, max;
    const uint8_t *p;

    sw_reader_init(&r, buf, len);
    if (sw_read_u8(&r, &type) || sw_read_u32(&r, &n))
        return SSH_MORE;
    if (!type_limits(type, &min, &max))
        return SW_EINVAL;
    if (n > SSH_FRAME_MAX)
        return SW_ERANGE;
    if (n < min || n > max)
        return SW_EPROTO;
    if (sw_read_view(&r, &p, n))
        return SSH_MORE;
    f->type = type;
    f->data = p;
    f->len = n;
    *used = SSH_HDR_LEN + n;
    return SW_OK;
}

int ssh_frame_encode(uint8_t *out, size_t cap, size_t *len, uint8_t type, const void *data,
                     size_t n)
{
    struct sw_writer w;

    if (n > SSH_FRAME_MAX)
        return SW_ERANGE;
    sw_writer_init(&w, out, cap);
    sw_write_u8(&w, type);
    sw_write_u32(&w, (uint32_t)n);
    sw_write_bytes(&w, data, n);
    if (!sw_writer_ok(&w))
        return SW_ERANGE;
    *len = w.len;
    return SW_OK;
}

static bool term_ok(const uint8_t *t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t c = t[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && c != '.' && c != '_' && c != '+' && c != '-')
            return false;
    }
    return true;
}

static bool dims_ok(uint16_t rows, uint16_t cols)
{
    return rows >= 1 && rows <= SSH_DIM_MAX && cols >= 1 && cols <= SSH_DIM_MAX;
}

/* The mode-dependent rules shared by parse and encode. */
static bool request_ok(uint8_t mode, uint16_t rows, uint16_t cols, const uint8_t *cmd, size_t n)
{
    if (mode == SSH_MODE_SHELL)
        return n == 0 && dims_ok(rows, cols);
    if (mode == SSH_MODE_EXEC)
        return n >= 1 && n <= SSH_CMD_MAX && !memchr(cmd, '\0', n);
    return false;
}

int ssh_request_parse(const struct ssh_frame *f, struct ssh_request *out)
{
    struct sw_reader r;
    uint8_t ver, mode, tl;
    uint16_t rows, cols;
    const uint8_t *term, *cmd;
    size_t n;

    if (f->type != SSH_F_REQUEST)
        return SW_EPROTO;
    sw_reader_init(&r, f->data, f->len);
    sw_read_u8(&r, &ver);
    sw_read_u8(&r, &mode);
    sw_read_u16(&r, &rows);
    sw_read_u16(&r, &cols);
    sw_read_u8(&r, &tl);
    if (!sw_reader_ok(&r) || ver != SSH_PROTO_VERSION || tl > SSH_TERM_MAX ||
        sw_read_view(&r, &term, tl) || !term_ok(term, tl))
        return SW_EINVAL;
    n = sw_reader_remaining(&r);
    if (sw_read_view(&r, &cmd, n) || !request_ok(mode, rows, cols, cmd, n))
        return SW_EINVAL;
    out->mode = mode;
    out->rows = mode == SSH_MODE_SHELL ? rows : 0;
    out->cols = mode == SSH_MODE_SHELL ? cols : 0;
    memcpy(out->term, term, tl);
    out->term[tl] = '\0';
    memcpy(out->cmd, cmd, n);
    out->cmd[n] = '\0';
    return SW_OK;
}

int ssh_request_encode(uint8_t *out, size_t cap, size_t *len, const struct ssh_request *r)
{
    uint8_t p[7 + SSH_TERM_MAX + SSH_CMD_MAX];
    size_t tl = strnlen(r->term, SSH_TERM_MAX + 1), n = strnlen(r->cmd, SSH_CMD_MAX + 1);
    struct sw_writer w;

    if (tl > SSH_TERM_MAX || !term_ok((const uint8_t *)r->term, tl) ||
        !request_ok(r->mode, r->rows, r->cols, (const uint8_t *)r->cmd, n))
        return SW_EINVAL;
    sw_writer_init(&w, p, sizeof(p));
    sw_write_u8(&w, SSH_PROTO_VERSION);
    sw_write_u8(&w, r->mode);
    sw_write_u16(&w, r->mode == SSH_MODE_SHELL ? r->rows : 0);
    sw_write_u16(&w, r->mode == SSH_MODE_SHELL ? r->cols : 0);
    sw_write_u8(&w, (uint8_t)tl);
    sw_write_bytes(&w, r->term, tl);
    sw_write_bytes(&w, r->cmd, n);
    if (!sw_writer_ok(&w))
        return SW_EINVAL;
    return ssh_frame_encode(out, cap, len, SSH_F_REQUEST, p, w.len);
}

int ssh_resize_parse(const struct ssh_frame *f, uint16_t *rows, uint16_t *cols)
{
    struct sw_reader r;
    uint16_t a, b;

    if (f->type != SSH_F_RESIZE)
        return SW_EPROTO;
    sw_reader_init(&r, f->data, f->len);
    sw_read_u16(&r, &a);
    sw_read_u16(&r, &b);
    if (!sw_reader_done(&r) || !dims_ok(a, b))
        return SW_EINVAL;
    *rows = a;
    *cols = b;
    return SW_OK;
}

int ssh_ack_parse(const struct ssh_frame *f, uint32_t *n)
{
    struct sw_reader r;
    uint32_t v;

    if (f->type != SSH_F_ACK)
        return SW_EPROTO;
    sw_reader_init(&r, f->data, f->len);
    sw_read_u32(&r, &v);
    if (!sw_reader_done(&r) || v == 0 || v > SSH_WINDOW + SSH_FRAME_MAX)
        return SW_EINVAL;
    *n = v;
    return SW_OK;
}

int ssh_exit_parse(const struct ssh_frame *f, uint8_t *kind, uint8_t *value)
{
    struct sw_reader r;
    uint8_t k, v;

    if (f->type != SSH_F_EXIT)
        return SW_EPROTO;
    sw_reader_init(&r, f->data, f->len);
    sw_read_u8(&r, &k);
    sw_read_u8(&r, &v);
    if (!sw_reader_done(&r) || k > SSH_EXIT_SIGNAL || (k == SSH_EXIT_SIGNAL && (v == 0 || v > 127)))
        return SW_EINVAL;
    *kind = k;
    *value = v;
    return SW_OK;
}

/* Copies n bytes as printable ASCII ('?' for anything else) so a peer's text cannot drive
 * the user's terminal. */
static void copy_printable(char *dst, const uint8_t *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = src[i] >= 0x20 && src[i] < 0x7f ? (char)src[i] : '?';
    dst[n] = '\0';
}

int ssh_error_parse(const struct ssh_frame *f, char text[SSH_ERRTEXT_MAX + 1])
{
    if (f->type != SSH_F_ERROR)
        return SW_EPROTO;
    if (f->len < 1 || f->len > SSH_ERRTEXT_MAX)
        return SW_EINVAL;
    copy_printable(text, f->data, f->len);
    return SW_OK;
}

void ssh_u16pair_put(uint8_t out[4], uint16_t a, uint16_t b)
{
    sw_put_u16(out, a);
    sw_put_u16(out + 2, b);
}

int ssh_local_req_parse(const uint8_t *buf, size_t len, struct sw_pk *pk, uint16_t *port)
{
    struct sw_reader r;
    uint8_t ver;
    struct sw_pk k;
    uint16_t p;

    sw_reader_init(&r, buf, len);
    sw_read_u8(&r, &ver);
    sw_read_bytes(&r, k.b, SW_PK_LEN);
    sw_read_u16(&r, &p);
    if (!sw_reader_done(&r) || ver != SSH_LOCAL_VERSION || p == 0)
        return SW_EPROTO;
    *pk = k;
    *port = p;
    return SW_OK;
}

void ssh_local_req_encode(uint8_t out[SSH_LOCAL_REQ_LEN], const struct sw_pk *pk, uint16_t port)
{
    out[0] = SSH_LOCAL_VERSION;
    memcpy(out + 1, pk->b, SW_PK_LEN);
    sw_put_u16(out + 1 + SW_PK_LEN, port);
}

int ssh_local_resp_parse(const uint8_t *buf, size_t len, bool *ok,
                         char text[SSH_ERRTEXT_MAX + 1])
{
    struct sw_reader r;
    uint8_t st;
    const uint8_t *t;
    size_t n;

    sw_reader_init(&r, buf, len);
    if (sw_read_u8(&r, &st) || st > 1)
        return SW_EPROTO;
    n = sw_reader_remaining(&r);
    if ((st == 0 && n != 0) || (st == 1 && (n < 1 || n > SSH_ERRTEXT_MAX)) ||
        sw_read_view(&r, &t, n))
        return SW_EPROTO;
    *ok = st == 0;
    copy_printable(text, t, n);
    return SW_OK;
}
