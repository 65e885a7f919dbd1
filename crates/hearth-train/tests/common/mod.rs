//! Tiny models in temporary directories and the cached real models, skipped loudly
//! when absent.
#![allow(clippy::unwrap_used, dead_code)]

use std::path::PathBuf;

use hearth_model::tiny::TinySpec;

/// Writes `spec` into a fresh temporary directory.
pub fn tiny(spec: &TinySpec) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.gguf");
    spec.write(&path).unwrap();
    (dir, path)
}

/// The cached model `name`, or `None` after a SKIPPED message.
pub fn real(name: &str) -> Option<PathBuf> {
    let info = hearth_hub::find_model(name).expect("known model");
    let path = hearth_hub::cache_dir().join("models").join(info.file_name);
    if path.exists() {
        Some(path)
    } else {
        eprintln!(
            "SKIPPED: {} absent (run `hearth pull {name}`)",
            path.display()
        );
        None
    }
}
