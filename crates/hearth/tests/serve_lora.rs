//! `hearth serve --lora`: adapters listed in `/v1/models` with their parent, selected
//! by `"model": "<base>:<name>"` or `"<name>"`, loaded and unloaded at runtime through
//! vLLM's endpoints (behind the API key), unknown names a 404 in OpenAI's shape; and
//! `hearth generate --lora` / `hearth merge` on the command line.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

use common::{error_of, http, real_model, start};
use hearth_model::lora::Proj;
use hearth_model::{LoraAdapter, Transformer};

const KEY: &str = "sk-test-lora";

fn complete(addr: &str, model: &str) -> (u16, String) {
    let body = format!(
        r#"{{"model":"{model}","prompt":"The capital of France is","max_tokens":16,"temperature":0}}"#
    );
    let auth = format!("Bearer {KEY}");
    let (status, _, body) = http(
        addr,
        "POST",
        "/v1/completions",
        &[("Authorization", &auth)],
        &body,
    );
    (status, body)
}

fn text(body: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    v["choices"][0]["text"].as_str().unwrap().to_string()
}

#[test]
fn adapters_are_served_listed_loaded_and_unloaded() {
    let Some(model) = real_model() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cfg = Transformer::open(&model).unwrap().config().clone();
    let a1 = dir.path().join("a1.gguf");
    LoraAdapter::random(&cfg, &[Proj::Q, Proj::V], 8, 32.0, 0.02, 7)
        .write_gguf_lora(&a1)
        .unwrap();
    let a2 = dir.path().join("a2-peft");
    LoraAdapter::random(&cfg, &[Proj::Q, Proj::V], 8, 32.0, 0.02, 8)
        .write_peft(&a2, &cfg)
        .unwrap();
    let lora_arg = format!("a1={}", a1.display());
    let s = start(
        &model,
        &dir.path().join("u.sqlite"),
        &[
            "--served-model-name",
            "smollm2",
            "--lora",
            &lora_arg,
            "--api-key",
            KEY,
        ],
    );
    let auth = format!("Bearer {KEY}");
    let (st, _, body) = http(
        &s.addr,
        "GET",
        "/v1/models",
        &[("Authorization", &auth)],
        "",
    );
    assert_eq!(st, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let ids: Vec<(&str, Option<&str>)> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["id"].as_str().unwrap(), c["parent"].as_str()))
        .collect();
    assert_eq!(ids, [("smollm2", None), ("a1", Some("smollm2"))]);

    let (st, base) = complete(&s.addr, "smollm2");
    assert_eq!(st, 200, "{base}");
    let (st, with_a1) = complete(&s.addr, "smollm2:a1");
    assert_eq!(st, 200, "{with_a1}");
    let (_, by_name) = complete(&s.addr, "a1");
    eprintln!("base: {:?}\na1:   {:?}", text(&base), text(&with_a1));
    assert_eq!(text(&with_a1), text(&by_name));
    assert_ne!(
        text(&with_a1),
        text(&base),
        "the adapter should change the reply"
    );

    for unknown in ["smollm2:zzz", "nope", "other:a1"] {
        let (st, body) = complete(&s.addr, unknown);
        assert_eq!(st, 404, "{unknown}: {body}");
        let e = error_of(&body);
        assert_eq!(e["code"], "model_not_found", "{body}");
        assert_eq!(e["param"], "model", "{body}");
    }

    // Runtime load: the key is required; a mismatched path is a 400.
    let load = format!(r#"{{"lora_name":"a2","lora_path":"{}"}}"#, a2.display());
    let (st, _, _) = http(&s.addr, "POST", "/v1/load_lora_adapter", &[], &load);
    assert_eq!(st, 401);
    let (st, _, body) = http(
        &s.addr,
        "POST",
        "/v1/load_lora_adapter",
        &[("Authorization", &auth)],
        &format!(r#"{{"lora_name":"bad","lora_path":"{}"}}"#, model.display()),
    );
    assert_eq!(st, 400, "{body}");
    assert!(
        error_of(&body)["message"]
            .as_str()
            .unwrap()
            .contains("adapter"),
        "{body}"
    );
    let (st, _, body) = http(
        &s.addr,
        "POST",
        "/v1/load_lora_adapter",
        &[("Authorization", &auth)],
        &load,
    );
    assert_eq!(st, 200, "{body}");
    let (st, with_a2) = complete(&s.addr, "smollm2:a2");
    assert_eq!(st, 200, "{with_a2}");
    assert_ne!(text(&with_a2), text(&with_a1));
    let (_, _, body) = http(
        &s.addr,
        "GET",
        "/v1/models",
        &[("Authorization", &auth)],
        "",
    );
    assert!(body.contains(r#""id":"a2""#), "{body}");

    let unload = r#"{"lora_name":"a2"}"#;
    let (st, _, body) = http(
        &s.addr,
        "POST",
        "/v1/unload_lora_adapter",
        &[("Authorization", &auth)],
        unload,
    );
    assert_eq!(st, 200, "{body}");
    assert_eq!(complete(&s.addr, "a2").0, 404);
    let (st, _, body) = http(
        &s.addr,
        "POST",
        "/v1/unload_lora_adapter",
        &[("Authorization", &auth)],
        unload,
    );
    assert_eq!(st, 404, "{body}");
    assert_eq!(error_of(&body)["code"], "model_not_found");
}

#[test]
fn generate_with_lora_equals_generate_on_the_merged_model() {
    let Some(model) = real_model() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cfg = Transformer::open(&model).unwrap().config().clone();
    let a = dir.path().join("a.gguf");
    LoraAdapter::random(&cfg, &[Proj::Q, Proj::V], 8, 32.0, 0.02, 7)
        .write_gguf_lora(&a)
        .unwrap();
    let merged = dir.path().join("merged.gguf");
    let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["merge", "--model"])
        .arg(&model)
        .arg("--lora")
        .arg(&a)
        .arg("-o")
        .arg(&merged)
        .args(["--type", "Q8_0"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let gen = |m: &std::path::Path, lora: Option<&std::path::Path>| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_hearth"));
        c.args([
            "generate",
            "-t",
            "2",
            "-n",
            "16",
            "--temperature",
            "0",
            "-p",
            "The capital of France is",
            "-m",
        ])
        .arg(m);
        if let Some(l) = lora {
            c.arg("--lora").arg(l);
        }
        let o = c.output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    };
    let with = gen(&model, Some(&a));
    assert_eq!(with, gen(&merged, None));
    assert_ne!(with, gen(&model, None));
}
