//! The training forward pass against hearth-model's inference `Transformer` on the
//! same files: tiny random llama and gemma3 models, and the real cached models.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use candle_core::DType;
use hearth_model::tiny::TinySpec;
use hearth_model::Transformer;
use hearth_train::{Packed, TrainModel};

/// Max |difference| of all logits and the largest |logit|, over `tokens`.
fn compare(path: &Path, tokens: &[u32]) -> (f32, f32, usize) {
    let inf = Transformer::open(path).unwrap();
    let want: Vec<usize> = (0..tokens.len()).collect();
    let expected = inf.forward(tokens, &mut inf.new_cache(), &want).unwrap();
    let tm = TrainModel::load(path, DType::F32).unwrap();
    let mut b = Packed::default();
    // A leading unrelated sequence checks that packed sequences do not see each other.
    b.push(&tokens[..3], &[]);
    b.push(tokens, &[]);
    let rows: Vec<u32> = (3..3 + tokens.len() as u32).collect();
    let got = tm.logits_at(&b, &rows, None, None).unwrap();
    let got = got.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let vocab = inf.config().vocab_size;
    let mut argmax_same = 0;
    for (e, g) in expected.chunks(vocab).zip(got.chunks(vocab)) {
        let am = |v: &[f32]| {
            v.iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .unwrap()
                .0
        };
        argmax_same += usize::from(am(e) == am(g));
    }
    let diff = expected
        .iter()
        .zip(&got)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    let scale = expected.iter().map(|v| v.abs()).fold(0f32, f32::max);
    eprintln!(
        "{}: max |diff| {diff:.5}, max |logit| {scale:.3}, argmax agrees {argmax_same}/{}",
        path.display(),
        tokens.len()
    );
    (diff, scale, argmax_same)
}

fn tokens(n: usize) -> Vec<u32> {
    (0..n as u32).map(|i| (i * 37 + 11) % 250 + 3).collect()
}

#[test]
fn tiny_llama_matches_inference() {
    let (_d, p) = common::tiny(&TinySpec::llama());
    let (diff, scale, _) = compare(&p, &tokens(24));
    assert!(diff < 2e-2 * scale.max(1.0), "{diff} vs {scale}");
}

#[test]
fn tiny_gemma3_with_its_window_matches_inference() {
    let (_d, p) = common::tiny(&TinySpec::gemma3());
    // Longer than the 16-position window.
    let (diff, scale, _) = compare(&p, &tokens(40));
    assert!(diff < 2e-2 * scale.max(1.0), "{diff} vs {scale}");
}

/// SmolLM2 dequantized to F32: inference multiplies in f32 too, so the two passes
/// agree up to inference's half-precision K/V.
#[test]
fn real_smollm2_in_f32_matches_inference_closely() {
    let Some(p) = common::real("smollm2-135m") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let f32_path = dir.path().join("f32.gguf");
    let src = hearth_convert::GgufSource::open(&p).unwrap();
    let opts = hearth_convert::QuantizeOptions {
        scheme: "F32".parse().unwrap(),
        allow_requantize: true,
        tool_version: "test".into(),
        operation: "convert".into(),
    };
    hearth_convert::quantize(&src, &f32_path, &opts, &mut |_, _, _, _, _| {}).unwrap();
    let file = hearth_gguf::GgufFile::open(&f32_path).unwrap();
    let tok = hearth_tokenizer::Tokenizer::from_gguf(&file).unwrap();
    let ids = tok
        .encode(
            "Gradients flow backwards through every layer of the network.",
            true,
            false,
        )
        .unwrap();
    let (diff, scale, same) = compare(&f32_path, &ids);
    assert!(diff < 0.01 * scale, "{diff} vs {scale}");
    assert_eq!(same, ids.len());
}

#[test]
fn real_models_match_inference() {
    for name in ["smollm2-135m", "gemma3-270m"] {
        let Some(p) = common::real(name) else {
            continue;
        };
        let file = hearth_gguf::GgufFile::open(&p).unwrap();
        let tok = hearth_tokenizer::Tokenizer::from_gguf(&file).unwrap();
        let ids = tok
            .encode(
                "The capital of France is Paris. The capital of Italy is Rome, and the river",
                true,
                false,
            )
            .unwrap();
        let (diff, scale, same) = compare(&p, &ids);
        // Inference quantizes activations to 8 bits for its quantized matmuls and keeps
        // K/V in half precision; training multiplies dequantized weights in f32.
        assert!(diff < 0.08 * scale, "{name}: {diff} vs {scale}");
        assert!(
            same + 1 >= ids.len(),
            "{name}: argmax agrees {same}/{}",
            ids.len()
        );
    }
}

/// Trained-looking adapters written as PEFT and as GGUF LoRA, read back by
/// hearth-model and applied by the inference pass, give the logits the training
/// pass gives with the same adapters: orientation, q/k row order and scale agree.
#[test]
fn adapters_through_files_match_inference_with_lora() {
    use hearth_train::rng::Rng;
    use hearth_train::{LoraConfig, LoraParams, Target};
    for spec in [TinySpec::llama(), TinySpec::gemma3()] {
        let (dir, p) = common::tiny(&spec);
        let tm = TrainModel::load(&p, DType::F32).unwrap();
        let cfg = LoraConfig {
            rank: 4,
            alpha: 8.0,
            dropout: 0.0,
            targets: Target::ALL.to_vec(),
        };
        let lora = LoraParams::new(cfg, tm.config(), 2, DType::F32).unwrap();
        let mut rng = Rng::new(4, 4);
        for (_, v) in lora.named_vars() {
            let vals: Vec<f32> = (0..v.elem_count())
                .map(|_| (rng.next_f32() - 0.5) * 0.2)
                .collect();
            let t = candle_core::Tensor::from_vec(vals, v.shape(), v.device()).unwrap();
            v.set(&t).unwrap();
        }
        let toks = tokens(20);
        let mut b = Packed::default();
        b.push(&toks, &[]);
        let rows: Vec<u32> = (0..toks.len() as u32).collect();
        let train = tm.logits_at(&b, &rows, Some(&lora), None).unwrap();
        let train = train.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let base = tm.logits_at(&b, &rows, None, None).unwrap();
        let base = base.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let adapter = hearth_train::export::to_adapter(&lora, tm.config(), None, None).unwrap();
        let out = dir.path().join("adapter");
        let (_, gguf) = hearth_train::export::write_adapters(&out, &adapter, tm.config()).unwrap();
        let inf = Transformer::open(&p).unwrap();
        let want: Vec<usize> = (0..toks.len()).collect();
        for file in [&out, &gguf] {
            let read = hearth_model::LoraAdapter::open(file, inf.config()).unwrap();
            let bound = inf.bind_lora("t", &read).unwrap();
            let got = inf
                .forward_with(&toks, &mut inf.new_cache(), &want, Some(&bound))
                .unwrap();
            let diff = |a: &[f32], b: &[f32]| {
                a.iter()
                    .zip(b)
                    .map(|(x, y)| (x - y).abs())
                    .fold(0f32, f32::max)
            };
            let scale = got.iter().map(|v| v.abs()).fold(0f32, f32::max);
            let (d, moved) = (diff(&got, &train), diff(&base, &train));
            eprintln!(
                "{} via {}: max |diff| {d:.5} (the adapter moves logits by {moved:.3})",
                spec.arch,
                file.display()
            );
            assert!(d < 2e-2 * scale.max(1.0), "{d} vs {scale}");
            assert!(
                moved > 10.0 * d,
                "the adapter barely matters: {moved} vs {d}"
            );
        }
    }
}
