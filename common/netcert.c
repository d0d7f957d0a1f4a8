/* netcert.c — see netcert.h; layouts in docs/wire-formats.md "Membership certificate" and
 * "Revocation list". */
#include "common/netcert.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/bytes.h"
#include "common/fs.h"
#include "common/hex.h"

/* Domain separation: a network key's signature over one kind of record never verifies as
 * another kind (or as a signed HTTP request, whose bytes begin with a method). */
#define CERT_CONTEXT "skywire-cert/1"
#define REVLIST_CONTEXT "skywire-revocations/1"
#define CERT_FILE_MAX 4096

static const char *const role_names[] = {
    [SW_ROLE_VISOR] = "visor",
    [SW_ROLE_MESSAGING_SERVER] = "messaging-server",
    [SW_ROLE_SETUP_NODE] = "setup-node",
    [SW_ROLE_SERVICE] = "service",
};

const char *sw_role_name(unsigned role)
{
    if (role >= SW_ROLE_VISOR && role <= SW_ROLE_SERVICE)
        return role_names[role];
    return "unknown";
}

int sw_role_parse(const char *s, unsigned *role, struct sw_error *err)
{
    for (unsigned r = SW_ROLE_VISOR; r <= SW_ROLE_SERVICE; r++)
        if (s && strcmp(s, role_names[r]) == 0) {
            *role = r;
            return SW_OK;
        }
    return sw_error_set(err, SW_EINVAL,
                        "role '%s': expected visor, messaging-server, setup-node or service",
                        s ? s : "");
}

void sw_roles_describe(unsigned mask, char *out, size_t cap)
{
    size_t n = 0;
    unsigned seen = 0, total = 0;
    if (cap == 0)
        return;
    out[0] = '\0';
    for (unsigned r = SW_ROLE_VISOR; r <= SW_ROLE_SERVICE; r++)
        total += (mask & SW_ROLE_BIT(r)) != 0;
    for (unsigned r = SW_ROLE_VISOR; r <= SW_ROLE_SERVICE && n < cap; r++) {
        if (!(mask & SW_ROLE_BIT(r)))
            continue;
        seen++;
        int w = snprintf(out + n, cap - n, "%s%s", seen == 1 ? "" : seen == total ? " or " : ", ",
                         role_names[r]);
        if (w < 0)
            return;
        n += (size_t)w;
    }
}

/* ---- certificates ------------------------------------------------------------------------ */

static bool name_char_ok(char c)
{
    return isalnum((unsigned char)c) || c == '.' || c == '_' || c == '-';
}

static bool group_char_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

int sw_cert_check_fields(const struct sw_cert *c, struct sw_error *err)
{
    size_t nl = strnlen(c->name, sizeof(c->name)), gl = strnlen(c->groups, sizeof(c->groups));
    if (c->role < SW_ROLE_VISOR || c->role > SW_ROLE_SERVICE)
        return sw_error_set(err, SW_EINVAL, "certificate: unknown role %u", c->role);
    if (nl > SW_CERT_NAME_MAX)
        return sw_error_set(err, SW_EINVAL, "certificate: name longer than %d", SW_CERT_NAME_MAX);
    for (size_t i = 0; i < nl; i++)
        if (!name_char_ok(c->name[i]))
            return sw_error_set(err, SW_EINVAL,
                                "certificate: name may hold only letters, digits, '.', '_', '-'");
    if (gl > SW_CERT_GROUPS_MAX)
        return sw_error_set(err, SW_EINVAL, "certificate: groups longer than %d",
                            SW_CERT_GROUPS_MAX);
    for (size_t i = 0; i < gl; i++) {
        char ch = c->groups[i];
        bool edge = i == 0 || i + 1 == gl;
        if (ch == ',' && !edge && c->groups[i + 1] != ',')
            continue;
        if (!group_char_ok(ch))
            return sw_error_set(err, SW_EINVAL,
                                "certificate: groups are comma-separated names of a-z, 0-9, '_', '-'");
    }
    if (c->not_after <= c->not_before)
        return sw_error_set(err, SW_EINVAL, "certificate: not_after is not after not_before");
    return SW_OK;
}

