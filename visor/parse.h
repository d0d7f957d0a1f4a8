/* parse.h — JSON the visor reads from outside its own memory, as pure functions (no loop,
 * no files, no sockets): data_dir/transports.json and the bodies of the local API's
 * requests. store.c and api.c call them; tests/unit/test_visor_packet.c and
 * tests/fuzz/fuzz_visor_store.c call them directly.
 *
 * Text goes through sw_json_parse (depth limit, no trailing data, no NUL bytes) and the
 * typed getters; errors name the field ("field 'transports[3].address': must be
 * host:port"). Outputs are written only on success. Thread-safe (no shared state). */
#ifndef VISOR_PARSE_H
#define VISOR_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/keys.h"
#include "visor/visor.h"

/* ---- data_dir/transports.json (docs/visor.md "Life of a transport") ------------------ */

#define VISOR_STORE_VERSION 1

struct visor_store_record {
    struct sw_pk remote;
    enum visor_tp_kind kind;
    char addr[VISOR_ADDR_MAX];  /* "" or host:port */
    bool remembered;
    uint64_t bytes_sent, bytes_received;
};

/* Called for each record in file order with its position ("transports[3]"); a non-zero
 * return stops the parse and is returned (the callback fills err). */
typedef int (*visor_store_record_fn)(void *ctx, const struct visor_store_record *rec,
                                     const char *where, struct sw_error *err);

/* Parses the document text[len]: an object with "version" (optional; must be 1) and
 * "transports", an array of at most VISOR_MAX_TRANSPORTS objects, each with remote_pk,
 * type ("stcp" | "dmsg"), remembered, bytes_sent, bytes_received, and optional address
 * ("" or host:port shorter than VISOR_ADDR_MAX); other fields ("id") are ignored.
 * Every record is checked before the first callback, so a malformed file delivers none.
 * SW_EINVAL (or the callback's code) with err naming the field; SW_ENOMEM. */
int visor_store_parse(const char *text, size_t len, visor_store_record_fn each, void *ctx,
                      struct sw_error *err);

/* ---- local API request bodies (docs/visor.md "Local API") -------------------------------- */

struct visor_api_add_request {
    struct sw_pk remote;
    enum visor_tp_kind kind;    /* "type", default stcp */
    char addr[VISOR_ADDR_MAX];  /* "address", default "" */
};

/* Body of POST /api/transports: {"remote_pk", "type"?, "address"?}. On failure *code is
 * the API error code to answer 400 with (invalid_json, invalid_body, invalid_public_key,
 * invalid_type, invalid_address) and err the message. body may be NULL when len is 0. */
int visor_api_parse_add(const char *body, size_t len, struct visor_api_add_request *out,
                        const char **code, struct sw_error *err);

/* Body of POST /api/transports/{id}/discard: {"bytes": 1..max}. SW_EINVAL otherwise. */
int visor_api_parse_discard(const char *body, size_t len, uint64_t max, uint64_t *bytes,
                            struct sw_error *err);

#endif
