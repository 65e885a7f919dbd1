//! Quantizing tiny models to every type: the files load and run in hearth-model,
//! quality follows the bits, the recipe assigns the mixture, provenance is recorded.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use common::{logits, rel_err};
use hearth_convert::source::GgufSource;
use hearth_convert::{quantize, ModelFacts, QuantizeOptions, Scheme};
use hearth_gguf::{GgmlType, GgufFile};
use hearth_model::tiny::TinySpec;

fn opts(scheme: &str) -> QuantizeOptions {
    QuantizeOptions {
        scheme: scheme.parse().unwrap(),
        allow_requantize: false,
        tool_version: "test".into(),
        operation: "quantize".into(),
    }
}

fn run(src: &Path, out: &Path, scheme: &str) -> hearth_convert::WriteSummary {
    let s = GgufSource::open(src).unwrap();
    let mut calls = 0;
    let summary = quantize(&s, out, &opts(scheme), &mut |_, _, _, _, _| calls += 1).unwrap();
    assert_eq!(calls, summary.tensors, "progress after every tensor");
    summary
}

#[test]
fn every_type_loads_runs_and_error_follows_bits() {
    let dir = tempfile::tempdir().unwrap();
    for spec in [TinySpec::llama(), TinySpec::gemma3()] {
        let src = dir.path().join(format!("{}-f32.gguf", spec.arch));
        spec.write(&src).unwrap();
        let reference = logits(&src);
        let mut errs = std::collections::HashMap::new();
        for t in [
            "F32", "F16", "BF16", "Q8_0", "Q6_K", "Q5_K", "Q5_1", "Q5_0", "Q4_K", "Q4_1", "Q4_0",
            "Q3_K", "Q2_K", "Q4_K_M", "Q5_K_M",
        ] {
            let out = dir.path().join(format!("{}-{t}.gguf", spec.arch));
            run(&src, &out, t);
            let f = GgufFile::open(&out).unwrap();
            if let Scheme::Uniform(ty) = t.parse::<Scheme>().unwrap() {
                let q = f.tensor("blk.0.attn_q.weight").unwrap();
                assert_eq!(q.dtype, ty, "{t}");
            }
            assert_eq!(
                f.tensor("blk.0.attn_norm.weight").unwrap().dtype,
                GgmlType::F32
            );
            let e = rel_err(&reference, &logits(&out));
            errs.insert(t, e);
        }
        eprintln!("{}: {errs:?}", spec.arch);
        let e = |t: &str| errs[t];
        assert_eq!(e("F32"), 0.0);
        assert!(e("F16") < 0.01, "{errs:?}");
        assert!(e("Q8_0") < 0.02, "{errs:?}");
        assert!(e("Q8_0") < e("Q5_0") && e("Q5_0") < e("Q4_0"), "{errs:?}");
        assert!(e("Q6_K") < e("Q4_K") && e("Q4_K") < e("Q2_K"), "{errs:?}");
        assert!(e("Q4_K_M") <= e("Q4_K") * 1.05, "{errs:?}");
        assert!(e("Q4_K") < 0.25, "{errs:?}");
    }
}

#[test]
fn q4_k_m_mixture_and_provenance() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("f32.gguf");
    TinySpec {
        n_layers: 8,
        ..TinySpec::llama()
    }
    .write(&src)
    .unwrap();
    let out = dir.path().join("q4km.gguf");
    let s = run(&src, &out, "Q4_K_M");
    let f = GgufFile::open(&out).unwrap();
    let ty = |n: &str| f.tensor(n).unwrap().dtype;
    // 8 layers: 0 (first eighth), 7 (last eighth), 3 and 6 ((i - 1) % 3 == 2) get Q6_K.
    for (i, want) in [
        (0, GgmlType::Q6_K),
        (1, GgmlType::Q4_K),
        (3, GgmlType::Q6_K),
        (5, GgmlType::Q4_K),
        (6, GgmlType::Q6_K),
        (7, GgmlType::Q6_K),
    ] {
        assert_eq!(ty(&format!("blk.{i}.ffn_down.weight")), want, "layer {i}");
        assert_eq!(ty(&format!("blk.{i}.attn_v.weight")), want, "layer {i}");
    }
    assert_eq!(ty("blk.1.ffn_up.weight"), GgmlType::Q4_K);
    assert_eq!(ty("output.weight"), GgmlType::Q6_K);
    assert_eq!(ty("token_embd.weight"), GgmlType::Q4_K);
    assert_eq!(f.u64("general.file_type").unwrap(), 15);
    assert_eq!(s.types["Q6_K"], 4 * 2 + 1);
    let facts = ModelFacts::open(&out).unwrap();
    let p = facts.provenance.unwrap();
    assert_eq!(p.operation, "quantize");
    assert_eq!(p.parameters["type"], "Q4_K_M");
    assert_eq!(p.license.as_deref(), Some("apache-2.0"));
    assert_eq!(p.source_file, "f32.gguf");
    let bytes = std::fs::read(&src).unwrap();
    use sha2::Digest;
    let want: String = sha2::Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(p.source_sha256, want);
    // Quantizing the result again keeps the first record as `previous`.
    let again = dir.path().join("q8.gguf");
    let s2 = GgufSource::open(&out).unwrap();
    let mut o = opts("Q8_0");
    o.allow_requantize = true;
    quantize(&s2, &again, &o, &mut |_, _, _, _, _| {}).unwrap();
    let p2 = ModelFacts::open(&again).unwrap().provenance.unwrap();
    assert_eq!(p2.chain(), vec!["quantize", "quantize"]);
    assert_eq!(p2.previous.unwrap().parameters["type"], "Q4_K_M");
}

#[test]
fn requantizing_needs_consent_and_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("q4.gguf");
    TinySpec::llama()
        .with_dtype(GgmlType::Q4_0)
        .write(&src)
        .unwrap();
    let out = dir.path().join("q8.gguf");
    let s = GgufSource::open(&src).unwrap();
    let err = quantize(&s, &out, &opts("Q8_0"), &mut |_, _, _, _, _| {})
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("Q4_0 already") && err.contains("--allow-requantize"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "no output, no temp file"
    );
}

/// Our Q4_K_M recipe gives every tensor of Gemma 3 270M the type llama.cpp's own
/// Q4_K_M file has (Q4_K, Q6_K where more bits help, the Q5_0/Q8_0 fallbacks for rows
/// of 640, F32 vectors).
#[test]
fn q4_k_m_recipe_matches_llama_cpp_on_gemma3() {
    let Some(p) = common::real("gemma3-270m") else {
        return;
    };
    let f = GgufFile::open(&p).unwrap();
    assert_eq!(f.u64("general.file_type").unwrap(), 15, "a Q4_K_M file");
    let layout = hearth_convert::recipe::Layout {
        n_layers: f.u64("gemma3.block_count").unwrap() as usize,
        has_output: f.tensor("output.weight").is_some(),
    };
    for t in f.tensors() {
        let ours = hearth_convert::recipe::type_for(Scheme::Q4KM, &layout, &t.name, &t.dims);
        assert_eq!(ours, t.dtype, "{}", t.name);
    }
}
