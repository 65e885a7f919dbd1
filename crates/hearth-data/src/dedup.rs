//! The dedup stage: exact dedup on normalised text, then MinHash-LSH near-dedup with every
//! candidate pair verified by exact Jaccard, union-find clusters, and the first document
//! (in input order) of each cluster kept.
//!
//! Memory stays proportional to the number of documents, not their size: three streaming
//! passes over the input. Pass 1 keeps a 128-bit exact key and `bands` 64-bit band hashes
//! per document. Pass 2 keeps the shingle sets of only the documents in some candidate
//! pair. Pass 3 writes the kept records (their raw lines, untouched) and the clusters.
//! Every step is ordered by document index, so results do not depend on thread count.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::input::{Compression, InputSet};
use crate::lsh::{candidate_pairs, LshParams};
use crate::minhash::{jaccard, MinHasher, Shingle};
use crate::normalize::{exact_key, normalize};
use crate::output::{write_atomic, Format, ShardSpec, ShardWriter};
use crate::progress::Progress;
use crate::record::{Fields, Malformed};
use crate::scan::{scan, Revisit};
use crate::stage::write_malformed;
use crate::union_find::UnionFind;

/// Near-duplicate settings.
#[derive(Debug, Clone)]
pub struct NearDedupConfig {
    /// Shingle unit and size.
    pub shingle: Shingle,
    /// Number of MinHash permutations.
    pub num_perm: usize,
    /// Minimum exact Jaccard of a verified duplicate pair.
    pub threshold: f64,
    /// Bands × rows; `None` chooses them from the threshold ([`LshParams::for_threshold`]).
    pub lsh: Option<LshParams>,
    /// Seed of the hash functions.
    pub seed: u64,
}

impl Default for NearDedupConfig {
    fn default() -> Self {
        NearDedupConfig {
            shingle: Shingle::Words(5),
            num_perm: 128,
            threshold: 0.8,
            lsh: None,
            seed: 1,
        }
    }
}

/// Settings of a dedup run.
#[derive(Debug, Clone)]
pub struct DedupConfig {
    /// Where the text and the id are.
    pub fields: Fields,
    /// Remove exact duplicates of normalised text.
    pub exact: bool,
    /// Remove near duplicates (`None`: exact dedup only).
    pub near: Option<NearDedupConfig>,
    /// Format of the kept shards.
    pub format: Format,
    /// Compression of the kept shards.
    pub compression: Compression,
    /// Bytes of JSONL per kept shard.
    pub shard_bytes: u64,
    /// Raw input lines are kept in memory between passes up to this many bytes; a larger
    /// input is re-read from disk instead (0: always re-read).
    pub cache_bytes: u64,
}

impl Default for DedupConfig {
    fn default() -> Self {
        DedupConfig {
            fields: Fields::default(),
            exact: true,
            near: Some(NearDedupConfig::default()),
            format: Format::Jsonl,
            compression: Compression::None,
            shard_bytes: 256 << 20,
            cache_bytes: 1 << 30,
        }
    }
}

/// What a dedup run did. Written to `DIR/report.json`.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct DedupReport {
    /// Valid records read.
    pub docs_in: u64,
    /// Records written to `DIR/kept/`.
    pub kept: u64,
    /// Removed as exact duplicates of an earlier record (normalised text equal).
    pub removed_exact: u64,
    /// Removed as near duplicates (in a cluster whose first record is not an exact copy).
    pub removed_near: u64,
    /// Lines that gave no record (all listed in `DIR/malformed.jsonl`).
    pub malformed: u64,
    /// The first few malformed lines, as `file:line: problem`.
    pub malformed_examples: Vec<String>,
    /// Blank lines skipped.
    pub blank_lines: u64,
    /// Clusters of two or more records.
    pub clusters: u64,
    /// Cluster size → number of clusters of that size.
    pub cluster_sizes: BTreeMap<u64, u64>,
    /// LSH bands and rows used (absent for exact-only runs).
    pub lsh: Option<LshParams>,
    /// Candidate pairs from LSH (after removing pairs already joined as exact copies).
    pub candidate_pairs: u64,
    /// Candidate pairs whose exact Jaccard reached the threshold.
    pub verified_pairs: u64,
    /// Wall seconds per phase.
    pub seconds: BTreeMap<String, f64>,
    /// The kept shards, in order.
    pub shards: Vec<PathBuf>,
}

