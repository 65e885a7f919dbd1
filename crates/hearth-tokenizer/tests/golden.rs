//! llama.cpp's tokenization of real models (`shared/golden/*/tokenize.json`, made with
//! add_special = true, parse_special = true) must be reproduced exactly.
#![allow(clippy::unwrap_used)]

mod common;

use hearth_gguf::GgufFile;
use hearth_tokenizer::{StreamDecoder, Tokenizer};
use serde_json::Value;

fn check(model_dir: &str, file: &str, pull: &str) {
    let Some(path) = common::model(file, pull) else {
        return;
    };
    let golden = common::shared()
        .join("golden")
        .join(model_dir)
        .join("tokenize.json");
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&golden).expect("read golden"))
        .expect("parse golden");
    let tok = Tokenizer::from_gguf(&GgufFile::open(&path).expect("open model")).expect("tokenizer");
    let mut failures = Vec::new();
    let mut round_trips = 0;
    let cases = json["cases"].as_array().expect("cases");
    for case in cases {
        let text = case["text"].as_str().expect("text");
        let want: Vec<u32> = case["ids"]
            .as_array()
            .expect("ids")
            .iter()
            .map(|v| v.as_u64().expect("id") as u32)
            .collect();
        let got = tok.encode(text, true, true).expect("encode");
        if got != want {
            failures.push(format!("{text:?}\n   want {want:?}\n    got {got:?}"));
            continue;
        }
        // Pieces: each token's text with control tokens hidden.
        let pieces: Vec<&str> = case["pieces"]
            .as_array()
            .expect("pieces")
            .iter()
            .map(|v| v.as_str().expect("piece"))
            .collect();
        for (&id, &piece) in got.iter().zip(&pieces) {
            let bytes = tok.token_bytes(id, false);
            assert_eq!(
                String::from_utf8_lossy(&bytes),
                piece,
                "piece of {id} in {text:?}"
            );
        }
        // Decoding without BOS gives llama.cpp's detokenization: here, the pieces joined.
        let body = if tok.add_bos() && got.first() == tok.bos().as_ref() {
            &got[1..]
        } else {
            &got[..]
        };
        let decoded = tok.decode(body, false);
        let skip = usize::from(tok.add_bos());
        let joined: Vec<u8> = got[skip..]
            .iter()
            .flat_map(|&id| tok.token_bytes(id, false))
            .collect();
        assert_eq!(
            decoded,
            String::from_utf8_lossy(&joined),
            "decode of {text:?}"
        );
        if decoded == text {
            round_trips += 1;
        }
        // Streaming gives the same text.
        let mut s = StreamDecoder::new(&tok);
        let mut streamed: String = body.iter().map(|&id| s.push(id)).collect();
        streamed.push_str(&s.finish());
        assert_eq!(streamed, decoded, "streamed decode of {text:?}");
    }
    eprintln!(
        "{model_dir}: {} cases, {} decode back to their text",
        cases.len(),
        round_trips
    );
    assert!(
        failures.is_empty(),
        "{model_dir}: {} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn gemma3_270m() {
    check("gemma3-270m", "gemma-3-270m-q4_k_m.gguf", "gemma3-270m");
}

#[test]
fn smollm2_135m() {
    check(
        "smollm2-135m",
        "SmolLM2-135M-Instruct.Q4_1.gguf",
        "smollm2-135m",
    );
}

/// A 35 KB text (`shared/models/gpl3.txt`) tokenizes to the count llama.cpp's perplexity
/// run recorded (BOS per metadata, special tokens not parsed), fast, and decodes back.
fn long_text(model_dir: &str, file: &str, pull: &str, eog: &[&str]) {
    let Some(path) = common::model(file, pull) else {
        return;
    };
    let text = std::fs::read_to_string(common::shared().join("models/gpl3.txt")).expect("gpl3.txt");
    let golden = common::shared()
        .join("golden")
        .join(model_dir)
        .join("perplexity.json");
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&golden).expect("read golden"))
        .expect("parse golden");
    let want = json["results"][0]["n_tokens"].as_u64().expect("n_tokens") as usize;
    let tok = Tokenizer::from_gguf(&GgufFile::open(&path).expect("open model")).expect("tokenizer");
    let t0 = std::time::Instant::now();
    let ids = tok.encode(&text, true, false).expect("encode");
    let took = t0.elapsed();
    eprintln!(
        "{model_dir}: {} bytes -> {} tokens in {took:?}",
        text.len(),
        ids.len()
    );
    assert_eq!(ids.len(), want, "token count of gpl3.txt");
    assert!(took.as_secs_f64() < 1.0, "tokenizing 35 KB took {took:?}");
    let body = if tok.add_bos() { &ids[1..] } else { &ids[..] };
    assert_eq!(tok.decode(body, false), text);
    for name in eog {
        let id = tok.token_id(name).expect("EOG token in vocabulary");
        assert!(
            tok.is_eog(id),
            "{name} should end generation; eog = {:?}",
            tok.eog_ids()
        );
    }
    assert!(tok.eos().is_some_and(|e| tok.is_eog(e)));
}

#[test]
fn gemma3_270m_long_text() {
    long_text(
        "gemma3-270m",
        "gemma-3-270m-q4_k_m.gguf",
        "gemma3-270m",
        &["<eos>", "<end_of_turn>"],
    );
}

#[test]
fn smollm2_135m_long_text() {
    long_text(
        "smollm2-135m",
        "SmolLM2-135M-Instruct.Q4_1.gguf",
        "smollm2-135m",
        &["<|endoftext|>", "<|im_end|>"],
    );
}
