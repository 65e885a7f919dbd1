//! Locating the real models and the golden outputs for tests.
#![allow(clippy::unwrap_used)] // test helpers may panic
#![allow(dead_code)]

use std::path::PathBuf;

/// `shared/` beside the repository (CI lays it there too).
pub fn shared_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared"))
}

/// The model cache: `$HEARTH_CACHE`, else `$XDG_CACHE_HOME/hearth`, else `~/.cache/hearth`.
pub fn cache_dir() -> PathBuf {
    if let Some(p) = std::env::var_os("HEARTH_CACHE") {
        return PathBuf::from(p);
    }
    if let Some(p) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(p).join("hearth");
    }
    PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/hearth")
}

/// (golden folder, model file name)
pub const MODELS: [(&str, &str); 2] = [
    ("gemma3-270m", "gemma-3-270m-q4_k_m.gguf"),
    ("smollm2-135m", "SmolLM2-135M-Instruct.Q4_1.gguf"),
];

/// The cached model file, or `None` after a loud message when it is absent.
pub fn model_path(name: &str) -> Option<PathBuf> {
    let file = MODELS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)?;
    let p = cache_dir().join("models").join(file);
    if p.exists() {
        Some(p)
    } else {
        eprintln!("SKIPPED: model {name} not found at {} (run `hearth pull {name}`)", p.display());
        None
    }
}

/// A golden JSON file.
pub fn golden(model: &str, file: &str) -> serde_json::Value {
    let p = shared_dir().join("golden").join(model).join(file);
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap()
}

/// A JSON array of token ids.
pub fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}
