//! The batching engine on tiny random models: batched greedy output equals each request
//! alone, preemption keeps outputs, dropped streams free their blocks, admission limits.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use hearth_engine::{
    Engine, EngineConfig, EngineRequest, Error, EventStream, FinishReason, GenerateParams,
    GenerationEvent, SamplingParams, Session,
};
use hearth_gguf::GgufFile;
use hearth_model::tiny::TinySpec;
use hearth_model::{PagedKv, Transformer};
use hearth_tokenizer::Tokenizer;

fn tiny(spec: TinySpec) -> (tempfile::TempDir, Arc<Transformer>, Arc<Tokenizer>) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("tiny.gguf");
    spec.write(&p).unwrap();
    let f = Arc::new(GgufFile::open(&p).unwrap());
    let tok = Tokenizer::from_gguf(&f).unwrap();
    (
        dir,
        Arc::new(Transformer::from_gguf(f).unwrap()),
        Arc::new(tok),
    )
}

fn greedy(max_tokens: usize, ignore_eos: bool) -> GenerateParams {
    GenerateParams {
        max_tokens,
        sampling: SamplingParams {
            temperature: 0.0,
            ..SamplingParams::default()
        },
        ignore_eos,
        ..GenerateParams::default()
    }
}

/// Prompt `k` of at least `min_len` tokens; even ones share a long prefix.
fn prompt(tok: &Tokenizer, k: usize, min_len: usize) -> Vec<u32> {
    let words = ["alpha", "beta", "gamma", "delta", "stone", "river", "cloud"];
    let mut text = String::from("the quick brown fox jumps over the lazy dog and then");
    let mut i = k;
    loop {
        let ids = tok.encode(&text, true, true).unwrap();
        if ids.len() >= min_len + k % 2 * 5 + k {
            return ids;
        }
        let w = if k.is_multiple_of(2) {
            words[text.len() % words.len()]
        } else {
            i = i * 31 + 7;
            words[i % words.len()]
        };
        text.push(' ');
        text.push_str(w);
    }
}

struct Out {
    ids: Vec<u32>,
    text: String,
    reason: FinishReason,
    cached: usize,
}

fn collect(stream: EventStream) -> Out {
    collect_after(Vec::new(), stream)
}

fn collect_after(seen: Vec<GenerationEvent>, stream: EventStream) -> Out {
    let mut out = Out {
        ids: Vec::new(),
        text: String::new(),
        reason: FinishReason::Length,
        cached: 0,
    };
    for ev in seen.into_iter().chain(stream) {
        match ev {
            GenerationEvent::Token { id, text, .. } => {
                out.ids.push(id);
                out.text.push_str(&text);
            }
            GenerationEvent::Finished {
                reason,
                completion_tokens,
                cached_tokens,
                ..
            } => {
                assert_eq!(completion_tokens, out.ids.len());
                out.reason = reason;
                out.cached = cached_tokens;
                return out;
            }
            GenerationEvent::Error { message } => panic!("engine error: {message}"),
        }
    }
    panic!("stream ended without Finished");
}

fn alone(m: &Transformer, tok: &Tokenizer, req: &EngineRequest) -> Out {
    let g = Session::new(m)
        .generate(tok, &req.prompt_ids, &req.params, &mut |_| {})
        .unwrap();
    Out {
        ids: g.generated_ids,
        text: g.text,
        reason: g.finish_reason,
        cached: 0,
    }
}

fn requests(tok: &Tokenizer, n: usize, min_len: usize) -> Vec<EngineRequest> {
    (0..n)
        .map(|k| EngineRequest {
            prompt_ids: prompt(tok, k, min_len),
            params: greedy(6 + 3 * k, k % 3 != 0),
            cache_salt: 0,
            adapter: None,
        })
        .collect()
}

fn config(prefix_cache: bool) -> EngineConfig {
    EngineConfig {
        block_size: 8,
        kv_budget_bytes: 64 << 20,
        max_running: 4,
        max_queued_requests: 16,
        max_queued_prompt_tokens: 100_000,
        step_token_budget: 48,
        prefix_cache,
    }
}

/// Submits half, lets the engine run a little, submits the rest; checks every output.
fn check_batched(spec: TinySpec, cfg: EngineConfig) -> (Engine, usize) {
    let (_d, m, tok) = tiny(spec);
    let reqs = requests(&tok, 8, 30);
    let expected: Vec<Out> = reqs.iter().map(|r| alone(&m, &tok, r)).collect();
    let engine = Engine::start(Arc::clone(&m), Arc::clone(&tok), cfg).unwrap();
    let mut streams: Vec<EventStream> = reqs[..4]
        .iter()
        .map(|r| engine.submit(r.clone()).unwrap())
        .collect();
    // Wait until the first request has produced a token before submitting more.
    let mut first = Vec::new();
    let ev = streams[0].next().unwrap();
    first.push(ev);
    streams.extend(reqs[4..].iter().map(|r| engine.submit(r.clone()).unwrap()));
    let mut cached = 0;
    for (k, (s, want)) in streams.into_iter().zip(&expected).enumerate() {
        let seen = if k == 0 {
            std::mem::take(&mut first)
        } else {
            Vec::new()
        };
        let got = collect_after(seen, s);
        assert_eq!(got.ids, want.ids, "request {k} ids");
        assert_eq!(got.text, want.text, "request {k} text");
        assert_eq!(got.reason, want.reason, "request {k} reason");
        cached += got.cached;
    }
    (engine, cached)
}

