//! Unit tests on tiny hand-made vocabularies written to GGUF files.

use std::sync::atomic::{AtomicUsize, Ordering};

use hearth_gguf::{GgufFile, GgufWriter, Value};

use crate::unicode::BYTE_TO_CPT;
use crate::{StreamDecoder, Tokenizer, TokenizerKind};

fn strings(v: &[String]) -> Value {
    Value::Array(v.iter().cloned().map(Value::String).collect())
}

/// Writes `meta` to a temporary GGUF file and builds a tokenizer from it.
fn build(name: &str, meta: Vec<(&str, Value)>) -> Tokenizer {
    let mut w = GgufWriter::new();
    for (k, v) in meta {
        w.metadata(k, v);
    }
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let path =
        std::env::temp_dir().join(format!("hearth-tok-{}-{n}-{name}.gguf", std::process::id()));
    w.write(&path).unwrap();
    let tok = Tokenizer::from_gguf(&GgufFile::open(&path).unwrap()).unwrap();
    let _ = std::fs::remove_file(&path);
    tok
}

/// SentencePiece: `<unk> <s> </s> <ctrl> <user>`, the 256 byte tokens, then pieces.
fn spm() -> Tokenizer {
    let mut tokens: Vec<String> = ["<unk>", "<s>", "</s>", "<ctrl>", "<user>"]
        .map(String::from)
        .to_vec();
    let mut types = vec![2, 3, 3, 3, 4];
    for b in 0..=255u8 {
        tokens.push(format!("<0x{b:02X}>"));
        types.push(6);
    }
    let pieces = [
        "▁", "h", "e", "l", "o", "▁h", "he", "ll", "llo", "▁he", "▁hell", "▁hello", "w", "▁w",
    ];
    for p in pieces {
        tokens.push(p.to_string());
        types.push(1);
    }
    // Longer pieces score higher, so whole words win.
    let scores: Vec<Value> = tokens
        .iter()
        .map(|t| {
            Value::F32(if t.starts_with('<') {
                0.0
            } else {
                t.chars().count() as f32
            })
        })
        .collect();
    build(
        "spm",
        vec![
            ("tokenizer.ggml.model", Value::String("llama".into())),
            ("tokenizer.ggml.tokens", strings(&tokens)),
            ("tokenizer.ggml.scores", Value::Array(scores)),
            (
                "tokenizer.ggml.token_type",
                Value::Array(types.into_iter().map(Value::I32).collect()),
            ),
            ("tokenizer.ggml.bos_token_id", Value::U32(1)),
            ("tokenizer.ggml.eos_token_id", Value::U32(2)),
        ],
    )
}

/// Byte-level BPE: the 256 byte characters, a few merges, and `<|endoftext|>`.
fn bpe() -> Tokenizer {
    let mut tokens: Vec<String> = (0..256)
        .map(|b| char::from_u32(BYTE_TO_CPT[b]).unwrap().to_string())
        .collect();
    let merges = ["Ġ w", "h e", "l l", "he ll", "hell o", "Ġw o"];
    for m in merges {
        tokens.push(m.replace(' ', ""));
    }
    tokens.push("<|endoftext|>".into());
    let mut types = vec![1; tokens.len()];
    types[tokens.len() - 1] = 3;
    let merges: Vec<String> = merges.map(String::from).to_vec();
    build(
        "bpe",
        vec![
            ("tokenizer.ggml.model", Value::String("gpt2".into())),
            ("tokenizer.ggml.pre", Value::String("gpt-2".into())),
            ("tokenizer.ggml.tokens", strings(&tokens)),
            ("tokenizer.ggml.merges", strings(&merges)),
            (
                "tokenizer.ggml.token_type",
                Value::Array(types.into_iter().map(Value::I32).collect()),
            ),
            ("tokenizer.ggml.bos_token_id", Value::U32(262)),
            ("tokenizer.ggml.eos_token_id", Value::U32(262)),
        ],
    )
}

fn texts(t: &Tokenizer, ids: &[u32]) -> Vec<String> {
    ids.iter()
        .map(|&i| t.token_text(i).unwrap().to_string())
        .collect()
}

#[test]
fn spm_merges_and_space_prefix() {
    let t = spm();
    assert_eq!(t.model_kind(), TokenizerKind::Spm);
    assert!(t.add_bos());
    let ids = t.encode("hello", true, false).unwrap();
    assert_eq!(ids[0], 1);
    assert_eq!(texts(&t, &ids[1..]), ["▁hello"]);
    assert_eq!(t.decode(&ids[1..], false), "hello");
    // BOS first: the leading-space rule applies to the BOS token, so the space stays.
    assert_eq!(t.decode(&ids, false), " hello");
    assert_eq!(t.decode(&ids, true), "<s> hello");
}

