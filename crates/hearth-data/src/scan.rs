//! One pass over an [`InputSet`]: batches of raw lines parsed in parallel into records,
//! each valid record numbered in input order, malformed lines collected.

use rayon::prelude::*;

use crate::error::Result;
use crate::input::{InputSet, RawLine};
use crate::record::{Fields, Malformed, Record};

/// Lines per batch handed to the parallel parser.
pub const BATCH_LINES: usize = 1024;

/// A record with the `(file index, line)` it came from.
pub type Located = (Record, (u32, u64));

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
    mut on_batch: impl FnMut(u64, Vec<Located>) -> Result<()>,
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
        let parsed: Vec<std::result::Result<Located, Malformed>> = batch
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

/// How a later pass finds the records of the first one again: their `(file, line)`
/// positions, and, while they fit in a memory budget, their raw lines themselves (so small
/// inputs are read once; large ones are re-read from disk without parsing every line).
#[derive(Debug, Default)]
pub struct Revisit {
    locs: Vec<(u32, u64)>,
    cache: Option<Vec<RawLine>>,
    cached_bytes: u64,
    budget: u64,
}

impl Revisit {
    /// Keeps raw lines in memory until they pass `budget` bytes (0: never).
    pub fn new(budget: u64) -> Revisit {
        Revisit {
            locs: Vec::new(),
            cache: (budget > 0).then(Vec::new),
            cached_bytes: 0,
            budget,
        }
    }

    /// Notes the next document: its position and its raw line.
    pub fn push(&mut self, file: u32, line: u64, bytes: Vec<u8>) {
        self.locs.push((file, line));
        if let Some(cache) = self.cache.as_mut() {
            self.cached_bytes += bytes.len() as u64;
            if self.cached_bytes > self.budget {
                tracing::info!(
                    "input passes the {} byte cache budget: later passes re-read it",
                    self.budget
                );
                self.cache = None;
            } else {
                cache.push(RawLine { file, line, bytes });
            }
        }
    }

    /// Number of documents.
    pub fn len(&self) -> usize {
        self.locs.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.locs.is_empty()
    }

    /// Whether the raw lines are held in memory.
    pub fn is_cached(&self) -> bool {
        self.cache.is_some()
    }

    /// Calls `on_batch(first, lines)` with consecutive runs of documents in order: `lines[k]`
    /// is document `first + k`. Malformed and blank lines are skipped without parsing.
    /// Fails if the input no longer has the same lines.
    pub fn rescan(
        &self,
        inputs: &InputSet,
        mut on_batch: impl FnMut(u32, &[RawLine]) -> Result<()>,
    ) -> Result<()> {
        if let Some(cache) = &self.cache {
            for (c, chunk) in cache.chunks(BATCH_LINES).enumerate() {
                on_batch((c * BATCH_LINES) as u32, chunk)?;
            }
            return Ok(());
        }
        let mut next = 0usize;
        for batch in inputs.batches(BATCH_LINES) {
            let batch = batch?;
            let first = next;
            let mut docs = Vec::with_capacity(batch.lines.len());
            for raw in batch.lines {
                if self.locs.get(next) == Some(&(raw.file, raw.line)) {
                    docs.push(raw);
                    next += 1;
                }
            }
            on_batch(first as u32, &docs)?;
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
