//! Times `QMatrix::matmul` on real weights: a 576→1536 Q4_1 matrix from SmolLM2-135M
//! and a 640→2048 Q5_0 matrix from Gemma-3-270M, at 1 and 512 tokens.
//!
//! `cargo run --release -p hearth-model --example matmul_speed [-- MODEL_DIR]`
//! (default `~/.cache/hearth/models`). Prints GFLOP/s and matrix-rows·tokens/s.

use std::{path::PathBuf, sync::Arc, time::Instant};

use hearth_gguf::{GgmlType, GgufFile};
use hearth_model::QMatrix;

fn find(
    dir: &std::path::Path,
    file: &str,
    dtype: GgmlType,
    cols: u64,
    rows: u64,
) -> Option<QMatrix> {
    let path = dir.join(file);
    let gguf = match GgufFile::open(&path) {
        Ok(f) => Arc::new(f),
        Err(e) => {
            eprintln!("skipping {}: {e}", path.display());
            return None;
        }
    };
    let info = gguf
        .tensors()
        .iter()
        .find(|t| t.dtype == dtype && t.dims == [cols, rows])?
        .clone();
    eprintln!("{file}: {} ({dtype}, {cols}→{rows})", info.name);
    QMatrix::new(&gguf, &info, rows as usize, cols as usize).ok()
}

fn bench(m: &QMatrix, n: usize) {
    let x: Vec<f32> = (0..n * m.cols())
        .map(|i| ((i * 7919 % 1000) as f32 / 500.0) - 1.0)
        .collect();
    let mut out = vec![0f32; n * m.rows()];
    m.matmul(&x, &mut out); // warm-up
    let flops = 2.0 * (m.rows() * m.cols() * n) as f64;
    // About half a second of work per case.
    let reps = ((0.5e9 / flops) as usize).clamp(3, 20_000);
    let start = Instant::now();
    for _ in 0..reps {
        m.matmul(&x, &mut out);
    }
    let secs = start.elapsed().as_secs_f64() / reps as f64;
    println!(
        "{:?} {:>4} tok: {:>9.1} µs/call {:>7.2} GFLOP/s {:>9.0} tok/s",
        m.dtype(),
        n,
        secs * 1e6,
        flops / secs / 1e9,
        n as f64 / secs
    );
}

fn main() {
    let dir = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/hearth/models")
        });
    println!(
        "threads: {}, kernel: {}",
        rayon::current_num_threads(),
        hearth_kernels::quant::simd_kernel()
    );
    let cases = [
        ("SmolLM2-135M-Instruct.Q4_1.gguf", GgmlType::Q4_1, 576, 1536),
        ("gemma-3-270m-q4_k_m.gguf", GgmlType::Q5_0, 640, 2048),
    ];
    for (file, dtype, cols, rows) in cases {
        let Some(m) = find(&dir, file, dtype, cols, rows) else {
            eprintln!("no {dtype} {cols}→{rows} matrix in {file}");
            continue;
        };
        for n in [1, 512] {
            bench(&m, n);
        }
    }
}
