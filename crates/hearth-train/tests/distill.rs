//! Knowledge distillation on tiny random models: gradients of the student's own
//! weights against finite differences, the teacher's top-k cache (round trip, reuse,
//! rebuild), the vocabulary check, a short run that lowers the KD loss, and student
//! files that hearth-model's inference loads and runs exactly as trained.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::DType;
use hearth_convert::Scheme;
use hearth_gguf::{GgmlType, GgufFile, GgufWriter, TensorToWrite, Value};
use hearth_model::tiny::TinySpec;
use hearth_model::Transformer;
use hearth_train::distill::{
    cache::target_rows, load_or_build, loss_sums, write_student, CacheHeader, CacheOrigin,
    Distiller, KdLoss, Student, TeacherRows, TopKCache,
};
use hearth_train::encode::Encoded;
use hearth_train::optim::AdamWConfig;
use hearth_train::{Error, Packed, TrainConfig, TrainModel};

/// Deterministic pseudo-text sequences over the tiny byte vocabulary.
fn sequences(n: usize, len: usize) -> Vec<Encoded> {
    (0..n)
        .map(|s| {
            let tokens: Vec<u32> = (0..len)
                .map(|i| ((i * 7 + s * 13 + (i * i) % 11) % 60 + 97) as u32)
                .collect();
            Encoded {
                mask: vec![true; tokens.len()],
                tokens,
            }
        })
        .collect()
}

fn header(teacher: &Path, k: usize, data: &[Encoded]) -> CacheHeader {
    let sha = hearth_convert::source::sha256_files(&[teacher.to_path_buf()]).unwrap();
    CacheHeader::expected("tiny.gguf", &sha, hearth_model::tiny::VOCAB, k, data)
}

fn cache_for(teacher: &Path, k: usize, data: &[Encoded]) -> TopKCache {
    let t = Transformer::open(teacher).unwrap();
    TopKCache::build(&t, header(teacher, k, data), data, &mut |_, _| {}).unwrap()
}

fn record() -> hearth_lineage::Provenance {
    hearth_lineage::Provenance {
        operation: "distill".into(),
        parameters: Default::default(),
        source_file: "tiny.gguf".into(),
        source_sha256: String::new(),
        license: None,
        tool: "hearth".into(),
        tool_version: "test".into(),
        previous: None,
    }
}

fn gradcheck(spec: TinySpec) {
    let (_d, path) = common::tiny(&spec);
    let data = sequences(2, 12);
    let cache = cache_for(&path, 8, &data);
    let teacher = TrainModel::load(&path, DType::F64).unwrap();
    let layers: Vec<usize> = (0..spec.n_layers).step_by(2).collect();
    let student = Student::from_layers(&teacher, &layers, true).unwrap();
    let mut b = Packed::default();
    let mut rows = TeacherRows {
        k: 8,
        ..Default::default()
    };
    for (i, e) in data.iter().enumerate() {
        b.push(&e.tokens, &e.mask);
        let (ids, lp) = cache.rows(i);
        rows.ids.extend_from_slice(ids);
        rows.logp.extend_from_slice(lp);
    }
    let cfg = KdLoss {
        alpha: 0.6,
        temperature: 2.0,
        scale_t2: true,
    };
    let idx: Vec<u32> = b.targets.iter().map(|&(r, _)| r as u32).collect();
    let tgt: Vec<u32> = b.targets.iter().map(|&(_, t)| t).collect();
    let loss = || {
        let logits = student.model.logits_at(&b, &idx, None, None).unwrap();
        loss_sums(&logits, &tgt, Some(&rows), &cfg).unwrap().total
    };
    let grads = loss().backward().unwrap();
    let mut checked = 0;
    for (name, var) in student.named_vars() {
        let g = grads
            .get(var)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f64>()
            .unwrap();
        let len = var.elem_count();
        // The largest gradient entry and two fixed ones.
        let top = (0..g.len())
            .max_by(|&a, &c| g[a].abs().total_cmp(&g[c].abs()))
            .unwrap();
        for j in [top, 0, len / 2 + 1] {
            let fd =
                common::central_difference(var, j, 1e-5, || loss().to_scalar::<f64>().unwrap());
            let err = (fd - g[j]).abs() / (fd.abs() + g[j].abs()).max(1e-6);
            assert!(
                err < 1e-4,
                "{name}[{j}]: autograd {} vs finite difference {fd}",
                g[j]
            );
            checked += 1;
        }
    }
    let names: Vec<&str> = student
        .named_vars()
        .iter()
        .map(|(n, _)| n.as_str())
        .collect();
    assert!(names.contains(&"token_embd.weight") && names.contains(&"blk.1.ffn_down.weight"));
    eprintln!("{}: {checked} student gradients checked", spec.arch);
}

#[test]
fn student_gradients_match_finite_differences() {
    // Llama (separate output head) and Gemma 3 (tied head, q/k and post norms).
    gradcheck(TinySpec {
        n_layers: 4,
        ..TinySpec::llama()
    });
    gradcheck(TinySpec::gemma3());
}

