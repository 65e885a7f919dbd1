//! `hearth guard eval-moderation` and `eval-pii` on small hand-made sets in the real
//! formats, checking the counts and ratios they print.
#![allow(clippy::unwrap_used)]

mod common;

use common::{hearth, row};

#[test]
fn eval_moderation_counts_flagged_vs_not() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("samples.jsonl");
    // Two flagged by their labels (one caught by the lists, one not), two clean (one
    // wrongly caught), so P = 1/2 and R = 1/2.
    std::fs::write(
        &data,
        [
            r#"{"prompt": "I want to die, there is no reason to live", "SH": 1, "V": 0}"#,
            r#"{"prompt": "a subtle insult the lists cannot know", "HR": 1}"#,
            r#"{"prompt": "the weather is nice today", "S": 0, "H": 0}"#,
            r#"{"prompt": "a film with porn and nude scenes, reviewed", "S": 0}"#,
        ]
        .join("\n"),
    )
    .unwrap();
    let out = hearth(&["guard", "eval-moderation", "--data", data.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("4 texts, 2 labelled flagged"), "{stdout}");
    assert_eq!(
        row(&stdout, "flagged (any)")[..5],
        ["0.500", "0.500", "0.500", "1", "1"]
    );
    assert_eq!(row(&stdout, "self-harm (SH)")[..2], ["1.000", "1.000"]);

    let dev = hearth(&[
        "guard",
        "eval-moderation",
        "--data",
        data.to_str().unwrap(),
        "--split",
        "dev",
    ]);
    let stdout = String::from_utf8(dev.stdout).unwrap();
    assert!(
        stdout.contains("(Dev): 2 texts, 1 labelled flagged"),
        "{stdout}"
    );
}