/* The signed part (everything but the signature) into w. */
static void write_body(struct sw_writer *w, const struct sw_cert *c)
{
    size_t nl = strnlen(c->name, sizeof(c->name)), gl = strnlen(c->groups, sizeof(c->groups));
    sw_write_u8(w, c->version);
    sw_write_u8(w, c->role);
    sw_write_bytes(w, c->network.b, SW_PK_LEN);
    sw_write_bytes(w, c->subject.b, SW_PK_LEN);
    sw_write_u64(w, c->not_before);
    sw_write_u64(w, c->not_after);
    sw_write_u8(w, (uint8_t)nl);
    sw_write_bytes(w, c->name, nl);
    sw_write_u8(w, (uint8_t)gl);
    sw_write_bytes(w, c->groups, gl);
}

/* context || body: what the network key signs. */
static size_t signed_bytes(const struct sw_cert *c, uint8_t *out, size_t cap)
{
    struct sw_writer w;
    sw_writer_init(&w, out, cap);
    sw_write_bytes(&w, CERT_CONTEXT, strlen(CERT_CONTEXT));
    write_body(&w, c);
    return sw_writer_ok(&w) ? w.len : 0;
}

int sw_cert_sign(struct sw_cert *c, const struct sw_keypair *network, struct sw_error *err)
{
    uint8_t msg[sizeof(CERT_CONTEXT) + SW_CERT_MAX_LEN];
    size_t n;
    int rc;
    c->version = SW_CERT_VERSION;
    c->network = network->pk;
    if ((rc = sw_cert_check_fields(c, err)))
        return rc;
    if (!(n = signed_bytes(c, msg, sizeof(msg))))
        return sw_error_set(err, SW_ERANGE, "certificate too large");
    sw_sign(network, msg, n, &c->sig);
    return SW_OK;
}

int sw_cert_encode(const struct sw_cert *c, uint8_t *out, size_t cap, size_t *len)
{
    struct sw_writer w;
    sw_writer_init(&w, out, cap);
    write_body(&w, c);
    sw_write_bytes(&w, c->sig.b, SW_SIG_LEN);
    if (!sw_writer_ok(&w))
        return SW_ERANGE;
    *len = w.len;
    return SW_OK;
}

int sw_cert_parse(const uint8_t *b, size_t len, struct sw_cert *out, struct sw_error *err)
{
    struct sw_cert c;
    struct sw_reader r;
    uint8_t nl = 0, gl = 0;
    int rc;

    if (len < SW_CERT_MIN_LEN || len > SW_CERT_MAX_LEN)
        return sw_error_set(err, SW_EINVAL, "certificate of %zu bytes (expected %d to %d)", len,
                            SW_CERT_MIN_LEN, SW_CERT_MAX_LEN);
    memset(&c, 0, sizeof(c));
    sw_reader_init(&r, b, len);
    sw_read_u8(&r, &c.version);
    if (c.version != SW_CERT_VERSION)
        return sw_error_set(err, SW_EINVAL, "certificate version %u (this build reads %d)",
                            c.version, SW_CERT_VERSION);
    sw_read_u8(&r, &c.role);
    sw_read_bytes(&r, c.network.b, SW_PK_LEN);
    sw_read_bytes(&r, c.subject.b, SW_PK_LEN);
    sw_read_u64(&r, &c.not_before);
    sw_read_u64(&r, &c.not_after);
    sw_read_u8(&r, &nl);
    if (nl > SW_CERT_NAME_MAX)
        return sw_error_set(err, SW_EINVAL, "certificate: name of %u bytes (at most %d)", nl,
                            SW_CERT_NAME_MAX);
    sw_read_bytes(&r, c.name, nl);
    sw_read_u8(&r, &gl);
    if (gl > SW_CERT_GROUPS_MAX)
        return sw_error_set(err, SW_EINVAL, "certificate: groups of %u bytes (at most %d)", gl,
                            SW_CERT_GROUPS_MAX);
    sw_read_bytes(&r, c.groups, gl);
    sw_read_bytes(&r, c.sig.b, SW_SIG_LEN);
    if (!sw_reader_done(&r))
        return sw_error_set(err, SW_EINVAL, "certificate: %s",
                            sw_reader_ok(&r) ? "trailing bytes" : "truncated");
    if (memchr(c.name, '\0', nl) || memchr(c.groups, '\0', gl))
        return sw_error_set(err, SW_EINVAL, "certificate: NUL byte in name or groups");
    if ((rc = sw_cert_check_fields(&c, err)))
        return rc;
    *out = c;
    return SW_OK;
}