#[test]
fn top_k_cache_round_trips_and_is_rebuilt_when_the_teacher_changes() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.gguf");
    let b = dir.path().join("b.gguf");
    TinySpec::llama().write(&a).unwrap();
    TinySpec {
        seed: 8,
        ..TinySpec::llama()
    }
    .write(&b)
    .unwrap();
    let data = sequences(3, 20);
    let file = dir.path().join("t.topk");
    let ta = Transformer::open(&a).unwrap();
    let none = &mut |_: usize, _: usize| {};
    let (built, origin) = load_or_build(&file, &ta, header(&a, 4, &data), &data, none).unwrap();
    assert_eq!(origin, CacheOrigin::Built);
    assert_eq!(built.rows(1).0.len(), target_rows(&data[1]).len() * 4);
    // The teacher's greedy choice comes first: the argmax of its logits.
    let logits = ta
        .forward(&data[0].tokens, &mut ta.new_cache(), &[0])
        .unwrap();
    let argmax = (0..logits.len())
        .max_by(|&x, &y| logits[x].total_cmp(&logits[y]))
        .unwrap();
    assert_eq!(built.rows(0).0[0] as usize, argmax);
    let read = TopKCache::read(&file, &data).unwrap();
    assert_eq!(read, built);
    let (_, origin) = load_or_build(&file, &ta, header(&a, 4, &data), &data, none).unwrap();
    assert_eq!(origin, CacheOrigin::Reused);
    // Another teacher: rebuilt, and the records change.
    let tb = Transformer::open(&b).unwrap();
    let (rebuilt, origin) = load_or_build(&file, &tb, header(&b, 4, &data), &data, none).unwrap();
    assert!(
        matches!(&origin, CacheOrigin::Rebuilt(why) if why.contains("teacher")),
        "{origin:?}"
    );
    assert_ne!(rebuilt.rows(0), built.rows(0));
    // Another k, other data: rebuilt too.
    let (_, origin) = load_or_build(&file, &tb, header(&b, 6, &data), &data, none).unwrap();
    assert!(
        matches!(&origin, CacheOrigin::Rebuilt(why) if why.contains("top-k")),
        "{origin:?}"
    );
    let other = sequences(3, 21);
    let (_, origin) = load_or_build(&file, &tb, header(&b, 6, &other), &other, none).unwrap();
    assert!(
        matches!(&origin, CacheOrigin::Rebuilt(why) if why.contains("layout")),
        "{origin:?}"
    );
    // Garbage is an error naming the file, never a panic.
    std::fs::write(&file, b"not a cache").unwrap();
    let err = TopKCache::read(&file, &other).unwrap_err().to_string();
    assert!(err.contains("t.topk") && err.contains("magic"), "{err}");
}

/// `src` with its vocabulary cut to `n` tokens (embedding and head rows too).
fn with_vocab(src: &Path, n: usize, out: &Path) {
    let f = GgufFile::open(src).unwrap();
    let mut w = GgufWriter::new();
    for (k, v) in f.metadata() {
        let v = match (k.as_str(), v) {
            ("tokenizer.ggml.tokens" | "tokenizer.ggml.token_type", Value::Array(a)) => {
                Value::Array(a[..n].to_vec())
            }
            _ => v.clone(),
        };
        w.metadata(k.clone(), v);
    }
    for t in f.tensors() {
        let mut data = f.tensor_data(t).to_vec();
        let mut dims = t.dims.clone();
        if t.name == "token_embd.weight" || t.name == "output.weight" {
            assert_eq!(t.dtype, GgmlType::F32);
            data.truncate(dims[0] as usize * n * 4);
            dims[1] = n as u64;
        }
        w.tensor(TensorToWrite {
            name: t.name.clone(),
            dims,
            dtype: t.dtype,
            data,
        });
    }
    w.write(out).unwrap();
}

