//! `hearth eval` end to end on a tiny model: the JSON report, the pass/fail
//! thresholds, and the same questions asked of a running `hearth serve` via --url.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::Command;

use hearth_model::tiny::TinySpec;

const QA: &str = r#"{"question": "Capital of France?", "choices": ["Berlin", "Paris", "Madrid"], "answer": "B"}
{"question": "Legs of a spider?", "choices": ["Six", "Eight"], "answer": 1}
{"question": "Capital of Japan?", "answer": "Tokyo"}
{"prompt": "Sky colour?", "answers": ["blue", "azure"]}
"#;

fn eval(args: &[&str]) -> (bool, serde_json::Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .arg("eval")
        .args(args)
        .args(["--max-tokens", "8", "--json"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let json = stdout
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or(serde_json::Value::Null);
    (
        out.status.success(),
        json,
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn local_and_served_models_report_accuracy_and_latency() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("tiny.gguf");
    TinySpec::llama().write(&model).unwrap();
    let data = dir.path().join("qa.jsonl");
    std::fs::write(&data, QA).unwrap();

    let (ok, j, err) = eval(&["--model", s(&model), "--data", s(&data), "-t", "2"]);
    assert!(ok, "{err}");
    assert_eq!(j["n"], 4);
    assert_eq!(j["errors"], 0);
    assert_eq!(j["passed"], true);
    let (p50, p95) = (
        j["latency_p50_ms"].as_f64().unwrap(),
        j["latency_p95_ms"].as_f64().unwrap(),
    );
    assert!(p50 > 0.0 && p95 >= p50, "{j}");

    // Thresholds: an accuracy a random model cannot reach fails the run, and says why.
    let (ok, j, err) = eval(&[
        "--model",
        s(&model),
        "--data",
        s(&data),
        "-t",
        "2",
        "--min-accuracy",
        "1.01",
    ]);
    assert!(!ok);
    assert_eq!(j["passed"], false);
    assert!(err.contains("accuracy"), "{err}");

    // The same set against a running server.
    let db = dir.path().join("usage.db");
    let server = common::start(&model, &db, &[]);
    let url = format!("http://{}", server.addr);
    let (ok, j, err) = eval(&["--url", &url, "--model", "tiny", "--data", s(&data)]);
    assert!(ok, "{err}");
    assert_eq!(j["n"], 4);
    assert_eq!(j["errors"], 0, "{err}");
    assert_eq!(j["target"], url.as_str());
}
