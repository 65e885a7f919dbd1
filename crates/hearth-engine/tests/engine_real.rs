//! The batching engine on the real models: greedy output of each request inside a batch
//! of mixed requests (different lengths, shared prefixes, arriving at different steps)
//! equals the same request run alone, with the prefix cache on.
#![allow(clippy::unwrap_used)]

mod common;

use hearth_engine::{
    Engine, EngineConfig, EngineRequest, GenerateParams, GenerationEvent, SamplingParams, Session,
};

fn greedy(max_tokens: usize) -> GenerateParams {
    GenerateParams {
        max_tokens,
        sampling: SamplingParams {
            temperature: 0.0,
            ..SamplingParams::default()
        },
        ..GenerateParams::default()
    }
}

const PROMPTS: [&str; 8] = [
    "The capital of France is",
    "Once upon a time, in a small village,",
    "def fibonacci(n):",
    "The three primary colors are",
    "The capital of France is a city that",
    "Water boils at a temperature of",
    "Once upon a time, in a small village, there lived",
    "The GNU General Public License is a free, copyleft license for software and other kinds of works.",
];

fn batch_equals_alone(name: &str, n_requests: usize, max_tokens: usize) {
    let Some((model, tok)) = common::load_real(name) else {
        return;
    };
    let prompts: Vec<Vec<u32>> = (0..n_requests)
        .map(|i| tok.encode(PROMPTS[i % PROMPTS.len()], true, true).unwrap())
        .collect();
    let alone: Vec<Vec<u32>> = prompts
        .iter()
        .map(|p| {
            Session::new(&model)
                .generate(&tok, p, &greedy(max_tokens), &mut |_| {})
                .unwrap()
                .generated_ids
        })
        .collect();
    let cfg = EngineConfig {
        kv_budget_bytes: 256 << 20,
        step_token_budget: 64,
        ..EngineConfig::default()
    };
    let engine = Engine::start(model.clone(), tok.clone(), cfg).unwrap();
    // Half the requests start first; the rest join once the first has produced a token.
    let mut streams: Vec<_> = prompts[..n_requests / 2]
        .iter()
        .map(|p| {
            engine
                .submit(EngineRequest {
                    prompt_ids: p.clone(),
                    params: greedy(max_tokens),
                    cache_salt: 0,
                })
                .unwrap()
        })
        .collect();
    let mut first = streams.remove(0);
    let mut first_ids = Vec::new();
    for ev in first.by_ref() {
        if let GenerationEvent::Token { id, .. } = ev {
            first_ids.push(id);
            break;
        }
    }
    streams.extend(prompts[n_requests / 2..].iter().map(|p| {
        engine
            .submit(EngineRequest {
                prompt_ids: p.clone(),
                params: greedy(max_tokens),
                cache_salt: 0,
            })
            .unwrap()
    }));
    let collect = |s: hearth_engine::EventStream, mut ids: Vec<u32>| {
        for ev in s {
            match ev {
                GenerationEvent::Token { id, .. } => ids.push(id),
                GenerationEvent::Finished { .. } => break,
                other => panic!("{other:?}"),
            }
        }
        ids
    };
    let mut batched = vec![collect(first, first_ids)];
    batched.extend(streams.into_iter().map(|s| collect(s, Vec::new())));
    for (i, (b, a)) in batched.iter().zip(&alone).enumerate() {
        assert_eq!(b, a, "{name}: request {i} differs in the batch");
    }
}

#[test]
fn smollm_batch_of_16_equals_alone() {
    batch_equals_alone("smollm2-135m", 16, 24);
}

#[test]
fn gemma_batch_of_8_equals_alone() {
    batch_equals_alone("gemma3-270m", 8, 16);
}
