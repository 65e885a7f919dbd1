//! CPU time per block pair of the tiled quantized products, on one thread.
//!
//! `cargo run --release -p hearth-kernels --example gemm_speed`. CPU time (from
//! `/proc/thread-self/schedstat`) rather than wall time, so a busy machine skews it less.

use std::hint::black_box;

use half::f16;
use hearth_kernels::quant::{
    self, BlockQ4K, BlockQ4_1, BlockQ5_0, BlockQ6K, BlockQ8K, BlockQ8_0, BlockQ8_1,
};

fn cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

struct Rng(u64);
impl Rng {
    fn byte(&mut self) -> u8 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) as u8
    }
    fn half(&mut self) -> f16 {
        f16::from_f32(f32::from(self.byte()) / 2550.0)
    }
}

fn time(label: &str, pairs: usize, mut f: impl FnMut()) {
    f();
    let mut reps = 0;
    let start = cpu_ns();
    while cpu_ns() - start < 400_000_000 {
        f();
        reps += 1;
    }
    let ns = (cpu_ns() - start) as f64 / reps as f64;
    println!("{label:<28} {:7.2} ns per block pair", ns / pairs as f64);
}

fn main() {
    let mut rng = Rng(1);
    let (rows, k) = (2048, 20);
    let q41: Vec<BlockQ4_1> = (0..rows * k)
        .map(|_| BlockQ4_1 {
            d: rng.half(),
            m: rng.half(),
            qs: std::array::from_fn(|_| rng.byte()),
        })
        .collect();
    let q50: Vec<BlockQ5_0> = (0..rows * k)
        .map(|_| BlockQ5_0 {
            d: rng.half(),
            qh: std::array::from_fn(|_| rng.byte()),
            qs: std::array::from_fn(|_| rng.byte()),
        })
        .collect();
    let q80: Vec<BlockQ8_0> = (0..rows * k)
        .map(|_| BlockQ8_0 {
            d: rng.half(),
            qs: std::array::from_fn(|_| (rng.byte() as i8).max(-127)),
        })
        .collect();
    for n in [1usize, 4, 16, 128] {
        let a0: Vec<BlockQ8_0> = (0..n * k)
            .map(|_| BlockQ8_0 {
                d: rng.half(),
                qs: std::array::from_fn(|_| (rng.byte() as i8).max(-127)),
            })
            .collect();
        let a1: Vec<BlockQ8_1> = (0..n * k)
            .map(|_| BlockQ8_1 {
                d: rng.half(),
                s: rng.half(),
                qs: std::array::from_fn(|_| rng.byte() as i8),
            })
            .collect();
        let pairs = rows * n * k;
        let mut sink = 0f32;
        time(&format!("q4_1 x q8_1 n={n}"), pairs, || {
            quant::gemm_q4_1_q8_1(&q41, &a1, k, &mut |_, _, v| sink += v)
        });
        time(&format!("q5_0 x q8_0 n={n}"), pairs, || {
            quant::gemm_q5_0_q8_0(&q50, &a0, k, &mut |_, _, v| sink += v)
        });
        if quant::packed::available(quant::packed::PackedKind::Q5_0) {
            let p5 = quant::packed::PackedMatrix::q5_0(&q50, k);
            let p4 = quant::packed::PackedMatrix::q4_1(&q41, k);
            time(&format!("q5_0 x q8_0 n={n} packed"), pairs, || {
                let prep = quant::packed::prepare_q8_0(&a0, quant::packed::PackedKind::Q5_0);
                quant::packed::gemm(&p5, 0..p5.groups(), &a0, &prep, &mut |_, _, v| sink += v)
            });
            time(&format!("q4_1 x q8_1 n={n} packed"), pairs, || {
                let prep = quant::packed::prepare_q8_1(&a1);
                quant::packed::gemm(&p4, 0..p4.groups(), &a1, &prep, &mut |_, _, v| sink += v)
            });
        }
        if quant::packed::available(quant::packed::PackedKind::Q8_0) {
            let p8 = quant::packed::PackedMatrix::q8_0(&q80, k);
            time(&format!("q8_0 x q8_0 n={n} packed"), pairs, || {
                let prep = quant::packed::prepare_q8_0(&a0, quant::packed::PackedKind::Q8_0);
                quant::packed::gemm(&p8, 0..p8.groups(), &a0, &prep, &mut |_, _, v| sink += v)
            });
        }
        time(&format!("q5_0 x q8_0 n={n} row dots"), pairs, || {
            for r in 0..rows {
                for t in 0..n {
                    sink +=
                        quant::vec_dot_q5_0_q8_0(&q50[r * k..(r + 1) * k], &a0[t * k..(t + 1) * k]);
                }
            }
        });
        time(&format!("q8_0 x q8_0 n={n}"), pairs, || {
            quant::gemm_q8_0_q8_0(&q80, &a0, k, &mut |_, _, v| sink += v)
        });
        // K-quants: 2048 columns (8 super-blocks), timed per 32 values for comparison.
        let kk = 8;
        let q4k: Vec<BlockQ4K> = (0..rows * kk)
            .map(|_| BlockQ4K {
                d: rng.half(),
                dmin: rng.half(),
                scales: std::array::from_fn(|_| rng.byte()),
                qs: std::array::from_fn(|_| rng.byte()),
            })
            .collect();
        let q6k: Vec<BlockQ6K> = (0..rows * kk)
            .map(|_| BlockQ6K {
                ql: std::array::from_fn(|_| rng.byte()),
                qh: std::array::from_fn(|_| rng.byte()),
                scales: std::array::from_fn(|_| rng.byte() as i8),
                d: rng.half(),
            })
            .collect();
        let a8k: Vec<BlockQ8K> = (0..n * kk)
            .map(|_| BlockQ8K {
                d: 0.01,
                qs: std::array::from_fn(|_| (rng.byte() as i8).max(-127)),
                bsums: [0; 16],
            })
            .collect();
        let pairs = rows * n * kk * 8;
        time(&format!("q4_K x q8_K n={n}"), pairs, || {
            quant::gemm_q4k_q8k(&q4k, &a8k, kk, &mut |_, _, v| sink += v)
        });
        time(&format!("q6_K x q8_K n={n}"), pairs, || {
            quant::gemm_q6k_q8k(&q6k, &a8k, kk, &mut |_, _, v| sink += v)
        });
        black_box(sink);
    }
}
