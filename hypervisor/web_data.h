/* web_data.h — the table of embedded web files that scripts/embed.sh generates
 * (build/$(BUILD)/gen/hv_web_data.c) and hypervisor/web.c reads. Internal to the hypervisor;
 * the daemon uses hypervisor/web.h. */
#ifndef SW_HYPERVISOR_WEB_DATA_H
#define SW_HYPERVISOR_WEB_DATA_H

#include <stddef.h>

struct hv_web_file {
    const char *name;          /* file name in hypervisor/web/, e.g. "app.js" */
    const unsigned char *data; /* its bytes, followed by one NUL not counted in len */
    size_t len;
};

extern const struct hv_web_file hv_web_files[];
extern const size_t hv_web_nfiles;

#endif
