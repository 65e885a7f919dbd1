//! Progress reporting without terminal code.

/// Receives progress of long operations (downloads, unpacking, hashing).
///
/// The library calls [`begin`](Progress::begin) once per phase, then
/// [`advance`](Progress::advance) any number of times, then [`end`](Progress::end).
/// Phases do not nest.
pub trait Progress {
    /// A phase starts: `what` describes it, `total_bytes` is its size when known.
    fn begin(&self, what: &str, total_bytes: Option<u64>);
    /// `bytes` more bytes of the current phase are done (a delta, not a total).
    fn advance(&self, bytes: u64);
    /// The current phase is over.
    fn end(&self);
}

/// A [`Progress`] that shows nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn begin(&self, _what: &str, _total_bytes: Option<u64>) {}
    fn advance(&self, _bytes: u64) {}
    fn end(&self) {}
}

/// Ends the phase when dropped, so that errors (`?`) never leave a phase open.
pub(crate) struct Phase<'a>(&'a dyn Progress);

impl<'a> Phase<'a> {
    pub(crate) fn begin(progress: &'a dyn Progress, what: &str, total: Option<u64>) -> Self {
        progress.begin(what, total);
        Phase(progress)
    }

    pub(crate) fn advance(&self, bytes: u64) {
        self.0.advance(bytes);
    }
}

impl Drop for Phase<'_> {
    fn drop(&mut self) {
        self.0.end();
    }
}
