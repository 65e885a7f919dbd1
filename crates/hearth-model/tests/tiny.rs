//! Model-free tests on tiny random models the project writes itself: every weight type
//! loads and agrees with F32, incremental decoding equals one batch, sliding-window KV
//! memory is bounded by the window, and bad files give errors naming the problem.
#![allow(clippy::unwrap_used)]

use hearth_gguf::GgmlType;
use hearth_model::tiny::{TinySpec, VOCAB};
use hearth_model::Transformer;

fn write(spec: &TinySpec, dir: &tempfile::TempDir, name: &str) -> std::path::PathBuf {
    let p = dir.path().join(name);
    spec.write(&p).unwrap();
    p
}

fn tokens(n: usize) -> Vec<u32> {
    (0..n).map(|i| ((i * 37 + 11) % 256) as u32).collect()
}

fn all_logits(m: &Transformer, toks: &[u32]) -> Vec<f32> {
    let mut cache = m.new_cache();
    let want: Vec<usize> = (0..toks.len()).collect();
    m.forward(toks, &mut cache, &want).unwrap()
}

fn correlation(a: &[f32], b: &[f32]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (
        a.iter().map(|&x| x as f64).sum::<f64>() / n,
        b.iter().map(|&x| x as f64).sum::<f64>() / n,
    );
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (&x, &y) in a.iter().zip(b) {
        let (dx, dy) = (x as f64 - ma, y as f64 - mb);
        sab += dx * dy;
        saa += dx * dx;
        sbb += dy * dy;
    }
    sab / (saa * sbb).sqrt()
}

#[test]
fn every_weight_type_loads_and_tracks_f32() {
    let dir = tempfile::tempdir().unwrap();
    let toks = tokens(12);
    for base in [TinySpec::llama(), TinySpec::gemma3()] {
        let reference = Transformer::open(write(&base, &dir, "f32.gguf")).unwrap();
        let want = all_logits(&reference, &toks);
        // The weakest types get the loosest bar: 2 bits per weight is lossy.
        for (dtype, min_corr) in [
            (GgmlType::F16, 0.9999),
            (GgmlType::BF16, 0.999),
            (GgmlType::Q8_0, 0.999),
            (GgmlType::Q8_K, 0.999),
            (GgmlType::Q6_K, 0.995),
            (GgmlType::Q5_0, 0.99),
            (GgmlType::Q5_1, 0.99),
            (GgmlType::Q5_K, 0.99),
            (GgmlType::Q4_0, 0.97),
            (GgmlType::Q4_1, 0.97),
            (GgmlType::Q4_K, 0.97),
            (GgmlType::Q3_K, 0.9),
            (GgmlType::Q2_K, 0.7),
        ] {
            let spec = base.clone().with_dtype(dtype);
            let m = Transformer::open(write(&spec, &dir, &format!("{dtype}.gguf"))).unwrap();
            let got = all_logits(&m, &toks);
            let c = correlation(&want, &got);
            assert!(
                c >= min_corr,
                "{} {dtype}: correlation with F32 {c:.5} < {min_corr}",
                base.arch
            );
        }
    }
}

#[test]
fn incremental_decoding_equals_one_batch() {
    let dir = tempfile::tempdir().unwrap();
    for spec in [TinySpec::llama(), TinySpec::gemma3()] {
        let m = Transformer::open(write(&spec, &dir, "m.gguf")).unwrap();
        // Longer than gemma's 16-position window, so the ring wraps.
        let toks = tokens(40);
        let batch = all_logits(&m, &toks);
        let mut cache = m.new_cache();
        let mut inc = m.forward(&toks[..5], &mut cache, &[0, 1, 2, 3, 4]).unwrap();
        for chunk in toks[5..].chunks(3) {
            let want: Vec<usize> = (0..chunk.len()).collect();
            inc.extend(m.forward(chunk, &mut cache, &want).unwrap());
        }
        let max = batch
            .iter()
            .zip(&inc)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(
            max < 1e-3,
            "{}: incremental and batch logits differ by {max}",
            spec.arch
        );
    }
}

