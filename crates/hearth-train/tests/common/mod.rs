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

/// Central finite difference `(f(x + h) - f(x - h)) / 2h` of `loss` in element `j` of
/// `var` (an f64 variable), which is restored afterwards.
pub fn central_difference(var: &candle_core::Var, j: usize, h: f64, loss: impl Fn() -> f64) -> f64 {
    let set = |v: &[f64]| {
        let t = candle_core::Tensor::from_slice(v, var.shape(), var.device()).unwrap();
        var.set(&t).unwrap();
    };
    let orig = var.flatten_all().unwrap().to_vec1::<f64>().unwrap();
    let mut p = orig.clone();
    p[j] += h;
    set(&p);
    let up = loss();
    p[j] -= 2.0 * h;
    set(&p);
    let down = loss();
    set(&orig);
    (up - down) / (2.0 * h)
}
