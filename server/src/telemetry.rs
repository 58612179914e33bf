//! Logs: `tracing` to stdout, one line per request (method, path, status,
//! latency), human-readable by default or JSON lines with NINEFOLD_JSON_LOGS=1.
//! `RUST_LOG` overrides the levels.

use axum::body::Body;
use axum::http::{Request, Response};
use std::time::Duration;
use tower_http::trace::{HttpMakeClassifier, TraceLayer};
use tracing::Span;
use tracing_subscriber::EnvFilter;

pub fn init(json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false).with_ansi(ansi);
    // `try_init`: tests start several servers in one process and only the first installs.
    let _ = if json { builder.json().flatten_event(true).with_current_span(true).with_span_list(false).try_init() } else { builder.compact().try_init() };
}

type MakeSpan = fn(&Request<Body>) -> Span;
type OnResponse = fn(&Response<Body>, Duration, &Span);

/// A span per request, and exactly one log line when its response is sent.
pub fn request_logging() -> TraceLayer<HttpMakeClassifier, MakeSpan, (), OnResponse, (), (), ()> {
    TraceLayer::new_for_http()
        .make_span_with(request_span as MakeSpan)
        .on_request(())
        .on_response(log_response as OnResponse)
        .on_body_chunk(())
        .on_eos(())
        .on_failure(())
}

fn request_span(request: &Request<Body>) -> Span {
    tracing::info_span!("request", method = %request.method(), path = %request.uri().path())
}

/// The process-wide Prometheus recorder behind `GET /metrics`, installed on first
/// use (tests start several servers in one process; the recorder is global).
pub fn metrics() -> &'static metrics_exporter_prometheus::PrometheusHandle {
    static HANDLE: std::sync::OnceLock<metrics_exporter_prometheus::PrometheusHandle> = std::sync::OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        if let Err(error) = metrics::set_global_recorder(recorder) {
            tracing::warn!(%error, "a metrics recorder was already installed");
        }
        // Histogram samples pile up in the recorder until upkeep folds them into its
        // summaries; without it, every request's latency was kept until the next
        // scrape of /metrics: a sign-in flood grew the server by 300 MB a million
        // requests (the load test found it).
        let upkeep = handle.clone();
        std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || loop {
                std::thread::sleep(std::time::Duration::from_secs(2));
                upkeep.run_upkeep();
            })
            .expect("a thread for metrics upkeep");
        handle
    })
}

fn log_response(response: &Response<Body>, latency: Duration, _span: &Span) {
    let status = response.status().as_u16();
    let class = match status {
        500.. => "5xx",
        400..=499 => "4xx",
        300..=399 => "3xx",
        _ => "2xx",
    };
    metrics::counter!("ninefold_http_requests_total", "status" => class).increment(1);
    metrics::histogram!("ninefold_http_request_seconds").record(latency.as_secs_f64());
    let latency_ms = (latency.as_secs_f64() * 1000.0 * 100.0).round() / 100.0;
    if status >= 500 {
        tracing::error!(status, latency_ms, "served");
    } else {
        tracing::info!(status, latency_ms, "served");
    }
}
