//! Locating shared test data and the model cache.

#![allow(dead_code)]

use std::path::PathBuf;

/// The repository's sibling `shared/` folder.
pub fn shared() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared"))
}

/// `$HEARTH_CACHE`, else `$HOME/.cache/hearth`.
pub fn cache() -> PathBuf {
    if let Some(c) = std::env::var_os("HEARTH_CACHE") {
        return PathBuf::from(c);
    }
    let home = std::env::var_os("HOME").unwrap_or_default();
    PathBuf::from(home).join(".cache/hearth")
}

/// A model file in the cache, or `None` (with a loud note) when it is absent.
pub fn model(file: &str, pull: &str) -> Option<PathBuf> {
    let p = cache().join("models").join(file);
    if p.exists() {
        Some(p)
    } else {
        eprintln!(
            "SKIPPED: model {} not found (run `hearth pull {pull}`)",
            p.display()
        );
        None
    }
}
