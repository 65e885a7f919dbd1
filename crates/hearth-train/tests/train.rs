//! Training on a tiny random model: the loss falls, assistant-only masking holds, and
//! a run resumed from a checkpoint ends exactly where an uninterrupted one does.
#![allow(clippy::unwrap_used)]

mod common;

use candle_core::DType;
use hearth_gguf::GgufFile;
use hearth_model::tiny::TinySpec;
use hearth_tokenizer::chat::ChatTemplate;
use hearth_tokenizer::Tokenizer;
use hearth_train::checkpoint::{latest_checkpoint, load_lora, resume};
use hearth_train::data::parse_examples;
use hearth_train::encode::{encode, Encoded};
use hearth_train::optim::AdamWConfig;
use hearth_train::{LoraConfig, TrainConfig, TrainModel, Trainer};

const DATA: &str = r#"{"prompt": "colour of the sky?", "response": "blue"}
{"prompt": "colour of grass?", "response": "green"}
{"messages": [{"role": "user", "content": "two plus two?"}, {"role": "assistant", "content": "four"}, {"role": "user", "content": "and three?"}, {"role": "assistant", "content": "five"}]}
{"instruction": "opposite of hot", "input": "", "output": "cold"}
"#;

fn encoded(path: &std::path::Path) -> (Vec<Encoded>, Tokenizer) {
    let file = GgufFile::open(path).unwrap();
    let tok = Tokenizer::from_gguf(&file).unwrap();
    let tpl = ChatTemplate::chatml("", "").unwrap();
    let ex = parse_examples(DATA, std::path::Path::new("d.jsonl")).unwrap();
    let enc = ex
        .iter()
        .map(|e| encode(&tok, &tpl, e, 512).unwrap())
        .collect();
    (enc, tok)
}

fn cfg(steps: usize) -> TrainConfig {
    TrainConfig {
        steps,
        batch_size: 2,
        grad_accum: 2,
        warmup: 2,
        seed: 5,
        optim: AdamWConfig {
            lr: 1e-2,
            ..AdamWConfig::default()
        },
    }
}

fn lora() -> LoraConfig {
    LoraConfig {
        rank: 4,
        alpha: 8.0,
        dropout: 0.1,
        targets: hearth_train::lora::parse_targets("all").unwrap(),
    }
}

#[test]
fn only_assistant_tokens_carry_loss() {
    let (_d, path) = common::tiny(&TinySpec::llama());
    let (enc, tok) = encoded(&path);
    for (e, n_turns) in enc.iter().zip([1, 1, 2, 1]) {
        let learned: Vec<u32> = e
            .tokens
            .iter()
            .zip(&e.mask)
            .filter(|(_, &m)| m)
            .map(|(&t, _)| t)
            .collect();
        let text = tok.decode(&learned, true);
        assert_eq!(text.matches("<|im_end|>").count(), n_turns, "{text:?}");
        assert!(!text.contains("user"), "{text:?}");
    }
    let text = tok.decode(
        &enc[2]
            .tokens
            .iter()
            .zip(&enc[2].mask)
            .filter(|(_, &m)| m)
            .map(|(&t, _)| t)
            .collect::<Vec<_>>(),
        true,
    );
    assert_eq!(text, "four<|im_end|>\nfive<|im_end|>\n");
}

#[test]
fn loss_falls_and_resume_matches_an_uninterrupted_run() {
    let (_d, path) = common::tiny(&TinySpec::llama());
    let (enc, _) = encoded(&path);
    let model = TrainModel::load(&path, DType::F32).unwrap();

    let mut t = Trainer::new(&model, lora(), cfg(30), enc.clone()).unwrap();
    let before = t.eval_loss(&enc).unwrap();
    while !t.done() {
        t.step().unwrap();
    }
    let after = t.eval_loss(&enc).unwrap();
    eprintln!("tiny llama: loss {before:.3} -> {after:.3}");
    assert!(after < 0.5 * before, "{before} -> {after}");

    // Four steps straight, against two, a checkpoint, a resume and two more.
    let mut straight = Trainer::new(&model, lora(), cfg(4), enc.clone()).unwrap();
    for _ in 0..4 {
        straight.step().unwrap();
    }
    let out = tempfile::tempdir().unwrap();
    let mut first = Trainer::new(&model, lora(), cfg(4), enc.clone()).unwrap();
    first.step().unwrap();
    first.step().unwrap();
    first.save_checkpoint(out.path()).unwrap();
    let dir = latest_checkpoint(out.path()).unwrap().unwrap();
    assert!(dir.ends_with("checkpoint-000002"), "{}", dir.display());
    let mut resumed = resume(&model, &dir, lora(), cfg(4), enc.clone()).unwrap();
    assert_eq!(resumed.progress(), first.progress());
    while !resumed.done() {
        resumed.step().unwrap();
    }
    let values = |t: &Trainer| -> Vec<f32> {
        t.lora()
            .named_vars()
            .iter()
            .flat_map(|(_, v)| v.flatten_all().unwrap().to_vec1::<f32>().unwrap())
            .collect()
    };
    assert_eq!(values(&straight), values(&resumed));
    let saved = load_lora(&model, &dir).unwrap();
    let saved: Vec<f32> = saved
        .named_vars()
        .iter()
        .flat_map(|(_, v)| v.flatten_all().unwrap().to_vec1::<f32>().unwrap())
        .collect();
    assert_eq!(saved, values(&first));

    // A checkpoint refuses a run with other pinned settings.
    let other = LoraConfig { rank: 8, ..lora() };
    let err = resume(&model, &dir, other, cfg(4), enc).unwrap_err();
    assert!(err.to_string().contains("lora_rank"), "{err}");
}

#[test]
fn gradient_accumulation_equals_one_large_batch() {
    let (_d, path) = common::tiny(&TinySpec::llama());
    let (enc, _) = encoded(&path);
    let model = TrainModel::load(&path, DType::F32).unwrap();
    let no_dropout = LoraConfig {
        dropout: 0.0,
        ..lora()
    };
    let run = |batch_size, grad_accum| {
        let c = TrainConfig {
            batch_size,
            grad_accum,
            warmup: 0,
            ..cfg(2)
        };
        let mut t = Trainer::new(&model, no_dropout.clone(), c, enc.clone()).unwrap();
        let loss = t.step().unwrap().loss;
        t.step().unwrap();
        let v: Vec<f32> = t
            .lora()
            .named_vars()
            .iter()
            .flat_map(|(_, v)| v.flatten_all().unwrap().to_vec1::<f32>().unwrap())
            .collect();
        (loss, v)
    };
    let (l1, big) = run(4, 1);
    let (l2, accum) = run(2, 2);
    assert!((l1 - l2).abs() < 1e-5, "{l1} vs {l2}");
    let diff = big
        .iter()
        .zip(&accum)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(diff < 1e-4, "parameters differ by {diff}");
}
