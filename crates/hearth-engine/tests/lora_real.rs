#![allow(clippy::unwrap_used)]
//! LoRA adapters served many at once on SmolLM2-135M: eight concurrent greedy requests
//! over four random (seeded, trained-looking: B ~ N(0, 0.02)) adapters on q_proj and
//! v_proj plus the base model give the same tokens as each request run alone with its
//! adapter, equal prompts under different adapters never share prefix-cache blocks,
//! adapters really change the output, and unloading an adapter in use lets its
//! running request finish while new requests for it are refused.

mod common;

use hearth_engine::{
    Engine, EngineConfig, EngineRequest, Error, GenerateParams, GenerationEvent, SamplingParams,
    Session,
};
use hearth_model::lora::Proj;
use hearth_model::LoraAdapter;

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

/// Prompts longer than two KV blocks, so the prefix cache has blocks to share.
const PROMPTS: [&str; 3] = [
    "The history of the city goes back two thousand years, to a small settlement on the river where traders met to exchange salt, wool and iron. Over the centuries it grew into",
    "In computer science, a hash table is a data structure that maps keys to values. It uses a hash function to compute an index into an array of buckets, from which",
    "The recipe is simple: take two cups of flour, one cup of sugar, three eggs and a little butter, mix them well in a large bowl, and then",
];

const N: usize = 16;

fn collect(s: hearth_engine::EventStream) -> Vec<u32> {
    let mut ids = Vec::new();
    for ev in s {
        match ev {
            GenerationEvent::Token { id, .. } => ids.push(id),
            GenerationEvent::Finished { .. } => break,
            other => panic!("{other:?}"),
        }
    }
    ids
}

#[test]
fn smollm2_batch_of_adapters_equals_each_alone() {
    let Some((model, tok)) = common::load_real("smollm2-135m") else {
        return;
    };
    let cfg = model.config().clone();
    let names = ["a1", "a2", "a3", "a4"];
    let adapters: Vec<LoraAdapter> = (0..4)
        .map(|i| LoraAdapter::random(&cfg, &[Proj::Q, Proj::V], 8, 16.0, 0.1, 100 + i))
        .collect();
    let engine = Engine::start(
        model.clone(),
        tok.clone(),
        EngineConfig {
            kv_budget_bytes: 256 << 20,
            step_token_budget: 64,
            prefix_cache: true,
            ..EngineConfig::default()
        },
    )
    .unwrap();
    for (n, a) in names.iter().zip(&adapters) {
        engine.load_adapter(n, a).unwrap();
    }
    assert_eq!(engine.adapter_names(), names);
    // Request i: prompt i % 3 with adapter i % 5 (0 = base): equal prompts meet
    // different adapters (requests 0, 3 and 6 share prompt 0).
    let reqs: Vec<(Vec<u32>, Option<&str>)> = (0..8)
        .map(|i| {
            let p = tok.encode(PROMPTS[i % 3], true, true).unwrap();
            (p, (i % 5 > 0).then(|| names[i % 5 - 1]))
        })
        .collect();
    let alone: Vec<Vec<u32>> = reqs
        .iter()
        .map(|(p, a)| {
            Session::new(&model)
                .with_lora(a.map(|n| engine.adapter(n).unwrap()))
                .generate(&tok, p, &greedy(N), &mut |_| {})
                .unwrap()
                .generated_ids
        })
        .collect();
    let submit = |(p, a): &(Vec<u32>, Option<&str>)| {
        engine
            .submit(EngineRequest {
                prompt_ids: p.clone(),
                params: greedy(N),
                cache_salt: 0,
                adapter: a.map(str::to_string),
            })
            .unwrap()
    };
    // Four start; the others join once the first has a token in, so they meet
    // cached prefix blocks of the same prompt under another adapter.
    let mut streams: Vec<_> = reqs[..4].iter().map(submit).collect();
    let mut first = streams.remove(0);
    let mut first_ids = Vec::new();
    for ev in first.by_ref() {
        if let GenerationEvent::Token { id, .. } = ev {
            first_ids.push(id);
            break;
        }
    }
    streams.extend(reqs[4..].iter().map(submit));
    // a1 serves requests 1 and 6, both running: unloading it must not disturb them.
    engine.unload_adapter("a1").unwrap();
    let refused = engine.submit(EngineRequest {
        prompt_ids: reqs[1].0.clone(),
        params: greedy(N),
        cache_salt: 0,
        adapter: Some("a1".into()),
    });
    assert!(
        matches!(refused, Err(Error::UnknownAdapter { ref name }) if name == "a1"),
        "{refused:?}"
    );
    let mut batched = vec![{
        first_ids.extend(collect(first));
        first_ids
    }];
    batched.extend(streams.into_iter().map(collect));
    for (i, (b, a)) in batched.iter().zip(&alone).enumerate() {
        assert_eq!(b, a, "request {i} (adapter {:?})", reqs[i].1);
    }
    // Same prompt, other adapter: other tokens (the adapters really apply).
    let base: Vec<Vec<u32>> = (0..3)
        .map(|p| {
            let ids = tok.encode(PROMPTS[p], true, true).unwrap();
            Session::new(&model)
                .generate(&tok, &ids, &greedy(N), &mut |_| {})
                .unwrap()
                .generated_ids
        })
        .collect();
    let differ = (0..8)
        .filter(|&i| reqs[i].1.is_some() && alone[i] != base[i % 3])
        .count();
    eprintln!("{differ} of 6 adapter requests differ from the base output for their prompt");
    for (i, (a, b)) in alone.iter().zip(&batched).enumerate().take(3) {
        eprintln!(
            "request {i}: {:?} / {:?}",
            tok.decode(a, false),
            tok.decode(b, false)
        );
    }
    assert_eq!(
        differ, 6,
        "only {differ} adapter outputs differ from the base"
    );
    // Across adapters nothing was shared; the same prompt and adapter again is.
    assert_eq!(engine.stats().prefix_cache.hit_tokens, 0);
    assert_eq!(collect(submit(&reqs[3])), alone[3]);
    let hit = engine.stats().prefix_cache.hit_tokens;
    eprintln!("prefix-cache hit tokens after repeating request 3: {hit}");
    assert!(hit >= 32, "{hit}");
}
