/* resolve.c — stcp host names through the system's resolver, off the loop.
 *
 * getaddrinfo (the C library's: /etc/hosts, nsswitch, the nameservers in order, like every
 * other program on the machine) runs on a short-lived detached thread per name; the answer,
 * every address in the resolver's order (the link tries them in turn), comes back to the loop
 * as a VISOR_CMD_CALL command (visor_link_resolved), which finds the link by its serial: a
 * link that closed meanwhile just drops it. The threads share a small context with the
 * visor; stopping the visor detaches the queue from it under its lock, so a late answer
 * is never posted into a freed queue, and the last of the visor and the threads frees it.
 * (libevent's evdns, used before, spreads queries over every nameserver: split DNS, such as
 * a VPN's or a container network's resolver listed before the host's, answered differently
 * from one dial to the next.) */
#include "visor/visor.h"

#include <json-c/json.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct visor_resolver {
    pthread_mutex_t mu;
    struct visor_cmdq *q; /* NULL once the visor stopped */
    int refs;             /* the visor's, and one per thread */
};

struct resolve_job {
    struct visor_resolver *r;
    uint64_t serial;
    char host[VISOR_ADDR_MAX];
    uint16_t port;
};

static void resolver_unref(struct visor_resolver *r)
{
    bool last;

    pthread_mutex_lock(&r->mu);
    last = --r->refs == 0;
    pthread_mutex_unlock(&r->mu);
    if (last) {
        pthread_mutex_destroy(&r->mu);
        free(r);
    }
}

#define RESOLVE_MAX_ADDRS 8

/* host's TCP addresses in the resolver's order, as "ip:port" / "[ip]:port" into *out (a new
 * array), else why into why. */
static int lookup(const char *host, uint16_t port, struct json_object **out, char *why, size_t why_cap)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_ADDRCONFIG };
    struct addrinfo *res = NULL;
    char ip[NI_MAXHOST], serv[8], addr[NI_MAXHOST + 16];
    int e;

    snprintf(serv, sizeof(serv), "%u", port);
    if ((e = getaddrinfo(host, serv, &hints, &res))) {
        snprintf(why, why_cap, "%s", gai_strerror(e));
        return -1;
    }
    *out = json_object_new_array();
    for (struct addrinfo *a = res; a && json_object_array_length(*out) < RESOLVE_MAX_ADDRS; a = a->ai_next) {
        if (getnameinfo(a->ai_addr, a->ai_addrlen, ip, sizeof(ip), NULL, 0, NI_NUMERICHOST))
            continue;
        snprintf(addr, sizeof(addr), a->ai_family == AF_INET6 ? "[%s]:%u" : "%s:%u", ip, port);
        json_object_array_add(*out, json_object_new_string(addr));
    }
    freeaddrinfo(res);
    return 0;
}

static void *resolve_main(void *arg)
{
    struct resolve_job *j = arg;
    struct json_object *addrs = NULL;
    char why[SW_ERROR_MSG_MAX] = "";
    int rc = lookup(j->host, j->port, &addrs, why, sizeof(why));
    struct visor_cmd *c;

    pthread_mutex_lock(&j->r->mu);
    if (j->r->q && (c = visor_cmd_new(VISOR_CMD_CALL))) {
        c->fn = visor_link_resolved;
        c->n = j->serial;
        c->status = rc;
        c->body = addrs; /* c's now */
        addrs = NULL;
        snprintf(c->why, sizeof(c->why), "%s", why);
        visor_cmdq_post(j->r->q, c); /* releases c itself when the queue is closed */
    }
    pthread_mutex_unlock(&j->r->mu);
    json_object_put(addrs);
    resolver_unref(j->r);
    free(j);
    return NULL;
}

int visor_resolve_start(struct visor *v)
{
    struct visor_resolver *r = calloc(1, sizeof(*r));

    if (!r || pthread_mutex_init(&r->mu, NULL)) {
        free(r);
        return SW_ENOMEM;
    }
    r->q = &v->q;
    r->refs = 1;
    v->resolver = r;
    return SW_OK;
}

void visor_resolve_stop(struct visor *v)
{
    struct visor_resolver *r = v->resolver;

    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    r->q = NULL;
    pthread_mutex_unlock(&r->mu);
    v->resolver = NULL;
    resolver_unref(r);
}

int visor_resolve_host(struct visor *v, uint64_t serial, const char *host, uint16_t port)
{
    struct resolve_job *j = calloc(1, sizeof(*j));
    pthread_attr_t attr;
    pthread_t th;
    int rc;

    if (!j || !v->resolver) {
        free(j);
        return SW_ENOMEM;
    }
    *j = (struct resolve_job){ .r = v->resolver, .serial = serial, .port = port };
    snprintf(j->host, sizeof(j->host), "%s", host);
    pthread_mutex_lock(&j->r->mu);
    j->r->refs++;
    pthread_mutex_unlock(&j->r->mu);
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    rc = pthread_create(&th, &attr, resolve_main, j);
    pthread_attr_destroy(&attr);
    if (rc) {
        resolver_unref(j->r);
        free(j);
        return SW_ENOMEM;
    }
    return SW_OK;
}