#[test]
fn sliding_window_kv_stays_within_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let spec = TinySpec::gemma3();
    let m = Transformer::open(write(&spec, &dir, "g.gguf")).unwrap();
    let mut cache = m.new_cache();
    let toks = tokens(700);
    m.forward(&toks[..600], &mut cache, &[]).unwrap();
    for &t in &toks[600..] {
        m.forward(&[t], &mut cache, &[]).unwrap();
    }
    let positions = cache.positions_per_layer();
    for (l, layer) in m.config().layers.iter().enumerate() {
        match layer.window {
            Some(w) => assert_eq!(
                positions[l], w,
                "local layer {l} holds {} positions",
                positions[l]
            ),
            None => assert_eq!(positions[l], 700, "global layer {l}"),
        }
    }
}

#[test]
fn windowed_attention_ignores_tokens_beyond_the_window() {
    // With every layer local, logits after the window has passed cannot depend on the
    // earliest tokens, however they change.
    let dir = tempfile::tempdir().unwrap();
    let spec = TinySpec {
        n_layers: 5,
        ..TinySpec::gemma3()
    };
    let m = Transformer::open(write(&spec, &dir, "g.gguf")).unwrap();
    assert!(m.config().layers.iter().all(|l| l.window == Some(16)));
    let a = tokens(120);
    let mut b = a.clone();
    b[0] = 200;
    b[1] = 201;
    let last = |t: &[u32]| m.forward(t, &mut m.new_cache(), &[t.len() - 1]).unwrap();
    // Five layers of a 16-wide window reach back at most 5 * 15 positions.
    assert_eq!(last(&a), last(&b));
    let c = {
        let mut c = a.clone();
        c[110] = 200;
        c
    };
    assert_ne!(last(&a), last(&c));
}

#[test]
fn bad_inputs_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&TinySpec::llama(), &dir, "m.gguf");
    let m = Transformer::open(&path).unwrap();
    let err = m
        .forward(&[VOCAB as u32], &mut m.new_cache(), &[0])
        .unwrap_err()
        .to_string();
    assert!(err.contains("outside the vocabulary"), "{err}");
    let long = vec![1u32; 2049];
    let err = m
        .forward(&long, &mut m.new_cache(), &[0])
        .unwrap_err()
        .to_string();
    assert!(err.contains("context length exceeded"), "{err}");

    let bytes = std::fs::read(&path).unwrap();
    let cut = dir.path().join("cut.gguf");
    std::fs::write(&cut, &bytes[..bytes.len() - 5000]).unwrap();
    let err = Transformer::open(&cut).unwrap_err().to_string();
    assert!(
        err.contains("cut.gguf") && err.contains("tensor `blk.1.") && err.contains("truncated"),
        "{err}"
    );

    let mut spec = TinySpec::llama();
    spec.arch = "mamba";
    let other = dir.path().join("mamba.gguf");
    spec.write(&other).unwrap();
    let err = Transformer::open(&other).unwrap_err().to_string();
    assert!(
        err.contains("architecture `mamba` is not supported") && err.contains("mamba.gguf"),
        "{err}"
    );
}

#[test]
fn hidden_at_the_last_depth_is_the_final_hidden_state() {
    let dir = tempfile::tempdir().unwrap();
    let toks = tokens(9);
    for spec in [TinySpec::llama(), TinySpec::gemma3()] {
        let m = Transformer::open(write(&spec, &dir, "m.gguf")).unwrap();
        let layers = m.config().layers.len();
        let mut cache = m.new_cache();
        let want: Vec<usize> = (0..toks.len()).collect();
        let last = m.forward_hidden(&toks, &mut cache, &want).unwrap();
        let at = m.hidden_at_depths(&toks, &[1, layers]).unwrap();
        assert_eq!(at.len(), 2);
        assert_eq!(at[1], last);
        assert_eq!(at[0].len(), last.len());
        assert_ne!(at[0], last);
        let err = m.hidden_at_depths(&toks, &[layers + 1]).unwrap_err();
        assert!(err.to_string().contains("is not a block"), "{err}");
        assert!(m.hidden_at_depths(&toks, &[0]).is_err());
    }
}