int sw_cert_verify(const struct sw_cert *c, const struct sw_pk *network, uint64_t now_s,
                   struct sw_error *err)
{
    uint8_t msg[sizeof(CERT_CONTEXT) + SW_CERT_MAX_LEN];
    size_t n;

    if (!sw_pk_equal(&c->network, network))
        return sw_error_set(err, SW_ECRYPTO, "certificate is for another network");
    if (!(n = signed_bytes(c, msg, sizeof(msg))) || sw_verify(network, msg, n, &c->sig))
        return sw_error_set(err, SW_ECRYPTO, "certificate signature does not verify");
    if (now_s + SW_CERT_CLOCK_SKEW_S < c->not_before)
        return sw_error_set(err, SW_EPERM, "certificate not valid before %llu (now %llu)",
                            (unsigned long long)c->not_before, (unsigned long long)now_s);
    if (now_s >= c->not_after)
        return sw_error_set(err, SW_EPERM, "certificate expired at %llu (now %llu)",
                            (unsigned long long)c->not_after, (unsigned long long)now_s);
    return SW_OK;
}

int sw_cert_to_hex(const struct sw_cert *c, char *out, size_t cap)
{
    uint8_t raw[SW_CERT_MAX_LEN];
    size_t n;
    int rc = sw_cert_encode(c, raw, sizeof(raw), &n);
    return rc ? rc : sw_hex_encode(out, cap, raw, n);
}

int sw_cert_from_hex(const char *hex, size_t len, struct sw_cert *out, uint8_t *raw,
                     size_t raw_cap, size_t *raw_len, struct sw_error *err)
{
    uint8_t buf[SW_CERT_MAX_LEN];
    size_t n = len / 2;
    int rc;

    if (len % 2 || n < SW_CERT_MIN_LEN || n > SW_CERT_MAX_LEN)
        return sw_error_set(err, SW_EINVAL, "certificate: %zu hex characters (expected %d to %d)",
                            len, 2 * SW_CERT_MIN_LEN, 2 * SW_CERT_MAX_LEN);
    if (sw_hex_decode(buf, n, hex, len))
        return sw_error_set(err, SW_EINVAL, "certificate: not hex");
    if ((rc = sw_cert_parse(buf, n, out, err)))
        return rc;
    if (raw) {
        if (raw_cap < n)
            return sw_error_set(err, SW_ERANGE, "certificate: buffer too small");
        memcpy(raw, buf, n);
        *raw_len = n;
    }
    return SW_OK;
}

int sw_cert_load_file(const char *path, struct sw_cert *out, uint8_t *raw, size_t *raw_len,
                      struct sw_error *err)
{
    char buf[CERT_FILE_MAX + 1];
    size_t n = 0, start = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return sw_error_set(err, errno == ENOENT ? SW_ENOTFOUND : SW_EIO, "%s: %s", path,
                            strerror(errno));
    for (;;) {
        ssize_t r = read(fd, buf + n, sizeof(buf) - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            close(fd);
            return sw_error_set(err, SW_EIO, "%s: %s", path, strerror(e));
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n == sizeof(buf)) {
            close(fd);
            return sw_error_set(err, SW_ERANGE, "%s: larger than %d bytes", path, CERT_FILE_MAX);
        }
    }
    close(fd);
    while (start < n && isspace((unsigned char)buf[start]))
        start++;
    while (n > start && isspace((unsigned char)buf[n - 1]))
        n--;
    struct sw_error e2 = { 0 };
    int rc = sw_cert_from_hex(buf + start, n - start, out, raw, raw ? SW_CERT_MAX_LEN : 0, raw_len,
                              &e2);
    if (rc)
        return sw_error_set(err, rc, "%s: %s", path, e2.msg);
    return SW_OK;
}

