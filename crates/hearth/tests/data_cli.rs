//! `hearth data ...` end to end: dedup on a small corpus with malformed lines, and the
//! perplexity filter on the real SmolLM2 model (skipped loudly when it is not cached).
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn hearth(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(args)
        .output()
        .unwrap()
}

fn real(name: &str) -> Option<PathBuf> {
    let info = hearth_hub::find_model(name)?;
    let p = hearth_hub::cache_dir().join("models").join(info.file_name);
    if p.exists() {
        Some(p)
    } else {
        eprintln!("SKIPPED: {} absent (run `hearth pull {name}`)", p.display());
        None
    }
}

fn jsonl(dir: &Path, name: &str, docs: &[(&str, &str)], extra: &str) -> PathBuf {
    let p = dir.join(name);
    let mut s = String::new();
    for (id, text) in docs {
        s += &serde_json::json!({"id": id, "text": text}).to_string();
        s.push('\n');
    }
    s += extra;
    std::fs::write(&p, s).unwrap();
    p
}

fn records(dir: &Path) -> Vec<serde_json::Value> {
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

#[test]
fn dedup_cli_writes_kept_clusters_and_reports_malformed_lines() {
    let dir = tempfile::tempdir().unwrap();
    let base = "one two three four five six seven eight nine ten eleven twelve thirteen";
    let near = "one two three four five six seven eight nine ten eleven twelve fourteen";
    let input = jsonl(
        dir.path(),
        "in.jsonl",
        &[
            ("a", base),
            ("b", "Something else entirely, with its own words."),
            ("c", base),
            ("d", near),
        ],
        "{\"id\": \"e\", \"body\": \"no text\"}\n",
    );
    let out = dir.path().join("out");
    let o = hearth(&[
        "data",
        "dedup",
        "-i",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--threshold",
        "0.7",
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["docs_in"], 4);
    assert_eq!(report["malformed"], 1);
    assert_eq!(report["removed_exact"], 1);
    assert_eq!(report["removed_near"], 1);
    let kept: Vec<_> = records(&out.join("kept"))
        .iter()
        .map(|v| v["id"].clone())
        .collect();
    assert_eq!(kept, ["a", "b"]);
    let clusters = std::fs::read_to_string(out.join("clusters.jsonl")).unwrap();
    assert_eq!(
        clusters.trim(),
        r#"{"cluster":0,"size":3,"kept":"a","members":["a","c","d"]}"#
    );
    let malformed = std::fs::read_to_string(out.join("malformed.jsonl")).unwrap();
    assert!(
        malformed.contains("\"line\":5") && malformed.contains("missing text field"),
        "{malformed}"
    );
}

#[test]
fn bad_input_paths_fail_with_the_path_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.jsonl");
    let o = hearth(&["data", "filter", "-i", missing.to_str().unwrap(), "-o", "x"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("nope.jsonl"));
}

const FLUENT: &str = "The history of the city goes back more than two thousand years. It began as \
    a small fishing village on the banks of the river, and over the centuries it grew into an \
    important center of trade. Merchants came from far away to sell their goods in its busy \
    markets, and many of them decided to stay.";

/// The words of `text` in a fixed pseudo-random order.
fn shuffled(text: &str) -> String {
    let mut words: Vec<&str> = text.split(' ').collect();
    let mut s = 12345u64;
    for i in (1..words.len()).rev() {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        words.swap(i, (s >> 33) as usize % (i + 1));
    }
    words.join(" ")
}

fn cli_ppl(dir: &Path, model: &str, text: &str, ctx: &str) -> f64 {
    let f = dir.join("t.txt");
    std::fs::write(&f, text).unwrap();
    let o = hearth(&[
        "perplexity",
        "-m",
        model,
        "-f",
        f.to_str().unwrap(),
        "--ctx",
        ctx,
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    v["ppl"].as_f64().unwrap()
}

#[test]
fn perplexity_filter_matches_hearth_perplexity_and_drops_shuffled_text() {
    let Some(model) = real("smollm2-135m") else {
        return;
    };
    let model = model.to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mixed = shuffled(FLUENT);
    let input = jsonl(
        dir.path(),
        "in.jsonl",
        &[("fluent", FLUENT), ("shuffled", &mixed)],
        "",
    );
    let out = dir.path().join("out");
    let o = hearth(&[
        "data",
        "perplexity",
        "-i",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "-m",
        model,
        "--ctx",
        "32",
        "--max-ppl",
        "50",
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let kept = records(&out.join("kept"));
    let dropped = records(&out.join("dropped"));
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(kept[0]["id"], "fluent");
    assert_eq!(dropped[0]["id"], "shuffled");
    assert_eq!(
        dropped[0]["drop_reasons"],
        serde_json::json!(["ppl_above_threshold"])
    );
    for (rec, text) in [(&kept[0], FLUENT), (&dropped[0], mixed.as_str())] {
        let ours = rec["ppl"].as_f64().unwrap();
        let cli = cli_ppl(dir.path(), model, text, "32");
        assert!(
            ((ours - cli) / cli).abs() < 1e-6,
            "{}: data {ours} vs perplexity {cli}",
            rec["id"]
        );
    }
    assert!(kept[0]["ppl"].as_f64().unwrap() < 20.0);
    assert!(dropped[0]["ppl"].as_f64().unwrap() > 100.0);

    // The same split by percentile: the better half of two documents is the fluent one.
    let out = dir.path().join("pct");
    let o = hearth(&[
        "data",
        "perplexity",
        "-i",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "-m",
        model,
        "--ctx",
        "32",
        "--keep-percentile",
        "50",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let kept = records(&out.join("kept"));
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0]["id"], "fluent");
    assert_eq!(records(&out.join("scored/kept")).len(), 2);
}

#[test]
fn run_pipeline_in_shards_equals_one_process() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir(&input).unwrap();
    for f in 0..3 {
        let docs: Vec<(String, String)> = (0..5)
            .map(|i| {
                let text = format!(
                    "Document {i} of file {f} talks about the patient, the diagnosis and the \
                     treatment in the hospital. Contact nurse{i}@example.org for the results."
                );
                (format!("f{f}-{i}"), text)
            })
            .collect();
        let refs: Vec<(&str, &str)> = docs.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        jsonl(&input, &format!("p{f}.jsonl"), &refs, "");
    }
    let toml = |out: &str| {
        let p = dir.path().join(format!("{out}.toml"));
        std::fs::write(
            &p,
            format!(
                "input = \"in\"\noutput = \"{out}\"\n[[stages]]\nkind = \"redact\"\n\
                 [[stages]]\nkind = \"domains\"\n[[stages]]\nkind = \"dedup\"\n"
            ),
        )
        .unwrap();
        p.to_str().unwrap().to_string()
    };
    let whole = toml("whole");
    let o = hearth(&["data", "run", &whole, "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["stages"]["docs_in"], 15);
    assert_eq!(report["stages"]["routes"]["medical"], 15);

    let sharded = toml("sharded");
    for s in ["1/2", "0/2"] {
        let o = hearth(&["data", "run", &sharded, "--shard", s]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let o = hearth(&["data", "run", &sharded, "--merge"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("documents in"));
    for rel in [
        "kept/part-00000.jsonl",
        "routes/medical/part-00000.jsonl",
        "dedup/kept/part-00000.jsonl",
        "dedup/clusters.jsonl",
    ] {
        let a = std::fs::read(dir.path().join("whole").join(rel)).unwrap();
        let b = std::fs::read(dir.path().join("sharded").join(rel)).unwrap();
        assert_eq!(a, b, "{rel}");
    }
    let kept =
        std::fs::read_to_string(dir.path().join("whole/dedup/kept/part-00000.jsonl")).unwrap();
    assert!(!kept.contains("@example.org"));
    let o = hearth(&["data", "run", &sharded, "--shard", "2/2"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("0 <= I < N"));
}
