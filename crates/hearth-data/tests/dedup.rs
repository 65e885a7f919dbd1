#![allow(clippy::unwrap_used)]
//! Dedup on a generated corpus with planted near-duplicates: precision and recall against
//! brute-force exact Jaccard, identical output for any thread count, malformed lines
//! reported, records passed through untouched, sharded and compressed output.

use std::io::Write;
use std::path::{Path, PathBuf};

use hearth_data::{
    dedup, jaccard, normalize, Compression, DedupConfig, InputSet, MinHasher, NoProgress, Shingle,
};

/// xorshift64*: a small deterministic generator for the corpus.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

struct Corpus {
    /// (id, text) in input order.
    docs: Vec<(String, String)>,
}

fn word(rng: &mut Rng) -> String {
    const SYL: [&str; 12] = [
        "ka", "to", "ri", "men", "sa", "lo", "ver", "un", "da", "pe", "ist", "or",
    ];
    // Zipf-like: small indices are much more common.
    let n = 1 + rng.below(3);
    (0..n)
        .map(|_| SYL[rng.below(SYL.len()).min(rng.below(SYL.len()))])
        .collect()
}

fn mutate(rng: &mut Rng, text: &str, rate: f64) -> String {
    let mut out = Vec::new();
    for w in text.split(' ') {
        let r = rng.unit();
        if r < rate / 3.0 {
            continue;
        } else if r < 2.0 * rate / 3.0 {
            out.push(word(rng));
        } else {
            out.push(w.to_string());
            if r > 1.0 - rate / 3.0 {
                out.push(word(rng));
            }
        }
    }
    out.join(" ")
}

/// 700 documents: fresh ones, near-duplicates at mutation rates from 1% to 20% (the high
/// rates fall below the threshold and must stay), and exact copies with changed case and
/// spacing.
fn corpus() -> Corpus {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut docs: Vec<(String, String)> = Vec::new();
    for i in 0..700 {
        let text = if i > 20 && rng.unit() < 0.25 {
            let src = docs[rng.below(docs.len())].1.clone();
            if rng.unit() < 0.15 {
                format!("  {}\n", src.to_uppercase().replace(' ', "  \t"))
            } else {
                let rate = [0.01, 0.02, 0.04, 0.2][rng.below(4)];
                mutate(&mut rng, &normalize(&src), rate)
            }
        } else {
            let n = 60 + rng.below(100);
            (0..n).map(|_| word(&mut rng)).collect::<Vec<_>>().join(" ")
        };
        docs.push((format!("doc{i:04}"), text));
    }
    Corpus { docs }
}

/// Ids of documents whose 5-word shingle Jaccard with some earlier document is >= 0.8.
fn truth(c: &Corpus) -> Vec<String> {
    let m = MinHasher::new(Shingle::Words(5), 1, 0).unwrap();
    let sets: Vec<Vec<u64>> = c
        .docs
        .iter()
        .map(|(_, t)| {
            let mut s = Vec::new();
            m.shingles(&normalize(t), &mut s);
            s
        })
        .collect();
    (0..sets.len())
        .filter(|&j| (0..j).any(|i| jaccard(&sets[i], &sets[j]) >= 0.8))
        .map(|j| c.docs[j].0.clone())
        .collect()
}

fn line(id: &str, text: &str, k: usize) -> String {
    format!(
        "{{\"meta\":{{\"k\":{k},\"src\":[\"a\",1.50]}},\"id\":\"{id}\",\"text\":{}}}",
        serde_json::to_string(text).unwrap()
    )
}

