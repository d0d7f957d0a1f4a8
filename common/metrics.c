#include "common/metrics.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

const double sw_hist_bounds[SW_HIST_BUCKETS] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 10,
};

/* The same bounds in integer nanoseconds so observing never touches floating point. */
static const uint64_t hist_bounds_ns[SW_HIST_BUCKETS] = {
    500000ULL,    1000000ULL,   2500000ULL,   5000000ULL,
    10000000ULL,  25000000ULL,  50000000ULL,  100000000ULL,
    250000000ULL, 500000000ULL, 1000000000ULL, 10000000000ULL,
};

void sw_histogram_observe_ns(struct sw_histogram *h, uint64_t ns)
{
    size_t i = 0;
    while (i < SW_HIST_BUCKETS && ns > hist_bounds_ns[i])
        i++;
    atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_ns, ns, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
}

/* Prometheus float syntax: NaN, +Inf, -Inf, else shortest readable decimal. */
static void format_value(char *out, size_t cap, double v)
{
    if (isnan(v))
        snprintf(out, cap, "NaN");
    else if (isinf(v))
        snprintf(out, cap, "%cInf", v > 0 ? '+' : '-');
    else if (v == floor(v) && fabs(v) < 9007199254740992.0)
        snprintf(out, cap, "%.0f", v);
    else
        snprintf(out, cap, "%.15g", v);
}

void sw_metrics_write_header(struct sw_buf *out, const char *name, const char *type,
                             const char *help)
{
    sw_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void sw_metrics_write_sample(struct sw_buf *out, const char *name, const char *labels,
                             double value)
{
    char num[64];
    format_value(num, sizeof(num), value);
    if (labels && *labels)
        sw_buf_printf(out, "%s{%s} %s\n", name, labels, num);
    else
        sw_buf_printf(out, "%s %s\n", name, num);
}

static void write_bucket(struct sw_buf *out, const char *name, const char *labels,
                         const char *le, uint64_t cumulative)
{
    const char *sep = labels && *labels ? "," : "";
    sw_buf_printf(out, "%s_bucket{%s%sle=\"%s\"} %llu\n", name, labels ? labels : "", sep, le,
                  (unsigned long long)cumulative);
}

void sw_metrics_write_histogram(struct sw_buf *out, const char *name, const char *labels,
                                const struct sw_histogram *h)
{
    char le[32], sub[256];
    uint64_t cumulative = 0;

    for (size_t i = 0; i <= SW_HIST_BUCKETS; i++) {
        cumulative += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
        if (i < SW_HIST_BUCKETS)
            snprintf(le, sizeof(le), "%g", sw_hist_bounds[i]);
        else
            snprintf(le, sizeof(le), "+Inf");
        write_bucket(out, name, labels, le, cumulative);
    }
    snprintf(sub, sizeof(sub), "%s_sum", name);
    sw_metrics_write_sample(out, sub, labels,
                            (double)atomic_load_explicit(&h->sum_ns, memory_order_relaxed) / 1e9);
    /* _count must equal the +Inf bucket; reading `count` separately could race ahead. */
    snprintf(sub, sizeof(sub), "%s_count", name);
    sw_metrics_write_sample(out, sub, labels, (double)cumulative);
}

void sw_metrics_escape(char *out, size_t cap, const char *value)
{
    size_t o = 0;
    if (!cap)
        return;
    for (const char *p = value ? value : ""; *p; p++) {
        const char *rep = NULL;
        size_t n;
        if (*p == '\\')
            rep = "\\\\";
        else if (*p == '"')
            rep = "\\\"";
        else if (*p == '\n')
            rep = "\\n";
        n = rep ? 2 : 1;
        /* Truncate whole escapes only, so the output is always a valid label value. */
        if (o + n >= cap)
            break;
        if (rep)
            memcpy(out + o, rep, 2);
        else
            out[o] = *p;
        o += n;
    }
    out[o] = '\0';
}

void sw_metrics_write_one(struct sw_buf *out, const char *name, const char *type, const char *help,
                          double value)
{
    sw_metrics_write_header(out, name, type, help);
    sw_metrics_write_sample(out, name, NULL, value);
}
