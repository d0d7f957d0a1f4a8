/* tty_out.c — what skywire-cli prints to a terminal is cleaned of control characters.
 *
 * Tables show strings that visors, hypervisors and services chose (app names, log lines,
 * labels, error messages). On a terminal, an escape sequence among them could move the
 * cursor, rewrite earlier lines or set the window title, so every C0 control but newline and
 * tab, DEL, and the UTF-8 encoded C1 controls (U+0080..U+009F) become '?'. Output to a pipe
 * or file is left as it is (--json output escapes control characters by itself). */
#include "visor/cli/cli.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

size_t cli_tty_clean(char *out, const char *in, size_t n, bool *after_c2)
{
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        if (*after_c2) { /* the byte after 0xC2: 0x80..0x9F would make a C1 control */
            *after_c2 = false;
            if (c >= 0x80 && c <= 0x9f) {
                out[o++] = '?';
                continue;
            }
            out[o++] = (char)0xc2;
        }
        if (c == 0xc2) {
            *after_c2 = true;
            continue;
        }
        out[o++] = (c < 0x20 && c != '\n' && c != '\t') || c == 0x7f ? '?' : (char)c;
    }
    return o;
}

struct tty_sink {
    int fd;
    bool after_c2;
};

static ssize_t sink_write(void *cookie, const char *buf, size_t n)
{
    struct tty_sink *t = cookie;
    char clean[4096 + 1];
    size_t done = 0;

    while (done < n) {
        size_t chunk = n - done < 4096 ? n - done : 4096;
        size_t len = cli_tty_clean(clean, buf + done, chunk, &t->after_c2);
        for (size_t off = 0; off < len;) {
            ssize_t w = write(t->fd, clean + off, len - off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                return done ? (ssize_t)done : -1;
            off += (size_t)w;
        }
        done += chunk;
    }
    return (ssize_t)n;
}

static FILE *wrap(int fd, int buffering)
{
    static struct tty_sink sinks[2];
    struct tty_sink *t = &sinks[fd == STDERR_FILENO];
    cookie_io_functions_t io = { .write = sink_write };
    FILE *f;

    t->fd = fd;
    if (!(f = fopencookie(t, "w", io)))
        return NULL;
    setvbuf(f, NULL, buffering, BUFSIZ);
    return f;
}

void cli_tty_sanitize(void)
{
    FILE *f;

    if (isatty(STDOUT_FILENO) && (f = wrap(STDOUT_FILENO, _IOLBF)))
        stdout = f;
    if (isatty(STDERR_FILENO) && (f = wrap(STDERR_FILENO, _IONBF)))
        stderr = f;
}