/// One line of `clusters.jsonl`.
#[derive(serde::Serialize)]
struct ClusterLine<'a> {
    cluster: usize,
    size: usize,
    kept: &'a str,
    members: &'a [String],
}

/// Per-document state of pass 1.
struct Pass1 {
    revisit: Revisit,
    keys: Vec<u128>,
    band_hashes: Vec<u64>,
    has_shingles: Vec<bool>,
}

/// Deduplicates `inputs` into `out_dir` (`kept/part-*.jsonl`, `clusters.jsonl`,
/// `malformed.jsonl`, `report.json`).
pub fn dedup(
    inputs: &InputSet,
    out_dir: &Path,
    cfg: &DedupConfig,
    progress: &dyn Progress,
) -> Result<DedupReport> {
    let near = match &cfg.near {
        Some(n) => {
            if !(n.threshold > 0.0 && n.threshold <= 1.0) {
                return Err(Error::Param {
                    name: "threshold",
                    what: format!("{} is not in (0, 1]", n.threshold),
                });
            }
            let hasher = MinHasher::new(n.shingle, n.num_perm, n.seed)?;
            let lsh = match n.lsh {
                Some(p) => LshParams::new(p.bands, p.rows, n.num_perm)?,
                None => LshParams::for_threshold(n.threshold.min(0.99), n.num_perm)?,
            };
            Some((n, hasher, lsh))
        }
        None => None,
    };
    let mut report = DedupReport {
        lsh: near.as_ref().map(|(_, _, l)| *l),
        ..DedupReport::default()
    };
    let t = Instant::now();
    progress.phase("dedup: signatures", None);
    let pass1 = signatures(inputs, cfg, near.as_ref().map(|(_, h, l)| (h, l)), progress)?;
    let (p1, stats) = pass1;
    progress.finish_phase();
    report.docs_in = stats.records;
    report.blank_lines = stats.blank;
    report.malformed = stats.malformed.len() as u64;
    report.malformed_examples = stats
        .malformed
        .iter()
        .take(20)
        .map(|m| m.to_string())
        .collect();
    write_malformed(out_dir, &stats.malformed)?;
    report
        .seconds
        .insert("signatures".into(), t.elapsed().as_secs_f64());

    let n = p1.keys.len();
    let mut uf = UnionFind::new(n);
    let mut exact_dup = vec![false; n];
    if cfg.exact {
        let mut order: Vec<u32> = (0..n as u32).collect();
        order.par_sort_unstable_by_key(|&d| (p1.keys[d as usize], d));
        for run in order.chunk_by(|a, b| p1.keys[*a as usize] == p1.keys[*b as usize]) {
            for &d in &run[1..] {
                uf.union(run[0], d);
                exact_dup[d as usize] = true;
            }
        }
    }

    if let Some((n_cfg, hasher, lsh)) = &near {
        let t = Instant::now();
        let active: Vec<bool> = (0..n)
            .map(|d| p1.has_shingles[d] && !exact_dup[d])
            .collect();
        let mut pairs = candidate_pairs(&p1.band_hashes, lsh.bands, &active);
        pairs.retain(|&(a, b)| uf.find(a) != uf.find(b));
        report.candidate_pairs = pairs.len() as u64;
        report
            .seconds
            .insert("lsh".into(), t.elapsed().as_secs_f64());

        let t = Instant::now();
        progress.phase("dedup: verify", Some(n as u64));
        let edges = verify(
            inputs,
            &p1.revisit,
            cfg,
            hasher,
            &pairs,
            n_cfg.threshold,
            progress,
        )?;
        progress.finish_phase();
        report.verified_pairs = edges.len() as u64;
        for (a, b) in edges {
            uf.union(a, b);
        }
        report
            .seconds
            .insert("verify".into(), t.elapsed().as_secs_f64());
    }

    let t = Instant::now();
    progress.phase("dedup: write", Some(n as u64));
    write_kept(
        inputs,
        &p1.revisit,
        out_dir,
        cfg,
        (&mut uf, &exact_dup),
        &mut report,
        progress,
    )?;
    progress.finish_phase();
    report
        .seconds
        .insert("write".into(), t.elapsed().as_secs_f64());
    let json = serde_json::to_vec_pretty(&report)?;
    write_atomic(&out_dir.join("report.json"), &json)?;
    Ok(report)
}

