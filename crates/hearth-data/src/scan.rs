//! One pass over an [`InputSet`]: batches of raw lines parsed in parallel into records,
//! each valid record numbered in input order, malformed lines collected.

use rayon::prelude::*;

use crate::error::Result;
use crate::input::InputSet;
use crate::record::{Fields, Malformed, Record};

/// Lines per batch handed to the parallel parser.
pub const BATCH_LINES: usize = 8192;

/// What a pass saw besides its records.
#[derive(Debug, Default, Clone)]
pub struct ScanStats {
    /// Valid records.
    pub records: u64,
    /// Blank lines skipped.
    pub blank: u64,
    /// Lines (or unreadable file tails) that gave no record, in input order.
    pub malformed: Vec<Malformed>,
}

/// Reads every record of `inputs` in order. `on_batch` gets the index of the batch's first
/// record and the batch's records (parsed in parallel), each with its `(file, line)`. Malformed lines are logged at
/// `warn` and returned in the stats; they never stop the pass.
pub fn scan(
    inputs: &InputSet,
    fields: &Fields,
    mut on_batch: impl FnMut(u64, Vec<(Record, (u32, u64))>) -> Result<()>,
) -> Result<ScanStats> {
    let files = inputs.files();
    let mut stats = ScanStats::default();
    for batch in inputs.batches(BATCH_LINES) {
        let batch = batch?;
        stats.blank += batch.blank;
        for m in batch.unreadable {
            tracing::warn!("{m}");
            stats.malformed.push(m);
        }
        let parsed: Vec<std::result::Result<(Record, (u32, u64)), Malformed>> = batch
            .lines
            .into_par_iter()
            .map(|raw| {
                let loc = (raw.file, raw.line);
                let file = &files[raw.file as usize];
                fields.parse(raw, file).map(|r| (r, loc))
            })
            .collect();
        let mut records = Vec::with_capacity(parsed.len());
        for p in parsed {
            match p {
                Ok(r) => records.push(r),
                Err(m) => {
                    tracing::warn!("skipping malformed line {m}");
                    stats.malformed.push(m);
                }
            }
        }
        let first = stats.records;
        stats.records += records.len() as u64;
        on_batch(first, records)?;
    }
    Ok(stats)
}

/// Where each record of a pass came from: `(file index, line)`, in document order. A later
/// pass over the same input uses it to find records by position without parsing every line.
#[derive(Debug, Default, Clone)]
pub struct Locations {
    locs: Vec<(u32, u64)>,
}

impl Locations {
    /// Notes the location of the next document.
    pub fn push(&mut self, file: u32, line: u64) {
        self.locs.push((file, line));
    }

    /// Number of documents.
    pub fn len(&self) -> usize {
        self.locs.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.locs.is_empty()
    }

    /// Re-reads `inputs` and calls `on_batch` with `(document index, raw line)` for every
    /// line that was a record in the first pass (malformed and blank lines are skipped
    /// without parsing). Fails if the input no longer has the same lines.
    pub fn rescan(
        &self,
        inputs: &InputSet,
        mut on_batch: impl FnMut(Vec<(u32, crate::input::RawLine)>) -> Result<()>,
    ) -> Result<()> {
        let mut next = 0usize;
        for batch in inputs.batches(BATCH_LINES) {
            let batch = batch?;
            let mut docs = Vec::with_capacity(batch.lines.len());
            for raw in batch.lines {
                if self.locs.get(next) == Some(&(raw.file, raw.line)) {
                    docs.push((next as u32, raw));
                    next += 1;
                }
            }
            on_batch(docs)?;
        }
        if next != self.locs.len() {
            return Err(crate::Error::Input {
                path: inputs.files().first().cloned().unwrap_or_default(),
                what: format!(
                    "the input changed while it was being processed: {} of {} records found again",
                    next,
                    self.locs.len()
                ),
            });
        }
        Ok(())
    }
}
