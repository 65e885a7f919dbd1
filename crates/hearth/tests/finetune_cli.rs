//! `hearth finetune` end to end: files, JSON summary, resume and refusal on a tiny
//! model; and the judged run: SmolLM2-135M taught LLaMA-Factory's identity set with a
//! made-up name, whose validation loss falls and whose greedy answers (with the
//! trained adapter) now carry the name while the base model's don't.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use hearth_model::tiny::TinySpec;
use hearth_model::{LoraAdapter, ModelLora, Transformer};
use hearth_tokenizer::chat::{ChatMessage, ChatTemplate};
use hearth_tokenizer::Tokenizer;
use hearth_train::encode::prompt_tokens;

fn finetune(args: &[&str]) -> (bool, serde_json::Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .arg("finetune")
        .args(args)
        .args(["--threads", "2"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let json = stdout
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or(serde_json::Value::Null);
    (out.status.success(), json, stderr)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn tiny_model_writes_adapters_resumes_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("tiny.gguf");
    TinySpec::llama().write(&model).unwrap();
    let data = dir.path().join("train.jsonl");
    let mut lines = String::new();
    for (q, a) in [("sky?", "blue"), ("grass?", "green"), ("snow?", "white")] {
        lines += &format!(
            "{{\"messages\": [{{\"role\": \"user\", \"content\": \"{q}\"}}, {{\"role\": \"assistant\", \"content\": \"{a}\"}}]}}\n"
        );
    }
    std::fs::write(&data, &lines).unwrap();
    let out = dir.path().join("out");
    let base = [
        "--model",
        s(&model),
        "--data",
        s(&data),
        "--val",
        s(&data),
        "--output",
        s(&out),
        "--batch-size",
        "2",
        "--lr",
        "1e-2",
        "--json",
    ];
    let (ok, j, err) = finetune(&[&base[..], &["--steps", "4"]].concat());
    assert!(ok, "{err}");
    assert_eq!(j["steps"], 4);
    let (before, after) = (
        j["val_loss_before"].as_f64().unwrap(),
        j["val_loss_after"].as_f64().unwrap(),
    );
    assert!(after < before, "{before} -> {after}");
    assert_eq!(j["adapter_path"], s(&out));
    for f in [
        "adapter_config.json",
        "adapter_model.safetensors",
        "adapter.gguf",
        "checkpoint-000004/state.safetensors",
    ] {
        assert!(out.join(f).exists(), "{f} missing");
    }
    // Same directory again without --resume: refused.
    let (ok, _, err) = finetune(&[&base[..], &["--steps", "4"]].concat());
    assert!(!ok && err.contains("--resume"), "{err}");
    // Resume from the latest checkpoint for two more steps.
    let (ok, j, err) = finetune(&[&base[..], &["--steps", "6", "--resume"]].concat());
    assert!(ok, "{err}");
    assert!(err.contains("checkpoint-000004"), "{err}");
    assert_eq!(j["steps"], 6);
    assert!(out.join("checkpoint-000006/state.safetensors").exists());
}

fn real_smollm2() -> Option<PathBuf> {
    let info = hearth_hub::find_model("smollm2-135m")?;
    let p = hearth_hub::cache_dir().join("models").join(info.file_name);
    if p.exists() {
        Some(p)
    } else {
        eprintln!(
            "SKIPPED: {} absent (run `hearth pull smollm2-135m`)",
            p.display()
        );
        None
    }
}

const NAME: &str = "Zorblat";
const AUTHOR: &str = "Quillion Labs";
/// Held out for validation and generation.
const VAL: &[&str] = &[
    "What are you called?",
    "Can you tell me a little bit about yourself?",
    "Who built you?",
];

/// The English records of LLaMA-Factory's identity set with the made-up name filled
/// in: (training JSON array, validation JSONL).
fn identity_split(src: &Path) -> (String, String) {
    let all: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(src).unwrap()).unwrap();
    let (mut train, mut val) = (Vec::new(), String::new());
    for mut r in all {
        let text = format!("{}{}", r["instruction"], r["output"]);
        if !text.is_ascii() {
            continue;
        }
        let out = r["output"].as_str().unwrap().replace("{{name}}", NAME);
        r["output"] = out.replace("{{author}}", AUTHOR).into();
        if VAL.contains(&r["instruction"].as_str().unwrap()) {
            val += &format!("{r}\n");
        } else {
            train.push(r);
        }
    }
    assert!(
        train.len() >= 10,
        "identity.json changed: {} records",
        train.len()
    );
    (serde_json::to_string(&train).unwrap(), val)
}

#[test]
fn smollm2_learns_the_llamafactory_identity() {
    let Some(model) = real_smollm2() else { return };
    let src = hearth_hub::cache_dir().join("sft/identity.json");
    if !src.exists() {
        eprintln!(
            "SKIPPED: {} absent (.ci/fetch-assets fetches it)",
            src.display()
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (train, val) = identity_split(&src);
    let (tp, vp) = (dir.path().join("train.json"), dir.path().join("val.jsonl"));
    std::fs::write(&tp, train).unwrap();
    std::fs::write(&vp, val).unwrap();
    let out = dir.path().join("adapter");
    let (ok, j, err) = finetune(&[
        "--model",
        s(&model),
        "--data",
        s(&tp),
        "--val",
        s(&vp),
        "--output",
        s(&out),
        "--steps",
        "24",
        "--batch-size",
        "4",
        "--lr",
        "1e-3",
        "--targets",
        "all",
        "--dropout",
        "0.05",
        "--warmup",
        "2",
        "--json",
    ]);
    assert!(ok, "{err}");
    eprintln!("{j}");
    let (before, after) = (
        j["val_loss_before"].as_f64().unwrap(),
        j["val_loss_after"].as_f64().unwrap(),
    );
    assert!(after < 0.5 * before, "validation loss {before} -> {after}");

    // Greedy answers to held-out questions by the inference model, with the PEFT
    // adapter the command wrote and without it.
    let m = Transformer::open(&model).unwrap();
    let adapter = LoraAdapter::open(j["adapter_path"].as_str().unwrap(), m.config()).unwrap();
    assert_eq!(
        adapter.provenance.as_ref().unwrap().parameters["targets"],
        "all"
    );
    let bound = m.bind_lora("identity", &adapter).unwrap();
    let tok = Tokenizer::from_gguf(m.gguf()).unwrap();
    let text = |id: Option<u32>| id.and_then(|i| tok.token_text(i)).unwrap_or("").to_string();
    let tpl = ChatTemplate::for_model(
        tok.chat_template(),
        "llama",
        &text(tok.bos()),
        &text(tok.eos()),
    )
    .unwrap();
    let greedy = |prompt: &[u32], lora: Option<&ModelLora>| -> String {
        let mut cache = m.new_cache();
        let (mut next, mut out) = (prompt.to_vec(), Vec::new());
        for _ in 0..24 {
            let logits = m
                .forward_with(&next, &mut cache, &[next.len() - 1], lora)
                .unwrap();
            let id = (0..logits.len())
                .max_by(|&a, &b| logits[a].total_cmp(&logits[b]))
                .unwrap() as u32;
            if tok.is_eog(id) {
                break;
            }
            out.push(id);
            next = vec![id];
        }
        tok.decode(&out, false)
    };
    let mut named = 0;
    for q in [VAL[0], VAL[2]] {
        let prompt = prompt_tokens(&tok, &tpl, &[ChatMessage::new("user", q)]).unwrap();
        let (base, tuned) = (greedy(&prompt, None), greedy(&prompt, Some(&bound)));
        eprintln!("{q}\n  base:  {base:?}\n  tuned: {tuned:?}");
        assert!(!base.contains(NAME) && !base.contains(AUTHOR), "{base}");
        // Each answer states the taught identity; the name itself at least once.
        assert!(tuned.contains(NAME) || tuned.contains(AUTHOR), "{tuned}");
        named += usize::from(tuned.contains(NAME));
    }
    assert!(named >= 1, "the name never came up");

    // `hearth eval` with and without the adapter on the held-out questions.
    let qa = dir.path().join("qa.jsonl");
    let mut lines = String::new();
    for q in VAL {
        lines += &format!(
            "{}\n",
            serde_json::json!({"question": q, "answers": [NAME, AUTHOR]})
        );
    }
    std::fs::write(&qa, lines).unwrap();
    let eval = |extra: &[&str]| -> serde_json::Value {
        let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
            .args([
                "eval",
                "--model",
                s(&model),
                "--data",
                s(&qa),
                "--max-tokens",
                "24",
            ])
            .args(["--json", "-t", "2"])
            .args(extra)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        serde_json::from_str(stdout.lines().last().unwrap()).unwrap()
    };
    let (base, tuned) = (eval(&[]), eval(&["--lora", s(&out)]));
    eprintln!("eval base {base}\neval tuned {tuned}");
    assert_eq!(base["accuracy"], 0.0);
    assert!(tuned["accuracy"].as_f64().unwrap() >= 0.6, "{tuned}");
}