int sw_cert_save_file(const char *path, const struct sw_cert *c, struct sw_error *err)
{
    char hex[SW_CERT_HEX_MAX + 2];
    int rc = sw_cert_to_hex(c, hex, sizeof(hex) - 1);
    if (rc)
        return sw_error_set(err, rc, "certificate cannot be encoded");
    strcat(hex, "\n");
    return sw_write_file_atomic(path, hex, strlen(hex), 0644, err);
}

/* ---- revocation list --------------------------------------------------------------------- */

void sw_revlist_free(struct sw_revlist *l)
{
    if (!l)
        return;
    free(l->keys);
    l->keys = NULL;
    l->count = 0;
}

/* Index of the first key >= pk. */
static uint32_t lower_bound(const struct sw_revlist *l, const struct sw_pk *pk)
{
    uint32_t lo = 0, hi = l->count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (sw_pk_cmp(&l->keys[mid], pk) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

bool sw_revlist_contains(const struct sw_revlist *l, const struct sw_pk *pk)
{
    if (!l || l->count == 0)
        return false;
    uint32_t i = lower_bound(l, pk);
    return i < l->count && sw_pk_equal(&l->keys[i], pk);
}

int sw_revlist_update(struct sw_revlist *l, const struct sw_pk *pk, bool remove)
{
    uint32_t i = lower_bound(l, pk);
    bool present = i < l->count && sw_pk_equal(&l->keys[i], pk);
    if (remove) {
        if (!present)
            return SW_ENOTFOUND;
        memmove(&l->keys[i], &l->keys[i + 1], (l->count - i - 1) * sizeof(*l->keys));
        l->count--;
        return SW_OK;
    }
    if (present)
        return SW_EEXIST;
    if (l->count >= SW_REVLIST_MAX_KEYS)
        return SW_ERANGE;
    struct sw_pk *k = realloc(l->keys, (l->count + 1) * sizeof(*k));
    if (!k)
        return SW_ENOMEM;
    l->keys = k;
    memmove(&k[i + 1], &k[i], (l->count - i) * sizeof(*k));
    k[i] = *pk;
    l->count++;
    return SW_OK;
}

/* context || body (without the signature) into a new buffer. */
static int revlist_body(const struct sw_revlist *l, bool with_context, uint8_t **out, size_t *len)
{
    size_t ctx = with_context ? strlen(REVLIST_CONTEXT) : 0;
    size_t n = ctx + SW_REVLIST_MIN_LEN + (size_t)l->count * SW_PK_LEN;
    uint8_t *b = malloc(n);
    struct sw_writer w;
    if (!b)
        return SW_ENOMEM;
    sw_writer_init(&w, b, n);
    sw_write_bytes(&w, REVLIST_CONTEXT, ctx);
    sw_write_u8(&w, SW_REVLIST_VERSION);
    sw_write_bytes(&w, l->network.b, SW_PK_LEN);
    sw_write_u64(&w, l->issued_at);
    sw_write_u32(&w, l->count);
    for (uint32_t i = 0; i < l->count; i++)
        sw_write_bytes(&w, l->keys[i].b, SW_PK_LEN);
    *out = b;
    *len = w.len; /* the signature's room stays at the end */
    return SW_OK;
}

int sw_revlist_sign(struct sw_revlist *l, const struct sw_keypair *network, uint64_t issued_at)
{
    uint8_t *msg;
    size_t n;
    int rc;
    if (issued_at <= l->issued_at)
        issued_at = l->issued_at + 1;
    l->issued_at = issued_at;
    l->network = network->pk;
    if ((rc = revlist_body(l, true, &msg, &n)))
        return rc;
    sw_sign(network, msg, n, &l->sig);
    free(msg);
    return SW_OK;
}

int sw_revlist_encode(const struct sw_revlist *l, uint8_t **out, size_t *len)
{
    uint8_t *b;
    size_t n;
    int rc = revlist_body(l, false, &b, &n);
    if (rc)
        return rc;
    memcpy(b + n, l->sig.b, SW_SIG_LEN);
    *out = b;
    *len = n + SW_SIG_LEN;
    return SW_OK;
}

int sw_revlist_parse(const uint8_t *b, size_t len, struct sw_revlist *out, struct sw_error *err)
{
    struct sw_revlist l;
    struct sw_reader r;
    uint8_t version = 0;

    if (len < SW_REVLIST_MIN_LEN || len > SW_REVLIST_MAX_LEN)
        return sw_error_set(err, SW_EINVAL, "revocation list of %zu bytes (expected %d to %d)",
                            len, SW_REVLIST_MIN_LEN, SW_REVLIST_MAX_LEN);
    memset(&l, 0, sizeof(l));
    sw_reader_init(&r, b, len);
    sw_read_u8(&r, &version);
    if (version != SW_REVLIST_VERSION)
        return sw_error_set(err, SW_EINVAL, "revocation list version %u (this build reads %d)",
                            version, SW_REVLIST_VERSION);
    sw_read_bytes(&r, l.network.b, SW_PK_LEN);
    sw_read_u64(&r, &l.issued_at);
    sw_read_u32(&r, &l.count);
    if (l.count > SW_REVLIST_MAX_KEYS || sw_reader_remaining(&r) != (size_t)l.count * SW_PK_LEN + SW_SIG_LEN)
        return sw_error_set(err, SW_EINVAL, "revocation list: %u keys do not match its %zu bytes",
                            l.count, len);
    if (l.count && !(l.keys = malloc((size_t)l.count * sizeof(*l.keys))))
        return sw_error_set(err, SW_ENOMEM, "revocation list: out of memory");
    for (uint32_t i = 0; i < l.count; i++) {
        sw_read_bytes(&r, l.keys[i].b, SW_PK_LEN);
        if (i > 0 && sw_pk_cmp(&l.keys[i - 1], &l.keys[i]) >= 0) {
            free(l.keys);
            return sw_error_set(err, SW_EINVAL, "revocation list: keys not sorted and unique");
        }
    }
    sw_read_bytes(&r, l.sig.b, SW_SIG_LEN);
    if (!sw_reader_done(&r)) {
        free(l.keys);
        return sw_error_set(err, SW_EINVAL, "revocation list: truncated");
    }
    *out = l;
    return SW_OK;
}

int sw_revlist_verify(const struct sw_revlist *l, const struct sw_pk *network, struct sw_error *err)
{
    uint8_t *msg;
    size_t n;
    int rc;
    if (!sw_pk_equal(&l->network, network))
        return sw_error_set(err, SW_ECRYPTO, "revocation list is for another network");
    if ((rc = revlist_body(l, true, &msg, &n)))
        return sw_error_set(err, rc, "revocation list: out of memory");
    rc = sw_verify(network, msg, n, &l->sig);
    free(msg);
    if (rc)
        return sw_error_set(err, SW_ECRYPTO, "revocation list signature does not verify");
    return SW_OK;
}

int sw_revlist_to_hex(const struct sw_revlist *l, char **out)
{
    uint8_t *b;
    size_t n;
    int rc = sw_revlist_encode(l, &b, &n);
    if (rc)
        return rc;
    char *hex = malloc(2 * n + 1);
    if (!hex) {
        free(b);
        return SW_ENOMEM;
    }
    sw_hex_encode(hex, 2 * n + 1, b, n);
    free(b);
    *out = hex;
    return SW_OK;
}

int sw_revlist_from_hex(const char *hex, size_t len, struct sw_revlist *out, struct sw_error *err)
{
    size_t n = len / 2;
    uint8_t *b;
    int rc;
    if (len % 2 || n < SW_REVLIST_MIN_LEN || n > SW_REVLIST_MAX_LEN)
        return sw_error_set(err, SW_EINVAL, "revocation list: %zu hex characters", len);
    if (!(b = malloc(n)))
        return sw_error_set(err, SW_ENOMEM, "revocation list: out of memory");
    if (sw_hex_decode(b, n, hex, len)) {
        free(b);
        return sw_error_set(err, SW_EINVAL, "revocation list: not hex");
    }
    rc = sw_revlist_parse(b, n, out, err);
    free(b);
    return rc;
}
