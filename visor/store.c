/* store.c — data_dir/transports.json: the transports this visor knows, whether the
 * operator added them here (remembered: redialed after restarts) and their byte counters.
 *
 *   {"version":1,"transports":[{"id","remote_pk","type","address","remembered",
 *                               "bytes_sent","bytes_received"}]}
 *
 * Written whole to transports.json.tmp, fsynced and renamed over the old file, so a crash
 * leaves either the old or the new version. Loaded once at start; a malformed file stops
 * the visor with an error naming the field rather than silently forgetting transports. */
#include "visor/parse.h"
#include "common/json.h"
#include "common/log.h"
#include "common/stream_io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STORE_FILE "transports.json"
#define STORE_MAX_BYTES (64u << 20)

static void store_path(const struct visor *v, char *out, size_t cap, const char *suffix)
{
    snprintf(out, cap, "%s/%s%s", v->cfg.data_dir, STORE_FILE, suffix);
}

static int read_file(const char *path, char **out, size_t *len, struct sw_error *err)
{
    struct stat st;
    ssize_t n;
    size_t got = 0;
    char *buf;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK); /* a FIFO must not block the start */

    if (fd < 0)
        return errno == ENOENT ? SW_ENOTFOUND : sw_error_set(err, SW_EIO, "%s: %s", path, strerror(errno));
    if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size > STORE_MAX_BYTES) {
        close(fd);
        return sw_error_set(err, SW_ERANGE, "%s: not a regular file, unreadable or larger than %u bytes",
                            path, STORE_MAX_BYTES);
    }
    if (!(buf = malloc((size_t)st.st_size + 1))) {
        close(fd);
        return sw_error_set(err, SW_ENOMEM, "out of memory");
    }
    while (got < (size_t)st.st_size && (n = read(fd, buf + got, (size_t)st.st_size - got)) > 0)
        got += (size_t)n;
    close(fd);
    buf[got] = '\0';
    *out = buf;
    *len = got;
    return SW_OK;
}

/* One record of the file (checked by visor_store_parse): a transport to restore. */
static int load_one(void *ctx, const struct visor_store_record *r, const char *where,
                    struct sw_error *err)
{
    struct visor *v = ctx;
    struct sw_error e = { 0 };

    if (sw_pk_equal(&r->remote, &v->cfg.kp.pk))
        return sw_error_set(err, SW_EINVAL, "field '%s.remote_pk': is this visor's own key", where);
    if (visor_tm_restore(v, &r->remote, r->kind, r->addr, r->remembered, r->bytes_sent,
                         r->bytes_received, &e))
        return sw_error_set(err, SW_EINVAL, "%s: %s", where, e.msg);
    return SW_OK;
}

int visor_store_load(struct visor *v, struct sw_error *err)
{
    char path[PATH_MAX + 32];
    struct sw_error e = { 0 };
    char *text = NULL;
    size_t len = 0;
    int rc;

    store_path(v, path, sizeof(path), "");
    if ((rc = read_file(path, &text, &len, err)))
        return rc == SW_ENOTFOUND ? SW_OK : rc;
    if ((rc = visor_store_parse(text, len, load_one, v, &e)))
        sw_error_set(err, rc, "%s: %s", path, e.msg);
    else
        sw_log_info("store: %zu transports loaded from %s", v->n_transports, path);
    free(text);
    return rc;
}

static struct json_object *store_json(struct visor *v)
{
    struct json_object *root = json_object_new_object(), *arr = json_object_new_array(), *o;
    struct visor_transport *t;
    char id[SW_UUID_STR_LEN + 1];

    TAILQ_FOREACH(t, &v->transports, next) {
        if (t->provisional)
            continue;
        o = json_object_new_object();
        sw_uuid_format(&t->entry.id, id);
        json_object_object_add(o, "id", json_object_new_string(id));
        json_object_object_add(o, "remote_pk", sw_json_pk(&t->remote));
        json_object_object_add(o, "type", json_object_new_string(visor_tp_kind_name(t->kind)));
        json_object_object_add(o, "address", json_object_new_string(t->addr));
        json_object_object_add(o, "remembered", json_object_new_boolean(t->remembered));
        json_object_object_add(o, "bytes_sent", json_object_new_uint64(visor_tm_bytes_sent(t)));
        json_object_object_add(o, "bytes_received", json_object_new_uint64(visor_tm_bytes_received(t)));
        json_object_array_add(arr, o);
    }
    json_object_object_add(root, "version", json_object_new_int(1));
    json_object_object_add(root, "transports", arr);
    return root;
}

int visor_store_save(struct visor *v)
{
    char path[PATH_MAX + 32], tmp[PATH_MAX + 32];
    struct json_object *root = store_json(v);
    const char *text = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY |
                                                                JSON_C_TO_STRING_NOSLASHESCAPE);
    int rc = SW_OK, fd;

    store_path(v, path, sizeof(path), "");
    store_path(v, tmp, sizeof(tmp), ".tmp");
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || sw_io_write_all(fd, text, strlen(text), SW_IO_NO_LIMIT) ||
        sw_io_write_all(fd, "\n", 1, SW_IO_NO_LIMIT) || fsync(fd)) {
        sw_log_error("store: cannot write %s: %s", tmp, strerror(errno));
        rc = SW_EIO;
    }
    if (fd >= 0)
        close(fd);
    if (rc == SW_OK && rename(tmp, path) != 0) {
        sw_log_error("store: cannot replace %s: %s", path, strerror(errno));
        rc = SW_EIO;
    }
    if (rc)
        unlink(tmp);
    json_object_put(root);
    v->last_save_ms = sw_mono_ms();
    if (rc == SW_OK)
        v->store_dirty = v->store_urgent = false;
    return rc;
}
