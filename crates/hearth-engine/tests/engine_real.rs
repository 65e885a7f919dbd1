//! The batching engine on the real models: greedy output of each request inside a batch
//! of mixed requests (different lengths, shared prefixes, arriving at different steps)
//! equals the same request run alone, with the prefix cache on and off; preemption under
//! a small KV budget keeps every output; cancelling frees every block; admission errors
//! spare running requests; a 4,000-token Gemma sequence holds only the window in its
//! local layers.
#![allow(clippy::unwrap_used)]

mod common;

use hearth_engine::{
    Engine, EngineConfig, EngineRequest, Error, GenerateParams, GenerationEvent, SamplingParams,
    Session,
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

fn batch_equals_alone(name: &str, n_requests: usize, max_tokens: usize, prefix_cache: bool) {
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
        prefix_cache,
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
                    adapter: None,
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
                adapter: None,
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
    batch_equals_alone("smollm2-135m", 16, 24, true);
}

#[test]
fn smollm_batch_of_16_equals_alone_without_prefix_cache() {
    batch_equals_alone("smollm2-135m", 16, 24, false);
}

#[test]
fn gemma_batch_of_8_equals_alone() {
    batch_equals_alone("gemma3-270m", 8, 16, true);
}

fn read_all(s: hearth_engine::EventStream) -> Vec<u32> {
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

fn alone(
    model: &hearth_model::Transformer,
    tok: &hearth_tokenizer::Tokenizer,
    p: &[u32],
    n: usize,
) -> Vec<u32> {
    Session::new(model)
        .generate(tok, p, &greedy(n), &mut |_| {})
        .unwrap()
        .generated_ids
}

#[test]
fn smollm_preemption_keeps_every_output() {
    let Some((model, tok)) = common::load_real("smollm2-135m") else {
        return;
    };
    let bs = 16;
    let (block_bytes, _) = hearth_model::PagedKv::block_bytes(model.config(), bs);
    let prompts: Vec<Vec<u32>> = (0..8)
        .map(|i| {
            tok.encode(
                &format!("{} Request number {i}.", PROMPTS[i % PROMPTS.len()]),
                true,
                true,
            )
            .unwrap()
        })
        .collect();
    let max_tokens = 40;
    // Room for about three sequences at once: the others wait or get preempted.
    let cfg = EngineConfig {
        block_size: bs,
        kv_budget_bytes: 12 * block_bytes,
        max_running: 8,
        step_token_budget: 64,
        prefix_cache: false,
        ..EngineConfig::default()
    };
    let engine = Engine::start(model.clone(), tok.clone(), cfg).unwrap();
    let streams: Vec<_> = prompts
        .iter()
        .map(|p| {
            engine
                .submit(EngineRequest {
                    prompt_ids: p.clone(),
                    params: greedy(max_tokens),
                    cache_salt: 0,
                    adapter: None,
                })
                .unwrap()
        })
        .collect();
    let outs: Vec<Vec<u32>> = streams.into_iter().map(read_all).collect();
    for (i, (o, p)) in outs.iter().zip(&prompts).enumerate() {
        assert_eq!(o, &alone(&model, &tok, p, max_tokens), "request {i}");
    }
    let stats = engine.stats();
    assert!(
        stats.preemptions > 0,
        "the budget was meant to force preemption: {stats:?}"
    );
    assert_eq!(stats.kv_usage, 0.0, "every block back after the run");
}

#[test]
fn smollm_cancelling_frees_every_block_and_overload_spares_running_requests() {
    let Some((model, tok)) = common::load_real("smollm2-135m") else {
        return;
    };
    let cfg = EngineConfig {
        max_running: 2,
        max_queued_requests: 1,
        prefix_cache: false,
        ..EngineConfig::default()
    };
    let engine = Engine::start(model.clone(), tok.clone(), cfg).unwrap();
    let p: Vec<Vec<u32>> = PROMPTS[..3]
        .iter()
        .map(|t| tok.encode(t, true, true).unwrap())
        .collect();
    let submit = |p: &Vec<u32>, n| {
        engine.submit(EngineRequest {
            prompt_ids: p.clone(),
            params: greedy(n),
            cache_salt: 0,
            adapter: None,
        })
    };
    let mut a = submit(&p[0], 30).unwrap();
    let b = submit(&p[1], 30).unwrap();
    let c = submit(&p[2], 30).unwrap();
    // Two running, one queued: the next is refused at once, as is a too-long prompt.
    assert!(matches!(submit(&p[0], 30), Err(Error::Overloaded { .. })));
    let long = vec![p[0][1]; model.config().context_length + 1];
    assert!(matches!(
        submit(&long, 4),
        Err(Error::ContextLengthExceeded { .. })
    ));
    // The refused requests disturbed nobody.
    let first = match a.next() {
        Some(GenerationEvent::Token { id, .. }) => id,
        other => panic!("{other:?}"),
    };
    let mut a_ids = vec![first];
    a_ids.extend(read_all(a));
    assert_eq!(a_ids, alone(&model, &tok, &p[0], 30));
    assert_eq!(read_all(b), alone(&model, &tok, &p[1], 30));
    // Cancel one midway: every block comes back.
    let mut c = c;
    assert!(matches!(c.next(), Some(GenerationEvent::Token { .. })));
    drop(c);
    let t = std::time::Instant::now();
    loop {
        let s = engine.stats();
        if s.running == 0 && s.waiting == 0 && s.kv_usage == 0.0 {
            break;
        }
        assert!(
            t.elapsed().as_secs() < 10,
            "blocks not freed after cancel: {s:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn gemma_4000_token_sequence_holds_only_the_window_in_local_layers() {
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
    let mut prompt = tok.encode(&text, true, false).unwrap();
    prompt.truncate(4000);
    let bs = 16;
    let window = model.config().sliding_window().unwrap();
    let cfg = EngineConfig {
        block_size: bs,
        max_running: 1,
        step_token_budget: 256,
        prefix_cache: false,
        ..EngineConfig::default()
    };
    let engine = Engine::start(model.clone(), tok.clone(), cfg).unwrap();
    let (_, window_blocks) = engine.kv_blocks();
    let mut s = engine
        .submit(EngineRequest {
            prompt_ids: prompt.clone(),
            params: greedy(48),
            cache_salt: 0,
            adapter: None,
        })
        .unwrap();
    // Watch the pools while the prompt is prefilled and the first tokens decode.
    let (global_blocks, _) = engine.kv_blocks();
    let done = std::sync::atomic::AtomicBool::new(false);
    let (most_window, most_global, tokens) = std::thread::scope(|scope| {
        let watcher = scope.spawn(|| {
            let (mut w_max, mut g_max) = (0usize, 0usize);
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let st = engine.stats();
                let w = (st.window_kv_usage.unwrap() * window_blocks as f64).round() as usize;
                w_max = w_max.max(w);
                g_max = g_max.max((st.kv_usage * global_blocks as f64).round() as usize);
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            (w_max, g_max)
        });
        let mut tokens = 0;
        loop {
            match s.next() {
                Some(GenerationEvent::Token { .. }) => tokens += 1,
                Some(GenerationEvent::Finished { .. }) => break,
                other => panic!("{other:?}"),
            }
        }
        // Keep the sequence's blocks visible a moment after the end is known.
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        let (w, g) = watcher.join().unwrap();
        (w, g, tokens)
    });
    assert_eq!(tokens, 48);
    // The window plus one step's chunk, never the whole sequence.
    let bound = (window + 256).div_ceil(bs) + 1;
    eprintln!("4000-token Gemma sequence: local-layer blocks at most {most_window} (bound {bound}), global {most_global}");
    assert!(
        most_window <= bound,
        "local layers held {most_window} blocks > {bound}"
    );
    assert!(
        most_global >= 4000 / bs,
        "global layers hold the whole sequence ({most_global})"
    );
}
