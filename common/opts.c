#include "common/opts.h"
#include "common/num.h"
#include "common/version.h"

#include <string.h>

/* Every program's --help and --version, matched like the table's own options. */
static const struct sw_opt builtin[] = {
    { "version", NULL, "print the version", SW_OPT_BOOL, NULL, 0, 0, NULL, false },
    { "help", NULL, "this text", SW_OPT_BOOL, NULL, 0, 0, NULL, false },
    SW_OPT_END,
};

static const char *dash_of(const struct sw_opts *o)
{
    return o->dash ? o->dash : "--";
}

/* Looks name[0..len) up in table: an exact match, else the only entry it is a prefix of.
 * *n_prefix counts the entries it is a prefix of when there is no exact match. */
static const struct sw_opt *lookup_in(const struct sw_opt *table, const char *name, size_t len,
                                      size_t *n_prefix)
{
    const struct sw_opt *prefix = NULL;
    for (const struct sw_opt *p = table; p && p->name; p++) {
        if (strncmp(p->name, name, len) != 0)
            continue;
        if (p->name[len] == '\0')
            return p;
        prefix = p;
        ++*n_prefix;
    }
    return prefix;
}

static const struct sw_opt *lookup(const struct sw_opts *o, const char *name, size_t len)
{
    size_t n_prefix = 0;
    const struct sw_opt *own = lookup_in(o->opts, name, len, &n_prefix);
    const struct sw_opt *b;

    if (own && own->name[len] == '\0')
        return own;
    if (len == 1 && name[0] == 'h')
        return &builtin[1]; /* -h: help, unless the table has an option "h" */
    b = lookup_in(builtin, name, len, &n_prefix);
    if (b && b->name[len] == '\0')
        return b;
    if (n_prefix != 1)
        return NULL; /* unknown or ambiguous */
    return own ? own : b;
}

static bool is_builtin(const struct sw_opt *p)
{
    return p >= builtin && p < builtin + sizeof(builtin) / sizeof(builtin[0]);
}

/* Stores one option's value; typed is the option as written ("-addr"). */
static int apply(const struct sw_opt *p, const char *typed, const char *value, struct sw_error *err)
{
    int rc;

    switch (p->type) {
    case SW_OPT_STRING: *(const char **)p->target = value; return SW_OK;
    case SW_OPT_BOOL: *(bool *)p->target = true; return SW_OK;
    case SW_OPT_LONG:
        if (sw_parse_long(value, p->min, p->max, (long *)p->target) == SW_OK)
            return SW_OK;
        return sw_error_set(err, SW_EINVAL, "%s: '%s' is not a number from %ld to %ld", typed, value,
                            p->min, p->max);
    case SW_OPT_FUNC:
        if (err)
            err->msg[0] = '\0';
        rc = p->fn(p->target, value, err);
        if (rc != SW_OK && err && !err->msg[0])
            sw_error_set(err, rc, "%s: bad value '%s'", typed, value ? value : "");
        return rc == SW_OK ? SW_OK : rc < 0 ? rc : SW_EINVAL;
    }
    return SW_EINVAL;
}

static bool has_early(const struct sw_opts *o)
{
    for (const struct sw_opt *p = o->opts; p && p->name; p++)
        if (p->early)
            return true;
    return false;
}

/* One walk over the options. Pass 1 checks the syntax of all, stops at help/version and
 * applies those with early == apply_early (all of them when the table has no early one);
 * pass 2 applies the rest. */
static int walk(const struct sw_opts *o, int argc, char **argv, int pass, bool two_passes,
                struct sw_opts_result *res, struct sw_error *err)
{
    char typed[64];
    int i, rc;

    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *name, *eq, *value = NULL;
        const struct sw_opt *p;
        size_t len;

        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        if (a[0] != '-' || a[1] == '\0')
            break;
        name = a + (a[1] == '-' ? 2 : 1);
        eq = strchr(name, '=');
        len = eq ? (size_t)(eq - name) : strlen(name);
        snprintf(typed, sizeof(typed), "%.*s", (int)(name - a + len), a);
        res->show_usage = true;
        if (!len || !(p = lookup(o, name, len)))
            return sw_error_set(err, SW_EINVAL, "unknown option '%s'", typed);
        if (p->arg && !eq && i + 1 >= argc)
            return sw_error_set(err, SW_EINVAL, "option '%s' needs a value", typed);
        if (!p->arg && eq)
            return sw_error_set(err, SW_EINVAL, "option '%s' takes no value", typed);
        res->show_usage = false;
        if (p->arg)
            value = eq ? eq + 1 : argv[++i];
        if (is_builtin(p)) {
            res->action = p == &builtin[1] ? SW_OPTS_HELP : SW_OPTS_VERSION;
            return SW_OK;
        }
        if ((!two_passes || p->early == (pass == 1)) && (rc = apply(p, typed, value, err)))
            return rc;
    }
    res->first_arg = i;
    return SW_OK;
}

