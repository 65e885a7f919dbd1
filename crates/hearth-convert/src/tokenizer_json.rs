//! The GGUF vocabulary as `tokenizer.json` + `tokenizer_config.json`, and back.
//!
//! Byte-level BPE (`gpt2`) becomes a BPE model with its merges; SentencePiece
//! (`llama`) becomes a Unigram model with its scores. What HF's files have no field
//! for (GGUF's pre-tokenizer name and token types) rides along under a `gguf` key of
//! `tokenizer_config.json`, so the way back is exact.

use std::collections::BTreeMap;
use std::path::Path;

use hearth_gguf::{GgufFile, Value};
use serde_json::{json, Value as Json};

use crate::{Error, Result};

const NORMAL: i64 = 1;
const CONTROL: i64 = 3;
const USER_DEFINED: i64 = 4;

/// `tokenizer.json` and `tokenizer_config.json` for the vocabulary of `f`.
pub fn export(f: &GgufFile) -> Result<(Json, Json)> {
    let model = f.str("tokenizer.ggml.model")?;
    let tokens = f.str_array("tokenizer.ggml.tokens")?;
    let types: Vec<i64> = match f.get("tokenizer.ggml.token_type") {
        Some(Value::Array(a)) => a.iter().map(|v| v.as_i64().unwrap_or(NORMAL)).collect(),
        _ => vec![NORMAL; tokens.len()],
    };
    let added: Vec<Json> = tokens
        .iter()
        .zip(&types)
        .enumerate()
        .filter(|(_, (_, &t))| t == CONTROL || t == USER_DEFINED)
        .map(|(id, (tok, &t))| {
            json!({"id": id, "content": tok, "single_word": false, "lstrip": false,
                   "rstrip": false, "normalized": false, "special": t == CONTROL})
        })
        .collect();
    let id = |k: &str| f.u64_opt(k).ok().flatten();
    let model_json = match model {
        "gpt2" => {
            let vocab: serde_json::Map<String, Json> = tokens
                .iter()
                .enumerate()
                .map(|(i, t)| (t.to_string(), json!(i)))
                .collect();
            let merges = f.str_array("tokenizer.ggml.merges")?;
            json!({"type": "BPE", "dropout": null, "unk_token": null,
                   "continuing_subword_prefix": null, "end_of_word_suffix": null,
                   "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                   "vocab": vocab, "merges": merges})
        }
        "llama" => {
            let scores: Vec<f64> = match f.get("tokenizer.ggml.scores") {
                Some(Value::Array(a)) => a.iter().map(|v| v.as_f64().unwrap_or(0.0)).collect(),
                _ => vec![0.0; tokens.len()],
            };
            let vocab: Vec<Json> = tokens
                .iter()
                .zip(&scores)
                .map(|(t, s)| json!([t, s]))
                .collect();
            json!({"type": "Unigram", "unk_id": id("tokenizer.ggml.unknown_token_id"),
                   "vocab": vocab, "byte_fallback": true})
        }
        other => {
            return Err(Error::format(
                f.path(),
                format!("tokenizer.ggml.model `{other}` cannot be written as tokenizer.json"),
            ))
        }
    };
    let byte_level = model == "gpt2";
    let tokenizer = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": if byte_level {
            json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true})
        } else { Json::Null },
        "post_processor": null,
        "decoder": if byte_level {
            json!({"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true})
        } else {
            json!({"type": "Sequence", "decoders": [
                {"type": "Replace", "pattern": {"String": "\u{2581}"}, "content": " "},
                {"type": "ByteFallback"}, {"type": "Fuse"}]})
        },
        "model": model_json,
    });
    let name = |k: &str| {
        id(k)
            .and_then(|i| tokens.get(i as usize))
            .map(|s| s.to_string())
    };
    let odd_types: BTreeMap<String, i64> = types
        .iter()
        .enumerate()
        .filter(|(_, &t)| t != NORMAL)
        .map(|(i, &t)| (i.to_string(), t))
        .collect();
    let config = json!({
        "bos_token": name("tokenizer.ggml.bos_token_id"),
        "eos_token": name("tokenizer.ggml.eos_token_id"),
        "unk_token": name("tokenizer.ggml.unknown_token_id"),
        "pad_token": name("tokenizer.ggml.padding_token_id"),
        "add_bos_token": f.bool_opt("tokenizer.ggml.add_bos_token")?,
        "add_eos_token": f.bool_opt("tokenizer.ggml.add_eos_token")?,
        "chat_template": f.str_opt("tokenizer.chat_template")?,
        "tokenizer_class": if byte_level { "GPT2Tokenizer" } else { "GemmaTokenizer" },
        "gguf": {
            "model": model,
            "pre": f.str_opt("tokenizer.ggml.pre")?,
            "add_space_prefix": f.bool_opt("tokenizer.ggml.add_space_prefix")?,
            "token_types": odd_types,
        },
    });
    Ok((tokenizer, config))
}