type Pass1Out = (Pass1, crate::scan::ScanStats);

fn signatures(
    inputs: &InputSet,
    cfg: &DedupConfig,
    near: Option<(&MinHasher, &LshParams)>,
    progress: &dyn Progress,
) -> Result<Pass1Out> {
    let mut p1 = Pass1 {
        revisit: Revisit::new(cfg.cache_bytes),
        keys: Vec::new(),
        band_hashes: Vec::new(),
        has_shingles: Vec::new(),
    };
    let bands = near.map_or(0, |(_, l)| l.bands);
    let stats = scan(inputs, &cfg.fields, |_, records| {
        let count = records.len() as u64;
        let per_doc: Vec<(u128, bool, Vec<u64>)> = records
            .par_iter()
            .map_init(
                || (Vec::new(), Vec::new()),
                |(shingles, sig), (r, _)| {
                    let norm = normalize(&r.text);
                    let key = exact_key(&norm);
                    let mut bh = vec![0u64; bands];
                    let mut has = false;
                    if let Some((hasher, lsh)) = near {
                        hasher.shingle_hashes(&norm, shingles);
                        sig.resize(hasher.num_perm(), 0);
                        hasher.signature(shingles, sig);
                        lsh.band_hashes(sig, &mut bh);
                        has = !shingles.is_empty();
                    }
                    (key, has, bh)
                },
            )
            .collect();
        for ((key, has, bh), (rec, (file, line))) in per_doc.into_iter().zip(records) {
            p1.revisit.push(file, line, rec.raw);
            p1.keys.push(key);
            p1.has_shingles.push(has);
            p1.band_hashes.extend_from_slice(&bh);
        }
        progress.advance(count);
        Ok(())
    })?;
    Ok((p1, stats))
}

/// Pass 2: shingle sets of the documents in `pairs`, then the pairs at or above
/// `threshold`, in pair order.
fn verify(
    inputs: &InputSet,
    revisit: &Revisit,
    cfg: &DedupConfig,
    hasher: &MinHasher,
    pairs: &[(u32, u32)],
    threshold: f64,
    progress: &dyn Progress,
) -> Result<Vec<(u32, u32)>> {
    let mut needed: Vec<u32> = pairs.iter().flat_map(|&(a, b)| [a, b]).collect();
    needed.par_sort_unstable();
    needed.dedup();
    if needed.is_empty() {
        return Ok(Vec::new());
    }
    let mut sets: Vec<Vec<u64>> = Vec::with_capacity(needed.len());
    let mut next = 0usize;
    let files = inputs.files();
    revisit.rescan(inputs, |first, lines| {
        let end = first as usize + lines.len();
        let start = next;
        while next < needed.len() && (needed[next] as usize) < end {
            next += 1;
        }
        let new_sets: Vec<Result<Vec<u64>>> = needed[start..next]
            .par_iter()
            .map(|&d| {
                let raw = &lines[(d - first) as usize];
                let file = &files[raw.file as usize];
                let (text, _) = cfg
                    .fields
                    .text_and_id(&raw.bytes, raw.line, file)
                    .map_err(reparse_error)?;
                let mut s = Vec::new();
                hasher.shingles(&normalize(&text), &mut s);
                Ok(s)
            })
            .collect();
        for s in new_sets {
            sets.push(s?);
        }
        progress.advance(lines.len() as u64);
        Ok(())
    })?;
    let set_of = |d: u32| -> &[u64] {
        match needed.binary_search(&d) {
            Ok(i) => &sets[i],
            Err(_) => &[],
        }
    };
    Ok(pairs
        .par_iter()
        .filter(|&&(a, b)| jaccard(set_of(a), set_of(b)) >= threshold)
        .copied()
        .collect())
}