#[test]
fn spm_byte_fallback() {
    let t = spm();
    let ids = t.encode("hé\n", false, false).unwrap();
    assert_eq!(texts(&t, &ids), ["▁h", "<0xC3>", "<0xA9>", "<0x0A>"]);
    assert_eq!(t.decode(&ids, false), "hé\n");
    assert_eq!(t.token_bytes(ids[1], false), [0xC3]);
}

#[test]
fn spm_special_tokens() {
    let t = spm();
    // Control tokens are text unless parse_special; after one, the space prefix is added again.
    let ids = t.encode("hello<ctrl>hello", false, true).unwrap();
    assert_eq!(texts(&t, &ids), ["▁hello", "<ctrl>", "▁hello"]);
    let ids = t.encode("hello<ctrl>", false, false).unwrap();
    assert!(!ids.contains(&3));
    // User-defined tokens are always split out.
    let ids = t.encode("hello<user>", false, false).unwrap();
    assert_eq!(texts(&t, &ids), ["▁hello", "<user>"]);
    assert_eq!(t.decode(&ids, false), "hello<user>");
    assert!(t.is_eog(2));
    assert_eq!(t.eog_ids(), [2]);
}

#[test]
fn bpe_merges_by_rank() {
    let t = bpe();
    assert_eq!(t.model_kind(), TokenizerKind::Bpe);
    assert!(!t.add_bos());
    let ids = t.encode("hello wo", true, false).unwrap();
    assert_eq!(texts(&t, &ids), ["hello", "Ġwo"]);
    assert_eq!(t.decode(&ids, false), "hello wo");
    assert_eq!(t.token_bytes(ids[1], false), b" wo");
    let ids = t.encode("é", false, false).unwrap();
    assert_eq!(
        ids,
        [0xC3, 0xA9].map(|b| t
            .token_id(&char::from_u32(BYTE_TO_CPT[b]).unwrap().to_string())
            .unwrap())
    );
    assert_eq!(t.decode(&ids, false), "é");
}

#[test]
fn bpe_special_tokens_and_eog() {
    let t = bpe();
    let eot = t.token_id("<|endoftext|>").unwrap();
    assert_eq!(t.eog_ids(), [eot]);
    let ids = t.encode("hello<|endoftext|>hello", false, true).unwrap();
    assert_eq!(texts(&t, &ids), ["hello", "<|endoftext|>", "hello"]);
    assert_eq!(t.decode(&ids, false), "hellohello");
    assert_eq!(t.decode(&ids, true), "hello<|endoftext|>hello");
    let ids = t.encode("hello<|endoftext|>", false, false).unwrap();
    assert!(!ids.contains(&eot));
}

#[test]
fn stream_holds_back_split_utf8() {
    let t = bpe();
    let ids = t.encode("hé🦙!", false, false).unwrap();
    let mut s = StreamDecoder::new(&t);
    let outs: Vec<String> = ids.iter().map(|&i| s.push(i)).collect();
    assert_eq!(outs.concat() + &s.finish(), "hé🦙!");
    // The lead byte of 'é' alone gives nothing yet.
    assert_eq!(outs[1], "");
    assert_eq!(outs[2], "é");
    // A dangling lead byte is flushed lossily.
    let mut s = StreamDecoder::new(&t);
    assert_eq!(s.push(ids[1]), "");
    assert_eq!(s.finish(), "\u{FFFD}");
}

#[test]
fn unsupported_model_is_named() {
    let mut w = GgufWriter::new();
    w.metadata("tokenizer.ggml.model", Value::String("xyz".into()));
    w.metadata("tokenizer.ggml.tokens", strings(&["a".to_string()]));
    let path = std::env::temp_dir().join(format!("hearth-tok-{}-bad.gguf", std::process::id()));
    w.write(&path).unwrap();
    let err = Tokenizer::from_gguf(&GgufFile::open(&path).unwrap()).unwrap_err();
    let _ = std::fs::remove_file(&path);
    assert_eq!(
        err.to_string().split(" (").next().unwrap(),
        "unsupported tokenizer model `xyz`"
    );
}

#[test]
fn tokenizer_is_send_sync() {
    fn check<T: Send + Sync>() {}
    check::<Tokenizer>();
}
