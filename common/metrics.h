/* metrics.h — Prometheus text-format primitives.
 *
 * Counters and histograms are lock-free (C11 atomics) so the hot path never takes a lock.
 * The sw_metrics_write_* helpers append "# HELP", "# TYPE" and sample lines to a sw_buf.
 * `labels` is either NULL or a preformatted label list without braces, e.g.
 * `route="/health",status="200"`; callers escape label values with sw_metrics_escape. */
#ifndef SW_METRICS_H
#define SW_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define SW_HIST_BUCKETS 12 /* latency buckets in seconds: 0.0005 .. 10, plus +Inf */

struct sw_histogram {
    _Atomic uint64_t buckets[SW_HIST_BUCKETS + 1]; /* non-cumulative; last = +Inf */
    _Atomic uint64_t count;
    _Atomic uint64_t sum_ns;
};

extern const double sw_hist_bounds[SW_HIST_BUCKETS]; /* upper bounds in seconds */

void sw_histogram_observe_ns(struct sw_histogram *h, uint64_t ns);

/* Write the HELP/TYPE header once per metric name, then samples. */
void sw_metrics_write_header(struct sw_buf *out, const char *name, const char *type,
                             const char *help);
void sw_metrics_write_sample(struct sw_buf *out, const char *name, const char *labels,
                             double value);
/* One unlabelled metric: its HELP/TYPE header and its single sample. */
void sw_metrics_write_one(struct sw_buf *out, const char *name, const char *type, const char *help,
                          double value);
/* Writes name_bucket{...,le=...}, name_sum, name_count lines for h. */
void sw_metrics_write_histogram(struct sw_buf *out, const char *name, const char *labels,
                                const struct sw_histogram *h);
/* Escapes \ " and newline for a label value into out (cap bytes, NUL-terminated). */
void sw_metrics_escape(char *out, size_t cap, const char *value);

#endif
