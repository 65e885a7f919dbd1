#![allow(clippy::unwrap_used)]
//! Pipelines: byte-identical output for 1, 2 and 4 workers; a rerun skips finished files
//! and redoes an interrupted one; the merge refuses to run before every file is done.

use std::path::{Path, PathBuf};

use hearth_data::{NoProgress, Pipeline};

const SENTENCES: [&str; 16] = [
    "The committee met on Tuesday to discuss the budget for the coming year.",
    "Members agreed that the library needs new shelves and a new roof.",
    "After a long debate, they voted to raise the fee for the summer festival.",
    "The patient was admitted to hospital and the diagnosis guided the treatment.",
    "The court found that the defendant was in breach of the contract.",
    "Students in the school prepared for the exam with their teacher.",
    "The river flooded the lower part of the town in the spring of that year.",
    "Farmers in the valley grow wheat, barley and a little fruit for the market.",
    "The old bridge was rebuilt with stone taken from the quarry on the hill.",
    "A new train line now connects the village to the city in under an hour.",
    "The museum opened a room for the paintings that were given to it last winter.",
    "Most of the houses on the main street were built more than a century ago.",
    "The bakery on the corner sells bread that is still warm in the morning.",
    "Visitors often walk along the coast to see the birds that nest on the cliffs.",
    "The council has promised to repair the roads before the end of the year.",
    "Children play in the park while their parents talk on the benches nearby.",
];

/// `n` distinct sentences in a pseudo-random order.
fn doc(seed: &mut u64, n: usize) -> String {
    let mut order: Vec<usize> = (0..SENTENCES.len()).collect();
    for i in (1..order.len()).rev() {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        order.swap(i, (*seed >> 33) as usize % (i + 1));
    }
    order[..n]
        .iter()
        .map(|&i| SENTENCES[i])
        .collect::<Vec<_>>()
        .join(" ")
}

/// Four input files: prose documents, some repeated across files (duplicates), some with
/// an e-mail address (redacted), some too short (dropped), one malformed line.
fn write_inputs(dir: &Path) {
    let mut seed = 7u64;
    let mut all: Vec<String> = Vec::new();
    for f in 0..4 {
        let mut s = String::new();
        for i in 0..30 {
            let text = match i % 10 {
                3 if !all.is_empty() => all[(i * 7 + f) % all.len()].clone(),
                5 => "Too short to keep.".to_string(),
                7 => format!(
                    "{} Write to someone{i}@example.com for details.",
                    doc(&mut seed, 8)
                ),
                _ => doc(&mut seed, 8),
            };
            all.push(text.clone());
            s +=
                &serde_json::json!({"id": format!("f{f}-{i}"), "text": text, "src": f}).to_string();
            s.push('\n');
            if f == 2 && i == 4 {
                s += "{not json\n";
            }
        }
        std::fs::write(dir.join(format!("part{f}.jsonl")), s).unwrap();
    }
}

fn pipeline_file(dir: &Path, out: &str) -> PathBuf {
    let p = dir.join(format!("{out}.toml"));
    std::fs::write(
        &p,
        format!(
            "input = \"in\"\noutput = \"{out}\"\nshard_mib = 1\n\
             [[stages]]\nkind = \"quality\"\nmin_words = 20\n\
             [[stages]]\nkind = \"redact\"\n\
             [[stages]]\nkind = \"domains\"\n\
             [[stages]]\nkind = \"dedup\"\nthreshold = 0.8\n"
        ),
    )
    .unwrap();
    p
}

/// Every output file (relative path → bytes) except the per-file work area and reports.
fn outputs(dir: &Path) -> Vec<(String, Vec<u8>)> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(base).unwrap().to_string_lossy().into_owned();
            if rel == "work" || rel.ends_with("report.json") {
                continue;
            }
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

fn run_all(p: &Pipeline, n: usize) {
    for i in 0..n {
        p.run_worker(i, n, None, &NoProgress).unwrap();
    }
    p.merge(&NoProgress).unwrap();
}