/// GGUF tokenizer metadata from `dir/tokenizer.json` (+ `tokenizer_config.json`).
pub fn import(dir: &Path) -> Result<Vec<(String, Value)>> {
    let tpath = dir.join("tokenizer.json");
    let read = |p: &Path| -> Result<Json> {
        let text = std::fs::read_to_string(p).map_err(Error::io(p))?;
        serde_json::from_str(&text).map_err(|e| Error::format(p, format!("not valid JSON: {e}")))
    };
    let tj = read(&tpath)?;
    let cpath = dir.join("tokenizer_config.json");
    let cfg = if cpath.exists() {
        read(&cpath)?
    } else {
        json!({})
    };
    let bad = |what: &str| Error::format(&tpath, what.to_string());
    let model = tj.get("model").ok_or_else(|| bad("`model` is missing"))?;
    let mut tokens: BTreeMap<u64, String> = BTreeMap::new();
    let mut scores: Vec<(u64, f64)> = Vec::new();
    let mut out: Vec<(String, Value)> = Vec::new();
    let kind = match model.get("type").and_then(Json::as_str) {
        Some("BPE") => {
            let vocab = model
                .get("vocab")
                .and_then(Json::as_object)
                .ok_or_else(|| bad("`model.vocab` is not an object"))?;
            for (t, id) in vocab {
                let id = id
                    .as_u64()
                    .ok_or_else(|| bad("`model.vocab` ids must be whole numbers"))?;
                tokens.insert(id, t.clone());
            }
            let merges: Vec<Value> = model
                .get("merges")
                .and_then(Json::as_array)
                .ok_or_else(|| bad("`model.merges` is not an array"))?
                .iter()
                .map(|m| match m {
                    Json::String(s) => Value::String(s.clone()),
                    Json::Array(p) => Value::String(
                        p.iter()
                            .filter_map(Json::as_str)
                            .collect::<Vec<_>>()
                            .join(" "),
                    ),
                    _ => Value::String(String::new()),
                })
                .collect();
            out.push(("tokenizer.ggml.merges".into(), Value::Array(merges)));
            "gpt2"
        }
        Some("Unigram") => {
            let vocab = model
                .get("vocab")
                .and_then(Json::as_array)
                .ok_or_else(|| bad("`model.vocab` is not an array"))?;
            for (i, e) in vocab.iter().enumerate() {
                let piece = e
                    .get(0)
                    .and_then(Json::as_str)
                    .ok_or_else(|| bad("`model.vocab` entries must be [piece, score]"))?;
                tokens.insert(i as u64, piece.to_string());
                scores.push((i as u64, e.get(1).and_then(Json::as_f64).unwrap_or(0.0)));
            }
            "llama"
        }
        other => {
            return Err(bad(&format!(
                "model type {other:?} is not supported (BPE, Unigram)"
            )))
        }
    };
    let mut special = BTreeMap::new();
    for a in tj
        .get("added_tokens")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
    {
        if let (Some(id), Some(c)) = (
            a.get("id").and_then(Json::as_u64),
            a.get("content").and_then(Json::as_str),
        ) {
            tokens.insert(id, c.to_string());
            let s = a.get("special").and_then(Json::as_bool).unwrap_or(false);
            special.insert(id, if s { CONTROL } else { USER_DEFINED });
        }
    }
    let n = tokens.keys().next_back().map_or(0, |&k| k + 1);
    if tokens.len() as u64 != n {
        return Err(bad(&format!("token ids are not 0..{n} without gaps")));
    }
    let g = cfg.get("gguf");
    let given: BTreeMap<u64, i64> = g
        .and_then(|g| g.get("token_types"))
        .and_then(Json::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.parse().ok()?, v.as_i64()?)))
                .collect()
        })
        .unwrap_or_default();
    let unk = model.get("unk_id").and_then(Json::as_u64);
    let types: Vec<Value> = (0..n)
        .map(|i| {
            let t = given
                .get(&i)
                .copied()
                .or(special.get(&i).copied())
                .unwrap_or_else(|| {
                    let is_byte =
                        kind == "llama" && tokens[&i].len() == 6 && tokens[&i].starts_with("<0x");
                    if Some(i) == unk {
                        2
                    } else if is_byte {
                        6
                    } else {
                        NORMAL
                    }
                });
            Value::I32(t as i32)
        })
        .collect();
    let id_of = |k: &str| -> Option<u32> {
        let s = cfg.get(k)?;
        let s = s.as_str().or_else(|| s.get("content")?.as_str())?;
        tokens.iter().find(|(_, t)| *t == s).map(|(&i, _)| i as u32)
    };
    out.push(("tokenizer.ggml.model".into(), Value::String(kind.into())));
    let pre = g
        .and_then(|g| g.get("pre"))
        .and_then(Json::as_str)
        .unwrap_or("default");
    out.push(("tokenizer.ggml.pre".into(), Value::String(pre.into())));
    out.push((
        "tokenizer.ggml.tokens".into(),
        Value::Array(tokens.values().cloned().map(Value::String).collect()),
    ));
    if kind == "llama" {
        out.push((
            "tokenizer.ggml.scores".into(),
            Value::Array(scores.iter().map(|&(_, s)| Value::F32(s as f32)).collect()),
        ));
    }
    out.push(("tokenizer.ggml.token_type".into(), Value::Array(types)));
    for (k, key) in [
        ("bos_token", "tokenizer.ggml.bos_token_id"),
        ("eos_token", "tokenizer.ggml.eos_token_id"),
        ("unk_token", "tokenizer.ggml.unknown_token_id"),
        ("pad_token", "tokenizer.ggml.padding_token_id"),
    ] {
        if let Some(id) = id_of(k) {
            out.push((key.into(), Value::U32(id)));
        }
    }
    for (k, key) in [
        ("add_bos_token", "tokenizer.ggml.add_bos_token"),
        ("add_eos_token", "tokenizer.ggml.add_eos_token"),
    ] {
        if let Some(b) = cfg.get(k).and_then(Json::as_bool) {
            out.push((key.into(), Value::Bool(b)));
        }
    }
    if let Some(b) = g
        .and_then(|g| g.get("add_space_prefix"))
        .and_then(Json::as_bool)
    {
        out.push(("tokenizer.ggml.add_space_prefix".into(), Value::Bool(b)));
    }
    if let Some(t) = cfg.get("chat_template").and_then(Json::as_str) {
        out.push(("tokenizer.chat_template".into(), Value::String(t.into())));
    }
    Ok(out)
}
