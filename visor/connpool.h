/* connpool.h — a bounded pool of per-connection threads (used by appsrv.c and router_setup.c).
 *
 * The owner embeds a struct visor_connpool and a fixed array of struct visor_connpool_slot
 * (the cap) in its own state and calls visor_connpool_init once. Only one thread (the owner's
 * acceptor; after it was joined, the stopping thread) calls visor_connpool_acquire /
 * visor_connpool_start / visor_connpool_reap; the connection threads only mark their slot
 * done, under the pool mutex.
 *
 * Ownership: visor_connpool_start hands the connection fd to the pool on success; the pool
 * closes it when the slot is reaped (after its thread was joined), so the thread must not
 * close it. On failure the fd stays the caller's. The thread's arg stays the caller's and
 * must live until the slot is reaped (typically a per-slot element of an owner array). */
#ifndef VISOR_CONNPOOL_H
#define VISOR_CONNPOOL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

struct visor_connpool;

struct visor_connpool_slot {
    struct visor_connpool *pool;
    int fd;                 /* owned by the pool while used */
    void (*fn)(void *arg);
    void *arg;
    pthread_t th;
    bool used, done;        /* used: acceptor only; done: under pool->mu */
};

struct visor_connpool {
    pthread_mutex_t mu;
    struct visor_connpool_slot *slots; /* the owner's array of cap slots */
    int cap;
};

void visor_connpool_init(struct visor_connpool *p, struct visor_connpool_slot *slots, int cap);
/* Destroys the mutex; call after visor_connpool_reap(p, true). */
void visor_connpool_destroy(struct visor_connpool *p);
/* Returns a free slot index, or -1. When none is free, waits up to wait_ms (polling every
 * 20 ms, reaping finished threads) unless *stopping turns true (stopping may be NULL). */
int visor_connpool_acquire(struct visor_connpool *p, int wait_ms, const atomic_bool *stopping);
/* Starts fn(arg) on a thread for the free slot i, which then owns fd. Returns 0, or -1 if
 * the thread could not start (the slot stays free and fd the caller's). */
int visor_connpool_start(struct visor_connpool *p, int i, int fd, void (*fn)(void *arg), void *arg);
/* Joins finished threads and closes their fds; with all, first shuts down the fds of the
 * running ones and joins every thread. */
void visor_connpool_reap(struct visor_connpool *p, bool all);

#endif
