//! The generation loop on a tiny random model: reproducible seeded sampling, greedy
//! equal to argmax decoding, length and stop-string endings, cache reuse across turns.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use hearth_engine::{FinishReason, GenerateParams, SamplingParams, Session};
use hearth_gguf::GgufFile;
use hearth_model::tiny::TinySpec;
use hearth_model::Transformer;
use hearth_tokenizer::Tokenizer;

fn tiny() -> (tempfile::TempDir, Transformer, Tokenizer) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("tiny.gguf");
    TinySpec::llama().write(&p).unwrap();
    let f = Arc::new(GgufFile::open(&p).unwrap());
    let tok = Tokenizer::from_gguf(&f).unwrap();
    (dir, Transformer::from_gguf(f).unwrap(), tok)
}

fn params(temperature: f32, seed: Option<u64>, max_tokens: usize) -> GenerateParams {
    GenerateParams {
        max_tokens,
        sampling: SamplingParams {
            temperature,
            seed,
            ..SamplingParams::default()
        },
        ignore_eos: true,
        ..GenerateParams::default()
    }
}

#[test]
fn seeded_sampling_is_reproducible_and_greedy_is_argmax() {
    let (_d, m, tok) = tiny();
    let prompt = tok.encode("hello world", true, true).unwrap();
    let run = |p: &GenerateParams| {
        Session::new(&m)
            .generate(&tok, &prompt, p, &mut |_| {})
            .unwrap()
    };
    let a = run(&params(1.0, Some(42), 20));
    let b = run(&params(1.0, Some(42), 20));
    let c = run(&params(1.0, Some(43), 20));
    assert_eq!(a.generated_ids, b.generated_ids);
    assert_ne!(a.generated_ids, c.generated_ids);
    assert_eq!(a.generated_ids.len(), 20);
    assert_eq!(a.finish_reason, FinishReason::Length);

    let g = run(&params(0.0, None, 10));
    let mut cache = m.new_cache();
    let vocab = m.config().vocab_size;
    let mut logits = m.forward(&prompt, &mut cache, &[prompt.len() - 1]).unwrap();
    for &id in &g.generated_ids {
        let best = (0..vocab)
            .max_by(|&i, &j| logits[i].total_cmp(&logits[j]).then(j.cmp(&i)))
            .unwrap();
        assert_eq!(id as usize, best);
        logits = m.forward(&[id], &mut cache, &[0]).unwrap();
    }
}

#[test]
fn streamed_text_equals_the_decoded_ids_and_stop_strings_cut() {
    let (_d, m, tok) = tiny();
    let prompt = tok.encode("abc", true, true).unwrap();
    let mut streamed = String::new();
    let g = Session::new(&m)
        .generate(&tok, &prompt, &params(1.0, Some(1), 30), &mut |s| {
            streamed.push_str(s)
        })
        .unwrap();
    assert_eq!(streamed, g.text);
    assert_eq!(g.text, tok.decode(&g.generated_ids, false));
    // Stop at a string that occurs in that text: the same seed reaches it and cuts there.
    let stop: String = g.text.chars().skip(3).take(2).collect();
    let cut = g.text.find(&stop).unwrap();
    let mut p = params(1.0, Some(1), 30);
    p.stop = vec![stop];
    let s = Session::new(&m)
        .generate(&tok, &prompt, &p, &mut |_| {})
        .unwrap();
    assert_eq!(s.finish_reason, FinishReason::Stop);
    assert_eq!(s.text, g.text[..cut]);
}

#[test]
fn a_session_reuses_its_cache_for_a_longer_prompt() {
    let (_d, m, tok) = tiny();
    let first = tok.encode("one two", true, true).unwrap();
    let mut session = Session::new(&m);
    let g1 = session
        .generate(&tok, &first, &params(0.0, None, 4), &mut |_| {})
        .unwrap();
    let mut second = first.clone();
    second.extend(&g1.generated_ids);
    second.extend(tok.encode(" three", false, true).unwrap());
    let g2 = session
        .generate(&tok, &second, &params(0.0, None, 4), &mut |_| {})
        .unwrap();
    assert_eq!(
        g2.prefill_tokens,
        second.len() - first.len() - 3,
        "only new tokens are evaluated"
    );
    let fresh = Session::new(&m)
        .generate(&tok, &second, &params(0.0, None, 4), &mut |_| {})
        .unwrap();
    assert_eq!(g2.generated_ids, fresh.generated_ids);
}

#[test]
fn too_long_prompts_and_bad_parameters_are_errors() {
    let (_d, m, tok) = tiny();
    let long = vec![65u32; 2048];
    let err = Session::new(&m)
        .generate(&tok, &long, &params(0.0, None, 4), &mut |_| {})
        .unwrap_err();
    assert!(err.to_string().contains("context length exceeded"), "{err}");
    let mut p = params(0.0, None, 4);
    p.sampling.top_p = 2.0;
    let err = Session::new(&m)
        .generate(&tok, &[65], &p, &mut |_| {})
        .unwrap_err();
    assert!(err.to_string().contains("top_p"), "{err}");
}
