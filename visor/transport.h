/* transport.h — internals shared by transport.c (the per-transport state machine) and
 * control.c (operator commands, the periodic tick, shutdown). Loop thread only. */
#ifndef VISOR_TRANSPORT_H
#define VISOR_TRANSPORT_H

#include "visor/visor.h"

const char *tp_state_name(enum tp_state s);
struct transport *tp_find(struct visor *v, const struct sw_pk *remote, enum tp_kind kind);
/* A new transport in state DOWN (not remembered); NULL with err on failure. */
struct transport *tp_new(struct visor *v, const struct sw_pk *remote, enum tp_kind kind,
                         struct sw_error *err);
/* Closes its links, cancels its timer and waiter (410), unlinks and frees it. */
void tp_free(struct visor *v, struct transport *t);
/* Starts a dial. On an immediate failure the failure is handled (the transport goes down,
 * or is freed when provisional) and a non-zero code returned: do not touch t then. */
int tp_dial(struct visor *v, struct transport *t);
/* Changes state with one log line; leaving up posts status down, reaching up registers. */
void tp_set_state(struct visor *v, struct transport *t, enum tp_state s, const char *why);
/* Adds the bytes of a link leaving the transport to its totals. */
void tp_fold_bytes(struct transport *t, const struct link *l);
/* Completes a pending add-tp with an error. */
void tp_fail_waiter(struct visor *v, struct transport *t, int status, const char *code,
                    const char *why);
/* The signed entry (both signatures) once the remote one is known. */
void tp_signed_entry(const struct visor *v, const struct transport *t, struct sw_tp_signed_entry *se);
bool tp_local_is_lower(const struct visor *v, const struct transport *t);
/* The stcp address used to dial t ("" when none). */
const char *tp_dial_addr(const struct visor *v, const struct transport *t);
/* Sends DISCARD packets while output is below VISOR_DISCARD_HIGH. */
void tp_pump_discard(struct transport *t);

#endif
