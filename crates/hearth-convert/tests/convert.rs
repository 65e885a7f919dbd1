//! GGUF → Hugging Face directory → GGUF: tensors, tokenizer and greedy output survive
//! at F32; the directory is read back by the safetensors crate; quantizing straight
//! from the directory works; llama.cpp loads our quantized files and agrees with us.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use hearth_convert::hf_dir::HfDir;
use hearth_convert::hf_export::export;
use hearth_convert::hf_import::HfSource;
use hearth_convert::{quantize, GgufSource, ModelFacts, QuantizeOptions, Scheme};
use hearth_gguf::{GgmlType, GgufFile};
use hearth_model::tiny::TinySpec;
use hearth_tokenizer::Tokenizer;

fn to_gguf(dir: &Path, out: &Path, scheme: Scheme) {
    let src = HfSource::open(dir).unwrap();
    let opts = QuantizeOptions {
        scheme,
        allow_requantize: false,
        tool_version: "test".into(),
        operation: "convert".into(),
    };
    quantize(&src, out, &opts, &mut |_, _, _, _, _| {}).unwrap();
}

fn to_dir(gguf: &Path, dir: &Path, dtype: GgmlType) {
    export(gguf, dir, dtype, "test", &mut |_, _, _, _, _| {}).unwrap();
}

fn same_tensors(a: &Path, b: &Path) {
    let (fa, fb) = (GgufFile::open(a).unwrap(), GgufFile::open(b).unwrap());
    assert_eq!(fa.tensors().len(), fb.tensors().len());
    for t in fa.tensors() {
        let u = fb
            .tensor(&t.name)
            .unwrap_or_else(|| panic!("{} lost", t.name));
        assert_eq!((&t.dims, t.dtype), (&u.dims, u.dtype), "{}", t.name);
        assert!(fa.tensor_data(t) == fb.tensor_data(u), "{} differs", t.name);
    }
}

fn ids(path: &Path, text: &str) -> Vec<u32> {
    Tokenizer::from_gguf(&GgufFile::open(path).unwrap())
        .unwrap()
        .encode(text, true, true)
        .unwrap()
}

#[test]
fn tiny_models_round_trip_exactly_at_f32() {
    let tmp = tempfile::tempdir().unwrap();
    for spec in [TinySpec::llama(), TinySpec::gemma3()] {
        let a = tmp.path().join(format!("{}.gguf", spec.arch));
        spec.write(&a).unwrap();
        let dir = tmp.path().join(format!("{}-hf", spec.arch));
        to_dir(&a, &dir, GgmlType::F32);
        for f in [
            "config.json",
            "tokenizer.json",
            "tokenizer_config.json",
            "model.safetensors",
        ] {
            assert!(dir.join(f).exists(), "{f}");
        }
        // The safetensors crate reads what we wrote, with HF names and shapes.
        let bytes = std::fs::read(dir.join("model.safetensors")).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let q = st.tensor("model.layers.0.self_attn.q_proj.weight").unwrap();
        assert_eq!(q.shape(), &[spec.n_heads * spec.head_dim, spec.d_model]);
        let hf = HfDir::open(&dir).unwrap();
        assert_eq!(hf.license().as_deref(), Some("apache-2.0"));
        assert_eq!(hf.provenance().unwrap().unwrap().operation, "convert");
        // The directory's facts agree with the file's.
        let (fa, fd) = (
            ModelFacts::open(&a).unwrap(),
            ModelFacts::open(&dir).unwrap(),
        );
        assert_eq!(
            (
                fa.parameters,
                fa.layers,
                fa.kv_heads,
                fa.context_length,
                &fa.layer_windows
            ),
            (
                fd.parameters,
                fd.layers,
                fd.kv_heads,
                fd.context_length,
                &fd.layer_windows
            )
        );
        let b = tmp.path().join(format!("{}-back.gguf", spec.arch));
        to_gguf(&dir, &b, Scheme::Uniform(GgmlType::F32));
        same_tensors(&a, &b);
        let name = GgufFile::open(&b)
            .unwrap()
            .str("general.name")
            .unwrap()
            .to_string();
        assert_eq!(name, format!("tiny-{}", spec.arch));
        let text = "hello world <|endoftext|> ünïcode";
        assert_eq!(ids(&a, text), ids(&b, text));
        let prompt = ids(&a, "hello world");
        assert_eq!(
            common::greedy(&a, &prompt, 12),
            common::greedy(&b, &prompt, 12)
        );
        let p = ModelFacts::open(&b).unwrap().provenance.unwrap();
        assert_eq!(p.chain(), vec!["convert", "convert"]);
    }
}