#[test]
fn any_worker_count_gives_the_same_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("in")).unwrap();
    write_inputs(&tmp.path().join("in"));
    let one = Pipeline::load(&pipeline_file(tmp.path(), "n1")).unwrap();
    run_all(&one, 1);
    let reference = outputs(&one.output_dir());
    let names: Vec<&str> = reference.iter().map(|(n, _)| n.as_str()).collect();
    for want in [
        "kept/part-00000.jsonl",
        "dropped/part-00000.jsonl",
        "dedup/clusters.jsonl",
        "routes/medical/part-00000.jsonl",
        "malformed.jsonl",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    let report = one.merge(&NoProgress).unwrap();
    assert_eq!(report.files, 4);
    assert_eq!(report.stages.docs_in, 120);
    assert_eq!(report.stages.malformed, 1);
    assert_eq!(
        report.stages.reasons["quality:dropped"], 12,
        "{:?}",
        report.stages.reasons
    );
    assert!(report.stages.reasons["pii:EMAIL"] >= 10);
    let dedup = report.dedup.unwrap();
    assert!(dedup.removed_exact >= 8, "{dedup:?}");
    let kept = String::from_utf8(
        reference
            .iter()
            .find(|(n, _)| n == "dedup/kept/part-00000.jsonl")
            .unwrap()
            .1
            .clone(),
    )
    .unwrap();
    assert!(!kept.contains("@example.com") && kept.contains("<EMAIL_1>"));

    for n in [2, 4] {
        let p = Pipeline::load(&pipeline_file(tmp.path(), &format!("n{n}"))).unwrap();
        run_all(&p, n);
        assert_eq!(outputs(&p.output_dir()), reference, "{n} workers");
    }
}

#[test]
fn reruns_skip_done_files_and_redo_interrupted_ones() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("in")).unwrap();
    write_inputs(&tmp.path().join("in"));
    let reference = {
        let p = Pipeline::load(&pipeline_file(tmp.path(), "whole")).unwrap();
        run_all(&p, 1);
        outputs(&p.output_dir())
    };
    let p = Pipeline::load(&pipeline_file(tmp.path(), "resumed")).unwrap();
    assert_eq!(p.run_worker(0, 2, None, &NoProgress).unwrap(), 2);
    let err = p.merge(&NoProgress).unwrap_err().to_string();
    assert!(
        err.contains("not processed yet") && err.contains("part1.jsonl"),
        "{err}"
    );
    // A worker killed midway through file 1: a partial shard, no DONE marker.
    let unit = p.output_dir().join("work/file-00001/kept");
    std::fs::create_dir_all(&unit).unwrap();
    std::fs::write(unit.join("part-00000.jsonl"), "{\"id\":\"half").unwrap();
    // Finished files are skipped: rerunning worker 0 does nothing.
    assert_eq!(p.run_worker(0, 2, None, &NoProgress).unwrap(), 0);
    assert_eq!(p.run_worker(1, 2, None, &NoProgress).unwrap(), 2);
    assert_eq!(p.run_worker(1, 2, None, &NoProgress).unwrap(), 0);
    p.merge(&NoProgress).unwrap();
    assert_eq!(outputs(&p.output_dir()), reference);
}

#[test]
fn bad_pipeline_files_are_named_in_the_error() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("bad.toml");
    std::fs::write(&p, "input = \"in\"\noutput = \"o\"\n[[stages]]\nkind = \"dedup\"\n[[stages]]\nkind = \"quality\"\n").unwrap();
    let err = Pipeline::load(&p).unwrap_err().to_string();
    assert!(
        err.contains("bad.toml") && err.contains("last stage"),
        "{err}"
    );
    std::fs::write(
        &p,
        "input = \"in\"\noutput = \"o\"\n[[stages]]\nkind = \"sparkle\"\n",
    )
    .unwrap();
    let err = Pipeline::load(&p).unwrap_err().to_string();
    assert!(err.contains("bad.toml") && err.contains("sparkle"), "{err}");
}

/// A model trained on the test sentences, saved as lm.bin in `dir`.
fn train_lm(dir: &Path) -> PathBuf {
    let mut t = hearth_data::KneserNeyTrainer::new(3).unwrap();
    for s in SENTENCES {
        t.add_line(s).unwrap();
    }
    let lm = hearth_data::NgramLm::from_model(&t.build(0).unwrap(), dir).unwrap();
    let p = dir.join("lm.bin");
    lm.save(&p).unwrap();
    p
}

