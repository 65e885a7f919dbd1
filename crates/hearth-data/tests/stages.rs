#![allow(clippy::unwrap_used)]
//! The quality filter and the domain classifier run through the stage runner: outputs,
//! per-rule and per-domain counters, fields carried through.

use std::path::Path;

use hearth_data::{
    run_stage, Compression, DomainClassifier, DomainConfig, DomainStage, Fields, Format, InputSet,
    NoProgress, QualityFilter, StageOutput,
};
use serde_json::Value;

const PROSE: &str = "The committee met on Tuesday to discuss the budget for the coming year. \
    Members agreed that the library needs new shelves, and that the roof of the old hall has \
    to be repaired before winter. After a long debate, they voted to raise the fee for the \
    summer festival by a small amount, with the extra money going to the repairs.";

fn write(dir: &Path, docs: &[(&str, String)]) -> std::path::PathBuf {
    let p = dir.join("in.jsonl");
    let mut s = String::new();
    for (id, text) in docs {
        s += &format!(
            "{{\"id\":\"{id}\",\"text\":{},\"lang\":\"x\"}}\n",
            serde_json::to_string(text).unwrap()
        );
    }
    s += "{\"id\":\"bad\"\n";
    std::fs::write(&p, s).unwrap();
    p
}

fn lines(dir: &Path) -> Vec<Value> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    let mut files: Vec<_> = rd.map(|e| e.unwrap().path()).collect();
    files.sort();
    for f in files {
        for l in std::fs::read_to_string(f).unwrap().lines() {
            out.push(serde_json::from_str(l).unwrap());
        }
    }
    out
}

fn output(dir: &Path) -> StageOutput {
    StageOutput {
        dir: dir.to_path_buf(),
        format: Format::Jsonl,
        compression: Compression::None,
        shard_bytes: 1 << 20,
    }
}

#[test]
fn quality_filter_keeps_prose_and_counts_each_rule() {
    let tmp = tempfile::tempdir().unwrap();
    let input = write(
        tmp.path(),
        &[
            ("good", PROSE.to_string()),
            ("short", "Too short.".to_string()),
            ("spam", "buy cheap pills now ".repeat(30)),
            ("lorem", format!("{PROSE} Lorem ipsum dolor sit amet.")),
        ],
    );
    let out = tmp.path().join("out");
    let inputs = InputSet::discover(&input).unwrap();
    let report = run_stage(
        &inputs,
        &Fields::default(),
        &QualityFilter::default(),
        &output(&out),
        &NoProgress,
    )
    .unwrap();
    assert_eq!(
        (
            report.docs_in,
            report.kept,
            report.dropped,
            report.malformed
        ),
        (4, 1, 3, 1)
    );
    assert_eq!(report.reasons["min_words"], 1);
    assert_eq!(report.reasons["lorem_ipsum"], 1);
    assert!(report.reasons["top_ngram_chars"] >= 1);
    let kept = lines(&out.join("kept"));
    assert_eq!(kept.len(), 1);
    // Untouched records go out byte for byte.
    let raw = std::fs::read_to_string(out.join("kept/part-00000.jsonl")).unwrap();
    assert!(std::fs::read_to_string(&input).unwrap().starts_with(&raw));
    let dropped = lines(&out.join("dropped"));
    let ids: Vec<&str> = dropped.iter().map(|v| v["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["short", "spam", "lorem"]);
    assert_eq!(
        dropped[2]["drop_reasons"],
        serde_json::json!(["lorem_ipsum"])
    );
    assert_eq!(dropped[2]["lang"], "x");
}

#[test]
fn classifier_routes_each_document_to_its_domains() {
    let tmp = tempfile::tempdir().unwrap();
    let input = write(
        tmp.path(),
        &[
            ("med", "The patient was admitted to hospital and the diagnosis guided treatment.".into()),
            ("zh-law", "法院审理了这起合同纠纷，原告和被告都请了律师。".into()),
            ("both", "The hospital billed the patient after surgery; the patient sued in court and the judge voided the contract.".into()),
            ("none", "We walked along the beach and watched the sunset.".into()),
        ],
    );
    let out = tmp.path().join("out");
    let inputs = InputSet::discover(&input).unwrap();
    let stage = DomainStage {
        classifier: DomainClassifier::new(&DomainConfig::builtin()).unwrap(),
    };
    let report = run_stage(
        &inputs,
        &Fields::default(),
        &stage,
        &output(&out),
        &NoProgress,
    )
    .unwrap();
    assert_eq!(report.kept, 4);
    let ids = |d: &str| -> Vec<String> {
        lines(&out.join("routes").join(d))
            .iter()
            .map(|v| v["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids("medical"), ["med", "both"]);
    assert_eq!(ids("legal"), ["zh-law", "both"]);
    assert_eq!(ids("other"), ["none"]);
    assert_eq!(report.routes["medical"], 2);
    let kept = lines(&out.join("kept"));
    assert!(kept[0]["domains"]["medical"].as_f64().unwrap() > 1.0);
    // Field order kept, new field last.
    let raw = std::fs::read_to_string(out.join("kept/part-00000.jsonl")).unwrap();
    assert!(
        raw.lines()
            .next()
            .unwrap()
            .starts_with("{\"id\":\"med\",\"text\":"),
        "{raw}"
    );
    assert!(raw
        .lines()
        .next()
        .unwrap()
        .contains("\"lang\":\"x\",\"domains\":{\"medical\":"));
}

#[test]
fn redaction_replaces_personal_data_and_counts_kinds() {
    let tmp = tempfile::tempdir().unwrap();
    let input = write(
        tmp.path(),
        &[
            (
                "mail",
                "Write to jane.doe@example.com or call +1 415 555 0132 today.".into(),
            ),
            ("clean", "Nothing personal in this sentence.".into()),
        ],
    );
    let out = tmp.path().join("out");
    let inputs = InputSet::discover(&input).unwrap();
    let stage = hearth_data::PiiRedactor::new(hearth_guard::Operator::Placeholder).unwrap();
    let report = run_stage(
        &inputs,
        &Fields::default(),
        &stage,
        &output(&out),
        &NoProgress,
    )
    .unwrap();
    assert_eq!(report.kept, 2);
    assert_eq!(report.reasons["EMAIL"], 1);
    let kept = lines(&out.join("kept"));
    let text = kept[0]["text"].as_str().unwrap();
    assert!(
        !text.contains("jane.doe@example.com") && text.contains("<EMAIL_1>"),
        "{text}"
    );
    assert_eq!(kept[0]["pii"]["EMAIL"], 1);
    assert_eq!(kept[0]["lang"], "x");
    assert_eq!(kept[1]["text"], "Nothing personal in this sentence.");
    assert!(hearth_data::PiiRedactor::new(hearth_guard::Operator::Pseudonymize).is_err());
}
