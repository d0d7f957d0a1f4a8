/* route_acquire.h — getting a route for a route group: paths from the route finder (unless
 * the app gave them), the route group from a setup node (routing.setup_nodes in turn), and a
 * broken or moving group's new route. Blocking: app-socket and re-establishment threads only,
 * never the loop. */
#ifndef VISOR_ROUTE_ACQUIRE_H
#define VISOR_ROUTE_ACQUIRE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "visor/router.h"

struct json_object;

/* POST /routes for count paths per direction to dst; *fwd and *rev (new references) are the
 * best of each: none using transport avoid_tp (a UUID string; NULL or "" for none), fewest
 * transports shared with old_paths ({"forward","reverse"} of a broken route, may be NULL).
 * SW_ENOTFOUND when no usable pair exists. */
int visor_route_find(struct visor *v, const struct sw_pk *dst, int count, const char *avoid_tp,
                     struct json_object *old_paths, struct json_object **fwd, struct json_object **rev,
                     struct sw_error *err);
/* route_group (with "rebind" when rebind) to each key of routing.setup_nodes in turn until
 * one sets the group up; *group = its answer's "group" (new reference). On failure *code is
 * the app-facing error code ("setup_failed") and err says why. Gives up early once *stopping. */
int visor_route_setup(struct visor *v, const atomic_bool *stopping, bool rebind, const struct sw_pk *dst,
                      uint16_t dst_port, uint16_t src_port, struct json_object *fwd, struct json_object *rev,
                      struct json_object **group, const char **code, struct sw_error *err);
/* A re-establishment thread's work: a new route for r's group (find, then setup with rebind),
 * handed to the loop (visor_group_cmd_rebind, which takes an error as well). */
void visor_route_reacquire(struct visor *v, const struct visor_group_reroute *r, const atomic_bool *stopping);

#endif
