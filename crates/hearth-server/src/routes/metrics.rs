//! `GET /metrics`: Prometheus text with vLLM's metric names.

use std::fmt::Write;
use std::sync::{Arc, PoisonError};

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use hearth_engine::Histogram;

use crate::state::AppState;

fn histogram(out: &mut String, name: &str, help: &str, model: &str, h: &Histogram) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
    for (b, c) in h.bounds.iter().zip(&h.counts) {
        let _ = writeln!(
            out,
            "{name}_bucket{{model_name=\"{model}\",le=\"{b}\"}} {c}"
        );
    }
    let _ = writeln!(
        out,
        "{name}_bucket{{model_name=\"{model}\",le=\"+Inf\"}} {}\n{name}_sum{{model_name=\"{model}\"}} {}\n{name}_count{{model_name=\"{model}\"}} {}",
        h.count, h.sum, h.count
    );
}

fn metric(
    out: &mut String,
    name: &str,
    kind: &str,
    help: &str,
    model: &str,
    v: impl std::fmt::Display,
) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} {kind}\n{name}{{model_name=\"{model}\"}} {v}"
    );
}

/// Renders the metrics.
pub fn render(state: &AppState) -> String {
    let mut out = String::new();
    if let Some(m) = state.loaded() {
        let s = m.engine.stats();
        let e = m.engine.metrics();
        let n = m.name.as_str();
        metric(
            &mut out,
            "vllm:num_requests_running",
            "gauge",
            "Requests in the running batch.",
            n,
            s.running,
        );
        metric(
            &mut out,
            "vllm:num_requests_waiting",
            "gauge",
            "Requests waiting to run.",
            n,
            s.waiting,
        );
        metric(
            &mut out,
            "vllm:kv_cache_usage_perc",
            "gauge",
            "Fraction of KV-cache blocks in use (1 = 100%).",
            n,
            s.kv_usage,
        );
        metric(
            &mut out,
            "vllm:prefix_cache_queries_total",
            "counter",
            "Prompt tokens looked up in the prefix cache.",
            n,
            s.prompt_tokens,
        );
        metric(
            &mut out,
            "vllm:prefix_cache_hits_total",
            "counter",
            "Prompt tokens found in the prefix cache.",
            n,
            s.prefix_cache.hit_tokens,
        );
        metric(
            &mut out,
            "vllm:num_preemptions_total",
            "counter",
            "Sequences preempted for lack of KV blocks.",
            n,
            s.preemptions,
        );
        metric(
            &mut out,
            "vllm:prompt_tokens_total",
            "counter",
            "Prompt tokens accepted.",
            n,
            s.prompt_tokens,
        );
        metric(
            &mut out,
            "vllm:generation_tokens_total",
            "counter",
            "Tokens generated.",
            n,
            s.generated_tokens,
        );
        let _ = writeln!(
            out,
            "# HELP vllm:request_success_total Finished requests by reason.\n# TYPE vllm:request_success_total counter\nvllm:request_success_total{{model_name=\"{n}\",finished_reason=\"stop\"}} {}\nvllm:request_success_total{{model_name=\"{n}\",finished_reason=\"length\"}} {}\nvllm:request_success_total{{model_name=\"{n}\",finished_reason=\"abort\"}} {}",
            e.finished_stop, e.finished_length, e.cancelled
        );
        histogram(
            &mut out,
            "vllm:time_to_first_token_seconds",
            "Seconds from arrival to the first token.",
            n,
            &e.time_to_first_token,
        );
        histogram(
            &mut out,
            "vllm:inter_token_latency_seconds",
            "Seconds between tokens of a request.",
            n,
            &e.inter_token_latency,
        );
        histogram(
            &mut out,
            "vllm:e2e_request_latency_seconds",
            "Seconds from arrival to the end of a request.",
            n,
            &e.e2e_request_latency,
        );
    }
    let g = &state.guard;
    let load = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
    let _ = writeln!(
        out,
        "# HELP hearth:guard_events_total Requests and replies acted on by guard policies.\n# TYPE hearth:guard_events_total counter\nhearth:guard_events_total{{event=\"input_blocked\"}} {}\nhearth:guard_events_total{{event=\"input_redacted\"}} {}\nhearth:guard_events_total{{event=\"output_blocked\"}} {}\nhearth:guard_events_total{{event=\"output_flagged\"}} {}",
        load(&g.inputs_blocked),
        load(&g.inputs_redacted),
        load(&g.outputs_blocked),
        load(&g.outputs_flagged)
    );
    let _ = writeln!(
        out,
        "# HELP hearth:http_responses_total HTTP responses by status.\n# TYPE hearth:http_responses_total counter"
    );
    for (code, c) in state
        .responses
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
    {
        let _ = writeln!(out, "hearth:http_responses_total{{code=\"{code}\"}} {c}");
    }
    out
}

/// The handler.
pub async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        render(&state),
    )
        .into_response()
}
