/* version.h — the release every binary reports in --version and /health. */
#ifndef SW_VERSION_H
#define SW_VERSION_H
#define SW_VERSION "0.1.0"
#endif
