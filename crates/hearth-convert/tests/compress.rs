//! Low-rank compression of tiny models: full-rank pairs reproduce the dense logits,
//! low ranks load, run and shrink the parameter count, energy picks ranks by the
//! spectrum, bad requests fail clearly, provenance and ranks are recorded, and a sweep
//! reports perplexity against parameters saved.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use common::{logits, rel_err, PROMPT};
use hearth_convert::compress::RANK_KEY_PREFIX;
use hearth_convert::svd::{rank_for_energy, singular_values};
use hearth_convert::{
    compress, parse_targets, sweep, CompareConfig, CompressOptions, CompressSummary, GgufSource,
    ModelFacts, RankChoice, TensorSource,
};
use hearth_gguf::{GgmlType, GgufFile};
use hearth_model::tiny::TinySpec;

fn opts(choice: RankChoice, targets: &str, dtype: GgmlType) -> CompressOptions {
    CompressOptions {
        choice,
        targets: parse_targets(targets).unwrap(),
        dtype,
        force: false,
        densify: false,
        tool_version: "test".into(),
    }
}

fn run(src: &Path, out: &Path, o: &CompressOptions) -> hearth_convert::Result<CompressSummary> {
    compress(&GgufSource::open(src)?, out, o, &mut |_, _, _, _, _| {})
}

#[test]
fn full_rank_pairs_give_the_dense_logits() {
    let dir = tempfile::tempdir().unwrap();
    for spec in [TinySpec::llama(), TinySpec::gemma3()] {
        let src = dir.path().join(format!("{}.gguf", spec.arch));
        spec.write(&src).unwrap();
        let out = dir.path().join(format!("{}-full.gguf", spec.arch));
        let mut o = opts(RankChoice::Rank(10_000), "all", GgmlType::F32);
        o.force = true;
        let s = run(&src, &out, &o).unwrap();
        assert_eq!(s.tensors.len(), 7 * spec.n_layers);
        assert!(s.tensors.iter().all(|t| t.rank == Some(t.rows.min(t.cols))));
        let f = GgufFile::open(&out).unwrap();
        assert!(f.tensor("blk.0.attn_q.weight").is_none());
        let a = f.tensor("blk.0.attn_q.weight.lowrank_a").unwrap();
        assert_eq!(a.dims, vec![256, 256]);
        let e = rel_err(&logits(&src), &logits(&out));
        assert!(e < 1e-4, "{}: relative logit error {e}", spec.arch);
    }
}

#[test]
fn low_rank_loads_runs_and_has_fewer_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("tiny.gguf");
    TinySpec::llama().write(&src).unwrap();
    let reference = logits(&src);
    let mut errs = Vec::new();
    for rank in [16, 64] {
        let out = dir.path().join(format!("r{rank}.gguf"));
        let s = run(
            &src,
            &out,
            &opts(RankChoice::Rank(rank), "attn", GgmlType::F16),
        )
        .unwrap();
        // q, o: 256×256; k, v: 128×256; all beat break-even at these ranks.
        assert_eq!(s.tensors.len(), 8);
        assert!(s.tensors.iter().all(|t| t.rank == Some(rank)));
        let saved: u64 = s
            .tensors
            .iter()
            .map(|t| (t.rows * t.cols - rank * (t.rows + t.cols)) as u64)
            .sum();
        assert_eq!(s.params_after, s.params_before - saved);
        let facts = ModelFacts::open(&out).unwrap();
        assert_eq!(facts.parameters, s.params_after, "inspect counts the pairs");
        assert_eq!(ModelFacts::open(&src).unwrap().parameters, s.params_before);
        let f = GgufFile::open(&out).unwrap();
        let key = format!("{RANK_KEY_PREFIX}blk.1.attn_v.weight");
        assert_eq!(f.u64(&key).unwrap(), rank as u64);
        let l = logits(&out);
        assert!(l.iter().all(|v| v.is_finite()));
        errs.push(rel_err(&reference, &l));
    }
    assert!(errs[0] > errs[1] && errs[1] > 0.0, "{errs:?}");
}

