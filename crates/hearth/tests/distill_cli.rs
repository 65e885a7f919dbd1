//! `hearth distill` end to end on a tiny model: the JSON summary, the student and
//! baseline files (which `hearth perplexity` scores as the summary says), the teacher
//! cache reused on a second run (the vocabulary check is tested in hearth-train's
//! `tests/distill.rs`).
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

use hearth_model::tiny::TinySpec;

fn hearth(args: &[&str]) -> (bool, serde_json::Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
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

const TRAIN: &str = "The quick brown fox jumps over the lazy dog. A small model learns \
    from a larger one by matching its predictions, one token at a time. ";
const VAL: &str = "Every other layer of the teacher becomes the student, which then \
    learns to predict what the teacher would say about the next token. ";

#[test]
fn tiny_model_distills_with_a_baseline_and_reuses_the_teacher_cache() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("teacher.gguf");
    TinySpec {
        n_layers: 4,
        ..TinySpec::llama()
    }
    .write(&model)
    .unwrap();
    let (train, val) = (dir.path().join("train.txt"), dir.path().join("val.txt"));
    std::fs::write(&train, TRAIN.repeat(6)).unwrap();
    std::fs::write(&val, VAL.repeat(4)).unwrap();
    let out = dir.path().join("student.gguf");
    let args = [
        "distill",
        "--model",
        s(&model),
        "--data",
        s(&train),
        "--val",
        s(&val),
        "--output",
        s(&out),
        "--steps",
        "4",
        "--seq-len",
        "48",
        "--ppl-ctx",
        "64",
        "--top-k",
        "8",
        "--lr",
        "3e-3",
        "--baseline-hard-labels",
        "--json",
    ];
    let (ok, j, err) = hearth(&args);
    assert!(ok, "{err}");
    assert!(err.contains("teacher top-k: built"), "{err}");
    assert_eq!(j["steps"], 4);
    assert_eq!(j["student_layers"], 2);
    for k in [
        "teacher_ppl",
        "student_ppl_before",
        "student_ppl_after",
        "baseline_ppl_after",
        "tokens_per_s",
    ] {
        assert!(j[k].as_f64().unwrap() > 0.0, "{k}: {j}");
    }
    assert_eq!(j["student_path"], s(&out));
    let baseline = dir.path().join("student.baseline.gguf");
    assert!(out.exists() && baseline.exists() && dir.path().join("student.topk").exists());
    assert!(!dir.path().join("student.init.tmp.gguf").exists());
    // `hearth perplexity` loads the student and agrees with the summary.
    let (ok, p, err) = hearth(&[
        "perplexity",
        "--model",
        s(&out),
        "-f",
        s(&val),
        "--ctx",
        "64",
        "--json",
    ]);
    assert!(ok, "{err}");
    let (a, b) = (
        p["ppl"].as_f64().unwrap(),
        j["student_ppl_after"].as_f64().unwrap(),
    );
    assert!((a - b).abs() < 1e-6 * b, "{a} vs {b}");
    // Second run: the teacher's cache is reused.
    let (ok, _, err) = hearth(&args);
    assert!(ok && err.contains("teacher top-k: reused"), "{err}");
}
