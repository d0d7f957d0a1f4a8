/* opts.h — one command-line parser for every binary: a table of options that also generates
 * the usage text.
 *
 * Each option is written -name or --name (both always work; the table says which one usage
 * shows: "--" for daemons, "-" for the apps' Go-style flags), its value as the next argument
 * or after '=' (-addr=:8000). An unambiguous prefix of a name also matches (--thread 4).
 * -h, -help, --help print the usage on stdout; -version, --version print "PROG VERSION".
 * Options are applied in the order given; parsing stops at the first positional argument or
 * after "--" (so SSH-cli's command words are never read as options).
 *
 * A table is a const array ended by an entry whose name is NULL. Targets are written while
 * parsing: a caller that must not see half-applied options parses into its own state.
 * Threads: none; a table and its targets belong to the caller. */
#ifndef SW_OPTS_H
#define SW_OPTS_H

#include <stdbool.h>
#include <stdio.h>

#include "common/err.h"

enum sw_opt_type {
    SW_OPT_STRING, /* const char **target = the value, borrowed from argv */
    SW_OPT_LONG,   /* long *target = the value, a decimal number in [min, max] */
    SW_OPT_BOOL,   /* bool *target = true; the option takes no value */
    SW_OPT_FUNC,   /* fn(target, value, err): lists, keys, addresses; value NULL when arg is NULL */
};

struct sw_opt {
    const char *name; /* without dashes: "max-sessions" */
    const char *arg;  /* the value's name in usage ("N", "HOST:PORT"); NULL: takes no value */
    const char *help; /* usage text; '\n' continues it on the next line under the text column */
    enum sw_opt_type type;
    void *target;
    long min, max; /* SW_OPT_LONG */
    /* SW_OPT_FUNC: SW_OK, or a negative SW_E* code with err naming the option and the value
     * (left empty: "-name: bad value 'v'"). */
    int (*fn)(void *target, const char *value, struct sw_error *err);
    /* Applied before every other option whatever its place (a config file the other options
     * override, as the hypervisor's -c). */
    bool early;
};

/* Entries with the target's type checked by the compiler. */
#define SW_OPT_STR(name, arg, help, ptr) \
    { (name), (arg), (help), SW_OPT_STRING, (1 ? (ptr) : (const char **)0), 0, 0, NULL, false }
#define SW_OPT_NUM(name, arg, help, ptr, lo, hi) \
    { (name), (arg), (help), SW_OPT_LONG, (1 ? (ptr) : (long *)0), (lo), (hi), NULL, false }
#define SW_OPT_FLAG(name, help, ptr) \
    { (name), NULL, (help), SW_OPT_BOOL, (1 ? (ptr) : (bool *)0), 0, 0, NULL, false }
#define SW_OPT_CALL(name, arg, help, fn_, ctx) \
    { (name), (arg), (help), SW_OPT_FUNC, (ctx), 0, 0, (fn_), false }
#define SW_OPT_END { NULL, NULL, NULL, SW_OPT_STRING, NULL, 0, 0, NULL, false }

#define SW_OPTS_ANY_ARGS (-1)

/* A program's command line. */
struct sw_opts {
    const char *prog;      /* "skychat": error lines, usage, --version */
    const char *synopsis;  /* usage line after prog; NULL: "[options]" */
    const char *args_help; /* lines after the usage line describing positional arguments, or NULL */
    const char *footer;    /* lines after the options (environment, notes), or NULL */
    const char *dash;      /* how usage writes option names: "--" or "-" (NULL: "--") */
    const struct sw_opt *opts;
    int max_args; /* positional arguments allowed (SW_OPTS_ANY_ARGS: no limit) */
};

enum sw_opts_action { SW_OPTS_RUN, SW_OPTS_HELP, SW_OPTS_VERSION };

struct sw_opts_result {
    enum sw_opts_action action;
    int first_arg;   /* argv index of the first positional argument (argc when none) */
    bool show_usage; /* on error: an unknown option, a missing value or an extra argument */
};

/* Parses argv[1..argc-1] into the table's targets. SW_OK with *res, or SW_EINVAL (a
 * callback's own code) with err naming the option: "unknown option '--x'", "option
 * '--threads' needs a value", "--threads: 'x' is not a number from 1 to 256". Prints nothing. */
int sw_opts_parse(const struct sw_opts *o, int argc, char **argv, struct sw_opts_result *res,
                  struct sw_error *err);

/* The generated usage: usage line, args_help, one aligned line per option (help first
 * line), -version and -help, footer. */
void sw_opts_usage(const struct sw_opts *o, FILE *f);

/* For main(): parses, prints help/version (stdout) or "PROG: why" and, after a syntax error,
 * the usage (stderr). Returns SW_OPTS_CONTINUE with *first_arg set (may be NULL), or the
 * exit status: 0 after help/version, 2 after an error. */
#define SW_OPTS_CONTINUE (-1)
int sw_opts_main(const struct sw_opts *o, int argc, char **argv, int *first_arg);

#endif
