/* store.c — the last N messages in memory (a ring) and wake-ups for SSE streams. */
#include "apps/skychat/chat.h"
#include "common/cond.h"
#include "common/json.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct entry {
    uint64_t id;          /* 0 = empty slot */
    struct sw_pk peer;
    bool outgoing;
    char *text;
    size_t len;
    uint64_t sent_at, received_at, nonce;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv;
static struct entry *ring;
static size_t cap;
static uint64_t last_id;
static bool woken_all;

int sc_store_init(size_t n)
{
    if (!(ring = calloc(n ? n : 1, sizeof(*ring))))
        return SW_ENOMEM;
    cap = n ? n : 1;
    sw_cond_init(&cv);
    return SW_OK;
}

void sc_store_free(void)
{
    for (size_t i = 0; ring && i < cap; i++)
        free(ring[i].text);
    free(ring);
    ring = NULL;
    pthread_cond_destroy(&cv);
}

static struct entry *slot(uint64_t id)
{
    return &ring[(id - 1) % cap];
}

/* Oldest id still held (last_id + 1 when empty). */
static uint64_t first_id(void)
{
    return last_id >= cap ? last_id - cap + 1 : 1;
}

uint64_t sc_store_add(const struct sw_pk *peer, bool outgoing, const char *text, size_t len,
                      uint64_t sent_at, uint64_t nonce)
{
    char *copy = malloc(len + 1);
    struct entry *e;
    uint64_t id;

    if (!copy)
        return 0;
    memcpy(copy, text, len);
    copy[len] = '\0';
    pthread_mutex_lock(&mu);
    /* a resend after a lost acknowledgement: same peer, same nonce, among recent entries */
    for (uint64_t i = last_id, n = 0; !outgoing && nonce && i >= first_id() && i > 0 && n < 256; i--, n++) {
        e = slot(i);
        if (!e->outgoing && e->nonce == nonce && sw_pk_equal(&e->peer, peer)) {
            pthread_mutex_unlock(&mu);
            free(copy);
            return i;
        }
    }
    id = ++last_id;
    e = slot(id);
    free(e->text);
    *e = (struct entry){ .id = id, .peer = *peer, .outgoing = outgoing, .text = copy, .len = len,
                         .sent_at = sent_at, .received_at = (uint64_t)sw_unix_ms(), .nonce = nonce };
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    return id;
}

uint64_t sc_store_last(void)
{
    uint64_t id;
    pthread_mutex_lock(&mu);
    id = last_id;
    pthread_mutex_unlock(&mu);
    return id;
}

/* Appends one entry as a JSON object (mu held). */
static int entry_json(struct sw_buf *b, const struct entry *e)
{
    char peer[SW_PK_HEX_LEN + 1], self[SW_PK_HEX_LEN + 1] = "";
    int rc;

    sw_pk_to_hex(&e->peer, peer);
    if (sc_opt.have_self)
        sw_pk_to_hex(&sc_opt.self, self);
    rc = sw_buf_printf(b, "{\"id\":%llu,\"peer\":\"%s\",\"direction\":\"%s\",\"sender\":\"%s\",\"message\":",
                       (unsigned long long)e->id, peer, e->outgoing ? "out" : "in",
                       e->outgoing ? self : peer);
    if (!rc)
        rc = sw_json_append_string(b, e->text, e->len);
    if (!rc)
        rc = sw_buf_printf(b, ",\"sent_at\":%llu,\"received_at\":%llu}",
                           (unsigned long long)e->sent_at, (unsigned long long)e->received_at);
    return rc;
}

int sc_store_json(struct sw_buf *out, uint64_t since, size_t limit)
{
    uint64_t from;
    size_t n = 0;
    int rc;

    pthread_mutex_lock(&mu);
    from = since + 1 > first_id() ? since + 1 : first_id();
    /* with a limit, the newest `limit` of them */
    if (limit && last_id >= from && last_id - from + 1 > limit)
        from = last_id - limit + 1;
    rc = sw_buf_append(out, "[", 1);
    for (uint64_t id = from; !rc && id <= last_id; id++, n++) {
        if (n && (rc = sw_buf_append(out, ",", 1)))
            break;
        rc = entry_json(out, slot(id));
    }
    if (!rc)
        rc = sw_buf_append(out, "]", 1);
    pthread_mutex_unlock(&mu);
    return rc;
}

size_t sc_store_events(struct sw_buf *out, uint64_t *after, size_t limit)
{
    size_t n = 0;
    uint64_t id;

    pthread_mutex_lock(&mu);
    id = *after + 1 > first_id() ? *after + 1 : first_id();
    for (; id <= last_id && n < limit; id++, n++) {
        if (sw_buf_printf(out, "id: %llu\nevent: message\ndata: ", (unsigned long long)id) ||
            entry_json(out, slot(id)) || sw_buf_append(out, "\n\n", 2))
            break;
        *after = id;
    }
    if (*after < id - 1)
        *after = id - 1; /* skipped entries that fell out of the ring */
    pthread_mutex_unlock(&mu);
    return n;
}

int sc_store_wait(uint64_t after, int timeout_ms)
{
    struct timespec dl;
    int rc = 0;

    sw_cond_deadline(timeout_ms, &dl);
    pthread_mutex_lock(&mu);
    for (;;) {
        if (woken_all || sc_stopping()) {
            rc = -1;
            break;
        }
        if (last_id > after) {
            rc = 1;
            break;
        }
        if (pthread_cond_timedwait(&cv, &mu, &dl) == ETIMEDOUT) {
            rc = last_id > after ? 1 : 0;
            break;
        }
    }
    pthread_mutex_unlock(&mu);
    return rc;
}

void sc_store_wake_all(void)
{
    pthread_mutex_lock(&mu);
    woken_all = true;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}
