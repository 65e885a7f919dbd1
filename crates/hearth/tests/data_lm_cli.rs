//! `hearth data train-lm` / `lm-score` and `--output-format parquet` end to end: the same
//! scores and buckets from lm.bin and from the exported ARPA file; Parquet shards written
//! by one command are read by the next.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};

fn hearth(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "hearth {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = Vec::new();
    for sub in ["kept", "routes/head", "routes/middle", "routes/tail"] {
        let d = dir.join(sub);
        let mut names: Vec<_> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        for p in names {
            v.push((
                format!("{sub}/{}", p.file_name().unwrap().to_string_lossy()),
                std::fs::read(&p).unwrap(),
            ));
        }
    }
    v
}

#[test]
fn train_lm_then_score_with_bin_and_arpa_gives_the_same_buckets() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let english =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../hearth-data/tests/data/english.txt");
    let text = std::fs::read_to_string(&english).unwrap();
    let mut docs = String::new();
    for (i, l) in text.lines().enumerate() {
        docs += &serde_json::json!({"id": i, "text": l, "src": "x"}).to_string();
        docs.push('\n');
    }
    std::fs::write(d.join("docs.jsonl"), docs).unwrap();
    let s = |p: &str| d.join(p).to_string_lossy().into_owned();
    let out = hearth(&[
        "data",
        "train-lm",
        "-i",
        &english.to_string_lossy(),
        "-o",
        &s("lm.bin"),
        "--order",
        "4",
        "--arpa",
        &s("lm.arpa"),
    ]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("4-grams"));
    for lm in ["lm.bin", "lm.arpa"] {
        hearth(&[
            "data",
            "lm-score",
            "-i",
            &s("docs.jsonl"),
            "-o",
            &s(&format!("out-{lm}")),
            "--lm",
            &s(lm),
            "--output-format",
            "parquet",
        ]);
    }
    let a = files(&d.join("out-lm.bin"));
    assert!(a.iter().any(|(n, _)| n == "routes/head/part-00000.parquet"));
    assert!(
        a == files(&d.join("out-lm.arpa")),
        "lm.bin and ARPA outputs differ"
    );
    // A cutoffs file from the first run gives the same buckets on the same data.
    hearth(&[
        "data",
        "lm-score",
        "-i",
        &s("docs.jsonl"),
        "-o",
        &s("out-cut"),
        "--lm",
        &s("lm.bin"),
        "--output-format",
        "parquet",
        "--cutoffs",
        &s("out-lm.bin/cutoffs.json"),
    ]);
    let c = std::fs::read_to_string(d.join("out-cut/cutoffs.json")).unwrap();
    assert_eq!(
        c,
        std::fs::read_to_string(d.join("out-lm.bin/cutoffs.json")).unwrap()
    );
    // Parquet written by lm-score is read by the next command (dedup).
    let out = hearth(&[
        "data",
        "dedup",
        "-i",
        &s("out-lm.bin/kept"),
        "-o",
        &s("dd"),
        "--json",
    ]);
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["docs_in"], 60);
    assert_eq!(r["malformed"], 0);
}
