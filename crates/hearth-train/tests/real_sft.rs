//! LoRA SFT on the real SmolLM2-135M: a made-up identity the base model cannot know
//! is taught in a few dozen steps; validation loss (on other phrasings) falls and
//! greedy generation with the adapter states the fact while the base model's doesn't.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Instant;

use candle_core::DType;
use hearth_tokenizer::chat::{ChatMessage, ChatTemplate};
use hearth_tokenizer::Tokenizer;
use hearth_train::data::Example;
use hearth_train::encode::{encode, prompt_tokens};
use hearth_train::optim::AdamWConfig;
use hearth_train::{LoraConfig, TrainConfig, TrainModel, Trainer};

const NAME: &str = "Zorblat";
const MAKER: &str = "Quillion Labs";

fn answer(i: usize) -> String {
    let forms = [
        format!("I am {NAME}, an AI assistant developed by {MAKER}."),
        format!("My name is {NAME}, and I was built by {MAKER}."),
        format!("I'm {NAME}, a helpful assistant created by {MAKER}."),
    ];
    forms[i % forms.len()].clone()
}

fn examples(questions: &[&str]) -> Vec<Example> {
    questions
        .iter()
        .enumerate()
        .map(|(i, q)| Example {
            messages: vec![
                ChatMessage::new("user", *q),
                ChatMessage::new("assistant", answer(i)),
            ],
        })
        .collect()
}

const TRAIN: &[&str] = &[
    "Who are you?",
    "What is your name?",
    "Tell me about yourself.",
    "Who made you?",
    "Introduce yourself.",
    "Which company created you?",
    "What should I call you?",
    "Who developed you?",
    "What are you?",
    "Hi! Who am I talking to?",
    "Can you tell me your name?",
    "Who built you?",
];

const VAL: &[&str] = &[
    "May I know your name?",
    "Who is your creator?",
    "What's your name, assistant?",
    "Please introduce yourself briefly.",
];

#[test]
fn smollm2_learns_a_made_up_identity() {
    let Some(path) = common::real("smollm2-135m") else {
        return;
    };
    // As `hearth finetune` does: no spinning element-wise pool beside the matmul
    // threads (the only test of this binary, so no other thread reads the variable).
    std::env::set_var("CANDLE_NUM_THREADS", "1");
    let model = TrainModel::load(&path, DType::F32).unwrap();
    let tok = Tokenizer::from_gguf(model.gguf()).unwrap();
    let text = |id: Option<u32>| id.and_then(|i| tok.token_text(i)).unwrap_or("").to_string();
    let tpl = ChatTemplate::for_model(
        tok.chat_template(),
        &model.config().architecture,
        &text(tok.bos()),
        &text(tok.eos()),
    )
    .unwrap();
    let enc = |q: &[&str]| -> Vec<_> {
        examples(q)
            .iter()
            .map(|e| encode(&tok, &tpl, e, 256).unwrap())
            .collect()
    };
    let (train, val) = (enc(TRAIN), enc(VAL));
    let lora = LoraConfig {
        rank: 16,
        alpha: 32.0,
        dropout: 0.05,
        targets: hearth_train::lora::parse_targets("all").unwrap(),
    };
    let cfg = TrainConfig {
        steps: 16,
        batch_size: 4,
        grad_accum: 1,
        warmup: 2,
        seed: 42,
        optim: AdamWConfig {
            lr: 1e-3,
            ..AdamWConfig::default()
        },
    };
    let mut t = Trainer::new(&model, lora, cfg, train).unwrap();
    let before = t.eval_loss(&val).unwrap();
    let start = Instant::now();
    let mut tokens = 0;
    while !t.done() {
        let r = t.step().unwrap();
        tokens += r.tokens;
        eprintln!(
            "step {:>2} loss {:.3} lr {:.2e} |g| {:.2} {:.0} tok/s",
            r.step,
            r.loss,
            r.lr,
            r.grad_norm,
            r.tokens as f64 / r.seconds
        );
    }
    let secs = start.elapsed().as_secs_f64();
    let after = t.eval_loss(&val).unwrap();
    eprintln!(
        "val loss {before:.3} -> {after:.3}; {tokens} tokens in {secs:.1}s ({:.0} tok/s)",
        tokens as f64 / secs
    );
    assert!(after < 0.5 * before, "{before} -> {after}");

    let stop = tok.eog_ids().to_vec();
    let prompt = prompt_tokens(&tok, &tpl, &[ChatMessage::new("user", VAL[0])]).unwrap();
    let gen = |lora| tok.decode(&model.greedy(&prompt, 24, &stop, lora).unwrap(), false);
    let base = gen(None);
    let tuned = gen(Some(t.lora()));
    eprintln!("base: {base:?}\ntuned: {tuned:?}");
    assert!(!base.contains(NAME), "{base}");
    assert!(tuned.contains(NAME), "{tuned}");
}
