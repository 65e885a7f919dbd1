//! The moderation judge through a served LoRA adapter, end to end with the real SmolLM2:
//! `hearth guard eval-moderation --write-judge-training` writes the records, `hearth
//! finetune` teaches an adapter one verdict, `hearth serve --lora guard=DIR
//! --moderation-judge-lora guard` asks it in `/v1/moderations`, and `eval-moderation
//! --url` scores that endpoint.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::Command;

use common::{hearth, http, real_model, row, start};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn a_judge_adapter_flags_what_the_term_lists_cannot() {
    let Some(model) = real_model() else { return };
    let dir = tempfile::tempdir().unwrap();
    // Harmless texts labelled harassment: the term lists pass them, an adapter trained
    // on them answers `unsafe` / `S5` (which maps to harassment).
    let texts = [
        "the weather is nice today",
        "we painted the fence green",
        "my cat sleeps on the sofa",
        "the train left at noon",
        "she bakes bread on sundays",
        "they planted tomatoes in may",
    ];
    let data = dir.path().join("samples.jsonl");
    let lines: Vec<String> = texts
        .iter()
        .map(|t| serde_json::json!({"prompt": t, "HR": 1}).to_string())
        .collect();
    std::fs::write(&data, lines.join("\n")).unwrap();
    let train = dir.path().join("train.jsonl");
    let out = hearth(&[
        "guard",
        "eval-moderation",
        "--data",
        s(&data),
        "--write-judge-training",
        s(&train),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(row(&stdout, "flagged (any)")[3..5], ["0", "0"], "{stdout}");

    let adapter = dir.path().join("guard");
    let out = hearth(&[
        "finetune",
        "--model",
        s(&model),
        "--data",
        s(&train),
        "--output",
        s(&adapter),
        "--steps",
        "12",
        "--batch-size",
        "3",
        "--lr",
        "2e-3",
        "--targets",
        "all",
        "--warmup",
        "1",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A judge adapter that is not served is a startup error that names it.
    let db = dir.path().join("usage.sqlite");
    let bad = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args([
            "serve",
            "--port",
            "0",
            "--model",
            s(&model),
            "--usage-db",
            s(&db),
        ])
        .args(["--moderation-judge-lora", "nope"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("--moderation-judge-lora nope"), "{err}");

    let lora = format!("guard={}", s(&adapter));
    // The adapter served as the judge, merged with `max` (the lists see nothing in the
    // harmless texts, so `confirm` would not let the judge count), plus `extra` flags.
    let judge_server = |extra: &[&str]| {
        let mut args = vec![
            "--lora",
            &lora,
            "--moderation-judge-lora",
            "guard",
            "--moderation-judge-merge",
            "max",
        ];
        args.extend_from_slice(extra);
        start(&model, &db, &args)
    };
    let server = judge_server(&[]);
    // Several inputs in one request: judged together (one batch), answered in order.
    let inputs = ["a quiet evening by the lake", "I will punch you"];
    let body = serde_json::json!({ "input": inputs }).to_string();
    let (code, _, reply) = http(&server.addr, "POST", "/v1/moderations", &[], &body);
    assert_eq!(code, 200, "{reply}");
    let v: serde_json::Value = serde_json::from_str(&reply).unwrap();
    assert_eq!(v["model"], "hearth-guard-terms+judge", "{v}");
    assert_eq!(v["results"].as_array().unwrap().len(), 2, "{v}");
    for r in v["results"].as_array().unwrap() {
        assert_eq!(r["flagged"], true, "{v}");
        assert_eq!(r["categories"]["harassment"], true, "{v}");
        // The judge's verdict scores its hazard's categories 1.
        assert_eq!(r["category_scores"]["harassment"], 1.0, "{v}");
    }
    // The lists' own score for "punch" is kept beside the judge's.
    assert!(
        v["results"][1]["category_scores"]["violence"]
            .as_f64()
            .unwrap()
            > 0.0,
        "{v}"
    );

    // The endpoint, judge included, scored by eval-moderation --url.
    let out = hearth(&[
        "guard",
        "eval-moderation",
        "--data",
        s(&data),
        "--url",
        &format!("http://{}", server.addr),
        "--concurrency",
        "2",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains("(model hearth-guard-terms+judge)"),
        "{stdout}"
    );
    assert_eq!(
        row(&stdout, "flagged (any)")[..5],
        ["1.000", "1.000", "1.000", "6", "0"],
        "{stdout}"
    );
    drop(server);

    // The veto at 1 caps every score at the judge's probability of "unsafe" (its first
    // token against "safe"): the adapter answers `unsafe` with high but not full
    // certainty, so harassment stays flagged with a score below 1.
    let server = judge_server(&["--moderation-judge-veto", "1"]);
    let body = serde_json::json!({"input": "a quiet evening by the lake"}).to_string();
    let (code, _, reply) = http(&server.addr, "POST", "/v1/moderations", &[], &body);
    assert_eq!(code, 200, "{reply}");
    let v: serde_json::Value = serde_json::from_str(&reply).unwrap();
    let p = v["results"][0]["category_scores"]["harassment"]
        .as_f64()
        .unwrap();
    assert!(p > 0.5 && p < 1.0, "{v}");
    assert_eq!(v["results"][0]["flagged"], true, "{v}");
}
