/* http.c — :8082 /health and /metrics (the HTTP layer's own threads read the atomics). */
#include "messaging-server/ms.h"
#include "common/metrics.h"
#include "common/version.h"

#include <stdio.h>

static void gauge(struct sw_buf *out, const char *name, const char *help, double v)
{
    sw_metrics_write_header(out, name, "gauge", help);
    sw_metrics_write_sample(out, name, NULL, v);
}

static void counter(struct sw_buf *out, const char *name, const char *help, _Atomic uint64_t *v)
{
    sw_metrics_write_header(out, name, "counter", help);
    sw_metrics_write_sample(out, name, NULL, (double)atomic_load(v));
}

/* name{label="<names[i]>"} for i in [first, n). */
static void labelled(struct sw_buf *out, const char *name, const char *help, const char *label,
                     const char *(*namer)(int), _Atomic uint64_t *v, int first, int n)
{
    char labels[64];
    sw_metrics_write_header(out, name, "counter", help);
    for (int i = first; i < n; i++) {
        snprintf(labels, sizeof(labels), "%s=\"%s\"", label, namer(i));
        sw_metrics_write_sample(out, name, labels, (double)atomic_load(&v[i]));
    }
}

static const char *close_reason_name(int r)
{
    static const char *const names[MS_CLOSE_REASONS] = {
        "local", "eof", "io", "handshake", "protocol", "goaway", "idle", "overflow", "refused",
    };
    return r >= 0 && r < MS_CLOSE_REASONS ? names[r] : "unknown";
}

static void write_metrics(void *app, struct sw_buf *out)
{
    struct ms_server *srv = app;
    struct ms_metrics *m = &srv->m;

    gauge(out, "ms_sessions", "Authenticated client sessions", (double)atomic_load(&m->sessions));
    gauge(out, "ms_max_sessions", "Configured --max-sessions", (double)srv->cfg.max_sessions);
    gauge(out, "ms_handshakes_pending", "Connections still in the Noise handshake",
          (double)atomic_load(&m->handshaking));
    gauge(out, "ms_handshake_sources", "Source addresses (IPv4, IPv6 /64) with pending handshakes",
          (double)atomic_load(&m->handshake_sources));
    gauge(out, "ms_max_handshakes", "Configured --max-handshakes", (double)srv->cfg.max_handshakes);
    gauge(out, "ms_max_handshakes_per_source", "Configured --max-handshakes-per-source",
          (double)srv->cfg.max_handshakes_per_source);
    gauge(out, "ms_streams", "Relayed streams (pending and open)", (double)atomic_load(&m->streams));
    sw_metrics_write_header(out, "ms_handshakes_total", "counter", "Session handshakes by result");
    sw_metrics_write_sample(out, "ms_handshakes_total", "result=\"ok\"", (double)atomic_load(&m->handshakes_ok));
    sw_metrics_write_sample(out, "ms_handshakes_total", "result=\"failed\"",
                            (double)atomic_load(&m->handshakes_failed));
    sw_metrics_write_sample(out, "ms_handshakes_total", "result=\"rejected\"",
                            (double)atomic_load(&m->handshakes_rejected));
    sw_metrics_write_sample(out, "ms_handshakes_total", "result=\"not_a_member\"",
                            (double)atomic_load(&m->handshakes_refused));
    sw_metrics_write_sample(out, "ms_handshakes_total", "result=\"evicted\"",
                            (double)atomic_load(&m->handshakes_evicted));
    sw_metrics_write_sample(out, "ms_handshakes_total", "result=\"source_limit\"",
                            (double)atomic_load(&m->handshakes_source_limited));
    counter(out, "ms_handshake_first_message_timeouts_total",
            "Connections closed without a first handshake message in time (of result=\"failed\")",
            &m->first_message_timeouts);
    counter(out, "ms_members_evicted_total", "Sessions closed: certificate revoked or expired",
            &m->members_evicted);
    counter(out, "ms_streams_opened_total", "Streams forwarded to a listener", &m->streams_opened);
    counter(out, "ms_bytes_relayed_total", "DATA body bytes relayed", &m->bytes_relayed);
    counter(out, "ms_frames_relayed_total", "Frames forwarded between sessions", &m->frames_relayed);
    counter(out, "ms_late_frames_total", "Frames for unknown streams, dropped", &m->late_frames);
    counter(out, "ms_protocol_errors_total", "Sessions dropped for breaking the protocol", &m->protocol_errors);
    labelled(out, "ms_refusals_total", "REFUSE sent to dialers by code", "code", sw_msg_refusal_name,
             m->refusals, 0, MS_REFUSE_CODES);
    labelled(out, "ms_goaways_total", "GOAWAY sent by code", "code", sw_msg_goaway_name, m->goaways, 0,
             MS_GOAWAY_CODES);
    labelled(out, "ms_sessions_closed_total", "Connections closed by reason", "reason", close_reason_name,
             m->closed, 0, MS_CLOSE_REASONS);
    sw_metrics_write_header(out, "ms_registrations_total", "counter", "Entry posts to the discovery by result");
    sw_metrics_write_sample(out, "ms_registrations_total", "result=\"ok\"", (double)atomic_load(&m->registrations_ok));
    sw_metrics_write_sample(out, "ms_registrations_total", "result=\"failed\"",
                            (double)atomic_load(&m->registrations_failed));
}

int ms_http_start(struct ms_server *srv, struct sw_http_server **out, struct sw_error *err)
{
    srv->http_cfg = (struct sw_http_server_config){
        .addr = srv->cfg.http_addr,
        .service = "messaging-server",
        .version = SW_VERSION,
        .threads = 2,
        .max_connections = 64,
        .app = srv,
        .write_metrics = write_metrics,
    };
    return sw_http_server_start(&srv->http_cfg, out, err);
}