#[test]
fn batched_greedy_equals_alone_llama() {
    for pc in [false, true] {
        let (engine, cached) = check_batched(TinySpec::llama(), config(pc));
        let st = engine.stats();
        if pc {
            // Even-numbered prompts share a prefix, so later ones hit the cache.
            assert!(cached > 0 && st.prefix_cache.hit_blocks > 0, "{st:?}");
        } else {
            assert_eq!(cached, 0);
        }
    }
}

#[test]
fn batched_greedy_equals_alone_gemma3() {
    for pc in [false, true] {
        check_batched(TinySpec::gemma3(), config(pc));
    }
}

#[test]
fn preemption_keeps_outputs() {
    let (_d, m, _) = tiny(TinySpec::llama());
    let (gb, _) = PagedKv::block_bytes(m.config(), 8);
    drop(m);
    let cfg = EngineConfig {
        kv_budget_bytes: gb * 14,
        max_running: 8,
        ..config(true)
    };
    let (engine, _) = check_batched(TinySpec::llama(), cfg);
    assert!(engine.stats().preemptions > 0, "{:?}", engine.stats());
}

fn wait_idle(engine: &Engine) {
    let t0 = Instant::now();
    loop {
        let st = engine.stats();
        if st.running == 0 && st.waiting == 0 && st.kv_usage == 0.0 {
            return;
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "not freed: {st:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn dropping_a_stream_frees_its_blocks() {
    for spec in [TinySpec::llama(), TinySpec::gemma3()] {
        let (_d, m, tok) = tiny(spec);
        let engine = Engine::start(m, Arc::clone(&tok), config(false)).unwrap();
        let reqs = requests(&tok, 3, 30);
        let mut streams: Vec<EventStream> = reqs
            .iter()
            .map(|r| {
                let mut r = r.clone();
                r.params = greedy(500, true);
                engine.submit(r).unwrap()
            })
            .collect();
        for s in &mut streams {
            assert!(matches!(s.next(), Some(GenerationEvent::Token { .. })));
        }
        drop(streams);
        wait_idle(&engine);
        if let Some(w) = engine.stats().window_kv_usage {
            assert_eq!(w, 0.0);
        }
    }
}

#[test]
fn overload_and_context_errors() {
    let (_d, m, tok) = tiny(TinySpec::llama());
    let cfg = EngineConfig {
        max_running: 2,
        max_queued_requests: 1,
        ..config(false)
    };
    let engine = Engine::start(Arc::clone(&m), Arc::clone(&tok), cfg).unwrap();
    let mut reqs = requests(&tok, 3, 20);
    for r in &mut reqs {
        r.params = greedy(300, true);
    }
    let streams: Vec<EventStream> = reqs
        .iter()
        .map(|r| engine.submit(r.clone()).unwrap())
        .collect();
    let err = engine.submit(reqs[0].clone()).unwrap_err();
    assert!(matches!(err, Error::Overloaded { .. }), "{err}");
    let long = EngineRequest {
        prompt_ids: vec![5; m.config().context_length],
        params: greedy(4, true),
        cache_salt: 0,
        adapter: None,
    };
    let err = engine.submit(long).unwrap_err();
    assert!(matches!(err, Error::ContextLengthExceeded { .. }), "{err}");
    for (s, r) in streams.into_iter().zip(&reqs) {
        let got = collect(s);
        let want = alone(&m, &tok, r);
        assert_eq!(got.ids, want.ids);
        assert_eq!(got.text, want.text);
    }
    wait_idle(&engine);
}

#[test]
fn logprobs_match_a_teacher_forced_forward_and_metrics_count_the_request() {
    let (_d, m, tok) = tiny(TinySpec::llama());
    let engine = Engine::start(Arc::clone(&m), Arc::clone(&tok), EngineConfig::default()).unwrap();
    let prompt = tok.encode("hello world, this is", true, false).unwrap();
    let mut params = greedy(6, true);
    params.logprobs = Some(3);
    let stream = engine
        .submit(EngineRequest {
            prompt_ids: prompt.clone(),
            params,
            cache_salt: 0,
            adapter: None,
        })
        .unwrap();
    let mut got = Vec::new();
    for ev in stream {
        match ev {
            GenerationEvent::Token { id, logprobs, .. } => got.push((id, logprobs.unwrap())),
            GenerationEvent::Finished { .. } => break,
            GenerationEvent::Error { message } => panic!("{message}"),
        }
    }
    assert_eq!(got.len(), 6);
    // Teacher-forced: logits at every position of prompt + generated tokens.
    let mut all = prompt.clone();
    all.extend(got.iter().map(|(id, _)| *id));
    let want: Vec<usize> = (prompt.len() - 1..all.len() - 1).collect();
    let mut cache = m.new_cache();
    let logits = m.forward(&all, &mut cache, &want).unwrap();
    let vocab = m.config().vocab_size;
    for (row, (id, lp)) in logits.chunks(vocab).zip(&got) {
        let expect = hearth_engine::logprob_of(row, *id);
        assert!(
            (lp.logprob - expect).abs() < 2e-3,
            "{} vs {expect}",
            lp.logprob
        );
        assert_eq!(lp.top.len(), 3);
        // Greedy: the chosen token is the most likely one.
        assert_eq!(lp.top[0].0, *id);
        assert!(lp.top.windows(2).all(|w| w[0].1 >= w[1].1));
    }
    let metrics = engine.metrics();
    assert_eq!(metrics.time_to_first_token.count, 1);
    assert_eq!(metrics.inter_token_latency.count, 5);
    assert_eq!(metrics.finished_length, 1);
    assert_eq!(metrics.e2e_request_latency.count, 1);
}