#[test]
fn half_precision_directories_and_bad_input() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("m.gguf");
    TinySpec::llama().write(&a).unwrap();
    for (dt, name) in [(GgmlType::F16, "F16"), (GgmlType::BF16, "BF16")] {
        let dir = tmp.path().join(name);
        to_dir(&a, &dir, dt);
        let hf = HfDir::open(&dir).unwrap();
        assert!(hf.tensors().iter().all(|t| t.dtype == name));
        let q = tmp.path().join(format!("{name}-q8.gguf"));
        to_gguf(&dir, &q, Scheme::Uniform(GgmlType::Q8_0));
        hearth_model::Transformer::open(&q).unwrap();
    }
    // Writing over an existing directory is refused; a broken config names the field.
    let err = export(
        &a,
        &tmp.path().join("F16"),
        GgmlType::F32,
        "t",
        &mut |_, _, _, _, _| {},
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("exists"), "{err}");
    let cfg = tmp.path().join("F16/config.json");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("\"hidden_size\"", "\"hidden\"");
    std::fs::write(&cfg, text).unwrap();
    let err = HfSource::open(&tmp.path().join("F16"))
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("config.json") && err.contains("hidden_size"),
        "{err}"
    );
}

#[test]
fn smollm2_round_trip_and_llama_cpp_agrees() {
    let Some(real) = common::real("smollm2-135m") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("smol-hf");
    to_dir(&real, &dir, GgmlType::F32);
    let a = tmp.path().join("smol-f32.gguf");
    to_gguf(&dir, &a, Scheme::Uniform(GgmlType::F32));
    let dir2 = tmp.path().join("smol-hf2");
    to_dir(&a, &dir2, GgmlType::F32);
    let b = tmp.path().join("smol-f32-again.gguf");
    to_gguf(&dir2, &b, Scheme::Uniform(GgmlType::F32));
    same_tensors(&a, &b);
    let prompt = ids(&real, "The capital of France is");
    assert_eq!(ids(&a, "The capital of France is"), prompt);
    let ours = common::greedy(&a, &prompt, 16);
    assert_eq!(ours, common::greedy(&b, &prompt, 16));
    for t in ["Q8_0", "Q4_K_M"] {
        let q = tmp.path().join(format!("smol-{t}.gguf"));
        to_gguf(&dir, &q, t.parse().unwrap());
        let ours = common::greedy(&q, &prompt, 16);
        if let Some(peer) = common::peer_greedy(&q, &prompt, 16) {
            assert_eq!(ours, peer, "{t}: hearth and llama.cpp disagree");
        }
    }
    // Quantizing the original (Q4_1) file again needs consent.
    let src = GgufSource::open(&real).unwrap();
    let opts = QuantizeOptions {
        scheme: Scheme::Uniform(GgmlType::Q8_0),
        allow_requantize: false,
        tool_version: "t".into(),
        operation: "quantize".into(),
    };
    assert!(quantize(
        &src,
        &tmp.path().join("x.gguf"),
        &opts,
        &mut |_, _, _, _, _| {}
    )
    .is_err());
}

#[test]
fn gemma3_quantized_from_safetensors_agrees_with_llama_cpp() {
    let Some(real) = common::real("gemma3-270m") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("gemma-hf");
    to_dir(&real, &dir, GgmlType::F32);
    let prompt = ids(&real, "The capital of France is");
    for t in ["Q8_0", "Q4_K_M"] {
        let q = tmp.path().join(format!("gemma-{t}.gguf"));
        to_gguf(&dir, &q, t.parse().unwrap());
        assert_eq!(ids(&q, "The capital of France is"), prompt);
        // Twelve tokens: beyond that a near-tie in Q8_0 may fall either way.
        let ours = common::greedy(&q, &prompt, 12);
        if let Some(peer) = common::peer_greedy(&q, &prompt, 12) {
            assert_eq!(ours, peer, "{t}: hearth and llama.cpp disagree");
        }
    }
}