#[test]
fn a_student_with_another_vocabulary_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let teacher = dir.path().join("teacher.gguf");
    let small = dir.path().join("small.gguf");
    TinySpec::llama().write(&teacher).unwrap();
    with_vocab(&teacher, 200, &small);
    let t = GgufFile::open(&teacher).unwrap();
    let s = Arc::new(GgufFile::open(&small).unwrap());
    let err = Student::from_model(&t, s, false, DType::F32).unwrap_err();
    assert!(matches!(err, Error::VocabMismatch { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("257") && msg.contains("200") && msg.contains("small.gguf"),
        "{msg}"
    );
    // The same vocabulary is accepted.
    let same = Arc::new(GgufFile::open(&teacher).unwrap());
    assert!(Student::from_model(&t, same, false, DType::F32).is_ok());
}

/// Logits of the written file under hearth-model's inference against the trained
/// student's, at every position of one sequence.
fn assert_file_runs_as_trained(student: &Student, path: &PathBuf, seq: &Encoded) {
    let m = Transformer::open(path).unwrap();
    assert_eq!(m.config().n_layers(), student.model.config().n_layers());
    let n = seq.tokens.len();
    let want: Vec<usize> = (0..n).collect();
    let ours = m.forward(&seq.tokens, &mut m.new_cache(), &want).unwrap();
    let mut b = Packed::default();
    b.push(&seq.tokens, &[]);
    let rows: Vec<u32> = (0..n as u32).collect();
    let theirs = student.model.logits_at(&b, &rows, None, None).unwrap();
    let theirs = theirs.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let worst = ours
        .iter()
        .zip(&theirs)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    let scale = theirs.iter().map(|v| v.abs()).fold(0f32, f32::max);
    assert!(
        worst < 2e-3 * scale.max(1.0),
        "inference differs by {worst} (logits up to {scale})"
    );
}

#[test]
fn distilling_half_the_layers_lowers_the_kd_loss_and_writes_a_runnable_model() {
    let dir = tempfile::tempdir().unwrap();
    let teacher = dir.path().join("teacher.gguf");
    TinySpec {
        n_layers: 4,
        ..TinySpec::llama()
    }
    .write(&teacher)
    .unwrap();
    let data = sequences(8, 24);
    let cache = cache_for(&teacher, 16, &data);
    let tm = TrainModel::load(&teacher, DType::F32).unwrap();
    let student = Student::from_layers(&tm, &[0, 2], false).unwrap();
    let baseline = student.fork().unwrap();
    // Pure distillation: the KL to the teacher is what must fall.
    let loss = KdLoss {
        alpha: 1.0,
        temperature: 2.0,
        scale_t2: false,
    };
    let cfg = TrainConfig {
        steps: 12,
        batch_size: 4,
        grad_accum: 2,
        warmup: 1,
        seed: 3,
        optim: AdamWConfig {
            lr: 3e-3,
            ..AdamWConfig::default()
        },
    };
    let mut d = Distiller::new(&student, &data, Some(&cache), loss, cfg.clone()).unwrap();
    let before = d.evaluate(&data, Some(&cache)).unwrap();
    while !d.done() {
        d.step().unwrap();
    }
    let after = d.evaluate(&data, Some(&cache)).unwrap();
    eprintln!(
        "KD loss {:.4} -> {:.4} (KL {:.4} -> {:.4})",
        before.loss, after.loss, before.kl, after.kl
    );
    assert!(
        after.kl < 0.8 * before.kl,
        "KL {} -> {}",
        before.kl,
        after.kl
    );
    assert!(after.loss < before.loss);
    // The fork kept the initial weights: its loss is the student's before training.
    let b = hearth_train::distill::evaluate(&baseline, &data, Some(&cache), &loss, 4).unwrap();
    assert!(
        (b.loss - before.loss).abs() < 1e-9,
        "{} vs {}",
        b.loss,
        before.loss
    );
    // Hard labels need no teacher; KD without the cache is an error, not a panic.
    assert!(Distiller::new(&baseline, &data, None, KdLoss::HARD_LABELS, cfg.clone()).is_ok());
    assert!(Distiller::new(&baseline, &data, None, loss, cfg).is_err());
    let record = record();
    let out = dir.path().join("student.gguf");
    write_student(&student, &out, Scheme::Uniform(GgmlType::F32), &record).unwrap();
    assert_file_runs_as_trained(&student, &out, &data[0]);
    let f = GgufFile::open(&out).unwrap();
    assert_eq!(f.u64("llama.block_count").unwrap(), 2);
    assert!(f
        .str("hearth.provenance")
        .unwrap_or_default()
        .contains("distill"));
}

#[test]
fn random_and_gemma3_students_are_written_as_they_run() {
    let dir = tempfile::tempdir().unwrap();
    // Gemma 3: layers 1, 3, 5 keep their local/global attention (5 is global).
    let (_d, g) = common::tiny(&TinySpec::gemma3());
    let tm = TrainModel::load(&g, DType::F32).unwrap();
    let student = Student::from_layers(&tm, &[1, 3, 5], false).unwrap();
    let windows: Vec<bool> = student
        .model
        .config()
        .layers
        .iter()
        .map(|l| l.window.is_some())
        .collect();
    assert_eq!(windows, vec![true, true, false]);
    let out = dir.path().join("g.gguf");
    let record = record();
    write_student(&student, &out, Scheme::Uniform(GgmlType::F32), &record).unwrap();
    let seq = &sequences(1, 40)[0];
    assert_file_runs_as_trained(&student, &out, seq);
    // A random student of another shape.
    let (_d2, l) = common::tiny(&TinySpec::llama());
    let shape = "layers=1,d_model=128,ffn=256,heads=2,kv_heads=1"
        .parse()
        .unwrap();
    let file = Arc::new(GgufFile::open(&l).unwrap());
    let random = Student::from_shape(file, &shape, 5, DType::F32).unwrap();
    assert_eq!(random.n_trainable(), random.n_params());
    let out = dir.path().join("r.gguf");
    write_student(&random, &out, Scheme::Uniform(GgmlType::F32), &record).unwrap();
    assert_file_runs_as_trained(&random, &out, seq);
    assert!("layers=0"
        .parse::<hearth_train::distill::StudentShape>()
        .is_err());
    assert!(hearth_train::distill::parse_layers("0,9", 6).is_err());
    assert_eq!(
        hearth_train::distill::parse_layers("half", 5).unwrap(),
        vec![0, 2, 4]
    );
}