/// Pass 3: writes the roots (first member of each cluster) and the clusters file.
fn write_kept(
    inputs: &InputSet,
    revisit: &Revisit,
    out_dir: &Path,
    cfg: &DedupConfig,
    (uf, exact_dup): (&mut UnionFind, &[bool]),
    report: &mut DedupReport,
    progress: &dyn Progress,
) -> Result<()> {
    let n = exact_dup.len();
    let roots: Vec<u32> = (0..n as u32).map(|d| uf.find(d)).collect();
    let mut size = vec![0u32; n];
    for &r in &roots {
        size[r as usize] += 1;
    }
    let kept_dir = out_dir.join("kept");
    remove_old_shards(&kept_dir, "part")?;
    let mut writer = ShardWriter::new(ShardSpec {
        dir: kept_dir,
        prefix: "part".into(),
        format: cfg.format,
        compression: cfg.compression,
        max_bytes: cfg.shard_bytes,
    })?;
    let mut members: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    let files = inputs.files();
    revisit.rescan(inputs, |first, lines| {
        for (k, raw) in lines.iter().enumerate() {
            let d = first as usize + k;
            let root = roots[d] as usize;
            if root == d {
                writer.write(&raw.bytes)?;
            } else if exact_dup[d] {
                report.removed_exact += 1;
            } else {
                report.removed_near += 1;
            }
            if size[root] > 1 {
                let file = &files[raw.file as usize];
                let (_, id) = cfg
                    .fields
                    .text_and_id(&raw.bytes, raw.line, file)
                    .map_err(reparse_error)?;
                members.entry(root as u32).or_default().push(id);
            }
        }
        progress.advance(lines.len() as u64);
        Ok(())
    })?;
    report.kept = writer.records();
    report.shards = writer.finish()?;
    let mut lines = Vec::new();
    for (cluster, ids) in members.values().enumerate() {
        *report.cluster_sizes.entry(ids.len() as u64).or_default() += 1;
        let line = ClusterLine {
            cluster,
            size: ids.len(),
            kept: &ids[0],
            members: ids,
        };
        serde_json::to_writer(&mut lines, &line)?;
        lines.push(b'\n');
    }
    report.clusters = members.len() as u64;
    write_atomic(&out_dir.join("clusters.jsonl"), &lines)
}

fn reparse_error(m: Malformed) -> Error {
    Error::Input {
        path: m.file,
        what: format!(
            "line {} changed while it was being processed: {}",
            m.line, m.problem
        ),
    }
}

/// Removes shards (and their temporaries) named `{prefix}-*.jsonl*` left in `dir` by an
/// earlier run, so old shards never mix with new ones.
pub(crate) fn remove_old_shards(dir: &Path, prefix: &str) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let bare = name.strip_prefix('.').unwrap_or(&name);
        if bare.starts_with(&format!("{prefix}-"))
            && (bare.contains(".jsonl") || bare.contains(".parquet"))
        {
            let p = entry.path();
            std::fs::remove_file(&p).map_err(|e| Error::io(&p, "remove old shard", e))?;
        }
    }
    Ok(())
}
