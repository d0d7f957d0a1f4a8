/* web.h — the hypervisor's web page (the files in hypervisor/web/), compiled into the binary.
 * The files are turned into byte arrays at build time by scripts/embed.sh
 * (build/$(BUILD)/gen/hv_web_data.c); hypervisor/web.c looks them up by URL path. */
#ifndef SW_HYPERVISOR_WEB_H
#define SW_HYPERVISOR_WEB_H

#include <stddef.h>

/* Looks up the embedded file served at PATH ("/" and "/index.html" give the page, "/app.js",
 * "/style.css", ...; PATH is the URL path without the query). Returns 0 and sets *data, *len
 * and *content_type (all borrowed: static, valid for the life of the process), or -1 when no
 * such file is embedded (outputs untouched). */
int hv_web_lookup(const char *path, const unsigned char **data, size_t *len, const char **content_type);

#endif