/// Writes the corpus as dir/a.jsonl.gz (first half, with malformed lines) and
/// dir/b.jsonl.zst (second half). Returns every valid line in input order.
fn write_inputs(dir: &Path, c: &Corpus) -> Vec<String> {
    let half = c.docs.len() / 2;
    let mut valid = Vec::new();
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(dir.join("a.jsonl.gz")).unwrap(),
        flate2::Compression::fast(),
    );
    for (k, (id, t)) in c.docs[..half].iter().enumerate() {
        let l = line(id, t, k);
        writeln!(gz, "{l}").unwrap();
        valid.push(l);
        match k {
            10 => gz.write_all(b"{\"id\": \"broken\", \"text\": \n").unwrap(),
            20 => gz
                .write_all(b"{\"id\": \"no-text\", \"body\": \"x\"}\n")
                .unwrap(),
            30 => gz
                .write_all(b"{\"id\": \"bad-utf8\", \"text\": \"a\xff\"}\n")
                .unwrap(),
            40 => gz.write_all(b"\n").unwrap(),
            _ => {}
        }
    }
    gz.finish().unwrap();
    let mut zst = zstd::stream::write::Encoder::new(
        std::fs::File::create(dir.join("b.jsonl.zst")).unwrap(),
        1,
    )
    .unwrap();
    for (k, (id, t)) in c.docs[half..].iter().enumerate() {
        let l = line(id, t, k + half);
        writeln!(zst, "{l}").unwrap();
        valid.push(l);
    }
    zst.finish().unwrap();
    valid
}

fn read_dir_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

fn run(input: &Path, out: &Path, threads: usize, cfg: &DedupConfig) -> hearth_data::DedupReport {
    let inputs = InputSet::discover(input).unwrap();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| dedup(&inputs, out, cfg, &NoProgress))
        .unwrap()
}

fn kept_ids(out: &Path) -> Vec<String> {
    let mut ids = Vec::new();
    for (_, bytes) in read_dir_files(&out.join("kept")) {
        for l in String::from_utf8(bytes).unwrap().lines() {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            ids.push(v["id"].as_str().unwrap().to_string());
        }
    }
    ids
}