fn lm_pipeline(dir: &Path, out: &str, format: &str, cutoffs: Option<&str>) -> PathBuf {
    let p = dir.join(format!("{out}.toml"));
    let cut = cutoffs.map_or(String::new(), |c| format!("cutoffs = \"{c}\"\n"));
    std::fs::write(
        &p,
        format!(
            "input = \"in\"\noutput = \"{out}\"\noutput_format = \"{format}\"\n\
             compression = \"zstd\"\n\
             [[stages]]\nkind = \"redact\"\n\
             [[stages]]\nkind = \"lm-score\"\nlm = \"lm.bin\"\n{cut}\
             [[stages]]\nkind = \"dedup\"\n"
        ),
    )
    .unwrap();
    p
}

/// The lm-score stage in a sharded pipeline: byte-identical outputs for 1 and 2 workers,
/// with cut-offs computed at the merge or read from a file, in JSONL and in Parquet; and
/// the routes from a cutoffs file equal those computed on the same data.
#[test]
fn lm_score_buckets_are_the_same_for_any_worker_count() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("in")).unwrap();
    write_inputs(&tmp.path().join("in"));
    train_lm(tmp.path());
    for format in ["jsonl", "parquet"] {
        let run = |name: &str, n: usize, cutoffs: Option<&str>| {
            let p = Pipeline::load(&lm_pipeline(tmp.path(), name, format, cutoffs)).unwrap();
            run_all(&p, n);
            (p.merge(&NoProgress).unwrap(), outputs(&p.output_dir()))
        };
        let (report, one) = run(&format!("{format}-1"), 1, None);
        let (_, two) = run(&format!("{format}-2"), 2, None);
        assert!(one == two, "{format}: 1 and 2 workers differ");
        let routes = &report.stages.routes;
        assert_eq!(
            routes["head"] + routes["middle"] + routes["tail"],
            report.stages.kept,
            "{routes:?}"
        );
        assert!(routes["head"] > 10 && routes["tail"] > 10, "{routes:?}");
        let cutoffs = format!("{format}-1/cutoffs.json");
        let names: Vec<&str> = one.iter().map(|(n, _)| n.as_str()).collect();
        let ext = if format == "jsonl" {
            "jsonl.zst"
        } else {
            "parquet"
        };
        for want in [
            format!("routes/head/part-00000.{ext}"),
            format!("routes/tail/part-00000.{ext}"),
            format!("kept/part-00000.{ext}"),
            "cutoffs.json".to_string(),
        ] {
            assert!(names.contains(&want.as_str()), "{want} not in {names:?}");
        }
        let (_, given1) = run(&format!("{format}-given-1"), 1, Some(&cutoffs));
        let (_, given2) = run(&format!("{format}-given-2"), 2, Some(&cutoffs));
        assert!(given1 == given2, "{format} with a cutoffs file");
        // Same records per bucket (in Parquet, computed buckets are written from the
        // Parquet `kept/`, so a field a record lacked comes back as null: compare values
        // without nulls).
        for bucket in ["head", "middle", "tail"] {
            let dir = |name: &str| tmp.path().join(name).join("routes").join(bucket);
            assert_eq!(
                records_without_nulls(&dir(&format!("{format}-given-1"))),
                records_without_nulls(&dir(&format!("{format}-1"))),
                "{format} {bucket}"
            );
        }
    }
}

fn records_without_nulls(dir: &Path) -> Vec<serde_json::Value> {
    let inputs = hearth_data::InputSet::discover(dir).unwrap();
    let mut out = Vec::new();
    hearth_data::scan(&inputs, &hearth_data::Fields::default(), |_, batch| {
        for (r, _) in batch {
            let mut v: serde_json::Value = serde_json::from_slice(&r.raw).unwrap();
            v.as_object_mut().unwrap().retain(|_, x| !x.is_null());
            out.push(v);
        }
        Ok(())
    })
    .unwrap();
    out
}
