//! Issue 4: the prefix cache on sliding-window models. A second request sharing a long
//! prefix with a finished one reuses it although the windowed layers' blocks of that
//! prefix slid out of the window: it reports the block-aligned prefix as cached and
//! yields the same greedy tokens as a cold run. On a tiny random gemma3 (window 32)
//! always, on the real Gemma 3 270M (window 512, a ~1,000-token prefix) when cached,
//! printing the time to first token cold and cached.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Instant;

use hearth_engine::{
    Engine, EngineConfig, EngineRequest, EventStream, GenerateParams, GenerationEvent,
    SamplingParams, Session,
};
use hearth_gguf::GgufFile;
use hearth_model::tiny::TinySpec;
use hearth_model::Transformer;
use hearth_tokenizer::Tokenizer;

fn greedy(max_tokens: usize) -> GenerateParams {
    GenerateParams {
        max_tokens,
        sampling: SamplingParams {
            temperature: 0.0,
            ..SamplingParams::default()
        },
        ignore_eos: true,
        ..GenerateParams::default()
    }
}

/// A request's tokens, its cached-token count and its time to first token (seconds).
struct Run {
    ids: Vec<u32>,
    cached: usize,
    ttft: f64,
}

fn run(engine: &Engine, prompt: &[u32], max_tokens: usize) -> Run {
    let t0 = Instant::now();
    let stream: EventStream = engine
        .submit(EngineRequest {
            prompt_ids: prompt.to_vec(),
            params: greedy(max_tokens),
            cache_salt: 0,
            adapter: None,
        })
        .unwrap();
    let mut out = Run {
        ids: Vec::new(),
        cached: 0,
        ttft: 0.0,
    };
    for ev in stream {
        match ev {
            GenerationEvent::Token { id, .. } => {
                if out.ids.is_empty() {
                    out.ttft = t0.elapsed().as_secs_f64();
                }
                out.ids.push(id);
            }
            GenerationEvent::Finished { cached_tokens, .. } => {
                out.cached = cached_tokens;
                return out;
            }
            GenerationEvent::Error { message } => panic!("engine error: {message}"),
        }
    }
    panic!("stream ended without Finished");
}

fn config(prefix_cache: bool) -> EngineConfig {
    EngineConfig {
        block_size: 16,
        kv_budget_bytes: 64 << 20,
        max_running: 4,
        step_token_budget: 64,
        prefix_cache,
        ..EngineConfig::default()
    }
}

#[test]
fn tiny_gemma3_reuses_a_prefix_longer_than_its_window() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.gguf");
    let spec = TinySpec {
        sliding_window: 32,
        ..TinySpec::gemma3()
    };
    spec.write(&path).unwrap();
    let file = Arc::new(GgufFile::open(&path).unwrap());
    let tok = Arc::new(Tokenizer::from_gguf(&file).unwrap());
    let model = Arc::new(Transformer::from_gguf(file).unwrap());
    assert_eq!(model.config().sliding_window(), Some(32));
    let words = ["alpha", "beta", "gamma", "delta", "stone", "river", "cloud"];
    let text: Vec<&str> = (0..120)
        .map(|i| words[(i * 5 + i / 7) % words.len()])
        .collect();
    let prefix = tok.encode(&text.join(" "), true, true).unwrap();
    assert!(prefix.len() > 150, "{} tokens", prefix.len());
    let first = [&prefix[..], &tok.encode(" one two", false, true).unwrap()].concat();
    let second = [
        &prefix[..],
        &tok.encode(" three four", false, true).unwrap(),
    ]
    .concat();
    assert_ne!(first[prefix.len()], second[prefix.len()]);
    let engine = Engine::start(Arc::clone(&model), Arc::clone(&tok), config(true)).unwrap();
    let a = run(&engine, &first, 12);
    assert_eq!(a.cached, 0);
    let b = run(&engine, &second, 12);
    assert_eq!(b.cached, prefix.len() / 16 * 16, "the block-aligned prefix");
    let cold = Session::new(&model)
        .generate(&tok, &second, &greedy(12), &mut |_| {})
        .unwrap();
    assert_eq!(b.ids, cold.generated_ids, "cached run equals the cold one");
    let st = engine.stats();
    // The windowed pool is sized for the running windows only, so it evicts, yet it
    // kept the window before the reuse point.
    assert!(st.window_prefix_cache.unwrap().cached_blocks > 0, "{st:?}");
    assert_eq!(st.prefix_cache.hit_tokens as usize, b.cached);
}

#[test]
fn gemma_shared_1000_token_prefix_is_reused() {
    let Some((model, tok)) = common::load_real("gemma3-270m") else {
        return;
    };
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/models/gpl3.txt"
    ))
    .or_else(|_| std::fs::read_to_string("/work/shared/models/gpl3.txt"));
    let Ok(text) = text else {
        eprintln!("SKIPPED: ../shared/models/gpl3.txt absent");
        return;
    };
    let mut prefix = tok.encode(&text, true, false).unwrap();
    prefix.truncate(1000);
    let window = model.config().sliding_window().unwrap();
    assert!(
        window < 1000,
        "the prefix must outgrow the window ({window})"
    );
    let ask = |q: &str| [&prefix[..], &tok.encode(q, false, false).unwrap()].concat();
    let (first, second) = (ask("\n\nQ: Who wrote this?"), ask("\n\nSummary:"));
    let cfg = EngineConfig {
        step_token_budget: 512,
        ..EngineConfig::default()
    };
    let cold_engine = Engine::start(
        Arc::clone(&model),
        Arc::clone(&tok),
        EngineConfig {
            prefix_cache: false,
            ..cfg.clone()
        },
    )
    .unwrap();
    let cold = run(&cold_engine, &second, 8);
    drop(cold_engine);
    let engine = Engine::start(Arc::clone(&model), Arc::clone(&tok), cfg).unwrap();
    let a = run(&engine, &first, 8);
    let b = run(&engine, &second, 8);
    eprintln!(
        "Gemma 3 270M, {}-token prompt sharing 1,000 tokens: time to first token {:.2} s cold, \
         {:.2} s cached ({} tokens cached, {:.0}%); the first request took {:.2} s",
        second.len(),
        cold.ttft,
        b.ttft,
        b.cached,
        100.0 * b.ttft / cold.ttft,
        a.ttft
    );
    assert_eq!(b.cached, 1000 / 16 * 16, "the block-aligned shared prefix");
    assert_eq!(b.ids, cold.ids, "cached greedy tokens equal the cold ones");
    assert_eq!(cold.cached, 0);
}
