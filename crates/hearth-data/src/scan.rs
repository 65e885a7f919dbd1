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
/// record and the batch's records (parsed in parallel). Malformed lines are logged at
/// `warn` and returned in the stats; they never stop the pass.
pub fn scan(
    inputs: &InputSet,
    fields: &Fields,
    mut on_batch: impl FnMut(u64, Vec<Record>) -> Result<()>,
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
        let parsed: Vec<std::result::Result<Record, Malformed>> = batch
            .lines
            .into_par_iter()
            .map(|raw| {
                let file = &files[raw.file as usize];
                fields.parse(raw, file)
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
