/* transport.h — internals shared by transport.c (the per-transport state machine) and
 * control.c (operator commands, the periodic tick, shutdown). Loop thread only. */
#ifndef VISOR_TRANSPORT_H
#define VISOR_TRANSPORT_H

#include "visor/visor.h"

const char *visor_tp_state_name(enum visor_tp_state s);
struct visor_transport *visor_tp_find(struct visor *v, const struct sw_pk *remote,
                                      enum visor_tp_kind kind);
/* A new transport in state DOWN (not remembered); NULL with err on failure. */
struct visor_transport *visor_tp_new(struct visor *v, const struct sw_pk *remote,
                                     enum visor_tp_kind kind, struct sw_error *err);
/* Closes its links, cancels its timer and waiter (410), unlinks and frees it. */
void visor_tp_free(struct visor *v, struct visor_transport *t);
/* Starts a dial. On an immediate failure the failure is handled (the transport goes down,
 * or is freed when provisional) and a non-zero code returned: do not touch t then. */
int visor_tp_dial(struct visor *v, struct visor_transport *t);
/* Changes state with one log line; leaving up posts status down, reaching up registers. */
void visor_tp_set_state(struct visor *v, struct visor_transport *t, enum visor_tp_state s,
                        const char *why);
/* Adds the bytes of a link leaving the transport to its totals. */
void visor_tp_fold_bytes(struct visor_transport *t, const struct visor_link *l);
/* Completes a pending add-tp with an error. */
void visor_tp_fail_waiter(struct visor *v, struct visor_transport *t, int status, const char *code,
                          const char *why);
/* The signed entry (both signatures) once the remote one is known. */
void visor_tp_signed_entry(const struct visor *v, const struct visor_transport *t,
                           struct sw_tp_signed_entry *se);
bool visor_tp_local_is_lower(const struct visor *v, const struct visor_transport *t);
/* The stcp address used to dial t ("" when none). */
const char *visor_tp_dial_addr(const struct visor *v, const struct visor_transport *t);
/* Sends DISCARD packets while output is below VISOR_DISCARD_HIGH. */
void visor_tp_pump_discard(struct visor_transport *t);

#endif
