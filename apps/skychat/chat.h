/* chat.h — skychat's modules (apps/skychat/README.md).
 *
 *   store.c  bounded in-memory ring of messages (in and out) + wake-ups for SSE streams
 *   wire.c   the chat protocol between two skychats: u32 BE length + JSON frames
 *   peer.c   outgoing: one connection per recipient, dial with a deadline, wait for the ack
 *   inbox.c  incoming: accept connections on the app port, store messages, acknowledge
 *   http.c   the web page and REST/SSE API over libmicrohttpd
 *   page.c   the embedded HTML page */
#ifndef SKYCHAT_CHAT_H
#define SKYCHAT_CHAT_H

#include <json-c/json.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/clock.h" /* message times are Unix ms (sw_unix_ms) */
#include "common/err.h"
#include "common/keys.h"

#define SC_MSG_MAX 8192          /* bytes of message text */
#define SC_FRAME_MAX 65536       /* bytes of one frame's JSON */
#define SC_BODY_MAX 65536        /* bytes of a POST /message body */
#define SC_RING_DEFAULT 1000
#define SC_MAX_ALLOWED_HOSTS 16  /* -allowed-host NAME, repeatable */

struct sc_options {
    char addr[128];              /* -addr */
    uint16_t port;               /* own app port ($SKYWIRE_APP_PORT, default 1) */
    uint16_t remote_port;        /* -remote-port: the recipients' skychat port (default: port) */
    int dial_timeout_ms;         /* -dial-timeout seconds */
    int ack_timeout_ms;          /* -ack-timeout seconds */
    int sse_keepalive_ms;        /* -sse-keepalive seconds */
    unsigned max_sse;            /* -max-sse */
    size_t ring;                 /* -history */
    bool have_self;              /* $SKYWIRE_VISOR_PK parsed */
    struct sw_pk self;
    /* -allowed-host: Host names the page and API answer to besides the loopback names and
     * -addr's host (docs/security.md); borrowed from argv */
    const char *allowed_hosts[SC_MAX_ALLOWED_HOSTS];
    size_t n_allowed_hosts;
};

extern struct sc_options sc_opt;

/* Set once at shutdown; every blocking loop polls it. */
bool sc_stopping(void);
const atomic_bool *sc_stop_flag(void); /* the same, for common/stream_io.h waits */
void sc_stop(void);

/* ---- store.c ---- */
int sc_store_init(size_t cap);
void sc_store_free(void);
/* Adds a message; returns its id (> 0), 0 on ENOMEM. For an incoming message with a nonce
 * that this peer already delivered (a resend after a lost ack), returns the stored id. */
uint64_t sc_store_add(const struct sw_pk *peer, bool outgoing, const char *text, size_t len,
                      uint64_t sent_at, uint64_t nonce);
uint64_t sc_store_last(void);
/* Appends the messages with id > since (oldest first, at most limit) as a JSON array. */
int sc_store_json(struct sw_buf *out, uint64_t since, size_t limit);
/* Appends SSE events ("id: N\nevent: message\ndata: {...}\n\n") for the messages with id >
 * *after (at most limit) and advances *after. Returns how many. */
size_t sc_store_events(struct sw_buf *out, uint64_t *after, size_t limit);
/* Waits until a message with id > after exists (1), timeout_ms passes (0) or shutdown (-1). */
int sc_store_wait(uint64_t after, int timeout_ms);
/* Wakes every waiter (shutdown). */
void sc_store_wake_all(void);

/* ---- wire.c ---- */
/* Writes one frame (1..SC_FRAME_MAX bytes of JSON): SW_OK, SW_ERANGE, SW_EIO when the
 * connection is gone. */
int sc_frame_write(int fd, const char *json, size_t len);
/* Reads one frame and parses its JSON into *out (the caller's). Waits up to first_ms for its
 * first byte (< 0: forever; either way until sc_stopping) and 5 s for the rest.
 * SW_EINVAL: not JSON (the frame was consumed); SW_ERANGE: bad length (out of sync);
 * SW_ETIMEDOUT; SW_ENOTFOUND / SW_EIO: closed or stopping. */
int sc_frame_recv(int fd, int first_ms, struct json_object **out);

/* ---- peer.c ---- */
enum sc_send_status {
    SC_SENT = 0,
    SC_UNREACHABLE,  /* the visor could not reach the recipient's skychat (502) */
    SC_TIMEOUT,      /* dial or ack deadline passed (504) */
    SC_REJECTED,     /* the recipient's skychat refused the message (502) */
    SC_BUSY,         /* too many recipients at once (503) */
};
struct sc_send_result {
    enum sc_send_status status;
    char code[48];          /* stable error code for the HTTP answer */
    char msg[SW_ERROR_MSG_MAX + 160];
};
void sc_peers_init(void);
/* Sends text to pk's skychat and waits for its acknowledgement. Thread-safe; messages to the
 * same recipient go one at a time over one connection. */
void sc_send(const struct sw_pk *pk, const char *text, size_t len, uint64_t sent_at,
             uint64_t nonce, struct sc_send_result *res);
/* Closes the idle connections (shutdown). */
void sc_peers_close(void);

/* ---- inbox.c ---- */
/* Listens on sc_opt.port and starts the accept thread. */
int sc_inbox_start(struct sw_error *err);
/* Stops accepting and waits (up to 3 s) for the connection threads; true when all ended. */
bool sc_inbox_stop(void);

/* ---- http.c ---- */
int sc_http_start(struct sw_error *err);
uint16_t sc_http_port(void);
void sc_http_stop(void);

/* ---- page.c ---- */
extern const char sc_page_html[];
extern const size_t sc_page_html_len;

#endif
