//! Perplexity on shared/models/gpl3.txt against llama-perplexity's figures in
//! shared/golden (within 1%), for both real models; Gemma also at ctx 2048, which
//! crosses its 512-token sliding window.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;

use hearth_engine::{perplexity, PerplexityConfig};

fn shared() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared"))
}

fn check(name: &str, ctx: usize, want: f64) {
    let Some((model, tok)) = common::load_real(name) else {
        return;
    };
    let text = std::fs::read_to_string(shared().join("models/gpl3.txt")).unwrap();
    let tokens = tok.encode(&text, true, false).unwrap();
    let cfg = PerplexityConfig {
        ctx,
        bos: tok.bos().filter(|_| tok.add_bos()),
    };
    let r = perplexity(&model, &tokens, &cfg, |_, _, _| {}).unwrap();
    let rel = (r.ppl - want).abs() / want;
    eprintln!(
        "{name} ctx {ctx}: ppl {:.4} vs llama.cpp {want} ({:+.3}%)",
        r.ppl,
        100.0 * (r.ppl - want) / want
    );
    assert!(
        rel < 0.01,
        "{name} ctx {ctx}: ppl {} is {:.2}% from {want}",
        r.ppl,
        rel * 100.0
    );
}

fn golden(name: &str, file: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(shared().join("golden").join(name).join(file)).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn check_all(name: &str) {
    let g = golden(name, "perplexity.json");
    for r in g["results"].as_array().unwrap() {
        check(
            name,
            r["n_ctx"].as_u64().unwrap() as usize,
            r["ppl"].as_f64().unwrap(),
        );
    }
}

#[test]
fn smollm_perplexity_matches_llama_cpp() {
    check_all("smollm2-135m");
}

#[test]
fn gemma_perplexity_matches_llama_cpp() {
    check_all("gemma3-270m");
}

#[test]
fn gemma_perplexity_across_the_sliding_window() {
    let g = golden("gemma3-270m", "perplexity_ctx2048.json");
    check(
        "gemma3-270m",
        g["n_ctx"].as_u64().unwrap() as usize,
        g["ppl"].as_f64().unwrap(),
    );
}
