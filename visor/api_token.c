/* api_token.c — the local API's bearer token, data_dir/api-token (docs/visor.md "Access to
 * the local API").
 *
 * At start the visor reads the token, or makes one when the file does not exist: 32 random
 * bytes as 64 hex characters, written to a private temporary file that is then linked to
 * the final name, so the token file appears whole or not at all and an existing one is
 * never replaced. A token file that other users could read or write, that is not ours, or
 * that is a symbolic link stops the visor: the token may have leaked, and only the
 * operator can decide (delete it for a new one, or chmod 600 it). The token is never
 * logged. */
#include "visor/visor.h"
#include "common/hex.h"
#include "common/log.h"
#include "common/stream_io.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Writes a fresh token to tmp (created exclusively, mode 0600) and links it to path.
 * SW_EEXIST when path appeared meanwhile. */
static int create_token(const char *path, const char *tmp, struct sw_error *err)
{
    uint8_t raw[VISOR_API_TOKEN_BYTES];
    char text[VISOR_API_TOKEN_HEX + 2];
    int fd, rc = SW_OK;

    unlink(tmp); /* left by a visor that died while making one */
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return sw_error_set(err, SW_EIO, "cannot create %s: %s", tmp, strerror(errno));
    randombytes_buf(raw, sizeof(raw));
    sw_hex_encode(text, sizeof(text), raw, sizeof(raw));
    text[VISOR_API_TOKEN_HEX] = '\n';
    if (sw_io_write_all(fd, text, VISOR_API_TOKEN_HEX + 1, SW_IO_NO_LIMIT) || fsync(fd) != 0)
        rc = sw_error_set(err, SW_EIO, "cannot write %s: %s", tmp, strerror(errno));
    close(fd);
    if (rc == SW_OK && link(tmp, path) != 0)
        rc = errno == EEXIST ? SW_EEXIST
                             : sw_error_set(err, SW_EIO, "cannot create %s: %s", path, strerror(errno));
    unlink(tmp);
    sodium_memzero(raw, sizeof(raw));
    sodium_memzero(text, sizeof(text));
    return rc;
}

int visor_api_token_init(const char *data_dir, char token[VISOR_API_TOKEN_HEX + 1], struct sw_error *err)
{
    char path[PATH_MAX + 32], tmp[PATH_MAX + 48];
    int rc;

    if ((size_t)snprintf(path, sizeof(path), "%s/%s", data_dir, VISOR_API_TOKEN_FILE) >= sizeof(path) ||
        (size_t)snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", data_dir, VISOR_API_TOKEN_FILE) >= sizeof(tmp))
        return sw_error_set(err, SW_ERANGE, "data_dir is too long");
    rc = visor_api_token_read(path, true, token, err);
    if (rc != SW_ENOTFOUND)
        return rc;
    rc = create_token(path, tmp, err);
    if (rc == SW_OK)
        sw_log_info("API token: made %s (send it as Authorization: Bearer)", path);
    else if (rc != SW_EEXIST)
        return rc;
    return visor_api_token_read(path, true, token, err);
}
