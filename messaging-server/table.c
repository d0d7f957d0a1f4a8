/* table.c — intrusive chained hash table with SipHash-2-4 (libsodium crypto_shorthash).
 * Grows by doubling at load factor 1; never shrinks (bounded by --max-sessions and
 * --max-streams-per-session). */
#include "messaging-server/ms.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define INITIAL_BUCKETS 64

static const void *key_of(const struct ms_table *t, const struct ms_hnode *n)
{
    return (const uint8_t *)n + t->key_off;
}

static uint64_t hash_key(const struct ms_table *t, const void *key)
{
    uint8_t h[crypto_shorthash_BYTES];
    uint64_t v;
    crypto_shorthash(h, key, t->key_len, t->sipkey);
    memcpy(&v, h, sizeof(v));
    return v;
}

int ms_table_init(struct ms_table *t, ptrdiff_t key_off, size_t key_len)
{
    memset(t, 0, sizeof(*t));
    t->buckets = calloc(INITIAL_BUCKETS, sizeof(*t->buckets));
    if (!t->buckets)
        return SW_ENOMEM;
    t->nbuckets = INITIAL_BUCKETS;
    t->key_off = key_off;
    t->key_len = key_len;
    crypto_shorthash_keygen(t->sipkey);
    return SW_OK;
}

void ms_table_free(struct ms_table *t)
{
    free(t->buckets);
    t->buckets = NULL;
    t->nbuckets = t->count = 0;
}

struct ms_hnode *ms_table_find(const struct ms_table *t, const void *key)
{
    uint64_t h = hash_key(t, key);
    struct ms_hnode *n = t->buckets[h & (t->nbuckets - 1)];
    for (; n; n = n->next) {
        if (n->hash == h && memcmp(key_of(t, n), key, t->key_len) == 0)
            return n;
    }
    return NULL;
}

/* Rehashes into twice the buckets; on allocation failure keeps the old (longer chains). */
static void grow(struct ms_table *t)
{
    size_t nb = t->nbuckets * 2;
    struct ms_hnode **b = calloc(nb, sizeof(*b)), *n, *next;
    if (!b)
        return;
    for (size_t i = 0; i < t->nbuckets; i++) {
        for (n = t->buckets[i]; n; n = next) {
            next = n->next;
            n->next = b[n->hash & (nb - 1)];
            b[n->hash & (nb - 1)] = n;
        }
    }
    free(t->buckets);
    t->buckets = b;
    t->nbuckets = nb;
}

int ms_table_insert(struct ms_table *t, struct ms_hnode *n)
{
    struct ms_hnode **head;
    if (t->count >= t->nbuckets)
        grow(t);
    n->hash = hash_key(t, key_of(t, n));
    head = &t->buckets[n->hash & (t->nbuckets - 1)];
    n->next = *head;
    *head = n;
    t->count++;
    return SW_OK;
}

void ms_table_remove(struct ms_table *t, struct ms_hnode *n)
{
    struct ms_hnode **pp = &t->buckets[n->hash & (t->nbuckets - 1)];
    for (; *pp; pp = &(*pp)->next) {
        if (*pp == n) {
            *pp = n->next;
            n->next = NULL;
            t->count--;
            return;
        }
    }
}
