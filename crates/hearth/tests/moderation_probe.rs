//! The moderation probe end to end with the real SmolLM2: `hearth guard train-probe`
//! fits logistic regression on the model's pooled hidden states of labelled texts, and
//! `hearth serve --moderation-probe` applies it in `/v1/moderations`.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::Command;

use common::{hearth, http, real_model, start};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `hearth serve` with `args` that must fail to start; its stderr.
fn failed_start(model: &Path, db: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args([
            "serve",
            "--port",
            "0",
            "--model",
            s(model),
            "--usage-db",
            s(db),
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(!out.status.success());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_probe_learns_a_topic_the_term_lists_cannot_see() {
    let Some(model) = real_model() else { return };
    let dir = tempfile::tempdir().unwrap();
    // Harmless cooking texts labelled harassment, harmless astronomy texts unlabelled:
    // the term lists flag neither, a probe on the hidden states separates the topics.
    let cooking = [
        "she fried the onions slowly in butter",
        "knead the dough and let it rise for an hour",
        "add a pinch of salt to the boiling pasta water",
        "he roasted the chicken with lemon and thyme",
        "whisk the eggs with sugar until pale",
        "simmer the tomato sauce for twenty minutes",
        "we baked a chocolate cake for dessert",
        "chop the carrots and celery for the soup",
        "grill the fish and serve it with rice",
        "stir the risotto until the rice is creamy",
    ];
    let astronomy = [
        "the telescope observed a distant spiral galaxy",
        "jupiter has dozens of moons in orbit",
        "a comet crossed the night sky last spring",
        "the nebula glows with hydrogen light",
        "astronomers measured the star's parallax",
        "the moon's craters were formed by impacts",
        "saturn's rings are made of ice and rock",
        "a supernova was seen in a nearby galaxy",
        "the planet orbits its star every three days",
        "black holes bend the light around them",
    ];
    let mut lines = Vec::new();
    for (c, a) in cooking.iter().zip(&astronomy) {
        lines.push(serde_json::json!({"prompt": c, "HR": 1, "S": 0}).to_string());
        lines.push(serde_json::json!({"prompt": a, "HR": 0, "S": 0}).to_string());
    }
    let data = dir.path().join("samples.jsonl");
    std::fs::write(&data, lines.join("\n")).unwrap();

    let probe = dir.path().join("probe.json");
    let train = |data: &Path, depth: &str| {
        hearth(&[
            "guard",
            "train-probe",
            "--model",
            s(&model),
            "--data",
            s(data),
            "--split",
            "all",
            "-o",
            s(&probe),
            "--l2",
            "1",
            "--threshold",
            "0.5",
            "--folds",
            "5",
            "--depth",
            depth,
        ])
    };
    // Block 20 of 30: probes often read a middle block as well as the last.
    let out = train(&data, "20");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("20 texts (10 flagged)"), "{stdout}");
    assert!(stdout.contains("heads: flagged, harassment"), "{stdout}");
    // Held out, the lists find nothing and the probe most of the cooking texts.
    assert!(
        stdout.contains("term lists alone        P 0.000 R 0.000 (0 TP, 0 FP, 10 FN)"),
        "{stdout}"
    );
    let probe_line = stdout.lines().find(|l| l.contains("probe alone")).unwrap();
    assert!(stdout.contains("lists or probe, vetoed"), "{stdout}");
    let tp: usize = probe_line
        .split('(')
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(tp >= 7, "{stdout}");
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&probe).unwrap()).unwrap();
    assert_eq!(saved["features"]["dim"], 576, "{saved}");
    assert_eq!(saved["features"]["depth"], 20, "{saved}");
    assert!(
        saved["features"]["model"]
            .as_str()
            .unwrap()
            .starts_with("llama d576 L30"),
        "{saved}"
    );

    let db = dir.path().join("usage.sqlite");
    let server = start(&model, &db, &["--moderation-probe", s(&probe)]);
    let inputs = [
        "slice the mushrooms and saute them in olive oil",
        "the astronauts watched the stars from their orbit",
        "you idiot, the telescope is pointed at the wrong galaxy",
    ];
    let body = serde_json::json!({ "input": inputs }).to_string();
    let (code, _, reply) = http(&server.addr, "POST", "/v1/moderations", &[], &body);
    assert_eq!(code, 200, "{reply}");
    let v: serde_json::Value = serde_json::from_str(&reply).unwrap();
    assert_eq!(v["model"], "hearth-guard-terms+probe", "{v}");
    assert_eq!(v["results"][0]["flagged"], true, "{v}");
    assert_eq!(v["results"][0]["categories"]["harassment"], true, "{v}");
    assert_eq!(v["results"][1]["flagged"], false, "{v}");
    assert!(
        v["results"][1]["category_scores"]["harassment"]
            .as_f64()
            .unwrap()
            < 0.5,
        "{v}"
    );
    // The lists flag "idiot"; the probe, sure the text is safe (below its veto, 0.2 by
    // default), caps their score.
    let third = &v["results"][2];
    assert_eq!(third["flagged"], false, "{v}");
    assert!(
        third["category_scores"]["harassment"].as_f64().unwrap() < 0.2,
        "{v}"
    );
    let text = dir.path().join("third.txt");
    std::fs::write(&text, inputs[2]).unwrap();
    let lists = hearth(&["guard", "moderate", s(&text), "--json"]);
    let lists: serde_json::Value = serde_json::from_slice(&lists.stdout).unwrap();
    assert_eq!(lists["flagged"], true, "{lists}");
    drop(server);

    // A probe trained on another model, or a file that is no probe, stops the server
    // from starting, naming the file and the problem.
    let mut foreign = saved.clone();
    foreign["features"]["model"] = "gemma3 d640 L18 V262144 other".into();
    let other = dir.path().join("other.json");
    std::fs::write(&other, foreign.to_string()).unwrap();
    let err = failed_start(&model, &db, &["--moderation-probe", s(&other)]);
    assert!(err.contains("trained on `gemma3 d640"), "{err}");
    std::fs::write(&other, "not json").unwrap();
    let err = failed_start(&model, &db, &["--moderation-probe", s(&other)]);
    assert!(
        err.contains("other.json") && err.contains("not a probe file"),
        "{err}"
    );

    // Training needs flagged and unflagged texts.
    let clean = dir.path().join("clean.jsonl");
    let only: Vec<String> = astronomy
        .iter()
        .map(|a| serde_json::json!({"prompt": a}).to_string())
        .collect();
    std::fs::write(&clean, only.join("\n")).unwrap();
    let out = train(&clean, "20");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("clean.jsonl: 0 of 10 samples are flagged"),
        "{err}"
    );
    // Settings are checked before the model runs.
    let out = hearth(&[
        "guard",
        "train-probe",
        "--model",
        s(&model),
        "--data",
        s(&data),
        "-o",
        s(&probe),
        "--threshold",
        "0.5",
        "--veto",
        "0.6",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--veto") && err.contains("veto in [0, threshold)"),
        "{err}"
    );
    // And a depth the model has.
    let out = train(&data, "31");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--depth 31: the model has 30 blocks"), "{err}");
}
