//! `compare` scores by llama-perplexity's protocol (the same numbers as
//! `hearth_engine::perplexity`) and measures top-1 agreement.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use hearth_convert::{compare, quantize, CompareConfig, GgufSource, QuantizeOptions};
use hearth_engine::{perplexity, PerplexityConfig};
use hearth_gguf::GgufFile;
use hearth_model::tiny::TinySpec;
use hearth_model::Transformer;
use hearth_tokenizer::Tokenizer;

const TEXT: &str = "It was the best of times, it was the worst of times, it was the age of \
    wisdom, it was the age of foolishness, it was the epoch of belief, it was the epoch of \
    incredulity, it was the season of Light, it was the season of Darkness.";

#[test]
fn compare_matches_engine_perplexity_and_agreement_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.gguf");
    TinySpec::llama().write(&a).unwrap();
    let cfg = CompareConfig {
        ctx: 64,
        max_tokens: None,
    };
    let same = compare(&a, &a, TEXT, &cfg, |_, _| {}).unwrap();
    assert_eq!(same.top1_agreement, 1.0);
    assert_eq!(same.ppl_delta, 0.0);
    assert_eq!(same.compression_ratio, 1.0);

    let file = Arc::new(GgufFile::open(&a).unwrap());
    let tok = Tokenizer::from_gguf(&file).unwrap();
    let model = Transformer::from_gguf(file).unwrap();
    let tokens = tok.encode(TEXT, true, false).unwrap();
    let want = perplexity(
        &model,
        &tokens,
        &PerplexityConfig { ctx: 64, bos: None },
        |_, _, _| {},
    )
    .unwrap();
    assert!(
        (same.reference.ppl - want.ppl).abs() < 1e-9 * want.ppl,
        "{} vs {}",
        same.reference.ppl,
        want.ppl
    );
    assert_eq!(same.scored_tokens, want.scored_tokens);

    let q = dir.path().join("q2.gguf");
    let opts = QuantizeOptions {
        scheme: "Q2_K".parse().unwrap(),
        allow_requantize: false,
        tool_version: "t".into(),
        operation: "quantize".into(),
    };
    quantize(
        &GgufSource::open(&a).unwrap(),
        &q,
        &opts,
        &mut |_, _, _, _, _| {},
    )
    .unwrap();
    let r = compare(&a, &q, TEXT, &cfg, |_, _| {}).unwrap();
    assert!(r.compression_ratio > 4.0, "{}", r.compression_ratio);
    assert!(
        r.top1_agreement < 1.0 && r.top1_agreement > 0.0,
        "{}",
        r.top1_agreement
    );
    assert!(r.ppl_delta != 0.0);
    let short = CompareConfig {
        ctx: 64,
        max_tokens: Some(10),
    };
    let err = compare(&a, &q, TEXT, &short, |_, _| {})
        .unwrap_err()
        .to_string();
    assert!(err.contains("fewer than one chunk"), "{err}");
}