int sw_opts_parse(const struct sw_opts *o, int argc, char **argv, struct sw_opts_result *res,
                  struct sw_error *err)
{
    bool two = has_early(o);
    int rc;

    *res = (struct sw_opts_result){ .action = SW_OPTS_RUN, .first_arg = argc };
    if ((rc = walk(o, argc, argv, 1, two, res, err)) || res->action != SW_OPTS_RUN)
        return rc;
    if (two && (rc = walk(o, argc, argv, 2, two, res, err)))
        return rc;
    if (o->max_args != SW_OPTS_ANY_ARGS && argc - res->first_arg > o->max_args) {
        res->show_usage = true;
        return sw_error_set(err, SW_EINVAL, "unexpected argument '%s'", argv[res->first_arg + o->max_args]);
    }
    return SW_OK;
}

/* Writes text, every line after the first indented to col. */
static void print_indented(FILE *f, const char *text, int col)
{
    for (const char *nl; (nl = strchr(text, '\n')); text = nl + 1)
        fprintf(f, "%.*s\n%*s", (int)(nl - text), text, col, "");
    fprintf(f, "%s\n", text);
}

static int head_width(const struct sw_opt *p, const char *dash)
{
    return 2 + (int)strlen(dash) + (int)strlen(p->name) + (p->arg ? 1 + (int)strlen(p->arg) : 0);
}

/* A longer option name and value start their help text on the next line. */
#define MAX_HEAD 32

static void print_table(FILE *f, const struct sw_opt *table, const char *dash, int col)
{
    for (const struct sw_opt *p = table; p && p->name; p++) {
        int w = head_width(p, dash);
        if (!p->help)
            continue;
        fprintf(f, "  %s%s%s%s", dash, p->name, p->arg ? " " : "", p->arg ? p->arg : "");
        if (w + 2 > col)
            fprintf(f, "\n%*s", col, "");
        else
            fprintf(f, "%*s", col - w, "");
        print_indented(f, p->help, col);
    }
}

void sw_opts_usage(const struct sw_opts *o, FILE *f)
{
    const char *dash = dash_of(o);
    int col = 0;

    for (const struct sw_opt *p = o->opts; p && p->name; p++)
        if (p->help && head_width(p, dash) > col && head_width(p, dash) <= MAX_HEAD)
            col = head_width(p, dash);
    for (const struct sw_opt *p = builtin; p->name; p++)
        if (head_width(p, dash) > col)
            col = head_width(p, dash);
    col += 2;
    fprintf(f, "usage: %s %s\n", o->prog, o->synopsis ? o->synopsis : "[options]");
    if (o->args_help)
        fputs(o->args_help, f);
    print_table(f, o->opts, dash, col);
    print_table(f, builtin, dash, col);
    if (o->footer)
        fputs(o->footer, f);
}

int sw_opts_main(const struct sw_opts *o, int argc, char **argv, int *first_arg)
{
    struct sw_opts_result res;
    struct sw_error err = { 0 };

    if (sw_opts_parse(o, argc, argv, &res, &err) != SW_OK) {
        fprintf(stderr, "%s: %s\n", o->prog, err.msg);
        if (res.show_usage)
            sw_opts_usage(o, stderr);
        return 2;
    }
    if (res.action == SW_OPTS_HELP) {
        sw_opts_usage(o, stdout);
        return 0;
    }
    if (res.action == SW_OPTS_VERSION) {
        printf("%s %s\n", o->prog, SW_VERSION);
        return 0;
    }
    if (first_arg)
        *first_arg = res.first_arg;
    return SW_OPTS_CONTINUE;
}