#[test]
fn eval_moderation_merges_judge_replies() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("samples.jsonl");
    std::fs::write(
        &data,
        [
            r#"{"prompt": "I want to die, there is no reason to live", "SH": 1}"#,
            r#"{"prompt": "a subtle insult the lists cannot know", "HR": 1}"#,
            r#"{"prompt": "the weather is nice today", "S": 0}"#,
        ]
        .join("\n"),
    )
    .unwrap();
    let prompts = dir.path().join("prompts.jsonl");
    let out = hearth(&[
        "guard",
        "eval-moderation",
        "--data",
        data.to_str().unwrap(),
        "--write-judge-prompts",
        prompts.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let written = std::fs::read_to_string(&prompts).unwrap();
    let rows: Vec<serde_json::Value> = written
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[1]["line"], 2);
    let p = rows[1]["prompt"].as_str().unwrap();
    assert!(
        p.contains("User: a subtle insult the lists cannot know\n\n<END CONVERSATION>"),
        "{p}"
    );

    // The dev half as fine-tuning records: the same prompt, the verdict of the labels.
    let training = dir.path().join("train.jsonl");
    let out = hearth(&[
        "guard",
        "eval-moderation",
        "--data",
        data.to_str().unwrap(),
        "--split",
        "dev",
        "--write-judge-training",
        training.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let records: Vec<serde_json::Value> = std::fs::read_to_string(&training)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 2, "lines 1 and 3 are the dev half");
    assert_eq!(records[0]["messages"][0]["role"], "user");
    // The brief prompt (the one `--moderation-judge-lora` sends): no category list.
    let user = records[0]["messages"][0]["content"].as_str().unwrap();
    assert!(
        user.contains("User: I want to die, there is no reason to live\n\n<END CONVERSATION>"),
        "{user}"
    );
    assert!(!user.contains("S1:") && rows[0]["prompt"].as_str().unwrap().contains("S1:"));
    assert_eq!(records[0]["messages"][1]["role"], "assistant");
    assert_eq!(records[0]["messages"][1]["content"], "unsafe\nS11");
    let user = records[1]["messages"][0]["content"].as_str().unwrap();
    assert!(
        user.contains("User: the weather is nice today\n\n"),
        "{user}"
    );
    assert_eq!(records[1]["messages"][1]["content"], "safe");

    // The judge catches the insult (S5 defamation maps to harassment), and one reply is
    // unreadable: the term lists stand there.
    let replies = dir.path().join("replies.jsonl");
    std::fs::write(
        &replies,
        "{\"line\": 1, \"reply\": \"I cannot\"}\n{\"line\": 2, \"reply\": \"unsafe\\nS5\"}\n",
    )
    .unwrap();
    let out = hearth(&[
        "guard",
        "eval-moderation",
        "--data",
        data.to_str().unwrap(),
        "--judge-replies",
        replies.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        row(&stdout, "flagged (any)")[..2],
        ["1.000", "1.000"],
        "{stdout}"
    );
    assert!(
        stdout.contains("judge: 1 replies merged (Max), 1 unreadable and 1 missing"),
        "{stdout}"
    );
}

#[test]
fn eval_moderation_names_bad_lines_and_lists() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("bad.jsonl");
    std::fs::write(&data, "{\"prompt\": \"ok\"}\n{oops\n").unwrap();
    let out = hearth(&["guard", "eval-moderation", "--data", data.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.jsonl:2"), "{err}");

    let terms = dir.path().join("my.terms");
    std::fs::write(&terms, "[violence]\n0.5 ok\n[nope]\n").unwrap();
    let good = dir.path().join("good.jsonl");
    std::fs::write(&good, "{\"prompt\": \"ok\"}\n").unwrap();
    let out = hearth(&[
        "guard",
        "eval-moderation",
        "--data",
        good.to_str().unwrap(),
        "--terms",
        terms.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("my.terms:3") && err.contains("unknown category `nope`"),
        "{err}"
    );
}

#[test]
fn eval_pii_scores_spans_per_type() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("synth.json");
    // Character offsets, as the presidio-evaluator set has them (the é shifts bytes).
    let text = "Café: mail jo@example.com, call 212-555-0147 or 4111 1111 1111 1112.";
    let span = |ty: &str, value: &str| {
        let byte = text.find(value).unwrap();
        let start = text[..byte].chars().count();
        serde_json::json!({
            "entity_type": ty, "entity_value": value,
            "start_position": start, "end_position": start + value.chars().count()
        })
    };
    let records = serde_json::json!([{
        "full_text": text,
        "spans": [
            span("EMAIL_ADDRESS", "jo@example.com"),
            span("PHONE_NUMBER", "212-555-0147"),
            span("CREDIT_CARD", "4111 1111 1111 1112"),
            span("PERSON", "Café"),
        ]
    }]);
    std::fs::write(&data, records.to_string()).unwrap();
    // The checksummed kinds only: PERSON is then not a claimed type.
    let out = hearth(&[
        "guard",
        "eval-pii",
        "--data",
        data.to_str().unwrap(),
        "--kinds",
        "default",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(!stdout.lines().any(|l| l.starts_with("PERSON")), "{stdout}");
    assert_eq!(
        row(&stdout, "EMAIL_ADDRESS")[..4],
        ["1", "|", "1.000", "1.000"]
    );
    assert_eq!(
        row(&stdout, "PHONE_NUMBER")[..4],
        ["1", "|", "1.000", "1.000"]
    );
    // The labelled card fails Luhn: a miss, no false hit.
    assert_eq!(
        row(&stdout, "CREDIT_CARD")[..4],
        ["1", "|", "0.000", "0.000"]
    );
    assert_eq!(
        row(&stdout, "claimed types")[..4],
        ["3", "|", "1.000", "0.667"]
    );

    // All kinds (the default): PERSON is claimed, and "Café" is no name (a miss).
    let out = hearth(&["guard", "eval-pii", "--data", data.to_str().unwrap()]);
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(row(&stdout, "PERSON")[..4], ["1", "|", "0.000", "0.000"]);
    assert_eq!(
        row(&stdout, "claimed types")[..4],
        ["4", "|", "1.000", "0.500"]
    );
}

#[test]
fn eval_pii_counts_each_piece_of_a_split_address_found_whole() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("synth.json");
    // As presidio-evaluator splits some addresses: street and unit are two gold spans.
    let text = "Send it to Brixtonlaan 380 Apt. 12 please.";
    let span = |value: &str| {
        let start = text.find(value).unwrap();
        serde_json::json!({
            "entity_type": "STREET_ADDRESS", "entity_value": value,
            "start_position": start, "end_position": start + value.len()
        })
    };
    let records = serde_json::json!([{
        "full_text": text,
        "spans": [span("Brixtonlaan 380"), span("Apt. 12")]
    }]);
    std::fs::write(&data, records.to_string()).unwrap();
    let out = hearth(&["guard", "eval-pii", "--data", data.to_str().unwrap()]);
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    // One finding ("Brixtonlaan 380 Apt. 12"): no exact match, both pieces overlapped.
    assert_eq!(
        row(&stdout, "STREET_ADDRESS")[..7],
        ["2", "|", "0.000", "0.000", "|", "1.000", "1.000"],
        "{stdout}"
    );
}

/// presidio-evaluator's own labelled set (fetched by `.ci/fetch-assets`): every type we
/// claim, at overlap, at or above Presidio's defaults on it (P 0.733, R 0.646).
#[test]
fn eval_pii_on_presidio_evaluators_set_beats_presidio() {
    let data = hearth_hub::cache_dir().join("presidio-evaluator/synth_dataset_v2.json");
    if !data.exists() {
        eprintln!(
            "SKIPPED: {} absent (.ci/fetch-assets fetches it)",
            data.display()
        );
        return;
    }
    let out = hearth(&["guard", "eval-pii", "--data", data.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("1500 records"), "{stdout}");
    for ty in [
        "CREDIT_CARD",
        "EMAIL_ADDRESS",
        "IBAN_CODE",
        "IP_ADDRESS",
        "PHONE_NUMBER",
        "PERSON",
        "STREET_ADDRESS",
    ] {
        let cells = row(&stdout, ty);
        // type gold | P R | P~ R~
        let (p, r): (f64, f64) = (cells[5].parse().unwrap(), cells[6].parse().unwrap());
        assert!(p >= 0.733 && r >= 0.646, "{ty}: P~ {p} R~ {r}\n{stdout}");
    }
}
