//! Latency histograms and request counters the engine keeps for a server to export.
//!
//! Bucket bounds follow vLLM's (seconds), so dashboards built for its
//! `vllm:time_to_first_token_seconds` and friends read ours the same way.

/// A cumulative histogram in Prometheus' sense: `counts[i]` is the number of
/// observations `<= bounds[i]`; observations above every bound count only in `count`.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    /// Upper bounds of the buckets, ascending.
    pub bounds: &'static [f64],
    /// Observations at or below each bound.
    pub counts: Vec<u64>,
    /// Sum of all observations.
    pub sum: f64,
    /// Number of observations.
    pub count: u64,
}

impl Histogram {
    /// An empty histogram over `bounds`.
    pub fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: vec![0; bounds.len()],
            sum: 0.0,
            count: 0,
        }
    }

    /// Records one observation.
    pub fn observe(&mut self, v: f64) {
        for (b, c) in self.bounds.iter().zip(&mut self.counts) {
            if v <= *b {
                *c += 1;
            }
        }
        self.sum += v;
        self.count += 1;
    }
}

/// Time to first token bounds (seconds), as vLLM.
pub const TTFT_BOUNDS: &[f64] = &[
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
];

/// Inter-token latency bounds (seconds), as vLLM.
pub const ITL_BOUNDS: &[f64] = &[
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0,
    40.0, 80.0,
];

/// End-to-end request latency bounds (seconds), as vLLM.
pub const E2E_BOUNDS: &[f64] = &[
    0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0,
    480.0, 960.0, 1920.0, 7680.0,
];

/// What the engine measured since it started.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineMetrics {
    /// Seconds from submit to the first generated token.
    pub time_to_first_token: Histogram,
    /// Seconds between consecutive tokens of one request.
    pub inter_token_latency: Histogram,
    /// Seconds from submit to the end of a finished request.
    pub e2e_request_latency: Histogram,
    /// Requests that ended with an end-of-generation token or a stop string.
    pub finished_stop: u64,
    /// Requests that ended at `max_tokens` or the context's end.
    pub finished_length: u64,
    /// Requests cancelled by their caller (stream dropped) before the end.
    pub cancelled: u64,
    /// Requests ended by a failed model step.
    pub failed: u64,
    /// Requests refused at admission (overloaded, too long, bad parameters).
    pub rejected: u64,
}

impl Default for EngineMetrics {
    fn default() -> Self {
        Self {
            time_to_first_token: Histogram::new(TTFT_BOUNDS),
            inter_token_latency: Histogram::new(ITL_BOUNDS),
            e2e_request_latency: Histogram::new(E2E_BOUNDS),
            finished_stop: 0,
            finished_length: 0,
            cancelled: 0,
            failed: 0,
            rejected: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative() {
        let mut h = Histogram::new(&[1.0, 2.0, 3.0]);
        for v in [0.5, 1.5, 2.5, 10.0] {
            h.observe(v);
        }
        assert_eq!(h.counts, vec![1, 2, 3]);
        assert_eq!(h.count, 4);
        assert!((h.sum - 14.5).abs() < 1e-12);
    }
}
