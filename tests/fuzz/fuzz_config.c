/* fuzz_config.c — sw_config_load_string on raw bytes, then every getter, required and
 * optional, on a handful of paths (including some taken from the document itself).
 * Successful getters must return values that satisfy their own contract; optional getters
 * on absent fields must leave the caller's default in place. */
#include "common/config.h"
#include "common/err.h"
#include "common/keys.h"
#include "tests/fuzz/fuzz.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void check_err(int rc, const struct sw_error *err, const char *path)
{
    if (rc == SW_OK)
        return;
    CHECK(rc == SW_EINVAL);
    CHECK(err->code == rc);
    CHECK(memchr(err->msg, '\0', sizeof(err->msg)) != NULL);
    CHECK(strncmp(err->msg, "config fuzz.json: ", 18) == 0);
    /* the message names the field (unless the path alone overflows the message) */
    if (strlen(path) < 100)
        CHECK(strstr(err->msg, path) != NULL);
}

static void probe(const struct sw_config *cfg, const char *path)
{
    struct sw_error err;
    const bool present = sw_config_node(cfg, path) != NULL;

    for (int req = 0; req < 2; req++) {
        const char *s = "dflt";
        bool b = false;
        uint64_t u = 12345;
        struct sw_pk pk;
        int rc;

        memset(&pk, 0x42, sizeof(pk));
        memset(&err, 0, sizeof(err));

        rc = sw_config_string(cfg, path, req, &s, &err);
        check_err(rc, &err, path);
        if (!present)
            CHECK(req ? rc == SW_EINVAL : (rc == SW_OK && strcmp(s, "dflt") == 0));

        rc = sw_config_bool(cfg, path, req, &b, &err);
        check_err(rc, &err, path);

        rc = sw_config_uint(cfg, path, req, 10, 70000, &u, &err);
        check_err(rc, &err, path);
        if (rc == SW_OK)
            CHECK(present ? (u >= 10 && u <= 70000) : u == 12345);
        rc = sw_config_uint(cfg, path, req, 0, UINT64_MAX, &u, &err);
        check_err(rc, &err, path);

        rc = sw_config_pk(cfg, path, req, &pk, &err);
        check_err(rc, &err, path);
        if (rc == SW_OK && present) {
            char hex[SW_PK_HEX_LEN + 1];
            struct sw_pk again;
            sw_pk_to_hex(&pk, hex);
            CHECK(sw_pk_from_hex(&again, hex, NULL, NULL) == SW_OK && sw_pk_equal(&again, &pk));
        }

        for (unsigned flags = 0; flags <= SW_HOSTPORT_LISTEN; flags += SW_HOSTPORT_LISTEN) {
            s = "dflt";
            rc = sw_config_hostport(cfg, path, req, flags, &s, &err);
            check_err(rc, &err, path);
            if (rc == SW_OK && present) {
                char host[256];
                uint16_t port;
                CHECK(sw_hostport_parse(s, flags, NULL, 0, NULL) == SW_OK);
                if (strlen(s) < sizeof(host)) {
                    CHECK(sw_hostport_parse(s, flags, host, sizeof(host), &port) == SW_OK);
                    CHECK(host[0] || flags == SW_HOSTPORT_LISTEN);
                }
            }
        }

        s = "dflt";
        rc = sw_config_url(cfg, path, req, &s, &err);
        check_err(rc, &err, path);
        if (rc == SW_OK && present)
            CHECK(strncasecmp(s, "http://", 7) == 0 || strncasecmp(s, "https://", 8) == 0);
    }
    CHECK(sw_config_field_error(cfg, path, &err, "custom %d", 1) == SW_EINVAL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool init;
    static const char *const paths[] = {
        "a", "a.b", "a.b.c", "port", "listen", "pk", "url", "transport.discovery_url",
        "transport.listen", "routing.setup_nodes", "", ".", "a..b", "debug",
    };
    struct sw_config cfg;
    struct sw_error err;
    int rc;

    if (!init) {
        if (sw_crypto_init() != SW_OK)
            abort();
        init = true;
    }
    memset(&err, 0, sizeof(err));
    rc = sw_config_load_string(&cfg, "fuzz.json", (const char *)data, size, &err);
    if (rc != SW_OK) {
        CHECK(rc == SW_EINVAL || rc == SW_ERANGE);
        CHECK(cfg.root == NULL);
        return 0;
    }
    CHECK(json_object_is_type(cfg.root, json_type_object));
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
        probe(&cfg, paths[i]);
    /* paths made of the document's own keys, one and two levels deep */
    {
        int n = 0;
        json_object_object_foreach(cfg.root, key, val) {
            char path[300];
            if (n++ >= 8)
                break;
            probe(&cfg, key);
            if (json_object_is_type(val, json_type_object)) {
                int m = 0;
                json_object_object_foreach(val, k2, v2) {
                    (void)v2;
                    if (m++ >= 4)
                        break;
                    snprintf(path, sizeof(path), "%s.%s", key, k2);
                    probe(&cfg, path);
                }
            }
        }
    }
    sw_config_free(&cfg);
    CHECK(cfg.root == NULL);
    return 0;
}
