//! How long-running stages tell the caller what they are doing. The binary shows bars;
//! tests and libraries pass [`NoProgress`].

/// Receives progress from a stage. Implementations must be cheap: `advance` is called
/// once per batch.
pub trait Progress: Sync {
    /// A new phase begins, with the number of units it will take when known.
    fn phase(&self, name: &str, total: Option<u64>);
    /// `n` more units of the current phase are done.
    fn advance(&self, n: u64);
    /// The current phase is over.
    fn finish_phase(&self);
}

/// Progress that goes nowhere.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn phase(&self, _: &str, _: Option<u64>) {}
    fn advance(&self, _: u64) {}
    fn finish_phase(&self) {}
}
