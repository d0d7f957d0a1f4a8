/* web.c — serves the embedded web page by URL path (see web.h). */
#include "hypervisor/web.h"

#include <string.h>

#include "hypervisor/web_data.h"

static const struct {
    const char *ext;
    const char *type;
} hv_web_types[] = {
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".ico", "image/x-icon"},
    {".json", "application/json"},
    {".txt", "text/plain; charset=utf-8"},
};

static const char *hv_web_type(const char *name)
{
    const char *dot = strrchr(name, '.');

    if (dot) {
        for (size_t i = 0; i < sizeof(hv_web_types) / sizeof(hv_web_types[0]); i++) {
            if (strcmp(dot, hv_web_types[i].ext) == 0)
                return hv_web_types[i].type;
        }
    }
    return "application/octet-stream";
}

int hv_web_lookup(const char *path, const unsigned char **data, size_t *len, const char **content_type)
{
    const char *name;

    if (!path || path[0] != '/')
        return -1;
    name = path + 1;
    if (name[0] == '\0')
        name = "index.html";
    /* Only flat names are embedded: anything with another slash is not ours. */
    if (strchr(name, '/'))
        return -1;
    for (size_t i = 0; i < hv_web_nfiles; i++) {
        if (strcmp(hv_web_files[i].name, name) == 0) {
            *data = hv_web_files[i].data;
            *len = hv_web_files[i].len;
            *content_type = hv_web_type(name);
            return 0;
        }
    }
    return -1;
}