#[test]
fn skips_matrices_whose_pair_is_not_smaller() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("tiny.gguf");
    TinySpec::llama().write(&src).unwrap();
    let out = dir.path().join("out.gguf");
    // Break-even: 256·256/512 = 128 for q/o; 128·256/384 ≈ 85.3 for k/v.
    let s = run(
        &src,
        &out,
        &opts(RankChoice::Rank(96), "attn", GgmlType::F16),
    )
    .unwrap();
    for t in &s.tensors {
        let kv = t.name.contains("attn_k") || t.name.contains("attn_v");
        assert_eq!(t.rank, if kv { None } else { Some(96) }, "{}", t.name);
    }
    let f = GgufFile::open(&out).unwrap();
    assert!(f.tensor("blk.0.attn_k.weight").is_some());
    assert!(f.tensor("blk.0.attn_q.weight").is_none());
    assert!(logits(&out).iter().all(|v| v.is_finite()));
}

#[test]
fn energy_picks_the_rank_of_each_spectrum() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("tiny.gguf");
    TinySpec::llama().write(&src).unwrap();
    let out = dir.path().join("e.gguf");
    let s = run(
        &src,
        &out,
        &opts(RankChoice::Energy(0.3), "q,down", GgmlType::F16),
    )
    .unwrap();
    let g = GgufSource::open(&src).unwrap();
    assert_eq!(s.tensors.len(), 4);
    for t in &s.tensors {
        let i = g.tensors().iter().position(|x| x.name == t.name).unwrap();
        let values = singular_values(&t.name, &g.read_f32(i).unwrap(), t.rows, t.cols).unwrap();
        let want = rank_for_energy(&values, 0.3);
        assert!(want > 1 && want < t.rows.min(t.cols) / 2, "{want}");
        assert_eq!(t.rank, Some(want), "{}", t.name);
        assert!(
            t.energy_kept >= 0.3 && t.energy_kept < 0.32,
            "{}",
            t.energy_kept
        );
    }
    // Q8_0 factors round the rank up to whole blocks of 32.
    let s = run(
        &src,
        &out,
        &opts(RankChoice::Energy(0.3), "q", GgmlType::Q8_0),
    )
    .unwrap();
    assert!(s.tensors.iter().all(|t| t.rank.unwrap() % 32 == 0));
    assert!(logits(&out).iter().all(|v| v.is_finite()));
}

#[test]
fn bad_requests_fail_with_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("tiny.gguf");
    TinySpec::llama().write(&src).unwrap();
    let out = dir.path().join("out.gguf");
    let err = |o: CompressOptions| run(&src, &out, &o).unwrap_err().to_string();
    assert!(err(opts(RankChoice::Rank(0), "attn", GgmlType::F16)).contains("rank 0"));
    assert!(err(opts(RankChoice::Rank(40), "attn", GgmlType::Q8_0)).contains("multiple of 32"));
    assert!(err(opts(RankChoice::Energy(1.5), "attn", GgmlType::F16)).contains("(0, 1]"));
    assert!(err(opts(RankChoice::Rank(8), "attn", GgmlType::Q4_0)).contains("factor type"));
    let e = parse_targets("q,attention").unwrap_err().to_string();
    assert!(e.contains("`attention`"), "{e}");
    assert_eq!(parse_targets("mlp,q").unwrap().len(), 4);
    let bad = dir.path().join("bad.gguf");
    std::fs::write(&bad, b"not a gguf").unwrap();
    assert!(GgufSource::open(&bad).is_err());
    assert!(!out.exists(), "nothing written on error");
}

#[test]
fn provenance_records_the_operation() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("tiny.gguf");
    TinySpec::llama().write(&src).unwrap();
    let out = dir.path().join("out.gguf");
    run(
        &src,
        &out,
        &opts(RankChoice::Rank(32), "q,k", GgmlType::F16),
    )
    .unwrap();
    let p = ModelFacts::open(&out).unwrap().provenance.unwrap();
    assert_eq!(p.operation, "compress");
    assert_eq!(p.parameters["rank"], "32");
    assert_eq!(p.parameters["targets"], "attn_q,attn_k");
    assert_eq!(p.parameters["type"], "F16");
    assert_eq!(p.source_file, "tiny.gguf");
    assert_eq!(
        p.source_sha256,
        hearth_convert::source::sha256_files(&[src]).unwrap()
    );
}

