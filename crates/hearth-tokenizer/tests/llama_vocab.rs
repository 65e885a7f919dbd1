//! llama.cpp's own tokenizer conformance files (`ggml-vocab-<name>.gguf` with `.inp` /
//! `.out` pairs, from llama.cpp's `models/`), run as its `tests/test-tokenizer-0.cpp`
//! does: add_special = false, parse_special = false.
//!
//! Vocabularies we claim to tokenize exactly (every pair must pass): see [`CLAIMED`]. The
//! files are read from `<cache>/llama-vocab/` (`$HEARTH_CACHE` or `~/.cache/hearth`).
#![allow(clippy::unwrap_used)]

mod common;

use hearth_gguf::GgufFile;
use hearth_tokenizer::Tokenizer;
use std::collections::BTreeMap;

/// The vocabularies whose every conformance pair passes: SentencePiece (`llama-spm`,
/// `phi-3`, whose special tokens strip spaces on the right), byte-level BPE with each
/// pre-tokenizer family (`gpt-2`, `mpt`; `llama-bpe`; `qwen2`, `qwen35`; `starcoder`,
/// `refact`, `command-r`; `falcon`; `deepseek-llm`, `deepseek-coder`) and Gemma 4's
/// SentencePiece-style BPE (`gemma-4`). Not claimed: `bert-bge` (WordPiece, not
/// implemented); `aquila`, `baichuan`, `gpt-neox`, `nomic-bert-moe` ship no test pairs.
const CLAIMED: &[&str] = &[
    "llama-spm",
    "phi-3",
    "gpt-2",
    "mpt",
    "llama-bpe",
    "qwen2",
    "qwen35",
    "starcoder",
    "refact",
    "command-r",
    "falcon",
    "deepseek-llm",
    "deepseek-coder",
    "gemma-4",
];

/// Inputs and expected ids, parsed as test-tokenizer-0 does (a `std::map`: duplicate
/// inputs keep the last expectation).
fn read_cases(name: &str) -> Option<BTreeMap<String, Vec<u32>>> {
    let dir = common::cache().join("llama-vocab");
    let base = dir.join(format!("ggml-vocab-{name}.gguf"));
    let inp = std::fs::read_to_string(base.with_extension("gguf.inp")).ok()?;
    let out = std::fs::read_to_string(base.with_extension("gguf.out")).ok()?;
    let sep = "\n__ggml_vocab_test__\n";
    let mut inputs = Vec::new();
    let mut pos = 0;
    while pos < inp.len() {
        match inp[pos..].find(sep) {
            Some(i) => {
                inputs.push(&inp[pos..pos + i]);
                pos += i + sep.len();
            }
            None => {
                inputs.push(&inp[pos..]);
                break;
            }
        }
    }
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        inputs.len(),
        lines.len(),
        "{name}: .inp and .out disagree on the number of cases"
    );
    let mut cases = BTreeMap::new();
    for (i, o) in inputs.into_iter().zip(lines) {
        let ids = o
            .split_whitespace()
            .map(|t| t.parse().expect("id"))
            .collect();
        cases.insert(i.to_string(), ids);
    }
    Some(cases)
}

/// Runs one vocabulary; returns (passed, total, failure descriptions).
fn run(name: &str) -> Option<(usize, usize, Vec<String>)> {
    let path = common::cache()
        .join("llama-vocab")
        .join(format!("ggml-vocab-{name}.gguf"));
    if !path.exists() {
        return None;
    }
    let cases = read_cases(name)?;
    let tok = Tokenizer::from_gguf(&GgufFile::open(&path).expect("open vocab")).expect("tokenizer");
    let mut fails = Vec::new();
    for (text, want) in &cases {
        let got = tok.encode(text, false, false).expect("encode");
        if &got != want {
            fails.push(format!("{text:?}\n   want {want:?}\n    got {got:?}"));
        }
    }
    Some((cases.len() - fails.len(), cases.len(), fails))
}

#[test]
fn claimed_vocabularies_pass_every_case() {
    let dir = common::cache().join("llama-vocab");
    if !dir.exists() {
        eprintln!(
            "SKIPPED: {} not found (extract llama.cpp's models/ggml-vocab-* there)",
            dir.display()
        );
        return;
    }
    let mut bad = Vec::new();
    for name in CLAIMED {
        match run(name) {
            None => bad.push(format!("{name}: vocab or .inp/.out missing")),
            Some((pass, total, fails)) => {
                eprintln!("{name}: {pass}/{total}");
                if !fails.is_empty() {
                    bad.push(format!("{name}: {pass}/{total}\n{}", fails.join("\n")));
                }
            }
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n\n"));
}
