/* config.h — loading JSON configuration files with errors that name the bad field.
 *
 * Fields are addressed by dotted paths ("transport.discovery_url"). Every getter either
 * fills *out or returns SW_EINVAL with err->msg like
 *   "config skywire-config.json: field 'routing.setup_nodes[1]': not a valid public key".
 * Optional getters leave *out untouched (the caller's default) when the field is absent.
 * Strings returned are borrowed from the loaded document (valid until sw_config_free). */
#ifndef SW_CONFIG_H
#define SW_CONFIG_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/hostport.h"
#include "common/keys.h"

#define SW_CONFIG_MAX_BYTES (1u << 20)

struct sw_config {
    struct json_object *root; /* owned */
    char source[256];         /* file name for messages */
};

int sw_config_load_file(struct sw_config *cfg, const char *path, struct sw_error *err);
int sw_config_load_string(struct sw_config *cfg, const char *name, const char *text, size_t len,
                          struct sw_error *err);
void sw_config_free(struct sw_config *cfg);

/* Borrowed node at path, or NULL when absent. */
struct json_object *sw_config_node(const struct sw_config *cfg, const char *path);

int sw_config_string(const struct sw_config *cfg, const char *path, bool required,
                     const char **out, struct sw_error *err);
int sw_config_bool(const struct sw_config *cfg, const char *path, bool required, bool *out,
                   struct sw_error *err);
int sw_config_uint(const struct sw_config *cfg, const char *path, bool required, uint64_t min,
                   uint64_t max, uint64_t *out, struct sw_error *err);
int sw_config_pk(const struct sw_config *cfg, const char *path, bool required, struct sw_pk *out,
                 struct sw_error *err);
/* "host:port" as sw_hostport_parse (common/hostport.h) with flags (SW_HOSTPORT_LISTEN for a
 * listen address); *out borrowed from cfg. */
int sw_config_hostport(const struct sw_config *cfg, const char *path, bool required,
                       unsigned flags, const char **out, struct sw_error *err);
/* http:// or https:// URL. */
int sw_config_url(const struct sw_config *cfg, const char *path, bool required, const char **out,
                  struct sw_error *err);
/* Reports an error about a field found by the caller's own checks. Returns SW_EINVAL. */
int sw_config_field_error(const struct sw_config *cfg, const char *path, struct sw_error *err,
                          const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#endif