#[test]
fn planted_duplicates_are_found_precisely_and_identically_for_any_thread_count() {
    let c = corpus();
    let truth = truth(&c);
    assert!(
        truth.len() > 60,
        "the corpus plants too few duplicates: {}",
        truth.len()
    );
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    std::fs::create_dir(&input).unwrap();
    let valid = write_inputs(&input, &c);

    let cfg = DedupConfig::default();
    let out1 = tmp.path().join("out1");
    let report = run(&input, &out1, 1, &cfg);
    assert_eq!(report.docs_in, c.docs.len() as u64);
    assert_eq!(report.malformed, 3);
    assert_eq!(report.blank_lines, 1);

    // Precision and recall of the removed set against brute-force exact Jaccard.
    let kept = kept_ids(&out1);
    let removed: Vec<&String> = c
        .docs
        .iter()
        .map(|d| &d.0)
        .filter(|id| !kept.contains(id))
        .collect();
    let tp = removed.iter().filter(|id| truth.contains(id)).count();
    let precision = tp as f64 / removed.len() as f64;
    let recall = tp as f64 / truth.len() as f64;
    assert!(
        precision >= 0.99,
        "precision {precision} ({tp} of {} removed)",
        removed.len()
    );
    assert!(
        recall >= 0.98,
        "recall {recall} ({tp} of {} duplicates)",
        truth.len()
    );
    assert_eq!(report.kept as usize, kept.len());
    assert_eq!(
        report.removed_exact + report.removed_near,
        removed.len() as u64
    );
    assert!(
        report.removed_exact > 0 && report.removed_near > 0,
        "{report:?}"
    );

    // Kept records are the input lines, byte for byte, in input order.
    let kept_text =
        String::from_utf8(std::fs::read(out1.join("kept/part-00000.jsonl")).unwrap()).unwrap();
    let expected: Vec<&String> = valid
        .iter()
        .filter(|l| {
            kept.iter()
                .any(|id| l.contains(&format!("\"id\":\"{id}\"")))
        })
        .collect();
    assert_eq!(kept_text.lines().collect::<Vec<_>>(), expected);

    // Clusters: every removed document is a non-first member of exactly one cluster.
    let clusters = std::fs::read_to_string(out1.join("clusters.jsonl")).unwrap();
    let mut members = 0;
    for l in clusters.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        let m = v["members"].as_array().unwrap();
        assert_eq!(v["size"].as_u64().unwrap() as usize, m.len());
        assert_eq!(v["kept"], m[0]);
        assert!(kept.contains(&m[0].as_str().unwrap().to_string()));
        members += m.len() - 1;
    }
    assert_eq!(members, removed.len());

    // Malformed lines are named with file and line.
    let malformed = std::fs::read_to_string(out1.join("malformed.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = malformed
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let at: Vec<(u64, bool)> = lines
        .iter()
        .map(|v| {
            (
                v["line"].as_u64().unwrap(),
                v["file"].as_str().unwrap().ends_with("a.jsonl.gz"),
            )
        })
        .collect();
    assert_eq!(at, vec![(12, true), (23, true), (34, true)]);
    assert!(lines[1]["problem"]
        .as_str()
        .unwrap()
        .contains("missing text field `text`"));
    assert!(lines[2]["problem"]
        .as_str()
        .unwrap()
        .contains("invalid UTF-8"));

    // Same bytes for 2 and 4 threads, and when later passes re-read the files.
    for (threads, cache) in [(2, 1 << 30), (4, 1 << 30), (3, 0)] {
        let out = tmp.path().join(format!("out{threads}"));
        let cfg = DedupConfig {
            cache_bytes: cache,
            ..DedupConfig::default()
        };
        run(&input, &out, threads, &cfg);
        assert_eq!(
            read_dir_files(&out.join("kept")),
            read_dir_files(&out1.join("kept"))
        );
        for f in ["clusters.jsonl", "malformed.jsonl"] {
            assert_eq!(
                std::fs::read(out.join(f)).unwrap(),
                std::fs::read(out1.join(f)).unwrap(),
                "{f}"
            );
        }
    }
}

#[test]
fn shards_split_by_size_and_compress_without_changing_records() {
    let c = corpus();
    let tmp = tempfile::tempdir().unwrap();
    let input: PathBuf = tmp.path().join("in.jsonl");
    let all: String = c
        .docs
        .iter()
        .enumerate()
        .map(|(k, (id, t))| line(id, t, k) + "\n")
        .collect();
    std::fs::write(&input, &all).unwrap();
    let one = tmp.path().join("one");
    run(&input, &one, 2, &DedupConfig::default());
    let whole = std::fs::read(one.join("kept/part-00000.jsonl")).unwrap();

    for comp in [Compression::None, Compression::Gzip, Compression::Zstd] {
        let out = tmp.path().join(format!("{comp:?}"));
        let cfg = DedupConfig {
            shard_bytes: 50_000,
            compression: comp,
            ..DedupConfig::default()
        };
        let report = run(&input, &out, 2, &cfg);
        assert!(report.shards.len() > 3, "{:?}", report.shards);
        let files = read_dir_files(&out.join("kept"));
        assert!(
            files.iter().all(|(n, _)| !n.ends_with(".tmp")),
            "temporaries left: {files:?}"
        );
        let mut joined = Vec::new();
        for shard in &report.shards {
            assert!(shard
                .to_string_lossy()
                .ends_with(&format!(".jsonl{}", comp.suffix())));
            std::io::copy(&mut hearth_data::open_reader(shard).unwrap(), &mut joined).unwrap();
        }
        assert_eq!(joined, whole, "{comp:?}");
    }
}

#[test]
fn a_rerun_replaces_old_shards() {
    let c = corpus();
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in.jsonl");
    let all: String = c
        .docs
        .iter()
        .enumerate()
        .map(|(k, (id, t))| line(id, t, k) + "\n")
        .collect();
    std::fs::write(&input, all).unwrap();
    let out = tmp.path().join("out");
    let small = DedupConfig {
        shard_bytes: 20_000,
        ..DedupConfig::default()
    };
    let many = run(&input, &out, 1, &small).shards.len();
    let report = run(&input, &out, 1, &DedupConfig::default());
    assert!(many > 1);
    assert_eq!(report.shards.len(), 1);
    assert_eq!(read_dir_files(&out.join("kept")).len(), 1);
}