#[test]
fn sweep_reports_savings_against_perplexity() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("tiny.gguf");
    TinySpec::llama().write(&src).unwrap();
    let text = "It was the best of times, it was the worst of times, it was the age of \
        wisdom, it was the age of foolishness, it was the epoch of belief.";
    let cfg = CompareConfig {
        ctx: 64,
        max_tokens: None,
    };
    let o = opts(RankChoice::Rank(1), "attn", GgmlType::F32);
    let points = [
        RankChoice::Rank(8),
        RankChoice::Rank(64),
        RankChoice::Energy(0.5),
    ];
    let r = sweep(&src, &points, &o, text, &cfg, &mut |_, _, _| {}).unwrap();
    assert_eq!(r.points.len(), 3);
    let (p8, p64) = (&r.points[0], &r.points[1]);
    assert!(p8.params_saved_pct > p64.params_saved_pct && p64.params_saved_pct > 0.0);
    assert!(p8.params < p64.params && p64.params < r.params);
    assert!(r.ppl.is_finite() && p8.ppl.is_finite() && p64.ppl.is_finite());
    assert!(p8.top1_agreement < p64.top1_agreement || p64.top1_agreement == 1.0);
    assert_eq!(r.points[2].setting, "energy 0.5");
    // The sweep's rank-64 file is the one `compress` writes: same perplexity.
    let out = dir.path().join("r64.gguf");
    run(
        &src,
        &out,
        &CompressOptions {
            choice: RankChoice::Rank(64),
            ..o
        },
    )
    .unwrap();
    let c = hearth_convert::compare(&src, &out, text, &cfg, |_, _| {}).unwrap();
    assert_eq!(c.candidate.ppl, p64.ppl);
}

#[test]
fn real_smollm2_queries_at_a_moderate_rank_stay_close() {
    let Some(src) = common::real("smollm2-135m") else {
        return;
    };
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/models/gpl3.txt"
    );
    let Ok(text) = std::fs::read_to_string(path) else {
        eprintln!("SKIPPED: {path} absent");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // Queries at rank 256 of 576 (break-even 288): 30 decompositions, one chunk scored.
    let out = dir.path().join("smol-q-r256.gguf");
    let s = run(
        &src,
        &out,
        &opts(RankChoice::Rank(256), "q", GgmlType::Q8_0),
    )
    .unwrap();
    assert_eq!(s.tensors.iter().filter(|t| t.rank == Some(256)).count(), 30);
    assert!(s.params_after < s.params_before);
    let cfg = CompareConfig {
        ctx: 128,
        max_tokens: Some(128),
    };
    let c = hearth_convert::compare(&src, &out, &text, &cfg, |_, _| {}).unwrap();
    eprintln!(
        "SmolLM2 attn_q rank 256: ppl {:.3} -> {:.3}, top-1 {:.3}",
        c.reference.ppl, c.candidate.ppl, c.top1_agreement
    );
    // The model changed but is still itself. (On one chunk the compressed model can
    // score a little better than the original: 26.3 against 27.0 when this was
    // written, so "worse perplexity" is not asserted; the sweeps in
    // docs/QUANTIZATION.md measure the loss on more text.)
    assert!(c.candidate.ppl.is_finite());
    assert!(c.candidate.ppl != c.reference.ppl);
    assert!(
        c.top1_agreement < 1.0 && c.top1_agreement > 0.5,
        "{}",
        c.top1_agreement
    );
    assert!(c.ppl_delta_pct.abs() < 25.0, "{}", c.ppl_delta_pct);
}

#[test]
fn densify_writes_the_product_as_a_plain_matrix_llama_cpp_loads() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("tiny.gguf");
    TinySpec::llama().write(&src).unwrap();
    let pair = dir.path().join("pair.gguf");
    let dense = dir.path().join("dense.gguf");
    let o = opts(RankChoice::Rank(24), "attn,down", GgmlType::F32);
    run(&src, &pair, &o).unwrap();
    let s = run(&src, &dense, &CompressOptions { densify: true, ..o }).unwrap();
    assert_eq!(s.params_after, s.params_before);
    let f = GgufFile::open(&dense).unwrap();
    let q = f.tensor("blk.0.attn_q.weight").unwrap();
    assert_eq!((q.dtype, q.dims.clone()), (GgmlType::F32, vec![256, 256]));
    assert!(f.tensor("blk.0.attn_q.weight.lowrank_a").is_none());
    let p = ModelFacts::open(&dense).unwrap().provenance.unwrap();
    assert_eq!(p.parameters["densify"], "true");
    // Same approximation, multiplied out: the same logits as the pair.
    let (lp, ld) = (logits(&pair), logits(&dense));
    assert!(rel_err(&lp, &ld) < 1e-4, "{}", rel_err(&lp, &ld));
    assert!(rel_err(&logits(&src), &ld) > 1e-2);
    if let Some(peer) = common::peer_greedy(&dense, &PROMPT, 8) {
        assert_eq!(peer, common::greedy(&dense, &PROMPT, 8));
    }
}
