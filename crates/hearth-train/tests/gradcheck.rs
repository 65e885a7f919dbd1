//! Gradients of the LoRA parameters of every layer against central finite
//! differences, in f64, on tiny llama and gemma3 models: the check that no layer's
//! adapter trains on a detached or wrong gradient.
#![allow(clippy::unwrap_used)]

mod common;

use candle_core::{DType, Tensor};
use hearth_model::tiny::TinySpec;
use hearth_train::rng::Rng;
use hearth_train::{LoraConfig, LoraParams, Packed, Target, TrainModel};

fn batch() -> Packed {
    let mut b = Packed::default();
    let a: Vec<u32> = (0..20).map(|i| (i * 31 + 7) % 250 + 3).collect();
    let c: Vec<u32> = (0..9).map(|i| (i * 13 + 5) % 250 + 3).collect();
    b.push(&a, &(0..20).map(|i| i >= 8).collect::<Vec<_>>());
    b.push(&c, &[true; 9]);
    b
}

fn check(spec: TinySpec) {
    let (_d, path) = common::tiny(&spec);
    let model = TrainModel::load(&path, DType::F64).unwrap();
    let cfg = LoraConfig {
        rank: 3,
        alpha: 6.0,
        dropout: 0.0,
        targets: Target::ALL.to_vec(),
    };
    let lora = LoraParams::new(cfg, model.config(), 1, DType::F64).unwrap();
    // B starts at zero, where A's gradient vanishes: make both non-zero.
    let mut rng = Rng::new(9, 9);
    for (_, v) in lora.named_vars() {
        let vals: Vec<f64> = (0..v.elem_count())
            .map(|_| (rng.next_f32() as f64 - 0.5) * 0.2)
            .collect();
        let f = Tensor::from_slice(&vals, v.shape(), v.device()).unwrap();
        v.set(&f.to_dtype(DType::F64).unwrap()).unwrap();
    }
    let b = batch();
    let loss = |l: &LoraParams| {
        model
            .loss_sum(&b, Some(l), None)
            .unwrap()
            .to_scalar::<f64>()
            .unwrap()
    };
    let grads = model
        .loss_sum(&b, Some(&lora), None)
        .unwrap()
        .backward()
        .unwrap();
    let n_layers = model.config().n_layers();
    let mut checked = 0;
    let mut worst = 0f64;
    for (name, var) in lora.named_vars() {
        let layer: usize = name.split('.').nth(1).unwrap().parse().unwrap();
        // Every target of the first, second and last layers.
        if layer > 1 && layer + 1 != n_layers {
            continue;
        }
        let g = grads
            .get(var)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f64>()
            .unwrap();
        let len = var.elem_count();
        for &j in &[0, len / 2 + 1, len - 1] {
            let fd = common::central_difference(var, j, 1e-5, || loss(&lora));
            let err = (fd - g[j]).abs() / (fd.abs() + g[j].abs()).max(1e-6);
            worst = worst.max(err);
            assert!(
                err < 1e-4,
                "{name}[{j}]: autograd {} vs finite difference {fd}",
                g[j]
            );
            checked += 1;
        }
    }
    eprintln!(
        "{}: {checked} gradients checked, worst relative error {worst:.2e}",
        spec.arch
    );
    assert!(checked >= 2 * 14 * 3);
}

#[test]
fn llama_lora_gradients_match_finite_differences() {
    check(TinySpec::llama());
}

#[test]
fn gemma3_lora_gradients_match_finite_differences() {
    check(TinySpec::gemma3());
}
